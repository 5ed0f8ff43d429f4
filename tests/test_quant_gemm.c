/* The batched 8-bit-activation matmul (quant_q8_gemm.c and its tile kernels): for every
 * weight type and every ISA the machine has, 1 to 70 rows at once (1-24, 31-33, 63-70: every
 * remainder of the row groups) against odd output counts give the C reference's bits
 * (sq_quant_dot_q8 on the C code, plus the bias) and the bits of the same rows run one at a
 * time; two matrices in one call (q/k/v style) each get their own, also when 32-value-block
 * and K types share a call; long rows (the tile's chunks of blocks) too; a NaN weight scale or a NaN activation gives NaN in exactly the
 * outputs it touches. */
#include <math.h>
#include <stdlib.h>

#include "../src/kernels/quant_q8_gemm.h"
#include "scalequest/kernels.h"
#include "scalequest/quant.h"
#include "quant_blocks.h"
#include "test.h"

/* Rows of normal values, a zero block in some, an outlier in the last block of each. */
static float *act_rows(int rows, int n, sq_rng *r) {
    float *x = malloc((size_t)rows * n * 4);
    for (int i = 0; i < rows * n; i++) x[i] = (float)sq_rng_normal(r);
    for (int row = 0; row < rows; row++) {
        if (row % 3 == 1)
            for (int i = 0; i < 32; i++) x[(size_t)row * n + i] = 0;
        x[(size_t)row * n + n - 1] = 40.0f * (row % 2 ? -1 : 1);
    }
    return x;
}

static int levels(void) {
    const char *impl = sq_quant_q8_impl();
    return strcmp(impl, "avx512vnni") == 0 ? 3 : strcmp(impl, "avx2") == 0 ? 2 : 1;
}
static void force(int lv) { sq_quant_q8_force(lv == 0 ? 1 : lv == 1 ? 2 : 0); } /* 0 C, 1 AVX2, 2 best */

static int same(float a, float b) { return (isnan(a) && isnan(b)) || !memcmp(&a, &b, 4); }

typedef struct {
    sq_dtype t;
    int n, out[2];
    uint8_t *w[2];
    sq_view v[2];
    float *bias;
} mats;

static void mats_make(mats *m, sq_dtype t, int nb, int out0, int out1, sq_rng *r) {
    int per = sq_dtype_block(t, NULL);
    size_t bb;
    sq_dtype_block(t, &bb);
    m->t = t, m->n = per * nb, m->out[0] = out0, m->out[1] = out1;
    for (int k = 0; k < 2; k++) {
        m->w[k] = random_blocks(t, nb * m->out[k], r);
        m->v[k] = (sq_view){.data = m->w[k], .dtype = t, .ndim = 2, .shape = {m->out[k], m->n}};
    }
    m->bias = malloc((size_t)out0 * 4);
    for (int o = 0; o < out0; o++) m->bias[o] = (float)(sq_rng_uniform(r) - 0.5);
}
static void mats_free(mats *m) { free(m->w[0]), free(m->w[1]), free(m->bias); }

/* ref[k][r * out + o]: the C reference's dot of row r, output o of matrix k (+ bias for k 0). */
static void reference(const mats *m, const float *x, int rows, float *ref[2]) {
    int kind = sq_quant_act_kind(m->t);
    size_t bb, xs = sq_quant_act_bytes(kind, m->n), rb = (size_t)(m->n / sq_dtype_block(m->t, &bb)) * bb;
    uint8_t *xq = malloc(xs);
    sq_quant_q8_force(1);
    for (int r = 0; r < rows; r++) {
        sq_quant_act_row(xq, x + (size_t)r * m->n, kind, m->n);
        for (int k = 0; k < 2; k++)
            for (int o = 0; o < m->out[k]; o++)
                ref[k][(size_t)r * m->out[k] + o] =
                    sq_quant_dot_q8(m->w[k] + (size_t)o * rb, m->t, xq, m->n) + (k == 0 ? m->bias[o] : 0.0f);
    }
    sq_quant_q8_force(0);
    free(xq);
}

static int run(const mats *m, const float *x, int rows, float *y[2], void **buf, size_t *cap) {
    sq_err e = {0};
    const sq_view *ws[2] = {&m->v[0], &m->v[1]};
    const float *bs[2] = {m->bias, NULL};
    return sq_quant_matmul_n(buf, cap, 2, y, x, rows, ws, bs, &e);
}

