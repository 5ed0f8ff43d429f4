/* scalequest complete: run the prompts of a JSONL file through a model (remote or local)
 * and append each answer to a JSONL output as it arrives.
 *
 * Input records carry "id" and either "prompt" (text) or "messages" ([{role, content}]).
 * Each output line is the input record plus "completions" (one string per sample),
 * "finish_reasons" and "usage". The output is opened in append mode: ids already present
 * are skipped, so an interrupted run continues where it stopped, and a torn last line left
 * by a kill is cut off first (the data layer's APPEND writer does both). Requests that fail
 * after their retries go to --failed (if given) and to the exit status, never to the output,
 * so a rerun tries them again. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "scalequest/backend.h"
#include "scalequest/jsonl.h"
#include "scalequest/net.h"

#define CHUNK 4096

/* ---- the set of ids already written ----------------------------------------------------- */

typedef struct idset {
    char **slot;
    size_t cap, n;
} idset;

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int idset_add(idset *s, const char *id); /* 1 added, 0 present, <0 OOM */

static int idset_grow(idset *s) {
    idset g = {calloc(s->cap ? s->cap * 2 : 1024, sizeof(char *)), s->cap ? s->cap * 2 : 1024, 0};
    if (!g.slot) return SQ_ENOMEM;
    for (size_t i = 0; i < s->cap; i++)
        if (s->slot[i]) {
            size_t j = hash_str(s->slot[i]) & (g.cap - 1);
            while (g.slot[j]) j = (j + 1) & (g.cap - 1);
            g.slot[j] = s->slot[i];
            g.n++;
        }
    free(s->slot);
    *s = g;
    return 0;
}

static int idset_has(const idset *s, const char *id) {
    if (!s->cap) return 0;
    for (size_t j = hash_str(id) & (s->cap - 1); s->slot[j]; j = (j + 1) & (s->cap - 1))
        if (!strcmp(s->slot[j], id)) return 1;
    return 0;
}

static int idset_add(idset *s, const char *id) {
    if (idset_has(s, id)) return 0;
    if ((s->n + 1) * 2 > s->cap && idset_grow(s)) return SQ_ENOMEM;
    size_t j = hash_str(id) & (s->cap - 1);
    while (s->slot[j]) j = (j + 1) & (s->cap - 1);
    if (!(s->slot[j] = sq_strdup(id))) return SQ_ENOMEM;
    s->n++;
    return 1;
}

static void idset_free(idset *s) {
    for (size_t i = 0; i < s->cap; i++) free(s->slot[i]);
    free(s->slot);
}

/* ---- one chunk of requests ---------------------------------------------------------------- */

typedef struct chunk {
    cJSON *recs[CHUNK];
    sq_gen_request reqs[CHUNK];
    sq_chat_msg *msgs[CHUNK];
    int n;
} chunk;

typedef struct run {
    sq_jsonl_writer *out, *failed_out;
    chunk *c;
    int64_t ok, failed, ctok, ptok;
    sq_progress prog;
    sq_err err;
} run;

