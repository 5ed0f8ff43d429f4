/* The reader's parallel path (spans validated on several threads, lines handed out in file
 * order) against its sequential path (one thread, one line at a time): on the same bytes,
 * from memory and from a mapped file, both must give the same transcript — every line
 * returned with its number, every error with its message, what follows an error when the
 * caller goes on, and the skip-bad count. Tiny spans make a small input cross many span
 * and part boundaries; a line longer than a span, bad lines in later parts, CRLF, blank
 * lines and a byte-order mark are placed on purpose. */
#include <pthread.h>
#include <stdlib.h>

#include "../src/io/jsonl_internal.h"
#include "scalequest/jsonl.h"
#include "test.h"

/* Everything the caller can see of one read: "L<number> <line>" per line, "E<rc> <msg>"
 * per error (reading goes on after it, as a caller may), then "end B<bad lines>". */
static char *transcript(sq_jsonl_reader *r) {
    sq_buf t = {0};
    const char *line;
    size_t len;
    sq_err e;
    for (int guard = 0; guard < 100000; guard++) {
        int rc = sq_jsonl_next_line(r, &line, &len, &e);
        if (rc == 0) break;
        if (rc == 1) {
            sq_buf_printf(&t, "L%lld ", (long long)sq_jsonl_line_number(r));
            sq_buf_append(&t, line, len);
            sq_buf_puts(&t, "\n");
        } else {
            sq_buf_printf(&t, "E%d %s\n", rc, e.msg);
        }
    }
    sq_buf_printf(&t, "end B%lld", (long long)sq_jsonl_bad_lines(r));
    char *s = sq_strdup(t.data);
    sq_buf_free(&t);
    return s;
}

/* threads 1: the sequential path. Otherwise threads with parts of `part` bytes and no
 * lower limit, so even a few bytes are validated in parallel. path NULL: from memory. */
static char *read_with(const char *path, const char *text, size_t len, int skip_bad, int threads,
                       size_t part) {
    sq_jsonl_reader *r;
    sq_err e;
    int rc =
        path ? sq_jsonl_open(&r, path, skip_bad, &e) : sq_jsonl_open_mem(&r, "mem", text, len, skip_bad, &e);
    if (rc) return sq_strdup(e.msg);
    sq_jsonl_set_threads(r, threads);
    if (threads > 1) sq_jsonl_set_batch(r, part, 0);
    char *t = transcript(r);
    sq_jsonl_close(r);
    return t;
}

/* The first difference between two transcripts, for the failure message. */
static const char *diff_at(const char *a, const char *b) {
    while (*a && *a == *b)
        a++, b++;
    return a;
}

/* Every thread count and part size against the sequential transcript, skip-bad or not,
 * from memory and (when path is given, holding the same bytes) from the mapped file. */
static void same_as_sequential(const char *file, int lineno, const char *path, const char *text, size_t len) {
    static const size_t parts[] = {1, 2, 7, 16, 63, 64, 65, 200, 4096};
    sq_log_level old = sq_log_get_level();
    sq_log_set_level(SQ_LOG_ERROR); /* skipped-line warnings are expected */
    for (int skip = 0; skip < 2; skip++) {
        char *want = read_with(NULL, text, len, skip, 1, 0);
        for (int src = 0; src < (path ? 2 : 1); src++) {
            if (src) { /* messages name the file: its own sequential transcript */
                free(want);
                want = read_with(path, text, len, skip, 1, 0);
            }
            for (int threads = 2; threads <= 4; threads++)
                for (size_t k = 0; k < SQ_ARRAY_LEN(parts); k++) {
                    char *got = read_with(src ? path : NULL, text, len, skip, threads, parts[k]);
                    if (strcmp(got, want))
                        sq_test_fail(file, lineno,
                                     "%s, skip_bad %d, %d threads, parts of %zu: differs at \"%.80s\"",
                                     src ? "file" : "memory", skip, threads, parts[k], diff_at(got, want));
                    free(got);
                }
        }
        free(want);
    }
    sq_log_set_level(old);
}

