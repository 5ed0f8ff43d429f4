/* The optimize stage (optimize.h): one Figure-9 or Figure-10 request per question, the
 * rewrite parsed out of the reply, the pair written as a QPO preference example. */
#include "scalequest/optimize.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/jsonl.h"
#include "scalequest/judge.h"
#include "scalequest/qgen.h"

void sq_optimize_opts_default(sq_optimize_opts *o) {
    memset(o, 0, sizeof *o);
    sq_stage_opts_default(&o->stage);
    o->stage.name = "optimize";
    o->field = "query";
    o->p_solvability = 0.5;
    sq_gen_params_default(&o->params);
    o->params.temperature = 0.7f;
    o->params.top_p = 1.0f;
    o->params.max_tokens = 2048;
}

int sq_optimize_parse_directions(const char *s, double *p, sq_err *e) {
    if (!strcmp(s, "mix")) return *p = 0.5, 0;
    if (!strcmp(s, "solvability")) return *p = 1.0, 0;
    if (!strcmp(s, "difficulty")) return *p = 0.0, 0;
    if (!strncmp(s, "mix:", 4)) {
        char *end;
        double v = strtod(s + 4, &end);
        if (end != s + 4 && !*end && v >= 0 && v <= 1) return *p = v, 0;
    }
    return sq_fail(e, SQ_EINVAL, "directions \"%s\": expected mix, solvability, difficulty or mix:P (P in [0,1], the "
                   "solvability share)", s);
}

int sq_optimize_pick_solvability(uint64_t seed, const char *id, double p) {
    if (p >= 1) return 1;
    if (p <= 0) return 0;
    uint64_t h = sq_stage_seed(seed ^ 0x9e3779b97f4a7c15ull, id);
    h ^= h >> 31, h *= 0xbf58476d1ce4e5b9ull, h ^= h >> 29;
    return (double)(h >> 11) * (1.0 / 9007199254740992.0) < p;
}

typedef struct opt_job {
    const sq_optimize_opts *o;
} opt_job;

static int build(void *user, sq_stage *st, int64_t slot, cJSON *rec, sq_gen_request *q, sq_arena *a, sq_err *e) {
    const opt_job *j = user;
    const sq_optimize_opts *o = j->o;
    const char *question = sq_rec_str(rec, o->field);
    if (!question) {
        char why[96];
        snprintf(why, sizeof why, "no %.60s", o->field);
        int rc = sq_stage_drop(st, slot, rec, why, e); /* takes rec, whatever it returns */
        return rc ? rc : 1;
    }
    q->id = sq_rec_id(rec);
    int solv = sq_optimize_pick_solvability(o->params.seed, q->id, o->p_solvability);
    sq_prompt_kind k = solv ? SQ_PROMPT_SOLVABILITY_OPTIMIZE : SQ_PROMPT_DIFFICULTY_OPTIMIZE;
    if (sq_rec_set_str(rec, "direction", solv ? "solvability" : "difficulty"))
        return sq_fail(e, SQ_ENOMEM, "out of memory");
    size_t n = sq_prompt_build(k, question, NULL, 0);
    char *text = sq_arena_alloc(a, n + 1);
    if (!text) return sq_fail(e, SQ_ENOMEM, "out of memory");
    sq_prompt_build(k, question, text, n + 1);
    q->params = o->params;
    q->params.n = 1;
    q->params.seed = sq_stage_seed(o->params.seed, q->id);
    return sq_stage_request_text(q, text, o->raw_prompt, a, e);
}

static int finish(void *user, sq_stage *st, int64_t slot, cJSON *rec, const sq_gen_result *r, sq_err *e) {
    const opt_job *j = user;
    const sq_optimize_opts *o = j->o;
    const char *reply = r->n_choices > 0 && r->choices[0].text ? r->choices[0].text : "";
    const char *dir = sq_rec_str(rec, "direction");
    sq_prompt_kind k = dir && !strcmp(dir, "solvability") ? SQ_PROMPT_SOLVABILITY_OPTIMIZE : SQ_PROMPT_DIFFICULTY_OPTIMIZE;
    const char *span = NULL;
    size_t span_len = 0;
    int prc = sq_reply_rewrite(k, reply, strlen(reply), &span, &span_len);
    char *rewrite = NULL, *a = NULL, *b = NULL;
    const char *why = NULL;
    if (!*reply) why = "empty reply";
    else if (prc == SQ_ENOTFOUND) why = "no rewrite marker";
    else if (prc) why = "empty rewrite";
    else {
        rewrite = malloc(span_len + 1);
        if (!rewrite) {
            cJSON_Delete(rec);
            return sq_fail(e, SQ_ENOMEM, "out of memory");
        }
        memcpy(rewrite, span, span_len);
        rewrite[span_len] = 0;
        a = sq_qgen_normalize(rewrite);
        b = sq_qgen_normalize(sq_rec_str(rec, o->field));
        if (!a || !b) {
            free(rewrite), free(a), free(b);
            cJSON_Delete(rec);
            return sq_fail(e, SQ_ENOMEM, "out of memory");
        }
        if (!*a) why = "empty rewrite";
        else if (!strcmp(a, b)) why = "unchanged";
    }
    int rc = sq_rec_set_str(rec, "optimizer_reply", reply);
    if (!rc && !why) {
        /* chosen = the rewrite, rejected = the original (paper eq. 2: y_w, y_l) */
        rc = sq_rec_set_str(rec, "chosen", rewrite);
        if (!rc) rc = sq_rec_set_str(rec, "rejected", sq_rec_str(rec, o->field));
        if (!rc && o->prefix) rc = sq_rec_set_str(rec, "prompt", o->prefix);
    }
    free(rewrite), free(a), free(b);
    if (rc) {
        cJSON_Delete(rec);
        return sq_fail(e, SQ_ENOMEM, "out of memory");
    }
    return why ? sq_stage_drop(st, slot, rec, why, e) : sq_stage_keep(st, slot, rec, e);
}

int sq_optimize_run(sq_backend *b, const sq_optimize_opts *o, sq_stage_counts *counts, sq_err *e) {
    if (!o->stage.in) return sq_fail(e, SQ_EINVAL, "optimize: no input file given");
    if (!(o->p_solvability >= 0 && o->p_solvability <= 1))
        return sq_fail(e, SQ_EINVAL, "optimize: the solvability share must be in [0, 1]");
    sq_optimize_opts oo = *o;
    if (!oo.field) oo.field = "query";
    sq_stage_opts so = oo.stage;
    if (!so.name) so.name = "optimize";
    so.own_marker = 1; /* its rewrites are new questions that no decontaminate has seen */
    opt_job j = {&oo};
    sq_stage_gen g = {build, finish, &j, 256};
    return sq_stage_run_all(&so, b, &g, counts, e);
}
