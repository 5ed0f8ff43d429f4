/* judge.h: the four prompts against the paper's printed text, and the reply parsers
 * (rewrite markers, the strict Yes/No verdict with its comparison table against the
 * official rule, the Figure-12 rating). */
#include <stdlib.h>

#include "scalequest/jsonl.h"
#include "scalequest/judge.h"
#include "test.h"

/* Words of a text, whitespace-normalised, with the format-string escapes "{{" "}}" read as
 * single braces (see prompts.c). */
static char *words(const char *s, size_t n) {
    char *o = malloc(n + 1);
    size_t m = 0;
    int sp = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
            sp = m > 0;
            continue;
        }
        if ((c == '{' || c == '}') && i + 1 < n && s[i + 1] == c) i++;
        if (sp) o[m++] = ' ';
        sp = 0;
        o[m++] = c;
    }
    o[m] = 0;
    return o;
}

/* The figure's text in the paper: from its title line to the "Figure N:" caption. */
static char *paper_figure(const char *paper, const char *title, const char *caption) {
    const char *a = strstr(paper, title);
    if (!a) return NULL;
    a += strlen(title);
    const char *b = strstr(a, caption);
    if (!b) return NULL;
    return words(a, (size_t)(b - a));
}

SQ_TEST(prompts_are_the_papers_word_for_word) {
    const char *path = "../shared/seed/scalequest-paper.txt";
    char *paper = NULL;
    size_t plen;
    sq_err e;
    if (sq_file_read_all(path, &paper, &plen, &e)) SKIP("paper text not present (%s)", path);
    struct {
        sq_prompt_kind k;
        const char *title, *caption, *placeholder;
    } figs[] = {
        {SQ_PROMPT_SOLVABILITY_OPTIMIZE, "Prompts for Problem Solvability Optimization", "Figure 9:", "problem"},
        {SQ_PROMPT_DIFFICULTY_OPTIMIZE, "Prompts for Problem Difficulty Optimization", "Figure 10:", "Problem"},
        {SQ_PROMPT_SOLVABILITY_CHECK, "Prompts for Problem Solvability Check", "Figure 11:", "Problem"},
        {SQ_PROMPT_DIFFICULTY_RATE, "Prompts for Difficulty Classification", "Figure 12:", "Input"},
    };
    for (size_t i = 0; i < SQ_ARRAY_LEN(figs); i++) {
        char *want = paper_figure(paper, figs[i].title, figs[i].caption);
        CHECKF(want, "%s not found in the paper", figs[i].caption);
        if (!want) continue;
        /* with the paper's placeholder word as the question, ours is the paper's text */
        size_t n = sq_prompt_build(figs[i].k, figs[i].placeholder, NULL, 0);
        char *p = malloc(n + 1);
        sq_prompt_build(figs[i].k, figs[i].placeholder, p, n + 1);
        char *got = words(p, n);
        CHECKF(!strcmp(got, want), "%s differs from the paper:\n ours : %s\n paper: %s", figs[i].caption, got, want);
        free(got);
        free(p);
        free(want);
    }
    free(paper);
}

