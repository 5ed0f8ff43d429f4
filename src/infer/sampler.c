/* Sampling one token from a row of logits: greedy, or temperature with top-k / top-p /
 * min-p, always with the raw log-probability of the choice. Deterministic for a given RNG
 * state: the kept tokens are found by thresholds, not by sorting, and drawn in id order. */
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/infer.h"

enum { SQ_SAMPLE_BUCKETS = 2048 }; /* threshold(): floats in [0, 1] by their top 12 bits */
/* The four interleaved histograms lie HIST_STRIDE doubles apart, not 2048 (16 KiB, a multiple
 * of 4 KiB): at that stride a load from one table right after a store to the same bucket of
 * another shares the low 12 address bits, and the CPU may take it for dependent on the store. */
enum { HIST_STRIDE = SQ_SAMPLE_BUCKETS + 8 };

/* The four tables: buckets [from, to) zeroed; item j's add goes to table j & 3 (neighbouring
 * items in different tables, so a run into one bucket does not chain every add through one
 * memory word); a bucket's total is its four entries. */
static inline void hist4_clear(double *hist, int from, int to) {
    for (int t = 0; t < 4; t++) memset(hist + t * HIST_STRIDE + from, 0, sizeof(double) * (size_t)(to - from));
}
static inline void hist4_add(double *hist, int j, uint32_t bucket, double v) { hist[(j & 3) * HIST_STRIDE + bucket] += v; }
static inline double hist4_total(const double *hist, int b) {
    return hist[b] + hist[HIST_STRIDE + b] + hist[2 * HIST_STRIDE + b] + hist[3 * HIST_STRIDE + b];
}
/* threshold_from(): a crossing bucket of more than SUB_SORT_MAX items is split again by the
 * floats' next 11 bits (SUB_BUCKETS <= SQ_SAMPLE_BUCKETS: it reuses the histogram's memory). */
enum { SUB_SORT_MAX = 256, SUB_BUCKETS = 2048 };

int sq_sample_scratch_init(sq_sample_scratch *s, int vocab, sq_err *e) {
    s->p = malloc(sizeof(float) * (size_t)vocab);
    s->cand = malloc(12 * (size_t)vocab); /* candidates' p, their ids, a threshold bucket */
    s->hist = malloc(sizeof(double) * 4 * HIST_STRIDE);
    s->cap = vocab;
    if (!s->p || !s->cand || !s->hist) {
        sq_sample_scratch_free(s);
        return sq_fail(e, SQ_ENOMEM, "sampler: out of memory for a vocabulary of %d", vocab);
    }
    return 0;
}

void sq_sample_scratch_free(sq_sample_scratch *s) {
    free(s->p);
    free(s->cand);
    free(s->hist);
    s->p = NULL;
    s->cand = NULL;
    s->hist = NULL;
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
    /* n >= -126: the exponent stays normal. In unsigned arithmetic: a NaN row (refused right
     * after) makes n INT_MIN here, and the signed product would overflow. Same bits otherwise. */
    u.i = (int32_t)((uint32_t)u.i + ((uint32_t)(int32_t)n << 23));
    return u.f;
}

#if defined(__AVX2__) && defined(__FMA__)
#define SQ_SAMPLER_AVX2 1
/* exp_neg on 8 lanes with exactly its operations (no contraction), so a value is the same
 * whichever of the two computed it. */
static inline __m256 exp_neg8(__m256 x) {
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

#if defined(__AVX512F__)
/* exp_neg8 on 16 lanes, operation for operation (floor as a round toward -inf). */
static inline __m512 exp_neg16(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)), _mm512_set1_ps(0.5f)),
                                    _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_sub_ps(_mm512_sub_ps(x, _mm512_mul_ps(n, _mm512_set1_ps(0.693145752f))),
                             _mm512_mul_ps(n, _mm512_set1_ps(1.42860677e-6f)));
    __m512 t = _mm512_mul_ps(r, _mm512_set1_ps(0.00138889f));
    t = _mm512_mul_ps(r, _mm512_add_ps(_mm512_set1_ps(0.00833336823f), t));
    t = _mm512_mul_ps(r, _mm512_add_ps(_mm512_set1_ps(0.0416666418f), t));
    t = _mm512_mul_ps(r, _mm512_add_ps(_mm512_set1_ps(0.166666672f), t));
    t = _mm512_mul_ps(r, _mm512_add_ps(_mm512_set1_ps(0.5f), t));
    t = _mm512_mul_ps(r, _mm512_add_ps(_mm512_set1_ps(1.0f), t));
    __m512 q = _mm512_add_ps(_mm512_set1_ps(1.0f), t);
    __m512i e = _mm512_slli_epi32(_mm512_cvtps_epi32(n), 23);
    return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(q), e));
}
/* The two 8-lane halves added to an 8-lane sum in element order: lane l gets i + l, then
 * i + 8 + l, as two steps of the 8-wide loop would add them. */
