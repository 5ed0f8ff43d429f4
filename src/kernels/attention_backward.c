/* Causal attention backward with grouped-query heads and packed examples, as GEMMs per head
 * over the same row blocks as the forward (only the columns a block reaches):
 *   dP = dO V^T,  dS = P (.) (dP - rowsum(P (.) dP)) * scale,
 *   dV += P^T dO,  dQ = dS K,  dK += dS^T Q.
 * Work is split by (row of the batch, kv head) so the heads of one group, which all add into
 * the same dk/dv slots, run on one thread: no atomics, and the result does not depend on
 * thread timing. Tasks are handed out as threads come free (on a shared machine a thread
 * that loses its core does not hold the others up). */
#include <math.h>
#include <string.h>

#include "../train/tm_internal.h"
#include "../train/tvec.h"

void sq_attention_backward(float *dq, float *dk, float *dv, int ld, const float *dout, const float *q,
                           const float *k, const float *v, const float *att, const int32_t *seg_start,
                           int B, int T, int H, int KV, int hd, float *scratch) {
    int qd = H * hd, kd = KV * hd, group = H / KV, TB = sq_tk_att_block(T);
    float scale = 1.0f / sqrtf((float)hd);
    for (size_t i = 0; i < (size_t)B * T; i++) {
        memset(dk + i * ld, 0, (size_t)kd * sizeof(float));
        memset(dv + i * ld, 0, (size_t)kd * sizeof(float));
    }
    sq_tgemm_single_threaded();
#pragma omp parallel if ((size_t)B * T * T * H * hd > 4 * SQ_PAR_MIN)
    {
#pragma omp for collapse(2) schedule(dynamic, 1)
        for (int b = 0; b < B; b++)
            for (int kh = 0; kh < KV; kh++) {
                /* dS of one row block, in this task's own slice of the scratch. */
                float *ds = scratch + ((size_t)b * KV + kh) * TB * T;
                const float *kb = k + (size_t)b * T * ld + (size_t)kh * hd;
                const float *vb = v + (size_t)b * T * ld + (size_t)kh * hd;
                float *dkb = dk + (size_t)b * T * ld + (size_t)kh * hd;
                float *dvb = dv + (size_t)b * T * ld + (size_t)kh * hd;
                const int32_t *seg = seg_start + (size_t)b * T;
                for (int h = kh * group; h < (kh + 1) * group; h++) {
                    const float *P = att + ((size_t)b * H + h) * T * T;
                    const float *doh = dout + (size_t)b * T * qd + (size_t)h * hd;
                    const float *qh = q + (size_t)b * T * ld + (size_t)h * hd;
                    float *dqh = dq + (size_t)b * T * ld + (size_t)h * hd;
                    for (int r0 = 0; r0 < T; r0 += TB) {
                        int r1 = r0 + TB < T ? r0 + TB : T, c0 = sq_tk_att_block_start(seg, r0, r1), w = r1 - c0;
                        const float *Pb = P + (size_t)r0 * T + c0;
                        sq_tgemm(0, 1, r1 - r0, w, hd, 1.0f, doh + (size_t)r0 * qd, qd, vb + (size_t)c0 * ld, ld,
                                 0.0f, ds, w);
                        for (int i = r0; i < r1; i++) {
                            const float *p = Pb + (size_t)(i - r0) * T;
                            float *d = ds + (size_t)(i - r0) * w;
                            float rs = sq_tv_dot(p, d, (size_t)w);
#pragma omp simd
                            for (int j = 0; j < w; j++) d[j] = p[j] * (d[j] - rs) * scale;
                        }
                        sq_tgemm(1, 0, w, hd, r1 - r0, 1.0f, Pb, T, doh + (size_t)r0 * qd, qd, 1.0f,
                                 dvb + (size_t)c0 * ld, ld);
                        sq_tgemm(0, 0, r1 - r0, hd, w, 1.0f, ds, w, kb + (size_t)c0 * ld, ld, 0.0f,
                                 dqh + (size_t)r0 * ld, ld);
                        sq_tgemm(1, 0, w, hd, r1 - r0, 1.0f, ds, w, qh + (size_t)r0 * ld, ld, 1.0f,
                                 dkb + (size_t)c0 * ld, ld);
                    }
                }
            }
    }
}
