/* scalequest reward: reward scoring and best-of-n (reward.h); with --orm-data, the outcome
 * reward model's training data instead. Argument parsing only. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "scalequest/reward.h"

#define CMD "reward"

static int cmd_reward(int argc, char **argv) {
    sq_reward_opts o;
    sq_reward_opts_default(&o);
    const char *shard = NULL, *keep = "best", *select = "reward", *gold_format = "auto", *orm = NULL,
               *from = NULL;
    int64_t chunk = o.chunk, batch_tokens = o.scorer.max_batch_tokens, ctx = 0;
    sq_opt opts[] = {
        {"model", SQ_OPT_STR, &o.model, "DIR", "reward model: HF *ForSequenceClassification folder"},
        {"in", SQ_OPT_STR, &o.stage.in, "FILE", "respond output (JSONL: id, query, responses)"},
        {"out", SQ_OPT_STR, &o.stage.out, "FILE", "output JSONL (appended; a rerun resumes)"},
        {"keep", SQ_OPT_STR, &keep, "best|all|top-K", "responses kept per question (default best)"},
        {"select", SQ_OPT_STR, &select, "reward|majority|gold|random",
         "how responses are chosen (default reward)"},
        {"gold-field", SQ_OPT_STR, &o.gold_field, "NAME",
         "--select gold, --orm-data: the gold answer (default answer)"},
        {"gold-format", SQ_OPT_STR, &gold_format, "auto|gsm8k|math|plain|dollars", "how the gold is written"},
        {"field", SQ_OPT_STR, &o.field, "NAME", "the question field (default query)"},
        {"responses-field", SQ_OPT_STR, &o.responses_field, "NAME",
         "the responses array (default responses)"},
        {"chat-template", SQ_OPT_STR, &o.chat_template, "SPEC|none",
         "render pairs with this template (default: the RM's)"},
        {"shard", SQ_OPT_STR, &shard, "I/N", "only the records of shard I of N (by id hash)"},
        {"chunk", SQ_OPT_INT, &chunk, "N", "questions per scorer call (default 64)"},
        {"batch-tokens", SQ_OPT_INT, &batch_tokens, "N", "tokens per forward step (default 4096)"},
        {"ctx", SQ_OPT_INT, &ctx, "N", "longest pair in tokens (default: the model's)"},
        {"failed", SQ_OPT_STR, &o.stage.failed, "FILE",
         "(accepted for the stage contract; scoring has no requests)"},
        {"orm-data", SQ_OPT_STR, &orm, "FILE", "write outcome-RM training data (ids, 1/0 by gold) instead"},
        {"tokenizer-from", SQ_OPT_STR, &from, "DIR", "--orm-data: the folder the RM is trained from"},
    };
    int npos, rc = sq_cli_parse(argc, argv,
                                "--model DIR --in FILE --out FILE [--keep best|all|top-K] [--select ...]",
                                opts, SQ_ARRAY_LEN(opts), NULL, 0, &npos);
    if (rc >= 0) return rc;
    sq_err e = {0};
    if (sq_reward_parse_keep(keep, &o.keep, &o.top_k, &e) || sq_reward_parse_select(select, &o.select, &e))
        return sq_cli_usage_error(CMD, "%s", e.msg);
    static const char *gf[] = {"auto", "gsm8k", "math", "plain", "dollars"};
    int g = -1;
    for (int i = 0; i < 5; i++)
        if (!strcmp(gold_format, gf[i])) g = i;
    if (g < 0) return sq_cli_usage_error(CMD, "--gold-format: unknown \"%s\"", gold_format);
    o.gold_format = (sq_gold_format)g;
    if (chunk < 1 || chunk > 1 << 16 || batch_tokens < 1 || batch_tokens > 1 << 20 || ctx < 0 ||
        ctx > 1 << 24)
        return sq_cli_usage_error(CMD, "--chunk, --batch-tokens or --ctx out of range");
    o.chunk = (int)chunk;
    o.scorer.max_batch_tokens = (int)batch_tokens;
    o.scorer.ctx_len = (int)ctx;
    o.scorer.threads = sq_common.threads;
    o.seed = sq_common.seed;
    sq_progress_set_quiet(sq_common.quiet);
    if (orm) {
        if (!o.stage.in || !from)
            return sq_cli_usage_error(CMD, "--orm-data needs --in and --tokenizer-from");
        sq_orm_data_stats s;
        if (sq_reward_orm_data(&o, from, orm, &s, &e)) return sq_cli_fail(CMD, "%s", e.msg);
        if (!sq_common.quiet)
            fprintf(stderr, "reward: %lld responses of %lld questions, %lld correct -> %s\n",
                    (long long)s.responses, (long long)s.records, (long long)s.correct, orm);
        return SQ_EXIT_OK;
    }
    if (!o.stage.in || !o.stage.out) return sq_cli_usage_error(CMD, "--in and --out are required");
    if (shard && sq_stage_parse_shard(shard, &o.stage.shard_index, &o.stage.shard_count, &e))
        return sq_cli_usage_error(CMD, "--shard: %s", e.msg);
    if (sq_reward_run(&o, &e)) return sq_cli_fail(CMD, "%s", e.msg);
    return SQ_EXIT_OK;
}

SQ_COMMAND(reward, "reward",
           "score responses with a reward model and keep the best (or majority / gold / random)", cmd_reward);
