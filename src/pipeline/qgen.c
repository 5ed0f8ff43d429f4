/* The qgen stage (qgen.h): the stage makes its own ids, sends one request per id from the
 * bare user-turn prefix, and settles each batch in id order so duplicates are decided the
 * same way whatever order the answers came back in. */
#include "scalequest/qgen.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/chat_template.h"
#include "scalequest/jsonl.h"

void sq_qgen_opts_default(sq_qgen_opts *o) {
    memset(o, 0, sizeof *o);
    sq_stage_opts_default(&o->stage);
    o->stage.name = "qgen";
    sq_gen_params_default(&o->params);
    o->params.temperature = 1.0f;
    o->params.top_p = 0.99f;
    o->params.max_tokens = 512;
    o->chunk = 256;
}

int sq_qgen_use_template(sq_qgen_opts *o, const sq_chat_template *t, sq_buf *prefix, sq_err *e) {
    int rc = sq_chat_template_question_prefix(t, prefix, e);
    if (rc) return rc;
    if (!prefix->data && sq_buf_puts(prefix, "")) return sq_fail(e, SQ_ENOMEM, "out of memory");
    o->prefix = prefix->data;
    o->n_cut = 0;
    for (int i = 0; i < t->n_user_stops && o->n_cut < SQ_QGEN_MAX_CUT; i++)
        if (t->user_stops[i] && *t->user_stops[i]) o->cut[o->n_cut++] = t->user_stops[i];
    if (t->assistant_prefix && *t->assistant_prefix && o->n_cut < SQ_QGEN_MAX_CUT) {
        o->cut[o->n_cut++] = t->assistant_prefix;
    }
    return 0;
}

void sq_qgen_id(int64_t i, char *out, size_t cap) { snprintf(out, cap, "q%06lld", (long long)i); }

static int is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

char *sq_qgen_question(const char *completion, const char *const *cut, int n_cut) {
    const char *s = completion ? completion : "";
    size_t end = strlen(s);
    for (int i = 0; i < n_cut; i++) {
        if (!cut[i] || !*cut[i]) continue;
        const char *p = strstr(s, cut[i]);
        if (p && (size_t)(p - s) < end) end = (size_t)(p - s);
    }
    size_t b = 0;
    while (b < end && is_space((unsigned char)s[b])) b++;
    while (end > b && is_space((unsigned char)s[end - 1])) end--;
    char *q = malloc(end - b + 1);
    if (!q) return NULL;
    memcpy(q, s + b, end - b);
    q[end - b] = 0;
    return q;
}

char *sq_qgen_normalize(const char *question) {
    size_t n = strlen(question);
    char *k = malloc(n + 1), *w = k;
    if (!k) return NULL;
    int pending = 0;
    for (const unsigned char *p = (const unsigned char *)question; *p; p++) {
        if (is_space(*p)) {
            pending = w != k;
            continue;
        }
        if (pending) *w++ = ' ';
        pending = 0;
        *w++ = (char)*p;
    }
    *w = 0;
    return k;
}

/* ---- the run ----------------------------------------------------------------------------- */

typedef struct answer {
    int got, ok;
    char *text;   /* the completion */
    char *reason; /* finish reason */
    char *error;
} answer;

typedef struct qrun {
    const sq_qgen_opts *o;
    sq_stage *st;
    sq_keyset *seen; /* normalised questions kept so far */
    answer *ans;
    int oom;
} qrun;

static int on_result(void *user, int i, const sq_gen_result *r) {
    qrun *q = user;
    answer *a = &q->ans[i];
    a->got = 1;
    a->ok = r->ok && r->n_choices > 0;
    if (a->ok) {
        const sq_gen_choice *c = &r->choices[0];
        a->text = sq_strdup(c->text ? c->text : "");
        a->reason = sq_strdup(c->finish_reason ? c->finish_reason : "");
        if (!a->text || !a->reason) q->oom = 1;
        sq_stage_add_tokens(q->st, r->prompt_tokens, r->completion_tokens);
    } else {
        a->error = sq_strdup(r->ok ? "the backend returned no choice" : r->error ? r->error : "request failed");
        if (!a->error) q->oom = 1;
    }
    return q->oom;
}

