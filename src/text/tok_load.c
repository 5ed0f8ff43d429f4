/* sq_tok_load: find out what kind of tokenizer a path holds, and the folder formats
 * (vocab.json + merges.txt as Qwen2 ships; encoder.json + vocab.bpe as GPT-2 and tiktoken
 * exports do), with tokenizer_config.json supplying special tokens and BOS/EOS. */
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "scalequest/models.h"

static int read_json(const char *path, cJSON **out, sq_err *e) {
    char *data;
    size_t len;
    int rc = sq_file_read_all(path, &data, &len, e);
    if (rc) return rc;
    *out = cJSON_ParseWithLength(data, len);
    if (!*out) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= data && at <= data + len ? (size_t)(at - data) : 0, line = 1;
        for (size_t i = 0; i < off; i++) line += data[i] == '\n';
        free(data);
        return sq_fail(e, SQ_EPARSE, "%s:%zu: JSON syntax error at byte %zu", path, line, off);
    }
    free(data);
    return 0;
}

static const char *token_name(const cJSON *v) {
    if (cJSON_IsString(v)) return v->valuestring;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(v, "content");
    return cJSON_IsString(c) ? c->valuestring : NULL;
}

/* tokenizer_config.json: added tokens (with their special flag), BOS/EOS/PAD, add_bos. */
static int apply_config(sq_tokenizer *t, const char *dir, int add_tokens, sq_err *e) {
    char *p = sq_path_join(dir, "tokenizer_config.json");
    if (!p) return sq_fail(e, SQ_ENOMEM, "out of memory");
    cJSON *cfg = NULL;
    int rc = 0;
    if (sq_file_exists(p)) rc = read_json(p, &cfg, e);
    free(p);
    if (rc || !cfg) return rc;
    if (add_tokens) {
        const cJSON *a;
        cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(cfg, "added_tokens_decoder")) {
            char *end;
            long id = strtol(a->string, &end, 10);
            const char *c = token_name(a);
            if (*end || id < 0 || id >= (1 << 24) || !c || !*c) {
                cJSON_Delete(cfg);
                return sq_fail(e, SQ_EPARSE, "%s/tokenizer_config.json: added_tokens_decoder[\"%.40s\"]: bad entry", dir,
                               a->string);
            }
            const cJSON *sp = cJSON_GetObjectItemCaseSensitive(a, "special");
            if (tok_add_added(t, (int32_t)id, c, strlen(c), !cJSON_IsFalse(sp))) {
                cJSON_Delete(cfg);
                return sq_fail(e, SQ_ENOMEM, "out of memory");
            }
            tok_added *x = &t->added[t->n_added - 1];
            x->lstrip = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "lstrip"));
            x->rstrip = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "rstrip"));
        }
        rc = tok_build_strmap(t, e);
    }
    const char *names[3] = {token_name(cJSON_GetObjectItemCaseSensitive(cfg, "bos_token")),
                            token_name(cJSON_GetObjectItemCaseSensitive(cfg, "eos_token")),
                            token_name(cJSON_GetObjectItemCaseSensitive(cfg, "pad_token"))};
    int32_t *dst[3] = {&t->bos, &t->eos, &t->pad};
    for (int i = 0; i < 3 && !rc; i++)
        if (names[i]) *dst[i] = tok_lookup(t, names[i], strlen(names[i]));
    if (cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(cfg, "bos_token"))) t->bos = -1, t->add_bos = 0;
    const cJSON *ab = cJSON_GetObjectItemCaseSensitive(cfg, "add_bos_token");
    if (cJSON_IsBool(ab)) t->add_bos = cJSON_IsTrue(ab);
    const cJSON *ae = cJSON_GetObjectItemCaseSensitive(cfg, "add_eos_token");
    if (cJSON_IsBool(ae)) t->add_eos = cJSON_IsTrue(ae);
    cJSON_Delete(cfg);
    return rc;
}

