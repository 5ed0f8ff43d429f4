/* dedup and decontaminate: normalisation and shingles, signatures that estimate Jaccard,
 * LSH that finds near duplicates and not distinct questions, the stages' first-occurrence
 * rule and duplicate_of, clear errors on bad input, kill -9 resume to the bytes of an
 * uninterrupted run, planted benchmark questions dropped, shards merged equal one run. */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "scalequest/decontam.h"
#include "scalequest/dedup.h"
#include "scalequest/jsonl.h"
#include "scalequest/minhash.h"
#include "test.h"

SQ_TEST(normal_form_lowercases_and_splits_on_punctuation) {
    sq_buf b = {0};
    CHECK_EQ_INT(sq_text_normalize("  Janet's ducks, lay 16 EGGS!\n", 30, &b), 6);
    CHECK_EQ_STR(b.data, "janet s ducks lay 16 eggs");
    CHECK_EQ_INT(sq_text_normalize("?!", 2, &b), 0);
    CHECK_EQ_STR(b.data, "");
    const char *u = "Caf\xc3\xa9 \xe2\x82\xac" "5";
    sq_text_normalize(u, strlen(u), &b);
    CHECK_EQ_STR(b.data, "caf\xc3\xa9 \xe2\x82\xac" "5");
    sq_buf_free(&b);
}

SQ_TEST(shingles_are_word_and_char_ngrams) {
    sq_minhash_params p;
    sq_minhash_params_default(&p);
    sq_minhasher *m;
    sq_err e;
    REQUIRE(sq_minhasher_new(&m, &p, &e) == 0);
    const uint32_t *h, *sp;
    const char *s = "a bb ccc dd";
    CHECK_EQ_INT(sq_minhash_shingles(m, s, strlen(s), &h, &sp), 3); /* word 2-grams */
    CHECK_EQ_INT(sp[2], 2);
    CHECK_EQ_INT(sp[3], 6); /* "bb ccc" */
    CHECK(h[1] == sq_shingle_hash("bb ccc", 6));
    CHECK_EQ_INT(sq_minhash_shingles(m, "one", 3, &h, &sp), 1); /* shorter than n: the whole */
    CHECK_EQ_INT(sq_minhash_shingles(m, "", 0, &h, &sp), 0);
    sq_minhasher_free(m);
    p.kind = SQ_SHINGLE_CHAR, p.ngram = 3;
    REQUIRE(sq_minhasher_new(&m, &p, &e) == 0);
    const char *u = "\xc3\xa9t\xc3\xa9 x"; /* "été x": 5 code points */
    CHECK_EQ_INT(sq_minhash_shingles(m, u, strlen(u), &h, &sp), 3);
    CHECK_EQ_INT(sp[1], 5); /* "été" is 5 bytes */
    sq_minhasher_free(m);
}

/* Random sets with a known overlap: the estimate is within a few standard errors. */
SQ_TEST(signature_agreement_estimates_jaccard) {
    sq_minhash_params p;
    sq_minhash_params_default(&p);
    p.num_perm = 256;
    sq_minhasher *m;
    sq_err e;
    REQUIRE(sq_minhasher_new(&m, &p, &e) == 0);
    uint32_t a[400], b[400], sa[256], sb[256];
    sq_rng r;
    sq_rng_seed(&r, 7);
    for (int trial = 0; trial < 5; trial++) {
        int shared = 50 + trial * 60; /* of 300 each */
        for (int i = 0; i < 300; i++) {
            a[i] = (uint32_t)sq_rng_u64(&r);
            b[i] = i < shared ? a[i] : (uint32_t)sq_rng_u64(&r);
        }
        sq_minhash_sign(m, a, 300, sa);
        sq_minhash_sign(m, b, 300, sb);
        double j = (double)shared / (600 - shared), est = sq_minhash_jaccard(sa, sb, 256);
        double se = sqrt(j * (1 - j) / 256);
        CHECKF(fabs(est - j) < 4 * se + 0.01, "J %.3f estimated %.3f", j, est);
    }
    sq_minhash_sign(m, a, 0, sa);
    CHECK(sa[0] == UINT32_MAX && sa[255] == UINT32_MAX);
    sq_minhasher_free(m);
}

