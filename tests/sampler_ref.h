/* The sampler as it was before its faster rewrite (src/infer/sampler.c at that time), kept
 * verbatim but for the names: test_sampler.c draws with both and requires the same token,
 * the same log-probability bits and the same RNG state. Its scratch is the old layout
 * (p: V floats, cand: 12 V bytes, hist: 4 x 2048 doubles). Do not "fix" this file: it is the
 * definition the new code must match. */
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/infer.h"

enum { REF_SAMPLE_BUCKETS = 2048 };
#define SQ_SAMPLE_BUCKETS REF_SAMPLE_BUCKETS

/* exp(x) for x <= 0 in plain float arithmetic that the compiler vectorises (glibc's expf
 * is a call per element): 2^n * e^r with |r| <= ln2/2 and a degree-6 polynomial, relative
 * error about 2e-7 — far below what sampling can notice. */
static inline float ref_exp_neg(float x) {
    x = x < -87.0f ? -87.0f : x;
    float n = floorf(x * 1.44269504f + 0.5f);
    float r = x - n * 0.693145752f - n * 1.42860677e-6f;
    float q = 1.0f + r * (1.0f + r * (0.5f + r * (0.166666672f + r * (0.0416666418f + r * (0.00833336823f +
                                                                                          r * 0.00138889f)))));
    union { float f; int32_t i; } u = {q};
    /* n >= -126: the exponent stays normal. In unsigned arithmetic: a NaN row (refused right
     * after) makes n INT_MIN here, and the signed product would overflow. Same bits otherwise. */
    u.i = (int32_t)((uint32_t)u.i + ((uint32_t)(int32_t)n << 23));
    return u.f;
}

#if defined(__AVX2__) && defined(__FMA__)
#define REF_SAMPLER_AVX2 1
/* ref_exp_neg on 8 lanes with exactly its operations (no contraction), so a value is the same
 * whichever of the two computed it. */
static inline __m256 ref_exp_neg8(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    __m256 n = _mm256_floor_ps(_mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)), _mm256_set1_ps(0.5f)));
    __m256 r = _mm256_sub_ps(_mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(0.693145752f))),
                             _mm256_mul_ps(n, _mm256_set1_ps(1.42860677e-6f)));
    __m256 t = _mm256_mul_ps(r, _mm256_set1_ps(0.00138889f));
    t = _mm256_mul_ps(r, _mm256_add_ps(_mm256_set1_ps(0.00833336823f), t));
    t = _mm256_mul_ps(r, _mm256_add_ps(_mm256_set1_ps(0.0416666418f), t));
    t = _mm256_mul_ps(r, _mm256_add_ps(_mm256_set1_ps(0.166666672f), t));
    t = _mm256_mul_ps(r, _mm256_add_ps(_mm256_set1_ps(0.5f), t));
    t = _mm256_mul_ps(r, _mm256_add_ps(_mm256_set1_ps(1.0f), t));
    __m256 q = _mm256_add_ps(_mm256_set1_ps(1.0f), t);
    __m256i e = _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23);
    return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(q), e));
}

static inline double ref_lanes_sum(__m256 v) {
    float l[8];
    _mm256_storeu_ps(l, v);
    double s = 0;
    for (int i = 0; i < 8; i++) s += l[i];
    return s;
}
#endif

static int ref_desc_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

/* The largest tau such that the candidates {p >= tau} (p in [lo, 1]) hold at least `need`
 * tokens (by_count) or `need` mass; lo when none does. Ties at the edge are all kept, so the
 * result does not depend on the order of the candidates. No sort of the whole set: one pass
 * buckets the values by their top 12 bits (monotonic for floats >= 0), the bucket where the
 * running total from the top crosses `need` is found, and only that bucket is sorted. */
static float ref_threshold(const float *cp, int n, double need, int by_count, float lo, float *tmp, double *hist) {
    enum { NB = SQ_SAMPLE_BUCKETS }; /* (bits of 1.0f) >> 19 == 2032 */
    /* Four interleaved histograms: a flat distribution puts long runs into one bucket, and
     * one histogram would chain every add through the same memory word. */
    memset(hist, 0, sizeof(double) * 4 * NB);
    for (int i = 0; i < n; i++) {
        if (!(cp[i] >= lo) || !(cp[i] <= 1.0f)) continue;
        uint32_t u;
        memcpy(&u, &cp[i], 4);
        hist[(i & 3) * NB + (u >> 19)] += by_count ? 1.0 : cp[i];
    }
    double acc = 0;
    int b = NB - 1;
    for (; b >= 0; b--) {
        double add = hist[b] + hist[NB + b] + hist[2 * NB + b] + hist[3 * NB + b];
        if (acc + add >= need) break;
        acc += add;
    }
    if (b < 0) return lo;
    int m = 0;
    for (int i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &cp[i], 4);
        tmp[m] = cp[i];
        m += cp[i] >= lo && cp[i] <= 1.0f && (u >> 19) == (uint32_t)b;
    }
    qsort(tmp, (size_t)m, sizeof(float), ref_desc_float);
    for (int i = 0; i < m; i++) {
        acc += by_count ? 1.0 : tmp[i];
        if (acc >= need) return tmp[i];
    }
    return tmp[m - 1]; /* rounding: the bucket's own total reached need, its items just short */
}

