/* Training throughput of the C trainer: forward + backward + AdamW on random tokens, for a
 * Llama shape given on the command line; prints tokens/s and peak RSS as one JSON line.
 *   bench_train DIM LAYERS HEADS KV_HEADS FFN VOCAB SEQ BATCH STEPS THREADS */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "scalequest/train.h"

int main(int argc, char **argv) {
    if (argc != 11) {
        fprintf(stderr, "usage: bench_train DIM LAYERS HEADS KV_HEADS FFN VOCAB SEQ BATCH STEPS THREADS\n");
        return 2;
    }
    int a[10];
    for (int i = 0; i < 10; i++) a[i] = atoi(argv[i + 1]);
    sq_model_config c = {0};
    snprintf(c.arch, sizeof c.arch, "llama");
    c.dim = a[0], c.n_layers = a[1], c.n_heads = a[2], c.n_kv_heads = a[3], c.ffn_dim = a[4], c.vocab_size = a[5];
    c.head_dim = c.dim / c.n_heads, c.max_seq_len = a[6], c.rope_theta = 10000.0f, c.norm_eps = 1e-5f;
    c.tie_embeddings = 1, c.bos_id = c.eos_id = -1;
    int T = a[6], B = a[7], steps = a[8];
    sq_threads_set(a[9]);
    sq_gemm_one_pool(); /* the OpenMP pool threads the GEMMs */
    sq_tmodel m;
    sq_err e;
    if (sq_tm_create(&m, &c, 0, &e)) {
        fprintf(stderr, "bench_train: %s\n", e.msg);
        return 1;
    }
    sq_tm_init_random(&m, 1, 0.02f);
    sq_adamw opt;
    if (sq_adamw_init(&opt, m.n_params, 0.9f, 0.95f, 1e-8f, 0.1f, &e)) return 1;
    int N = B * T;
    int32_t *tok = malloc(sizeof *tok * (size_t)(N + 1)), *tgt = malloc(sizeof *tgt * (size_t)N);
    int32_t *pos = malloc(sizeof *pos * (size_t)N), *seg = malloc(sizeof *seg * (size_t)N);
    float *w = malloc(sizeof *w * (size_t)N), *dlogp = malloc(sizeof *dlogp * (size_t)N);
    sq_rng r;
    sq_rng_seed(&r, 2);
    for (int i = 0; i <= N; i++) tok[i] = (int32_t)sq_rng_below(&r, (uint64_t)c.vocab_size);
    for (int i = 0; i < N; i++) tgt[i] = tok[i + 1], pos[i] = i % T, seg[i] = 0, w[i] = 1;
    sq_tbatch b = {B, T, tok, tgt, pos, seg};
    double t0 = 0, loss = 0;
    for (int s = 0; s <= steps; s++) {
        if (s == 1) t0 = sq_now(); /* step 0 warms up: page faults, thread pools */
        sq_tm_zero_grad(&m);
        if (sq_tm_forward(&m, &b, 1, &e)) return 1;
        loss = sq_loss_ce(m.logp, w, N, N, dlogp);
        if (sq_tm_backward(&m, &b, dlogp, NULL, NULL, 0, &e)) return 1;
        sq_clip_grad_norm(&m, 1.0);
        sq_adamw_step(&opt, &m, 1e-4f);
    }
    double dt = sq_now() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"impl\": \"scalequest\", \"tokens_per_s\": %.1f, \"peak_rss_mb\": %.1f, \"loss\": %.4f}\n",
           (double)N * steps / dt, ru.ru_maxrss / 1024.0, loss);
    free(tok), free(tgt), free(pos), free(seg), free(w), free(dlogp);
    sq_adamw_free(&opt);
    sq_tm_free(&m);
    return 0;
}
