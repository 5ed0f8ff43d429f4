/* grade: extraction, normalisation, equivalence, options and bounded behaviour on hostile
 * input. */
#include <stdlib.h>
#include <sys/resource.h>

#include "scalequest/base.h"
#include "scalequest/grade.h"
#include "test.h"

#define EQ(g, p) CHECKF(sq_grade_equal(g, p, NULL) == 1, "expected equal: [%s] [%s]", g, p)
#define NE(g, p) CHECKF(sq_grade_equal(g, p, NULL) == 0, "expected different: [%s] [%s]", g, p)

static void check_extract(const char *resp, const char *want, const char *want_how) {
    const char *how = NULL;
    char *got = sq_grade_extract(resp, NULL, &how);
    CHECKF(got && !strcmp(got, want), "extract [%.60s...]: got [%s], want [%s]", resp, got ? got : "(null)", want);
    if (want_how) CHECKF(how && !strcmp(how, want_how), "extract rule %s, want %s", how ? how : "(null)", want_how);
    free(got);
}

SQ_TEST(extracts_boxed_with_nested_braces) {
    check_extract("so $x = \\boxed{\\frac{1}{2}}$. Checking again, \\boxed{\\frac{\\sqrt{3}}{2}}.", "\\frac{\\sqrt{3}}{2}", "boxed");
    check_extract("\\fbox{42}", "42", "boxed");
    check_extract("roots \\boxed{1} and \\boxed{-2}", "1, -2", "boxed");
    check_extract("\\boxed{1} is wrong, we made an error earlier, so \\boxed{2}", "2", "boxed");
    check_extract("unbalanced \\boxed{3 + {4} and no close", "4", NULL);
}

SQ_TEST(extracts_answer_phrases) {
    check_extract("Work... Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct.", "\\frac{3}{4}", "final_answer");
    check_extract("Natalia sold 48/2 = 24 clips in May.\n#### 72", "72", "gsm8k");
    check_extract("Thus the answer is 17.", "17", "answer_is");
    check_extract("so the final answer is 12,000,023. I hope it is correct.", "12,000,023", "final_answer");
    check_extract("We get $x^2 = 4$, hence $x = 2$.", "x = 2", "latex");
    check_extract("she has 5 apples and eats 2, leaving 3 apples", "3", "last_number");
    char *none = sq_grade_extract("AZYUK2A", NULL, NULL);
    CHECKF(none == NULL, "a digit inside a word is no answer: got [%s]", none);
    free(none);
}

SQ_TEST(gold_formats) {
    char *g = sq_grade_gold("blah <<48/2=24>>\n#### 1,072", SQ_GOLD_GSM8K);
    CHECK_EQ_STR(g, "1072");
    free(g);
    g = sq_grade_gold("so it is $\\boxed{\\dfrac{1}{2}}$.", SQ_GOLD_MATH);
    CHECK_EQ_STR(g, "\\dfrac{1}{2}");
    free(g);
    g = sq_grade_gold("$\\frac{5}{6}$", SQ_GOLD_DOLLARS);
    CHECK_EQ_STR(g, "\\frac{5}{6}");
    free(g);
    g = sq_grade_gold("$2 \\pi$", SQ_GOLD_AUTO);
    CHECK_EQ_STR(g, "2 \\pi");
    free(g);
}

SQ_TEST(normalises_latex_decoration) {
    char *n = sq_grade_normalize("$\\left( \\dfrac{1}{2} \\right)\\!$.");
    CHECK_EQ_STR(n, "( \\frac{1}{2} )");
    free(n);
    n = sq_grade_normalize("10{,}000");
    CHECK_EQ_STR(n, "10000");
    free(n);
    n = sq_grade_normalize("7,425,000");
    CHECK_EQ_STR(n, "7425000");
    free(n);
    n = sq_grade_normalize("(12,102)");
    CHECK_EQ_STR(n, "(12,102)");
    free(n);
    n = sq_grade_normalize("90^\\circ");
    CHECK_EQ_STR(n, "90");
    free(n);
}

