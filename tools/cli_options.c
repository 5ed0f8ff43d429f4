/* The shared option parser: --name VALUE or --name=VALUE, the common options, --help. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

sq_common_opts sq_common;

static void vreport(const char *cmd, const char *fmt, va_list ap) {
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* Library messages often name the stage themselves ("train: ..."): say it once. */
    const char *m = msg;
    size_t n = strlen(cmd);
    while (!strncmp(m, cmd, n) && m[n] == ':' && m[n + 1] == ' ') m += n + 2;
    fprintf(stderr, "scalequest: %s: %s\n", cmd, m);
}

int sq_cli_fail(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(cmd, fmt, ap);
    va_end(ap);
    return SQ_EXIT_FAIL;
}

int sq_cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(cmd, fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try 'scalequest %s --help'.\n", cmd);
    return SQ_EXIT_USAGE;
}

static const char *kind_metavar(const sq_opt *o) {
    if (o->metavar) return o->metavar;
    switch (o->kind) {
    case SQ_OPT_INT: return "N";
    case SQ_OPT_DOUBLE: return "X";
    case SQ_OPT_FLAG: return "";
    default: return "S";
    }
}

static void print_opt(const char *name, const char *metavar, const char *help) {
    char left[96];
    snprintf(left, sizeof left, "--%s%s%s", name, metavar[0] ? " " : "", metavar);
    printf("  %-28s %s\n", left, help);
}

static void print_help(const char *cmd, const char *usage, const sq_opt *opts, int nopts) {
    printf("Usage: scalequest %s %s\n\nOptions:\n", cmd, usage);
    for (int i = 0; i < nopts; i++) print_opt(opts[i].name, kind_metavar(&opts[i]), opts[i].help);
    printf("\nCommon options:\n");
    print_opt("threads", "N", "worker threads (default: all cores)");
    print_opt("seed", "N", "random seed (default 0)");
    print_opt("quiet", "", "no progress output");
    print_opt("log-level", "L", "error|warn|info|debug (or SCALEQUEST_LOG_LEVEL)");
    print_opt("help", "", "this help");
}

static int parse_int(const char *cmd, const char *name, const char *v, int64_t *out) {
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 0);
    if (errno || end == v || *end) return sq_cli_usage_error(cmd, "--%s: '%s' is not a whole number", name, v);
    *out = x;
    return -1;
}

static int parse_double(const char *cmd, const char *name, const char *v, double *out) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end) return sq_cli_usage_error(cmd, "--%s: '%s' is not a number", name, v);
    *out = x;
    return -1;
}

/* The common options; returns -1 when handled, 0 when not ours, or an exit code. */
static int common_opt(const char *cmd, const char *name, const char *val, int *consumed) {
    *consumed = 0;
    if (!strcmp(name, "quiet")) {
        sq_common.quiet = 1;
        sq_progress_set_quiet(1);
        return -1;
    }
    int takes = !strcmp(name, "threads") || !strcmp(name, "seed") || !strcmp(name, "log-level");
    if (!takes) return 0;
    if (!val) return sq_cli_usage_error(cmd, "--%s needs a value", name);
    *consumed = 1;
    int64_t x = 0;
    int rc;
    if (!strcmp(name, "log-level")) {
        int lv = sq_log_level_parse(val);
        if (lv < 0) return sq_cli_usage_error(cmd, "--log-level: '%s' is not one of error|warn|info|debug", val);
        sq_log_set_level((sq_log_level)lv);
        return -1;
    }
    if ((rc = parse_int(cmd, name, val, &x)) != -1) return rc;
    if (!strcmp(name, "threads")) {
        if (x < 0 || x > 1024) return sq_cli_usage_error(cmd, "--threads: %lld is out of range 0..1024", (long long)x);
        sq_common.threads = (int)x;
        sq_threads_set((int)x);
    } else {
        /* A negative seed would wrap to a huge one silently; say so instead. */
        if (x < 0) return sq_cli_usage_error(cmd, "--seed: %lld is negative; a seed is 0..9223372036854775807", (long long)x);
        sq_common.seed = (uint64_t)x;
        sq_common.seed_set = 1;
    }
    return -1;
}

int sq_cli_parse(int argc, char **argv, const char *usage, const sq_opt *opts, int nopts,
                 const char **pos, int max_pos, int *npos) {
    const char *cmd = argv[0];
    *npos = 0;
    int only_positional = 0;
    for (int i = 1; i < argc; i++) {
        char *arg = argv[i];
        if (only_positional || arg[0] != '-' || arg[1] == 0) {
            if (*npos >= max_pos) return sq_cli_usage_error(cmd, "unexpected argument '%s'", arg);
            pos[(*npos)++] = arg;
            continue;
        }
        if (!strcmp(arg, "--")) {
            only_positional = 1;
            continue;
        }
        if (arg[1] != '-') {
            if (!strcmp(arg, "-h")) arg = "--help";
            else return sq_cli_usage_error(cmd, "unknown option '%s' (options are spelled --name)", arg);
        }
        char name[64];
        const char *eq = strchr(arg + 2, '=');
        size_t nlen = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        if (nlen >= sizeof name) return sq_cli_usage_error(cmd, "unknown option '%s'", arg);
        memcpy(name, arg + 2, nlen);
        name[nlen] = 0;
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[i + 1] : NULL);
        if (!strcmp(name, "help")) {
            print_help(cmd, usage, opts, nopts);
            return SQ_EXIT_OK;
        }
        const sq_opt *o = NULL;
        for (int k = 0; k < nopts; k++)
            if (!strcmp(opts[k].name, name)) o = &opts[k];
        if (!o) {
            int consumed, rc = common_opt(cmd, name, val, &consumed);
            if (rc == 0) return sq_cli_usage_error(cmd, "unknown option '--%s'", name);
            if (rc != -1) return rc;
            if (consumed && !eq) i++;
            continue;
        }
        if (o->kind == SQ_OPT_FLAG) {
            if (eq) return sq_cli_usage_error(cmd, "--%s takes no value", name);
            *(int *)o->dst = 1;
            continue;
        }
        if (!val) return sq_cli_usage_error(cmd, "--%s needs a value", name);
        if (!eq) i++;
        int rc = -1;
        switch (o->kind) {
        case SQ_OPT_STR: *(const char **)o->dst = val; break;
        case SQ_OPT_INT: rc = parse_int(cmd, name, val, (int64_t *)o->dst); break;
        case SQ_OPT_DOUBLE: rc = parse_double(cmd, name, val, (double *)o->dst); break;
        case SQ_OPT_LIST: {
            sq_strlist *l = o->dst;
            if (l->n >= (int)SQ_ARRAY_LEN(l->items)) return sq_cli_usage_error(cmd, "--%s given too often", name);
            l->items[l->n++] = val;
            break;
        }
        default: break;
        }
        if (rc != -1) return rc;
    }
    return -1;
}
