/* Private to src/kernels: the vector helpers every kernel shares, for AVX-512, AVX2+FMA or
 * plain C, chosen at compile time (-march=native). Each keeps one fixed summation order for a
 * given build, so a row's result never depends on batching or threads.
 *
 * Two families live here. sq__* (dot, axpy, bf16 loads) serve the inference kernels, 16 lanes
 * wide on AVX-512. sq_tv_* (vector exp, max, exp-sum, dot, sigmoid) serve the training
 * kernels and stay 8 lanes wide on every AVX2 CPU: the trainer's results (and its tests'
 * resume == uninterrupted bits) then do not change between an AVX2 and an AVX-512 machine.
 * The two dots sum in different orders, so they stay two.
 *
 * The vector exp: glibc's expf is scalar unless built with -ffast-math, and training takes
 * tens of millions of exps a step, so an AVX2+FMA version lives here. Accuracy: within 2 ulp
 * of expf over the range training feeds it (the gradient tests compare against PyTorch at
 * 1e-4, far above that). The sampler keeps libm's expf; the engine's SwiGLU takes this
 * exp in its AVX2 body and the same constants in its 16-lane and scalar ones (swiglu.c). The engine's attention softmax takes
 * sq_tv_exp8 (both of its kernels, so they agree bit for bit): scalar expf was half its time. */
#ifndef SQ_KERNELS_SIMD_H
#define SQ_KERNELS_SIMD_H

#include <immintrin.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* The engine's row kernels (sq_swiglu, sq_rmsnorm, sq_add_rmsnorm) pick their body at run
 * time: 2 AVX-512, 1 AVX2+FMA, 0 plain C (rows.c; sq_rows_isa_force narrows it for tests).
 * Each body gives the same bits, so the choice only changes speed. */
int sq__rows_isa(void);

#if defined(__AVX2__) && defined(__FMA__)
/* The horizontal sum every AVX2 kernel ends a dot product with (one fixed order). */
static inline float sq__hsum256(__m256 acc) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}
#endif

static inline float sq__dot(const float *a, const float *b, int n) {
    int i = 0;
    float s = 0;
#if defined(__AVX512F__)
    __m512 acc = _mm512_setzero_ps();
    for (; i + 16 <= n; i += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc);
    s = _mm512_reduce_add_ps(acc);
#elif defined(__AVX2__) && defined(__FMA__)
    __m256 acc = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    s = sq__hsum256(acc);
#endif
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

static inline void sq__axpy(float *y, float a, const float *x, int n) {
    int i = 0;
#if defined(__AVX512F__)
    __m512 va = _mm512_set1_ps(a);
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
#elif defined(__AVX2__) && defined(__FMA__)
    __m256 va = _mm256_set1_ps(a);
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
#endif
    for (; i < n; i++) y[i] += a * x[i];
}

#if defined(__AVX2__) && defined(__FMA__)
/* 8 bf16 values widened to floats. */
static inline __m256 sq__load_bf16x8(const uint16_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}
#endif


/* ---- the training kernels' helpers ---------------------------------------------------- */

/* The vector exp's constants: x = n ln2 + r with |r| <= ln2/2 (ln2 split in two for an exact
 * first step), exp(r) by a degree-6 polynomial, 2^n through the exponent bits. Inputs are
 * clamped to [SQ_EXP_LO, SQ_EXP_HI] (no inf, no denormals: callers that need an exact zero,
 * masked attention slots, write it themselves). swiglu.c's 16-lane and scalar bodies use the
 * same constants in the same order, so all widths give the same bits. */
#define SQ_EXP_LO -87.3f
#define SQ_EXP_HI 88.3f
#define SQ_EXP_LOG2E 1.44269504088896341f
#define SQ_EXP_LN2_HI 0.693359375f
#define SQ_EXP_LN2_LO -2.12194440e-4f
#define SQ_EXP_P0 1.9875691500e-4f
#define SQ_EXP_P1 1.3981999507e-3f
#define SQ_EXP_P2 8.3334519073e-3f
#define SQ_EXP_P3 4.1665795894e-2f
#define SQ_EXP_P4 1.6666665459e-1f
#define SQ_EXP_P5 5.0000001201e-1f

/* exp(x) for 8 lanes. Compiled for AVX2+FMA whatever the build's flags, so that run-time
 * dispatched kernels (swiglu.c) can call it from their AVX2 bodies too. */
__attribute__((target("avx2,fma"))) static inline __m256 sq_tv_exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(SQ_EXP_LO)), _mm256_set1_ps(SQ_EXP_HI));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(SQ_EXP_LOG2E)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(SQ_EXP_LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(SQ_EXP_LN2_LO), r);
    __m256 p = _mm256_set1_ps(SQ_EXP_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SQ_EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SQ_EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SQ_EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SQ_EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SQ_EXP_P5));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* sq_tv_exp8 on 16 lanes, operation for operation (the same bits per lane): SwiGLU's and
 * attention's AVX-512 bodies. Compiled for AVX-512 by target attribute, called only from
 * code that runs on it. */
