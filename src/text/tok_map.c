/* Hash maps for the tokenizer: piece -> id and (left, right) -> merge. Open addressing with
 * linear probing; sizes are powers of two at most half full, so probes stay short. */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

uint64_t tok_hash(const void *p, size_t n) {
    /* FNV-1a folded through a final mix: cheap on the short strings pieces are. */
    const uint8_t *s = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ULL;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    return h ^ (h >> 32);
}

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

int tok_build_strmap(sq_tokenizer *t, sq_err *e) {
    free(t->map.slot);
    size_t cap = pow2_at_least((size_t)t->n_vocab * 2 + 1);
    t->map.slot = malloc(cap * sizeof(int32_t));
    if (!t->map.slot) return sq_fail(e, SQ_ENOMEM, "tokenizer: out of memory for %zu slots", cap);
    memset(t->map.slot, 0xff, cap * sizeof(int32_t));
    t->map.mask = cap - 1;
    /* Later ids win a duplicate piece only if the earlier one is empty: the first id of a
     * string is the one encoding produces, as in HF's vocab map (added tokens override). */
    for (int32_t id = 0; id < t->n_vocab; id++) {
        size_t len = t->plen[id];
        if (len == 0) continue;
        const char *s = t->pool + t->off[id];
        size_t h = tok_hash(s, len) & t->map.mask;
        for (;;) {
            int32_t o = t->map.slot[h];
            if (o < 0) {
                t->map.slot[h] = id;
                break;
            }
            if (t->plen[o] == len && !memcmp(t->pool + t->off[o], s, len)) {
                if ((t->flags[id] & TOKF_ADDED) && !(t->flags[o] & TOKF_ADDED)) t->map.slot[h] = id;
                break;
            }
            h = (h + 1) & t->map.mask;
        }
    }
    return 0;
}

int32_t tok_lookup(const sq_tokenizer *t, const char *s, size_t len) {
    if (!t->map.slot || len == 0) return -1;
    size_t h = tok_hash(s, len) & t->map.mask;
    for (;;) {
        int32_t o = t->map.slot[h];
        if (o < 0) return -1;
        if (t->plen[o] == len && !memcmp(t->pool + t->off[o], s, len)) return o;
        h = (h + 1) & t->map.mask;
    }
}

static uint64_t pair_key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }

static size_t pair_slot(uint64_t k, size_t mask) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (size_t)k & mask;
}

int tok_pairmap_init(tok_pairmap *m, size_t n) {
    size_t cap = pow2_at_least(n * 2 + 1);
    m->slot = malloc(cap * sizeof(tok_pair));
    if (!m->slot) return SQ_ENOMEM;
    for (size_t i = 0; i < cap; i++) m->slot[i].key = UINT64_MAX;
    m->mask = cap - 1;
    m->n = 0;
    return 0;
}

int tok_pairmap_put(tok_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t id) {
    if (!m->slot && tok_pairmap_init(m, 1024)) return SQ_ENOMEM;
    if ((m->n + 1) * 2 > m->mask + 1) {
        tok_pairmap bigger;
        if (tok_pairmap_init(&bigger, (m->mask + 1))) return SQ_ENOMEM;
        for (size_t i = 0; i <= m->mask; i++)
            if (m->slot[i].key != UINT64_MAX)
                tok_pairmap_put(&bigger, (int32_t)(m->slot[i].key >> 32), (int32_t)(uint32_t)m->slot[i].key,
                                m->slot[i].rank, m->slot[i].id);
        free(m->slot);
        *m = bigger;
    }
    uint64_t k = pair_key(a, b);
    size_t h = pair_slot(k, m->mask);
    while (m->slot[h].key != UINT64_MAX) {
        if (m->slot[h].key == k) return 0; /* a repeated merge keeps its first (best) rank */
        h = (h + 1) & m->mask;
    }
    m->slot[h] = (tok_pair){k, rank, id};
    m->n++;
    return 0;
}

const tok_pair *tok_pairmap_get(const tok_pairmap *m, int32_t a, int32_t b) {
    if (!m->slot) return NULL;
    uint64_t k = pair_key(a, b);
    size_t h = pair_slot(k, m->mask);
    for (;;) {
        const tok_pair *p = &m->slot[h];
        if (p->key == k) return p;
        if (p->key == UINT64_MAX) return NULL;
        h = (h + 1) & m->mask;
    }
}

/* Add one id to the piece map (training grows the vocabulary a piece at a time). */
int tok_strmap_insert(sq_tokenizer *t, int32_t id, sq_err *e) {
    if (!t->map.slot || (size_t)(t->n_vocab + 1) * 2 > t->map.mask + 1) return tok_build_strmap(t, e);
    size_t len = t->plen[id];
    const char *s = t->pool + t->off[id];
    size_t h = tok_hash(s, len) & t->map.mask;
    while (t->map.slot[h] >= 0) {
        int32_t o = t->map.slot[h];
        if (t->plen[o] == len && !memcmp(t->pool + t->off[o], s, len)) return 0;
        h = (h + 1) & t->map.mask;
    }
    t->map.slot[h] = id;
    return 0;
}
