/* kernels — the forward hot loops of a Llama-family transformer, on plain float rows.
 *
 * Every function here works on caller-owned memory and allocates nothing, except the
 * AVX2 GEMM's per-thread panel scratch (owned by an sq_matmul_ctx, freed by sq_matmul_ctx_free; the plain
 * sq_matmul_bf16 without a context allocates that scratch per call). Activations are float rows, row-major; weights are sq_views
 * (F32 or BF16, [out, in] as HF stores a Linear). Functions split their work over the
 * process's OpenMP pool where the work is large enough; results do not depend on the
 * thread count, and the F32 matmul gives bit-identical rows whatever the batch size.
 * The training engineer's *_backward kernels sit beside these and share their conventions.
 */
#ifndef SCALEQUEST_KERNELS_H
#define SCALEQUEST_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "scalequest/base.h"
#include "scalequest/tensor.h"

/* ---- element-wise and row kernels ----------------------------------------------------- */

/* out[r] = x[r] / rms(x[r]) * w, rows of n floats (out may alias x). */
void sq_rmsnorm(float *out, const float *x, const float *w, int rows, int n, float eps);
/* In place: softmax over n floats. */
void sq_softmax(float *x, int n);
/* gate[i] = silu(gate[i]) * up[i], n floats. */
void sq_swiglu(float *gate, const float *up, size_t n);
/* y[i] += x[i] */
void sq_add(float *y, const float *x, size_t n);
/* Convert n values. */
void sq_f32_to_bf16_row(uint16_t *out, const float *x, size_t n);
void sq_bf16_to_f32_row(float *out, const uint16_t *x, size_t n);
void sq_f16_to_f32_row(float *out, const uint16_t *x, size_t n);
/* Q8_0 blocks (32 values: f16 scale then 32 int8) to floats; n is a multiple of 32. */
void sq_q8_0_to_f32_row(float *out, const uint8_t *blocks, size_t n);
/* Row `row` of an embedding table (F32, BF16 or F16, [vocab, n]) as floats. */
void sq_embed_row(float *out, const sq_view *table, int64_t row);

/* ---- rotary position embedding ---------------------------------------------------------- */

/* The rotary frequencies of one model: inv_freq[i] for i < head_dim/2, after rope scaling
 * (linear, llama3; dynamic NTK is applied per position in sq_rope_angles). */
typedef struct sq_rope {
    int head_dim;
    int interleaved; /* 1: pairs (2i, 2i+1) as GGUF's llama layout; 0: (i, i+d/2) as HF */
    int dynamic;     /* dynamic NTK scaling beyond max_pos */
    float theta, factor;
    int max_pos;
    float inv_freq[512];
} sq_rope;

/* scaling: 0 none, 1 linear, 2 dynamic, 3 llama3 (sq_rope_scaling's values). Returns
 * SQ_ERANGE for head_dim > 1024 or odd. */
int sq_rope_init(sq_rope *r, int head_dim, float theta, int scaling, float factor, float low_freq_factor,
                 float high_freq_factor, int original_max_pos, int interleaved);
/* Divide inv_freq element-wise by factors (GGUF's rope_freqs tensor), head_dim/2 values. */
void sq_rope_set_freq_factors(sq_rope *r, const float *factors);
/* cos and sin of position pos: head_dim/2 values each. */
void sq_rope_angles(const sq_rope *r, int pos, float *cos_out, float *sin_out);
/* Rotate n_heads vectors of head_dim floats in place with the given angles. */
void sq_rope_apply(const sq_rope *r, float *x, int n_heads, const float *cos_v, const float *sin_v);

/* ---- matmul ----------------------------------------------------------------------------- */

