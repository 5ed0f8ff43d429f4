/* The stage contract (stage.h): resume by id, shard by id, a reorder window that commits in
 * input order, a dropped file, a failed file, progress and the funnel line. */
#include "scalequest/stage.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/decontam.h"
#include "scalequest/jsonl.h"
#include "stage_internal.h"

enum { SLOT_PENDING = 0, SLOT_KEEP, SLOT_DROP, SLOT_FAIL };
enum { MAX_REASONS = 32 };

typedef struct slot {
    int state;
    char *line; /* the serialised record to commit (KEEP, DROP) */
} slot;

typedef struct reason_count {
    char name[64];
    int64_t n;
} reason_count;

struct sq_stage {
    sq_stage_opts o;
    char *dropped_path;
    sq_jsonl_reader *r;
    sq_jsonl_writer *out, *drop, *fail;
    sq_keyset *seen; /* ids handed out in this run: a second one is a duplicate input id */
    slot *ring;
    int cap;
    int64_t base, next; /* slots [base, next) are in flight */
    int64_t remaining;  /* -1 unknown */
    sq_progress prog;
    sq_stage_counts c;
    reason_count reasons[MAX_REASONS];
    int n_reasons;
    int started, replayed;
    int64_t taken; /* records keep and drop were given (stage_internal.h) */
    /* Why these two exist: a raw-line stage (dedup) spent a third of its time in id sets.
     * unique_input: the input now being read was prechecked (no id twice), so `seen` cannot
     * find a repeat and is not kept. none_before: the outputs were empty at open, so with a
     * unique input no record of the raw-line path (which keeps its input's id) is done. */
    int unique_input, none_before;
    int64_t checked_size; /* size of the input the precheck read; -1 none */
    int raw;              /* the raw-line path is in use: its outputs are written in batches */
};

void sq_stage_opts_default(sq_stage_opts *o) {
    memset(o, 0, sizeof *o);
    o->name = "stage";
    o->window = 1024;
}

int sq_stage_parse_shard(const char *s, int *index, int *count, sq_err *e) {
    char *end;
    errno = 0;
    long i = strtol(s, &end, 10);
    if (end == s || *end != '/' || errno) goto bad;
    const char *p = end + 1;
    long n = strtol(p, &end, 10);
    if (end == p || *end || errno || n < 1 || n > 1 << 20 || i < 0 || i >= n) goto bad;
    *index = (int)i;
    *count = (int)n;
    return 0;
bad:
    return sq_fail(e, SQ_EINVAL, "--shard \"%s\": expected I/N with 0 <= I < N (e.g. 0/4)", s);
}

uint64_t sq_stage_seed(uint64_t seed, const char *id) {
    uint64_t h = 1469598103934665603ull ^ seed;
    for (; *id; id++) h = (h ^ (unsigned char)*id) * 1099511628211ull;
    /* splitmix64 finaliser: nearby ids and seeds give unrelated streams */
    h += 0x9e3779b97f4a7c15ull;
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
    return h ^ (h >> 31);
}

static int in_shard(const sq_stage *st, const char *id, size_t len) {
    if (st->o.shard_count <= 1) return 1;
    return sq_jsonl_shard_hash(id, len) % (uint64_t)st->o.shard_count == (uint64_t)st->o.shard_index;
}

static int done_before(const sq_stage *st, const char *id) {
    return sq_jsonl_writer_has_id(st->out, id) || (st->drop && sq_jsonl_writer_has_id(st->drop, id));
}

static char *default_dropped_path(const char *out) {
    size_t n = strlen(out);
    const char *suf = ".dropped.jsonl";
    size_t keep = n >= 6 && !strcmp(out + n - 6, ".jsonl") ? n - 6 : n;
    char *p = malloc(keep + strlen(suf) + 1);
    if (!p) return NULL;
    memcpy(p, out, keep);
    strcpy(p + keep, suf);
    return p;
}

/* One pass over the input before anything is written: every record has an id, no id appears
 * twice, and how many records this run will settle (for the ETA). */
