/* The eval command's library side (eval.h): benchmark files -> questions -> one greedy answer
 * each through the stage framework -> graded -> the table. */
#include "scalequest/eval.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/cot.h"
#include "scalequest/decontam.h"
#include "scalequest/jsonl.h"
#include "scalequest/stage.h"

static const char *const default_stops[] = {"<|im_end|>", "<|endoftext|>", "</s>", "<|eot_id|>"};

void sq_eval_opts_default(sq_eval_opts *o) {
    memset(o, 0, sizeof *o);
    o->benchmarks = "gsm8k,math500,math,college_math,olympiadbench";
    sq_gen_params_default(&o->params);
    o->params.temperature = 0;
    o->params.top_p = 1;
    o->params.max_tokens = 2048;
    o->params.n = 1;
    o->params.stop = default_stops;
    o->params.n_stop = (int)SQ_ARRAY_LEN(default_stops);
    o->chunk = 256;
}

typedef struct known {
    const char *name, *file, *q, *gold;
    sq_gold_format fmt;
    int list;
} known;

static const known knowns[] = {
    {"gsm8k", "gsm8k_test.jsonl", "question", "answer", SQ_GOLD_GSM8K, 0},
    {"math500", "math500_test.jsonl", "problem", "answer", SQ_GOLD_PLAIN, 0},
    {"math", "math_test.jsonl", "problem", "solution", SQ_GOLD_MATH, 0},
    {"college_math", "college_math_test.jsonl", "question", "answer", SQ_GOLD_DOLLARS, 0},
    {"olympiadbench", "olympiadbench_OE_TO_maths_en_COMP.jsonl", "question", "final_answer", SQ_GOLD_DOLLARS,
     1},
    {"minerva_math", "minerva_math_test.jsonl", "problem", "solution", SQ_GOLD_MATH, 0},
};

int sq_eval_parse_benchmarks(const char *list, const char *data_dir, sq_eval_bench *b, int *n, sq_err *e) {
    *n = 0;
    char dd[1024];
    if (data_dir)
        snprintf(dd, sizeof dd, "%s", data_dir);
    else if (getenv("SQ_ASSETS"))
        snprintf(dd, sizeof dd, "%s/data", getenv("SQ_ASSETS"));
    else
        snprintf(dd, sizeof dd, "../shared/assets/data");
    const char *s = list;
    while (s && *s) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        if (len == 0 || len >= 1000)
            return sq_fail(e, SQ_EINVAL, "benchmarks: an empty or too long name in \"%s\"", list);
        if (*n >= SQ_EVAL_MAX_BENCH)
            return sq_fail(e, SQ_EINVAL, "benchmarks: at most %d", SQ_EVAL_MAX_BENCH);
        sq_eval_bench *x = &b[*n];
        memset(x, 0, sizeof *x);
        char tok[1024];
        memcpy(tok, s, len), tok[len] = 0;
        char *eq = strchr(tok, '=');
        if (eq) {
            *eq = 0;
            if (!*tok || strlen(tok) >= sizeof x->name || strpbrk(tok, "/ ."))
                return sq_fail(e, SQ_EINVAL, "benchmarks: \"%s\" is no name for a benchmark", tok);
            snprintf(x->name, sizeof x->name, "%s", tok);
            snprintf(x->path, sizeof x->path, "%s", eq + 1);
            x->gold_fmt = SQ_GOLD_AUTO;
        } else {
            const known *k = NULL;
            for (size_t i = 0; i < SQ_ARRAY_LEN(knowns); i++)
                if (!strcmp(knowns[i].name, tok)) k = &knowns[i];
            if (!k)
                return sq_fail(
                    e, SQ_EINVAL,
                    "benchmarks: unknown \"%s\" (gsm8k, math500, math, college_math, olympiadbench, "
                    "minerva_math, or NAME=PATH)",
                    tok);
            snprintf(x->name, sizeof x->name, "%s", k->name);
            snprintf(x->path, sizeof x->path, "%s/%s", dd, k->file);
            x->q_field = k->q, x->gold_field = k->gold, x->gold_fmt = k->fmt, x->list_gold = k->list;
        }
        for (int i = 0; i < *n; i++)
            if (!strcmp(b[i].name, x->name))
                return sq_fail(e, SQ_EINVAL, "benchmarks: \"%s\" twice", x->name);
        (*n)++;
        s = end ? end + 1 : NULL;
    }
    if (*n == 0) return sq_fail(e, SQ_EINVAL, "benchmarks: none given");
    return 0;
}

