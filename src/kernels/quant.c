/* Quantized blocks (quant.h): the C reference for every type, the fixed-order dot, the
 * scale check, and the choice between this code and the AVX2 code (quant_avx2.c).
 *
 * Block layouts (what gguf-py and ggml write; little-endian):
 *   Q4_0  f16 d, 16 bytes: value j = low nibble of byte j, value j+16 = its high nibble;
 *         w = d * (q - 8).
 *   Q4_1  f16 d, f16 m, the same 16 bytes; w = d * q + m.
 *   Q5_0  f16 d, u32 qh, 16 bytes: the nibble as Q4_0 plus bit j of qh as bit 4;
 *         w = d * (q - 16).
 *   Q5_1  f16 d, f16 m, u32 qh, 16 bytes; w = d * q + m.
 *   Q8_0  f16 d, 32 int8; w = d * q.
 *   Q4_K  f16 d, f16 dmin, 12 bytes of eight 6-bit scales and mins, 128 bytes: sub-block
 *         2g (32 values) = low nibbles of bytes 32g..32g+31, 2g+1 = their high nibbles;
 *         w = (d * sc) * q - (dmin * m).
 *   Q5_K  as Q4_K with 32 bytes qh before the nibbles: bit j of qh[l] is bit 4 of value l of
 *         sub-block j.
 *   Q6_K  128 bytes ql, 64 bytes qh, 16 int8 scales, f16 d; two halves of 128 values: value
 *         l (+32, +64, +96) of half h takes low bits from ql[64h + l] (low nibble), ql[64h +
 *         32 + l] (low), ql[64h + l] (high), ql[64h + 32 + l] (high) and two high bits from
 *         qh[32h + l] at shift 0, 2, 4, 6; value i of the block uses scale i / 16;
 *         w = (d * sc) * (q - 32).
 * Products are rounded one at a time (the build is ISO C: no contraction), as numpy does. */
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "quant_internal.h"
#include "scalequest/quant.h"

static inline float h2f(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return sq_f16_to_f32(h);
}