static int precheck_input(sq_stage *st, sq_err *e) {
    sq_jsonl_reader *r = NULL;
    sq_keyset *ids = sq_keyset_new();
    sq_buf id = {0};
    int rc;
    if (!ids) return sq_fail(e, SQ_ENOMEM, "out of memory");
    if ((rc = sq_jsonl_open(&r, st->o.in, st->o.skip_bad, e))) goto out;
    const char *line;
    size_t len;
    int64_t todo = 0;
    while ((rc = sq_jsonl_next_line(r, &line, &len, e)) == 1) {
        sq_buf_reset(&id);
        int got = sq_jsonl_line_str(line, len, "id", &id);
        if (got < 0) {
            rc = got == SQ_ENOMEM ? sq_fail(e, SQ_ENOMEM, "out of memory")
                                  : sq_fail(e, SQ_EPARSE, "%s:%lld: not a JSON object", st->o.in,
                                            (long long)sq_jsonl_line_number(r));
            goto out;
        }
        if (!got || id.len == 0) {
            rc = sq_fail(e, SQ_EPARSE,
                         "%s:%lld: record has no string \"id\" (`scalequest jsonl add-ids` gives every line one)",
                         st->o.in, (long long)sq_jsonl_line_number(r));
            goto out;
        }
        int added = sq_keyset_add(ids, id.data, id.len);
        if (added < 0) {
            rc = sq_fail(e, SQ_ENOMEM, "out of memory");
            goto out;
        }
        if (!added) {
            rc = sq_fail(e, SQ_EPARSE, "%s:%lld: id \"%s\" appears more than once in the input; nothing was written",
                         st->o.in, (long long)sq_jsonl_line_number(r), id.data);
            goto out;
        }
        if (in_shard(st, id.data, id.len) && !(st->out && done_before(st, id.data))) todo++;
    }
    if (rc == 0) st->remaining = todo, st->checked_size = sq_jsonl_size(r);
out:
    sq_jsonl_close(r);
    sq_keyset_free(ids);
    sq_buf_free(&id);
    return rc < 0 ? rc : 0;
}

int sq_stage_open(sq_stage **pst, const sq_stage_opts *o, sq_err *e) {
    *pst = NULL;
    if (!o || !o->out || !*o->out) return sq_fail(e, SQ_EINVAL, "stage: no output file given");
    if (o->shard_count > 1 && (o->shard_index < 0 || o->shard_index >= o->shard_count))
        return sq_fail(e, SQ_EINVAL, "stage: shard %d/%d out of range", o->shard_index, o->shard_count);
    sq_stage *st = calloc(1, sizeof *st);
    if (!st) return sq_fail(e, SQ_ENOMEM, "out of memory");
    st->o = *o;
    if (!st->o.name) st->o.name = "stage";
    st->cap = o->window > 0 ? o->window : 1024;
    st->remaining = -1;
    st->checked_size = -1;
    int rc;
    if (!(st->ring = calloc((size_t)st->cap, sizeof(slot))) || !(st->seen = sq_keyset_new())) {
        rc = sq_fail(e, SQ_ENOMEM, "out of memory");
        goto fail;
    }
    if (o->in && o->out && !strcmp(o->in, o->out)) {
        rc = sq_fail(e, SQ_EINVAL, "%s: the input and the output are the same file", o->in);
        goto fail;
    }
    if (o->dropped) st->dropped_path = sq_strdup(o->dropped);
    else st->dropped_path = default_dropped_path(o->out);
    if (!st->dropped_path) {
        rc = sq_fail(e, SQ_ENOMEM, "out of memory");
        goto fail;
    }
    /* A first run checks its input before it creates any output, so a bad input leaves no
     * empty files behind; a resumed run opens its outputs first, to count what is done. */
    int fresh = !sq_file_exists(o->out), check = o->in && strcmp(o->in, "-");
    if (check && fresh && (rc = precheck_input(st, e))) goto fail;
    if ((rc = sq_jsonl_writer_open(&st->out, o->out, SQ_JSONL_APPEND, e))) goto fail;
    if (*st->dropped_path && (rc = sq_jsonl_writer_open(&st->drop, st->dropped_path, SQ_JSONL_APPEND, e))) goto fail;
    if (o->failed && *o->failed && (rc = sq_jsonl_writer_open(&st->fail, o->failed, SQ_JSONL_APPEND, e))) goto fail;
    if (o->in) {
        if (check && !fresh && (rc = precheck_input(st, e))) goto fail;
        if ((rc = sq_jsonl_open(&st->r, o->in, o->skip_bad, e))) goto fail;
        /* a file that changed size since the precheck gets the full checks */
        st->unique_input = st->checked_size >= 0 && sq_jsonl_size(st->r) == st->checked_size;
        st->none_before = sq_jsonl_writer_count(st->out) == 0 && (!st->drop || sq_jsonl_writer_count(st->drop) == 0);
    } else if (o->total > 0) {
        st->remaining = o->total; /* refined as offers turn out to be done already */
    }
    *pst = st;
    return 0;
fail:
    sq_stage_abort(st);
    return rc;
}

