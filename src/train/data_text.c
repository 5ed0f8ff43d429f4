/* Training examples from text records, through a tokenizer and a plain prompt format.
 * The prompt and the target are tokenised separately and joined, so the prompt's tokens are
 * exactly what a generator is later given; the loss covers the target (and EOS) only. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/train.h"

void sq_text_format_default(sq_text_format *f) {
    f->prompt = "Question: {query}\nAnswer:\n";
    f->qft_prefix = "Question:";
    f->eos_token = "<|endoftext|>";
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

/* prompt ids + target ids (+ EOS), loss on the target. */
static int add_pair(sq_tdata *d, const sq_tokenizer *tok, const char *prompt, const char *target, int eos, float value,
                    int loss_on_all, const char *where, sq_err *e) {
    int32_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    int rc = sq_tok_encode(tok, prompt, strlen(prompt), SQ_TOK_ADD_SPECIAL, &a, &na, e);
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
    int eos = f->eos_token ? sq_tok_find(tok, f->eos_token, strlen(f->eos_token)) : -1;
    if (eos < 0) eos = sq_tok_eos(tok);
    if (eos < 0) return sq_fail(e, SQ_EINVAL, "train: the tokenizer has no EOS token (looked for %s)", f->eos_token);
    char *text;
    size_t len;
    int rc = sq_file_read_all(path, &text, &len, e);
    if (rc) return rc;
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
                char *p = sq_text_format_prompt(f->prompt, q);
                rc = add_pair(d, tok, p, r, eos, 0, 0, where, e);
                free(p);
            }
        } else if (mode == SQ_TRAIN_QFT) {
            if (!q) rc = sq_fail(e, SQ_EPARSE, "%s: qft needs a string field \"query\"", where);
            else {
                char *t = sq_text_format_prompt(" {query}", q);
                rc = add_pair(d, tok, f->qft_prefix, t, eos, 0, 0, where, e);
                free(t);
            }
        } else if (mode == SQ_TRAIN_DPO) {
            const char *c = field(rec, c_names), *j = field(rec, j_names);
            if (!c || !j) rc = sq_fail(e, SQ_EPARSE, "%s: dpo needs string fields \"chosen\" and \"rejected\"", where);
            /* QPO pairs are questions written from the QFT prefix; with a "query" they are answers. */
            char *p = q ? sq_text_format_prompt(f->prompt, q) : sq_strdup(f->qft_prefix);
            char *tc = c ? sq_text_format_prompt(q ? "{query}" : " {query}", c) : NULL;
            char *tj = j ? sq_text_format_prompt(q ? "{query}" : " {query}", j) : NULL;
            if (!rc) rc = add_pair(d, tok, p, tc, eos, 0, 0, where, e);
            if (!rc) rc = add_pair(d, tok, p, tj, eos, 0, 0, where, e);
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
                char *p = sq_text_format_prompt(f->prompt, q);
                rc = add_pair(d, tok, p, "", -1, (float)v, 1, where, e);
                free(p);
            }
        }
        cJSON_Delete(rec);
    }
    free(text);
    if (!rc && d->n == 0) rc = sq_fail(e, SQ_EPARSE, "%s: no records", path);
    if (rc) sq_tdata_free(d);
    return rc;
}
