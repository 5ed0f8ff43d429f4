/* Answer extraction from model responses and gold fields. Candidates are found by linear
 * scans (no regex backtracking, no recursion): \boxed/\fbox groups with brace matching,
 * "final answer is" / "answer is" phrases, GSM8K's "#### N", LaTeX math spans, and the last
 * number. Where boxes or spans follow each other with only a few connecting words between
 * them ("\boxed{1} and \boxed{2}"), they are joined into one list answer. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "grade_int.h"

typedef struct seg {
    size_t b, e;   /* content [b, e) */
    size_t ob, oe; /* whole segment including delimiters */
} seg;

typedef struct segs {
    seg *v;
    int n, cap;
} segs;

static int seg_push(segs *s, size_t b, size_t e, size_t ob, size_t oe) {
    if (s->n == s->cap) {
        int c = s->cap ? s->cap * 2 : 16;
        seg *nv = realloc(s->v, sizeof *nv * (size_t)c);
        if (!nv) return -1;
        s->v = nv;
        s->cap = c;
    }
    s->v[s->n++] = (seg){b, e, ob, oe};
    return 0;
}

/* Index after the group opened at t[i] == '{', or 0 when unbalanced. */
static size_t close_brace(const char *t, size_t n, size_t i) {
    int64_t d = 0;
    for (; i < n; i++) {
        if (t[i] == '\\' && i + 1 < n && (t[i + 1] == '{' || t[i + 1] == '}')) {
            i++;
            continue;
        }
        if (t[i] == '{') d++;
        else if (t[i] == '}' && --d == 0) return i + 1;
    }
    return 0;
}

static void find_boxes(const char *t, size_t n, segs *out) {
    for (size_t i = 0; i + 4 < n; i++) {
        if (t[i] != '\\') continue;
        size_t l = 0;
        if (!strncmp(t + i + 1, "boxed", 5)) l = 6;
        else if (!strncmp(t + i + 1, "fbox", 4)) l = 5;
        else continue;
        size_t j = i + l;
        while (j < n && t[j] == ' ') j++;
        if (j >= n || t[j] != '{') continue;
        size_t e = close_brace(t, n, j);
        if (!e) continue;
        seg_push(out, j + 1, e - 1, i, e);
        i = e - 1;
    }
}

/* $..$, $$..$$, \(..\), \[..\]; inline spans may not cross a line break. */
static void find_spans(const char *t, size_t n, segs *out) {
    for (size_t i = 0; i < n; i++) {
        const char *close = NULL;
        size_t ol = 0;
        int inl = 0;
        if (t[i] == '\\' && i + 1 < n && (i == 0 || t[i - 1] != '\\')) {
            if (t[i + 1] == '(') close = "\\)", ol = 2, inl = 1;
            else if (t[i + 1] == '[') close = "\\]", ol = 2;
            else if (t[i + 1] == '$') {
                i++;
                continue;
            }
        } else if (t[i] == '$') {
            if (i + 1 < n && t[i + 1] == '$') close = "$$", ol = 2;
            else close = "$", ol = 1, inl = 1;
        }
        if (!close) continue;
        size_t cl = strlen(close), j = i + ol, found = 0;
        for (; j + cl <= n; j++) {
            if (t[j] == '\\' && close[0] == '$' && j + 1 < n && t[j + 1] == '$') {
                j++;
                continue;
            }
            if (inl && t[j] == '\n') break;
            if (!strncmp(t + j, close, cl)) {
                found = 1;
                break;
            }
        }
        if (!found) {
            if (t[i] == '$') i += ol - 1;
            continue;
        }
        seg_push(out, i + ol, j, i, j + cl);
        i = j + cl - 1;
    }
}

/* Is the text between two answers only a few joining words ("and", ",", "\quad")? Boxes
 * may have up to four words between them ("\boxed{1} papers and \boxed{2}"); math spans
 * only "and"/"or" and punctuation, since prose around formulas is the norm. */
