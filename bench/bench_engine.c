/* Engine benchmark: decode, batched generation and prefill speed of a model, each printed
 * beside this machine's limit measured in the same run (memory read bandwidth for batch-1
 * decode, register-only FP32 FMA peak for batched work), plus peak RSS.
 *
 *   bench_engine make DIR SHAPE   write a random-weight BF16 HF model (qwen05 | stories15m)
 *   bench_engine limits           measure read bandwidth and peak FLOP/s only
 *   bench_engine run DIR          measure the engine on DIR
 *   bench_engine matmul ROWS IN OUT [REPS]   one BF16 matmul alone
 *   bench_engine peak             the FMA peak alone
 */
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "fma_peak.h"
#include "scalequest/infer.h"
#include "scalequest/safetensors.h"

/* ---- machine limits ------------------------------------------------------------------------ */

/* Best of several passes summing a 1 GiB array with all threads: sustained read GB/s. */
static double read_bandwidth(void) {
    size_t n = (size_t)1 << 28; /* floats: 1 GiB */
    float *a = sq_malloc_aligned(n * 4);
    if (!a) return 0;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) a[i] = (float)(i & 7);
    double best = 0, sink = 0;
    for (int pass = 0; pass < 4; pass++) {
        double t0 = sq_now(), total = 0;
#pragma omp parallel for schedule(static) reduction(+ : total)
        for (size_t blk = 0; blk < n / 64; blk++) {
#if defined(__AVX2__)
            const float *p = a + blk * 64;
            __m256 s0 = _mm256_load_ps(p), s1 = _mm256_load_ps(p + 8), s2 = _mm256_load_ps(p + 16),
                   s3 = _mm256_load_ps(p + 24);
            s0 = _mm256_add_ps(s0, _mm256_load_ps(p + 32));
            s1 = _mm256_add_ps(s1, _mm256_load_ps(p + 40));
            s2 = _mm256_add_ps(s2, _mm256_load_ps(p + 48));
            s3 = _mm256_add_ps(s3, _mm256_load_ps(p + 56));
            __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
            float v[8];
            _mm256_storeu_ps(v, s);
            total += v[0] + v[7];
#else
            for (int k = 0; k < 64; k++) total += a[blk * 64 + k];
#endif
        }
        double dt = sq_now() - t0;
        sink += total;
        if (n * 4 / dt / 1e9 > best) best = n * 4 / dt / 1e9;
    }
    free(a);
    if (sink == 1234.5) printf(" ");
    return best;
}

/* The FP32 FMA peak on every thread of the pool, measured now (bench/fma_peak.h). */
static double fma_peak_f32(void) { return sq_bench_fma_peak(omp_get_max_threads(), 20000000, sq_now); }

/* ---- a random model -------------------------------------------------------------------------- */

typedef struct shape {
    const char *name, *arch;
    int dim, layers, heads, kv_heads, ffn, vocab, tied, bias;
    float theta;
} shape;

static const shape SHAPES[] = {
    {"qwen05", "qwen2", 896, 24, 14, 2, 4864, 151936, 1, 1, 1000000.0f},
    {"stories15m", "llama", 288, 6, 6, 6, 768, 32000, 1, 0, 10000.0f},
};

