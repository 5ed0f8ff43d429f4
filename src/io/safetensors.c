/* safetensors — reader: one file, a sharded set (model.safetensors.index.json) or a folder.
 *
 * A file is an 8-byte little-endian header length, a JSON header and the data buffer. The
 * header is checked completely before any view is handed out: every dtype known, every shape
 * non-negative and at most 4-D, every byte range the size its shape implies, and the ranges
 * tiling the data buffer exactly (no overlap, no hole), as the format's own loader demands.
 * Views point into the mapping; tensors are kept sorted by name for binary search.
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/safetensors.h"

#define ST_MAX_HEADER (100u << 20) /* the reference implementation's limit */

static const struct {
    const char *name;
    sq_dtype dt;
} st_dtypes[] = {
    {"F32", SQ_F32}, {"F16", SQ_F16}, {"BF16", SQ_BF16}, {"I32", SQ_I32}, {"I64", SQ_I64}, {"U8", SQ_U8},
};

/* Other dtypes the format defines: recognised so the error says "unsupported", not "corrupt". */
static const char *st_known_other[] = {"BOOL", "I8", "I16", "U16", "U32", "U64", "F64", "F8_E5M2", "F8_E4M3"};

typedef struct range {
    uint64_t begin, end;
    const char *name;
} range;

static int cmp_range(const void *a, const void *b) {
    const range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int cmp_tensor(const void *a, const void *b) {
    return strcmp(((const sq_st_tensor *)a)->name, ((const sq_st_tensor *)b)->name);
}

/* A JSON number that is a non-negative integer representable exactly. */
static int json_u64(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != (double)(uint64_t)d) return 0;
    *out = (uint64_t)d;
    return 1;
}

static int grow(sq_safetensors *s, int extra, int *cap) {
    if (s->n_tensors + extra <= *cap) return 0;
    int nc = *cap ? *cap : 16;
    while (nc < s->n_tensors + extra)
        nc *= 2;
    sq_st_tensor *t = realloc(s->tensors, sizeof *t * (size_t)nc);
    if (!t) return SQ_ENOMEM;
    s->tensors = t;
    *cap = nc;
    return 0;
}

/* cJSON keeps no positions: find where a key is written in the header so an error can name
 * a byte offset (the start of the header when the key is spelled with escapes). */
static size_t key_offset(const uint8_t *buf, uint64_t hlen, const char *key) {
    size_t kl = strlen(key);
    const uint8_t *h = buf + 8, *end = buf + 8 + hlen;
    for (const uint8_t *p = h; p + kl + 2 <= end; p++)
        if (p[0] == '"' && p[kl + 1] == '"' && !memcmp(p + 1, key, kl)) return (size_t)(p - buf);
    return 8;
}

