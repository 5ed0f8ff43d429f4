/* RMSNorm, forward and backward: y = w * x * r with r = 1/sqrt(mean(x^2) + eps).
 *
 * Two forwards, on purpose. sq_rmsnorm and sq_add_rmsnorm (the engine) sum x^2 in double in a
 * fixed order that no vector width changes (below), so a row's result does not depend on the
 * machine's ISA; sq_rmsnorm_forward (training) sums in float eight lanes wide and saves r for
 * backward. Merging them would change the bits of one side: the engine's greedy outputs or
 * the trainer's losses, which tests compare across runs.
 *
 * The engine's sum: sixteen double partial sums, value i going to sum i % 16 (each square is
 * exact in double), then folded in halves (s[j] += s[j + 8], then + 4, + 2, + 1). The AVX-512
 * body keeps the sixteen in two 8-lane registers, the AVX2 body in four 4-lane ones, plain C
 * in an array: the same additions in the same order, so the same bits (tests/test_kernels.c
 * checks every body against the others). */
#include <math.h>
#include <omp.h>

#include "scalequest/kernels.h"
#include "simd.h"

static inline float rms_scale(double ss, int n, float eps) { return 1.0f / sqrtf((float)(ss / n) + eps); }

/* Elements i..n-1 into the sixteen partial sums (element i goes to s[i & 15]; x += t first
 * when t is set), then the sums pairwise, s[j] + s[j + 8] first: the one order every body
 * keeps, so they all give the same bits. */
static double sumsq_finish(double s[16], float *x, const float *t, int i, int n) {
    for (; i < n; i++) {
        float v = t ? x[i] + t[i] : x[i];
        if (t) x[i] = v;
        s[i & 15] += (double)v * v;
    }
    for (int w = 8; w; w >>= 1)
        for (int j = 0; j < w; j++) s[j] += s[j + w];
    return s[0];
}

/* y = x + t first (when t is set, in place in x), then the sum of squares of y. */
static double sumsq_c(float *x, const float *t, int n) {
    double s[16] = {0};
    return sumsq_finish(s, x, t, 0, n);
}

static void scale_c(float *o, const float *x, const float *w, int n, float inv) {
    for (int i = 0; i < n; i++) o[i] = (x[i] * inv) * w[i];
}

#if defined(__x86_64__) || defined(__i386__)
#define TGT2 __attribute__((target("avx2,fma")))
#define TGT512 __attribute__((target("avx512f,avx2,fma")))

static TGT2 double sumsq_avx2(float *x, const float *t, int n) {
    __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
        if (t) {
            v0 = _mm256_add_ps(v0, _mm256_loadu_ps(t + i));
            v1 = _mm256_add_ps(v1, _mm256_loadu_ps(t + i + 8));
            _mm256_storeu_ps(x + i, v0);
            _mm256_storeu_ps(x + i + 8, v1);
        }
        __m256d d0 = _mm256_cvtps_pd(_mm256_castps256_ps128(v0)), d1 = _mm256_cvtps_pd(_mm256_extractf128_ps(v0, 1));
        __m256d d2 = _mm256_cvtps_pd(_mm256_castps256_ps128(v1)), d3 = _mm256_cvtps_pd(_mm256_extractf128_ps(v1, 1));
        a0 = _mm256_fmadd_pd(d0, d0, a0); /* the square is exact: fused or not, one rounding */
        a1 = _mm256_fmadd_pd(d1, d1, a1);
        a2 = _mm256_fmadd_pd(d2, d2, a2);
        a3 = _mm256_fmadd_pd(d3, d3, a3);
    }
    double s[16];
    _mm256_storeu_pd(s, a0);
    _mm256_storeu_pd(s + 4, a1);
    _mm256_storeu_pd(s + 8, a2);
    _mm256_storeu_pd(s + 12, a3);
    return sumsq_finish(s, x, t, i, n);
}

static TGT2 void scale_avx2(float *o, const float *x, const float *w, int n, float inv) {
    __m256 vi = _mm256_set1_ps(inv);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vi), _mm256_loadu_ps(w + i)));
    for (; i < n; i++) o[i] = (x[i] * inv) * w[i];
}

static TGT512 double sumsq_avx512(float *x, const float *t, int n) {
    __m512d a0 = _mm512_setzero_pd(), a1 = a0;
    for (int i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(k, x + i); /* missing lanes add +0: no change */
        if (t) {
            v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, t + i));
            _mm512_mask_storeu_ps(x + i, k, v);
        }
        __m512d d0 = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
        __m512d d1 = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
        a0 = _mm512_fmadd_pd(d0, d0, a0);
        a1 = _mm512_fmadd_pd(d1, d1, a1);
    }
    __m512d h8 = _mm512_add_pd(a0, a1);
    __m256d h4 = _mm256_add_pd(_mm512_castpd512_pd256(h8), _mm512_extractf64x4_pd(h8, 1));
    __m128d h2 = _mm_add_pd(_mm256_castpd256_pd128(h4), _mm256_extractf128_pd(h4, 1));
    return _mm_cvtsd_f64(_mm_add_sd(h2, _mm_unpackhi_pd(h2, h2)));
}