/* 6-bit scale and min j (0..7) of a Q4_K/Q5_K block's 12 scale bytes. */
void sq__kq_scale_min(const uint8_t *s, int j, uint8_t *sc, uint8_t *mn) {
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (uint8_t)((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
        *mn = (uint8_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

/* One block's values. */
static void decode_block(const uint8_t *b, sq_dtype t, float *out) {
    switch (t) {
    case SQ_Q4_0: {
        float d = h2f(b);
        for (int j = 0; j < 16; j++) {
            out[j] = d * (float)((b[2 + j] & 0xF) - 8);
            out[j + 16] = d * (float)((b[2 + j] >> 4) - 8);
        }
        break;
    }
    case SQ_Q4_1: {
        float d = h2f(b), m = h2f(b + 2);
        for (int j = 0; j < 16; j++) {
            out[j] = d * (float)(b[4 + j] & 0xF) + m;
            out[j + 16] = d * (float)(b[4 + j] >> 4) + m;
        }
        break;
    }
    case SQ_Q5_0:
    case SQ_Q5_1: {
        int one = t == SQ_Q5_1;
        float d = h2f(b), m = one ? h2f(b + 2) : 0;
        uint32_t qh;
        memcpy(&qh, b + 2 + 2 * one, 4);
        const uint8_t *qs = b + 6 + 2 * one;
        for (int j = 0; j < 16; j++) {
            int lo = (qs[j] & 0xF) | (int)((qh >> j) & 1) << 4;
            int hi = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
            if (one) {
                out[j] = d * (float)lo + m;
                out[j + 16] = d * (float)hi + m;
            } else {
                out[j] = d * (float)(lo - 16);
                out[j + 16] = d * (float)(hi - 16);
            }
        }
        break;
    }
    case SQ_Q8_0: {
        float d = h2f(b);
        for (int j = 0; j < 32; j++) out[j] = d * (float)(int8_t)b[2 + j];
        break;
    }
    case SQ_Q4_K:
    case SQ_Q5_K: {
        int five = t == SQ_Q5_K;
        float d = h2f(b), dmin = h2f(b + 2);
        const uint8_t *sc = b + 4, *qh = b + 16, *qs = b + 16 + 32 * five;
        for (int j = 0; j < 8; j++) {
            uint8_t s, mn;
            sq__kq_scale_min(sc, j, &s, &mn);
            float ds = d * (float)s, dm = dmin * (float)mn;
            const uint8_t *q = qs + 32 * (j / 2);
            for (int l = 0; l < 32; l++) {
                int v = (j & 1) ? q[l] >> 4 : q[l] & 0xF;
                if (five) v |= ((qh[l] >> j) & 1) << 4;
                out[32 * j + l] = ds * (float)v - dm;
            }
        }
        break;
    }
    case SQ_Q6_K: {
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        float d = h2f(b + 208);
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                const uint8_t *L = ql + 64 * h, H = qh[32 * h + l];
                int q[4] = {(L[l] & 0xF) | (H & 3) << 4, (L[l + 32] & 0xF) | ((H >> 2) & 3) << 4,
                            (L[l] >> 4) | ((H >> 4) & 3) << 4, (L[l + 32] >> 4) | ((H >> 6) & 3) << 4};
                for (int k = 0; k < 4; k++) {
                    int i = 128 * h + 32 * k + l;
                    out[i] = (d * (float)sc[i / 16]) * (float)(q[k] - 32);
                }
            }
        break;
    }
    default: memset(out, 0, 32 * sizeof *out); break;
    }
}

/* ---- the fixed order ------------------------------------------------------------------- */

/* 32 partial sums reduced as the AVX2 code does: lane l of accumulator k is p[8k + l]; the
 * four accumulators add as (a0 + a1) + (a2 + a3), then the 8 lanes as sq__hsum256 does. */
float sq__reduce32(const float p[32]) {
    float t[8];
    for (int l = 0; l < 8; l++) t[l] = (p[l] + p[8 + l]) + (p[16 + l] + p[24 + l]);
    float h[4];
    for (int l = 0; l < 4; l++) h[l] = t[l] + t[l + 4];
    return (h[0] + h[2]) + (h[1] + h[3]);
}

static float dot_f32_c(const float *w, const float *x, int64_t n) {
    float p[32] = {0};
    for (int64_t i = 0; i < n; i += 32)
        for (int l = 0; l < 32; l++) p[l] = fmaf(x[i + l], w[i + l], p[l]);
    return sq__reduce32(p);
}

static float quant_dot_c(const uint8_t *row, sq_dtype t, const float *x, int64_t n) {
    size_t bb;
    int per = sq_dtype_block(t, &bb);
    float p[32] = {0}, v[256];
    for (int64_t b = 0; b < n / per; b++) {
        decode_block(row + (size_t)b * bb, t, v);
        const float *xb = x + b * per;
        for (int i = 0; i < per; i += 32)
            for (int l = 0; l < 32; l++) p[l] = fmaf(xb[i + l], v[i + l], p[l]);
    }
    return sq__reduce32(p);
}

/* ---- dispatch -------------------------------------------------------------------------- */

static atomic_int force_c;
static atomic_int have_avx2 = -1; /* -1: not asked yet (CPUID is slow, a VM exit: ask once) */

static int use_avx2(void) {
#if defined(SQ_QUANT_HAVE_AVX2)
    if (atomic_load_explicit(&force_c, memory_order_relaxed)) return 0;
    int h = atomic_load_explicit(&have_avx2, memory_order_relaxed);
    if (h < 0) atomic_store(&have_avx2, h = sq__quant_avx2_supported());
    return h;
#else
    return 0;
#endif
}

static atomic_int have_avx512 = -1;

static int use_avx512(void) {
#if defined(SQ_QUANT_HAVE_AVX2)
    if (!use_avx2()) return 0;
    int h = atomic_load_explicit(&have_avx512, memory_order_relaxed);
    if (h < 0) atomic_store(&have_avx512, h = sq__quant_avx512_supported());
    return h;
#else
    return 0;
#endif
}

int sq__quant_use_avx2(void) { return use_avx2(); }
void sq_quant_force_c(int on) { atomic_store(&force_c, on ? 1 : 0); }
const char *sq_quant_impl(void) { return use_avx512() ? "avx512" : use_avx2() ? "avx2" : "c"; }

void sq_dequant_row(float *out, const void *src, sq_dtype t, int64_t n) {
    size_t bb;
    int per = sq_dtype_block(t, &bb);
    if (!per) return;
#if defined(SQ_QUANT_HAVE_AVX2)
    if (use_avx512() && sq__quant512_handles(t)) {
        sq__dequant_avx512(out, src, t, n);
        return;
    }
    if (use_avx2()) {
        sq__dequant_avx2(out, src, t, n);
        return;
    }
#endif
    for (int64_t b = 0; b < n / per; b++) decode_block((const uint8_t *)src + (size_t)b * bb, t, out + b * per);
}

float sq_quant_dot(const void *row, sq_dtype t, const float *x, int64_t n) {
#if defined(SQ_QUANT_HAVE_AVX2)
    if (use_avx512() && sq__quant512_handles(t)) return sq__quant_dot_avx512(row, t, x, n);
    if (use_avx2()) return sq__quant_dot_avx2(row, t, x, n);
#endif
    return quant_dot_c(row, t, x, n);
}

float sq_quant_dot_f32(const float *w, const float *x, int64_t n) {
#if defined(SQ_QUANT_HAVE_AVX2)
    if (use_avx2()) return sq__dot_f32_avx2(w, x, n);
#endif
    return dot_f32_c(w, x, n);
}

void sq_quant_panel_dot(float *y, int64_t ldy, const float *pan, int n, const float *x, int rows, int64_t in,
                        const float *bias) {
#if defined(SQ_QUANT_HAVE_AVX2)
    if (use_avx512()) {
        sq__panel_dot_avx512(y, ldy, pan, n, x, rows, in, bias);
        return;
    }
#endif
    for (int r = 0; r < rows; r++)
        for (int k = 0; k < n; k++)
            y[r * ldy + k] = sq_quant_dot_f32(pan + k * in, x + r * in, in) + (bias ? bias[k] : 0);
}

/* ---- corrupt scales -------------------------------------------------------------------- */

int64_t sq_quant_find_bad_block(const void *data, sq_dtype t, int64_t n_values) {
    size_t bb;
    int per = sq_dtype_block(t, &bb);
    if (!per) return -1;
    /* Where each type keeps its f16 scale(s): offset of the first, and how many. */
    int at = t == SQ_Q6_K ? 208 : 0;
    int n_h = (t == SQ_Q4_1 || t == SQ_Q5_1 || t == SQ_Q4_K || t == SQ_Q5_K) ? 2 : 1;
    const uint8_t *p = data;
    for (int64_t b = 0; b < n_values / per; b++)
        for (int k = 0; k < n_h; k++) {
            uint16_t h;
            memcpy(&h, p + (size_t)b * bb + at + 2 * k, 2);
            if ((h & 0x7c00) == 0x7c00) return b; /* exponent all ones: inf or NaN */
        }
    return -1;
}