SQ_TEST(prompt_builders_and_identify_round_trip) {
    const char *q = "Tom has 3 apples and buys 4 more. How many apples does he have?";
    char *(*builders[])(const char *) = {sq_prompt_solvability_optimize, sq_prompt_difficulty_optimize,
                                         sq_prompt_solvability_check, sq_prompt_difficulty_rate};
    for (int k = 0; k < SQ_PROMPT_KINDS; k++) {
        char *p = builders[k](q);
        REQUIRE(p);
        CHECK(strstr(p, q) != NULL);
        sq_prompt_kind got;
        const char *qs;
        size_t ql;
        CHECKF(sq_prompt_identify(p, strlen(p), &got, &qs, &ql) == 1, "kind %d not identified", k);
        CHECK_EQ_INT(got, k);
        CHECK(ql == strlen(q) && !memcmp(qs, q, ql));
        /* a chat template's surrounding whitespace is fine; a changed word is not */
        size_t n = strlen(p);
        char *w = malloc(n + 8);
        snprintf(w, n + 8, "\n %s\n\n", p);
        CHECK(sq_prompt_identify(w, strlen(w), &got, &qs, &ql) == 1 && got == (sq_prompt_kind)k);
        w[5] ^= 0x20;
        CHECK(sq_prompt_identify(w, strlen(w), &got, &qs, &ql) == 0);
        free(w);
        /* snprintf-style truncation */
        char small[16];
        size_t full = sq_prompt_build((sq_prompt_kind)k, q, small, sizeof small);
        CHECK_EQ_INT(full, n);
        CHECK_EQ_INT(strlen(small), sizeof small - 1);
        free(p);
    }
    CHECK(sq_prompt_identify("What is 2+2?", 12, NULL, NULL, NULL) == 0);
    CHECK(strstr(sq_prompt_head(SQ_PROMPT_SOLVABILITY_CHECK), "conclude with either 'Yes' or 'No'"));
    CHECK(strstr(sq_prompt_tail(SQ_PROMPT_DIFFICULTY_RATE), "\xe2\x80\x9c" "difficulty" "\xe2\x80\x9d"));
}

/* The >= 30-reply table (tests/judge_verdicts.jsonl): ours must be right on every row; the
 * official rule ("yes" in reply.lower(): keep) is shown where it keeps what it should drop. */
SQ_TEST(verdict_table_ours_right_official_wrong) {
    sq_jsonl_reader *r;
    sq_err e;
    REQUIRE(sq_jsonl_open(&r, "tests/judge_verdicts.jsonl", 0, &e) == 0);
    cJSON *rec;
    int rows = 0, ours_wrong = 0, official_wrong = 0, expect_count[3] = {0};
    while (sq_jsonl_next(r, &rec, &e) == 1) {
        const char *reply = sq_rec_str(rec, "reply"), *expect = sq_rec_str(rec, "expect");
        REQUIRE(reply && expect);
        sq_verdict v = sq_reply_verdict(reply, strlen(reply));
        int official_keep = sq_reply_verdict_official(reply, strlen(reply));
        int should_keep = !strcmp(expect, "yes");
        rows++;
        expect_count[!strcmp(expect, "yes") ? 1 : !strcmp(expect, "no") ? 2 : 0]++;
        if (strcmp(sq_verdict_name(v), expect)) {
            ours_wrong++;
            CHECKF(0, "%s (%s): ours says %s, expected %s", sq_rec_id(rec), sq_rec_str(rec, "note"),
                   sq_verdict_name(v), expect);
        }
        if (official_keep != should_keep) {
            official_wrong++;
            printf("  also %s: official rule %s, verdict is %s (%s)\n", sq_rec_id(rec),
                   official_keep ? "keeps" : "drops", expect, sq_rec_str(rec, "note"));
        }
        cJSON_Delete(rec);
    }
    sq_jsonl_close(r);
    printf("  also verdict table: %d replies (%d yes, %d no, %d unknown); ours wrong on %d, official on %d\n", rows,
           expect_count[1], expect_count[2], expect_count[0], ours_wrong, official_wrong);
    CHECK(rows >= 30);
    CHECK(expect_count[0] >= 5 && expect_count[1] >= 5 && expect_count[2] >= 5);
    CHECK_EQ_INT(ours_wrong, 0);
    CHECK(official_wrong >= 10); /* the table is there to show where that rule fails */
}

static const char *verdict_of(const char *s) { return sq_verdict_name(sq_reply_verdict(s, strlen(s))); }

