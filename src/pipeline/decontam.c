/* The decontaminate stage (decontam.h): benchmark questions indexed by exact normal form,
 * word n-grams and MinHash LSH; training records that hit any of them are dropped; a report
 * (the marker) is written beside the output when the run completes. */
#include "scalequest/decontam.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/jsonl.h"

typedef struct bench_def {
    const char *name, *file, *field;
} bench_def;

static const bench_def BENCHES[] = {
    {"gsm8k", "gsm8k_test.jsonl", "question"},
    {"math", "math_test.jsonl", "problem"},
    {"math500", "math500_test.jsonl", "problem"},
    {"college_math", "college_math_test.jsonl", "question"},
    {"olympiadbench", "olympiadbench_OE_TO_maths_en_COMP.jsonl", "question"},
    {"minerva_math", "minerva_math_test.jsonl", "problem"},
};
enum { N_BENCH = (int)(sizeof BENCHES / sizeof BENCHES[0]), MAX_BENCH = 16 };

const char *sq_decontam_known(void) { return "gsm8k,math,math500,college_math,olympiadbench,minerva_math"; }

void sq_decontam_opts_default(sq_decontam_opts *o) {
    memset(o, 0, sizeof *o);
    sq_stage_opts_default(&o->stage);
    o->stage.name = "decontaminate";
    o->field = "query";
    o->benchmarks = "gsm8k,math,math500,college_math,olympiadbench";
    o->ngram = 13;
    o->near = 1;
    o->examples = 3;
    sq_minhash_params_default(&o->mh);
}

char *sq_decontam_report_path(const char *out) {
    sq_buf b = {0};
    sq_buf_printf(&b, "%s.decontam.json", out);
    return b.data;
}

typedef struct loaded {
    const bench_def *def;
    bench_def own; /* a NAME=PATH benchmark (its name and file are malloc'd, field NULL) */
    char *path;
    int64_t items;
    uint32_t first; /* global item number of its first question */
} loaded;

typedef struct bindex {
    loaded b[MAX_BENCH];
    int nb;
    uint32_t total;
    sq_fpmap *exact, *grams;
    sq_lsh *lsh;
    sq_minhasher *mh;
    sq_buf norm;
    uint32_t *sig;
    int ngram, near;
} bindex;

/* Word n-grams of a normal form, each passed to fn as a byte span; stops at fn's first
 * non-zero return (which it returns). Fewer than n words: none. */
static int each_ngram(const char *norm, size_t len, int n, int (*fn)(void *, const char *, size_t), void *u) {
    if (n <= 0 || len == 0) return 0;
    size_t cap = len / 2 + 2, words = 0;
    size_t *starts = malloc(cap * sizeof *starts);
    if (!starts) return SQ_ENOMEM;
    for (size_t i = 0; i < len; i++)
        if (i == 0 || norm[i - 1] == ' ') starts[words++] = i;
    int r = 0;
    for (size_t k = 0; !r && k + (size_t)n <= words; k++) {
        size_t end = k + (size_t)n < words ? starts[k + (size_t)n] - 1 : len;
        r = fn(u, norm + starts[k], end - starts[k]);
    }
    free(starts);
    return r;
}

typedef struct put_ctx {
    bindex *x;
    uint32_t item;
    sq_err *e;
} put_ctx;

static int put_gram(void *u, const char *s, size_t n) {
    put_ctx *c = u;
    return sq_fpmap_put(c->x->grams, s, n, c->item, c->e);
}

static int load_bench(bindex *x, const char *dir, const bench_def *d, sq_err *e) {
    loaded *l = &x->b[x->nb];
    l->def = d;
    l->path = d == &l->own ? sq_strdup(d->file) : sq_path_join(dir, d->file);
    l->first = x->total;
    if (!l->path) return sq_fail(e, SQ_ENOMEM, "out of memory");
    if (!sq_file_exists(l->path)) return sq_fail(e, SQ_ENOTFOUND, "%s: benchmark %s not found (--bench-dir)", l->path, d->name);
    x->nb++;
    sq_jsonl_reader *r = NULL;
    int rc = sq_jsonl_open(&r, l->path, 0, e);
    cJSON *rec;
    while (!rc && (rc = sq_jsonl_next(r, &rec, e)) == 1) {
        rc = 0;
        /* a NAME=PATH file (an eval set such as the tiny world's) names its question as eval reads it */
        const char *t = d->field ? sq_rec_str(rec, d->field) : NULL;
        for (const char *const *f = (const char *const[]){"query", "question", "problem", NULL}; !d->field && !t && *f; f++)
            t = sq_rec_str(rec, *f);
        if (!t) {
            rc = sq_fail(e, SQ_EPARSE, "%s:%lld: no string \"%s\"", l->path, (long long)sq_jsonl_line_number(r),
                         d->field ? d->field : "query");
        } else {
            uint32_t item = x->total++;
            sq_text_normalize(t, strlen(t), &x->norm);
            if (!x->norm.data) rc = sq_fail(e, SQ_ENOMEM, "out of memory");
            if (!rc) rc = sq_fpmap_put(x->exact, x->norm.data, x->norm.len, item, e);
            put_ctx c = {x, item, e};
            if (!rc && x->ngram > 0) rc = each_ngram(x->norm.data, x->norm.len, x->ngram, put_gram, &c);
            if (!rc && x->near) {
                int n = sq_minhash_of_norm(x->mh, x->norm.data, x->norm.len, x->sig);
                if (n < 0) rc = sq_fail(e, SQ_ENOMEM, "out of memory");
                else if (n > 0) rc = sq_lsh_insert(x->lsh, x->sig, item, e);
            }
            l->items++;
        }
        cJSON_Delete(rec);
    }
    sq_jsonl_close(r);
    return rc < 0 ? rc : 0;
}

