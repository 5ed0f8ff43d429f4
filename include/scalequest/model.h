/* model — a Llama-family transformer (Llama 2/3, Mistral, Qwen2, DeepSeek-LLM) for inference.
 *
 * sq_model_open reads an HF folder (config.json + model.safetensors or its shards) or a GGUF
 * file. F32, BF16, F16 and GGUF quantized matrices are used in place from the mmap'd file
 * (no copy); norm weights/biases in any dtype other than F32 are converted once at load
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
 *
 * The same transformer, trainable (sq_tmodel, at the end): fp32 weights, a forward over a
 * batch that keeps every activation backward needs, and the backward, both written out layer
 * by layer over the kernels of kernels.h. Training (train.h) drives it; its weights come
 * through sq_model_open's loader (sq_tm_load), so there is one reader of model files.
 *
 * Layout follows llm.c: every parameter lives in one fp32 buffer (`params`) with named views
 * (`w`), the gradients in a second buffer of the same layout (`grads`, views `g`), and the
 * activations of one step in one arena sized for the largest batch seen. A sq_tmodel owns all
 * three; sq_tm_free releases them. Batches, targets and loss inputs belong to the caller and
 * are only read. The tensor table names each parameter as HF transformers does, so a
 * checkpoint is a plain HF folder.
 *
 * A batch is B rows of T tokens. Packing several short examples into one row is expressed by
 * `pos` (position ids that restart at each example) and `seg_start` (the index, within the
 * row, where the token's example begins): attention never looks before seg_start, so packed
 * examples do not see each other.
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
    sq_view wq, wk, wv, wo;       /* F32, BF16, F16 or quantized, [out, in] */
    sq_view bq, bk, bv;           /* F32 bias or data == NULL */
    sq_view w_gate, w_up, w_down; /* the same */
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
    int type;      /* sq_kv_type: F32, F16 or BF16 elements (never SQ_KV_AUTO) */
    void **k, **v; /* per layer, n_blocks * block_size * kv_dim elements of type */
} sq_kv_pool;

/* An F32 pool. */
int sq_kv_pool_init(sq_kv_pool *p, const sq_model *m, int n_blocks, int block_size, sq_err *e);
/* A pool of the given sq_kv_type (F16/BF16 need head_dim <= SQ_KV_MAX_HEAD_DIM); SQ_KV_AUTO
 * is resolved for m by sq_kv_type_auto and p->type says what it became. */
int sq_kv_pool_init_type(sq_kv_pool *p, const sq_model *m, int n_blocks, int block_size, int type, sq_err *e);
/* Write n elements of a key row and a value row of layer `layer` at cache slot `slot`,
 * starting at element `off` of the row (a KV head's offset), rounded to the pool's type. */
void sq_kv_pool_store(const sq_kv_pool *p, int layer, size_t slot, int off, const float *k, const float *v, int n);
/* Bytes of K and V that one position takes over all layers. */
size_t sq_kv_pool_bytes_per_token(const sq_kv_pool *p);
/* Bytes per element of an sq_kv_type (0 for an unknown one and for SQ_KV_AUTO), its name
 * ("f32", "f16", "bf16", "auto"), and the type a name gives (-1 for an unknown name). */
size_t sq_kv_type_size(int type);
const char *sq_kv_type_name(int type);
int sq_kv_type_parse(const char *name);
/* What "auto" (the default of the engine and of every --kv-type) means for model m, chosen as
 * vLLM's kv_cache_dtype=auto and llama.cpp do: SQ_KV_F16 when the layers' matrices are 16-bit
 * (BF16, F16) or quantized (GGUF Q*), SQ_KV_F32 when they are all F32 (or head_dim is over
 * SQ_KV_MAX_HEAD_DIM). kv_pool.c says why. */
int sq_kv_type_auto(const sq_model *m);
/* type itself, or sq_kv_type_auto(m) for SQ_KV_AUTO. */
int sq_kv_type_resolve(int type, const sq_model *m);
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

/* ---- the trainable model ------------------------------------------------------------------------- */

typedef struct sq_tm_tensor {
    char name[80];  /* HF name, e.g. "model.layers.0.self_attn.q_proj.weight" */
    int ndim;
    int64_t shape[2];
    size_t offset, numel; /* in floats, into params/grads */
    int decay;      /* weight decay applies (matrices); biases and norms are exempt */
} sq_tm_tensor;

typedef struct sq_tm_layer_w {
    float *ln1, *wq, *bq, *wk, *bk, *wv, *bv, *wo, *ln2, *wg, *wu, *wd;
} sq_tm_layer_w;

