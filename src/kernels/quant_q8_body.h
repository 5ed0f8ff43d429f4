/* Body of quant_q8_x86.c, included once per instruction set with TGT (the target
 * attribute), SFX (the name suffix) and DOTUS (u8 x s8 -> the int32 sum of each 4 bytes)
 * defined. Not a header of its own: no include guard on purpose. */

TGT static inline float SFX(h2f)(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* 16 bytes of nibbles: values 0..15 the low nibbles, 16..31 the high ones (the 16 bytes in
 * both halves, the upper half shifted right by 4, then masked: three instructions). */
TGT static inline __m256i SFX(nib)(const uint8_t *p) {
    __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p));
    return _mm256_and_si256(_mm256_srlv_epi64(q, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0xF));
}

/* Bit j of a 32-bit word as 0x10 in byte j. */
TGT static inline __m256i SFX(bits)(const uint8_t *p) {
    uint32_t qh;
    memcpy(&qh, p, 4);
    const __m256i sel = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3,
                                         3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    __m256i v = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), sel), bit);
    return _mm256_and_si256(_mm256_cmpeq_epi8(v, bit), _mm256_set1_epi8(0x10));
}

/* A 32-value weight block as 32 bytes: unsigned for Q4_1/Q5_1, signed otherwise. */
TGT static inline AI __m256i SFX(wblock)(const uint8_t *b, const sq_dtype t) {
    switch (t) {
    case SQ_Q4_0: return _mm256_sub_epi8(SFX(nib)(b + 2), _mm256_set1_epi8(8));
    case SQ_Q4_1: return SFX(nib)(b + 4);
    case SQ_Q5_0: return _mm256_sub_epi8(_mm256_or_si256(SFX(nib)(b + 6), SFX(bits)(b + 2)), _mm256_set1_epi8(16));
    case SQ_Q5_1: return _mm256_or_si256(SFX(nib)(b + 8), SFX(bits)(b + 4));
    default: return _mm256_loadu_si256((const __m256i *)(b + 2));
    }
}

TGT static inline float SFX(hsum)(__m256 a) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

TGT static inline int32_t SFX(hsumi)(__m256i a) {
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
    return _mm_cvtsi128_si32(h);
}

/* One block of one activation row into its accumulator. */
TGT static inline AI void SFX(step32)(__m256i wv, __m256i u, float dw, float mw, const int one, const uint8_t *xr,
                                      int64_t nb, int64_t b, __m256 *acc, float *sm) {
    __m256i xv = _mm256_loadu_si256((const __m256i *)(xr + 32 * b));
    const float *ds = (const float *)(xr + 32 * nb) + 2 * b;
    __m256i p = DOTUS(u, one ? xv : _mm256_sign_epi8(xv, wv));
    *acc = _mm256_fmadd_ps(_mm256_set1_ps(dw * ds[0]), _mm256_cvtepi32_ps(p), *acc);
    if (one) *sm = fmaf(mw, ds[1], *sm);
}

TGT static inline AI void SFX(wscales)(const uint8_t *w, const int one, float *dw, float *mw) {
    if (one) { /* d and m are adjacent: one load, one conversion */
        int32_t dm;
        memcpy(&dm, w, 4);
        __m128 f = _mm_cvtph_ps(_mm_cvtsi32_si128(dm));
        *dw = _mm_cvtss_f32(f);
        *mw = _mm_cvtss_f32(_mm_movehdup_ps(f));
    } else {
        *dw = SFX(h2f)(w);
        *mw = 0;
    }
}

/* Up to 4 activation rows against one weight row of 32-value blocks; y[r] = dot + bias. */
TGT static inline AI void SFX(dot32)(float *y, int64_t ys, const uint8_t *w, const sq_dtype t, const uint8_t *xq,
                                     size_t xs, const int R, int64_t nb, float bias) {
    const int one = t == SQ_Q4_1 || t == SQ_Q5_1;
    const size_t bb = t == SQ_Q4_0 ? 18 : t == SQ_Q4_1 ? 20 : t == SQ_Q5_0 ? 22 : t == SQ_Q5_1 ? 24 : 34;
    __m256 acc[4];
    float sm[4] = {0, 0, 0, 0};
    for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++, w += bb) {
        __m256i wv = SFX(wblock)(w, t), u = one ? wv : _mm256_sign_epi8(wv, wv);
        float dw, mw;
        SFX(wscales)(w, one, &dw, &mw);
        for (int r = 0; r < R; r++) SFX(step32)(wv, u, dw, mw, one, xq + (size_t)r * xs, nb, b, &acc[r], &sm[r]);
    }
    for (int r = 0; r < R; r++) y[r * ys] = (SFX(hsum)(acc[r]) + sm[r]) + bias;
}

/* Batch 1, 4 consecutive weight rows (outputs) against one activation row, for the 32-value
 * types (AVX2: all five; VNNI: Q5_0 and Q5_1, its 512-bit kernel below taking the others):
 * the x block is loaded once per block for the four rows (and, for Q4_0/Q5_0, its 4-byte lane
 * sums times the offset formed once), the four rows' scales are one conversion and one
 * multiply by dx. Per output the operations are those of dot32 in the same order: lane l of
 * the 8-lane accumulator gets fma(dw * dx, (float)p_l, acc_l) block after block, the min term
 * fma(m, s, sm) (Q4_1/Q5_1: odd lanes of a vector holding d, m of the 4 rows), then hsum8 + sm
 * + bias. The integer p_l is the reference's exact sum: Q4_0/Q5_0 take the unsigned values
 * (maddubs pairs at most 2 * 31 * 128) minus the offset (8, 16) times the x lane's sum, Q8_0
 * the sign trick of dot32. 4 accumulators, x, its correction, the scales and constants fit in
 * 16 ymm registers. */
#ifndef PFD
#define PFD 512
#endif
/* Where the prefetches put the next rows: L2 (T1), not L1 (T0). The kernel reads each
 * prefetched line once, one group of rows later; batch 1 streams from memory, and a core's
 * rate is bound by the misses it keeps in flight. T0 holds an L1 fill buffer per line until
 * the line is in L1 and the 8-16 KB fetched ahead evict lines in use; T1 leaves the L1 to the
 * demand loads and the L2 prefetcher. Measured from memory, one thread, paired with a read
 * probe (bench_q8_gemv ... vnni 3 1, load ~4.5): Q8_0 4864x896 90-92% -> 101-102% of the
 * read, 896x4864 81-85% -> 103-104%, Q4_1 4864x896 86% -> 93%; T2 was between. */
