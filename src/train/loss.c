/* Losses of the four ScaleQuest trainings, each returning the loss and the gradient with
 * respect to what the model produced (token log-probs or scalar-head values). */
#include <math.h>

#include "scalequest/train.h"

double sq_loss_ce(const float *logp, const float *w, int n, double norm, float *dlogp) {
    double loss = 0;
    for (int i = 0; i < n; i++) {
        loss -= (double)w[i] * logp[i];
        dlogp[i] = (float)(-w[i] / norm);
    }
    return loss / norm;
}

/* log(sigmoid(z)) without overflow for large |z|. */
static double log_sigmoid(double z) { return z >= 0 ? -log1p(exp(-z)) : z - log1p(exp(z)); }

double sq_loss_dpo(const double *pc, const double *pr, const double *rc, const double *rr, int n,
                   double beta, double *dpc, double *dpr, double *chosen_reward, double *rejected_reward) {
    double loss = 0;
    for (int i = 0; i < n; i++) {
        double z = beta * ((pc[i] - rc[i]) - (pr[i] - rr[i]));
        loss -= log_sigmoid(z);
        /* d(-log sig(z))/dz = -sig(-z) */
        double g = -1.0 / (1.0 + exp(z)) * beta / n;
        dpc[i] = g;
        dpr[i] = -g;
        if (chosen_reward) chosen_reward[i] = beta * (pc[i] - rc[i]);
        if (rejected_reward) rejected_reward[i] = beta * (pr[i] - rr[i]);
    }
    return loss / n;
}

double sq_loss_mse(const float *value, const float *target, int n, float *dvalue) {
    double loss = 0;
    for (int i = 0; i < n; i++) {
        double d = (double)value[i] - target[i];
        loss += d * d;
        dvalue[i] = (float)(2.0 * d / n);
    }
    return loss / n;
}
