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

/* One HTTP request on its way through the batcher. Everything is owned by the job. */
typedef struct sq_srv_job {
    int chat;
    int stream, stream_usage; /* answer as server-sent events; add a usage chunk */
    sq_gen_request req;
    char *prompt;
    sq_chat_msg *msgs;
    char **strs; /* every string the request points at */
    int n_strs;
    const char **stops;
    /* filled when done */
    int done, ok, http_status;
    char *error;
    char **texts, **finish;
    float **logprobs;
    int *n_logprobs;
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
/* Copy a backend result into the job (the backend's strings die after the callback). */
int sq_srv_job_set_result(sq_srv_job *job, const sq_gen_result *r);
/* Response bodies, malloc'd. */
char *sq_srv_response_json(const sq_srv_job *job, const char *model, uint64_t id, long created);
char *sq_srv_error_json(const char *msg, const char *type, const char *param, const char *code);
char *sq_srv_models_json(const char *model, long created);
char *sq_srv_stream_body(const sq_srv_job *job, const char *model, uint64_t id, long created);
