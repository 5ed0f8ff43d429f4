/* The hygiene stages in the runner's chain: dedup and decontaminate sit between the filters and
 * difficulty scoring in the default plan, decontaminate checks against the eval stage's own
 * benchmarks (a NAME=PATH eval set included), and such a set drops exactly the questions that
 * are in it. Its marker then travels down the chain (each stage carries it to its output, a
 * sharded stage's merged output included) to export.jsonl, which the runner hands to eval as
 * the student's training data: a chain run with decontaminate gives no warning and a chain
 * without it does. */
#include <stdlib.h>
#include <string.h>

#include "scalequest/chat_template.h"
#include "scalequest/decontam.h"
#include "scalequest/jsonl.h"
#include "scalequest/run.h"
#include "scalequest/tokenizer.h"
#include "scalequest/train.h"
#include "scripted_backend.h"
#include "test.h"

static int has_args(const sq_run_cmd *c, const char *flag, const char *value) {
    for (int a = 0; a + 1 < c->argc; a++)
        if (!strcmp(c->argv[a], flag) && !strcmp(c->argv[a + 1], value)) return 1;
    return 0;
}

SQ_TEST(default_chain_dedups_and_decontaminates_against_the_eval_set) {
    const char *text = "run_dir: /tmp/r\nmodels:\n  solver: /m/solver\n  responder: /m/solver\n"
                       "stages:\n  eval:\n    options: {benchmarks: \"world={run_dir}/test.jsonl,gsm8k\", data-dir: /d}\n";
    sq_run_config c;
    sq_err e;
    REQUIRE(sq_run_config_parse(&c, "c.yaml", text, strlen(text), &e) == 0);
    sq_run_plan p;
    REQUIRE(sq_run_plan_build(&p, &c, &e) == 0);
    int fs = sq_run_plan_find(&p, "filter_solvable"), dd = sq_run_plan_find(&p, "dedup"),
        dc = sq_run_plan_find(&p, "decontaminate"), ds = sq_run_plan_find(&p, "difficulty_score");
    REQUIRE(fs >= 0 && dd == fs + 1 && dc == dd + 1 && ds > dc);
    CHECK(p.stages[dd].enabled && p.stages[dc].enabled);
    CHECK(has_args(&p.stages[dd].cmds[0], "--in", "/tmp/r/filter_solvable.jsonl"));
    CHECK(has_args(&p.stages[dc].cmds[0], "--in", "/tmp/r/dedup.jsonl"));
    CHECK(has_args(&p.stages[dc].cmds[0], "--benchmarks", "world=/tmp/r/test.jsonl,gsm8k"));
    CHECK(has_args(&p.stages[dc].cmds[0], "--bench-dir", "/d"));
    CHECK(has_args(&p.stages[ds].cmds[0], "--in", "/tmp/r/decontaminate.jsonl"));
    sq_run_plan_free(&p);
    sq_run_config_free(&c);
}

SQ_TEST(decontaminate_drops_what_a_name_path_eval_set_holds) {
    const char *tmp = sq_test_tmpdir(), *sq = sq_test_cli();
    REQUIRE(sq_test_sh(NULL, "cd '%s' && '%s' world --n 200 --seed 4 --out train.jsonl --quiet && head -n 30 train.jsonl | "
                             "sed 's/\"id\":\"/\"id\":\"test-/' > test.jsonl && '%s' decontaminate --in train.jsonl "
                             "--out kept.jsonl --benchmarks world=test.jsonl --ngram 8 --quiet 2>/dev/null",
                       tmp, sq, sq) == 0);
    char *kept = NULL, *dropped = NULL, *report = NULL;
    REQUIRE(sq_test_sh(&kept, "wc -l < '%s/kept.jsonl'", tmp) == 0);
    REQUIRE(sq_test_sh(&dropped, "grep -c '\"benchmark\":\"world\"' '%s/kept.dropped.jsonl'", tmp) == 0);
    REQUIRE(sq_test_sh(&report, "cat '%s/kept.jsonl.decontam.json'", tmp) == 0);
    /* at least the 30 copied questions go (others may share a 8-gram with them) */
    CHECKF(atoi(dropped) >= 30 && atoi(kept) + atoi(dropped) == 200, "kept %s dropped %s", kept, dropped);
    CHECK(strstr(report, "\"decontaminated\"") && strstr(report, "test.jsonl"));
    free(kept), free(dropped), free(report);
    /* an unknown name without '=' is still an error naming the known ones */
    char *err = NULL;
    CHECK(sq_test_sh(&err, "cd '%s' && '%s' decontaminate --in train.jsonl --out k2.jsonl --benchmarks nope 2>&1", tmp, sq) != 0);
    CHECKF(err && strstr(err, "unknown benchmark \"nope\"") && strstr(err, "NAME=PATH"), "%s", err ? err : "");
    free(err);
}

