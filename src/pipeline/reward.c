/* The reward stage (reward.h): responses scored by a reward model in batches, then ranked and
 * selected per question; committed in input order through the stage framework. */
#include "scalequest/reward.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/chat_template.h"
#include "scalequest/cot.h"
#include "scalequest/jsonl.h"
#include "scalequest/tokenizer.h"

void sq_reward_opts_default(sq_reward_opts *o) {
    memset(o, 0, sizeof *o);
    sq_stage_opts_default(&o->stage);
    o->stage.name = "reward";
    o->field = "query";
    o->responses_field = "responses";
    o->gold_field = "answer";
    o->keep = SQ_KEEP_BEST;
    o->top_k = 1;
    o->chunk = 64;
    sq_scorer_opts_default(&o->scorer);
}

int sq_reward_parse_keep(const char *s, sq_reward_keep *keep, int *k, sq_err *e) {
    char *end;
    if (!strcmp(s, "best"))
        *keep = SQ_KEEP_BEST, *k = 1;
    else if (!strcmp(s, "all"))
        *keep = SQ_KEEP_ALL, *k = 0;
    else if (!strncmp(s, "top-", 4) && (*k = (int)strtol(s + 4, &end, 10)) > 0 && !*end)
        *keep = SQ_KEEP_TOPK;
    else
        return sq_fail(e, SQ_EINVAL, "keep: \"%s\" is none of best, all, top-K (K >= 1)", s);
    return 0;
}

int sq_reward_parse_select(const char *s, sq_reward_select *sel, sq_err *e) {
    static const char *names[] = {"reward", "majority", "gold", "random"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i])) return *sel = (sq_reward_select)i, 0;
    return sq_fail(e, SQ_EINVAL, "select: \"%s\" is none of reward, majority, gold, random", s);
}

int sq_reward_render(const sq_tokenizer *tok, const sq_chat_template *tmpl, const char *query,
                     const char *response, int32_t **ids, size_t *n, sq_err *e) {
    sq_buf text = {0};
    int rc, flags = SQ_TOK_PARSE_SPECIAL;
    if (tmpl) {
        sq_chat_msg m[2] = {{"user", query}, {"assistant", response}};
        rc = sq_chat_template_render(tmpl, m, 2, 0, &text, e);
    } else {
        rc = sq_buf_printf(&text, "%s\n\n%s", query, response) ? sq_fail(e, SQ_ENOMEM, "out of memory") : 0;
        flags |= SQ_TOK_ADD_SPECIAL;
    }
    if (!rc) rc = sq_tok_encode(tok, text.data ? text.data : "", text.len, flags, ids, n, e);
    sq_buf_free(&text);
    return rc;
}

/* ---- one question's candidates ------------------------------------------------------------ */

typedef struct cand {
    int idx;
    const char *text;
    char *answer; /* NULL: none */
    float reward;
    int scored;
    size_t len;
} cand;

typedef struct item {
    cJSON *rec;
    int64_t slot;
    int64_t line;
    cand *c;
    int n;
    const char *drop; /* a reason to drop it before ranking */
} item;

static int better(const cand *a, const cand *b, int by_reward) {
    if (by_reward && a->scored != b->scored) return a->scored;
    if (by_reward && a->scored && a->reward != b->reward) return a->reward > b->reward;
    if (a->len != b->len) return a->len < b->len;
    return a->idx < b->idx;
}

/* Sort an index list best first (insertion sort: n is small). */
static void rank(const cand *c, int *ord, int n, int by_reward) {
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && better(&c[ord[j]], &c[ord[j - 1]], by_reward); j--) {
            int t = ord[j];
            ord[j] = ord[j - 1], ord[j - 1] = t;
        }
}

typedef struct job {
    const sq_reward_opts *o;
    sq_scorer *sc;
    const sq_chat_template *tmpl;
    int64_t too_long;
} job;