#ifndef PF_HINT
#define PF_HINT _MM_HINT_T1
#endif
TGT static inline AI void SFX(outs4)(float *y, const uint8_t *w, size_t rb, const sq_dtype t, const uint8_t *xr,
                                     int64_t nb, const float *bias) {
    const int one = t == SQ_Q4_1 || t == SQ_Q5_1, off = t == SQ_Q4_0 ? 8 : t == SQ_Q5_0 ? 16 : 0;
    const size_t bb = t == SQ_Q4_0 ? 18 : t == SQ_Q4_1 ? 20 : t == SQ_Q5_0 ? 22 : t == SQ_Q5_1 ? 24 : 34;
    const float *ds = (const float *)(xr + 32 * nb);
    __m256 acc[4], SM = _mm256_setzero_ps();
    for (int r = 0; r < 4; r++) acc[r] = _mm256_setzero_ps();
    const uintptr_t pf = (uintptr_t)w + 4 * rb; /* the next 4 rows; a prefetch never faults */
    const size_t pstep = 4 * bb;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *wb = w + (size_t)b * bb;
#ifndef SQ_Q8_NO_PF
        for (size_t k = 0; k < pstep; k += 64) _mm_prefetch((const char *)(pf + (size_t)b * pstep + k + PFD), PF_HINT);
#endif
        __m256i xv = _mm256_loadu_si256((const __m256i *)(xr + 32 * b)), corr = _mm256_setzero_si256();
        if (off) corr = DOTUS(_mm256_set1_epi8((char)off), xv);
        __m256 D;
        if (one) {
            int32_t a0, a1, a2, a3;
            memcpy(&a0, wb, 4), memcpy(&a1, wb + rb, 4), memcpy(&a2, wb + 2 * rb, 4), memcpy(&a3, wb + 3 * rb, 4);
            __m256 W8 = _mm256_cvtph_ps(_mm_setr_epi32(a0, a1, a2, a3));
            __m256 X8 = _mm256_castpd_ps(_mm256_broadcast_sd((const double *)(ds + 2 * b)));
            D = _mm256_mul_ps(W8, X8);
            SM = _mm256_fmadd_ps(W8, X8, SM);
        } else {
            uint16_t h0, h1, h2, h3;
            memcpy(&h0, wb, 2), memcpy(&h1, wb + rb, 2), memcpy(&h2, wb + 2 * rb, 2), memcpy(&h3, wb + 3 * rb, 2);
            __m128 W4 = _mm_cvtph_ps(_mm_setr_epi16((short)h0, (short)h1, (short)h2, (short)h3, 0, 0, 0, 0));
            D = _mm256_castps128_ps256(_mm_mul_ps(W4, _mm_set1_ps(ds[2 * b])));
        }
        for (int r = 0; r < 4; r++) {
            const uint8_t *wr = wb + (size_t)r * rb;
            __m256i p;
            if (t == SQ_Q8_0) {
                __m256i wv = _mm256_loadu_si256((const __m256i *)(wr + 2));
                p = DOTUS(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv));
            } else {
                __m256i u = t == SQ_Q4_0   ? SFX(nib)(wr + 2)
                            : t == SQ_Q4_1 ? SFX(nib)(wr + 4)
                            : t == SQ_Q5_0 ? _mm256_or_si256(SFX(nib)(wr + 6), SFX(bits)(wr + 2))
                                           : _mm256_or_si256(SFX(nib)(wr + 8), SFX(bits)(wr + 4));
                p = DOTUS(u, xv);
                if (off) p = _mm256_sub_epi32(p, corr);
            }
            __m256 Dr = _mm256_permutevar8x32_ps(D, _mm256_set1_epi32(one ? 2 * r : r));
            acc[r] = _mm256_fmadd_ps(Dr, _mm256_cvtepi32_ps(p), acc[r]);
        }
    }
    float sm[8];
    _mm256_storeu_ps(sm, SM);
    for (int r = 0; r < 4; r++) y[r] = (SFX(hsum)(acc[r]) + (one ? sm[2 * r + 1] : 0.0f)) + (bias ? bias[r] : 0.0f);
}

TGT void SFX(sq__dot_q8_outs4)(float *y, const uint8_t *w, size_t rb, sq_dtype t, const uint8_t *xq, int64_t nb,
                               const float *bias) {
    switch (t) {
    case SQ_Q4_0: SFX(outs4)(y, w, rb, SQ_Q4_0, xq, nb, bias); break;
    case SQ_Q4_1: SFX(outs4)(y, w, rb, SQ_Q4_1, xq, nb, bias); break;
    case SQ_Q5_0: SFX(outs4)(y, w, rb, SQ_Q5_0, xq, nb, bias); break;
    case SQ_Q5_1: SFX(outs4)(y, w, rb, SQ_Q5_1, xq, nb, bias); break;
    default: SFX(outs4)(y, w, rb, SQ_Q8_0, xq, nb, bias); break;
    }
}

#if defined(SQ_Q8_BODY_512)
/* Q4_0, Q4_1 and Q8_0 with 512-bit vectors: two blocks per unpack, dot and conversion (the
 * activation bytes of consecutive blocks are contiguous), block b in lanes 0-7 and b+1 in
 * 8-15; the two halves then go into the one 8-lane accumulator one after the other, the
 * order of dot32 above. The weight scales of both blocks times the activation scales (d, s
 * pairs) are one 4-lane multiply: lanes 0 and 2 give dw * dx. */
