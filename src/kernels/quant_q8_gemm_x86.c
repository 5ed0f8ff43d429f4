/* The x86 tile kernel of the batched 8-bit-activation matmul (quant_q8_gemm.c drives it; the
 * C reference in quant_q8.c gives the per-output order these must keep bit for bit).
 *
 * A tile is 8 outputs (weight rows) by up to 4 activation rows. The 8 weight rows are first
 * unpacked once, for every block, into signed int8 values (Q4_0 -8, Q5_0 -16; Q4_1 and Q5_1
 * keep their unsigned 0-15 / 0-31, which fit a signed byte) laid out in pairs of outputs
 * with their 4-byte groups interleaved: dword 2l of a pair's vector holds output A's values
 * 4l..4l+3, dword 2l+1 output B's. Beside each pair vector the tile keeps -128 x each
 * dword's sum of values, and the block's 8 f16 scales (and Q*_1 minima) widened once.
 * The activation rows come in their own form (sq__q8g_drow_vnni, once per matmul): per
 * block, each dword of x + 128 twice (64 bytes), so one vpdpbusd of row bytes (unsigned)
 * on pair values (signed), started at the pair's -128 x sums, gives both outputs' 8 lane
 * sums exactly: (x + 128) . w - 128 sum(w) = x . w, lane l of output A in dword 2l.
 *
 * Then every group of 4 activation rows runs over the unpacked tile (it stays in L1/L2):
 * per block and row, one multiply gives the 8 outputs' d = dw * dx (the reference's d),
 * stored so that a pair's two products are one 8-byte broadcast load; per pair and row, one
 * vpdpbusd, one conversion and one FMA, and nothing else on the vector ports. The lanes are
 * exactly the reference's: lane l's float accumulator takes fma(d, (float)p, acc) block
 * after block; the 8 lanes then reduce in quant.h's tree and the Q*_1 term fma(mw, s, sm)
 * is added, then the bias, as (sum + sm) + bias. So a row's outputs equal the GEMV's
 * whatever the tile.
 *
 * Below: the K types' tile (int16 pre-scaled values, vpdpwssd) and the AVX2 tile for the
 * 32-value blocks (its own layout), each with its own comment. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "quant_internal.h"
#include "quant_q8_gemm.h"

#if defined(SQ_QUANT_HAVE_AVX2)

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define AI __attribute__((always_inline))

/* Spreads the 8 nibbles of a 32-bit word to the low halves of 8 bytes (nibble i to byte i). */
static inline uint64_t nib_spread(uint32_t v) {
    uint64_t x = v;
    x = (x | x << 16) & 0x0000FFFF0000FFFFull;
    x = (x | x << 8) & 0x00FF00FF00FF00FFull;
    return (x | x << 4) & 0x0F0F0F0F0F0F0F0Full;
}

/* One output pair's block, signed, the pair's 4-byte groups interleaved: dword 2l holds
 * output A's values 4l..4l+3, dword 2l+1 output B's (pointers to the blocks). */
TGT static inline AI __m512i pair_vals(const uint8_t *b0, const uint8_t *b1, const sq_dtype t) {
    const __m512i il = _mm512_setr_epi32(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
    if (t == SQ_Q8_0) {
        __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(b0 + 2))),
                                       _mm256_loadu_si256((const __m256i *)(b1 + 2)), 1);
        return _mm512_permutexvar_epi32(il, v);
    }
    const int o = t == SQ_Q4_0 ? 2 : t == SQ_Q4_1 ? 4 : t == SQ_Q5_0 ? 6 : 8;
    /* values 0-15 are the low nibbles of the 16 bytes, 16-31 the high ones: dword l of the
     * 16 bytes feeds lanes 2l and 2l + 8 (A) and 2l + 1, 2l + 9 (B); the upper 8 lanes shift */
    const __m512i idx = _mm512_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7, 0, 4, 1, 5, 2, 6, 3, 7);
    const __m512i sh = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4);
    __m256i q2 = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(b0 + o))),
                                         _mm_loadu_si128((const __m128i *)(b1 + o)), 1);
    __m512i v = _mm512_and_si512(_mm512_srlv_epi32(_mm512_permutexvar_epi32(idx, _mm512_castsi256_si512(q2)), sh),
                                 _mm512_set1_epi8(0xF));
    if (t == SQ_Q5_0 || t == SQ_Q5_1) { /* bit j of the 32-bit word at offset o - 4: 0x10 in value j */
        uint32_t h0, h1;
        memcpy(&h0, b0 + o - 4, 4);
        memcpy(&h1, b1 + o - 4, 4);
        __mmask64 m = (__mmask64)(nib_spread(h0) | nib_spread(h1) << 4);
        v = _mm512_or_si512(v, _mm512_maskz_mov_epi8(m, _mm512_set1_epi8(0x10)));
    }
    if (t == SQ_Q4_0) v = _mm512_sub_epi8(v, _mm512_set1_epi8(8));
    if (t == SQ_Q5_0) v = _mm512_sub_epi8(v, _mm512_set1_epi8(16));
    return v;
}

