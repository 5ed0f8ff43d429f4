/* scalequest jsonl: look at and reshape JSONL files with the data layer's guarantees (every
 * line validated, errors as file:line, outputs written atomically). Records pass through as
 * the exact bytes that were read; nothing is re-serialised. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "scalequest/jsonl.h"

#define CMD "jsonl"

typedef struct {
    sq_strlist in;
    const char *out;
    int64_t n, of, index;
    const char *field, *prefix;
    int normalize, skip_bad;
    int n_set, of_set, index_set;
    /* run state */
    sq_jsonl_writer *w;
    sq_progress prog;
    int64_t bytes_done; /* of finished inputs, for progress */
    int64_t records, bad;
    int stop; /* a handler asks to stop reading (head) */
    sq_err e;
} job;

/* Called once per valid line; returns 0 or a negative code with j->e filled. */
typedef int (*line_fn)(job *j, sq_jsonl_reader *r, const char *line, size_t len, void *ctx);

static int64_t total_mib(const job *j) {
    int64_t total = 0;
    for (int i = 0; i < j->in.n; i++) {
        sq_jsonl_reader *r;
        sq_err e;
        if (!strcmp(j->in.items[i], "-") || sq_jsonl_open(&r, j->in.items[i], 0, &e)) return 0;
        int64_t s = sq_jsonl_size(r);
        sq_jsonl_close(r);
        if (s < 0) return 0;
        total += s;
    }
    return total >> 20;
}

static int each_line(job *j, line_fn fn, void *ctx) {
    for (int i = 0; i < j->in.n && !j->stop; i++) {
        sq_jsonl_reader *r;
        int rc = sq_jsonl_open(&r, j->in.items[i], j->skip_bad, &j->e);
        if (rc) return rc;
        const char *line;
        size_t len;
        while (!j->stop && (rc = sq_jsonl_next_line(r, &line, &len, &j->e)) == 1) {
            j->records++;
            if ((rc = fn(j, r, line, len, ctx)) < 0) break;
            if ((j->records & 4095) == 0) {
                int64_t mib = (j->bytes_done + sq_jsonl_bytes_read(r)) >> 20;
                if (mib > j->prog.done) sq_progress_add(&j->prog, mib - j->prog.done);
            }
        }
        j->bytes_done += sq_jsonl_bytes_read(r);
        if (sq_jsonl_bad_lines(r) > 0)
            fprintf(stderr, "scalequest: " CMD ": skipped %lld bad line%s in %s\n", (long long)sq_jsonl_bad_lines(r),
                    sq_jsonl_bad_lines(r) == 1 ? "" : "s", sq_jsonl_path(r));
        j->bad += sq_jsonl_bad_lines(r);
        sq_jsonl_close(r);
        if (rc < 0) return rc;
    }
    return 0;
}

static int put(job *j, const char *line, size_t len) { return sq_jsonl_write_line(j->w, line, len, &j->e); }

/* ---- the subcommands ------------------------------------------------------------------- */

static int on_count(job *j, sq_jsonl_reader *r, const char *line, size_t len, void *ctx) { return 0; }

static int on_head(job *j, sq_jsonl_reader *r, const char *line, size_t len, void *ctx) {
    int64_t *left = ctx;
    int rc = put(j, line, len);
    if (--*left <= 0) j->stop = 1;
    return rc;
}

typedef struct {
    char *line;
    size_t len;
    int64_t index;
} kept;

typedef struct {
    kept *slots;
    int64_t n, seen;
    sq_rng rng;
} reservoir;

/* Algorithm R: after k records every one of them is in the sample with probability n/k. */
static int on_sample(job *j, sq_jsonl_reader *r, const char *line, size_t len, void *ctx) {
    reservoir *res = ctx;
    int64_t k = res->seen++;
    int64_t slot = k < res->n ? k : (int64_t)sq_rng_below(&res->rng, (uint64_t)k + 1);
    if (slot >= res->n) return 0;
    char *copy = sq_strndup(line, len);
    if (!copy) return sq_fail(&j->e, SQ_ENOMEM, "out of memory keeping the sample");
    free(res->slots[slot].line);
    res->slots[slot] = (kept){copy, len, k};
    return 0;
}

static int by_index(const void *a, const void *b) {
    int64_t x = ((const kept *)a)->index, y = ((const kept *)b)->index;
    return (x > y) - (x < y);
}

