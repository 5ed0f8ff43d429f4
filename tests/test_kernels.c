/* kernels: every path against a plain double-precision reference, and the batch invariance
 * the engine's reproducibility rests on. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/kernels.h"
#include "test.h"

static float frand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) * (1.0 / (1 << 24)) * 2 - 1);
}

static void fill(float *x, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++) x[i] = frand(&seed);
}

SQ_TEST(matmul_f32_matches_reference_and_is_batch_invariant) {
    int in = 37, out = 11, rows = 7; /* odd sizes: vector tails and a partial block of 4 */
    float *x = malloc(sizeof(float) * rows * in), *w = malloc(sizeof(float) * out * in), bias[11];
    float *y = malloc(sizeof(float) * rows * out), one[11];
    fill(x, (size_t)rows * in, 1);
    fill(w, (size_t)out * in, 2);
    fill(bias, 11, 3);
    sq_matmul_f32(y, x, rows, w, in, out, bias);
    for (int r = 0; r < rows; r++) {
        for (int o = 0; o < out; o++) {
            double s = bias[o];
            for (int i = 0; i < in; i++) s += (double)x[r * in + i] * w[o * in + i];
            CHECK_NEAR(y[r * out + o], s, 1e-5);
        }
        sq_matmul_f32(one, x + r * in, 1, w, in, out, bias);
        CHECK(!memcmp(one, y + r * out, sizeof one)); /* bit for bit */
    }
    free(x);
    free(w);
    free(y);
}

/* Every row count against a double-precision reference, and each row alone (the GEMV) bit
 * for bit against the batch (the GEMM); BF16 weights, or F16 ones (f16: the same kernels,
 * another exact widening). */
static void check_16bit_matmul(int in, int out, const int *sizes, int n_sizes, int f16) {
    int maxr = sizes[n_sizes - 1];
    float *x = malloc(sizeof(float) * maxr * in), *wf = malloc(sizeof(float) * out * in);
    float *bias = malloc(sizeof(float) * out);
    uint16_t *w = malloc(2 * (size_t)out * in), *xb = malloc(2 * (size_t)maxr * in);
    float *y = malloc(sizeof(float) * maxr * out), *y1 = malloc(sizeof(float) * out);
    fill(x, (size_t)maxr * in, 4);
    fill(wf, (size_t)out * in, 5);
    fill(bias, (size_t)out, 6);
    for (int i = 0; i < out * in; i++) w[i] = f16 ? sq_f32_to_f16(wf[i]) : sq_f32_to_bf16(wf[i]);
    sq_f32_to_bf16_row(xb, x, (size_t)maxr * in);
    sq_err e;
    sq_matmul_ctx *c;
    REQUIRE(sq_matmul_ctx_new(&c, &e) == 0);
    sq_view wv = {w, f16 ? SQ_F16 : SQ_BF16, 2, {out, in, 0, 0}};
    /* (1 would mean a path that rounds the activations to bf16: relative error 2^-8 each.) */
    double tol_rel = sq_matmul_bf16_needs_xb() ? 1e-2 : 1e-5;
    for (int si = 0; si < n_sizes; si++) {
        int rows = sizes[si];
        REQUIRE(sq_matmul(c, y, x, rows, &wv, bias, &e) == 0);
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < out; o++) {
                double s = bias[o], mag = 0;
                for (int i = 0; i < in; i++) {
                    double p = (double)x[r * in + i] * (f16 ? sq_f16_to_f32(w[o * in + i]) : sq_bf16_to_f32(w[o * in + i]));
                    s += p;
                    mag += fabs(p);
                }
                CHECKF(fabs(y[r * out + o] - s) <= tol_rel * mag + 1e-5, "%dx%d, rows %d: y[%d][%d] = %g, expected %g", in, out, rows,
                       r, o, y[r * out + o], s);
            }
        if (!sq_matmul_bf16_needs_xb()) /* our kernels: each row alone gives the same bits */
            for (int r = 0; r < rows; r++) {
                REQUIRE(sq_matmul(c, y1, x + r * in, 1, &wv, bias, &e) == 0);
                CHECKF(!memcmp(y1, y + r * out, sizeof(float) * out), "%dx%d, rows %d: row %d alone differs", in, out,
                       rows, r);
            }
    }
    sq_matmul_ctx_free(c);
    sq_view bad = {w, SQ_I32, 2, {out, in, 0, 0}};
    CHECK(sq_matmul(NULL, y, x, 1, &bad, NULL, &e) == SQ_EUNSUP);
    free(x);
    free(wf);
    free(w);
    free(xb);
    free(y);
    free(y1);
    free(bias);
}

