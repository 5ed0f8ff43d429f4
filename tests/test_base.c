/* base: errors, RNG, buffers, arena, atomic files, mmap. */
#include <omp.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "scalequest/base.h"
#include "test.h"

SQ_TEST(err_messages_name_the_problem) {
    sq_err e;
    CHECK_EQ_INT(sq_fail(&e, SQ_EPARSE, "%s:%d: expected '%c'", "a.jsonl", 7, '}'), SQ_EPARSE);
    CHECK_EQ_STR(e.msg, "a.jsonl:7: expected '}'");
    sq_err_wrap(&e, "reading %s", "input");
    CHECK_EQ_STR(e.msg, "reading input: a.jsonl:7: expected '}'");
    CHECK_EQ_INT(sq_fail(NULL, SQ_EIO, "ignored"), SQ_EIO);
}

SQ_TEST(rng_is_reproducible_and_uniform) {
    sq_rng a, b;
    sq_rng_seed(&a, 42);
    sq_rng_seed(&b, 42);
    for (int i = 0; i < 100; i++) CHECK(sq_rng_u64(&a) == sq_rng_u64(&b));
    sq_rng_seed(&a, 1);
    int buckets[10] = {0};
    for (int i = 0; i < 100000; i++) buckets[sq_rng_below(&a, 10)]++;
    for (int i = 0; i < 10; i++) CHECKF(buckets[i] > 9500 && buckets[i] < 10500, "bucket %d has %d", i, buckets[i]);
    double s = 0, s2 = 0;
    for (int i = 0; i < 100000; i++) {
        double x = sq_rng_normal(&a);
        s += x;
        s2 += x * x;
    }
    CHECK_NEAR(s / 100000, 0.0, 0.02);
    CHECK_NEAR(s2 / 100000, 1.0, 0.02);
}

SQ_TEST(buf_grows_and_formats) {
    sq_buf b = {0};
    for (int i = 0; i < 1000; i++) REQUIRE(sq_buf_printf(&b, "%d,", i) == 0);
    CHECK(b.len > 3000);
    CHECK(!strncmp(b.data, "0,1,2,", 6));
    CHECK(b.data[b.len] == 0);
    sq_buf_free(&b);
}

SQ_TEST(arena_aligns_and_resets) {
    sq_arena a;
    sq_arena_init(&a, 4096);
    for (int i = 0; i < 100; i++) {
        char *p = sq_arena_alloc(&a, 100 + i);
        REQUIRE(p);
        CHECK(((uintptr_t)p & 63) == 0);
        CHECK(p[0] == 0);
    }
    CHECK(sq_arena_alloc(&a, 1 << 20) != NULL);
    sq_arena_reset(&a);
    CHECK(sq_arena_alloc(&a, 64) != NULL);
    sq_arena_free(&a);
}

SQ_TEST(atomic_write_replaces_whole_file) {
    char *path = sq_path_join(sq_test_tmpdir(), "out.txt");
    sq_err e;
    REQUIRE(sq_file_write_atomic(path, "first\n", 6, &e) == 0);
    REQUIRE(sq_file_write_atomic(path, "second version\n", 15, &e) == 0);
    char *data;
    size_t len;
    REQUIRE(sq_file_read_all(path, &data, &len, &e) == 0);
    CHECK_EQ_STR(data, "second version\n");
    free(data);
    /* An aborted writer leaves the old file and no temp file behind. */
    sq_atomic_file f;
    REQUIRE(sq_atomic_open(&f, path, &e) == 0);
    fputs("partial", f.fp);
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", f.tmp_path);
    sq_atomic_abort(&f);
    CHECK(!sq_file_exists(tmp));
    REQUIRE(sq_file_read_all(path, &data, &len, &e) == 0);
    CHECK_EQ_STR(data, "second version\n");
    free(data);
    free(path);
}

