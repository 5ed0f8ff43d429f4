/* scalequest jsonl: every subcommand through the real binary, exit codes and error lines. */
#include <stdlib.h>

#include "scalequest/jsonl.h"
#include "test.h"

/* Run "scalequest jsonl ARGS" in dir; stdout in *out, stderr in *err (both malloc'd). */
static int jsonl(const char *dir, char **out, char **err, const char *args) {
    int rc = sq_test_sh(out, "cd '%s' && '%s' jsonl %s 2>stderr.txt", dir, sq_test_cli(), args);
    char *path = sq_path_join(dir, "stderr.txt");
    sq_err e;
    if (err && sq_file_read_all(path, err, NULL, &e)) *err = sq_strdup("");
    free(path);
    return rc;
}

static void put_file(const char *dir, const char *name, const char *text) {
    char *p = sq_path_join(dir, name);
    sq_err e;
    if (sq_file_write_atomic(p, text, strlen(text), &e)) sq_test_fail(__FILE__, __LINE__, "%s", e.msg);
    free(p);
}

/* n records with ids r0..r{n-1}, in groups of four: a question, the same question again,
 * the same question in other case and spacing, and a different question. */
static void make_input(const char *dir, const char *name, int n) {
    sq_buf b = {0};
    for (int i = 0; i < n; i++) {
        int g = i / 4;
        switch (i % 4) {
        case 0:
        case 1: sq_buf_printf(&b, "{\"id\":\"r%d\",\"q\":\"What is %d + 1?\",\"k\":[1,{\"id\":\"in\"}]}\n", i, g); break;
        case 2: sq_buf_printf(&b, "{\"id\":\"r%d\",\"q\":\"  WHAT is\\t%d +  1? \"}\n", i, g); break;
        default: sq_buf_printf(&b, "{\"id\":\"r%d\",\"q\":\"What is %d + 2?\"}\n", i, g); break;
        }
    }
    put_file(dir, name, b.data);
    sq_buf_free(&b);
}

static int count_newlines(const char *s) {
    int n = 0;
    for (; s && *s; s++) n += *s == '\n';
    return n;
}

SQ_TEST(cli_count_head_and_empty_input) {
    const char *d = sq_test_tmpdir();
    make_input(d, "in.jsonl", 50);
    put_file(d, "empty.jsonl", "");
    char *out, *err;
    CHECK_EQ_INT(jsonl(d, &out, &err, "count in.jsonl"), 0);
    CHECK_EQ_STR(out, "50\n");
    CHECK_EQ_STR(err, "");
    free(out), free(err);
    CHECK_EQ_INT(jsonl(d, &out, NULL, "count --in in.jsonl --in empty.jsonl --quiet"), 0);
    CHECK_EQ_STR(out, "50\n");
    free(out);
    CHECK_EQ_INT(jsonl(d, &out, NULL, "count < empty.jsonl"), 0);
    CHECK_EQ_STR(out, "0\n");
    free(out);
    CHECK_EQ_INT(jsonl(d, &out, NULL, "head --n 3 < in.jsonl"), 0);
    CHECK_EQ_INT(count_newlines(out), 3);
    CHECK(!strncmp(out, "{\"id\":\"r0\"", 10));
    free(out);
    CHECK_EQ_INT(jsonl(d, &out, NULL, "head empty.jsonl"), 0);
    CHECK_EQ_STR(out, "");
    free(out);
}

SQ_TEST(cli_shard_then_merge_gives_back_the_input) {
    const char *d = sq_test_tmpdir();
    make_input(d, "in.jsonl", 997);
    char *out, *err;
    int total = 0;
    for (int i = 0; i < 4; i++) {
        char args[128];
        snprintf(args, sizeof args, "shard --of 4 --index %d --in in.jsonl --out s%d.jsonl", i, i);
        CHECK_EQ_INT(jsonl(d, NULL, NULL, args), 0);
        snprintf(args, sizeof args, "count s%d.jsonl", i);
        CHECK_EQ_INT(jsonl(d, &out, NULL, args), 0);
        int n = atoi(out);
        CHECKF(n > 150 && n < 350, "shard %d has %d of 997 records", i, n);
        total += n;
        free(out);
    }
    CHECK_EQ_INT(total, 997);
    CHECK_EQ_INT(jsonl(d, NULL, &err, "merge s0.jsonl s1.jsonl s2.jsonl s3.jsonl --out merged.jsonl"), 0);
    CHECK_EQ_STR(err, "");
    free(err);
    CHECK_EQ_INT(sq_test_sh(&out, "cd '%s' && sort in.jsonl >a.txt && sort merged.jsonl >b.txt && cmp a.txt b.txt && echo same", d), 0);
    CHECK_EQ_STR(out, "same\n");
    free(out);
    /* The shard hash is documented as FNV-1a 64 of the id mod N: check one record by hand. */
    CHECK_EQ_INT(jsonl(d, &out, NULL, "head --n 1 s2.jsonl"), 0);
    sq_buf id = {0};
    REQUIRE(sq_jsonl_line_str(out, strlen(out) - 1, "id", &id) == 1);
    CHECK_EQ_INT(sq_jsonl_shard_hash(id.data, id.len) % 4, 2);
    sq_buf_free(&id);
    free(out);
    /* Merging overlapping inputs is refused, naming the second occurrence. */
    CHECK_EQ_INT(jsonl(d, NULL, &err, "merge s1.jsonl s1.jsonl --out bad.jsonl"), 1);
    CHECKF(!strncmp(err, "scalequest: jsonl: s1.jsonl:1: duplicate id \"", 45), "stderr: %s", err);
    free(err);
    CHECK_EQ_INT(sq_test_sh(NULL, "test -e '%s/bad.jsonl'", d), 1); /* nothing half-written */
}

