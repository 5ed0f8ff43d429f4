/* MPI glue for data-parallel training (dist.h). Without SQ_HAVE_MPI this is one rank. */
#include "scalequest/dist.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#ifdef SQ_HAVE_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1;
#ifdef SQ_HAVE_MPI
static int g_mpi = 0;
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

static int sum_in_order(void *buf, size_t n, size_t elem, MPI_Datatype type, sq_err *e) {
    if (g_size <= 1) return 0;
    void *tmp = g_rank == 0 ? malloc(CHUNK * elem) : NULL;
    if (g_rank == 0 && !tmp) return sq_fail(e, SQ_ENOMEM, "dist: out of memory");
    int rc = MPI_SUCCESS;
    for (size_t off = 0; off < n && rc == MPI_SUCCESS; off += CHUNK) {
        int cnt = (int)(n - off < CHUNK ? n - off : CHUNK);
        char *p = (char *)buf + off * elem;
        if (g_rank == 0) {
            for (int r = 1; r < g_size && rc == MPI_SUCCESS; r++) {
                rc = MPI_Recv(tmp, cnt, type, r, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
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
            rc = MPI_Send(p, cnt, type, 0, 7, MPI_COMM_WORLD);
        }
        if (rc == MPI_SUCCESS) rc = MPI_Bcast(p, cnt, type, 0, MPI_COMM_WORLD);
    }
    free(tmp);
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