static char *tmp_file(const char *name, const char *content, size_t len) {
    char *path = sq_path_join(sq_test_tmpdir(), name);
    sq_err e;
    if (sq_file_write_atomic(path, content, len, &e)) sq_test_fail(__FILE__, __LINE__, "%s", e.msg);
    return path;
}

SQ_TEST(parallel_reader_matches_sequential_on_mixed_lines) {
    const char *text = "\xEF\xBB\xBF{\"id\":\"a\",\"v\":[1,2,{\"x\":null}]}\r\n"
                       "\n"
                       "   \t\n"
                       "{\"id\":\"b\",\"s\":\"caf\xc3\xa9 \\\"q\\\" \\\\ \\u00e9\"}\n"
                       "{\"id\":\"c\",}\n" /* bad: trailing comma */
                       "{\"id\":\"d\",\"t\":true}\r\n"
                       "not json\n"                            /* bad */
                       "{\"id\":\"e\",\"bad\":\"\xc3\x28\"}\n" /* bad UTF-8 */
                       "{}\n"
                       "\r\n"
                       "{\"id\":\"f\",\"n\":-1.5e3}\n"
                       "{\"id\":\"g\""; /* bad and without '\n' */
    char *path = tmp_file("mixed.jsonl", text, strlen(text));
    same_as_sequential(__FILE__, __LINE__, path, text, strlen(text));
    /* And the sequential transcript is what the reader has always promised. */
    char *t = read_with(NULL, text, strlen(text), 1, 1, 0);
    CHECKF(strstr(t, "L1 {\"id\":\"a\",\"v\":[1,2,{\"x\":null}]}\nL4 ") == t, "%s", t);
    CHECKF(strstr(t, "L11 {\"id\":\"f\",\"n\":-1.5e3}\nend B4") != NULL, "%s", t);
    free(t);
    t = read_with(NULL, text, strlen(text), 0, 3, 5);
    CHECKF(strstr(t, "E-") && strstr(t, "mem:5: expected a string key at byte offset 10\n"), "%s", t);
    free(t);
    free(path);
}

SQ_TEST(parallel_reader_reports_the_first_bad_line_in_file_order) {
    /* 64 good lines, then bad lines at 41 and 57: with 2 threads and large parts, line 41
     * lies in the second thread's half, and so does 57; with 4 threads they lie in
     * different parts. The error is line 41's, exactly as one thread reports it. */
    sq_buf b = {0};
    for (int i = 1; i <= 64; i++) {
        if (i == 41)
            sq_buf_puts(&b, "{\"id\":\"41\",\"q\":\"ctrl \x01 byte\"}\n");
        else if (i == 57)
            sq_buf_puts(&b, "{\"id\":\"57\" \"q\":1}\n");
        else
            sq_buf_printf(&b, "{\"id\":\"%d\",\"q\":\"question %d, with a longer text to fill the line\"}\n",
                          i, i);
    }
    sq_jsonl_reader *r;
    sq_err e;
    const char *line;
    size_t len;
    for (int threads = 1; threads <= 4; threads++) {
        REQUIRE(sq_jsonl_open_mem(&r, "mem", b.data, b.len, 0, &e) == 0);
        sq_jsonl_set_threads(r, threads);
        sq_jsonl_set_batch(r, b.len / 2 + 1, 0); /* one span for the whole input */
        int rc, n = 0;
        while ((rc = sq_jsonl_next_line(r, &line, &len, &e)) == 1)
            n++;
        CHECK_EQ_INT(rc, SQ_EPARSE);
        CHECK_EQ_INT(n, 40);
        CHECK_EQ_INT(sq_jsonl_line_number(r), 41);
        CHECK_EQ_STR(e.msg, "mem:41: control character in string at byte offset 21");
        /* A caller that goes on gets lines 42..56, then line 57's error. */
        n = 0;
        while ((rc = sq_jsonl_next_line(r, &line, &len, &e)) == 1)
            n++;
        CHECK_EQ_INT(n, 15);
        CHECK_EQ_STR(e.msg, "mem:57: expected ',' or '}' at byte offset 11");
        sq_jsonl_close(r);
    }
    char *path = tmp_file("late_bad.jsonl", b.data, b.len);
    same_as_sequential(__FILE__, __LINE__, path, b.data, b.len);
    free(path);
    sq_buf_free(&b);
}

