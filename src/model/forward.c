/* The forward pass of one ragged step (see model.h): every Linear layer is one matmul over
 * all the step's tokens, attention runs over the paged KV cache in sq_attention_run's units;
 * the whole step is one parallel region (forward_phases). */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/model.h"
#include "scalequest/quant.h"

/* forward_phases's phases: the first norm; ten per layer; the output norm and the head. */
enum { PH_FIRST = 1, PH_LAYER = 10, PH_LAST = 2 };

/* A matmul phase of the many-token step: its units are its matrices' slices (list_units),
 * except that when the slices do not divide evenly among the threads, the last (slices % nt)
 * are each cut into nt parts by rows (multiples of 4). With 2 threads, Qwen2-0.5B's o and down
 * projections have 19 slices and q/k/v 25: one thread did one slice more and the other waited
 * (asleep, so no CPU time shows it) for ~5% of each of those phases. A part is the same slice
 * on fewer rows: each output's dot product is the same per-output order whatever the rows
 * (matmul_avx2.c's contract), so the bits do not change. Quantized weights keep whole slices
 * (their rows are rounded once into one shared buffer). */
typedef struct mm_split {
    int slices, whole, nt, rows;
} mm_split;

struct sq_fwd {
    int max_tokens, max_out, max_ctx, n_threads;
    int phased; /* every matmul can run as column ranges (forward_phases) */
    int quant;  /* some matrix is GGUF-quantized */
    float *x, *xb, *q, *k, *v, *att, *tmp, *hb, *hb2, *cosv, *sinv, *xo, *scores;
    sq_phase *ph; /* forward_phases's phases: PH_FIRST + PH_LAYER per layer + PH_LAST */
    mm_split *split; /* beside each matmul phase of ph, the split its units count (set with them) */
    size_t att_floats; /* per thread: attention scratch (sq_attention_scratch_floats) */
    int32_t *att_plan_mem;
    sq_attn_plan att_plan; /* the step's attention work units, planned once per step */
    sq_matmul_ctx *mm;
    void *xq_mem; /* quantized weights: the current matmul input's rows rounded to 8 bits */
};

static int phases_ok(const sq_model *m);

void sq_fwd_free(sq_fwd *f) {
    if (!f) return;
    float *bufs[] = {f->x, f->xb, f->q, f->k, f->v, f->att, f->tmp, f->hb, f->hb2, f->cosv, f->sinv, f->xo, f->scores};
    for (size_t i = 0; i < SQ_ARRAY_LEN(bufs); i++) free(bufs[i]);
    free(f->att_plan_mem);
    free(f->xq_mem);
    sq_matmul_ctx_free(f->mm);
    free(f->ph);
    free(f->split);
    free(f);
}

