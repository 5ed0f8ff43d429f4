/* Our GEMM backend (sq_gemm with a weight view, gemm.c): y = x @ W^T for the Linear layers,
 * F32, BF16, F16 and GGUF block weights (AVX-512 / AVX2 / C).
 * Every row count goes through kernels that sum each output in one fixed order, so a row's
 * result never depends on the batch it is in. See kernels.h for which path runs when. */
#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "matmul_avx2.h"
#include "scalequest/kernels.h"
#include "scalequest/quant.h"
#include "simd.h"

struct sq_matmul_ctx {
    void *scratch; /* per-thread GEMM scratch of the AVX2 kernels */
    int n_scratch;
    float *qpanel; /* per-thread dequantized weight panels (quantized weights, 4+ rows) */
    size_t qpanel_cap;
    void *q8; /* 8-bit activation rows (quantized weights, sq_quant_act_get() == SQ_ACT_Q8) */
    size_t q8_cap;
};

int sq_matmul_ctx_new(sq_matmul_ctx **out, sq_err *e) {
    sq_matmul_ctx *c = calloc(1, sizeof *c);
    if (!c) return sq_fail(e, SQ_ENOMEM, "matmul context: out of memory");
#if defined(SQ_HAVE_MM_AVX2)
    c->n_scratch = omp_get_max_threads();
    c->scratch = sq_malloc_aligned(sq_mm_avx2_scratch_bytes() * (size_t)c->n_scratch);
    if (!c->scratch) {
        int n = c->n_scratch;
        free(c);
        return sq_fail(e, SQ_ENOMEM, "matmul context: out of memory for %d threads' scratch", n);
    }
#endif
    *out = c;
    return 0;
}

void sq_matmul_ctx_free(sq_matmul_ctx *c) {
    if (!c) return;
    free(c->scratch);
    free(c->qpanel);
    free(c->q8);
    free(c);
}

/* ---- F32 weights ------------------------------------------------------------------------ */

/* Four dot products of one x row against four W rows, sharing the x loads: the F32 kernel of
 * CPUs without AVX2+FMA+F16C (the others run matmul_avx2.c's GEMV and GEMM on F32 rows, whose
 * summation order differs from this one). */
static void dot4_f32(const float *x, const float *const w[4], int n, float out[4]) {
    int i = 0;
    float s[4] = {0, 0, 0, 0};
#if defined(__AVX512F__)
    __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (; i + 16 <= n; i += 16) {
        __m512 xv = _mm512_loadu_ps(x + i);
        for (int k = 0; k < 4; k++) a[k] = _mm512_fmadd_ps(xv, _mm512_loadu_ps(w[k] + i), a[k]);
    }
    for (int k = 0; k < 4; k++) s[k] = _mm512_reduce_add_ps(a[k]);
#elif defined(__AVX2__) && defined(__FMA__)
    __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (; i + 8 <= n; i += 8) {
        __m256 xv = _mm256_loadu_ps(x + i);
        for (int k = 0; k < 4; k++) a[k] = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w[k] + i), a[k]);
    }
    for (int k = 0; k < 4; k++) s[k] = sq__hsum256(a[k]);
#endif
    for (; i < n; i++)
        for (int k = 0; k < 4; k++) s[k] += x[i] * w[k][i];
    for (int k = 0; k < 4; k++) out[k] = s[k];
}

static void matmul_16(float *y, const float *x, int rows, const uint16_t *w, int f16, int in, int out, const float *bias,
                      void *scratch, int n_scratch);

void sq_matmul_f32(float *y, const float *x, int rows, const float *w, int in, int out, const float *bias) {
#if defined(SQ_HAVE_MM_AVX2)
    matmul_16(y, x, rows, (const void *)w, SQ_MM_F32, in, out, bias, NULL, 0);
#else
    sq__matmul_f32_dot4(y, x, rows, w, in, out, bias);
#endif
}

