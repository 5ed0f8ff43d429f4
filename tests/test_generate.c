/* scalequest generate: end to end on stories260K (GGUF with its vocabulary), output
 * format, reproducibility, resume after kill -9, and clear errors on bad input. */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "scalequest/jsonl.h"
#include "test.h"

static const char *model(void) { return sq_test_asset("models/stories260K.gguf"); }

static char *path_in(const char *name) { return sq_path_join(sq_test_tmpdir(), name); }

static void write_prompts(const char *path, int n) {
    FILE *f = fopen(path, "w");
    const char *starts[] = {"Once upon a time", "Lily saw a", "The dog", "One day, Tom", "She was happy"};
    for (int i = 0; i < n; i++) fprintf(f, "{\"id\":\"p%03d\",\"prompt\":\"%s\"}\n", i, starts[i % 5]);
    fclose(f);
}

SQ_TEST(greedy_from_bos_matches_reference) {
    if (!model()) SKIP("../shared/assets/models not present");
    char *in = path_in("e.jsonl"), *out = path_in("eo.jsonl");
    FILE *f = fopen(in, "w");
    fputs("{\"id\":\"bos-only\",\"prompt\":\"\"}\n", f);
    fclose(f);
    int rc = sq_test_sh(NULL, "'%s' generate --model '%s' --in '%s' --out '%s' --temperature 0 --max-tokens 12 "
                              "--logprobs --quiet", sq_test_cli(), model(), in, out);
    REQUIRE(rc == 0);
    sq_jsonl_reader *r;
    sq_err e;
    REQUIRE(sq_jsonl_open(&r, out, 0, &e) == 0);
    cJSON *rec;
    REQUIRE(sq_jsonl_next(r, &rec, &e) == 1);
    /* The reference continuation of BOS (stories260K-expected.txt: 403 407 261 378 ...). */
    const cJSON *ids = cJSON_GetArrayItem(sq_rec_array(rec, "token_ids"), 0);
    int expect[12] = {403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421};
    REQUIRE(cJSON_GetArraySize(ids) == 12);
    for (int i = 0; i < 12; i++) CHECK_EQ_INT(cJSON_GetArrayItem(ids, i)->valueint, expect[i]);
    const cJSON *texts = sq_rec_array(rec, "completions");
    CHECK(strncmp(cJSON_GetArrayItem(texts, 0)->valuestring, " Once upon a time, there was", 28) == 0);
    CHECK_EQ_STR(cJSON_GetArrayItem(sq_rec_array(rec, "finish_reasons"), 0)->valuestring, "length");
    cJSON_Delete(rec);
    sq_jsonl_close(r);
    free(in);
    free(out);
}

SQ_TEST(stop_string_and_samples) {
    if (!model()) SKIP("../shared/assets/models not present");
    char *in = path_in("p.jsonl"), *out = path_in("o.jsonl");
    write_prompts(in, 3);
    REQUIRE(sq_test_sh(NULL, "'%s' generate --model '%s' --in '%s' --out '%s' --n 3 --temperature 0.8 --top-p 0.95 "
                             "--max-tokens 40 --stop . --quiet", sq_test_cli(), model(), in, out) == 0);
    sq_jsonl_reader *r;
    sq_err e;
    REQUIRE(sq_jsonl_open(&r, out, 0, &e) == 0);
    cJSON *rec;
    int n = 0;
    while (sq_jsonl_next(r, &rec, &e) == 1) {
        n++;
        const cJSON *texts = sq_rec_array(rec, "completions"), *fr = sq_rec_array(rec, "finish_reasons");
        CHECK_EQ_INT(cJSON_GetArraySize(texts), 3);
        for (int k = 0; k < 3; k++) {
            const char *t = cJSON_GetArrayItem(texts, k)->valuestring;
            const char *why = cJSON_GetArrayItem(fr, k)->valuestring;
            CHECKF(strchr(t, '.') == NULL, "stop string left in \"%s\"", t);
            CHECK(!strcmp(why, "stop") || !strcmp(why, "length"));
        }
        CHECK(sq_rec_array(rec, "token_ids") == NULL); /* only with --logprobs */
        cJSON_Delete(rec);
    }
    CHECK_EQ_INT(n, 3);
    sq_jsonl_close(r);
    free(in);
    free(out);
}

