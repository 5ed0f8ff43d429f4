/* Byte-level BPE training.
 *
 * The corpus is pre-tokenized line by line with the same regex the encoder uses, and the
 * distinct words are counted. Each round merges the most frequent adjacent pair (ties go to
 * the smaller id pair, so the result depends only on the text). Pair counts are updated
 * incrementally: only the words that contain the chosen pair are re-scanned, and a heap with
 * lazy deletion finds the next best pair. */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

typedef struct word {
    int32_t *s;
    int32_t n;
    int64_t count;
} word;

typedef struct pairinfo {
    int32_t a, b;
    int64_t count;
    int32_t *w; /* words that may contain the pair (duplicates and stale entries allowed) */
    int32_t nw, capw;
} pairinfo;

typedef struct pq {
    int64_t count;
    int32_t a, b;
} pq;

typedef struct trainer {
    word *words;
    int32_t nwords, capwords;
    /* word text -> index */
    int32_t *wslot;
    size_t wmask;
    char **wtext;
    uint32_t *wlen;
    /* pair -> index into pairs */
    int32_t *pslot;
    size_t pmask;
    pairinfo *pairs;
    int32_t npairs, cappairs;
    pq *heap;
    size_t nheap, capheap;
} trainer;

static int pq_better(const pq *x, const pq *y) {
    if (x->count != y->count) return x->count > y->count;
    if (x->a != y->a) return x->a < y->a;
    return x->b < y->b;
}

static int pq_push(trainer *tr, pq v) {
    if (tr->nheap == tr->capheap) {
        size_t c = tr->capheap ? tr->capheap * 2 : 1024;
        pq *h = realloc(tr->heap, c * sizeof *h);
        if (!h) return SQ_ENOMEM;
        tr->heap = h, tr->capheap = c;
    }
    size_t i = tr->nheap++;
    while (i > 0 && pq_better(&v, &tr->heap[(i - 1) / 2])) {
        tr->heap[i] = tr->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    tr->heap[i] = v;
    return 0;
}

static pq pq_pop(trainer *tr) {
    pq top = tr->heap[0], last = tr->heap[--tr->nheap];
    size_t i = 0, n = tr->nheap;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const pq *best = &last;
        if (l < n && pq_better(&tr->heap[l], best)) m = l, best = &tr->heap[l];
        if (r < n && pq_better(&tr->heap[r], best)) m = r;
        if (m == i) break;
        tr->heap[i] = tr->heap[m];
        i = m;
    }
    if (n) tr->heap[i] = last;
    return top;
}

static size_t mix64(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (size_t)k;
}

static int pair_rehash(trainer *tr) {
    size_t cap = tr->pmask ? (tr->pmask + 1) * 2 : 1 << 16;
    int32_t *slot = malloc(cap * sizeof *slot);
    if (!slot) return SQ_ENOMEM;
    memset(slot, 0xff, cap * sizeof *slot);
    for (int32_t i = 0; i < tr->npairs; i++) {
        uint64_t k = ((uint64_t)(uint32_t)tr->pairs[i].a << 32) | (uint32_t)tr->pairs[i].b;
        size_t h = mix64(k) & (cap - 1);
        while (slot[h] >= 0) h = (h + 1) & (cap - 1);
        slot[h] = i;
    }
    free(tr->pslot);
    tr->pslot = slot;
    tr->pmask = cap - 1;
    return 0;
}

/* Index of pair (a, b), created with count 0 when absent; -1 on OOM. */
static int32_t pair_get(trainer *tr, int32_t a, int32_t b) {
    if ((size_t)(tr->npairs + 1) * 2 > tr->pmask + 1 && pair_rehash(tr)) return -1;
    uint64_t k = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t h = mix64(k) & tr->pmask;
    while (tr->pslot[h] >= 0) {
        pairinfo *p = &tr->pairs[tr->pslot[h]];
        if (p->a == a && p->b == b) return tr->pslot[h];
        h = (h + 1) & tr->pmask;
    }
    if (tr->npairs == tr->cappairs) {
        int32_t c = tr->cappairs ? tr->cappairs * 2 : 4096;
        pairinfo *np = realloc(tr->pairs, (size_t)c * sizeof *np);
        if (!np) return -1;
        tr->pairs = np, tr->cappairs = c;
    }
    tr->pairs[tr->npairs] = (pairinfo){a, b, 0, NULL, 0, 0};
    tr->pslot[h] = tr->npairs;
    return tr->npairs++;
}