/* The tile's 8 weight rows (nout of them real; the others zero) unpacked for all nb blocks;
 * per block: 4 pair vectors of signed values (256 bytes), 4 vectors of -128 x each dword's
 * sum of values (the start of each dot, 256 bytes), 8 floats dw, 8 floats mw (Q*_1). */
TGT static inline AI void unpack_tile(uint8_t *tile, const uint8_t *w, size_t rb, int nout, const sq_dtype t,
                                      int64_t nb) {
    const size_t bb = t == SQ_Q4_0 ? 18 : t == SQ_Q4_1 ? 20 : t == SQ_Q5_0 ? 22 : t == SQ_Q5_1 ? 24 : 34;
    static const uint8_t zero[34];
    const int one = t == SQ_Q4_1 || t == SQ_Q5_1;
    const size_t step = SQ_Q8G_TILE_BYTES_PER_BLOCK;
    const uint8_t *rowp[8];
    size_t inc[8];
    for (int c = 0; c < 8; c++) rowp[c] = c < nout ? w + (size_t)c * rb : zero, inc[c] = c < nout ? bb : 0;
    const __m512i u128 = _mm512_set1_epi8((char)0x80);
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *T = tile + (size_t)b * step;
        uint32_t head[8]; /* each block's first 4 bytes: d (and Q*_1: m) */
        for (int c = 0; c < 8; c++) memcpy(&head[c], rowp[c], 4);
        for (int c = 0; c < 8; c += 2) {
            __m512i v = pair_vals(rowp[c], rowp[c + 1], t);
            _mm512_storeu_si512((void *)(T + 32 * c), v);
            _mm512_storeu_si512((void *)(T + 256 + 32 * c),
                                _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), u128, v)));
        }
        /* the next tile's rows (8 rows on; past the matrix, a prefetch does not fault): its
         * blocks reach L2 while this tile's rows go by */
        for (int c = 0; c < 8; c++) _mm_prefetch((const char *)(w + (size_t)(8 + c) * rb + (size_t)b * bb), _MM_HINT_T1);
        for (int c = 0; c < 8; c++) rowp[c] += inc[c];
        __m256i hv = _mm256_loadu_si256((const __m256i *)head);
        float *D = (float *)(T + 512);
        _mm256_storeu_ps(D, _mm256_cvtph_ps(_mm256_cvtepi32_epi16(hv)));
        if (one) _mm256_storeu_ps(D + 8, _mm256_cvtph_ps(_mm256_cvtepi32_epi16(_mm256_srli_epi32(hv, 16))));
    }
}

/* One row group's running sums between passes over chunks of blocks: 4 rows x 4 pairs of
 * lane accumulators, then 4 rows of Q*_1 minimum sums. */
typedef struct {
    __m512 acc[4][4];
    __m256 sm[4];
} tile_sums;

/* R rows (compile-time) over blocks [b0, b1) of an unpacked tile. The sums start at zero
 * (in NULL) or at *in, and end in *out, or (out NULL) reduced into the outputs
 * y[r * ldy + c] for c < nout. Per block and row: the 8 products dw * dx (the reference's
 * d) in one multiply, stored so that each pair's two are one 8-byte broadcast; per pair and
 * row: one vpdpbusd of the row's unsigned bytes (x + 128, each dword twice) on the signed
 * values, started at the pair's -128 x sums, one conversion, one FMA. */