void sq__matmul_f32_dot4(float *y, const float *x, int rows, const float *w, int in, int out, const float *bias) {
    int nblk = (out + 3) / 4;
#pragma omp parallel for schedule(static) if ((int64_t)rows * in * out > (1 << 22))
    for (int b = 0; b < nblk; b++) {
        int o = b * 4;
        const float *wr[4];
        for (int k = 0; k < 4; k++) wr[k] = w + (size_t)(o + k < out ? o + k : o) * in;
        for (int r = 0; r < rows; r++) {
            float d[4];
            dot4_f32(x + (size_t)r * in, wr, in, d);
            for (int k = 0; k < 4 && o + k < out; k++) y[(size_t)r * out + o + k] = d[k] + (bias ? bias[o + k] : 0);
        }
    }
}

/* ---- BF16 and F16 weights ---------------------------------------------------------------- */

/* The weights are widened to floats (exactly) and x stays in float (the C / pre-AVX2
 * fallback and sq_matmul_part's blocks; AVX2+FMA+F16C CPUs use matmul_avx2.c, which keeps
 * this order). */
static void dot4_16(const float *x, const uint16_t *const w[4], int n, float out[4], int f16) {
    int i = 0;
    float s[4] = {0, 0, 0, 0};
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
    __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (; i + 8 <= n; i += 8) {
        __m256 xv = _mm256_loadu_ps(x + i);
        for (int k = 0; k < 4; k++)
            a[k] = _mm256_fmadd_ps(xv, f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w[k] + i))) : sq__load_bf16x8(w[k] + i),
                                   a[k]);
    }
    for (int k = 0; k < 4; k++) s[k] = sq__hsum256(a[k]);
#endif
    for (; i < n; i++)
        for (int k = 0; k < 4; k++) s[k] += x[i] * (f16 ? sq_f16_to_f32(w[k][i]) : sq_bf16_to_f32(w[k][i]));
    for (int k = 0; k < 4; k++) out[k] = s[k];
}

/* f16: 0 BF16, 1 F16 (SQ_MM_F32: F32, only with the AVX2 kernels; w then points to floats). */
static void matmul_16(float *y, const float *x, int rows, const uint16_t *w, int f16, int in, int out, const float *bias,
                      void *scratch, int n_scratch) {
#if defined(SQ_HAVE_MM_AVX2)
    sq_mm_job j = {y, w, bias, out, f16 == SQ_MM_F16, f16 == SQ_MM_F32};
    if (rows >= 4)
        sq_mm_avx2_gemm(&j, 1, x, rows, in, scratch, n_scratch);
    else
        sq_mm_avx2_gemv(&j, 1, x, rows, in);
    return;
#endif
    (void)scratch;
    (void)n_scratch;
    int nblk = (out + 3) / 4;
#pragma omp parallel for schedule(static) if ((int64_t)rows * in * out > (1 << 22))
    for (int b = 0; b < nblk; b++) {
        int o = b * 4;
        const uint16_t *wr[4];
        for (int k = 0; k < 4; k++) wr[k] = w + (size_t)(o + k < out ? o + k : o) * in;
        for (int r = 0; r < rows; r++) {
            float d[4];
            dot4_16(x + (size_t)r * in, wr, in, d, f16);
            for (int k = 0; k < 4 && o + k < out; k++) y[(size_t)r * out + o + k] = d[k] + (bias ? bias[o + k] : 0);
        }
    }
}

void sq_matmul_bf16(float *y, const float *x, const uint16_t *xb, int rows, const uint16_t *w, int in, int out,
                    const float *bias) {
    (void)xb;
    matmul_16(y, x, rows, w, 0, in, out, bias, NULL, 0);
}

int sq_matmul_bf16_needs_xb(void) { return 0; }

/* ---- quantized weights (GGUF blocks, read in place) ---------------------------------------- */

enum { QPANEL = 8 }; /* weight rows dequantized at a time on the batched path */

static size_t quant_row_bytes(const sq_view *w) {
    size_t bb;
    int per = sq_dtype_block(w->dtype, &bb);
    return per ? (size_t)(w->shape[1] / per) * bb : 0;
}

/* Outputs [o0, o1) of 4+ rows through `pan` (QPANEL x in floats): QPANEL weight rows
 * dequantized at a time, each dotted with every x row. */
