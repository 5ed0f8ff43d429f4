/* train — what is about training only: losses (masked cross-entropy, DPO/QPO, MSE on a
 * scalar head), AdamW, schedules, packing, data, checkpoints and the trainer loop. The model
 * that learns (sq_tmodel: forward with saved activations, backward) is the model layer's
 * (model.h).
 */
#ifndef SCALEQUEST_TRAIN_H
#define SCALEQUEST_TRAIN_H

#include <stdint.h>

#include "scalequest/base.h"
#include "scalequest/kernels.h"
#include "scalequest/model.h"
#include "scalequest/model_config.h"
#include "scalequest/tokenizer.h"

/* ---- losses ---------------------------------------------------------------------------- */

/* Masked cross-entropy: loss = -sum_i w_i logp_i / norm; fills dlogp. Returns the loss. */
double sq_loss_ce(const float *logp, const float *w, int n, double norm, float *dlogp);

/* DPO (the paper's QPO, eq. 2) in TRL's sigmoid form, over n pairs:
 *   z = beta * ((pc - rc) - (pr - rr)), loss = mean(-log sigmoid(z)),
 *   chosen_reward = beta (pc - rc), rejected_reward = beta (pr - rr).
 * dpc[i], dpr[i] get dloss/d(policy logp); rewards may be NULL. Returns the loss. */
double sq_loss_dpo(const double *pc, const double *pr, const double *rc, const double *rr, int n,
                   double beta, double *dpc, double *dpr, double *chosen_reward, double *rejected_reward);

/* Mean squared error of n values against targets; fills dvalue. Returns the loss. */
double sq_loss_mse(const float *value, const float *target, int n, float *dvalue);

/* ---- optimiser and schedule ------------------------------------------------------------ */

typedef struct sq_adamw {
    float beta1, beta2, eps, weight_decay;
    int64_t step;   /* optimiser steps taken */
    float *m, *v;   /* [n_params], owned */
    size_t n;
} sq_adamw;

int sq_adamw_init(sq_adamw *o, size_t n, float beta1, float beta2, float eps, float weight_decay, sq_err *e);
void sq_adamw_free(sq_adamw *o);
/* One step of torch.optim.AdamW (decoupled decay, bias correction) over the model's
 * parameters; decay only where the tensor table says so. */
void sq_adamw_step(sq_adamw *o, sq_tmodel *m, float lr);
/* Scale grads so their global L2 norm is at most max_norm (torch's clip_grad_norm_);
 * returns the norm before clipping. max_norm <= 0 only measures. */
double sq_clip_grad_norm(sq_tmodel *m, double max_norm);
/* The grads' global L2 norm (returned) and the factor sq_clip_grad_norm would scale them by
 * (*coef; 1 when within max_norm or max_norm <= 0). The grads are not changed. */
double sq_grad_norm_coef(const sq_tmodel *m, double max_norm, float *coef);
/* sq_clip_grad_norm's scaling and sq_adamw_step in one pass over the parameters, with the
 * same bits: each gradient is multiplied by coef as it is read (the product the separate
 * scaling pass would have stored). With zero_grads the grads are left zero, as
 * sq_tm_zero_grad would leave them for the next step. Three passes over 4 x n_params floats
 * become one: a step of a 135M-parameter model saves about 1 GB of memory traffic. */
void sq_adamw_step_fused(sq_adamw *o, sq_tmodel *m, float lr, float coef, int zero_grads);

typedef enum { SQ_SCHED_COSINE = 0, SQ_SCHED_LINEAR, SQ_SCHED_CONSTANT } sq_sched_kind;
/* The multiplier of the peak lr at optimiser step `step` (0-based) of `total`, as HF's
 * get_{cosine,linear,constant}_schedule_with_warmup. */
double sq_sched_factor(sq_sched_kind k, int64_t step, int64_t total, int64_t warmup);
int sq_sched_parse(const char *name, sq_sched_kind *k);

/* ---- examples, packing and batches ------------------------------------------------------ */

/* One tokenised example: ids[n], loss[n] (1 where the token is a target of the loss: the
 * model predicts ids[i] from ids[..i-1]). For DPO the pair's two sequences are two examples
 * with pair = its index and chosen 1/0. For regression `value` is the target. */
typedef struct sq_texample {
    int32_t *ids;
    uint8_t *loss;
    int n;
    float value;
} sq_texample;

/* Pack examples (in the given order) into rows of T tokens, each example whole (longer ones
 * are cut to T). Fills a batch of B rows; returns how many examples were consumed (0 when
 * the first does not fit, which cannot happen since examples are cut). When pack is 0 each
 * row holds one example. The buffers are owned by the packer and reused. */
typedef struct sq_packer {
    int B, T, pack;
    int32_t *tokens, *targets, *pos, *seg_start;
    float *weight;      /* [B*T] loss weight of each target (1 or 0) */
    int *last_row;      /* [n_in_batch] last token row of each example in the batch */
    int *ex_index;      /* [n_in_batch] index of the example */
    int n_in_batch;
    int n_targets;      /* sum of weight */
} sq_packer;

int sq_packer_init(sq_packer *p, int B, int T, int pack, sq_err *e);
void sq_packer_free(sq_packer *p);
/* Fill from examples ex[first..n); returns the number consumed (>= 1 when first < n). */
int sq_packer_fill(sq_packer *p, const sq_texample *ex, int first, int n, sq_tbatch *b);


/* ---- checkpoints ------------------------------------------------------------------------ */

