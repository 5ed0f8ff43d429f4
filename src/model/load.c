/* Loading a model: HF folder (config.json + safetensors) or GGUF, weights viewed in place
 * where their dtype is one the kernels read, converted once otherwise. Every tensor's
 * presence, dtype and shape is checked, so a wrong or truncated file is an error that names
 * the file and the tensor. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/gguf.h"
#include "scalequest/model.h"
#include "scalequest/models.h"
#include "scalequest/quant.h"
#include "scalequest/safetensors.h"

struct sq_model_files {
    sq_gguf gguf;
    int has_gguf;
    sq_safetensors st;
    int has_st;
    void **owned;
    int n_owned, cap_owned;
};

typedef struct loader {
    sq_model *m;
    const char *path;
} loader;

static void *own(sq_model *m, size_t bytes) {
    struct sq_model_files *f = m->files;
    if (f->n_owned == f->cap_owned) {
        int nc = f->cap_owned ? f->cap_owned * 2 : 64;
        void **n = realloc(f->owned, sizeof(void *) * (size_t)nc);
        if (!n) return NULL;
        f->owned = n;
        f->cap_owned = nc;
    }
    void *p = sq_malloc_aligned(bytes ? bytes : 64);
    if (p) f->owned[f->n_owned++] = p;
    return p;
}

/* Find a tensor by its HF name or GGUF name (whichever file is open). */
static int find(loader *L, const char *name, sq_view *out, int required, sq_err *e) {
    struct sq_model_files *f = L->m->files;
    memset(out, 0, sizeof *out);
    if (f->has_st) {
        const sq_view *v = sq_st_find(&f->st, name);
        if (v) {
            *out = *v;
            return 1;
        }
    } else {
        const sq_gguf_tensor *t = sq_gguf_find_tensor(&f->gguf, name);
        if (t) {
            const char *tn = sq_ggml_type_name(t->ggml_type);
            if (sq_ggml_to_dtype(t->ggml_type, &out->dtype) || out->dtype == SQ_I32 || out->dtype == SQ_I64)
                return sq_fail(e, SQ_EUNSUP,
                               "%s: tensor %s has ggml type %s (%u); the engine reads F32, F16, BF16, Q4_0, Q4_1, "
                               "Q5_0, Q5_1, Q8_0, Q4_K, Q5_K and Q6_K",
                               L->path, name, tn ? tn : "unknown", t->ggml_type);
            if (t->n_dims < 1 || t->n_dims > 4)
                return sq_fail(e, SQ_EPARSE, "%s: tensor %s has %d dims", L->path, name, t->n_dims);
            out->ndim = t->n_dims;
            for (int i = 0; i < t->n_dims; i++) out->shape[i] = t->ne[t->n_dims - 1 - i];
            out->data = (void *)t->data;
            int per = sq_dtype_block(out->dtype, NULL);
            if (per && out->shape[out->ndim - 1] % per)
                return sq_fail(e, SQ_EPARSE, "%s: tensor %s: %s row length %lld is not a multiple of %d", L->path,
                               name, sq_dtype_name(out->dtype), (long long)out->shape[out->ndim - 1], per);
            if (per) {
                /* A NaN or infinite block scale would poison every output it touches: refuse
                 * it here, by block and file offset, rather than generate garbage. */
                int64_t bad = sq_quant_find_bad_block(t->data, out->dtype, sq_view_numel(out));
                if (bad >= 0) {
                    size_t bb;
                    sq_dtype_block(out->dtype, &bb);
                    return sq_fail(e, SQ_EPARSE, "%s: offset %zu: tensor %s: %s block %lld has a NaN or infinite scale",
                                   L->path, (size_t)(t->data - f->gguf.map.data) + (size_t)bad * bb, name,
                                   sq_dtype_name(out->dtype), (long long)bad);
                }
            }
            return 1;
        }
    }
    if (required) return sq_fail(e, SQ_ENOTFOUND, "%s: tensor %s is missing", L->path, name);
    return 0;
}

static int check_shape(loader *L, const char *name, const sq_view *v, int64_t d0, int64_t d1, sq_err *e) {
    int ok = d1 ? (v->ndim == 2 && v->shape[0] == d0 && v->shape[1] == d1) : (v->ndim == 1 && v->shape[0] == d0);
    if (!ok) {
        char got[96] = "";
        for (int i = 0; i < v->ndim && i < 4; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? "," : "", (long long)v->shape[i]);
        if (d1)
            return sq_fail(e, SQ_EPARSE, "%s: tensor %s has shape [%s], expected [%lld,%lld]", L->path, name, got,
                           (long long)d0, (long long)d1);
        return sq_fail(e, SQ_EPARSE, "%s: tensor %s has shape [%s], expected [%lld]", L->path, name, got,
                       (long long)d0);
    }
    return 0;
}

