/* scalequest respond: n chain-of-thought responses per question (respond.h). Argument parsing
 * only. */
#include <stdio.h>

#include "cli.h"
#include "cli_backend.h"
#include "scalequest/respond.h"

#define CMD "respond"

static int cmd_respond(int argc, char **argv) {
    sq_respond_opts o;
    sq_respond_opts_default(&o);
    const char *model = NULL, *shard = NULL;
    int64_t n = o.params.n, max_tokens = o.params.max_tokens, chunk = o.chunk;
    double temperature = o.params.temperature, top_p = o.params.top_p;
    sq_strlist stop = {0};
    sq_cli_backend cb;
    sq_opt opts[16 + SQ_CLI_BACKEND_NOPTS] = {
        {"model", SQ_OPT_STR, &model, "SPEC", "HF folder, GGUF file, or http(s)://host:port/v1#model"},
        {"in", SQ_OPT_STR, &o.stage.in, "FILE", "questions (JSONL: id + query)"},
        {"out", SQ_OPT_STR, &o.stage.out, "FILE", "output JSONL (appended; a rerun resumes)"},
        {"failed", SQ_OPT_STR, &o.stage.failed, "FILE", "append {id, error} of requests that failed"},
        {"field", SQ_OPT_STR, &o.field, "NAME", "the question field (default query)"},
        {"shard", SQ_OPT_STR, &shard, "I/N", "only the records of shard I of N (by id hash)"},
        {"n", SQ_OPT_INT, &n, "N", "responses per question (default 5)"},
        {"temperature", SQ_OPT_DOUBLE, &temperature, "T", "default 0.7"},
        {"top-p", SQ_OPT_DOUBLE, &top_p, "P", "default 0.95"},
        {"max-tokens", SQ_OPT_INT, &max_tokens, "N", "new tokens per response at most (default 2048)"},
        {"stop", SQ_OPT_LIST, &stop, "S", "stop string (repeatable)"},
        {"chat-template", SQ_OPT_STR, &o.chat_template, "SPEC|none",
         "render with this template here (default: the model's, as chat messages); none: plain text"},
        {"instruction", SQ_OPT_STR, &o.instruction, "TEXT|none",
         "appended after the question (default: the CoT one)"},
        {"chunk", SQ_OPT_INT, &chunk, "N", "questions per backend batch (default 64)"},
    };
    sq_cli_backend_options(&cb, opts + 14);
    int npos, rc = sq_cli_parse(argc, argv, "--model SPEC --in FILE --out FILE [--n 5] [options]", opts,
                                14 + SQ_CLI_BACKEND_NOPTS, NULL, 0, &npos);
    if (rc >= 0) return rc;
    if (!model || !o.stage.in || !o.stage.out)
        return sq_cli_usage_error(CMD, "--model, --in and --out are required");
    if (n < 1 || n > 1024) return sq_cli_usage_error(CMD, "--n must be 1..1024");
    if (max_tokens < 1 || max_tokens > 1 << 20) return sq_cli_usage_error(CMD, "--max-tokens out of range");
    if (temperature < 0 || top_p <= 0 || top_p > 1)
        return sq_cli_usage_error(CMD, "sampling options out of range");
    if (chunk < 1 || chunk > 1 << 16) return sq_cli_usage_error(CMD, "--chunk must be 1..65536");
    char msg[160];
    sq_backend_opts bo;
    if (sq_cli_backend_fill(&cb, &bo, msg, sizeof msg)) return sq_cli_usage_error(CMD, "%s", msg);
    sq_err e = {0};
    if (shard && sq_stage_parse_shard(shard, &o.stage.shard_index, &o.stage.shard_count, &e))
        return sq_cli_usage_error(CMD, "--shard: %s", e.msg);
    sq_progress_set_quiet(sq_common.quiet);
    o.params.n = (int)n;
    o.params.max_tokens = (int)max_tokens;
    o.params.temperature = (float)temperature;
    o.params.top_p = (float)top_p;
    o.params.stop = stop.items;
    o.params.n_stop = stop.n;
    o.params.seed = sq_common.seed;
    o.chunk = (int)chunk;
    sq_backend *b = NULL;
    if (sq_backend_open(&b, model, &bo, &e)) return sq_cli_fail(CMD, "%s", e.msg);
    rc = sq_respond_run(b, &o, NULL, &e);
    sq_backend_close(b);
    if (rc) return sq_cli_fail(CMD, "%s", e.msg);
    return SQ_EXIT_OK;
}

SQ_COMMAND(respond, "respond", "n chain-of-thought responses per question, answerless ones dropped",
           cmd_respond);
