/* The runner's `shards:` setting: a stage run as N `--shard I/N` processes, each writing its
 * own files, joined back into the file one unsharded run writes, byte for byte.
 *
 * Why not `jsonl merge`: it concatenates, so the merged file is in shard order. A stage writes
 * its records in input order, and a record's shard is a pure function of its id, so walking
 * the stage's input once and taking, for each input id, the next line of that id's shard
 * (when it is that id) rebuilds the single run's order exactly. A shard line that is never
 * taken means the shard did not keep input order, and the merge fails rather than guess. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run_internal.h"
#include "scalequest/jsonl.h"

typedef struct shard_in {
    sq_jsonl_reader *r;
    const char *line;
    size_t len;
    sq_buf id;
    int more;
} shard_in;

static int advance(shard_in *s, sq_err *e) {
    if (!s->r) return s->more = 0;
    int got = sq_jsonl_next_line(s->r, &s->line, &s->len, e);
    if (got < 0) return got;
    s->more = got == 1;
    if (!s->more) return 0;
    int h = sq_jsonl_line_str(s->line, s->len, "id", &s->id);
    if (h < 0) return sq_fail(e, h, "%s:%lld: unreadable record", sq_jsonl_path(s->r), (long long)sq_jsonl_line_number(s->r));
    if (h == 0)
        return sq_fail(e, SQ_EPARSE, "%s:%lld: no string \"id\"", sq_jsonl_path(s->r),
                       (long long)sq_jsonl_line_number(s->r));
    return 0;
}

int sq_run_shard_merge(const char *input, char *const *parts, int n, const char *out, sq_err *e) {
    if (n < 1 || n > 4096) return sq_fail(e, SQ_EINVAL, "shards: %d parts", n);
    shard_in *sh = calloc((size_t)n, sizeof *sh);
    if (!sh) return sq_fail(e, SQ_ENOMEM, "out of memory");
    sq_jsonl_reader *in = NULL;
    sq_jsonl_writer *w = NULL;
    sq_buf id = {0};
    int rc = sq_jsonl_open(&in, input, 0, e);
    for (int k = 0; k < n && !rc; k++) {
        /* a shard that settled nothing may have written no file at all */
        if (sq_file_exists(parts[k])) rc = sq_jsonl_open(&sh[k].r, parts[k], 0, e);
        if (!rc) rc = advance(&sh[k], e);
    }
    if (!rc) rc = sq_jsonl_writer_open(&w, out, SQ_JSONL_CREATE, e);
    while (!rc) {
        const char *line;
        size_t len;
        int got = sq_jsonl_next_line(in, &line, &len, e);
        if (got <= 0) {
            rc = got;
            break;
        }
        int h = sq_jsonl_line_str(line, len, "id", &id);
        if (h <= 0) {
            rc = sq_fail(e, h < 0 ? h : SQ_EPARSE, "%s:%lld: no string \"id\"", input, (long long)sq_jsonl_line_number(in));
            break;
        }
        shard_in *s = &sh[sq_jsonl_shard_hash(id.data, id.len) % (uint64_t)n];
        if (s->more && s->id.len == id.len && !memcmp(s->id.data, id.data, id.len)) {
            rc = sq_jsonl_write_line(w, s->line, s->len, e);
            if (!rc) rc = advance(s, e);
        }
    }
    for (int k = 0; k < n && !rc; k++)
        if (sh[k].more)
            rc = sq_fail(e, SQ_ESTATE, "%s:%lld: id \"%s\" is not where %s has it (shard %d of %d)", parts[k],
                         (long long)sq_jsonl_line_number(sh[k].r), sh[k].id.data, input, k, n);
    if (w) {
        if (rc) sq_jsonl_writer_abort(w);
        else rc = sq_jsonl_writer_close(w, e);
    }
    for (int k = 0; k < n; k++) {
        if (sh[k].r) sq_jsonl_close(sh[k].r);
        sq_buf_free(&sh[k].id);
    }
    if (in) sq_jsonl_close(in);
    sq_buf_free(&id);
    free(sh);
    return rc;
}
