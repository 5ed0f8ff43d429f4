/* gguf — GGUF v2/v3 reader over a read-only buffer (an mmap'd file or caller memory).
 *
 * Every read goes through a cursor that checks the remaining length first, so a truncated
 * or hostile file stops with "name: offset N: what" instead of reading past the end. Counts
 * read from the file are bounded by the bytes left before anything is allocated, which
 * keeps a 20-byte file from asking for terabytes.
 */
#include <stdlib.h>
#include <string.h>

#include "scalequest/gguf.h"

#include "gguf_internal.h"

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_NESTING       8

typedef struct cursor {
    const uint8_t *p;
    size_t len, off;
    const char *name;
    sq_err *e;
} cursor;

static int need(cursor *c, size_t n, const char *what) {
    if (n > c->len - c->off)
        return sq_fail(c->e, SQ_EPARSE, "%s: offset %zu: truncated reading %s (%zu bytes needed, %zu left)",
                       c->name, c->off, what, n, c->len - c->off);
    return 0;
}

static int rd_u32(cursor *c, uint32_t *v, const char *what) {
    int rc = need(c, 4, what);
    if (rc) return rc;
    memcpy(v, c->p + c->off, 4);
    c->off += 4;
    return 0;
}

static int rd_u64(cursor *c, uint64_t *v, const char *what) {
    int rc = need(c, 8, what);
    if (rc) return rc;
    memcpy(v, c->p + c->off, 8);
    c->off += 8;
    return 0;
}

static int rd_str(cursor *c, sq_gguf_str *s, const char *what) {
    uint64_t n;
    size_t at = c->off;
    int rc = rd_u64(c, &n, what);
    if (rc) return rc;
    if (n > c->len - c->off)
        return sq_fail(c->e, SQ_EPARSE, "%s: offset %zu: %s has length %llu but only %zu bytes remain",
                       c->name, at, what, (unsigned long long)n, c->len - c->off);
    s->ptr = (const char *)(c->p + c->off);
    s->len = n;
    c->off += (size_t)n;
    return 0;
}

size_t sq_gguf_scalar_size(uint32_t t) {
    switch (t) {
    case SQ_GGUF_U8:
    case SQ_GGUF_I8:
    case SQ_GGUF_BOOL: return 1;
    case SQ_GGUF_U16:
    case SQ_GGUF_I16: return 2;
    case SQ_GGUF_U32:
    case SQ_GGUF_I32:
    case SQ_GGUF_F32: return 4;
    case SQ_GGUF_U64:
    case SQ_GGUF_I64:
    case SQ_GGUF_F64: return 8;
    default: return 0;
    }
}

/* Skip over one value of type t at the cursor, checking everything inside it. */
static int skip_value(cursor *c, uint32_t t, int depth, const char *what);

static int skip_array(cursor *c, uint32_t *elem, uint64_t *n, int depth, const char *what) {
    size_t at = c->off;
    int rc = rd_u32(c, elem, what);
    if (!rc) rc = rd_u64(c, n, what);
    if (rc) return rc;
    if (*elem > SQ_GGUF_F64)
        return sq_fail(c->e, SQ_EPARSE, "%s: offset %zu: %s: unknown array element type %u", c->name, at,
                       what, *elem);
    if (*elem == SQ_GGUF_ARRAY && depth >= GGUF_MAX_NESTING)
        return sq_fail(c->e, SQ_EPARSE, "%s: offset %zu: %s: arrays nested deeper than %d", c->name, at, what,
                       GGUF_MAX_NESTING);
    size_t es = sq_gguf_scalar_size(*elem);
    if (es) {
        if (*n > (c->len - c->off) / es)
            return sq_fail(c->e, SQ_EPARSE, "%s: offset %zu: %s: array of %llu elements overruns the file",
                           c->name, at, what, (unsigned long long)*n);
        c->off += (size_t)*n * es;
        return 0;
    }
    /* Strings take at least 8 bytes each, nested arrays 12: bound the count before looping. */
    size_t min = *elem == SQ_GGUF_STRING ? 8 : 12;
    if (*n > (c->len - c->off) / min)
        return sq_fail(c->e, SQ_EPARSE, "%s: offset %zu: %s: array of %llu elements overruns the file",
                       c->name, at, what, (unsigned long long)*n);
    for (uint64_t i = 0; i < *n; i++) {
        rc = skip_value(c, *elem, depth + 1, what);
        if (rc) return rc;
    }
    return 0;
}