/* Killed with SIGKILL mid-run and started again, the output ends up holding every id once,
 * and the same records as a run never interrupted (seeds come from --seed and the id). */
SQ_TEST(resume_after_kill_matches_uninterrupted_run) {
    if (!model()) SKIP("../shared/assets/models not present");
    char *in = path_in("p.jsonl"), *ref = path_in("ref.jsonl"), *out = path_in("out.jsonl");
    write_prompts(in, 30);
    const char *args = "--temperature 0.9 --max-tokens 60 --seed 5 --batch 8 --quiet";
    REQUIRE(sq_test_sh(NULL, "'%s' generate --model '%s' --in '%s' --out '%s' %s", sq_test_cli(), model(), in, ref,
                       args) == 0);
    /* Start, wait for some output, kill -9. */
    int killed = 0;
    for (int attempt = 0; attempt < 3 && !killed; attempt++) {
        unlink(out);
        char *pid_s = NULL;
        sq_test_sh(&pid_s, "'%s' generate --model '%s' --in '%s' --out '%s' %s >/dev/null 2>&1 & echo $!",
                   sq_test_cli(), model(), in, out, args);
        REQUIRE(pid_s);
        pid_t pid = (pid_t)atol(pid_s);
        free(pid_s);
        for (int i = 0; i < 400; i++) {
            char *c = NULL;
            sq_test_sh(&c, "cat '%s' 2>/dev/null | wc -l", out);
            long lines = c ? atol(c) : 0;
            free(c);
            if (lines >= 3) break;
            usleep(10000);
        }
        killed = kill(pid, SIGKILL) == 0;
        sq_test_sh(NULL, "while kill -0 %d 2>/dev/null; do sleep 0.05; done", (int)pid);
        char *c = NULL;
        sq_test_sh(&c, "wc -l < '%s'", out);
        if (c && atol(c) >= 30) killed = 0; /* finished before the kill: try again */
        free(c);
    }
    CHECKF(killed, "could not kill a run before it finished");
    REQUIRE(sq_test_sh(NULL, "'%s' generate --model '%s' --in '%s' --out '%s' %s", sq_test_cli(), model(), in, out,
                       args) == 0);
    /* committed in input order, so the resumed file is byte for byte the uninterrupted one */
    char *a = NULL, *b = NULL;
    sq_test_sh(&a, "cat '%s'", ref);
    sq_test_sh(&b, "cat '%s'", out);
    REQUIRE(a && b && *a);
    CHECK(strcmp(a, b) == 0);
    char *dups = NULL;
    sq_test_sh(&dups, "grep -o '\"id\":\"p[0-9]*\"' '%s' | sort | uniq -d | wc -l", out);
    CHECK(dups && atol(dups) == 0);
    free(dups);
    free(a);
    free(b);
    free(in);
    free(ref);
    free(out);
}

SQ_TEST(bad_input_is_a_clear_error) {
    if (!model()) SKIP("../shared/assets/models not present");
    char *in = path_in("bad.jsonl"), *out = path_in("bo.jsonl");
    FILE *f = fopen(in, "w");
    fputs("{\"id\":\"a\",\"prompt\":\"hi\"}\n{\"prompt\":\"no id\"}\n", f);
    fclose(f);
    char *msg = NULL;
    int rc = sq_test_sh(&msg, "'%s' generate --model '%s' --in '%s' --out '%s' --quiet 2>&1", sq_test_cli(), model(),
                        in, out);
    CHECK(rc != 0);
    CHECKF(msg && strstr(msg, "bad.jsonl:2") && strstr(msg, "id"), "message: %s", msg ? msg : "(none)");
    free(msg);
    msg = NULL;
    rc = sq_test_sh(&msg, "'%s' generate --model /nonexistent/model.gguf --in '%s' --out '%s' --quiet 2>&1",
                    sq_test_cli(), in, out);
    CHECK(rc != 0);
    CHECKF(msg && strstr(msg, "scalequest: generate:") && strstr(msg, "model.gguf"), "message: %s", msg ? msg : "");
    free(msg);
    free(in);
    free(out);
}

/* An id twice in the input is refused by file and line before anything is written, on every
 * run (a rerun must not slip past it by skipping the first copy as done); a clean input then
 * runs, and a rerun reports as already done exactly the records the output holds. */