static uint64_t rng_state = 88172645463325252ull;
static float rnd(void) { /* uniform in [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / (1 << 23)) - 1.0);
}

static uint16_t *rand_bf16(size_t n, float scale, float offset) {
    uint16_t *p = malloc(n * 2);
    if (p)
        for (size_t i = 0; i < n; i++) p[i] = sq_f32_to_bf16(offset + scale * rnd());
    return p;
}

static int make_model(const char *dir, const char *shape_name) {
    const shape *s = NULL;
    for (size_t i = 0; i < SQ_ARRAY_LEN(SHAPES); i++)
        if (!strcmp(SHAPES[i].name, shape_name)) s = &SHAPES[i];
    if (!s) return fprintf(stderr, "unknown shape %s\n", shape_name), 2;
    sq_err e;
    if (sq_mkdirs(dir, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    int hd = s->dim / s->heads, kvd = s->kv_heads * hd;
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"architectures\": [\"%s\"], \"model_type\": \"%s\", \"hidden_size\": %d, \"intermediate_size\": %d,\n"
             " \"num_hidden_layers\": %d, \"num_attention_heads\": %d, \"num_key_value_heads\": %d,\n"
             " \"vocab_size\": %d, \"max_position_embeddings\": 4096, \"rms_norm_eps\": 1e-06, \"rope_theta\": %.1f,\n"
             " \"tie_word_embeddings\": %s, \"torch_dtype\": \"bfloat16\", \"bos_token_id\": 1, \"eos_token_id\": 2}\n",
             !strcmp(s->arch, "qwen2") ? "Qwen2ForCausalLM" : "LlamaForCausalLM", s->arch, s->dim, s->ffn, s->layers,
             s->heads, s->kv_heads, s->vocab, s->theta, s->tied ? "true" : "false");
    char *p = sq_path_join(dir, "config.json");
    if (sq_file_write_atomic(p, cfg, strlen(cfg), &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    free(p);
    int cap = 16 * s->layers + 8, n = 0;
    sq_st_entry *ent = calloc((size_t)cap, sizeof *ent);
    char **names = calloc((size_t)cap, sizeof(char *));
#define ADD(nm, d0, d1, scale, off)                                                                     \
    do {                                                                                                \
        names[n] = sq_strdup(nm);                                                                       \
        ent[n].name = names[n];                                                                         \
        ent[n].view = (sq_view){rand_bf16((size_t)(d0) * ((d1) ? (d1) : 1), scale, off), SQ_BF16, (d1) ? 2 : 1, \
                                {(d0), (d1), 0, 0}};                                                    \
        if (!ent[n].view.data) return fprintf(stderr, "out of memory\n"), 1;                            \
        n++;                                                                                            \
    } while (0)
    /* The (tied) embedding is scaled so that logits spread with a standard deviation of about
     * 4, as a trained model's do: sampling then keeps a realistic number of candidates. */
    ADD("model.embed_tokens.weight", s->vocab, s->dim, 4.0f * 1.7320508f / sqrtf((float)s->dim), 0);
    ADD("model.norm.weight", s->dim, 0, 0.1f, 1);
    char nm[128];
    for (int l = 0; l < s->layers; l++) {
        struct {
            const char *suffix;
            int d0, d1;
            float scale, off;
        } t[] = {{"input_layernorm.weight", s->dim, 0, 0.1f, 1},
                 {"post_attention_layernorm.weight", s->dim, 0, 0.1f, 1},
                 {"self_attn.q_proj.weight", s->dim, s->dim, 0.05f, 0},
                 {"self_attn.k_proj.weight", kvd, s->dim, 0.05f, 0},
                 {"self_attn.v_proj.weight", kvd, s->dim, 0.05f, 0},
                 {"self_attn.o_proj.weight", s->dim, s->dim, 0.05f, 0},
                 {"mlp.gate_proj.weight", s->ffn, s->dim, 0.05f, 0},
                 {"mlp.up_proj.weight", s->ffn, s->dim, 0.05f, 0},
                 {"mlp.down_proj.weight", s->dim, s->ffn, 0.05f, 0},
                 {"self_attn.q_proj.bias", s->dim, 0, 0.1f, 0},
                 {"self_attn.k_proj.bias", kvd, 0, 0.1f, 0},
                 {"self_attn.v_proj.bias", kvd, 0, 0.1f, 0}};
        int nt = s->bias ? 12 : 9;
        for (int k = 0; k < nt; k++) {
            snprintf(nm, sizeof nm, "model.layers.%d.%s", l, t[k].suffix);
            ADD(nm, t[k].d0, t[k].d1, t[k].scale, t[k].off);
        }
    }
    p = sq_path_join(dir, "model.safetensors");
    int rc = sq_st_write(p, ent, n, &e);
    if (rc) fprintf(stderr, "%s\n", e.msg);
    free(p);
    for (int i = 0; i < n; i++) {
        free(ent[i].view.data);
        free(names[i]);
    }
    free(ent);
    free(names);
    return rc ? 1 : 0;
}

