/* Evaluation environment shared by eval.c and compare.c (internal). */
#ifndef SCALEQUEST_GEVAL_H
#define SCALEQUEST_GEVAL_H

#include "grade_int.h"

#define GENV_MAX 32

typedef struct genv {
    const char *names[GENV_MAX];
    long double vals[GENV_MAX];
    int n;
    int overflow; /* more variables than GENV_MAX */
    int pct_div;  /* evaluate x% as x/100 (else as x) */
} genv;

gval g_eval(const gnode *x, const genv *env);
void g_collect_vars(const gnode *x, genv *env);

#endif
