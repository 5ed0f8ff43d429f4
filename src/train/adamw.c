/* AdamW exactly as torch.optim.AdamW's single-tensor path (the CPU default): decay first,
 * then the moments (lerp form), then the bias-corrected update. Clipping as
 * torch.nn.utils.clip_grad_norm_. Schedules as HF transformers' *_with_warmup. */
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/train.h"

int sq_adamw_init(sq_adamw *o, size_t n, float beta1, float beta2, float eps, float weight_decay, sq_err *e) {
    memset(o, 0, sizeof *o);
    o->beta1 = beta1, o->beta2 = beta2, o->eps = eps, o->weight_decay = weight_decay;
    o->n = n;
    o->m = sq_malloc_aligned(n * sizeof(float));
    o->v = sq_malloc_aligned(n * sizeof(float));
    if (!o->m || !o->v) {
        sq_adamw_free(o);
        return sq_fail(e, SQ_ENOMEM, "train: out of memory for optimiser state of %zu parameters", n);
    }
    memset(o->m, 0, n * sizeof(float));
    memset(o->v, 0, n * sizeof(float));
    return 0;
}

void sq_adamw_free(sq_adamw *o) {
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}

/* One tensor's update. The AVX2 lanes do exactly the scalar operations in the same order
 * (no fused multiply-adds, correctly rounded sqrt and division), so both paths give the same
 * bits and a value does not depend on where a thread's range starts. Each gradient is first
 * multiplied by gscale (clipping's factor; times 1 is exact), and set to 0 after use when
 * zero is set. */
static void adamw_range(float *p, float *g, float *mm, float *vv, size_t n, float decay, float b1, float b2,
                        float step_size, float bc2_sqrt, float eps, float gscale, int zero) {
    size_t i = 0;
#if defined(__AVX2__)
    __m256 vdec = _mm256_set1_ps(decay), va = _mm256_set1_ps(1.0f - b1), vb2 = _mm256_set1_ps(b2),
           vb2c = _mm256_set1_ps(1.0f - b2), vbc = _mm256_set1_ps(bc2_sqrt), veps = _mm256_set1_ps(eps),
           vstep = _mm256_set1_ps(-step_size), vgs = _mm256_set1_ps(gscale);
    for (; i + 8 <= n; i += 8) {
        __m256 gi = _mm256_mul_ps(_mm256_loadu_ps(g + i), vgs), mi = _mm256_loadu_ps(mm + i),
               vi = _mm256_loadu_ps(vv + i);
        if (zero) _mm256_storeu_ps(g + i, _mm256_setzero_ps());
        __m256 pi = _mm256_mul_ps(_mm256_loadu_ps(p + i), vdec);
        mi = _mm256_add_ps(mi, _mm256_mul_ps(va, _mm256_sub_ps(gi, mi)));
        vi = _mm256_add_ps(_mm256_mul_ps(vi, vb2), _mm256_mul_ps(vb2c, _mm256_mul_ps(gi, gi)));
        __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), vbc), veps);
        pi = _mm256_add_ps(pi, _mm256_mul_ps(vstep, _mm256_div_ps(mi, denom)));
        _mm256_storeu_ps(mm + i, mi);
        _mm256_storeu_ps(vv + i, vi);
        _mm256_storeu_ps(p + i, pi);
    }
#endif
    for (; i < n; i++) {
        float gi = g[i] * gscale;
        if (zero) g[i] = 0.0f;
        p[i] *= decay;
        mm[i] += (1.0f - b1) * (gi - mm[i]);
        vv[i] = vv[i] * b2 + (1.0f - b2) * (gi * gi);
        float denom = sqrtf(vv[i]) / bc2_sqrt + eps;
        p[i] += -step_size * (mm[i] / denom);
    }
}

/* Elements per parallel work item: tensors are cut at multiples of this, whatever the
 * thread count. */
#define OPT_CHUNK 16384

void sq_adamw_step(sq_adamw *o, sq_tmodel *m, float lr) { sq_adamw_step_fused(o, m, lr, 1.0f, 0); }

