/* Internal types of the grader: bounded numbers, the expression tree, and the pieces that
 * pass them around. Not installed; the public surface is include/scalequest/grade.h. */
#ifndef SCALEQUEST_GRADE_INT_H
#define SCALEQUEST_GRADE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "scalequest/base.h"
#include "scalequest/grade.h"

/* A number: an exact rational p/q while it fits in 127 bits, a long double always.
 * approx marks values that came from a decimal literal or from an inexact operation;
 * places is the number of decimals of a literal (-1 when not a literal). */
typedef struct gval {
    int ok;     /* 0: undefined (division by zero, overflow, domain error) */
    int exact;  /* p/q valid (q > 0, reduced) */
    int approx;
    int places;
    __int128 p, q;
    long double f;
} gval;

gval gv_int(int64_t v);
gval gv_float(long double f);
gval gv_bad(void);
gval gv_add(gval a, gval b);
gval gv_sub(gval a, gval b);
gval gv_mul(gval a, gval b);
gval gv_div(gval a, gval b);
gval gv_neg(gval a);
gval gv_pow(gval a, gval b);
gval gv_fact(gval a);
/* Decimal literal text (digits, optional '.', optional exponent) to a value. */
gval gv_parse_decimal(const char *s, size_t n);
/* Equality of two numbers under the options (tolerance, rounded decimals). */
int gv_equal(gval a, gval b, const sq_grade_opts *o);

/* ---- expression tree ------------------------------------------------------------------ */

enum {
    N_NUM, N_VAR, N_CONST, N_ADD, N_MUL, N_DIV, N_POW, N_NEG, N_FUNC, N_FACT, N_PCT, N_PM,
    N_LIST, N_SET, N_TUPLE, N_MATRIX, N_REL, N_UNION, N_TEXT, N_INF, N_ABS, N_RATIO, N_INV,
    N_SUM, /* \sum or \prod (name): k[0] "i = lo", k[1] hi, k[2] body */
};

enum { R_EQ, R_LT, R_LE, R_GT, R_GE, R_NE, R_IN, R_APPROX };

typedef struct gnode {
    int kind;
    int n;                 /* children */
    struct gnode **k;
    int rows, cols;        /* N_MATRIX: k is row-major */
    char open, close;      /* N_TUPLE brackets */
    int *ops;              /* N_REL: n-1 relation operators; N_PM: ops[0] 1 for \mp */
    const char *name;      /* N_VAR, N_FUNC, N_TEXT, N_CONST */
    gval v;                /* N_NUM */
} gnode;

/* Arena-backed parser context. */
typedef struct gparse {
    sq_arena *arena;
    const char *s, *end;
    int depth;
    int failed;
    int abs_depth;
    size_t nodes;
} gparse;

/* Parse a normalised answer into a tree; NULL when it does not parse (too deep, malformed,
 * too large). Nodes live in the arena. */
gnode *g_parse(sq_arena *a, const char *s, size_t n);
gnode *g_node(gparse *p, int kind, int n);

/* Normalise an answer into buf (malloc'd result). */
char *g_normalize(const char *s, size_t n);

/* Tree comparison under the options. */
int g_tree_equal(sq_arena *a, gnode *x, gnode *y, const sq_grade_opts *o);

/* Small string helpers shared by the pieces. */
int g_is_unit_word(const char *w, size_t n);

/* A copy of s[0..n) with every U+2212 MINUS SIGN made an ASCII '-' (models and typeset
 * sources write it), or NULL when s has none (or allocation failed: *oom set). */
char *g_fold_minus(const char *s, size_t n, int *oom);

/* Number words (words.c), as GSM8K-style answers write them: "four", "twenty-four", "one
 * hundred and five". 1 and *v when s[0..n) is one such number and nothing else (trailing
 * sentence punctuation aside); 0 otherwise. */
int g_number_words(const char *s, size_t n, int64_t *v);
/* The last run of number words in prose, for a response that holds no digit at all: 1 and
 * *v and *at (its offset), or 0. */
int g_last_number_words(const char *t, size_t n, int64_t *v, size_t *at);

#endif
