/* The model options every stage command that talks to a model shares (--batch, --ctx for the
 * in-process engine; --concurrency, --url, --timeout, --max-retries, --api-key-env for a
 * server), and opening the backend a --model spec names. Used by qgen, optimize and
 * difficulty; argument handling only. */
#ifndef SCALEQUEST_CLI_MODEL_H
#define SCALEQUEST_CLI_MODEL_H

#include "cli.h"
#include "scalequest/backend.h"

typedef struct sq_cli_model {
    const char *spec;
    int64_t batch, ctx, concurrency, retries;
    double timeout;
    const char *key_env;
    sq_strlist urls;
} sq_cli_model;

void sq_cli_model_default(sq_cli_model *m);

/* The sq_opt entries for the options above (without --model), to put in a command's table. */
#define SQ_CLI_MODEL_OPTS(m)                                                                                        \
    {"batch", SQ_OPT_INT, &(m)->batch, "N", "local: sequences decoded together (default 64)"},                       \
    {"ctx", SQ_OPT_INT, &(m)->ctx, "N", "local: prompt + completion tokens at most (default: model's, <= 4096)"},  \
    {"concurrency", SQ_OPT_INT, &(m)->concurrency, "N", "remote: requests in flight (default 64)"},                  \
    {"url", SQ_OPT_LIST, &(m)->urls, "URL", "remote: another base URL of the same model (repeatable)"},            \
    {"timeout", SQ_OPT_DOUBLE, &(m)->timeout, "S", "remote: seconds per request (default 600)"},                   \
    {"max-retries", SQ_OPT_INT, &(m)->retries, "N", "remote: retries per request (default 6)"},                    \
    {"api-key-env", SQ_OPT_STR, &(m)->key_env, "VAR", "remote: env var with the API key (default OPENAI_API_KEY)"}

/* Check the ranges (a usage message in why) and open the backend. 0, or a negative code with
 * e set; a range error returns SQ_EINVAL with the message in e. */
int sq_cli_model_open(const sq_cli_model *m, sq_backend **b, sq_err *e);

/* The chat template of a --model spec: `chat_spec` when given, else the local model's own
 * (a server's template cannot be read: then `chat_spec` is required). */
struct sq_chat_template;
int sq_cli_model_template(const char *model, const char *chat_spec, struct sq_chat_template **t, sq_err *e);

#endif
