/* SwiGLU backward: h = silu(g) * u, silu'(g) = sig(g) * (1 + g * (1 - sig(g))). */
#include <math.h>
#include <stddef.h>

#include "scalequest/train.h"

void sq_swiglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n) {
#pragma omp parallel for schedule(static) if (n > SQ_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float sg = 1.0f / (1.0f + expf(-g[i]));
        float silu = g[i] * sg;
        du[i] = dh[i] * silu;
        dg[i] = dh[i] * u[i] * sg * (1.0f + g[i] * (1.0f - sg));
    }
}
