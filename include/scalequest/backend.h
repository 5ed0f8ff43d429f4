/* backend — one interface for "a model that generates", two implementations.
 *
 * A model is named either "local:PATH" (an HF folder or GGUF file run in this process by
 * the inference engine, src/infer) or "http(s)://host:port/v1#model-name" (an
 * OpenAI-compatible server: vLLM, SGLang, llama.cpp server, `scalequest serve`; src/net).
 * Every command that generates takes either, so the pipeline never knows which it has.
 *
 * Requests are submitted in a batch; results come back through a callback as each request
 * finishes (not in submission order), so a stage writes each one to its JSONL output at
 * once and a killed run loses nothing that was finished. The backend owns nothing the
 * caller passed in after sq_backend_generate returns; results passed to the callback are
 * valid only during the callback.
 */
#ifndef SCALEQUEST_BACKEND_H
#define SCALEQUEST_BACKEND_H

#include <stdatomic.h>
#include <stdint.h>

#include "scalequest/base.h"

#define SQ_MAX_TOP_LOGPROBS 20

typedef struct sq_gen_params {
    int max_tokens;          /* default 256 */
    float temperature;       /* 0 = greedy */
    float top_p;             /* 1 = off */
    int top_k;               /* 0 = off */
    float min_p;             /* 0 = off */
    uint64_t seed;           /* per request; reproducible */
    int n;                   /* samples per prompt (share one prefill locally), default 1 */
    const char *const *stop; /* stop strings (not included in the output) */
    int n_stop;
    const int32_t *stop_ids; /* extra stop token ids (the model's EOS always stops) */
    int n_stop_ids;
    int logprobs; /* return the log-probability of every chosen token */
    int top_logprobs; /* with logprobs: also the N most likely tokens of each step (0..20) */
    /* Optional: once *cancel is non-zero the caller no longer wants the answer (its client
     * went away). The local engine then stops the request's sequences at the next step and
     * answers it ok = 0, error "cancelled"; a backend that cannot stop early finishes it. */
    const atomic_int *cancel;
} sq_gen_params;

void sq_gen_params_default(sq_gen_params *p);

typedef struct sq_chat_msg {
    const char *role; /* "system" | "user" | "assistant" */
    const char *content;
} sq_chat_msg;

typedef struct sq_gen_request {
    const char *id; /* the record id; echoed back */
    /* Exactly one of: raw prompt text (completions), or chat messages (the chat template
     * of the model is applied locally; /v1/chat/completions remotely). */
    const char *prompt;
    const sq_chat_msg *messages;
    int n_messages;
    sq_gen_params params;
} sq_gen_request;

typedef struct sq_gen_choice {
    const char *text;
    const int32_t *token_ids; /* may be NULL for remote backends */
    const float *logprobs;    /* NULL unless params.logprobs */
    int n_tokens;
    const char *finish_reason; /* "stop" | "length" */
    /* With params.logprobs, when the backend knows them (local): each chosen token's text
     * (n_tokens strings) and, with params.top_logprobs = K, the K most likely tokens of each
     * step as n_tokens x K ids, logprobs and texts (row-major). Otherwise NULL. */
    const char *const *token_texts;
    int n_top;
    const int32_t *top_ids;
    const float *top_logprobs;
    const char *const *top_texts;
} sq_gen_choice;

typedef struct sq_gen_result {
    const char *id;
    int ok;               /* 0: failed (after retries, for a remote backend); error says why */
    const char *error;
    const sq_gen_choice *choices;
    int n_choices;
    int prompt_tokens, completion_tokens;
    /* With ok = 0: the request itself cannot run (a prompt longer than the context): the
     * caller's fault, not the model's; retrying it cannot help. A server answers it 400. */
    int bad_request;
} sq_gen_result;

/* Return non-zero to stop the batch early (e.g. the output could not be written). */
typedef int (*sq_gen_callback)(void *user, int request_index, const sq_gen_result *result);

typedef struct sq_backend sq_backend;

typedef struct sq_backend_opts {
    int threads;       /* local: 0 = all cores */
    int max_batch;     /* local: sequences decoded together (default 64) */
    int ctx_len;       /* local: KV cache length per sequence (0 = model's max) */
    int kv_type;       /* local: KV cache elements, an sq_kv_type (default SQ_KV_AUTO: F16 for
                          16-bit and quantized models, F32 for F32 ones; 0 = F32; F16, BF16) */
    int act_type;      /* local, quantized weights: an sq_act_type (0 = 8-bit activations as
                          llama.cpp; SQ_ACT_F32); process-wide, like threads */
    int concurrency;   /* remote: requests in flight (default 64) */
    double timeout_s;  /* remote: per request (default 600) */
    int max_retries;   /* remote: default 6 */
    const char *api_key_env; /* remote: env var with the key (default OPENAI_API_KEY) */
    const char *const *extra_urls; /* remote: more base URLs to spread load over */
    int n_extra_urls;
    /* local: read the tokenizer from here (tokenizer.json, a folder holding one, or a .gguf)
     * instead of the model's own; for HF folders that ship none. Its chat template, if it
     * has one, serves when the model has none. */
    const char *tokenizer;
} sq_backend_opts;

void sq_backend_opts_default(sq_backend_opts *o);

struct sq_backend_ops {
    int (*generate)(sq_backend *b, const sq_gen_request *reqs, int n, sq_gen_callback cb, void *user,
                    sq_err *e);
    void (*close)(sq_backend *b);
};

struct sq_backend {
    const struct sq_backend_ops *ops;
    char name[256]; /* model name as reported */
};

/* Open by spec: "local:PATH", a bare existing path (treated as local), or an http(s) URL. */
int sq_backend_open(sq_backend **b, const char *spec, const sq_backend_opts *o, sq_err *e);
int sq_backend_generate(sq_backend *b, const sq_gen_request *reqs, int n, sq_gen_callback cb, void *user,
                        sq_err *e);
void sq_backend_close(sq_backend *b);

/* Implementations (each in its own layer); sq_backend_open picks one. */
int sq_backend_open_local(sq_backend **b, const char *path, const sq_backend_opts *o, sq_err *e);
int sq_backend_open_http(sq_backend **b, const char *url, const sq_backend_opts *o, sq_err *e);

#endif
