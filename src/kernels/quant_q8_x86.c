/* The x86 code of the 8-bit-activation dot products (quant.h gives the order of the sums,
 * quant_q8.c the C reference these must equal bit for bit). One body, compiled twice: for
 * AVX2 (maddubs + madd: the pairs of u8 x s8 products never saturate int16 here, the values
 * being at most 128 x 127 each), and for AVX-512 VNNI + VL (vpdpbusd on 256-bit vectors).
 * Either gives, per 4 consecutive bytes, the exact int32 sum of their products: the lanes of
 * the reference. The VNNI build also takes Q4_0, Q4_1 and Q8_0 two blocks at a time in
 * 512-bit vectors (AVX512BW). Signed weights go through the usual sign trick: |w| as the unsigned operand
 * and x with w's sign as the signed one (exact because x is never -128). */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "quant_internal.h"
#include "scalequest/quant.h"

#if defined(SQ_QUANT_HAVE_AVX2)

int sq__q8_vnni_supported(void) {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}

#define AI __attribute__((always_inline))

/* ---- AVX2 -------------------------------------------------------------------------------- */
#define TGT __attribute__((target("avx2,fma,f16c")))
#define SFX(name) name##_avx2
#define DOTUS(u, s) _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), _mm256_set1_epi16(1))
#define DOTWS(acc, a, b) _mm256_add_epi32((acc), _mm256_madd_epi16((a), (b)))
#include "quant_q8_body.h"
#undef TGT
#undef SFX
#undef DOTUS
#undef DOTWS

/* The rounding of an activation row into 32-value blocks (act_q8b in quant_q8.c) with AVX2:
 * the same operations on each value (|x|, the max, x * (127 / amax) rounded to nearest even
 * by the conversion, the exact int sum) and the same scalar scale arithmetic, so the bytes
 * equal the C code's (test_quant compares them). */
__attribute__((target("avx2,fma,f16c"))) void sq__act_q8b_avx2(uint8_t *dst, const float *x, int64_t nb) {
    float *ds = (float *)(dst + 32 * nb);
    const __m256 sign = _mm256_set1_ps(-0.0f), big = _mm256_set1_ps(3.402823466e38f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t b = 0; b < nb; b++, x += 32) {
        __m256 v[4], m = _mm256_setzero_ps();
        int bad = 0;
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(x + 8 * k);
            __m256 a = _mm256_andnot_ps(sign, v[k]);
            bad |= _mm256_movemask_ps(_mm256_cmp_ps(a, big, _CMP_NLE_UQ)); /* NaN or inf */
            m = _mm256_max_ps(m, a);
        }
        int8_t *q = (int8_t *)dst + 32 * b;
        if (bad) {
            memset(q, 0, 32);
            ds[2 * b] = ds[2 * b + 1] = NAN;
            continue;
        }
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        float amax = _mm_cvtss_f32(h);
        float d = amax / 127.f, id = amax != 0.0f ? 127.f / amax : 0.0f;
        if (id > 3.402823466e38f) id = 0.0f; /* as act_q8b: a denormal block rounds to zeros */
        __m256 s = _mm256_set1_ps(id);
        __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v[0], s)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v[1], s));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v[2], s)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v[3], s));
        __m256i t = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
        __m128i t4 = _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
        t4 = _mm_add_epi32(t4, _mm_shuffle_epi32(t4, 0x4e));
        t4 = _mm_add_epi32(t4, _mm_shuffle_epi32(t4, 0xb1));
        int sum = _mm_cvtsi128_si32(t4);
        /* |values| <= 127, so the saturating packs are plain narrowing; the permute undoes
         * their per-128-bit-lane interleave. */
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
        _mm256_storeu_si256((__m256i *)q, _mm256_permutevar8x32_epi32(p, order));
        ds[2 * b] = sq_f16_to_f32(sq_f32_to_f16(d));
        ds[2 * b + 1] = sq_f16_to_f32(sq_f32_to_f16(d * (float)sum));
    }
}

/* ---- AVX-512 VNNI ------------------------------------------------------------------------- */
#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define SFX(name) name##_vnni
#define DOTUS(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (u), (s))
#define DOTWS(acc, a, b) _mm256_dpwssd_epi32((acc), (a), (b))
#define SQ_Q8_BODY_512 1
#include "quant_q8_body.h"
#undef SQ_Q8_BODY_512
#undef TGT
#undef SFX
#undef DOTUS
#undef DOTWS

#endif
