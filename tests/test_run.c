/* scalequest run: the config loader's one-line errors (unknown key, wrong type, bad YAML, each
 * with its line), the checks before any stage runs (missing model file, a server that refuses
 * connections, an option the command lacks, a command the binary lacks), and the runner on
 * the stages of the tiny world: manifest counts equal the files' lines, a rerun skips
 * everything, a changed option redoes that stage and what depends on it, and kill -9 at random
 * moments followed by a rerun gives the same bytes as an uninterrupted run. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scalequest/run.h"
#include "test.h"

static int parse(const char *text, sq_run_config *c, sq_err *e) {
    return sq_run_config_parse(c, "t.yaml", text, strlen(text), e);
}

SQ_TEST(default_config_parses_and_is_complete) {
    sq_run_config c;
    sq_err e;
    REQUIRE(parse("", &c, &e) == 0);
    CHECK(!strcmp(sq_run_config_str(&c, "run_dir"), "run"));
    CHECK(cJSON_IsTrue(sq_run_config_get(&c, "stages.qft.enabled")));
    const cJSON *t = sq_run_config_get(&c, "stages.respond.options.temperature");
    CHECK(t && t->valuedouble == 0.7);
    const cJSON *n = sq_run_config_get(&c, "stages.respond.options.n");
    CHECK(n && n->valuedouble == 5);
    for (int i = 0; i < sq_run_stage_count(); i++) {
        char key[128];
        snprintf(key, sizeof key, "stages.%s.enabled", sq_run_stage_name(i));
        CHECKF(cJSON_IsBool(sq_run_config_get(&c, key)), "the default lacks %s", key);
    }
    sq_run_plan p;
    REQUIRE(sq_run_plan_build(&p, &c, &e) == 0);
    int i = sq_run_plan_find(&p, "respond");
    REQUIRE(i >= 0);
    const sq_run_cmd *cmd = &p.stages[i].cmds[0];
    CHECK(!strcmp(cmd->argv[0], "respond"));
    char joined[4096] = "";
    for (int a = 0; a < cmd->argc; a++) snprintf(joined + strlen(joined), sizeof joined - strlen(joined), "%s ", cmd->argv[a]);
    CHECKF(strstr(joined, "--in run/difficulty_sample.jsonl --out run/respond.jsonl") && strstr(joined, "--n 5 ") &&
               strstr(joined, "--temperature 0.7 ") && strstr(joined, "--top-p 0.95 "),
           "%s", joined);
    sq_run_plan_free(&p);
    sq_run_config_free(&c);
}

SQ_TEST(config_errors_name_the_key_and_line) {
    sq_run_config c;
    sq_err e;
    CHECK(parse("run_dir: x\nstages:\n  qft:\n    enabeld: true\n", &c, &e) == SQ_EINVAL);
    CHECKF(!strcmp(e.msg, "t.yaml:4: stages.qft.enabeld: unknown key"), "%s", e.msg);
    CHECK(parse("run_dir: x\nseed: one\n", &c, &e) == SQ_EINVAL);
    CHECKF(!strcmp(e.msg, "t.yaml:2: seed: expected a number, got a string"), "%s", e.msg);
    CHECK(parse("stages:\n  qgen:\n    enabled: 3\n", &c, &e) == SQ_EINVAL);
    CHECKF(strstr(e.msg, "t.yaml:3: stages.qgen.enabled: expected true/false"), "%s", e.msg);
    CHECK(parse("stages:\n  respond:\n    options: {temperature: hot}\n", &c, &e) == SQ_EINVAL);
    CHECKF(strstr(e.msg, "t.yaml:3: stages.respond.options.temperature: expected a number"), "%s", e.msg);
    CHECK(parse("stages:\n  respond:\n    options: {stop: {a: 1}}\n", &c, &e) == SQ_EINVAL);
    CHECKF(strstr(e.msg, "stages.respond.options.stop: an option must be a value or a list"), "%s", e.msg);
    CHECK(parse("models:\n  question_generators: [a, 3]\n", &c, &e) == SQ_EINVAL);
    CHECKF(strstr(e.msg, "t.yaml:2: models.question_generators: each item must be a string"), "%s", e.msg);
    CHECK(parse("nonsense: [\n", &c, &e) == SQ_EPARSE);
    CHECKF(!strncmp(e.msg, "t.yaml:2:", 9), "%s", e.msg);
    CHECK(parse("- a\n- b\n", &c, &e) == SQ_EPARSE);
    CHECKF(strstr(e.msg, "must be a mapping"), "%s", e.msg);
    CHECK(parse("seed: 1\nseed: 2\n", &c, &e) == SQ_EPARSE);
    CHECKF(strstr(e.msg, "t.yaml:2: seed: key given twice"), "%s", e.msg);
    CHECK(parse("threads: -1\n", &c, &e) == SQ_EINVAL);
    CHECKF(strstr(e.msg, "t.yaml:1: threads"), "%s", e.msg);
    /* a new option for a stage is fine (checked later against the command's --help) */
    CHECK(parse("stages:\n  respond:\n    options: {stop: [a, b], chunk: 8}\n", &c, &e) == 0);
    sq_run_config_free(&c);
}

