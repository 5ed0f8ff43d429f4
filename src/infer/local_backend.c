/* The in-process backend: a model file run by this engine behind the sq_backend interface.
 * It owns the model, its tokenizer, its chat template (when it has one) and one engine.
 * Prompts, or chat messages rendered with the model's template, are encoded here, and
 * completions decoded token by token so stop strings cut the text where they start. */
#include <stdlib.h>
#include <string.h>

#include "scalequest/backend.h"
#include "scalequest/quant.h"
#include "scalequest/chat_template.h"
#include "scalequest/infer.h"
#include "scalequest/tokenizer.h"

#define MAX_EOG 16

typedef struct local_backend {
    sq_backend base;
    sq_model *m;
    sq_tokenizer *tok;
    sq_engine *en;
    int32_t eog[MAX_EOG];
    int n_eog;
    sq_chat_template *chat; /* NULL when the model has none: chat requests then fail */
    char chat_err[512];
    int warned_ctx; /* said once that max_tokens cannot fit the context */
} local_backend;

static int piece(void *ctx, int32_t id, sq_buf *out) {
    const sq_tokenizer *t = ctx;
    if (sq_tok_is_special(t, id)) return 0; /* control tokens are not text */
    char small[64];
    int n = sq_tok_token_bytes(t, id, small, sizeof small);
    if (n < 0) return n;
    if ((size_t)n <= sizeof small) return sq_buf_append(out, small, (size_t)n);
    if (sq_buf_reserve(out, (size_t)n + 1)) return SQ_ENOMEM;
    sq_tok_token_bytes(t, id, out->data + out->len, (size_t)n + 1);
    out->len += (size_t)n;
    out->data[out->len] = 0;
    return 0;
}

/* Completions are cut at token boundaries, which may split a UTF-8 character; JSON needs
 * valid text, so ill-formed bytes become U+FFFD (as HF's decode does). */
static int utf8_clean(const char *s, size_t n, sq_buf *out) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        int ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++) ok = ((unsigned char)s[i + k] >> 6) == 2;
        if (ok && len == 2) ok = c >= 0xc2;
        if (ok && len == 3) {
            unsigned char d = (unsigned char)s[i + 1];
            ok = !(c == 0xe0 && d < 0xa0) && !(c == 0xed && d >= 0xa0);
        }
        if (ok && len == 4) {
            unsigned char d = (unsigned char)s[i + 1];
            ok = c <= 0xf4 && !(c == 0xf0 && d < 0x90) && !(c == 0xf4 && d >= 0x90);
        }
        if (ok) {
            if (sq_buf_append(out, s + i, len)) return SQ_ENOMEM;
            i += len;
        } else {
            if (sq_buf_puts(out, "\xef\xbf\xbd")) return SQ_ENOMEM;
            i++;
        }
    }
    return 0;
}

typedef struct gen_ctx {
    local_backend *lb;
    const sq_gen_request *reqs;
    const int *map; /* engine request index -> backend request index */
    sq_gen_callback cb;
    void *user;
} gen_ctx;

/* Each chosen token's text, NUL-separated in one buffer, for logprobs answers. */
static int token_texts(const sq_tokenizer *t, const int32_t *ids, int n, sq_buf *all, const char ***out) {
    size_t *off = malloc(sizeof(size_t) * (size_t)(n > 0 ? n : 1));
    const char **ptr = malloc(sizeof(char *) * (size_t)(n > 0 ? n : 1));
    sq_buf one = {0};
    int rc = off && ptr ? 0 : SQ_ENOMEM;
    for (int k = 0; k < n && !rc; k++) {
        sq_buf_reset(&one);
        off[k] = all->len;
        rc = piece((void *)t, ids[k], &one);
        if (!rc) rc = utf8_clean(one.data ? one.data : "", one.len, all);
        if (!rc) rc = sq_buf_append(all, "", 1);
    }
    sq_buf_free(&one);
    if (!rc)
        for (int k = 0; k < n; k++) ptr[k] = all->data + off[k];
    free(off);
    if (rc) {
        free(ptr);
        return rc;
    }
    *out = ptr;
    return 0;
}

