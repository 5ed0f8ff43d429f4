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

static void free_strs(char **v, int n) {
    if (!v) return;
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

void sq_srv_job_free(sq_srv_job *job) {
    for (int i = 0; i < job->n_strs; i++) free(job->strs[i]);
    free(job->strs);
    free(job->msgs);
    free(job->stops);
    free(job->prompts);
    free(job->reqs);
    free(job->error);
    for (int i = 0; i < job->n_choices; i++) {
        if (job->texts) free(job->texts[i]);
        if (job->finish) free(job->finish[i]);
        if (job->logprobs) free(job->logprobs[i]);
        if (job->token_texts) free_strs(job->token_texts[i], job->n_logprobs[i]);
        if (job->top_lps) free(job->top_lps[i]);
        if (job->top_texts) free_strs(job->top_texts[i], job->n_logprobs[i] * job->n_top);
    }
    free(job->texts);
    free(job->finish);
    free(job->logprobs);
    free(job->n_logprobs);
    free(job->token_texts);
    free(job->top_lps);
    free(job->top_texts);
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

/* A string, or OpenAI's batch form: a list of strings, each its own request. */
static int parse_prompt(const cJSON *p, sq_srv_job *job, const sq_server_opts *o, parse_ctx *c) {
    if (cJSON_IsArray(p)) {
        int n = cJSON_GetArraySize(p), max = SQ_MAX(o->max_batch, 1);
        if (n < 1 || n > max) {
            char m[160];
            snprintf(m, sizeof m, "'prompt' as a list must hold 1 to %d strings (this server's --max-batch)", max);
            return bad(c, 400, "prompt", "%s", m);
        }
        if (!(job->prompts = calloc((size_t)n, sizeof *job->prompts))) return bad(c, 500, NULL, "%s", "out of memory");
        for (int i = 0; i < n; i++) {
            const cJSON *it = cJSON_GetArrayItem(p, i);
            if (!cJSON_IsString(it))
                return bad(c, 400, "prompt", "'%s' must be a string or a list of strings (token ids are not accepted)",
                           "prompt");
            if (!(job->prompts[i] = keep(job, it->valuestring))) return bad(c, 500, NULL, "%s", "out of memory");
        }
        job->n_prompts = n;
        job->prompt = (char *)job->prompts[0];
        job->req.prompt = job->prompt;
        return 0;
    }
    if (!cJSON_IsString(p))
        return bad(c, 400, "prompt", "'%s' must be a string or a list of strings", "prompt");
    if (!(job->prompt = keep(job, p->valuestring))) return bad(c, 500, NULL, "%s", "out of memory");
    job->req.prompt = job->prompt;
    return 0;
}

/* JSON text must be UTF-8; the strings handed to a C backend end at their first NUL, so a
 * "\u0000" escape would silently cut a prompt short: both are refused with the offset.
 * Every backslash in valid JSON starts an escape inside a string, so a flat scan is exact. */
static int check_text(const char *b, size_t len, parse_ctx *c) {
    char where[32];
    size_t i = 0;
    while (i < len) {
        unsigned char ch = (unsigned char)b[i];
        if (ch == '\\' && i + 1 < len) {
            if (b[i + 1] == 'u' && i + 6 <= len && !memcmp(b + i + 2, "0000", 4)) {
                snprintf(where, sizeof where, "%zu", i);
                return bad(c, 400, NULL,
                           "the request holds \\u0000 (byte %s): NUL characters cannot be passed to the model", where);
            }
            i += 2;
            continue;
        }
        size_t n = ch < 0x80 ? 1 : (ch >> 5) == 6 && ch >= 0xc2 ? 2 : (ch >> 4) == 14 ? 3 : (ch >> 3) == 30 && ch <= 0xf4 ? 4 : 0;
        int ok = n > 0 && i + n <= len;
        for (size_t k = 1; ok && k < n; k++) ok = ((unsigned char)b[i + k] >> 6) == 2;
        if (ok && n == 3) {
            unsigned char d = (unsigned char)b[i + 1];
            ok = !(ch == 0xe0 && d < 0xa0) && !(ch == 0xed && d >= 0xa0);
        }
        if (ok && n == 4) {
            unsigned char d = (unsigned char)b[i + 1];
            ok = !(ch == 0xf0 && d < 0x90) && !(ch == 0xf4 && d >= 0x90);
        }
        if (!ok) {
            snprintf(where, sizeof where, "%zu", i);
            return bad(c, 400, NULL, "the request body is not valid UTF-8 (byte %s)", where);
        }
        i += n;
    }
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
    int st0 = check_text(body ? body : "", body ? len : 0, &c);
    if (st0) return st0;
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
        if ((st = parse_prompt(p, job, o, &c))) goto done;
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
        if ((r = num_field(root, "top_logprobs", 0, 20, 1, &v, &c, &st)) < 0) goto done;
        if (r) gp->top_logprobs = (int)v;
    } else if (!chat) {
        /* logprobs=N: each token's logprob and the N most likely tokens at its step (0: none) */
        if ((r = num_field(root, "logprobs", 0, 20, 1, &v, &c, &st)) < 0) goto done;
        if (r) {
            gp->logprobs = 1;
            gp->top_logprobs = (int)v;
        }
    }
    if ((st = parse_stop(cJSON_GetObjectItemCaseSensitive(root, "stop"), job, &c))) goto done;
    /* Last, so a request with something else wrong hears about that first. */
    if (!model) st = bad(&c, 400, "model", "'%s' is required (this server serves one model; see /v1/models)", "model");
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

int sq_srv_job_ready(sq_srv_job *job) {
    int n = job->n_prompts > 1 ? job->n_prompts : 1;
    job->reqs = calloc((size_t)n, sizeof *job->reqs);
    if (!job->reqs) return SQ_ENOMEM;
    for (int i = 0; i < n; i++) {
        job->reqs[i] = job->req;
        if (job->n_prompts > 1) job->reqs[i].prompt = job->prompts[i];
        job->reqs[i].params.cancel = &job->cancel;
    }
    job->n_reqs = n;
    job->per_req = job->req.params.n > 0 ? job->req.params.n : 1;
    job->n_top = job->req.params.logprobs ? job->req.params.top_logprobs : 0;
    size_t nc = (size_t)n * (size_t)job->per_req;
    job->texts = calloc(nc, sizeof *job->texts);
    job->finish = calloc(nc, sizeof *job->finish);
    job->logprobs = calloc(nc, sizeof *job->logprobs);
    job->n_logprobs = calloc(nc, sizeof *job->n_logprobs);
    job->token_texts = calloc(nc, sizeof *job->token_texts);
    job->top_lps = calloc(nc, sizeof *job->top_lps);
    job->top_texts = calloc(nc, sizeof *job->top_texts);
    if (!job->texts || !job->finish || !job->logprobs || !job->n_logprobs || !job->token_texts || !job->top_lps ||
        !job->top_texts)
        return SQ_ENOMEM;
    job->n_choices = (int)nc;
    job->ok = 1;
    return 0;
}

static char **copy_strs(const char *const *v, int n) {
    char **out = calloc((size_t)(n > 0 ? n : 1), sizeof *out);
    for (int i = 0; out && i < n; i++)
        if (!(out[i] = sq_strdup(v[i] ? v[i] : ""))) {
            free_strs(out, i);
            return NULL;
        }
    return out;
}

int sq_srv_job_fail(sq_srv_job *job, int sub, int http_status, const char *why) {
    (void)sub;
    if (job->ok || !job->error) { /* the first failure names the job's */
        free(job->error);
        job->error = sq_strdup(why ? why : "generation failed");
        job->http_status = http_status;
    }
    job->ok = 0;
    return ++job->n_answered >= job->n_reqs;
}

int sq_srv_job_set_result(sq_srv_job *job, int sub, const sq_gen_result *r) {
    if (!r->ok) return sq_srv_job_fail(job, sub, r->bad_request ? 400 : 502, r->error);
    int n = SQ_MIN(r->n_choices, job->per_req);
    for (int k = 0; k < n; k++) {
        const sq_gen_choice *ch = &r->choices[k];
        int i = sub * job->per_req + k;
        job->texts[i] = sq_strdup(ch->text ? ch->text : "");
        job->finish[i] = sq_strdup(ch->finish_reason ? ch->finish_reason : "stop");
        if (!job->texts[i] || !job->finish[i]) return sq_srv_job_fail(job, sub, 500, "out of memory");
        if (ch->logprobs && ch->n_tokens > 0) {
            int t = ch->n_tokens, K = job->n_top;
            job->logprobs[i] = malloc((size_t)t * sizeof(float));
            if (!job->logprobs[i]) return sq_srv_job_fail(job, sub, 500, "out of memory");
            memcpy(job->logprobs[i], ch->logprobs, (size_t)t * sizeof(float));
            job->n_logprobs[i] = t;
            if (ch->token_texts && !(job->token_texts[i] = copy_strs(ch->token_texts, t)))
                return sq_srv_job_fail(job, sub, 500, "out of memory");
            if (K > 0 && ch->n_top >= K && ch->top_logprobs && ch->top_texts) {
                job->top_lps[i] = malloc((size_t)t * K * sizeof(float));
                const char **tt = malloc((size_t)t * K * sizeof *tt);
                if (!job->top_lps[i] || !tt) {
                    free(tt);
                    return sq_srv_job_fail(job, sub, 500, "out of memory");
                }
                for (int a = 0; a < t; a++)
                    for (int b = 0; b < K; b++) {
                        job->top_lps[i][a * K + b] = ch->top_logprobs[a * ch->n_top + b];
                        tt[a * K + b] = ch->top_texts[a * ch->n_top + b];
                    }
                job->top_texts[i] = copy_strs(tt, t * K);
                free(tt);
                if (!job->top_texts[i]) return sq_srv_job_fail(job, sub, 500, "out of memory");
            }
        }
    }
    for (int k = n; k < job->per_req; k++) { /* a backend that answered fewer than n */
        int i = sub * job->per_req + k;
        job->texts[i] = sq_strdup("");
        job->finish[i] = sq_strdup("stop");
        if (!job->texts[i] || !job->finish[i]) return sq_srv_job_fail(job, sub, 500, "out of memory");
    }
    job->prompt_tokens += r->prompt_tokens;
    job->completion_tokens += r->completion_tokens;
    return ++job->n_answered >= job->n_reqs;
}

/* A token's UTF-8 bytes as a list of numbers, as OpenAI's chat logprobs give them. */
static cJSON *bytes_json(const char *t) {
    cJSON *a = cJSON_CreateArray();
    for (const unsigned char *p = (const unsigned char *)t; *p; p++) cJSON_AddItemToArray(a, cJSON_CreateNumber(*p));
    return a;
}

static cJSON *logprobs_json(const sq_srv_job *job, int i) {
    if (!job->req.params.logprobs || !job->logprobs[i]) return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    int n = job->n_logprobs[i], K = job->n_top;
    char **tt = job->token_texts[i], **top = job->top_texts[i];
    if (job->chat) {
        cJSON *content = cJSON_AddArrayToObject(o, "content");
        for (int k = 0; k < n; k++) {
            cJSON *t = cJSON_CreateObject();
            const char *text = tt ? tt[k] : "";
            cJSON_AddStringToObject(t, "token", text);
            cJSON_AddNumberToObject(t, "logprob", job->logprobs[i][k]);
            cJSON_AddItemToObject(t, "bytes", bytes_json(text));
            cJSON *ta = cJSON_AddArrayToObject(t, "top_logprobs");
            for (int b = 0; top && b < K; b++) {
                cJSON *x = cJSON_CreateObject();
                cJSON_AddStringToObject(x, "token", top[k * K + b]);
                cJSON_AddNumberToObject(x, "logprob", job->top_lps[i][k * K + b]);
                cJSON_AddItemToObject(x, "bytes", bytes_json(top[k * K + b]));
                cJSON_AddItemToArray(ta, x);
            }
            cJSON_AddItemToArray(content, t);
        }
    } else {
        cJSON *toks = cJSON_AddArrayToObject(o, "tokens");
        cJSON *lp = cJSON_AddArrayToObject(o, "token_logprobs");
        cJSON *offs = cJSON_AddArrayToObject(o, "text_offset");
        cJSON *tops = top ? cJSON_AddArrayToObject(o, "top_logprobs") : NULL;
        if (!top) cJSON_AddNullToObject(o, "top_logprobs");
        size_t off = 0;
        for (int k = 0; k < n; k++) {
            const char *text = tt ? tt[k] : "";
            cJSON_AddItemToArray(toks, cJSON_CreateString(text));
            cJSON_AddItemToArray(lp, cJSON_CreateNumber(job->logprobs[i][k]));
            cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
            off += strlen(text);
            if (tops) {
                cJSON *d = cJSON_CreateObject();
                for (int b = 0; b < K; b++)
                    if (!cJSON_GetObjectItemCaseSensitive(d, top[k * K + b]))
                        cJSON_AddNumberToObject(d, top[k * K + b], job->top_lps[i][k * K + b]);
                cJSON_AddItemToArray(tops, d);
            }
        }
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
