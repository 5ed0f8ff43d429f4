/* The engine at the pipeline's shapes, one measurement per process, for
 * bench/engine_vs_llamacpp.sh (which runs llama.cpp on the same GGUF between them):
 *
 *   bench_shapes run MODEL Q PROMPT N GEN TEMP SAME
 *       Q requests of PROMPT token ids each (SAME=1: one prompt for all, else a distinct one
 *       per request), N samples per request (sharing its prefill and prompt KV blocks), GEN
 *       new tokens each (EOS never stops them), temperature TEMP (top-p 0.95). Prints one line
 *       of key=value figures: wall time; prompt tokens prefilled, tokens out (every sample's
 *       new tokens, counted from the results), decode rows forwarded; decode-only tokens and
 *       time; the engine's forward and sampling time; CPU seconds of the process; peak RSS;
 *       KV cache bytes per token; the model's layer and LM-head matmul FLOPs per token row
 *       (kept apart: a prefill computes logits for its last prompt token only), its layer
 *       count and K/V width; and, with SQ_BENCH_PROFILE=1, the shares of sampled CPU time in
 *       attention, GEMM, sampling, OpenMP waiting and the rest (bench/cpu_share.h).
 *   SQ_BENCH_KV=auto|f32|f16|bf16 picks the KV cache's element type (default: the engine's,
 *   auto); kv_type= in the line is the type the cache has.
 *   bench_shapes kvtype MODEL
 *       Prints the KV cache type the engine's default (auto) gives MODEL, and its weights' type.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "scalequest/infer.h"

#include "cpu_share.h"

typedef struct tally {
    int done;         /* requests finished */
    long long tokens; /* new tokens of every sample */
} tally;

static int count_cb(void *user, int i, const sq_infer_result *r) {
    tally *t = user;
    if (!r->ok) fprintf(stderr, "request %d failed: %s\n", i, r->error);
    t->done += r->ok;
    for (int k = 0; r->ok && k < r->n_samples; k++)
        t->tokens += r->samples[k].n;
    return 0;
}

