/* jsonl: validator, streaming reader, atomic and resumable writers, record helpers, keys. */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "scalequest/jsonl.h"
#include "test.h"

static char *tmp_file(const char *name, const char *content, size_t len) {
    char *path = sq_path_join(sq_test_tmpdir(), name);
    sq_err e;
    if (content && sq_file_write_atomic(path, content, len, &e)) sq_test_fail(__FILE__, __LINE__, "%s", e.msg);
    return path;
}

/* Read every line of path; returns the count or a negative code with e filled. */
static int64_t count_lines(const char *path, int skip_bad, int64_t *bad, sq_err *e) {
    sq_jsonl_reader *r;
    int rc = sq_jsonl_open(&r, path, skip_bad, e);
    if (rc) return rc;
    const char *line;
    size_t len;
    int64_t n = 0;
    while ((rc = sq_jsonl_next_line(r, &line, &len, e)) == 1) n++;
    if (bad) *bad = sq_jsonl_bad_lines(r);
    sq_jsonl_close(r);
    return rc < 0 ? rc : n;
}

SQ_TEST(validator_accepts_json_objects) {
    const char *good[] = {
        "{}", " { } ", "{\"a\":1}", "{\"a\":[1,2.5,-3e+2,0.0e-1,true,false,null,{}]}",
        "{\"s\":\"tab\\t quote\\\" back\\\\ slash\\/ \\u00e9 \\ud83d\\ude00\"}",
        "{\"utf8\":\"caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80\"}", "{\"a\":{\"b\":{\"c\":[[[]]]}}}",
        "{\"k\":\"a long string that crosses more than thirty-two bytes of plain text, twice over\"}",
        "{\"n\":-0,\"m\":1E5,\"z\":12345678901234567890}",
    };
    sq_err e;
    for (size_t i = 0; i < SQ_ARRAY_LEN(good); i++)
        CHECKF(sq_jsonl_validate(good[i], strlen(good[i]), &e) == 0, "rejected %s: %s", good[i], e.msg);
}

SQ_TEST(validator_rejects_with_offset) {
    struct {
        const char *line, *why;
        int offset;
    } bad[] = {
        {"", "empty line", 0},
        {"[1,2]", "must be a JSON object", 0},
        {"{\"a\":1,}", "expected a string key", 7},
        {"{\"a\" 1}", "expected ':'", 5},
        {"{\"a\":01}", "expected ',' or '}'", 6},
        {"{\"a\":1.}", "digit expected after '.'", 7},
        {"{\"a\":tru}", "unexpected character", 5},
        {"{\"a\":\"x\\q\"}", "bad escape", 7},
        {"{\"a\":\"\\ud800\"}", "unpaired high surrogate", 6},
        {"{\"a\":\"\\udc00\"}", "unpaired low surrogate", 6},
        {"{\"a\":\"tab\there\"}", "control character", 9},
        {"{\"a\":\"open", "unterminated string", 5},
        {"{\"a\":1} x", "unexpected text after", 8},
        {"{\"a\":\"\xc3\x28\"}", "invalid UTF-8", 6},
        {"{\"a\":\"\xc0\xaf\"}", "invalid UTF-8", 6},         /* overlong '/' */
        {"{\"a\":\"\xed\xa0\x80\"}", "invalid UTF-8", 6},     /* encoded surrogate */
        {"{\"a\":\"\xf4\x90\x80\x80\"}", "invalid UTF-8", 6}, /* above U+10FFFF */
        {"{\"a\":\"\xe4\xb8\"}", "invalid UTF-8", 6},         /* truncated */
        {"\xff{}", "invalid UTF-8", 0},
        {"{\"a\":1", "unexpected end of line", 6},
        {"{\"a\":NaN}", "unexpected character", 5},
    };
    sq_err e;
    for (size_t i = 0; i < SQ_ARRAY_LEN(bad); i++) {
        int rc = sq_jsonl_validate(bad[i].line, strlen(bad[i].line), &e);
        CHECKF(rc == SQ_EPARSE, "accepted %s", bad[i].line);
        if (rc != SQ_EPARSE) continue;
        char want[64];
        snprintf(want, sizeof want, "at byte offset %d", bad[i].offset);
        CHECKF(strstr(e.msg, bad[i].why) && strstr(e.msg, want), "%s: got '%s', want '%s' %s", bad[i].line, e.msg,
               bad[i].why, want);
    }
}

