/* The generate stage (generate.h): one backend request per record, the completions added to
 * the record, committed through the stage framework. */
#include "scalequest/generate.h"

#include <stdio.h>
#include <string.h>

#include "scalequest/chat_template.h"
#include "scalequest/jsonl.h"
#include "scalequest/net.h"

typedef struct gen_job {
    const sq_generate_opts *o;
} gen_job;

void sq_generate_opts_default(sq_generate_opts *o) {
    memset(o, 0, sizeof *o);
    sq_stage_opts_default(&o->stage);
    o->stage.name = "generate";
    o->stage.dropped = "";
    o->stage.window = 8192;
    o->field = "prompt";
    sq_gen_params_default(&o->params);
}

/* A request's seed from the run's seed and its id. This is generate's own derivation from
 * before the stage framework (sq_stage_seed mixes further): keeping it means an output begun
 * by an earlier version resumes with the very seeds it started with. */
static uint64_t request_seed(uint64_t seed, const char *id) {
    uint64_t h = 1469598103934665603ull ^ seed;
    for (; *id; id++) h = (h ^ (unsigned char)*id) * 1099511628211ull;
    return h;
}

static int build(void *user, sq_stage *st, int64_t slot, cJSON *rec, sq_gen_request *q, sq_arena *a, sq_err *e) {
    const gen_job *j = user;
    const char *path = j->o->stage.in;
    long long line = (long long)sq_stage_input_line(st);
    q->id = sq_rec_id(rec);
    q->params = j->o->params;
    q->params.seed = request_seed(j->o->params.seed, q->id);
    q->prompt = sq_rec_str(rec, j->o->field);
    if (q->prompt) return 0;
    const cJSON *arr = sq_rec_array(rec, "messages");
    if (!arr)
        return sq_fail(e, SQ_EPARSE, "%s:%lld: record has neither a string \"%s\" nor \"messages\"", path, line,
                       j->o->field);
    int n = cJSON_GetArraySize(arr);
    sq_chat_msg *msgs = sq_arena_alloc(a, sizeof *msgs * (size_t)(n > 0 ? n : 1));
    if (!msgs) return sq_fail(e, SQ_ENOMEM, "out of memory");
    for (int k = 0; k < n; k++) {
        const cJSON *m = cJSON_GetArrayItem(arr, k);
        const char *role = sq_rec_str(m, "role"), *content = sq_rec_str(m, "content");
        if (!role || !content)
            return sq_fail(e, SQ_EPARSE, "%s:%lld: messages[%d] needs string role and content", path, line, k);
        msgs[k] = (sq_chat_msg){role, content};
    }
    q->messages = msgs;
    q->n_messages = n;
    const sq_chat_template *t = j->o->chat_template;
    if (!t) return 0;
    /* The run's own template: render here and send a raw prompt (as serve does). */
    sq_buf text = {0};
    sq_err te = {0};
    if (sq_chat_template_render(t, msgs, n, 1, &text, &te)) {
        sq_buf_free(&text);
        return sq_fail(e, SQ_EPARSE, "%s:%lld: the chat template refuses these messages: %s", path, line, te.msg);
    }
    char *prompt = sq_arena_alloc(a, text.len + 1);
    int ns = q->params.n_stop;
    const char **stops = sq_arena_alloc(a, sizeof *stops * (size_t)(ns + t->n_assistant_stops + 1));
    if (!prompt || !stops) {
        sq_buf_free(&text);
        return sq_fail(e, SQ_ENOMEM, "out of memory");
    }
    memcpy(prompt, text.data ? text.data : "", text.len);
    sq_buf_free(&text);
    for (int k = 0; k < ns; k++) stops[k] = q->params.stop[k];
    for (int k = 0; k < t->n_assistant_stops; k++) stops[ns + k] = t->assistant_stops[k];
    q->params.stop = stops;
    q->params.n_stop = ns + t->n_assistant_stops;
    q->prompt = prompt;
    q->messages = NULL;
    q->n_messages = 0;
    return 0;
}

