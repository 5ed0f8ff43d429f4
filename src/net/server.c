/* `scalequest serve`: an OpenAI-compatible HTTP server over any sq_backend.
 *
 * libmicrohttpd runs one thread per connection; a connection thread parses its request,
 * queues a job and sleeps until the batcher fills it in. The batcher thread takes whatever
 * has queued (waiting a short window when the queue is small and the backend idle) and runs
 * it as one sq_backend_generate batch, so concurrent clients share the engine's batched
 * decode; requests arriving while a batch runs form the next one. Each job is answered as
 * soon as its own result comes back through the callback, not when the batch ends. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net_internal.h"

struct sq_server {
    struct MHD_Daemon *d;
    sq_backend *b;
    sq_server_opts o;
    char *host, *model_name;
    int port;
    pthread_mutex_t mu;
    pthread_cond_t work_cv;
    sq_srv_job *q_head, *q_tail;
    int q_len;
    int stopping;
    double last_arrival;
    pthread_t batcher;
    int batcher_started, shut;
    sq_server_stats stats;
    atomic_uint_fast64_t next_id;
    /* Requests begun and not yet completed (their answer not yet sent): shutdown waits for
     * them, because stopping the daemon drops an answer that is queued but not yet written. */
    atomic_int open_requests;
};

typedef struct conn_state {
    sq_buf body;
    int too_big;
} conn_state;

void sq_server_opts_default(sq_server_opts *o) {
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->max_body = 1u << 20;
    o->max_tokens_limit = 4096;
    o->default_max_tokens = 256;
    o->max_n = 16;
    o->max_batch = 64;
    o->batch_window_s = 0.005;
    o->max_connections = 1024;
    o->idle_timeout_s = 30;
}

int sq_server_port(const sq_server *s) { return s->port; }

void sq_server_get_stats(sq_server *s, sq_server_stats *out) {
    pthread_mutex_lock(&s->mu);
    *out = s->stats;
    pthread_mutex_unlock(&s->mu);
}

/* ---- the batcher ----------------------------------------------------------------------- */

/* One backend request of the batch: prompt `sub` of a job. */
typedef struct entry {
    sq_srv_job *job;
    int sub;
} entry;

typedef struct batch_ctx {
    sq_server *s;
    entry *ents;
    /* A job is freed by its connection thread as soon as it is done, so whether a request
     * was answered is remembered here, never read back from the job. */
    char *answered;
} batch_ctx;

static void finish_job(sq_server *s, sq_srv_job *j) {
    pthread_mutex_lock(&s->mu);
    j->done = 1;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&s->mu);
}

static int on_result(void *user, int i, const sq_gen_result *r) {
    batch_ctx *c = user;
    if (c->answered[i]) return 0;
    c->answered[i] = 1;
    entry *en = &c->ents[i];
    if (sq_srv_job_set_result(en->job, en->sub, r)) finish_job(c->s, en->job);
    return 0;
}

