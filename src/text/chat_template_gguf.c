/* The chat template of a GGUF model: tokenizer.chat_template, with the BOS/EOS texts taken
 * from the token table by tokenizer.ggml.bos_token_id / eos_token_id. */
#include <stdlib.h>
#include <string.h>

#include "scalequest/chat_template.h"
#include "scalequest/gguf.h"

/* The text of token `key` (an id into tokenizer.ggml.tokens), malloc'd; NULL when absent. */
static char *token_text(const sq_gguf *g, const char *key) {
    uint32_t id;
    const sq_gguf_kv *tokens = NULL;
    if (sq_gguf_get_u32(g, key, &id, NULL)) return NULL;
    if (sq_gguf_get_arr(g, "tokenizer.ggml.tokens", SQ_GGUF_STRING, &tokens, NULL) || id >= tokens->n) return NULL;
    sq_gguf_str s = sq_gguf_arr_str(tokens, id);
    return sq_strndup(s.ptr, (size_t)s.len);
}

int sq_chat_template_from_gguf(sq_chat_template **t, const sq_gguf *g, sq_err *e) {
    *t = NULL;
    const char *path = g->path ? g->path : "GGUF";
    sq_gguf_str src;
    if (sq_gguf_get_str(g, "tokenizer.chat_template", &src, NULL))
        return sq_fail(e, SQ_ENOTFOUND, "%s: no tokenizer.chat_template; name a template with a flag", path);
    char *jinja = sq_strndup(src.ptr, (size_t)src.len);
    char *bos = token_text(g, "tokenizer.ggml.bos_token_id");
    char *eos = token_text(g, "tokenizer.ggml.eos_token_id");
    char origin[600];
    snprintf(origin, sizeof origin, "%s: tokenizer.chat_template", path);
    int rc = jinja ? sq_chat_template_detect(t, jinja, bos, eos, origin, e) : sq_fail(e, SQ_ENOMEM, "out of memory");
    free(jinja);
    free(bos);
    free(eos);
    return rc;
}
