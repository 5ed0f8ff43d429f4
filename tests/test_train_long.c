/* train: rows longer than one attention block (the trainer's attention works on blocks of 64
 * rows and skips the columns a block never reaches), with packed examples whose boundaries
 * fall inside blocks: gradients against central differences, and a packed row against its
 * examples run alone. */
#include <stdlib.h>

#include "scalequest/train.h"
#include "test.h"

#define T_LONG 150
#define B_LONG 2

static sq_model_config long_config(int fused) {
    sq_model_config c = {0};
    snprintf(c.arch, sizeof c.arch, "%s", fused ? "llama" : "qwen2");
    c.vocab_size = 29, c.dim = 16, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 4;
    c.ffn_dim = 24, c.max_seq_len = 160, c.rope_theta = 10000.0f, c.norm_eps = 1e-5f;
    c.tie_embeddings = 1, c.attn_bias = !fused, c.bos_id = -1, c.eos_id = -1;
    return c;
}

/* Row 0: three packed examples of 50, 70 and 30 tokens (starts 0, 50, 120: inside the
 * blocks [0, 64), [64, 128), [128, 150)). Row 1: one example of 150. */
static const int ex_start[4] = {0, 50, 120, 150};

typedef struct {
    int32_t tok[B_LONG * T_LONG], tgt[B_LONG * T_LONG], pos[B_LONG * T_LONG], seg[B_LONG * T_LONG];
    float w[B_LONG * T_LONG];
    sq_tbatch b;
} long_batch;

static void make_long(long_batch *f) {
    sq_rng r;
    sq_rng_seed(&r, 21);
    for (int i = 0; i < B_LONG * T_LONG; i++) f->tok[i] = (int32_t)sq_rng_below(&r, 29);
    for (int i = 0; i < B_LONG * T_LONG; i++) {
        int row = i / T_LONG, col = i % T_LONG, start = 0, end = T_LONG;
        if (row == 0)
            for (int k = 0; k < 3; k++)
                if (col >= ex_start[k] && col < ex_start[k + 1]) start = ex_start[k], end = ex_start[k + 1];
        f->seg[i] = start;
        f->pos[i] = col - start;
        f->tgt[i] = col + 1 < end ? f->tok[i + 1] : -1;
        f->w[i] = f->tgt[i] >= 0 ? 1.0f : 0.0f;
    }
    f->b = (sq_tbatch){B_LONG, T_LONG, f->tok, f->tgt, f->pos, f->seg};
}

static double loss_of(sq_tmodel *m, const sq_tbatch *b, const float *w, int backward) {
    sq_err e;
    int n = b->B * b->T;
    if (sq_tm_forward(m, b, 1, &e)) return NAN;
    float *dlogp = malloc(sizeof *dlogp * (size_t)n);
    if (!dlogp) return NAN;
    double loss = sq_loss_ce(m->logp, w, n, 100.0, dlogp);
    if (backward && sq_tm_backward(m, b, dlogp, NULL, NULL, 0, &e)) loss = NAN;
    free(dlogp);
    return loss;
}

static void long_rows(int fused) {
    sq_model_config c = long_config(fused);
    sq_tmodel m;
    sq_err e;
    REQUIRE(sq_tm_create(&m, &c, 0, &e) == 0);
    sq_tm_init_random(&m, 4, 0.3f);
    long_batch *f = malloc(sizeof *f);
    REQUIRE(f);
    make_long(f);
    sq_tm_zero_grad(&m);
    REQUIRE(!isnan(loss_of(&m, &f->b, f->w, 1)));
    float packed_logp[T_LONG];
    for (int i = 0; i < T_LONG; i++) packed_logp[i] = m.logp[i];
    float *g_all = malloc(m.n_params * sizeof(float));
    REQUIRE(g_all);
    memcpy(g_all, m.grads, m.n_params * sizeof(float));

    /* Central differences on a few elements of every tensor. */
    sq_rng r;
    sq_rng_seed(&r, 5);
    for (int t = 0; t < m.n_tensors; t++) {
        const sq_tm_tensor *tt = &m.tensors[t];
        float gmax = 0;
        for (size_t i = 0; i < tt->numel; i++) gmax = fmaxf(gmax, fabsf(g_all[tt->offset + i]));
        for (int s = 0; s < 3; s++) {
            size_t i = tt->offset + sq_rng_below(&r, tt->numel);
            float keep = m.params[i], h = 1e-2f;
            m.params[i] = keep + h;
            double lp = loss_of(&m, &f->b, f->w, 0);
            m.params[i] = keep - h;
            double lm = loss_of(&m, &f->b, f->w, 0);
            m.params[i] = keep;
            double num = (lp - lm) / (2 * h);
            CHECKF(fabs(num - g_all[i]) <= 2e-2 * gmax + 2e-4, "%s[%zu]: analytic %g, numeric %g (max %g)", tt->name,
                   i - tt->offset, g_all[i], num, gmax);
        }
    }

    /* Row 0's examples alone (row 1 alone too) give the same log-probs, and their gradients
     * add up to the packed batch's. */
    sq_tm_zero_grad(&m);
    for (int k = 0; k < 4; k++) {
        int off = k < 3 ? ex_start[k] : T_LONG, len = k < 3 ? ex_start[k + 1] - ex_start[k] : T_LONG;
        int32_t pos[T_LONG], seg[T_LONG];
        for (int i = 0; i < len; i++) pos[i] = i, seg[i] = 0;
        sq_tbatch one = {1, len, f->tok + off, f->tgt + off, pos, seg};
        REQUIRE(!isnan(loss_of(&m, &one, f->w + off, 1)));
        if (k < 3)
            for (int i = 0; i + 1 < len; i++)
                CHECKF(fabsf(m.logp[i] - packed_logp[off + i]) <= 1e-5f, "example %d token %d: alone %g, packed %g", k,
                       i, m.logp[i], packed_logp[off + i]);
    }
    for (int t = 0; t < m.n_tensors; t++) {
        const sq_tm_tensor *tt = &m.tensors[t];
        float gmax = 0, dmax = 0;
        for (size_t i = 0; i < tt->numel; i++) {
            gmax = fmaxf(gmax, fabsf(g_all[tt->offset + i]));
            dmax = fmaxf(dmax, fabsf(g_all[tt->offset + i] - m.grads[tt->offset + i]));
        }
        CHECKF(dmax <= 1e-4f * gmax + 1e-7f, "%s: packed and alone differ by %g (max %g)", tt->name, dmax, gmax);
    }
    free(g_all);
    free(f);
    sq_tm_free(&m);
}

SQ_TEST(long_rows_fused_projections) { long_rows(1); }
SQ_TEST(long_rows_with_biases) { long_rows(0); }
