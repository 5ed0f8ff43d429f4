/* Per-phase wall time of training steps, for finding where a step goes. Off unless the
 * environment variable SQ_TRAIN_PROFILE is set; then sq_tm_free prints the totals to
 * stderr. A phase is charged the time since the previous mark. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tm_internal.h"

static const char *const names[SQ_TP_N] = {
    "fwd embed",       "fwd rmsnorm",     "fwd qkv gemm",    "fwd rope",     "fwd attention", "fwd o gemm",
    "fwd residual",    "fwd mlp gemm",    "fwd swiglu",      "fwd lm gemm",  "fwd softmax",   "bwd lm head",
    "bwd rmsnorm",     "bwd mlp gemm",    "bwd swiglu",      "bwd o gemm",   "bwd attention", "bwd rope",
    "bwd qkv gemm",    "bwd embed",       "clip",            "adamw",        "zero grad",
};
static double acc[SQ_TP_N], last;
static int enabled = -1;

int sq_tp_on(void) {
    if (enabled < 0) enabled = getenv("SQ_TRAIN_PROFILE") != NULL;
    return enabled;
}

void sq_tp_start(void) {
    if (sq_tp_on()) last = sq_now();
}

void sq_tp_mark(sq_tp_phase p) {
    if (!sq_tp_on()) return;
    double t = sq_now();
    acc[p] += t - last;
    last = t;
}

void sq_tp_report(void) {
    if (!sq_tp_on()) return;
    double total = 0;
    for (int i = 0; i < SQ_TP_N; i++) total += acc[i];
    if (total <= 0) return;
    fprintf(stderr, "train profile (wall s, share):\n");
    for (int i = 0; i < SQ_TP_N; i++)
        if (acc[i] > 0) fprintf(stderr, "  %-15s %8.3f  %5.1f%%\n", names[i], acc[i], 100 * acc[i] / total);
    fprintf(stderr, "  %-15s %8.3f\n", "total", total);
    memset(acc, 0, sizeof acc);
}
