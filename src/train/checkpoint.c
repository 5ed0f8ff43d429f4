/* HF folders out of the training model: config.json + model.safetensors, so that
 * transformers' from_pretrained and our own loader (model.h, which load.c reads them back
 * through) read what we trained. */
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
