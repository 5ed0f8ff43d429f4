/* Streaming JSONL reader. Three sources, one line walk:
 *  - a regular file is mapped (mmap), so the bytes are read where the page cache holds
 *    them instead of being copied into a buffer first (the copy alone is what `wc -l`
 *    costs); pages behind the reader are dropped from the mapping as it goes, so resident
 *    memory stays a few tens of MB whatever the file's size. The file is read as it was
 *    at open (its size then).
 *  - memory (sq_jsonl_open_mem) is read in place;
 *  - stdin, pipes and anything that cannot be mapped: read(2) in large chunks into one
 *    growable buffer, memchr for line ends, each line validated as it is reached. The
 *    buffer holds at least one whole line, so a line of any length is one contiguous span;
 *    it grows by doubling when a line outgrows it and never shrinks.
 * Mapped and memory input with more than one thread allowed is validated a span of several
 * MB at a time, in parallel (jsonl_batch.c), one span ahead of the lines being handed out;
 * the lines are handed out in file order from the recorded verdicts, so what the caller
 * sees (lines, numbers, the first error, skip-bad counts) is what the sequential walk
 * gives. Small inputs never start a thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jsonl_internal.h"

/* Small enough that a chunk is still in L2 when the validator reaches it (4 MB reads ran
 * at half the speed), large enough that system calls do not matter. */
#define READ_CHUNK (128u << 10)
#define WARN_FIRST 10 /* bad lines warned one by one with skip_bad; the rest only counted */
#define PART_BYTES (256u << 10) /* a span is PARTS_PER_THREAD parts of this size per thread */
#define PARTS_PER_THREAD 16
#define MIN_PARALLEL (1u << 20) /* less input left than this is validated by the caller's thread */
#define RELEASE_BYTES (16u << 20) /* drop the pages behind the reader in steps of this */

struct sq_jsonl_reader {
    char *path;
    int fd, own_fd;
    char *buf;           /* owned unless mem; a mapping when map */
    size_t cap, beg, end; /* unread bytes are buf[beg, end) */
    size_t scan;          /* no '\n' in buf[beg, scan) */
    int eof, mem, map;
    int skip_bad;
    int64_t line, bad, bytes, size;
    int threads;                 /* 0: sq_threads_get() */
    size_t part_bytes, min_bytes; /* see sq_jsonl_set_batch */
    size_t released;             /* map: buf[0, released) is dropped from the mapping */
    sq_jsonl_pool *pool;
    sq_jsonl_batch batch[2];     /* the span being walked, batch[cur], and the next one */
    int cur, in_batch, ahead;    /* walking batch[cur]; batch[!cur] is posted */
};

static int reader_new(sq_jsonl_reader **out, const char *name, int skip_bad, sq_err *e) {
    sq_jsonl_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->path = sq_strdup(name))) {
        free(r);
        return sq_fail(e, SQ_ENOMEM, "%s: out of memory", name);
    }
    r->fd = -1;
    r->skip_bad = skip_bad;
    r->size = -1;
    r->part_bytes = PART_BYTES;
    r->min_bytes = MIN_PARALLEL;
    *out = r;
    return 0;
}

int sq_jsonl_open(sq_jsonl_reader **out, const char *path, int skip_bad, sq_err *e) {
    *out = NULL;
    int is_stdin = !strcmp(path, "-");
    sq_jsonl_reader *r = NULL;
    int rc = reader_new(&r, is_stdin ? "<stdin>" : path, skip_bad, e);
    if (rc) return rc;
    if (is_stdin) {
        r->fd = STDIN_FILENO;
    } else {
        r->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (r->fd < 0) {
            rc = sq_fail(e, errno == ENOENT ? SQ_ENOTFOUND : SQ_EIO, "%s: cannot open: %s", path, strerror(errno));
            sq_jsonl_close(r);
            return rc;
        }
        r->own_fd = 1;
        struct stat st;
        if (fstat(r->fd, &st) == 0 && S_ISDIR(st.st_mode)) {
            sq_jsonl_close(r);
            return sq_fail(e, SQ_EIO, "%s: is a directory", path);
        }
        if (fstat(r->fd, &st) == 0 && S_ISREG(st.st_mode)) r->size = (int64_t)st.st_size;
        posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        /* Size 0 is read(2) too: files in /proc say 0 and still have content. */
        if (r->size > 0 && (uint64_t)r->size <= SIZE_MAX) {
            void *m = mmap(NULL, (size_t)r->size, PROT_READ, MAP_PRIVATE, r->fd, 0);
            if (m != MAP_FAILED) {
                madvise(m, (size_t)r->size, MADV_SEQUENTIAL);
                r->buf = m;
                r->cap = r->end = (size_t)r->size;
                r->eof = r->map = 1;
                *out = r;
                return 0;
            }
        }
    }
    r->cap = 8 * READ_CHUNK;
    r->buf = malloc(r->cap);
    if (!r->buf) {
        sq_jsonl_close(r);
        return sq_fail(e, SQ_ENOMEM, "%s: out of memory", path);
    }
    *out = r;
    return 0;
}

