/* stage — the contract every ScaleQuest stage keeps: JSONL in, JSONL out, stable ids,
 * resumable after kill -9, shardable, deterministic, with progress and a closing funnel.
 *
 * A stage reads records (each with a string "id") from its input, or makes them itself (qgen),
 * and settles each one exactly once: kept (written to `out` with the stage's own fields
 * added), dropped (written to the dropped file with a "drop_reason"), or failed (a request
 * that failed after its retries: written to the failed file, never to the outputs, so a
 * rerun tries it again).
 *
 * Why the outputs come out in input order: results of a backend arrive in any order, but the
 * stage commits them through a reorder window, writing each record once every record before
 * it is settled. A run killed at any moment therefore leaves a prefix of the input order in
 * its outputs (the writer cuts a torn last line), and the rerun appends the rest in the same
 * order, so a resumed run's files are byte for byte those of an uninterrupted run. The cost
 * is that results finished behind a slow one are held in memory (at most `window` records)
 * and are redone if the process dies first.
 *
 * Resume: ids already in `out` or in the dropped file are skipped; ids only in the failed
 * file are tried again. Sharding: with shard_count N, only records whose
 * sq_jsonl_shard_hash(id) % N == shard_index are read. Duplicate or missing ids in the input
 * are found before anything is written, with the file and line named (from stdin, which can
 * be read once only, when they are reached); outputs that do not exist yet are created only
 * once the input has passed that check.
 *
 * Ownership, one rule: sq_stage_keep and sq_stage_drop take the record they are given and free
 * it, whatever they return (an error included); no other function takes a record. So the
 * caller owns a record from sq_stage_next until it settles it, sq_stage_offer only reads the
 * record's id (the caller keeps the record in every case, and settles it under the slot when
 * offer returns 1), and a record settled with sq_stage_fail stays the caller's. In
 * sq_stage_run_generate the driver owns each record and lends it to `build`: build either
 * leaves it to the driver (returns 0: sent; <0: an error, the driver frees it) or settles the
 * slot with keep or drop, which take it (return 1, or their error). Options' strings are
 * borrowed for the stage's lifetime.
 */
#ifndef SCALEQUEST_STAGE_H
#define SCALEQUEST_STAGE_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "scalequest/backend.h"
#include "scalequest/base.h"

typedef struct sq_stage_opts {
    const char *name;    /* shown in progress and the funnel line, e.g. "filter solvable" */
    const char *in;      /* input JSONL, "-" for stdin; NULL: the stage supplies records */
    const char *out;     /* kept records (appended; resumable) */
    const char *dropped; /* dropped records; NULL: `out` with ".jsonl" replaced by
                            ".dropped.jsonl" (or that suffix added); "" for none: a rerun then
                            redoes dropped records (same verdicts: stages are deterministic) */
    const char *failed;  /* {id, error} of failed requests (appended); NULL for none */
    int shard_index, shard_count; /* 0 and 0 or 1: every record */
    int skip_bad;                 /* count and skip unparsable input lines instead of failing */
    int window;                   /* records in flight at most (default 1024) */
    int64_t total;                /* with in == NULL: how many records the stage will supply */
    int own_marker; /* the stage writes OUT's decontamination marker itself (decontaminate) or
                       writes new question text (optimize), so close neither carries the
                       input's marker to `out` nor removes one there (see sq_stage_close) */
} sq_stage_opts;

void sq_stage_opts_default(sq_stage_opts *o);

/* Parse "I/N" (0 <= I < N) into shard_index and shard_count. */
int sq_stage_parse_shard(const char *s, int *index, int *count, sq_err *e);

typedef struct sq_stage sq_stage;

/* Counters of this run (not of earlier runs of the same stage). */
typedef struct sq_stage_counts {
    int64_t in;      /* records read or supplied for this shard, including those already done */
    int64_t skipped; /* already settled by an earlier run */
    int64_t kept, dropped, failed;
    int64_t prompt_tokens, completion_tokens;
    int64_t out_total, dropped_total; /* records in the outputs at close (all runs) */
} sq_stage_counts;

int sq_stage_open(sq_stage **st, const sq_stage_opts *o, sq_err *e);

/* With an input file: 1 and the next record to settle (already-done and other shards'
 * records are skipped), 0 at the end, <0 on error (e names file:line). *slot is the handle
 * that settles it. Fails with SQ_ESTATE when `window` records are unsettled. */
int sq_stage_next(sq_stage *st, cJSON **rec, int64_t *slot, sq_err *e);
/* Without an input file: offer a record the stage made (only its id is read; the caller keeps
 * rec). 1 and *slot when it is to be settled now; 0 when its id is already done or in another
 * shard. */
int sq_stage_offer(sq_stage *st, const cJSON *rec, int64_t *slot, sq_err *e);
/* 1 when the id is already settled by an earlier run or is in another shard. */
int sq_stage_is_done(const sq_stage *st, const char *id);
/* Records in flight (handed out, not yet settled). */
int sq_stage_pending(const sq_stage *st);
/* The input line of the record sq_stage_next handed out last (1-based; 0 before the first
 * or without an input file): what a stage names when the record itself is bad. */
int64_t sq_stage_input_line(const sq_stage *st);
/* Records left to settle in this run, when known (for progress), else -1. */
int64_t sq_stage_remaining_hint(const sq_stage *st);