TGT static inline AI void run_tile(float *y, int64_t ldy, int nout, const uint8_t *tile, const sq_dtype t,
                                   const uint8_t *xd, size_t xs, const int R, int64_t nb, int64_t b0, int64_t b1,
                                   const float *bias, const tile_sums *in, tile_sums *out) {
    const int one = t == SQ_Q4_1 || t == SQ_Q5_1;
    const size_t step = SQ_Q8G_TILE_BYTES_PER_BLOCK;
    __m512 acc[4][4];
    __m256 sm[4];
    _Alignas(64) double dd[4][4]; /* per row: the pairs' (dw * dx) products, two floats each */
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        sm[r] = in ? in->sm[r] : _mm256_setzero_ps();
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) acc[r][c] = in ? in->acc[r][c] : _mm512_setzero_ps();
    }
    for (int64_t b = b0; b < b1; b++) {
        const uint8_t *T = tile + (size_t)b * step;
        const float *D = (const float *)(T + 512);
        const __m256 dw = _mm256_loadu_ps(D);
        __m512i xv[4];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const uint8_t *xr = xd + (size_t)r * xs;
            const float *ds = (const float *)(xr + 64 * nb) + 2 * b;
            xv[r] = _mm512_loadu_si512((const void *)(xr + 64 * b));
            _mm256_store_ps((float *)dd[r], _mm256_mul_ps(dw, _mm256_set1_ps(ds[0])));
            if (one) sm[r] = _mm256_fmadd_ps(_mm256_loadu_ps(D + 8), _mm256_set1_ps(ds[1]), sm[r]);
        }
        /* the products go through memory: each FMA's d is then one broadcast load (no
         * shuffle on the vector ports, which the dots and FMAs fill) */
        __asm__("" : "+m"(dd));
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            const __m512i wv = _mm512_loadu_si512((const void *)(T + 64 * c));
            const __m512i iv = _mm512_loadu_si512((const void *)(T + 256 + 64 * c));
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                __m512i p = _mm512_dpbusd_epi32(iv, xv[r], wv);
                __m512 d = _mm512_castpd_ps(_mm512_set1_pd(dd[r][c]));
                acc[r][c] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(p), acc[r][c]);
            }
        }
    }
    if (out) {
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            out->sm[r] = sm[r];
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) out->acc[r][c] = acc[r][c];
        }
        return;
    }
    /* Each output's 8 lanes (even lanes of pair c: output 2c, odd: 2c + 1) in quant.h's tree,
     * the 4 pairs together: h_l = a_l + a_(l+4) (lanes 0-7 + 8-15), then (h0 + h2) and
     * (h1 + h3) (each half's 128-bit chunks 0 + 1), then their sum (lanes 0, 1 + 2, 3 of each
     * chunk): pair c's outputs end in lanes 4c and 4c + 1. */
    const __m512i pick = _mm512_setr_epi32(0, 1, 4, 5, 8, 9, 12, 13, 0, 0, 0, 0, 0, 0, 0, 0);
    const __mmask8 m = (__mmask8)((1u << nout) - 1);
    const __m256 bv = bias ? _mm256_maskz_loadu_ps(m, bias) : _mm256_setzero_ps();
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        __m512 a01 = _mm512_add_ps(_mm512_shuffle_f32x4(acc[r][0], acc[r][1], 0x44),
                                   _mm512_shuffle_f32x4(acc[r][0], acc[r][1], 0xEE));
        __m512 a23 = _mm512_add_ps(_mm512_shuffle_f32x4(acc[r][2], acc[r][3], 0x44),
                                   _mm512_shuffle_f32x4(acc[r][2], acc[r][3], 0xEE));
        __m512 h = _mm512_add_ps(_mm512_shuffle_f32x4(a01, a23, 0x88), _mm512_shuffle_f32x4(a01, a23, 0xDD));
        h = _mm512_add_ps(h, _mm512_permute_ps(h, 0xEE));
        __m256 v = _mm512_castps512_ps256(_mm512_permutexvar_ps(pick, h));
        v = _mm256_add_ps(_mm256_add_ps(v, one ? sm[r] : _mm256_setzero_ps()), bv); /* (sum + sm) + bias */
        _mm256_mask_storeu_ps(y + (size_t)r * ldy, m, v);
    }
}

/* Rows of a group of R over blocks [b0, b1), sums kept in st (see run_tile). */
#define RUN_GROUP(R_, B0, B1, IN, OUT)                                                                                 \
    run_tile(y + (size_t)r * ldy, ldy, nout, tile, t, xd + (size_t)r * xs, xs, R_, nb, B0, B1, bias, IN, OUT)

/* Every row over the tile. A tile of many blocks (more than L1 holds beside the rows) goes
 * in chunks of KC blocks (measured: 48 a little faster than 16, 24 or 32 on the 152-block
 * down projection at 32 rows): each chunk, while in L1, takes up to 8 row groups (32 rows), their
 * running sums kept between chunks; the float steps per lane stay in block order, so the
 * bits are the same. */