/* As eval finds the benchmark files: --bench-dir, else $SQ_ASSETS/data, else ../shared/assets/data. */
static const char *bench_dir(const sq_decontam_opts *o) {
    static char dd[1024];
    if (o->bench_dir) return o->bench_dir;
    snprintf(dd, sizeof dd, "%s%s", getenv("SQ_ASSETS") ? getenv("SQ_ASSETS") : "../shared/assets",
             "/data");
    return dd;
}

static int build_index(bindex *x, const sq_decontam_opts *o, sq_err *e) {
    sq_minhash_params mp = o->mh;
    int rc = sq_minhash_params_resolve(&mp, e);
    x->ngram = o->ngram, x->near = o->near;
    if (!rc) rc = sq_fpmap_new(&x->exact, 0, e);
    if (!rc) rc = sq_fpmap_new(&x->grams, 0, e);
    if (!rc) rc = sq_minhasher_new(&x->mh, &mp, e);
    if (!rc) rc = sq_lsh_new(&x->lsh, mp.bands, mp.rows, 0, e);
    if (!rc && !(x->sig = malloc(sizeof *x->sig * (size_t)mp.num_perm))) rc = sq_fail(e, SQ_ENOMEM, "out of memory");
    const char *p = o->benchmarks;
    while (!rc && p && *p) {
        size_t n = strcspn(p, ",");
        const bench_def *d = NULL;
        const char *eq = memchr(p, '=', n);
        if (x->nb == MAX_BENCH) return sq_fail(e, SQ_EINVAL, "too many benchmarks");
        if (eq) { /* NAME=PATH, as eval takes it */
            bench_def *own = &x->b[x->nb].own;
            own->name = strndup(p, (size_t)(eq - p));
            own->file = strndup(eq + 1, n - (size_t)(eq + 1 - p));
            if (!own->name || !own->file) return sq_fail(e, SQ_ENOMEM, "out of memory");
            if (!*own->name || !*own->file) return sq_fail(e, SQ_EINVAL, "benchmark \"%.*s\": NAME=PATH expected", (int)n, p);
            d = own;
        }
        for (int k = 0; !d && k < N_BENCH; k++)
            if (strlen(BENCHES[k].name) == n && !strncmp(BENCHES[k].name, p, n)) d = &BENCHES[k];
        if (!d)
            return sq_fail(e, SQ_EINVAL, "unknown benchmark \"%.*s\" (known: %s, or NAME=PATH)", (int)n, p,
                           sq_decontam_known());
        rc = load_bench(x, bench_dir(o), d, e);
        p += n;
        if (*p == ',') p++;
    }
    if (!rc && x->nb == 0) rc = sq_fail(e, SQ_EINVAL, "no benchmarks given");
    return rc;
}

static void free_index(bindex *x) {
    for (int k = 0; k < MAX_BENCH; k++) {
        free(x->b[k].path);
        free((char *)x->b[k].own.name);
        free((char *)x->b[k].own.file);
    }
    sq_fpmap_free(x->exact);
    sq_fpmap_free(x->grams);
    sq_lsh_free(x->lsh);
    sq_minhasher_free(x->mh);
    sq_buf_free(&x->norm);
    free(x->sig);
}

static const loaded *bench_of(const bindex *x, uint32_t item) {
    for (int k = x->nb - 1; k >= 0; k--)
        if (item >= x->b[k].first) return &x->b[k];
    return &x->b[0];
}

typedef struct find_ctx {
    const bindex *x;
    int64_t hit;
} find_ctx;

