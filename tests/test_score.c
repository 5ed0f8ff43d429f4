/* score: the scalar head through the inference forward equals the training forward's value
 * on what train --mode regress writes, whatever the step size; bad folders are clear errors;
 * the score stage resumes after kill -9 to the bytes of an uninterrupted run and shards. */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "scalequest/model.h"
#include "scalequest/safetensors.h"
#include "scalequest/score.h"
#include "scalequest/tokenizer.h"
#include "scalequest/train.h"
#include "test.h"

static const char *WORDS[] = {"Mia", "has", "three", "apples", "and", "buys", "four", "more", "How", "many",
                              "does", "she", "have", "now", "?", "The", "answer", "is", "7", "."};

static char *text_of(int i) {
    sq_buf b = {0};
    int n = 3 + (i * 7) % 23;
    for (int k = 0; k < n; k++) sq_buf_printf(&b, "%s%s", k ? " " : "", WORDS[(i * 5 + k * 3) % 20]);
    return b.data;
}

/* A tokenizer trained on the texts, saved as tokenizer.json in dir; the path (malloc'd). */
static char *save_tokenizer(const char *dir) {
    sq_buf corpus = {0};
    for (int i = 0; i < 60; i++) {
        char *t = text_of(i);
        sq_buf_printf(&corpus, "%s\n", t);
        free(t);
    }
    static const char *special[] = {"<|endoftext|>"};
    sq_tok_train_opts to = {.vocab_size = 300, .min_frequency = 1, .special = special, .n_special = 1};
    sq_tokenizer *t = NULL;
    sq_err e;
    char *path = sq_path_join(dir, "tokenizer.json");
    if (sq_tok_train(corpus.data, corpus.len, &to, &t, &e) || sq_tok_save_json(t, path, &e)) {
        free(path);
        path = NULL;
    }
    sq_tok_free(t);
    sq_buf_free(&corpus);
    return path;
}

static sq_model_config reward_config(const char *arch) {
    sq_model_config c = {0};
    snprintf(c.arch, sizeof c.arch, "%s", arch);
    c.vocab_size = 300, c.dim = 32, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 8;
    c.ffn_dim = 48, c.max_seq_len = 64, c.rope_theta = 10000.0f, c.norm_eps = 1e-5f;
    c.attn_bias = !strcmp(arch, "qwen2"), c.tie_embeddings = 1, c.bos_id = -1, c.eos_id = 0, c.pad_id = -1;
    return c;
}

/* What train --mode regress writes: an HF folder with a score head (random weights). */
static int make_scorer(sq_tmodel *m, const char *arch, const char *dir, const char *tok) {
    sq_model_config c = reward_config(arch);
    sq_err e;
    if (sq_tm_create(m, &c, 1, &e)) return -1;
    sq_tm_init_random(m, 3, 0.2f);
    sq_rng r;
    sq_rng_seed(&r, 5);
    for (int t = 0; t < m->n_tensors; t++) /* biases and norms away from 0 and 1, so they count */
        if (m->tensors[t].ndim == 1)
            for (size_t i = 0; i < m->tensors[t].numel; i++)
                m->params[m->tensors[t].offset + i] += (float)(0.3 * sq_rng_normal(&r));
    return sq_tm_save_hf(m, dir, tok, &e);
}

/* The training forward's value of one sequence: the head at its last row. */
static float train_value(sq_tmodel *m, const int32_t *ids, int n) {
    int32_t pos[64], seg[64];
    for (int i = 0; i < n; i++) pos[i] = i, seg[i] = 0;
    sq_tbatch b = {1, n, ids, NULL, pos, seg};
    sq_err e;
    if (sq_tm_forward(m, &b, 0, &e)) return NAN;
    return sq_tm_score_value(m, n - 1);
}

