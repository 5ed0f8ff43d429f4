/* scalequest eval: zero-shot pass@1 on the Table 1 benchmarks (eval.h). Argument parsing only. */
#include <stdio.h>

#include "cli.h"
#include "cli_backend.h"
#include "scalequest/eval.h"

#define CMD "eval"

static int cmd_eval(int argc, char **argv) {
    sq_eval_opts o;
    sq_eval_opts_default(&o);
    const char *model = NULL;
    int64_t limit = 0, max_tokens = o.params.max_tokens;
    sq_strlist stop = {0}, train = {0};
    sq_cli_backend cb;
    sq_opt opts[11 + SQ_CLI_BACKEND_NOPTS] = {
        {"model", SQ_OPT_STR, &model, "SPEC", "HF folder, GGUF file, or http(s)://host:port/v1#model"},
        {"benchmarks", SQ_OPT_STR, &o.benchmarks, "LIST",
         "gsm8k,math500,math,college_math,olympiadbench (default), minerva_math, NAME=PATH"},
        {"out", SQ_OPT_STR, &o.out_dir, "DIR", "per-item records, results.json (a rerun resumes)"},
        {"limit", SQ_OPT_INT, &limit, "N", "the first N questions of each benchmark (default all)"},
        {"data-dir", SQ_OPT_STR, &o.data_dir, "DIR",
         "benchmark files (default $SQ_ASSETS/data or ../shared/assets/data)"},
        {"max-tokens", SQ_OPT_INT, &max_tokens, "N", "new tokens per answer at most (default 2048)"},
        {"stop", SQ_OPT_LIST, &stop, "S", "stop string (repeatable; default the chat end-of-turn strings)"},
        {"chat-template", SQ_OPT_STR, &o.chat_template, "SPEC|none",
         "render here (default: the model's, as messages)"},
        {"instruction", SQ_OPT_STR, &o.instruction, "TEXT|none", "after the question (default: the CoT one)"},
        {"regrade", SQ_OPT_FLAG, &o.regrade, NULL, "no model: grade OUT/NAME.jsonl's responses again"},
        {"train-data", SQ_OPT_LIST, &train, "FILE",
         "the model's training set (repeatable): warn unless `decontaminate` vouches for it"},
    };
    sq_cli_backend_options(&cb, opts + 11);
    int npos, rc = sq_cli_parse(argc, argv, "--model SPEC --benchmarks LIST [--limit N] --out DIR", opts,
                                11 + SQ_CLI_BACKEND_NOPTS, NULL, 0, &npos);
    if (rc >= 0) return rc;
    if (!o.out_dir || (!model && !o.regrade))
        return sq_cli_usage_error(CMD, "--model and --out are required");
    if (limit < 0 || max_tokens < 1 || max_tokens > 1 << 20)
        return sq_cli_usage_error(CMD, "--limit or --max-tokens out of range");
    char msg[160];
    sq_backend_opts bo;
    if (sq_cli_backend_fill(&cb, &bo, msg, sizeof msg)) return sq_cli_usage_error(CMD, "%s", msg);
    sq_progress_set_quiet(sq_common.quiet);
    o.limit = limit;
    o.params.max_tokens = (int)max_tokens;
    if (stop.n) o.params.stop = stop.items, o.params.n_stop = stop.n;
    o.params.seed = sq_common.seed;
    o.model_name = model ? model : "regrade";
    o.train_data = train.items, o.n_train_data = train.n;
    sq_err e = {0};
    sq_backend *b = NULL;
    if (!o.regrade && sq_backend_open(&b, model, &bo, &e)) return sq_cli_fail(CMD, "%s", e.msg);
    sq_eval_result res[SQ_EVAL_MAX_BENCH];
    int nres = 0;
    rc = sq_eval_run(b, &o, res, &nres, &e);
    if (b) sq_backend_close(b);
    if (rc) return sq_cli_fail(CMD, "%s", e.msg);
    return SQ_EXIT_OK;
}

SQ_COMMAND(eval, "eval", "zero-shot pass@1 on GSM8K, MATH500, MATH, College Math, OlympiadBench", cmd_eval);
