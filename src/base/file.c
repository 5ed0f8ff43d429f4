/* Files: whole reads, atomic writes (temp + fsync + rename), mmap, directories. */
#include "scalequest/base.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int sq_file_read_all(const char *path, char **data, size_t *len, sq_err *e) {
    *data = NULL;
    if (len) *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return sq_fail(e, SQ_EIO, "%s: cannot open: %s", path, strerror(errno));
    sq_buf b = {0};
    char chunk[1 << 16];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
        if (sq_buf_append(&b, chunk, n)) {
            fclose(fp);
            sq_buf_free(&b);
            return sq_fail(e, SQ_ENOMEM, "%s: out of memory", path);
        }
    int bad = ferror(fp);
    fclose(fp);
    if (bad) {
        sq_buf_free(&b);
        return sq_fail(e, SQ_EIO, "%s: read error", path);
    }
    if (!b.data && sq_buf_reserve(&b, 0)) return sq_fail(e, SQ_ENOMEM, "%s: out of memory", path);
    b.data[b.len] = 0;
    *data = b.data;
    if (len) *len = b.len;
    return 0;
}

static void fsync_parent_dir(const char *path) {
    char *copy = sq_strdup(path);
    if (!copy) return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

/* A killed writer leaves its "PATH.tmp.PID" behind (tens of MB for a big output). Before a
 * new write of PATH, remove those whose process is gone; a live PID's file is another
 * writer's, in progress, and stays. */
static void remove_stale_temps(const char *path) {
    char *copy = sq_strdup(path), *copy2 = sq_strdup(path);
    if (!copy || !copy2) {
        free(copy);
        free(copy2);
        return;
    }
    const char *dir = dirname(copy), *base = basename(copy2);
    size_t bl = strlen(base);
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        const char *n = de->d_name;
        if (strncmp(n, base, bl) || strncmp(n + bl, ".tmp.", 5)) continue;
        const char *digits = n + bl + 5;
        char *end;
        long pid = strtol(digits, &end, 10);
        if (!*digits || *end || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive, or not ours to judge */
        char *full = sq_path_join(dir, n);
        if (full) unlink(full);
        free(full);
    }
    if (d) closedir(d);
    free(copy);
    free(copy2);
}

int sq_atomic_open(sq_atomic_file *f, const char *path, sq_err *e) {
    memset(f, 0, sizeof *f);
    remove_stale_temps(path);
    f->path = sq_strdup(path);
    size_t n = strlen(path) + 32;
    f->tmp_path = malloc(n);
    if (!f->path || !f->tmp_path) {
        sq_atomic_abort(f);
        return sq_fail(e, SQ_ENOMEM, "out of memory");
    }
    snprintf(f->tmp_path, n, "%s.tmp.%d", path, (int)getpid());
    f->fp = fopen(f->tmp_path, "wb");
    if (!f->fp) {
        int err = errno;
        sq_atomic_abort(f);
        return sq_fail(e, SQ_EIO, "%s: cannot create: %s", path, strerror(err));
    }
    return 0;
}

int sq_atomic_commit(sq_atomic_file *f, sq_err *e) {
    int rc = 0;
    if (fflush(f->fp) != 0 || fsync(fileno(f->fp)) != 0)
        rc = sq_fail(e, SQ_EIO, "%s: write failed: %s", f->path, strerror(errno));
    if (fclose(f->fp) != 0 && !rc) rc = sq_fail(e, SQ_EIO, "%s: close failed: %s", f->path, strerror(errno));
    f->fp = NULL;
    if (!rc && rename(f->tmp_path, f->path) != 0)
        rc = sq_fail(e, SQ_EIO, "%s: rename failed: %s", f->path, strerror(errno));
    if (!rc) fsync_parent_dir(f->path);
    else unlink(f->tmp_path);
    free(f->path);
    free(f->tmp_path);
    f->path = f->tmp_path = NULL;
    return rc;
}

void sq_atomic_abort(sq_atomic_file *f) {
    if (f->fp) fclose(f->fp);
    if (f->tmp_path) unlink(f->tmp_path);
    free(f->path);
    free(f->tmp_path);
    memset(f, 0, sizeof *f);
}

int sq_file_write_atomic(const char *path, const void *data, size_t len, sq_err *e) {
    sq_atomic_file f;
    int rc = sq_atomic_open(&f, path, e);
    if (rc) return rc;
    if (len && fwrite(data, 1, len, f.fp) != len) {
        sq_atomic_abort(&f);
        return sq_fail(e, SQ_EIO, "%s: write failed: %s", path, strerror(errno));
    }
    return sq_atomic_commit(&f, e);
}

int sq_mmap_open(sq_mmap *m, const char *path, sq_err *e) {
    m->data = NULL;
    m->len = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return sq_fail(e, SQ_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return sq_fail(e, SQ_EIO, "%s: cannot stat: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return sq_fail(e, SQ_EINVAL, "%s: not a regular file", path);
    }
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            return sq_fail(e, SQ_EIO, "%s: mmap failed: %s", path, strerror(errno));
        }
        m->data = p;
        m->len = (size_t)st.st_size;
    }
    close(fd);
    return 0;
}

void sq_mmap_close(sq_mmap *m) {
    if (m->data) munmap((void *)m->data, m->len);
    m->data = NULL;
    m->len = 0;
}

int sq_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int sq_dir_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int sq_mkdirs(const char *path, sq_err *e) {
    char *p = sq_strdup(path);
    if (!p) return sq_fail(e, SQ_ENOMEM, "out of memory");
    for (char *s = p + 1;; s++) {
        char c = *s;
        if (c == '/' || c == 0) {
            *s = 0;
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                int err = errno;
                free(p);
                return sq_fail(e, SQ_EIO, "%s: cannot create directory: %s", path, strerror(err));
            }
            *s = c;
        }
        if (!c) break;
    }
    free(p);
    return 0;
}

char *sq_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t k = a;
    if (a && dir[a - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}
