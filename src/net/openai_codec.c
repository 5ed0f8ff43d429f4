/* Client side of the OpenAI wire format: request bodies out, responses in. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "net_internal.h"

/* JSON numbers travel as doubles; keeping seeds below 2^53 makes them round-trip exactly. */
#define SEED_MASK ((UINT64_C(1) << 53) - 1)

char *sq_oai_request_body(const char *model, const sq_gen_request *r) {
    const sq_gen_params *p = &r->params;
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    int ok = cJSON_AddStringToObject(o, "model", model) != NULL;
    if (r->prompt) {
        ok = ok && cJSON_AddStringToObject(o, "prompt", r->prompt);
    } else {
        cJSON *arr = cJSON_AddArrayToObject(o, "messages");
        ok = ok && arr;
        for (int i = 0; ok && i < r->n_messages; i++) {
            cJSON *m = cJSON_CreateObject();
            ok = m && cJSON_AddItemToArray(arr, m);
            ok = ok && cJSON_AddStringToObject(m, "role", r->messages[i].role ? r->messages[i].role : "user");
            ok = ok && cJSON_AddStringToObject(m, "content", r->messages[i].content ? r->messages[i].content : "");
        }
    }
    ok = ok && cJSON_AddNumberToObject(o, "max_tokens", p->max_tokens);
    ok = ok && cJSON_AddNumberToObject(o, "temperature", p->temperature);
    if (p->top_p != 1.0f) ok = ok && cJSON_AddNumberToObject(o, "top_p", p->top_p);
    /* top_k, min_p and stop_token_ids are vLLM/SGLang extensions; sent only when used. */
    if (p->top_k > 0) ok = ok && cJSON_AddNumberToObject(o, "top_k", p->top_k);
    if (p->min_p > 0) ok = ok && cJSON_AddNumberToObject(o, "min_p", p->min_p);
    if (p->n > 1) ok = ok && cJSON_AddNumberToObject(o, "n", p->n);
    ok = ok && cJSON_AddNumberToObject(o, "seed", (double)(p->seed & SEED_MASK));
    if (p->n_stop > 0) {
        cJSON *s = cJSON_AddArrayToObject(o, "stop");
        ok = ok && s;
        for (int i = 0; ok && i < p->n_stop; i++) ok = cJSON_AddItemToArray(s, cJSON_CreateString(p->stop[i]));
    }
    if (p->n_stop_ids > 0) {
        cJSON *s = cJSON_AddArrayToObject(o, "stop_token_ids");
        ok = ok && s;
        for (int i = 0; ok && i < p->n_stop_ids; i++)
            ok = cJSON_AddItemToArray(s, cJSON_CreateNumber(p->stop_ids[i]));
    }
    if (p->logprobs) {
        if (r->prompt) ok = ok && cJSON_AddNumberToObject(o, "logprobs", 1);
        else ok = ok && cJSON_AddTrueToObject(o, "logprobs");
    }
    char *s = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

void sq_oai_result_free(sq_oai_result *r) {
    for (int i = 0; i < r->n_choices; i++) {
        free((char *)r->choices[i].text);
        free((char *)r->choices[i].finish_reason);
        free((float *)r->choices[i].logprobs);
    }
    free(r->choices);
    memset(r, 0, sizeof *r);
}

/* The message of an OpenAI-style error body, or a prefix of the raw body. */
void sq_oai_error_message(const char *body, size_t len, char *out, size_t cap) {
    out[0] = 0;
    cJSON *o = body ? cJSON_ParseWithLength(body, len) : NULL;
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(o, "error");
    const cJSON *msg = cJSON_IsObject(err) ? cJSON_GetObjectItemCaseSensitive(err, "message") : err;
    if (!cJSON_IsString(msg)) msg = cJSON_GetObjectItemCaseSensitive(o, "message");
    if (!cJSON_IsString(msg)) msg = cJSON_GetObjectItemCaseSensitive(o, "detail");
    if (cJSON_IsString(msg)) snprintf(out, cap, "%s", msg->valuestring);
    else if (body && len) snprintf(out, cap, "%.*s", (int)SQ_MIN(len, (size_t)200), body);
    cJSON_Delete(o);
}

static float *read_logprobs(const cJSON *choice, int chat, int *count) {
    const cJSON *lp = cJSON_GetObjectItemCaseSensitive(choice, "logprobs");
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(lp, chat ? "content" : "token_logprobs");
    *count = 0;
    if (!cJSON_IsArray(arr)) return NULL;
    int n = cJSON_GetArraySize(arr);
    float *v = calloc((size_t)(n ? n : 1), sizeof *v);
    if (!v) return NULL;
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        const cJSON *x = chat ? cJSON_GetObjectItemCaseSensitive(it, "logprob") : it;
        v[i++] = cJSON_IsNumber(x) ? (float)x->valuedouble : 0.0f;
    }
    *count = n;
    return v;
}