static inline __m256 add_halves(__m256 acc, __m512 v) {
    acc = _mm256_add_ps(acc, _mm512_castps512_ps256(v));
    return _mm256_add_ps(acc, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}
#endif

static inline double lanes_sum(__m256 v) {
    float l[8];
    _mm256_storeu_ps(l, v);
    double s = 0;
    for (int i = 0; i < 8; i++) s += l[i];
    return s;
}
#endif

static int desc_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

/* threshold()'s histogram and scan over the candidates with lo <= p <= 1 and p >= floor_ (a
 * bucket's lower edge), and p < ceil_ (another edge; 0: none) where acc0 is the exact total
 * above ceil_: sets *below when the scan runs below floor_'s bucket without reaching `need`
 * (the caller then starts again without a floor), else returns what threshold() would. */
static float threshold_from(const float *cp, int n, double need, int by_count, float lo, float floor_, float ceil_,
                            double acc0, float *tmp, double *hist, int *below) {
    enum { NB = SQ_SAMPLE_BUCKETS }; /* (bits of 1.0f) >> 19 == 2032 */
    float low = SQ_MAX(lo, floor_);
    uint32_t fb, cb;
    memcpy(&fb, &floor_, 4);
    memcpy(&cb, &ceil_, 4);
    int bfloor = (int)(fb >> 19), btop = ceil_ > 0 ? (int)(cb >> 19) - 1 : NB - 1;
    float high = ceil_ > 0 ? ceil_ : 2.0f; /* p < high: below ceil_, or every p <= 1 */
    /* Four interleaved histograms: a flat distribution puts long runs into one bucket, and
     * one histogram would chain every add through the same memory word. Which of the four
     * an item lands in does not matter: a bucket's items share one exponent, so their sum
     * in double is exact in any order. */
    hist4_clear(hist, bfloor, NB);
    int i = 0;
#if defined(SQ_SAMPLER_AVX2)
    /* Whole blocks of 8 outside [low, 1] (most of them, once there is a floor) cost one
     * compare; the others go through their kept lanes. */
    {
        __m256 vlo = _mm256_set1_ps(low), one = _mm256_set1_ps(1.0f), vhi = _mm256_set1_ps(high);
        for (; i + 8 <= n; i += 8) {
            __m256 v = _mm256_loadu_ps(cp + i);
            unsigned mask = (unsigned)_mm256_movemask_ps(_mm256_and_ps(
                _mm256_and_ps(_mm256_cmp_ps(v, vlo, _CMP_GE_OQ), _mm256_cmp_ps(v, one, _CMP_LE_OQ)),
                _mm256_cmp_ps(v, vhi, _CMP_LT_OQ)));
            if (!mask) continue;
            uint32_t idx[8];
            _mm256_storeu_si256((__m256i *)idx, _mm256_srli_epi32(_mm256_castps_si256(v), 19));
            for (; mask; mask &= mask - 1) {
                int l = __builtin_ctz(mask);
                hist4_add(hist, l, idx[l], by_count ? 1.0 : cp[i + l]);
            }
        }
    }
#endif
    for (; i < n; i++) {
        if (!(cp[i] >= low) || !(cp[i] <= 1.0f) || !(cp[i] < high)) continue;
        uint32_t u;
        memcpy(&u, &cp[i], 4);
        hist4_add(hist, i, u >> 19, by_count ? 1.0 : cp[i]);
    }
    double acc = acc0;
    int b = btop;
    for (; b >= bfloor; b--) {
        double add = hist4_total(hist, b);
        if (acc + add >= need) break;
        acc += add;
    }
    if (b < bfloor) {
        if (bfloor > 0) return *below = 1, 0;
        return lo;
    }
    int m = 0;
    i = 0;
#if defined(SQ_SAMPLER_AVX2)
    {
        __m256 vlo = _mm256_set1_ps(lo), one = _mm256_set1_ps(1.0f);
        __m256i vb = _mm256_set1_epi32(b);
        for (; i + 8 <= n; i += 8) {
            __m256 v = _mm256_loadu_ps(cp + i);
            __m256 in = _mm256_and_ps(_mm256_cmp_ps(v, vlo, _CMP_GE_OQ), _mm256_cmp_ps(v, one, _CMP_LE_OQ));
            __m256i same = _mm256_cmpeq_epi32(_mm256_srli_epi32(_mm256_castps_si256(v), 19), vb);
            unsigned mask = (unsigned)_mm256_movemask_ps(_mm256_and_ps(in, _mm256_castsi256_ps(same)));
            for (; mask; mask &= mask - 1) tmp[m++] = cp[i + __builtin_ctz(mask)];
        }
    }
#endif
    for (; i < n; i++) {
        uint32_t u;
        memcpy(&u, &cp[i], 4);
        tmp[m] = cp[i];
        m += cp[i] >= lo && cp[i] <= 1.0f && (u >> 19) == (uint32_t)b;
    }
    if (m > SUB_SORT_MAX) {
        /* A flat row puts thousands of items into the crossing bucket. Instead of sorting them
         * all, a second histogram on their next 11 bits (monotonic within the bucket: the top
         * 13 bits are the bucket's) finds the sub-bucket where the total crosses `need`, and
         * only that one is sorted. The totals stay exact: the bucket's items share one
         * exponent, so their double sums are exact in any order, and the running total at
         * each sub-bucket's top equals the sorted scan's. */
        double *sub = hist; /* the first histogram is spent */
        memset(sub, 0, sizeof(double) * SUB_BUCKETS);
        float smallest = tmp[0];
        for (i = 0; i < m; i++) {
            uint32_t u;
            memcpy(&u, &tmp[i], 4);
            sub[(u >> 8) & (SUB_BUCKETS - 1)] += by_count ? 1.0 : tmp[i];
            smallest = tmp[i] < smallest ? tmp[i] : smallest;
        }
        int c = SUB_BUCKETS - 1;
        for (; c >= 0; c--) {
            if (acc + sub[c] >= need) break;
            acc += sub[c];
        }
        if (c < 0) return smallest; /* as the sorted scan's end below */
        int k = 0;
        for (i = 0; i < m; i++) { /* the crossing sub-bucket's items, compacted to the front */
            uint32_t u;
            memcpy(&u, &tmp[i], 4);
            tmp[k] = tmp[i];
            k += ((u >> 8) & (SUB_BUCKETS - 1)) == (uint32_t)c;
        }
        m = k;
    }
    qsort(tmp, (size_t)m, sizeof(float), desc_float);
    for (i = 0; i < m; i++) {
        acc += by_count ? 1.0 : tmp[i];
        if (acc >= need) return tmp[i];
    }
    return tmp[m - 1]; /* rounding: the bucket's own total reached need, its items just short */
}

/* The largest tau such that the candidates {p >= tau} (p in [lo, 1]) hold at least `need`
 * tokens (by_count) or `need` mass; lo when none does. Ties at the edge are all kept, so the
 * result does not depend on the order of the candidates. No sort of the whole set: one pass
 * buckets the values by their top 12 bits (monotonic for floats >= 0), the bucket where the
 * running total from the top crosses `need` is found, and only that bucket is sorted.
 *
 * Most candidates lie far below tau (a peaked distribution keeps a handful of tokens), so a
 * first vector pass sums the count or mass above a few powers of two — each a bucket's lower
 * edge — and the histogram takes only the items above the highest one that already holds
 * `need` (with a margin for the float sums' rounding). Every bucket above that floor gets
 * the same exact total as without it, so the scan stops at the same bucket and returns the
 * same tau; if the scan still runs below the floor (the margin was not enough), it is
 * redone without one. */
static float threshold(const float *cp, int n, double need, int by_count, float lo, float *tmp, double *hist) {
    float floor_ = 0;
#if defined(SQ_SAMPLER_AVX2)
    float ceil_ = 0;
    double ceil_est = 0; /* the float estimate of the total above ceil_ */
    enum { NF = 15 };
    static const float floors[NF] = {0x1p-1f,  0x1p-2f,  0x1p-3f,  0x1p-4f,  0x1p-6f,  0x1p-8f,  0x1p-10f, 0x1p-11f,
                                     0x1p-12f, 0x1p-13f, 0x1p-14f, 0x1p-16f, 0x1p-18f, 0x1p-20f, 0x1p-24f};
    if (n >= 256) {
        double est[NF]; /* count or mass above each floor, in float lanes (n % 8 items left out) */
        int i = 0;
#if defined(__AVX512F__)
        { /* a compare into a mask and one masked add per floor, 16 items at a time */
            __m512 acc[NF], one = _mm512_set1_ps(1.0f), vlo = _mm512_set1_ps(lo);
            for (int f = 0; f < NF; f++) acc[f] = _mm512_setzero_ps();
            for (; i + 16 <= n; i += 16) {
                __m512 v = _mm512_loadu_ps(cp + i), w = by_count ? one : v;
                __mmask16 in = _mm512_cmp_ps_mask(v, vlo, _CMP_GE_OQ) & _mm512_cmp_ps_mask(v, one, _CMP_LE_OQ);
                for (int f = 0; f < NF; f++)
                    acc[f] = _mm512_mask_add_ps(acc[f], in & _mm512_cmp_ps_mask(v, _mm512_set1_ps(floors[f]), _CMP_GE_OQ),
                                                acc[f], w);
            }
            for (int f = 0; f < NF; f++) est[f] = _mm512_reduce_add_ps(acc[f]);
        }
#else
        {
            __m256 acc[NF], one = _mm256_set1_ps(1.0f), vlo = _mm256_set1_ps(lo);
            for (int f = 0; f < NF; f++) acc[f] = _mm256_setzero_ps();
            for (; i + 8 <= n; i += 8) {
                __m256 v = _mm256_loadu_ps(cp + i);
                __m256 in = _mm256_and_ps(_mm256_cmp_ps(v, vlo, _CMP_GE_OQ), _mm256_cmp_ps(v, one, _CMP_LE_OQ));
                __m256 w = _mm256_and_ps(in, by_count ? one : v);
                for (int f = 0; f < NF; f++)
                    acc[f] = _mm256_add_ps(acc[f], _mm256_and_ps(_mm256_cmp_ps(v, _mm256_set1_ps(floors[f]), _CMP_GE_OQ), w));
            }
            for (int f = 0; f < NF; f++) est[f] = lanes_sum(acc[f]);
        }
#endif
        /* Float sums of up to n/8 items per lane: within ~1e-3 relative at worst, usually
         * far closer; a wrong pick costs time, never the result. */
        for (int f = 0; f < NF; f++)
            if (floors[f] > lo && est[f] >= need * 1.001 + (by_count ? 1 : 0)) {
                floor_ = floors[f];
                if (f > 0) ceil_ = floors[f - 1], ceil_est = est[f - 1] + (n - i); /* + the items left out */
                break;
            }
    }
    /* A flat row's nucleus holds most tokens, all above the floor. The buckets above the
     * next floor up (ceil_, a power of two) need no histogram when the scan cannot stop in
     * them: the old scan's running total is exact there — counts are integers, and masses
     * of p >= ceil_ are multiples of ceil_ * 2^-23 whose sums (at most the mass above
     * ceil_) stay below ceil_ * 2^30, within a double's 53 bits — so it equals the exact
     * total above ceil_, which a vector pass sums in doubles (exact in any order, for the
     * same reason). If that total already reaches `need`, the stop is above ceil_ and the
     * floor alone is used. */
    /* (The 1% margin on the float estimate holds for up to 2^20 / 8 items per lane.) */
    if (ceil_ > 0 && (by_count || (n < (1 << 20) && ceil_est * 1.01 + 1 < (double)ceil_ * 0x1p30))) {
        __m256d va = _mm256_setzero_pd(), vc = _mm256_set1_pd(ceil_), vone = _mm256_set1_pd(1.0);
        int i = 0;
        for (; i + 4 <= n; i += 4) {
            __m256d v = _mm256_cvtps_pd(_mm_loadu_ps(cp + i));
            __m256d in = _mm256_and_pd(_mm256_cmp_pd(v, vc, _CMP_GE_OQ), _mm256_cmp_pd(v, vone, _CMP_LE_OQ));
            va = _mm256_add_pd(va, _mm256_and_pd(in, by_count ? vone : v));
        }
        double l4[4], above = 0;
        _mm256_storeu_pd(l4, va);
        for (int l = 0; l < 4; l++) above += l4[l];
        for (; i < n; i++)
            if (cp[i] >= ceil_ && cp[i] <= 1.0f) above += by_count ? 1.0 : cp[i];
        if (above < need) {
            int below = 0;
            float tau = threshold_from(cp, n, need, by_count, lo, floor_, ceil_, above, tmp, hist, &below);
            if (!below) return tau;
        }
    }
#endif
    if (floor_ > 0) {
        int below = 0;
        float tau = threshold_from(cp, n, need, by_count, lo, floor_, 0, 0, tmp, hist, &below);
        if (!below) return tau;
    }
    int below = 0;
    return threshold_from(cp, n, need, by_count, lo, 0, 0, 0, tmp, hist, &below);
}

#if !defined(SQ_SAMPLER_AVX2)
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
#endif

/* Draw with top-k / top-p / min-p applied (p: unnormalised, best token at 1). */
static int32_t filtered_draw(const float *p, int V, double total, int k, float top_p, float min_p, float *cp,
                             int32_t *cid, float *tmp, double *hist, sq_rng *rng) {
    /* Keep only tokens that can matter: a cut is safe when what it keeps still satisfies
     * top-k and holds the nucleus (the tokens below a cut are the least likely ones); the
     * largest safe cut of a few, else none. */
    float cut = 0;
    /* With no top-k (k == V) a cut is only taken when it keeps every token (cnt == V), which
     * changes nothing: the pass is skipped and min-p alone cuts, as it would after it. */
    if (k < V) {
        enum { NC = 6 };
        static const float cuts[NC] = {1e-2f, 1e-3f, 1e-4f, 1e-5f, 1e-6f, 1e-8f};
        double cmass[NC];
        int cnt[NC];
#if defined(SQ_SAMPLER_AVX2)
        /* Mass and count above every cut in one pass (each as mass_above would sum it). */
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
                cmass[c] = lanes_sum(vm[c]);
                double cc = lanes_sum(vc[c]);
                for (int t = i; t < V; t++)
                    if (p[t] >= cuts[c]) cmass[c] += p[t], cc++;
                cnt[c] = (int)cc;
            }
        }
#else
        for (int c = 0; c < NC; c++) cmass[c] = mass_above(p, V, cuts[c], &cnt[c]);
#endif
        for (int c = 0; c < NC && !cut; c++)
            if (cnt[c] >= k && cmass[c] >= top_p * total) cut = cuts[c];
    }
    cut = SQ_MAX(cut, min_p);
    int n = 0, i = 0;
    if (cut > 0) {
#if defined(SQ_SAMPLER_AVX2)
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
        tau = threshold(cp, n, k, 1, 0, tmp, hist);
        kmass = 0;
        for (i = 0; i < n; i++) kmass += cp[i] >= tau ? cp[i] : 0.0;
    }
    if (top_p < 1) tau = SQ_MAX(tau, threshold(cp, n, top_p * kmass, 0, tau, tmp, hist));
    /* The draw: in candidate (id) order, through the mass of blocks of 8 first. */
    double mass = 0, part[4] = {0, 0, 0, 0}; /* four chains: no wait on each add */
    i = 0;