static int load_merges_txt(sq_tokenizer *t, const char *path, sq_err *e) {
    char *data;
    size_t len;
    int rc = sq_file_read_all(path, &data, &len, e);
    if (rc) return rc;
    size_t line = 0;
    int32_t rank = 0;
    for (char *s = data; s < data + len && !rc;) {
        char *nl = memchr(s, '\n', (size_t)(data + len - s));
        char *end = nl ? nl : data + len;
        line++;
        size_t n = (size_t)(end - s);
        if (n && s[n - 1] == '\r') n--;
        if (n && !(line == 1 && n >= 8 && !memcmp(s, "#version", 8))) {
            char *sp = memchr(s, ' ', n);
            if (!sp || sp == s || sp == s + n - 1 || memchr(sp + 1, ' ', (size_t)(s + n - sp - 1)))
                rc = sq_fail(e, SQ_EPARSE, "%s:%zu: expected \"left right\"", path, line);
            else
                rc = tok_add_merge(t, s, (size_t)(sp - s), sp + 1, (size_t)(s + n - sp - 1), rank++, path, e);
            if (rc && e && !strstr(e->msg, ":")) sq_err_wrap(e, "%s:%zu", path, line);
        }
        s = nl ? nl + 1 : data + len;
    }
    free(data);
    return rc;
}

/* Llama-3's special tokens sit right after its 128000 BPE pieces. */
static int add_llama3_specials(sq_tokenizer *t) {
    static const char *const named[] = {"<|begin_of_text|>", "<|end_of_text|>", NULL, NULL, NULL, NULL,
                                        "<|start_header_id|>", "<|end_header_id|>", NULL, "<|eot_id|>"};
    int reserved = 0;
    for (int i = 0; i < 256; i++) {
        char buf[64];
        const char *s = i < 10 ? named[i] : NULL;
        if (!s) {
            snprintf(buf, sizeof buf, "<|reserved_special_token_%d|>", reserved++);
            s = buf;
        }
        if (tok_add_added(t, 128000 + i, s, strlen(s), 1)) return SQ_ENOMEM;
    }
    t->bos = 128000, t->eos = 128001, t->add_bos = 1;
    return 0;
}