SQ_TEST(parallel_reader_handles_a_line_longer_than_a_span) {
    /* A 100 KB line among short ones, spans of a few hundred bytes: the span that reaches
     * it is stretched to its end. */
    sq_buf b = {0};
    sq_buf_puts(&b, "{\"id\":\"1\"}\n");
    size_t long_from = b.len;
    sq_buf_puts(&b, "{\"id\":\"2\",\"text\":\"");
    for (int i = 0; i < 100000; i++)
        sq_buf_append(&b, i % 97 == 0 ? "\\n" : "x", i % 97 == 0 ? 2 : 1);
    sq_buf_puts(&b, "\"}");
    size_t long_len = b.len - long_from;
    sq_buf_puts(&b, "\n{\"id\":\"3\"}\n{\"id\":\"4\",\"text\":\"");
    for (int i = 0; i < 100000; i++)
        sq_buf_append(&b, "y", 1);
    sq_buf_puts(&b, "\n{\"id\":\"5\"}\n"); /* line 4 is unterminated: bad */
    sq_jsonl_reader *r;
    sq_err e;
    const char *line;
    size_t len;
    REQUIRE(sq_jsonl_open_mem(&r, "mem", b.data, b.len, 1, &e) == 0);
    sq_jsonl_set_threads(r, 2);
    sq_jsonl_set_batch(r, 300, 0);
    sq_log_level old = sq_log_get_level();
    sq_log_set_level(SQ_LOG_ERROR);
    int n = 0;
    size_t longest = 0;
    while (sq_jsonl_next_line(r, &line, &len, &e) == 1)
        n++, longest = len > longest ? len : longest;
    sq_log_set_level(old);
    CHECK_EQ_INT(n, 4);
    CHECK_EQ_INT(longest, long_len);
    CHECK_EQ_INT(sq_jsonl_bad_lines(r), 1);
    sq_jsonl_close(r);
    same_as_sequential(__FILE__, __LINE__, NULL, b.data, b.len);
    sq_buf_free(&b);
}

/* A pseudo-random line: valid most of the time, sometimes broken in one of several ways. */
static void random_line(sq_buf *b, sq_rng *rng, int i) {
    int kind = (int)sq_rng_below(rng, 20);
    size_t words = sq_rng_below(rng, 40);
    sq_buf_printf(b, "{\"id\":\"r%d\",\"q\":\"", i);
    for (size_t w = 0; w < words; w++)
        sq_buf_puts(b, w % 7 == 3 ? "\\\\frac " : w % 11 == 5 ? "\xcf\x80 " : "word ");
    switch (kind) {
    case 0: sq_buf_puts(b, "\"\n"); return;              /* unterminated object */
    case 1: sq_buf_puts(b, "\\q\"}\n"); return;          /* bad escape */
    case 2: sq_buf_puts(b, "\xed\xa0\x80\"}\n"); return; /* an encoded surrogate */
    case 3: sq_buf_puts(b, "\"}\r\n\n"); return;         /* CRLF, then a blank line */
    case 4: sq_buf_puts(b, "\",\"n\":01}\n"); return;    /* bad number */
    default: sq_buf_printf(b, "\",\"n\":%d}\n", i); return;
    }
}