SQ_TEST(batched_rows_equal_the_c_reference_on_every_isa) {
    sq_rng r;
    sq_rng_seed(&r, 41);
    int nl = levels(), R = 70;
    void *buf = NULL;
    size_t cap = 0;
    for (size_t ti = 0; ti < SQ_ARRAY_LEN(TYPES); ti++) {
        sq_dtype t = TYPES[ti];
        int k256 = sq_dtype_block(t, NULL) == 256;
        mats m;
        mats_make(&m, t, k256 ? 3 : 9, 19, 5, &r); /* odd block and output counts: tails everywhere */
        float *x = act_rows(R, m.n, &r);
        float *ref[2] = {malloc((size_t)R * 19 * 4), malloc((size_t)R * 5 * 4)};
        float *y[2] = {malloc((size_t)R * 19 * 4), malloc((size_t)R * 5 * 4)};
        reference(&m, x, R, ref);
        for (int lv = 0; lv < nl; lv++) {
            force(lv);
            int bad = 0;
            for (int rows = 1; rows <= R && !bad; rows++) {
                if (lv == 0 && rows > 9 && rows != 33 && rows != R) continue; /* the C code: a few sizes */
                if (rows > 24 && (rows < 31 || rows > 33) && rows < 63) continue; /* every remainder, less time */
                for (int k = 0; k < 2; k++) memset(y[k], 0xff, (size_t)R * m.out[k] * 4);
                REQUIRE(run(&m, x, rows, y, &buf, &cap) == 0);
                for (int k = 0; k < 2 && !bad; k++)
                    for (int i = 0; i < rows * m.out[k] && !bad; i++)
                        if (!same(y[k][i], ref[k][i])) {
                            bad = 1;
                            sq_test_fail(__FILE__, __LINE__, "%s, %s, %d rows: matrix %d row %d output %d: %.9g, C %.9g",
                                         sq_dtype_name(t), sq_quant_q8_impl(), rows, k, i / m.out[k], i % m.out[k],
                                         y[k][i], ref[k][i]);
                        }
            }
            /* batched == sequential: the same rows one call each */
            for (int row = 0; row < 37 && !bad; row++) {
                float one0[19], one1[5];
                float *yy[2] = {one0, one1};
                REQUIRE(run(&m, x + (size_t)row * m.n, 1, yy, &buf, &cap) == 0);
                bad = memcmp(one0, ref[0] + (size_t)row * 19, sizeof one0) || memcmp(one1, ref[1] + (size_t)row * 5, sizeof one1);
                CHECKF(!bad, "%s, %s: row %d alone differs from the batch", sq_dtype_name(t), sq_quant_q8_impl(), row);
            }
        }
        sq_quant_q8_force(0);
        free(x), free(ref[0]), free(ref[1]), free(y[0]), free(y[1]);
        mats_free(&m);
    }
    free(buf);
}

/* Small odd output counts (a tile less than full, one output alone) at 4..9 rows. */
SQ_TEST(batched_small_output_counts) {
    sq_rng r;
    sq_rng_seed(&r, 43);
    int nl = levels();
    void *buf = NULL;
    size_t cap = 0;
    for (size_t ti = 0; ti < SQ_ARRAY_LEN(TYPES); ti++)
        for (int out = 1; out <= 9; out += 2) {
            sq_dtype t = TYPES[ti];
            mats m;
            mats_make(&m, t, sq_dtype_block(t, NULL) == 256 ? 1 : 3, out, 1, &r);
            float *x = act_rows(9, m.n, &r), *ref[2] = {malloc((size_t)9 * out * 4), malloc(9 * 4)};
            float *y[2] = {malloc((size_t)9 * out * 4), malloc(9 * 4)};
            reference(&m, x, 9, ref);
            for (int lv = 0; lv < nl; lv++) {
                force(lv);
                for (int rows = 4; rows <= 9; rows++) {
                    REQUIRE(run(&m, x, rows, y, &buf, &cap) == 0);
                    for (int k = 0; k < 2; k++)
                        CHECKF(!memcmp(y[k], ref[k], (size_t)rows * m.out[k] * 4), "%s, %s: %d outputs, %d rows",
                               sq_dtype_name(t), sq_quant_q8_impl(), out, rows);
                }
            }
            sq_quant_q8_force(0);
            free(x), free(ref[0]), free(ref[1]), free(y[0]), free(y[1]);
            mats_free(&m);
        }
    free(buf);
}

/* Long rows: a tile of more blocks than L1 holds beside the rows runs in chunks of blocks,
 * each chunk over up to 32 rows with the running sums kept between chunks (the VNNI tile):
 * block counts that give 2 and 3 chunks (the last one longer), rows that fill several row
 * batches and leave remainders, through sq_quant_matmul_n and through the rounded-once
 * ranges: the C reference's bits. */
