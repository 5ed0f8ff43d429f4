/* Structural comparison of two answer trees: lists and sets match order-free, tuples and
 * intervals in order with the same brackets, matrices cell by cell, equations and
 * inequalities up to a constant factor, "x = 5" against "5" through the label rule, and
 * scalar expressions by exact value or by evaluation at random points. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "geval.h"

#define MAX_ITEMS 256
#define POINTS 6

typedef struct gctx {
    sq_arena *a;
    const sq_grade_opts *o;
    sq_rng rng;
    int budget; /* scalar comparisons left: bounds the work of large list matches */
} gctx;

static int eq(gctx *c, gnode *x, gnode *y, int depth);

static gnode *mk(gctx *c, int kind, int n) {
    gparse p = {.arena = c->a};
    return g_node(&p, kind, n);
}

/* ---- plus-minus expansion ------------------------------------------------------------- */

static int count_pm(const gnode *x) {
    if (!x) return 0;
    int n = x->kind == N_PM;
    for (int i = 0; i < x->n && n < 8; i++) n += count_pm(x->k[i]);
    return n;
}

/* Copy of x with the i-th \pm (in walk order) taking the sign of bit i of `signs`. */
static gnode *pm_pick(gctx *c, gnode *x, unsigned signs, int *idx) {
    if (!x) return NULL;
    if (x->kind == N_PM) {
        int bit = (*idx)++;
        gnode *in = pm_pick(c, x->k[0], signs, idx);
        if (!(signs >> bit & 1)) return in;
        gnode *ng = mk(c, N_NEG, 1);
        if (ng) ng->k[0] = in;
        return ng;
    }
    if (x->n == 0) return x;
    gnode *y = mk(c, x->kind, x->n);
    if (!y) return NULL;
    gnode **k = y->k;
    *y = *x;
    y->k = k;
    for (int i = 0; i < x->n; i++) y->k[i] = pm_pick(c, x->k[i], signs, idx);
    return y;
}

static gnode *pm_expand(gctx *c, gnode *x) {
    int n = count_pm(x);
    if (n == 0 || n > 3) return x;
    gnode *s = mk(c, N_SET, 1 << n);
    if (!s) return x;
    for (unsigned m = 0; m < (1u << n); m++) {
        int idx = 0;
        s->k[m] = pm_pick(c, x, m, &idx);
        if (!s->k[m]) return x;
    }
    return s;
}

static int is_listy(const gnode *x) { return x->kind == N_LIST || x->kind == N_SET; }

/* A list whose items hold \pm, with each such item replaced by its expansions. */
static gnode *pm_flatten(gctx *c, gnode *x) {
    if (!is_listy(x) || !count_pm(x) || x->n > MAX_ITEMS) return x;
    int total = 0;
    gnode **ex = sq_arena_alloc(c->a, sizeof(gnode *) * (size_t)x->n);
    if (!ex) return x;
    for (int i = 0; i < x->n; i++) {
        ex[i] = count_pm(x->k[i]) ? pm_expand(c, x->k[i]) : x->k[i];
        total += ex[i]->kind == N_SET && ex[i] != x->k[i] ? ex[i]->n : 1;
    }
    gnode *y = mk(c, N_SET, total);
    if (!y) return x;
    int j = 0;
    for (int i = 0; i < x->n; i++) {
        if (ex[i]->kind == N_SET && ex[i] != x->k[i])
            for (int m = 0; m < ex[i]->n; m++) y->k[j++] = ex[i]->k[m];
        else
            y->k[j++] = ex[i];
    }
    return y;
}

/* ---- labels and relations ------------------------------------------------------------- */

/* Is x a name for the answer rather than a value: x, a_3, f(x), |AB|, NO/BO, (p,q), A:B? */
static int is_label(const gnode *x) {
    if (!x) return 0;
    switch (x->kind) {
    case N_VAR: case N_TEXT: return 1;
    case N_MUL: case N_DIV: case N_RATIO: case N_ABS: case N_TUPLE: case N_INV:
        for (int i = 0; i < x->n; i++)
            if (!is_label(x->k[i])) return 0;
        return 1;
    default: return 0;
    }
}

