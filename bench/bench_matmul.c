/* The BF16/F16 GEMM alone (src/kernels/matmul_avx2.c, 4+ rows) at the Qwen2-0.5B shapes, the
 * current kernel against an earlier one kept in bench/matmul_v1.inc (now: the 4 x 6 tile as it
 * was before the pair storage and the cheaper prefetch addresses),
 * alternating in one process, with 1 and 2 threads, as GFLOP/s and as a fraction of the FP32
 * FMA peak probed in the same run on the same thread count. Both kernels' outputs are compared
 * bit for bit (they keep one summation order).
 *
 *   bench_matmul [REPS] [ROWS,...] [THREADS,...]   (defaults 5; 8,32,64,256; 1,2)
 *   SQ_BENCH_MATMUL_HEAD=0   leaves out the LM head (896 x 151936; rows 8 and 64 only)
 *   SQ_BENCH_MATMUL_TYPES=f32   only the F32 figures (default: bf16, f16 and f32)
 *
 * F32 weights: the old kernel is the dot4_f32 matmul that ran them before (four outputs at a
 * time, x row by x row; the library keeps it for CPUs without AVX2, sq__matmul_f32_dot4), the new one matmul_avx2.c's GEMM with the
 * weights copied into an L1 panel ("panel") and read in place ("direct"), and at 1 row its
 * GEMV. Their bits differ from the old kernel's (another summation order); panel and direct
 * are compared bit for bit.
 *
 * A "layer" line per row count sums one decoder layer's seven matmuls (q, k, v, o, gate, up,
 * down): its FLOPs over its time, the figure the batched decode and prefill see.
 *
 *   SQ_BENCH_MATMUL_STREAM=1 bench_matmul [PASSES] [ROWS,...] [THREADS,...]
 * instead times the batched decode step's GEMMs in the step's order (24 layers, then the LM
 * head), BF16, over 24 distinct layers (streamed from DRAM as in the model) and over one
 * layer used 24 times (cache-resident), alternating; whole passes averaged, not the best call
 * (see stream_section). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../src/kernels/matmul_avx2.h"
#include "fma_peak.h"
#include "step_gemms.h"
#include "scalequest/base.h"

#if defined(SQ_HAVE_MM_AVX2)
#include "matmul_v1.inc"

static uint32_t rng = 12345;
static float rnd(void) {
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xffff) / 65536.0f - 0.5f;
}

typedef struct shape {
    const char *name;
    int in, out, per_layer; /* per_layer: how many of it one decoder layer has */
} shape;

static const shape shapes[] = {
    {"q/o 896x896", 896, 896, 2},           {"k/v 896x128", 896, 128, 2},
    {"gate/up 896x4864", 896, 4864, 2},     {"down 4864x896", 4864, 896, 1},
    {"lm head 896x151936", 896, 151936, 0},
};

/* One thread: the thread's own CPU time, which a neighbour taking the core for a while does
 * not inflate (the peak probe is timed the same way); more threads: wall time. */
static int cpu_clock;
static double now(void) { return cpu_clock ? sq_bench_thread_seconds() : sq_now(); }

/* Best seconds of one call of kernel `which` (0 old, 1 new), over calls totalling >= 30 ms. */
static double time_one(int which, const sq_mm_job *j, const float *x, int rows, int in, void *sc, int nsc) {
    double best = 1e30, spent = 0;
    for (int n = 0; n < 3 || spent < 0.03; n++) {
        double t0 = now();
        if (which)
            sq_mm_avx2_gemm(j, 1, x, rows, in, sc, nsc);
        else
            sq_mm_v1_gemm(j, 1, x, rows, in, sc, nsc);
        double dt = now() - t0;
        spent += dt;
        best = SQ_MIN(best, dt);
    }
    return best;
}

/* Best seconds of one F32 call: which 0 old, 1 new with a panel, 2 new reading rows in place. */
static double time_f32(int which, const sq_mm_job *j, const float *x, int rows, int in, void *sc, int nsc) {
    double best = 1e30, spent = 0;
    if (which) sq_mm_avx2_f32_direct(which == 2);
    for (int n = 0; n < 3 || spent < 0.03; n++) {
        double t0 = now();
        if (!which)
            sq__matmul_f32_dot4(j->y, x, rows, j->w, in, j->out, j->bias);
        else if (rows >= 4)
            sq_mm_avx2_gemm(j, 1, x, rows, in, sc, nsc);
        else
            sq_mm_avx2_gemv(j, 1, x, rows, in);
        double dt = now() - t0;
        spent += dt;
        best = SQ_MIN(best, dt);
    }
    sq_mm_avx2_f32_direct(1); /* the library's default */
    return best;
}

