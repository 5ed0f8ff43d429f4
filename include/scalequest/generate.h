/* generate — the stage behind `scalequest generate`: sample completions for every prompt of a
 * JSONL file through any backend (the in-process engine or an OpenAI-compatible server).
 *
 * It keeps the stage contract of stage.h: duplicate or missing ids are refused, naming the
 * line, before anything is written; outputs are committed in input order, so a run killed at
 * any moment leaves a prefix and the rerun appends the rest (ids already written are
 * skipped); a request that fails goes to the failed file and the exit status, never to the
 * output, so a rerun tries it again.
 *
 * Input records carry "id" and either a prompt field (default "prompt": raw text) or
 * "messages" ([{role, content}]). Each output line is the input record plus "completions"
 * (one string per sample), "finish_reasons", "usage" and, with params.logprobs, "token_ids"
 * and "logprobs" (per sample, per token).
 *
 * Ownership: every string in the options is borrowed for the call.
 */
#ifndef SCALEQUEST_GENERATE_H
#define SCALEQUEST_GENERATE_H

#include "scalequest/backend.h"
#include "scalequest/stage.h"

typedef struct sq_generate_opts {
    sq_stage_opts stage; /* in, out, failed, shard...; generate drops nothing (dropped "") */
    const char *field;   /* the prompt field (default "prompt") */
    /* Sampling for every request; params.seed is the run's seed, and each request draws
     * from a seed derived from it and the record's id, so order, batching and resume do not
     * change what is drawn. */
    sq_gen_params params;
    /* When set (borrowed), "messages" records are rendered with it here and sent as raw
     * prompts, its end-of-turn strings added to the stops, whatever the backend would have
     * used; otherwise the backend applies the model's own (a local model without one fails
     * those records, naming this option). */
    const struct sq_chat_template *chat_template;
} sq_generate_opts;

void sq_generate_opts_default(sq_generate_opts *o);

/* Run the stage over o->stage.in. Unless progress is quiet, prints the stage's funnel line
 * and a closing line with token totals, completion tokens/s and (for a server) the client's
 * retries. counts may be NULL. SQ_EIO when some requests failed (they are in the failed
 * file; the message says how many). */
int sq_generate_run(sq_backend *b, const sq_generate_opts *o, sq_stage_counts *counts, sq_err *e);

#endif
