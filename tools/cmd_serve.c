/* scalequest serve: expose a model (in-process engine or a remote server) over the
 * OpenAI-compatible HTTP API until SIGTERM or SIGINT. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "scalequest/backend.h"
#include "scalequest/chat_template.h"
#include "scalequest/net.h"

static int cmd_serve(int argc, char **argv) {
    const char *model = NULL, *host = "127.0.0.1", *name = NULL, *key_env = NULL, *tpl_spec = NULL;
    const char *tok_path = NULL;
    int64_t port = 8000, max_body = 1 << 20, max_tokens = 4096, max_batch = 64, ctx_len = 0, concurrency = 64;
    double window_ms = 5;
    sq_strlist urls = {0};
    const sq_opt opts[] = {
        {"model", SQ_OPT_STR, &model, "SPEC", "local:PATH, a model path, or http(s)://host:port/v1#name (required)"},
        {"port", SQ_OPT_INT, &port, "N", "TCP port (default 8000; 0 picks a free one)"},
        {"host", SQ_OPT_STR, &host, "ADDR", "IPv4 address to listen on (default 127.0.0.1)"},
        {"model-name", SQ_OPT_STR, &name, "S", "name in /v1/models and requests (default: the model's)"},
        {"chat-template", SQ_OPT_STR, &tpl_spec, "SPEC",
         "render chat requests here: built-in name, model folder, tokenizer_config.json, .gguf or Jinja file"},
        {"max-body", SQ_OPT_INT, &max_body, "BYTES", "largest request body (default 1048576)"},
        {"max-tokens", SQ_OPT_INT, &max_tokens, "N", "largest max_tokens a request may ask (default 4096)"},
        {"max-batch", SQ_OPT_INT, &max_batch, "N", "requests decoded together (default 64)"},
        {"batch-window", SQ_OPT_DOUBLE, &window_ms, "MS", "idle: gather requests arriving this close together (default 5)"},
        {"ctx-len", SQ_OPT_INT, &ctx_len, "N", "local: KV cache length per sequence (default: model's)"},
        {"tokenizer", SQ_OPT_STR, &tok_path, "PATH", "local: tokenizer.json, a folder or .gguf holding one (for folders without)"},
        {"concurrency", SQ_OPT_INT, &concurrency, "N", "remote: requests in flight upstream (default 64)"},
        {"url", SQ_OPT_LIST, &urls, "URL", "remote: another base URL of the same model (repeatable)"},
        {"api-key-env", SQ_OPT_STR, &key_env, "VAR", "remote: env var holding the API key (default OPENAI_API_KEY)"},
    };
    int npos;
    int rc = sq_cli_parse(argc, argv, "--model SPEC [--port N] [--host ADDR]", opts, SQ_ARRAY_LEN(opts), NULL, 0,
                          &npos);
    if (rc >= 0) return rc;
    if (!model) return sq_cli_usage_error("serve", "--model is required");
    if (port < 0 || port > 65535) return sq_cli_usage_error("serve", "--port %lld is out of range", (long long)port);
    if (max_body < 64 || max_tokens < 1 || max_batch < 1 || window_ms < 0 || concurrency < 1)
        return sq_cli_usage_error("serve", "--max-body, --max-tokens, --max-batch, --concurrency must be positive");
    if (strcmp(host, "127.0.0.1") && strcmp(host, "localhost"))
        sq_warn("serve: listening on %s, reachable from other machines; there is no authentication", host);
    if (!strcmp(host, "localhost")) host = "127.0.0.1";

    /* Block the stop signals before any thread starts, so every thread inherits the mask
     * and the main thread alone receives them through sigwait. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    sq_backend_opts bo;
    sq_backend_opts_default(&bo);
    bo.threads = sq_common.threads;
    bo.max_batch = (int)max_batch;
    bo.tokenizer = tok_path;
    bo.ctx_len = (int)ctx_len;
    bo.concurrency = (int)concurrency;
    if (key_env) bo.api_key_env = key_env;
    bo.extra_urls = urls.items;
    bo.n_extra_urls = urls.n;
    sq_err e = {0};
    sq_chat_template *tpl = NULL;
    if (tpl_spec && sq_chat_template_open(&tpl, tpl_spec, &e)) return sq_cli_fail("serve", "%s", e.msg);
    sq_backend *b = NULL;
    if (sq_backend_open(&b, model, &bo, &e)) {
        sq_chat_template_free(tpl);
        return sq_cli_fail("serve", "%s", e.msg);
    }

    sq_server_opts so;
    sq_server_opts_default(&so);
    so.host = host;
    so.port = (int)port;
    so.max_body = (size_t)max_body;
    so.max_tokens_limit = (int)max_tokens;
    so.default_max_tokens = (int)SQ_MIN(256, max_tokens);
    so.max_batch = (int)max_batch;
    so.batch_window_s = window_ms / 1000.0;
    so.model_name = name;
    so.chat_template = tpl;
    sq_server *s = NULL;
    if (sq_server_open(&s, b, &so, &e)) {
        sq_backend_close(b);
        sq_chat_template_free(tpl);
        return sq_cli_fail("serve", "%s", e.msg);
    }
    /* The one line a script waits for (with --port 0 it carries the port chosen). */
    printf("listening on http://%s:%d/v1 model %s\n", host, sq_server_port(s), name ? name : b->name);
    fflush(stdout);
    int sig = 0;
    sigwait(&stop, &sig);
    sq_info("serve: %s received, finishing requests in progress", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    sq_server_stats st;
    sq_server_shutdown(s); /* the 503s of requests still queued are counted here */
    sq_server_get_stats(s, &st);
    sq_server_close(s);
    sq_backend_close(b);
    sq_chat_template_free(tpl);
    if (!sq_common.quiet)
        fprintf(stderr,
                "scalequest: serve: %lld requests (%lld 4xx, %lld 5xx, %lld cancelled by their client) in %lld "
                "batches (largest %lld); %lld prompt + %lld completion tokens\n",
                (long long)st.requests, (long long)st.errors_4xx, (long long)st.errors_5xx, (long long)st.cancelled,
                (long long)st.batches,
                (long long)st.max_batch_seen, (long long)st.prompt_tokens, (long long)st.completion_tokens);
    return SQ_EXIT_OK;
}

SQ_COMMAND(serve, "serve", "serve a model over the OpenAI-compatible HTTP API", cmd_serve);