SQ_TEST(validator_limits_match_cjson) {
    sq_buf b = {0};
    for (int i = 0; i < 600; i++) sq_buf_puts(&b, "{\"a\":");
    sq_buf_puts(&b, "1");
    for (int i = 0; i < 600; i++) sq_buf_puts(&b, "}");
    sq_err e;
    CHECK(sq_jsonl_validate(b.data, b.len, &e) == SQ_EPARSE);
    CHECK(strstr(e.msg, "nesting too deep") != NULL);
    sq_buf_reset(&b);
    sq_buf_puts(&b, "{\"n\":1");
    for (int i = 0; i < 70; i++) sq_buf_puts(&b, "0");
    sq_buf_puts(&b, "}");
    CHECK(sq_jsonl_validate(b.data, b.len, &e) == SQ_EPARSE);
    CHECK(strstr(e.msg, "number longer than 63") != NULL);
    sq_buf_free(&b);
}

SQ_TEST(reader_handles_crlf_blank_lines_and_bom) {
    const char *text = "\xEF\xBB\xBF{\"id\":\"a\",\"v\":1}\r\n\r\n   \n{\"id\":\"b\",\"v\":2}\n{\"id\":\"c\",\"v\":3}";
    char *path = tmp_file("crlf.jsonl", text, strlen(text));
    sq_jsonl_reader *r;
    sq_err e;
    REQUIRE(sq_jsonl_open(&r, path, 0, &e) == 0);
    cJSON *rec;
    const char *want[] = {"a", "b", "c"};
    int lines[] = {1, 4, 5};
    for (int i = 0; i < 3; i++) {
        REQUIRE(sq_jsonl_next(r, &rec, &e) == 1);
        CHECK_EQ_STR(sq_rec_id(rec), want[i]);
        double v;
        CHECK(sq_rec_num(rec, "v", &v) == 0 && v == i + 1);
        CHECK_EQ_INT(sq_jsonl_line_number(r), lines[i]);
        cJSON_Delete(rec);
    }
    CHECK_EQ_INT(sq_jsonl_next(r, &rec, &e), 0);
    CHECK(rec == NULL);
    sq_jsonl_close(r);
    free(path);
}

SQ_TEST(reader_reports_file_and_line_of_bad_json) {
    const char *text = "{\"id\":\"1\"}\n{\"id\":\"2\"}\n{\"id\":\"3\",}\n{\"id\":\"4\"}\n";
    char *path = tmp_file("bad.jsonl", text, strlen(text));
    sq_err e;
    CHECK_EQ_INT(count_lines(path, 0, NULL, &e), SQ_EPARSE);
    char want[700];
    snprintf(want, sizeof want, "%s:3: expected a string key at byte offset 10", path);
    CHECK_EQ_STR(e.msg, want);
    int64_t bad = -1;
    sq_log_level old = sq_log_get_level();
    sq_log_set_level(SQ_LOG_ERROR); /* the skipped-line warning is expected here */
    CHECK_EQ_INT(count_lines(path, 1, &bad, &e), 3);
    sq_log_set_level(old);
    CHECK_EQ_INT(bad, 1);
    free(path);
}

SQ_TEST(reader_rejects_invalid_utf8_with_location) {
    const char text[] = "{\"id\":\"ok\"}\n{\"id\":\"x\",\"q\":\"bad \xe9 byte\"}\n";
    char *path = tmp_file("utf8.jsonl", text, sizeof text - 1);
    sq_err e;
    CHECK_EQ_INT(count_lines(path, 0, NULL, &e), SQ_EPARSE);
    CHECKF(strstr(e.msg, ":2: invalid UTF-8 at byte offset 19") != NULL, "%s", e.msg);
    free(path);
}

