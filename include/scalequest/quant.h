/* quant — GGUF's quantized weight blocks (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K),
 * read in place from the mmap'd file.
 *
 * A quantized row is a whole number of blocks (32 values for the Q*_0/Q*_1 types, 256 for
 * the K types; sq_dtype_block). Dequantizing gives exactly the floats that gguf-py's
 * gguf.quants.dequantize gives (same products, same rounding: no fused multiply-add).
 *
 * The dot products here sum in one fixed order whatever the CPU: value i of a row goes to
 * partial sum i % 32 (a fused multiply-add), and the 32 partial sums are reduced in a fixed
 * tree. So the fused dequantize-and-dot of a quantized row (the batch-1 GEMV) and the dot of
 * its dequantized floats (the batched path, which dequantizes a panel once and reuses it for
 * every row of the batch) give bit-identical results, with AVX2 or without: a token's logits
 * do not depend on the batch it ran in. AVX2+FMA+F16C is detected at run time; the C
 * fallback computes the same values (fmaf), only slower.
 *
 * Corrupt data: the parser has already checked that every tensor's blocks lie inside the
 * file, so a truncated tensor never reaches these functions. A scale or minimum that is NaN
 * or infinite is refused at model load (sq_quant_find_bad_block names the block); code that
 * calls the kernels directly on such data gets NaN/inf in the affected outputs, nothing worse.
 */
#ifndef SCALEQUEST_QUANT_H
#define SCALEQUEST_QUANT_H

#include <stdint.h>

#include "scalequest/tensor.h"

/* n values (a multiple of the block) from the blocks at src. */
void sq_dequant_row(float *out, const void *src, sq_dtype t, int64_t n);
/* x . row, the row quantized (n values, a multiple of the block). */
float sq_quant_dot(const void *row, sq_dtype t, const float *x, int64_t n);
/* x . w on floats in the fixed order above (n a multiple of 32): equal, bit for bit, to
 * sq_quant_dot on the row that w is the dequantization of. */
float sq_quant_dot_f32(const float *w, const float *x, int64_t n);
/* y[r * ldy + k] = sq_quant_dot_f32(pan + k * in, x + r * in, in) + bias[k] (bias may be NULL)
 * for every one of `rows` x rows and `n` panel rows, the same bits as those calls; on
 * AVX-512 CPUs it reuses each load across several rows (the batched path's inner loop). */
void sq_quant_panel_dot(float *y, int64_t ldy, const float *pan, int n, const float *x, int rows, int64_t in,
                        const float *bias);
/* The first block (of n_values values) whose scale or minimum is NaN or infinite, or -1. */
int64_t sq_quant_find_bad_block(const void *data, sq_dtype t, int64_t n_values);
/* Which code runs: "avx512", "avx2" or "c". sq_quant_force_c(1) selects the C code (tests compare the
 * two); it is process-wide, call it outside parallel regions. */
const char *sq_quant_impl(void);
void sq_quant_force_c(int on);

#endif
