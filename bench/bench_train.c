/* Training throughput of the C trainer: forward + backward + AdamW on random tokens, for a
 * Llama shape given on the command line; prints tokens/s, the FLOP/s that makes (the matmuls
 * and attention products a step computes), the machine's FP32 FMA peak measured right before
 * and right after the steps (the better of the two: on a shared machine both move with the
 * neighbours' load), the fraction, the OpenBLAS kernels used and peak RSS, as one JSON line.
 *   bench_train DIM LAYERS HEADS KV_HEADS FFN VOCAB SEQ BATCH STEPS THREADS */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "fma_peak.h"
#include "scalequest/train.h"

/* The FP32 FMA peak on every thread of the pool, measured now (bench/fma_peak.h). */
static double fma_peak(void) { return sq_bench_fma_peak(omp_get_max_threads(), 10000000, sq_now); }

/* FLOPs of one training step of B rows of T tokens (one example per row): every linear layer
 * 2 MAC-FLOPs forward and 4 backward (dx and dW) per weight per token, the LM head included;
 * attention's products over the causal blocks the kernels compute (sq_attention_block rows,
 * columns up to the block's last row): 2 forward (Q K^T, P V) and 4 backward. */
static double step_flops(const sq_model_config *c, int B, int T) {
    double C = c->dim, qd = (double)c->n_heads * c->head_dim, kd = (double)c->n_kv_heads * c->head_dim;
    double per_layer = C * (qd + 2 * kd) + qd * C + 3 * C * c->ffn_dim;
    double lin = 6.0 * (c->n_layers * per_layer + (double)c->vocab_size * C) * B * T;
    double att = 0;
    int TB = sq_attention_block(T);
    for (int r0 = 0; r0 < T; r0 += TB) {
        int r1 = r0 + TB < T ? r0 + TB : T;
        att += 6.0 * 2.0 * (r1 - r0) * (double)r1 * c->head_dim;
    }
    return lin + att * c->n_heads * c->n_layers * B;
}

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
    double peak0 = fma_peak();
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
    double dt = sq_now() - t0, peak1 = fma_peak(), peak = peak0 > peak1 ? peak0 : peak1;
    double gflops = step_flops(&c, B, T) * steps / dt / 1e9;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"impl\": \"scalequest\", \"tokens_per_s\": %.1f, \"gflop_per_s\": %.1f, \"fma_peak_gflop_per_s\": %.1f, "
           "\"fraction_of_peak\": %.3f, \"blas_core\": \"%s\", \"peak_rss_mb\": %.1f, \"loss\": %.4f}\n",
           (double)N * steps / dt, gflops, peak / 1e9, gflops * 1e9 / peak, sq_gemm_blas_core(), ru.ru_maxrss / 1024.0,
           loss);
    free(tok), free(tgt), free(pos), free(seg), free(w), free(dlogp);
    sq_adamw_free(&opt);
    sq_tm_free(&m);
    return 0;
}