static int finish(void *user, sq_stage *st, int64_t slot, cJSON *rec, const sq_gen_result *r, sq_err *e) {
    const gen_job *j = user;
    int logprobs = j->o->params.logprobs;
    cJSON *texts = cJSON_CreateArray(), *reasons = cJSON_CreateArray(), *usage = cJSON_CreateObject();
    cJSON *ids = logprobs ? cJSON_CreateArray() : NULL, *lps = logprobs ? cJSON_CreateArray() : NULL;
    for (int k = 0; k < r->n_choices; k++) {
        const sq_gen_choice *c = &r->choices[k];
        cJSON_AddItemToArray(texts, cJSON_CreateString(c->text ? c->text : ""));
        cJSON_AddItemToArray(reasons, cJSON_CreateString(c->finish_reason ? c->finish_reason : ""));
        if (ids && c->token_ids) cJSON_AddItemToArray(ids, cJSON_CreateIntArray((const int *)c->token_ids, c->n_tokens));
        if (lps && c->logprobs) cJSON_AddItemToArray(lps, cJSON_CreateFloatArray(c->logprobs, c->n_tokens));
    }
    cJSON_AddNumberToObject(usage, "prompt_tokens", r->prompt_tokens);
    cJSON_AddNumberToObject(usage, "completion_tokens", r->completion_tokens);
    const char *fields[] = {"completions", "finish_reasons", "usage", "token_ids", "logprobs"};
    for (size_t f = 0; f < SQ_ARRAY_LEN(fields); f++) cJSON_DeleteItemFromObjectCaseSensitive(rec, fields[f]);
    cJSON_AddItemToObject(rec, "completions", texts);
    cJSON_AddItemToObject(rec, "finish_reasons", reasons);
    cJSON_AddItemToObject(rec, "usage", usage);
    if (ids) cJSON_AddItemToObject(rec, "token_ids", ids);
    if (lps) cJSON_AddItemToObject(rec, "logprobs", lps);
    return sq_stage_keep(st, slot, rec, e);
}

int sq_generate_run(sq_backend *b, const sq_generate_opts *o, sq_stage_counts *counts, sq_err *e) {
    if (!o->stage.in) return sq_fail(e, SQ_EINVAL, "generate: no input file given");
    sq_stage_opts so = o->stage;
    if (!so.name) so.name = "generate";
    sq_generate_opts oo = *o;
    if (!oo.field) oo.field = "prompt";
    gen_job j = {&oo};
    sq_stage *st = NULL;
    int rc = sq_stage_open(&st, &so, e);
    if (rc) return rc;
    double t0 = sq_now();
    sq_stage_gen g = {build, finish, &j, 4096};
    rc = sq_stage_run_generate(st, b, &g, e);
    if (rc) {
        sq_stage_abort(st);
        return rc;
    }
    sq_stage_counts c;
    sq_stage_get_counts(st, &c);
    /* The funnel comes first, the token line after it; the failure message last. */
    sq_err ce = {0};
    int crc = sq_stage_close(st, &c, &ce);
    if (counts) *counts = c;
    if (!sq_progress_is_quiet() && (crc == 0 || crc == SQ_EIO)) {
        double dt = sq_now() - t0;
        sq_http_stats hs;
        char retries[48] = "";
        if (sq_backend_is_http(b) && sq_http_backend_stats(b, &hs, NULL) == 0)
            snprintf(retries, sizeof retries, "; %lld retries", (long long)hs.retries);
        fprintf(stderr, "generate: %lld prompt + %lld completion tokens; %.1f completion tokens/s%s\n",
                (long long)c.prompt_tokens, (long long)c.completion_tokens,
                dt > 0 ? (double)c.completion_tokens / dt : 0.0, retries);
    }
    if (crc && e) *e = ce;
    return crc;
}
