/* A scripted in-process backend for the stage tests: answers from the question text, so every
 * response is known. "say:X" in the question: sample k answers "Step. The answer is X." (even
 * k) or "So \boxed{X}" (odd k); "mute" in it: every sample lacks a final answer; "half": odd
 * samples lack one. fewer > 0 drops that many choices from every result; "fail" in the
 * question fails the request. Records the last prompt or user message and stop strings. */
#ifndef SQ_TEST_SCRIPT_BACKEND_H
#define SQ_TEST_SCRIPT_BACKEND_H

#include <stdio.h>
#include <string.h>

#include "scalequest/backend.h"

typedef struct script_backend {
    sq_backend base;
    int fewer;
    int requests;
    char last[2048];
    int last_is_chat, last_n_stop, last_n;
    char last_stop0[64];
} script_backend;

static int script_generate(sq_backend *b, const sq_gen_request *reqs, int n, sq_gen_callback cb, void *user,
                           sq_err *e) {
    script_backend *s = (script_backend *)b;
    (void)e;
    for (int i = 0; i < n; i++) {
        const sq_gen_request *q = &reqs[i];
        const char *text = q->messages ? q->messages[q->n_messages - 1].content : q->prompt;
        s->requests++;
        snprintf(s->last, sizeof s->last, "%s", text);
        s->last_is_chat = q->messages != NULL;
        s->last_n_stop = q->params.n_stop;
        s->last_n = q->params.n;
        snprintf(s->last_stop0, sizeof s->last_stop0, "%s", q->params.n_stop ? q->params.stop[0] : "");
        sq_gen_result r = {.id = q->id, .ok = 1};
        if (strstr(text, "fail")) {
            r.ok = 0, r.error = "scripted failure";
            if (cb(user, i, &r)) return SQ_EINTR;
            continue;
        }
        char bufs[8][128];
        sq_gen_choice ch[8];
        int nc = q->params.n - s->fewer;
        if (nc < 0) nc = 0;
        if (nc > 8) nc = 8;
        const char *say = strstr(text, "say:");
        char x[32] = "0";
        if (say) sscanf(say + 4, "%31[^ \n]", x);
        for (int k = 0; k < nc; k++) {
            int mute = strstr(text, "mute") || (strstr(text, "half") && k % 2);
            if (mute)
                snprintf(bufs[k], sizeof bufs[k], "Sample %d: no idea, maybe 12 apples", k);
            else if (k % 2 == 0)
                snprintf(bufs[k], sizeof bufs[k], "Step %d. The answer is %s.", k, x);
            else
                snprintf(bufs[k], sizeof bufs[k], "So \\boxed{%s}", x);
            ch[k] = (sq_gen_choice){.text = bufs[k], .finish_reason = "stop", .n_tokens = 5};
        }
        r.choices = ch;
        r.n_choices = nc;
        r.prompt_tokens = 10;
        r.completion_tokens = 5 * nc;
        if (cb(user, i, &r)) return SQ_EINTR;
    }
    return 0;
}

static void script_close(sq_backend *b) { (void)b; }

static const struct sq_backend_ops script_ops = {script_generate, script_close};

static void script_init(script_backend *s) {
    memset(s, 0, sizeof *s);
    s->base.ops = &script_ops;
    snprintf(s->base.name, sizeof s->base.name, "script");
}

#endif
