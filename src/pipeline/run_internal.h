/* Shared between the runner's files only. */
#ifndef SCALEQUEST_RUN_INTERNAL_H
#define SCALEQUEST_RUN_INTERNAL_H

#include <dirent.h>
#include <stddef.h>

/* The runner's content hash of a byte string, as 32 hex digits (malloc'd). */
char *sq_run_hash_bytes(const void *data, size_t len);

#endif
