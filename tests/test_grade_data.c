/* grade on real data: gold extraction for every row of MATH500, GSM8K (train and test), MATH,
 * College Math and OlympiadBench in ../shared/assets/data. */
#include <cjson/cJSON.h>
#include <stdlib.h>

#include "scalequest/grade.h"
#include "test.h"

typedef void (*row_fn)(const cJSON *row, int line, void *ctx);

static int each_row(const char *rel, row_fn fn, void *ctx) {
    const char *path = sq_test_asset(rel);
    if (!path) return -1;
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char *line = NULL;
    size_t cap = 0;
    int n = 0;
    while (getline(&line, &cap, f) > 0) {
        cJSON *r = cJSON_Parse(line);
        if (!r) {
            sq_test_fail(__FILE__, __LINE__, "%s:%d: not JSON", rel, n + 1);
            break;
        }
        fn(r, n + 1, ctx);
        cJSON_Delete(r);
        n++;
    }
    free(line);
    fclose(f);
    return n;
}

static const char *str(const cJSON *r, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

typedef struct {
    int equal, string_equal, rows;
} m500;

static void math500_row(const cJSON *r, int line, void *ctx) {
    m500 *c = ctx;
    const char *sol = str(r, "solution"), *ans = str(r, "answer");
    c->rows++;
    char *ex = sq_grade_gold(sol, SQ_GOLD_MATH);
    CHECKF(ex, "math500:%d: no \\boxed answer in the solution", line);
    if (!ex) return;
    int eq = sq_grade_equal(ans, ex, NULL);
    CHECKF(eq, "math500:%d: answer [%s] but the solution's box holds [%s]", line, ans, ex);
    c->equal += eq;
    char *a = sq_grade_normalize(ans), *b = sq_grade_normalize(ex);
    if (a && b && !strcmp(a, b)) c->string_equal++;
    free(a);
    free(b);
    free(ex);
}

SQ_TEST(math500_answer_equals_boxed_solution_answer) {
    m500 c = {0};
    int n = each_row("data/math500_test.jsonl", math500_row, &c);
    if (n < 0) SKIP("../shared/assets/data/math500_test.jsonl absent");
    CHECK_EQ_INT(n, 500);
    CHECK_EQ_INT(c.equal, 500);
    printf("  also math500: %d/%d equivalent, %d/%d string-equal after normalisation\n", c.equal, n,
           c.string_equal, n);
}

/* GSM8K: the gold is the number after "####"; a response stating it is right, one that is
 * off by one is wrong. */
static void gsm8k_row(const cJSON *r, int line, void *ctx) {
    int *bad = ctx;
    const char *ans = str(r, "answer");
    char *g = sq_grade_gold(ans, SQ_GOLD_GSM8K);
    const char *hash = strstr(ans, "####");
    int ok = g && hash;
    if (ok) {
        /* independent reading: digits, one optional minus and point, commas dropped */
        char want[64];
        size_t o = 0;
        for (const char *p = hash + 4; *p && *p != '\n' && o + 1 < sizeof want; p++)
            if ((*p >= '0' && *p <= '9') || *p == '-' || *p == '.') want[o++] = *p;
        want[o] = 0;
        ok = !strcmp(g, want);
        if (ok) {
            char resp[160];
            snprintf(resp, sizeof resp, "Adding it all up, the total is %s. The answer is %s", g, g);
            ok = sq_grade_response(ans, resp, NULL, NULL) == 1;
            long long v = atoll(g);
            if (ok && !strchr(g, '.')) {
                snprintf(resp, sizeof resp, "So the answer is %lld.", v + 1);
                ok = sq_grade_response(ans, resp, NULL, NULL) == 0;
            }
        }
    }
    if (!ok) {
        (*bad)++;
        if (*bad < 5) sq_test_fail(__FILE__, __LINE__, "gsm8k:%d: gold [%s]", line, g ? g : "(none)");
    }
    free(g);
}

SQ_TEST(gsm8k_gold_extraction_on_every_row) {
    int bad = 0;
    int n1 = each_row("data/gsm8k_train.jsonl", gsm8k_row, &bad);
    int n2 = each_row("data/gsm8k_test.jsonl", gsm8k_row, &bad);
    if (n1 < 0 || n2 < 0) SKIP("../shared/assets/data/gsm8k_*.jsonl absent");
    CHECK_EQ_INT(n1, 7473);
    CHECK_EQ_INT(n2, 1319);
    CHECK_EQ_INT(bad, 0);
}

typedef struct {
    int rows, found, self_equal;
    const char *field;
    sq_gold_format fmt;
} anyfmt;

static void any_row(const cJSON *r, int line, void *ctx) {
    anyfmt *c = ctx;
    c->rows++;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, c->field);
    char *g = NULL;
    if (cJSON_IsString(v)) {
        g = sq_grade_gold(v->valuestring, c->fmt);
    } else if (cJSON_IsArray(v) && cJSON_GetArraySize(v) > 0) { /* OlympiadBench final_answer list */
        const cJSON *first = cJSON_GetArrayItem(v, 0);
        if (cJSON_IsString(first)) g = sq_grade_gold(first->valuestring, SQ_GOLD_DOLLARS);
    }
    if (g) {
        c->found++;
        /* an answer equals itself and, wrapped as a boxed response, is extracted back */
        char *resp = malloc(strlen(g) + 64);
        if (resp) {
            sprintf(resp, "Therefore the result is $\\boxed{%s}$.", g);
            char *ex = sq_grade_extract(resp, NULL, NULL);
            int ok = ex && sq_grade_equal(g, g, NULL) && sq_grade_equal(g, ex, NULL);
            free(ex);
            c->self_equal += ok;
            if (!ok && c->rows - c->self_equal < 4)
                sq_test_fail(__FILE__, __LINE__, "%s:%d: [%s] not equal to itself", c->field, line, g);
        }
        free(resp);
    }
    free(g);
}

SQ_TEST(gold_formats_of_math_college_olympiad) {
    struct {
        const char *file, *field;
        sq_gold_format fmt;
        int rows;
    } sets[] = {
        {"data/math_test.jsonl", "solution", SQ_GOLD_MATH, 5000},
        {"data/college_math_test.jsonl", "answer", SQ_GOLD_DOLLARS, 2818},
        {"data/olympiadbench_OE_TO_maths_en_COMP.jsonl", "final_answer", SQ_GOLD_DOLLARS, 675},
        {"data/minerva_math_test.jsonl", "solution", SQ_GOLD_MATH, 272},
    };
    for (size_t i = 0; i < SQ_ARRAY_LEN(sets); i++) {
        anyfmt c = {.field = sets[i].field, .fmt = sets[i].fmt};
        int n = each_row(sets[i].file, any_row, &c);
        if (n < 0) SKIP("%s absent", sets[i].file);
        CHECK_EQ_INT(n, sets[i].rows);
        CHECKF(c.found == n, "%s: gold found in %d/%d rows", sets[i].file, c.found, n);
        CHECKF(c.self_equal == c.found, "%s: %d/%d golds equal themselves through a boxed response",
               sets[i].file, c.self_equal, c.found);
        printf("  also %s: gold in %d/%d rows, %d self-consistent\n", sets[i].file, c.found, n, c.self_equal);
    }
}