static int pair_add(trainer *tr, int32_t a, int32_t b, int64_t delta, int32_t wi) {
    int32_t i = pair_get(tr, a, b);
    if (i < 0) return SQ_ENOMEM;
    pairinfo *p = &tr->pairs[i];
    p->count += delta;
    if (delta > 0) {
        if (p->nw == 0 || p->w[p->nw - 1] != wi) {
            if (p->nw == p->capw) {
                int32_t c = p->capw ? p->capw * 2 : 4;
                int32_t *w = realloc(p->w, (size_t)c * sizeof *w);
                if (!w) return SQ_ENOMEM;
                p->w = w, p->capw = c;
            }
            p->w[p->nw++] = wi;
        }
        return pq_push(tr, (pq){p->count, a, b});
    }
    return 0;
}

static int word_add(trainer *tr, const char *s, size_t n) {
    if ((size_t)(tr->nwords + 1) * 2 > tr->wmask + 1) {
        size_t cap = tr->wmask ? (tr->wmask + 1) * 2 : 1 << 16;
        int32_t *slot = malloc(cap * sizeof *slot);
        if (!slot) return SQ_ENOMEM;
        memset(slot, 0xff, cap * sizeof *slot);
        for (int32_t i = 0; i < tr->nwords; i++) {
            size_t h = tok_hash(tr->wtext[i], tr->wlen[i]) & (cap - 1);
            while (slot[h] >= 0) h = (h + 1) & (cap - 1);
            slot[h] = i;
        }
        free(tr->wslot);
        tr->wslot = slot;
        tr->wmask = cap - 1;
    }
    size_t h = tok_hash(s, n) & tr->wmask;
    while (tr->wslot[h] >= 0) {
        int32_t i = tr->wslot[h];
        if (tr->wlen[i] == n && !memcmp(tr->wtext[i], s, n)) {
            tr->words[i].count++;
            return 0;
        }
        h = (h + 1) & tr->wmask;
    }
    if (tr->nwords == tr->capwords) {
        int32_t c = tr->capwords ? tr->capwords * 2 : 4096;
        word *w = realloc(tr->words, (size_t)c * sizeof *w);
        char **tx = realloc(tr->wtext, (size_t)c * sizeof *tx);
        if (w) tr->words = w;
        if (tx) tr->wtext = tx;
        uint32_t *wl = realloc(tr->wlen, (size_t)c * sizeof *wl);
        if (wl) tr->wlen = wl;
        if (!w || !tx || !wl) return SQ_ENOMEM;
        tr->capwords = c;
    }
    int32_t i = tr->nwords;
    word *w = &tr->words[i];
    w->s = malloc(n * sizeof *w->s);
    tr->wtext[i] = sq_strndup(s, n);
    if (!w->s || !tr->wtext[i]) return SQ_ENOMEM;
    for (size_t k = 0; k < n; k++) w->s[k] = (uint8_t)s[k];
    w->n = (int32_t)n;
    w->count = 1;
    tr->wlen[i] = (uint32_t)n;
    tr->wslot[h] = i;
    tr->nwords++;
    return 0;
}

static void trainer_free(trainer *tr) {
    for (int32_t i = 0; i < tr->nwords; i++) free(tr->words[i].s), free(tr->wtext[i]);
    for (int32_t i = 0; i < tr->npairs; i++) free(tr->pairs[i].w);
    free(tr->words);
    free(tr->wtext);
    free(tr->wlen);
    free(tr->wslot);
    free(tr->pslot);
    free(tr->pairs);
    free(tr->heap);
}

/* Replace every (a, b) in word wi by c, left to right, and move the pair counts. */
static int merge_word(trainer *tr, int32_t wi, int32_t a, int32_t b, int32_t c) {
    word *w = &tr->words[wi];
    int found = 0;
    for (int32_t i = 0; i + 1 < w->n; i++)
        if (w->s[i] == a && w->s[i + 1] == b) found = 1;
    if (!found) return 0;
    for (int32_t i = 0; i + 1 < w->n; i++)
        if (pair_add(tr, w->s[i], w->s[i + 1], -w->count, wi)) return SQ_ENOMEM;
    int32_t k = 0;
    for (int32_t i = 0; i < w->n; i++) {
        if (i + 1 < w->n && w->s[i] == a && w->s[i + 1] == b) {
            w->s[k++] = c;
            i++;
        } else {
            w->s[k++] = w->s[i];
        }
    }
    w->n = k;
    for (int32_t i = 0; i + 1 < w->n; i++)
        if (pair_add(tr, w->s[i], w->s[i + 1], w->count, wi)) return SQ_ENOMEM;
    return 0;
}

