/* Private to src/model: the trainable model's activation arena of one step (the layout its
 * backward reads). */
#ifndef SQ_MODEL_TM_INTERNAL_H
#define SQ_MODEL_TM_INTERNAL_H

#include "scalequest/model.h"

typedef struct sq_tm_layer_a {
    float *x_in;     /* [N, C] residual entering the layer */
    float *ln1, *rstd1;
    float *q, *k, *v; /* after bias and RoPE: one [N, qd + 2 kd] buffer, rows q | k | v */
    float *att;      /* [B, H, T, T] softmax probabilities; per block of rows (sq_attention_block)
                        only the columns the block reaches are written (the rest is stale) */
    float *atty;     /* [N, H*hd] attention output before o_proj */
    float *x_mid;    /* [N, C] after the attention residual */
    float *ln2, *rstd2;
    float *gu;       /* [N, 2F] gate | up per row */
    float *h;        /* [N, F] */
} sq_tm_layer_a;

struct sq_tm_acts {
    int N_cap, T_cap;
    float *mem;
    sq_tm_layer_a *layer;
    float *x_out;    /* [N, C] residual after the last layer */
    float *rstdf;    /* [N] */
    float *hidden;   /* [N, C] final norm output */
    float *probs;    /* [N, V] exp(logit - row max): the softmax before its 1/sum */
    float *pinv;     /* [N] 1/sum of each probs row */
    float *logp;     /* [N] */
    /* backward scratch */
    float *dx, *dln, *dq, *dk, *dv, *datty, *dgu, *dh, *dhidden; /* dq|dk|dv and dgu as q|k|v, gu */
    float *attscr;   /* [B * KV * sq_attention_block(T) * T] attention backward's dS blocks */
};

int sq_tm_acts_reserve(sq_tmodel *m, int B, int T, sq_err *e);
void sq_tm_acts_free(sq_tm_acts *a);

#endif
