/* The engine's attention alone, at the pipeline's context lengths: the batched kernel
 * (sq_attention_plan + sq_attention_run over work units, as the forward pass calls it)
 * against the per-(token, head) loop the forward pass ran before (the earlier
 * sq_attention_head, frozen below, under an `omp parallel for` over token x head), in one
 * process, alternating, on the same cache and queries. The outputs are compared: the new
 * kernel's softmax takes the 8-lane vector exp, the old one libm's expf, so they agree to
 * a few ulp, not bit for bit (bit-exactness of the new kernel against sq_attention_head is
 * tests/test_kv.c's job).
 *
 *   bench_attention [f32|f16|bf16] [REPS] [qwen05|stories15m]
 *
 * Shapes: Qwen2-0.5B's attention (14 query heads, 2 KV heads, head_dim 64), blocks of 16
 * positions, LAYERS layers of cache (distinct memory, so the working set exceeds the last
 * level cache as 24 layers do): decode of B independent sequences at context C, decode of B
 * sequences that are n = 5 samples of B/5 prompts (the prompt's blocks shared, each sample's
 * own tail), the same B sequences with nothing shared, and prefills of T tokens. Prints per
 * case the time of one step over all layers, the ratio old / new, and the bytes of distinct
 * K/V the step must read per second. */
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/model.h"
#include "scalequest/tensor.h"
/* The kernels' private vector helpers: the frozen copy of the earlier kernel below needs them. */
#include "../src/kernels/simd.h"

/* ---- before: the per-(token, head) kernel as it was, frozen here as the baseline ----- */
static void old_widen_f16(float *out, const uint16_t *x, int n) {
    int i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i))));
#elif defined(__F16C__) && defined(__AVX__)
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
#endif
    if (i < n) sq_f16_to_f32_row(out + i, x + i, (size_t)(n - i));
}

static void old_widen_bf16(float *out, const uint16_t *x, int n) {
    int i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= n; i += 16) {
        __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(x + i)));
        _mm512_storeu_ps(out + i, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
    }
#elif defined(__AVX2__)
    for (; i + 8 <= n; i += 8) {
        __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(x + i)));
        _mm256_storeu_ps(out + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
    }
#endif
    if (i < n) sq_bf16_to_f32_row(out + i, x + i, (size_t)(n - i));
}

/* Elements [c0, c0 + n) of position p's key or value row for kv head kvh, as floats: the
 * cache's own memory for F32; widened into buf (n <= SQ_KV_MAX_HEAD_DIM) otherwise. Every
 * path below reads rows through this, so a 16-bit cache is attended exactly as an F32 cache
 * holding the rounded values. */
static inline const float *old_kv_row(const sq_attn_args *a, const void *base, int p, int kvh, int c0, int n,
                                  float *buf) {
    size_t slot = (size_t)a->blocks[p / a->block_size] * a->block_size + p % a->block_size;
    size_t off = slot * a->kv_stride + (size_t)kvh * a->head_dim + c0;
    if (a->kv_type == SQ_KV_F16)
        old_widen_f16(buf, (const uint16_t *)base + off, n);
    else if (a->kv_type == SQ_KV_BF16)
        old_widen_bf16(buf, (const uint16_t *)base + off, n);
    else
        return (const float *)base + off;
    return buf;
}

