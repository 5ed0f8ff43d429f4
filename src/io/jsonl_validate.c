/* One-line JSON object validation, the reference: strict RFC 8259 syntax and strict UTF-8
 * in one pass, byte by byte, with the exact reason and offset of the first error.
 *
 * The two-stage validator (jsonl_simd.c, jsonl_grammar.c) decides most lines faster; this
 * one decides where that one is not compiled in, and explains every line that one refuses
 * (errors are rare, so explaining them twice costs nothing). String contents are skipped 32
 * or 16 bytes at a time, stopping only at a quote, a backslash, a control byte or a
 * non-ASCII byte. Everything else is a small recursive-descent scanner that builds nothing.
 *
 * Two limits keep "valid here" equal to "cJSON will parse it" (records are later parsed by
 * cJSON): nesting deeper than SQ_JSONL_MAX_DEPTH and number tokens longer than 63 characters
 * (cJSON copies a number into a 64-byte buffer) are reported as errors rather than
 * accepted and then failing later without a line number.
 */
#include "jsonl_internal.h"

#include <string.h>

#if defined(__AVX2__) || defined(__SSE2__)
#include <immintrin.h>
#endif

typedef struct {
    const uint8_t *start, *p, *end;
    const char *why;
    const uint8_t *at;
} vstate;

static int fail_at(vstate *v, const uint8_t *at, const char *why) {
    v->why = why;
    v->at = at;
    return -1;
}

static inline void skip_ws(vstate *v) {
    while (v->p < v->end && (*v->p == ' ' || *v->p == '\t' || *v->p == '\r' || *v->p == '\n')) v->p++;
}

/* Skip plain string bytes: stop at '"', '\\', bytes < 0x20 and bytes >= 0x80. */
static inline const uint8_t *skip_plain(const uint8_t *p, const uint8_t *end) {
#if defined(__AVX2__)
    const __m256i quote = _mm256_set1_epi8('"'), bslash = _mm256_set1_epi8('\\');
    const __m256i space = _mm256_set1_epi8(0x20);
    while (end - p >= 32) {
        __m256i b = _mm256_loadu_si256((const __m256i *)p);
        /* Signed compare: bytes >= 0x80 are negative, so "0x20 > b" catches both ranges. */
        __m256i m = _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(b, quote), _mm256_cmpeq_epi8(b, bslash)),
                                    _mm256_cmpgt_epi8(space, b));
        uint32_t bits = (uint32_t)_mm256_movemask_epi8(m);
        if (bits) return p + __builtin_ctz(bits);
        p += 32;
    }
#endif
#if defined(__SSE2__)
    const __m128i q16 = _mm_set1_epi8('"'), b16 = _mm_set1_epi8('\\'), s16 = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
        __m128i b = _mm_loadu_si128((const __m128i *)p);
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(b, q16), _mm_cmpeq_epi8(b, b16)), _mm_cmpgt_epi8(s16, b));
        uint32_t bits = (uint32_t)_mm_movemask_epi8(m);
        if (bits) return p + __builtin_ctz(bits);
        p += 16;
    }
#endif
    while (p < end && *p != '"' && *p != '\\' && *p >= 0x20 && *p < 0x80) p++;
    return p;
}

/* Bytes that may follow a backslash, other than 'u' (which needs four hex digits). */
static const uint8_t simple_escape[256] = {['"'] = 1, ['\\'] = 1, ['/'] = 1, ['b'] = 1,
                                           ['f'] = 1, ['n'] = 1, ['r'] = 1, ['t'] = 1};

#if defined(__AVX2__)
#define SQ_HAVE_BLOCKS 1
static int g_blocks = 1;
void sq_jsonl_use_blocks(int on) { g_blocks = on; }

/* Masks of one 64-byte block (bit i = byte i): quotes, backslashes, "special" bytes (< 0x20
 * or >= 0x80: one signed compare catches both), and bytes allowed after a backslash other
 * than 'u' (" \ / b f n r t), classified by a two-nibble table lookup. */
