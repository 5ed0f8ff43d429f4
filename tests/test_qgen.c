/* qgen: the question is cut and trimmed at the user-turn end; drops (length, empty,
 * duplicate after white-space normalisation) are decided in id order and counted; a run is
 * deterministic, resumes after kill -9 to the bytes of an uninterrupted run, shards, and
 * takes a server's 500s as failed records that a rerun retries; the local engine path. */
#include <signal.h>
#include <stdlib.h>

#include "scalequest/chat_template.h"
#include "scalequest/jsonl.h"
#include "scalequest/qgen.h"
#include "scripted_backend.h"
#include "test.h"

/* What the scripted generator writes for a seed: see the cases below. */
static int reply(void *user, const char *input, uint64_t seed, int k, char *text, size_t cap, const char **finish) {
    const int *fail_mod = user;
    uint64_t v = seed % 1000003;
    if (*fail_mod && v % (uint64_t)*fail_mod == 0) return 1;
    size_t n = strlen(input), m = strlen("<|im_start|>user\n");
    if (n < m || strcmp(input + n - m, "<|im_start|>user\n") != 0) {
        snprintf(text, cap, "unexpected prompt [%s]", input);
        return 0;
    }
    switch (v % 10) {
    case 6: snprintf(text, cap, "%s", ""); break;       /* empty */
    case 7: snprintf(text, cap, "%s", "  \n\t "); break; /* empty after trimming */
    case 8: /* ran into the limit */
        snprintf(text, cap, "Tom has %d pens and gives away", (int)(v % 97));
        *finish = "length";
        break;
    case 9: /* a backend that ignores stop strings: the question ends at the cut */
        snprintf(text, cap, "Is %d even?<|im_end|>\n<|im_start|>assistant\nYes", (int)(v % 1000));
        *finish = "length";
        break;
    default: /* few distinct questions, spaced differently: many duplicates */
        snprintf(text, cap, v % 3 ? "  How many apples does Mia have if she buys %d?\n" : "How  many apples does\nMia have if she buys %d?",
                 (int)(v % 40));
    }
    return 0;
}

SQ_TEST(question_cut_trim_and_key) {
    const char *cut[] = {"<|im_end|>", "<|im_start|>assistant\n"};
    char *q = sq_qgen_question("  What is 2+2? <|im_end|>\n<|im_start|>assistant\n4", cut, 2);
    CHECK_EQ_STR(q, "What is 2+2?");
    free(q);
    q = sq_qgen_question("A<|im_start|>assistant\nB<|im_end|>", cut, 2);
    CHECK_EQ_STR(q, "A");
    free(q);
    q = sq_qgen_question("\n\n", cut, 2);
    CHECK_EQ_STR(q, "");
    free(q);
    char *k = sq_qgen_normalize(" a \t b\n\nc  ");
    CHECK_EQ_STR(k, "a b c");
    free(k);
    char id[32];
    sq_qgen_id(7, id, sizeof id);
    CHECK_EQ_STR(id, "q000007");
    sq_qgen_id(12345678, id, sizeof id);
    CHECK_EQ_STR(id, "q12345678");
}

SQ_TEST(template_gives_prefix_and_cuts) {
    sq_chat_template *t = NULL;
    sq_err e;
    REQUIRE(sq_chat_template_builtin(&t, "chatml", &e) == 0);
    sq_qgen_opts o;
    sq_qgen_opts_default(&o);
    CHECK_NEAR(o.params.temperature, 1.0, 0);
    CHECK_NEAR(o.params.top_p, 0.99, 1e-6);
    CHECK_EQ_INT(o.params.max_tokens, 512);
    sq_buf prefix = {0};
    REQUIRE(sq_qgen_use_template(&o, t, &prefix, &e) == 0);
    CHECKF(strstr(o.prefix, "<|im_start|>user\n") != NULL, "%s", o.prefix);
    int has_end = 0, has_asst = 0;
    for (int i = 0; i < o.n_cut; i++) {
        has_end |= !strcmp(o.cut[i], "<|im_end|>");
        has_asst |= !strcmp(o.cut[i], "<|im_start|>assistant\n");
    }
    CHECK(has_end && has_asst);
    sq_buf_free(&prefix);
    sq_chat_template_free(t);
}

