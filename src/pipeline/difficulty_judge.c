/* difficulty judge (judge.h): the Figure-12 rating, one judge request per question, the
 * JSON's difficulty read into 1..5 — what the paper averages to report a set's difficulty. */
#include <stdio.h>
#include <string.h>

#include "judge_stage.h"
#include "scalequest/jsonl.h"

void sq_difficulty_judge_opts_default(sq_difficulty_judge_opts *o) {
    memset(o, 0, sizeof *o);
    sq_stage_opts_default(&o->stage);
    o->stage.name = "difficulty judge";
    o->field = "query";
    sq_gen_params_default(&o->params);
    o->params.temperature = 0;
    o->params.max_tokens = 1024;
}

typedef struct diff {
    const sq_difficulty_judge_opts *o;
    int64_t count[6]; /* by rating; 0 = unparsable */
} diff;

static int settle(void *user, sq_stage *st, int64_t slot, cJSON *rec, const char *reply, const sq_gen_result *r,
                  sq_err *e) {
    diff *d = user;
    int rating = sq_reply_rating(reply, strlen(reply));
    d->count[rating]++;
    sq_rec_set_num(rec, "difficulty_rating", rating);
    sq_rec_set_str(rec, "judge_reply", reply);
    if (rating || d->o->keep_unknown) return sq_stage_keep(st, slot, rec, e);
    return sq_stage_drop(st, slot, rec, "unparsable_rating", e);
}

int sq_difficulty_judge_run(sq_backend *b, const sq_difficulty_judge_opts *o, sq_stage_counts *counts, sq_err *e) {
    if (!o->stage.in) return sq_fail(e, SQ_EINVAL, "difficulty judge: no input file given");
    sq_stage_opts so = o->stage;
    if (!so.name) so.name = "difficulty judge";
    diff d = {o, {0}};
    sq_judge_stage j = {SQ_PROMPT_DIFFICULTY_RATE, o->field ? o->field : "query", o->params, o->raw_prompt, settle, &d};
    int rc = sq_judge_stage_run(b, &so, &j, counts, e);
    if (!sq_progress_is_quiet() && (rc == 0 || rc == SQ_EIO)) {
        int64_t rated = 0, sum = 0;
        for (int k = 1; k <= 5; k++) rated += d.count[k], sum += k * d.count[k];
        fprintf(stderr,
                "%s: ratings this run: %lld very easy, %lld easy, %lld medium, %lld hard, %lld very hard, %lld "
                "unparsable; mean %.2f\n",
                so.name, (long long)d.count[1], (long long)d.count[2], (long long)d.count[3], (long long)d.count[4],
                (long long)d.count[5], (long long)d.count[0], rated ? (double)sum / (double)rated : 0.0);
    }
    return rc;
}
