/* SwiGLU, forward and backward: h = silu(g) * u, silu'(g) = sig(g) * (1 + g * (1 - sig(g))).
 *
 * Two forwards, on purpose. sq_swiglu (the engine) computes g / (1 + e^-g) * u on separate
 * gate and up rows with the engine's exp (engine_exp below, 16 or 8 lanes or one at a time,
 * the same bits each way); sq_swiglu_forward (training) multiplies g by the sigmoid of simd.h
 * on the fused gate|up rows that backward reads. Their values differ in the last bits.
 *
 * Why not libm's expf in the engine: it is scalar, and with it SwiGLU was 7% of a batched
 * step's CPU time (more than every other non-GEMM op together). engine_exp is simd.h's
 * polynomial (sq_tv_exp8: within 2 ulp of expf), lane for lane: the AVX-512 and AVX2 bodies,
 * picked at run time, and the scalar one (loop tails, CPUs without AVX2) do the same
 * roundings in the same order, fmaf where the vectors fuse, so a value is the same whichever
 * path or lane computes it (batched == sequential, any thread count; tests/test_kernels.c). */
#include <math.h>
#include <omp.h>
#include <stddef.h>

#include "scalequest/kernels.h"
#include "simd.h"

/* One lane of the engine's exp. The clamps are written as the vector max/min (which give
 * their second operand when the first is NaN); rintf rounds to nearest even like the vector
 * round; 2^n is built in the exponent bits. */
static inline float engine_exp1(float x) {
    x = x > SQ_EXP_LO ? x : SQ_EXP_LO;
    x = x < SQ_EXP_HI ? x : SQ_EXP_HI;
    float n = rintf(x * SQ_EXP_LOG2E);
    float r = fmaf(-n, SQ_EXP_LN2_HI, x);
    r = fmaf(-n, SQ_EXP_LN2_LO, r);
    float p = SQ_EXP_P0;
    p = fmaf(p, r, SQ_EXP_P1);
    p = fmaf(p, r, SQ_EXP_P2);
    p = fmaf(p, r, SQ_EXP_P3);
    p = fmaf(p, r, SQ_EXP_P4);
    p = fmaf(p, r, SQ_EXP_P5);
    p = fmaf(p, r * r, r + 1.0f);
    union { uint32_t u; float f; } e = {.u = (uint32_t)((int32_t)n + 127) << 23};
    return p * e.f;
}

static inline float swiglu_one(float g, float u) { return g / (1.0f + engine_exp1(-g)) * u; }

static void swiglu_c(float *gate, const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) gate[i] = swiglu_one(gate[i], up[i]);
}

#if defined(__x86_64__) || defined(__i386__)
#define TGT2 __attribute__((target("avx2,fma")))
#define TGT512 __attribute__((target("avx512f,avx2,fma")))

static TGT2 void swiglu_avx2(float *gate, const float *up, size_t n) {
    size_t i = 0;
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i);
        __m256 d = _mm256_add_ps(one, sq_tv_exp8(_mm256_sub_ps(zero, g)));
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(_mm256_div_ps(g, d), _mm256_loadu_ps(up + i)));
    }
    for (; i < n; i++) gate[i] = swiglu_one(gate[i], up[i]);
}

static TGT512 inline __m512 swiglu16(__m512 g, __m512 u) {
    __m512 d = _mm512_add_ps(_mm512_set1_ps(1.0f), sq_tv_exp16(_mm512_sub_ps(_mm512_setzero_ps(), g)));
    return _mm512_mul_ps(_mm512_div_ps(g, d), u);
}

static TGT512 void swiglu_avx512(float *gate, const float *up, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(gate + i, swiglu16(_mm512_loadu_ps(gate + i), _mm512_loadu_ps(up + i)));
    if (i < n) { /* the tail in masked lanes: the same lane-wise ops */
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        __m512 g = _mm512_maskz_loadu_ps(k, gate + i), u = _mm512_maskz_loadu_ps(k, up + i);
        _mm512_mask_storeu_ps(gate + i, k, swiglu16(g, u));
    }
}
#endif

void sq_swiglu(float *gate, const float *up, size_t n) {
    int isa = sq__rows_isa();
    void (*fn)(float *, const float *, size_t) = swiglu_c;
#if defined(__x86_64__) || defined(__i386__)
    fn = isa == 2 ? swiglu_avx512 : isa == 1 ? swiglu_avx2 : swiglu_c;
#endif
    /* Inside a parallel region (the engine's one-region steps call this per row and share of
     * columns) it runs here: even a one-thread nested region costs a team set-up per call. */
    if (n <= (1 << 16) || omp_in_parallel()) {
        fn(gate, up, n);
        return;
    }
    int64_t chunks = (int64_t)((n + 4095) / 4096);
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < chunks; c++) {
        size_t at = (size_t)c * 4096;
        fn(gate + at, up + at, SQ_MIN((size_t)4096, n - at));
    }
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
