/* Recognising a chat template's family from its Jinja source, and loading templates from
 * tokenizer_config.json, template files and model folders.
 *
 * Recognition compares a normalised source (whitespace and Jinja's "-" trim markers
 * removed, message['x'] written message.x) against the expressions that define each
 * family's turns. Variants that render differently for the same messages (Llama-3.1's date
 * header, Qwen3's thinking blocks, DeepSeek-V2's "<｜User｜>", Mistral's later system
 * handling) do not match and are reported as unsupported rather than rendered wrongly. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "chat_template_internal.h"
#include "scalequest/gguf.h"
#include "scalequest/models.h"

static char *normalise(const char *src) {
    size_t n = strlen(src);
    char *out = malloc(2 * n + 1);
    if (!out) return NULL;
    size_t k = 0;
    char quote = 0;
    for (size_t i = 0; i < n; i++) {
        char c = src[i];
        if (quote) {
            /* HF configs carry newlines in literals either as Jinja's \n or as the
             * character itself (JSON "\n"); both read the same after this. */
            if (c == '\\' && i + 1 < n) {
                out[k++] = c;
                out[k++] = src[++i];
                continue;
            }
            if (c == '\n') {
                out[k++] = '\\';
                out[k++] = 'n';
                continue;
            }
            if (c == quote) quote = 0;
        } else if (c == '\'' || c == '"') {
            quote = c;
        }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
        out[k++] = c;
    }
    out[k] = 0;
    static const char *const pairs[][2] = {
        {"{{-", "{{"}, {"-}}", "}}"}, {"{%-", "{%"}, {"-%}", "%}"},
        {"message['role']", "message.role"}, {"message[\"role\"]", "message.role"},
        {"message['content']", "message.content"}, {"message[\"content\"]", "message.content"},
        {"\"", "'"},
    };
    for (size_t p = 0; p < SQ_ARRAY_LEN(pairs); p++) {
        const char *from = pairs[p][0], *to = pairs[p][1];
        size_t fl = strlen(from), tl = strlen(to);
        char *r = out, *w = out;
        while (*r) {
            if (!strncmp(r, from, fl)) {
                memcpy(w, to, tl);
                w += tl;
                r += fl;
            } else {
                *w++ = *r++;
            }
        }
        *w = 0;
    }
    return out;
}

static int has(const char *norm, const char *needle) { return strstr(norm, needle) != NULL; }

/* Undo Jinja string-literal escapes (\n, \t, \\, \', \"). */
static char *unescape(const char *s, size_t n) {
    char *out = malloc(n + 1);
    if (!out) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n) {
            char c = s[++i];
            out[k++] = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
        } else {
            out[k++] = s[i];
        }
    }
    out[k] = 0;
    return out;
}

/* The default system prompt of a ChatML template: a string literal that opens a system
 * turn and closes it in the same literal. Searched in the raw source, where spaces count. */
static int chatml_default_system(const char *src, char **out) {
    *out = NULL;
    static const char *const opens[] = {"<|im_start|>system\\n", "<|im_start|>system\n"};
    for (size_t o = 0; o < SQ_ARRAY_LEN(opens); o++) {
        for (const char *p = strstr(src, opens[o]); p; p = strstr(p + 1, opens[o])) {
            const char *body = p + strlen(opens[o]);
            const char *end = strstr(body, "<|im_end|>");
            if (!end) continue;
            size_t len = (size_t)(end - body);
            /* a quote or a Jinja tag inside means the literal ended before <|im_end|> */
            char *lit = sq_strndup(body, len);
            if (!lit) return SQ_ENOMEM;
            int code = strpbrk(lit, "'\"") || strstr(lit, "{{") || strstr(lit, "{%");
            free(lit);
            if (code) continue;
            if (!(*out = unescape(body, len))) return SQ_ENOMEM;
            return 0;
        }
    }
    return 0;
}

/* Qwen base templates set the default with {% set system_message = '...' %}. */
static int set_system_default(const char *src, char **out) {
    *out = NULL;
    const char *p = strstr(src, "set system_message");
    if (!p) return 0;
    p += strlen("set system_message");
    while (*p == ' ') p++;
    if (*p++ != '=') return 0;
    while (*p == ' ') p++;
    char q = *p;
    if (q != '\'' && q != '"') return 0;
    const char *b = ++p;
    while (*p && *p != q) p += (*p == '\\' && p[1]) ? 2 : 1;
    if (!*p) return 0;
    return (*out = unescape(b, (size_t)(p - b))) ? 0 : SQ_ENOMEM;
}

