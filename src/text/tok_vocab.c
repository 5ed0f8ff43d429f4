/* Building and querying the vocabulary: pieces, merges, added tokens, and the tables derived
 * from them once loading is done (lookup map, byte tokens, decoded bytes, stop tokens). */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

int tok_ids_push(tok_ids *a, int32_t x) {
    if (a->n == a->cap) {
        size_t c = a->cap ? a->cap * 2 : 64;
        int32_t *v = realloc(a->v, c * sizeof *v);
        if (!v) return SQ_ENOMEM;
        a->v = v, a->cap = c;
    }
    a->v[a->n++] = x;
    return 0;
}

sq_tokenizer *tok_new(void) {
    sq_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->unk = t->bos = t->eos = t->pad = -1;
    t->meta_char = 0x2581;
    t->decoder = DEC_NONE;
    for (int i = 0; i < 256; i++) t->byte_id[i] = -1;
    return t;
}

static int grow_vocab(sq_tokenizer *t, int32_t need) {
    if (need <= t->cap_vocab) return 0;
    int32_t c = t->cap_vocab ? t->cap_vocab : 1024;
    while (c < need) c *= 2;
    size_t *off = realloc(t->off, (size_t)c * sizeof *off);
    if (!off) return SQ_ENOMEM;
    t->off = off;
    uint32_t *plen = realloc(t->plen, (size_t)c * sizeof *plen);
    if (!plen) return SQ_ENOMEM;
    t->plen = plen;
    uint8_t *fl = realloc(t->flags, (size_t)c);
    if (!fl) return SQ_ENOMEM;
    t->flags = fl;
    for (int32_t i = t->cap_vocab; i < c; i++) off[i] = 0, plen[i] = 0, fl[i] = 0;
    if (t->scores) {
        float *sc = realloc(t->scores, (size_t)c * sizeof *sc);
        if (!sc) return SQ_ENOMEM;
        for (int32_t i = t->cap_vocab; i < c; i++) sc[i] = 0;
        t->scores = sc;
    }
    t->cap_vocab = c;
    return 0;
}

int tok_set_piece(sq_tokenizer *t, int32_t id, const char *s, size_t len) {
    if (id < 0 || id >= (1 << 24) || len >= (1u << 30)) return SQ_ERANGE;
    if (grow_vocab(t, id + 1)) return SQ_ENOMEM;
    if (t->pool_len + len + 1 > t->pool_cap) {
        size_t c = t->pool_cap ? t->pool_cap : 1 << 16;
        while (c < t->pool_len + len + 1) c *= 2;
        char *p = realloc(t->pool, c);
        if (!p) return SQ_ENOMEM;
        t->pool = p, t->pool_cap = c;
    }
    memcpy(t->pool + t->pool_len, s, len);
    t->pool[t->pool_len + len] = 0;
    t->off[id] = t->pool_len;
    t->plen[id] = (uint32_t)len;
    t->pool_len += len + 1;
    if (id >= t->n_vocab) t->n_vocab = id + 1;
    return 0;
}

int tok_add_added(sq_tokenizer *t, int32_t id, const char *s, size_t len, int special) {
    if (len == 0) return SQ_EINVAL;
    if (id >= t->n_vocab || t->plen[id] != len || memcmp(t->pool + t->off[id], s, len)) {
        int rc = tok_set_piece(t, id, s, len);
        if (rc) return rc;
    }
    tok_added *a = realloc(t->added, (size_t)(t->n_added + 1) * sizeof *a);
    if (!a) return SQ_ENOMEM;
    t->added = a;
    tok_added *x = &a[t->n_added];
    memset(x, 0, sizeof *x);
    x->id = id;
    x->content = sq_strndup(s, len);
    if (!x->content) return SQ_ENOMEM;
    x->len = len;
    x->special = special != 0;
    t->n_added++;
    t->flags[id] |= TOKF_ADDED | (special ? TOKF_SPECIAL : 0);
    return 0;
}

