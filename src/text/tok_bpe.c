/* BPE on one pre-token.
 *
 * Symbols sit in a linked array; candidate merges wait in a binary heap ordered by merge
 * rank (or, for GGUF SentencePiece vocabularies, by the merged piece's score) and then by
 * position, so each merge costs O(log n) and a 1 MB pre-token with no spaces still finishes.
 * A popped candidate is checked against the symbols it names, since earlier merges may have
 * consumed them (the same lazy-deletion rule HF and llama.cpp use, so ties break alike). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

typedef struct tok_sym {
    int32_t id, prev, next;
    uint32_t start, len; /* bytes of the word this symbol covers */
} sym;

typedef struct tok_cand {
    uint64_t key; /* priority in the high half (lower first), left position in the low half */
    int32_t right;
    int32_t aux; /* rank mode: merged id; score mode: merged byte length */
} cand;

/* One integer compare per heap step: (priority, position) packed into 64 bits. */
static uint64_t key_of(uint32_t prio, int32_t left) { return ((uint64_t)prio << 32) | (uint32_t)left; }

/* Higher score first, as an unsigned order: flip the float's bits so integers sort like -score. */
static uint32_t score_prio(float score) {
    uint32_t b;
    memcpy(&b, &score, 4);
    uint32_t asc = (b & 0x80000000u) ? ~b : (b | 0x80000000u); /* ascending in score */
    return ~asc;
}

static int cand_less(const cand *a, const cand *b) { return a->key < b->key; }

static int heap_push(tok_scratch *w, cand c) {
    if (w->nheap == w->capheap) {
        size_t cap = w->capheap ? w->capheap * 2 : 64;
        void *p = realloc(w->heap, cap * sizeof(cand));
        if (!p) return SQ_ENOMEM;
        w->heap = p, w->capheap = cap;
    }
    cand *h = w->heap;
    size_t i = w->nheap++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!cand_less(&c, &h[up])) break;
        h[i] = h[up];
        i = up;
    }
    h[i] = c;
    return 0;
}

static cand heap_pop(tok_scratch *w) {
    cand *h = w->heap;
    cand top = h[0], last = h[--w->nheap];
    size_t i = 0, n = w->nheap;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const cand *best = &last;
        if (l < n && cand_less(&h[l], best)) m = l, best = &h[l];
        if (r < n && cand_less(&h[r], best)) m = r;
        if (m == i) break;
        h[i] = h[m];
        i = m;
    }
    if (n) h[i] = last;
    return top;
}

static int sym_push(tok_scratch *w, int32_t id, uint32_t start, uint32_t len) {
    if (w->nsym == w->capsym) {
        size_t cap = w->capsym ? w->capsym * 2 : 64;
        void *p = realloc(w->sym, cap * sizeof(sym));
        if (!p) return SQ_ENOMEM;
        w->sym = p, w->capsym = cap;
    }
    sym *s = w->sym;
    int32_t i = (int32_t)w->nsym++;
    s[i] = (sym){id, i - 1, -1, start, len};
    if (i > 0) s[i - 1].next = i;
    return 0;
}

static int push_rank_pair(const sq_tokenizer *t, tok_scratch *w, int32_t l) {
    sym *s = w->sym;
    int32_t r = s[l].next;
    if (r < 0) return 0;
    const tok_pair *p = tok_pairmap_get(&t->merges, s[l].id, s[r].id);
    if (!p) return 0;
    return heap_push(w, (cand){key_of((uint32_t)p->rank, l), r, p->id});
}

/* Short words (nearly all of them): the best pair is found by scanning cached ranks, which
 * beats the heap's bookkeeping; same result, since both take the lowest (rank, position). */