#if defined(SQ_SAMPLER_AVX2)
    { /* the four chains as the four lanes of one vector: the same adds in the same order */
        __m256d vp = _mm256_setzero_pd(), vt = _mm256_set1_pd(tau);
        for (; i + 4 <= n; i += 4) {
            __m256d v = _mm256_cvtps_pd(_mm_loadu_ps(cp + i));
            vp = _mm256_add_pd(vp, _mm256_and_pd(_mm256_cmp_pd(v, vt, _CMP_GE_OQ), v));
        }
        _mm256_storeu_pd(part, vp);
    }
#endif
    for (; i + 4 <= n; i += 4)
        for (int l = 0; l < 4; l++) part[l] += cp[i + l] >= tau ? cp[i + l] : 0.0;
    for (; i < n; i++) part[0] += cp[i] >= tau ? cp[i] : 0.0;
    mass = (part[0] + part[1]) + (part[2] + part[3]);
    double u = sq_rng_uniform(rng) * mass, acc = 0, bsum[8];
    /* The walk, 64 candidates at a time: first each full block of 8's kept mass, summed in
     * order from 0 as the scalar walk would (eight blocks at once: lane q of the vectors holds
     * block q, element e is added at step e), then whole blocks are stepped over until one
     * holds u. Only the blocks up to u's are summed. */
    for (int g0 = 0; g0 < n; g0 += 64) {
        int gn = SQ_MIN(64, n - g0), q = 0;
        double gb[8];
#if defined(SQ_SAMPLER_AVX2)
        if (gn == 64) {
            __m256i idx = _mm256_setr_epi32(0, 8, 16, 24, 32, 40, 48, 56);
            __m256d vt = _mm256_set1_pd(tau), lo = _mm256_setzero_pd(), hi = lo;
            for (int e = 0; e < 8; e++) {
                __m256 c = _mm256_i32gather_ps(cp + g0 + e, idx, 4);
                __m256d cl = _mm256_cvtps_pd(_mm256_castps256_ps128(c)), ch = _mm256_cvtps_pd(_mm256_extractf128_ps(c, 1));
                lo = _mm256_add_pd(lo, _mm256_and_pd(_mm256_cmp_pd(cl, vt, _CMP_GE_OQ), cl));
                hi = _mm256_add_pd(hi, _mm256_and_pd(_mm256_cmp_pd(ch, vt, _CMP_GE_OQ), ch));
            }
            _mm256_storeu_pd(gb, lo);
            _mm256_storeu_pd(gb + 4, hi);
            q = 8;
        }
#endif
        for (; q < gn / 8; q++) {
            double blk = 0;
            for (i = g0 + q * 8; i < g0 + q * 8 + 8; i++) blk += cp[i] >= tau ? cp[i] : 0.0;
            gb[q] = blk;
        }
        for (int b0 = g0; b0 < g0 + gn; b0 += 8) {
            int e = SQ_MIN(b0 + 8, n);
            double blk = 0;
            if (e - b0 == 8) {
                blk = gb[(b0 - g0) / 8];
                if (acc + blk <= u) {
                    acc += blk;
                    continue;
                }
                for (i = b0; i < e; i++) bsum[i - b0] = cp[i] >= tau ? cp[i] : 0.0;
            } else {
                for (i = b0; i < e; i++) blk += bsum[i - b0] = cp[i] >= tau ? cp[i] : 0.0;
                if (acc + blk <= u) {
                    acc += blk;
                    continue;
                }
            }
            for (i = b0; i < e; i++) {
                if (cp[i] < tau) continue;
                acc += bsum[i - b0];
                if (acc > u) return cid ? cid[i] : i;
            }
        }
    }
    /* Rounding left u unreached: the last kept candidate (the walk's own fallback). */
    int last = n - 1;
    while (last >= 0 && !(cp[last] >= tau)) last--;
    return last < 0 ? (cid ? cid[0] : 0) : (cid ? cid[last] : last);
}

