/* difficulty label (difficulty.h): a question's fail rate from `samples` responses of a
 * solver, each graded against the record's gold answer. One backend request per record
 * (n samples sharing one prefill locally), through the stage framework. */
#include <stdlib.h>
#include <string.h>

#include "scalequest/difficulty.h"
#include "scalequest/jsonl.h"
#include "scalequest/train.h"

void sq_label_opts_default(sq_label_opts *o) {
    memset(o, 0, sizeof *o);
    sq_stage_opts_default(&o->stage);
    o->stage.name = "difficulty label";
    o->field = "query";
    o->gold_format = SQ_GOLD_AUTO;
    o->prompt_template = SQ_LABEL_DEFAULT_PROMPT;
    sq_gen_params_default(&o->params);
    o->params.n = 8;
    o->params.temperature = 1.0f;
    o->params.top_p = 1.0f;
    o->params.max_tokens = 2048;
    sq_grade_opts_init(&o->grade);
}

typedef struct label_job {
    const sq_label_opts *o;
} label_job;

/* The gold field's text (numbers as written), or NULL. */
static const char *gold_text(const cJSON *rec, const char *field, char *num, size_t cap) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, field);
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d == (double)(long long)d) snprintf(num, cap, "%lld", (long long)d);
        else snprintf(num, cap, "%.17g", d);
        return num;
    }
    return NULL;
}

static int build(void *user, sq_stage *st, int64_t slot, cJSON *rec, sq_gen_request *q, sq_arena *a, sq_err *e) {
    const label_job *j = user;
    const sq_label_opts *o = j->o;
    const char *query = sq_rec_str(rec, o->field);
    char num[64], why[96];
    const char *gf = o->gold_field;
    if (!gf) gf = cJSON_GetObjectItemCaseSensitive(rec, "answer") ? "answer" : "solution";
    const char *gold_raw = gold_text(rec, gf, num, sizeof num);
    char *gold = gold_raw ? sq_grade_gold(gold_raw, o->gold_format) : NULL;
    why[0] = 0;
    if (!query) snprintf(why, sizeof why, "no %.40s", o->field);
    else if (!gold_raw) snprintf(why, sizeof why, "no gold answer");
    else if (!gold || !*gold) snprintf(why, sizeof why, "no answer in the gold %.40s", gf);
    if (why[0]) {
        free(gold);
        int rc = sq_stage_drop(st, slot, rec, why, e); /* takes rec, whatever it returns */
        return rc ? rc : 1;
    }
    int rc = sq_rec_set_str(rec, "gold_answer", gold);
    free(gold);
    if (rc) return sq_fail(e, SQ_ENOMEM, "out of memory");
    char *text = sq_text_format_prompt(o->prompt_template, query);
    size_t len = text ? strlen(text) : 0;
    char *copy = text ? sq_arena_alloc(a, len + 1) : NULL;
    if (copy) memcpy(copy, text, len + 1);
    free(text);
    if (!copy) return sq_fail(e, SQ_ENOMEM, "out of memory");
    q->id = sq_rec_id(rec);
    q->params = o->params;
    q->params.seed = sq_stage_seed(o->params.seed, q->id);
    return sq_stage_request_text(q, copy, o->raw_prompt, a, e);
}

static int finish(void *user, sq_stage *st, int64_t slot, cJSON *rec, const sq_gen_result *r, sq_err *e) {
    const label_job *j = user;
    const char *gold = sq_rec_str(rec, "gold_answer");
    int correct = 0;
    cJSON *texts = j->o->keep_responses ? cJSON_CreateArray() : NULL;
    for (int k = 0; k < r->n_choices; k++) {
        const char *t = r->choices[k].text ? r->choices[k].text : "";
        correct += sq_grade_response(gold, t, &j->o->grade, NULL) == 1;
        if (texts) cJSON_AddItemToArray(texts, cJSON_CreateString(t));
    }
    if (r->n_choices == 0) {
        cJSON_Delete(texts);
        return sq_stage_drop(st, slot, rec, "no responses", e);
    }
    int rc = sq_rec_set_num(rec, "fail_rate", (double)(r->n_choices - correct) / r->n_choices);
    if (!rc) rc = sq_rec_set_num(rec, "label_correct", correct);
    if (!rc) rc = sq_rec_set_num(rec, "label_samples", r->n_choices);
    if (texts) {
        if (!rc) rc = sq_rec_set(rec, "responses", texts);
        else cJSON_Delete(texts);
    }
    if (rc) {
        cJSON_Delete(rec);
        return sq_fail(e, SQ_ENOMEM, "out of memory");
    }
    return sq_stage_keep(st, slot, rec, e);
}

int sq_difficulty_label_run(sq_backend *b, const sq_label_opts *o, sq_stage_counts *counts, sq_err *e) {
    if (!o->stage.in) return sq_fail(e, SQ_EINVAL, "difficulty label: no input file given");
    if (o->params.n < 1) return sq_fail(e, SQ_EINVAL, "difficulty label: samples must be at least 1");
    sq_label_opts oo = *o;
    if (!oo.field) oo.field = "query";
    if (!oo.prompt_template) oo.prompt_template = SQ_LABEL_DEFAULT_PROMPT;
    sq_stage_opts so = oo.stage;
    if (!so.name) so.name = "difficulty label";
    label_job j = {&oo};
    sq_stage_gen g = {build, finish, &j, 256};
    return sq_stage_run_all(&so, b, &g, counts, e);
}

int sq_difficulty_score_run(const sq_score_stage_opts *o, sq_err *e) {
    sq_score_stage_opts oo = *o;
    oo.out_field = "difficulty";
    oo.name = "difficulty score";
    return sq_score_stage_run(&oo, e);
}
