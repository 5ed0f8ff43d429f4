/* The respond stage (respond.h): n CoT samples per question in one request, responses without
 * a final answer dropped and counted, each kept one with its extracted answer. */
#include "scalequest/respond.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/jsonl.h"

typedef struct job {
    const sq_respond_opts *o;
    sq_cot_prompt prompt;
    sq_respond_counts c;
} job;

void sq_respond_opts_default(sq_respond_opts *o) {
    memset(o, 0, sizeof *o);
    sq_stage_opts_default(&o->stage);
    o->stage.name = "respond";
    o->field = "query";
    o->chunk = 64;
    sq_gen_params_default(&o->params);
    o->params.n = 5;
    o->params.temperature = 0.7f;
    o->params.top_p = 0.95f;
    o->params.max_tokens = 2048;
}

static int build(void *user, sq_stage *st, int64_t slot, cJSON *rec, sq_gen_request *q, sq_arena *a,
                 sq_err *e) {
    job *j = user;
    const char *text = sq_rec_str(rec, j->o->field);
    if (!text || !*text) {
        char why[96];
        snprintf(why, sizeof why, "no question text in \"%.40s\"", j->o->field);
        int rc = sq_stage_drop(st, slot, rec, why, e);
        return rc ? rc : 1;
    }
    q->id = sq_rec_id(rec);
    q->params = j->o->params;
    q->params.seed = sq_stage_seed(j->o->params.seed, q->id);
    return sq_cot_prompt_fill(&j->prompt, text, q, a, e);
}

static int finish(void *user, sq_stage *st, int64_t slot, cJSON *rec, const sq_gen_result *r, sq_err *e) {
    job *j = user;
    if (r->n_choices < j->o->params.n) {
        char msg[160];
        snprintf(msg, sizeof msg, "request \"%s\": %d choices returned for n=%d", sq_rec_id(rec),
                 r->n_choices, j->o->params.n);
        int rc = sq_stage_fail(st, slot, sq_rec_id(rec), msg, e);
        cJSON_Delete(rec);
        return rc;
    }
    cJSON *texts = cJSON_CreateArray(), *answers = cJSON_CreateArray();
    if (!texts || !answers) {
        cJSON_Delete(texts), cJSON_Delete(answers), cJSON_Delete(rec);
        return sq_fail(e, SQ_ENOMEM, "out of memory");
    }
    int kept = 0, none = 0;
    for (int k = 0; k < r->n_choices; k++) {
        const char *t = r->choices[k].text ? r->choices[k].text : "";
        char *ans = sq_cot_final_answer(t, NULL);
        if (!ans) {
            none++;
            continue;
        }
        cJSON_AddItemToArray(texts, cJSON_CreateString(t));
        cJSON_AddItemToArray(answers, cJSON_CreateString(ans));
        free(ans);
        kept++;
    }
    j->c.sampled += r->n_choices;
    j->c.no_answer += none;
    j->c.kept_responses += kept;
    const char *fields[] = {"responses", "answers", "n_sampled", "n_no_answer"};
    for (size_t f = 0; f < SQ_ARRAY_LEN(fields); f++)
        cJSON_DeleteItemFromObjectCaseSensitive(rec, fields[f]);
    cJSON_AddItemToObject(rec, "responses", texts);
    cJSON_AddItemToObject(rec, "answers", answers);
    cJSON_AddNumberToObject(rec, "n_sampled", r->n_choices);
    cJSON_AddNumberToObject(rec, "n_no_answer", none);
    if (!kept) {
        j->c.questions_without++;
        return sq_stage_drop(st, slot, rec, "no response with a final answer", e);
    }
    return sq_stage_keep(st, slot, rec, e);
}

int sq_respond_run(sq_backend *b, const sq_respond_opts *o, sq_respond_counts *counts, sq_err *e) {
    if (!o->stage.in || !o->stage.out)
        return sq_fail(e, SQ_EINVAL, "respond: an input and an output are needed");
    if (o->params.n < 1) return sq_fail(e, SQ_EINVAL, "respond: n must be at least 1");
    sq_respond_opts oo = *o;
    if (!oo.field) oo.field = "query";
    if (!oo.stage.name) oo.stage.name = "respond";
    job j = {.o = &oo};
    int rc = sq_cot_prompt_open(&j.prompt, oo.chat_template, oo.instruction, e);
    if (rc) return rc;
    sq_stage *st = NULL;
    if ((rc = sq_stage_open(&st, &oo.stage, e))) {
        sq_cot_prompt_close(&j.prompt);
        return rc;
    }
    sq_stage_gen g = {build, finish, &j, oo.chunk > 0 ? oo.chunk : 64};
    rc = sq_stage_run_generate(st, b, &g, e);
    sq_cot_prompt_close(&j.prompt);
    if (rc) {
        sq_stage_abort(st);
        return rc;
    }
    sq_err ce = {0};
    int crc = sq_stage_close(st, NULL, &ce);
    if (!sq_progress_is_quiet() && (crc == 0 || crc == SQ_EIO))
        fprintf(stderr,
                "respond: %lld responses sampled, %lld kept, %lld without a final answer dropped; %lld "
                "questions left "
                "with none\n",
                (long long)j.c.sampled, (long long)j.c.kept_responses, (long long)j.c.no_answer,
                (long long)j.c.questions_without);
    if (counts) *counts = j.c;
    if (crc && e) *e = ce;
    return crc;
}