static int joins(const char *t, size_t b, size_t e, int strict) {
    if (strict) {
        for (size_t i = b; i < e; i++) {
            if (isalpha((unsigned char)t[i])) {
                size_t j = i;
                while (j < e && isalpha((unsigned char)t[j])) j++;
                if (!((j - i == 3 && !strncmp(t + i, "and", 3)) || (j - i == 2 && !strncmp(t + i, "or", 2)))) return 0;
                i = j - 1;
            } else if (!(isspace((unsigned char)t[i]) || t[i] == ',' || t[i] == ';')) {
                return 0;
            }
        }
        return 1;
    }
    int words = 0, inword = 0;
    for (size_t i = b; i < e; i++) {
        char c = t[i];
        if (c == '\n' && i + 1 < e && t[i + 1] == '\n') return 0;
        if (c == '.' && i + 1 < e && t[i + 1] == ' ') return 0;
        if (c == '\\') { /* skip command names: \quad, \text */
            while (i + 1 < e && isalpha((unsigned char)t[i + 1])) i++;
            inword = 0;
            continue;
        }
        if (isalpha((unsigned char)c)) {
            if (!inword) words++;
            inword = 1;
        } else {
            inword = 0;
        }
    }
    return words <= 4;
}

static char *join_chain(const char *t, const segs *s, int last, int *first_out, int strict) {
    int first = last;
    while (first > 0 && first > last - 64 && joins(t, s->v[first - 1].oe, s->v[first].ob, strict)) first--;
    *first_out = first;
    size_t total = 0;
    for (int i = first; i <= last; i++) total += s->v[i].e - s->v[i].b + 2;
    char *r = malloc(total + 1);
    if (!r) return NULL;
    size_t o = 0;
    for (int i = first; i <= last; i++) {
        if (i > first) r[o++] = ',', r[o++] = ' ';
        memcpy(r + o, t + s->v[i].b, s->v[i].e - s->v[i].b);
        o += s->v[i].e - s->v[i].b;
    }
    r[o] = 0;
    return r;
}

/* Last occurrence of a phrase, case-insensitive; returns the index after it or 0. */
static size_t last_phrase(const char *t, size_t n, const char *ph, size_t *at) {
    size_t l = strlen(ph), best = 0;
    for (size_t i = 0; i + l <= n; i++)
        if (tolower((unsigned char)t[i]) == ph[0] && tolower((unsigned char)t[i + 1]) == ph[1] &&
            !strncasecmp(t + i, ph, l)) {
            best = i + l;
            if (at) *at = i;
        }
    return best;
}

