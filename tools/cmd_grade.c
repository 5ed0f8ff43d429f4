/* scalequest grade: extract each record's answer from a response field, compare it with the
 * gold field, write the records back with the verdict, print the accuracy. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "scalequest/grade.h"
#include "scalequest/jsonl.h"

#define CMD "grade"

static const char *usage =
    "--in responses.jsonl --out graded.jsonl [--gold-field answer] [--pred-field response]\n"
    "Adds \"extracted\" (the answer found in the response), \"gold_answer\" and \"correct\" to each record\n"
    "and prints the accuracy. The gold field may be raw (\"#### 72\", a solution with \\boxed, \"$...$\")\n"
    "or a list of answers (OlympiadBench final_answer), which are joined.";

/* The gold field as text: strings as they are, numbers printed, lists joined with ", ". */
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

static int parse_format(const char *s, sq_gold_format *f) {
    static const char *names[] = {"auto", "gsm8k", "math", "plain", "dollars"};
    for (size_t i = 0; i < SQ_ARRAY_LEN(names); i++)
        if (!strcmp(s, names[i])) {
            *f = (sq_gold_format)i;
            return 0;
        }
    return -1;
}

static int cmd_grade(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *gold_field = "answer", *pred_field = "response";
    const char *gold_fmt_s = "auto", *percent = "either";
    double tol = 0;
    int ordered = 0, pred_is_answer = 0, skip_bad = 0;
    const sq_opt opts[] = {
        {"in", SQ_OPT_STR, &in, "PATH", "input JSONL ('-' = stdin)"},
        {"out", SQ_OPT_STR, &out, "PATH", "output JSONL, written atomically ('-' = stdout)"},
        {"gold-field", SQ_OPT_STR, &gold_field, "F", "field holding the gold answer (default answer)"},
        {"pred-field", SQ_OPT_STR, &pred_field, "F", "field holding the model response (default response)"},
        {"gold-format", SQ_OPT_STR, &gold_fmt_s, "FMT", "auto|gsm8k|math|plain|dollars (default auto)"},
        {"pred-is-answer", SQ_OPT_FLAG, &pred_is_answer, NULL, "the pred field is already an answer: no extraction"},
        {"percent", SQ_OPT_STR, &percent, "MODE", "either (28% = 28 = 0.28-ish, default) | value (28% = 0.28) | drop (28% = 28)"},
        {"tol", SQ_OPT_DOUBLE, &tol, "X", "relative tolerance for inexact numbers (default 1e-6)"},
        {"ordered-lists", SQ_OPT_FLAG, &ordered, NULL, "compare bare comma lists in order, not as sets"},
        {"skip-bad", SQ_OPT_FLAG, &skip_bad, NULL, "skip invalid lines (counted and reported) instead of failing"},
    };
    int npos;
    int rc = sq_cli_parse(argc, argv, usage, opts, (int)SQ_ARRAY_LEN(opts), NULL, 0, &npos);
    if (rc >= 0) return rc;
    if (!in) return sq_cli_usage_error(CMD, "--in is required");
    if (!out) return sq_cli_usage_error(CMD, "--out is required");
    sq_gold_format gold_fmt;
    if (parse_format(gold_fmt_s, &gold_fmt)) return sq_cli_usage_error(CMD, "unknown --gold-format '%s'", gold_fmt_s);
    sq_grade_opts o;
    sq_grade_opts_init(&o);
    if (tol < 0) return sq_cli_usage_error(CMD, "--tol must be positive");
    if (tol > 0) o.rel_tol = tol;
    o.ordered_lists = ordered;
    o.seed = sq_common.seed_set ? sq_common.seed : 0;
    if (!strcmp(percent, "either")) o.percent = SQ_GRADE_PCT_EITHER;
    else if (!strcmp(percent, "value")) o.percent = SQ_GRADE_PCT_VALUE;
    else if (!strcmp(percent, "drop")) o.percent = SQ_GRADE_PCT_DROP;
    else return sq_cli_usage_error(CMD, "unknown --percent '%s' (either, value or drop)", percent);

    sq_err e = {0};
    sq_jsonl_reader *r = NULL;
    sq_jsonl_writer *w = NULL;
    if ((rc = sq_jsonl_open(&r, in, skip_bad, &e))) return sq_cli_fail(CMD, "%s", e.msg);
    if ((rc = sq_jsonl_writer_open(&w, out, SQ_JSONL_CREATE, &e))) {
        sq_jsonl_close(r);
        return sq_cli_fail(CMD, "%s", e.msg);
    }
    sq_progress prog;
    sq_progress_start(&prog, "grade", -1);
    int64_t n = 0, right = 0, no_answer = 0;
    cJSON *rec = NULL;
    while ((rc = sq_jsonl_next(r, &rec, &e)) == 1) {
        const cJSON *gv = cJSON_GetObjectItemCaseSensitive(rec, gold_field);
        const char *pred = sq_rec_str(rec, pred_field);
        char *graw = gv ? gold_text(gv) : NULL;
        if (!graw || !pred) {
            rc = sq_fail(&e, SQ_EPARSE, "%s:%lld: record has no string \"%s\"", sq_jsonl_path(r),
                         (long long)sq_jsonl_line_number(r), graw ? pred_field : gold_field);
            free(graw);
            cJSON_Delete(rec);
            break;
        }
        char *gold = cJSON_IsArray(gv) ? sq_strdup(graw) : sq_grade_gold(graw, gold_fmt);
        char *ex = pred_is_answer ? sq_strdup(pred) : sq_grade_extract(pred, &o, NULL);
        int ok = gold && ex && sq_grade_equal(gold, ex, &o);
        no_answer += !ex;
        right += ok;
        n++;
        int set = ex ? sq_rec_set_str(rec, "extracted", ex) : sq_rec_set(rec, "extracted", cJSON_CreateNull());
        if (!set) set = gold ? sq_rec_set_str(rec, "gold_answer", gold) : sq_rec_set(rec, "gold_answer", cJSON_CreateNull());
        if (!set) set = sq_rec_set_bool(rec, "correct", ok);
        free(gold);
        free(graw);
        free(ex);
        if (set) rc = sq_fail(&e, SQ_ENOMEM, "out of memory");
        else rc = sq_jsonl_write(w, rec, &e);
        cJSON_Delete(rec);
        if (rc) break;
        sq_progress_add(&prog, 1);
    }
    sq_progress_finish(&prog);
    sq_jsonl_close(r);
    if (rc < 0) {
        sq_jsonl_writer_abort(w);
        return sq_cli_fail(CMD, "%s", e.msg);
    }
    if ((rc = sq_jsonl_writer_close(w, &e))) return sq_cli_fail(CMD, "%s", e.msg);
    printf("accuracy %.4f (%lld/%lld correct, %lld without an answer)\n", n ? (double)right / (double)n : 0.0,
           (long long)right, (long long)n, (long long)no_answer);
    return SQ_EXIT_OK;
}

SQ_COMMAND(grade, "grade", "extract answers from responses and grade them against gold answers", cmd_grade);