int sq_fwd_new(sq_fwd **out, const sq_model *m, int max_tokens, int max_out, int max_ctx, sq_err *e) {
    const sq_model_config *c = &m->cfg;
    *out = NULL;
    if (max_tokens <= 0 || max_out <= 0 || max_ctx <= 0)
        return sq_fail(e, SQ_EINVAL, "forward scratch: %d tokens, %d outputs, context %d", max_tokens, max_out, max_ctx);
    sq_fwd *f = calloc(1, sizeof *f);
    if (!f) return sq_fail(e, SQ_ENOMEM, "forward scratch: out of memory");
    f->max_tokens = max_tokens;
    f->max_out = max_out;
    f->max_ctx = max_ctx;
    f->n_threads = omp_get_max_threads();
    f->phased = phases_ok(m);
    for (int l = 0; l < c->n_layers; l++) {
        const sq_layer *L = &m->layers[l];
        const sq_view *w[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < SQ_ARRAY_LEN(w); i++) f->quant |= sq_dtype_is_quant(w[i]->dtype);
    }
    f->quant |= sq_dtype_is_quant(sq_model_head_weight(m)->dtype);
    size_t T = (size_t)max_tokens, qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    size_t wide = SQ_MAX(SQ_MAX((size_t)c->dim, qd), (size_t)c->ffn_dim);
    f->x = sq_malloc_aligned(T * c->dim * 4);
    f->xb = sq_malloc_aligned(T * SQ_MAX((size_t)c->dim, qd) * 4);
    f->q = sq_malloc_aligned(T * qd * 4);
    f->k = sq_malloc_aligned(T * kvd * 4);
    f->v = sq_malloc_aligned(T * kvd * 4);
    f->att = sq_malloc_aligned(T * qd * 4);
    f->tmp = sq_malloc_aligned(T * wide * 4);
    f->hb = sq_malloc_aligned(T * c->ffn_dim * 4);
    f->hb2 = sq_malloc_aligned(T * c->ffn_dim * 4);
    f->cosv = sq_malloc_aligned(T * c->head_dim / 2 * 4);
    f->sinv = sq_malloc_aligned(T * c->head_dim / 2 * 4);
    f->xo = sq_malloc_aligned((size_t)max_out * c->dim * 4);
    f->att_floats = sq_attention_scratch_floats(max_ctx, c->n_heads, c->n_kv_heads, c->head_dim);
    f->scores = sq_malloc_aligned((size_t)f->n_threads * f->att_floats * 4);
    f->att_plan_mem = malloc(sizeof(int32_t) * sq_attention_plan_ints(max_tokens));
    size_t n_ph = (size_t)PH_FIRST + (size_t)PH_LAYER * c->n_layers + PH_LAST;
    f->ph = sq_malloc_aligned(sizeof(sq_phase) * n_ph);
    f->split = malloc(sizeof(mm_split) * n_ph);
    int rc = 0;
    if (!f->ph || !f->split || !f->x || !f->xb || !f->q || !f->k || !f->v || !f->att || !f->tmp || !f->hb || !f->hb2 || !f->cosv || !f->sinv ||
        !f->xo || !f->scores || !f->att_plan_mem)
        rc = sq_fail(e, SQ_ENOMEM, "forward scratch: out of memory for %d tokens", max_tokens);
    if (!rc && f->quant && f->phased) {
        f->xq_mem = sq_malloc_aligned(sq_quant_xrows_bytes((int64_t)wide, SQ_MAX(max_tokens, max_out)));
        if (!f->xq_mem) rc = sq_fail(e, SQ_ENOMEM, "forward scratch: out of memory for %d rounded rows", max_tokens);
    }
    if (!rc) rc = sq_matmul_ctx_new(&f->mm, e);
    if (!rc && f->phased) rc = sq_matmul_ctx_reserve(f->mm, f->n_threads, (int)wide, e);
    if (rc) {
        sq_fwd_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

static inline size_t slot_of(const int32_t *blocks, int pos, int bs) {
    return (size_t)blocks[pos / bs] * bs + pos % bs;
}

/* K/V WRITE: the one place the forward stores keys and values into the pool: n floats of k
 * and v at offset off (a kv head's start) of layer l's slot. Both paths below call it. */
static inline void kv_store(sq_kv_pool *kv, int l, size_t slot, int off, const float *k, const float *v, int n) {
    sq_kv_pool_store(kv, l, slot, off, k, v, n); /* rounds to the pool's F32/F16/BF16 */
}

static int phases_ok(const sq_model *m) {
    if (m->cfg.n_kv_heads <= 0 || m->cfg.n_heads % m->cfg.n_kv_heads) return 0;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const sq_layer *L = &m->layers[l];
        const sq_view *w[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < SQ_ARRAY_LEN(w); i++)
            if (!sq_matmul_part_ok(w[i])) return 0;
    }
    return sq_matmul_part_ok(sq_model_head_weight(m));
}

/* The units of a list of matmuls of one x: each matrix's outputs in groups of its grain. */
static int list_units(const sq_view *const w[], int n, int rows) {
    int u = 0;
    for (int k = 0; k < n; k++) u += (int)((w[k]->shape[0] + sq_matmul_grain(w[k], rows) - 1) / sq_matmul_grain(w[k], rows));
    return u;
}

/* One matmul's outputs [o0, o1): on the rows rounded once for the step where xq is set
 * (quantized weights on 8-bit activations), else on x. */
static void range_run(sq_matmul_ctx *mm, int t, float *y, const float *x, const sq_quant_xrows *xq, int rows,
                      const sq_view *w, const float *bias, int o0, int o1) {
    if (xq && sq_dtype_is_quant(w->dtype))
        sq_matmul_range_q8(mm, t, y, xq, rows, w, bias, o0, o1);
    else
        sq_matmul_range(mm, t, y, x, rows, w, bias, o0, o1);
}

/* Units [u0, u1) of such a list, on the calling thread (OpenMP thread t, for its scratch). */
static void list_run(sq_matmul_ctx *mm, int t, int n, float *const y[], const float *x, const sq_quant_xrows *xq,
                     int rows, const sq_view *const w[], const float *const bias[], int u0, int u1) {
    int base = 0;
    for (int k = 0; k < n; k++) {
        int out = (int)w[k]->shape[0], g = sq_matmul_grain(w[k], rows), nk = (out + g - 1) / g;
        int a = SQ_MAX(u0, base), z = SQ_MIN(u1, base + nk);
        if (a < z) range_run(mm, t, y[k], x, xq, rows, w[k], bias[k], (a - base) * g, SQ_MIN((z - base) * g, out));
        base += nk;
    }
}

static mm_split mm_split_of(const sq_view *const w[], int n, int rows, int nt) {
    mm_split s = {rows > 0 ? list_units(w, n, rows) : 0, 0, nt, rows};
    int quant = 0;
    for (int k = 0; k < n; k++) quant |= sq_dtype_is_quant(w[k]->dtype);
    s.whole = s.slices - (nt > 1 && !quant && rows >= 8 * nt ? s.slices % nt : 0);
    return s;
}

static int mm_split_units(const mm_split *s) { return s->whole + (s->slices - s->whole) * s->nt; }

/* Sets up phase k of f->ph as a matmul phase over w (n matrices of one x): its split, kept
 * beside it for the threads that run it, and its unit count from that split. */
static void mm_phase_init(sq_fwd *f, int k, const sq_view *const w[], int n, int rows) {
    f->split[k] = mm_split_of(w, n, rows, f->n_threads);
    sq_phase_init(&f->ph[k], mm_split_units(&f->split[k]));
}

/* Units [u0, u1) of such a phase (n <= 3 matrices of one x), on the calling thread. */
static void split_run(const mm_split *s, sq_matmul_ctx *mm, int t, int n, float *const y[], const float *x,
                      const sq_quant_xrows *xq, const sq_view *const w[], const float *const bias[], int u0, int u1) {
    if (u0 < s->whole) list_run(mm, t, n, y, x, xq, s->rows, w, bias, u0, SQ_MIN(u1, s->whole));
    for (int u = SQ_MAX(u0, s->whole); u < u1; u++) {
        int j = u - s->whole, sl = s->whole + j / s->nt, part = j % s->nt;
        int r0 = s->rows * part / s->nt / 4 * 4, r1 = part + 1 == s->nt ? s->rows : s->rows * (part + 1) / s->nt / 4 * 4;
        float *yr[3];
        for (int k = 0; k < n && k < 3; k++) yr[k] = y[k] + (size_t)r0 * w[k]->shape[0];
        list_run(mm, t, n, yr, x + (size_t)r0 * w[0]->shape[1], NULL, r1 - r0, w, bias, sl, sl + 1);
    }
}

/* Units handed out per claim: about 16 claims per thread and phase, so that a thread that
 * loses its core leaves little unfinished, and claims stay rare next to the work. */
static int chunk_of(int total, int nt) { return SQ_MAX(1, total / (16 * nt)); }

/* The rounded rows of a matmul input x (in values a row) for the weights w, laid over the
 * step's buffer; NULL when no weight needs them (fp32 activations, unquantized weights).
 * Every thread computes the same layout, so none has to publish it. */
static const sq_quant_xrows *xrows_for(sq_quant_xrows *q, const sq_fwd *f, const sq_view *const w[], int n, int in,
                                       int rows) {
    if (!f->xq_mem || sq_quant_act_get() != SQ_ACT_Q8) return NULL;
    int kinds = 0;
    for (int k = 0; k < n; k++) kinds |= sq_quant_act_kind(w[k]->dtype);
    if (!kinds) return NULL;
    sq_quant_xrows_init(q, f->xq_mem, kinds, in, rows);
    return q;
}

/* A rounding phase's size: its rows, or 0 (nothing to wait for) where w takes no rounding. */
static int round_units(const sq_fwd *f, const sq_view *w, int rows) {
    return f->xq_mem && sq_quant_act_get() == SQ_ACT_Q8 && sq_quant_act_kind(w->dtype) ? rows : 0;
}

/* One phase that rounds rows of x for the next matmul phase (of round_units's size). */
static void phase_round(sq_phase *p, int nt, const sq_quant_xrows *xq, const float *x, int rows) {
    int u0, u1;
    while (xq && (u0 = sq_phase_claim(p, chunk_of(rows, nt), &u1)) >= 0) {
        sq_quant_xrows_round(xq, x, u0, u1);
        sq_phase_done(p, u1 - u0);
    }
}

/* One phase that is a single matrix product y = x W^T, split by column units (sp, the split
 * mm_phase_init counted), claimed guided: the threads end a phase together. */
static void phase_matmul(sq_phase *p, const mm_split *sp, sq_matmul_ctx *mm, int t, int nt, float *y, const float *x,
                         const sq_quant_xrows *xq, const sq_view *w) {
    const sq_view *const ws[] = {w};
    int u0, u1;
    while ((u0 = sq_phase_claim_guided(p, nt, &u1)) >= 0) {
        split_run(sp, mm, t, 1, (float *const[]){y}, x, xq, ws, (const float *const[]){NULL}, u0, u1);
        sq_phase_done(p, u1 - u0);
    }
}

/* One phase that adds the block's output to the residual rows and normalises them for the
 * next block (norm NULL after the last layer), split by rows. */
static void phase_add_norm(sq_phase *p, sq_fwd *f, int nt, int rows, int dim, const float *norm, float eps,
                           const sq_quant_xrows *xq) {
    int u0, u1;
    while ((u0 = sq_phase_claim(p, chunk_of(rows, nt), &u1)) >= 0) {
        if (norm) /* one pass: the rows are added and normalised while in cache */
            sq_add_rmsnorm(f->xb + (size_t)u0 * dim, f->x + (size_t)u0 * dim, f->tmp + (size_t)u0 * dim, norm, u1 - u0,
                           dim, eps);
        else
            sq_add(f->x + (size_t)u0 * dim, f->tmp + (size_t)u0 * dim, (size_t)(u1 - u0) * dim);
        if (norm && xq) sq_quant_xrows_round(xq, f->xb, u0, u1); /* the next matmul's rows, rounded once */
        sq_phase_done(p, u1 - u0);
    }
}

/* A step (one decode token, a batch of them, a prefill chunk) as one parallel region instead
 * of a fork/join per matmul. Under load a fork/join, like a barrier, waits for every thread
 * of the team to be scheduled: the batched step had ~7 fork/joins per layer, the batch-1 step
 * four barriers (where a thread spun ~20% of its time on a loaded machine). Here the step is
 * a chain of phases (sq_phase): each phase's work is cut into units that whichever thread
 * comes claims a few at a time, and the next phase starts once all are done, so a thread
 * that loses its core delays the step by at most the units it holds. Matmuls are cut by
 * output columns (sq_matmul_range: the same dot products, in the same order, as sq_matmul,
 * so the bits do not depend on who computes what), norms, residual adds, RoPE and K/V
 * stores by rows (tokens), attention by sq_attention_run's units (a chunk of tokens x a
 * kv head; the plan is made once per step in forward_step). */
static void forward_phases(const sq_model *m, sq_fwd *f, sq_kv_pool *kv, const sq_batch *b, float *logits) {
    const sq_model_config *c = &m->cfg;
    int T = b->n_tokens, dim = c->dim, hd = c->head_dim, half = hd / 2, bs = kv->block_size, ffn = c->ffn_dim;
    int qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
    float eps = c->norm_eps;
    const sq_view *head = sq_model_head_weight(m);
    sq_attn_args aa = {.block_size = bs, .kv_stride = kvd, .n_heads = c->n_heads, .n_kv_heads = c->n_kv_heads,
                       .head_dim = hd, .kv_type = kv->type};
    sq_attn_batch ab0 = {.a = aa, .plan = &f->att_plan};
    int n_attn = sq_attention_work_count(&ab0);
    /* Every phase's size, before the region. */
    sq_phase *ph = f->ph;
    int np = 0;
    sq_phase_init(&ph[np++], T);
    for (int l = 0; l < c->n_layers; l++) {
        const sq_layer *L = &m->layers[l];
        const sq_view *const qkv_w[] = {&L->wq, &L->wk, &L->wv};
        mm_phase_init(f, np++, qkv_w, 3, T);
        sq_phase_init(&ph[np++], T);                /* RoPE, K/V stores */
        sq_phase_init(&ph[np++], n_attn);           /* attention */
        sq_phase_init(&ph[np++], round_units(f, &L->wo, T)); /* wo's rows rounded (8-bit activations) */
        mm_phase_init(f, np++, (const sq_view *const[]){&L->wo}, 1, T);
        sq_phase_init(&ph[np++], T);                /* residual add, ffn norm */
        sq_phase_init(&ph[np++], list_units((const sq_view *const[]){&L->w_gate}, 1, T)); /* gate, up, SwiGLU */
        sq_phase_init(&ph[np++], round_units(f, &L->w_down, T)); /* w_down's rows rounded */
        mm_phase_init(f, np++, (const sq_view *const[]){&L->w_down}, 1, T);
        sq_phase_init(&ph[np++], T);                /* residual add, next layer's norm */
    }
    sq_phase_init(&ph[np++], b->n_out);
    mm_phase_init(f, np++, &head, 1, b->n_out);
#pragma omp parallel num_threads(f->n_threads)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads(), k = 0, u0, u1;
        float *scores = f->scores + (size_t)t * f->att_floats;
        /* Quantized weights on 8-bit activations: each matmul input's rows are rounded once,
         * in the phase that makes them (the norms) or in a phase of their own (attention's
         * output, SwiGLU's), into the one step buffer: the matmul that read the previous
         * rounding has finished by then. The matmul phases then only take dots. */
        sq_quant_xrows xq_qkv, xq_next, xq_o, xq_gu, xq_d, xq_head;
        const sq_quant_xrows *xq = NULL;
        {
            const sq_layer *L0 = &m->layers[0];
            xq = xrows_for(&xq_qkv, f, (const sq_view *const[]){&L0->wq, &L0->wk, &L0->wv}, 3, dim, T);
        }
        sq_phase *p = &ph[k++];
        while ((u0 = sq_phase_claim(p, chunk_of(T, nt), &u1)) >= 0) {
            sq_rmsnorm(f->xb + (size_t)u0 * dim, f->x + (size_t)u0 * dim, m->layers[0].attn_norm.data, u1 - u0, dim, eps);
            if (xq) sq_quant_xrows_round(xq, f->xb, u0, u1);
            sq_phase_done(p, u1 - u0);
        }
        for (int l = 0; l < c->n_layers; l++) {
            const sq_layer *L = &m->layers[l];
            float *const qkv_y[] = {f->q, f->k, f->v};
            const sq_view *const qkv_w[] = {&L->wq, &L->wk, &L->wv};
            const float *const qkv_b[] = {L->bq.data, L->bk.data, L->bv.data};
            const sq_quant_xrows *xqkv = xrows_for(&xq_qkv, f, qkv_w, 3, dim, T);
            const sq_quant_xrows *xo = xrows_for(&xq_o, f, (const sq_view *const[]){&L->wo}, 1, qd, T);
            const sq_quant_xrows *xgu = xrows_for(&xq_gu, f, (const sq_view *const[]){&L->w_gate, &L->w_up}, 2, dim, T);
            const sq_quant_xrows *xd = xrows_for(&xq_d, f, (const sq_view *const[]){&L->w_down}, 1, ffn, T);
            const sq_quant_xrows *xnext = NULL;
            if (l + 1 < c->n_layers) {
                const sq_layer *N = &m->layers[l + 1];
                xnext = xrows_for(&xq_next, f, (const sq_view *const[]){&N->wq, &N->wk, &N->wv}, 3, dim, T);
            }
            sq_phase_wait(p);
            p = &ph[k++];
            while ((u0 = sq_phase_claim_guided(p, nt, &u1)) >= 0) {
                split_run(&f->split[p - ph], f->mm, t, 3, qkv_y, f->xb, xqkv, qkv_w, qkv_b, u0, u1);
                sq_phase_done(p, u1 - u0);
            }
            sq_phase_wait(p);
            p = &ph[k++];
            while ((u0 = sq_phase_claim(p, chunk_of(T, nt), &u1)) >= 0) {
                for (int tt = u0; tt < u1; tt++) {
                    const float *cs = f->cosv + (size_t)tt * half, *sn = f->sinv + (size_t)tt * half;
                    sq_rope_apply(&m->rope, f->q + (size_t)tt * qd, c->n_heads, cs, sn);
                    sq_rope_apply(&m->rope, f->k + (size_t)tt * kvd, c->n_kv_heads, cs, sn);
                    kv_store(kv, l, slot_of(b->blocks[tt], b->pos[tt], bs), 0, f->k + (size_t)tt * kvd,
                             f->v + (size_t)tt * kvd, kvd);
                }
                sq_phase_done(p, u1 - u0);
            }
            sq_phase_wait(p); /* every token's K/V row is in the cache */
            p = &ph[k++];
            sq_attn_batch ab = {.a = aa, .plan = &f->att_plan, .q = f->q, .out = f->att, .pos = b->pos,
                                .blocks = b->blocks, .sliding_window = c->sliding_window, .max_ctx = f->max_ctx};
            ab.a.k_base = kv->k[l];
            ab.a.v_base = kv->v[l];
            while ((u0 = sq_phase_claim(p, 1, &u1)) >= 0) { /* a unit is a chunk of tokens x a kv head */
                sq_attention_run(&ab, u0, u1, scores);
                sq_phase_done(p, u1 - u0);
            }
            sq_phase_wait(p);
            p = &ph[k++];
            phase_round(p, nt, xo, f->att, T);
            sq_phase_wait(p);
            p = &ph[k++];
            phase_matmul(p, &f->split[p - ph], f->mm, t, nt, f->tmp, f->att, xo, &L->wo);
            sq_phase_wait(p);
            p = &ph[k++];
            phase_add_norm(p, f, nt, T, dim, L->ffn_norm.data, eps, xgu);
            sq_phase_wait(p);
            p = &ph[k++];
            int g = sq_matmul_grain(&L->w_gate, T);
            while ((u0 = sq_phase_claim_guided(p, nt, &u1)) >= 0) {
                /* gate and up over the same columns, so SwiGLU runs on them at once */
                int o0 = u0 * g, o1 = SQ_MIN(u1 * g, ffn);
                range_run(f->mm, t, f->hb, f->xb, xgu, T, &L->w_gate, NULL, o0, o1);
                range_run(f->mm, t, f->hb2, f->xb, xgu, T, &L->w_up, NULL, o0, o1);
                for (int tt = 0; tt < T; tt++)
                    sq_swiglu(f->hb + (size_t)tt * ffn + o0, f->hb2 + (size_t)tt * ffn + o0, (size_t)(o1 - o0));
                sq_phase_done(p, u1 - u0);
            }
            sq_phase_wait(p);
            p = &ph[k++];
            phase_round(p, nt, xd, f->hb, T);
            sq_phase_wait(p);
            p = &ph[k++];
            phase_matmul(p, &f->split[p - ph], f->mm, t, nt, f->tmp, f->hb, xd, &L->w_down);
            sq_phase_wait(p);
            p = &ph[k++];
            /* the next layer's first norm, on the rows just added */
            phase_add_norm(p, f, nt, T, dim, l + 1 < c->n_layers ? m->layers[l + 1].attn_norm.data : NULL, eps, xnext);
        }
        const sq_quant_xrows *xh = xrows_for(&xq_head, f, &head, 1, dim, b->n_out);
        sq_phase_wait(p);
        p = &ph[k++];
        while ((u0 = sq_phase_claim(p, 1, &u1)) >= 0) {
            sq_rmsnorm(f->xo + (size_t)u0 * dim, f->x + (size_t)b->out_rows[u0] * dim, m->out_norm.data, 1, dim, eps);
            if (xh) sq_quant_xrows_round(xh, f->xo, u0, u1);
            sq_phase_done(p, 1);
        }
        sq_phase_wait(p);
        p = &ph[k++];
        phase_matmul(p, &f->split[p - ph], f->mm, t, nt, logits, f->xo, xh, head);
    }
}

