/* One OpenMP pool for the whole process; kernels split work by rows inside it. */
#include "scalequest/base.h"

#include <omp.h>
#include <stdlib.h>
#include <unistd.h>

void sq_threads_set(int n) {
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
}

int sq_threads_get(void) { return omp_get_max_threads(); }

void sq_threads_default_wait_policy(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT") || !argv || !argv[0]) return;
    /* Set before the exec, so the new image sees it and does not come back here. */
    if (setenv("OMP_WAIT_POLICY", "passive", 1)) return;
    execv("/proc/self/exe", argv);
    /* No /proc (or no exec): keep running with the spinning default. */
}
