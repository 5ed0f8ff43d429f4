/* libFuzzer target: arbitrary bytes as a tokenizer.json. Loading must either fail with a
 * message or give a tokenizer that encodes and decodes a sample (and the input itself) without
 * crashing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sq_tokenizer *t;
    sq_err e;
    if (sq_tok_load_json(&t, (const char *)data, size, "fuzz.json", &e)) {
        if (!e.msg[0]) __builtin_trap(); /* every failure explains itself */
        return 0;
    }
    const char *samples[] = {"Hello world <s> 12345 \xff\xfe  \n\t中文 🦙", (const char *)data};
    size_t lens[] = {strlen(samples[0]), size < 4096 ? size : 4096};
    for (int k = 0; k < 2; k++) {
        int32_t *ids;
        size_t n;
        if (sq_tok_encode(t, samples[k], lens[k], SQ_TOK_PARSE_SPECIAL | SQ_TOK_ADD_SPECIAL, &ids, &n, &e)) continue;
        char *s;
        size_t len;
        if (!sq_tok_decode(t, ids, n, 0, &s, &len, &e)) free(s);
        sq_tok_stream *st;
        if (!sq_tok_stream_new(&st, t, 0, &e)) {
            sq_buf b = {0};
            for (size_t i = 0; i < n; i++) sq_tok_stream_push(st, ids[i], &b, &e);
            sq_tok_stream_flush(st, &b, &e);
            sq_buf_free(&b);
            sq_tok_stream_free(st);
        }
        free(ids);
    }
    sq_tok_free(t);
    return 0;
}
