/* The model options every generating command shares (--batch, --ctx, --kv-type, --act-type,
 * --concurrency, --url, --timeout, --max-retries, --api-key-env) and the backend options
 * filled from them: one place for their defaults and range checks (generate and the stages). */
#ifndef SCALEQUEST_CLI_BACKEND_H
#define SCALEQUEST_CLI_BACKEND_H

#include "cli.h"
#include "scalequest/backend.h"

typedef struct sq_cli_backend {
    int64_t batch, ctx, concurrency, retries;
    double timeout;
    const char *key_env;
    sq_strlist urls;
    const char *kv_type;
    const char *act_type;
} sq_cli_backend;

#define SQ_CLI_BACKEND_NOPTS 9
/* Defaults into cb and the option rows into opts[SQ_CLI_BACKEND_NOPTS]. */
void sq_cli_backend_options(sq_cli_backend *cb, sq_opt *opts);
/* Check the values (a usage message into msg) and fill bo; 0 ok. */
int sq_cli_backend_fill(const sq_cli_backend *cb, sq_backend_opts *bo, char *msg, size_t cap);

#endif
