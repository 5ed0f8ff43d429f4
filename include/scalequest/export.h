/* export — the final instruction-tuning set: `{id, query, response}` JSONL, the shape that
 * DART-Math's trainer and HF datasets.load_dataset("json", ...) read as it is (every line the
 * same three string fields, nothing else), and the provenance of each line in a side file.
 *
 * Input: `reward` output (or any JSONL with id, query and response). A record whose "kept"
 * list holds k > 1 responses (reward --keep all|top-K) becomes k lines with ids ID, ID#1, ...,
 * best first. The provenance line of each output line carries its id and every other field of
 * the input record except the texts (query, response, responses, kept), plus "source_id" and
 * "rank". Both files are written whole and atomically (a killed run leaves the old files or
 * none; the rerun writes them again), and a record without string id/query/response is an
 * error naming file:line.
 */
#ifndef SCALEQUEST_EXPORT_H
#define SCALEQUEST_EXPORT_H

#include <stdint.h>

#include "scalequest/base.h"

typedef struct sq_export_opts {
    const char *in, *out;
    const char *provenance; /* NULL: out with ".jsonl" replaced by ".provenance.jsonl" */
    const char *field;      /* question field (default "query") */
    int skip_bad;           /* count and skip unparsable lines */
} sq_export_opts;

typedef struct sq_export_stats {
    int64_t records, lines, skipped_bad;
} sq_export_stats;

void sq_export_opts_default(sq_export_opts *o);
int sq_export_run(const sq_export_opts *o, sq_export_stats *st, sq_err *e);

#endif
