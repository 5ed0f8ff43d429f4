/* The batched (4+ rows) matmul of quantized weights on 8-bit activations: sq_quant_matmul_n
 * hands such calls here first (sq__quant_gemm_n), and takes them back (return 0) where no
 * tile kernel applies: the C code (the reference), the K types or Q8_0 on AVX2 (no AVX2 K
 * tile; AVX2's Q8_0 tile measured no faster than the per-row kernel).
 *
 * Each activation row is rounded once (as sq_quant_matmul_n does), then the outputs are cut
 * into tiles of 8 weight rows; a thread unpacks a tile's blocks once into its own scratch and
 * runs every group of 4 rows over it (quant_q8_gemm_x86.c), so a weight block is unpacked
 * once per matmul, not once per row, and the unpacked tile stays in cache while the rows go
 * by. The per-output arithmetic is the C reference's (quant_q8.c), so every row's results
 * equal the GEMV's bit for bit, whatever the batch. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "quant_internal.h"
#include "quant_q8_gemm.h"
#include "scalequest/quant.h"

/* Which tile kernel takes weights of type t: 1 the 32-value blocks, 2 the K types (VNNI
 * only), 0 none. */
static int tile_kind(sq_dtype t, int vnni) {
    if (t == SQ_Q4_0 || t == SQ_Q4_1 || t == SQ_Q5_0 || t == SQ_Q5_1) return 1;
    if (t == SQ_Q8_0) return vnni; /* AVX2's Q8_0 tile needs the sign trick per row and output:
                                      no faster than the rows kernel there */
    if (t == SQ_Q4_K || t == SQ_Q5_K || t == SQ_Q6_K) return vnni ? 2 : 0;
    return 0;
}

