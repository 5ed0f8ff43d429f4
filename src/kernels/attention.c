/* Attention. The engine's: one query head over a block-paged KV cache of F32, F16 or BF16
 * elements (sq_attention_head), and the batched form the forward pass runs (sq_attention_plan
 * / sq_attention_run: units of a chunk of tokens x a kv head that read each cached row once
 * for all their queries), bit-identical to it per (token, head).
 * Training's: causal attention over packed rows of a batch with the probabilities saved, and
 * its backward (sq_attention_forward / sq_attention_backward, at the end of this file). The
 * two sum in different orders (a dot per position against GEMMs per block of rows) and the
 * engine's softmax sums in double, so they stay two. */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "scalequest/kernels.h"
#include "simd.h"

/* Exact widening of a cache row; the vector and scalar forms give the same bits. */
static void widen_f16(float *out, const uint16_t *x, int n) {
    int i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i))));
#elif defined(__F16C__) && defined(__AVX__)
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
#endif
    if (i < n) sq_f16_to_f32_row(out + i, x + i, (size_t)(n - i));
}

static void widen_bf16(float *out, const uint16_t *x, int n) {
    int i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= n; i += 16) {
        __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(x + i)));
        _mm512_storeu_ps(out + i, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
    }
#elif defined(__AVX2__)
    for (; i + 8 <= n; i += 8) {
        __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(x + i)));
        _mm256_storeu_ps(out + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
    }
#endif
    if (i < n) sq_bf16_to_f32_row(out + i, x + i, (size_t)(n - i));
}

/* Elements [c0, c0 + n) of position p's key or value row for kv head kvh, as floats: the
 * cache's own memory for F32; widened into buf (n <= SQ_KV_MAX_HEAD_DIM) otherwise. Every
 * path below reads rows through this, so a 16-bit cache is attended exactly as an F32 cache
 * holding the rounded values. */
static inline const float *kv_row(const sq_attn_args *a, const void *base, int p, int kvh, int c0, int n,
                                  float *buf) {
    size_t slot = (size_t)a->blocks[p / a->block_size] * a->block_size + p % a->block_size;
    size_t off = slot * a->kv_stride + (size_t)kvh * a->head_dim + c0;
    if (a->kv_type == SQ_KV_F16)
        widen_f16(buf, (const uint16_t *)base + off, n);
    else if (a->kv_type == SQ_KV_BF16)
        widen_bf16(buf, (const uint16_t *)base + off, n);
    else
        return (const float *)base + off;
    return buf;
}

/* Softmax numerators in place: x[i] = exp(x[i] - mx), every element through the 8-lane
 * vector exp (the loop's last partial group padded), so an element's value does not depend
 * on where it falls in the row (16 lanes at a time on AVX-512, the same operations); the
 * batched kernel below calls the same. Within 2 ulp of
 * expf (simd.h); inputs below -87.3 give exp(-87.3) instead of 0, which no double sum of
 * softmax terms (one of them 1) and no weighted value sum can see. */
static void exp_shift(float *x, int n, float mx) {
    int i = 0;
#if defined(__AVX512F__)
    /* Sixteen lanes first: sq_tv_exp16 is sq_tv_exp8 operation for operation. */
    for (__m512 vm16 = _mm512_set1_ps(mx); i + 16 <= n; i += 16)
        _mm512_storeu_ps(x + i, sq_tv_exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm16)));
#endif
#if defined(SQ_TV_AVX2)
    __m256 vm = _mm256_set1_ps(mx);
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, sq_tv_exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm)));
    if (i < n) {
        float t[8] = {0};
        memcpy(t, x + i, sizeof(float) * (size_t)(n - i));
        _mm256_storeu_ps(t, sq_tv_exp8(_mm256_sub_ps(_mm256_loadu_ps(t), vm)));
        memcpy(x + i, t, sizeof(float) * (size_t)(n - i));
    }
#else
    for (; i < n; i++) x[i] = expf(x[i] - mx);
#endif
}