SQ_TEST(numbers_fractions_decimals) {
    EQ("\\frac{1}{2}", "0.5");
    EQ("\\frac12", "\\dfrac{1}{2}");
    EQ("\\tfrac{3}{4}", "3/4");
    EQ(".5", "0.5");
    EQ("1 000", "1000");
    EQ("10{,}000", "10000");
    EQ("7,425,000", "7425000");
    EQ("2\\frac{1}{2}", "5/2");
    EQ("3.54e-07", "3.54\\times 10^{-7}");
    EQ("-\\frac{10}{9}", "-10/9");
    EQ("\\$5.00", "5");
    EQ("x = 7", "7");
    EQ("5.", "5");
    NE("1001", "1001.5");
    NE("\\frac{2003}{2}", "1001");
    NE("100000000000000000001", "100000000000000000000");
    EQ("100000000000000000001", "100000000000000000001");
}

SQ_TEST(roots_pi_powers) {
    EQ("\\sqrt{12}", "2\\sqrt{3}");
    EQ("\\sqrt3", "\\sqrt{3}");
    EQ("\\sqrt[3]{27}", "3");
    EQ("2^{10}", "1024");
    EQ("\\frac{9}{4}\\pi", "\\frac{9\\pi}{4}");
    EQ("4.123105625617661", "\\sqrt{17}");
    NE("4\\sqrt{2}", "4");
    NE("2", "\\frac{1+\\sqrt{5}}{2}");
    EQ("5!", "120");
    EQ("\\sin^2 x + \\cos^2 x", "1");
    EQ("\\sum_{k=1}^{10} k", "55");
    EQ("\\sum_{k=1}^{10} k^2", "\\sum_{i=1}^{10} i^2");
    NE("\\sum_{k=1}^{n} k", "\\sum_{k=1}^{n} k + 1");
    EQ("\\prod_{k=1}^{5} k", "5!");
    EQ("\\binom{5}{2}", "10");
    NE("\\dbinom{6}{2}", "10");
}

SQ_TEST(expressions_with_variables) {
    EQ("(x-2)(x+2)", "x^2-4");
    EQ("\\frac{x+2}{7}", "\\frac{x}{7}+\\frac{2}{7}");
    EQ("\\tan^2(y)+1", "\\sec^2(y)");
    EQ("2 \\sin b \\cos a", "2\\cos a \\sin b");
    NE("x+2n+1", "x+1");
    NE("(a+5)(b+2)", "(+5)(b+2)");
    NE("f(x)", "f(y)");
}

SQ_TEST(tuples_intervals_sets) {
    EQ("(1,\\frac{9}{2})", "(1,4.5)");
    NE("(1,2)", "(2,1)");
    NE("[0,1)", "(0,1)");
    NE("[0,1)", "[0,1]");
    EQ("[-1, -\\frac{1}{2}) \\cup (0, \\infty)", "(0,\\infty) \\cup [-1,-\\tfrac12)");
    EQ("\\{1,2,3\\}", "\\{3,1,2\\}");
    EQ("-2, 1", "1, -2");
    NE("1, 2", "1, 3");
    EQ("(1, +\\infty)", "(1,\\infty)");
    NE("(-\\infty, 1)", "(1, \\infty)");
}

SQ_TEST(matrices) {
    EQ("\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix}", "\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}");
    NE("\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix}", "\\begin{pmatrix}1 & 2 \\\\ 3 & 5\\end{pmatrix}");
    NE("\\begin{pmatrix}1 & 2\\end{pmatrix}", "\\begin{pmatrix}1 \\\\ 2\\end{pmatrix}");
    EQ("\\begin{pmatrix}6 & 8 \\\\ 10 & 12\\end{pmatrix}",
       "\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix} + \\begin{pmatrix}5 & 6 \\\\ 7 & 8\\end{pmatrix}");
}

SQ_TEST(equations_inequalities_pm) {
    EQ("2x+4y-3=0", "y=-\\frac{1}{2}x+\\frac{3}{4}");
    EQ("x \\geq 5", "5 \\leq x");
    EQ("x < 1", "-x > -1");
    NE("x < 1", "x > -1");
    NE("x > 5", "x < 5");
    NE("5x - 7y + 11z + 4 = 0", "x + y - z + 2 = 0");
    EQ("1 \\pm \\sqrt{19}", "1+\\sqrt{19}, 1-\\sqrt{19}");
    EQ("\\pm 2021", "\\{-2021, 2021\\}");
    NE("\\pm 2021", "2021");
    EQ("-793 < a < 10", "(-793, 10)");
    NE("7 = 11a+c", "11a+c");
}

