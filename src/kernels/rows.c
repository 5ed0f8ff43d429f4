/* Row kernels: residual add, dtype conversion, embedding lookup. */
#include <immintrin.h>
#include <string.h>

#include "scalequest/kernels.h"
#include "scalequest/quant.h"

void sq_add(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

void sq_f32_to_bf16_row(uint16_t *out, const float *x, size_t n) {
    size_t i = 0;
#if defined(__AVX512BF16__)
    for (; i + 16 <= n; i += 16) {
        __m256bh b = _mm512_cvtneps_pbh(_mm512_loadu_ps(x + i));
        _mm256_storeu_si256((__m256i *)(out + i), (__m256i)b);
    }
#endif
    for (; i < n; i++) out[i] = sq_f32_to_bf16(x[i]);
}

void sq_bf16_to_f32_row(float *out, const uint16_t *x, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = sq_bf16_to_f32(x[i]);
}

/* IEEE half to float without the io layer's helper, so kernels stand alone. */
static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 31, man = h & 0x3ff, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            u = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | man << 13;
    } else {
        u = sign | (exp + 127 - 15) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

void sq_f16_to_f32_row(float *out, const uint16_t *x, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = half_to_float(x[i]);
}

void sq_q8_0_to_f32_row(float *out, const uint8_t *blocks, size_t n) {
    for (size_t b = 0; b < n / 32; b++) {
        const uint8_t *blk = blocks + b * 34;
        uint16_t hs;
        memcpy(&hs, blk, 2);
        float d = half_to_float(hs);
        const int8_t *q = (const int8_t *)(blk + 2);
        for (int i = 0; i < 32; i++) out[b * 32 + i] = d * q[i];
    }
}

void sq_embed_row(float *out, const sq_view *t, int64_t row) {
    int64_t n = t->shape[t->ndim - 1];
    switch (t->dtype) {
    case SQ_F32: memcpy(out, (const float *)t->data + row * n, (size_t)n * 4); break;
    case SQ_BF16: sq_bf16_to_f32_row(out, (const uint16_t *)t->data + row * n, (size_t)n); break;
    case SQ_F16: sq_f16_to_f32_row(out, (const uint16_t *)t->data + row * n, (size_t)n); break;
    case SQ_Q8_0: sq_q8_0_to_f32_row(out, (const uint8_t *)t->data + row * (n / 32) * 34, (size_t)n); break;
    default:
        if (sq_dtype_is_quant(t->dtype)) {
            size_t bb;
            int per = sq_dtype_block(t->dtype, &bb);
            sq_dequant_row(out, (const uint8_t *)t->data + (size_t)row * (size_t)(n / per) * bb, t->dtype, n);
        } else {
            memset(out, 0, (size_t)n * 4);
        }
        break;
    }
}