/* The selected candidates, best first, into ord; returns their count (0: drop, *why set). */
static int select_cands(const job *j, item *it, cJSON *rec, int *ord, const char **why) {
    const sq_reward_opts *o = j->o;
    int by_reward = j->sc != NULL, n = 0;
    for (int k = 0; k < it->n; k++)
        ord[n++] = k;
    rank(it->c, ord, n, by_reward);
    if (o->select == SQ_SELECT_REWARD) {
        int m = 0;
        for (int k = 0; k < n; k++)
            if (it->c[ord[k]].scored) ord[m++] = ord[k];
        if (!m) *why = "no response fits the reward model's context";
        return m;
    }
    if (o->select == SQ_SELECT_RANDOM) {
        sq_rng r;
        sq_rng_seed(&r, sq_stage_seed(o->seed, sq_rec_id(rec)));
        int pick = (int)sq_rng_below(&r, (uint64_t)it->n);
        ord[0] = pick;
        return 1;
    }
    if (o->select == SQ_SELECT_GOLD) {
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(rec, o->gold_field);
        char num[64];
        const char *graw = cJSON_IsString(g) ? g->valuestring : NULL;
        if (cJSON_IsNumber(g)) snprintf(num, sizeof num, "%.17g", g->valuedouble), graw = num;
        if (!graw) return *why = "no gold answer", 0;
        char *gold = sq_grade_gold(graw, o->gold_format);
        if (!gold) return *why = "no gold answer", 0;
        int m = 0;
        for (int k = 0; k < n; k++) {
            const cand *c = &it->c[ord[k]];
            if (c->answer && sq_grade_equal(gold, c->answer, NULL)) ord[m++] = ord[k];
        }
        free(gold);
        if (!m) *why = "no response matches the gold answer";
        return m;
    }
    /* majority: votes per candidate = candidates with an equivalent answer */
    int best = -1, best_votes = 0;
    for (int k = 0; k < n; k++) {
        const cand *c = &it->c[ord[k]];
        if (!c->answer) continue;
        int votes = 0;
        for (int l = 0; l < n; l++)
            if (it->c[ord[l]].answer && (l == k || sq_grade_equal(c->answer, it->c[ord[l]].answer, NULL)))
                votes++;
        if (votes > best_votes) best_votes = votes, best = ord[k]; /* ord is ranked: ties keep the better */
    }
    if (best < 0) return *why = "no response has an answer", 0;
    int m = 0;
    for (int k = 0; k < n; k++) {
        const cand *c = &it->c[ord[k]];
        if (c->answer && (ord[k] == best || sq_grade_equal(it->c[best].answer, c->answer, NULL)))
            ord[m++] = ord[k];
    }
    cJSON_DeleteItemFromObjectCaseSensitive(rec, "votes");
    cJSON_AddNumberToObject(rec, "votes", best_votes);
    return m;
}

static int settle(job *j, sq_stage *st, item *it, sq_err *e) {
    cJSON *rec = it->rec;
    it->rec = NULL;
    if (it->drop) return sq_stage_drop(st, it->slot, rec, it->drop, e);
    int ord_s[64], *ord = it->n <= 64 ? ord_s : malloc(sizeof *ord * (size_t)it->n);
    if (!ord) return cJSON_Delete(rec), sq_fail(e, SQ_ENOMEM, "out of memory");
    const char *why = NULL;
    int m = select_cands(j, it, rec, ord, &why);
    const char *fields[] = {"rewards", "kept", "response", "extracted", "reward"};
    for (size_t f = 0; f < SQ_ARRAY_LEN(fields); f++)
        cJSON_DeleteItemFromObjectCaseSensitive(rec, fields[f]);
    if (j->sc) {
        cJSON *rw = cJSON_AddArrayToObject(rec, "rewards");
        for (int k = 0; k < it->n; k++)
            cJSON_AddItemToArray(rw,
                                 it->c[k].scored ? cJSON_CreateNumber(it->c[k].reward) : cJSON_CreateNull());
    }
    int rc;
    if (m == 0) {
        rc = sq_stage_drop(st, it->slot, rec, why ? why : "nothing selected", e);
    } else {
        int keep = j->o->keep == SQ_KEEP_ALL                       ? m
                   : j->o->keep == SQ_KEEP_TOPK && j->o->top_k < m ? j->o->top_k
                   : j->o->keep == SQ_KEEP_TOPK                    ? m
                                                                   : 1;
        cJSON *kept = cJSON_AddArrayToObject(rec, "kept");
        for (int k = 0; k < keep; k++) {
            const cand *c = &it->c[ord[k]];
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "index", c->idx);
            cJSON_AddStringToObject(o, "response", c->text);
            if (c->answer) cJSON_AddStringToObject(o, "answer", c->answer);
            if (c->scored) cJSON_AddNumberToObject(o, "reward", c->reward);
            cJSON_AddItemToArray(kept, o);
        }
        const cand *b = &it->c[ord[0]];
        cJSON_AddStringToObject(rec, "response", b->text);
        if (b->answer) cJSON_AddStringToObject(rec, "extracted", b->answer);
        if (b->scored) cJSON_AddNumberToObject(rec, "reward", b->reward);
        rc = sq_stage_keep(st, it->slot, rec, e);
    }
    if (ord != ord_s) free(ord);
    return rc;
}