int sq__quant_gemm_n(void **buf, size_t *cap, int n, float *const y[], const float *x, int rows,
                     const sq_view *const w[], const float *const bias[], sq_err *e) {
#if defined(SQ_QUANT_HAVE_AVX2)
    enum { MAXN = 8 };
    const char *impl = sq_quant_q8_impl();
    int vnni = strcmp(impl, "avx512vnni") == 0;
    if (rows < 4 || n <= 0 || n > MAXN || (!vnni && strcmp(impl, "avx2") != 0)) return 0;
    int64_t in = w[0]->shape[1];
    int tiles[MAXN + 1] = {0}, kinds = 0;
    for (int k = 0; k < n; k++) {
        /* anything unusual (and every error) goes to sq_quant_matmul_n's own checks */
        int tk = tile_kind(w[k]->dtype, vnni);
        if (w[k]->ndim != 2 || !tk || w[k]->shape[1] != in || in <= 0 || in % (tk == 2 ? 256 : 32)) return 0;
        kinds |= tk;
        tiles[k + 1] = tiles[k] + (int)((w[k]->shape[0] + SQ_Q8G_TILE - 1) / SQ_Q8G_TILE);
    }
    /* Activations: 32-value-block rows (xs each; VNNI: the tile's rows, xds each, instead),
     * Q8_K rows (xs2), the K tile's int16 rows (xks); one tile scratch per thread (the same
     * size for both kernels: 18 bytes a value). */
    size_t xs = sq_quant_act_bytes(1, in), xs2 = sq_quant_act_bytes(2, in), xks = sq__q8g_krow_bytes(in);
    size_t xds = sq__q8g_drow_bytes(in);
    size_t a1 = (kinds & 1) && !vnni ? (xs * (size_t)rows + 63) & ~(size_t)63 : 0; /* VNNI: xd only */
    size_t a4 = (kinds & 1) && vnni ? (xds * (size_t)rows + 63) & ~(size_t)63 : 0;
    size_t a2 = (kinds & 2) ? (xs2 * (size_t)rows + 63) & ~(size_t)63 : 0;
    size_t a3 = (kinds & 2) ? (xks * (size_t)rows + 63) & ~(size_t)63 : 0;
    size_t tbytes = (size_t)(in / 32) * SQ_Q8G_TILE_BYTES_PER_BLOCK;
    int nt = omp_get_max_threads();
    size_t need = a1 + a2 + a3 + a4 + (size_t)nt * tbytes + 64;
    if (need > *cap) {
        void *p = sq_malloc_aligned(need);
        if (!p) return sq_fail(e, SQ_ENOMEM, "matmul: out of memory for %zu bytes of 8-bit activations", need);
        free(*buf);
        *buf = p;
        *cap = need;
    }
    uint8_t *xq = *buf, *x2 = xq + a1, *xk = x2 + a2, *xd = xk + a3, *scratch = xd + a4;
    int total = tiles[n];
    int64_t work = (int64_t)rows * in * total * SQ_Q8G_TILE;
    /* One parallel region for the rounding and the tiles: one fork/join per matmul. */
#pragma omp parallel num_threads(nt) if (work > (1 << 16))
    {
#pragma omp for schedule(static)
        for (int r = 0; r < rows; r++) {
            if (a4) /* VNNI tiles take every 32-value-block type here: only their rows */
                sq__q8g_round_vnni(NULL, xd + (size_t)r * xds, x + (size_t)r * in, in / 32);
            else if (kinds & 1)
                sq_quant_act_row(xq + (size_t)r * xs, x + (size_t)r * in, 1, in);
            if (kinds & 2) {
                sq_quant_act_row(x2 + (size_t)r * xs2, x + (size_t)r * in, 2, in);
                sq__q8g_krow_vnni(xk + (size_t)r * xks, x2 + (size_t)r * xs2, in / 256);
            }
        }
        uint8_t *tile = scratch + (size_t)omp_get_thread_num() * tbytes;
#pragma omp for schedule(static)
        for (int g = 0; g < total; g++) {
            int k = 0;
            while (g >= tiles[k + 1]) k++;
            const sq_view *wk = w[k];
            int out = (int)wk->shape[0], o0 = (g - tiles[k]) * SQ_Q8G_TILE;
            int nout = out - o0 < SQ_Q8G_TILE ? out - o0 : SQ_Q8G_TILE;
            size_t bb;
            int per = sq_dtype_block(wk->dtype, &bb);
            size_t rb = (size_t)(in / per) * bb;
            const uint8_t *wr = (const uint8_t *)wk->data + (size_t)o0 * rb;
            float *yk = y[k] + o0;
            const float *bk = bias[k] ? bias[k] + o0 : NULL;
            if (per == 256)
                sq__q8g_ktile_vnni(yk, out, wr, rb, nout, wk->dtype, xk, xks, rows, in / 256, bk, tile);
            else if (vnni)
                sq__q8g_tile_vnni(yk, out, wr, rb, nout, wk->dtype, xd, xds, rows, in / 32, bk, tile);
            else
                sq__q8g_tile_avx2(yk, out, wr, rb, nout, wk->dtype, xq, xs, rows, in / 32, bk, tile);
        }
    }
    return 1;
#else
    (void)buf, (void)cap, (void)n, (void)y, (void)x, (void)rows, (void)w, (void)bias, (void)e;
    return 0;
#endif
}

/* ---- x rounded once per step, outputs by ranges (the engine's phased step) --------------- */

static size_t al64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Whether 4+ rows of these kinds need the VNNI tiles' rows (kind k: 1 the 32-value tile's,
 * 2 the K tile's): only where those tiles run. */
static int want_tile_rows(int kinds, int k, int rows) {
#if defined(SQ_QUANT_HAVE_AVX2)
    return (kinds & k) && rows >= 4 && strcmp(sq_quant_q8_impl(), "avx512vnni") == 0;
#else
    return (void)kinds, (void)k, (void)rows, 0;
#endif
}

size_t sq_quant_xrows_bytes(int64_t max_in, int rows) {
    size_t r = (size_t)(rows > 0 ? rows : 0);
    return al64(sq_quant_act_bytes(1, max_in) * r) + al64(sq_quant_act_bytes(2, max_in) * r) +
           al64(sq__q8g_krow_bytes(max_in) * r) + al64(sq__q8g_drow_bytes(max_in) * r);
}

