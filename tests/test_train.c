/* train: gradients against finite differences, packing isolation, losses, AdamW, schedules. */
#include <stdlib.h>
#include <string.h>

#include "scalequest/train.h"
#include "test.h"

static sq_model_config tiny_config(int kv, int bias, int tied) {
    sq_model_config c = {0};
    snprintf(c.arch, sizeof c.arch, "%s", bias ? "qwen2" : "llama");
    c.vocab_size = 37, c.dim = 16, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = kv, c.head_dim = 4;
    c.ffn_dim = 24, c.max_seq_len = 32, c.rope_theta = 10000.0f, c.norm_eps = 1e-5f;
    c.tie_embeddings = tied, c.attn_bias = bias, c.bos_id = -1, c.eos_id = -1;
    return c;
}

typedef struct {
    int32_t tok[16], tgt[16], pos[16], seg[16];
    float w[16];
    sq_tbatch b;
} fixture;

/* Two rows of 8: row 0 holds two packed examples (5 + 3 tokens), row 1 one example. */
static void make_batch(fixture *f) {
    sq_rng r;
    sq_rng_seed(&r, 7);
    for (int i = 0; i < 16; i++) f->tok[i] = (int32_t)sq_rng_below(&r, 37);
    for (int i = 0; i < 16; i++) {
        int row = i / 8, col = i % 8;
        int start = row == 0 ? (col < 5 ? 0 : 5) : 0;
        int end = row == 0 ? (col < 5 ? 5 : 8) : 8;
        f->seg[i] = start;
        f->pos[i] = col - start;
        f->tgt[i] = col + 1 < end ? f->tok[i + 1] : -1;
        f->w[i] = f->tgt[i] >= 0 && col != 2 ? 1.0f : 0.0f; /* one masked target */
    }
    f->b = (sq_tbatch){2, 8, f->tok, f->tgt, f->pos, f->seg};
}

/* The whole loss: CE on tokens, plus a scalar-head term when the model has one. */
static double full_loss(sq_tmodel *m, fixture *f, int backward) {
    sq_err e;
    if (sq_tm_forward(m, &f->b, 1, &e)) return NAN;
    float dlogp[16];
    double loss = sq_loss_ce(m->logp, f->w, 16, 10.0, dlogp);
    int rows[2] = {4, 15};
    float val[2], tgt[2] = {0.3f, -0.7f}, dv[2];
    int ns = m->has_score ? 2 : 0;
    for (int i = 0; i < ns; i++) val[i] = sq_tm_score_value(m, rows[i]);
    if (ns) loss += sq_loss_mse(val, tgt, ns, dv);
    if (backward && sq_tm_backward(m, &f->b, dlogp, rows, dv, ns, &e)) return NAN;
    return loss;
}

static void grad_check(int kv, int bias, int tied, int score) {
    sq_model_config c = tiny_config(kv, bias, tied);
    sq_tmodel m;
    sq_err e;
    REQUIRE(sq_tm_create(&m, &c, score, &e) == 0);
    sq_tm_init_random(&m, 3, 0.3f);
    /* Non-trivial norms and biases so their gradients are exercised. */
    sq_rng r;
    sq_rng_seed(&r, 11);
    for (int t = 0; t < m.n_tensors; t++)
        if (m.tensors[t].ndim == 1)
            for (size_t i = 0; i < m.tensors[t].numel; i++)
                m.params[m.tensors[t].offset + i] += (float)(0.2 * sq_rng_normal(&r));
    fixture f;
    make_batch(&f);
    sq_tm_zero_grad(&m);
    REQUIRE(!isnan(full_loss(&m, &f, 1)));
    for (int t = 0; t < m.n_tensors; t++) {
        const sq_tm_tensor *tt = &m.tensors[t];
        float gmax = 0;
        for (size_t i = 0; i < tt->numel; i++) gmax = fmaxf(gmax, fabsf(m.grads[tt->offset + i]));
        CHECKF(gmax > 0, "%s has an all-zero gradient", tt->name);
        for (int s = 0; s < 6; s++) {
            size_t i = tt->offset + sq_rng_below(&r, tt->numel);
            float keep = m.params[i], h = 1e-2f;
            m.params[i] = keep + h;
            double lp = full_loss(&m, &f, 0);
            m.params[i] = keep - h;
            double lm = full_loss(&m, &f, 0);
            m.params[i] = keep;
            double num = (lp - lm) / (2 * h);
            CHECKF(fabs(num - m.grads[i]) <= 2e-2 * gmax + 2e-4, "%s[%zu]: analytic %g, numeric %g (max %g)", tt->name,
                   i - tt->offset, m.grads[i], num, gmax);
        }
    }
    sq_tm_free(&m);
}