void sq_attention_head(const sq_attn_args *a, const float *q, int head, int start, int n_pos, float *scratch,
                       float *out) {
    int d = a->head_dim, kvh = head / (a->n_heads / a->n_kv_heads);
    const float *qh = q + (size_t)head * d;
    float scale = 1.0f / sqrtf((float)d);
    float kbuf[4][SQ_KV_MAX_HEAD_DIM] __attribute__((aligned(64)));
    int p = start;
#if defined(__AVX2__) && defined(__FMA__) && !defined(__AVX512F__)
    /* Four positions at a time: four independent chains of FMAs instead of one (each dot
     * product alone is latency-bound at head_dim 64), each summed exactly as sq__dot does. */
    int full = d / 8 * 8;
    for (; p + 4 <= n_pos; p += 4) {
        const float *k[4];
        for (int j = 0; j < 4; j++) k[j] = kv_row(a, a->k_base, p + j, kvh, 0, d, kbuf[j]);
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int i = 0; i < full; i += 8) {
            __m256 qv = _mm256_loadu_ps(qh + i);
            a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[0] + i), a0);
            a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[1] + i), a1);
            a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[2] + i), a2);
            a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[3] + i), a3);
        }
        float sj[4] = {sq__hsum256(a0), sq__hsum256(a1), sq__hsum256(a2), sq__hsum256(a3)};
        for (int j = 0; j < 4; j++) {
            for (int i = full; i < d; i++) sj[j] += qh[i] * k[j][i];
            scratch[p + j] = sj[j] * scale;
        }
    }
#endif
    for (; p < n_pos; p++) scratch[p] = sq__dot(qh, kv_row(a, a->k_base, p, kvh, 0, d, kbuf[0]), d) * scale;
    float mx = sq_tv_max(scratch + start, (size_t)(n_pos - start));
    exp_shift(scratch + start, n_pos - start, mx);
    double sum = 0;
    for (p = start; p < n_pos; p++) sum += scratch[p];
    float inv = (float)(1.0 / sum);
    float *o = out + (size_t)head * d;
    for (int i = 0; i < d; i++) o[i] = 0;
    int c0 = 0;
#if defined(__AVX2__) && defined(__FMA__) && !defined(__AVX512F__)
    /* 64 outputs at a time held in registers over all positions (sq__axpy would load and
     * store them at every position); each element gets the same FMAs in the same order. */
    for (; c0 + 64 <= d; c0 += 64) {
        __m256 r[8];
        for (int j = 0; j < 8; j++) r[j] = _mm256_setzero_ps();
        for (p = start; p < n_pos; p++) {
            const float *v = kv_row(a, a->v_base, p, kvh, c0, 64, kbuf[0]);
            __m256 w = _mm256_set1_ps(scratch[p] * inv);
            for (int j = 0; j < 8; j++) r[j] = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 8 * j), r[j]);
        }
        for (int j = 0; j < 8; j++) _mm256_storeu_ps(o + c0 + 8 * j, r[j]);
    }
#endif
    if (c0 < d)
        for (p = start; p < n_pos; p++)
            sq__axpy(o + c0, scratch[p] * inv, kv_row(a, a->v_base, p, kvh, c0, d - c0, kbuf[0]), d - c0);
}

/* ---- the engine's batched attention: units of (chunk of tokens, kv head) ----------------- */

/* Query vectors per unit: a chunk holds ATT_QMAX / group tokens (at least one; a group wider
 * than ATT_QMAX runs its heads ATT_QMAX at a time). Their score rows (max_ctx floats each)
 * stay in L2 while the unit runs. */
#define ATT_QMAX 64
/* Cache rows per tile: read (and widened) once, then used by every query of the unit. */
#define ATT_KT 16

static int chunk_tokens(int group) { return group >= ATT_QMAX ? 1 : ATT_QMAX / group; }

size_t sq_attention_plan_ints(int max_tokens) { return (size_t)3 * (max_tokens > 0 ? max_tokens : 0) + 1; }

size_t sq_attention_scratch_floats(int max_ctx, int n_heads, int n_kv_heads, int head_dim) {
    (void)n_heads, (void)n_kv_heads;
    return (size_t)ATT_QMAX * max_ctx + (size_t)ATT_KT * head_dim;
}

/* Token a before token b: by first physical block (tokens that share the start of their
 * cache sit together), then position, then index. */
static int plan_before(const int32_t *pos, const int32_t *const *blocks, int a, int b) {
    if (blocks[a][0] != blocks[b][0]) return blocks[a][0] < blocks[b][0];
    if (pos[a] != pos[b]) return pos[a] < pos[b];
    return a < b;
}

