/* Sampler benchmark: sq_sample against the previous sampler (tests/sampler_ref.h, the
 * definition the new one matches token for token), alternating on the same rows, at the
 * respond shape's parameters (temperature 0.7, top-p 0.95) over Qwen2's vocabulary, on two
 * kinds of rows: flat (a random network's logits) and peaked (a trained model's).
 *
 *   bench_sampler [ROUNDS]    prints CPU µs per draw, old and new, per kind and round */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../tests/sampler_ref.h"

static void row(float *l, int V, int peaked, sq_rng *r) {
    for (int i = 0; i < V; i++) {
        l[i] = peaked ? (float)(sq_rng_normal(r) * 2 - 8) : (float)(1.5 * sq_rng_normal(r));
        if (peaked && sq_rng_below(r, 1000) == 0) l[i] += (float)(10 + 8 * sq_rng_uniform(r));
    }
}

/* CPU time of this thread: on a shared machine, wall time counts the neighbours too. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int V = 151936, rounds = argc > 1 ? atoi(argv[1]) : 3, rows = 16, draws = 4;
    sq_sample_scratch s;
    sq_err e;
    if (sq_sample_scratch_init(&s, V, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    float *l = malloc(sizeof(float) * (size_t)V * rows);
    if (!l) return 1;
    sq_gen_params p;
    memset(&p, 0, sizeof p);
    p.temperature = 0.7f;
    p.top_p = 0.95f;
    sq_rng r;
    sq_rng_seed(&r, 1);
    for (int kind = 0; kind < 2; kind++) {
        for (int i = 0; i < rows; i++) row(l + (size_t)i * V, V, kind, &r);
        for (int round = 0; round < rounds; round++) {
            double t[2];
            long sink = 0;
            for (int which = 0; which < 2; which++) {
                sq_rng g;
                sq_rng_seed(&g, 7);
                double t0 = cpu_now();
                float lp;
                for (int d = 0; d < draws; d++)
                    for (int i = 0; i < rows; i++)
                        sink += which ? sq_sample(l + (size_t)i * V, V, &p, &g, &s, &lp)
                                      : ref_sample(l + (size_t)i * V, V, &p, &g, &s, &lp);
                t[which] = (cpu_now() - t0) / (draws * rows) * 1e6;
            }
            printf("%s rows, V %d, temperature 0.7, top-p 0.95: old %.0f us, new %.0f us of CPU per draw (%.2fx)%s\n",
                   kind ? "peaked" : "flat", V, t[0], t[1], t[0] / t[1], sink == -1 ? " " : "");
        }
    }
    free(l);
    sq_sample_scratch_free(&s);
    return 0;
}