TGT static inline AI void SFX(dot32_512)(float *y, int64_t ys, const uint8_t *w, const sq_dtype t, const uint8_t *xq,
                                         size_t xs, const int R, int64_t nb, float bias) {
    const int one = t == SQ_Q4_1;
    const size_t bb = t == SQ_Q4_0 ? 18 : t == SQ_Q4_1 ? 20 : 34;
    const __m512i sh = _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4), dup = _mm512_setr_epi64(0, 1, 0, 1, 2, 3, 2, 3);
    __m256 acc[4];
    float sm[4] = {0, 0, 0, 0};
    for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2, w += 2 * bb) {
        __m512i wv;
        __m128 W;
        if (t == SQ_Q8_0) {
            wv = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(w + 2))),
                                    _mm256_loadu_si256((const __m256i *)(w + bb + 2)), 1);
        } else {
            const int o = one ? 4 : 2;
            __m256i q2 = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(w + o))),
                                                 _mm_loadu_si128((const __m128i *)(w + bb + o)), 1);
            wv = _mm512_and_si512(_mm512_srlv_epi64(_mm512_permutexvar_epi64(dup, _mm512_castsi256_si512(q2)), sh),
                                  _mm512_set1_epi8(0xF));
            if (!one) wv = _mm512_sub_epi8(wv, _mm512_set1_epi8(8));
        }
        if (one) {
            int32_t a0, a1;
            memcpy(&a0, w, 4);
            memcpy(&a1, w + bb, 4);
            W = _mm_cvtph_ps(_mm_insert_epi32(_mm_cvtsi32_si128(a0), a1, 1));
        } else {
            uint16_t h0, h1;
            memcpy(&h0, w, 2);
            memcpy(&h1, w + bb, 2);
            W = _mm_cvtph_ps(_mm_cvtsi64_si128((long long)h0 | (long long)h1 << 32));
        }
        __m512i u = one ? wv : _mm512_abs_epi8(wv);
        __mmask64 neg = one ? 0 : _mm512_movepi8_mask(wv);
        for (int r = 0; r < R; r++) {
            const uint8_t *xr = xq + (size_t)r * xs;
            __m512i xv = _mm512_loadu_si512((const void *)(xr + 32 * b));
            if (!one) xv = _mm512_mask_sub_epi8(xv, neg, _mm512_setzero_si512(), xv);
            __m512 f = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), u, xv));
            __m128 X = _mm_loadu_ps((const float *)(xr + 32 * nb) + 2 * b), P = _mm_mul_ps(W, X);
            acc[r] = _mm256_fmadd_ps(_mm256_broadcastss_ps(P), _mm512_castps512_ps256(f), acc[r]);
            acc[r] = _mm256_fmadd_ps(_mm256_broadcastss_ps(_mm_movehl_ps(P, P)),
                                     _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(f), 1)), acc[r]);
            if (one) {
                __m128 Wh = _mm_movehdup_ps(W), Xh = _mm_movehdup_ps(X); /* lanes 1, 3 -> 0, 2 */
                sm[r] = fmaf(_mm_cvtss_f32(Wh), _mm_cvtss_f32(Xh), sm[r]);
                sm[r] = fmaf(_mm_cvtss_f32(_mm_movehl_ps(Wh, Wh)), _mm_cvtss_f32(_mm_movehl_ps(Xh, Xh)), sm[r]);
            }
        }
    }
    if (b < nb) { /* the last block alone */
        __m256i wv = SFX(wblock)(w, t), u = one ? wv : _mm256_sign_epi8(wv, wv);
        float dw, mw;
        SFX(wscales)(w, one, &dw, &mw);
        for (int r = 0; r < R; r++) SFX(step32)(wv, u, dw, mw, one, xq + (size_t)r * xs, nb, b, &acc[r], &sm[r]);
    }
    for (int r = 0; r < R; r++) y[r * ys] = (SFX(hsum)(acc[r]) + sm[r]) + bias;
}
/* Four activation rows at once for the batched path: the same per-row operations in the
 * same order as dot32_512, but with the rows' scales transposed (dsT: per block, the d of
 * the four rows, then their s) so that dw * dx and the fma(m, s) chains of the four rows
 * are one 4-lane operation each instead of four scalar ones. */
