/* kernels — every hot loop of a Llama-family transformer, forward and backward, on plain
 * float rows: the tensor layer, below the model. It includes nothing from a higher layer.
 *
 * One file per family in src/kernels/: gemm.c (the one GEMM entry point) with its backends
 * (matmul*.c ours, OpenBLAS), rmsnorm.c, rope.c, swiglu.c, attention.c, linear.c,
 * softmax_xent.c, rows.c (adds, dtype conversion, embedding rows), quant*.c (GGUF blocks).
 * The engine calls the row-at-a-time forms (sq_rmsnorm, sq_rope_apply, sq_swiglu,
 * sq_attention_head); training calls the batch forms that save what backward needs
 * (sq_*_forward) and their sq_*_backward. Where both forms of one op exist their results
 * differ in the last bits, and each file says why it keeps two.
 *
 * Every function here works on caller-owned memory and allocates nothing, except the AVX2
 * GEMM's per-thread panel scratch (owned by an sq_matmul_ctx, freed by sq_matmul_ctx_free; the
 * plain sq_matmul_bf16 without a context allocates that scratch per call). Activations are
 * float rows, row-major; weights are sq_views (F32, BF16 or GGUF blocks, [out, in] as HF
 * stores a Linear). Functions split their work over the process's OpenMP pool where the work
 * is large enough; results do not depend on the thread count, and the engine's matmuls give
 * bit-identical rows whatever the batch size.
 * Backward kernels accumulate (+=) into parameter gradients unless said otherwise.
 */
#ifndef SCALEQUEST_KERNELS_H
#define SCALEQUEST_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "scalequest/base.h"
#include "scalequest/tensor.h"

/* Loops over fewer elements than this run on one thread: waking the pool costs more. */
#define SQ_PAR_MIN 32768

/* ---- element-wise and row kernels ----------------------------------------------------- */

/* out[r] = x[r] / rms(x[r]) * w, rows of n floats (out may alias x). */
void sq_rmsnorm(float *out, const float *x, const float *w, int rows, int n, float eps);
/* The residual add and the next norm in one pass over the rows: x[r] += t[r], then
 * out[r] = x[r] / rms(x[r]) * w; the same bits as sq_add then sq_rmsnorm. */
void sq_add_rmsnorm(float *out, float *x, const float *t, const float *w, int rows, int n, float eps);
/* sq_swiglu, sq_rmsnorm and sq_add_rmsnorm pick AVX-512, AVX2 or plain C at run time, each
 * with the same bits. Tests narrow the choice: level 0 the widest this CPU has, 1 at most
 * AVX2, 2 plain C. Returns what now runs: "avx512", "avx2" or "c". */
const char *sq_rows_isa_force(int level);
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

/* ---- GEMM: one entry point, its backends chosen in gemm.c ------------------------------- */

typedef struct sq_matmul_ctx sq_matmul_ctx;

/* C[M, N] = alpha op(A)[M, K] op(B)[K, N] + beta C, row-major, op a transpose where ta/tb.
 * A and C are F32. The backend follows from B:
 *  - B, F32 (training): OpenBLAS sgemm, one thread per call, large products split over the
 *    OpenMP pool by sq_gemm; inside a parallel region the product runs on the calling thread.
 *  - W, a weight view [N, K] (F32, BF16 or a GGUF block type; the engine): our kernels,
 *    C = A W^T + bias with A and C dense (lda K, ldc N), alpha 1, beta 0; each row of C is
 *    bit-identical whatever M (see sq_matmul below). ctx holds their scratch. */
typedef struct sq_gemm_desc {
    int ta, tb, M, N, K;
    float alpha, beta;
    const float *A;
    int lda;
    const float *B;
    int ldb;
    const sq_view *W;
    const float *bias; /* [N] or NULL; with W only */
    float *C;
    int ldc;
    sq_matmul_ctx *ctx; /* with W only */
} sq_gemm_desc;

int sq_gemm(const sq_gemm_desc *d, sq_err *e);
/* Put OpenBLAS in one-thread mode, so the OpenMP pool is the process's only one (sq_gemm does
 * this itself; a caller that runs F32 GEMMs inside its own OpenMP regions needs it first). */
void sq_gemm_one_pool(void);
/* The name of the kernel set OpenBLAS runs (after sq_gemm's own choice where its dispatcher
 * did not know the CPU; see gemm.c), for benchmarks and logs. */
