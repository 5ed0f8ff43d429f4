/* The stage contract: input-order commits through the reorder window, resume by id across a
 * kill -9 (byte-identical files), shards, the dropped and failed files, duplicate and missing
 * ids found before anything is written. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "scalequest/jsonl.h"
#include "scalequest/stage.h"
#include "scripted_backend.h"
#include "test.h"

/* sq_test_tmpdir makes a fresh directory per call: one per case, taken by begin(). */
static const char *g_dir;
static void begin(void) {
    g_dir = sq_test_tmpdir();
    sq_progress_set_quiet(1);
}
static char *tmp(const char *name) { return sq_path_join(g_dir, name); }

static void write_input(const char *path, int n) {
    FILE *f = fopen(path, "w");
    for (int i = 0; i < n; i++) fprintf(f, "{\"id\":\"r%04d\",\"query\":\"question %d\"}\n", i, i);
    fclose(f);
}

static char *slurp(const char *path) {
    char *d = NULL;
    size_t n;
    if (sq_file_read_all(path, &d, &n, NULL)) return NULL;
    return d;
}

/* The toy stage: settle records in reverse within each group of 7 (as a backend answering out
 * of order would), keep multiples of 3 with a field added, drop the others; stop after `limit`
 * settlements (0: none) to imitate a crash. */
static int run_toy(const char *in, const char *out, int shard_i, int shard_n, int limit, sq_err *e) {
    sq_stage_opts o;
    sq_stage_opts_default(&o);
    o.name = "toy";
    o.in = in;
    o.out = out;
    o.shard_index = shard_i;
    o.shard_count = shard_n;
    o.window = 16;
    sq_stage *st;
    int rc = sq_stage_open(&st, &o, e);
    if (rc) return rc;
    int settled = 0;
    for (int eof = 0; !eof;) {
        cJSON *recs[7];
        int64_t slots[7];
        int k = 0;
        while (k < 7) {
            int got = sq_stage_next(st, &recs[k], &slots[k], e);
            if (got < 0) {
                sq_stage_abort(st);
                return got;
            }
            if (!got) {
                eof = 1;
                break;
            }
            k++;
        }
        for (int i = k - 1; i >= 0; i--) {
            if (limit && settled == limit) {
                for (int j = 0; j <= i; j++) cJSON_Delete(recs[j]);
                sq_stage_abort(st);
                return 0;
            }
            int num = atoi(sq_rec_id(recs[i]) + 1);
            if (num % 3 == 0) {
                sq_rec_set_num(recs[i], "score", num * 0.5);
                rc = sq_stage_keep(st, slots[i], recs[i], e);
            } else {
                rc = sq_stage_drop(st, slots[i], recs[i], num % 3 == 1 ? "one" : "two", e);
            }
            settled++;
            if (rc) {
                sq_stage_abort(st);
                return rc;
            }
        }
    }
    sq_stage_counts c;
    rc = sq_stage_close(st, &c, e);
    return rc;
}

