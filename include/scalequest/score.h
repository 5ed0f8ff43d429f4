/* score — one number per text from a model's scalar head: the reward model that picks the
 * best response, the difficulty scorer that rates questions, and `scalequest score`.
 *
 * A scorer is an HF folder whose config.json names *ForSequenceClassification (Llama, Qwen2
 * or Mistral) with a score.weight [1, dim] tensor — a reward model from the Hub, or what
 * `train --mode regress` writes — plus its tokenizer (and chat template when it has one).
 * It runs the inference forward pass (src/model) over many texts at once, packed into steps
 * of up to max_batch_tokens tokens, and reads the head at the position transformers'
 * AutoModelForSequenceClassification reads it: the last token whose id is not the config's
 * pad_token_id (the first token when every one is), or the last token when the config has
 * none. Tokens after that position cannot change the value (attention is causal), so they
 * are not run. Nothing is kept between calls: the KV cache is scratch for one call.
 *
 * Ownership: the scorer owns its model, tokenizer, chat template and scratch; callers own
 * texts, ids and the out arrays. The tokenizer and template it hands out live until
 * sq_scorer_close. One scorer serves one caller at a time (it parallelises each call over
 * the process's thread pool itself).
 *
 * The score stage (src/pipeline/score.c) is the file-to-file form: JSONL in, the same
 * records with a "score" field out, resumable, shardable.
 */
#ifndef SCALEQUEST_SCORE_H
#define SCALEQUEST_SCORE_H

#include <stdint.h>

#include "scalequest/base.h"

struct sq_tokenizer;
struct sq_chat_template;

typedef struct sq_scorer sq_scorer;

typedef struct sq_scorer_opts {
    int threads;          /* 0 = all (the process's pool as it is) */
    int max_batch_tokens; /* tokens per forward, default 4096 */
    int ctx_len;          /* longest text scored, in tokens; 0 = the model's max */
} sq_scorer_opts;

void sq_scorer_opts_default(sq_scorer_opts *o);

/* path: an HF folder whose config.json names *ForSequenceClassification (Llama/Qwen2/Mistral)
 * with a score.weight [1, dim] tensor, or what `train --mode regress` writes. A folder without
 * the head, or a head of another shape, is an error naming the file and the tensor. */
int sq_scorer_open(sq_scorer **s, const char *path, const sq_scorer_opts *o, sq_err *e);

/* texts are tokenized with the model's tokenizer (special tokens in the text recognised, BOS
 * as the tokenizer adds it, as transformers' tokenizer(text) does); out[i] = the head's value
 * at the scored position. A text longer than ctx_len tokens is SQ_ERANGE naming its index;
 * nothing is written to out then. */
int sq_scorer_score(sq_scorer *s, const char *const *texts, int n, float *out, sq_err *e);
/* The same for token ids; lens[i] >= 1. */
int sq_scorer_score_ids(sq_scorer *s, const int32_t *const *ids, const int *lens, int n, float *out, sq_err *e);

const struct sq_tokenizer *sq_scorer_tokenizer(const sq_scorer *s);
const struct sq_chat_template *sq_scorer_chat_template(const sq_scorer *s); /* NULL when the folder has none */
/* The longest text it scores, in tokens (ctx_len after defaults). */
int sq_scorer_ctx_len(const sq_scorer *s);
/* Tokens sq_scorer_score would run for these ids: up to and including the scored position. */
int sq_scorer_scored_len(const sq_scorer *s, const int32_t *ids, int len);
void sq_scorer_close(sq_scorer *s);

/* ---- the score stage -------------------------------------------------------------------- */

typedef struct sq_score_stage_opts {
    const char *model;            /* scorer folder */
    const char *in, *out;         /* JSONL in ("-": stdin) and out (appended; resumable) */
    const char *field;            /* text field scored (default "query") */
    const char *out_field;        /* the field the value goes into (default "score") */
    const char *name;             /* the stage's name in progress and funnel (default "score") */
    int shard_index, shard_count; /* --shard I/N */
    int chunk;                    /* records per scorer call (default 256) */
    sq_scorer_opts scorer;
} sq_score_stage_opts;

void sq_score_stage_opts_default(sq_score_stage_opts *o);
/* Every input record (keyed by its "id") is written to `out` in input order with a "score"
 * field added, or to the dropped file beside it with a "drop_reason" when it has no string
 * `field` or its text is longer than the scorer's context. A run killed at any moment and
 * started again with the same arguments continues where it stopped, and its output is byte
 * for byte that of an uninterrupted run. */
int sq_score_stage_run(const sq_score_stage_opts *o, sq_err *e);

#endif