/* ---- the batch-1 step ------------------------------------------------------------------- */

/* The small serial work between two matmul phases of the batch-1 step (forward_one). */
enum { TAIL_ROPE, TAIL_ROUND_ATT, TAIL_FFN_NORM, TAIL_ROUND_HB, TAIL_NEXT };

/* One token's serial work after a phase of layer l, as forward_phases does it at T = 1 (the
 * same calls on the same rows, so the same bits). */
static void one_tail(const sq_model *m, sq_fwd *f, sq_kv_pool *kv, const sq_batch *b, int l, int kind) {
    const sq_model_config *c = &m->cfg;
    const sq_layer *L = &m->layers[l];
    int dim = c->dim, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    sq_quant_xrows xq;
    const sq_quant_xrows *r;
    switch (kind) {
    case TAIL_ROPE: /* every K/V row of the step is in the cache before attention starts */
        sq_rope_apply(&m->rope, f->q, c->n_heads, f->cosv, f->sinv);
        sq_rope_apply(&m->rope, f->k, c->n_kv_heads, f->cosv, f->sinv);
        kv_store(kv, l, slot_of(b->blocks[0], b->pos[0], kv->block_size), 0, f->k, f->v, kvd);
        break;
    case TAIL_ROUND_ATT:
        if ((r = xrows_for(&xq, f, (const sq_view *const[]){&L->wo}, 1, qd, 1))) sq_quant_xrows_round(r, f->att, 0, 1);
        break;
    case TAIL_FFN_NORM:
        sq_add_rmsnorm(f->xb, f->x, f->tmp, L->ffn_norm.data, 1, dim, c->norm_eps);
        if ((r = xrows_for(&xq, f, (const sq_view *const[]){&L->w_gate, &L->w_up}, 2, dim, 1)))
            sq_quant_xrows_round(r, f->xb, 0, 1);
        break;
    case TAIL_ROUND_HB:
        if ((r = xrows_for(&xq, f, (const sq_view *const[]){&L->w_down}, 1, c->ffn_dim, 1)))
            sq_quant_xrows_round(r, f->hb, 0, 1);
        break;
    default: /* TAIL_NEXT: the residual add, then the next layer's norm or the output norm */
        if (l + 1 < c->n_layers) {
            const sq_layer *N = &m->layers[l + 1];
            sq_add_rmsnorm(f->xb, f->x, f->tmp, N->attn_norm.data, 1, dim, c->norm_eps);
            if ((r = xrows_for(&xq, f, (const sq_view *const[]){&N->wq, &N->wk, &N->wv}, 3, dim, 1)))
                sq_quant_xrows_round(r, f->xb, 0, 1);
        } else {
            sq_add(f->x, f->tmp, (size_t)dim);
        }
        if (l + 1 == c->n_layers && b->n_out) {
            const sq_view *head = sq_model_head_weight(m);
            sq_rmsnorm(f->xo, f->x + (size_t)b->out_rows[0] * dim, m->out_norm.data, 1, dim, c->norm_eps);
            if ((r = xrows_for(&xq, f, &head, 1, dim, 1))) sq_quant_xrows_round(r, f->xo, 0, 1);
        }
        break;
    }
}