SQ_TEST(commits_in_input_order_and_resumes_byte_identical) {
    begin();
    char *in = tmp("in.jsonl"), *a = tmp("a.jsonl"), *b = tmp("b.jsonl");
    write_input(in, 100);
    sq_err e = {0};
    REQUIRE(run_toy(in, a, 0, 1, 0, &e) == 0);
    /* crash after 5, 23, 50 settlements, then finish */
    REQUIRE(run_toy(in, b, 0, 1, 5, &e) == 0);
    REQUIRE(run_toy(in, b, 0, 1, 23, &e) == 0);
    REQUIRE(run_toy(in, b, 0, 1, 50, &e) == 0);
    REQUIRE(run_toy(in, b, 0, 1, 0, &e) == 0);
    char *sa = slurp(a), *sb = slurp(b);
    REQUIRE(sa && sb);
    CHECK_EQ_STR(sa, sb);
    char *da = tmp("a.dropped.jsonl"), *db = tmp("b.dropped.jsonl");
    char *xa = slurp(da), *xb = slurp(db);
    REQUIRE(xa && xb);
    CHECK_EQ_STR(xa, xb);
    /* in order: r0000, r0003, ... */
    CHECK(strncmp(sa, "{\"id\":\"r0000\"", 13) == 0);
    CHECK(strstr(sa, "r0003") < strstr(sa, "r0006"));
    CHECK(strstr(xa, "\"drop_reason\":\"one\"") != NULL);
    int lines = 0;
    for (char *p = sa; *p; p++) lines += *p == '\n';
    CHECK_EQ_INT(lines, 34);
    lines = 0;
    for (char *p = xa; *p; p++) lines += *p == '\n';
    CHECK_EQ_INT(lines, 66);
    /* a rerun of a finished stage does nothing */
    REQUIRE(run_toy(in, b, 0, 1, 0, &e) == 0);
    char *sb2 = slurp(b);
    CHECK_EQ_STR(sa, sb2);
    free(sa), free(sb), free(sb2), free(xa), free(xb), free(da), free(db), free(in), free(a), free(b);
}

/* The raw-line path (dedup, decontaminate): keep every even record, drop the odd ones with a
 * field added; stop after `limit` settlements (0: none) as a crash would. */
static int run_raw(const char *in, const char *out, int limit, sq_err *e) {
    sq_stage_opts o;
    sq_stage_opts_default(&o);
    o.name = "raw";
    o.in = in;
    o.out = out;
    sq_stage *st;
    int rc = sq_stage_open(&st, &o, e);
    if (rc) return rc;
    sq_buf id = {0}, text = {0};
    int settled = 0;
    for (;;) {
        const char *line;
        size_t len;
        int64_t slot;
        int got = sq_stage_next_line_text(st, "query", &line, &len, &id, &text, &slot, e);
        if (got <= 0) {
            rc = got;
            break;
        }
        if (limit && settled == limit) break; /* left unsettled: the crash */
        rc = atoi(id.data + 1) % 2 == 0 ? sq_stage_keep_line(st, slot, line, len, e)
                                         : sq_stage_drop_line(st, slot, line, len, "odd", e);
        settled++;
        if (rc) break;
    }
    sq_buf_free(&id), sq_buf_free(&text);
    if (rc || limit) {
        sq_stage_abort(st);
        return rc;
    }
    return sq_stage_close(st, NULL, e);
}

static int count_nl(const char *s) {
    int n = 0;
    for (; s && *s; s++) n += *s == '\n';
    return n;
}

SQ_TEST(raw_line_path_resumes_byte_identical_and_finds_repeated_ids) {
    begin();
    char *in = tmp("raw.jsonl"), *a = tmp("ra.jsonl"), *b = tmp("rb.jsonl");
    write_input(in, 2000);
    sq_err e = {0};
    REQUIRE(run_raw(in, a, 0, &e) == 0);
    /* stopped runs leave what they committed (the batches are written on abort), and reruns
     * take over from it */
    REQUIRE(run_raw(in, b, 7, &e) == 0);
    char *sb = slurp(b);
    CHECK_EQ_INT(count_nl(sb), 4);
    free(sb);
    REQUIRE(run_raw(in, b, 600, &e) == 0);
    REQUIRE(run_raw(in, b, 0, &e) == 0);
    char *sa = slurp(a);
    sb = slurp(b);
    REQUIRE(sa && sb);
    CHECK_EQ_STR(sa, sb);
    CHECK_EQ_INT(count_nl(sa), 1000);
    char *da = tmp("ra.dropped.jsonl"), *db = tmp("rb.dropped.jsonl");
    char *xa = slurp(da), *xb = slurp(db);
    REQUIRE(xa && xb);
    CHECK_EQ_STR(xa, xb);
    CHECK(strstr(xa, "{\"id\":\"r0001\",\"query\":\"question 1\",\"drop_reason\":\"odd\"}\n") == xa);
    free(sa), free(sb), free(xa), free(xb), free(da), free(db);
    /* a repeated id still fails before anything is written, on a first run and on a resumed one */
    FILE *f = fopen(in, "a");
    fputs("{\"id\":\"r0005\",\"query\":\"again\"}\n", f);
    fclose(f);
    char *c = tmp("rc.jsonl");
    CHECK(run_raw(in, c, 0, &e) == SQ_EPARSE);
    CHECK(strstr(e.msg, "raw.jsonl:2001") != NULL);
    CHECK(!sq_file_exists(c));
    CHECK(run_raw(in, b, 0, &e) == SQ_EPARSE);
    free(c), free(in), free(a), free(b);
}

