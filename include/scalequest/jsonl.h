/* jsonl — the data layer: every stage reads JSONL and writes JSONL.
 *
 * Records are cJSON objects (Debian's libcjson): the caller owns each record that
 * sq_jsonl_next returns and frees it with cJSON_Delete. Every record carries a stable string
 * field "id" from the moment it is born, so a stage can skip ids already written (resume),
 * shard by id and join by id.
 *
 * Reader: streams any line length, accepts LF and CRLF, validates UTF-8 and JSON; a bad line
 * is an error naming "file:line: why", or, with skip_bad, is counted and reported (never
 * silently dropped). Blank lines are ignored. A regular file is mapped and read as it was
 * at open; stdin and pipes are read in chunks. Large mapped or in-memory inputs are
 * validated on several threads (sq_threads_get(), or sq_jsonl_set_threads), with
 * the same lines, line numbers and errors as one thread gives. The reader owns those
 * threads: started at the first large span, blocked while the caller works, joined by
 * sq_jsonl_close (so a reader must not be used across fork()).
 *
 * Reading is two-speed: sq_jsonl_next_line validates (UTF-8 and strict JSON syntax, by a
 * hand-written scanner) without building anything; sq_jsonl_next also parses with cJSON.
 * Validation rejects, with a reason, two things cJSON would choke on later: nesting deeper
 * than 512 and number tokens longer than 63 characters.
 *
 * Writer, two modes:
 *  - SQ_JSONL_CREATE: a whole-file output; written to a temp file and renamed into place at
 *    close, so readers see the old file or the complete new one. Abort leaves no trace.
 *  - SQ_JSONL_APPEND: a long stage's resumable output; on open, a torn last line (from a
 *    kill -9) is cut off and the ids already present are loaded, so the stage can skip them.
 *    Each record is one write(2) of a whole line; sq_jsonl_writer_sync makes them durable.
 *    Every record needs a string "id"; writing an id already in the file is an error
 *    (SQ_ESTATE), so a stage asks sq_jsonl_writer_has_id first. One appender per file
 *    (an exclusive flock; a second opener gets SQ_ESTATE).
 * CREATE to the path "-" writes to stdout (not atomic: there is nothing to rename).
 */
#ifndef SCALEQUEST_JSONL_H
#define SCALEQUEST_JSONL_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "scalequest/base.h"

typedef struct sq_jsonl_reader sq_jsonl_reader;

/* path "-" reads stdin. */
int sq_jsonl_open(sq_jsonl_reader **r, const char *path, int skip_bad, sq_err *e);
/* Read from memory (not copied: data must outlive the reader); name appears in messages. */
int sq_jsonl_open_mem(sq_jsonl_reader **r, const char *name, const void *data, size_t len, int skip_bad,
                      sq_err *e);
/* 1: *rec is the next record (caller frees); 0: end of input; <0: error (e says file:line). */
int sq_jsonl_next(sq_jsonl_reader *r, cJSON **rec, sq_err *e);
/* The raw next line after validation (no trailing newline; valid until the next call);
 * same return convention. Faster when the caller does not need the parsed object. */
int sq_jsonl_next_line(sq_jsonl_reader *r, const char **line, size_t *len, sq_err *e);
/* Threads that validate large mapped or in-memory inputs: 0 (the default) the process's
 * count, sq_threads_get() (every core unless sq_threads_set or --threads said otherwise);
 * 1 none besides the caller's. Call before the first read. */
void sq_jsonl_set_threads(sq_jsonl_reader *r, int threads);
int64_t sq_jsonl_line_number(const sq_jsonl_reader *r); /* of the last line returned */
int64_t sq_jsonl_bad_lines(const sq_jsonl_reader *r);   /* skipped with skip_bad */
const char *sq_jsonl_path(const sq_jsonl_reader *r);
int64_t sq_jsonl_bytes_read(const sq_jsonl_reader *r); /* for progress */
int64_t sq_jsonl_size(const sq_jsonl_reader *r);       /* input size, -1 when not a regular file */
void sq_jsonl_close(sq_jsonl_reader *r);

/* Validate one line: UTF-8 and JSON object syntax. 0 or SQ_EPARSE with the byte offset. */
int sq_jsonl_validate(const char *line, size_t len, sq_err *e);
/* Validate and parse one line into *rec (caller frees). 0 or SQ_EPARSE / SQ_ENOMEM. */
int sq_jsonl_parse(const char *line, size_t len, cJSON **rec, sq_err *e);
/* Top-level string field of a line, without building a tree: 1 and the decoded (unescaped,
 * UTF-8) value in out; 0 when the field is absent or not a string; SQ_EPARSE when the line
 * is not a JSON object; SQ_ENOMEM. Meant for validated lines; safe (bounded) on any input. */