SQ_TEST(grad_llama_gqa_untied) { grad_check(2, 0, 0, 0); }
SQ_TEST(grad_qwen2_bias_tied) { grad_check(4, 1, 1, 0); }
SQ_TEST(grad_mqa_with_score_head) { grad_check(1, 1, 0, 1); }

SQ_TEST(packed_examples_do_not_see_each_other) {
    sq_model_config c = tiny_config(2, 1, 0);
    sq_tmodel m;
    sq_err e;
    REQUIRE(sq_tm_create(&m, &c, 0, &e) == 0);
    sq_tm_init_random(&m, 5, 0.2f);
    fixture f;
    make_batch(&f);
    REQUIRE(sq_tm_forward(&m, &f.b, 1, &e) == 0);
    float packed[3];
    for (int i = 0; i < 3; i++) packed[i] = m.logp[5 + i];
    /* The second example alone, at the start of its own row. */
    int32_t tok[3], tgt[3], pos[3] = {0, 1, 2}, seg[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) tok[i] = f.tok[5 + i], tgt[i] = f.tgt[5 + i];
    sq_tbatch b = {1, 3, tok, tgt, pos, seg};
    REQUIRE(sq_tm_forward(&m, &b, 1, &e) == 0);
    for (int i = 0; i < 2; i++) CHECK_NEAR(m.logp[i], packed[i], 1e-5);
    /* Without the restart the answer changes: the check above can fail. */
    int32_t seg_bad[16], pos_bad[16];
    for (int i = 0; i < 16; i++) seg_bad[i] = 0, pos_bad[i] = i % 8;
    sq_tbatch bad = {2, 8, f.tok, f.tgt, pos_bad, seg_bad};
    REQUIRE(sq_tm_forward(&m, &bad, 1, &e) == 0);
    CHECK(fabsf(m.logp[5] - packed[0]) > 1e-4);
    sq_tm_free(&m);
}

SQ_TEST(forward_rejects_bad_tokens) {
    sq_model_config c = tiny_config(2, 0, 0);
    sq_tmodel m;
    sq_err e;
    REQUIRE(sq_tm_create(&m, &c, 0, &e) == 0);
    int32_t tok[2] = {1, 99}, pos[2] = {0, 1}, seg[2] = {0, 0};
    sq_tbatch b = {1, 2, tok, NULL, pos, seg};
    CHECK(sq_tm_forward(&m, &b, 0, &e) == SQ_ERANGE);
    CHECK(strstr(e.msg, "99") != NULL);
    sq_tm_free(&m);
}

SQ_TEST(dpo_loss_matches_closed_form) {
    double pc[2] = {-10, -5}, pr[2] = {-12, -4}, rc[2] = {-11, -5}, rr[2] = {-11, -5};
    double dpc[2], dpr[2], cr[2], rjr[2];
    double loss = sq_loss_dpo(pc, pr, rc, rr, 2, 0.1, dpc, dpr, cr, rjr);
    double z0 = 0.1 * ((1.0) - (-1.0)), z1 = 0.1 * (0.0 - 1.0);
    double want = (log1p(exp(-z0)) + log1p(exp(-z1))) / 2;
    CHECK_NEAR(loss, want, 1e-12);
    CHECK_NEAR(cr[0], 0.1, 1e-12);
    CHECK_NEAR(rjr[1], 0.1, 1e-12);
    double h = 1e-6, pc2[2] = {pc[0] + h, pc[1]}, d0[2], d1[2];
    double lp = sq_loss_dpo(pc2, pr, rc, rr, 2, 0.1, d0, d1, NULL, NULL);
    CHECK_NEAR((lp - loss) / h, dpc[0], 1e-5);
    CHECK_NEAR(dpr[0], -dpc[0], 1e-15);
}