SQ_TEST(text_and_units) {
    EQ("10\\text{ units}", "10");
    EQ("125\\textnormal{ miles}", "125 miles");
    EQ("\\text{Evelyn}", "Evelyn");
    EQ("\\text{(C)}", "C");
    EQ("White", "white");
    NE("d", "\\text{E}");
    EQ("15\\mbox{ cm}^2", "15");
    EQ("2x", "2 x");
}

SQ_TEST(percent_option) {
    sq_grade_opts o;
    sq_grade_opts_init(&o);
    CHECK(sq_grade_equal("28\\%", "28", &o));
    CHECK(sq_grade_equal("28\\%", "0.28", &o));
    CHECK(!sq_grade_equal("28", "0.28", &o));
    o.percent = SQ_GRADE_PCT_VALUE;
    CHECK(!sq_grade_equal("28\\%", "28", &o));
    CHECK(sq_grade_equal("28\\%", "0.28", &o));
    o.percent = SQ_GRADE_PCT_DROP;
    CHECK(sq_grade_equal("28\\%", "28", &o));
    CHECK(!sq_grade_equal("28\\%", "0.28", &o));
    CHECK(sq_grade_equal("28 percent", "28\\%", &o));
}

SQ_TEST(tolerance_and_rounding_options) {
    sq_grade_opts o;
    sq_grade_opts_init(&o);
    CHECK(sq_grade_equal("0.30000000000000004", "0.3", &o));
    CHECK(!sq_grade_equal("3.14", "3.15", &o));
    o.rel_tol = 0.01;
    CHECK(sq_grade_equal("3.14", "3.15", &o));
    sq_grade_opts_init(&o);
    CHECK(sq_grade_equal("2.67", "\\frac{8}{3}", &o)); /* a decimal to 2 places that rounds right */
    CHECK(!sq_grade_equal("33.3", "\\frac{100}{3}", &o)); /* one place is not enough */
    o.round_match = -1;
    CHECK(!sq_grade_equal("2.67", "\\frac{8}{3}", &o));
    sq_grade_opts_init(&o);
    CHECK(sq_grade_equal("10, 4, -2", "4, 10, -2", &o));
    o.ordered_lists = 1;
    CHECK(!sq_grade_equal("10, 4, -2", "4, 10, -2", &o));
}

SQ_TEST(response_grading) {
    char *ex = NULL;
    CHECK_EQ_INT(sq_grade_response("#### 18", "She makes 9 * 2 = $18 a day.\nThe answer is 18", NULL, &ex), 1);
    CHECK_EQ_STR(ex, "18");
    free(ex);
    CHECK_EQ_INT(sq_grade_response("\\frac{14}{3}", "so $\\boxed{\\dfrac{14}{3}}$", NULL, NULL), 1);
    CHECK_EQ_INT(sq_grade_response("\\frac{14}{3}", "so $\\boxed{\\dfrac{13}{3}}$", NULL, NULL), 0);
    CHECK_EQ_INT(sq_grade_response("5", "no answer here at all", NULL, NULL), 0);
}

/* ---- bounded on hostile input ---------------------------------------------------------- */

static long rss_kb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static char *repeat(const char *a, int n, const char *mid, const char *b) {
    size_t la = strlen(a), lm = strlen(mid), lb = strlen(b);
    char *s = malloc(la * (size_t)n + lm + lb * (size_t)n + 1);
    if (!s) return NULL;
    char *p = s;
    for (int i = 0; i < n; i++, p += la) memcpy(p, a, la);
    memcpy(p, mid, lm);
    p += lm;
    for (int i = 0; i < n; i++, p += lb) memcpy(p, b, lb);
    *p = 0;
    return s;
}

SQ_TEST(deep_nesting_is_bounded) {
    const int depth = 100000;
    const char *shapes[][3] = {{"{", "1", "}"}, {"(", "1", ")"}, {"\\frac{1}{", "2", "}"}, {"\\sqrt{", "2", "}"},
                               {"\\boxed{", "7", "}"}, {"-", "1", ""}, {"\\left(", "x", "\\right)"}, {"2^{", "2", "}"}};
    for (size_t i = 0; i < SQ_ARRAY_LEN(shapes); i++) {
        char *s = repeat(shapes[i][0], depth, shapes[i][1], shapes[i][2]);
        REQUIRE(s);
        double t0 = sq_now();
        int r = sq_grade_equal(s, s, NULL);
        CHECKF(r == 1, "shape %zu: a deep answer equals itself (string fallback)", i);
        sq_grade_equal(s, "1", NULL);
        char *ex = sq_grade_extract(s, NULL, NULL);
        free(ex);
        CHECKF(sq_now() - t0 < 20, "shape %zu took %.1fs", i, sq_now() - t0);
        free(s);
    }
}

