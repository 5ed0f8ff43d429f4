/* UTF-8 helpers for the tokenizer: strict decoding, Python-compatible repair of ill-formed
 * input, and GPT-2's byte-to-character table.
 *
 * Repair follows the Unicode "maximal subpart" rule, which is what Python's
 * bytes.decode("utf-8", "replace") does; HF only ever sees text that went through it, so
 * repairing the same way is what makes our ids match on invalid input. */
#include <string.h>

#include "tok_internal.h"

/* Second-byte bounds per lead byte (Unicode Table 3-7); lo > hi marks an invalid lead. */
static void lead_info(uint8_t c, int *need, uint8_t *lo, uint8_t *hi) {
    *lo = 0x80, *hi = 0xBF;
    if (c < 0x80) *need = 0;
    else if (c >= 0xC2 && c <= 0xDF) *need = 1;
    else if (c == 0xE0) *need = 2, *lo = 0xA0;
    else if (c >= 0xE1 && c <= 0xEC) *need = 2;
    else if (c == 0xED) *need = 2, *hi = 0x9F;
    else if (c >= 0xEE && c <= 0xEF) *need = 2;
    else if (c == 0xF0) *need = 3, *lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) *need = 3;
    else if (c == 0xF4) *need = 3, *hi = 0x8F;
    else *need = -1;
}

int tok_utf8_next(const uint8_t *s, size_t n, uint32_t *cp) {
    if (n == 0) return 0;
    uint8_t c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int need;
    uint8_t lo, hi;
    lead_info(c, &need, &lo, &hi);
    if (need <= 0 || (size_t)need + 1 > n) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    uint32_t v = c & (0x3F >> need);
    for (int i = 1; i <= need; i++) {
        if (i > 1 && (s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    *cp = v;
    return need + 1;
}

int tok_utf8_bad_len(const uint8_t *s, size_t n) {
    int need;
    uint8_t lo, hi;
    lead_info(s[0], &need, &lo, &hi);
    if (need <= 0) return 1;
    int k = 1;
    if (k < (int)n && s[1] >= lo && s[1] <= hi) {
        k = 2;
        while (k <= need && k < (int)n && (s[k] & 0xC0) == 0x80) k++;
    }
    return k;
}

int tok_utf8_put(uint32_t cp, char *out) {
    uint8_t *o = (uint8_t *)out;
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = 0xC0 | (cp >> 6), o[1] = 0x80 | (cp & 0x3F);
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = 0xE0 | (cp >> 12), o[1] = 0x80 | ((cp >> 6) & 0x3F), o[2] = 0x80 | (cp & 0x3F);
        return 3;
    }
    o[0] = 0xF0 | (cp >> 18), o[1] = 0x80 | ((cp >> 12) & 0x3F);
    o[2] = 0x80 | ((cp >> 6) & 0x3F), o[3] = 0x80 | (cp & 0x3F);
    return 4;
}

int tok_utf8_sanitize(const char *s, size_t n, sq_buf *out) {
    const uint8_t *u = (const uint8_t *)s;
    size_t i = 0;
    /* Fast scan: most text is valid, and then no copy is made. */
    while (i < n) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        int k = tok_utf8_next(u + i, n - i, &cp);
        if (!k) break;
        i += k;
    }
    if (i == n) return 1;
    sq_buf_reset(out);
    if (sq_buf_reserve(out, n + n / 2 + 8)) return SQ_ENOMEM;
    if (sq_buf_append(out, s, i)) return SQ_ENOMEM;
    while (i < n) {
        uint32_t cp;
        int k = tok_utf8_next(u + i, n - i, &cp);
        if (k) {
            if (sq_buf_append(out, s + i, k)) return SQ_ENOMEM;
            i += k;
        } else {
            if (sq_buf_append(out, "\xEF\xBF\xBD", 3)) return SQ_ENOMEM;
            i += tok_utf8_bad_len(u + i, n - i);
        }
    }
    return 0;
}

int tok_is_space_cp(uint32_t cp) {
    return (cp >= 9 && cp <= 13) || cp == 32 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}

/* Printable bytes stand for themselves; the other 68 take 256, 257, ... in byte order. */
static int byte_is_printable(int b) {
    return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
}

uint32_t tok_byte_to_cp(uint8_t b) {
    if (byte_is_printable(b)) return b;
    uint32_t k = 0;
    for (int i = 0; i < b; i++) k += !byte_is_printable(i);
    return 256 + k;
}

int tok_cp_to_byte(uint32_t cp) {
    if (cp < 256) return byte_is_printable((int)cp) ? (int)cp : -1;
    if (cp >= 256 + 68) return -1;
    uint32_t k = cp - 256;
    for (int b = 0; b < 256; b++)
        if (!byte_is_printable(b) && k-- == 0) return b;
    return -1;
}

int tok_utf8_partial(const uint8_t *s, size_t n) {
    if (n == 0) return 0;
    int need;
    uint8_t lo, hi;
    lead_info(s[0], &need, &lo, &hi);
    if (need <= 0 || n > (size_t)need) return 0;
    if (n >= 2 && (s[1] < lo || s[1] > hi)) return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return 1;
}
