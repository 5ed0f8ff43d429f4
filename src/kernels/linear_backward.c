/* Linear backward: y = x W^T + b, x [N, in], W [out, in], dy rows ldy apart. GEMMs through
 * sq_tgemm. */
#include <omp.h>

#include "scalequest/train.h"

void sq_linear_backward(float *dx, float *dW, float *db, const float *dy, int ldy, const float *x,
                        const float *W, int N, int in, int out, int accumulate_dx) {
    if (dx) sq_tgemm(0, 0, N, in, out, 1.0f, dy, ldy, W, in, accumulate_dx ? 1.0f : 0.0f, dx, in);
    sq_tgemm(1, 0, out, in, N, 1.0f, dy, ldy, x, in, 1.0f, dW, in);
    if (db) {
        /* Column sums: each thread owns a slice of columns and walks the rows in order. */
#pragma omp parallel if ((size_t)N * out > SQ_PAR_MIN)
        {
            int nt = omp_get_num_threads(), id = omp_get_thread_num();
            int j0 = (int)((long)out * id / nt), j1 = (int)((long)out * (id + 1) / nt);
            if (j1 > j0) {
                float acc[j1 - j0];
                for (int j = 0; j < j1 - j0; j++) acc[j] = 0;
                for (int i = 0; i < N; i++) {
                    const float *d = dy + (size_t)i * ldy + j0;
#pragma omp simd
                    for (int j = 0; j < j1 - j0; j++) acc[j] += d[j];
                }
                for (int j = j0; j < j1; j++) db[j] += acc[j - j0];
            }
        }
    }
}
