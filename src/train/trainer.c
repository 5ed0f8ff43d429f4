/* The training loop: a fixed, seeded plan of micro-batches; per step, forward/loss/backward
 * over `accum` micro-batches, clipping, the schedule and AdamW; a log line; and now and then
 * a resumable checkpoint. Everything a step depends on is either in the plan (a function of
 * the seed and the data) or in the checkpoint, which is why a resumed run repeats the
 * uninterrupted one exactly. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/dist.h"
#include "train_state.h"

void sq_train_opts_default(sq_train_opts *o) {
    memset(o, 0, sizeof *o);
    o->mode = SQ_TRAIN_SFT;
    o->batch = 8, o->seq_len = 256, o->accum = 1, o->pack = 1, o->epochs = 1;
    o->lr = 1e-4, o->weight_decay = 0.0, o->beta1 = 0.9, o->beta2 = 0.999, o->eps = 1e-8, o->clip = 1.0;
    o->warmup_ratio = 0.0, o->warmup_steps = -1;
    o->sched = SQ_SCHED_COSINE;
    o->dpo_beta = 0.1;
}

int sq_train_mode_parse(const char *name, sq_train_mode *mode) {
    static const char *names[] = {"sft", "qft", "dpo", "regress"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, names[i])) {
            *mode = (sq_train_mode)i;
            return 0;
        }
    if (!strcmp(name, "qpo")) {
        *mode = SQ_TRAIN_DPO;
        return 0;
    }
    return SQ_EINVAL;
}

/* ---- the plan --------------------------------------------------------------------------- */

/* Examples in training order (epoch after epoch, each shuffled by its own seed), cut into
 * micro-batches by the packer. */
typedef struct plan {
    sq_texample *ex; /* shallow copies in order */
    int *orig;       /* index into the caller's array */
    int n_ex;
    int *mb_start, *mb_items, *mb_targets;
    int n_mb;
    int64_t steps;
} plan;

static void plan_free(plan *p) {
    free(p->ex);
    free(p->orig);
    free(p->mb_start);
    free(p->mb_items);
    free(p->mb_targets);
}

static int plan_build(plan *p, const sq_texample *ex, int n, const sq_train_opts *o, sq_packer *pk, sq_err *e) {
    memset(p, 0, sizeof *p);
    int unit = o->mode == SQ_TRAIN_DPO ? 2 : 1, n_units = n / unit;
    int per_step_cap = o->batch * o->accum;
    int epochs = o->epochs > 0 ? o->epochs : 1;
    if (o->max_steps > 0) {
        /* Enough epochs that the plan has max_steps steps even without packing. */
        int64_t need = o->max_steps * per_step_cap;
        int64_t e2 = (need + (int64_t)n - 1) / n;
        if (e2 > epochs) epochs = (int)e2;
    }
    if ((int64_t)epochs * n > 50000000) return sq_fail(e, SQ_ERANGE, "train: the plan of %d epochs is too long", epochs);
    p->n_ex = epochs * n_units * unit;
    p->ex = malloc(sizeof *p->ex * (size_t)p->n_ex);
    p->orig = malloc(sizeof *p->orig * (size_t)p->n_ex);
    int *perm = malloc(sizeof *perm * (size_t)n_units);
    p->mb_start = malloc(sizeof(int) * (size_t)p->n_ex + sizeof(int));
    p->mb_items = malloc(sizeof(int) * (size_t)p->n_ex + sizeof(int));
    p->mb_targets = malloc(sizeof(int) * (size_t)p->n_ex + sizeof(int));
    if (!p->ex || !p->orig || !perm || !p->mb_start || !p->mb_items || !p->mb_targets) {
        free(perm);
        plan_free(p);
        return sq_fail(e, SQ_ENOMEM, "train: out of memory for the data plan");
    }
    int k = 0;
    for (int ep = 0; ep < epochs; ep++) {
        sq_rng r;
        sq_rng_seed(&r, o->seed * 1000003ULL + (uint64_t)ep);
        for (int i = 0; i < n_units; i++) perm[i] = i;
        for (int i = n_units - 1; i > 0; i--) {
            int j = (int)sq_rng_below(&r, (uint64_t)i + 1), t = perm[i];
            perm[i] = perm[j], perm[j] = t;
        }
        for (int i = 0; i < n_units; i++)
            for (int u = 0; u < unit; u++) {
                p->orig[k] = perm[i] * unit + u;
                p->ex[k++] = ex[perm[i] * unit + u];
            }
    }
    free(perm);
    sq_tbatch b;
    for (int first = 0; first < p->n_ex;) {
        int used = sq_packer_fill(pk, p->ex, first, p->n_ex, &b);
        if (used <= 0) break;
        p->mb_start[p->n_mb] = first;
        p->mb_items[p->n_mb] = used;
        p->mb_targets[p->n_mb] = pk->n_targets;
        p->n_mb++;
        first += used;
    }
    p->steps = (p->n_mb + o->accum - 1) / o->accum;
    if (o->max_steps > 0 && o->max_steps < p->steps) p->steps = o->max_steps;
    if (p->steps <= 0) {
        plan_free(p);
        return sq_fail(e, SQ_EINVAL, "train: no training data");
    }
    return 0;
}

