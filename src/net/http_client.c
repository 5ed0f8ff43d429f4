/* The OpenAI-compatible client backend: libcurl multi, retries, load spreading.
 *
 * One thread drives every transfer. A request is started when a slot is free (at most
 * `concurrency` in flight) on the base URL with the fewest transfers in flight; when an
 * attempt fails in a way worth repeating (429, 408, 5xx, timeout, refused or dropped
 * connection, a 200 whose body is not a whole response) it waits backoff = 0.5 s * 2^k with
 * jitter, or the server's Retry-After if longer, then goes again, preferring another URL.
 * After max_retries repeats it is reported failed. Each request reaches the callback exactly
 * once, succeeded or failed, with its id. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net_internal.h"

#define BACKOFF_BASE_S 0.5
#define BACKOFF_CAP_S 30.0
#define RETRY_AFTER_CAP_S 300.0

typedef struct http_backend {
    sq_backend base;
    char **urls; /* base URLs, no trailing '/' */
    int n_urls;
    int *url_busy;
    char *model;
    char *auth_header;
    int concurrency, max_retries;
    double timeout_s;
    sq_rng rng;
    sq_http_stats stats;
    CURLM *multi;
} http_backend;

typedef struct xfer {
    int idx, attempt, url;
    double not_before;
    CURL *easy;
    struct curl_slist *hdrs;
    char *body;
    sq_buf resp;
    char last_error[256];
    int bad_request; /* the last attempt got a 400/413/422: the request itself is wrong */
    sq_oai_result acc; /* choices gathered so far from a server that ignores "n" */
    int topups;
} xfer;

static const struct sq_backend_ops http_ops;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

int sq_backend_is_http(const sq_backend *b) { return b && b->ops == &http_ops; }

int sq_http_backend_stats(const sq_backend *b, sq_http_stats *out, sq_err *e) {
    if (!sq_backend_is_http(b)) return sq_fail(e, SQ_EINVAL, "not an HTTP backend");
    *out = ((const http_backend *)b)->stats;
    return 0;
}

/* Base URL (no trailing '/') and, after '#', the model name; need_model says whether the
 * name is required. */
static int split_spec(const char *spec, int need_model, char **base_url, char **model, sq_err *e) {
    if (base_url) *base_url = NULL;
    if (model) *model = NULL;
    if (strncmp(spec, "http://", 7) && strncmp(spec, "https://", 8))
        return sq_fail(e, SQ_EINVAL, "'%s' is not an http:// or https:// URL", spec);
    const char *hash = strchr(spec, '#');
    if (need_model && (!hash || !hash[1]))
        return sq_fail(e, SQ_EINVAL, "'%s' names no model: write http://host:port/v1#model-name", spec);
    size_t n = hash ? (size_t)(hash - spec) : strlen(spec);
    while (n > 0 && spec[n - 1] == '/') n--;
    const char *host = strstr(spec, "://") + 3;
    if ((size_t)(host - spec) >= n) return sq_fail(e, SQ_EINVAL, "'%s' has no host", spec);
    if (base_url && !(*base_url = sq_strndup(spec, n))) return sq_fail(e, SQ_ENOMEM, "out of memory");
    if (model && hash && !(*model = sq_strdup(hash + 1))) {
        if (base_url) {
            free(*base_url);
            *base_url = NULL;
        }
        return sq_fail(e, SQ_ENOMEM, "out of memory");
    }
    return 0;
}

int sq_http_parse_spec(const char *spec, char **base_url, char **model, sq_err *e) {
    return split_spec(spec, 1, base_url, model, e);
}

static void http_close(sq_backend *b) {
    http_backend *h = (http_backend *)b;
    if (!h) return;
    for (int i = 0; i < h->n_urls; i++) free(h->urls[i]);
    free(h->urls);
    free(h->url_busy);
    free(h->model);
    free(h->auth_header);
    if (h->multi) curl_multi_cleanup(h->multi);
    free(h);
}

