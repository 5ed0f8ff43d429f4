/* Training examples from text records, through a tokenizer and a plain prompt format.
 * The prompt and the target are tokenised separately and joined, so the prompt's tokens are
 * exactly what a generator is later given; the loss covers the target (and EOS) only. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/chat_template.h"
#include "scalequest/train.h"

void sq_text_format_default(sq_text_format *f) {
    f->prompt = "Question: {query}\nAnswer:\n";
    f->qft_prefix = "Question:";
    f->eos_token = "<|endoftext|>";
    f->chat = NULL;
}

char *sq_text_format_prompt(const char *tmpl, const char *query) {
    sq_buf b = {0};
    const char *p = strstr(tmpl, "{query}");
    if (!p) {
        sq_buf_puts(&b, tmpl);
    } else {
        sq_buf_append(&b, tmpl, (size_t)(p - tmpl));
        sq_buf_puts(&b, query);
        sq_buf_puts(&b, p + 7);
    }
    if (!b.data) sq_buf_puts(&b, "");
    return b.data;
}

static const char *field(const cJSON *rec, const char *const *names) {
    for (; *names; names++) {
        const cJSON *v = cJSON_GetObjectItem(rec, *names);
        if (cJSON_IsString(v)) return v->valuestring;
    }
    return NULL;
}

/* How records are joined to the format: the plain one or a chat template. */
typedef struct {
    const sq_text_format *f;
    int prompt_flags;       /* plain prompts get BOS as the tokenizer says; template text carries its own */
    int eos_answer;         /* token after a response */
    int eos_question;       /* token after a question; -1: question_tail ends it instead */
    const char *question_tail; /* text that closes a user turn when no single token does */
    char *qft_prefix;       /* what a question is written after */
    const char *question_sep; /* between that prefix and the question */
} text_ctx;

static int32_t token_of(const sq_tokenizer *tok, const char *text) {
    return text && *text ? sq_tok_find(tok, text, strlen(text)) : -1;
}

static int text_ctx_init(text_ctx *c, const sq_tokenizer *tok, const sq_text_format *f, sq_err *e) {
    memset(c, 0, sizeof *c);
    c->f = f;
    if (!f->chat) {
        int eos = token_of(tok, f->eos_token);
        if (eos < 0) eos = sq_tok_eos(tok);
        if (eos < 0) return sq_fail(e, SQ_EINVAL, "train: the tokenizer has no EOS token (looked for %s)", f->eos_token);
        c->prompt_flags = SQ_TOK_ADD_SPECIAL;
        c->eos_answer = c->eos_question = eos;
        c->question_sep = " ";
        return (c->qft_prefix = sq_strdup(f->qft_prefix)) ? 0 : sq_fail(e, SQ_ENOMEM, "out of memory");
    }
    const sq_chat_template *t = f->chat;
    c->prompt_flags = SQ_TOK_PARSE_SPECIAL;
    c->question_sep = "";
    c->eos_answer = t->n_assistant_stops ? token_of(tok, t->assistant_stops[0]) : -1;
    if (c->eos_answer < 0) c->eos_answer = token_of(tok, t->eos);
    if (c->eos_answer < 0)
        return sq_fail(e, SQ_EINVAL, "train: chat template %s ends an assistant turn with %s, which is not one token of the "
                       "tokenizer (add it as a special token)", t->name, t->n_assistant_stops ? t->assistant_stops[0] : t->eos);
    c->eos_question = t->n_user_stops ? token_of(tok, t->user_stops[0]) : -1;
    if (c->eos_question < 0) c->question_tail = t->n_user_stops ? t->user_stops[0] : "";
    sq_buf b = {0};
    int rc = sq_chat_template_question_prefix(t, &b, e);
    if (!rc && !b.data && sq_buf_puts(&b, "")) rc = sq_fail(e, SQ_ENOMEM, "out of memory");
    if (rc) sq_buf_free(&b);
    else c->qft_prefix = b.data;
    return rc;
}