SQ_TEST(duplicate_input_id_is_an_error) {
    if (!model()) SKIP("../shared/assets/models not present");
    char *in = path_in("dup.jsonl"), *out = path_in("dupo.jsonl"), *ok = path_in("ok.jsonl");
    FILE *f = fopen(in, "w");
    fputs("{\"id\":\"a\",\"prompt\":\"Once\"}\n{\"id\":\"b\",\"prompt\":\"Tom\"}\n"
          "{\"id\":\"a\",\"prompt\":\"Lily\"}\n{\"id\":\"c\",\"prompt\":\"The\"}\n{\"id\":\"d\",\"prompt\":\"She\"}\n",
          f);
    fclose(f);
    for (int run = 0; run < 2; run++) {
        char *msg = NULL;
        int rc = sq_test_sh(&msg, "'%s' generate --model '%s' --in '%s' --out '%s' --max-tokens 4 --quiet 2>&1",
                            sq_test_cli(), model(), in, out);
        CHECKF(rc != 0, "run %d: a duplicate id was accepted", run + 1);
        CHECKF(msg && strstr(msg, "dup.jsonl:3") && strstr(msg, "\"a\" appears more than once"), "run %d: %s",
               run + 1, msg ? msg : "(none)");
        free(msg);
        char *lines = NULL;
        sq_test_sh(&lines, "cat '%s' 2>/dev/null | wc -l", out);
        CHECKF(lines && atoi(lines) == 0, "run %d: %s lines written before the duplicate was found", run + 1,
               lines ? lines : "?");
        free(lines);
    }
    f = fopen(ok, "w");
    fputs("{\"id\":\"a\",\"prompt\":\"Once\"}\n{\"id\":\"b\",\"prompt\":\"Tom\"}\n{\"id\":\"c\",\"prompt\":\"The\"}\n", f);
    fclose(f);
    REQUIRE(sq_test_sh(NULL, "'%s' generate --model '%s' --in '%s' --out '%s' --max-tokens 4 --quiet", sq_test_cli(),
                       model(), ok, out) == 0);
    char *msg = NULL;
    REQUIRE(sq_test_sh(&msg, "'%s' generate --model '%s' --in '%s' --out '%s' --max-tokens 4 2>&1", sq_test_cli(),
                       model(), ok, out) == 0);
    CHECKF(msg && strstr(msg, "3 in, 0 kept") && strstr(msg, "3 already done"), "rerun said: %s", msg ? msg : "(none)");
    free(msg);
    free(in);
    free(out);
    free(ok);
}

/* Chat records on a model without a chat template fail, saying how to give one (and
 * "failed", not a remote-only "after retries"); --chat-template renders them here. */
SQ_TEST(chat_template_option) {
    if (!model()) SKIP("../shared/assets/models not present");
    char *in = path_in("chat.jsonl"), *out = path_in("chato.jsonl"), *failed = path_in("chatf.jsonl");
    char *out2 = path_in("chato2.jsonl");
    FILE *f = fopen(in, "w");
    fputs("{\"id\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}]}\n", f);
    fclose(f);
    char *msg = NULL;
    int rc = sq_test_sh(&msg, "'%s' generate --model '%s' --in '%s' --out '%s' --failed '%s' --max-tokens 4 2>&1",
                        sq_test_cli(), model(), in, out, failed);
    CHECK(rc != 0);
    CHECKF(msg && strstr(msg, "1 requests failed") && !strstr(msg, "after"), "%s", msg ? msg : "");
    free(msg);
    msg = NULL;
    sq_test_sh(&msg, "cat '%s'", failed);
    CHECKF(msg && strstr(msg, "no chat template") && strstr(msg, "--chat-template"), "%s", msg ? msg : "");
    free(msg);
    msg = NULL;
    rc = sq_test_sh(&msg, "'%s' generate --model '%s' --in '%s' --out '%s' --chat-template chatml --max-tokens 4 "
                          "--temperature 0 --quiet 2>&1", sq_test_cli(), model(), in, out2);
    CHECKF(rc == 0, "%s", msg ? msg : "");
    free(msg);
    msg = NULL;
    sq_test_sh(&msg, "cat '%s'", out2);
    /* "<|im_start|>user\n...<|im_end|>\n<|im_start|>assistant\n" is many more tokens than the text */
    cJSON *rec = msg ? cJSON_Parse(msg) : NULL;
    const cJSON *u = rec ? cJSON_GetObjectItem(rec, "usage") : NULL;
    const cJSON *pt = u ? cJSON_GetObjectItem(u, "prompt_tokens") : NULL;
    CHECKF(pt && pt->valueint > 12, "%s", msg ? msg : "");
    cJSON_Delete(rec);
    free(msg);
    rc = sq_test_sh(NULL, "'%s' generate --model '%s' --in '%s' --out '%s' --chat-template no-such-template "
                          "--quiet 2>/dev/null", sq_test_cli(), model(), in, out);
    CHECK(rc != 0);
    free(in);
    free(out);
    free(out2);
    free(failed);
}