typedef struct sq_tm_weights {
    float *embed, *lm_head, *norm, *score; /* lm_head == embed when tied; score NULL without head */
    sq_tm_layer_w *layer;
} sq_tm_weights;

typedef struct sq_tbatch {
    int B, T;
    const int32_t *tokens;    /* [B*T] */
    const int32_t *targets;   /* [B*T] next token to predict, -1 for none (may be NULL) */
    const int32_t *pos;       /* [B*T] position ids */
    const int32_t *seg_start; /* [B*T] row index where the token's example starts */
} sq_tbatch;

typedef struct sq_tm_acts sq_tm_acts;

typedef struct sq_tmodel {
    sq_model_config cfg;
    int has_score;  /* a scalar head "score.weight" [1, dim] on the last hidden state */
    int n_tensors;
    sq_tm_tensor *tensors;
    size_t n_params;
    float *params, *grads;
    sq_tm_weights w, g;
    sq_tm_acts *acts;
    float *rope_cos, *rope_sin; /* [max_seq_len, head_dim/2] */
    /* Outputs of the last forward: logp of each target [B*T] (0 where none) and the final
     * normed hidden state [B*T, dim]. Valid until the next forward. */
    float *logp, *hidden;
} sq_tmodel;

/* Lay out the tensors of cfg (and a scalar head when has_score), allocate params and grads
 * (zeroed). Fill the parameters with sq_tm_init_random or by loading a checkpoint. */
int sq_tm_create(sq_tmodel *m, const sq_model_config *cfg, int has_score, sq_err *e);
void sq_tm_free(sq_tmodel *m);
/* Normal(0, std) matrices and embeddings, ones for norms, zeros for biases (HF's init). */
void sq_tm_init_random(sq_tmodel *m, uint64_t seed, float std);
const sq_tm_tensor *sq_tm_find(const sq_tmodel *m, const char *name);
void sq_tm_zero_grad(sq_tmodel *m);

/* Run the model over a batch, keeping what backward needs. With need_logits, also the LM
 * head: m->logp[i] = log softmax(logits_i)[targets_i] for targets_i >= 0. */
int sq_tm_forward(sq_tmodel *m, const sq_tbatch *b, int need_logits, sq_err *e);
/* Accumulate (+=) into m->grads the gradient of a loss given through
 *   dlogp[B*T]  dloss/dlogp per token (NULL: the loss does not use the LM head), and
 *   score_rows[n_score], dvalue[n_score]: dloss/d(score head value) at those token rows.
 * Must follow sq_tm_forward on the same batch. */
int sq_tm_backward(sq_tmodel *m, const sq_tbatch *b, const float *dlogp, const int *score_rows,
                   const float *dvalue, int n_score, sq_err *e);
/* The scalar head's value at a token row of the last forward. */
float sq_tm_score_value(const sq_tmodel *m, int row);


/* Create *m from a model file through the engine's loader (model.h): an HF folder
 * (safetensors F32/BF16/F16), a GGUF file or a registry name (models.h); every weight,
 * quantized or not, widened to the fp32 master weights, GGUF's q/k rows put back in HF's order
 * (what sq_tm_save_hf then writes is an ordinary HF checkpoint). A *ForSequenceClassification
 * folder brings its scalar head; with want_score, a model without one gets a new head at zero. */
int sq_tm_load(sq_tmodel *m, const char *path, int want_score, sq_err *e);
static inline int sq_tm_load_hf(sq_tmodel *m, const char *dir, int want_score, sq_err *e) {
    return sq_tm_load(m, dir, want_score, e);
}

/* Phase timers: with SQ_TRAIN_PROFILE set, sq_tm_free prints where the time of forward,
 * backward and the optimiser went (a phase is charged the time since the previous mark). */
typedef enum {
    SQ_TP_EMBED, SQ_TP_NORM, SQ_TP_QKV, SQ_TP_ROPE, SQ_TP_ATTN, SQ_TP_O, SQ_TP_RESID, SQ_TP_MLP, SQ_TP_SWIGLU,
    SQ_TP_LM, SQ_TP_SOFTMAX, SQ_TP_B_LM, SQ_TP_B_NORM, SQ_TP_B_MLP, SQ_TP_B_SWIGLU, SQ_TP_B_O, SQ_TP_B_ATTN,
    SQ_TP_B_ROPE, SQ_TP_B_QKV, SQ_TP_B_EMBED, SQ_TP_CLIP, SQ_TP_ADAMW, SQ_TP_ZERO, SQ_TP_N
} sq_tp_phase;
int sq_tp_on(void);
void sq_tp_start(void);
void sq_tp_mark(sq_tp_phase p);
void sq_tp_report(void);

#endif
