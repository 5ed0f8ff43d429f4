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

#include "scalequest/base.h"
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


/* ---- 8-bit activations: llama.cpp's arithmetic for quantized weights -------------------
 *
 * By default (sq_quant_act_get() == SQ_ACT_Q8) a matmul of quantized weights rounds each activation
 * row to 8 bits per block, as llama.cpp's CPU backend does, and takes integer dot products:
 *   - Q4_0, Q5_0, Q8_0 weights take Q8_0 rows and Q4_1, Q5_1 take Q8_1 rows: 32-value blocks,
 *     d = amax / 127 rounded to f16, q = x * (127 / amax) rounded half to even (llama.cpp's
 *     AVX code, not gguf-py's 1/d and half-away rounding: they differ at rare near-ties),
 *     and for Q8_1 s = d * sum(q) rounded to f16 (both kept in one layout here);
 *   - Q4_K, Q5_K, Q6_K take Q8_K rows: 256-value blocks, q = nearest(-127 / max * x) where
 *     max is the first value of largest |x|, d = 1 / (-127 / max) in fp32, and the sums of
 *     each 16 q's.
 * Activation values are in -127..127 (never -128: the AVX2 sign trick relies on it).
 *
 * The integer sums are exact (int32), so every ISA gets the same integers; the float combine
 * is one fixed order: for 32-value blocks, lane l (0..7) of a block is the sum of its values
 * 4l..4l+3, acc[l] = fma(dw * dx, (float)lane, acc[l]) block after block, the 8 lanes summed
 * as (l + l+4) then (0 + 2) + (1 + 3), plus (Q*_1) the running fma(m, s) over the blocks.
 * That is also llama.cpp's own order for these types on AVX2/AVX-512 CPUs: on SmolLM2 with
 * an f16 KV cache the logits at position 0 (where attention is the value row) equal
 * llama.cpp's bit for bit, and any other order (tried: even and odd blocks in two
 * accumulators) moves them by ~1e-2 of the largest logit, such is the model's sensitivity to
 * one flipped 8-bit rounding;
 * for 256-value blocks, one exact integer per block for the scaled sums and one for the
 * mins, acc = fma(dw * dx, isum, acc), mn = fma(dmin * dx, imin, mn), result acc - mn. The C
 * reference, the AVX2 (maddubs) code and the AVX-512 VNNI (vpdpbusd) code give the same bits,
 * at batch 1 and batched. A NaN or infinity in an activation block makes that block's scale
 * NaN, so the outputs it reaches are NaN (never a silently finite number). */
typedef enum sq_act_type { SQ_ACT_Q8 = 0, SQ_ACT_F32 = 1 } sq_act_type;
/* The activation type of every matmul of quantized weights in this process (like the thread
 * count): SQ_ACT_Q8 unless set. --act-type f32 selects the fp32 path (activations kept in
 * fp32, weights dequantized: the numbers of transformers on the dequantized weights). Set
 * it before the work starts, not while matmuls run. */
void sq_quant_act_set(int act);
int sq_quant_act_get(void);
const char *sq_act_type_name(int act); /* "q8", "f32" */
int sq_act_type_parse(const char *s);  /* -1 for an unknown name */
/* The commands' default when --act-type is not given: 8-bit activations at every batch size
 * (llama.cpp's arithmetic; fewer CPU cycles per token than fp32 at batch 1 and, with the
 * batched tile kernel, at batch 32 too: docs/engine.md). One act type for every batch, so a
 * sequence's tokens do not depend on how many ran beside it. Kept for callers that pass a
 * batch size: the answer no longer depends on it. */
int sq_act_type_for_batch(int max_batch);
/* The activation format weights of type wt take: 1 = 32-value blocks (Q8_0/Q8_1), 2 = Q8_K;
 * 0 for a type that is not quantized. */
int sq_quant_act_kind(sq_dtype wt);
/* Bytes of one row of n values (a multiple of the kind's block) in that format. */
size_t sq_quant_act_bytes(int kind, int64_t n);
/* Round x (n values) into dst, in format `kind`. */
void sq_quant_act_row(void *dst, const float *x, int kind, int64_t n);
/* The same float values the rounding stands for (q * d), for tests and the peer check. */
void sq_quant_act_dequant(float *out, const void *src, int kind, int64_t n);
/* The dot of a weight row (type wt, n values) with a rounded activation row of the right kind. */
float sq_quant_dot_q8(const void *wrow, sq_dtype wt, const void *xq, int64_t n);
/* y[r * ystride] = sq_quant_dot_q8(wrow, wt, xq + r * xstride, n) + bias for r < rows, the
 * same bits (the weight blocks are unpacked once for several rows). */
