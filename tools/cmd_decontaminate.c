/* scalequest decontaminate: drop training questions that overlap the benchmarks
 * (decontam.h). Argument parsing only. */
#include <stdio.h>

#include "cli.h"
#include "scalequest/decontam.h"

#define CMD "decontaminate"

static int cmd_decontaminate(int argc, char **argv) {
    sq_decontam_opts o;
    sq_decontam_opts_default(&o);
    const char *shard = NULL, *dropped = NULL;
    int64_t ngram = o.ngram, examples = o.examples;
    double threshold = o.mh.threshold;
    int no_near = 0;
    static char help_b[256];
    snprintf(help_b, sizeof help_b, "comma list of %s, or NAME=PATH (default the first five)", sq_decontam_known());
    sq_opt opts[] = {
        {"in", SQ_OPT_STR, &o.stage.in, "FILE", "input JSONL, each record with an \"id\" (- for stdin)"},
        {"out", SQ_OPT_STR, &o.stage.out, "FILE", "kept records (appended; a rerun resumes)"},
        {"dropped", SQ_OPT_STR, &dropped, "FILE", "dropped records with contaminated_by (default OUT.dropped.jsonl)"},
        {"bench-dir", SQ_OPT_STR, &o.bench_dir, "DIR", "folder of the benchmark JSONL files (default $SQ_ASSETS/data or ../shared/assets/data)"},
        {"benchmarks", SQ_OPT_STR, &o.benchmarks, "LIST", help_b},
        {"field", SQ_OPT_STR, &o.field, "NAME", "the question field (default query)"},
        {"ngram", SQ_OPT_INT, &ngram, "N", "word n-gram overlap test (default 13; lower for short problems; 0 off)"},
        {"threshold", SQ_OPT_DOUBLE, &threshold, "J", "near-duplicate Jaccard threshold (default 0.6, as dedup)"},
        {"no-near", SQ_OPT_FLAG, &no_near, NULL, "skip the near-duplicate (MinHash) test"},
        {"report", SQ_OPT_STR, &o.report, "FILE", "the report and marker (default OUT.decontam.json)"},
        {"examples", SQ_OPT_INT, &examples, "N", "examples per benchmark in the report (default 3)"},
        {"shard", SQ_OPT_STR, &shard, "I/N", "only records whose id hashes to shard I of N"},
    };
    int npos, rc = sq_cli_parse(argc, argv, "--in FILE --out FILE [--bench-dir DIR] [--benchmarks LIST] [--ngram 13] [--shard I/N]", opts,
                                SQ_ARRAY_LEN(opts), NULL, 0, &npos);
    if (rc >= 0) return rc;
    if (!o.stage.in || !o.stage.out) return sq_cli_usage_error(CMD, "--in and --out are required");
    if (ngram < 0 || ngram > 64 || examples < 0 || examples > 1000)
        return sq_cli_usage_error(CMD, "--ngram or --examples out of range");
    o.ngram = (int)ngram, o.examples = (int)examples, o.near = !no_near, o.mh.threshold = threshold;
    o.stage.dropped = dropped;
    sq_err e;
    if (shard && sq_stage_parse_shard(shard, &o.stage.shard_index, &o.stage.shard_count, &e))
        return sq_cli_usage_error(CMD, "--shard: %s", e.msg);
    if (sq_common.quiet) sq_progress_set_quiet(1);
    if (sq_decontam_run(&o, &e)) return sq_cli_fail(CMD, "%s", e.msg);
    return SQ_EXIT_OK;
}

SQ_COMMAND(decontaminate, "decontaminate", "drop questions that overlap the benchmark test sets (n-gram, near-duplicate)",
           cmd_decontaminate);