/* One measured line, printed once the thread count's second peak probe is in. */
typedef struct figure {
    char label[64];
    double flops, t_old, t_new, t_dir; /* t_dir: F32 only (then t_new is the panel's) */
    int same;
} figure;

static void print_figure(const figure *f, double peak) {
    if (f->t_dir > 0) {
        printf("  %-40s old %6.1f GFLOP/s %3.0f%%  panel %6.1f %3.0f%%  direct %6.1f %3.0f%%  best/old %.2fx%s\n",
               f->label, f->flops / f->t_old / 1e9, 100 * f->flops / f->t_old / peak, f->flops / f->t_new / 1e9,
               100 * f->flops / f->t_new / peak, f->flops / f->t_dir / 1e9, 100 * f->flops / f->t_dir / peak,
               f->t_old / SQ_MIN(f->t_new, f->t_dir), f->same ? "" : "  PANEL AND DIRECT BITS DIFFER");
        return;
    }
    printf("  %-40s old %6.1f GFLOP/s %3.0f%%  new %6.1f GFLOP/s %3.0f%%  new/old %.2fx%s\n", f->label,
           f->flops / f->t_old / 1e9, 100 * f->flops / f->t_old / peak, f->flops / f->t_new / 1e9,
           100 * f->flops / f->t_new / peak, f->t_old / f->t_new, f->same ? "" : "  BITS DIFFER");
}

static void loadavg(char *buf, int n) {
    FILE *la = fopen("/proc/loadavg", "r");
    snprintf(buf, (size_t)n, "?\n");
    if (la) {
        if (!fgets(buf, n, la)) snprintf(buf, (size_t)n, "?\n");
        fclose(la);
    }
}


/* SQ_BENCH_MATMUL_STREAM=1: the batched decode step's GEMMs as the model runs them (q/k/v as
 * one call of three jobs, o, gate/up as one call of two, down; 24 layers, then the LM head)
 * at `rows` rows, once over 24 distinct layers' BF16 weights (streamed from DRAM, as in the
 * model: ~990 MB a pass) and once over one layer's weights used 24 times (cache-resident, as
 * the per-shape lines above), alternating, as fractions of the FMA peak probed in the run.
 * The LM head is the same 272 MB buffer in both passes; after a cache-resident pass part of
 * it may still sit in a large L3, so only its streamed figure is the model's. */

static void stream_pass(const uint16_t *lw, size_t lsz, int stream, const uint16_t *hw, const float *x, float *y,
                        int rows, int nt, void *sc, double t[ST_PARTS]) {
    for (int l = 0; l < ST_LAYERS; l++) {
        const uint16_t *w = lw + (stream ? (size_t)l * lsz : 0);
        const uint16_t *wm[ST_MATS];
        size_t off = 0;
        for (int k = 0; k < ST_MATS; k++) wm[k] = w + off, off += (size_t)st_in[k] * st_out[k];
        for (int part = 0; part < 4; part++) {
            double t0 = now();
            st_ours_part(part, wm, x, y, rows, sc, nt);
            t[part] += now() - t0;
        }
    }
    double t0 = now();
    st_ours_head(hw, x, y, rows, sc, nt);
    t[4] += now() - t0;
}