int sq_stage_replay(sq_stage *st, sq_stage_resume_fn fn, void *user, sq_err *e) {
    if (st->started) return sq_fail(e, SQ_ESTATE, "%s: replay after the first record", st->o.name);
    st->replayed = 1;
    if (sq_jsonl_writer_count(st->out) == 0) return 0;
    sq_jsonl_reader *r = NULL;
    int rc = sq_jsonl_open(&r, st->o.out, 0, e);
    if (rc) return rc;
    cJSON *rec;
    while ((rc = sq_jsonl_next(r, &rec, e)) == 1) {
        rc = fn(user, rec, e);
        cJSON_Delete(rec);
        if (rc) break;
    }
    sq_jsonl_close(r);
    return rc < 0 ? rc : 0;
}

static void start_progress(sq_stage *st) {
    if (st->started) return;
    st->started = 1;
    sq_progress_start(&st->prog, st->o.name, st->remaining);
}

static int take_slot(sq_stage *st, const char *id, int64_t *slot_out, sq_err *e) {
    if (st->next - st->base >= st->cap)
        return sq_fail(e, SQ_ESTATE, "%s: %d records in flight (the window is full)", st->o.name, st->cap);
    int added = st->unique_input ? 1 : sq_keyset_add(st->seen, id, strlen(id));
    if (added < 0) return sq_fail(e, SQ_ENOMEM, "out of memory");
    if (!added) {
        if (st->r)
            return sq_fail(e, SQ_EPARSE, "%s:%lld: id \"%s\" appears more than once in the input", sq_jsonl_path(st->r),
                           (long long)sq_jsonl_line_number(st->r), id);
        return sq_fail(e, SQ_EINVAL, "%s: id \"%s\" offered twice", st->o.name, id);
    }
    slot *s = &st->ring[st->next % st->cap];
    s->state = SLOT_PENDING;
    s->line = NULL;
    *slot_out = st->next++;
    return 0;
}

int sq_stage_next(sq_stage *st, cJSON **rec, int64_t *slot_out, sq_err *e) {
    *rec = NULL;
    if (!st->r) return sq_fail(e, SQ_ESTATE, "%s: sq_stage_next without an input file", st->o.name);
    start_progress(st);
    for (;;) {
        cJSON *x;
        int rc = sq_jsonl_next(st->r, &x, e);
        if (rc <= 0) return rc;
        const char *id = sq_rec_id(x);
        if (!id || !*id) {
            int64_t line = sq_jsonl_line_number(st->r);
            cJSON_Delete(x);
            return sq_fail(e, SQ_EPARSE, "%s:%lld: record has no string \"id\"", sq_jsonl_path(st->r), (long long)line);
        }
        if (!in_shard(st, id, strlen(id))) {
            cJSON_Delete(x);
            continue;
        }
        st->c.in++;
        if (done_before(st, id)) {
            st->c.skipped++;
            cJSON_Delete(x);
            continue;
        }
        if ((rc = take_slot(st, id, slot_out, e))) {
            cJSON_Delete(x);
            return rc;
        }
        *rec = x;
        return 1;
    }
}