static int load_vocab_merges(sq_tokenizer **out, const char *dir, const char *vocab_name, const char *merges_name,
                             sq_err *e) {
    char *vp = sq_path_join(dir, vocab_name), *mp = sq_path_join(dir, merges_name);
    sq_tokenizer *t = tok_new();
    cJSON *vocab = NULL, *cfg = NULL;
    int rc = (!vp || !mp || !t) ? sq_fail(e, SQ_ENOMEM, "out of memory") : read_json(vp, &vocab, e);
    if (!rc && !cJSON_IsObject(vocab)) rc = sq_fail(e, SQ_EPARSE, "%s: expected a JSON object", vp);
    int n = 0;
    const cJSON *v;
    if (!rc) cJSON_ArrayForEach(v, vocab) {
            if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= (1 << 24) || !v->string[0]) {
                rc = sq_fail(e, SQ_EPARSE, "%s: entry \"%.60s\": expected an id in 0..16777215", vp, v->string);
                break;
            }
            if ((rc = tok_set_piece(t, (int32_t)v->valuedouble, v->string, strlen(v->string)))) {
                rc = sq_fail(e, rc, "%s: out of memory", vp);
                break;
            }
            n++;
        }
    cJSON_Delete(vocab);
    /* Which regex: the config's tokenizer class when there is one; a 128000-piece GPT-2-style
     * vocabulary is Llama-3's (the same recognition llama.cpp does by vocabulary hash). */
    const char *preset = "gpt2";
    char *cp = sq_path_join(dir, "tokenizer_config.json");
    if (!rc && cp && sq_file_exists(cp) && !(rc = read_json(cp, &cfg, e))) {
        const cJSON *cls = cJSON_GetObjectItemCaseSensitive(cfg, "tokenizer_class");
        if (cJSON_IsString(cls) && !strncmp(cls->valuestring, "Qwen2", 5)) preset = "qwen2";
    }
    cJSON_Delete(cfg);
    free(cp);
    int llama3 = n == 128000 && !strcmp(vocab_name, "encoder.json");
    if (llama3) preset = "llama3";
    if (!rc) rc = tok_preset(t, preset, e);
    if (!rc) rc = tok_build_strmap(t, e);
    if (!rc) rc = load_merges_txt(t, mp, e);
    if (!rc && llama3 && (rc = add_llama3_specials(t))) rc = sq_fail(e, rc, "out of memory");
    if (!rc) rc = apply_config(t, dir, 1, e);
    if (!rc) {
        /* added_tokens.json when the config did not list them */
        char *ap = sq_path_join(dir, "added_tokens.json");
        cJSON *at = NULL;
        if (ap && sq_file_exists(ap) && !(rc = read_json(ap, &at, e))) {
            cJSON_ArrayForEach(v, at) {
                if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= (1 << 24) || !v->string[0]) {
                    rc = sq_fail(e, SQ_EPARSE, "%s: entry \"%.60s\": expected an id", ap, v->string);
                    break;
                }
                int32_t id = (int32_t)v->valuedouble, have = 0;
                for (int i = 0; i < t->n_added; i++) have |= t->added[i].id == id;
                if (!have && (rc = tok_add_added(t, id, v->string, strlen(v->string), 1))) break;
            }
        }
        cJSON_Delete(at);
        free(ap);
    }
    if (!rc) rc = tok_finish(t, vp, e);
    free(vp);
    free(mp);
    if (rc) {
        sq_tok_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

static int load_json_file(sq_tokenizer **t, const char *path, sq_err *e) {
    char *data;
    size_t len;
    int rc = sq_file_read_all(path, &data, &len, e);
    if (rc) return rc;
    rc = sq_tok_load_json(t, data, len, path, e);
    free(data);
    return rc;
}

int sq_tok_load(sq_tokenizer **t, const char *path, sq_err *e) {
    { /* a registry name (models.h) stands for its installed file */
        char *resolved = NULL;
        int rr = sq_models_resolve(path, &resolved, e);
        if (rr < 0) return rr;
        if (rr == 1) {
            rr = sq_tok_load(t, resolved, e);
            free(resolved);
            return rr;
        }
    }
    *t = NULL;
    if (e) sq_err_clear(e);
    if (sq_dir_exists(path)) {
        char *p = sq_path_join(path, "tokenizer.json");
        if (!p) return sq_fail(e, SQ_ENOMEM, "out of memory");
        if (sq_file_exists(p)) {
            int rc = load_json_file(t, p, e);
            free(p);
            if (!rc) rc = apply_config(*t, path, 0, e);
            if (!rc && tok_build_eog(*t)) rc = sq_fail(e, SQ_ENOMEM, "out of memory");
            if (rc) {
                sq_tok_free(*t);
                *t = NULL;
            }
            return rc;
        }
        free(p);
        const char *pairs[2][2] = {{"vocab.json", "merges.txt"}, {"encoder.json", "vocab.bpe"}};
        for (int i = 0; i < 2; i++) {
            char *a = sq_path_join(path, pairs[i][0]), *b = sq_path_join(path, pairs[i][1]);
            int ok = a && b && sq_file_exists(a) && sq_file_exists(b);
            free(a);
            free(b);
            if (ok) return load_vocab_merges(t, path, pairs[i][0], pairs[i][1], e);
        }
        return sq_fail(e, SQ_ENOTFOUND,
                       "%s: no tokenizer.json, vocab.json + merges.txt or encoder.json + vocab.bpe in this folder", path);
    }
    FILE *f = fopen(path, "rb");
    if (!f) return sq_fail(e, SQ_EIO, "%s: cannot open", path);
    char magic[4] = {0};
    size_t got = fread(magic, 1, 4, f);
    fclose(f);
    if (got == 4 && !memcmp(magic, "GGUF", 4)) return tok_load_gguf_path(t, path, e);
    return load_json_file(t, path, e);
}