/* Any dtype to an owned F32 copy. */
static int to_f32(loader *L, const char *name, sq_view *v, sq_err *e) {
    if (v->dtype == SQ_F32) return 0;
    int64_t n = sq_view_numel(v), row = v->shape[v->ndim - 1];
    float *dst = own(L->m, (size_t)n * 4);
    if (!dst) return sq_fail(e, SQ_ENOMEM, "%s: out of memory converting %s", L->path, name);
    for (int64_t r = 0; r < n / row; r++) {
        sq_view one = *v;
        one.ndim = 2;
        one.shape[0] = n / row;
        one.shape[1] = row;
        sq_embed_row(dst + r * row, &one, r);
    }
    v->data = dst;
    v->dtype = SQ_F32;
    return 0;
}

/* A norm weight or bias: a vector of n floats. */
static int load_vec(loader *L, const char *name, sq_view *v, int64_t n, int required, sq_err *e) {
    int rc = find(L, name, v, required, e);
    if (rc <= 0) return rc;
    if ((rc = check_shape(L, name, v, n, 0, e))) return rc;
    return to_f32(L, name, v, e);
}

/* A Linear weight [out, in]: F32, BF16, F16 and the quantized types stay in place (the
 * matmul kernels widen F16 exactly, as BF16: half the bytes to stream of an F32 copy). */
static int load_mat(loader *L, const char *name, sq_view *v, int64_t out, int64_t in, sq_err *e) {
    int rc = find(L, name, v, 1, e);
    if (rc < 0) return rc;
    if ((rc = check_shape(L, name, v, out, in, e))) return rc;
    if (v->dtype == SQ_F32 || v->dtype == SQ_BF16 || v->dtype == SQ_F16 || sq_dtype_is_quant(v->dtype)) return 0;
    return sq_fail(e, SQ_EUNSUP, "%s: tensor %s has dtype %s", L->path, name, sq_dtype_name(v->dtype));
}

