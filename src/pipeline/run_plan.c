/* The plan: the paper's chain as a fixed list of stages, each turned into the argv of a
 * `scalequest` command from the config. The question records flow through the "chain" stages
 * (each reads the output of the last enabled one before it); the other stages train models or
 * make data that the chain names by path. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scalequest/run.h"

typedef enum { K_DATA, K_CHAIN, K_SIDE } stage_kind;

typedef struct stage_def {
    const char *name, *type;
    stage_kind kind;
} stage_def;

static const stage_def defs[] = {
    {"world_train", "data", K_DATA},      {"world_test", "data", K_DATA},        {"world_text", "data", K_DATA},
    {"tokenizer", "train", K_DATA},       {"solver", "train", K_SIDE},           {"qft", "train", K_SIDE},
    {"qgen_raw", "infer", K_SIDE},        {"optimize", "api", K_SIDE},           {"qpo", "train", K_SIDE},
    {"qgen", "infer", K_CHAIN},           {"filter_lang", "filter", K_CHAIN},    {"filter_solvable", "api", K_CHAIN},
    {"dedup", "filter", K_CHAIN},         {"decontaminate", "filter", K_CHAIN},
    {"difficulty_label", "infer", K_SIDE}, {"scorer", "train", K_SIDE},          {"difficulty_score", "infer", K_CHAIN},
    {"difficulty_sample", "filter", K_CHAIN}, {"difficulty_judge", "api", K_SIDE}, {"rm_respond", "infer", K_SIDE},
    {"rm_label", "data", K_SIDE},         {"rm", "train", K_SIDE},               {"respond", "infer", K_CHAIN},
    {"reward", "infer", K_CHAIN},         {"export", "data", K_CHAIN},           {"eval_base", "eval", K_SIDE},
    {"student", "train", K_SIDE},         {"eval", "eval", K_SIDE},
};
enum { NDEFS = sizeof defs / sizeof defs[0] };

int sq_run_stage_count(void) { return NDEFS; }
const char *sq_run_stage_name(int i) { return i >= 0 && i < NDEFS ? defs[i].name : NULL; }

typedef struct bld {
    const sq_run_config *c;
    const char *run_dir;
    sq_run_stage *s;
    sq_run_cmd *cmd;
    int oom;
} bld;

/* {run_dir} in a config string becomes the run directory. */
static char *expand(const char *s, const char *run_dir) {
    sq_buf b = {0};
    for (const char *p = s; *p;) {
        const char *q = strstr(p, "{run_dir}");
        if (!q) {
            sq_buf_puts(&b, p);
            break;
        }
        sq_buf_append(&b, p, (size_t)(q - p));
        sq_buf_puts(&b, run_dir);
        p = q + 9;
    }
    if (!b.data) return sq_strdup("");
    return b.data;
}

static char *fmt(const char *f, const char *a, const char *b) {
    size_t n = strlen(f) + strlen(a) + (b ? strlen(b) : 0) + 1;
    char *s = malloc(n);
    if (s) snprintf(s, n, f, a, b ? b : "");
    return s;
}

static void arg_own(bld *b, char *s) {
    if (!s || b->cmd->argc >= SQ_RUN_MAX_ARGS - 1) {
        free(s);
        b->oom = 1;
        return;
    }
    b->cmd->argv[b->cmd->argc++] = s;
    b->cmd->argv[b->cmd->argc] = NULL;
}
static void arg(bld *b, const char *s) { arg_own(b, sq_strdup(s)); }
static void arg2(bld *b, const char *flag, const char *v) {
    arg(b, flag);
    arg(b, v);
}

static void new_cmd(bld *b, const char *words) {
    if (b->s->ncmds >= SQ_RUN_MAX_CMDS) {
        b->oom = 1;
        return;
    }
    b->cmd = &b->s->cmds[b->s->ncmds++];
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%s", words);
    for (char *w = strtok(tmp, " "); w; w = strtok(NULL, " ")) arg(b, w);
}