const char *sq_gemm_blas_core(void);

/* The F32 form, as BLAS spells it (cannot fail). */
static inline void sq_gemm_f32(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                               const float *B, int ldb, float beta, float *C, int ldc) {
    sq_gemm_desc d = {ta, tb, M, N, K, alpha, beta, A, lda, B, ldb, NULL, NULL, C, ldc, NULL};
    sq_gemm(&d, NULL);
}

/* ---- our backend: matmuls of a weight view ------------------------------------------------ */

/* y[rows, out] = x[rows, in] @ W^T (+ bias), W an [out, in] view (F32, BF16, F16 or quantized).
 *  - F32 weights: on AVX2+FMA CPUs the same GEMV (1-3 rows) and GEMM (4+ rows) as BF16/F16
 *    below, the weight rows read in place (no widening), same order, so bit-identical at any
 *    batch size; elsewhere a C kernel four weight rows per pass, each output row depending
 *    on its input row only.
 *  - BF16 and F16 weights: our kernels, x kept in float and the weights widened to F32
 *    (exactly), at every row count. On AVX2+FMA CPUs (AVX-512 ones included) a prefetching GEMV for 1-3 rows
 *    and a register-blocked GEMM over weight panels widened to F32 for 4+ rows; both sum
 *    in the same order, so these rows too are bit-identical at any batch size.
 *    AVX512-BF16's vdpbf16ps and oneDNN's BF16 matmul are not used: both round x to bf16
 *    (8 bits of mantissa), and oneDNN chooses its kernel and blocking per shape (rows
 *    included) with no promise of a summation order, so a row's result would depend on the
 *    batch it is in.
 * The context holds the GEMM's per-thread scratch (no allocation in steady state). One
 * context per thread of callers. */
int sq_matmul_ctx_new(sq_matmul_ctx **c, sq_err *e);
void sq_matmul_ctx_free(sq_matmul_ctx *c);
/* Our backend's own entry (what sq_gemm runs for a weight view); it links without BLAS. */
int sq_matmul(sq_matmul_ctx *c, float *y, const float *x, int rows, const sq_view *w, const float *bias,
              sq_err *e);
/* y = x W^T + bias through sq_gemm: what the engine calls. */
static inline int sq_gemm_weight(sq_matmul_ctx *c, float *y, const float *x, int rows, const sq_view *w,
                                 const float *bias, sq_err *e) {
    if (w->ndim != 2) return sq_fail(e, SQ_EINVAL, "matmul: weight has %d dims, expected 2", w->ndim);
    int out = (int)w->shape[0], in = (int)w->shape[1];
    sq_gemm_desc d = {0, 1, rows, out, in, 1.0f, 0.0f, x, in, NULL, 0, w, bias, y, out, c};
    return sq_gemm(&d, e);
}
/* Several matmuls of one x (q/k/v, gate/up): weights w[k] of equal `in`, outputs y[k],
 * bias[k] (entries may be NULL). The results are those of n sq_matmul calls; with BF16
 * weights on AVX2 CPUs all n run in one parallel region (one fork/join instead of n). */
int sq_matmul_n(sq_matmul_ctx *c, int n, float *const y[], const float *x, int rows, const sq_view *const w[],
                const float *const bias[], sq_err *e);
/* For a caller's own parallel region: outputs [o0, o1) of y[rows, out] = x @ W^T + bias,
 * computed by the calling thread alone with the same per-output order as sq_matmul's
 * small-batch path (so the rows are bit-identical to it). Meant for 1-3 rows;
 * sq_matmul_part_ok says whether a weight can go this way and through sq_matmul_range (F32,
 * BF16, F16 or a quantized type whose rows are whole blocks, 2-D). */
int sq_matmul_part_ok(const sq_view *w);
void sq_matmul_part(float *y, const float *x, int rows, const sq_view *w, const float *bias, int o0, int o1);
/* The same for any row count, for a step that runs as one parallel region (the engine's
 * forward step): threads compute column ranges of each matmul and wait for a matmul's
 * columns to be complete before a dependent one. Every output is the same dot product, in the
 * same order, as sq_matmul's (the GEMV at 1-3 rows, the panel GEMM at 4+), so the results
 * are bit-identical to it.
 *  - sq_matmul_ctx_reserve: once, before the region: per-thread scratch for n_threads
 *    threads and weight rows of up to max_in inputs (the quantized panels); fails if the
 *    context was made for fewer threads.
 *  - sq_matmul_grain: outputs come in groups of this many for `rows` rows (a range must start
 *    at a multiple of it and end at one or at the last output).
 *  - sq_matmul_range: outputs [o0, o1) on the calling thread, OpenMP thread t (its scratch). */
