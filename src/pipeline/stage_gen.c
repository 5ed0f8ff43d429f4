/* The common stage loop: records in chunks -> one backend request each -> settle each from
 * its result. Failed requests are settled as failed here, so stages see only answers. */
#include <stdlib.h>
#include <string.h>

#include "scalequest/jsonl.h"
#include "scalequest/stage.h"
#include "stage_internal.h"

typedef struct chunk_job {
    sq_stage *st;
    const sq_stage_gen *g;
    cJSON **recs;
    int64_t *slots;
    int *req_of; /* request index -> chunk index */
    sq_err e;
    int failed; /* the stage could not settle a result: stop the batch */
} chunk_job;

static int on_result(void *user, int i, const sq_gen_result *r) {
    chunk_job *j = user;
    int k = j->req_of[i];
    cJSON *rec = j->recs[k];
    j->recs[k] = NULL;
    int rc;
    if (!r->ok) {
        rc = sq_stage_fail(j->st, j->slots[k], r->id ? r->id : sq_rec_id(rec), r->error, &j->e);
        cJSON_Delete(rec);
    } else {
        sq_stage_add_tokens(j->st, r->prompt_tokens, r->completion_tokens);
        rc = j->g->finish(j->g->user, j->st, j->slots[k], rec, r, &j->e);
    }
    if (rc) j->failed = 1;
    return rc ? 1 : 0;
}

int sq_stage_run_generate(sq_stage *st, sq_backend *b, const sq_stage_gen *g, sq_err *e) {
    int chunk = g->chunk > 0 ? g->chunk : 512;
    cJSON **recs = calloc((size_t)chunk, sizeof *recs);
    int64_t *slots = calloc((size_t)chunk, sizeof *slots);
    int *req_of = calloc((size_t)chunk, sizeof *req_of);
    sq_gen_request *reqs = calloc((size_t)chunk, sizeof *reqs);
    sq_arena arena;
    sq_arena_init(&arena, 1 << 20);
    int rc = 0;
    if (!recs || !slots || !req_of || !reqs) {
        rc = sq_fail(e, SQ_ENOMEM, "out of memory");
        goto out;
    }
    for (int eof = 0; !eof;) {
        int k = 0, nreq = 0;
        while (k < chunk) {
            cJSON *rec;
            int got = sq_stage_next(st, &rec, &slots[k], e);
            if (got < 0) {
                rc = got;
                break;
            }
            if (got == 0) {
                eof = 1;
                break;
            }
            memset(&reqs[nreq], 0, sizeof reqs[nreq]);
            int64_t taken = sq_stage_taken(st);
            int br = g->build(g->user, st, slots[k], rec, &reqs[nreq], &arena, e);
            if (br < 0) {
                if (sq_stage_taken(st) == taken) cJSON_Delete(rec); /* else keep/drop took it */
                rc = br;
                break;
            }
            if (br == 1) continue; /* settled by build: the record went with the slot */
            if (!reqs[nreq].id) reqs[nreq].id = sq_rec_id(rec);
            recs[k] = rec;
            req_of[nreq++] = k;
            k++;
        }
        if (rc == 0 && nreq > 0) {
            chunk_job j = {.st = st, .g = g, .recs = recs, .slots = slots, .req_of = req_of};
            sq_err ge = {0};
            int grc = sq_backend_generate(b, reqs, nreq, on_result, &j, &ge);
            if (j.failed) rc = j.e.code ? j.e.code : SQ_EIO, *e = j.e;
            else if (grc) rc = grc, *e = ge;
        }
        for (int i = 0; i < k; i++) {
            cJSON_Delete(recs[i]); /* only those the backend never answered remain */
            recs[i] = NULL;
        }
        sq_arena_reset(&arena);
        if (rc) break;
    }
out:
    sq_arena_free(&arena);
    free(recs);
    free(slots);
    free(req_of);
    free(reqs);
    return rc;
}

int sq_stage_run_all(const sq_stage_opts *o, sq_backend *b, const sq_stage_gen *g, sq_stage_counts *counts, sq_err *e) {
    sq_stage *st = NULL;
    int rc = sq_stage_open(&st, o, e);
    if (rc) return rc;
    rc = sq_stage_run_generate(st, b, g, e);
    if (rc) {
        sq_stage_abort(st);
        return rc;
    }
    return sq_stage_close(st, counts, e);
}

int sq_stage_request_text(sq_gen_request *req, const char *text, int raw, sq_arena *a, sq_err *e) {
    if (raw) {
        req->prompt = text;
        return 0;
    }
    sq_chat_msg *m = sq_arena_alloc(a, sizeof *m);
    if (!m) return sq_fail(e, SQ_ENOMEM, "out of memory");
    *m = (sq_chat_msg){"user", text};
    req->messages = m;
    req->n_messages = 1;
    return 0;
}
