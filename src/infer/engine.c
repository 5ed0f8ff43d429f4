/* The generation loop: admission, ragged steps (decode tokens + a prefill chunk), forking of
 * the n samples after a shared prefill, sampling, stop handling and completion callbacks. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/infer.h"

enum { SEQ_FREE = 0, SEQ_PREFILL, SEQ_FORK_WAIT, SEQ_DECODE, SEQ_DONE };

typedef struct seq {
    int state, req, sample;
    int32_t *blocks;
    int n_blocks; /* blocks held */
    int n_cached; /* positions in the KV cache */
    int prefill_done;
    int32_t next_tok;
    int max_new, reserved;
    sq_rng rng;
    int32_t *ids;
    float *lps;
    int n_out;
    int32_t *top_ids; /* n_out x n_top, when the request asks for top logprobs */
    float *top_lps;
    int n_top, top_cap;
    sq_buf text;
    const char *finish;
} seq;

typedef struct group {
    int *slots, n_samples, n_done, prompt_tokens;
} group;

struct sq_engine {
    const sq_model *m;
    sq_engine_opts o;
    sq_kv_pool kv;
    sq_kv_blocks blk;
    int reserved; /* blocks promised to admitted sequences */
    sq_fwd *fwd;
    seq *seqs;
    int max_blocks_per_seq, max_step;
    /* per step */
    int32_t *tokens, *pos, *out_rows, *job_seq, *job_row, *job_tok;
    float *job_lp;
    const int32_t **bt;
    float *logits;
    sq_sample_scratch *scratch;
    int n_scratch;
    sq_engine_stats stats;
};

void sq_engine_opts_default(sq_engine_opts *o) {
    memset(o, 0, sizeof *o);
    o->max_batch = 64;
    o->block_size = 16;
    o->prefill_chunk = 512;
    o->kv_mem_mb = 4096;
    o->kv_type = SQ_KV_AUTO; /* F16 for 16-bit and quantized models, F32 for F32 ones */
}

int sq_engine_ctx_len(const sq_engine *en) { return en->o.ctx_len; }

void sq_engine_get_stats(const sq_engine *en, sq_engine_stats *s) {
    *s = en->stats;
    s->kv_blocks_total = en->blk.n_blocks;
    s->kv_blocks_free = en->blk.n_free;
    s->kv_bytes_per_token = sq_kv_pool_bytes_per_token(&en->kv);
    s->kv_type = en->kv.type;
}

void sq_engine_free(sq_engine *en) {
    if (!en) return;
    if (en->seqs)
        for (int i = 0; i < en->o.max_batch; i++) {
            free(en->seqs[i].blocks);
            free(en->seqs[i].ids);
            free(en->seqs[i].lps);
            free(en->seqs[i].top_ids);
            free(en->seqs[i].top_lps);
            sq_buf_free(&en->seqs[i].text);
        }
    free(en->seqs);
    for (int i = 0; i < en->n_scratch; i++) sq_sample_scratch_free(&en->scratch[i]);
    free(en->scratch);
    free(en->tokens);
    free(en->pos);
    free(en->out_rows);
    free(en->job_seq);
    free(en->job_row);
    free(en->job_tok);
    free(en->job_lp);
    free(en->bt);
    free(en->logits);
    sq_fwd_free(en->fwd);
    sq_kv_blocks_free(&en->blk);
    sq_kv_pool_free(&en->kv);
    free(en);
}

