/* Dedup keys: the exact text, or a normalised form in which case and runs of whitespace do
 * not matter. Normalising is NFC + Unicode case folding (utf8proc), then every run of
 * whitespace (ASCII or Unicode Zs) becomes one space and the ends are trimmed. Pure-ASCII
 * text, the common case, takes a byte loop that gives the same result without utf8proc. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "scalequest/jsonl.h"

static int is_ascii_ws(unsigned c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

static int ascii_key(const char *s, size_t n, sq_buf *out) {
    if (sq_buf_reserve(out, n)) return SQ_ENOMEM;
    char *d = out->data;
    size_t k = 0;
    int pending_space = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_ascii_ws(c)) {
            pending_space = k > 0;
            continue;
        }
        if (pending_space) d[k++] = ' ';
        pending_space = 0;
        d[k++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    d[k] = 0;
    out->len = k;
    return 0;
}

int sq_jsonl_dedup_key(const char *s, size_t n, int normalize, sq_buf *out) {
    sq_buf_reset(out);
    if (!normalize) return sq_buf_append(out, s, n) ? SQ_ENOMEM : 0;
    size_t i = 0;
    while (i < n && (unsigned char)s[i] < 0x80) i++;
    if (i == n) return ascii_key(s, n, out);
    utf8proc_uint8_t *folded = NULL;
    utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &folded,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD);
    if (m < 0) {
        /* Not valid UTF-8 (possible only through \u0000-style escapes): compare exactly. */
        free(folded);
        return sq_buf_append(out, s, n) ? SQ_ENOMEM : 0;
    }
    if (sq_buf_reserve(out, (size_t)m)) {
        free(folded);
        return SQ_ENOMEM;
    }
    int pending_space = 0;
    for (utf8proc_ssize_t p = 0; p < m;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(folded + p, m - p, &cp);
        if (k <= 0) break;
        if ((cp < 0x80 && is_ascii_ws((unsigned)cp)) || utf8proc_category(cp) == UTF8PROC_CATEGORY_ZS ||
            cp == 0x2028 || cp == 0x2029 || cp == 0x85) {
            pending_space = out->len > 0;
        } else {
            if (pending_space) sq_buf_append(out, " ", 1);
            pending_space = 0;
            sq_buf_append(out, folded + p, (size_t)k);
        }
        p += k;
    }
    free(folded);
    return 0;
}
