/* The OpenAI bridge end to end in one process: the HTTP client backend talks to the server,
 * which serves a small deterministic backend written here, so every answer can be checked. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "scalequest/backend.h"
#include "scalequest/chat_template.h"
#include "scalequest/net.h"
#include "test.h"

/* ---- a deterministic backend: echoes its input ------------------------------------------- */

typedef struct echo_backend {
    sq_backend base;
    int calls, max_batch, total;
    pthread_mutex_t mu;
} echo_backend;

static int echo_generate(sq_backend *b, const sq_gen_request *reqs, int n, sq_gen_callback cb, void *user, sq_err *e) {
    echo_backend *eb = (echo_backend *)b;
    pthread_mutex_lock(&eb->mu);
    eb->calls++;
    eb->total += n;
    if (n > eb->max_batch) eb->max_batch = n;
    pthread_mutex_unlock(&eb->mu);
    /* Answer in reverse order: results may arrive in any order. */
    for (int i = n - 1; i >= 0; i--) {
        const sq_gen_request *r = &reqs[i];
        const char *in = r->prompt ? r->prompt : r->messages[r->n_messages - 1].content;
        sq_gen_choice ch[16];
        char text[16][600];
        float lp[3] = {-0.5f, -1.0f, -1.5f};
        static const char *const toks[3] = {"x", "\xc3\xa9", "z"};
        /* two alternatives per step: the chosen token, then "w" */
        static const char *const tops[6] = {"x", "w", "\xc3\xa9", "w", "z", "w"};
        static const float top_lp[6] = {-0.5f, -2.0f, -1.0f, -2.0f, -1.5f, -2.0f};
        int nc = SQ_MIN(r->params.n, 16);
        for (int k = 0; k < nc; k++) {
            snprintf(text[k], sizeof text[k], "%s:%s|%d|%d|%llu", r->prompt ? "c" : r->messages[0].role, in, k,
                     r->params.max_tokens, (unsigned long long)r->params.seed);
            ch[k] = (sq_gen_choice){.text = text[k], .n_tokens = 3, .logprobs = r->params.logprobs ? lp : NULL,
                                    .finish_reason = "length", .token_texts = r->params.logprobs ? toks : NULL,
                                    .n_top = 2, .top_logprobs = top_lp, .top_texts = tops};
        }
        sq_gen_result res = {.id = r->id, .ok = 1, .choices = ch, .n_choices = nc,
                             .prompt_tokens = (int)strlen(in), .completion_tokens = 3 * nc};
        if (!strcmp(in, "fail-me")) res = (sq_gen_result){.id = r->id, .ok = 0, .error = "asked to fail"};
        if (!strcmp(in, "too-long"))
            res = (sq_gen_result){.id = r->id, .ok = 0, .bad_request = 1,
                                  .error = "this model's maximum context length is 8 tokens, but the prompt has 9 tokens"};
        if (cb(user, i, &res)) return sq_fail(e, SQ_EINTR, "stopped");
    }
    return 0;
}

static void echo_close(sq_backend *b) {
    (void)b;
}

static const struct sq_backend_ops echo_ops = {echo_generate, echo_close};

static void echo_init(echo_backend *eb) {
    memset(eb, 0, sizeof *eb);
    eb->base.ops = &echo_ops;
    snprintf(eb->base.name, sizeof eb->base.name, "echo-model");
    pthread_mutex_init(&eb->mu, NULL);
}

/* ---- collecting results --------------------------------------------------------------- */

typedef struct collect {
    int n;
    int *seen;
    char **text;
    int ok, failed;
    char last_error[256];
    int64_t ptok, ctok;
} collect;

static int on_res(void *user, int i, const sq_gen_result *r) {
    collect *c = user;
    if (i < 0 || i >= c->n) return 1;
    c->seen[i]++;
    if (r->ok) {
        c->ok++;
        free(c->text[i]);
        c->text[i] = sq_strdup(r->n_choices > 0 ? r->choices[r->n_choices - 1].text : "");
        c->ptok += r->prompt_tokens;
        c->ctok += r->completion_tokens;
    } else {
        c->failed++;
        snprintf(c->last_error, sizeof c->last_error, "%s", r->error ? r->error : "");
    }
    return 0;
}

