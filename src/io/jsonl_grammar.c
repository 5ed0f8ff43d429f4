/* Stage 2 of the two-stage JSONL validator: the grammar over structural positions.
 *
 * Stage 1 (jsonl_simd.c) has already checked everything inside strings (escapes, control
 * bytes, UTF-8) and everything that is not allowed outside them, and hands over only the
 * positions where the grammar has a decision to make: { } [ ] : , the opening quote of each
 * string and the first byte of each number or literal. A 1.3 KB record has about 40 of
 * them, so this walk costs little however long the strings are.
 *
 * Only the verdict matters here: a refused line is explained again by the reference
 * validator, which has the exact reason and offset. The rules are the reference's, so the
 * verdicts agree (the fuzzer checks it on every input).
 */
#include <string.h>

#include "jsonl_internal.h"

enum {
    G_OPEN,      /* before the record's '{' */
    G_OBJ_FIRST, /* after '{': a key or '}' */
    G_KEY,       /* after ',' in an object: a key */
    G_COLON,     /* after a key */
    G_VALUE,     /* after ':' or after ',' in an array */
    G_ARR_FIRST, /* after '[': a value or ']' */
    G_AFTER,     /* after a value: ',' or the closer of the innermost container */
    G_DONE,      /* the record is closed: nothing more may follow */
};

/* Bytes that may follow a number or literal directly. Anything else glued to a token
 * ("1x", "truex", "1-2") makes the line invalid, as it does for the reference scanner. */
static const uint8_t ends_token[256] = {[' '] = 1, ['\t'] = 1, ['\r'] = 1, ['\n'] = 1, [','] = 1, [':'] = 1,
                                        ['{'] = 1, ['}'] = 1,  ['['] = 1,  [']'] = 1,  ['"'] = 1};

static inline int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

/* End of the RFC 8259 number at p, or NULL. Longer than 63 characters is refused, as by the
 * reference: cJSON copies a number into a 64-byte buffer. */
static const uint8_t *number_end(const uint8_t *p, const uint8_t *e) {
    const uint8_t *s = p;
    if (*p == '-') p++;
    if (p >= e || !is_digit(*p)) return NULL;
    if (*p == '0') p++;
    else
        while (p < e && is_digit(*p)) p++;
    if (p < e && *p == '.') {
        p++;
        if (p >= e || !is_digit(*p)) return NULL;
        while (p < e && is_digit(*p)) p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-')) p++;
        if (p >= e || !is_digit(*p)) return NULL;
        while (p < e && is_digit(*p)) p++;
    }
    return p - s > 63 ? NULL : p;
}

static int scalar_ok(const uint8_t *line, size_t len, size_t at) {
    const uint8_t *p = line + at, *e = line + len;
    size_t left = len - at;
    switch (*p) {
    case 't': p = left >= 4 && !memcmp(p, "true", 4) ? p + 4 : NULL; break;
    case 'f': p = left >= 5 && !memcmp(p, "false", 5) ? p + 5 : NULL; break;
    case 'n': p = left >= 4 && !memcmp(p, "null", 4) ? p + 4 : NULL; break;
    default: p = number_end(p, e); break;
    }
    return p && (p == e || ends_token[*p]);
}

void sq_jsonl_grammar_init(sq_jsonl_grammar *g) {
    g->state = G_OPEN;
    g->depth = 0;
}

int sq_jsonl_grammar_done(const sq_jsonl_grammar *g) { return g->state == G_DONE; }

int sq_jsonl_grammar_feed(sq_jsonl_grammar *g, const uint8_t *line, size_t len, const uint32_t *pos, size_t n) {
    int state = g->state, depth = g->depth;
    for (size_t k = 0; k < n; k++) {
        uint8_t c = line[pos[k]];
        switch (state) {
        case G_OPEN:
            if (c != '{') return -1;
            g->stack[depth = 1] = '{';
            state = G_OBJ_FIRST;
            continue;
        case G_OBJ_FIRST:
            if (c == '}') break; /* closes below */
            /* fall through */
        case G_KEY:
            if (c != '"') return -1;
            state = G_COLON;
            continue;
        case G_COLON:
            if (c != ':') return -1;
            state = G_VALUE;
            continue;
        case G_ARR_FIRST:
            if (c == ']') break;
            /* fall through */
        case G_VALUE:
            if (c == '{' || c == '[') {
                if (++depth > SQ_JSONL_MAX_DEPTH) return -1;
                g->stack[depth] = c;
                state = c == '{' ? G_OBJ_FIRST : G_ARR_FIRST;
            } else if (c == '"') {
                state = G_AFTER; /* the string itself was checked by stage 1 */
            } else {
                if (c == ',' || c == ':' || c == '}' || c == ']' || !scalar_ok(line, len, pos[k])) return -1;
                state = G_AFTER;
            }
            continue;
        case G_AFTER:
            if (c == ',') {
                state = g->stack[depth] == '{' ? G_KEY : G_VALUE;
                continue;
            }
            if (c != '}' && c != ']') return -1;
            break;
        default: return -1; /* G_DONE: text after the record */
        }
        /* c closes a container: it must match the innermost one. */
        if (c != (g->stack[depth] == '{' ? '}' : ']')) return -1;
        state = --depth ? G_AFTER : G_DONE;
    }
    g->state = state;
    g->depth = depth;
    return 0;
}
