/* Causal attention backward with grouped-query heads and packed examples.
 * Work is split by (row, kv head) so the heads of one group, which all write the same dk/dv
 * slots, run on one thread: no atomics, and the result does not depend on thread timing. */
#include <math.h>
#include <string.h>

#include "scalequest/train.h"

void sq_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q,
                           const float *k, const float *v, const float *att, const int32_t *seg_start,
                           int B, int T, int H, int KV, int hd) {
    int qd = H * hd, kd = KV * hd, group = H / KV;
    float scale = 1.0f / sqrtf((float)hd);
    memset(dq, 0, (size_t)B * T * qd * sizeof(float));
    memset(dk, 0, (size_t)B * T * kd * sizeof(float));
    memset(dv, 0, (size_t)B * T * kd * sizeof(float));
#pragma omp parallel if ((size_t)B * T * T * H * hd > 4 * SQ_PAR_MIN)
    {
        float dp[T]; /* T is bounded by max_seq_len: a few KiB of stack */
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++)
            for (int kh = 0; kh < KV; kh++) {
                for (int h = kh * group; h < (kh + 1) * group; h++)
                    for (int i = 0; i < T; i++) {
                        size_t ri = (size_t)b * T + i;
                        const float *p = att + (((size_t)b * H + h) * T + i) * T;
                        const float *doi = dout + ri * qd + (size_t)h * hd;
                        const float *qi = q + ri * qd + (size_t)h * hd;
                        float *dqi = dq + ri * qd + (size_t)h * hd;
                        int s = seg_start[ri];
                        float sum = 0;
                        for (int j = s; j <= i; j++) {
                            size_t rj = ((size_t)b * T + j) * kd + (size_t)kh * hd;
                            const float *vj = v + rj;
                            float *dvj = dv + rj;
                            float d = 0;
#pragma omp simd reduction(+ : d)
                            for (int t = 0; t < hd; t++) {
                                d += doi[t] * vj[t];
                                dvj[t] += p[j] * doi[t];
                            }
                            dp[j] = d;
                            sum += p[j] * d;
                        }
                        for (int j = s; j <= i; j++) {
                            float ds = p[j] * (dp[j] - sum) * scale;
                            size_t rj = ((size_t)b * T + j) * kd + (size_t)kh * hd;
                            const float *kj = k + rj;
                            float *dkj = dk + rj;
                            for (int t = 0; t < hd; t++) {
                                dqi[t] += ds * kj[t];
                                dkj[t] += ds * qi[t];
                            }
                        }
                    }
            }
    }
}