static void quant_panels(float *pan, float *y, const float *x, int rows, const sq_view *w, const float *bias, int o0,
                         int o1) {
    int out = (int)w->shape[0], in = (int)w->shape[1];
    size_t rb = quant_row_bytes(w);
    for (int p = o0; p < o1; p += QPANEL) {
        int n = SQ_MIN(QPANEL, o1 - p);
        for (int k = 0; k < n; k++)
            sq_dequant_row(pan + (size_t)k * in, (const uint8_t *)w->data + (size_t)(p + k) * rb, w->dtype, in);
        sq_quant_panel_dot(y + p, out, pan, n, x, rows, in, bias ? bias + p : NULL);
    }
}

static int reserve_qpanel(sq_matmul_ctx *c, int n_threads, int in, sq_err *e) {
    size_t need = (size_t)n_threads * QPANEL * (size_t)in;
    if (need <= c->qpanel_cap) return 0;
    float *np = sq_malloc_aligned(need * sizeof *np);
    if (!np) return sq_fail(e, SQ_ENOMEM, "matmul: out of memory for %d threads' weight panels", n_threads);
    free(c->qpanel);
    c->qpanel = np;
    c->qpanel_cap = need;
    return 0;
}

/* 1-3 rows: the fused dequantize-and-dot, each weight byte read once per row (the weights
 * stream from memory once; x stays in L1). 4+ rows: each thread dequantizes QPANEL weight
 * rows into its panel once and dots every x row with them, so the unpacking cost is paid
 * once per weight, not once per weight and row. Both give the same bits (quant.h). */
static int matmul_quant(sq_matmul_ctx *c, float *y, const float *x, int rows, const sq_view *w, const float *bias,
                        sq_err *e) {
    if (sq_quant_act_get() == SQ_ACT_Q8) return sq_quant_matmul(&c->q8, &c->q8_cap, y, x, rows, w, bias, e);
    int out = (int)w->shape[0], in = (int)w->shape[1];
    size_t bb;
    int per = sq_dtype_block(w->dtype, &bb);
    if (!per || in % per)
        return sq_fail(e, SQ_EINVAL, "matmul: %s weight row of %d values is not a whole number of %d-value blocks",
                       sq_dtype_name(w->dtype), in, per);
    size_t rb = quant_row_bytes(w);
    const uint8_t *wd = w->data;
    sq_dtype t = w->dtype;
    if (rows < 4) {
#pragma omp parallel for schedule(static) if ((int64_t)rows * in * out > (1 << 16))
        for (int o = 0; o < out; o++)
            for (int r = 0; r < rows; r++)
                y[(size_t)r * out + o] = sq_quant_dot(wd + (size_t)o * rb, t, x + (size_t)r * in, in) + (bias ? bias[o] : 0);
        return 0;
    }
    int nt = omp_get_max_threads(), rc = reserve_qpanel(c, nt, in, e);
    if (rc) return rc;
    int npan = (out + QPANEL - 1) / QPANEL;
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int p = 0; p < npan; p++)
        quant_panels(c->qpanel + (size_t)omp_get_thread_num() * QPANEL * in, y, x, rows, w, bias, p * QPANEL,
                     SQ_MIN(out, (p + 1) * QPANEL));
    return 0;
}

int sq_matmul(sq_matmul_ctx *c, float *y, const float *x, int rows, const sq_view *w, const float *bias,
              sq_err *e) {
    if (w->ndim != 2) return sq_fail(e, SQ_EINVAL, "matmul: weight has %d dims, expected 2", w->ndim);
    int out = (int)w->shape[0], in = (int)w->shape[1];
    if (sq_dtype_is_quant(w->dtype)) return matmul_quant(c, y, x, rows, w, bias, e);
    if (w->dtype == SQ_F32) {
#if defined(SQ_HAVE_MM_AVX2)
        matmul_16(y, x, rows, w->data, SQ_MM_F32, in, out, bias, c->scratch, c->n_scratch);
#else
        sq_matmul_f32(y, x, rows, (const float *)w->data, in, out, bias);
#endif
        return 0;
    }
    if (w->dtype != SQ_BF16 && w->dtype != SQ_F16)
        return sq_fail(e, SQ_EUNSUP, "matmul: weight dtype %s (F32, BF16, F16 or a GGUF quantized type expected)",
                       sq_dtype_name(w->dtype));
    matmul_16(y, x, rows, (const uint16_t *)w->data, w->dtype == SQ_F16, in, out, bias, c->scratch, c->n_scratch);
    return 0;
}