SQ_TEST(reader_empty_inputs) {
    sq_err e;
    char *empty = tmp_file("empty.jsonl", "", 0);
    CHECK_EQ_INT(count_lines(empty, 0, NULL, &e), 0);
    char *blank = tmp_file("blank.jsonl", "\n\r\n  \n", 6);
    CHECK_EQ_INT(count_lines(blank, 0, NULL, &e), 0);
    sq_jsonl_reader *r;
    REQUIRE(sq_jsonl_open_mem(&r, "mem", NULL, 0, 0, &e) == 0);
    const char *line;
    size_t len;
    CHECK_EQ_INT(sq_jsonl_next_line(r, &line, &len, &e), 0);
    sq_jsonl_close(r);
    CHECK_EQ_INT(count_lines("/nonexistent/dir/x.jsonl", 0, NULL, &e), SQ_ENOTFOUND);
    CHECK(strstr(e.msg, "/nonexistent/dir/x.jsonl: cannot open") != NULL);
    free(empty);
    free(blank);
}

SQ_TEST(reader_handles_a_10mb_line) {
    size_t big = 10u << 20;
    sq_buf b = {0};
    sq_buf_puts(&b, "{\"id\":\"small\"}\n{\"id\":\"big\",\"text\":\"");
    REQUIRE(sq_buf_reserve(&b, big + 64) == 0);
    for (size_t i = 0; i < big; i++) b.data[b.len + i] = (char)('a' + i % 26);
    b.len += big;
    sq_buf_puts(&b, "\"}\r\n{\"id\":\"after\"}\n");
    char *path = tmp_file("big.jsonl", b.data, b.len);
    sq_jsonl_reader *r;
    sq_err e;
    REQUIRE(sq_jsonl_open(&r, path, 0, &e) == 0);
    cJSON *rec;
    REQUIRE(sq_jsonl_next(r, &rec, &e) == 1);
    cJSON_Delete(rec);
    REQUIRE(sq_jsonl_next(r, &rec, &e) == 1);
    const char *t = sq_rec_str(rec, "text");
    CHECK(t && strlen(t) == big && t[big - 1] == (char)('a' + (big - 1) % 26));
    cJSON_Delete(rec);
    REQUIRE(sq_jsonl_next(r, &rec, &e) == 1);
    CHECK_EQ_STR(sq_rec_id(rec), "after");
    CHECK_EQ_INT(sq_jsonl_line_number(r), 3);
    cJSON_Delete(rec);
    CHECK_EQ_INT(sq_jsonl_next(r, &rec, &e), 0);
    sq_jsonl_close(r);
    sq_buf_free(&b);
    free(path);
}

SQ_TEST(create_writer_is_atomic) {
    char *path = tmp_file("out.jsonl", "{\"id\":\"old\"}\n", 13);
    sq_jsonl_writer *w;
    sq_err e;
    REQUIRE(sq_jsonl_writer_open(&w, path, SQ_JSONL_CREATE, &e) == 0);
    cJSON *rec = cJSON_CreateObject();
    sq_rec_set_str(rec, "id", "new");
    sq_rec_set_num(rec, "score", 0.5);
    REQUIRE(sq_jsonl_write(w, rec, &e) == 0);
    CHECK(sq_jsonl_write_line(w, "{\"id\":\"x\"}\n", 11, &e) == SQ_EINVAL);
    CHECK(sq_jsonl_write_line(w, "{\"id\":", 6, &e) == SQ_EINVAL);
    char *data;
    REQUIRE(sq_file_read_all(path, &data, NULL, &e) == 0);
    CHECK_EQ_STR(data, "{\"id\":\"old\"}\n"); /* nothing visible before close */
    free(data);
    REQUIRE(sq_jsonl_writer_close(w, &e) == 0);
    REQUIRE(sq_file_read_all(path, &data, NULL, &e) == 0);
    CHECK_EQ_STR(data, "{\"id\":\"new\",\"score\":0.5}\n");
    free(data);
    /* An aborted writer leaves the old file and no temp file. */
    REQUIRE(sq_jsonl_writer_open(&w, path, SQ_JSONL_CREATE, &e) == 0);
    REQUIRE(sq_jsonl_write(w, rec, &e) == 0);
    sq_jsonl_writer_abort(w);
    char *out;
    CHECK_EQ_INT(sq_test_sh(&out, "ls \"$(dirname '%s')\" | wc -l", path), 0);
    CHECK_EQ_STR(out, "1\n");
    free(out);
    cJSON_Delete(rec);
    free(path);
}