SQ_TEST(kill_9_mid_run_loses_and_duplicates_nothing) {
    begin();
    char *in = tmp("k.jsonl"), *ref = tmp("kref.jsonl"), *out = tmp("kout.jsonl");
    write_input(in, 3000);
    sq_err e = {0};
    REQUIRE(run_toy(in, ref, 0, 1, 0, &e) == 0);
    for (int round = 0; round < 6; round++) {
        pid_t p = fork();
        if (p == 0) {
            for (;;) run_toy(in, out, 0, 1, 0, &e);
        }
        usleep(2000 + round * 3000);
        kill(p, SIGKILL);
        waitpid(p, NULL, 0);
    }
    REQUIRE(run_toy(in, out, 0, 1, 0, &e) == 0);
    char *a = slurp(ref), *b = slurp(out);
    REQUIRE(a && b);
    CHECK_EQ_STR(a, b);
    free(a), free(b), free(in), free(ref), free(out);
}

SQ_TEST(shards_partition_the_ids) {
    begin();
    char *in = tmp("s.jsonl");
    write_input(in, 200);
    sq_err e = {0};
    int total = 0;
    for (int s = 0; s < 3; s++) {
        char name[32];
        snprintf(name, sizeof name, "s%d.jsonl", s);
        char *out = tmp(name);
        REQUIRE(run_toy(in, out, s, 3, 0, &e) == 0);
        sq_jsonl_reader *r;
        REQUIRE(sq_jsonl_open(&r, out, 0, &e) == 0);
        cJSON *rec;
        while (sq_jsonl_next(r, &rec, &e) == 1) {
            const char *id = sq_rec_id(rec);
            CHECK_EQ_INT(sq_jsonl_shard_hash(id, strlen(id)) % 3, s);
            total++;
            cJSON_Delete(rec);
        }
        sq_jsonl_close(r);
        free(out);
    }
    CHECK_EQ_INT(total, 67); /* the multiples of 3 in 0..199 */
    int i, n;
    CHECK(sq_stage_parse_shard("2/3", &i, &n, &e) == 0 && i == 2 && n == 3);
    CHECK(sq_stage_parse_shard("3/3", &i, &n, &e) != 0);
    CHECK(sq_stage_parse_shard("x", &i, &n, &e) != 0);
    free(in);
}

SQ_TEST(duplicate_and_missing_ids_fail_before_writing) {
    begin();
    char *in = tmp("d.jsonl"), *out = tmp("dout.jsonl");
    FILE *f = fopen(in, "w");
    fputs("{\"id\":\"a\",\"query\":\"x\"}\n{\"id\":\"b\",\"query\":\"y\"}\n{\"id\":\"a\",\"query\":\"z\"}\n", f);
    fclose(f);
    sq_err e = {0};
    CHECK(run_toy(in, out, 0, 1, 0, &e) == SQ_EPARSE);
    CHECK(strstr(e.msg, "d.jsonl:3") != NULL);
    CHECK(strstr(e.msg, "\"a\"") != NULL);
    char *s = slurp(out);
    CHECK(!s || !*s);
    free(s);
    f = fopen(in, "w");
    fputs("{\"id\":\"a\"}\n{\"query\":\"no id\"}\n", f);
    fclose(f);
    CHECK(run_toy(in, out, 0, 1, 0, &e) == SQ_EPARSE);
    CHECK(strstr(e.msg, "d.jsonl:2") != NULL && strstr(e.msg, "id") != NULL);
    free(in), free(out);
}

