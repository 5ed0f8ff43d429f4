/* scalequest report: RUN_DIR/report.html from a run directory (see docs/run.md). */
#include <stdio.h>

#include "cli.h"
#include "scalequest/run.h"

static int cmd_report(int argc, char **argv) {
    const char *out = NULL;
    sq_opt opts[] = {
        {"out", SQ_OPT_STR, &out, "FILE", "where to write the HTML (default RUN_DIR/report.html)"},
    };
    const char *pos[1];
    int npos, rc = sq_cli_parse(argc, argv, "RUN_DIR [--out FILE]", opts, SQ_ARRAY_LEN(opts), pos, 1, &npos);
    if (rc >= 0) return rc;
    if (npos != 1) return sq_cli_usage_error("report", "which run directory? scalequest report RUN_DIR");
    sq_err e;
    if (sq_run_report(pos[0], out, &e)) return sq_cli_fail("report", "%s", e.msg);
    if (!sq_common.quiet) fprintf(stderr, "report: %s%s\n", out ? out : pos[0], out ? "" : "/report.html");
    return SQ_EXIT_OK;
}

SQ_COMMAND(report, "report", "write RUN_DIR/report.html: funnel, difficulty, lengths, ratings, rewards, eval, cost",
           cmd_report);
