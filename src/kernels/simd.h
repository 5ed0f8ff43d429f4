/* Internal: the few vector helpers the kernels share, for AVX-512, AVX2+FMA or plain C,
 * chosen at compile time (-march=native). Each keeps one fixed summation order for a given
 * build, so a row's result never depends on batching or threads. */
#ifndef SQ_KERNELS_SIMD_H
#define SQ_KERNELS_SIMD_H

#include <immintrin.h>
#include <stdint.h>

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

#endif
