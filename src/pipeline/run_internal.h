/* Shared between the runner's files only. */
#ifndef SCALEQUEST_RUN_INTERNAL_H
#define SCALEQUEST_RUN_INTERNAL_H

#include <dirent.h>
#include <stddef.h>

#include "scalequest/base.h"

/* The runner's content hash of a byte string, as 32 hex digits (malloc'd). */
char *sq_run_hash_bytes(const void *data, size_t len);

/* Join the files of a stage run as n `--shard I/N` parts into the file one unsharded run
 * writes: lines in the order of their ids in the stage's input (run_shards.c). out is
 * written atomically. Parts that do not exist count as empty. */
int sq_run_shard_merge(const char *input, char *const *parts, int n, const char *out, sq_err *e);

/* ---- SVG plots (run_svg.c) ---- */
#include "scalequest/base.h"

typedef struct sq_svg_series {
    const char *name;
    const double *v;
    size_t n;
} sq_svg_series;

void sq_svg_escape(sq_buf *b, const char *s);
/* One or two series binned over their common range; density: bars are shares, not counts. */
void sq_svg_histogram(sq_buf *b, const char *title, const char *xlabel, const sq_svg_series *series, int nseries,
                      int nbins, int density);
/* Horizontal bars, one per label, the value printed after each. */
void sq_svg_bars(sq_buf *b, const char *title, const char *const *labels, const double *values, int n,
                 const char *unit);

#endif
