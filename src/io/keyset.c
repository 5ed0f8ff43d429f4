/* Key fingerprints and a set of them: resume (ids already written), merge (duplicate ids)
 * and dedup (field values seen) all ask "seen this string before?" over millions of keys.
 *
 * The set stores 128-bit fingerprints, not the strings, so its memory is 16 bytes per slot
 * whatever the key length. Two different keys share a fingerprint with probability about
 * n^2 / 2^129 (1e-20 for a billion keys), which we accept in exchange.
 */
#include <stdlib.h>
#include <string.h>

#include "scalequest/jsonl.h"

uint64_t sq_jsonl_shard_hash(const char *id, size_t len) {
    /* FNV-1a 64: tiny, documented everywhere, reproducible in any language. */
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)id[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static inline uint64_t mum(uint64_t a, uint64_t b) {
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t rd64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint64_t rotl(uint64_t x, int k) { return x << k | x >> (64 - k); }

/* Two 64-bit lanes of multiply-fold mixing over 16-byte blocks; the length seeds both lanes
 * so that zero padding of the tail cannot make two keys of different lengths collide. */
sq_hash128 sq_hash128_of(const void *data, size_t len) {
    const uint64_t c1 = 0xa0761d6478bd642full, c2 = 0xe7037ed1a0b428dbull, c3 = 0x8ebc6af09c88c6e3ull,
                   c4 = 0x589965cc75374cc3ull;
    const uint8_t *p = data;
    uint64_t a = c1 ^ len, b = c2 ^ rotl((uint64_t)len, 32);
    while (len >= 16) {
        uint64_t x = rd64(p), y = rd64(p + 8);
        uint64_t na = mum(x ^ a ^ c3, y ^ c4) + rotl(a, 23);
        uint64_t nb = mum(y ^ b ^ c1, x ^ c2) + rotl(b, 41);
        a = na;
        b = nb;
        p += 16;
        len -= 16;
    }
    uint8_t tail[16] = {0};
    memcpy(tail, p, len);
    uint64_t x = rd64(tail), y = rd64(tail + 8);
    a = mum(x ^ a ^ c3, y ^ c4) + rotl(a, 23);
    b = mum(y ^ b ^ c1, x ^ c2) + rotl(b, 41);
    sq_hash128 h;
    h.lo = mum(a ^ c2, b ^ c3);
    h.hi = mum(b ^ c4, a ^ c1) ^ h.lo;
    return h;
}

struct sq_keyset {
    sq_hash128 *slots; /* {0, 0} marks an empty slot */
    size_t cap, n;     /* cap is a power of two */
};

sq_keyset *sq_keyset_new(void) {
    sq_keyset *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->cap = 1024;
    s->slots = calloc(s->cap, sizeof *s->slots);
    if (!s->slots) {
        free(s);
        return NULL;
    }
    return s;
}

void sq_keyset_free(sq_keyset *s) {
    if (!s) return;
    free(s->slots);
    free(s);
}

size_t sq_keyset_size(const sq_keyset *s) { return s->n; }

static sq_hash128 fingerprint(const void *key, size_t len) {
    sq_hash128 h = sq_hash128_of(key, len);
    if (!h.lo && !h.hi) h.lo = 1; /* keep {0, 0} free to mean empty */
    return h;
}

/* Linear probing: the slot holding h, or the empty slot where it would go. */
static size_t probe(const sq_hash128 *slots, size_t cap, sq_hash128 h) {
    size_t i = (size_t)h.hi & (cap - 1);
    while ((slots[i].lo || slots[i].hi) && (slots[i].lo != h.lo || slots[i].hi != h.hi)) i = (i + 1) & (cap - 1);
    return i;
}

static int grow(sq_keyset *s) {
    size_t cap = s->cap * 2;
    sq_hash128 *slots = calloc(cap, sizeof *slots);
    if (!slots) return SQ_ENOMEM;
    for (size_t i = 0; i < s->cap; i++)
        if (s->slots[i].lo || s->slots[i].hi) slots[probe(slots, cap, s->slots[i])] = s->slots[i];
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
    return 0;
}

int sq_keyset_add(sq_keyset *s, const void *key, size_t len) {
    if ((s->n + 1) * 10 > s->cap * 7 && grow(s)) return SQ_ENOMEM;
    sq_hash128 h = fingerprint(key, len);
    size_t i = probe(s->slots, s->cap, h);
    if (s->slots[i].lo || s->slots[i].hi) return 0;
    s->slots[i] = h;
    s->n++;
    return 1;
}

int sq_keyset_has(const sq_keyset *s, const void *key, size_t len) {
    sq_hash128 h = fingerprint(key, len);
    size_t i = probe(s->slots, s->cap, h);
    return s->slots[i].lo || s->slots[i].hi;
}