/* Reads a JSONL file into an array of records (count in *n). */
static cJSON **read_all(const char *path, int *n) {
    sq_jsonl_reader *r;
    sq_err e;
    *n = 0;
    if (sq_jsonl_open(&r, path, 0, &e)) {
        fprintf(stderr, "read_all: %s\n", e.msg);
        return NULL;
    }
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

static int run_inproc(const char *out, int n, int fail_mod, sq_stage_counts *c) {
    scripted s;
    scripted_init(&s, reply, &fail_mod);
    sq_qgen_opts o;
    sq_qgen_opts_default(&o);
    o.stage.out = out;
    o.n_questions = n;
    o.chunk = 37; /* batches that do not divide the count */
    o.prefix = "<|im_start|>user\n";
    o.cut[0] = "<|im_end|>";
    o.cut[1] = "<|im_start|>assistant\n";
    o.n_cut = 2;
    o.params.seed = 11;
    sq_err e = {0};
    int rc = sq_qgen_run(&s.base, &o, c, &e);
    if (rc) fprintf(stderr, "qgen: %s\n", e.msg);
    return rc;
}

SQ_TEST(drops_are_counted_and_decided_in_id_order) {
    enum { N = 400 };
    const char *tmp = sq_test_tmpdir();
    char *out = sq_path_join(tmp, "q.jsonl"), *drop = sq_path_join(tmp, "q.dropped.jsonl");
    sq_progress_set_quiet(1);
    sq_stage_counts c;
    REQUIRE(run_inproc(out, N, 0, &c) == 0);
    CHECK_EQ_INT(c.kept + c.dropped, N);
    int nk, nd;
    cJSON **kept = read_all(out, &nk), **dropped = read_all(drop, &nd);
    CHECK_EQ_INT(nk, c.kept);
    CHECK_EQ_INT(nd, c.dropped);
    /* What each id must have become, from its seed. */
    char *seen[N] = {0};
    int n_seen = 0, ik = 0, id_ = 0, want_kept = 0;
    for (int i = 0; i < N; i++) {
        char id[32];
        sq_qgen_id(i, id, sizeof id);
        uint64_t v = (sq_stage_seed(11, id) & SCRIPT_SEED_MASK) % 1000003;
        char expect[128] = "";
        const char *why = NULL;
        if (v % 10 == 6 || v % 10 == 7) why = "empty";
        else if (v % 10 == 8) why = "length";
        else if (v % 10 == 9) snprintf(expect, sizeof expect, "Is %d even?", (int)(v % 1000));
        else snprintf(expect, sizeof expect, "How many apples does Mia have if she buys %d?", (int)(v % 40));
        if (!why) {
            for (int j = 0; j < n_seen && !why; j++)
                if (!strcmp(seen[j], expect)) why = "duplicate";
            if (!why) seen[n_seen++] = sq_strdup(expect);
        }
        cJSON *rec = why ? (id_ < nd ? dropped[id_++] : NULL) : (ik < nk ? kept[ik++] : NULL);
        REQUIRE(rec);
        CHECK_EQ_STR(sq_rec_id(rec), id);
        if (why) CHECK_EQ_STR(sq_rec_str(rec, "drop_reason"), why);
        else {
            want_kept++;
            const char *q = sq_rec_str(rec, "query");
            char *norm = sq_qgen_normalize(q);
            CHECKF(!strcmp(norm, expect) && !strcmp(q, norm + 0) == (v % 3 != 0 || v % 10 == 9), "%s: \"%s\" for \"%s\"",
                   id, q, expect);
            free(norm);
        }
    }
    CHECK_EQ_INT(want_kept, nk);
    CHECK(n_seen < 60); /* duplicates did happen */
    for (int j = 0; j < n_seen; j++) free(seen[j]);
    /* Same bytes again, into a fresh file. */
    char *out2 = sq_path_join(tmp, "q2.jsonl"), *a = NULL, *b = NULL;
    REQUIRE(run_inproc(out2, N, 0, &c) == 0);
    sq_test_sh(&a, "cat '%s'", out);
    sq_test_sh(&b, "cat '%s'", out2);
    CHECK(a && b && !strcmp(a, b));
    /* A rerun of a finished stage does nothing. */
    REQUIRE(run_inproc(out, N, 0, &c) == 0);
    CHECK_EQ_INT(c.skipped, N);
    CHECK_EQ_INT(c.kept + c.dropped, 0);
    free(a);
    free(b);
    free(out2);
    free_all(kept, nk);
    free_all(dropped, nd);
    free(out);
    free(drop);
}

static char *slurp(const char *path) {
    char *data = NULL;
    size_t len;
    sq_err e;
    return sq_file_read_all(path, &data, &len, &e) ? NULL : data;
}

SQ_TEST(cli_over_http_resumes_after_kill_9_to_the_same_bytes) {
    int fail_mod = 0;
    scripted s;
    scripted_init(&s, reply, &fail_mod);
    s.delay_us = 400;
    char spec[128];
    sq_server *srv = scripted_serve(&s, spec, sizeof spec);
    REQUIRE(srv);
    const char *tmp = sq_test_tmpdir();
    char *ref = sq_path_join(tmp, "ref.jsonl"), *out = sq_path_join(tmp, "out.jsonl");
    enum { N = 600 };
    char args[512];
    snprintf(args, sizeof args, "--model '%s' --chat-template chatml --n-questions %d --chunk 24 --seed 5 --quiet", spec, N);
    REQUIRE(sq_test_sh(NULL, "'%s' qgen %s --out '%s'", sq_test_cli(), args, ref) == 0);
    if (getenv("SQ_TEST_VERBOSE")) sq_test_sh(NULL, "head -c 600 '%s' >&2; head -c 300 '%s/ref.dropped.jsonl' >&2", ref, tmp);
    char *ref_drop = sq_path_join(tmp, "ref.dropped.jsonl");
    int total = sq_test_lines(ref) + sq_test_lines(ref_drop);
    CHECK_EQ_INT(total, N);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' qgen %s --out '%s'", sq_test_cli(), args, out);
    /* killed at random records of the kept file, between its first and its last */
    int kept = sq_test_lines(ref), cut = sq_test_kill_rounds(cmd, out, kept, 3, (uint64_t)getpid());
    CHECK_KILLS_INTERRUPTED(cut, out, kept);
    REQUIRE(sq_test_sh(NULL, "'%s' qgen %s --out '%s'", sq_test_cli(), args, out) == 0);
    char *want = slurp(ref), *got = slurp(out), *out_drop = sq_path_join(tmp, "out.dropped.jsonl");
    char *want_d = slurp(ref_drop), *got_d = slurp(out_drop);
    CHECK(want && got && !strcmp(want, got));
    CHECK(want_d && got_d && !strcmp(want_d, got_d));
    /* Shards: the union holds every id once; duplicates are decided within a shard. */
    char *s0 = sq_path_join(tmp, "s0.jsonl"), *s1 = sq_path_join(tmp, "s1.jsonl"), *ids = NULL;
    REQUIRE(sq_test_sh(NULL, "'%s' qgen %s --out '%s' --shard 0/2", sq_test_cli(), args, s0) == 0);
    REQUIRE(sq_test_sh(NULL, "'%s' qgen %s --out '%s' --shard 1/2", sq_test_cli(), args, s1) == 0);
    sq_test_sh(&ids, "cat '%s/s0.jsonl' '%s/s0.dropped.jsonl' '%s/s1.jsonl' '%s/s1.dropped.jsonl' | "
                     "sed 's/.*\"id\":\"\\([^\"]*\\)\".*/\\1/' | sort -u | wc -l", tmp, tmp, tmp, tmp);
    CHECK(ids && atoi(ids) == N);
    free(ids);
    free(s0);
    free(s1);
    free(want);
    free(got);
    free(want_d);
    free(got_d);
    free(out_drop);
    free(ref_drop);
    free(ref);
    free(out);
    sq_server_close(srv);
}

SQ_TEST(server_500s_are_failed_records_that_a_rerun_retries) {
    int fail_mod = 5;
    scripted s;
    scripted_init(&s, reply, &fail_mod);
    char spec[128];
    sq_server *srv = scripted_serve(&s, spec, sizeof spec);
    REQUIRE(srv);
    const char *tmp = sq_test_tmpdir();
    char *out = sq_path_join(tmp, "f.jsonl"), *failed = sq_path_join(tmp, "failed.jsonl"), *err = NULL;
    char args[512];
    snprintf(args, sizeof args, "--model '%s' --chat-template chatml --n-questions 60 --max-retries 0 --seed 2 --out '%s' "
                                "--failed '%s'", spec, out, failed);
    int rc = sq_test_sh(&err, "'%s' qgen %s 2>&1", sq_test_cli(), args);
    CHECK(rc != 0);
    CHECKF(err && strstr(err, "failed"), "%s", err ? err : "");
    char *fdrop = sq_path_join(tmp, "f.dropped.jsonl");
    int nf = sq_test_lines(failed), settled = sq_test_lines(out) + sq_test_lines(fdrop);
    CHECKF(nf > 0 && nf + settled == 60, "%d failed, %d settled", nf, settled);
    free(err);
    /* The server heals: the rerun settles exactly the failed ids. */
    fail_mod = 0;
    REQUIRE(sq_test_sh(NULL, "'%s' qgen %s --quiet", sq_test_cli(), args) == 0);
    settled = sq_test_lines(out) + sq_test_lines(fdrop);
    CHECK_EQ_INT(settled, 60);
    free(fdrop);
    sq_server_close(srv);
    free(out);
    free(failed);
}

SQ_TEST(bad_options_are_clear_errors) {
    char *err = NULL;
    const char *tmp = sq_test_tmpdir();
    CHECK(sq_test_sh(&err, "'%s' qgen --model http://127.0.0.1:1/v1#m --n-questions 3 --out '%s/x.jsonl' 2>&1",
                     sq_test_cli(), tmp) != 0);
    CHECKF(err && strstr(err, "--chat-template"), "%s", err ? err : "");
    free(err);
    CHECK(sq_test_sh(&err, "'%s' qgen --model '%s/none' --n-questions 3 --out '%s/x.jsonl' 2>&1", sq_test_cli(), tmp,
                     tmp) != 0);
    CHECKF(err && strstr(err, "none"), "%s", err ? err : "");
    free(err);
    CHECK(sq_test_sh(NULL, "test -e '%s/x.jsonl'", tmp) != 0); /* nothing written */
    CHECK(sq_test_sh(&err, "'%s' qgen --model x --out y 2>&1", sq_test_cli()) == 2);
    free(err);
}

SQ_TEST(local_engine_path) {
    const char *model = sq_test_asset("models/stories260K.gguf");
    if (!model) SKIP("../shared/assets/models not present");
    const char *tmp = sq_test_tmpdir();
    char *out = sq_path_join(tmp, "l.jsonl");
    REQUIRE(sq_test_sh(NULL, "'%s' qgen --model '%s' --chat-template chatml --n-questions 6 --max-tokens 12 --out '%s' "
                             "--threads 1 --quiet", sq_test_cli(), model, out) == 0);
    /* a story model never closes a ChatML user turn: every sample runs into the limit */
    char *ldrop = sq_path_join(tmp, "l.dropped.jsonl");
    CHECK_EQ_INT(sq_test_lines(out) + sq_test_lines(ldrop), 6);
    free(ldrop);
    char *c = NULL;
    sq_test_sh(&c, "grep -c '\"drop_reason\":\"length\"' '%s/l.dropped.jsonl'", tmp);
    CHECK(c && atoi(c) == 6 - sq_test_lines(out));
    free(c);
    free(out);
}
