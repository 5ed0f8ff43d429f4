/* Softmax and the cross-entropy of the LM head, forward and backward.
 *
 * sq_softmax (the engine: one row, libm's expf, summed in double) and sq_xent_forward
 * (training: rows of a batch, the vector exp of simd.h) stay two: one shared exp would change
 * the bits of one side, and the engine's outputs are compared across runs by its tests. */
#include <math.h>
#include <string.h>

#include "scalequest/kernels.h"
#include "simd.h"

void sq_softmax(float *x, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double s = 0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        s += x[i];
    }
    float inv = (float)(1.0 / s);
    for (int i = 0; i < n; i++) x[i] *= inv;
}

/* One pass for the max (the row, 32000 floats, then sits in L2) and one for exp and its sum.
 * The 1/sum is kept aside and applied in backward, where it costs nothing. Rows are handed
 * out in groups as threads come free. */
void sq_xent_forward(float *probs, float *pinv, float *logp, const int32_t *targets, int N, int V) {
#pragma omp parallel for schedule(dynamic, 16) if ((size_t)N * V > SQ_PAR_MIN)
    for (int i = 0; i < N; i++) {
        float *p = probs + (size_t)i * V;
        float mx = sq_tv_max(p, (size_t)V);
        int t = targets ? targets[i] : -1;
        float lt = t >= 0 ? p[t] : 0.0f;
        float sum = sq_tv_exp_sum(p, (size_t)V, mx);
        if (t >= 0) logp[i] = lt - mx - logf(sum);
        pinv[i] = 1.0f / sum;
    }
}

/* dlogits_ij = d_i (onehot(t_i)_j - p_ij) with p_ij = E_ij * pinv_i (E = probs) and
 * d_i = dlogp_i where the row has a target. With c_i = d_i * pinv_i:
 *   dhidden = dlogits W = -c_i (E W)_i + d_i W[t_i]
 *   dW += dlogits^T hidden = E^T (-c (.) hidden) + sum_i d_i onehot(t_i) hidden_i
 * so the [N, V] buffer is only read, by the two GEMMs. */
void sq_xent_backward(float *dhidden, float *dW, float *hs, const float *probs, const float *pinv,
                      const float *hidden, const float *W, const int32_t *targets, const float *dlogp, int N, int C,
                      int V) {
#pragma omp parallel for schedule(static) if ((size_t)N * C > SQ_PAR_MIN)
    for (int i = 0; i < N; i++) {
        int t = targets ? targets[i] : -1;
        float ci = t >= 0 ? dlogp[i] * pinv[i] : 0.0f;
        for (int j = 0; j < C; j++) hs[(size_t)i * C + j] = -ci * hidden[(size_t)i * C + j];
    }
    sq_gemm_f32(0, 0, N, C, V, 1.0f, probs, V, W, C, 0.0f, dhidden, C);
#pragma omp parallel for schedule(static) if ((size_t)N * C > SQ_PAR_MIN)
    for (int i = 0; i < N; i++) {
        int t = targets ? targets[i] : -1;
        float d = t >= 0 ? dlogp[i] : 0.0f, ci = d * pinv[i];
        float *dh = dhidden + (size_t)i * C;
        const float *wt = W + (size_t)(t >= 0 ? t : 0) * C;
        for (int j = 0; j < C; j++) dh[j] = -ci * dh[j] + d * wt[j];
    }
    sq_gemm_f32(1, 0, V, C, N, 1.0f, probs, V, hs, C, 1.0f, dW, C);
    /* Target rows may repeat: serial, so the sum is deterministic. */
    for (int i = 0; i < N; i++) {
        int t = targets ? targets[i] : -1;
        if (t < 0 || dlogp[i] == 0.0f) continue;
        float *gw = dW + (size_t)t * C;
        const float *h = hidden + (size_t)i * C;
        for (int j = 0; j < C; j++) gw[j] += dlogp[i] * h[j];
    }
}