/* Top-p alone (no top-k, no min-p: the respond shape) on a row whose nucleus lies within
 * 2^-16 of the best token: filtered_draw's token and RNG use without its passes over the whole
 * vocabulary. One pass over p gathers the tokens with p >= 2^-16 (a bucket edge of
 * threshold(): a power of two), in id order (gathering them in the pass that computes p
 * measured no faster); a random network's row at temperature 0.7 has ~1,000 of them and
 * a nucleus of ~100. Then, on those alone:
 *   - threshold()'s scan: a bucket's total is exact in a double in any order (its items share
 *     one exponent), so the totals from the gathered items equal the histogram's for every
 *     bucket at or above 2^-16, and the scan from the top stops at the same bucket, whose items
 *     are sorted as there. A scan that runs below 2^-16 gives up (-1) before touching the RNG.
 *   - the draw: the tokens kept (p >= tau >= 2^-16) are all gathered; the mass's four chains
 *     (id % 4, the tail on chain 0) and the walk's blocks of 8 (id / 8) add exactly what the
 *     whole-row loops add, in the same order, since the tokens left out add +0.0 there and a
 *     block without a kept token changes nothing.
 * Returns the token, or -1 (nothing consumed) where the caller must take filtered_draw. */
#define SQ_NUCLEUS_FLOOR 0x1p-16f
enum { SQ_NUCLEUS_CAP = 1 << 14 }; /* more gathered tokens: a flat row, the whole-row path is the better one */
static int32_t top_p_gathered(const float *p, int V, double need, float *cv, int32_t *ci, float *tmp, double *hist,
                              sq_rng *rng) {
    int cap = SQ_MIN(SQ_NUCLEUS_CAP, V), n = 0, i = 0;
#if defined(__AVX512F__)
    {
        __m512 vf = _mm512_set1_ps(SQ_NUCLEUS_FLOOR);
        const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        for (; i + 16 <= V; i += 16) {
            __m512 v = _mm512_loadu_ps(p + i);
            __mmask16 m = _mm512_cmp_ps_mask(v, vf, _CMP_GE_OQ);
            if (!m) continue;
            if (n + 16 > cap) return -1;
            _mm512_mask_compressstoreu_ps(cv + n, m, v);
            _mm512_mask_compressstoreu_epi32(ci + n, m, _mm512_add_epi32(_mm512_set1_epi32(i), iota));
            n += __builtin_popcount((unsigned)m);
        }
    }
#elif defined(SQ_SAMPLER_AVX2)
    for (__m256 vf = _mm256_set1_ps(SQ_NUCLEUS_FLOOR); i + 8 <= V; i += 8) {
        unsigned m = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(p + i), vf, _CMP_GE_OQ));
        if (!m) continue;
        if (n + 8 > cap) return -1;
        for (; m; m &= m - 1) {
            int l = __builtin_ctz(m);
            cv[n] = p[i + l];
            ci[n++] = i + l;
        }
    }