/* max_tokens past the context is said once, not left to a silent "length" stop. */
SQ_TEST(max_tokens_past_the_context_warns) {
    if (!model()) SKIP("../shared/assets/models not present");
    char *in = path_in("mt.jsonl"), *out = path_in("mto.jsonl"), *out2 = path_in("mto2.jsonl");
    write_prompts(in, 2);
    char *msg = NULL;
    int rc = sq_test_sh(&msg, "'%s' generate --model '%s' --in '%s' --out '%s' --ctx 32 --max-tokens 40 --quiet 2>&1",
                        sq_test_cli(), model(), in, out);
    CHECK_EQ_INT(rc, 0);
    CHECKF(msg && strstr(msg, "max_tokens 40 does not fit the context of 32 tokens") && strstr(msg, "--ctx"),
           "%s", msg ? msg : "");
    /* once per run, not once per record */
    int times = 0;
    for (const char *p = msg; p && (p = strstr(p, "does not fit")); p++) times++;
    CHECK_EQ_INT(times, 1);
    free(msg);
    msg = NULL;
    rc = sq_test_sh(&msg, "'%s' generate --model '%s' --in '%s' --out '%s' --ctx 32 --max-tokens 8 --quiet 2>&1",
                    sq_test_cli(), model(), in, out2);
    CHECK_EQ_INT(rc, 0);
    CHECKF(msg && !strstr(msg, "does not fit"), "%s", msg);
    free(msg);
    free(in);
    free(out);
    free(out2);
}

/* An HF folder without a tokenizer: refused naming --tokenizer; with --tokenizer pointing at
 * the same model's GGUF vocabulary it generates what the GGUF itself does. */
SQ_TEST(tokenizer_override_for_a_folder_without_one) {
    const char *hf = sq_test_asset("models/stories260K-hf");
    if (!model() || !hf) SKIP("../shared/assets/models not present");
    char *in = path_in("tk.jsonl"), *o1 = path_in("tk1.jsonl"), *o2 = path_in("tk2.jsonl");
    write_prompts(in, 2);
    char *msg = NULL;
    int rc = sq_test_sh(&msg, "'%s' generate --model '%s' --in '%s' --out '%s' --quiet 2>&1", sq_test_cli(), hf, in, o1);
    CHECK(rc != 0);
    CHECKF(msg && strstr(msg, "--tokenizer"), "%s", msg ? msg : "");
    CHECK(!sq_file_exists(o1));
    free(msg);
    const char *opts = "--temperature 0 --max-tokens 8 --quiet";
    REQUIRE(sq_test_sh(NULL, "'%s' generate --model '%s' --tokenizer '%s' --in '%s' --out '%s' %s", sq_test_cli(), hf,
                       model(), in, o1, opts) == 0);
    REQUIRE(sq_test_sh(NULL, "'%s' generate --model '%s' --in '%s' --out '%s' %s", sq_test_cli(), model(), in, o2,
                       opts) == 0);
    char *a = NULL, *b = NULL;
    REQUIRE(sq_file_read_all(o1, &a, NULL, NULL) == 0 && sq_file_read_all(o2, &b, NULL, NULL) == 0);
    CHECKF(!strcmp(a, b) && strstr(a, "completions"), "folder+tokenizer:\n%s\ngguf:\n%s", a, b);
    free(a);
    free(b);
    free(in);
    free(o1);
    free(o2);
}