static int on_result(void *user, int i, const sq_gen_result *r) {
    run *st = user;
    cJSON *rec = st->c->recs[i];
    if (!r->ok) {
        st->failed++;
        sq_warn("complete: %s failed: %s", r->id, r->error ? r->error : "unknown error");
        if (st->failed_out) {
            cJSON *f = cJSON_CreateObject();
            cJSON_AddStringToObject(f, "id", r->id);
            cJSON_AddStringToObject(f, "error", r->error ? r->error : "unknown error");
            /* a request that fails again in a later run keeps its first entry */
            int rc = sq_jsonl_writer_has_id(st->failed_out, r->id) ? 0 : sq_jsonl_write(st->failed_out, f, &st->err);
            cJSON_Delete(f);
            if (rc) return 1;
        }
        sq_progress_add(&st->prog, 1);
        return 0;
    }
    cJSON *texts = cJSON_CreateArray(), *reasons = cJSON_CreateArray(), *usage = cJSON_CreateObject();
    for (int k = 0; k < r->n_choices; k++) {
        cJSON_AddItemToArray(texts, cJSON_CreateString(r->choices[k].text ? r->choices[k].text : ""));
        cJSON_AddItemToArray(reasons, cJSON_CreateString(r->choices[k].finish_reason ? r->choices[k].finish_reason : ""));
    }
    cJSON_AddNumberToObject(usage, "prompt_tokens", r->prompt_tokens);
    cJSON_AddNumberToObject(usage, "completion_tokens", r->completion_tokens);
    cJSON_DeleteItemFromObjectCaseSensitive(rec, "completions");
    cJSON_DeleteItemFromObjectCaseSensitive(rec, "finish_reasons");
    cJSON_DeleteItemFromObjectCaseSensitive(rec, "usage");
    cJSON_AddItemToObject(rec, "completions", texts);
    cJSON_AddItemToObject(rec, "finish_reasons", reasons);
    cJSON_AddItemToObject(rec, "usage", usage);
    if (sq_jsonl_write(st->out, rec, &st->err)) return 1;
    st->ok++;
    st->ptok += r->prompt_tokens;
    st->ctok += r->completion_tokens;
    sq_progress_add(&st->prog, 1);
    return 0;
}

/* Fill request i of the chunk from its record; the record keeps every string alive. */
static int make_request(chunk *c, int i, const sq_gen_params *p, const char *path, int64_t line, sq_err *e) {
    cJSON *rec = c->recs[i];
    sq_gen_request *r = &c->reqs[i];
    memset(r, 0, sizeof *r);
    r->id = cJSON_GetObjectItemCaseSensitive(rec, "id")->valuestring;
    r->params = *p;
    r->params.seed = p->seed ^ hash_str(r->id);
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(rec, "prompt");
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(rec, "messages");
    if (cJSON_IsString(prompt)) {
        r->prompt = prompt->valuestring;
        return 0;
    }
    int n = cJSON_IsArray(msgs) ? cJSON_GetArraySize(msgs) : 0;
    if (n <= 0) return sq_fail(e, SQ_EPARSE, "%s:%lld: needs a string \"prompt\" or a \"messages\" array", path, (long long)line);
    c->msgs[i] = calloc((size_t)n, sizeof(sq_chat_msg));
    if (!c->msgs[i]) return sq_fail(e, SQ_ENOMEM, "out of memory");
    int k = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!cJSON_IsString(role) || !cJSON_IsString(content))
            return sq_fail(e, SQ_EPARSE, "%s:%lld: message %d needs string \"role\" and \"content\"", path, (long long)line, k);
        c->msgs[i][k++] = (sq_chat_msg){role->valuestring, content->valuestring};
    }
    r->messages = c->msgs[i];
    r->n_messages = n;
    return 0;
}

static void chunk_clear(chunk *c) {
    for (int i = 0; i < c->n; i++) {
        cJSON_Delete(c->recs[i]);
        free(c->msgs[i]);
        c->msgs[i] = NULL;
    }
    c->n = 0;
}

static int64_t count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int64_t n = 0;
    int ch;
    while ((ch = getc(f)) != EOF) n += ch == '\n';
    fclose(f);
    return n;
}