SQ_TEST(plan_gives_eval_the_exported_set_as_training_data) {
    const char *base = "run_dir: /tmp/r\nmodels:\n  solver: /m/solver\n  responder: /m/solver\n";
    for (int student = 0; student < 2; student++) {
        sq_buf t = {0};
        sq_buf_printf(&t, "%sstages:\n  student: {enabled: %s}\n", base, student ? "true" : "false");
        sq_run_config c;
        sq_err e;
        REQUIRE(sq_run_config_parse(&c, "c.yaml", t.data, t.len, &e) == 0);
        sq_buf_free(&t);
        sq_run_plan p;
        REQUIRE(sq_run_plan_build(&p, &c, &e) == 0);
        const sq_run_stage *ev = &p.stages[sq_run_plan_find(&p, "eval")];
        CHECKF(has_args(&ev->cmds[0], "--train-data", "/tmp/r/export.jsonl") == student, "student %d", student);
        int listed = 0;
        for (int k = 0; k < ev->ninputs; k++) listed |= !strcmp(ev->inputs[k], "/tmp/r/export.jsonl");
        CHECK(listed == student);
        /* the base model's eval was not trained on it */
        CHECK(!has_args(&p.stages[sq_run_plan_find(&p, "eval_base")].cmds[0], "--train-data", "/tmp/r/export.jsonl"));
        sq_run_plan_free(&p);
        sq_run_config_free(&c);
    }
}

/* ---- a real chain run: qgen and respond answered by a scripted server over HTTP, the reward
 * model, difficulty scorer and student tiny random models made here ---------------------- */

typedef struct chain_world {
    char test_q[8][512]; /* held-out questions: qgen writes some of them (decontaminate drops) */
    int n_test;
} chain_world;

static int chain_reply(void *user, const char *input, uint64_t seed, int k, char *text, size_t cap, const char **finish) {
    const chain_world *w = user;
    size_t n = strlen(input), m = strlen("<|im_start|>user\n");
    uint64_t v = seed % 1000003;
    if (n >= m && !strcmp(input + n - m, "<|im_start|>user\n")) { /* qgen: a question */
        if (v % 5 == 0 && w->n_test) snprintf(text, cap, "%s", w->test_q[(v / 5) % (uint64_t)w->n_test]);
        else snprintf(text, cap, "Mia has %d apples and buys %d more. How many apples does she have now?", (int)(v % 89) + 2,
                      (int)(v / 89 % 97) + 1);
    } else { /* respond: an answer in the form the grader reads */
        snprintf(text, cap, "She adds them up. The answer is %d.", (int)(v % 50) + k);
    }
    return 0;
}