/* Parse one file's bytes and append its tensors to s. */
static int parse_file(sq_safetensors *s, int *cap, const uint8_t *buf, size_t len, const char *name,
                      sq_err *e) {
    uint64_t hlen;
    if (len < 8)
        return sq_fail(e, SQ_EPARSE,
                       "%s: offset 0: file of %zu bytes is too short for the 8-byte header length", name,
                       len);
    memcpy(&hlen, buf, 8);
    if (hlen > ST_MAX_HEADER)
        return sq_fail(e, SQ_EPARSE, "%s: offset 0: header length %llu is larger than the %u-byte limit",
                       name, (unsigned long long)hlen, ST_MAX_HEADER);
    if (hlen > len - 8)
        return sq_fail(e, SQ_EPARSE,
                       "%s: offset 8: header of %llu bytes runs past the end of the file (%zu bytes)", name,
                       (unsigned long long)hlen, len);
    if (hlen < 2 || buf[8] != '{')
        return sq_fail(e, SQ_EPARSE, "%s: offset 8: header is not a JSON object", name);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)buf + 8, (size_t)hlen, &end, 0);
    if (!root || !cJSON_IsObject(root)) {
        size_t at = end ? (size_t)(end - (const char *)buf) : 8;
        if (!root && cJSON_GetErrorPtr()) at = (size_t)(cJSON_GetErrorPtr() - (const char *)buf);
        cJSON_Delete(root);
        return sq_fail(e, SQ_EPARSE, "%s: offset %zu: header is not valid JSON", name, at);
    }
    /* Whatever follows the object inside the header must be padding spaces. */
    for (const char *p = end; p && p < (const char *)buf + 8 + hlen; p++)
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') {
            cJSON_Delete(root);
            return sq_fail(e, SQ_EPARSE, "%s: offset %zu: unexpected bytes after the header JSON", name,
                           (size_t)(p - (const char *)buf));
        }
    const uint8_t *data = buf + 8 + hlen;
    uint64_t dlen = len - 8 - hlen;
    int n = 0;
    for (cJSON *it = root->child; it; it = it->next)
        n++;
    range *rs = calloc((size_t)n + 1, sizeof *rs);
    int rc = rs ? grow(s, n, cap) : SQ_ENOMEM;
    if (rc) {
        free(rs);
        cJSON_Delete(root);
        return sq_fail(e, SQ_ENOMEM, "%s: out of memory", name);
    }
    int nr = 0;
    for (cJSON *it = root->child; it && !rc; it = it->next) {
        const char *tn = it->string ? it->string : "";
        size_t at = key_offset(buf, hlen, tn);
        if (!strcmp(tn, "__metadata__")) {
            if (!cJSON_IsObject(it)) {
                rc = sq_fail(e, SQ_EPARSE, "%s: offset %zu: __metadata__ is not an object", name, at);
                break;
            }
            for (cJSON *m = it->child; m; m = m->next)
                if (!cJSON_IsString(m)) {
                    rc = sq_fail(e, SQ_EPARSE, "%s: offset %zu: __metadata__ value '%s' is not a string",
                                 name, at, m->string ? m->string : "");
                    break;
                }
            continue;
        }
        cJSON *jd = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        cJSON *js = cJSON_GetObjectItemCaseSensitive(it, "shape");
        cJSON *jo = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        if (!cJSON_IsObject(it) || !cJSON_IsString(jd) || !cJSON_IsArray(js) || !cJSON_IsArray(jo) ||
            cJSON_GetArraySize(jo) != 2) {
            rc = sq_fail(e, SQ_EPARSE,
                         "%s: offset %zu: tensor '%s' needs dtype, shape and data_offsets [begin, end]", name,
                         at, tn);
            break;
        }
        int found = -1;
        for (size_t k = 0; k < SQ_ARRAY_LEN(st_dtypes); k++)
            if (!strcmp(jd->valuestring, st_dtypes[k].name)) found = (int)k;
        if (found < 0) {
            int other = 0;
            for (size_t k = 0; k < SQ_ARRAY_LEN(st_known_other); k++)
                if (!strcmp(jd->valuestring, st_known_other[k])) other = 1;
            rc = sq_fail(e, other ? SQ_EUNSUP : SQ_EPARSE, "%s: offset %zu: tensor '%s' has %s dtype '%.40s'",
                         name, at, tn, other ? "unsupported" : "unknown", jd->valuestring);
            break;
        }
        sq_view v = {0};
        v.dtype = st_dtypes[found].dt;
        int nd = cJSON_GetArraySize(js);
        if (nd > 4) {
            rc = sq_fail(e, SQ_EUNSUP, "%s: offset %zu: tensor '%s' has %d dimensions (at most 4 supported)",
                         name, at, tn, nd);
            break;
        }
        v.ndim = nd;
        for (int d = 0; d < 4; d++)
            v.shape[d] = 1;
        uint64_t numel = 1;
        int d = 0;
        for (cJSON *x = js->child; x; x = x->next, d++) {
            uint64_t dim;
            if (!json_u64(x, &dim) || (dim && numel > (UINT64_MAX / 8) / dim)) {
                rc = sq_fail(e, SQ_EPARSE, "%s: offset %zu: tensor '%s' has an invalid shape", name, at, tn);
                break;
            }
            v.shape[d] = (int64_t)dim;
            numel *= dim;
        }
        if (rc) break;
        uint64_t b, en;
        if (!json_u64(jo->child, &b) || !json_u64(jo->child->next, &en) || en < b) {
            rc = sq_fail(e, SQ_EPARSE, "%s: offset %zu: tensor '%s' has invalid data_offsets", name, at, tn);
            break;
        }
        uint64_t want = numel * sq_dtype_size(v.dtype);
        if (en - b != want) {
            rc =
                sq_fail(e, SQ_EPARSE, "%s: offset %zu: tensor '%s' spans %llu bytes but its shape needs %llu",
                        name, at, tn, (unsigned long long)(en - b), (unsigned long long)want);
            break;
        }
        if (en > dlen) {
            rc = sq_fail(e, SQ_EPARSE,
                         "%s: offset %llu: tensor '%s' ends past the end of the file (%zu bytes)", name,
                         (unsigned long long)(8 + hlen + en), tn, len);
            break;
        }
        v.data = (void *)(data + b);
        char *dup = sq_strdup(tn);
        if (!dup) {
            rc = sq_fail(e, SQ_ENOMEM, "%s: out of memory", name);
            break;
        }
        s->tensors[s->n_tensors].name = dup;
        s->tensors[s->n_tensors].view = v;
        s->n_tensors++;
        rs[nr].begin = b;
        rs[nr].end = en;
        rs[nr].name = dup;
        nr++;
    }
    if (!rc) {
        qsort(rs, (size_t)nr, sizeof *rs, cmp_range);
        uint64_t at = 0;
        for (int i = 0; i < nr && !rc; i++) {
            if (rs[i].begin < at)
                rc = sq_fail(e, SQ_EPARSE, "%s: offset %llu: tensor '%s' overlaps the tensor before it", name,
                             (unsigned long long)(8 + hlen + rs[i].begin), rs[i].name);
            else if (rs[i].begin > at)
                rc = sq_fail(e, SQ_EPARSE, "%s: offset %llu: %llu unused bytes before tensor '%s'", name,
                             (unsigned long long)(8 + hlen + at), (unsigned long long)(rs[i].begin - at),
                             rs[i].name);
            at = rs[i].end;
        }
        if (!rc && at != dlen)
            rc = sq_fail(e, SQ_EPARSE, "%s: offset %llu: %llu bytes after the last tensor", name,
                         (unsigned long long)(8 + hlen + at), (unsigned long long)(dlen - at));
    }
    free(rs);
    cJSON_Delete(root);
    return rc;
}

