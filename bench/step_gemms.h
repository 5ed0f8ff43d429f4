/* One batched decode step's GEMMs at the Qwen2-0.5B shapes, in the order the model runs them
 * (per layer: q, k, v as one call, o, gate and up as one call, down; then the LM head), for
 * the benches that time a whole step with its weights streamed: bench_matmul's and
 * bench_gemm_peers' stream modes. */
#ifndef SQ_BENCH_STEP_GEMMS_H
#define SQ_BENCH_STEP_GEMMS_H

#include <stdio.h>

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