#if !defined(REF_SAMPLER_AVX2)
/* Count and mass of p >= cut, in 8 fixed lanes (vectorised, order fixed). */
static double ref_mass_above(const float *p, int V, float cut, int *count) {
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
#endif

/* Draw with top-k / top-p / min-p applied (p: unnormalised, best token at 1). */
static int32_t ref_filtered_draw(const float *p, int V, double total, int k, float top_p, float min_p, float *cp,
                             int32_t *cid, float *tmp, double *hist, sq_rng *rng) {
    /* Keep only tokens that can matter: a cut is safe when what it keeps still satisfies
     * top-k and holds the nucleus (the tokens below a cut are the least likely ones); the
     * largest safe cut of a few, else none. */
    enum { NC = 6 };
    static const float cuts[NC] = {1e-2f, 1e-3f, 1e-4f, 1e-5f, 1e-6f, 1e-8f};
    float cut = 0;
    double cmass[NC];
    int cnt[NC];
#if defined(REF_SAMPLER_AVX2)
    /* Mass and count above every cut in one pass (each as ref_mass_above would sum it). */
    {
        __m256 vm[NC], vc[NC], one = _mm256_set1_ps(1.0f);
        for (int c = 0; c < NC; c++) vm[c] = vc[c] = _mm256_setzero_ps();
        int i = 0;
        for (; i + 8 <= V; i += 8) {
            __m256 v = _mm256_loadu_ps(p + i);
            for (int c = 0; c < NC; c++) {
                __m256 keep = _mm256_cmp_ps(v, _mm256_set1_ps(cuts[c]), _CMP_GE_OQ);
                vm[c] = _mm256_add_ps(vm[c], _mm256_and_ps(keep, v));
                vc[c] = _mm256_add_ps(vc[c], _mm256_and_ps(keep, one));
            }
        }
        for (int c = 0; c < NC; c++) {
            cmass[c] = ref_lanes_sum(vm[c]);
            double cc = ref_lanes_sum(vc[c]);
            for (int t = i; t < V; t++)
                if (p[t] >= cuts[c]) cmass[c] += p[t], cc++;
            cnt[c] = (int)cc;
        }
    }
#else
    for (int c = 0; c < NC; c++) cmass[c] = ref_mass_above(p, V, cuts[c], &cnt[c]);
#endif
    for (int c = 0; c < NC && !cut; c++)
        if (cnt[c] >= k && cmass[c] >= top_p * total) cut = cuts[c];
    cut = SQ_MAX(cut, min_p);
    int n = 0, i = 0;
    if (cut > 0) {
#if defined(REF_SAMPLER_AVX2)
        /* Whole blocks of 8 below the cut (most of them) are skipped by one compare. */
        for (__m256 vcut = _mm256_set1_ps(cut); i + 8 <= V; i += 8) {
            unsigned mask = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(p + i), vcut, _CMP_GE_OQ));
            for (; mask; mask &= mask - 1) {
                int l = __builtin_ctz(mask);
                cp[n] = p[i + l];
                cid[n++] = i + l;
            }
        }
#endif
        for (; i < V; i++) { /* branch-free compaction */
            cp[n] = p[i];
            cid[n] = i;
            n += p[i] >= cut;
        }
    } else { /* a flat distribution: every token is a candidate, ids are the indices */
        cp = (float *)p;
        cid = NULL;
        n = V;
    }
    float tau = 0;
    double kmass = total;
    if (k < n) {
        tau = ref_threshold(cp, n, k, 1, 0, tmp, hist);
        kmass = 0;
        for (i = 0; i < n; i++) kmass += cp[i] >= tau ? cp[i] : 0.0;
    }
    if (top_p < 1) tau = SQ_MAX(tau, ref_threshold(cp, n, top_p * kmass, 0, tau, tmp, hist));
    /* The draw: in candidate (id) order, through the mass of blocks of 8 first. */
    double mass = 0, bsum[8], part[4] = {0, 0, 0, 0}; /* four chains: no wait on each add */
    for (i = 0; i + 4 <= n; i += 4)
        for (int l = 0; l < 4; l++) part[l] += cp[i + l] >= tau ? cp[i + l] : 0.0;
    for (; i < n; i++) part[0] += cp[i] >= tau ? cp[i] : 0.0;
    mass = (part[0] + part[1]) + (part[2] + part[3]);
    double u = sq_rng_uniform(rng) * mass, acc = 0;
    int last = -1;
    for (int b0 = 0; b0 < n; b0 += 8) {
        int e = SQ_MIN(b0 + 8, n);
        double blk = 0;
        for (i = b0; i < e; i++) blk += bsum[i - b0] = cp[i] >= tau ? cp[i] : 0.0;
        if (acc + blk <= u) {
            acc += blk;
            for (i = b0; i < e; i++) last = cp[i] >= tau ? i : last;
            continue;
        }
        for (i = b0; i < e; i++) {
            if (cp[i] < tau) continue;
            acc += bsum[i - b0];
            last = i;
            if (acc > u) return cid ? cid[i] : i;
        }
    }
    return last < 0 ? (cid ? cid[0] : 0) : (cid ? cid[last] : last);
}

