/* base — errors, logging, progress, RNG, time, files and small buffers.
 *
 * Everything else in libscalequest stands on this module. It owns no global state except
 * the log level and the progress-bar switch (both set once by the CLI). Every function that
 * can fail returns 0 or a negative SQ_E* code and, when given a non-NULL sq_err, fills it
 * with a one-line message that names the file, line or offset and what was wrong. Callers
 * own every buffer they pass in; functions that allocate say so and pair with a _free/_close.
 */
#ifndef SCALEQUEST_BASE_H
#define SCALEQUEST_BASE_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SQ_VERSION "0.1.0"

/* ---- errors ---------------------------------------------------------------------------- */

enum {
    SQ_OK = 0,
    SQ_EIO = -1,      /* read/write/open failed (errno in the message) */
    SQ_EPARSE = -2,   /* malformed input: the message names file:line or offset */
    SQ_ENOMEM = -3,   /* allocation failed */
    SQ_EINVAL = -4,   /* bad argument or configuration */
    SQ_ERANGE = -5,   /* a value or size outside what is supported */
    SQ_EUNSUP = -6,   /* well-formed input we do not support (say what) */
    SQ_ENOTFOUND = -7,/* a file, key, tensor or record that should exist does not */
    SQ_ENET = -8,     /* network / HTTP failure */
    SQ_ESTATE = -9,   /* call made in the wrong state */
    SQ_EINTR = -10,   /* stopped on request (signal, cancel) */
};

typedef struct sq_err {
    int code;
    char msg[512];
} sq_err;