int sq_matmul_ctx_reserve(sq_matmul_ctx *c, int n_threads, int max_in, sq_err *e);
int sq_matmul_grain(const sq_view *w, int rows);
void sq_matmul_range(sq_matmul_ctx *c, int t, float *y, const float *x, int rows, const sq_view *w,
                     const float *bias, int o0, int o1);
/* The same for quantized weights on 8-bit activations whose x rows the step rounded once
 * (quant.h's sq_quant_xrows): no rounding per call. */
struct sq_quant_xrows;
void sq_matmul_range_q8(sq_matmul_ctx *c, int t, float *y, const struct sq_quant_xrows *xq, int rows, const sq_view *w,
                        const float *bias, int o0, int o1);
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
/* SQ_KV_AUTO is for options only (sq_engine_opts, sq_backend_opts, --kv-type auto): the model
 * picks one of the three (sq_kv_type_auto in model.h); a pool or sq_attn_args never holds it. */
typedef enum sq_kv_type { SQ_KV_F32 = 0, SQ_KV_F16 = 1, SQ_KV_BF16 = 2, SQ_KV_AUTO = 3 } sq_kv_type;
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

/* Batched attention of one forward step: every token of the step, every head, in work units
 * that share their loads. A unit is (chunk of tokens, kv head): it computes all n_heads /
 * n_kv_heads query heads of that kv head for every token of the chunk, reading each cached
 * K and V row once for all of them (16-bit rows widened once). A chunk holds tokens whose
 * block tables start with the same physical block: the n samples of one prompt (their
 * shared prompt blocks are read once per step for all of them, then each reads its own
 * tail) or a run of tokens of one sequence in a prefill (a tile of query rows against a
 * tile of key rows, the causal limit per row; scores are kept per chunk row, never T x T).
 * Each (token, head) is computed with the dot products, max, exp/sum and value sums of
 * sq_attention_head in the same order, so the output is bit-identical to calling it per
 * (token, head), whatever the batch, chunking or thread split.
 *
 * Use: sq_attention_plan once per step (the grouping does not depend on the layer) into
 * caller memory of sq_attention_plan_ints(max_tokens) int32s; per layer fill an
 * sq_attn_batch (k_base/v_base of the layer) and run units [0, sq_attention_work_count)
 * in any split over threads, each thread with its own scratch of
 * sq_attention_scratch_floats(...) floats. Units are numbered kv-head-major: units
 * [g * n_chunks, (g + 1) * n_chunks) are kv head g's, so a thread that owns kv heads
 * [g0, g1) runs [g0 * n_chunks, g1 * n_chunks). Units write disjoint parts of out. */
typedef struct sq_attn_plan {
    int n_tokens, n_chunks;
    int32_t *tok;    /* [n_tokens]: the step's tokens, chunk by chunk */
    int32_t *first;  /* [n_chunks + 1]: chunk c is tok[first[c] .. first[c + 1]) */
    int32_t *shared; /* [n_chunks]: positions [0, shared[c]) sit in the same physical blocks
                        for every token of chunk c (read once for all of them) */
} sq_attn_plan;

typedef struct sq_attn_batch {
    sq_attn_args a;                /* a.blocks unused: each token has its own table */
    const sq_attn_plan *plan;
    const float *q;                /* [n_tokens, n_heads * head_dim], rotated */
    float *out;                    /* [n_tokens, n_heads * head_dim] */
    const int32_t *pos;            /* token t attends positions [start, pos[t] + 1) */
    const int32_t *const *blocks;  /* token t's block table */
    int sliding_window;            /* > 0: start = pos + 1 - window when positive */
    int max_ctx;                   /* every pos[t] < max_ctx (sizes the scratch rows) */
} sq_attn_batch;

/* int32s of plan memory for steps of up to max_tokens tokens. */
size_t sq_attention_plan_ints(int max_tokens);
/* Group the step's tokens into chunks (see above); mem holds sq_attention_plan_ints(n)
 * int32s and backs p's arrays. */