/* A random qwen2 model with the ChatML template (a scalar head when `score`). */
static int tiny_model(const char *dir, const char *tok, int score) {
    sq_model_config c = {0};
    snprintf(c.arch, sizeof c.arch, "qwen2");
    c.vocab_size = 300, c.dim = 32, c.n_layers = 1, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 8;
    c.ffn_dim = 48, c.max_seq_len = 256, c.rope_theta = 10000.0f, c.norm_eps = 1e-5f;
    c.attn_bias = 1, c.tie_embeddings = 1, c.bos_id = -1, c.eos_id = 2, c.pad_id = -1;
    sq_tmodel mdl;
    sq_err e = {0};
    int rc = sq_tm_create(&mdl, &c, score, &e);
    if (rc) return rc;
    sq_tm_init_random(&mdl, 5, 0.3f);
    rc = sq_tm_save_hf(&mdl, dir, tok, &e);
    sq_tm_free(&mdl);
    char *cfg = sq_path_join(dir, "tokenizer_config.json");
    sq_chat_template *tpl = NULL;
    sq_buf b = {0};
    if (!rc)
        rc = sq_chat_template_builtin(&tpl, "chatml", &e) || sq_chat_template_config_json(tpl, &b, &e) ||
             sq_file_write_atomic(cfg, b.data, b.len, &e);
    if (rc) fprintf(stderr, "tiny model %s: %s\n", dir, e.msg);
    sq_chat_template_free(tpl);
    sq_buf_free(&b);
    free(cfg);
    return rc;
}

static char *read_text(const char *dir, const char *rel) {
    char *p = sq_path_join(dir, rel), *t = NULL;
    size_t n;
    if (sq_file_read_all(p, &t, &n, NULL)) t = NULL;
    free(p);
    return t;
}

/* 1 when FILE (relative to dir) counts as decontaminated, 0 when not, -1 on error. */
static int clean(const char *dir, const char *rel) {
    char *p = sq_path_join(dir, rel), why[512];
    sq_err e;
    int ok = sq_decontam_check(p, why, sizeof why, &e);
    free(p);
    return ok;
}

