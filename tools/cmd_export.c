/* scalequest export: the {id, query, response} training file and its provenance (export.h). */
#include <stdio.h>

#include "cli.h"
#include "scalequest/export.h"

static int cmd_export(int argc, char **argv) {
    sq_export_opts o;
    sq_export_opts_default(&o);
    sq_opt opts[] = {
        {"in", SQ_OPT_STR, &o.in, "FILE", "reward output (JSONL: id, query, response[, kept])"},
        {"out", SQ_OPT_STR, &o.out, "FILE", "{id, query, response} JSONL (written whole, atomically)"},
        {"provenance", SQ_OPT_STR, &o.provenance, "FILE", "side file (default OUT.provenance.jsonl)"},
        {"field", SQ_OPT_STR, &o.field, "NAME", "the question field (default query)"},
        {"skip-bad", SQ_OPT_FLAG, &o.skip_bad, NULL, "count and skip unparsable input lines"},
    };
    int npos, rc = sq_cli_parse(argc, argv, "--in FILE --out FILE [--provenance FILE]", opts,
                                SQ_ARRAY_LEN(opts), NULL, 0, &npos);
    if (rc >= 0) return rc;
    if (!o.in || !o.out) return sq_cli_usage_error("export", "--in and --out are required");
    sq_err e = {0};
    sq_export_stats st;
    if (sq_export_run(&o, &st, &e)) return sq_cli_fail("export", "%s", e.msg);
    if (!sq_common.quiet)
        fprintf(stderr, "export: %lld records -> %lld lines%s\n", (long long)st.records, (long long)st.lines,
                st.skipped_bad ? " (bad input lines skipped)" : "");
    return SQ_EXIT_OK;
}

SQ_COMMAND(export, "export", "write the {id, query, response} instruction-tuning set (+ provenance)",
           cmd_export);
