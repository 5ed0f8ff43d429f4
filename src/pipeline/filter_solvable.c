/* filter solvable (filter.h): the Figure-11 check, one judge request per question, the
 * verdict read strictly from the end of the reply. */
#include <stdio.h>
#include <string.h>

#include "judge_stage.h"
#include "scalequest/filter.h"
#include "scalequest/jsonl.h"

void sq_filter_solvable_opts_default(sq_filter_solvable_opts *o) {
    memset(o, 0, sizeof *o);
    sq_stage_opts_default(&o->stage);
    o->stage.name = "filter solvable";
    o->field = "query";
    sq_gen_params_default(&o->params);
    o->params.temperature = 0; /* the official check decodes greedily, up to 2048 tokens */
    o->params.max_tokens = 2048;
}

typedef struct solv {
    const sq_filter_solvable_opts *o;
    int64_t count[3]; /* by sq_verdict */
} solv;

static int settle(void *user, sq_stage *st, int64_t slot, cJSON *rec, const char *reply, const sq_gen_result *r,
                  sq_err *e) {
    solv *s = user;
    sq_verdict v = sq_reply_verdict(reply, strlen(reply));
    s->count[v]++;
    sq_rec_set_str(rec, "verdict", sq_verdict_name(v));
    sq_rec_set_str(rec, "judge_reply", reply);
    if (v == SQ_VERDICT_YES || (v == SQ_VERDICT_UNKNOWN && s->o->keep_unknown)) return sq_stage_keep(st, slot, rec, e);
    return sq_stage_drop(st, slot, rec, v == SQ_VERDICT_NO ? "unsolvable" : "no_verdict", e);
}

int sq_filter_solvable_run(sq_backend *b, const sq_filter_solvable_opts *o, sq_stage_counts *counts, sq_err *e) {
    if (!o->stage.in) return sq_fail(e, SQ_EINVAL, "filter solvable: no input file given");
    sq_stage_opts so = o->stage;
    if (!so.name) so.name = "filter solvable";
    solv s = {o, {0}};
    sq_judge_stage j = {SQ_PROMPT_SOLVABILITY_CHECK, o->field ? o->field : "query", o->params, o->raw_prompt, settle, &s};
    int rc = sq_judge_stage_run(b, &so, &j, counts, e);
    if (!sq_progress_is_quiet() && (rc == 0 || rc == SQ_EIO))
        fprintf(stderr, "%s: verdicts this run: %lld yes, %lld no, %lld unknown\n", so.name,
                (long long)s.count[SQ_VERDICT_YES], (long long)s.count[SQ_VERDICT_NO],
                (long long)s.count[SQ_VERDICT_UNKNOWN]);
    return rc;
}
