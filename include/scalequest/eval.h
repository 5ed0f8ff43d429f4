/* eval — zero-shot pass@1 on the benchmarks of the paper's Table 1: GSM8K, MATH500, MATH (the
 * full 5,000), College Math, OlympiadBench (and Minerva Math, or any JSONL as NAME=PATH).
 *
 * Each question is asked once, greedily, as the Qwen2.5-Math / DART-Math evaluation asks an
 * instruct model (cot.h: the model's chat template, the question, a newline and "Please reason
 * step by step, and put your final answer within \boxed{}."), with the end-of-turn stop
 * strings, up to 2048 new tokens; the grader (grade.h) extracts the answer and decides.
 *
 * Files in the output folder, per benchmark NAME:
 *   NAME.input.jsonl  the questions asked: {id "NAME-00042" (the line in the data file),
 *                     query, gold (the gold answer as extracted from the data file)};
 *   NAME.jsonl        every item's record: the above + response, extracted, correct,
 *                     finish_reason; a stage output (stage.h), so a killed run resumes;
 *   NAME.failed.jsonl requests that failed (a rerun asks them again);
 * and results.json: the table (per benchmark n, correct, accuracy; the average of the
 * accuracies; seconds spent grading and in the whole run).
 *
 * Regrading (o->regrade, no model): each NAME.jsonl's "response" fields are graded again
 * against the gold answers of the data file and the file is rewritten atomically — after a
 * grader change, or to grade responses that came from elsewhere.
 */
#ifndef SCALEQUEST_EVAL_H
#define SCALEQUEST_EVAL_H

#include <stdint.h>

#include "scalequest/backend.h"
#include "scalequest/base.h"
#include "scalequest/grade.h"

#define SQ_EVAL_MAX_BENCH 16

typedef struct sq_eval_bench {
    char name[64];
    char path[1024];
    const char *q_field;     /* NULL: the first of query, question, problem */
    const char *gold_field;  /* NULL: the first of answer, final_answer, solution */
    sq_gold_format gold_fmt; /* for gold_field */
    int list_gold;           /* the gold field is a list of answers (OlympiadBench) */
} sq_eval_bench;

typedef struct sq_eval_result {
    char name[64];
    int64_t n, correct, failed;
    double accuracy; /* percent */
} sq_eval_result;

typedef struct sq_eval_opts {
    const char *benchmarks; /* comma list: gsm8k, math500, math, college_math, olympiadbench,
                               minerva_math, or NAME=PATH */
    const char *data_dir;   /* NULL: $SQ_ASSETS/data, else ../shared/assets/data */
    const char *out_dir;
    const char *model_name;                  /* shown in the table */
    int64_t limit;                           /* first N questions of each benchmark; 0: all */
    const char *chat_template, *instruction; /* cot.h */
    sq_gen_params params;                    /* greedy, 2048 tokens, the stop strings */
    int regrade;
    int chunk;
    /* training files of the model under test: each is checked for its decontamination marker
     * (decontam.h); one without a valid marker gets a warning on stderr, and results.json
     * records every one under "training_data" ({file, decontaminated, why}) */
    const char *const *train_data;
    int n_train_data;
} sq_eval_opts;

void sq_eval_opts_default(sq_eval_opts *o);

/* Parse the benchmark list into b[SQ_EVAL_MAX_BENCH]. */
int sq_eval_parse_benchmarks(const char *list, const char *data_dir, sq_eval_bench *b, int *n, sq_err *e);

/* Run (or, with o->regrade, regrade) every benchmark; results[SQ_EVAL_MAX_BENCH] and *n_results
 * get the table. Prints the table and its JSON to stdout unless quiet. b may be NULL with
 * o->regrade. */
int sq_eval_run(sq_backend *b, const sq_eval_opts *o, sq_eval_result *results, int *n_results, sq_err *e);

/* One verdict as eval gives it: the response's answer by the grader's extractor against an
 * extracted gold answer. *extracted (malloc'd, may be NULL) when non-NULL. */
int sq_eval_grade(const char *gold, const char *response, char **extracted);

#endif