static void check_16bit_paths(int f16) {
    int small[] = {1, 3, 4, 9, 19};
    check_16bit_matmul(200, 13, small, 5, f16);
    /* Past one input chunk (512), a tail of 4 inputs, output tiles cut short, past one row block
     * (64), odd row counts. */
    int big[] = {1, 2, 5, 67};
    check_16bit_matmul(1100, 41, big, 4, f16);
    int tiny[] = {1, 4, 7};
    check_16bit_matmul(5, 3, tiny, 3, f16); /* no full group of 8 inputs at all */
    check_16bit_matmul(12, 5, tiny, 3, f16); /* one group of 8 but none of 16 (the AVX-512 width) */
}

SQ_TEST(matmul_bf16_paths_match_reference) { check_16bit_paths(0); }

/* F16 weights stay F16 and go through the same kernels, widened by vcvtph2ps. */
SQ_TEST(matmul_f16_paths_match_reference) { check_16bit_paths(1); }

SQ_TEST(rows_kernels) {
    float x[6] = {1, -2, 3, 0.5f, 0, -1}, w[3] = {1, 2, 0.5f}, o[6];
    sq_rmsnorm(o, x, w, 2, 3, 1e-5f);
    double ms = (1 + 4 + 9) / 3.0;
    CHECK_NEAR(o[1], -2 / sqrt(ms + 1e-5) * 2, 1e-5);
    CHECK_NEAR(o[5], -1 / sqrt((0.25 + 0 + 1) / 3.0 + 1e-5) * 0.5, 1e-5);
    float s[4] = {1, 2, 3, 1000};
    sq_softmax(s, 4);
    CHECK_NEAR(s[3], 1.0, 1e-6);
    CHECK_NEAR(s[0] + s[1] + s[2] + s[3], 1.0, 1e-6);
    float g[2] = {1, -3}, u[2] = {2, 0.5f};
    sq_swiglu(g, u, 2);
    CHECK_NEAR(g[0], 1 / (1 + exp(-1.0)) * 2, 1e-6);
    CHECK_NEAR(g[1], -3 / (1 + exp(3.0)) * 0.5, 1e-6);
    uint16_t h[5] = {0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00};
    float f[5];
    sq_f16_to_f32_row(f, h, 5);
    CHECK(f[0] == 1.0f && f[1] == -2.0f && f[2] == 65504.0f && f[3] == ldexpf(1, -24) && isinf(f[4]));
    uint8_t blk[34] = {0x00, 0x38}; /* scale 0.5 */
    for (int i = 0; i < 32; i++) blk[2 + i] = (uint8_t)(int8_t)(i - 16);
    float q[32];
    sq_q8_0_to_f32_row(q, blk, 32);
    CHECK(q[0] == -8.0f && q[31] == 7.5f);
}

/* The engine's SwiGLU and RMSNorm bodies (AVX-512, AVX2, plain C, chosen at run time) give
 * the same bits, at every length (vector tails, masked lanes) and however a row is cut, and
 * stay close to a double-precision reference (the exp is a polynomial, not libm's). */
