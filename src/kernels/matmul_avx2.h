/* Internal: the BF16-, F16- and F32-weight kernels for every CPU with AVX2+FMA, AVX512-BF16 ones included
 * (matmul_avx2.c).
 * Both give bit-identical rows (see the order described there). The GEMM takes one scratch
 * area per OpenMP thread (sq_mm_avx2_scratch_bytes each, 32-byte aligned) from the caller's
 * matmul context, or allocates its own when scratch is NULL. */
#ifndef SQ_KERNELS_MATMUL_AVX2_H
#define SQ_KERNELS_MATMUL_AVX2_H

#include <stdint.h>

#include "scalequest/kernels.h"

/* The F32 kernel of CPUs without AVX2+FMA+F16C (matmul.c: four outputs at a time, x row by
 * x row; another summation order than this file's). bench_matmul times it as the F32
 * kernel these CPUs' successors replaced. */
void sq__matmul_f32_dot4(float *y, const float *x, int rows, const float *w, int in, int out, const float *bias);

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define SQ_HAVE_MM_AVX2 1
/* One matrix of a list sharing the input x: y[rows, out] = x[rows, in] @ W^T + bias, W BF16
 * (F16, F32) [out, in], bias NULL or out floats. A list runs in one parallel region, its outputs split
 * evenly between the threads. */
typedef struct sq_mm_job {
    float *y;
    const void *w; /* uint16_t (BF16, F16) or float (F32) */
    const float *bias;
    int out;
    int f16; /* W is F16, not BF16 */
    int f32; /* W is F32 (then f16 is ignored) */
} sq_mm_job;
/* The `wt` arguments below: the weight type, 0 BF16, 1 F16, 2 F32. */
enum { SQ_MM_BF16 = 0, SQ_MM_F16 = 1, SQ_MM_F32 = 2 };

size_t sq_mm_avx2_scratch_bytes(void);
/* bench_matmul's switch: the F32 GEMM reads weight rows in place (1) or copies a panel (0). */
void sq_mm_avx2_f32_direct(int on);
/* rows 1-3 */
void sq_mm_avx2_gemv(const sq_mm_job *j, int n, const float *x, int rows, int in);
/* Outputs [o0, o1) of y[rows, out] on the calling thread alone (any rows; the GEMV's order). */
void sq_mm_avx2_gemv_part(float *y, const float *x, int rows, const void *w, int wt, int in, int out,
                          const float *bias, int o0, int o1);
/* The GEMM on the calling thread alone, for a caller's parallel region: outputs [o0, o1)
 * of y[rows, out], any rows (meant for 4+), o0 a multiple of sq_mm_avx2_gemm_grain() and o1
 * one too or `out` (a slice is computed whole). scratch: one area, or NULL (then the GEMV,
 * same bits). */
int sq_mm_avx2_gemm_grain(void);
void sq_mm_avx2_gemm_range(float *y, const float *x, int rows, const void *w, int wt, int in, int out,
                           const float *bias, int o0, int o1, void *scratch);
/* Any rows (meant for 4+). scratch: n_scratch areas, or NULL. */
void sq_mm_avx2_gemm(const sq_mm_job *j, int n, const float *x, int rows, int in, void *scratch, int n_scratch);
#endif

#endif
