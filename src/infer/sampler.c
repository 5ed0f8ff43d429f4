/* Sampling one token from a row of logits: greedy, or temperature with top-k / top-p /
 * min-p, always with the raw log-probability of the choice. Deterministic for a given RNG
 * state: the kept tokens are found by thresholds, not by sorting, and drawn in id order. */
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



/* exp(x) for x <= 0 in plain float arithmetic that the compiler vectorises (glibc's expf
 * is a call per element): 2^n * e^r with |r| <= ln2/2 and a degree-6 polynomial, relative
 * error about 2e-7 — far below what sampling can notice. */
static inline float exp_neg(float x) {
    x = x < -87.0f ? -87.0f : x;
    float n = floorf(x * 1.44269504f + 0.5f);
    float r = x - n * 0.693145752f - n * 1.42860677e-6f;
    float q = 1.0f + r * (1.0f + r * (0.5f + r * (0.166666672f + r * (0.0416666418f + r * (0.00833336823f +
                                                                                          r * 0.00138889f)))));
    union { float f; int32_t i; } u = {q};
    u.i += (int32_t)n * (1 << 23); /* n >= -126: the exponent stays normal */
    return u.f;
}

/* Smallest threshold set {p >= tau} of the n candidates holding at least `need` tokens
 * (by_count) or `need` mass: bisection on tau, one pass per step, no sorting. Ties at the
 * edge are all kept, so the result does not depend on the order of the candidates. The pass
 * sums in 8 fixed lanes, which the compiler vectorises without reordering any addition. */
static float threshold(const float *cp, int n, double need, int by_count, float lo, float hi) {
    for (int it = 0; it < 26 && hi - lo > hi * 1e-7f; it++) {
        float mid = 0.5f * (lo + hi), lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int i = 0;
        for (; i + 8 <= n; i += 8)
            for (int l = 0; l < 8; l++) lane[l] += cp[i + l] >= mid ? (by_count ? 1.0f : cp[i + l]) : 0.0f;
        double got = 0;
        for (int l = 0; l < 8; l++) got += lane[l];
        for (; i < n; i++) got += cp[i] >= mid ? (by_count ? 1.0 : cp[i]) : 0.0;
        if (got >= need)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* Count and mass of p >= cut, in 8 fixed lanes (vectorised, order fixed). */
static double mass_above(const float *p, int V, float cut, int *count) {
    float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0}, cnt[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= V; i += 8)
        for (int l = 0; l < 8; l++) {
            int keep = p[i + l] >= cut;
            lane[l] += keep ? p[i + l] : 0.0f;
            cnt[l] += keep ? 1.0f : 0.0f;
        }
    double m = 0, c = 0;
    for (int l = 0; l < 8; l++) m += lane[l], c += cnt[l];
    for (; i < V; i++)
        if (p[i] >= cut) m += p[i], c++;
    *count = (int)c;
    return m;
}

/* Draw with top-k / top-p / min-p applied (p: unnormalised, best token at 1). */
static int32_t filtered_draw(const float *p, int V, double total, int k, float top_p, float min_p, float *cp,
                             int32_t *cid, sq_rng *rng) {
    /* Keep only tokens that can matter: a cut is safe when what it keeps still satisfies
     * top-k and holds the nucleus (the tokens below a cut are the least likely ones). */
    static const float cuts[] = {1e-2f, 1e-4f, 1e-6f, 0.0f};
    float cut = 0;
    for (size_t ci = 0; ci < sizeof cuts / sizeof cuts[0]; ci++) {
        int n;
        double mass = mass_above(p, V, cuts[ci], &n);
        cut = cuts[ci];
        if (n >= k && mass >= top_p * total) break;
    }
    cut = SQ_MAX(cut, min_p);
    int n = 0;
    for (int i = 0; i < V; i++) { /* branch-free compaction */
        cp[n] = p[i];
        cid[n] = i;
        n += p[i] >= cut;
    }
    float tau = 0;
    double kmass = total;
    if (k < n) {
        tau = threshold(cp, n, k, 1, 0, 1);
        kmass = 0;
        for (int i = 0; i < n; i++)
            if (cp[i] >= tau) kmass += cp[i];
    }
    if (top_p < 1) tau = SQ_MAX(tau, threshold(cp, n, top_p * kmass, 0, tau, 1));
    double mass = 0;
    for (int i = 0; i < n; i++)
        if (cp[i] >= tau) mass += cp[i];
    double u = sq_rng_uniform(rng) * mass, acc = 0;
    int32_t last = cid[0];
    for (int i = 0; i < n; i++) {
        if (cp[i] < tau) continue;
        acc += cp[i];
        last = cid[i];
        if (acc > u) return cid[i];
    }
    return last;
}

int32_t sq_sample(const float *logits, int V, const sq_gen_params *prm, sq_rng *rng, sq_sample_scratch *s,
                  float *logprob) {
    int32_t best = 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    float mx = logits[best];
    double sum = 0;
    {
        float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int i = 0;
        for (; i + 8 <= V; i += 8)
            for (int l = 0; l < 8; l++) lane[l] += exp_neg(logits[i + l] - mx);
        for (int l = 0; l < 8; l++) sum += lane[l];
        for (; i < V; i++) sum += exp_neg(logits[i] - mx);
    }
    double lse = mx + log(sum);
    int32_t chosen = best;
    if (prm->temperature > 0) {
        float invt = 1.0f / prm->temperature, *p = s->p;
        double total = 0;
        for (int i = 0; i < V; i++) p[i] = exp_neg((logits[i] - mx) * invt);
        int cnt;
        total = mass_above(p, V, 0.0f, &cnt);
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
            chosen = filtered_draw(p, V, total, k, top_p, min_p, (float *)s->cand, (int32_t *)s->cand + V, rng);
        }
    }
    *logprob = (float)(logits[chosen] - lse);
    return chosen;
}
