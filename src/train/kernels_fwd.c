/* Forward kernels of the training model, fp32. Each saves nothing itself: the caller passes
 * the arena slots that backward will read. GEMMs go through sq_tgemm (OpenBLAS, threaded by
 * us); the loops around them are vectorised (tvec.h) and split over rows with OpenMP. */
#include <math.h>
#include <string.h>

#include "tm_internal.h"
#include "tvec.h"

void sq_tk_rmsnorm(float *out, float *rstd, const float *x, const float *w, int N, int C, float eps) {
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

void sq_tk_linear(float *out, int ldo, const float *x, const float *W, const float *b, int N, int in, int out_dim) {
    sq_tgemm(0, 1, N, out_dim, in, 1.0f, x, in, W, in, 0.0f, out, ldo);
    if (b) {
#pragma omp parallel for schedule(static) if ((size_t)N * out_dim > SQ_PAR_MIN)
        for (int i = 0; i < N; i++) {
            float *o = out + (size_t)i * ldo;
#pragma omp simd
            for (int j = 0; j < out_dim; j++) o[j] += b[j];
        }
    }
}

/* out = res + x W^T: the residual is copied in first and the GEMM adds to it. */
void sq_tk_linear_residual(float *out, const float *res, const float *x, const float *W, int N, int in, int out_dim) {
    if (out != res) memcpy(out, res, (size_t)N * out_dim * sizeof(float));
    sq_tgemm(0, 1, N, out_dim, in, 1.0f, x, in, W, in, 1.0f, out, out_dim);
}

void sq_tk_rope(float *x, int ld, const int32_t *pos, const float *cos_t, const float *sin_t, int N, int nh, int hd) {
    int half = hd / 2;
#pragma omp parallel for schedule(static) if ((size_t)N * nh * hd > SQ_PAR_MIN)
    for (int i = 0; i < N; i++) {
        const float *c = cos_t + (size_t)pos[i] * half, *s = sin_t + (size_t)pos[i] * half;
        for (int h = 0; h < nh; h++) {
            float *v0 = x + (size_t)i * ld + (size_t)h * hd, *v1 = v0 + half;
#pragma omp simd
            for (int d = 0; d < half; d++) {
                float a = v0[d], b = v1[d];
                v0[d] = a * c[d] - b * s[d];
                v1[d] = b * c[d] + a * s[d];
            }
        }
    }
}

/* Rows of one attention head are processed in blocks of this many: a block's scores are
 * computed only up to its last row (the causal triangle above is skipped) and from the
 * earliest example start among its rows (packed examples before it are skipped). */
#define ATT_BLOCK 64

/* The columns block [r0, r1) needs: from the earliest seg_start among its rows to r1. */
int sq_tk_att_block_start(const int32_t *seg, int r0, int r1) {
    int c0 = r0;
    for (int i = r0; i < r1; i++) c0 = seg[i] < c0 ? seg[i] : c0;
    return c0;
}

int sq_tk_att_block(int T) { return T < ATT_BLOCK ? T : ATT_BLOCK; }

void sq_tk_attention(float *out, float *att, const float *q, const float *k, const float *v, int ld,
                     const int32_t *seg_start, int B, int T, int H, int KV, int hd) {
    int qd = H * hd, group = H / KV, TB = sq_tk_att_block(T);
    float scale = 1.0f / sqrtf((float)hd);
    sq_tgemm_single_threaded();
    /* One (row, head) per task, handed out as threads come free. */
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if ((size_t)B * T * T * H * hd > 4 * SQ_PAR_MIN)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int kh = h / group;
            const float *qh = q + (size_t)b * T * ld + (size_t)h * hd;
            const float *kb = k + (size_t)b * T * ld + (size_t)kh * hd;
            const float *vb = v + (size_t)b * T * ld + (size_t)kh * hd;
            float *P = att + ((size_t)b * H + h) * T * T;
            float *o = out + (size_t)b * T * qd + (size_t)h * hd;
            const int32_t *seg = seg_start + (size_t)b * T;
            for (int r0 = 0; r0 < T; r0 += TB) {
                int r1 = r0 + TB < T ? r0 + TB : T, c0 = sq_tk_att_block_start(seg, r0, r1);
                /* S = scale * Q K^T over the block's columns, then a masked softmax per row. */
                sq_tgemm(0, 1, r1 - r0, r1 - c0, hd, scale, qh + (size_t)r0 * ld, ld, kb + (size_t)c0 * ld, ld,
                         0.0f, P + (size_t)r0 * T + c0, T);
                for (int i = r0; i < r1; i++) {
                    float *p = P + (size_t)i * T;
                    int s = seg[i], n = i - s + 1;
                    float mx = sq_tv_max(p + s, (size_t)n);
                    float inv = 1.0f / sq_tv_exp_sum(p + s, (size_t)n, mx);
#pragma omp simd
                    for (int j = s; j <= i; j++) p[j] *= inv;
                    /* Zeros in the block's columns outside [s, i]: the product below and
                     * backward read the block [c0, r1) whole; nothing reads beyond it. */
                    memset(p + c0, 0, (size_t)(s - c0) * sizeof(float));
                    memset(p + i + 1, 0, (size_t)(r1 - i - 1) * sizeof(float));
                }
                sq_tgemm(0, 0, r1 - r0, hd, r1 - c0, 1.0f, P + (size_t)r0 * T + c0, T, vb + (size_t)c0 * ld, ld, 0.0f,
                         o + (size_t)r0 * qd, qd);
            }
        }
}

void sq_tk_swiglu(float *h, const float *gu, int N, int F) {
#pragma omp parallel for schedule(static) if ((size_t)N * F > SQ_PAR_MIN)
    for (int r = 0; r < N; r++) {
        const float *g = gu + (size_t)r * 2 * F, *u = g + F;
        float *hr = h + (size_t)r * F;
        int i = 0;
#if defined(SQ_TV_AVX2)
        for (; i + 8 <= F; i += 8) {
            __m256 gv = _mm256_loadu_ps(g + i);
            __m256 sg = sq_tv_sigmoid8(gv);
            _mm256_storeu_ps(hr + i, _mm256_mul_ps(_mm256_mul_ps(gv, sg), _mm256_loadu_ps(u + i)));
        }
#endif
        for (; i < F; i++) hr[i] = g[i] * sq_tv_sigmoid1(g[i]) * u[i];
    }
}
