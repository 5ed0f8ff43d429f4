/* respond — the stage behind `scalequest respond`: n chain-of-thought responses per question
 * (ScaleQuest section 2.5: temperature 0.7, top-p 0.95, up to 2048 new tokens, the model's
 * chat template, the step-by-step-and-boxed instruction after the question).
 *
 * Each question is one backend request with params.n samples: the in-process engine prefills
 * the prompt once and forks the n samples onto its KV blocks (copy on write); a server gets
 * one request with "n". A response without a final answer (cot.h: neither a \boxed{} nor
 * "The answer is" that the grader reads) is dropped and counted; a question left with none is
 * dropped (drop_reason "no response with a final answer"). A server that answers with fewer
 * choices than asked is a failed request naming the id (failed file; a rerun asks again).
 *
 * Output: the input record plus "responses" (kept texts, in sample order), "answers" (each
 * one's extracted final answer), "n_sampled" and "n_no_answer". Stage contract as stage.h.
 */
#ifndef SCALEQUEST_RESPOND_H
#define SCALEQUEST_RESPOND_H

#include "scalequest/backend.h"
#include "scalequest/cot.h"
#include "scalequest/stage.h"

typedef struct sq_respond_opts {
    sq_stage_opts stage;
    const char *field;         /* question field (default "query") */
    const char *chat_template; /* NULL: the model's (messages); "none"; or a spec (cot.h) */
    const char *instruction;   /* NULL: SQ_COT_INSTRUCTION; "none": no instruction */
    sq_gen_params params;      /* n 5, T 0.7, top-p 0.95, max 2048; seed: the run's */
    int chunk;                 /* questions per backend batch (default 64) */
} sq_respond_opts;

typedef struct sq_respond_counts {
    int64_t sampled, no_answer, kept_responses, questions_without;
} sq_respond_counts;

void sq_respond_opts_default(sq_respond_opts *o);
/* Prints the funnel and a responses line unless quiet. counts may be NULL. */
int sq_respond_run(sq_backend *b, const sq_respond_opts *o, sq_respond_counts *counts, sq_err *e);

#endif
