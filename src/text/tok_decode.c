/* Decoding: every id's bytes were worked out at load time (tok_vocab.c), so decoding is
 * concatenation plus the SentencePiece rule that the very first space goes away. */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

static int skip_id(const sq_tokenizer *t, int32_t id, int flags) {
    return (flags & SQ_TOK_SKIP_SPECIAL) && (t->flags[id] & (TOKF_SPECIAL | TOKF_CONTROL));
}

int sq_tok_decode(const sq_tokenizer *t, const int32_t *ids, size_t n, int flags, char **text, size_t *len,
                  sq_err *e) {
    sq_buf b = {0};
    *text = NULL;
    if (len) *len = 0;
    if (sq_buf_reserve(&b, n * 4 + 1)) return sq_fail(e, SQ_ENOMEM, "tokenizer: out of memory");
    int started = 0; /* the leading-space rule applies to the first token that comes out */
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->n_vocab) {
            sq_buf_free(&b);
            return sq_fail(e, SQ_ERANGE, "tokenizer: id %d at position %zu is outside the vocabulary (0..%d)", id, i,
                           t->n_vocab - 1);
        }
        if (skip_id(t, id, flags)) continue;
        const char *s = t->bytes_pool + t->boff[id];
        size_t k = t->blen[id];
        if (!started && k) {
            if (t->strip_leading_space && s[0] == ' ') s++, k--;
            started = 1;
        } else if (started && t->decoder == DEC_NONE && sq_buf_append(&b, " ", 1)) {
            sq_buf_free(&b);
            return sq_fail(e, SQ_ENOMEM, "tokenizer: out of memory");
        }
        if (sq_buf_append(&b, s, k)) {
            sq_buf_free(&b);
            return sq_fail(e, SQ_ENOMEM, "tokenizer: out of memory");
        }
    }
    *text = b.data;
    if (len) *len = b.len;
    return 0;
}

struct sq_tok_stream {
    const sq_tokenizer *t;
    int flags;
    int started; /* some byte already came out (the leading-space rule is spent) */
    uint8_t held[8];
    size_t nheld;
};

int sq_tok_stream_new(sq_tok_stream **s, const sq_tokenizer *t, int flags, sq_err *e) {
    *s = calloc(1, sizeof **s);
    if (!*s) return sq_fail(e, SQ_ENOMEM, "tokenizer: out of memory");
    (*s)->t = t;
    (*s)->flags = flags;
    return 0;
}

void sq_tok_stream_free(sq_tok_stream *s) { free(s); }

static const char replacement[] = "\xEF\xBF\xBD";

int sq_tok_stream_push(sq_tok_stream *s, int32_t id, sq_buf *out, sq_err *e) {
    const sq_tokenizer *t = s->t;
    if (id < 0 || id >= t->n_vocab)
        return sq_fail(e, SQ_ERANGE, "tokenizer: id %d is outside the vocabulary (0..%d)", id, t->n_vocab - 1);
    if (skip_id(t, id, s->flags)) return 0;
    const uint8_t *p = (const uint8_t *)t->bytes_pool + t->boff[id];
    size_t k = t->blen[id];
    if (!s->started && k) {
        if (t->strip_leading_space && p[0] == ' ') p++, k--;
        s->started = 1;
    } else if (s->started && t->decoder == DEC_NONE) {
        /* with no decoder HF joins the pieces with spaces */
        if (sq_buf_append(out, " ", 1)) return sq_fail(e, SQ_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < k; i++) {
        s->held[s->nheld++] = p[i];
        /* Emit everything the held bytes settle: whole characters, and U+FFFD for a
         * subpart that can no longer become one. */
        size_t j = 0;
        while (j < s->nheld) {
            uint32_t cp;
            int n = tok_utf8_next(s->held + j, s->nheld - j, &cp);
            if (n) {
                if (sq_buf_append(out, s->held + j, (size_t)n)) return sq_fail(e, SQ_ENOMEM, "out of memory");
                j += (size_t)n;
            } else if (tok_utf8_partial(s->held + j, s->nheld - j)) {
                break;
            } else {
                if (sq_buf_append(out, replacement, 3)) return sq_fail(e, SQ_ENOMEM, "out of memory");
                j += (size_t)tok_utf8_bad_len(s->held + j, s->nheld - j);
            }
        }
        memmove(s->held, s->held + j, s->nheld - j);
        s->nheld -= j;
    }
    return 0;
}

int sq_tok_stream_flush(sq_tok_stream *s, sq_buf *out, sq_err *e) {
    int rc = 0;
    if (s->nheld && sq_buf_append(out, replacement, 3)) rc = sq_fail(e, SQ_ENOMEM, "out of memory");
    s->nheld = 0;
    s->started = 0;
    return rc;
}
