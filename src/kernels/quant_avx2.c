/* The AVX2 code for quantized blocks (see quant.c for the layouts and quant.h for the order
 * of the sums). Each type's loop turns 32 values at a time into four vectors of 8 floats,
 * computed with the same products as the C code, and either stores them (dequantize) or
 * multiply-adds them into the four accumulators (the fused dot): partial sum i % 32 of the
 * C code is lane i % 8 of accumulator (i / 8) % 4 here. */
#include <cpuid.h>
#include <immintrin.h>
#include <string.h>

#include "quant_internal.h"
#include "scalequest/quant.h"

#if defined(SQ_QUANT_HAVE_AVX2)
#define TGT __attribute__((target("avx2,fma,f16c")))

int sq__quant_avx2_supported(void) {
    /* F16C is CPUID leaf 1, ECX bit 29 (not every compiler's __builtin_cpu_supports knows it). */
    unsigned a, b, c, d;
    int f16c = __get_cpuid(1, &a, &b, &c, &d) && (c >> 29 & 1);
    return f16c && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

TGT static inline float h2f(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* 32 small integers (one per byte, -128..127) to four vectors of 8 floats, in order. */
TGT static inline void bytes_to_f(__m256i v, __m256 f[4]) {
    __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
    f[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo));
    f[1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)));
    f[2] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi));
    f[3] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)));
}

/* Either store the 32 values or add their products with x into the accumulators. */
TGT static inline void emit(const __m256 w[4], const float *x, float *out, __m256 acc[4]) {
    if (out)
        for (int k = 0; k < 4; k++) _mm256_storeu_ps(out + 8 * k, w[k]);
    else
        for (int k = 0; k < 4; k++) acc[k] = _mm256_fmadd_ps(_mm256_loadu_ps(x + 8 * k), w[k], acc[k]);
}

/* 16 bytes of nibbles: values 0..15 the low nibbles, 16..31 the high ones. */
TGT static inline __m256i nibbles16(const uint8_t *p) {
    __m128i q = _mm_loadu_si128((const __m128i *)p), m = _mm_set1_epi8(0xF);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m), _mm_and_si128(q, m));
}

/* Bit j of a 32-bit word as 0x10 in byte j. */
TGT static inline __m256i bits32_to_0x10(uint32_t qh) {
    const __m256i sel = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3,
                                         3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    __m256i v = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), sel), bit);
    return _mm256_and_si256(_mm256_cmpeq_epi8(v, bit), _mm256_set1_epi8(0x10));
}

/* One loop per type over nb blocks; out (dequantize) or x/acc (dot). */
TGT static void run_q4(const uint8_t *b, int64_t nb, int one, const float *x, float *out, __m256 acc[4]) {
    size_t bb = one ? 20 : 18;
    for (int64_t i = 0; i < nb; i++, b += bb) {
        __m256i v = nibbles16(b + 2 + 2 * one);
        if (!one) v = _mm256_sub_epi8(v, _mm256_set1_epi8(8));
        __m256 f[4], d = _mm256_set1_ps(h2f(b)), m = _mm256_set1_ps(one ? h2f(b + 2) : 0);
        bytes_to_f(v, f);
        for (int k = 0; k < 4; k++) f[k] = one ? _mm256_add_ps(_mm256_mul_ps(d, f[k]), m) : _mm256_mul_ps(d, f[k]);
        emit(f, x ? x + 32 * i : NULL, out ? out + 32 * i : NULL, acc);
    }
}

TGT static void run_q5(const uint8_t *b, int64_t nb, int one, const float *x, float *out, __m256 acc[4]) {
    size_t bb = one ? 24 : 22;
    for (int64_t i = 0; i < nb; i++, b += bb) {
        uint32_t qh;
        memcpy(&qh, b + 2 + 2 * one, 4);
        __m256i v = _mm256_or_si256(nibbles16(b + 6 + 2 * one), bits32_to_0x10(qh));
        if (!one) v = _mm256_sub_epi8(v, _mm256_set1_epi8(16));
        __m256 f[4], d = _mm256_set1_ps(h2f(b)), m = _mm256_set1_ps(one ? h2f(b + 2) : 0);
        bytes_to_f(v, f);
        for (int k = 0; k < 4; k++) f[k] = one ? _mm256_add_ps(_mm256_mul_ps(d, f[k]), m) : _mm256_mul_ps(d, f[k]);
        emit(f, x ? x + 32 * i : NULL, out ? out + 32 * i : NULL, acc);
    }
}