#endif
    for (; i < V; i++)
        if (p[i] >= SQ_NUCLEUS_FLOOR) {
            if (n == cap) return -1;
            cv[n] = p[i];
            ci[n++] = i;
        }
    /* threshold(p, V, need, by mass, lo 0) on the buckets [bucket of 2^-16, bucket of 1.0]. */
    uint32_t fb, ob;
    float one = 1.0f, fl = SQ_NUCLEUS_FLOOR;
    memcpy(&fb, &fl, 4);
    memcpy(&ob, &one, 4);
    int b0 = (int)(fb >> 19), btop = (int)(ob >> 19); /* p <= 1: no item above 1.0's bucket */
    hist4_clear(hist, b0, btop + 1);
    for (int j = 0; j < n; j++) {
        uint32_t u;
        memcpy(&u, &cv[j], 4);
        hist4_add(hist, j, u >> 19, cv[j]);
    }
    double acc = 0;
    int b = btop;
    for (; b >= b0; b--) {
        double add = hist4_total(hist, b);
        if (acc + add >= need) break;
        acc += add;
    }
    if (b < b0) return -1; /* the nucleus reaches below 2^-16 */
    int m = 0;
    for (int j = 0; j < n; j++) {
        uint32_t u;
        memcpy(&u, &cv[j], 4);
        if ((int)(u >> 19) == b) tmp[m++] = cv[j];
    }
    qsort(tmp, (size_t)m, sizeof(float), desc_float);
    float tau = tmp[m - 1]; /* rounding: the bucket's own total reached need, its items just short */
    for (int j = 0; j < m; j++) {
        acc += tmp[j];
        if (acc >= need) {
            tau = tmp[j];
            break;
        }
    }
    /* The kept tokens, in id order, in place. */
    int k = 0;
    for (int j = 0; j < n; j++)
        if (cv[j] >= tau) cv[k] = cv[j], ci[k++] = ci[j];
    double part[4] = {0, 0, 0, 0};
    int v4 = V / 4 * 4;
    for (int j = 0; j < k; j++) part[ci[j] < v4 ? (ci[j] & 3) : 0] += cv[j];
    double mass = (part[0] + part[1]) + (part[2] + part[3]);
    double u = sq_rng_uniform(rng) * mass, walk = 0;
    for (int j = 0; j < k;) {
        int e = j, blk_id = ci[j] >> 3;
        double blk = 0;
        for (; e < k && ci[e] >> 3 == blk_id; e++) blk += cv[e];
        if (walk + blk <= u) {
            walk += blk;
            j = e;
            continue;
        }
        for (; j < e; j++) {
            walk += cv[j];
            if (walk > u) return ci[j];
        }
    }
    return ci[k - 1]; /* rounding left u unreached: the last kept token, as the walk's fallback */
}