static int flip(int op) {
    switch (op) {
    case R_LT: return R_GT;
    case R_GT: return R_LT;
    case R_LE: return R_GE;
    case R_GE: return R_LE;
    default: return op;
    }
}

/* A chain a = b = c ≈ d becomes a = c: intermediate steps and approximations go. */
static gnode *rel_simplify(gctx *c, gnode *r) {
    if (!r || r->kind != N_REL) return r;
    int n = r->n;
    for (int i = 1; i < r->n - 1; i++) /* "x \approx 11" alone reads as x = 11 */
        if (r->ops[i] == R_APPROX) {
            n = i + 1;
            break;
        }
    int all_eq = 1;
    for (int i = 0; i < n - 1; i++)
        if (r->ops[i] != R_EQ && r->ops[i] != R_APPROX) all_eq = 0;
    if (n == r->n && !(all_eq && n > 2)) return r;
    gnode *y = mk(c, N_REL, all_eq ? 2 : n);
    if (!y) return r;
    y->ops = sq_arena_alloc(c->a, sizeof(int) * 2 * (size_t)n);
    if (!y->ops) return r;
    if (all_eq) {
        y->k[0] = r->k[0];
        y->k[1] = r->k[n - 1];
        y->ops[0] = R_EQ;
        y->rows = n; /* remembers that this was a chain of n parts */
    } else {
        for (int i = 0; i < n; i++) y->k[i] = r->k[i];
        for (int i = 0; i < n - 1; i++) y->ops[i] = r->ops[i];
    }
    return y;
}

static gnode *interval(gctx *c, gnode *lo, gnode *hi, char open, char close) {
    gnode *t = mk(c, N_TUPLE, 2);
    if (!t) return NULL;
    t->k[0] = lo;
    t->k[1] = hi;
    t->open = open;
    t->close = close;
    return t;
}

static gnode *neg_inf(gctx *c) {
    gnode *n = mk(c, N_NEG, 1), *i = mk(c, N_INF, 0);
    if (!n || !i) return NULL;
    n->k[0] = i;
    return n;
}

/* a < x <= b and x >= 5 as intervals; x \in S as S. NULL when r is none of these. */
static gnode *rel_to_set(gctx *c, gnode *r) {
    if (!r || r->kind != N_REL) return NULL;
    if (r->n == 2 && r->ops[0] == R_IN && is_label(r->k[0])) return r->k[1];
    int ops[2];
    gnode *p[3];
    if (r->n == 3) {
        ops[0] = r->ops[0], ops[1] = r->ops[1];
        p[0] = r->k[0], p[1] = r->k[1], p[2] = r->k[2];
        if (ops[0] == R_GT || ops[0] == R_GE) {
            p[0] = r->k[2], p[2] = r->k[0];
            ops[0] = flip(r->ops[1]), ops[1] = flip(r->ops[0]);
        }
        if (!((ops[0] == R_LT || ops[0] == R_LE) && (ops[1] == R_LT || ops[1] == R_LE))) return NULL;
        if (!is_label(p[1])) return NULL;
        return interval(c, p[0], p[2], ops[0] == R_LT ? '(' : '[', ops[1] == R_LT ? ')' : ']');
    }
    if (r->n != 2) return NULL;
    int op = r->ops[0];
    gnode *lab = r->k[0], *val = r->k[1];
    if (!is_label(lab)) {
        lab = r->k[1], val = r->k[0], op = flip(op);
        if (!is_label(lab)) return NULL;
    }
    switch (op) {
    case R_LT: return interval(c, neg_inf(c), val, '(', ')');
    case R_LE: return interval(c, neg_inf(c), val, '(', ']');
    case R_GT: return interval(c, val, mk(c, N_INF, 0), '(', ')');
    case R_GE: return interval(c, val, mk(c, N_INF, 0), '[', ')');
    default: return NULL;
    }
}

/* ---- scalars -------------------------------------------------------------------------- */

static int inf_sign(const gnode *x) {
    if (!x) return 0;
    if (x->kind == N_INF) return 1;
    if (x->kind == N_NEG) return -inf_sign(x->k[0]);
    if (x->kind == N_ADD && x->n == 1) return inf_sign(x->k[0]);
    return 0;
}

