/* The training model's parameter layout: one fp32 buffer, a tensor table with HF names, and
 * named views for params and grads; plus the activation arena of one step. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tm_internal.h"

static int add_tensor(sq_tmodel *m, int cap, const char *name, int64_t d0, int64_t d1, int decay) {
    if (m->n_tensors >= cap) return -1;
    sq_tm_tensor *t = &m->tensors[m->n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = d1 > 0 ? 2 : 1;
    t->shape[0] = d0;
    t->shape[1] = d1 > 0 ? d1 : 0;
    t->numel = (size_t)d0 * (size_t)(d1 > 0 ? d1 : 1);
    /* Keep every tensor 64-byte aligned (16 floats) for the kernels. */
    t->offset = m->n_params;
    m->n_params += (t->numel + 15) & ~(size_t)15;
    t->decay = decay;
    return 0;
}

static void bind(const sq_tmodel *m, float *base, sq_tm_weights *w) {
    const sq_model_config *c = &m->cfg;
    int i = 0;
    w->embed = base + m->tensors[i++].offset;
    for (int l = 0; l < c->n_layers; l++) {
        sq_tm_layer_w *L = &w->layer[l];
        L->ln1 = base + m->tensors[i++].offset;
        L->wq = base + m->tensors[i++].offset;
        L->bq = c->attn_bias ? base + m->tensors[i++].offset : NULL;
        L->wk = base + m->tensors[i++].offset;
        L->bk = c->attn_bias ? base + m->tensors[i++].offset : NULL;
        L->wv = base + m->tensors[i++].offset;
        L->bv = c->attn_bias ? base + m->tensors[i++].offset : NULL;
        L->wo = base + m->tensors[i++].offset;
        L->ln2 = base + m->tensors[i++].offset;
        L->wg = base + m->tensors[i++].offset;
        L->wu = base + m->tensors[i++].offset;
        L->wd = base + m->tensors[i++].offset;
    }
    w->norm = base + m->tensors[i++].offset;
    w->lm_head = c->tie_embeddings ? w->embed : base + m->tensors[i++].offset;
    w->score = m->has_score ? base + m->tensors[i++].offset : NULL;
}

