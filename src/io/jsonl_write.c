/* JSONL writer: whole-file outputs committed atomically, long stages appended resumably.
 *
 * APPEND mode survives kill -9 because each record goes to the kernel as one write(2) of a
 * whole line (the scratch buffer holds the record and its '\n'). A kill can still leave a
 * torn last line (a large write interrupted part-way, or a power loss before fsync); opening
 * the file again cuts everything after the last '\n' and reloads the ids before it, so the
 * stage skips what is done and redoes only the torn record. An exclusive flock keeps two
 * processes from appending to one file at once. A batched writer (sq_jsonl_writer_batch)
 * collects whole lines and writes them together: the same file after a kill, minus the
 * collected lines, which the stage redoes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jsonl_internal.h"

struct sq_jsonl_writer {
    sq_jsonl_mode mode;
    char *path;
    sq_atomic_file af; /* CREATE to a file */
    FILE *fp;          /* CREATE: af.fp or stdout */
    int to_stdout;
    int fd; /* APPEND */
    sq_keyset *ids;
    int64_t count;
    sq_buf scratch;
    sq_buf id;
    int batched; /* APPEND: lines collect in `batch` (sq_jsonl_writer_batch) */
    sq_buf batch;
};

enum { BATCH_BYTES = 32 << 10 };

static void writer_free(sq_jsonl_writer *w) {
    sq_keyset_free(w->ids);
    sq_buf_free(&w->scratch);
    sq_buf_free(&w->id);
    sq_buf_free(&w->batch);
    free(w->path);
    free(w);
}

/* Offset just past the last '\n' (0 when there is none), reading backwards in chunks. */
static int last_newline_end(int fd, off_t size, off_t *out, const char *path, sq_err *e) {
    char chunk[1 << 16];
    off_t pos = size;
    while (pos > 0) {
        size_t n = (size_t)SQ_MIN((off_t)sizeof chunk, pos);
        pos -= (off_t)n;
        ssize_t got = pread(fd, chunk, n, pos);
        if (got != (ssize_t)n) return sq_fail(e, SQ_EIO, "%s: read failed: %s", path, got < 0 ? strerror(errno) : "short read");
        for (size_t i = n; i > 0; i--)
            if (chunk[i - 1] == '\n') {
                *out = pos + (off_t)i;
                return 0;
            }
    }
    *out = 0;
    return 0;
}

/* Cut a torn tail, then load every id already in the file. */
static int recover(sq_jsonl_writer *w, sq_err *e) {
    struct stat st;
    if (fstat(w->fd, &st) != 0) return sq_fail(e, SQ_EIO, "%s: cannot stat: %s", w->path, strerror(errno));
    if (st.st_size == 0) return 0;
    off_t keep;
    int rc = last_newline_end(w->fd, st.st_size, &keep, w->path, e);
    if (rc) return rc;
    if (keep < st.st_size) {
        sq_warn("%s: cut a torn last line (%lld bytes) left by an interrupted run", w->path,
                (long long)(st.st_size - keep));
        if (ftruncate(w->fd, keep) != 0 || fsync(w->fd) != 0)
            return sq_fail(e, SQ_EIO, "%s: cannot cut the torn last line: %s", w->path, strerror(errno));
    }
    sq_jsonl_reader *r;
    if ((rc = sq_jsonl_open(&r, w->path, 0, e))) return rc;
    const char *line;
    size_t len;
    while ((rc = sq_jsonl_next_line(r, &line, &len, e)) == 1) {
        int got = sq_jsonl_line_str(line, len, "id", &w->id);
        if (got < 0) rc = sq_fail(e, got, "%s:%lld: cannot read the id", w->path, (long long)sq_jsonl_line_number(r));
        else if (got == 0)
            rc = sq_fail(e, SQ_EPARSE, "%s:%lld: record has no string \"id\" (append mode needs one to resume)",
                         w->path, (long long)sq_jsonl_line_number(r));
        else if (sq_keyset_add(w->ids, w->id.data, w->id.len) < 0) rc = sq_fail(e, SQ_ENOMEM, "%s: out of memory", w->path);
        if (rc < 0) break;
        w->count++;
    }
    sq_jsonl_close(r);
    return rc < 0 ? rc : 0;
}