TGT static inline AI void SFX(rows4t)(float *y, int64_t ys, const uint8_t *w, const sq_dtype t, const uint8_t *xq,
                                      size_t xs, const float *dsT, int64_t nb, float bias) {
    const int one = t == SQ_Q4_1;
    const size_t bb = t == SQ_Q4_0 ? 18 : t == SQ_Q4_1 ? 20 : 34;
    const __m512i sh = _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4), dup = _mm512_setr_epi64(0, 1, 0, 1, 2, 3, 2, 3);
    __m256 acc[4];
    __m128 SM = _mm_setzero_ps();
    for (int r = 0; r < 4; r++) acc[r] = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b < nb; b += 2, w += 2 * bb) {
        const int pair = b + 2 <= nb;
        __m512i wv;
        __m128 W;
        if (pair) {
            if (t == SQ_Q8_0) {
                wv = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(w + 2))),
                                        _mm256_loadu_si256((const __m256i *)(w + bb + 2)), 1);
            } else {
                const int o = one ? 4 : 2;
                __m256i q2 = _mm256_inserti128_si256(
                    _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(w + o))),
                    _mm_loadu_si128((const __m128i *)(w + bb + o)), 1);
                wv = _mm512_and_si512(
                    _mm512_srlv_epi64(_mm512_permutexvar_epi64(dup, _mm512_castsi256_si512(q2)), sh),
                    _mm512_set1_epi8(0xF));
                if (!one) wv = _mm512_sub_epi8(wv, _mm512_set1_epi8(8));
            }
        } else { /* the last block alone, in the low half; the high half is zero */
            wv = _mm512_castsi256_si512(SFX(wblock)(w, t));
            wv = _mm512_inserti64x4(wv, _mm256_setzero_si256(), 1);
        }
        {
            uint32_t a0 = 0, a1 = 0;
            if (one) {
                memcpy(&a0, w, 4);
                if (pair) memcpy(&a1, w + bb, 4);
            } else {
                uint16_t h0, h1 = 0;
                memcpy(&h0, w, 2);
                if (pair) memcpy(&h1, w + bb, 2);
                a0 = h0, a1 = h1;
            }
            W = _mm_cvtph_ps(_mm_cvtsi64_si128((long long)((uint64_t)a0 | (uint64_t)a1 << 32))); /* dw, mw per block */
        }
        __m512i u = one ? wv : _mm512_abs_epi8(wv);
        __mmask64 neg = one ? 0 : _mm512_movepi8_mask(wv);
        if (pair) { /* both blocks in one 512-bit dot per row, then the halves in order */
            const float *T0 = dsT + (size_t)b * 8, *T1 = T0 + 8;
            __m128 W1 = _mm_movehl_ps(W, W);
            __m256 D0 = _mm256_castps128_ps256(_mm_mul_ps(_mm_set1_ps(_mm_cvtss_f32(W)), _mm_loadu_ps(T0)));
            __m256 D1 = _mm256_castps128_ps256(_mm_mul_ps(_mm_set1_ps(_mm_cvtss_f32(W1)), _mm_loadu_ps(T1)));
            if (one) {
                SM = _mm_fmadd_ps(_mm_set1_ps(_mm_cvtss_f32(_mm_movehdup_ps(W))), _mm_loadu_ps(T0 + 4), SM);
                SM = _mm_fmadd_ps(_mm_set1_ps(_mm_cvtss_f32(_mm_movehdup_ps(W1))), _mm_loadu_ps(T1 + 4), SM);
            }
            for (int r = 0; r < 4; r++) {
                __m512i xv = _mm512_loadu_si512((const void *)(xq + (size_t)r * xs + 32 * b));
                if (!one) xv = _mm512_mask_sub_epi8(xv, neg, _mm512_setzero_si512(), xv);
                __m512 f = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), u, xv));
                __m256i ri = _mm256_set1_epi32(r);
                acc[r] = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(D0, ri), _mm512_castps512_ps256(f), acc[r]);
                acc[r] = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(D1, ri),
                                         _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(f), 1)), acc[r]);
            }
            continue;
        }
        for (int h = 0; h < 1; h++) {
            const float *T4 = dsT + (size_t)(b + h) * 8;
            __m128 D = _mm_mul_ps(_mm_set1_ps(_mm_cvtss_f32(h ? _mm_movehl_ps(W, W) : W)), _mm_loadu_ps(T4));
            if (one) SM = _mm_fmadd_ps(_mm_set1_ps(_mm_cvtss_f32(_mm_movehdup_ps(h ? _mm_movehl_ps(W, W) : W))),
                                       _mm_loadu_ps(T4 + 4), SM);
            __m256 D8 = _mm256_castps128_ps256(D);
            for (int r = 0; r < 4; r++) {
                const uint8_t *xr = xq + (size_t)r * xs;
                __m256i xv = _mm256_loadu_si256((const __m256i *)(xr + 32 * (b + h)));
                __m256i uh = h ? _mm512_extracti64x4_epi64(u, 1) : _mm512_castsi512_si256(u);
                if (!one) xv = _mm256_mask_sub_epi8(xv, (__mmask32)(neg >> (32 * h)), _mm256_setzero_si256(), xv);
                __m256 f = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(_mm256_setzero_si256(), uh, xv));
                acc[r] = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(D8, _mm256_set1_epi32(r)), f, acc[r]);
            }
        }
    }
    float sm[4];
    _mm_storeu_ps(sm, SM);
    for (int r = 0; r < 4; r++) y[r * ys] = (SFX(hsum)(acc[r]) + (one ? sm[r] : 0.0f)) + bias;
}

TGT void SFX(sq__dot_q8_rows4t)(float *y, int64_t ys, const uint8_t *w, sq_dtype t, const uint8_t *xq, size_t xs,
                                const float *dsT, int64_t nb, float bias) {
    switch (t) {
    case SQ_Q4_0: SFX(rows4t)(y, ys, w, SQ_Q4_0, xq, xs, dsT, nb, bias); break;
    case SQ_Q4_1: SFX(rows4t)(y, ys, w, SQ_Q4_1, xq, xs, dsT, nb, bias); break;
    default: SFX(rows4t)(y, ys, w, SQ_Q8_0, xq, xs, dsT, nb, bias); break;
    }
}

/* Batch 1, 2*P consecutive weight rows (outputs) against one activation row, for Q4_0, Q4_1
 * and Q8_0: the x block is loaded (into both 256-bit halves) once per block for all the rows,
 * and one 512-bit vector holds two rows' block b, so one dot, one conversion and one fma
 * serve two outputs. Per output the operations are those of dot32 in the same order: lane l
 * of the 8-lane accumulator gets fma(dw * dx, (float)p_l, acc_l) block after block, the min
 * term fma(m, s, sm) likewise (in the odd lanes of an 8-lane vector holding d, m of 4 rows),
 * then hsum8 + sm + bias. The integer p_l is the reference's exact sum; for the signed types
 * it comes from unsigned weights (Q4_0: the nibble, Q8_0: w + 128) with the dot's
 * accumulator started at -(offset * the x lane's sum), computed once per x block. */
/* How far past the next group's matching position to fetch (bytes): 512 measured a little
 * better than 0 or 2048 on the AVX-512 Xeon. */
