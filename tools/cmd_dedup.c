/* scalequest dedup: near-duplicate removal of questions (dedup.h). Argument parsing only;
 * --print-params shows the resolved MinHash settings and permutations as JSON (what the
 * peer test hands datasketch), --signatures FILE writes each record's shingles and signature. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "scalequest/dedup.h"
#include "scalequest/jsonl.h"

#define CMD "dedup"

static int print_params(const sq_minhash_params *p) {
    sq_minhasher *m;
    sq_err e;
    if (sq_minhasher_new(&m, p, &e)) return sq_cli_usage_error(CMD, "%s", e.msg);
    const sq_minhash_params *q = sq_minhasher_params(m);
    const uint32_t *a, *b;
    sq_minhasher_perms(m, &a, &b);
    printf("{\"shingle\":\"%s\",\"ngram\":%d,\"num_perm\":%d,\"threshold\":%g,\"bands\":%d,\"rows\":%d,\"seed\":%llu,",
           q->kind == SQ_SHINGLE_WORD ? "word" : "char", q->ngram, q->num_perm, q->threshold, q->bands, q->rows,
           (unsigned long long)q->seed);
    for (int k = 0; k < 2; k++) {
        printf("\"%s\":[", k ? "b" : "a");
        for (int i = 0; i < q->num_perm; i++) printf("%s%u", i ? "," : "", (k ? b : a)[i]);
        printf("]%s", k ? "}\n" : ",");
    }
    sq_minhasher_free(m);
    return SQ_EXIT_OK;
}

/* Every record's shingles (text), their hashes and its signature, one JSON line each. */
static int signatures(const sq_minhash_params *p, const char *in, const char *field, const char *out) {
    sq_err e;
    sq_minhasher *m = NULL;
    sq_jsonl_reader *r = NULL;
    FILE *f = !strcmp(out, "-") ? stdout : fopen(out, "w");
    if (!f) return sq_cli_fail(CMD, "%s: cannot create", out);
    int rc = sq_minhasher_new(&m, p, &e);
    if (!rc) rc = sq_jsonl_open(&r, in, 0, &e);
    sq_buf norm = {0};
    uint32_t sig[1024];
    cJSON *rec;
    while (!rc && (rc = sq_jsonl_next(r, &rec, &e)) == 1) {
        rc = 0;
        const char *text = sq_rec_str(rec, field);
        if (!text) {
            rc = sq_fail(&e, SQ_EPARSE, "%s:%lld: no string \"%s\"", in, (long long)sq_jsonl_line_number(r), field);
            cJSON_Delete(rec);
            break;
        }
        sq_text_normalize(text, strlen(text), &norm);
        const uint32_t *h, *sp;
        int n = sq_minhash_shingles(m, norm.data, norm.len, &h, &sp);
        cJSON *o = cJSON_CreateObject(), *sh = cJSON_AddArrayToObject(o, "shingles");
        cJSON *hs = cJSON_AddArrayToObject(o, "hashes"), *sg = cJSON_AddArrayToObject(o, "minhash");
        cJSON_AddStringToObject(o, "id", sq_rec_id(rec) ? sq_rec_id(rec) : "");
        cJSON_AddStringToObject(o, "norm", norm.data);
        for (int k = 0; k < n; k++) {
            char *s = sq_strndup(norm.data + sp[2 * k], sp[2 * k + 1]);
            cJSON_AddItemToArray(sh, cJSON_CreateString(s));
            cJSON_AddItemToArray(hs, cJSON_CreateNumber(h[k]));
            free(s);
        }
        sq_minhash_sign(m, h, n, sig);
        for (int i = 0; i < sq_minhasher_params(m)->num_perm; i++) cJSON_AddItemToArray(sg, cJSON_CreateNumber(sig[i]));
        char *line = sq_rec_to_line(o);
        fprintf(f, "%s\n", line);
        free(line);
        cJSON_Delete(o);
        cJSON_Delete(rec);
    }
    sq_buf_free(&norm);
    sq_jsonl_close(r);
    sq_minhasher_free(m);
    if (f != stdout) fclose(f);
    if (rc < 0) return sq_cli_fail(CMD, "%s", e.msg);
    return SQ_EXIT_OK;
}

