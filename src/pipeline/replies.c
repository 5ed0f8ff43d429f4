/* Reply parsers for the Figure 9-12 prompts (judge.h). All three read from the END of the
 * reply backwards: what a model concludes with is what counts, and the scan usually stops
 * a few hundred bytes from the end, which is what keeps them at millions of replies/s.
 * Nothing is allocated; results are spans into the reply. */
#include <string.h>

#include "scalequest/judge.h"

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }
static int is_alpha(int c) { return (c | 32) >= 'a' && (c | 32) <= 'z'; }
static int is_alnum(int c) { return is_alpha(c) || (c >= '0' && c <= '9'); }
static int is_hspace(int c) { return c == ' ' || c == '\t'; }
static int is_space(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* A UTF-8 sequence that is punctuation or a space for our purposes: U+0080-U+00BF (C2 xx:
 * no-break space, guillemets), U+2000-U+206F (E2 80/81 xx: curly quotes, dashes, spaces),
 * U+3000-U+303F (E3 80 xx: CJK full stop, brackets), U+FF01-U+FF0F, U+FF1A-U+FF20 (EF BC xx:
 * fullwidth punctuation). Everything else above ASCII counts as a letter (so "Noé" is not
 * "No"). */
static int utf8_punct_at(const unsigned char *s, size_t n) {
    if (n >= 2 && s[0] == 0xC2 && s[1] >= 0x80 && s[1] <= 0xBF) return 2;
    if (n >= 3 && s[0] == 0xE2 && (s[1] == 0x80 || s[1] == 0x81)) return 3;
    if (n >= 3 && s[0] == 0xE3 && s[1] == 0x80) return 3;
    if (n >= 3 && s[0] == 0xEF && s[1] == 0xBC && ((s[2] >= 0x81 && s[2] <= 0x8F) || (s[2] >= 0x9A && s[2] <= 0xA0)))
        return 3;
    return 0;
}

/* Is the character ending just before s+i (i > 0) a "word" character (letter, digit, or a
 * non-punctuation non-ASCII character)? */
static int word_before(const unsigned char *s, size_t i) {
    if (i == 0) return 0;
    unsigned char c = s[i - 1];
    if (c < 0x80) return is_alnum(c);
    size_t k = i - 1;
    while (k > 0 && (s[k] & 0xC0) == 0x80 && i - k < 4) k--;
    return !utf8_punct_at(s + k, i - k);
}

static int word_at(const unsigned char *s, size_t i, size_t n) {
    if (i >= n) return 0;
    if (s[i] < 0x80) return is_alnum(s[i]);
    return !utf8_punct_at(s + i, n - i);
}

/* ---- verdict -------------------------------------------------------------------------- */

const char *sq_verdict_name(sq_verdict v) {
    return v == SQ_VERDICT_YES ? "yes" : v == SQ_VERDICT_NO ? "no" : "unknown";
}

int sq_reply_verdict_official(const char *reply, size_t len) {
    for (size_t i = 0; i + 3 <= len; i++)
        if (lower((unsigned char)reply[i]) == 'y' && lower((unsigned char)reply[i + 1]) == 'e' &&
            lower((unsigned char)reply[i + 2]) == 's')
            return 1;
    return 0;
}

static int word_eq(const unsigned char *s, size_t n, const char *w) {
    size_t k = 0;
    for (; k < n && w[k]; k++)
        if (lower(s[k]) != w[k]) return 0;
    return k == n && !w[k];
}

/* The word (alphanumeric run) that ends before position i, skipping what is not a word
 * character but staying on the same line: [*start, *start + *n). 0 when there is none. */
static int prev_word(const unsigned char *s, size_t i, size_t *start, size_t *n) {
    while (i > 0 && !is_alnum(s[i - 1])) {
        if (s[i - 1] == '\n') return 0;
        i--;
    }
    if (i == 0) return 0;
    size_t e = i;
    while (i > 0 && is_alnum(s[i - 1])) i--;
    *start = i;
    *n = e - i;
    return 1;
}

static int next_word(const unsigned char *s, size_t i, size_t len, size_t *start, size_t *n) {
    while (i < len && !is_alnum(s[i])) {
        if (s[i] == '\n') return 0;
        i++;
    }
    if (i >= len) return 0;
    size_t b = i;
    while (i < len && is_alnum(s[i])) i++;
    *start = b;
    *n = i - b;
    return 1;
}

static int is_verdict_word(const unsigned char *s, size_t n) { return word_eq(s, n, "yes") || word_eq(s, n, "no"); }

/* After "no", a following word turns it into a determiner ("no solution", "no missing
 * value") unless it is one that follows a verdict ("No it is not", "No because ..."). */
static int verdict_continuation(const unsigned char *s, size_t n) {
    static const char *ok[] = {"it", "because", "since", "as", "this", "the", "that", "i", "we"};
    for (size_t k = 0; k < sizeof ok / sizeof *ok; k++)
        if (word_eq(s, n, ok[k])) return 1;
    return 0;
}

/* What the candidate yes/no at [b, b+n) is: 1 a verdict, 0 not one (a compound, a negated
 * one, a determiner), -1 one side of a choice ("Yes or No", "yes/no"). */
static int classify(const unsigned char *s, size_t len, size_t b, size_t n) {
    size_t e = b + n;
    /* compounds: "yes-or-no", "say-no", "no's" */
    if (e + 1 < len && (s[e] == '-' || s[e] == '\'') && is_alnum(s[e + 1])) return 0;
    if (b >= 2 && s[b - 1] == '-' && is_alnum(s[b - 2])) return 0;
    /* a choice: "Yes/No", "yes or no", "neither yes nor no" — on either side */
    size_t ws, wn;
    {
        size_t i = b;
        while (i > 0 && (is_hspace(s[i - 1]) || s[i - 1] == '\'' || s[i - 1] == '"' || s[i - 1] == '*')) i--;
        if (i > 0 && (s[i - 1] == '/' || s[i - 1] == '|') && prev_word(s, i - 1, &ws, &wn) &&
            is_verdict_word(s + ws, wn))
            return -1;
    }
    {
        size_t i = e;
        while (i < len && (is_hspace(s[i]) || s[i] == '\'' || s[i] == '"' || s[i] == '*')) i++;
        if (i < len && (s[i] == '/' || s[i] == '|') && next_word(s, i + 1, len, &ws, &wn) &&
            is_verdict_word(s + ws, wn))
            return -1;
    }
    if (prev_word(s, b, &ws, &wn) &&
        (word_eq(s + ws, wn, "or") || word_eq(s + ws, wn, "nor") || word_eq(s + ws, wn, "and"))) {
        size_t w2, n2;
        if (prev_word(s, ws, &w2, &n2) && is_verdict_word(s + w2, n2)) return -1;
    }
    if (next_word(s, e, len, &ws, &wn) &&
        (word_eq(s + ws, wn, "or") || word_eq(s + ws, wn, "nor") || word_eq(s + ws, wn, "and"))) {
        size_t w2, n2;
        if (next_word(s, ws + wn, len, &w2, &n2) && is_verdict_word(s + w2, n2)) return -1;
    }
    /* negated: "not yes", "not a 'No'" is not a verdict either way */
    if (prev_word(s, b, &ws, &wn) && word_eq(s + ws, wn, "not")) return 0;
    if (prev_word(s, b, &ws, &wn) && word_eq(s + ws, wn, "a")) {
        size_t w2, n2;
        if (prev_word(s, ws, &w2, &n2) && word_eq(s + w2, n2, "not")) return 0;
    }
    /* a determiner: "no solution" (space, then a word on the same line) */
    if (n == 2) {
        size_t i = e;
        while (i < len && is_hspace(s[i])) i++;
        if (i > e && i < len && is_alnum(s[i])) {
            size_t w2 = i;
            while (i < len && is_alnum(s[i])) i++;
            if (!verdict_continuation(s + w2, i - w2)) return 0;
        }
    }
    return 1;
}

sq_verdict sq_reply_verdict(const char *reply, size_t len) {
    if (!reply) return SQ_VERDICT_UNKNOWN;
    const unsigned char *s = (const unsigned char *)reply;
    /* Only the last line that says anything counts: the prompt asks the judge to conclude
     * with its verdict, so a Yes followed by more lines of text (a story's dialogue, an
     * early "Yes, it is a math problem" and then the reasoning) is no conclusion. */
    size_t lim = len;
    while (lim > 0 && !is_alnum(s[lim - 1])) lim--;
    while (lim > 0 && s[lim - 1] != '\n') lim--;
    size_t i = len;
    while (i > lim) {
        /* find the end of the previous ASCII letter run */
        while (i > lim && !is_alpha(s[i - 1])) i--;
        if (i <= lim) break;
        size_t e = i;
        while (i > lim && is_alpha(s[i - 1])) i--;
        size_t b = i, n = e - b;
        if (n != 2 && n != 3) continue;
        if (word_before(s, b) || word_at(s, e, len)) continue; /* "yesterday", "eyes", "Noé" */
        if (!is_verdict_word(s + b, n)) continue;
        int c = classify(s, len, b, n);
        if (c < 0) return SQ_VERDICT_UNKNOWN;
        if (c == 0) continue;
        return lower(s[b]) == 'y' ? SQ_VERDICT_YES : SQ_VERDICT_NO;
    }
    return SQ_VERDICT_UNKNOWN;
}

/* ---- rewrites ------------------------------------------------------------------------- */

/* Does the marker phrase (lower-case words separated by single spaces) match at s[i]? Words
 * may be separated by spaces, tabs, underscores or '#'. Returns the end or 0. */
static size_t match_phrase(const unsigned char *s, size_t len, size_t i, const char *ph) {
    const unsigned char *p = (const unsigned char *)ph;
    while (*p) {
        if (*p == ' ') {
            size_t k = i;
            while (k < len && (is_hspace(s[k]) || s[k] == '_')) k++;
            if (k == i) return 0;
            i = k;
            p++;
            continue;
        }
        if (i >= len || lower(s[i]) != *p) return 0;
        i++;
        p++;
    }
    return i;
}

/* After the phrase: decoration, then ':' (or a line end). Returns where the content starts,
 * or 0 when the phrase is used in prose ("the final question is ambiguous"). */
static size_t marker_use(const unsigned char *s, size_t len, size_t i) {
    while (i < len && (s[i] == '#' || s[i] == '*' || s[i] == '_' || is_hspace(s[i]) || s[i] == ']' || s[i] == ')'))
        i++;
    if (i < len && s[i] == ':') return i + 1;
    if (i + 3 <= len && s[i] == 0xEF && s[i + 1] == 0xBC && s[i + 2] == 0x9A) return i + 3; /* fullwidth ':' */
    if (i >= len) return len;
    if (s[i] == '\n' || s[i] == '\r') return i;
    return 0;
}

/* Lines that end a rewrite: the model's commentary after the field. */
static int ends_content(const unsigned char *s, size_t len, size_t i) {
    while (i < len && (is_hspace(s[i]) || s[i] == '*' || s[i] == '_' || s[i] == '>')) i++;
    if (i + 3 <= len && (s[i] == '-' || s[i] == '=') && s[i + 1] == s[i] && s[i + 2] == s[i]) return 1;
    static const char *stops[] = {"note", "explanation", "verification", "created question", "solution",
                                  "answer:", "step 1", "step 2", "step 3", "step 4", "#problem#",
                                  "this rewritten", "the rewritten", "final answer"};
    for (size_t k = 0; k < sizeof stops / sizeof *stops; k++) {
        size_t m = strlen(stops[k]);
        if (i + m > len) continue;
        size_t j = 0;
        while (j < m && lower(s[i + j]) == stops[k][j]) j++;
        if (j == m) return 1;
    }
    return 0;
}

static int quote_len_front(const unsigned char *s, size_t n) {
    if (n >= 1 && (s[0] == '"' || s[0] == '\'' || s[0] == '`')) return 1;
    if (n >= 3 && s[0] == 0xE2 && s[1] == 0x80 && (s[2] == 0x9C || s[2] == 0x98)) return 3; /* “ ‘ */
    if (n >= 2 && s[0] == 0xC2 && s[1] == 0xAB) return 2;                                   /* « */
    return 0;
}

static int quote_len_back(const unsigned char *s, size_t n) {
    if (n >= 1 && (s[n - 1] == '"' || s[n - 1] == '\'' || s[n - 1] == '`')) return 1;
    if (n >= 3 && s[n - 3] == 0xE2 && s[n - 2] == 0x80 && (s[n - 1] == 0x9D || s[n - 1] == 0x99)) return 3;
    if (n >= 2 && s[n - 2] == 0xC2 && s[n - 1] == 0xBB) return 2;
    return 0;
}

/* Strip what real models wrap a field in: whitespace, bold/italics, quotes, brackets, a code
 * fence — only in pairs around the whole field (or a lone run that has no partner inside),
 * so a '*' or a bracket that belongs to the question stays. */
static void strip_wrapping(const unsigned char **ps, size_t *pn) {
    const unsigned char *s = *ps;
    size_t n = *pn;
    for (int changed = 1; changed;) {
        changed = 0;
        while (n && is_space(s[0])) s++, n--;
        while (n && is_space(s[n - 1])) n--;
        if (n >= 6 && !memcmp(s, "```", 3) && !memcmp(s + n - 3, "```", 3)) {
            size_t k = 3;
            while (k < n - 3 && s[k] != '\n') k++;
            s += k, n -= k + 3;
            changed = 1;
            continue;
        }
        size_t lead = 0, trail = 0, stars = 0;
        while (lead < n && (s[lead] == '*' || s[lead] == '_')) lead++;
        while (trail < n - lead && (s[n - 1 - trail] == '*' || s[n - 1 - trail] == '_')) trail++;
        for (size_t k = lead; k < n - trail; k++) stars += s[k] == '*' || s[k] == '_';
        if ((lead || trail) && (stars == 0 || (lead && trail))) {
            s += lead, n -= lead + trail;
            changed = 1;
            continue;
        }
        int qf = quote_len_front(s, n), qb = n > (size_t)qf ? quote_len_back(s + qf, n - qf) : 0;
        if (qf && qb) {
            s += qf, n -= qf + qb;
            changed = 1;
            continue;
        }
        if (n >= 2 && ((s[0] == '[' && s[n - 1] == ']') || (s[0] == '<' && s[n - 1] == '>'))) {
            /* only when the brackets pair with each other, not "[a] + [b]" */
            int depth = 0, whole = 1;
            for (size_t k = 0; k < n && whole; k++) {
                if (s[k] == s[0]) depth++;
                else if (s[k] == s[n - 1] && --depth == 0 && k != n - 1) whole = 0;
            }
            if (whole) {
                s += 1, n -= 2;
                changed = 1;
            }
        }
    }
    *ps = s;
    *pn = n;
}

static int is_placeholder(const unsigned char *s, size_t n) {
    static const char *ph[] = {"your final created question", "your created question", "...", "\xe2\x80\xa6",
                               "rewritten problem", "your rewritten problem"};
    for (size_t k = 0; k < sizeof ph / sizeof *ph; k++) {
        size_t m = strlen(ph[k]);
        if (m != n) continue;
        size_t j = 0;
        while (j < m && lower(s[j]) == (unsigned char)ph[k][j]) j++;
        if (j == m) return 1;
    }
    return 0;
}

int sq_reply_rewrite(sq_prompt_kind k, const char *reply, size_t len, const char **q, size_t *q_len) {
    const char *phrase;
    if (k == SQ_PROMPT_SOLVABILITY_OPTIMIZE) phrase = "final question";
    else if (k == SQ_PROMPT_DIFFICULTY_OPTIMIZE) phrase = "finally rewritten problem";
    else return SQ_EINVAL;
    if (q) *q = NULL;
    if (q_len) *q_len = 0;
    if (!reply) return SQ_ENOTFOUND;
    const unsigned char *s = (const unsigned char *)reply;
    size_t pl = strlen(phrase), start = 0;
    int found = 0;
    /* the last occurrence used as a marker */
    for (size_t i = len >= pl ? len - pl + 1 : 0; i-- > 0;) {
        if (lower(s[i]) != (unsigned char)phrase[0]) continue;
        if (i > 0 && is_alnum(s[i - 1])) continue;
        size_t e = match_phrase(s, len, i, phrase);
        if (!e || (e < len && is_alnum(s[e]))) continue;
        size_t c = marker_use(s, len, e);
        if (!c) continue;
        start = c;
        found = 1;
        break;
    }
    if (!found) return SQ_ENOTFOUND;
    /* the field runs to the end of the reply or to the first line of commentary after its
     * first non-empty line */
    size_t end = len, i = start;
    while (i < len && is_space(s[i])) i++;
    for (int first = 1; i < len;) {
        size_t nl = i;
        while (nl < len && s[nl] != '\n') nl++;
        if (!first && ends_content(s, len, i)) {
            end = i;
            break;
        }
        first = 0;
        i = nl < len ? nl + 1 : len;
    }
    const unsigned char *f = s + start;
    size_t n = end - start;
    strip_wrapping(&f, &n);
    if (n == 0 || is_placeholder(f, n)) return SQ_EPARSE;
    if (q) *q = (const char *)f;
    if (q_len) *q_len = n;
    return 0;
}

/* ---- Figure-12 rating ----------------------------------------------------------------- */

static const char *RATINGS[] = {"unknown", "very easy", "easy", "medium", "hard", "very hard"};

const char *sq_rating_name(int r) { return r >= 1 && r <= 5 ? RATINGS[r] : RATINGS[0]; }

/* Normalise a value ("Very_Hard", "very-hard", "[medium]", "hard.") and match a label. */
static int rating_of(const unsigned char *s, size_t n) {
    char buf[24];
    size_t m = 0;
    int space = 0;
    for (size_t k = 0; k < n; k++) {
        int c = s[k];
        if (c == '[' || c == ']' || c == '*' || c == '.' || c == '!' || c == '(' || c == ')') continue;
        if (c == ' ' || c == '_' || c == '-' || c == '\t') {
            space = m > 0;
            continue;
        }
        if (!is_alpha(c)) return 0;
        if (space) {
            if (m + 1 >= sizeof buf) return 0;
            buf[m++] = ' ';
            space = 0;
        }
        if (m + 1 >= sizeof buf) return 0;
        buf[m++] = (char)lower(c);
    }
    buf[m] = 0;
    for (int r = 1; r <= 5; r++)
        if (!strcmp(buf, RATINGS[r])) return r;
    return 0;
}

int sq_reply_rating(const char *reply, size_t len) {
    if (!reply) return 0;
    const unsigned char *s = (const unsigned char *)reply;
    static const char key[] = "difficulty";
    const size_t kl = sizeof key - 1;
    for (size_t i = len >= kl ? len - kl + 1 : 0; i-- > 0;) {
        if (lower(s[i]) != 'd' || (i > 0 && is_alpha(s[i - 1]))) continue;
        size_t j = 0;
        while (j < kl && lower(s[i + j]) == key[j]) j++;
        if (j < kl) continue;
        size_t p = i + kl;
        /* "difficulty_level", "difficulty level" */
        if (p < len && (s[p] == '_' || s[p] == ' ') && p + 6 <= len) {
            static const char lv[] = "level";
            size_t t = 0;
            while (t < 5 && lower(s[p + 1 + t]) == lv[t]) t++;
            if (t == 5) p += 6;
        }
        if (p < len && is_alnum(s[p])) continue;
        /* closing quote (straight or curly), bold, then ':' */
        while (p < len) {
            if (s[p] == '"' || s[p] == '\'' || s[p] == '*' || is_hspace(s[p])) {
                p++;
                continue;
            }
            if (p + 3 <= len && s[p] == 0xE2 && s[p + 1] == 0x80 && s[p + 2] >= 0x98 && s[p + 2] <= 0x9F) {
                p += 3;
                continue;
            }
            break;
        }
        if (p >= len || s[p] != ':') continue;
        p++;
        while (p < len && (is_hspace(s[p]) || s[p] == '*')) p++;
        /* the value: quoted (any quote) or bare up to , } or the line end */
        size_t b = p;
        int ql = quote_len_front(s + p, len - p);
        if (!ql && p + 3 <= len && s[p] == 0xE2 && s[p + 1] == 0x80 && (s[p + 2] == 0x9D || s[p + 2] == 0x99))
            ql = 3; /* a closing curly quote used as an opening one */
        b += (size_t)ql;
        size_t e = b;
        while (e < len && s[e] != '\n' && s[e] != ',' && s[e] != '}' && s[e] != '"' && s[e] != '\'' &&
               s[e] != '`' && !(s[e] == 0xE2 && e + 2 < len && s[e + 1] == 0x80 && s[e + 2] >= 0x98 &&
                                s[e + 2] <= 0x9F))
            e++;
        /* the last key decides: a value that is not one label ("medium to hard", the
         * template's "[very easy/.../very hard]") is no rating, whatever came before */
        return rating_of(s + b, e - b);
    }
    return 0;
}
