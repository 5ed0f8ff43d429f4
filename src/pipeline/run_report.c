/* scalequest report: one self-contained report.html for a run directory (no scripts, no
 * network): the funnel, difficulty before and after sampling, lengths, the judge's verdicts and
 * ratings, rewards and best-vs-rest margins, the eval table and a cost table shaped like the
 * paper's Table 4. It reads only the run's files, so it works on a half-done run too (missing
 * parts say "no data"). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "run_internal.h"
#include "scalequest/run.h"

enum { MAX_LINES = 200000 }; /* records read per file for the plots: enough for a histogram */

typedef struct dvec {
    double *v;
    size_t n, cap;
} dvec;

static void dpush(dvec *d, double x) {
    if (d->n == d->cap) {
        size_t c = d->cap ? d->cap * 2 : 256;
        double *nv = realloc(d->v, c * sizeof *nv);
        if (!nv) return;
        d->v = nv;
        d->cap = c;
    }
    d->v[d->n++] = x;
}

typedef void (*rec_fn)(const cJSON *rec, void *user);

static int each_record(const char *path, rec_fn fn, void *user) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int n = 0;
    while (n < MAX_LINES && (len = getline(&line, &cap, f)) > 0) {
        cJSON *r = cJSON_ParseWithLength(line, (size_t)len);
        if (r) fn(r, user);
        cJSON_Delete(r);
        n++;
    }
    free(line);
    fclose(f);
    return n;
}

typedef struct field_req {
    const char *field;
    dvec *out;
    int words; /* lengths in words of strings instead of numbers */
} field_req;

static int word_count(const char *s) {
    int n = 0, in = 0;
    for (; *s; s++) {
        int sp = *s == ' ' || *s == '\n' || *s == '\t' || *s == '\r';
        if (!sp && !in) n++;
        in = !sp;
    }
    return n;
}

static void take_value(const cJSON *v, field_req *q) {
    if (q->words && cJSON_IsString(v)) dpush(q->out, word_count(v->valuestring));
    else if (!q->words && cJSON_IsNumber(v)) dpush(q->out, v->valuedouble);
    else if (!q->words && cJSON_IsBool(v)) dpush(q->out, cJSON_IsTrue(v));
}

static void on_field(const cJSON *rec, void *user) {
    field_req *q = user;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, q->field);
    if (cJSON_IsArray(v))
        for (const cJSON *x = v->child; x; x = x->next) take_value(cJSON_IsObject(x) ? cJSON_GetObjectItemCaseSensitive(x, "text") : x, q);
    else take_value(v, q);
}

static void collect(const char *run_dir, const char *file, const char *field, int words, dvec *out) {
    char *p = sq_path_join(run_dir, file);
    field_req q = {field, out, words};
    if (p) each_record(p, on_field, &q);
    free(p);
}

static void on_margin(const cJSON *rec, void *user) {
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(rec, "rewards");
    int n = cJSON_GetArraySize(r);
    if (n < 2) return;
    double best = -INFINITY, sum = 0;
    for (const cJSON *x = r->child; x; x = x->next) {
        if (!cJSON_IsNumber(x)) return;
        best = fmax(best, x->valuedouble);
        sum += x->valuedouble;
    }
    dpush(user, best - (sum - best) / (n - 1));
}

typedef struct label_counts {
    const char *field;
    char *names[32];
    double counts[32];
    int n;
} label_counts;

static void on_label(const cJSON *rec, void *user) {
    label_counts *lc = user;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, lc->field);
    char buf[64];
    if (cJSON_IsString(v)) snprintf(buf, sizeof buf, "%s", v->valuestring);
    else if (cJSON_IsNumber(v)) snprintf(buf, sizeof buf, "%g", v->valuedouble);
    else if (cJSON_IsBool(v)) snprintf(buf, sizeof buf, "%s", cJSON_IsTrue(v) ? "true" : "false");
    else return;
    for (int i = 0; i < lc->n; i++)
        if (!strcmp(lc->names[i], buf)) {
            lc->counts[i]++;
            return;
        }
    if (lc->n < 32 && (lc->names[lc->n] = sq_strdup(buf))) lc->counts[lc->n++] = 1;
}

