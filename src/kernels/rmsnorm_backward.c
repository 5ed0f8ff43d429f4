/* RMSNorm backward: y = w * x * r with r = 1/sqrt(mean(x^2) + eps).
 * dx = r * (dy*w) - x * r^3 / C * sum(dy*w*x); dw = sum over rows of dy * x * r. */
#include <stdlib.h>

#include "scalequest/train.h"

void sq_rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *w,
                         const float *rstd, int N, int C) {
#pragma omp parallel for schedule(static) if ((size_t)N * C > SQ_PAR_MIN)
    for (int i = 0; i < N; i++) {
        const float *xi = x + (size_t)i * C, *dyi = dy + (size_t)i * C;
        float *dxi = dx + (size_t)i * C;
        float r = rstd[i], dot = 0;
#pragma omp simd reduction(+ : dot)
        for (int j = 0; j < C; j++) dot += dyi[j] * w[j] * xi[j];
        float c = dot * r * r * r / (float)C;
        for (int j = 0; j < C; j++) dxi[j] += r * dyi[j] * w[j] - c * xi[j];
    }
    /* The weight gradient sums over rows: done per column so threads never share a slot. */
#pragma omp parallel for schedule(static) if ((size_t)N * C > SQ_PAR_MIN)
    for (int j = 0; j < C; j++) {
        float s = 0;
        for (int i = 0; i < N; i++) s += dy[(size_t)i * C + j] * x[(size_t)i * C + j] * rstd[i];
        dw[j] += s;
    }
}