static int32_t ref_sample(const float *logits, int V, const sq_gen_params *prm, sq_rng *rng, sq_sample_scratch *s,
                          float *logprob) {
    int32_t best = 0;
    double sum = 0;
    float mx;
#if defined(REF_SAMPLER_AVX2)
    {
        /* The maximum, then its first index: the token the scalar scan would pick. */
        int i = 0;
        __m256 vm = _mm256_set1_ps(logits[0]);
        for (; i + 8 <= V; i += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(logits + i));
        float l[8];
        _mm256_storeu_ps(l, vm);
        mx = l[0];
        for (int k = 1; k < 8; k++) mx = l[k] > mx ? l[k] : mx;
        for (; i < V; i++) mx = logits[i] > mx ? logits[i] : mx;
        while (best < V - 1 && !(logits[best] == mx)) best++;
        mx = logits[best];
        __m256 acc = _mm256_setzero_ps(), vmx = _mm256_set1_ps(mx);
        for (i = 0; i + 8 <= V; i += 8) acc = _mm256_add_ps(acc, ref_exp_neg8(_mm256_sub_ps(_mm256_loadu_ps(logits + i), vmx)));
        sum = ref_lanes_sum(acc);
        for (; i < V; i++) sum += ref_exp_neg(logits[i] - mx);
    }
#else
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    mx = logits[best];
    {
        float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int i = 0;
        for (; i + 8 <= V; i += 8)
            for (int l = 0; l < 8; l++) lane[l] += ref_exp_neg(logits[i + l] - mx);
        for (int l = 0; l < 8; l++) sum += lane[l];
        for (; i < V; i++) sum += ref_exp_neg(logits[i] - mx);
    }
#endif
    double lse = mx + log(sum);
    if (!isfinite(lse)) return -1; /* NaN or Inf in the row: nothing to draw from */
    int32_t chosen = best;
    if (prm->temperature > 0) {
        float invt = 1.0f / prm->temperature, *p = s->p;
        double total = 0;
        int i = 0;
#if defined(REF_SAMPLER_AVX2)
        __m256 vmx = _mm256_set1_ps(mx), vt = _mm256_set1_ps(invt), acc = _mm256_setzero_ps();
        for (; i + 8 <= V; i += 8) {
            __m256 v = ref_exp_neg8(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(logits + i), vmx), vt));
            _mm256_storeu_ps(p + i, v);
            acc = _mm256_add_ps(acc, v); /* ref_mass_above(p, V, 0) in one pass: every p >= 0 */
        }
        int tail = i;
        for (; i < V; i++) p[i] = ref_exp_neg((logits[i] - mx) * invt);
        total = ref_lanes_sum(acc);
        for (i = tail; i < V; i++) total += p[i];
#else
        for (; i < V; i++) p[i] = ref_exp_neg((logits[i] - mx) * invt);
        int cnt;
        total = ref_mass_above(p, V, 0.0f, &cnt);
#endif
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
            chosen = ref_filtered_draw(p, V, total, k, top_p, min_p, (float *)s->cand, (int32_t *)s->cand + V,
                                   (float *)s->cand + 2 * (size_t)V, s->hist, rng);
        }
    }
    *logprob = (float)(logits[chosen] - lse);
    return chosen;
}