TGT static inline AI void tile_all_rows(float *y, int64_t ldy, int nout, const uint8_t *tile, const sq_dtype t,
                                        const uint8_t *xd, size_t xs, int rows, int64_t nb, const float *bias) {
    enum { KC = 48, GROUPS = 8 }; /* 48 blocks: 27 KB of tile beside 14 KB of a group's rows */
    if (nb <= 3 * KC / 2) {
        int r = 0;
        for (; r + 4 <= rows; r += 4) RUN_GROUP(4, 0, nb, NULL, NULL);
        switch (rows - r) {
        case 3: RUN_GROUP(3, 0, nb, NULL, NULL); break;
        case 2: RUN_GROUP(2, 0, nb, NULL, NULL); break;
        case 1: RUN_GROUP(1, 0, nb, NULL, NULL); break;
        default: break;
        }
        return;
    }
    tile_sums st[GROUPS];
    for (int r0 = 0; r0 < rows; r0 += 4 * GROUPS) {
        int r1 = rows - r0 < 4 * GROUPS ? rows : r0 + 4 * GROUPS;
        for (int64_t k0 = 0; k0 < nb; k0 += KC) {
            int64_t k1 = nb - k0 < KC + KC / 2 ? nb : k0 + KC; /* no short last chunk */
            const tile_sums *first = NULL;
            for (int r = r0, g = 0; r < r1; r += 4, g++) {
                const tile_sums *in = k0 ? &st[g] : first;
                tile_sums *out = k1 < nb ? &st[g] : NULL;
                switch (r1 - r < 4 ? r1 - r : 4) {
                case 4: RUN_GROUP(4, k0, k1, in, out); break;
                case 3: RUN_GROUP(3, k0, k1, in, out); break;
                case 2: RUN_GROUP(2, k0, k1, in, out); break;
                default: RUN_GROUP(1, k0, k1, in, out); break;
                }
            }
            k0 = k1 - KC; /* the loop's step lands on k1 */
        }
    }
}
#undef RUN_GROUP

/* A rounded 32-value-block row (sq_quant_act_row's kind 1: nb x 32 int8, then nb x (d, s))
 * in the tile's form: per block 64 bytes, each dword of x + 128 twice; then the nb (d, s). */
TGT void sq__q8g_drow_vnni(uint8_t *dst, const uint8_t *xq, int64_t nb) {
    const __m512i dup = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    const __m512i u128 = _mm512_set1_epi8((char)0x80);
    for (int64_t b = 0; b < nb; b++) {
        __m512i v = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(xq + 32 * b)));
        _mm512_storeu_si512((void *)(dst + 64 * b), _mm512_xor_si512(_mm512_permutexvar_epi32(dup, v), u128));
    }
    memcpy(dst + 64 * nb, xq + 32 * nb, (size_t)nb * 2 * sizeof(float));
}

/* An activation row of nb 32-value blocks rounded as act_q8b in quant_q8.c (the same
 * operations on each value: |x|, the max, x * (127 / amax) rounded to nearest even by the
 * conversion, the exact int sum, the same scalar scale arithmetic; f16 by the F16C
 * instructions, round to nearest even as sq_f32_to_f16) straight into the tile's form (dst),
 * and, where q1 is set, into sq_quant_act_row's too: one pass over x for both. */
TGT void sq__q8g_round_vnni(uint8_t *q1, uint8_t *dst, const float *x, int64_t nb) {
    const __m512i dup = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    const __m512i u128 = _mm512_set1_epi8((char)0x80);
    const __m512 big = _mm512_set1_ps(3.402823466e38f);
    float *ds = (float *)(dst + 64 * nb), *ds1 = q1 ? (float *)(q1 + 32 * nb) : NULL;
    for (int64_t b = 0; b < nb; b++, x += 32) {
        __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
        __m512 a0 = _mm512_abs_ps(v0), a1 = _mm512_abs_ps(v1);
        __mmask16 bad = _mm512_cmp_ps_mask(a0, big, _CMP_NLE_UQ) | _mm512_cmp_ps_mask(a1, big, _CMP_NLE_UQ);
        __m256i q;
        float dq, sq;
        if (bad) { /* NaN or inf: zeros and NaN scales */
            q = _mm256_setzero_si256();
            dq = sq = NAN;
        } else {
            float amax = _mm512_reduce_max_ps(_mm512_max_ps(a0, a1));
            float d = amax / 127.f, id = amax != 0.0f ? 127.f / amax : 0.0f;
            if (id > 3.402823466e38f) id = 0.0f; /* as act_q8b: a denormal block rounds to zeros */
            __m512 sv = _mm512_set1_ps(id);
            __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, sv)), i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, sv));
            int sum = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
            q = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm512_cvtepi32_epi8(i0)), _mm512_cvtepi32_epi8(i1), 1);
            dq = _cvtsh_ss(_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT));
            sq = _cvtsh_ss(_cvtss_sh(d * (float)sum, _MM_FROUND_TO_NEAREST_INT));
        }
        _mm512_storeu_si512((void *)(dst + 64 * b),
                            _mm512_xor_si512(_mm512_permutexvar_epi32(dup, _mm512_castsi256_si512(q)), u128));
        ds[2 * b] = dq, ds[2 * b + 1] = sq;
        if (q1) {
            _mm256_storeu_si256((__m256i *)(q1 + 32 * b), q);
            ds1[2 * b] = dq, ds1[2 * b + 1] = sq;
        }
    }
}

