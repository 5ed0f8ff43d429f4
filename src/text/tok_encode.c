/* Encoding: repair UTF-8, cut the text at added tokens, then normalize, pre-tokenize and
 * run BPE on each piece between them — the order HF `tokenizers` uses. */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

void tok_scratch_free(tok_scratch *w) {
    free(w->sym);
    free(w->heap);
    sq_buf_free(&w->mapped);
}

typedef struct enc {
    const sq_tokenizer *t;
    tok_scratch w;
    tok_spans spans;
    sq_buf norm;
    tok_ids *out;
    sq_err *e;
} enc;

static int encode_segment(enc *c, const char *s, size_t n, int at_start) {
    if (n == 0) return 0;
    const sq_tokenizer *t = c->t;
    int rc = tok_normalize(t, s, n, at_start, &c->norm, c->e);
    if (rc < 0) return rc;
    if (rc == 0) s = c->norm.data, n = c->norm.len;
    if ((rc = tok_pretokenize(t, s, n, &c->spans, c->e))) return rc;
    for (size_t i = 0; i < c->spans.n; i += 2) {
        rc = tok_bpe_word(t, s + c->spans.v[i], c->spans.v[i + 1], &c->w, c->out);
        if (rc) return sq_fail(c->e, rc, "tokenizer: %s while encoding", sq_strerror(rc));
    }
    return 0;
}

static int is_ws(const char *s, size_t n, size_t i, int *len) {
    uint32_t cp;
    int k = tok_utf8_next((const uint8_t *)s + i, n - i, &cp);
    *len = k;
    return k && tok_is_space_cp(cp);
}

/* Length of the UTF-8 whitespace character that ends at s[end-1], or 0. */
static int ws_before(const char *s, size_t end) {
    for (int k = 1; k <= 3 && (size_t)k <= end; k++) {
        int len;
        if (is_ws(s, end, end - (size_t)k, &len) && len == k) return k;
    }
    return 0;
}

static const tok_added *match_added(const sq_tokenizer *t, const char *s, size_t n, size_t i, int parse_special) {
    for (int k = 0; k < t->n_added; k++) {
        const tok_added *a = &t->added[k];
        if (a->special && !parse_special) continue;
        if (a->len <= n - i && (uint8_t)a->content[0] == (uint8_t)s[i] && !memcmp(a->content, s + i, a->len))
            return a;
    }
    return NULL;
}

static int encode_all(const sq_tokenizer *t, const char *text, size_t len, int flags, tok_ids *out, sq_err *e) {
    if (!text && len) return sq_fail(e, SQ_EINVAL, "tokenizer: NULL text");
    sq_buf fixed = {0};
    int rc = tok_utf8_sanitize(text ? text : "", len, &fixed);
    if (rc < 0) return sq_fail(e, SQ_ENOMEM, "tokenizer: out of memory");
    if (rc == 0) text = fixed.data, len = fixed.len;
    enc c = {.t = t, .out = out, .e = e};
    rc = 0;
    int add_bos = (flags & SQ_TOK_ADD_BOS) || ((flags & SQ_TOK_ADD_SPECIAL) && t->add_bos);
    int add_eos = (flags & SQ_TOK_ADD_EOS) || ((flags & SQ_TOK_ADD_SPECIAL) && t->add_eos);
    if (add_bos && t->bos >= 0) rc = tok_ids_push(out, t->bos);
    int parse = (flags & SQ_TOK_PARSE_SPECIAL) != 0;
    uint8_t mask = parse ? 3 : 1;
    size_t seg = 0, i = 0;
    while (!rc && i < len) {
        const tok_added *a = NULL;
        if ((t->added_first[(uint8_t)text[i]] & mask) && (a = match_added(t, text, len, i, parse))) {
            size_t end = i;
            if (a->lstrip) {
                int k;
                while (end > seg && (k = ws_before(text, end)) > 0) end -= (size_t)k;
            }
            rc = encode_segment(&c, text + seg, end - seg, seg == 0);
            if (!rc) rc = tok_ids_push(out, a->id);
            i += a->len;
            if (a->rstrip) {
                int k;
                while (i < len && is_ws(text, len, i, &k)) i += (size_t)k;
            }
            seg = i;
            continue;
        }
        i++;
    }
    if (!rc) rc = encode_segment(&c, text + seg, len - seg, seg == 0);
    if (!rc && add_eos && t->eos >= 0) rc = tok_ids_push(out, t->eos);
    tok_scratch_free(&c.w);
    free(c.spans.v);
    sq_buf_free(&c.norm);
    sq_buf_free(&fixed);
    if (rc == SQ_ENOMEM && e && !e->msg[0]) sq_fail(e, rc, "tokenizer: out of memory");
    return rc;
}

int sq_tok_encode(const sq_tokenizer *t, const char *text, size_t len, int flags, int32_t **ids, size_t *n,
                  sq_err *e) {
    if (e) sq_err_clear(e);
    tok_ids out = {0};
    int rc = encode_all(t, text, len, flags, &out, e);
    if (!rc && !out.v && !(out.v = malloc(sizeof(int32_t)))) rc = sq_fail(e, SQ_ENOMEM, "tokenizer: out of memory");
    if (rc) {
        free(out.v);
        *ids = NULL;
        *n = 0;
        return rc;
    }
    *ids = out.v;
    *n = out.n;
    return 0;
}

int sq_tok_encode_buf(const sq_tokenizer *t, const char *text, size_t len, int flags, int32_t *ids, size_t cap,
                      size_t *n, sq_err *e) {
    int32_t *v;
    int rc = sq_tok_encode(t, text, len, flags, &v, n, e);
    if (rc) return rc;
    memcpy(ids, v, SQ_MIN(*n, cap) * sizeof *v);
    free(v);
    if (*n > cap) return sq_fail(e, SQ_ERANGE, "tokenizer: %zu tokens do not fit in %zu", *n, cap);
    return 0;
}

int sq_tok_count(const sq_tokenizer *t, const char *text, size_t len, int flags, size_t *n, sq_err *e) {
    int32_t *v;
    int rc = sq_tok_encode(t, text, len, flags, &v, n, e);
    if (!rc) free(v);
    return rc;
}
