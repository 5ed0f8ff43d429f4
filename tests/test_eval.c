/* eval: the table from graded items (a scripted model whose answers are known), resume, failed
 * requests counted and retried, --regrade, bad benchmark lists; the real data files and a real
 * model through the command; kill -9 resume to the same bytes. */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "scalequest/cot.h"
#include "scalequest/eval.h"
#include "scalequest/jsonl.h"
#include "script_backend.h"
#include "test.h"

static char TD[600];
static char *tmp(const char *name) { return sq_path_join(TD, name); }
static void new_tmp(void) { snprintf(TD, sizeof TD, "%s", sq_test_tmpdir()); }

static char *slurp(const char *path) {
    char *data = NULL;
    size_t len;
    sq_err e;
    return sq_file_read_all(path, &data, &len, &e) ? NULL : data;
}

SQ_TEST(eval_table_from_graded_items_resume_and_failures) {
    new_tmp();
    char *bench = tmp("b.jsonl"), *out = tmp("ev");
    FILE *f = fopen(bench, "w");
    /* 10 questions: the model says the right answer for 6, a wrong one for 3, and 1 request fails */
    for (int i = 0; i < 10; i++) {
        int gold = 10 + i, said = i < 6 ? gold : gold + 1;
        fprintf(f, "{\"question\":\"Q%d %s say:%d\",\"answer\":\"$%d$\"}\n", i, i == 9 ? "fail" : "", said,
                gold);
    }
    fclose(f);
    char list[1200];
    snprintf(list, sizeof list, "mini=%s", bench);
    script_backend sb;
    script_init(&sb);
    sq_eval_opts o;
    sq_eval_opts_default(&o);
    o.benchmarks = list, o.out_dir = out;
    sq_eval_result res[SQ_EVAL_MAX_BENCH];
    int nr = 0;
    sq_err e = {0};
    sq_progress_set_quiet(1);
    CHECK_EQ_INT(sq_eval_run(&sb.base, &o, res, &nr, &e), SQ_EIO); /* one request failed */
    CHECKF(strstr(e.msg, "1 requests failed"), "%s", e.msg);
    REQUIRE(nr == 1);
    CHECK_EQ_INT((int)res[0].n, 9);
    CHECK_EQ_INT((int)res[0].correct, 6);
    CHECK_EQ_INT((int)res[0].failed, 1);
    CHECK_NEAR(res[0].accuracy, 100.0 * 6 / 9, 1e-9);
    /* greedy, the CoT instruction after the question, the chat stop strings */
    CHECK_EQ_INT(sb.last_is_chat, 1);
    CHECKF(strstr(sb.last, "\n" SQ_COT_INSTRUCTION) != NULL, "%s", sb.last);
    CHECK(sb.last_n_stop >= 1 && !strcmp(sb.last_stop0, "<|im_end|>"));
    char *items = tmp("ev/mini.jsonl"), *results = tmp("ev/results.json");
    char *t = slurp(items);
    CHECKF(t && strstr(t, "\"id\":\"mini-00000\"") && strstr(t, "\"gold\":\"10\"") &&
               strstr(t, "\"extracted\":\"10\"") && strstr(t, "\"correct\":true") &&
               strstr(t, "\"correct\":false"),
           "%s", t ? t : "");
    free(t);
    /* the rerun asks only the failed one again (it fails again: the script says so) */
    int before = sb.requests;
    CHECK_EQ_INT(sq_eval_run(&sb.base, &o, res, &nr, &e), SQ_EIO);
    CHECK_EQ_INT(sb.requests - before, 1);
    CHECK_EQ_INT((int)res[0].correct, 6);
    char *rj = slurp(results);
    CHECKF(rj && strstr(rj, "\"mini\":{\"n\":9,\"correct\":6"), "%s", rj ? rj : "");
    free(rj);
    /* --limit: only the first 4 are counted */
    o.limit = 4;
    REQUIRE(sq_eval_run(&sb.base, &o, res, &nr, &e) == 0);
    CHECK_EQ_INT((int)res[0].n, 4);
    CHECK_EQ_INT((int)res[0].correct, 4);
    /* regrade, no model: the same verdicts */
    o.regrade = 1, o.limit = 0;
    CHECK(sq_eval_run(NULL, &o, res, &nr, &e) == 0);
    CHECK_EQ_INT((int)res[0].correct, 6);
    free(items), free(results), free(bench), free(out);
}