int32_t sq_sample(const float *logits, int V, const sq_gen_params *prm, sq_rng *rng, sq_sample_scratch *s,
                  float *logprob) {
    int32_t best = 0;
    double sum = 0;
    float mx;
#if defined(SQ_SAMPLER_AVX2)
    double total_pre = 0; /* the fused pass's lanes of total, p[0, tail_pre) written; -1: none */
    int tail_pre = -1;
    {
        /* The maximum, then its first index: the token the scalar scan would pick. */
        int i = 0, done = 0;
#if defined(__AVX512F__)
        /* Four chains of 16 (one chain of 8 waits on each max's latency): without NaN the
         * maximum does not depend on the order (of +-0 the first one is taken below either
         * way). A NaN makes vmaxps keep one operand or the other by position, so a row that
         * holds one takes the single chain below, as before. */
        if (V >= 64) {
            __m512 m0 = _mm512_set1_ps(logits[0]), m1 = m0, m2 = m0, m3 = m0;
            __mmask16 nan = 0;
            for (; i + 64 <= V; i += 64) {
                _mm_prefetch((const char *)(logits + i + 1024), _MM_HINT_T0);
                _mm_prefetch((const char *)(logits + i + 1040), _MM_HINT_T0);
                _mm_prefetch((const char *)(logits + i + 1056), _MM_HINT_T0);
                _mm_prefetch((const char *)(logits + i + 1072), _MM_HINT_T0);
                __m512 x0 = _mm512_loadu_ps(logits + i), x1 = _mm512_loadu_ps(logits + i + 16),
                       x2 = _mm512_loadu_ps(logits + i + 32), x3 = _mm512_loadu_ps(logits + i + 48);
                nan |= _mm512_cmp_ps_mask(x0, x1, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(x2, x3, _CMP_UNORD_Q);
                m0 = _mm512_max_ps(m0, x0), m1 = _mm512_max_ps(m1, x1), m2 = _mm512_max_ps(m2, x2), m3 = _mm512_max_ps(m3, x3);
            }
            for (int t = i; t < V; t++) nan |= logits[t] != logits[t];
            if (!nan) {
                mx = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3)));
                for (; i < V; i++) mx = logits[i] > mx ? logits[i] : mx;
                done = 1;
            } else {
                i = 0;
            }
        }