static void old_attention_head(const sq_attn_args *a, const float *q, int head, int start, int n_pos, float *scratch,
                       float *out) {
    int d = a->head_dim, kvh = head / (a->n_heads / a->n_kv_heads);
    const float *qh = q + (size_t)head * d;
    float scale = 1.0f / sqrtf((float)d), mx = -INFINITY;
    float kbuf[4][SQ_KV_MAX_HEAD_DIM] __attribute__((aligned(64)));
    int p = start;
#if defined(__AVX2__) && defined(__FMA__) && !defined(__AVX512F__)
    /* Four positions at a time: four independent chains of FMAs instead of one (each dot
     * product alone is latency-bound at head_dim 64), each summed exactly as sq__dot does. */
    int full = d / 8 * 8;
    for (; p + 4 <= n_pos; p += 4) {
        const float *k[4];
        for (int j = 0; j < 4; j++) k[j] = old_kv_row(a, a->k_base, p + j, kvh, 0, d, kbuf[j]);
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int i = 0; i < full; i += 8) {
            __m256 qv = _mm256_loadu_ps(qh + i);
            a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[0] + i), a0);
            a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[1] + i), a1);
            a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[2] + i), a2);
            a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[3] + i), a3);
        }
        float sj[4] = {sq__hsum256(a0), sq__hsum256(a1), sq__hsum256(a2), sq__hsum256(a3)};
        for (int j = 0; j < 4; j++) {
            for (int i = full; i < d; i++) sj[j] += qh[i] * k[j][i];
            float s = sj[j] * scale;
            scratch[p + j] = s;
            if (s > mx) mx = s;
        }
    }
#endif
    for (; p < n_pos; p++) {
        float s = sq__dot(qh, old_kv_row(a, a->k_base, p, kvh, 0, d, kbuf[0]), d) * scale;
        scratch[p] = s;
        if (s > mx) mx = s;
    }
    double sum = 0;
    for (p = start; p < n_pos; p++) {
        scratch[p] = expf(scratch[p] - mx);
        sum += scratch[p];
    }
    float inv = (float)(1.0 / sum);
    float *o = out + (size_t)head * d;
    for (int i = 0; i < d; i++) o[i] = 0;
    int c0 = 0;
#if defined(__AVX2__) && defined(__FMA__) && !defined(__AVX512F__)
    /* 64 outputs at a time held in registers over all positions (sq__axpy would load and
     * store them at every position); each element gets the same FMAs in the same order. */
    for (; c0 + 64 <= d; c0 += 64) {
        __m256 r[8];
        for (int j = 0; j < 8; j++) r[j] = _mm256_setzero_ps();
        for (p = start; p < n_pos; p++) {
            const float *v = old_kv_row(a, a->v_base, p, kvh, c0, 64, kbuf[0]);
            __m256 w = _mm256_set1_ps(scratch[p] * inv);
            for (int j = 0; j < 8; j++) r[j] = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 8 * j), r[j]);
        }
        for (int j = 0; j < 8; j++) _mm256_storeu_ps(o + c0 + 8 * j, r[j]);
    }
#endif
    if (c0 < d)
        for (p = start; p < n_pos; p++)
            sq__axpy(o + c0, scratch[p] * inv, old_kv_row(a, a->v_base, p, kvh, c0, d - c0, kbuf[0]), d - c0);
}

/* ---- end of the frozen copy -------------------------------------------------------- */

enum { BS = 16, LAYERS = 6 };
/* Heads: Qwen2-0.5B's by default; "stories15m" for 6 heads of 48, one per kv head. */
static int H = 14, KVH = 2, HD = 64;

typedef struct {
    const char *name;
    int n;                 /* tokens in the step */
    int32_t *pos;
    const int32_t **tab;
    int32_t *tables;       /* per sequence, max_blocks each */
    size_t distinct;       /* positions of K/V (per layer) the step must read at least once */
} step;

static uint32_t rng = 12345;
static float frand(void) {
    rng = rng * 1664525u + 1013904223u;
    return ((float)(rng >> 8) / (float)(1 << 24) - 0.5f) * 4.0f;
}

/* A decode step of nseq sequences at context ctx; groups of `share` sequences have their
 * first `prompt` positions in the same blocks (share = 1: nothing shared). */
static step make_decode(const char *name, int nseq, int ctx, int share, int prompt, int *next_block, int nblocks) {
    step s = {name, nseq, malloc(sizeof(int32_t) * nseq), malloc(sizeof(void *) * nseq), NULL, 0};
    int per = (ctx + BS - 1) / BS, shared_blocks = share > 1 ? prompt / BS : 0;
    s.tables = malloc(sizeof(int32_t) * nseq * per);
    for (int i = 0; i < nseq; i++) {
        int32_t *t = s.tables + (size_t)i * per;
        for (int j = 0; j < per; j++) {
            if (j < shared_blocks && i % share)
                t[j] = s.tables[(size_t)(i - i % share) * per + j];
            else
                t[j] = (*next_block)++ % nblocks;
        }
        s.pos[i] = ctx - 1;
        s.tab[i] = t;
        s.distinct += (size_t)(i % share ? ctx - shared_blocks * BS : ctx);
    }
    return s;
}