#ifndef PFD
#define PFD 512
#endif
TGT static inline AI void SFX(outs)(float *y, const uint8_t *w, size_t rb, const sq_dtype t, const uint8_t *xr,
                                    int64_t nb, const float *bias, const int P) {
    const int one = t == SQ_Q4_1;
    const size_t bb = t == SQ_Q4_0 ? 18 : t == SQ_Q4_1 ? 20 : 34;
    /* Q4_0/Q4_1: the nibbles are masked in place, not shifted: the upper 16 bytes of each half
     * keep q & 0xF0 = 16 x the high nibble, so int32 lanes 4-7 of a half hold 16 x the
     * reference's exact sum (|16 p| < 2^24: the conversion is exact), and those lanes take
     * the scale product divided by 16 (exact: a power of two, and dw * dx is 0 or >= 2^-48),
     * so fma(d / 16, 16 p, acc) rounds the same real number as fma(d, p, acc). Q4_0's offset 8
     * becomes 128 in those bytes to match. */
    const __m512i m4 = _mm512_setr_epi64(0x0F0F0F0F0F0F0F0Fll, 0x0F0F0F0F0F0F0F0Fll, (long long)0xF0F0F0F0F0F0F0F0ull,
                                         (long long)0xF0F0F0F0F0F0F0F0ull, 0x0F0F0F0F0F0F0F0Fll, 0x0F0F0F0F0F0F0F0Fll,
                                         (long long)0xF0F0F0F0F0F0F0F0ull, (long long)0xF0F0F0F0F0F0F0F0ull);
    const __m512i off = t == SQ_Q8_0 ? _mm512_set1_epi8((char)0x80)
                                     : _mm512_setr_epi64(0x0808080808080808ll, 0x0808080808080808ll,
                                                         (long long)0x8080808080808080ull, (long long)0x8080808080808080ull,
                                                         0x0808080808080808ll, 0x0808080808080808ll,
                                                         (long long)0x8080808080808080ull, (long long)0x8080808080808080ull);
    const __m512 sixteenth = _mm512_set1_ps(0.0625f);
    const int nib = t != SQ_Q8_0;
    /* Which lane of the scale vector each 256-bit half takes: Q4_1 has d, m pairs (d of row r in
     * lane 2r), the others one d per row (lane r). */
    const int st = one ? 2 : 1;
    /* P = 4 (8 outputs): the scales of all 8 rows are one vector of 16 lanes (row r's d
     * product in lane st * r), converted and multiplied once per block; P = 2: one group of 4. */
    const int wide = P == 4;
    __m512i pick[4];
    for (int p = 0; p < P && p < 4; p++) { /* lanes 4-7 of each half from the second table (index bit 4) */
        int a = wide ? st * 2 * p : st * (2 * p % 4), c = wide ? st * (2 * p + 1) : st * ((2 * p + 1) % 4);
        int hi = nib ? 16 : 0;
        pick[p] = _mm512_setr_epi32(a, a, a, a, a + hi, a + hi, a + hi, a + hi, c, c, c, c, c + hi, c + hi, c + hi, c + hi);
    }
    __m512 SM16 = _mm512_setzero_ps();
    const float *ds = (const float *)(xr + 32 * nb);
    __m512 acc[4];
    __m256 SM[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int p = 0; p < P; p++) acc[p] = _mm512_setzero_ps();
    /* The next 2P rows follow these in the file: fetch them ahead, spread over this pass's
     * blocks (2P*bb bytes a block), so the next group's first loads do not wait on memory. */
    const uintptr_t pf = (uintptr_t)w + (size_t)(2 * P) * rb; /* past the matrix's end: a prefetch never faults */
    const size_t pstep = (size_t)(2 * P) * bb;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *wb = w + (size_t)b * bb;
#ifndef SQ_Q8_NO_PF
        for (size_t k = 0; k < pstep; k += 64) _mm_prefetch((const char *)(pf + (size_t)b * pstep + k + PFD), PF_HINT);
#endif
        __m512i xv = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(xr + 32 * b)));
        __m512i corr = _mm512_setzero_si512();
        if (!one) corr = _mm512_sub_epi32(corr, _mm512_dpbusd_epi32(_mm512_setzero_si512(), off, xv));
        __m256 D[2];
        __m512 D16 = _mm512_setzero_ps();
        if (wide) { /* rows 0..7: one conversion and one multiply */
            if (one) {
                /* row r's 4 bytes (d, m) into dword lane r of two 128-bit halves, straight
                 * from memory (the compiler makes these vpinsrd m32); packing the pairs in
                 * integer registers first cost more shuffles */
                __m128i h[2];
                for (int k = 0; k < 2; k++) {
                    const uint8_t *w0 = wb + (size_t)(4 * k) * rb;
                    h[k] = _mm_broadcastd_epi32(_mm_loadu_si32(w0));
                    h[k] = _mm_mask_broadcastd_epi32(h[k], 0x2, _mm_loadu_si32(w0 + rb));
                    h[k] = _mm_mask_broadcastd_epi32(h[k], 0x4, _mm_loadu_si32(w0 + 2 * rb));
                    h[k] = _mm_mask_broadcastd_epi32(h[k], 0x8, _mm_loadu_si32(w0 + 3 * rb));
                }
                __m512 W16 = _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(h[0]), h[1], 1));
                double xd;
                memcpy(&xd, ds + 2 * b, 8);
                __m512 X16 = _mm512_castpd_ps(_mm512_set1_pd(xd));
                D16 = _mm512_mul_ps(W16, X16);
                SM16 = _mm512_fmadd_ps(W16, X16, SM16);
            } else {
                uint64_t q[2];
                for (int k = 0; k < 2; k++) {
                    uint16_t h0, h1, h2, h3;
                    const uint8_t *w0 = wb + (size_t)(4 * k) * rb;
                    memcpy(&h0, w0, 2), memcpy(&h1, w0 + rb, 2), memcpy(&h2, w0 + 2 * rb, 2), memcpy(&h3, w0 + 3 * rb, 2);
                    q[k] = h0 | (uint64_t)h1 << 16 | (uint64_t)h2 << 32 | (uint64_t)h3 << 48;
                }
                __m256 W8 = _mm256_cvtph_ps(_mm_set_epi64x((long long)q[1], (long long)q[0]));
                D16 = _mm512_castps256_ps512(_mm256_mul_ps(W8, _mm256_set1_ps(ds[2 * b])));
            }
        }
        const __m512 D16s = nib ? _mm512_mul_ps(D16, sixteenth) : D16;
        __m256 Ds[2];
        for (int g = 0; g < (wide ? 0 : (P + 1) / 2); g++) { /* scales of rows 4g..4g+3 */
            const uint8_t *w0 = wb + (size_t)(4 * g) * rb;
            if (one) {
                int32_t a0, a1, a2, a3;
                memcpy(&a0, w0, 4), memcpy(&a1, w0 + rb, 4), memcpy(&a2, w0 + 2 * rb, 4), memcpy(&a3, w0 + 3 * rb, 4);
                __m256 W8 = _mm256_cvtph_ps(_mm_setr_epi32(a0, a1, a2, a3));
                __m256 X8 = _mm256_castpd_ps(_mm256_broadcast_sd((const double *)(ds + 2 * b)));
                D[g] = _mm256_mul_ps(W8, X8);
                SM[g] = _mm256_fmadd_ps(W8, X8, SM[g]);
            } else {
                uint16_t h0, h1, h2, h3;
                memcpy(&h0, w0, 2), memcpy(&h1, w0 + rb, 2), memcpy(&h2, w0 + 2 * rb, 2), memcpy(&h3, w0 + 3 * rb, 2);
                __m128 W4 = _mm_cvtph_ps(_mm_setr_epi16((short)h0, (short)h1, (short)h2, (short)h3, 0, 0, 0, 0));
                D[g] = _mm256_castps128_ps256(_mm_mul_ps(W4, _mm_set1_ps(ds[2 * b])));
            }
            Ds[g] = nib ? _mm256_mul_ps(D[g], _mm512_castps512_ps256(sixteenth)) : D[g];
        }
        for (int p = 0; p < P; p++) {
            const uint8_t *wa = wb + (size_t)(2 * p) * rb, *wc = wa + rb;
            __m512i wv;
            if (t == SQ_Q8_0) {
                wv = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(wa + 2))),
                                        _mm256_loadu_si256((const __m256i *)(wc + 2)), 1);
                wv = _mm512_xor_si512(wv, off);
            } else {
                /* row a's 16 nibble bytes in 128-bit lanes 0-1, row c's in 2-3 (broadcasts from
                 * memory: load uops, no shuffle), lanes 1 and 3 then shifted to the high nibbles */
                const int o = one ? 4 : 2;
                __m512i q2 = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(wa + o)));
                q2 = _mm512_mask_broadcast_i32x4(q2, 0xFF00, _mm_loadu_si128((const __m128i *)(wc + o)));
                wv = _mm512_and_si512(q2, m4);
            }
            __m512i pi = _mm512_dpbusd_epi32(corr, wv, xv);
            __m512 Dt = wide ? D16 : _mm512_castps256_ps512(D[p / 2]), Dp;
            if (nib)
                Dp = _mm512_permutex2var_ps(Dt, pick[p], wide ? D16s : _mm512_castps256_ps512(Ds[p / 2]));
            else
                Dp = _mm512_permutexvar_ps(pick[p], Dt);
            acc[p] = _mm512_fmadd_ps(Dp, _mm512_cvtepi32_ps(pi), acc[p]);
        }
    }
    float sm[2][8] = {{0}};
    if (one && wide) _mm512_storeu_ps(sm[0], SM16); /* row r's sum in lane 2r + 1: sm[r / 4][2 * (r % 4) + 1] */
    if (one && !wide)
        for (int g = 0; g < (P + 1) / 2; g++) _mm256_storeu_ps(sm[g], SM[g]);
    for (int p = 0; p < P; p++) {
        const int r = 2 * p;
        __m256 lo = _mm512_castps512_ps256(acc[p]);
        __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[p]), 1));
        y[r] = (SFX(hsum)(lo) + sm[r / 4][2 * (r % 4) + 1]) + (bias ? bias[r] : 0.0f);
        y[r + 1] = (SFX(hsum)(hi) + sm[r / 4][2 * (r % 4) + 3]) + (bias ? bias[r + 1] : 0.0f);
    }
}