static int write_ids(const char *path, int from, int to, sq_err *e) {
    sq_jsonl_writer *w;
    int rc = sq_jsonl_writer_open(&w, path, SQ_JSONL_APPEND, e);
    if (rc) return rc;
    for (int i = from; i < to && !rc; i++) {
        char id[32], line[96];
        snprintf(id, sizeof id, "q%d", i);
        if (sq_jsonl_writer_has_id(w, id)) continue;
        int n = snprintf(line, sizeof line, "{\"id\":\"%s\",\"v\":%d}", id, i);
        rc = sq_jsonl_write_line(w, line, (size_t)n, e);
    }
    if (rc) {
        sq_jsonl_writer_abort(w);
        return rc;
    }
    return sq_jsonl_writer_close(w, e);
}

SQ_TEST(append_writer_cuts_torn_line_and_skips_written_ids) {
    char *path = tmp_file("append.jsonl", NULL, 0);
    sq_err e;
    REQUIRE(write_ids(path, 0, 5, &e) == 0);
    /* Simulate the torn tail a kill leaves behind. */
    int fd = open(path, O_WRONLY | O_APPEND);
    REQUIRE(fd >= 0);
    CHECK(write(fd, "{\"id\":\"q5\",\"v\":", 15) == 15);
    close(fd);
    sq_log_level old = sq_log_get_level();
    sq_log_set_level(SQ_LOG_ERROR);
    sq_jsonl_writer *w;
    REQUIRE(sq_jsonl_writer_open(&w, path, SQ_JSONL_APPEND, &e) == 0);
    sq_log_set_level(old);
    CHECK_EQ_INT(sq_jsonl_writer_count(w), 5);
    CHECK(sq_jsonl_writer_has_id(w, "q4"));
    CHECK(!sq_jsonl_writer_has_id(w, "q5"));
    CHECK(sq_jsonl_write_line(w, "{\"id\":\"q4\"}", 11, &e) == SQ_ESTATE);
    CHECK(strstr(e.msg, "\"q4\" is already in the file") != NULL);
    cJSON *rec = cJSON_CreateObject();
    CHECK(sq_jsonl_write(w, rec, &e) == SQ_EINVAL); /* no id */
    cJSON_Delete(rec);
    /* A second appender on the same file is refused while the first holds it. */
    sq_jsonl_writer *w2;
    CHECK(sq_jsonl_writer_open(&w2, path, SQ_JSONL_APPEND, &e) == SQ_ESTATE);
    sq_jsonl_writer_abort(w);
    REQUIRE(write_ids(path, 0, 8, &e) == 0);
    char *data;
    REQUIRE(sq_file_read_all(path, &data, NULL, &e) == 0);
    sq_buf want = {0};
    for (int i = 0; i < 8; i++) sq_buf_printf(&want, "{\"id\":\"q%d\",\"v\":%d}\n", i, i);
    CHECK_EQ_STR(data, want.data);
    free(data);
    sq_buf_free(&want);
    free(path);
}

/* ---- a real kill -9 in the middle of writing ------------------------------------------- */

enum { KILL_RECORDS = 120, KILL_ROUNDS = 6 };

/* Every eighth record is 4 MB: a write(2) that long is often caught part-way by the kill. */
static size_t payload_len(int i) { return i % 8 == 3 ? (size_t)(4u << 20) + (size_t)i : 200 + (size_t)i; }

/* The child: resume the file and write every missing record; exits 0 when all are there. */
static void kill_child(const char *path) {
    sq_err e;
    sq_jsonl_writer *w;
    if (sq_jsonl_writer_open(&w, path, SQ_JSONL_APPEND, &e)) {
        fprintf(stderr, "child: %s\n", e.msg);
        _exit(3);
    }
    sq_buf line = {0};
    for (int i = 0; i < KILL_RECORDS; i++) {
        char id[32];
        snprintf(id, sizeof id, "rec-%d", i);
        if (sq_jsonl_writer_has_id(w, id)) continue;
        sq_buf_reset(&line);
        sq_buf_printf(&line, "{\"id\":\"%s\",\"n\":%d,\"text\":\"", id, i);
        size_t n = payload_len(i);
        if (sq_buf_reserve(&line, n + 2)) _exit(4);
        memset(line.data + line.len, 'a' + i % 26, n);
        line.len += n;
        sq_buf_puts(&line, "\"}");
        if (sq_jsonl_write_line(w, line.data, line.len, &e)) {
            fprintf(stderr, "child: %s\n", e.msg);
            _exit(5);
        }
    }
    if (sq_jsonl_writer_close(w, &e)) _exit(6);
    _exit(0);
}

