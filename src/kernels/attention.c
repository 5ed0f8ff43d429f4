/* Attention of one query head over a block-paged KV cache (F32, F16 or BF16 elements). */
#include <immintrin.h>
#include <math.h>

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

void sq_attention_head(const sq_attn_args *a, const float *q, int head, int start, int n_pos, float *scratch,
                       float *out) {
    int d = a->head_dim, kvh = head / (a->n_heads / a->n_kv_heads);
    const float *qh = q + (size_t)head * d;
    float scale = 1.0f / sqrtf((float)d), mx = -INFINITY;
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
            float s = sj[j] * scale;
            scratch[p + j] = s;
            if (s > mx) mx = s;
        }
    }
#endif
    for (; p < n_pos; p++) {
        float s = sq__dot(qh, kv_row(a, a->k_base, p, kvh, 0, d, kbuf[0]), d) * scale;
        scratch[p] = s;
        if (s > mx) mx = s;
    }
    double sum = 0;
    for (p = start; p < n_pos; p++) {
        scratch[p] = expf(scratch[p] - mx);
        sum += scratch[p];
    }
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