/* The type as a constant in each case, so each loop is compiled for its own type. */
TGT void sq__q8g_tile_vnni(float *y, int64_t ldy, const uint8_t *w, size_t rb, int nout, sq_dtype t,
                           const uint8_t *xd, size_t xs, int rows, int64_t nb, const float *bias, uint8_t *tile) {
#define CASE(T)                                                                                                        \
    case T:                                                                                                            \
        unpack_tile(tile, w, rb, nout, T, nb);                                                                         \
        tile_all_rows(y, ldy, nout, tile, T, xd, xs, rows, nb, bias);                                                  \
        break;
    switch (t) {
        CASE(SQ_Q4_0)
        CASE(SQ_Q4_1)
        CASE(SQ_Q5_0)
        CASE(SQ_Q5_1)
        CASE(SQ_Q8_0)
    default: break;
    }
#undef CASE
}

/* ---- 256-value blocks (Q4_K, Q5_K, Q6_K), AVX-512 VNNI ---------------------------------------
 * The reference's per-block integer isum = sum over sub-blocks of scale x (values . x) is the
 * same integer as the dot of the pre-scaled values (scale x value, at most 63 x 31 or
 * 128 x 32: int16) with x widened to int16, so the tile holds those int16 weights, unpacked
 * once per matmul, and each (row, output, block) takes 8 vpdpwssd (exact int32) and one
 * integer reduction; then, as the reference: acc = fma(d * dx, (float)isum, acc),
 * mn = fma(dmin * dx, (float)imin, mn) with imin = sum of min_j x (the row's sums of 32
 * q's), and (acc - mn) + bias. Tile per block and output: 256 int16, then d, dmin and the
 * 8 mins as int32 (SQ_Q8G_KTILE_BYTES_PER_BLOCK). Activation rows (sq__q8g_krow): 256
 * int16 per block, then per block the 8 sums of 32 q's as int32 and d. */

TGT static inline AI void kunpack(uint8_t *T, const uint8_t *w, const sq_dtype t) {
    int16_t *o = (int16_t *)T;
    float *f = (float *)(T + 512);
    int32_t *mins = (int32_t *)(T + 520);
    if (t == SQ_Q6_K) {
        const int8_t *sc = (const int8_t *)(w + 192);
        for (int h = 0; h < 2; h++) {
            __m256i c[4];
            sq__q6k_unpack_half(w, h, c);
            for (int k = 0; k < 4; k++)
                for (int g = 0; g < 2; g++) {
                    int i = 128 * h + 32 * k + 16 * g;
                    __m128i b = g ? _mm256_extracti128_si256(c[k], 1) : _mm256_castsi256_si128(c[k]);
                    __m256i v = _mm256_sub_epi16(_mm256_cvtepu8_epi16(b), _mm256_set1_epi16(32));
                    _mm256_storeu_si256((__m256i *)(o + i), _mm256_mullo_epi16(v, _mm256_set1_epi16(sc[i / 16])));
                }
        }
        uint16_t h;
        memcpy(&h, w + 208, 2);
        f[0] = _cvtsh_ss(h), f[1] = 0.0f;
        memset(mins, 0, 32);
        return;
    }
    const int five = t == SQ_Q5_K;
    const uint8_t *qh = w + 16, *qs = w + 16 + 32 * five;
    for (int j = 0; j < 8; j++) {
        uint8_t sc, mn;
        sq__kq_scale_min(w + 4, j, &sc, &mn);
        mins[j] = mn;
        __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * (j / 2)));
        __m256i v = _mm256_and_si256((j & 1) ? _mm256_srli_epi16(q, 4) : q, _mm256_set1_epi8(0xF));
        if (five)
            v = _mm256_or_si256(v, _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(_mm256_loadu_si256((const __m256i *)qh),
                                                                                       _mm_cvtsi32_si128(j)),
                                                                      _mm256_set1_epi8(1)),
                                                     4));
        __m512i v16 = _mm512_cvtepu8_epi16(v);
        _mm512_storeu_si512((void *)(o + 32 * j), _mm512_mullo_epi16(v16, _mm512_set1_epi16(sc)));
    }
    uint16_t h[2];
    memcpy(h, w, 4);
    f[0] = _cvtsh_ss(h[0]), f[1] = _cvtsh_ss(h[1]);
}