TGT void SFX(sq__dot_q8_outs)(float *y, const uint8_t *w, size_t rb, sq_dtype t, const uint8_t *xq, int64_t nb,
                              const float *bias, int outs) {
#define OUTS(T, P) SFX(outs)(y, w, rb, T, xq, nb, bias, P)
    if (outs == 8) {
        switch (t) {
        case SQ_Q4_0: OUTS(SQ_Q4_0, 4); break;
        case SQ_Q4_1: OUTS(SQ_Q4_1, 4); break;
        default: OUTS(SQ_Q8_0, 4); break;
        }
    } else {
        switch (t) {
        case SQ_Q4_0: OUTS(SQ_Q4_0, 2); break;
        case SQ_Q4_1: OUTS(SQ_Q4_1, 2); break;
        default: OUTS(SQ_Q8_0, 2); break;
        }
    }
#undef OUTS
}

#define SFX_DOT32 SFX(dot32_512)
#define SFX_FAST(T) ((T) == SQ_Q4_0 || (T) == SQ_Q4_1 || (T) == SQ_Q8_0)
#else
#define SFX_DOT32 SFX(dot32)
#define SFX_FAST(T) 0
#endif


/* The 32 4-bit values j of a Q4_K/Q5_K block (j = 2g + h: low nibbles of q for h = 0, high
 * for h = 1), with Q5_K's fifth bit j of qh on top: one copy for every kernel below. */
TGT static inline AI __m256i SFX(q45k_values)(__m256i q, __m256i qh, int h, int j, int five) {
    const __m256i m4 = _mm256_set1_epi8(0xF), one8 = _mm256_set1_epi8(1);
    __m256i v = _mm256_and_si256(h ? _mm256_srli_epi16(q, 4) : q, m4);
    if (five)
        v = _mm256_or_si256(v, _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(j)), one8), 4));
    return v;
}

/* The sums of 4 vectors of 8 int32 lanes as the 4 lanes of one (integer: any order is exact). */
TGT static inline AI __m128i SFX(hsum4i)(__m256i a, __m256i b, __m256i c, __m256i d) {
    __m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
    return _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
}

/* Q4_K/Q5_K, one weight block against Q8_K's block x: the exact scaled sum of dotk (returned,
 * 8 int32 lanes) and the exact min sum (*imin, 4 int32 lanes). The 6-bit scales and mins come
 * out of their 12 bytes with word-wide masks and shifts (bytes 0-7: the scales, 8-15: the
 * mins); bs2 holds x's 8 sums of 32 values (bsum[2j] + bsum[2j+1]) as int16. */
TGT static inline AI __m256i SFX(q4k_block)(const uint8_t *w, const int five, const sq__q8k *x, __m128i bs2,
                                           __m128i *imin) {
    uint32_t u[4];
    memcpy(u, w + 4, 12);
    const uint32_t k1 = 0x3f3f3f3f, k2 = 0x0f0f0f0f, k3 = 0x03030303;
    u[3] = ((u[2] >> 4) & k2) | (((u[1] >> 6) & k3) << 4);
    const uint32_t mlo = u[1] & k1;
    u[1] = (u[2] & k2) | (((u[0] >> 6) & k3) << 4);
    u[2] = mlo;
    u[0] &= k1;
    __m128i sm8 = _mm_loadu_si128((const __m128i *)u);
    *imin = _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_srli_si128(sm8, 8)), bs2);
    __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm8));
    const uint8_t *qs = w + 16 + 32 * five;
    __m256i qh = five ? _mm256_loadu_si256((const __m256i *)(w + 16)) : _mm256_setzero_si256();
    __m256i isv = _mm256_setzero_si256();
    for (int g = 0; g < 4; g++) {
        __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * g));
        for (int h = 0; h < 2; h++) {
            int j = 2 * g + h;
            __m256i v = SFX(q45k_values)(q, qh, h, j, five);
            __m256i xv = _mm256_loadu_si256((const __m256i *)(x->q + 32 * j));
            /* scale j (int16 lane j) in every lane: bytes 2j, 2j+1 */
            __m256i sj = _mm256_shuffle_epi8(sc16, _mm256_set1_epi16((short)(2 * j | (2 * j + 1) << 8)));
            isv = DOTWS(isv, _mm256_maddubs_epi16(v, xv), sj);
        }
    }
    return isv;
}

