/* How close can any GEMM on this machine come to the FP32 FMA peak at the model's shapes?
 * Our BF16 GEMM (src/kernels/matmul_avx2.c: weights widened to F32, one summation order at
 * every batch size) beside two tuned libraries on the same shapes, same threads, alternating
 * call by call, each as a fraction of the FMA peak probed in the same run:
 *   - OpenBLAS sgemm, F32 weights and activations (no widening at all: the plain FP32 GEMM);
 *   - oneDNN's F32 matmul with its weights reordered once into its own blocked layout ahead
 *     of time (the most favourable case: pre-packed weights, its per-shape kernel choice);
 *   - oneDNN's BF16 matmul (x and weights in bf16, F32 out; AVX512-BF16's dot product where
 *     the CPU has it), weights pre-packed likewise: the rounding the engine refuses (x to
 *     8 mantissa bits), shown for what it would buy.
 * The libraries are measuring sticks here, never called by the engine (kernels.h says why).
 *
 *   bench_gemm_peers [REPS] [ROWS,...] [THREADS,...]     (defaults 5; 64,256; 1,2)
 *
 * Each figure is the best call of REPS rounds (each round at least 3 calls and 30 ms per
 * side); the "one decoder layer" line sums q, k, v, o, gate, up and down as one layer runs
 * them. One thread is timed in the thread's CPU time, more in wall time, like the peak.
 *
 *   SQ_BENCH_GEMM_STREAM=1 bench_gemm_peers [PASSES] [ROWS] [THREADS]   (defaults 5; 64; 2)
 * instead runs a batched decode step's GEMMs as the model runs them: 24 distinct layers
 * (q, k, v, o, gate, up, down) and then the LM head, all weights streamed from DRAM, ours
 * (BF16, ~1 GB) beside oneDNN's F32 matmul (pre-packed F32, ~2 GB), alternating whole passes
 * and averaging them rather than keeping the best call: the rate a step sustains, which is
 * what batch 64's fraction of the peak is made of (see stream_mode). */
#include <cblas.h>
#include <dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../src/kernels/matmul_avx2.h"
#include "fma_peak.h"
#include "step_gemms.h"
#include "scalequest/base.h"

#if defined(SQ_HAVE_MM_AVX2)
#include "matmul_packed.inc"

typedef struct shape {
    const char *name;
    int in, out, per_layer;
} shape;

static const shape shapes[] = {
    {"q/o 896x896", 896, 896, 2},
    {"k/v 896x128", 896, 128, 2},
    {"gate/up 896x4864", 896, 4864, 2},
    {"down 4864x896", 4864, 896, 1},
};
enum { N_SHAPES = sizeof shapes / sizeof shapes[0], N_SIDES = 5 };
#if defined(__AVX512F__)
static const int n_sides = N_SIDES;
#else
static const int n_sides = N_SIDES - 1; /* no packed prototype */
#endif
static const char *side_name[N_SIDES] = {"ours bf16", "openblas f32", "onednn f32", "onednn bf16", "ours packed"};

static int cpu_clock;
static double now(void) { return cpu_clock ? sq_bench_thread_seconds() : sq_now(); }

static uint32_t rng = 2024;
static float rnd(void) {
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xffff) / 65536.0f - 0.5f;
}