SQ_TEST(mse_and_ce) {
    float v[2] = {1, 3}, t[2] = {0, 1}, dv[2];
    CHECK_NEAR(sq_loss_mse(v, t, 2, dv), 2.5, 1e-9);
    CHECK_NEAR(dv[1], 2.0, 1e-6);
    float lp[3] = {-1, -2, -3}, w[3] = {1, 0, 1}, d[3];
    CHECK_NEAR(sq_loss_ce(lp, w, 3, 2.0, d), 2.0, 1e-9);
    CHECK_NEAR(d[0], -0.5, 1e-7);
    CHECK_NEAR(d[1], 0.0, 1e-9);
}

SQ_TEST(adamw_first_steps_by_hand) {
    sq_model_config c = tiny_config(2, 0, 0);
    sq_tmodel m;
    sq_err e;
    REQUIRE(sq_tm_create(&m, &c, 0, &e) == 0);
    sq_adamw o;
    REQUIRE(sq_adamw_init(&o, m.n_params, 0.9f, 0.999f, 1e-8f, 0.1f, &e) == 0);
    const sq_tm_tensor *wq = sq_tm_find(&m, "model.layers.0.self_attn.q_proj.weight");
    const sq_tm_tensor *ln = sq_tm_find(&m, "model.layers.0.input_layernorm.weight");
    REQUIRE(wq && ln);
    m.params[wq->offset] = 1.0f, m.grads[wq->offset] = 0.5f;
    m.params[ln->offset] = 1.0f, m.grads[ln->offset] = 0.5f;
    sq_adamw_step(&o, &m, 0.01f);
    /* Step 1 moves by lr * sign(g); decay (matrices only) shrinks by lr * wd first. */
    CHECK_NEAR(m.params[wq->offset], 1.0 * (1 - 0.001) - 0.01, 1e-6);
    CHECK_NEAR(m.params[ln->offset], 1.0 - 0.01, 1e-6);
    m.grads[wq->offset] = -0.5f;
    float p1 = m.params[wq->offset];
    sq_adamw_step(&o, &m, 0.01f);
    double mm = 0.1 * 0.5 * 0.9 + 0.1 * -0.5, vv = 0.001 * 0.25 * 0.999 + 0.001 * 0.25;
    double upd = 0.01 / (1 - 0.81) * mm / (sqrt(vv) / sqrt(1 - 0.999 * 0.999) + 1e-8);
    CHECK_NEAR(m.params[wq->offset], p1 * (1 - 0.001) - upd, 1e-6);
    /* Clipping scales to the requested norm. */
    sq_tm_zero_grad(&m);
    m.grads[wq->offset] = 3, m.grads[ln->offset] = 4;
    CHECK_NEAR(sq_clip_grad_norm(&m, 1.0), 5.0, 1e-9);
    CHECK_NEAR(m.grads[wq->offset], 0.6, 1e-6);
    sq_adamw_free(&o);
    sq_tm_free(&m);
}

/* The trainer's one-pass clip + AdamW + zero equals clip, step and zero_grad done apart, bit
 * for bit: with clipping active (coef < 1) and without (coef 1), over a few steps. */
