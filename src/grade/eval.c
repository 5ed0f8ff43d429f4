/* Evaluation of an expression tree to a bounded number, with variables bound to values.
 * Recursion follows the tree, whose depth the parser bounds (sums and products are n-ary,
 * nesting is capped), so the stack stays small. */
#include <math.h>
#include <string.h>

#include "geval.h"

static gval var_value(const genv *env, const char *name) {
    for (int i = 0; i < env->n; i++)
        if (!strcmp(env->names[i], name)) return gv_float(env->vals[i]);
    return gv_bad();
}

static gval func_value(const char *f, gval x) {
    if (!x.ok) return x;
    long double v = x.f;
    if (!strcmp(f, "floor")) return x.exact ? gv_int((int64_t)floorl(v)) : gv_float(floorl(v));
    if (!strcmp(f, "ceil")) return x.exact ? gv_int((int64_t)ceill(v)) : gv_float(ceill(v));
    if (!strcmp(f, "exp")) return gv_float(expl(v));
    if (!strcmp(f, "ln") || !strcmp(f, "log")) return v > 0 ? gv_float(logl(v)) : gv_bad();
    if (!strcmp(f, "lg")) return v > 0 ? gv_float(log10l(v)) : gv_bad();
    if (!strcmp(f, "sin")) return gv_float(sinl(v));
    if (!strcmp(f, "cos")) return gv_float(cosl(v));
    if (!strcmp(f, "tan")) return gv_float(tanl(v));
    if (!strcmp(f, "sec")) return gv_float(1.0L / cosl(v));
    if (!strcmp(f, "csc")) return gv_float(1.0L / sinl(v));
    if (!strcmp(f, "cot")) return gv_float(cosl(v) / sinl(v));
    if (!strcmp(f, "arcsin")) return fabsl(v) <= 1 ? gv_float(asinl(v)) : gv_bad();
    if (!strcmp(f, "arccos")) return fabsl(v) <= 1 ? gv_float(acosl(v)) : gv_bad();
    if (!strcmp(f, "arctan")) return gv_float(atanl(v));
    if (!strcmp(f, "sinh")) return gv_float(sinhl(v));
    if (!strcmp(f, "cosh")) return gv_float(coshl(v));
    if (!strcmp(f, "tanh")) return gv_float(tanhl(v));
    return gv_bad();
}

gval g_eval(const gnode *x, const genv *env) {
    if (!x) return gv_bad();
    switch (x->kind) {
    case N_NUM: return x->v;
    case N_VAR: return var_value(env, x->name);
    case N_CONST:
        if (!strcmp(x->name, "pi")) return gv_float(3.14159265358979323846264338327950288L);
        return gv_float(2.71828182845904523536028747135266250L);
    case N_ADD: {
        gval s = gv_int(0);
        for (int i = 0; i < x->n && s.ok; i++) s = gv_add(s, g_eval(x->k[i], env));
        return s;
    }
    case N_MUL: {
        gval s = gv_int(1);
        for (int i = 0; i < x->n && s.ok; i++) s = gv_mul(s, g_eval(x->k[i], env));
        return s;
    }
    case N_RATIO:
        if (x->n != 2) return gv_bad();
        return gv_div(g_eval(x->k[0], env), g_eval(x->k[1], env));
    case N_DIV: return gv_div(g_eval(x->k[0], env), g_eval(x->k[1], env));
    case N_INV: return gv_div(gv_int(1), g_eval(x->k[0], env));
    case N_NEG: return gv_neg(g_eval(x->k[0], env));
    case N_POW: return gv_pow(g_eval(x->k[0], env), g_eval(x->k[1], env));
    case N_FACT: return gv_fact(g_eval(x->k[0], env));
    case N_PCT: {
        gval v = g_eval(x->k[0], env);
        return env->pct_div ? gv_div(v, gv_int(100)) : v;
    }
    case N_ABS: {
        gval v = g_eval(x->k[0], env);
        return (v.ok && v.f < 0) ? gv_neg(v) : v;
    }
    case N_FUNC: return func_value(x->name, g_eval(x->k[0], env));
    case N_SUM: {
        /* only with integer bounds, at most 10000 terms; the index shadows a variable */
        gval lo = g_eval(x->k[0]->k[1], env), hi = g_eval(x->k[1], env);
        if (!lo.exact || !hi.exact || lo.q != 1 || hi.q != 1 || hi.p - lo.p > 10000 || env->n >= GENV_MAX)
            return gv_bad();
        genv inner = *env;
        int slot = inner.n++;
        memmove(inner.names + 1, inner.names, sizeof(inner.names[0]) * (size_t)slot);
        memmove(inner.vals + 1, inner.vals, sizeof(inner.vals[0]) * (size_t)slot);
        inner.names[0] = x->k[0]->k[0]->name;
        int prod = !strcmp(x->name, "prod");
        gval acc = gv_int(prod);
        for (__int128 i = lo.p; i <= hi.p && acc.ok; i++) {
            inner.vals[0] = (long double)i;
            gval t = g_eval(x->k[2], &inner);
            acc = prod ? gv_mul(acc, t) : gv_add(acc, t);
        }
        return acc;
    }
    default: return gv_bad();
    }
}

void g_collect_vars(const gnode *x, genv *env) {
    if (!x) return;
    if (x->kind == N_VAR) {
        for (int i = 0; i < env->n; i++)
            if (!strcmp(env->names[i], x->name)) return;
        if (env->n < GENV_MAX) env->names[env->n++] = x->name;
        else env->overflow = 1;
        return;
    }
    for (int i = 0; i < x->n; i++) g_collect_vars(x->k[i], env);
}