void sq_attention_plan(sq_attn_plan *p, int32_t *mem, int n_tokens, const int32_t *pos,
                       const int32_t *const *blocks, int block_size, int n_heads, int n_kv_heads) {
    p->n_tokens = n_tokens;
    p->tok = mem;
    p->first = mem + n_tokens;
    p->shared = mem + 2 * n_tokens + 1;
    /* Insertion sort: a prefill's tokens come in order already, a decode step has a few
     * dozen; either way far below the cost of one layer. */
    for (int i = 0; i < n_tokens; i++) {
        int t = i, j = i;
        for (; j > 0 && plan_before(pos, blocks, t, p->tok[j - 1]); j--) p->tok[j] = p->tok[j - 1];
        p->tok[j] = t;
    }
    int per = chunk_tokens(n_heads / n_kv_heads), nc = 0;
    for (int i = 0; i < n_tokens;) {
        int j = i + 1;
        while (j < n_tokens && j - i < per && blocks[p->tok[j]][0] == blocks[p->tok[i]][0]) j++;
        /* The last token has the longest context; positions below `shared` are in the same
         * physical block for every token that reaches them. */
        int ref = p->tok[j - 1], n_ref = pos[ref] + 1, shared = n_ref;
        for (int blk = 0; blk * block_size < n_ref && shared == n_ref; blk++)
            for (int m = i; m < j - 1; m++) {
                int t = p->tok[m];
                if (blk * block_size <= pos[t] && blocks[t][blk] != blocks[ref][blk]) {
                    shared = blk * block_size;
                    break;
                }
            }
        p->first[nc] = i;
        p->shared[nc] = shared;
        nc++;
        i = j;
    }
    p->first[nc] = n_tokens;
    p->n_chunks = nc;
}

int sq_attention_work_count(const sq_attn_batch *b) { return b->plan->n_chunks * b->a.n_kv_heads; }

/* Addresses of rows [t0, t1) of kv head kvh through table blocks, each one prefetched: one
 * division per tile, not two per row (a runtime block size makes them real divisions, which
 * cost more than a row's dot product for one query). Prefetching matters because each row is
 * a few cache lines at the stride of a whole slot (all kv heads): too short a run for the
 * hardware prefetcher, and every query of the unit would wait on the first. */
static void tile_addrs(const sq_attn_args *a, const char *base, const int32_t *blocks, int kvh, int t0, int t1,
                       const char **addr) {
    int bs = a->block_size, blk = t0 / bs, off = t0 - blk * bs;
    size_t es = a->kv_type == SQ_KV_F32 ? 4 : 2, slot_bytes = (size_t)a->kv_stride * es;
    size_t head = (size_t)kvh * a->head_dim * es, row_bytes = (size_t)a->head_dim * es;
    for (int p = t0; p < t1; p++) {
        const char *r = base + ((size_t)blocks[blk] * bs + off) * slot_bytes + head;
        addr[p - t0] = r;
        for (size_t c = 0; c < row_bytes; c += 64) _mm_prefetch(r + c, _MM_HINT_T0);
        if (++off == bs) off = 0, blk++;
    }
}

/* The tile's rows as floats: the cache's own memory for F32, else widened into tile. */
static void tile_rows(const sq_attn_args *a, const char *const *addr, int n, float *tile, const float **rows) {
    for (int i = 0; i < n; i++) {
        float *buf = tile + (size_t)i * a->head_dim;
        rows[i] = buf;
        if (a->kv_type == SQ_KV_F16)
            widen_f16(buf, (const uint16_t *)addr[i], a->head_dim);
        else if (a->kv_type == SQ_KV_BF16)
            widen_bf16(buf, (const uint16_t *)addr[i], a->head_dim);
        else
            rows[i] = (const float *)addr[i];
    }
}

#if defined(__AVX512F__)
/* Sixteen dots (d a multiple of 16) at once: sixteen FMA chains, then their horizontal sums
 * side by side. Each sum pairs its lanes as _mm512_reduce_add_ps does, (i, i+8), (i, i+4),
 * (i, i+2), (0, 1), so every dot has the bits sq__dot gives it; done as a transpose, the
 * sixteen sums cost about what three would one by one. */