SQ_TEST(missing_file_error_names_path) {
    sq_err e;
    char *data;
    CHECK(sq_file_read_all("/nonexistent/x.json", &data, NULL, &e) == SQ_EIO);
    CHECK(strstr(e.msg, "/nonexistent/x.json") != NULL);
    sq_mmap m;
    CHECK(sq_mmap_open(&m, "/nonexistent/y.bin", &e) == SQ_EIO);
    CHECK(strstr(e.msg, "y.bin") != NULL);
}

SQ_TEST(mmap_reads_file) {
    char *path = sq_path_join(sq_test_tmpdir(), "m.bin");
    sq_err e;
    REQUIRE(sq_file_write_atomic(path, "abcdef", 6, &e) == 0);
    sq_mmap m;
    REQUIRE(sq_mmap_open(&m, path, &e) == 0);
    CHECK_EQ_INT(m.len, 6);
    CHECK(!memcmp(m.data, "abcdef", 6));
    sq_mmap_close(&m);
    free(path);
}

SQ_TEST(mkdirs_nested) {
    char *p = sq_path_join(sq_test_tmpdir(), "a/b/c");
    sq_err e;
    REQUIRE(sq_mkdirs(p, &e) == 0);
    CHECK(sq_dir_exists(p));
    REQUIRE(sq_mkdirs(p, &e) == 0);
    free(p);
}

/* A resumed job's rate and ETA measure this run: 90 of 100 items done before, 10 done now
 * in 10 s is 1 item/s (not 10/s), with 0 left. */
SQ_TEST(progress_rate_leaves_out_an_earlier_runs_items) {
    sq_progress_set_quiet(1);
    sq_progress p;
    sq_progress_start(&p, "job", 100);
    sq_progress_resume(&p, 90);
    p.t_start -= 10.0;
    sq_progress_add(&p, 10);
    CHECK_EQ_INT(p.done, 100);
    CHECK_NEAR(sq_progress_rate(&p, p.t_start + 10.0), 1.0, 1e-9);
    sq_progress_set_quiet(0);
}

/* A writer killed with -9 leaves PATH.tmp.PID; the next write of PATH removes those of dead
 * processes and leaves a live writer's, and other files' temps, alone. */
SQ_TEST(atomic_open_removes_stale_temps_of_dead_pids) {
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) _exit(0);
    REQUIRE(waitpid(child, NULL, 0) == child); /* now a pid with no process */
    const char *dir = sq_test_tmpdir();
    char dead[1024], live[1024], other[1024], odd[1024];
    snprintf(dead, sizeof dead, "%s/out.jsonl.tmp.%d", dir, (int)child);
    snprintf(live, sizeof live, "%s/out.jsonl.tmp.%d", dir, (int)getppid());
    snprintf(other, sizeof other, "%s/other.jsonl.tmp.%d", dir, (int)child);
    snprintf(odd, sizeof odd, "%s/out.jsonl.tmp.12x", dir);
    sq_err e;
    const char *all[4] = {dead, live, other, odd};
    for (int i = 0; i < 4; i++) REQUIRE(sq_file_write_atomic(all[i], "x", 1, &e) == 0);
    char *path = sq_path_join(dir, "out.jsonl");
    REQUIRE(sq_file_write_atomic(path, "new\n", 4, &e) == 0);
    CHECK(!sq_file_exists(dead));
    CHECK(sq_file_exists(live));
    CHECK(sq_file_exists(other));
    CHECK(sq_file_exists(odd));
    CHECK(sq_file_exists(path));
    free(path);
}

/* sq_barrier: no thread leaves round r before every thread has finished round r's work,
 * over many rounds, with a team larger than the cores (so waiters outlast the spin and sleep
 * on the futex) and with threads that arrive late on purpose. */
