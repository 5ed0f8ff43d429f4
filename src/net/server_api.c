/* Server side of the OpenAI wire format: check request bodies, write responses. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "net_internal.h"

#define SEED_MASK ((UINT64_C(1) << 53) - 1)
#define MAX_STOPS 16
#define MAX_MESSAGES 1024

static char *keep(sq_srv_job *job, const char *s) {
    char **grown = realloc(job->strs, (size_t)(job->n_strs + 1) * sizeof *grown);
    if (!grown) return NULL;
    job->strs = grown;
    char *c = sq_strdup(s);
    if (c) job->strs[job->n_strs++] = c;
    return c;
}

void sq_srv_job_free(sq_srv_job *job) {
    for (int i = 0; i < job->n_strs; i++) free(job->strs[i]);
    free(job->strs);
    free(job->msgs);
    free(job->stops);
    free(job->error);
    for (int i = 0; i < job->n_choices; i++) {
        if (job->texts) free(job->texts[i]);
        if (job->finish) free(job->finish[i]);
        if (job->logprobs) free(job->logprobs[i]);
    }
    free(job->texts);
    free(job->finish);
    free(job->logprobs);
    free(job->n_logprobs);
}

typedef struct parse_ctx {
    char *msg;
    size_t cap;
    const char **param;
} parse_ctx;

static int bad(parse_ctx *c, int status, const char *param, const char *fmt, const char *arg) {
    snprintf(c->msg, c->cap, fmt, arg);
    *c->param = param;
    return status;
}

/* An optional number field in [lo, hi]; integral when want_int. 1: present, 0: absent, <0: bad. */
static int num_field(const cJSON *o, const char *name, double lo, double hi, int want_int, double *out, parse_ctx *c,
                     int *status) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v || cJSON_IsNull(v)) return 0;
    char range[160];
    if (!cJSON_IsNumber(v) || (want_int && v->valuedouble != floor(v->valuedouble))) {
        *status = bad(c, 400, name, want_int ? "'%s' must be an integer" : "'%s' must be a number", name);
        return -1;
    }
    if (v->valuedouble < lo || v->valuedouble > hi) {
        snprintf(range, sizeof range, "'%s' is %.17g, outside the accepted range %g..%g", name, v->valuedouble, lo, hi);
        *status = bad(c, 400, name, "%s", range);
        return -1;
    }
    *out = v->valuedouble;
    return 1;
}

static int parse_messages(const cJSON *arr, sq_srv_job *job, parse_ctx *c) {
    if (!cJSON_IsArray(arr)) return bad(c, 400, "messages", "'%s' must be an array of {role, content}", "messages");
    int n = cJSON_GetArraySize(arr);
    if (n < 1 || n > MAX_MESSAGES) return bad(c, 400, "messages", "'%s' must hold 1 to 1024 messages", "messages");
    job->msgs = calloc((size_t)n, sizeof *job->msgs);
    if (!job->msgs) return bad(c, 500, NULL, "%s", "out of memory");
    int i = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, arr) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!cJSON_IsString(role) ||
            (strcmp(role->valuestring, "system") && strcmp(role->valuestring, "user") &&
             strcmp(role->valuestring, "assistant")))
            return bad(c, 400, "messages", "%s", "each message needs a role of system, user or assistant");
        sq_buf text = {0};
        if (cJSON_IsString(content)) {
            sq_buf_puts(&text, content->valuestring);
        } else if (cJSON_IsArray(content)) {
            /* content parts: only text parts can be fed to a text model */
            const cJSON *part;
            cJSON_ArrayForEach(part, content) {
                const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
                const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
                if (!cJSON_IsString(type) || strcmp(type->valuestring, "text") || !cJSON_IsString(t)) {
                    sq_buf_free(&text);
                    return bad(c, 400, "messages", "%s", "only content parts of type 'text' are supported");
                }
                sq_buf_puts(&text, t->valuestring);
            }
        } else {
            return bad(c, 400, "messages", "%s", "each message needs a string 'content'");
        }
        char *r = keep(job, role->valuestring);
        char *t = keep(job, text.data ? text.data : "");
        sq_buf_free(&text);
        if (!r || !t) return bad(c, 500, NULL, "%s", "out of memory");
        job->msgs[i].role = r;
        job->msgs[i].content = t;
        i++;
    }
    job->req.messages = job->msgs;
    job->req.n_messages = n;
    return 0;
}