static void *batcher_main(void *arg) {
    sq_server *s = arg;
    int cap = SQ_MAX(s->o.max_batch, 1);
    /* A job of a list of prompts brings up to max_batch requests of its own. */
    entry *ents = calloc((size_t)cap * 2, sizeof *ents);
    sq_gen_request *reqs = calloc((size_t)cap * 2, sizeof *reqs);
    char *answered = calloc((size_t)cap * 2, 1);
    int last_batch = 0;
    pthread_mutex_lock(&s->mu);
    while (ents && reqs && answered) {
        while (!s->q_head && !s->stopping) pthread_cond_wait(&s->work_cv, &s->mu);
        if (s->stopping) break;
        if (s->q_len < cap && s->o.batch_window_s > 0) {
            /* Gather a burst: keep waiting while requests keep arriving less than a window
             * apart, and, for up to twenty windows, until as many have come as the last
             * batch answered: clients answered together come back together, and one full
             * batch costs about what a thin one costs. */
            double start = sq_now();
            while (s->q_len < cap && !s->stopping) {
                double t = sq_now();
                double deadline = s->last_arrival + s->o.batch_window_s;
                if (s->q_len < last_batch) deadline = SQ_MAX(deadline, start + 20 * s->o.batch_window_s);
                deadline = SQ_MIN(deadline, start + 20 * s->o.batch_window_s);
                if (t >= deadline) break;
                struct timespec until;
                clock_gettime(CLOCK_REALTIME, &until);
                long ns = until.tv_nsec + (long)((deadline - t) * 1e9);
                until.tv_sec += ns / 1000000000L;
                until.tv_nsec = ns % 1000000000L;
                pthread_cond_timedwait(&s->work_cv, &s->mu, &until);
            }
            if (s->stopping) break;
        }
        int k = 0, nj = 0;
        while (s->q_head && (k == 0 || k + s->q_head->n_reqs <= cap)) {
            sq_srv_job *j = s->q_head;
            s->q_head = j->next;
            if (!s->q_head) s->q_tail = NULL;
            s->q_len--;
            nj++;
            for (int sub = 0; sub < j->n_reqs; sub++) {
                ents[k] = (entry){j, sub};
                reqs[k] = j->reqs[sub];
                k++;
            }
        }
        last_batch = nj;
        s->stats.batches++;
        s->stats.batched_requests += nj;
        if (nj > s->stats.max_batch_seen) s->stats.max_batch_seen = nj;
        pthread_mutex_unlock(&s->mu);

        memset(answered, 0, (size_t)cap * 2);
        batch_ctx ctx = {s, ents, answered};
        sq_err e = {0};
        int rc = sq_backend_generate(s->b, reqs, k, on_result, &ctx, &e);
        for (int i = 0; i < k; i++) {
            if (answered[i]) continue;
            answered[i] = 1;
            if (sq_srv_job_fail(ents[i].job, ents[i].sub, 500,
                                rc ? e.msg : "the backend returned no result for this request"))
                finish_job(s, ents[i].job);
        }
        pthread_mutex_lock(&s->mu);
    }
    /* Shutting down: whatever is still queued is told to come back later. */
    while (s->q_head) {
        sq_srv_job *j = s->q_head;
        s->q_head = j->next;
        j->ok = 0;
        j->http_status = 503;
        free(j->error);
        j->error = sq_strdup("the server is shutting down");
        j->done = 1;
        pthread_cond_signal(&j->cv);
    }
    s->q_tail = NULL;
    s->q_len = 0;
    pthread_mutex_unlock(&s->mu);
    free(ents);
    free(reqs);
    free(answered);
    return NULL;
}

/* ---- HTTP ------------------------------------------------------------------------------ */

static enum MHD_Result send_body(struct MHD_Connection *c, unsigned status, char *body, const char *type) {
    if (!body) return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, char *json) {
    return send_body(c, status, json, "application/json");
}

static const char *error_type(unsigned status) {
    if (status == 404) return "not_found_error";
    if (status >= 500) return status == 503 ? "service_unavailable" : "server_error";
    return "invalid_request_error";
}

static enum MHD_Result send_error(sq_server *s, struct MHD_Connection *c, unsigned status, const char *msg,
                                  const char *param, const char *code) {
    pthread_mutex_lock(&s->mu);
    if (status >= 500) s->stats.errors_5xx++;
    else s->stats.errors_4xx++;
    pthread_mutex_unlock(&s->mu);
    return send_json(c, status, sq_srv_error_json(msg, error_type(status), param, code));
}

/* The client closed its end (or reset it). A request is read whole before it runs, so any
 * readable byte now is a pipelined next request, not a hang-up; only EOF or an error count. */
static int peer_gone(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return 0;
    if (p.revents & (POLLHUP | POLLERR | POLLRDHUP)) return 1;
    if (p.revents & POLLIN) {
        char b;
        ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
    }
    return 0;
}