SQ_TEST(batched_long_rows_in_chunks) {
    sq_rng r;
    sq_rng_seed(&r, 53);
    int nl = levels(), R = 71;
    static const int NB[] = {73, 150};
    static const int ROWS[] = {6, 33, 71};
    void *buf = NULL;
    size_t cap = 0;
    for (size_t ti = 0; ti < SQ_ARRAY_LEN(TYPES); ti++) {
        sq_dtype t = TYPES[ti];
        if (sq_dtype_block(t, NULL) == 256) continue; /* the K tile has no chunks */
        for (size_t ni = 0; ni < SQ_ARRAY_LEN(NB); ni++) {
            mats m;
            mats_make(&m, t, NB[ni], 11, 3, &r);
            float *x = act_rows(R, m.n, &r);
            float *ref[2] = {malloc((size_t)R * 11 * 4), malloc((size_t)R * 3 * 4)};
            float *y[2] = {malloc((size_t)R * 11 * 4), malloc((size_t)R * 3 * 4)};
            void *xb = sq_malloc_aligned(sq_quant_xrows_bytes(m.n, R)), *tile = malloc(sq_quant_tile_bytes(m.n));
            reference(&m, x, R, ref);
            for (int lv = 1; lv < nl; lv++) { /* the C code has no tiles */
                force(lv);
                for (size_t ri = 0; ri < SQ_ARRAY_LEN(ROWS); ri++) {
                    int rows = ROWS[ri];
                    REQUIRE(run(&m, x, rows, y, &buf, &cap) == 0);
                    for (int k = 0; k < 2; k++)
                        CHECKF(!memcmp(y[k], ref[k], (size_t)rows * m.out[k] * 4), "%s, %s, %d blocks, %d rows: matrix %d",
                               sq_dtype_name(t), sq_quant_q8_impl(), NB[ni], rows, k);
                    sq_quant_xrows q;
                    sq_quant_xrows_init(&q, xb, sq_quant_act_kind(t), m.n, rows);
                    sq_quant_xrows_round(&q, x, 0, rows);
                    memset(y[0], 0xff, (size_t)R * 11 * 4);
                    for (int o = 0; o < 11; o += 8) sq_quant_matmul_range_x(y[0], &q, rows, &m.v[0], m.bias, o, o + 8, tile);
                    CHECKF(!memcmp(y[0], ref[0], (size_t)rows * 11 * 4), "%s, %s, %d blocks, %d rows: ranges",
                           sq_dtype_name(t), sq_quant_q8_impl(), NB[ni], rows);
                }
            }
            sq_quant_q8_force(0);
            free(x), free(ref[0]), free(ref[1]), free(y[0]), free(y[1]), free(xb), free(tile);
            mats_free(&m);
        }
    }
    free(buf);
}

/* The VNNI tile's rows rounded straight from x (sq__q8g_round_vnni) are the bytes of
 * sq_quant_act_row (the C rounding, forced) put in the tile's form (sq__q8g_drow_vnni), and
 * its second copy is sq_quant_act_row's: on normal rows and on blocks of zeros, of
 * denormals, near FLT_MAX, with an inf or a NaN, of values on rounding ties, of one
 * negative maximum, and of scales whose f16 is subnormal or overflows. */