static void labels_from(const char *run_dir, const char *file, label_counts *lc) {
    char *p = sq_path_join(run_dir, file);
    if (p) each_record(p, on_label, lc);
    free(p);
}

static void labels_free(label_counts *lc) {
    for (int i = 0; i < lc->n; i++) free(lc->names[i]);
}

static void section(sq_buf *b, const char *id, const char *title, const char *note) {
    sq_buf_printf(b, "<section id=\"%s\"><h2>%s</h2>", id, title);
    if (note) sq_buf_printf(b, "<p class=\"note\">%s</p>", note);
}

/* The value after `flag` in the stage's last command, as the manifest recorded it. */
static const char *cmd_arg(const cJSON *rec, const char *flag) {
    const cJSON *cmds = cJSON_GetObjectItemCaseSensitive(rec, "commands");
    const cJSON *last = cmds ? cJSON_GetArrayItem(cmds, cJSON_GetArraySize(cmds) - 1) : NULL;
    for (const cJSON *a = last ? last->child : NULL; a && a->next; a = a->next)
        if (cJSON_IsString(a) && cJSON_IsString(a->next) && !strcmp(a->valuestring, flag)) return a->next->valuestring;
    return NULL;
}

/* From the manifest: each chain stage that ran, its input's and its output's record counts, so
 * a stage switched off (or a file left from an earlier config) does not show. */
static void funnel(sq_buf *b, const cJSON *m) {
    static const char *chain[] = {"qgen",          "filter_lang",      "filter_solvable",   "dedup",
                                  "decontaminate", "difficulty_score", "difficulty_sample", "respond",
                                  "reward",        "export"};
    enum { NCHAIN = sizeof chain / sizeof chain[0] };
    section(b, "funnel", "Funnel",
            "Questions in and out of each stage of the chain; the paper's filters dropped 20.1% (language), 19.4% "
            "(solvability) and 9.2% (difficulty sampling) of 2M questions.");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(m, "stages");
    const char *labels[NCHAIN];
    double vals[NCHAIN];
    int nv = 0;
    sq_buf_puts(b, "<table><tr><th>stage</th><th>in</th><th>out</th><th>dropped</th><th>share dropped</th></tr>");
    for (int i = 0; i < NCHAIN; i++) {
        const cJSON *rec = cJSON_GetObjectItemCaseSensitive(st, chain[i]);
        const char *in = cmd_arg(rec, "--in"), *out = cmd_arg(rec, "--out");
        /* a sharded stage's commands write parts; its last output is the merged file */
        const cJSON *outs = cJSON_GetObjectItemCaseSensitive(rec, "outputs");
        const cJSON *last = cJSON_GetArrayItem(outs, cJSON_GetArraySize(outs) - 1);
        if (cJSON_IsString(last)) out = last->valuestring;
        if (!rec || !out) continue;
        int64_t n = sq_run_count_lines(out), k = (in && i > 0) ? sq_run_count_lines(in) : -1;
        if (n < 0) continue;
        if (k >= 0)
            sq_buf_printf(b, "<tr><td>%s</td><td>%lld</td><td>%lld</td><td>%lld</td><td>%.1f%%</td></tr>", chain[i],
                          (long long)k, (long long)n, (long long)(k - n), k ? 100.0 * (double)(k - n) / (double)k : 0);
        else sq_buf_printf(b, "<tr><td>%s</td><td>—</td><td>%lld</td><td>—</td><td>—</td></tr>", chain[i], (long long)n);
        labels[nv] = chain[i];
        vals[nv++] = (double)n;
    }
    sq_buf_puts(b, "</table>");
    sq_svg_bars(b, "Records after each stage", labels, vals, nv, "");
    sq_buf_puts(b, "</section>");
}

static void hist_pair(sq_buf *b, const char *title, const char *xlabel, const char *n1, dvec *a, const char *n2, dvec *c,
                      int density) {
    sq_svg_series s[2] = {{n1, a->v, a->n}, {n2, c ? c->v : NULL, c ? c->n : 0}};
    sq_svg_histogram(b, title, xlabel, s, c ? 2 : 1, 20, density);
}

