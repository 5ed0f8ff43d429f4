/* RMSNorm, forward and backward: y = w * x * r with r = 1/sqrt(mean(x^2) + eps).
 *
 * Two forwards, on purpose. sq_rmsnorm (the engine) sums x^2 in double, so a row's result does
 * not depend on the vector width of the machine; sq_rmsnorm_forward (training) sums in float
 * eight lanes wide and saves r for backward. Merging them would change the bits of one side:
 * the engine's greedy outputs or the trainer's losses, which tests compare across runs. */
#include <math.h>
#include <omp.h>

#include "scalequest/kernels.h"
#include "simd.h"

static inline void rmsnorm_row(float *o, const float *xr, const float *w, int n, float eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)xr[i] * xr[i];
    float inv = 1.0f / sqrtf((float)(ss / n) + eps);
    for (int i = 0; i < n; i++) o[i] = (xr[i] * inv) * w[i];
}

void sq_rmsnorm(float *out, const float *x, const float *w, int rows, int n, float eps) {
    /* Inside a parallel region (the engine's one-region steps call this per share of rows)
     * the rows run here: even a one-thread nested region costs a team set-up per call. */
    if ((int64_t)rows * n <= (1 << 16) || omp_in_parallel()) {
        for (int r = 0; r < rows; r++) rmsnorm_row(out + (size_t)r * n, x + (size_t)r * n, w, n, eps);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) rmsnorm_row(out + (size_t)r * n, x + (size_t)r * n, w, n, eps);
}

void sq_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int N, int C, float eps) {
#pragma omp parallel for schedule(static) if ((size_t)N * C > SQ_PAR_MIN)
    for (int i = 0; i < N; i++) {
        const float *xi = x + (size_t)i * C;
        float *oi = out + (size_t)i * C;
        float ss = sq_tv_dot(xi, xi, (size_t)C);
        float r = 1.0f / sqrtf(ss / (float)C + eps);
        rstd[i] = r;
#pragma omp simd
        for (int j = 0; j < C; j++) oi[j] = w[j] * (xi[j] * r);
    }
}

/* dx = r * (dy*w) - x * r^3 / C * sum(dy*w*x); dw = sum over rows of dy * x * r. */
void sq_rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *w,
                         const float *rstd, int N, int C) {
#pragma omp parallel if ((size_t)N * C > SQ_PAR_MIN)
    {
#pragma omp for schedule(static)
        for (int i = 0; i < N; i++) {
            const float *xi = x + (size_t)i * C, *dyi = dy + (size_t)i * C;
            float *dxi = dx + (size_t)i * C;
            float r = rstd[i], dot = 0;
#pragma omp simd reduction(+ : dot)
            for (int j = 0; j < C; j++) dot += dyi[j] * w[j] * xi[j];
            float c = dot * r * r * r / (float)C;
#pragma omp simd
            for (int j = 0; j < C; j++) dxi[j] += r * dyi[j] * w[j] - c * xi[j];
        }
        /* The weight gradient sums over rows. Each thread owns a slice of columns (so no
         * slot is shared and every column sums its rows in order, whatever the thread
         * count) and walks the rows front to back, reading its slice of each row. */
        int nt = omp_get_num_threads(), id = omp_get_thread_num();
        int j0 = (int)((long)C * id / nt), j1 = (int)((long)C * (id + 1) / nt);
        if (j1 > j0) {
            float acc[j1 - j0];
            for (int j = 0; j < j1 - j0; j++) acc[j] = 0;
            for (int i = 0; i < N; i++) {
                const float *dyi = dy + (size_t)i * C + j0, *xi = x + (size_t)i * C + j0;
                float r = rstd[i];
#pragma omp simd
                for (int j = 0; j < j1 - j0; j++) acc[j] += dyi[j] * xi[j] * r;
            }
            for (int j = j0; j < j1; j++) dw[j] += acc[j - j0];
        }
    }
}