static int seen_count;
static int count_replay(void *user, const cJSON *rec, sq_err *e) {
    (void)user, (void)e;
    seen_count += sq_rec_id(rec) != NULL;
    return 0;
}

SQ_TEST(offered_records_failed_requests_and_replay) {
    begin();
    char *out = tmp("g.jsonl"), *failed = tmp("g.failed.jsonl");
    sq_err e = {0};
    for (int run = 0; run < 2; run++) {
        sq_stage_opts o;
        sq_stage_opts_default(&o);
        o.name = "gen";
        o.out = out;
        o.failed = failed;
        o.total = 10;
        sq_stage *st;
        REQUIRE(sq_stage_open(&st, &o, &e) == 0);
        seen_count = 0;
        REQUIRE(sq_stage_replay(st, count_replay, NULL, &e) == 0);
        CHECK_EQ_INT(seen_count, run == 0 ? 0 : 8);
        int64_t slots[10];
        int took = 0;
        for (int i = 0; i < 10; i++) {
            cJSON *r = cJSON_CreateObject();
            char id[16];
            snprintf(id, sizeof id, "q%06d", i);
            sq_rec_set_str(r, "id", id);
            int got = sq_stage_offer(st, r, &slots[i], &e); /* reads r; the caller keeps it */
            if (got <= 0) cJSON_Delete(r);
            REQUIRE(got >= 0);
            if (!got) continue;
            took++;
            cJSON *x = r; /* the offered record itself is settled */
            /* the first run fails q000002 and q000007; the second run answers them */
            if (run == 0 && (i == 2 || i == 7)) {
                cJSON_Delete(x);
                REQUIRE(sq_stage_fail(st, slots[i], id, "HTTP 500", &e) == 0);
            } else {
                REQUIRE(sq_stage_keep(st, slots[i], x, &e) == 0);
            }
        }
        CHECK_EQ_INT(took, run == 0 ? 10 : 2);
        sq_stage_counts c;
        int rc = sq_stage_close(st, &c, &e);
        if (run == 0) {
            CHECK(rc == SQ_EIO);
            CHECK(strstr(e.msg, "2 requests failed") != NULL);
            CHECK_EQ_INT(c.failed, 2);
        } else {
            CHECK(rc == 0);
            CHECK_EQ_INT(c.skipped, 8);
            CHECK_EQ_INT(c.out_total, 10);
        }
    }
    char *s = slurp(failed);
    REQUIRE(s);
    CHECK(strstr(s, "q000002") && strstr(s, "q000007") && strstr(s, "HTTP 500"));
    free(s), free(out), free(failed);
}

SQ_TEST(seeds_depend_on_seed_and_id_only) {
    CHECK(sq_stage_seed(1, "q000001") == sq_stage_seed(1, "q000001"));
    CHECK(sq_stage_seed(1, "q000001") != sq_stage_seed(1, "q000002"));
    CHECK(sq_stage_seed(1, "q000001") != sq_stage_seed(2, "q000001"));
}

/* ---- ownership in sq_stage_run_generate (stage.h): build lends the record or settles it ---- */

static int echo_reply(void *user, const char *input, uint64_t seed, int k, char *text, size_t cap, const char **finish) {
    (void)user, (void)seed, (void)k;
    snprintf(text, cap, "%s", input);
    *finish = "stop";
    return 0;
}

typedef struct own_job {
    int mode; /* what build does with record r0003: 0 drop it, 1 drop it under a bad slot, 2 fail */
} own_job;

