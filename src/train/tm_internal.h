/* Private to src/train: the activation arena of one step and the training forward kernels.
 * The forward kernels mirror the inference engine's; they live here so training does not
 * wait on it, and keep the exact saved-activation layout that backward needs. */
#ifndef SQ_TRAIN_TM_INTERNAL_H
#define SQ_TRAIN_TM_INTERNAL_H

#include "scalequest/train.h"

typedef struct sq_tm_layer_a {
    float *x_in;     /* [N, C] residual entering the layer */
    float *ln1, *rstd1;
    float *q, *k, *v; /* after bias and RoPE */
    float *att;      /* [B, H, T, T] softmax probabilities */
    float *atty;     /* [N, H*hd] attention output before o_proj */
    float *x_mid;    /* [N, C] after the attention residual */
    float *ln2, *rstd2;
    float *gate, *up, *h; /* [N, F] */
} sq_tm_layer_a;

struct sq_tm_acts {
    int N_cap, T_cap;
    float *mem;
    sq_tm_layer_a *layer;
    float *x_out;    /* [N, C] residual after the last layer */
    float *rstdf;    /* [N] */
    float *hidden;   /* [N, C] final norm output */
    float *probs;    /* [N, V] softmax of the logits (overwritten by dlogits in backward) */
    float *logp;     /* [N] */
    /* backward scratch */
    float *dx, *dln, *dq, *dk, *dv, *datty, *dg, *du, *dh, *dhidden;
};

int sq_tm_acts_reserve(sq_tmodel *m, int B, int T, sq_err *e);
void sq_tm_acts_free(sq_tm_acts *a);

void sq_tk_rmsnorm(float *out, float *rstd, const float *x, const float *w, int N, int C, float eps);
void sq_tk_linear(float *out, const float *x, const float *W, const float *b, int N, int in, int out_dim);
void sq_tk_rope(float *x, const int32_t *pos, const float *cos_t, const float *sin_t, int N, int nh, int hd);
void sq_tk_attention(float *out, float *att, const float *q, const float *k, const float *v,
                     const int32_t *seg_start, int B, int T, int H, int KV, int hd);
void sq_tk_swiglu(float *h, const float *g, const float *u, size_t n);

#endif
