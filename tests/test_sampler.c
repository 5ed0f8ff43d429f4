/* sampler: the rewritten sq_sample against the previous one (sampler_ref.h, kept verbatim):
 * for the same logits, parameters and RNG state both must pick the same token, give the same
 * log-probability bits and leave the RNG in the same state. Random rows of several shapes —
 * peaked like a trained model, flat like a random one, plateaus of tied values, very negative
 * logits, huge ranges — at many temperatures, top-p, top-k and min-p values. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sampler_ref.h"
#include "test.h"

typedef struct ref_scratch {
    sq_sample_scratch s; /* the old layout: p, cand (12 V bytes), hist */
} ref_scratch;

/* One row of logits of kind `kind` (0..5) over V tokens. */
static void make_row(float *l, int V, int kind, sq_rng *r) {
    double scale = 0.5 + 4 * sq_rng_uniform(r);
    for (int i = 0; i < V; i++) {
        switch (kind) {
        case 0: /* flat: a random network's logits */
            l[i] = (float)(scale * sq_rng_normal(r));
            break;
        case 1: /* peaked: a few tokens far above a broad floor */
            l[i] = (float)(sq_rng_normal(r) * 2 - 8);
            if (sq_rng_below(r, 1000) == 0) l[i] += (float)(10 + 8 * sq_rng_uniform(r));
            break;
        case 2: /* plateaus: values from a small set, so many ties at every threshold */
            l[i] = (float)sq_rng_below(r, 6) * 0.75f - 2;
            break;
        case 3: /* a wide range, very negative tails (exp clamps at -87) */
            l[i] = (float)(sq_rng_normal(r) * 40);
            break;
        case 4: /* one token far ahead: top-p keeps it alone */
            l[i] = (float)sq_rng_normal(r);
            if (i == V / 3) l[i] = 30;
            break;
        default: /* heavy-tailed (Zipf-like by rank, shuffled ids) */
            l[i] = (float)(-1.1 * log(1 + (double)sq_rng_below(r, (uint64_t)V)) + 0.01 * sq_rng_normal(r));
            break;
        }
    }
    if (kind == 2 && V > 4) l[sq_rng_below(r, (uint64_t)V)] = 1.75f; /* a tie with the maximum */
}

static int one_case(const float *l, int V, const sq_gen_params *p, uint64_t seed, sq_sample_scratch *s,
                    ref_scratch *rs, int *bad) {
    sq_rng a, b;
    sq_rng_seed(&a, seed);
    sq_rng_seed(&b, seed);
    float la = 0, lb = 0;
    int32_t ta = sq_sample(l, V, p, &a, s, &la);
    int32_t tb = ref_sample(l, V, p, &b, &rs->s, &lb);
    int same = ta == tb && memcmp(&la, &lb, sizeof la) == 0 && memcmp(&a, &b, sizeof a) == 0;
    if (!same && (*bad)++ < 5)
        fprintf(stderr, "  differ: V %d temp %g top_p %g top_k %d min_p %g seed %llu: token %d vs %d, lp %.9g vs %.9g\n", V,
                p->temperature, p->top_p, p->top_k, p->min_p, (unsigned long long)seed, ta, tb, la, lb);
    return same;
}

/* The new sampler's and the reference's scratch over V tokens, and one row of logits. */
typedef struct side_by_side {
    sq_sample_scratch s;
    ref_scratch rs;
    float *l;
} side_by_side;

static int side_by_side_open(side_by_side *b, int V) {
    sq_err e;
    memset(b, 0, sizeof *b);
    if (sq_sample_scratch_init(&b->s, V, &e) || sq_sample_scratch_init(&b->rs.s, V, &e)) return -1;
    b->l = malloc(sizeof(float) * (size_t)V);
    return b->l ? 0 : -1;
}

static void side_by_side_close(side_by_side *b) {
    free(b->l);
    sq_sample_scratch_free(&b->s);
    sq_sample_scratch_free(&b->rs.s);
}

SQ_TEST(sampler_matches_the_previous_one_token_for_token) {
    static const int sizes[] = {1, 3, 7, 8, 9, 64, 257, 1000, 4099, 32000, 151936};
    enum { NS = sizeof sizes / sizeof sizes[0] };
    int vmax = 151936;
    side_by_side b;
    REQUIRE(side_by_side_open(&b, vmax) == 0);
    float *l = b.l;
    sq_rng r;
    sq_rng_seed(&r, 20261206);
    static const float temps[] = {0, 0.3f, 0.7f, 1.0f, 1.5f};
    static const float tops[] = {1, 0.95f, 0.9f, 0.5f, 0.999f, 0.1f};
    int cases = 0, ok = 0, bad = 0;
    for (int si = 0; si < NS; si++) {
        int V = sizes[si], rows = V >= 100000 ? 6 : V >= 30000 ? 12 : 40;
        for (int row = 0; row < rows; row++) {
            make_row(l, V, row % 6, &r);
            for (int t = 0; t < 5; t++) {
                sq_gen_params p;
                memset(&p, 0, sizeof p);
                p.temperature = temps[(row + t) % 5];
                p.top_p = tops[(row * 3 + t) % 6];
                /* top-k and min-p on some draws: the cut paths */
                if ((row + t) % 4 == 1) p.top_k = 1 + (int)sq_rng_below(&r, (uint64_t)(V < 100 ? V : 100));
                if ((row + t) % 7 == 3) p.min_p = (float)(0.001 + 0.2 * sq_rng_uniform(&r));
                for (int d = 0; d < 3; d++) {
                    cases++;
                    ok += one_case(l, V, &p, sq_rng_u64(&r), &b.s, &b.rs, &bad);
                }
            }
        }
    }
    fprintf(stderr, "  %d of %d draws identical\n", ok, cases);
    CHECK_EQ_INT(ok, cases);
    CHECK(cases > 2000);
    side_by_side_close(&b);
}