SQ_TEST(chain_run_carries_the_marker_to_eval_and_warns_without_decontaminate) {
    const char *tmp = sq_test_tmpdir(), *sq = sq_test_cli();
    /* the held-out set eval measures and decontaminate checks against */
    REQUIRE(sq_test_sh(NULL, "cd '%s' && '%s' world --n 6 --start 1000000 --seed 2 --out test.jsonl --quiet", tmp, sq) == 0);
    chain_world w = {0};
    {
        char *lines = read_text(tmp, "test.jsonl");
        REQUIRE(lines);
        for (char *l = strtok(lines, "\n"); l && w.n_test < 8; l = strtok(NULL, "\n")) {
            cJSON *r = cJSON_Parse(l);
            const char *q = sq_rec_str(r, "query");
            if (q) snprintf(w.test_q[w.n_test++], sizeof w.test_q[0], "%s", q);
            cJSON_Delete(r);
        }
        free(lines);
        REQUIRE(w.n_test == 6);
    }
    /* a tokenizer, a reward model (also the difficulty scorer: a scalar head) and a student */
    static const char *special[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    sq_buf corpus = {0};
    for (int i = 0; i < 30; i++)
        sq_buf_puts(&corpus, "Mia has 3 apples and buys 4 more. How many apples does she have now? She adds them up. "
                             "The answer is 7. user assistant\n");
    sq_tok_train_opts to = {.vocab_size = 300, .min_frequency = 1, .special = special, .n_special = 3};
    sq_tokenizer *tk = NULL;
    sq_err e;
    char *tok = sq_path_join(tmp, "tokenizer.json"), *rm = sq_path_join(tmp, "rm"), *stu = sq_path_join(tmp, "student");
    REQUIRE(sq_tok_train(corpus.data, corpus.len, &to, &tk, &e) == 0 && sq_tok_save_json(tk, tok, &e) == 0);
    sq_tok_free(tk);
    sq_buf_free(&corpus);
    REQUIRE(tiny_model(rm, tok, 1) == 0 && tiny_model(stu, tok, 0) == 0);
    scripted s;
    scripted_init(&s, chain_reply, &w);
    char spec[128];
    sq_server *srv = scripted_serve(&s, spec, sizeof spec);
    REQUIRE(srv);
    for (int with = 1; with >= 0; with--) {
        char *run = sq_path_join(tmp, with ? "run" : "run_nodc");
        sq_buf cfg = {0};
        sq_buf_printf(&cfg,
                      "run_dir: %s\nseed: 3\nthreads: 2\ndata:\n  test: %s/test.jsonl\n"
                      "models:\n  question_generators: [\"%s\"]\n  responder: \"%s\"\n  reward_model: %s\n"
                      "  difficulty_scorer: %s\n  student: %s\n"
                      "stages:\n  qft: {enabled: false}\n  qgen_raw: {enabled: false}\n  optimize: {enabled: false}\n"
                      "  qpo: {enabled: false}\n  filter_solvable: {enabled: false}\n  difficulty_label: {enabled: false}\n"
                      "  scorer: {enabled: false}\n"
                      "  qgen: {options: {n-questions: 30, chat-template: chatml, max-tokens: 48}}\n"
                      "  decontaminate: {enabled: %s, options: {ngram: 8}}\n"
                      "  difficulty_score: {shards: 2}\n"
                      "  difficulty_sample: {options: {min-score: -1.0e9}}\n"
                      "  respond: {options: {n: 2, max-tokens: 32, instruction: none}}\n"
                      "  reward: {options: {keep: best}}\n"
                      "  student: {options: {max-steps: 2, batch: 2, seq-len: 128, save-every: 1}}\n"
                      "  eval: {options: {benchmarks: \"world=%s/test.jsonl\", max-tokens: 8, instruction: none}}\n",
                      run, tmp, spec, spec, rm, rm, stu, with ? "true" : "false", tmp);
        char *cfgp = sq_path_join(tmp, with ? "chain.yaml" : "chain_nodc.yaml");
        REQUIRE(sq_file_write_atomic(cfgp, cfg.data, cfg.len, &e) == 0);
        sq_buf_free(&cfg);
        char *out = NULL;
        int rc = sq_test_sh(&out, "'%s' run '%s' 2>&1", sq, cfgp);
        CHECKF(rc == 0, "run (decontaminate %s) exited %d: %s", with ? "on" : "off", rc, out ? out : "");
        char *log = read_text(run, "logs/eval.log"), *res = read_text(run, "eval/results.json");
        char *man = read_text(run, "manifest.json");
        CHECKF(log && res && man, "no eval log, results.json or manifest.json in %s", run);
        if (!log || !res || !man) {
            free(log), free(res), free(man), free(out), free(cfgp), free(run);
            break;
        }
        cJSON *mj = cJSON_Parse(man), *rj = cJSON_Parse(res);
        const cJSON *ev = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(mj, "stages"), "eval");
        const cJSON *cmd = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ev, "commands"), 0);
        char *export_path = sq_path_join(run, "export.jsonl");
        /* the manifest's eval record names the training data in its command and its inputs */
        int named = 0;
        for (const cJSON *a = cmd ? cmd->child : NULL; a && a->next; a = a->next)
            named |= !strcmp(a->valuestring, "--train-data") && !strcmp(a->next->valuestring, export_path);
        CHECKF(named, "the eval record's command has no --train-data %s", export_path);
        CHECK(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ev, "inputs"), export_path) != NULL);
        const cJSON *td = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(rj, "training_data"), 0);
        CHECKF(td && !strcmp(sq_rec_str(td, "file"), export_path), "%s", res);
        const char *warn = "was not decontaminated";
        if (with) {
            CHECKF(!strstr(log, warn), "eval warned after a decontaminated chain:\n%s", log);
            CHECKF(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(td, "decontaminated")), "%s", res);
            /* every file after decontaminate carries it; export has no held-out question */
            static const char *after[] = {"decontaminate.jsonl", "difficulty_score.jsonl", "difficulty_score.shard0.jsonl",
                                          "difficulty_sample.jsonl", "respond.jsonl", "reward.jsonl", "export.jsonl"};
            for (size_t i = 0; i < sizeof after / sizeof *after; i++) CHECKF(clean(run, after[i]) == 1, "%s", after[i]);
            CHECK(clean(run, "dedup.jsonl") == 0);
            char *ex = read_text(run, "export.jsonl"), *dropped = read_text(run, "decontaminate.dropped.jsonl");
            int leaked = 0;
            for (int i = 0; i < w.n_test; i++) leaked += ex && strstr(ex, w.test_q[i]) != NULL;
            CHECKF(ex && strlen(ex) > 0 && !leaked, "%d held-out questions in export.jsonl", leaked);
            CHECKF(dropped && strstr(dropped, "contaminated_by"), "%s", dropped ? dropped : "(no dropped file)");
            char *carried = read_text(run, "export.jsonl.decontam.json");
            CHECKF(carried && strstr(carried, "\"carried_from\""), "%s", carried ? carried : "");
            free(carried), free(ex), free(dropped);
        } else {
            CHECKF(strstr(log, warn) && strstr(log, "export.jsonl"), "no warning:\n%s", log);
            CHECKF(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(td, "decontaminated")), "%s", res);
            CHECK(clean(run, "respond.jsonl") == 0 && clean(run, "export.jsonl") == 0);
        }
        cJSON_Delete(mj), cJSON_Delete(rj);
        free(export_path), free(log), free(res), free(man), free(out), free(cfgp), free(run);
    }
    sq_server_close(srv);
    free(tok), free(rm), free(stu);
}

