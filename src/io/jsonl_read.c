/* Streaming JSONL reader: large read(2) chunks into one growable buffer, memchr for line
 * ends, the validator on every line, cJSON only when the caller asks for the object.
 *
 * The buffer holds at least one whole line, so a line of any length is returned as one
 * contiguous span; it grows by doubling when a line outgrows it and never shrinks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jsonl_internal.h"

/* Small enough that a chunk is still in L2 when the validator reaches it (4 MB reads ran
 * at half the speed), large enough that system calls do not matter. */
#define READ_CHUNK (128u << 10)
#define WARN_FIRST 10 /* bad lines warned one by one with skip_bad; the rest only counted */

struct sq_jsonl_reader {
    char *path;
    int fd, own_fd;
    char *buf;           /* owned unless mem */
    size_t cap, beg, end; /* unread bytes are buf[beg, end) */
    size_t scan;          /* no '\n' in buf[beg, scan) */
    int eof, mem;
    int skip_bad;
    int64_t line, bad, bytes, size;
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

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

static int bad_line(sq_jsonl_reader *r, size_t off, const char *why, sq_err *e) {
    if (!r->skip_bad) return sq_fail(e, SQ_EPARSE, "%s:%lld: %s at byte offset %zu", r->path, (long long)r->line, why, off);
    r->bad++;
    if (r->bad <= WARN_FIRST)
        sq_warn("%s:%lld: skipped: %s at byte offset %zu%s", r->path, (long long)r->line, why, off,
                r->bad == WARN_FIRST ? " (further bad lines are only counted)" : "");
    return 0;
}

int sq_jsonl_next_line(sq_jsonl_reader *r, const char **line, size_t *len, sq_err *e) {
    for (;;) {
        const char *nl = memchr(r->buf + r->scan, '\n', r->end - r->scan);
        size_t start = r->beg, stop;
        if (nl) {
            stop = (size_t)(nl - r->buf);
            r->beg = r->scan = stop + 1;
        } else if (r->eof) {
            if (r->beg == r->end) return 0;
            stop = r->beg = r->scan = r->end; /* a last line without '\n' */
        } else {
            r->scan = r->end;
            int rc = fill(r, e);
            if (rc) return rc;
            continue;
        }
        r->line++;
        const char *s = r->buf + start;
        size_t n = stop - start;
        if (n && s[n - 1] == '\r') n--;
        if (r->line == 1 && n >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3)) s += 3, n -= 3; /* a UTF-8 byte-order mark */
        if (n == 0 || (s[0] != '{' && is_blank(s, n))) continue;
        size_t off;
        const char *why;
        if (sq_jsonl_check(s, n, &off, &why)) {
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
int64_t sq_jsonl_bytes_read(const sq_jsonl_reader *r) { return r->mem ? (int64_t)r->beg : r->bytes; }
int64_t sq_jsonl_size(const sq_jsonl_reader *r) { return r->size; }

void sq_jsonl_close(sq_jsonl_reader *r) {
    if (!r) return;
    if (r->own_fd && r->fd >= 0) close(r->fd);
    if (!r->mem) free(r->buf);
    free(r->path);
    free(r);
}
