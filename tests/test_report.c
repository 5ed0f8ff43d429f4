/* The run report: the sections and numbers of report.html for a run directory made by hand,
 * and the page rendered in headless Chromium (screenshot kept in build/report-screenshot.png)
 * with every section present and nothing on the console. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scalequest/run.h"
#include "test.h"

static void write_file(const char *dir, const char *name, const char *text) {
    char *p = sq_path_join(dir, name);
    sq_err e;
    if (!p || sq_file_write_atomic(p, text, strlen(text), &e)) sq_test_fail(__FILE__, __LINE__, "cannot write %s", name);
    free(p);
}

/* A run directory with every file the report reads: 100 questions -> 80 -> 60 -> 60 -> 50. */
static void make_run(const char *dir) {
    sq_buf b = {0};
    for (int i = 0; i < 100; i++)
        sq_buf_printf(&b, "{\"id\": \"q%03d\", \"query\": \"How many apples does Tom have if he has %d and buys %d more?\"}\n", i, i, i % 7);
    write_file(dir, "qgen.jsonl", b.data);
    sq_buf_reset(&b);
    for (int i = 0; i < 80; i++) sq_buf_printf(&b, "{\"id\": \"q%03d\", \"query\": \"q\"}\n", i);
    write_file(dir, "filter_lang.jsonl", b.data);
    sq_buf_reset(&b);
    for (int i = 0; i < 60; i++) sq_buf_printf(&b, "{\"id\": \"q%03d\", \"query\": \"q\", \"verdict\": \"solvable\"}\n", i);
    write_file(dir, "filter_solvable.jsonl", b.data);
    sq_buf_reset(&b);
    for (int i = 60; i < 80; i++) sq_buf_printf(&b, "{\"id\": \"q%03d\", \"verdict\": \"unsolvable\"}\n", i);
    write_file(dir, "filter_solvable.dropped.jsonl", b.data);
    sq_buf_reset(&b);
    for (int i = 0; i < 60; i++) sq_buf_printf(&b, "{\"id\": \"q%03d\", \"difficulty\": %.3f}\n", i, (i % 20) / 20.0);
    write_file(dir, "difficulty_score.jsonl", b.data);
    sq_buf_reset(&b);
    for (int i = 0; i < 50; i++) sq_buf_printf(&b, "{\"id\": \"q%03d\", \"difficulty\": %.3f}\n", i, 0.2 + (i % 16) / 20.0);
    write_file(dir, "difficulty_sample.jsonl", b.data);
    sq_buf_reset(&b);
    for (int i = 0; i < 50; i++)
        sq_buf_printf(&b, "{\"id\": \"q%03d\", \"query\": \"q\", \"responses\": [\"a b c\", \"a b c d e\"], \"rewards\": [%.2f, %.2f], \"reward\": %.2f, \"response\": \"a b c\"}\n",
                      i, 0.5 + i / 100.0, 0.1, 0.5 + i / 100.0);
    write_file(dir, "respond.jsonl", b.data);
    write_file(dir, "reward.jsonl", b.data);
    sq_buf_reset(&b);
    for (int i = 0; i < 50; i++) sq_buf_printf(&b, "{\"id\": \"q%03d\", \"query\": \"one two three\", \"response\": \"a b c\"}\n", i);
    write_file(dir, "export.jsonl", b.data);
    sq_buf_reset(&b);
    for (int i = 0; i < 30; i++) sq_buf_printf(&b, "{\"id\": \"q%03d\", \"rating\": %d}\n", i, 1 + i % 5);
    write_file(dir, "difficulty_judge.jsonl", b.data);
    write_file(dir, "qgen_raw.jsonl", "{\"id\": \"stale\"}\n");
    sq_buf_free(&b);
    char *ev = sq_path_join(dir, "eval");
    sq_err e;
    sq_mkdirs(ev, &e);
    free(ev);
    ev = sq_path_join(dir, "eval_base");
    sq_mkdirs(ev, &e);
    free(ev);
    write_file(dir, "eval/results.json",
               "{\"model\": \"student\", \"benchmarks\": {\"world\": {\"n\": 200, \"correct\": 123, \"accuracy\": 61.5}}, \"average\": 61.5}");
    write_file(dir, "eval_base/results.json",
               "{\"model\": \"base\", \"benchmarks\": {\"world\": {\"n\": 200, \"correct\": 3, \"accuracy\": 1.5}}, \"average\": 1.5}");
    /* the manifest: the chain stages' commands (the funnel reads --in and --out from them) */
    static const char *chain[][2] = {{"qgen", NULL}, {"filter_lang", "qgen"}, {"filter_solvable", "filter_lang"},
                                     {"difficulty_score", "filter_solvable"}, {"difficulty_sample", "difficulty_score"},
                                     {"respond", "difficulty_sample"}, {"reward", "respond"}, {"export", "reward"}};
    cJSON *m = cJSON_CreateObject(), *st = cJSON_AddObjectToObject(m, "stages");
    cJSON_AddObjectToObject(m, "hash_cache");
    for (size_t i = 0; i < sizeof chain / sizeof chain[0]; i++) {
        cJSON *r = cJSON_AddObjectToObject(st, chain[i][0]), *cmds = cJSON_AddArrayToObject(r, "commands");
        cJSON *c = cJSON_CreateArray();
        cJSON_AddItemToArray(cmds, c);
        char f[64];
        cJSON_AddItemToArray(c, cJSON_CreateString(chain[i][0]));
        if (chain[i][1]) {
            snprintf(f, sizeof f, "%s.jsonl", chain[i][1]);
            char *in = sq_path_join(dir, f);
            cJSON_AddItemToArray(c, cJSON_CreateString("--in"));
            cJSON_AddItemToArray(c, cJSON_CreateString(in));
            free(in);
        }
        snprintf(f, sizeof f, "%s.jsonl", chain[i][0]);
        char *out = sq_path_join(dir, f);
        cJSON_AddItemToArray(c, cJSON_CreateString("--out"));
        cJSON_AddItemToArray(c, cJSON_CreateString(out));
        free(out);
        cJSON_AddStringToObject(r, "status", "done");
        cJSON_AddStringToObject(r, "type", i == 0 ? "infer" : "filter");
        cJSON_AddNumberToObject(r, "wall_s", i == 0 ? 7200 : 1);
        cJSON_AddNumberToObject(r, "cpu_s", i == 0 ? 14400 : 1);
        cJSON_AddNumberToObject(r, "tokens_in", 0);
        cJSON_AddNumberToObject(r, "tokens_out", i == 0 ? 4000 : 0);
        cJSON *counts = cJSON_AddObjectToObject(r, "counts");
        cJSON_AddNumberToObject(counts, "x.jsonl", i == 0 ? 100 : 1);
    }
    sq_err e2;
    if (sq_run_manifest_save(dir, m, &e2)) sq_test_fail(__FILE__, __LINE__, "%s", e2.msg);
    cJSON_Delete(m);
}