int sq_engine_new(sq_engine **out, const sq_model *m, const sq_engine_opts *opts, sq_err *e) {
    *out = NULL;
    sq_engine *en = calloc(1, sizeof *en);
    if (!en) return sq_fail(e, SQ_ENOMEM, "engine: out of memory");
    en->m = m;
    if (opts)
        en->o = *opts;
    else
        sq_engine_opts_default(&en->o);
    sq_engine_opts *o = &en->o;
    if (o->max_batch <= 0) o->max_batch = 64;
    if (o->max_batch > 1024) o->max_batch = 1024; /* the step's fixed-size bookkeeping */
    if (o->block_size <= 0) o->block_size = 16;
    if (o->prefill_chunk <= 0) o->prefill_chunk = 512;
    if (o->kv_mem_mb <= 0) o->kv_mem_mb = 4096;
    if (o->ctx_len <= 0) o->ctx_len = SQ_MIN(m->cfg.max_seq_len > 0 ? m->cfg.max_seq_len : 4096, 4096);
    o->kv_type = sq_kv_type_resolve(o->kv_type, m); /* "auto" becomes what the model calls for */
    int bs = o->block_size, V = m->cfg.vocab_size;
    en->max_blocks_per_seq = (o->ctx_len + bs - 1) / bs + 1;
    if (o->kv_blocks <= 0) {
        size_t es = sq_kv_type_size(o->kv_type) ? sq_kv_type_size(o->kv_type) : 4;
        size_t per_block = (size_t)bs * m->cfg.n_kv_heads * m->cfg.head_dim * es * 2 * m->cfg.n_layers;
        size_t cap = ((size_t)o->kv_mem_mb << 20) / per_block;
        size_t want = (size_t)o->max_batch * en->max_blocks_per_seq;
        o->kv_blocks = (int)SQ_MAX(SQ_MIN(want, cap), (size_t)en->max_blocks_per_seq);
    }
    en->max_step = o->max_batch + o->prefill_chunk;
    int rc = sq_kv_pool_init_type(&en->kv, m, o->kv_blocks, bs, o->kv_type, e);
    if (!rc) rc = sq_kv_blocks_init(&en->blk, o->kv_blocks, e);
    if (!rc) rc = sq_fwd_new(&en->fwd, m, en->max_step, o->max_batch, o->ctx_len, e);
    if (rc) {
        sq_engine_free(en);
        return rc;
    }
    int S = en->max_step, B = o->max_batch;
    en->seqs = calloc((size_t)B, sizeof(seq));
    en->tokens = malloc(sizeof(int32_t) * S);
    en->pos = malloc(sizeof(int32_t) * S);
    en->bt = malloc(sizeof(int32_t *) * S);
    en->out_rows = malloc(sizeof(int32_t) * B);
    en->job_seq = malloc(sizeof(int32_t) * B);
    en->job_row = malloc(sizeof(int32_t) * B);
    en->job_tok = malloc(sizeof(int32_t) * B);
    en->job_lp = malloc(sizeof(float) * B);
    en->logits = sq_malloc_aligned(sizeof(float) * (size_t)B * V);
    en->n_scratch = omp_get_max_threads();
    en->scratch = calloc((size_t)en->n_scratch, sizeof(sq_sample_scratch));
    int ok = en->seqs && en->tokens && en->pos && en->bt && en->out_rows && en->job_seq && en->job_row &&
             en->job_tok && en->job_lp && en->logits && en->scratch;
    for (int i = 0; ok && i < B; i++) {
        seq *s = &en->seqs[i];
        s->blocks = malloc(sizeof(int32_t) * en->max_blocks_per_seq);
        s->ids = malloc(sizeof(int32_t) * o->ctx_len);
        s->lps = malloc(sizeof(float) * o->ctx_len);
        ok = s->blocks && s->ids && s->lps && sq_buf_reserve(&s->text, 256) == 0;
    }
    if (!ok) {
        sq_engine_free(en);
        return sq_fail(e, SQ_ENOMEM, "engine: out of memory for %d sequences", B);
    }
    for (int i = 0; i < en->n_scratch; i++)
        if ((rc = sq_sample_scratch_init(&en->scratch[i], V, e))) {
            sq_engine_free(en);
            return rc;
        }
    *out = en;
    return 0;
}

/* ---- one generate call -------------------------------------------------------------------- */

typedef struct run {
    sq_engine *en;
    const sq_infer_req *reqs;
    int n;
    const sq_detok *detok;
    sq_infer_cb cb;
    void *user;
    group *groups;
    int stopped;
} run;

/* Give back a sequence's KV blocks and reservation; its outputs stay until the group ends. */
static void release_seq(sq_engine *en, seq *s, int state) {
    for (int i = 0; i < s->n_blocks; i++) sq_kv_blocks_unref(&en->blk, s->blocks[i]);
    en->reserved -= s->reserved;
    s->n_blocks = 0;
    s->reserved = 0;
    s->state = state;
}

static int fail_request_as(run *r, int i, const char *why, int bad_request) {
    sq_infer_result res = {0, why, 0, NULL, r->reqs[i].n_prompt, bad_request};
    if (r->cb && r->cb(r->user, i, &res)) r->stopped = 1;
    return 0;
}

static int fail_request(run *r, int i, const char *why) { return fail_request_as(r, i, why, 0); }

static int cancelled(const sq_infer_req *q) { return q->params.cancel && atomic_load(q->params.cancel); }