/* ---- engine runs ------------------------------------------------------------------------------ */

static double peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

static int count_cb(void *user, int i, const sq_infer_result *r) {
    if (!r->ok) fprintf(stderr, "request %d failed: %s\n", i, r->error);
    *(int *)user += r->ok;
    return 0;
}

/* One request of a `prompt`-token random prompt with n samples of `gen` new tokens each
 * (EOS never stops them). The samples share the prompt's prefill and KV blocks, then decode
 * together: a batch of n sequences with a context of prompt + generated tokens each. */
static int run_one(sq_engine *en, const sq_model *m, int n, int prompt, int gen, double *secs, sq_engine_stats *d) {
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)prompt);
    for (int i = 0; i < prompt; i++) ids[i] = 3 + (int32_t)((uint32_t)(i * 2654435761u) % (m->cfg.vocab_size - 3));
    sq_infer_req q = {ids, prompt, {0}};
    q.params.max_tokens = gen;
    q.params.temperature = 0.8f;
    q.params.top_p = 0.95f;
    q.params.n = n;
    q.params.seed = 7;
    sq_engine_stats s0, s1;
    sq_engine_get_stats(en, &s0);
    int done = 0;
    sq_err e;
    double t0 = sq_now();
    int rc = sq_engine_generate(en, &q, 1, NULL, count_cb, &done, &e);
    *secs = sq_now() - t0;
    sq_engine_get_stats(en, &s1);
    d->prompt_tokens = s1.prompt_tokens - s0.prompt_tokens;
    d->generated_tokens = s1.generated_tokens - s0.generated_tokens;
    d->decode_tokens = s1.decode_tokens - s0.decode_tokens;
    d->t_decode = s1.t_decode - s0.t_decode;
    d->t_forward = s1.t_forward - s0.t_forward;
    d->t_sample = s1.t_sample - s0.t_sample;
    free(ids);
    if (rc) fprintf(stderr, "generate: %s\n", e.msg);
    return rc || done != 1;
}

/* The machine's limits again, from a child process (its 1 GiB probe array stays out of this
 * process's peak RSS), right after each figure: on a shared machine the neighbours' load
 * changes from second to second, and the best value seen in the run (before and after the
 * figure) is the least biased estimate of what the hardware can do, so the bench keeps the
 * running maximum; a fraction is never flattered by a probe that ran in a busy moment. */
static void refresh_limits(double *bw, double *peak, int *probes) {
    char exe[4096], line[512];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 16);
    if (n <= 0) return;
    memcpy(exe + n, " limits", 8);
    FILE *f = popen(exe, "r");
    if (!f) return;
    double b, p;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "limits %lf %lf", &b, &p) == 2) {
            *bw = SQ_MAX(*bw, b);
            *peak = SQ_MAX(*peak, p * 1e9);
            ++*probes;
        }
    pclose(f);
}

/* SQ_BENCH_FIGURES (comma-separated: b1,prefill,8,32,64; default all) times only those. */
static int want(const char *fig) {
    const char *sel = getenv("SQ_BENCH_FIGURES");
    if (!sel || !*sel) return 1;
    size_t n = strlen(fig);
    for (const char *p = sel; (p = strstr(p, fig)); p += n)
        if ((p == sel || p[-1] == ',') && (p[n] == 0 || p[n] == ',')) return 1;
    return 0;
}