int sq_backend_open_http(sq_backend **out, const char *url, const sq_backend_opts *o, sq_err *e) {
    *out = NULL;
    sq_backend_opts def;
    if (!o) {
        sq_backend_opts_default(&def);
        o = &def;
    }
    pthread_once(&curl_once, curl_init_once);
    http_backend *h = calloc(1, sizeof *h);
    if (!h) return sq_fail(e, SQ_ENOMEM, "out of memory");
    h->base.ops = &http_ops;
    int n_urls = 1 + SQ_MAX(o->n_extra_urls, 0);
    h->urls = calloc((size_t)n_urls, sizeof *h->urls);
    h->url_busy = calloc((size_t)n_urls, sizeof *h->url_busy);
    if (!h->urls || !h->url_busy) {
        http_close(&h->base);
        return sq_fail(e, SQ_ENOMEM, "out of memory");
    }
    int rc = sq_http_parse_spec(url, &h->urls[0], &h->model, e);
    if (rc) {
        http_close(&h->base);
        return rc;
    }
    h->n_urls = 1;
    for (int i = 0; i < o->n_extra_urls; i++) {
        /* Extra URLs serve the same model; a "#name" on them is allowed and ignored. */
        char *base = NULL;
        sq_err e2 = {0};
        if ((rc = split_spec(o->extra_urls[i], 0, &base, NULL, &e2))) {
            http_close(&h->base);
            return sq_fail(e, rc, "extra URL %d: %s", i + 1, e2.msg);
        }
        h->urls[h->n_urls++] = base;
    }
    h->concurrency = o->concurrency > 0 ? o->concurrency : 64;
    h->max_retries = o->max_retries >= 0 ? o->max_retries : 6;
    h->timeout_s = o->timeout_s > 0 ? o->timeout_s : 600;
    const char *env = o->api_key_env ? o->api_key_env : "OPENAI_API_KEY";
    const char *key = getenv(env);
    if (key && *key) {
        size_t n = strlen(key) + 32;
        h->auth_header = malloc(n);
        if (!h->auth_header) {
            http_close(&h->base);
            return sq_fail(e, SQ_ENOMEM, "out of memory");
        }
        snprintf(h->auth_header, n, "Authorization: Bearer %s", key);
    }
    sq_rng_seed(&h->rng, (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)h);
    h->multi = curl_multi_init();
    if (!h->multi) {
        http_close(&h->base);
        return sq_fail(e, SQ_ENET, "curl_multi_init failed");
    }
    curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)h->concurrency);
    /* keep every connection open between requests instead of reconnecting */
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)(h->concurrency * h->n_urls + 8));
    snprintf(h->base.name, sizeof h->base.name, "%s", h->model);
    *out = &h->base;
    return 0;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *user) {
    xfer *x = user;
    size_t n = size * nmemb;
    return sq_buf_append(&x->resp, ptr, n) == 0 ? n : 0;
}

static int pick_url(http_backend *h, int avoid) {
    int best = -1;
    for (int i = 0; i < h->n_urls; i++) {
        if (h->n_urls > 1 && i == avoid) continue;
        if (best < 0 || h->url_busy[i] < h->url_busy[best]) best = i;
    }
    return best;
}

static int start_xfer(http_backend *h, const sq_gen_request *reqs, xfer *x, sq_err *e) {
    const sq_gen_request *r = &reqs[x->idx];
    if (!x->body && !(x->body = sq_oai_request_body(h->model, r)))
        return sq_fail(e, SQ_ENOMEM, "out of memory building request %s", r->id ? r->id : "");
    x->url = pick_url(h, x->attempt > 0 ? x->url : -1);
    char url[2048];
    snprintf(url, sizeof url, "%s/%s", h->urls[x->url], r->prompt ? "completions" : "chat/completions");
    x->easy = curl_easy_init();
    if (!x->easy) return sq_fail(e, SQ_ENET, "curl_easy_init failed");
    x->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    x->hdrs = curl_slist_append(x->hdrs, "Expect:");
    if (h->auth_header) x->hdrs = curl_slist_append(x->hdrs, h->auth_header);
    sq_buf_reset(&x->resp);
    CURL *c = x->easy;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, x->hdrs);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, x->body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_PRIVATE, x);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(h->timeout_s * 1000));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(SQ_MIN(h->timeout_s, 30.0) * 1000));
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    if (curl_multi_add_handle(h->multi, c) != CURLM_OK) return sq_fail(e, SQ_ENET, "curl_multi_add_handle failed");
    h->url_busy[x->url]++;
    h->stats.attempts++;
    return 0;
}

static void end_xfer(http_backend *h, xfer *x) {
    if (x->easy) {
        curl_multi_remove_handle(h->multi, x->easy);
        curl_easy_cleanup(x->easy);
        h->url_busy[x->url]--;
    }
    curl_slist_free_all(x->hdrs);
    x->easy = NULL;
    x->hdrs = NULL;
}

/* Transport failures worth repeating: the server may be restarting or overloaded. Bad URLs,
 * unsupported protocols and certificate problems will not fix themselves. */
static int curl_retryable(CURLcode c) {
    switch (c) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_WRITE_ERROR:
        return 0;
    default:
        return 1;
    }
}