TGT static void run_q8(const uint8_t *b, int64_t nb, const float *x, float *out, __m256 acc[4]) {
    for (int64_t i = 0; i < nb; i++, b += 34) {
        __m256 f[4], d = _mm256_set1_ps(h2f(b));
        bytes_to_f(_mm256_loadu_si256((const __m256i *)(b + 2)), f);
        for (int k = 0; k < 4; k++) f[k] = _mm256_mul_ps(d, f[k]);
        emit(f, x ? x + 32 * i : NULL, out ? out + 32 * i : NULL, acc);
    }
}

TGT static void run_qk45(const uint8_t *b, int64_t nb, int five, const float *x, float *out, __m256 acc[4]) {
    size_t bb = five ? 176 : 144;
    const __m256i m4 = _mm256_set1_epi8(0xF), one = _mm256_set1_epi8(1);
    for (int64_t i = 0; i < nb; i++, b += bb) {
        float d = h2f(b), dmin = h2f(b + 2);
        const uint8_t *qs = b + 16 + 32 * five;
        __m256i qh = five ? _mm256_loadu_si256((const __m256i *)(b + 16)) : _mm256_setzero_si256();
        for (int g = 0; g < 4; g++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * g));
            for (int h = 0; h < 2; h++) {
                int j = 2 * g + h;
                __m256i v = _mm256_and_si256(h ? _mm256_srli_epi16(q, 4) : q, m4);
                if (five)
                    v = _mm256_or_si256(
                        v, _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(j)), one), 4));
                uint8_t s, mn;
                sq__kq_scale_min(b + 4, j, &s, &mn);
                __m256 f[4], ds = _mm256_set1_ps(d * (float)s), dm = _mm256_set1_ps(dmin * (float)mn);
                bytes_to_f(v, f);
                for (int k = 0; k < 4; k++) f[k] = _mm256_sub_ps(_mm256_mul_ps(ds, f[k]), dm);
                size_t at = (size_t)(256 * i + 32 * j);
                emit(f, x ? x + at : NULL, out ? out + at : NULL, acc);
            }
        }
    }
}

TGT static void run_q6k(const uint8_t *b, int64_t nb, const float *x, float *out, __m256 acc[4]) {
    const __m256i off = _mm256_set1_epi8(32);
    for (int64_t i = 0; i < nb; i++, b += 210) {
        float d = h2f(b + 208);
        const int8_t *sc = (const int8_t *)(b + 192);
        for (int h = 0; h < 2; h++) {
            __m256i c[4];
            sq__q6k_unpack_half(b, h, c);
            for (int k = 0; k < 4; k++) {
                int s0 = 8 * h + 2 * k;
                __m256 f[4], da = _mm256_set1_ps(d * (float)sc[s0]), db = _mm256_set1_ps(d * (float)sc[s0 + 1]);
                bytes_to_f(_mm256_sub_epi8(c[k], off), f);
                f[0] = _mm256_mul_ps(da, f[0]);
                f[1] = _mm256_mul_ps(da, f[1]);
                f[2] = _mm256_mul_ps(db, f[2]);
                f[3] = _mm256_mul_ps(db, f[3]);
                size_t at = (size_t)(256 * i + 128 * h + 32 * k);
                emit(f, x ? x + at : NULL, out ? out + at : NULL, acc);
            }
        }
    }
}