/* A config of the tiny world's stages only (everything after QFT switched off). */
static char *small_config_(const char *run_dir, const char *extra_solver, const char *model_solver, int solver_on) {
    static const char *off[] = {"qgen_raw", "optimize", "qpo", "qgen", "filter_lang", "filter_solvable", "dedup", "decontaminate", "difficulty_label",
                                "scorer", "difficulty_score", "difficulty_sample", "respond", "reward", "export", "student",
                                "eval"};
    sq_buf b = {0};
    sq_buf_printf(&b,
                  "run_dir: %s\nthreads: 1\ndata:\n  train: \"{run_dir}/data/train.jsonl\"\n  corpus: \"{run_dir}/data/corpus.txt\"\n"
                  "models:\n  solver: \"%s\"\nstages:\n"
                  "  world_train: {enabled: true, options: {n: 300}}\n"
                  "  world_text: {enabled: true, options: {n: 300}}\n"
                  "  tokenizer: {enabled: true, options: {vocab-size: 290}}\n"
                  "  solver:\n    enabled: %s\n    options: {init-config: \"dim=16,layers=1,heads=2,kv_heads=1,ffn=32,seq=64\", "
                  "max-steps: 6, batch: 2, seq-len: 64, save-every: 2, chat-template: chatml%s}\n"
                  "  qft: {enabled: true, options: {max-steps: 4, batch: 2, seq-len: 64, save-every: 2}}\n",
                  run_dir, model_solver, solver_on ? "true" : "false", extra_solver);
    for (size_t i = 0; i < sizeof off / sizeof off[0]; i++) sq_buf_printf(&b, "  %s: {enabled: false}\n", off[i]);
    return b.data;
}
static char *small_config(const char *run_dir, const char *extra_solver, const char *model_solver) {
    return small_config_(run_dir, extra_solver, model_solver, 1);
}

static int run_cli(const char *cfg_path, const char *args) {
    return sq_test_sh(NULL, "OMP_WAIT_POLICY=PASSIVE '%s' run '%s' %s --quiet 2>/dev/null", sq_test_cli(), cfg_path, args);
}

static char *write_cfg(const char *dir, const char *name, const char *text) {
    char *p = sq_path_join(dir, name);
    sq_err e;
    if (sq_file_write_atomic(p, text, strlen(text), &e)) sq_test_fail(__FILE__, __LINE__, "%s", e.msg);
    return p;
}

static double rec_num(const cJSON *m, const char *stage, const char *k) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(m, "stages"), stage);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

SQ_TEST(preflight_names_missing_files_refused_servers_and_unknown_options) {
    const char *tmp = sq_test_tmpdir();
    char *rd = sq_path_join(tmp, "run"), *err = NULL;
    /* a solver that does not exist, given by path: named with its config line */
    char *text = small_config_(rd, "", "/nonexistent/solver", 0);
    char *cfg = write_cfg(tmp, "a.yaml", text);
    int rc = sq_test_sh(&err, "'%s' run '%s' 2>&1", sq_test_cli(), cfg);
    CHECK(rc == 1);
    CHECKF(err && strstr(err, "a.yaml:7: models.solver: /nonexistent/solver: no such file or folder"), "%s", err);
    CHECK(err && !strchr(strchr(err, '\n') ? strchr(err, '\n') + 1 : "", '\n')); /* one line */
    free(err);
    struct stat st;
    CHECK(stat(rd, &st) != 0); /* nothing ran, nothing was made */
    free(text);
    free(cfg);
    /* a server that refuses connections: a port we bound and closed */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    REQUIRE(s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(s, (struct sockaddr *)&a, &al) == 0);
    int port = ntohs(a.sin_port);
    close(s);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1#judge", port);
    sq_buf b = {0};
    sq_buf_printf(&b, "run_dir: %s\nmodels:\n  question_generators: [\"%s\"]\nstages:\n", rd, url);
    for (int i = 0; i < sq_run_stage_count(); i++)
        sq_buf_printf(&b, "  %s: {enabled: %s}\n", sq_run_stage_name(i), !strcmp(sq_run_stage_name(i), "qgen") ? "true" : "false");
    sq_run_config c;
    sq_err e;
    REQUIRE(sq_run_config_parse(&c, "b.yaml", b.data, b.len, &e) == 0);
    sq_run_plan p;
    REQUIRE(sq_run_plan_build(&p, &c, &e) == 0);
    rc = sq_run_preflight(&p, &c, sq_test_cli(), &e);
    CHECKF(rc == SQ_ENET && strstr(e.msg, "b.yaml:3: models.question_generators: ") && strstr(e.msg, "refuses connections"),
           "%s", e.msg);
    sq_run_plan_free(&p);
    sq_run_config_free(&c);
    sq_buf_free(&b);
    /* an option the command does not have, and a command the binary does not have */
    text = small_config(rd, ", bogus-flag: 3", "@solver");
    cfg = write_cfg(tmp, "c.yaml", text);
    rc = sq_test_sh(&err, "'%s' run '%s' 2>&1", sq_test_cli(), cfg);
    CHECKF(rc == 1 && err && strstr(err, "c.yaml:14: stages.solver.options.bogus-flag: `scalequest train` has no option --bogus-flag"),
           "%s", err);
    free(err);
    rc = sq_test_sh(&err, "'%s' run '%s' --exe /bin/false 2>&1", sq_test_cli(), cfg);
    CHECKF(rc == 1 && err && strstr(err, "stages.world_train.enabled: this scalequest has no `world` command"), "%s", err);
    free(err);
    free(text);
    free(cfg);
    free(rd);
}

