/* GGUF pre-tokenizers split the way llama.cpp splits them.
 *
 * llama.cpp does not run a Unicode regex engine. It rewrites each code point of the text to
 * one byte naming its class (letter, number, punctuation, symbol, mark, other; non-ASCII
 * white space becomes U+000B; ASCII stays itself), rewrites every \p{..} of the pattern to a
 * byte class accordingly, and runs a plain backtracking regex over those bytes. A pattern
 * without \p{..} runs over the code points themselves, again with non-ASCII white space seen
 * as U+000B. Both have consequences a Unicode engine would not reproduce: \p{Lu} and \p{Ll}
 * both mean "letter" outside ASCII, \s is ASCII white space plus U+000B, \d is [0-9], and an
 * empty match cuts the text. So we do the same with PCRE2: a 8-bit, non-UTF match over the
 * collapsed bytes, or a UTF match without Unicode properties over the code points. Categories
 * come from utf8proc; llama.cpp's tables may be a Unicode version apart for new characters. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tok_internal.h"

/* The collapsed classes (bytes above 0x7F never occur as themselves). */
enum { C_OTHER = 0xD0, C_NUMBER = 0xD1, C_LETTER = 0xD2, C_PUNCT = 0xD3, C_MARK = 0xD4, C_SYMBOL = 0xD5, C_HAN = 0xD6 };

/* What \p{X} stands for, as the inside of a character class: the class byte plus the ASCII
 * characters of that Unicode category. */
static const char *class_of(const char *name, size_t len) {
    static const struct {
        const char *name, *set;
    } k[] = {
        {"N", "\\x{D1}0-9"},
        {"L", "\\x{D2}\\x{D6}A-Za-z"},
        {"Lu", "\\x{D2}\\x{D6}A-Za-z"},
        {"Ll", "\\x{D2}\\x{D6}A-Za-z"},
        {"Lt", "\\x{D2}\\x{D6}A-Za-z"},
        {"Lm", "\\x{D2}\\x{D6}A-Za-z"},
        {"Lo", "\\x{D2}\\x{D6}A-Za-z"},
        {"Lnh", "\\x{D2}A-Za-z"},
        {"Han", "\\x{D6}"},
        {"P", "\\x{D3}!-#%-*,-/:;?@\\[-\\]_{}"},
        {"S", "\\x{D5}\\$+<=>\\^`|~"},
        {"M", "\\x{D4}"},
    };
    for (size_t i = 0; i < SQ_ARRAY_LEN(k); i++)
        if (strlen(k[i].name) == len && !memcmp(k[i].name, name, len)) return k[i].set;
    return NULL;
}

/* Rewrite \p{X} into byte classes; 0 ok, SQ_EUNSUP for an unknown property. */
static int collapse_pattern(const char *pat, sq_buf *out) {
    int inside = 0;
    for (size_t i = 0; pat[i];) {
        if (pat[i] == '\\' && pat[i + 1] == 'p' && pat[i + 2] == '{') {
            const char *close = strchr(pat + i + 3, '}');
            const char *set = close ? class_of(pat + i + 3, (size_t)(close - pat - i - 3)) : NULL;
            if (!set) return SQ_EUNSUP;
            if (sq_buf_printf(out, inside ? "%s" : "[%s]", set)) return SQ_ENOMEM;
            i = (size_t)(close - pat) + 1;
            continue;
        }
        if (pat[i] == '\\' && pat[i + 1]) {
            if (sq_buf_append(out, pat + i, 2)) return SQ_ENOMEM;
            i += 2;
            continue;
        }
        if (pat[i] == '[' && !inside) inside = 1;
        else if (pat[i] == ']' && inside) inside = 0;
        if (sq_buf_append(out, pat + i, 1)) return SQ_ENOMEM;
        i++;
    }
    return sq_buf_append(out, "", 0);
}