SQ_TEST(band_choice_matches_datasketch_table) {
    /* values datasketch 2.0.0's _optimal_param gives (printed by its own code) */
    int b, r;
    sq_minhash_optimal_bands(0.5, 128, &b, &r);
    CHECK(b == 25 && r == 5);
    sq_minhash_optimal_bands(0.6, 128, &b, &r);
    CHECK(b == 18 && r == 7);
    sq_minhash_optimal_bands(0.7, 64, &b, &r);
    CHECK(b == 8 && r == 8);
    sq_minhash_optimal_bands(0.8, 256, &b, &r);
    CHECK(b == 17 && r == 15);
}

SQ_TEST(lsh_finds_the_earliest_matching_item_and_grows) {
    sq_minhash_params p;
    sq_minhash_params_default(&p);
    sq_minhasher *m;
    sq_lsh *l;
    sq_err e;
    REQUIRE(sq_minhasher_new(&m, &p, &e) == 0);
    const sq_minhash_params *q = sq_minhasher_params(m);
    REQUIRE(sq_lsh_new(&l, q->bands, q->rows, 0, &e) == 0);
    uint32_t sig[128];
    char text[128];
    sq_buf nb = {0};
    for (int i = 0; i < 5000; i++) { /* distinct texts, more than the first table holds */
        snprintf(text, sizeof text, "item %d has %d apples and %d pears in basket %d", i, i * 7, i * 13, i % 97);
        sq_text_normalize(text, strlen(text), &nb);
        sq_minhash_of_norm(m, nb.data, nb.len, sig);
        if (sq_lsh_query(l, sig) < 0) REQUIRE(sq_lsh_insert(l, sig, (uint32_t)i, &e) == 0);
    }
    snprintf(text, sizeof text, "item %d has %d apples and %d pears in basket %d", 1234, 1234 * 7, 1234 * 13, 1234 % 97);
    sq_text_normalize(text, strlen(text), &nb);
    sq_minhash_of_norm(m, nb.data, nb.len, sig);
    CHECK_EQ_INT(sq_lsh_query(l, sig), 1234);
    /* an unrelated sentence matches nothing */
    const char *other = "the quick brown fox jumps over the lazy dog near the river bank";
    sq_text_normalize(other, strlen(other), &nb);
    sq_minhash_of_norm(m, nb.data, nb.len, sig);
    CHECK_EQ_INT(sq_lsh_query(l, sig), -1);
    sq_buf_free(&nb);
    sq_lsh_free(l);
    sq_minhasher_free(m);
}

/* One folder per case: sq_test_tmpdir gives a fresh one per call. */
static char g_dir[4096];
static void new_dir(void) { snprintf(g_dir, sizeof g_dir, "%s", sq_test_tmpdir()); }
static char *tpath(const char *name) { return sq_path_join(g_dir, name); }

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) fputs(text, f), fclose(f);
}

static char *slurp(const char *path) {
    char *d = NULL;
    size_t n;
    sq_err e;
    return sq_file_read_all(path, &d, &n, &e) ? NULL : d;
}