/* R rows (compile-time, 1..4) x C outputs of an unpacked K tile (kt: output c's blocks at
 * kt + c * nb * KB). */
TGT static inline AI void run_ktile(float *y, int64_t ldy, int nout, const uint8_t *kt, const sq_dtype t,
                                    const uint8_t *xk, size_t xks, const int R, int64_t nb, const float *bias) {
    const size_t KB = SQ_Q8G_KTILE_BYTES_PER_BLOCK;
    float acc[4][8], mn[4][8];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < 8; c++) acc[r][c] = 0.0f, mn[r][c] = 0.0f;
    for (int c0 = 0; c0 < nout; c0 += 4) {
        const int C = nout - c0 < 4 ? nout - c0 : 4;
        for (int64_t b = 0; b < nb; b++) {
            __m512i s[4][4];
            for (int r = 0; r < R; r++)
                for (int c = 0; c < 4; c++) s[r][c] = _mm512_setzero_si512();
            for (int k = 0; k < 8; k++) {
                __m512i xv[4];
                for (int r = 0; r < R; r++)
                    xv[r] = _mm512_loadu_si512((const void *)(xk + (size_t)r * xks + (size_t)b * 512 + 64 * k));
                for (int c = 0; c < 4; c++) {
                    if (c >= C) break;
                    __m512i wv = _mm512_loadu_si512((const void *)(kt + ((size_t)(c0 + c) * nb + b) * KB + 64 * k));
                    for (int r = 0; r < R; r++) s[r][c] = _mm512_dpwssd_epi32(s[r][c], wv, xv[r]);
                }
            }
            for (int r = 0; r < R; r++) {
                const uint8_t *xr = xk + (size_t)r * xks + (size_t)nb * 512 + (size_t)b * 48;
                const int32_t *bs = (const int32_t *)xr;
                float xd;
                memcpy(&xd, xr + 32, 4);
                for (int c = 0; c < C; c++) {
                    const uint8_t *T = kt + ((size_t)(c0 + c) * nb + b) * KB;
                    const float *f = (const float *)(T + 512);
                    const int32_t *m = (const int32_t *)(T + 520);
                    int32_t isum = _mm512_reduce_add_epi32(s[r][c]), imin = 0;
                    if (t != SQ_Q6_K)
                        for (int j = 0; j < 8; j++) imin += m[j] * bs[j];
                    acc[r][c0 + c] = fmaf(f[0] * xd, (float)isum, acc[r][c0 + c]);
                    mn[r][c0 + c] = fmaf(t == SQ_Q6_K ? 0.0f : f[1] * xd, (float)imin, mn[r][c0 + c]);
                }
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < nout; c++)
            y[(size_t)r * ldy + c] = (acc[r][c] - mn[r][c]) + (bias ? bias[c] : 0.0f);
}

TGT void sq__q8g_krow_vnni(uint8_t *dst, const void *q8k, int64_t nb) {
    const sq__q8k *x = q8k;
    for (int64_t b = 0; b < nb; b++) {
        int16_t *o = (int16_t *)(dst + (size_t)b * 512);
        for (int k = 0; k < 8; k++)
            _mm512_storeu_si512((void *)(o + 32 * k),
                                _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(x[b].q + 32 * k))));
        uint8_t *e = dst + (size_t)nb * 512 + (size_t)b * 48;
        int32_t bs[8];
        for (int j = 0; j < 8; j++) bs[j] = x[b].bsum[2 * j] + x[b].bsum[2 * j + 1];
        memcpy(e, bs, 32);
        memcpy(e + 32, &x[b].d, 4);
    }
}