/* The prompt a question is answered after (malloc'd; NULL with e set, naming where). */
static char *answer_prompt(const text_ctx *c, const char *query, const char *where, sq_err *e) {
    if (!c->f->chat) return sq_text_format_prompt(c->f->prompt, query);
    sq_buf b = {0};
    sq_chat_msg m = {"user", query};
    if (sq_chat_template_render(c->f->chat, &m, 1, 1, &b, e)) {
        sq_buf_free(&b);
        sq_err_wrap(e, "%s", where);
        return NULL;
    }
    return b.data ? b.data : sq_strdup("");
}

/* A question as QFT's target: the separator, the question, and what closes a user turn
 * when no single token does (malloc'd). */
static char *question_target(const text_ctx *c, const char *q) {
    sq_buf b = {0};
    sq_buf_puts(&b, c->question_sep);
    sq_buf_puts(&b, q);
    if (c->question_tail) sq_buf_puts(&b, c->question_tail);
    return b.data ? b.data : sq_strdup("");
}

/* prompt ids + target ids (+ EOS), loss on the target. */
static int add_pair(sq_tdata *d, const sq_tokenizer *tok, const char *prompt, int prompt_flags, const char *target,
                    int eos, float value, int loss_on_all, const char *where, sq_err *e) {
    int32_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    int rc = sq_tok_encode(tok, prompt, strlen(prompt), prompt_flags, &a, &na, e);
    if (!rc) rc = sq_tok_encode(tok, target, strlen(target), 0, &b, &nb, e);
    size_t n = na + nb + (eos >= 0);
    int32_t *ids = rc ? NULL : malloc(sizeof *ids * (n ? n : 1));
    uint8_t *mask = rc ? NULL : malloc(n ? n : 1);
    if (!rc && (!ids || !mask)) rc = sq_fail(e, SQ_ENOMEM, "out of memory");
    if (!rc) {
        memcpy(ids, a, sizeof *ids * na);
        memcpy(ids + na, b, sizeof *ids * nb);
        if (eos >= 0) ids[n - 1] = eos;
        for (size_t i = 0; i < n; i++) mask[i] = loss_on_all ? i > 0 : i >= na;
        if (n < 2) rc = sq_fail(e, SQ_EPARSE, "%s: fewer than 2 tokens", where);
        else if (sq_tdata_add(d, ids, mask, (int)n, value)) rc = sq_fail(e, SQ_ENOMEM, "out of memory");
    }
    if (rc && e && !strstr(e->msg, where)) sq_err_wrap(e, "%s", where);
    free(a);
    free(b);
    free(ids);
    free(mask);
    return rc;
}