static int on_result(void *user, int i, const sq_infer_result *r) {
    gen_ctx *g = user;
    int bi = g->map[i];
    const sq_gen_request *q = &g->reqs[bi];
    sq_gen_result res = {q->id, r->ok, r->error, NULL, 0, r->prompt_tokens, 0, r->bad_request};
    sq_gen_choice *ch = r->ok ? calloc((size_t)r->n_samples, sizeof *ch) : NULL;
    sq_buf *texts = r->ok ? calloc((size_t)r->n_samples, sizeof *texts) : NULL;
    sq_buf *pieces = r->ok ? calloc((size_t)r->n_samples, sizeof *pieces) : NULL;
    const char ***tt = r->ok ? calloc((size_t)r->n_samples, sizeof *tt) : NULL;
    const char ***top = r->ok ? calloc((size_t)r->n_samples, sizeof *top) : NULL;
    sq_buf *top_pieces = r->ok ? calloc((size_t)r->n_samples, sizeof *top_pieces) : NULL;
    int stop = 0;
    if (r->ok && (!ch || !texts || !pieces || !tt || !top || !top_pieces)) {
        res.ok = 0;
        res.error = "out of memory";
    } else if (r->ok) {
        for (int k = 0; k < r->n_samples; k++) {
            const sq_infer_sample *s = &r->samples[k];
            if (utf8_clean(s->text ? s->text : "", s->text_len, &texts[k]) || sq_buf_append(&texts[k], "", 0)) {
                res.ok = 0;
                res.error = "out of memory";
                break;
            }
            if (q->params.logprobs &&
                (token_texts(g->lb->tok, s->ids, s->n, &pieces[k], &tt[k]) ||
                 (s->n_top > 0 && token_texts(g->lb->tok, s->top_ids, s->n * s->n_top, &top_pieces[k], &top[k])))) {
                res.ok = 0;
                res.error = "out of memory";
                break;
            }
            ch[k] = (sq_gen_choice){.text = texts[k].data,
                                    .token_ids = s->ids,
                                    .logprobs = q->params.logprobs ? s->logprobs : NULL,
                                    .n_tokens = s->n,
                                    .finish_reason = s->finish_reason,
                                    .token_texts = tt[k],
                                    .n_top = top[k] ? s->n_top : 0,
                                    .top_ids = top[k] ? s->top_ids : NULL,
                                    .top_logprobs = top[k] ? s->top_logprobs : NULL,
                                    .top_texts = top[k]};
            res.completion_tokens += s->n;
        }
        if (res.ok) {
            res.choices = ch;
            res.n_choices = r->n_samples;
        }
    }
    if (g->cb) stop = g->cb(g->user, bi, &res);
    for (int k = 0; k < r->n_samples; k++) {
        if (texts) sq_buf_free(&texts[k]);
        if (pieces) sq_buf_free(&pieces[k]);
        if (tt) free(tt[k]);
        if (top) free(top[k]);
        if (top_pieces) sq_buf_free(&top_pieces[k]);
    }
    free(top);
    free(top_pieces);
    free(texts);
    free(pieces);
    free(tt);
    free(ch);
    return stop;
}

static int fail_now(gen_ctx *g, int bi, const char *why) {
    sq_gen_result res = {g->reqs[bi].id, 0, why, NULL, 0, 0, 0, 0};
    return g->cb ? g->cb(g->user, bi, &res) : 0;
}

static int local_generate(sq_backend *b, const sq_gen_request *reqs, int n, sq_gen_callback cb, void *user,
                          sq_err *e) {
    local_backend *lb = (local_backend *)b;
    sq_infer_req *ereqs = calloc((size_t)(n > 0 ? n : 1), sizeof *ereqs);
    int *map = calloc((size_t)(n > 0 ? n : 1), sizeof(int));
    int32_t **stops = calloc((size_t)(n > 0 ? n : 1), sizeof(int32_t *));
    int32_t **prompts = calloc((size_t)(n > 0 ? n : 1), sizeof(int32_t *));
    gen_ctx g = {lb, reqs, map, cb, user};
    int rc = 0, ne = 0;
    if (!ereqs || !map || !stops || !prompts) {
        rc = sq_fail(e, SQ_ENOMEM, "local backend: out of memory for %d requests", n);
        goto done;
    }
    sq_buf text = {0};
    for (int i = 0; i < n; i++) {
        const sq_gen_request *q = &reqs[i];
        sq_err pe;
        /* A raw prompt is read as vLLM and HF completions read it: special tokens written in
         * it (a chat template's "<|im_start|>user\n" prefix, say) are those tokens. */
        int flags = SQ_TOK_ADD_SPECIAL | SQ_TOK_PARSE_SPECIAL;
        const char *src = q->prompt;
        size_t len = q->prompt ? strlen(q->prompt) : 0;
        if (q->messages) {
            sq_buf_reset(&text);
            if (!lb->chat) {
                if (fail_now(&g, i, lb->chat_err)) goto stopped;
                continue;
            }
            if (sq_chat_template_render(lb->chat, q->messages, q->n_messages, 1, &text, &pe)) {
                if (fail_now(&g, i, pe.msg)) goto stopped;
                continue;
            }
            src = text.data;
            len = text.len;
            flags = SQ_TOK_PARSE_SPECIAL;
        }
        size_t nt = 0;
        if (sq_tok_encode(lb->tok, src ? src : "", len, flags, &prompts[i], &nt, &pe)) {
            if (fail_now(&g, i, pe.msg)) goto stopped;
            continue;
        }
        int ctx = sq_engine_ctx_len(lb->en);
        if (!lb->warned_ctx && q->params.max_tokens > ctx - (int)nt) {
            lb->warned_ctx = 1;
            sq_warn("max_tokens %d does not fit the context of %d tokens after a prompt of %d: completions stop "
                    "at the context's end (finish_reason \"length\"); raise --ctx (the model allows %d) or lower "
                    "--max-tokens",
                    q->params.max_tokens, ctx, (int)nt, lb->m->cfg.max_seq_len);
        }
        sq_infer_req *r = &ereqs[ne];
        r->prompt = prompts[i];
        r->n_prompt = (int)nt;
        r->params = q->params;
        stops[i] = malloc(sizeof(int32_t) * (size_t)(q->params.n_stop_ids + lb->n_eog + 1));
        if (!stops[i]) {
            rc = sq_fail(e, SQ_ENOMEM, "local backend: out of memory");
            goto done_text;
        }
        int ns = 0;
        for (int k = 0; k < q->params.n_stop_ids; k++) stops[i][ns++] = q->params.stop_ids[k];
        for (int k = 0; k < lb->n_eog; k++) stops[i][ns++] = lb->eog[k];
        r->params.stop_ids = stops[i];
        r->params.n_stop_ids = ns;
        map[ne++] = i;
    }
    {
        sq_detok dt = {lb->tok, piece};
        rc = sq_engine_generate(lb->en, ereqs, ne, &dt, on_result, &g, e);
    }
    goto done_text;
stopped:
    rc = sq_fail(e, SQ_EINTR, "generation stopped by the caller");
done_text:
    sq_buf_free(&text);
done:
    for (int i = 0; i < n && prompts && stops; i++) {
        free(prompts[i]);
        free(stops[i]);
    }
    free(prompts);
    free(stops);
    free(map);
    free(ereqs);
    return rc;
}

