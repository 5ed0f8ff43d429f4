/* reward: the rewards are the scorer's values of the pairs rendered in the RM's template;
 * ranking by reward, then shorter, then index; keep best / top-k / all; select majority, gold
 * and random; the outcome-RM data; bad input (a torn line, responses that are not strings,
 * an RM without a template) named; kill -9 resume to the same bytes. */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "scalequest/chat_template.h"
#include "scalequest/jsonl.h"
#include "scalequest/reward.h"
#include "scalequest/tokenizer.h"
#include "scalequest/train.h"
#include "test.h"

static char TD[600];
static char *tmp(const char *name) { return sq_path_join(TD, name); }
static void new_tmp(void) { snprintf(TD, sizeof TD, "%s", sq_test_tmpdir()); }

static char *slurp(const char *path) {
    char *data = NULL;
    size_t len;
    sq_err e;
    return sq_file_read_all(path, &data, &len, &e) ? NULL : data;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static const char *CORPUS =
    "What is 2 + 3? The answer is 5. So \\boxed{5}. Mia has 3 apples and buys 4 more.\n"
    "She has 7 apples. The answer is 7. It is 6. user assistant question response\n";

/* A random-weight Qwen2 reward model with a ChatML template, as train --mode regress writes. */
static char *make_rm(int with_template) {
    char *dir = tmp(with_template ? "rm" : "rm_notpl"), *tokp = tmp("tokenizer.json");
    static const char *special[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    sq_buf corpus = {0};
    for (int i = 0; i < 20; i++)
        sq_buf_puts(&corpus, CORPUS);
    sq_tok_train_opts to = {.vocab_size = 300, .min_frequency = 1, .special = special, .n_special = 3};
    sq_tokenizer *t = NULL;
    sq_err e;
    int rc = sq_tok_train(corpus.data, corpus.len, &to, &t, &e) || sq_tok_save_json(t, tokp, &e);
    sq_tok_free(t);
    sq_buf_free(&corpus);
    sq_model_config c = {0};
    snprintf(c.arch, sizeof c.arch, "qwen2");
    c.vocab_size = 300, c.dim = 32, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 8;
    c.ffn_dim = 48, c.max_seq_len = 256, c.rope_theta = 10000.0f, c.norm_eps = 1e-5f;
    c.attn_bias = 1, c.tie_embeddings = 1, c.bos_id = -1, c.eos_id = 2, c.pad_id = -1;
    sq_tmodel m;
    if (!rc && sq_tm_create(&m, &c, 1, &e) == 0) {
        sq_tm_init_random(&m, 3, 0.3f);
        rc = sq_tm_save_hf(&m, dir, tokp, &e);
        sq_tm_free(&m);
    } else
        rc = -1;
    if (!rc && with_template) {
        char *cfg = sq_path_join(dir, "tokenizer_config.json");
        sq_chat_template *tpl = NULL;
        sq_buf b = {0};
        rc = sq_chat_template_builtin(&tpl, "chatml", &e) || sq_chat_template_config_json(tpl, &b, &e) ||
             sq_file_write_atomic(cfg, b.data, b.len, &e);
        sq_chat_template_free(tpl);
        sq_buf_free(&b);
        free(cfg);
    } else if (!rc) {
        char *cfg = sq_path_join(dir, "tokenizer_config.json");
        unlink(cfg);
        free(cfg);
    }
    free(tokp);
    if (rc) {
        sq_test_fail(__FILE__, __LINE__, "could not make a reward model: %s", e.msg);
        free(dir);
        return NULL;
    }
    return dir;
}

static const char *INPUT =
    "{\"id\":\"a\",\"query\":\"What is 2 + 3?\",\"answer\":\"5\",\"responses\":[\"The answer is 5.\",\"So "
    "\\\\boxed{6}\",\"The answer is 5.\",\"It is 6. The answer is 6.\",\"So \\\\boxed{5}\"]}\n"
    "{\"id\":\"b\",\"query\":\"Mia has 3 apples and buys 4 more.\",\"answer\":7,\"responses\":[\"She has 7 "
    "apples. "
    "The answer is 7.\",\"The answer is 12.\",\"The answer is 12.\"]}\n"
    "{\"id\":\"c\",\"query\":\"Nothing came back\",\"answer\":\"1\",\"responses\":[]}\n";

static cJSON *read_all(const char *path, int *n) {
    cJSON *arr = cJSON_CreateArray(), *rec;
    sq_jsonl_reader *r;
    sq_err e;
    *n = 0;
    if (sq_jsonl_open(&r, path, 0, &e)) return arr;
    while (sq_jsonl_next(r, &rec, &e) == 1)
        cJSON_AddItemToArray(arr, rec), (*n)++;
    sq_jsonl_close(r);
    return arr;
}

static int run_reward(const char *model, const char *in, const char *out, const char *keep,
                      const char *select) {
    sq_reward_opts o;
    sq_reward_opts_default(&o);
    o.model = model, o.stage.in = in, o.stage.out = out;
    sq_err e = {0};
    if (sq_reward_parse_keep(keep, &o.keep, &o.top_k, &e) || sq_reward_parse_select(select, &o.select, &e))
        return -1;
    o.chunk = 2;
    o.seed = 9;
    sq_progress_set_quiet(1);
    int rc = sq_reward_run(&o, &e);
    if (rc) fprintf(stderr, "reward: %s\n", e.msg);
    return rc;
}

SQ_TEST(reward_scores_the_rendered_pairs_and_ranks_them) {
    new_tmp();
    char *rm = make_rm(1), *in = tmp("in.jsonl"), *out = tmp("all.jsonl");
    REQUIRE(rm);
    write_file(in, INPUT);
    REQUIRE(run_reward(rm, in, out, "all", "reward") == 0);
    int n;
    cJSON *recs = read_all(out, &n);
    CHECK_EQ_INT(n, 2); /* "c" has no responses: dropped */
    /* the rewards are the scorer's values of the rendered conversations */
    sq_scorer *sc;
    sq_err e;
    REQUIRE(sq_scorer_open(&sc, rm, NULL, &e) == 0);
    const cJSON *a = cJSON_GetArrayItem(recs, 0);
    const cJSON *rs = sq_rec_array(a, "responses"), *rw = sq_rec_array(a, "rewards");
    REQUIRE(cJSON_GetArraySize(rw) == 5);
    for (int k = 0; k < 5; k++) {
        int32_t *ids;
        size_t nt;
        REQUIRE(sq_reward_render(sq_scorer_tokenizer(sc), sq_scorer_chat_template(sc), "What is 2 + 3?",
                                 cJSON_GetArrayItem(rs, k)->valuestring, &ids, &nt, &e) == 0);
        int len = (int)nt;
        float v;
        REQUIRE(sq_scorer_score_ids(sc, (const int32_t *const *)&ids, &len, 1, &v, &e) == 0);
        CHECK_NEAR(cJSON_GetArrayItem(rw, k)->valuedouble, v, 1e-6 * (1 + fabs(v)));
        free(ids);
    }
    /* the render holds both turns in ChatML */
    int32_t *ids;
    size_t nt;
    char *text = NULL;
    REQUIRE(sq_reward_render(sq_scorer_tokenizer(sc), sq_scorer_chat_template(sc), "Q", "R", &ids, &nt, &e) ==
            0);
    size_t tlen;
    REQUIRE(sq_tok_decode(sq_scorer_tokenizer(sc), ids, nt, 0, &text, &tlen, &e) == 0);
    const char *want = "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nR<|im_end|>\n";
    CHECKF(strlen(text) >= strlen(want) && !strcmp(text + strlen(text) - strlen(want), want), "%s", text);
    free(text);
    free(ids);
    sq_scorer_close(sc);
    /* kept: every response, best first; ties (responses 0 and 2 are the same text) by index */
    const cJSON *kept = sq_rec_array(a, "kept");
    REQUIRE(cJSON_GetArraySize(kept) == 5);
    for (int k = 1; k < 5; k++) {
        double prev = 0, cur = 0;
        sq_rec_num(cJSON_GetArrayItem(kept, k - 1), "reward", &prev);
        sq_rec_num(cJSON_GetArrayItem(kept, k), "reward", &cur);
        CHECK(prev >= cur);
    }
    int pos0 = -1, pos2 = -1;
    for (int k = 0; k < 5; k++) {
        double idx;
        sq_rec_num(cJSON_GetArrayItem(kept, k), "index", &idx);
        if (idx == 0) pos0 = k;
        if (idx == 2) pos2 = k;
    }
    CHECK(pos0 >= 0 && pos2 == pos0 + 1);
    CHECK_EQ_STR(sq_rec_str(a, "response"), sq_rec_str(cJSON_GetArrayItem(kept, 0), "response"));
    cJSON_Delete(recs);
    /* top-2 and best keep the head of the same ranking */
    char *top = tmp("top.jsonl"), *best = tmp("best.jsonl");
    REQUIRE(run_reward(rm, in, top, "top-2", "reward") == 0);
    REQUIRE(run_reward(rm, in, best, "best", "reward") == 0);
    cJSON *t = read_all(top, &n), *b = read_all(best, &n);
    CHECK_EQ_INT(cJSON_GetArraySize(sq_rec_array(cJSON_GetArrayItem(t, 0), "kept")), 2);
    CHECK_EQ_INT(cJSON_GetArraySize(sq_rec_array(cJSON_GetArrayItem(b, 1), "kept")), 1);
    CHECK_EQ_STR(sq_rec_str(cJSON_GetArrayItem(t, 0), "response"),
                 sq_rec_str(cJSON_GetArrayItem(b, 0), "response"));
    cJSON_Delete(t), cJSON_Delete(b);
    free(top), free(best), free(rm), free(in), free(out);
}

SQ_TEST(reward_select_majority_gold_random_without_a_model) {
    new_tmp();
    char *in = tmp("in.jsonl"), *maj = tmp("maj.jsonl"), *gold = tmp("gold.jsonl"), *rnd = tmp("rnd.jsonl");
    write_file(in, INPUT);
    REQUIRE(run_reward(NULL, in, maj, "all", "majority") == 0);
    int n;
    cJSON *m = read_all(maj, &n);
    REQUIRE(n == 2);
    /* a: answers 5,6,5,6,5 -> the three 5s, shortest first ("So \boxed{5}" is 12 bytes) */
    const cJSON *a = cJSON_GetArrayItem(m, 0), *b = cJSON_GetArrayItem(m, 1);
    CHECK_EQ_INT(cJSON_GetArraySize(sq_rec_array(a, "kept")), 3);
    CHECK_EQ_STR(sq_rec_str(a, "response"), "So \\boxed{5}");
    CHECK_EQ_STR(sq_rec_str(a, "extracted"), "5");
    /* b: 7, 12, 12 -> 12 wins the vote */
    CHECK_EQ_STR(sq_rec_str(b, "extracted"), "12");
    cJSON_Delete(m);
    REQUIRE(run_reward(NULL, in, gold, "all", "gold") == 0);
    cJSON *g = read_all(gold, &n);
    REQUIRE(n == 2);
    CHECK_EQ_INT(cJSON_GetArraySize(sq_rec_array(cJSON_GetArrayItem(g, 0), "kept")), 3);
    CHECK_EQ_STR(sq_rec_str(cJSON_GetArrayItem(g, 1), "extracted"), "7"); /* a numeric gold field */
    cJSON_Delete(g);
    REQUIRE(run_reward(NULL, in, rnd, "best", "random") == 0);
    char *r1 = slurp(rnd);
    unlink(rnd);
    char *rd = tmp("rnd.dropped.jsonl");
    unlink(rd);
    REQUIRE(run_reward(NULL, in, rnd, "best", "random") == 0);
    char *r2 = slurp(rnd);
    CHECK(r1 && r2 && !strcmp(r1, r2)); /* the same draw from the same seed */
    free(r1), free(r2), free(rd);
    /* reward selection without a model is a usage error */
    char *x = tmp("x.jsonl");
    CHECK(run_reward(NULL, in, x, "best", "reward") != 0);
    free(x);
    free(in), free(maj), free(gold), free(rnd);
}

SQ_TEST(reward_bad_input_is_named) {
    new_tmp();
    char *rm = make_rm(1), *in = tmp("bad.jsonl"), *out = tmp("o.jsonl");
    REQUIRE(rm);
    sq_reward_opts o;
    sq_reward_opts_default(&o);
    o.model = rm, o.stage.in = in, o.stage.out = out;
    sq_err e = {0};
    sq_progress_set_quiet(1);
    write_file(in, "{\"id\":\"a\",\"query\":\"q\",\"responses\":[\"The answer is "
                   "1.\"]}\n{\"id\":\"b\",\"query\":\"q\",\"resp");
    CHECK(sq_reward_run(&o, &e) != 0);
    CHECKF(strstr(e.msg, "bad.jsonl:2") != NULL, "%s", e.msg);
    unlink(out);
    write_file(in, "{\"id\":\"a\",\"query\":\"q\",\"responses\":[\"The answer is 1.\", 7]}\n");
    CHECK(sq_reward_run(&o, &e) != 0);
    CHECKF(strstr(e.msg, "bad.jsonl:1") && strstr(e.msg, "responses[1]"), "%s", e.msg);
    char *no_tpl = make_rm(0);
    REQUIRE(no_tpl);
    o.model = no_tpl;
    write_file(in, "{\"id\":\"a\",\"query\":\"q\",\"responses\":[\"The answer is 1.\"]}\n");
    CHECK(sq_reward_run(&o, &e) != 0);
    CHECKF(strstr(e.msg, "rm_notpl") && strstr(e.msg, "chat template"), "%s", e.msg);
    free(no_tpl), free(rm), free(in), free(out);
}

SQ_TEST(reward_orm_data_labels_by_gold) {
    new_tmp();
    char *rm = make_rm(1), *in = tmp("in.jsonl"), *orm = tmp("orm.jsonl");
    REQUIRE(rm);
    write_file(in, INPUT);
    sq_reward_opts o;
    sq_reward_opts_default(&o);
    o.stage.in = in;
    sq_orm_data_stats st;
    sq_err e = {0};
    REQUIRE(sq_reward_orm_data(&o, rm, orm, &st, &e) == 0);
    CHECK_EQ_INT((int)st.responses, 8);
    CHECK_EQ_INT((int)st.correct, 3 + 1);
    char *t = slurp(orm);
    CHECKF(t && strstr(t, "{\"id\":\"a#1\",\"input_ids\":[") && strstr(t, "\"id\":\"b#2\""), "%s",
           t ? t : "");
    free(t), free(rm), free(in), free(orm);
}

SQ_TEST(reward_resumes_after_kill_9_to_the_same_bytes) {
    new_tmp();
    char *rm = make_rm(1), *in = tmp("k.jsonl"), *ref = tmp("kref.jsonl"), *out = tmp("kout.jsonl");
    REQUIRE(rm);
    FILE *f = fopen(in, "w");
    enum { N = 400 };
    for (int i = 0; i < N; i++)
        fprintf(f,
                "{\"id\":\"q%03d\",\"query\":\"What is %d + 3?\",\"responses\":[\"The answer is %d.\",\"So "
                "\\\\boxed{%d}\",\"It is 6. The answer is 6.\"]}\n",
                i, i, i + 3, i + 2);
    fclose(f);
    char args[1024];
    snprintf(args, sizeof args, "--model '%s' --in '%s' --chunk 4 --keep top-2 --threads 1 --quiet", rm, in);
    REQUIRE(sq_test_sh(NULL, "'%s' reward %s --out '%s'", sq_test_cli(), args, ref) == 0);
    char cmd[1536];
    snprintf(cmd, sizeof cmd, "'%s' reward %s --out '%s'", sq_test_cli(), args, out);
    /* killed at random records, between the first and the last */
    CHECK_EQ_INT(sq_test_lines(ref), N);
    int cut = sq_test_kill_rounds(cmd, out, N, 4, (uint64_t)getpid());
    CHECK_KILLS_INTERRUPTED(cut, out, N);
    REQUIRE(sq_test_sh(NULL, "'%s' reward %s --out '%s'", sq_test_cli(), args, out) == 0);
    char *a = slurp(ref), *b = slurp(out), *dups = NULL;
    CHECK(a && b && !strcmp(a, b));
    sq_test_sh(&dups, "grep -o '^{\"id\":\"q[0-9]*\"' '%s' | sort | uniq -d | wc -l", out);
    CHECK(dups && atol(dups) == 0);
    free(dups), free(a), free(b), free(rm), free(in), free(ref), free(out);
}