int sq_tdata_load_text(sq_tdata *d, const char *path, sq_train_mode mode, const sq_tokenizer *tok,
                       const sq_text_format *f, sq_err *e) {
    memset(d, 0, sizeof *d);
    text_ctx c;
    int rc = text_ctx_init(&c, tok, f, e);
    if (rc) return rc;
    char *text;
    size_t len;
    if ((rc = sq_file_read_all(path, &text, &len, e))) {
        free(c.qft_prefix);
        return rc;
    }
    static const char *q_names[] = {"query", "question", "prompt", NULL};
    static const char *r_names[] = {"response", "answer_text", "solution", NULL};
    static const char *c_names[] = {"chosen", NULL}, *j_names[] = {"rejected", NULL};
    int line = 0;
    char *save = NULL, where[600];
    for (char *ln = strtok_r(text, "\n", &save); ln && !rc; ln = strtok_r(NULL, "\n", &save)) {
        line++;
        if (strspn(ln, " \t\r") == strlen(ln)) continue;
        snprintf(where, sizeof where, "%s:%d", path, line);
        cJSON *rec = cJSON_Parse(ln);
        if (!cJSON_IsObject(rec)) {
            cJSON_Delete(rec);
            rc = sq_fail(e, SQ_EPARSE, "%s: not a JSON object", where);
            break;
        }
        const char *q = field(rec, q_names);
        if (mode == SQ_TRAIN_SFT) {
            const char *r = field(rec, r_names);
            if (!q || !r) rc = sq_fail(e, SQ_EPARSE, "%s: sft needs string fields \"query\" and \"response\"", where);
            else {
                char *p = answer_prompt(&c, q, where, e);
                rc = p ? add_pair(d, tok, p, c.prompt_flags, r, c.eos_answer, 0, 0, where, e) : SQ_EINVAL;
                free(p);
            }
        } else if (mode == SQ_TRAIN_QFT) {
            if (!q) rc = sq_fail(e, SQ_EPARSE, "%s: qft needs a string field \"query\"", where);
            else {
                char *t = question_target(&c, q);
                rc = add_pair(d, tok, c.qft_prefix, c.prompt_flags, t, c.eos_question, 0, 0, where, e);
                free(t);
            }
        } else if (mode == SQ_TRAIN_DPO) {
            const char *ch = field(rec, c_names), *j = field(rec, j_names);
            /* A "prompt" is the text both sides were written after: QPO pairs (optimize)
             * carry the model's question prefix there (and keep the original record's
             * "query"), so a prompt makes question pairs whatever else the record holds, and
             * one that is not this model's prefix is refused; without one, "query" or
             * "question" makes answer pairs. */
            static const char *aq_names[] = {"query", "question", NULL}, *p_names[] = {"prompt", NULL};
            const char *pp = field(rec, p_names);
            q = pp ? NULL : field(rec, aq_names);
            if (!ch || !j) rc = sq_fail(e, SQ_EPARSE, "%s: dpo needs string fields \"chosen\" and \"rejected\"", where);
            else if (pp && strcmp(pp, c.qft_prefix) != 0)
                rc = sq_fail(e, SQ_EPARSE, "%s: dpo \"prompt\" is not this model's question prefix (expected the %zu bytes "
                             "of the chat template's user-turn prefix): pairs made for another template?", where,
                             strlen(c.qft_prefix));
            /* QPO pairs are questions written from the QFT prefix; with a "query" they are answers. */
            char *p = rc ? NULL : q ? answer_prompt(&c, q, where, e) : sq_strdup(c.qft_prefix);
            if (!rc && !p) rc = SQ_EINVAL;
            char *tc = rc ? NULL : q ? sq_strdup(ch) : question_target(&c, ch);
            char *tj = rc ? NULL : q ? sq_strdup(j) : question_target(&c, j);
            int eos = q ? c.eos_answer : c.eos_question;
            if (!rc) rc = add_pair(d, tok, p, c.prompt_flags, tc, eos, 0, 0, where, e);
            if (!rc) rc = add_pair(d, tok, p, c.prompt_flags, tj, eos, 0, 0, where, e);
            free(p);
            free(tc);
            free(tj);
        } else {
            double v = 0;
            const cJSON *jv = cJSON_GetObjectItem(rec, "value");
            if (!cJSON_IsNumber(jv)) jv = cJSON_GetObjectItem(rec, "fail_rate");
            if (!q || !cJSON_IsNumber(jv))
                rc = sq_fail(e, SQ_EPARSE, "%s: regress needs \"query\" and a number \"value\" (or \"fail_rate\")", where);
            else {
                v = jv->valuedouble;
                char *p = answer_prompt(&c, q, where, e);
                rc = p ? add_pair(d, tok, p, c.prompt_flags, "", -1, (float)v, 1, where, e) : SQ_EINVAL;
                free(p);
            }
        }
        cJSON_Delete(rec);
    }
    free(c.qft_prefix);
    free(text);
    if (!rc && d->n == 0) rc = sq_fail(e, SQ_EPARSE, "%s: no records", path);
    if (rc) sq_tdata_free(d);
    return rc;
}