int sq_tm_create(sq_tmodel *m, const sq_model_config *cfg, int has_score, sq_err *e) {
    memset(m, 0, sizeof *m);
    const sq_model_config *c = cfg;
    if (c->dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 || c->vocab_size <= 0 ||
        c->ffn_dim <= 0 || c->head_dim <= 0 || (c->head_dim & 1) || c->n_heads % c->n_kv_heads ||
        c->max_seq_len <= 0)
        return sq_fail(e, SQ_EINVAL,
                       "train: bad model shape (dim %d, layers %d, heads %d/%d, head_dim %d, ffn %d, vocab %d, "
                       "max_seq_len %d)",
                       c->dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->ffn_dim, c->vocab_size,
                       c->max_seq_len);
    m->cfg = *cfg;
    m->has_score = has_score;
    int cap = 4 + 12 * c->n_layers;
    m->tensors = calloc((size_t)cap, sizeof *m->tensors);
    m->w.layer = calloc((size_t)c->n_layers, sizeof *m->w.layer);
    m->g.layer = calloc((size_t)c->n_layers, sizeof *m->g.layer);
    m->acts = calloc(1, sizeof *m->acts);
    if (!m->tensors || !m->w.layer || !m->g.layer || !m->acts) goto oom;
    int C = c->dim, qd = c->n_heads * c->head_dim, kd = c->n_kv_heads * c->head_dim, F = c->ffn_dim;
    char nm[80];
    add_tensor(m, cap, "model.embed_tokens.weight", c->vocab_size, C, 1);
    for (int l = 0; l < c->n_layers; l++) {
#define T_(suffix, d0, d1, decay)                                                                 \
    snprintf(nm, sizeof nm, "model.layers.%d.%s", l, suffix);                                      \
    add_tensor(m, cap, nm, d0, d1, decay)
        T_("input_layernorm.weight", C, 0, 0);
        T_("self_attn.q_proj.weight", qd, C, 1);
        if (c->attn_bias) { T_("self_attn.q_proj.bias", qd, 0, 0); }
        T_("self_attn.k_proj.weight", kd, C, 1);
        if (c->attn_bias) { T_("self_attn.k_proj.bias", kd, 0, 0); }
        T_("self_attn.v_proj.weight", kd, C, 1);
        if (c->attn_bias) { T_("self_attn.v_proj.bias", kd, 0, 0); }
        T_("self_attn.o_proj.weight", C, qd, 1);
        T_("post_attention_layernorm.weight", C, 0, 0);
        T_("mlp.gate_proj.weight", F, C, 1);
        T_("mlp.up_proj.weight", F, C, 1);
        T_("mlp.down_proj.weight", C, F, 1);
#undef T_
    }
    add_tensor(m, cap, "model.norm.weight", C, 0, 0);
    if (!c->tie_embeddings) add_tensor(m, cap, "lm_head.weight", c->vocab_size, C, 1);
    if (has_score) add_tensor(m, cap, "score.weight", 1, C, 1);
    m->params = sq_malloc_aligned(m->n_params * sizeof(float));
    m->grads = sq_malloc_aligned(m->n_params * sizeof(float));
    if (!m->params || !m->grads) goto oom;
    memset(m->params, 0, m->n_params * sizeof(float));
    memset(m->grads, 0, m->n_params * sizeof(float));
    bind(m, m->params, &m->w);
    bind(m, m->grads, &m->g);

    int half = c->head_dim / 2;
    m->rope_cos = malloc((size_t)c->max_seq_len * half * sizeof(float));
    m->rope_sin = malloc((size_t)c->max_seq_len * half * sizeof(float));
    if (!m->rope_cos || !m->rope_sin) goto oom;
    if (c->rope_scaling == SQ_ROPE_YARN) {
        sq_tm_free(m);
        return sq_fail(e, SQ_EUNSUP, "train: YaRN rope scaling is not supported for training");
    }
    /* The engine's frequencies (linear and llama3 scalings; fp32, as transformers). Dynamic NTK
     * stretches only positions past the trained length at inference: training keeps the base. */
    int llama3 = c->rope_scaling == SQ_ROPE_LLAMA3 && c->rope_factor > 0 && c->rope_original_max_pos > 0;
    int scaling = c->rope_scaling == SQ_ROPE_LINEAR ? 1 : llama3 ? 3 : 0;
    sq_rope rope;
    if (sq_rope_init(&rope, c->head_dim, c->rope_theta, scaling, c->rope_factor, c->rope_low_freq_factor,
                     c->rope_high_freq_factor, c->rope_original_max_pos, 0)) {
        sq_tm_free(m);
        return sq_fail(e, SQ_ERANGE, "train: head_dim %d unsupported for RoPE", c->head_dim);
    }
    for (int p = 0; p < c->max_seq_len; p++)
        sq_rope_angles(&rope, p, m->rope_cos + (size_t)p * half, m->rope_sin + (size_t)p * half);
    return 0;
oom:
    sq_tm_free(m);
    return sq_fail(e, SQ_ENOMEM, "train: out of memory for a model of %zu parameters", m->n_params);
}

void sq_tm_free(sq_tmodel *m) {
    sq_tp_report();
    if (m->acts) sq_tm_acts_free(m->acts);
    free(m->acts);
    free(m->tensors);
    free(m->w.layer);
    free(m->g.layer);
    free(m->params);
    free(m->grads);
    free(m->rope_cos);
    free(m->rope_sin);
    memset(m, 0, sizeof *m);
}

void sq_tm_init_random(sq_tmodel *m, uint64_t seed, float std) {
    sq_rng r;
    sq_rng_seed(&r, seed);
    for (int i = 0; i < m->n_tensors; i++) {
        const sq_tm_tensor *t = &m->tensors[i];
        float *p = m->params + t->offset;
        int is_norm = strstr(t->name, "norm.weight") != NULL;
        for (size_t j = 0; j < t->numel; j++)
            p[j] = is_norm ? 1.0f : t->ndim == 2 ? (float)(sq_rng_normal(&r) * std) : 0.0f;
    }
}