SQ_TEST(fused_update_equals_clip_then_step) {
    sq_model_config c = tiny_config(2, 1, 0);
    sq_tmodel a, b;
    sq_err e;
    REQUIRE(sq_tm_create(&a, &c, 0, &e) == 0);
    REQUIRE(sq_tm_create(&b, &c, 0, &e) == 0);
    sq_tm_init_random(&a, 3, 0.02f);
    sq_tm_init_random(&b, 3, 0.02f);
    sq_adamw oa, ob;
    REQUIRE(sq_adamw_init(&oa, a.n_params, 0.9f, 0.95f, 1e-8f, 0.1f, &e) == 0);
    REQUIRE(sq_adamw_init(&ob, b.n_params, 0.9f, 0.95f, 1e-8f, 0.1f, &e) == 0);
    sq_rng r;
    sq_rng_seed(&r, 9);
    int clipped = 0, unclipped = 0;
    for (int step = 0; step < 4; step++) {
        /* Steps 0 and 2 have a norm far above the limit, 1 and 3 below it. */
        double sd = step % 2 ? 1e-5 : 0.5;
        sq_tm_zero_grad(&a);
        for (int t = 0; t < a.n_tensors; t++) /* backward writes tensors, never the padding */
            for (size_t i = 0; i < a.tensors[t].numel; i++)
                a.grads[a.tensors[t].offset + i] = (float)(sq_rng_normal(&r) * sd);
        if (step == 0) memset(b.grads, 0, b.n_params * sizeof(float));
        for (size_t i = 0; i < b.n_params; i++) CHECK(b.grads[i] == 0.0f); /* left zero by the fused step */
        memcpy(b.grads, a.grads, a.n_params * sizeof(float));
        double na = sq_clip_grad_norm(&a, 1.0);
        sq_adamw_step(&oa, &a, 1e-3f);
        float coef;
        double nb = sq_grad_norm_coef(&b, 1.0, &coef);
        CHECK(na == nb);
        clipped += coef < 1.0f, unclipped += coef == 1.0f;
        sq_adamw_step_fused(&ob, &b, 1e-3f, coef, 1);
        CHECK(memcmp(a.params, b.params, a.n_params * sizeof(float)) == 0);
        CHECK(memcmp(oa.m, ob.m, a.n_params * sizeof(float)) == 0);
        CHECK(memcmp(oa.v, ob.v, a.n_params * sizeof(float)) == 0);
    }
    CHECK(clipped == 2 && unclipped == 2);
    sq_adamw_free(&oa);
    sq_adamw_free(&ob);
    sq_tm_free(&a);
    sq_tm_free(&b);
}

SQ_TEST(schedules_match_hf) {
    CHECK_NEAR(sq_sched_factor(SQ_SCHED_COSINE, 0, 100, 10), 0.0, 1e-12);
    CHECK_NEAR(sq_sched_factor(SQ_SCHED_COSINE, 5, 100, 10), 0.5, 1e-12);
    CHECK_NEAR(sq_sched_factor(SQ_SCHED_COSINE, 10, 100, 10), 1.0, 1e-12);
    CHECK_NEAR(sq_sched_factor(SQ_SCHED_COSINE, 55, 100, 10), 0.5, 1e-12);
    CHECK_NEAR(sq_sched_factor(SQ_SCHED_COSINE, 100, 100, 10), 0.0, 1e-12);
    CHECK_NEAR(sq_sched_factor(SQ_SCHED_LINEAR, 55, 100, 10), 0.5, 1e-12);
    CHECK_NEAR(sq_sched_factor(SQ_SCHED_CONSTANT, 55, 100, 10), 1.0, 1e-12);
}

SQ_TEST(packer_fills_rows_whole) {
    int32_t a[5] = {1, 2, 3, 4, 5}, b_[4] = {6, 7, 8, 9}, c_[6] = {1, 1, 1, 1, 1, 1};
    uint8_t la[5] = {0, 0, 1, 1, 1}, lb[4] = {0, 1, 1, 1}, lc[6] = {1, 1, 1, 1, 1, 1};
    sq_texample ex[3] = {{a, la, 5, 0}, {b_, lb, 4, 0}, {c_, lc, 6, 0}};
    sq_packer p;
    sq_err e;
    REQUIRE(sq_packer_init(&p, 2, 10, 1, &e) == 0);
    sq_tbatch b;
    CHECK_EQ_INT(sq_packer_fill(&p, ex, 0, 3, &b), 3);
    CHECK_EQ_INT(p.n_in_batch, 3);
    CHECK_EQ_INT(p.tokens[5], 6);
    CHECK_EQ_INT(p.pos[6], 1);
    CHECK_EQ_INT(p.seg_start[8], 5);
    CHECK_EQ_INT(p.targets[0], -1);  /* ids[1] is not a loss token */
    CHECK_EQ_INT(p.targets[1], 3);
    CHECK_EQ_INT(p.targets[4], -1);  /* no next token across the boundary */
    CHECK_EQ_INT(p.last_row[1], 8);
    CHECK_EQ_INT(p.last_row[2], 15);
    CHECK_EQ_INT(p.n_targets, 3 + 3 + 5);
    CHECK_EQ_INT(p.seg_start[17], 7); /* padding attends to itself */
    sq_packer_free(&p);
}
