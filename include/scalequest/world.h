/* world — the tiny world: a procedural generator of GSM8K-style word problems with exact
 * integer answers and step-by-step solutions, and a parser of the same grammar.
 *
 * A problem is a story about one person and one kind of item: a starting amount, then
 * `steps` events drawn from the enabled operations (a: add, s: subtract, b: boxes of equal
 * size (multiply, then add), m: double/triple, d: split into equal groups), then a question.
 * Every intermediate amount stays a positive integer. Problem i of seed S is the same
 * whatever else is generated (its RNG is seeded from S and i), so ids are stable.
 * The solution walks the events one line each and ends with "The answer is N." and
 * "\boxed{N}". sq_world_parse checks that a question follows the grammar (names, pronouns,
 * items consistent; every number legal) and recomputes its answer: that is how the demo
 * measures whether generated questions are well-formed.
 * Problems are plain structs with fixed buffers; nothing is allocated.
 */
#ifndef SCALEQUEST_WORLD_H
#define SCALEQUEST_WORLD_H

#include <stdint.h>

#include "scalequest/base.h"

typedef struct sq_world_opts {
    int min_steps, max_steps; /* events after the start, 1..8 */
    int max_number;           /* largest number a question states, >= 4 */
    char ops[8];              /* enabled operations, a subset of "asbmd" */
} sq_world_opts;

typedef struct sq_world_problem {
    char id[48];
    char query[1024];
    char response[2048];
    int64_t answer;
    int steps;
    int max_number;
    char ops_used[16]; /* the operations in order, e.g. "asb" */
} sq_world_problem;

void sq_world_opts_default(sq_world_opts *o);
int sq_world_opts_check(const sq_world_opts *o, sq_err *e);
int sq_world_generate(const sq_world_opts *o, uint64_t seed, uint64_t index, sq_world_problem *p, sq_err *e);
/* 0 and *answer (and *steps when non-NULL) when `query` is a well-formed world problem,
 * else SQ_EPARSE with e saying which sentence broke the grammar. */
int sq_world_parse(const char *query, int64_t *answer, int *steps, sq_err *e);
/* The number after the last "The answer is" or inside the last \boxed{...}; 0 or SQ_ENOTFOUND. */
int sq_world_extract_answer(const char *response, int64_t *answer);

#endif
