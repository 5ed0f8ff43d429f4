/* The backend interface: defaults, and sq_backend_open picking an implementation by spec. */
#include <stdlib.h>
#include <string.h>

#include "scalequest/models.h"
#include "scalequest/backend.h"
#include "scalequest/kernels.h" /* SQ_KV_AUTO */

void sq_gen_params_default(sq_gen_params *p) {
    memset(p, 0, sizeof *p);
    p->max_tokens = 256;
    p->temperature = 1.0f;
    p->top_p = 1.0f;
    p->n = 1;
}

void sq_backend_opts_default(sq_backend_opts *o) {
    memset(o, 0, sizeof *o);
    o->max_batch = 64;
    o->concurrency = 64;
    o->timeout_s = 600;
    o->max_retries = 6;
    o->api_key_env = "OPENAI_API_KEY";
    o->kv_type = SQ_KV_AUTO;
}

static int is_http(const char *spec) {
    return !strncmp(spec, "http://", 7) || !strncmp(spec, "https://", 8);
}

int sq_backend_open(sq_backend **b, const char *spec, const sq_backend_opts *o, sq_err *e) {
    *b = NULL;
    sq_backend_opts def;
    if (!o) {
        sq_backend_opts_default(&def);
        o = &def;
    }
    if (!spec || !*spec) return sq_fail(e, SQ_EINVAL, "empty model spec");
    if (is_http(spec)) return sq_backend_open_http(b, spec, o, e);
    if (!strncmp(spec, "local:", 6)) {
        if (!spec[6]) return sq_fail(e, SQ_EINVAL, "model spec 'local:' names no path");
        return sq_backend_open_local(b, spec + 6, o, e);
    }
    if (sq_file_exists(spec) || sq_dir_exists(spec) || sq_models_find(spec)) /* a registry name: models.h */
        return sq_backend_open_local(b, spec, o, e);
    return sq_fail(e, SQ_ENOTFOUND,
                   "model spec '%s' is neither an existing path, a known model name (scalequest models), "
                   "'local:PATH', nor an http(s):// URL",
                   spec);
}

int sq_backend_generate(sq_backend *b, const sq_gen_request *reqs, int n, sq_gen_callback cb, void *user,
                        sq_err *e) {
    if (!b || !b->ops || !b->ops->generate) return sq_fail(e, SQ_EINVAL, "generate on a closed backend");
    if (n < 0 || (n > 0 && !reqs)) return sq_fail(e, SQ_EINVAL, "generate: bad request array (n=%d)", n);
    for (int i = 0; i < n; i++) {
        const sq_gen_request *r = &reqs[i];
        if (!!r->prompt == !!r->messages)
            return sq_fail(e, SQ_EINVAL, "request %d (%s): give exactly one of prompt or messages", i,
                           r->id ? r->id : "no id");
        if (r->params.n < 1 || r->params.max_tokens < 0)
            return sq_fail(e, SQ_EINVAL, "request %d (%s): n=%d max_tokens=%d out of range", i,
                           r->id ? r->id : "no id", r->params.n, r->params.max_tokens);
    }
    return b->ops->generate(b, reqs, n, cb, user, e);
}

void sq_backend_close(sq_backend *b) {
    if (b && b->ops && b->ops->close) b->ops->close(b);
}
