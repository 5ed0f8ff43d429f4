/* KV storage: one key and one value array per layer, cut into fixed-size blocks, of F32, F16
 * or BF16 elements. F16/BF16 halve the bytes every decode step reads per cached position;
 * values are rounded to nearest even here (the one place K/V are written) and widened
 * exactly by sq_attention_head. Also the one place that decides what "auto" means. */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/model.h"
#include "scalequest/tensor.h"

size_t sq_kv_type_size(int type) {
    switch (type) {
    case SQ_KV_F32: return 4;
    case SQ_KV_F16:
    case SQ_KV_BF16: return 2;
    default: return 0;
    }
}

const char *sq_kv_type_name(int type) {
    switch (type) {
    case SQ_KV_F32: return "f32";
    case SQ_KV_F16: return "f16";
    case SQ_KV_BF16: return "bf16";
    case SQ_KV_AUTO: return "auto";
    default: return "?";
    }
}

int sq_kv_type_parse(const char *name) {
    if (!name) return -1;
    for (int t = SQ_KV_F32; t <= SQ_KV_AUTO; t++)
        if (!strcmp(name, sq_kv_type_name(t))) return t;
    return -1;
}

/* Why F16 for 16-bit and quantized models: their weights are already rounded to 16 bits or
 * fewer, so keys and values rounded to F16 (relative error 2^-11) cost them nothing that
 * matters, while the cache takes half the memory and every decode step reads half the bytes
 * per cached position (at long context, attention's bandwidth is the step's limit). It is
 * llama.cpp's default cache type, so comparisons with it are like for like, and vLLM's
 * kv_cache_dtype=auto also follows the model's 16-bit dtype. F16 rather than BF16 for a BF16
 * model: three more mantissa bits (BF16's rounding step is 8x F16's; measured against
 * transformers, tests/peers/test_kv_cache.py), and keys and values sit far inside F16's range (the store
 * below saturates the rare one that does not). Why F32 for F32 models: those are the exact
 * ones (random test models, trained checkpoints) that tests compare bit for bit or within
 * 1e-4 against transformers in float32; an F32 model says exactness is wanted. */
int sq_kv_type_auto(const sq_model *m) {
    if (m->cfg.head_dim > SQ_KV_MAX_HEAD_DIM) return SQ_KV_F32; /* the 16-bit caches' limit */
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const sq_layer *L = &m->layers[l];
        const sq_view *w[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
            if (w[i]->data && w[i]->dtype != SQ_F32) return SQ_KV_F16;
    }
    return SQ_KV_F32;
}

int sq_kv_type_resolve(int type, const sq_model *m) { return type == SQ_KV_AUTO ? sq_kv_type_auto(m) : type; }

int sq_kv_pool_init_type(sq_kv_pool *p, const sq_model *m, int n_blocks, int block_size, int type, sq_err *e) {
    memset(p, 0, sizeof *p);
    type = sq_kv_type_resolve(type, m);
    if (n_blocks <= 0 || block_size <= 0) return sq_fail(e, SQ_EINVAL, "KV pool: %d blocks of %d", n_blocks, block_size);
    size_t es = sq_kv_type_size(type);
    if (!es) return sq_fail(e, SQ_EINVAL, "KV pool: unknown element type %d (f32, f16 or bf16)", type);
    if (type != SQ_KV_F32 && m->cfg.head_dim > SQ_KV_MAX_HEAD_DIM)
        return sq_fail(e, SQ_EINVAL, "KV pool: a %s cache needs head_dim <= %d, the model has %d", sq_kv_type_name(type),
                       SQ_KV_MAX_HEAD_DIM, m->cfg.head_dim);
    p->type = type;
    p->n_layers = m->cfg.n_layers;
    p->n_blocks = n_blocks;
    p->block_size = block_size;
    p->kv_dim = m->cfg.n_kv_heads * m->cfg.head_dim;
    p->k = calloc((size_t)p->n_layers, sizeof(void *));
    p->v = calloc((size_t)p->n_layers, sizeof(void *));
    size_t bytes = (size_t)n_blocks * block_size * p->kv_dim * es;
    int ok = p->k && p->v;
    for (int l = 0; ok && l < p->n_layers; l++) {
        p->k[l] = sq_malloc_aligned(bytes);
        p->v[l] = sq_malloc_aligned(bytes);
        ok = p->k[l] && p->v[l];
    }
    if (!ok) {
        sq_kv_pool_free(p);
        return sq_fail(e, SQ_ENOMEM, "KV pool: out of memory for %d blocks of %d positions (%zu MiB)", n_blocks,
                       block_size, 2 * bytes * (size_t)m->cfg.n_layers >> 20);
    }
    return 0;
}