void sq_quant_xrows_init(sq_quant_xrows *q, void *buf, int kinds, int64_t in, int rows) {
    uint8_t *p = buf;
    size_t r = (size_t)rows;
    memset(q, 0, sizeof *q);
    q->in = in;
    if (kinds & 1) q->q1 = p, q->s1 = sq_quant_act_bytes(1, in), p += al64(q->s1 * r);
    if (kinds & 2) q->q2 = p, q->s2 = sq_quant_act_bytes(2, in), p += al64(q->s2 * r);
    if (want_tile_rows(kinds, 2, rows)) q->qk = p, q->sk = sq__q8g_krow_bytes(in), p += al64(q->sk * r);
    if (want_tile_rows(kinds, 1, rows)) q->qd = p, q->sd = sq__q8g_drow_bytes(in);
}

void sq_quant_xrows_round(const sq_quant_xrows *q, const float *x, int r0, int r1) {
    for (int r = r0; r < r1; r++) {
        const float *xr = x + (size_t)r * q->in;
        if (q->q1 && !q->qd) sq_quant_act_row(q->q1 + (size_t)r * q->s1, xr, 1, q->in);
        if (q->q2) sq_quant_act_row(q->q2 + (size_t)r * q->s2, xr, 2, q->in);
#if defined(SQ_QUANT_HAVE_AVX2)
        if (q->qk) sq__q8g_krow_vnni(q->qk + (size_t)r * q->sk, q->q2 + (size_t)r * q->s2, q->in / 256);
        if (q->qd) sq__q8g_round_vnni(q->q1 + (size_t)r * q->s1, q->qd + (size_t)r * q->sd, xr, q->in / 32);
#endif
    }
}

size_t sq_quant_tile_bytes(int64_t in) { return (size_t)(in / 32) * SQ_Q8G_TILE_BYTES_PER_BLOCK; }

void sq_quant_matmul_range_x(float *y, const sq_quant_xrows *q, int rows, const sq_view *w, const float *bias, int o0,
                             int o1, void *tile) {
    int out = (int)w->shape[0], kind = sq_quant_act_kind(w->dtype);
    if (o1 > out) o1 = out;
    if (o0 >= o1) return;
#if defined(SQ_QUANT_HAVE_AVX2)
    const char *impl = sq_quant_q8_impl();
    int vnni = strcmp(impl, "avx512vnni") == 0, tk = tile_kind(w->dtype, vnni);
    if (rows >= 4 && tk && (vnni || strcmp(impl, "avx2") == 0) && (tk == 1 ? !vnni || q->qd : q->qk != NULL)) {
        /* the tiles of sq__quant_gemm_n, from o0 (a multiple of the tile) */
        size_t bb;
        int per = sq_dtype_block(w->dtype, &bb);
        int64_t in = q->in;
        size_t rb = (size_t)(in / per) * bb;
        for (int o = o0; o < o1; o += SQ_Q8G_TILE) {
            int nout = o1 - o < SQ_Q8G_TILE ? o1 - o : SQ_Q8G_TILE;
            const uint8_t *wr = (const uint8_t *)w->data + (size_t)o * rb;
            const float *bo = bias ? bias + o : NULL;
            if (per == 256)
                sq__q8g_ktile_vnni(y + o, out, wr, rb, nout, w->dtype, q->qk, q->sk, rows, in / 256, bo, tile);
            else if (vnni)
                sq__q8g_tile_vnni(y + o, out, wr, rb, nout, w->dtype, q->qd, q->sd, rows, in / 32, bo, tile);
            else
                sq__q8g_tile_avx2(y + o, out, wr, rb, nout, w->dtype, q->q1, q->s1, rows, in / 32, bo, tile);
        }
        return;
    }
#else
    (void)tile;
#endif
    if (kind == 2)
        sq_quant_matmul_part_q8(y, q->q2, q->s2, rows, w, bias, o0, o1);
    else
        sq_quant_matmul_part_q8(y, q->q1, q->s1, rows, w, bias, o0, o1);
}