int tok_add_llama_split(sq_tokenizer *t, const char *pattern, sq_err *e) {
    if (t->n_steps >= TOK_MAX_STEPS)
        return sq_fail(e, SQ_EUNSUP, "tokenizer: more than %d pre-tokenizer steps", TOK_MAX_STEPS);
    int mode = !strcmp(pattern, "\\p{Digits3}") ? LL_DIGITS3 : strstr(pattern, "\\p{") ? LL_COLLAPSED : LL_WIDE;
    pcre2_code *re = NULL;
    if (mode != LL_DIGITS3) {
        sq_buf col = {0};
        const char *src = pattern;
        if (mode == LL_COLLAPSED) {
            int rc = collapse_pattern(pattern, &col);
            if (rc) {
                sq_buf_free(&col);
                return sq_fail(e, rc, "tokenizer: pre-tokenizer regex '%.60s': unknown \\p{..} class", pattern);
            }
            src = col.data;
        }
        /* ECMAScript's $ is the end only; no Unicode properties: \s, \d and \w stay ASCII */
        uint32_t opts = PCRE2_DOLLAR_ENDONLY | (mode == LL_WIDE ? PCRE2_UTF : 0);
        int errcode;
        PCRE2_SIZE erroff;
        re = pcre2_compile((PCRE2_SPTR)src, PCRE2_ZERO_TERMINATED, opts, &errcode, &erroff, NULL);
        sq_buf_free(&col);
        if (!re) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(errcode, msg, sizeof msg);
            return sq_fail(e, SQ_EUNSUP, "tokenizer: pre-tokenizer regex '%.60s' at offset %zu: %s", pattern,
                           (size_t)erroff, (const char *)msg);
        }
        pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    }
    tok_step *s = &t->steps[t->n_steps++];
    memset(s, 0, sizeof *s);
    s->kind = PT_LLAMA;
    s->llama_mode = mode;
    s->re = re;
    s->behavior = SPLIT_ISOLATED;
    /* what a tokenizer.json would say (HF's own spelling of the digit grouping) */
    s->pattern = sq_strdup(mode == LL_DIGITS3 ? "\\d{1,3}(?=(?:\\d{3})*\\b)" : pattern);
    if (!s->pattern) return sq_fail(e, SQ_ENOMEM, "tokenizer: out of memory");
    return 0;
}

/* ---- the text as llama.cpp sees it ---------------------------------------------------- */

struct tok_llama_view {
    size_t n, ncp;
    uint32_t *cpoff; /* byte offset of code point i in the text; [ncp] = n */
    uint32_t *b2cp;  /* code point index at byte offset b (valid at boundaries); [n] = ncp */
    uint8_t *col;    /* collapsed: one byte per code point */
    char *wide;      /* the text with non-ASCII white space as U+000B */
    uint32_t *woff;  /* byte offset of code point i in wide; [ncp] = wide length */
    uint32_t *wb2cp; /* code point index at a byte offset of wide */
};

static int is_han(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2EBEF) || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

static uint8_t collapse_cp(uint32_t c, int han) {
    if (c < 0x80) return (uint8_t)c;
    if (tok_is_space_cp(c)) return 0x0B;
    if (han && is_han(c)) return C_HAN;
    switch (utf8proc_category((utf8proc_int32_t)c)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: return C_LETTER;
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME: return C_MARK;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO: return C_NUMBER;
    case UTF8PROC_CATEGORY_PC:
    case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI:
    case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO: return C_PUNCT;
    case UTF8PROC_CATEGORY_SM:
    case UTF8PROC_CATEGORY_SC:
    case UTF8PROC_CATEGORY_SK:
    case UTF8PROC_CATEGORY_SO: return C_SYMBOL;
    default: return C_OTHER;
    }
}

void tok_llama_view_free(tok_llama_view *v) {
    if (!v) return;
    free(v->cpoff);
    free(v->b2cp);
    free(v->col);
    free(v->wide);
    free(v->woff);
    free(v->wb2cp);
    free(v);
}

int tok_llama_view_new(tok_llama_view **out, const sq_tokenizer *t, const char *s, size_t n) {
    *out = NULL;
    if (n >= UINT32_MAX / 4) return SQ_ERANGE;
    int need_wide = 0;
    for (int i = 0; i < t->n_steps; i++) need_wide |= t->steps[i].kind == PT_LLAMA && t->steps[i].llama_mode == LL_WIDE;
    tok_llama_view *v = calloc(1, sizeof *v);
    if (!v) return SQ_ENOMEM;
    v->n = n;
    v->cpoff = malloc((n + 1) * sizeof *v->cpoff);
    v->b2cp = malloc((n + 1) * sizeof *v->b2cp);
    v->col = malloc(n + 1);
    if (need_wide) {
        /* U+000B is never longer than what it replaces */
        v->wide = malloc(n + 1);
        v->woff = malloc((n + 1) * sizeof *v->woff);
        v->wb2cp = malloc((n + 1) * sizeof *v->wb2cp);
    }
    if (!v->cpoff || !v->b2cp || !v->col || (need_wide && (!v->wide || !v->woff || !v->wb2cp))) {
        tok_llama_view_free(v);
        return SQ_ENOMEM;
    }
    size_t k = 0, w = 0;
    for (size_t i = 0; i < n;) {
        uint32_t c;
        int len = tok_utf8_next((const uint8_t *)s + i, n - i, &c);
        if (!len) len = 1, c = 0xFFFD; /* the encoder hands over valid UTF-8; stay safe anyway */
        v->cpoff[k] = (uint32_t)i;
        for (int j = 0; j < len; j++) v->b2cp[i + (size_t)j] = (uint32_t)k;
        v->col[k] = collapse_cp(c, t->llama_han);
        if (need_wide) {
            v->woff[k] = (uint32_t)w;
            int wl = (c >= 0x80 && tok_is_space_cp(c)) ? 1 : len;
            if (wl == 1 && len > 1) v->wide[w] = 0x0B;
            else memcpy(v->wide + w, s + i, (size_t)len);
            for (int j = 0; j < wl; j++) v->wb2cp[w + (size_t)j] = (uint32_t)k;
            w += (size_t)wl;
        }
        i += (size_t)len;
        k++;
    }
    v->ncp = k;
    v->cpoff[k] = (uint32_t)n;
    v->b2cp[n] = (uint32_t)k;
    if (need_wide) {
        v->woff[k] = (uint32_t)w;
        v->wb2cp[w] = (uint32_t)k;
    }
    *out = v;
    return 0;
}