SQ_TEST(eval_bad_benchmark_lists_are_named) {
    new_tmp();
    sq_eval_bench b[SQ_EVAL_MAX_BENCH];
    int n;
    sq_err e;
    CHECK(sq_eval_parse_benchmarks("gsm8k,nope", "d", b, &n, &e) != 0);
    CHECKF(strstr(e.msg, "\"nope\""), "%s", e.msg);
    CHECK(sq_eval_parse_benchmarks("gsm8k,gsm8k", "d", b, &n, &e) != 0);
    CHECK(sq_eval_parse_benchmarks("gsm8k,math500,math,college_math,olympiadbench", "d", b, &n, &e) == 0);
    CHECK_EQ_INT(n, 5);
    CHECK_EQ_STR(b[4].path, "d/olympiadbench_OE_TO_maths_en_COMP.jsonl");
    /* a torn benchmark file: its line named */
    char *bad = tmp("torn.jsonl"), *out = tmp("o"), list[1200];
    FILE *f = fopen(bad, "w");
    fputs("{\"question\":\"q say:1\",\"answer\":\"1\"}\n{\"question\":\"q", f);
    fclose(f);
    snprintf(list, sizeof list, "t=%s", bad);
    script_backend sb;
    script_init(&sb);
    sq_eval_opts o;
    sq_eval_opts_default(&o);
    o.benchmarks = list, o.out_dir = out;
    sq_eval_result res[SQ_EVAL_MAX_BENCH];
    int nr;
    CHECK(sq_eval_run(&sb.base, &o, res, &nr, &e) != 0);
    CHECKF(strstr(e.msg, "torn.jsonl:2"), "%s", e.msg);
    free(bad), free(out);
}

/* The five benchmark files and stories260K through the command: the whole path. */
SQ_TEST(eval_real_model_on_the_five_benchmarks) {
    const char *model = sq_test_asset("models/stories260K.gguf"), *data = sq_test_asset("data");
    if (!model || !data) SKIP("../shared/assets not present");
    new_tmp();
    char *out = tmp("real"), *txt = NULL;
    int rc =
        sq_test_sh(&txt,
                   "'%s' eval --model '%s' --chat-template none --data-dir '%s' --limit 3 --max-tokens 24 "
                   "--out '%s' --threads 1 2>/dev/null",
                   sq_test_cli(), model, data, out);
    CHECK(rc == 0);
    CHECKF(txt && strstr(txt, "| gsm8k | math500 | math | college_math | olympiadbench | avg |") &&
               strstr(txt, "\"olympiadbench\":{\"n\":3"),
           "%s", txt ? txt : "");
    free(txt);
    free(out);
}

SQ_TEST(eval_resumes_after_kill_9_to_the_same_bytes) {
    const char *model = sq_test_asset("models/stories260K.gguf"), *data = sq_test_asset("data");
    if (!model || !data) SKIP("../shared/assets not present");
    new_tmp();
    char *ref = tmp("ref"), *out = tmp("out"), args[1500];
    snprintf(
        args, sizeof args,
        "--model '%s' --chat-template none --data-dir '%s' --benchmarks gsm8k --limit 30 --max-tokens 40 "
        "--batch 2 --threads 1 --quiet",
        model, data);
    REQUIRE(sq_test_sh(NULL, "'%s' eval %s --out '%s' >/dev/null", sq_test_cli(), args, ref) == 0);
    char *outf = tmp("out/gsm8k.jsonl");
    char cmd[1536];
    snprintf(cmd, sizeof cmd, "'%s' eval %s --out '%s'", sq_test_cli(), args, out);
    /* killed at random items of the per-item file, between its first and its last */
    int cut = sq_test_kill_rounds(cmd, outf, 30, 3, (uint64_t)getpid());
    CHECK_KILLS_INTERRUPTED(cut, outf, 30);
    REQUIRE(sq_test_sh(NULL, "'%s' eval %s --out '%s' >/dev/null", sq_test_cli(), args, out) == 0);
    char *reff = tmp("ref/gsm8k.jsonl"), *a = slurp(reff), *b = slurp(outf);
    CHECK(a && b && !strcmp(a, b));
    free(a), free(b), free(reff), free(outf), free(ref), free(out);
}