int sq_eval_grade(const char *gold, const char *response, char **extracted) {
    char *ans = sq_grade_extract(response ? response : "", NULL, NULL);
    int ok = ans && gold && sq_grade_equal(gold, ans, NULL) == 1;
    if (extracted)
        *extracted = ans;
    else
        free(ans);
    return ok;
}

/* The gold answer of one data record (malloc'd), or NULL when it has none. */
static char *gold_of(const sq_eval_bench *b, const cJSON *rec) {
    static const char *fields[] = {"answer", "final_answer", "solution"};
    const cJSON *g = NULL;
    sq_gold_format fmt = b->gold_fmt;
    if (b->gold_field) g = cJSON_GetObjectItemCaseSensitive(rec, b->gold_field);
    for (int i = 0; !b->gold_field && i < 3 && !g; i++) {
        g = cJSON_GetObjectItemCaseSensitive(rec, fields[i]);
        if (g && i == 2) fmt = SQ_GOLD_MATH;
    }
    if (cJSON_IsNumber(g)) {
        char num[64];
        snprintf(num, sizeof num, "%.17g", g->valuedouble);
        return sq_strdup(num);
    }
    if (cJSON_IsString(g)) return sq_grade_gold(g->valuestring, fmt);
    if (!cJSON_IsArray(g) || cJSON_GetArraySize(g) == 0) return NULL;
    sq_buf out = {0};
    const cJSON *it;
    int k = 0;
    cJSON_ArrayForEach(it, g) {
        char *one =
            cJSON_IsString(it) ? sq_grade_gold(it->valuestring, b->list_gold ? SQ_GOLD_DOLLARS : fmt) : NULL;
        if (!one) {
            sq_buf_free(&out);
            return NULL;
        }
        sq_buf_printf(&out, k++ ? ", %s" : "%s", one);
        free(one);
    }
    return out.data;
}

static const char *question_of(const sq_eval_bench *b, const cJSON *rec) {
    if (b->q_field) return sq_rec_str(rec, b->q_field);
    const char *fields[] = {"query", "question", "problem"};
    for (int i = 0; i < 3; i++)
        if (sq_rec_str(rec, fields[i])) return sq_rec_str(rec, fields[i]);
    return NULL;
}

/* NAME.input.jsonl from the data file; *keys gets its ids. */
static int prepare(const sq_eval_bench *b, const sq_eval_opts *o, const char *items, sq_keyset *keys,
                   int64_t *no_gold, sq_err *e) {
    sq_jsonl_reader *r = NULL;
    sq_jsonl_writer *w = NULL;
    int rc = sq_jsonl_open(&r, b->path, 0, e);
    if (rc) return sq_err_wrap(e, "eval: benchmark %s", b->name), rc;
    if ((rc = sq_jsonl_writer_open(&w, items, SQ_JSONL_CREATE, e))) {
        sq_jsonl_close(r);
        return rc;
    }
    cJSON *rec = NULL;
    int64_t i = 0;
    while ((o->limit <= 0 || i < o->limit) && (rc = sq_jsonl_next(r, &rec, e)) == 1) {
        rc = 0;
        const char *q = question_of(b, rec);
        char *gold = gold_of(b, rec);
        char id[96];
        snprintf(id, sizeof id, "%s-%05lld", b->name, (long long)i);
        if (!q)
            rc = sq_fail(e, SQ_EPARSE, "%s:%lld: no question field", b->path,
                         (long long)sq_jsonl_line_number(r));
        else if (!gold)
            (*no_gold)++;
        else {
            cJSON *it = cJSON_CreateObject();
            cJSON_AddStringToObject(it, "id", id);
            cJSON_AddStringToObject(it, "query", q);
            cJSON_AddStringToObject(it, "gold", gold);
            rc = sq_jsonl_write(w, it, e);
            cJSON_Delete(it);
            if (!rc && sq_keyset_add(keys, id, strlen(id)) < 0) rc = sq_fail(e, SQ_ENOMEM, "out of memory");
        }
        free(gold);
        cJSON_Delete(rec);
        i++;
    }
    if (rc > 0) rc = 0;
    sq_jsonl_close(r);
    if (rc)
        sq_jsonl_writer_abort(w);
    else
        rc = sq_jsonl_writer_close(w, e);
    return rc;
}

typedef struct job {
    const sq_eval_opts *o;
    sq_cot_prompt prompt;
    double grade_s;
} job;