int sq_jsonl_open_mem(sq_jsonl_reader **out, const char *name, const void *data, size_t len, int skip_bad,
                      sq_err *e) {
    *out = NULL;
    sq_jsonl_reader *r = NULL;
    int rc = reader_new(&r, name, skip_bad, e);
    if (rc) return rc;
    /* Never written: mem mode only reads and never refills. "" keeps memchr off NULL. */
    r->buf = len ? (char *)data : (char *)"";
    r->cap = r->end = len;
    r->eof = r->mem = 1;
    r->size = (int64_t)len;
    *out = r;
    return 0;
}

/* Make room and read more; keeps buf[beg, end) and moves it to the front. */
static int fill(sq_jsonl_reader *r, sq_err *e) {
    if (r->beg > 0) {
        memmove(r->buf, r->buf + r->beg, r->end - r->beg);
        r->end -= r->beg;
        r->scan -= r->beg;
        r->beg = 0;
    }
    if (r->cap - r->end < READ_CHUNK) {
        size_t cap = r->cap * 2;
        char *b = realloc(r->buf, cap);
        if (!b) return sq_fail(e, SQ_ENOMEM, "%s:%lld: line too long to hold in memory (%zu bytes so far)", r->path,
                               (long long)r->line + 1, r->end);
        r->buf = b;
        r->cap = cap;
    }
    for (;;) {
        ssize_t n = read(r->fd, r->buf + r->end, READ_CHUNK);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return sq_fail(e, SQ_EIO, "%s: read failed: %s", r->path, strerror(errno));
        if (n == 0) r->eof = 1;
        r->end += (size_t)n;
        r->bytes += n;
        return 0;
    }
}

static int bad_line(sq_jsonl_reader *r, size_t off, const char *why, sq_err *e) {
    if (!r->skip_bad) return sq_fail(e, SQ_EPARSE, "%s:%lld: %s at byte offset %zu", r->path, (long long)r->line, why, off);
    r->bad++;
    if (r->bad <= WARN_FIRST)
        sq_warn("%s:%lld: skipped: %s at byte offset %zu%s", r->path, (long long)r->line, why, off,
                r->bad == WARN_FIRST ? " (further bad lines are only counted)" : "");
    return 0;
}

/* Mapped input: the pages before buf[upto] will not be read again (the caller's last line
 * is gone once it calls again); drop them from the mapping, in large steps. */
static void release_behind(sq_jsonl_reader *r, size_t upto) {
    if (!r->map || upto - r->released < RELEASE_BYTES) return;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    upto -= upto % page;
    madvise(r->buf + r->released, upto - r->released, MADV_DONTNEED);
    r->released = upto;
}

/* Unset, the process's thread count (sq_threads_set, the --threads option; every core by
 * default). */
static int threads_of(const sq_jsonl_reader *r) { return r->threads > 0 ? r->threads : sq_threads_get(); }

/* Post the span of whole lines at beg to the threads (into batch[!cur]); 1 when posted,
 * 0 when the input left is better read line by line, or SQ_ENOMEM. */
static int post_span(sq_jsonl_reader *r, sq_err *e) {
    size_t left = r->end - r->beg;
    int threads = threads_of(r);
    /* Only where buf holds the whole input at its own offsets (line 1 at 0), never for
     * stdin or pipes, even once they reach their end. */
    if (!(r->map || r->mem) || threads < 2 || left == 0 || left < r->min_bytes) return 0;
    size_t want = r->part_bytes * PARTS_PER_THREAD * (size_t)threads, stop = r->end;
    if (want < left) {
        const char *nl = memchr(r->buf + r->beg + want, '\n', left - want);
        if (nl) stop = (size_t)(nl - r->buf) + 1;
    }
    if (sq_jsonl_batch_post(&r->batch[!r->cur], &r->pool, r->buf, r->beg, stop, threads, threads * PARTS_PER_THREAD,
                            !r->skip_bad))
        return sq_fail(e, SQ_ENOMEM, "%s:%lld: out of memory", r->path, (long long)r->line + 1);
    r->beg = r->scan = stop;
    r->ahead = 1;
    return 1;
}

/* Where the lines not yet handed out begin. */
static size_t walk_pos(const sq_jsonl_reader *r) {
    if (r->in_batch) return r->batch[r->cur].cur;
    return r->ahead ? r->batch[!r->cur].beg : r->beg;
}