int tok_add_merge(sq_tokenizer *t, const char *a, size_t alen, const char *b, size_t blen,
                  int32_t rank, const char *name, sq_err *e) {
    int32_t ia = tok_lookup(t, a, alen), ib = tok_lookup(t, b, blen);
    char tmp[512];
    if (ia < 0 || ib < 0) {
        /* HF refuses such files too; say which side is missing. */
        return sq_fail(e, SQ_EPARSE, "%s: merge %d: '%.*s' is not in the vocabulary", name, rank + 1,
                       (int)SQ_MIN(ia < 0 ? alen : blen, 200), ia < 0 ? a : b);
    }
    char *buf = alen + blen <= sizeof tmp ? tmp : malloc(alen + blen);
    if (!buf) return sq_fail(e, SQ_ENOMEM, "%s: out of memory", name);
    memcpy(buf, a, alen);
    memcpy(buf + alen, b, blen);
    int32_t id = tok_lookup(t, buf, alen + blen);
    if (buf != tmp) free(buf);
    if (id < 0)
        return sq_fail(e, SQ_EPARSE, "%s: merge %d: '%.*s' + '%.*s' is not in the vocabulary", name, rank + 1,
                       (int)SQ_MIN(alen, 200), a, (int)SQ_MIN(blen, 200), b);
    if (tok_pairmap_put(&t->merges, ia, ib, rank, id)) return sq_fail(e, SQ_ENOMEM, "%s: out of memory", name);
    return 0;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* "<0xAB>" -> 0xAB, else -1 */
static int byte_piece(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return -1;
    int h = hexval(s[3]), l = hexval(s[4]);
    return h < 0 || l < 0 ? -1 : h * 16 + l;
}

/* What one token stands for, per the decoder: GPT-2 characters back to bytes (a piece with
 * a character outside the table is kept raw, as HF's ByteLevel decoder does); for
 * SentencePiece, <0xXX> to its byte and U+2581 to a space. */
static int token_bytes_of(const sq_tokenizer *t, int32_t id, sq_buf *b) {
    const char *s = t->pool + t->off[id];
    size_t n = t->plen[id];
    if (t->decoder == DEC_BYTELEVEL) {
        size_t start = b->len;
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            int k = tok_utf8_next((const uint8_t *)s + i, n - i, &cp);
            int byte = k ? tok_cp_to_byte(cp) : -1;
            if (byte < 0) {
                b->len = start;
                return sq_buf_append(b, s, n);
            }
            char c = (char)byte;
            if (sq_buf_append(b, &c, 1)) return SQ_ENOMEM;
            i += k;
        }
        return 0;
    }
    if (t->decoder == DEC_SPM) {
        int byte = byte_piece(s, n);
        if (byte >= 0) {
            char c = (char)byte;
            return sq_buf_append(b, &c, 1);
        }
        char meta[4];
        int ml = tok_utf8_put(t->meta_char, meta);
        for (size_t i = 0; i < n;) {
            if (i + ml <= n && !memcmp(s + i, meta, ml)) {
                if (sq_buf_append(b, " ", 1)) return SQ_ENOMEM;
                i += ml;
            } else {
                if (sq_buf_append(b, s + i, 1)) return SQ_ENOMEM;
                i++;
            }
        }
        return 0;
    }
    return sq_buf_append(b, s, n);
}

