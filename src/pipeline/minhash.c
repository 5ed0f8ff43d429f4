/* MinHash signatures of normalised text (minhash.h): normalisation, shingle hashing, the
 * datasketch "affine32" permutations, and the (bands, rows) choice for a threshold. */
#include "scalequest/minhash.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct sq_minhasher {
    sq_minhash_params p;
    uint32_t *a, *b;       /* num_perm each */
    uint32_t *hashes;      /* scratch: shingle hashes */
    uint32_t *spans;       /* scratch: offset, length per shingle */
    uint32_t *starts;      /* scratch: unit start offsets */
    size_t hcap, scap, ucap;
};

void sq_minhash_params_default(sq_minhash_params *p) {
    memset(p, 0, sizeof *p);
    p->kind = SQ_SHINGLE_WORD;
    p->ngram = 2;
    p->num_perm = 128;
    p->threshold = 0.6;
    p->seed = 1;
}

int sq_shingle_kind_parse(const char *s) {
    if (!strcmp(s, "word")) return SQ_SHINGLE_WORD;
    if (!strcmp(s, "char")) return SQ_SHINGLE_CHAR;
    return -1;
}

/* The false-positive area (Jaccard 0..threshold) and false-negative area (threshold..1) of
 * every (bands, rows) with bands * rows <= num_perm, by composite Simpson; for a fixed row
 * count the powers over bands are a running product, so this costs one pow per point and
 * row count. err[(b-1) * num_perm + (r-1)] gets the sum. */
static void areas(double threshold, int num_perm, double *err) {
    enum { N = 400 };
    double *acc = calloc((size_t)num_perm + 1, sizeof *acc);
    if (!acc) return;
    for (int r = 1; r <= num_perm; r++) {
        int maxb = num_perm / r;
        for (int b = 1; b <= maxb; b++) acc[b] = 0;
        for (int side = 0; side < 2; side++) {
            double lo = side ? threshold : 0.0, hi = side ? 1.0 : threshold, h = (hi - lo) / N;
            for (int i = 0; i <= N; i++) {
                double sv = lo + h * i, q = 1.0 - pow(sv, r), qb = 1.0;
                double w = (i == 0 || i == N ? 1 : (i & 1) ? 4 : 2) * h / 3;
                for (int b = 1; b <= maxb; b++) {
                    qb *= q; /* (1 - s^r)^b: the chance no band matches */
                    acc[b] += w * (side ? qb : 1.0 - qb);
                }
            }
        }
        for (int b = 1; b <= maxb; b++) err[(size_t)(b - 1) * num_perm + (r - 1)] = acc[b];
    }
    free(acc);
}

void sq_minhash_optimal_bands(double threshold, int num_perm, int *bands, int *rows) {
    *bands = 1, *rows = 1;
    double *err = malloc(sizeof *err * (size_t)num_perm * (size_t)num_perm);
    if (!err) return;
    areas(threshold, num_perm, err);
    double best = INFINITY;
    /* datasketch's order (bands outer, rows inner, first strictly smaller wins) for its ties */
    for (int b = 1; b <= num_perm; b++)
        for (int r = 1; r <= num_perm / b; r++) {
            double x = err[(size_t)(b - 1) * num_perm + (r - 1)];
            if (x < best) best = x, *bands = b, *rows = r;
        }
    free(err);
}

int sq_minhash_params_resolve(sq_minhash_params *p, sq_err *e) {
    if (p->kind != SQ_SHINGLE_WORD && p->kind != SQ_SHINGLE_CHAR) return sq_fail(e, SQ_EINVAL, "unknown shingle kind");
    if (p->ngram < 1 || p->ngram > 64) return sq_fail(e, SQ_EINVAL, "n-gram size %d out of range 1..64", p->ngram);
    if (p->num_perm < 1 || p->num_perm > 1024)
        return sq_fail(e, SQ_EINVAL, "number of permutations %d out of range 1..1024", p->num_perm);
    if (!(p->threshold > 0 && p->threshold < 1)) return sq_fail(e, SQ_EINVAL, "threshold must be in (0, 1)");
    if (p->bands == 0 && p->rows == 0) sq_minhash_optimal_bands(p->threshold, p->num_perm, &p->bands, &p->rows);
    if (p->bands < 1 || p->rows < 1 || (int64_t)p->bands * p->rows > p->num_perm)
        return sq_fail(e, SQ_EINVAL, "bands %d x rows %d must be positive and at most the %d permutations", p->bands,
                       p->rows, p->num_perm);
    return 0;
}