static int need_id(job *j, sq_jsonl_reader *r, const char *line, size_t len, sq_buf *id) {
    int got = sq_jsonl_line_str(line, len, "id", id);
    if (got == 1) return 0;
    if (got < 0 && got != SQ_EPARSE) return sq_fail(&j->e, got, "out of memory");
    return sq_fail(&j->e, SQ_EPARSE, "%s:%lld: record has no string \"id\"", sq_jsonl_path(r),
                   (long long)sq_jsonl_line_number(r));
}

static int on_shard(job *j, sq_jsonl_reader *r, const char *line, size_t len, void *ctx) {
    sq_buf *id = ctx;
    int rc = need_id(j, r, line, len, id);
    if (rc) return rc;
    if (sq_jsonl_shard_hash(id->data, id->len) % (uint64_t)j->of != (uint64_t)j->index) return 0;
    return put(j, line, len);
}

typedef struct {
    sq_buf key, norm;
    sq_keyset *set;
} keyed;

static int on_merge(job *j, sq_jsonl_reader *r, const char *line, size_t len, void *ctx) {
    keyed *k = ctx;
    int rc = need_id(j, r, line, len, &k->key);
    if (rc) return rc;
    int added = sq_keyset_add(k->set, k->key.data, k->key.len);
    if (added < 0) return sq_fail(&j->e, SQ_ENOMEM, "out of memory");
    if (!added)
        return sq_fail(&j->e, SQ_EPARSE, "%s:%lld: duplicate id \"%.*s\" (merge expects disjoint inputs)",
                       sq_jsonl_path(r), (long long)sq_jsonl_line_number(r), (int)SQ_MIN(k->key.len, 200), k->key.data);
    return put(j, line, len);
}

static int on_dedup(job *j, sq_jsonl_reader *r, const char *line, size_t len, void *ctx) {
    keyed *k = ctx;
    int got = sq_jsonl_line_str(line, len, j->field, &k->key);
    if (got < 0 && got != SQ_EPARSE) return sq_fail(&j->e, got, "out of memory");
    if (got != 1)
        return sq_fail(&j->e, SQ_EPARSE, "%s:%lld: record has no string field \"%s\"", sq_jsonl_path(r),
                       (long long)sq_jsonl_line_number(r), j->field);
    if (sq_jsonl_dedup_key(k->key.data, k->key.len, j->normalize, &k->norm)) return sq_fail(&j->e, SQ_ENOMEM, "out of memory");
    int added = sq_keyset_add(k->set, k->norm.data, k->norm.len);
    if (added < 0) return sq_fail(&j->e, SQ_ENOMEM, "out of memory");
    return added ? put(j, line, len) : 0;
}

/* Benchmark files (GSM8K, MATH, ...) come without ids: give each record that lacks one
 * PREFIX + its record number (1-based, counted across the inputs), written as the first
 * key; the rest of the line passes through as read. Ids must come out unique. */
