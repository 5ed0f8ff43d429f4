/* difficulty — how hard a question is (ScaleQuest section 2.4, eq. 3), in the three steps
 * the paper takes, each a stage (stage.h: JSONL in and out, stable ids, resumable, shards):
 *
 *  - label: a question's fail rate. For questions with a gold answer (GSM8K train's
 *    "answer" ending in "#### N", MATH's "solution" with \boxed{}, or a plain "answer"),
 *    `samples` responses are sampled from a solver (the paper: DeepSeekMath-7B-RL) and graded
 *    with our grader (grade.h); fail_rate = wrong / samples. These {query, fail_rate}
 *    records are what `train --mode regress` fits the difficulty scorer on.
 *  - score: the scorer's value for each question (a *ForSequenceClassification folder run
 *    through the inference forward pass, score.h), added as "difficulty".
 *  - sample: keep questions by that value: drop those below a threshold, or thin the
 *    histogram to a target shape. Each record's keep decision depends only on the seed, its
 *    id and its bin, so it is the same in any order, on resume and per shard.
 *
 * Ownership: strings in the options are borrowed for the call.
 */
#ifndef SCALEQUEST_DIFFICULTY_H
#define SCALEQUEST_DIFFICULTY_H

#include "scalequest/backend.h"
#include "scalequest/grade.h"
#include "scalequest/score.h"
#include "scalequest/stage.h"

/* ---- label ---------------------------------------------------------------------------------- */

typedef struct sq_label_opts {
    sq_stage_opts stage;      /* in, out, dropped, failed, shard */
    const char *field;        /* the question (default "query") */
    const char *gold_field;   /* NULL: "answer", else "solution" */
    sq_gold_format gold_format; /* default SQ_GOLD_AUTO ("#### N", \boxed, $..$, plain) */
    /* The user turn sent to the solver; "{query}" is replaced by the question. Default: the
     * question and DeepSeekMath's chain-of-thought instruction. */
    const char *prompt_template;
    int raw_prompt;           /* send the filled template as raw text, not as a chat user turn */
    sq_gen_params params;     /* n = samples (default 8), temperature 1.0, top-p 1.0, 2048 tokens */
    int keep_responses;       /* also write "responses" (the sampled texts) */
    sq_grade_opts grade;
} sq_label_opts;

#define SQ_LABEL_DEFAULT_PROMPT "{query}\nPlease reason step by step, and put your final answer within \\boxed{}."

void sq_label_opts_default(sq_label_opts *o);

/* Each record gets "fail_rate" (wrong / samples), "label_correct", "label_samples" and
 * "gold_answer"; records without a question or a gold answer are dropped with the reason. */
int sq_difficulty_label_run(sq_backend *b, const sq_label_opts *o, sq_stage_counts *counts, sq_err *e);

/* ---- score ---------------------------------------------------------------------------------- */

/* sq_score_stage_run with out_field "difficulty" and the stage named "difficulty score". */
int sq_difficulty_score_run(const sq_score_stage_opts *o, sq_err *e);

/* ---- sample --------------------------------------------------------------------------------- */

#define SQ_SAMPLE_MAX_BINS 64

typedef struct sq_sample_opts {
    sq_stage_opts stage;  /* in (a file: a target histogram needs a first pass), out, dropped */
    const char *field;    /* the value (default "difficulty") */
    int use_min;          /* drop values below min_score */
    double min_score;
    int n_bins;           /* histogram bins over [lo, hi) (default 10 over [0, 1]); values
                             outside fall into the end bins */
    double lo, hi;
    int n_target;         /* 0: no target; else n_bins weights, the shape to sample to */
    double target[SQ_SAMPLE_MAX_BINS];
    uint64_t seed;
} sq_sample_opts;

void sq_sample_opts_default(sq_sample_opts *o);

/* Parse "w1,w2,...,wk" (non-negative weights, not all zero) or "uniform" into o->target
 * (k must equal o->n_bins, or sets it when it is "uniform"'s). */
int sq_sample_parse_target(sq_sample_opts *o, const char *s, sq_err *e);

/* The bin of a value. */
int sq_sample_bin(const sq_sample_opts *o, double v);

/* Keep probabilities per bin for the input histogram `count` and the target: the largest
 * sample with exactly the target's shape in expectation (the bin that limits it keeps every
 * record). A bin with records and zero target weight keeps none. */
void sq_sample_keep_probs(const sq_sample_opts *o, const int64_t *count, double *keep);

/* Run: with a target, first count the input's histogram; then keep each record with its
 * bin's probability (a draw from the seed and its id) and, with use_min, only when its value
 * is at least min_score. Records without a number in `field` are dropped ("no <field>").
 * Prints the before and after histograms on stderr unless progress is quiet. */
int sq_difficulty_sample_run(const sq_sample_opts *o, sq_stage_counts *counts, sq_err *e);

/* A histogram as text lines (bins, counts, shares, bars) appended to out. */
void sq_sample_format_hist(const sq_sample_opts *o, const char *title, const int64_t *count, sq_buf *out);

#endif