static void difficulty(sq_buf *b, const char *run_dir) {
    section(b, "difficulty", "Difficulty",
            "The difficulty scorer's value (the predicted fail rate) of every scored question, before and after "
            "difficulty sampling; and the solver's measured fail rates it was trained on.");
    dvec before = {0}, after = {0}, label = {0};
    collect(run_dir, "difficulty_score.jsonl", "difficulty", 0, &before);
    collect(run_dir, "difficulty_sample.jsonl", "difficulty", 0, &after);
    collect(run_dir, "difficulty_label.jsonl", "fail_rate", 0, &label);
    hist_pair(b, "Difficulty score before and after sampling (share of questions)", "difficulty score", "before sampling",
              &before, "after sampling", &after, 1);
    hist_pair(b, "Measured fail rates (the scorer's training data)", "fail rate", "difficulty_label", &label, NULL, NULL, 0);
    free(before.v);
    free(after.v);
    free(label.v);
    sq_buf_puts(b, "</section>");
}

static void lengths(sq_buf *b, const char *run_dir) {
    section(b, "lengths", "Lengths", "Words per question and per response (share of each set).");
    dvec q0 = {0}, q1 = {0}, r0 = {0}, r1 = {0};
    collect(run_dir, "qgen.jsonl", "query", 1, &q0);
    collect(run_dir, "export.jsonl", "query", 1, &q1);
    collect(run_dir, "respond.jsonl", "responses", 1, &r0);
    collect(run_dir, "export.jsonl", "response", 1, &r1);
    hist_pair(b, "Question length", "words", "generated (qgen)", &q0, "final dataset", &q1, 1);
    hist_pair(b, "Response length", "words", "all responses", &r0, "selected (final dataset)", &r1, 1);
    free(q0.v);
    free(q1.v);
    free(r0.v);
    free(r1.v);
    sq_buf_puts(b, "</section>");
}

static void ratings(sq_buf *b, const char *run_dir) {
    section(b, "ratings", "Solvability and difficulty ratings",
            "The judge's verdicts on every question it saw (kept and dropped, Figure 11) and its 1–5 difficulty "
            "ratings (Figure 12).");
    label_counts v = {.field = "verdict"}, r = {.field = "rating"};
    labels_from(run_dir, "filter_solvable.jsonl", &v);
    labels_from(run_dir, "filter_solvable.dropped.jsonl", &v);
    labels_from(run_dir, "difficulty_judge.jsonl", &r);
    if (!r.n) {
        r.field = "difficulty_rating";
        labels_from(run_dir, "difficulty_judge.jsonl", &r);
    }
    sq_svg_bars(b, "Solvability verdicts", (const char *const *)v.names, v.counts, v.n, "");
    sq_svg_bars(b, "Difficulty ratings (1 easiest – 5 hardest)", (const char *const *)r.names, r.counts, r.n, "");
    labels_free(&v);
    labels_free(&r);
    sq_buf_puts(b, "</section>");
}

static void rewards(sq_buf *b, const char *run_dir) {
    section(b, "reward", "Reward scores",
            "Every response's reward, and per question the margin of the best response over the mean of the rest.");
    dvec all = {0}, best = {0}, margin = {0};
    collect(run_dir, "reward.jsonl", "rewards", 0, &all);
    collect(run_dir, "reward.jsonl", "reward", 0, &best);
    char *p = sq_path_join(run_dir, "reward.jsonl");
    if (p) each_record(p, on_margin, &margin);
    free(p);
    hist_pair(b, "Reward score distribution", "reward", "all responses", &all, "selected (best of n)", &best, 1);
    hist_pair(b, "Best-vs-rest margin", "best reward − mean of the others", "questions", &margin, NULL, NULL, 0);
    free(all.v);
    free(best.v);
    free(margin.v);
    sq_buf_puts(b, "</section>");
}

