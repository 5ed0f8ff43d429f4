/* scalequest filter lang | filter solvable: the question filters of ScaleQuest section 2.4.
 * Argument parsing only: the stages are sq_filter_lang_run and sq_filter_solvable_run
 * (filter.h); models are opened with sq_pipeline_backend_open (oracle.h), so `world:` works
 * wherever a server or a model file does. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "scalequest/filter.h"
#include "scalequest/oracle.h"

static int cmd_filter_lang(int argc, char **argv) {
    const char *C = "filter lang";
    sq_filter_lang_opts o;
    sq_filter_lang_opts_default(&o);
    const char *shard = NULL, *lang = "en";
    int skip_bad = 0;
    sq_opt opts[] = {
        {"in", SQ_OPT_STR, &o.stage.in, "FILE", "questions (JSONL with id and query; - for stdin)"},
        {"out", SQ_OPT_STR, &o.stage.out, "FILE", "kept questions (appended; a rerun resumes)"},
        {"dropped", SQ_OPT_STR, &o.stage.dropped, "FILE", "dropped questions with drop_reason (default OUT.dropped.jsonl)"},
        {"lang", SQ_OPT_STR, &lang, "L", "target language: en (default), zh, ru"},
        {"field", SQ_OPT_STR, &o.field, "NAME", "the question field (default query)"},
        {"shard", SQ_OPT_STR, &shard, "I/N", "only the records of shard I of N (by id hash)"},
        {"skip-bad", SQ_OPT_FLAG, &skip_bad, NULL, "count and skip unparsable input lines instead of stopping"},
    };
    int npos, rc = sq_cli_parse(argc, argv, "--in FILE --out FILE [--lang en]", opts, SQ_ARRAY_LEN(opts), NULL, 0, &npos);
    if (rc >= 0) return rc;
    if (!o.stage.in || !o.stage.out) return sq_cli_usage_error(C, "--in and --out are required");
    sq_err e = {0};
    if (sq_lang_parse(lang, &o.lang, &e)) return sq_cli_usage_error(C, "--lang: %s", e.msg);
    if (shard && sq_stage_parse_shard(shard, &o.stage.shard_index, &o.stage.shard_count, &e))
        return sq_cli_usage_error(C, "--shard: %s", e.msg);
    o.stage.skip_bad = skip_bad;
    sq_progress_set_quiet(sq_common.quiet);
    if (sq_filter_lang_run(&o, NULL, &e)) return sq_cli_fail(C, "%s", e.msg);
    return SQ_EXIT_OK;
}

static int cmd_filter_solvable(int argc, char **argv) {
    const char *C = "filter solvable";
    sq_filter_solvable_opts o;
    sq_filter_solvable_opts_default(&o);
    const char *model = NULL, *shard = NULL, *key_env = NULL;
    int64_t max_tokens = o.params.max_tokens, batch = 64, ctx = 0, concurrency = 64, retries = 6;
    double temperature = o.params.temperature, timeout = 600;
    int skip_bad = 0;
    sq_strlist urls = {0};
    sq_opt opts[] = {
        {"model", SQ_OPT_STR, &model, "SPEC",
         "the judge: HF folder, GGUF, http(s)://host:port/v1#name, or world: (the tiny world's oracle)"},
        {"in", SQ_OPT_STR, &o.stage.in, "FILE", "questions (JSONL with id and query; - for stdin)"},
        {"out", SQ_OPT_STR, &o.stage.out, "FILE", "kept questions with verdict and judge_reply (appended; resumes)"},
        {"dropped", SQ_OPT_STR, &o.stage.dropped, "FILE", "dropped questions (default OUT.dropped.jsonl)"},
        {"failed", SQ_OPT_STR, &o.stage.failed, "FILE", "append {id, error} of requests that failed (a rerun retries)"},
        {"keep-unknown", SQ_OPT_FLAG, &o.keep_unknown, NULL, "keep questions whose reply has no clear Yes/No"},
        {"raw-prompt", SQ_OPT_FLAG, &o.raw_prompt, NULL, "send the prompt as raw text, not a chat turn (models without a chat template)"},
        {"field", SQ_OPT_STR, &o.field, "NAME", "the question field (default query)"},
        {"shard", SQ_OPT_STR, &shard, "I/N", "only the records of shard I of N (by id hash)"},
        {"skip-bad", SQ_OPT_FLAG, &skip_bad, NULL, "count and skip unparsable input lines instead of stopping"},
        {"max-tokens", SQ_OPT_INT, &max_tokens, "N", "judge reply length at most (default 2048)"},
        {"temperature", SQ_OPT_DOUBLE, &temperature, "T", "judge sampling temperature (default 0 = greedy)"},
        {"batch", SQ_OPT_INT, &batch, "N", "local: sequences decoded together (default 64)"},
        {"ctx", SQ_OPT_INT, &ctx, "N", "local: prompt + reply tokens at most (default: model's)"},
        {"concurrency", SQ_OPT_INT, &concurrency, "N", "remote: requests in flight (default 64)"},
        {"url", SQ_OPT_LIST, &urls, "URL", "remote: another base URL of the same model (repeatable)"},
        {"timeout", SQ_OPT_DOUBLE, &timeout, "S", "remote: seconds per request (default 600)"},
        {"max-retries", SQ_OPT_INT, &retries, "N", "remote: retries per request (default 6)"},
        {"api-key-env", SQ_OPT_STR, &key_env, "VAR", "remote: env var with the API key (default OPENAI_API_KEY)"},
    };
    int npos, rc = sq_cli_parse(argc, argv, "--model SPEC --in FILE --out FILE [--keep-unknown]", opts,
                                SQ_ARRAY_LEN(opts), NULL, 0, &npos);
    if (rc >= 0) return rc;
    if (!model || !o.stage.in || !o.stage.out) return sq_cli_usage_error(C, "--model, --in and --out are required");
    if (max_tokens < 1 || max_tokens > 1 << 20 || temperature < 0) return sq_cli_usage_error(C, "--max-tokens or --temperature out of range");
    if (batch < 1 || batch > 1024 || ctx < 0 || concurrency < 1 || concurrency > 1 << 16 || retries < 0 ||
        retries > 1000 || !(timeout > 0))
        return sq_cli_usage_error(C, "--batch, --ctx, --concurrency, --max-retries or --timeout out of range");
    sq_err e = {0};
    if (shard && sq_stage_parse_shard(shard, &o.stage.shard_index, &o.stage.shard_count, &e))
        return sq_cli_usage_error(C, "--shard: %s", e.msg);
    o.stage.skip_bad = skip_bad;
    o.params.max_tokens = (int)max_tokens;
    o.params.temperature = (float)temperature;
    o.params.seed = sq_common.seed;
    sq_progress_set_quiet(sq_common.quiet);
    sq_backend_opts bo;
    sq_backend_opts_default(&bo);
    bo.threads = sq_common.threads;
    bo.max_batch = (int)batch;
    bo.ctx_len = (int)ctx;
    bo.concurrency = (int)concurrency;
    bo.max_retries = (int)retries;
    bo.timeout_s = timeout;
    if (key_env) bo.api_key_env = key_env;
    bo.extra_urls = urls.items;
    bo.n_extra_urls = urls.n;
    sq_backend *b = NULL;
    /* the model first: one that does not open leaves no output behind */
    if (sq_pipeline_backend_open(&b, model, &bo, &e)) return sq_cli_fail(C, "%s", e.msg);
    rc = sq_filter_solvable_run(b, &o, NULL, &e);
    sq_backend_close(b);
    if (rc) return sq_cli_fail(C, "%s", e.msg);
    return SQ_EXIT_OK;
}

static int cmd_filter(int argc, char **argv) {
    const char *sub = argc > 1 ? argv[1] : "";
    if (!strcmp(sub, "lang") || !strcmp(sub, "solvable")) {
        char name[32];
        snprintf(name, sizeof name, "filter %s", sub);
        argv[1] = name; /* "Usage: scalequest filter lang ..." */
        return !strcmp(sub, "lang") ? cmd_filter_lang(argc - 1, argv + 1) : cmd_filter_solvable(argc - 1, argv + 1);
    }
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
        printf("Usage: scalequest filter lang --in FILE --out FILE [--lang en]\n"
               "       scalequest filter solvable --model SPEC --in FILE --out FILE [--keep-unknown]\n\n"
               "  lang      keep questions written in the target script (math symbols, digits, LaTeX allowed)\n"
               "  solvable  keep questions a judge model calls solvable (the paper's Figure 11 prompt)\n"
               "Each takes --help.\n");
        return SQ_EXIT_OK;
    }
    return sq_cli_usage_error("filter", "expected a sub-command: lang or solvable (got \"%s\")", sub);
}

SQ_COMMAND(filter, "filter", "question filters: lang (script, mojibake) and solvable (Figure-11 judge)", cmd_filter);
