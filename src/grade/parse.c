/* A recursive-descent parser for the LaTeX that answers are written in, producing the tree in
 * grade_int.h. Precedence, loosest first: list separators (, ;), relations (= < \leq \in
 * \approx ...), set union (\cup), sums (+ - \pm), products (\cdot \times / : and juxtaposition),
 * unary signs, powers and postfix (! %), primaries. Depth is counted on every descent and the
 * parse gives up past SQ_GRADE_MAX_DEPTH, so the C stack stays small whatever the input. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "grade_int.h"

#define MAX_NODES 100000

gnode *g_node(gparse *p, int kind, int n) {
    if (++p->nodes > MAX_NODES) {
        p->failed = 1;
        return NULL;
    }
    gnode *x = sq_arena_alloc(p->arena, sizeof *x);
    if (!x) {
        p->failed = 1;
        return NULL;
    }
    x->kind = kind;
    x->n = n;
    x->v = gv_bad();
    if (n > 0) {
        x->k = sq_arena_alloc(p->arena, sizeof(gnode *) * (size_t)n);
        if (!x->k) {
            p->failed = 1;
            return NULL;
        }
    }
    return x;
}

/* A growable list of children, copied into the arena when done. */
typedef struct {
    gnode **v;
    int n, cap;
    int *ops;
} kids;

static int kids_push(gparse *p, kids *k, gnode *x, int op) {
    if (k->n == k->cap) {
        int c = k->cap ? k->cap * 2 : 8;
        gnode **nv = realloc(k->v, sizeof *nv * (size_t)c);
        int *no = realloc(k->ops, sizeof *no * (size_t)c);
        if (nv) k->v = nv;
        if (no) k->ops = no;
        if (!nv || !no) {
            p->failed = 1;
            return -1;
        }
        k->cap = c;
    }
    k->ops[k->n] = op;
    k->v[k->n++] = x;
    return 0;
}

static gnode *kids_done(gparse *p, kids *k, int kind) {
    gnode *x = g_node(p, kind, k->n);
    if (x && k->n > 0) {
        memcpy(x->k, k->v, sizeof(gnode *) * (size_t)k->n);
        if (kind == N_REL) {
            x->ops = sq_arena_alloc(p->arena, sizeof(int) * (size_t)(k->n > 1 ? k->n : 1));
            if (!x->ops) p->failed = 1;
            else for (int i = 1; i < k->n; i++) x->ops[i - 1] = k->ops[i];
        }
    }
    free(k->v);
    free(k->ops);
    k->v = NULL;
    k->ops = NULL;
    return x;
}

static void ws(gparse *p) {
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\n' || *p->s == '\t' || *p->s == '\r' || *p->s == '~'))
        p->s++;
}

/* If the input continues with \name (not followed by a letter), consume it. */
static int cmd(gparse *p, const char *name) {
    ws(p);
    if (p->s >= p->end || p->s[0] != '\\' || p->s + 1 >= p->end || p->s[1] != name[0]) return 0;
    size_t l = strlen(name);
    if (p->end - p->s < (ptrdiff_t)l + 1 || p->s[0] != '\\' || strncmp(p->s + 1, name, l)) return 0;
    if (p->s + 1 + l < p->end && isalpha((unsigned char)p->s[1 + l])) return 0;
    p->s += 1 + l;
    return 1;
}

static int lit(gparse *p, const char *t) {
    ws(p);
    if (p->s >= p->end || *p->s != t[0]) return 0;
    size_t l = strlen(t);
    if (p->end - p->s < (ptrdiff_t)l || strncmp(p->s, t, l)) return 0;
    p->s += l;
    return 1;
}

static int peekc(gparse *p) {
    ws(p);
    return p->s < p->end ? (unsigned char)*p->s : 0;
}

static gnode *parse_list(gparse *p, int kind);
static gnode *parse_item(gparse *p);
static gnode *parse_sum(gparse *p);
static gnode *parse_power(gparse *p);
static gnode *parse_unary(gparse *p);
static int starts_factor(gparse *p);
static gnode *parse_product(gparse *p);