int sq_stage_offer(sq_stage *st, const cJSON *rec, int64_t *slot_out, sq_err *e) {
    start_progress(st);
    const char *id = sq_rec_id(rec);
    if (!id || !*id) return sq_fail(e, SQ_EINVAL, "%s: offered a record without an id", st->o.name);
    if (!in_shard(st, id, strlen(id))) {
        if (st->remaining > 0 && st->o.shard_count > 1) st->remaining--;
        return 0;
    }
    st->c.in++;
    if (done_before(st, id)) {
        st->c.skipped++;
        if (st->remaining > 0) st->remaining--;
        st->prog.total = st->remaining;
        return 0;
    }
    int rc = take_slot(st, id, slot_out, e);
    return rc ? rc : 1;
}

int64_t sq_stage_taken(const sq_stage *st) { return st->taken; }

int sq_stage_is_done(const sq_stage *st, const char *id) {
    return !in_shard(st, id, strlen(id)) || done_before(st, id);
}

int sq_stage_pending(const sq_stage *st) { return (int)(st->next - st->base); }

int64_t sq_stage_remaining_hint(const sq_stage *st) { return st->remaining; }

int64_t sq_stage_input_line(const sq_stage *st) { return st->r ? sq_jsonl_line_number(st->r) : 0; }

/* Commit every settled slot at the front of the window, in order. */
static int flush(sq_stage *st, sq_err *e) {
    while (st->base < st->next) {
        slot *s = &st->ring[st->base % st->cap];
        if (s->state == SLOT_PENDING) break;
        int rc = 0;
        if (s->state == SLOT_KEEP) rc = sq_jsonl_write_line(st->out, s->line, strlen(s->line), e);
        else if (s->state == SLOT_DROP && st->drop) rc = sq_jsonl_write_line(st->drop, s->line, strlen(s->line), e);
        free(s->line);
        s->line = NULL;
        s->state = SLOT_PENDING;
        st->base++;
        if (rc) return rc;
    }
    return 0;
}

static slot *settle_slot(sq_stage *st, int64_t id, sq_err *e) {
    if (id < st->base || id >= st->next) {
        sq_fail(e, SQ_EINVAL, "%s: slot %lld is not in flight", st->o.name, (long long)id);
        return NULL;
    }
    slot *s = &st->ring[id % st->cap];
    if (s->state != SLOT_PENDING) {
        sq_fail(e, SQ_ESTATE, "%s: slot %lld settled twice", st->o.name, (long long)id);
        return NULL;
    }
    return s;
}

static int settle(sq_stage *st, int64_t slot_id, cJSON *rec, int state, sq_err *e) {
    slot *s = settle_slot(st, slot_id, e);
    if (!s) {
        cJSON_Delete(rec);
        return e ? e->code : SQ_EINVAL;
    }
    s->line = sq_rec_to_line(rec);
    cJSON_Delete(rec);
    if (!s->line) return sq_fail(e, SQ_ENOMEM, "out of memory");
    s->state = state;
    sq_progress_add(&st->prog, 1);
    return flush(st, e);
}

int sq_stage_keep(sq_stage *st, int64_t slot_id, cJSON *rec, sq_err *e) {
    st->taken++;
    st->c.kept++;
    return settle(st, slot_id, rec, SLOT_KEEP, e);
}

static void count_reason(sq_stage *st, const char *reason) {
    for (int i = 0; i < st->n_reasons; i++)
        if (!strcmp(st->reasons[i].name, reason)) {
            st->reasons[i].n++;
            return;
        }
    int i = st->n_reasons < MAX_REASONS ? st->n_reasons++ : MAX_REASONS - 1;
    if (i == MAX_REASONS - 1 && st->reasons[i].n && strcmp(st->reasons[i].name, "other")) {
        snprintf(st->reasons[i].name, sizeof st->reasons[i].name, "other");
    } else if (!st->reasons[i].n) {
        snprintf(st->reasons[i].name, sizeof st->reasons[i].name, "%s", reason);
    }
    st->reasons[i].n++;
}

int sq_stage_drop(sq_stage *st, int64_t slot_id, cJSON *rec, const char *reason, sq_err *e) {
    st->taken++;
    if (!reason || !*reason) reason = "unspecified";
    if (sq_rec_set_str(rec, "drop_reason", reason)) {
        cJSON_Delete(rec);
        return sq_fail(e, SQ_ENOMEM, "out of memory");
    }
    st->c.dropped++;
    count_reason(st, reason);
    return settle(st, slot_id, rec, SLOT_DROP, e);
}

