/* BF16- and F16-weight matmul for every CPU with AVX2+FMA+F16C (AVX-512 ones too): the
 * weights are widened to floats (exactly) and x stays in float. It runs for every row count, so a row's result
 * never depends on the batch it is in; see kernels.h for why AVX512-BF16's vdpbf16ps (x
 * rounded to bf16) and oneDNN are not used.
 *
 * One summation order everywhere: each output y[r][o] has one VL-lane accumulator (8 lanes
 * on AVX2, 16 where AVX-512F is available) that runs over the full groups of VL inputs in
 * order (one FMA per group), then the lanes are summed by v_hsum, then the tail inputs
 * (in % VL) are added one by one, then the bias. The
 * GEMV (1-3 rows) and the GEMM (4+ rows) below both keep that order, so a row's result is
 * bit-identical whichever of them computed it, at any batch size and thread count.
 *
 *  - GEMV: four weight rows at a time, each x vector shared by four FMAs, with software
 *    prefetch a fixed distance ahead along every weight row (the hardware prefetchers stop
 *    at each 4 KiB page of the mmap'd weights and never see the next block's rows coming).
 *  - GEMM: blocks of 128 x rows and 1024 inputs (the x chunk stays in L2); for each group of
 *    six weight rows the chunk is widened once into a float panel (L1), then a register tile
 *    runs over it: 4 x rows by 6 outputs with AVX-512 (24 accumulators in 29 of the 32
 *    registers, 10 loads per 24 FMAs), 2 x 6 on AVX2 (12 accumulators, 15 of 16 registers).
 *    The accumulators of a 48-output slice (36 on AVX2) are parked between input chunks,
 *    which keeps the order above exactly; at the end, with AVX-512, sixteen outputs' lanes
 *    are summed at once by v_hsum16, which adds the same pairs as v_hsum (a tile stores its
 *    first step on neighbouring output pairs after the last chunk, half the vectors). */
#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "matmul_avx2.h"
#include "simd.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

/* The lane width: 8 floats (ymm) on AVX2, 16 (zmm) where the compiler may use AVX-512F.
 * Every kernel below goes through these, so the GEMV and the GEMM keep one order whichever
 * width this build has (the width, and so the bits, may differ between CPUs). */
#if defined(__AVX512F__)
typedef __m512 vf;
enum { VL = 16 };
static inline vf v_zero(void) { return _mm512_setzero_ps(); }
static inline vf v_load(const float *p) { return _mm512_loadu_ps(p); }
static inline vf v_load_a(const float *p) { return _mm512_load_ps(p); }
static inline void v_store_a(float *p, vf v) { _mm512_store_ps(p, v); }
static inline vf v_fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline vf v_load_bf16(const uint16_t *p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}
static inline vf v_load_f16(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
/* One fixed tree: the halves, then sq__hsum256's order. */
static inline float v_hsum(vf a) {
    return sq__hsum256(_mm256_add_ps(_mm512_castps512_ps256(a), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1))));
}
/* v_hsum of sixteen vectors at once, the same additions in the same pairs (so the same bits):
 * the 256-bit halves, the 128-bit quarters, lanes i and i+2, lanes 0 and 1, each step on
 * two accumulators' partial sums per instruction. Lane 4q+t of the result is the sum of
 * a[4t+q]. */
