/* Pipeline stage overhead: the qgen and difficulty-score stages against the engine doing the
 * same work without a stage, on the same random-weight model in the same process.
 *
 *   qgen:  N requests from the question prefix, T new tokens each (random weights never end a
 *          turn, so every request runs T tokens), sent straight to the local backend, against
 *          sq_qgen_run doing the same N through the stage (records, cut, dedup, writes).
 *   score: N question texts through sq_scorer_score_ids (batched prefill with the scalar
 *          head), against sq_difficulty_score_run on a JSONL of the same texts.
 * Each pair is timed alternately (engine, stage, engine, stage, ...) and the best of each is
 * kept, so load from other work on the machine hits both alike. Prints tokens/s of each and
 * the stage's share of the engine's speed.
 *
 *   bench_pipeline DIR [N] [T] [REPS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scalequest/backend.h"
#include "scalequest/chat_template.h"
#include "scalequest/difficulty.h"
#include "scalequest/qgen.h"
#include "scalequest/score.h"
#include "scalequest/tokenizer.h"
#include "scalequest/train.h"

static const char *WORDS[] = {"Mia", "has", "three", "apples", "and", "buys", "four", "more", "How", "many",
                              "does", "she", "have", "now", "?", "Tom", "gives", "away", "boxes", "each"};

static void die(const char *what, const sq_err *e) {
    fprintf(stderr, "bench_pipeline: %s: %s\n", what, e ? e->msg : "");
    exit(1);
}

/* An LM folder (tokenizer, ChatML template) and a scorer folder of the same shape. */
static void make_models(const char *dir) {
    sq_buf corpus = {0};
    for (int i = 0; i < 400; i++) {
        for (int k = 0; k < 12; k++) sq_buf_printf(&corpus, "%s%s", k ? " " : "", WORDS[(i * 7 + k * 3) % 20]);
        sq_buf_puts(&corpus, "\n");
    }
    static const char *special[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    sq_tok_train_opts to = {.vocab_size = 512, .min_frequency = 1, .special = special, .n_special = 3};
    sq_tokenizer *t = NULL;
    sq_err e;
    char *tok = sq_path_join(dir, "tokenizer.json"), *lm = sq_path_join(dir, "lm"), *sc = sq_path_join(dir, "scorer");
    if (sq_tok_train(corpus.data, corpus.len, &to, &t, &e) || sq_tok_save_json(t, tok, &e)) die("tokenizer", &e);
    sq_model_config c = {0};
    snprintf(c.arch, sizeof c.arch, "llama");
    c.vocab_size = sq_tok_vocab_size(t), c.dim = 256, c.n_layers = 4, c.n_heads = 8, c.n_kv_heads = 4, c.head_dim = 32;
    c.ffn_dim = 704, c.max_seq_len = 512, c.rope_theta = 10000.0f, c.norm_eps = 1e-5f;
    c.tie_embeddings = 1, c.bos_id = -1, c.pad_id = -1;
    c.eos_id = sq_tok_find(t, "<|im_end|>", 10);
    for (int head = 0; head < 2; head++) {
        sq_tmodel m;
        if (sq_tm_create(&m, &c, head, &e)) die("model", &e);
        sq_tm_init_random(&m, 1, 0.05f);
        if (sq_tm_save_hf(&m, head ? sc : lm, tok, &e)) die("save", &e);
        sq_tm_free(&m);
    }
    sq_chat_template *ct = NULL;
    sq_buf js = {0};
    char *cfg = sq_path_join(lm, "tokenizer_config.json");
    if (sq_chat_template_builtin(&ct, "chatml", &e) || sq_chat_template_config_json(ct, &js, &e) ||
        sq_file_write_atomic(cfg, js.data, js.len, &e))
        die("chat template", &e);
    sq_chat_template_free(ct);
    sq_buf_free(&js);
    sq_buf_free(&corpus);
    sq_tok_free(t);
    free(cfg), free(tok), free(lm), free(sc);
}

typedef struct {
    int64_t tokens;
} count_t;

static int count_cb(void *user, int i, const sq_gen_result *r) {
    count_t *c = user;
    (void)i;
    c->tokens += r->completion_tokens;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_pipeline DIR [N] [T] [REPS]\n");
        return 2;
    }
    const char *dir = argv[1];
    int n = argc > 2 ? atoi(argv[2]) : 64, T = argc > 3 ? atoi(argv[3]) : 64, reps = argc > 4 ? atoi(argv[4]) : 3;
    make_models(dir);
    char *lm = sq_path_join(dir, "lm"), *sc = sq_path_join(dir, "scorer");
    sq_err e;
    sq_backend_opts bo;
    sq_backend_opts_default(&bo);
    bo.max_batch = n;
    /* SQ_BENCH_QGEN_MODEL: qgen's figure on a real model (a path or a registry name such as
     * smollm2-135m-instruct) instead of the random one; its questions end where it ends them. */
    const char *qm = getenv("SQ_BENCH_QGEN_MODEL") && *getenv("SQ_BENCH_QGEN_MODEL") ? getenv("SQ_BENCH_QGEN_MODEL") : lm;
    sq_backend *b = NULL;
    if (sq_backend_open(&b, qm, &bo, &e)) die("open", &e);
    sq_chat_template *ct = NULL;
    if (sq_chat_template_open(&ct, qm, &e)) die("template", &e);
    sq_qgen_opts qo;
    sq_qgen_opts_default(&qo);
    sq_buf prefix = {0};
    if (sq_qgen_use_template(&qo, ct, &prefix, &e)) die("prefix", &e);
    qo.params.max_tokens = T;
    qo.n_questions = n;
    qo.chunk = n;
    qo.params.stop = qo.cut;
    qo.params.n_stop = qo.n_cut;
    sq_progress_set_quiet(1);
    double best_engine = 0, best_stage = 0;
    for (int rep = 0; rep < reps; rep++) {
        /* the engine alone: the same requests, seeds as the stage draws them */
        sq_gen_request *reqs = calloc((size_t)n, sizeof *reqs);
        char (*ids)[32] = calloc((size_t)n, 32);
        for (int i = 0; i < n; i++) {
            sq_qgen_id(i, ids[i], 32);
            reqs[i].id = ids[i];
            reqs[i].prompt = qo.prefix;
            reqs[i].params = qo.params;
            reqs[i].params.seed = sq_stage_seed(rep, ids[i]);
        }
        count_t cnt = {0};
        double t0 = sq_now();
        if (sq_backend_generate(b, reqs, n, count_cb, &cnt, &e)) die("generate", &e);
        double r_engine = cnt.tokens / (sq_now() - t0);
        free(reqs);
        free(ids);
        /* the stage */
        char out[600];
        snprintf(out, sizeof out, "%s/q%d.jsonl", dir, rep);
        qo.stage.out = out;
        qo.params.seed = (uint64_t)rep;
        sq_stage_counts c;
        t0 = sq_now();
        if (sq_qgen_run(b, &qo, &c, &e)) die("qgen", &e);
        double r_stage = c.completion_tokens / (sq_now() - t0);
        if (r_engine > best_engine) best_engine = r_engine;
        if (r_stage > best_stage) best_stage = r_stage;
    }
    printf("qgen   %d questions x %d tokens: engine %.0f tok/s, qgen stage %.0f tok/s = %.1f%% of the engine "
           "(overhead %.1f%%)\n", n, T, best_engine, best_stage, 100 * best_stage / best_engine,
           100 * (1 - best_stage / best_engine));
    sq_backend_close(b);
    sq_chat_template_free(ct);
    sq_buf_free(&prefix);

    /* difficulty score: texts of ~40 tokens */
    int ns = n * 16;
    char *in = sq_path_join(dir, "s.jsonl");
    FILE *f = fopen(in, "w");
    char **texts = calloc((size_t)ns, sizeof *texts);
    for (int i = 0; i < ns; i++) {
        sq_buf t = {0};
        for (int k = 0; k < 24 + i % 16; k++) sq_buf_printf(&t, "%s%s", k ? " " : "", WORDS[(i * 5 + k * 3) % 20]);
        texts[i] = t.data;
        fprintf(f, "{\"id\":\"s%06d\",\"query\":\"%s\"}\n", i, t.data);
    }
    fclose(f);
    sq_scorer_opts so;
    sq_scorer_opts_default(&so);
    sq_scorer *s = NULL;
    if (sq_scorer_open(&s, sc, &so, &e)) die("scorer", &e);
    float *vals = malloc(sizeof *vals * (size_t)ns);
    int32_t **tids = calloc((size_t)ns, sizeof *tids);
    int *lens = calloc((size_t)ns, sizeof *lens);
    int64_t tokens = 0;
    for (int i = 0; i < ns; i++) {
        size_t nt;
        if (sq_tok_encode(sq_scorer_tokenizer(s), texts[i], strlen(texts[i]), SQ_TOK_ADD_SPECIAL | SQ_TOK_PARSE_SPECIAL,
                          &tids[i], &nt, &e))
            die("encode", &e);
        lens[i] = (int)nt;
        tokens += (int64_t)nt;
    }
    best_engine = best_stage = 0;
    for (int rep = 0; rep < reps; rep++) {
        double t0 = sq_now();
        /* the stage hands the scorer 256 records at a time: so does this */
        for (int i = 0; i < ns; i += 256)
            if (sq_scorer_score_ids(s, (const int32_t *const *)tids + i, lens + i, ns - i < 256 ? ns - i : 256, vals + i, &e))
                die("score", &e);
        double r_engine = tokens / (sq_now() - t0);
        char out[600];
        snprintf(out, sizeof out, "%s/d%d.jsonl", dir, rep);
        sq_score_stage_opts o;
        sq_score_stage_opts_default(&o);
        o.model = sc, o.in = in, o.out = out;
        t0 = sq_now();
        if (sq_difficulty_score_run(&o, &e)) die("difficulty score", &e);
        double r_stage = tokens / (sq_now() - t0);
        if (r_engine > best_engine) best_engine = r_engine;
        if (r_stage > best_stage) best_stage = r_stage;
    }
    printf("score  %d questions, %lld tokens: scorer prefill %.0f tok/s, difficulty score stage %.0f tok/s = %.1f%% "
           "(overhead %.1f%%; the stage also opens the scorer and tokenizes)\n",
           ns, (long long)tokens, best_engine, best_stage, 100 * best_stage / best_engine, 100 * (1 - best_stage / best_engine));
    sq_scorer_close(s);
    for (int i = 0; i < ns; i++) free(texts[i]), free(tids[i]);
    free(texts), free(tids), free(lens), free(vals), free(in), free(lm), free(sc);
    return 0;
}