TGT static void run(const void *src, sq_dtype t, int64_t n, const float *x, float *out, __m256 acc[4]) {
    const uint8_t *b = src;
    switch (t) {
    case SQ_Q4_0: run_q4(b, n / 32, 0, x, out, acc); break;
    case SQ_Q4_1: run_q4(b, n / 32, 1, x, out, acc); break;
    case SQ_Q5_0: run_q5(b, n / 32, 0, x, out, acc); break;
    case SQ_Q5_1: run_q5(b, n / 32, 1, x, out, acc); break;
    case SQ_Q8_0: run_q8(b, n / 32, x, out, acc); break;
    case SQ_Q4_K: run_qk45(b, n / 256, 0, x, out, acc); break;
    case SQ_Q5_K: run_qk45(b, n / 256, 1, x, out, acc); break;
    case SQ_Q6_K: run_q6k(b, n / 256, x, out, acc); break;
    default: break;
    }
}

/* (a0 + a1) + (a2 + a3), then the lanes in sq__reduce32's order. */
TGT static inline float reduce(const __m256 a[4]) {
    __m256 t = _mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3]));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

TGT void sq__dequant_avx2(float *out, const void *src, sq_dtype t, int64_t n) { run(src, t, n, NULL, out, NULL); }

TGT float sq__quant_dot_avx2(const void *row, sq_dtype t, const float *x, int64_t n) {
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    run(row, t, n, x, NULL, acc);
    return reduce(acc);
}

TGT float sq__dot_f32_avx2(const float *w, const float *x, int64_t n) {
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t i = 0; i < n; i += 32)
        for (int k = 0; k < 4; k++)
            acc[k] = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8 * k), _mm256_loadu_ps(w + i + 8 * k), acc[k]);
    return reduce(acc);
}

/* ---- AVX-512: the batched path's panel dots ------------------------------------------- */

/* Two 16-lane accumulators hold the same 32 partial sums as the four 8-lane ones above
 * (lane l of the first is p[l], of the second p[16 + l]), each updated by the same fused
 * multiply-add, so the sums below are bit for bit those of sq__dot_f32_avx2. */
#define TGT512 __attribute__((target("avx512f,avx2,fma,f16c")))

int sq__quant_avx512_supported(void) { return __builtin_cpu_supports("avx512f"); }

TGT512 static inline __m256 hi256(__m512 v) { return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)); }

/* p[0..15] in a, p[16..31] in b: (p[l] + p[8 + l]) + (p[16 + l] + p[24 + l]), then the
 * lanes as reduce() does. */
TGT512 static inline float reduce512(__m512 a, __m512 b) {
    __m256 t = _mm256_add_ps(_mm256_add_ps(_mm512_castps512_ps256(a), hi256(a)),
                             _mm256_add_ps(_mm512_castps512_ps256(b), hi256(b)));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

/* Every x row against every panel row, four x rows by two panel rows at a time: each
 * 64-byte load then feeds two or four multiply-adds instead of one, which is what the
 * batched decode step is bound by (one dot at a time spent half its cycles on loads). The
 * last tile of rows (or of panel rows) repeats a row; its extra results are not stored. */
TGT512 void sq__panel_dot_avx512(float *y, int64_t ldy, const float *pan, int n, const float *x, int rows, int64_t in,
                                 const float *bias) {
    for (int r0 = 0; r0 < rows; r0 += 4) {
        const float *xr[4];
        for (int i = 0; i < 4; i++) xr[i] = x + (r0 + i < rows ? r0 + i : rows - 1) * in;
        for (int k0 = 0; k0 < n; k0 += 2) {
            const float *w0 = pan + (int64_t)k0 * in, *w1 = pan + (int64_t)(k0 + 1 < n ? k0 + 1 : k0) * in;
            __m512 a[4][4];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) a[i][j] = _mm512_setzero_ps();
            for (int64_t c = 0; c < in; c += 32) {
                __m512 u0 = _mm512_loadu_ps(w0 + c), u1 = _mm512_loadu_ps(w0 + c + 16);
                __m512 v0 = _mm512_loadu_ps(w1 + c), v1 = _mm512_loadu_ps(w1 + c + 16);
                for (int i = 0; i < 4; i++) {
                    __m512 p = _mm512_loadu_ps(xr[i] + c), q = _mm512_loadu_ps(xr[i] + c + 16);
                    a[i][0] = _mm512_fmadd_ps(p, u0, a[i][0]);
                    a[i][1] = _mm512_fmadd_ps(q, u1, a[i][1]);
                    a[i][2] = _mm512_fmadd_ps(p, v0, a[i][2]);
                    a[i][3] = _mm512_fmadd_ps(q, v1, a[i][3]);
                }
            }
            for (int i = 0; i < 4 && r0 + i < rows; i++) {
                float *yr = y + (int64_t)(r0 + i) * ldy + k0;
                yr[0] = reduce512(a[i][0], a[i][1]) + (bias ? bias[k0] : 0);
                if (k0 + 1 < n) yr[1] = reduce512(a[i][2], a[i][3]) + (bias ? bias[k0 + 1] : 0);
            }
        }
    }
}