SQ_TEST(rerun_skips_unchanged_stages_and_redoes_changed_ones_downstream) {
    const char *tmp = sq_test_tmpdir();
    char *rd = sq_path_join(tmp, "run");
    char *text = small_config(rd, "", "@solver"), *cfg = write_cfg(tmp, "r.yaml", text);
    REQUIRE(run_cli(cfg, "") == 0);
    cJSON *m = NULL;
    sq_err e;
    REQUIRE(sq_run_manifest_load(rd, &m, &e) == 0);
    /* counts equal the files' lines */
    char *train = sq_path_join(rd, "data/train.jsonl");
    const cJSON *counts = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(m, "stages"), "world_train"), "counts");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(counts, train);
    CHECK(n && n->valuedouble == 300 && sq_run_count_lines(train) == 300);
    CHECK(rec_num(m, "solver", "wall_s") > 0 && rec_num(m, "solver", "cpu_s") > 0);
    char *solver = sq_path_join(rd, "models/solver/config.json"), *solver_tmp = sq_path_join(rd, "models/solver.tmp");
    CHECK(sq_file_exists(solver) && !sq_dir_exists(solver_tmp));
    double att_world = rec_num(m, "world_train", "attempts"), att_qft = rec_num(m, "qft", "attempts");
    cJSON_Delete(m);
    /* the same config again: nothing runs */
    REQUIRE(run_cli(cfg, "") == 0);
    REQUIRE(sq_run_manifest_load(rd, &m, &e) == 0);
    CHECK(rec_num(m, "world_train", "attempts") == att_world && rec_num(m, "qft", "attempts") == att_qft);
    cJSON_Delete(m);
    /* the dry run says so */
    char *out = NULL;
    sq_test_sh(&out, "'%s' run '%s' --dry-run", sq_test_cli(), cfg);
    CHECKF(out && strstr(out, "world_train        up to date") && strstr(out, "qft                up to date"), "%s", out);
    free(out);
    /* a changed solver option: the solver and QFT (which starts from it) run again, the data does not */
    free(text);
    free(cfg);
    text = small_config(rd, ", lr: 0.003", "@solver");
    cfg = write_cfg(tmp, "r.yaml", text);
    sq_test_sh(&out, "'%s' run '%s' --dry-run", sq_test_cli(), cfg);
    CHECKF(out && strstr(out, "world_train        up to date") && strstr(out, "solver             run") &&
               strstr(out, "qft                run (after"),
           "%s", out);
    free(out);
    REQUIRE(run_cli(cfg, "") == 0);
    REQUIRE(sq_run_manifest_load(rd, &m, &e) == 0);
    CHECK(rec_num(m, "world_train", "attempts") == att_world);
    CHECK(rec_num(m, "solver", "attempts") == 1 && rec_num(m, "qft", "attempts") == 1); /* fresh records */
    cJSON_Delete(m);
    /* --only redoes one stage */
    REQUIRE(run_cli(cfg, "--only tokenizer") == 0);
    REQUIRE(sq_run_manifest_load(rd, &m, &e) == 0);
    CHECK(rec_num(m, "tokenizer", "attempts") == 1);
    cJSON_Delete(m);
    CHECK(run_cli(cfg, "--only nosuchstage") != 0);
    /* --from redoes that stage and what follows, not what precedes */
    REQUIRE(sq_run_manifest_load(rd, &m, &e) == 0);
    double fin_solver = rec_num(m, "solver", "finished"), fin_qft = rec_num(m, "qft", "finished");
    cJSON_Delete(m);
    sleep(1);
    REQUIRE(run_cli(cfg, "--from qft") == 0);
    REQUIRE(sq_run_manifest_load(rd, &m, &e) == 0);
    CHECK(rec_num(m, "solver", "finished") == fin_solver && rec_num(m, "qft", "finished") > fin_qft);
    cJSON_Delete(m);
    free(text);
    free(cfg);
    free(train);
    free(solver);
    free(solver_tmp);
    free(rd);
}