static off_t file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : 0;
}

static int ends_with_newline(const char *path) {
    int fd = open(path, O_RDONLY);
    char c = 0;
    off_t n = file_size(path);
    int ok = fd >= 0 && (n == 0 || (pread(fd, &c, 1, n - 1) == 1 && c == '\n'));
    if (fd >= 0) close(fd);
    return ok;
}

/* A batched appender holds whole lines until about 32 KiB, sync, close or abort; ids and the
 * count include what it holds, and a repeated id is refused as before. */
static int write_str(sq_jsonl_writer *w, const char *line, sq_err *e) { return sq_jsonl_write_line(w, line, strlen(line), e); }

SQ_TEST(batched_append_writer_collects_whole_lines) {
    char *path = tmp_file("batched.jsonl", NULL, 0);
    sq_err e;
    REQUIRE(write_ids(path, 0, 2, &e) == 0);
    sq_jsonl_writer *w;
    REQUIRE(sq_jsonl_writer_open(&w, path, SQ_JSONL_APPEND, &e) == 0);
    sq_jsonl_writer_batch(w);
    off_t before = file_size(path);
    CHECK(write_str(w, "{\"id\":\"q2\",\"v\":2}", &e) == 0);
    CHECK_EQ_INT(file_size(path), before); /* held */
    CHECK(sq_jsonl_writer_has_id(w, "q2"));
    CHECK_EQ_INT(sq_jsonl_writer_count(w), 3);
    CHECK(write_str(w, "{\"id\":\"q2\",\"v\":9}", &e) == SQ_ESTATE);
    CHECK(write_str(w, "{\"id\":\"q1\",\"v\":9}", &e) == SQ_ESTATE);
    CHECK(write_str(w, "{\"id\":\"q3\",\"v\":3}", &e) == 0);
    REQUIRE(sq_jsonl_writer_sync(w, &e) == 0);
    char *data;
    REQUIRE(sq_file_read_all(path, &data, NULL, &e) == 0);
    CHECK_EQ_STR(data, "{\"id\":\"q0\",\"v\":0}\n{\"id\":\"q1\",\"v\":1}\n{\"id\":\"q2\",\"v\":2}\n{\"id\":\"q3\",\"v\":3}\n");
    free(data);
    /* many lines: the file grows in whole lines before the end */
    sq_buf line = {0};
    int grew = 0;
    for (int i = 4; i < 3000; i++) {
        sq_buf_reset(&line);
        sq_buf_printf(&line, "{\"id\":\"q%d\",\"v\":%d}", i, i);
        REQUIRE(sq_jsonl_write_line(w, line.data, line.len, &e) == 0);
        if (!grew && file_size(path) > before + 80) {
            grew = 1;
            CHECK(ends_with_newline(path));
        }
    }
    CHECK(grew);
    /* abort keeps what was collected: they are whole, committed records */
    sq_jsonl_writer_abort(w);
    REQUIRE(sq_jsonl_writer_open(&w, path, SQ_JSONL_APPEND, &e) == 0);
    CHECK_EQ_INT(sq_jsonl_writer_count(w), 3000);
    CHECK(sq_jsonl_writer_has_id(w, "q2999"));
    sq_jsonl_writer_abort(w);
    sq_buf_free(&line);
    free(path);
}