/* Fill it->c from the record (texts point into it->rec); a record that is not a question with
 * responses is an error naming file:line. */
static int read_item(job *j, item *it, sq_err *e) {
    const sq_reward_opts *o = j->o;
    const char *path = o->stage.in;
    const char *q = sq_rec_str(it->rec, o->field);
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(it->rec, o->responses_field);
    if (!q) return sq_fail(e, SQ_EPARSE, "%s:%lld: no string \"%s\"", path, (long long)it->line, o->field);
    if (!cJSON_IsArray(rs))
        return sq_fail(e, SQ_EPARSE, "%s:%lld: no array \"%s\"", path, (long long)it->line,
                       o->responses_field);
    int n = cJSON_GetArraySize(rs);
    const cJSON *as = sq_rec_array(it->rec, "answers");
    if (as && cJSON_GetArraySize(as) != n) as = NULL;
    it->c = calloc((size_t)(n > 0 ? n : 1), sizeof *it->c);
    if (!it->c) return sq_fail(e, SQ_ENOMEM, "out of memory");
    for (int k = 0; k < n; k++) {
        const cJSON *r = cJSON_GetArrayItem(rs, k);
        if (!cJSON_IsString(r))
            return sq_fail(e, SQ_EPARSE, "%s:%lld: %s[%d] is not a string", path, (long long)it->line,
                           o->responses_field, k);
        cand *c = &it->c[k];
        c->idx = k;
        c->text = r->valuestring;
        c->len = strlen(c->text);
        const cJSON *a = as ? cJSON_GetArrayItem(as, k) : NULL;
        c->answer = cJSON_IsString(a) ? sq_strdup(a->valuestring) : sq_cot_final_answer(c->text, NULL);
        it->n++;
    }
    if (n == 0) it->drop = "no responses";
    return 0;
}

static int score_items(job *j, item *its, int n_items, sq_err *e) {
    int total = 0;
    for (int i = 0; i < n_items; i++)
        total += its[i].drop ? 0 : its[i].n;
    if (!j->sc || total == 0) return 0;
    int32_t **ids = calloc((size_t)total, sizeof *ids);
    int *lens = calloc((size_t)total, sizeof *lens);
    float *vals = calloc((size_t)total, sizeof *vals);
    cand **who = calloc((size_t)total, sizeof *who);
    int rc = (!ids || !lens || !vals || !who) ? sq_fail(e, SQ_ENOMEM, "out of memory") : 0, m = 0;
    int ctx = sq_scorer_ctx_len(j->sc);
    const sq_tokenizer *tok = sq_scorer_tokenizer(j->sc);
    for (int i = 0; i < n_items && !rc; i++) {
        if (its[i].drop) continue;
        const char *q = sq_rec_str(its[i].rec, j->o->field);
        for (int k = 0; k < its[i].n && !rc; k++) {
            size_t nt = 0;
            int32_t *t = NULL;
            if ((rc = sq_reward_render(tok, j->tmpl, q, its[i].c[k].text, &t, &nt, e))) {
                sq_err_wrap(e, "record \"%s\" response %d", sq_rec_id(its[i].rec), k);
                break;
            }
            if (nt == 0 || sq_scorer_scored_len(j->sc, t, (int)nt) > ctx) {
                j->too_long++;
                free(t);
                continue;
            }
            ids[m] = t, lens[m] = (int)nt, who[m] = &its[i].c[k];
            m++;
        }
    }
    if (!rc && m) rc = sq_scorer_score_ids(j->sc, (const int32_t *const *)ids, lens, m, vals, e);
    for (int k = 0; k < m; k++) {
        if (!rc) who[k]->reward = vals[k], who[k]->scored = 1;
        free(ids[k]);
    }
    free(ids), free(lens), free(vals), free(who);
    return rc;
}