static int own_build(void *user, sq_stage *st, int64_t slot, cJSON *rec, sq_gen_request *q, sq_arena *a, sq_err *e) {
    own_job *j = user;
    (void)a;
    if (!strcmp(sq_rec_id(rec), "r0003")) {
        if (j->mode == 2) return sq_fail(e, SQ_EINVAL, "build refused r0003"); /* rec stays the driver's */
        /* drop takes rec even when it fails (a slot that is not in flight): the driver must not
         * free it again (ASan would say so) */
        int rc = sq_stage_drop(st, j->mode == 1 ? slot + 100000 : slot, rec, "three", e);
        return rc ? rc : 1;
    }
    q->id = sq_rec_id(rec);
    q->prompt = sq_rec_str(rec, "query");
    q->params.n = 1, q->params.max_tokens = 8;
    return 0;
}

static int own_finish(void *user, sq_stage *st, int64_t slot, cJSON *rec, const sq_gen_result *r, sq_err *e) {
    (void)user, (void)r;
    return sq_stage_keep(st, slot, rec, e);
}

SQ_TEST(generate_driver_frees_a_record_exactly_once_whatever_build_did) {
    begin();
    char *in = tmp("g.jsonl");
    write_input(in, 10);
    scripted sb;
    scripted_init(&sb, echo_reply, NULL);
    (void)scripted_serve; /* the header's HTTP helper: not needed here */
    for (int mode = 0; mode < 3; mode++) {
        char name[32];
        snprintf(name, sizeof name, "g%d.jsonl", mode);
        char *out = tmp(name);
        sq_stage_opts o;
        sq_stage_opts_default(&o);
        o.in = in, o.out = out;
        own_job j = {mode};
        sq_stage_gen g = {own_build, own_finish, &j, 4};
        sq_stage_counts c = {0};
        sq_err e = {0};
        int rc = sq_stage_run_all(&o, &sb.base, &g, &c, &e);
        if (mode == 0) {
            CHECKF(rc == 0, "%s", e.msg);
            CHECK_EQ_INT(c.kept, 9);
            CHECK_EQ_INT(c.dropped, 1);
        } else {
            CHECK(rc < 0);
            CHECKF(strstr(e.msg, mode == 1 ? "not in flight" : "build refused r0003"), "%s", e.msg);
        }
        free(out);
    }
    free(in);
}

/* One helper adds dedup's duplicate_of and decontaminate's contaminated_by to a raw line. */
SQ_TEST(line_add_field_appends_or_replaces) {
    sq_buf b = {0};
    sq_err e = {0};
    const char *l1 = "{\"id\":\"a\",\"query\":\"x\"}";
    REQUIRE(sq_stage_line_add_field(l1, strlen(l1), "duplicate_of", "\"q\\u0001\"", &b, &e) == 0);
    CHECK_EQ_STR(b.data, "{\"id\":\"a\",\"query\":\"x\",\"duplicate_of\":\"q\\u0001\"}");
    /* already there, and an old drop_reason: a parsed copy, the field replaced where it was, the
     * reason gone */
    const char *l2 = "{\"id\":\"a\",\"contaminated_by\":1,\"drop_reason\":\"old\",\"n\":2}";
    REQUIRE(sq_stage_line_add_field(l2, strlen(l2), "contaminated_by", "{\"test\":\"exact\"}", &b, &e) == 0);
    CHECK_EQ_STR(b.data, "{\"id\":\"a\",\"contaminated_by\":{\"test\":\"exact\"},\"n\":2}");
    REQUIRE(sq_stage_line_add_field("{ }", 3, "k", "1", &b, &e) == 0);
    CHECK_EQ_STR(b.data, "{ \"k\":1}");
    CHECK(sq_stage_line_add_field("[1]", 3, "k", "1", &b, &e) == SQ_EPARSE);
    sq_buf_free(&b);
}