SQ_TEST(cli_dedup_exact_and_normalized) {
    const char *d = sq_test_tmpdir();
    make_input(d, "in.jsonl", 30);
    char *out;
    /* 30 records = 7 groups of four + 2: exact keeps 3 per group + 1, normalised 2 + 1. */
    CHECK_EQ_INT(jsonl(d, &out, NULL, "dedup --field q in.jsonl"), 0);
    CHECK_EQ_INT(count_newlines(out), 22);
    CHECK(strstr(out, "WHAT") != NULL);
    free(out);
    CHECK_EQ_INT(jsonl(d, &out, NULL, "dedup --field q --normalize in.jsonl"), 0);
    CHECK_EQ_INT(count_newlines(out), 15);
    CHECK(!strstr(out, "WHAT"));
    free(out);
    /* A record without the field is an error, named by line. */
    put_file(d, "nofield.jsonl", "{\"id\":\"a\",\"q\":\"x\"}\n{\"id\":\"b\"}\n");
    char *err;
    CHECK_EQ_INT(jsonl(d, &out, &err, "dedup --field q nofield.jsonl --out o.jsonl"), 1);
    CHECK_EQ_STR(err, "scalequest: jsonl: nofield.jsonl:2: record has no string field \"q\"\n");
    free(out), free(err);
}

SQ_TEST(cli_sample_is_seeded_and_in_order) {
    const char *d = sq_test_tmpdir();
    make_input(d, "in.jsonl", 200);
    char *a, *b, *c;
    CHECK_EQ_INT(jsonl(d, &a, NULL, "sample --n 10 --seed 5 in.jsonl"), 0);
    CHECK_EQ_INT(jsonl(d, &b, NULL, "sample --n 10 --seed 5 < in.jsonl"), 0);
    CHECK_EQ_INT(jsonl(d, &c, NULL, "sample --n 10 --seed 6 in.jsonl"), 0);
    CHECK_EQ_INT(count_newlines(a), 10);
    CHECK_EQ_STR(a, b);
    CHECK(strcmp(a, c) != 0);
    /* In input order: the ids increase. */
    int last = -1, ordered = 1;
    for (const char *s = a; (s = strstr(s, "\"id\":\"r")); s += 7) {
        int k = atoi(s + 7);
        ordered &= k > last;
        last = k;
    }
    CHECK(ordered);
    free(a), free(b), free(c);
    CHECK_EQ_INT(jsonl(d, &a, NULL, "sample --n 500 in.jsonl"), 0);
    CHECK_EQ_INT(count_newlines(a), 200);
    free(a);
}

