/* Grading a JSONL file of responses: the record loop behind `scalequest grade`. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/grade.h"
#include "scalequest/jsonl.h"

void sq_grade_file_opts_init(sq_grade_file_opts *o) {
    memset(o, 0, sizeof *o);
    o->gold_field = "answer";
    o->pred_field = "response";
    o->gold_format = SQ_GOLD_AUTO;
    sq_grade_opts_init(&o->grade);
}

/* The gold field as text: strings as they are, numbers printed, lists joined with ", " (each
 * item through the gold extraction: OlympiadBench's ["$3$", "$4$"]). */
static char *gold_text(const cJSON *v) {
    if (cJSON_IsString(v)) return sq_strdup(v->valuestring);
    if (cJSON_IsNumber(v)) {
        char b[64];
        snprintf(b, sizeof b, "%.17g", v->valuedouble);
        return sq_strdup(b);
    }
    if (cJSON_IsArray(v)) {
        sq_buf b = {0};
        const cJSON *it;
        int first = 1;
        cJSON_ArrayForEach(it, v) {
            char *s = gold_text(it);
            if (!s) continue;
            char *g = sq_grade_gold(s, SQ_GOLD_AUTO);
            if (!first) sq_buf_puts(&b, ", ");
            sq_buf_puts(&b, g ? g : s);
            first = 0;
            free(g);
            free(s);
        }
        return b.data ? b.data : sq_strdup("");
    }
    return NULL;
}

/* Grade one response: its extracted answer (malloc'd, NULL if none) and whether it is right. */
static int grade_one(const sq_grade_file_opts *o, const char *gold, const char *pred, char **ex) {
    *ex = o->pred_is_answer ? sq_strdup(pred) : sq_grade_extract(pred, &o->grade, NULL);
    return gold && *ex && sq_grade_equal(gold, *ex, &o->grade);
}

/* generate's output: a list of completions, each graded; pass@k and the majority vote. */
static int grade_list(const sq_grade_file_opts *o, cJSON *rec, const cJSON *pv, const char *gold, const char *path,
                      int64_t line, sq_grade_file_stats *st, sq_err *e) {
    int k = cJSON_GetArraySize(pv);
    char **ex = calloc((size_t)(k > 0 ? k : 1), sizeof *ex);
    int *votes = calloc((size_t)(k > 0 ? k : 1), sizeof *votes), *ok = calloc((size_t)(k > 0 ? k : 1), sizeof *ok);
    cJSON *exs = cJSON_CreateArray(), *oks = cJSON_CreateArray();
    int rc = ex && votes && ok && exs && oks ? 0 : sq_fail(e, SQ_ENOMEM, "out of memory");
    for (int i = 0; i < k && !rc; i++) {
        const cJSON *it = cJSON_GetArrayItem(pv, i);
        if (!cJSON_IsString(it)) {
            rc = sq_fail(e, SQ_EPARSE, "%s:%lld: \"%s\"[%d] is not a string", path, (long long)line, o->pred_field, i);
            break;
        }
        ok[i] = grade_one(o, gold, it->valuestring, &ex[i]);
        st->n++;
        st->correct += ok[i];
        st->no_answer += !ex[i];
        cJSON_AddItemToArray(exs, ex[i] ? cJSON_CreateString(ex[i]) : cJSON_CreateNull());
        cJSON_AddItemToArray(oks, cJSON_CreateBool(ok[i]));
    }
    /* Majority: each answer votes for the first earlier one it equals. */
    int best = -1, pass = 0;
    for (int i = 0; i < k && !rc; i++) {
        pass |= ok[i];
        if (!ex[i]) continue;
        int j = 0;
        while (j < i && !(ex[j] && votes[j] >= 0 && sq_grade_equal(ex[j], ex[i], &o->grade))) j++;
        if (j < i) {
            votes[j]++;
            votes[i] = -1;
        } else {
            votes[i] = 1;
        }
    }
    for (int i = 0; i < k && !rc; i++)
        if (ex[i] && votes[i] > 0 && (best < 0 || votes[i] > votes[best])) best = i;
    if (!rc) {
        st->multi++;
        st->pass += pass;
        st->majority_correct += best >= 0 && ok[best];
        if (k > st->k) st->k = k;
        int set = sq_rec_set(rec, "extracted", exs);
        exs = NULL;
        if (!set) set = sq_rec_set(rec, "correct", oks);
        oks = NULL;
        if (!set) set = gold ? sq_rec_set_str(rec, "gold_answer", gold) : sq_rec_set(rec, "gold_answer", cJSON_CreateNull());
        if (!set) set = sq_rec_set_bool(rec, "pass", pass);
        if (!set) set = best >= 0 ? sq_rec_set_str(rec, "majority", ex[best]) : sq_rec_set(rec, "majority", cJSON_CreateNull());
        if (!set) set = sq_rec_set_bool(rec, "majority_correct", best >= 0 && ok[best]);
        if (set) rc = sq_fail(e, SQ_ENOMEM, "out of memory");
    }
    cJSON_Delete(exs);
    cJSON_Delete(oks);
    for (int i = 0; ex && i < k; i++) free(ex[i]);
    free(ex);
    free(votes);
    free(ok);
    return rc;
}