int sq_tok_train(const char *text, size_t len, const sq_tok_train_opts *o, sq_tokenizer **out, sq_err *e) {
    *out = NULL;
    int32_t n_special = o->n_special > 0 ? o->n_special : 0;
    if (o->vocab_size < 256 + n_special || o->vocab_size > (1 << 22))
        return sq_fail(e, SQ_EINVAL, "tokenizer-train: vocab size %d must be at least 256 + %d special tokens",
                       o->vocab_size, n_special);
    int64_t min_freq = o->min_frequency > 0 ? o->min_frequency : 2;
    sq_tokenizer *t = tok_new();
    if (!t) return sq_fail(e, SQ_ENOMEM, "out of memory");
    t->byte_level = 1;
    t->decoder = DEC_BYTELEVEL;
    int rc = tok_add_split(t, o->pattern ? o->pattern : tok_re_gpt2, 0, SPLIT_ISOLATED, 0, e);
    for (int b = 0; b < 256 && !rc; b++) {
        char tmp[4];
        rc = tok_set_piece(t, b, tmp, (size_t)tok_utf8_put(tok_byte_to_cp((uint8_t)b), tmp));
    }
    trainer tr = {0};
    sq_buf fixed = {0};
    tok_spans spans = {0};
    if (!rc && (rc = tok_utf8_sanitize(text, len, &fixed)) >= 0) {
        if (rc == 0) text = fixed.data, len = fixed.len;
        rc = 0;
    }
    sq_progress prog;
    sq_progress_start(&prog, "pre-tokenizing", (int64_t)len);
    for (size_t i = 0; i < len && !rc;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - text) + 1 : len;
        rc = tok_pretokenize(t, text + i, end - i, &spans, e);
        for (size_t k = 0; k < spans.n && !rc; k += 2) rc = word_add(&tr, text + i + spans.v[k], spans.v[k + 1]);
        sq_progress_add(&prog, (int64_t)(end - i));
        i = end;
    }
    sq_progress_finish(&prog);
    free(spans.v);
    for (int32_t wi = 0; wi < tr.nwords && !rc; wi++)
        for (int32_t i = 0; i + 1 < tr.words[wi].n && !rc; i++)
            rc = pair_add(&tr, tr.words[wi].s[i], tr.words[wi].s[i + 1], tr.words[wi].count, wi);
    if (!rc) rc = tok_build_strmap(t, e);
    int32_t target = o->vocab_size - n_special, rank = 0;
    sq_progress_start(&prog, "merging", target - 256);
    while (!rc && t->n_vocab < target && tr.nheap) {
        pq top = pq_pop(&tr);
        int32_t pi = pair_get(&tr, top.a, top.b);
        if (pi < 0) {
            rc = SQ_ENOMEM;
            break;
        }
        if (tr.pairs[pi].count != top.count) continue; /* stale heap entry */
        if (top.count < min_freq) break;
        size_t la = t->plen[top.a], lb = t->plen[top.b];
        char *merged = malloc(la + lb);
        if (!merged) {
            rc = SQ_ENOMEM;
            break;
        }
        memcpy(merged, t->pool + t->off[top.a], la);
        memcpy(merged + la, t->pool + t->off[top.b], lb);
        int32_t c = tok_lookup(t, merged, la + lb);
        if (c < 0) {
            c = t->n_vocab;
            rc = tok_set_piece(t, c, merged, la + lb);
            if (!rc) rc = tok_strmap_insert(t, c, e);
            sq_progress_add(&prog, 1);
        }
        free(merged);
        if (!rc) rc = tok_pairmap_put(&t->merges, top.a, top.b, rank++, c);
        /* merge_word may grow the pair table, so copy the word list first */
        int32_t nw = tr.pairs[pi].nw, *ws = malloc((size_t)(nw ? nw : 1) * sizeof *ws);
        if (!ws) rc = SQ_ENOMEM;
        else memcpy(ws, tr.pairs[pi].w, (size_t)nw * sizeof *ws);
        for (int32_t k = 0; k < nw && !rc; k++) rc = merge_word(&tr, ws[k], top.a, top.b, c);
        free(ws);
    }
    sq_progress_finish(&prog);
    for (int i = 0; i < n_special && !rc; i++) {
        const char *s = o->special[i];
        if (!s || !*s) rc = sq_fail(e, SQ_EINVAL, "tokenizer-train: empty special token");
        else rc = tok_add_added(t, t->n_vocab, s, strlen(s), 1);
    }
    trainer_free(&tr);
    sq_buf_free(&fixed);
    if (!rc) rc = tok_finish(t, "trained tokenizer", e);
    if (rc) {
        if (rc == SQ_ENOMEM) sq_fail(e, rc, "tokenizer-train: out of memory");
        sq_tok_free(t);
        return rc;
    }
    *out = t;
    return 0;
}
