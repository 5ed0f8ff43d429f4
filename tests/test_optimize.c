/* optimize: the direction coin, the rewrite parsed out of Figure 9/10 replies (markdown and
 * all), drops counted (no marker, empty reply, empty rewrite, unchanged, no query), pairs in
 * the form train --mode dpo reads (and a prompt from another template refused), resume after
 * kill -9 over HTTP, 500s as failed records, a torn input line as a clear error, and the
 * tiny world's oracle through the same code. */
#include <signal.h>
#include <stdlib.h>

#include "scalequest/jsonl.h"
#include "scalequest/judge.h"
#include "scalequest/optimize.h"
#include "scalequest/world.h"
#include "scripted_backend.h"
#include "test.h"

static const char *PREFIX = "<|im_start|>user\n";

/* Replies by the question's number i: "Q<i> ...". */
static int reply(void *user, const char *input, uint64_t seed, int k, char *text, size_t cap, const char **finish) {
    const int *fail_mod = user;
    sq_prompt_kind kind;
    const char *q;
    size_t ql;
    if (!sq_prompt_identify(input, strlen(input), &kind, &q, &ql)) {
        snprintf(text, cap, "not a figure prompt");
        return 0;
    }
    int i = atoi(q + 1);
    if (*fail_mod && i % *fail_mod == 0) return 1;
    const char *marker = kind == SQ_PROMPT_SOLVABILITY_OPTIMIZE ? "FINAL QUESTION:" : "#Finally Rewritten Problem#:";
    switch (i % 6) {
    case 0: snprintf(text, cap, "Some thoughts.\n**%s** \"%.*s with one more step\"\n", marker, (int)ql, q); break;
    case 1: snprintf(text, cap, "I cannot improve this question."); break;
    case 2: text[0] = 0; break;
    case 3: snprintf(text, cap, "Reasoning...\n%s", marker); break;
    case 4: snprintf(text, cap, "%s  %.*s  ", marker, (int)ql, q); break; /* unchanged */
    default: snprintf(text, cap, "%s %.*s, harder", marker, (int)ql, q);
    }
    (void)seed, (void)k, (void)finish;
    return 0;
}

SQ_TEST(directions_and_coin) {
    double p;
    sq_err e;
    CHECK(sq_optimize_parse_directions("mix", &p, &e) == 0 && p == 0.5);
    CHECK(sq_optimize_parse_directions("solvability", &p, &e) == 0 && p == 1.0);
    CHECK(sq_optimize_parse_directions("difficulty", &p, &e) == 0 && p == 0.0);
    CHECK(sq_optimize_parse_directions("mix:0.3", &p, &e) == 0 && fabs(p - 0.3) < 1e-12);
    CHECK(sq_optimize_parse_directions("mix:1.5", &p, &e) == SQ_EINVAL);
    CHECK(sq_optimize_parse_directions("both", &p, &e) == SQ_EINVAL && strstr(e.msg, "both"));
    int n05 = 0, n03 = 0, same = 1;
    for (int i = 0; i < 20000; i++) {
        char id[32];
        snprintf(id, sizeof id, "q%06d", i);
        n05 += sq_optimize_pick_solvability(9, id, 0.5);
        n03 += sq_optimize_pick_solvability(9, id, 0.3);
        same &= sq_optimize_pick_solvability(9, id, 0.5) == sq_optimize_pick_solvability(9, id, 0.5);
        CHECK(sq_optimize_pick_solvability(9, id, 1.0) == 1 && sq_optimize_pick_solvability(9, id, 0.0) == 0);
    }
    CHECK(same);
    CHECKF(abs(n05 - 10000) < 400, "%d of 20000 at 0.5", n05);
    CHECKF(abs(n03 - 6000) < 400, "%d of 20000 at 0.3", n03);
}

static void write_questions(const char *path, int n) {
    FILE *f = fopen(path, "w");
    for (int i = 0; i < n; i++) {
        if (i == 7) fprintf(f, "{\"id\":\"x%04d\",\"question\":\"Q%d no query field\"}\n", i, i);
        else fprintf(f, "{\"id\":\"x%04d\",\"query\":\"Q%d: Mia has %d apples. How many?\"}\n", i, i, i % 50 + 1);
    }
    fclose(f);
}

static cJSON **read_all(const char *path, int *n) {
    sq_jsonl_reader *r;
    sq_err e;
    *n = 0;
    if (sq_jsonl_open(&r, path, 0, &e)) return NULL;
    cJSON **v = NULL, *rec;
    while (sq_jsonl_next(r, &rec, &e) == 1) {
        v = realloc(v, sizeof *v * (size_t)(*n + 1));
        v[(*n)++] = rec;
    }
    sq_jsonl_close(r);
    return v;
}

static void free_all(cJSON **v, int n) {
    for (int i = 0; i < n; i++) cJSON_Delete(v[i]);
    free(v);
}