int sq_jsonl_line_str(const char *line, size_t len, const char *field, sq_buf *out);

typedef enum { SQ_JSONL_CREATE = 0, SQ_JSONL_APPEND = 1 } sq_jsonl_mode;

typedef struct sq_jsonl_writer sq_jsonl_writer;

int sq_jsonl_writer_open(sq_jsonl_writer **w, const char *path, sq_jsonl_mode mode, sq_err *e);
/* APPEND mode: was this id already written (before open or since)? */
int sq_jsonl_writer_has_id(const sq_jsonl_writer *w, const char *id);
int64_t sq_jsonl_writer_count(const sq_jsonl_writer *w); /* records in the file so far */
int sq_jsonl_write(sq_jsonl_writer *w, const cJSON *rec, sq_err *e);
/* Write an already-serialised single-line JSON object (no newline). */
int sq_jsonl_write_line(sq_jsonl_writer *w, const char *line, size_t len, sq_err *e);
/* APPEND mode, for stages whose records are cheap to redo (dedup, decontaminate): from now on
 * records collect in memory and reach the file in whole lines, about 32 KiB per write(2),
 * instead of one write(2) each. Sync, close and abort write what is collected; a kill -9 loses
 * it (up to 32 KiB of records, which a resumed stage redoes) but never tears the file beyond
 * the last-line cut that opening in APPEND mode already does. has_id and count include
 * collected records. No effect in CREATE mode (already buffered). */
void sq_jsonl_writer_batch(sq_jsonl_writer *w);
int sq_jsonl_writer_sync(sq_jsonl_writer *w, sq_err *e); /* fsync (APPEND) */
/* CREATE: commit atomically; APPEND: fsync and close. Frees w either way. */
int sq_jsonl_writer_close(sq_jsonl_writer *w, sq_err *e);
/* CREATE: discard the output; APPEND: fsync and close what was written. Frees w. */
void sq_jsonl_writer_abort(sq_jsonl_writer *w);

/* ---- record helpers -------------------------------------------------------------------- */

const char *sq_rec_id(const cJSON *rec);                       /* NULL if absent / not string */
const char *sq_rec_str(const cJSON *rec, const char *field);   /* NULL if absent / not string */
int sq_rec_num(const cJSON *rec, const char *field, double *out); /* 0 ok, SQ_ENOTFOUND */
int sq_rec_bool(const cJSON *rec, const char *field, int *out);   /* 0 ok, SQ_ENOTFOUND */
const cJSON *sq_rec_array(const cJSON *rec, const char *field);   /* NULL unless an array */
/* Setters replace an existing field of the same name. 0 or SQ_ENOMEM. */
int sq_rec_set_str(cJSON *rec, const char *field, const char *value);
int sq_rec_set_num(cJSON *rec, const char *field, double value);
int sq_rec_set_bool(cJSON *rec, const char *field, int value);
int sq_rec_set(cJSON *rec, const char *field, cJSON *value); /* takes ownership of value */
/* Serialise compactly into one line (malloc'd, caller frees). */
char *sq_rec_to_line(const cJSON *rec);

/* ---- keys: sharding, fingerprints, sets ------------------------------------------------ */

/* The shard of a record is sq_jsonl_shard_hash(id) % N: 64-bit FNV-1a over the id's UTF-8
 * bytes (offset basis 0xcbf29ce484222325, prime 0x100000001b3). Fixed forever: shards made
 * by one version must be readable by the next. */
uint64_t sq_jsonl_shard_hash(const char *id, size_t len);

typedef struct sq_hash128 {
    uint64_t lo, hi;
} sq_hash128;
/* A 128-bit fingerprint of a byte string (not cryptographic; not for storage on disk). */
sq_hash128 sq_hash128_of(const void *data, size_t len);

/* A set of byte strings, stored as 128-bit fingerprints (16 bytes per slot whatever the
 * length; a false "already present" has probability about n^2 / 2^129). */
typedef struct sq_keyset sq_keyset;
sq_keyset *sq_keyset_new(void); /* NULL on OOM */
int sq_keyset_add(sq_keyset *s, const void *key, size_t len); /* 1 added, 0 was present, SQ_ENOMEM */
int sq_keyset_has(const sq_keyset *s, const void *key, size_t len);
size_t sq_keyset_size(const sq_keyset *s);
void sq_keyset_free(sq_keyset *s);

/* The key that dedup compares: the text itself, or (normalize) NFC + case-folded with every
 * run of whitespace made one space and the ends trimmed. 0 or SQ_ENOMEM. */
int sq_jsonl_dedup_key(const char *s, size_t n, int normalize, sq_buf *out);

#endif
