/* The hygiene stages in the runner's chain: dedup and decontaminate sit between the filters and
 * difficulty scoring in the default plan, decontaminate checks against the eval stage's own
 * benchmarks (a NAME=PATH eval set included), and such a set drops exactly the questions that
 * are in it. */
#include <stdlib.h>
#include <string.h>

#include "scalequest/run.h"
#include "test.h"

static int has_args(const sq_run_cmd *c, const char *flag, const char *value) {
    for (int a = 0; a + 1 < c->argc; a++)
        if (!strcmp(c->argv[a], flag) && !strcmp(c->argv[a + 1], value)) return 1;
    return 0;
}

SQ_TEST(default_chain_dedups_and_decontaminates_against_the_eval_set) {
    const char *text = "run_dir: /tmp/r\nmodels:\n  solver: /m/solver\n  responder: /m/solver\n"
                       "stages:\n  eval:\n    options: {benchmarks: \"world={run_dir}/test.jsonl,gsm8k\", data-dir: /d}\n";
    sq_run_config c;
    sq_err e;
    REQUIRE(sq_run_config_parse(&c, "c.yaml", text, strlen(text), &e) == 0);
    sq_run_plan p;
    REQUIRE(sq_run_plan_build(&p, &c, &e) == 0);
    int fs = sq_run_plan_find(&p, "filter_solvable"), dd = sq_run_plan_find(&p, "dedup"),
        dc = sq_run_plan_find(&p, "decontaminate"), ds = sq_run_plan_find(&p, "difficulty_score");
    REQUIRE(fs >= 0 && dd == fs + 1 && dc == dd + 1 && ds > dc);
    CHECK(p.stages[dd].enabled && p.stages[dc].enabled);
    CHECK(has_args(&p.stages[dd].cmds[0], "--in", "/tmp/r/filter_solvable.jsonl"));
    CHECK(has_args(&p.stages[dc].cmds[0], "--in", "/tmp/r/dedup.jsonl"));
    CHECK(has_args(&p.stages[dc].cmds[0], "--benchmarks", "world=/tmp/r/test.jsonl,gsm8k"));
    CHECK(has_args(&p.stages[dc].cmds[0], "--bench-dir", "/d"));
    CHECK(has_args(&p.stages[ds].cmds[0], "--in", "/tmp/r/decontaminate.jsonl"));
    sq_run_plan_free(&p);
    sq_run_config_free(&c);
}

SQ_TEST(decontaminate_drops_what_a_name_path_eval_set_holds) {
    const char *tmp = sq_test_tmpdir(), *sq = sq_test_cli();
    REQUIRE(sq_test_sh(NULL, "cd '%s' && '%s' world --n 200 --seed 4 --out train.jsonl --quiet && head -n 30 train.jsonl | "
                             "sed 's/\"id\":\"/\"id\":\"test-/' > test.jsonl && '%s' decontaminate --in train.jsonl "
                             "--out kept.jsonl --benchmarks world=test.jsonl --ngram 8 --quiet 2>/dev/null",
                       tmp, sq, sq) == 0);
    char *kept = NULL, *dropped = NULL, *report = NULL;
    REQUIRE(sq_test_sh(&kept, "wc -l < '%s/kept.jsonl'", tmp) == 0);
    REQUIRE(sq_test_sh(&dropped, "grep -c '\"benchmark\":\"world\"' '%s/kept.dropped.jsonl'", tmp) == 0);
    REQUIRE(sq_test_sh(&report, "cat '%s/kept.jsonl.decontam.json'", tmp) == 0);
    /* at least the 30 copied questions go (others may share a 8-gram with them) */
    CHECKF(atoi(dropped) >= 30 && atoi(kept) + atoi(dropped) == 200, "kept %s dropped %s", kept, dropped);
    CHECK(strstr(report, "\"decontaminated\"") && strstr(report, "test.jsonl"));
    free(kept), free(dropped), free(report);
    /* an unknown name without '=' is still an error naming the known ones */
    char *err = NULL;
    CHECK(sq_test_sh(&err, "cd '%s' && '%s' decontaminate --in train.jsonl --out k2.jsonl --benchmarks nope 2>&1", tmp, sq) != 0);
    CHECKF(err && strstr(err, "unknown benchmark \"nope\"") && strstr(err, "NAME=PATH"), "%s", err ? err : "");
    free(err);
}
