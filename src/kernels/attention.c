/* Attention of one query head over a block-paged KV cache. */
#include <immintrin.h>
#include <math.h>

#include "scalequest/kernels.h"
#include "simd.h"

void sq_attention_head(const sq_attn_args *a, const float *q, int head, int start, int n_pos, float *scratch,
                       float *out) {
    int d = a->head_dim, kvh = head / (a->n_heads / a->n_kv_heads);
    const float *qh = q + (size_t)head * d;
    float scale = 1.0f / sqrtf((float)d), mx = -INFINITY;
    int p = start;
#if defined(__AVX2__) && defined(__FMA__) && !defined(__AVX512F__)
    /* Four positions at a time: four independent chains of FMAs instead of one (each dot
     * product alone is latency-bound at head_dim 64), each summed exactly as sq__dot does. */
    int full = d / 8 * 8;
    for (; p + 4 <= n_pos; p += 4) {
        const float *k[4];
        for (int j = 0; j < 4; j++) {
            int pj = p + j;
            size_t slot = (size_t)a->blocks[pj / a->block_size] * a->block_size + pj % a->block_size;
            k[j] = a->k_base + slot * a->kv_stride + (size_t)kvh * d;
        }
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
        size_t slot = (size_t)a->blocks[p / a->block_size] * a->block_size + p % a->block_size;
        float s = sq__dot(qh, a->k_base + slot * a->kv_stride + (size_t)kvh * d, d) * scale;
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
            size_t slot = (size_t)a->blocks[p / a->block_size] * a->block_size + p % a->block_size;
            const float *v = a->v_base + slot * a->kv_stride + (size_t)kvh * d + c0;
            __m256 w = _mm256_set1_ps(scratch[p] * inv);
            for (int j = 0; j < 8; j++) r[j] = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 8 * j), r[j]);
        }
        for (int j = 0; j < 8; j++) _mm256_storeu_ps(o + c0 + 8 * j, r[j]);
    }
#endif
    if (c0 < d)
        for (p = start; p < n_pos; p++) {
            size_t slot = (size_t)a->blocks[p / a->block_size] * a->block_size + p % a->block_size;
            sq__axpy(o + c0, scratch[p] * inv, a->v_base + slot * a->kv_stride + (size_t)kvh * d + c0, d - c0);
        }
}