#define ATT_PAIR(x, y, lo, hi) _mm512_add_ps(_mm512_shuffle_f32x4(x, y, lo), _mm512_shuffle_f32x4(x, y, hi))
#define ATT_PAIRPS(x, y, lo, hi) _mm512_add_ps(_mm512_shuffle_ps(x, y, lo), _mm512_shuffle_ps(x, y, hi))
static void scores16(const float *q, const float *const *rows, int d, float scale, float *out) {
    /* Named accumulators: an array of them is zeroed and kept in memory by the compiler. */
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0,
           a9 = a0, a10 = a0, a11 = a0, a12 = a0, a13 = a0, a14 = a0, a15 = a0;
    for (int i = 0; i < d; i += 16) {
        __m512 qv = _mm512_loadu_ps(q + i);
#define ATT_FMA(j) a##j = _mm512_fmadd_ps(qv, _mm512_loadu_ps(rows[j] + i), a##j)
        ATT_FMA(0), ATT_FMA(1), ATT_FMA(2), ATT_FMA(3), ATT_FMA(4), ATT_FMA(5), ATT_FMA(6), ATT_FMA(7);
        ATT_FMA(8), ATT_FMA(9), ATT_FMA(10), ATT_FMA(11), ATT_FMA(12), ATT_FMA(13), ATT_FMA(14), ATT_FMA(15);
#undef ATT_FMA
    }
    /* (i, i+8): b[j] holds dot 2j's eight pair sums in lanes 0-7, dot 2j+1's in 8-15. */
    __m512 b[8] = {ATT_PAIR(a0, a1, 0x44, 0xEE),   ATT_PAIR(a2, a3, 0x44, 0xEE),   ATT_PAIR(a4, a5, 0x44, 0xEE),
                   ATT_PAIR(a6, a7, 0x44, 0xEE),   ATT_PAIR(a8, a9, 0x44, 0xEE),   ATT_PAIR(a10, a11, 0x44, 0xEE),
                   ATT_PAIR(a12, a13, 0x44, 0xEE), ATT_PAIR(a14, a15, 0x44, 0xEE)};
    __m512 c[4], e[2];
    /* (i, i+4): c[j], 128-bit block k, holds dot 4j+k's four sums. */
    for (int j = 0; j < 4; j++) c[j] = ATT_PAIR(b[2 * j], b[2 * j + 1], 0x88, 0xDD);
    /* (i, i+2): e[j], block k, lanes 0-1 from c[2j]'s dot, 2-3 from c[2j+1]'s. */
    for (int j = 0; j < 2; j++) e[j] = ATT_PAIRPS(c[2 * j], c[2 * j + 1], 0x44, 0xEE);
    /* (0, 1): block k, lane l: dot [4 * 0 + k, 4 * 1 + k, 8 + k, 12 + k][l]. */
    __m512 f = ATT_PAIRPS(e[0], e[1], 0x88, 0xDD);
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    _mm512_storeu_ps(out, _mm512_mul_ps(_mm512_permutexvar_ps(order, f), _mm512_set1_ps(scale)));
}
#elif defined(__AVX2__) && defined(__FMA__)
/* Eight dots (d a multiple of 8) at once, each horizontal sum paired as sq__hsum256 pairs
 * it, (i, i+4), (i, i+2), (0, 1), side by side: the bits of sq__dot. */
static void scores8(const float *q, const float *const *rows, int d, float scale, float *out) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (int i = 0; i < d; i += 8) {
        __m256 qv = _mm256_loadu_ps(q + i);
#define ATT_FMA(j) a##j = _mm256_fmadd_ps(qv, _mm256_loadu_ps(rows[j] + i), a##j)
        ATT_FMA(0), ATT_FMA(1), ATT_FMA(2), ATT_FMA(3), ATT_FMA(4), ATT_FMA(5), ATT_FMA(6), ATT_FMA(7);
#undef ATT_FMA
    }
#define ATT_HALVES(x, y) _mm256_add_ps(_mm256_permute2f128_ps(x, y, 0x20), _mm256_permute2f128_ps(x, y, 0x31))
    __m256 b[4] = {ATT_HALVES(a0, a1), ATT_HALVES(a2, a3), ATT_HALVES(a4, a5), ATT_HALVES(a6, a7)}, c[2];
#undef ATT_HALVES
    for (int j = 0; j < 2; j++)
        c[j] = _mm256_add_ps(_mm256_shuffle_ps(b[2 * j], b[2 * j + 1], 0x44), _mm256_shuffle_ps(b[2 * j], b[2 * j + 1], 0xEE));
    __m256 f = _mm256_add_ps(_mm256_shuffle_ps(c[0], c[1], 0x88), _mm256_shuffle_ps(c[0], c[1], 0xDD));
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    _mm256_storeu_ps(out, _mm256_mul_ps(_mm256_permutevar8x32_ps(f, order), _mm256_set1_ps(scale)));
}
#endif

/* out[i] = dot(q, rows[i]) * scale, each dot summed exactly as sq__dot (one vector chain,
 * its horizontal sum, then the scalar tail); four rows at a time for four chains in flight. */
