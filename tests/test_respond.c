/* respond: n samples per question in one request, answerless responses dropped and counted,
 * each kept one with its extracted answer; the CoT prompt as messages or rendered here; a
 * server's short answer (fewer choices than n) is a failed request that a rerun retries; bad
 * input names file:line; kill -9 at random moments resumes to the bytes of an uninterrupted
 * run (stories260K through the command). */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "scalequest/jsonl.h"
#include "scalequest/respond.h"
#include "script_backend.h"
#include "test.h"

/* sq_test_tmpdir gives a new folder each call: one per test, kept in TD. */
static char TD[600];
static char *tmp(const char *name) { return sq_path_join(TD, name); }
static void new_tmp(void) { snprintf(TD, sizeof TD, "%s", sq_test_tmpdir()); }

static char *slurp(const char *path) {
    char *data = NULL;
    size_t len;
    sq_err e;
    return sq_file_read_all(path, &data, &len, &e) ? NULL : data;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

SQ_TEST(respond_keeps_answered_responses_and_counts_the_rest) {
    new_tmp();
    char *in = tmp("q.jsonl"), *out = tmp("r.jsonl"), *dropped = tmp("r.dropped.jsonl");
    write_file(in, "{\"id\":\"a\",\"query\":\"What is 2+3? say:5\"}\n"
                   "{\"id\":\"b\",\"query\":\"Hard one, mute\"}\n"
                   "{\"id\":\"c\",\"query\":\"half of it say:7\"}\n"
                   "{\"id\":\"d\",\"question\":\"no query field\"}\n");
    script_backend sb;
    script_init(&sb);
    sq_respond_opts o;
    sq_respond_opts_default(&o);
    o.stage.in = in, o.stage.out = out;
    o.params.n = 4;
    sq_respond_counts c;
    sq_err e = {0};
    sq_progress_set_quiet(1);
    REQUIRE(sq_respond_run(&sb.base, &o, &c, &e) == 0);
    CHECK_EQ_INT(sb.requests, 3); /* one request per question, n samples each */
    CHECK_EQ_INT(sb.last_n, 4);
    CHECK_EQ_INT((int)c.sampled, 12);
    CHECK_EQ_INT((int)c.no_answer, 4 + 2);
    CHECK_EQ_INT((int)c.kept_responses, 4 + 2);
    CHECK_EQ_INT((int)c.questions_without, 1);
    /* the prompt: one user turn, the question then the CoT instruction */
    CHECK_EQ_INT(sb.last_is_chat, 1);
    CHECK_EQ_STR(sb.last, "half of it say:7\n" SQ_COT_INSTRUCTION);
    sq_jsonl_reader *r;
    REQUIRE(sq_jsonl_open(&r, out, 0, &e) == 0);
    cJSON *rec;
    REQUIRE(sq_jsonl_next(r, &rec, &e) == 1);
    CHECK_EQ_STR(sq_rec_id(rec), "a");
    const cJSON *rs = sq_rec_array(rec, "responses"), *as = sq_rec_array(rec, "answers");
    CHECK_EQ_INT(cJSON_GetArraySize(rs), 4);
    for (int k = 0; k < 4; k++)
        CHECK_EQ_STR(cJSON_GetArrayItem(as, k)->valuestring, "5");
    CHECK_EQ_STR(cJSON_GetArrayItem(rs, 1)->valuestring, "So \\boxed{5}");
    cJSON_Delete(rec);
    REQUIRE(sq_jsonl_next(r, &rec, &e) == 1);
    CHECK_EQ_STR(sq_rec_id(rec), "c");
    CHECK_EQ_INT(cJSON_GetArraySize(sq_rec_array(rec, "responses")), 2);
    double v = 0;
    CHECK(sq_rec_num(rec, "n_no_answer", &v) == 0 && v == 2);
    /* the kept ones are the even samples, in sample order */
    CHECK_EQ_STR(cJSON_GetArrayItem(sq_rec_array(rec, "responses"), 1)->valuestring,
                 "Step 2. The answer is 7.");
    cJSON_Delete(rec);
    CHECK_EQ_INT(sq_jsonl_next(r, &rec, &e), 0);
    sq_jsonl_close(r);
    char *d = slurp(dropped);
    CHECKF(d && strstr(d, "\"b\"") && strstr(d, "no response with a final answer") && strstr(d, "\"d\"") &&
               strstr(d, "no question text"),
           "%s", d ? d : "(none)");
    free(d);
    free(in), free(out), free(dropped);
}

SQ_TEST(respond_renders_a_named_template_and_adds_its_stops) {
    new_tmp();
    char *in = tmp("t.jsonl"), *out = tmp("t.out.jsonl");
    write_file(in, "{\"id\":\"a\",\"query\":\"Q say:1\"}\n");
    script_backend sb;
    script_init(&sb);
    sq_respond_opts o;
    sq_respond_opts_default(&o);
    o.stage.in = in, o.stage.out = out;
    o.chat_template = "chatml";
    o.instruction = "none";
    sq_err e = {0};
    sq_progress_set_quiet(1);
    REQUIRE(sq_respond_run(&sb.base, &o, NULL, &e) == 0);
    CHECK_EQ_INT(sb.last_is_chat, 0);
    CHECKF(strstr(sb.last, "<|im_start|>user\nQ say:1<|im_end|>\n<|im_start|>assistant\n") != NULL, "%s",
           sb.last);
    CHECK(sb.last_n_stop >= 1 && !strcmp(sb.last_stop0, "<|im_end|>"));
    free(in), free(out);
}

/* A server that answers n=5 with fewer choices: each such request is failed (named), nothing
 * reaches the output, the run says so; a rerun against a good server completes it. */
SQ_TEST(respond_fewer_choices_than_n_is_a_failed_request) {
    new_tmp();
    char *in = tmp("f.jsonl"), *out = tmp("f.out.jsonl"), *failed = tmp("f.failed.jsonl");
    write_file(in, "{\"id\":\"a\",\"query\":\"say:1\"}\n{\"id\":\"b\",\"query\":\"say:2\"}\n");
    script_backend sb;
    script_init(&sb);
    sb.fewer = 2;
    sq_respond_opts o;
    sq_respond_opts_default(&o);
    o.stage.in = in, o.stage.out = out, o.stage.failed = failed;
    sq_err e = {0};
    sq_progress_set_quiet(1);
    CHECK_EQ_INT(sq_respond_run(&sb.base, &o, NULL, &e), SQ_EIO);
    char *f = slurp(failed), *got = slurp(out);
    CHECKF(f && strstr(f, "\"a\"") && strstr(f, "3 choices returned for n=5"), "%s", f ? f : "(none)");
    CHECK(!got || !*got);
    free(f), free(got);
    sb.fewer = 0;
    REQUIRE(sq_respond_run(&sb.base, &o, NULL, &e) == 0);
    char *n = NULL;
    sq_test_sh(&n, "grep -c '\"responses\"' '%s'", out);
    CHECK(n && atoi(n) == 2);
    free(n);
    free(in), free(out), free(failed);
}

SQ_TEST(respond_torn_input_names_the_line) {
    new_tmp();
    char *in = tmp("torn.jsonl"), *out = tmp("torn.out.jsonl");
    write_file(in, "{\"id\":\"a\",\"query\":\"say:1\"}\n{\"id\":\"b\",\"query\":\"say");
    script_backend sb;
    script_init(&sb);
    sq_respond_opts o;
    sq_respond_opts_default(&o);
    o.stage.in = in, o.stage.out = out;
    sq_err e = {0};
    sq_progress_set_quiet(1);
    CHECK(sq_respond_run(&sb.base, &o, NULL, &e) != 0);
    CHECKF(strstr(e.msg, "torn.jsonl:2") != NULL, "%s", e.msg);
    free(in), free(out);
}

/* Through the command on a real model: stories260K answers nothing in CoT form, so every
 * question lands in the dropped file; kill -9 at random records of it, then the rerun: each id
 * once, and the bytes of an uninterrupted run. */
SQ_TEST(respond_resumes_after_kill_9_to_the_same_bytes) {
    new_tmp();
    const char *model = sq_test_asset("models/stories260K.gguf");
    if (!model) SKIP("../shared/assets/models not present");
    char *in = tmp("k.jsonl"), *ref = tmp("kref.jsonl"), *out = tmp("kout.jsonl");
    char *refd = tmp("kref.dropped.jsonl"), *outd = tmp("kout.dropped.jsonl");
    FILE *f = fopen(in, "w");
    const char *starts[] = {"Once upon a time", "Lily saw a", "The dog", "One day, Tom", "She was happy"};
    for (int i = 0; i < 24; i++)
        fprintf(f, "{\"id\":\"q%02d\",\"query\":\"%s\"}\n", i, starts[i % 5]);
    fclose(f);
    char args[1024];
    snprintf(args, sizeof args,
             "--model '%s' --in '%s' --n 3 --max-tokens 40 --chat-template none --chunk 2 --seed 3 --threads "
             "1 --quiet",
             model, in);
    REQUIRE(sq_test_sh(NULL, "'%s' respond %s --out '%s'", sq_test_cli(), args, ref) == 0);
    char cmd[1536];
    snprintf(cmd, sizeof cmd, "'%s' respond %s --out '%s'", sq_test_cli(), args, out);
    /* every question is dropped: killed at random records of the dropped file */
    int cut = sq_test_kill_rounds(cmd, outd, 24, 3, (uint64_t)getpid());
    CHECK_KILLS_INTERRUPTED(cut, outd, 24);
    REQUIRE(sq_test_sh(NULL, "'%s' respond %s --out '%s'", sq_test_cli(), args, out) == 0);
    char *a = slurp(refd), *b = slurp(outd);
    REQUIRE(a && b);
    CHECK(strcmp(a, b) == 0);
    char *dups = NULL, *n = NULL;
    sq_test_sh(&dups, "grep -o '\"id\":\"q[0-9]*\"' '%s' | sort | uniq -d | wc -l", outd);
    sq_test_sh(&n, "grep -c 'no response with a final answer' '%s'", outd);
    CHECK(dups && atol(dups) == 0);
    CHECK(n && atol(n) == 24);
    free(dups), free(n), free(a), free(b);
    free(in), free(ref), free(out), free(refd), free(outd);
}
