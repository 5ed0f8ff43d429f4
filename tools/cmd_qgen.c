/* scalequest qgen: questions from scratch, sampled from a question generator's bare
 * user-turn prefix (ScaleQuest section 2.1). Argument parsing only: the stage is sq_qgen_run
 * (qgen.h). */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "cli_model.h"
#include "scalequest/chat_template.h"
#include "scalequest/qgen.h"

#define CMD "qgen"

static int cmd_qgen(int argc, char **argv) {
    sq_cli_model m;
    sq_cli_model_default(&m);
    const char *out = NULL, *failed = NULL, *dropped = NULL, *shard = NULL, *chat_spec = NULL;
    int64_t n = -1, start = 0, max_tokens = 512, top_k = 0, chunk = 256;
    double temperature = 1.0, top_p = 0.99, min_p = 0.0;
    sq_opt opts[] = {
        {"model", SQ_OPT_STR, &m.spec, "SPEC", "question generator: HF folder, GGUF, http(s)://host:port/v1#name"},
        {"n-questions", SQ_OPT_INT, &n, "N", "questions to sample (ids q000000 ...)"},
        {"out", SQ_OPT_STR, &out, "FILE", "questions JSONL {id, query} (appended; a rerun resumes)"},
        {"dropped", SQ_OPT_STR, &dropped, "FILE", "dropped records (default: OUT with .dropped.jsonl)"},
        {"failed", SQ_OPT_STR, &failed, "FILE", "append {id, error} of requests that failed"},
        {"shard", SQ_OPT_STR, &shard, "I/N", "only the ids of shard I of N (by id hash)"},
        {"start", SQ_OPT_INT, &start, "I", "index of the first id (default 0)"},
        {"chat-template", SQ_OPT_STR, &chat_spec, "SPEC",
         "template whose user-turn prefix is sampled from (default: the local model's own; required for a server)"},
        {"temperature", SQ_OPT_DOUBLE, &temperature, "T", "default 1.0 (the paper's)"},
        {"top-p", SQ_OPT_DOUBLE, &top_p, "P", "default 0.99 (the paper's)"},
        {"top-k", SQ_OPT_INT, &top_k, "K", "default 0 = off"},
        {"min-p", SQ_OPT_DOUBLE, &min_p, "P", "default 0 = off"},
        {"max-tokens", SQ_OPT_INT, &max_tokens, "N", "new tokens at most; longer questions are dropped (default 512)"},
        {"chunk", SQ_OPT_INT, &chunk, "N", "requests per backend batch (default 256)"},
        SQ_CLI_MODEL_OPTS(&m),
    };
    int npos, rc = sq_cli_parse(argc, argv, "--model SPEC --n-questions N --out FILE [options]", opts,
                                SQ_ARRAY_LEN(opts), NULL, 0, &npos);
    if (rc >= 0) return rc;
    if (!m.spec || !out || n < 0) return sq_cli_usage_error(CMD, "--model, --n-questions and --out are required");
    if (n > (int64_t)1 << 40 || start < 0) return sq_cli_usage_error(CMD, "--n-questions or --start out of range");
    if (max_tokens < 1 || max_tokens > 1 << 20 || chunk < 1 || chunk > 1 << 20)
        return sq_cli_usage_error(CMD, "--max-tokens and --chunk must be positive");
    if (temperature < 0 || top_p <= 0 || top_p > 1 || min_p < 0 || min_p > 1 || top_k < 0)
        return sq_cli_usage_error(CMD, "sampling options out of range");
    sq_progress_set_quiet(sq_common.quiet);

    sq_qgen_opts o;
    sq_qgen_opts_default(&o);
    o.stage.out = out;
    o.stage.dropped = dropped;
    o.stage.failed = failed;
    o.n_questions = n;
    o.start = start;
    o.chunk = (int)chunk;
    o.params.max_tokens = (int)max_tokens;
    o.params.temperature = (float)temperature;
    o.params.top_p = (float)top_p;
    o.params.top_k = (int)top_k;
    o.params.min_p = (float)min_p;
    o.params.seed = sq_common.seed;
    sq_err e = {0};
    if (shard && sq_stage_parse_shard(shard, &o.stage.shard_index, &o.stage.shard_count, &e))
        return sq_cli_usage_error(CMD, "--shard: %s", e.msg);
    sq_chat_template *t = NULL;
    if (sq_cli_model_template(m.spec, chat_spec, &t, &e)) return sq_cli_fail(CMD, "%s", e.msg);
    sq_buf prefix = {0};
    if (sq_qgen_use_template(&o, t, &prefix, &e)) {
        sq_chat_template_free(t);
        return sq_cli_fail(CMD, "%s", e.msg);
    }
    sq_backend *b = NULL;
    /* The model first: a model that does not load leaves no output file behind. */
    rc = sq_cli_model_open(&m, &b, &e);
    if (rc == 0) rc = sq_qgen_run(b, &o, NULL, &e);
    sq_backend_close(b);
    sq_buf_free(&prefix);
    sq_chat_template_free(t);
    if (rc) return sq_cli_fail(CMD, "%s", e.msg);
    return SQ_EXIT_OK;
}

SQ_COMMAND(qgen, "qgen", "generate questions from scratch from a question generator's user-turn prefix", cmd_qgen);
