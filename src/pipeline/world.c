/* The tiny world's generator: one story per (seed, index), a solution line per event. */
#include <stdio.h>
#include <string.h>

#include "scalequest/world.h"
#include "world_words.h"

void sq_world_opts_default(sq_world_opts *o) {
    o->min_steps = 1;
    o->max_steps = 3;
    o->max_number = 20;
    snprintf(o->ops, sizeof o->ops, "asbmd");
}

int sq_world_opts_check(const sq_world_opts *o, sq_err *e) {
    if (o->min_steps < 1 || o->max_steps > 8 || o->min_steps > o->max_steps)
        return sq_fail(e, SQ_EINVAL, "world: steps must satisfy 1 <= min (%d) <= max (%d) <= 8", o->min_steps,
                       o->max_steps);
    if (o->max_number < 4 || o->max_number > 100000)
        return sq_fail(e, SQ_EINVAL, "world: max number %d outside [4, 100000]", o->max_number);
    if (!o->ops[0] || strspn(o->ops, "asbmd") != strlen(o->ops))
        return sq_fail(e, SQ_EINVAL, "world: operations \"%s\" must be letters of \"asbmd\"", o->ops);
    if (!strchr(o->ops, 'a') && !strchr(o->ops, 'b') && !strchr(o->ops, 'm'))
        return sq_fail(e, SQ_EINVAL, "world: operations \"%s\" need one of a, b, m (a story must be able to grow)",
                       o->ops);
    return 0;
}

static int64_t rnd(sq_rng *r, int64_t lo, int64_t hi) { return lo + (int64_t)sq_rng_below(r, (uint64_t)(hi - lo + 1)); }

/* Whether op can apply to the current amount without leaving the positive integers. */
static int feasible(char op, int64_t cur, int max_number) {
    switch (op) {
    case 's': return cur >= 3;
    case 'm': return cur <= 4 * (int64_t)max_number;
    case 'd':
        for (int k = 2; k <= 5; k++)
            if (cur % k == 0) return 1;
        return 0;
    default: return 1;
    }
}

int sq_world_generate(const sq_world_opts *o, uint64_t seed, uint64_t index, sq_world_problem *p, sq_err *e) {
    int rc = sq_world_opts_check(o, e);
    if (rc) return rc;
    memset(p, 0, sizeof *p);
    sq_rng r;
    sq_rng_seed(&r, seed * 0x9e3779b97f4a7c15ULL + index * 0xbf58476d1ce4e5b9ULL + 1);
    int ni = (int)sq_rng_below(&r, SQ_WORLD_N_NAMES), it = (int)sq_rng_below(&r, SQ_WORLD_N_ITEMS);
    const char *name = sq_world_names[ni], *item = sq_world_items[it];
    int fem = ni < SQ_WORLD_N_FEMALE;
    const char *P = fem ? "She" : "He", *pl = fem ? "she" : "he", *obj = fem ? "her" : "him", *pos = fem ? "her" : "his";
    int steps = (int)rnd(&r, o->min_steps, o->max_steps), M = o->max_number;
    int64_t cur = rnd(&r, 2, M);
    size_t qn = 0, sn = 0;
    char *q = p->query, *s = p->response;
#define QP(...) qn += (size_t)snprintf(q + qn, sizeof p->query - qn, __VA_ARGS__)
#define SP(...) sn += (size_t)snprintf(s + sn, sizeof p->response - sn, __VA_ARGS__)
    QP("%s has %lld %s.", name, (long long)cur, item);
    SP("%s starts with %lld %s.\n", name, (long long)cur, item);
    for (int st = 0; st < steps; st++) {
        char cand[8];
        int nc = 0;
        for (const char *c = o->ops; *c; c++)
            if (feasible(*c, cur, M)) cand[nc++] = *c;
        char op = cand[sq_rng_below(&r, (uint64_t)nc)];
        int64_t n, k, x, nxt;
        switch (op) {
        case 'a':
            n = rnd(&r, 2, M);
            nxt = cur + n;
            switch (sq_rng_below(&r, 3)) {
            case 0: QP(" %s buys %lld more %s.", P, (long long)n, item); break;
            case 1: QP(" %s finds %lld more %s.", P, (long long)n, item); break;
            default: QP(" A friend gives %s %lld more %s.", obj, (long long)n, item); break;
            }
            SP("After getting %lld more, %s has %lld + %lld = %lld %s.\n", (long long)n, pl, (long long)cur,
               (long long)n, (long long)nxt, item);
            break;
        case 's':
            n = rnd(&r, 2, SQ_MIN((int64_t)M, cur - 1));
            nxt = cur - n;
            switch (sq_rng_below(&r, 3)) {
            case 0: QP(" %s gives %lld %s to a friend.", P, (long long)n, item); break;
            case 1: QP(" %s loses %lld %s.", P, (long long)n, item); break;
            default: QP(" %s sells %lld %s.", P, (long long)n, item); break;
            }
            SP("After %lld are gone, %s has %lld - %lld = %lld %s.\n", (long long)n, pl, (long long)cur, (long long)n,
               (long long)nxt, item);
            break;
        case 'b':
            k = rnd(&r, 2, 5);
            n = rnd(&r, 2, SQ_MAX(2, M / 2));
            x = k * n;
            nxt = cur + x;
            QP(" %s buys %lld boxes of %s with %lld %s in each box.", P, (long long)k, item, (long long)n, item);
            SP("The %lld boxes hold %lld * %lld = %lld %s, so %s has %lld + %lld = %lld %s.\n", (long long)k,
               (long long)k, (long long)n, (long long)x, item, pl, (long long)cur, (long long)x, (long long)nxt, item);
            break;
        case 'm':
            k = rnd(&r, 2, 3);
            nxt = cur * k;
            QP(" %s %s %s %s.", P, k == 2 ? "doubles" : "triples", pos, item);
            SP("Multiplying by %lld gives %lld * %lld = %lld %s.\n", (long long)k, (long long)cur, (long long)k,
               (long long)nxt, item);
            break;
        default: { /* 'd' */
            int64_t ks[4];
            int nk = 0;
            for (int kk = 2; kk <= 5; kk++)
                if (cur % kk == 0) ks[nk++] = kk;
            k = ks[sq_rng_below(&r, (uint64_t)nk)];
            nxt = cur / k;
            QP(" %s splits %s %s into %lld equal groups and keeps one group.", P, pos, item, (long long)k);
            SP("Each of the %lld groups has %lld / %lld = %lld %s, and %s keeps %lld.\n", (long long)k,
               (long long)cur, (long long)k, (long long)nxt, item, pl, (long long)nxt);
            break;
        }
        }
        p->ops_used[st] = op;
        cur = nxt;
    }
    QP(" How many %s does %s have now?", item, name);
    SP("The answer is %lld.\n\\boxed{%lld}", (long long)cur, (long long)cur);
#undef QP
#undef SP
    if (qn >= sizeof p->query || sn >= sizeof p->response)
        return sq_fail(e, SQ_ERANGE, "world: problem %llu of seed %llu does not fit its buffers",
                       (unsigned long long)index, (unsigned long long)seed);
    p->answer = cur;
    p->steps = steps;
    p->max_number = M;
    snprintf(p->id, sizeof p->id, "world-%llu-%llu", (unsigned long long)seed, (unsigned long long)index);
    return 0;
}