static int replay_one(void *user, const cJSON *rec, sq_err *e) {
    qrun *q = user;
    const char *text = sq_rec_str(rec, "query");
    if (!text) return sq_fail(e, SQ_EPARSE, "%s: record \"%s\" has no string \"query\"", q->o->stage.out, sq_rec_id(rec));
    char *k = sq_qgen_normalize(text);
    int rc = k ? sq_keyset_add(q->seen, k, strlen(k)) : SQ_ENOMEM;
    free(k);
    return rc < 0 ? sq_fail(e, SQ_ENOMEM, "out of memory") : 0;
}

/* Settle one answered record: kept, or dropped with its reason. Takes rec. */
static int settle(qrun *q, int64_t slot, cJSON *rec, const answer *a, sq_err *e) {
    if (!a->ok) {
        int rc = sq_stage_fail(q->st, slot, sq_rec_id(rec), a->error ? a->error : "request failed", e);
        cJSON_Delete(rec);
        return rc;
    }
    char *question = sq_qgen_question(a->text, q->o->cut, q->o->n_cut);
    char *key = question ? sq_qgen_normalize(question) : NULL;
    if (!key) {
        free(question);
        cJSON_Delete(rec);
        return sq_fail(e, SQ_ENOMEM, "out of memory");
    }
    /* A question cut at a stop string is whole even when the backend also reports the limit. */
    int ended = strcmp(a->reason, "length") != 0;
    for (int i = 0; i < q->o->n_cut && !ended; i++) ended = strstr(a->text, q->o->cut[i]) != NULL;
    const char *why = NULL;
    if (!ended) why = "length";
    else if (!*key) why = "empty";
    else {
        int added = sq_keyset_add(q->seen, key, strlen(key));
        if (added < 0) why = "", q->oom = 1;
        else if (added == 0) why = "duplicate";
    }
    int rc = 0;
    if (q->oom) rc = sq_fail(e, SQ_ENOMEM, "out of memory");
    else if (sq_rec_set_str(rec, "query", why ? a->text : question)) rc = sq_fail(e, SQ_ENOMEM, "out of memory");
    free(question);
    free(key);
    if (rc) {
        cJSON_Delete(rec);
        return rc;
    }
    return why ? sq_stage_drop(q->st, slot, rec, why, e) : sq_stage_keep(q->st, slot, rec, e);
}

static void answers_clear(answer *ans, int n) {
    for (int i = 0; i < n; i++) {
        free(ans[i].text);
        free(ans[i].reason);
        free(ans[i].error);
    }
    memset(ans, 0, sizeof *ans * (size_t)n);
}

static int run_batches(sq_backend *b, qrun *q, sq_gen_request *reqs, cJSON **recs, int64_t *slots, char (*ids)[32],
                       sq_err *e) {
    const sq_qgen_opts *o = q->o;
    int chunk = o->chunk;
    int64_t next = o->start, end = o->start + o->n_questions;
    while (next < end) {
        int n = 0;
        int rc = 0;
        for (; next < end && n < chunk; next++) {
            sq_qgen_id(next, ids[n], sizeof ids[n]);
            cJSON *rec = cJSON_CreateObject();
            if (!rec || !cJSON_AddStringToObject(rec, "id", ids[n])) {
                cJSON_Delete(rec);
                return sq_fail(e, SQ_ENOMEM, "out of memory");
            }
            int got = sq_stage_offer(q->st, rec, &slots[n], e); /* reads rec's id only */
            if (got <= 0) cJSON_Delete(rec);
            if (got < 0) return got;
            if (got == 0) continue; /* done by an earlier run, or another shard's */
            recs[n] = rec;
            sq_gen_request *r = &reqs[n];
            memset(r, 0, sizeof *r);
            r->id = ids[n];
            r->prompt = o->prefix;
            r->params = o->params;
            r->params.n = 1;
            r->params.seed = sq_stage_seed(o->params.seed, ids[n]);
            n++;
        }
        if (n == 0) continue;
        sq_err ge = {0};
        int grc = sq_backend_generate(b, reqs, n, on_result, q, &ge);
        if (q->oom) rc = sq_fail(e, SQ_ENOMEM, "out of memory");
        else if (grc) rc = grc, *e = ge;
        for (int i = 0; i < n && !rc; i++) {
            answer *a = &q->ans[i];
            if (!a->got) a->error = sq_strdup("the backend gave no answer");
            rc = settle(q, slots[i], recs[i], a, e);
            recs[i] = NULL;
        }
        for (int i = 0; i < n; i++) cJSON_Delete(recs[i]), recs[i] = NULL;
        answers_clear(q->ans, n);
        if (rc) return rc;
    }
    return 0;
}