static int parse_prompt(const cJSON *p, sq_srv_job *job, parse_ctx *c) {
    if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1 && cJSON_IsString(cJSON_GetArrayItem(p, 0)))
        p = cJSON_GetArrayItem(p, 0);
    if (!cJSON_IsString(p))
        return bad(c, 400, "prompt", "'%s' must be a string (or a list holding one string)", "prompt");
    if (!(job->prompt = keep(job, p->valuestring))) return bad(c, 500, NULL, "%s", "out of memory");
    job->req.prompt = job->prompt;
    return 0;
}

static int parse_stop(const cJSON *s, sq_srv_job *job, parse_ctx *c) {
    if (!s || cJSON_IsNull(s)) return 0;
    int n = cJSON_IsString(s) ? 1 : cJSON_IsArray(s) ? cJSON_GetArraySize(s) : -1;
    if (n < 0 || n > MAX_STOPS) return bad(c, 400, "stop", "'%s' must be a string or a list of up to 16 strings", "stop");
    if (n == 0) return 0;
    job->stops = calloc((size_t)n, sizeof *job->stops);
    if (!job->stops) return bad(c, 500, NULL, "%s", "out of memory");
    for (int i = 0; i < n; i++) {
        const cJSON *it = cJSON_IsString(s) ? s : cJSON_GetArrayItem(s, i);
        if (!cJSON_IsString(it) || !it->valuestring[0])
            return bad(c, 400, "stop", "'%s' entries must be non-empty strings", "stop");
        if (!(job->stops[i] = keep(job, it->valuestring))) return bad(c, 500, NULL, "%s", "out of memory");
    }
    job->req.params.stop = job->stops;
    job->req.params.n_stop = n;
    return 0;
}

