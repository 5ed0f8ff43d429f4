/* oracle — the tiny world playing the external LLM, and the one place stage commands open
 * their models.
 *
 * The paper sends questions to an external LLM (GPT-4o-mini, Qwen2-Math-7B-Instruct) with
 * the Figure 9-12 prompts. On the tiny world (world.h) nothing that large is needed: the
 * world knows its own grammar, so it can answer those prompts itself. The oracle is an
 * sq_backend (backend.h) like the engine and the HTTP client: a stage sends it the very
 * prompt text it would send GPT-4o-mini, and parses its reply with the very parser it uses
 * on a real model's reply. What the oracle does with a prompt it recognises
 * (sq_prompt_identify):
 *   Fig 9  (solvability): a question the world can solve and that takes two or more steps
 *          comes back unchanged; a one-step one gets one more step; one the world cannot
 *          solve is repaired (read leniently: its name, item, start and every event it can
 *          recognise, illegal events made legal or dropped, then written in the world's
 *          grammar) — reply in the figure's CREATED / VERIFICATION / FINAL QUESTION format.
 *   Fig 10 (difficulty): the (repaired) question with one more reasoning step — reply in
 *          the figure's Step 1..4 format.
 *   Fig 11 (solvability check): solves it with the world's parser; the reply walks the
 *          solution and ends "Yes", or names the sentence that breaks the grammar and ends
 *          "No".
 *   Fig 12 (difficulty): the step count (or, for an unsolvable question, the events it can
 *          recognise) as very easy (1 step) .. very hard (6 or more) in the figure's JSON.
 * Any other prompt gets a one-line reply saying what the oracle answers (which parsers
 * count as unparsable, as they would a real model's off-topic reply). Replies are
 * deterministic given the request seed; the added step is drawn from it.
 *
 * "world:TRAIN.jsonl" reads the world's problems (field "query"; the file a QFT model was
 * trained on) to learn the world's limits — the largest number a question states, the
 * operations used, the most steps — so repaired and harder questions stay inside the world
 * the model knows. "world:" uses the world's defaults (world.h).
 *
 * Token counts in results are whitespace-separated words (there is no tokenizer).
 */
#ifndef SCALEQUEST_ORACLE_H
#define SCALEQUEST_ORACLE_H

#include "scalequest/backend.h"
#include "scalequest/base.h"
#include "scalequest/world.h"

/* Open by spec: "world:", "world:TRAIN.jsonl" or "world-oracle" give the oracle; anything
 * else goes to sq_backend_open (engine or HTTP). Stage commands open their --model with this
 * so every stage takes the world spec too. Close with sq_backend_close. */
int sq_pipeline_backend_open(sq_backend **b, const char *spec, const sq_backend_opts *o, sq_err *e);

/* The oracle itself; train may be NULL or "" (world defaults). */
int sq_world_oracle_open(sq_backend **b, const char *train, sq_err *e);
/* 1 when b is a world oracle. */
int sq_backend_is_world_oracle(const sq_backend *b);

/* The oracle's reply to one prompt (malloc'd, caller frees; NULL on OOM): what its backend
 * returns, exposed for tests and benchmarks. */
char *sq_world_oracle_reply(const sq_backend *b, const char *prompt, uint64_t seed);

/* ---- the lenient story reader behind the repairs (src/pipeline/oracle_story.c) ------- */

typedef struct sq_story_event {
    char op;     /* a, s, b, m, d (world.h) */
    int variant; /* which sentence form: a 0 buys / 1 finds / 2 a friend gives; s 0 gives / 1 loses / 2 sells */
    int64_t n, k;
} sq_story_event;

typedef struct sq_story {
    int name, item; /* indices into the world's vocabulary */
    int64_t start;
    sq_story_event ev[16];
    int n_ev;
    int recognised; /* sentences that matched something */
} sq_story;

/* Read any text as a world story as far as it goes: never fails; a missing name, item or
 * start is drawn from `seed`. */
void sq_story_read(const char *text, size_t len, uint64_t seed, sq_story *s);
/* Make every event legal (amounts positive integers <= 1e9, divisions exact), dropping
 * those that cannot be, and keep at most max_steps events. */
void sq_story_legalize(sq_story *s, int max_steps);
/* Append one event drawn from rng among the enabled, feasible operations; numbers
 * 2..max_number. 0, or SQ_ERANGE when the story is full or nothing is feasible. */
int sq_story_add_step(sq_story *s, const sq_world_opts *o, sq_rng *rng);
/* Write the story in the world's grammar; returns the length (snprintf-style). */
size_t sq_story_write(const sq_story *s, char *out, size_t cap);

#endif
