/* The answer side's two speed figures, on random-weight models of one shape (F32, dim 288,
 * 6 layers, 512-token vocabulary) written to a temporary folder:
 *   respond: 16 questions of 128 prompt tokens, 5 samples of 64 new tokens each, as 16
 *     requests with n=5 (one shared prefill, the samples on the prompt's KV blocks) against 80
 *     independent requests with n=1 (5 prefills, no sharing): the ratio of their times;
 *   reward: the scorer's tokens/s on 80 (question, response)-sized sequences of ~200 tokens,
 *     as a fraction of the engine's prefill tokens/s on the same sequences (max_tokens 1) with
 *     a causal LM of the same shape — the limit a scorer, which runs the same forward, has.
 * Each figure is the best of 3 alternating runs (the machine is shared).
 *   bench_answer DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/infer.h"
#include "scalequest/model.h"
#include "scalequest/score.h"
#include "scalequest/tokenizer.h"
#include "scalequest/train.h"

static int make(const char *dir, const char *name, int score, const char *tok, sq_err *e) {
    sq_model_config c = {0};
    snprintf(c.arch, sizeof c.arch, "llama");
    c.vocab_size = 512, c.dim = 288, c.n_layers = 6, c.n_heads = 6, c.n_kv_heads = 6, c.head_dim = 48;
    c.ffn_dim = 768, c.max_seq_len = 1024, c.rope_theta = 10000.0f, c.norm_eps = 1e-5f;
    c.tie_embeddings = 1, c.bos_id = -1, c.eos_id = 0, c.pad_id = -1;
    sq_tmodel m;
    int rc = sq_tm_create(&m, &c, score, e);
    if (rc) return rc;
    sq_tm_init_random(&m, 7, 0.05f);
    char *p = sq_path_join(dir, name);
    rc = sq_tm_save_hf(&m, p, tok, e);
    free(p);
    sq_tm_free(&m);
    return rc;
}

static int count_cb(void *user, int i, const sq_infer_result *r) {
    (void)i;
    *(int *)user += r->ok;
    return 0;
}

static int32_t **prompts(int n, int len) {
    int32_t **p = malloc(sizeof *p * (size_t)n);
    for (int i = 0; i < n; i++) {
        p[i] = malloc(sizeof(int32_t) * (size_t)len);
        for (int k = 0; k < len; k++)
            p[i][k] = 3 + (int32_t)((uint32_t)((i * 131 + k) * 2654435761u) % 500);
    }
    return p;
}

static double gen(sq_engine *en, int32_t **p, int n_prompts, int len, int copies, int n, int max_tokens) {
    int nr = n_prompts * copies, done = 0;
    sq_infer_req *q = calloc((size_t)nr, sizeof *q);
    for (int i = 0; i < nr; i++) {
        q[i].prompt = p[i / copies];
        q[i].n_prompt = len;
        sq_gen_params_default(&q[i].params);
        q[i].params.n = n, q[i].params.max_tokens = max_tokens;
        q[i].params.temperature = 0.7f, q[i].params.top_p = 0.95f, q[i].params.seed = (uint64_t)i;
    }
    sq_err e;
    double t0 = sq_now();
    int rc = sq_engine_generate(en, q, nr, NULL, count_cb, &done, &e);
    double dt = sq_now() - t0;
    free(q);
    if (rc || done != nr) fprintf(stderr, "generate failed (%d of %d): %s\n", done, nr, rc ? e.msg : "");
    return dt;
}

int main(int argc, char **argv) {
    if (argc != 2) return fprintf(stderr, "usage: bench_answer DIR\n"), 2;
    const char *dir = argv[1];
    sq_err e;
    /* a tokenizer for the folders (the scorer loads one); the figures use token ids */
    sq_buf corpus = {0};
    for (int i = 0; i < 200; i++)
        sq_buf_printf(&corpus, "question %d has the answer %d. ", i, i * 7);
    static const char *special[] = {"<|endoftext|>"};
    sq_tok_train_opts to = {.vocab_size = 512, .min_frequency = 1, .special = special, .n_special = 1};
    sq_tokenizer *t = NULL;
    char *tokp = sq_path_join(dir, "tokenizer.json");
    if (sq_mkdirs(dir, &e) || sq_tok_train(corpus.data, corpus.len, &to, &t, &e) ||
        sq_tok_save_json(t, tokp, &e) || make(dir, "lm", 0, tokp, &e) || make(dir, "rm", 1, tokp, &e))
        return fprintf(stderr, "%s\n", e.msg), 1;
    sq_tok_free(t);
    sq_buf_free(&corpus);
    char *lm_dir = sq_path_join(dir, "lm"), *rm_dir = sq_path_join(dir, "rm");
    sq_model *m;
    if (sq_model_open(&m, lm_dir, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    m->cfg.eos_id = -1, m->cfg.n_eos = 0; /* random weights: fixed lengths */
    sq_engine_opts eo;
    sq_engine_opts_default(&eo);
    eo.max_batch = 80, eo.ctx_len = 256;
    sq_engine *en;
    if (sq_engine_new(&en, m, &eo, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    enum { NQ = 16, PLEN = 128, GEN = 64, NS = 80, SLEN = 200 };
    int32_t **p = prompts(NQ, PLEN);
    gen(en, p, 2, PLEN, 1, 1, 4); /* warm-up */
    double shared = 1e30, indep = 1e30;
    for (int r = 0; r < 3; r++) {
        double a = gen(en, p, NQ, PLEN, 1, 5, GEN), b = gen(en, p, NQ, PLEN, 5, 1, GEN);
        if (a < shared) shared = a;
        if (b < indep) indep = b;
    }
    printf("respond n=5, %d questions x %d prompt tokens, %d new tokens per sample: one request with n=5 "
           "%.3f s, "
           "5 independent requests %.3f s: %.2fx (goal >= 1.5x)\n",
           NQ, PLEN, GEN, shared, indep, indep / shared);
    /* reward scoring against the engine's prefill on the same sequences */
    int32_t **s = prompts(NS, SLEN);
    int lens[NS];
    for (int i = 0; i < NS; i++)
        lens[i] = SLEN;
    sq_scorer *sc;
    sq_scorer_opts so;
    sq_scorer_opts_default(&so);
    if (sq_scorer_open(&sc, rm_dir, &so, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    float *vals = malloc(sizeof(float) * NS);
    double score_t = 1e30, prefill_t = 1e30;
    for (int r = 0; r < 3; r++) {
        double t0 = sq_now();
        if (sq_scorer_score_ids(sc, (const int32_t *const *)s, lens, NS, vals, &e))
            return fprintf(stderr, "%s\n", e.msg), 1;
        double a = sq_now() - t0, b = gen(en, s, NS, SLEN, 1, 1, 1);
        if (a < score_t) score_t = a;
        if (b < prefill_t) prefill_t = b;
    }
    double tok = (double)NS * SLEN;
    printf("reward scoring %.0f tok/s; engine prefill (max_tokens 1) %.0f tok/s on the same %d x %d tokens: "
           "%.2f of it "
           "(goal >= 0.9)\n",
           tok / score_t, tok / prefill_t, NS, SLEN, prefill_t / score_t);
    sq_scorer_close(sc);
    sq_engine_free(en);
    sq_model_close(m);
    for (int i = 0; i < NQ; i++)
        free(p[i]);
    for (int i = 0; i < NS; i++)
        free(s[i]);
    free(p), free(s), free(vals), free(lm_dir), free(rm_dir), free(tokp);
    return 0;
}
