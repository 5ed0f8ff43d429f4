/* Forward kernels of the training model, fp32. Each saves nothing itself: the caller passes
 * the arena slots that backward will read. GEMMs go to OpenBLAS. */
#include <cblas.h>
#include <math.h>

#include "tm_internal.h"

void sq_tk_rmsnorm(float *out, float *rstd, const float *x, const float *w, int N, int C, float eps) {
#pragma omp parallel for schedule(static) if ((size_t)N * C > SQ_PAR_MIN)
    for (int i = 0; i < N; i++) {
        const float *xi = x + (size_t)i * C;
        float *oi = out + (size_t)i * C;
        float ss = 0;
#pragma omp simd reduction(+ : ss)
        for (int j = 0; j < C; j++) ss += xi[j] * xi[j];
        float r = 1.0f / sqrtf(ss / (float)C + eps);
        rstd[i] = r;
        for (int j = 0; j < C; j++) oi[j] = w[j] * (xi[j] * r);
    }
}

void sq_tk_linear(float *out, const float *x, const float *W, const float *b, int N, int in, int out_dim) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, out_dim, in, 1.0f, x, in, W, in, 0.0f, out, out_dim);
    if (b) {
#pragma omp parallel for schedule(static) if ((size_t)N * out_dim > SQ_PAR_MIN)
        for (int i = 0; i < N; i++)
            for (int j = 0; j < out_dim; j++) out[(size_t)i * out_dim + j] += b[j];
    }
}

void sq_tk_rope(float *x, const int32_t *pos, const float *cos_t, const float *sin_t, int N, int nh, int hd) {
    int half = hd / 2;
#pragma omp parallel for schedule(static) if ((size_t)N * nh * hd > SQ_PAR_MIN)
    for (int i = 0; i < N; i++) {
        const float *c = cos_t + (size_t)pos[i] * half, *s = sin_t + (size_t)pos[i] * half;
        for (int h = 0; h < nh; h++) {
            float *v = x + ((size_t)i * nh + h) * hd;
            for (int d = 0; d < half; d++) {
                float a = v[d], b = v[d + half];
                v[d] = a * c[d] - b * s[d];
                v[d + half] = b * c[d] + a * s[d];
            }
        }
    }
}

void sq_tk_attention(float *out, float *att, const float *q, const float *k, const float *v,
                     const int32_t *seg_start, int B, int T, int H, int KV, int hd) {
    int qd = H * hd, kd = KV * hd, group = H / KV;
    float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)B * T * T * H * hd > 4 * SQ_PAR_MIN)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int kh = h / group;
            for (int i = 0; i < T; i++) {
                size_t ri = (size_t)b * T + i;
                const float *qi = q + ri * qd + (size_t)h * hd;
                float *p = att + (((size_t)b * H + h) * T + i) * T;
                int s = seg_start[ri];
                float mx = -INFINITY;
                for (int j = s; j <= i; j++) {
                    const float *kj = k + ((size_t)b * T + j) * kd + (size_t)kh * hd;
                    float d = 0;
#pragma omp simd reduction(+ : d)
                    for (int t = 0; t < hd; t++) d += qi[t] * kj[t];
                    p[j] = d * scale;
                    if (p[j] > mx) mx = p[j];
                }
                float sum = 0;
                for (int j = s; j <= i; j++) {
                    p[j] = expf(p[j] - mx);
                    sum += p[j];
                }
                float inv = 1.0f / sum;
                float *oi = out + ri * qd + (size_t)h * hd;
                for (int t = 0; t < hd; t++) oi[t] = 0;
                for (int j = s; j <= i; j++) {
                    p[j] *= inv;
                    const float *vj = v + ((size_t)b * T + j) * kd + (size_t)kh * hd;
                    for (int t = 0; t < hd; t++) oi[t] += p[j] * vj[t];
                }
            }
        }
}

void sq_tk_swiglu(float *h, const float *g, const float *u, size_t n) {
#pragma omp parallel for schedule(static) if (n > SQ_PAR_MIN)
    for (size_t i = 0; i < n; i++) h[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}