/* 0: separator; else the byte as it stands in the normal form. */
static unsigned char NORM[256];
static void norm_table(void) {
    if (NORM['a']) return;
    for (int c = 0; c < 256; c++) {
        unsigned char v = 0;
        if (c >= 'a' && c <= 'z') v = (unsigned char)c;
        if (c >= 'A' && c <= 'Z') v = (unsigned char)(c - 'A' + 'a');
        if (c >= '0' && c <= '9') v = (unsigned char)c;
        if (c >= 0x80) v = (unsigned char)c;
        NORM[c] = v;
    }
}

int sq_text_normalize(const char *text, size_t len, sq_buf *out) {
    norm_table();
    sq_buf_reset(out);
    if (sq_buf_reserve(out, len + 1)) return 0;
    char *d = out->data;
    size_t o = 0;
    int words = 0, in_word = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char v = NORM[(unsigned char)text[i]];
        if (v) {
            if (!in_word) {
                if (words) d[o++] = ' ';
                words++, in_word = 1;
            }
            d[o++] = (char)v;
        } else {
            in_word = 0;
        }
    }
    d[o] = 0;
    out->len = o;
    return words;
}

static inline uint64_t rd64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

uint32_t sq_shingle_hash(const void *s, size_t n) {
    const unsigned char *p = s;
    const uint64_t k1 = 0x9E3779B97F4A7C15ull, k2 = 0xD6E8FEB86659FD93ull;
    uint64_t h = 0x243F6A8885A308D3ull ^ (n * k1);
    while (n >= 8) {
        h = (h ^ rd64(p)) * k2;
        h ^= h >> 32;
        p += 8, n -= 8;
    }
    uint64_t t = 0;
    for (size_t i = 0; i < n; i++) t |= (uint64_t)p[i] << (8 * i);
    h = (h ^ t ^ ((uint64_t)n << 59)) * k1;
    h ^= h >> 29;
    h *= k2;
    h ^= h >> 32;
    return (uint32_t)h;
}

/* splitmix64: the permutations' generator (ours; datasketch is given them). */
static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int sq_minhasher_new(sq_minhasher **out, const sq_minhash_params *p, sq_err *e) {
    *out = NULL;
    sq_minhash_params q = *p;
    int rc = sq_minhash_params_resolve(&q, e);
    if (rc) return rc;
    sq_minhasher *m = calloc(1, sizeof *m);
    if (!m) return sq_fail(e, SQ_ENOMEM, "out of memory");
    m->p = q;
    m->a = malloc(sizeof *m->a * (size_t)q.num_perm);
    m->b = malloc(sizeof *m->b * (size_t)q.num_perm);
    if (!m->a || !m->b) return sq_minhasher_free(m), sq_fail(e, SQ_ENOMEM, "out of memory");
    uint64_t s = q.seed;
    for (int i = 0; i < q.num_perm; i++) {
        uint64_t v = splitmix(&s);
        m->a[i] = (uint32_t)v | 1u; /* odd: a bijection mod 2^32 */
        m->b[i] = (uint32_t)(v >> 32);
    }
    *out = m;
    return 0;
}

void sq_minhasher_free(sq_minhasher *m) {
    if (!m) return;
    free(m->a);
    free(m->b);
    free(m->hashes);
    free(m->spans);
    free(m->starts);
    free(m);
}

const sq_minhash_params *sq_minhasher_params(const sq_minhasher *m) { return &m->p; }

void sq_minhasher_perms(const sq_minhasher *m, const uint32_t **a, const uint32_t **b) {
    *a = m->a;
    *b = m->b;
}

static int grow(uint32_t **v, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    uint32_t *nv = realloc(*v, c * sizeof *nv);
    if (!nv) return SQ_ENOMEM;
    *v = nv, *cap = c;
    return 0;
}

