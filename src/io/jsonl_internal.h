/* Shared inside src/io/ only: the validator's core, used by the reader and the writer. */
#ifndef SQ_IO_JSONL_INTERNAL_H
#define SQ_IO_JSONL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "scalequest/jsonl.h"

/* cJSON refuses nesting deeper than 1000; stay well inside it. */
#define SQ_JSONL_MAX_DEPTH 512

/* Validate one line; on failure give the 0-based byte offset and a static reason. The
 * two-stage validator decides; the reference explains a refusal. */
int sq_jsonl_check(const char *line, size_t len, size_t *bad_offset, const char **why);
/* The reference validator alone (byte by byte, with string skipping): same contract. */
int sq_jsonl_check_ref(const char *line, size_t len, size_t *bad_offset, const char **why);
/* The two-stage validator's verdict alone: 1 valid, 0 invalid, -1 not available here (not
 * compiled for AVX2, or a line of 4 GiB or more). Meant to agree with the reference always. */
int sq_jsonl_fast_verdict(const char *line, size_t len);
/* Turn the two-stage validator off (1 = on, the default): tests and the fuzzer compare. */
void sq_jsonl_use_fast(int on);

/* Stage 2 of the two-stage validator: the grammar, walked over the positions of the
 * structural characters ({ } [ ] : , the opening quote of each string, the first byte of
 * each number or literal) that stage 1 found. It is fed in batches, so its state is
 * explicit rather than a recursion. */
typedef struct {
    int state, depth;
    uint8_t stack[SQ_JSONL_MAX_DEPTH + 1]; /* '{' or '[' per open container, 1-based */
} sq_jsonl_grammar;
void sq_jsonl_grammar_init(sq_jsonl_grammar *g);
/* 0: consistent so far; -1: the line is invalid. pos are offsets into line, ascending. */
int sq_jsonl_grammar_feed(sq_jsonl_grammar *g, const uint8_t *line, size_t len, const uint32_t *pos, size_t n);
/* 1 when exactly one complete object was seen. */
int sq_jsonl_grammar_done(const sq_jsonl_grammar *g);
/* Turn the 64-byte block scanner off (1 = on, the default): the fuzzer compares the two. */
void sq_jsonl_use_blocks(int on);
/* Length of the strict UTF-8 sequence at p (first byte >= 0x80), or 0 when invalid. */
size_t sq_utf8_seq_len(const uint8_t *p, const uint8_t *end);

#endif
