/* Normalisation of a LaTeX answer into the canonical text the parser reads and the string
 * fallback compares: math delimiters, spacing and sizing commands, \text wrappers, degree
 * marks, percent words, thousands separators and trailing punctuation go away; fraction
 * variants become \frac; relation commands get one spelling. Every pass is a single linear
 * scan with no recursion, so a 100K-deep brace nest costs the same as a flat string. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grade_int.h"

static const char *const unit_words[] = {
    "cm", "mm", "km", "m", "meter", "meters", "metre", "metres", "centimeter", "centimeters",
    "kilometer", "kilometers", "inch", "inches", "in", "ft", "foot", "feet", "yard", "yards",
    "mile", "miles", "mph", "kg", "g", "gram", "grams", "kilogram", "kilograms", "lb", "lbs",
    "pound", "pounds", "ounce", "ounces", "oz", "sec", "second", "seconds", "s", "min", "minute",
    "minutes", "hr", "hrs", "hour", "hours", "day", "days", "week", "weeks", "month", "months",
    "year", "years", "unit", "units", "sq", "square", "cubic", "degree", "degrees", "deg",
    "radian", "radians", "rad", "dollar", "dollars", "cent", "cents", "yuan", "euro", "euros",
    "point", "points", "people", "students", "times", "ways", "liters", "liter", "l", "ml",
    "gallons", "gallon", "cups", "cup", "apples", "items", "pages", "books", "boxes", "coins",
    "tiles", "marbles", "cookies", "pieces", "steps", "numbers", "integers", "digits", "sides",
    "edges", "vertices", "faces", "triangles", "squares", "cm2", "m2", "km2",
};

int g_is_unit_word(const char *w, size_t n) {
    int c0 = tolower((unsigned char)w[0]);
    for (size_t i = 0; i < SQ_ARRAY_LEN(unit_words); i++)
        if (unit_words[i][0] == c0 && strlen(unit_words[i]) == n && !strncasecmp(unit_words[i], w, n)) return 1;
    return 0;
}

static int is_text_cmd(const char *c, size_t n) {
    static const char *const t[] = {"text", "textbf", "textit", "textrm", "textnormal", "mbox", "mathrm",
                                    "mathbf", "mathit", "boldsymbol", "textsf", "texttt", "mathsf",
                                    "emph", "hbox", "mathbb", "mathcal", "bf", "rm"};
    for (size_t i = 0; i < SQ_ARRAY_LEN(t); i++)
        if (strlen(t[i]) == n && !strncmp(t[i], c, n)) return 1;
    return 0;
}

static int cmd_is(const char *c, size_t n, const char *name) { return strlen(name) == n && !strncmp(c, name, n); }

/* Position after the brace that closes the one at s[i] (s[i] == '{'), or n. */
static size_t match_brace(const char *s, size_t n, size_t i) {
    int64_t d = 0;
    for (; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n) {
            i++;
            continue;
        }
        if (s[i] == '{') d++;
        else if (s[i] == '}' && --d == 0) return i + 1;
    }
    return n;
}

typedef struct {
    char *d;
    size_t n, cap;
} obuf;

static int oput(obuf *o, const char *s, size_t n) {
    if (o->n + n + 1 > o->cap) {
        size_t c = o->cap ? o->cap * 2 : 256;
        while (c < o->n + n + 1) c *= 2;
        char *d = realloc(o->d, c);
        if (!d) return -1;
        o->d = d;
        o->cap = c;
    }
    memcpy(o->d + o->n, s, n);
    o->n += n;
    o->d[o->n] = 0;
    return 0;
}
static int oc(obuf *o, char c) { return oput(o, &c, 1); }

/* Pass 1: commands, delimiters, wrappers. drop[] remembers, per open brace, whether its
 * closing brace is to be dropped (a \text or \boxed wrapper). */
