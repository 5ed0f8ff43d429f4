/* Shared inside src/io/ only: the validator's core, used by the reader and the writer. */
#ifndef SQ_IO_JSONL_INTERNAL_H
#define SQ_IO_JSONL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "scalequest/jsonl.h"

/* cJSON refuses nesting deeper than 1000; stay well inside it. */
#define SQ_JSONL_MAX_DEPTH 512

/* Validate one line; on failure give the 0-based byte offset and a static reason. */
int sq_jsonl_check(const char *line, size_t len, size_t *bad_offset, const char **why);
/* Turn the 64-byte block scanner off (1 = on, the default): the fuzzer compares the two. */
void sq_jsonl_use_blocks(int on);
/* Length of the strict UTF-8 sequence at p (first byte >= 0x80), or 0 when invalid. */
size_t sq_utf8_seq_len(const uint8_t *p, const uint8_t *end);

#endif