/* The respond shape's draw (temperature 0.7, top-p 0.95) on many rows of one vocabulary, with
 * the u of each draw swept across the nucleus by the seed: boundaries between blocks of 8 and
 * the walk's last kept token are hit too. */
SQ_TEST(sampler_matches_at_the_respond_shape) {
    int V = 151936;
    side_by_side b;
    REQUIRE(side_by_side_open(&b, V) == 0);
    float *l = b.l;
    sq_rng r;
    sq_rng_seed(&r, 99);
    sq_gen_params p;
    memset(&p, 0, sizeof p);
    p.temperature = 0.7f;
    p.top_p = 0.95f;
    int cases = 0, ok = 0, bad = 0;
    for (int row = 0; row < 6; row++) {
        make_row(l, V, row, &r);
        for (int d = 0; d < 12; d++) {
            cases++;
            ok += one_case(l, V, &p, sq_rng_u64(&r), &b.s, &b.rs, &bad);
        }
    }
    CHECK_EQ_INT(ok, cases);
    side_by_side_close(&b);
}

/* A random network's rows as the respond shape sees them (logits of standard deviation 3-6:
 * at temperature 0.7 a nucleus of a few dozen to a few thousand tokens), where the sampler
 * draws from the tokens within 2^-16 of the best alone; plus rows built to end that path's
 * scan right at 2^-16, just below it (the whole-row path then), and with ties at the edge of
 * the nucleus. Each row is drawn many times, so u lands all over the kept tokens. */
SQ_TEST(sampler_matches_on_a_random_networks_rows) {
    int V = 151936;
    side_by_side b;
    REQUIRE(side_by_side_open(&b, V) == 0);
    float *l = b.l;
    sq_rng r;
    sq_rng_seed(&r, 4242);
    sq_gen_params p;
    memset(&p, 0, sizeof p);
    p.temperature = 0.7f;
    int cases = 0, ok = 0, bad = 0;
    for (int row = 0; row < 10; row++) {
        double scale = 3 + 3 * sq_rng_uniform(&r);
        for (int i = 0; i < V; i++) l[i] = (float)(scale * sq_rng_normal(&r));
        if (row % 7 == 5) /* plateaus near the top: many ties at every threshold of the nucleus */
            for (int i = 0; i < V; i++)
                if (l[i] > 2 * scale) l[i] = (float)(2 * scale + 0.25 * scale * (int)((l[i] - 2 * scale) / (0.25 * scale)));
        if (row % 7 == 6) { /* a nucleus that ends near p = 2^-16 (16 ln 2 * 0.7 = 7.76 below the best) */
            for (int i = 0; i < V; i++) l[i] = (float)(0.3 * sq_rng_normal(&r)) - 7.7f;
            for (int i = 0; i < 40; i++) l[sq_rng_below(&r, (uint64_t)V)] = 0.05f * (float)i;
        }
        p.top_p = row % 3 == 0 ? 0.95f : row % 3 == 1 ? 0.5f : 0.999f;
        for (int d = 0; d < 16; d++) {
            cases++;
            ok += one_case(l, V, &p, sq_rng_u64(&r), &b.s, &b.rs, &bad);
        }
    }
    CHECK_EQ_INT(ok, cases);
    side_by_side_close(&b);
}

/* NaN or Inf rows: both refuse (-1) alike. */
SQ_TEST(sampler_non_finite_rows_are_refused_alike) {
    int V = 1000;
    sq_sample_scratch s, s2;
    sq_err e;
    REQUIRE(sq_sample_scratch_init(&s, V, &e) == 0);
    REQUIRE(sq_sample_scratch_init(&s2, V, &e) == 0);
    float l[1000];
    for (int i = 0; i < V; i++) l[i] = (float)(i % 13) * 0.1f;
    sq_gen_params p;
    memset(&p, 0, sizeof p);
    p.temperature = 0.7f;
    p.top_p = 0.95f;
    float lp;
    sq_rng a, b;
    sq_rng_seed(&a, 5);
    sq_rng_seed(&b, 5);
    l[500] = INFINITY;
    CHECK_EQ_INT(sq_sample(l, V, &p, &a, &s, &lp), -1);
    CHECK_EQ_INT(ref_sample(l, V, &p, &b, &s2, &lp), -1);
    l[500] = NAN;
    CHECK_EQ_INT(sq_sample(l, V, &p, &a, &s, &lp), ref_sample(l, V, &p, &b, &s2, &lp));
    sq_sample_scratch_free(&s);
    sq_sample_scratch_free(&s2);
}
