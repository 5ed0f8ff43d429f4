/* grade — math answer extraction and equivalence.
 *
 * Every later stage asks one question: do two math answers agree? This module answers it
 * without Python or a computer-algebra system. It pulls the final answer out of a model
 * response (last \boxed{}, "final answer is", GSM8K "#### N", Minerva's "Final Answer: ...
 * I hope", the last LaTeX math span, else the last number), pulls the gold answer out of the
 * dataset formats we evaluate on, normalises LaTeX (\text{}, units, \left/\right, dfrac,
 * degrees, thousands separators, ...) and compares the two: a small LaTeX parser builds a
 * tree; numbers are exact rationals while they fit in 127 bits and long doubles after that;
 * expressions with variables are compared by evaluation at random points; tuples, intervals
 * (bracket type matters), sets (order-free), matrices, equations, inequalities, plus-minus
 * and lists of answers are compared structurally.
 *
 * Bounded by design: input is capped (SQ_GRADE_MAX_LEN), the parser stops at a nesting
 * depth (SQ_GRADE_MAX_DEPTH) and falls back to comparing normalised strings, powers and
 * factorials are capped, so no answer makes it slow or deep in the stack.
 *
 * Memory: functions that return a string return a malloc'd one the caller frees; the
 * comparison functions allocate only scratch that they free before returning. All functions
 * are thread-safe (no global state).
 */
#ifndef SCALEQUEST_GRADE_H
#define SCALEQUEST_GRADE_H

#include <stddef.h>
#include <stdint.h>

#include "scalequest/base.h"

#define SQ_GRADE_MAX_LEN (1u << 20)  /* bytes of an answer considered; the rest is ignored */
#define SQ_GRADE_MAX_DEPTH 600       /* parser descent depth beyond which strings are compared */

/* How a percent sign is read (the "28% against 28 against 0.28" question). */
typedef enum {
    SQ_GRADE_PCT_EITHER = 0, /* default: 28% equals 28 and 0.28; 28 and 0.28 stay different */
    SQ_GRADE_PCT_VALUE = 1,  /* % means /100: 28% equals 0.28 only */
    SQ_GRADE_PCT_DROP = 2,   /* the sign is decoration: 28% equals 28 only */
} sq_grade_pct;

typedef struct sq_grade_opts {
    double rel_tol;      /* relative tolerance for inexact numbers; 0 means 1e-6 */
    sq_grade_pct percent;
    int round_match;     /* a decimal written to >= 2 places matches a value that rounds to it
                            (default on; set -1 to turn off) */
    int ordered_lists;   /* bare comma lists compare in order (default 0: as sets) */
    int unordered_tuples; /* (1,2) equals (2,1), as DART-Math's compare_sets mode (default 0) */
    int set_relation;    /* "x \in [a,b]" equals "a <= x <= b" (default on; -1 off) */
    int no_number_fallback; /* extraction: never fall back to the last number (LaTeX only) */
    uint64_t seed;       /* random evaluation points; 0 uses a fixed seed */
} sq_grade_opts;

/* Fill the defaults. Passing NULL for opts anywhere below means these. */
void sq_grade_opts_init(sq_grade_opts *o);

/* Are two already-extracted answers equivalent? 1 yes, 0 no. Never fails: anything it cannot
 * parse is compared as a normalised string. */
int sq_grade_equal(const char *gold, const char *pred, const sq_grade_opts *o);

/* The final answer in a model response (malloc'd, caller frees), or NULL when the response
 * holds nothing answer-like (or allocation failed). *how, when non-NULL, names the rule that
 * matched: "boxed", "final_answer", "answer_is", "gsm8k", "latex", "last_number", "number_words"
 * (no digit in the response: its last number written in words). */
char *sq_grade_extract(const char *response, const sq_grade_opts *o, const char **how);

/* Gold answer formats of the datasets we evaluate on. */
typedef enum {
    SQ_GOLD_AUTO = 0,   /* guess: "#### N", else \boxed, else $...$ stripped, else as is */
    SQ_GOLD_GSM8K,      /* answer text ending in "#### N" */
    SQ_GOLD_MATH,       /* a solution with \boxed{...} (MATH, Minerva) */
    SQ_GOLD_PLAIN,      /* an answer field as is (MATH500 "answer") */
    SQ_GOLD_DOLLARS,    /* College Math "$...$" answers */
} sq_gold_format;

/* The gold answer out of a dataset field (malloc'd, caller frees; NULL if none found). */
char *sq_grade_gold(const char *field, sq_gold_format fmt);

/* Normalised form of an answer (malloc'd, caller frees): what the comparison starts from and
 * what two answers are string-compared on when neither parses. */
char *sq_grade_normalize(const char *answer);

/* Extract the answer from `response` and compare it with `gold` (already an answer, or raw
 * text such as a solution: it goes through the same extraction when it holds \boxed or
 * math spans). *extracted, when non-NULL, receives the extracted answer (caller frees; may be
 * NULL). Returns 1 right, 0 wrong. */
int sq_grade_response(const char *gold, const char *response, const sq_grade_opts *o, char **extracted);

/* ---- grading a JSONL file (src/grade/grade_file.c) -------------------------------------- */

typedef struct sq_grade_file_opts {
    const char *in, *out;          /* JSONL paths; "-" is stdin / stdout (out is atomic otherwise) */
    const char *gold_field;        /* default "answer": raw (GSM8K, MATH solution, $..$), a number or a list */
    const char *pred_field;        /* default "response" */
    sq_gold_format gold_format;
    int pred_is_answer;            /* the pred field is an answer already: no extraction */
    int skip_bad;                  /* skip (and count) invalid input lines */
    sq_grade_opts grade;
} sq_grade_file_opts;

void sq_grade_file_opts_init(sq_grade_file_opts *o);

typedef struct sq_grade_file_stats {
    int64_t n, correct, no_answer; /* responses graded (each completion of a list counts) */
    /* Records whose pred field is a list of k completions (generate's "completions"): how
     * many had one correct (pass@k, k the largest list seen) and whose majority answer is
     * correct. */
    int64_t multi, pass, majority_correct;
    int k;
} sq_grade_file_stats;

/* Grade every record of o->in: add "extracted", "gold_answer" and "correct" and write it to
 * o->out, one line per input record. A record without the fields is an error naming
 * file:line, and then no output is left (unless it is stdout). When the pred field is a
 * list of strings, "extracted" and "correct" are lists (one per completion), and "pass"
 * (one is correct), "majority" (the answer most completions agree on; the earliest on a tie)
 * and "majority_correct" are added. */
int sq_grade_file(const sq_grade_file_opts *o, sq_grade_file_stats *st, sq_err *e);
/* "accuracy 0.7500 (3/4 correct, 0 without an answer)" into out. */
void sq_grade_file_summary(const sq_grade_file_stats *st, char *out, size_t cap);
/* The same as one JSON object, written atomically to path. */
int sq_grade_file_write_summary(const sq_grade_file_stats *st, const char *path, sq_err *e);

#endif