static int cmd_complete(int argc, char **argv) {
    const char *model = NULL, *in = NULL, *out = NULL, *failed = NULL, *key_env = NULL;
    int64_t concurrency = 64, retries = 6, max_tokens = 256, n = 1, top_k = 0, max_batch = 64;
    double timeout = 600, temperature = 1.0, top_p = 1.0, min_p = 0;
    sq_strlist urls = {0}, stops = {0};
    const sq_opt opts[] = {
        {"model", SQ_OPT_STR, &model, "SPEC", "http(s)://host:port/v1#name, local:PATH or a model path (required)"},
        {"in", SQ_OPT_STR, &in, "PATH", "input JSONL: id + prompt or messages (required)"},
        {"out", SQ_OPT_STR, &out, "PATH", "output JSONL, appended to and resumed (required)"},
        {"failed", SQ_OPT_STR, &failed, "PATH", "append {id, error} of requests that failed"},
        {"concurrency", SQ_OPT_INT, &concurrency, "N", "remote: requests in flight (default 64)"},
        {"url", SQ_OPT_LIST, &urls, "URL", "remote: another base URL of the same model (repeatable)"},
        {"timeout", SQ_OPT_DOUBLE, &timeout, "S", "remote: seconds per request (default 600)"},
        {"max-retries", SQ_OPT_INT, &retries, "N", "remote: retries per request (default 6)"},
        {"api-key-env", SQ_OPT_STR, &key_env, "VAR", "remote: env var with the API key (default OPENAI_API_KEY)"},
        {"max-batch", SQ_OPT_INT, &max_batch, "N", "local: sequences decoded together (default 64)"},
        {"max-tokens", SQ_OPT_INT, &max_tokens, "N", "tokens per completion (default 256)"},
        {"temperature", SQ_OPT_DOUBLE, &temperature, "X", "sampling temperature (default 1; 0 greedy)"},
        {"top-p", SQ_OPT_DOUBLE, &top_p, "X", "nucleus sampling (default 1 = off)"},
        {"top-k", SQ_OPT_INT, &top_k, "N", "top-k sampling (default 0 = off)"},
        {"min-p", SQ_OPT_DOUBLE, &min_p, "X", "min-p sampling (default 0 = off)"},
        {"n", SQ_OPT_INT, &n, "N", "samples per prompt (default 1)"},
        {"stop", SQ_OPT_LIST, &stops, "S", "stop string (repeatable)"},
    };
    int npos;
    int rc = sq_cli_parse(argc, argv, "--model SPEC --in IN.jsonl --out OUT.jsonl", opts, SQ_ARRAY_LEN(opts), NULL, 0,
                          &npos);
    if (rc >= 0) return rc;
    if (!model || !in || !out) return sq_cli_usage_error("complete", "--model, --in and --out are required");
    if (concurrency < 1 || retries < 0 || max_tokens < 1 || n < 1 || timeout <= 0)
        return sq_cli_usage_error("complete", "--concurrency, --max-tokens, --n and --timeout must be positive");

    sq_backend_opts bo;
    sq_backend_opts_default(&bo);
    bo.threads = sq_common.threads;
    bo.concurrency = (int)concurrency;
    bo.max_retries = (int)retries;
    bo.timeout_s = timeout;
    bo.max_batch = (int)max_batch;
    if (key_env) bo.api_key_env = key_env;
    bo.extra_urls = urls.items;
    bo.n_extra_urls = urls.n;
    sq_gen_params gp;
    sq_gen_params_default(&gp);
    gp.max_tokens = (int)max_tokens;
    gp.temperature = (float)temperature;
    gp.top_p = (float)top_p;
    gp.top_k = (int)top_k;
    gp.min_p = (float)min_p;
    gp.n = (int)n;
    gp.seed = sq_common.seed;
    gp.stop = stops.items;
    gp.n_stop = stops.n;

    sq_err e = {0};
    idset seen_in = {0};
    run st = {0};
    sq_jsonl_reader *rd = NULL;
    chunk *c = calloc(1, sizeof *c);
    sq_backend *b = NULL;
    int status = SQ_EXIT_FAIL;
    if (!c) {
        sq_fail(&e, SQ_ENOMEM, "out of memory");
        goto done;
    }
    st.c = c;
    if (sq_jsonl_open(&rd, in, 0, &e)) goto done;
    if (sq_jsonl_writer_open(&st.out, out, SQ_JSONL_APPEND, &e)) goto done;
    if (failed && sq_jsonl_writer_open(&st.failed_out, failed, SQ_JSONL_APPEND, &e)) goto done;
    if (sq_backend_open(&b, model, &bo, &e)) goto done;
    int64_t total = count_lines(in), already = sq_jsonl_writer_count(st.out);
    sq_progress_start(&st.prog, "complete", total > already ? total - already : 0);
    int64_t skipped = 0;
    double t0 = sq_now();
    for (;;) {
        cJSON *rec = NULL;
        int got = sq_jsonl_next(rd, &rec, &e);
        if (got < 0) goto done;
        if (got > 0) {
            int64_t lineno = sq_jsonl_line_number(rd);
            const char *id = sq_rec_id(rec);
            if (!id) {
                cJSON_Delete(rec);
                sq_fail(&e, SQ_EPARSE, "%s:%lld: no string \"id\"", in, (long long)lineno);
                goto done;
            }
            int fresh = idset_add(&seen_in, id);
            if (fresh <= 0) {
                cJSON_Delete(rec);
                if (fresh < 0) sq_fail(&e, SQ_ENOMEM, "out of memory");
                else sq_fail(&e, SQ_EPARSE, "%s:%lld: id \"%s\" appears twice", in, (long long)lineno, sq_rec_id(rec));
                goto done;
            }
            if (sq_jsonl_writer_has_id(st.out, id)) {
                skipped++;
                cJSON_Delete(rec);
                continue;
            }
            c->recs[c->n] = rec;
            c->msgs[c->n] = NULL;
            c->n++;
            if (make_request(c, c->n - 1, &gp, in, lineno, &e)) goto done;
        }
        if (c->n == CHUNK || (got == 0 && c->n > 0)) {
            int rc = sq_backend_generate(b, c->reqs, c->n, on_result, &st, &e);
            if (st.err.code) {
                e = st.err;
                goto done;
            }
            if (rc) goto done;
            chunk_clear(c);
        }
        if (got == 0) break;
    }
    sq_progress_finish(&st.prog);
    if (sq_jsonl_writer_sync(st.out, &e)) goto done;
    double dt = sq_now() - t0;
    if (!sq_common.quiet) {
        fprintf(stderr, "scalequest: complete: %lld ok, %lld failed, %lld already done; %lld prompt + %lld completion tokens",
                (long long)st.ok, (long long)st.failed, (long long)skipped, (long long)st.ptok, (long long)st.ctok);
        if (dt > 0) fprintf(stderr, "; %.1f requests/s, %.1f tokens/s", (double)(st.ok + st.failed) / dt, (double)st.ctok / dt);
        sq_http_stats hs;
        if (sq_backend_is_http(b) && sq_http_backend_stats(b, &hs, NULL) == 0)
            fprintf(stderr, "; %lld retries", (long long)hs.retries);
        fprintf(stderr, "\n");
    }
    status = st.failed ? SQ_EXIT_FAIL : SQ_EXIT_OK;
    if (st.failed) sq_cli_fail("complete", "%lld requests failed after their retries%s%s", (long long)st.failed,
                               failed ? "; see " : "", failed ? failed : "");
done:
    if (status == SQ_EXIT_FAIL && e.code) sq_cli_fail("complete", "%s", e.msg);
    if (c) chunk_clear(c);
    free(c);
    sq_jsonl_close(rd);
    sq_err ce = {0};
    if (st.out && sq_jsonl_writer_close(st.out, &ce) && status == SQ_EXIT_OK)
        status = sq_cli_fail("complete", "%s", ce.msg);
    if (st.failed_out && sq_jsonl_writer_close(st.failed_out, &ce) && status == SQ_EXIT_OK)
        status = sq_cli_fail("complete", "%s", ce.msg);
    sq_backend_close(b);
    idset_free(&seen_in);
    return status;
}

SQ_COMMAND(complete, "complete", "run JSONL prompts through a model, appending answers (resumable)", cmd_complete);