int sq_kv_pool_init(sq_kv_pool *p, const sq_model *m, int n_blocks, int block_size, sq_err *e) {
    return sq_kv_pool_init_type(p, m, n_blocks, block_size, SQ_KV_F32, e);
}

void sq_kv_pool_free(sq_kv_pool *p) {
    for (int l = 0; l < p->n_layers; l++) {
        if (p->k) free(p->k[l]);
        if (p->v) free(p->v[l]);
    }
    free(p->k);
    free(p->v);
    memset(p, 0, sizeof *p);
}

size_t sq_kv_pool_bytes_per_token(const sq_kv_pool *p) {
    return 2 * (size_t)p->n_layers * p->kv_dim * sq_kv_type_size(p->type);
}

/* F16 ends at 65504: a key or value beyond it (an outlier channel) would round to infinity
 * and make every attention score against that position inf or NaN (llama.cpp's F16 cache
 * does that). The cache keeps the nearest value it can hold instead, +-65504, and +-inf
 * becomes that too; NaN fails both comparisons and stays NaN, so a broken model still shows
 * as non-finite logits. Values below 65520 round to 65504 anyway: nothing else changes. */
static inline uint16_t f16_saturated(float x) {
    const float top = 65504.0f;
    return sq_f32_to_f16(x > top ? top : x < -top ? -top : x);
}

/* f16_saturated on a row: the hardware conversion (round to nearest even, a NaN kept quiet
 * with its top payload bits) after the same clamp, so the same bits as the scalar code for
 * every one of the 2^32 inputs (checked exhaustively when this was written). min(top, x)
 * and max(-top, .) return x itself when it is NaN, as the scalar comparisons do. The scalar
 * conversion cost ~1% of a batched decode step's CPU time (two rows per token and layer). */
static void f16_row(uint16_t *d, const float *x, int n) {
    int i = 0;
#if defined(__AVX512F__)
    const __m512 top = _mm512_set1_ps(65504.0f), ntop = _mm512_set1_ps(-65504.0f);
    for (; i + 16 <= n; i += 16) {
        __m512 c = _mm512_max_ps(ntop, _mm512_min_ps(top, _mm512_loadu_ps(x + i)));
        _mm256_storeu_si256((__m256i *)(d + i), _mm512_cvtps_ph(c, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
#elif defined(__F16C__) && defined(__AVX__)
    const __m256 top = _mm256_set1_ps(65504.0f), ntop = _mm256_set1_ps(-65504.0f);
    for (; i + 8 <= n; i += 8) {
        __m256 c = _mm256_max_ps(ntop, _mm256_min_ps(top, _mm256_loadu_ps(x + i)));
        _mm_storeu_si128((__m128i *)(d + i), _mm256_cvtps_ph(c, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
#endif
    for (; i < n; i++) d[i] = f16_saturated(x[i]);
}

void sq_kv_pool_store(const sq_kv_pool *p, int layer, size_t slot, int off, const float *k, const float *v, int n) {
    size_t at = slot * p->kv_dim + off;
    if (p->type == SQ_KV_F16) {
        f16_row((uint16_t *)p->k[layer] + at, k, n);
        f16_row((uint16_t *)p->v[layer] + at, v, n);
    } else if (p->type == SQ_KV_BF16) {
        uint16_t *kd = (uint16_t *)p->k[layer] + at, *vd = (uint16_t *)p->v[layer] + at;
        for (int i = 0; i < n; i++) kd[i] = sq_f32_to_bf16(k[i]), vd[i] = sq_f32_to_bf16(v[i]);
    } else {
        memcpy((float *)p->k[layer] + at, k, (size_t)n * sizeof(float));
        memcpy((float *)p->v[layer] + at, v, (size_t)n * sizeof(float));
    }
}

void sq_kv_pool_copy_block(sq_kv_pool *p, int dst, int src, int n) {
    size_t es = sq_kv_type_size(p->type), stride = (size_t)p->block_size * p->kv_dim * es;
    for (int l = 0; l < p->n_layers; l++) {
        memcpy((char *)p->k[l] + dst * stride, (char *)p->k[l] + src * stride, (size_t)n * p->kv_dim * es);
        memcpy((char *)p->v[l] + dst * stride, (char *)p->v[l] + src * stride, (size_t)n * p->kv_dim * es);
    }
}
