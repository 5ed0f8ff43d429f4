/* Linear layers of training, forward and backward: y = x W^T + b, x [N, in], W [out, in], y
 * rows ld floats apart. The products go through sq_gemm (F32: OpenBLAS); the loops around them
 * are split over rows with OpenMP. */
#include <omp.h>
#include <string.h>

#include "scalequest/kernels.h"

void sq_linear_forward(float *out, int ldo, const float *x, const float *W, const float *b, int N, int in,
                       int out_dim) {
    sq_gemm_f32(0, 1, N, out_dim, in, 1.0f, x, in, W, in, 0.0f, out, ldo);
    if (b) {
#pragma omp parallel for schedule(static) if ((size_t)N * out_dim > SQ_PAR_MIN)
        for (int i = 0; i < N; i++) {
            float *o = out + (size_t)i * ldo;
#pragma omp simd
            for (int j = 0; j < out_dim; j++) o[j] += b[j];
        }
    }
}

/* out = res + x W^T: the residual is copied in first and the GEMM adds to it. */
void sq_linear_residual_forward(float *out, const float *res, const float *x, const float *W, int N, int in,
                                int out_dim) {
    if (out != res) memcpy(out, res, (size_t)N * out_dim * sizeof(float));
    sq_gemm_f32(0, 1, N, out_dim, in, 1.0f, x, in, W, in, 1.0f, out, out_dim);
}

void sq_linear_backward(float *dx, float *dW, float *db, const float *dy, int ldy, const float *x,
                        const float *W, int N, int in, int out, int accumulate_dx) {
    if (dx) sq_gemm_f32(0, 0, N, in, out, 1.0f, dy, ldy, W, in, accumulate_dx ? 1.0f : 0.0f, dx, in);
    sq_gemm_f32(1, 0, out, in, N, 1.0f, dy, ldy, x, in, 1.0f, dW, in);
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
