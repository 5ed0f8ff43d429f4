/* scalequest generate: sample completions for every prompt of a JSONL file with a model run
 * in this process (HF folder or GGUF) or on an OpenAI-compatible server (http URL), through
 * the backend interface. Remote runs go through the client's retry and fault handling
 * (--concurrency, --url, --timeout, --max-retries, --api-key-env).
 *
 * Input records carry "id" and either "prompt" (text; --field picks another field) or
 * "messages" ([{role, content}]). Each output line is the input record plus "completions"
 * (one string per sample), "finish_reasons", "usage" and, with --logprobs, "token_ids" and
 * "logprobs" (per sample, per token). Output is appended as each request finishes; ids
 * already in the output are skipped, so a killed run resumes where it stopped (the data
 * layer's APPEND writer also cuts off a torn last line). A request that fails after its
 * retries goes to --failed (if given) and to the exit status, never to the output, so a rerun
 * tries it again. A request's seed is derived from --seed and its id, so reruns and resumed
 * runs draw the same tokens. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "scalequest/backend.h"
#include "scalequest/jsonl.h"
#include "scalequest/net.h"

#define CMD "generate"
#define CHUNK 4096

typedef struct job {
    sq_jsonl_writer *w, *failed_w;
    const char *in;
    cJSON **recs;
    sq_progress prog;
    int64_t ok, failed, ptok, ctok;
    int logprobs;
    sq_err e;
    int write_failed;
} job;

static uint64_t id_seed(uint64_t seed, const char *id) {
    uint64_t h = 1469598103934665603ull ^ seed;
    for (; *id; id++) h = (h ^ (unsigned char)*id) * 1099511628211ull;
    return h;
}

static int on_result(void *user, int i, const sq_gen_result *r) {
    job *j = user;
    sq_progress_add(&j->prog, 1);
    if (!r->ok) {
        const char *id = r->id ? r->id : "?", *err = r->error ? r->error : "unknown error";
        j->failed++;
        sq_warn("generate: request %s failed: %s", id, err);
        /* a request that fails again in a later run keeps its first entry */
        if (!j->failed_w || sq_jsonl_writer_has_id(j->failed_w, id)) return 0;
        cJSON *f = cJSON_CreateObject();
        int rc = !f || !cJSON_AddStringToObject(f, "id", id) || !cJSON_AddStringToObject(f, "error", err)
                     ? sq_fail(&j->e, SQ_ENOMEM, "out of memory")
                     : sq_jsonl_write(j->failed_w, f, &j->e);
        cJSON_Delete(f);
        if (rc) {
            j->write_failed = 1;
            return 1;
        }
        return 0;
    }
    if (sq_jsonl_writer_has_id(j->w, r->id)) {
        /* ids already in the output were skipped when read, so this one is in the input twice */
        sq_fail(&j->e, SQ_EPARSE, "%s: id \"%s\" appears more than once", j->in, r->id);
        j->write_failed = 1;
        return 1;
    }
    cJSON *rec = j->recs[i], *texts = cJSON_CreateArray(), *reasons = cJSON_CreateArray(), *usage = cJSON_CreateObject();
    cJSON *ids = j->logprobs ? cJSON_CreateArray() : NULL, *lps = j->logprobs ? cJSON_CreateArray() : NULL;
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
    if (sq_jsonl_write(j->w, rec, &j->e)) {
        j->write_failed = 1;
        return 1;
    }
    j->ok++;
    j->ptok += r->prompt_tokens;
    j->ctok += r->completion_tokens;
    return 0;
}

/* Build request i from a record; messages point into the record. */
static int make_request(cJSON *rec, const char *field, const sq_gen_params *p, uint64_t seed, sq_gen_request *q,
                        sq_chat_msg **msgs, const char *path, int64_t line, sq_err *e) {
    memset(q, 0, sizeof *q);
    q->id = sq_rec_id(rec);
    if (!q->id) return sq_fail(e, SQ_EPARSE, "%s:%lld: record has no string \"id\"", path, (long long)line);
    q->params = *p;
    q->params.seed = id_seed(seed, q->id);
    q->prompt = sq_rec_str(rec, field);
    if (q->prompt) return 0;
    const cJSON *arr = sq_rec_array(rec, "messages");
    if (!arr)
        return sq_fail(e, SQ_EPARSE, "%s:%lld: record has neither a string \"%s\" nor \"messages\"", path, (long long)line,
                       field);
    int n = cJSON_GetArraySize(arr);
    *msgs = calloc((size_t)(n > 0 ? n : 1), sizeof(sq_chat_msg));
    if (!*msgs) return sq_fail(e, SQ_ENOMEM, "out of memory");
    for (int k = 0; k < n; k++) {
        const cJSON *m = cJSON_GetArrayItem(arr, k);
        const char *role = sq_rec_str(m, "role"), *content = sq_rec_str(m, "content");
        if (!role || !content)
            return sq_fail(e, SQ_EPARSE, "%s:%lld: messages[%d] needs string role and content", path, (long long)line, k);
        (*msgs)[k] = (sq_chat_msg){role, content};
    }
    q->messages = *msgs;
    q->n_messages = n;
    return 0;
}