/* Fill *e (when non-NULL) and return code, so callers can write `return sq_fail(e, ...)`. */
int sq_fail(sq_err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prefix an existing message with context ("loading model: " + old message). */
int sq_err_wrap(sq_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sq_err_clear(sq_err *e);
const char *sq_strerror(int code);

/* ---- logging --------------------------------------------------------------------------- */

typedef enum { SQ_LOG_ERROR = 0, SQ_LOG_WARN, SQ_LOG_INFO, SQ_LOG_DEBUG } sq_log_level;

void sq_log_set_level(sq_log_level level);
sq_log_level sq_log_get_level(void);
/* Parse "error|warn|info|debug"; returns -1 on an unknown name. */
int sq_log_level_parse(const char *name);
/* Reads SCALEQUEST_LOG_LEVEL if set. */
void sq_log_init_from_env(void);
void sq_log(sq_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define sq_error(...) sq_log(SQ_LOG_ERROR, __VA_ARGS__)
#define sq_warn(...) sq_log(SQ_LOG_WARN, __VA_ARGS__)
#define sq_info(...) sq_log(SQ_LOG_INFO, __VA_ARGS__)
#define sq_debug(...) sq_log(SQ_LOG_DEBUG, __VA_ARGS__)

/* ---- progress -------------------------------------------------------------------------- */

/* A progress line on stderr: done/total, items/s, ETA. Redrawn in place on a terminal,
 * a plain line every few seconds otherwise; silent when sq_progress_set_quiet(1). */
typedef struct sq_progress {
    char label[48];
    int64_t total; /* <= 0: unknown */
    int64_t done;
    int64_t done_before; /* part of done that an earlier run did: not in the rate */
    int64_t tokens; /* optional: tokens produced so far, shown as tok/s when > 0 */
    double t_start, t_last_draw;
    int tty;
    int drawn;
} sq_progress;

void sq_progress_set_quiet(int quiet);
int sq_progress_is_quiet(void);
void sq_progress_start(sq_progress *p, const char *label, int64_t total);
void sq_progress_add(sq_progress *p, int64_t n);
/* Count n items as done by an earlier run (a resumed job): shown in done/total, left out of
 * the rate and the ETA, which measure this run. */
void sq_progress_resume(sq_progress *p, int64_t n);
/* Items per second done by this run so far (what the line shows). */
double sq_progress_rate(const sq_progress *p, double now);
void sq_progress_add_tokens(sq_progress *p, int64_t n); /* counted, drawn with the next add */
void sq_progress_finish(sq_progress *p);

/* ---- time ------------------------------------------------------------------------------ */

double sq_now(void); /* monotonic seconds */

/* ---- random numbers -------------------------------------------------------------------- */

/* xoshiro256** seeded through splitmix64: fast, reproducible for a given seed. */
typedef struct sq_rng {
    uint64_t s[4];
} sq_rng;

void sq_rng_seed(sq_rng *r, uint64_t seed);
uint64_t sq_rng_u64(sq_rng *r);
double sq_rng_uniform(sq_rng *r);           /* [0, 1) */
uint64_t sq_rng_below(sq_rng *r, uint64_t n); /* [0, n), unbiased */
double sq_rng_normal(sq_rng *r);             /* standard normal */

/* ---- growable byte buffer -------------------------------------------------------------- */

typedef struct sq_buf {
    char *data; /* always NUL-terminated when non-NULL */
    size_t len, cap;
} sq_buf;

int sq_buf_reserve(sq_buf *b, size_t extra);
int sq_buf_append(sq_buf *b, const void *data, size_t n);
int sq_buf_puts(sq_buf *b, const char *s);
int sq_buf_printf(sq_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sq_buf_reset(sq_buf *b); /* len = 0, keeps memory */
void sq_buf_free(sq_buf *b);

/* ---- arena ----------------------------------------------------------------------------- */

/* Bump allocator for per-step scratch: no frees, one reset. Blocks are 64-byte aligned. */
typedef struct sq_arena_block sq_arena_block;
typedef struct sq_arena {
    sq_arena_block *head;
    size_t block_size;
} sq_arena;

void sq_arena_init(sq_arena *a, size_t block_size);
void *sq_arena_alloc(sq_arena *a, size_t n); /* NULL on OOM; zeroed */
void sq_arena_reset(sq_arena *a);            /* keep the first block, free the rest */
void sq_arena_free(sq_arena *a);

/* ---- files ----------------------------------------------------------------------------- */

/* Read a whole file into a NUL-terminated malloc'd buffer (caller frees). */
int sq_file_read_all(const char *path, char **data, size_t *len, sq_err *e);
/* Write a whole file atomically: temp file beside it, fsync, rename, fsync the directory.
 * A reader sees either the old file or the complete new one, never a torn one. */
int sq_file_write_atomic(const char *path, const void *data, size_t len, sq_err *e);

/* Atomic writer for outputs produced in pieces: write to `path.tmp.<pid>`, then commit
 * (fsync + rename) or abort (unlink). */
typedef struct sq_atomic_file {
    FILE *fp;
    char *path, *tmp_path;
} sq_atomic_file;

/* Writes go to "PATH.tmp.<pid>"; a stale one left by a killed process (its pid gone) is
 * removed first. */
int sq_atomic_open(sq_atomic_file *f, const char *path, sq_err *e);
int sq_atomic_commit(sq_atomic_file *f, sq_err *e);
void sq_atomic_abort(sq_atomic_file *f);

/* Read-only memory map of a whole file (len 0 files map to data == NULL). */
typedef struct sq_mmap {
    const uint8_t *data;
    size_t len;
} sq_mmap;

int sq_mmap_open(sq_mmap *m, const char *path, sq_err *e);
void sq_mmap_close(sq_mmap *m);

int sq_file_exists(const char *path);
int sq_dir_exists(const char *path);
/* mkdir -p */
int sq_mkdirs(const char *path, sq_err *e);
/* Join dir and name into a malloc'd path. */
char *sq_path_join(const char *dir, const char *name);

/* ---- threads --------------------------------------------------------------------------- */

/* The process has one OpenMP pool; this sets its size (0 = all cores). */
void sq_threads_set(int n);
int sq_threads_get(void);
/* The wait policy of the pool: passive (a thread that waits at a barrier or between parallel
 * regions sleeps in the kernel) unless OMP_WAIT_POLICY or GOMP_SPINCOUNT is already set.
 * libgomp reads both once, when it loads, and offers no call to change them later, so this
 * sets OMP_WAIT_POLICY=passive and re-executes the program (argv, /proc/self/exe) once;
 * call it first thing in main. Returns only when nothing had to change or the exec failed.
 * Why passive: on a machine whose cores other processes also want, a spinning thread burns
 * the time slice its partner needs and every barrier waits for a descheduled thread; the
 * batched decode ran 3-30x slower with libgomp's default spin (docs/engine.md). */
void sq_threads_default_wait_policy(char **argv);

/* A barrier for the threads of one parallel region that spins ~30 us, then sleeps (libgomp's
 * own spins for milliseconds, which on cores shared with other processes burns the time a
 * descheduled partner needs). Initialise once before the region; every thread of the team
 * calls sq_barrier_wait with the team's size. */
typedef struct sq_barrier {
    _Atomic int arrived, sleepers;
    _Atomic unsigned gen;
} sq_barrier;
void sq_barrier_init(sq_barrier *b);
void sq_barrier_wait(sq_barrier *b, int n_threads);

/* One phase of a chain of dependent steps run by the threads of a parallel region (the
 * engine's many-token forward step), without a barrier: whichever thread comes claims the
 * next chunk of the phase's `total` units (sq_phase_claim: the first unit, *u1 past the
 * last, or -1 when none are left), reports them done (sq_phase_done), and before the next
 * phase waits until every unit is done (sq_phase_wait: spins ~30 us, then sleeps). Unlike a
 * barrier, a thread that lost its core while holding no unit holds nobody up: the others
 * take its share and move on, and it skips the finished phases when it comes back.
 * sq_phase_done returns 1 to the one caller whose units completed the phase (it can run
 * work that follows at once, see forward.c's batch-1 step), else 0. sq_phase_claim_guided
 * claims a share of what is left (1/(2 nt) of it, at least one unit): few claims while much
 * is left, single units at the end, so the threads finish together.
 * One cache line each; initialise (sq_phase_init) before the region. */
typedef struct sq_phase {
    _Alignas(64) _Atomic int next;
    _Atomic int done, sleepers;
    int total;
} sq_phase;
void sq_phase_init(sq_phase *p, int total);
int sq_phase_claim(sq_phase *p, int chunk, int *u1);
int sq_phase_claim_guided(sq_phase *p, int nt, int *u1);
int sq_phase_done(sq_phase *p, int n);
void sq_phase_wait(sq_phase *p);

/* ---- small helpers --------------------------------------------------------------------- */

void *sq_malloc_aligned(size_t n); /* 64-byte aligned, NULL on failure; free with free() */
char *sq_strdup(const char *s);
char *sq_strndup(const char *s, size_t n);

#define SQ_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SQ_MAX(a, b) ((a) > (b) ? (a) : (b))
#define SQ_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
