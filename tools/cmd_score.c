/* scalequest score: one scalar-head value per record (a reward model, a difficulty scorer):
 * the input records with a "score" field added. See score.h for the scored position. */
#include "cli.h"
#include "scalequest/score.h"
#include "scalequest/stage.h"

static int cmd_score(int argc, char **argv) {
    sq_score_stage_opts o;
    sq_score_stage_opts_default(&o);
    const char *shard = NULL;
    int64_t batch_tokens = o.scorer.max_batch_tokens, ctx = 0;
    sq_opt opts[] = {
        {"model", SQ_OPT_STR, &o.model, "DIR", "HF *ForSequenceClassification folder (e.g. from train --mode regress)"},
        {"in", SQ_OPT_STR, &o.in, "FILE", "input JSONL, each record with an \"id\" (- for stdin)"},
        {"out", SQ_OPT_STR, &o.out, "FILE", "output JSONL (appended; a rerun resumes)"},
        {"field", SQ_OPT_STR, &o.field, "NAME", "the text field to score (default query)"},
        {"shard", SQ_OPT_STR, &shard, "I/N", "only records whose id hashes to shard I of N"},
        {"batch-tokens", SQ_OPT_INT, &batch_tokens, "N", "tokens per forward step (default 4096)"},
        {"ctx", SQ_OPT_INT, &ctx, "N", "longest text in tokens (default: the model's maximum); longer ones are dropped"},
    };
    int npos, rc = sq_cli_parse(argc, argv, "--model DIR --in FILE --out FILE [--field query] [--shard I/N]", opts,
                                SQ_ARRAY_LEN(opts), NULL, 0, &npos);
    if (rc >= 0) return rc;
    if (!o.model || !o.in || !o.out) return sq_cli_usage_error("score", "--model, --in and --out are required");
    if (batch_tokens <= 0 || batch_tokens > (1 << 20) || ctx < 0 || ctx > (1 << 24))
        return sq_cli_usage_error("score", "--batch-tokens or --ctx out of range");
    sq_err e;
    if (shard && sq_stage_parse_shard(shard, &o.shard_index, &o.shard_count, &e))
        return sq_cli_usage_error("score", "--shard: %s", e.msg);
    o.scorer.max_batch_tokens = (int)batch_tokens;
    o.scorer.ctx_len = (int)ctx;
    o.scorer.threads = sq_common.threads;
    if (sq_common.quiet) sq_progress_set_quiet(1);
    if (sq_score_stage_run(&o, &e)) return sq_cli_fail("score", "%s", e.msg);
    return SQ_EXIT_OK;
}

SQ_COMMAND(score, "score", "score each record's text with a scalar-head model (reward, difficulty)", cmd_score);
