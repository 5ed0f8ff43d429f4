/* model_config — HF config.json <-> sq_model_config, with transformers' defaults.
 *
 * Absent fields take the value transformers' config class for that model_type would give,
 * so a minimal config.json reads the same here as in AutoConfig. Both the transformers 4
 * spelling (rope_theta + rope_scaling, torch_dtype) and the transformers 5 one
 * (rope_parameters, dtype) are read; the writer uses the 4 spelling, which 5 still reads.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/gguf.h"
#include "scalequest/model_config.h"

typedef struct arch_defaults {
    const char *model_type, *arch, *class_name;
    int max_pos;
    int sliding_window;
} arch_defaults;

static const arch_defaults archs[] = {
    {"llama", "llama", "LlamaForCausalLM", 2048, 0},
    {"mistral", "mistral", "MistralForCausalLM", 131072, 4096},
    {"qwen2", "qwen2", "Qwen2ForCausalLM", 32768, 0},
};

typedef struct jctx {
    const cJSON *root;
    const char *path;
    sq_err *e;
} jctx;

static const cJSON *item(const jctx *j, const cJSON *obj, const char *key) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj ? obj : j->root, key);
    return cJSON_IsNull(it) ? NULL : it;
}

/* An integer field; absent or null keeps *out (the default) unless required. */
static int get_int(const jctx *j, const cJSON *obj, const char *key, int required, int *out) {
    const cJSON *it = item(j, obj, key);
    if (!it)
        return required ? sq_fail(j->e, SQ_EPARSE, "%s: required field \"%s\" is missing", j->path, key) : 0;
    if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble) ||
        fabs(it->valuedouble) > 2147483647.0)
        return sq_fail(j->e, SQ_EPARSE, "%s: \"%s\" must be an integer", j->path, key);
    *out = (int)it->valuedouble;
    return 0;
}

static int get_float(const jctx *j, const cJSON *obj, const char *key, float *out) {
    const cJSON *it = item(j, obj, key);
    if (!it) return 0;
    if (!cJSON_IsNumber(it)) return sq_fail(j->e, SQ_EPARSE, "%s: \"%s\" must be a number", j->path, key);
    *out = (float)it->valuedouble;
    return 0;
}

static int get_bool(const jctx *j, const cJSON *obj, const char *key, int *out) {
    const cJSON *it = item(j, obj, key);
    if (!it) return 0;
    if (!cJSON_IsBool(it)) return sq_fail(j->e, SQ_EPARSE, "%s: \"%s\" must be true or false", j->path, key);
    *out = cJSON_IsTrue(it);
    return 0;
}

static int parse_rope(const jctx *j, const cJSON *rs, sq_model_config *c) {
    if (!rs) return 0;
    if (!cJSON_IsObject(rs))
        return sq_fail(j->e, SQ_EPARSE, "%s: rope scaling must be an object or null", j->path);
    int rc = get_float(j, rs, "rope_theta", &c->rope_theta);
    if (rc) return rc;
    const cJSON *t = item(j, rs, "rope_type");
    if (!t) t = item(j, rs, "type");
    const char *ty = cJSON_IsString(t) ? t->valuestring : "default";
    if (!strcmp(ty, "default"))
        c->rope_scaling = SQ_ROPE_NONE;
    else if (!strcmp(ty, "linear"))
        c->rope_scaling = SQ_ROPE_LINEAR;
    else if (!strcmp(ty, "dynamic"))
        c->rope_scaling = SQ_ROPE_DYNAMIC;
    else if (!strcmp(ty, "llama3"))
        c->rope_scaling = SQ_ROPE_LLAMA3;
    else if (!strcmp(ty, "yarn"))
        c->rope_scaling = SQ_ROPE_YARN;
    else
        return sq_fail(j->e, SQ_EUNSUP, "%s: rope scaling type \"%.40s\" is not supported", j->path, ty);
    /* Only the fields the chosen scaling uses, so that what we keep is what we write. */
    c->rope_factor = 1.0f;
    c->rope_low_freq_factor = c->rope_high_freq_factor = 0;
    c->rope_original_max_pos = 0;
    if (c->rope_scaling == SQ_ROPE_NONE) return 0;
    if ((rc = get_float(j, rs, "factor", &c->rope_factor)) ||
        (rc = get_int(j, rs, "original_max_position_embeddings", 0, &c->rope_original_max_pos)))
        return rc;
    if (c->rope_scaling == SQ_ROPE_LLAMA3 &&
        ((rc = get_float(j, rs, "low_freq_factor", &c->rope_low_freq_factor)) ||
         (rc = get_float(j, rs, "high_freq_factor", &c->rope_high_freq_factor))))
        return rc;
    return 0;
}