SQ_TEST(verdict_edge_cases) {
    CHECK_EQ_STR(verdict_of("Yes"), "yes");
    CHECK_EQ_STR(verdict_of("no"), "no");
    CHECK_EQ_STR(verdict_of("**NO**"), "no");
    CHECK_EQ_STR(verdict_of("$\\boxed{\\text{Yes}}$"), "yes");
    CHECK_EQ_STR(verdict_of("Yes or no?"), "unknown");
    CHECK_EQ_STR(verdict_of("yes|no"), "unknown");
    CHECK_EQ_STR(verdict_of("Answer: Yes / No"), "unknown");
    CHECK_EQ_STR(verdict_of("There is no solution"), "unknown");
    CHECK_EQ_STR(verdict_of("No it is not solvable"), "no");
    CHECK_EQ_STR(verdict_of("Not a 'yes'."), "unknown");
    CHECK_EQ_STR(verdict_of("\xe2\x80\x9cNo\xe2\x80\x9d"), "no");
    CHECK_EQ_STR(verdict_of("Noé"), "unknown");
    CHECK_EQ_STR(verdict_of("eyes yesterday nope yess"), "unknown");
    CHECK_EQ_STR(verdict_of("Yes\xe3\x80\x82"), "yes");
    CHECK_EQ_STR(verdict_of("So: yes-or-no? No."), "no");
    CHECK(sq_reply_verdict(NULL, 0) == SQ_VERDICT_UNKNOWN);
    /* a length shorter than the string: only that prefix counts */
    CHECK(sq_reply_verdict("Yes. No", 4) == SQ_VERDICT_YES);
}

static void rewrite_is(sq_prompt_kind k, const char *reply, int rc_want, const char *want, int line) {
    const char *q;
    size_t n;
    int rc = sq_reply_rewrite(k, reply, strlen(reply), &q, &n);
    if (rc != rc_want) {
        sq_test_fail(__FILE__, line, "rc %d, expected %d for reply: %s", rc, rc_want, reply);
        return;
    }
    if (want && (n != strlen(want) || memcmp(q, want, n)))
        sq_test_fail(__FILE__, line, "got \"%.*s\", expected \"%s\"", (int)n, q, want);
}
#define REWRITE(k, reply, rc, want) rewrite_is(k, reply, rc, want, __LINE__)

SQ_TEST(rewrite_markers_tolerant_of_wrapping) {
    const sq_prompt_kind S = SQ_PROMPT_SOLVABILITY_OPTIMIZE, D = SQ_PROMPT_DIFFICULTY_OPTIMIZE;
    const char *Q = "How many apples does Tom have?";
    REWRITE(S, "CREATED QUESTION: x\nVERIFICATION AND MODIFICATION: y\nFINAL QUESTION: How many apples does Tom have?",
            0, Q);
    REWRITE(S, "**FINAL QUESTION:** How many apples does Tom have?", 0, Q);
    REWRITE(S, "**FINAL QUESTION**: \"How many apples does Tom have?\"", 0, Q);
    REWRITE(S, "### Final Question:\n\n[How many apples does Tom have?]\n", 0, Q);
    REWRITE(S, "FINAL  QUESTION :   <How many apples does Tom have?>  ", 0, Q);
    REWRITE(S, "FINAL QUESTION: \xe2\x80\x9cHow many apples does Tom have?\xe2\x80\x9d", 0, Q);
    REWRITE(S, "**FINAL QUESTION: How many apples does Tom have?**", 0, Q);
    REWRITE(S, "FINAL_QUESTION:\n```\nHow many apples does Tom have?\n```", 0, Q);
    REWRITE(S, "FINAL QUESTION: How many apples does Tom have?\n\nNote: I added a step.", 0, Q);
    REWRITE(S, "FINAL QUESTION: How many apples does Tom have?\n---\nThis keeps the numbers.", 0, Q);
    /* the last marker used as one; prose mentions do not count */
    REWRITE(S, "FINAL QUESTION: old\nVERIFICATION: the final question is fine.\nFINAL QUESTION: How many apples "
               "does Tom have?", 0, Q);
    REWRITE(S, "FINAL QUESTION: How many apples does Tom have?\nI think the final question is good.", 0,
            "How many apples does Tom have?\nI think the final question is good.");
    /* a '*' that belongs to the question stays */
    REWRITE(S, "FINAL QUESTION: What is 3*4 + 2*5?", 0, "What is 3*4 + 2*5?");
    REWRITE(S, "FINAL QUESTION: [a] + [b] = 5; find a.", 0, "[a] + [b] = 5; find a.");
    /* no marker, an empty field, the template's own placeholder */
    REWRITE(S, "Here is my improved question: How many apples?", SQ_ENOTFOUND, NULL);
    REWRITE(S, "", SQ_ENOTFOUND, NULL);
    REWRITE(S, "FINAL QUESTION:   \n  ", SQ_EPARSE, NULL);
    REWRITE(S, "FINAL QUESTION: [your final created question]", SQ_EPARSE, NULL);
    REWRITE(S, "FINAL QUESTION: ****", SQ_EPARSE, NULL);
    /* Figure 10 */
    REWRITE(D, "Step 1 #Methods List#: a\nStep 2 #Plan#: b\nStep 3 #Rewritten Problem#: c\nStep 4 #Finally Rewritten "
               "Problem#: How many apples does Tom have?", 0, Q);
    REWRITE(D, "**Step 4 #Finally Rewritten Problem#:**\nHow many apples does Tom have?", 0, Q);
    REWRITE(D, "Step 4: #Finally Rewritten Problem#:\n\n> How many apples does Tom have?", 0,
            "> How many apples does Tom have?");
    REWRITE(D, "#Finally Rewritten Problem#: 'How many apples does Tom have?'", 0, Q);
    REWRITE(D, "Step 4 Finally Rewritten Problem: How many apples does Tom have?", 0, Q);
    REWRITE(D, "Step 3 #Rewritten Problem#: How many apples does Tom have?", SQ_ENOTFOUND, NULL);
    REWRITE(D, "Just provide the #Finally Rewritten Problem# without any explanation", SQ_ENOTFOUND, NULL);
    REWRITE(D, "Step 4 #Finally Rewritten Problem#:", SQ_EPARSE, NULL);
    /* wrong kind */
    const char *q;
    size_t n;
    CHECK(sq_reply_rewrite(SQ_PROMPT_SOLVABILITY_CHECK, "FINAL QUESTION: x", 17, &q, &n) == SQ_EINVAL);
}