static void add_io(bld *b, char **list, int *n, char *path) {
    if (!path || *n >= SQ_RUN_MAX_IO) {
        free(path);
        b->oom = 1;
        return;
    }
    list[(*n)++] = path;
}
/* key: the config key that named the path (for messages), NULL when the plan made it up. */
static void input_k(bld *b, const char *path, const char *key) {
    if (!path || (!*path && !key)) return; /* an empty path with a key: an unset model or file */
    b->s->input_keys[b->s->ninputs < SQ_RUN_MAX_IO ? b->s->ninputs : 0] = key;
    add_io(b, b->s->inputs, &b->s->ninputs, sq_strdup(path));
}
static void input(bld *b, const char *path) { input_k(b, path, NULL); }
static void output(bld *b, char *path, int is_dir) {
    b->s->out_is_dir[b->s->noutputs] = is_dir;
    add_io(b, b->s->outputs, &b->s->noutputs, path);
}

/* A model spec as a command takes it: @STAGE is that stage's model folder in this run. */
static char *model_spec(bld *b, const char *spec) {
    if (spec[0] == '@') {
        char *rel = fmt("models/%s%s", spec + 1, NULL);
        char *p = rel ? sq_path_join(b->run_dir, rel) : NULL;
        free(rel);
        return p;
    }
    return expand(spec, b->run_dir);
}

/* The file or folder a model spec reads from disk ("" for a server or the bare world). */
static const char *spec_path(const char *spec) {
    if (!strncmp(spec, "http://", 7) || !strncmp(spec, "https://", 8)) return "";
    if (!strncmp(spec, "local:", 6)) return spec + 6;
    if (!strncmp(spec, "world:", 6)) return spec + 6;
    return spec;
}

static void model_arg(bld *b, const char *flag, const char *spec, const char *key) {
    char *m = model_spec(b, spec);
    if (!m) {
        b->oom = 1;
        return;
    }
    arg2(b, flag, m);
    const char *sp = spec_path(m);
    if (*sp || !*m) input_k(b, sp, key);
    free(m);
}

static char *run_file(bld *b, const char *name, const char *ext) {
    char *rel = fmt("%s%s", name, ext);
    char *p = rel ? sq_path_join(b->run_dir, rel) : NULL;
    free(rel);
    return p;
}

/* --key value for each option; true: the bare flag; false/null: left out; a list: repeated. */
static void options(bld *b) {
    for (const cJSON *o = b->s->options ? b->s->options->child : NULL; o; o = o->next) {
        const cJSON *items = cJSON_IsArray(o) ? o->child : o;
        for (const cJSON *v = items; v; v = cJSON_IsArray(o) ? v->next : NULL) {
            char flag[160], num[64];
            snprintf(flag, sizeof flag, "--%s", o->string);
            if (cJSON_IsBool(v)) {
                if (cJSON_IsTrue(v)) arg(b, flag);
            } else if (cJSON_IsNumber(v)) {
                if (v->valuedouble == (double)(int64_t)v->valuedouble && fabs(v->valuedouble) < 1e15)
                    snprintf(num, sizeof num, "%lld", (long long)v->valuedouble);
                else /* the shortest form that reads back the same */
                    for (int prec = 6; prec <= 17; prec++) {
                        snprintf(num, sizeof num, "%.*g", prec, v->valuedouble);
                        if (strtod(num, NULL) == v->valuedouble) break;
                    }
                arg2(b, flag, num);
            } else if (cJSON_IsString(v)) {
                arg(b, flag);
                arg_own(b, expand(v->valuestring, b->run_dir));
            }
            if (!cJSON_IsArray(o)) break;
        }
    }
}

static void common(bld *b) {
    char num[32];
    const cJSON *seed = sq_run_config_get(b->c, "seed"), *th = sq_run_config_get(b->c, "threads");
    snprintf(num, sizeof num, "%lld", (long long)seed->valuedouble);
    arg2(b, "--seed", num);
    if (th->valuedouble > 0) {
        snprintf(num, sizeof num, "%d", th->valueint);
        arg2(b, "--threads", num);
    }
}

