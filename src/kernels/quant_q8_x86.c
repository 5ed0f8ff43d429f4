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
#include "quant_q8_body.h"
#undef TGT
#undef SFX
#undef DOTUS

/* ---- AVX-512 VNNI ------------------------------------------------------------------------- */
#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define SFX(name) name##_vnni
#define DOTUS(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (u), (s))
#define SQ_Q8_BODY_512 1
#include "quant_q8_body.h"
#undef SQ_Q8_BODY_512
#undef TGT
#undef SFX
#undef DOTUS

#endif