static int load_weights(loader *L, sq_err *e) {
    sq_model *m = L->m;
    const sq_model_config *c = &m->cfg;
    int g = m->from_gguf, rc;
    int64_t qd = (int64_t)c->n_heads * c->head_dim, kvd = (int64_t)c->n_kv_heads * c->head_dim;
    char n[160];
    if ((rc = find(L, g ? "token_embd.weight" : "model.embed_tokens.weight", &m->tok_emb, 1, e)) < 0) return rc;
    if ((rc = check_shape(L, "token embedding", &m->tok_emb, c->vocab_size, c->dim, e))) return rc;
    if (m->tok_emb.dtype != SQ_F32 && m->tok_emb.dtype != SQ_BF16 && m->tok_emb.dtype != SQ_F16 &&
        !sq_dtype_is_quant(m->tok_emb.dtype))
        return sq_fail(e, SQ_EUNSUP, "%s: token embedding dtype %s", L->path, sq_dtype_name(m->tok_emb.dtype));
    if ((rc = load_vec(L, g ? "output_norm.weight" : "model.norm.weight", &m->out_norm, c->dim, 1, e))) return rc;
    if (m->head == SQ_HEAD_SCORE) {
        /* HF's score head is a bias-free Linear(dim, num_labels); a reward is one label. */
        if ((rc = load_mat(L, "score.weight", &m->score, 1, c->dim, e))) return rc;
    } else if (!c->tie_embeddings) {
        if ((rc = load_mat(L, g ? "output.weight" : "lm_head.weight", &m->lm_head, c->vocab_size, c->dim, e)))
            return rc;
    } else {
        m->lm_head = m->tok_emb;
        if (m->lm_head.dtype != SQ_F32 && m->lm_head.dtype != SQ_BF16 && m->lm_head.dtype != SQ_F16 &&
            !sq_dtype_is_quant(m->lm_head.dtype) &&
            (rc = to_f32(L, "tied lm_head", &m->lm_head, e)))
            return rc;
    }
    /* The layer count comes from the config; a corrupt one (a GGUF block_count of two
     * billion) must not size an allocation before a single layer tensor is seen. Every
     * layer has an attention norm, so the last declared layer's must be in the file. */
    {
        char last[96];
        sq_view probe;
        if (g)
            snprintf(last, sizeof last, "blk.%d.attn_norm.weight", c->n_layers - 1);
        else
            snprintf(last, sizeof last, "model.layers.%d.input_layernorm.weight", c->n_layers - 1);
        if ((rc = find(L, last, &probe, 0, e)) < 0) return rc;
        if (rc == 0)
            return sq_fail(e, SQ_ENOTFOUND, "%s: the config declares %d layers but tensor %s is missing", L->path,
                           c->n_layers, last);
    }
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    if (!m->layers) return sq_fail(e, SQ_ENOMEM, "%s: out of memory", L->path);
    for (int i = 0; i < c->n_layers; i++) {
        sq_layer *l = &m->layers[i];
        struct {
            const char *hf, *gg;
            sq_view *v;
            int64_t d0, d1;
            int kind; /* 0 matrix, 1 vector, 2 optional bias */
        } t[] = {
            {"input_layernorm.weight", "attn_norm.weight", &l->attn_norm, c->dim, 0, 1},
            {"post_attention_layernorm.weight", "ffn_norm.weight", &l->ffn_norm, c->dim, 0, 1},
            {"self_attn.q_proj.weight", "attn_q.weight", &l->wq, qd, c->dim, 0},
            {"self_attn.k_proj.weight", "attn_k.weight", &l->wk, kvd, c->dim, 0},
            {"self_attn.v_proj.weight", "attn_v.weight", &l->wv, kvd, c->dim, 0},
            {"self_attn.o_proj.weight", "attn_output.weight", &l->wo, c->dim, qd, 0},
            {"self_attn.q_proj.bias", "attn_q.bias", &l->bq, qd, 0, 2},
            {"self_attn.k_proj.bias", "attn_k.bias", &l->bk, kvd, 0, 2},
            {"self_attn.v_proj.bias", "attn_v.bias", &l->bv, kvd, 0, 2},
            {"mlp.gate_proj.weight", "ffn_gate.weight", &l->w_gate, c->ffn_dim, c->dim, 0},
            {"mlp.up_proj.weight", "ffn_up.weight", &l->w_up, c->ffn_dim, c->dim, 0},
            {"mlp.down_proj.weight", "ffn_down.weight", &l->w_down, c->dim, c->ffn_dim, 0},
        };
        for (size_t k = 0; k < SQ_ARRAY_LEN(t); k++) {
            if (g)
                snprintf(n, sizeof n, "blk.%d.%s", i, t[k].gg);
            else
                snprintf(n, sizeof n, "model.layers.%d.%s", i, t[k].hf);
            if (t[k].kind == 0)
                rc = load_mat(L, n, t[k].v, t[k].d0, t[k].d1, e);
            else
                rc = load_vec(L, n, t[k].v, t[k].d0, t[k].kind == 1 || c->attn_bias, e);
            if (rc < 0) return rc;
        }
    }
    int interleaved = g && strcmp(c->arch, "qwen2") != 0;
    int scaling = c->rope_scaling == SQ_ROPE_LINEAR ? 1 : c->rope_scaling == SQ_ROPE_DYNAMIC ? 2
                  : c->rope_scaling == SQ_ROPE_LLAMA3 ? 3 : 0;
    if (c->rope_scaling == SQ_ROPE_YARN) return sq_fail(e, SQ_EUNSUP, "%s: yarn rope scaling is not supported", L->path);
    int orig = c->rope_original_max_pos > 0 ? c->rope_original_max_pos : c->max_seq_len;
    if (sq_rope_init(&m->rope, c->head_dim, c->rope_theta, scaling, c->rope_factor, c->rope_low_freq_factor,
                     c->rope_high_freq_factor, orig, interleaved))
        return sq_fail(e, SQ_ERANGE, "%s: head_dim %d unsupported for RoPE", L->path, c->head_dim);
    if (g) { /* llama.cpp stores llama3-style scaling as per-frequency divisors */
        sq_view ff;
        if ((rc = find(L, "rope_freqs.weight", &ff, 0, e)) < 0) return rc;
        if (rc == 1) {
            if ((rc = check_shape(L, "rope_freqs.weight", &ff, c->head_dim / 2, 0, e)) ||
                (rc = to_f32(L, "rope_freqs.weight", &ff, e)))
                return rc;
            sq_rope_set_freq_factors(&m->rope, ff.data);
        }
    }
    return 0;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* A folder is for one head: say which command fits it when it is not the one asked for. */
static int check_head(const sq_model *m, const char *path, sq_err *e) {
    if (m->head == SQ_HEAD_LM && m->cfg.seq_cls)
        return sq_fail(e, SQ_EUNSUP,
                       "%s/config.json: a sequence-classification model (a scalar head, no LM head) cannot "
                       "generate text; score with it instead (scalequest score)",
                       path);
    if (m->head == SQ_HEAD_SCORE && !m->cfg.seq_cls)
        return sq_fail(e, SQ_EUNSUP,
                       "%s: no scalar head: a scorer needs an HF folder whose config.json names "
                       "*ForSequenceClassification with a score.weight [1, %d] tensor (as train --mode regress "
                       "writes)",
                       path, m->cfg.dim);
    return 0;
}

int sq_model_open(sq_model **out, const char *path, sq_err *e) { return sq_model_open_head(out, path, SQ_HEAD_LM, e); }

int sq_model_open_head(sq_model **out, const char *path, sq_head head, sq_err *e) {
    { /* a registry name (models.h) stands for its installed file */
        char *resolved = NULL;
        int rr = sq_models_resolve(path, &resolved, e);
        if (rr < 0) return rr;
        if (rr == 1) {
            rr = sq_model_open_head(out, resolved, head, e);
            free(resolved);
            return rr;
        }
    }
    *out = NULL;
    sq_model *m = calloc(1, sizeof *m);
    if (!m || !(m->files = calloc(1, sizeof *m->files)) || !(m->path = sq_strdup(path))) {
        if (m) free(m->files);
        free(m);
        return sq_fail(e, SQ_ENOMEM, "%s: out of memory", path);
    }
    m->head = head;
    loader L = {m, path};
    int rc;
    if (sq_dir_exists(path)) {
        char *cfg_path = sq_path_join(path, "config.json"), *json = NULL;
        rc = cfg_path ? sq_file_read_all(cfg_path, &json, NULL, e) : sq_fail(e, SQ_ENOMEM, "out of memory");
        if (!rc) rc = sq_model_config_from_json(&m->cfg, json, cfg_path, e);
        free(json);
        free(cfg_path);
        if (!rc && !(rc = sq_st_open(&m->files->st, path, e))) m->files->has_st = 1;
    } else if (ends_with(path, ".gguf") || sq_file_exists(path)) {
        m->from_gguf = 1;
        rc = sq_gguf_open(&m->files->gguf, path, e);
        if (!rc) {
            m->files->has_gguf = 1;
            rc = sq_model_config_from_gguf(&m->cfg, &m->files->gguf, e);
        }
    } else {
        rc = sq_fail(e, SQ_ENOTFOUND, "%s: no such model folder or GGUF file", path);
    }
    if (!rc && (rc = sq_model_config_validate(&m->cfg, e))) sq_err_wrap(e, "%s", path);
    if (!rc) {
        const sq_model_config *c = &m->cfg;
        if (c->dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 || c->head_dim <= 0 ||
            c->ffn_dim <= 0 || c->vocab_size <= 0 || c->n_heads % c->n_kv_heads || c->head_dim > 1024 ||
            c->head_dim % 2)
            rc = sq_fail(e, SQ_EINVAL,
                         "%s: unusable shape: dim %d, layers %d, heads %d, kv heads %d, head_dim %d, ffn %d, vocab %d",
                         path, c->dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->ffn_dim, c->vocab_size);
    }
    if (!rc && head == SQ_HEAD_ANY) m->head = m->cfg.seq_cls ? SQ_HEAD_SCORE : SQ_HEAD_LM;
    if (!rc) rc = check_head(m, path, e);
    if (!rc) rc = load_weights(&L, e);
    if (rc) {
        sq_model_close(m);
        return rc;
    }
    *out = m;
    return 0;
}

void sq_model_close(sq_model *m) {
    if (!m) return;
    struct sq_model_files *f = m->files;
    if (f) {
        for (int i = 0; i < f->n_owned; i++) free(f->owned[i]);
        free(f->owned);
        if (f->has_st) sq_st_close(&f->st);
        if (f->has_gguf) sq_gguf_close(&f->gguf);
        free(f);
    }
    free(m->layers);
    free(m->path);
    free(m);
}

size_t sq_model_weight_bytes(const sq_model *m) {
    sq_view row = m->tok_emb;
    row.ndim = 1;
    row.shape[0] = m->cfg.dim;
    size_t b = sq_view_bytes(sq_model_head_weight(m)) + sq_view_bytes(&row);
    for (int i = 0; i < m->cfg.n_layers; i++) {
        const sq_layer *l = &m->layers[i];
        b += sq_view_bytes(&l->wq) + sq_view_bytes(&l->wk) + sq_view_bytes(&l->wv) + sq_view_bytes(&l->wo) +
             sq_view_bytes(&l->w_gate) + sq_view_bytes(&l->w_up) + sq_view_bytes(&l->w_down);
    }
    return b;
}