TGT void sq__q8g_ktile_vnni(float *y, int64_t ldy, const uint8_t *w, size_t rb, int nout, sq_dtype t,
                            const uint8_t *xk, size_t xks, int rows, int64_t nb, const float *bias, uint8_t *tile) {
    const size_t KB = SQ_Q8G_KTILE_BYTES_PER_BLOCK, bb = t == SQ_Q4_K ? 144 : t == SQ_Q5_K ? 176 : 210;
#define KCASE(T)                                                                                                       \
    case T:                                                                                                            \
        for (int c = 0; c < nout; c++)                                                                                 \
            for (int64_t b = 0; b < nb; b++) kunpack(tile + ((size_t)c * nb + b) * KB, w + (size_t)c * rb + b * bb, T); \
        for (int r = 0; r < rows; r += 4) {                                                                            \
            float *yr = y + (size_t)r * ldy;                                                                           \
            const uint8_t *xr = xk + (size_t)r * xks;                                                                  \
            switch (rows - r < 4 ? rows - r : 4) {                                                                     \
            case 4: run_ktile(yr, ldy, nout, tile, T, xr, xks, 4, nb, bias); break;                                    \
            case 3: run_ktile(yr, ldy, nout, tile, T, xr, xks, 3, nb, bias); break;                                    \
            case 2: run_ktile(yr, ldy, nout, tile, T, xr, xks, 2, nb, bias); break;                                    \
            default: run_ktile(yr, ldy, nout, tile, T, xr, xks, 1, nb, bias); break;                                   \
            }                                                                                                          \
        }                                                                                                              \
        break;
    switch (t) {
        KCASE(SQ_Q4_K)
        KCASE(SQ_Q5_K)
        KCASE(SQ_Q6_K)
    default: break;
    }
#undef KCASE
}

/* ---- AVX2 (maddubs + madd) ------------------------------------------------------------------
 * The same tile layout (written by unpack_tile2 with AVX2 only) and the same per-lane sums.
 * maddubs adds two u8 x s8 products in int16: exact for the 4- and 5-bit values (at most
 * 2 x 31 x 127), but not for Q8_0's w + 128, so Q8_0 takes the sign trick instead (|w| as
 * the unsigned operand, x with w's sign as the signed one; x is never -128). One ymm
 * accumulator per (row, output): tiles of 2 rows x 4 outputs, twice over the 8-output tile. */
#define TGT2 __attribute__((target("avx2,fma,f16c")))

TGT2 static inline AI __m256i nib2(const uint8_t *p) {
    __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p));
    return _mm256_and_si256(_mm256_srlv_epi64(q, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0xF));
}

TGT2 static inline AI __m256i bits2(const uint8_t *p) { /* bit j of a 32-bit word as 0x10 in byte j */
    uint32_t qh;
    memcpy(&qh, p, 4);
    const __m256i sel = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3,
                                         3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    __m256i v = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), sel), bit);
    return _mm256_and_si256(_mm256_cmpeq_epi8(v, bit), _mm256_set1_epi8(0x10));
}

TGT2 static inline AI __m256i block_bytes2(const uint8_t *b, const sq_dtype t) {
    switch (t) {
    case SQ_Q4_0: return nib2(b + 2);
    case SQ_Q4_1: return nib2(b + 4);
    case SQ_Q5_0: return _mm256_or_si256(nib2(b + 6), bits2(b + 2));
    case SQ_Q5_1: return _mm256_or_si256(nib2(b + 8), bits2(b + 4));
    default: return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(b + 2)), _mm256_set1_epi8((char)0x80));
    }
}

TGT2 static inline AI void unpack_tile2(uint8_t *tile, const uint8_t *w, size_t rb, int nout, const sq_dtype t,
                                        int64_t nb) {
    const size_t bb = t == SQ_Q4_0 ? 18 : t == SQ_Q4_1 ? 20 : t == SQ_Q5_0 ? 22 : t == SQ_Q5_1 ? 24 : 34;
    static const uint8_t zero[34];
    const int one = t == SQ_Q4_1 || t == SQ_Q5_1;
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *T = tile + (size_t)b * SQ_Q8G_TILE_BYTES_PER_BLOCK;
        float *D = (float *)(T + 256);
        for (int c = 0; c < 8; c++) {
            const uint8_t *p = c < nout ? w + (size_t)c * rb + (size_t)b * bb : zero;
            _mm256_storeu_si256((__m256i *)(T + 32 * c), block_bytes2(p, t));
            uint16_t h[2];
            memcpy(h, p, 4);
            _mm256_storeu_ps(D + 8 * c, _mm256_set1_ps(_cvtsh_ss(h[0])));
            D[64 + c] = one ? _cvtsh_ss(h[1]) : 0.0f;
        }
    }
}