int sq_oai_parse_response(const char *body, size_t len, int chat, sq_oai_result *out, sq_err *e) {
    memset(out, 0, sizeof *out);
    cJSON *o = cJSON_ParseWithLength(body, len);
    if (!o) return sq_fail(e, SQ_EPARSE, "response is not JSON (%zu bytes)", len);
    int rc = 0;
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(o, "choices");
    int n = cJSON_IsArray(choices) ? cJSON_GetArraySize(choices) : 0;
    if (n <= 0) {
        rc = sq_fail(e, SQ_EPARSE, "response has no \"choices\" array");
        goto done;
    }
    out->choices = calloc((size_t)n, sizeof *out->choices);
    if (!out->choices) {
        rc = sq_fail(e, SQ_ENOMEM, "out of memory for %d choices", n);
        goto done;
    }
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(o, "usage");
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens");
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(usage, "completion_tokens");
    out->prompt_tokens = cJSON_IsNumber(pt) ? pt->valueint : 0;
    out->completion_tokens = cJSON_IsNumber(ct) ? ct->valueint : 0;
    const cJSON *c;
    int k = 0;
    cJSON_ArrayForEach(c, choices) {
        /* Choices may arrive in any order; "index" says where each belongs. */
        const cJSON *ix = cJSON_GetObjectItemCaseSensitive(c, "index");
        int slot = cJSON_IsNumber(ix) && ix->valueint >= 0 && ix->valueint < n ? ix->valueint : k;
        k++;
        sq_gen_choice *ch = &out->choices[slot];
        if (ch->text) {
            rc = sq_fail(e, SQ_EPARSE, "response repeats choice index %d", slot);
            goto done;
        }
        const cJSON *text;
        if (chat) {
            const cJSON *msg = cJSON_GetObjectItemCaseSensitive(c, "message");
            text = cJSON_GetObjectItemCaseSensitive(msg, "content");
        } else {
            text = cJSON_GetObjectItemCaseSensitive(c, "text");
        }
        if (!cJSON_IsString(text) && !cJSON_IsNull(text)) {
            rc = sq_fail(e, SQ_EPARSE, "choice %d has no %s", slot, chat ? "message.content" : "text");
            goto done;
        }
        const cJSON *fr = cJSON_GetObjectItemCaseSensitive(c, "finish_reason");
        ch->text = sq_strdup(cJSON_IsString(text) ? text->valuestring : "");
        ch->finish_reason = sq_strdup(cJSON_IsString(fr) ? fr->valuestring : "stop");
        ch->logprobs = read_logprobs(c, chat, &ch->n_tokens);
        if (!ch->logprobs && n == 1) ch->n_tokens = out->completion_tokens;
        if (!ch->text || !ch->finish_reason) {
            rc = sq_fail(e, SQ_ENOMEM, "out of memory reading choice %d", slot);
            goto done;
        }
    }
    for (int i = 0; i < n; i++)
        if (!out->choices[i].text) {
            rc = sq_fail(e, SQ_EPARSE, "response lacks choice index %d", i);
            goto done;
        }
    out->n_choices = n;
done:
    if (rc) {
        out->n_choices = n;
        sq_oai_result_free(out);
    }
    cJSON_Delete(o);
    return rc;
}