static int http_retryable(long status) { return status == 408 || status == 409 || status == 429 || status >= 500; }

static double backoff_s(http_backend *h, int attempt) {
    double d = BACKOFF_BASE_S;
    for (int i = 0; i < attempt && d < BACKOFF_CAP_S; i++) d *= 2;
    d = SQ_MIN(d, BACKOFF_CAP_S);
    return d * (0.5 + 0.5 * sq_rng_uniform(&h->rng));
}

typedef struct run_state {
    http_backend *h;
    const sq_gen_request *reqs;
    xfer *xs;
    sq_gen_callback cb;
    void *user;
    int stop;
} run_state;

static void deliver_failure(run_state *st, xfer *x) {
    const sq_gen_request *r = &st->reqs[x->idx];
    sq_gen_result res = {.id = r->id, .ok = 0, .error = x->last_error, .bad_request = x->bad_request};
    st->h->stats.requests_failed++;
    if (st->cb && st->cb(st->user, x->idx, &res)) st->stop = 1;
}

enum { ATTEMPT_RETRY = 0, ATTEMPT_DELIVERED = 1, ATTEMPT_FAILED = 2, ATTEMPT_TOPUP = 3 };

/* Move src's choices to the end of dst's (dst owns them after). */
static int take_choices(sq_oai_result *dst, sq_oai_result *src) {
    sq_gen_choice *c = realloc(dst->choices, sizeof *c * (size_t)(dst->n_choices + src->n_choices + 1));
    if (!c) return -1;
    memcpy(c + dst->n_choices, src->choices, sizeof *c * (size_t)src->n_choices);
    dst->choices = c;
    dst->n_choices += src->n_choices;
    dst->prompt_tokens += src->prompt_tokens;
    dst->completion_tokens += src->completion_tokens;
    free(src->choices);
    memset(src, 0, sizeof *src);
    return 0;
}

