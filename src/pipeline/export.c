/* The export step (export.h): the training file and its provenance side file. */
#include "scalequest/export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/decontam.h"
#include "scalequest/jsonl.h"

void sq_export_opts_default(sq_export_opts *o) {
    memset(o, 0, sizeof *o);
    o->field = "query";
}

static int put(sq_atomic_file *f, cJSON *obj, const char *path, sq_err *e) {
    char *s = cJSON_PrintUnformatted(obj);
    int rc = 0;
    if (!s) return sq_fail(e, SQ_ENOMEM, "out of memory");
    if (fputs(s, f->fp) == EOF || fputc('\n', f->fp) == EOF)
        rc = sq_fail(e, SQ_EIO, "%s: write failed", path);
    free(s);
    return rc;
}

static int emit(sq_atomic_file *out, sq_atomic_file *prov, const sq_export_opts *o, const char *pv_path,
                const cJSON *rec, const char *id, const char *query, const char *response, int rank,
                sq_export_stats *st, sq_err *e) {
    char idbuf[512];
    if (rank) snprintf(idbuf, sizeof idbuf, "%s#%d", id, rank);
    const char *oid = rank ? idbuf : id;
    cJSON *line = cJSON_CreateObject(), *pv = cJSON_CreateObject();
    int rc = 0;
    if (!line || !pv || !cJSON_AddStringToObject(line, "id", oid) ||
        !cJSON_AddStringToObject(line, "query", query) ||
        !cJSON_AddStringToObject(line, "response", response))
        rc = sq_fail(e, SQ_ENOMEM, "out of memory");
    if (!rc) rc = put(out, line, o->out, e);
    if (!rc) {
        cJSON_AddStringToObject(pv, "id", oid);
        cJSON_AddStringToObject(pv, "source_id", id);
        cJSON_AddNumberToObject(pv, "rank", rank);
        const cJSON *f;
        cJSON_ArrayForEach(f, rec) {
            const char *k = f->string;
            if (!strcmp(k, "id") || !strcmp(k, o->field) || !strcmp(k, "response") ||
                !strcmp(k, "responses") || !strcmp(k, "kept"))
                continue;
            cJSON_AddItemToObject(pv, k, cJSON_Duplicate(f, 1));
        }
        const cJSON *kept = sq_rec_array(rec, "kept");
        const cJSON *kr = kept ? cJSON_GetArrayItem(kept, rank) : NULL;
        if (kr) { /* the kept entry's own reward / answer / index, not the best one's */
            const char *kf[] = {"index", "answer", "reward"};
            for (int i = 0; i < 3; i++) {
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(kr, kf[i]);
                if (!v) continue;
                char name[32];
                snprintf(name, sizeof name, "kept_%s", kf[i]);
                cJSON_AddItemToObject(pv, name, cJSON_Duplicate(v, 1));
            }
        }
        rc = put(prov, pv, pv_path, e);
    }
    cJSON_Delete(line);
    cJSON_Delete(pv);
    if (!rc) st->lines++;
    return rc;
}

int sq_export_run(const sq_export_opts *o, sq_export_stats *stp, sq_err *e) {
    if (!o->in || !o->out) return sq_fail(e, SQ_EINVAL, "export: an input and an output are needed");
    const char *field = o->field ? o->field : "query";
    sq_export_opts oo = *o;
    oo.field = field;
    char *pv_path = NULL;
    if (o->provenance)
        pv_path = sq_strdup(o->provenance);
    else {
        size_t n = strlen(o->out);
        const char *suf = n > 6 && !strcmp(o->out + n - 6, ".jsonl") ? "" : NULL;
        pv_path = malloc(n + 32);
        if (pv_path) {
            memcpy(pv_path, o->out, n + 1);
            if (suf) pv_path[n - 6] = 0;
            strcat(pv_path, ".provenance.jsonl");
        }
    }
    if (!pv_path) return sq_fail(e, SQ_ENOMEM, "out of memory");
    if (!strcmp(pv_path, o->out)) {
        free(pv_path);
        return sq_fail(e, SQ_EINVAL, "export: the provenance file is the output file");
    }
    sq_export_stats st = {0};
    sq_jsonl_reader *r = NULL;
    sq_atomic_file out, prov;
    int rc = sq_jsonl_open(&r, o->in, o->skip_bad, e), n_open = 0;
    if (!rc && !(rc = sq_atomic_open(&out, o->out, e))) n_open = 1;
    if (!rc && !(rc = sq_atomic_open(&prov, pv_path, e))) n_open = 2;
    cJSON *rec = NULL;
    while (!rc && (rc = sq_jsonl_next(r, &rec, e)) == 1) {
        rc = 0;
        long long ln = (long long)sq_jsonl_line_number(r);
        const char *id = sq_rec_id(rec), *q = sq_rec_str(rec, field), *resp = sq_rec_str(rec, "response");
        if (!id || !q || !resp)
            rc = sq_fail(e, SQ_EPARSE, "%s:%lld: needs string \"id\", \"%s\" and \"response\"", o->in, ln,
                         field);
        const cJSON *kept = sq_rec_array(rec, "kept");
        int nk = kept ? cJSON_GetArraySize(kept) : 0;
        if (!rc) rc = emit(&out, &prov, &oo, pv_path, rec, id, q, resp, 0, &st, e);
        for (int k = 1; k < nk && !rc; k++) {
            const char *rk = sq_rec_str(cJSON_GetArrayItem(kept, k), "response");
            if (!rk)
                rc = sq_fail(e, SQ_EPARSE, "%s:%lld: kept[%d] has no string \"response\"", o->in, ln, k);
            else
                rc = emit(&out, &prov, &oo, pv_path, rec, id, q, rk, k, &st, e);
        }
        st.records++;
        cJSON_Delete(rec);
        rec = NULL;
    }
    if (rc > 0) rc = 0;
    st.skipped_bad = r ? sq_jsonl_bad_lines(r) : 0;
    if (n_open >= 1) {
        if (rc)
            sq_atomic_abort(&out);
        else
            rc = sq_atomic_commit(&out, e);
    }
    if (n_open >= 2) {
        if (rc)
            sq_atomic_abort(&prov);
        else
            rc = sq_atomic_commit(&prov, e);
    }
    sq_jsonl_close(r);
    free(pv_path);
    /* the same questions: a decontaminated input makes a decontaminated output */
    if (!rc && strcmp(o->in, "-") && strcmp(o->out, "-")) rc = sq_decontam_carry(o->in, o->out, e);
    if (stp) *stp = st;
    return rc;
}