/* Drop every running request whose caller has cancelled it: its sequences stop now and give
 * their KV blocks and slots to the next request. */
static void drop_cancelled(run *r) {
    sq_engine *en = r->en;
    for (int i = 0; i < r->n; i++) {
        group *g = &r->groups[i];
        if (!g->slots || !cancelled(&r->reqs[i])) continue;
        for (int k = 0; k < g->n_samples; k++) release_seq(en, &en->seqs[g->slots[k]], SEQ_FREE);
        free(g->slots);
        g->slots = NULL;
        en->stats.cancelled++;
        fail_request(r, i, "cancelled: the caller no longer wants the answer");
    }
}

static int finish_seq(run *r, seq *s, const char *why, sq_err *e) {
    sq_engine *en = r->en;
    s->finish = why;
    release_seq(en, s, SEQ_DONE); /* its blocks serve the next request at once */
    group *g = &r->groups[s->req];
    g->n_done++;
    if (g->n_done < g->n_samples) return 0;
    sq_infer_sample *smp = calloc((size_t)g->n_samples, sizeof *smp);
    if (!smp) return sq_fail(e, SQ_ENOMEM, "engine: out of memory");
    for (int k = 0; k < g->n_samples; k++) {
        seq *t = &en->seqs[g->slots[k]];
        smp[k] = (sq_infer_sample){t->ids,       t->lps,     t->n_out, r->detok ? t->text.data : NULL, t->text.len,
                                   t->finish,    t->top_ids, t->top_lps, t->n_top};
    }
    sq_infer_result res = {1, NULL, g->n_samples, smp, g->prompt_tokens, 0};
    if (r->cb && r->cb(r->user, s->req, &res)) r->stopped = 1;
    free(smp);
    for (int k = 0; k < g->n_samples; k++) en->seqs[g->slots[k]].state = SEQ_FREE;
    free(g->slots);
    g->slots = NULL;
    return 0;
}

static int is_stop_id(const run *r, const sq_gen_params *p, int32_t tok) {
    const sq_model_config *c = &r->en->m->cfg;
    if (tok == c->eos_id) return 1;
    for (int i = 0; i < c->n_eos && i < 8; i++)
        if (tok == c->eos_ids[i]) return 1;
    for (int i = 0; i < p->n_stop_ids; i++)
        if (tok == p->stop_ids[i]) return 1;
    return 0;
}

/* Record a sampled token; finish the sequence on a stop or at its length limit. */
static int accept_token(run *r, seq *s, int32_t tok, float lp, sq_err *e) {
    const sq_gen_params *p = &r->reqs[s->req].params;
    if (is_stop_id(r, p, tok)) return finish_seq(r, s, "stop", e);
    s->ids[s->n_out] = tok;
    s->lps[s->n_out] = lp;
    s->n_out++;
    if (r->detok) {
        size_t before = s->text.len;
        int rc = r->detok->piece(r->detok->ctx, tok, &s->text);
        if (rc) return sq_fail(e, rc, "engine: cannot detokenize id %d", tok);
        for (int i = 0; i < p->n_stop; i++) {
            size_t sl = strlen(p->stop[i]);
            if (!sl || s->text.len < sl) continue;
            size_t from = before >= sl - 1 ? before - (sl - 1) : 0;
            const char *hit = memmem(s->text.data + from, s->text.len - from, p->stop[i], sl);
            if (hit) {
                s->text.len = (size_t)(hit - s->text.data);
                s->text.data[s->text.len] = 0;
                return finish_seq(r, s, "stop", e);
            }
        }
    }
    if (s->n_out >= s->max_new) return finish_seq(r, s, "length", e);
    s->next_tok = tok;
    s->state = SEQ_DECODE;
    return 0;
}

