/* Finding the weight that holds NaN or Inf, once the engine has seen non-finite logits: the
 * scan reads every weight once, so it runs only to explain a failure, never at load. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "scalequest/model.h"

static int view_nonfinite(const sq_view *v) {
    if (!v->data) return 0;
    int64_t n = sq_view_numel(v);
    if (v->dtype == SQ_F32) {
        const float *p = v->data;
        for (int64_t i = 0; i < n; i++)
            if (!isfinite(p[i])) return 1;
    } else if (v->dtype == SQ_F16) {
        const uint16_t *p = v->data; /* exponent all ones: Inf or NaN */
        for (int64_t i = 0; i < n; i++)
            if ((p[i] & 0x7c00) == 0x7c00) return 1;
    } else if (v->dtype == SQ_BF16) {
        const uint16_t *p = v->data;
        for (int64_t i = 0; i < n; i++)
            if ((p[i] & 0x7f80) == 0x7f80) return 1;
    }
    return 0; /* quantized blocks are checked by whoever decodes them */
}

/* Named as the file names them (GGUF or HF), so the message points into the file. */
int sq_model_find_nonfinite(const sq_model *m, char *name, size_t cap) {
    int g = m->from_gguf;
    const struct {
        const char *gg, *hf;
        const sq_view *v;
    } top[] = {{"token_embd.weight", "model.embed_tokens.weight", &m->tok_emb},
               {"output_norm.weight", "model.norm.weight", &m->out_norm},
               {"output.weight", "lm_head.weight", &m->lm_head},
               {"score.weight", "score.weight", &m->score}};
    for (size_t i = 0; i < sizeof top / sizeof *top; i++)
        if (view_nonfinite(top[i].v)) {
            snprintf(name, cap, "%s", g ? top[i].gg : top[i].hf);
            return 1;
        }
    for (int l = 0; l < m->cfg.n_layers && m->layers; l++) {
        const sq_layer *L = &m->layers[l];
        const struct {
            const char *gg, *hf;
            const sq_view *v;
        } w[] = {{"attn_norm.weight", "input_layernorm.weight", &L->attn_norm},
                 {"ffn_norm.weight", "post_attention_layernorm.weight", &L->ffn_norm},
                 {"attn_q.weight", "self_attn.q_proj.weight", &L->wq},
                 {"attn_k.weight", "self_attn.k_proj.weight", &L->wk},
                 {"attn_v.weight", "self_attn.v_proj.weight", &L->wv},
                 {"attn_output.weight", "self_attn.o_proj.weight", &L->wo},
                 {"attn_q.bias", "self_attn.q_proj.bias", &L->bq},
                 {"attn_k.bias", "self_attn.k_proj.bias", &L->bk},
                 {"attn_v.bias", "self_attn.v_proj.bias", &L->bv},
                 {"ffn_gate.weight", "mlp.gate_proj.weight", &L->w_gate},
                 {"ffn_up.weight", "mlp.up_proj.weight", &L->w_up},
                 {"ffn_down.weight", "mlp.down_proj.weight", &L->w_down}};
        for (size_t i = 0; i < sizeof w / sizeof *w; i++)
            if (view_nonfinite(w[i].v)) {
                if (g) snprintf(name, cap, "blk.%d.%s", l, w[i].gg);
                else snprintf(name, cap, "model.layers.%d.%s", l, w[i].hf);
                return 1;
            }
    }
    return 0;
}
