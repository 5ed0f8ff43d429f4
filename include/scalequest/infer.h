/* infer — batched generation on an sq_model: sampling, a paged KV cache, continuous batching.
 *
 * sq_engine_generate takes many requests (token-id prompts with their sq_gen_params) and
 * decodes up to max_batch sequences together: every step is one sq_model_forward over the
 * decode tokens of all running sequences plus a chunk of prompt tokens of newly admitted
 * requests. A sequence that finishes frees its KV blocks and its slot at once, and the next
 * waiting request takes them (continuous batching). The n samples of one request are
 * prefilled once and then share the prompt's full blocks (the last, partial block is copied
 * per sample). Each sample draws from its own RNG seeded by (seed, sample index), so the
 * tokens do not depend on what else is in the batch. Requests are admitted only when their
 * prompt + max_tokens fit in the KV blocks not yet promised to others, so a running
 * sequence never waits for memory.
 *
 * Ownership: the engine borrows the model (which must outlive it) and owns its KV pool and
 * scratch, allocated once in sq_engine_new. Results handed to the callback live until the
 * callback returns.
 */
#ifndef SCALEQUEST_INFER_H
#define SCALEQUEST_INFER_H

#include <stdint.h>

#include "scalequest/backend.h"
#include "scalequest/base.h"
#include "scalequest/model.h"

/* ---- sampling --------------------------------------------------------------------------- */

/* Scratch for one sampler call over a vocabulary of V (16 bytes per token and a 64 KiB
 * histogram). */
typedef struct sq_sample_scratch {
    float *p;
    void *cand;
    double *hist;
    int cap;
} sq_sample_scratch;

int sq_sample_scratch_init(sq_sample_scratch *s, int vocab, sq_err *e);
void sq_sample_scratch_free(sq_sample_scratch *s);
/* Choose a token from one row of logits. temperature <= 0: argmax (lowest id on ties, the
 * RNG untouched). Otherwise logits / temperature, then top-k, top-p (smallest set of the most
 * likely tokens whose mass reaches top_p) and min-p (tokens at least min_p times as likely as
 * the best); one uniform draw from the RNG picks within what is left. *logprob receives the
 * chosen token's log-probability under the model's raw distribution (log-softmax of the
 * logits, before temperature and filters) — what DPO needs. Returns -1 (nothing drawn)
 * when the row holds NaN or Inf. */
int32_t sq_sample(const float *logits, int vocab, const sq_gen_params *p, sq_rng *rng, sq_sample_scratch *s,
                  float *logprob);
/* The RNG of sample `index` of a request with this seed. */
void sq_sample_rng(sq_rng *r, uint64_t seed, int index);

/* ---- KV block allocator ----------------------------------------------------------------- */

/* Reference-counted block ids over an sq_kv_pool: a block shared by several sequences (a
 * common prompt) is returned to the free list when its last holder lets go. */
typedef struct sq_kv_blocks {
    int n_blocks, n_free;
    int32_t *refs, *free_list;
} sq_kv_blocks;

int sq_kv_blocks_init(sq_kv_blocks *b, int n_blocks, sq_err *e);
void sq_kv_blocks_free(sq_kv_blocks *b);
int32_t sq_kv_blocks_alloc(sq_kv_blocks *b); /* -1 when none is free */
void sq_kv_blocks_ref(sq_kv_blocks *b, int32_t id);
void sq_kv_blocks_unref(sq_kv_blocks *b, int32_t id);

/* ---- engine ----------------------------------------------------------------------------- */

typedef struct sq_engine_opts {
    int max_batch;     /* sequences decoded together (default 64) */
    int ctx_len;       /* longest prompt + completion (0: the model's max, at most 4096) */
    int block_size;    /* positions per KV block (default 16) */
    int prefill_chunk; /* prompt tokens per step at most (default 512) */
    int kv_blocks;     /* KV pool size in blocks (0: enough for max_batch full contexts,
                          capped by kv_mem_mb) */
    int kv_mem_mb;     /* cap for the automatic pool size (default 4096) */
    int kv_type;       /* sq_kv_type of the KV cache: SQ_KV_AUTO (the default: F16 for 16-bit
                          and quantized models, F32 for F32 ones; sq_kv_type_auto), SQ_KV_F32
                          (exact), SQ_KV_F16 or SQ_KV_BF16 (half the bytes; K/V rounded when
                          stored). A zeroed struct means F32. */
} sq_engine_opts;

void sq_engine_opts_default(sq_engine_opts *o);

/* Turns a token id into its text piece (appended to out); used for stop strings and the
 * output text. 0 or a negative SQ_E* code. */
typedef struct sq_detok {
    void *ctx;
    int (*piece)(void *ctx, int32_t id, sq_buf *out);
} sq_detok;

typedef struct sq_infer_req {
    const int32_t *prompt;
    int n_prompt;
    sq_gen_params params; /* params.cancel: non-zero drops the request at the next step */
} sq_infer_req;

typedef struct sq_infer_sample {
    const int32_t *ids; /* generated ids; a stop token id is not included */
    const float *logprobs;
    int n;
    const char *text; /* NULL without a detokenizer; cut before a stop string */
    size_t text_len;
    const char *finish_reason; /* "stop" or "length" */
    /* With params.logprobs and params.top_logprobs = K: per generated token, the K most
     * likely tokens of its step (ids and raw log-probabilities, best first), n x K. */
    const int32_t *top_ids;
    const float *top_logprobs;
    int n_top;
} sq_infer_sample;

typedef struct sq_infer_result {
    int ok;            /* 0: the request could not run (error says why); the batch goes on */
    const char *error;
    int n_samples;
    const sq_infer_sample *samples;
    int prompt_tokens;
    int bad_request; /* with ok = 0: the request itself cannot fit (sq_gen_result.bad_request) */
} sq_infer_result;

/* Called once per request as soon as all its samples are finished (not in order). Return
 * non-zero to stop generating. */
typedef int (*sq_infer_cb)(void *user, int request_index, const sq_infer_result *r);

typedef struct sq_engine sq_engine;

int sq_engine_new(sq_engine **en, const sq_model *m, const sq_engine_opts *o, sq_err *e);
void sq_engine_free(sq_engine *en);
/* detok may be NULL (stop strings are then ignored). Extra stop ids besides each request's
 * own: the model's EOS ids. Returns 0, SQ_EINTR when the callback stopped it, or an error;
 * SQ_ERANGE when a step's logits are not finite (broken weights: the message names the step
 * and, when one holds NaN or Inf, the tensor). */
int sq_engine_generate(sq_engine *en, const sq_infer_req *reqs, int n, const sq_detok *detok, sq_infer_cb cb,
                       void *user, sq_err *e);

/* Prompt + completion tokens a sequence may hold (the KV cache length per sequence). */
int sq_engine_ctx_len(const sq_engine *en);

/* Counters since sq_engine_new, for benchmarks. */
typedef struct sq_engine_stats {
    int64_t steps, prompt_tokens, generated_tokens;
    double t_forward, t_sample;
    int64_t decode_steps, decode_tokens; /* steps with no prompt tokens in them */
    double t_decode;                     /* their forward + sampling time */
    int kv_blocks_total, kv_blocks_free; /* now */
    int64_t cancelled;                   /* requests dropped through their cancel flag */
    size_t kv_bytes_per_token;           /* K and V of one position, all layers */
    int kv_type;                         /* the cache's sq_kv_type, "auto" resolved */
} sq_engine_stats;
void sq_engine_get_stats(const sq_engine *en, sq_engine_stats *s);

#endif
