/* export: {id, query, response} lines (kept lists expanded best first), the provenance side
 * file, bad input named by line with no output left behind, and a killed run leaves either
 * nothing or the whole file. */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "scalequest/export.h"
#include "test.h"

static char TD[600];
static char *tmp(const char *name) { return sq_path_join(TD, name); }

static char *slurp(const char *path) {
    char *data = NULL;
    size_t len;
    sq_err e;
    return sq_file_read_all(path, &data, &len, &e) ? NULL : data;
}

SQ_TEST(export_lines_and_provenance) {
    snprintf(TD, sizeof TD, "%s", sq_test_tmpdir());
    char *in = tmp("r.jsonl"), *out = tmp("sft.jsonl"), *pv = tmp("sft.provenance.jsonl");
    FILE *f = fopen(in, "w");
    fputs("{\"id\":\"a\",\"query\":\"Q1\",\"response\":\"R1\",\"reward\":2,\"responses\":[\"R1\",\"R2\"],"
          "\"kept\":["
          "{\"index\":0,\"response\":\"R1\",\"reward\":2},{\"index\":1,\"response\":\"R2\",\"reward\":1}]}\n"
          "{\"id\":\"b\",\"query\":\"Q2\",\"response\":\"S\",\"difficulty\":0.5}\n",
          f);
    fclose(f);
    sq_export_opts o;
    sq_export_opts_default(&o);
    o.in = in, o.out = out;
    sq_export_stats st;
    sq_err e = {0};
    REQUIRE(sq_export_run(&o, &st, &e) == 0);
    CHECK_EQ_INT((int)st.lines, 3);
    char *t = slurp(out), *p = slurp(pv);
    CHECK_EQ_STR(
        t,
        "{\"id\":\"a\",\"query\":\"Q1\",\"response\":\"R1\"}\n{\"id\":\"a#1\",\"query\":\"Q1\",\"response\":"
        "\"R2\"}\n{\"id\":\"b\",\"query\":\"Q2\",\"response\":\"S\"}\n");
    CHECKF(p &&
               strstr(p, "{\"id\":\"a#1\",\"source_id\":\"a\",\"rank\":1,\"reward\":2,\"kept_index\":1,"
                         "\"kept_reward\":1}") &&
               strstr(p, "\"difficulty\":0.5") && !strstr(p, "\"query\""),
           "%s", p ? p : "");
    free(t), free(p);
    /* bad input: line named, the earlier output untouched */
    f = fopen(in, "w");
    fputs("{\"id\":\"a\",\"query\":\"Q1\",\"response\":\"R1\"}\n{\"id\":\"b\",\"query\":\"Q2\"}\n", f);
    fclose(f);
    CHECK(sq_export_run(&o, &st, &e) != 0);
    CHECKF(strstr(e.msg, "r.jsonl:2") && strstr(e.msg, "response"), "%s", e.msg);
    t = slurp(out);
    CHECK(t && strstr(t, "a#1")); /* the old file stays whole */
    free(t);
    f = fopen(in, "w");
    fputs("{\"id\":\"a\",\"query\":\"Q1\",\"response\":\"R1\"}\n{\"id\":\"b\",\"que", f);
    fclose(f);
    CHECK(sq_export_run(&o, &st, &e) != 0);
    CHECKF(strstr(e.msg, "r.jsonl:2"), "%s", e.msg);
    free(in), free(out), free(pv);
}

/* kill -9 at random moments of a large export: the output is absent or complete, never torn. */
SQ_TEST(export_killed_leaves_nothing_or_everything) {
    snprintf(TD, sizeof TD, "%s", sq_test_tmpdir());
    char *in = tmp("big.jsonl"), *out = tmp("big.out.jsonl");
    FILE *f = fopen(in, "w");
    enum { N = 60000 };
    for (int i = 0; i < N; i++)
        fprintf(f, "{\"id\":\"q%05d\",\"query\":\"What is %d + %d?\",\"response\":\"The answer is %d.\"}\n",
                i, i, i, 2 * i);
    fclose(f);
    sq_rng r;
    sq_rng_seed(&r, (uint64_t)getpid());
    for (int round = 0; round < 3; round++) {
        unlink(out);
        char *pid_s = NULL;
        sq_test_sh(&pid_s, "'%s' export --in '%s' --out '%s' --quiet >/dev/null 2>&1 & echo $!",
                   sq_test_cli(), in, out);
        REQUIRE(pid_s);
        pid_t pid = (pid_t)atol(pid_s);
        free(pid_s);
        usleep((useconds_t)(sq_rng_below(&r, 300000)));
        kill(pid, SIGKILL);
        sq_test_sh(NULL, "while kill -0 %d 2>/dev/null; do sleep 0.02; done", (int)pid);
        char *c = NULL;
        sq_test_sh(&c, "cat '%s' 2>/dev/null | wc -l", out);
        long n = c ? atol(c) : 0;
        free(c);
        CHECKF(n == 0 || n == N, "round %d: %ld lines", round, n);
    }
    REQUIRE(sq_test_sh(NULL, "'%s' export --in '%s' --out '%s' --quiet", sq_test_cli(), in, out) == 0);
    char *c = NULL;
    sq_test_sh(&c, "wc -l < '%s'", out);
    CHECK(c && atol(c) == N);
    free(c), free(in), free(out);
}