/* Sort by name and reject duplicates (cJSON keeps repeated keys; shards may repeat names). */
static int finish_index(sq_safetensors *s, const char *name, sq_err *e) {
    if (s->n_tensors > 1) qsort(s->tensors, (size_t)s->n_tensors, sizeof *s->tensors, cmp_tensor);
    for (int i = 1; i < s->n_tensors; i++)
        if (!strcmp(s->tensors[i - 1].name, s->tensors[i].name))
            return sq_fail(e, SQ_EPARSE, "%s: tensor '%s' appears twice", name, s->tensors[i].name);
    return 0;
}

int sq_st_parse(sq_safetensors *s, const uint8_t *buf, size_t len, const char *name, sq_err *e) {
    memset(s, 0, sizeof *s);
    int cap = 0;
    if (!name) name = "<memory>";
    int rc = parse_file(s, &cap, buf, len, name, e);
    if (!rc) rc = finish_index(s, name, e);
    if (rc) sq_st_close(s);
    return rc;
}

static int add_shard(sq_safetensors *s, int *cap, const char *path, sq_err *e) {
    sq_mmap *m = realloc(s->maps, sizeof *m * (size_t)(s->n_maps + 1));
    if (!m) return sq_fail(e, SQ_ENOMEM, "%s: out of memory", path);
    s->maps = m;
    int rc = sq_mmap_open(&s->maps[s->n_maps], path, e);
    if (rc) return rc;
    s->n_maps++;
    return parse_file(s, cap, s->maps[s->n_maps - 1].data, s->maps[s->n_maps - 1].len, path, e);
}

static int cmp_cstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? sq_strndup(path, (size_t)(slash - path)) : sq_strdup(".");
}

