/* Quantized GGUF blocks: known values per type, AVX2 against the C code bit for bit, the
 * fused dot against the dot of the dequantized row, matmul rows independent of the batch
 * (8-bit and fp32 activations), NaN/inf scales found and refused at load; the 8-bit
 * activations: the rounding's rules, every ISA's integer dots equal to the C reference bit
 * for bit (odd row lengths, the last block, 1..9 rows at a time), NaN propagation; on SmolLM2
 * (when installed) prefill against token-by-token decode, bit for bit, on both paths.
 * gguf-py's values are checked in tests/peers/test_quant.py. */
#include <math.h>
#include <stdlib.h>

#include "scalequest/kernels.h"
#include "scalequest/model.h"
#include "scalequest/models.h"
#include "scalequest/gguf.h"
#include "scalequest/quant.h"
#include "quant_blocks.h"
#include "test.h"

SQ_TEST(known_values_per_type) {
    uint8_t b[34];
    float out[32];
    memset(b, 0, sizeof b);
    put_h(b, 0.5f);
    for (int j = 0; j < 16; j++) b[2 + j] = (uint8_t)(j | (15 - j) << 4);
    sq_dequant_row(out, b, SQ_Q4_0, 32);
    for (int j = 0; j < 16; j++) {
        CHECK(out[j] == 0.5f * (float)(j - 8));
        CHECK(out[j + 16] == 0.5f * (float)(7 - j));
    }
    /* Q4_1: d, m, then the same nibbles. */
    put_h(b, 0.25f);
    put_h(b + 2, -1.0f);
    for (int j = 0; j < 16; j++) b[4 + j] = (uint8_t)(j | (15 - j) << 4);
    sq_dequant_row(out, b, SQ_Q4_1, 32);
    CHECK(out[0] == -1.0f && out[15] == 0.25f * 15 - 1.0f && out[16] == 0.25f * 15 - 1.0f && out[31] == -1.0f);
    /* Q5_1: bit j of qh is value j's fifth bit. */
    memset(b, 0, sizeof b);
    put_h(b, 1.0f);
    put_h(b + 2, 0.0f);
    uint32_t qh = (1u << 3) | (1u << 20);
    memcpy(b + 4, &qh, 4);
    b[8 + 3] = 0x01;
    b[8 + 4] = 0x20; /* value 20 = high nibble of byte 4 */
    sq_dequant_row(out, b, SQ_Q5_1, 32);
    CHECK(out[3] == 17.0f && out[20] == 18.0f && out[0] == 0.0f && out[19] == 0.0f);
    /* Q8_0 */
    put_h(b, 2.0f);
    for (int j = 0; j < 32; j++) b[2 + j] = (uint8_t)(int8_t)(j - 16);
    sq_dequant_row(out, b, SQ_Q8_0, 32);
    for (int j = 0; j < 32; j++) CHECK(out[j] == 2.0f * (float)(j - 16));
    /* Q6_K: every q = 32 + 1 (so q - 32 = 1), scales 1..16, d = 1: value i = scale[i/16]. */
    uint8_t k6[210];
    memset(k6, 0, sizeof k6);
    for (int i = 0; i < 128; i++) k6[i] = 0x11;
    for (int i = 0; i < 64; i++) k6[128 + i] = 0xAA; /* high bits 2 in every position: 2<<4 = 32 */
    for (int i = 0; i < 16; i++) k6[192 + i] = (uint8_t)(i + 1);
    put_h(k6 + 208, 1.0f);
    float o6[256];
    sq_dequant_row(o6, k6, SQ_Q6_K, 256);
    for (int i = 0; i < 256; i++) CHECKF(o6[i] == (float)(i / 16 + 1), "Q6_K value %d = %g", i, o6[i]);
}

