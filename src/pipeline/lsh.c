/* The LSH band index and the fingerprint map of minhash.h: open addressing with linear
 * probing and 8-byte entries. When the number of items is known in advance the tables are
 * sized once (80% load at most) and hold nothing else; otherwise each slot also keeps the
 * high half of its key (4 more bytes) so the table can grow, by half at 80% load. */
#include <stdlib.h>
#include <string.h>

#include "scalequest/jsonl.h"
#include "scalequest/minhash.h"

typedef struct entry {
    uint32_t check; /* low 32 bits of the key's hash */
    uint32_t item;  /* item + 1; 0: empty */
} entry;

typedef struct table {
    entry *e;
    size_t cap, used;
} table;

/* Position from the high 32 bits, so the check (low bits) is independent of the slot. */
static inline size_t slot_of(uint64_t h, size_t cap) { return (size_t)(((h >> 32) * (uint64_t)cap) >> 32); }

static int table_init(table *t, size_t cap) {
    t->e = calloc(cap, sizeof *t->e);
    t->cap = cap, t->used = 0;
    return t->e ? 0 : SQ_ENOMEM;
}

static int64_t table_get(const table *t, uint64_t h) {
    size_t i = slot_of(h, t->cap);
    uint32_t c = (uint32_t)h;
    for (;;) {
        const entry *x = &t->e[i];
        if (!x->item) return -1;
        if (x->check == c) return (int64_t)x->item - 1;
        if (++i == t->cap) i = 0;
    }
}

/* The slot comes from the key's high half, which is not in the entry: growing needs it. */
typedef struct band {
    table t;
    uint32_t *hi; /* per slot: the high 32 bits of the key; NULL in a table that never grows */
} band;

static int band_init(band *b, size_t expected) {
    size_t cap = expected ? expected + expected / 4 + 64 : 1024;
    if (table_init(&b->t, cap)) return SQ_ENOMEM;
    b->hi = NULL;
    if (!expected && !(b->hi = malloc(cap * sizeof *b->hi))) return free(b->t.e), b->t.e = NULL, SQ_ENOMEM;
    return 0;
}

static int band_grow(band *b) {
    if (!b->hi) return SQ_ESTATE; /* sized for a known count, which was exceeded */
    size_t cap = b->t.cap + b->t.cap / 2;
    band nb;
    if (table_init(&nb.t, cap)) return SQ_ENOMEM;
    nb.hi = malloc(cap * sizeof *nb.hi);
    if (!nb.hi) return free(nb.t.e), SQ_ENOMEM;
    for (size_t i = 0; i < b->t.cap; i++) {
        const entry *x = &b->t.e[i];
        if (!x->item) continue;
        uint64_t h = (uint64_t)b->hi[i] << 32;
        size_t j = slot_of(h, cap);
        while (nb.t.e[j].item)
            if (++j == cap) j = 0;
        nb.t.e[j] = *x, nb.hi[j] = b->hi[i];
        nb.t.used++;
    }
    free(b->t.e);
    free(b->hi);
    *b = nb;
    return 0;
}

static int band_put(band *b, uint64_t h, uint32_t item) {
    int rc;
    if ((b->t.used + 1) * 5 > b->t.cap * 4 && (rc = band_grow(b))) return rc;
    size_t i = slot_of(h, b->t.cap);
    uint32_t c = (uint32_t)h;
    for (;;) {
        entry *x = &b->t.e[i];
        if (!x->item) break;
        if (x->check == c) return 0; /* this band value keeps its first item */
        if (++i == b->t.cap) i = 0;
    }
    b->t.e[i].check = c, b->t.e[i].item = item + 1;
    if (b->hi) b->hi[i] = (uint32_t)(h >> 32);
    b->t.used++;
    return 0;
}

struct sq_lsh {
    int bands, rows;
    band *b;
};

int sq_lsh_new(sq_lsh **out, int bands, int rows, int64_t expected, sq_err *e) {
    *out = NULL;
    sq_lsh *l = calloc(1, sizeof *l);
    if (l) l->b = calloc((size_t)bands, sizeof *l->b);
    if (!l || !l->b) return free(l), sq_fail(e, SQ_ENOMEM, "out of memory");
    l->bands = bands, l->rows = rows;
    for (int i = 0; i < bands; i++) {
        if (band_init(&l->b[i], expected > 0 ? (size_t)expected : 0))
            return sq_lsh_free(l), sq_fail(e, SQ_ENOMEM, "out of memory");
    }
    *out = l;
    return 0;
}

void sq_lsh_free(sq_lsh *l) {
    if (!l) return;
    for (int i = 0; l->b && i < l->bands; i++) free(l->b[i].t.e), free(l->b[i].hi);
    free(l->b);
    free(l);
}