int sq_stage_fail(sq_stage *st, int64_t slot_id, const char *id, const char *error, sq_err *e) {
    slot *s = settle_slot(st, slot_id, e);
    if (!s) return e ? e->code : SQ_EINVAL;
    st->c.failed++;
    if (!id) id = "?";
    if (!error) error = "unknown error";
    sq_warn("%s: request %s failed: %s", st->o.name, id, error);
    s->state = SLOT_FAIL;
    sq_progress_add(&st->prog, 1);
    if (st->fail && !sq_jsonl_writer_has_id(st->fail, id)) {
        /* a request that fails again in a later run keeps its first entry */
        cJSON *f = cJSON_CreateObject();
        int rc = !f || !cJSON_AddStringToObject(f, "id", id) || !cJSON_AddStringToObject(f, "error", error)
                     ? sq_fail(e, SQ_ENOMEM, "out of memory")
                     : sq_jsonl_write(st->fail, f, e);
        cJSON_Delete(f);
        if (rc) return rc;
    }
    return flush(st, e);
}

void sq_stage_add_tokens(sq_stage *st, int64_t prompt_tokens, int64_t completion_tokens) {
    st->c.prompt_tokens += prompt_tokens;
    st->c.completion_tokens += completion_tokens;
    sq_progress_add_tokens(&st->prog, completion_tokens);
}

void sq_stage_get_counts(const sq_stage *st, sq_stage_counts *c) {
    *c = st->c;
    c->out_total = sq_jsonl_writer_count(st->out);
    c->dropped_total = st->drop ? sq_jsonl_writer_count(st->drop) : 0;
}

const char *sq_stage_dropped_path(const sq_stage *st) { return st->dropped_path ? st->dropped_path : ""; }

static void print_funnel(const sq_stage *st) {
    char reasons[512] = "";
    size_t at = 0;
    for (int i = 0; i < st->n_reasons && at < sizeof reasons; i++)
        at += (size_t)snprintf(reasons + at, sizeof reasons - at, "%s%s %lld", i ? ", " : " (", st->reasons[i].name,
                               (long long)st->reasons[i].n);
    if (st->n_reasons && at < sizeof reasons) snprintf(reasons + at, sizeof reasons - at, ")");
    char shard[32] = "";
    if (st->o.shard_count > 1) snprintf(shard, sizeof shard, " [shard %d/%d]", st->o.shard_index, st->o.shard_count);
    fprintf(stderr, "%s%s: %lld in, %lld kept, %lld dropped%s, %lld failed; %lld already done\n", st->o.name, shard,
            (long long)st->c.in, (long long)st->c.kept, (long long)st->c.dropped, reasons, (long long)st->c.failed,
            (long long)st->c.skipped);
}

/* Under `scalequest run`, SCALEQUEST_STATS names a file that gets this run's counters as one
 * JSON line (the runner's manifest takes tokens in and out from it). */
static void write_stats(const sq_stage *st, const sq_stage_counts *c) {
    const char *path = getenv("SCALEQUEST_STATS");
    if (!path || !*path) return;
    FILE *f = fopen(path, "a");
    if (!f) return;
    fprintf(f,
            "{\"stage\": \"%s\", \"in\": %lld, \"kept\": %lld, \"dropped\": %lld, \"failed\": %lld, "
            "\"prompt_tokens\": %lld, \"completion_tokens\": %lld}\n",
            st->o.name, (long long)c->in, (long long)c->kept, (long long)c->dropped, (long long)c->failed,
            (long long)c->prompt_tokens, (long long)c->completion_tokens);
    fclose(f);
}

