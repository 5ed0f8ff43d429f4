/* Linear backward through OpenBLAS: y = x W^T + b, x [N, in], W [out, in]. */
#include <cblas.h>

#include "scalequest/train.h"

void sq_linear_backward(float *dx, float *dW, float *db, const float *dy, const float *x,
                        const float *W, int N, int in, int out, int accumulate_dx) {
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, in, out, 1.0f, dy, out, W, in,
                    accumulate_dx ? 1.0f : 0.0f, dx, in);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, N, 1.0f, dy, out, x, in, 1.0f, dW, in);
    if (db) {
#pragma omp parallel for schedule(static) if ((size_t)N * out > SQ_PAR_MIN)
        for (int j = 0; j < out; j++) {
            float s = 0;
            for (int i = 0; i < N; i++) s += dy[(size_t)i * out + j];
            db[j] += s;
        }
    }
}