static int grade_record(const sq_grade_file_opts *o, cJSON *rec, const char *path, int64_t line,
                        sq_grade_file_stats *st, sq_err *e) {
    const cJSON *gv = cJSON_GetObjectItemCaseSensitive(rec, o->gold_field);
    const cJSON *pv = cJSON_GetObjectItemCaseSensitive(rec, o->pred_field);
    const char *pred = cJSON_IsString(pv) ? pv->valuestring : NULL;
    int list = cJSON_IsArray(pv);
    char *graw = gv ? gold_text(gv) : NULL;
    if (!graw || (!pred && !list)) {
        free(graw);
        return sq_fail(e, SQ_EPARSE, "%s:%lld: record has no %s \"%s\"", path, (long long)line,
                       graw ? "string (or list of strings)" : "string", graw ? o->pred_field : o->gold_field);
    }
    char *gold = cJSON_IsArray(gv) ? sq_strdup(graw) : sq_grade_gold(graw, o->gold_format);
    if (list) {
        int rc = grade_list(o, rec, pv, gold, path, line, st, e);
        free(gold);
        free(graw);
        return rc;
    }
    char *ex = NULL;
    int ok = grade_one(o, gold, pred, &ex);
    st->no_answer += !ex;
    st->correct += ok;
    st->n++;
    int set = ex ? sq_rec_set_str(rec, "extracted", ex) : sq_rec_set(rec, "extracted", cJSON_CreateNull());
    if (!set) set = gold ? sq_rec_set_str(rec, "gold_answer", gold) : sq_rec_set(rec, "gold_answer", cJSON_CreateNull());
    if (!set) set = sq_rec_set_bool(rec, "correct", ok);
    free(gold);
    free(graw);
    free(ex);
    return set ? sq_fail(e, SQ_ENOMEM, "out of memory") : 0;
}

int sq_grade_file(const sq_grade_file_opts *o, sq_grade_file_stats *st, sq_err *e) {
    memset(st, 0, sizeof *st);
    sq_grade_file_opts oo = *o;
    if (!oo.gold_field) oo.gold_field = "answer";
    if (!oo.pred_field) oo.pred_field = "response";
    sq_jsonl_reader *r = NULL;
    sq_jsonl_writer *w = NULL;
    int rc = sq_jsonl_open(&r, oo.in, oo.skip_bad, e);
    if (rc) return rc;
    if ((rc = sq_jsonl_writer_open(&w, oo.out, SQ_JSONL_CREATE, e))) {
        sq_jsonl_close(r);
        return rc;
    }
    sq_progress prog;
    sq_progress_start(&prog, "grade", -1);
    cJSON *rec = NULL;
    while ((rc = sq_jsonl_next(r, &rec, e)) == 1) {
        rc = grade_record(&oo, rec, sq_jsonl_path(r), sq_jsonl_line_number(r), st, e);
        if (!rc) rc = sq_jsonl_write(w, rec, e);
        cJSON_Delete(rec);
        if (rc) break;
        sq_progress_add(&prog, 1);
    }
    sq_progress_finish(&prog);
    sq_jsonl_close(r);
    if (rc < 0) {
        sq_jsonl_writer_abort(w);
        return rc;
    }
    return sq_jsonl_writer_close(w, e);
}

void sq_grade_file_summary(const sq_grade_file_stats *st, char *out, size_t cap) {
    int w = snprintf(out, cap, "accuracy %.4f (%lld/%lld correct, %lld without an answer)",
                     st->n ? (double)st->correct / (double)st->n : 0.0, (long long)st->correct, (long long)st->n,
                     (long long)st->no_answer);
    if (st->multi && w > 0 && (size_t)w < cap)
        snprintf(out + w, cap - (size_t)w, "; over %lld records of up to %d completions: pass@%d %.4f (%lld), "
                 "majority %.4f (%lld)",
                 (long long)st->multi, st->k, st->k, (double)st->pass / (double)st->multi, (long long)st->pass,
                 (double)st->majority_correct / (double)st->multi, (long long)st->majority_correct);
}

int sq_grade_file_write_summary(const sq_grade_file_stats *st, const char *path, sq_err *e) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return sq_fail(e, SQ_ENOMEM, "out of memory");
    cJSON_AddNumberToObject(j, "accuracy", st->n ? (double)st->correct / (double)st->n : 0.0);
    cJSON_AddNumberToObject(j, "correct", (double)st->correct);
    cJSON_AddNumberToObject(j, "n", (double)st->n);
    cJSON_AddNumberToObject(j, "no_answer", (double)st->no_answer);
    if (st->multi) {
        cJSON_AddNumberToObject(j, "records", (double)st->multi);
        cJSON_AddNumberToObject(j, "k", st->k);
        cJSON_AddNumberToObject(j, "pass_at_k", (double)st->pass / (double)st->multi);
        cJSON_AddNumberToObject(j, "majority_accuracy", (double)st->majority_correct / (double)st->multi);
    }
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!text) return sq_fail(e, SQ_ENOMEM, "out of memory");
    sq_buf b = {0};
    int rc = sq_buf_puts(&b, text) || sq_buf_puts(&b, "\n") ? sq_fail(e, SQ_ENOMEM, "out of memory")
                                                              : sq_file_write_atomic(path, b.data, b.len, e);
    sq_buf_free(&b);
    free(text);
    return rc;
}
