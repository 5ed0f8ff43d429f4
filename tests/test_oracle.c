/* oracle.h: the tiny world answering the Figure 9-12 prompts, read back with the same
 * parsers a real model's replies go through, and reached through the backend interface. */
#include <stdlib.h>

#include "scalequest/jsonl.h"
#include "scalequest/judge.h"
#include "scalequest/oracle.h"
#include "test.h"

static sq_backend *open_oracle(const char *spec) {
    sq_backend *b = NULL;
    sq_err e;
    if (sq_pipeline_backend_open(&b, spec, NULL, &e)) {
        sq_test_fail(__FILE__, __LINE__, "open %s: %s", spec, e.msg);
        return NULL;
    }
    return b;
}

static char *ask(sq_backend *b, sq_prompt_kind k, const char *q, uint64_t seed) {
    size_t n = sq_prompt_build(k, q, NULL, 0);
    char *p = malloc(n + 1);
    sq_prompt_build(k, q, p, n + 1);
    char *r = sq_world_oracle_reply(b, p, seed);
    free(p);
    return r;
}

/* The rewrite of a Fig 9/10 reply as a NUL-terminated string (or NULL). */
static char *rewrite(sq_prompt_kind k, const char *reply) {
    const char *q;
    size_t n;
    if (sq_reply_rewrite(k, reply, strlen(reply), &q, &n)) return NULL;
    return sq_strndup(q, n);
}

static int steps_of(const char *q) {
    int steps = 0;
    int64_t a;
    return q && sq_world_parse(q, &a, &steps, NULL) == 0 ? steps : -1;
}

SQ_TEST(story_reader_round_trips_the_world) {
    sq_world_opts o;
    sq_world_opts_default(&o);
    o.max_steps = 6;
    for (int i = 0; i < 300; i++) {
        sq_world_problem p;
        sq_err e;
        REQUIRE(sq_world_generate(&o, 7, (uint64_t)i, &p, &e) == 0);
        sq_story s;
        sq_story_read(p.query, strlen(p.query), 1, &s);
        sq_story_legalize(&s, 16);
        char out[1024];
        sq_story_write(&s, out, sizeof out);
        CHECKF(!strcmp(out, p.query), "problem %d:\n in : %s\n out: %s", i, p.query, out);
        CHECK_EQ_INT(s.n_ev, p.steps);
    }
}

SQ_TEST(oracle_answers_the_four_prompts_on_solvable_questions) {
    sq_backend *b = open_oracle("world:");
    REQUIRE(b);
    sq_world_opts o;
    sq_world_opts_default(&o);
    o.max_steps = 5;
    int counted[7] = {0};
    for (int i = 0; i < 60; i++) {
        sq_world_problem p;
        sq_err e;
        REQUIRE(sq_world_generate(&o, 11, (uint64_t)i, &p, &e) == 0);
        char *r = ask(b, SQ_PROMPT_SOLVABILITY_CHECK, p.query, (uint64_t)i);
        CHECKF(sq_reply_verdict(r, strlen(r)) == SQ_VERDICT_YES, "solvable judged otherwise: %s", r);
        char ans[32];
        snprintf(ans, sizeof ans, "The answer is %lld.", (long long)p.answer);
        CHECKF(strstr(r, ans), "the check's solution misses \"%s\": %s", ans, r);
        free(r);
        r = ask(b, SQ_PROMPT_DIFFICULTY_RATE, p.query, (uint64_t)i);
        int want = p.steps <= 1 ? 1 : p.steps == 2 ? 2 : p.steps == 3 ? 3 : p.steps <= 5 ? 4 : 5;
        CHECK_EQ_INT(sq_reply_rating(r, strlen(r)), want);
        counted[want]++;
        free(r);
        /* Fig 9: several steps stay as they are; one step gets one more */
        r = ask(b, SQ_PROMPT_SOLVABILITY_OPTIMIZE, p.query, (uint64_t)i);
        char *w = rewrite(SQ_PROMPT_SOLVABILITY_OPTIMIZE, r);
        CHECKF(w, "no rewrite in: %s", r);
        if (w && p.steps >= 2) CHECK_EQ_STR(w, p.query);
        if (w && p.steps == 1) CHECK_EQ_INT(steps_of(w), 2);
        free(w);
        free(r);
        /* Fig 10: one more step, the story before it unchanged */
        r = ask(b, SQ_PROMPT_DIFFICULTY_OPTIMIZE, p.query, (uint64_t)i);
        w = rewrite(SQ_PROMPT_DIFFICULTY_OPTIMIZE, r);
        CHECKF(w, "no rewrite in: %s", r);
        if (w) {
            CHECK_EQ_INT(steps_of(w), p.steps + 1);
            const char *hm = strstr(p.query, " How many");
            CHECK(hm && !strncmp(w, p.query, (size_t)(hm - p.query)));
        }
        free(w);
        free(r);
    }
    CHECK(counted[1] > 0 && counted[3] > 0 && counted[4] > 0);
    sq_backend_close(b);
}

