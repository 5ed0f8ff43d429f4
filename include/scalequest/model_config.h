/* model_config — what a Llama-family model looks like, read from HF config.json or GGUF.
 *
 * One struct serves Llama 2/3, Mistral, Qwen2 and DeepSeek-LLM: they differ only in the
 * fields below. Inference (src/model, src/infer) and training (src/train) share it.
 */
#ifndef SCALEQUEST_MODEL_CONFIG_H
#define SCALEQUEST_MODEL_CONFIG_H

#include "scalequest/base.h"

typedef enum { SQ_ROPE_NONE = 0, SQ_ROPE_LINEAR, SQ_ROPE_DYNAMIC, SQ_ROPE_LLAMA3, SQ_ROPE_YARN } sq_rope_scaling;

typedef struct sq_model_config {
    char arch[32];       /* "llama", "mistral", "qwen2", "deepseek" (llama-shaped) */
    int vocab_size;
    int dim;             /* hidden_size */
    int n_layers;
    int n_heads;
    int n_kv_heads;      /* grouped-query attention when < n_heads */
    int head_dim;        /* usually dim / n_heads */
    int ffn_dim;         /* intermediate_size */
    int max_seq_len;     /* max_position_embeddings */
    float rope_theta;
    float norm_eps;      /* rms_norm_eps */
    int tie_embeddings;  /* lm_head shares the token embedding */
    int attn_bias;       /* q/k/v projections have bias (Qwen2) */
    int sliding_window;  /* 0: none */
    sq_rope_scaling rope_scaling;
    float rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int rope_original_max_pos;
    int bos_id, eos_id;  /* -1 when unknown; eos_id is the first of eos_ids */
    char torch_dtype[16];  /* "float32", "bfloat16", ...; "" when config.json names none */
    int n_eos;           /* eos_token_id may be a list (Llama 3): all of them, up to 8 */
    int eos_ids[8];
    int pad_id;          /* pad_token_id, -1 when none: a sequence classifier scores the last
                            token that is not this one (transformers' rule) */
    int seq_cls;         /* architectures names *ForSequenceClassification: a scalar head
                            (score.weight [1, dim]) in place of the LM head */
} sq_model_config;

/* Parse an HF config.json (the text); path is for messages. */
int sq_model_config_from_json(sq_model_config *c, const char *json, const char *path, sq_err *e);
/* Write config.json that transformers' AutoConfig reads back to the same model (appends to
 * out); with seq_cls, the *ForSequenceClassification class with one label. SQ_EUNSUP for what HF's classes cannot express (Qwen2 without q/k/v bias, Mistral
 * with it, Llama with a sliding window). "deepseek" is written as model_type "llama". */
int sq_model_config_to_json(const sq_model_config *c, sq_buf *out);
/* Validate, then write config.json atomically; path is a folder or a file name. */
int sq_model_config_save(const sq_model_config *c, const char *path, sq_err *e);
int sq_model_config_validate(const sq_model_config *c, sq_err *e);

/* From GGUF metadata (<arch>.context_length, .embedding_length, ...; vocab size from
 * tokenizer.ggml.tokens when <arch>.vocab_size is absent). */
typedef struct sq_gguf sq_gguf;
int sq_model_config_from_gguf(sq_model_config *c, const sq_gguf *g, sq_err *e);
/* Read the config of a model path: an HF folder (its config.json), a config.json, or a
 * .gguf file. Validated. */
int sq_model_config_load(sq_model_config *c, const char *path, sq_err *e);

#endif