static int run(const char *path, int q, int prompt, int n, int gen, float temp, int same) {
    sq_err e;
    sq_model *m;
    if (sq_model_open(&m, path, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    m->cfg.eos_id = -1; /* random weights: fixed lengths */
    m->cfg.n_eos = 0;
    const sq_model_config *c = &m->cfg;
    int hd = c->head_dim ? c->head_dim : c->dim / c->n_heads, kvd = c->n_kv_heads * hd;
    /* Matmul FLOPs: 2 per weight of each Linear layer per token. */
    double layer_w = (double)c->n_layers *
                     ((double)c->dim * c->n_heads * hd * 2 + 2.0 * kvd * c->dim + 3.0 * c->ffn_dim * c->dim);
    double head_w = (double)c->vocab_size * c->dim;
    sq_engine_opts o;
    sq_engine_opts_default(&o);
    o.max_batch = SQ_MIN(64, q * n);
    o.ctx_len = prompt + gen + 1;
    const char *kvs = getenv("SQ_BENCH_KV");
    if (kvs && *kvs) o.kv_type = sq_kv_type_parse(kvs);
    if (o.kv_type < 0) return fprintf(stderr, "SQ_BENCH_KV=%s: auto, f32, f16 or bf16\n", kvs), 1;
    sq_engine *en;
    if (sq_engine_new(&en, m, &o, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)q * prompt);
    sq_infer_req *reqs = calloc((size_t)q, sizeof *reqs);
    if (!ids || !reqs) return fprintf(stderr, "out of memory\n"), 1;
    for (int r = 0; r < q; r++) {
        for (int i = 0; i < prompt; i++) {
            uint32_t h =
                (uint32_t)(i + 1) * 2654435761u ^ (uint32_t)(same ? 0 : r + 1) * 40503u * 2246822519u;
            ids[(size_t)r * prompt + i] = 3 + (int32_t)(h % (uint32_t)(c->vocab_size - 3));
        }
        reqs[r].prompt = ids + (size_t)r * prompt;
        reqs[r].n_prompt = prompt;
        sq_gen_params_default(&reqs[r].params);
        reqs[r].params.max_tokens = gen;
        reqs[r].params.temperature = temp;
        reqs[r].params.top_p = 0.95f;
        reqs[r].params.n = n;
        reqs[r].params.seed = 7 + (uint64_t)r;
    }
    /* Warm-up: the weights paged in, the threads started. */
    sq_infer_req w = reqs[0];
    w.n_prompt = SQ_MIN(prompt, 8);
    w.params.max_tokens = 2;
    w.params.n = 1;
    tally t = {0, 0};
    if (sq_engine_generate(en, &w, 1, NULL, count_cb, &t, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    const char *prof = getenv("SQ_BENCH_PROFILE");
    int profiling = prof && !strcmp(prof, "1");
    if (profiling && cs_start(2000))
        fprintf(stderr, "SQ_BENCH_PROFILE: no symbols to attribute samples to\n"), profiling = 0;
    sq_engine_stats s0, s1;
    sq_engine_get_stats(en, &s0);
    t = (tally){0, 0};
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    double t0 = sq_now();
    int rc = sq_engine_generate(en, reqs, q, NULL, count_cb, &t, &e);
    double wall = sq_now() - t0;
    getrusage(RUSAGE_SELF, &r1);
    if (profiling) cs_stop();
    sq_engine_get_stats(en, &s1);
    if (rc || t.done != q)
        return fprintf(stderr, "generate: %s (%d of %d done)\n", rc ? e.msg : "", t.done, q), 1;
    double cpu =
        (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) + (r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) +
        1e-6 * ((r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) + (r1.ru_stime.tv_usec - r0.ru_stime.tv_usec));
    printf("wall=%.4f prompt_tokens=%lld tokens_out=%lld decode_rows=%lld decode_tokens=%lld t_decode=%.4f "
           "t_forward=%.4f t_sample=%.4f cpu_s=%.3f rss_mib=%.1f kv_type=%s kv_bytes_per_token=%zu "
           "layer_flops=%.6g "
           "head_flops=%.6g weight_bytes=%zu n_layers=%d kv_dim=%d",
           wall, (long long)(s1.prompt_tokens - s0.prompt_tokens), t.tokens,
           (long long)(s1.generated_tokens - s0.generated_tokens),
           (long long)(s1.decode_tokens - s0.decode_tokens), s1.t_decode - s0.t_decode,
           s1.t_forward - s0.t_forward, s1.t_sample - s0.t_sample, cpu, r1.ru_maxrss / 1024.0,
           sq_kv_type_name(s1.kv_type), s1.kv_bytes_per_token, 2 * layer_w, 2 * head_w,
           sq_model_weight_bytes(m), c->n_layers, kvd);
    if (profiling) cs_print(stdout);
    printf("\n");
    free(ids);
    free(reqs);
    sq_engine_free(en);
    sq_model_close(m);
    return 0;
}

static int kvtype(const char *path) {
    sq_err e;
    sq_model *m;
    if (sq_model_open(&m, path, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    printf("%s %s\n", sq_kv_type_name(sq_kv_type_auto(m)), sq_dtype_name(m->layers[0].wq.dtype));
    sq_model_close(m);
    return 0;
}

int main(int argc, char **argv) {
    sq_threads_default_wait_policy(argv);
    if (argc == 3 && !strcmp(argv[1], "kvtype")) return kvtype(argv[2]);
    if (argc == 9 && !strcmp(argv[1], "run"))
        return run(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]), (float)atof(argv[7]),
                   atoi(argv[8]));
    fprintf(stderr, "usage: bench_shapes run MODEL Q PROMPT N GEN TEMP SAME | kvtype MODEL\n");
    return 2;
}