SQ_TEST(barrier_holds_every_round_and_sleeps_safely) {
    enum { N = 6, ROUNDS = 2000 };
    static _Atomic int done[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) atomic_init(&done[r], 0);
    _Atomic int bad;
    atomic_init(&bad, 0);
    sq_barrier b;
    sq_barrier_init(&b);
    int team = 0;
#pragma omp parallel num_threads(N)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
#pragma omp single
        team = nt;
        for (int r = 0; r < ROUNDS; r++) {
            if ((r + t) % 97 == 0) usleep(200); /* late: the others pass the spin and sleep */
            atomic_fetch_add(&done[r], 1);
            sq_barrier_wait(&b, nt);
            if (atomic_load(&done[r]) != nt) atomic_fetch_add(&bad, 1);
        }
    }
    CHECK(team > 1);
    CHECK_EQ_INT(atomic_load(&bad), 0);
    sq_barrier_wait(&b, 1); /* a team of one never waits */
}

/* sq_phase with guided claims and a tail (the batch-1 step's pattern): every unit is claimed
 * exactly once, exactly one caller of sq_phase_done is told it completed the phase, it runs
 * the tail after every unit's work is visible, and nobody leaves the tail's wait before the
 * tail ran; with a team larger than the cores and late threads (waiters sleep). */
SQ_TEST(phase_guided_claims_and_tail_run_once) {
    enum { N = 5, ROUNDS = 400, UNITS = 97 };
    static int hits[ROUNDS][UNITS], tail_sum[ROUNDS];
    static _Atomic int tails[ROUNDS];
    static sq_phase ph[ROUNDS][2];
    for (int r = 0; r < ROUNDS; r++) {
        sq_phase_init(&ph[r][0], UNITS - r % 7); /* a few sizes, one of them below the team */
        sq_phase_init(&ph[r][1], 1);
        atomic_init(&tails[r], 0);
    }
    _Atomic int bad;
    atomic_init(&bad, 0);
#pragma omp parallel num_threads(N)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads(), u0, u1;
        for (int r = 0; r < ROUNDS; r++) {
            if ((r + t) % 53 == 0) usleep(200);
            while ((u0 = sq_phase_claim_guided(&ph[r][0], nt, &u1)) >= 0) {
                if (u1 <= u0 || u1 > ph[r][0].total) atomic_fetch_add(&bad, 1);
                for (int u = u0; u < u1; u++) hits[r][u]++; /* plain writes: a unit has one owner */
                if (sq_phase_done(&ph[r][0], u1 - u0)) {
                    int sum = 0; /* the tail sees every unit's write */
                    for (int u = 0; u < ph[r][0].total; u++) sum += hits[r][u];
                    tail_sum[r] = sum;
                    atomic_fetch_add(&tails[r], 1);
                    sq_phase_done(&ph[r][1], 1);
                }
            }
            sq_phase_wait(&ph[r][1]);
            if (atomic_load(&tails[r]) != 1) atomic_fetch_add(&bad, 1);
        }
    }
    CHECK_EQ_INT(atomic_load(&bad), 0);
    for (int r = 0; r < ROUNDS; r++) {
        CHECK_EQ_INT(tail_sum[r], ph[r][0].total);
        for (int u = 0; u < ph[r][0].total; u++) CHECK_EQ_INT(hits[r][u], 1);
    }
    /* guided: a share of what is left, never nothing */
    sq_phase p;
    sq_phase_init(&p, 100);
    int a, z;
    CHECK_EQ_INT(a = sq_phase_claim_guided(&p, 2, &z), 0);
    CHECK_EQ_INT(z, 25);
    CHECK_EQ_INT(sq_phase_claim_guided(&p, 2, &z), 25);
    CHECK_EQ_INT(z, 43); /* 75 left: 18 */
    sq_phase_init(&p, 3);
    CHECK_EQ_INT(sq_phase_claim_guided(&p, 2, &z), 0);
    CHECK_EQ_INT(z, 1);
    CHECK_EQ_INT(sq_phase_done(&p, 2), 0);
    CHECK_EQ_INT(sq_phase_done(&p, 1), 1);
}
