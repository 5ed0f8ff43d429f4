/* 8-bit activations for quantized weights (quant.h): the rounding of activation rows, the C
 * reference of the integer dot products, the choice between it and the x86 code
 * (quant_q8_x86.c), and the matmul drivers that sq_matmul / sq_matmul_n / sq_matmul_part
 * route quantized weights to.
 *
 * The reference forms each integer product in int16 and adds it to an int32: GCC 12 with
 * -march on an AVX512-VNNI CPU turned a plain int8 x int8 sum into VNNI's unsigned x signed
 * dot and got wrong sums, so these loops are also kept scalar for GCC (no-tree-vectorize):
 * the reference must be the thing the SIMD code is checked against, not another SIMD. */
#include <math.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "quant_internal.h"
#include "quant_q8_gemm.h"
#include "scalequest/quant.h"

#if defined(__GNUC__) && !defined(__clang__)
#define NOVEC __attribute__((optimize("no-tree-vectorize")))
#else
#define NOVEC
#endif

static inline float h2f(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return sq_f16_to_f32(h);
}

static inline float f16_round(float v) { return sq_f16_to_f32(sq_f32_to_f16(v)); }

static atomic_int act_type; /* SQ_ACT_Q8 = 0 */
void sq_quant_act_set(int act) { atomic_store(&act_type, act == SQ_ACT_F32 ? SQ_ACT_F32 : SQ_ACT_Q8); }
int sq_quant_act_get(void) { return atomic_load_explicit(&act_type, memory_order_relaxed); }

const char *sq_act_type_name(int act) { return act == SQ_ACT_F32 ? "f32" : act == SQ_ACT_Q8 ? "q8" : "?"; }

int sq_act_type_parse(const char *s) {
    if (!s) return -1;
    if (!strcmp(s, "q8")) return SQ_ACT_Q8;
    if (!strcmp(s, "f32")) return SQ_ACT_F32;
    return -1;
}

int sq_act_type_for_batch(int max_batch) { return (void)max_batch, SQ_ACT_Q8; }

int sq_quant_act_kind(sq_dtype wt) {
    if (wt == SQ_Q4_K || wt == SQ_Q5_K || wt == SQ_Q6_K) return 2;
    return sq_dtype_is_quant(wt) ? 1 : 0;
}

size_t sq_quant_act_bytes(int kind, int64_t n) {
    return kind == 2 ? (size_t)(n / 256) * sizeof(sq__q8k) : (size_t)n + (size_t)(n / 32) * 2 * sizeof(float);
}

/* ---- rounding ----------------------------------------------------------------------------- */

/* llama.cpp's AVX quantize_row_q8_0/q8_1: d = amax / 127 (f16), q = rint(x * (127 / amax)). */
static void act_q8b(uint8_t *dst, const float *x, int64_t nb) {
    float *ds = (float *)(dst + 32 * nb);
    for (int64_t b = 0; b < nb; b++, x += 32) {
        int8_t *q = (int8_t *)dst + 32 * b;
        float amax = 0;
        int bad = 0;
        for (int j = 0; j < 32; j++) {
            float a = fabsf(x[j]);
            bad |= !(a <= 3.402823466e38f);
            amax = a > amax ? a : amax;
        }
        if (bad) {
            memset(q, 0, 32);
            ds[2 * b] = ds[2 * b + 1] = NAN;
            continue;
        }
        float d = amax / 127.f, id = amax != 0.0f ? 127.f / amax : 0.0f;
        /* amax under 127 / FLT_MAX (denormals): 127 / amax overflows and x * inf has no int;
         * such a block rounds to zeros, as a zero block (its f16 scale is 0 either way). */
        if (id > 3.402823466e38f) id = 0.0f;
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            int v = (int)rintf(x[j] * id);
            q[j] = (int8_t)v;
            sum += v;
        }
        ds[2 * b] = f16_round(d);
        ds[2 * b + 1] = f16_round(d * (float)sum);
    }
}