/* The last number in plain text, with thousands separators and decimal commas resolved. */
static char *last_number_at(const char *t, size_t n, size_t *pos) {
    size_t best_b = 0, best_e = 0;
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)t[i])) continue;
        if (i > 0 && (isalpha((unsigned char)t[i - 1]) || t[i - 1] == '_')) {
            while (i < n && isalnum((unsigned char)t[i])) i++;
            continue;
        }
        size_t b = i, e = i;
        while (e < n) {
            if (isdigit((unsigned char)t[e])) e++;
            else if ((t[e] == ',' || t[e] == '.' || t[e] == ' ') && e + 1 < n && isdigit((unsigned char)t[e + 1]) &&
                     !(t[e] == ' ' && !(e + 3 < n + 1 && isdigit((unsigned char)t[e + 1]) && e + 3 < n &&
                                        isdigit((unsigned char)t[e + 2]) && isdigit((unsigned char)t[e + 3]) &&
                                        (e + 4 >= n || !isdigit((unsigned char)t[e + 4])))))
                e++;
            else break;
        }
        if (b > 0 && t[b - 1] == '.') b--;
        if (b > 0 && t[b - 1] == '-') b--;
        best_b = b;
        best_e = e;
        found = 1;
        i = e;
        /* 2/3: a plain fraction is one number */
        if (e + 1 < n && t[e] == '/' && isdigit((unsigned char)t[e + 1])) {
            size_t f = e + 1;
            while (f < n && isdigit((unsigned char)t[f])) f++;
            best_e = f;
            i = f;
        }
    }
    if (!found) return NULL;
    if (pos) *pos = best_b;
    char *r = malloc(best_e - best_b + 2);
    if (!r) return NULL;
    /* decide what commas and spaces mean */
    const char *s = t + best_b;
    size_t l = best_e - best_b;
    int commas = 0, dots = 0, spaces = 0;
    for (size_t i = 0; i < l; i++) commas += s[i] == ',', dots += s[i] == '.', spaces += s[i] == ' ';
    if (memchr(s, '/', l)) commas = 0;
    int comma_thousands = 1;
    if (commas) {
        size_t g = 0, first = 1;
        for (size_t i = 0; i <= l; i++) {
            if (i == l || s[i] == ',' || s[i] == '.') {
                if (first) {
                    size_t head = g;
                    if (head > 3 || (s[0] == '0' && head == 1) || (s[0] == '-' && head > 4)) comma_thousands = 0;
                    first = 0;
                } else if (i <= l && (i == l || s[i] == ',') && g != 3) {
                    comma_thousands = 0;
                }
                if (i < l && s[i] == '.') break;
                g = 0;
            } else if (s[i] != '-') {
                g++;
            }
        }
        if (dots) comma_thousands = 1;
    }
    size_t o = 0;
    for (size_t i = 0; i < l; i++) {
        if (s[i] == ' ') continue;
        if (s[i] == ',') {
            if (comma_thousands) continue;
            if (commas == 1) {
                r[o++] = '.';
                continue;
            }
            o = 0; /* a list like 1,2,3: keep the last */
            continue;
        }
        r[o++] = s[i];
    }
    r[o] = 0;
    (void)spaces;
    return r;
}

static char *last_number(const char *t, size_t n) { return last_number_at(t, n, NULL); }

static char *dup_range(const char *t, size_t b, size_t e) {
    while (b < e && isspace((unsigned char)t[b])) b++;
    while (e > b && isspace((unsigned char)t[e - 1])) e--;
    return sq_strndup(t + b, e - b);
}

/* A LaTeX command (a backslash and a letter) in t[0, n): "\\frac", not the "\\$" of an
 * escaped dollar sign in prose. */
static int has_command(const char *t, size_t n) {
    for (size_t i = 0; i + 1 < n; i++)
        if (t[i] == '\\' && isalpha((unsigned char)t[i + 1])) return 1;
    return 0;
}

/* Plain prose words (3+ letters, not a command name) in t[b, e). */
static int prose_words(const char *t, size_t b, size_t e) {
    int words = 0;
    for (size_t i = b; i < e; i++) {
        if (t[i] == '\\') {
            while (i + 1 < e && isalpha((unsigned char)t[i + 1])) i++;
            continue;
        }
        if (isalpha((unsigned char)t[i]) && (i == b || !isalpha((unsigned char)t[i - 1]))) {
            size_t j = i;
            while (j < e && isalpha((unsigned char)t[j])) j++;
            if (j - i >= 3) words++;
            i = j - 1;
        }
    }
    return words;
}

/* Whether the text after a "final answer is" phrase states an answer at all: a box or a
 * formula, a short answer (two prose words at most), or one that starts as an answer does
 * (a digit, a sign, LaTeX, a bracket, a number word: "7 apples, since ..."). "The final
 * answer is positive, because ..." states none, and must not beat an earlier \boxed{}. */
static int phrase_states_answer(const char *t, size_t b, size_t n) {
    size_t e = n;
    const char *stops[] = {"I hope", "<|", "\n\n"};
    for (int k = 0; k < 3; k++)
        for (size_t i = b; i + strlen(stops[k]) <= e; i++)
            if (!strncmp(t + i, stops[k], strlen(stops[k]))) {
                e = i;
                break;
            }
    while (b < e && (t[b] == ':' || isspace((unsigned char)t[b]))) b++;
    while (e > b && (isspace((unsigned char)t[e - 1]) || t[e - 1] == '.')) e--;
    if (b >= e) return 0;
    segs sp = {0};
    find_boxes(t + b, e - b, &sp);
    if (sp.n == 0) find_spans(t + b, e - b, &sp);
    int math = sp.n > 0;
    free(sp.v);
    if (math || prose_words(t, b, e) <= 2) return 1;
    unsigned char c = (unsigned char)t[b];
    if (isdigit(c) || strchr("-+\\([{.", c)) return 1;
    size_t w = b;
    while (w < e && (isalpha((unsigned char)t[w]) || t[w] == '-')) w++;
    int64_t v;
    return g_number_words(t + b, w - b, &v);
}

