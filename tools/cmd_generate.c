/* scalequest generate: sample completions for every prompt of a JSONL file with a model run
 * in this process (HF folder or GGUF) or on an OpenAI-compatible server (http URL). Argument
 * parsing only: the stage is sq_generate_run (generate.h), the model a backend (backend.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_backend.h"
#include "scalequest/backend.h"
#include "scalequest/chat_template.h"
#include "scalequest/generate.h"
#include "scalequest/model.h"

#define CMD "generate"

static int cmd_generate(int argc, char **argv) {
    const char *model = NULL, *in = NULL, *out = NULL, *field = "prompt", *failed = NULL;
    const char *shard = NULL, *tpl_spec = NULL, *tok_path = NULL;
    int64_t n = 1, max_tokens = 256, top_k = 0;
    double temperature = 1.0, top_p = 1.0, min_p = 0.0;
    int logprobs = 0;
    sq_strlist stop = {0};
    sq_cli_backend cb;
    sq_opt opts[16 + SQ_CLI_BACKEND_NOPTS] = {
        {"model", SQ_OPT_STR, &model, "PATH|URL", "HF folder, GGUF file, or http(s)://host:port/v1#model"},
        {"in", SQ_OPT_STR, &in, "FILE", "prompts (JSONL: id + prompt or messages)"},
        {"out", SQ_OPT_STR, &out, "FILE", "output JSONL (appended; ids already there are skipped)"},
        {"failed", SQ_OPT_STR, &failed, "FILE", "append {id, error} of requests that failed (JSONL)"},
        {"field", SQ_OPT_STR, &field, "NAME", "the prompt field (default prompt)"},
        {"chat-template", SQ_OPT_STR, &tpl_spec, "SPEC",
         "render messages with this template: built-in name, model folder, tokenizer_config.json, .gguf or Jinja"},
        {"shard", SQ_OPT_STR, &shard, "I/N", "only the records of shard I of N (by id hash)"},
        {"n", SQ_OPT_INT, &n, "N", "samples per prompt (default 1)"},
        {"temperature", SQ_OPT_DOUBLE, &temperature, "T", "0 = greedy (default 1)"},
        {"top-p", SQ_OPT_DOUBLE, &top_p, "P", "nucleus sampling (default 1 = off)"},
        {"top-k", SQ_OPT_INT, &top_k, "K", "keep the K most likely tokens (default 0 = off)"},
        {"min-p", SQ_OPT_DOUBLE, &min_p, "P", "drop tokens below P times the best (default 0 = off)"},
        {"max-tokens", SQ_OPT_INT, &max_tokens, "N", "tokens per completion at most (default 256)"},
        {"stop", SQ_OPT_LIST, &stop, "S", "stop string (repeatable; not included in the output)"},
        {"logprobs", SQ_OPT_FLAG, &logprobs, NULL, "also write token_ids and their logprobs"},
        {"tokenizer", SQ_OPT_STR, &tok_path, "PATH", "local: tokenizer.json, a folder or .gguf holding one (for folders without)"},
    };
    sq_cli_backend_options(&cb, opts + 16);
    int npos, rc = sq_cli_parse(argc, argv, "--model PATH --in FILE --out FILE [options]", opts, SQ_ARRAY_LEN(opts),
                                NULL, 0, &npos);
    if (rc >= 0) return rc;
    if (!model || !in || !out) return sq_cli_usage_error(CMD, "--model, --in and --out are required");
    if (n < 1 || n > 1024) return sq_cli_usage_error(CMD, "--n must be 1..1024");
    if (max_tokens < 0 || max_tokens > 1 << 20) return sq_cli_usage_error(CMD, "--max-tokens out of range");
    if (temperature < 0 || top_p <= 0 || top_p > 1 || min_p < 0 || min_p > 1 || top_k < 0)
        return sq_cli_usage_error(CMD, "sampling options out of range");
    sq_backend_opts bo;
    char msg[160];
    if (sq_cli_backend_fill(&cb, &bo, msg, sizeof msg)) return sq_cli_usage_error(CMD, "%s", msg);
    bo.tokenizer = tok_path;
    sq_progress_set_quiet(sq_common.quiet);

    sq_generate_opts go;
    sq_generate_opts_default(&go);
    go.stage.in = in;
    go.stage.out = out;
    go.stage.failed = failed;
    go.field = field;
    sq_err e = {0};
    if (shard && sq_stage_parse_shard(shard, &go.stage.shard_index, &go.stage.shard_count, &e))
        return sq_cli_usage_error(CMD, "%s", e.msg);
    sq_gen_params *p = &go.params;
    p->n = (int)n;
    p->max_tokens = (int)max_tokens;
    p->temperature = (float)temperature;
    p->top_p = (float)top_p;
    p->top_k = (int)top_k;
    p->min_p = (float)min_p;
    p->stop = stop.items;
    p->n_stop = stop.n;
    p->logprobs = logprobs;
    p->seed = sq_common.seed;

    sq_chat_template *tpl = NULL;
    if (tpl_spec && sq_chat_template_open(&tpl, tpl_spec, &e)) return sq_cli_fail(CMD, "%s", e.msg);
    go.chat_template = tpl;
    sq_backend *b = NULL;
    /* The model first: a model that does not load leaves no output file behind. */
    if (sq_backend_open(&b, model, &bo, &e)) {
        sq_chat_template_free(tpl);
        return sq_cli_fail(CMD, "%s", e.msg);
    }
    rc = sq_generate_run(b, &go, NULL, &e);
    sq_backend_close(b);
    sq_chat_template_free(tpl);
    if (rc) return sq_cli_fail(CMD, "%s", e.msg);
    return SQ_EXIT_OK;
}

SQ_COMMAND(generate, "generate", "sample completions for a JSONL of prompts (local model or http server)", cmd_generate);
