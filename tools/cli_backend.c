/* Shared model options of the generating stage commands (cli_backend.h). */
#include "cli_backend.h"

#include "scalequest/model.h"
#include "scalequest/quant.h"

#include <stdio.h>

void sq_cli_backend_options(sq_cli_backend *cb, sq_opt *o) {
    *cb = (sq_cli_backend){.batch = 64, .ctx = 0, .concurrency = 64, .retries = 6, .timeout = 600};
    o[0] = (sq_opt){"batch", SQ_OPT_INT, &cb->batch, "N", "local: sequences decoded together (default 64)"};
    o[1] = (sq_opt){"ctx", SQ_OPT_INT, &cb->ctx, "N",
                    "local: prompt + completion tokens at most (default: model's)"};
    o[2] =
        (sq_opt){"concurrency", SQ_OPT_INT, &cb->concurrency, "N", "remote: requests in flight (default 64)"};
    o[3] = (sq_opt){"url", SQ_OPT_LIST, &cb->urls, "URL",
                    "remote: another base URL of the same model (repeatable)"};
    o[4] = (sq_opt){"timeout", SQ_OPT_DOUBLE, &cb->timeout, "S", "remote: seconds per request (default 600)"};
    o[5] = (sq_opt){"max-retries", SQ_OPT_INT, &cb->retries, "N", "remote: retries per request (default 6)"};
    o[6] = (sq_opt){"api-key-env", SQ_OPT_STR, &cb->key_env, "VAR", "remote: env var with the API key (default OPENAI_API_KEY)"};
    o[7] = (sq_opt){"kv-type", SQ_OPT_STR, &cb->kv_type, "auto|f32|f16|bf16",
                    "local: KV cache elements (default auto: f16 for 16-bit or quantized weights as llama.cpp, "
                    "f32 for f32 ones; f32 is exact, f16/bf16 halve its bytes)"};
    o[8] = (sq_opt){"act-type", SQ_OPT_STR, &cb->act_type, "q8|f32",
                    "local, quantized weights: 8-bit activations as llama.cpp or fp32 (default: q8)"};
}

int sq_cli_backend_fill(const sq_cli_backend *cb, sq_backend_opts *bo, char *msg, size_t cap) {
    if (cb->batch < 1 || cb->batch > 1024 || cb->ctx < 0 || cb->ctx > (1 << 24))
        return snprintf(msg, cap, "--batch must be 1..1024, --ctx >= 0"), -1;
    if (cb->concurrency < 1 || cb->concurrency > 1 << 16 || cb->retries < 0 || cb->retries > 1000 ||
        !(cb->timeout > 0))
        return snprintf(msg, cap, "--concurrency must be 1..65536, --max-retries 0..1000, --timeout > 0"), -1;
    int kvt = cb->kv_type ? sq_kv_type_parse(cb->kv_type) : SQ_KV_AUTO; /* resolved per model: kv_pool.c */
    if (kvt < 0) return snprintf(msg, cap, "--kv-type must be auto, f32, f16 or bf16, not '%s'", cb->kv_type), -1;
    int act = cb->act_type ? sq_act_type_parse(cb->act_type) : SQ_ACT_Q8;
    if (act < 0) return snprintf(msg, cap, "--act-type must be q8 or f32, not '%s'", cb->act_type), -1;
    sq_backend_opts_default(bo);
    bo->kv_type = kvt;
    bo->act_type = act;
    bo->threads = sq_common.threads;
    bo->max_batch = (int)cb->batch;
    bo->ctx_len = (int)cb->ctx;
    bo->concurrency = (int)cb->concurrency;
    bo->max_retries = (int)cb->retries;
    bo->timeout_s = cb->timeout;
    if (cb->key_env) bo->api_key_env = cb->key_env;
    bo->extra_urls = cb->urls.items;
    bo->n_extra_urls = cb->urls.n;
    return 0;
}
