/* difficulty: label's fail rates graded against GSM8K- and MATH-style gold, drops counted,
 * resume after kill -9 over HTTP, 500s; score writes the scorer's value as "difficulty" (the
 * same number `score` gives) and resumes to the same bytes; sample's keep probabilities,
 * threshold, target histogram, determinism and resume. */
#include <signal.h>
#include <stdlib.h>

#include "scalequest/difficulty.h"
#include "scalequest/jsonl.h"
#include "scalequest/tokenizer.h"
#include "scalequest/train.h"
#include "scripted_backend.h"
#include "test.h"

/* The solver: a question "Q c=<c> ..." gets its first c samples right (\boxed{7}) and the
 * others wrong; "garbage" gets text with no answer. */
static int solve(void *user, const char *input, uint64_t seed, int k, char *text, size_t cap, const char **finish) {
    const int *fail_mod = user;
    const char *p = strstr(input, "c=");
    int c = p ? atoi(p + 2) : 0;
    if (*fail_mod && c % *fail_mod == 0) return 1;
    if (strstr(input, "garbage")) snprintf(text, cap, "no idea at all");
    else snprintf(text, cap, "Let me think. So the result is \\boxed{%d}.", k < c % 5 ? 7 : 8);
    (void)seed, (void)finish;
    return 0;
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

static char *slurp(const char *path) {
    char *data = NULL;
    size_t len;
    sq_err e;
    return sq_file_read_all(path, &data, &len, &e) ? NULL : data;
}

static void write_labelled(const char *path, int n) {
    FILE *f = fopen(path, "w");
    for (int i = 0; i < n; i++) {
        int c = i % 23;
        if (i % 5 == 0) /* MATH style */
            fprintf(f, "{\"id\":\"m%04d\",\"query\":\"Q c=%d find x\",\"solution\":\"So $x = \\\\boxed{7}$.\"}\n", i, c);
        else if (i % 5 == 1) /* a number */
            fprintf(f, "{\"id\":\"m%04d\",\"query\":\"Q c=%d\",\"answer\":7}\n", i, c);
        else if (i % 5 == 2 && i % 3 == 0) /* no gold */
            fprintf(f, "{\"id\":\"m%04d\",\"query\":\"Q c=%d\"}\n", i, c);
        else if (i % 5 == 3 && i % 3 == 0) /* no query */
            fprintf(f, "{\"id\":\"m%04d\",\"problem\":\"Q c=%d\",\"answer\":\"#### 7\"}\n", i, c);
        else if (i % 7 == 4)
            fprintf(f, "{\"id\":\"m%04d\",\"query\":\"Q c=%d garbage\",\"answer\":\"x = 7\\n#### 7\"}\n", i, c);
        else /* GSM8K style */
            fprintf(f, "{\"id\":\"m%04d\",\"query\":\"Q c=%d\",\"answer\":\"3 + 4 = <<3+4=7>>7\\n#### 7\"}\n", i, c);
    }
    fclose(f);
}

SQ_TEST(label_fail_rates_and_drops) {
    const char *tmp = sq_test_tmpdir();
    char *in = sq_path_join(tmp, "l.jsonl"), *out = sq_path_join(tmp, "o.jsonl"), *drop = sq_path_join(tmp, "o.dropped.jsonl");
    enum { N = 200 };
    write_labelled(in, N);
    int fail_mod = 0;
    scripted s;
    scripted_init(&s, solve, &fail_mod);
    sq_label_opts o;
    sq_label_opts_default(&o);
    CHECK_EQ_INT(o.params.n, 8);
    o.stage.in = in, o.stage.out = out, o.params.n = 5, o.params.seed = 1;
    sq_progress_set_quiet(1);
    sq_stage_counts c;
    sq_err e = {0};
    REQUIRE(sq_difficulty_label_run(&s.base, &o, &c, &e) == 0);
    int nk, nd;
    cJSON **kept = read_all(out, &nk), **dropped = read_all(drop, &nd);
    CHECK_EQ_INT(nk + nd, N);
    CHECK(nd > 0 && nk > 100);
    for (int k = 0; k < nk; k++) {
        const char *q = sq_rec_str(kept[k], "query");
        int cc = atoi(strstr(q, "c=") + 2) % 5;
        double fr = -1, samples = 0;
        sq_rec_num(kept[k], "fail_rate", &fr);
        sq_rec_num(kept[k], "label_samples", &samples);
        double want = strstr(q, "garbage") ? 1.0 : (5.0 - cc) / 5.0;
        CHECKF(fabs(fr - want) < 1e-12, "%s: fail_rate %g, expected %g", sq_rec_id(kept[k]), fr, want);
        CHECK_EQ_INT((int)samples, 5);
        CHECK_EQ_STR(sq_rec_str(kept[k], "gold_answer"), "7");
    }
    for (int k = 0; k < nd; k++) {
        const char *why = sq_rec_str(dropped[k], "drop_reason");
        CHECK(why && (!strcmp(why, "no gold answer") || !strcmp(why, "no query")));
    }
    free_all(kept, nk);
    free_all(dropped, nd);
    free(in), free(out), free(drop);
}

SQ_TEST(label_cli_over_http_resume_after_kill_9_and_500s) {
    int fail_mod = 0;
    scripted s;
    scripted_init(&s, solve, &fail_mod);
    s.delay_us = 1500;
    char spec[128];
    sq_server *srv = scripted_serve(&s, spec, sizeof spec);
    REQUIRE(srv);
    const char *tmp = sq_test_tmpdir();
    char *in = sq_path_join(tmp, "l.jsonl"), *ref = sq_path_join(tmp, "ref.jsonl"), *out = sq_path_join(tmp, "out.jsonl");
    enum { N = 400 };
    write_labelled(in, N);
    char args[768];
    snprintf(args, sizeof args, "--model '%s' --in '%s' --samples 4 --seed 4 --quiet", spec, in);
    REQUIRE(sq_test_sh(NULL, "'%s' difficulty label %s --out '%s'", sq_test_cli(), args, ref) == 0);
    char *ref_d = sq_path_join(tmp, "ref.dropped.jsonl");
    CHECK_EQ_INT(sq_test_lines(ref) + sq_test_lines(ref_d), N);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' difficulty label %s --out '%s'", sq_test_cli(), args, out);
    /* killed at random records of the kept file, between its first and its last */
    int total = sq_test_lines(ref), cut = sq_test_kill_rounds(cmd, out, total, 3, (uint64_t)getpid());
    CHECK_KILLS_INTERRUPTED(cut, out, total);
    REQUIRE(sq_test_sh(NULL, "'%s' difficulty label %s --out '%s'", sq_test_cli(), args, out) == 0);
    char *want = slurp(ref), *got = slurp(out);
    CHECK(want && got && !strcmp(want, got));
    /* A torn input line: an error naming file:line. */
    char *bad = sq_path_join(tmp, "bad.jsonl"), *err = NULL;
    sq_test_sh(NULL, "head -c 300 '%s' > '%s'", in, bad);
    CHECK(sq_test_sh(&err, "'%s' difficulty label --model '%s' --in '%s' --out '%s/b.jsonl' 2>&1", sq_test_cli(), spec, bad,
                     tmp) != 0);
    CHECKF(err && strstr(err, "bad.jsonl:"), "%s", err ? err : "");
    free(err);
    /* 500s: failed records and a failing exit, then a rerun settles them. */
    char *f_out = sq_path_join(tmp, "f.jsonl"), *f_failed = sq_path_join(tmp, "failed.jsonl"), *f_drop = sq_path_join(tmp, "f.dropped.jsonl");
    fail_mod = 3;
    CHECK(sq_test_sh(NULL, "'%s' difficulty label %s --max-retries 0 --out '%s' --failed '%s' 2>/dev/null", sq_test_cli(),
                     args, f_out, f_failed) != 0);
    int nf = sq_test_lines(f_failed);
    CHECKF(nf > 0 && nf + sq_test_lines(f_out) + sq_test_lines(f_drop) == N, "%d failed", nf);
    fail_mod = 0;
    REQUIRE(sq_test_sh(NULL, "'%s' difficulty label %s --out '%s' --failed '%s'", sq_test_cli(), args, f_out, f_failed) == 0);
    CHECK_EQ_INT(sq_test_lines(f_out) + sq_test_lines(f_drop), N);
    sq_server_close(srv);
    free(f_out), free(f_failed), free(f_drop), free(bad);
    free(want), free(got), free(ref_d), free(in), free(ref), free(out);
}

/* ---- sample ----------------------------------------------------------------------------- */

SQ_TEST(sample_keep_probabilities_and_target_parsing) {
    sq_sample_opts o;
    sq_sample_opts_default(&o);
    sq_err e;
    o.n_bins = 4;
    REQUIRE(sq_sample_parse_target(&o, "1,1,2,0", &e) == 0);
    int64_t count[4] = {100, 50, 400, 30};
    double keep[4];
    sq_sample_keep_probs(&o, count, keep);
    /* target shares .25 .25 .5 0: bin 1 limits (50 / .25 = 200 records in all) */
    CHECK_NEAR(keep[1], 1.0, 1e-12);
    CHECK_NEAR(keep[0], 0.5, 1e-12);
    CHECK_NEAR(keep[2], 0.25, 1e-12);
    CHECK_NEAR(keep[3], 0.0, 1e-12);
    CHECK(sq_sample_parse_target(&o, "1,1", &e) == SQ_EINVAL && strstr(e.msg, "2 weights for 4 bins"));
    CHECK(sq_sample_parse_target(&o, "1,-1,1,1", &e) == SQ_EINVAL);
    CHECK(sq_sample_parse_target(&o, "0,0,0,0", &e) == SQ_EINVAL);
    CHECK(sq_sample_parse_target(&o, "1;1;1;1", &e) == SQ_EINVAL);
    CHECK(sq_sample_parse_target(&o, "uniform", &e) == 0 && o.n_target == 4);
    CHECK_EQ_INT(sq_sample_bin(&o, -3), 0);
    CHECK_EQ_INT(sq_sample_bin(&o, 0.26), 1);
    CHECK_EQ_INT(sq_sample_bin(&o, 1.0), 3);
    CHECK_EQ_INT(sq_sample_bin(&o, 7), 3);
}

static void write_scored(const char *path, int n) {
    FILE *f = fopen(path, "w");
    sq_rng r;
    sq_rng_seed(&r, 77);
    for (int i = 0; i < n; i++) {
        if (i % 97 == 5) fprintf(f, "{\"id\":\"s%05d\",\"query\":\"q\"}\n", i);
        else fprintf(f, "{\"id\":\"s%05d\",\"query\":\"q\",\"difficulty\":%.4f}\n", i, sq_rng_uniform(&r));
    }
    fclose(f);
}

SQ_TEST(sample_threshold_target_and_resume) {
    const char *tmp = sq_test_tmpdir();
    char *in = sq_path_join(tmp, "s.jsonl"), *err = NULL;
    enum { N = 6000 };
    write_scored(in, N);
    const char *sq = sq_test_cli();
    /* threshold: exactly the records at or above it */
    REQUIRE(sq_test_sh(NULL, "'%s' difficulty sample --in '%s' --out '%s/t.jsonl' --min-score 0.3 --quiet", sq, in, tmp) == 0);
    char *c1 = NULL, *c2 = NULL;
    sq_test_sh(&c1, "cd '%s' && wc -l < t.jsonl", tmp);
    sq_test_sh(&c2, "cd '%s' && grep -c '\"difficulty\":0\\.[3-9]' s.jsonl", tmp);
    CHECK(c1 && c2 && atoi(c1) == atoi(c2));
    free(c1), free(c2);
    sq_test_sh(&c1, "cd '%s' && grep -c 'no difficulty' t.dropped.jsonl", tmp);
    CHECK(c1 && atoi(c1) == (N + 91) / 97);
    free(c1);
    /* target: the upper half only, every record of it (it limits), histograms printed */
    REQUIRE(sq_test_sh(&err, "'%s' difficulty sample --in '%s' --out '%s/g.jsonl' --target-dist 0,0,0,0,0,1,1,1,1,1 2>&1",
                       sq, in, tmp) == 0);
    CHECKF(err && strstr(err, "before:") && strstr(err, "after:"), "%s", err ? err : "");
    free(err);
    sq_test_sh(&c1, "cd '%s' && wc -l < g.jsonl", tmp);
    sq_test_sh(&c2, "cd '%s' && grep -c '\"difficulty\":0\\.[5-9]' s.jsonl", tmp);
    CHECK(c1 && c2 && atoi(c1) > 0 && abs(atoi(c1) - atoi(c2)) <= atoi(c2) / 20);
    free(c1), free(c2);
    /* a skewed target: bin 0 twice bin 1 */
    REQUIRE(sq_test_sh(NULL, "'%s' difficulty sample --in '%s' --out '%s/k.jsonl' --bins 2 --target-dist 2,1 --seed 3 --quiet",
                       sq, in, tmp) == 0);
    sq_test_sh(&c1, "cd '%s' && grep -c '\"difficulty\":0\\.[0-4]' k.jsonl", tmp);
    sq_test_sh(&c2, "cd '%s' && grep -c '\"difficulty\":0\\.[5-9]' k.jsonl", tmp);
    CHECKF(c1 && c2 && fabs((double)atoi(c1) / atoi(c2) - 2.0) < 0.25, "%s vs %s", c1, c2);
    free(c1), free(c2);
    /* resume: the output cut at random bytes (a torn line included) is completed to the same bytes */
    char *ref = sq_path_join(tmp, "k.jsonl"), *want = slurp(ref);
    REQUIRE(want);
    sq_rng r;
    sq_rng_seed(&r, (uint64_t)getpid());
    for (int round = 0; round < 3; round++) {
        size_t cut = sq_rng_below(&r, strlen(want));
        sq_test_sh(NULL, "cd '%s' && head -c %zu k.jsonl > r.jsonl && grep -v . /dev/null > r.dropped.jsonl", tmp, cut);
        REQUIRE(sq_test_sh(NULL, "'%s' difficulty sample --in '%s' --out '%s/r.jsonl' --dropped '%s/r.dropped.jsonl' "
                                 "--bins 2 --target-dist 2,1 --seed 3 --quiet", sq, in, tmp, tmp) == 0);
        char *rp = sq_path_join(tmp, "r.jsonl"), *got = slurp(rp);
        CHECKF(got && !strcmp(got, want), "cut at %zu", cut);
        free(got), free(rp);
    }
    /* stdin cannot be read twice for a target */
    CHECK(sq_test_sh(&err, "'%s' difficulty sample --in - --out '%s/x.jsonl' --target-dist uniform < '%s' 2>&1", sq, tmp,
                     in) != 0);
    CHECKF(err && strstr(err, "stdin"), "%s", err ? err : "");
    free(err);
    free(want), free(ref), free(in);
}

/* ---- score -------------------------------------------------------------------------------- */

SQ_TEST(score_writes_difficulty_as_score_does) {
    const char *tmp = sq_test_tmpdir();
    /* a scorer: a random *ForSequenceClassification folder, as train --mode regress writes */
    sq_buf corpus = {0};
    for (int i = 0; i < 80; i++) sq_buf_printf(&corpus, "Mia has %d apples and buys %d more. How many now?\n", i, i * 3 % 17);
    static const char *special[] = {"<|endoftext|>"};
    sq_tok_train_opts to = {.vocab_size = 300, .min_frequency = 1, .special = special, .n_special = 1};
    sq_tokenizer *t = NULL;
    sq_err e;
    char *tokp = sq_path_join(tmp, "tokenizer.json"), *dir = sq_path_join(tmp, "scorer");
    REQUIRE(sq_tok_train(corpus.data, corpus.len, &to, &t, &e) == 0 && sq_tok_save_json(t, tokp, &e) == 0);
    sq_tok_free(t);
    sq_buf_free(&corpus);
    sq_model_config c = {0};
    snprintf(c.arch, sizeof c.arch, "llama");
    c.vocab_size = 300, c.dim = 32, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 8;
    c.ffn_dim = 48, c.max_seq_len = 64, c.rope_theta = 10000.0f, c.norm_eps = 1e-5f;
    c.tie_embeddings = 1, c.bos_id = -1, c.eos_id = 0, c.pad_id = -1;
    sq_tmodel m;
    REQUIRE(sq_tm_create(&m, &c, 1, &e) == 0);
    sq_tm_init_random(&m, 3, 0.2f);
    REQUIRE(sq_tm_save_hf(&m, dir, tokp, &e) == 0);
    sq_tm_free(&m);
    char *in = sq_path_join(tmp, "q.jsonl");
    FILE *f = fopen(in, "w");
    for (int i = 0; i < 500; i++) {
        if (i == 9) fprintf(f, "{\"id\":\"d%04d\",\"problem\":\"no query\"}\n", i);
        else fprintf(f, "{\"id\":\"d%04d\",\"query\":\"Mia has %d apples and buys %d more. How many now?\"}\n", i, i, i % 13);
    }
    fclose(f);
    const char *sq = sq_test_cli();
    REQUIRE(sq_test_sh(NULL, "cd '%s' && '%s' difficulty score --model scorer --in q.jsonl --out d.jsonl --threads 1 --quiet && "
                             "'%s' score --model scorer --in q.jsonl --out s.jsonl --threads 1 --quiet", tmp, sq, sq) == 0);
    char *a = NULL, *b = NULL;
    /* the same records, with the value under "difficulty" instead of "score" */
    sq_test_sh(&a, "cd '%s' && sed 's/\"difficulty\":/\"score\":/' d.jsonl", tmp);
    sq_test_sh(&b, "cd '%s' && cat s.jsonl", tmp);
    CHECK(a && b && *a && !strcmp(a, b));
    free(a), free(b);
    sq_test_sh(&a, "cd '%s' && grep -c 'no text field' d.dropped.jsonl", tmp);
    CHECK(a && atoi(a) == 1);
    free(a);
    /* resume after a cut (torn line included) to the same bytes */
    char *dp = sq_path_join(tmp, "d.jsonl"), *want = slurp(dp);
    REQUIRE(want);
    size_t cut = strlen(want) / 3 + 7;
    REQUIRE(sq_test_sh(NULL, "cd '%s' && head -c %zu d.jsonl > r.jsonl && cp d.dropped.jsonl r.dropped.jsonl && "
                             "'%s' difficulty score --model scorer --in q.jsonl --out r.jsonl --threads 1 --quiet",
                       tmp, cut, sq) == 0);
    char *rp = sq_path_join(tmp, "r.jsonl"), *got = slurp(rp);
    CHECK(got && !strcmp(got, want));
    free(got), free(rp), free(want), free(dp), free(in), free(tokp), free(dir);
}
