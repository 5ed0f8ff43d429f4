/* SwiGLU backward: h = silu(g) * u, silu'(g) = sig(g) * (1 + g * (1 - sig(g))). */
#include <stddef.h>

#include "../train/tvec.h"
#include "scalequest/train.h"

void sq_swiglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n) {
    size_t chunks = (n + 63) / 64; /* as the forward: the vector/scalar split never moves */
#pragma omp parallel for schedule(static) if (n > SQ_PAR_MIN)
    for (size_t c = 0; c < chunks; c++) {
        size_t i = c * 64, end = i + 64 < n ? i + 64 : n;
#if defined(SQ_TV_AVX2)
        __m256 one = _mm256_set1_ps(1.0f);
        for (; i + 8 <= end; i += 8) {
            __m256 gv = _mm256_loadu_ps(g + i), dhv = _mm256_loadu_ps(dh + i);
            __m256 sg = sq_tv_sigmoid8(gv);
            _mm256_storeu_ps(du + i, _mm256_mul_ps(dhv, _mm256_mul_ps(gv, sg)));
            __m256 t = _mm256_fmadd_ps(gv, _mm256_sub_ps(one, sg), one);
            _mm256_storeu_ps(dg + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(dhv, _mm256_loadu_ps(u + i)), sg), t));
        }
#endif
        for (; i < end; i++) {
            float sg = sq_tv_sigmoid1(g[i]);
            du[i] = dh[i] * (g[i] * sg);
            dg[i] = dh[i] * u[i] * sg * (1.0f + g[i] * (1.0f - sg));
        }
    }
}
