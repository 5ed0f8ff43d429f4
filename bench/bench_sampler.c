/* Sampler benchmark: sq_sample against the previous sampler (tests/sampler_ref.h, the
 * definition the new one matches token for token), alternating on the same rows over Qwen2's
 * vocabulary: the respond shape's parameters (temperature 0.7, top-p 0.95) on flat rows (a
 * random network's logits) and peaked ones (a trained model's), and question generation's
 * (temperature 1.0, top-p 0.99) on peaked rows.
 *
 *   bench_sampler [ROUNDS]    prints CPU µs per draw, old and new, per case and round */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../tests/sampler_ref.h"
#include "fma_peak.h" /* sq_bench_thread_seconds: CPU time, which a neighbour does not inflate */

static void row(float *l, int V, int peaked, sq_rng *r) {
    for (int i = 0; i < V; i++) {
        l[i] = peaked ? (float)(sq_rng_normal(r) * 2 - 8) : (float)(1.5 * sq_rng_normal(r));
        if (peaked && sq_rng_below(r, 1000) == 0) l[i] += (float)(10 + 8 * sq_rng_uniform(r));
    }
}

int main(int argc, char **argv) {
    int V = 151936, rounds = argc > 1 ? atoi(argv[1]) : 3, rows = 16, draws = 4;
    sq_sample_scratch s;
    sq_err e;
    if (sq_sample_scratch_init(&s, V, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    float *l = malloc(sizeof(float) * (size_t)V * rows);
    if (!l) return 1;
    /* The respond stage's parameters on both kinds of rows, then question generation's
     * (temperature 1.0, top-p 0.99), whose nucleus reaches deep into a trained model's tail. */
    static const struct {
        int peaked;
        float temperature, top_p;
    } cases[] = {{0, 0.7f, 0.95f}, {1, 0.7f, 0.95f}, {1, 1.0f, 0.99f}};
    sq_rng r;
    sq_rng_seed(&r, 1);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        sq_gen_params p;
        memset(&p, 0, sizeof p);
        p.temperature = cases[c].temperature;
        p.top_p = cases[c].top_p;
        for (int i = 0; i < rows; i++) row(l + (size_t)i * V, V, cases[c].peaked, &r);
        for (int round = 0; round < rounds; round++) {
            double t[2];
            long sink = 0;
            for (int which = 0; which < 2; which++) {
                sq_rng g;
                sq_rng_seed(&g, 7);
                double t0 = sq_bench_thread_seconds();
                float lp;
                for (int d = 0; d < draws; d++)
                    for (int i = 0; i < rows; i++)
                        sink += which ? sq_sample(l + (size_t)i * V, V, &p, &g, &s, &lp)
                                      : ref_sample(l + (size_t)i * V, V, &p, &g, &s, &lp);
                t[which] = (sq_bench_thread_seconds() - t0) / (draws * rows) * 1e6;
            }
            printf("%s rows, V %d, temperature %.1f, top-p %.2f: old %.0f us, new %.0f us of CPU per draw (%.2fx)%s\n",
                   cases[c].peaked ? "peaked" : "flat", V, p.temperature, p.top_p, t[0], t[1], t[0] / t[1],
                   sink == -1 ? " " : "");
        }
    }
    free(l);
    sq_sample_scratch_free(&s);
    return 0;
}
