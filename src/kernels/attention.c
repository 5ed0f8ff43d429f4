/* Attention of one query head over a block-paged KV cache. */
#include <math.h>

#include "scalequest/kernels.h"
#include "simd.h"

void sq_attention_head(const sq_attn_args *a, const float *q, int head, int start, int n_pos, float *scratch,
                       float *out) {
    int d = a->head_dim, kvh = head / (a->n_heads / a->n_kv_heads);
    const float *qh = q + (size_t)head * d;
    float scale = 1.0f / sqrtf((float)d), mx = -INFINITY;
    for (int p = start; p < n_pos; p++) {
        size_t slot = (size_t)a->blocks[p / a->block_size] * a->block_size + p % a->block_size;
        float s = sq__dot(qh, a->k_base + slot * a->kv_stride + (size_t)kvh * d, d) * scale;
        scratch[p] = s;
        if (s > mx) mx = s;
    }
    double sum = 0;
    for (int p = start; p < n_pos; p++) {
        scratch[p] = expf(scratch[p] - mx);
        sum += scratch[p];
    }
    float inv = (float)(1.0 / sum);
    float *o = out + (size_t)head * d;
    for (int i = 0; i < d; i++) o[i] = 0;
    for (int p = start; p < n_pos; p++) {
        size_t slot = (size_t)a->blocks[p / a->block_size] * a->block_size + p % a->block_size;
        sq__axpy(o, scratch[p] * inv, a->v_base + slot * a->kv_stride + (size_t)kvh * d, d);
    }
}
