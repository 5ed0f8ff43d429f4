/* The loop shared by the stages that put each question into one of the paper's prompts and
 * settle the record from the reply (filter solvable, difficulty judge): one backend request
 * per record, sent as one user message, seeded from the run's seed and the record id. */
#ifndef SQ_PIPELINE_JUDGE_STAGE_H
#define SQ_PIPELINE_JUDGE_STAGE_H

#include "scalequest/judge.h"

typedef struct sq_judge_stage {
    sq_prompt_kind kind;
    const char *field;    /* the question field */
    sq_gen_params params; /* params.seed: the run's seed */
    int raw_prompt;       /* the prompt as raw text instead of one user message */
    /* Settle the slot from the reply (text of the first choice, "" when there is none). */
    int (*settle)(void *user, sq_stage *st, int64_t slot, cJSON *rec, const char *reply, const sq_gen_result *r,
                  sq_err *e);
    void *user;
} sq_judge_stage;

/* Open the stage, run every record, close it (funnel line). On a run error the committed
 * prefix stays and the error is returned; else sq_stage_close's code. */
int sq_judge_stage_run(sq_backend *b, const sq_stage_opts *so, const sq_judge_stage *j, sq_stage_counts *counts,
                       sq_err *e);

#endif