static int is_token_id(const cJSON *x) {
    return cJSON_IsNumber(x) && x->valuedouble >= 0 && x->valuedouble <= 2147483647.0 &&
           x->valuedouble == floor(x->valuedouble);
}

static int parse_token_ids(const jctx *j, const char *key, int *first, int *list, int *n) {
    const cJSON *it = item(j, NULL, key);
    if (!it) return 0;
    if (cJSON_IsNumber(it)) {
        if (!is_token_id(it)) return sq_fail(j->e, SQ_EPARSE, "%s: \"%s\" is not a token id", j->path, key);
        *first = (int)it->valuedouble;
        if (list) {
            list[0] = *first;
            *n = 1;
        }
        return 0;
    }
    if (cJSON_IsArray(it) && list) {
        *n = 0;
        for (const cJSON *x = it->child; x; x = x->next) {
            if (!is_token_id(x))
                return sq_fail(j->e, SQ_EPARSE, "%s: \"%s\" must hold token ids", j->path, key);
            if (*n < 8) list[(*n)++] = (int)x->valuedouble;
        }
        if (*n) *first = list[0];
        return 0;
    }
    return sq_fail(j->e, SQ_EPARSE, "%s: \"%s\" must be an integer%s", j->path, key,
                   list ? " or a list" : "");
}

static void set_defaults(sq_model_config *c) {
    memset(c, 0, sizeof *c);
    c->rope_theta = 10000.0f;
    c->norm_eps = 1e-6f;
    c->rope_factor = 1.0f;
    c->bos_id = c->eos_id = c->pad_id = -1;
}