SQ_TEST(dedup_keeps_first_occurrence_and_names_what_it_duplicates) {
    new_dir();
    char *in = tpath("q.jsonl"), *out = tpath("o.jsonl"), *dr = tpath("o.dropped.jsonl");
    write_file(in,
               "{\"id\":\"a\",\"query\":\"Tom has 3 apples and buys 4 more apples at the shop. How many apples does Tom have now?\"}\n"
               "{\"id\":\"b\",\"query\":\"Sara reads 12 pages a day for a week. How many pages does she read?\"}\n"
               "{\"id\":\"c\",\"query\":\"tom has 3 apples, and buys 4 more apples at the shop -- how many apples does tom have now\"}\n"
               "{\"id\":\"d\",\"query\":\"Tom has 3 apples and buys 4 more apples at the shop. How many apples does Tom have now in total?\"}\n"
               "{\"id\":\"e\",\"query\":\"A train leaves at noon going 60 miles per hour. When does it arrive 180 miles away?\"}\n");
    sq_dedup_opts o;
    sq_dedup_opts_default(&o);
    o.stage.in = in, o.stage.out = out;
    sq_progress_set_quiet(1);
    sq_dedup_counts c;
    sq_err e;
    REQUIRE(sq_dedup_run(&o, &c, &e) == 0);
    CHECK_EQ_INT(c.kept, 3);
    CHECK_EQ_INT(c.exact, 1);
    CHECK_EQ_INT(c.near, 1);
    char *k = slurp(out), *d = slurp(dr);
    REQUIRE(k && d);
    CHECK(strstr(k, "\"id\":\"a\"") && strstr(k, "\"id\":\"b\"") && strstr(k, "\"id\":\"e\""));
    CHECK(strstr(d, "\"id\":\"c\"") && strstr(d, "\"duplicate_of\":\"a\",\"drop_reason\":\"exact duplicate\""));
    CHECK(strstr(d, "\"id\":\"d\"") && strstr(d, "\"duplicate_of\":\"a\",\"drop_reason\":\"near duplicate\""));
    /* a dropped record that already carries the fields dedup writes still gets one of each */
    char *in3 = tpath("q3.jsonl"), *out3 = tpath("o3.jsonl"), *dr3 = tpath("o3.dropped.jsonl");
    write_file(in3, "{\"id\":\"x\",\"query\":\"Same words here\"}\n"
                    "{\"id\":\"y\",\"query\":\"same words, here!\",\"drop_reason\":\"old\",\"duplicate_of\":\"q\"}\n");
    o.stage.in = in3, o.stage.out = out3;
    REQUIRE(sq_dedup_run(&o, &c, &e) == 0);
    char *d3 = slurp(dr3);
    cJSON *j3 = d3 ? cJSON_Parse(d3) : NULL;
    REQUIRE(j3);
    CHECK_EQ_STR(sq_rec_str(j3, "duplicate_of"), "x");
    CHECK_EQ_STR(sq_rec_str(j3, "drop_reason"), "exact duplicate");
    CHECK(d3 && strstr(d3, "old") == NULL && strstr(strstr(d3, "drop_reason") + 1, "drop_reason") == NULL);
    cJSON_Delete(j3);
    free(d3), free(in3), free(out3), free(dr3);
    o.stage.in = in;
    /* exact-only keeps the near duplicate */
    char *out2 = tpath("o2.jsonl");
    o.stage.out = out2, o.exact_only = 1;
    REQUIRE(sq_dedup_run(&o, &c, &e) == 0);
    CHECK_EQ_INT(c.kept, 4);
    free(k), free(d), free(in), free(out), free(dr), free(out2);
}

SQ_TEST(dedup_bad_input_is_a_clear_error) {
    new_dir();
    char *in = tpath("bad.jsonl"), *out = tpath("bo.jsonl");
    write_file(in, "{\"id\":\"a\",\"query\":\"one two three\"}\n{\"id\":\"b\",\"question\":\"x\"}\n");
    char *msg = NULL;
    int st = sq_test_sh(&msg, "'%s' dedup --in '%s' --out '%s' --quiet 2>&1", sq_test_cli(), in, out);
    CHECK(st != 0);
    CHECKF(msg && strstr(msg, "bad.jsonl:2") && strstr(msg, "\"query\""), "message: %s", msg ? msg : "");
    free(msg);
    /* the record before the bad one is settled and committed, as one at a time would (dedup
     * reads one question ahead) */
    char *kept = NULL;
    sq_test_sh(&kept, "cat '%s'", out);
    CHECKF(kept && !strcmp(kept, "{\"id\":\"a\",\"query\":\"one two three\"}\n"), "kept: %s", kept ? kept : "");
    free(kept);
    /* a torn (unterminated, unparsable) line in the middle of the input */
    write_file(in, "{\"id\":\"a\",\"query\":\"one two three\"}\n{\"id\":\"b\",\"query\":\"fo\n{\"id\":\"c\",\"query\":\"x\"}\n");
    unlink(out);
    msg = NULL;
    st = sq_test_sh(&msg, "'%s' dedup --in '%s' --out '%s' --quiet 2>&1", sq_test_cli(), in, out);
    CHECK(st != 0);
    CHECKF(msg && strstr(msg, "bad.jsonl:2"), "message: %s", msg ? msg : "");
    CHECK(access(out, F_OK) != 0); /* nothing written on a bad first run */
    free(msg), free(in), free(out);
}