#endif
        if (!done) {
            __m256 vm = _mm256_set1_ps(logits[0]);
            for (; i + 8 <= V; i += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(logits + i));
            float l[8];
            _mm256_storeu_ps(l, vm);
            mx = l[0];
            for (int k = 1; k < 8; k++) mx = l[k] > mx ? l[k] : mx;
            for (; i < V; i++) mx = logits[i] > mx ? logits[i] : mx;
        }
        /* The first index holding mx, sixteen or eight at a time, then within the block. */
#if defined(__AVX512F__)
        for (__m512 vx = _mm512_set1_ps(mx); best + 16 <= V - 1; best += 16)
            if (_mm512_cmp_ps_mask(_mm512_loadu_ps(logits + best), vx, _CMP_EQ_OQ)) break;
#endif
        for (__m256 vx = _mm256_set1_ps(mx); best + 8 <= V - 1; best += 8)
            if (_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(logits + best), vx, _CMP_EQ_OQ))) break;
        while (best < V - 1 && !(logits[best] == mx)) best++;
        mx = logits[best];
        __m256 acc = _mm256_setzero_ps(), vmx = _mm256_set1_ps(mx);
        if (prm->temperature > 0) {
            /* One pass for both exponentials (the raw softmax's sum and the tempered p), each
             * with the operations and the accumulation order of its own pass below. */
            __m256 vt = _mm256_set1_ps(1.0f / prm->temperature), acc2 = _mm256_setzero_ps();
            i = 0;
#if defined(__AVX512F__)
            {
                __m512 vmx16 = _mm512_set1_ps(mx), vt16 = _mm512_set1_ps(1.0f / prm->temperature);
                for (; i + 16 <= V; i += 16) {
                    __m512 d = _mm512_sub_ps(_mm512_loadu_ps(logits + i), vmx16);
                    acc = add_halves(acc, exp_neg16(d));
                    __m512 v = exp_neg16(_mm512_mul_ps(d, vt16));
                    _mm512_storeu_ps(s->p + i, v);
                    acc2 = add_halves(acc2, v);
                }
            }
#endif
            for (; i + 8 <= V; i += 8) {
                __m256 d = _mm256_sub_ps(_mm256_loadu_ps(logits + i), vmx);
                acc = _mm256_add_ps(acc, exp_neg8(d));
                __m256 v = exp_neg8(_mm256_mul_ps(d, vt));
                _mm256_storeu_ps(s->p + i, v);
                acc2 = _mm256_add_ps(acc2, v);
            }
            total_pre = lanes_sum(acc2);
            tail_pre = i;
        } else {
            i = 0;
#if defined(__AVX512F__)
            for (__m512 vmx16 = _mm512_set1_ps(mx); i + 16 <= V; i += 16)
                acc = add_halves(acc, exp_neg16(_mm512_sub_ps(_mm512_loadu_ps(logits + i), vmx16)));
#endif
            for (; i + 8 <= V; i += 8)
                acc = _mm256_add_ps(acc, exp_neg8(_mm256_sub_ps(_mm256_loadu_ps(logits + i), vmx)));
        }
        sum = lanes_sum(acc);
        for (; i < V; i++) sum += exp_neg(logits[i] - mx);
    }
