/* scalequest run: the whole method from one YAML config (see docs/run.md). */
#include <stdio.h>

#include "cli.h"
#include "scalequest/run.h"

static int cmd_run(int argc, char **argv) {
    int print_default = 0, dry = 0, no_check = 0;
    const char *from = NULL, *only = NULL, *exe = NULL;
    sq_opt opts[] = {
        {"print-default", SQ_OPT_FLAG, &print_default, NULL, "print the complete commented default config and exit"},
        {"dry-run", SQ_OPT_FLAG, &dry, NULL, "print the plan: each stage, whether it would run, its commands"},
        {"from", SQ_OPT_STR, &from, "STAGE", "redo STAGE and every stage after it (earlier ones are taken as they are)"},
        {"only", SQ_OPT_STR, &only, "STAGE", "redo STAGE alone"},
        {"exe", SQ_OPT_STR, &exe, "PATH", "the scalequest binary that runs the stages (default: this one)"},
        {"no-check", SQ_OPT_FLAG, &no_check, NULL, "skip the checks of commands, files and servers before running"},
    };
    const char *pos[1];
    int npos, rc = sq_cli_parse(argc, argv, "CONFIG.yaml [--dry-run] [--from STAGE | --only STAGE]\n       --print-default",
                                opts, SQ_ARRAY_LEN(opts), pos, 1, &npos);
    if (rc >= 0) return rc;
    if (print_default) {
        fputs(sq_run_default_config(), stdout);
        return SQ_EXIT_OK;
    }
    if (npos != 1) return sq_cli_usage_error("run", "which config? scalequest run CONFIG.yaml (start from --print-default)");
    if (from && only) return sq_cli_usage_error("run", "--from and --only exclude each other");
    sq_err e;
    sq_run_config c;
    if (sq_run_config_load(&c, pos[0], &e)) return sq_cli_fail("run", "%s", e.msg);
    sq_run_plan p;
    if (sq_run_plan_build(&p, &c, &e)) {
        sq_run_config_free(&c);
        return sq_cli_fail("run", "%s", e.msg);
    }
    rc = 0;
    if (!dry && !no_check) rc = sq_run_preflight(&p, &c, exe ? exe : "/proc/self/exe", &e);
    sq_run_opts o = {.exe = exe, .from = from, .only = only, .dry_run = dry, .quiet = sq_common.quiet, .config = c.root};
    if (!rc) rc = sq_run_execute(&p, &o, &e);
    sq_run_plan_free(&p);
    sq_run_config_free(&c);
    if (rc) return sq_cli_fail("run", "%s", e.msg);
    return SQ_EXIT_OK;
}

SQ_COMMAND(run, "run", "the whole ScaleQuest method from one YAML config, resumable, make-like", cmd_run);
