/* The dedup stage (dedup.h): exact-after-normalisation, then MinHash LSH against the records
 * kept so far; the first occurrence stays. */
#include "scalequest/dedup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/jsonl.h"

void sq_dedup_opts_default(sq_dedup_opts *o) {
    memset(o, 0, sizeof *o);
    sq_stage_opts_default(&o->stage);
    o->stage.name = "dedup";
    o->field = "query";
    sq_minhash_params_default(&o->mh);
}

typedef struct dedup {
    const sq_dedup_opts *o;
    sq_minhasher *mh;
    sq_lsh *lsh;
    sq_fpmap *exact;
    sq_buf norm;
    uint32_t *sig;
    /* ids of kept records, item k at ids.data + off[k] */
    sq_buf ids;
    uint64_t *off;
    size_t n_items, cap_items;
    sq_dedup_counts c;
} dedup;

static int add_item(dedup *d, const char *id, sq_err *e) {
    if (d->n_items == d->cap_items) {
        size_t cap = d->cap_items ? d->cap_items * 2 : 4096;
        uint64_t *no = realloc(d->off, cap * sizeof *no);
        if (!no) return sq_fail(e, SQ_ENOMEM, "out of memory");
        d->off = no, d->cap_items = cap;
    }
    if (d->n_items >= UINT32_MAX - 1) return sq_fail(e, SQ_ERANGE, "dedup: more than 4 billion kept records");
    d->off[d->n_items++] = d->ids.len;
    if (sq_buf_append(&d->ids, id, strlen(id) + 1)) return sq_fail(e, SQ_ENOMEM, "out of memory");
    return 0;
}

static const char *item_id(const dedup *d, int64_t k) { return d->ids.data + d->off[k]; }

/* Classify text: -1 new (and indexed as item n_items), else the duplicated item; *near says
 * which test found it. */
static int classify(dedup *d, const char *id, const char *text, int64_t *dup, int *near, sq_err *e) {
    sq_text_normalize(text, strlen(text), &d->norm);
    if (!d->norm.data) return sq_fail(e, SQ_ENOMEM, "out of memory");
    *near = 0;
    *dup = sq_fpmap_get(d->exact, d->norm.data, d->norm.len);
    if (*dup >= 0) return 0;
    int n = 0;
    if (!d->o->exact_only) {
        n = sq_minhash_of_norm(d->mh, d->norm.data, d->norm.len, d->sig);
        if (n < 0) return sq_fail(e, SQ_ENOMEM, "out of memory");
        if (n > 0 && (*dup = sq_lsh_query(d->lsh, d->sig)) >= 0) {
            *near = 1;
            return 0;
        }
    }
    uint32_t item = (uint32_t)d->n_items;
    int rc = add_item(d, id, e);
    if (!rc) rc = sq_fpmap_put(d->exact, d->norm.data, d->norm.len, item, e);
    if (!rc && n > 0) rc = sq_lsh_insert(d->lsh, d->sig, item, e);
    return rc;
}

static int replay(void *user, const cJSON *rec, sq_err *e) {
    dedup *d = user;
    const char *text = sq_rec_str(rec, d->o->field), *id = sq_rec_id(rec);
    if (!text || !id)
        return sq_fail(e, SQ_EPARSE, "%s: a kept record has no string \"%s\" or \"id\"", d->o->stage.out, d->o->field);
    int64_t dup;
    int near;
    int rc = classify(d, id, text, &dup, &near, e);
    if (!rc && dup >= 0) /* the output was not written by this configuration */
        return sq_fail(e, SQ_ESTATE, "%s: kept record \"%s\" duplicates \"%s\" under these settings; resume with the "
                       "options of the first run", d->o->stage.out, id, item_id(d, dup));
    return rc;
}

/* Records already in a JSONL file (lines), 0 when it does not exist. */
static int64_t count_lines(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char buf[1 << 16];
    int64_t n = 0;
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0)
        for (char *p = buf; (p = memchr(p, '\n', (size_t)(buf + got - p))); p++) n++;
    fclose(f);
    return n;
}

/* JSON string of s (quoted, escaped) appended to b. */
static int json_str(sq_buf *b, const char *s) {
    static const char hex[] = "0123456789abcdef";
    int rc = sq_buf_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; !rc && *p; p++) {
        if (*p == '"' || *p == '\\') {
            char x[2] = {'\\', (char)*p};
            rc = sq_buf_append(b, x, 2);
        } else if (*p < 0x20) {
            char x[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
            rc = sq_buf_append(b, x, 6);
        } else {
            rc = sq_buf_append(b, p, 1);
        }
    }
    return rc ? rc : sq_buf_append(b, "\"", 1);
}

