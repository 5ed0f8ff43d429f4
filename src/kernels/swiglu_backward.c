/* SwiGLU backward: h = silu(g) * u, silu'(g) = sig(g) * (1 + g * (1 - sig(g))). g and u sit
 * side by side in each row (the fused gate|up projection). */
#include <stddef.h>

#include "../train/tvec.h"
#include "scalequest/train.h"

void sq_swiglu_backward(float *dgu, const float *dh, const float *gu, int N, int F) {
#pragma omp parallel for schedule(static) if ((size_t)N * F > SQ_PAR_MIN)
    for (int r = 0; r < N; r++) {
        const float *g = gu + (size_t)r * 2 * F, *u = g + F, *dhr = dh + (size_t)r * F;
        float *dg = dgu + (size_t)r * 2 * F, *du = dg + F;
        int i = 0;
#if defined(SQ_TV_AVX2)
        __m256 one = _mm256_set1_ps(1.0f);
        for (; i + 8 <= F; i += 8) {
            __m256 gv = _mm256_loadu_ps(g + i), dhv = _mm256_loadu_ps(dhr + i);
            __m256 sg = sq_tv_sigmoid8(gv);
            _mm256_storeu_ps(du + i, _mm256_mul_ps(dhv, _mm256_mul_ps(gv, sg)));
            __m256 t = _mm256_fmadd_ps(gv, _mm256_sub_ps(one, sg), one);
            _mm256_storeu_ps(dg + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(dhv, _mm256_loadu_ps(u + i)), sg), t));
        }
#endif
        for (; i < F; i++) {
            float sg = sq_tv_sigmoid1(g[i]);
            du[i] = dhr[i] * (g[i] * sg);
            dg[i] = dhr[i] * u[i] * sg * (1.0f + g[i] * (1.0f - sg));
        }
    }
}