static int cmd_generate(int argc, char **argv) {
    const char *model = NULL, *in = NULL, *out = NULL, *field = "prompt", *failed = NULL, *key_env = NULL;
    int64_t n = 1, max_tokens = 256, top_k = 0, batch = 64, ctx = 0, concurrency = 64, retries = 6;
    double temperature = 1.0, top_p = 1.0, min_p = 0.0, timeout = 600;
    int logprobs = 0;
    sq_strlist stop = {0}, urls = {0};
    sq_opt opts[] = {
        {"model", SQ_OPT_STR, &model, "PATH|URL", "HF folder, GGUF file, or http(s)://host:port/v1#model"},
        {"in", SQ_OPT_STR, &in, "FILE", "prompts (JSONL: id + prompt or messages)"},
        {"out", SQ_OPT_STR, &out, "FILE", "output JSONL (appended; ids already there are skipped)"},
        {"failed", SQ_OPT_STR, &failed, "FILE", "append {id, error} of requests that failed (JSONL)"},
        {"field", SQ_OPT_STR, &field, "NAME", "the prompt field (default prompt)"},
        {"n", SQ_OPT_INT, &n, "N", "samples per prompt (default 1)"},
        {"temperature", SQ_OPT_DOUBLE, &temperature, "T", "0 = greedy (default 1)"},
        {"top-p", SQ_OPT_DOUBLE, &top_p, "P", "nucleus sampling (default 1 = off)"},
        {"top-k", SQ_OPT_INT, &top_k, "K", "keep the K most likely tokens (default 0 = off)"},
        {"min-p", SQ_OPT_DOUBLE, &min_p, "P", "drop tokens below P times the best (default 0 = off)"},
        {"max-tokens", SQ_OPT_INT, &max_tokens, "N", "tokens per completion at most (default 256)"},
        {"stop", SQ_OPT_LIST, &stop, "S", "stop string (repeatable; not included in the output)"},
        {"logprobs", SQ_OPT_FLAG, &logprobs, NULL, "also write token_ids and their logprobs"},
        {"batch", SQ_OPT_INT, &batch, "N", "local: sequences decoded together (default 64)"},
        {"ctx", SQ_OPT_INT, &ctx, "N", "local: prompt + completion tokens at most (default: model's, <= 4096)"},
        {"concurrency", SQ_OPT_INT, &concurrency, "N", "remote: requests in flight (default 64)"},
        {"url", SQ_OPT_LIST, &urls, "URL", "remote: another base URL of the same model (repeatable)"},
        {"timeout", SQ_OPT_DOUBLE, &timeout, "S", "remote: seconds per request (default 600)"},
        {"max-retries", SQ_OPT_INT, &retries, "N", "remote: retries per request (default 6)"},
        {"api-key-env", SQ_OPT_STR, &key_env, "VAR", "remote: env var with the API key (default OPENAI_API_KEY)"},
    };
    int npos, rc = sq_cli_parse(argc, argv, "--model PATH --in FILE --out FILE [options]", opts, SQ_ARRAY_LEN(opts),
                                NULL, 0, &npos);
    if (rc >= 0) return rc;
    if (!model || !in || !out) return sq_cli_usage_error(CMD, "--model, --in and --out are required");
    if (n < 1 || n > 1024) return sq_cli_usage_error(CMD, "--n must be 1..1024");
    if (max_tokens < 0 || max_tokens > 1 << 20) return sq_cli_usage_error(CMD, "--max-tokens out of range");
    if (temperature < 0 || top_p <= 0 || top_p > 1 || min_p < 0 || min_p > 1 || top_k < 0)
        return sq_cli_usage_error(CMD, "sampling options out of range");
    if (batch < 1 || batch > 1024 || ctx < 0) return sq_cli_usage_error(CMD, "--batch must be 1..1024, --ctx >= 0");
    if (concurrency < 1 || concurrency > 1 << 16 || retries < 0 || retries > 1000 || !(timeout > 0))
        return sq_cli_usage_error(CMD, "--concurrency must be 1..65536, --max-retries 0..1000, --timeout > 0");
    sq_progress_set_quiet(sq_common.quiet);

    sq_gen_params p;
    sq_gen_params_default(&p);
    p.n = (int)n;
    p.max_tokens = (int)max_tokens;
    p.temperature = (float)temperature;
    p.top_p = (float)top_p;
    p.top_k = (int)top_k;
    p.min_p = (float)min_p;
    p.stop = stop.items;
    p.n_stop = stop.n;
    p.logprobs = logprobs;

    job j = {0};
    j.logprobs = logprobs;
    j.in = in;
    sq_backend_opts bo;
    sq_backend_opts_default(&bo);
    bo.threads = sq_common.threads;
    bo.max_batch = (int)batch;
    bo.ctx_len = (int)ctx;
    bo.concurrency = (int)concurrency;
    bo.max_retries = (int)retries;
    bo.timeout_s = timeout;
    if (key_env) bo.api_key_env = key_env;
    bo.extra_urls = urls.items;
    bo.n_extra_urls = urls.n;
    sq_backend *b = NULL;
    sq_jsonl_reader *r = NULL;
    int status = SQ_EXIT_FAIL;
    cJSON **recs = calloc(CHUNK, sizeof(cJSON *));
    sq_gen_request *reqs = calloc(CHUNK, sizeof(sq_gen_request));
    sq_chat_msg **msgs = calloc(CHUNK, sizeof(sq_chat_msg *));
    int64_t total = 0, skipped = 0;
    if (!recs || !reqs || !msgs) {
        sq_fail(&j.e, SQ_ENOMEM, "out of memory");
        goto done;
    }
    j.recs = recs;
    /* Count first, so progress can show an ETA. */
    if (sq_jsonl_open(&r, in, 0, &j.e)) goto done;
    const char *line;
    size_t len;
    while ((rc = sq_jsonl_next_line(r, &line, &len, &j.e)) == 1) total++;
    sq_jsonl_close(r);
    r = NULL;
    if (rc < 0) goto done;
    if (sq_jsonl_writer_open(&j.w, out, SQ_JSONL_APPEND, &j.e)) goto done;
    if (failed && sq_jsonl_writer_open(&j.failed_w, failed, SQ_JSONL_APPEND, &j.e)) goto done;
    if (sq_backend_open(&b, model, &bo, &j.e)) goto done;
    if (sq_jsonl_open(&r, in, 0, &j.e)) goto done;
    sq_progress_start(&j.prog, "generate", total);
    double t0 = sq_now();
    for (;;) {
        int k = 0;
        cJSON *rec;
        while (k < CHUNK && (rc = sq_jsonl_next(r, &rec, &j.e)) == 1) {
            const char *id = sq_rec_id(rec);
            if (id && sq_jsonl_writer_has_id(j.w, id)) {
                cJSON_Delete(rec);
                skipped++;
                sq_progress_add(&j.prog, 1);
                continue;
            }
            recs[k] = rec;
            if (make_request(rec, field, &p, sq_common.seed, &reqs[k], &msgs[k], in, sq_jsonl_line_number(r), &j.e)) {
                rc = -1;
                k++;
                break;
            }
            k++;
        }
        /* the backend's own error must not overwrite the reason on_result stopped it */
        sq_err ge = {0};
        int grc = rc >= 0 && k > 0 ? sq_backend_generate(b, reqs, k, on_result, &j, &ge) : 0;
        if (grc && !j.write_failed) j.e = ge;
        for (int i = 0; i < k; i++) {
            cJSON_Delete(recs[i]);
            free(msgs[i]);
            msgs[i] = NULL;
        }
        if (rc < 0 || grc || j.write_failed) goto done;
        if (rc == 0) break;
    }
    sq_progress_finish(&j.prog);
    if (sq_jsonl_writer_close(j.w, &j.e)) {
        j.w = NULL;
        goto done;
    }
    j.w = NULL;
    if (j.failed_w && sq_jsonl_writer_close(j.failed_w, &j.e)) {
        j.failed_w = NULL;
        goto done;
    }
    j.failed_w = NULL;
    if (skipped) sq_info("generate: %lld records already in %s were skipped", (long long)skipped, out);
    if (!sq_common.quiet) {
        double dt = sq_now() - t0;
        sq_http_stats hs;
        char retries_note[48] = "";
        if (sq_backend_is_http(b) && sq_http_backend_stats(b, &hs, NULL) == 0)
            snprintf(retries_note, sizeof retries_note, "; %lld retries", (long long)hs.retries);
        sq_info("generate: %lld ok, %lld failed; %lld prompt + %lld completion tokens; %.1f completion tokens/s%s",
                (long long)j.ok, (long long)j.failed, (long long)j.ptok, (long long)j.ctok,
                dt > 0 ? (double)j.ctok / dt : 0.0, retries_note);
    }
    if (j.failed) {
        sq_fail(&j.e, SQ_EIO, "%lld requests failed after their retries (not written; a rerun retries them)%s%s",
                (long long)j.failed, failed ? "; see " : "", failed ? failed : "");
        goto done;
    }
    status = SQ_EXIT_OK;
done:
    if (status) sq_cli_fail(CMD, "%s", j.e.msg);
    if (j.w) sq_jsonl_writer_abort(j.w);
    if (j.failed_w) sq_jsonl_writer_abort(j.failed_w);
    if (r) sq_jsonl_close(r);
    sq_backend_close(b);
    free(recs);
    free(reqs);
    free(msgs);
    return status;
}

SQ_COMMAND(generate, "generate", "sample completions for a JSONL of prompts (local model or http server)", cmd_generate);