SQ_TEST(tile_rows_round_as_the_c_rounding) {
    if (strcmp(sq_quant_q8_impl(), "avx512vnni") != 0) SKIP("no AVX-512 VNNI on this CPU: no tile rows");
    sq_rng r;
    sq_rng_seed(&r, 59);
    enum { NB = 24, N = 32 * NB };
    float *x = malloc(N * 4);
    for (int rep = 0; rep < 40; rep++) {
        float scale = rep < 20 ? 1.0f : (float)pow(10.0, (double)(rep - 30) * 3.5); /* 1e-35 .. 1e31 */
        for (int i = 0; i < N; i++) x[i] = (float)sq_rng_normal(&r) * scale;
        for (int i = 0; i < 32; i++) x[32 + i] = 0.0f;                                    /* block 1: zeros */
        for (int i = 0; i < 32; i++) x[64 + i] = (float)(i - 16) * 1e-40f;                /* 2: denormals */
        for (int i = 0; i < 32; i++) x[96 + i] = (i & 1 ? -3.4e38f : 3.3e38f) * (float)(i + 1) / 32; /* 3: huge */
        x[128 + 7] = INFINITY;                                                             /* 4: an inf */
        x[160 + 30] = NAN;                                                                 /* 5: a NaN */
        for (int i = 0; i < 32; i++) x[192 + i] = (float)(i % 16) * 0.5f - 3.5f;          /* 6: ties at x * 127 / 127 */
        x[192 + 31] = 127.0f;
        for (int i = 0; i < 32; i++) x[224 + i] = (float)(i % 7) * 0.01f;                 /* 7: one negative max */
        x[224 + 9] = -5.0f;
        for (int i = 0; i < 32; i++) x[256 + i] = (float)(i - 20) * 1e-9f;                /* 8: f16 scale subnormal */
        for (int i = 0; i < 32; i++) x[288 + i] = 6e6f + (float)i;                        /* 9: d * sum overflows f16 */
        size_t xs = sq_quant_act_bytes(1, N), ds = sq__q8g_drow_bytes(N);
        uint8_t *q = malloc(xs), *want = malloc(ds), *got = malloc(ds), *q1 = malloc(xs);
        sq_quant_q8_force(1);
        sq_quant_act_row(q, x, 1, N);
        sq_quant_q8_force(0);
        sq__q8g_drow_vnni(want, q, NB);
        memset(got, 0x55, ds), memset(q1, 0x55, xs);
        sq__q8g_round_vnni(q1, got, x, NB);
        int bad = 0;
        for (size_t i = 0; i < ds && !bad; i++) bad = got[i] != want[i];
        CHECKF(!bad, "scale %g: the tile's row differs from the C rounding's", (double)scale);
        CHECKF(!memcmp(q1, q, xs), "scale %g: the second copy differs from sq_quant_act_row's", (double)scale);
        memset(got, 0x55, ds);
        sq__q8g_round_vnni(NULL, got, x, NB);
        CHECK(!memcmp(got, want, ds));
        free(q), free(want), free(got), free(q1);
    }
    free(x);
}

/* A NaN weight scale: NaN in that output of every row, nothing else; a NaN activation: NaN in
 * every output of that row, nothing else. */
SQ_TEST(batched_nan_stays_where_it_belongs) {
    sq_rng r;
    sq_rng_seed(&r, 47);
    int nl = levels(), R = 13;
    void *buf = NULL;
    size_t cap = 0;
    for (size_t ti = 0; ti < SQ_ARRAY_LEN(TYPES); ti++) {
        sq_dtype t = TYPES[ti];
        size_t bb;
        int nb = sq_dtype_block(t, &bb) == 256 ? 2 : 5;
        mats m;
        mats_make(&m, t, nb, 11, 3, &r);
        uint16_t nan = 0x7e00;
        memcpy(m.w[0] + ((size_t)5 * nb + 2 % nb) * bb + (t == SQ_Q6_K ? 208 : 0), &nan, 2); /* output 5 */
        float *x = act_rows(R, m.n, &r);
        x[(size_t)6 * m.n + 3] = NAN; /* row 6 */
        float *ref[2] = {malloc((size_t)R * 11 * 4), malloc((size_t)R * 3 * 4)};
        float *y[2] = {malloc((size_t)R * 11 * 4), malloc((size_t)R * 3 * 4)};
        reference(&m, x, R, ref);
        for (int lv = 0; lv < nl; lv++) {
            force(lv);
            REQUIRE(run(&m, x, R, y, &buf, &cap) == 0);
            for (int row = 0; row < R; row++)
                for (int o = 0; o < 11; o++) {
                    float v = y[0][row * 11 + o];
                    CHECKF(!!isnan(v) == (row == 6 || o == 5), "%s, %s: row %d output %d: %g", sq_dtype_name(t),
                           sq_quant_q8_impl(), row, o, v);
                    CHECK(same(v, ref[0][row * 11 + o]));
                }
            for (int i = 0; i < R * 3; i++) CHECK(!!isnan(y[1][i]) == (i / 3 == 6));
        }
        sq_quant_q8_force(0);
        free(x), free(ref[0]), free(ref[1]), free(y[0]), free(y[1]);
        mats_free(&m);
    }
    free(buf);
}

/* One call with 32-value-block and K-type matrices (a Q4_K_M file's q/k/v): each its own
 * rounding, each equal to the C reference. */
