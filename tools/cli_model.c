/* Shared model options of the stage commands (cli_model.h). */
#include "cli_model.h"

#include <string.h>

#include "scalequest/chat_template.h"
#include "scalequest/oracle.h"

void sq_cli_model_default(sq_cli_model *m) {
    memset(m, 0, sizeof *m);
    m->batch = 64, m->concurrency = 64, m->retries = 6, m->timeout = 600;
}

int sq_cli_model_open(const sq_cli_model *m, sq_backend **b, sq_err *e) {
    if (!m->spec) return sq_fail(e, SQ_EINVAL, "--model is required");
    if (m->batch < 1 || m->batch > 1024 || m->ctx < 0)
        return sq_fail(e, SQ_EINVAL, "--batch must be 1..1024, --ctx >= 0");
    if (m->concurrency < 1 || m->concurrency > 1 << 16 || m->retries < 0 || m->retries > 1000 || !(m->timeout > 0))
        return sq_fail(e, SQ_EINVAL, "--concurrency must be 1..65536, --max-retries 0..1000, --timeout > 0");
    sq_backend_opts bo;
    sq_backend_opts_default(&bo);
    bo.threads = sq_common.threads;
    bo.max_batch = (int)m->batch;
    bo.ctx_len = (int)m->ctx;
    bo.concurrency = (int)m->concurrency;
    bo.max_retries = (int)m->retries;
    bo.timeout_s = m->timeout;
    if (m->key_env) bo.api_key_env = m->key_env;
    bo.extra_urls = m->urls.items;
    bo.n_extra_urls = m->urls.n;
    return sq_pipeline_backend_open(b, m->spec, &bo, e);
}

int sq_cli_model_template(const char *model, const char *chat_spec, sq_chat_template **t, sq_err *e) {
    if (chat_spec) return sq_chat_template_open(t, chat_spec, e);
    if (!model) return sq_fail(e, SQ_EINVAL, "no --model to take a chat template from");
    if (!strncmp(model, "http://", 7) || !strncmp(model, "https://", 8) || !strncmp(model, "world:", 6))
        return sq_fail(e, SQ_EINVAL, "%s: a server's chat template cannot be read: give --chat-template", model);
    if (!strncmp(model, "local:", 6)) model += 6;
    return sq_chat_template_open(t, model, e);
}