static char *pass_commands(const char *s, size_t n) {
    obuf o = {0};
    size_t dcap = 64, dn = 0;
    char *drop = malloc(dcap);
    if (!drop || oput(&o, "", 0)) {
        free(drop);
        free(o.d);
        return NULL;
    }
    int dbl = !strstr(s, "\\begin") && !strstr(s, "\\\\begin");
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '$') continue;
        if ((unsigned char)c == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] == 0xB0) { /* degree sign */
            i++;
            continue;
        }
        if (c == '{') {
            if (dn == dcap) {
                char *nd = realloc(drop, dcap * 2);
                if (!nd) goto oom;
                drop = nd;
                dcap *= 2;
            }
            if (i + 2 < n && s[i + 1] == ',') { /* 10{,}000 and 14 {, }916 */
                size_t j = i + 2;
                while (j < n && s[j] == ' ') j++;
                if (j < n && s[j] == '}') {
                    i = j;
                    while (o.n && o.d[o.n - 1] == ' ') o.d[--o.n] = 0;
                    continue;
                }
            }
            drop[dn++] = 0;
            oc(&o, '{');
            continue;
        }
        if (c == '}') {
            if (dn > 0 && drop[--dn]) continue;
            oc(&o, '}');
            continue;
        }
        if (c != '\\' || i + 1 >= n) {
            oc(&o, c);
            continue;
        }
        /* a doubled backslash before a letter is an escaped command: \\frac */
        if (dbl && s[i + 1] == '\\' && i + 2 < n && isalpha((unsigned char)s[i + 2])) i++;
        char nx = s[i + 1];
        if (!isalpha((unsigned char)nx)) {
            i++;
            switch (nx) {
            case '%': oc(&o, '%'); break;
            case '{': oput(&o, "\\{", 2); break;
            case '}': oput(&o, "\\}", 2); break;
            case '\\': oput(&o, "\\\\", 2); break;
            case ' ': oc(&o, ' '); break;
            case '|': oc(&o, '|'); break;
            case '!':
                if (o.n && o.d[o.n - 1] == ',')
                    while (i + 1 < n && s[i + 1] == ' ') i++;
                break;
            case '$': case ',': case ';': case ':': case '(': case ')': case '[': case ']':
            case '>': case '<':
                break;
            default: oc(&o, '\\'); oc(&o, nx);
            }
            continue;
        }
        size_t b = i + 1, e = b;
        while (e < n && isalpha((unsigned char)s[e])) e++;
        const char *cmd = s + b;
        size_t cl = e - b;
        i = e - 1;
        if (cmd_is(cmd, cl, "left") || cmd_is(cmd, cl, "right") || cmd_is(cmd, cl, "bigl") ||
            cmd_is(cmd, cl, "bigr") || cmd_is(cmd, cl, "Bigl") || cmd_is(cmd, cl, "Bigr") ||
            cmd_is(cmd, cl, "big") || cmd_is(cmd, cl, "Big") || cmd_is(cmd, cl, "displaystyle") ||
            cmd_is(cmd, cl, "textstyle") || cmd_is(cmd, cl, "limits") || cmd_is(cmd, cl, "nolimits") ||
            cmd_is(cmd, cl, "circ") || cmd_is(cmd, cl, "degree") || cmd_is(cmd, cl, "displaylines") ||
            cmd_is(cmd, cl, "noindent") || cmd_is(cmd, cl, "hline")) {
            if ((cmd_is(cmd, cl, "left") || cmd_is(cmd, cl, "right")) && e < n && s[e] == '.') i = e;
            if (cmd_is(cmd, cl, "circ") || cmd_is(cmd, cl, "degree")) {
                /* drop a "^" or "^{" left before the degree mark */
                if (o.n && o.d[o.n - 1] == '^') o.d[--o.n] = 0;
                else if (o.n >= 2 && o.d[o.n - 1] == '{' && o.d[o.n - 2] == '^' && dn > 0) {
                    o.n -= 2;
                    o.d[o.n] = 0;
                    drop[dn - 1] = 1;
                }
            }
            continue;
        }
        if ((cl >= 4 && !strncmp(cmd, "quad", 4)) || (cl >= 5 && !strncmp(cmd, "qquad", 5))) {
            /* \quadx: the spacing command glued to a following name */
            size_t ql = cmd[0] == 'q' && cmd[1] == 'q' ? 5 : 4;
            oc(&o, ' ');
            i = b + ql - 1;
            continue;
        }
        if (cmd_is(cmd, cl, "dfrac") || cmd_is(cmd, cl, "tfrac") || cmd_is(cmd, cl, "cfrac")) {
            oput(&o, "\\frac", 5);
            continue;
        }
        if (cmd_is(cmd, cl, "le") || cmd_is(cmd, cl, "leqslant") || cmd_is(cmd, cl, "leq")) {
            oput(&o, "\\leq ", 5);
            continue;
        }
        if (cmd_is(cmd, cl, "ge") || cmd_is(cmd, cl, "geqslant") || cmd_is(cmd, cl, "geq")) {
            oput(&o, "\\geq ", 5);
            continue;
        }
        if (cmd_is(cmd, cl, "ne") || cmd_is(cmd, cl, "neq")) {
            oput(&o, "\\neq ", 5);
            continue;
        }
        if (cmd_is(cmd, cl, "lt")) {
            oc(&o, '<');
            continue;
        }
        if (cmd_is(cmd, cl, "gt")) {
            oc(&o, '>');
            continue;
        }
        if (cmd_is(cmd, cl, "boxed") || cmd_is(cmd, cl, "fbox")) {
            size_t j = e;
            while (j < n && s[j] == ' ') j++;
            if (j < n && s[j] == '{') {
                if (dn == dcap) {
                    char *nd = realloc(drop, dcap * 2);
                    if (!nd) goto oom;
                    drop = nd;
                    dcap *= 2;
                }
                drop[dn++] = 1;
                i = j;
            }
            continue;
        }
        if (is_text_cmd(cmd, cl)) {
            size_t j = e;
            while (j < n && s[j] == ' ') j++;
            if (j >= n || s[j] != '{') continue;
            size_t close = match_brace(s, n, j);
            const char *in = s + j + 1;
            size_t il = close > j + 1 ? close - j - 2 : 0;
            while (il && isspace((unsigned char)*in)) in++, il--;
            while (il && isspace((unsigned char)in[il - 1])) il--;
            if ((il == 3 && !strncmp(in, "and", 3)) || (il == 2 && !strncmp(in, "or", 2)) ||
                (il == 1 && *in == ',')) {
                oput(&o, ", ", 2);
                i = close - 1;
                continue;
            }
            if (dn == dcap) {
                char *nd = realloc(drop, dcap * 2);
                if (!nd) goto oom;
                drop = nd;
                dcap *= 2;
            }
            drop[dn++] = 1;
            if (!cmd_is(cmd, cl, "mathrm") && !cmd_is(cmd, cl, "mathbf")) oc(&o, ' ');
            i = j;
            continue;
        }
        oc(&o, '\\');
        oput(&o, cmd, cl);
    }
    free(drop);
    return o.d;