/* The answer in the text after "final answer is" and the like. */
static char *from_phrase(const char *t, size_t b, size_t n, const sq_grade_opts *o) {
    size_t e = n;
    const char *stops[] = {"I hope", "<|", "\n\n"};
    for (int k = 0; k < 3; k++) {
        const char *q = NULL;
        for (size_t i = b; i + strlen(stops[k]) <= e; i++)
            if (!strncmp(t + i, stops[k], strlen(stops[k]))) {
                q = t + i;
                break;
            }
        if (q) e = (size_t)(q - t);
    }
    while (b < e && (t[b] == ':' || isspace((unsigned char)t[b]))) b++;
    /* "Final Answer: The volume of $X$ is 120": the part after the last " is " */
    size_t is_at = 0;
    for (size_t i = b; i + 4 <= e; i++)
        if (!strncmp(t + i, " is ", 4)) is_at = i + 4;
    if (is_at) b = is_at;
    segs sp = {0};
    find_boxes(t + b, e - b, &sp);
    int strict = sp.n == 0;
    if (sp.n == 0) find_spans(t + b, e - b, &sp);
    if (sp.n > 0) {
        int first;
        char *r = join_chain(t + b, &sp, sp.n - 1, &first, strict);
        free(sp.v);
        return r;
    }
    free(sp.v);
    while (e > b && (isspace((unsigned char)t[e - 1]) || t[e - 1] == '.')) e--;
    if (prose_words(t, b, e) <= 2 && e > b) return dup_range(t, b, e);
    if (o && o->no_number_fallback > 0) return NULL;
    return last_number(t + b, e - b);
}

char *sq_grade_extract(const char *response, const sq_grade_opts *o, const char **how) {
    if (how) *how = NULL;
    if (!response) return NULL;
    size_t n = strlen(response);
    if (n > SQ_GRADE_MAX_LEN) {
        response += n - SQ_GRADE_MAX_LEN; /* answers live at the end */
        n = SQ_GRADE_MAX_LEN;
    }
    int oom;
    char *folded = g_fold_minus(response, n, &oom);
    if (oom) return NULL;
    const char *t = folded ? folded : response;
    segs bx = {0};
    find_boxes(t, n, &bx);
    size_t fa_at = 0, hash_at = 0, ai_at = 0;
    size_t fa = last_phrase(t, n, "final answer is", &fa_at);
    size_t fa2_at = 0, fa2 = last_phrase(t, n, "final answer:", &fa2_at);
    if (fa2 && (!fa || fa2_at > fa_at + 20)) fa = fa2, fa_at = fa2_at;
    size_t hash = last_phrase(t, n, "####", &hash_at);
    size_t box_at = bx.n ? bx.v[bx.n - 1].ob : 0;
    char *r = NULL;
    if (hash && (!bx.n || hash_at > box_at) && (!fa || hash_at > fa_at)) {
        size_t e = hash;
        while (e < n && t[e] != '\n') e++;
        r = dup_range(t, hash, e);
        if (how) *how = "gsm8k";
    } else if (fa && (!bx.n || (fa_at > box_at && phrase_states_answer(t, fa, n)))) {
        r = from_phrase(t, fa, n, o);
        if (how) *how = "final_answer";
    } else if (bx.n) {
        int first;
        r = join_chain(t, &bx, bx.n - 1, &first, 0);
        if (how) *how = "boxed";
    } else {
        size_t ai = last_phrase(t, n, "answer is", &ai_at);
        if (ai) {
            r = from_phrase(t, ai, n, o);
            if (how) *how = "answer_is";
        }
        if (!r) {
            segs sp = {0};
            find_spans(t, n, &sp);
            int numbers = !(o && o->no_number_fallback > 0);
            size_t npos = 0;
            char *num = numbers ? last_number_at(t, n, &npos) : NULL;
            if (sp.n) {
                const seg *l = &sp.v[sp.n - 1];
                if (num && npos >= l->oe) {
                    /* a number in the prose after the last formula is the later statement */
                    r = num, num = NULL;
                    if (how) *how = "last_number";
                } else if (numbers && !memchr(t + l->b, '\\', l->e - l->b) &&
                           (memchr(t + l->b, '?', l->e - l->b) || prose_words(t, l->b, l->e) > 1) &&
                           (r = last_number(t + l->b, l->e - l->b)) != NULL) {
                    /* a span of prose ("$? just about 1$") is no formula: take its number */
                    if (how) *how = "last_number";
                } else {
                    int first;
                    r = join_chain(t, &sp, sp.n - 1, &first, 1);
                    if (how) *how = "latex";
                }
            } else if (has_command(t, n) && prose_words(t, 0, n) <= 2) {
                /* bare LaTeX without delimiters: \frac{10}{9} */
                r = dup_range(t, 0, n);
                if (how) *how = "latex";
            }
            free(num);
            free(sp.v);
        }
        if (!r && !(o && o->no_number_fallback > 0)) {
            r = last_number(t, n);
            if (how) *how = "last_number";
            int64_t v;
            size_t at;
            if (!r && g_last_number_words(t, n, &v, &at)) {
                /* no digit anywhere: "She has four apples left." */
                char digits[24];
                snprintf(digits, sizeof digits, "%lld", (long long)v);
                r = sq_strdup(digits);
                if (how) *how = "number_words";
            }
        }
    }
    free(bx.v);
    free(folded);
    if (r && !*r) {
        free(r);
        r = NULL;
    }
    return r;
}

