/* Sampling one token from a row of logits: greedy, or temperature with top-k / top-p /
 * min-p, always with the raw log-probability of the choice. Deterministic for a given RNG
 * state: candidates are ordered by probability, then by id. */
#include <math.h>
#include <stdlib.h>

#include "scalequest/infer.h"

int sq_sample_scratch_init(sq_sample_scratch *s, int vocab, sq_err *e) {
    s->p = malloc(sizeof(float) * (size_t)vocab);
    s->cand = malloc(8 * (size_t)vocab);
    s->cap = vocab;
    if (!s->p || !s->cand) {
        sq_sample_scratch_free(s);
        return sq_fail(e, SQ_ENOMEM, "sampler: out of memory for a vocabulary of %d", vocab);
    }
    return 0;
}

void sq_sample_scratch_free(sq_sample_scratch *s) {
    free(s->p);
    free(s->cand);
    s->p = NULL;
    s->cand = NULL;
    s->cap = 0;
}

void sq_sample_rng(sq_rng *r, uint64_t seed, int index) {
    /* Distinct, well-mixed streams per sample: splitmix inside sq_rng_seed does the mixing. */
    sq_rng_seed(r, seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(index + 1)));
}

/* Sort state for qsort (no globals: the probabilities travel with each index). */
typedef struct cand {
    float p;
    int32_t id;
} cand;

static int cand_cmp(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

int32_t sq_sample(const float *logits, int V, const sq_gen_params *prm, sq_rng *rng, sq_sample_scratch *s,
                  float *logprob) {
    int32_t best = 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    float mx = logits[best];
    double sum = 0;
    for (int i = 0; i < V; i++) sum += exp((double)logits[i] - mx);
    double lse = mx + log(sum);
    int32_t chosen = best;
    if (prm->temperature > 0) {
        float invt = 1.0f / prm->temperature, *p = s->p;
        double total = 0;
        for (int i = 0; i < V; i++) total += p[i] = expf((logits[i] - mx) * invt);
        int k = prm->top_k > 0 && prm->top_k < V ? prm->top_k : V;
        float top_p = prm->top_p > 0 && prm->top_p < 1 ? prm->top_p : 1;
        float min_p = prm->min_p > 0 ? SQ_MIN(prm->min_p, 1.0f) : 0; /* p[best] == 1 */
        if (k == V && top_p == 1) {
            /* No ranking needed: draw in id order over the tokens min-p keeps. */
            double kept = 0;
            for (int i = 0; i < V; i++)
                if (p[i] >= min_p) kept += p[i];
            double u = sq_rng_uniform(rng) * kept, acc = 0;
            chosen = best;
            for (int i = 0; i < V; i++) {
                if (p[i] < min_p) continue;
                acc += p[i];
                if (acc > u) {
                    chosen = i;
                    break;
                }
            }
        } else {
            /* Rank only plausible tokens when they provably hold the nucleus and top-k; the
             * ones below the cut together weigh at most V * cut of the total. */
            float cut = 1e-6f;
            int n = 0;
            double cmass = 0;
            for (int i = 0; i < V; i++)
                if (p[i] >= cut) cmass += p[i], n++;
            if (n < k || cmass < top_p * total) cut = 0;
            cand *cs = s->cand;
            n = 0;
            for (int i = 0; i < V; i++)
                if (p[i] >= cut && p[i] >= min_p) cs[n].p = p[i], cs[n++].id = i;
            qsort(cs, (size_t)n, sizeof(cand), cand_cmp);
            if (n > k) n = k;
            double mass = 0;
            for (int i = 0; i < n; i++) mass += cs[i].p;
            if (top_p < 1) { /* top-p over the top-k set (renormalised), min-p already applied */
                double ktotal = k < V ? mass : total, acc = 0;
                int m = 0;
                while (m < n) {
                    acc += cs[m++].p;
                    if (acc >= top_p * ktotal) break;
                }
                n = m;
                mass = acc;
            }
            double u = sq_rng_uniform(rng) * mass, acc = 0;
            chosen = cs[0].id;
            for (int i = 0; i < n; i++) {
                acc += cs[i].p;
                if (acc > u) {
                    chosen = cs[i].id;
                    break;
                }
            }
        }
    }
    *logprob = (float)(logits[chosen] - lse);
    return chosen;
}
