/* Private to src/kernels: the GEMM backends behind sq_gemm (gemm.c chooses among them). */
#ifndef SQ_KERNELS_BACKENDS_H
#define SQ_KERNELS_BACKENDS_H

#include "scalequest/kernels.h"

/* Our kernels (matmul.c): y[rows, out] = x[rows, in] W^T + bias for an F32, BF16 or GGUF
 * block weight [out, in]; each row of y bit-identical at any row count. */
int sq__matmul_ours(sq_matmul_ctx *c, float *y, const float *x, int rows, const sq_view *w, const float *bias,
                    sq_err *e);

#endif
