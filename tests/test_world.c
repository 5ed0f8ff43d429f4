/* world: generated problems parse back to their own answers; ids are stable; the grammar
 * rejects near misses; the CLI writes JSONL. */
#include <stdlib.h>

#include "scalequest/world.h"
#include "test.h"

SQ_TEST(generated_problems_parse_to_their_answers) {
    sq_world_opts o;
    sq_world_opts_default(&o);
    o.max_steps = 6;
    sq_err e;
    int seen_ops[128] = {0};
    for (int i = 0; i < 2000; i++) {
        sq_world_problem p;
        REQUIRE(sq_world_generate(&o, 9, (uint64_t)i, &p, &e) == 0);
        int64_t ans = -1, ans2 = -1;
        int steps = 0;
        CHECKF(sq_world_parse(p.query, &ans, &steps, &e) == 0, "%s: %s", p.query, e.msg);
        CHECK_EQ_INT(ans, p.answer);
        CHECK_EQ_INT(steps, p.steps);
        CHECK(p.answer > 0);
        CHECK(sq_world_extract_answer(p.response, &ans2) == 0 && ans2 == p.answer);
        char want[64];
        snprintf(want, sizeof want, "The answer is %lld.\n\\boxed{%lld}", (long long)p.answer, (long long)p.answer);
        CHECK(strstr(p.response, want) != NULL);
        for (const char *c = p.ops_used; *c; c++) seen_ops[(int)*c]++;
        if (sq_test_failed_now()) break;
    }
    for (const char *c = "asbmd"; *c; c++) CHECKF(seen_ops[(int)*c] > 50, "operation %c used %d times", *c, seen_ops[(int)*c]);
}

SQ_TEST(ids_are_stable_and_knobs_apply) {
    sq_world_opts o;
    sq_world_opts_default(&o);
    sq_world_problem a, b;
    sq_err e;
    REQUIRE(sq_world_generate(&o, 1, 42, &a, &e) == 0);
    REQUIRE(sq_world_generate(&o, 1, 42, &b, &e) == 0);
    CHECK_EQ_STR(a.query, b.query);
    CHECK_EQ_STR(a.id, "world-1-42");
    REQUIRE(sq_world_generate(&o, 2, 42, &b, &e) == 0);
    CHECK(strcmp(a.query, b.query) != 0);
    o.min_steps = o.max_steps = 4;
    snprintf(o.ops, sizeof o.ops, "a");
    o.max_number = 9;
    for (int i = 0; i < 100; i++) {
        REQUIRE(sq_world_generate(&o, 3, (uint64_t)i, &a, &e) == 0);
        CHECK_EQ_STR(a.ops_used, "aaaa");
        CHECK(a.answer >= 10 && a.answer <= 45);
    }
    snprintf(o.ops, sizeof o.ops, "sx");
    CHECK(sq_world_opts_check(&o, &e) == SQ_EINVAL);
}

SQ_TEST(grammar_rejects_near_misses) {
    sq_err e;
    int64_t ans;
    const char *good = "Mia has 12 apples. She buys 5 more apples. How many apples does Mia have now?";
    REQUIRE(sq_world_parse(good, &ans, NULL, &e) == 0);
    CHECK_EQ_INT(ans, 17);
    const char *bad[] = {
        "Mia has 12 apples. He buys 5 more apples. How many apples does Mia have now?",      /* pronoun */
        "Mia has 12 apples. She buys 5 more pears. How many apples does Mia have now?",      /* item */
        "Mia has 12 apples. She loses 12 apples. How many apples does Mia have now?",        /* reaches 0 */
        "Mia has 12 apples. She splits her apples into 5 equal groups and keeps one group. How many apples does Mia have now?",
        "Mia has 12 apples. How many apples does Mia have now?",                             /* no event */
        "Mia has 12 apples. She buys 5 more apples.",                                        /* no question */
        "Mia has 12 apples. She buys 5 more apples. How many apples does Liam have now?",    /* name */
        "Mia has 12 apples. She buys 5 more apples. How many apples does Mia have now? Yes.", /* trailing */
        "Zed has 12 apples. He buys 5 more apples. How many apples does Zed have now?",      /* unknown name */
    };
    for (size_t i = 0; i < SQ_ARRAY_LEN(bad); i++) CHECKF(sq_world_parse(bad[i], &ans, NULL, &e) == SQ_EPARSE, "accepted: %s", bad[i]);
    CHECK(strstr(e.msg, "sentence 1") != NULL);
}

SQ_TEST(cli_writes_jsonl) {
    char *out = NULL;
    const char *dir = sq_test_tmpdir();
    REQUIRE(sq_test_sh(NULL, "%s world --n 5 --seed 4 --out %s/w.jsonl", sq_test_cli(), dir) == 0);
    REQUIRE(sq_test_sh(&out, "cat %s/w.jsonl", dir) == 0);
    REQUIRE(out);
    int lines = 0;
    for (char *p = out; *p; p++) lines += *p == '\n';
    CHECK_EQ_INT(lines, 5);
    CHECK(strstr(out, "\"id\":\"world-4-0\"") != NULL);
    CHECK(strstr(out, "\"query\":") && strstr(out, "\"response\":") && strstr(out, "\"answer\":"));
    free(out);
    CHECK(sq_test_sh(NULL, "%s world --n 5 --ops q 2>/dev/null", sq_test_cli()) == 2);
}