int sq_matmul_n(sq_matmul_ctx *c, int n, float *const y[], const float *x, int rows, const sq_view *const w[],
                const float *const bias[], sq_err *e) {
#if defined(SQ_HAVE_MM_AVX2)
    sq_mm_job j[8];
    int fuse = n >= 1 && n <= 8;
    for (int k = 0; fuse && k < n; k++)
        fuse = w[k]->ndim == 2 && (w[k]->dtype == SQ_BF16 || w[k]->dtype == SQ_F16 || w[k]->dtype == SQ_F32) &&
               w[k]->shape[1] == w[0]->shape[1];
    if (fuse) {
        for (int k = 0; k < n; k++)
            j[k] = (sq_mm_job){y[k], w[k]->data, bias[k], (int)w[k]->shape[0], w[k]->dtype == SQ_F16, w[k]->dtype == SQ_F32};
        if (rows >= 4)
            sq_mm_avx2_gemm(j, n, x, rows, (int)w[0]->shape[1], c->scratch, c->n_scratch);
        else
            sq_mm_avx2_gemv(j, n, x, rows, (int)w[0]->shape[1]);
        return 0;
    }
#endif
    int q8 = n >= 1;
    for (int k = 0; q8 && k < n; k++) q8 = sq_dtype_is_quant(w[k]->dtype) && sq_quant_act_get() == SQ_ACT_Q8;
    if (q8) return sq_quant_matmul_n(&c->q8, &c->q8_cap, n, y, x, rows, w, bias, e); /* x rounded once */
    for (int k = 0; k < n; k++) {
        int rc = sq_matmul(c, y[k], x, rows, w[k], bias[k], e);
        if (rc) return rc;
    }
    return 0;
}

/* ---- one thread's share, inside the caller's parallel region ----------------------------- */

#if defined(SQ_HAVE_MM_AVX2)
#define SQ_HAVE_MM_AVX2_F32 1
static int mm_wt(const sq_view *w) { return w->dtype == SQ_F32 ? SQ_MM_F32 : w->dtype == SQ_F16 ? SQ_MM_F16 : SQ_MM_BF16; }
#else
#define SQ_HAVE_MM_AVX2_F32 0
#endif

int sq_matmul_part_ok(const sq_view *w) {
    if (w->ndim != 2) return 0;
    if (w->dtype == SQ_F32) return 1;
    if (sq_dtype_is_quant(w->dtype)) return sq_dtype_block(w->dtype, NULL) > 0 && w->shape[1] % sq_dtype_block(w->dtype, NULL) == 0;
    return w->dtype == SQ_BF16 || w->dtype == SQ_F16;
}

void sq_matmul_part(float *y, const float *x, int rows, const sq_view *w, const float *bias, int o0, int o1) {
    int out = (int)w->shape[0], in = (int)w->shape[1];
    o1 = SQ_MIN(o1, out);
    if (sq_dtype_is_quant(w->dtype) && sq_quant_act_get() == SQ_ACT_Q8) {
        sq_quant_matmul_part(y, x, rows, w, bias, o0, o1);
        return;
    }
    if (sq_dtype_is_quant(w->dtype)) { /* the fused dot: the same bits as sq_matmul's */
        size_t rb = quant_row_bytes(w);
        for (int o = o0; o < o1; o++)
            for (int r = 0; r < rows; r++)
                y[(size_t)r * out + o] = sq_quant_dot((const uint8_t *)w->data + (size_t)o * rb, w->dtype,
                                                      x + (size_t)r * in, in) + (bias ? bias[o] : 0);
        return;
    }
#if defined(SQ_HAVE_MM_AVX2)
    if (w->dtype == SQ_BF16 || w->dtype == SQ_F16 || w->dtype == SQ_F32) {
        sq_mm_avx2_gemv_part(y, x, rows, w->data, mm_wt(w), in, out, bias, o0, o1);
        return;
    }
#endif
    /* The blocks of four of the whole-matrix kernels above, started at o0: each output is
     * the same dot product (the same order) whichever block holds it. */
    for (int o = o0; o < o1; o += 4) {
        for (int r = 0; r < rows; r++) {
            float d[4];
            const float *xr = x + (size_t)r * in;
            if (w->dtype == SQ_F32) {
                const float *wr[4];
                for (int k = 0; k < 4; k++) wr[k] = (const float *)w->data + (size_t)SQ_MIN(o + k, out - 1) * in;
                dot4_f32(xr, wr, in, d);
            } else {
                const uint16_t *wr[4];
                for (int k = 0; k < 4; k++) wr[k] = (const uint16_t *)w->data + (size_t)SQ_MIN(o + k, out - 1) * in;
                dot4_16(xr, wr, in, d, w->dtype == SQ_F16);
            }
            for (int k = 0; k < 4 && o + k < o1; k++) y[(size_t)r * out + o + k] = d[k] + (bias ? bias[o + k] : 0);
        }
    }
}