static int has_kind(const gnode *x, int kind) {
    if (!x) return 0;
    if (x->kind == kind) return 1;
    for (int i = 0; i < x->n; i++)
        if (has_kind(x->k[i], kind)) return 1;
    return 0;
}

static gval as_approx(gval v) {
    v.approx = 1;
    return v;
}

/* 1 equal, 0 not, -1 undecidable (overflow or undefined on both sides). */
static int scalar_eq_pct(gctx *c, gnode *x, gnode *y, int pct_div) {
    int ix = inf_sign(x), iy = inf_sign(y);
    if (ix || iy) return ix == iy;
    if (has_kind(x, N_TEXT) || has_kind(y, N_TEXT)) return 0;
    genv env;
    memset(&env, 0, sizeof env);
    env.pct_div = pct_div;
    g_collect_vars(x, &env);
    g_collect_vars(y, &env);
    if (env.overflow) return -1;
    if (env.n == 0) {
        gval a = g_eval(x, &env), b = g_eval(y, &env);
        if (!a.ok && !b.ok) return -1;
        return gv_equal(a, b, c->o);
    }
    int good = 0;
    for (int t = 0; t < POINTS * 2 && good < POINTS; t++) {
        for (int i = 0; i < env.n; i++) env.vals[i] = 0.3L + 2.4L * (long double)sq_rng_uniform(&c->rng);
        gval a = g_eval(x, &env), b = g_eval(y, &env);
        if (!a.ok && !b.ok) continue;
        if (a.ok != b.ok) return 0;
        sq_grade_opts o = *c->o;
        o.round_match = -1;
        if (o.rel_tol <= 0 || o.rel_tol > 1e-6) o.rel_tol = 1e-6;
        if (!gv_equal(as_approx(a), as_approx(b), &o)) return 0;
        good++;
    }
    return good >= 2 ? 1 : -1;
}

static int scalar_eq(gctx *c, gnode *x, gnode *y) {
    if (c->budget-- <= 0) return 0;
    int px = has_kind(x, N_PCT), py = has_kind(y, N_PCT);
    int r;
    if (!px && !py) r = scalar_eq_pct(c, x, y, 1);
    else if (c->o->percent == SQ_GRADE_PCT_VALUE) r = scalar_eq_pct(c, x, y, 1);
    else if (c->o->percent == SQ_GRADE_PCT_DROP) r = scalar_eq_pct(c, x, y, 0);
    else {
        r = scalar_eq_pct(c, x, y, 0);
        if (r != 1) r = scalar_eq_pct(c, x, y, 1);
    }
    return r == 1;
}

/* Differences l - r of two relations proportional by one constant (positive if sign)? */
static int proportional(gctx *c, gnode *l1, gnode *r1, gnode *l2, gnode *r2, int need_positive) {
    genv env;
    memset(&env, 0, sizeof env);
    env.pct_div = 1;
    g_collect_vars(l1, &env);
    g_collect_vars(r1, &env);
    g_collect_vars(l2, &env);
    g_collect_vars(r2, &env);
    if (env.overflow) return 0;
    long double ratio = 0;
    int have = 0, good = 0;
    for (int t = 0; t < POINTS * 2 && good < POINTS; t++) {
        for (int i = 0; i < env.n; i++) env.vals[i] = 0.3L + 2.4L * (long double)sq_rng_uniform(&c->rng);
        gval d1 = gv_sub(g_eval(l1, &env), g_eval(r1, &env));
        gval d2 = gv_sub(g_eval(l2, &env), g_eval(r2, &env));
        if (!d1.ok || !d2.ok) continue;
        long double a = d1.f, b = d2.f;
        long double sa = fabsl(a), sb = fabsl(b);
        if (sa < 1e-12L && sb < 1e-12L) {
            good++;
            continue;
        }
        if (sa < 1e-12L || sb < 1e-12L) return 0;
        long double r = a / b;
        if (!have) {
            ratio = r;
            have = 1;
        } else if (fabsl(r - ratio) > 1e-7L * fabsl(ratio)) {
            return 0;
        }
        good++;
    }
    if (good < 2) return 0;
    return !need_positive || !have || ratio > 0;
}

