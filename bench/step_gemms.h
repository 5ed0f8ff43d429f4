/* One batched decode step's GEMMs at the Qwen2-0.5B shapes, in the order the model runs them
 * (per layer: q, k, v as one call, o, gate and up as one call, down; then the LM head), for
 * the benches that time a whole step with its weights streamed: bench_matmul's and
 * bench_gemm_peers' stream modes. */
#ifndef SQ_BENCH_STEP_GEMMS_H
#define SQ_BENCH_STEP_GEMMS_H

#include <stdint.h>
#include <stdio.h>

#include "../src/kernels/matmul_avx2.h"

enum { ST_LAYERS = 24, ST_MATS = 7, ST_PARTS = 5, ST_HEAD_IN = 896, ST_HEAD_OUT = 151936 };
/* q, k, v, o, gate, up, down */
static const int st_in[ST_MATS] = {896, 896, 896, 896, 896, 896, 4864};
static const int st_out[ST_MATS] = {896, 128, 128, 896, 4864, 4864, 896};
/* which timed part (one call) each matrix belongs to; part 4 is the LM head */
static const int st_part_of[ST_MATS] = {0, 0, 0, 1, 2, 2, 3};
static const char *const st_part_name[ST_PARTS] = {"q/k/v", "o", "gate/up", "down", "lm head"};

/* Each part's FLOPs over one step at `rows` rows. */
static inline void st_part_flops(int rows, double fl[ST_PARTS]) {
    for (int p = 0; p < ST_PARTS; p++) fl[p] = 0;
    for (int k = 0; k < ST_MATS; k++) fl[st_part_of[k]] += 2.0 * rows * st_in[k] * st_out[k] * ST_LAYERS;
    fl[4] = 2.0 * rows * ST_HEAD_IN * ST_HEAD_OUT;
}

#if defined(SQ_HAVE_MM_AVX2)
/* Part `part` (0-3) of one layer as the engine calls our BF16 GEMM: the part's matrices
 * (lw[k], in the order above) as the jobs of one call over x, job n's outputs at
 * y + n * rows * 4864 (y holds rows x 3 x 4864 floats). */
static inline void st_ours_part(int part, const uint16_t *const lw[ST_MATS], const float *x, float *y, int rows,
                                void *scratch, int nt) {
    sq_mm_job j[3];
    int n = 0, in = 0;
    for (int k = 0; k < ST_MATS; k++)
        if (st_part_of[k] == part) {
            j[n] = (sq_mm_job){y + (size_t)n * rows * 4864, lw[k], NULL, st_out[k], 0, 0};
            n++, in = st_in[k];
        }
    sq_mm_avx2_gemm(j, n, x, rows, in, scratch, nt);
}

/* The LM head (part 4) on our BF16 GEMM: y holds rows x ST_HEAD_OUT floats. */
static inline void st_ours_head(const uint16_t *hw, const float *x, float *y, int rows, void *scratch, int nt) {
    sq_mm_job h = {y, hw, NULL, ST_HEAD_OUT, 0, 0};
    sq_mm_avx2_gemm(&h, 1, x, rows, ST_HEAD_IN, scratch, nt);
}
#endif

/* Each part and the whole step as % of `peak`, for two columns timed over `passes` steps
 * (t[c][part] seconds); with `ratio`, the step line adds column 1's time over column 0's. */
static inline void st_print(int rows, int passes, double peak, const char *const col[2], const double t[2][ST_PARTS],
                            const char *ratio) {
    double fl[ST_PARTS], ft = 0, ts[2] = {0, 0};
    st_part_flops(rows, fl);
    for (int p = 0; p <= ST_PARTS; p++) {
        int step = p == ST_PARTS;
        double f = step ? ft : fl[p], a = step ? ts[0] : t[0][p], b = step ? ts[1] : t[1][p];
        printf("  %-8s  %s %5.1f%%  %s %5.1f%%", step ? "step" : st_part_name[p], col[0], 100 * f * passes / a / peak,
               col[1], 100 * f * passes / b / peak);
        if (step && ratio) printf("   %s %.2fx", ratio, b / a);
        printf("\n");
        if (!step) ft += fl[p], ts[0] += t[0][p], ts[1] += t[1][p];
    }
}

#endif