/* Questions with many near duplicates, so a kill lands while records are being settled. */
static void write_questions(const char *path, int n) {
    FILE *f = fopen(path, "w");
    static const char *who[] = {"Ann", "Bob", "Cyd", "Dee", "Eve", "Fay", "Gus"};
    static const char *what[] = {"apples", "pens", "coins", "books", "cards"};
    for (int i = 0; f && i < n; i++)
        fprintf(f, "{\"id\":\"q%06d\",\"query\":\"%s has %d %s and gets %d more%s. How many %s does %s have?\"}\n", i,
                who[i % 7], i % 50, what[(i / 7) % 5], (i * 7) % 31, i % 3 ? " today" : "", what[(i / 7) % 5], who[i % 7]);
    if (f) fclose(f);
}

static void kill_resume(const char *cmd, const char *outname, const char *args) {
    new_dir();
    char *in = tpath("big.jsonl"), *ref = tpath("ref.jsonl"), *out = tpath(outname);
    write_questions(in, 60000);
    REQUIRE(sq_test_sh(NULL, "'%s' %s --in '%s' --out '%s' %s --quiet", sq_test_cli(), cmd, in, ref, args) == 0);
    int kills = 0, partial = 0;
    for (int attempt = 0; attempt < 4 && !partial; attempt++) {
        char *pid_s = NULL;
        sq_test_sh(&pid_s, "'%s' %s --in '%s' --out '%s' %s --quiet >/dev/null 2>&1 & echo $!", sq_test_cli(), cmd, in,
                   out, args);
        REQUIRE(pid_s);
        pid_t pid = (pid_t)atol(pid_s);
        free(pid_s);
        for (int i = 0; i < 2000; i++) {
            char *c = NULL;
            sq_test_sh(&c, "cat '%s' 2>/dev/null | wc -l", out);
            long lines = c ? atol(c) : 0;
            free(c);
            if (lines >= 200) break;
            usleep(2000);
        }
        if (kill(pid, SIGKILL) == 0) kills++;
        sq_test_sh(NULL, "while kill -0 %d 2>/dev/null; do sleep 0.02; done", (int)pid);
        char *c = NULL;
        sq_test_sh(&c, "wc -l < '%s'", out);
        char *rc = NULL;
        sq_test_sh(&rc, "wc -l < '%s'", ref);
        if (c && rc && atol(c) > 0 && atol(c) < atol(rc)) partial++;
        free(c), free(rc);
    }
    CHECKF(kills > 0 && partial > 0, "%d kills, %d of them mid-run", kills, partial);
    REQUIRE(sq_test_sh(NULL, "'%s' %s --in '%s' --out '%s' %s --quiet", sq_test_cli(), cmd, in, out, args) == 0);
    char *a = NULL, *b = NULL;
    char *refd = tpath("ref.dropped.jsonl");
    sq_test_sh(&a, "md5sum < '%s'; md5sum < '%s'", ref, refd);
    free(refd);
    char *od = NULL;
    sq_test_sh(&od, "echo '%s' | sed 's/.jsonl$/.dropped.jsonl/'", out);
    if (od) od[strcspn(od, "\n")] = 0;
    sq_test_sh(&b, "md5sum < '%s'; md5sum < '%s'", out, od ? od : "");
    CHECKF(a && b && !strcmp(a, b), "resumed outputs differ from an uninterrupted run");
    free(a), free(b), free(od), free(in), free(ref), free(out);
}

