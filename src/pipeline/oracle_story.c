/* The oracle's lenient reader of world stories (oracle.h): where sq_world_parse says
 * whether a question is in the grammar, this reads whatever it can out of any text — a
 * model's broken question, a half-finished one — so the oracle can repair it the way an
 * LLM "rewrites one that makes sense", keeping the name, the item, the numbers and the
 * events the question had. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "scalequest/oracle.h"
#include "world_words.h"

#define MAX_AMOUNT 1000000000LL

static int word_index(const char *const *list, int n, const char *w, size_t wl, int plural_ok) {
    for (int i = 0; i < n; i++) {
        size_t l = strlen(list[i]);
        if (l == wl && !memcmp(list[i], w, wl)) return i;
        /* "apple" for "apples", "candy" for "candies", "box" ... */
        if (plural_ok && l == wl + 1 && list[i][l - 1] == 's' && !memcmp(list[i], w, wl)) return i;
        if (plural_ok && l == wl + 2 && wl > 1 && w[wl - 1] == 'y' && !memcmp(list[i] + l - 3, "ies", 3) &&
            !memcmp(list[i], w, wl - 1))
            return i;
    }
    return -1;
}

static int has(const char *s, const char *w) { return strstr(s, w) != NULL; }

/* Numbers of a sentence in order (digits only; a number too long for the world is -1). */
static int numbers(const char *s, int64_t *out, int max) {
    int n = 0;
    for (const char *p = s; *p && n < max;) {
        if (!isdigit((unsigned char)*p)) {
            p++;
            continue;
        }
        int64_t v = 0;
        int len = 0;
        while (isdigit((unsigned char)*p)) {
            if (len < 12) v = v * 10 + (*p - '0');
            len++, p++;
        }
        if (*p == '.' && isdigit((unsigned char)p[1])) { /* 2.5: not a world number */
            while (*p == '.' || isdigit((unsigned char)*p)) p++;
            v = -1;
        }
        out[n++] = len > 9 ? -1 : v;
    }
    return n;
}