/* n units of batch-1 phase p are done; the thread whose units complete the phase runs its
 * tail (none when tail < 0) and reports it done in p[1], which is what every thread waits for. */
static void one_units_done(const sq_model *m, sq_fwd *f, sq_kv_pool *kv, const sq_batch *b, sq_phase *p, int n, int l,
                           int tail) {
    if (sq_phase_done(p, n) && tail >= 0) {
        one_tail(m, f, kv, b, l, tail);
        sq_phase_done(p + 1, 1);
    }
}

/* The matmuls of one batch-1 phase p (n matrices of one input x, units as list_units), then
 * its tail (one_units_done), and the wait for it. */
static void one_phase(const sq_model *m, sq_fwd *f, sq_kv_pool *kv, const sq_batch *b, sq_phase *p, int t, int nt,
                      int n, float *const y[], const float *x, const sq_quant_xrows *xq, const sq_view *const w[],
                      const float *const bias[], int l, int tail) {
    int u0, u1;
    while ((u0 = sq_phase_claim_guided(p, nt, &u1)) >= 0) {
        list_run(f->mm, t, n, y, x, xq, 1, w, bias, u0, u1);
        one_units_done(m, f, kv, b, p, u1 - u0, l, tail);
    }
    sq_phase_wait(tail >= 0 ? p + 1 : p);
}