/* llama.cpp's quantize_row_q8_K: the first value of largest |x| sets the sign of the scale. */
static void act_q8k(sq__q8k *y, const float *x, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, x += 256, y++) {
        float amax = 0, max = 0;
        int bad = 0;
        for (int j = 0; j < 256; j++) {
            float a = fabsf(x[j]);
            bad |= !(a <= 3.402823466e38f);
            if (a > amax) amax = a, max = x[j];
        }
        memset(y->bsum, 0, sizeof y->bsum);
        /* -127 / max overflowing (|max| under 127 / FLT_MAX) rounds like a zero block. */
        if (bad || amax == 0.0f || !(fabsf(-127.f / max) <= 3.402823466e38f)) {
            memset(y->q, 0, 256);
            y->d = bad ? NAN : 0.0f;
            continue;
        }
        float iscale = -127.f / max;
        for (int j = 0; j < 256; j++) {
            int q = (int)rintf(iscale * x[j]);
            y->q[j] = (int8_t)(q > 127 ? 127 : q);
            y->bsum[j / 16] = (int16_t)(y->bsum[j / 16] + y->q[j]);
        }
        y->d = 1 / iscale;
    }
}

static int q8_level(void);

void sq_quant_act_row(void *dst, const float *x, int kind, int64_t n) {
    if (kind == 2)
        act_q8k(dst, x, n / 256);
#if defined(SQ_QUANT_HAVE_AVX2)
    else if (q8_level() >= 1) /* the same bytes as act_q8b (test_quant) */
        sq__act_q8b_avx2(dst, x, n / 32);
#endif
    else
        act_q8b(dst, x, n / 32);
}

void sq_quant_act_dequant(float *out, const void *src, int kind, int64_t n) {
    if (kind == 2) {
        const sq__q8k *y = src;
        for (int64_t i = 0; i < n; i++) out[i] = y[i / 256].d * (float)y[i / 256].q[i % 256];
    } else {
        const int8_t *q = src;
        const float *ds = (const float *)((const uint8_t *)src + n);
        for (int64_t i = 0; i < n; i++) out[i] = ds[2 * (i / 32)] * (float)q[i];
    }
}

/* ---- the C reference ------------------------------------------------------------------- */

