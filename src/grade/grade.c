/* The grader's public entry points: normalise, parse, compare, with a string comparison of
 * the normalised forms as the first shortcut and the last resort. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "grade_int.h"

void sq_grade_opts_init(sq_grade_opts *o) {
    memset(o, 0, sizeof *o);
    o->rel_tol = 1e-6;
    o->percent = SQ_GRADE_PCT_EITHER;
}

/* Strings equal once spaces are gone (case-insensitive when both are words). */
static int loose_string_eq(const char *a, const char *b) {
    int words = 1;
    const char *x = a, *y = b;
    for (;;) {
        while (*x == ' ' || *x == '{' || *x == '}') x++;
        while (*y == ' ' || *y == '{' || *y == '}') y++;
        if (!*x || !*y) break;
        if (*x != *y) {
            if (!(isalpha((unsigned char)*x) && tolower((unsigned char)*x) == tolower((unsigned char)*y))) return 0;
        }
        x++;
        y++;
    }
    if (*x || *y) return 0;
    for (const char *p = a; *p; p++)
        if (!isalpha((unsigned char)*p) && *p != ' ') words = 0;
    if (words && strlen(a) >= 2) return 1;
    /* not all letters: insist on exact case */
    x = a, y = b;
    for (;;) {
        while (*x == ' ' || *x == '{' || *x == '}') x++;
        while (*y == ' ' || *y == '{' || *y == '}') y++;
        if (*x != *y) return 0;
        if (!*x) return 1;
        x++;
        y++;
    }
}

/* "(C)" and "C" name the same choice. */
static void strip_choice_parens(char *s) {
    size_t n = strlen(s);
    if (n == 3 && s[0] == '(' && s[2] == ')' && isupper((unsigned char)s[1])) {
        s[0] = s[1];
        s[1] = 0;
    }
}

static int decimal_comma_number(const char *s);
static int equal_once(const char *gold, const char *pred, const sq_grade_opts *o);

/* "1,22" against "1.22": a two-number list can never equal one number, so against a single
 * number a decimal comma is read as a decimal point. */
static int equal_decimal_comma(const char *gold, const char *pred, const sq_grade_opts *o) {
    const char *dc = decimal_comma_number(gold) ? gold : decimal_comma_number(pred) ? pred : NULL;
    const char *other = dc == gold ? pred : gold;
    if (!dc || strchr(other, ',')) return 0;
    char *fixed = sq_strdup(dc);
    if (!fixed) return 0;
    *strchr(fixed, ',') = '.';
    int r = dc == gold ? equal_once(fixed, pred, o) : equal_once(gold, fixed, o);
    free(fixed);
    return r;
}

int sq_grade_equal(const char *gold, const char *pred, const sq_grade_opts *o) {
    if (!gold || !pred) return 0;
    sq_grade_opts def;
    if (!o) {
        sq_grade_opts_init(&def);
        o = &def;
    }
    return equal_once(gold, pred, o) || equal_decimal_comma(gold, pred, o);
}

static int equal_once(const char *gold, const char *pred, const sq_grade_opts *o) {
    char *g = sq_grade_normalize(gold), *p = sq_grade_normalize(pred);
    int r = 0;
    if (!g || !p) goto done;
    strip_choice_parens(g);
    strip_choice_parens(p);
    if (!*g || !*p) goto done;
    if (loose_string_eq(g, p)) {
        r = 1;
        goto done;
    }
    sq_arena a;
    sq_arena_init(&a, 1 << 13);
    gnode *x = g_parse(&a, g, strlen(g));
    gnode *y = x ? g_parse(&a, p, strlen(p)) : NULL;
    if (x && y) r = g_tree_equal(&a, x, y, o);
    sq_arena_free(&a);
done:
    free(g);
    free(p);
    return r;
}

/* Gold text that is itself raw (a solution, "$...$", "#### N") goes through extraction. */
/* Gold text that is itself raw (a solution, "$...$", "#### N") goes through extraction. */
/* A plain gold that is one number written with a decimal comma ("1,22", "0,111"). */
static int decimal_comma_number(const char *s) {
    int commas = 0, after = 0, before = 0;
    for (const char *p = s; *p; p++) {
        if (*p == ',') commas++;
        else if (isdigit((unsigned char)*p)) {
            if (commas) after++;
            else before++;
        } else {
            return 0;
        }
    }
    return commas == 1 && after > 0 && before > 0 && (after != 3 || (before == 1 && s[0] == '0') || before > 3);
}

static char *gold_answer(const char *gold, const sq_grade_opts *o) {

    if (strstr(gold, "####")) return sq_grade_gold(gold, SQ_GOLD_GSM8K);
    if (strstr(gold, "\\boxed") || strstr(gold, "\\fbox") || strchr(gold, '$') || strstr(gold, "\\(") ||
        strstr(gold, "\\[")) {
        char *r = sq_grade_extract(gold, o, NULL);
        if (r) return r;
    }
    return sq_strdup(gold);
}

int sq_grade_response(const char *gold, const char *response, const sq_grade_opts *o, char **extracted) {
    if (extracted) *extracted = NULL;
    if (!gold || !response) return 0;
    char *pred = sq_grade_extract(response, o, NULL);
    char *g = gold_answer(gold, o);
    int r = pred && g && sq_grade_equal(g, pred, o);
    free(g);
    if (extracted) *extracted = pred;
    else free(pred);
    return r;
}