static int rel_eq(gctx *c, gnode *x, gnode *y, int depth) {
    if (x->n == 2 && y->n == 2 && x->ops[0] == R_IN && y->ops[0] == R_IN)
        return eq(c, x->k[0], y->k[0], depth + 1) && eq(c, x->k[1], y->k[1], depth + 1);
    if ((x->n == 2 && x->ops[0] == R_IN) || (y->n == 2 && y->ops[0] == R_IN)) {
        if (c->o->set_relation < 0) return 0;
        gnode *sx = rel_to_set(c, x), *sy = rel_to_set(c, y);
        return sx && sy && eq(c, sx, sy, depth + 1);
    }
    if (x->n != y->n) return 0;
    if (x->n == 2) {
        int ox = x->ops[0], oy = y->ops[0];
        gnode *l1 = x->k[0], *r1 = x->k[1], *l2 = y->k[0], *r2 = y->k[1];
        if (ox == R_GT || ox == R_GE) ox = flip(ox), l1 = x->k[1], r1 = x->k[0];
        if (oy == R_GT || oy == R_GE) oy = flip(oy), l2 = y->k[1], r2 = y->k[0];
        if (ox != oy) return 0;
        if (ox == R_EQ && is_label(l1) && is_label(l2) && eq(c, l1, l2, depth + 1))
            return eq(c, r1, r2, depth + 1);
        if (ox == R_EQ && (r1->kind == N_TUPLE || r1->kind == N_MATRIX || r1->kind == N_SET)) return 0;
        return proportional(c, l1, r1, l2, r2, ox == R_LT || ox == R_LE);
    }
    int rev = x->ops[0] != y->ops[0];
    for (int i = 0; i < x->n - 1; i++) {
        int oy = rev ? flip(y->ops[y->n - 2 - i]) : y->ops[i];
        if (x->ops[i] != oy) return 0;
    }
    for (int i = 0; i < x->n; i++)
        if (!eq(c, x->k[i], y->k[rev ? y->n - 1 - i : i], depth + 1)) return 0;
    return 1;
}

/* "p = 5, q = 2, p = 7, q = 2": when the names repeat, the list is a list of assignments
 * and each round of names is one tuple. */
static gnode *regroup(gctx *c, gnode *x) {
    if (!is_listy(x) || x->n < 4 || x->n > MAX_ITEMS) return x;
    for (int i = 0; i < x->n; i++) {
        gnode *r = x->k[i];
        if (r->kind != N_REL || r->n != 2 || r->ops[0] != R_EQ || r->k[0]->kind != N_VAR) return x;
    }
    int period = 0;
    for (int i = 1; i < x->n && !period; i++)
        if (!strcmp(x->k[i]->k[0]->name, x->k[0]->k[0]->name)) period = i;
    if (period < 2 || x->n % period) return x;
    for (int i = period; i < x->n; i++)
        if (strcmp(x->k[i]->k[0]->name, x->k[i % period]->k[0]->name)) return x;
    gnode *l = mk(c, x->kind, x->n / period);
    if (!l) return x;
    for (int g = 0; g < l->n; g++) {
        gnode *t = mk(c, N_TUPLE, period);
        if (!t) return x;
        t->open = '(';
        t->close = ')';
        for (int j = 0; j < period; j++) t->k[j] = x->k[g * period + j];
        l->k[g] = t;
    }
    return l;
}

/* ---- matrix arithmetic: sums and products of matrices become one matrix of cell trees ---- */

static gnode *mat_new(gctx *c, int rows, int cols) {
    if (rows <= 0 || cols <= 0 || rows * cols > 4096) return NULL;
    gnode *m = mk(c, N_MATRIX, rows * cols);
    if (m) m->rows = rows, m->cols = cols;
    return m;
}

static gnode *bin(gctx *c, int kind, gnode *a, gnode *b) {
    gnode *x = mk(c, kind, 2);
    if (x) x->k[0] = a, x->k[1] = b;
    return x;
}