static int cmd_dedup(int argc, char **argv) {
    sq_dedup_opts o;
    sq_dedup_opts_default(&o);
    const char *shard = NULL, *shingle = "word", *sigs = NULL, *dropped = NULL;
    int64_t ngram = -1, num_perm = o.mh.num_perm, bands = 0, rows = 0, seed = (int64_t)o.mh.seed;
    double threshold = o.mh.threshold;
    int exact_only = 0, pparams = 0, skip_bad = 0;
    sq_opt opts[] = {
        {"in", SQ_OPT_STR, &o.stage.in, "FILE", "input JSONL, each record with an \"id\" (- for stdin)"},
        {"out", SQ_OPT_STR, &o.stage.out, "FILE", "kept records (appended; a rerun resumes)"},
        {"dropped", SQ_OPT_STR, &dropped, "FILE", "dropped records with duplicate_of (default OUT.dropped.jsonl)"},
        {"field", SQ_OPT_STR, &o.field, "NAME", "the question field (default query)"},
        {"shard", SQ_OPT_STR, &shard, "I/N", "only records whose id hashes to shard I of N (duplicates within it)"},
        {"shingle", SQ_OPT_STR, &shingle, "word|char", "shingle unit (default word)"},
        {"ngram", SQ_OPT_INT, &ngram, "N", "units per shingle (default 2 words, or 5 characters)"},
        {"num-perm", SQ_OPT_INT, &num_perm, "N", "MinHash permutations (default 128)"},
        {"threshold", SQ_OPT_DOUBLE, &threshold, "J", "Jaccard similarity the bands are tuned for (default 0.6)"},
        {"bands", SQ_OPT_INT, &bands, "B", "LSH bands (default: from --threshold, as datasketch chooses)"},
        {"rows", SQ_OPT_INT, &rows, "R", "values per band (with --bands)"},
        {"perm-seed", SQ_OPT_INT, &seed, "N", "seed of the permutations (default 1)"},
        {"exact-only", SQ_OPT_FLAG, &exact_only, NULL, "only exact duplicates after normalisation"},
        {"skip-bad", SQ_OPT_FLAG, &skip_bad, NULL, "count and skip unparsable input lines instead of failing"},
        {"print-params", SQ_OPT_FLAG, &pparams, NULL, "print the resolved parameters and permutations as JSON"},
        {"signatures", SQ_OPT_STR, &sigs, "FILE", "write each input record's shingles and signature (no dedup)"},
    };
    int npos, rc = sq_cli_parse(argc, argv, "--in FILE --out FILE [--field query] [--threshold 0.6] [--shard I/N]",
                                opts, SQ_ARRAY_LEN(opts), NULL, 0, &npos);
    if (rc >= 0) return rc;
    int kind = sq_shingle_kind_parse(shingle);
    if (kind < 0) return sq_cli_usage_error(CMD, "--shingle must be word or char");
    o.mh.kind = (sq_shingle_kind)kind;
    o.mh.ngram = (int)(ngram >= 0 ? ngram : kind == SQ_SHINGLE_WORD ? 2 : 5);
    if (num_perm < 1 || num_perm > 1024 || bands < 0 || bands > 1024 || rows < 0 || rows > 1024 || ngram > 64)
        return sq_cli_usage_error(CMD, "--num-perm, --bands, --rows or --ngram out of range");
    if ((bands == 0) != (rows == 0)) return sq_cli_usage_error(CMD, "--bands and --rows go together");
    o.mh.num_perm = (int)num_perm, o.mh.bands = (int)bands, o.mh.rows = (int)rows;
    o.mh.threshold = threshold, o.mh.seed = (uint64_t)seed;
    o.exact_only = exact_only;
    if (pparams) return print_params(&o.mh);
    if (!o.stage.in) return sq_cli_usage_error(CMD, "--in is required");
    if (sigs) return signatures(&o.mh, o.stage.in, o.field, sigs);
    if (!o.stage.out) return sq_cli_usage_error(CMD, "--out is required");
    sq_err e;
    if (shard && sq_stage_parse_shard(shard, &o.stage.shard_index, &o.stage.shard_count, &e))
        return sq_cli_usage_error(CMD, "--shard: %s", e.msg);
    o.stage.dropped = dropped;
    o.stage.skip_bad = skip_bad;
    if (sq_common.quiet) sq_progress_set_quiet(1);
    if (sq_dedup_run(&o, NULL, &e)) return sq_cli_fail(CMD, "%s", e.msg);
    return SQ_EXIT_OK;
}

SQ_COMMAND(dedup, "dedup", "drop exact and near-duplicate questions (MinHash LSH), keeping the first", cmd_dedup);
