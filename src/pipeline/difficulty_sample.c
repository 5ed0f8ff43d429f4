/* difficulty sample (difficulty.h): keep questions by their difficulty value, with a
 * threshold or thinned to a target histogram. The keep decision of a record is a draw from
 * the seed and its id compared with its bin's keep probability, so it does not depend on the
 * order, the shard or a resume; the probabilities come from a first pass over the input. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/difficulty.h"
#include "scalequest/jsonl.h"

void sq_sample_opts_default(sq_sample_opts *o) {
    memset(o, 0, sizeof *o);
    sq_stage_opts_default(&o->stage);
    o->stage.name = "difficulty sample";
    o->field = "difficulty";
    o->n_bins = 10;
    o->lo = 0.0, o->hi = 1.0;
}

int sq_sample_parse_target(sq_sample_opts *o, const char *s, sq_err *e) {
    if (!strcmp(s, "uniform")) {
        if (o->n_bins < 1 || o->n_bins > SQ_SAMPLE_MAX_BINS) return sq_fail(e, SQ_EINVAL, "bins must be 1..%d", SQ_SAMPLE_MAX_BINS);
        for (int i = 0; i < o->n_bins; i++) o->target[i] = 1.0;
        o->n_target = o->n_bins;
        return 0;
    }
    int n = 0;
    double sum = 0;
    const char *p = s;
    while (*p) {
        char *end;
        double w = strtod(p, &end);
        if (end == p || !(w >= 0) || isinf(w))
            return sq_fail(e, SQ_EINVAL, "target distribution \"%s\": weight %d at offset %d is not a number >= 0", s,
                           n + 1, (int)(p - s));
        if (n == SQ_SAMPLE_MAX_BINS) return sq_fail(e, SQ_EINVAL, "target distribution: more than %d weights", SQ_SAMPLE_MAX_BINS);
        o->target[n++] = w;
        sum += w;
        p = end;
        if (*p == ',') p++;
        else if (*p) return sq_fail(e, SQ_EINVAL, "target distribution \"%s\": expected ',' at offset %d", s, (int)(p - s));
    }
    if (n == 0 || !(sum > 0)) return sq_fail(e, SQ_EINVAL, "target distribution \"%s\": no positive weight", s);
    if (n != o->n_bins)
        return sq_fail(e, SQ_EINVAL, "target distribution has %d weights for %d bins (give --bins %d or %d weights)", n,
                       o->n_bins, n, o->n_bins);
    o->n_target = n;
    return 0;
}

int sq_sample_bin(const sq_sample_opts *o, double v) {
    double t = (v - o->lo) / (o->hi - o->lo) * o->n_bins;
    if (!(t >= 0)) return 0; /* below, or NaN */
    int b = t >= o->n_bins ? o->n_bins - 1 : (int)t;
    return b;
}

void sq_sample_keep_probs(const sq_sample_opts *o, const int64_t *count, double *keep) {
    int64_t n = 0;
    double tsum = 0;
    for (int b = 0; b < o->n_bins; b++) n += count[b], tsum += o->n_target ? o->target[b] : 1.0;
    if (!o->n_target || n == 0) {
        for (int b = 0; b < o->n_bins; b++) keep[b] = 1.0;
        return;
    }
    /* Keeping K records in the target shape takes K * t_b from bin b, so K is limited by the
     * bin with the least count per target share: K = min over bins of count_b / t_b. */
    double k = INFINITY;
    for (int b = 0; b < o->n_bins; b++) {
        double t = o->target[b] / tsum;
        if (t > 0 && (double)count[b] / t < k) k = (double)count[b] / t;
    }
    for (int b = 0; b < o->n_bins; b++) {
        double t = o->target[b] / tsum;
        keep[b] = count[b] > 0 ? fmin(1.0, k * t / (double)count[b]) : 0.0;
    }
}

void sq_sample_format_hist(const sq_sample_opts *o, const char *title, const int64_t *count, sq_buf *out) {
    int64_t n = 0, most = 0;
    for (int b = 0; b < o->n_bins; b++) n += count[b], most = count[b] > most ? count[b] : most;
    sq_buf_printf(out, "%s: %lld records\n", title, (long long)n);
    double w = (o->hi - o->lo) / o->n_bins;
    for (int b = 0; b < o->n_bins; b++) {
        int bar = most ? (int)(40.0 * (double)count[b] / (double)most + 0.5) : 0;
        sq_buf_printf(out, "  [%6.3f, %6.3f%s %8lld %5.1f%% ", o->lo + b * w, o->lo + (b + 1) * w,
                      b == o->n_bins - 1 ? "]" : ")", (long long)count[b], n ? 100.0 * (double)count[b] / (double)n : 0.0);
        for (int i = 0; i < bar; i++) sq_buf_puts(out, "#");
        sq_buf_puts(out, "\n");
    }
}

