/* Numbers written as words ("four", "twenty-four", "one hundred and five", "3 thousand" is
 * not one: digits are read elsewhere). English cardinals only, up to the billions, so a
 * GSM8K-style answer in words compares with its digits. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "grade_int.h"

enum { W_NONE, W_UNIT, W_TENS, W_HUNDRED, W_SCALE, W_AND };

static const struct {
    const char *w;
    int kind;
    int64_t v;
} words[] = {
    {"zero", W_UNIT, 0},       {"one", W_UNIT, 1},         {"two", W_UNIT, 2},         {"three", W_UNIT, 3},
    {"four", W_UNIT, 4},       {"five", W_UNIT, 5},        {"six", W_UNIT, 6},         {"seven", W_UNIT, 7},
    {"eight", W_UNIT, 8},      {"nine", W_UNIT, 9},        {"ten", W_UNIT, 10},        {"eleven", W_UNIT, 11},
    {"twelve", W_UNIT, 12},    {"thirteen", W_UNIT, 13},   {"fourteen", W_UNIT, 14},   {"fifteen", W_UNIT, 15},
    {"sixteen", W_UNIT, 16},   {"seventeen", W_UNIT, 17},  {"eighteen", W_UNIT, 18},   {"nineteen", W_UNIT, 19},
    {"twenty", W_TENS, 20},    {"thirty", W_TENS, 30},     {"forty", W_TENS, 40},      {"fifty", W_TENS, 50},
    {"sixty", W_TENS, 60},     {"seventy", W_TENS, 70},    {"eighty", W_TENS, 80},     {"ninety", W_TENS, 90},
    {"hundred", W_HUNDRED, 100}, {"thousand", W_SCALE, 1000}, {"million", W_SCALE, 1000000},
    {"billion", W_SCALE, 1000000000}, {"and", W_AND, 0},
};

static int word_kind(const char *s, size_t n, int64_t *v) {
    for (size_t i = 0; i < SQ_ARRAY_LEN(words); i++)
        if (strlen(words[i].w) == n && !strncasecmp(s, words[i].w, n)) {
            *v = words[i].v;
            return words[i].kind;
        }
    return W_NONE;
}

/* The value of a run of number words, fed one at a time; state between calls. */
typedef struct wnum {
    int64_t total, cur;
    int last, any, bad;
} wnum;

static void wnum_feed(wnum *x, int kind, int64_t v) {
    if (kind == W_AND) { /* "hundred and five": only after a hundred or a scale */
        if (x->last != W_HUNDRED && x->last != W_SCALE) x->bad = 1;
        x->last = W_AND;
        return;
    }
    if (kind == W_UNIT || kind == W_TENS) {
        /* "twenty four" and "twenty-four" but not "four four" or "four twenty" */
        int64_t in_group = x->cur % 100;
        if ((x->last == W_UNIT) || (x->last == W_TENS && (kind == W_TENS || v >= 10)) || (in_group && x->last != W_TENS))
            x->bad = 1;
        x->cur += v;
    } else if (kind == W_HUNDRED) {
        if (x->last != W_UNIT || x->cur % 100 >= 10 || x->cur >= 100) x->bad = 1;
        x->cur = x->cur * 100;
    } else if (kind == W_SCALE) {
        if (!x->any || x->last == W_AND || x->last == W_SCALE) x->bad = 1;
        x->total += (x->cur ? x->cur : 1) * v;
        x->cur = 0;
    }
    x->any = 1;
    x->last = kind;
}

int g_number_words(const char *s, size_t n, int64_t *v) {
    while (n && (isspace((unsigned char)s[n - 1]) || s[n - 1] == '.' || s[n - 1] == '!')) n--;
    size_t i = 0;
    while (i < n && isspace((unsigned char)s[i])) i++;
    wnum x = {0};
    int count = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && isalpha((unsigned char)s[j])) j++;
        if (j == i) return 0;
        int64_t wv;
        int k = word_kind(s + i, j - i, &wv);
        if (k == W_NONE || ++count > 16) return 0;
        wnum_feed(&x, k, wv);
        if (x.bad) return 0;
        i = j;
        if (i < n && (s[i] == '-' || s[i] == ' ')) i++;
    }
    if (!x.any || x.last == W_AND) return 0;
    *v = x.total + x.cur;
    return 1;
}

/* "no one", "each one": the word one as a pronoun, not a count. */
static int pronoun_one(const char *t, size_t b) {
    static const char *before[] = {"no", "each", "every", "any", "some", "the", "this", "that", "which"};
    size_t e = b;
    while (e > 0 && t[e - 1] == ' ') e--;
    size_t s = e;
    while (s > 0 && isalpha((unsigned char)t[s - 1])) s--;
    for (size_t i = 0; i < SQ_ARRAY_LEN(before); i++)
        if (strlen(before[i]) == e - s && !strncasecmp(t + s, before[i], e - s)) return 1;
    return 0;
}

int g_last_number_words(const char *t, size_t n, int64_t *v, size_t *at) {
    int found = 0;
    for (size_t i = 0; i < n;) {
        if (!isalpha((unsigned char)t[i]) || (i > 0 && isalpha((unsigned char)t[i - 1]))) {
            i++;
            continue;
        }
        /* the longest run of number words starting here */
        size_t j = i, end = i;
        int64_t dummy;
        while (j < n) {
            size_t w = j;
            while (w < n && isalpha((unsigned char)t[w])) w++;
            if (w == j || word_kind(t + j, w - j, &dummy) == W_NONE) break;
            int64_t val;
            if (g_number_words(t + i, w - i, &val)) end = w;
            j = w;
            if (j < n && (t[j] == '-' || t[j] == ' ')) j++;
        }
        if (end > i) {
            int64_t val;
            g_number_words(t + i, end - i, &val);
            if (!(val == 1 && end - i == 3 && pronoun_one(t, i))) {
                *v = val;
                *at = i;
                found = 1;
            }
            i = end;
        } else {
            while (i < n && isalpha((unsigned char)t[i])) i++;
        }
    }
    return found;
}

char *g_fold_minus(const char *s, size_t n, int *oom) {
    *oom = 0;
    if (!memmem(s, n, "\xe2\x88\x92", 3)) return NULL;
    char *r = malloc(n + 1);
    if (!r) {
        *oom = 1;
        return NULL;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + 2 < n && !memcmp(s + i, "\xe2\x88\x92", 3)) {
            r[o++] = '-';
            i += 2;
        } else {
            r[o++] = s[i];
        }
    }
    r[o] = 0;
    return r;
}
