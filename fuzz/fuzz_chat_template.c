/* libFuzzer target for chat template recognition and rendering.
 *
 * The input is split at the first NUL: before it, a Jinja template source (or a
 * tokenizer_config.json); after it, messages as "role\x01content\x02..." pairs. A source is
 * either refused with a message or recognised as one family, whose rendering of the messages
 * either succeeds and contains every message's text where the family keeps it whole, or is
 * refused with a message.
 *   make fuzz && build/fuzz/fuzz_chat_template -max_total_time=300 fuzz/corpus/chat_template
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/chat_template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size + 2);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = buf[size + 1] = 0;
    const char *src = buf;
    size_t srclen = strlen(src);
    char *rest = buf + srclen + (srclen < size ? 1 : 0);
    sq_chat_msg msgs[16];
    int n = 0;
    while (*rest && n < 16) {
        char *sep = strchr(rest, '\x01');
        if (!sep) break;
        *sep = 0;
        char *end = strchr(sep + 1, '\x02');
        if (end) *end = 0;
        msgs[n++] = (sq_chat_msg){rest, sep + 1};
        if (!end) break;
        rest = end + 1;
    }
    sq_chat_template *t = NULL;
    sq_err e = {0};
    int rc = sq_chat_template_detect(&t, src, NULL, NULL, "fuzz", &e);
    if (rc && (!e.msg[0] || t)) __builtin_trap();
    if (!rc) {
        sq_buf out = {0};
        int r = sq_chat_template_render(t, msgs, n, 1, &out, &e);
        if (r == 0 && t->family == SQ_CHAT_CHATML)
            for (int i = 0; i < n; i++)
                if (!strstr(out.data ? out.data : "", msgs[i].content)) __builtin_trap();
        sq_buf_free(&out);
        sq_chat_template_free(t);
    }
    free(buf);
    return 0;
}