int sq_model_config_from_json(sq_model_config *c, const char *json, const char *path, sq_err *e) {
    set_defaults(c);
    if (!path) path = "config.json";
    cJSON *root = cJSON_Parse(json);
    if (!cJSON_IsObject(root)) {
        const char *ep = cJSON_GetErrorPtr();
        long at = root || !ep ? 0 : (long)(ep - json);
        cJSON_Delete(root);
        return sq_fail(e, SQ_EPARSE, "%s: offset %ld: not a JSON object", path, at);
    }
    jctx j = {root, path, e};
    int rc = 0;
    const arch_defaults *ad = NULL;
    const cJSON *mt = item(&j, NULL, "model_type");
    const cJSON *ar = item(&j, NULL, "architectures");
    const char *cls = cJSON_IsArray(ar) && cJSON_IsString(ar->child) ? ar->child->valuestring : "";
    size_t cls_len = strlen(cls);
    const char *seq_cls = "ForSequenceClassification";
    c->seq_cls = cls_len > strlen(seq_cls) && !strcmp(cls + cls_len - strlen(seq_cls), seq_cls);
    for (size_t i = 0; i < SQ_ARRAY_LEN(archs) && !ad; i++) {
        if (cJSON_IsString(mt) && !strcmp(mt->valuestring, archs[i].model_type)) ad = &archs[i];
        /* "LlamaForCausalLM" or "LlamaForSequenceClassification": the part before "For" */
        size_t stem = strcspn(archs[i].class_name, "F");
        if (!mt && !strncmp(cls, archs[i].class_name, stem) && !strncmp(cls + stem, "For", 3)) ad = &archs[i];
    }
    if (!ad) {
        rc = sq_fail(e, SQ_EUNSUP, "%s: model_type \"%.40s\" is not supported (llama, mistral, qwen2)", path,
                     cJSON_IsString(mt) ? mt->valuestring : "(none)");
        goto out;
    }
    snprintf(c->arch, sizeof c->arch, "%s", ad->arch);
    c->max_seq_len = ad->max_pos;
    c->sliding_window = ad->sliding_window;
    c->attn_bias = !strcmp(ad->arch, "qwen2"); /* Qwen2's q/k/v projections always have bias */
    if ((rc = get_int(&j, NULL, "vocab_size", 1, &c->vocab_size)) ||
        (rc = get_int(&j, NULL, "hidden_size", 1, &c->dim)) ||
        (rc = get_int(&j, NULL, "num_hidden_layers", 1, &c->n_layers)) ||
        (rc = get_int(&j, NULL, "num_attention_heads", 1, &c->n_heads)) ||
        (rc = get_int(&j, NULL, "intermediate_size", 1, &c->ffn_dim)))
        goto out;
    c->n_kv_heads = c->n_heads;
    c->head_dim = c->n_heads > 0 ? c->dim / c->n_heads : 0;
    if ((rc = get_int(&j, NULL, "num_key_value_heads", 0, &c->n_kv_heads)) ||
        (rc = get_int(&j, NULL, "head_dim", 0, &c->head_dim)) ||
        (rc = get_int(&j, NULL, "max_position_embeddings", 0, &c->max_seq_len)) ||
        (rc = get_float(&j, NULL, "rope_theta", &c->rope_theta)) ||
        (rc = get_float(&j, NULL, "rms_norm_eps", &c->norm_eps)) ||
        (rc = get_bool(&j, NULL, "tie_word_embeddings", &c->tie_embeddings)))
        goto out;
    /* Only LlamaConfig has attention_bias; Mistral has no bias and Qwen2 always has it. */
    if (!strcmp(ad->arch, "llama") && (rc = get_bool(&j, NULL, "attention_bias", &c->attn_bias))) goto out;
    /* transformers 5 folds rope_theta and the scaling into rope_parameters. */
    const cJSON *rp = item(&j, NULL, "rope_parameters");
    if ((rc = parse_rope(&j, item(&j, NULL, "rope_scaling"), c)) || (rc = parse_rope(&j, rp, c))) goto out;
    if (!strcmp(ad->arch, "mistral")) {
        /* Absent: the class default (4096); null: no window. */
        if (cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(root, "sliding_window"))) c->sliding_window = 0;
        if ((rc = get_int(&j, NULL, "sliding_window", 0, &c->sliding_window))) goto out;
    } else if (!strcmp(ad->arch, "qwen2")) {
        /* Qwen2 carries a sliding_window value but only applies it with use_sliding_window. */
        int use = 0;
        if ((rc = get_bool(&j, NULL, "use_sliding_window", &use))) goto out;
        if (use && (rc = get_int(&j, NULL, "sliding_window", 0, &c->sliding_window))) goto out;
    }
    if ((rc = parse_token_ids(&j, "bos_token_id", &c->bos_id, NULL, NULL)) ||
        (rc = parse_token_ids(&j, "eos_token_id", &c->eos_id, c->eos_ids, &c->n_eos)) ||
        (rc = parse_token_ids(&j, "pad_token_id", &c->pad_id, NULL, NULL)))
        goto out;
    const cJSON *dt = item(&j, NULL, "torch_dtype");
    if (!dt) dt = item(&j, NULL, "dtype");
    if (dt && (!cJSON_IsString(dt) || strlen(dt->valuestring) >= sizeof c->torch_dtype ||
               strspn(dt->valuestring, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(dt->valuestring))) {
        rc = sq_fail(e, SQ_EPARSE, "%s: \"torch_dtype\" must be a dtype name such as \"bfloat16\"", path);
        goto out;
    }
    snprintf(c->torch_dtype, sizeof c->torch_dtype, "%s", dt ? dt->valuestring : "");
    rc = sq_model_config_validate(c, e);
    if (rc) sq_err_wrap(e, "%s", path);
out:
    cJSON_Delete(root);
    return rc;
}