static enum MHD_Result handle_generate(sq_server *s, struct MHD_Connection *c, conn_state *cs, int chat) {
    sq_srv_job *j = calloc(1, sizeof *j);
    if (!j) return send_error(s, c, 500, "out of memory", NULL, NULL);
    char msg[512];
    const char *param = NULL;
    int st = sq_srv_parse_request(cs->body.data, cs->body.len, chat, &s->o, s->model_name, j, msg, sizeof msg, &param);
    if (!st && chat && s->o.chat_template) st = sq_srv_apply_template(j, s->o.chat_template, msg, sizeof msg);
    if (!st && sq_srv_job_ready(j)) {
        st = 500;
        snprintf(msg, sizeof msg, "out of memory");
    }
    if (st) {
        sq_srv_job_free(j);
        free(j);
        return send_error(s, c, (unsigned)st, msg, param, st == 404 ? "model_not_found" : NULL);
    }
    pthread_cond_init(&j->cv, NULL);
    /* No idle timeout while the answer is being generated, however long that takes. */
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)0);
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->mu);
        pthread_cond_destroy(&j->cv);
        sq_srv_job_free(j);
        free(j);
        return send_error(s, c, 503, "the server is shutting down", NULL, NULL);
    }
    if (s->q_tail) s->q_tail->next = j;
    else s->q_head = j;
    s->q_tail = j;
    s->q_len++;
    s->last_arrival = sq_now();
    s->stats.requests++;
    pthread_cond_signal(&s->work_cv);
    /* Wait, looking at the client's socket now and then: one that hangs up cancels its
     * request, so the engine stops its sequences instead of decoding them for nobody. */
    int fd = -1;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci) fd = ci->connect_fd;
    while (!j->done) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 50 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&j->cv, &s->mu, &until);
        if (!j->done && !atomic_load(&j->cancel) && fd >= 0 && peer_gone(fd)) {
            atomic_store(&j->cancel, 1);
            s->stats.cancelled++;
        }
    }
    if (j->ok) {
        s->stats.prompt_tokens += j->prompt_tokens;
        s->stats.completion_tokens += j->completion_tokens;
    }
    pthread_mutex_unlock(&s->mu);
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)SQ_MAX(s->o.idle_timeout_s, 1));
    enum MHD_Result ret;
    if (!j->ok && atomic_load(&j->cancel)) {
        ret = MHD_NO; /* nobody to answer: close, and count it as cancelled, not as an error */
    } else if (j->ok) {
        uint64_t id = atomic_fetch_add(&s->next_id, 1);
        if (j->stream)
            ret = send_body(c, 200, sq_srv_stream_body(j, s->model_name, id, (long)time(NULL)), "text/event-stream");
        else
            ret = send_json(c, 200, sq_srv_response_json(j, s->model_name, id, (long)time(NULL)));
    } else {
        ret = send_error(s, c, (unsigned)(j->http_status ? j->http_status : 500), j->error ? j->error : "failed",
                         NULL, NULL);
    }
    pthread_cond_destroy(&j->cv);
    sq_srv_job_free(j);
    free(j);
    return ret;
}

static enum MHD_Result handle_models(sq_server *s, struct MHD_Connection *c) {
    return send_json(c, 200, sq_srv_models_json(s->model_name, (long)time(NULL)));
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    sq_server *s = cls;
    conn_state *cs = *con_cls;
    if (!cs) {
        cs = calloc(1, sizeof *cs);
        if (!cs) return MHD_NO;
        *con_cls = cs;
        atomic_fetch_add(&s->open_requests, 1);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > s->o.max_body) cs->too_big = 1;
        return MHD_YES;
    }
    if (*upload_size) {
        /* Past the limit the rest is read and dropped, so the client gets its 413. */
        if (!cs->too_big && cs->body.len + *upload_size <= s->o.max_body) {
            if (sq_buf_append(&cs->body, upload, *upload_size)) cs->too_big = 1;
        } else {
            cs->too_big = 1;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    int is_post = !strcmp(method, MHD_HTTP_METHOD_POST), is_get = !strcmp(method, MHD_HTTP_METHOD_GET);
    int chat = !strcmp(url, "/v1/chat/completions");
    int gen = chat || !strcmp(url, "/v1/completions");
    if (gen) {
        if (!is_post) return send_error(s, c, 405, "use POST for this endpoint", NULL, NULL);
        /* As vLLM: a body declared as anything but JSON is refused (none declared is read). */
        const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (ct && strncasecmp(ct, "application/json", 16) != 0)
            return send_error(s, c, 415, "Unsupported Media Type: only 'application/json' is allowed", NULL, NULL);
        if (cs->too_big) {
            char m[128];
            snprintf(m, sizeof m, "the request body is larger than this server's limit of %zu bytes", s->o.max_body);
            return send_error(s, c, 413, m, NULL, NULL);
        }
        return handle_generate(s, c, cs, chat);
    }
    if (!strcmp(url, "/health")) {
        if (!is_get) return send_error(s, c, 405, "use GET for this endpoint", NULL, NULL);
        return send_json(c, 200, sq_strdup("{\"status\":\"ok\"}"));
    }
    if (!strcmp(url, "/v1/models")) {
        if (!is_get) return send_error(s, c, 405, "use GET for this endpoint", NULL, NULL);
        return handle_models(s, c);
    }
    char m[300];
    snprintf(m, sizeof m, "no endpoint %.200s", url);
    return send_error(s, c, 404, m, NULL, NULL);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode tc) {
    sq_server *s = cls;
    conn_state *cs = *con_cls;
    if (cs) {
        sq_buf_free(&cs->body);
        free(cs);
        *con_cls = NULL;
        atomic_fetch_sub(&s->open_requests, 1);
    }
}

static void free_server(sq_server *s) {
    free(s->host);
    free(s->model_name);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->work_cv);
    free(s);
}