/* ---- splitting ------------------------------------------------------------------------ */

/* Push code points [a, b) as a piece (nothing when empty). */
static int push_cp(const tok_llama_view *v, size_t a, size_t b, struct tok_spans *out) {
    if (b <= a) return 0;
    return tok_spans_push(out, v->cpoff[a], v->cpoff[b] - v->cpoff[a]);
}

/* llama.cpp's digit grouping: each run of numbers becomes its length mod 3 (when not 0), then
 * groups of three; whatever came before the run since the last cut joins its first group. */
static int split_digits3(const tok_llama_view *v, size_t a, size_t b, struct tok_spans *out) {
    size_t prev = a;
    for (size_t p = a; p < b;) {
        uint8_t c = v->col[p];
        if (!(c == C_NUMBER || (c >= '0' && c <= '9'))) {
            p++;
            continue;
        }
        size_t q = p;
        while (q < b && (v->col[q] == C_NUMBER || (v->col[q] >= '0' && v->col[q] <= '9'))) q++;
        size_t cur = p, rem = (q - p) % 3;
        if (rem) {
            if (push_cp(v, prev, cur + rem, out)) return SQ_ENOMEM;
            prev = cur += rem;
        }
        for (; cur < q; cur += 3) {
            if (push_cp(v, prev, cur + 3, out)) return SQ_ENOMEM;
            prev = cur + 3;
        }
        p = q;
    }
    return push_cp(v, prev, b, out);
}

int tok_llama_split(const tok_step *st, const tok_llama_view *v, size_t s0, size_t n, pcre2_match_data *md,
                    const pcre2_match_context *mctx, struct tok_spans *out, sq_err *e) {
    size_t a = v->b2cp[s0], b = v->b2cp[s0 + n];
    if (st->llama_mode == LL_DIGITS3) return split_digits3(v, a, b, out) ? sq_fail(e, SQ_ENOMEM, "out of memory") : 0;
    int wide = st->llama_mode == LL_WIDE;
    const char *sub = wide ? v->wide + v->woff[a] : (const char *)v->col + a;
    size_t len = wide ? v->woff[b] - v->woff[a] : b - a;
    /* match offsets (bytes of sub) to code point indices */
#define CP(off) (wide ? (size_t)v->wb2cp[v->woff[a] + (off)] : a + (off))
    size_t pos = 0, prev = 0;
    uint32_t flags = PCRE2_NO_UTF_CHECK;
    while (pos <= len) {
        int rc = pcre2_match(st->re, (PCRE2_SPTR)sub, len, pos, flags, md, (pcre2_match_context *)mctx);
        /* nested repeats (exaone-moe's words) can outgrow the JIT stack: the interpreter,
         * which keeps its backtracking on the heap, gives the same answer */
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
            rc = pcre2_match(st->re, (PCRE2_SPTR)sub, len, pos, flags | PCRE2_NO_JIT, md, (pcre2_match_context *)mctx);
        if (rc == PCRE2_ERROR_NOMATCH) {
            if (!(flags & PCRE2_ANCHORED)) break;
            /* no non-empty match where the empty one was: move on one character */
            flags = PCRE2_NO_UTF_CHECK;
            if (pos >= len) break;
            pos++;
            while (wide && pos < len && ((uint8_t)sub[pos] & 0xC0) == 0x80) pos++;
            continue;
        }
        if (rc < 0) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return sq_fail(e, SQ_ERANGE, "tokenizer: pre-tokenizer regex failed at byte %zu: %s", s0, (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        /* the text between matches is a piece too; an empty match only cuts */
        if (push_cp(v, CP(prev), CP(ms), out) || push_cp(v, CP(ms), CP(me), out))
            return sq_fail(e, SQ_ENOMEM, "tokenizer: out of memory");
        prev = pos = me;
        /* after an empty match, std::regex_iterator first asks for a non-empty one right there */
        flags = PCRE2_NO_UTF_CHECK | (me == ms ? PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED : 0);
    }
    if (push_cp(v, CP(prev), CP(len), out)) return sq_fail(e, SQ_ENOMEM, "tokenizer: out of memory");
#undef CP
    return 0;
}