static void local_close(sq_backend *b) {
    local_backend *lb = (local_backend *)b;
    sq_engine_free(lb->en);
    sq_chat_template_free(lb->chat);
    sq_tok_free(lb->tok);
    sq_model_close(lb->m);
    free(lb);
}

static const struct sq_backend_ops local_ops = {local_generate, local_close};

int sq_backend_open_local(sq_backend **out, const char *path, const sq_backend_opts *o, sq_err *e) {
    *out = NULL;
    local_backend *lb = calloc(1, sizeof *lb);
    if (!lb) return sq_fail(e, SQ_ENOMEM, "local backend: out of memory");
    lb->base.ops = &local_ops;
    const char *slash = strrchr(path, '/');
    snprintf(lb->base.name, sizeof lb->base.name, "%s", slash && slash[1] ? slash + 1 : path);
    if (o && o->threads > 0) sq_threads_set(o->threads);
    if (o) sq_quant_act_set(o->act_type);
    int rc = sq_model_open(&lb->m, path, e);
    const char *tok_path = o && o->tokenizer ? o->tokenizer : path;
    if (!rc && (rc = sq_tok_load(&lb->tok, tok_path, e))) {
        if (tok_path == path)
            sq_err_wrap(e, "%s: loading the tokenizer (a folder without one takes --tokenizer PATH)", path);
        else
            sq_err_wrap(e, "%s: loading the tokenizer", tok_path);
    }
    if (!rc && tok_path != path && sq_tok_vocab_size(lb->tok) > lb->m->cfg.vocab_size)
        rc = sq_fail(e, SQ_EINVAL, "%s: the tokenizer has %d tokens, more than the model's vocabulary of %d", tok_path,
                     (int)sq_tok_vocab_size(lb->tok), lb->m->cfg.vocab_size);
    if (!rc) {
        sq_engine_opts eo;
        sq_engine_opts_default(&eo);
        if (o && o->max_batch > 0) eo.max_batch = o->max_batch;
        if (o && o->ctx_len > 0) eo.ctx_len = o->ctx_len;
        if (o) eo.kv_type = o->kv_type;
        rc = sq_engine_new(&lb->en, lb->m, &eo, e);
        if (!rc) {
            /* Say which cache "auto" gave: it decides memory, speed and the last bits. */
            sq_engine_stats st;
            sq_engine_get_stats(lb->en, &st);
            if (eo.kv_type == SQ_KV_AUTO)
                sq_info("%s: KV cache %s (auto, for %s weights; --kv-type f32|f16|bf16 to choose), %zu bytes per "
                        "position",
                        lb->base.name, sq_kv_type_name(st.kv_type), sq_dtype_name(lb->m->layers[0].wq.dtype),
                        st.kv_bytes_per_token);
            else
                sq_info("%s: KV cache %s, %zu bytes per position", lb->base.name, sq_kv_type_name(st.kv_type),
                        st.kv_bytes_per_token);
        }
    }
    if (rc) {
        local_close(&lb->base);
        return rc;
    }
    sq_err ce;
    if (sq_chat_template_open(&lb->chat, path, &ce) &&
        !(tok_path != path && sq_chat_template_open(&lb->chat, tok_path, &(sq_err){0}) == 0)) {
        lb->chat = NULL;
        snprintf(lb->chat_err, sizeof lb->chat_err,
                 "this model has no chat template (%s); give one with --chat-template (a built-in name such as "
                 "chatml or llama3, a model folder, tokenizer_config.json, .gguf or Jinja file), or send a "
                 "raw prompt",
                 ce.msg);
    }
    int32_t V = sq_tok_vocab_size(lb->tok);
    for (int32_t id = 0; id < V && lb->n_eog < MAX_EOG; id++)
        if (sq_tok_is_eog(lb->tok, id)) lb->eog[lb->n_eog++] = id;
    *out = &lb->base;
    return 0;
}
