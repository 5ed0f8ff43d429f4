/* Rotary position embedding: frequencies with the scalings Llama-family configs use, and
 * the rotation in both layouts (HF rotate-half, GGUF interleaved pairs). The frequencies are
 * computed in float32 the way transformers does, so angles agree with it to float rounding.
 * The engine rotates one token at a time (sq_rope_apply); training rotates rows of a batch
 * from precomputed tables (sq_rope_forward) and back (sq_rope_backward): one rotation
 * (rotate, below) serves all three. */
#include <math.h>
#include <string.h>

#include "scalequest/kernels.h"

int sq_rope_init(sq_rope *r, int head_dim, float theta, int scaling, float factor, float low_freq_factor,
                 float high_freq_factor, int original_max_pos, int interleaved) {
    if (head_dim <= 0 || head_dim > 1024 || head_dim % 2) return SQ_ERANGE;
    memset(r, 0, sizeof *r);
    r->head_dim = head_dim;
    r->interleaved = interleaved;
    r->theta = theta;
    r->factor = factor > 0 ? factor : 1;
    r->max_pos = original_max_pos;
    int half = head_dim / 2;
    for (int i = 0; i < half; i++) {
        float expo = (float)(2 * i) / (float)head_dim;
        r->inv_freq[i] = 1.0f / powf(theta, expo);
    }
    if (scaling == 1) { /* linear: positions divided by the factor */
        for (int i = 0; i < half; i++) r->inv_freq[i] /= r->factor;
    } else if (scaling == 2) {
        r->dynamic = 1;
    } else if (scaling == 3) { /* llama3: long wavelengths slowed, short ones kept, smooth between */
        float lo = low_freq_factor > 0 ? low_freq_factor : 1, hi = high_freq_factor > 0 ? high_freq_factor : 4;
        float low_wavelen = original_max_pos / lo, high_wavelen = original_max_pos / hi;
        for (int i = 0; i < half; i++) {
            float f = r->inv_freq[i], wavelen = 2.0f * (float)M_PI / f;
            if (wavelen > low_wavelen) {
                r->inv_freq[i] = f / r->factor;
            } else if (wavelen >= high_wavelen) {
                float smooth = ((float)original_max_pos / wavelen - lo) / (hi - lo);
                r->inv_freq[i] = (1 - smooth) * f / r->factor + smooth * f;
            }
        }
    }
    return 0;
}

void sq_rope_set_freq_factors(sq_rope *r, const float *factors) {
    for (int i = 0; i < r->head_dim / 2; i++) r->inv_freq[i] /= factors[i];
}

void sq_rope_angles(const sq_rope *r, int pos, float *cos_out, float *sin_out) {
    int half = r->head_dim / 2;
    float inv[512];
    memcpy(inv, r->inv_freq, sizeof(float) * (size_t)half);
    if (r->dynamic && r->max_pos > 0 && pos + 1 > r->max_pos) {
        /* Dynamic NTK: the base grows with the sequence length once past the trained one. */
        double base = r->theta * pow(r->factor * (pos + 1) / (double)r->max_pos - (r->factor - 1),
                                     r->head_dim / (r->head_dim - 2.0));
        for (int i = 0; i < half; i++) inv[i] = 1.0f / powf((float)base, (float)(2 * i) / (float)r->head_dim);
    }
    for (int i = 0; i < half; i++) {
        float a = (float)pos * inv[i];
        cos_out[i] = cosf(a);
        sin_out[i] = sinf(a);
    }
}

/* Rotate the pairs (v0[i], v1[i]) by the angles (c, s), or back when sign is -1 (a product
 * by -1 is exact, so the inverse is the rotation by the opposite angle, bit for bit). */
static inline void rotate(float *v0, float *v1, const float *c, const float *s, float sign, int half) {
#pragma omp simd
    for (int i = 0; i < half; i++) {
        float a = v0[i], b = v1[i], sn = sign * s[i];
        v0[i] = a * c[i] - b * sn;
        v1[i] = b * c[i] + a * sn;
    }
}

void sq_rope_apply(const sq_rope *r, float *x, int n_heads, const float *c, const float *s) {
    int d = r->head_dim, half = d / 2;
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * d;
        if (r->interleaved) {
            for (int i = 0; i < half; i++) {
                float a = v[2 * i], b = v[2 * i + 1];
                v[2 * i] = a * c[i] - b * s[i];
                v[2 * i + 1] = b * c[i] + a * s[i];
            }
        } else {
            rotate(v, v + half, c, s, 1.0f, half);
        }
    }
}

static void rows(float *x, int ld, const int32_t *pos, const float *cos_t, const float *sin_t, int N, int nh, int hd,
                 float sign) {
    int half = hd / 2;
#pragma omp parallel for schedule(static) if ((size_t)N * nh * hd > SQ_PAR_MIN)
    for (int i = 0; i < N; i++) {
        const float *c = cos_t + (size_t)pos[i] * half, *s = sin_t + (size_t)pos[i] * half;
        for (int h = 0; h < nh; h++) {
            float *v0 = x + (size_t)i * ld + (size_t)h * hd;
            rotate(v0, v0 + half, c, s, sign, half);
        }
    }
}

void sq_rope_forward(float *x, int ld, const int32_t *pos, const float *cos_t, const float *sin_t, int N, int nh,
                     int hd) {
    rows(x, ld, pos, cos_t, sin_t, N, nh, hd, 1.0f);
}

void sq_rope_backward(float *d, int ld, const int32_t *pos, const float *cos_t, const float *sin_t, int N, int nh,
                      int hd) {
    rows(d, ld, pos, cos_t, sin_t, N, nh, hd, -1.0f);
}