#define SHORT_WORD 48
static void merge_short(const sq_tokenizer *t, tok_scratch *w) {
    sym *s = w->sym;
    int32_t rank[SHORT_WORD], into[SHORT_WORD];
    for (int32_t i = 0; i >= 0; i = s[i].next) {
        const tok_pair *p = s[i].next >= 0 ? tok_pairmap_get(&t->merges, s[i].id, s[s[i].next].id) : NULL;
        rank[i] = p ? p->rank : INT32_MAX;
        into[i] = p ? p->id : -1;
    }
    for (;;) {
        int32_t best = -1;
        for (int32_t i = 0; i >= 0; i = s[i].next)
            if (rank[i] != INT32_MAX && (best < 0 || rank[i] < rank[best])) best = i;
        if (best < 0) return;
        int32_t r = s[best].next;
        s[best].id = into[best];
        s[best].len += s[r].len;
        s[r].len = 0;
        s[best].next = s[r].next;
        if (s[r].next >= 0) s[s[r].next].prev = best;
        int32_t fix[2] = {s[best].prev, best};
        for (int k = 0; k < 2; k++) {
            int32_t i = fix[k];
            if (i < 0) continue;
            const tok_pair *p = s[i].next >= 0 ? tok_pairmap_get(&t->merges, s[i].id, s[s[i].next].id) : NULL;
            rank[i] = p ? p->rank : INT32_MAX;
            into[i] = p ? p->id : -1;
        }
    }
}

static int merge_by_rank(const sq_tokenizer *t, tok_scratch *w) {
    if (w->nsym == 0) return 0;
    if (w->nsym <= SHORT_WORD) {
        merge_short(t, w);
        return 0;
    }
    w->nheap = 0;
    for (int32_t i = 0; i + 1 < (int32_t)w->nsym; i++)
        if (push_rank_pair(t, w, i)) return SQ_ENOMEM;
    sym *s = w->sym;
    while (w->nheap) {
        cand c = heap_pop(w);
        int32_t l = (int32_t)(uint32_t)c.key, r = c.right;
        if (s[l].len == 0 || s[l].next != r || s[r].len == 0) continue;
        const tok_pair *p = tok_pairmap_get(&t->merges, s[l].id, s[r].id);
        if (!p || p->id != c.aux) continue;
        s[l].id = c.aux;
        s[l].len += s[r].len;
        s[r].len = 0;
        s[l].next = s[r].next;
        if (s[r].next >= 0) s[s[r].next].prev = l;
        if (s[l].prev >= 0 && push_rank_pair(t, w, s[l].prev)) return SQ_ENOMEM;
        if (push_rank_pair(t, w, l)) return SQ_ENOMEM;
    }
    return 0;
}

static int push_score_pair(const sq_tokenizer *t, tok_scratch *w, const char *word, int32_t l) {
    sym *s = w->sym;
    int32_t r = s[l].next;
    if (r < 0) return 0;
    uint32_t len = s[l].len + s[r].len;
    int32_t id = tok_lookup(t, word + s[l].start, len);
    if (id < 0) return 0;
    return heap_push(w, (cand){key_of(score_prio(t->scores[id]), l), r, (int32_t)len});
}

/* llama.cpp's SentencePiece merging: the best-scoring piece that two neighbours spell wins. */
static int merge_by_score(const sq_tokenizer *t, tok_scratch *w, const char *word) {
    w->nheap = 0;
    for (int32_t i = 0; i + 1 < (int32_t)w->nsym; i++)
        if (push_score_pair(t, w, word, i)) return SQ_ENOMEM;
    sym *s = w->sym;
    while (w->nheap) {
        cand c = heap_pop(w);
        int32_t l = (int32_t)(uint32_t)c.key, r = c.right;
        if (s[l].len == 0 || s[r].len == 0 || s[l].len + s[r].len != (uint32_t)c.aux) continue;
        s[l].len += s[r].len;
        s[r].len = 0;
        s[l].next = s[r].next;
        if (s[r].next >= 0) s[s[r].next].prev = l;
        if (s[l].prev >= 0 && push_score_pair(t, w, word, s[l].prev)) return SQ_ENOMEM;
        if (push_score_pair(t, w, word, l)) return SQ_ENOMEM;
    }
    return 0;
}

static int emit_bytes(const sq_tokenizer *t, const char *s, size_t n, tok_ids *out) {
    for (size_t i = 0; i < n; i++) {
        int32_t id = t->byte_id[(uint8_t)s[i]];
        if (id < 0) id = t->unk;
        if (id >= 0 && tok_ids_push(out, id)) return SQ_ENOMEM;
    }
    return 0;
}