static void equals_training_forward(const char *arch) {
    char *dir = sq_path_join(sq_test_tmpdir(), arch), *tok = save_tokenizer(sq_test_tmpdir());
    REQUIRE(tok);
    sq_tmodel m;
    REQUIRE(make_scorer(&m, arch, dir, tok) == 0);
    enum { N = 24 };
    int32_t *ids[N];
    int lens[N];
    sq_rng r;
    sq_rng_seed(&r, 9);
    float ref[N], scale = 0;
    for (int i = 0; i < N; i++) {
        lens[i] = 1 + (int)sq_rng_below(&r, 60);
        ids[i] = malloc(sizeof(int32_t) * (size_t)lens[i]);
        for (int t = 0; t < lens[i]; t++) ids[i][t] = 1 + (int32_t)sq_rng_below(&r, 299); /* 0 is EOS = pad */
        ref[i] = train_value(&m, ids[i], lens[i]);
        scale = fmaxf(scale, fabsf(ref[i]));
    }
    REQUIRE(scale > 0.01f);
    /* Steps of the default size, of 5 tokens (sequences split across steps, 1-3 token steps
     * on the parallel-region path) and of 64: the same bits each time. */
    float first[N];
    int sizes[] = {4096, 5, 64};
    for (size_t k = 0; k < SQ_ARRAY_LEN(sizes); k++) {
        sq_scorer_opts o;
        sq_scorer_opts_default(&o);
        o.max_batch_tokens = sizes[k];
        sq_scorer *s;
        sq_err e;
        REQUIRE(sq_scorer_open(&s, dir, &o, &e) == 0 || (fprintf(stderr, "%s\n", e.msg), 0));
        float got[N];
        REQUIRE(sq_scorer_score_ids(s, (const int32_t *const *)ids, lens, N, got, &e) == 0);
        for (int i = 0; i < N; i++) {
            CHECKF(fabsf(got[i] - ref[i]) <= 1e-4f * scale, "%s seq %d (len %d): scorer %.7g, training forward %.7g",
                   arch, i, lens[i], got[i], ref[i]);
            if (k == 0) first[i] = got[i];
            else CHECKF(got[i] == first[i], "%s seq %d: steps of %d tokens give %.9g, of 4096 %.9g", arch, i, sizes[k],
                        got[i], first[i]);
        }
        /* A trailing pad (EOS here) is skipped: the value is that of the sequence without it. */
        int32_t padded[8] = {5, 6, 7, 0, 0};
        const int32_t *pp[2] = {padded, padded};
        int pl[2] = {5, 3};
        float two[2];
        REQUIRE(sq_scorer_score_ids(s, pp, pl, 2, two, &e) == 0);
        CHECK(two[0] == two[1]);
        CHECK_NEAR(two[1], train_value(&m, padded, 3), 1e-4 * scale);
        /* Texts are tokenized with the folder's tokenizer (the stage's path). */
        char *t0 = text_of(1);
        const char *texts[1] = {t0};
        float tv;
        REQUIRE(sq_scorer_score(s, texts, 1, &tv, &e) == 0);
        int32_t *tid;
        size_t tn;
        REQUIRE(sq_tok_encode(sq_scorer_tokenizer(s), t0, strlen(t0), SQ_TOK_ADD_SPECIAL | SQ_TOK_PARSE_SPECIAL, &tid,
                              &tn, &e) == 0);
        CHECK_NEAR(tv, train_value(&m, tid, (int)tn), 1e-4 * scale);
        free(tid);
        free(t0);
        /* Too long for the context, an empty sequence, an id outside the vocabulary. */
        int32_t big[80] = {0}, bad[2] = {3, 300};
        for (int i = 0; i < 80; i++) big[i] = 1 + i;
        const int32_t *bp[1] = {big}, *badp[1] = {bad};
        int bl[1] = {80}, zl[1] = {0}, badl[1] = {2};
        CHECK_EQ_INT(sq_scorer_score_ids(s, bp, bl, 1, &tv, &e), SQ_ERANGE);
        CHECKF(strstr(e.msg, "sequence 0") && strstr(e.msg, "context of 64"), "%s", e.msg);
        CHECK_EQ_INT(sq_scorer_score_ids(s, bp, zl, 1, &tv, &e), SQ_EINVAL);
        CHECK_EQ_INT(sq_scorer_score_ids(s, badp, badl, 1, &tv, &e), SQ_ERANGE);
        CHECKF(strstr(e.msg, "300"), "%s", e.msg);
        sq_scorer_close(s);
    }
    /* Training reads the folder back through the engine's loader (sq_tm_load): the head comes
     * with it and the training forward gives the same bits as the model that wrote it. */
    sq_tmodel back;
    sq_err e;
    REQUIRE(sq_tm_load(&back, dir, 0, &e) == 0 || (fprintf(stderr, "%s\n", e.msg), 0));
    CHECK(back.has_score && back.n_params == m.n_params);
    for (int i = 0; i < N; i++)
        CHECKF(train_value(&back, ids[i], lens[i]) == ref[i], "%s seq %d: reloaded %.9g, written %.9g", arch, i,
               train_value(&back, ids[i], lens[i]), ref[i]);
    sq_tm_free(&back);
    for (int i = 0; i < N; i++) free(ids[i]);
    sq_tm_free(&m);
    free(dir);
    free(tok);
}

