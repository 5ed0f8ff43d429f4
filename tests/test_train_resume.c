/* train: a run killed with kill -9 and started again gives the same loss curve and the same
 * final weights as a run that was never interrupted; checkpoints load back. */
#include <stdlib.h>
#include <unistd.h>

#include "scalequest/train.h"
#include "test.h"

static void write_data(const char *path, int n, uint64_t seed) {
    FILE *f = fopen(path, "w");
    if (!f) return;
    sq_rng r;
    sq_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) {
        int len = 6 + (int)sq_rng_below(&r, 40);
        fprintf(f, "{\"input_ids\": [");
        for (int j = 0; j < len; j++) fprintf(f, "%s%d", j ? ", " : "", (int)sq_rng_below(&r, 96));
        fprintf(f, "], \"loss_mask\": [");
        for (int j = 0; j < len; j++) fprintf(f, "%s%d", j ? ", " : "", j >= 3);
        fprintf(f, "]}\n");
    }
    fclose(f);
}

static char *slurp(const char *dir, const char *name) {
    char *p = sq_path_join(dir, name), *data = NULL;
    size_t len;
    if (sq_file_read_all(p, &data, &len, NULL)) data = NULL;
    free(p);
    return data;
}

SQ_TEST(kill9_and_resume_gives_the_same_curve) {
    const char *dir = sq_test_tmpdir();
    char data[1024], cmd[2048];
    snprintf(data, sizeof data, "%s/d.jsonl", dir);
    write_data(data, 200, 5);
    snprintf(cmd, sizeof cmd,
             "%s train --mode sft --init-config dim=32,layers=2,heads=4,kv_heads=2,ffn=64,vocab=96,seq=64 "
             "--data %s --batch 4 --seq-len 64 --accum 2 --lr 2e-3 --warmup-ratio 0.1 --weight-decay 0.1 "
             "--epochs 3 --save-every 3 --seed 7 --threads 1 --quiet",
             sq_test_cli(), data);
    REQUIRE(sq_test_sh(NULL, "%s --out %s/a", cmd, dir) == 0);
    /* Kill once a checkpoint exists and a few more steps are logged, well before the end. */
    int rc = sq_test_sh(NULL,
                        "%s --out %s/b & pid=$!; "
                        "for i in $(seq 2000); do grep -q '\"step\": 8,' %s/b/train_log.jsonl 2>/dev/null && break; "
                        "sleep 0.01; done; kill -9 $pid; wait $pid; test ! -e %s/b/model.safetensors",
                        cmd, dir, dir, dir);
    REQUIRE(rc == 0); /* the run was killed before it finished */
    char *partial = slurp(dir, "b/train_log.jsonl");
    REQUIRE(partial);
    CHECK(strstr(partial, "\"step\": 8,") != NULL);
    free(partial);
    REQUIRE(sq_test_sh(NULL, "%s --out %s/b", cmd, dir) == 0);
    char *la = slurp(dir, "a/train_log.jsonl"), *lb = slurp(dir, "b/train_log.jsonl");
    REQUIRE(la && lb);
    int lines = 0;
    for (char *p = la; *p; p++) lines += *p == '\n';
    CHECK(lines > 20);
    CHECK_EQ_STR(lb, la);
    free(la);
    free(lb);
    CHECK(sq_test_sh(NULL, "cmp -s %s/a/model.safetensors %s/b/model.safetensors", dir, dir) == 0);
}

SQ_TEST(checkpoint_loads_back_and_predicts_the_same) {
    sq_model_config c = {0};
    snprintf(c.arch, sizeof c.arch, "qwen2");
    c.vocab_size = 50, c.dim = 16, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 4;
    c.ffn_dim = 24, c.max_seq_len = 32, c.rope_theta = 10000.0f, c.norm_eps = 1e-6f, c.attn_bias = 1;
    c.tie_embeddings = 1, c.bos_id = -1, c.eos_id = 3;
    sq_tmodel a, b;
    sq_err e;
    REQUIRE(sq_tm_create(&a, &c, 1, &e) == 0);
    sq_tm_init_random(&a, 1, 0.1f);
    for (int i = 0; i < 16; i++) a.w.score[i] = 0.01f * (float)i;
    char *d = sq_path_join(sq_test_tmpdir(), "m");
    REQUIRE(sq_tm_save_hf(&a, d, NULL, &e) == 0);
    REQUIRE(sq_tm_load_hf(&b, d, 0, &e) == 0);
    CHECK(b.has_score);
    CHECK_EQ_INT(b.n_params, a.n_params);
    CHECK(memcmp(a.params, b.params, a.n_params * sizeof(float)) == 0);
    CHECK(b.cfg.attn_bias && b.cfg.tie_embeddings && b.cfg.n_kv_heads == 2);
    free(d);
    /* A missing folder is an error naming it. */
    sq_tmodel x;
    CHECK(sq_tm_load_hf(&x, "/nonexistent/model", 0, &e) != 0);
    CHECK(strstr(e.msg, "/nonexistent/model") != NULL);
    sq_tm_free(&a);
    sq_tm_free(&b);
}