static TGT512 void scale_avx512(float *o, const float *x, const float *w, int n, float inv) {
    __m512 vi = _mm512_set1_ps(inv);
    for (int i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), vi), _mm512_maskz_loadu_ps(k, w + i));
        _mm512_mask_storeu_ps(o + i, k, v);
    }
}
#endif

/* One row: x += t (when t is set), then o = x / rms(x) * w. */
static inline void norm_row(int isa, float *o, float *x, const float *t, const float *w, int n, float eps) {
    (void)isa;
#if defined(__x86_64__) || defined(__i386__)
    if (isa == 2) {
        scale_avx512(o, x, w, n, rms_scale(sumsq_avx512(x, t, n), n, eps));
        return;
    }
    if (isa == 1) {
        scale_avx2(o, x, w, n, rms_scale(sumsq_avx2(x, t, n), n, eps));
        return;
    }
#endif
    scale_c(o, x, w, n, rms_scale(sumsq_c(x, t, n), n, eps));
}

static void norm_rows(float *out, float *x, const float *t, const float *w, int rows, int n, float eps) {
    int isa = sq__rows_isa();
    /* Inside a parallel region (the engine's one-region steps call this per share of rows)
     * the rows run here: even a one-thread nested region costs a team set-up per call. */
    if ((int64_t)rows * n <= (1 << 16) || omp_in_parallel()) {
        for (int r = 0; r < rows; r++)
            norm_row(isa, out + (size_t)r * n, x + (size_t)r * n, t ? t + (size_t)r * n : NULL, w, n, eps);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++)
        norm_row(isa, out + (size_t)r * n, x + (size_t)r * n, t ? t + (size_t)r * n : NULL, w, n, eps);
}

void sq_rmsnorm(float *out, const float *x, const float *w, int rows, int n, float eps) {
    norm_rows(out, (float *)x, NULL, w, rows, n, eps); /* x is only read when no t is added */
}

void sq_add_rmsnorm(float *out, float *x, const float *t, const float *w, int rows, int n, float eps) {
    norm_rows(out, x, t, w, rows, n, eps);
}

void sq_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int N, int C, float eps) {
#pragma omp parallel for schedule(static) if ((size_t)N * C > SQ_PAR_MIN)
    for (int i = 0; i < N; i++) {
        const float *xi = x + (size_t)i * C;
        float *oi = out + (size_t)i * C;
        float ss = sq_tv_dot(xi, xi, (size_t)C);
        float r = 1.0f / sqrtf(ss / (float)C + eps);
        rstd[i] = r;
#pragma omp simd
        for (int j = 0; j < C; j++) oi[j] = w[j] * (xi[j] * r);
    }
}

/* dx = r * (dy*w) - x * r^3 / C * sum(dy*w*x); dw = sum over rows of dy * x * r. */
void sq_rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *w,
                         const float *rstd, int N, int C) {
#pragma omp parallel if ((size_t)N * C > SQ_PAR_MIN)
    {
#pragma omp for schedule(static)
        for (int i = 0; i < N; i++) {
            const float *xi = x + (size_t)i * C, *dyi = dy + (size_t)i * C;
            float *dxi = dx + (size_t)i * C;
            float r = rstd[i], dot = 0;
#pragma omp simd reduction(+ : dot)
            for (int j = 0; j < C; j++) dot += dyi[j] * w[j] * xi[j];
            float c = dot * r * r * r / (float)C;
#pragma omp simd
            for (int j = 0; j < C; j++) dxi[j] += r * dyi[j] * w[j] - c * xi[j];
        }
        /* The weight gradient sums over rows. Each thread owns a slice of columns (so no
         * slot is shared and every column sums its rows in order, whatever the thread
         * count) and walks the rows front to back, reading its slice of each row. */
        int nt = omp_get_num_threads(), id = omp_get_thread_num();
        int j0 = (int)((long)C * id / nt), j1 = (int)((long)C * (id + 1) / nt);
        if (j1 > j0) {
            float acc[j1 - j0];
            for (int j = 0; j < j1 - j0; j++) acc[j] = 0;
            for (int i = 0; i < N; i++) {
                const float *dyi = dy + (size_t)i * C + j0, *xi = x + (size_t)i * C + j0;
                float r = rstd[i];
#pragma omp simd
                for (int j = 0; j < j1 - j0; j++) acc[j] += dyi[j] * xi[j] * r;
            }
            for (int j = j0; j < j1; j++) dw[j] += acc[j - j0];
        }
    }
}