static void collect_init(collect *c, int n) {
    memset(c, 0, sizeof *c);
    c->n = n;
    c->seen = calloc((size_t)n, sizeof *c->seen);
    c->text = calloc((size_t)n, sizeof *c->text);
}

static void collect_free(collect *c) {
    for (int i = 0; i < c->n; i++) free(c->text[i]);
    free(c->text);
    free(c->seen);
}

static sq_server *start_server(echo_backend *eb, sq_server_opts *so) {
    sq_err e = {0};
    sq_server *s = NULL;
    if (sq_server_open(&s, &eb->base, so, &e)) {
        sq_test_fail(__FILE__, __LINE__, "server: %s", e.msg);
        return NULL;
    }
    return s;
}

SQ_TEST(spec_parsing) {
    char *base = NULL, *model = NULL;
    sq_err e = {0};
    CHECK_EQ_INT(sq_http_parse_spec("http://127.0.0.1:8000/v1/#qwen2-math", &base, &model, &e), 0);
    CHECK_EQ_STR(base, "http://127.0.0.1:8000/v1");
    CHECK_EQ_STR(model, "qwen2-math");
    free(base);
    free(model);
    CHECK(sq_http_parse_spec("http://127.0.0.1:8000/v1", &base, &model, &e) == SQ_EINVAL);
    CHECK(strstr(e.msg, "names no model") != NULL);
    CHECK(sq_http_parse_spec("ftp://x/v1#m", &base, &model, &e) == SQ_EINVAL);
    CHECK(sq_http_parse_spec("http://#m", &base, &model, &e) == SQ_EINVAL);
    sq_backend *b = NULL;
    CHECK(sq_backend_open(&b, "no/such/model/here", NULL, &e) == SQ_ENOTFOUND);
    CHECK(strstr(e.msg, "no/such/model/here") != NULL);
    CHECK(sq_backend_open(&b, "local:", NULL, &e) == SQ_EINVAL);
    CHECK(b == NULL);
}

SQ_TEST(client_server_roundtrip) {
    echo_backend eb;
    echo_init(&eb);
    sq_server_opts so;
    sq_server_opts_default(&so);
    so.batch_window_s = 0.01;
    sq_server *s = start_server(&eb, &so);
    REQUIRE(s);
    char spec[128];
    snprintf(spec, sizeof spec, "http://127.0.0.1:%d/v1#echo-model", sq_server_port(s));
    sq_backend_opts bo;
    sq_backend_opts_default(&bo);
    bo.concurrency = 16;
    bo.max_retries = 0;
    sq_backend *b = NULL;
    sq_err e = {0};
    REQUIRE(sq_backend_open(&b, spec, &bo, &e) == 0);
    CHECK(sq_backend_is_http(b));
    CHECK_EQ_STR(b->name, "echo-model");

    enum { N = 200 };
    sq_gen_request reqs[N];
    char prompts[N][32], ids[N][16];
    sq_chat_msg msgs[N][2];
    for (int i = 0; i < N; i++) {
        snprintf(prompts[i], sizeof prompts[i], "question \"%d\"\n\u00e9", i);
        snprintf(ids[i], sizeof ids[i], "r%d", i);
        memset(&reqs[i], 0, sizeof reqs[i]);
        reqs[i].id = ids[i];
        sq_gen_params_default(&reqs[i].params);
        reqs[i].params.max_tokens = 10 + i % 7;
        reqs[i].params.seed = (uint64_t)i * 1000003u;
        if (i % 2) {
            msgs[i][0] = (sq_chat_msg){"system", "be brief"};
            msgs[i][1] = (sq_chat_msg){"user", prompts[i]};
            reqs[i].messages = msgs[i];
            reqs[i].n_messages = 2;
        } else {
            reqs[i].prompt = prompts[i];
        }
        if (i % 10 == 0) reqs[i].params.n = 3;
    }
    collect c;
    collect_init(&c, N);
    REQUIRE(sq_backend_generate(b, reqs, N, on_res, &c, &e) == 0);
    CHECK_EQ_INT(c.ok, N);
    CHECK_EQ_INT(c.failed, 0);
    int wrong = 0;
    for (int i = 0; i < N; i++) {
        char want[600];
        snprintf(want, sizeof want, "%s:%s|%d|%d|%llu", i % 2 ? "system" : "c", prompts[i], reqs[i].params.n - 1,
                 reqs[i].params.max_tokens, (unsigned long long)reqs[i].params.seed);
        if (c.seen[i] != 1 || !c.text[i] || strcmp(c.text[i], want)) {
            if (!wrong++) sq_test_fail(__FILE__, __LINE__, "request %d: seen %d, got '%s', want '%s'", i, c.seen[i],
                                       c.text[i] ? c.text[i] : "(null)", want);
        }
    }
    CHECK_EQ_INT(wrong, 0);
    sq_http_stats st;
    REQUIRE(sq_http_backend_stats(b, &st, &e) == 0);
    CHECK_EQ_INT(st.requests_ok, N);
    CHECK_EQ_INT(st.prompt_tokens, c.ptok);
    CHECK_EQ_INT(st.completion_tokens, c.ctok);
    CHECK(c.ctok == 3 * (N + 2 * (N / 10)));
    /* 16 clients at once: the server must have put several into one backend batch. */
    CHECK(eb.max_batch > 1);
    CHECK_EQ_INT(eb.total, N);
    sq_server_stats ss;
    sq_server_get_stats(s, &ss);
    CHECK_EQ_INT(ss.requests, N);
    CHECK_EQ_INT(ss.batched_requests, N);

    /* A backend failure reaches the client as a failure, not retried forever. */
    sq_gen_request bad = {.id = "bad", .prompt = "fail-me"};
    sq_gen_params_default(&bad.params);
    collect c2;
    collect_init(&c2, 1);
    CHECK_EQ_INT(sq_backend_generate(b, &bad, 1, on_res, &c2, &e), 0);
    CHECK_EQ_INT(c2.failed, 1);
    CHECK(strstr(c2.last_error, "asked to fail") != NULL);
    collect_free(&c2);
    collect_free(&c);
    sq_backend_close(b);
    sq_server_close(s);
}

