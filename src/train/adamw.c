/* AdamW exactly as torch.optim.AdamW's single-tensor path (the CPU default): decay first,
 * then the moments (lerp form), then the bias-corrected update. Clipping as
 * torch.nn.utils.clip_grad_norm_. Schedules as HF transformers' *_with_warmup. */
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

void sq_adamw_step(sq_adamw *o, sq_tmodel *m, float lr) {
    o->step++;
    float b1 = o->beta1, b2 = o->beta2;
    double bc1 = 1.0 - pow(b1, (double)o->step), bc2 = 1.0 - pow(b2, (double)o->step);
    float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    for (int ti = 0; ti < m->n_tensors; ti++) {
        const sq_tm_tensor *t = &m->tensors[ti];
        float decay = t->decay ? 1.0f - lr * o->weight_decay : 1.0f;
        float *p = m->params + t->offset, *g = m->grads + t->offset;
        float *mm = o->m + t->offset, *vv = o->v + t->offset;
#pragma omp parallel for schedule(static) if (t->numel > SQ_PAR_MIN)
        for (size_t i = 0; i < t->numel; i++) {
            p[i] *= decay;
            mm[i] += (1.0f - b1) * (g[i] - mm[i]);
            vv[i] = vv[i] * b2 + (1.0f - b2) * (g[i] * g[i]);
            float denom = sqrtf(vv[i]) / bc2_sqrt + o->eps;
            p[i] += -step_size * (mm[i] / denom);
        }
    }
}

double sq_clip_grad_norm(sq_tmodel *m, double max_norm) {
    double ss = 0;
    for (int ti = 0; ti < m->n_tensors; ti++) {
        const sq_tm_tensor *t = &m->tensors[ti];
        const float *g = m->grads + t->offset;
        double s = 0;
        for (size_t i = 0; i < t->numel; i++) s += (double)g[i] * g[i];
        ss += s;
    }
    double norm = sqrt(ss);
    if (max_norm > 0) {
        double coef = max_norm / (norm + 1e-6);
        if (coef < 1.0) {
            float cf = (float)coef;
            for (int ti = 0; ti < m->n_tensors; ti++) {
                const sq_tm_tensor *t = &m->tensors[ti];
                float *g = m->grads + t->offset;
                for (size_t i = 0; i < t->numel; i++) g[i] *= cf;
            }
        }
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