/* Start request i if it fits now: 1 started (or failed as a result), 0 wait. */
static int admit(run *r, int i) {
    sq_engine *en = r->en;
    const sq_infer_req *q = &r->reqs[i];
    int n = q->params.n > 0 ? q->params.n : 1, bs = en->o.block_size;
    if (cancelled(q)) {
        en->stats.cancelled++;
        return fail_request(r, i, "cancelled: the caller no longer wants the answer"), 1;
    }
    if (q->n_prompt <= 0) return fail_request(r, i, "empty prompt"), 1;
    if (q->n_prompt >= en->o.ctx_len) {
        /* The caller's error, said with the numbers (as vLLM says it). */
        char why[200];
        snprintf(why, sizeof why,
                 "this model's maximum context length is %d tokens, but the prompt has %d tokens; "
                 "reduce the length of the prompt",
                 en->o.ctx_len, q->n_prompt);
        return fail_request_as(r, i, why, 1), 1;
    }
    if (n > en->o.max_batch) return fail_request(r, i, "n is larger than the engine's batch"), 1;
    for (int t = 0; t < q->n_prompt; t++)
        if (q->prompt[t] < 0 || q->prompt[t] >= en->m->cfg.vocab_size)
            return fail_request(r, i, "prompt token id outside the vocabulary"), 1;
    int max_tokens = q->params.max_tokens > 0 ? q->params.max_tokens : 0;
    int max_new = SQ_MIN(max_tokens, en->o.ctx_len - q->n_prompt);
    int per = (q->n_prompt + max_new + bs - 1) / bs + 1;
    if ((int64_t)per * n > en->blk.n_blocks)
        return fail_request_as(r, i, "prompt and max_tokens (times n) exceed the KV cache", 1), 1;
    if (en->reserved + per * n > en->blk.n_blocks) return 0;
    int free_slots = 0;
    for (int k = 0; k < en->o.max_batch; k++) free_slots += en->seqs[k].state == SEQ_FREE;
    if (free_slots < n) return 0;
    int K = q->params.logprobs ? SQ_MIN(SQ_MAX(q->params.top_logprobs, 0), SQ_MAX_TOP_LOGPROBS) : 0;
    K = SQ_MIN(K, en->m->cfg.vocab_size);
    if (K > 0) /* room for K alternatives per token in each slot this request will take */
        for (int k = 0, j = 0; j < n && k < en->o.max_batch; k++) {
            seq *s = &en->seqs[k];
            if (s->state != SEQ_FREE) continue;
            j++;
            if (s->top_cap >= max_new * K) continue;
            int32_t *ti = realloc(s->top_ids, sizeof(int32_t) * (size_t)SQ_MAX(max_new * K, 1));
            if (ti) s->top_ids = ti;
            float *tl = ti ? realloc(s->top_lps, sizeof(float) * (size_t)SQ_MAX(max_new * K, 1)) : NULL;
            if (tl) s->top_lps = tl;
            if (!ti || !tl) return fail_request(r, i, "out of memory for top logprobs"), 1;
            s->top_cap = max_new * K;
        }
    group *g = &r->groups[i];
    g->slots = malloc(sizeof(int) * (size_t)n);
    if (!g->slots) return fail_request(r, i, "out of memory"), 1;
    g->n_samples = n;
    g->n_done = 0;
    g->prompt_tokens = q->n_prompt;
    for (int k = 0, j = 0; j < n; k++) {
        seq *s = &en->seqs[k];
        if (s->state != SEQ_FREE) continue;
        g->slots[j] = k;
        s->state = j == 0 ? SEQ_PREFILL : SEQ_FORK_WAIT;
        s->req = i;
        s->sample = j;
        s->n_blocks = s->n_cached = s->prefill_done = s->n_out = 0;
        s->max_new = max_new;
        s->n_top = K;
        s->reserved = per;
        en->reserved += per;
        s->finish = NULL;
        sq_buf_reset(&s->text);
        sq_sample_rng(&s->rng, q->params.seed, j);
        j++;
    }
    return 1;
}

/* Make sure seq s holds the block for position p (reserved at admission, so never fails). */
static int ensure_block(sq_engine *en, seq *s, int p, sq_err *e) {
    int need = p / en->o.block_size + 1;
    while (s->n_blocks < need) {
        int32_t b = sq_kv_blocks_alloc(&en->blk);
        if (b < 0) return sq_fail(e, SQ_ESTATE, "engine: KV blocks exhausted despite reservation");
        s->blocks[s->n_blocks++] = b;
    }
    return 0;
}

/* After the shared prefill: give every other sample the prompt's blocks. */
static int fork_group(run *r, group *g, sq_err *e) {
    sq_engine *en = r->en;
    seq *parent = &en->seqs[g->slots[0]];
    int bs = en->o.block_size, full = parent->n_cached / bs, rem = parent->n_cached % bs;
    for (int k = 1; k < g->n_samples; k++) {
        seq *c = &en->seqs[g->slots[k]];
        for (int b = 0; b < full; b++) {
            c->blocks[b] = parent->blocks[b];
            sq_kv_blocks_ref(&en->blk, parent->blocks[b]);
        }
        c->n_blocks = full;
        if (rem) {
            int32_t nb = sq_kv_blocks_alloc(&en->blk);
            if (nb < 0) return sq_fail(e, SQ_ESTATE, "engine: KV blocks exhausted despite reservation");
            sq_kv_pool_copy_block(&en->kv, nb, parent->blocks[full], rem);
            c->blocks[c->n_blocks++] = nb;
        }
        c->n_cached = parent->n_cached;
        c->state = SEQ_DECODE;
    }
    return 0;
}