SQ_TEST(scorer_equals_training_forward_llama) { equals_training_forward("llama"); }
SQ_TEST(scorer_equals_training_forward_qwen2_bias) { equals_training_forward("qwen2"); }

/* Rewrite a scorer folder's weights with score.weight replaced (shape d0 x dim) or left out. */
static int rewrite_score(const sq_tmodel *m, const char *dir, int d0) {
    sq_st_entry *ent = calloc((size_t)m->n_tensors, sizeof *ent);
    float *head = calloc((size_t)(d0 > 0 ? d0 : 1) * m->cfg.dim, sizeof(float));
    int k = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const sq_tm_tensor *t = &m->tensors[i];
        int is_score = !strcmp(t->name, "score.weight");
        if (is_score && d0 <= 0) continue;
        ent[k].name = t->name;
        ent[k].view = (sq_view){is_score ? head : m->params + t->offset, SQ_F32, t->ndim,
                                {is_score ? d0 : t->shape[0], t->shape[1]}};
        k++;
    }
    char *p = sq_path_join(dir, "model.safetensors");
    sq_err e;
    int rc = sq_st_write(p, ent, k, &e);
    free(p);
    free(ent);
    free(head);
    return rc;
}

SQ_TEST(bad_scorer_folders_are_clear_errors) {
    char *dir = sq_path_join(sq_test_tmpdir(), "bad"), *tok = save_tokenizer(sq_test_tmpdir());
    REQUIRE(tok);
    sq_tmodel m;
    REQUIRE(make_scorer(&m, "llama", dir, tok) == 0);
    sq_scorer *s = NULL;
    sq_model *lm = NULL;
    sq_err e;
    /* A scorer cannot generate: the loader refuses it for the LM head. */
    CHECK_EQ_INT(sq_model_open(&lm, dir, &e), SQ_EUNSUP);
    CHECKF(strstr(e.msg, "config.json") && strstr(e.msg, "scalequest score"), "%s", e.msg);
    /* and the command says so, exits 1 and leaves no output behind */
    char *gin = sq_path_join(sq_test_tmpdir(), "gen_in.jsonl"), *gout = sq_path_join(sq_test_tmpdir(), "gen_out.jsonl");
    FILE *gf = fopen(gin, "w");
    fputs("{\"id\":\"a\",\"prompt\":\"hi\"}\n", gf);
    fclose(gf);
    char *gmsg = NULL;
    int grc = sq_test_sh(&gmsg, "'%s' generate --model '%s' --in '%s' --out '%s' --quiet 2>&1", sq_test_cli(), dir, gin,
                         gout);
    CHECK_EQ_INT(grc, 1);
    CHECKF(gmsg && strstr(gmsg, "cannot generate text") && strstr(gmsg, "scalequest score"), "%s", gmsg ? gmsg : "");
    CHECK(!sq_file_exists(gout));
    free(gmsg);
    free(gin);
    free(gout);
    REQUIRE(rewrite_score(&m, dir, 2) == 0);
    CHECK(sq_scorer_open(&s, dir, NULL, &e) != 0);
    CHECKF(strstr(e.msg, dir) && strstr(e.msg, "score.weight") && strstr(e.msg, "[2,32]") &&
               strstr(e.msg, "expected [1,32]"), "%s", e.msg);
    REQUIRE(rewrite_score(&m, dir, 0) == 0);
    CHECK_EQ_INT(sq_scorer_open(&s, dir, NULL, &e), SQ_ENOTFOUND);
    CHECKF(strstr(e.msg, dir) && strstr(e.msg, "score.weight is missing"), "%s", e.msg);
    /* A causal LM has no head to score with. */
    const char *lm_dir = sq_test_asset("models/stories260K-hf");
    if (lm_dir) {
        CHECK_EQ_INT(sq_scorer_open(&s, lm_dir, NULL, &e), SQ_EUNSUP);
        CHECKF(strstr(e.msg, "stories260K-hf") && strstr(e.msg, "no scalar head") &&
                   strstr(e.msg, "ForSequenceClassification"), "%s", e.msg);
    }
    CHECK(s == NULL);
    sq_tm_free(&m);
    free(dir);
    free(tok);
}

