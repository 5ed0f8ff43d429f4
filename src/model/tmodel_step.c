/* Forward and backward of the training model, written out layer by layer (llm.c's way) over
 * the kernels of kernels.h: forward keeps every activation backward needs in the arena;
 * backward walks the layers in reverse, accumulating parameter gradients into m->grads. */
#include <math.h>
#include <string.h>

#include "tm_internal.h"

/* Without biases, q/k/v (and gate/up) weights that lie back to back in the parameter buffer
 * (the tensor table pads each to 16 floats, so they do when their sizes are multiples of
 * 16) act as one [qd + 2 kd, C] (or [2F, C]) matrix: one GEMM instead of three (two), the
 * input packed once. The gradient buffer has the same layout. */
static int qkv_fused(const sq_tm_layer_w *W, int C, int qd, int kd) {
    return !W->bq && W->wk == W->wq + (size_t)qd * C && W->wv == W->wk + (size_t)kd * C;
}

static int gu_fused(const sq_tm_layer_w *W, int C, int F) { return W->wu == W->wg + (size_t)F * C; }

static int check_batch(const sq_tmodel *m, const sq_tbatch *b, sq_err *e) {
    int N = b->B * b->T;
    if (b->B <= 0 || b->T <= 0) return sq_fail(e, SQ_EINVAL, "train: empty batch (%d x %d)", b->B, b->T);
    for (int i = 0; i < N; i++) {
        int r = i % b->T;
        if (b->tokens[i] < 0 || b->tokens[i] >= m->cfg.vocab_size)
            return sq_fail(e, SQ_ERANGE, "train: token %d at batch position %d is outside the vocabulary of %d",
                           b->tokens[i], i, m->cfg.vocab_size);
        if (b->targets && b->targets[i] >= m->cfg.vocab_size)
            return sq_fail(e, SQ_ERANGE, "train: target %d at batch position %d is outside the vocabulary of %d",
                           b->targets[i], i, m->cfg.vocab_size);
        if (b->pos[i] < 0 || b->pos[i] >= m->cfg.max_seq_len)
            return sq_fail(e, SQ_ERANGE, "train: position %d at batch position %d exceeds max_seq_len %d",
                           b->pos[i], i, m->cfg.max_seq_len);
        if (b->seg_start[i] < 0 || b->seg_start[i] > r)
            return sq_fail(e, SQ_EINVAL, "train: seg_start %d at batch position %d is not in [0, %d]",
                           b->seg_start[i], i, r);
    }
    return 0;
}