static void tile_scores(const float *q, const float *const *rows, int cnt, int d, float scale, float *out) {
    int p = 0;
#if defined(__AVX512F__)
    int full = d / 16 * 16;
    if (full == d)
        for (; p + 16 <= cnt; p += 16) scores16(q, rows + p, d, scale, out + p);
    for (; p + 4 <= cnt; p += 4) {
        const float *k0 = rows[p], *k1 = rows[p + 1], *k2 = rows[p + 2], *k3 = rows[p + 3];
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int i = 0; i < full; i += 16) {
            __m512 qv = _mm512_loadu_ps(q + i);
            a0 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(k0 + i), a0);
            a1 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(k1 + i), a1);
            a2 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(k2 + i), a2);
            a3 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(k3 + i), a3);
        }
        float s[4] = {_mm512_reduce_add_ps(a0), _mm512_reduce_add_ps(a1), _mm512_reduce_add_ps(a2),
                      _mm512_reduce_add_ps(a3)};
        for (int j = 0; j < 4; j++) {
            for (int i = full; i < d; i++) s[j] += q[i] * rows[p + j][i];
            out[p + j] = s[j] * scale;
        }
    }
#elif defined(__AVX2__) && defined(__FMA__)
    int full = d / 8 * 8;
    if (full == d)
        for (; p + 8 <= cnt; p += 8) scores8(q, rows + p, d, scale, out + p);
    for (; p + 4 <= cnt; p += 4) {
        const float *k0 = rows[p], *k1 = rows[p + 1], *k2 = rows[p + 2], *k3 = rows[p + 3];
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int i = 0; i < full; i += 8) {
            __m256 qv = _mm256_loadu_ps(q + i);
            a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + i), a0);
            a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k1 + i), a1);
            a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k2 + i), a2);
            a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k3 + i), a3);
        }
        float s[4] = {sq__hsum256(a0), sq__hsum256(a1), sq__hsum256(a2), sq__hsum256(a3)};
        for (int j = 0; j < 4; j++) {
            for (int i = full; i < d; i++) s[j] += q[i] * rows[p + j][i];
            out[p + j] = s[j] * scale;
        }
    }
#endif
    for (; p < cnt; p++) out[p] = sq__dot(q, rows[p], d) * scale;
}

/* o += w[i] * rows[i] over the tile, row by row: every element gets the FMA (vector part) or
 * the multiply-add (scalar tail) sq_attention_head gives it, in the same position order;
 * the outputs stay in registers across the tile. */
static void tile_values(float *o, const float *w, const float *const *rows, int cnt, int d) {
    int c = 0;
#if defined(__AVX512F__)
    for (; c + 64 <= d; c += 64) {
        __m512 r0 = _mm512_loadu_ps(o + c), r1 = _mm512_loadu_ps(o + c + 16), r2 = _mm512_loadu_ps(o + c + 32),
               r3 = _mm512_loadu_ps(o + c + 48);
        for (int p = 0; p < cnt; p++) {
            const float *v = rows[p] + c;
            __m512 wv = _mm512_set1_ps(w[p]);
            r0 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(v), r0);
            r1 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(v + 16), r1);
            r2 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(v + 32), r2);
            r3 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(v + 48), r3);
        }
        _mm512_storeu_ps(o + c, r0);
        _mm512_storeu_ps(o + c + 16, r1);
        _mm512_storeu_ps(o + c + 32, r2);
        _mm512_storeu_ps(o + c + 48, r3);
    }
    for (; c + 16 <= d; c += 16) {
        __m512 r = _mm512_loadu_ps(o + c);
        for (int p = 0; p < cnt; p++) r = _mm512_fmadd_ps(_mm512_set1_ps(w[p]), _mm512_loadu_ps(rows[p] + c), r);
        _mm512_storeu_ps(o + c, r);
    }
#elif defined(__AVX2__) && defined(__FMA__)
    for (; c + 32 <= d; c += 32) {
        __m256 r0 = _mm256_loadu_ps(o + c), r1 = _mm256_loadu_ps(o + c + 8), r2 = _mm256_loadu_ps(o + c + 16),
               r3 = _mm256_loadu_ps(o + c + 24);
        for (int p = 0; p < cnt; p++) {
            const float *v = rows[p] + c;
            __m256 wv = _mm256_set1_ps(w[p]);
            r0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(v), r0);
            r1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(v + 8), r1);
            r2 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(v + 16), r2);
            r3 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(v + 24), r3);
        }
        _mm256_storeu_ps(o + c, r0);
        _mm256_storeu_ps(o + c + 8, r1);
        _mm256_storeu_ps(o + c + 16, r2);
        _mm256_storeu_ps(o + c + 24, r3);
    }
    for (; c + 8 <= d; c += 8) {
        __m256 r = _mm256_loadu_ps(o + c);
        for (int p = 0; p < cnt; p++) r = _mm256_fmadd_ps(_mm256_set1_ps(w[p]), _mm256_loadu_ps(rows[p] + c), r);
        _mm256_storeu_ps(o + c, r);
    }