SQ_TEST(dedup_resumes_after_kill_9_to_the_same_bytes) { kill_resume("dedup", "kd.jsonl", ""); }

static const char *bench_dir(void) {
    const char *p = sq_test_asset("data/gsm8k_test.jsonl");
    static char dir[4096];
    if (!p) return NULL;
    snprintf(dir, sizeof dir, "%s", p);
    *strrchr(dir, '/') = 0;
    return dir;
}

SQ_TEST(decontaminate_resumes_after_kill_9_to_the_same_bytes) {
    if (!bench_dir()) SKIP("../shared/assets/data not present");
    char args[4200];
    snprintf(args, sizeof args, "--bench-dir '%s' --benchmarks gsm8k", bench_dir());
    kill_resume("decontaminate", "kc.jsonl", args);
}

/* Lightly edited benchmark questions are dropped with the benchmark named; unrelated ones kept. */
SQ_TEST(decontaminate_drops_planted_benchmark_questions) {
    new_dir();
    if (!bench_dir()) SKIP("../shared/assets/data not present");
    char *gsm = sq_path_join(bench_dir(), "gsm8k_test.jsonl"), *m5 = sq_path_join(bench_dir(), "math500_test.jsonl");
    sq_jsonl_reader *r;
    sq_err e;
    cJSON *rec;
    char *in = tpath("train.jsonl"), *out = tpath("clean.jsonl");
    FILE *f = fopen(in, "w");
    REQUIRE(f);
    int n = 0;
    REQUIRE(sq_jsonl_open(&r, gsm, 0, &e) == 0);
    while (sq_jsonl_next(r, &rec, &e) == 1) {
        if (n % 100 == 7) { /* planted with a light edit: a word changed at the front, case, spaces */
            const char *q = sq_rec_str(rec, "question");
            const char *sp = strchr(q, ' ');
            cJSON *o = cJSON_CreateObject();
            char id[32], text[4096];
            snprintf(id, sizeof id, "planted-gsm8k-%d", n);
            snprintf(text, sizeof text, "Suppose%s  ", sp ? sp : q);
            cJSON_AddStringToObject(o, "id", id);
            cJSON_AddStringToObject(o, "query", text);
            char *line = sq_rec_to_line(o);
            fprintf(f, "%s\n", line);
            free(line), cJSON_Delete(o);
        }
        n++;
        cJSON_Delete(rec);
    }
    sq_jsonl_close(r);
    n = 0;
    REQUIRE(sq_jsonl_open(&r, m5, 0, &e) == 0);
    while (sq_jsonl_next(r, &rec, &e) == 1) {
        if (n == 3 || n == 40) { /* verbatim MATH500 problems */
            cJSON *o = cJSON_CreateObject();
            char id[32];
            snprintf(id, sizeof id, "planted-math500-%d", n);
            cJSON_AddStringToObject(o, "id", id);
            cJSON_AddStringToObject(o, "query", sq_rec_str(rec, "problem"));
            char *line = sq_rec_to_line(o);
            fprintf(f, "%s\n", line);
            free(line), cJSON_Delete(o);
        }
        n++;
        cJSON_Delete(rec);
    }
    sq_jsonl_close(r);
    char buf[256];
    for (int i = 0; i < 50; i++) { /* unrelated questions */
        snprintf(buf, sizeof buf, "{\"id\":\"mine-%d\",\"query\":\"Zorblat the wizard stacks %d glowing runes into %d towers of equal height; how tall is each tower?\"}\n",
                 i, i * 12 + 6, 3 + i % 3);
        fputs(buf, f);
    }
    fclose(f);
    sq_decontam_opts o;
    sq_decontam_opts_default(&o);
    o.stage.in = in, o.stage.out = out, o.bench_dir = bench_dir();
    REQUIRE(sq_decontam_run(&o, &e) == 0);
    char *kept = slurp(out), *rep = NULL;
    char *rp = sq_decontam_report_path(out);
    rep = slurp(rp);
    REQUIRE(kept && rep);
    CHECK(strstr(kept, "planted") == NULL);
    int mine = 0;
    for (const char *p = kept; (p = strstr(p, "\"mine-")); p++) mine++;
    CHECK_EQ_INT(mine, 50);
    cJSON *j = cJSON_Parse(rep);
    REQUIRE(j);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "decontaminated")));
    CHECK_EQ_INT(cJSON_GetObjectItem(j, "output_records")->valuedouble, 50);
    const cJSON *b0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "benchmarks"), 0);
    CHECK_EQ_STR(sq_rec_str(b0, "name"), "gsm8k");
    CHECK_EQ_INT(cJSON_GetObjectItem(b0, "dropped")->valuedouble, 14); /* 7, 107, ..., 1307 */
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(b0, "examples")) == 3);
    /* MATH500 problems are in MATH's test set too; they are dropped under the first listed */
    int math_drops = 0;
    const cJSON *bs = cJSON_GetObjectItem(j, "benchmarks");
    for (int k = 1; k < cJSON_GetArraySize(bs); k++) math_drops += (int)cJSON_GetObjectItem(cJSON_GetArrayItem(bs, k), "dropped")->valuedouble;
    CHECK_EQ_INT(math_drops, 2);
    cJSON_Delete(j);
    /* shards run apart and merged hold the same records as one run */
    char *s0 = tpath("s0.jsonl"), *s1 = tpath("s1.jsonl"), *mg = tpath("merged.jsonl");
    for (int s = 0; s < 2; s++)
        REQUIRE(sq_test_sh(NULL, "'%s' decontaminate --in '%s' --out '%s' --bench-dir '%s' --shard %d/2 --quiet",
                           sq_test_cli(), in, s ? s1 : s0, bench_dir(), s) == 0);
    REQUIRE(sq_test_sh(NULL, "'%s' jsonl merge --out '%s' '%s' '%s' >/dev/null 2>&1 || cat '%s' '%s' > '%s'", sq_test_cli(),
                       mg, s0, s1, s0, s1, mg) == 0);
    char *x = NULL, *y = NULL;
    sq_test_sh(&x, "sort '%s' | md5sum", out);
    sq_test_sh(&y, "sort '%s' | md5sum", mg);
    CHECK(x && y && !strcmp(x, y));
    free(x), free(y), free(s0), free(s1), free(mg);
    free(kept), free(rep), free(rp), free(gsm), free(m5), free(in), free(out);
}