SQ_TEST(engine_row_kernels_same_bits_every_isa) {
    enum { N = 4864 + 13 };
    float *g0 = malloc(sizeof(float) * N), *u = malloc(sizeof(float) * N), *ref = malloc(sizeof(float) * N);
    float *g = malloc(sizeof(float) * N), *cut = malloc(sizeof(float) * N);
    fill(g0, N, 11);
    fill(u, N, 12);
    for (int i = 0; i < N; i++) g0[i] *= 12; /* the gate's range, past where exp(-g) is tiny or huge */
    g0[0] = 95.0f, g0[1] = -95.0f, g0[2] = 0.0f, g0[3] = -0.0f, g0[4] = 88.7f, g0[5] = -87.5f;
    const char *names[3];
    for (int level = 0; level < 3; level++) {
        names[level] = sq_rows_isa_force(level);
        memcpy(g, g0, sizeof(float) * N);
        sq_swiglu(g, u, N);
        if (level == 0) {
            memcpy(ref, g, sizeof(float) * N);
            for (int i = 0; i < N; i++) {
                double want = g0[i] / (1 + exp(-(double)g0[i])) * u[i];
                CHECK_NEAR(g[i], want, 4e-7 * fabs(want) + 1e-30);
            }
        }
        CHECK(!memcmp(g, ref, sizeof(float) * N));
        /* cut at every offset 0..17 and in pieces of 1..33: the same values */
        memcpy(cut, g0, sizeof(float) * N);
        for (int at = 0, len = 1; at < N; at += len, len = len % 33 + 1)
            sq_swiglu(cut + at, u + at, (size_t)SQ_MIN(len, N - at));
        CHECK(!memcmp(cut, ref, sizeof(float) * N));
    }
    CHECK(!strcmp(names[2], "c"));
    /* RMSNorm, alone and fused with the residual add, rows of several lengths */
    int lens[] = {896, 1, 7, 16, 17, 33, 576, 2048 + 5};
    for (size_t li = 0; li < SQ_ARRAY_LEN(lens); li++) {
        int n = lens[li], rows = 3;
        float *x = malloc(sizeof(float) * n * rows), *t = malloc(sizeof(float) * n * rows), *w = malloc(sizeof(float) * n);
        float *o = malloc(sizeof(float) * n * rows), *o0 = malloc(sizeof(float) * n * rows);
        float *xa = malloc(sizeof(float) * n * rows), *oa = malloc(sizeof(float) * n * rows);
        fill(x, (size_t)n * rows, 20 + li);
        fill(t, (size_t)n * rows, 40 + li);
        fill(w, (size_t)n, 60 + li);
        for (int level = 0; level < 3; level++) {
            sq_rows_isa_force(level);
            sq_rmsnorm(o, x, w, rows, n, 1e-6f);
            if (level == 0) {
                memcpy(o0, o, sizeof(float) * n * rows);
                for (int r = 0; r < rows; r++) {
                    double ss = 0;
                    for (int i = 0; i < n; i++) ss += (double)x[r * n + i] * x[r * n + i];
                    double inv = 1 / sqrt(ss / n + 1e-6);
                    for (int i = 0; i < n; i++) CHECK_NEAR(o[r * n + i], x[r * n + i] * inv * w[i], 1e-5 * fabs(x[r * n + i] * inv * w[i]) + 1e-7);
                }
            }
            CHECK(!memcmp(o, o0, sizeof(float) * n * rows));
            /* fused add + norm == add then norm, bit for bit */
            memcpy(xa, x, sizeof(float) * n * rows);
            sq_add_rmsnorm(oa, xa, t, w, rows, n, 1e-6f);
            for (int i = 0; i < n * rows; i++) x[i] += t[i];
            sq_rmsnorm(o, x, w, rows, n, 1e-6f);
            CHECK(!memcmp(xa, x, sizeof(float) * n * rows));
            CHECK(!memcmp(oa, o, sizeof(float) * n * rows));
            for (int i = 0; i < n * rows; i++) x[i] -= t[i]; /* not exact: refill instead */
            fill(x, (size_t)n * rows, 20 + li);
        }
        free(x), free(t), free(w), free(o), free(o0), free(xa), free(oa);
    }
    sq_rows_isa_force(0);
    free(g0), free(u), free(ref), free(g), free(cut);
}