int sq_chat_template_detect(sq_chat_template **t, const char *jinja, const char *bos, const char *eos,
                            const char *origin, sq_err *e) {
    *t = NULL;
    if (!origin) origin = "chat template";
    if (!jinja || !*jinja) return sq_fail(e, SQ_EINVAL, "%s: empty chat template", origin);
    char *n = normalise(jinja);
    if (!n) return sq_fail(e, SQ_ENOMEM, "out of memory");
    int rc;
    if (has(n, "<|im_start|>")) {
        if (has(n, "<think>")) {
            rc = sq_fail(e, SQ_EUNSUP, "%s: a ChatML template with <think> blocks (Qwen3 style) is not supported", origin);
        } else if (has(n, "'<|im_start|>user\\n'+content+'<|im_end|>\\n<|im_start|>assistant\\n'") &&
                   has(n, "content+'<|im_end|>'+'\\n'") && has(n, "'<|im_start|>system\\n'+system_message+'<|im_end|>\\n'")) {
            char *sys = NULL;
            rc = set_system_default(jinja, &sys);
            if (rc) rc = sq_fail(e, rc, "out of memory");
            else rc = sq_chat_template_make(t, SQ_CHAT_CHATML_BASE, bos, eos, sys, e);
            free(sys);
        } else if (!has(n, "'<|im_start|>'+message.role+'\\n'+message.content+'<|im_end|>'")) {
            rc = sq_fail(e, SQ_EUNSUP, "%s: a ChatML template whose turns are not '<|im_start|>' + role + '\\n' + "
                         "content + '<|im_end|>' is not supported", origin);
        } else {
            char *sys = NULL;
            rc = chatml_default_system(jinja, &sys);
            if (rc) rc = sq_fail(e, rc, "out of memory");
            else rc = sq_chat_template_make(t, SQ_CHAT_CHATML, bos, eos, sys, e);
            free(sys);
        }
    } else if (has(n, "'User:'+message.content+'\\n\\n'")) {
        if (has(n, "'Assistant:'+message.content+eos_token") && has(n, "{{'Assistant:'}}"))
            rc = sq_chat_template_make(t, SQ_CHAT_DEEPSEEK, bos, eos, NULL, e);
        else
            rc = sq_fail(e, SQ_EUNSUP, "%s: a 'User: ... Assistant:' template of an unknown DeepSeek variant", origin);
    } else if (has(n, "<|start_header_id|>")) {
        if (has(n, "CuttingKnowledgeDate") || has(n, "Environment:"))
            rc = sq_fail(e, SQ_EUNSUP, "%s: the Llama-3.1+ template (date and tools header) is not supported; "
                         "only the Llama-3 Instruct template is", origin);
        else if (has(n, "'<|start_header_id|>'+message.role+'<|end_header_id|>\\n\\n'+message.content|trim+'<|eot_id|>'"))
            rc = sq_chat_template_make(t, SQ_CHAT_LLAMA3, bos, eos, NULL, e);
        else
            rc = sq_fail(e, SQ_EUNSUP, "%s: a Llama-3-style template of an unknown variant", origin);
    } else if (has(n, "[INST]")) {
        if (has(n, "<<SYS>>\\n'+system_message+'\\n<</SYS>>\\n\\n'+message.content") &&
            has(n, "bos_token+'[INST]'+content.strip()+'[/INST]'") && has(n, "''+content.strip()+''+eos_token"))
            rc = sq_chat_template_make(t, SQ_CHAT_LLAMA2, bos, eos, NULL, e);
        else if (!has(n, "<<SYS>>") && !has(n, "system_message") && has(n, "'[INST]'+message.content+'[/INST]'") &&
                 has(n, "message.content+eos_token+''"))
            rc = sq_chat_template_make(t, SQ_CHAT_MISTRAL, bos, eos, NULL, e);
        else
            rc = sq_fail(e, SQ_EUNSUP, "%s: an [INST] template of an unknown Llama-2/Mistral variant", origin);
    } else {
        rc = sq_fail(e, SQ_EUNSUP, "%s: unrecognised chat template family (known: ChatML/Qwen2, DeepSeek, Llama-3, "
                     "Llama-2, Mistral); name one with a built-in name or a template file", origin);
    }
    free(n);
    if (!rc && !((*t)->source = sq_strdup(jinja))) {
        sq_chat_template_free(*t);
        *t = NULL;
        rc = sq_fail(e, SQ_ENOMEM, "out of memory");
    }
    return rc;
}

