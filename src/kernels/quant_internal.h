/* Internal: what quant.c and quant_avx2.c share. The AVX2 code is compiled for AVX2+FMA+F16C
 * through function attributes whatever -march says, and runs only where the CPU has them. */
#ifndef SQ_KERNELS_QUANT_INTERNAL_H
#define SQ_KERNELS_QUANT_INTERNAL_H

#include <stdint.h>

#include "scalequest/tensor.h"

/* The fixed reduction of 32 partial sums (quant.h). */
float sq__reduce32(const float p[32]);
/* Whether the AVX2 code may run (the CPU has it and sq_quant_force_c is off). */
int sq__quant_use_avx2(void);
/* 6-bit scale and min j (0..7) of a Q4_K/Q5_K block's 12 scale bytes. */
void sq__kq_scale_min(const uint8_t *s, int j, uint8_t *sc, uint8_t *mn);

/* 8-bit activation rows (quant.h). 32-value blocks: a row of n values is its n int8 q's (block
 * after block, contiguous, so 512-bit code reads two blocks at once), then per block the
 * f16-rounded scale d and (Q8_1) the f16-rounded d * sum(q), as a pair of floats. 256-value
 * blocks: one struct each, with the fp32 scale and the sums of each 16 q's. */
typedef struct {
    int8_t q[256];
    int16_t bsum[16];
    float d;
} sq__q8k;

/* The sum of 8 lanes in quant.h's order: (l + l+4), then (0 + 2) + (1 + 3). */
static inline float sq__hsum8(const float a[8]) {
    float h[4];
    for (int l = 0; l < 4; l++) h[l] = a[l] + a[l + 4];
    return (h[0] + h[2]) + (h[1] + h[3]);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SQ_QUANT_HAVE_AVX2 1
int sq__quant_avx2_supported(void);
void sq__dequant_avx2(float *out, const void *src, sq_dtype t, int64_t n);
float sq__quant_dot_avx2(const void *row, sq_dtype t, const float *x, int64_t n);
float sq__dot_f32_avx2(const float *w, const float *x, int64_t n);
int sq__quant_avx512_supported(void);
int sq__quant512_handles(sq_dtype t);
void sq__dequant_avx512(float *out, const void *src, sq_dtype t, int64_t n);
float sq__quant_dot_avx512(const void *row, sq_dtype t, const float *x, int64_t n);
void sq__panel_dot_avx512(float *y, int64_t ldy, const float *pan, int n, const float *x, int rows, int64_t in,
                          const float *bias);
int sq__q8_vnni_supported(void);
void sq__act_q8b_avx2(uint8_t *dst, const float *x, int64_t nb);
float sq__dot_q8_avx2(const uint8_t *w, sq_dtype t, const void *xq, int64_t n);
float sq__dot_q8_vnni(const uint8_t *w, sq_dtype t, const void *xq, int64_t n);
void sq__dot_q8_rows_avx2(float *y, int64_t ys, const uint8_t *w, sq_dtype t, const void *xq, size_t xs, int rows,
                          int64_t n, float bias);
void sq__dot_q8_rows4t_vnni(float *y, int64_t ys, const uint8_t *w, sq_dtype t, const uint8_t *xq, size_t xs,
                            const float *dsT, int64_t nb, float bias);
/* Batch 1: `outs` (4 or 8) consecutive weight rows rb bytes apart (Q4_0, Q4_1, Q8_0) against one
 * activation row of nb blocks; y[i] = dot of row i + (bias ? bias[i] : 0), the bits of the C
 * reference. */
void sq__dot_q8_outs_vnni(float *y, const uint8_t *w, size_t rb, sq_dtype t, const uint8_t *xq, int64_t nb,
                          const float *bias, int outs);
/* Batch 1, 4 rows at a time, any 32-value type (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0); the same contract. */
void sq__dot_q8_outs4_avx2(float *y, const uint8_t *w, size_t rb, sq_dtype t, const uint8_t *xq, int64_t nb,
                           const float *bias);
void sq__dot_q8_outs4_vnni(float *y, const uint8_t *w, size_t rb, sq_dtype t, const uint8_t *xq, int64_t nb,
                           const float *bias);
/* Batch 1, 4 consecutive rows rb bytes apart of Q4_K, Q5_K or Q6_K against one Q8_K row of n
 * values; y[i] = dot of row i + (bias ? bias[i] : 0), the bits of the C reference. */
void sq__dot_q8_outsk_avx2(float *y, const uint8_t *w, size_t rb, sq_dtype t, const void *xq, int64_t n,
                           const float *bias);
void sq__dot_q8_outsk_vnni(float *y, const uint8_t *w, size_t rb, sq_dtype t, const void *xq, int64_t n,
                           const float *bias);
void sq__dot_q8_rows_vnni(float *y, int64_t ys, const uint8_t *w, sq_dtype t, const void *xq, size_t xs, int rows,
                          int64_t n, float bias);

#include <immintrin.h>
/* Half h (0 or 1) of a Q6_K block b: its 128 six-bit values, 0..63 (before the -32 offset),
 * as four vectors of 32 bytes in the block's value order. One unpack for the fp32
 * dequantizer (quant_avx2.c) and the 8-bit-activation dots (quant_q8_body.h). */
static inline __attribute__((target("avx2"), always_inline)) void sq__q6k_unpack_half(const uint8_t *b, int h,
                                                                                       __m256i c[4]) {
    const __m256i m4 = _mm256_set1_epi8(0xF), m2 = _mm256_set1_epi8(3);
    __m256i L0 = _mm256_loadu_si256((const __m256i *)(b + 64 * h));
    __m256i L1 = _mm256_loadu_si256((const __m256i *)(b + 64 * h + 32));
    __m256i H = _mm256_loadu_si256((const __m256i *)(b + 128 + 32 * h));
    c[0] = _mm256_or_si256(_mm256_and_si256(L0, m4), _mm256_slli_epi16(_mm256_and_si256(H, m2), 4));
    c[1] = _mm256_or_si256(_mm256_and_si256(L1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(H, 2), m2), 4));
    c[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(L0, 4), m4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(H, 4), m2), 4));
    c[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(L1, 4), m4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(H, 6), m2), 4));
}
#endif

#endif
