/* libFuzzer target for the JSONL reader and validator.
 *
 * Beyond "no crash, no sanitizer report", it checks six agreements that the data layer
 * relies on: the two-stage validator gives the reference validator's verdict; within the
 * reference, the 64-byte block scanner and the byte-by-byte scanner give the same verdict,
 * offset and reason (and sq_jsonl_check, which uses both validators, gives them too);
 * whatever the validator accepts, cJSON parses into an object; the raw field lookup finds
 * the same "id" string as cJSON does; the streaming reader over the same bytes as a file
 * of lines never returns a line the validator would refuse; and the reader's parallel path
 * (spans cut into parts of a few bytes, 2 to 4 threads) gives the sequential path's
 * transcript: the same lines, line numbers, error messages (also when reading goes on
 * after an error) and skip-bad count. That last check runs on one input in four (by a
 * hash of its bytes): its readers start threads, which costs more than all the rest.
 *   make fuzz && build/fuzz/fuzz_jsonl -max_total_time=300 corpus/
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/io/jsonl_internal.h"
#include "scalequest/jsonl.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    sq_log_set_level(SQ_LOG_ERROR); /* skipped-line warnings would flood the output */
    return 0;
}

static void check_one_line(const char *s, size_t n) {
    size_t off1 = 0, off2 = 0;
    const char *why1 = NULL, *why2 = NULL;
    sq_jsonl_use_blocks(0);
    int slow = sq_jsonl_check_ref(s, n, &off1, &why1);
    sq_jsonl_use_blocks(1);
    int fast = sq_jsonl_check_ref(s, n, &off2, &why2);
    if (slow != fast || (slow && (off1 != off2 || strcmp(why1, why2)))) __builtin_trap();
    int verdict = sq_jsonl_fast_verdict(s, n);
    if (verdict >= 0 && verdict != (slow == 0)) __builtin_trap();
    size_t off3 = 0;
    const char *why3 = NULL;
    int both = sq_jsonl_check(s, n, &off3, &why3);
    if (both != slow || (slow && (off1 != off3 || strcmp(why1, why3)))) __builtin_trap();
    sq_err e;
    sq_buf id = {0};
    int got = sq_jsonl_line_str(s, n, "id", &id); /* must be safe on any input */
    if (sq_jsonl_validate(s, n, &e) == 0) {
        cJSON *rec = cJSON_ParseWithLength(s, n);
        if (!rec || !cJSON_IsObject(rec)) __builtin_trap();
        const char *cid = sq_rec_id(rec);
        if ((got == 1) != (cid != NULL)) __builtin_trap();
        /* cJSON stops a string at an escaped NUL; compare only where it kept all of it. */
        if (cid && strlen(cid) == id.len && memcmp(cid, id.data, id.len)) __builtin_trap();
        cJSON_Delete(rec);
    }
    sq_buf key = {0};
    sq_jsonl_dedup_key(s, n, 1, &key);
    sq_buf_free(&key);
    sq_buf_free(&id);
}

/* Everything a caller sees of one read, as a hash of the transcript (lines with their
 * numbers, error messages, the skip-bad count). */
static uint64_t transcript(const uint8_t *data, size_t size, int skip_bad, int threads, size_t part) {
    sq_jsonl_reader *r;
    sq_err e;
    if (sq_jsonl_open_mem(&r, "fuzz", data, size, skip_bad, &e)) __builtin_trap();
    sq_jsonl_set_threads(r, threads);
    if (threads > 1) sq_jsonl_set_batch(r, part, 0);
    uint64_t h = 1469598103934665603ull;
    const char *line;
    size_t len;
    for (int guard = 0; guard <= (int)size + 1; guard++) {
        int rc = sq_jsonl_next_line(r, &line, &len, &e);
        if (rc == 0) break;
        int64_t no = sq_jsonl_line_number(r);
        h = (h ^ sq_jsonl_shard_hash((const char *)&no, sizeof no)) * 1099511628211ull;
        h = (h ^ (rc == 1 ? sq_jsonl_shard_hash(line, len) : sq_jsonl_shard_hash(e.msg, strlen(e.msg)))) * 1099511628211ull;
    }
    int64_t bad = sq_jsonl_bad_lines(r);
    h = (h ^ (uint64_t)bad) * 1099511628211ull;
    sq_jsonl_close(r);
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 0 && sq_jsonl_shard_hash((const char *)data, size) % 4 == 0) {
        /* Parts of 1 to about size/2 bytes, chosen by the input's last byte, but no more
         * than about 4 spans; 2 to 4 threads. */
        int threads = 2 + data[size - 1] % 3;
        size_t part = 1 + data[size - 1] % (size / 2 + 1), least = size / ((size_t)threads * 4) + 1;
        if (part < least) part = least;
        for (int skip = 0; skip < 2; skip++)
            if (transcript(data, size, skip, 1, 0) != transcript(data, size, skip, threads, part)) __builtin_trap();
    }
    check_one_line((const char *)data, size);
    sq_jsonl_reader *r;
    sq_err e;
    if (sq_jsonl_open_mem(&r, "fuzz", data, size, 1, &e)) return 0;
    const char *line;
    size_t len;
    int rc;
    while ((rc = sq_jsonl_next_line(r, &line, &len, &e)) == 1) {
        if (sq_jsonl_validate(line, len, &e) != 0) __builtin_trap();
        cJSON *rec;
        if (sq_jsonl_parse(line, len, &rec, &e) != 0) __builtin_trap();
        cJSON_Delete(rec);
    }
    if (rc != 0) __builtin_trap(); /* with skip_bad, memory input ends cleanly */
    sq_jsonl_close(r);
    return 0;
}