static void free_item(item *it) {
    for (int k = 0; k < it->n; k++)
        free(it->c[k].answer);
    free(it->c);
    cJSON_Delete(it->rec);
    memset(it, 0, sizeof *it);
}

static int run_chunks(job *j, sq_stage *st, sq_err *e) {
    int chunk = j->o->chunk > 0 ? j->o->chunk : 64;
    item *its = calloc((size_t)chunk, sizeof *its);
    if (!its) return sq_fail(e, SQ_ENOMEM, "out of memory");
    int rc = 0;
    for (int eof = 0; !eof && !rc;) {
        int n = 0;
        while (n < chunk && !rc) {
            item *it = &its[n];
            int got = sq_stage_next(st, &it->rec, &it->slot, e);
            if (got < 0) rc = got;
            if (got <= 0) {
                eof = 1;
                break;
            }
            it->line = sq_stage_input_line(st);
            n++;
            rc = read_item(j, it, e);
        }
        if (!rc) rc = score_items(j, its, n, e);
        for (int i = 0; i < n; i++) {
            if (!rc) rc = settle(j, st, &its[i], e);
            free_item(&its[i]);
        }
        sq_stage_add_tokens(st, 0, 0);
    }
    free(its);
    return rc;
}

int sq_reward_run(const sq_reward_opts *o, sq_err *e) {
    if (!o->stage.in || !o->stage.out)
        return sq_fail(e, SQ_EINVAL, "reward: an input and an output are needed");
    if (o->select == SQ_SELECT_REWARD && !o->model)
        return sq_fail(e, SQ_EINVAL, "reward: --select reward needs a reward model (--model DIR)");
    sq_reward_opts oo = *o;
    if (!oo.field) oo.field = "query";
    if (!oo.responses_field) oo.responses_field = "responses";
    if (!oo.gold_field) oo.gold_field = "answer";
    if (!oo.stage.name) oo.stage.name = "reward";
    job j = {.o = &oo};
    sq_chat_template *own = NULL;
    int rc = 0;
    if (oo.model && (rc = sq_scorer_open(&j.sc, oo.model, &oo.scorer, e))) return rc;
    if (j.sc) {
        if (oo.chat_template && !strcmp(oo.chat_template, "none"))
            j.tmpl = NULL;
        else if (oo.chat_template) {
            if ((rc = sq_chat_template_open(&own, oo.chat_template, e))) {
                sq_scorer_close(j.sc);
                return sq_err_wrap(e, "reward: chat template \"%s\"", oo.chat_template), rc;
            }
            j.tmpl = own;
        } else if (!(j.tmpl = sq_scorer_chat_template(j.sc))) {
            /* Never a silent fallback: scores of another rendering mean nothing. */
            sq_scorer_close(j.sc);
            return sq_fail(e, SQ_EINVAL,
                           "reward: %s has no chat template the reward model was trained with; name one with "
                           "--chat-template SPEC (or none for \"QUESTION\\n\\nRESPONSE\")",
                           oo.model);
        }
    }
    sq_stage *st = NULL;
    if (oo.stage.window < oo.chunk) oo.stage.window = oo.chunk;
    if (!(rc = sq_stage_open(&st, &oo.stage, e))) {
        rc = run_chunks(&j, st, e);
        if (rc)
            sq_stage_abort(st);
        else
            rc = sq_stage_close(st, NULL, e);
    }
    if (!rc && j.too_long && !sq_progress_is_quiet())
        fprintf(stderr, "reward: %lld responses longer than the reward model's context were not scored\n",
                (long long)j.too_long);
    if (own) sq_chat_template_free(own);
    sq_scorer_close(j.sc);
    return rc;
}

/* ---- outcome-reward training data ---------------------------------------------------------- */