/* v_hsum16's first step on one pair: the 256-bit halves of a (lanes 0-7) and of b (8-15) added. */
static inline __m512 v_hsum_pair(__m512 a, __m512 b) {
    return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
}
/* v_hsum16's other steps, on u[m] = v_hsum_pair(a[2m], a[2m+1]). */
static inline __m512 v_hsum16_u(const __m512 u[8]) {
    __m512 v[4], p[2];
    for (int n = 0; n < 4; n++)
        v[n] = _mm512_add_ps(_mm512_shuffle_f32x4(u[2 * n], u[2 * n + 1], 0x88),
                             _mm512_shuffle_f32x4(u[2 * n], u[2 * n + 1], 0xDD));
    for (int k = 0; k < 2; k++)
        p[k] = _mm512_add_ps(_mm512_shuffle_ps(v[2 * k], v[2 * k + 1], 0x44), _mm512_shuffle_ps(v[2 * k], v[2 * k + 1], 0xEE));
    return _mm512_add_ps(_mm512_shuffle_ps(p[0], p[1], 0x88), _mm512_shuffle_ps(p[0], p[1], 0xDD));
}
#define V_KEEP(v) __asm__("" : "+v"(v))
#else
typedef __m256 vf;
enum { VL = 8 };
static inline vf v_zero(void) { return _mm256_setzero_ps(); }
static inline vf v_load(const float *p) { return _mm256_loadu_ps(p); }
static inline vf v_load_a(const float *p) { return _mm256_load_ps(p); }
static inline void v_store_a(float *p, vf v) { _mm256_store_ps(p, v); }
static inline vf v_fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline vf v_load_bf16(const uint16_t *p) { return sq__load_bf16x8(p); }
static inline vf v_load_f16(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
static inline float v_hsum(vf a) { return sq__hsum256(a); }
#define V_KEEP(v) __asm__("" : "+x"(v))
#endif

/* The GEMM's blocking, per ISA (each *_SET may be given at build time to try another; the
 * values here were the fastest in bench_matmul): AVX-512 machines have 48 KiB of L1 data and
 * 2 MiB of L2 per core, so a 24 KiB panel and a 512 KiB x chunk; AVX2 ones (Zen 3: 32 KiB
 * L1, 512 KiB L2) keep half of each. */
#if defined(__AVX512F__)
#ifndef MM_RB_SET
#define MM_RB_SET 128
#endif
#ifndef MM_KC_SET
#define MM_KC_SET 1024
#endif
#ifndef MM_SB_SET
#define MM_SB_SET 8
#endif
#ifndef MM_RB_LONG_SET
#define MM_RB_LONG_SET 64
#endif
#else
#ifndef MM_RB_SET
#define MM_RB_SET 64
#endif
#ifndef MM_KC_SET
#define MM_KC_SET 512
#endif
#ifndef MM_SB_SET
#define MM_SB_SET 6
#endif
#ifndef MM_RB_LONG_SET
#define MM_RB_LONG_SET MM_RB_SET
#endif
#endif
enum {
    PF_DIST = 2048, /* bytes ahead along each weight row */
    MM_RB = MM_RB_SET, /* x rows per block */
    /* x rows per block when the inputs span several chunks (the 4864-input down projection):
     * every slice reads the whole block once per chunk, and 128 rows of it (2.5 MB) no longer
     * fit L2 beside the parked accumulators. 64 rows: bench_matmul, one thread, 256 rows, down
     * 132 -> 137-140 GFLOP/s; at 128 for the one-chunk shapes (q/o and gate/up lose ~2% at 64). */
    MM_RB_LONG = MM_RB_LONG_SET,
    MM_KC = MM_KC_SET, /* inputs per chunk (a multiple of VL) */
    MM_SB = MM_SB_SET, /* tiles' output groups per slice (48 outputs with AVX-512: 3 x 16 sums) */
};
/* The panel's row stride: one cache line more than the chunk. At exactly MM_KC floats (4 KiB
 * with AVX-512) the six rows' loads of one step all fall in the same L1 set, beside the x rows'
 * lines; one line of padding spreads them over six sets (bench_matmul, one thread, 64 rows:
 * one decoder layer 82% -> 84% of the FMA peak, the 4864-input down projection 77-78% -> 80-82%). */
#ifndef MM_PAD_SET
#define MM_PAD_SET 16
#endif
enum { MM_KS = MM_KC + MM_PAD_SET };

/* The weight types (sq_mm_job's wt): BF16 and F16 are widened exactly (a shift, vcvtph2ps), F32
 * is a plain load. The kernels below are written once over these and inlined three times,
 * once per type (the `wt` arguments are constants at each call of the *_t functions). */
enum { WT_BF16 = 0, WT_F16 = 1, WT_F32 = 2 };
static inline size_t w_esz(int wt) { return wt == WT_F32 ? 4 : 2; }
/* Weight i of the row starting at p. */
static inline const void *w_at(const void *p, size_t i, int wt) { return (const char *)p + i * w_esz(wt); }
static inline __attribute__((always_inline)) vf v_load_w(const void *p, size_t i, int wt) {
    if (wt == WT_F32) return v_load((const float *)p + i);
    return wt == WT_F16 ? v_load_f16((const uint16_t *)p + i) : v_load_bf16((const uint16_t *)p + i);
}
static inline float w_val(const void *p, int t, int wt) {
    if (wt == WT_F32) return ((const float *)p)[t];
    return wt == WT_F16 ? sq_f16_to_f32(((const uint16_t *)p)[t]) : sq_bf16_to_f32(((const uint16_t *)p)[t]);
}

static inline float tail_dot(float s, const float *x, const void *w, int from, int n, int wt) {
    for (int t = from; t < n; t++) s += x[t] * w_val(w, t, wt);
    return s;
}

/* ---- GEMV: 1-3 rows ------------------------------------------------------------------- */

/* Outputs [o0, o1) of nr rows (blocks of four from o0; a block past o1 repeats a row and
 * drops its results). */
static inline __attribute__((always_inline)) void gemv_range_t(float *y, const float *x, int nr, const void *w,
                                                                int in, int out, const float *bias, int o0, int o1,
                                                                int wt) {
    size_t rb = (size_t)in * w_esz(wt);
    const char *wend = (const char *)w_at(w, (size_t)out * in, wt);
    int full = in / VL * VL;
    /* F32: one prefetch per 16 weights, as many as FMAs; they cost more than they bring where
     * the matrix stays in L2 (k/v 896 x 128: 0.86x the unprefetched dot4_f32). */
    const int pf = wt != WT_F32 || (size_t)out * in * 4 > ((size_t)1 << 20);
    for (int o = o0; o < o1; o += 4) {
        const void *wr[4];
        for (int k = 0; k < 4; k++) wr[k] = w_at(w, (size_t)(o + k < out ? o + k : out - 1) * in, wt);
        for (int r = 0; r < nr; r++) {
            const float *xr = x + (size_t)r * in;
            vf a0 = v_zero(), a1 = a0, a2 = a0, a3 = a0;
            int i = 0;
            for (; i < full; i += VL) {
                if (pf && r == 0 && (i & (wt == WT_F32 ? 15 : 31)) == 0) {
                    /* One line per row per 64 bytes read: PF_DIST ahead, continuing into the same
                     * row of the next 4-row block once past this row's end. */
                    size_t off = (size_t)i * w_esz(wt) + PF_DIST;
                    for (int k = 0; k < 4; k++) {
                        const char *p = (const char *)wr[k] + (off < rb ? off : off + 3 * rb);
                        if (p < wend) _mm_prefetch(p, _MM_HINT_T0);
                    }
                }
                vf xv = v_load(xr + i);
                a0 = v_fma(xv, v_load_w(wr[0], i, wt), a0);
                a1 = v_fma(xv, v_load_w(wr[1], i, wt), a1);
                a2 = v_fma(xv, v_load_w(wr[2], i, wt), a2);
                a3 = v_fma(xv, v_load_w(wr[3], i, wt), a3);
            }
            float s[4] = {v_hsum(a0), v_hsum(a1), v_hsum(a2), v_hsum(a3)};
            for (int k = 0; k < 4 && o + k < o1; k++)
                y[(size_t)r * out + o + k] = tail_dot(s[k], xr, wr[k], full, in, wt) + (bias ? bias[o + k] : 0);
        }
    }
}

static void gemv_range(float *y, const float *x, int nr, const void *w, int in, int out, const float *bias, int o0,
                       int o1, int wt) {
    if (wt == WT_F32)
        gemv_range_t(y, x, nr, w, in, out, bias, o0, o1, WT_F32);
    else if (wt == WT_F16)
        gemv_range_t(y, x, nr, w, in, out, bias, o0, o1, WT_F16);
    else
        gemv_range_t(y, x, nr, w, in, out, bias, o0, o1, WT_BF16);
}

/* Matrix k's share of a thread's range [u0, u1) of the list's concatenated units (a unit is
 * `per` outputs: a GEMV block or a GEMM slice): outputs [*o0, *o1) of matrix k. */
static int unit_share(const sq_mm_job *j, int k, int per, int64_t base, int64_t u0, int64_t u1, int *o0, int *o1) {
    int64_t n = (j[k].out + per - 1) / per, a = SQ_MAX(u0, base), b = SQ_MIN(u1, base + n);
    if (a >= b) return 0;
    *o0 = (int)(a - base) * per;
    *o1 = (int)SQ_MIN((b - base) * per, (int64_t)j[k].out);
    return 1;
}

static int64_t total_units(const sq_mm_job *j, int n, int per) {
    int64_t t = 0;
    for (int k = 0; k < n; k++) t += (j[k].out + per - 1) / per;
    return t;
}

static int job_wt(const sq_mm_job *j) { return j->f32 ? WT_F32 : j->f16 ? WT_F16 : WT_BF16; }

/* Parallel only where the weights take longer to stream than a fork/join costs. */
static int64_t job_macs(const sq_mm_job *j, int n, int rows, int in) {
    int64_t t = 0;
    for (int k = 0; k < n; k++) t += (int64_t)rows * in * j[k].out;
    return t;
}

void sq_mm_avx2_gemv_part(float *y, const float *x, int rows, const void *w, int wt, int in, int out,
                          const float *bias, int o0, int o1) {
    if (o0 < o1) gemv_range(y, x, rows, w, in, out, bias, o0, o1, wt);
}

void sq_mm_avx2_gemv(const sq_mm_job *j, int n, const float *x, int rows, int in) {
    int64_t nu = total_units(j, n, 4);
#pragma omp parallel if (job_macs(j, n, rows, in) > (1 << 17))
    {
        /* Equal weight bytes per thread: a contiguous range of the list's 4-row blocks. */
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        int64_t u0 = nu * t / nt, u1 = nu * (t + 1) / nt, base = 0;
        for (int k = 0; k < n; k++) {
            int o0, o1;
            if (unit_share(j, k, 4, base, u0, u1, &o0, &o1))
                gemv_range(j[k].y, x, rows, j[k].w, in, j[k].out, j[k].bias, o0, o1, job_wt(&j[k]));
            base += (j[k].out + 3) / 4;
        }
    }
}

/* ---- GEMM: 4+ rows ---------------------------------------------------------------------- */

/* The register tile: MM_TR x rows by MM_NO outputs, MM_TR * MM_NO accumulators. AVX-512 has
 * 32 vector registers: 4 x 6 (24 accumulators, 4 x vectors, 1 weight vector), 10 loads per
 * 24 FMAs. AVX2 has 16: 2 x 6 (12 + 2 + 1), 8 loads per 12 FMAs. */
#if defined(__AVX512F__)
#ifndef MM_TR_SET
#define MM_TR_SET 4
#define MM_NO_SET 6
#endif
#else
#define MM_TR_SET 2
#define MM_NO_SET 6
#endif
/* Tile groups per widened panel: 2 or 3 would keep a row group's x chunk in L1 across
 * tiles, but measured slower than 1 (the larger panel crowds L1). */
#ifndef MM_PG_SET
#define MM_PG_SET 1
#endif
#ifndef MM_PERMW
#define MM_PERMW 1
#endif
enum { MM_PG = MM_PG_SET, MM_PW = MM_PG_SET * MM_NO_SET, MM_TR = MM_TR_SET, MM_TNO = MM_NO_SET, MM_TA = MM_TR_SET * MM_NO_SET, MM_TG = (MM_RB + MM_TR_SET - 1) / MM_TR_SET };

/* F32 weights: the tile reads the weight rows in place (1, the default: 1.1x the panel's
 * speed in bench_matmul at 8-64 rows; the rows need no widening, and the first row group's
 * loads bring them into L1 for the others) or from a panel copied into L1 like the widened
 * ones (0). Same bits either way. */
static int mm_f32_direct = 1;
void sq_mm_avx2_f32_direct(int on) { mm_f32_direct = on; }

_Static_assert(MM_TNO % 2 == 0, "the lane sums pair neighbouring outputs of a tile");
_Static_assert(MM_RB_LONG_SET <= MM_RB_SET, "the accumulators are sized for MM_RB rows");
typedef struct gemm_scratch {
    _Alignas(64) float panel[MM_PW * MM_KS];
    vf acc[MM_SB][MM_TG][MM_TA];
#if defined(__AVX512F__)
    /* After the last input chunk a tile keeps not its MM_TA accumulators but v_hsum16's first
     * step on each pair of neighbouring outputs (half the vectors): the lane sums then read
     * half as much. Reading the whole accumulators back from L2 was ~10% of the time at 896
     * inputs (the shuffles themselves are cheap). */
    vf pair[MM_SB][MM_TG][MM_TA / 2];
#endif
} gemm_scratch;

/* A tile's accumulators at the end of an input chunk: parked for the next chunk, or (AVX-512,
 * last chunk) halved into pairs for the lane sums. */
static inline __attribute__((always_inline)) void tile_end(gemm_scratch *sc, const vf a[MM_TA], int b, int g, int last) {
#if defined(__AVX512F__)
    if (last) {
        vf *P = sc->pair[b][g];
#pragma GCC unroll 16
        for (int t = 0; t < MM_TA / 2; t++) P[t] = v_hsum_pair(a[2 * t], a[2 * t + 1]);
        return;
    }
#else
    (void)last;
#endif
    vf *A = sc->acc[b][g];
#pragma GCC unroll 32
    for (int t = 0; t < MM_TA; t++) A[t] = a[t];
}

/* Rows [0, nr) (nr <= MM_RB) of x against the outputs of slice `sl` (MM_SB groups of MM_TNO;
 * a group past `out` repeats the last weight row, a row group past nr the last x row, and
 * their results are dropped). */
static inline __attribute__((always_inline)) void gemm_slice_t(gemm_scratch *sc, float *y, const float *x, int nr,
                                                                const void *w, int in, int out, const float *bias,
                                                                int sl, int wt) {
    int o0 = sl * MM_SB * MM_TNO, ngrp = SQ_MIN(MM_SB, (out - o0 + MM_TNO - 1) / MM_TNO), nrg = (nr + MM_TR - 1) / MM_TR;
    int full = in / VL * VL, nout = SQ_MIN(MM_SB * MM_TNO, out - o0);
    (void)nout; /* the AVX-512 lane sums' count */
    const int direct = wt == WT_F32 && mm_f32_direct;
    const char *wend = (const char *)w_at(w, (size_t)out * in, wt);
    /* A few rows: half chunks (each panel serves only a few tiles, and a long chunk's prefetches
     * come in bursts of 100 lines per row group: 47% of peak at 8 rows against 42%). */
    int kc = nr <= 16 ? SQ_MIN(MM_KC, 512) : MM_KC;
    for (int k0 = 0; k0 < full; k0 += kc) {
        int kl = SQ_MIN(kc, full - k0), last = k0 + kc >= full;
        for (int b0 = 0; b0 < ngrp; b0 += MM_PG) {
            int ob = o0 + MM_TNO * b0, npg = SQ_MIN(MM_PG, ngrp - b0);
            for (int j = 0; j < MM_PW && !direct; j++) {
                const void *src = w_at(w, (size_t)SQ_MIN(ob + j, out - 1) * in + k0, wt);
                float *dst = sc->panel + j * MM_KS;
                int i = 0;
#if defined(__AVX512BW__) && MM_PERMW
                if (wt == WT_BF16) /* BF16: 32 weights per load, each half placed in the upper 16 bits of
                           * the lanes by one masked vpermw (one shuffle per 16, not a widen and a shift) */
                    for (; i + 32 <= kl; i += 32) {
                        __m512i v = _mm512_loadu_si512((const void *)((const uint16_t *)src + i));
                        const __m512i lo = _mm512_set_epi16(15, 0, 14, 0, 13, 0, 12, 0, 11, 0, 10, 0, 9, 0, 8, 0, 7, 0, 6,
                                                            0, 5, 0, 4, 0, 3, 0, 2, 0, 1, 0, 0, 0);
                        const __m512i hi = _mm512_add_epi16(lo, _mm512_set1_epi16(16));
                        v_store_a(dst + i, _mm512_castsi512_ps(_mm512_maskz_permutexvar_epi16(0xAAAAAAAAu, lo, v)));
                        v_store_a(dst + i + 16, _mm512_castsi512_ps(_mm512_maskz_permutexvar_epi16(0xAAAAAAAAu, hi, v)));
                    }
#endif
                for (; i < kl; i += VL) v_store_a(dst + i, v_load_w(src, i, wt));
            }
            /* The next panel's weights (next groups, the first group's next chunk, or the next
             * slice's start) come into L2 while this one computes. */
            int nob = ob + MM_PW, nk = k0;
#if defined(__AVX512F__)
            const int ypf = last && b0 + MM_PG >= ngrp;
#endif
            if (b0 + MM_PG >= ngrp) nob = k0 + kc < full ? o0 : o0 + MM_SB * MM_TNO, nk = k0 + kc < full ? k0 + kc : 0;
            /* Spread evenly over the row groups (bursts measured slower), counted without
             * divisions (they cost as much as the prefetches' share of the FMAs at 64 rows);
             * the address moves a line at a time, and to the next row's start after `lines`
             * (recomputing it per line cost ~2% at 64 rows). Rows past `out` are not fetched. */
            int lines = (SQ_MIN(kc, SQ_MAX(full - nk, 0)) * (int)w_esz(wt) + 63) / 64, tot = MM_PW * lines;
            int per = (tot + nrg - 1) / nrg, pl = 0;
            if (nob >= out) tot = 0;
            const size_t rowb = (size_t)in * w_esz(wt);
            const char *pp = (const char *)w + (nob < out ? (size_t)nob * rowb + (size_t)nk * w_esz(wt) : 0);
            for (int g = 0; g < nrg; g++) {
                for (int q = 0; q < per && tot > 0; q++, tot--) {
                    if (pp < wend) _mm_prefetch(pp, _MM_HINT_T1); /* L2: the x rows stream through L1 */
                    pp += 64;
                    if (++pl == lines) pl = 0, pp += rowb - (size_t)lines * 64;
                }
#if defined(__AVX512F__)
                if (ypf) /* this row group's outputs, for writing: the lane sums' stores then find
                          * their lines in cache instead of waiting on L3 for each */
                    for (int r = MM_TR * g; r < SQ_MIN(MM_TR * g + MM_TR, nr); r++)
                        for (int q = 0; q < nout; q += 16) _mm_prefetch((const char *)(y + (size_t)r * out + o0 + q), _MM_HINT_ET0);
#endif
                const float *xr[MM_TR];
                for (int r = 0; r < MM_TR; r++) xr[r] = x + (size_t)SQ_MIN(MM_TR * g + r, nr - 1) * in + k0;
                /* The MM_TR rows' chunk stays in L1 across the panel's MM_PG tiles. */
                for (int bb = 0; bb < npg; bb++) {
                    const vf *A = sc->acc[b0 + bb][g];
                    vf a[MM_TA];
                    if (k0 == 0) {
#pragma GCC unroll 32
                        for (int t = 0; t < MM_TA; t++) a[t] = v_zero();
                    } else {
#pragma GCC unroll 32
                        for (int t = 0; t < MM_TA; t++) a[t] = A[t];
                    }
                    if (direct) { /* F32 rows read in place: the same FMAs in the same order */
                        const float *wp[MM_TNO];
                        for (int j = 0; j < MM_TNO; j++)
                            wp[j] = (const float *)w + (size_t)SQ_MIN(ob + bb * MM_TNO + j, out - 1) * in + k0;
                        for (int i = 0; i < kl; i += VL) {
                            vf xv[MM_TR];
#pragma GCC unroll 8
                            for (int r = 0; r < MM_TR; r++) xv[r] = v_load(xr[r] + i);
#pragma GCC unroll 8
                            for (int j = 0; j < MM_TNO; j++) {
                                vf wv = v_load(wp[j] + i);
                                V_KEEP(wv);
#pragma GCC unroll 8
                                for (int r = 0; r < MM_TR; r++) a[r * MM_TNO + j] = v_fma(xv[r], wv, a[r * MM_TNO + j]);
                            }
                        }
                        tile_end(sc, a, b0 + bb, g, last);
                        continue;
                    }
                    const float *p = sc->panel + bb * MM_TNO * MM_KS;
                    for (int i = 0; i < kl; i += VL) {
                        vf xv[MM_TR];
#pragma GCC unroll 8
                        for (int r = 0; r < MM_TR; r++) xv[r] = v_load(xr[r] + i);
#pragma GCC unroll 8
                        for (int j = 0; j < MM_TNO; j++) {
                            vf wv = v_load_a(p + j * MM_KS + i);
                            V_KEEP(wv); /* one load feeding MM_TR FMAs, not folded into each */
#pragma GCC unroll 8
                            for (int r = 0; r < MM_TR; r++) a[r * MM_TNO + j] = v_fma(xv[r], wv, a[r * MM_TNO + j]);
                        }
                    }
                    tile_end(sc, a, b0 + bb, g, last);
                }
            }
        }
    }
#if defined(__AVX512F__)
    if (full) { /* sixteen outputs' sums at a time, each by v_hsum's tree */
        vf zero = v_zero();
        for (int r = 0; r < nr; r++) {
            const float *xr = x + (size_t)r * in;
            float *yr = y + (size_t)r * out + o0;
            /* Row r's pairs: outputs q and q + 1 (q even) in group q / MM_TNO, pair (q % MM_TNO) / 2
             * of the row's tile row. */
            const vf *base = &sc->pair[0][r / MM_TR][(r % MM_TR) * (MM_TNO / 2)];
#pragma GCC unroll 4
            for (int c = 0; c < (MM_SB * MM_TNO + 15) / 16; c++) {
                int c0 = 16 * c;
                if (c0 >= nout) break;
                vf u[8];
                __mmask16 mk = 0xffff;
                if (c0 + 16 <= nout) {
#pragma GCC unroll 8
                    for (int m = 0; m < 8; m++) {
                        int q = c0 + 2 * m;
                        u[m] = base[(q / MM_TNO) * (MM_TG * MM_TA / 2) + (q % MM_TNO) / 2];
                    }
                } else { /* the slice's last outputs: pairs past them are zeros, their lanes dropped */
                    mk = (__mmask16)((1u << (nout - c0)) - 1);
                    for (int m = 0; m < 8; m++) {
                        int q = c0 + 2 * m;
                        u[m] = q < nout ? base[(q / MM_TNO) * (MM_TG * MM_TA / 2) + (q % MM_TNO) / 2] : zero;
                    }
                }
                /* Lane L of v_hsum16_u holds output c0 + 4 (L % 4) + L / 4 here (u[m] pairs outputs
                 * 2m and 2m + 1, not m's and m + 4's): one permutation puts them in order. */
                const __m512i perm = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
                vf sum = _mm512_permutexvar_ps(perm, v_hsum16_u(u));
                if (full < in) { /* the tail inputs one by one, then the bias */
                    _Alignas(64) float t[16];
                    v_store_a(t, sum);
                    for (int l = 0; l < 16 && c0 + l < nout; l++) {
                        int o = o0 + c0 + l;
                        yr[c0 + l] = tail_dot(t[l], xr, w_at(w, (size_t)o * in, wt), full, in, wt) + (bias ? bias[o] : 0);
                    }
                } else {
                    vf bv = bias ? _mm512_maskz_loadu_ps(mk, bias + o0 + c0) : zero;
                    _mm512_mask_storeu_ps(yr + c0, mk, _mm512_add_ps(sum, bv));
                }
            }
        }
        return;
    }
#endif
    for (int b = 0; b < ngrp; b++)
        for (int g = 0; g < nrg; g++)
            for (int rr = 0; rr < MM_TR && MM_TR * g + rr < nr; rr++) {
                int r = MM_TR * g + rr;
                const float *xr = x + (size_t)r * in;
                for (int j = 0; j < MM_TNO && o0 + MM_TNO * b + j < out; j++) {
                    int o = o0 + MM_TNO * b + j;
                    float s = full ? v_hsum(sc->acc[b][g][rr * MM_TNO + j]) : v_hsum(v_zero());
                    y[(size_t)r * out + o] = tail_dot(s, xr, w_at(w, (size_t)o * in, wt), full, in, wt) + (bias ? bias[o] : 0);
                }
            }
}

static void gemm_slice(gemm_scratch *sc, float *y, const float *x, int nr, const void *w, int in, int out,
                       const float *bias, int sl, int wt) {
    if (wt == WT_F32)
        gemm_slice_t(sc, y, x, nr, w, in, out, bias, sl, WT_F32);
    else if (wt == WT_F16)
        gemm_slice_t(sc, y, x, nr, w, in, out, bias, sl, WT_F16);
    else
        gemm_slice_t(sc, y, x, nr, w, in, out, bias, sl, WT_BF16);
}

size_t sq_mm_avx2_scratch_bytes(void) { return sizeof(gemm_scratch); }

int sq_mm_avx2_gemm_grain(void) { return MM_TNO * MM_SB; }

/* x rows per block: MM_RB_LONG where the inputs span several chunks, else MM_RB. */
static int rows_per_block(int in) { return in > MM_KC ? MM_RB_LONG : MM_RB; }

void sq_mm_avx2_gemm_range(float *y, const float *x, int rows, const void *w, int wt, int in, int out,
                           const float *bias, int o0, int o1, void *scratch) {
    int per = MM_TNO * MM_SB;
    if (o0 >= o1) return;
    const int rb = rows_per_block(in);
    for (int r0 = 0; r0 < rows; r0 += rb) {
        int nr = SQ_MIN(rb, rows - r0);
        float *yb = y + (size_t)r0 * out;
        const float *xb = x + (size_t)r0 * in;
        if (scratch)
            for (int sl = o0 / per; sl * per < o1; sl++) gemm_slice(scratch, yb, xb, nr, w, in, out, bias, sl, wt);
        else
            gemv_range(yb, xb, nr, w, in, out, bias, o0, o1, wt);
    }
}

void sq_mm_avx2_gemm(const sq_mm_job *j, int n, const float *x, int rows, int in, void *scratch, int n_scratch) {
    int per = MM_TNO * MM_SB;
    int64_t nu = total_units(j, n, per);
    const int rb = rows_per_block(in);
    for (int r0 = 0; r0 < rows; r0 += rb) {
        int nr = SQ_MIN(rb, rows - r0);
        const float *xb = x + (size_t)r0 * in;
#pragma omp parallel if (job_macs(j, n, nr, in) > (1 << 20))
        {
            int t = omp_get_thread_num(), nt = omp_get_num_threads();
            gemm_scratch *own = NULL, *sc = scratch && t < n_scratch ? (gemm_scratch *)scratch + t : NULL;
            if (!sc) sc = own = sq_malloc_aligned(sizeof *sc);
            int64_t u0 = nu * t / nt, u1 = nu * (t + 1) / nt, base = 0;
            for (int k = 0; k < n; k++) {
                int o0, o1;
                if (unit_share(j, k, per, base, u0, u1, &o0, &o1)) {
                    float *yb = j[k].y + (size_t)r0 * j[k].out;
                    if (sc)
                        for (int sl = o0 / per; sl * per < o1; sl++)
                            gemm_slice(sc, yb, xb, nr, j[k].w, in, j[k].out, j[k].bias, sl, job_wt(&j[k]));
                    else /* no scratch: the GEMV keeps the same order, only slower */
                        gemv_range(yb, xb, nr, j[k].w, in, j[k].out, j[k].bias, o0, o1, job_wt(&j[k]));
                }
                base += (j[k].out + per - 1) / per;
            }
            free(own);
        }
    }
}

#endif