static gnode *mat_reduce(gctx *c, gnode *x, int depth) {
    if (!x || depth > 32) return NULL;
    if (x->kind == N_MATRIX) return x;
    if (x->kind == N_NEG) {
        gnode *m = mat_reduce(c, x->k[0], depth + 1);
        if (!m) return NULL;
        gnode *r = mat_new(c, m->rows, m->cols);
        for (int i = 0; r && i < m->n; i++) {
            r->k[i] = mk(c, N_NEG, 1);
            if (!r->k[i]) return NULL;
            r->k[i]->k[0] = m->k[i];
        }
        return r;
    }
    if (x->kind == N_ADD) {
        gnode *acc = NULL;
        for (int i = 0; i < x->n; i++) {
            gnode *m = mat_reduce(c, x->k[i], depth + 1);
            if (!m) return NULL;
            if (!acc) {
                acc = m;
                continue;
            }
            if (acc->rows != m->rows || acc->cols != m->cols) return NULL;
            gnode *r = mat_new(c, m->rows, m->cols);
            for (int j = 0; r && j < m->n; j++) r->k[j] = bin(c, N_ADD, acc->k[j], m->k[j]);
            acc = r;
        }
        return acc;
    }
    if (x->kind == N_MUL) {
        gnode *acc = NULL, *scalar = NULL;
        for (int i = 0; i < x->n; i++) {
            gnode *m = has_kind(x->k[i], N_MATRIX) ? mat_reduce(c, x->k[i], depth + 1) : NULL;
            if (!m) {
                if (has_kind(x->k[i], N_MATRIX)) return NULL;
                scalar = scalar ? bin(c, N_MUL, scalar, x->k[i]) : x->k[i];
                continue;
            }
            if (!acc) {
                acc = m;
                continue;
            }
            if (acc->cols != m->rows) return NULL;
            gnode *r = mat_new(c, acc->rows, m->cols);
            if (!r) return NULL;
            for (int a = 0; a < acc->rows; a++)
                for (int b = 0; b < m->cols; b++) {
                    gnode *sum = mk(c, N_ADD, acc->cols);
                    if (!sum) return NULL;
                    for (int k = 0; k < acc->cols; k++)
                        sum->k[k] = bin(c, N_MUL, acc->k[a * acc->cols + k], m->k[k * m->cols + b]);
                    r->k[a * m->cols + b] = sum;
                }
            acc = r;
        }
        if (acc && scalar) {
            gnode *r = mat_new(c, acc->rows, acc->cols);
            for (int j = 0; r && j < acc->n; j++) r->k[j] = bin(c, N_MUL, scalar, acc->k[j]);
            acc = r;
        }
        return acc;
    }
    return NULL;
}

/* ---- containers ----------------------------------------------------------------------- */

static int items_eq(gctx *c, gnode **a, int na, gnode **b, int nb, int ordered, int depth) {
    if (ordered && na != nb) return 0;
    if (na > MAX_ITEMS || nb > MAX_ITEMS) {
        if (na != nb) return 0;
        ordered = 1;
    }
    if (ordered) {
        for (int i = 0; i < na; i++)
            if (!eq(c, a[i], b[i], depth + 1)) return 0;
        return 1;
    }
    /* sets: every element of one is in the other, both ways (repeats do not count) */
    for (int i = 0; i < na; i++) {
        int hit = 0;
        for (int j = 0; j < nb && !hit; j++) hit = eq(c, a[i], b[j], depth + 1);
        if (!hit) return 0;
    }
    for (int j = 0; j < nb; j++) {
        int hit = 0;
        for (int i = 0; i < na && !hit; i++) hit = eq(c, a[i], b[j], depth + 1);
        if (!hit) return 0;
    }
    return 1;
}

