/* Logging: levelled lines on stderr; the level is the one global the library keeps. */
#include "scalequest/base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sq_log_level g_level = SQ_LOG_INFO;

void sq_log_set_level(sq_log_level level) { g_level = level; }
sq_log_level sq_log_get_level(void) { return g_level; }

int sq_log_level_parse(const char *name) {
    static const char *names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (name && strcmp(name, names[i]) == 0) return i;
    return -1;
}

void sq_log_init_from_env(void) {
    int lv = sq_log_level_parse(getenv("SCALEQUEST_LOG_LEVEL"));
    if (lv >= 0) g_level = (sq_log_level)lv;
}

void sq_log(sq_log_level level, const char *fmt, ...) {
    if (level > g_level) return;
    static const char *tags[] = {"error", "warn", "info", "debug"};
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* One fprintf per line so concurrent threads do not interleave inside a line. */
    fprintf(stderr, "[%s] %s\n", tags[level], line);
}
