/* reward — the stage behind `scalequest reward`: score every response of a question with a
 * reward model and keep the best (ScaleQuest section 2.5), or select by self-consistency
 * (majority answer) or against a gold answer (rejection sampling, DART-Math style), or at
 * random (the baseline a reward model has to beat).
 *
 * The reward model is a scorer (score.h): an HF *ForSequenceClassification folder. Each
 * (question, response) pair is rendered in the reward model's own chat template as a user turn
 * and an assistant turn (no generation prompt) and tokenised as transformers'
 * apply_chat_template(conversation, tokenize=True) does (special tokens in the text read as
 * such, nothing added); the value is the head at the scored position score.h names. Without a
 * template the stage refuses to guess; with chat_template "none" the text is "QUESTION\n\nRESPONSE",
 * tokenised as tokenizer(text). The candidates of many questions go to the scorer together (it packs them
 * into forward steps); nothing is sampled and no cache is kept.
 *
 * Ranking: by reward (highest first) when a model is given, then the shorter response (bytes),
 * then the lower index. --select majority first keeps the largest group of equivalent answers
 * (the grader's equivalence; a tie goes to the group holding the best-ranked response);
 * --select gold keeps the responses whose answer equals the record's gold answer and drops the
 * question when none does; --select random draws one with a seed from the run's seed and the id.
 *
 * Input: records from `respond` ("query", "responses", optionally "answers"). Output: the record
 * plus "rewards" (one per response, when scored), "kept" ([{index, response, answer, reward}],
 * best first: one for keep best, k for top-k, every selected one for all), and the best one's
 * "response", "extracted" and "reward" at the top level, so {id, query, response} is there.
 */
#ifndef SCALEQUEST_REWARD_H
#define SCALEQUEST_REWARD_H

#include <stdint.h>

#include "scalequest/grade.h"
#include "scalequest/score.h"
#include "scalequest/stage.h"

typedef enum { SQ_KEEP_BEST = 0, SQ_KEEP_ALL, SQ_KEEP_TOPK } sq_reward_keep;
typedef enum { SQ_SELECT_REWARD = 0, SQ_SELECT_MAJORITY, SQ_SELECT_GOLD, SQ_SELECT_RANDOM } sq_reward_select;

typedef struct sq_reward_opts {
    sq_stage_opts stage;
    const char *model;           /* scorer folder; required for select reward, optional else */
    const char *field;           /* question field (default "query") */
    const char *responses_field; /* default "responses" */
    const char *gold_field;      /* select gold: default "answer" */
    sq_gold_format gold_format;  /* how the gold field is written (default auto) */
    const char *chat_template;   /* NULL: the reward model's own; "none": plain; or a spec */
    sq_reward_keep keep;
    int top_k;
    sq_reward_select select;
    uint64_t seed; /* select random */
    int chunk;     /* questions per scorer call (default 64) */
    sq_scorer_opts scorer;
} sq_reward_opts;

void sq_reward_opts_default(sq_reward_opts *o);
int sq_reward_parse_keep(const char *s, sq_reward_keep *keep, int *k, sq_err *e); /* best|all|top-K */
int sq_reward_parse_select(const char *s, sq_reward_select *sel, sq_err *e);
int sq_reward_run(const sq_reward_opts *o, sq_err *e);

/* The token ids the stage scores for one (question, response) pair (malloc'd *ids).
 * tmpl NULL: plain text as above. */
struct sq_tokenizer;
struct sq_chat_template;
int sq_reward_render(const struct sq_tokenizer *tok, const struct sq_chat_template *tmpl, const char *query,
                     const char *response, int32_t **ids, size_t *n, sq_err *e);

/* Outcome-reward training data: for every response of every record of `in`, one line
 * {"id": "ID#K", "input_ids": [the rendering above], "value": 1 when its answer equals the
 * gold answer, else 0} for `train --mode regress`. The tokenizer and template are those of
 * `model_dir` (the folder the reward model is trained from; it need not have a head).
 * Written atomically. */
typedef struct sq_orm_data_stats {
    int64_t records, responses, correct;
} sq_orm_data_stats;
int sq_reward_orm_data(const sq_reward_opts *o, const char *model_dir, const char *out, sq_orm_data_stats *st,
                       sq_err *e);

#endif
