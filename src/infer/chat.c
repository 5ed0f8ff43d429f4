/* Chat prompts for the model families the engine runs, recognised by their special tokens.
 * These are the formats of the families' own chat templates for plain text messages. */
#include <string.h>

#include "scalequest/infer.h"
#include "scalequest/tokenizer.h"

static int has(const sq_tokenizer *t, const char *piece) { return sq_tok_find(t, piece, strlen(piece)) >= 0; }

int sq_chat_render(const sq_tokenizer *t, const sq_chat_msg *m, int n, sq_buf *o, sq_err *e) {
    int rc = 0;
    for (int i = 0; i < n; i++)
        if (!m[i].role || !m[i].content) return sq_fail(e, SQ_EINVAL, "chat message %d lacks role or content", i);
    if (has(t, "<|im_start|>")) {
        for (int i = 0; i < n && !rc; i++) rc = sq_buf_printf(o, "<|im_start|>%s\n%s<|im_end|>\n", m[i].role, m[i].content);
        if (!rc) rc = sq_buf_puts(o, "<|im_start|>assistant\n");
    } else if (has(t, "<|start_header_id|>")) {
        rc = sq_buf_puts(o, "<|begin_of_text|>");
        for (int i = 0; i < n && !rc; i++)
            rc = sq_buf_printf(o, "<|start_header_id|>%s<|end_header_id|>\n\n%s<|eot_id|>", m[i].role, m[i].content);
        if (!rc) rc = sq_buf_puts(o, "<|start_header_id|>assistant<|end_header_id|>\n\n");
    } else if (has(t, "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>")) {
        rc = sq_buf_puts(o, "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>");
        for (int i = 0; i < n && !rc; i++) {
            if (!strcmp(m[i].role, "system"))
                rc = sq_buf_printf(o, "%s\n\n", m[i].content);
            else if (!strcmp(m[i].role, "user"))
                rc = sq_buf_printf(o, "User: %s\n\n", m[i].content);
            else
                rc = sq_buf_printf(o, "Assistant: %s<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
                                   m[i].content);
        }
        if (!rc) rc = sq_buf_puts(o, "Assistant:");
    } else {
        /* Llama 2 / Mistral: a system message folds into the first user turn. */
        const char *sys = n > 0 && !strcmp(m[0].role, "system") ? m[0].content : NULL;
        for (int i = sys ? 1 : 0; i < n && !rc; i++) {
            if (!strcmp(m[i].role, "user")) {
                rc = sq_buf_puts(o, "<s>[INST] ");
                if (!rc && sys && i == 1) rc = sq_buf_printf(o, "<<SYS>>\n%s\n<</SYS>>\n\n", sys);
                if (!rc) rc = sq_buf_printf(o, "%s [/INST]", m[i].content);
            } else if (!strcmp(m[i].role, "assistant")) {
                rc = sq_buf_printf(o, " %s</s>", m[i].content);
            } else {
                return sq_fail(e, SQ_EINVAL, "chat message %d: role '%s' only allowed first", i, m[i].role);
            }
        }
    }
    return rc ? sq_fail(e, SQ_ENOMEM, "chat prompt: out of memory") : 0;
}