/* The stage framework's close carries the marker from a stage's input to its output, removes a
 * stale one when the input has none, and leaves decontaminate's own alone on a rerun. */
SQ_TEST(stages_carry_the_marker_and_drop_stale_ones) {
    const char *tmp = sq_test_tmpdir(), *sq = sq_test_cli();
    REQUIRE(sq_test_sh(NULL, "cd '%s' && '%s' world --n 60 --seed 4 --out q.jsonl --quiet && head -n 5 q.jsonl > t.jsonl && "
                             "'%s' decontaminate --in q.jsonl --out clean.jsonl --benchmarks world=t.jsonl --quiet && "
                             "'%s' filter lang --in clean.jsonl --out fl.jsonl --quiet",
                       tmp, sq, sq, sq) == 0);
    CHECK(clean(tmp, "clean.jsonl") == 1);
    CHECK(clean(tmp, "fl.jsonl") == 1);
    char *m = read_text(tmp, "fl.jsonl.decontam.json"), *own = read_text(tmp, "clean.jsonl.decontam.json");
    CHECKF(m && strstr(m, "\"carried_from\"") && strstr(m, "clean.jsonl") && strstr(m, "\"output_name\":\t\"fl.jsonl\""),
           "%s", m ? m : "(none)");
    /* a rerun of decontaminate (everything done) keeps its own report, not a carried one */
    REQUIRE(sq_test_sh(NULL, "cd '%s' && '%s' decontaminate --in q.jsonl --out clean.jsonl --benchmarks world=t.jsonl --quiet",
                       tmp, sq) == 0);
    char *own2 = read_text(tmp, "clean.jsonl.decontam.json");
    CHECK(own && own2 && !strstr(own2, "carried_from") && !strcmp(own, own2));
    /* a stage whose input has no marker removes the one an earlier run left beside its output */
    REQUIRE(sq_test_sh(NULL, "cd '%s' && cp fl.jsonl.decontam.json stale.jsonl.decontam.json && '%s' filter lang --in "
                             "q.jsonl --out stale.jsonl --quiet && test ! -e stale.jsonl.decontam.json",
                       tmp, sq) == 0);
    CHECK(clean(tmp, "stale.jsonl") == 0);
    free(m), free(own), free(own2);
}

