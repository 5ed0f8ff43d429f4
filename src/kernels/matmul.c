/* Matmul y = x @ W^T for the Linear layers: our F32 and BF16 kernels (AVX-512 / AVX2 / C).
 * Every row count goes through kernels that sum each output in one fixed order, so a row's
 * result never depends on the batch it is in. See kernels.h for which path runs when. */
#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "matmul_avx2.h"
#include "scalequest/kernels.h"
#include "simd.h"

struct sq_matmul_ctx {
    void *scratch; /* per-thread GEMM scratch of the AVX2 kernels */
    int n_scratch;
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
    free(c);
}

/* ---- F32 weights ------------------------------------------------------------------------ */

/* Four dot products of one x row against four W rows, sharing the x loads. */
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

void sq_matmul_f32(float *y, const float *x, int rows, const float *w, int in, int out, const float *bias) {
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

/* ---- BF16 weights ----------------------------------------------------------------------- */

/* The weights are widened to floats and x stays in float (the C / pre-AVX2 fallback and
 * sq_matmul_part's blocks; AVX2+FMA CPUs use matmul_avx2.c, which keeps this order). */
static void dot4_bf16(const float *x, const uint16_t *xb, const uint16_t *const w[4], int n, float out[4]) {
    (void)xb;
    int i = 0;
    float s[4] = {0, 0, 0, 0};
#if defined(__AVX2__) && defined(__FMA__)
    __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (; i + 8 <= n; i += 8) {
        __m256 xv = _mm256_loadu_ps(x + i);
        for (int k = 0; k < 4; k++) a[k] = _mm256_fmadd_ps(xv, sq__load_bf16x8(w[k] + i), a[k]);
    }
    for (int k = 0; k < 4; k++) s[k] = sq__hsum256(a[k]);
#endif
    for (; i < n; i++)
        for (int k = 0; k < 4; k++) s[k] += x[i] * sq_bf16_to_f32(w[k][i]);
    for (int k = 0; k < 4; k++) out[k] = s[k];
}

static void matmul_bf16(float *y, const float *x, const uint16_t *xb, int rows, const uint16_t *w, int in, int out,
                        const float *bias, void *scratch, int n_scratch) {
#if defined(SQ_HAVE_MM_AVX2)
    (void)xb;
    sq_mm_job j = {y, w, bias, out};
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
            dot4_bf16(x + (size_t)r * in, xb ? xb + (size_t)r * in : NULL, wr, in, d);
            for (int k = 0; k < 4 && o + k < out; k++) y[(size_t)r * out + o + k] = d[k] + (bias ? bias[o + k] : 0);
        }
    }
}

void sq_matmul_bf16(float *y, const float *x, const uint16_t *xb, int rows, const uint16_t *w, int in, int out,
                    const float *bias) {
    matmul_bf16(y, x, xb, rows, w, in, out, bias, NULL, 0);
}

int sq_matmul_bf16_needs_xb(void) { return 0; }

int sq_matmul(sq_matmul_ctx *c, float *y, const float *x, int rows, const sq_view *w, const float *bias,
              sq_err *e) {
    if (w->ndim != 2) return sq_fail(e, SQ_EINVAL, "matmul: weight has %d dims, expected 2", w->ndim);
    int out = (int)w->shape[0], in = (int)w->shape[1];
    if (w->dtype == SQ_F32) {
        sq_matmul_f32(y, x, rows, (const float *)w->data, in, out, bias);
        return 0;
    }
    if (w->dtype != SQ_BF16)
        return sq_fail(e, SQ_EUNSUP, "matmul: weight dtype %s (F32 or BF16 expected)", sq_dtype_name(w->dtype));
    matmul_bf16(y, x, NULL, rows, (const uint16_t *)w->data, in, out, bias, c->scratch, c->n_scratch);
    return 0;
}

int sq_matmul_n(sq_matmul_ctx *c, int n, float *const y[], const float *x, int rows, const sq_view *const w[],
                const float *const bias[], sq_err *e) {
#if defined(SQ_HAVE_MM_AVX2)
    sq_mm_job j[8];
    int fuse = n >= 1 && n <= 8;
    for (int k = 0; fuse && k < n; k++)
        fuse = w[k]->ndim == 2 && w[k]->dtype == SQ_BF16 && w[k]->shape[1] == w[0]->shape[1];
    if (fuse) {
        for (int k = 0; k < n; k++) j[k] = (sq_mm_job){y[k], (const uint16_t *)w[k]->data, bias[k], (int)w[k]->shape[0]};
        if (rows >= 4)
            sq_mm_avx2_gemm(j, n, x, rows, (int)w[0]->shape[1], c->scratch, c->n_scratch);
        else
            sq_mm_avx2_gemv(j, n, x, rows, (int)w[0]->shape[1]);
        return 0;
    }
#endif
    for (int k = 0; k < n; k++) {
        int rc = sq_matmul(c, y[k], x, rows, w[k], bias[k], e);
        if (rc) return rc;
    }
    return 0;
}

/* ---- one thread's share, inside the caller's parallel region ----------------------------- */

int sq_matmul_part_ok(const sq_view *w) {
    if (w->ndim != 2) return 0;
    if (w->dtype == SQ_F32) return 1;
    return w->dtype == SQ_BF16;
}

void sq_matmul_part(float *y, const float *x, int rows, const sq_view *w, const float *bias, int o0, int o1) {
    int out = (int)w->shape[0], in = (int)w->shape[1];
    o1 = SQ_MIN(o1, out);
#if defined(SQ_HAVE_MM_AVX2)
    if (w->dtype == SQ_BF16) {
        sq_mm_avx2_gemv_part(y, x, rows, (const uint16_t *)w->data, in, out, bias, o0, o1);
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
                dot4_bf16(xr, NULL, wr, in, d);
            }
            for (int k = 0; k < 4 && o + k < o1; k++) y[(size_t)r * out + o + k] = d[k] + (bias ? bias[o + k] : 0);
        }
    }
}
