/* bench_quant MODEL ACT THREADS B GEN: decode speed of a quantized model through the forward
 * pass, with 8-bit (ACT q8) or fp32 (ACT f32) activations: B sequences of a 16-token prompt
 * (prefilled together, not timed), then GEN steps of one token per sequence (greedy), timed.
 * Prints "quant ACT threads T batch B: X tok/s (S s)" — X counts all B sequences' tokens.
 * bench/quant.sh runs it beside llama-bench on the same file. An optional 6th argument, avx2 or
 * c, takes that code for the 8-bit dots on a CPU with more (to measure an AVX2-only machine's
 * kernels on an AVX-512 one). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scalequest/base.h"
#include "scalequest/model.h"
#include "scalequest/quant.h"

int main(int argc, char **argv) {
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: bench_quant MODEL q8|f32 THREADS BATCH GEN [avx2|c]\n");
        return 2;
    }
    int act = sq_act_type_parse(argv[2]), T = atoi(argv[3]), B = atoi(argv[4]), G = atoi(argv[5]), P = 16;
    if (act < 0 || T < 1 || B < 1 || B > 256 || G < 1) {
        fprintf(stderr, "bench_quant: bad arguments\n");
        return 2;
    }
    sq_threads_set(T);
    sq_quant_act_set(act);
    if (argc == 7) sq_quant_q8_force(!strcmp(argv[6], "avx2") ? 2 : !strcmp(argv[6], "c") ? 1 : 0);
    sq_err e;
    sq_model *m = NULL;
    sq_fwd *f = NULL;
    sq_kv_pool kv = {0};
    int ctx = P + G, bs = 16, per = (ctx + bs - 1) / bs, V = 0, rc = 1;
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)B * P), *pos = malloc(sizeof(int32_t) * (size_t)B * P);
    int32_t *blocks = malloc(sizeof(int32_t) * (size_t)B * per), *rows = malloc(sizeof(int32_t) * (size_t)B * P);
    const int32_t **bt = malloc(sizeof(int32_t *) * (size_t)B * P);
    float *logits = NULL;
    if (sq_model_open(&m, argv[1], &e) || sq_kv_pool_init(&kv, m, B * per, bs, &e) ||
        sq_fwd_new(&f, m, B * P, B, ctx, &e))
        goto done;
    V = m->cfg.vocab_size;
    logits = malloc(sizeof(float) * (size_t)B * V);
    for (int i = 0; i < B * per; i++) blocks[i] = i;
    /* Prompts: the same 16 ids shifted per sequence, so the sequences differ. */
    for (int s = 0; s < B; s++)
        for (int p = 0; p < P; p++) {
            int i = s * P + p;
            tok[i] = (int32_t)((1 + 37 * p + 101 * s) % V);
            pos[i] = p;
            bt[i] = blocks + s * per;
        }
    for (int s = 0; s < B; s++) rows[s] = s * P + P - 1;
    sq_batch pre = {B * P, tok, pos, bt, B, rows};
    if (sq_model_forward(m, f, &kv, &pre, logits, &e)) goto done;
    int32_t *cur = malloc(sizeof(int32_t) * (size_t)B), *cp = malloc(sizeof(int32_t) * (size_t)B),
            *orow = malloc(sizeof(int32_t) * (size_t)B);
    const int32_t **cbt = malloc(sizeof(int32_t *) * (size_t)B);
    for (int s = 0; s < B; s++) cbt[s] = blocks + s * per, orow[s] = s;
    double t0 = sq_now();
    clock_t c0 = clock();
    for (int g = 0; g < G; g++) {
        for (int s = 0; s < B; s++) {
            const float *l = logits + (size_t)s * V;
            int best = 0;
            for (int v = 1; v < V; v++)
                if (l[v] > l[best]) best = v;
            cur[s] = best;
            cp[s] = P + g;
        }
        sq_batch one = {B, cur, cp, cbt, B, orow};
        if (sq_model_forward(m, f, &kv, &one, logits, &e)) break;
    }
    double dt = sq_now() - t0, cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
    /* CPU seconds as well: on a shared machine the wall time mostly measures the neighbours */
    printf("quant %s threads %d batch %d: %.2f tok/s (%.2f s for %d steps; %.2f tok per CPU-second; kernels %s)\n",
           sq_act_type_name(act), T, B, (double)B * G / dt, dt, G, (double)B * G / cpu,
           act == SQ_ACT_Q8 ? sq_quant_q8_impl() : sq_quant_impl());
    free(cur), free(cp), free(orow), free(cbt);
    rc = 0;
done:
    if (rc) fprintf(stderr, "bench_quant: %s\n", e.msg);
    free(tok), free(pos), free(blocks), free(rows), free(bt), free(logits);
    sq_fwd_free(f);
    sq_kv_pool_free(&kv);
    sq_model_close(m);
    return rc;
}