int sq_model_config_validate(const sq_model_config *c, sq_err *e) {
    if (c->vocab_size <= 0 || c->dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->ffn_dim <= 0)
        return sq_fail(e, SQ_EINVAL,
                       "vocab_size, hidden_size, num_hidden_layers, num_attention_heads and "
                       "intermediate_size must all be positive");
    if (c->n_kv_heads <= 0 || c->n_heads % c->n_kv_heads)
        return sq_fail(e, SQ_EINVAL, "num_key_value_heads (%d) must divide num_attention_heads (%d)",
                       c->n_kv_heads, c->n_heads);
    if (c->head_dim <= 0 || c->head_dim % 2)
        return sq_fail(e, SQ_EINVAL, "head_dim (%d) must be positive and even (RoPE rotates pairs)",
                       c->head_dim);
    if (c->max_seq_len <= 0) return sq_fail(e, SQ_EINVAL, "max_position_embeddings must be positive");
    if (!(c->rope_theta > 0) || !isfinite(c->rope_theta))
        return sq_fail(e, SQ_EINVAL, "rope_theta must be positive");
    if (!(c->norm_eps > 0) || !isfinite(c->norm_eps))
        return sq_fail(e, SQ_EINVAL, "rms_norm_eps must be positive");
    if (c->sliding_window < 0) return sq_fail(e, SQ_EINVAL, "sliding_window must not be negative");
    if (c->rope_scaling != SQ_ROPE_NONE && (!(c->rope_factor > 0) || !isfinite(c->rope_factor)))
        return sq_fail(e, SQ_EINVAL, "rope scaling factor must be positive");
    if (c->rope_original_max_pos < 0 || !isfinite(c->rope_high_freq_factor) ||
        !isfinite(c->rope_low_freq_factor))
        return sq_fail(e, SQ_EINVAL, "rope scaling parameters out of range");
    if (c->bos_id < -1 || c->eos_id < -1 || c->pad_id < -1) return sq_fail(e, SQ_EINVAL, "token ids must not be negative");
    if (c->rope_scaling == SQ_ROPE_LLAMA3 &&
        (c->rope_original_max_pos <= 0 || !(c->rope_low_freq_factor > 0) ||
         !(c->rope_high_freq_factor > c->rope_low_freq_factor)))
        return sq_fail(e, SQ_EINVAL,
                       "llama3 rope scaling needs original_max_position_embeddings and "
                       "high_freq_factor > low_freq_factor > 0");
    return 0;
}

/* The shortest decimal that reads back as the same float, always with a '.' or exponent
 * so Python sees a float. */
static void put_float(sq_buf *b, const char *key, float f) {
    char s[40];
    for (int p = 6; p <= 9; p++) {
        snprintf(s, sizeof s, "%.*g", p, (double)f);
        if (strtof(s, NULL) == f) break;
    }
    if (!strpbrk(s, ".en")) strcat(s, ".0");
    sq_buf_printf(b, "  \"%s\": %s,\n", key, s);
}

int sq_model_config_to_json(const sq_model_config *c, sq_buf *out) {
    const arch_defaults *ad = &archs[0]; /* deepseek and unknown llama-shaped: llama */
    for (size_t i = 0; i < SQ_ARRAY_LEN(archs); i++)
        if (!strcmp(c->arch, archs[i].arch)) ad = &archs[i];
    int qwen = !strcmp(ad->arch, "qwen2"), llama = !strcmp(ad->arch, "llama");
    /* Bias on q/k/v is fixed by the class outside Llama: refuse a config that cannot say it. */
    if ((qwen && !c->attn_bias) || (!qwen && !llama && c->attn_bias)) return SQ_EUNSUP;
    if (c->sliding_window && llama) return SQ_EUNSUP;
    if (c->seq_cls) {
        /* "LlamaForCausalLM" -> "LlamaForSequenceClassification", one label (a reward) */
        int stem = (int)strcspn(ad->class_name, "F");
        sq_buf_printf(out, "{\n  \"architectures\": [\"%.*sForSequenceClassification\"],\n", stem, ad->class_name);
        sq_buf_puts(out, "  \"id2label\": {\"0\": \"LABEL_0\"},\n  \"label2id\": {\"LABEL_0\": 0},\n");
    } else {
        sq_buf_printf(out, "{\n  \"architectures\": [\"%s\"],\n", ad->class_name);
    }
    if (llama) sq_buf_printf(out, "  \"attention_bias\": %s,\n", c->attn_bias ? "true" : "false");
    if (c->bos_id >= 0)
        sq_buf_printf(out, "  \"bos_token_id\": %d,\n", c->bos_id);
    else
        sq_buf_puts(out, "  \"bos_token_id\": null,\n");
    if (c->n_eos > 1) {
        sq_buf_puts(out, "  \"eos_token_id\": [");
        for (int i = 0; i < c->n_eos && i < 8; i++)
            sq_buf_printf(out, "%s%d", i ? ", " : "", c->eos_ids[i]);
        sq_buf_puts(out, "],\n");
    } else if (c->eos_id >= 0)
        sq_buf_printf(out, "  \"eos_token_id\": %d,\n", c->eos_id);
    else
        sq_buf_puts(out, "  \"eos_token_id\": null,\n");
    /* Qwen2's class has no head_dim field: write it only when it is not the default. */
    if (c->pad_id >= 0) sq_buf_printf(out, "  \"pad_token_id\": %d,\n", c->pad_id);
    if (!qwen || c->head_dim != c->dim / c->n_heads) sq_buf_printf(out, "  \"head_dim\": %d,\n", c->head_dim);
    sq_buf_printf(out, "  \"hidden_act\": \"silu\",\n  \"hidden_size\": %d,\n", c->dim);
    sq_buf_printf(out, "  \"intermediate_size\": %d,\n  \"max_position_embeddings\": %d,\n", c->ffn_dim,
                  c->max_seq_len);
    sq_buf_printf(out, "  \"model_type\": \"%s\",\n  \"num_attention_heads\": %d,\n", ad->model_type,
                  c->n_heads);
    sq_buf_printf(out, "  \"num_hidden_layers\": %d,\n  \"num_key_value_heads\": %d,\n", c->n_layers,
                  c->n_kv_heads);
    put_float(out, "rms_norm_eps", c->norm_eps);
    static const char *rope_names[] = {"default", "linear", "dynamic", "llama3", "yarn"};
    if (c->rope_scaling == SQ_ROPE_NONE || c->rope_scaling > SQ_ROPE_YARN)
        sq_buf_puts(out, "  \"rope_scaling\": null,\n");
    else {
        sq_buf_printf(out, "  \"rope_scaling\": {\n    \"rope_type\": \"%s\",\n",
                      rope_names[c->rope_scaling]);
        if (c->rope_scaling == SQ_ROPE_LLAMA3) {
            sq_buf_printf(out, "    \"high_freq_factor\": %.9g,\n    \"low_freq_factor\": %.9g,\n",
                          (double)c->rope_high_freq_factor, (double)c->rope_low_freq_factor);
        }
        if (c->rope_original_max_pos > 0)
            sq_buf_printf(out, "    \"original_max_position_embeddings\": %d,\n", c->rope_original_max_pos);
        sq_buf_printf(out, "    \"factor\": %.9g\n  },\n", (double)c->rope_factor);
    }
    put_float(out, "rope_theta", c->rope_theta);
    /* 0 means "no window", which transformers spells null. */
    if (!llama && c->sliding_window) sq_buf_printf(out, "  \"sliding_window\": %d,\n", c->sliding_window);
    if (!llama && !c->sliding_window) sq_buf_puts(out, "  \"sliding_window\": null,\n");
    if (qwen) sq_buf_printf(out, "  \"use_sliding_window\": %s,\n", c->sliding_window ? "true" : "false");
    sq_buf_printf(out, "  \"tie_word_embeddings\": %s,\n", c->tie_embeddings ? "true" : "false");
    if (c->torch_dtype[0]) sq_buf_printf(out, "  \"torch_dtype\": \"%s\",\n", c->torch_dtype);
    if (sq_buf_printf(out, "  \"vocab_size\": %d\n}\n", c->vocab_size)) return SQ_ENOMEM;
    return 0;
}