static int eq(gctx *c, gnode *x, gnode *y, int depth) {
    if (!x || !y || depth > 64) return 0;
    x = rel_simplify(c, x);
    y = rel_simplify(c, y);
    if (!is_listy(x) && count_pm(x)) x = pm_expand(c, x);
    if (!is_listy(y) && count_pm(y)) y = pm_expand(c, y);
    /* one side a relation, the other not */
    if ((x->kind == N_REL) != (y->kind == N_REL)) {
        gnode *r = x->kind == N_REL ? x : y, *v = x->kind == N_REL ? y : x;
        int eqrel = r->n == 2 && (r->ops[0] == R_EQ || r->ops[0] == R_APPROX);
        if (eqrel && is_label(r->k[0])) return eq(c, r->k[1], v, depth + 1);
        /* a derivation "a = b = c" ends in its answer; so does any equation the prediction
         * gives where the gold is a value */
        if (eqrel && (r->rows > 2 || r == y)) return eq(c, x == r ? r->k[1] : v, x == r ? v : r->k[1], depth + 1);
        if (r->n == 2 && r->ops[0] == R_EQ && is_label(r->k[1]) && !is_label(r->k[0]))
            return eq(c, r->k[0], v, depth + 1);
        if (v->kind == N_TUPLE || v->kind == N_UNION || is_listy(v)) {
            gnode *s = rel_to_set(c, r);
            return s && eq(c, s, v, depth + 1);
        }
        return 0;
    }
    if (x->kind == N_REL) return rel_eq(c, x, y, depth);
    if ((x->kind == N_ADD || x->kind == N_MUL || x->kind == N_NEG) && has_kind(x, N_MATRIX)) {
        gnode *m = mat_reduce(c, x, 0);
        if (m) x = m;
    }
    if ((y->kind == N_ADD || y->kind == N_MUL || y->kind == N_NEG) && has_kind(y, N_MATRIX)) {
        gnode *m = mat_reduce(c, y, 0);
        if (m) y = m;
    }
    if (is_listy(x) || is_listy(y)) {
        x = regroup(c, pm_flatten(c, x));
        y = regroup(c, pm_flatten(c, y));
        gnode **a = is_listy(x) ? x->k : &x, **b = is_listy(y) ? y->k : &y;
        int na = is_listy(x) ? x->n : 1, nb = is_listy(y) ? y->n : 1;
        /* a bare list against a tuple with the same number of parts: read the list as the tuple */
        if (x->kind == N_LIST && y->kind == N_TUPLE && y->open == '(' && y->close == ')' && x->n == y->n)
            return items_eq(c, x->k, x->n, y->k, y->n, 1, depth);
        if (y->kind == N_LIST && x->kind == N_TUPLE && x->open == '(' && x->close == ')' && x->n == y->n)
            return items_eq(c, x->k, x->n, y->k, y->n, 1, depth);
        int ordered = c->o->ordered_lists > 0 && x->kind == N_LIST && y->kind == N_LIST;
        return items_eq(c, a, na, b, nb, ordered, depth);
    }
    if (x->kind == N_TUPLE || y->kind == N_TUPLE) {
        if (x->kind != y->kind || x->open != y->open || x->close != y->close) return 0;
        return items_eq(c, x->k, x->n, y->k, y->n, c->o->unordered_tuples <= 0 || x->n != y->n, depth);
    }
    if (x->kind == N_MATRIX || y->kind == N_MATRIX) {
        if (x->kind != y->kind || x->rows != y->rows || x->cols != y->cols) return 0;
        return items_eq(c, x->k, x->n, y->k, y->n, 1, depth);
    }
    if (x->kind == N_UNION || y->kind == N_UNION) {
        if (x->kind != y->kind) return 0;
        return items_eq(c, x->k, x->n, y->k, y->n, 0, depth);
    }
    if (x->kind == N_RATIO || y->kind == N_RATIO) {
        if (x->kind != y->kind) return 0;
        return items_eq(c, x->k, x->n, y->k, y->n, 1, depth);
    }
    if ((x->kind == N_SUM) != (y->kind == N_SUM) && c->budget > 0) {
        int r = scalar_eq(c, x, y);
        if (r) return r;
    }
    if (x->kind == N_SUM && y->kind == N_SUM) {
        /* the same bounds and an equivalent body; the index is compared as a variable */
        if (strcmp(x->name, y->name)) return 0;
        if (scalar_eq(c, x, y)) return 1;
        return eq(c, x->k[0], y->k[0], depth + 1) && eq(c, x->k[1], y->k[1], depth + 1) &&
               eq(c, x->k[2], y->k[2], depth + 1);
    }
    if (x->kind == N_TEXT || y->kind == N_TEXT) {
        if (x->kind != y->kind) return 0;
        return !strcasecmp(x->name, y->name);
    }
    return scalar_eq(c, x, y);
}

int g_tree_equal(sq_arena *a, gnode *x, gnode *y, const sq_grade_opts *o) {
    gctx c = {.a = a, .o = o, .budget = 20000};
    sq_rng_seed(&c.rng, o->seed ? o->seed : 0x5eed);
    return eq(&c, x, y, 0);
}