/* A row of logits held NaN or Inf: the weights (or the arithmetic) are broken, and every
 * token drawn from here on would be noise. Say which step, and which tensor if one is. */
static int nonfinite(run *r, int req, sq_err *e) {
    char where[256] = "";
    if (sq_model_find_nonfinite(r->en->m, where, sizeof where) == 1)
        return sq_fail(e, SQ_ERANGE,
                       "%s: the logits of step %lld (request %d) are not finite: tensor %s holds NaN or Inf",
                       r->en->m->path ? r->en->m->path : "model", (long long)r->en->stats.steps, req, where);
    return sq_fail(e, SQ_ERANGE,
                   "%s: the logits of step %lld (request %d) are not finite (NaN or Inf); no weight tensor holds "
                   "one, so the activations overflowed",
                   r->en->m->path ? r->en->m->path : "model", (long long)r->en->stats.steps, req);
}

/* The K most likely tokens of a row of logits, best first (lower id first on ties), with
 * their raw log-probabilities: what OpenAI's top_logprobs report. Only asked for with
 * logprobs, so a second pass over the row is fine. */
static void top_k(const float *l, int V, int K, int32_t *ids, float *lps) {
    int n = 0;
    float mx = l[0];
    for (int v = 0; v < V; v++) {
        mx = l[v] > mx ? l[v] : mx;
        if (n == K && !(l[v] > l[ids[n - 1]])) continue;
        int p = n < K ? n++ : K - 1;
        while (p > 0 && l[v] > l[ids[p - 1]]) {
            ids[p] = ids[p - 1];
            p--;
        }
        ids[p] = v;
    }
    double sum = 0;
    for (int v = 0; v < V; v++) sum += exp((double)l[v] - mx);
    double lse = mx + log(sum);
    for (int k = 0; k < n; k++) lps[k] = (float)(l[ids[k]] - lse);
}