static int64_t opt_int(const sq_run_stage *s, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s->options, key);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
}

static const char *cfg(bld *b, const char *key) {
    const char *v = sq_run_config_str(b->c, key);
    return v ? v : "";
}

static int enabled(const sq_run_plan *p, const char *name) {
    int i = sq_run_plan_find(p, name);
    return i >= 0 && p->stages[i].enabled;
}

/* A training stage: train --mode M [--model START] --data DATA --out models/NAME.tmp; the
 * folder is renamed to models/NAME when the command succeeds. */
static void train_stage(bld *b, const char *mode, const char *start, const char *start_key, const char *data,
                        const char *data_key) {
    new_cmd(b, "train");
    arg2(b, "--mode", mode);
    if (start && *start) model_arg(b, "--model", start, start_key);
    char *d = expand(data, b->run_dir);
    if (d) {
        arg2(b, "--data", d);
        input_k(b, d, data_key);
    }
    free(d);
    char *out = run_file(b, "models/", b->s->name);
    char *tmp = out ? fmt("%s.tmp%s", out, NULL) : NULL;
    if (tmp) arg2(b, "--out", tmp);
    output(b, out, 1);
    b->s->progress_file = tmp ? sq_path_join(tmp, "train_log.jsonl") : NULL;
    b->s->total = opt_int(b->s, "max-steps");
    free(tmp);
}

static void jsonl_out(bld *b, sq_run_cmd *cmd_unused, char *path) {
    (void)cmd_unused;
    arg2(b, "--out", path);
    b->s->progress_file = sq_strdup(path);
    output(b, path, 0);
}

static void decontam_sets(bld *b);