/* A uniform draw in [0, 1) from the seed and the id. */
static double draw(uint64_t seed, const char *id) {
    uint64_t h = sq_stage_seed(seed ^ 0x5a3c1e0f2b4d6987ull, id);
    h ^= h >> 33, h *= 0xff51afd7ed558ccdull, h ^= h >> 33;
    return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}

/* First pass: the histogram of the values of this shard's records (all of them: the shape
 * does not change on a resume). */
static int count_input(const sq_sample_opts *o, int64_t *count, sq_err *e) {
    sq_jsonl_reader *r;
    int rc = sq_jsonl_open(&r, o->stage.in, 0, e);
    if (rc) return rc;
    cJSON *rec;
    while ((rc = sq_jsonl_next(r, &rec, e)) == 1) {
        const char *id = sq_rec_id(rec);
        double v;
        int mine = id && (o->stage.shard_count <= 1 ||
                          sq_jsonl_shard_hash(id, strlen(id)) % (uint64_t)o->stage.shard_count == (uint64_t)o->stage.shard_index);
        if (mine && sq_rec_num(rec, o->field, &v) == 0 && (!o->use_min || v >= o->min_score)) count[sq_sample_bin(o, v)]++;
        cJSON_Delete(rec);
    }
    sq_jsonl_close(r);
    return rc;
}

int sq_difficulty_sample_run(const sq_sample_opts *o, sq_stage_counts *counts, sq_err *e) {
    if (!o->stage.in) return sq_fail(e, SQ_EINVAL, "difficulty sample: no input file given");
    if (o->n_bins < 1 || o->n_bins > SQ_SAMPLE_MAX_BINS || !(o->hi > o->lo))
        return sq_fail(e, SQ_EINVAL, "difficulty sample: bins must be 1..%d over a range lo < hi", SQ_SAMPLE_MAX_BINS);
    if (o->n_target && o->n_target != o->n_bins)
        return sq_fail(e, SQ_EINVAL, "difficulty sample: %d target weights for %d bins", o->n_target, o->n_bins);
    if (o->n_target && !strcmp(o->stage.in, "-"))
        return sq_fail(e, SQ_EINVAL, "difficulty sample: a target distribution needs an input file (two passes), not stdin");
    int64_t before[SQ_SAMPLE_MAX_BINS] = {0}, after[SQ_SAMPLE_MAX_BINS] = {0}, all[SQ_SAMPLE_MAX_BINS] = {0};
    double keep[SQ_SAMPLE_MAX_BINS];
    int rc = 0;
    if (o->n_target && (rc = count_input(o, before, e))) return rc;
    sq_sample_keep_probs(o, before, keep);
    memset(before, 0, sizeof before);
    sq_stage_opts so = o->stage;
    if (!so.name) so.name = "difficulty sample";
    const char *field = o->field ? o->field : "difficulty";
    char no_field[96], below[96];
    snprintf(no_field, sizeof no_field, "no %.60s", field);
    snprintf(below, sizeof below, "below %g", o->min_score);
    sq_stage *st = NULL;
    if ((rc = sq_stage_open(&st, &so, e))) return rc;
    cJSON *rec;
    int64_t slot;
    while (rc == 0 && (rc = sq_stage_next(st, &rec, &slot, e)) == 1) {
        double v;
        rc = 0;
        if (sq_rec_num(rec, field, &v) != 0 || isnan(v)) {
            rc = sq_stage_drop(st, slot, rec, no_field, e);
            continue;
        }
        int b = sq_sample_bin(o, v);
        all[b]++;
        if (o->use_min && v < o->min_score) {
            rc = sq_stage_drop(st, slot, rec, below, e);
            continue;
        }
        before[b]++;
        if (o->n_target && !(draw(o->seed, sq_rec_id(rec)) < keep[b])) {
            rc = sq_stage_drop(st, slot, rec, "sampled out", e);
            continue;
        }
        after[b]++;
        rc = sq_stage_keep(st, slot, rec, e);
    }
    if (rc < 0) {
        sq_stage_abort(st);
        return rc;
    }
    sq_stage_counts c;
    rc = sq_stage_close(st, &c, e);
    if (counts) *counts = c;
    if (!sq_progress_is_quiet() && rc == 0) {
        sq_buf b = {0};
        sq_sample_format_hist(o, "before", all, &b);
        if (o->use_min && o->n_target) sq_sample_format_hist(o, "at or above the threshold", before, &b);
        sq_sample_format_hist(o, "after", after, &b);
        if (c.skipped) sq_buf_printf(&b, "(this run only: %lld records were settled by an earlier run)\n", (long long)c.skipped);
        if (b.data) fputs(b.data, stderr);
        sq_buf_free(&b);
    }
    return rc;
}
