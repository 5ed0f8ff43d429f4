/* MPI glue for data-parallel training (dist.h). Without SQ_HAVE_MPI this is one rank. */
#include "scalequest/dist.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef SQ_HAVE_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1;
#ifdef SQ_HAVE_MPI
static int g_mpi = 0;
/* SQ_DIST_PROFILE: each rank prints, at the end, the wall and CPU seconds it spent in the
 * gradient sums (a rank waiting for a slower one spins in MPI: CPU close to wall), to tell the
 * exchange from the arithmetic when ranks scale badly. */
static double g_sum_wall, g_sum_cpu;
static long g_sums;

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
#endif

int sq_dist_rank(void) { return g_rank; }
int sq_dist_size(void) { return g_size; }

#ifdef SQ_HAVE_MPI
int sq_dist_available(void) { return 1; }
#else
int sq_dist_available(void) { return 0; }
#endif

static int env_int(const char *name) {
    const char *v = getenv(name);
    return v && *v ? atoi(v) : 0;
}

int sq_dist_begin(sq_err *e) {
    int launched = env_int("OMPI_COMM_WORLD_SIZE");
    if (launched <= 1 && !getenv("PMIX_RANK")) return 0;
#ifndef SQ_HAVE_MPI
    if (launched > 1)
        return sq_fail(e, SQ_EUNSUP, "started by mpirun with %d ranks, but this build has no MPI (install libopenmpi-dev "
                       "and rebuild)", launched);
    return 0;
#else
    int provided = 0;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return sq_fail(e, SQ_EIO, "MPI_Init failed");
    g_mpi = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    /* Errors come back as codes (and end the job through sq_dist_end), not a silent abort. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    int local = env_int("OMPI_COMM_WORLD_LOCAL_SIZE");
    if (local > 1) {
        int t = omp_get_num_procs() / local;
        omp_set_num_threads(t > 0 ? t : 1);
    }
    return 0;
#endif
}

void sq_dist_end(int failed) {
#ifdef SQ_HAVE_MPI
    if (!g_mpi) return;
    if (getenv("SQ_DIST_PROFILE"))
        fprintf(stderr, "dist: rank %d of %d: %ld gradient sums, %.3f s wall, %.3f s CPU in them\n", g_rank, g_size,
                g_sums, g_sum_wall, g_sum_cpu);
    if (failed && g_size > 1) MPI_Abort(MPI_COMM_WORLD, 1);
    MPI_Finalize();
    g_mpi = 0;
#else
    (void)failed;
#endif
}

#ifdef SQ_HAVE_MPI
/* Chunks bound the receive buffer (and keep messages of a sane size). */
enum { CHUNK = 1 << 20 };

/* Wait for a request without spinning. Why: a rank that reaches the gradient sum first waits
 * there for the slowest one, every step; Open MPI's blocking calls busy-poll meanwhile, and on
 * a machine with no idle core (ranks sharing cores with each other or other work) that spin
 * takes the very CPU time the late rank needs. Measured on a loaded 2-core machine (docs/scale.md
 * section 3): the waits took a fifth of the job's CPU. So: poll briefly (a quick exchange
 * stays quick), then sleep between polls, up to 1 ms. */
static int wait_quietly(MPI_Request *req) {
    for (long polls = 0, nap_us = 20;; polls++) {
        int done = 0, rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS || done) return rc;
        if (polls < 200) continue;
        struct timespec ts = {0, nap_us * 1000};
        nanosleep(&ts, NULL);
        if (nap_us < 1000) nap_us += nap_us / 2;
    }
}

static int sum_in_order(void *buf, size_t n, size_t elem, MPI_Datatype type, sq_err *e) {
    if (g_size <= 1) return 0;
    double w0 = sq_now(), c0 = cpu_now();
    void *tmp = g_rank == 0 ? malloc(CHUNK * elem) : NULL;
    if (g_rank == 0 && !tmp) return sq_fail(e, SQ_ENOMEM, "dist: out of memory");
    int rc = MPI_SUCCESS;
    for (size_t off = 0; off < n && rc == MPI_SUCCESS; off += CHUNK) {
        int cnt = (int)(n - off < CHUNK ? n - off : CHUNK);
        char *p = (char *)buf + off * elem;
        if (g_rank == 0) {
            for (int r = 1; r < g_size && rc == MPI_SUCCESS; r++) {
                MPI_Request q;
                rc = MPI_Irecv(tmp, cnt, type, r, 7, MPI_COMM_WORLD, &q);
                if (rc == MPI_SUCCESS) rc = wait_quietly(&q);
                if (rc != MPI_SUCCESS) break;
                if (elem == sizeof(float)) {
                    float *a = (float *)p, *b = tmp;
                    for (int i = 0; i < cnt; i++) a[i] += b[i];
                } else {
                    double *a = (double *)p, *b = tmp;
                    for (int i = 0; i < cnt; i++) a[i] += b[i];
                }
            }
        } else {
            MPI_Request q;
            rc = MPI_Isend(p, cnt, type, 0, 7, MPI_COMM_WORLD, &q);
            if (rc == MPI_SUCCESS) rc = wait_quietly(&q);
        }
        if (rc == MPI_SUCCESS) {
            MPI_Request q;
            rc = MPI_Ibcast(p, cnt, type, 0, MPI_COMM_WORLD, &q);
            if (rc == MPI_SUCCESS) rc = wait_quietly(&q);
        }
    }
    free(tmp);
    g_sum_wall += sq_now() - w0, g_sum_cpu += cpu_now() - c0, g_sums++;
    if (rc != MPI_SUCCESS) {
        char msg[MPI_MAX_ERROR_STRING];
        int len = 0;
        MPI_Error_string(rc, msg, &len);
        return sq_fail(e, SQ_EIO, "dist: rank %d of %d: summing gradients failed: %s", g_rank, g_size, msg);
    }
    return 0;
}

int sq_dist_sum_floats(float *buf, size_t n, sq_err *e) { return sum_in_order(buf, n, sizeof *buf, MPI_FLOAT, e); }
int sq_dist_sum_doubles(double *buf, size_t n, sq_err *e) { return sum_in_order(buf, n, sizeof *buf, MPI_DOUBLE, e); }
#else
int sq_dist_sum_floats(float *buf, size_t n, sq_err *e) {
    (void)buf, (void)n, (void)e;
    return 0;
}
int sq_dist_sum_doubles(double *buf, size_t n, sq_err *e) {
    (void)buf, (void)n, (void)e;
    return 0;
}
#endif
