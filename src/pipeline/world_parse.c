/* The tiny world's grammar, read back: each sentence must match one of the generator's
 * templates, with one name, its pronouns and one item throughout, and every event legal
 * (amounts stay positive integers, groups divide evenly). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/world.h"
#include "world_words.h"

typedef struct {
    int64_t num[3];
    int nnum;
    char word[4][24];
    int nword;
} caps;

/* Match text against a pattern: %n a number, %w a word of letters, anything else literal.
 * The whole text must be consumed. */
static int match(const char *pat, const char *t, caps *c) {
    memset(c, 0, sizeof *c);
    while (*pat) {
        if (pat[0] == '%' && pat[1] == 'n') {
            if (!isdigit((unsigned char)*t) || c->nnum == 3) return 0;
            if (t[0] == '0') return 0; /* no leading zeros: the generator writes none */
            int64_t v = 0;
            int len = 0;
            while (isdigit((unsigned char)*t)) {
                if (++len > 9) return 0;
                v = v * 10 + (*t++ - '0');
            }
            c->num[c->nnum++] = v;
            pat += 2;
        } else if (pat[0] == '%' && pat[1] == 'w') {
            if (!isalpha((unsigned char)*t) || c->nword == 4) return 0;
            int len = 0;
            while (isalpha((unsigned char)*t)) {
                if (len == 23) return 0;
                c->word[c->nword][len++] = *t++;
            }
            c->word[c->nword++][len] = 0;
            pat += 2;
        } else {
            if (*pat != *t) return 0;
            pat++, t++;
        }
    }
    return *t == 0;
}

static int find_word(const char *const *list, int n, const char *w) {
    for (int i = 0; i < n; i++)
        if (!strcmp(list[i], w)) return i;
    return -1;
}

int sq_world_parse(const char *query, int64_t *answer, int *steps, sq_err *e) {
    char sent[512];
    const char *p = query;
    int idx = 0, nsteps = 0, fem = 0, done = 0;
    char name[24] = "", item[24] = "";
    int64_t cur = 0;
    while (*p == ' ') p++;
    while (*p) {
        if (done) return sq_fail(e, SQ_EPARSE, "world: text after the question at offset %d", (int)(p - query));
        const char *end = p;
        while (*end && *end != '.' && *end != '?') end++;
        if (!*end) return sq_fail(e, SQ_EPARSE, "world: sentence %d does not end with '.' or '?'", idx + 1);
        size_t len = (size_t)(end - p + 1);
        if (len >= sizeof sent) return sq_fail(e, SQ_EPARSE, "world: sentence %d is too long", idx + 1);
        memcpy(sent, p, len);
        sent[len] = 0;
        p = end + 1;
        if (*p == ' ') p++;
        else if (*p) return sq_fail(e, SQ_EPARSE, "world: no space after sentence %d", idx + 1);
        caps c;
        if (idx == 0) {
            if (!match("%w has %n %w.", sent, &c)) return sq_fail(e, SQ_EPARSE, "world: sentence 1 is not \"NAME has N ITEMS.\"");
            int ni = find_word(sq_world_names, SQ_WORLD_N_NAMES, c.word[0]);
            if (ni < 0 || find_word(sq_world_items, SQ_WORLD_N_ITEMS, c.word[1]) < 0)
                return sq_fail(e, SQ_EPARSE, "world: sentence 1 has an unknown name or item: \"%s\"", sent);
            fem = ni < SQ_WORLD_N_FEMALE;
            snprintf(name, sizeof name, "%s", c.word[0]);
            snprintf(item, sizeof item, "%s", c.word[1]);
            cur = c.num[0];
            idx++;
            continue;
        }
        const char *P = fem ? "She" : "He", *obj = fem ? "her" : "him", *pos = fem ? "her" : "his";
        int64_t nxt = -1;
        /* Each template names its words; all of them must agree with the story so far. */
        if (match("%w buys %n more %w.", sent, &c) || match("%w finds %n more %w.", sent, &c)) {
            if (strcmp(c.word[0], P) || strcmp(c.word[1], item)) goto bad;
            nxt = cur + c.num[0];
        } else if (match("A friend gives %w %n more %w.", sent, &c)) {
            if (strcmp(c.word[0], obj) || strcmp(c.word[1], item)) goto bad;
            nxt = cur + c.num[0];
        } else if (match("%w gives %n %w to a friend.", sent, &c) || match("%w loses %n %w.", sent, &c) ||
                   match("%w sells %n %w.", sent, &c)) {
            if (strcmp(c.word[0], P) || strcmp(c.word[1], item)) goto bad;
            nxt = cur - c.num[0];
        } else if (match("%w buys %n boxes of %w with %n %w in each box.", sent, &c)) {
            if (strcmp(c.word[0], P) || strcmp(c.word[1], item) || strcmp(c.word[2], item)) goto bad;
            nxt = cur + c.num[0] * c.num[1];
        } else if (match("%w %w %w %w.", sent, &c)) {
            int k = !strcmp(c.word[1], "doubles") ? 2 : !strcmp(c.word[1], "triples") ? 3 : 0;
            if (!k || strcmp(c.word[0], P) || strcmp(c.word[2], pos) || strcmp(c.word[3], item)) goto bad;
            nxt = cur * k;
        } else if (match("%w splits %w %w into %n equal groups and keeps one group.", sent, &c)) {
            if (strcmp(c.word[0], P) || strcmp(c.word[1], pos) || strcmp(c.word[2], item)) goto bad;
            if (c.num[0] < 2 || cur % c.num[0]) goto bad;
            nxt = cur / c.num[0];
        } else if (match("How many %w does %w have now?", sent, &c)) {
            if (strcmp(c.word[0], item) || strcmp(c.word[1], name)) goto bad;
            done = 1;
            idx++;
            continue;
        } else {
            goto bad;
        }
        if (nxt <= 0 || nxt > 1000000000) goto bad;
        cur = nxt;
        nsteps++;
        idx++;
        continue;
    bad:
        return sq_fail(e, SQ_EPARSE, "world: sentence %d breaks the grammar: \"%s\"", idx + 1, sent);
    }
    if (!done || nsteps == 0)
        return sq_fail(e, SQ_EPARSE, "world: %s", !done ? "no closing question" : "no event between start and question");
    if (answer) *answer = cur;
    if (steps) *steps = nsteps;
    return 0;
}

int sq_world_extract_answer(const char *response, int64_t *answer) {
    const char *best = NULL, *s;
    for (s = response; (s = strstr(s, "\\boxed{")); s++) best = s + 7;
    if (!best)
        for (s = response; (s = strstr(s, "The answer is ")); s++) best = s + 14;
    if (!best) return SQ_ENOTFOUND;
    int neg = *best == '-';
    if (neg) best++;
    if (!isdigit((unsigned char)*best)) return SQ_ENOTFOUND;
    int64_t v = 0;
    for (int len = 0; isdigit((unsigned char)*best) && len < 15; len++) v = v * 10 + (*best++ - '0');
    *answer = neg ? -v : v;
    return 0;
}