int sq_minhash_shingles(sq_minhasher *m, const char *norm, size_t len, const uint32_t **hashes,
                        const uint32_t **spans) {
    /* The start of every unit (word or code point), then one past the end of the last. */
    if (grow(&m->starts, &m->ucap, len + 2)) return SQ_ENOMEM;
    size_t units = 0;
    if (m->p.kind == SQ_SHINGLE_WORD) {
        for (size_t i = 0; i < len; i++)
            if (i == 0 || norm[i - 1] == ' ') m->starts[units++] = (uint32_t)i;
        m->starts[units] = (uint32_t)len + 1; /* as if a space followed the last word */
    } else {
        for (size_t i = 0; i < len; i++)
            if (i == 0 || ((unsigned char)norm[i] & 0xC0) != 0x80) m->starts[units++] = (uint32_t)i; /* (invalid UTF-8 too) */
        m->starts[units] = (uint32_t)len;
    }
    size_t n = (size_t)m->p.ngram;
    size_t count = units == 0 ? 0 : units < n ? 1 : units - n + 1;
    if (grow(&m->hashes, &m->hcap, count + 1) || grow(&m->spans, &m->scap, 2 * (count + 1))) return SQ_ENOMEM;
    int word = m->p.kind == SQ_SHINGLE_WORD;
    for (size_t k = 0; k < count; k++) {
        size_t end = k + n < units ? k + n : units;
        uint32_t off = m->starts[k], l = m->starts[end] - off - (word ? 1 : 0);
        m->hashes[k] = sq_shingle_hash(norm + off, l);
        m->spans[2 * k] = off, m->spans[2 * k + 1] = l;
    }
    *hashes = m->hashes;
    if (spans) *spans = m->spans;
    return (int)count;
}

static inline uint32_t fmix32(uint32_t h) {
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    return h;
}

/* Why blocks of 64 permutations: the block's a, b and running minima stay in vector registers
 * while every shingle passes through, instead of a load and store of the whole signature per
 * shingle. Integer min is exact, so the order changes nothing. */
enum { SIGN_BLOCK = 64 };

static void sign_block(const uint32_t *restrict a, const uint32_t *restrict b, const uint32_t *restrict fh, int n,
                       uint32_t *restrict sig) {
    uint32_t acc[SIGN_BLOCK], aa[SIGN_BLOCK], bb[SIGN_BLOCK];
    for (int i = 0; i < SIGN_BLOCK; i++) acc[i] = UINT32_MAX, aa[i] = a[i], bb[i] = b[i];
    for (int k = 0; k < n; k++) {
        uint32_t h = fh[k];
#pragma omp simd
        for (int i = 0; i < SIGN_BLOCK; i++) {
            uint32_t v = aa[i] * h + bb[i];
            acc[i] = v < acc[i] ? v : acc[i];
        }
    }
    for (int i = 0; i < SIGN_BLOCK; i++) sig[i] = acc[i];
}

void sq_minhash_sign(const sq_minhasher *m, const uint32_t *hashes, int n, uint32_t *sig) {
    const int np = m->p.num_perm;
    const uint32_t *restrict a = m->a, *restrict b = m->b;
    uint32_t local[256], *fh = n <= 256 ? local : malloc(sizeof *fh * (size_t)n);
    int i0 = 0;
    if (fh) {
        for (int k = 0; k < n; k++) fh[k] = fmix32(hashes[k]);
        for (; i0 + SIGN_BLOCK <= np; i0 += SIGN_BLOCK) sign_block(a + i0, b + i0, fh, n, sig + i0);
    }
    /* the tail of the permutations (and the fallback without memory for fh) */
    for (int i = i0; i < np; i++) sig[i] = UINT32_MAX;
    for (int k = 0; k < n && i0 < np; k++) {
        uint32_t h = fmix32(hashes[k]);
#pragma omp simd
        for (int i = i0; i < np; i++) {
            uint32_t v = a[i] * h + b[i];
            sig[i] = v < sig[i] ? v : sig[i];
        }
    }
    if (fh != local) free(fh);
}

int sq_minhash_of_norm(sq_minhasher *m, const char *norm, size_t len, uint32_t *sig) {
    const uint32_t *h;
    int n = sq_minhash_shingles(m, norm, len, &h, NULL);
    if (n < 0) return n;
    sq_minhash_sign(m, h, n, sig);
    return n;
}

double sq_minhash_jaccard(const uint32_t *a, const uint32_t *b, int num_perm) {
    int eq = 0;
    for (int i = 0; i < num_perm; i++) eq += a[i] == b[i];
    return num_perm ? (double)eq / num_perm : 0.0;
}