SQ_TEST(simd_equals_c_and_fused_equals_dequantized_dot) {
    sq_rng r;
    sq_rng_seed(&r, 7);
    for (size_t ti = 0; ti < SQ_ARRAY_LEN(TYPES); ti++) {
        sq_dtype t = TYPES[ti];
        int per = sq_dtype_block(t, NULL), nb = 5, n = per * nb;
        uint8_t *q = random_blocks(t, nb, &r);
        float *a = malloc((size_t)n * 4), *c = malloc((size_t)n * 4), *x = malloc((size_t)n * 4);
        for (int i = 0; i < n; i++) x[i] = (float)(sq_rng_uniform(&r) * 2 - 1);
        sq_dequant_row(a, q, t, n);
        float da = sq_quant_dot(q, t, x, n), fa = sq_quant_dot_f32(a, x, n);
        sq_quant_force_c(1);
        sq_dequant_row(c, q, t, n);
        float dc = sq_quant_dot(q, t, x, n), fc = sq_quant_dot_f32(c, x, n);
        sq_quant_force_c(0);
        CHECKF(!memcmp(a, c, (size_t)n * 4), "%s: dequantized values differ between %s and C", sq_dtype_name(t),
               sq_quant_impl());
        CHECKF(da == dc && da == fa && fa == fc, "%s: fused %.9g / C %.9g / dequantized %.9g / C %.9g",
               sq_dtype_name(t), da, dc, fa, fc);
        double ref = 0, mag = 0;
        for (int i = 0; i < n; i++) ref += (double)x[i] * a[i], mag += fabs((double)x[i] * a[i]);
        CHECK_NEAR(da, ref, 1e-5 * mag + 1e-30);
        free(q), free(a), free(c), free(x);
    }
}

SQ_TEST(matmul_rows_do_not_depend_on_the_batch) {
    sq_rng r;
    sq_rng_seed(&r, 11);
    sq_err e;
    sq_matmul_ctx *mm;
    REQUIRE(sq_matmul_ctx_new(&mm, &e) == 0);
    for (size_t ti = 0; ti < 2 * SQ_ARRAY_LEN(TYPES); ti++) {
        sq_quant_act_set(ti < SQ_ARRAY_LEN(TYPES) ? SQ_ACT_Q8 : SQ_ACT_F32);
        sq_dtype t = TYPES[ti % SQ_ARRAY_LEN(TYPES)];
        int per = sq_dtype_block(t, NULL), in = per * 3, out = 37, rows = 6;
        uint8_t *q = random_blocks(t, out * 3, &r);
        sq_view w = {q, t, 2, {out, in, 1, 1}};
        CHECK(sq_matmul_part_ok(&w));
        float *x = malloc((size_t)rows * in * 4), *y = malloc((size_t)rows * out * 4), *y1 = malloc((size_t)out * 4),
              *yp = malloc((size_t)out * 4), bias[37];
        for (int i = 0; i < rows * in; i++) x[i] = (float)(sq_rng_uniform(&r) * 2 - 1);
        for (int i = 0; i < out; i++) bias[i] = (float)i * 0.01f;
        REQUIRE(sq_matmul(mm, y, x, rows, &w, bias, &e) == 0);
        for (int row = 0; row < rows; row++) {
            REQUIRE(sq_matmul(mm, y1, x + (size_t)row * in, 1, &w, bias, &e) == 0);
            sq_matmul_part(yp, x + (size_t)row * in, 1, &w, bias, 0, 20);
            sq_matmul_part(yp, x + (size_t)row * in, 1, &w, bias, 20, out);
            CHECKF(!memcmp(y1, y + (size_t)row * out, (size_t)out * 4), "%s row %d: batch 1 != batch %d",
                   sq_dtype_name(t), row, rows);
            CHECKF(!memcmp(y1, yp, (size_t)out * 4), "%s row %d: part != whole", sq_dtype_name(t), row);
        }
        /* sq_matmul_n (q/k/v, gate/up: x rounded once for all) equals one call per weight. */
        float *ya = malloc((size_t)rows * out * 4), *yb = malloc((size_t)rows * out * 4);
        float *const ys[2] = {ya, yb};
        const sq_view *const ws[2] = {&w, &w};
        const float *const bs[2] = {bias, NULL};
        REQUIRE(sq_matmul_n(mm, 2, ys, x, rows, ws, bs, &e) == 0);
        CHECKF(!memcmp(ya, y, (size_t)rows * out * 4), "%s: matmul_n != matmul", sq_dtype_name(t));
        REQUIRE(sq_matmul(mm, y, x, rows, &w, NULL, &e) == 0);
        CHECKF(!memcmp(yb, y, (size_t)rows * out * 4), "%s: matmul_n != matmul (no bias)", sq_dtype_name(t));
        free(ya), free(yb);
        free(q), free(x), free(y), free(y1), free(yp);
    }
    sq_quant_act_set(SQ_ACT_Q8);
    sq_matmul_ctx_free(mm);
}