/* y[rows, out] = x[rows, in] @ W^T (+ bias), W an [out, in] view (F32 or BF16).
 *  - F32 weights: our kernel (AVX-512, AVX2 or C); each output row depends on its input row
 *    only, so results are identical at any batch size.
 *  - BF16 weights: our kernels, x kept in float and the weights widened to F32, at every
 *    row count. On AVX2+FMA CPUs (AVX-512 ones included) a prefetching GEMV for 1-3 rows
 *    and a register-blocked GEMM over weight panels widened to F32 for 4+ rows; both sum
 *    in the same order, so these rows too are bit-identical at any batch size.
 *    AVX512-BF16's vdpbf16ps and oneDNN's BF16 matmul are not used: both round x to bf16
 *    (8 bits of mantissa), and oneDNN chooses its kernel and blocking per shape (rows
 *    included) with no promise of a summation order, so a row's result would depend on the
 *    batch it is in.
 * The context holds the GEMM's per-thread scratch (no allocation in steady state). One
 * context per thread of callers. */
typedef struct sq_matmul_ctx sq_matmul_ctx;

int sq_matmul_ctx_new(sq_matmul_ctx **c, sq_err *e);
void sq_matmul_ctx_free(sq_matmul_ctx *c);
int sq_matmul(sq_matmul_ctx *c, float *y, const float *x, int rows, const sq_view *w, const float *bias,
              sq_err *e);
/* Several matmuls of one x (q/k/v, gate/up): weights w[k] of equal `in`, outputs y[k],
 * bias[k] (entries may be NULL). The results are those of n sq_matmul calls; with BF16
 * weights on AVX2 CPUs all n run in one parallel region (one fork/join instead of n). */
int sq_matmul_n(sq_matmul_ctx *c, int n, float *const y[], const float *x, int rows, const sq_view *const w[],
                const float *const bias[], sq_err *e);
/* For a caller's own parallel region (the batch-1 decode runs one per step): outputs
 * [o0, o1) of y[rows, out] = x @ W^T + bias, computed by the calling thread alone with the
 * same per-output order as sq_matmul's small-batch path (so the rows are bit-identical to
 * it). Meant for 1-3 rows; sq_matmul_part_ok says whether a weight can go this way (F32 or
 * BF16, 2-D). */
int sq_matmul_part_ok(const sq_view *w);
void sq_matmul_part(float *y, const float *x, int rows, const sq_view *w, const float *bias, int o0, int o1);
/* The plain kernels. w is [out, in]; bias may be NULL. sq_matmul_bf16 ignores xb (kept for
 * callers of the earlier API; sq_matmul_bf16_needs_xb() is always 0 now: no path rounds x
 * to bf16). */
void sq_matmul_f32(float *y, const float *x, int rows, const float *w, int in, int out, const float *bias);
void sq_matmul_bf16(float *y, const float *x, const uint16_t *xb, int rows, const uint16_t *w, int in, int out,
                    const float *bias);
int sq_matmul_bf16_needs_xb(void);

/* ---- attention -------------------------------------------------------------------------- */

/* One query's attention over cached keys/values held in fixed-size blocks.
 * q: n_heads * head_dim floats; out: the same. Keys and values of position p live at
 * k_base + (blocks[p / block_size] * block_size + p % block_size) * kv_stride + h * head_dim
 * for kv head h (likewise v_base). Positions [start, n_pos) are attended (start > 0 for a
 * sliding window). scratch: n_pos floats. Query head h uses kv head h / (n_heads/n_kv_heads). */
/* Element type of a KV cache (sq_attn_args.kv_type, sq_kv_pool.type). F16 and BF16 halve the
 * bytes attention reads per position; values are rounded to nearest even when stored and
 * widened exactly when read, so attention over them equals F32 attention over the rounded
 * values bit for bit. */
typedef enum sq_kv_type { SQ_KV_F32 = 0, SQ_KV_F16 = 1, SQ_KV_BF16 = 2 } sq_kv_type;
enum { SQ_KV_MAX_HEAD_DIM = 512 }; /* F16/BF16 caches: the widened rows live on the stack */

typedef struct sq_attn_args {
    const void *k_base, *v_base; /* elements of kv_type */
    const int32_t *blocks;
    int block_size;
    int kv_stride; /* elements between positions: n_kv_heads * head_dim */
    int n_heads, n_kv_heads, head_dim;
    int kv_type; /* sq_kv_type; 0 = F32 */
} sq_attn_args;

void sq_attention_head(const sq_attn_args *a, const float *q, int head, int start, int n_pos, float *scratch,
                       float *out);

#endif
