/* A backend for stage tests whose every answer the test decides: a reply function maps a
 * request (its prompt or last message, its seed with the 53 bits a JSON request carries, the
 * sample index) to a text and a finish reason, or to a failure. It answers in reverse order
 * (answers may arrive in any order), can sleep per request (so a run lasts long enough to be
 * killed), and can be served over HTTP by the project's own server, so the commands are
 * tested through the OpenAI-compatible path, retries, 500s and all. Header-only: each test
 * binary is one file. */
#ifndef SQ_TEST_SCRIPTED_BACKEND_H
#define SQ_TEST_SCRIPTED_BACKEND_H

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "scalequest/backend.h"
#include "scalequest/net.h"

#define SCRIPT_SEED_MASK ((UINT64_C(1) << 53) - 1)

/* Fill text (cap bytes) and *finish; return 0, or 1 to fail the request. */
typedef int (*script_fn)(void *user, const char *input, uint64_t seed, int k, char *text, size_t cap,
                         const char **finish);

typedef struct scripted {
    sq_backend base;
    script_fn fn;
    void *user;
    int delay_us;
    pthread_mutex_t mu;
    int requests;
} scripted;

static int scripted_generate(sq_backend *b, const sq_gen_request *reqs, int n, sq_gen_callback cb, void *user,
                             sq_err *e) {
    scripted *s = (scripted *)b;
    for (int i = n - 1; i >= 0; i--) {
        const sq_gen_request *r = &reqs[i];
        const char *in = r->prompt ? r->prompt : r->n_messages ? r->messages[r->n_messages - 1].content : "";
        int nc = r->params.n > 0 ? r->params.n : 1;
        if (nc > 64) nc = 64;
        static __thread char text[64][1024];
        sq_gen_choice ch[64];
        int fail = 0;
        for (int k = 0; k < nc && !fail; k++) {
            const char *fin = "stop";
            text[k][0] = 0;
            fail = s->fn(s->user, in, r->params.seed & SCRIPT_SEED_MASK, k, text[k], sizeof text[k], &fin);
            ch[k] = (sq_gen_choice){.text = text[k], .n_tokens = (int)strlen(text[k]) / 4 + 1, .finish_reason = fin};
        }
        if (s->delay_us) usleep((useconds_t)s->delay_us);
        pthread_mutex_lock(&s->mu);
        s->requests++;
        pthread_mutex_unlock(&s->mu);
        sq_gen_result res = {.id = r->id, .ok = !fail, .choices = ch, .n_choices = fail ? 0 : nc,
                             .prompt_tokens = (int)strlen(in) / 4 + 1, .completion_tokens = nc};
        if (fail) res.error = "scripted failure";
        if (cb(user, i, &res)) return sq_fail(e, SQ_EINTR, "stopped");
    }
    return 0;
}

static void scripted_close(sq_backend *b) { (void)b; }

static const struct sq_backend_ops scripted_ops = {scripted_generate, scripted_close};

static void scripted_init(scripted *s, script_fn fn, void *user) {
    memset(s, 0, sizeof *s);
    s->base.ops = &scripted_ops;
    snprintf(s->base.name, sizeof s->base.name, "scripted");
    s->fn = fn;
    s->user = user;
    pthread_mutex_init(&s->mu, NULL);
}

/* Serve it on a free local port; *spec gets the --model spec. NULL on failure. */
static sq_server *scripted_serve(scripted *s, char *spec, size_t cap) {
    sq_server_opts so;
    sq_server_opts_default(&so);
    so.batch_window_s = 0.002;
    so.max_n = 64;
    so.max_tokens_limit = 1 << 16;
    sq_server *srv = NULL;
    sq_err e = {0};
    if (sq_server_open(&srv, &s->base, &so, &e)) {
        fprintf(stderr, "server: %s\n", e.msg);
        return NULL;
    }
    snprintf(spec, cap, "http://127.0.0.1:%d/v1#scripted", sq_server_port(srv));
    return srv;
}

#endif
