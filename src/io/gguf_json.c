/* gguf_json — a GGUF metadata value as JSON text, for inspection and peer comparison.
 *
 * The value was bounds-checked when the file was parsed, so the walk here only decodes.
 * Integers print exactly, f32 with 9 significant digits and f64 with 17 (both round-trip),
 * strings with JSON escapes for quotes, backslashes and control bytes; other bytes pass
 * through unchanged.
 */
#include <math.h>
#include <string.h>

#include "scalequest/gguf.h"

#include "gguf_internal.h"

int sq_gguf_json_escape(sq_buf *b, const char *s, size_t n) {
    int rc = sq_buf_puts(b, "\"");
    size_t run = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\') continue;
        rc = sq_buf_append(b, s + run, i - run);
        if (!rc) {
            if (ch == '"' || ch == '\\')
                rc = sq_buf_printf(b, "\\%c", ch);
            else if (ch == '\n')
                rc = sq_buf_puts(b, "\\n");
            else if (ch == '\t')
                rc = sq_buf_puts(b, "\\t");
            else
                rc = sq_buf_printf(b, "\\u%04x", ch);
        }
        run = i + 1;
    }
    if (!rc) rc = sq_buf_append(b, s + run, n - run);
    return rc ? rc : sq_buf_puts(b, "\"");
}

static int put_double(sq_buf *b, double d, int digits) {
    if (isnan(d)) return sq_buf_puts(b, "NaN");
    if (isinf(d)) return sq_buf_puts(b, d > 0 ? "Infinity" : "-Infinity");
    return sq_buf_printf(b, "%.*g", digits, d);
}

/* Write the value of type t at *p and advance *p past it. */
static int put_value(sq_buf *b, uint32_t t, const uint8_t **p) {
    const uint8_t *q = *p;
    int64_t s;
    uint64_t u;
    int is_unsigned;
    if (sq_gguf_read_int(t, q, &s, &u, &is_unsigned)) {
        *p += sq_gguf_scalar_size(t);
        return is_unsigned ? sq_buf_printf(b, "%llu", (unsigned long long)u) : sq_buf_printf(b, "%lld", (long long)s);
    }
    switch (t) {
    case SQ_GGUF_BOOL: *p += 1; return sq_buf_puts(b, q[0] ? "true" : "false");
    case SQ_GGUF_F32: {
        float v;
        memcpy(&v, q, 4);
        *p += 4;
        return put_double(b, v, 9);
    }
    case SQ_GGUF_F64: {
        double v;
        memcpy(&v, q, 8);
        *p += 8;
        return put_double(b, v, 17);
    }
    case SQ_GGUF_STRING: {
        uint64_t n;
        memcpy(&n, q, 8);
        *p += 8 + n;
        return sq_gguf_json_escape(b, (const char *)q + 8, (size_t)n);
    }
    case SQ_GGUF_ARRAY: {
        uint32_t et;
        uint64_t n;
        memcpy(&et, q, 4);
        memcpy(&n, q + 4, 8);
        *p += 12;
        int rc = sq_buf_puts(b, "[");
        for (uint64_t i = 0; i < n && !rc; i++) {
            if (i) rc = sq_buf_puts(b, ", ");
            if (!rc) rc = put_value(b, et, p);
        }
        return rc ? rc : sq_buf_puts(b, "]");
    }
    default: return SQ_EINVAL;
    }
}

int sq_gguf_kv_to_json(const sq_gguf_kv *kv, sq_buf *out) {
    const uint8_t *p = kv->data;
    if (kv->type != SQ_GGUF_ARRAY) return put_value(out, kv->type, &p);
    /* kv->data is the first element: step back over the element type and count. */
    p -= 12;
    return put_value(out, SQ_GGUF_ARRAY, &p);
}