SQ_TEST(unbalanced_and_malformed_input) {
    const char *bad[] = {"\\boxed{", "{{{{", "}}}}", "\\frac{", "\\frac", "\\sqrt[", "(((", ")))", "\\begin{pmatrix}1 &",
                         "$", "$$", "\\", "^^^", "1/0", "0/0", "\\left(", "x = = =", "\\boxed{\\boxed{", ",,,,", "|||",
                         "\\{1, 2", "[0,1", "\\text{", "10^{-", "e^{e^{e^{e^{e^{e^{9}}}}}}", "", " "};
    for (size_t i = 0; i < SQ_ARRAY_LEN(bad); i++) {
        for (size_t j = 0; j < SQ_ARRAY_LEN(bad); j++) sq_grade_equal(bad[i], bad[j], NULL);
        char *ex = sq_grade_extract(bad[i], NULL, NULL);
        free(ex);
        char *n = sq_grade_normalize(bad[i]);
        CHECK(n != NULL);
        free(n);
    }
    NE("1/0", "1/0 + 1");
    CHECK(sq_grade_equal(NULL, "1", NULL) == 0);
    CHECK(sq_grade_extract(NULL, NULL, NULL) == NULL);
}

SQ_TEST(huge_numbers_are_bounded) {
    double t0 = sq_now();
    NE("10^{10^{10}}", "10^{10^{10}}+1");
    EQ("10^{10^{10}}", "10^{10^{10}}");
    NE("10^{10^{10}}", "5");
    NE("9^{9^{9^{9}}}", "1");
    NE("100000!", "1");
    EQ("2^{100}", "1267650600228229401496703205376");
    NE("2^{100}", "1267650600228229401496703205377");
    CHECKF(sq_now() - t0 < 5, "huge numbers took %.1fs", sq_now() - t0);
}

SQ_TEST(one_megabyte_answers_are_bounded) {
    const size_t n = 1 << 20;
    char *a = malloc(n + 1), *b = malloc(n + 1);
    REQUIRE(a && b);
    /* a long sum, a long list, and prose with a number at the end */
    for (size_t i = 0; i < n; i += 2) a[i] = '1', a[i + 1] = '+';
    a[n - 1] = '1';
    a[n] = 0;
    for (size_t i = 0; i < n; i += 2) b[i] = '7', b[i + 1] = ',';
    b[n - 1] = '7';
    b[n] = 0;
    long rss0 = rss_kb();
    double t0 = sq_now();
    sq_grade_equal(a, "524288", NULL);
    sq_grade_equal(a, a, NULL);
    sq_grade_equal(b, b, NULL);
    sq_grade_equal(b, "7", NULL);
    char *ex = sq_grade_extract(a, NULL, NULL);
    free(ex);
    memset(a, 'w', n);
    a[n - 3] = '4', a[n - 2] = '2', a[n - 4] = ' ';
    ex = sq_grade_extract(a, NULL, NULL);
    CHECK(ex && !strcmp(ex, "42"));
    free(ex);
    double dt = sq_now() - t0;
    long grew = rss_kb() - rss0;
    CHECKF(dt < 30, "1 MB answers took %.1fs", dt);
    CHECKF(grew < 1024 * 1024, "1 MB answers grew RSS by %ld KiB", grew);
    printf("  also 1 MB answers: %.2fs, RSS +%ld KiB\n", dt, grew);
    free(a);
    free(b);
}

/* ---- the command line ------------------------------------------------------------------ */

