/* net — the OpenAI-compatible bridge: an HTTP client backend and a server.
 *
 * The client (sq_backend_open_http, declared in backend.h) drives many requests at once over
 * libcurl's multi interface from the calling thread, spreads them over one or more base
 * URLs, retries what can be retried (429, 5xx, timeouts, dropped connections) with
 * exponential backoff, jitter and Retry-After, and hands each finished request to the
 * caller's callback with its id. This header adds its usage counters.
 *
 * The server exposes any sq_backend (the in-process engine, or a remote one it proxies) as
 * /v1/completions, /v1/chat/completions, /v1/models and /health. Requests that arrive while
 * the backend is busy are gathered into the next sq_backend_generate batch. The server does
 * not own the backend: the caller opens it before sq_server_open and closes it after
 * sq_server_close. Strings in sq_server_opts are copied.
 */
#ifndef SCALEQUEST_NET_H
#define SCALEQUEST_NET_H

#include <stdint.h>

#include "scalequest/backend.h"
#include "scalequest/base.h"

/* ---- client ---------------------------------------------------------------------------- */

typedef struct sq_http_stats {
    int64_t requests_ok, requests_failed;
    int64_t attempts; /* HTTP attempts, including retries */
    int64_t retries;
    int64_t prompt_tokens, completion_tokens; /* as reported by the servers' "usage" */
} sq_http_stats;

/* Totals since the backend was opened. b must come from sq_backend_open_http (or an http
 * spec given to sq_backend_open); returns SQ_EINVAL for other backends. */
int sq_http_backend_stats(const sq_backend *b, sq_http_stats *out, sq_err *e);
/* 1 when b is the HTTP client backend. */
int sq_backend_is_http(const sq_backend *b);

/* Split "http(s)://host:port/v1#model" into a malloc'd base URL (no trailing '/') and
 * model name (either may be returned as NULL by passing NULL). A missing "#model" is an
 * error: an OpenAI-compatible server needs the name. */
int sq_http_parse_spec(const char *spec, char **base_url, char **model, sq_err *e);

/* ---- server ---------------------------------------------------------------------------- */

typedef struct sq_server_opts {
    const char *host;       /* default "127.0.0.1" */
    int port;               /* 0: pick a free port (see sq_server_port) */
    size_t max_body;        /* bytes; default 1 MiB, larger bodies get 413 */
    int max_tokens_limit;   /* largest max_tokens a request may ask for (default 4096) */
    int default_max_tokens; /* when a request gives none (default 256) */
    int max_n;              /* largest n (default 16) */
    int max_batch;          /* requests per backend batch (default 64) */
    double batch_window_s;  /* idle: gather requests arriving less than this apart, for at most
                               ten windows (default 0.005) */
    int max_connections;    /* open connections at most (default 1024); past it new ones wait
                               in the listen queue until an idle one times out */
    const char *model_name; /* name in /v1/models and the accepted "model" (default backend name) */
    /* When set (borrowed; must outlive the server), chat requests are rendered with it here
     * and sent to the backend as completions; otherwise the backend applies its own. */
    const struct sq_chat_template *chat_template;
    int idle_timeout_s; /* a connection silent this long is closed (default 30; none while its
                           request is being generated) */
} sq_server_opts;

void sq_server_opts_default(sq_server_opts *o);

typedef struct sq_server sq_server;

typedef struct sq_server_stats {
    int64_t requests, errors_4xx, errors_5xx;
    int64_t batches, batched_requests, max_batch_seen;
    int64_t prompt_tokens, completion_tokens;
    int64_t cancelled; /* requests whose client hung up before the answer */
} sq_server_stats;

/* Start serving (threads of its own); returns once the socket is listening. */
int sq_server_open(sq_server **s, sq_backend *b, const sq_server_opts *o, sq_err *e);
int sq_server_port(const sq_server *s);
void sq_server_get_stats(sq_server *s, sq_server_stats *out);
/* Stop accepting, finish the batch in progress, answer queued requests 503 and wait for
 * every connection to end; the stats then count everything answered (the 503s too). */
void sq_server_shutdown(sq_server *s);
/* sq_server_shutdown if not done yet, then free. */
void sq_server_close(sq_server *s);

#endif