/* Write an HF model folder: config.json, model.safetensors (F32; lm_head omitted when tied;
 * score.weight and a *ForSequenceClassification config when the model has a scalar head),
 * and tokenizer.json copied from tokenizer_src when non-NULL. Each file is written atomically. */
int sq_tm_save_hf(const sq_tmodel *m, const char *dir, const char *tokenizer_src, sq_err *e);
/* Write one of the model's buffers (params or grads) as safetensors under the HF names. */
int sq_tm_write_buffer(const sq_tmodel *m, const float *buf, const char *path, sq_err *e);

/* ---- the trainer ------------------------------------------------------------------------ */

typedef enum { SQ_TRAIN_SFT = 0, SQ_TRAIN_QFT, SQ_TRAIN_DPO, SQ_TRAIN_REGRESS } sq_train_mode;

typedef struct sq_train_opts {
    sq_train_mode mode;
    int batch, seq_len, accum, pack; /* rows per micro-batch, tokens per row, micro-batches per step */
    int epochs;
    int64_t max_steps;               /* > 0: stop after this many optimiser steps (cycling epochs) */
    double lr, weight_decay, beta1, beta2, eps, clip;
    double warmup_ratio;             /* used when warmup_steps < 0 */
    int64_t warmup_steps;
    sq_sched_kind sched;
    double dpo_beta;
    uint64_t seed;                   /* data order */
    int64_t save_every;              /* resumable checkpoint every N steps (0: only at the end) */
    const char *out_dir;             /* final HF folder; the resumable state in out_dir/last-checkpoint */
    const char *tokenizer;           /* tokenizer.json to copy into checkpoints, or NULL */
    const char *grads_out;           /* write the first step's gradients (before clipping) here as
                                      * safetensors, named like the parameters: for cross-checks */
} sq_train_opts;

void sq_train_opts_default(sq_train_opts *o);
int sq_train_mode_parse(const char *name, sq_train_mode *mode);

/* Train m on examples ex[0..n) (DPO: ex[2i] chosen, ex[2i+1] rejected, same prompt).
 * Resumes from out_dir/last-checkpoint when one is there, so a run killed at any moment and
 * started again with the same arguments continues exactly. Appends one JSON line per step
 * to out_dir/train_log.jsonl ({"step","loss","lr","grad_norm"} and, for DPO, the mean
 * rewards); *final_loss gets the last step's loss (may be NULL). */
int sq_train_run(sq_tmodel *m, const sq_texample *ex, int n, const sq_train_opts *o, double *final_loss, sq_err *e);

/* Sum of log-probs of each example's loss tokens under m (the DPO reference), batch rows of
 * T tokens; out[n]. */
int sq_train_seq_logps(sq_tmodel *m, const sq_texample *ex, int n, int batch, int T, float *out, sq_err *e);

/* ---- training data ------------------------------------------------------------------------ */

/* Examples read from JSONL, each owning its arrays. */
typedef struct sq_tdata {
    sq_texample *ex;
    int n;
} sq_tdata;

/* Token-id records (what a tokenizer upstream produced):
 *   sft, qft: {"input_ids": [...], "loss_mask": [...]}  (mask optional: all tokens but the first)
 *   dpo:      {"chosen_ids", "chosen_mask", "rejected_ids", "rejected_mask"}  -> two examples
 *   regress:  {"input_ids": [...], "value": x}
 * A bad record is an error naming file:line. */
int sq_tdata_load_ids(sq_tdata *d, const char *path, sq_train_mode mode, sq_err *e);
void sq_tdata_free(sq_tdata *d);
/* Append one example (copies ids and mask; mask NULL: all but the first token). */
int sq_tdata_add(sq_tdata *d, const int32_t *ids, const uint8_t *mask, int n, float value);

/* Text records through a tokenizer. The prompt format has "{query}" where the question
 * goes; defaults (sq_text_format_default): prompt "Question: {query}\nAnswer:\n", QFT
 * prefix "Question:", EOS "<|endoftext|>" (else the tokenizer's EOS).
 *   sft:     "query", "response"   -> prompt(query) + response + EOS, loss on response + EOS
 *   qft:     "query"               -> prefix + " " + query + EOS, loss on the question + EOS
 *   dpo:     "chosen", "rejected" (questions, after the QFT prefix; with "query": responses)
 *   regress: "query", "value" (or "fail_rate") -> prompt(query), the head reads its last token
 * With a chat template (chat != NULL) the model's own format replaces the plain one, as the
 * paper trains instruct models: the prompt is the user turn rendered with the generation
 * prompt, the QFT prefix is the template's bare user-turn prefix
 * (sq_chat_template_question_prefix) followed directly by the question, and the text that
 * closes the turn (e.g. <|im_end|>) takes EOS's place: the token that ends an assistant turn
 * after a response, the one that ends a user turn after a question. A rendered prompt is
 * encoded as transformers encodes a rendered chat, special tokens recognised; a target
 * (response or question) is encoded as plain text. */
typedef struct sq_text_format {
    const char *prompt, *qft_prefix, *eos_token;
    const struct sq_chat_template *chat;
} sq_text_format;

void sq_text_format_default(sq_text_format *f);
/* The template with {query} replaced (malloc'd). */
char *sq_text_format_prompt(const char *tmpl, const char *query);
int sq_tdata_load_text(sq_tdata *d, const char *path, sq_train_mode mode, const sq_tokenizer *tok,
                       const sq_text_format *f, sq_err *e);

#endif