static int cmp_added(const void *a, const void *b) {
    const tok_added *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static const char *const eog_names[] = {"<|eot_id|>", "<|im_end|>", "<|end_of_text|>", "<|endoftext|>",
                                        "<|eom_id|>", "<end_of_turn>", "<|EOT|>", "<｜end▁of▁sentence｜>"};

int tok_finish(sq_tokenizer *t, const char *name, sq_err *e) {
    if (t->n_vocab <= 0) return sq_fail(e, SQ_EPARSE, "%s: the vocabulary is empty", name);
    int rc = tok_build_strmap(t, e);
    if (rc) return rc;
    for (int b = 0; b < 256; b++) {
        char c[4];
        t->byte_utf8[b][0] = (uint8_t)tok_utf8_put(tok_byte_to_cp((uint8_t)b), c);
        memcpy(&t->byte_utf8[b][1], c, 2);
    }
    for (int b = 0; b < 256; b++) {
        char tmp[8];
        size_t n;
        if (t->byte_level) n = (size_t)tok_utf8_put(tok_byte_to_cp((uint8_t)b), tmp);
        else n = (size_t)snprintf(tmp, sizeof tmp, "<0x%02X>", b);
        t->byte_id[b] = tok_lookup(t, tmp, n);
    }
    if (t->byte_level && t->decoder == DEC_NONE) t->decoder = DEC_BYTELEVEL;
    for (int32_t id = 0; id < t->n_vocab; id++)
        if (!t->byte_level && byte_piece(t->pool + t->off[id], t->plen[id]) >= 0) t->flags[id] |= TOKF_BYTE;

    sq_buf b = {0};
    t->boff = malloc((size_t)t->n_vocab * sizeof *t->boff);
    t->blen = malloc((size_t)t->n_vocab * sizeof *t->blen);
    if (!t->boff || !t->blen || sq_buf_reserve(&b, t->pool_len + 16)) {
        sq_buf_free(&b);
        return sq_fail(e, SQ_ENOMEM, "%s: out of memory", name);
    }
    for (int32_t id = 0; id < t->n_vocab; id++) {
        t->boff[id] = b.len;
        if (token_bytes_of(t, id, &b)) {
            sq_buf_free(&b);
            return sq_fail(e, SQ_ENOMEM, "%s: out of memory", name);
        }
        t->blen[id] = (uint32_t)(b.len - t->boff[id]);
    }
    t->bytes_pool = b.data;

    if (t->n_added) qsort(t->added, (size_t)t->n_added, sizeof *t->added, cmp_added);
    memset(t->added_first, 0, sizeof t->added_first);
    for (int i = 0; i < t->n_added; i++)
        t->added_first[(uint8_t)t->added[i].content[0]] |= t->added[i].special ? 2 : 1;

    int32_t *ids[] = {&t->bos, &t->eos, &t->pad, &t->unk};
    for (size_t i = 0; i < SQ_ARRAY_LEN(ids); i++)
        if (*ids[i] >= t->n_vocab) *ids[i] = -1;
    if (tok_build_eog(t)) return sq_fail(e, SQ_ENOMEM, "%s: out of memory", name);
    return 0;
}

int tok_build_eog(sq_tokenizer *t) {
    free(t->eog);
    t->eog = malloc((SQ_ARRAY_LEN(eog_names) + 1) * sizeof(int32_t));
    if (!t->eog) return SQ_ENOMEM;
    t->n_eog = 0;
    if (t->eos >= 0) t->eog[t->n_eog++] = t->eos;
    for (size_t i = 0; i < SQ_ARRAY_LEN(eog_names); i++) {
        int32_t id = tok_lookup(t, eog_names[i], strlen(eog_names[i]));
        if (id >= 0 && id != t->eos && (t->flags[id] & TOKF_SPECIAL)) t->eog[t->n_eog++] = id;
    }
    return 0;
}

void sq_tok_free(sq_tokenizer *t) {
    if (!t) return;
    free(t->pool);
    free(t->off);
    free(t->plen);
    free(t->flags);
    free(t->scores);
    free(t->bytes_pool);
    free(t->boff);
    free(t->blen);
    free(t->map.slot);
    free(t->merges.slot);
    for (int i = 0; i < t->n_norm; i++) free(t->norm[i].a), free(t->norm[i].b);
    tok_steps_free(t);
    for (int i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    free(t->eog);
    free(t);
}

int32_t sq_tok_vocab_size(const sq_tokenizer *t) { return t->n_vocab; }
int32_t sq_tok_bos(const sq_tokenizer *t) { return t->bos; }
int32_t sq_tok_eos(const sq_tokenizer *t) { return t->eos; }
int32_t sq_tok_pad(const sq_tokenizer *t) { return t->pad; }

int sq_tok_is_eog(const sq_tokenizer *t, int32_t id) {
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id) return 1;
    return 0;
}

int sq_tok_is_special(const sq_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab && (t->flags[id] & (TOKF_SPECIAL | TOKF_CONTROL)) != 0;
}

const char *sq_tok_piece(const sq_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) return NULL;
    if (len) *len = t->plen[id];
    return t->pool + t->off[id];
}

int32_t sq_tok_find(const sq_tokenizer *t, const char *piece, size_t len) { return tok_lookup(t, piece, len); }

int sq_tok_token_bytes(const sq_tokenizer *t, int32_t id, char *buf, size_t cap) {
    if (id < 0 || id >= t->n_vocab) return SQ_ERANGE;
    size_t n = t->blen[id];
    memcpy(buf, t->bytes_pool + t->boff[id], SQ_MIN(n, cap));
    return (int)n;
}