/* Batch-1 dots and dequantization of Q4_0, Q4_1 and Q8_0 (the types of the small real models)
 * with 16 lanes: values 0..15 of a block in one vector and 16..31 in the other, the same
 * products and sums per value as run_q4/run_q8 above (partial sum l in lane l of the first
 * accumulator or l - 16 of the second), in about half the instructions. */
TGT512 static inline void emit512(__m512 w0, __m512 w1, const float *x, float *out, __m512 *a0, __m512 *a1) {
    if (out) {
        _mm512_storeu_ps(out, w0);
        _mm512_storeu_ps(out + 16, w1);
    } else {
        *a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x), w0, *a0);
        *a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + 16), w1, *a1);
    }
}

TGT512 static void run512(const uint8_t *b, sq_dtype t, int64_t nb, const float *x, float *out, __m512 *a0,
                          __m512 *a1) {
    const __m128i m4 = _mm_set1_epi8(0xF);
    if (t == SQ_Q8_0) {
        for (int64_t i = 0; i < nb; i++, b += 34) {
            __m512 d = _mm512_set1_ps(h2f(b));
            __m512 f0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b + 2))));
            __m512 f1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b + 18))));
            emit512(_mm512_mul_ps(d, f0), _mm512_mul_ps(d, f1), x ? x + 32 * i : NULL, out ? out + 32 * i : NULL, a0, a1);
        }
        return;
    }
    int one = t == SQ_Q4_1;
    size_t bb = one ? 20 : 18;
    for (int64_t i = 0; i < nb; i++, b += bb) {
        __m128i q = _mm_loadu_si128((const __m128i *)(b + 2 + 2 * one));
        __m128i lo = _mm_and_si128(q, m4), hi = _mm_and_si128(_mm_srli_epi16(q, 4), m4);
        __m512i l32 = _mm512_cvtepu8_epi32(lo), h32 = _mm512_cvtepu8_epi32(hi);
        if (!one) {
            l32 = _mm512_sub_epi32(l32, _mm512_set1_epi32(8));
            h32 = _mm512_sub_epi32(h32, _mm512_set1_epi32(8));
        }
        __m512 d = _mm512_set1_ps(h2f(b)), f0 = _mm512_cvtepi32_ps(l32), f1 = _mm512_cvtepi32_ps(h32);
        f0 = _mm512_mul_ps(d, f0);
        f1 = _mm512_mul_ps(d, f1);
        if (one) {
            __m512 m = _mm512_set1_ps(h2f(b + 2));
            f0 = _mm512_add_ps(f0, m);
            f1 = _mm512_add_ps(f1, m);
        }
        emit512(f0, f1, x ? x + 32 * i : NULL, out ? out + 32 * i : NULL, a0, a1);
    }
}

int sq__quant512_handles(sq_dtype t) { return t == SQ_Q4_0 || t == SQ_Q4_1 || t == SQ_Q8_0; }

TGT512 void sq__dequant_avx512(float *out, const void *src, sq_dtype t, int64_t n) {
    run512(src, t, n / 32, NULL, out, NULL, NULL);
}

TGT512 float sq__quant_dot_avx512(const void *row, sq_dtype t, const float *x, int64_t n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    run512(row, t, n / 32, x, NULL, &a0, &a1);
    return reduce512(a0, a1);
}
#endif
