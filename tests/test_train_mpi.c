/* train under mpirun (dist.h): two ranks give the single-process loss curve within float
 * tolerance, the same bytes run after run, and a kill -9 of one rank ends the job at once
 * with a clear message, leaving a checkpoint from which a rerun finishes exactly as an
 * uninterrupted two-rank run. Every mpirun is bounded by a timeout. */
#include <stdlib.h>
#include <unistd.h>

#include "scalequest/dist.h"
#include "test.h"

static char g_dir[4096];

static const char *mpi_missing(void) {
    if (!sq_dist_available()) return "this build has no MPI (libopenmpi-dev not found at build time)";
    if (sq_test_sh(NULL, "command -v mpirun >/dev/null 2>&1")) return "mpirun not found (openmpi-bin)";
    return NULL;
}

static void write_data(const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return;
    sq_rng r;
    sq_rng_seed(&r, 11);
    for (int i = 0; i < 160; i++) {
        int len = 6 + (int)sq_rng_below(&r, 40);
        fprintf(f, "{\"input_ids\": [");
        for (int j = 0; j < len; j++) fprintf(f, "%s%d", j ? ", " : "", (int)sq_rng_below(&r, 96));
        fprintf(f, "], \"loss_mask\": [");
        for (int j = 0; j < len; j++) fprintf(f, "%s%d", j ? ", " : "", j >= 3);
        fprintf(f, "]}\n");
    }
    fclose(f);
}

/* The training command line (without the launcher) into buf. */
static void train_cmd(char *buf, size_t n, int steps) {
    snprintf(buf, n,
             "'%s' train --mode sft --init-config dim=32,layers=2,heads=4,kv_heads=2,ffn=64,vocab=96,seq=64 "
             "--data '%s/d.jsonl' --batch 4 --seq-len 64 --accum 2 --lr 2e-3 --max-steps %d --save-every 2 --seed 3 "
             "--threads 1 --quiet",
             sq_test_cli(), g_dir, steps);
}

#define MPIRUN "ASAN_OPTIONS=detect_leaks=0 SQ_MPI_TEST_TAG='%s' timeout 300 mpirun --allow-run-as-root --oversubscribe " \
               "-x ASAN_OPTIONS -x SQ_MPI_TEST_TAG -np 2 "

/* Losses of out/train_log.jsonl, in step order; returns the count. */
static int losses(const char *out, double *v, int max) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s/train_log.jsonl", g_dir, out);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[512];
    int n = 0;
    while (n < max && fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "\"loss\": ");
        if (p) v[n++] = atof(p + 8);
    }
    fclose(f);
    return n;
}

SQ_TEST(two_ranks_give_the_single_process_curve_deterministically) {
    const char *why = mpi_missing();
    if (why) SKIP("%s", why);
    snprintf(g_dir, sizeof g_dir, "%s", sq_test_tmpdir());
    char d[4200], cmd[8192];
    snprintf(d, sizeof d, "%s/d.jsonl", g_dir);
    write_data(d);
    train_cmd(cmd, sizeof cmd, 10);
    REQUIRE(sq_test_sh(NULL, "%s --out '%s/one'", cmd, g_dir) == 0);
    REQUIRE(sq_test_sh(NULL, MPIRUN "%s --out '%s/two'", g_dir, cmd, g_dir) == 0);
    REQUIRE(sq_test_sh(NULL, MPIRUN "%s --out '%s/two_again'", g_dir, cmd, g_dir) == 0);
    double a[64], b[64];
    int na = losses("one", a, 64), nb = losses("two", b, 64);
    CHECK_EQ_INT(na, 10);
    CHECK_EQ_INT(nb, 10);
    double worst = 0;
    for (int i = 0; i < na && i < nb; i++) worst = fmax(worst, fabs(a[i] - b[i]) / fabs(a[i]));
    CHECKF(worst < 1e-5, "largest relative loss difference %g", worst);
    /* a fixed summation order: the same N gives the same bytes */
    CHECK(sq_test_sh(NULL, "cmp -s '%s/two/model.safetensors' '%s/two_again/model.safetensors'", g_dir, g_dir) == 0);
    CHECK(sq_test_sh(NULL, "cmp -s '%s/two/train_log.jsonl' '%s/two_again/train_log.jsonl'", g_dir, g_dir) == 0);
}

SQ_TEST(kill_9_of_one_rank_ends_the_job_and_the_rerun_resumes_exactly) {
    const char *why = mpi_missing();
    if (why) SKIP("%s", why);
    snprintf(g_dir, sizeof g_dir, "%s", sq_test_tmpdir());
    char d[4200], cmd[8192];
    snprintf(d, sizeof d, "%s/d.jsonl", g_dir);
    write_data(d);
    train_cmd(cmd, sizeof cmd, 40);
    REQUIRE(sq_test_sh(NULL, MPIRUN "%s --out '%s/ref'", g_dir, cmd, g_dir) == 0);
    /* start, wait for a few steps, kill -9 rank 1 (found by its rank and this test's tag) */
    REQUIRE(sq_test_sh(NULL, "(" MPIRUN "%s --out '%s/run' >'%s/mpirun.log' 2>&1; echo $? >'%s/mpirun.rc') & "
                             "for i in $(seq 600); do [ -f '%s/run/train_log.jsonl' ] && "
                             "[ $(wc -l < '%s/run/train_log.jsonl') -ge 5 ] && break; sleep 0.05; done; "
                             "for p in $(pgrep -f ' train --mode sft'); do "
                             "  e=$(tr '\\0' '\\n' < /proc/$p/environ 2>/dev/null); "
                             "  echo \"$e\" | grep -qx 'SQ_MPI_TEST_TAG=%s' && echo \"$e\" | grep -qx 'OMPI_COMM_WORLD_RANK=1' "
                             "  && kill -9 $p; done; "
                             "for i in $(seq 600); do [ -f '%s/mpirun.rc' ] && break; sleep 0.05; done; [ -f '%s/mpirun.rc' ]",
                       g_dir, cmd, g_dir, g_dir, g_dir, g_dir, g_dir, g_dir, g_dir, g_dir) == 0);
    char *rc = NULL, *log = NULL, *lines = NULL;
    sq_test_sh(&rc, "cat '%s/mpirun.rc'", g_dir);
    sq_test_sh(&log, "cat '%s/mpirun.log'", g_dir);
    sq_test_sh(&lines, "wc -l < '%s/run/train_log.jsonl'", g_dir);
    CHECKF(rc && atoi(rc) != 0, "mpirun exit status %s", rc ? rc : "?");
    CHECKF(log && strstr(log, "rank 1") && strstr(log, "signal 9"), "mpirun said: %s", log ? log : "");
    CHECKF(lines && atoi(lines) < 40, "the run finished before the kill (%s steps)", lines ? lines : "?");
    CHECK(sq_test_sh(NULL, "[ -f '%s/run/last-checkpoint/trainer_state.json' ]", g_dir) == 0);
    /* the rerun resumes from the checkpoint and ends where the uninterrupted run did */
    REQUIRE(sq_test_sh(NULL, MPIRUN "%s --out '%s/run'", g_dir, cmd, g_dir) == 0);
    CHECK(sq_test_sh(NULL, "cmp -s '%s/ref/train_log.jsonl' '%s/run/train_log.jsonl'", g_dir, g_dir) == 0);
    CHECK(sq_test_sh(NULL, "cmp -s '%s/ref/model.safetensors' '%s/run/model.safetensors'", g_dir, g_dir) == 0);
    free(rc), free(log), free(lines);
}