#endif
    for (; c < d; c++)
        for (int p = 0; p < cnt; p++) o[c] += w[p] * rows[p][c];
}

typedef struct {
    const float *q;
    float *o, *sc; /* sc[p]: score, then weight, of position p */
    int start, n;  /* positions [start, n) */
} att_query;

/* One pass (keys, then values) over positions [t0, t1) of table blocks for queries qs[0..nq):
 * each query takes the part of every tile inside its own range. */
static void pass(const sq_attn_args *a, int values, const int32_t *blocks, int kvh, int t0, int t1,
                 att_query *qs, int nq, float *tile, float scale) {
    const float *rows[ATT_KT];
    const char *addr[2][ATT_KT];
    const char *base = values ? a->v_base : a->k_base;
    int d = a->head_dim, cur = 0;
    if (t0 < t1) tile_addrs(a, base, blocks, kvh, t0, t0 + ATT_KT < t1 ? t0 + ATT_KT : t1, addr[0]);
    for (int p0 = t0; p0 < t1; p0 += ATT_KT, cur ^= 1) {
        int p1 = p0 + ATT_KT < t1 ? p0 + ATT_KT : t1;
        /* The next tile's addresses, its rows on their way while this one is used. */
        if (p1 < t1) tile_addrs(a, base, blocks, kvh, p1, p1 + ATT_KT < t1 ? p1 + ATT_KT : t1, addr[cur ^ 1]);
        tile_rows(a, addr[cur], p1 - p0, tile, rows);
        for (int i = 0; i < nq; i++) {
            int s0 = qs[i].start > p0 ? qs[i].start : p0, s1 = qs[i].n < p1 ? qs[i].n : p1;
            if (s0 >= s1) continue;
            if (values)
                tile_values(qs[i].o, qs[i].sc + s0, rows + (s0 - p0), s1 - s0, d);
            else
                tile_scores(qs[i].q, rows + (s0 - p0), s1 - s0, d, scale, qs[i].sc + s0);
        }
    }
}

static void run_unit(const sq_attn_batch *b, int c, int kvh, float *scratch) {
    const sq_attn_args *a = &b->a;
    const sq_attn_plan *pl = b->plan;
    int d = a->head_dim, g = a->n_heads / a->n_kv_heads, qd = a->n_heads * d;
    int f0 = pl->first[c], M = pl->first[c + 1] - f0, shared = pl->shared[c];
    const int32_t *ref_blocks = b->blocks[pl->tok[f0 + M - 1]];
    float scale = 1.0f / sqrtf((float)d);
    float *tile = scratch + (size_t)ATT_QMAX * b->max_ctx;
    att_query qs[ATT_QMAX];
    for (int j0 = 0; j0 < g; j0 += ATT_QMAX) {
        int ng = g - j0 < ATT_QMAX ? g - j0 : ATT_QMAX, nq = 0, lo = INT32_MAX, hi = 0;
        for (int m = 0; m < M; m++) {
            int t = pl->tok[f0 + m], n = b->pos[t] + 1;
            int start = b->sliding_window > 0 && n > b->sliding_window ? n - b->sliding_window : 0;
            lo = start < lo ? start : lo;
            hi = n > hi ? n : hi;
            for (int j = 0; j < ng; j++, nq++) {
                size_t off = (size_t)t * qd + (size_t)(kvh * g + j0 + j) * d;
                qs[nq] = (att_query){b->q + off, b->out + off, scratch + (size_t)nq * b->max_ctx, start, n};
            }
        }
        int sh = shared < hi ? shared : hi;
        /* Keys: the shared span once for every query, then each token's own blocks. */
        pass(a, 0, ref_blocks, kvh, lo, sh, qs, nq, tile, scale);
        for (int m = 0; m < M; m++) {
            att_query *qm = qs + m * ng;
            if (qm->n > sh) pass(a, 0, b->blocks[pl->tok[f0 + m]], kvh, sh, qm->n, qm, ng, tile, scale);
        }
        /* Softmax per query, as sq_attention_head: max, exp and a double sum in position
         * order; the weights then replace the scores. */
        for (int i = 0; i < nq; i++) {
            float *sc = qs[i].sc + qs[i].start;
            int len = qs[i].n - qs[i].start;
            exp_shift(sc, len, sq_tv_max(sc, (size_t)len));
            memset(qs[i].o, 0, sizeof(float) * d);
        }
        /* The double sums run position by position, each in position order; the heads of
         * one token (same range) side by side, so their chains overlap. */
        for (int m = 0; m < M; m++) {
            att_query *qm = qs + m * ng;
            double sum[ATT_QMAX] = {0};
            for (int p = qm->start; p < qm->n; p++)
                for (int j = 0; j < ng; j++) sum[j] += qm[j].sc[p];
            for (int j = 0; j < ng; j++) {
                float inv = (float)(1.0 / sum[j]), *sc = qm[j].sc;
                for (int p = qm->start; p < qm->n; p++) sc[p] *= inv;
            }
        }
        /* Values, in the same order: shared span, then own blocks. */
        pass(a, 1, ref_blocks, kvh, lo, sh, qs, nq, tile, scale);
        for (int m = 0; m < M; m++) {
            att_query *qm = qs + m * ng;
            if (qm->n > sh) pass(a, 1, b->blocks[pl->tok[f0 + m]], kvh, sh, qm->n, qm, ng, tile, scale);
        }
    }
}