static cJSON *read_json(const char *run_dir, const char *rel) {
    char *p = sq_path_join(run_dir, rel), *text = NULL;
    size_t len;
    cJSON *j = NULL;
    if (p && !sq_file_read_all(p, &text, &len, NULL)) j = cJSON_ParseWithLength(text, len);
    free(text);
    free(p);
    return j;
}

/* eval's results.json holds accuracy in percent. The student's base (the eval_base stage), when
 * it was measured, is shown beside the student so the gain is read off one row. */
static void eval_table(sq_buf *b, const char *run_dir) {
    section(b, "eval", "Evaluation",
            "Zero-shot pass@1 of the student trained on the final dataset, and of the model it started from.");
    cJSON *j = read_json(run_dir, "eval/results.json"), *jb = read_json(run_dir, "eval_base/results.json");
    const cJSON *bm = cJSON_GetObjectItemCaseSensitive(j, "benchmarks"), *bb = cJSON_GetObjectItemCaseSensitive(jb, "benchmarks");
    if (!cJSON_IsObject(bm)) sq_buf_puts(b, "<p class=\"none\">no data (the eval stage has not run)</p>");
    else {
        sq_buf_printf(b, "<table><tr><th>benchmark</th><th>questions</th>%s<th>student correct</th><th>student accuracy</th></tr>",
                      cJSON_IsObject(bb) ? "<th>base correct</th><th>base accuracy</th>" : "");
        for (const cJSON *x = bm->child; x; x = x->next) {
            const cJSON *n = cJSON_GetObjectItemCaseSensitive(x, "n"), *c = cJSON_GetObjectItemCaseSensitive(x, "correct"),
                        *a = cJSON_GetObjectItemCaseSensitive(x, "accuracy");
            const cJSON *y = cJSON_GetObjectItemCaseSensitive(bb, x->string);
            sq_buf_puts(b, "<tr><td>");
            sq_svg_escape(b, x->string);
            sq_buf_printf(b, "</td><td>%.0f</td>", cJSON_IsNumber(n) ? n->valuedouble : 0);
            if (cJSON_IsObject(bb)) {
                const cJSON *yc = cJSON_GetObjectItemCaseSensitive(y, "correct"), *ya = cJSON_GetObjectItemCaseSensitive(y, "accuracy");
                if (cJSON_IsNumber(ya))
                    sq_buf_printf(b, "<td>%.0f</td><td>%.1f%%</td>", cJSON_IsNumber(yc) ? yc->valuedouble : 0, ya->valuedouble);
                else sq_buf_puts(b, "<td>—</td><td>—</td>");
            }
            sq_buf_printf(b, "<td>%.0f</td><td>%.1f%%</td></tr>", cJSON_IsNumber(c) ? c->valuedouble : 0,
                          cJSON_IsNumber(a) ? a->valuedouble : 0);
        }
        const cJSON *avg = cJSON_GetObjectItemCaseSensitive(j, "average"), *bavg = cJSON_GetObjectItemCaseSensitive(jb, "average");
        if (cJSON_IsNumber(avg)) {
            sq_buf_puts(b, "<tr class=\"total\"><td>average</td><td></td>");
            if (cJSON_IsObject(bb)) sq_buf_printf(b, "<td></td><td>%.1f%%</td>", cJSON_IsNumber(bavg) ? bavg->valuedouble : 0);
            sq_buf_printf(b, "<td></td><td>%.1f%%</td></tr>", avg->valuedouble);
        }
        sq_buf_puts(b, "</table>");
    }
    cJSON_Delete(j);
    cJSON_Delete(jb);
    sq_buf_puts(b, "</section>");
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static void cost(sq_buf *b, const cJSON *m) {
    section(b, "cost", "Cost",
            "Per stage, shaped like the paper's Table 4: samples are the records (or training steps) the stage "
            "produced; core-hours are the CPU time of the stage's process (user + system); tokens where the stage "
            "counts them.");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(m, "stages");
    sq_buf_puts(b, "<table><tr><th>stage</th><th>type</th><th>samples</th><th>wall hours</th><th>core-hours</th>"
                   "<th>tokens in</th><th>tokens out</th><th>status</th></tr>");
    double tw = 0, tc = 0, ti = 0, to = 0;
    for (int i = 0; i < sq_run_stage_count(); i++) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(st, sq_run_stage_name(i));
        if (!r) continue;
        double samples = 0;
        const cJSON *counts = cJSON_GetObjectItemCaseSensitive(r, "counts");
        for (const cJSON *c = counts ? counts->child : NULL; c; c = c->next) samples = c->valuedouble; /* the last output */
        const cJSON *outs = cJSON_GetObjectItemCaseSensitive(r, "outputs");
        if (!counts || !counts->child) { /* a trained model: its steps */
            const cJSON *o = outs ? outs->child : NULL;
            if (cJSON_IsString(o)) {
                char *log = sq_path_join(o->valuestring, "train_log.jsonl");
                int64_t k = log ? sq_run_count_lines(log) : -1;
                free(log);
                if (k >= 0) samples = (double)k;
            }
        }
        const cJSON *status = cJSON_GetObjectItemCaseSensitive(r, "status"), *type = cJSON_GetObjectItemCaseSensitive(r, "type");
        double w = num(r, "wall_s") / 3600, c = num(r, "cpu_s") / 3600, ti1 = num(r, "tokens_in"), to1 = num(r, "tokens_out");
        tw += w, tc += c, ti += ti1, to += to1;
        sq_buf_printf(b, "<tr><td>%s</td><td>%s</td><td>%.0f%s</td><td>%.4f</td><td>%.4f</td><td>%.0f</td><td>%.0f</td><td>%s</td></tr>",
                      sq_run_stage_name(i), cJSON_IsString(type) ? type->valuestring : "", samples,
                      (!counts || !counts->child) ? " steps" : "", w, c, ti1, to1,
                      cJSON_IsString(status) ? status->valuestring : "");
    }
    sq_buf_printf(b, "<tr class=\"total\"><td>total</td><td></td><td></td><td>%.4f</td><td>%.4f</td><td>%.0f</td><td>%.0f</td><td></td></tr></table>",
                  tw, tc, ti, to);
    sq_buf_puts(b, "</section>");
}

