/* Shared between the files of src/net; not a public interface. */
#ifndef SQ_NET_INTERNAL_H
#define SQ_NET_INTERNAL_H

#include <stddef.h>

#include "scalequest/backend.h"
#include "scalequest/chat_template.h"
#include "scalequest/net.h"

/* A parsed response: choices owned here (text, finish_reason, logprobs malloc'd). */
typedef struct sq_oai_result {
    sq_gen_choice *choices;
    int n_choices;
    int prompt_tokens, completion_tokens;
} sq_oai_result;

/* The JSON body for /v1/completions (r->prompt) or /v1/chat/completions (r->messages);
 * malloc'd, NULL on OOM. */
char *sq_oai_request_body(const char *model, const sq_gen_request *r);
int sq_oai_parse_response(const char *body, size_t len, int chat, sq_oai_result *out, sq_err *e);
void sq_oai_result_free(sq_oai_result *r);
void sq_oai_error_message(const char *body, size_t len, char *out, size_t cap);

#endif

/* ---- server ---------------------------------------------------------------------------- */
#include <pthread.h>
#include <stdatomic.h>

/* One HTTP request on its way through the batcher: one backend request per prompt (a
 * completions request may carry a list of prompts, OpenAI's batch form). Everything is
 * owned by the job. */
typedef struct sq_srv_job {
    int chat;
    int stream, stream_usage; /* answer as server-sent events; add a usage chunk */
    sq_gen_request req;       /* the parsed request; the template of every reqs[i] */
    char *prompt;
    const char **prompts; /* the batch form's prompts (n_prompts > 1) */
    int n_prompts;
    sq_gen_request *reqs; /* what the backend runs (set by sq_srv_job_ready) */
    int n_reqs;
    sq_chat_msg *msgs;
    char **strs; /* every string the request points at */
    int n_strs;
    const char **stops;
    atomic_int cancel; /* set when the client hangs up: the backend may stop early */
    /* filled as results come: choice i*n + k is sample k of prompt i */
    int n_answered, done, ok, http_status, bad_request;
    char *error;
    int per_req; /* choices per prompt (the request's n) */
    char **texts, **finish;
    float **logprobs;
    int *n_logprobs;
    char ***token_texts; /* per choice: n_logprobs[i] strings, or NULL */
    int n_top;           /* top logprobs per token */
    float **top_lps;     /* per choice: n_logprobs[i] x n_top */
    char ***top_texts;
    int n_choices, prompt_tokens, completion_tokens;
    pthread_cond_t cv;
    struct sq_srv_job *next;
} sq_srv_job;

/* Parse and check a request body into job (which must be zeroed). On a bad request returns
 * the HTTP status (4xx) and fills msg and *param (the offending field, or NULL). */
int sq_srv_parse_request(const char *body, size_t len, int chat, const sq_server_opts *o,
                         const char *model_name, sq_srv_job *job, char *msg, size_t cap, const char **param);
void sq_srv_job_free(sq_srv_job *job);
/* Render a chat job's messages with t into a completion prompt (generation prompt added,
 * the template's assistant stops added to the request's). 0, or an HTTP status with msg. */
int sq_srv_apply_template(sq_srv_job *job, const sq_chat_template *t, char *msg, size_t cap);
/* After parsing (and the template): one backend request per prompt, room for the results. */
int sq_srv_job_ready(sq_srv_job *job);
/* Copy the result of reqs[sub] into the job (the backend's strings die after the callback);
 * a failure is kept as the job's error. Returns 1 once every request is answered. */
int sq_srv_job_set_result(sq_srv_job *job, int sub, const sq_gen_result *r);
/* reqs[sub] got no result: count it answered with this error. 1 once all are answered. */
int sq_srv_job_fail(sq_srv_job *job, int sub, int http_status, const char *why);
/* Response bodies, malloc'd. */
char *sq_srv_response_json(const sq_srv_job *job, const char *model, uint64_t id, long created);
char *sq_srv_error_json(const char *msg, const char *type, const char *param, const char *code);
char *sq_srv_models_json(const char *model, long created);
char *sq_srv_stream_body(const sq_srv_job *job, const char *model, uint64_t id, long created);