void sq_attention_run(const sq_attn_batch *b, int w0, int w1, float *scratch) {
    int nc = b->plan->n_chunks;
    for (int w = w0; w < w1; w++) run_unit(b, w % nc, w / nc, scratch);
}

/* ---- training: causal attention over packed rows, forward and backward ---------------- */

/* Rows of one attention head are processed in blocks of this many: a block's scores are
 * computed only up to its last row (the causal triangle above is skipped) and from the
 * earliest example start among its rows (packed examples before it are skipped). */
#define ATT_BLOCK 64

/* The columns block [r0, r1) needs: from the earliest seg_start among its rows to r1. */
int sq_attention_block_start(const int32_t *seg, int r0, int r1) {
    int c0 = r0;
    for (int i = r0; i < r1; i++) c0 = seg[i] < c0 ? seg[i] : c0;
    return c0;
}

int sq_attention_block(int T) { return T < ATT_BLOCK ? T : ATT_BLOCK; }

void sq_attention_forward(float *out, float *att, const float *q, const float *k, const float *v, int ld,
                          const int32_t *seg_start, int B, int T, int H, int KV, int hd) {
    int qd = H * hd, group = H / KV, TB = sq_attention_block(T);
    float scale = 1.0f / sqrtf((float)hd);
    sq_gemm_one_pool();
    /* One (row, head) per task, handed out as threads come free. */
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if ((size_t)B * T * T * H * hd > 4 * SQ_PAR_MIN)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int kh = h / group;
            const float *qh = q + (size_t)b * T * ld + (size_t)h * hd;
            const float *kb = k + (size_t)b * T * ld + (size_t)kh * hd;
            const float *vb = v + (size_t)b * T * ld + (size_t)kh * hd;
            float *P = att + ((size_t)b * H + h) * T * T;
            float *o = out + (size_t)b * T * qd + (size_t)h * hd;
            const int32_t *seg = seg_start + (size_t)b * T;
            for (int r0 = 0; r0 < T; r0 += TB) {
                int r1 = r0 + TB < T ? r0 + TB : T, c0 = sq_attention_block_start(seg, r0, r1);
                /* S = scale * Q K^T over the block's columns, then a masked softmax per row. */
                sq_gemm_f32(0, 1, r1 - r0, r1 - c0, hd, scale, qh + (size_t)r0 * ld, ld, kb + (size_t)c0 * ld, ld,
                            0.0f, P + (size_t)r0 * T + c0, T);
                for (int i = r0; i < r1; i++) {
                    float *p = P + (size_t)i * T;
                    int s = seg[i], n = i - s + 1;
                    float mx = sq_tv_max(p + s, (size_t)n);
                    float inv = 1.0f / sq_tv_exp_sum(p + s, (size_t)n, mx);
#pragma omp simd
                    for (int j = s; j <= i; j++) p[j] *= inv;
                    /* Zeros in the block's columns outside [s, i]: the product below and
                     * backward read the block [c0, r1) whole; nothing reads beyond it. */
                    memset(p + c0, 0, (size_t)(s - c0) * sizeof(float));
                    memset(p + i + 1, 0, (size_t)(r1 - i - 1) * sizeof(float));
                }
                sq_gemm_f32(0, 0, r1 - r0, hd, r1 - c0, 1.0f, P + (size_t)r0 * T + c0, T, vb + (size_t)c0 * ld, ld,
                            0.0f, o + (size_t)r0 * qd, qd);
            }
        }
}

