/* The training model's weights come from the engine's loader (model.h), the one reader of
 * model files: an HF folder (F32/BF16/F16 safetensors), a GGUF file (any type it reads,
 * quantized included) or a registry name (models.h). The loader opens and checks it; every
 * weight view is then widened row by row into the fp32 master weights. GGUF's llama layout
 * stores the q/k rows of each head interleaved for RoPE (pairs 2i, 2i+1); the trainer and HF
 * rotate halves (i, i + d/2), so those rows are put back in HF's order, and the saved folder
 * is a plain HF checkpoint. */
#include <stdlib.h>
#include <string.h>

#include "scalequest/kernels.h"
#include "scalequest/model.h"

/* Rows of v (a matrix or a vector) into dst as floats; with heads > 0, un-interleave each
 * head's rows: HF row h*hd + s*hd/2 + i is GGUF row h*hd + 2i + s. */
static int copy_view(float *dst, const sq_view *v, int64_t rows, int64_t cols, int heads, int hd, sq_err *e,
                     const char *name) {
    int64_t vr = v->ndim == 2 ? v->shape[0] : 1, vc = v->shape[v->ndim - 1];
    if (v->ndim == 1 && cols == 0) vr = 1, vc = v->shape[0], cols = v->shape[0], rows = 1;
    if (vr != rows || vc != (cols ? cols : 1))
        return sq_fail(e, SQ_EPARSE, "%s: shape [%lld, %lld], expected [%lld, %lld]", name, (long long)vr,
                       (long long)vc, (long long)rows, (long long)cols);
    sq_view m2 = *v;
    m2.ndim = 2;
    m2.shape[0] = vr;
    m2.shape[1] = vc;
    int vec = v->ndim == 1;
    float *tmp = vec && heads ? malloc((size_t)vc * 4) : NULL;
    if (vec && heads && !tmp) return sq_fail(e, SQ_ENOMEM, "out of memory");
    if (vec) { /* a bias: one row of values, reordered the same way when heads > 0 */
        sq_view one = m2;
        one.shape[0] = 1;
        sq_embed_row(heads ? tmp : dst, &one, 0);
        if (heads)
            for (int64_t j = 0; j < vc; j++) {
                int64_t h = j / hd, r = j % hd, s = r / (hd / 2), i = r % (hd / 2);
                dst[j] = tmp[h * hd + 2 * i + s];
            }
        free(tmp);
        return 0;
    }
    for (int64_t r = 0; r < rows; r++) {
        int64_t src = r;
        if (heads) {
            int64_t h = r / hd, q = r % hd, s = q / (hd / 2), i = q % (hd / 2);
            src = h * hd + 2 * i + s;
        }
        sq_embed_row(dst + r * cols, &m2, src);
    }
    return 0;
}

int sq_tm_load(sq_tmodel *m, const char *path, int want_score, sq_err *e) {
    memset(m, 0, sizeof *m);
    sq_model *g;
    int rc = sq_model_open_head(&g, path, SQ_HEAD_ANY, e);
    if (rc) return rc;
    int is_scorer = g->head == SQ_HEAD_SCORE;
    if ((rc = sq_tm_create(m, &g->cfg, want_score || is_scorer, e))) {
        sq_model_close(g);
        return rc;
    }
    const sq_model_config *c = &m->cfg;
    int C = c->dim, hd = c->head_dim, qd = c->n_heads * hd, kd = c->n_kv_heads * hd, F = c->ffn_dim;
    int il = g->rope.interleaved;
    rc = copy_view(m->w.embed, &g->tok_emb, c->vocab_size, C, 0, hd, e, "token embedding");
    if (!rc) rc = copy_view(m->w.norm, &g->out_norm, 1, 0, 0, hd, e, "final norm");
    /* A scorer folder has no LM head (an untied one starts at zero) and a new head starts at zero. */
    if (!rc && !c->tie_embeddings && !is_scorer)
        rc = copy_view(m->w.lm_head, &g->lm_head, c->vocab_size, C, 0, hd, e, "lm_head");
    if (!rc && is_scorer) rc = copy_view(m->w.score, &g->score, 1, C, 0, hd, e, "score.weight");
    for (int l = 0; l < c->n_layers && !rc; l++) {
        const sq_layer *s = &g->layers[l];
        sq_tm_layer_w *d = &m->w.layer[l];
        struct {
            float *dst;
            const sq_view *v;
            int64_t r, cc;
            int heads;
        } t[] = {
            {d->ln1, &s->attn_norm, 1, 0, 0},         {d->wq, &s->wq, qd, C, il ? c->n_heads : 0},
            {d->wk, &s->wk, kd, C, il ? c->n_kv_heads : 0}, {d->wv, &s->wv, kd, C, 0},
            {d->wo, &s->wo, C, qd, 0},                {d->ln2, &s->ffn_norm, 1, 0, 0},
            {d->wg, &s->w_gate, F, C, 0},             {d->wu, &s->w_up, F, C, 0},
            {d->wd, &s->w_down, C, F, 0},             {d->bq, &s->bq, 1, 0, il ? c->n_heads : 0},
            {d->bk, &s->bk, 1, 0, il ? c->n_kv_heads : 0}, {d->bv, &s->bv, 1, 0, 0},
        };
        for (size_t k = 0; k < SQ_ARRAY_LEN(t) && !rc; k++) {
            if (!t[k].dst || !t[k].v->data) continue; /* biases the model does not have */
            char nm[64];
            snprintf(nm, sizeof nm, "layer %d tensor %zu", l, k);
            rc = copy_view(t[k].dst, t[k].v, t[k].r, t[k].cc, t[k].heads, hd, e, nm);
        }
    }
    if (rc) {
        sq_err_wrap(e, "%s", path);
        sq_tm_free(m);
    }
    sq_model_close(g);
    return rc;
}