SQ_TEST(append_survives_kill_9_mid_write) {
    char *path = tmp_file("killed.jsonl", NULL, 0);
    sq_rng rng;
    sq_rng_seed(&rng, 7);
    int killed = 0, torn = 0;
    sq_log_level old = sq_log_get_level();
    sq_log_set_level(SQ_LOG_ERROR); /* the child's "cut a torn line" warnings are expected */
    for (int round = 0; round <= KILL_ROUNDS; round++) {
        off_t start = file_size(path);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) kill_child(path);
        int status;
        if (round < KILL_ROUNDS) {
            /* Let it write a random 1-12 MB more, then kill it wherever it is: no sleep in
             * the loop, so the kill often lands inside a large write. */
            off_t target = start + (off_t)(1 + sq_rng_below(&rng, 12)) * (1 << 20);
            double t0 = sq_now();
            while (file_size(path) < target && sq_now() - t0 < 20 && waitpid(pid, &status, WNOHANG) == 0)
                ;
            if (kill(pid, SIGKILL) == 0) killed++;
            waitpid(pid, &status, 0);
            if (!ends_with_newline(path)) torn++;
        } else {
            waitpid(pid, &status, 0);
            CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "final writer exited with status %d", status);
        }
    }
    sq_log_set_level(old);
    printf("  note: %d kills, %d left a torn last line\n", killed, torn);
    CHECK(killed >= 1);

    /* Exactly the records 0..KILL_RECORDS-1, each once, each whole. */
    sq_jsonl_reader *r;
    sq_err e;
    REQUIRE(sq_jsonl_open(&r, path, 0, &e) == 0);
    char seen[KILL_RECORDS] = {0};
    cJSON *rec;
    int rc, n = 0;
    while ((rc = sq_jsonl_next(r, &rec, &e)) == 1) {
        double v = -1;
        sq_rec_num(rec, "n", &v);
        int i = (int)v;
        const char *t = sq_rec_str(rec, "text");
        char id[32];
        snprintf(id, sizeof id, "rec-%d", i);
        CHECKF(i >= 0 && i < KILL_RECORDS && !seen[i], "record %d duplicated or out of range", i);
        if (i >= 0 && i < KILL_RECORDS) seen[i] = 1;
        CHECK_EQ_STR(sq_rec_id(rec), id);
        CHECKF(t && strlen(t) == payload_len(i) && t[0] == 'a' + i % 26, "record %d payload damaged", i);
        cJSON_Delete(rec);
        n++;
    }
    CHECKF(rc == 0, "%s", e.msg);
    CHECK_EQ_INT(n, KILL_RECORDS);
    sq_jsonl_close(r);
    free(path);
}

/* ---- record helpers and keys ----------------------------------------------------------- */

SQ_TEST(record_helpers_get_and_set) {
    cJSON *rec;
    sq_err e;
    const char *line = "{\"id\":\"r1\",\"q\":\"what?\",\"n\":3,\"ok\":true,\"tags\":[\"a\",\"b\"]}";
    REQUIRE(sq_jsonl_parse(line, strlen(line), &rec, &e) == 0);
    CHECK_EQ_STR(sq_rec_id(rec), "r1");
    CHECK_EQ_STR(sq_rec_str(rec, "q"), "what?");
    CHECK(sq_rec_str(rec, "n") == NULL);
    double n;
    int b;
    CHECK(sq_rec_num(rec, "n", &n) == 0 && n == 3);
    CHECK(sq_rec_num(rec, "q", &n) == SQ_ENOTFOUND);
    CHECK(sq_rec_bool(rec, "ok", &b) == 0 && b == 1);
    CHECK(sq_rec_bool(rec, "none", &b) == SQ_ENOTFOUND);
    const cJSON *tags = sq_rec_array(rec, "tags");
    CHECK(tags && cJSON_GetArraySize(tags) == 2);
    CHECK(sq_rec_array(rec, "q") == NULL);
    CHECK(sq_rec_set_str(rec, "q", "replaced") == 0);
    CHECK(sq_rec_set_num(rec, "n", 4) == 0);
    CHECK(sq_rec_set_bool(rec, "ok", 0) == 0);
    CHECK(sq_rec_set(rec, "tags", cJSON_CreateArray()) == 0);
    CHECK(sq_rec_set_str(rec, "new", "x") == 0);
    char *out = sq_rec_to_line(rec);
    CHECK_EQ_STR(out, "{\"id\":\"r1\",\"q\":\"replaced\",\"n\":4,\"ok\":false,\"tags\":[],\"new\":\"x\"}");
    free(out);
    cJSON_Delete(rec);
    CHECK(sq_jsonl_parse("{\"a\":}", 6, &rec, &e) == SQ_EPARSE && rec == NULL);
}