int sq_tm_forward(sq_tmodel *m, const sq_tbatch *b, int need_logits, sq_err *e) {
    int rc = check_batch(m, b, e);
    if (rc) return rc;
    if ((rc = sq_tm_acts_reserve(m, b->B, b->T, e))) return rc;
    const sq_model_config *c = &m->cfg;
    sq_tm_acts *a = m->acts;
    int N = b->B * b->T, C = c->dim, H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim, F = c->ffn_dim;
    int qd = H * hd, kd = KV * hd, qkvd = qd + 2 * kd;
    sq_tp_start();

    float *x0 = a->layer[0].x_in;
    for (int i = 0; i < N; i++) memcpy(x0 + (size_t)i * C, m->w.embed + (size_t)b->tokens[i] * C, C * sizeof(float));
    sq_tp_mark(SQ_TP_EMBED);

    for (int l = 0; l < c->n_layers; l++) {
        sq_tm_layer_a *L = &a->layer[l];
        const sq_tm_layer_w *W = &m->w.layer[l];
        float *x_out = l + 1 < c->n_layers ? a->layer[l + 1].x_in : a->x_out;
        sq_rmsnorm_forward(L->ln1, L->rstd1, L->x_in, W->ln1, N, C, c->norm_eps);
        sq_tp_mark(SQ_TP_NORM);
        if (qkv_fused(W, C, qd, kd)) {
            sq_linear_forward(L->q, qkvd, L->ln1, W->wq, NULL, N, C, qkvd);
        } else {
            sq_linear_forward(L->q, qkvd, L->ln1, W->wq, W->bq, N, C, qd);
            sq_linear_forward(L->k, qkvd, L->ln1, W->wk, W->bk, N, C, kd);
            sq_linear_forward(L->v, qkvd, L->ln1, W->wv, W->bv, N, C, kd);
        }
        sq_tp_mark(SQ_TP_QKV);
        /* q and k heads sit side by side in each row: one pass rotates both. */
        sq_rope_forward(L->q, qkvd, b->pos, m->rope_cos, m->rope_sin, N, H + KV, hd);
        sq_tp_mark(SQ_TP_ROPE);
        sq_attention_forward(L->atty, L->att, L->q, L->k, L->v, qkvd, b->seg_start, b->B, b->T, H, KV, hd);
        sq_tp_mark(SQ_TP_ATTN);
        sq_linear_residual_forward(L->x_mid, L->x_in, L->atty, W->wo, N, qd, C);
        sq_tp_mark(SQ_TP_O);
        sq_rmsnorm_forward(L->ln2, L->rstd2, L->x_mid, W->ln2, N, C, c->norm_eps);
        sq_tp_mark(SQ_TP_NORM);
        if (gu_fused(W, C, F)) {
            sq_linear_forward(L->gu, 2 * F, L->ln2, W->wg, NULL, N, C, 2 * F);
        } else {
            sq_linear_forward(L->gu, 2 * F, L->ln2, W->wg, NULL, N, C, F);
            sq_linear_forward(L->gu + F, 2 * F, L->ln2, W->wu, NULL, N, C, F);
        }
        sq_tp_mark(SQ_TP_MLP);
        sq_swiglu_forward(L->h, L->gu, N, F);
        sq_tp_mark(SQ_TP_SWIGLU);
        sq_linear_residual_forward(x_out, L->x_mid, L->h, W->wd, N, F, C);
        sq_tp_mark(SQ_TP_MLP);
    }
    sq_rmsnorm_forward(a->hidden, a->rstdf, a->x_out, m->w.norm, N, C, c->norm_eps);
    sq_tp_mark(SQ_TP_NORM);

    memset(a->logp, 0, (size_t)N * sizeof(float));
    if (need_logits) {
        int V = c->vocab_size;
        sq_linear_forward(a->probs, V, a->hidden, m->w.lm_head, NULL, N, C, V);
        sq_tp_mark(SQ_TP_LM);
        sq_xent_forward(a->probs, a->pinv, a->logp, b->targets, N, V);
        sq_tp_mark(SQ_TP_SOFTMAX);
    }
    return 0;
}