static int skip_value(cursor *c, uint32_t t, int depth, const char *what) {
    if (t == SQ_GGUF_STRING) {
        sq_gguf_str s;
        return rd_str(c, &s, what);
    }
    if (t == SQ_GGUF_ARRAY) {
        uint32_t elem;
        uint64_t n;
        return skip_array(c, &elem, &n, depth, what);
    }
    size_t es = sq_gguf_scalar_size(t);
    if (!es)
        return sq_fail(c->e, SQ_EPARSE, "%s: offset %zu: %s: unknown value type %u", c->name, c->off, what,
                       t);
    int rc = need(c, es, what);
    if (rc) return rc;
    c->off += es;
    return 0;
}

static const struct {
    uint32_t id;
    const char *name;
    int block;
    size_t bytes;
} ggml_types[] = {
    {0, "F32", 1, 4},       {1, "F16", 1, 2},       {2, "Q4_0", 32, 18},    {3, "Q4_1", 32, 20},
    {6, "Q5_0", 32, 22},    {7, "Q5_1", 32, 24},    {8, "Q8_0", 32, 34},    {9, "Q8_1", 32, 36},
    {10, "Q2_K", 256, 84},  {11, "Q3_K", 256, 110}, {12, "Q4_K", 256, 144}, {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210}, {15, "Q8_K", 256, 292}, {24, "I8", 1, 1},       {25, "I16", 1, 2},
    {26, "I32", 1, 4},      {27, "I64", 1, 8},      {28, "F64", 1, 8},      {30, "BF16", 1, 2},
};

const char *sq_ggml_type_name(uint32_t t) {
    for (size_t i = 0; i < SQ_ARRAY_LEN(ggml_types); i++)
        if (ggml_types[i].id == t) return ggml_types[i].name;
    return NULL;
}

size_t sq_ggml_type_block_bytes(uint32_t t, int *block) {
    for (size_t i = 0; i < SQ_ARRAY_LEN(ggml_types); i++)
        if (ggml_types[i].id == t) {
            if (block) *block = ggml_types[i].block;
            return ggml_types[i].bytes;
        }
    if (block) *block = 0;
    return 0;
}

static int cmp_str(const sq_gguf_str *a, const sq_gguf_str *b) {
    size_t n = a->len < b->len ? (size_t)a->len : (size_t)b->len;
    int r = n ? memcmp(a->ptr, b->ptr, n) : 0;
    if (r) return r;
    return a->len < b->len ? -1 : a->len > b->len;
}

static int cmp_kv_key(const void *a, const void *b) {
    return cmp_str(&(*(const sq_gguf_kv *const *)a)->key, &(*(const sq_gguf_kv *const *)b)->key);
}
static int cmp_tensor_name(const void *a, const void *b) {
    return cmp_str(&(*(const sq_gguf_tensor *const *)a)->name, &(*(const sq_gguf_tensor *const *)b)->name);
}
static int cmp_tensor_data(const void *a, const void *b) {
    const sq_gguf_tensor *x = *(const sq_gguf_tensor *const *)a, *y = *(const sq_gguf_tensor *const *)b;
    return x->data < y->data ? -1 : x->data > y->data;
}