/* bos_token / eos_token: a string, or an AddedToken object with "content". */
static const char *token_text(const cJSON *cfg, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int from_config_json(sq_chat_template **t, const char *text, size_t len, const char *path, sq_err *e) {
    cJSON *cfg = cJSON_ParseWithLength(text, len);
    if (!cfg) {
        const char *at = cJSON_GetErrorPtr();
        return sq_fail(e, SQ_EPARSE, "%s: not valid JSON (near byte %ld)", path,
                       at && at >= text && at <= text + len ? (long)(at - text) : (long)len);
    }
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
    const char *src = NULL;
    if (cJSON_IsString(ct)) {
        src = ct->valuestring;
    } else if (cJSON_IsArray(ct)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, ct) {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "name");
            const cJSON *tpl = cJSON_GetObjectItemCaseSensitive(it, "template");
            if (cJSON_IsString(name) && !strcmp(name->valuestring, "default") && cJSON_IsString(tpl)) src = tpl->valuestring;
        }
    }
    int rc;
    if (!src) {
        rc = sq_fail(e, SQ_ENOTFOUND, "%s: no \"chat_template\" (a string, or a list with a \"default\" entry)", path);
    } else {
        char origin[600];
        snprintf(origin, sizeof origin, "%s: chat_template", path);
        rc = sq_chat_template_detect(t, src, token_text(cfg, "bos_token"), token_text(cfg, "eos_token"), origin, e);
    }
    cJSON_Delete(cfg);
    return rc;
}

int sq_chat_template_from_tokenizer_config(sq_chat_template **t, const char *path, sq_err *e) {
    *t = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc = sq_file_read_all(path, &text, &len, e);
    if (rc) return rc;
    rc = from_config_json(t, text, len, path, e);
    free(text);
    return rc;
}

/* A folder's chat_template.jinja, with the BOS/EOS texts of its tokenizer_config.json. */
static int from_jinja_file(sq_chat_template **t, const char *dir, const char *jpath, sq_err *e) {
    char *src = NULL, *cfg_text = NULL;
    size_t len = 0, clen = 0;
    int rc = sq_file_read_all(jpath, &src, &len, e);
    if (rc) return rc;
    char *cp = sq_path_join(dir, "tokenizer_config.json");
    cJSON *cfg = NULL;
    if (cp && sq_file_exists(cp) && sq_file_read_all(cp, &cfg_text, &clen, NULL) == 0)
        cfg = cJSON_ParseWithLength(cfg_text, clen);
    rc = sq_chat_template_detect(t, src, cfg ? token_text(cfg, "bos_token") : NULL,
                                 cfg ? token_text(cfg, "eos_token") : NULL, jpath, e);
    cJSON_Delete(cfg);
    free(cfg_text);
    free(cp);
    free(src);
    return rc;
}

int sq_chat_template_open(sq_chat_template **t, const char *spec, sq_err *e) {
    { /* a registry name (models.h) stands for its installed file */
        char *resolved = NULL;
        int rr = sq_models_resolve(spec, &resolved, e);
        if (rr < 0) return rr;
        if (rr == 1) {
            rr = sq_chat_template_open(t, resolved, e);
            free(resolved);
            return rr;
        }
    }
    *t = NULL;
    if (!spec || !*spec) return sq_fail(e, SQ_EINVAL, "empty chat template name");
    if (sq_dir_exists(spec)) {
        /* transformers >= 4.43 may save the template beside the config as chat_template.jinja
         * (v5 always does); BOS/EOS still come from tokenizer_config.json. */
        char *jp = sq_path_join(spec, "chat_template.jinja");
        if (!jp) return sq_fail(e, SQ_ENOMEM, "out of memory");
        if (sq_file_exists(jp)) {
            int rc = from_jinja_file(t, spec, jp, e);
            free(jp);
            return rc;
        }
        free(jp);
        char *p = sq_path_join(spec, "tokenizer_config.json");
        if (!p) return sq_fail(e, SQ_ENOMEM, "out of memory");
        int rc = sq_file_exists(p) ? sq_chat_template_from_tokenizer_config(t, p, e)
                                   : sq_fail(e, SQ_ENOTFOUND, "%s: no tokenizer_config.json to take a chat template from", spec);
        free(p);
        return rc;
    }
    if (!sq_file_exists(spec)) return sq_chat_template_builtin(t, spec, e);
    size_t sl = strlen(spec);
    if (sl > 5 && !strcmp(spec + sl - 5, ".gguf")) {
        sq_gguf g;
        int rc = sq_gguf_open(&g, spec, e);
        if (rc) return rc;
        rc = sq_chat_template_from_gguf(t, &g, e);
        sq_gguf_close(&g);
        return rc;
    }
    char *text = NULL;
    size_t len = 0;
    int rc = sq_file_read_all(spec, &text, &len, e);
    if (rc) return rc;
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\n' || text[i] == '\t' || text[i] == '\r')) i++;
    if (i < len && text[i] == '{' && (i + 1 >= len || (text[i + 1] != '%' && text[i + 1] != '{' && text[i + 1] != '#')))
        rc = from_config_json(t, text, len, spec, e);
    else
        rc = sq_chat_template_detect(t, text, NULL, NULL, spec, e);
    free(text);
    return rc;
}