int sq_stage_close(sq_stage *st, sq_stage_counts *counts, sq_err *e) {
    if (!st) return 0;
    int rc = flush(st, e);
    int unsettled = st->next - st->base > 0;
    if (st->started) sq_progress_finish(&st->prog);
    sq_stage_counts c;
    sq_stage_get_counts(st, &c);
    if (counts) *counts = c;
    if (!rc && !sq_progress_is_quiet()) print_funnel(st);
    if (!rc) write_stats(st, &c);
    int r2 = 0;
    if (st->out) r2 = sq_jsonl_writer_close(st->out, rc ? NULL : e);
    st->out = NULL;
    if (!rc) rc = r2;
    if (st->drop) r2 = sq_jsonl_writer_close(st->drop, rc ? NULL : e);
    st->drop = NULL;
    if (!rc) rc = r2;
    if (st->fail) r2 = sq_jsonl_writer_close(st->fail, rc ? NULL : e);
    st->fail = NULL;
    if (!rc) rc = r2;
    if (!rc && unsettled)
        rc = sq_fail(e, SQ_ESTATE, "%s: %lld records were never settled", st->o.name, (long long)(st->next - st->base));
    if (!rc && c.failed)
        rc = sq_fail(e, SQ_EIO, "%lld requests failed (not written; a rerun retries them)%s%s", (long long)c.failed,
                     st->o.failed ? "; see " : "", st->o.failed ? st->o.failed : "");
    /* The output is final (every record settled, written and synced): the input's
     * decontamination marker follows it, so a chain of stages after decontaminate keeps it. A
     * kill before this line leaves the output without a fresh marker; the rerun writes it. */
    if (!rc && !st->o.own_marker && st->o.in && strcmp(st->o.in, "-") && strcmp(st->o.out, "-"))
        rc = sq_decontam_carry(st->o.in, st->o.out, e);
    sq_stage_abort(st);
    return rc;
}

void sq_stage_abort(sq_stage *st) {
    if (!st) return;
    /* settled records still waiting behind an unsettled one are lost on purpose: writing them
     * would break the input order that makes resumed files equal uninterrupted ones */
    if (st->out) sq_jsonl_writer_abort(st->out);
    if (st->drop) sq_jsonl_writer_abort(st->drop);
    if (st->fail) sq_jsonl_writer_abort(st->fail);
    if (st->r) sq_jsonl_close(st->r);
    if (st->ring)
        for (int i = 0; i < st->cap; i++) free(st->ring[i].line);
    free(st->ring);
    sq_keyset_free(st->seen);
    free(st->dropped_path);
    free(st);
}

/* ---- the raw-line path (stage.h): no cJSON tree per record ------------------------------ */

int sq_stage_next_line(sq_stage *st, const char **line, size_t *len, sq_buf *id, int64_t *slot_out, sq_err *e) {
    *line = NULL, *len = 0;
    if (!st->r) return sq_fail(e, SQ_ESTATE, "%s: sq_stage_next_line without an input file", st->o.name);
    start_progress(st);
    if (!st->raw) {
        /* a raw-line stage is cheap to redo: whole lines reach the files ~32 KiB at a time */
        st->raw = 1;
        sq_jsonl_writer_batch(st->out);
        if (st->drop) sq_jsonl_writer_batch(st->drop);
    }
    for (;;) {
        int rc = sq_jsonl_next_line(st->r, line, len, e);
        if (rc <= 0) return rc;
        sq_buf_reset(id);
        int got = sq_jsonl_line_str(*line, *len, "id", id);
        if (got == SQ_ENOMEM) return sq_fail(e, SQ_ENOMEM, "out of memory");
        if (got <= 0 || id->len == 0)
            return sq_fail(e, SQ_EPARSE, "%s:%lld: record has no string \"id\"", sq_jsonl_path(st->r),
                           (long long)sq_jsonl_line_number(st->r));
        if (!in_shard(st, id->data, id->len)) continue;
        st->c.in++;
        if (!(st->unique_input && st->none_before) && done_before(st, id->data)) {
            st->c.skipped++;
            continue;
        }
        if ((rc = take_slot(st, id->data, slot_out, e))) return rc;
        return 1;
    }
}