static void stream_section(int rows, int nt, int passes, void *sc, const float *x) {
    size_t lsz = 0;
    for (int k = 0; k < ST_MATS; k++) lsz += (size_t)st_in[k] * st_out[k];
    uint16_t *lw = sq_malloc_aligned(2 * lsz * ST_LAYERS), *hw = sq_malloc_aligned(2 * (size_t)ST_HEAD_IN * ST_HEAD_OUT);
    float *y = sq_malloc_aligned(sizeof(float) * (size_t)rows * ST_HEAD_OUT);
    if (!lw || !hw || !y) {
        fprintf(stderr, "bench_matmul: out of memory\n");
        goto out;
    }
    for (size_t i = 0; i < lsz * ST_LAYERS; i++) lw[i] = sq_f32_to_bf16(rnd() * 0.1f);
    for (size_t i = 0; i < (size_t)ST_HEAD_IN * ST_HEAD_OUT; i++) hw[i] = sq_f32_to_bf16(rnd() * 0.1f);
    omp_set_num_threads(nt);
    cpu_clock = nt == 1;
    double peak = sq_bench_fma_peak(nt, 20000000, now);
    double t[2][ST_PARTS] = {{0}}; /* streamed, cache-resident */
    for (int p = 0; p < passes; p++)
        for (int st = 1; st >= 0; st--) stream_pass(lw, lsz, st, hw, x, y, rows, nt, sc, t[1 - st]);
    double peak2 = sq_bench_fma_peak(nt, 20000000, now);
    peak = SQ_MAX(peak, peak2);
    printf("decode step's GEMMs, bf16, %d rows, %d threads (wall), %d passes; FMA peak %.1f GFLOP/s\n", rows, nt,
           passes, peak / 1e9);
    static const char *const col[2] = {"streamed", "cache-resident"};
    st_print(rows, passes, peak, col, (const double(*)[ST_PARTS])t, NULL);
out:
    free(lw);
    free(hw);
    free(y);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    int rows_list[8] = {8, 32, 64, 256}, nrows = 4, thr_list[4] = {1, 2}, nthr = 2;
    if (argc > 2) {
        nrows = 0;
        for (char *s = strtok(argv[2], ","); s && nrows < 8; s = strtok(NULL, ","))
            rows_list[nrows++] = atoi(s);
    }
    if (argc > 3) {
        nthr = 0;
        for (char *s = strtok(argv[3], ","); s && nthr < 4; s = strtok(NULL, ","))
            thr_list[nthr++] = atoi(s);
    }
    const char *h = getenv("SQ_BENCH_MATMUL_HEAD");
    int head = !h || strcmp(h, "0");
    int maxr = 0, maxt = 0;
    for (int i = 0; i < nrows; i++)
        maxr = SQ_MAX(maxr, rows_list[i]);
    for (int i = 0; i < nthr; i++)
        maxt = SQ_MAX(maxt, thr_list[i]);
    size_t scb = SQ_MAX(sq_mm_avx2_scratch_bytes(), sq_mm_v1_scratch_bytes());
    void *sc = sq_malloc_aligned(scb * (size_t)maxt);
    float *x = sq_malloc_aligned(sizeof(float) * (size_t)maxr * 4864);
    float *y0 = sq_malloc_aligned(sizeof(float) * (size_t)maxr * 151936);
    float *y1 = sq_malloc_aligned(sizeof(float) * (size_t)maxr * 151936);
    float *bias = sq_malloc_aligned(sizeof(float) * 151936);
    const char *ty = getenv("SQ_BENCH_MATMUL_TYPES");
    int only_f32 = ty && !strcmp(ty, "f32");
    uint16_t *w = sq_malloc_aligned(4 * (size_t)896 * 151936); /* F32 too */
    float *wf = (float *)w;
    float *y2 = sq_malloc_aligned(sizeof(float) * (size_t)maxr * 151936);
    if (!sc || !x || !y0 || !y1 || !y2 || !w || !bias) return fprintf(stderr, "bench_matmul: out of memory\n"), 1;
    for (size_t i = 0; i < (size_t)maxr * 4864; i++)
        x[i] = rnd();
    for (size_t i = 0; i < 151936; i++)
        bias[i] = rnd();
    const char *stv = getenv("SQ_BENCH_MATMUL_STREAM");
    if (stv && strcmp(stv, "0")) {
        for (int ri = 0; ri < nrows; ri++)
            for (int ti = 0; ti < nthr; ti++) stream_section(rows_list[ri], thr_list[ti], reps, sc, x);
        return 0;
    }
    char lbuf[64];
    loadavg(lbuf, sizeof lbuf);
    printf("GEMM alone, %d-lane vectors; old = main's 4 x 6 tile, new = this build's kernel; load "
           "average %s",
           (int)(sizeof(vf) / 4), lbuf);
    int mismatches = 0, nfig = 0;
    figure *fig = calloc(512, sizeof *fig);
    if (!fig) return 1;
    for (int ti = 0; ti < nthr; ti++) {
        int nt = thr_list[ti];
        omp_set_num_threads(nt);
        cpu_clock = nt == 1;
        /* The peak is probed before and after this thread count's figures, and the better of
         * the two used: a probe that ran while a neighbour held a core would flatter us. */
        double peak = sq_bench_fma_peak(nt, 20000000, now);
        nfig = 0;
        for (int f16 = 0; f16 < 2 && !only_f32; f16++)
            for (int ri = 0; ri < nrows && nfig < 500; ri++) {
                int rows = rows_list[ri];
                figure lay = {{0}, 0, 0, 0, 0, 1};
                snprintf(lay.label, sizeof lay.label, "%-4s rows %3d %s", f16 ? "f16" : "bf16", rows,
                         "one decoder layer");
                for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
                    const shape *s = &shapes[si];
                    if (!s->per_layer && (!head || (rows != 8 && rows != 64))) continue;
                    size_t nw = (size_t)s->in * s->out;
                    for (size_t i = 0; i < nw; i++)
                        w[i] = f16 ? sq_f32_to_f16(rnd() * 0.1f) : sq_f32_to_bf16(rnd() * 0.1f);
                    sq_mm_job j0 = {y0, w, bias, s->out, f16, 0}, j1 = {y1, w, bias, s->out, f16, 0};
                    double best[2] = {1e30, 1e30};
                    int r = s->per_layer ? reps : SQ_MIN(reps, 2);
                    for (int k = 0; k < r; k++) {
                        best[0] = SQ_MIN(best[0], time_one(0, &j0, x, rows, s->in, sc, nt));
                        best[1] = SQ_MIN(best[1], time_one(1, &j1, x, rows, s->in, sc, nt));
                    }
                    figure *f = &fig[nfig++];
                    f->same = !memcmp(y0, y1, sizeof(float) * (size_t)rows * s->out);
                    mismatches += !f->same;
                    f->flops = 2.0 * rows * nw, f->t_old = best[0], f->t_new = best[1];
                    snprintf(f->label, sizeof f->label, "%-4s rows %3d %s", f16 ? "f16" : "bf16", rows,
                             s->name);
                    lay.t_old += s->per_layer * best[0], lay.t_new += s->per_layer * best[1];
                    lay.flops += s->per_layer * f->flops;
                    lay.same &= f->same;
                }
                fig[nfig++] = lay;
            }
        /* F32 weights: 1 row (the GEMV) and the GEMM's row counts. */
        for (int ri = -1; ri < nrows && nfig < 500; ri++) {
            int rows = ri < 0 ? 1 : rows_list[ri];
            figure lay = {{0}, 0, 0, 0, 0, 1};
            snprintf(lay.label, sizeof lay.label, "f32  rows %3d one decoder layer", rows);
            for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
                const shape *s = &shapes[si];
                if (!s->per_layer && (!head || (rows != 1 && rows != 64))) continue;
                size_t nw = (size_t)s->in * s->out;
                for (size_t i = 0; i < nw; i++)
                    wf[i] = rnd() * 0.1f;
                sq_mm_job j0 = {y0, wf, bias, s->out, 0, 1}, j1 = {y1, wf, bias, s->out, 0, 1},
                          j2 = {y2, wf, bias, s->out, 0, 1};
                double best[3] = {1e30, 1e30, 1e30};
                int r = s->per_layer ? reps : SQ_MIN(reps, 2);
                for (int k = 0; k < r; k++) {
                    best[0] = SQ_MIN(best[0], time_f32(0, &j0, x, rows, s->in, sc, nt));
                    best[1] = SQ_MIN(best[1], time_f32(1, &j1, x, rows, s->in, sc, nt));
                    if (rows >= 4) best[2] = SQ_MIN(best[2], time_f32(2, &j2, x, rows, s->in, sc, nt));
                }
                if (rows < 4) best[2] = best[1]; /* the GEMV: no panel */
                figure *f = &fig[nfig++];
                f->same = rows < 4 || !memcmp(y1, y2, sizeof(float) * (size_t)rows * s->out);
                mismatches += !f->same;
                f->flops = 2.0 * rows * nw, f->t_old = best[0], f->t_new = best[1], f->t_dir = best[2];
                snprintf(f->label, sizeof f->label, "f32  rows %3d %s", rows, s->name);
                lay.t_old += s->per_layer * best[0], lay.t_new += s->per_layer * best[1];
                lay.t_dir += s->per_layer * best[2];
                lay.flops += s->per_layer * f->flops;
                lay.same &= f->same;
            }
            fig[nfig++] = lay;
        }
        double peak2 = sq_bench_fma_peak(nt, 20000000, now);
        printf("threads %d (%s time): FP32 FMA peak %.1f GFLOP/s (probed before and after: %.1f, %.1f)\n", nt,
               cpu_clock ? "thread CPU" : "wall", SQ_MAX(peak, peak2) / 1e9, peak / 1e9, peak2 / 1e9);
        for (int i = 0; i < nfig; i++)
            print_figure(&fig[i], SQ_MAX(peak, peak2));
    }
    loadavg(lbuf, sizeof lbuf);
    printf("load average at end %s", lbuf);
    printf("%s\n", mismatches ? "old and new kernels gave DIFFERENT bits"
                              : "old and new kernels: same bits everywhere");
    free(fig);
    free(sc);
    free(x);
    free(y0);
    free(y1);
    free(y2);
    free(w);
    free(bias);
    return mismatches != 0;
}
#else
int main(void) {
    printf("  skipped: the 16-bit GEMM kernels need AVX2+FMA+F16C\n");
    return 0;
}
#endif