static int step(run *r, sq_err *e) {
    sq_engine *en = r->en;
    int B = en->o.max_batch, T = 0, n_out = 0, n_jobs = 0, rc;
    int V = en->m->cfg.vocab_size;
    /* Decode tokens first, one per running sequence. */
    for (int k = 0; k < B; k++) {
        seq *s = &en->seqs[k];
        if (s->state != SEQ_DECODE) continue;
        if ((rc = ensure_block(en, s, s->n_cached, e))) return rc;
        en->tokens[T] = s->next_tok;
        en->pos[T] = s->n_cached;
        en->bt[T] = s->blocks;
        en->job_seq[n_jobs] = k;
        en->job_row[n_jobs++] = n_out;
        en->out_rows[n_out++] = T++;
    }
    /* Then prompt chunks, oldest request first, within the step's token budget. */
    int budget = en->o.prefill_chunk, n_dec = T;
    int order[1024], n_order = 0;
    for (int k = 0; k < B && n_order < 1024; k++)
        if (en->seqs[k].state == SEQ_PREFILL) order[n_order++] = k;
    for (int a = 1; a < n_order; a++) /* by request index: admission order */
        for (int b = a; b > 0 && en->seqs[order[b]].req < en->seqs[order[b - 1]].req; b--) {
            int t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    int prefill_rows[1024], n_prefill_rows = 0;
    for (int a = 0; a < n_order && budget > 0; a++) {
        seq *s = &en->seqs[order[a]];
        const sq_infer_req *q = &r->reqs[s->req];
        int take = SQ_MIN(budget, q->n_prompt - s->prefill_done);
        for (int t = 0; t < take; t++) {
            int p = s->prefill_done + t;
            if ((rc = ensure_block(en, s, p, e))) return rc;
            en->tokens[T] = q->prompt[p];
            en->pos[T] = p;
            en->bt[T++] = s->blocks;
        }
        budget -= take;
        s->prefill_done += take;
        if (s->prefill_done == q->n_prompt) {
            prefill_rows[n_prefill_rows++] = order[a];
            en->out_rows[n_out++] = T - 1;
        }
    }
    if (T == 0) return 0;
    double t0 = sq_now();
    sq_batch b = {T, en->tokens, en->pos, en->bt, n_out, en->out_rows};
    if ((rc = sq_model_forward(en->m, en->fwd, &en->kv, &b, en->logits, e))) return rc;
    double t1 = sq_now();
    en->stats.t_forward += t1 - t0;
    en->stats.steps++;
    en->stats.generated_tokens += n_dec;
    en->stats.prompt_tokens += T - n_dec;
    for (int j = 0; j < n_jobs; j++) en->seqs[en->job_seq[j]].n_cached++;
    /* Prefill done: the cache now holds the prompt; every sample draws from the last row. */
    for (int a = 0; a < n_prefill_rows; a++) {
        seq *s = &en->seqs[prefill_rows[a]];
        s->n_cached = s->prefill_done;
        group *g = &r->groups[s->req];
        if ((rc = fork_group(r, g, e))) return rc;
        for (int k = 0; k < g->n_samples; k++) {
            en->job_seq[n_jobs] = g->slots[k];
            en->job_row[n_jobs++] = n_dec + a;
        }
    }
    /* Sample in parallel (each sequence has its own RNG), then record in order. */
#pragma omp parallel for schedule(dynamic, 1) num_threads(en->n_scratch) if (n_jobs > 1 && (int64_t)n_jobs * V > (1 << 16))
    for (int j = 0; j < n_jobs; j++) {
        seq *s = &en->seqs[en->job_seq[j]];
        sq_sample_scratch *sc = &en->scratch[omp_get_thread_num()]; /* the team is pinned to n_scratch */
        en->job_tok[j] = sq_sample(en->logits + (size_t)en->job_row[j] * V, V, &r->reqs[s->req].params, &s->rng, sc,
                                   &en->job_lp[j]);
    }
    for (int j = 0; j < n_jobs; j++)
        if (en->job_tok[j] < 0) return nonfinite(r, en->seqs[en->job_seq[j]].req, e);
    double t2 = sq_now();
    en->stats.t_sample += t2 - t1;
    if (T == n_dec) {
        en->stats.decode_steps++;
        en->stats.decode_tokens += n_dec;
        en->stats.t_decode += t2 - t0;
    }
    for (int j = 0; j < n_jobs; j++) {
        seq *s = &en->seqs[en->job_seq[j]];
        if (s->max_new <= 0) {
            if ((rc = finish_seq(r, s, "length", e))) return rc;
            continue;
        }
        if (s->n_top > 0 && s->n_out < s->max_new)
            top_k(en->logits + (size_t)en->job_row[j] * V, V, s->n_top, s->top_ids + (size_t)s->n_out * s->n_top,
                  s->top_lps + (size_t)s->n_out * s->n_top);
        if ((rc = accept_token(r, s, en->job_tok[j], en->job_lp[j], e))) return rc;
    }
    return 0;
}

int sq_engine_generate(sq_engine *en, const sq_infer_req *reqs, int n, const sq_detok *detok, sq_infer_cb cb,
                       void *user, sq_err *e) {
    run r = {en, reqs, n, detok, cb, user, calloc((size_t)(n > 0 ? n : 1), sizeof(group)), 0};
    if (!r.groups) return sq_fail(e, SQ_ENOMEM, "engine: out of memory for %d requests", n);
    int next = 0, rc = 0;
    for (;;) {
        drop_cancelled(&r);
        while (next < n && !r.stopped && admit(&r, next)) next++;
        int active = 0;
        for (int k = 0; k < en->o.max_batch; k++)
            active += en->seqs[k].state != SEQ_FREE && en->seqs[k].state != SEQ_DONE;
        if (r.stopped || (!active && next >= n)) break;
        if (!active) { /* cannot happen: an empty engine admits any request that fits at all */
            rc = sq_fail(e, SQ_ESTATE, "engine: request %d cannot be scheduled", next);
            break;
        }
        if ((rc = step(&r, e))) break;
    }
    /* On error or stop: drop whatever is still running. */
    for (int k = 0; k < en->o.max_batch; k++)
        if (en->seqs[k].state != SEQ_FREE) release_seq(en, &en->seqs[k], SEQ_FREE);
    for (int i = 0; i < n; i++) free(r.groups[i].slots);
    free(r.groups);
    if (!rc && r.stopped) rc = sq_fail(e, SQ_EINTR, "generation stopped by the caller");
    return rc;
}