SQ_TEST(report_has_every_section_and_the_funnel_numbers) {
    const char *dir = sq_test_tmpdir();
    make_run(dir);
    sq_err e;
    REQUIRE(sq_run_report(dir, NULL, &e) == 0);
    char *p = sq_path_join(dir, "report.html"), *html = NULL;
    size_t len;
    REQUIRE(sq_file_read_all(p, &html, &len, &e) == 0);
    const char *ids[] = {"id=\"funnel\"", "id=\"difficulty\"", "id=\"lengths\"", "id=\"ratings\"", "id=\"reward\"",
                         "id=\"eval\"", "id=\"cost\""};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) CHECKF(strstr(html, ids[i]), "missing %s", ids[i]);
    /* 100 -> 80 is 20.0% dropped; 80 -> 60 is 25.0%; 60 -> 50 at difficulty sampling 16.7% */
    CHECK(strstr(html, "<td>filter_lang</td><td>100</td><td>80</td><td>20</td><td>20.0%</td>"));
    CHECK(strstr(html, "<td>filter_solvable</td><td>80</td><td>60</td><td>20</td><td>25.0%</td>"));
    CHECK(strstr(html, "<td>difficulty_sample</td><td>60</td><td>50</td><td>10</td><td>16.7%</td>"));
    /* results.json holds percent; the base is shown beside the student */
    CHECK(strstr(html, "<td>world</td><td>200</td><td>3</td><td>1.5%</td><td>123</td><td>61.5%</td>"));
    /* the cost table: 2 wall hours and 4 core-hours for qgen */
    CHECK(strstr(html, "<td>qgen</td><td>infer</td><td>100</td><td>2.0000</td><td>4.0000</td><td>0</td><td>4000</td>"));
    CHECK(strstr(html, "unsolvable (n=") == NULL); /* verdicts are bars, not a histogram */
    CHECK(strstr(html, ">unsolvable<") && strstr(html, ">solvable<"));
    CHECK(!strstr(html, "http://") || strstr(html, "xmlns=\"http://www.w3.org/2000/svg\""));
    CHECK(!strstr(html, "<script") && !strstr(html, "src=\"http"));
    free(html);
    free(p);
    /* not a run directory */
    CHECK(sq_run_report("/nonexistent-run-dir", NULL, &e) == SQ_ENOTFOUND && strstr(e.msg, "manifest.json"));
}

SQ_TEST(report_renders_in_headless_chromium_without_console_errors) {
    if (sq_test_sh(NULL, "command -v chromium >/dev/null 2>&1") != 0) {
        sq_test_skip("chromium is not installed (scripts/install-deps.sh installs it)");
        return;
    }
    const char *dir = sq_test_tmpdir();
    make_run(dir);
    sq_err e;
    REQUIRE(sq_run_report(dir, NULL, &e) == 0);
    char *log = NULL, *dom = NULL;
    const char *flags = "--headless --no-sandbox --disable-gpu --hide-scrollbars --enable-logging=stderr --v=0";
    int rc = sq_test_sh(&log, "timeout 120 chromium %s --window-size=1100,4200 --screenshot=build/report-screenshot.png "
                              "'file://%s/report.html' 2>&1", flags, dir);
    CHECKF(rc == 0, "chromium exited with %d", rc);
    CHECKF(log && !strstr(log, ":CONSOLE"), "console messages: %s", log ? strstr(log, ":CONSOLE") : "");
    CHECK(access("build/report-screenshot.png", R_OK) == 0);
    rc = sq_test_sh(&dom, "timeout 120 chromium %s --dump-dom 'file://%s/report.html' 2>/dev/null", flags, dir);
    CHECK(rc == 0 && dom);
    const char *want[] = {"<h2>Funnel</h2>", "<h2>Difficulty</h2>", "<h2>Lengths</h2>", "<h2>Solvability and difficulty ratings</h2>",
                          "<h2>Reward scores</h2>", "<h2>Evaluation</h2>", "<h2>Cost</h2>", "<svg"};
    for (size_t i = 0; dom && i < sizeof want / sizeof want[0]; i++) CHECKF(strstr(dom, want[i]), "rendered page lacks %s", want[i]);
    free(log);
    free(dom);
}