static void build_stage(sq_run_plan *p, bld *b, const char *prev) {
    sq_run_stage *s = b->s;
    const char *n = s->name;
    /* the stages that start from the solver cannot do without one */
    if ((!strcmp(n, "qft") || !strcmp(n, "scorer") || !strcmp(n, "rm") || !strcmp(n, "difficulty_label") ||
         !strcmp(n, "rm_label") || (!strcmp(n, "qpo") && !enabled(p, "qft"))) &&
        !*cfg(b, "models.solver"))
        input_k(b, "", "models.solver");
    const char *qft_base = enabled(p, "qft") ? "@qft" : cfg(b, "models.solver");
    const char *train = cfg(b, "data.train");
    if (!strncmp(n, "world_", 6)) {
        const char *key = !strcmp(n, "world_train") ? "data.train" : !strcmp(n, "world_test") ? "data.test" : "data.corpus";
        new_cmd(b, "world");
        jsonl_out(b, NULL, expand(cfg(b, key), b->run_dir));
        s->total = opt_int(s, "n");
    } else if (!strcmp(n, "tokenizer")) {
        new_cmd(b, "tokenizer-train");
        char *in = expand(cfg(b, "data.corpus"), b->run_dir);
        arg2(b, "--in", in);
        input_k(b, in, "data.corpus");
        free(in);
        char *tok = run_file(b, "tokenizer", ".json");
        arg2(b, "--out", tok ? tok : "");
        output(b, tok, 0);
    } else if (!strcmp(n, "solver")) {
        train_stage(b, "sft", "", NULL, train, "data.train");
    } else if (!strcmp(n, "qft")) {
        const char *q = cfg(b, "data.qft");
        train_stage(b, "qft", cfg(b, "models.solver"), "models.solver", *q ? q : train, *q ? "data.qft" : "data.train");
    } else if (!strcmp(n, "qgen_raw")) {
        new_cmd(b, "qgen");
        model_arg(b, "--model", qft_base, enabled(p, "qft") ? NULL : "models.solver");
        jsonl_out(b, NULL, run_file(b, n, ".jsonl"));
        s->total = opt_int(s, "n-questions");
    } else if (!strcmp(n, "optimize")) {
        new_cmd(b, "optimize");
        model_arg(b, "--model", cfg(b, "models.optimizer"), "models.optimizer");
        /* the pairs' prompt is the user-turn prefix of the generator QPO trains */
        model_arg(b, "--generator", qft_base, enabled(p, "qft") ? NULL : "models.solver");
        char *in = run_file(b, "qgen_raw", ".jsonl");
        arg2(b, "--in", in);
        input(b, in);
        s->total_from = in;
        jsonl_out(b, NULL, run_file(b, n, ".jsonl"));
    } else if (!strcmp(n, "qpo")) {
        char *data = run_file(b, "optimize", ".jsonl");
        train_stage(b, "dpo", qft_base, enabled(p, "qft") ? NULL : "models.solver", data ? data : "", NULL);
        free(data);
    } else if (!strcmp(n, "qgen")) {
        const cJSON *gens = sq_run_config_get(b->c, "models.question_generators");
        int ng = cJSON_GetArraySize(gens), i = 0;
        char *merged = run_file(b, n, ".jsonl");
        if (ng <= 1) {
            new_cmd(b, "qgen");
            model_arg(b, "--model", ng ? gens->child->valuestring : "", "models.question_generators");
            jsonl_out(b, NULL, merged);
            s->total = opt_int(s, "n-questions");
        } else {
            /* Mixed generators: one pool each, ids from i * n-questions on so they stay
             * disjoint, then one merged file. */
            char *parts[SQ_RUN_MAX_CMDS];
            int64_t per = opt_int(s, "n-questions");
            for (const cJSON *g = gens->child; g && i < SQ_RUN_MAX_CMDS - 1; g = g->next, i++) {
                char idx[16], start[32];
                snprintf(idx, sizeof idx, ".g%d.jsonl", i);
                snprintf(start, sizeof start, "%lld", (long long)(per > 0 ? per * i : 0));
                new_cmd(b, "qgen");
                model_arg(b, "--model", g->valuestring, "models.question_generators");
                parts[i] = run_file(b, n, idx);
                arg2(b, "--out", parts[i] ? parts[i] : "");
                arg2(b, "--start", start);
                options(b);
                common(b);
            }
            new_cmd(b, "jsonl merge");
            for (int k = 0; k < i; k++) {
                arg2(b, "--in", parts[k] ? parts[k] : "");
                output(b, parts[k], 0);
            }
            jsonl_out(b, NULL, merged);
            s->total = opt_int(s, "n-questions") * i;
            return; /* options and common flags are already on each qgen */
        }
    } else if (!strcmp(n, "difficulty_label") || !strcmp(n, "rm_respond")) {
        new_cmd(b, n[0] == 'd' ? "difficulty label" : "respond");
        model_arg(b, "--model", cfg(b, n[0] == 'd' ? "models.solver" : "models.responder"), n[0] == 'd' ? "models.solver" : "models.responder");
        char *in = expand(cfg(b, n[0] == 'd' ? "data.difficulty" : "data.reward"), b->run_dir);
        arg2(b, "--in", in);
        input_k(b, in, n[0] == 'd' ? "data.difficulty" : "data.reward");
        s->total_from = in;
        jsonl_out(b, NULL, run_file(b, n, ".jsonl"));
    } else if (!strcmp(n, "scorer")) {
        char *data = run_file(b, "difficulty_label", ".jsonl");
        train_stage(b, "regress", cfg(b, "models.solver"), "models.solver", data ? data : "", NULL);
        free(data);
    } else if (!strcmp(n, "rm_label")) {
        /* reward --orm-data: every response graded against the gold answer (1/0), tokenised
         * for the folder the reward model is trained from. */
        new_cmd(b, "reward");
        char *in = run_file(b, "rm_respond", ".jsonl");
        arg2(b, "--in", in);
        input(b, in);
        s->total_from = in;
        model_arg(b, "--tokenizer-from", cfg(b, "models.solver"), "models.solver");
        char *out = run_file(b, n, ".jsonl");
        arg2(b, "--orm-data", out ? out : "");
        s->progress_file = out ? sq_strdup(out) : NULL;
        output(b, out, 0);
    } else if (!strcmp(n, "rm")) {
        char *data = run_file(b, "rm_label", ".jsonl");
        train_stage(b, "regress", cfg(b, "models.solver"), "models.solver", data ? data : "", NULL);
        free(data);
    } else if (!strcmp(n, "difficulty_judge")) {
        new_cmd(b, "difficulty judge");
        model_arg(b, "--model", cfg(b, "models.judge"), "models.judge");
        arg2(b, "--in", prev);
        input(b, prev);
        s->total_from = sq_strdup(prev);
        jsonl_out(b, NULL, run_file(b, n, ".jsonl"));
    } else if (!strcmp(n, "student")) {
        char *data = run_file(b, "export", ".jsonl");
        train_stage(b, "sft", cfg(b, "models.student"), "models.student", data ? data : "", NULL);
        free(data);
    } else if (!strcmp(n, "eval") || !strcmp(n, "eval_base")) {
        /* eval_base: the student's starting model, before it has seen the dataset */
        new_cmd(b, "eval");
        if (n[4]) model_arg(b, "--model", cfg(b, "models.student"), "models.student");
        else model_arg(b, "--model", "@student", NULL);
        char *out = run_file(b, n, "");
        char *tmp = out ? fmt("%s.tmp%s", out, NULL) : NULL;
        if (tmp) arg2(b, "--out", tmp);
        free(tmp);
        output(b, out, 1);
        if (!n[4] && enabled(p, "student") && enabled(p, "export")) {
            /* the student learnt from the exported set: eval checks it for decontaminate's
             * marker (which the chain's stages carry to export.jsonl), warns without one and
             * records the verdict in results.json */
            char *data = run_file(b, "export", ".jsonl");
            if (data) arg2(b, "--train-data", data);
            input(b, data);
            free(data);
        }
    } else { /* the chain stages: COMMAND [--model M] --in PREV --out NAME.jsonl */
        static const struct {
            const char *name, *cmd, *model;
        } chain[] = {
            {"filter_lang", "filter lang", NULL},
            {"filter_solvable", "filter solvable", "models.judge"},
            {"dedup", "dedup", NULL},
            {"decontaminate", "decontaminate", NULL},
            {"difficulty_score", "difficulty score", "models.difficulty_scorer"},
            {"difficulty_sample", "difficulty sample", NULL},
            {"respond", "respond", "models.responder"},
            {"reward", "reward", "models.reward_model"},
            {"export", "export", NULL},
        };
        for (size_t i = 0; i < sizeof chain / sizeof chain[0]; i++) {
            if (strcmp(chain[i].name, n)) continue;
            new_cmd(b, chain[i].cmd);
            if (chain[i].model) model_arg(b, "--model", cfg(b, chain[i].model), chain[i].model);
            arg2(b, "--in", prev);
            input(b, prev);
            s->total_from = sq_strdup(prev);
            jsonl_out(b, NULL, run_file(b, n, ".jsonl"));
            if (!strcmp(n, "decontaminate")) decontam_sets(b);
        }
    }
    options(b);
    common(b);
}

