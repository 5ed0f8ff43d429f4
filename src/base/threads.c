/* One OpenMP pool for the whole process; kernels split work by rows inside it. */
#include "scalequest/base.h"

#include <omp.h>

void sq_threads_set(int n) {
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
}

int sq_threads_get(void) { return omp_get_max_threads(); }
