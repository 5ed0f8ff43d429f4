/* The command line: one option parser shared by every command, and the command registry.
 *
 * A command lives in tools/cmd_<name>.c and registers itself with SQ_COMMAND; the Makefile
 * collects the registrations into the dispatch table, so adding a command touches no shared
 * file. Every command gets the common options (--help, --quiet, --log-level, --threads,
 * --seed) from the parser; it declares only its own. Exit codes: 0 ok, 1 failure, 2 usage.
 */
#ifndef SCALEQUEST_CLI_H
#define SCALEQUEST_CLI_H

#include <stdint.h>

#include "scalequest/base.h"

enum { SQ_EXIT_OK = 0, SQ_EXIT_FAIL = 1, SQ_EXIT_USAGE = 2 };

typedef enum {
    SQ_OPT_FLAG,   /* int *: set to 1 */
    SQ_OPT_STR,    /* const char **: the argument */
    SQ_OPT_INT,    /* int64_t *: a whole number */
    SQ_OPT_DOUBLE, /* double *: a number */
    SQ_OPT_LIST,   /* sq_strlist *: repeatable, each use appends */
} sq_opt_kind;

typedef struct sq_strlist {
    const char *items[64];
    int n;
} sq_strlist;

typedef struct sq_opt {
    const char *name; /* without the leading "--" */
    sq_opt_kind kind;
    void *dst;
    const char *metavar; /* shown in help, e.g. "PATH"; NULL for flags */
    const char *help;
} sq_opt;

/* The options every command accepts, filled by sq_cli_parse. */
typedef struct sq_common_opts {
    int quiet;
    int threads;   /* 0: all cores */
    uint64_t seed; /* default 0 */
    int seed_set;
} sq_common_opts;

extern sq_common_opts sq_common;

typedef struct sq_command {
    const char *name;
    const char *summary;
    int (*main)(int argc, char **argv); /* argv[0] is the command name */
} sq_command;

#define SQ_COMMAND(ident, name, summary, fn) const sq_command sq_command_##ident = {name, summary, fn}

/* Parse argv[1..] of a command. `usage` is the synopsis line(s) after "scalequest <cmd>".
 * Positional arguments are collected into pos (at most max_pos; more is a usage error).
 * Returns -1 to go on, or an exit code to return at once (0 after --help, 2 on bad usage,
 * with the message already printed). */
int sq_cli_parse(int argc, char **argv, const char *usage, const sq_opt *opts, int nopts,
                 const char **pos, int max_pos, int *npos);

/* "scalequest: <cmd>: <message>" on stderr; returns SQ_EXIT_FAIL for `return sq_cli_fail(...)`. */
int sq_cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same, with exit code 2 (usage). */
int sq_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