/* What became of one attempt; x->last_error says why when it did not succeed. */
static int finish_attempt(run_state *st, xfer *x, CURLcode code, double *retry_after) {
    http_backend *h = st->h;
    const sq_gen_request *r = &st->reqs[x->idx];
    long status = 0;
    curl_off_t ra = -1;
    *retry_after = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    if (code != CURLE_OK) {
        snprintf(x->last_error, sizeof x->last_error, "%s: %s", h->urls[x->url], curl_easy_strerror(code));
        return curl_retryable(code) ? ATTEMPT_RETRY : ATTEMPT_FAILED;
    }
    if (status != 200) {
        char msg[200];
        sq_oai_error_message(x->resp.data, x->resp.len, msg, sizeof msg);
        snprintf(x->last_error, sizeof x->last_error, "%s: HTTP %ld: %s", h->urls[x->url], status, msg);
        x->bad_request = status == 400 || status == 413 || status == 422;
        if (curl_easy_getinfo(x->easy, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
            *retry_after = SQ_MIN((double)ra, RETRY_AFTER_CAP_S);
        return http_retryable(status) ? ATTEMPT_RETRY : ATTEMPT_FAILED;
    }
    sq_oai_result pr;
    sq_err pe = {0};
    if (sq_oai_parse_response(x->resp.data ? x->resp.data : "", x->resp.len, r->prompt == NULL, &pr, &pe)) {
        /* A 200 with a body we cannot read: a proxy cut it short, or the server broke. */
        snprintf(x->last_error, sizeof x->last_error, "%s: %s", h->urls[x->url], pe.msg);
        return ATTEMPT_RETRY;
    }
    /* Some servers (llama.cpp's Python server among them) ignore "n" and answer one choice:
     * ask again for the rest, with the seed moved on so the samples differ, at most n times. */
    int want = r->params.n > 1 ? r->params.n : 1;
    if (x->acc.n_choices > 0 || (pr.n_choices > 0 && pr.n_choices < want)) {
        if (take_choices(&x->acc, &pr)) {
            sq_oai_result_free(&pr);
            snprintf(x->last_error, sizeof x->last_error, "out of memory gathering choices");
            return ATTEMPT_FAILED;
        }
        if (x->acc.n_choices < want && x->topups < want) {
            sq_gen_request more = *r;
            more.params.n = want - x->acc.n_choices;
            more.params.seed = r->params.seed + (uint64_t)x->acc.n_choices;
            free(x->body);
            if (!(x->body = sq_oai_request_body(h->model, &more))) {
                snprintf(x->last_error, sizeof x->last_error, "out of memory building a request");
                return ATTEMPT_FAILED;
            }
            x->topups++;
            return ATTEMPT_TOPUP;
        }
        pr = x->acc;
        memset(&x->acc, 0, sizeof x->acc);
    }
    sq_gen_result res = {.id = r->id, .ok = 1, .choices = pr.choices, .n_choices = pr.n_choices,
                         .prompt_tokens = pr.prompt_tokens, .completion_tokens = pr.completion_tokens};
    h->stats.requests_ok++;
    h->stats.prompt_tokens += pr.prompt_tokens;
    h->stats.completion_tokens += pr.completion_tokens;
    if (st->cb && st->cb(st->user, x->idx, &res)) st->stop = 1;
    sq_oai_result_free(&pr);
    return ATTEMPT_DELIVERED;
}

static int http_generate(sq_backend *b, const sq_gen_request *reqs, int n, sq_gen_callback cb, void *user,
                         sq_err *e) {
    http_backend *h = (http_backend *)b;
    if (n == 0) return 0;
    run_state st = {.h = h, .reqs = reqs, .cb = cb, .user = user};
    st.xs = calloc((size_t)n, sizeof *st.xs);
    int *delayed = calloc((size_t)n, sizeof *delayed);
    if (!st.xs || !delayed) {
        free(st.xs);
        free(delayed);
        return sq_fail(e, SQ_ENOMEM, "out of memory for %d requests", n);
    }
    int next_fresh = 0, n_delayed = 0, running = 0, done = 0, rc = 0;
    while (done < n && !st.stop) {
        double now = sq_now(), wake = now + 1.0;
        /* Retries whose wait is over go first: they are the oldest requests. */
        for (int i = 0; i < n_delayed && running < h->concurrency;) {
            xfer *x = &st.xs[delayed[i]];
            if (x->not_before <= now) {
                delayed[i] = delayed[--n_delayed];
                if ((rc = start_xfer(h, reqs, x, e))) goto out;
                running++;
            } else {
                wake = SQ_MIN(wake, x->not_before);
                i++;
            }
        }
        while (running < h->concurrency && next_fresh < n) {
            xfer *x = &st.xs[next_fresh];
            x->idx = next_fresh++;
            if ((rc = start_xfer(h, reqs, x, e))) goto out;
            running++;
        }
        int still = 0, numfds = 0;
        curl_multi_perform(h->multi, &still);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(h->multi, &left))) {
            if (m->msg != CURLMSG_DONE) continue;
            xfer *x = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            CURLcode code = m->data.result;
            double retry_after = 0;
            int outcome = finish_attempt(&st, x, code, &retry_after);
            running--;
            if (outcome == ATTEMPT_TOPUP) { /* not a failure: the next request goes at once */
                end_xfer(h, x);
                x->not_before = sq_now();
                delayed[n_delayed++] = x->idx;
                continue;
            }
            if (outcome == ATTEMPT_RETRY && x->attempt < h->max_retries) {
                double wait = SQ_MAX(backoff_s(h, x->attempt), retry_after);
                sq_debug("request %s: %s; retry %d in %.2fs", reqs[x->idx].id ? reqs[x->idx].id : "",
                         x->last_error, x->attempt + 1, wait);
                end_xfer(h, x);
                x->attempt++;
                x->not_before = sq_now() + wait;
                delayed[n_delayed++] = x->idx;
                h->stats.retries++;
                continue;
            }
            if (outcome != ATTEMPT_DELIVERED) deliver_failure(&st, x);
            end_xfer(h, x);
            free(x->body);
            x->body = NULL;
            sq_buf_free(&x->resp);
            sq_oai_result_free(&x->acc);
            done++;
        }
        if (done >= n || st.stop) break;
        /* A finished transfer freed a slot: fill it before waiting on the sockets. */
        if (running < h->concurrency && next_fresh < n) continue;
        double until = wake - sq_now();
        int ms = (int)(SQ_MAX(until, 0.001) * 1000);
        if (running > 0) ms = SQ_MIN(ms, 100);
        curl_multi_poll(h->multi, NULL, 0, SQ_MAX(ms, 1), &numfds);
    }
    if (st.stop) rc = sq_fail(e, SQ_EINTR, "stopped by the caller after %d of %d requests", done, n);
out:
    for (int i = 0; i < n; i++) {
        end_xfer(h, &st.xs[i]);
        free(st.xs[i].body);
        sq_buf_free(&st.xs[i].resp);
        sq_oai_result_free(&st.xs[i].acc);
    }
    free(st.xs);
    free(delayed);
    return rc;
}

static const struct sq_backend_ops http_ops = {http_generate, http_close};