/* A band's 64-bit key: its values mixed in order, and the band number, so equal values in
 * two bands are different keys (they live in different tables anyway). */
static uint64_t band_key(const uint32_t *v, int rows, int band) {
    uint64_t h = 0x9E3779B97F4A7C15ull * (uint64_t)(band + 1);
    for (int i = 0; i < rows; i++) {
        h = (h ^ v[i]) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
    }
    h *= 0xC4CEB9FE1A85EC53ull;
    return h ^ (h >> 29);
}

void sq_lsh_keys(const sq_lsh *l, const uint32_t *sig, uint64_t *keys) {
    for (int i = 0; i < l->bands; i++) keys[i] = band_key(sig + (size_t)i * l->rows, l->rows, i);
}

void sq_lsh_prefetch(const sq_lsh *l, const uint64_t *keys) {
    for (int i = 0; i < l->bands; i++) __builtin_prefetch(&l->b[i].t.e[slot_of(keys[i], l->b[i].t.cap)]);
}

int64_t sq_lsh_query_keys(const sq_lsh *l, const uint64_t *keys) {
    int64_t best = -1;
    for (int i = 0; i < l->bands; i++) {
        int64_t it = table_get(&l->b[i].t, keys[i]);
        if (it >= 0 && (best < 0 || it < best)) best = it;
    }
    return best;
}

int sq_lsh_insert_keys(sq_lsh *l, const uint64_t *keys, uint32_t item, sq_err *e) {
    for (int i = 0; i < l->bands; i++) {
        int rc = band_put(&l->b[i], keys[i], item);
        if (rc == SQ_ESTATE) return sq_fail(e, rc, "LSH index: more items than it was sized for");
        if (rc) return sq_fail(e, SQ_ENOMEM, "LSH index: out of memory");
    }
    return 0;
}

int64_t sq_lsh_query(const sq_lsh *l, const uint32_t *sig) {
    uint64_t keys[SQ_LSH_MAX_BANDS];
    sq_lsh_keys(l, sig, keys);
    sq_lsh_prefetch(l, keys);
    return sq_lsh_query_keys(l, keys);
}

int sq_lsh_insert(sq_lsh *l, const uint32_t *sig, uint32_t item, sq_err *e) {
    uint64_t keys[SQ_LSH_MAX_BANDS];
    sq_lsh_keys(l, sig, keys);
    return sq_lsh_insert_keys(l, keys, item, e);
}

size_t sq_lsh_bytes(const sq_lsh *l) {
    size_t n = 0;
    for (int i = 0; i < l->bands; i++) n += l->b[i].t.cap * (sizeof(entry) + (l->b[i].hi ? sizeof(uint32_t) : 0));
    return n;
}

/* ---- fingerprint map ------------------------------------------------------------------- */

struct sq_fpmap {
    band b;
};

int sq_fpmap_new(sq_fpmap **out, int64_t expected, sq_err *e) {
    *out = NULL;
    sq_fpmap *m = calloc(1, sizeof *m);
    if (!m || band_init(&m->b, expected > 0 ? (size_t)expected : 0)) {
        free(m);
        return sq_fail(e, SQ_ENOMEM, "out of memory");
    }
    *out = m;
    return 0;
}

void sq_fpmap_free(sq_fpmap *m) {
    if (!m) return;
    free(m->b.t.e);
    free(m->b.hi);
    free(m);
}

uint64_t sq_fpmap_key(const void *data, size_t len) {
    sq_hash128 h = sq_hash128_of(data, len);
    return h.lo ^ (h.hi * 0x9E3779B97F4A7C15ull);
}

void sq_fpmap_prefetch(const sq_fpmap *m, uint64_t key) { __builtin_prefetch(&m->b.t.e[slot_of(key, m->b.t.cap)]); }

int64_t sq_fpmap_get_key(const sq_fpmap *m, uint64_t key) { return table_get(&m->b.t, key); }

int sq_fpmap_put_key(sq_fpmap *m, uint64_t key, uint32_t item, sq_err *e) {
    int rc = band_put(&m->b, key, item);
    if (rc == SQ_ESTATE) return sq_fail(e, rc, "exact-duplicate map: more items than it was sized for");
    if (rc) return sq_fail(e, SQ_ENOMEM, "exact-duplicate map: out of memory");
    return 0;
}

int64_t sq_fpmap_get(const sq_fpmap *m, const void *data, size_t len) { return table_get(&m->b.t, sq_fpmap_key(data, len)); }

int sq_fpmap_put(sq_fpmap *m, const void *data, size_t len, uint32_t item, sq_err *e) {
    return sq_fpmap_put_key(m, sq_fpmap_key(data, len), item, e);
}

size_t sq_fpmap_bytes(const sq_fpmap *m) { return m->b.t.cap * (sizeof(entry) + (m->b.hi ? sizeof(uint32_t) : 0)); }