int sq_srv_parse_request(const char *body, size_t len, int chat, const sq_server_opts *o, const char *model_name,
                         sq_srv_job *job, char *msg, size_t cap, const char **param) {
    parse_ctx c = {msg, cap, param};
    *param = NULL;
    job->chat = chat;
    sq_gen_params_default(&job->req.params);
    job->req.params.max_tokens = o->default_max_tokens;
    cJSON *root = cJSON_ParseWithLength(body ? body : "", len);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        char where[64];
        snprintf(where, sizeof where, "%zu", at && body && at >= body && at <= body + len ? (size_t)(at - body) : len);
        return bad(&c, 400, NULL, "the request body is not valid JSON (error near byte %s)", where);
    }
    int st = 0;
    double v;
    if (!cJSON_IsObject(root)) {
        st = bad(&c, 400, NULL, "%s", "the request body must be a JSON object");
        goto done;
    }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (model && !cJSON_IsString(model)) {
        st = bad(&c, 400, "model", "'%s' must be a string", "model");
        goto done;
    }
    if (model && strcmp(model->valuestring, model_name)) {
        char m[300];
        snprintf(m, sizeof m, "The model '%.200s' does not exist; this server serves '%.80s'", model->valuestring,
                 model_name);
        st = bad(&c, 404, "model", "%s", m);
        goto done;
    }
    const cJSON *stream = cJSON_GetObjectItemCaseSensitive(root, "stream");
    if (stream && !cJSON_IsBool(stream) && !cJSON_IsNull(stream)) {
        st = bad(&c, 400, "stream", "'%s' must be a boolean", "stream");
        goto done;
    }
    job->stream = cJSON_IsTrue(stream);
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
    job->stream_usage = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage"));
    const cJSON *echo = cJSON_GetObjectItemCaseSensitive(root, "echo");
    if (cJSON_IsTrue(echo)) {
        st = bad(&c, 400, "echo", "%s", "echo=true is not supported by this server");
        goto done;
    }
    if (chat) {
        if ((st = parse_messages(cJSON_GetObjectItemCaseSensitive(root, "messages"), job, &c))) goto done;
    } else {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "prompt");
        if (!p) {
            st = bad(&c, 400, "prompt", "'%s' is required", "prompt");
            goto done;
        }
        if ((st = parse_prompt(p, job, &c))) goto done;
    }
    sq_gen_params *gp = &job->req.params;
    int r;
    if ((r = num_field(root, "max_tokens", 1, o->max_tokens_limit, 1, &v, &c, &st)) < 0) goto done;
    if (r) gp->max_tokens = (int)v;
    if (chat) {
        if ((r = num_field(root, "max_completion_tokens", 1, o->max_tokens_limit, 1, &v, &c, &st)) < 0) goto done;
        if (r) gp->max_tokens = (int)v;
    }
    if ((r = num_field(root, "temperature", 0, 2, 0, &v, &c, &st)) < 0) goto done;
    if (r) gp->temperature = (float)v;
    if ((r = num_field(root, "top_p", 1e-9, 1, 0, &v, &c, &st)) < 0) goto done;
    if (r) gp->top_p = (float)v;
    if ((r = num_field(root, "top_k", -1, 1e9, 1, &v, &c, &st)) < 0) goto done;
    if (r) gp->top_k = v < 0 ? 0 : (int)v;
    if ((r = num_field(root, "min_p", 0, 1, 0, &v, &c, &st)) < 0) goto done;
    if (r) gp->min_p = (float)v;
    if ((r = num_field(root, "n", 1, o->max_n, 1, &v, &c, &st)) < 0) goto done;
    if (r) gp->n = (int)v;
    if ((r = num_field(root, "best_of", 1, 1, 1, &v, &c, &st)) < 0) goto done;
    if ((r = num_field(root, "seed", -9007199254740991.0, 9007199254740991.0, 1, &v, &c, &st)) < 0) goto done;
    if (r) gp->seed = (uint64_t)(int64_t)v & SEED_MASK;
    const cJSON *lp = cJSON_GetObjectItemCaseSensitive(root, "logprobs");
    if (chat && lp && !cJSON_IsNull(lp)) {
        if (!cJSON_IsBool(lp)) {
            st = bad(&c, 400, "logprobs", "'%s' must be a boolean", "logprobs");
            goto done;
        }
        gp->logprobs = cJSON_IsTrue(lp);
    } else if (!chat) {
        if ((r = num_field(root, "logprobs", 0, 5, 1, &v, &c, &st)) < 0) goto done;
        if (r) gp->logprobs = v > 0;
    }
    if ((st = parse_stop(cJSON_GetObjectItemCaseSensitive(root, "stop"), job, &c))) goto done;
done:
    cJSON_Delete(root);
    return st;
}

int sq_srv_apply_template(sq_srv_job *job, const sq_chat_template *t, char *msg, size_t cap) {
    sq_buf text = {0};
    sq_err e = {0};
    if (sq_chat_template_render(t, job->req.messages, job->req.n_messages, 1, &text, &e)) {
        snprintf(msg, cap, "the chat template refuses these messages: %s", e.msg);
        sq_buf_free(&text);
        return e.code == SQ_ENOMEM ? 500 : 400;
    }
    char *prompt = keep(job, text.data ? text.data : "");
    sq_buf_free(&text);
    /* The end of an assistant turn ends the answer, on top of the request's own stops. */
    int n = job->req.params.n_stop;
    const char **stops = calloc((size_t)(n + t->n_assistant_stops), sizeof *stops);
    if (!prompt || !stops) {
        free(stops);
        snprintf(msg, cap, "out of memory");
        return 500;
    }
    for (int i = 0; i < n; i++) stops[i] = job->stops[i];
    for (int i = 0; i < t->n_assistant_stops; i++) stops[n + i] = t->assistant_stops[i];
    free(job->stops);
    job->stops = stops;
    job->req.params.stop = stops;
    job->req.params.n_stop = n + t->n_assistant_stops;
    job->prompt = prompt;
    job->req.prompt = prompt;
    job->req.messages = NULL;
    job->req.n_messages = 0;
    return 0;
}

