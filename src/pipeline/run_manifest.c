/* manifest.json and the content hashes behind the make-like reruns. The hash is our own
 * (fixed constants, so a manifest written today compares with a rerun tomorrow): two
 * multiply-xorshift lanes over 8-byte words, folded with the length. Folders hash every
 * regular file under them by relative name, in sorted order. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "run_internal.h"
#include "scalequest/run.h"

typedef struct hstate {
    uint64_t a, b, n;
} hstate;

static void h_init(hstate *h) {
    h->a = 0x9E3779B97F4A7C15ull;
    h->b = 0xC2B2AE3D27D4EB4Full;
    h->n = 0;
}

static inline uint64_t mix(uint64_t x, uint64_t w, uint64_t k) {
    x = (x ^ w) * k;
    return x ^ (x >> 29);
}

static void h_bytes(hstate *h, const unsigned char *p, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        uint64_t w0, w1;
        memcpy(&w0, p + i, 8);
        memcpy(&w1, p + i + 8, 8);
        h->a = mix(h->a, w0, 0xFF51AFD7ED558CCDull);
        h->b = mix(h->b, w1, 0xC4CEB9FE1A85EC53ull);
    }
    for (; i < n; i++) h->a = mix(h->a, p[i] + 0x100ull, 0xFF51AFD7ED558CCDull);
    h->n += n;
}

static void h_hex(const hstate *h0, char out[33]) {
    hstate h = *h0;
    h.a = mix(h.a, h.n, 0xC4CEB9FE1A85EC53ull);
    h.b = mix(h.b, h.a, 0xFF51AFD7ED558CCDull);
    h.a = mix(h.a, h.b, 0xFF51AFD7ED558CCDull);
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)h.a, (unsigned long long)h.b);
}

static int hash_file(const char *path, const struct stat *st, cJSON *cache, char out[33], sq_err *e) {
    cJSON *c = cache ? cJSON_GetObjectItemCaseSensitive(cache, path) : NULL;
    double mt = (double)st->st_mtim.tv_sec * 1e9 + (double)st->st_mtim.tv_nsec;
    if (c) {
        const cJSON *sz = cJSON_GetObjectItemCaseSensitive(c, "size"), *m = cJSON_GetObjectItemCaseSensitive(c, "mtime_ns"),
                    *hh = cJSON_GetObjectItemCaseSensitive(c, "hash");
        if (cJSON_IsNumber(sz) && cJSON_IsNumber(m) && cJSON_IsString(hh) && sz->valuedouble == (double)st->st_size &&
            m->valuedouble == mt && strlen(hh->valuestring) == 32) {
            memcpy(out, hh->valuestring, 33);
            return 0;
        }
    }
    FILE *f = fopen(path, "rb");
    if (!f) return sq_fail(e, SQ_EIO, "%s: %s", path, strerror(errno));
    hstate h;
    h_init(&h);
    static __thread unsigned char buf[1 << 16];
    size_t n;
    /* Whole 16-byte words per read so the lanes see the same words whatever the chunking. */
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) h_bytes(&h, buf, n);
    int bad = ferror(f);
    fclose(f);
    if (bad) return sq_fail(e, SQ_EIO, "%s: read failed", path);
    h_hex(&h, out);
    if (cache) {
        cJSON *o = cJSON_CreateObject();
        if (o) {
            cJSON_AddNumberToObject(o, "size", (double)st->st_size);
            cJSON_AddNumberToObject(o, "mtime_ns", mt);
            cJSON_AddStringToObject(o, "hash", out);
            if (c) cJSON_ReplaceItemInObjectCaseSensitive(cache, path, o);
            else cJSON_AddItemToObject(cache, path, o);
        }
    }
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int hash_tree(const char *root, const char *rel, hstate *h, cJSON *cache, int depth, sq_err *e) {
    char *dir = *rel ? sq_path_join(root, rel) : sq_strdup(root);
    if (!dir) return sq_fail(e, SQ_ENOMEM, "out of memory");
    DIR *d = opendir(dir);
    if (!d) {
        int rc = sq_fail(e, SQ_EIO, "%s: %s", dir, strerror(errno));
        free(dir);
        return rc;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn) break;
            names = nn;
        }
        names[n++] = sq_strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        char *sub = *rel ? sq_path_join(rel, names[i]) : sq_strdup(names[i]);
        char *full = sq_path_join(root, sub);
        struct stat st;
        if (sub && full && stat(full, &st) == 0) {
            if (S_ISDIR(st.st_mode) && depth < 8) {
                rc = hash_tree(root, sub, h, cache, depth + 1, e);
            } else if (S_ISREG(st.st_mode)) {
                char fh[33];
                rc = hash_file(full, &st, cache, fh, e);
                h_bytes(h, (const unsigned char *)sub, strlen(sub) + 1);
                h_bytes(h, (const unsigned char *)fh, 32);
            }
        }
        free(sub);
        free(full);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    free(dir);
    return rc;
}