SQ_TEST(pairs_and_counted_drops) {
    const char *tmp = sq_test_tmpdir();
    char *in = sq_path_join(tmp, "q.jsonl"), *out = sq_path_join(tmp, "p.jsonl"), *drop = sq_path_join(tmp, "p.dropped.jsonl");
    enum { N = 120 };
    write_questions(in, N);
    int fail_mod = 0;
    scripted s;
    scripted_init(&s, reply, &fail_mod);
    sq_optimize_opts o;
    sq_optimize_opts_default(&o);
    o.stage.in = in, o.stage.out = out, o.prefix = PREFIX, o.params.seed = 3;
    sq_progress_set_quiet(1);
    sq_stage_counts c;
    sq_err e = {0};
    REQUIRE(sq_optimize_run(&s.base, &o, &c, &e) == 0);
    CHECK_EQ_INT(c.kept + c.dropped, N);
    int nk, nd;
    cJSON **kept = read_all(out, &nk), **dropped = read_all(drop, &nd);
    CHECK_EQ_INT(nk + nd, N);
    int solv = 0;
    for (int k = 0; k < nk; k++) {
        const cJSON *r = kept[k];
        int i = atoi(sq_rec_str(r, "rejected") + 1);
        CHECKF(i % 6 == 0 || i % 6 == 5, "kept %d", i);
        char want[256];
        snprintf(want, sizeof want, i % 6 == 0 ? "%s with one more step" : "%s, harder", sq_rec_str(r, "query"));
        CHECK_EQ_STR(sq_rec_str(r, "chosen"), want);
        CHECK_EQ_STR(sq_rec_str(r, "rejected"), sq_rec_str(r, "query"));
        CHECK_EQ_STR(sq_rec_str(r, "prompt"), PREFIX);
        const char *dir = sq_rec_str(r, "direction");
        CHECK(dir && (!strcmp(dir, "solvability") || !strcmp(dir, "difficulty")));
        CHECK_EQ_INT(!strcmp(dir, "solvability"), sq_optimize_pick_solvability(3, sq_rec_id(r), 0.5));
        solv += !strcmp(dir, "solvability");
        const char *rep = sq_rec_str(r, "optimizer_reply");
        CHECK(rep && strstr(rep, !strcmp(dir, "solvability") ? "FINAL QUESTION:" : "#Finally Rewritten Problem#:"));
    }
    CHECK(solv > 0 && solv < nk);
    for (int k = 0; k < nd; k++) {
        const cJSON *r = dropped[k];
        const char *why = sq_rec_str(r, "drop_reason"), *q = sq_rec_str(r, "query");
        if (!q) {
            CHECK_EQ_STR(why, "no query");
            continue;
        }
        int i = atoi(q + 1);
        const char *want = i % 6 == 1 ? "no rewrite marker" : i % 6 == 2 ? "empty reply" : i % 6 == 3 ? "empty rewrite" : "unchanged";
        CHECK_EQ_STR(why, want);
    }
    free_all(kept, nk);
    free_all(dropped, nd);
    /* A torn input line is an error naming the file and line, before anything is written. */
    char *bad = sq_path_join(tmp, "bad.jsonl"), *bout = sq_path_join(tmp, "bout.jsonl");
    FILE *f = fopen(bad, "w");
    fputs("{\"id\":\"a\",\"query\":\"Q1 x\"}\n{\"id\":\"b\",\"query\":\"Q2 x", f);
    fclose(f);
    o.stage.in = bad, o.stage.out = bout;
    CHECK(sq_optimize_run(&s.base, &o, &c, &e) != 0);
    CHECKF(strstr(e.msg, "bad.jsonl:2"), "%s", e.msg);
    CHECK(!sq_file_exists(bout));
    free(bad);
    free(bout);
    free(in);
    free(out);
    free(drop);
}

static char *slurp(const char *path) {
    char *data = NULL;
    size_t len;
    sq_err e;
    return sq_file_read_all(path, &data, &len, &e) ? NULL : data;
}