/* Q6_K, one weight block against x: dotk's exact scaled sum (8 int32 lanes), the -32 offset
 * from x's sums (bs: its 16 bsum). */
TGT static inline AI __m256i SFX(q6k_block)(const uint8_t *w, const sq__q8k *x, __m256i bs) {
    __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + 192)));
    __m256i isv = _mm256_mullo_epi32(_mm256_madd_epi16(sc16, bs), _mm256_set1_epi32(-32));
    for (int h = 0; h < 2; h++) {
        __m256i c[4];
        sq__q6k_unpack_half(w, h, c);
        __m256i sh = h ? _mm256_permute4x64_epi64(sc16, 0xEE) : _mm256_permute4x64_epi64(sc16, 0x44);
        for (int k = 0; k < 4; k++) {
            __m256i xv = _mm256_loadu_si256((const __m256i *)(x->q + 128 * h + 32 * k));
            /* int16 lane 2k in the low 128 bits, 2k+1 in the high: bytes 4k, 4k+1 and 4k+2, 4k+3 */
            __m256i pk = _mm256_setr_epi16((short)(4 * k | (4 * k + 1) << 8), (short)(4 * k | (4 * k + 1) << 8),
                                           (short)(4 * k | (4 * k + 1) << 8), (short)(4 * k | (4 * k + 1) << 8),
                                           (short)(4 * k | (4 * k + 1) << 8), (short)(4 * k | (4 * k + 1) << 8),
                                           (short)(4 * k | (4 * k + 1) << 8), (short)(4 * k | (4 * k + 1) << 8),
                                           (short)((4 * k + 2) | (4 * k + 3) << 8), (short)((4 * k + 2) | (4 * k + 3) << 8),
                                           (short)((4 * k + 2) | (4 * k + 3) << 8), (short)((4 * k + 2) | (4 * k + 3) << 8),
                                           (short)((4 * k + 2) | (4 * k + 3) << 8), (short)((4 * k + 2) | (4 * k + 3) << 8),
                                           (short)((4 * k + 2) | (4 * k + 3) << 8), (short)((4 * k + 2) | (4 * k + 3) << 8));
            isv = DOTWS(isv, _mm256_maddubs_epi16(c[k], xv), _mm256_shuffle_epi8(sh, pk));
        }
    }
    return isv;
}

/* One activation row against one weight row of 256-value blocks: the same block sums as the
 * several-outputs kernel below (q4k_block, q6k_block), one row at a time. The integer sums are
 * the reference's exact ones, formed differently: u8 x s8 pairs into int16 (maddubs: at most
 * 2 * 63 * 127, no saturation), then times the 16-bit sub-block scale into int32 (DOTWS);
 * Q6_K's -32 offset as -32 * sum(scale * the x block's sum of 16), from Q8_K's bsum. The
 * float steps per block are the reference's. */
TGT static inline AI float SFX(dotk)(const uint8_t *w, const sq_dtype t, const sq__q8k *x, int64_t nb) {
    const int six = t == SQ_Q6_K, five = t == SQ_Q5_K;
    const size_t bb = six ? 210 : five ? 176 : 144;
    float acc = 0, mn = 0;
    for (int64_t b = 0; b < nb; b++, w += bb, x++) {
        __m256i bs = _mm256_loadu_si256((const __m256i *)x->bsum);
        if (six) {
            __m256i isv = SFX(q6k_block)(w, x, bs);
            acc = fmaf(SFX(h2f)(w + 208) * x->d, (float)SFX(hsumi)(isv), acc);
            mn = fmaf(0.0f, 0.0f, mn);
        } else {
            __m256i p = _mm256_madd_epi16(bs, _mm256_set1_epi16(1));
            __m128i bs2 = _mm_packs_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1)), im;
            __m256i isv = SFX(q4k_block)(w, five, x, bs2, &im);
            im = _mm_hadd_epi32(im, im);
            int32_t imin = _mm_cvtsi128_si32(_mm_hadd_epi32(im, im));
            acc = fmaf(SFX(h2f)(w) * x->d, (float)SFX(hsumi)(isv), acc);
            mn = fmaf(SFX(h2f)(w + 2) * x->d, (float)imin, mn);
        }
    }
    return acc - mn;
}

/* Batch 1, 4 consecutive weight rows (outputs) of Q4_K, Q5_K or Q6_K against one Q8_K row:
 * x's block sums are formed once per block for the four rows, the four rows' integer sums
 * are reduced together (one transposing hadd instead of four horizontal sums), and the float
 * steps of the four rows are one 4-lane operation each: lane r gets acc = fma(dw * dx,
 * (float)isum, acc) and mn = fma(dmin * dx, (float)imin, mn) block after block (Q6_K: mn =
 * fma(0, 0, mn)), then acc - mn + bias: per output the operations of dotk, in its order. */