int sq_run_hash_path(const char *path, cJSON *cache, char out[33], sq_err *e) {
    struct stat st;
    if (stat(path, &st)) return sq_fail(e, SQ_ENOTFOUND, "%s: %s", path, strerror(errno));
    if (S_ISREG(st.st_mode)) return hash_file(path, &st, cache, out, e);
    hstate h;
    h_init(&h);
    int rc = hash_tree(path, "", &h, cache, 0, e);
    if (!rc) h_hex(&h, out);
    return rc;
}

int64_t sq_run_count_lines(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    static __thread char buf[1 << 16];
    int64_t n = 0;
    size_t r;
    while ((r = fread(buf, 1, sizeof buf, f)) > 0)
        for (const char *p = buf; (p = memchr(p, '\n', (size_t)(buf + r - p))); p++) n++;
    fclose(f);
    return n;
}

int sq_run_manifest_load(const char *run_dir, cJSON **m, sq_err *e) {
    char *path = sq_path_join(run_dir, "manifest.json");
    *m = NULL;
    if (!path) return sq_fail(e, SQ_ENOMEM, "out of memory");
    int rc = 0;
    if (sq_file_exists(path)) {
        char *text;
        size_t len;
        rc = sq_file_read_all(path, &text, &len, e);
        if (!rc) {
            *m = cJSON_ParseWithLength(text, len);
            free(text);
            if (!*m || !cJSON_IsObject(*m)) {
                cJSON_Delete(*m);
                *m = NULL;
                rc = sq_fail(e, SQ_EPARSE, "%s: not a JSON object (it is written atomically: was it edited?)", path);
            }
        }
    } else {
        *m = cJSON_CreateObject();
        if (*m) cJSON_AddNumberToObject(*m, "version", 1);
    }
    if (!rc && *m) {
        if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(*m, "stages"))) {
            cJSON_DeleteItemFromObjectCaseSensitive(*m, "stages");
            cJSON_AddObjectToObject(*m, "stages");
        }
        if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(*m, "hash_cache"))) {
            cJSON_DeleteItemFromObjectCaseSensitive(*m, "hash_cache");
            cJSON_AddObjectToObject(*m, "hash_cache");
        }
    }
    if (!rc && !*m) rc = sq_fail(e, SQ_ENOMEM, "out of memory");
    free(path);
    return rc;
}

int sq_run_manifest_save(const char *run_dir, const cJSON *m, sq_err *e) {
    char *path = sq_path_join(run_dir, "manifest.json");
    char *text = cJSON_Print(m);
    int rc = (!path || !text) ? sq_fail(e, SQ_ENOMEM, "out of memory") : 0;
    if (!rc) {
        size_t n = strlen(text);
        text[n] = '\n'; /* cJSON_Print leaves room for the terminator only: write n+1 bytes below */
        rc = sq_file_write_atomic(path, text, n + 1, e);
    }
    free(text);
    free(path);
    return rc;
}

char *sq_run_hash_bytes(const void *data, size_t len) {
    hstate h;
    h_init(&h);
    h_bytes(&h, data, len);
    char *out = malloc(33);
    if (out) h_hex(&h, out);
    return out;
}
