/* Runs every registered case of one test binary; see test.h. */
#include "test.h"

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

int sq_test_kill_while_writing(const char *cmd, const char *watch, double delay_s) {
    char *pid_s = NULL;
    sq_test_sh(&pid_s, "%s >/dev/null 2>&1 & echo $!", cmd);
    pid_t pid = pid_s ? (pid_t)atol(pid_s) : 0;
    free(pid_s);
    if (pid <= 0) return 0;
    for (int w = 0; watch && w < 500 && sq_test_lines(watch) <= 0; w++) usleep(10000);
    usleep((useconds_t)(delay_s * 1e6));
    int landed = kill(pid, SIGKILL) == 0;
    sq_test_sh(NULL, "while kill -0 %d 2>/dev/null; do sleep 0.02; done", (int)pid);
    return landed;
}