static int find_gram(void *u, const char *s, size_t n) {
    find_ctx *c = u;
    c->hit = sq_fpmap_get(c->x->grams, s, n);
    return c->hit >= 0;
}

/* The benchmark item text overlaps, or -1; *test names the test. */
static int64_t check(bindex *x, const char *text, const char **test) {
    sq_text_normalize(text, strlen(text), &x->norm);
    int64_t hit = sq_fpmap_get(x->exact, x->norm.data, x->norm.len);
    if (hit >= 0) return *test = "exact", hit;
    if (x->ngram > 0) {
        find_ctx c = {x, -1};
        if (each_ngram(x->norm.data, x->norm.len, x->ngram, find_gram, &c) < 0) return -2;
        if (c.hit >= 0) return *test = "ngram", c.hit;
    }
    if (x->near && sq_minhash_of_norm(x->mh, x->norm.data, x->norm.len, x->sig) > 0) {
        hit = sq_lsh_query(x->lsh, x->sig);
        if (hit >= 0) return *test = "near duplicate", hit;
    }
    return -1;
}

/* The dropped line: the record with "contaminated_by" as its last field (through a parsed
 * copy when the record already has that field or a "drop_reason"). */
static int dropped_line(const char *line, size_t len, const char *bench, int64_t index, const char *test, sq_buf *out,
                        sq_err *e) {
    char obj[160];
    snprintf(obj, sizeof obj, "{\"benchmark\":\"%s\",\"index\":%lld,\"test\":\"%s\"}", bench, (long long)index, test);
    return sq_stage_line_add_field(line, len, "contaminated_by", obj, out, e);
}

static int run(bindex *x, const sq_decontam_opts *o, sq_stage *st, sq_err *e) {
    sq_buf id = {0}, text = {0}, drop = {0};
    int rc = 0;
    for (;;) {
        const char *line;
        size_t len;
        int64_t slot;
        int got = sq_stage_next_line_text(st, o->field, &line, &len, &id, &text, &slot, e);
        if (got <= 0) {
            rc = got;
            break;
        }
        const char *test = NULL;
        int64_t hit = check(x, text.data ? text.data : "", &test);
        if (!x->norm.data || hit == -2) {
            rc = sq_fail(e, SQ_ENOMEM, "out of memory");
            break;
        }
        if (hit < 0) {
            rc = sq_stage_keep_line(st, slot, line, len, e);
        } else {
            const loaded *b = bench_of(x, (uint32_t)hit);
            char why[96];
            snprintf(why, sizeof why, "benchmark overlap (%s, %s)", b->def->name, test);
            rc = dropped_line(line, len, b->def->name, hit - b->first, test, &drop, e);
            if (!rc) rc = sq_stage_drop_line(st, slot, drop.data, drop.len, why, e);
        }
        if (rc) break;
    }
    sq_buf_free(&id);
    sq_buf_free(&text);
    sq_buf_free(&drop);
    return rc;
}