/* Duplicate keys or names make lookups ambiguous; ggml rejects them too. */
static int check_unique(sq_gguf *g, sq_err *e) {
    int64_t n = g->n_kv > g->n_tensors ? g->n_kv : g->n_tensors;
    if (n < 2) return 0;
    void **idx = malloc(sizeof(void *) * (size_t)n);
    if (!idx) return sq_fail(e, SQ_ENOMEM, "%s: out of memory", g->path);
    int rc = 0;
    for (int64_t i = 0; i < g->n_kv; i++)
        idx[i] = &g->kv[i];
    qsort(idx, (size_t)g->n_kv, sizeof *idx, cmp_kv_key);
    for (int64_t i = 1; i < g->n_kv && !rc; i++)
        if (!cmp_kv_key(&idx[i - 1], &idx[i])) {
            /* Name the second occurrence in the file (qsort is not stable). */
            const sq_gguf_kv *a = idx[i - 1], *k = idx[i];
            if (a->key.ptr > k->key.ptr) k = a;
            rc = sq_fail(e, SQ_EPARSE, "%s: offset %zu: duplicate metadata key '%.*s'", g->path,
                         (size_t)((const uint8_t *)k->key.ptr - g->map.data) - 8, (int)SQ_MIN(k->key.len, 200),
                         k->key.ptr);
        }
    for (int64_t i = 0; i < g->n_tensors && !rc; i++)
        idx[i] = &g->tensors[i];
    if (!rc) qsort(idx, (size_t)g->n_tensors, sizeof *idx, cmp_tensor_name);
    for (int64_t i = 1; i < g->n_tensors && !rc; i++)
        if (!cmp_tensor_name(&idx[i - 1], &idx[i])) {
            const sq_gguf_tensor *a = idx[i - 1], *t = idx[i];
            if (a->name.ptr > t->name.ptr) t = a;
            rc = sq_fail(e, SQ_EPARSE, "%s: offset %zu: duplicate tensor name '%.*s'", g->path,
                         (size_t)((const uint8_t *)t->name.ptr - g->map.data) - 8, (int)SQ_MIN(t->name.len, 200),
                         t->name.ptr);
        }
    /* Tensors may sit in any order but their byte ranges must not overlap. */
    if (!rc) qsort(idx, (size_t)g->n_tensors, sizeof *idx, cmp_tensor_data);
    for (int64_t i = 1; i < g->n_tensors && !rc; i++) {
        const sq_gguf_tensor *a = idx[i - 1], *b = idx[i];
        if (a->data + a->nbytes > b->data)
            rc = sq_fail(e, SQ_EPARSE, "%s: offset %zu: tensor '%.*s' overlaps tensor '%.*s'", g->path,
                         (size_t)(b->data - g->map.data), (int)SQ_MIN(b->name.len, 200), b->name.ptr,
                         (int)SQ_MIN(a->name.len, 200), a->name.ptr);
    }
    free(idx);
    return rc;
}

static int parse_kv(sq_gguf *g, cursor *c, sq_gguf_kv *kv) {
    size_t at = c->off;
    int rc = rd_str(c, &kv->key, "metadata key");
    uint32_t t;
    if (!rc) rc = rd_u32(c, &t, "metadata value type");
    if (rc) return rc;
    char what[160];
    snprintf(what, sizeof what, "value of '%.*s'", (int)SQ_MIN(kv->key.len, 100), kv->key.ptr);
    if (t > SQ_GGUF_F64)
        return sq_fail(c->e, SQ_EPARSE, "%s: offset %zu: %s: unknown type %u", c->name, at, what, t);
    kv->type = (sq_gguf_type)t;
    if (t != SQ_GGUF_ARRAY) {
        kv->data = c->p + c->off;
        return skip_value(c, t, 0, what);
    }
    uint32_t elem;
    uint64_t n;
    size_t arr_at = c->off;
    rc = skip_array(c, &elem, &n, 0, what);
    if (rc) return rc;
    kv->elem_type = (sq_gguf_type)elem;
    kv->n = n;
    kv->data = c->p + arr_at + 12;
    if (elem == SQ_GGUF_STRING && n) {
        /* Index the strings once so that element i is O(1) (vocabularies hold 100k+). */
        kv->strs = malloc(sizeof(sq_gguf_str) * (size_t)n);
        if (!kv->strs) return sq_fail(c->e, SQ_ENOMEM, "%s: out of memory indexing %s", c->name, what);
        cursor s = *c;
        s.off = arr_at + 12;
        for (uint64_t i = 0; i < n; i++)
            rd_str(&s, &kv->strs[i], what); /* validated by skip_array */
    }
    return 0;
}