/* A 32-value weight block as signed integers, its scale and (Q*_1, return 1) minimum. */
static int decode32(const uint8_t *b, sq_dtype t, int8_t w[32], float *dw, float *mw) {
    *dw = h2f(b);
    *mw = 0;
    switch (t) {
    case SQ_Q4_0:
    case SQ_Q4_1: {
        int one = t == SQ_Q4_1, off = one ? 0 : 8;
        if (one) *mw = h2f(b + 2);
        const uint8_t *qs = b + 2 + 2 * one;
        for (int j = 0; j < 16; j++) {
            w[j] = (int8_t)((qs[j] & 0xF) - off);
            w[j + 16] = (int8_t)((qs[j] >> 4) - off);
        }
        return one;
    }
    case SQ_Q5_0:
    case SQ_Q5_1: {
        int one = t == SQ_Q5_1, off = one ? 0 : 16;
        if (one) *mw = h2f(b + 2);
        uint32_t qh;
        memcpy(&qh, b + 2 + 2 * one, 4);
        const uint8_t *qs = b + 6 + 2 * one;
        for (int j = 0; j < 16; j++) {
            w[j] = (int8_t)(((qs[j] & 0xF) | (int)((qh >> j) & 1) << 4) - off);
            w[j + 16] = (int8_t)(((qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4) - off);
        }
        return one;
    }
    default: /* Q8_0 */
        memcpy(w, b + 2, 32);
        return 0;
    }
}

NOVEC static float dot32_c(const uint8_t *w, sq_dtype t, const uint8_t *x, int64_t nb) {
    size_t bb;
    sq_dtype_block(t, &bb);
    const float *ds = (const float *)(x + 32 * nb);
    float acc[8] = {0}, sm = 0;
    for (int64_t b = 0; b < nb; b++, w += bb) {
        int8_t wv[32];
        const int8_t *xq = (const int8_t *)x + 32 * b;
        float dw, mw;
        int one = decode32(w, t, wv, &dw, &mw);
        float d = dw * ds[2 * b];
        for (int l = 0; l < 8; l++) {
            int32_t p = 0;
            for (int k = 0; k < 4; k++) {
                int16_t pr = (int16_t)((int16_t)wv[4 * l + k] * (int16_t)xq[4 * l + k]);
                p += pr;
            }
            acc[l] = fmaf(d, (float)p, acc[l]);
        }
        if (one) sm = fmaf(mw, ds[2 * b + 1], sm);
    }
    return sq__hsum8(acc) + sm;
}

NOVEC static float dotk_c(const uint8_t *w, sq_dtype t, const sq__q8k *x, int64_t nb) {
    size_t bb;
    sq_dtype_block(t, &bb);
    float acc = 0, mn = 0;
    for (int64_t b = 0; b < nb; b++, w += bb, x++) {
        int32_t isum = 0, imin = 0;
        float dd, dm = 0;
        if (t == SQ_Q6_K) {
            const uint8_t *qh = w + 128;
            const int8_t *sc = (const int8_t *)(w + 192);
            int32_t g[16] = {0};
            for (int h = 0; h < 2; h++)
                for (int l = 0; l < 32; l++) {
                    const uint8_t *L = w + 64 * h, H = qh[32 * h + l];
                    int q[4] = {(L[l] & 0xF) | (H & 3) << 4, (L[l + 32] & 0xF) | ((H >> 2) & 3) << 4,
                                (L[l] >> 4) | ((H >> 4) & 3) << 4, (L[l + 32] >> 4) | ((H >> 6) & 3) << 4};
                    for (int k = 0; k < 4; k++) {
                        int i = 128 * h + 32 * k + l;
                        int16_t pr = (int16_t)((int16_t)(q[k] - 32) * (int16_t)x->q[i]);
                        g[i / 16] += pr;
                    }
                }
            for (int j = 0; j < 16; j++) isum += sc[j] * g[j];
            dd = h2f(w + 208) * x->d;
        } else {
            int five = t == SQ_Q5_K;
            const uint8_t *qh = w + 16, *qs = w + 16 + 32 * five;
            for (int j = 0; j < 8; j++) {
                uint8_t s, m;
                sq__kq_scale_min(w + 4, j, &s, &m);
                const uint8_t *q = qs + 32 * (j / 2);
                int32_t dot = 0;
                for (int l = 0; l < 32; l++) {
                    int v = (j & 1) ? q[l] >> 4 : q[l] & 0xF;
                    if (five) v |= ((qh[l] >> j) & 1) << 4;
                    int16_t pr = (int16_t)((int16_t)v * (int16_t)x->q[32 * j + l]);
                    dot += pr;
                }
                isum += s * dot;
                imin += m * (x->bsum[2 * j] + x->bsum[2 * j + 1]);
            }
            dd = h2f(w) * x->d;
            dm = h2f(w + 2) * x->d;
        }
        acc = fmaf(dd, (float)isum, acc);
        mn = fmaf(dm, (float)imin, mn);
    }
    return acc - mn;
}

static float dot_c(const uint8_t *w, sq_dtype t, const void *xq, int64_t n) {
    return sq_quant_act_kind(t) == 2 ? dotk_c(w, t, xq, n / 256) : dot32_c(w, t, xq, n / 32);
}

/* ---- dispatch --------------------------------------------------------------------------- */

static atomic_int q8_force;
static atomic_int have_vnni = -1;

/* 0: C, 1: AVX2, 2: AVX-512 VNNI. */
static int q8_level(void) {
#if defined(SQ_QUANT_HAVE_AVX2)
    int f = atomic_load_explicit(&q8_force, memory_order_relaxed);
    if (f == 1 || !sq__quant_use_avx2()) return 0;
    int v = atomic_load_explicit(&have_vnni, memory_order_relaxed);
    if (v < 0) atomic_store(&have_vnni, v = sq__q8_vnni_supported());
    return f == 2 || !v ? 1 : 2;
#else
    return 0;
#endif
}

void sq_quant_q8_force(int level) { atomic_store(&q8_force, level); }
const char *sq_quant_q8_impl(void) {
    int l = q8_level();
    return l == 2 ? "avx512vnni" : l == 1 ? "avx2" : "c";
}

/* + 0.0f: a zero result is +0 on every path (the rows path adds its bias the same way). */
float sq_quant_dot_q8(const void *wrow, sq_dtype wt, const void *xq, int64_t n) {
#if defined(SQ_QUANT_HAVE_AVX2)
    switch (q8_level()) {
    case 2: return sq__dot_q8_vnni(wrow, wt, xq, n) + 0.0f;
    case 1: return sq__dot_q8_avx2(wrow, wt, xq, n) + 0.0f;
    default: break;
    }
#endif
    return dot_c(wrow, wt, xq, n) + 0.0f;
}

typedef void (*rows_fn)(float *y, int64_t ys, const uint8_t *w, sq_dtype t, const void *xq, size_t xs, int rows,
                        int64_t n, float bias);

static void rows_c(float *y, int64_t ystride, const uint8_t *wrow, sq_dtype wt, const void *xq, size_t xstride,
                   int rows, int64_t n, float bias) {
    for (int r = 0; r < rows; r++)
        y[r * ystride] = dot_c(wrow, wt, (const uint8_t *)xq + (size_t)r * xstride, n) + bias;
}

/* The rows kernel for the code in use, chosen once per matmul (not once per output). */
static rows_fn rows_kernel(void) {
#if defined(SQ_QUANT_HAVE_AVX2)
    switch (q8_level()) {
    case 2: return sq__dot_q8_rows_vnni;
    case 1: return sq__dot_q8_rows_avx2;
    default: break;
    }
#endif
    return rows_c;
}

void sq_quant_dot_q8_rows(float *y, int64_t ystride, const void *wrow, sq_dtype wt, const void *xq, size_t xstride,
                          int rows, int64_t n, float bias) {
    rows_kernel()(y, ystride, wrow, wt, xq, xstride, rows, n, bias);
}

/* ---- matmul drivers ---------------------------------------------------------------------- */

static size_t row_bytes(const sq_view *w) {
    size_t bb;
    int per = sq_dtype_block(w->dtype, &bb);
    return per ? (size_t)(w->shape[1] / per) * bb : 0;
}

static int check(const sq_view *w, sq_err *e) {
    int per = sq_dtype_block(w->dtype, NULL);
    if (!per || w->ndim != 2 || w->shape[1] % per)
        return sq_fail(e, SQ_EINVAL, "matmul: %s weight row of %lld values is not a whole number of %d-value blocks",
                       sq_dtype_name(w->dtype), (long long)w->shape[1], per);
    return 0;
}

static int grow(void **buf, size_t *cap, size_t need, sq_err *e) {
    if (need <= *cap) return 0;
    void *p = sq_malloc_aligned(need);
    if (!p) return sq_fail(e, SQ_ENOMEM, "matmul: out of memory for %zu bytes of 8-bit activations", need);
    free(*buf);
    *buf = p;
    *cap = need;
    return 0;
}

/* Round `rows` rows of `in` values into kind-k format at dst (row stride xs). */
static void round_rows(void *dst, size_t xs, const float *x, int rows, int64_t in, int kind) {
#pragma omp parallel for schedule(static) if ((int64_t)rows * in > (1 << 16))
    for (int r = 0; r < rows; r++) sq_quant_act_row((uint8_t *)dst + (size_t)r * xs, x + (size_t)r * in, kind, in);
}

int sq_quant_matmul(void **buf, size_t *cap, float *y, const float *x, int rows, const sq_view *w,
                    const float *bias, sq_err *e) {
    const sq_view *ws[1] = {w};
    float *ys[1] = {y};
    const float *bs[1] = {bias};
    return sq_quant_matmul_n(buf, cap, 1, ys, x, rows, ws, bs, e);
}

int sq_quant_matmul_n(void **buf, size_t *cap, int n, float *const y[], const float *x, int rows,
                      const sq_view *const w[], const float *const bias[], sq_err *e) {
    if (n <= 0 || rows <= 0) return 0;
    int g = sq__quant_gemm_n(buf, cap, n, y, x, rows, w, bias, e); /* 4+ rows: the tile kernel */
    if (g) return g < 0 ? g : 0;
    int64_t in = w[0]->shape[1];
    int kinds = 0, total = 0;
    for (int k = 0; k < n; k++) {
        int rc = check(w[k], e);
        if (rc) return rc;
        if (w[k]->shape[1] != in) return sq_fail(e, SQ_EINVAL, "matmul: weights of one input differ in width");
        kinds |= sq_quant_act_kind(w[k]->dtype);
        total += (int)w[k]->shape[0];
    }
    /* One rounded copy of x per format the weights need (32-value blocks, Q8_K). */
    size_t xs1 = sq_quant_act_bytes(1, in), xs2 = sq_quant_act_bytes(2, in);
    size_t at2 = (kinds & 1) ? xs1 * (size_t)rows : 0;
    int64_t nb = in / 32;
    int groups = 0;
#if defined(SQ_QUANT_HAVE_AVX2)
    /* VNNI, 4+ rows: Q4_0/Q4_1/Q8_0 take four rows at a time with the rows' scales transposed. */
    if ((kinds & 1) && rows >= 4 && q8_level() == 2) groups = rows / 4;
#endif
    size_t at3 = at2 + ((kinds & 2) ? xs2 * (size_t)rows : 0);
    at3 = (at3 + 63) & ~(size_t)63;
    int rc = grow(buf, cap, at3 + (size_t)groups * (size_t)nb * 8 * sizeof(float) + 64, e);
    if (rc) return rc;
    uint8_t *q1 = *buf, *q2 = (uint8_t *)*buf + at2;
    float *dsT = (float *)((uint8_t *)*buf + at3);
    if (kinds & 1) round_rows(q1, xs1, x, rows, in, 1);
    if (kinds & 2) round_rows(q2, xs2, x, rows, in, 2);
    for (int g = 0; g < groups; g++) /* per block: d of rows 4g..4g+3, then their s */
        for (int64_t b = 0; b < nb; b++)
            for (int i = 0; i < 4; i++) {
                const float *ds = (const float *)(q1 + (size_t)(4 * g + i) * xs1 + in) + 2 * b;
                dsT[((size_t)g * nb + b) * 8 + i] = ds[0];
                dsT[((size_t)g * nb + b) * 8 + 4 + i] = ds[1];
            }
    rows_fn fn = rows_kernel();
    size_t rb[8];
    for (int k = 0; k < n && k < 8; k++) rb[k] = row_bytes(w[k]);
    /* All n matrices' outputs in one loop, so q/k/v and gate/up cost one fork/join. */
#pragma omp parallel for schedule(static) if ((int64_t)rows * in * total > (1 << 16))
    for (int g = 0; g < total; g++) {
        int k = 0, o = g;
        while (o >= (int)w[k]->shape[0]) o -= (int)w[k]->shape[0], k++;
        const sq_view *wk = w[k];
        int out = (int)wk->shape[0], two = sq_quant_act_kind(wk->dtype) == 2;
        const uint8_t *wr = (const uint8_t *)wk->data + (size_t)o * (k < 8 ? rb[k] : row_bytes(wk));
        float bo = bias[k] ? bias[k][o] : 0;
        int r0 = 0;
#if defined(SQ_QUANT_HAVE_AVX2)
        if (groups && (wk->dtype == SQ_Q4_0 || wk->dtype == SQ_Q4_1 || wk->dtype == SQ_Q8_0))
            for (; r0 < 4 * groups; r0 += 4)
                sq__dot_q8_rows4t_vnni(y[k] + (size_t)r0 * out + o, out, wr, wk->dtype, q1 + (size_t)r0 * xs1, xs1,
                                       dsT + (size_t)(r0 / 4) * nb * 8, nb, bo);
#endif
        if (r0 < rows)
            fn(y[k] + (size_t)r0 * out + o, out, wr, wk->dtype, (two ? q2 : q1) + (size_t)r0 * (two ? xs2 : xs1),
               two ? xs2 : xs1, rows - r0, in, bo);
    }
    return 0;
}

#ifndef OUTS_N
#define OUTS_N 8
#endif

void sq_quant_matmul_part(float *y, const float *x, int rows, const sq_view *w, const float *bias, int o0, int o1) {
    int64_t in = w->shape[1];
    int out = (int)w->shape[0], kind = sq_quant_act_kind(w->dtype);
    if (o1 > out) o1 = out;
    if (rows <= 0 || o0 >= o1) return;
    size_t xs = sq_quant_act_bytes(kind, in), need = xs * (size_t)rows;
    /* Each thread rounds its own copy: in the one-region decode step every thread holds its
     * own copy of the normed rows anyway, and rounding a row costs far less than its dots. */
    _Alignas(64) uint8_t stack[32768];
    uint8_t *xq = need <= sizeof stack ? stack : malloc(need);
    if (!xq) { /* no memory for a 3-row scratch: say so in the numbers, not by crashing */
        for (int o = o0; o < o1; o++)
            for (int r = 0; r < rows; r++) y[(size_t)r * out + o] = NAN;
        return;
    }
    for (int r = 0; r < rows; r++) sq_quant_act_row(xq + (size_t)r * xs, x + (size_t)r * in, kind, in);
    sq_quant_matmul_part_q8(y, xq, xs, rows, w, bias, o0, o1);
    if (xq != stack) free(xq);
}

/* Outputs [o0, o1) of `rows` rows already rounded (xq, row stride xs): the several-outputs
 * kernels where they apply (one row), the rows kernel for the rest. Both sq_quant_matmul_part
 * and the phased step (sq_quant_matmul_range_x at 1-3 rows) come here, so the decode step
 * takes the same kernels as the matmul it replaced. */
void sq_quant_matmul_part_q8(float *y, const void *xqv, size_t xs, int rows, const sq_view *w, const float *bias,
                             int o0, int o1) {
    int64_t in = w->shape[1];
    int out = (int)w->shape[0], kind = sq_quant_act_kind(w->dtype);
    if (o1 > out) o1 = out;
    const uint8_t *xq = xqv;
    size_t rb = row_bytes(w);
    rows_fn fn = rows_kernel();
    int o = o0;
#if defined(SQ_QUANT_HAVE_AVX2)
    /* One row, VNNI: 8 (then 4) outputs at a time share each loaded x block. */
    if (rows == 1 && (w->dtype == SQ_Q4_0 || w->dtype == SQ_Q4_1 || w->dtype == SQ_Q8_0) && q8_level() == 2) {
        const uint8_t *wd = w->data;
        for (; o + OUTS_N <= o1; o += OUTS_N)
            sq__dot_q8_outs_vnni(y + o, wd + (size_t)o * rb, rb, w->dtype, xq, in / 32, bias ? bias + o : NULL, OUTS_N);
        for (; o + 4 <= o1; o += 4)
            sq__dot_q8_outs_vnni(y + o, wd + (size_t)o * rb, rb, w->dtype, xq, in / 32, bias ? bias + o : NULL, 4);
    }
    /* One row, K types: 4 outputs at a time share x's block sums, the reductions and the float steps. */
    if (rows == 1 && kind == 2 && q8_level() >= 1) {
        const uint8_t *wd = w->data;
        for (; o + 4 <= o1; o += 4)
            (q8_level() == 2 ? sq__dot_q8_outsk_vnni : sq__dot_q8_outsk_avx2)(y + o, wd + (size_t)o * rb, rb, w->dtype,
                                                                           xq, in, bias ? bias + o : NULL);
    }
    /* One row, 32-value blocks (AVX2: every type; VNNI: the rest, Q5_0/Q5_1): 4 outputs at a
     * time share each loaded x block. */
    if (rows == 1 && kind == 1 && q8_level() >= 1) {
        const uint8_t *wd = w->data;
        for (; o + 4 <= o1; o += 4)
            (q8_level() == 2 ? sq__dot_q8_outs4_vnni : sq__dot_q8_outs4_avx2)(y + o, wd + (size_t)o * rb, rb, w->dtype,
                                                                           xq, in / 32, bias ? bias + o : NULL);
    }
#endif
    for (; o < o1; o++)
        fn(y + o, out, (const uint8_t *)w->data + (size_t)o * rb, w->dtype, xq, xs, rows, in, bias ? bias[o] : 0);
}
