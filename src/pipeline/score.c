/* The score stage: each record's text field through a scorer, the value added as "score".
 * Records go to the scorer in chunks (it packs them into forward steps) and are settled in
 * input order by the stage framework, so a killed run resumes where its output stops. */
#include <stdlib.h>
#include <string.h>

#include "scalequest/jsonl.h"
#include "scalequest/score.h"
#include "scalequest/stage.h"
#include "scalequest/tokenizer.h"

void sq_score_stage_opts_default(sq_score_stage_opts *o) {
    memset(o, 0, sizeof *o);
    o->field = "query";
    o->out_field = "score";
    o->name = "score";
    o->chunk = 256;
    sq_scorer_opts_default(&o->scorer);
}

typedef struct chunk {
    cJSON **recs;
    int64_t *slots;
    int32_t **ids;
    int *lens;
    float *vals;
    int n;
} chunk;

/* Why the scorer cannot take this record (why[0] == 0: it can), with its ids when it can. */
static int tokenize(sq_scorer *sc, const cJSON *rec, const char *field, int32_t **ids, int *n, char *why,
                    size_t whylen, sq_err *e) {
    const char *text = sq_rec_str(rec, field);
    size_t nt = 0;
    *ids = NULL, *n = 0, why[0] = 0;
    if (!text) return snprintf(why, whylen, "no text field \"%.40s\"", field), 0;
    int rc = sq_tok_encode(sq_scorer_tokenizer(sc), text, strlen(text), SQ_TOK_ADD_SPECIAL | SQ_TOK_PARSE_SPECIAL,
                           ids, &nt, e);
    if (rc) return sq_err_wrap(e, "record \"%s\"", sq_rec_id(rec)), rc;
    *n = (int)nt;
    if (nt == 0)
        snprintf(why, whylen, "empty text");
    else if (sq_scorer_scored_len(sc, *ids, *n) > sq_scorer_ctx_len(sc))
        snprintf(why, whylen, "longer than the scorer's context (%d tokens, context %d)", *n, sq_scorer_ctx_len(sc));
    if (why[0]) free(*ids), *ids = NULL;
    return 0;
}

/* Tokenize the chunk; records the scorer cannot take are dropped here, the rest move to the
 * front of the chunk (c->n becomes their count). */
static int prepare(sq_stage *st, sq_scorer *sc, const char *field, chunk *c, sq_err *e) {
    int kept = 0, rc = 0;
    for (int k = 0; k < c->n && !rc; k++) {
        char why[128];
        int32_t *ids;
        int n;
        cJSON *rec = c->recs[k];
        c->recs[k] = NULL;
        if ((rc = tokenize(sc, rec, field, &ids, &n, why, sizeof why, e))) {
            c->recs[k] = rec; /* still ours: freed by the caller */
        } else if (why[0]) {
            rc = sq_stage_drop(st, c->slots[k], rec, why, e);
        } else {
            c->recs[kept] = rec, c->slots[kept] = c->slots[k], c->ids[kept] = ids, c->lens[kept] = n;
            kept++;
        }
    }
    c->n = kept;
    return rc;
}

static int run_chunks(sq_stage *st, sq_scorer *sc, const sq_score_stage_opts *o, chunk *c, sq_err *e) {
    for (int eof = 0, rc = 0; !eof;) {
        c->n = 0;
        while (c->n < o->chunk) {
            int got = sq_stage_next(st, &c->recs[c->n], &c->slots[c->n], e);
            if (got < 0) return got;
            if (got == 0) {
                eof = 1;
                break;
            }
            c->n++;
        }
        int n_read = c->n;
        rc = prepare(st, sc, o->field, c, e);
        if (!rc) rc = sq_scorer_score_ids(sc, (const int32_t *const *)c->ids, c->lens, c->n, c->vals, e);
        int64_t tokens = 0;
        for (int k = 0; k < c->n; k++) tokens += c->lens[k];
        sq_stage_add_tokens(st, tokens, 0);
        for (int k = 0; k < c->n && !rc; k++) {
            if (sq_rec_set_num(c->recs[k], o->out_field ? o->out_field : "score", c->vals[k])) rc = sq_fail(e, SQ_ENOMEM, "out of memory");
            if (!rc) rc = sq_stage_keep(st, c->slots[k], c->recs[k], e);
            c->recs[k] = NULL;
        }
        for (int k = 0; k < n_read; k++) {
            cJSON_Delete(c->recs[k]); /* left only after an error */
            c->recs[k] = NULL;
            if (k < c->n) free(c->ids[k]);
        }
        if (rc) return rc;
    }
    return 0;
}

int sq_score_stage_run(const sq_score_stage_opts *o, sq_err *e) {
    if (!o->model || !o->in || !o->out) return sq_fail(e, SQ_EINVAL, "score: a model, an input and an output are needed");
    sq_score_stage_opts oo = *o;
    if (!oo.field) oo.field = "query";
    if (oo.chunk <= 0) oo.chunk = 256;
    sq_scorer *sc = NULL;
    int rc = sq_scorer_open(&sc, oo.model, &oo.scorer, e);
    if (rc) return rc;
    sq_stage_opts so;
    sq_stage_opts_default(&so);
    so.name = oo.name ? oo.name : "score";
    so.in = oo.in;
    so.out = oo.out;
    so.shard_index = oo.shard_index;
    so.shard_count = oo.shard_count;
    if (so.window < oo.chunk) so.window = oo.chunk;
    sq_stage *st = NULL;
    chunk c = {0};
    c.recs = calloc((size_t)oo.chunk, sizeof *c.recs);
    c.slots = calloc((size_t)oo.chunk, sizeof *c.slots);
    c.ids = calloc((size_t)oo.chunk, sizeof *c.ids);
    c.lens = calloc((size_t)oo.chunk, sizeof *c.lens);
    c.vals = calloc((size_t)oo.chunk, sizeof *c.vals);
    if (!c.recs || !c.slots || !c.ids || !c.lens || !c.vals) rc = sq_fail(e, SQ_ENOMEM, "score: out of memory");
    if (!rc) rc = sq_stage_open(&st, &so, e);
    if (!rc) rc = run_chunks(st, sc, &oo, &c, e);
    if (st) {
        if (rc)
            sq_stage_abort(st);
        else
            rc = sq_stage_close(st, NULL, e);
    }
    free(c.recs);
    free(c.slots);
    free(c.ids);
    free(c.lens);
    free(c.vals);
    sq_scorer_close(sc);
    return rc;
}