TGT static inline AI void SFX(outsk)(float *y, const uint8_t *w, size_t rb, const sq_dtype t, const sq__q8k *x,
                                     int64_t nb, const float *bias) {
    const int six = t == SQ_Q6_K, five = t == SQ_Q5_K;
    const size_t bb = six ? 210 : five ? 176 : 144;
    __m128 ACC = _mm_setzero_ps(), MN = _mm_setzero_ps();
    const uintptr_t pf = (uintptr_t)w + 4 * rb; /* the next 4 rows; a prefetch never faults */
    const size_t pstep = 4 * bb;
    for (int64_t b = 0; b < nb; b++, x++) {
        const uint8_t *wb = w + (size_t)b * bb;
#ifndef SQ_Q8_NO_PF
        for (size_t k = 0; k < pstep; k += 64) _mm_prefetch((const char *)(pf + (size_t)b * pstep + k + PFD), PF_HINT);
#endif
        __m256i bs = _mm256_loadu_si256((const __m256i *)x->bsum);
        __m256i isv[4];
        __m128 X = _mm_set1_ps(x->d);
        if (six) {
            for (int r = 0; r < 4; r++) isv[r] = SFX(q6k_block)(wb + (size_t)r * rb, x, bs);
            uint16_t h0, h1, h2, h3;
            memcpy(&h0, wb + 208, 2), memcpy(&h1, wb + rb + 208, 2), memcpy(&h2, wb + 2 * rb + 208, 2);
            memcpy(&h3, wb + 3 * rb + 208, 2);
            __m128 DD = _mm_mul_ps(_mm_cvtph_ps(_mm_setr_epi16((short)h0, (short)h1, (short)h2, (short)h3, 0, 0, 0, 0)), X);
            ACC = _mm_fmadd_ps(DD, _mm_cvtepi32_ps(SFX(hsum4i)(isv[0], isv[1], isv[2], isv[3])), ACC);
            MN = _mm_fmadd_ps(_mm_setzero_ps(), _mm_setzero_ps(), MN);
        } else {
            __m256i p = _mm256_madd_epi16(bs, _mm256_set1_epi16(1));
            __m128i bs2 = _mm_packs_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
            __m128i im[4];
            for (int r = 0; r < 4; r++) isv[r] = SFX(q4k_block)(wb + (size_t)r * rb, five, x, bs2, &im[r]);
            int32_t a0, a1, a2, a3;
            memcpy(&a0, wb, 4), memcpy(&a1, wb + rb, 4), memcpy(&a2, wb + 2 * rb, 4), memcpy(&a3, wb + 3 * rb, 4);
            __m256 P = _mm256_mul_ps(_mm256_cvtph_ps(_mm_setr_epi32(a0, a1, a2, a3)), _mm256_set1_ps(x->d));
            P = _mm256_permutevar8x32_ps(P, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7)); /* d*dx of 4 rows, then dmin*dx */
            __m128i imin = _mm_hadd_epi32(_mm_hadd_epi32(im[0], im[1]), _mm_hadd_epi32(im[2], im[3]));
            ACC = _mm_fmadd_ps(_mm256_castps256_ps128(P), _mm_cvtepi32_ps(SFX(hsum4i)(isv[0], isv[1], isv[2], isv[3])), ACC);
            MN = _mm_fmadd_ps(_mm256_extractf128_ps(P, 1), _mm_cvtepi32_ps(imin), MN);
        }
    }
    float r4[4];
    _mm_storeu_ps(r4, _mm_sub_ps(ACC, MN));
    for (int r = 0; r < 4; r++) y[r] = r4[r] + (bias ? bias[r] : 0.0f);
}

TGT void SFX(sq__dot_q8_outsk)(float *y, const uint8_t *w, size_t rb, sq_dtype t, const void *xq, int64_t n,
                               const float *bias) {
    switch (t) {
    case SQ_Q4_K: SFX(outsk)(y, w, rb, SQ_Q4_K, xq, n / 256, bias); break;
    case SQ_Q5_K: SFX(outsk)(y, w, rb, SQ_Q5_K, xq, n / 256, bias); break;
    default: SFX(outsk)(y, w, rb, SQ_Q6_K, xq, n / 256, bias); break;
    }
}

/* The type as a constant in each case, so each loop is compiled for its own type. */
#define SFX_DISPATCH32(CALL)                                                                                           \
    switch (t) {                                                                                                       \
    case SQ_Q4_0: CALL(SQ_Q4_0); break;                                                                                \
    case SQ_Q4_1: CALL(SQ_Q4_1); break;                                                                                \
    case SQ_Q5_0: CALL(SQ_Q5_0); break;                                                                                \
    case SQ_Q5_1: CALL(SQ_Q5_1); break;                                                                                \
    default: CALL(SQ_Q8_0); break;                                                                                     \
    }

TGT float SFX(sq__dot_q8)(const uint8_t *w, sq_dtype t, const void *xq, int64_t n) {
    if (t == SQ_Q4_K || t == SQ_Q5_K || t == SQ_Q6_K) {
        switch (t) {
        case SQ_Q4_K: return SFX(dotk)(w, SQ_Q4_K, xq, n / 256);
        case SQ_Q5_K: return SFX(dotk)(w, SQ_Q5_K, xq, n / 256);
        default: return SFX(dotk)(w, SQ_Q6_K, xq, n / 256);
        }
    }
    float y;
#define ONE(T) (SFX_FAST(T) ? SFX_DOT32 : SFX(dot32))(&y, 0, w, T, xq, 0, 1, n / 32, 0.0f)
    SFX_DISPATCH32(ONE)
#undef ONE
    /* (dot + 0) is dot for every value but -0, which becomes +0: the rows path adds its bias
     * the same way, so a single dot equals the rows path with a zero bias. */
    return y;
}

TGT void SFX(sq__dot_q8_rows)(float *y, int64_t ys, const uint8_t *w, sq_dtype t, const void *xq, size_t xs,
                              int rows, int64_t n, float bias) {
    const uint8_t *x = xq;
    if (t == SQ_Q4_K || t == SQ_Q5_K || t == SQ_Q6_K) {
        for (int r = 0; r < rows; r++) y[r * ys] = SFX(sq__dot_q8)(w, t, x + (size_t)r * xs, n) + bias;
        return;
    }
    int r = 0;
#define FOUR(T) (SFX_FAST(T) ? SFX_DOT32 : SFX(dot32))(y + r * ys, ys, w, T, x + (size_t)r * xs, xs, 4, n / 32, bias)
#define ONE(T) (SFX_FAST(T) ? SFX_DOT32 : SFX(dot32))(y + r * ys, ys, w, T, x + (size_t)r * xs, xs, 1, n / 32, bias)
    for (; r + 4 <= rows; r += 4) SFX_DISPATCH32(FOUR)
    for (; r < rows; r++) SFX_DISPATCH32(ONE)
#undef FOUR
#undef ONE
}

#undef SFX_DISPATCH32
#undef SFX_DOT32
#undef SFX_FAST