int tok_bpe_word(const sq_tokenizer *t, const char *s, size_t n, tok_scratch *w, tok_ids *out) {
    if (n == 0) return 0;
    if (n >= UINT32_MAX / 2) return SQ_ERANGE;
    w->nsym = 0;
    const uint8_t *u = (const uint8_t *)s;
    if (t->byte_level) {
        if (t->ignore_merges) {
            sq_buf_reset(&w->mapped);
            if (sq_buf_reserve(&w->mapped, 2 * n)) return SQ_ENOMEM;
            char *m = w->mapped.data;
            for (size_t i = 0; i < n; i++) {
                const uint8_t *c = t->byte_utf8[u[i]];
                m[w->mapped.len++] = (char)c[1];
                if (c[0] == 2) m[w->mapped.len++] = (char)c[2];
            }
            int32_t id = tok_lookup(t, w->mapped.data, w->mapped.len);
            if (id >= 0) return tok_ids_push(out, id);
        }
        for (size_t i = 0; i < n; i++) {
            int32_t id = t->byte_id[u[i]];
            if (id < 0) continue; /* HF drops a byte its vocabulary cannot spell */
            if (sym_push(w, id, (uint32_t)i, 1)) return SQ_ENOMEM;
        }
        if (merge_by_rank(t, w)) return SQ_ENOMEM;
    } else if (t->use_scores) {
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            int k = tok_utf8_next(u + i, n - i, &cp);
            if (!k) k = 1;
            if (sym_push(w, -1, (uint32_t)i, (uint32_t)k)) return SQ_ENOMEM;
            i += (size_t)k;
        }
        if (merge_by_score(t, w, s)) return SQ_ENOMEM;
        for (int32_t i = 0; i >= 0 && (size_t)i < w->nsym; i = w->sym[i].next) {
            sym *y = &w->sym[i];
            int32_t id = tok_lookup(t, s + y->start, y->len);
            if (id >= 0) {
                if (tok_ids_push(out, id)) return SQ_ENOMEM;
            } else if (emit_bytes(t, s + y->start, y->len, out)) {
                return SQ_ENOMEM;
            }
        }
        return 0;
    } else {
        int nl_run = t->whole_newlines;
        for (size_t i = 0; i < n && nl_run; i++) nl_run = s[i] == '\n';
        if (t->ignore_merges || nl_run) {
            int32_t id = tok_lookup(t, s, n);
            if (id >= 0) return tok_ids_push(out, id);
        }
        /* An unknown character waits as a pending <unk> (fused with the next unknown ones)
         * and is written when the next known character arrives; byte-fallback tokens do not
         * flush it. That ordering is HF's, so ids match it exactly. */
        int32_t unk_start = -1, unk_len = 0;
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            int k = tok_utf8_next(u + i, n - i, &cp);
            if (!k) k = 1;
            int32_t id = tok_lookup(t, s + i, (size_t)k);
            if (id >= 0) {
                if (unk_start >= 0 && sym_push(w, t->unk, (uint32_t)unk_start, (uint32_t)unk_len)) return SQ_ENOMEM;
                unk_start = -1;
                if (sym_push(w, id, (uint32_t)i, (uint32_t)k)) return SQ_ENOMEM;
            } else {
                int all = t->byte_fallback;
                for (int j = 0; j < k && all; j++) all = t->byte_id[u[i + j]] >= 0;
                if (all) {
                    for (int j = 0; j < k; j++)
                        if (sym_push(w, t->byte_id[u[i + j]], (uint32_t)(i + j), 1)) return SQ_ENOMEM;
                } else if (t->unk >= 0) {
                    if (unk_start >= 0 && t->fuse_unk) {
                        unk_len += k;
                    } else {
                        if (unk_start >= 0 && sym_push(w, t->unk, (uint32_t)unk_start, (uint32_t)unk_len))
                            return SQ_ENOMEM;
                        unk_start = (int32_t)i, unk_len = k;
                    }
                }
            }
            i += (size_t)k;
        }
        if (unk_start >= 0 && sym_push(w, t->unk, (uint32_t)unk_start, (uint32_t)unk_len)) return SQ_ENOMEM;
        if (merge_by_rank(t, w)) return SQ_ENOMEM;
    }
    for (int32_t i = w->nsym ? 0 : -1; i >= 0; i = w->sym[i].next)
        if (tok_ids_push(out, w->sym[i].id)) return SQ_ENOMEM;
    return 0;
}