int sq_model_config_save(const sq_model_config *c, const char *path, sq_err *e) {
    int rc = sq_model_config_validate(c, e);
    if (rc) return rc;
    sq_buf b = {0};
    rc = sq_model_config_to_json(c, &b);
    if (rc == SQ_EUNSUP)
        rc = sq_fail(
            e, rc,
            "%s: a %s config with q/k/v bias %d and sliding window %d cannot be written as config.json", path,
            c->arch, c->attn_bias, c->sliding_window);
    else if (rc)
        rc = sq_fail(e, rc, "%s: out of memory", path);
    char *file = NULL;
    if (!rc) {
        file = sq_dir_exists(path) ? sq_path_join(path, "config.json") : sq_strdup(path);
        rc = file ? sq_file_write_atomic(file, b.data, b.len, e) : sq_fail(e, SQ_ENOMEM, "out of memory");
    }
    free(file);
    sq_buf_free(&b);
    return rc;
}

int sq_model_config_load(sq_model_config *c, const char *path, sq_err *e) {
    size_t l = strlen(path);
    if (l >= 5 && !strcmp(path + l - 5, ".gguf")) {
        sq_gguf g;
        int rc = sq_gguf_open(&g, path, e);
        if (rc) return rc;
        rc = sq_model_config_from_gguf(c, &g, e);
        sq_gguf_close(&g);
        return rc;
    }
    char *file = sq_dir_exists(path) ? sq_path_join(path, "config.json") : sq_strdup(path);
    if (!file) return sq_fail(e, SQ_ENOMEM, "out of memory");
    char *text = NULL;
    size_t len;
    int rc = sq_file_read_all(file, &text, &len, e);
    if (!rc) rc = sq_model_config_from_json(c, text, file, e);
    free(text);
    free(file);
    return rc;
}
