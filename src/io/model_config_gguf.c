/* model_config_gguf — sq_model_config from GGUF metadata (llama.cpp's key names).
 *
 * Keys live under the architecture's prefix ("llama.block_count"); Mistral and DeepSeek-LLM
 * GGUFs use the "llama" architecture. What GGUF does not record directly is inferred from
 * the tensor table: tied embeddings (no output.weight), q/k/v bias (blk.0.attn_q.bias).
 */
#include <stdio.h>
#include <string.h>

#include "scalequest/gguf.h"
#include "scalequest/model_config.h"

static int get_int_key(const sq_gguf *g, const char *arch, const char *suffix, int required, int *out,
                       sq_err *e) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int64_t v;
    int rc = sq_gguf_get_i64(g, key, &v, e);
    if (rc == SQ_ENOTFOUND && !required) return 0;
    if (rc) return rc;
    if (v < 0 || v > 0x7fffffff)
        return sq_fail(e, SQ_ERANGE, "%s: metadata '%s' = %lld is out of range", g->path, key, (long long)v);
    *out = (int)v;
    return 0;
}

static int get_float_key(const sq_gguf *g, const char *arch, const char *suffix, float *out, sq_err *e) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int rc = sq_gguf_get_f32(g, key, out, e);
    return rc == SQ_ENOTFOUND ? 0 : rc;
}

int sq_model_config_from_gguf(sq_model_config *c, const sq_gguf *g, sq_err *e) {
    memset(c, 0, sizeof *c);
    c->rope_theta = 10000.0f;
    c->norm_eps = 1e-5f;
    c->rope_factor = 1.0f;
    c->bos_id = c->eos_id = c->pad_id = -1;
    sq_gguf_str a;
    int rc = sq_gguf_get_str(g, "general.architecture", &a, e);
    if (rc) return rc;
    if (!sq_gguf_str_eq(a, "llama") && !sq_gguf_str_eq(a, "qwen2"))
        return sq_fail(e, SQ_EUNSUP, "%s: GGUF architecture '%.*s' is not supported (llama, qwen2)", g->path,
                       (int)SQ_MIN(a.len, 40), a.ptr);
    snprintf(c->arch, sizeof c->arch, "%.*s", (int)a.len, a.ptr);
    const char *arch = c->arch;
    c->max_seq_len = 2048;
    if ((rc = get_int_key(g, arch, "embedding_length", 1, &c->dim, e)) ||
        (rc = get_int_key(g, arch, "block_count", 1, &c->n_layers, e)) ||
        (rc = get_int_key(g, arch, "feed_forward_length", 1, &c->ffn_dim, e)) ||
        (rc = get_int_key(g, arch, "attention.head_count", 1, &c->n_heads, e)) ||
        (rc = get_int_key(g, arch, "context_length", 0, &c->max_seq_len, e)))
        return rc;
    c->n_kv_heads = c->n_heads;
    c->head_dim = c->n_heads ? c->dim / c->n_heads : 0;
    if ((rc = get_int_key(g, arch, "attention.head_count_kv", 0, &c->n_kv_heads, e)) ||
        (rc = get_int_key(g, arch, "attention.key_length", 0, &c->head_dim, e)) ||
        (rc = get_float_key(g, arch, "attention.layer_norm_rms_epsilon", &c->norm_eps, e)) ||
        (rc = get_float_key(g, arch, "rope.freq_base", &c->rope_theta, e)) ||
        (rc = get_int_key(g, arch, "attention.sliding_window", 0, &c->sliding_window, e)) ||
        (rc = get_int_key(g, arch, "vocab_size", 0, &c->vocab_size, e)))
        return rc;
    if (!c->vocab_size) {
        const sq_gguf_kv *toks = sq_gguf_find(g, "tokenizer.ggml.tokens");
        if (toks && toks->type == SQ_GGUF_ARRAY && toks->n <= 0x7fffffff) c->vocab_size = (int)toks->n;
    }
    if (!c->vocab_size) {
        /* Last resort: the embedding's row count. */
        const sq_gguf_tensor *t = sq_gguf_find_tensor(g, "token_embd.weight");
        if (t && t->n_dims == 2 && t->ne[1] <= 0x7fffffff) c->vocab_size = (int)t->ne[1];
    }
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    sq_gguf_str st;
    if (sq_gguf_get_str(g, key, &st, NULL) == 0) {
        if (sq_gguf_str_eq(st, "linear"))
            c->rope_scaling = SQ_ROPE_LINEAR;
        else if (sq_gguf_str_eq(st, "yarn"))
            c->rope_scaling = SQ_ROPE_YARN;
        else if (!sq_gguf_str_eq(st, "none"))
            return sq_fail(e, SQ_EUNSUP, "%s: rope scaling '%.*s' is not supported", g->path,
                           (int)SQ_MIN(st.len, 40), st.ptr);
        if ((rc = get_float_key(g, arch, "rope.scaling.factor", &c->rope_factor, e)) ||
            (rc = get_int_key(g, arch, "rope.scaling.original_context_length", 0, &c->rope_original_max_pos,
                              e)))
            return rc;
    }
    uint32_t id;
    if (sq_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &id, NULL) == 0) c->bos_id = (int)id;
    if (sq_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &id, NULL) == 0) {
        c->eos_id = (int)id;
        c->eos_ids[0] = c->eos_id;
        c->n_eos = 1;
    }
    c->tie_embeddings = g->n_tensors > 0 && !sq_gguf_find_tensor(g, "output.weight");
    c->attn_bias = !strcmp(arch, "qwen2") || sq_gguf_find_tensor(g, "blk.0.attn_q.bias") != NULL;
    const sq_gguf_tensor *emb = sq_gguf_find_tensor(g, "token_embd.weight");
    const char *dt = "float32";
    if (emb && emb->ggml_type == 1) dt = "float16";
    if (emb && emb->ggml_type == 30) dt = "bfloat16";
    snprintf(c->torch_dtype, sizeof c->torch_dtype, "%s", dt);
    rc = sq_model_config_validate(c, e);
    if (rc) sq_err_wrap(e, "%s", g->path);
    return rc;
}