/* The dropped line: the record with "duplicate_of" as its last field (textually, unless the
 * record already has that field or a "drop_reason": then through a parsed copy). */
static int dropped_line(const char *line, size_t len, const char *dup_id, sq_buf *out, sq_err *e) {
    sq_buf_reset(out);
    if (memmem(line, len, "\"duplicate_of\"", 14) || memmem(line, len, "\"drop_reason\"", 13)) {
        cJSON *rec;
        int rc = sq_jsonl_parse(line, len, &rec, e);
        if (rc) return rc;
        cJSON_DeleteItemFromObjectCaseSensitive(rec, "drop_reason");
        char *t = sq_rec_set_str(rec, "duplicate_of", dup_id) ? NULL : sq_rec_to_line(rec);
        cJSON_Delete(rec);
        rc = !t || sq_buf_puts(out, t);
        free(t);
        return rc ? sq_fail(e, SQ_ENOMEM, "out of memory") : 0;
    }
    size_t end = len;
    while (end > 0 && line[end - 1] != '}') end--;
    if (end == 0 || sq_buf_append(out, line, end - 1) || sq_buf_puts(out, ",\"duplicate_of\":") ||
        json_str(out, dup_id) || sq_buf_append(out, "}", 1))
        return sq_fail(e, SQ_ENOMEM, "out of memory");
    return 0;
}

static int run(dedup *d, sq_stage *st, sq_err *e) {
    const sq_dedup_opts *o = d->o;
    int rc = sq_stage_replay(st, replay, d, e);
    sq_buf id = {0}, text = {0}, drop = {0};
    while (!rc) {
        const char *line;
        size_t len;
        int64_t slot;
        int got = sq_stage_next_line_text(st, o->field, &line, &len, &id, &text, &slot, e);
        if (got <= 0) {
            rc = got;
            break;
        }
        int64_t dup;
        int near;
        if ((rc = classify(d, id.data, text.data ? text.data : "", &dup, &near, e))) break;
        if (dup < 0) {
            d->c.kept++;
            rc = sq_stage_keep_line(st, slot, line, len, e);
            continue;
        }
        near ? d->c.near++ : d->c.exact++;
        if (!(rc = dropped_line(line, len, item_id(d, dup), &drop, e)))
            rc = sq_stage_drop_line(st, slot, drop.data, drop.len, near ? "near duplicate" : "exact duplicate", e);
    }
    sq_buf_free(&id);
    sq_buf_free(&text);
    sq_buf_free(&drop);
    return rc;
}

int sq_dedup_run(const sq_dedup_opts *o, sq_dedup_counts *counts, sq_err *e) {
    if (!o->stage.in || !o->stage.out) return sq_fail(e, SQ_EINVAL, "dedup: an input and an output are needed");
    dedup d = {.o = o};
    sq_minhash_params mp = o->mh;
    int rc = sq_minhash_params_resolve(&mp, e);
    if (rc) return sq_err_wrap(e, "dedup"), rc;
    sq_stage_opts so = o->stage;
    if (!so.name) so.name = "dedup";
    if (!so.window) so.window = 64;
    sq_stage *st = NULL;
    if ((rc = sq_stage_open(&st, &so, e))) return rc;
    /* A regular input was counted by the stage: size the index once for it. */
    int64_t todo = sq_stage_remaining_hint(st), expected = todo >= 0 ? todo + count_lines(o->stage.out) : 0;
    if (!(d.sig = malloc(sizeof *d.sig * (size_t)mp.num_perm))) rc = sq_fail(e, SQ_ENOMEM, "out of memory");
    if (!rc) rc = sq_minhasher_new(&d.mh, &mp, e);
    if (!rc) rc = sq_lsh_new(&d.lsh, mp.bands, mp.rows, expected, e);
    if (!rc) rc = sq_fpmap_new(&d.exact, expected, e);
    if (!rc) rc = run(&d, st, e);
    if (!rc) d.c.index_bytes = sq_lsh_bytes(d.lsh) + sq_fpmap_bytes(d.exact) + d.ids.cap + d.cap_items * 8;
    if (rc)
        sq_stage_abort(st);
    else
        rc = sq_stage_close(st, NULL, e);
    if (counts) *counts = d.c;
    sq_minhasher_free(d.mh);
    sq_lsh_free(d.lsh);
    sq_fpmap_free(d.exact);
    sq_buf_free(&d.norm);
    sq_buf_free(&d.ids);
    free(d.off);
    free(d.sig);
    return rc;
}
