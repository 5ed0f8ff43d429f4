/* optimize — QPO data construction (ScaleQuest section 2.3, Figures 9 and 10): each
 * question a question generator wrote is rewritten by an external LLM (GPT-4o-mini in the
 * paper; any backend here, the tiny world's oracle included), either to make it solvable
 * (Figure 9) or harder (Figure 10), and the pair becomes a preference example: the rewrite
 * preferred over the original.
 *
 * Per question a coin, drawn from the seed and the record's id, picks the direction
 * (p_solvability the share of solvability; 1 or 0 forces one). The figure's prompt, word for
 * word (judge.h), goes to the backend as one user turn (or as raw text); the rewrite is
 * parsed with the figure's reply parser. A reply without a parsable rewrite, or whose
 * rewrite is empty or equal to the original (white space runs aside), is dropped with the
 * reason counted. Kept records are DPO pairs
 *     {id, prompt, chosen, rejected, direction, optimizer_reply}
 * with prompt the question generator's bare user-turn prefix, chosen the rewrite and
 * rejected the original: what `train --mode dpo` reads as QPO pairs (a "prompt" equal to the
 * model's question prefix means both sides are questions written after it).
 *
 * Ownership: strings in the options are borrowed for the call.
 */
#ifndef SCALEQUEST_OPTIMIZE_H
#define SCALEQUEST_OPTIMIZE_H

#include "scalequest/backend.h"
#include "scalequest/stage.h"

typedef struct sq_optimize_opts {
    sq_stage_opts stage;  /* in, out, dropped, failed, shard */
    const char *field;    /* the question (default "query") */
    const char *prefix;   /* the generator's bare user-turn prefix, written as "prompt" */
    double p_solvability; /* share of questions sent to Figure 9 (default 0.5: the paper's coin) */
    int raw_prompt;       /* send the figure's text as raw text instead of a chat user turn */
    sq_gen_params params; /* default temperature 0.7, top-p 1.0, 2048 tokens; seed = run's */
} sq_optimize_opts;

void sq_optimize_opts_default(sq_optimize_opts *o);

/* Parse "mix", "solvability", "difficulty" or "mix:P" (P the solvability share in [0,1]). */
int sq_optimize_parse_directions(const char *s, double *p_solvability, sq_err *e);

/* 1 when the coin of this id (under this seed) picks solvability. */
int sq_optimize_pick_solvability(uint64_t seed, const char *id, double p_solvability);

int sq_optimize_run(sq_backend *b, const sq_optimize_opts *o, sq_stage_counts *counts, sq_err *e);

#endif