#else
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    mx = logits[best];
    {
        float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int i = 0;
        for (; i + 8 <= V; i += 8)
            for (int l = 0; l < 8; l++) lane[l] += exp_neg(logits[i + l] - mx);
        for (int l = 0; l < 8; l++) sum += lane[l];
        for (; i < V; i++) sum += exp_neg(logits[i] - mx);
    }
#endif
    double lse = mx + log(sum);
    if (!isfinite(lse)) return -1; /* NaN or Inf in the row: nothing to draw from */
    int32_t chosen = best;
    if (prm->temperature > 0) {
        float invt = 1.0f / prm->temperature, *p = s->p;
        double total = 0;
        int i = 0;
#if defined(SQ_SAMPLER_AVX2)
        i = tail_pre;
        int tail = i;
        for (; i < V; i++) p[i] = exp_neg((logits[i] - mx) * invt);
        total = total_pre; /* mass_above(p, V, 0) in the same pass: every p >= 0 */
        for (i = tail; i < V; i++) total += p[i];
#else
        for (; i < V; i++) p[i] = exp_neg((logits[i] - mx) * invt);
        int cnt;
        total = mass_above(p, V, 0.0f, &cnt);
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
            chosen = -1;
            if (k == V && min_p == 0)
                chosen = top_p_gathered(p, V, top_p * total, (float *)s->cand, (int32_t *)s->cand + V,
                                        (float *)s->cand + 2 * (size_t)V, s->hist, rng);
            if (chosen < 0)
                chosen = filtered_draw(p, V, total, k, top_p, min_p, (float *)s->cand, (int32_t *)s->cand + V,
                                       (float *)s->cand + 2 * (size_t)V, s->hist, rng);
        }
    }
    *logprob = (float)(logits[chosen] - lse);
    return chosen;
}