/* ---- reference log-probs (DPO) ---------------------------------------------------------- */

int sq_train_seq_logps(sq_tmodel *m, const sq_texample *ex, int n, int batch, int T, float *out, sq_err *e) {
    sq_packer pk;
    int rc = sq_packer_init(&pk, batch, T, 0, e);
    sq_tbatch b;
    for (int first = 0; !rc && first < n;) {
        int used = sq_packer_fill(&pk, ex, first, n, &b);
        if ((rc = sq_tm_forward(m, &b, 1, e))) break;
        for (int j = 0; j < pk.n_in_batch; j++) {
            int last = pk.last_row[j], len = ex[first + j].n < T ? ex[first + j].n : T;
            double s = 0;
            for (int r = last - len + 1; r <= last; r++) s += pk.weight[r] * m->logp[r];
            out[first + j] = (float)s;
        }
        first += used;
    }
    sq_packer_free(&pk);
    return rc;
}

/* ---- one step ---------------------------------------------------------------------------- */

typedef struct step_stats {
    double loss, chosen_reward, rejected_reward;
    int n_pairs;
} step_stats;

static int run_micro(sq_tmodel *m, const sq_train_opts *o, const plan *pl, sq_packer *pk, int mb, double norm,
                     const float *ref, float *dlogp, float *val, float *dval, step_stats *st, sq_err *e) {
    sq_tbatch b;
    sq_packer_fill(pk, pl->ex, pl->mb_start[mb], pl->mb_start[mb] + pl->mb_items[mb], &b);
    int N = b.B * b.T, rc;
    if (o->mode == SQ_TRAIN_REGRESS) {
        if ((rc = sq_tm_forward(m, &b, 0, e))) return rc;
        for (int j = 0; j < pk->n_in_batch; j++) {
            val[j] = sq_tm_score_value(m, pk->last_row[j]);
            dval[N + j] = pl->ex[pk->ex_index[j]].value; /* targets ride in the spare half */
        }
        double loss = sq_loss_mse(val, dval + N, pk->n_in_batch, dval);
        double scale = pk->n_in_batch / norm;
        for (int j = 0; j < pk->n_in_batch; j++) dval[j] = (float)(dval[j] * scale);
        st->loss += loss * scale;
        return sq_tm_backward(m, &b, NULL, pk->last_row, dval, pk->n_in_batch, e);
    }
    if ((rc = sq_tm_forward(m, &b, 1, e))) return rc;
    if (o->mode != SQ_TRAIN_DPO) {
        st->loss += sq_loss_ce(m->logp, pk->weight, N, norm, dlogp);
        return sq_tm_backward(m, &b, dlogp, NULL, NULL, 0, e);
    }
    int np = pk->n_in_batch / 2;
    double *buf = malloc(sizeof(double) * (size_t)np * 8);
    if (!buf) return sq_fail(e, SQ_ENOMEM, "train: out of memory");
    double *pc = buf, *pr = buf + np, *rc_ = buf + 2 * np, *rr = buf + 3 * np, *dpc = buf + 4 * np, *dpr = buf + 5 * np,
           *cr = buf + 6 * np, *rjr = buf + 7 * np;
    for (int j = 0; j < pk->n_in_batch; j++) {
        int last = pk->last_row[j], idx = pk->ex_index[j];
        int len = pl->ex[idx].n < b.T ? pl->ex[idx].n : b.T;
        double s = 0;
        for (int r = last - len + 1; r <= last; r++) s += pk->weight[r] * m->logp[r];
        (j % 2 ? pr : pc)[j / 2] = s;
        (j % 2 ? rr : rc_)[j / 2] = ref[pl->orig[idx]];
    }
    double loss = sq_loss_dpo(pc, pr, rc_, rr, np, o->dpo_beta, dpc, dpr, cr, rjr);
    double scale = np / norm;
    st->loss += loss * scale;
    memset(dlogp, 0, sizeof(float) * (size_t)N);
    for (int j = 0; j < pk->n_in_batch; j++) {
        int last = pk->last_row[j], idx = pk->ex_index[j];
        int len = pl->ex[idx].n < b.T ? pl->ex[idx].n : b.T;
        float d = (float)((j % 2 ? dpr : dpc)[j / 2] * scale);
        for (int r = last - len + 1; r <= last; r++) dlogp[r] = pk->weight[r] * d;
    }
    for (int i = 0; i < np; i++) {
        st->chosen_reward += cr[i];
        st->rejected_reward += rjr[i];
    }
    st->n_pairs += np;
    free(buf);
    return sq_tm_backward(m, &b, dlogp, NULL, NULL, 0, e);
}

