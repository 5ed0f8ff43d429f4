/* scalequest difficulty label|score|sample|judge: the difficulty steps of ScaleQuest
 * section 2.4. Argument parsing only; the stages are in difficulty.h (and judge.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_model.h"
#include "scalequest/difficulty.h"
#include "scalequest/judge.h"

static int parse_shard(const char *cmd, const char *shard, sq_stage_opts *so) {
    sq_err e;
    if (shard && sq_stage_parse_shard(shard, &so->shard_index, &so->shard_count, &e))
        return sq_cli_usage_error(cmd, "--shard: %s", e.msg);
    return -1;
}

static int gold_format(const char *s, sq_gold_format *f) {
    static const char *names[] = {"auto", "gsm8k", "math", "plain", "dollars"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, names[i])) return *f = (sq_gold_format)i, 0;
    return -1;
}

static int cmd_label(int argc, char **argv) {
    const char *CMD = "difficulty label";
    sq_cli_model m;
    sq_cli_model_default(&m);
    sq_label_opts o;
    sq_label_opts_default(&o);
    const char *shard = NULL, *gold_fmt = "auto";
    int64_t samples = o.params.n, max_tokens = o.params.max_tokens;
    double temperature = o.params.temperature, top_p = o.params.top_p;
    sq_opt opts[] = {
        {"model", SQ_OPT_STR, &m.spec, "SPEC", "solver: HF folder, GGUF, http(s)://host:port/v1#name"},
        {"in", SQ_OPT_STR, &o.stage.in, "FILE", "questions with gold answers (JSONL: id, query, answer or solution)"},
        {"out", SQ_OPT_STR, &o.stage.out, "FILE", "records + fail_rate (appended; a rerun resumes)"},
        {"dropped", SQ_OPT_STR, &o.stage.dropped, "FILE", "dropped records (default: OUT with .dropped.jsonl)"},
        {"failed", SQ_OPT_STR, &o.stage.failed, "FILE", "append {id, error} of requests that failed"},
        {"shard", SQ_OPT_STR, &shard, "I/N", "only the records of shard I of N (by id hash)"},
        {"samples", SQ_OPT_INT, &samples, "N", "responses per question (default 8)"},
        {"field", SQ_OPT_STR, &o.field, "NAME", "question field (default query)"},
        {"gold-field", SQ_OPT_STR, &o.gold_field, "NAME", "gold field (default answer, else solution)"},
        {"gold-format", SQ_OPT_STR, &gold_fmt, "auto|gsm8k|math|plain|dollars", "how the gold is written (default auto)"},
        {"prompt-template", SQ_OPT_STR, &o.prompt_template, "TEXT",
         "user turn with {query} (default: the question + \"Please reason step by step, and put your final answer "
         "within \\boxed{}.\")"},
        {"raw-prompt", SQ_OPT_FLAG, &o.raw_prompt, NULL, "send the template's text as raw text, not as a chat user turn"},
        {"keep-responses", SQ_OPT_FLAG, &o.keep_responses, NULL, "also write the sampled responses"},
        {"temperature", SQ_OPT_DOUBLE, &temperature, "T", "default 1.0"},
        {"top-p", SQ_OPT_DOUBLE, &top_p, "P", "default 1.0"},
        {"max-tokens", SQ_OPT_INT, &max_tokens, "N", "tokens per response at most (default 2048)"},
        SQ_CLI_MODEL_OPTS(&m),
    };
    int npos, rc = sq_cli_parse(argc, argv, "--model SPEC --in FILE --out FILE [--samples N]", opts, SQ_ARRAY_LEN(opts),
                                NULL, 0, &npos);
    if (rc >= 0) return rc;
    if (!m.spec || !o.stage.in || !o.stage.out) return sq_cli_usage_error(CMD, "--model, --in and --out are required");
    if (samples < 1 || samples > 1024) return sq_cli_usage_error(CMD, "--samples must be 1..1024");
    if (max_tokens < 1 || max_tokens > 1 << 20 || temperature < 0 || top_p <= 0 || top_p > 1)
        return sq_cli_usage_error(CMD, "sampling options out of range");
    if (gold_format(gold_fmt, &o.gold_format)) return sq_cli_usage_error(CMD, "--gold-format: unknown \"%s\"", gold_fmt);
    if ((rc = parse_shard(CMD, shard, &o.stage)) >= 0) return rc;
    sq_progress_set_quiet(sq_common.quiet);
    o.params.n = (int)samples;
    o.params.max_tokens = (int)max_tokens;
    o.params.temperature = (float)temperature;
    o.params.top_p = (float)top_p;
    o.params.seed = sq_common.seed;
    sq_err e = {0};
    sq_backend *b = NULL;
    rc = sq_cli_model_open(&m, &b, &e);
    if (rc == 0) rc = sq_difficulty_label_run(b, &o, NULL, &e);
    sq_backend_close(b);
    return rc ? sq_cli_fail(CMD, "%s", e.msg) : SQ_EXIT_OK;
}

static int cmd_score(int argc, char **argv) {
    const char *CMD = "difficulty score";
    sq_score_stage_opts o;
    sq_score_stage_opts_default(&o);
    const char *shard = NULL;
    int64_t batch_tokens = o.scorer.max_batch_tokens, ctx = 0;
    sq_opt opts[] = {
        {"model", SQ_OPT_STR, &o.model, "DIR", "difficulty scorer: a *ForSequenceClassification folder (train --mode regress)"},
        {"in", SQ_OPT_STR, &o.in, "FILE", "questions (JSONL with id and query)"},
        {"out", SQ_OPT_STR, &o.out, "FILE", "records + difficulty (appended; a rerun resumes)"},
        {"field", SQ_OPT_STR, &o.field, "NAME", "question field (default query)"},
        {"shard", SQ_OPT_STR, &shard, "I/N", "only the records of shard I of N (by id hash)"},
        {"batch-tokens", SQ_OPT_INT, &batch_tokens, "N", "tokens per forward step (default 4096)"},
        {"ctx", SQ_OPT_INT, &ctx, "N", "longest question in tokens (default: the model's); longer ones are dropped"},
    };
    int npos, rc = sq_cli_parse(argc, argv, "--model DIR --in FILE --out FILE", opts, SQ_ARRAY_LEN(opts), NULL, 0, &npos);
    if (rc >= 0) return rc;
    if (!o.model || !o.in || !o.out) return sq_cli_usage_error(CMD, "--model, --in and --out are required");
    if (batch_tokens <= 0 || batch_tokens > (1 << 20) || ctx < 0 || ctx > (1 << 24))
        return sq_cli_usage_error(CMD, "--batch-tokens or --ctx out of range");
    sq_err e;
    if (shard && sq_stage_parse_shard(shard, &o.shard_index, &o.shard_count, &e))
        return sq_cli_usage_error(CMD, "--shard: %s", e.msg);
    o.scorer.max_batch_tokens = (int)batch_tokens;
    o.scorer.ctx_len = (int)ctx;
    o.scorer.threads = sq_common.threads;
    sq_progress_set_quiet(sq_common.quiet);
    if (sq_difficulty_score_run(&o, &e)) return sq_cli_fail(CMD, "%s", e.msg);
    return SQ_EXIT_OK;
}

static int cmd_sample(int argc, char **argv) {
    const char *CMD = "difficulty sample";
    sq_sample_opts o;
    sq_sample_opts_default(&o);
    const char *shard = NULL, *target = NULL, *range = NULL;
    double min_score = NAN;
    int64_t bins = o.n_bins;
    sq_opt opts[] = {
        {"in", SQ_OPT_STR, &o.stage.in, "FILE", "scored questions (JSONL with id and difficulty)"},
        {"out", SQ_OPT_STR, &o.stage.out, "FILE", "kept records (appended; a rerun resumes)"},
        {"dropped", SQ_OPT_STR, &o.stage.dropped, "FILE", "dropped records (default: OUT with .dropped.jsonl)"},
        {"field", SQ_OPT_STR, &o.field, "NAME", "the value to sample by (default difficulty)"},
        {"min-score", SQ_OPT_DOUBLE, &min_score, "X", "drop records whose value is below X"},
        {"target-dist", SQ_OPT_STR, &target, "W1,W2,...|uniform", "thin to this histogram shape (one weight per bin)"},
        {"bins", SQ_OPT_INT, &bins, "N", "histogram bins (default 10)"},
        {"range", SQ_OPT_STR, &range, "LO:HI", "histogram range (default 0:1, the fail rate's)"},
        {"shard", SQ_OPT_STR, &shard, "I/N", "only the records of shard I of N (by id hash)"},
    };
    int npos, rc = sq_cli_parse(argc, argv, "--in FILE --out FILE (--min-score X | --target-dist W,...) [--bins N]",
                                opts, SQ_ARRAY_LEN(opts), NULL, 0, &npos);
    if (rc >= 0) return rc;
    if (!o.stage.in || !o.stage.out) return sq_cli_usage_error(CMD, "--in and --out are required");
    if (isnan(min_score) && !target) return sq_cli_usage_error(CMD, "give --min-score, --target-dist or both");
    if (bins < 1 || bins > SQ_SAMPLE_MAX_BINS) return sq_cli_usage_error(CMD, "--bins must be 1..%d", SQ_SAMPLE_MAX_BINS);
    o.n_bins = (int)bins;
    if (range) {
        char *end;
        o.lo = strtod(range, &end);
        if (*end != ':' || (o.hi = strtod(end + 1, &end), *end) || !(o.hi > o.lo))
            return sq_cli_usage_error(CMD, "--range: expected LO:HI with LO < HI, got \"%s\"", range);
    }
    sq_err e;
    if (target && sq_sample_parse_target(&o, target, &e)) return sq_cli_usage_error(CMD, "--target-dist: %s", e.msg);
    if (!isnan(min_score)) o.use_min = 1, o.min_score = min_score;
    if ((rc = parse_shard(CMD, shard, &o.stage)) >= 0) return rc;
    o.seed = sq_common.seed;
    sq_progress_set_quiet(sq_common.quiet);
    if (sq_difficulty_sample_run(&o, NULL, &e)) return sq_cli_fail(CMD, "%s", e.msg);
    return SQ_EXIT_OK;
}

static int cmd_judge(int argc, char **argv) {
    const char *CMD = "difficulty judge";
    sq_cli_model m;
    sq_cli_model_default(&m);
    sq_difficulty_judge_opts o;
    sq_difficulty_judge_opts_default(&o);
    const char *shard = NULL;
    int64_t max_tokens = o.params.max_tokens;
    double temperature = o.params.temperature;
    sq_opt opts[] = {
        {"model", SQ_OPT_STR, &m.spec, "SPEC", "the judge: http(s)://host:port/v1#name, world:[TRAIN.jsonl], HF folder, GGUF"},
        {"in", SQ_OPT_STR, &o.stage.in, "FILE", "questions (JSONL with id and query)"},
        {"out", SQ_OPT_STR, &o.stage.out, "FILE", "records + difficulty_rating (1-5) and judge_reply (appended; resumes)"},
        {"dropped", SQ_OPT_STR, &o.stage.dropped, "FILE", "dropped records (default: OUT with .dropped.jsonl)"},
        {"failed", SQ_OPT_STR, &o.stage.failed, "FILE", "append {id, error} of requests that failed"},
        {"keep-unknown", SQ_OPT_FLAG, &o.keep_unknown, NULL, "keep records whose reply has no rating (rating 0)"},
        {"field", SQ_OPT_STR, &o.field, "NAME", "question field (default query)"},
        {"shard", SQ_OPT_STR, &shard, "I/N", "only the records of shard I of N (by id hash)"},
        {"max-tokens", SQ_OPT_INT, &max_tokens, "N", "judge reply length at most"},
        {"temperature", SQ_OPT_DOUBLE, &temperature, "T", "default 0 = greedy"},
        SQ_CLI_MODEL_OPTS(&m),
    };
    int npos, rc = sq_cli_parse(argc, argv, "--model SPEC --in FILE --out FILE", opts, SQ_ARRAY_LEN(opts), NULL, 0, &npos);
    if (rc >= 0) return rc;
    if (!m.spec || !o.stage.in || !o.stage.out) return sq_cli_usage_error(CMD, "--model, --in and --out are required");
    if (max_tokens < 1 || max_tokens > 1 << 20 || temperature < 0)
        return sq_cli_usage_error(CMD, "--max-tokens or --temperature out of range");
    if ((rc = parse_shard(CMD, shard, &o.stage)) >= 0) return rc;
    sq_progress_set_quiet(sq_common.quiet);
    o.params.max_tokens = (int)max_tokens;
    o.params.temperature = (float)temperature;
    o.params.seed = sq_common.seed;
    sq_err e = {0};
    sq_backend *b = NULL;
    rc = sq_cli_model_open(&m, &b, &e);
    if (rc == 0) rc = sq_difficulty_judge_run(b, &o, NULL, &e);
    sq_backend_close(b);
    return rc ? sq_cli_fail(CMD, "%s", e.msg) : SQ_EXIT_OK;
}

static int cmd_difficulty(int argc, char **argv) {
    static const char *usage = "usage: scalequest difficulty label|score|sample|judge [options] (--help after one)\n"
                               "  label   fail rates from sampling a solver on questions with gold answers\n"
                               "  score   the difficulty scorer's value for each question (field difficulty)\n"
                               "  sample  keep questions by difficulty: a threshold or a target histogram\n"
                               "  judge   an LLM's 1-5 difficulty rating (the paper's Figure 12)\n";
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? SQ_EXIT_USAGE : SQ_EXIT_OK;
    }
    if (!strcmp(argv[1], "label")) return cmd_label(argc - 1, argv + 1);
    if (!strcmp(argv[1], "score")) return cmd_score(argc - 1, argv + 1);
    if (!strcmp(argv[1], "sample")) return cmd_sample(argc - 1, argv + 1);
    if (!strcmp(argv[1], "judge")) return cmd_judge(argc - 1, argv + 1);
    return sq_cli_usage_error("difficulty", "unknown sub-command \"%s\" (label, score, sample, judge)", argv[1]);
}

SQ_COMMAND(difficulty, "difficulty", "question difficulty: label fail rates, score, sample, judge", cmd_difficulty);