int sq_reward_orm_data(const sq_reward_opts *o, const char *model_dir, const char *out,
                       sq_orm_data_stats *stp, sq_err *e) {
    sq_orm_data_stats s = {0};
    sq_tokenizer *tok = NULL;
    sq_chat_template *tmpl = NULL;
    sq_jsonl_reader *r = NULL;
    sq_atomic_file af;
    int rc = sq_tok_load(&tok, model_dir, e), opened = 0;
    if (!rc && (!o->chat_template || strcmp(o->chat_template, "none"))) {
        sq_err ce = {0};
        if (sq_chat_template_open(&tmpl, o->chat_template ? o->chat_template : model_dir, &ce)) {
            tmpl = NULL;
            if (o->chat_template) rc = sq_fail(e, ce.code, "%s", ce.msg);
        }
    }
    if (!rc) rc = sq_jsonl_open(&r, o->stage.in, 0, e);
    if (!rc && !(rc = sq_atomic_open(&af, out, e))) opened = 1;
    const char *gf = o->gold_field ? o->gold_field : "answer";
    const char *rf = o->responses_field ? o->responses_field : "responses";
    const char *qf = o->field ? o->field : "query";
    cJSON *rec = NULL;
    sq_buf line = {0};
    while (!rc && (rc = sq_jsonl_next(r, &rec, e)) == 1) {
        rc = 0;
        long long ln = (long long)sq_jsonl_line_number(r);
        const char *id = sq_rec_id(rec), *q = sq_rec_str(rec, qf);
        const cJSON *rs = sq_rec_array(rec, rf), *g = cJSON_GetObjectItemCaseSensitive(rec, gf);
        char num[64];
        const char *graw = cJSON_IsString(g) ? g->valuestring : NULL;
        if (cJSON_IsNumber(g)) snprintf(num, sizeof num, "%.17g", g->valuedouble), graw = num;
        char *gold = graw ? sq_grade_gold(graw, o->gold_format) : NULL;
        if (!id || !q || !rs || !gold)
            rc = sq_fail(e, SQ_EPARSE, "%s:%lld: needs \"id\", \"%s\", \"%s\" and a gold \"%s\"", o->stage.in,
                         ln, qf, rf, gf);
        int k = 0;
        const cJSON *t;
        cJSON_ArrayForEach(t, rs) {
            if (rc) break;
            if (!cJSON_IsString(t)) {
                rc = sq_fail(e, SQ_EPARSE, "%s:%lld: %s[%d] is not a string", o->stage.in, ln, rf, k);
                break;
            }
            char *ans = sq_cot_final_answer(t->valuestring, NULL);
            int ok = ans && sq_grade_equal(gold, ans, NULL);
            free(ans);
            int32_t *ids = NULL;
            size_t n = 0;
            if ((rc = sq_reward_render(tok, tmpl, q, t->valuestring, &ids, &n, e))) break;
            sq_buf_reset(&line);
            cJSON *idj = cJSON_CreateString(id);
            char *ids_s = cJSON_PrintUnformatted(idj);
            cJSON_Delete(idj);
            int w = sq_buf_printf(&line, "{\"id\":\"%.*s#%d\",\"input_ids\":[", (int)strlen(ids_s) - 2,
                                  ids_s + 1, k);
            free(ids_s);
            for (size_t i = 0; i < n && !w; i++)
                w = sq_buf_printf(&line, i ? ",%d" : "%d", (int)ids[i]);
            if (!w) w = sq_buf_printf(&line, "],\"value\":%d}\n", ok);
            free(ids);
            if (w || fwrite(line.data, 1, line.len, af.fp) != line.len)
                rc = sq_fail(e, SQ_EIO, "%s: write failed", out);
            s.responses++, s.correct += ok, k++;
        }
        free(gold);
        s.records++;
        cJSON_Delete(rec);
        rec = NULL;
    }
    if (rc > 0) rc = 0;
    sq_buf_free(&line);
    if (opened) {
        if (rc)
            sq_atomic_abort(&af);
        else
            rc = sq_atomic_commit(&af, e);
    }
    sq_jsonl_close(r);
    if (tmpl) sq_chat_template_free(tmpl);
    sq_tok_free(tok);
    if (stp) *stp = s;
    return rc;
}