/* ---- the score stage through the command ---------------------------------------------- */

static void write_records(const char *path, int n) {
    FILE *f = fopen(path, "w");
    for (int i = 0; i < n; i++) {
        char *t = text_of(i);
        if (i == 17)
            fprintf(f, "{\"id\":\"q%04d\",\"question\":\"%s\"}\n", i, t); /* no query: dropped */
        else
            fprintf(f, "{\"id\":\"q%04d\",\"query\":\"%s\",\"n\":%d}\n", i, t, i);
        free(t);
    }
    fclose(f);
}

static char *slurp(const char *path) {
    char *data = NULL;
    size_t len;
    sq_err e;
    return sq_file_read_all(path, &data, &len, &e) ? NULL : data;
}

SQ_TEST(score_stage_resumes_after_kill_9_to_the_same_bytes) {
    const char *tmp = sq_test_tmpdir();
    char *dir = sq_path_join(tmp, "rm"), *tok = save_tokenizer(tmp), *in = sq_path_join(tmp, "in.jsonl");
    char *ref = sq_path_join(tmp, "ref.jsonl"), *out = sq_path_join(tmp, "out.jsonl");
    REQUIRE(tok);
    sq_tmodel m;
    REQUIRE(make_scorer(&m, "qwen2", dir, tok) == 0);
    sq_tm_free(&m);
    enum { N = 3000 };
    write_records(in, N);
    char args[1024];
    snprintf(args, sizeof args, "--model '%s' --in '%s' --batch-tokens 48 --threads 1 --quiet", dir, in);
    REQUIRE(sq_test_sh(NULL, "'%s' score %s --out '%s'", sq_test_cli(), args, ref) == 0);
    char *want = slurp(ref), *ref_dropped = sq_path_join(tmp, "ref.dropped.jsonl");
    char *want_dropped = slurp(ref_dropped);
    REQUIRE(want && want_dropped);
    CHECKF(strstr(want_dropped, "\"q0017\"") && strstr(want_dropped, "no text field"), "%s", want_dropped);
    char *lines = NULL;
    sq_test_sh(&lines, "grep -c '\"score\":' '%s'", ref);
    CHECK(lines && atoi(lines) == N - 1);
    free(lines);
    char cmd[1536];
    snprintf(cmd, sizeof cmd, "'%s' score %s --out '%s'", sq_test_cli(), args, out);
    /* killed at random records of the kept file (all but one), between its first and its last */
    int cut = sq_test_kill_rounds(cmd, out, N - 1, 4, (uint64_t)getpid());
    CHECK_KILLS_INTERRUPTED(cut, out, N - 1);
    REQUIRE(sq_test_sh(NULL, "'%s' score %s --out '%s'", sq_test_cli(), args, out) == 0);
    char *got = slurp(out), *dropped_path = sq_path_join(tmp, "out.dropped.jsonl"), *got_dropped = slurp(dropped_path);
    CHECK(got && strcmp(got, want) == 0);
    CHECK(got_dropped && strcmp(got_dropped, want_dropped) == 0);
    /* Two shards hold every record once between them. */
    char *s0 = sq_path_join(tmp, "s0.jsonl"), *s1 = sq_path_join(tmp, "s1.jsonl"), *both = NULL, *all = NULL;
    REQUIRE(sq_test_sh(NULL, "'%s' score %s --out '%s' --shard 0/2", sq_test_cli(), args, s0) == 0);
    REQUIRE(sq_test_sh(NULL, "'%s' score %s --out '%s' --shard 1/2", sq_test_cli(), args, s1) == 0);
    sq_test_sh(&both, "cat '%s' '%s' | sort", s0, s1);
    sq_test_sh(&all, "sort '%s'", ref);
    CHECK(both && all && strcmp(both, all) == 0);
    free(both);
    free(all);
    free(s0);
    free(s1);
    free(got);
    free(got_dropped);
    free(dropped_path);
    free(want);
    free(want_dropped);
    free(ref_dropped);
    free(dir);
    free(tok);
    free(in);
    free(ref);
    free(out);
}