#define DNNL_OK(call)                                                                                                  \
    do {                                                                                                               \
        dnnl_status_t st_ = (call);                                                                                    \
        if (st_ != dnnl_success) {                                                                                     \
            fprintf(stderr, "bench_gemm_peers: %s failed (oneDNN status %d)\n", #call, (int)st_);                      \
            return -1;                                                                                                 \
        }                                                                                                              \
    } while (0)

/* One oneDNN matmul y[rows][out] = x[rows][in] @ W^T with the weights reordered once into the
 * layout the primitive asked for (format "any"). dt: dnnl_f32 or dnnl_bf16 for x and W. */
typedef struct dnnl_mm {
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, dst;
    dnnl_stream_t stream;
} dnnl_mm;

static int dnnl_mm_new(dnnl_mm *m, dnnl_engine_t eng, dnnl_data_type_t dt, int rows, int in, int out, const float *x,
                       const float *w, float *y) {
    memset(m, 0, sizeof *m);
    dnnl_memory_desc_t src_md, wei_md, wei_any, dst_md;
    dnnl_dims_t sd = {rows, in}, wd = {in, out}, dd = {rows, out};
    DNNL_OK(dnnl_memory_desc_init_by_tag(&src_md, 2, sd, dt, dnnl_ab));
    DNNL_OK(dnnl_memory_desc_init_by_tag(&wei_any, 2, wd, dt, dnnl_format_tag_any));
    DNNL_OK(dnnl_memory_desc_init_by_tag(&dst_md, 2, dd, dnnl_f32, dnnl_ab));
    dnnl_matmul_desc_t md;
    DNNL_OK(dnnl_matmul_desc_init(&md, &src_md, &wei_any, NULL, &dst_md));
    dnnl_primitive_desc_t pd;
    DNNL_OK(dnnl_primitive_desc_create(&pd, &md, NULL, eng, NULL));
    wei_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    DNNL_OK(dnnl_primitive_create(&m->prim, pd));
    DNNL_OK(dnnl_stream_create(&m->stream, eng, dnnl_stream_default_flags));
    /* x and W as F32 first (W stored [out][in], i.e. [in][out] with tag "ba"), then converted
     * and reordered by oneDNN itself. */
    dnnl_memory_desc_t src_f32, wei_f32;
    DNNL_OK(dnnl_memory_desc_init_by_tag(&src_f32, 2, sd, dnnl_f32, dnnl_ab));
    DNNL_OK(dnnl_memory_desc_init_by_tag(&wei_f32, 2, wd, dnnl_f32, dnnl_ba));
    dnnl_memory_t xs, ws;
    DNNL_OK(dnnl_memory_create(&xs, &src_f32, eng, (void *)x));
    DNNL_OK(dnnl_memory_create(&ws, &wei_f32, eng, (void *)w));
    DNNL_OK(dnnl_memory_create(&m->src, &src_md, eng, DNNL_MEMORY_ALLOCATE));
    DNNL_OK(dnnl_memory_create(&m->wei, &wei_md, eng, DNNL_MEMORY_ALLOCATE));
    DNNL_OK(dnnl_memory_create(&m->dst, &dst_md, eng, (void *)y));
    dnnl_memory_t from[2] = {xs, ws}, to[2] = {m->src, m->wei};
    for (int k = 0; k < 2; k++) {
        dnnl_primitive_desc_t rpd;
        dnnl_primitive_t r;
        DNNL_OK(dnnl_reorder_primitive_desc_create(&rpd, k ? &wei_f32 : &src_f32, eng, k ? &wei_md : &src_md, eng,
                                                   NULL));
        DNNL_OK(dnnl_primitive_create(&r, rpd));
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from[k]}, {DNNL_ARG_TO, to[k]}};
        DNNL_OK(dnnl_primitive_execute(r, m->stream, 2, args));
        DNNL_OK(dnnl_stream_wait(m->stream));
        dnnl_primitive_destroy(r);
        dnnl_primitive_desc_destroy(rpd);
    }
    dnnl_memory_destroy(xs);
    dnnl_memory_destroy(ws);
    dnnl_primitive_desc_destroy(pd);
    return 0;
}

static void dnnl_mm_run(dnnl_mm *m) {
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, m->src}, {DNNL_ARG_WEIGHTS, m->wei}, {DNNL_ARG_DST, m->dst}};
    dnnl_primitive_execute(m->prim, m->stream, 3, args);
    dnnl_stream_wait(m->stream);
}

static void dnnl_mm_free(dnnl_mm *m) {
    dnnl_primitive_destroy(m->prim);
    dnnl_memory_destroy(m->src);
    dnnl_memory_destroy(m->wei);
    dnnl_memory_destroy(m->dst);
    dnnl_stream_destroy(m->stream);
}

typedef struct figure {
    char label[64];
    double flops, t[N_SIDES], diff[N_SIDES];
} figure;

typedef struct call {
    int side, rows, in, out, nt;
    const float *x;
    const uint16_t *wb, *wp;
    const float *wf;
    pk_scratch *pk;
    float *y;
    void *scratch;
    dnnl_mm *dm;
} call;