/* Gradient accumulation: 2 micro-batches of 2 rows are one step of 4 rows. */
SQ_TEST(accumulation_equals_the_big_batch) {
    const char *dir = sq_test_tmpdir();
    char data[1024], cmd[2048];
    snprintf(data, sizeof data, "%s/d.jsonl", dir);
    write_data(data, 24, 9);
    snprintf(cmd, sizeof cmd,
             "%s train --mode sft --init-config dim=32,layers=2,heads=4,kv_heads=1,ffn=64,vocab=96,seq=64 "
             "--data %s --seq-len 64 --no-pack --lr 3e-3 --epochs 2 --seed 4 --threads 1 --quiet",
             sq_test_cli(), data);
    REQUIRE(sq_test_sh(NULL, "%s --batch 4 --accum 1 --out %s/big", cmd, dir) == 0);
    REQUIRE(sq_test_sh(NULL, "%s --batch 2 --accum 2 --out %s/acc", cmd, dir) == 0);
    char *a = slurp(dir, "big/train_log.jsonl"), *b = slurp(dir, "acc/train_log.jsonl");
    REQUIRE(a && b);
    int n = 0;
    for (char *p = a, *q = b; (p = strstr(p, "\"loss\": ")) && (q = strstr(q, "\"loss\": ")); p++, q++, n++) {
        double la = atof(p + 8), lb = atof(q + 8);
        CHECKF(fabs(la - lb) <= 1e-5 * fabs(la), "step %d: loss %.9g with one batch, %.9g accumulated", n + 1, la, lb);
    }
    CHECK_EQ_INT(n, 12);
    free(a);
    free(b);
}

/* A checkpoint holds what shaped its run (options and a hash of the data): a rerun that
 * changes any of them is refused with the option named, and leaves the checkpoint alone;
 * the same command resumes and says from which step. */
SQ_TEST(resume_refuses_a_changed_run_and_names_the_change) {
    const char *dir = sq_test_tmpdir();
    char data[1024], other[1024], cmd[2048];
    snprintf(data, sizeof data, "%s/d.jsonl", dir);
    snprintf(other, sizeof other, "%s/d2.jsonl", dir);
    write_data(data, 60, 5);
    write_data(other, 60, 6); /* the same number of records, other tokens */
    snprintf(cmd, sizeof cmd,
             "%s train --mode sft --init-config dim=16,layers=1,heads=2,kv_heads=1,ffn=32,vocab=96,seq=64 "
             "--threads 1 --quiet --max-steps 6 --save-every 3 --out %s/c",
             sq_test_cli(), dir);
    const char *base = "--batch 4 --seq-len 32 --lr 2e-3 --seed 7";
    REQUIRE(sq_test_sh(NULL, "%s --data %s %s 2>&1", cmd, data, base) == 0);
    char *log_before = slurp(dir, "c/train_log.jsonl");
    REQUIRE(log_before);
    struct {
        const char *args, *named;
    } changes[] = {
        {"--batch 4 --seq-len 32 --lr 1e-3 --seed 7", "--lr"},
        {"--batch 2 --seq-len 32 --lr 2e-3 --seed 7", "--batch"},
        {"--batch 4 --seq-len 48 --lr 2e-3 --seed 7", "--seq-len"},
        {"--batch 4 --seq-len 32 --lr 2e-3 --seed 8", "--seed"},
    };
    for (size_t i = 0; i < SQ_ARRAY_LEN(changes); i++) {
        char *msg = NULL;
        int rc = sq_test_sh(&msg, "%s --data %s %s 2>&1", cmd, data, changes[i].args);
        CHECKF(rc != 0, "%s: a changed run resumed", changes[i].args);
        CHECKF(msg && strstr(msg, changes[i].named) && strstr(msg, "last-checkpoint"), "%s: message: %s",
               changes[i].args, msg ? msg : "(none)");
        free(msg);
    }
    char *msg = NULL;
    int rc = sq_test_sh(&msg, "%s --data %s %s 2>&1", cmd, other, base);
    CHECKF(rc != 0, "other data of the same length resumed");
    CHECKF(msg && strstr(msg, "--data"), "message: %s", msg ? msg : "(none)");
    free(msg);
    char *log_after = slurp(dir, "c/train_log.jsonl");
    CHECK(log_after && !strcmp(log_after, log_before)); /* refused runs touched nothing */
    free(log_after);
    msg = NULL;
    rc = sq_test_sh(&msg, "%s --data %s %s 2>&1", cmd, data, base);
    CHECK(rc == 0);
    CHECKF(msg && strstr(msg, "resuming from step 3"), "message: %s", msg ? msg : "(none)");
    free(msg);
    log_after = slurp(dir, "c/train_log.jsonl");
    CHECK(log_after && !strcmp(log_after, log_before)); /* steps 4-6 redone the same way */
    free(log_after);
    free(log_before);
}