static int on_add_ids(job *j, sq_jsonl_reader *r, const char *line, size_t len, void *ctx) {
    keyed *k = ctx;
    const char *path = sq_jsonl_path(r);
    long long ln = (long long)sq_jsonl_line_number(r);
    cJSON *rec = cJSON_ParseWithLength(line, len);
    if (!cJSON_IsObject(rec)) {
        cJSON_Delete(rec);
        return sq_fail(&j->e, SQ_EPARSE, "%s:%lld: a record must be a JSON object", path, ln);
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(rec, "id");
    int rc = 0;
    sq_buf_reset(&k->key);
    if (id && !cJSON_IsString(id))
        rc = sq_fail(&j->e, SQ_EPARSE, "%s:%lld: \"id\" is not a string (rename the field, or make it one)", path, ln);
    else if (id)
        rc = sq_buf_puts(&k->key, id->valuestring) ? sq_fail(&j->e, SQ_ENOMEM, "out of memory") : 0;
    else
        rc = sq_buf_printf(&k->key, "%s%lld", j->prefix ? j->prefix : "", (long long)j->records)
                 ? sq_fail(&j->e, SQ_ENOMEM, "out of memory")
                 : 0;
    cJSON_Delete(rec);
    if (rc) return rc;
    int added = sq_keyset_add(k->set, k->key.data, k->key.len);
    if (added < 0) return sq_fail(&j->e, SQ_ENOMEM, "out of memory");
    if (!added)
        return sq_fail(&j->e, SQ_EPARSE, "%s:%lld: id \"%.*s\" is already taken (choose another --prefix)", path, ln,
                       (int)SQ_MIN(k->key.len, 200), k->key.data);
    if (id) return put(j, line, len);
    const char *rest = memchr(line, '{', len) + 1; /* an object: the first byte of the line that matters */
    size_t rl = len - (size_t)(rest - line);
    int empty = 1;
    for (size_t i = 0; i < rl && empty; i++) empty = rest[i] == ' ' || rest[i] == '\t' || rest[i] == '}';
    sq_buf_reset(&k->norm);
    if (sq_buf_printf(&k->norm, "{\"id\":\"%s\"%s", k->key.data, empty ? "" : ",") ||
        sq_buf_append(&k->norm, rest, rl))
        return sq_fail(&j->e, SQ_ENOMEM, "out of memory");
    return put(j, k->norm.data, k->norm.len);
}

/* ---- the command ----------------------------------------------------------------------- */

static const char *usage =
    "count|head|sample|shard|merge|dedup|add-ids [--in PATH]... [--out PATH] [options] [PATH...]\n\n"
    "  count                       print the number of records\n"
    "  head [--n N]                the first N records (default 10)\n"
    "  sample --n N [--seed S]     N records chosen uniformly at random, in input order\n"
    "  shard --of N --index I      the records whose id hashes to shard I of N\n"
    "                              (FNV-1a 64 of the id's bytes, mod N)\n"
    "  merge                       concatenate inputs; a repeated id is an error\n"
    "  dedup --field F [--normalize]  keep the first record of each value of field F;\n"
    "                              exact by default, --normalize ignores case and whitespace\n"
    "  add-ids [--prefix P]        give each record without an \"id\" P + its record number\n"
    "                              (1-based across the inputs); ids must come out unique\n\n"
    "Inputs: --in (repeatable) and PATH arguments, '-' or none for stdin. Output: --out PATH,\n"
    "written atomically (temp file + rename), or stdout by default.";

static int run(job *j, const char *sub) {
    int rc = 0;
    if (!strcmp(sub, "count")) {
        rc = each_line(j, on_count, NULL);
        if (!rc) printf("%lld\n", (long long)(j->records));
        return rc;
    }
    if ((rc = sq_jsonl_writer_open(&j->w, j->out, SQ_JSONL_CREATE, &j->e))) return rc;
    if (!strcmp(sub, "head")) {
        int64_t left = j->n_set ? j->n : 10;
        if (left > 0) rc = each_line(j, on_head, &left);
    } else if (!strcmp(sub, "sample")) {
        reservoir res = {calloc((size_t)SQ_MAX(j->n, 1), sizeof(kept)), j->n, 0, {{0}}};
        sq_rng_seed(&res.rng, sq_common.seed);
        if (!res.slots) rc = sq_fail(&j->e, SQ_ENOMEM, "out of memory for a sample of %lld", (long long)j->n);
        if (!rc) rc = each_line(j, on_sample, &res);
        int64_t got = SQ_MIN(res.seen, res.n);
        if (!rc) qsort(res.slots, (size_t)got, sizeof(kept), by_index);
        for (int64_t i = 0; !rc && i < got; i++) rc = put(j, res.slots[i].line, res.slots[i].len);
        for (int64_t i = 0; res.slots && i < got; i++) free(res.slots[i].line);
        free(res.slots);
    } else if (!strcmp(sub, "shard")) {
        sq_buf id = {0};
        rc = each_line(j, on_shard, &id);
        sq_buf_free(&id);
    } else {
        keyed k = {{0}, {0}, sq_keyset_new()};
        if (!k.set) rc = sq_fail(&j->e, SQ_ENOMEM, "out of memory");
        else rc = each_line(j, !strcmp(sub, "merge") ? on_merge : !strcmp(sub, "add-ids") ? on_add_ids : on_dedup, &k);
        if (!rc && !strcmp(sub, "dedup"))
            sq_info("dedup: kept %lld of %lld records (%lld duplicates of \"%s\", %s)", (long long)sq_keyset_size(k.set),
                    (long long)j->records, (long long)(j->records - (int64_t)sq_keyset_size(k.set)), j->field,
                    j->normalize ? "case and whitespace ignored" : "exact");
        sq_keyset_free(k.set);
        sq_buf_free(&k.key);
        sq_buf_free(&k.norm);
    }
    if (rc) {
        sq_jsonl_writer_abort(j->w);
        return rc;
    }
    return sq_jsonl_writer_close(j->w, &j->e);
}

static int cmd_jsonl(int argc, char **argv) {
    job j;
    memset(&j, 0, sizeof j);
    j.out = "-";
    const sq_opt opts[] = {
        {"in", SQ_OPT_LIST, &j.in, "PATH", "input file, repeatable ('-' = stdin, the default)"},
        {"out", SQ_OPT_STR, &j.out, "PATH", "output file, written atomically (default stdout)"},
        {"n", SQ_OPT_INT, &j.n, "N", "head: records to keep (default 10); sample: sample size"},
        {"of", SQ_OPT_INT, &j.of, "N", "shard: number of shards"},
        {"index", SQ_OPT_INT, &j.index, "I", "shard: which shard, 0..N-1"},
        {"field", SQ_OPT_STR, &j.field, "F", "dedup: the string field to compare"},
        {"normalize", SQ_OPT_FLAG, &j.normalize, NULL, "dedup: ignore case and runs of whitespace"},
        {"prefix", SQ_OPT_STR, &j.prefix, "P", "add-ids: text before each record number (letters, digits, _ . : -)"},
        {"skip-bad", SQ_OPT_FLAG, &j.skip_bad, NULL, "skip invalid lines (counted and reported) instead of failing"},
    };
    const char *pos[64];
    int npos;
    /* Sentinels tell "given" from "default" for the integer options. */
    j.n = j.of = j.index = INT64_MIN;
    int rc = sq_cli_parse(argc, argv, usage, opts, (int)SQ_ARRAY_LEN(opts), pos, (int)SQ_ARRAY_LEN(pos), &npos);
    if (rc >= 0) return rc;
    j.n_set = j.n != INT64_MIN, j.of_set = j.of != INT64_MIN, j.index_set = j.index != INT64_MIN;
    if (npos < 1) return sq_cli_usage_error(CMD, "which subcommand? count, head, sample, shard, merge, dedup or add-ids");
    const char *sub = pos[0];
    static const char *subs[] = {"count", "head", "sample", "shard", "merge", "dedup", "add-ids"};
    int known = 0;
    for (size_t i = 0; i < SQ_ARRAY_LEN(subs); i++) known |= !strcmp(sub, subs[i]);
    if (!known) return sq_cli_usage_error(CMD, "unknown subcommand '%s'", sub);
    for (int i = 1; i < npos; i++) {
        if (j.in.n >= (int)SQ_ARRAY_LEN(j.in.items)) return sq_cli_usage_error(CMD, "too many inputs");
        j.in.items[j.in.n++] = pos[i];
    }
    if (j.in.n == 0) j.in.items[j.in.n++] = "-";
    if (j.n_set && j.n < 0) return sq_cli_usage_error(CMD, "--n must be 0 or more");
    if (!strcmp(sub, "sample") && !j.n_set) return sq_cli_usage_error(CMD, "sample needs --n N");
    if (!strcmp(sub, "shard")) {
        if (!j.of_set || !j.index_set) return sq_cli_usage_error(CMD, "shard needs --of N and --index I");
        if (j.of < 1) return sq_cli_usage_error(CMD, "--of must be at least 1");
        if (j.index < 0 || j.index >= j.of)
            return sq_cli_usage_error(CMD, "--index %lld is outside 0..%lld", (long long)j.index, (long long)j.of - 1);
    }
    if (!strcmp(sub, "dedup") && !j.field) return sq_cli_usage_error(CMD, "dedup needs --field F");
    for (const char *p = j.prefix; p && *p; p++) /* written into JSON unescaped */
        if (!(isalnum((unsigned char)*p) || strchr("_.:-", *p)))
            return sq_cli_usage_error(CMD, "--prefix may hold letters, digits, '_', '.', ':' and '-' only");
    if (!strcmp(sub, "count") && strcmp(j.out, "-"))
        return sq_cli_usage_error(CMD, "count prints to stdout; --out does not apply");

    char label[40];
    snprintf(label, sizeof label, "jsonl %s (MiB)", sub);
    sq_progress_start(&j.prog, label, total_mib(&j));
    rc = run(&j, sub);
    sq_progress_finish(&j.prog);
    if (rc) return sq_cli_fail(CMD, "%s", j.e.msg);
    return SQ_EXIT_OK;
}

SQ_COMMAND(jsonl, "jsonl", "count, head, sample, shard, merge, dedup or add ids to JSONL files", cmd_jsonl);