static int build(void *user, sq_stage *st, int64_t slot, cJSON *rec, sq_gen_request *q, sq_arena *a,
                 sq_err *e) {
    job *j = user;
    q->id = sq_rec_id(rec);
    q->params = j->o->params;
    q->params.seed = sq_stage_seed(j->o->params.seed, q->id);
    return sq_cot_prompt_fill(&j->prompt, sq_rec_str(rec, "query"), q, a, e);
}

static void set_verdict(job *j, cJSON *rec, const char *response) {
    double t0 = sq_now();
    char *ext = NULL;
    int ok = sq_eval_grade(sq_rec_str(rec, "gold"), response, &ext);
    j->grade_s += sq_now() - t0;
    const char *fields[] = {"extracted", "correct"};
    for (int f = 0; f < 2; f++)
        cJSON_DeleteItemFromObjectCaseSensitive(rec, fields[f]);
    if (ext)
        cJSON_AddStringToObject(rec, "extracted", ext);
    else
        cJSON_AddNullToObject(rec, "extracted");
    cJSON_AddBoolToObject(rec, "correct", ok);
    free(ext);
}

static int finish(void *user, sq_stage *st, int64_t slot, cJSON *rec, const sq_gen_result *r, sq_err *e) {
    job *j = user;
    const sq_gen_choice *c = r->n_choices > 0 ? &r->choices[0] : NULL;
    const char *text = c && c->text ? c->text : "";
    cJSON_DeleteItemFromObjectCaseSensitive(rec, "response");
    cJSON_DeleteItemFromObjectCaseSensitive(rec, "finish_reason");
    cJSON_AddStringToObject(rec, "response", text);
    cJSON_AddStringToObject(rec, "finish_reason", c && c->finish_reason ? c->finish_reason : "");
    set_verdict(j, rec, text);
    return sq_stage_keep(st, slot, rec, e);
}

/* Count the verdicts in NAME.jsonl of the ids asked this time. */
static int tally(const char *path, const sq_keyset *keys, sq_eval_result *res, sq_err *e) {
    res->n = res->correct = 0;
    if (!sq_file_exists(path)) return 0;
    sq_jsonl_reader *r;
    int rc = sq_jsonl_open(&r, path, 1, e);
    if (rc) return rc;
    cJSON *rec;
    while ((rc = sq_jsonl_next(r, &rec, e)) == 1) {
        const char *id = sq_rec_id(rec);
        int ok = 0;
        if (id && sq_keyset_has(keys, id, strlen(id)) && sq_rec_bool(rec, "correct", &ok) == 0) {
            res->n++;
            res->correct += ok;
        }
        cJSON_Delete(rec);
    }
    sq_jsonl_close(r);
    return rc < 0 ? rc : 0;
}

/* Grade NAME.jsonl's responses again against the items' gold answers; rewritten atomically. */
static int regrade(job *j, const char *items, const char *path, sq_err *e) {
    sq_jsonl_reader *r = NULL;
    int rc = sq_jsonl_open(&r, items, 0, e);
    if (rc) return rc;
    cJSON *golds = cJSON_CreateObject(), *rec;
    while ((rc = sq_jsonl_next(r, &rec, e)) == 1) {
        cJSON_AddStringToObject(golds, sq_rec_id(rec), sq_rec_str(rec, "gold"));
        cJSON_Delete(rec);
    }
    sq_jsonl_close(r);
    r = NULL;
    sq_jsonl_writer *w = NULL;
    if (rc >= 0) rc = sq_jsonl_open(&r, path, 0, e);
    if (rc >= 0) rc = sq_jsonl_writer_open(&w, path, SQ_JSONL_CREATE, e);
    while (rc >= 0 && (rc = sq_jsonl_next(r, &rec, e)) == 1) {
        const char *id = sq_rec_id(rec), *resp = sq_rec_str(rec, "response");
        const cJSON *g = id ? cJSON_GetObjectItemCaseSensitive(golds, id) : NULL;
        long long ln = (long long)sq_jsonl_line_number(r);
        if (!id || !resp)
            rc = sq_fail(e, SQ_EPARSE, "%s:%lld: needs string \"id\" and \"response\"", path, ln);
        else if (!cJSON_IsString(g))
            rc = sq_fail(e, SQ_EPARSE, "%s:%lld: id \"%s\" is not a question of %s", path, ln, id, items);
        else {
            cJSON_DeleteItemFromObjectCaseSensitive(rec, "gold");
            cJSON_AddStringToObject(rec, "gold", g->valuestring);
            if (!sq_rec_str(rec, "query")) cJSON_AddStringToObject(rec, "query", "");
            set_verdict(j, rec, resp);
            rc = sq_jsonl_write(w, rec, e);
        }
        cJSON_Delete(rec);
    }
    if (rc > 0) rc = 0;
    sq_jsonl_close(r);
    if (w) {
        if (rc)
            sq_jsonl_writer_abort(w);
        else
            rc = sq_jsonl_writer_close(w, e);
    }
    cJSON_Delete(golds);
    return rc;
}

