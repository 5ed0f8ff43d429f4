/* Internal: what quant_q8_gemm.c (the batched 8-bit-activation driver) and its x86 tile
 * kernel (quant_q8_gemm_x86.c) share. */
#ifndef SQ_KERNELS_QUANT_Q8_GEMM_H
#define SQ_KERNELS_QUANT_Q8_GEMM_H

#include <stddef.h>
#include <stdint.h>

#include "scalequest/base.h"
#include "scalequest/tensor.h"

/* Outputs per tile, and the bytes one 32-value block of an unpacked tile takes (VNNI: 4 pair
 * vectors of values, 4 vectors of their dots' starts, 8 floats of scales, 8 of minima; AVX2:
 * 8 x 32 weight bytes, 64 floats of scales, 8 of minima, padded to 64 bytes). */
enum { SQ_Q8G_TILE = 8, SQ_Q8G_TILE_BYTES_PER_BLOCK = 576 };
/* K types: per output and 256-value block, 256 int16 pre-scaled values, d, dmin, 8 mins. */
enum { SQ_Q8G_KTILE_BYTES_PER_BLOCK = 576 };
/* An activation row in the K tile's form: per block 256 int16 q's; then per block the 8 sums
 * of 32 q's (int32) and d, 48 bytes. */
static inline size_t sq__q8g_krow_bytes(int64_t n) { return (size_t)(n / 256) * (512 + 48); }
void sq__q8g_krow_vnni(uint8_t *dst, const void *q8k, int64_t nb);
void sq__q8g_ktile_vnni(float *y, int64_t ldy, const uint8_t *w, size_t rb, int nout, sq_dtype t, const uint8_t *xk,
                        size_t xks, int rows, int64_t nb, const float *bias, uint8_t *tile);

/* An activation row in the VNNI 32-value tile's form: per block 64 bytes (each dword of
 * x + 128 twice), then per block the row's (d, s). */
static inline size_t sq__q8g_drow_bytes(int64_t n) { return (size_t)(n / 32) * 72; }
void sq__q8g_drow_vnni(uint8_t *dst, const uint8_t *xq, int64_t nb);
/* x's row of nb 32-value blocks rounded straight into that form (dst) and, q1 not NULL, into
 * sq_quant_act_row's kind 1 as well: the same bytes as rounding and then sq__q8g_drow_vnni. */
void sq__q8g_round_vnni(uint8_t *q1, uint8_t *dst, const float *x, int64_t nb);

/* One tile: nout (<= 8) weight rows of type t (row stride rb bytes, nb 32-value blocks) against
 * `rows` rounded activation rows (stride xs; VNNI: rows in the sq__q8g_drow form, AVX2:
 * sq_quant_act_row's); y[r * ldy + c] = the GEMV's value + bias[c]
 * (bias may be NULL). tile: scratch of nb * SQ_Q8G_TILE_BYTES_PER_BLOCK bytes. */
void sq__q8g_tile_vnni(float *y, int64_t ldy, const uint8_t *w, size_t rb, int nout, sq_dtype t, const uint8_t *xq,
                       size_t xs, int rows, int64_t nb, const float *bias, uint8_t *tile);
void sq__q8g_tile_avx2(float *y, int64_t ldy, const uint8_t *w, size_t rb, int nout, sq_dtype t, const uint8_t *xq,
                       size_t xs, int rows, int64_t nb, const float *bias, uint8_t *tile);

/* sq_quant_matmul_n's batched path: 1 when done, 0 when it does not apply (fewer than 4 rows,
 * no tile kernel for this CPU or these weight types: the caller goes on), negative on error. */
int sq__quant_gemm_n(void **buf, size_t *cap, int n, float *const y[], const float *x, int rows,
                     const sq_view *const w[], const float *const bias[], sq_err *e);

#endif