static void run_call(const call *c) {
    switch (c->side) {
    case 0: {
        sq_mm_job j = {c->y, c->wb, NULL, c->out, 0, 0};
        sq_mm_avx2_gemm(&j, 1, c->x, c->rows, c->in, c->scratch, c->nt);
        break;
    }
    case 1:
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c->rows, c->out, c->in, 1.0f, c->x, c->in, c->wf, c->in,
                    0.0f, c->y, c->out);
        break;
    case 4:
        pk_gemm(c->y, c->x, c->rows, c->wp, c->in, c->out, c->pk);
        break;
    default:
        dnnl_mm_run(c->dm);
    }
}

static double best_of(const call *c) {
    double best = 1e30, spent = 0;
    for (int n = 0; n < 3 || spent < 0.03; n++) {
        double t0 = now();
        run_call(c);
        double dt = now() - t0;
        spent += dt;
        best = SQ_MIN(best, dt);
    }
    return best;
}

/* Largest |a - b| over n, relative to the largest |b|: the sides must compute the same GEMM. */
static double rel_diff(const float *a, const float *b, size_t n) {
    double d = 0, m = 1e-30;
    for (size_t i = 0; i < n; i++) {
        d = SQ_MAX(d, (double)(a[i] > b[i] ? a[i] - b[i] : b[i] - a[i]));
        m = SQ_MAX(m, (double)(b[i] > 0 ? b[i] : -b[i]));
    }
    return d / m;
}

/* SQ_BENCH_GEMM_STREAM=1: one decode step's GEMMs over 24 distinct layers and the LM head,
 * ours beside oneDNN F32, as each side sustains them. q, k and v are one call of three jobs on
 * our side (as the engine runs them) and three primitives on oneDNN's. Returns nonzero when the
 * sides disagree or something could not be set up. */