void sq_story_read(const char *text, size_t len, uint64_t seed, sq_story *s) {
    memset(s, 0, sizeof *s);
    s->name = s->item = -1;
    sq_rng r;
    sq_rng_seed(&r, seed ^ 0x5eed0fa11ULL);
    /* name and item: the first known words anywhere */
    for (size_t i = 0; i < len && (s->name < 0 || s->item < 0);) {
        if (!isalpha((unsigned char)text[i])) {
            i++;
            continue;
        }
        size_t b = i;
        while (i < len && isalpha((unsigned char)text[i])) i++;
        if (s->name < 0) {
            int k = word_index(sq_world_names, SQ_WORLD_N_NAMES, text + b, i - b, 0);
            if (k >= 0) s->name = k;
        }
        if (s->item < 0) {
            char lw[32];
            size_t wl = i - b < sizeof lw - 1 ? i - b : sizeof lw - 1;
            for (size_t k = 0; k < wl; k++) lw[k] = (char)tolower((unsigned char)text[b + k]);
            int k = word_index(sq_world_items, SQ_WORLD_N_ITEMS, lw, wl, 1);
            if (k >= 0) s->item = k;
        }
    }
    if (s->name < 0) s->name = (int)sq_rng_below(&r, SQ_WORLD_N_NAMES);
    if (s->item < 0) s->item = (int)sq_rng_below(&r, SQ_WORLD_N_ITEMS);
    s->start = -1;
    /* sentence by sentence, lower-cased */
    char sent[512];
    for (size_t i = 0; i < len;) {
        size_t b = i;
        for (; i < len; i++) {
            char c = text[i];
            if (c == '?' || c == '!' || c == '\n') break;
            /* a decimal point is not a sentence end */
            if (c == '.' && !(i > b && i + 1 < len && isdigit((unsigned char)text[i - 1]) &&
                              isdigit((unsigned char)text[i + 1])))
                break;
        }
        size_t n = i - b < sizeof sent - 1 ? i - b : sizeof sent - 1;
        for (size_t k = 0; k < n; k++) sent[k] = (char)tolower((unsigned char)text[b + k]);
        sent[n] = 0;
        if (i < len) i++;
        if (n == 0) continue;
        if (has(sent, "how many")) {
            s->recognised++;
            break; /* events after the question are not part of the story */
        }
        int64_t num[4];
        int nn = numbers(sent, num, 4);
        if (has(sent, "double") || has(sent, "triple")) {
            if (s->start >= 0 && s->n_ev < (int)SQ_ARRAY_LEN(s->ev)) {
                s->ev[s->n_ev++] = (sq_story_event){'m', 0, 0, has(sent, "double") ? 2 : 3};
                s->recognised++;
                continue;
            }
        }
        if (nn == 0 || num[0] < 1) continue;
        sq_story_event ev = {0};
        if ((has(sent, "box") || has(sent, "pack") || has(sent, "bag")) && nn >= 2 && num[1] >= 1)
            ev = (sq_story_event){'b', 0, num[1], num[0]};
        else if (has(sent, "split") || has(sent, "divide") || has(sent, "equal group") || has(sent, "share"))
            ev = (sq_story_event){'d', 0, 0, num[0]};
        else if (has(sent, "to a friend") || has(sent, "loses") || has(sent, "lost") || has(sent, "sells") ||
                 has(sent, "sold") || has(sent, "eats") || has(sent, "gives away") || has(sent, "gave away") ||
                 has(sent, "spends"))
            ev = (sq_story_event){'s', has(sent, "sell") || has(sent, "sold") ? 2 : has(sent, "to a friend") ? 0 : 1,
                                  num[0], 0};
        else if (has(sent, "more") || has(sent, "buys") || has(sent, "finds") || has(sent, "gets") ||
                 has(sent, "receives") || has(sent, "gives"))
            ev = (sq_story_event){'a', has(sent, "gives") ? 2 : has(sent, "finds") ? 1 : 0, num[0], 0};
        if (ev.op && s->start >= 0) {
            if (s->n_ev < (int)SQ_ARRAY_LEN(s->ev)) s->ev[s->n_ev++] = ev;
            s->recognised++;
        } else if (s->start < 0) {
            s->start = num[0];
            s->recognised++;
        }
    }
    if (s->start < 1 || s->start >= MAX_AMOUNT) s->start = 2 + (int64_t)sq_rng_below(&r, 19);
}

void sq_story_legalize(sq_story *s, int max_steps) {
    int64_t cur = s->start;
    int w = 0;
    for (int i = 0; i < s->n_ev; i++) {
        sq_story_event ev = s->ev[i];
        int64_t nxt = -1;
        switch (ev.op) {
        case 'a':
            if (ev.n >= 1 && ev.n < MAX_AMOUNT) nxt = cur + ev.n;
            break;
        case 's':
            if (ev.n >= cur && cur >= 2) ev.n = cur - 1; /* take away less than there is */
            if (ev.n >= 1 && ev.n < cur) nxt = cur - ev.n;
            break;
        case 'b':
            if (ev.k >= 1 && ev.n >= 1 && ev.k < 1000 && ev.n < MAX_AMOUNT) nxt = cur + ev.k * ev.n;
            break;
        case 'm':
            if (ev.k == 2 || ev.k == 3) nxt = cur * ev.k;
            break;
        case 'd':
            if (ev.k < 2 || ev.k > 1000 || cur % ev.k) {
                ev.k = 0;
                for (int k = 2; k <= 5 && !ev.k; k++)
                    if (cur % k == 0) ev.k = k;
            }
            if (ev.k) nxt = cur / ev.k;
            break;
        default: break;
        }
        if (nxt < 1 || nxt >= MAX_AMOUNT || w >= max_steps) continue;
        s->ev[w++] = ev;
        cur = nxt;
    }
    s->n_ev = w;
}

static int64_t amount(const sq_story *s) {
    int64_t cur = s->start;
    for (int i = 0; i < s->n_ev; i++) {
        const sq_story_event *ev = &s->ev[i];
        switch (ev->op) {
        case 'a': cur += ev->n; break;
        case 's': cur -= ev->n; break;
        case 'b': cur += ev->k * ev->n; break;
        case 'm': cur *= ev->k; break;
        default: cur /= ev->k; break;
        }
    }
    return cur;
}

