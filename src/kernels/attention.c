/* Attention. The engine's: one query head over a block-paged KV cache of F32, F16 or BF16
 * elements (sq_attention_head).
 * Training's: causal attention over packed rows of a batch with the probabilities saved, and
 * its backward (sq_attention_forward / sq_attention_backward, at the end of this file). The
 * two sum in different orders (a dot per position against GEMMs per block of rows) and the
 * engine's softmax takes libm's expf, so they stay two. */
#include <immintrin.h>
#include <math.h>
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
