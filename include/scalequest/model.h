/* model — a Llama-family transformer (Llama 2/3, Mistral, Qwen2, DeepSeek-LLM) for inference.
 *
 * sq_model_open reads an HF folder (config.json + model.safetensors or its shards) or a GGUF
 * file. F32 and BF16 weights are used in place from the mmap'd file (no copy); F16 and Q8_0
 * matrices, and norm weights/biases in any dtype other than F32, are converted once at load
 * into buffers the model owns. GGUF's llama layout stores Q/K rows interleaved for RoPE; the
 * model keeps them as they are and rotates in that layout (q.k dot products do not depend
 * on the order, so attention is the same). The model owns its open files; sq_model_close
 * frees everything.
 *
 * A model is opened for one head: the LM head (logits, for generation) or the scalar head of
 * a *ForSequenceClassification folder (score.weight [1, dim], for reward and difficulty
 * scoring). Each refuses the other kind of folder with a message that says which to use.
 *
 * sq_model_forward runs one step over a ragged batch: any mix of prompt tokens (prefill) and
 * single decode tokens from many sequences, each token with its position and its sequence's
 * KV block table. Keys/values go to an sq_kv_pool the caller owns (src/infer manages which
 * blocks a sequence holds). Scratch lives in an sq_fwd that is sized once, so a step
 * allocates nothing.
 */
#ifndef SCALEQUEST_MODEL_H
#define SCALEQUEST_MODEL_H

#include <stdint.h>

#include "scalequest/base.h"
#include "scalequest/kernels.h"
#include "scalequest/model_config.h"
#include "scalequest/tensor.h"

typedef struct sq_layer {
    sq_view attn_norm, ffn_norm;  /* F32 */
    sq_view wq, wk, wv, wo;       /* F32 or BF16, [out, in] */
    sq_view bq, bk, bv;           /* F32 bias or data == NULL */
    sq_view w_gate, w_up, w_down; /* F32 or BF16 */
} sq_layer;

/* What the forward's output rows produce. SQ_HEAD_ANY, at open only: the head the folder has
 * (the scalar head of a *ForSequenceClassification folder, else the LM head); m->head then
 * says which. Training opens its starting weights this way. */
typedef enum { SQ_HEAD_LM = 0, SQ_HEAD_SCORE = 1, SQ_HEAD_ANY = 2 } sq_head;

typedef struct sq_model {
    sq_model_config cfg;
    sq_head head;
    sq_view tok_emb;  /* [vocab, dim], any dtype sq_embed_row reads */
    sq_view out_norm; /* F32 */
    sq_view lm_head;  /* F32 or BF16, [vocab, dim]; the embedding itself when tied; SQ_HEAD_LM only */
    sq_view score;    /* F32 or BF16, [1, dim]: the scalar head; SQ_HEAD_SCORE only */
    sq_layer *layers;
    sq_rope rope;
    int from_gguf;
    char *path;
    struct sq_model_files *files; /* open mappings and converted copies */
} sq_model;

/* The weight of the head in use: [vocab, dim] or [1, dim]. */
static inline const sq_view *sq_model_head_weight(const sq_model *m) {
    return m->head == SQ_HEAD_SCORE ? &m->score : &m->lm_head;
}

/* path: an HF model folder, or a .gguf file; the LM head. */
int sq_model_open(sq_model **m, const char *path, sq_err *e);
/* The same with a chosen head: SQ_HEAD_SCORE needs a *ForSequenceClassification folder. */
int sq_model_open_head(sq_model **m, const char *path, sq_head head, sq_err *e);
void sq_model_close(sq_model *m);
/* Scan the weights for NaN or Inf (a diagnosis after non-finite logits, not a load step):
 * 1 with the first offending tensor's name ("layers.3.wq") in name, 0 when all are finite. */
int sq_model_find_nonfinite(const sq_model *m, char *name, size_t cap);
/* Bytes of weights read per token (all matrices, the head, one embedding row). */
size_t sq_model_weight_bytes(const sq_model *m);

/* ---- KV storage ------------------------------------------------------------------------- */

/* Keys and values for every layer, in n_blocks blocks of block_size positions. The slot of
 * position p of a sequence with block table B is B[p / block_size] * block_size + p %
 * block_size; layer l's key for that slot starts at k[l] + slot * kv_dim. */
typedef struct sq_kv_pool {
    int n_layers, n_blocks, block_size, kv_dim;
    float **k, **v;
} sq_kv_pool;

int sq_kv_pool_init(sq_kv_pool *p, const sq_model *m, int n_blocks, int block_size, sq_err *e);
void sq_kv_pool_free(sq_kv_pool *p);
/* Copy positions [0, n) of block src into block dst (all layers): copy-on-write of a shared
 * partial block. */
void sq_kv_pool_copy_block(sq_kv_pool *p, int dst, int src, int n);

/* ---- forward ---------------------------------------------------------------------------- */

/* One step's tokens. Token i belongs to a sequence whose block table is blocks[i] and sits at
 * position pos[i]; positions 0..pos[i]-1 of that sequence are either already in the pool or
 * among this step's tokens. Logits are produced for the tokens listed in out_rows. */
typedef struct sq_batch {
    int n_tokens;
    const int32_t *tokens;
    const int32_t *pos;
    const int32_t *const *blocks;
    int n_out;
    const int32_t *out_rows;
} sq_batch;

typedef struct sq_fwd sq_fwd;

/* Scratch for steps of up to max_tokens tokens, max_out logit rows, positions < max_ctx,
 * for the calling thread's OpenMP thread count (sq_threads_get()); every step then runs on
 * that many threads, whichever thread calls sq_model_forward. */
int sq_fwd_new(sq_fwd **f, const sq_model *m, int max_tokens, int max_out, int max_ctx, sq_err *e);
void sq_fwd_free(sq_fwd *f);
/* Run the step; out (caller's buffer): n_out rows of vocab_size logits with the LM head, n_out
 * values with the scalar head (the head's dot product with the final normed hidden state). */
int sq_model_forward(const sq_model *m, sq_fwd *f, sq_kv_pool *kv, const sq_batch *b, float *logits, sq_err *e);

#endif