SQ_TEST(cli_over_http_resume_after_kill_9_and_500s) {
    int fail_mod = 0;
    scripted s;
    scripted_init(&s, reply, &fail_mod);
    s.delay_us = 1000;
    char spec[128];
    sq_server *srv = scripted_serve(&s, spec, sizeof spec);
    REQUIRE(srv);
    const char *tmp = sq_test_tmpdir();
    char *in = sq_path_join(tmp, "q.jsonl"), *ref = sq_path_join(tmp, "ref.jsonl"), *out = sq_path_join(tmp, "out.jsonl");
    enum { N = 500 };
    write_questions(in, N);
    char args[768];
    snprintf(args, sizeof args, "--model '%s' --in '%s' --prompt '<|im_start|>user\n' --seed 4 --quiet", spec, in);
    REQUIRE(sq_test_sh(NULL, "'%s' optimize %s --out '%s'", sq_test_cli(), args, ref) == 0);
    char *ref_d = sq_path_join(tmp, "ref.dropped.jsonl");
    CHECK_EQ_INT(sq_test_lines(ref) + sq_test_lines(ref_d), N);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' optimize %s --out '%s'", sq_test_cli(), args, out);
    /* killed at random records of the kept file, between its first and its last */
    int total = sq_test_lines(ref), cut = sq_test_kill_rounds(cmd, out, total, 3, (uint64_t)getpid());
    CHECK_KILLS_INTERRUPTED(cut, out, total);
    REQUIRE(sq_test_sh(NULL, "'%s' optimize %s --out '%s'", sq_test_cli(), args, out) == 0);
    char *want = slurp(ref), *got = slurp(out), *out_d = sq_path_join(tmp, "out.dropped.jsonl");
    char *want_d = slurp(ref_d), *got_d = slurp(out_d);
    CHECK(want && got && !strcmp(want, got));
    CHECK(want_d && got_d && !strcmp(want_d, got_d));
    /* 500s: failed records, the exit status says so, a rerun settles them. */
    char *f_out = sq_path_join(tmp, "f.jsonl"), *f_failed = sq_path_join(tmp, "failed.jsonl"), *f_drop = sq_path_join(tmp, "f.dropped.jsonl");
    fail_mod = 4;
    CHECK(sq_test_sh(NULL, "'%s' optimize %s --max-retries 0 --out '%s' --failed '%s' 2>/dev/null", sq_test_cli(), args,
                     f_out, f_failed) != 0);
    int nf = sq_test_lines(f_failed);
    CHECKF(nf > 0 && nf + sq_test_lines(f_out) + sq_test_lines(f_drop) == N, "%d failed", nf);
    fail_mod = 0;
    REQUIRE(sq_test_sh(NULL, "'%s' optimize %s --out '%s' --failed '%s'", sq_test_cli(), args, f_out, f_failed) == 0);
    CHECK_EQ_INT(sq_test_lines(f_out) + sq_test_lines(f_drop), N);
    sq_server_close(srv);
    free(f_out), free(f_failed), free(f_drop);
    free(want), free(got), free(want_d), free(got_d), free(out_d), free(ref_d);
    free(in), free(ref), free(out);
}

SQ_TEST(world_oracle_pairs_train_as_qpo) {
    const char *tmp = sq_test_tmpdir();
    const char *sq = sq_test_cli();
    char *err = NULL;
    /* world problems as questions, the oracle rewriting them, a tokenizer with ChatML's
     * special tokens, and one DPO step on the pairs */
    int rc = sq_test_sh(&err, "cd '%s' && '%s' world --n 300 --seed 5 --out w.jsonl --quiet && "
                              "'%s' world --n 300 --seed 5 --format text --out c.txt --quiet && "
                              "'%s' tokenizer-train --in c.txt --vocab-size 300 --special '<|endoftext|>' "
                              "--special '<|im_start|>' --special '<|im_end|>' --out tok.json --quiet && "
                              "head -n 40 w.jsonl > q.jsonl && "
                              "'%s' optimize --model world:w.jsonl --in q.jsonl --out p.jsonl --generator chatml --seed 1 "
                              "--quiet 2>&1 && "
                              "'%s' train --mode dpo --init-config dim=32,layers=1,heads=2,kv_heads=1,ffn=64,seq=128 "
                              "--tokenizer tok.json --chat-template chatml --data p.jsonl --out m --batch 4 --seq-len 128 "
                              "--max-steps 1 --threads 1 --quiet 2>&1",
                        tmp, sq, sq, sq, sq, sq);
    CHECKF(rc == 0, "%s", err ? err : "");
    free(err);
    char *pairs = sq_path_join(tmp, "p.jsonl");
    int n;
    cJSON **v = read_all(pairs, &n);
    CHECK(n > 10);
    for (int k = 0; k < n; k++) {
        int64_t a;
        int s_c = 0, s_r = 0;
        sq_err e;
        CHECKF(sq_world_parse(sq_rec_str(v[k], "chosen"), &a, &s_c, &e) == 0, "%s", e.msg);
        if (sq_world_parse(sq_rec_str(v[k], "rejected"), &a, &s_r, &e) == 0) CHECK(s_c >= s_r);
    }
    free_all(v, n);
    /* pairs made for another template's prefix are refused, naming the line */
    rc = sq_test_sh(&err, "cd '%s' && sed 's/<|im_start|>user/[INST]/' p.jsonl > p2.jsonl && '%s' train --mode dpo "
                          "--init-config dim=32,layers=1,heads=2,kv_heads=1,ffn=64,seq=128 --tokenizer tok.json "
                          "--chat-template chatml --data p2.jsonl --out m2 --batch 4 --seq-len 128 --max-steps 1 --quiet 2>&1",
                    tmp, sq);
    CHECK(rc != 0);
    CHECKF(err && strstr(err, "p2.jsonl:1") && strstr(err, "question prefix"), "%s", err ? err : "");
    free(err);
    free(pairs);
}