/* eval --train-data: a training set without decontaminate's marker is named on stderr and in
 * results.json; decontaminate's output, and export's output made from it, are not; a file
 * changed after decontaminate is named again. */
SQ_TEST(eval_warns_when_the_training_set_was_not_decontaminated) {
    new_dir();
    char *bd = tpath("bench"), *gsm = tpath("bench/gsm8k_test.jsonl"), *mini = tpath("mini.jsonl");
    char *train = tpath("train.jsonl"), *clean = tpath("clean.jsonl"), *final = tpath("final.jsonl");
    char *ev = tpath("ev"), *items = tpath("ev/mini.jsonl"), *results = tpath("ev/results.json");
    REQUIRE(sq_test_sh(NULL, "mkdir -p '%s' '%s'", bd, ev) == 0);
    const char *q0 = "Tom has 7 red apples and buys 3 more at the shop. How many apples does Tom have now?";
    char buf[1024];
    snprintf(buf, sizeof buf, "{\"question\":\"%s\",\"answer\":\"#### 10\"}\n", q0);
    write_file(gsm, buf);
    snprintf(buf, sizeof buf, "{\"question\":\"%s\",\"answer\":\"10\"}\n", q0);
    write_file(mini, buf);
    write_file(items, "{\"id\":\"mini-00000\",\"response\":\"So \\\\boxed{10}.\"}\n");
    snprintf(buf, sizeof buf,
             "{\"id\":\"t0\",\"query\":\"%s\",\"response\":\"10\"}\n"
             "{\"id\":\"t1\",\"query\":\"A box holds 4 pens. How many pens are in 6 boxes?\",\"response\":\"24\"}\n"
             "{\"id\":\"t2\",\"query\":\"Sue reads 12 pages a day. How many pages in a week?\",\"response\":\"84\"}\n",
             q0);
    write_file(train, buf);
    char eval[3000];
    snprintf(eval, sizeof eval, "'%s' eval --regrade --benchmarks 'mini=%s' --out '%s' --train-data", sq_test_cli(),
             mini, ev);
    char *msg = NULL;
    REQUIRE(sq_test_sh(&msg, "%s '%s' 2>&1 >/dev/null", eval, train) == 0);
    CHECKF(msg && strstr(msg, "training set") && strstr(msg, "train.jsonl was not decontaminated") &&
               strstr(msg, "no train.jsonl.decontam.json beside it") && strstr(msg, "scores above"),
           "stderr: %s", msg ? msg : "");
    free(msg);
    char *r = slurp(results);
    CHECKF(r && strstr(r, "\"training_data\":[{\"file\":") && strstr(r, "\"decontaminated\":false") &&
               strstr(r, "\"mini\":{\"n\":1,\"correct\":1"),
           "%s", r ? r : "");
    free(r);
    /* decontaminate, then export: both outputs are vouched for */
    REQUIRE(sq_test_sh(NULL, "'%s' decontaminate --in '%s' --out '%s' --bench-dir '%s' --benchmarks gsm8k --quiet",
                       sq_test_cli(), train, clean, bd) == 0);
    REQUIRE(sq_test_sh(NULL, "'%s' export --in '%s' --out '%s' --quiet", sq_test_cli(), clean, final) == 0);
    char *fm = tpath("final.jsonl.decontam.json"), *m = slurp(fm);
    CHECKF(m && strstr(m, "\"output_name\":\t\"final.jsonl\"") && strstr(m, "\"output_records\":\t2") &&
               strstr(m, "\"carried_from\""),
           "%s", m ? m : "");
    free(m);
    for (int i = 0; i < 2; i++) {
        msg = NULL;
        REQUIRE(sq_test_sh(&msg, "%s '%s' 2>&1 >/dev/null", eval, i ? final : clean) == 0);
        CHECKF(msg && !strstr(msg, "not decontaminated"), "stderr: %s", msg ? msg : "");
        free(msg);
        r = slurp(results);
        CHECKF(r && strstr(r, "\"decontaminated\":true"), "%s", r ? r : "");
        free(r);
    }
    /* a record added afterwards: the marker no longer counts */
    REQUIRE(sq_test_sh(NULL, "tail -n 1 '%s' | sed 's/t1/t9/' >> '%s'", final, final) == 0);
    msg = NULL;
    REQUIRE(sq_test_sh(&msg, "%s '%s' 2>&1 >/dev/null", eval, final) == 0);
    CHECKF(msg && strstr(msg, "final.jsonl was not decontaminated") && strstr(msg, "it has 3 records") &&
               strstr(msg, "counted 2"),
           "stderr: %s", msg ? msg : "");
    free(msg);
    /* exporting an unvouched file removes the stale marker of an earlier export */
    REQUIRE(sq_test_sh(NULL, "'%s' export --in '%s' --out '%s' --quiet", sq_test_cli(), train, final) == 0);
    CHECK(!sq_file_exists(fm));
    /* a training file that cannot be read is an error, not a warning */
    msg = NULL;
    char *missing = tpath("missing.jsonl");
    CHECK(sq_test_sh(&msg, "%s '%s' 2>&1 >/dev/null", eval, missing) != 0);
    CHECKF(msg && strstr(msg, "missing.jsonl"), "stderr: %s", msg ? msg : "");
    free(msg), free(missing);
    free(bd), free(gsm), free(mini), free(train), free(clean), free(final), free(ev), free(items), free(results),
        free(fm);
}