SQ_TEST(cli_bad_input_errors_and_skip_bad) {
    const char *d = sq_test_tmpdir();
    put_file(d, "bad.jsonl", "{\"id\":\"1\"}\n{\"id\":\"2\"\n{\"id\":\"3\"}\nnot json\n{\"id\":\"\xff\"}\n{\"id\":\"6\"}\n");
    char *out, *err;
    CHECK_EQ_INT(jsonl(d, &out, &err, "count bad.jsonl"), 1);
    CHECK_EQ_STR(err, "scalequest: jsonl: bad.jsonl:2: unexpected end of line in object at byte offset 9\n");
    free(out), free(err);
    CHECK_EQ_INT(jsonl(d, &out, &err, "count --skip-bad --log-level error bad.jsonl"), 0);
    CHECK_EQ_STR(out, "3\n");
    CHECK_EQ_STR(err, "scalequest: jsonl: skipped 3 bad lines in bad.jsonl\n");
    free(out), free(err);
    CHECK_EQ_INT(jsonl(d, &out, &err, "count --skip-bad bad.jsonl"), 0);
    CHECK(strstr(err, "bad.jsonl:5: skipped: invalid UTF-8 at byte offset 7") != NULL);
    free(out), free(err);
    CHECK_EQ_INT(jsonl(d, &out, &err, "count missing.jsonl"), 1);
    CHECK_EQ_STR(err, "scalequest: jsonl: missing.jsonl: cannot open: No such file or directory\n");
    free(out), free(err);
    /* A failed run leaves an existing --out untouched. */
    put_file(d, "keep.jsonl", "{\"id\":\"old\"}\n");
    CHECK_EQ_INT(jsonl(d, &out, &err, "head --n 5 bad.jsonl --out keep.jsonl"), 1);
    free(out), free(err);
    CHECK_EQ_INT(sq_test_sh(&out, "cat '%s/keep.jsonl'; ls '%s' | grep -c tmp", d, d), 1);
    CHECK_EQ_STR(out, "{\"id\":\"old\"}\n0\n");
    free(out);
}

SQ_TEST(cli_usage_errors_exit_2) {
    const char *d = sq_test_tmpdir();
    struct {
        const char *args, *want;
    } cases[] = {
        {"", "scalequest: jsonl: which subcommand?"},
        {"frobnicate", "scalequest: jsonl: unknown subcommand 'frobnicate'"},
        {"count --bogus", "scalequest: jsonl: unknown option '--bogus'"},
        {"sample", "scalequest: jsonl: sample needs --n N"},
        {"shard --of 4", "scalequest: jsonl: shard needs --of N and --index I"},
        {"shard --of 4 --index 4", "scalequest: jsonl: --index 4 is outside 0..3"},
        {"shard --of 0 --index 0", "scalequest: jsonl: --of must be at least 1"},
        {"dedup", "scalequest: jsonl: dedup needs --field F"},
        {"head --n x", "scalequest: jsonl: --n: 'x' is not a whole number"},
        {"head --n -1", "scalequest: jsonl: --n must be 0 or more"},
    };
    for (size_t i = 0; i < SQ_ARRAY_LEN(cases); i++) {
        char *out, *err;
        int rc = jsonl(d, &out, &err, cases[i].args);
        CHECKF(rc == 2, "'%s': exit %d", cases[i].args, rc);
        CHECKF(!strncmp(err, cases[i].want, strlen(cases[i].want)), "'%s': stderr '%s'", cases[i].args, err);
        free(out), free(err);
    }
    char *out;
    CHECK_EQ_INT(jsonl(d, &out, NULL, "--help"), 0);
    CHECK(strstr(out, "dedup --field F") != NULL);
    free(out);
}

/* Benchmark files have no ids: add-ids gives each record without one PREFIX + its record
 * number as the first key (the rest of the line as read), keeps ids already there, and
 * refuses a clash; then shard accepts the file. */
SQ_TEST(cli_add_ids_for_benchmark_files) {
    const char *dir = sq_test_tmpdir();
    put_file(dir, "bench.jsonl", "{\"question\": \"a\", \"answer\": \"#### 1\"}\n{\"id\":\"keep\",\"q\":2}\n{ }\n");
    char *out = NULL, *err = NULL;
    CHECK_EQ_INT(jsonl(dir, &out, &err, "add-ids --prefix gsm8k- bench.jsonl --out ids.jsonl"), 0);
    free(out);
    free(err);
    char *data = NULL;
    char *path = sq_path_join(dir, "ids.jsonl");
    REQUIRE(sq_file_read_all(path, &data, NULL, NULL) == 0);
    CHECK_EQ_STR(data, "{\"id\":\"gsm8k-1\",\"question\": \"a\", \"answer\": \"#### 1\"}\n{\"id\":\"keep\",\"q\":2}\n"
                       "{\"id\":\"gsm8k-3\" }\n");
    free(data);
    free(path);
    CHECK_EQ_INT(jsonl(dir, &out, &err, "shard --of 2 --index 0 ids.jsonl"), 0);
    free(out);
    free(err);
    put_file(dir, "clash.jsonl", "{\"id\":\"2\"}\n{\"q\":1}\n");
    CHECK_EQ_INT(jsonl(dir, &out, &err, "add-ids clash.jsonl --out clash_ids.jsonl"), 1);
    CHECKF(err && strstr(err, "clash.jsonl:2: id \"2\" is already taken"), "%s", err ? err : "");
    free(out);
    free(err);
    CHECK_EQ_INT(jsonl(dir, &out, &err, "add-ids --prefix 'a\"b' clash.jsonl"), 2);
    free(out);
    free(err);
}