SQ_TEST(parallel_reader_matches_sequential_on_random_files) {
    sq_rng rng;
    sq_rng_seed(&rng, 7);
    for (int round = 0; round < 4; round++) {
        sq_buf b = {0};
        int lines = 50 + (int)sq_rng_below(&rng, 200);
        for (int i = 0; i < lines; i++)
            random_line(&b, &rng, i);
        char name[32];
        snprintf(name, sizeof name, "random%d.jsonl", round);
        char *path = tmp_file(name, b.data, b.len);
        same_as_sequential(__FILE__, __LINE__, path, b.data, b.len);
        free(path);
        sq_buf_free(&b);
    }
}

SQ_TEST(parallel_reader_counts_like_sequential_on_a_large_file) {
    /* About 3 MB, above the size where the default reader starts threads: the default
     * (every CPU, default spans) gives the sequential count, bad-line count and the first
     * error's line; bytes_read ends at the file's size. */
    sq_buf b = {0};
    sq_rng rng;
    sq_rng_seed(&rng, 11);
    int i = 0;
    while (b.len < (3u << 20))
        random_line(&b, &rng, i++);
    char *path = tmp_file("large.jsonl", b.data, b.len);
    sq_log_level old = sq_log_get_level();
    sq_log_set_level(SQ_LOG_ERROR);
    int64_t counts[2][2] = {{0}}; /* [threads 1 or default][records, bad] */
    char first_err[2][512];
    for (int k = 0; k < 2; k++) {
        sq_jsonl_reader *r;
        sq_err e;
        const char *line;
        size_t len;
        REQUIRE(sq_jsonl_open(&r, path, 1, &e) == 0);
        sq_jsonl_set_threads(r, k == 0 ? 1 : 0);
        int rc;
        while ((rc = sq_jsonl_next_line(r, &line, &len, &e)) == 1)
            counts[k][0]++;
        CHECK_EQ_INT(rc, 0);
        counts[k][1] = sq_jsonl_bad_lines(r);
        CHECK_EQ_INT(sq_jsonl_bytes_read(r), (int64_t)b.len);
        sq_jsonl_close(r);
        REQUIRE(sq_jsonl_open(&r, path, 0, &e) == 0);
        sq_jsonl_set_threads(r, k == 0 ? 1 : 0);
        while ((rc = sq_jsonl_next_line(r, &line, &len, &e)) == 1) {
        }
        CHECK_EQ_INT(rc, SQ_EPARSE);
        snprintf(first_err[k], sizeof first_err[k], "%s", e.msg);
        sq_jsonl_close(r);
    }
    sq_log_set_level(old);
    CHECK(counts[0][1] > 100);
    CHECK_EQ_INT(counts[1][0], counts[0][0]);
    CHECK_EQ_INT(counts[1][1], counts[0][1]);
    CHECK_EQ_STR(first_err[1], first_err[0]);
    /* The command-line count goes through the same reader with its defaults. */
    char *out = NULL;
    CHECK_EQ_INT(
        sq_test_sh(&out, "'%s' jsonl count --skip-bad --quiet --log-level error '%s'", sq_test_cli(), path),
        0);
    char want[32];
    snprintf(want, sizeof want, "%lld\n", (long long)counts[0][0]);
    CHECK_EQ_STR(out, want);
    free(out);
    /* --threads 1 (no threads) and --threads 3 (more than this machine may have). */
    for (int t = 1; t <= 3; t += 2) {
        out = NULL;
        CHECK_EQ_INT(sq_test_sh(&out,
                                "'%s' jsonl count --threads %d --skip-bad --quiet --log-level error '%s'",
                                sq_test_cli(), t, path),
                     0);
        CHECK_EQ_STR(out, want);
        free(out);
    }
    /* And through a pipe (read(2), one line at a time, no threads): the same count. */
    out = NULL;
    CHECK_EQ_INT(sq_test_sh(&out, "cat '%s' | '%s' jsonl count --skip-bad --quiet --log-level error -", path,
                            sq_test_cli()),
                 0);
    CHECK_EQ_STR(out, want);
    free(out);
    free(path);
    sq_buf_free(&b);
}