/* ---- shares of a step's matmuls, inside the caller's one parallel region ----------------- */

int sq_matmul_ctx_reserve(sq_matmul_ctx *c, int n_threads, int max_in, sq_err *e) {
#if defined(SQ_HAVE_MM_AVX2)
    if (n_threads > c->n_scratch)
        return sq_fail(e, SQ_EINVAL, "matmul context: %d threads' scratch, %d asked for", c->n_scratch, n_threads);
#endif
    return reserve_qpanel(c, n_threads, max_in, e);
}

int sq_matmul_grain(const sq_view *w, int rows) {
    if (rows < 4) return 4;
    if (sq_dtype_is_quant(w->dtype)) return QPANEL;
#if defined(SQ_HAVE_MM_AVX2)
    if (w->dtype == SQ_BF16 || w->dtype == SQ_F16 || w->dtype == SQ_F32) return sq_mm_avx2_gemm_grain();
#endif
    return 4;
}

void sq_matmul_range(sq_matmul_ctx *c, int t, float *y, const float *x, int rows, const sq_view *w,
                     const float *bias, int o0, int o1) {
    int out = (int)w->shape[0], in = (int)w->shape[1];
    o1 = SQ_MIN(o1, out);
    if (o0 >= o1) return;
    if (rows < 4 || (w->dtype == SQ_F32 && !SQ_HAVE_MM_AVX2_F32)) { /* the GEMV / the F32 kernel: sq_matmul's own code */
        sq_matmul_part(y, x, rows, w, bias, o0, o1);
        return;
    }
    if (sq_dtype_is_quant(w->dtype) && sq_quant_act_get() == SQ_ACT_Q8) {
        /* 8-bit activations: sq_quant_matmul_part, documented for 1-3 rows (it rounds them on
         * its stack), in groups of 3 rows; each row's dots are those of sq_quant_matmul. */
        for (int r = 0; r < rows; r += 3)
            sq_quant_matmul_part(y + (size_t)r * out, x + (size_t)r * in, SQ_MIN(3, rows - r), w, bias, o0, o1);
        return;
    }
    if (sq_dtype_is_quant(w->dtype)) {
        /* sq_matmul_ctx_reserve sized the panels for this thread */
        quant_panels(c->qpanel + (size_t)t * QPANEL * in, y, x, rows, w, bias, o0, o1);
        return;
    }
#if defined(SQ_HAVE_MM_AVX2)
    void *sc = c->scratch && t < c->n_scratch ? (char *)c->scratch + (size_t)t * sq_mm_avx2_scratch_bytes() : NULL;
    sq_mm_avx2_gemm_range(y, x, rows, w->data, mm_wt(w), in, out, bias, o0, o1, sc);
#else
    sq_matmul_part(y, x, rows, w, bias, o0, o1);
#endif
}

void sq_matmul_range_q8(sq_matmul_ctx *c, int t, float *y, const struct sq_quant_xrows *xq, int rows, const sq_view *w,
                        const float *bias, int o0, int o1) {
    /* the tile scratch is this thread's panel: QPANEL * in floats, more than the tile's bytes */
    sq_quant_matmul_range_x(y, xq, rows, w, bias, o0, o1, c->qpanel + (size_t)t * QPANEL * xq->in);
}
