/* Runs every registered case of one test binary; see test.h. */
#include "test.h"

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "scalequest/base.h"

typedef struct {
    const char *name, *file;
    sq_test_fn fn;
} test_case;

static test_case g_cases[1024];
static int g_ncases;
static int g_failed, g_skipped;
static char g_fail_msg[1024], g_skip_msg[512];
static char g_tmproot[512];

void sq_test_register(const char *name, sq_test_fn fn, const char *file) {
    if (g_ncases < (int)SQ_ARRAY_LEN(g_cases)) g_cases[g_ncases++] = (test_case){name, file, fn};
}

void sq_test_fail(const char *file, int line, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Keep the first failure as the case's reason; print every one for context. */
    if (!g_failed) snprintf(g_fail_msg, sizeof g_fail_msg, "%s:%d: %s", file, line, msg);
    else fprintf(stdout, "  also %s:%d: %s\n", file, line, msg);
    g_failed++;
}

void sq_test_skip(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_skip_msg, sizeof g_skip_msg, fmt, ap);
    va_end(ap);
    g_skipped = 1;
}

int sq_test_failed_now(void) { return g_failed; }

const char *sq_test_asset(const char *rel) {
    static char path[8][1024];
    static int slot;
    const char *root = getenv("SQ_ASSETS");
    if (!root) root = "../shared/assets";
    char *p = path[slot++ % 8];
    snprintf(p, 1024, "%s/%s", root, rel);
    struct stat st;
    return stat(p, &st) == 0 ? p : NULL;
}

static void rm_tmproot(void) {
    if (g_tmproot[0]) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmproot);
        if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", g_tmproot);
    }
}

const char *sq_test_tmpdir(void) {
    static char dir[600];
    static int n;
    if (!g_tmproot[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(g_tmproot, sizeof g_tmproot, "%s/sqtest.XXXXXX", t ? t : "/tmp");
        if (!mkdtemp(g_tmproot)) {
            g_tmproot[0] = 0;
            return "/tmp";
        }
        atexit(rm_tmproot);
    }
    snprintf(dir, sizeof dir, "%s/%d", g_tmproot, n++);
    mkdir(dir, 0777);
    return dir;
}

const char *sq_test_cli(void) {
    static char path[1024];
    if (!path[0]) {
        const char *c = getenv("SQ_CLI");
        snprintf(path, sizeof path, "%s", c ? c : "build/san/scalequest");
    }
    return path;
}

int sq_test_sh(char **out, const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (out) *out = NULL;
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    sq_buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0) sq_buf_append(&b, chunk, n);
    int st = pclose(p);
    if (out) *out = b.data ? b.data : sq_strdup("");
    else sq_buf_free(&b);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    sq_log_set_level(SQ_LOG_WARN);
    int fails = 0;
    for (int i = 0; i < g_ncases; i++) {
        test_case *t = &g_cases[i];
        if (argc > 1 && !strstr(t->name, argv[1])) continue;
        const char *base = strrchr(t->file, '/');
        base = base ? base + 1 : t->file;
        g_failed = g_skipped = 0;
        g_fail_msg[0] = g_skip_msg[0] = 0;
        double t0 = sq_now();
        t->fn();
        double dt = sq_now() - t0;
        if (g_failed) {
            printf("FAIL %s:%s: %s\n", base, t->name, g_fail_msg);
            fails++;
        } else if (g_skipped) {
            printf("SKIP %s:%s: %s\n", base, t->name, g_skip_msg);
        } else {
            printf("PASS %s:%s (%.2fs)\n", base, t->name, dt);
        }
    }
    return fails ? 1 : 0;
}

int sq_test_lines(const char *path) {
    char *c = NULL;
    sq_test_sh(&c, "cat '%s' 2>/dev/null | wc -l", path);
    int n = c ? atoi(c) : 0;
    free(c);
    return n;
}


/* Newlines in a file (0 when it does not exist), read again only when its size changed: the
 * kill loop below asks every millisecond. */
typedef struct line_watch {
    const char *path;
    long long size;
    long lines;
} line_watch;

static long watch_lines(line_watch *w) {
    struct stat st;
    if (stat(w->path, &st) != 0) return w->lines = 0;
    if ((long long)st.st_size == w->size) return w->lines;
    FILE *f = fopen(w->path, "rb");
    if (!f) return w->lines;
    long n = 0;
    char buf[65536];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0)
        for (size_t i = 0; i < got; i++) n += buf[i] == '\n';
    fclose(f);
    w->size = (long long)st.st_size;
    return w->lines = n;
}

int sq_test_kill_at_line(const char *cmd, const char *watch, long line) {
    /* our own child, not a shell's background job: waitpid tells when it has ended */
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int dn = open("/dev/null", O_WRONLY);
        if (dn >= 0) dup2(dn, 1), dup2(dn, 2);
        char full[8200];
        snprintf(full, sizeof full, "exec %s", cmd);
        execl("/bin/sh", "sh", "-c", full, (char *)NULL);
        _exit(127);
    }
    line_watch w = {watch, -1, 0};
    double t0 = sq_now();
    int landed = 0, status = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) break; /* it ended before the file reached `line` lines */
        if (watch_lines(&w) >= line || sq_now() - t0 > 600) {
            landed = kill(pid, SIGKILL) == 0;
            waitpid(pid, &status, 0);
            /* killed after its last line was written (while it closed): not an interruption */
            if (landed && !(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) landed = 0;
            break;
        }
        usleep(1000);
    }
    if (!landed && WIFEXITED(status) && WEXITSTATUS(status) != 0)
        printf("  note: `%.200s` exited with status %d before its kill\n", cmd, WEXITSTATUS(status));
    return landed;
}

int sq_test_kill_rounds(const char *cmd, const char *watch, long total, int rounds, uint64_t seed) {
    const char *name = strrchr(watch, '/');
    name = name ? name + 1 : watch;
    uint64_t x = seed * 2654435761u + 1;
    int cut = 0;
    for (int a = 0; a < 2 * rounds && cut < rounds; a++) {
        line_watch w = {watch, -1, 0};
        long have = watch_lines(&w);
        if (total - have < 2) break; /* no line left between the next one and the last */
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        /* in the first half of what is left: records reach the file in bursts (a chunk's
         * results at once), and a line inside the last burst cannot be interrupted */
        long span = (total - have) / 2, line = have + 1 + (long)(x % (uint64_t)(span > 0 ? span : 1));
        int landed = sq_test_kill_at_line(cmd, watch, line);
        w.size = -1;
        long done = watch_lines(&w);
        if (getenv("SQ_TEST_VERBOSE"))
            printf("  %s: kill round %d at line %ld of %ld: %s, %ld lines\n", name, a, line, total,
                   landed == 1 ? "killed" : "ended first", done);
        if (landed == 1 && done < total) {
            cut++;
            continue;
        }
        printf("  note: %s: kill round %d (at line %ld of %ld) did not interrupt the run: %s; %ld lines\n", name, a, line,
               total, landed == 1 ? "it had written every line" : "it ended first", done);
        if (done >= total) break;
    }
    return cut;
}