SQ_TEST(cli_grades_a_jsonl_file) {
    const char *dir = sq_test_tmpdir();
    char in[512], out[512];
    snprintf(in, sizeof in, "%s/in.jsonl", dir);
    snprintf(out, sizeof out, "%s/out.jsonl", dir);
    FILE *f = fopen(in, "w");
    REQUIRE(f);
    fputs("{\"id\":\"a\",\"answer\":\"Half of 48 is 24.\\n#### 72\",\"response\":\"So she sold 72 clips. The answer is 72.\"}\n"
          "{\"id\":\"b\",\"answer\":\"\\\\frac{1}{2}\",\"response\":\"thus $\\\\boxed{0.5}$\"}\n"
          "{\"id\":\"c\",\"answer\":[\"$3$\",\"$4$\"],\"response\":\"\\\\boxed{4} and \\\\boxed{3}\"}\n"
          "{\"id\":\"d\",\"answer\":\"#### 10\",\"response\":\"I think it is 11\"}\n",
          f);
    fclose(f);
    char *o = NULL;
    int rc = sq_test_sh(&o, "%s grade --in %s --out %s 2>&1", sq_test_cli(), in, out);
    CHECK_EQ_INT(rc, 0);
    CHECKF(o && strstr(o, "accuracy 0.7500 (3/4 correct"), "stderr: %s", o ? o : "(none)");
    free(o);
    char *data = NULL;
    size_t len = 0;
    REQUIRE(sq_file_read_all(out, &data, &len, NULL) == 0);
    CHECK(strstr(data, "\"id\":\"a\"") && strstr(data, "\"extracted\":\"72\""));
    CHECK(strstr(data, "\"gold_answer\":\"72\""));
    CHECK(strstr(data, "\"extracted\":\"11\",\"gold_answer\":\"10\",\"correct\":false"));
    int lines = 0;
    for (char *p = data; *p; p++) lines += *p == '\n';
    CHECK_EQ_INT(lines, 4);
    free(data);
    /* a missing field is an error naming file and line, and leaves no output behind */
    char out2[600];
    snprintf(out2, sizeof out2, "%s/out2.jsonl", dir);
    rc = sq_test_sh(&o, "%s grade --quiet --in %s --out %s --gold-field nope 2>&1", sq_test_cli(), in, out2);
    CHECK(rc != 0);
    CHECKF(o && strstr(o, "in.jsonl:1: record has no string \"nope\""), "stderr: %s", o ? o : "(none)");
    free(o);
    CHECK(!sq_file_exists(out2));
    rc = sq_test_sh(&o, "%s grade --in %s 2>&1", sq_test_cli(), in);
    CHECK_EQ_INT(rc, 2);
    free(o);
}

/* With --out -, stdout carries the graded JSONL and nothing else, with or without --quiet:
 * the accuracy line is a summary and goes to stderr (not with --quiet); --summary writes it
 * as JSON. */
SQ_TEST(cli_stdout_holds_only_the_jsonl) {
    const char *dir = sq_test_tmpdir();
    char in[512], sum[512];
    snprintf(in, sizeof in, "%s/in.jsonl", dir);
    snprintf(sum, sizeof sum, "%s/summary.json", dir);
    FILE *f = fopen(in, "w");
    REQUIRE(f);
    fputs("{\"id\":\"a\",\"answer\":\"#### 72\",\"response\":\"The answer is 72.\"}\n"
          "{\"id\":\"b\",\"answer\":\"#### 10\",\"response\":\"I think it is 11\"}\n",
          f);
    fclose(f);
    for (int quiet = 0; quiet < 2; quiet++) {
        char *o = NULL, *err = NULL;
        int rc = sq_test_sh(&o, "%s grade %s --in %s --out - 2>/dev/null", sq_test_cli(), quiet ? "--quiet" : "", in);
        CHECK_EQ_INT(rc, 0);
        REQUIRE(o);
        int lines = 0;
        for (char *line = strtok(o, "\n"); line; line = strtok(NULL, "\n"), lines++)
            CHECKF(line[0] == '{', "quiet=%d: stdout line %d is not a record: %s", quiet, lines + 1, line);
        CHECK_EQ_INT(lines, 2);
        free(o);
        rc = sq_test_sh(&err, "%s grade %s --in %s --out - --summary %s 2>&1 >/dev/null", sq_test_cli(),
                        quiet ? "--quiet" : "", in, sum);
        CHECK_EQ_INT(rc, 0);
        CHECKF(err && (quiet ? !strstr(err, "accuracy") : strstr(err, "accuracy 0.5000 (1/2 correct") != NULL),
               "quiet=%d: stderr: %s", quiet, err ? err : "(none)");
        free(err);
        char *js = NULL;
        size_t len;
        REQUIRE(sq_file_read_all(sum, &js, &len, NULL) == 0);
        CHECKF(strstr(js, "\"accuracy\":0.5") && strstr(js, "\"n\":2"), "summary: %s", js);
        free(js);
    }
}

