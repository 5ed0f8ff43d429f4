/* SwiGLU, forward and backward: h = silu(g) * u, silu'(g) = sig(g) * (1 + g * (1 - sig(g))).
 *
 * Two forwards, on purpose. sq_swiglu (the engine) takes libm's expf on separate gate and up
 * rows; sq_swiglu_forward (training) takes the vector exp of simd.h on the fused gate|up rows
 * that backward reads. Their values differ in the last bits; the engine's outputs stay those
 * of libm's expf. */
#include <math.h>
#include <omp.h>
#include <stddef.h>

#include "scalequest/kernels.h"
#include "simd.h"

static inline float swiglu_one(float g, float u) { return g / (1.0f + expf(-g)) * u; }

void sq_swiglu(float *gate, const float *up, size_t n) {
    /* An expf per element: worth both threads for a batch (each element's result is the same).
     * Inside a parallel region (the engine's one-region steps call this per row and share of
     * columns) it runs here: even a one-thread nested region costs a team set-up per call. */
    if (n <= (1 << 15) || omp_in_parallel()) {
        for (size_t i = 0; i < n; i++) gate[i] = swiglu_one(gate[i], up[i]);
        return;
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) gate[i] = swiglu_one(gate[i], up[i]);
}

void sq_swiglu_forward(float *h, const float *gu, int N, int F) {
#pragma omp parallel for schedule(static) if ((size_t)N * F > SQ_PAR_MIN)
    for (int r = 0; r < N; r++) {
        const float *g = gu + (size_t)r * 2 * F, *u = g + F;
        float *hr = h + (size_t)r * F;
        int i = 0;
#if defined(SQ_TV_AVX2)
        for (; i + 8 <= F; i += 8) {
            __m256 gv = _mm256_loadu_ps(g + i);
            __m256 sg = sq_tv_sigmoid8(gv);
            _mm256_storeu_ps(hr + i, _mm256_mul_ps(_mm256_mul_ps(gv, sg), _mm256_loadu_ps(u + i)));
        }
#endif
        for (; i < F; i++) hr[i] = g[i] * sq_tv_sigmoid1(g[i]) * u[i];
    }
}

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