TGT2 static inline AI float hsum2(__m256 a) { /* quant.h's tree */
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

/* R rows (1 or 2) x outputs c0..c0+3 of an unpacked tile. */
TGT2 static inline AI void run_tile2(float *y, int64_t ldy, int nout, int c0, const uint8_t *tile, const sq_dtype t,
                                     const uint8_t *xq, size_t xs, const int R, int64_t nb, const float *bias) {
    const int one = t == SQ_Q4_1 || t == SQ_Q5_1, q8 = t == SQ_Q8_0;
    const int sh = t == SQ_Q4_0 ? 3 : t == SQ_Q5_0 ? 4 : 0; /* offset 8 or 16 as a shift */
    const __m256i ones16 = _mm256_set1_epi16(1), ones8 = _mm256_set1_epi8(1);
    __m256 acc[2][4], sm[2];
    for (int r = 0; r < R; r++) {
        sm[r] = _mm256_setzero_ps();
        for (int c = 0; c < 4; c++) acc[r][c] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *T = tile + (size_t)b * SQ_Q8G_TILE_BYTES_PER_BLOCK;
        const float *D = (const float *)(T + 256);
        __m256i xv[2], init[2];
        __m256 dx[2];
        for (int r = 0; r < R; r++) {
            const uint8_t *xr = xq + (size_t)r * xs;
            const float *ds = (const float *)(xr + 32 * nb) + 2 * b;
            xv[r] = _mm256_loadu_si256((const __m256i *)(xr + 32 * b));
            init[r] = _mm256_setzero_si256();
            if (sh) /* -offset x the row's sum of each 4 bytes */
                init[r] = _mm256_sub_epi32(init[r],
                                           _mm256_slli_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(ones8, xv[r]), ones16), sh));
            dx[r] = _mm256_set1_ps(ds[0]);
            if (one) sm[r] = _mm256_fmadd_ps(_mm256_loadu_ps(D + 64), _mm256_set1_ps(ds[1]), sm[r]);
        }
        for (int c = 0; c < 4; c++) {
            __m256i u = _mm256_loadu_si256((const __m256i *)(T + 32 * (c0 + c))), wsg = u;
            if (q8) {
                wsg = _mm256_xor_si256(u, _mm256_set1_epi8((char)0x80));
                u = _mm256_sign_epi8(wsg, wsg);
            }
            __m256 dw = _mm256_loadu_ps(D + 8 * (c0 + c));
            for (int r = 0; r < R; r++) {
                __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(u, q8 ? _mm256_sign_epi8(xv[r], wsg) : xv[r]), ones16);
                if (sh) p = _mm256_add_epi32(p, init[r]);
                acc[r][c] = _mm256_fmadd_ps(_mm256_mul_ps(dw, dx[r]), _mm256_cvtepi32_ps(p), acc[r][c]);
            }
        }
    }
    for (int r = 0; r < R; r++) {
        float s8[8];
        _mm256_storeu_ps(s8, sm[r]);
        float *yr = y + (size_t)r * ldy;
        for (int c = 0; c < 4 && c0 + c < nout; c++)
            yr[c0 + c] = (hsum2(acc[r][c]) + (one ? s8[c0 + c] : 0.0f)) + (bias ? bias[c0 + c] : 0.0f);
    }
}

TGT2 static inline AI void tile_all_rows2(float *y, int64_t ldy, int nout, const uint8_t *tile, const sq_dtype t,
                                          const uint8_t *xq, size_t xs, int rows, int64_t nb, const float *bias) {
    for (int c0 = 0; c0 < nout; c0 += 4) {
        int r = 0;
        for (; r + 2 <= rows; r += 2)
            run_tile2(y + (size_t)r * ldy, ldy, nout, c0, tile, t, xq + (size_t)r * xs, xs, 2, nb, bias);
        if (r < rows) run_tile2(y + (size_t)r * ldy, ldy, nout, c0, tile, t, xq + (size_t)r * xs, xs, 1, nb, bias);
    }
}

TGT2 void sq__q8g_tile_avx2(float *y, int64_t ldy, const uint8_t *w, size_t rb, int nout, sq_dtype t,
                            const uint8_t *xq, size_t xs, int rows, int64_t nb, const float *bias, uint8_t *tile) {
#define CASE(T)                                                                                                        \
    case T:                                                                                                            \
        unpack_tile2(tile, w, rb, nout, T, nb);                                                                        \
        tile_all_rows2(y, ldy, nout, tile, T, xq, xs, rows, nb, bias);                                                 \
        break;
    switch (t) {
        CASE(SQ_Q4_0)
        CASE(SQ_Q4_1)
        CASE(SQ_Q5_0)
        CASE(SQ_Q5_1)
        CASE(SQ_Q8_0)
    default: break;
    }
#undef CASE
}

#endif
