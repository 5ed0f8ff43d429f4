/* What a chat template gives to the rest of the pipeline besides rendering: the bare
 * user-turn prefix that ScaleQuest's question generation samples from, and the
 * tokenizer_config.json that carries the template into a model folder we write. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/chat_template.h"

int sq_chat_template_question_prefix(const sq_chat_template *t, sq_buf *out, sq_err *e) {
    /* Render one user turn around a marker and keep what precedes it, so the prefix is
     * exactly what the template writes before a question, whatever the family. The
     * marker holds bytes no template writes (it is not valid UTF-8). */
    static const char marker[] = "\xff\xfe" "question" "\xfe\xff";
    sq_buf r = {0};
    sq_chat_msg m = {"user", marker};
    int rc = sq_chat_template_render(t, &m, 1, 0, &r, e);
    if (rc) return rc;
    const char *at = r.data ? strstr(r.data, marker) : NULL;
    if (!at) rc = sq_fail(e, SQ_EINVAL, "chat template %s: a user turn does not contain its content", t->name);
    else if (sq_buf_append(out, r.data, (size_t)(at - r.data))) rc = sq_fail(e, SQ_ENOMEM, "out of memory");
    sq_buf_free(&r);
    return rc;
}

int sq_chat_template_config_json(const sq_chat_template *t, sq_buf *out, sq_err *e) {
    if (!t->source)
        return sq_fail(e, SQ_EUNSUP,
                       "chat template %s: its Jinja source is unknown (give a template file or a model folder to write it)",
                       t->name);
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddStringToObject(o, "chat_template", t->source);
        /* transformers writes an absent BOS as null, not as an empty token */
        if (*t->bos) cJSON_AddStringToObject(o, "bos_token", t->bos);
        else cJSON_AddNullToObject(o, "bos_token");
        cJSON_AddStringToObject(o, "eos_token", t->eos);
        cJSON_AddStringToObject(o, "tokenizer_class", "PreTrainedTokenizerFast");
    }
    char *s = o ? cJSON_Print(o) : NULL;
    cJSON_Delete(o);
    int rc = !s || sq_buf_puts(out, s) || sq_buf_puts(out, "\n") ? sq_fail(e, SQ_ENOMEM, "out of memory") : 0;
    free(s);
    return rc;
}