int sq_server_open(sq_server **out, sq_backend *b, const sq_server_opts *o, sq_err *e) {
    *out = NULL;
    sq_server_opts def;
    if (!o) {
        sq_server_opts_default(&def);
        o = &def;
    }
    if (o->port < 0 || o->port > 65535) return sq_fail(e, SQ_EINVAL, "port %d is out of range 0..65535", o->port);
    sq_server *s = calloc(1, sizeof *s);
    if (!s) return sq_fail(e, SQ_ENOMEM, "out of memory");
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work_cv, NULL);
    s->b = b;
    s->o = *o;
    s->host = sq_strdup(o->host ? o->host : "127.0.0.1");
    s->model_name = sq_strdup(o->model_name && *o->model_name ? o->model_name : b->name);
    if (!s->host || !s->model_name) {
        free_server(s);
        return sq_fail(e, SQ_ENOMEM, "out of memory");
    }
    s->o.host = s->host;
    s->o.model_name = s->model_name;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
    if (inet_pton(AF_INET, s->host, &addr.sin_addr) != 1) {
        free_server(s);
        return sq_fail(e, SQ_EINVAL, "host '%s' is not an IPv4 address", o->host);
    }
    if (pthread_create(&s->batcher, NULL, batcher_main, s)) {
        free_server(s);
        return sq_fail(e, SQ_EIO, "could not start the batcher thread");
    }
    s->batcher_started = 1;
    s->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC, 0, NULL,
                            NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)(o->max_connections > 0 ? o->max_connections : 1024),
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(o->idle_timeout_s > 0 ? o->idle_timeout_s : 30),
                            MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_LISTENING_ADDRESS_REUSE,
                            (unsigned)1, MHD_OPTION_END);
    if (!s->d) {
        int err = errno;
        pthread_mutex_lock(&s->mu);
        s->stopping = 1;
        pthread_cond_broadcast(&s->work_cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->batcher, NULL);
        free_server(s);
        return sq_fail(e, SQ_EIO, "could not listen on %s:%d: %s", o->host ? o->host : "127.0.0.1", o->port,
                       err ? strerror(err) : "libmicrohttpd refused to start");
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : o->port;
    *out = s;
    return 0;
}

void sq_server_shutdown(sq_server *s) {
    if (!s || s->shut) return;
    s->shut = 1;
    /* New connections are refused at once; requests already queued are answered 503 by
     * the batcher after the batch in progress finishes, which frees their threads. */
    MHD_socket fd = MHD_quiesce_daemon(s->d);
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->work_cv);
    pthread_mutex_unlock(&s->mu);
    if (s->batcher_started) pthread_join(s->batcher, NULL);
    /* Every job is answered now, but a connection thread may not yet have written its answer:
     * give them until the idle timeout (at most 10 s) to finish before the daemon stops. */
    double limit = sq_now() + SQ_MIN(SQ_MAX(s->o.idle_timeout_s, 1), 10);
    while (atomic_load(&s->open_requests) > 0 && sq_now() < limit) usleep(1000);
    MHD_stop_daemon(s->d); /* joins the connection threads: every answer is counted */
    s->d = NULL;
    if (fd != MHD_INVALID_SOCKET) close(fd);
}

void sq_server_close(sq_server *s) {
    if (!s) return;
    sq_server_shutdown(s);
    free_server(s);
}