/* ---- raw HTTP: bad requests get a 4xx and an OpenAI-style error ---------------------- */

static size_t sink(char *p, size_t sz, size_t n, void *u) {
    sq_buf_append(u, p, sz * n);
    return sz * n;
}

static long post_as(int port, const char *path, const char *ctype, const char *body, size_t len, sq_buf *out) {
    char url[128], cth[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    snprintf(cth, sizeof cth, "Content-Type: %s", ctype);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, cth);
    h = curl_slist_append(h, "Expect:");
    sq_buf_reset(out);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    long status = 0;
    CURLcode cc = curl_easy_perform(c);
    if (cc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    else fprintf(stderr, "curl: %s\n", curl_easy_strerror(cc));
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

static long post(int port, const char *path, const char *body, size_t len, sq_buf *out) {
    return post_as(port, path, "application/json", body, len, out);
}

SQ_TEST(bad_requests_get_4xx) {
    echo_backend eb;
    echo_init(&eb);
    sq_server_opts so;
    sq_server_opts_default(&so);
    so.max_body = 4096;
    so.max_tokens_limit = 100;
    sq_server *s = start_server(&eb, &so);
    REQUIRE(s);
    int port = sq_server_port(s);
    sq_buf out = {0};
    struct {
        const char *path, *body;
        long status;
        const char *needle;
    } cases[] = {
        {"/v1/completions", "{\"prompt\": \"hi\"", 400, "not valid JSON"},
        {"/v1/completions", "[1,2]", 400, "JSON object"},
        {"/v1/completions", "{\"model\":\"echo-model\"}", 400, "'prompt' is required"},
        {"/v1/completions", "{\"prompt\": 5}", 400, "'prompt' must be a string"},
        {"/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":\"ten\"}", 400, "'max_tokens' must be an integer"},
        {"/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":101}", 400, "outside the accepted range"},
        {"/v1/completions", "{\"prompt\":\"x\",\"temperature\":-1}", 400, "temperature"},
        {"/v1/completions", "{\"prompt\":\"x\",\"stop\":[1]}", 400, "'stop' entries"},
        {"/v1/completions", "{\"prompt\":\"x\",\"model\":\"gpt-9\"}", 404, "gpt-9"},
        {"/v1/completions", "{\"prompt\":\"x\",\"model\":7}", 400, "'model' must be a string"},
        {"/v1/completions", "{\"prompt\":\"x\",\"stream\":\"yes\"}", 400, "'stream' must be a boolean"},
        {"/v1/chat/completions", "{\"messages\":\"hi\"}", 400, "messages"},
        {"/v1/chat/completions", "{\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}", 400, "role"},
        {"/v1/chat/completions", "{\"messages\":[{\"role\":\"user\"}]}", 400, "content"},
        {"/v1/nothing", "{}", 404, "no endpoint"},
        /* as vLLM: the model is named; bodies are UTF-8; a NUL would cut a C string short */
        {"/v1/completions", "{\"prompt\":\"x\"}", 400, "'model' is required"},
        {"/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400, "'model' is required"},
        {"/v1/completions", "{\"model\":\"echo-model\",\"prompt\":\"a\xff\"}", 400, "not valid UTF-8 (byte 33)"},
        {"/v1/completions", "{\"model\":\"echo-model\",\"prompt\":\"\xed\xa0\x80\"}", 400, "not valid UTF-8"},
        {"/v1/completions", "{\"model\":\"echo-model\",\"prompt\":\"a\\u0000b\"}", 400, "\\u0000 (byte 33)"},
        {"/v1/completions", "{\"model\":\"echo-model\",\"prompt\":[\"a\",7]}", 400, "list of strings"},
        {"/v1/completions", "{\"model\":\"echo-model\",\"prompt\":[]}", 400, "1 to 64 strings"},
        {"/v1/completions", "{\"model\":\"echo-model\",\"prompt\":\"x\",\"logprobs\":21}", 400, "logprobs"},
        {"/v1/models", "{}", 405, "GET"},
    };
    for (size_t i = 0; i < SQ_ARRAY_LEN(cases); i++) {
        long st = post(port, cases[i].path, cases[i].body, strlen(cases[i].body), &out);
        CHECKF(st == cases[i].status, "case %zu (%s): status %ld, want %ld: %s", i, cases[i].body, st,
               cases[i].status, out.data ? out.data : "");
        CHECKF(out.data && strstr(out.data, "\"error\"") && strstr(out.data, cases[i].needle),
               "case %zu: body '%s' lacks '%s'", i, out.data ? out.data : "", cases[i].needle);
    }
    /* A body over the limit: 413, and the server goes on. */
    size_t big = 64 * 1024;
    char *huge = malloc(big + 1);
    REQUIRE(huge);
    memset(huge, 'a', big);
    memcpy(huge, "{\"prompt\":\"", 11);
    huge[big - 2] = '"';
    huge[big - 1] = '}';
    huge[big] = 0;
    CHECK_EQ_INT(post(port, "/v1/completions", huge, big, &out), 413);
    CHECK(out.data && strstr(out.data, "larger than"));
    free(huge);
    const char *good = "{\"model\":\"echo-model\",\"prompt\":\"ok\",\"max_tokens\":5,\"logprobs\":1}";
    CHECK_EQ_INT(post(port, "/v1/completions", good, strlen(good), &out), 200);
    CHECK(out.data && strstr(out.data, "\"text\":\"c:ok|0|5|0\"") && strstr(out.data, "\"token_logprobs\":[-0.5,-1,-1.5]"));
    CHECK(out.data && strstr(out.data, "\"total_tokens\":5"));
    /* an escaped backslash before u0000 is text, not a NUL */
    const char *bs = "{\"model\":\"echo-model\",\"prompt\":\"\\\\u0000\",\"max_tokens\":5}";
    CHECK_EQ_INT(post(port, "/v1/completions", bs, strlen(bs), &out), 200);
    CHECKF(out.data && strstr(out.data, "\"text\":\"c:\\\\u0000|0|5|0\""), "%s", out.data ? out.data : "");
    /* a body declared as text is refused as vLLM refuses it */
    CHECK_EQ_INT(post_as(port, "/v1/completions", "text/plain", good, strlen(good), &out), 415);
    CHECK(out.data && strstr(out.data, "application/json"));
    CHECK_EQ_INT(post_as(port, "/v1/completions", "application/json; charset=utf-8", good, strlen(good), &out), 200);
    /* a prompt longer than the context is the client's error: 400 with the token counts */
    const char *tl = "{\"model\":\"echo-model\",\"prompt\":\"too-long\"}";
    CHECK_EQ_INT(post(port, "/v1/completions", tl, strlen(tl), &out), 400);
    CHECKF(out.data && strstr(out.data, "maximum context length is 8 tokens") && strstr(out.data, "invalid_request_error"),
           "%s", out.data ? out.data : "");
    const char *chat = "{\"model\":\"echo-model\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]}]}";
    CHECK_EQ_INT(post(port, "/v1/chat/completions", chat, strlen(chat), &out), 200);
    CHECK(out.data && strstr(out.data, "\"content\":\"user:ab|0|256|0\"") && strstr(out.data, "chat.completion"));
    const char *sse = "{\"model\":\"echo-model\",\"messages\":[{\"role\":\"user\",\"content\":\"s\"}],\"stream\":true,"
                      "\"stream_options\":{\"include_usage\":true}}";
    CHECK_EQ_INT(post(port, "/v1/chat/completions", sse, strlen(sse), &out), 200);
    CHECK(out.data && !strncmp(out.data, "data: {", 7) && strstr(out.data, "\"delta\":{\"role\":\"assistant\","
                                                                           "\"content\":\"user:s|0|256|0\"}"));
    CHECK(out.data && strstr(out.data, "\"finish_reason\":\"length\"") && strstr(out.data, "\"total_tokens\":4"));
    CHECK(out.data && strlen(out.data) > 14 && !strcmp(out.data + strlen(out.data) - 14, "data: [DONE]\n\n"));
    CHECK_EQ_INT(post(port, "/health", NULL, 0, &out), 200);
    CHECK(out.data && strstr(out.data, "ok"));
    CHECK_EQ_INT(post(port, "/v1/models", NULL, 0, &out), 200);
    CHECK(out.data && strstr(out.data, "\"id\":\"echo-model\""));
    sq_server_stats ss;
    sq_server_get_stats(s, &ss);
    CHECK_EQ_INT(ss.errors_4xx, (int64_t)SQ_ARRAY_LEN(cases) + 3);
    sq_buf_free(&out);
    sq_server_close(s);
}

SQ_TEST(refused_connection_fails_after_retries) {
    /* Nothing listens on this port (the server is opened and closed to find a free one). */
    echo_backend eb;
    echo_init(&eb);
    sq_server_opts so;
    sq_server_opts_default(&so);
    sq_server *s = start_server(&eb, &so);
    REQUIRE(s);
    int port = sq_server_port(s);
    sq_server_close(s);
    char spec[128];
    snprintf(spec, sizeof spec, "http://127.0.0.1:%d/v1#m", port);
    sq_backend_opts bo;
    sq_backend_opts_default(&bo);
    bo.max_retries = 2;
    sq_backend *b = NULL;
    sq_err e = {0};
    REQUIRE(sq_backend_open(&b, spec, &bo, &e) == 0);
    sq_gen_request r[3] = {{.id = "a", .prompt = "x"}, {.id = "b", .prompt = "y"}, {.id = "c", .prompt = "z"}};
    for (int i = 0; i < 3; i++) sq_gen_params_default(&r[i].params);
    collect c;
    collect_init(&c, 3);
    double t0 = sq_now();
    CHECK_EQ_INT(sq_backend_generate(b, r, 3, on_res, &c, &e), 0);
    double dt = sq_now() - t0;
    CHECK_EQ_INT(c.failed, 3);
    for (int i = 0; i < 3; i++) CHECK_EQ_INT(c.seen[i], 1);
    CHECK(strstr(c.last_error, "127.0.0.1") != NULL);
    sq_http_stats st;
    sq_http_backend_stats(b, &st, &e);
    CHECK_EQ_INT(st.attempts, 9);
    CHECK_EQ_INT(st.retries, 6);
    /* two waits of 0.5 s * 2^k with jitter in [0.5, 1): at least 0.25 + 0.5 */
    CHECK(dt >= 0.7);
    collect_free(&c);
    sq_backend_close(b);
}

SQ_TEST(load_spreads_over_urls) {
    echo_backend a, b2;
    echo_init(&a);
    echo_init(&b2);
    sq_server_opts so;
    sq_server_opts_default(&so);
    so.batch_window_s = 0;
    sq_server *s1 = start_server(&a, &so), *s2 = start_server(&b2, &so);
    REQUIRE(s1 && s2);
    char spec[128], extra[128];
    snprintf(spec, sizeof spec, "http://127.0.0.1:%d/v1#echo-model", sq_server_port(s1));
    snprintf(extra, sizeof extra, "http://127.0.0.1:%d/v1/", sq_server_port(s2));
    const char *extras[1] = {extra};
    sq_backend_opts bo;
    sq_backend_opts_default(&bo);
    bo.concurrency = 8;
    bo.extra_urls = extras;
    bo.n_extra_urls = 1;
    sq_backend *b = NULL;
    sq_err e = {0};
    REQUIRE(sq_backend_open(&b, spec, &bo, &e) == 0);
    enum { N = 64 };
    sq_gen_request reqs[N];
    char ids[N][8];
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof ids[i], "%d", i);
        reqs[i] = (sq_gen_request){.id = ids[i], .prompt = ids[i]};
        sq_gen_params_default(&reqs[i].params);
    }
    collect c;
    collect_init(&c, N);
    REQUIRE(sq_backend_generate(b, reqs, N, on_res, &c, &e) == 0);
    CHECK_EQ_INT(c.ok, N);
    CHECK_EQ_INT(a.total + b2.total, N);
    /* least-busy choice with 8 in flight keeps both servers working */
    CHECKF(a.total >= N / 4 && b2.total >= N / 4, "split %d / %d", a.total, b2.total);
    collect_free(&c);
    sq_backend_close(b);
    sq_server_close(s1);
    sq_server_close(s2);
}

SQ_TEST(server_applies_chat_template) {
    echo_backend eb;
    echo_init(&eb);
    sq_chat_template *t = NULL;
    sq_err e = {0};
    REQUIRE(sq_chat_template_builtin(&t, "llama3", &e) == 0);
    sq_server_opts so;
    sq_server_opts_default(&so);
    so.chat_template = t;
    sq_server *s = start_server(&eb, &so);
    REQUIRE(s);
    sq_buf out = {0};
    const char *chat = "{\"model\":\"echo-model\",\"messages\":[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\" q \"}],"
                       "\"max_tokens\":7}";
    CHECK_EQ_INT(post(sq_server_port(s), "/v1/chat/completions", chat, strlen(chat), &out), 200);
    /* the backend saw a completion prompt: the rendered conversation plus the assistant header */
    CHECKF(out.data && strstr(out.data, "\"content\":\"c:<|begin_of_text|><|start_header_id|>system<|end_header_id|>"
                                        "\\n\\nS<|eot_id|><|start_header_id|>user<|end_header_id|>\\n\\nq<|eot_id|>"
                                        "<|start_header_id|>assistant<|end_header_id|>\\n\\n|0|7|0\""),
           "%s", out.data ? out.data : "");
    CHECK(out.data && strstr(out.data, "chat.completion"));
    sq_buf_free(&out);
    sq_server_close(s);
    sq_chat_template_free(t);
}

/* logprobs=N (completions) and top_logprobs (chat) carry each token's text and the N most
 * likely tokens; a list of prompts is OpenAI's batch form: choice i*n + k is sample k of
 * prompt i, usage sums them. */
SQ_TEST(logprobs_and_prompt_lists) {
    echo_backend eb;
    echo_init(&eb);
    sq_server_opts so;
    sq_server_opts_default(&so);
    sq_server *s = start_server(&eb, &so);
    REQUIRE(s);
    int port = sq_server_port(s);
    sq_buf out = {0};
    const char *lp = "{\"model\":\"echo-model\",\"prompt\":\"q\",\"max_tokens\":3,\"logprobs\":2}";
    CHECK_EQ_INT(post(port, "/v1/completions", lp, strlen(lp), &out), 200);
    CHECKF(out.data && strstr(out.data, "\"tokens\":[\"x\",\"\xc3\xa9\",\"z\"]") &&
               strstr(out.data, "\"token_logprobs\":[-0.5,-1,-1.5]") && strstr(out.data, "\"text_offset\":[0,1,3]") &&
               strstr(out.data, "\"top_logprobs\":[{\"x\":-0.5,\"w\":-2},{\"\xc3\xa9\":-1,\"w\":-2},{\"z\":-1.5,\"w\":-2}]"),
           "%s", out.data ? out.data : "");
    const char *clp = "{\"model\":\"echo-model\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],\"logprobs\":true,"
                      "\"top_logprobs\":1}";
    CHECK_EQ_INT(post(port, "/v1/chat/completions", clp, strlen(clp), &out), 200);
    CHECKF(out.data && strstr(out.data, "{\"token\":\"\xc3\xa9\",\"logprob\":-1,\"bytes\":[195,169],\"top_logprobs\":"
                                        "[{\"token\":\"\xc3\xa9\",\"logprob\":-1,\"bytes\":[195,169]}]}"),
           "%s", out.data ? out.data : "");
    const char *batch = "{\"model\":\"echo-model\",\"prompt\":[\"a\",\"bb\"],\"n\":2,\"max_tokens\":4}";
    CHECK_EQ_INT(post(port, "/v1/completions", batch, strlen(batch), &out), 200);
    const char *want[4] = {"{\"index\":0,\"text\":\"c:a|0|4|0\"", "{\"index\":1,\"text\":\"c:a|1|4|0\"",
                           "{\"index\":2,\"text\":\"c:bb|0|4|0\"", "{\"index\":3,\"text\":\"c:bb|1|4|0\""};
    for (int i = 0; i < 4; i++) CHECKF(out.data && strstr(out.data, want[i]), "lacks %s: %s", want[i], out.data);
    CHECKF(out.data && strstr(out.data, "\"prompt_tokens\":3,\"completion_tokens\":12"), "%s", out.data);
    const char *bfail = "{\"model\":\"echo-model\",\"prompt\":[\"a\",\"too-long\"]}";
    CHECK_EQ_INT(post(port, "/v1/completions", bfail, strlen(bfail), &out), 400);
    sq_buf_free(&out);
    sq_server_close(s);
}

/* ---- a slow backend that honours cancellation ---------------------------------------------- */

typedef struct slow_backend {
    sq_backend base;
    atomic_int started, cancelled, finished;
} slow_backend;

/* Each request "decodes" max_tokens steps of 10 ms, one request after another, and stops at
 * once when its cancel flag is set, as the local engine does. */
static int slow_generate(sq_backend *b, const sq_gen_request *reqs, int n, sq_gen_callback cb, void *user,
                         sq_err *e) {
    slow_backend *sb = (slow_backend *)b;
    for (int i = 0; i < n; i++) {
        atomic_fetch_add(&sb->started, 1);
        int steps = reqs[i].params.max_tokens, stopped = 0;
        for (int t = 0; t < steps && !stopped; t++) {
            if (reqs[i].params.cancel && atomic_load(reqs[i].params.cancel)) stopped = 1;
            else usleep(10000);
        }
        sq_gen_choice ch = {.text = "done", .n_tokens = steps, .finish_reason = "length"};
        sq_gen_result res = {.id = reqs[i].id, .ok = !stopped, .choices = &ch, .n_choices = 1,
                             .error = stopped ? "cancelled" : NULL};
        atomic_fetch_add(stopped ? &sb->cancelled : &sb->finished, 1);
        if (cb(user, i, &res)) return sq_fail(e, SQ_EINTR, "stopped");
    }
    return 0;
}

static void slow_close(sq_backend *b) { (void)b; }
static const struct sq_backend_ops slow_ops = {slow_generate, slow_close};

static void slow_init(slow_backend *sb) {
    memset(sb, 0, sizeof *sb);
    sb->base.ops = &slow_ops;
    snprintf(sb->base.name, sizeof sb->base.name, "echo-model");
}

typedef struct client_arg {
    int port;
    const char *body;
    long timeout_ms, status;
} client_arg;

static void *client_main(void *p) {
    client_arg *a = p;
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/completions", a->port);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    sq_buf out = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, a->body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, a->timeout_ms);
    a->status = 0;
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    sq_buf_free(&out);
    return NULL;
}

/* A client that hangs up cancels its request: the backend stops it, and the next request
 * does not wait for the abandoned one to run to its end (3 s here). */
SQ_TEST(client_hangup_cancels_the_request) {
    slow_backend sb;
    slow_init(&sb);
    sq_server_opts so;
    sq_server_opts_default(&so);
    sq_server *s = NULL;
    sq_err e = {0};
    REQUIRE(sq_server_open(&s, &sb.base, &so, &e) == 0);
    int port = sq_server_port(s);
    client_arg a = {port, "{\"model\":\"echo-model\",\"prompt\":\"long\",\"max_tokens\":300}", 200, 0};
    client_main(&a); /* gives up after 0.2 s */
    CHECK_EQ_INT(a.status, 0);
    double t0 = sq_now();
    client_arg b = {port, "{\"model\":\"echo-model\",\"prompt\":\"short\",\"max_tokens\":1}", 20000, 0};
    client_main(&b);
    double dt = sq_now() - t0;
    CHECK_EQ_INT(b.status, 200);
    CHECKF(dt < 1.5, "the next request took %.2f s: the abandoned one ran on", dt);
    CHECK_EQ_INT(atomic_load(&sb.cancelled), 1);
    CHECK_EQ_INT(atomic_load(&sb.finished), 1);
    sq_server_stats st;
    sq_server_get_stats(s, &st);
    CHECK_EQ_INT(st.cancelled, 1);
    CHECK_EQ_INT(st.errors_5xx, 0);
    sq_server_close(s);
}

/* Requests still queued at shutdown are answered 503, and the stats read after
 * sq_server_shutdown count them (the summary serve prints). */
SQ_TEST(shutdown_counts_its_503s) {
    slow_backend sb;
    slow_init(&sb);
    sq_server_opts so;
    sq_server_opts_default(&so);
    so.batch_window_s = 0;
    sq_server *s = NULL;
    sq_err e = {0};
    REQUIRE(sq_server_open(&s, &sb.base, &so, &e) == 0);
    int port = sq_server_port(s);
    client_arg a[3] = {{port, "{\"model\":\"echo-model\",\"prompt\":\"a\",\"max_tokens\":400}", 20000, 0},
                       {port, "{\"model\":\"echo-model\",\"prompt\":\"b\",\"max_tokens\":1}", 20000, 0},
                       {port, "{\"model\":\"echo-model\",\"prompt\":\"c\",\"max_tokens\":1}", 20000, 0}};
    pthread_t th[3];
    pthread_create(&th[0], NULL, client_main, &a[0]);
    for (int w = 0; w < 500 && atomic_load(&sb.started) == 0; w++) usleep(2000);
    REQUIRE(atomic_load(&sb.started) == 1);
    pthread_create(&th[1], NULL, client_main, &a[1]);
    pthread_create(&th[2], NULL, client_main, &a[2]);
    sq_server_stats st;
    /* both queued behind the running batch, which runs 4 s: time enough on a loaded machine */
    for (int w = 0; w < 1500; w++) {
        sq_server_get_stats(s, &st);
        if (st.requests == 3) break;
        usleep(2000);
    }
    REQUIRE(st.requests == 3);
    sq_server_shutdown(s);
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    sq_server_get_stats(s, &st);
    CHECK_EQ_INT(a[0].status, 200);
    CHECK_EQ_INT(a[1].status, 503);
    CHECK_EQ_INT(a[2].status, 503);
    CHECK_EQ_INT(st.errors_5xx, 2);
    sq_server_close(s);
}

/* 600 connections that send nothing must not lock others out: /health answers at once.
 * Loopback only, every socket closed at the end. */
SQ_TEST(idle_connections_do_not_lock_out_health) {
    echo_backend eb;
    echo_init(&eb);
    for (int round = 0; round < 1; round++) {
        sq_server_opts so;
        sq_server_opts_default(&so);
        sq_server *s = start_server(&eb, &so);
        REQUIRE(s);
        int port = sq_server_port(s), n = 0;
        enum { N = 600 };
        int *fds = malloc(sizeof(int) * N);
        REQUIRE(fds);
        struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
        for (int i = 0; i < N; i++) {
            int fd = socket(AF_INET, SOCK_STREAM, 0);
            if (fd < 0) break;
            if (connect(fd, (struct sockaddr *)&addr, sizeof addr)) {
                close(fd);
                break;
            }
            fds[n++] = fd;
        }
        CHECKF(n == N, "round %d: opened %d of %d sockets", round, n, N);
        usleep(200000);
        sq_buf out = {0};
        double t0 = sq_now();
        long st = post(port, "/health", NULL, 0, &out);
        double dt = sq_now() - t0;
        CHECK_EQ_INT(st, 200);
        CHECKF(dt < 2.0, "round %d: /health took %.2f s behind %d idle connections", round, dt, n);
        for (int i = 0; i < n; i++) close(fds[i]);
        free(fds);
        sq_buf_free(&out);
        sq_server_close(s);
    }
}
