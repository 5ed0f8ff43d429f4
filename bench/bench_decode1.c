/* Batch-1 decode against a read of the same bytes, paired: on a shared machine the memory
 * bandwidth a step gets changes from second to second, so a step's rate and a probe's rate
 * taken minutes apart (bench/engine_vs_llamacpp.sh's "fraction of the read bound") can be off
 * by more than the effect being looked for. Here each round times G tokens of one-token steps
 * through the engine, then two reads with both threads: one over the model's own weight
 * matrices (the same mapped pages the step streams), one over a 1 GiB anonymous array (the
 * bench's usual probe); the ratios of each round are kept, and their median printed.
 *
 *   bench_decode1 MODEL [ROUNDS] [G]     (defaults 15 rounds of 8 tokens) */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/infer.h"

typedef struct span {
    const char *p;
    size_t n;
} span;

/* Bytes read per second with all threads: each span cut into equal parts, one per thread. */
static double stream(const span *s, int ns, double *sink) {
    double t0 = sq_now(), tot = 0;
#pragma omp parallel reduction(+ : tot)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int k = 0; k < ns; k++) {
            size_t lines = s[k].n / 128, l0 = lines * t / nt, l1 = lines * (t + 1) / nt;
            for (size_t l = l0; l < l1; l++) {
                const float *p = (const float *)(s[k].p + l * 128);
                a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p));
                a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + 8));
                a2 = _mm256_add_ps(a2, _mm256_loadu_ps(p + 16));
                a3 = _mm256_add_ps(a3, _mm256_loadu_ps(p + 24));
            }
        }
        float v[8];
        _mm256_storeu_ps(v, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
        tot += v[0] + v[7];
    }
    double dt = sq_now() - t0, bytes = 0;
    *sink += tot;
    for (int k = 0; k < ns; k++) bytes += (double)(s[k].n / 128 * 128);
    return bytes / dt;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char **argv) {
    sq_threads_default_wait_policy(argv);
    if (argc < 2) return fprintf(stderr, "usage: bench_decode1 MODEL [ROUNDS] [G]\n"), 2;
    int rounds = argc > 2 ? atoi(argv[2]) : 15, G = argc > 3 ? atoi(argv[3]) : 8;
    if (rounds < 1 || rounds > 1000 || G < 1) return fprintf(stderr, "bad ROUNDS or G\n"), 2;
    sq_err e;
    sq_model *m;
    if (sq_model_open(&m, argv[1], &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    m->cfg.eos_id = -1; /* random weights: fixed lengths */
    m->cfg.n_eos = 0;
    span s[7 * 256 + 1];
    int ns = 0;
    for (int l = 0; l < m->cfg.n_layers && l < 256; l++) {
        const sq_layer *L = &m->layers[l];
        const sq_view *w[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int k = 0; k < 7; k++) s[ns++] = (span){w[k]->data, sq_view_bytes(w[k])};
    }
    const sq_view *head = sq_model_head_weight(m);
    s[ns++] = (span){head->data, sq_view_bytes(head)};
    double wbytes = (double)sq_model_weight_bytes(m);
    size_t an = (size_t)1 << 30;
    char *anon = sq_malloc_aligned(an);
    if (!anon) return fprintf(stderr, "out of memory\n"), 1;
    memset(anon, 1, an);
    span sa = {anon, an};
    sq_engine_opts o;
    sq_engine_opts_default(&o);
    o.max_batch = 1;
    o.ctx_len = G + 2;
    sq_engine *en;
    if (sq_engine_new(&en, m, &o, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    int32_t prompt[1] = {3};
    sq_infer_req q;
    memset(&q, 0, sizeof q);
    q.prompt = prompt;
    q.n_prompt = 1;
    sq_gen_params_default(&q.params);
    q.params.max_tokens = G;
    q.params.temperature = 0.7f;
    q.params.top_p = 0.95f;
    q.params.n = 1;
    double *rw = malloc(sizeof(double) * rounds * 5), sink = 0;
    if (!rw) return 1;
    double *ra = rw + rounds, *gs = rw + 2 * rounds, *gw = rw + 3 * rounds, *ga = rw + 4 * rounds;
    if (sq_engine_generate(en, &q, 1, NULL, NULL, NULL, &e)) return fprintf(stderr, "%s\n", e.msg), 1; /* warm-up */
    stream(s, ns, &sink);
    for (int r = 0; r < rounds; r++) {
        double t0 = sq_now();
        if (sq_engine_generate(en, &q, 1, NULL, NULL, NULL, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
        double step = wbytes * G / (sq_now() - t0); /* G one-token steps: the first is the prompt's */
        double bw = stream(s, ns, &sink), ba = stream(&sa, 1, &sink);
        gs[r] = step / 1e9, gw[r] = bw / 1e9, ga[r] = ba / 1e9;
        rw[r] = step / bw, ra[r] = step / ba;
        printf("round %2d: step %.2f GB/s of weights (%.1f tok/s); read of the weights %.2f GB/s, of 1 GiB anonymous "
               "%.2f GB/s: %.0f%%, %.0f%%\n",
               r, gs[r], step / wbytes, gw[r], ga[r], 100 * rw[r], 100 * ra[r]);
    }
    printf("median of %d rounds: step %.2f GB/s; the step at %.1f%% of the read of its own weights, %.1f%% of the "
           "anonymous probe (medians of the per-round ratios); reads %.2f / %.2f GB/s%s\n",
           rounds, median(gs, rounds), 100 * median(rw, rounds), 100 * median(ra, rounds), median(gw, rounds),
           median(ga, rounds), sink == 1.5 ? " " : "");
    free(rw);
    free(anon);
    sq_engine_free(en);
    sq_model_close(m);
    return 0;
}