int sq_srv_job_set_result(sq_srv_job *job, const sq_gen_result *r) {
    job->ok = r->ok;
    if (!r->ok) {
        job->error = sq_strdup(r->error ? r->error : "generation failed");
        return job->error ? 0 : SQ_ENOMEM;
    }
    int n = r->n_choices;
    job->texts = calloc((size_t)(n ? n : 1), sizeof *job->texts);
    job->finish = calloc((size_t)(n ? n : 1), sizeof *job->finish);
    job->logprobs = calloc((size_t)(n ? n : 1), sizeof *job->logprobs);
    job->n_logprobs = calloc((size_t)(n ? n : 1), sizeof *job->n_logprobs);
    if (!job->texts || !job->finish || !job->logprobs || !job->n_logprobs) return SQ_ENOMEM;
    job->n_choices = n;
    for (int i = 0; i < n; i++) {
        const sq_gen_choice *ch = &r->choices[i];
        job->texts[i] = sq_strdup(ch->text ? ch->text : "");
        job->finish[i] = sq_strdup(ch->finish_reason ? ch->finish_reason : "stop");
        if (!job->texts[i] || !job->finish[i]) return SQ_ENOMEM;
        if (ch->logprobs && ch->n_tokens > 0) {
            job->logprobs[i] = malloc((size_t)ch->n_tokens * sizeof(float));
            if (!job->logprobs[i]) return SQ_ENOMEM;
            memcpy(job->logprobs[i], ch->logprobs, (size_t)ch->n_tokens * sizeof(float));
            job->n_logprobs[i] = ch->n_tokens;
        }
    }
    job->prompt_tokens = r->prompt_tokens;
    job->completion_tokens = r->completion_tokens;
    return 0;
}

static cJSON *logprobs_json(const sq_srv_job *job, int i) {
    if (!job->req.params.logprobs || !job->logprobs[i]) return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    if (job->chat) {
        cJSON *content = cJSON_AddArrayToObject(o, "content");
        for (int k = 0; k < job->n_logprobs[i]; k++) {
            cJSON *t = cJSON_CreateObject();
            cJSON_AddStringToObject(t, "token", "");
            cJSON_AddNumberToObject(t, "logprob", job->logprobs[i][k]);
            cJSON_AddNullToObject(t, "bytes");
            cJSON_AddArrayToObject(t, "top_logprobs");
            cJSON_AddItemToArray(content, t);
        }
    } else {
        cJSON *lp = cJSON_AddArrayToObject(o, "token_logprobs");
        for (int k = 0; k < job->n_logprobs[i]; k++) cJSON_AddItemToArray(lp, cJSON_CreateNumber(job->logprobs[i][k]));
    }
    return o;
}

