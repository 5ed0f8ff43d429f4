/* qgen — question generation from scratch (ScaleQuest section 2.1): sample a question
 * generator (a QFT or QPO model) from its bare user-turn prefix, with no seed question, and
 * keep the text up to the end of the user turn as a new question.
 *
 * The stage makes its own records: ids q000000, q000001, ... (index `start` on), each one
 * request to the backend from the same prefix with a seed derived from the run's seed and
 * the id, so a question is the same whatever the batching, the order answers arrive in, a
 * resume or a shard. A question is the completion cut at the first user-turn end or
 * assistant prefix (the backend stops there already; the cut repeats it for backends that
 * do not honour stop strings), with surrounding white space trimmed. Kept records are
 * {"id", "query"}; dropped ones go to the dropped file with the raw text and a reason:
 * "length" (hit max_tokens before the user turn ended), "empty", or "duplicate" (the same
 * text, white space runs collapsed, as a question kept before it in id order; within this
 * shard: across shards run `dedup`).
 *
 * Duplicates are decided in id order after each batch returns, never in arrival order, and a
 * resumed run rebuilds the set of kept questions from its output (sq_stage_replay), so a
 * killed and resumed run writes byte for byte what an uninterrupted one writes.
 *
 * Ownership: strings in the options are borrowed for the call.
 */
#ifndef SCALEQUEST_QGEN_H
#define SCALEQUEST_QGEN_H

#include "scalequest/backend.h"
#include "scalequest/stage.h"

struct sq_chat_template;

#define SQ_QGEN_MAX_CUT 8

typedef struct sq_qgen_opts {
    sq_stage_opts stage;  /* out, dropped, failed, shard, window (stage.in must be NULL) */
    int64_t n_questions;  /* how many ids to make */
    int64_t start;        /* index of the first id (default 0) */
    const char *prefix;   /* the text sampled from: the chat template's bare user-turn prefix */
    const char *cut[SQ_QGEN_MAX_CUT]; /* strings that end a question (also sent as stops) */
    int n_cut;
    sq_gen_params params; /* defaults: temperature 1.0, top-p 0.99, max_tokens 512 (the paper's);
                             params.seed is the run's seed */
    int chunk;            /* requests per backend batch (default 256) */
} sq_qgen_opts;

void sq_qgen_opts_default(sq_qgen_opts *o);

/* Take prefix and cut strings from a chat template: the question prefix (written into
 * *prefix, which must outlive the run), the user-turn stops and the assistant prefix. */
int sq_qgen_use_template(sq_qgen_opts *o, const struct sq_chat_template *t, sq_buf *prefix, sq_err *e);

/* The id of question i: "q" and at least six digits. */
void sq_qgen_id(int64_t i, char *out, size_t cap);

/* The question in a completion: the text before the first cut string, trimmed (malloc'd). */
char *sq_qgen_question(const char *completion, const char *const *cut, int n_cut);

/* The duplicate key of a question: white space runs as one space, none at the ends
 * (malloc'd). */
char *sq_qgen_normalize(const char *question);

/* Run the stage. Unless progress is quiet, prints the funnel line and a token line. counts
 * may be NULL. SQ_EIO when some requests failed (they are in the failed file; a rerun
 * retries them). */
int sq_qgen_run(sq_backend *b, const sq_qgen_opts *o, sq_stage_counts *counts, sq_err *e);

#endif