int sq_train_run(sq_tmodel *m, const sq_texample *ex, int n, const sq_train_opts *o, double *final_loss, sq_err *e) {
    if (o->batch <= 0 || o->seq_len <= 1 || o->accum <= 0)
        return sq_fail(e, SQ_EINVAL, "train: batch, seq_len and accum must be positive");
    if (o->mode == SQ_TRAIN_DPO && (n % 2 || o->batch % 2))
        return sq_fail(e, SQ_EINVAL, "train: DPO needs whole pairs: an even number of sequences (%d) and batch (%d)", n,
                       o->batch);
    if (o->mode == SQ_TRAIN_REGRESS && !m->has_score)
        return sq_fail(e, SQ_EINVAL, "train: regression needs a model with a scalar head");
    if (o->seq_len > m->cfg.max_seq_len)
        return sq_fail(e, SQ_EINVAL, "train: seq_len %d exceeds the model's max_position_embeddings %d", o->seq_len,
                       m->cfg.max_seq_len);
    if (m->cfg.sliding_window > 0 && o->seq_len > m->cfg.sliding_window)
        return sq_fail(e, SQ_EUNSUP, "train: seq_len %d exceeds the model's sliding window %d (not supported)",
                       o->seq_len, m->cfg.sliding_window);
    sq_gemm_one_pool(); /* our OpenMP pool threads the GEMMs */
    sq_train_opts oo = *o;
    if (oo.mode == SQ_TRAIN_DPO) oo.pack = 0; /* one sequence per row keeps pairs inside a micro-batch */
    sq_packer pk;
    int rc = sq_packer_init(&pk, oo.batch, oo.seq_len, oo.pack, e);
    if (rc) return rc;
    plan pl;
    if ((rc = plan_build(&pl, ex, n, &oo, &pk, e))) {
        sq_packer_free(&pk);
        return rc;
    }
    int64_t warmup = oo.warmup_steps >= 0 ? oo.warmup_steps : (int64_t)ceil(oo.warmup_ratio * (double)pl.steps);
    sq_adamw opt;
    float *ref = NULL, *dlogp = NULL, *val = NULL, *dval = NULL;
    char *identity = NULL;
    int64_t start = 0;
    train_log lg = {0};
    if ((rc = sq_adamw_init(&opt, m->n_params, (float)oo.beta1, (float)oo.beta2, (float)oo.eps, (float)oo.weight_decay,
                            e)))
        goto done;
    size_t N = (size_t)oo.batch * oo.seq_len;
    ref = calloc((size_t)n + 1, sizeof *ref);
    dlogp = malloc(N * sizeof *dlogp);
    val = malloc(N * sizeof *val);
    dval = malloc(2 * N * sizeof *dval);
    if (!ref || !dlogp || !val || !dval) {
        rc = sq_fail(e, SQ_ENOMEM, "train: out of memory");
        goto done;
    }
    /* before a resume replaces the starting weights, which are part of what is hashed */
    if (oo.out_dir && !(identity = sq_train_run_identity(m, ex, n, &oo, pl.steps))) {
        rc = sq_fail(e, SQ_ENOMEM, "train: out of memory");
        goto done;
    }
    rc = sq_train_state_resume(m, &opt, oo.mode == SQ_TRAIN_DPO ? ref : NULL, n, &oo, identity, &start, e);
    if (rc < 0) goto done;
    if (rc == 1 && sq_dist_rank() == 0) sq_info("train: resuming from step %lld of %lld (%s/last-checkpoint)", (long long)start,
                         (long long)pl.steps, oo.out_dir);
    if (rc == 0 && oo.mode == SQ_TRAIN_DPO) {
        /* The frozen reference is the starting model: its log-probs, computed once. */
        if ((rc = sq_train_seq_logps(m, ex, n, oo.batch, oo.seq_len, ref, e))) goto done;
    }
    rc = 0;
    /* Data-parallel (dist.h): rank r runs micro-batches r, r+N, ... of each step; only rank 0 writes. */
    const int rank = sq_dist_rank(), world = sq_dist_size();
    const char *writer_dir = rank == 0 ? oo.out_dir : NULL;
    if ((rc = sq_train_log_open(&lg, writer_dir, start, e))) goto done;
    sq_progress prog;
    sq_progress_start(&prog, "train", pl.steps);
    sq_progress_resume(&prog, start);
    double loss = NAN;
    for (int64_t s = start; s < pl.steps; s++) {
        /* Later steps find the grads zeroed by the previous step's fused update. */
        if (s == start) sq_tm_zero_grad(m);
        int mb0 = (int)(s * oo.accum), mb1 = (int)SQ_MIN((int64_t)pl.n_mb, (s + 1) * oo.accum);
        double norm = 0;
        for (int k = mb0; k < mb1; k++)
            norm += oo.mode == SQ_TRAIN_DPO ? pl.mb_items[k] / 2 : oo.mode == SQ_TRAIN_REGRESS ? pl.mb_items[k] : pl.mb_targets[k];
        if (norm <= 0) norm = 1;
        step_stats st = {0};
        for (int k = mb0; k < mb1 && !rc; k++)
            if ((k - mb0) % world == rank) rc = run_micro(m, &oo, &pl, &pk, k, norm, ref, dlogp, val, dval, &st, e);
        if (!rc && world > 1) {
            double sums[4] = {st.loss, st.chosen_reward, st.rejected_reward, st.n_pairs};
            rc = sq_dist_sum_floats(m->grads, m->n_params, e);
            if (!rc) rc = sq_dist_sum_doubles(sums, 4, e);
            st.loss = sums[0], st.chosen_reward = sums[1], st.rejected_reward = sums[2], st.n_pairs = (int)sums[3];
        }
        if (rc) break;
        if (rank == 0 && oo.grads_out && s == start && (rc = sq_tm_write_buffer(m, m->grads, oo.grads_out, e))) break;
        float coef;
        double gnorm = sq_grad_norm_coef(m, oo.clip, &coef);
        double lr = oo.lr * sq_sched_factor(oo.sched, s, pl.steps, warmup);
        sq_adamw_step_fused(&opt, m, (float)lr, coef, 1);
        loss = st.loss;
        if (!isfinite(loss)) {
            rc = sq_fail(e, SQ_ERANGE, "train: the loss is %g at step %lld; lower --lr", loss, (long long)s + 1);
            break;
        }
        if ((rc = sq_train_log_step(&lg, s + 1, loss, lr, gnorm, st.n_pairs ? st.chosen_reward / st.n_pairs : NAN,
                                    st.n_pairs ? st.rejected_reward / st.n_pairs : NAN, e)))
            break;
        sq_progress_add(&prog, 1);
        if (rank == 0 && oo.save_every > 0 && (s + 1) % oo.save_every == 0 && s + 1 < pl.steps &&
            (rc = sq_train_state_save(m, &opt, oo.mode == SQ_TRAIN_DPO ? ref : NULL, n, &oo, identity, s + 1, e)))
            break;
    }
    sq_progress_finish(&prog);
    if (!rc && writer_dir) rc = sq_tm_save_hf(m, writer_dir, oo.tokenizer, e);
    if (final_loss) *final_loss = loss;
done:
    sq_train_log_close(&lg);
    free(identity);
    free(ref);
    free(dlogp);
    free(val);
    free(dval);
    sq_adamw_free(&opt);
    plan_free(&pl);
    sq_packer_free(&pk);
    return rc;
}