/* Causal attention backward with grouped-query heads and packed examples, as GEMMs per head
 * over the same row blocks as the forward (only the columns a block reaches):
 *   dP = dO V^T,  dS = P (.) (dP - rowsum(P (.) dP)) * scale,
 *   dV += P^T dO,  dQ = dS K,  dK += dS^T Q.
 * Work is split by (row of the batch, kv head) so the heads of one group, which all add into
 * the same dk/dv slots, run on one thread: no atomics, and the result does not depend on
 * thread timing. Tasks are handed out as threads come free (on a shared machine a thread
 * that loses its core does not hold the others up). */
void sq_attention_backward(float *dq, float *dk, float *dv, int ld, const float *dout, const float *q,
                           const float *k, const float *v, const float *att, const int32_t *seg_start,
                           int B, int T, int H, int KV, int hd, float *scratch) {
    int qd = H * hd, kd = KV * hd, group = H / KV, TB = sq_attention_block(T);
    float scale = 1.0f / sqrtf((float)hd);
    for (size_t i = 0; i < (size_t)B * T; i++) {
        memset(dk + i * ld, 0, (size_t)kd * sizeof(float));
        memset(dv + i * ld, 0, (size_t)kd * sizeof(float));
    }
    sq_gemm_one_pool();
#pragma omp parallel if ((size_t)B * T * T * H * hd > 4 * SQ_PAR_MIN)
    {
#pragma omp for collapse(2) schedule(dynamic, 1)
        for (int b = 0; b < B; b++)
            for (int kh = 0; kh < KV; kh++) {
                /* dS of one row block, in this task's own slice of the scratch. */
                float *ds = scratch + ((size_t)b * KV + kh) * TB * T;
                const float *kb = k + (size_t)b * T * ld + (size_t)kh * hd;
                const float *vb = v + (size_t)b * T * ld + (size_t)kh * hd;
                float *dkb = dk + (size_t)b * T * ld + (size_t)kh * hd;
                float *dvb = dv + (size_t)b * T * ld + (size_t)kh * hd;
                const int32_t *seg = seg_start + (size_t)b * T;
                for (int h = kh * group; h < (kh + 1) * group; h++) {
                    const float *P = att + ((size_t)b * H + h) * T * T;
                    const float *doh = dout + (size_t)b * T * qd + (size_t)h * hd;
                    const float *qh = q + (size_t)b * T * ld + (size_t)h * hd;
                    float *dqh = dq + (size_t)b * T * ld + (size_t)h * hd;
                    for (int r0 = 0; r0 < T; r0 += TB) {
                        int r1 = r0 + TB < T ? r0 + TB : T, c0 = sq_attention_block_start(seg, r0, r1), w = r1 - c0;
                        const float *Pb = P + (size_t)r0 * T + c0;
                        sq_gemm_f32(0, 1, r1 - r0, w, hd, 1.0f, doh + (size_t)r0 * qd, qd, vb + (size_t)c0 * ld, ld,
                                    0.0f, ds, w);
                        for (int i = r0; i < r1; i++) {
                            const float *p = Pb + (size_t)(i - r0) * T;
                            float *d = ds + (size_t)(i - r0) * w;
                            float rs = sq_tv_dot(p, d, (size_t)w);
#pragma omp simd
                            for (int j = 0; j < w; j++) d[j] = p[j] * (d[j] - rs) * scale;
                        }
                        sq_gemm_f32(1, 0, w, hd, r1 - r0, 1.0f, Pb, T, doh + (size_t)r0 * qd, qd, 1.0f,
                                    dvb + (size_t)c0 * ld, ld);
                        sq_gemm_f32(0, 0, r1 - r0, hd, w, 1.0f, ds, w, kb + (size_t)c0 * ld, ld, 0.0f,
                                    dqh + (size_t)r0 * ld, ld);
                        sq_gemm_f32(1, 0, w, hd, r1 - r0, 1.0f, ds, w, qh + (size_t)r0 * ld, ld, 1.0f,
                                    dkb + (size_t)c0 * ld, ld);
                    }
                }
            }
    }
}