static inline void block_masks(const uint8_t *p, uint64_t *quote, uint64_t *bslash, uint64_t *special,
                               uint64_t *simple) {
    /* Each escape byte gets a bit for its high nibble (2, 5, 6, 7 -> bits 0..3); the low
     * nibble table sets that bit for the low nibbles that occur with it. */
    const __m256i hi_tab = _mm256_setr_epi8(0, 0, 1, 0, 0, 2, 4, 8, 0, 0, 0, 0, 0, 0, 0, 0, /* */
                                            0, 0, 1, 0, 0, 2, 4, 8, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m256i lo_tab = _mm256_setr_epi8(0, 0, 1 | 4 | 8, 0, 8, 0, 4, 0, 0, 0, 0, 0, 2, 0, 4, 1, /* */
                                            0, 0, 1 | 4 | 8, 0, 8, 0, 4, 0, 0, 0, 0, 0, 2, 0, 4, 1);
    const __m256i q = _mm256_set1_epi8('"'), bs = _mm256_set1_epi8('\\'), sp = _mm256_set1_epi8(0x20);
    const __m256i nib = _mm256_set1_epi8(0x0F), zero = _mm256_setzero_si256();
    uint64_t m[4] = {0, 0, 0, 0};
    for (int h = 0; h < 2; h++) {
        __m256i b = _mm256_loadu_si256((const __m256i *)(p + 32 * h));
        __m256i cls = _mm256_and_si256(_mm256_shuffle_epi8(hi_tab, _mm256_and_si256(_mm256_srli_epi16(b, 4), nib)),
                                       _mm256_shuffle_epi8(lo_tab, _mm256_and_si256(b, nib)));
        m[0] |= (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(b, q)) << (32 * h);
        m[1] |= (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(b, bs)) << (32 * h);
        m[2] |= (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpgt_epi8(sp, b)) << (32 * h);
        m[3] |= (uint64_t)(uint32_t)~_mm256_movemask_epi8(_mm256_cmpeq_epi8(cls, zero)) << (32 * h);
    }
    *quote = m[0], *bslash = m[1], *special = m[2];
    /* Bytes >= 0x80 index the tables with their top bit set, which pshufb maps to 0 for the
     * low-nibble lookup; mask them out anyway so the rule does not rest on that. */
    *simple = m[3] & ~m[2];
}

/* Skip string contents 64 bytes at a time, escapes included, without a branch per escape
 * (math text is full of LaTeX backslashes). A byte is escaped when it follows a run of
 * backslashes of odd length; runs are found with one addition each way: adding a run's
 * start bit to the backslash mask carries through the run and lands just past its end, and
 * the parity of start and end tells odd from even length.
 * Stops at the first byte that needs the byte-by-byte path: the closing quote, a control
 * or non-ASCII byte, the backslash of a \u or bad escape. Returns p when fewer than 64
 * bytes are left, or the backslash just before p when it escapes p. */
static inline const uint8_t *skip_blocks(const uint8_t *p, const uint8_t *end) {
    const uint64_t even = 0x5555555555555555ull, odd = ~even;
    uint64_t carry = 0; /* 1: the first byte of this block is escaped by the previous block */
    if (!g_blocks) return p;
    while (end - p >= 64) {
        if (!carry) {
            /* Plain text, the common block: one OR of three compares, no escape work. */
            __m256i lo = _mm256_loadu_si256((const __m256i *)p), hi = _mm256_loadu_si256((const __m256i *)(p + 32));
            const __m256i q = _mm256_set1_epi8('"'), bs = _mm256_set1_epi8('\\'), sp = _mm256_set1_epi8(0x20);
            __m256i any = _mm256_or_si256(
                _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(lo, q), _mm256_cmpeq_epi8(hi, q)),
                                _mm256_or_si256(_mm256_cmpeq_epi8(lo, bs), _mm256_cmpeq_epi8(hi, bs))),
                _mm256_or_si256(_mm256_cmpgt_epi8(sp, lo), _mm256_cmpgt_epi8(sp, hi)));
            if (_mm256_testz_si256(any, any)) {
                p += 64;
                continue;
            }
        }
        uint64_t quote, bslash, special, simple;
        block_masks(p, &quote, &bslash, &special, &simple);
        uint64_t b = bslash & ~carry;
        uint64_t starts = b & ~(b << 1);
        uint64_t from_even, from_odd;
        (void)__builtin_add_overflow(b, starts & even, &from_even);
        int carry_out = __builtin_add_overflow(b, starts & odd, &from_odd);
        uint64_t escaped = (((from_even & ~b) & odd) | ((from_odd & ~b) & even)) | carry;
        uint64_t bad_escape = escaped & ~simple;
        if (bad_escape & 1) return p - 1; /* its backslash ended the previous block */
        uint64_t stop = ((quote | special) & ~escaped) | (bad_escape >> 1);
        /* Non-ASCII text is checked here, sequence by sequence, without leaving the block. */
        while (stop) {
            int i = __builtin_ctzll(stop);
            if (p[i] < 0x80) return p + i;
            size_t n = sq_utf8_seq_len(p + i, end);
            if (!n) return p + i;
            if (i + (int)n >= 64) break; /* runs into the next block: restart after it */
            stop &= ~(((1ull << n) - 1) << i);
        }
        if (stop) {
            /* A backslash cannot precede a multi-byte sequence here (that is a bad escape,
             * stopped on above), so no run of backslashes carries over the restart. */
            p += __builtin_ctzll(stop);
            p += sq_utf8_seq_len(p, end);
            carry = 0;
            continue;
        }
        carry = (uint64_t)carry_out;
        p += 64;
    }
    return carry ? p - 1 : p;
}
#else
void sq_jsonl_use_blocks(int on) { (void)on; }
#endif

