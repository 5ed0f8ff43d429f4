/* RoPE (rotate-half, as HF) is a rotation per pair (d, d+hd/2); its backward is the
 * rotation by the opposite angle, in place. */
#include "scalequest/train.h"

void sq_rope_backward(float *d, int ld, const int32_t *pos, const float *cos_t, const float *sin_t, int N,
                      int nh, int hd) {
    int half = hd / 2;
#pragma omp parallel for schedule(static) if ((size_t)N * nh * hd > SQ_PAR_MIN)
    for (int i = 0; i < N; i++) {
        const float *c = cos_t + (size_t)pos[i] * half, *s = sin_t + (size_t)pos[i] * half;
        for (int h = 0; h < nh; h++) {
            float *v0 = d + (size_t)i * ld + (size_t)h * hd, *v1 = v0 + half;
#pragma omp simd
            for (int t = 0; t < half; t++) {
                float a = v0[t], b = v1[t];
                v0[t] = a * c[t] + b * s[t];
                v1[t] = b * c[t] - a * s[t];
            }
        }
    }
}
