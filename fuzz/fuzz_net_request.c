/* libFuzzer target for the OpenAI wire-format parsers: the server's request checker (both
 * endpoints) and the client's response reader, over the same bytes.
 *
 * Beyond "no crash, no sanitizer report", it checks what the server relies on: a request is
 * either refused with a 4xx status and a message, or accepted with exactly one of prompt /
 * messages, parameters inside the server's limits (and, for a list of prompts, one backend
 * request per prompt); and an accepted response has every choice filled in.
 *   make fuzz && build/fuzz/fuzz_net_request -max_total_time=300 fuzz/corpus/net_request
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/net/net_internal.h"

static void check_request(const char *s, size_t n, int chat) {
    sq_server_opts o;
    sq_server_opts_default(&o);
    o.max_tokens_limit = 512;
    sq_srv_job job;
    memset(&job, 0, sizeof job);
    char msg[512];
    const char *param = NULL;
    int st = sq_srv_parse_request(s, n, chat, &o, "m", &job, msg, sizeof msg, &param);
    if (st) {
        if (st < 400 || st > 599 || !msg[0]) __builtin_trap();
    } else {
        const sq_gen_request *r = &job.req;
        if (!!r->prompt == !!r->messages) __builtin_trap();
        if (chat && (r->n_messages < 1 || !r->messages[0].role || !r->messages[0].content)) __builtin_trap();
        if (r->params.max_tokens < 1 || r->params.max_tokens > 512) __builtin_trap();
        if (r->params.n < 1 || r->params.n > o.max_n) __builtin_trap();
        if (r->params.n_stop < 0 || r->params.n_stop > 16) __builtin_trap();
        if (!(r->params.temperature >= 0 && r->params.temperature <= 2)) __builtin_trap();
        if (r->params.logprobs && (r->params.top_logprobs < 0 || r->params.top_logprobs > 20)) __builtin_trap();
        /* one backend request per prompt of a list, each with the job's cancel flag */
        if (sq_srv_job_ready(&job)) __builtin_trap();
        if (job.n_reqs < 1 || job.n_reqs > o.max_batch || (chat && job.n_reqs != 1)) __builtin_trap();
        for (int i = 0; i < job.n_reqs; i++)
            if ((!job.reqs[i].prompt && !job.reqs[i].messages) || job.reqs[i].params.cancel != &job.cancel)
                __builtin_trap();
        if (job.n_choices != job.n_reqs * job.per_req) __builtin_trap();
    }
    sq_srv_job_free(&job);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *s = (const char *)data;
    check_request(s, size, 0);
    check_request(s, size, 1);
    for (int chat = 0; chat < 2; chat++) {
        sq_oai_result r;
        sq_err e;
        if (sq_oai_parse_response(s, size, chat, &r, &e) == 0) {
            if (r.n_choices < 1) __builtin_trap();
            for (int i = 0; i < r.n_choices; i++)
                if (!r.choices[i].text || !r.choices[i].finish_reason) __builtin_trap();
            sq_oai_result_free(&r);
        }
    }
    char msg[200];
    sq_oai_error_message(s, size, msg, sizeof msg);
    return 0;
}