char *sq_srv_response_json(const sq_srv_job *job, const char *model, uint64_t id, long created) {
    cJSON *o = cJSON_CreateObject();
    char ids[48];
    snprintf(ids, sizeof ids, "%s-%016llx", job->chat ? "chatcmpl" : "cmpl", (unsigned long long)id);
    cJSON_AddStringToObject(o, "id", ids);
    cJSON_AddStringToObject(o, "object", job->chat ? "chat.completion" : "text_completion");
    cJSON_AddNumberToObject(o, "created", (double)created);
    cJSON_AddStringToObject(o, "model", model);
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    for (int i = 0; i < job->n_choices; i++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddNumberToObject(c, "index", i);
        if (job->chat) {
            cJSON *m = cJSON_AddObjectToObject(c, "message");
            cJSON_AddStringToObject(m, "role", "assistant");
            cJSON_AddStringToObject(m, "content", job->texts[i]);
        } else {
            cJSON_AddStringToObject(c, "text", job->texts[i]);
        }
        cJSON_AddItemToObject(c, "logprobs", logprobs_json(job, i));
        cJSON_AddStringToObject(c, "finish_reason", job->finish[i]);
        cJSON_AddItemToArray(choices, c);
    }
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", job->prompt_tokens);
    cJSON_AddNumberToObject(u, "completion_tokens", job->completion_tokens);
    cJSON_AddNumberToObject(u, "total_tokens", job->prompt_tokens + job->completion_tokens);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

char *sq_srv_error_json(const char *msg, const char *type, const char *param, const char *code) {
    cJSON *o = cJSON_CreateObject();
    cJSON *err = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(err, "message", msg);
    cJSON_AddStringToObject(err, "type", type);
    if (param) cJSON_AddStringToObject(err, "param", param);
    else cJSON_AddNullToObject(err, "param");
    if (code) cJSON_AddStringToObject(err, "code", code);
    else cJSON_AddNullToObject(err, "code");
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

char *sq_srv_models_json(const char *model, long created) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(o, "data");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", model);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)created);
    cJSON_AddStringToObject(m, "owned_by", "scalequest");
    cJSON_AddItemToArray(data, m);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* One server-sent event carrying a chunk object. */
static int put_event(sq_buf *out, cJSON *chunk) {
    char *s = cJSON_PrintUnformatted(chunk);
    cJSON_Delete(chunk);
    if (!s) return SQ_ENOMEM;
    int rc = sq_buf_printf(out, "data: %s\n\n", s);
    free(s);
    return rc;
}

static cJSON *chunk_head(const sq_srv_job *job, const char *ids, const char *model, long created) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", ids);
    cJSON_AddStringToObject(o, "object", job->chat ? "chat.completion.chunk" : "text_completion");
    cJSON_AddNumberToObject(o, "created", (double)created);
    cJSON_AddStringToObject(o, "model", model);
    return o;
}

/* A finished job framed as an OpenAI event stream: per choice, its text in one chunk and
 * then its finish reason; a usage chunk when asked for; then [DONE]. */
char *sq_srv_stream_body(const sq_srv_job *job, const char *model, uint64_t id, long created) {
    char ids[48];
    snprintf(ids, sizeof ids, "%s-%016llx", job->chat ? "chatcmpl" : "cmpl", (unsigned long long)id);
    sq_buf out = {0};
    int rc = 0;
    for (int i = 0; i < job->n_choices && !rc; i++) {
        for (int last = 0; last < 2 && !rc; last++) {
            cJSON *o = chunk_head(job, ids, model, created);
            cJSON *choices = cJSON_AddArrayToObject(o, "choices");
            cJSON *c = cJSON_CreateObject();
            cJSON_AddItemToArray(choices, c);
            cJSON_AddNumberToObject(c, "index", i);
            if (job->chat) {
                cJSON *d = cJSON_AddObjectToObject(c, "delta");
                if (!last) {
                    cJSON_AddStringToObject(d, "role", "assistant");
                    cJSON_AddStringToObject(d, "content", job->texts[i]);
                }
            } else {
                cJSON_AddStringToObject(c, "text", last ? "" : job->texts[i]);
            }
            cJSON_AddItemToObject(c, "logprobs", last ? cJSON_CreateNull() : logprobs_json(job, i));
            if (last) cJSON_AddStringToObject(c, "finish_reason", job->finish[i]);
            else cJSON_AddNullToObject(c, "finish_reason");
            rc = put_event(&out, o);
        }
    }
    if (!rc && job->stream_usage) {
        cJSON *o = chunk_head(job, ids, model, created);
        cJSON_AddArrayToObject(o, "choices");
        cJSON *u = cJSON_AddObjectToObject(o, "usage");
        cJSON_AddNumberToObject(u, "prompt_tokens", job->prompt_tokens);
        cJSON_AddNumberToObject(u, "completion_tokens", job->completion_tokens);
        cJSON_AddNumberToObject(u, "total_tokens", job->prompt_tokens + job->completion_tokens);
        rc = put_event(&out, o);
    }
    if (!rc) rc = sq_buf_puts(&out, "data: [DONE]\n\n");
    if (rc) {
        sq_buf_free(&out);
        return NULL;
    }
    return out.data;
}
