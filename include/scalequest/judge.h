/* judge — what the pipeline says to an external (judging or rewriting) LLM and how it reads
 * the answers: the paper's four prompts (Figures 9-12), word for word, and the parsers of
 * their replies; plus the Figure-12 difficulty-judge stage.
 *
 * Prompts. Each figure is a fixed text with one place where the question goes (the paper
 * prints a placeholder word there: "problem", "Problem", "Input"). A prompt is head +
 * question + tail, so any caller (a stage, the tiny world's oracle, a test) can both build
 * one and recognise one (sq_prompt_identify). Builders either write into a caller's buffer
 * (sq_prompt_build, snprintf-style) or return a malloc'd string the caller frees.
 *
 * Replies. Real models wrap the fields the prompts ask for in markdown, bold, quotes and
 * brackets, echo the format lines, and add commentary; the parsers find the LAST marker that
 * is used as a marker (followed by a colon or a line end), strip the wrapping, and report a
 * span inside the reply (no allocation, so they run at millions of replies per second).
 * - rewrite (Fig 9 "FINAL QUESTION:", Fig 10 "#Finally Rewritten Problem#:"): 0 and a span,
 *   SQ_ENOTFOUND when the reply has no marker, SQ_EPARSE when the marker is followed by
 *   nothing (or by the prompt's own placeholder).
 * - verdict (Fig 11): the last standalone Yes or No of the reply's last line that has any
 *   letter or digit, strictly: a word on its own (not "yesterday", not "yes-or-no", not the
 *   determiner in "no solution"), not negated ("not yes"), and not one side of a choice
 *   ("Yes or No", "Yes/No"); otherwise unknown (a verdict followed by more lines is no
 *   conclusion).
 * - rating (Fig 12): the "difficulty" value of the JSON the reply ends with (code fences,
 *   curly quotes, bold keys, bare values allowed): very easy..very hard -> 1..5, else 0.
 *
 * Ownership: parsers borrow the reply; spans point into it. Stage options' strings are
 * borrowed for the call.
 */
#ifndef SCALEQUEST_JUDGE_H
#define SCALEQUEST_JUDGE_H

#include <stddef.h>

#include "scalequest/backend.h"
#include "scalequest/base.h"
#include "scalequest/stage.h"

/* ---- prompts (src/pipeline/prompts.c) ------------------------------------------------- */

typedef enum sq_prompt_kind {
    SQ_PROMPT_SOLVABILITY_OPTIMIZE = 0, /* Figure 9: QPO, make the question solvable */
    SQ_PROMPT_DIFFICULTY_OPTIMIZE = 1,  /* Figure 10: QPO, make the question harder */
    SQ_PROMPT_SOLVABILITY_CHECK = 2,    /* Figure 11: is it a solvable math problem? Yes/No */
    SQ_PROMPT_DIFFICULTY_RATE = 3,      /* Figure 12: very easy .. very hard, as JSON */
    SQ_PROMPT_KINDS = 4
} sq_prompt_kind;

/* "solvability_optimize", "difficulty_optimize", "solvability_check", "difficulty_rate". */
const char *sq_prompt_kind_name(sq_prompt_kind k);
/* The figure's text before and after the question (static storage). */
const char *sq_prompt_head(sq_prompt_kind k);
const char *sq_prompt_tail(sq_prompt_kind k);
/* Write the prompt for `question` into out (at most cap bytes, always NUL-terminated when
 * cap > 0); returns the full length (without the NUL), as snprintf does. */
size_t sq_prompt_build(sq_prompt_kind k, const char *question, char *out, size_t cap);
/* The same, malloc'd (NULL on OOM); the caller frees. */
char *sq_prompt_solvability_optimize(const char *question);
char *sq_prompt_difficulty_optimize(const char *question);
char *sq_prompt_solvability_check(const char *question);
char *sq_prompt_difficulty_rate(const char *question);
/* 1 when `prompt` (len bytes) is one of the four prompts, with *kind and the question's span;
 * surrounding whitespace (a chat template's) is allowed. 0 otherwise. */
int sq_prompt_identify(const char *prompt, size_t len, sq_prompt_kind *kind, const char **question,
                       size_t *question_len);

/* ---- reply parsers (src/pipeline/replies.c) ------------------------------------------ */

typedef enum sq_verdict { SQ_VERDICT_UNKNOWN = 0, SQ_VERDICT_YES = 1, SQ_VERDICT_NO = 2 } sq_verdict;

/* "unknown", "yes", "no". */
const char *sq_verdict_name(sq_verdict v);
/* The strict end-of-reply verdict of a Figure-11 reply. */
sq_verdict sq_reply_verdict(const char *reply, size_t len);
/* The official code's rule, `"yes" in reply.lower()`, for comparison tables. */
int sq_reply_verdict_official(const char *reply, size_t len);

/* The rewritten question of a Figure-9 (SQ_PROMPT_SOLVABILITY_OPTIMIZE) or Figure-10
 * (SQ_PROMPT_DIFFICULTY_OPTIMIZE) reply: 0 and the span, SQ_ENOTFOUND (no marker),
 * SQ_EPARSE (empty after the marker), SQ_EINVAL (another kind). */
int sq_reply_rewrite(sq_prompt_kind k, const char *reply, size_t len, const char **q, size_t *q_len);

/* The Figure-12 rating: 1 (very easy) .. 5 (very hard), 0 when the reply has no parsable
 * difficulty. */
int sq_reply_rating(const char *reply, size_t len);
/* "very easy" .. "very hard" for 1..5, "unknown" otherwise. */
const char *sq_rating_name(int rating);

/* ---- the difficulty judge stage (src/pipeline/difficulty_judge.c) -------------------- */

typedef struct sq_difficulty_judge_opts {
    sq_stage_opts stage;   /* in, out, failed, shard...; name "difficulty judge" */
    const char *field;     /* the question field (default "query") */
    int keep_unknown;      /* keep records whose reply has no rating (rating 0); default drop */
    sq_gen_params params;  /* default: greedy, 1024 new tokens; params.seed is the run's seed */
    int raw_prompt;        /* send the prompt as raw text (completions), not as a chat user turn:
                              for models without a chat template */
} sq_difficulty_judge_opts;

void sq_difficulty_judge_opts_default(sq_difficulty_judge_opts *o);
/* Rate every question with the Figure-12 prompt through `b`: each kept record gets
 * "difficulty_rating" (1..5) and "judge_reply". A record without a string question is
 * dropped ("no_query"), a reply without a rating is dropped ("unparsable_rating") unless
 * keep_unknown. Prints the funnel and the rating histogram unless progress is quiet. */
int sq_difficulty_judge_run(sq_backend *b, const sq_difficulty_judge_opts *o, sq_stage_counts *counts, sq_err *e);

#endif