/* decontaminate checks against what eval measures: eval's benchmark list and data folder,
 * unless the stage's own options name them. */
static void decontam_sets(bld *b) {
    const cJSON *mine = b->s->options;
    const cJSON *eo = sq_run_config_get(b->c, "stages.eval.options");
    const cJSON *bench = cJSON_GetObjectItemCaseSensitive(eo, "benchmarks");
    const cJSON *dir = cJSON_GetObjectItemCaseSensitive(eo, "data-dir");
    if (!cJSON_GetObjectItemCaseSensitive(mine, "benchmarks") && cJSON_IsString(bench)) {
        char *v = expand(bench->valuestring, b->run_dir);
        if (v) arg2(b, "--benchmarks", v);
        free(v);
    }
    if (!cJSON_GetObjectItemCaseSensitive(mine, "bench-dir") && cJSON_IsString(dir)) {
        char *v = expand(dir->valuestring, b->run_dir);
        if (v) arg2(b, "--bench-dir", v);
        free(v);
    }
}

/* shards: N turns the stage's one command into N copies with `--shard I/N`, each writing
 * NAME.shardI.jsonl (and its own dropped and failed files) with its share of the threads; the
 * runner starts them together and merges their files in input order (run_shards.c). Only a
 * stage that reads one JSONL and settles each record on its own can be split: dedup compares
 * records with each other, and decontaminate's marker describes one whole output. */