/* One UTF-8 sequence starting at a byte >= 0x80: strict (no overlongs, no surrogates,
 * nothing above U+10FFFF). Returns its length or 0. */
size_t sq_utf8_seq_len(const uint8_t *p, const uint8_t *end) {
    uint8_t c = p[0];
    size_t n = (size_t)(end - p);
    if (c >= 0xC2 && c <= 0xDF) return n >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && p[1] < 0xA0) return 0; /* overlong */
        if (c == 0xED && p[1] >= 0xA0) return 0; /* UTF-16 surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return 0;
        if (c == 0xF0 && p[1] < 0x90) return 0; /* overlong */
        if (c == 0xF4 && p[1] >= 0x90) return 0; /* above U+10FFFF */
        return 4;
    }
    return 0;
}

static int hex4(const uint8_t *p, const uint8_t *end, unsigned *out) {
    if (end - p < 4) return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t c = p[i];
        unsigned d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return -1;
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

/* v->p is just after the opening quote. */
static int scan_string(vstate *v) {
    const uint8_t *open = v->p - 1;
    for (;;) {
#ifdef SQ_HAVE_BLOCKS
        /* Most strings are short (keys, ids): one 32-byte probe finds their end; only a
         * string longer than that pays for the 64-byte block machinery. */
        if (v->end - v->p >= 32) {
            __m256i b = _mm256_loadu_si256((const __m256i *)v->p);
            uint32_t bits = (uint32_t)_mm256_movemask_epi8(
                _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(b, _mm256_set1_epi8('"')),
                                                _mm256_cmpeq_epi8(b, _mm256_set1_epi8('\\'))),
                                _mm256_cmpgt_epi8(_mm256_set1_epi8(0x20), b)));
            if (bits) v->p += __builtin_ctz(bits);
            else v->p = skip_blocks(v->p + 32, v->end);
        }
#endif
        v->p = skip_plain(v->p, v->end);
        if (v->p >= v->end) return fail_at(v, open, "unterminated string");
        uint8_t c = *v->p;
        if (c == '"') {
            v->p++;
            return 0;
        }
        if (c == '\\') {
            if (v->end - v->p < 2) return fail_at(v, v->p, "unterminated string");
            uint8_t x = v->p[1];
            if (x == 'u') {
                unsigned u;
                if (hex4(v->p + 2, v->end, &u)) return fail_at(v, v->p, "bad \\u escape (need 4 hex digits)");
                if (u >= 0xDC00 && u <= 0xDFFF) return fail_at(v, v->p, "unpaired low surrogate escape");
                if (u >= 0xD800 && u <= 0xDBFF) {
                    unsigned lo;
                    if (v->end - v->p < 12 || v->p[6] != '\\' || v->p[7] != 'u' || hex4(v->p + 8, v->end, &lo) ||
                        lo < 0xDC00 || lo > 0xDFFF)
                        return fail_at(v, v->p, "unpaired high surrogate escape");
                    v->p += 12;
                } else {
                    v->p += 6;
                }
                continue;
            }
            if (!simple_escape[x]) return fail_at(v, v->p, "bad escape in string");
            v->p += 2;
            continue;
        }
        if (c < 0x20) return fail_at(v, v->p, c == '\n' ? "unterminated string" : "control character in string");
        /* A run of non-ASCII text (CJK, say) stays in this loop rather than re-entering
         * the block scan for every character. */
        do {
            size_t n = sq_utf8_seq_len(v->p, v->end);
            if (!n) return fail_at(v, v->p, "invalid UTF-8");
            v->p += n;
        } while (v->p < v->end && *v->p >= 0x80);
    }
}