static char *arena_str(gparse *p, const char *s, size_t n) {
    char *d = sq_arena_alloc(p->arena, n + 1);
    if (!d) {
        p->failed = 1;
        return NULL;
    }
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

/* A group {...} or a single token (\frac12, \sqrt3, x^2). */
static gnode *parse_arg(gparse *p) {
    int c = peekc(p);
    if (c == '{') {
        p->s++;
        gnode *x = parse_list(p, N_LIST);
        if (!lit(p, "}")) p->failed = 1;
        if (x && x->kind == N_LIST && x->n == 1) x = x->k[0];
        return x;
    }
    if (isdigit(c)) {
        gnode *x = g_node(p, N_NUM, 0);
        if (x) x->v = gv_int(*p->s - '0');
        p->s++;
        return x;
    }
    if (isalpha(c)) {
        gnode *x = g_node(p, N_VAR, 0);
        if (x) x->name = arena_str(p, p->s, 1);
        p->s++;
        return x;
    }
    return parse_power(p);
}

static const char *const funcs[] = {"sin", "cos", "tan", "sec", "csc", "cot", "arcsin", "arccos", "arctan",
                                    "sinh", "cosh", "tanh", "ln", "log", "exp", "lg", "floor", "ceil"};

static int is_func_name(const char *s, size_t n) {
    for (size_t i = 0; i < SQ_ARRAY_LEN(funcs); i++)
        if (funcs[i][0] == s[0] && strlen(funcs[i]) == n && !strncmp(funcs[i], s, n)) return 1;
    return 0;
}

static gnode *func_node(gparse *p, const char *name, size_t nl) {
    gnode *f = g_node(p, N_FUNC, 1);
    if (!f) return NULL;
    f->name = arena_str(p, name, nl);
    gnode *expo = NULL;
    /* \sin^2 x: the power applies to the function's value */
    if (peekc(p) == '^') {
        p->s++;
        expo = parse_arg(p);
    }
    gnode *base = NULL;
    if (peekc(p) == '_' && nl == 3 && !strncmp(name, "log", 3)) {
        p->s++;
        base = parse_arg(p);
    }
    int c = peekc(p);
    if (c == '(' || c == '{') f->k[0] = parse_power(p);
    else f->k[0] = parse_power(p);
    if (!f->k[0]) p->failed = 1;
    if (base) {
        gnode *d = g_node(p, N_DIV, 2);
        gnode *lb = g_node(p, N_FUNC, 1);
        if (!d || !lb) return NULL;
        lb->name = "ln";
        lb->k[0] = base;
        f->name = "ln";
        d->k[0] = f;
        d->k[1] = lb;
        f = d;
    }
    if (expo) {
        gnode *pw = g_node(p, N_POW, 2);
        if (!pw) return NULL;
        pw->k[0] = f;
        pw->k[1] = expo;
        return pw;
    }
    return f;
}

/* \begin{pmatrix} a & b \\ c & d \end{pmatrix} (and bmatrix, array, ...). */
static gnode *parse_matrix(gparse *p) {
    if (!lit(p, "{")) return p->failed = 1, NULL;
    const char *nm = p->s;
    while (p->s < p->end && *p->s != '}') p->s++;
    size_t nl = (size_t)(p->s - nm);
    if (!lit(p, "}")) return p->failed = 1, NULL;
    if (nl == 5 && !strncmp(nm, "array", 5) && peekc(p) == '{') {
        while (p->s < p->end && *p->s != '}') p->s++;
        p->s++;
    }
    kids cells = {0};
    int cols = -1, cur = 0, rows = 0;
    for (;;) {
        ws(p);
        if (cmd(p, "end")) {
            if (lit(p, "{")) {
                while (p->s < p->end && *p->s != '}') p->s++;
                lit(p, "}");
            }
            break;
        }
        if (p->s >= p->end || p->failed) {
            p->failed = 1;
            break;
        }
        gnode *x = parse_item(p);
        if (!x || kids_push(p, &cells, x, 0)) {
            p->failed = 1;
            break;
        }
        cur++;
        if (lit(p, "&")) continue;
        if (lit(p, "\\\\")) {
            if (cols < 0) cols = cur;
            else if (cols != cur) p->failed = 1;
            rows++;
            cur = 0;
            ws(p);
            if (cmd(p, "end")) {
                if (lit(p, "{")) {
                    while (p->s < p->end && *p->s != '}') p->s++;
                    lit(p, "}");
                }
                break;
            }
            continue;
        }
    }
    if (cur > 0) {
        if (cols < 0) cols = cur;
        else if (cols != cur) p->failed = 1;
        rows++;
    }
    gnode *m = kids_done(p, &cells, N_MATRIX);
    if (m && !p->failed) {
        m->rows = rows;
        m->cols = cols;
        if (rows * cols != m->n || m->n == 0) p->failed = 1;
    }
    return m;
}

static gnode *parse_number(gparse *p) {
    const char *b = p->s;
    while (p->s < p->end && (isdigit((unsigned char)*p->s) || *p->s == '.')) {
        if (*p->s == '.' && (p->s + 1 >= p->end || !isdigit((unsigned char)p->s[1]))) break;
        p->s++;
    }
    /* 3.54e-07: scientific notation only when digits follow the e */
    if (p->s < p->end && (*p->s == 'e' || *p->s == 'E')) {
        const char *q = p->s + 1;
        if (q < p->end && (*q == '+' || *q == '-')) q++;
        if (q < p->end && isdigit((unsigned char)*q)) {
            while (q < p->end && isdigit((unsigned char)*q)) q++;
            p->s = q;
        }
    }
    gnode *x = g_node(p, N_NUM, 0);
    if (x) {
        x->v = gv_parse_decimal(b, (size_t)(p->s - b));
        if (!x->v.ok) p->failed = 1;
    }
    return x;
}

static gnode *parse_var(gparse *p) {
    const char *b = p->s;
    p->s++;
    /* a subscript belongs to the name: a_3, a_{37}, S_{MBCN} */
    if (p->s < p->end && *p->s == '_') {
        p->s++;
        if (p->s < p->end && *p->s == '{') {
            int d = 0;
            for (; p->s < p->end; p->s++) {
                if (*p->s == '{') d++;
                else if (*p->s == '}' && --d == 0) {
                    p->s++;
                    break;
                }
            }
        } else if (p->s < p->end) {
            p->s++;
        }
    }
    gnode *x = g_node(p, N_VAR, 0);
    if (x) x->name = arena_str(p, b, (size_t)(p->s - b));
    return x;
}

static gnode *make2(gparse *p, int kind, gnode *a, gnode *b) {
    if (!a || !b) {
        p->failed = 1;
        return NULL;
    }
    gnode *x = g_node(p, kind, 2);
    if (x) {
        x->k[0] = a;
        x->k[1] = b;
    }
    return x;
}

static gnode *parse_primary(gparse *p) {
    int c = peekc(p);
    if (!c) return p->failed = 1, NULL;
    if (isdigit(c) || (c == '.' && p->s + 1 < p->end && isdigit((unsigned char)p->s[1]))) return parse_number(p);
    if (isalpha(c)) {
        const char *b = p->s;
        size_t l = 0;
        while (b + l < p->end && isalpha((unsigned char)b[l])) l++;
        if (l >= 2 && is_func_name(b, l)) {
            p->s += l;
            return func_node(p, b, l);
        }
        if (l >= 2 && (g_is_unit_word(b, l) || l >= 4)) {
            p->s += l;
            gnode *t = g_node(p, N_TEXT, 0);
            if (t) t->name = arena_str(p, b, l);
            return t;
        }
        if (c == 'e' && !(l > 1) && !(p->s + 1 < p->end && p->s[1] == '_')) {
            p->s++;
            gnode *x = g_node(p, N_CONST, 0);
            if (x) x->name = "e";
            return x;
        }
        return parse_var(p);
    }
    if (c == '(' || c == '[') {
        p->s++;
        gnode *x = parse_list(p, N_LIST);
        if (!x) return NULL;
        int cl = peekc(p);
        if (cl != ')' && cl != ']') return p->failed = 1, NULL;
        p->s++;
        if (x->kind == N_LIST && x->n == 1) x = x->k[0];
        if (x->kind == N_LIST) {
            x->kind = N_TUPLE;
            x->open = (char)c;
            x->close = (char)cl;
        } else if (c == '[' && cl == ']' && x->kind == N_MATRIX) {
            return x;
        } else if (c != '(' || cl != ')') {
            if (c == '[' && cl == ']') return x; /* [x+1] used as brackets */
            return p->failed = 1, NULL;
        }
        return x;
    }
    if (c == '{') {
        p->s++;
        gnode *x = parse_list(p, N_LIST);
        if (!lit(p, "}")) return p->failed = 1, NULL;
        /* plain braces group; {1,3} stays a bare list (\{1,3\} is the set) */
        if (x && x->kind == N_LIST && x->n == 1) return x->k[0];
        return x;
    }
    if (c == '|') {
        if (p->abs_depth > 0) return p->failed = 1, NULL;
        p->s++;
        p->abs_depth++;
        gnode *in = parse_sum(p);
        p->abs_depth--;
        if (!lit(p, "|")) return p->failed = 1, NULL;
        gnode *x = g_node(p, N_ABS, 1);
        if (x) x->k[0] = in;
        return x;
    }
    if (c == '\\') {
        if (cmd(p, "frac")) {
            gnode *a = parse_arg(p);
            gnode *b = parse_arg(p);
            return make2(p, N_DIV, a, b);
        }
        if (cmd(p, "binom") || cmd(p, "dbinom") || cmd(p, "tbinom")) {
            /* C(n, k) = n! / (k! (n-k)!), defined where the factorials are */
            gnode *n = parse_arg(p), *k = parse_arg(p);
            gnode *fn = g_node(p, N_FACT, 1), *fk = g_node(p, N_FACT, 1), *fd = g_node(p, N_FACT, 1);
            gnode *nk = g_node(p, N_NEG, 1), *diff = g_node(p, N_ADD, 2), *den = g_node(p, N_MUL, 2);
            if (!n || !k || !fn || !fk || !fd || !nk || !diff || !den) return p->failed = 1, NULL;
            nk->k[0] = k;
            diff->k[0] = n, diff->k[1] = nk;
            fn->k[0] = n, fk->k[0] = k, fd->k[0] = diff;
            den->k[0] = fk, den->k[1] = fd;
            return make2(p, N_DIV, fn, den);
        }
        if (cmd(p, "sqrt")) {
            gnode *idx = NULL;
            if (lit(p, "[")) {
                idx = parse_sum(p);
                if (!lit(p, "]")) return p->failed = 1, NULL;
            }
            gnode *a = parse_arg(p);
            gnode *e;
            if (idx) {
                gnode *one = g_node(p, N_NUM, 0);
                if (!one) return NULL;
                one->v = gv_int(1);
                e = make2(p, N_DIV, one, idx);
            } else {
                e = g_node(p, N_NUM, 0);
                if (!e) return NULL;
                e->v = gv_div(gv_int(1), gv_int(2));
            }
            return make2(p, N_POW, a, e);
        }
        if (cmd(p, "pi")) {
            gnode *x = g_node(p, N_CONST, 0);
            if (x) x->name = "pi";
            return x;
        }
        if (cmd(p, "infty") || cmd(p, "infin")) return g_node(p, N_INF, 0);
        if (cmd(p, "{") || lit(p, "\\{")) {
            gnode *x = parse_list(p, N_LIST);
            if (!lit(p, "\\}")) return p->failed = 1, NULL;
            if (x && x->kind != N_LIST) {
                gnode *s = g_node(p, N_SET, 1);
                if (s) s->k[0] = x;
                return s;
            }
            if (x) x->kind = N_SET;
            return x;
        }
        if (cmd(p, "langle")) {
            gnode *x = parse_list(p, N_LIST);
            if (!cmd(p, "rangle")) return p->failed = 1, NULL;
            if (x && x->kind == N_LIST) {
                x->kind = N_TUPLE;
                x->open = '(';
                x->close = ')';
            }
            return x;
        }
        if (cmd(p, "begin")) return parse_matrix(p);
        if (cmd(p, "lfloor")) {
            gnode *in = parse_sum(p);
            if (!cmd(p, "rfloor")) return p->failed = 1, NULL;
            gnode *x = g_node(p, N_FUNC, 1);
            if (x) x->name = "floor", x->k[0] = in;
            return x;
        }
        if (cmd(p, "lceil")) {
            gnode *in = parse_sum(p);
            if (!cmd(p, "rceil")) return p->failed = 1, NULL;
            gnode *x = g_node(p, N_FUNC, 1);
            if (x) x->name = "ceil", x->k[0] = in;
            return x;
        }
        if (cmd(p, "operatorname")) {
            if (!lit(p, "{")) return p->failed = 1, NULL;
            const char *b = p->s;
            while (p->s < p->end && *p->s != '}') p->s++;
            size_t l = (size_t)(p->s - b);
            lit(p, "}");
            return func_node(p, b, l);
        }
        const char *b = p->s + 1;
        size_t l = 0;
        while (b + l < p->end && isalpha((unsigned char)b[l])) l++;
        if (is_func_name(b, l)) {
            p->s = b + l;
            return func_node(p, b, l);
        }
        /* Greek letters and other symbols are variables */
        static const char *const greek[] = {"alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta",
                                            "eta", "theta", "vartheta", "iota", "kappa", "lambda", "mu", "nu",
                                            "xi", "rho", "sigma", "tau", "upsilon", "phi", "varphi", "chi",
                                            "psi", "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi",
                                            "Sigma", "Phi", "Psi", "Omega", "ell"};
        for (size_t i = 0; i < SQ_ARRAY_LEN(greek); i++)
            if (strlen(greek[i]) == l && !strncmp(greek[i], b, l)) {
                p->s = b + l - 1; /* parse_var takes one char, so point at the last letter */
                const char *start = p->s - l;
                gnode *x = parse_var(p);
                if (x) x->name = arena_str(p, start, (size_t)(p->s - start));
                return x;
            }
        if ((l == 3 && !strncmp(b, "sum", 3)) || (l == 4 && !strncmp(b, "prod", 4))) {
            p->s = b + l;
            gnode *x = g_node(p, N_SUM, 3);
            if (!x) return NULL;
            x->name = l == 3 ? "sum" : "prod";
            for (int i = 0; i < 2; i++) {
                if (lit(p, "_")) x->k[0] = parse_arg(p);
                else if (lit(p, "^")) x->k[1] = parse_arg(p);
            }
            if (!x->k[0] || !x->k[1] || x->k[0]->kind != N_REL || x->k[0]->n != 2 || x->k[0]->k[0]->kind != N_VAR)
                return p->failed = 1, NULL;
            x->k[2] = parse_product(p);
            if (!x->k[2]) p->failed = 1;
            return x;
        }
        if (l > 0) { /* an unknown command names a quantity: \zzz, \hbar */
            p->s = b + l;
            gnode *x = g_node(p, N_VAR, 0);
            if (x) x->name = arena_str(p, b - 1, l + 1);
            return x;
        }
        return p->failed = 1, NULL;
    }
    return p->failed = 1, NULL;
}

static gnode *parse_power(gparse *p) {
    if (++p->depth > SQ_GRADE_MAX_DEPTH) return p->failed = 1, NULL;
    gnode *x = parse_primary(p);
    for (int post = 0;; post++) {
        if (post > 16) {
            p->failed = 1;
            break;
        }
        if (!x || p->failed) break;
        int c = peekc(p);
        if (c == '^') {
            p->s++;
            gnode *e = parse_arg(p);
            if (x->kind != N_TEXT) x = make2(p, N_POW, x, e); /* cm^2 stays a unit */
        } else if (c == '!') {
            if (p->s + 1 < p->end && p->s[1] == '=') break;
            p->s++;
            gnode *f = g_node(p, N_FACT, 1);
            if (f) f->k[0] = x;
            x = f;
        } else if (c == '%') {
            p->s++;
            gnode *f = g_node(p, N_PCT, 1);
            if (f) f->k[0] = x;
            x = f;
        } else if (c == '\'') {
            p->s++;
        } else {
            break;
        }
    }
    p->depth--;
    return x;
}

static gnode *parse_unary(gparse *p) {
    if (++p->depth > SQ_GRADE_MAX_DEPTH) return p->failed = 1, NULL;
    gnode *x;
    int c = peekc(p);
    if (c == '-' || c == '+') {
        p->s++;
        gnode *in = parse_unary(p);
        if (c == '+') x = in;
        else {
            x = g_node(p, N_NEG, 1);
            if (x) x->k[0] = in;
            if (!in) p->failed = 1;
        }
    } else {
        x = parse_power(p);
    }
    p->depth--;
    return x;
}

/* Can the next token start a factor of an implicit product (2x, (x-1)(x+1), 3\sqrt2)? */
static int starts_factor(gparse *p) {
    int c = peekc(p);
    if (!c) return 0;
    if (isalnum(c) || c == '(' || c == '{' || c == '.') return 1;
    if (c == '|') return p->abs_depth == 0;
    if (c == '\\') {
        static const char *const no[] = {"leq", "geq", "neq", "cdot", "times", "div", "pm", "mp", "cup", "cap",
                                         "in", "end", "approx", "right", "rangle", "rfloor", "rceil", "to",
                                         "setminus", "}", "\\", "quad", "equiv", "sim", "implies", "Rightarrow",
                                         "iff", "notin", "subset", "subseteq", "mid", "colon", "vee", "wedge",
                                         "land", "lor", "ldots", "cdots", "dots"};
        const char *b = p->s + 1;
        size_t l = 0;
        while (b + l < p->end && isalpha((unsigned char)b[l])) l++;
        if (l == 0) return b < p->end && *b == '{';
        for (size_t i = 0; i < SQ_ARRAY_LEN(no); i++)
            if (strlen(no[i]) == l && !strncmp(no[i], b, l)) return 0;
        return 1;
    }
    return 0;
}

/* A product: factors joined by \cdot, \times, *, / or juxtaposition, kept n-ary (a division
 * is a child wrapped in N_INV) so a long chain makes a wide tree, not a deep one. */
static gnode *parse_product(gparse *p) {
    if (++p->depth > SQ_GRADE_MAX_DEPTH) return p->failed = 1, NULL;
    gnode *x = parse_unary(p);
    kids k = {0};
    if (x) kids_push(p, &k, x, 0);
    while (x && !p->failed) {
        gnode *f = NULL;
        if (cmd(p, "cdot") || cmd(p, "times") || lit(p, "*")) {
            f = parse_unary(p);
        } else if (lit(p, "/") || cmd(p, "div")) {
            gnode *d = parse_unary(p);
            f = g_node(p, N_INV, 1);
            if (f) f->k[0] = d;
            if (!d) p->failed = 1;
        } else if (starts_factor(p)) {
            f = parse_power(p);
            if (f && f->kind == N_TEXT && k.v[0]->kind != N_TEXT) continue; /* a unit after a value */
        } else {
            break;
        }
        if (!f) {
            p->failed = 1;
            break;
        }
        kids_push(p, &k, f, 0);
    }
    /* 15\frac{39}{40} is a mixed number, 15 + 39/40 */
    if (k.n == 2 && !p->failed && k.v[0]->kind == N_NUM && k.v[0]->v.exact && k.v[0]->v.q == 1 &&
        k.v[0]->v.places < 0 && k.v[1]->kind == N_DIV && k.v[1]->k[0]->kind == N_NUM &&
        k.v[1]->k[1]->kind == N_NUM && k.v[1]->k[0]->v.exact && k.v[1]->k[1]->v.exact) {
        gnode *add = kids_done(p, &k, N_ADD);
        p->depth--;
        return p->failed ? NULL : add;
    }
    if (k.n == 1 && !p->failed) {
        free(k.v);
        free(k.ops);
    } else {
        x = kids_done(p, &k, N_MUL);
    }
    p->depth--;
    return p->failed ? NULL : x;
}

/* Ratios a:b:c sit just above products. */
static gnode *parse_term(gparse *p) {
    gnode *x = parse_product(p);
    if (!x || p->failed || peekc(p) != ':' || (p->s + 1 < p->end && p->s[1] == '=')) return x;
    kids k = {0};
    kids_push(p, &k, x, 0);
    while (peekc(p) == ':' && !(p->s + 1 < p->end && p->s[1] == '=')) {
        p->s++;
        gnode *y = parse_product(p);
        if (!y) {
            p->failed = 1;
            break;
        }
        kids_push(p, &k, y, 0);
    }
    return kids_done(p, &k, N_RATIO);
}

/* A sum, n-ary; \pm t is a child N_PM(t) that comparison expands into both signs. */
static gnode *parse_sum(gparse *p) {
    if (++p->depth > SQ_GRADE_MAX_DEPTH) return p->failed = 1, NULL;
    kids k = {0};
    int first = 1;
    while (!p->failed) {
        int kind = -1; /* -1: plain, N_NEG, N_PM */
        if (cmd(p, "pm") || cmd(p, "mp")) kind = N_PM;
        else if (!first && lit(p, "+")) kind = -1;
        else if (!first && peekc(p) == '-' && !(p->s + 1 < p->end && p->s[1] == '>')) {
            p->s++;
            kind = N_NEG;
        } else if (!first) break;
        gnode *t = parse_term(p);
        if (!t) {
            p->failed = 1;
            break;
        }
        if (kind != -1) {
            gnode *w = g_node(p, kind, 1);
            if (!w) break;
            w->k[0] = t;
            t = w;
        }
        kids_push(p, &k, t, 0);
        first = 0;
    }
    gnode *x = NULL;
    if (p->failed) {
        free(k.v);
        free(k.ops);
    } else if (k.n == 1 && k.v[0]->kind != N_PM) {
        x = k.v[0];
        free(k.v);
        free(k.ops);
    } else {
        x = kids_done(p, &k, N_ADD);
    }
    p->depth--;
    return x;
}

static gnode *parse_union(gparse *p) {
    gnode *x = parse_sum(p);
    if (!x || p->failed) return x;
    ws(p);
    if (!(p->end - p->s >= 4 && !strncmp(p->s, "\\cup", 4))) return x;
    kids k = {0};
    kids_push(p, &k, x, 0);
    while (cmd(p, "cup")) {
        gnode *y = parse_sum(p);
        if (!y) {
            p->failed = 1;
            break;
        }
        kids_push(p, &k, y, 0);
    }
    return kids_done(p, &k, N_UNION);
}

static int parse_relop(gparse *p) {
    ws(p);
    if (lit(p, "<=") || cmd(p, "leq")) return R_LE;
    if (lit(p, ">=") || cmd(p, "geq")) return R_GE;
    if (lit(p, "!=") || cmd(p, "neq")) return R_NE;
    if (lit(p, "=")) return R_EQ;
    if (lit(p, "<")) return R_LT;
    if (lit(p, ">")) return R_GT;
    if (cmd(p, "in")) return R_IN;
    if (cmd(p, "approx") || cmd(p, "simeq")) return R_APPROX;
    return -1;
}

static gnode *parse_item(gparse *p) {
    if (++p->depth > SQ_GRADE_MAX_DEPTH) return p->failed = 1, NULL;
    gnode *x = parse_union(p);
    int op = x ? parse_relop(p) : -1;
    if (op >= 0) {
        kids k = {0};
        kids_push(p, &k, x, 0);
        while (op >= 0 && !p->failed) {
            gnode *y = parse_union(p);
            if (!y) {
                p->failed = 1;
                break;
            }
            kids_push(p, &k, y, op);
            op = parse_relop(p);
        }
        x = kids_done(p, &k, N_REL);
    }
    p->depth--;
    return x;
}

/* Items separated by , or ; up to a closing bracket or the end. */
static gnode *parse_list(gparse *p, int kind) {
    if (++p->depth > SQ_GRADE_MAX_DEPTH) return p->failed = 1, NULL;
    kids k = {0};
    int semis = 0, commas = 0;
    for (;;) {
        gnode *x = parse_item(p);
        if (!x || p->failed) {
            p->failed = 1;
            break;
        }
        kids_push(p, &k, x, 0);
        if (lit(p, ",")) {
            commas++;
            k.ops[k.n - 1] = 0;
            continue;
        }
        if (lit(p, ";")) {
            semis++;
            k.ops[k.n - 1] = 1;
            continue;
        }
        break;
    }
    if (semis && commas && !p->failed) {
        /* "p=5,q=2;p=7,q=2": semicolons separate groups of comma-separated parts */
        kids groups = {0};
        int start = 0;
        for (int i = 0; i < k.n; i++) {
            if (i == k.n - 1 || k.ops[i] == 1) {
                gnode *g = g_node(p, N_TUPLE, i - start + 1);
                if (!g) break;
                for (int j = start; j <= i; j++) g->k[j - start] = k.v[j];
                g->open = '(';
                g->close = ')';
                if (g->n == 1) g = g->k[0];
                kids_push(p, &groups, g, 0);
                start = i + 1;
            }
        }
        free(k.v);
        free(k.ops);
        k = groups;
    }
    gnode *r = kids_done(p, &k, kind);
    p->depth--;
    return r;
}

gnode *g_parse(sq_arena *a, const char *s, size_t n) {
    gparse p = {.arena = a, .s = s, .end = s + n};
    ws(&p);
    if (p.s >= p.end) return NULL;
    gnode *x = parse_list(&p, N_LIST);
    ws(&p);
    if (p.failed || !x || p.s != p.end) return NULL;
    if (x->kind == N_LIST && x->n == 1) x = x->k[0];
    return x;
}