/* The raw-line path, for stages that pass records through (dedup, decontaminate): no cJSON
 * tree per record. sq_stage_next_line gives the next input line to settle (valid until the
 * next call; no trailing newline) and its id in `id` (the caller's buffer); keep_line and
 * drop_line copy what they are given, which must keep the input record's id. drop_line appends "drop_reason" as the line's last
 * field, so the line must not have one already; a stage that adds fields writes them into
 * the line first (sq_stage_line_add_field). Why the path is cheap: its outputs are written in
 * batches of whole lines (sq_jsonl_writer_batch; a kill loses at most one batch, which the
 * rerun redoes), a prechecked input keeps no per-run id set, and outputs empty at open are
 * not searched for done ids. */
int sq_stage_next_line(sq_stage *st, const char **line, size_t *len, sq_buf *id, int64_t *slot, sq_err *e);
/* sq_stage_next_line, and the line's string `field` into `text` (reset first): a record
 * without that string is an error naming the input file, line and id. */
int sq_stage_next_line_text(sq_stage *st, const char *field, const char **line, size_t *len, sq_buf *id, sq_buf *text,
                            int64_t *slot, sq_err *e);
/* The raw line with `field`: value (JSON text, e.g. "\"q12\"" or an object) added as its last
 * field and without a "drop_reason" (drop_line appends one), into out (reset first):
 * textually when the line has neither that field nor a reason, else through a parsed copy
 * (the field replaced where it stands). For stages that annotate the lines they drop
 * (dedup's duplicate_of, decontaminate's contaminated_by). */
int sq_stage_line_add_field(const char *line, size_t len, const char *field, const char *value, sq_buf *out, sq_err *e);
int sq_stage_keep_line(sq_stage *st, int64_t slot, const char *line, size_t len, sq_err *e);
int sq_stage_drop_line(sq_stage *st, int64_t slot, const char *line, size_t len, const char *reason, sq_err *e);

/* Settle a slot (each exactly once). keep and drop take rec, whatever they return. */
int sq_stage_keep(sq_stage *st, int64_t slot, cJSON *rec, sq_err *e);
int sq_stage_drop(sq_stage *st, int64_t slot, cJSON *rec, const char *reason, sq_err *e);
int sq_stage_fail(sq_stage *st, int64_t slot, const char *id, const char *error, sq_err *e);

void sq_stage_add_tokens(sq_stage *st, int64_t prompt_tokens, int64_t completion_tokens);
/* Call once per kept record already in the output at open, before the first next/offer: a
 * stage that carries state across records (qgen's duplicate set) rebuilds it from here. */
typedef int (*sq_stage_resume_fn)(void *user, const cJSON *rec, sq_err *e);
int sq_stage_replay(sq_stage *st, sq_stage_resume_fn fn, void *user, sq_err *e);

/* Flush, sync and close the outputs, print the funnel line ("NAME: N in, N kept, N dropped
 * (reason N, ...), N failed; N already done") unless quiet, and free. Once every record is
 * settled and written, the decontamination marker (decontam.h) follows the records: when the
 * input file has a valid IN.decontam.json, OUT.decontam.json is written (atomically) for `out`;
 * when it has none, an OUT.decontam.json from an earlier run is removed (own_marker: neither).
 * So a file made from decontaminated questions by any chain of stages still counts as
 * decontaminated for `eval --train-data`. Returns SQ_EIO when
 * some requests failed (they are in the failed file; a rerun retries them), SQ_ESTATE when
 * records were left unsettled, 0 otherwise. counts may be NULL. */
int sq_stage_close(sq_stage *st, sq_stage_counts *counts, sq_err *e);
/* Stop after an error: what was committed stays (it is a valid prefix); nothing else. */
void sq_stage_abort(sq_stage *st);
/* Funnel counters so far. */
void sq_stage_get_counts(const sq_stage *st, sq_stage_counts *c);
/* The dropped-file path in use ("" when none). */
const char *sq_stage_dropped_path(const sq_stage *st);

/* A request seed that depends only on the run's seed and the record id, so any batching,
 * order or resume draws the same tokens. */
uint64_t sq_stage_seed(uint64_t seed, const char *id);

/* ---- the common case: one backend request per record ---------------------------------- */

typedef struct sq_stage_gen {
    /* Fill req for rec (strings may point into rec or be allocated from `a`, which lives until
     * the request's finish returns). Return 0 to send it, 1 to settle it at once (build then
     * called sq_stage_keep or sq_stage_drop on the slot itself, which took rec), <0 on error
     * (the driver frees rec unless build gave it to keep or drop; see Ownership above). */
    int (*build)(void *user, sq_stage *st, int64_t slot, cJSON *rec, sq_gen_request *req, sq_arena *a, sq_err *e);
    /* Settle the slot from the backend's result (r->ok is always 1 here: failures are settled
     * by the driver with sq_stage_fail). Owns rec. */
    int (*finish)(void *user, sq_stage *st, int64_t slot, cJSON *rec, const sq_gen_result *r, sq_err *e);
    void *user;
    int chunk; /* records per backend batch (default 512) */
} sq_stage_gen;

/* Put one prompt text into req: as raw completion text when `raw`, else as a single user turn
 * (rendered with the model's chat template). The message lives in `a`; text is borrowed. */
int sq_stage_request_text(sq_gen_request *req, const char *text, int raw, sq_arena *a, sq_err *e);

/* Read every remaining input record, send it through the backend in chunks, settle it. */
int sq_stage_run_generate(sq_stage *st, sq_backend *b, const sq_stage_gen *g, sq_err *e);
/* The whole of a one-request-per-record stage: open it, run every record through the backend,
 * close it (printing the funnel). On an error what was committed stays and the error is
 * returned; counts may be NULL. */
int sq_stage_run_all(const sq_stage_opts *o, sq_backend *b, const sq_stage_gen *g, sq_stage_counts *counts, sq_err *e);

#endif