int sq_story_add_step(sq_story *s, const sq_world_opts *o, sq_rng *r) {
    if (s->n_ev >= (int)SQ_ARRAY_LEN(s->ev)) return SQ_ERANGE;
    int64_t cur = amount(s), M = o->max_number;
    char cand[8];
    int nc = 0;
    for (const char *c = o->ops; *c && nc < 8; c++) {
        int ok = *c == 'a' || *c == 'b' || (*c == 's' && cur >= 3) || (*c == 'm' && cur <= 4 * M);
        if (*c == 'd')
            for (int k = 2; k <= 5; k++) ok |= cur % k == 0;
        if (ok) cand[nc++] = *c;
    }
    if (!nc) return SQ_ERANGE;
    sq_story_event ev = {cand[sq_rng_below(r, (uint64_t)nc)], 0, 0, 0};
    switch (ev.op) {
    case 'a': ev.n = 2 + (int64_t)sq_rng_below(r, (uint64_t)(M - 1)); ev.variant = (int)sq_rng_below(r, 3); break;
    case 's': {
        int64_t hi = SQ_MIN(M, cur - 1);
        ev.n = 2 + (int64_t)sq_rng_below(r, (uint64_t)(hi - 1));
        ev.variant = (int)sq_rng_below(r, 3);
        break;
    }
    case 'b':
        ev.k = 2 + (int64_t)sq_rng_below(r, 4);
        ev.n = 2 + (int64_t)sq_rng_below(r, (uint64_t)(SQ_MAX(2, M / 2) - 1));
        break;
    case 'm': ev.k = 2 + (int64_t)sq_rng_below(r, 2); break;
    default: {
        int64_t ks[4];
        int nk = 0;
        for (int k = 2; k <= 5; k++)
            if (cur % k == 0) ks[nk++] = k;
        ev.k = ks[sq_rng_below(r, (uint64_t)nk)];
    }
    }
    if (amount(s) + (ev.op == 'a' ? ev.n : ev.op == 'b' ? ev.k * ev.n : 0) >= MAX_AMOUNT) return SQ_ERANGE;
    s->ev[s->n_ev++] = ev;
    return 0;
}

size_t sq_story_write(const sq_story *s, char *out, size_t cap) {
    const char *name = sq_world_names[s->name], *item = sq_world_items[s->item];
    int fem = s->name < SQ_WORLD_N_FEMALE;
    const char *P = fem ? "She" : "He", *obj = fem ? "her" : "him", *pos = fem ? "her" : "his";
    size_t n = 0;
    char dummy[1];
    if (!cap) out = dummy, cap = 1;
#define W(...) n += (size_t)snprintf(out + (n < cap ? n : cap - 1), n < cap ? cap - n : 1, __VA_ARGS__)
    W("%s has %lld %s.", name, (long long)s->start, item);
    for (int i = 0; i < s->n_ev; i++) {
        const sq_story_event *ev = &s->ev[i];
        long long N = (long long)ev->n, K = (long long)ev->k;
        switch (ev->op) {
        case 'a':
            if (ev->variant == 1) W(" %s finds %lld more %s.", P, N, item);
            else if (ev->variant == 2) W(" A friend gives %s %lld more %s.", obj, N, item);
            else W(" %s buys %lld more %s.", P, N, item);
            break;
        case 's':
            if (ev->variant == 1) W(" %s loses %lld %s.", P, N, item);
            else if (ev->variant == 2) W(" %s sells %lld %s.", P, N, item);
            else W(" %s gives %lld %s to a friend.", P, N, item);
            break;
        case 'b': W(" %s buys %lld boxes of %s with %lld %s in each box.", P, K, item, N, item); break;
        case 'm': W(" %s %s %s %s.", P, K == 2 ? "doubles" : "triples", pos, item); break;
        default: W(" %s splits %s %s into %lld equal groups and keeps one group.", P, pos, item, K); break;
        }
    }
    W(" How many %s does %s have now?", item, name);
#undef W
    return n;
}
