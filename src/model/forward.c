/* The forward pass of one ragged step (see model.h): every Linear layer is one matmul over
 * all the step's tokens, attention runs per (token, head) against the paged KV cache. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/model.h"

struct sq_fwd {
    int max_tokens, max_out, max_ctx, n_threads;
    float *x, *xb, *q, *k, *v, *att, *tmp, *hb, *hb2, *cosv, *sinv, *xo, *scores;
    sq_matmul_ctx *mm;
};

void sq_fwd_free(sq_fwd *f) {
    if (!f) return;
    float *bufs[] = {f->x, f->xb, f->q, f->k, f->v, f->att, f->tmp, f->hb, f->hb2, f->cosv, f->sinv, f->xo, f->scores};
    for (size_t i = 0; i < SQ_ARRAY_LEN(bufs); i++) free(bufs[i]);
    sq_matmul_ctx_free(f->mm);
    free(f);
}

int sq_fwd_new(sq_fwd **out, const sq_model *m, int max_tokens, int max_out, int max_ctx, sq_err *e) {
    const sq_model_config *c = &m->cfg;
    *out = NULL;
    if (max_tokens <= 0 || max_out <= 0 || max_ctx <= 0)
        return sq_fail(e, SQ_EINVAL, "forward scratch: %d tokens, %d outputs, context %d", max_tokens, max_out, max_ctx);
    sq_fwd *f = calloc(1, sizeof *f);
    if (!f) return sq_fail(e, SQ_ENOMEM, "forward scratch: out of memory");
    f->max_tokens = max_tokens;
    f->max_out = max_out;
    f->max_ctx = max_ctx;
    f->n_threads = omp_get_max_threads();
    size_t T = (size_t)max_tokens, qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    size_t wide = SQ_MAX(SQ_MAX((size_t)c->dim, qd), (size_t)c->ffn_dim);
    f->x = sq_malloc_aligned(T * c->dim * 4);
    f->xb = sq_malloc_aligned(T * SQ_MAX((size_t)c->dim, qd) * 4);
    f->q = sq_malloc_aligned(T * qd * 4);
    f->k = sq_malloc_aligned(T * kvd * 4);
    f->v = sq_malloc_aligned(T * kvd * 4);
    f->att = sq_malloc_aligned(T * qd * 4);
    f->tmp = sq_malloc_aligned(T * wide * 4);
    f->hb = sq_malloc_aligned(T * c->ffn_dim * 4);
    f->hb2 = sq_malloc_aligned(T * c->ffn_dim * 4);
    f->cosv = sq_malloc_aligned(T * c->head_dim / 2 * 4);
    f->sinv = sq_malloc_aligned(T * c->head_dim / 2 * 4);
    f->xo = sq_malloc_aligned((size_t)max_out * c->dim * 4);
    f->scores = sq_malloc_aligned((size_t)f->n_threads * max_ctx * 4);
    int rc = 0;
    if (!f->x || !f->xb || !f->q || !f->k || !f->v || !f->att || !f->tmp || !f->hb || !f->hb2 || !f->cosv || !f->sinv ||
        !f->xo || !f->scores)
        rc = sq_fail(e, SQ_ENOMEM, "forward scratch: out of memory for %d tokens", max_tokens);
    if (!rc) rc = sq_matmul_ctx_new(&f->mm, e);
    if (rc) {
        sq_fwd_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

static inline size_t slot_of(const int32_t *blocks, int pos, int bs) {
    return (size_t)blocks[pos / bs] * bs + pos % bs;
}

int sq_model_forward(const sq_model *m, sq_fwd *f, sq_kv_pool *kv, const sq_batch *b, float *logits, sq_err *e) {
    const sq_model_config *c = &m->cfg;
    int T = b->n_tokens, dim = c->dim, hd = c->head_dim, half = hd / 2, rc;
    int qd = c->n_heads * hd, kvd = c->n_kv_heads * hd, bs = kv->block_size;
    if (T <= 0 || T > f->max_tokens || b->n_out < 0 || b->n_out > f->max_out)
        return sq_fail(e, SQ_EINVAL, "forward: %d tokens / %d outputs exceed the scratch (%d / %d)", T, b->n_out,
                       f->max_tokens, f->max_out);
    for (int t = 0; t < T; t++) {
        if (b->tokens[t] < 0 || b->tokens[t] >= c->vocab_size)
            return sq_fail(e, SQ_ERANGE, "forward: token id %d outside the vocabulary (%d)", b->tokens[t], c->vocab_size);
        if (b->pos[t] < 0 || b->pos[t] >= f->max_ctx)
            return sq_fail(e, SQ_ERANGE, "forward: position %d outside the context (%d)", b->pos[t], f->max_ctx);
        sq_embed_row(f->x + (size_t)t * dim, &m->tok_emb, b->tokens[t]);
        sq_rope_angles(&m->rope, b->pos[t], f->cosv + (size_t)t * half, f->sinv + (size_t)t * half);
    }
    for (int o = 0; o < b->n_out; o++)
        if (b->out_rows[o] < 0 || b->out_rows[o] >= T)
            return sq_fail(e, SQ_EINVAL, "forward: output row %d outside the step", b->out_rows[o]);
    int64_t attn_flops = 0; /* small steps stay on one thread: a fork/join costs more */
    for (int t = 0; t < T; t++) attn_flops += (int64_t)(b->pos[t] + 1) * c->n_heads * hd * 4;
    sq_attn_args aa = {.block_size = bs, .kv_stride = kvd, .n_heads = c->n_heads, .n_kv_heads = c->n_kv_heads,
                       .head_dim = hd};
    for (int l = 0; l < c->n_layers; l++) {
        const sq_layer *L = &m->layers[l];
        sq_rmsnorm(f->xb, f->x, L->attn_norm.data, T, dim, c->norm_eps);
        float *const qkv_y[] = {f->q, f->k, f->v};
        const sq_view *const qkv_w[] = {&L->wq, &L->wk, &L->wv};
        const float *const qkv_b[] = {L->bq.data, L->bk.data, L->bv.data};
        if ((rc = sq_matmul_n(f->mm, 3, qkv_y, f->xb, T, qkv_w, qkv_b, e))) return rc;
        for (int t = 0; t < T; t++) {
            const float *cs = f->cosv + (size_t)t * half, *sn = f->sinv + (size_t)t * half;
            sq_rope_apply(&m->rope, f->q + (size_t)t * qd, c->n_heads, cs, sn);
            sq_rope_apply(&m->rope, f->k + (size_t)t * kvd, c->n_kv_heads, cs, sn);
            size_t s = slot_of(b->blocks[t], b->pos[t], bs);
            memcpy(kv->k[l] + s * kvd, f->k + (size_t)t * kvd, (size_t)kvd * 4);
            memcpy(kv->v[l] + s * kvd, f->v + (size_t)t * kvd, (size_t)kvd * 4);
        }
        aa.k_base = kv->k[l];
        aa.v_base = kv->v[l];
        int work = T * c->n_heads;
#pragma omp parallel for schedule(dynamic, 1) if (attn_flops > 2000000)
        for (int w = 0; w < work; w++) {
            int t = w / c->n_heads, h = w % c->n_heads, p = b->pos[t];
            int start = c->sliding_window > 0 && p + 1 > c->sliding_window ? p + 1 - c->sliding_window : 0;
            sq_attn_args a = aa;
            a.blocks = b->blocks[t];
            sq_attention_head(&a, f->q + (size_t)t * qd, h, start, p + 1,
                              f->scores + (size_t)omp_get_thread_num() * f->max_ctx, f->att + (size_t)t * qd);
        }
        if ((rc = sq_matmul(f->mm, f->tmp, f->att, T, &L->wo, NULL, e))) return rc;
        sq_add(f->x, f->tmp, (size_t)T * dim);
        sq_rmsnorm(f->xb, f->x, L->ffn_norm.data, T, dim, c->norm_eps);
        float *const gu_y[] = {f->hb, f->hb2};
        const sq_view *const gu_w[] = {&L->w_gate, &L->w_up};
        const float *const gu_b[] = {NULL, NULL};
        if ((rc = sq_matmul_n(f->mm, 2, gu_y, f->xb, T, gu_w, gu_b, e))) return rc;
        sq_swiglu(f->hb, f->hb2, (size_t)T * c->ffn_dim);
        if ((rc = sq_matmul(f->mm, f->tmp, f->hb, T, &L->w_down, NULL, e))) return rc;
        sq_add(f->x, f->tmp, (size_t)T * dim);
    }
    if (b->n_out == 0) return 0;
    for (int o = 0; o < b->n_out; o++)
        sq_rmsnorm(f->xo + (size_t)o * dim, f->x + (size_t)b->out_rows[o] * dim, m->out_norm.data, 1, dim, c->norm_eps);
    return sq_matmul(f->mm, logits, f->xo, b->n_out, &m->lm_head, NULL, e);
}
