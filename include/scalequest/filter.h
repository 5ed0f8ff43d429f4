/* filter — the question filters of ScaleQuest section 2.4: language and solvability.
 *
 * Language (src/pipeline/filter_lang.c). The official code keeps only pure-ASCII questions,
 * which throws away every question that writes π, °, ×, √ or €. Ours looks at what each
 * character is: letters must be in the target script (for "en": Latin, accented Latin
 * included, so "café" and "Poincaré" stay); digits, punctuation, spaces, LaTeX, currency,
 * superscripts, arrows, math operators and letter-like math symbols (ℝ, 𝑥) are allowed in any
 * language; Greek letters are math symbols (π, θ, Δ) unless they form words (two or more runs
 * of three or more Greek letters). A question is dropped, with the first reason found, for:
 *   empty         nothing but whitespace
 *   invalid_utf8  bytes that are not UTF-8 (surrogates, overlongs, cut sequences)
 *   control_char  a C0/C1 control other than tab, newline, carriage return
 *   mojibake      UTF-8 read back as Latin-1/CP-1252 ("Ã©", "â€™", "Â°", "Ï€") or U+FFFD
 *   garbled       private-use, unassigned or non-characters
 *   other_script  a letter of another script (Cyrillic, Han, Arabic, ...) or Greek words
 *   no_target_script  (targets other than "en") no letter of the target script at all
 * The check reads bytes eight at a time while they are printable ASCII, which is most of
 * any English question, so it runs at memory speed.
 *
 * Solvability (src/pipeline/filter_solvable.c): the Figure-11 prompt (judge.h) through any
 * backend, one request per question; the verdict parsed with sq_reply_verdict.
 *
 * Ownership: options' strings are borrowed for the call.
 */
#ifndef SCALEQUEST_FILTER_H
#define SCALEQUEST_FILTER_H

#include <stddef.h>

#include "scalequest/backend.h"
#include "scalequest/base.h"
#include "scalequest/stage.h"

typedef enum sq_lang_reason {
    SQ_LANG_OK = 0,
    SQ_LANG_EMPTY,
    SQ_LANG_INVALID_UTF8,
    SQ_LANG_CONTROL,
    SQ_LANG_MOJIBAKE,
    SQ_LANG_GARBLED,
    SQ_LANG_OTHER_SCRIPT,
    SQ_LANG_NO_TARGET,
    SQ_LANG_REASONS
} sq_lang_reason;

typedef enum sq_lang_target { SQ_LANG_EN = 0, SQ_LANG_ZH, SQ_LANG_RU } sq_lang_target;

/* "en" (Latin), "zh" (Han; Latin letters allowed as variables and units), "ru" (Cyrillic;
 * likewise). 0 or SQ_EINVAL. */
int sq_lang_parse(const char *name, sq_lang_target *t, sq_err *e);
/* "ok", "empty", "invalid_utf8", "control_char", "mojibake", "garbled", "other_script",
 * "no_target_script". */
const char *sq_lang_reason_name(sq_lang_reason r);
/* Check one text; *where (when non-NULL) gets the byte offset of the offending character. */
sq_lang_reason sq_lang_check(const char *text, size_t len, sq_lang_target t, size_t *where);

typedef struct sq_filter_lang_opts {
    sq_stage_opts stage; /* in, out, dropped, shard...; name "filter lang" */
    const char *field;   /* the question field (default "query") */
    sq_lang_target lang;
} sq_filter_lang_opts;

void sq_filter_lang_opts_default(sq_filter_lang_opts *o);
/* Keep each record whose question passes (adding "lang"), drop the others with the reason
 * and "lang_detail" (the character and its offset); a record without a string question is
 * dropped as "no_query". Prints the funnel unless progress is quiet. */
int sq_filter_lang_run(const sq_filter_lang_opts *o, sq_stage_counts *counts, sq_err *e);

typedef struct sq_filter_solvable_opts {
    sq_stage_opts stage;  /* name "filter solvable" */
    const char *field;    /* the question field (default "query") */
    int keep_unknown;     /* keep records whose reply has no clear verdict (default: drop) */
    sq_gen_params params; /* default: greedy, 2048 new tokens (the official code's) */
    int raw_prompt;       /* send the prompt as raw text (completions), not as a chat user turn */
} sq_filter_solvable_opts;

void sq_filter_solvable_opts_default(sq_filter_solvable_opts *o);
/* Judge every question with the Figure-11 prompt through b. Every settled record gets
 * "verdict" ("yes" | "no" | "unknown") and "judge_reply"; "yes" is kept, "no" dropped
 * ("unsolvable"), "unknown" dropped ("no_verdict") unless keep_unknown; a record without a
 * string question is dropped ("no_query"). Requests that fail after the backend's retries go
 * to the failed file (a rerun retries them). Prints the funnel unless quiet. */
int sq_filter_solvable_run(sq_backend *b, const sq_filter_solvable_opts *o, sq_stage_counts *counts, sq_err *e);

#endif
