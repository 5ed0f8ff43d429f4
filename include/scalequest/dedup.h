/* dedup — near-duplicate removal of questions, a stage (stage.h) that keeps the first
 * occurrence in input order and drops later copies.
 *
 * A record is an exact duplicate when the normal form of its text (minhash.h) equals that of
 * an earlier kept record, and a near duplicate when its MinHash signature shares an LSH band
 * with an earlier kept record's (Jaccard similarity of the shingle sets about `threshold` or
 * more). A dropped record goes to the dropped file with "drop_reason" ("exact duplicate" or
 * "near duplicate") and "duplicate_of", the id of the kept record it repeats (the earliest
 * one when several match). Only kept records enter the index, so chains do not grow: a
 * record is compared with what survives, as a reader of the output would see it.
 *
 * Memory: per kept record its id, one 8-byte exact-map slot and `bands` 8-byte LSH slots at
 * 80% load at most (tables sized from the input's record count when it is a regular file);
 * nothing per dropped record. Resume: the index is rebuilt from the kept records already in
 * the output. --shard finds duplicates only inside a shard (shards split by id hash).
 */
#ifndef SCALEQUEST_DEDUP_H
#define SCALEQUEST_DEDUP_H

#include "scalequest/minhash.h"
#include "scalequest/stage.h"

typedef struct sq_dedup_opts {
    sq_stage_opts stage;   /* in, out, dropped, shard... (name "dedup") */
    const char *field;     /* text field (default "query") */
    sq_minhash_params mh;  /* shingles, permutations, bands */
    int exact_only;        /* skip the MinHash test */
} sq_dedup_opts;

typedef struct sq_dedup_counts {
    int64_t kept, exact, near; /* this run */
    size_t index_bytes;        /* the index's memory at the end */
} sq_dedup_counts;

void sq_dedup_opts_default(sq_dedup_opts *o);
/* counts may be NULL. A record without a string `field` is an error naming file:line. */
int sq_dedup_run(const sq_dedup_opts *o, sq_dedup_counts *counts, sq_err *e);

#endif
