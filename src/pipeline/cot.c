/* The CoT prompt (one user turn: question + instruction) and the final-answer rule. */
#include "scalequest/cot.h"

#include <stdlib.h>
#include <string.h>

#include "scalequest/chat_template.h"
#include "scalequest/grade.h"

int sq_cot_prompt_open(sq_cot_prompt *p, const char *spec, const char *instruction, sq_err *e) {
    memset(p, 0, sizeof *p);
    p->instruction = !instruction ? SQ_COT_INSTRUCTION : !strcmp(instruction, "none") ? "" : instruction;
    if (!spec) return 0;
    if (!strcmp(spec, "none")) {
        p->plain = 1;
        return 0;
    }
    int rc = sq_chat_template_open(&p->tmpl, spec, e);
    if (rc) sq_err_wrap(e, "chat template \"%s\"", spec);
    return rc;
}

void sq_cot_prompt_close(sq_cot_prompt *p) {
    if (p->tmpl) sq_chat_template_free(p->tmpl);
    p->tmpl = NULL;
}

static char *arena_str(sq_arena *a, const char *s, size_t n) {
    char *d = sq_arena_alloc(a, n + 1);
    if (d) memcpy(d, s, n), d[n] = 0;
    return d;
}

int sq_cot_prompt_fill(const sq_cot_prompt *p, const char *question, sq_gen_request *q, sq_arena *a,
                       sq_err *e) {
    sq_buf user = {0};
    int rc = 0;
    if (sq_buf_puts(&user, question) || (p->instruction[0] && sq_buf_printf(&user, "\n%s", p->instruction)))
        return sq_buf_free(&user), sq_fail(e, SQ_ENOMEM, "out of memory");
    if (p->plain) {
        if (sq_buf_puts(&user, "\n")) rc = sq_fail(e, SQ_ENOMEM, "out of memory");
        if (!rc && !(q->prompt = arena_str(a, user.data, user.len)))
            rc = sq_fail(e, SQ_ENOMEM, "out of memory");
        sq_buf_free(&user);
        return rc;
    }
    sq_chat_msg *m = sq_arena_alloc(a, 2 * sizeof *m);
    char *content = arena_str(a, user.data, user.len);
    sq_buf_free(&user);
    if (!m || !content) return sq_fail(e, SQ_ENOMEM, "out of memory");
    int nm = 0;
    if (p->system) m[nm++] = (sq_chat_msg){"system", p->system};
    m[nm++] = (sq_chat_msg){"user", content};
    if (!p->tmpl) {
        q->messages = m;
        q->n_messages = nm;
        return 0;
    }
    sq_buf text = {0};
    rc = sq_chat_template_render(p->tmpl, m, nm, 1, &text, e);
    if (!rc && !(q->prompt = arena_str(a, text.data ? text.data : "", text.len)))
        rc = sq_fail(e, SQ_ENOMEM, "out of memory");
    sq_buf_free(&text);
    if (rc) return rc;
    int ns = q->params.n_stop + p->tmpl->n_assistant_stops;
    const char **stops = sq_arena_alloc(a, sizeof *stops * (size_t)(ns > 0 ? ns : 1));
    if (!stops) return sq_fail(e, SQ_ENOMEM, "out of memory");
    int k = 0;
    for (int i = 0; i < q->params.n_stop; i++)
        stops[k++] = q->params.stop[i];
    for (int i = 0; i < p->tmpl->n_assistant_stops; i++)
        stops[k++] = p->tmpl->assistant_stops[i];
    q->params.stop = stops;
    q->params.n_stop = k;
    return 0;
}

char *sq_cot_final_answer(const char *response, const char **how) {
    const char *rule = NULL;
    char *ans = sq_grade_extract(response ? response : "", NULL, &rule);
    if (how) *how = rule;
    if (!ans) return NULL;
    int ok = rule && (!strcmp(rule, "boxed") || !strcmp(rule, "answer_is") || !strcmp(rule, "final_answer"));
    const char *s = ans;
    while (*s == ' ' || *s == '\t' || *s == '\n')
        s++;
    if (!ok || !*s) {
        free(ans);
        return NULL;
    }
    return ans;
}