__attribute__((target("avx512f,avx2,fma"))) static inline __m512 sq_tv_exp16(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(SQ_EXP_LO)), _mm512_set1_ps(SQ_EXP_HI));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(SQ_EXP_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(SQ_EXP_LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(SQ_EXP_LN2_LO), r);
    __m512 p = _mm512_set1_ps(SQ_EXP_P0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(SQ_EXP_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(SQ_EXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(SQ_EXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(SQ_EXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(SQ_EXP_P5));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

#if defined(__AVX2__) && defined(__FMA__)
#define SQ_TV_AVX2 1

static inline float sq_tv_hmax8(__m256 v) {
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}
#endif

/* Scalar twin of sq_tv_exp8 for loop tails, so a value does not depend on where it falls. */
static inline float sq_tv_exp1(float x) {
#if defined(SQ_TV_AVX2)
    return _mm256_cvtss_f32(sq_tv_exp8(_mm256_set1_ps(x)));
#else
    return expf(x);
#endif
}

/* max of p[0..n) */
static inline float sq_tv_max(const float *p, size_t n) {
    size_t j = 0;
    float mx = -INFINITY;
#if defined(SQ_TV_AVX2)
    if (n >= 8) {
        __m256 m = _mm256_loadu_ps(p);
        for (j = 8; j + 8 <= n; j += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(p + j));
        mx = sq_tv_hmax8(m);
    }
#endif
    for (; j < n; j++) mx = p[j] > mx ? p[j] : mx;
    return mx;
}

/* p[j] = exp(p[j] - sub) in place; returns the sum of the new values (four partial sums). */
static inline float sq_tv_exp_sum(float *p, size_t n, float sub) {
    size_t j = 0;
    float s = 0;
#if defined(SQ_TV_AVX2)
    __m256 vs = _mm256_set1_ps(sub), a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (; j + 16 <= n; j += 16) {
        __m256 e0 = sq_tv_exp8(_mm256_sub_ps(_mm256_loadu_ps(p + j), vs));
        __m256 e1 = sq_tv_exp8(_mm256_sub_ps(_mm256_loadu_ps(p + j + 8), vs));
        _mm256_storeu_ps(p + j, e0);
        _mm256_storeu_ps(p + j + 8, e1);
        a0 = _mm256_add_ps(a0, e0);
        a1 = _mm256_add_ps(a1, e1);
    }
    for (; j + 8 <= n; j += 8) {
        __m256 e0 = sq_tv_exp8(_mm256_sub_ps(_mm256_loadu_ps(p + j), vs));
        _mm256_storeu_ps(p + j, e0);
        a0 = _mm256_add_ps(a0, e0);
    }
    s = sq__hsum256(_mm256_add_ps(a0, a1));
#endif
    for (; j < n; j++) {
        p[j] = sq_tv_exp1(p[j] - sub);
        s += p[j];
    }
    return s;
}

/* sum of a[j] * b[j] */
static inline float sq_tv_dot(const float *a, const float *b, size_t n) {
    size_t j = 0;
    float s = 0;
#if defined(SQ_TV_AVX2)
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (; j + 16 <= n; j += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j), _mm256_loadu_ps(b + j), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j + 8), _mm256_loadu_ps(b + j + 8), a1);
    }
    for (; j + 8 <= n; j += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j), _mm256_loadu_ps(b + j), a0);
    s = sq__hsum256(_mm256_add_ps(a0, a1));
#endif
    for (; j < n; j++) s += a[j] * b[j];
    return s;
}

/* sigmoid(g) for 8 lanes */
#if defined(SQ_TV_AVX2)
static inline __m256 sq_tv_sigmoid8(__m256 g) {
    __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, sq_tv_exp8(_mm256_sub_ps(_mm256_setzero_ps(), g))));
}
#endif

static inline float sq_tv_sigmoid1(float g) { return 1.0f / (1.0f + sq_tv_exp1(-g)); }

#endif