int sq_jsonl_next_line(sq_jsonl_reader *r, const char **line, size_t *len, sq_err *e) {
    release_behind(r, walk_pos(r)); /* the lines already handed out */
    for (;;) {
        size_t start, stop;
        int verdict = -1, cr = 0; /* not judged yet */
        if (r->in_batch) {
            if (!sq_jsonl_batch_next(&r->batch[r->cur], &start, &stop, &cr, &verdict)) {
                r->in_batch = 0;
                continue;
            }
        } else {
            int rc;
            if (r->ahead) {
                /* The next span: finish it, then post the one after, which is judged while
                 * this one is handed out. */
                r->cur = !r->cur;
                r->ahead = 0;
                if (sq_jsonl_batch_wait(&r->batch[r->cur], r->pool)) {
                    r->beg = r->scan = r->batch[r->cur].beg; /* a caller that goes on retries it */
                    return sq_fail(e, SQ_ENOMEM, "%s:%lld: out of memory", r->path, (long long)r->line + 1);
                }
                r->in_batch = 1;
                if ((rc = post_span(r, e)) < 0) return rc;
                continue;
            }
            if ((rc = post_span(r, e)) < 0) return rc;
            if (rc) continue;
            const char *nl = memchr(r->buf + r->scan, '\n', r->end - r->scan);
            start = r->beg;
            if (nl) {
                stop = (size_t)(nl - r->buf);
                r->beg = r->scan = stop + 1;
            } else if (r->eof) {
                if (r->beg == r->end) return 0;
                stop = r->beg = r->scan = r->end; /* a last line without '\n' */
            } else {
                r->scan = r->end;
                rc = fill(r, e);
                if (rc) return rc;
                continue;
            }
        }
        r->line++;
        const char *s = r->buf + start;
        size_t n = stop - start;
        if (verdict == SQ_JSONL_LINE_BLANK) continue;
        if (verdict == SQ_JSONL_LINE_OK && r->line > 1) {
            /* Judged by a batch thread: its bytes are not touched again here (by now they
             * have left this core's caches). */
            *line = s;
            *len = n - (size_t)cr;
            return 1;
        }
        if (!sq_jsonl_trim(&s, &n, r->line == 1)) continue;
        size_t off = 0;
        const char *why = "invalid line";
        int bad = verdict == SQ_JSONL_LINE_BAD ? sq_jsonl_check_ref(s, n, &off, &why) != 0
                                               : verdict < 0 && sq_jsonl_check(s, n, &off, &why) != 0;
        if (bad) {
            if (!r->skip_bad && r->in_batch) {
                /* The spans stopped at this line: a caller that goes on after the error
                 * resumes from the next line. */
                r->in_batch = 0;
                if (r->ahead) sq_jsonl_batch_cancel(&r->batch[!r->cur], r->pool);
                r->ahead = 0;
                r->beg = r->scan = stop < r->end ? stop + 1 : r->end;
            }
            int rc = bad_line(r, off, why, e);
            if (rc) return rc;
            continue;
        }
        *line = s;
        *len = n;
        return 1;
    }
}

int sq_jsonl_next(sq_jsonl_reader *r, cJSON **rec, sq_err *e) {
    *rec = NULL;
    for (;;) {
        const char *s;
        size_t n;
        int rc = sq_jsonl_next_line(r, &s, &n, e);
        if (rc <= 0) return rc;
        *rec = cJSON_ParseWithLength(s, n);
        if (*rec) return 1;
        /* Only allocation failure gets here: the validator accepts nothing cJSON refuses. */
        rc = bad_line(r, 0, "the JSON parser could not build the record (out of memory?)", e);
        if (rc) return rc;
    }
}

int sq_jsonl_parse(const char *line, size_t len, cJSON **rec, sq_err *e) {
    *rec = NULL;
    int rc = sq_jsonl_validate(line, len, e);
    if (rc) return rc;
    *rec = cJSON_ParseWithLength(line, len);
    return *rec ? 0 : sq_fail(e, SQ_ENOMEM, "out of memory parsing a record");
}

int64_t sq_jsonl_line_number(const sq_jsonl_reader *r) { return r->line; }
int64_t sq_jsonl_bad_lines(const sq_jsonl_reader *r) { return r->bad; }
const char *sq_jsonl_path(const sq_jsonl_reader *r) { return r->path; }
int64_t sq_jsonl_bytes_read(const sq_jsonl_reader *r) { return r->mem || r->map ? (int64_t)walk_pos(r) : r->bytes; }

void sq_jsonl_set_threads(sq_jsonl_reader *r, int threads) { r->threads = threads > 0 ? threads : 0; }

void sq_jsonl_set_batch(sq_jsonl_reader *r, size_t part_bytes, size_t min_bytes) {
    r->part_bytes = part_bytes ? part_bytes : PART_BYTES;
    r->min_bytes = part_bytes || min_bytes ? min_bytes : MIN_PARALLEL;
}
int64_t sq_jsonl_size(const sq_jsonl_reader *r) { return r->size; }

void sq_jsonl_close(sq_jsonl_reader *r) {
    if (!r) return;
    if (r->own_fd && r->fd >= 0) close(r->fd);
    if (r->ahead) sq_jsonl_batch_cancel(&r->batch[!r->cur], r->pool);
    sq_jsonl_pool_free(r->pool); /* before the memory its threads might still read */
    sq_jsonl_batch_free(&r->batch[0]);
    sq_jsonl_batch_free(&r->batch[1]);
    if (r->map) munmap(r->buf, r->cap);
    else if (!r->mem) free(r->buf);
    free(r->path);
    free(r);
}