const sq_tm_tensor *sq_tm_find(const sq_tmodel *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

void sq_tm_zero_grad(sq_tmodel *m) {
    sq_tp_start();
    memset(m->grads, 0, m->n_params * sizeof(float));
    sq_tp_mark(SQ_TP_ZERO);
}

float sq_tm_score_value(const sq_tmodel *m, int row) {
    const float *h = m->hidden + (size_t)row * m->cfg.dim;
    float s = 0;
    for (int i = 0; i < m->cfg.dim; i++) s += h[i] * m->w.score[i];
    return s;
}

/* ---- activations ----------------------------------------------------------------------- */

void sq_tm_acts_free(sq_tm_acts *a) {
    free(a->mem);
    free(a->layer);
    memset(a, 0, sizeof *a);
}

int sq_tm_acts_reserve(sq_tmodel *m, int B, int T, sq_err *e) {
    sq_tm_acts *a = m->acts;
    int N = B * T;
    if (a->mem && N <= a->N_cap && T <= a->T_cap) return 0; /* att needs N*T <= N_cap*T_cap */
    sq_tm_acts_free(a);
    const sq_model_config *c = &m->cfg;
    size_t C = c->dim, qd = (size_t)c->n_heads * c->head_dim, kd = (size_t)c->n_kv_heads * c->head_dim,
           F = c->ffn_dim, V = c->vocab_size, H = c->n_heads;
    size_t n = N;
    size_t per_layer = n * C * 4 + n * 2 + n * qd * 2 + n * kd * 2 + (size_t)B * H * T * T + n * F * 3;
    size_t total = per_layer * c->n_layers + n * C * 2 + n + n * V + n + n;
    size_t attscr = (size_t)B * c->n_kv_heads * sq_attention_block(T) * T;
    size_t scratch = n * C * 3 + n * qd * 2 + n * kd * 2 + n * F * 3 + attscr;
    total += scratch;
    /* Round every piece up to 16 floats: generous slack. */
    total += 64 * (size_t)(30 * c->n_layers + 30);
    a->mem = sq_malloc_aligned(total * sizeof(float));
    a->layer = calloc((size_t)c->n_layers, sizeof *a->layer);
    if (!a->mem || !a->layer) {
        sq_tm_acts_free(a);
        return sq_fail(e, SQ_ENOMEM, "train: out of memory for activations of %d x %d tokens", B, T);
    }
    float *p = a->mem;
#define TAKE(dst, cnt)                                                                             \
    do {                                                                                           \
        (dst) = p;                                                                                 \
        p += ((size_t)(cnt) + 15) & ~(size_t)15;                                                   \
    } while (0)
    for (int l = 0; l < c->n_layers; l++) {
        sq_tm_layer_a *L = &a->layer[l];
        TAKE(L->x_in, n * C);
        TAKE(L->ln1, n * C);
        TAKE(L->rstd1, n);
        TAKE(L->q, n * (qd + 2 * kd));
        L->k = L->q + qd;
        L->v = L->k + kd;
        TAKE(L->att, (size_t)B * H * T * T);
        TAKE(L->atty, n * qd);
        TAKE(L->x_mid, n * C);
        TAKE(L->ln2, n * C);
        TAKE(L->rstd2, n);
        TAKE(L->gu, n * F * 2);
        TAKE(L->h, n * F);
    }
    TAKE(a->x_out, n * C);
    TAKE(a->rstdf, n);
    TAKE(a->hidden, n * C);
    TAKE(a->probs, n * V);
    TAKE(a->pinv, n);
    TAKE(a->logp, n);
    TAKE(a->dx, n * C);
    TAKE(a->dln, n * C);
    TAKE(a->dhidden, n * C);
    TAKE(a->dq, n * (qd + 2 * kd));
    a->dk = a->dq + qd;
    a->dv = a->dk + kd;
    TAKE(a->datty, n * qd);
    TAKE(a->dgu, n * F * 2);
    TAKE(a->dh, n * F);
    TAKE(a->attscr, attscr);
#undef TAKE
    a->N_cap = N;
    a->T_cap = T;
    m->logp = a->logp;
    m->hidden = a->hidden;
    return 0;
}