static int same_file(const char *a, const char *b) {
    return sq_test_sh(NULL, "cmp -s '%s' '%s'", a, b) == 0;
}

SQ_TEST(killed_runs_resume_to_the_bytes_of_an_uninterrupted_run) {
    const char *tmp = sq_test_tmpdir();
    char *ref = sq_path_join(tmp, "ref"), *got = sq_path_join(tmp, "got");
    char *t1 = small_config(ref, "", "@solver"), *t2 = small_config(got, "", "@solver");
    char *c1 = write_cfg(tmp, "ref.yaml", t1), *c2 = write_cfg(tmp, "got.yaml", t2);
    double t0 = sq_now();
    REQUIRE(run_cli(c1, "") == 0);
    double run_s = sq_now() - t0;
    sq_rng r;
    sq_rng_seed(&r, (uint64_t)getpid());
    int kills = 0;
    for (int round = 0; round < 6; round++) {
        char *pid_s = NULL;
        sq_test_sh(&pid_s, "OMP_WAIT_POLICY=PASSIVE '%s' run '%s' --quiet >/dev/null 2>&1 & echo $!", sq_test_cli(), c2);
        REQUIRE(pid_s);
        pid_t pid = (pid_t)atol(pid_s);
        free(pid_s);
        usleep((useconds_t)(sq_rng_uniform(&r) * run_s * 0.4 * 1e6));
        if (kill(pid, SIGKILL) == 0) kills++;
        sq_test_sh(NULL, "while kill -0 %d 2>/dev/null; do sleep 0.02; done", (int)pid);
    }
    REQUIRE(run_cli(c2, "") == 0);
    CHECK(kills > 0);
    const char *files[] = {"data/train.jsonl", "data/corpus.txt", "tokenizer.json", "models/solver/model.safetensors",
                           "models/qft/model.safetensors", "models/qft/config.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *a = sq_path_join(ref, files[i]), *b = sq_path_join(got, files[i]);
        CHECKF(same_file(a, b), "%s differs after %d kills", files[i], kills);
        free(a);
        free(b);
    }
    char *tmpdir = sq_path_join(got, "models/qft.tmp");
    CHECK(!sq_dir_exists(tmpdir));
    free(tmpdir);
    free(t1);
    free(t2);
    free(c1);
    free(c2);
    free(ref);
    free(got);
}

SQ_TEST(hash_of_a_folder_changes_with_any_file) {
    const char *tmp = sq_test_tmpdir();
    char h1[33], h2[33], h3[33];
    sq_err e;
    char *a = sq_path_join(tmp, "a.txt"), *sub = sq_path_join(tmp, "d"), *b = sq_path_join(tmp, "d/b.txt");
    REQUIRE(sq_file_write_atomic(a, "hello", 5, &e) == 0 && sq_mkdirs(sub, &e) == 0 && sq_file_write_atomic(b, "x", 1, &e) == 0);
    cJSON *cache = cJSON_CreateObject();
    REQUIRE(sq_run_hash_path(tmp, cache, h1, &e) == 0);
    REQUIRE(sq_run_hash_path(tmp, cache, h2, &e) == 0);
    CHECK(!strcmp(h1, h2) && strlen(h1) == 32);
    usleep(20000);
    REQUIRE(sq_file_write_atomic(b, "y", 1, &e) == 0);
    REQUIRE(sq_run_hash_path(tmp, cache, h3, &e) == 0);
    CHECK(strcmp(h1, h3) != 0);
    cJSON_Delete(cache);
    free(a);
    free(b);
    free(sub);
}

SQ_TEST(yaml_alias_bomb_is_refused) {
    sq_run_config c;
    sq_err e;
    const char *bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                       "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                       "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n";
    CHECK(parse(bomb, &c, &e) == SQ_EPARSE);
    CHECKF(strstr(e.msg, "more than 20000 values"), "%s", e.msg);
}
