/* Internal: what quant.c and quant_avx2.c share. The AVX2 code is compiled for AVX2+FMA+F16C
 * through function attributes whatever -march says, and runs only where the CPU has them. */
#ifndef SQ_KERNELS_QUANT_INTERNAL_H
#define SQ_KERNELS_QUANT_INTERNAL_H

#include <stdint.h>

#include "scalequest/tensor.h"

/* The fixed reduction of 32 partial sums (quant.h). */
float sq__reduce32(const float p[32]);
/* 6-bit scale and min j (0..7) of a Q4_K/Q5_K block's 12 scale bytes. */
void sq__kq_scale_min(const uint8_t *s, int j, uint8_t *sc, uint8_t *mn);

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
#endif

#endif
