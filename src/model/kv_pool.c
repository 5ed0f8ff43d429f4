/* KV storage: one key and one value array per layer, cut into fixed-size blocks. */
#include <stdlib.h>
#include <string.h>

#include "scalequest/model.h"

int sq_kv_pool_init(sq_kv_pool *p, const sq_model *m, int n_blocks, int block_size, sq_err *e) {
    memset(p, 0, sizeof *p);
    if (n_blocks <= 0 || block_size <= 0) return sq_fail(e, SQ_EINVAL, "KV pool: %d blocks of %d", n_blocks, block_size);
    p->n_layers = m->cfg.n_layers;
    p->n_blocks = n_blocks;
    p->block_size = block_size;
    p->kv_dim = m->cfg.n_kv_heads * m->cfg.head_dim;
    p->k = calloc((size_t)p->n_layers, sizeof(float *));
    p->v = calloc((size_t)p->n_layers, sizeof(float *));
    size_t bytes = (size_t)n_blocks * block_size * p->kv_dim * sizeof(float);
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

void sq_kv_pool_free(sq_kv_pool *p) {
    for (int l = 0; l < p->n_layers; l++) {
        if (p->k) free(p->k[l]);
        if (p->v) free(p->v[l]);
    }
    free(p->k);
    free(p->v);
    memset(p, 0, sizeof *p);
}

void sq_kv_pool_copy_block(sq_kv_pool *p, int dst, int src, int n) {
    size_t stride = (size_t)p->block_size * p->kv_dim;
    for (int l = 0; l < p->n_layers; l++) {
        memcpy(p->k[l] + dst * stride, p->k[l] + src * stride, (size_t)n * p->kv_dim * sizeof(float));
        memcpy(p->v[l] + dst * stride, p->v[l] + src * stride, (size_t)n * p->kv_dim * sizeof(float));
    }
}