SQ_TEST(batched_mixed_block_kinds_in_one_call) {
    sq_rng r;
    sq_rng_seed(&r, 53);
    int nl = levels(), R = 11, n = 512;
    const sq_dtype ts[3] = {SQ_Q4_1, SQ_Q6_K, SQ_Q8_0};
    const int outs[3] = {9, 7, 3};
    uint8_t *w[3];
    sq_view v[3];
    float *ref[3], *y[3];
    for (int k = 0; k < 3; k++) {
        size_t bb;
        int per = sq_dtype_block(ts[k], &bb);
        w[k] = random_blocks(ts[k], n / per * outs[k], &r);
        v[k] = (sq_view){.data = w[k], .dtype = ts[k], .ndim = 2, .shape = {outs[k], n}};
        ref[k] = malloc((size_t)R * outs[k] * 4), y[k] = malloc((size_t)R * outs[k] * 4);
    }
    float *x = act_rows(R, n, &r);
    sq_quant_q8_force(1);
    for (int k = 0; k < 3; k++) {
        int kind = sq_quant_act_kind(ts[k]), per = sq_dtype_block(ts[k], NULL);
        size_t bb, xs = sq_quant_act_bytes(kind, n);
        sq_dtype_block(ts[k], &bb);
        uint8_t *xq = malloc(xs);
        for (int row = 0; row < R; row++) {
            sq_quant_act_row(xq, x + (size_t)row * n, kind, n);
            for (int o = 0; o < outs[k]; o++)
                ref[k][row * outs[k] + o] = sq_quant_dot_q8(w[k] + (size_t)o * (n / per) * bb, ts[k], xq, n) + 0.0f;
        }
        free(xq);
    }
    void *buf = NULL;
    size_t cap = 0;
    const sq_view *ws[3] = {&v[0], &v[1], &v[2]};
    const float *bs[3] = {NULL, NULL, NULL};
    for (int lv = 0; lv < nl; lv++) {
        force(lv);
        sq_err e = {0};
        REQUIRE(sq_quant_matmul_n(&buf, &cap, 3, y, x, R, ws, bs, &e) == 0);
        for (int k = 0; k < 3; k++)
            CHECKF(!memcmp(y[k], ref[k], (size_t)R * outs[k] * 4), "%s in a mixed call, %s", sq_dtype_name(ts[k]),
                   sq_quant_q8_impl());
    }
    sq_quant_q8_force(0);
    for (int k = 0; k < 3; k++) free(w[k]), free(ref[k]), free(y[k]);
    free(x), free(buf);
}

/* The engine's phased step: x rounded once (sq_quant_xrows), then outputs by ranges that
 * start at multiples of the tile (sq_quant_matmul_range_x), on every ISA and type, at 1-3
 * rows (the GEMV's rows kernel) and 4+ (the tile kernel): the C reference's bits. */
SQ_TEST(rounded_once_output_ranges_equal_the_c_reference) {
    sq_rng r;
    sq_rng_seed(&r, 43);
    int nl = levels(), R = 21;
    static const int ROWS[] = {1, 2, 3, 4, 5, 7, 13, 21};
    for (size_t ti = 0; ti < SQ_ARRAY_LEN(TYPES); ti++) {
        sq_dtype t = TYPES[ti];
        int k256 = sq_dtype_block(t, NULL) == 256;
        mats m;
        mats_make(&m, t, k256 ? 2 : 5, 19, 5, &r);
        float *x = act_rows(R, m.n, &r);
        float *ref[2] = {malloc((size_t)R * 19 * 4), malloc((size_t)R * 5 * 4)};
        float *y = malloc((size_t)R * 19 * 4);
        void *buf = sq_malloc_aligned(sq_quant_xrows_bytes(m.n, R)), *tile = malloc(sq_quant_tile_bytes(m.n));
        reference(&m, x, R, ref);
        for (int lv = 0; lv < nl; lv++) {
            force(lv);
            for (size_t ri = 0; ri < SQ_ARRAY_LEN(ROWS); ri++) {
                int rows = ROWS[ri];
                sq_quant_xrows q;
                sq_quant_xrows_init(&q, buf, sq_quant_act_kind(t), m.n, rows);
                sq_quant_xrows_round(&q, x, 0, rows / 2); /* two threads' shares of the rows */
                sq_quant_xrows_round(&q, x, rows / 2, rows);
                for (int k = 0; k < 2; k++) {
                    memset(y, 0xff, (size_t)R * 19 * 4);
                    for (int o = 0; o < m.out[k]; o += 8)
                        sq_quant_matmul_range_x(y, &q, rows, &m.v[k], k ? NULL : m.bias, o, o + 8, tile);
                    int bad = 0;
                    for (int i = 0; i < rows * m.out[k] && !bad; i++) bad = !same(y[i], ref[k][i]);
                    CHECKF(!bad, "%s, %s, %d rows, matrix %d: ranges differ from the C reference", sq_dtype_name(t),
                           sq_quant_q8_impl(), rows, k);
                }
            }
        }
        sq_quant_q8_force(0);
        free(x), free(ref[0]), free(ref[1]), free(y), free(buf), free(tile);
        mats_free(&m);
    }
}
