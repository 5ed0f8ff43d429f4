/* scalequest grade: extract each record's answer from a response field, compare it with the
 * gold field, write the records back with the verdict (sq_grade_file), and give the accuracy
 * on stderr and, with --summary, as JSON. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "scalequest/grade.h"

#define CMD "grade"

static const char *usage =
    "--in responses.jsonl --out graded.jsonl [--gold-field answer] [--pred-field response]\n"
    "Adds \"extracted\" (the answer found in the response), \"gold_answer\" and \"correct\" to each record\n"
    "and prints the accuracy on stderr (--summary FILE: as JSON). The gold field may be raw (\"#### 72\", a solution with \\boxed, \"$...$\")\n"
    "or a list of answers (OlympiadBench final_answer), which are joined.";

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
    const char *gold_fmt_s = "auto", *percent = "either", *summary = NULL;
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
        {"summary", SQ_OPT_STR, &summary, "PATH", "also write the accuracy and counts as JSON"},
    };
    int npos;
    int rc = sq_cli_parse(argc, argv, usage, opts, (int)SQ_ARRAY_LEN(opts), NULL, 0, &npos);
    if (rc >= 0) return rc;
    if (!in) return sq_cli_usage_error(CMD, "--in is required");
    if (!out) return sq_cli_usage_error(CMD, "--out is required");
    sq_grade_file_opts fo;
    sq_grade_file_opts_init(&fo);
    fo.in = in, fo.out = out, fo.gold_field = gold_field, fo.pred_field = pred_field;
    fo.pred_is_answer = pred_is_answer, fo.skip_bad = skip_bad;
    if (parse_format(gold_fmt_s, &fo.gold_format)) return sq_cli_usage_error(CMD, "unknown --gold-format '%s'", gold_fmt_s);
    sq_grade_opts *o = &fo.grade;
    if (tol < 0) return sq_cli_usage_error(CMD, "--tol must be positive");
    if (tol > 0) o->rel_tol = tol;
    o->ordered_lists = ordered;
    o->seed = sq_common.seed_set ? sq_common.seed : 0;
    if (!strcmp(percent, "either")) o->percent = SQ_GRADE_PCT_EITHER;
    else if (!strcmp(percent, "value")) o->percent = SQ_GRADE_PCT_VALUE;
    else if (!strcmp(percent, "drop")) o->percent = SQ_GRADE_PCT_DROP;
    else return sq_cli_usage_error(CMD, "unknown --percent '%s' (either, value or drop)", percent);

    sq_err e = {0};
    sq_grade_file_stats st;
    if (sq_grade_file(&fo, &st, &e)) return sq_cli_fail(CMD, "%s", e.msg);
    if (summary && sq_grade_file_write_summary(&st, summary, &e)) return sq_cli_fail(CMD, "%s", e.msg);
    /* a summary, not data: stdout may be the graded JSONL itself (--out -) */
    if (!sq_common.quiet) {
        char line[400];
        sq_grade_file_summary(&st, line, sizeof line);
        fprintf(stderr, "%s\n", line);
    }
    return SQ_EXIT_OK;
}

SQ_COMMAND(grade, "grade", "extract answers from responses and grade them against gold answers", cmd_grade);