void sq_adamw_step_fused(sq_adamw *o, sq_tmodel *m, float lr, float coef, int zero_grads) {
    sq_tp_start();
    o->step++;
    float b1 = o->beta1, b2 = o->beta2;
    double bc1 = 1.0 - pow(b1, (double)o->step), bc2 = 1.0 - pow(b2, (double)o->step);
    float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    for (int ti = 0; ti < m->n_tensors; ti++) {
        const sq_tm_tensor *t = &m->tensors[ti];
        float decay = t->decay ? 1.0f - lr * o->weight_decay : 1.0f;
        float *p = m->params + t->offset, *g = m->grads + t->offset;
        float *mm = o->m + t->offset, *vv = o->v + t->offset;
        long chunks = (long)((t->numel + OPT_CHUNK - 1) / OPT_CHUNK);
#pragma omp parallel for schedule(static) if (t->numel > SQ_PAR_MIN)
        for (long c = 0; c < chunks; c++) {
            size_t i0 = (size_t)c * OPT_CHUNK, n = t->numel - i0 < OPT_CHUNK ? t->numel - i0 : OPT_CHUNK;
            adamw_range(p + i0, g + i0, mm + i0, vv + i0, n, decay, b1, b2, step_size, bc2_sqrt, o->eps, coef,
                        zero_grads);
        }
    }
    sq_tp_mark(SQ_TP_ADAMW);
}

/* Sum of squares of one chunk in double, four interleaved partial sums. */
static double sumsq(const float *g, size_t n) {
    double s[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++) s[k] += (double)g[i + k] * g[i + k];
    for (; i < n; i++) s[0] += (double)g[i] * g[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

double sq_grad_norm_coef(const sq_tmodel *m, double max_norm, float *coef) {
    /* Chunk sums are computed in parallel and added in chunk order: the norm does not
     * depend on the thread count. */
    sq_tp_start();
    double ss = 0;
    for (int ti = 0; ti < m->n_tensors; ti++) {
        const sq_tm_tensor *t = &m->tensors[ti];
        const float *g = m->grads + t->offset;
        long chunks = (long)((t->numel + OPT_CHUNK - 1) / OPT_CHUNK);
        double part[64], s = 0;
        for (long c0 = 0; c0 < chunks; c0 += 64) {
            long nc = chunks - c0 < 64 ? chunks - c0 : 64;
#pragma omp parallel for schedule(static) if (t->numel > SQ_PAR_MIN)
            for (long c = 0; c < nc; c++) {
                size_t i0 = (size_t)(c0 + c) * OPT_CHUNK;
                part[c] = sumsq(g + i0, t->numel - i0 < OPT_CHUNK ? t->numel - i0 : OPT_CHUNK);
            }
            for (long c = 0; c < nc; c++) s += part[c];
        }
        ss += s;
    }
    double norm = sqrt(ss);
    *coef = 1.0f;
    if (max_norm > 0) {
        double c = max_norm / (norm + 1e-6);
        if (c < 1.0) *coef = (float)c;
    }
    sq_tp_mark(SQ_TP_CLIP);
    return norm;
}

double sq_clip_grad_norm(sq_tmodel *m, double max_norm) {
    float cf;
    double norm = sq_grad_norm_coef(m, max_norm, &cf);
    if (cf != 1.0f) {
        sq_tp_start();
        float *g = m->grads;
#pragma omp parallel for schedule(static) if (m->n_params > SQ_PAR_MIN)
        for (size_t i = 0; i < m->n_params; i++) g[i] *= cf;
        sq_tp_mark(SQ_TP_CLIP);
    }
    return norm;
}

double sq_sched_factor(sq_sched_kind k, int64_t step, int64_t total, int64_t warmup) {
    if (step < warmup) return (double)step / (double)(warmup > 1 ? warmup : 1);
    if (k == SQ_SCHED_CONSTANT) return 1.0;
    int64_t span = total - warmup > 1 ? total - warmup : 1;
    double progress = (double)(step - warmup) / (double)span;
    if (k == SQ_SCHED_LINEAR) {
        double f = (double)(total - step) / (double)span;
        return f > 0 ? f : 0;
    }
    double f = 0.5 * (1.0 + cos(M_PI * progress));
    return f > 0 ? f : 0;
}

int sq_sched_parse(const char *name, sq_sched_kind *k) {
    if (!strcmp(name, "cosine")) *k = SQ_SCHED_COSINE;
    else if (!strcmp(name, "linear")) *k = SQ_SCHED_LINEAR;
    else if (!strcmp(name, "constant")) *k = SQ_SCHED_CONSTANT;
    else return SQ_EINVAL;
    return 0;
}