static int make_shards(sq_run_plan *p, bld *b, const sq_run_config *c, sq_err *e) {
    sq_run_stage *s = b->s;
    char key[128], w[600];
    snprintf(key, sizeof key, "stages.%s.shards", s->name);
    const cJSON *v = sq_run_config_get(c, key);
    int n = cJSON_IsNumber(v) ? (int)v->valuedouble : 1;
    if (!cJSON_IsNumber(v) || v->valuedouble != n || n < 1 || n > 64) {
        sq_run_config_where(c, key, w, sizeof w);
        return sq_fail(e, SQ_EINVAL, "%s: shards must be a whole number 1..64", w);
    }
    s->shards = 1;
    if (n == 1 || !s->enabled) return 0;
    sq_run_cmd *c0 = &s->cmds[0];
    int in = -1, out = -1;
    for (int a = 1; a + 1 < c0->argc; a++) {
        if (!strcmp(c0->argv[a], "--in")) in = a + 1;
        if (!strcmp(c0->argv[a], "--out")) out = a + 1;
    }
    const char *why = NULL;
    if (!strcmp(s->name, "dedup") || !strcmp(s->name, "decontaminate"))
        why = "compares records across the whole input";
    else if (s->ncmds != 1 || in < 0 || out < 0 || s->noutputs != 1 || s->out_is_dir[0])
        why = "does not read one JSONL into one JSONL";
    else if (cJSON_GetObjectItemCaseSensitive(s->options, "shard"))
        why = "already has a shard option";
    else if (n > SQ_RUN_MAX_CMDS)
        why = "has more shards than the runner starts at once (9)";
    if (why) {
        sq_run_config_where(c, key, w, sizeof w);
        return sq_fail(e, SQ_EINVAL, "%s: stage %s cannot be sharded: it %s", w, s->name, why);
    }
    s->shards = n;
    s->shard_input = sq_strdup(c0->argv[in]);
    char *merged = s->outputs[0];
    s->noutputs = 0;
    long cores = p->threads > 0 ? p->threads : sysconf(_SC_NPROCESSORS_ONLN);
    char per[32];
    snprintf(per, sizeof per, "%ld", cores / n > 0 ? cores / n : 1);
    for (int k = 1; k < n; k++) { /* copies of the first command */
        sq_run_cmd *ck = &s->cmds[k];
        for (int a = 0; a < c0->argc; a++) ck->argv[a] = sq_strdup(c0->argv[a]);
        ck->argc = c0->argc;
        ck->argv[ck->argc] = NULL;
    }
    s->ncmds = n;
    for (int k = 0; k < n; k++) {
        sq_run_cmd *ck = &s->cmds[k];
        char suffix[32], shard[32];
        snprintf(suffix, sizeof suffix, ".shard%d.jsonl", k);
        snprintf(shard, sizeof shard, "%d/%d", k, n);
        size_t ml = strlen(merged) > 6 ? strlen(merged) - 6 : strlen(merged); /* less ".jsonl" */
        char *part = malloc(ml + strlen(suffix) + 1);
        if (part) snprintf(part, ml + strlen(suffix) + 1, "%.*s%s", (int)ml, merged, suffix);
        free(ck->argv[out]);
        ck->argv[out] = part ? sq_strdup(part) : sq_strdup("");
        int th = -1;
        for (int a = 1; a + 1 < ck->argc; a++)
            if (!strcmp(ck->argv[a], "--threads")) th = a + 1;
        b->cmd = ck;
        if (th > 0) {
            free(ck->argv[th]);
            ck->argv[th] = sq_strdup(per);
        } else {
            arg2(b, "--threads", per);
        }
        arg2(b, "--shard", shard);
        output(b, part, 0);
    }
    output(b, merged, 0); /* last: what the next stage reads */
    free(s->progress_file);
    s->progress_file = NULL;
    return 0;
}