int sq_jsonl_writer_open(sq_jsonl_writer **out, const char *path, sq_jsonl_mode mode, sq_err *e) {
    *out = NULL;
    sq_jsonl_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->path = sq_strdup(path))) {
        free(w);
        return sq_fail(e, SQ_ENOMEM, "%s: out of memory", path);
    }
    w->mode = mode;
    w->fd = -1;
    int rc;
    if (mode == SQ_JSONL_CREATE) {
        if (!strcmp(path, "-")) {
            w->fp = stdout;
            w->to_stdout = 1;
        } else {
            if ((rc = sq_atomic_open(&w->af, path, e))) {
                writer_free(w);
                return rc;
            }
            w->fp = w->af.fp;
            setvbuf(w->fp, NULL, _IOFBF, 1 << 20);
        }
        *out = w;
        return 0;
    }
    if (mode != SQ_JSONL_APPEND || !strcmp(path, "-")) {
        writer_free(w);
        return sq_fail(e, SQ_EINVAL, "%s: append mode needs a regular file", path);
    }
    if (!(w->ids = sq_keyset_new())) {
        writer_free(w);
        return sq_fail(e, SQ_ENOMEM, "%s: out of memory", path);
    }
    w->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
    if (w->fd < 0) {
        rc = sq_fail(e, SQ_EIO, "%s: cannot open for appending: %s", path, strerror(errno));
        writer_free(w);
        return rc;
    }
    if (flock(w->fd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK ? sq_fail(e, SQ_ESTATE, "%s: another process is appending to it", path)
                                  : sq_fail(e, SQ_EIO, "%s: cannot lock: %s", path, strerror(errno));
        close(w->fd);
        writer_free(w);
        return rc;
    }
    if ((rc = recover(w, e))) {
        close(w->fd);
        writer_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

int sq_jsonl_writer_has_id(const sq_jsonl_writer *w, const char *id) {
    return w->ids && id && sq_keyset_has(w->ids, id, strlen(id));
}

int64_t sq_jsonl_writer_count(const sq_jsonl_writer *w) { return w->count; }

static int write_all(sq_jsonl_writer *w, const char *p, size_t n, sq_err *e) {
    while (n > 0) {
        ssize_t k = write(w->fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return sq_fail(e, SQ_EIO, "%s: write failed: %s", w->path, strerror(errno));
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int write_batch(sq_jsonl_writer *w, sq_err *e) {
    if (!w->batch.len) return 0;
    int rc = write_all(w, w->batch.data, w->batch.len, e);
    sq_buf_reset(&w->batch);
    return rc;
}

void sq_jsonl_writer_batch(sq_jsonl_writer *w) {
    if (w->mode == SQ_JSONL_APPEND) w->batched = 1;
}

/* line is validated, one line, and (APPEND) id is its id. */
static int emit(sq_jsonl_writer *w, const char *line, size_t len, const char *id, size_t id_len, sq_err *e) {
    if (w->mode == SQ_JSONL_CREATE) {
        if (fwrite(line, 1, len, w->fp) != len || putc('\n', w->fp) == EOF)
            return sq_fail(e, SQ_EIO, "%s: write failed: %s", w->to_stdout ? "<stdout>" : w->path, strerror(errno));
        w->count++;
        return 0;
    }
    /* batched, the id counts from when it is collected: one set operation tests and adds it */
    int added = w->batched ? sq_keyset_add(w->ids, id, id_len) : !sq_keyset_has(w->ids, id, id_len);
    if (added < 0) return sq_fail(e, SQ_ENOMEM, "%s: out of memory", w->path);
    if (!added)
        return sq_fail(e, SQ_ESTATE, "%s: id \"%.*s\" is already in the file (check sq_jsonl_writer_has_id first)",
                       w->path, (int)SQ_MIN(id_len, 200), id);
    if (w->batched) {
        if (sq_buf_append(&w->batch, line, len) || sq_buf_append(&w->batch, "\n", 1))
            return sq_fail(e, SQ_ENOMEM, "%s: out of memory", w->path);
        w->count++;
        return w->batch.len >= BATCH_BYTES ? write_batch(w, e) : 0;
    }
    sq_buf_reset(&w->scratch);
    if (sq_buf_reserve(&w->scratch, len + 1)) return sq_fail(e, SQ_ENOMEM, "%s: out of memory", w->path);
    memcpy(w->scratch.data, line, len);
    w->scratch.data[len] = '\n';
    int rc = write_all(w, w->scratch.data, len + 1, e);
    if (rc) return rc;
    if (sq_keyset_add(w->ids, id, id_len) < 0) return sq_fail(e, SQ_ENOMEM, "%s: out of memory", w->path);
    w->count++;
    return 0;
}

int sq_jsonl_write_line(sq_jsonl_writer *w, const char *line, size_t len, sq_err *e) {
    size_t off;
    const char *why;
    if (memchr(line, '\n', len)) return sq_fail(e, SQ_EINVAL, "%s: a record must be one line (it holds a newline)", w->path);
    if (sq_jsonl_check(line, len, &off, &why))
        return sq_fail(e, SQ_EINVAL, "%s: refusing to write an invalid record: %s at byte offset %zu", w->path, why, off);
    if (w->mode == SQ_JSONL_CREATE) return emit(w, line, len, NULL, 0, e);
    int got = sq_jsonl_line_str(line, len, "id", &w->id);
    if (got < 0) return sq_fail(e, got, "%s: cannot read the record's id", w->path);
    if (got == 0) return sq_fail(e, SQ_EINVAL, "%s: record has no string \"id\" (append mode needs one)", w->path);
    return emit(w, line, len, w->id.data, w->id.len, e);
}

int sq_jsonl_write(sq_jsonl_writer *w, const cJSON *rec, sq_err *e) {
    if (!cJSON_IsObject(rec)) return sq_fail(e, SQ_EINVAL, "%s: a record must be a JSON object", w->path);
    const char *id = sq_rec_id(rec);
    if (w->mode == SQ_JSONL_APPEND && !id)
        return sq_fail(e, SQ_EINVAL, "%s: record has no string \"id\" (append mode needs one)", w->path);
    char *line = cJSON_PrintUnformatted(rec);
    if (!line) return sq_fail(e, SQ_ENOMEM, "%s: out of memory serialising a record", w->path);
    /* cJSON escapes control characters, so the text is one line; it can still hold a number
     * cJSON printed as non-JSON (NaN/inf print as null) — the validator is the last word. */
    size_t len = strlen(line), off;
    const char *why;
    int rc;
    if (sq_jsonl_check(line, len, &off, &why))
        rc = sq_fail(e, SQ_EINVAL, "%s: record serialises to invalid JSON: %s at byte offset %zu", w->path, why, off);
    else rc = emit(w, line, len, id, id ? strlen(id) : 0, e);
    free(line);
    return rc;
}

int sq_jsonl_writer_sync(sq_jsonl_writer *w, sq_err *e) {
    if (w->mode == SQ_JSONL_APPEND) {
        int rc = write_batch(w, e);
        if (rc) return rc;
        if (fsync(w->fd) != 0) return sq_fail(e, SQ_EIO, "%s: fsync failed: %s", w->path, strerror(errno));
        return 0;
    }
    if (fflush(w->fp) != 0) return sq_fail(e, SQ_EIO, "%s: write failed: %s", w->path, strerror(errno));
    return 0;
}

int sq_jsonl_writer_close(sq_jsonl_writer *w, sq_err *e) {
    if (!w) return 0;
    int rc = 0;
    if (w->mode == SQ_JSONL_APPEND) {
        rc = write_batch(w, e);
        if (fsync(w->fd) != 0 && !rc) rc = sq_fail(e, SQ_EIO, "%s: fsync failed: %s", w->path, strerror(errno));
        if (close(w->fd) != 0 && !rc) rc = sq_fail(e, SQ_EIO, "%s: close failed: %s", w->path, strerror(errno));
    } else if (w->to_stdout) {
        if (fflush(stdout) != 0 || ferror(stdout)) rc = sq_fail(e, SQ_EIO, "<stdout>: write failed: %s", strerror(errno));
    } else {
        rc = sq_atomic_commit(&w->af, e);
    }
    writer_free(w);
    return rc;
}

void sq_jsonl_writer_abort(sq_jsonl_writer *w) {
    if (!w) return;
    if (w->mode == SQ_JSONL_APPEND) {
        write_batch(w, NULL); /* collected lines are whole records: they stay */
        fsync(w->fd);
        close(w->fd);
    } else if (w->to_stdout) {
        fflush(stdout);
    } else {
        sq_atomic_abort(&w->af);
    }
    writer_free(w);
}