static int settle_text(sq_stage *st, int64_t slot_id, const char *line, size_t len, const char *reason, int state,
                       sq_err *e) {
    slot *s = settle_slot(st, slot_id, e);
    if (!s) return e ? e->code : SQ_EINVAL;
    sq_buf b = {0};
    /* The line is a validated object: its last '}' closes it. Append the reason before it. */
    size_t end = len;
    while (end > 0 && line[end - 1] != '}') end--;
    if (end == 0) return sq_fail(e, SQ_EPARSE, "%s: a settled line is not a JSON object", st->o.name);
    int rc = sq_buf_append(&b, line, reason ? end - 1 : len);
    if (!rc && reason) {
        cJSON *r = cJSON_CreateString(reason);
        char *q = r ? cJSON_PrintUnformatted(r) : NULL;
        /* "{}" has no field before the one we add */
        size_t k = end - 1;
        while (k > 0 && (line[k - 1] == ' ' || line[k - 1] == '\t')) k--;
        rc = !q || sq_buf_puts(&b, line[k - 1] == '{' ? "\"drop_reason\":" : ",\"drop_reason\":") || sq_buf_puts(&b, q) ||
             sq_buf_append(&b, "}", 1);
        free(q);
        cJSON_Delete(r);
    }
    if (rc) {
        sq_buf_free(&b);
        return sq_fail(e, SQ_ENOMEM, "out of memory");
    }
    s->line = b.data;
    s->state = state;
    sq_progress_add(&st->prog, 1);
    return flush(st, e);
}

int sq_stage_keep_line(sq_stage *st, int64_t slot, const char *line, size_t len, sq_err *e) {
    st->c.kept++;
    return settle_text(st, slot, line, len, NULL, SLOT_KEEP, e);
}

int sq_stage_drop_line(sq_stage *st, int64_t slot, const char *line, size_t len, const char *reason, sq_err *e) {
    if (!reason || !*reason) reason = "unspecified";
    st->c.dropped++;
    count_reason(st, reason);
    return settle_text(st, slot, line, len, reason, SLOT_DROP, e);
}

int sq_stage_next_line_text(sq_stage *st, const char *field, const char **line, size_t *len, sq_buf *id, sq_buf *text,
                            int64_t *slot, sq_err *e) {
    int got = sq_stage_next_line(st, line, len, id, slot, e);
    if (got <= 0) return got;
    sq_buf_reset(text);
    int rc = sq_jsonl_line_str(*line, *len, field, text);
    if (rc == SQ_ENOMEM) return sq_fail(e, SQ_ENOMEM, "out of memory");
    if (rc <= 0)
        return sq_fail(e, SQ_EPARSE, "%s:%lld: record \"%s\" has no string \"%s\"", st->o.in,
                       (long long)sq_stage_input_line(st), id->data, field);
    return 1;
}

int sq_stage_line_add_field(const char *line, size_t len, const char *field, const char *value, sq_buf *out, sq_err *e) {
    sq_buf_reset(out);
    char key[128];
    int kn = snprintf(key, sizeof key, "\"%s\"", field);
    if (kn < 0 || (size_t)kn >= sizeof key) return sq_fail(e, SQ_EINVAL, "field name \"%.40s...\" too long", field);
    if (memmem(line, len, key, (size_t)kn) || memmem(line, len, "\"drop_reason\"", 13)) {
        /* the field (or a reason) may already be there: replace it in a parsed copy */
        cJSON *rec, *v = cJSON_Parse(value);
        int rc = sq_jsonl_parse(line, len, &rec, e);
        if (rc) return cJSON_Delete(v), rc;
        cJSON_DeleteItemFromObjectCaseSensitive(rec, "drop_reason");
        char *t = !v || sq_rec_set(rec, field, v) ? NULL : sq_rec_to_line(rec);
        cJSON_Delete(rec);
        rc = !t || sq_buf_puts(out, t);
        free(t);
        return rc ? sq_fail(e, SQ_ENOMEM, "out of memory") : 0;
    }
    /* a validated object: its last '}' closes it */
    size_t end = len;
    while (end > 0 && line[end - 1] != '}') end--;
    if (end == 0) return sq_fail(e, SQ_EPARSE, "a line to add \"%s\" to is not a JSON object", field);
    size_t k = end - 1;
    while (k > 0 && (line[k - 1] == ' ' || line[k - 1] == '\t')) k--;
    if (sq_buf_append(out, line, end - 1) || sq_buf_puts(out, k > 0 && line[k - 1] == '{' ? "" : ",") ||
        sq_buf_puts(out, key) || sq_buf_append(out, ":", 1) || sq_buf_puts(out, value) || sq_buf_append(out, "}", 1))
        return sq_fail(e, SQ_ENOMEM, "out of memory");
    return 0;
}