SQ_TEST(oracle_repairs_unsolvable_questions) {
    sq_backend *b = open_oracle("world:");
    REQUIRE(b);
    const char *broken[] = {
        "Mia has 5 apples. He buys 3 more apples. How many apples does Mia have now?", /* wrong pronoun */
        "Mia has 5 apples. She sells 9 apples. How many apples does Mia have now?",   /* negative */
        "Leo has 7 coins. He splits his coins into 2 equal groups and keeps one group. How many coins does Leo have now?",
        "Sam has 4 pears. He buys 2 more pears. How many pears does Sam have now?", /* unknown item */
        "Emma has 5 stickers. She buys 2.5 more stickers. How many stickers does Emma have now?",
        "Noah has 6 marbles. He finds 4 more marbles.",                           /* no question */
        "How many cookies are there?",                                            /* nothing but a question */
        "",
        "Lucas has 999999999 balloons.", /* a start no event fits after (found by fuzz_replies) */
        "\xe5\xb0\x8f\xe6\x98\x8e\xe6\x9c\x89 5 \xe4\xb8\xaa\xe8\x8b\xb9\xe6\x9e\x9c\xe3\x80\x82",
    };
    for (size_t i = 0; i < SQ_ARRAY_LEN(broken); i++) {
        const char *q = broken[i];
        CHECKF(steps_of(q) < 0, "case %zu is solvable by the world already", i);
        char *r = ask(b, SQ_PROMPT_SOLVABILITY_CHECK, q, i);
        CHECKF(sq_reply_verdict(r, strlen(r)) == SQ_VERDICT_NO, "case %zu judged otherwise: %s", i, r);
        free(r);
        for (int k = SQ_PROMPT_SOLVABILITY_OPTIMIZE; k <= SQ_PROMPT_DIFFICULTY_OPTIMIZE; k++) {
            r = ask(b, (sq_prompt_kind)k, q, i);
            char *w = rewrite((sq_prompt_kind)k, r);
            CHECKF(w && steps_of(w) >= 1, "case %zu, fig %d: rewrite not solvable: %s", i, 9 + k, r);
            if (w && k == SQ_PROMPT_SOLVABILITY_OPTIMIZE && i <= 2) {
                /* the repair keeps the name and the item the question had */
                CHECK(strstr(w, i == 2 ? "Leo" : "Mia") && strstr(w, i == 2 ? "coins" : "apples"));
            }
            free(w);
            free(r);
        }
        r = ask(b, SQ_PROMPT_DIFFICULTY_RATE, q, i);
        int rating = sq_reply_rating(r, strlen(r));
        CHECK(rating >= 1 && rating <= 5);
        free(r);
    }
    sq_backend_close(b);
}

typedef struct got {
    int calls, choices;
    char text[2][4096];
    char finish[2][16];
} got;

static int on_result(void *user, int i, const sq_gen_result *r) {
    got *g = user;
    g->calls++;
    if (!r->ok) return 0;
    g->choices = r->n_choices;
    for (int c = 0; c < r->n_choices && c < 2; c++) {
        snprintf(g->text[c], sizeof g->text[c], "%s", r->choices[c].text);
        snprintf(g->finish[c], sizeof g->finish[c], "%s", r->choices[c].finish_reason);
    }
    return 0;
}