SQ_TEST(line_str_finds_top_level_strings) {
    const char *line = "{\"meta\":{\"id\":\"inner\"},\"list\":[\"id\",{\"x\":\"}\"}],\"n\":1.5e3,"
                       "\"\\u0069d\":\"esc\\u00e9\\ud83d\\ude00\\n\",\"q\":null,\"plain\":\"p\"}";
    sq_buf b = {0};
    CHECK_EQ_INT(sq_jsonl_line_str(line, strlen(line), "id", &b), 1);
    CHECK_EQ_STR(b.data, "esc\xc3\xa9\xf0\x9f\x98\x80\n");
    CHECK_EQ_INT(sq_jsonl_line_str(line, strlen(line), "plain", &b), 1);
    CHECK_EQ_STR(b.data, "p");
    CHECK_EQ_INT(sq_jsonl_line_str(line, strlen(line), "q", &b), 0);
    CHECK_EQ_INT(sq_jsonl_line_str(line, strlen(line), "meta", &b), 0);
    CHECK_EQ_INT(sq_jsonl_line_str(line, strlen(line), "absent", &b), 0);
    CHECK_EQ_INT(sq_jsonl_line_str("[1]", 3, "id", &b), SQ_EPARSE);
    CHECK_EQ_INT(sq_jsonl_line_str("{\"a\":[1,", 8, "id", &b), SQ_EPARSE);
    CHECK_EQ_INT(sq_jsonl_line_str("{}", 2, "id", &b), 0);
    sq_buf_free(&b);
}

SQ_TEST(keys_hash_and_set) {
    /* FNV-1a 64 reference values. */
    CHECK(sq_jsonl_shard_hash("", 0) == 0xcbf29ce484222325ull);
    CHECK(sq_jsonl_shard_hash("a", 1) == 0xaf63dc4c8601ec8cull);
    CHECK(sq_jsonl_shard_hash("foobar", 6) == 0x85944171f73967e8ull);
    sq_keyset *s = sq_keyset_new();
    REQUIRE(s);
    char k[32];
    for (int i = 0; i < 100000; i++) {
        int n = snprintf(k, sizeof k, "key-%d", i);
        CHECK_EQ_INT(sq_keyset_add(s, k, (size_t)n), 1);
    }
    for (int i = 0; i < 100000; i += 7) {
        int n = snprintf(k, sizeof k, "key-%d", i);
        CHECK_EQ_INT(sq_keyset_add(s, k, (size_t)n), 0);
        CHECK(sq_keyset_has(s, k, (size_t)n));
    }
    CHECK(!sq_keyset_has(s, "key-100000", 10));
    CHECK(!sq_keyset_has(s, "key-1\0", 6)); /* length is part of the key */
    CHECK_EQ_INT(sq_keyset_size(s), 100000);
    sq_keyset_free(s);
    sq_hash128 a = sq_hash128_of("abc", 3), b = sq_hash128_of("abd", 3);
    CHECK(a.lo != b.lo && a.hi != b.hi);
}

SQ_TEST(dedup_key_normalises_case_and_space) {
    sq_buf a = {0}, b = {0};
    CHECK(sq_jsonl_dedup_key("  What IS\t2+2?\n", 15, 1, &a) == 0);
    CHECK_EQ_STR(a.data, "what is 2+2?");
    CHECK(sq_jsonl_dedup_key("  What IS\t2+2?\n", 15, 0, &b) == 0);
    CHECK_EQ_INT(b.len, 15);
    /* Unicode: case folding (É -> é, ß -> ss) and a no-break space counted as whitespace. */
    const char *u1 = "\xc3\x89t\xc3\xa9\xc2\xa0Stra\xc3\x9f" "e", *u2 = "\xc3\xa9T\xc3\x89 strasse";
    CHECK(sq_jsonl_dedup_key(u1, strlen(u1), 1, &a) == 0);
    CHECK(sq_jsonl_dedup_key(u2, strlen(u2), 1, &b) == 0);
    CHECK_EQ_STR(a.data, b.data);
    CHECK_EQ_STR(a.data, "\xc3\xa9t\xc3\xa9 strasse");
    sq_buf_free(&a);
    sq_buf_free(&b);
}
