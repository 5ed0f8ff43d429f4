/* HF folders in and out of the training model: config.json + model.safetensors, so that
 * transformers' from_pretrained and our own loader read back what we trained. */
#include <stdlib.h>
#include <string.h>

#include "scalequest/safetensors.h"
#include "scalequest/train.h"

/* A scalar head makes the config the sequence-classification class with one label, which is
 * how HF reward models are stored; its pad token (EOS unless the config names one) is what
 * transformers skips when it looks for the scored position. */
static int config_json(const sq_tmodel *m, sq_buf *out, sq_err *e) {
    sq_model_config c = m->cfg;
    c.seq_cls = m->has_score;
    if (c.seq_cls && c.pad_id < 0) c.pad_id = c.eos_id;
    memset(out, 0, sizeof *out);
    int rc = sq_model_config_to_json(&c, out);
    if (rc) {
        sq_buf_free(out);
        return sq_fail(e, rc, "train: config of arch \"%s\" cannot be written as config.json (%s)", c.arch,
                       sq_strerror(rc));
    }
    return 0;
}

int sq_tm_write_buffer(const sq_tmodel *m, const float *buf, const char *path, sq_err *e) {
    sq_st_entry *ent = calloc((size_t)m->n_tensors, sizeof *ent);
    if (!ent) return sq_fail(e, SQ_ENOMEM, "train: out of memory");
    int k = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const sq_tm_tensor *t = &m->tensors[i];
        /* A sequence-classification model has no LM head in HF's layout. */
        if (m->has_score && !strcmp(t->name, "lm_head.weight")) continue;
        ent[k].name = t->name;
        ent[k].view.data = (void *)(buf + t->offset);
        ent[k].view.dtype = SQ_F32;
        ent[k].view.ndim = t->ndim;
        ent[k].view.shape[0] = t->shape[0];
        ent[k].view.shape[1] = t->shape[1];
        k++;
    }
    int rc = sq_st_write(path, ent, k, e);
    free(ent);
    return rc;
}

int sq_tm_save_hf(const sq_tmodel *m, const char *dir, const char *tokenizer_src, sq_err *e) {
    int rc = sq_mkdirs(dir, e);
    if (rc) return rc;
    sq_buf cfg;
    if ((rc = config_json(m, &cfg, e))) return rc;
    char *path = sq_path_join(dir, "config.json");
    rc = sq_file_write_atomic(path, cfg.data, cfg.len, e);
    free(path);
    sq_buf_free(&cfg);
    if (rc) return rc;

    path = sq_path_join(dir, "model.safetensors");
    rc = sq_tm_write_buffer(m, m->params, path, e);
    free(path);
    if (rc || !tokenizer_src) return rc;
    char *data;
    size_t len;
    if ((rc = sq_file_read_all(tokenizer_src, &data, &len, e))) return rc;
    path = sq_path_join(dir, "tokenizer.json");
    rc = strcmp(path, tokenizer_src) ? sq_file_write_atomic(path, data, len, e) : 0;
    free(path);
    free(data);
    return rc;
}

static int copy_tensor(float *dst, const sq_view *v, const sq_tm_tensor *t, const char *dir, sq_err *e) {
    int64_t want1 = t->ndim == 2 ? t->shape[1] : 1;
    int64_t got1 = v->ndim == 2 ? v->shape[1] : 1;
    if (v->ndim != t->ndim || v->shape[0] != t->shape[0] || got1 != want1)
        return sq_fail(e, SQ_EPARSE, "%s: tensor %s has shape [%lld, %lld], the config implies [%lld, %lld]", dir, t->name,
                       (long long)v->shape[0], (long long)got1, (long long)t->shape[0], (long long)want1);
    for (size_t i = 0; i < t->numel; i++) {
        switch (v->dtype) {
        case SQ_F32: dst[i] = ((const float *)v->data)[i]; break;
        case SQ_BF16: dst[i] = sq_bf16_to_f32(((const uint16_t *)v->data)[i]); break;
        case SQ_F16: dst[i] = sq_f16_to_f32(((const uint16_t *)v->data)[i]); break;
        default:
            return sq_fail(e, SQ_EUNSUP, "%s: tensor %s has dtype %s; training reads F32, BF16 or F16", dir, t->name,
                           sq_dtype_name(v->dtype));
        }
    }
    return 0;
}

int sq_tm_load_hf(sq_tmodel *m, const char *dir, int want_score, sq_err *e) {
    memset(m, 0, sizeof *m);
    char *path = sq_dir_exists(dir) ? sq_path_join(dir, "config.json") : NULL;
    if (!path) return sq_fail(e, SQ_ENOTFOUND, "%s: not a model folder", dir);
    char *text;
    size_t len;
    int rc = sq_file_read_all(path, &text, &len, e);
    sq_model_config cfg;
    if (!rc) rc = sq_model_config_from_json(&cfg, text, path, e);
    if (!rc && cfg.head_dim <= 0 && cfg.n_heads > 0) cfg.head_dim = cfg.dim / cfg.n_heads;
    free(path);
    if (rc) {
        free(text);
        return rc;
    }
    int has_score = want_score || cfg.seq_cls;
    free(text);
    sq_safetensors st;
    if ((rc = sq_st_open(&st, dir, e))) return rc;
    if ((rc = sq_tm_create(m, &cfg, has_score, e))) {
        sq_st_close(&st);
        return rc;
    }
    for (int i = 0; i < m->n_tensors && !rc; i++) {
        const sq_tm_tensor *t = &m->tensors[i];
        const sq_view *v = sq_st_find(&st, t->name);
        if (!v && !strcmp(t->name, "score.weight")) continue; /* a new head starts at zero */
        if (!v && has_score && !strcmp(t->name, "lm_head.weight")) continue; /* unused by a scorer */
        if (!v) rc = sq_fail(e, SQ_ENOTFOUND, "%s: the safetensors have no tensor %s", dir, t->name);
        else rc = copy_tensor(m->params + t->offset, v, t, dir, e);
    }
    sq_st_close(&st);
    if (rc) sq_tm_free(m);
    return rc;
}
