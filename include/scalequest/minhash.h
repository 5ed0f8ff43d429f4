/* minhash — text normalisation, shingles, MinHash signatures and an LSH index: the
 * near-duplicate machinery under `dedup` and `decontaminate`.
 *
 * Normalisation (what "exact after normalisation" compares): ASCII letters are lower-cased,
 * every ASCII byte that is not a letter or digit separates words, bytes >= 0x80 (non-ASCII
 * UTF-8) belong to words unchanged; the normal form is the words joined by single spaces.
 *
 * Shingles are taken from the normal form: word n-grams (the n words and their single spaces)
 * or character n-grams (n UTF-8 code points, spaces included). A text with fewer than n units
 * has one shingle, the whole normal form; an empty normal form has none.
 *
 * Signatures follow datasketch 2.0.0's default "affine32" scheme, so its MinHash given the same
 * 32-bit shingle hashes and permutations gives the same values: each shingle hash h is mixed
 * once by MurmurHash3's 32-bit finaliser, then permutation i maps it to a[i]*h + b[i] mod 2^32
 * (a[i] odd); the signature is the minimum per permutation (2^32-1 when there are no shingles).
 * Our permutations come from our own seeded generator (sq_minhasher_perms exposes them).
 *
 * LSH: the first bands*rows values split into `bands` bands of `rows`; two signatures are
 * candidates when some band is equal. Bands are stored as 64-bit hashes in one open-addressing
 * table per band (8 bytes an entry: a 32-bit check and the item number), so a false band match
 * needs two different bands to agree on a 64-bit hash within one probe run (about 1 in 2^32 per
 * probed entry). sq_minhash_optimal_bands picks (bands, rows) for a threshold as datasketch's
 * MinHashLSH does (least false-positive plus false-negative area).
 *
 * Ownership: sq_minhasher_new / sq_minhasher_free and sq_lsh_new / sq_lsh_free; the shingle
 * hashes a minhasher hands out live in it until its next call.
 */
#ifndef SCALEQUEST_MINHASH_H
#define SCALEQUEST_MINHASH_H

#include <stddef.h>
#include <stdint.h>

#include "scalequest/base.h"

typedef enum { SQ_SHINGLE_WORD = 0, SQ_SHINGLE_CHAR = 1 } sq_shingle_kind;

typedef struct sq_minhash_params {
    sq_shingle_kind kind; /* default word */
    int ngram;            /* default 2 (word) */
    int num_perm;         /* default 128 */
    double threshold;     /* Jaccard threshold the bands are tuned for (default 0.6) */
    int bands, rows;      /* 0: chosen from threshold and num_perm */
    uint64_t seed;        /* permutations (default 1) */
} sq_minhash_params;

void sq_minhash_params_default(sq_minhash_params *p);
/* Check ranges and fill bands/rows when 0. */
int sq_minhash_params_resolve(sq_minhash_params *p, sq_err *e);
/* datasketch's _optimal_param with equal weights. */
void sq_minhash_optimal_bands(double threshold, int num_perm, int *bands, int *rows);
/* "word", "char" -> kind; -1 when neither. */
int sq_shingle_kind_parse(const char *s);

/* The normal form of text into out (reset first); returns the number of words. */
int sq_text_normalize(const char *text, size_t len, sq_buf *out);

/* The 32-bit hash of one shingle's bytes (before the finaliser). */
uint32_t sq_shingle_hash(const void *s, size_t n);

typedef struct sq_minhasher sq_minhasher;

int sq_minhasher_new(sq_minhasher **m, const sq_minhash_params *p, sq_err *e);
void sq_minhasher_free(sq_minhasher *m);
const sq_minhash_params *sq_minhasher_params(const sq_minhasher *m);
void sq_minhasher_perms(const sq_minhasher *m, const uint32_t **a, const uint32_t **b);

/* Shingle hashes of a normal form (valid until the next call); returns their count (with
 * repeats) or SQ_ENOMEM. When spans is not NULL it receives, per shingle, the byte offset and
 * length in norm (valid as long as the hashes). */
int sq_minhash_shingles(sq_minhasher *m, const char *norm, size_t len, const uint32_t **hashes,
                        const uint32_t **spans);
/* The signature (num_perm values) of n shingle hashes. */
void sq_minhash_sign(const sq_minhasher *m, const uint32_t *hashes, int n, uint32_t *sig);
/* Shingle then sign a normal form; returns the shingle count (0: sig is all 2^32-1). */
int sq_minhash_of_norm(sq_minhasher *m, const char *norm, size_t len, uint32_t *sig);
/* The fraction of equal values: the Jaccard estimate. */
double sq_minhash_jaccard(const uint32_t *a, const uint32_t *b, int num_perm);

typedef struct sq_lsh sq_lsh;

/* expected > 0: at most that many items will be inserted (the tables are sized once and
 * smaller); 0: unknown (they grow). */
int sq_lsh_new(sq_lsh **l, int bands, int rows, int64_t expected, sq_err *e);
void sq_lsh_free(sq_lsh *l);
/* The smallest item number stored under any band of sig, or -1. */
int64_t sq_lsh_query(const sq_lsh *l, const uint32_t *sig);
/* Store item under each band of sig (a band already present keeps its first item). */
int sq_lsh_insert(sq_lsh *l, const uint32_t *sig, uint32_t item, sq_err *e);
/* The same in steps, so a caller can start the memory reads of one question (prefetch) while
 * it settles the one before: the bands' keys (`bands` of them, at most SQ_LSH_MAX_BANDS), a
 * prefetch of their slots (a hint only), then query or insert by keys. */
#define SQ_LSH_MAX_BANDS 1024
void sq_lsh_keys(const sq_lsh *l, const uint32_t *sig, uint64_t *keys);
void sq_lsh_prefetch(const sq_lsh *l, const uint64_t *keys);
int64_t sq_lsh_query_keys(const sq_lsh *l, const uint64_t *keys);
int sq_lsh_insert_keys(sq_lsh *l, const uint64_t *keys, uint32_t item, sq_err *e);
size_t sq_lsh_bytes(const sq_lsh *l);

/* A map from 128-bit fingerprints to item numbers (the exact-duplicate test). */
typedef struct sq_fpmap sq_fpmap;
int sq_fpmap_new(sq_fpmap **m, int64_t expected, sq_err *e); /* expected as for sq_lsh_new */
void sq_fpmap_free(sq_fpmap *m);
/* The item stored under the fingerprint of data, or -1. */
int64_t sq_fpmap_get(const sq_fpmap *m, const void *data, size_t len);
/* Store item unless the key is present (then nothing changes). */
int sq_fpmap_put(sq_fpmap *m, const void *data, size_t len, uint32_t item, sq_err *e);
/* The same by key (sq_fpmap_key of the data), with a prefetch of its slot (a hint only). */
uint64_t sq_fpmap_key(const void *data, size_t len);
void sq_fpmap_prefetch(const sq_fpmap *m, uint64_t key);
int64_t sq_fpmap_get_key(const sq_fpmap *m, uint64_t key);
int sq_fpmap_put_key(sq_fpmap *m, uint64_t key, uint32_t item, sq_err *e);
size_t sq_fpmap_bytes(const sq_fpmap *m);

#endif