SQ_TEST(oracle_is_a_backend) {
    sq_backend *b = open_oracle("world:");
    REQUIRE(b);
    CHECK(sq_backend_is_world_oracle(b));
    char *p = sq_prompt_solvability_check("Ava has 3 shells. She finds 4 more shells. How many shells does Ava have now?");
    sq_chat_msg msgs[] = {{"system", "You are a helpful assistant."}, {"user", p}};
    sq_gen_request rq = {.id = "r0", .messages = msgs, .n_messages = 2};
    sq_gen_params_default(&rq.params);
    rq.params.n = 2;
    got g = {0};
    sq_err e;
    REQUIRE(sq_backend_generate(b, &rq, 1, on_result, &g, &e) == 0);
    CHECK_EQ_INT(g.calls, 1);
    CHECK_EQ_INT(g.choices, 2);
    CHECK(sq_reply_verdict(g.text[0], strlen(g.text[0])) == SQ_VERDICT_YES);
    CHECK_EQ_STR(g.finish[0], "stop");
    /* max_tokens cuts the reply (in words) and says so */
    rq.params.n = 1;
    rq.params.max_tokens = 5;
    memset(&g, 0, sizeof g);
    REQUIRE(sq_backend_generate(b, &rq, 1, on_result, &g, &e) == 0);
    CHECK_EQ_STR(g.finish[0], "length");
    CHECK(sq_reply_verdict(g.text[0], strlen(g.text[0])) == SQ_VERDICT_UNKNOWN);
    /* a prompt that is none of the four: a reply no parser accepts */
    sq_gen_request other = {.id = "r1", .prompt = "Write a poem about the sea."};
    sq_gen_params_default(&other.params);
    memset(&g, 0, sizeof g);
    REQUIRE(sq_backend_generate(b, &other, 1, on_result, &g, &e) == 0);
    CHECK(sq_reply_verdict(g.text[0], strlen(g.text[0])) == SQ_VERDICT_UNKNOWN);
    CHECK(sq_reply_rating(g.text[0], strlen(g.text[0])) == 0);
    CHECK(sq_reply_rewrite(SQ_PROMPT_SOLVABILITY_OPTIMIZE, g.text[0], strlen(g.text[0]), NULL, NULL) == SQ_ENOTFOUND);
    free(p);
    sq_backend_close(b);
    /* other specs fall through to sq_backend_open */
    sq_backend *x = NULL;
    CHECK(sq_pipeline_backend_open(&x, "/nonexistent/model.gguf", NULL, &e) != 0 && !x);
}

SQ_TEST(oracle_learns_the_world_from_its_training_file) {
    char *train = sq_path_join(sq_test_tmpdir(), "train.jsonl");
    FILE *f = fopen(train, "w");
    sq_world_opts o;
    sq_world_opts_default(&o);
    snprintf(o.ops, sizeof o.ops, "as");
    o.max_number = 9;
    for (int i = 0; i < 50; i++) {
        sq_world_problem p;
        sq_err e;
        REQUIRE(sq_world_generate(&o, 3, (uint64_t)i, &p, &e) == 0);
        fprintf(f, "{\"id\":\"%s\",\"query\":\"%s\"}\n", p.id, p.query);
    }
    fclose(f);
    char spec[600];
    snprintf(spec, sizeof spec, "world:%s", train);
    sq_backend *b = open_oracle(spec);
    REQUIRE(b);
    /* every added step uses only a/s with numbers <= 9 */
    for (int i = 0; i < 40; i++) {
        char *r = ask(b, SQ_PROMPT_DIFFICULTY_OPTIMIZE, "Zoe has 30 cards. She buys 2 more cards. How many cards does Zoe have now?", (uint64_t)i);
        char *w = rewrite(SQ_PROMPT_DIFFICULTY_OPTIMIZE, r);
        REQUIRE(w);
        CHECKF(!strstr(w, "boxes") && !strstr(w, "doubles") && !strstr(w, "triples") && !strstr(w, "splits"), "%s", w);
        const char *last = strstr(w, "cards. She ") ? strrchr(w, '.') : NULL;
        (void)last;
        CHECK_EQ_INT(steps_of(w), 2);
        free(w);
        free(r);
    }
    sq_backend_close(b);
    sq_err e;
    sq_backend *x = NULL;
    CHECK(sq_pipeline_backend_open(&x, "world:/nonexistent/train.jsonl", NULL, &e) != 0 && !x);
    f = fopen(train, "w");
    fputs("{\"id\":\"a\",\"query\":\"What is 2+2?\"}\n", f);
    fclose(f);
    CHECK(sq_pipeline_backend_open(&x, spec, NULL, &e) == SQ_EPARSE && !x);
    CHECKF(strstr(e.msg, "no world problem"), "%s", e.msg);
    free(train);
}
