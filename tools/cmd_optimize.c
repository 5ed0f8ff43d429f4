/* scalequest optimize: QPO data construction (ScaleQuest section 2.3): each question
 * rewritten by an external LLM (Figure 9: solvability, Figure 10: difficulty), written as a
 * DPO pair {id, prompt, chosen, rejected, direction, optimizer_reply}. Argument parsing only:
 * the stage is sq_optimize_run (optimize.h). */
#include <stdio.h>

#include "cli.h"
#include "cli_model.h"
#include "scalequest/chat_template.h"
#include "scalequest/optimize.h"
#include "scalequest/qgen.h"

#define CMD "optimize"

static int cmd_optimize(int argc, char **argv) {
    sq_cli_model m;
    sq_cli_model_default(&m);
    sq_optimize_opts o;
    sq_optimize_opts_default(&o);
    const char *shard = NULL, *dirs = "mix", *generator = NULL, *prefix = NULL;
    int64_t max_tokens = o.params.max_tokens;
    double temperature = o.params.temperature, top_p = o.params.top_p;
    sq_opt opts[] = {
        {"model", SQ_OPT_STR, &m.spec, "SPEC", "the optimizer LLM: http(s)://host:port/v1#name, world:[TRAIN.jsonl], HF folder, GGUF"},
        {"in", SQ_OPT_STR, &o.stage.in, "FILE", "questions (JSONL: id, query), e.g. from qgen"},
        {"out", SQ_OPT_STR, &o.stage.out, "FILE", "DPO pairs (appended; a rerun resumes)"},
        {"generator", SQ_OPT_STR, &generator, "SPEC",
         "the question generator to be trained (its folder, or a chat template): its user-turn prefix is the pairs' prompt"},
        {"prompt", SQ_OPT_STR, &prefix, "TEXT", "the pairs' prompt text itself (instead of --generator)"},
        {"directions", SQ_OPT_STR, &dirs, "mix|solvability|difficulty|mix:P",
         "Figure 9, Figure 10, or a seeded coin per question (default mix: half each; mix:P sends a share P to Figure 9)"},
        {"dropped", SQ_OPT_STR, &o.stage.dropped, "FILE", "dropped records (default: OUT with .dropped.jsonl)"},
        {"failed", SQ_OPT_STR, &o.stage.failed, "FILE", "append {id, error} of requests that failed"},
        {"shard", SQ_OPT_STR, &shard, "I/N", "only the records of shard I of N (by id hash)"},
        {"field", SQ_OPT_STR, &o.field, "NAME", "question field (default query)"},
        {"raw-prompt", SQ_OPT_FLAG, &o.raw_prompt, NULL, "send the figure's text as raw text, not as a chat user turn"},
        {"temperature", SQ_OPT_DOUBLE, &temperature, "T", "default 0.7"},
        {"top-p", SQ_OPT_DOUBLE, &top_p, "P", "default 1.0"},
        {"max-tokens", SQ_OPT_INT, &max_tokens, "N", "tokens per reply at most (default 2048)"},
        SQ_CLI_MODEL_OPTS(&m),
    };
    int npos, rc = sq_cli_parse(argc, argv, "--model SPEC --in FILE --out FILE --generator DIR [--directions mix]", opts,
                                SQ_ARRAY_LEN(opts), NULL, 0, &npos);
    if (rc >= 0) return rc;
    if (!m.spec || !o.stage.in || !o.stage.out) return sq_cli_usage_error(CMD, "--model, --in and --out are required");
    if (!generator == !prefix)
        return sq_cli_usage_error(CMD, "give --generator (the QFT model whose questions these are) or --prompt TEXT");
    if (max_tokens < 1 || max_tokens > 1 << 20 || temperature < 0 || top_p <= 0 || top_p > 1)
        return sq_cli_usage_error(CMD, "sampling options out of range");
    sq_err e = {0};
    if (sq_optimize_parse_directions(dirs, &o.p_solvability, &e)) return sq_cli_usage_error(CMD, "--directions: %s", e.msg);
    if (shard && sq_stage_parse_shard(shard, &o.stage.shard_index, &o.stage.shard_count, &e))
        return sq_cli_usage_error(CMD, "--shard: %s", e.msg);
    sq_progress_set_quiet(sq_common.quiet);
    o.params.max_tokens = (int)max_tokens;
    o.params.temperature = (float)temperature;
    o.params.top_p = (float)top_p;
    o.params.seed = sq_common.seed;
    sq_buf pbuf = {0};
    if (generator) {
        sq_chat_template *t = NULL;
        if (sq_cli_model_template(generator, NULL, &t, &e)) return sq_cli_fail(CMD, "--generator: %s", e.msg);
        rc = sq_chat_template_question_prefix(t, &pbuf, &e);
        sq_chat_template_free(t);
        if (rc) return sq_cli_fail(CMD, "--generator: %s", e.msg);
        o.prefix = pbuf.data ? pbuf.data : "";
    } else {
        o.prefix = prefix;
    }
    sq_backend *b = NULL;
    rc = sq_cli_model_open(&m, &b, &e);
    if (rc == 0) rc = sq_optimize_run(b, &o, NULL, &e);
    sq_backend_close(b);
    sq_buf_free(&pbuf);
    return rc ? sq_cli_fail(CMD, "%s", e.msg) : SQ_EXIT_OK;
}

SQ_COMMAND(optimize, "optimize", "QPO pairs: rewrite questions for solvability or difficulty (Figures 9, 10)", cmd_optimize);
