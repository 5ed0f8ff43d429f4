/* Internal: oneDNN's BF16 matmul with one cached primitive per shape. */
#ifndef SQ_KERNELS_MATMUL_DNNL_H
#define SQ_KERNELS_MATMUL_DNNL_H

#include <stdint.h>

#include "scalequest/base.h"

typedef struct sq_dnnl_cache sq_dnnl_cache;

int sq_dnnl_cache_new(sq_dnnl_cache **c, sq_err *e);
void sq_dnnl_cache_free(sq_dnnl_cache *c);
/* y[rows, out] (f32) = xb[rows, in] (bf16) @ w[out, in]^T (bf16). */
int sq_dnnl_matmul_bf16(sq_dnnl_cache *c, float *y, const uint16_t *xb, int rows, const uint16_t *w, int in,
                        int out, sq_err *e);

#endif