int sq_qgen_run(sq_backend *b, const sq_qgen_opts *o, sq_stage_counts *counts, sq_err *e) {
    if (o->stage.in) return sq_fail(e, SQ_EINVAL, "qgen: makes its own records; give no input file");
    if (!o->prefix) return sq_fail(e, SQ_EINVAL, "qgen: no question prefix (the chat template's user-turn prefix)");
    if (o->n_questions < 0 || o->start < 0) return sq_fail(e, SQ_EINVAL, "qgen: negative question count or start");
    sq_qgen_opts oo = *o;
    if (oo.chunk <= 0) oo.chunk = 256;
    /* The cut strings are also the request's stop strings. */
    if (!oo.params.stop || oo.params.n_stop == 0) {
        oo.params.stop = oo.cut;
        oo.params.n_stop = oo.n_cut;
    }
    sq_stage_opts so = oo.stage;
    if (!so.name) so.name = "qgen";
    so.total = oo.n_questions;
    if (so.window < oo.chunk) so.window = oo.chunk;
    qrun q = {.o = &oo};
    q.seen = sq_keyset_new();
    q.ans = calloc((size_t)oo.chunk, sizeof *q.ans);
    sq_gen_request *reqs = calloc((size_t)oo.chunk, sizeof *reqs);
    cJSON **recs = calloc((size_t)oo.chunk, sizeof *recs);
    int64_t *slots = calloc((size_t)oo.chunk, sizeof *slots);
    char(*ids)[32] = calloc((size_t)oo.chunk, sizeof *ids);
    int rc = 0;
    if (!q.seen || !q.ans || !reqs || !recs || !slots || !ids) rc = sq_fail(e, SQ_ENOMEM, "out of memory");
    double t0 = sq_now();
    if (!rc) rc = sq_stage_open(&q.st, &so, e);
    if (!rc) rc = sq_stage_replay(q.st, replay_one, &q, e);
    if (!rc) rc = run_batches(b, &q, reqs, recs, slots, ids, e);
    if (q.st) {
        if (rc) {
            sq_stage_abort(q.st);
        } else {
            sq_stage_counts c;
            rc = sq_stage_close(q.st, &c, e);
            if (counts) *counts = c;
            if (!sq_progress_is_quiet() && (rc == 0 || rc == SQ_EIO)) {
                double dt = sq_now() - t0;
                fprintf(stderr, "qgen: %lld prompt + %lld completion tokens; %.1f completion tokens/s, %.1f questions/s\n",
                        (long long)c.prompt_tokens, (long long)c.completion_tokens,
                        dt > 0 ? (double)c.completion_tokens / dt : 0.0,
                        dt > 0 ? (double)(c.kept + c.dropped) / dt : 0.0);
            }
        }
    }
    free(q.ans);
    sq_keyset_free(q.seen);
    free(reqs);
    free(recs);
    free(slots);
    free(ids);
    return rc;
}