static int scan_number(vstate *v) {
    const uint8_t *s = v->p, *p = v->p, *e = v->end;
    if (p < e && *p == '-') p++;
    if (p >= e || *p < '0' || *p > '9') return fail_at(v, s, "bad number");
    if (*p == '0') p++;
    else
        while (p < e && *p >= '0' && *p <= '9') p++;
    if (p < e && *p == '.') {
        p++;
        if (p >= e || *p < '0' || *p > '9') return fail_at(v, p, "bad number (digit expected after '.')");
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-')) p++;
        if (p >= e || *p < '0' || *p > '9') return fail_at(v, p, "bad number (digit expected in exponent)");
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    if (p - s > 63) return fail_at(v, s, "number longer than 63 characters");
    v->p = p;
    return 0;
}

static int scan_value(vstate *v, int depth);

static int scan_object(vstate *v, int depth) {
    if (depth > SQ_JSONL_MAX_DEPTH) return fail_at(v, v->p, "nesting too deep");
    v->p++; /* '{' */
    skip_ws(v);
    if (v->p < v->end && *v->p == '}') {
        v->p++;
        return 0;
    }
    for (;;) {
        if (v->p >= v->end) return fail_at(v, v->p, "unexpected end of line in object");
        if (*v->p != '"') return fail_at(v, v->p, "expected a string key");
        v->p++;
        if (scan_string(v)) return -1;
        skip_ws(v);
        if (v->p >= v->end || *v->p != ':') return fail_at(v, v->p, "expected ':' after key");
        v->p++;
        skip_ws(v);
        if (scan_value(v, depth)) return -1;
        skip_ws(v);
        if (v->p >= v->end) return fail_at(v, v->p, "unexpected end of line in object");
        if (*v->p == '}') {
            v->p++;
            return 0;
        }
        if (*v->p != ',') return fail_at(v, v->p, "expected ',' or '}'");
        v->p++;
        skip_ws(v);
    }
}

static int scan_array(vstate *v, int depth) {
    if (depth > SQ_JSONL_MAX_DEPTH) return fail_at(v, v->p, "nesting too deep");
    v->p++; /* '[' */
    skip_ws(v);
    if (v->p < v->end && *v->p == ']') {
        v->p++;
        return 0;
    }
    for (;;) {
        if (scan_value(v, depth)) return -1;
        skip_ws(v);
        if (v->p >= v->end) return fail_at(v, v->p, "unexpected end of line in array");
        if (*v->p == ']') {
            v->p++;
            return 0;
        }
        if (*v->p != ',') return fail_at(v, v->p, "expected ',' or ']'");
        v->p++;
        skip_ws(v);
    }
}

static int scan_literal(vstate *v, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(v->end - v->p) < n || memcmp(v->p, word, n)) return fail_at(v, v->p, "unexpected character");
    v->p += n;
    return 0;
}

static int scan_value(vstate *v, int depth) {
    if (v->p >= v->end) return fail_at(v, v->p, "expected a value");
    switch (*v->p) {
    case '{': return scan_object(v, depth + 1);
    case '[': return scan_array(v, depth + 1);
    case '"': v->p++; return scan_string(v);
    case 't': return scan_literal(v, "true");
    case 'f': return scan_literal(v, "false");
    case 'n': return scan_literal(v, "null");
    default:
        if (*v->p == '-' || (*v->p >= '0' && *v->p <= '9')) return scan_number(v);
        if (*v->p >= 0x80 && !sq_utf8_seq_len(v->p, v->end)) return fail_at(v, v->p, "invalid UTF-8");
        return fail_at(v, v->p, "unexpected character");
    }
}

int sq_jsonl_check_ref(const char *line, size_t len, size_t *bad_offset, const char **why) {
    vstate v = {(const uint8_t *)line, (const uint8_t *)line, (const uint8_t *)line + len, NULL, NULL};
    skip_ws(&v);
    int rc;
    if (v.p >= v.end) rc = fail_at(&v, v.p, "empty line");
    else if (*v.p != '{') rc = *v.p >= 0x80 && !sq_utf8_seq_len(v.p, v.end) ? fail_at(&v, v.p, "invalid UTF-8")
                                                                            : fail_at(&v, v.p, "a record must be a JSON object");
    else rc = scan_object(&v, 1);
    if (!rc) {
        skip_ws(&v);
        if (v.p < v.end) rc = fail_at(&v, v.p, "unexpected text after the object");
    }
    if (rc) {
        *bad_offset = (size_t)(v.at - v.start);
        *why = v.why;
        return SQ_EPARSE;
    }
    return 0;
}

int sq_jsonl_validate(const char *line, size_t len, sq_err *e) {
    size_t off;
    const char *why;
    if (sq_jsonl_check(line, len, &off, &why)) return sq_fail(e, SQ_EPARSE, "%s at byte offset %zu", why, off);
    return 0;
}