/* A step of one token (batch-1 decode), where a phase's work is a few microseconds and the
 * hand-offs between the threads are what a step loses: forward_phases's ten phases per layer
 * become five, one per matmul (q/k/v, attention, o, gate/up with SwiGLU, down). The small
 * serial work between two of them (RoPE and the K/V store; rounding attention's or SwiGLU's
 * output to 8 bits; the residual add with the next norm and its rounding) is no phase of its
 * own that one thread claims while the other waits for it after waiting for the matmul: the
 * thread that finishes the matmul's last unit runs it at once (its output rows are partly in
 * that thread's cache), and the other waits once. Matmul claims are guided (a share of what is
 * left): about a dozen per phase instead of ~32. The first norm runs before the region. Each
 * output is the same call on the same values as in forward_phases at T = 1, so the bits do
 * not change (test_model's steps of 1 against steps of 5, at 1-3 threads). */
static void forward_one(const sq_model *m, sq_fwd *f, sq_kv_pool *kv, const sq_batch *b, float *logits) {
    const sq_model_config *c = &m->cfg;
    int dim = c->dim, qd = c->n_heads * c->head_dim, ffn = c->ffn_dim;
    const sq_view *head = sq_model_head_weight(m);
    sq_attn_args aa = {.block_size = kv->block_size, .kv_stride = c->n_kv_heads * c->head_dim,
                       .n_heads = c->n_heads, .n_kv_heads = c->n_kv_heads, .head_dim = c->head_dim,
                       .kv_type = kv->type};
    sq_attn_batch ab0 = {.a = aa, .plan = &f->att_plan};
    int n_attn = sq_attention_work_count(&ab0);
    sq_phase *ph = f->ph; /* per layer: five phases, each followed by its tail's */
    int np = 0;
    for (int l = 0; l < c->n_layers; l++) {
        const sq_layer *L = &m->layers[l];
        const sq_view *const qkv_w[] = {&L->wq, &L->wk, &L->wv};
        int units[5] = {list_units(qkv_w, 3, 1), n_attn, list_units((const sq_view *const[]){&L->wo}, 1, 1),
                        list_units((const sq_view *const[]){&L->w_gate}, 1, 1),
                        list_units((const sq_view *const[]){&L->w_down}, 1, 1)};
        for (int i = 0; i < 5; i++) {
            sq_phase_init(&ph[np++], units[i]);
            sq_phase_init(&ph[np++], 1);
        }
    }
    sq_phase *hp = &ph[np++];
    sq_phase_init(hp, b->n_out ? list_units(&head, 1, 1) : 0);
    {
        sq_quant_xrows xq;
        const sq_layer *L0 = &m->layers[0];
        const sq_quant_xrows *r = xrows_for(&xq, f, (const sq_view *const[]){&L0->wq, &L0->wk, &L0->wv}, 3, dim, 1);
        sq_rmsnorm(f->xb, f->x, L0->attn_norm.data, 1, dim, c->norm_eps);
        if (r) sq_quant_xrows_round(r, f->xb, 0, 1);
    }
#pragma omp parallel num_threads(f->n_threads)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads(), u0, u1;
        float *scores = f->scores + (size_t)t * f->att_floats;
        sq_quant_xrows xq_qkv, xq_o, xq_gu, xq_d, xq_head;
        sq_phase *p = ph;
        for (int l = 0; l < c->n_layers; l++, p += 10) {
            const sq_layer *L = &m->layers[l];
            const sq_view *const qkv_w[] = {&L->wq, &L->wk, &L->wv};
            const sq_view *const gu_w[] = {&L->w_gate, &L->w_up};
            one_phase(m, f, kv, b, p, t, nt, 3, (float *const[]){f->q, f->k, f->v}, f->xb,
                      xrows_for(&xq_qkv, f, qkv_w, 3, dim, 1), qkv_w,
                      (const float *const[]){L->bq.data, L->bk.data, L->bv.data}, l, TAIL_ROPE);
            sq_attn_batch ab = {.a = aa, .plan = &f->att_plan, .q = f->q, .out = f->att, .pos = b->pos,
                                .blocks = b->blocks, .sliding_window = c->sliding_window, .max_ctx = f->max_ctx};
            ab.a.k_base = kv->k[l];
            ab.a.v_base = kv->v[l];
            while ((u0 = sq_phase_claim(p + 2, 1, &u1)) >= 0) { /* a unit is a kv head */
                sq_attention_run(&ab, u0, u1, scores);
                one_units_done(m, f, kv, b, p + 2, u1 - u0, l, TAIL_ROUND_ATT);
            }
            sq_phase_wait(p + 3);
            one_phase(m, f, kv, b, p + 4, t, nt, 1, (float *const[]){f->tmp}, f->att,
                      xrows_for(&xq_o, f, (const sq_view *const[]){&L->wo}, 1, qd, 1),
                      (const sq_view *const[]){&L->wo}, (const float *const[]){NULL}, l, TAIL_FFN_NORM);
            /* gate and up over the same columns, so SwiGLU runs on them at once */
            const sq_quant_xrows *xgu = xrows_for(&xq_gu, f, gu_w, 2, dim, 1);
            int g = sq_matmul_grain(&L->w_gate, 1);
            while ((u0 = sq_phase_claim_guided(p + 6, nt, &u1)) >= 0) {
                int o0 = u0 * g, o1 = SQ_MIN(u1 * g, ffn);
                range_run(f->mm, t, f->hb, f->xb, xgu, 1, &L->w_gate, NULL, o0, o1);
                range_run(f->mm, t, f->hb2, f->xb, xgu, 1, &L->w_up, NULL, o0, o1);
                sq_swiglu(f->hb + o0, f->hb2 + o0, (size_t)(o1 - o0));
                one_units_done(m, f, kv, b, p + 6, u1 - u0, l, TAIL_ROUND_HB);
            }
            sq_phase_wait(p + 7);
            one_phase(m, f, kv, b, p + 8, t, nt, 1, (float *const[]){f->tmp}, f->hb,
                      xrows_for(&xq_d, f, (const sq_view *const[]){&L->w_down}, 1, ffn, 1),
                      (const sq_view *const[]){&L->w_down}, (const float *const[]){NULL}, l, TAIL_NEXT);
        }
        if (b->n_out)
            one_phase(m, f, kv, b, hp, t, nt, 1, (float *const[]){logits}, f->xo, xrows_for(&xq_head, f, &head, 1, dim, 1),
                      &head, (const float *const[]){NULL}, c->n_layers - 1, -1);
    }
}