static const char css[] =
    "body{font-family:system-ui,sans-serif;max-width:1000px;margin:24px auto;padding:0 16px;color:#222;font-size:15px}"
    "h1{font-size:24px}h2{font-size:19px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}"
    "table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}"
    "td:first-child,th:first-child{text-align:left}th{background:#f2f2f2}tr.total td{font-weight:bold}"
    ".note{color:#555}.none{color:#888}svg{display:block;margin:10px 0}";

int sq_run_report(const char *run_dir, const char *out_path, sq_err *e) {
    cJSON *m = NULL;
    char *mp = sq_path_join(run_dir, "manifest.json");
    int have = mp && sq_file_exists(mp);
    free(mp);
    if (!have) return sq_fail(e, SQ_ENOTFOUND, "%s: no manifest.json (not a run directory?)", run_dir);
    int rc = sq_run_manifest_load(run_dir, &m, e);
    if (rc) return rc;
    sq_buf b = {0};
    sq_buf_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>scalequest run report</title>"
                    "<link rel=\"icon\" href=\"data:,\"><style>");
    sq_buf_puts(&b, css);
    sq_buf_puts(&b, "</style></head><body><h1>scalequest run report</h1><p>Run directory: <code>");
    sq_svg_escape(&b, run_dir);
    time_t t = time(NULL);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime(&t));
    sq_buf_printf(&b, "</code> &middot; written %s</p>", when);
    funnel(&b, m);
    difficulty(&b, run_dir);
    lengths(&b, run_dir);
    ratings(&b, run_dir);
    rewards(&b, run_dir);
    eval_table(&b, run_dir);
    cost(&b, m);
    sq_buf_puts(&b, "</body></html>\n");
    char *def = out_path ? NULL : sq_path_join(run_dir, "report.html");
    rc = b.data ? sq_file_write_atomic(out_path ? out_path : def, b.data, b.len, e) : sq_fail(e, SQ_ENOMEM, "out of memory");
    free(def);
    sq_buf_free(&b);
    cJSON_Delete(m);
    return rc;
}
