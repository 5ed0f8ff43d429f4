/* Row kernels: residual add, dtype conversion, embedding lookup. */
#include <immintrin.h>
#include <stdatomic.h>
#include <string.h>

#include "scalequest/kernels.h"
#include "scalequest/quant.h"
#include "simd.h"

static atomic_int rows_force; /* sq_rows_isa_force's level */

int sq__rows_isa(void) {
    static atomic_int cpu = -1; /* what this CPU runs, found once (every thread finds the same) */
    int have = atomic_load_explicit(&cpu, memory_order_relaxed);
    if (have < 0) {
        have = 0;
#if defined(__x86_64__) || defined(__i386__)
        if (__builtin_cpu_supports("avx512f"))
            have = 2;
        else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            have = 1;
#endif
        atomic_store_explicit(&cpu, have, memory_order_relaxed);
    }
    int f = atomic_load_explicit(&rows_force, memory_order_relaxed);
    return f == 2 ? 0 : f == 1 && have > 1 ? 1 : have;
}

const char *sq_rows_isa_force(int level) {
    atomic_store(&rows_force, level);
    static const char *names[] = {"c", "avx2", "avx512"};
    return names[sq__rows_isa()];
}

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

void sq_f16_to_f32_row(float *out, const uint16_t *x, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = sq_f16_to_f32(x[i]);
}

void sq_q8_0_to_f32_row(float *out, const uint8_t *blocks, size_t n) {
    sq_dequant_row(out, blocks, SQ_Q8_0, (int64_t)n);
}

void sq_embed_row(float *out, const sq_view *t, int64_t row) {
    int64_t n = t->shape[t->ndim - 1];
    switch (t->dtype) {
    case SQ_F32: memcpy(out, (const float *)t->data + row * n, (size_t)n * 4); break;
    case SQ_BF16: sq_bf16_to_f32_row(out, (const uint16_t *)t->data + row * n, (size_t)n); break;
    case SQ_F16: sq_f16_to_f32_row(out, (const uint16_t *)t->data + row * n, (size_t)n); break;
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