static int stream_mode(int passes, int rows, int nt) {
    size_t lsz = 0;
    for (int k = 0; k < ST_MATS; k++) lsz += (size_t)st_in[k] * st_out[k];
    size_t hsz = (size_t)ST_HEAD_IN * ST_HEAD_OUT;
    uint16_t *wb = sq_malloc_aligned(2 * (lsz * ST_LAYERS + hsz));
    float *x = sq_malloc_aligned(sizeof(float) * (size_t)rows * 4864), *wf = sq_malloc_aligned(sizeof(float) * hsz);
    float *yo = sq_malloc_aligned(sizeof(float) * (size_t)rows * ST_HEAD_OUT), *yd = sq_malloc_aligned(sizeof(float) * (size_t)rows * ST_HEAD_OUT);
    void *scratch = sq_malloc_aligned(sq_mm_avx2_scratch_bytes() * (size_t)nt);
    dnnl_mm *dm = calloc(ST_LAYERS * ST_MATS + 1, sizeof *dm);
    if (!wb || !x || !wf || !yo || !yd || !scratch || !dm) return fprintf(stderr, "bench_gemm_peers: out of memory\n"), 1;
    for (size_t i = 0; i < (size_t)rows * 4864; i++) x[i] = rnd();
    for (size_t i = 0; i < lsz * ST_LAYERS + hsz; i++) wb[i] = sq_f32_to_bf16(rnd() * 0.1f);
    omp_set_num_threads(nt);
    cpu_clock = nt == 1;
    dnnl_engine_t eng;
    if (dnnl_engine_create(&eng, dnnl_cpu, 0) != dnnl_success) return fprintf(stderr, "bench_gemm_peers: oneDNN engine\n"), 1;
    /* oneDNN's copies: each matrix widened to F32 in wf (reused), then reordered into its own
     * packed memory; the step's outputs all go to yd (as ours go to yo) */
    const uint16_t *wm[ST_LAYERS * ST_MATS + 1];
    size_t off = 0;
    for (int i = 0; i < ST_LAYERS * ST_MATS + 1; i++) {
        int in = i < ST_LAYERS * ST_MATS ? st_in[i % ST_MATS] : ST_HEAD_IN, out = i < ST_LAYERS * ST_MATS ? st_out[i % ST_MATS] : ST_HEAD_OUT;
        wm[i] = wb + off;
        for (size_t e = 0; e < (size_t)in * out; e++) wf[e] = sq_bf16_to_f32(wm[i][e]);
        if (dnnl_mm_new(&dm[i], eng, dnnl_f32, rows, in, out, x, wf, yd)) return 1;
        off += (size_t)in * out;
    }
    double peak0 = sq_bench_fma_peak(nt, 20000000, now);
    double t[2][ST_PARTS] = {{0}}, bad = 0;
    for (int p = -1; p < passes; p++) /* pass -1 warms both sides (JIT, first touch) and checks them */
        for (int side = 0; side < 2; side++) {
            double *ts = t[side], t0;
            for (int l = 0; l < ST_LAYERS; l++)
                for (int part = 0, k = 0; part < 4; part++) {
                    t0 = now();
                    if (side)
                        for (; k < ST_MATS && st_part_of[k] == part; k++) dnnl_mm_run(&dm[l * ST_MATS + k]);
                    else
                        st_ours_part(part, wm + l * ST_MATS, x, yo, rows, scratch, nt);
                    if (p >= 0) ts[part] += now() - t0;
                }
            t0 = now();
            if (side)
                dnnl_mm_run(&dm[ST_LAYERS * ST_MATS]);
            else
                st_ours_head(wm[ST_LAYERS * ST_MATS], x, yo, rows, scratch, nt);
            if (p >= 0) ts[4] += now() - t0;
            if (p < 0 && side) bad = SQ_MAX(bad, rel_diff(yd, yo, (size_t)rows * ST_HEAD_OUT)); /* the LM head's outputs */
        }
    double peak1 = sq_bench_fma_peak(nt, 20000000, now), peak = SQ_MAX(peak0, peak1);
    printf("one decode step's GEMMs, %d rows, %d thread%s (%s), 24 distinct layers and the LM head streamed from DRAM,\n"
           "%d passes averaged; FMA peak %.1f GFLOP/s (probed before and after: %.1f, %.1f)\n",
           rows, nt, nt > 1 ? "s" : "", nt == 1 ? "thread CPU time" : "wall time", passes, peak / 1e9, peak0 / 1e9, peak1 / 1e9);
    static const char *const col[2] = {"ours bf16", "onednn f32"};
    st_print(rows, passes, peak, col, (const double(*)[ST_PARTS])t, "ours / oneDNN");
    printf("%s (LM head outputs, largest difference %.0e of the largest)\n",
           bad > 1e-4 ? "SIDES DISAGREE: oneDNN computed another GEMM" : "both sides computed the same GEMM", bad);
    for (int i = 0; i < ST_LAYERS * ST_MATS + 1; i++) dnnl_mm_free(&dm[i]);
    dnnl_engine_destroy(eng);
    free(dm), free(wb), free(x), free(wf), free(yo), free(yd), free(scratch);
    return bad > 1e-4;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Debian's OpenBLAS 0.3.21 picks its kernels by CPU model and falls back to Prescott's (SSE3)
     * on models newer than it knows; the peer must run its best kernels for this ISA, so the
     * bench starts itself again with the core type named (it is read at library load). */
    if (!getenv("OPENBLAS_CORETYPE") && !strcmp(openblas_get_corename(), "Prescott")) {
        const char *ct = __builtin_cpu_supports("avx512f") ? "SkylakeX" : __builtin_cpu_supports("avx2") ? "Haswell" : NULL;
        if (ct) {
            setenv("OPENBLAS_CORETYPE", ct, 1);
            execv("/proc/self/exe", argv);
        }
    }
    const char *sm = getenv("SQ_BENCH_GEMM_STREAM");
    if (sm && *sm == '1') {
        int passes = argc > 1 ? atoi(argv[1]) : 5, rows = argc > 2 ? atoi(argv[2]) : 64, nt = argc > 3 ? atoi(argv[3]) : 2;
        if (passes < 1 || rows < 4 || rows > 256 || nt < 1) return fprintf(stderr, "bench_gemm_peers: PASSES >= 1, 4 <= ROWS <= 256, THREADS >= 1\n"), 2;
        return stream_mode(passes, rows, nt);
    }
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    int rows_list[8] = {64, 256}, nrows = 2, thr_list[4] = {1, 2}, nthr = 2;
    if (argc > 2) {
        nrows = 0;
        for (char *s = strtok(argv[2], ","); s && nrows < 8; s = strtok(NULL, ",")) rows_list[nrows++] = atoi(s);
    }
    if (argc > 3) {
        nthr = 0;
        for (char *s = strtok(argv[3], ","); s && nthr < 4; s = strtok(NULL, ",")) thr_list[nthr++] = atoi(s);
    }
    int maxr = 0, maxt = 0;
    for (int i = 0; i < nrows; i++) maxr = SQ_MAX(maxr, rows_list[i]);
    for (int i = 0; i < nthr; i++) maxt = SQ_MAX(maxt, thr_list[i]);
    if (reps < 1 || maxr < 4 || maxt < 1) return fprintf(stderr, "bench_gemm_peers: REPS >= 1, ROWS >= 4, THREADS >= 1\n"), 2;
    float *x = sq_malloc_aligned(sizeof(float) * (size_t)maxr * 4864);
    float *y[N_SIDES];
    for (int k = 0; k < N_SIDES; k++) y[k] = sq_malloc_aligned(sizeof(float) * (size_t)maxr * 4864);
    void *scratch = sq_malloc_aligned(sq_mm_avx2_scratch_bytes() * (size_t)maxt);
    pk_scratch *pk = sq_malloc_aligned(sizeof(pk_scratch) * (size_t)maxt);
    if (!x || !y[0] || !y[1] || !y[2] || !y[3] || !y[4] || !scratch || !pk) return fprintf(stderr, "bench_gemm_peers: out of memory\n"), 1;
    if (maxr > 256) return fprintf(stderr, "bench_gemm_peers: at most 256 rows\n"), 2;
    for (size_t i = 0; i < (size_t)maxr * 4864; i++) x[i] = rnd();
    /* Each shape's weights, the same values on every side: bf16, widened to F32, packed. */
    uint16_t *wb[N_SHAPES], *wp[N_SHAPES];
    float *wf[N_SHAPES];
    for (int si = 0; si < N_SHAPES; si++) {
        size_t nw = (size_t)shapes[si].in * shapes[si].out;
        wb[si] = sq_malloc_aligned(sizeof(uint16_t) * nw);
        wf[si] = sq_malloc_aligned(sizeof(float) * nw);
        if (!wb[si] || !wf[si]) return fprintf(stderr, "bench_gemm_peers: out of memory\n"), 1;
        for (size_t i = 0; i < nw; i++) {
            wb[si][i] = sq_f32_to_bf16(rnd() * 0.1f);
            wf[si][i] = sq_bf16_to_f32(wb[si][i]);
        }
        wp[si] = pk_pack(wb[si], shapes[si].in, shapes[si].out);
        if (!wp[si]) return fprintf(stderr, "bench_gemm_peers: out of memory\n"), 1;
    }
    dnnl_engine_t eng;
    if (dnnl_engine_create(&eng, dnnl_cpu, 0) != dnnl_success) return fprintf(stderr, "bench_gemm_peers: oneDNN engine\n"), 1;
    const dnnl_version_t *dv = dnnl_version();
    printf("GEMM at the Qwen2-0.5B shapes beside %s (%s kernels) and oneDNN %d.%d.%d (%s); %d-lane vectors\n",
           openblas_get_config(), openblas_get_corename(), dv->major, dv->minor, dv->patch, dv->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "other runtime",
           sq_mm_avx2_gemm_grain() == 48 ? 16 : 8);
    int bad = 0;
    for (int ti = 0; ti < nthr; ti++) {
        int nt = thr_list[ti];
        omp_set_num_threads(nt);
        openblas_set_num_threads(nt);
        cpu_clock = nt == 1;
        /* The peak is probed before and after this thread count's figures and the better of the
         * two used (a probe that ran while a neighbour held a core would flatter every side). */
        double peak0 = sq_bench_fma_peak(nt, 20000000, now);
        figure fig[8 * (N_SHAPES + 1)];
        int nfig = 0;
        for (int ri = 0; ri < nrows && ri < 8; ri++) {
            int rows = rows_list[ri];
            dnnl_mm dm[N_SHAPES][2];
            call c[N_SHAPES][N_SIDES];
            figure *f0 = &fig[nfig];
            for (int si = 0; si < N_SHAPES; si++) {
                const shape *s = &shapes[si];
                if (dnnl_mm_new(&dm[si][0], eng, dnnl_f32, rows, s->in, s->out, x, wf[si], y[2]) ||
                    dnnl_mm_new(&dm[si][1], eng, dnnl_bf16, rows, s->in, s->out, x, wf[si], y[3]))
                    return 1;
                for (int k = 0; k < N_SIDES; k++)
                    c[si][k] = (call){k, rows, s->in, s->out, nt, x, wb[si], wp[si], wf[si], pk, y[k], scratch,
                                      k == 2 || k == 3 ? &dm[si][k - 2] : NULL};
                figure *f = &fig[nfig++];
                snprintf(f->label, sizeof f->label, "rows %3d %s", rows, s->name);
                f->flops = 2.0 * rows * (double)s->in * s->out;
                for (int k = 0; k < n_sides; k++) f->t[k] = 1e30, run_call(&c[si][k]); /* warm: JIT, first touch */
                size_t ny = (size_t)rows * s->out;
                for (int k = 1; k < n_sides; k++) f->diff[k] = rel_diff(y[k], y[0], ny);
                /* bf16 x (oneDNN's BF16 side) is ~2^-8 relative; every F32 side agrees to ~1e-6 */
                if (f->diff[1] > 1e-4 || f->diff[2] > 1e-4 || f->diff[3] > 3e-2 || f->diff[4] > 1e-4) bad++;
            }
            /* Rounds over every shape and side in turn, so that a busy minute on the shared
             * machine lands on all of them alike rather than on one shape's figures. */
            for (int r = 0; r < reps; r++)
                for (int si = 0; si < N_SHAPES; si++)
                    for (int k = 0; k < n_sides; k++) f0[si].t[k] = SQ_MIN(f0[si].t[k], best_of(&c[si][k]));
            figure lay = {{0}, 0, {0}, {0}};
            snprintf(lay.label, sizeof lay.label, "rows %3d %s", rows, "one decoder layer");
            for (int si = 0; si < N_SHAPES; si++) {
                for (int k = 0; k < n_sides; k++) lay.t[k] += shapes[si].per_layer * f0[si].t[k];
                lay.flops += shapes[si].per_layer * f0[si].flops;
                dnnl_mm_free(&dm[si][0]);
                dnnl_mm_free(&dm[si][1]);
            }
            fig[nfig++] = lay;
        }
        double peak1 = sq_bench_fma_peak(nt, 20000000, now), peak = SQ_MAX(peak0, peak1);
        printf("threads %d (%s): FP32 FMA peak %.1f GFLOP/s (probed before and after: %.1f, %.1f)\n", nt,
               nt == 1 ? "thread CPU time" : "wall time", peak / 1e9, peak0 / 1e9, peak1 / 1e9);
        for (int i = 0; i < nfig; i++) {
            const figure *f = &fig[i];
            printf("  %-26s", f->label);
            for (int k = 0; k < n_sides; k++) printf("  %s %5.1f%%", side_name[k], 100 * f->flops / f->t[k] / peak);
            if (strstr(f->label, "layer"))
                printf("   ours / best F32 library %.2fx\n", SQ_MIN(f->t[1], f->t[2]) / f->t[0]);
            else {
                printf("   (largest difference from ours:");
                for (int k = 1; k < n_sides; k++) printf(" %.0e", f->diff[k]);
                printf(")\n");
            }
        }
    }
    dnnl_engine_destroy(eng);
    printf("%s\n", bad ? "SIDES DISAGREE: a library computed another GEMM" : "all sides computed the same GEMM");
    return bad ? 1 : 0;
}

#else
int main(void) {
    puts("bench_gemm_peers: needs the AVX2+FMA+F16C kernels (SQ_HAVE_MM_AVX2); nothing to compare");
    return 0;
}
#endif