static int rating_of(const char *s) { return sq_reply_rating(s, strlen(s)); }

SQ_TEST(rating_json_tolerant) {
    CHECK_EQ_INT(rating_of("{\"intent\": \"x\", \"knowledge\": \"y\", \"difficulty\": \"medium\"}"), 3);
    CHECK_EQ_INT(rating_of("```json\n{\n  \"intent\": \"The user wants to add\",\n  \"difficulty\": \"very easy\"\n}\n```"), 1);
    CHECK_EQ_INT(rating_of("{\xe2\x80\x9c" "difficulty\xe2\x80\x9d: \xe2\x80\x9cvery hard\xe2\x80\x9d}"), 5);
    CHECK_EQ_INT(rating_of("{{\n'difficulty': 'Hard'\n}}"), 4);
    CHECK_EQ_INT(rating_of("**Difficulty**: easy"), 2);
    CHECK_EQ_INT(rating_of("\"difficulty_level\": \"Very_Hard\","), 5);
    CHECK_EQ_INT(rating_of("\"difficulty\": [medium]"), 3);
    CHECK_EQ_INT(rating_of("\"difficulty\": \"very-easy.\""), 1);
    CHECK_EQ_INT(rating_of("difficulty: hard\n"), 4);
    /* the template's placeholder, a range, a number, nothing */
    CHECK_EQ_INT(rating_of("\"difficulty\": \"[very easy/easy/medium/hard/very hard]\""), 0);
    CHECK_EQ_INT(rating_of("\"difficulty\": \"medium to hard\""), 0);
    CHECK_EQ_INT(rating_of("\"difficulty\": 3"), 0);
    CHECK_EQ_INT(rating_of("The difficulty level of the user query is high."), 0);
    CHECK_EQ_INT(rating_of(""), 0);
    /* the last key decides */
    CHECK_EQ_INT(rating_of("\"difficulty\": \"easy\" ... corrected: {\"difficulty\": \"hard\"}"), 4);
    CHECK_EQ_STR(sq_rating_name(5), "very hard");
    CHECK_EQ_STR(sq_rating_name(0), "unknown");
}