static int forward_step(const sq_model *m, sq_fwd *f, sq_kv_pool *kv, const sq_batch *b, float *logits, sq_err *e) {
    const sq_model_config *c = &m->cfg;
    int T = b->n_tokens, dim = c->dim, hd = c->head_dim, half = hd / 2, rc;
    int qd = c->n_heads * hd, kvd = c->n_kv_heads * hd, bs = kv->block_size;
    if (T <= 0 || T > f->max_tokens || b->n_out < 0 || b->n_out > f->max_out)
        return sq_fail(e, SQ_EINVAL, "forward: %d tokens / %d outputs exceed the scratch (%d / %d)", T, b->n_out,
                       f->max_tokens, f->max_out);
    for (int t = 0; t < T; t++) {
        if (b->tokens[t] < 0 || b->tokens[t] >= c->vocab_size)
            return sq_fail(e, SQ_ERANGE, "forward: token id %d outside the vocabulary (%d)", b->tokens[t], c->vocab_size);
        if (b->pos[t] < 0 || b->pos[t] >= f->max_ctx)
            return sq_fail(e, SQ_ERANGE, "forward: position %d outside the context (%d)", b->pos[t], f->max_ctx);
        sq_embed_row(f->x + (size_t)t * dim, &m->tok_emb, b->tokens[t]);
        sq_rope_angles(&m->rope, b->pos[t], f->cosv + (size_t)t * half, f->sinv + (size_t)t * half);
    }
    for (int o = 0; o < b->n_out; o++)
        if (b->out_rows[o] < 0 || b->out_rows[o] >= T)
            return sq_fail(e, SQ_EINVAL, "forward: output row %d outside the step", b->out_rows[o]);
    sq_attention_plan(&f->att_plan, f->att_plan_mem, T, b->pos, b->blocks, bs, c->n_heads, c->n_kv_heads);
    if (f->phased && T == 1) {
        forward_one(m, f, kv, b, logits);
        return 0;
    }
    if (f->phased) {
        forward_phases(m, f, kv, b, logits);
        return 0;
    }
    /* Weights that cannot be split into column ranges: a fork/join per operation. */
    int64_t attn_flops = 0; /* small steps stay on one thread: a fork/join costs more */
    for (int t = 0; t < T; t++) attn_flops += (int64_t)(b->pos[t] + 1) * c->n_heads * hd * 4;
    sq_attn_args aa = {.block_size = bs, .kv_stride = kvd, .n_heads = c->n_heads, .n_kv_heads = c->n_kv_heads,
                       .head_dim = hd, .kv_type = kv->type};
    for (int l = 0; l < c->n_layers; l++) {
        const sq_layer *L = &m->layers[l];
        sq_rmsnorm(f->xb, f->x, L->attn_norm.data, T, dim, c->norm_eps);
        float *const qkv_y[] = {f->q, f->k, f->v};
        const sq_view *const qkv_w[] = {&L->wq, &L->wk, &L->wv};
        const float *const qkv_b[] = {L->bq.data, L->bk.data, L->bv.data};
        if ((rc = sq_matmul_n(f->mm, 3, qkv_y, f->xb, T, qkv_w, qkv_b, e))) return rc;
        for (int t = 0; t < T; t++) {
            const float *cs = f->cosv + (size_t)t * half, *sn = f->sinv + (size_t)t * half;
            sq_rope_apply(&m->rope, f->q + (size_t)t * qd, c->n_heads, cs, sn);
            sq_rope_apply(&m->rope, f->k + (size_t)t * kvd, c->n_kv_heads, cs, sn);
            size_t s = slot_of(b->blocks[t], b->pos[t], bs);
            kv_store(kv, l, s, 0, f->k + (size_t)t * kvd, f->v + (size_t)t * kvd, kvd);
        }
        sq_attn_batch ab = {.a = aa, .plan = &f->att_plan, .q = f->q, .out = f->att, .pos = b->pos,
                            .blocks = b->blocks, .sliding_window = c->sliding_window, .max_ctx = f->max_ctx};
        ab.a.k_base = kv->k[l];
        ab.a.v_base = kv->v[l];
        int work = sq_attention_work_count(&ab);
        /* The team is pinned to the count the scratch was sized for (one share per thread). */
#pragma omp parallel for schedule(dynamic, 1) num_threads(f->n_threads) if (attn_flops > 2000000)
        for (int w = 0; w < work; w++)
            sq_attention_run(&ab, w, w + 1, f->scores + (size_t)omp_get_thread_num() * f->att_floats);
        if ((rc = sq_gemm_weight(f->mm, f->tmp, f->att, T, &L->wo, NULL, e))) return rc;
        sq_add_rmsnorm(f->xb, f->x, f->tmp, L->ffn_norm.data, T, dim, c->norm_eps);
        float *const gu_y[] = {f->hb, f->hb2};
        const sq_view *const gu_w[] = {&L->w_gate, &L->w_up};
        const float *const gu_b[] = {NULL, NULL};
        if ((rc = sq_matmul_n(f->mm, 2, gu_y, f->xb, T, gu_w, gu_b, e))) return rc;
        sq_swiglu(f->hb, f->hb2, (size_t)T * c->ffn_dim);
        if ((rc = sq_gemm_weight(f->mm, f->tmp, f->hb, T, &L->w_down, NULL, e))) return rc;
        sq_add(f->x, f->tmp, (size_t)T * dim);
    }
    if (b->n_out == 0) return 0;
    for (int o = 0; o < b->n_out; o++)
        sq_rmsnorm(f->xo + (size_t)o * dim, f->x + (size_t)b->out_rows[o] * dim, m->out_norm.data, 1, dim, c->norm_eps);
    return sq_gemm_weight(f->mm, logits, f->xo, b->n_out, sq_model_head_weight(m), NULL, e);
}

/* The step runs on the thread count sq_fwd_new saw, whichever thread calls it: a server's
 * batcher thread starts with OpenMP's default count, not the one --threads set on the main
 * thread, and the per-thread scratch (scores, matmul panels) is sized by f->n_threads. The
 * caller's own count is restored afterwards. */
int sq_model_forward(const sq_model *m, sq_fwd *f, sq_kv_pool *kv, const sq_batch *b, float *logits, sq_err *e) {
    int caller = omp_get_max_threads();
    if (caller != f->n_threads) omp_set_num_threads(f->n_threads);
    int rc = forward_step(m, f, kv, b, logits, e);
    if (caller != f->n_threads) omp_set_num_threads(caller);
    return rc;
}