/* The report from the whole dropped file (every run), written atomically. */
static int write_report(const bindex *x, const sq_decontam_opts *o, const char *dropped, sq_err *e) {
    int64_t dropped_n[MAX_BENCH] = {0}, by_test[MAX_BENCH][3] = {{0}};
    cJSON *root = cJSON_CreateObject(), *ex[MAX_BENCH];
    for (int k = 0; k < x->nb; k++) ex[k] = cJSON_CreateArray();
    int rc = 0;
    if (dropped && *dropped && sq_file_exists(dropped)) {
        sq_jsonl_reader *r = NULL;
        cJSON *rec;
        rc = sq_jsonl_open(&r, dropped, 0, e);
        while (!rc && (rc = sq_jsonl_next(r, &rec, e)) == 1) {
            rc = 0;
            const cJSON *c = cJSON_GetObjectItemCaseSensitive(rec, "contaminated_by");
            const char *bn = sq_rec_str(c, "benchmark"), *test = sq_rec_str(c, "test");
            double idx = -1;
            sq_rec_num(c, "index", &idx);
            for (int k = 0; bn && k < x->nb; k++) {
                if (strcmp(bn, x->b[k].def->name)) continue;
                dropped_n[k]++;
                int t = !test ? 0 : !strcmp(test, "exact") ? 0 : !strcmp(test, "ngram") ? 1 : 2;
                by_test[k][t]++;
                if (cJSON_GetArraySize(ex[k]) < o->examples) {
                    cJSON *x1 = cJSON_CreateObject();
                    cJSON_AddStringToObject(x1, "id", sq_rec_id(rec) ? sq_rec_id(rec) : "");
                    cJSON_AddStringToObject(x1, "query", sq_rec_str(rec, o->field) ? sq_rec_str(rec, o->field) : "");
                    cJSON_AddNumberToObject(x1, "benchmark_index", idx);
                    cJSON_AddStringToObject(x1, "test", test ? test : "");
                    cJSON_AddItemToArray(ex[k], x1);
                }
            }
            cJSON_Delete(rec);
        }
        sq_jsonl_close(r);
        if (rc > 0) rc = 0;
    }
    cJSON_AddBoolToObject(root, "decontaminated", 1);
    cJSON_AddStringToObject(root, "output", o->stage.out);
    const char *slash = strrchr(o->stage.out, '/');
    cJSON_AddStringToObject(root, "output_name", slash ? slash + 1 : o->stage.out);
    cJSON_AddNumberToObject(root, "output_records", 0); /* filled by the caller */
    cJSON_AddNumberToObject(root, "ngram", o->ngram);
    cJSON_AddBoolToObject(root, "near_duplicate_test", o->near);
    cJSON_AddNumberToObject(root, "threshold", o->mh.threshold);
    cJSON *arr = cJSON_AddArrayToObject(root, "benchmarks");
    for (int k = 0; k < x->nb; k++) {
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "name", x->b[k].def->name);
        cJSON_AddStringToObject(b, "file", x->b[k].def->file);
        cJSON_AddNumberToObject(b, "items", (double)x->b[k].items);
        cJSON_AddNumberToObject(b, "dropped", (double)dropped_n[k]);
        cJSON_AddNumberToObject(b, "dropped_exact", (double)by_test[k][0]);
        cJSON_AddNumberToObject(b, "dropped_ngram", (double)by_test[k][1]);
        cJSON_AddNumberToObject(b, "dropped_near", (double)by_test[k][2]);
        cJSON_AddItemToObject(b, "examples", ex[k]);
        cJSON_AddItemToArray(arr, b);
        if (!sq_progress_is_quiet()) {
            fprintf(stderr, "decontaminate: %-14s %6lld dropped (exact %lld, %d-gram %lld, near %lld)\n",
                    x->b[k].def->name, (long long)dropped_n[k], (long long)by_test[k][0], o->ngram,
                    (long long)by_test[k][1], (long long)by_test[k][2]);
            for (int i = 0; i < cJSON_GetArraySize(ex[k]); i++) {
                const cJSON *x1 = cJSON_GetArrayItem(ex[k], i);
                fprintf(stderr, "    e.g. %s (%s, %s #%d): %.100s\n", sq_rec_str(x1, "id"), sq_rec_str(x1, "test"),
                        x->b[k].def->name, (int)cJSON_GetObjectItem(x1, "benchmark_index")->valuedouble,
                        sq_rec_str(x1, "query"));
            }
        }
    }
    if (!rc) {
        int64_t n = 0;
        sq_jsonl_reader *r = NULL;
        const char *line;
        size_t len;
        if (!(rc = sq_jsonl_open(&r, o->stage.out, 0, e))) {
            while ((rc = sq_jsonl_next_line(r, &line, &len, e)) == 1) n++;
            sq_jsonl_close(r);
        }
        if (rc > 0) rc = 0;
        cJSON_ReplaceItemInObject(root, "output_records", cJSON_CreateNumber((double)n));
    }
    if (!rc) {
        char *text = cJSON_Print(root), *path = o->report ? sq_strdup(o->report) : sq_decontam_report_path(o->stage.out);
        if (!text || !path) rc = sq_fail(e, SQ_ENOMEM, "out of memory");
        else rc = sq_file_write_atomic(path, text, strlen(text), e);
        free(text);
        free(path);
    }
    cJSON_Delete(root);
    return rc;
}

int sq_decontam_run(const sq_decontam_opts *o, sq_err *e) {
    if (!o->stage.in || !o->stage.out)
        return sq_fail(e, SQ_EINVAL, "decontaminate: an input and an output are needed");
    if (o->ngram < 0 || o->ngram > 64) return sq_fail(e, SQ_EINVAL, "decontaminate: n-gram size %d out of range", o->ngram);
    bindex x = {0};
    int rc = build_index(&x, o, e);
    sq_stage *st = NULL;
    sq_stage_opts so = o->stage;
    if (!so.name) so.name = "decontaminate";
    so.own_marker = 1; /* its marker is the report below, never one carried from the input */
    if (!rc) rc = sq_stage_open(&st, &so, e);
    if (!rc) rc = run(&x, o, st, e);
    char *dropped = NULL;
    if (st) {
        dropped = sq_strdup(sq_stage_dropped_path(st));
        if (rc)
            sq_stage_abort(st);
        else
            rc = sq_stage_close(st, NULL, e);
    }
    if (!rc) rc = write_report(&x, o, dropped, e);
    free(dropped);
    free_index(&x);
    return rc;
}