static int run_one(sq_backend *b, job *j, const sq_eval_bench *bench, sq_eval_result *res, sq_err *e) {
    const sq_eval_opts *o = j->o;
    char items[1200], out[1200], failed[1200];
    snprintf(items, sizeof items, "%s/%s.input.jsonl", o->out_dir, bench->name);
    snprintf(out, sizeof out, "%s/%s.jsonl", o->out_dir, bench->name);
    snprintf(failed, sizeof failed, "%s/%s.failed.jsonl", o->out_dir, bench->name);
    sq_keyset *keys = sq_keyset_new();
    if (!keys) return sq_fail(e, SQ_ENOMEM, "out of memory");
    int64_t no_gold = 0;
    int rc = prepare(bench, o, items, keys, &no_gold, e);
    if (!rc && no_gold && !sq_progress_is_quiet())
        fprintf(stderr, "eval: %s: %lld questions without a gold answer left out\n", bench->name,
                (long long)no_gold);
    memset(res, 0, sizeof *res);
    snprintf(res->name, sizeof res->name, "%s", bench->name);
    if (!rc && o->regrade) {
        rc = sq_file_exists(out) ? regrade(j, items, out, e)
                                 : sq_fail(e, SQ_ENOTFOUND, "eval: %s: nothing to regrade", out);
    } else if (!rc) {
        sq_stage_opts so;
        sq_stage_opts_default(&so);
        char name[96];
        snprintf(name, sizeof name, "eval %s", bench->name);
        so.name = name;
        so.in = items;
        so.out = out;
        so.dropped = "";
        so.failed = failed;
        sq_stage *st = NULL;
        if (!(rc = sq_stage_open(&st, &so, e))) {
            sq_stage_gen g = {build, finish, j, o->chunk > 0 ? o->chunk : 256};
            rc = sq_stage_run_generate(st, b, &g, e);
            if (rc)
                sq_stage_abort(st);
            else {
                sq_stage_counts c;
                rc = sq_stage_close(st, &c, e);
                res->failed = c.failed;
                if (rc == SQ_EIO)
                    rc = 0; /* failed requests: counted, in the failed file, retried by a rerun */
            }
        }
    }
    if (!rc) rc = tally(out, keys, res, e);
    res->accuracy = res->n ? 100.0 * (double)res->correct / (double)res->n : 0;
    sq_keyset_free(keys);
    return rc;
}

static void print_table(const sq_eval_opts *o, const sq_eval_result *r, int n, double avg, cJSON *json) {
    printf("| model |");
    for (int i = 0; i < n; i++)
        printf(" %s |", r[i].name);
    printf(" avg |\n|---|");
    for (int i = 0; i <= n; i++)
        printf("---:|");
    printf("\n| %s |", o->model_name ? o->model_name : "model");
    for (int i = 0; i < n; i++)
        printf(" %.1f |", r[i].accuracy);
    printf(" %.1f |\n| (n) |", avg);
    for (int i = 0; i < n; i++)
        printf(" %lld |", (long long)r[i].n);
    printf(" |\n");
    char *s = cJSON_PrintUnformatted(json);
    if (s) printf("%s\n", s);
    free(s);
}

/* Why eval looks at the training data at all: a model trained on benchmark test questions
 * scores what it memorised. Each training file is checked for decontaminate's marker; the
 * verdicts go into results.json, and a file without one is named on stderr before the run and
 * again under the table, where it is seen. */
static int check_training_data(const sq_eval_opts *o, cJSON **out, int *n_bad, sq_err *e) {
    *out = NULL, *n_bad = 0;
    if (!o->n_train_data) return 0;
    cJSON *arr = cJSON_CreateArray();
    if (!arr) return sq_fail(e, SQ_ENOMEM, "out of memory");
    for (int i = 0; i < o->n_train_data; i++) {
        const char *f = o->train_data[i];
        char why[1400];
        int ok = sq_decontam_check(f, why, sizeof why, e);
        if (ok < 0) {
            cJSON_Delete(arr);
            return sq_err_wrap(e, "eval: training data"), ok;
        }
        cJSON *x = cJSON_CreateObject();
        if (!x || !cJSON_AddStringToObject(x, "file", f) || !cJSON_AddBoolToObject(x, "decontaminated", ok) ||
            (!ok && !cJSON_AddStringToObject(x, "why", why))) {
            cJSON_Delete(x), cJSON_Delete(arr);
            return sq_fail(e, SQ_ENOMEM, "out of memory");
        }
        cJSON_AddItemToArray(arr, x);
        if (!ok) {
            (*n_bad)++;
            sq_warn("eval: training set %s was not decontaminated against the benchmarks (%s): its scores may count "
                    "test questions the model was trained on; run `scalequest decontaminate --in %s --out CLEAN.jsonl` "
                    "and train on CLEAN.jsonl",
                    f, why, f);
        }
    }
    *out = arr;
    return 0;
}