oom:
    free(drop);
    free(o.d);
    return NULL;
}

static int word_at(const char *s, size_t n, size_t i, const char *w) {
    if (tolower((unsigned char)s[i]) != w[0]) return 0;
    size_t l = strlen(w);
    if (i + l > n || strncasecmp(s + i, w, l)) return 0;
    if (i + l < n && isalpha((unsigned char)s[i + l])) return 0;
    if (i > 0 && isalpha((unsigned char)s[i - 1])) return 0;
    return 1;
}

/* Pass 2: thousands separators, percent words, spaces, trailing punctuation. */
static char *pass_numbers(const char *s) {
    size_t n = strlen(s);
    obuf o = {0};
    if (oput(&o, "", 0)) return NULL;
    int brackets = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '(' || c == '[') brackets++;
        if ((c == ')' || c == ']') && brackets > 0) brackets--;
        int prev_ok = i == 0 || !(isalnum((unsigned char)s[i - 1]) || s[i - 1] == '.' || s[i - 1] == '_');
        int list_ctx = brackets > 0;
        if (!list_ctx && isdigit((unsigned char)c)) {
            /* inside brackets or after a comma, "12,102" is two items, not twelve thousand */
            size_t pb = i;
            while (pb > 0 && s[pb - 1] == ' ') pb--;
            list_ctx = pb > 0 && s[pb - 1] == ',';
        }
        int alpha = isalpha((unsigned char)c);
        if (alpha && o.n > 0 && (word_at(s, n, i, "and") || word_at(s, n, i, "or"))) {
            while (o.n && o.d[o.n - 1] == ' ') o.d[--o.n] = 0;
            if (o.n && o.d[o.n - 1] != ',') oc(&o, ',');
            i += s[i] == 'a' || s[i] == 'A' ? 2 : 1;
            continue;
        }
        if (c == ',' && o.n > 0) {
            size_t back = o.n;
            while (back > 0 && o.d[back - 1] == ' ') back--;
            if (back > 0 && o.d[back - 1] == ',') continue; /* "46, , 82" after "and" became a comma */
        }
        if (isdigit((unsigned char)c) && prev_ok && c != '0' && !list_ctx) {
            /* 7,425,000 and 1 000 000: a 1-3 digit head, then groups of exactly three */
            size_t h = i;
            while (h < n && isdigit((unsigned char)s[h])) h++;
            if (h - i <= 3 && h < n && (s[h] == ',' || s[h] == ' ')) {
                char sep = s[h];
                size_t j = h, groups = 0;
                while (j + 3 < n + 0 && s[j] == sep && isdigit((unsigned char)s[j + 1]) &&
                       isdigit((unsigned char)s[j + 2]) && isdigit((unsigned char)s[j + 3]) &&
                       (j + 4 >= n || !isdigit((unsigned char)s[j + 4]))) {
                    j += 4;
                    groups++;
                }
                int tail_ok = j >= n || !(s[j] == sep && j + 1 < n && isdigit((unsigned char)s[j + 1]));
                if (groups > 0 && tail_ok) {
                    for (size_t k = i; k < j; k++)
                        if (s[k] != sep) oc(&o, s[k]);
                    i = j - 1;
                    continue;
                }
            }
        }
        if (alpha && o.n > 0) {
            size_t back = o.n;
            while (back > 0 && o.d[back - 1] == ' ') back--;
            if (back > 0 && (isdigit((unsigned char)o.d[back - 1]) || o.d[back - 1] == '}')) {
                const char *w[] = {"percentage", "percent", "pct"};
                int hit = 0;
                for (int k = 0; k < 3 && !hit; k++)
                    if (word_at(s, n, i, w[k])) {
                        o.n = back;
                        oc(&o, '%');
                        i += strlen(w[k]) - 1;
                        hit = 1;
                    }
                if (hit) continue;
            }
        }
        if (isspace((unsigned char)c)) {
            if (o.n == 0 || o.d[o.n - 1] == ' ') continue;
            oc(&o, ' ');
            continue;
        }
        oc(&o, c);
    }
    /* trailing spaces and sentence punctuation */
    while (o.n > 0) {
        char c = o.d[o.n - 1];
        if (c == ' ' || c == '.' || c == ',' || c == ';' || c == ':' ||
            (c == '\\' && !(o.n >= 2 && o.d[o.n - 2] == '\\'))) {
            if (c == '.' && o.n >= 3 && o.d[o.n - 2] == '.' && o.d[o.n - 3] == '.') break;
            o.d[--o.n] = 0;
        } else {
            break;
        }
    }
    size_t st = 0;
    while (st < o.n && o.d[st] == ' ') st++;
    if (st) {
        memmove(o.d, o.d + st, o.n - st + 1);
        o.n -= st;
    }
    return o.d;
}

char *g_normalize(const char *s, size_t n) {
    if (n > SQ_GRADE_MAX_LEN) n = SQ_GRADE_MAX_LEN;
    int oom;
    char *folded = g_fold_minus(s, n, &oom);
    if (oom) return NULL;
    if (folded) s = folded, n = strlen(folded);
    char *a = pass_commands(s, n);
    free(folded);
    if (!a) return NULL;
    char *b = pass_numbers(a);
    free(a);
    int64_t v;
    if (b && g_number_words(b, strlen(b), &v)) { /* "four" is 4 */
        char digits[24];
        snprintf(digits, sizeof digits, "%lld", (long long)v);
        free(b);
        b = sq_strdup(digits);
    }
    return b;
}

char *sq_grade_normalize(const char *answer) {
    if (!answer) return NULL;
    return g_normalize(answer, strlen(answer));
}