int sq_tm_backward(sq_tmodel *m, const sq_tbatch *b, const float *dlogp, const int *score_rows,
                   const float *dvalue, int n_score, sq_err *e) {
    const sq_model_config *c = &m->cfg;
    sq_tm_acts *a = m->acts;
    if (!a->mem || b->B * b->T > a->N_cap) return sq_fail(e, SQ_ESTATE, "train: backward without a forward");
    int N = b->B * b->T, C = c->dim, H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim, F = c->ffn_dim;
    int qd = H * hd, kd = KV * hd, qkvd = qd + 2 * kd, V = c->vocab_size;
    for (int s = 0; s < n_score; s++)
        if (score_rows[s] < 0 || score_rows[s] >= N)
            return sq_fail(e, SQ_EINVAL, "train: score row %d outside the batch of %d", score_rows[s], N);
    sq_tp_start();

    if (dlogp) {
        /* a->dln is free until the layers start. */
        sq_xent_backward(a->dhidden, m->g.lm_head, a->dln, a->probs, a->pinv, a->hidden, m->w.lm_head, b->targets,
                         dlogp, N, C, V);
    } else {
        memset(a->dhidden, 0, (size_t)N * C * sizeof(float));
    }
    for (int s = 0; s < n_score; s++) {
        int r = score_rows[s];
        const float *h = a->hidden + (size_t)r * C;
        float *dh = a->dhidden + (size_t)r * C;
        for (int j = 0; j < C; j++) {
            dh[j] += dvalue[s] * m->w.score[j];
            m->g.score[j] += dvalue[s] * h[j];
        }
    }
    sq_tp_mark(SQ_TP_B_LM);
    float *dx = a->dx;
    memset(dx, 0, (size_t)N * C * sizeof(float));
    sq_rmsnorm_backward(dx, m->g.norm, a->dhidden, a->x_out, m->w.norm, a->rstdf, N, C);
    sq_tp_mark(SQ_TP_B_NORM);

    for (int l = c->n_layers - 1; l >= 0; l--) {
        sq_tm_layer_a *L = &a->layer[l];
        const sq_tm_layer_w *W = &m->w.layer[l];
        sq_tm_layer_w *G = &m->g.layer[l];
        /* MLP branch: out = x_mid + down(swiglu(gate(ln2), up(ln2))). */
        sq_linear_backward(a->dh, G->wd, NULL, dx, C, L->h, W->wd, N, F, C, 0);
        sq_tp_mark(SQ_TP_B_MLP);
        sq_swiglu_backward(a->dgu, a->dh, L->gu, N, F);
        sq_tp_mark(SQ_TP_B_SWIGLU);
        if (gu_fused(W, C, F)) {
            sq_linear_backward(a->dln, G->wg, NULL, a->dgu, 2 * F, L->ln2, W->wg, N, C, 2 * F, 0);
        } else {
            sq_linear_backward(a->dln, G->wg, NULL, a->dgu, 2 * F, L->ln2, W->wg, N, C, F, 0);
            sq_linear_backward(a->dln, G->wu, NULL, a->dgu + F, 2 * F, L->ln2, W->wu, N, C, F, 1);
        }
        sq_tp_mark(SQ_TP_B_MLP);
        sq_rmsnorm_backward(dx, G->ln2, a->dln, L->x_mid, W->ln2, L->rstd2, N, C);
        sq_tp_mark(SQ_TP_B_NORM);
        /* Attention branch: x_mid = x_in + o(attention(rope(q), rope(k), v)). */
        sq_linear_backward(a->datty, G->wo, NULL, dx, C, L->atty, W->wo, N, qd, C, 0);
        sq_tp_mark(SQ_TP_B_O);
        sq_attention_backward(a->dq, a->dk, a->dv, qkvd, a->datty, L->q, L->k, L->v, L->att, b->seg_start, b->B,
                              b->T, H, KV, hd, a->attscr);
        sq_tp_mark(SQ_TP_B_ATTN);
        sq_rope_backward(a->dq, qkvd, b->pos, m->rope_cos, m->rope_sin, N, H + KV, hd);
        sq_tp_mark(SQ_TP_B_ROPE);
        if (qkv_fused(W, C, qd, kd)) {
            sq_linear_backward(a->dln, G->wq, NULL, a->dq, qkvd, L->ln1, W->wq, N, C, qkvd, 0);
        } else {
            sq_linear_backward(a->dln, G->wq, G->bq, a->dq, qkvd, L->ln1, W->wq, N, C, qd, 0);
            sq_linear_backward(a->dln, G->wk, G->bk, a->dk, qkvd, L->ln1, W->wk, N, C, kd, 1);
            sq_linear_backward(a->dln, G->wv, G->bv, a->dv, qkvd, L->ln1, W->wv, N, C, kd, 1);
        }
        sq_tp_mark(SQ_TP_B_QKV);
        sq_rmsnorm_backward(dx, G->ln1, a->dln, L->x_in, W->ln1, L->rstd1, N, C);
        sq_tp_mark(SQ_TP_B_NORM);
    }
    /* Embedding rows may repeat within a batch: serial, so the sum is deterministic. */
    for (int i = 0; i < N; i++) {
        float *ge = m->g.embed + (size_t)b->tokens[i] * C;
        const float *d = dx + (size_t)i * C;
        for (int j = 0; j < C; j++) ge[j] += d[j];
    }
    sq_tp_mark(SQ_TP_B_EMBED);
    return 0;
}