int sq_run_plan_build(sq_run_plan *p, const sq_run_config *c, sq_err *e) {
    memset(p, 0, sizeof *p);
    p->run_dir = sq_strdup(sq_run_config_str(c, "run_dir"));
    p->stages = calloc(NDEFS, sizeof *p->stages);
    p->final_stage = -1;
    const cJSON *th = sq_run_config_get(c, "threads");
    p->threads = th ? th->valueint : 0;
    if (!p->run_dir || !p->stages) {
        sq_run_plan_free(p);
        return sq_fail(e, SQ_ENOMEM, "out of memory");
    }
    p->nstages = NDEFS;
    for (int i = 0; i < NDEFS; i++) {
        sq_run_stage *s = &p->stages[i];
        char key[128];
        s->name = defs[i].name;
        s->type = defs[i].type;
        s->total = -1;
        snprintf(key, sizeof key, "stages.%s.enabled", s->name);
        s->enabled = cJSON_IsTrue(sq_run_config_get(c, key));
        snprintf(key, sizeof key, "stages.%s.options", s->name);
        s->options = cJSON_Duplicate(sq_run_config_get(c, key), 1);
    }
    bld b = {.c = c, .run_dir = p->run_dir};
    char *prev = NULL;
    for (int i = 0; i < NDEFS; i++) {
        sq_run_stage *s = &p->stages[i];
        b.s = s;
        if (defs[i].kind == K_CHAIN && s->enabled && strcmp(s->name, "qgen") && !prev) {
            sq_run_plan_free(p);
            free(prev);
            return sq_fail(e, SQ_EINVAL, "stages.%s is enabled but no stage before it makes questions (enable qgen)",
                           s->name);
        }
        build_stage(p, &b, prev ? prev : "");
        if (!b.oom) {
            int rc = make_shards(p, &b, c, e);
            if (rc) {
                sq_run_plan_free(p);
                free(prev);
                return rc;
            }
        }
        if (defs[i].kind == K_CHAIN && s->enabled && s->noutputs) {
            free(prev);
            prev = sq_strdup(s->outputs[s->noutputs - 1]);
            p->final_stage = i;
        }
    }
    free(prev);
    if (b.oom) {
        sq_run_plan_free(p);
        return sq_fail(e, SQ_ENOMEM, "out of memory building the plan");
    }
    return 0;
}

void sq_run_plan_free(sq_run_plan *p) {
    for (int i = 0; p->stages && i < p->nstages; i++) {
        sq_run_stage *s = &p->stages[i];
        for (int k = 0; k < s->ncmds; k++)
            for (int a = 0; a < s->cmds[k].argc; a++) free(s->cmds[k].argv[a]);
        for (int k = 0; k < s->noutputs; k++) free(s->outputs[k]);
        for (int k = 0; k < s->ninputs; k++) free(s->inputs[k]);
        free(s->progress_file);
        free(s->total_from);
        free(s->shard_input);
        cJSON_Delete(s->options);
    }
    free(p->stages);
    free(p->run_dir);
    memset(p, 0, sizeof *p);
}

int sq_run_plan_find(const sq_run_plan *p, const char *stage) {
    for (int i = 0; i < p->nstages; i++)
        if (!strcmp(p->stages[i].name, stage)) return i;
    return -1;
}