static step make_prefill(const char *name, int T, int *next_block, int nblocks) {
    step s = {name, T, malloc(sizeof(int32_t) * T), malloc(sizeof(void *) * T), NULL, (size_t)T};
    int per = (T + BS - 1) / BS;
    s.tables = malloc(sizeof(int32_t) * per);
    for (int j = 0; j < per; j++) s.tables[j] = (*next_block)++ % nblocks;
    for (int i = 0; i < T; i++) {
        s.pos[i] = i;
        s.tab[i] = s.tables;
    }
    return s;
}

int main(int argc, char **argv) {
    int type = argc > 1 ? sq_kv_type_parse(argv[1]) : SQ_KV_F32, reps = argc > 2 ? atoi(argv[2]) : 3;
    if (argc > 3 && !strcmp(argv[3], "stories15m")) H = 6, KVH = 6, HD = 48;
    if (type < 0 || reps <= 0) return fprintf(stderr, "usage: bench_attention [f32|f16|bf16] [REPS] [qwen05|stories15m]\n"), 2;
    size_t es = sq_kv_type_size(type);
    int kvd = KVH * HD, qd = H * HD, nt = omp_get_max_threads(), max_ctx = 2304;
    int nblocks = 64 * (2048 + BS) / BS; /* the largest case: 64 sequences at 2048 */
    size_t elems = (size_t)nblocks * BS * kvd;
    void *k[LAYERS], *v[LAYERS];
    for (int l = 0; l < LAYERS; l++) {
        k[l] = sq_malloc_aligned(elems * es);
        v[l] = sq_malloc_aligned(elems * es);
        if (!k[l] || !v[l]) return fprintf(stderr, "out of memory\n"), 1;
        for (size_t i = 0; i < elems; i++) {
            float a = frand(), b = frand();
            if (type == SQ_KV_F32)
                ((float *)k[l])[i] = a, ((float *)v[l])[i] = b;
            else if (type == SQ_KV_F16)
                ((uint16_t *)k[l])[i] = sq_f32_to_f16(a), ((uint16_t *)v[l])[i] = sq_f32_to_f16(b);
            else
                ((uint16_t *)k[l])[i] = sq_f32_to_bf16(a), ((uint16_t *)v[l])[i] = sq_f32_to_bf16(b);
        }
    }
    int nb = 0;
    step steps[16];
    int ns = 0;
    nb = 0, steps[ns++] = make_decode("decode B=8 ctx=1024", 8, 1024, 1, 0, &nb, nblocks);
    nb = 0, steps[ns++] = make_decode("decode B=32 ctx=1024", 32, 1024, 1, 0, &nb, nblocks);
    nb = 0, steps[ns++] = make_decode("decode B=64 ctx=1024", 64, 1024, 1, 0, &nb, nblocks);
    nb = 0, steps[ns++] = make_decode("decode B=64 ctx=2048", 64, 2048, 1, 0, &nb, nblocks);
    nb = 0, steps[ns++] = make_decode("n=5 x 13 prompts, prompt 1024, ctx 1280", 65, 1280, 5, 1024, &nb, nblocks);
    nb = 0, steps[ns++] = make_decode("65 independent, ctx 1280", 65, 1280, 1, 0, &nb, nblocks);
    nb = 0, steps[ns++] = make_decode("n=5 x 13 prompts, prompt 128, ctx 1152", 65, 1152, 5, 128, &nb, nblocks);
    nb = 0, steps[ns++] = make_decode("n=5 x 1 prompt, prompt 1024, ctx 1280", 5, 1280, 5, 1024, &nb, nblocks);
    nb = 0, steps[ns++] = make_decode("5 independent, ctx 1280", 5, 1280, 1, 0, &nb, nblocks);
    nb = 0, steps[ns++] = make_prefill("prefill T=256", 256, &nb, nblocks);
    nb = 0, steps[ns++] = make_prefill("prefill T=512", 512, &nb, nblocks);
    nb = 0, steps[ns++] = make_prefill("prefill T=1024", 1024, &nb, nblocks);
    int tmax = 1024;
    float *q = sq_malloc_aligned((size_t)tmax * qd * 4), *o1 = sq_malloc_aligned((size_t)tmax * qd * 4),
          *o2 = sq_malloc_aligned((size_t)tmax * qd * 4);
    size_t sfl = sq_attention_scratch_floats(max_ctx, H, KVH, HD);
    float *scr = sq_malloc_aligned((size_t)nt * sfl * 4), *old_scr = sq_malloc_aligned((size_t)nt * max_ctx * 4);
    int32_t *mem = malloc(sizeof(int32_t) * sq_attention_plan_ints(tmax));
    if (!q || !o1 || !o2 || !scr || !old_scr || !mem) return fprintf(stderr, "out of memory\n"), 1;
    for (size_t i = 0; i < (size_t)tmax * qd; i++) q[i] = frand();
    printf("attention alone: %d threads, %s cache, %d layers of %d heads / %d kv heads x %d, blocks of %d\n", nt,
           sq_kv_type_name(type), LAYERS, H, KVH, HD, BS);
    printf("%-42s %10s %10s %7s %9s %9s\n", "case", "old ms", "new ms", "old/new", "old GB/s", "new GB/s");
    for (int si = 0; si < ns; si++) {
        step *s = &steps[si];
        sq_attn_plan plan;
        double best_old = 1e9, best_new = 1e9;
        for (int r = 0; r < reps; r++)
            for (int which = 0; which < 2; which++) {
                double t0 = sq_now();
                for (int l = 0; l < LAYERS; l++) {
                    sq_attn_args a = {k[l], v[l], NULL, BS, kvd, H, KVH, HD, type};
                    if (which == 0) {
#pragma omp parallel for schedule(dynamic, 1)
                        for (int w = 0; w < s->n * H; w++) {
                            int t = w / H, h = w % H;
                            sq_attn_args aa = a;
                            aa.blocks = s->tab[t];
                            old_attention_head(&aa, q + (size_t)t * qd, h, 0, s->pos[t] + 1,
                                              old_scr + (size_t)omp_get_thread_num() * max_ctx, o1 + (size_t)t * qd);
                        }
                    } else {
                        /* The plan is made once per step in the forward pass; here per layer. */
                        sq_attention_plan(&plan, mem, s->n, s->pos, s->tab, BS, H, KVH);
                        sq_attn_batch b = {.a = a, .plan = &plan, .q = q, .out = o2, .pos = s->pos, .blocks = s->tab,
                                           .max_ctx = max_ctx};
                        int W = sq_attention_work_count(&b);
#pragma omp parallel for schedule(dynamic, 1)
                        for (int w = 0; w < W; w++)
                            sq_attention_run(&b, w, w + 1, scr + (size_t)omp_get_thread_num() * sfl);
                    }
                }
                double dt = sq_now() - t0;
                if (which == 0 && dt < best_old) best_old = dt;
                if (which == 1 && dt < best_new) best_new = dt;
            }
        double worst = 0;
        for (size_t i = 0; i < (size_t)s->n * qd; i++) {
            double dlt = fabs((double)o1[i] - o2[i]) / (fabs((double)o1[i]) + 1e-3);
            worst = dlt > worst ? dlt : worst;
        }
        if (worst > 1e-4) {
            fprintf(stderr, "%s: the two paths differ (relative %g)\n", s->name, worst);
            return 1;
        }
        double bytes = (double)s->distinct * kvd * es * 2 * LAYERS;
        printf("%-42s %10.2f %10.2f %7.2f %9.1f %9.1f\n", s->name, best_old * 1e3, best_new * 1e3, best_old / best_new,
               bytes / best_old / 1e9, bytes / best_new / 1e9);
    }
    return 0;
}