void sq_attention_plan(sq_attn_plan *p, int32_t *mem, int n_tokens, const int32_t *pos,
                       const int32_t *const *blocks, int block_size, int n_heads, int n_kv_heads);
/* Floats of per-thread scratch sq_attention_run needs at context max_ctx. */
size_t sq_attention_scratch_floats(int max_ctx, int n_heads, int n_kv_heads, int head_dim);
int sq_attention_work_count(const sq_attn_batch *b);
/* Units [w0, w1) of the batch, on the calling thread. */
void sq_attention_run(const sq_attn_batch *b, int w0, int w1, float *scratch);

/* ---- training: batch forms that save what backward needs, and their backward ------------ *
 * A batch is B rows of T tokens, N = B*T; packed examples are described by pos (position ids)
 * and seg_start (where each token's example starts within its row), as in train.h. */

/* y = x * rstd * w over N rows of C; rstd[N] saved. dx += ..., dw += ... */
void sq_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int N, int C, float eps);
void sq_rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *w,
                         const float *rstd, int N, int C);
/* HF rotate-half RoPE on N rows (ld floats apart) of nh heads of hd, in place, with tables
 * cos_t/sin_t [max_pos, hd/2] indexed by pos. Backward turns d(rotated) into d(input). */
void sq_rope_forward(float *x, int ld, const int32_t *pos, const float *cos_t, const float *sin_t, int N, int nh,
                     int hd);
void sq_rope_backward(float *d, int ld, const int32_t *pos, const float *cos_t, const float *sin_t, int N,
                      int nh, int hd);
/* h = silu(g) * u, with g and u side by side in each row of gu [N, 2F] (gate then up).
 * dgu (same layout) is written, not accumulated. */
void sq_swiglu_forward(float *h, const float *gu, int N, int F);
void sq_swiglu_backward(float *dgu, const float *dh, const float *gu, int N, int F);
/* y = x W^T + b with x [N, in], W [out, in], y rows ldo apart; the residual form writes
 * out = res + x W^T. Backward, dy rows ldy apart: dx (+= when accumulate), dW +=, db += (when b). */
void sq_linear_forward(float *out, int ldo, const float *x, const float *W, const float *b, int N, int in,
                       int out_dim);
void sq_linear_residual_forward(float *out, const float *res, const float *x, const float *W, int N, int in,
                                int out_dim);
void sq_linear_backward(float *dx, float *dW, float *db, const float *dy, int ldy, const float *x,
                        const float *W, int N, int in, int out, int accumulate_dx);
/* Causal attention with GQA and packing. q, k, v (and dq, dk, dv) are rows ld floats apart
 * (the fused q|k|v projection); out and dout are [N, H*hd]. att [B, H, T, T] holds the
 * probabilities, per block of sq_attention_block(T) rows only the columns from the block's
 * earliest example start (sq_attention_block_start) to its last row. Backward writes dq, dk,
 * dv; scratch holds B * KV * sq_attention_block(T) * T floats. */
void sq_attention_forward(float *out, float *att, const float *q, const float *k, const float *v, int ld,
                          const int32_t *seg_start, int B, int T, int H, int KV, int hd);
void sq_attention_backward(float *dq, float *dk, float *dv, int ld, const float *dout, const float *q,
                           const float *k, const float *v, const float *att, const int32_t *seg_start,
                           int B, int T, int H, int KV, int hd, float *scratch);
int sq_attention_block(int T);
int sq_attention_block_start(const int32_t *seg, int r0, int r1);
/* The LM head's cross-entropy. Forward, in place on logits [N, V]: probs = exp(logit - max)
 * (the softmax before its 1/sum), pinv[i] = 1/sum, logp[i] = log softmax at targets[i] where
 * targets[i] >= 0 (logp untouched elsewhere; targets may be NULL). Backward of the head
 * logits = hidden W^T [V, C] and that loss, given dlogp[N]: dhidden written, dW +=; hs is
 * [N, C] scratch. */
void sq_xent_forward(float *probs, float *pinv, float *logp, const int32_t *targets, int N, int V);
void sq_xent_backward(float *dhidden, float *dW, float *hs, const float *probs, const float *pinv,
                      const float *hidden, const float *W, const int32_t *targets, const float *dlogp, int N, int C,
                      int V);

#endif
