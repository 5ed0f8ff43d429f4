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

/* What the reader does to a raw line (no '\n') before validating it: drops a trailing '\r'
 * and, on the file's first line, a UTF-8 byte-order mark. 0: a blank line (empty or only
 * spaces, tabs, '\r'), skipped but counted; 1: a line to validate, *s and *n trimmed. The
 * sequential reader and the parallel batches share it, so they judge the same bytes. */
static inline int sq_jsonl_trim(const char **s, size_t *n, int first_line) {
    const char *p = *s;
    size_t k = *n;
    if (k && p[k - 1] == '\r') k--;
    if (first_line && k >= 3 && p[0] == '\xEF' && p[1] == '\xBB' && p[2] == '\xBF') p += 3, k -= 3;
    *s = p;
    *n = k;
    if (k == 0) return 0;
    if (p[0] == '{') return 1;
    for (size_t i = 0; i < k; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') return 1;
    return 0;
}

/* ---- parallel validation of a span of whole lines (jsonl_batch.c) ----------------------
 * The reader posts a span of an in-memory or mapped input, [beg, stop) with stop at a line
 * end or the input's end, to sq_jsonl_batch_post. It is cut at newlines into parts; the
 * threads find the line ends of each part and judge every line. The reader then walks the
 * verdicts in file order, so line numbers, the first bad line and skip-bad counts are the
 * sequential reader's. A refused line is explained again by the reference. */
enum { SQ_JSONL_LINE_OK = 0, SQ_JSONL_LINE_BLANK = 1, SQ_JSONL_LINE_BAD = 2 };

typedef struct {
    /* per line: (offset of its end, '\n' or the input's end) << 3 | ends in '\r' << 2 | verdict */
    uint64_t *ent;
    size_t n, cap;
    size_t beg, stop; /* the part's bytes */
    int failed;       /* out of memory while recording */
} sq_jsonl_part;

typedef struct sq_jsonl_pool sq_jsonl_pool; /* threads, owned by a reader */
typedef struct {
    sq_jsonl_part *parts;
    int nparts, alloc;
    size_t beg;   /* the span's first byte */
    int posted;   /* being judged by the pool */
    int part;     /* walking position: part index and entry within it */
    size_t k;
    size_t cur;   /* start of the next line to hand out */
} sq_jsonl_batch;

/* Judge the lines of buf[beg, stop), cut into nparts parts, on up to threads threads: the
 * pool (*pool, started here when NULL) begins at once and the call returns; with one thread
 * (or none started) the parts are judged here before it returns. The line starting at
 * offset 0, if any, is the file's first (byte-order mark). stop_at_bad: judging stops at
 * the first bad line (nothing after it will be handed out). 0 or SQ_ENOMEM. */
int sq_jsonl_batch_post(sq_jsonl_batch *b, sq_jsonl_pool **pool, const char *buf, size_t beg, size_t stop,
                        int threads, int nparts, int stop_at_bad);
/* Finish a posted span (the caller takes parts too) and get ready to walk it. 0 or
 * SQ_ENOMEM (a part could not record its lines). */
int sq_jsonl_batch_wait(sq_jsonl_batch *b, sq_jsonl_pool *pool);
/* Abandon a posted span: parts not yet taken are skipped; returns when none is in work. */
void sq_jsonl_batch_cancel(sq_jsonl_batch *b, sq_jsonl_pool *pool);
/* The next line in file order: 1 with its start, end, whether it ends in '\r' and its
 * verdict; 0 when the batch is done. The reader need not touch the line's bytes again. */
int sq_jsonl_batch_next(sq_jsonl_batch *b, size_t *start, size_t *end, int *cr, int *verdict);
void sq_jsonl_batch_free(sq_jsonl_batch *b);
/* Ends the threads (after the part each is judging). NULL is fine. */
void sq_jsonl_pool_free(sq_jsonl_pool *pool);
/* Tests and the fuzzer: bytes per part of a span (a span is a few parts per thread), and
 * the least input left for which a span is worth its threads (0 0: the defaults). */
void sq_jsonl_set_batch(sq_jsonl_reader *r, size_t part_bytes, size_t min_bytes);

#endif