static void warn_again(const cJSON *td) {
    const cJSON *x;
    cJSON_ArrayForEach(x, td) if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(x, "decontaminated")))
        sq_warn("eval: the scores above are from a model trained on %s, which was not decontaminated (%s)",
                sq_rec_str(x, "file"), sq_rec_str(x, "why"));
}

int sq_eval_run(sq_backend *b, const sq_eval_opts *o, sq_eval_result *results, int *n_results, sq_err *e) {
    if (!o->out_dir) return sq_fail(e, SQ_EINVAL, "eval: an output folder is needed");
    if (!b && !o->regrade) return sq_fail(e, SQ_EINVAL, "eval: a model is needed");
    sq_eval_bench benches[SQ_EVAL_MAX_BENCH];
    int nb = 0, rc = sq_eval_parse_benchmarks(o->benchmarks, o->data_dir, benches, &nb, e);
    if (rc) return rc;
    cJSON *train = NULL;
    int n_unclean = 0;
    if ((rc = check_training_data(o, &train, &n_unclean, e))) return rc;
    if ((rc = sq_mkdirs(o->out_dir, e))) return cJSON_Delete(train), rc;
    job j = {.o = o};
    if ((rc = sq_cot_prompt_open(&j.prompt, o->chat_template, o->instruction, e))) return cJSON_Delete(train), rc;
    double t0 = sq_now();
    for (int i = 0; i < nb && !rc; i++)
        rc = run_one(b, &j, &benches[i], &results[i], e);
    sq_cot_prompt_close(&j.prompt);
    if (rc) return cJSON_Delete(train), rc;
    double total = sq_now() - t0, sum = 0;
    *n_results = nb;
    cJSON *json = cJSON_CreateObject(), *bj = NULL;
    cJSON_AddStringToObject(json, "model", o->model_name ? o->model_name : "");
    bj = cJSON_AddObjectToObject(json, "benchmarks");
    int64_t failed = 0;
    for (int i = 0; i < nb; i++) {
        cJSON *x = cJSON_AddObjectToObject(bj, results[i].name);
        cJSON_AddNumberToObject(x, "n", (double)results[i].n);
        cJSON_AddNumberToObject(x, "correct", (double)results[i].correct);
        cJSON_AddNumberToObject(x, "accuracy", results[i].accuracy);
        if (results[i].failed) cJSON_AddNumberToObject(x, "failed", (double)results[i].failed);
        sum += results[i].accuracy;
        failed += results[i].failed;
    }
    double avg = nb ? sum / nb : 0;
    cJSON_AddNumberToObject(json, "average", avg);
    cJSON_AddNumberToObject(json, "grading_seconds", j.grade_s);
    cJSON_AddNumberToObject(json, "run_seconds", total);
    if (train) cJSON_AddItemToObject(json, "training_data", train);
    char *s = cJSON_PrintUnformatted(json);
    char *path = sq_path_join(o->out_dir, "results.json");
    if (!s || !path)
        rc = sq_fail(e, SQ_ENOMEM, "out of memory");
    else {
        sq_buf line = {0};
        sq_buf_printf(&line, "%s\n", s);
        rc = sq_file_write_atomic(path, line.data, line.len, e);
        sq_buf_free(&line);
    }
    free(s);
    free(path);
    if (!rc && !sq_progress_is_quiet()) {
        print_table(o, results, nb, avg, json);
        fprintf(stderr, "eval: grading took %.3f s of %.1f s (%.3f%%)\n", j.grade_s, total,
                total > 0 ? 100.0 * j.grade_s / total : 0.0);
    }
    if (n_unclean) warn_again(train);
    cJSON_Delete(json);
    if (!rc && failed)
        rc = sq_fail(e, SQ_EIO, "eval: %lld requests failed (in NAME.failed.jsonl; a rerun retries them)",
                     (long long)failed);
    return rc;
}
