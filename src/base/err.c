/* Errors: one message per failure, naming where and what, carried up to the CLI. */
#include "scalequest/base.h"

#include <stdio.h>
#include <string.h>

int sq_fail(sq_err *e, int code, const char *fmt, ...) {
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        e->code = code;
    }
    return code;
}

int sq_err_wrap(sq_err *e, const char *fmt, ...) {
    if (!e) return 0;
    char prefix[256], old[sizeof e->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    snprintf(e->msg, sizeof e->msg, "%s: %s", prefix, old);
    return e->code;
}

void sq_err_clear(sq_err *e) {
    if (e) {
        e->code = 0;
        e->msg[0] = 0;
    }
}

const char *sq_strerror(int code) {
    switch (code) {
    case SQ_OK: return "ok";
    case SQ_EIO: return "I/O error";
    case SQ_EPARSE: return "parse error";
    case SQ_ENOMEM: return "out of memory";
    case SQ_EINVAL: return "invalid argument";
    case SQ_ERANGE: return "out of range";
    case SQ_EUNSUP: return "unsupported";
    case SQ_ENOTFOUND: return "not found";
    case SQ_ENET: return "network error";
    case SQ_ESTATE: return "wrong state";
    case SQ_EINTR: return "interrupted";
    default: return "unknown error";
    }
}