static int run(const char *dir, double bw, double peak) {
    sq_err e;
    sq_model *m;
    if (sq_model_open(&m, dir, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    m->cfg.eos_id = -1; /* random weights: measure fixed lengths */
    m->cfg.n_eos = 0;
    /* Weights per token, counted (quantized files read fewer bytes than two per weight). */
    double wbytes = (double)sq_model_weight_bytes(m), params = (double)sq_view_numel(sq_model_head_weight(m));
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const sq_layer *L = &m->layers[l];
        const sq_view *w[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t k = 0; k < SQ_ARRAY_LEN(w); k++) params += (double)sq_view_numel(w[k]);
    }
    printf("model %s: %d layers, dim %d, vocab %d: %.0f M weights (%.0f MB, %s) read per token\n", m->cfg.arch,
           m->cfg.n_layers, m->cfg.dim, m->cfg.vocab_size, params / 1e6, wbytes / 1e6,
           sq_dtype_name(m->layers[0].wq.dtype));
    sq_engine_opts o;
    sq_engine_opts_default(&o);
    o.max_batch = 64;
    o.ctx_len = 512;
    sq_engine *en;
    if (sq_engine_new(&en, m, &o, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    sq_engine_stats kv;
    sq_engine_get_stats(en, &kv);
    printf("  KV cache %s (the engine default, auto, for %s weights), %zu bytes per position\n",
           sq_kv_type_name(kv.kv_type), sq_dtype_name(m->layers[0].wq.dtype), kv.kv_bytes_per_token);
    double secs;
    sq_engine_stats d;
    if (run_one(en, m, 1, 8, 4, &secs, &d)) return 1; /* warm-up: weights paged in */
    int probes = 0;
    if (want("b1")) {
        if (run_one(en, m, 1, 16, 32, &secs, &d)) return 1;
        refresh_limits(&bw, &peak, &probes);
        double tps1 = d.decode_tokens / d.t_decode, bound = bw * 1e9 / wbytes;
        printf("  decode, batch 1        %8.1f tok/s   memory-read bound %.1f tok/s: %5.1f%% of it;"
               " sampling %.0f%% of the time\n",
               tps1, bound, 100 * tps1 / bound, 100 * d.t_sample / (d.t_forward + d.t_sample));
    }
    if (want("prefill")) {
        if (run_one(en, m, 1, 256, 1, &secs, &d)) return 1;
        refresh_limits(&bw, &peak, &probes);
        /* The forward pass computes logits for the last prompt token only: the LM head's
         * FLOPs count once per prompt, the layers' for every token. */
        double ptps = d.prompt_tokens / d.t_forward, head = (double)m->cfg.vocab_size * m->cfg.dim;
        double fl = 2 * ((params - head) * d.prompt_tokens + head) / d.t_forward;
        printf("  prefill, 256 tokens    %8.1f tok/s   %6.1f GFLOP/s: %5.1f%% of peak\n", ptps, fl / 1e9,
               100 * fl / peak);
    }
    int batches[3] = {8, 32, 64};
    for (int k = 0; k < 3; k++) {
        int B = batches[k];
        char fig[8];
        snprintf(fig, sizeof fig, "%d", B);
        if (!want(fig)) continue;
        if (run_one(en, m, B, 128, 16, &secs, &d)) return 1;
        refresh_limits(&bw, &peak, &probes);
        double agg = d.decode_tokens / d.t_decode, gf = agg * 2 * params;
        printf("  decode, batch %2d       %8.1f tok/s   (context 128-144 each) %6.1f GFLOP/s: %5.1f%% of peak;"
               " sampling %.0f%% of the time\n",
               B, agg, gf / 1e9, 100 * gf / peak, 100 * d.t_sample / (d.t_forward + d.t_sample));
    }
    printf("  peak RSS %.0f MiB (weights mmap'd: %.0f MB)\n", peak_rss_mib(), wbytes / 1e6);
    printf("  limits: the best of %d probes (the first, then one after each figure): read %.1f GB/s,"
           " FMA peak %.0f GFLOP/s\n",
           probes + 1, bw, peak / 1e9);
    sq_engine_free(en);
    sq_model_close(m);
    return 0;
}

/* One Linear layer's matmul alone: `rows` x [out, in] BF16 weights, best of `reps`, printed
 * as GFLOP/s and GB/s of weights read (for comparing kernels with the limits above). */
static int matmul_only(int rows, int in, int out, int reps) {
    uint16_t *w = rand_bf16((size_t)in * out, 0.05f, 0);
    float *x = sq_malloc_aligned(sizeof(float) * (size_t)rows * in), *y = sq_malloc_aligned(sizeof(float) * (size_t)rows * out);
    if (!w || !x || !y) return fprintf(stderr, "out of memory\n"), 1;
    for (size_t i = 0; i < (size_t)rows * in; i++) x[i] = rnd();
    sq_view wv = {w, SQ_BF16, 2, {out, in, 0, 0}};
    sq_matmul_ctx *c;
    sq_err e;
    if (sq_matmul_ctx_new(&c, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = sq_now();
        if (sq_matmul(c, y, x, rows, &wv, NULL, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
        best = SQ_MIN(best, sq_now() - t0);
    }
    printf("matmul %d x [%d, %d] on %d threads: %.3f ms, %.1f GFLOP/s, %.1f GB/s of weights\n", rows, out, in,
           omp_get_max_threads(), best * 1e3, 2.0 * rows * in * out / best / 1e9, 2.0 * in * out / best / 1e9);
    sq_matmul_ctx_free(c);
    free(w);
    free(x);
    free(y);
    return 0;
}

int main(int argc, char **argv) {
    sq_threads_default_wait_policy(argv);
    setvbuf(stdout, NULL, _IOLBF, 0); /* each figure shows as soon as it is measured */
    if (argc >= 4 && !strcmp(argv[1], "make")) return make_model(argv[2], argv[3]);
    if (argc >= 5 && !strcmp(argv[1], "matmul"))
        return matmul_only(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), argc >= 6 ? atoi(argv[5]) : 5);
    if (!strcmp(argc >= 2 ? argv[1] : "", "peak")) {
        printf("FP32 FMA peak %.1f GFLOP/s on %d threads\n", fma_peak_f32() / 1e9, omp_get_max_threads());
        return 0;
    }
    if (argc >= 5 && !strcmp(argv[1], "run")) return run(argv[2], atof(argv[3]), atof(argv[4]) * 1e9);
    if (argc < 2 || strcmp(argv[1], "limits"))
        return fprintf(stderr, "usage: bench_engine make DIR SHAPE | limits | run DIR GBPS PEAK_GFLOPS\n"), 2;
    /* Limits in their own process, so the 1 GiB test array does not count in the runs' RSS. */
    double bw = read_bandwidth(), f32 = fma_peak_f32(), peak = f32;
    printf("machine: %d threads, read bandwidth %.1f GB/s, FP32 FMA peak %.0f GFLOP/s", omp_get_max_threads(), bw,
           f32 / 1e9);
    /* Every CPU widens BF16 weights to FP32 (one summation order at any batch size; see
     * kernels.h), so the FP32 peak is the limit even where AVX512-BF16 exists. */
    printf(" (BF16 weights are widened to FP32, so the FP32 peak is the limit)");
    /* The dot-product instructions beside it, so the choice above is checked on each machine. */
    double bf = sq_bench_dot_peak(1, omp_get_max_threads(), 20000000 / 4);
    double i8 = sq_bench_dot_peak(0, omp_get_max_threads(), 20000000 / 4);
    if (bf > 0) printf("\nAVX512-BF16 dot (vdpbf16ps) %.0f GFLOP/s: %.2fx the FP32 FMA peak", bf / 1e9, bf / f32);
    if (i8 > 0)
        printf("\nAVX512-VNNI int8 dot (vpdpbusd) %.0f G multiply-adds/s: %.2fx the FP32 FMA's (the 8-bit activation kernels' limit)",
               i8 / 2e9, i8 / f32);
    printf("\nlimits %.2f %.1f\n", bw, peak / 1e9);
    return 0;
}
