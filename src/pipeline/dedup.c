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
    sq_minhash_params mp; /* resolved */
    sq_minhasher *mh;
    sq_lsh *lsh;
    sq_fpmap *exact;
    struct pending *cur;
    sq_buf val; /* the JSON text of a duplicate_of */
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

/* One question on its way through: what classify needs, computed ahead (prepare) so that the
 * memory reads of its table slots run while the question before it is settled. */
typedef struct pending {
    sq_buf line, id, norm;
    int64_t slot;
    uint32_t *sig;
    uint64_t *keys;  /* the LSH band keys */
    uint64_t fkey;   /* the exact map's key */
    int n;           /* shingles; 0: no LSH test */
} pending;

static int pending_init(pending *p, const sq_minhash_params *mp) {
    memset(p, 0, sizeof *p);
    p->sig = malloc(sizeof *p->sig * (size_t)mp->num_perm);
    p->keys = malloc(sizeof *p->keys * (size_t)mp->bands);
    return p->sig && p->keys ? 0 : SQ_ENOMEM;
}

static void pending_free(pending *p) {
    sq_buf_free(&p->line), sq_buf_free(&p->id), sq_buf_free(&p->norm);
    free(p->sig), free(p->keys);
}

/* Normal form, keys and prefetches of text. */
static int prepare(dedup *d, const char *text, pending *p, sq_err *e) {
    sq_text_normalize(text, strlen(text), &p->norm);
    if (!p->norm.data) return sq_fail(e, SQ_ENOMEM, "out of memory");
    p->fkey = sq_fpmap_key(p->norm.data, p->norm.len);
    sq_fpmap_prefetch(d->exact, p->fkey);
    p->n = 0;
    if (!d->o->exact_only) {
        p->n = sq_minhash_of_norm(d->mh, p->norm.data, p->norm.len, p->sig);
        if (p->n < 0) return sq_fail(e, SQ_ENOMEM, "out of memory");
        if (p->n > 0) {
            sq_lsh_keys(d->lsh, p->sig, p->keys);
            sq_lsh_prefetch(d->lsh, p->keys);
        }
    }
    return 0;
}

/* Classify a prepared question: -1 new (and indexed as item n_items), else the duplicated
 * item; *near says which test found it. */
static int classify(dedup *d, const char *id, const pending *p, int64_t *dup, int *near, sq_err *e) {
    *near = 0;
    *dup = sq_fpmap_get_key(d->exact, p->fkey);
    if (*dup >= 0) return 0;
    if (p->n > 0 && (*dup = sq_lsh_query_keys(d->lsh, p->keys)) >= 0) {
        *near = 1;
        return 0;
    }
    uint32_t item = (uint32_t)d->n_items;
    int rc = add_item(d, id, e);
    if (!rc) rc = sq_fpmap_put_key(d->exact, p->fkey, item, e);
    if (!rc && p->n > 0) rc = sq_lsh_insert_keys(d->lsh, p->keys, item, e);
    return rc;
}

static int replay(void *user, const cJSON *rec, sq_err *e) {
    dedup *d = user;
    const char *text = sq_rec_str(rec, d->o->field), *id = sq_rec_id(rec);
    if (!text || !id)
        return sq_fail(e, SQ_EPARSE, "%s: a kept record has no string \"%s\" or \"id\"", d->o->stage.out, d->o->field);
    int64_t dup;
    int near;
    int rc = prepare(d, text, d->cur, e);
    if (!rc) rc = classify(d, id, d->cur, &dup, &near, e);
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

/* Settle a classified question. */
static int settle(dedup *d, sq_stage *st, const pending *p, sq_buf *drop, sq_err *e) {
    int64_t dup;
    int near;
    int rc = classify(d, p->id.data, p, &dup, &near, e);
    if (rc) return rc;
    if (dup < 0) {
        d->c.kept++;
        return sq_stage_keep_line(st, p->slot, p->line.data, p->line.len, e);
    }
    near ? d->c.near++ : d->c.exact++;
    sq_buf_reset(&d->val);
    if (json_str(&d->val, item_id(d, dup))) return sq_fail(e, SQ_ENOMEM, "out of memory");
    if (!(rc = sq_stage_line_add_field(p->line.data, p->line.len, "duplicate_of", d->val.data, drop, e)))
        rc = sq_stage_drop_line(st, p->slot, drop->data, drop->len, near ? "near duplicate" : "exact duplicate", e);
    return rc;
}

/* One question ahead: question k+1 is read and prepared before question k is classified, so
 * its table reads are in flight meanwhile. The decisions and their order are those of one at
 * a time; an error on question k+1 comes after question k is settled. */
static int run(dedup *d, sq_stage *st, sq_err *e) {
    const sq_dedup_opts *o = d->o;
    int rc = sq_stage_replay(st, replay, d, e);
    pending q[2];
    int have = 0, k = 0;
    sq_buf text = {0}, drop = {0};
    for (int i = 0; i < 2; i++)
        if (pending_init(&q[i], &d->mp) && !rc) rc = sq_fail(e, SQ_ENOMEM, "out of memory");
    while (!rc) {
        pending *nx = &q[k ^ 1];
        const char *line;
        size_t len;
        int got = sq_stage_next_line_text(st, o->field, &line, &len, &nx->id, &text, &nx->slot, e);
        if (got == 1) {
            sq_buf_reset(&nx->line);
            if (sq_buf_append(&nx->line, line, len)) got = sq_fail(e, SQ_ENOMEM, "out of memory");
            else if ((rc = prepare(d, text.data ? text.data : "", nx, e))) got = rc, rc = 0;
        }
        if (have) {
            sq_err e2 = {0};
            int r2 = settle(d, st, &q[k], &drop, got < 0 ? &e2 : e);
            if (r2) {
                if (got < 0) *e = e2;
                rc = r2;
                break;
            }
        }
        if (got <= 0) {
            rc = got;
            break;
        }
        have = 1, k ^= 1;
    }
    for (int i = 0; i < 2; i++) pending_free(&q[i]);
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
    d.mp = mp;
    if ((rc = sq_stage_open(&st, &so, e))) return rc;
    /* A regular input was counted by the stage: size the index once for it. */
    int64_t todo = sq_stage_remaining_hint(st), expected = todo >= 0 ? todo + count_lines(o->stage.out) : 0;
    pending replay_q;
    d.cur = &replay_q;
    if (pending_init(&replay_q, &mp)) rc = sq_fail(e, SQ_ENOMEM, "out of memory");
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
    pending_free(&replay_q);
    sq_buf_free(&d.val);
    sq_buf_free(&d.ids);
    free(d.off);
    return rc;
}
