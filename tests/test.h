/* The test harness: each tests/test_*.c is one binary of registered cases.
 *
 * A case fails when any CHECK fails; REQUIRE stops the case; SKIP ends it as skipped with a
 * reason (only for missing optional material such as ../shared/assets — never to go green).
 * The binary prints one line per case: "PASS file:case", "FAIL file:case: why" or
 * "SKIP file:case: why"; tests/run.sh adds them up.
 */
#ifndef SCALEQUEST_TEST_H
#define SCALEQUEST_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef void (*sq_test_fn)(void);
void sq_test_register(const char *name, sq_test_fn fn, const char *file);
void sq_test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void sq_test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int sq_test_failed_now(void);

/* Path of a file under ../shared/assets (NULL when the assets are absent). Static storage. */
const char *sq_test_asset(const char *rel);
/* A fresh empty directory for this case (under $TMPDIR), removed at exit. Static storage. */
const char *sq_test_tmpdir(void);
/* Path of the scalequest binary built beside the tests. */
const char *sq_test_cli(void);
/* Run a shell command, capture stdout (malloc'd, may be NULL) and return the exit status. */
int sq_test_sh(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Lines in a file (0 when it does not exist). */
int sq_test_lines(const char *path);
/* kill -9 at a point of progress rather than of time, so load cannot move it before the first
 * record or past the last: start `cmd` (one simple command; its output discarded), poll
 * `watch` every millisecond and kill it with SIGKILL as soon as the file holds `line` lines
 * (records from earlier rounds count). 1 when the kill landed while it ran, 0 when it ended
 * first (it never wrote that many lines, or it was killed after it had finished writing),
 * -1 when it could not be started. The caller checks the file: the run was interrupted when
 * it holds fewer lines than an uninterrupted run writes. */
int sq_test_kill_at_line(const char *cmd, const char *watch, long line);
/* The kill -9 resume tests' rounds: up to `rounds` runs of `cmd`, each killed at a random line
 * after those `watch` already holds, in the first half of the lines still to come (`total`:
 * the lines an uninterrupted run writes there). Returns how many rounds really interrupted the run (the file holds fewer
 * than `total` lines after the kill); a round that did not (the child had finished first,
 * which heavy load can cause) is named on stdout and tried again, up to 2 * rounds tries.
 * A test asserts the result is > 0, or, when the file is complete, says why it cannot. */
int sq_test_kill_rounds(const char *cmd, const char *watch, long total, int rounds, uint64_t seed);
/* After sq_test_kill_rounds, before the resuming run: fails unless some round interrupted the
 * run; when none did because the child finished every time (the file is complete), it says so
 * on stdout and asserts nothing. */
#define CHECK_KILLS_INTERRUPTED(cut, watch, total)                                               \
    do {                                                                                        \
        long _n = sq_test_lines(watch), _t = (long)(total);                                     \
        if ((cut) > 0) break;                                                                   \
        if (_n >= _t)                                                                           \
            printf("  note: %s: interruption not asserted: the child finished before every kill\n", (watch)); \
        else                                                                                    \
            sq_test_fail(__FILE__, __LINE__, "no kill interrupted the run (%ld of %ld lines)", _n, _t); \
    } while (0)

#define SQ_TEST(name)                                                                           \
    static void name(void);                                                                     \
    __attribute__((constructor)) static void sq_test_reg_##name(void) {                        \
        sq_test_register(#name, name, __FILE__);                                                \
    }                                                                                           \
    static void name(void)

#define CHECK(cond)                                                                             \
    do {                                                                                        \
        if (!(cond)) sq_test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);                     \
    } while (0)
#define CHECKF(cond, ...)                                                                       \
    do {                                                                                        \
        if (!(cond)) sq_test_fail(__FILE__, __LINE__, __VA_ARGS__);                             \
    } while (0)
#define REQUIRE(cond)                                                                           \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            sq_test_fail(__FILE__, __LINE__, "REQUIRE(%s)", #cond);                             \
            return;                                                                             \
        }                                                                                       \
    } while (0)
#define CHECK_EQ_INT(a, b)                                                                      \
    do {                                                                                        \
        long long _a = (long long)(a), _b = (long long)(b);                                     \
        if (_a != _b) sq_test_fail(__FILE__, __LINE__, "%s == %lld, expected %s == %lld", #a, _a, #b, _b); \
    } while (0)
#define CHECK_EQ_STR(a, b)                                                                      \
    do {                                                                                        \
        const char *_a = (a), *_b = (b);                                                        \
        if (!_a || !_b || strcmp(_a, _b) != 0)                                                  \
            sq_test_fail(__FILE__, __LINE__, "%s == \"%s\", expected \"%s\"", #a, _a ? _a : "(null)", \
                         _b ? _b : "(null)");                                                   \
    } while (0)
#define CHECK_NEAR(a, b, tol)                                                                   \
    do {                                                                                        \
        double _a = (double)(a), _b = (double)(b);                                              \
        if (!(fabs(_a - _b) <= (tol)))                                                          \
            sq_test_fail(__FILE__, __LINE__, "%s == %.9g, expected %.9g (tol %g)", #a, _a, _b, (double)(tol)); \
    } while (0)
#define SKIP(...)                                                                               \
    do {                                                                                        \
        sq_test_skip(__VA_ARGS__);                                                              \
        return;                                                                                 \
    } while (0)

#endif
