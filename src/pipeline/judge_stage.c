/* The prompt-per-record loop of judge_stage.h on top of sq_stage_run_generate. */
#include <string.h>

#include "judge_stage.h"
#include "scalequest/jsonl.h"

typedef struct run {
    const sq_judge_stage *j;
    int drop_rc; /* a drop in build that failed: build cannot return it (the record is gone) */
    sq_err drop_err;
} run;

static int build(void *user, sq_stage *st, int64_t slot, cJSON *rec, sq_gen_request *q, sq_arena *a, sq_err *e) {
    run *u = user;
    const sq_judge_stage *j = u->j;
    const char *question = sq_rec_str(rec, j->field);
    if (!question) {
        /* the drop owns rec from here, whatever it returns */
        sq_err de = {0};
        int rc = sq_stage_drop(st, slot, rec, "no_query", &de);
        if (rc && !u->drop_rc) u->drop_rc = rc, u->drop_err = de;
        return 1;
    }
    size_t n = sq_prompt_build(j->kind, question, NULL, 0);
    char *p = sq_arena_alloc(a, n + 1);
    if (!p) return sq_fail(e, SQ_ENOMEM, "out of memory for a %zu-byte prompt", n);
    sq_prompt_build(j->kind, question, p, n + 1);
    q->id = sq_rec_id(rec);
    q->params = j->params;
    q->params.n = 1;
    q->params.seed = sq_stage_seed(j->params.seed, q->id);
    return sq_stage_request_text(q, p, j->raw_prompt, a, e);
}

/* Length of the well-formed UTF-8 sequence at s (1..4), or 0. */
static int utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    int len = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (!len || (size_t)len > n) return 0;
    for (int i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if (len == 3 && ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F))) return 0;
    if (len == 4 && ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] > 0x8F))) return 0;
    return len;
}

/* The reply as it is, or (when it is not UTF-8: a reply cut inside a character at max_tokens,
 * a broken server) a copy with U+FFFD for each bad byte, so the output stays JSONL that any
 * reader — and the stage's own resume — can read back. */
static const char *valid_utf8(const char *t, sq_buf *fix) {
    const unsigned char *s = (const unsigned char *)t;
    size_t n = strlen(t), i = 0;
    while (i < n) {
        int l = utf8_len(s + i, n - i);
        if (!l) break;
        i += (size_t)l;
    }
    if (i == n) return t;
    sq_buf_append(fix, t, i);
    while (i < n) {
        int l = utf8_len(s + i, n - i);
        if (l) sq_buf_append(fix, s + i, (size_t)l), i += (size_t)l;
        else sq_buf_puts(fix, "\xef\xbf\xbd"), i++;
    }
    return fix->data ? fix->data : "";
}

static int finish(void *user, sq_stage *st, int64_t slot, cJSON *rec, const sq_gen_result *r, sq_err *e) {
    const sq_judge_stage *j = ((run *)user)->j;
    sq_buf fix = {0};
    const char *reply = valid_utf8(r->n_choices > 0 && r->choices[0].text ? r->choices[0].text : "", &fix);
    int rc = j->settle(j->user, st, slot, rec, reply, r, e);
    sq_buf_free(&fix);
    return rc;
}

int sq_judge_stage_run(sq_backend *b, const sq_stage_opts *so, const sq_judge_stage *j, sq_stage_counts *counts,
                       sq_err *e) {
    sq_stage *st = NULL;
    int rc = sq_stage_open(&st, so, e);
    if (rc) return rc;
    run u = {j, 0, {0}};
    sq_stage_gen g = {build, finish, &u, 256};
    rc = sq_stage_run_generate(st, b, &g, e);
    if (!rc && u.drop_rc) rc = u.drop_rc, *e = u.drop_err;
    if (rc) {
        sq_stage_abort(st);
        return rc;
    }
    return sq_stage_close(st, counts, e);
}