static int open_index(sq_safetensors *s, int *cap, const char *path, sq_err *e) {
    char *text = NULL;
    size_t len;
    int rc = sq_file_read_all(path, &text, &len, e);
    if (rc) return rc;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(wm)) {
        cJSON_Delete(root);
        return sq_fail(e, SQ_EPARSE, "%s: not a safetensors index (no \"weight_map\" object)", path);
    }
    int n = cJSON_GetArraySize(wm);
    char **files = calloc((size_t)n + 1, sizeof *files);
    int nf = 0;
    if (!files) rc = sq_fail(e, SQ_ENOMEM, "%s: out of memory", path);
    for (cJSON *it = wm->child; it && !rc; it = it->next) {
        if (!cJSON_IsString(it) || strchr(it->valuestring, '/') || !strcmp(it->valuestring, "..") ||
            !*it->valuestring)
            rc = sq_fail(e, SQ_EPARSE, "%s: weight_map entry '%s' does not name a shard file in the folder",
                         path, it->string ? it->string : "");
        else
            files[nf++] = it->valuestring;
    }
    if (!rc) {
        qsort(files, (size_t)nf, sizeof *files, cmp_cstr);
        char *dir = dir_of(path);
        for (int i = 0; i < nf && !rc && dir; i++) {
            if (i && !strcmp(files[i], files[i - 1])) continue;
            char *p = sq_path_join(dir, files[i]);
            rc = p ? add_shard(s, cap, p, e) : sq_fail(e, SQ_ENOMEM, "out of memory");
            free(p);
        }
        if (!dir) rc = sq_fail(e, SQ_ENOMEM, "out of memory");
        free(dir);
    }
    if (!rc) rc = finish_index(s, path, e);
    /* Every tensor the index promises must be present. */
    for (cJSON *it = wm->child; it && !rc; it = it->next)
        if (!sq_st_find(s, it->string))
            rc = sq_fail(e, SQ_EPARSE, "%s: tensor '%s' is listed in the index but absent from '%s'", path,
                         it->string, it->valuestring);
    free(files);
    cJSON_Delete(root);
    return rc;
}

static int open_folder(sq_safetensors *s, int *cap, const char *dir, sq_err *e) {
    char *p = sq_path_join(dir, "model.safetensors.index.json");
    if (!p) return sq_fail(e, SQ_ENOMEM, "out of memory");
    if (sq_file_exists(p)) {
        int rc = open_index(s, cap, p, e);
        free(p);
        return rc;
    }
    free(p);
    DIR *d = opendir(dir);
    if (!d) return sq_fail(e, SQ_EIO, "%s: cannot open folder", dir);
    char **names = NULL;
    int n = 0, rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) && !rc) {
        size_t l = strlen(de->d_name);
        if (l > 12 && !strcmp(de->d_name + l - 12, ".safetensors")) {
            char **nn = realloc(names, sizeof *nn * (size_t)(n + 1));
            if (!nn || !(nn[n] = sq_strdup(de->d_name))) rc = sq_fail(e, SQ_ENOMEM, "out of memory");
            if (nn) names = nn;
            if (!rc) n++;
        }
    }
    closedir(d);
    if (!rc && !n) rc = sq_fail(e, SQ_ENOTFOUND, "%s: no .safetensors files in the folder", dir);
    if (!rc) qsort(names, (size_t)n, sizeof *names, cmp_cstr);
    for (int i = 0; i < n && !rc; i++) {
        char *fp = sq_path_join(dir, names[i]);
        rc = fp ? add_shard(s, cap, fp, e) : sq_fail(e, SQ_ENOMEM, "out of memory");
        free(fp);
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (!rc) rc = finish_index(s, dir, e);
    return rc;
}

int sq_st_open(sq_safetensors *s, const char *path, sq_err *e) {
    memset(s, 0, sizeof *s);
    int cap = 0, rc;
    size_t l = strlen(path);
    if (sq_dir_exists(path))
        rc = open_folder(s, &cap, path, e);
    else if (l >= 5 && !strcmp(path + l - 5, ".json"))
        rc = open_index(s, &cap, path, e);
    else {
        rc = add_shard(s, &cap, path, e);
        if (!rc) rc = finish_index(s, path, e);
    }
    if (rc) sq_st_close(s);
    return rc;
}

void sq_st_close(sq_safetensors *s) {
    for (int i = 0; i < s->n_tensors; i++)
        free(s->tensors[i].name);
    free(s->tensors);
    for (int i = 0; i < s->n_maps; i++)
        sq_mmap_close(&s->maps[i]);
    free(s->maps);
    memset(s, 0, sizeof *s);
}

const sq_view *sq_st_find(const sq_safetensors *s, const char *name) {
    int lo = 0, hi = s->n_tensors - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(s->tensors[mid].name, name);
        if (!c) return &s->tensors[mid].view;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}