char *sq_grade_gold(const char *field, sq_gold_format fmt) {
    if (!field) return NULL;
    size_t n = strlen(field);
    if (fmt == SQ_GOLD_AUTO) {
        if (strstr(field, "####")) fmt = SQ_GOLD_GSM8K;
        else if (strstr(field, "\\boxed") || strstr(field, "\\fbox")) fmt = SQ_GOLD_MATH;
        else if (strchr(field, '$')) fmt = SQ_GOLD_DOLLARS;
        else fmt = SQ_GOLD_PLAIN;
    }
    switch (fmt) {
    case SQ_GOLD_GSM8K: {
        size_t at = 0, b = last_phrase(field, n, "####", &at);
        if (!b) return NULL;
        size_t e = b;
        while (e < n && field[e] != '\n') e++;
        char *r = dup_range(field, b, e);
        if (!r) return NULL;
        size_t o = 0; /* "#### 1,000" */
        for (size_t i = 0; r[i]; i++)
            if (r[i] != ',') r[o++] = r[i];
        r[o] = 0;
        return r;
    }
    case SQ_GOLD_MATH: {
        segs bx = {0};
        find_boxes(field, n, &bx);
        char *r = NULL;
        if (bx.n) {
            int first;
            r = join_chain(field, &bx, bx.n - 1, &first, 0);
        }
        free(bx.v);
        return r;
    }
    case SQ_GOLD_DOLLARS: {
        segs sp = {0};
        find_spans(field, n, &sp);
        char *r = NULL;
        if (sp.n) {
            int first;
            r = join_chain(field, &sp, sp.n - 1, &first, 1);
        } else {
            /* a gold field is not prose: its "$...$" may span lines */
            size_t b = 0, e = n;
            while (b < e && isspace((unsigned char)field[b])) b++;
            while (e > b && isspace((unsigned char)field[e - 1])) e--;
            if (e - b >= 2 && field[b] == '$' && field[e - 1] == '$') b++, e--;
            r = dup_range(field, b, e);
        }
        free(sp.v);
        return r;
    }
    default: return dup_range(field, 0, n);
    }
}