/* ---- 8-bit activations ------------------------------------------------------------------ */

/* A row with a zero block, an outlier in the last block and otherwise normal values. */
static float *act_row(int n, sq_rng *r) {
    float *x = malloc((size_t)n * 4);
    for (int i = 0; i < n; i++) x[i] = (float)sq_rng_normal(r);
    if (n >= 64)
        for (int i = 32; i < 64; i++) x[i] = 0;
    x[n - 1] = 40.0f;
    return x;
}

SQ_TEST(act_rounding_rules) {
    sq_rng r;
    sq_rng_seed(&r, 21);
    int n = 512;
    float *x = act_row(n, &r), *back = malloc((size_t)n * 4);
    x[5] = -3.0f; /* block 0: its largest |x| */
    for (int i = 0; i < 32; i++)
        if (i != 5 && fabsf(x[i]) >= 3.0f) x[i] = 2.0f;
    /* 32-value blocks: d = f16(amax / 127), q = rint(x * 127 / amax), |q| <= 127. */
    void *b = malloc(sq_quant_act_bytes(1, n));
    sq_quant_act_row(b, x, 1, n);
    sq_quant_act_dequant(back, b, 1, n);
    float d0 = sq_f16_to_f32(sq_f32_to_f16(3.0f / 127.f));
    CHECKF(back[5] == -127 * d0, "block 0's largest value: %.9g, want %.9g", back[5], -127 * d0);
    for (int i = 32; i < 64; i++) CHECK(back[i] == 0.0f);
    for (int i = 0; i < n; i++) {
        int blk = i / 32;
        float amax = 0;
        for (int j = 32 * blk; j < 32 * blk + 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        float q = rintf(x[i] * (127.f / amax));
        CHECKF(amax == 0 || back[i] == q * sq_f16_to_f32(sq_f32_to_f16(amax / 127.f)), "value %d: %.9g", i, back[i]);
    }
    /* Q8_K: the first largest |x| sets the sign; d = 1 / (-127 / max) in fp32; sums of 16. */
    void *k = malloc(sq_quant_act_bytes(2, n));
    sq_quant_act_row(k, x, 2, n);
    sq_quant_act_dequant(back, k, 2, n);
    float iscale = -127.f / 40.0f;
    CHECKF(back[n - 1] == (1 / iscale) * rintf(iscale * 40.0f), "Q8_K outlier %.9g", back[n - 1]);
    for (int i = 256; i < n; i++) {
        float q = rintf(iscale * x[i]);
        CHECKF(back[i] == (1 / iscale) * (q > 127 ? 127 : q), "Q8_K value %d: %.9g", i, back[i]);
    }
    /* NaN anywhere in a block: that block's scale is NaN (documented), the others are not. */
    x[40] = NAN;
    sq_quant_act_row(b, x, 1, n);
    sq_quant_act_dequant(back, b, 1, n);
    CHECK(isnan(back[33]) && !isnan(back[0]) && !isnan(back[64]));
    free(x), free(back), free(b), free(k);
}

/* The SIMD rounding of x into 32-value blocks gives the C code's bytes: ties (2.5 with amax
 * 127 rounds to even), a zero block, -0, NaN and inf blocks, denormals, huge values. */
SQ_TEST(q8_act_rounding_equals_the_c_code) {
    sq_rng r;
    sq_rng_seed(&r, 37);
    int n = 32 * 12;
    float *x = malloc(sizeof(float) * (size_t)n);
    size_t xs = sq_quant_act_bytes(1, n);
    uint8_t *a = malloc(xs), *b = malloc(xs);
    for (int trial = 0; trial < 20; trial++) {
        for (int i = 0; i < n; i++) x[i] = (float)sq_rng_normal(&r) * (trial % 2 ? 1e-3f : 3.0f);
        for (int i = 0; i < 32; i++) x[i] = (float)(i - 16) + 0.5f; /* block 0: halves, amax 16.5 */
        x[40] = 127.0f, x[41] = 2.5f, x[42] = -3.5f, x[43] = 0.5f;  /* block 1: id = 1, exact ties */
        for (int i = 64; i < 96; i++) x[i] = 0;
        x[70] = -0.0f;
        x[100] = NAN;
        x[140] = -INFINITY;
        for (int i = 160; i < 192; i++) x[i] = 1e-40f * (float)(i - 170);
        x[200] = 3e38f, x[201] = -3.3e38f;
        x[n - 1] = (float)trial * 7.0f;
        sq_quant_q8_force(1);
        sq_quant_act_row(a, x, 1, n);
        sq_quant_q8_force(0);
        sq_quant_act_row(b, x, 1, n);
        CHECKF(!memcmp(a, b, xs), "trial %d: %s rounding differs from the C code", trial, sq_quant_q8_impl());
    }
    free(x), free(a), free(b);
}

/* Every ISA the machine has gives the C reference's bits, one row or many at a time. */
SQ_TEST(q8_dots_equal_the_c_reference_on_every_isa) {
    sq_rng r;
    sq_rng_seed(&r, 23);
    const char *impl = sq_quant_q8_impl();
    int levels = strcmp(impl, "avx512vnni") == 0 ? 3 : strcmp(impl, "avx2") == 0 ? 2 : 1;
    for (size_t ti = 0; ti < SQ_ARRAY_LEN(TYPES); ti++) {
        sq_dtype t = TYPES[ti];
        int per = sq_dtype_block(t, NULL), kind = sq_quant_act_kind(t);
        size_t bb;
        sq_dtype_block(t, &bb);
        for (int nb = 1; nb <= 7; nb += 2) {
            int n = per * nb, rows = 9, out = 3;
            uint8_t *w = random_blocks(t, nb * out, &r);
            size_t xs = sq_quant_act_bytes(kind, n);
            uint8_t *xq = malloc(xs * (size_t)rows);
            float *deq = malloc((size_t)n * 4), *xd = malloc((size_t)n * 4);
            for (int row = 0; row < rows; row++) {
                float *x = act_row(n, &r);
                sq_quant_act_row(xq + (size_t)row * xs, x, kind, n);
                free(x);
            }
            float ref[9][3], got[9][3];
            sq_quant_q8_force(1);
            for (int o = 0; o < out; o++)
                for (int row = 0; row < rows; row++)
                    ref[row][o] = sq_quant_dot_q8(w + (size_t)o * nb * bb, t, xq + (size_t)row * xs, n) + 0.5f;
            /* The C value against float64 on the values the integers stand for. */
            for (int o = 0; o < out; o++) {
                sq_dequant_row(deq, w + (size_t)o * nb * bb, t, n);
                sq_quant_act_dequant(xd, xq, kind, n);
                double s = 0, mag = 0;
                for (int i = 0; i < n; i++) s += (double)deq[i] * xd[i], mag += fabs((double)deq[i] * xd[i]);
                /* Q*_1: llama.cpp's min term m * s rounds s = d * sum(q) to f16 (2^-11). */
                CHECKF(fabs(ref[0][o] - 0.5f - s) <= 2e-3 * mag + 1e-6, "%s x %d blocks: C %.9g, exact %.9g",
                       sq_dtype_name(t), nb, ref[0][o] - 0.5f, s);
            }
            for (int lv = 0; lv < levels; lv++) {
                sq_quant_q8_force(lv == 0 ? 1 : lv == 1 ? 2 : 0);
                for (int o = 0; o < out; o++) {
                    for (int row = 0; row < rows; row++) {
                        float one = sq_quant_dot_q8(w + (size_t)o * nb * bb, t, xq + (size_t)row * xs, n) + 0.5f;
                        CHECKF(!memcmp(&one, &ref[row][o], 4), "%s x %d blocks, %s: %.9g vs C %.9g", sq_dtype_name(t),
                               nb, sq_quant_q8_impl(), one, ref[row][o]);
                    }
                    for (int k = 1; k <= rows; k++) { /* k rows at a time */
                        for (int r0 = 0; r0 < rows; r0 += k)
                            sq_quant_dot_q8_rows(&got[r0][o], 3, w + (size_t)o * nb * bb, t, xq + (size_t)r0 * xs, xs,
                                                 SQ_MIN(k, rows - r0), n, 0.5f);
                        for (int row = 0; row < rows; row++)
                            CHECKF(!memcmp(&got[row][o], &ref[row][o], 4), "%s, %s, %d rows at a time: row %d",
                                   sq_dtype_name(t), sq_quant_q8_impl(), k, row);
                    }
                }
            }
            sq_quant_q8_force(0);
            free(w), free(xq), free(deq), free(xd);
        }
    }
}

/* sq_quant_matmul_part and sq_quant_matmul_part_q8 (the batch-1 phases' entry, on rows
 * rounded beforehand) on every ISA against the C reference, bit
 * for bit: 1-3 rows, output ranges that start and end anywhere (so the 8- and 4-output
 * groups of the one-row VNNI kernel meet every remainder), a bias or none, an all-zero
 * weight row, a row of zero activations and an odd number of blocks. */
SQ_TEST(q8_matmul_part_equals_the_c_reference_on_every_isa) {
    sq_rng r;
    sq_rng_seed(&r, 31);
    const char *impl = sq_quant_q8_impl();
    int levels = strcmp(impl, "avx512vnni") == 0 ? 3 : strcmp(impl, "avx2") == 0 ? 2 : 1;
    enum { OUT = 29 };
    for (size_t ti = 0; ti < SQ_ARRAY_LEN(TYPES); ti++) {
        sq_dtype t = TYPES[ti];
        int per = sq_dtype_block(t, NULL);
        size_t bb;
        sq_dtype_block(t, &bb);
        for (int nb = 1; nb <= 7; nb += 3) {
            int n = per * nb;
            uint8_t *w = random_blocks(t, nb * OUT, &r);
            memset(w + (size_t)5 * nb * bb, 0, (size_t)nb * bb); /* output 5: all zero */
            sq_view v = {w, t, 2, {OUT, n}};
            float *x = malloc(sizeof(float) * 3 * (size_t)n), bias[OUT];
            for (int row = 0; row < 3; row++) {
                float *a = act_row(n, &r);
                memcpy(x + (size_t)row * n, a, sizeof(float) * (size_t)n);
                free(a);
            }
            for (int i = 0; i < n; i++) x[2 * (size_t)n + i] = 0; /* row 2: all zero */
            for (int o = 0; o < OUT; o++) bias[o] = (float)sq_rng_normal(&r);
            for (int rows = 1; rows <= 3; rows++)
                for (int bi = 0; bi < 2; bi++) {
                    float ref[3 * OUT], got[3 * OUT];
                    sq_quant_q8_force(1);
                    sq_quant_matmul_part(ref, x, rows, &v, bi ? bias : NULL, 0, OUT);
                    for (int lv = 0; lv < levels; lv++) {
                        sq_quant_q8_force(lv == 0 ? 1 : lv == 1 ? 2 : 0);
                        const int cuts[][2] = {{0, OUT}, {0, 13}, {13, OUT}, {1, 10}, {10, 27}, {27, OUT + 5}};
                        for (size_t c = 0; c < SQ_ARRAY_LEN(cuts); c++) {
                            memset(got, 0x7f, sizeof got);
                            sq_quant_matmul_part(got, x, rows, &v, bi ? bias : NULL, cuts[c][0], cuts[c][1]);
                            for (int row = 0; row < rows; row++)
                                for (int o = cuts[c][0]; o < SQ_MIN(cuts[c][1], OUT); o++)
                                    CHECKF(!memcmp(&got[row * OUT + o], &ref[row * OUT + o], 4),
                                           "%s x %d blocks, %s, %d rows, outputs %d-%d: row %d output %d %.9g vs C %.9g",
                                           sq_dtype_name(t), nb, sq_quant_q8_impl(), rows, cuts[c][0], cuts[c][1], row,
                                           o, got[row * OUT + o], ref[row * OUT + o]);
                            /* the phased step's entry: rows rounded beforehand, then the same ranges */
                            int kind = sq_quant_act_kind(t);
                            size_t xs = sq_quant_act_bytes(kind, n);
                            uint8_t *xq = sq_malloc_aligned(xs * 3);
                            for (int row = 0; row < rows; row++)
                                sq_quant_act_row(xq + (size_t)row * xs, x + (size_t)row * n, kind, n);
                            memset(got, 0x7f, sizeof got);
                            sq_quant_matmul_part_q8(got, xq, xs, rows, &v, bi ? bias : NULL, cuts[c][0], cuts[c][1]);
                            for (int row = 0; row < rows; row++)
                                for (int o = cuts[c][0]; o < SQ_MIN(cuts[c][1], OUT); o++)
                                    CHECKF(!memcmp(&got[row * OUT + o], &ref[row * OUT + o], 4),
                                           "%s x %d blocks, %s, %d rows, rounded rows, outputs %d-%d: row %d output %d",
                                           sq_dtype_name(t), nb, sq_quant_q8_impl(), rows, cuts[c][0], cuts[c][1], row,
                                           o);
                            free(xq);
                        }
                    }
                    sq_quant_q8_force(0);
                }
            free(w), free(x);
        }
    }
}

/* A NaN weight scale or a NaN activation: the dot is NaN on every path (never finite). */
SQ_TEST(q8_nan_propagates) {
    sq_rng r;
    sq_rng_seed(&r, 29);
    for (size_t ti = 0; ti < SQ_ARRAY_LEN(TYPES); ti++) {
        sq_dtype t = TYPES[ti];
        int per = sq_dtype_block(t, NULL), kind = sq_quant_act_kind(t), n = per * 2;
        size_t bb;
        sq_dtype_block(t, &bb);
        uint8_t *w = random_blocks(t, 2, &r), *xq = malloc(sq_quant_act_bytes(kind, n));
        float *x = act_row(n, &r);
        sq_quant_act_row(xq, x, kind, n);
        uint16_t nan = 0x7e00;
        memcpy(w + bb + (t == SQ_Q6_K ? 208 : 0), &nan, 2);
        for (int lv = 1; lv <= 2; lv++) {
            sq_quant_q8_force(lv == 1 ? 1 : 0);
            CHECKF(isnan(sq_quant_dot_q8(w, t, xq, n)), "%s (%s): NaN scale gave a number", sq_dtype_name(t),
                   sq_quant_q8_impl());
        }
        x[3] = NAN;
        sq_quant_act_row(xq, x, kind, n);
        uint8_t *w2 = random_blocks(t, 2, &r);
        for (int lv = 1; lv <= 2; lv++) {
            sq_quant_q8_force(lv == 1 ? 1 : 0);
            CHECKF(isnan(sq_quant_dot_q8(w2, t, xq, n)), "%s (%s): NaN activation gave a number", sq_dtype_name(t),
                   sq_quant_q8_impl());
        }
        sq_quant_q8_force(0);
        free(w), free(w2), free(xq), free(x);
    }
}

SQ_TEST(nan_and_inf_scales_are_found) {
    sq_rng r;
    sq_rng_seed(&r, 3);
    for (size_t ti = 0; ti < SQ_ARRAY_LEN(TYPES); ti++) {
        sq_dtype t = TYPES[ti];
        size_t bb;
        int per = sq_dtype_block(t, &bb);
        uint8_t *q = random_blocks(t, 4, &r);
        CHECK_EQ_INT(sq_quant_find_bad_block(q, t, 4 * per), -1);
        int at = t == SQ_Q6_K ? 208 : 0;
        uint16_t nan = 0x7e00, inf = 0xfc00;
        memcpy(q + 2 * bb + at, &nan, 2);
        CHECK_EQ_INT(sq_quant_find_bad_block(q, t, 4 * per), 2);
        memcpy(q + bb + at, &inf, 2);
        CHECK_EQ_INT(sq_quant_find_bad_block(q, t, 4 * per), 1);
        free(q);
    }
}

static const char *smollm2(void) {
    static char *path;
    sq_err e;
    if (!path && sq_models_resolve("smollm2-135m-instruct", &path, &e) != 1) path = NULL;
    return path;
}

/* A NaN scale in one block of a real file: a load error naming the tensor and the offset. */
SQ_TEST(smollm2_nan_scale_is_a_load_error) {
    const char *src = smollm2();
    if (!src) SKIP("smollm2-135m-instruct not installed (scripts/install-deps.sh installs it)");
    char *data;
    size_t len;
    sq_err e;
    REQUIRE(sq_file_read_all(src, &data, &len, &e) == 0);
    sq_gguf g;
    REQUIRE(sq_gguf_parse(&g, (const uint8_t *)data, len, "x", &e) == 0);
    const sq_gguf_tensor *t = sq_gguf_find_tensor(&g, "blk.3.ffn_up.weight");
    REQUIRE(t && t->ggml_type == 3);
    size_t off = (size_t)(t->data - (const uint8_t *)data) + 7 * 20; /* block 7's d */
    sq_gguf_close(&g);
    data[off] = 0x00;
    data[off + 1] = 0x7e;
    char *bad = sq_path_join(sq_test_tmpdir(), "nan.gguf");
    REQUIRE(sq_file_write_atomic(bad, data, len, &e) == 0);
    sq_model *m = NULL;
    CHECK(sq_model_open(&m, bad, &e) < 0);
    CHECKF(strstr(e.msg, "blk.3.ffn_up.weight") && strstr(e.msg, "NaN") && strstr(e.msg, "Q4_1 block 7"),
           "message: %s", e.msg);
    char want[32];
    snprintf(want, sizeof want, "offset %zu", off);
    CHECKF(strstr(e.msg, want) != NULL, "message lacks %s: %s", want, e.msg);
    CHECK(m == NULL);
    free(bad);
    free(data);
}

/* Prefill of a prompt and token-by-token decode give the same logits bit for bit. */
SQ_TEST(smollm2_prefill_equals_decode) {
    const char *path = smollm2();
    if (!path) SKIP("smollm2-135m-instruct not installed (scripts/install-deps.sh installs it)");
    sq_err e;
    sq_model *m;
    REQUIRE(sq_model_open(&m, path, &e) == 0 || (fprintf(stderr, "%s\n", e.msg), 0));
    for (int act = 0; act < 2; act++) {
    sq_quant_act_set(act ? SQ_ACT_F32 : SQ_ACT_Q8);
    CHECK(m->layers[0].wq.dtype == SQ_Q4_1 && m->tok_emb.dtype == SQ_Q8_0 && m->lm_head.dtype == SQ_Q8_0);
    enum { N = 4, V = 49152 };
    int32_t ids[N] = {1, 504, 3458, 282}, pos[N], blocks[2] = {0, 1}, rows[N];
    const int32_t *bt[N];
    for (int i = 0; i < N; i++) pos[i] = i, bt[i] = blocks, rows[i] = i;
    sq_kv_pool kv1, kv2;
    REQUIRE(sq_kv_pool_init(&kv1, m, 2, 16, &e) == 0 && sq_kv_pool_init(&kv2, m, 2, 16, &e) == 0);
    sq_fwd *f;
    REQUIRE(sq_fwd_new(&f, m, N, N, 32, &e) == 0);
    float *all = malloc((size_t)N * V * 4), *one = malloc((size_t)V * 4);
    sq_batch b = {N, ids, pos, bt, N, rows};
    REQUIRE(sq_model_forward(m, f, &kv1, &b, all, &e) == 0);
    for (int i = 0; i < N; i++) {
        int32_t r0 = 0;
        sq_batch s = {1, ids + i, pos + i, bt, 1, &r0};
        REQUIRE(sq_model_forward(m, f, &kv2, &s, one, &e) == 0);
        CHECKF(!memcmp(one, all + (size_t)i * V, (size_t)V * 4), "%s: position %d differs", sq_act_type_name(act), i);
    }
    free(all), free(one);
    sq_fwd_free(f);
    sq_kv_pool_free(&kv1), sq_kv_pool_free(&kv2);
    }
    sq_quant_act_set(SQ_ACT_Q8);
    sq_model_close(m);
}
