/* The BF16/F16/F32 GEMM's edges (4+ rows): every register-tile and slice edge gives the bits of
 * the GEMV (each row alone), through sq_matmul at 1 and 2 threads and through the engine's
 * per-thread pieces (sq_matmul_grain / sq_matmul_range), with and without a bias, for all three
 * weight types (F32 also through sq_matmul_f32 and sq_matmul_part); and the values agree with a double-precision reference. The shapes cut the
 * tile (4 x rows by 6 outputs with AVX-512, 2 x 6 with AVX2) short in both directions, end a
 * slice early, span several input chunks, and leave input tails of every kind. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/kernels.h"
#include "test.h"

static float frand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) * (1.0 / (1 << 24)) * 2 - 1);
}

static int same_bits(const float *a, const float *b, size_t n) { return !memcmp(a, b, n * sizeof(float)); }

/* wt: 0 BF16, 1 F16, 2 F32 */
static const char *const wt_name[] = {"bf16", "f16", "f32"};
static float w_get(const void *w, size_t i, int wt) {
    if (wt == 2) return ((const float *)w)[i];
    return wt ? sq_f16_to_f32(((const uint16_t *)w)[i]) : sq_bf16_to_f32(((const uint16_t *)w)[i]);
}

static void check_shape(int in, int out, int f16, int with_bias) {
    static const int rows_list[] = {4, 5, 7, 13, 67, 131};
    int maxr = 131;
    uint64_t seed = (uint64_t)in * 7919 + (uint64_t)out * 31 + (uint64_t)f16 * 2 + (uint64_t)with_bias;
    float *x = malloc(sizeof(float) * (size_t)maxr * in), *bias = malloc(sizeof(float) * (size_t)out);
    void *w = malloc(4 * (size_t)out * in);
    float *y = malloc(sizeof(float) * (size_t)maxr * out), *y2 = malloc(sizeof(float) * (size_t)maxr * out);
    float *yp = malloc(sizeof(float) * (size_t)maxr * out), *y1 = malloc(sizeof(float) * (size_t)out);
    REQUIRE(x && bias && w && y && y2 && yp && y1);
    for (size_t i = 0; i < (size_t)maxr * in; i++)
        x[i] = frand(&seed);
    /* A row of negative zeros: its sums are -0, and the missing bias must still add +0 the
     * same way on every path. */
    for (int i = 0; i < in; i++)
        x[(size_t)2 * in + i] = -0.0f;
    for (size_t i = 0; i < (size_t)out * in; i++) {
        float v = frand(&seed) * 0.5f;
        if (f16 == 2)
            ((float *)w)[i] = v;
        else
            ((uint16_t *)w)[i] = f16 ? sq_f32_to_f16(v) : sq_f32_to_bf16(v);
    }
    for (int o = 0; o < out; o++)
        bias[o] = frand(&seed);
    const float *b = with_bias ? bias : NULL;
    sq_view wv = {w, f16 == 2 ? SQ_F32 : f16 ? SQ_F16 : SQ_BF16, 2, {out, in, 0, 0}};
    sq_err e;
    sq_matmul_ctx *c;
    REQUIRE(sq_matmul_ctx_new(&c, &e) == 0);
    int nt0 = omp_get_max_threads();
    for (size_t ri = 0; ri < sizeof rows_list / sizeof rows_list[0]; ri++) {
        int rows = rows_list[ri];
        /* past one row block (128 rows; 64 where the inputs span several chunks, which 67 rows
         * already cross): small shapes only */
        if (rows > 128 && (size_t)in * out > 10000) continue;
        omp_set_num_threads(1);
        REQUIRE(sq_matmul(c, y, x, rows, &wv, b, &e) == 0);
        omp_set_num_threads(2);
        REQUIRE(sq_matmul(c, y2, x, rows, &wv, b, &e) == 0);
        CHECKF(same_bits(y, y2, (size_t)rows * out), "%dx%d %s%s rows %d: 1 and 2 threads differ", in, out,
               wt_name[f16], with_bias ? "" : " no bias", rows);
        /* The engine's pieces: ranges of whole grains, each on its own, in reverse order. */
        int grain = sq_matmul_grain(&wv, rows);
        CHECK(grain > 0);
        memset(yp, 0xff, sizeof(float) * (size_t)rows * out);
        for (int o0 = (out - 1) / grain * grain; o0 >= 0; o0 -= 2 * grain)
            sq_matmul_range(c, 0, yp, x, rows, &wv, b, SQ_MAX(o0 - grain, 0), SQ_MIN(o0 + grain, out));
        CHECKF(same_bits(y, yp, (size_t)rows * out), "%dx%d %s%s rows %d: sq_matmul_range pieces differ", in,
               out, wt_name[f16], with_bias ? "" : " no bias", rows);
        for (int r = 0; r < rows; r++) {
            REQUIRE(sq_matmul(c, y1, x + (size_t)r * in, 1, &wv, b, &e) == 0);
            CHECKF(same_bits(y1, y + (size_t)r * out, (size_t)out),
                   "%dx%d %s%s rows %d: row %d alone differs", in, out, wt_name[f16],
                   with_bias ? "" : " no bias", rows, r);
        }
        if (f16 == 2) { /* the public F32 entry and one thread's GEMV share: the same bits */
            sq_matmul_f32(y2, x, rows, w, in, out, b);
            CHECKF(same_bits(y, y2, (size_t)rows * out), "%dx%d f32%s rows %d: sq_matmul_f32 differs", in, out,
                   with_bias ? "" : " no bias", rows);
            memset(yp, 0xff, sizeof(float) * (size_t)rows * out);
            for (int o0 = 0; o0 < out; o0 += 4)
                sq_matmul_part(yp, x, rows, &wv, b, o0, o0 + 4);
            CHECKF(same_bits(y, yp, (size_t)rows * out), "%dx%d f32%s rows %d: sq_matmul_part pieces differ", in,
                   out, with_bias ? "" : " no bias", rows);
        }
        for (int o = 0; o < out; o++) /* the -0 row: exactly +0 plus the bias */
            CHECK(!signbit(y[(size_t)2 * out + o]) || (b && b[o] < 0));
        for (int r = 0; r < rows && rows == 67; r += 5)
            for (int o = 0; o < out; o++) {
                double s = b ? b[o] : 0, mag = 0;
                for (int i = 0; i < in; i++) {
                    double p = (double)x[(size_t)r * in + i] * w_get(w, (size_t)o * in + i, f16);
                    s += p;
                    mag += fabs(p);
                }
                CHECKF(fabs(y[(size_t)r * out + o] - s) <= 1e-5 * mag + 1e-6,
                       "%dx%d rows %d: y[%d][%d] = %g, expected %g", in, out, rows, r, o,
                       y[(size_t)r * out + o], s);
            }
    }
    omp_set_num_threads(nt0);
    sq_matmul_ctx_free(c);
    free(x);
    free(bias);
    free(w);
    free(y);
    free(y2);
    free(yp);
    free(y1);
}

static void check_all(int f16) {
    static const int shapes[][2] = {
        {48, 50},    /* whole 16-input groups; one slice and two outputs of the next */
        {100, 97},   /* a tail of 4 inputs; the last tile one output wide */
        {1100, 130}, /* past one input chunk, a tail of 12; slices cut short */
        {2100, 20},  /* three chunks of 1024 (AVX-512) or five of 512 (AVX2), a tail of 4 */
        {520, 48},   /* one whole chunk, then 8 inputs: a tail with AVX-512, a group with AVX2 */
        {7, 5},      /* no full group of inputs at all */
        {64, 6},     /* one tile's width of outputs */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int wb = 0; wb < 2; wb++)
            check_shape(shapes[i][0], shapes[i][1], f16, wb);
}

SQ_TEST(gemm_bf16_edges_equal_gemv_bits) { check_all(0); }

SQ_TEST(gemm_f16_edges_equal_gemv_bits) { check_all(1); }

SQ_TEST(gemm_f32_edges_equal_gemv_bits) { check_all(2); }