/* generate's output holds a list of completions: each is graded, and the record gets pass@k
 * and the majority answer (equivalent answers vote together: 0.5 and \frac{1}{2}). */
SQ_TEST(cli_grades_each_completion_of_a_list) {
    const char *dir = sq_test_tmpdir();
    char in[512], out[512], sum[512];
    snprintf(in, sizeof in, "%s/k.jsonl", dir);
    snprintf(out, sizeof out, "%s/ko.jsonl", dir);
    snprintf(sum, sizeof sum, "%s/ks.json", dir);
    FILE *f = fopen(in, "w");
    REQUIRE(f);
    fputs("{\"id\":\"a\",\"answer\":\"#### 72\",\"completions\":[\"It is 70.\",\"The answer is 72.\",\"So 70\"]}\n"
          "{\"id\":\"b\",\"answer\":\"\\\\frac{1}{2}\",\"completions\":[\"\\\\boxed{0.5}\",\"\\\\boxed{3}\","
          "\"\\\\boxed{\\\\frac{1}{2}}\"]}\n"
          "{\"id\":\"c\",\"answer\":\"#### 5\",\"completions\":[\"no idea\",\"six: \\\\boxed{6}\"]}\n",
          f);
    fclose(f);
    char *o = NULL;
    int rc = sq_test_sh(&o, "%s grade --in %s --out %s --pred-field completions --summary %s 2>&1", sq_test_cli(), in,
                        out, sum);
    CHECK_EQ_INT(rc, 0);
    /* 3 of 8 completions right; a and b pass; majorities 70 (wrong), 1/2 (right), 6 (wrong) */
    CHECKF(o && strstr(o, "accuracy 0.3750 (3/8 correct, 1 without an answer)") &&
               strstr(o, "over 3 records of up to 3 completions: pass@3 0.6667 (2), majority 0.3333 (1)"),
           "stderr: %s", o ? o : "(none)");
    free(o);
    char *data = NULL;
    size_t len = 0;
    REQUIRE(sq_file_read_all(out, &data, &len, NULL) == 0);
    CHECKF(strstr(data, "\"extracted\":[\"70\",\"72\",\"70\"],\"correct\":[false,true,false]") &&
               strstr(data, "\"pass\":true,\"majority\":\"70\",\"majority_correct\":false") &&
               strstr(data, "\"majority\":\"0.5\",\"majority_correct\":true") &&
               strstr(data, "\"extracted\":[null,\"6\"]"),
           "%s", data);
    free(data);
    REQUIRE(sq_file_read_all(sum, &data, &len, NULL) == 0);
    CHECKF(strstr(data, "\"k\":3") && strstr(data, "\"pass_at_k\":0.666") && strstr(data, "\"records\":3"), "%s", data);
    free(data);
}

/* A grade killed with -9 leaves OUT.tmp.PID; the next grade of the same OUT removes it. */
SQ_TEST(cli_rerun_removes_a_killed_runs_temp_file) {
    const char *dir = sq_test_tmpdir();
    char in[512], out[512], stale[600];
    snprintf(in, sizeof in, "%s/kin.jsonl", dir);
    snprintf(out, sizeof out, "%s/kout.jsonl", dir);
    FILE *f = fopen(in, "w");
    REQUIRE(f);
    fputs("{\"id\":\"a\",\"answer\":\"#### 72\",\"response\":\"The answer is 72.\"}\n", f);
    fclose(f);
    char *pid = NULL; /* a process that has exited: its pid names no process now */
    REQUIRE(sq_test_sh(&pid, "sh -c 'echo $$'") == 0 && pid);
    snprintf(stale, sizeof stale, "%s.tmp.%d", out, atoi(pid));
    free(pid);
    f = fopen(stale, "w");
    REQUIRE(f);
    fputs("{\"id\":\"half a rec", f);
    fclose(f);
    REQUIRE(sq_test_sh(NULL, "%s grade --quiet --in %s --out %s", sq_test_cli(), in, out) == 0);
    CHECK(!sq_file_exists(stale));
    CHECK(sq_file_exists(out));
}