void sq_quant_dot_q8_rows(float *y, int64_t ystride, const void *wrow, sq_dtype wt, const void *xq, size_t xstride,
                          int rows, int64_t n, float bias);
/* Which code runs the 8-bit dots: "avx512vnni", "avx2" or "c" (sq_quant_force_c applies). */
const char *sq_quant_q8_impl(void);
/* Tests: 0 = best available, 1 = C, 2 = AVX2 even where VNNI exists (ignored where absent). */
void sq_quant_q8_force(int level);

/* Matmuls of quantized weights on 8-bit activations (the routing of sq_matmul, sq_matmul_n
 * and sq_matmul_part when sq_quant_act_get() is SQ_ACT_Q8). buf is the caller's growing scratch for the
 * rounded rows (*buf, *cap; free(*buf) when done). Each x row is rounded once per call, for
 * all n weights of sq_quant_matmul_n. */
int sq_quant_matmul(void **buf, size_t *cap, float *y, const float *x, int rows, const sq_view *w,
                    const float *bias, sq_err *e);
int sq_quant_matmul_n(void **buf, size_t *cap, int n, float *const y[], const float *x, int rows,
                      const sq_view *const w[], const float *const bias[], sq_err *e);
/* One thread's share [o0, o1) of the outputs, inside the caller's parallel region (1-3 rows;
 * scratch on the stack). */
void sq_quant_matmul_part(float *y, const float *x, int rows, const sq_view *w, const float *bias, int o0, int o1);

/* ---- x rounded once, outputs by ranges (a step run as one parallel region) -------------
 * The engine's step rounds each matmul input's rows once (sq_quant_xrows_round, split by
 * rows between the threads; one copy per format the input's weights need), then any thread
 * computes any range of outputs of any of those weights on them (sq_quant_matmul_range_x):
 * the GEMV's rows kernel at 1-3 rows, the tile kernel (quant_q8_gemm.c) at 4+ where it
 * applies. Same dots, same bits as sq_quant_matmul_n. */
typedef struct sq_quant_xrows {
    uint8_t *q1, *q2, *qk; /* 32-value-block rows, Q8_K rows, the K tile's rows (NULL: not needed) */
    size_t s1, s2, sk;     /* their row strides in bytes */
    uint8_t *qd;           /* the VNNI 32-value tile's rows (NULL: not needed) */
    size_t sd;
    int64_t in;
} sq_quant_xrows;
/* Bytes of a buffer that holds `rows` rows of up to max_in values in every format. */
size_t sq_quant_xrows_bytes(int64_t max_in, int rows);
/* Lay out q over buf (64-byte aligned, sq_quant_xrows_bytes(in, rows) bytes) for rows of in
 * values and the formats in `kinds` (an OR of sq_quant_act_kind); the same arguments give
 * the same layout on every thread. */
void sq_quant_xrows_init(sq_quant_xrows *q, void *buf, int kinds, int64_t in, int rows);
/* Round rows [r0, r1) of x (row stride q->in) into every format q holds. */
void sq_quant_xrows_round(const sq_quant_xrows *q, const float *x, int r0, int r1);
/* Per-thread scratch sq_quant_matmul_range_x needs for rows of in values. */
size_t sq_quant_tile_bytes(int64_t in);
/* Outputs [o0, o1) of w (quantized; o0 a multiple of 8 at 4+ rows) for `rows` rounded rows. */
void sq_quant_matmul_range_x(float *y, const sq_quant_xrows *q, int rows, const sq_view *w, const float *bias, int o0,
                             int o1, void *tile);
/* The GEMV's part of it: outputs [o0, o1) on rows already rounded to w's format (stride xs). */
void sq_quant_matmul_part_q8(float *y, const void *xq, size_t xs, int rows, const sq_view *w, const float *bias,
                             int o0, int o1);

#endif