SQ_TEST(rope_layouts_agree_and_scaling) {
    int d = 8;
    sq_rope hf, gg;
    REQUIRE(sq_rope_init(&hf, d, 10000, 0, 1, 0, 0, 2048, 0) == 0);
    REQUIRE(sq_rope_init(&gg, d, 10000, 0, 1, 0, 0, 2048, 1) == 0);
    float c[4], s[4], v[8], p[8];
    sq_rope_angles(&hf, 0, c, s);
    CHECK(c[0] == 1 && s[3] == 0);
    sq_rope_angles(&hf, 7, c, s);
    fill(v, 8, 9);
    /* GGUF layout: element (i, i + d/2) of HF's order sits at (2i, 2i + 1). */
    for (int i = 0; i < 4; i++) p[2 * i] = v[i], p[2 * i + 1] = v[i + 4];
    sq_rope_apply(&hf, v, 1, c, s);
    sq_rope_apply(&gg, p, 1, c, s);
    for (int i = 0; i < 4; i++) {
        CHECK(v[i] == p[2 * i]);
        CHECK(v[i + 4] == p[2 * i + 1]);
    }
    /* llama3: the highest frequency is kept, the lowest divided by the factor. */
    sq_rope l3;
    REQUIRE(sq_rope_init(&l3, 128, 500000, 3, 8, 1, 4, 8192, 0) == 0);
    CHECK(l3.inv_freq[0] == 1.0f);
    CHECK_NEAR(l3.inv_freq[63], 1.0f / powf(500000, 126.0f / 128) / 8, 1e-12);
    sq_rope lin;
    REQUIRE(sq_rope_init(&lin, 8, 10000, 1, 4, 0, 0, 2048, 0) == 0);
    CHECK_NEAR(lin.inv_freq[1], 0.1f / 4, 1e-9);
    CHECK(sq_rope_init(&lin, 7, 10000, 0, 1, 0, 0, 2048, 0) == SQ_ERANGE);
}

/* Head sizes 8 and 72 (a 64-wide register block plus a tail of 8); 10 positions (the dot
 * products go four at a time, then a tail). */
SQ_TEST(paged_attention_matches_naive) {
    enum { H = 4, KVH = 2, DMAX = 72, BS = 3, NPOS = 10 };
    int32_t blocks[4] = {2, 0, 3, 1};
    static float kpool[4 * BS * KVH * DMAX], vpool[4 * BS * KVH * DMAX], q[H * DMAX], out[H * DMAX];
    float scratch[NPOS];
    for (int D = 8; D <= DMAX; D += DMAX - 8) {
        fill(kpool, SQ_ARRAY_LEN(kpool), 11);
        fill(vpool, SQ_ARRAY_LEN(vpool), 12);
        fill(q, SQ_ARRAY_LEN(q), 13);
        sq_attn_args a = {kpool, vpool, blocks, BS, KVH * D, H, KVH, D, SQ_KV_F32};
        for (int start = 0; start <= 4; start += 4)
            for (int h = 0; h < H; h++) {
                sq_attention_head(&a, q, h, start, NPOS, scratch, out);
                int kh = h / (H / KVH);
                double sc[NPOS], mx = -1e30, z = 0;
                for (int p = start; p < NPOS; p++) {
                    const float *k = kpool + ((size_t)blocks[p / BS] * BS + p % BS) * KVH * D + kh * D;
                    sc[p] = 0;
                    for (int i = 0; i < D; i++) sc[p] += (double)q[h * D + i] * k[i];
                    sc[p] /= sqrt(D);
                    mx = sc[p] > mx ? sc[p] : mx;
                }
                for (int p = start; p < NPOS; p++) z += exp(sc[p] - mx);
                for (int i = 0; i < D; i++) {
                    double o = 0;
                    for (int p = start; p < NPOS; p++)
                        o += exp(sc[p] - mx) / z * vpool[((size_t)blocks[p / BS] * BS + p % BS) * KVH * D + kh * D + i];
                    CHECKF(fabs(out[h * D + i] - o) <= 1e-5, "D %d head %d start %d out[%d] %g, expected %g", D, h,
                           start, i, out[h * D + i], o);
                }
            }
    }
}