static int parse_tensor_info(sq_gguf *g, cursor *c, sq_gguf_tensor *t, uint64_t *offset) {
    size_t at = c->off;
    int rc = rd_str(c, &t->name, "tensor name");
    uint32_t nd;
    if (!rc) rc = rd_u32(c, &nd, "tensor dimension count");
    if (rc) return rc;
    int nl = (int)SQ_MIN(t->name.len, 200);
    if (nd < 1 || nd > 4)
        return sq_fail(c->e, SQ_EPARSE, "%s: offset %zu: tensor '%.*s' has %u dimensions (1..4 supported)",
                       c->name, at, nl, t->name.ptr, nd);
    t->n_dims = (int)nd;
    uint64_t numel = 1;
    for (int d = 0; d < 4; d++)
        t->ne[d] = 1;
    for (uint32_t d = 0; d < nd; d++) {
        uint64_t ne;
        if ((rc = rd_u64(c, &ne, "tensor shape"))) return rc;
        if (ne > INT64_MAX || (ne && numel > (uint64_t)INT64_MAX / ne))
            return sq_fail(c->e, SQ_EPARSE, "%s: offset %zu: tensor '%.*s' has an impossible shape", c->name,
                           at, nl, t->name.ptr);
        t->ne[d] = (int64_t)ne;
        numel *= ne;
    }
    if ((rc = rd_u32(c, &t->ggml_type, "tensor type")) || (rc = rd_u64(c, offset, "tensor offset")))
        return rc;
    int block;
    size_t bb = sq_ggml_type_block_bytes(t->ggml_type, &block);
    if (!bb)
        return sq_fail(c->e, SQ_EUNSUP, "%s: offset %zu: tensor '%.*s' has unknown ggml type %u", c->name, at,
                       nl, t->name.ptr, t->ggml_type);
    if (t->ne[0] % block)
        return sq_fail(c->e, SQ_EPARSE,
                       "%s: offset %zu: tensor '%.*s': row of %lld is not a multiple of the %s block (%d)",
                       c->name, at, nl, t->name.ptr, (long long)t->ne[0], sq_ggml_type_name(t->ggml_type),
                       block);
    uint64_t blocks = numel / (uint64_t)block;
    if (blocks > SIZE_MAX / bb)
        return sq_fail(c->e, SQ_EPARSE, "%s: offset %zu: tensor '%.*s' is too large", c->name, at, nl,
                       t->name.ptr);
    t->nbytes = (size_t)blocks * bb;
    return 0;
}

int sq_gguf_parse(sq_gguf *g, const uint8_t *buf, size_t len, const char *name, sq_err *e) {
    memset(g, 0, sizeof *g);
    g->map.data = buf;
    g->map.len = len;
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    g->path = sq_strdup(name ? name : "<memory>");
    if (!g->path) return sq_fail(e, SQ_ENOMEM, "out of memory");
    cursor c = {buf, buf ? len : 0, 0, g->path, e};
    int rc = need(&c, 4, "magic");
    if (rc) goto fail;
    if (memcmp(buf, "GGUF", 4) != 0) {
        rc = sq_fail(e, SQ_EPARSE, "%s: offset 0: not a GGUF file (magic is not \"GGUF\")", g->path);
        goto fail;
    }
    c.off = 4;
    if ((rc = rd_u32(&c, &g->version, "version"))) goto fail;
    if (g->version != 2 && g->version != 3) {
        rc = sq_fail(e, SQ_EUNSUP, "%s: offset 4: GGUF version %u is not supported (2 and 3 are)%s", g->path,
                     g->version, (g->version & 0xffff) == 0 ? "; a big-endian file?" : "");
        goto fail;
    }
    uint64_t nt, nkv;
    if ((rc = rd_u64(&c, &nt, "tensor count")) || (rc = rd_u64(&c, &nkv, "metadata count"))) goto fail;
    /* A key/value takes at least 13 bytes and a tensor record at least 32. */
    if (nkv > (len - c.off) / 13 || nt > (len - c.off) / 32) {
        rc = sq_fail(e, SQ_EPARSE,
                     "%s: offset 8: %llu tensors and %llu metadata entries cannot fit in %zu bytes", g->path,
                     (unsigned long long)nt, (unsigned long long)nkv, len);
        goto fail;
    }
    g->kv = calloc(nkv ? (size_t)nkv : 1, sizeof *g->kv);
    g->tensors = calloc(nt ? (size_t)nt : 1, sizeof *g->tensors);
    uint64_t *offs = calloc(nt ? (size_t)nt : 1, sizeof *offs);
    if (!g->kv || !g->tensors || !offs) {
        free(offs);
        rc = sq_fail(e, SQ_ENOMEM, "%s: out of memory", g->path);
        goto fail;
    }
    for (uint64_t i = 0; i < nkv; i++) {
        g->n_kv = (int64_t)i + 1;
        if ((rc = parse_kv(g, &c, &g->kv[i]))) break;
    }
    if (!rc) {
        const sq_gguf_kv *al = sq_gguf_find(g, "general.alignment");
        if (al) {
            uint32_t a = 0;
            if (al->type == SQ_GGUF_U32) memcpy(&a, al->data, 4);
            if (al->type != SQ_GGUF_U32 || a == 0 || (a & (a - 1)))
                rc = sq_fail(e, SQ_EPARSE, "%s: offset %zu: general.alignment must be a power-of-two u32",
                             g->path, (size_t)(al->data - buf));
            g->alignment = a;
        }
    }
    for (uint64_t i = 0; i < nt && !rc; i++) {
        g->n_tensors = (int64_t)i + 1;
        rc = parse_tensor_info(g, &c, &g->tensors[i], &offs[i]);
    }
    if (!rc) {
        size_t pad = (g->alignment - c.off % g->alignment) % g->alignment;
        g->data_offset = c.off + pad;
        for (int64_t i = 0; i < g->n_tensors && !rc; i++) {
            sq_gguf_tensor *t = &g->tensors[i];
            int nl = (int)SQ_MIN(t->name.len, 200);
            if (offs[i] % g->alignment)
                rc = sq_fail(e, SQ_EPARSE,
                             "%s: tensor '%.*s': data offset %llu is not a multiple of the alignment %u",
                             g->path, nl, t->name.ptr, (unsigned long long)offs[i], g->alignment);
            else if (g->data_offset > len || offs[i] > len - g->data_offset ||
                     t->nbytes > len - g->data_offset - offs[i])
                rc = sq_fail(
                    e, SQ_EPARSE,
                    "%s: offset %llu: tensor '%.*s' (%zu bytes) runs past the end of the file (%zu bytes)",
                    g->path, (unsigned long long)(g->data_offset + offs[i]), nl, t->name.ptr, t->nbytes, len);
            else
                t->data = buf + g->data_offset + offs[i];
        }
    }
    free(offs);
    if (!rc) rc = check_unique(g, e);
    if (!rc) return 0;
fail:
    sq_gguf_close(g);
    return rc;
}

int sq_gguf_open(sq_gguf *g, const char *path, sq_err *e) {
    sq_mmap m;
    memset(g, 0, sizeof *g);
    int rc = sq_mmap_open(&m, path, e);
    if (rc) return rc;
    rc = sq_gguf_parse(g, m.data, m.len, path, e);
    if (rc) {
        sq_mmap_close(&m);
        return rc;
    }
    g->owns_map = 1;
    return 0;
}

void sq_gguf_close(sq_gguf *g) {
    if (g->kv)
        for (int64_t i = 0; i < g->n_kv; i++)
            free(g->kv[i].strs);
    free(g->kv);
    free(g->tensors);
    free(g->path);
    if (g->owns_map) sq_mmap_close(&g->map);
    memset(g, 0, sizeof *g);
}

int sq_gguf_str_eq(sq_gguf_str s, const char *z) {
    size_t n = strlen(z);
    return s.len == n && (n == 0 || memcmp(s.ptr, z, n) == 0);
}

const sq_gguf_kv *sq_gguf_find(const sq_gguf *g, const char *key) {
    for (int64_t i = 0; i < g->n_kv; i++)
        if (sq_gguf_str_eq(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

const sq_gguf_tensor *sq_gguf_find_tensor(const sq_gguf *g, const char *name) {
    for (int64_t i = 0; i < g->n_tensors; i++)
        if (sq_gguf_str_eq(g->tensors[i].name, name)) return &g->tensors[i];
    return NULL;
}

int sq_gguf_read_int(uint32_t t, const uint8_t *p, int64_t *out, uint64_t *uout, int *is_unsigned) {
    *is_unsigned = 0;
    switch (t) {
    case SQ_GGUF_U8:
        *uout = p[0];
        *is_unsigned = 1;
        return 1;
    case SQ_GGUF_I8: {
        int8_t v;
        memcpy(&v, p, 1);
        *out = v;
        return 1;
    }
    case SQ_GGUF_U16: {
        uint16_t v;
        memcpy(&v, p, 2);
        *uout = v;
        *is_unsigned = 1;
        return 1;
    }
    case SQ_GGUF_I16: {
        int16_t v;
        memcpy(&v, p, 2);
        *out = v;
        return 1;
    }
    case SQ_GGUF_U32: {
        uint32_t v;
        memcpy(&v, p, 4);
        *uout = v;
        *is_unsigned = 1;
        return 1;
    }
    case SQ_GGUF_I32: {
        int32_t v;
        memcpy(&v, p, 4);
        *out = v;
        return 1;
    }
    case SQ_GGUF_U64: {
        uint64_t v;
        memcpy(&v, p, 8);
        *uout = v;
        *is_unsigned = 1;
        return 1;
    }
    case SQ_GGUF_I64: {
        int64_t v;
        memcpy(&v, p, 8);
        *out = v;
        return 1;
    }
    default: return 0;
    }
}

static int lookup(const sq_gguf *g, const char *key, const sq_gguf_kv **kv, sq_err *e) {
    *kv = sq_gguf_find(g, key);
    if (!*kv) return sq_fail(e, SQ_ENOTFOUND, "%s: metadata key '%s' not found", g->path, key);
    return 0;
}

int sq_gguf_get_i64(const sq_gguf *g, const char *key, int64_t *out, sq_err *e) {
    const sq_gguf_kv *kv;
    int rc = lookup(g, key, &kv, e), uns;
    if (rc) return rc;
    int64_t s = 0;
    uint64_t u = 0;
    if (!sq_gguf_read_int(kv->type, kv->data, &s, &u, &uns))
        return sq_fail(e, SQ_EPARSE, "%s: metadata '%s' is not an integer (type %d)", g->path, key, kv->type);
    if (uns && u > INT64_MAX) return sq_fail(e, SQ_ERANGE, "%s: metadata '%s' is out of range", g->path, key);
    *out = uns ? (int64_t)u : s;
    return 0;
}

int sq_gguf_get_u32(const sq_gguf *g, const char *key, uint32_t *out, sq_err *e) {
    int64_t v;
    int rc = sq_gguf_get_i64(g, key, &v, e);
    if (rc) return rc;
    if (v < 0 || v > UINT32_MAX)
        return sq_fail(e, SQ_ERANGE, "%s: metadata '%s' = %lld does not fit in u32", g->path, key,
                       (long long)v);
    *out = (uint32_t)v;
    return 0;
}

int sq_gguf_get_f32(const sq_gguf *g, const char *key, float *out, sq_err *e) {
    const sq_gguf_kv *kv;
    int rc = lookup(g, key, &kv, e);
    if (rc) return rc;
    if (kv->type == SQ_GGUF_F32) {
        memcpy(out, kv->data, 4);
        return 0;
    }
    if (kv->type == SQ_GGUF_F64) {
        double d;
        memcpy(&d, kv->data, 8);
        *out = (float)d;
        return 0;
    }
    return sq_fail(e, SQ_EPARSE, "%s: metadata '%s' is not a float (type %d)", g->path, key, kv->type);
}

int sq_gguf_get_str(const sq_gguf *g, const char *key, sq_gguf_str *out, sq_err *e) {
    const sq_gguf_kv *kv;
    int rc = lookup(g, key, &kv, e);
    if (rc) return rc;
    if (kv->type != SQ_GGUF_STRING)
        return sq_fail(e, SQ_EPARSE, "%s: metadata '%s' is not a string (type %d)", g->path, key, kv->type);
    uint64_t n;
    memcpy(&n, kv->data, 8);
    out->ptr = (const char *)kv->data + 8;
    out->len = n;
    return 0;
}

int sq_gguf_get_bool(const sq_gguf *g, const char *key, int *out, sq_err *e) {
    const sq_gguf_kv *kv;
    int rc = lookup(g, key, &kv, e);
    if (rc) return rc;
    if (kv->type != SQ_GGUF_BOOL)
        return sq_fail(e, SQ_EPARSE, "%s: metadata '%s' is not a bool (type %d)", g->path, key, kv->type);
    *out = kv->data[0] != 0;
    return 0;
}

int sq_gguf_get_arr(const sq_gguf *g, const char *key, sq_gguf_type elem_type, const sq_gguf_kv **out,
                    sq_err *e) {
    const sq_gguf_kv *kv;
    int rc = lookup(g, key, &kv, e);
    if (rc) return rc;
    if (kv->type != SQ_GGUF_ARRAY || (elem_type != SQ_GGUF_ARRAY && kv->elem_type != elem_type))
        return sq_fail(e, SQ_EPARSE, "%s: metadata '%s' is not an array of type %d", g->path, key, elem_type);
    *out = kv;
    return 0;
}

sq_gguf_str sq_gguf_arr_str(const sq_gguf_kv *kv, uint64_t i) {
    sq_gguf_str none = {NULL, 0};
    if (!kv || kv->type != SQ_GGUF_ARRAY || kv->elem_type != SQ_GGUF_STRING || i >= kv->n || !kv->strs)
        return none;
    return kv->strs[i];
}

int64_t sq_gguf_arr_int(const sq_gguf_kv *kv, uint64_t i) {
    if (!kv || kv->type != SQ_GGUF_ARRAY || i >= kv->n) return 0;
    size_t es = sq_gguf_scalar_size(kv->elem_type);
    if (!es) return 0;
    const uint8_t *p = kv->data + i * es;
    int64_t s = 0;
    uint64_t u = 0;
    int uns;
    if (sq_gguf_read_int(kv->elem_type, p, &s, &u, &uns)) return uns ? (int64_t)u : s;
    if (kv->elem_type == SQ_GGUF_BOOL) return p[0] != 0;
    return (int64_t)sq_gguf_arr_num(kv, i);
}

double sq_gguf_arr_num(const sq_gguf_kv *kv, uint64_t i) {
    if (!kv || kv->type != SQ_GGUF_ARRAY || i >= kv->n) return 0;
    size_t es = sq_gguf_scalar_size(kv->elem_type);
    if (!es) return 0;
    const uint8_t *p = kv->data + i * es;
    if (kv->elem_type == SQ_GGUF_F32) {
        float f;
        memcpy(&f, p, 4);
        return f;
    }
    if (kv->elem_type == SQ_GGUF_F64) {
        double d;
        memcpy(&d, p, 8);
        return d;
    }
    if (kv->elem_type == SQ_GGUF_BOOL) return p[0] != 0;
    int64_t s = 0;
    uint64_t u = 0;
    int uns;
    sq_gguf_read_int(kv->elem_type, p, &s, &u, &uns);
    return uns ? (double)u : (double)s;
}

int sq_ggml_to_dtype(uint32_t ggml_type, sq_dtype *out) {
    static const struct {
        uint32_t g;
        sq_dtype d;
    } map[] = {{0, SQ_F32},   {1, SQ_F16},   {2, SQ_Q4_0},  {3, SQ_Q4_1},  {6, SQ_Q5_0},  {7, SQ_Q5_1}, {8, SQ_Q8_0},
               {12, SQ_Q4_K}, {13, SQ_Q5_K}, {14, SQ_Q6_K}, {26, SQ_I32}, {27, SQ_I64}, {30, SQ_BF16}};
    for (size_t i = 0; i < SQ_ARRAY_LEN(map); i++)
        if (map[i].g == ggml_type) {
            *out = map[i].d;
            return 0;
        }
    return -1;
}

int sq_gguf_tensor_view(const sq_gguf_tensor *t, sq_view *v, sq_err *e) {
    sq_dtype dt;
    if (sq_ggml_to_dtype(t->ggml_type, &dt))
        return sq_fail(e, SQ_EUNSUP,
                       "tensor '%.*s': ggml type %s (%u) is not supported (F32, F16, BF16, I32, I64, Q4_0, Q4_1, "
                       "Q5_0, Q5_1, Q8_0, Q4_K, Q5_K and Q6_K are)",
                       (int)SQ_MIN(t->name.len, 200), t->name.ptr,
                       sq_ggml_type_name(t->ggml_type) ? sq_ggml_type_name(t->ggml_type) : "?", t->ggml_type);
    v->data = (void *)t->data;
    v->dtype = dt;
    v->ndim = t->n_dims;
    for (int d = 0; d < 4; d++)
        v->shape[d] = 1;
    for (int d = 0; d < t->n_dims; d++)
        v->shape[d] = t->ne[t->n_dims - 1 - d];
    return 0;
}
