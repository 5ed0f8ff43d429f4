/* The decontamination marker (decontam.h): whether a training file counts as decontaminated,
 * and carrying the marker over to a file a later stage made from it (export, and every stage
 * of the stage framework at close: stage.h). */
#include "scalequest/decontam.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/jsonl.h"

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Records in a JSONL file, counted as decontaminate counts its output. */
static int count_records(const char *path, int64_t *n, sq_err *e) {
    sq_jsonl_reader *r = NULL;
    int rc = sq_jsonl_open(&r, path, 0, e);
    const char *line;
    size_t len;
    *n = 0;
    while (!rc && (rc = sq_jsonl_next_line(r, &line, &len, e)) == 1)
        rc = 0, (*n)++;
    sq_jsonl_close(r);
    return rc < 0 ? rc : 0;
}

static int read_marker(const char *path, cJSON **js, sq_err *e) {
    char *text = NULL;
    size_t len;
    *js = NULL;
    int rc = sq_file_read_all(path, &text, &len, e);
    if (rc) return rc;
    *js = cJSON_ParseWithLength(text, len);
    free(text);
    return *js ? 0 : sq_fail(e, SQ_EPARSE, "%s: not valid JSON", path);
}

int sq_decontam_check(const char *file, char *why, size_t why_len, sq_err *e) {
    if (why_len) *why = 0;
    char *mpath = sq_decontam_report_path(file);
    if (!mpath) return sq_fail(e, SQ_ENOMEM, "out of memory");
    int64_t n = 0;
    int rc = count_records(file, &n, e), ok = 0;
    cJSON *js = NULL;
    double want = -1;
    const char *name = NULL;
    if (rc) goto out;
    if (!sq_file_exists(mpath)) {
        snprintf(why, why_len, "no %s beside it", base_name(mpath));
    } else if (read_marker(mpath, &js, NULL)) {
        snprintf(why, why_len, "its marker %s is not valid JSON", mpath);
    } else if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(js, "decontaminated"))) {
        snprintf(why, why_len, "its marker %s does not say \"decontaminated\": true", mpath);
    } else if (!(name = sq_rec_str(js, "output_name")) || strcmp(name, base_name(file))) {
        snprintf(why, why_len, "its marker %s was written for %s", mpath, name ? name : "another file");
    } else if (sq_rec_num(js, "output_records", &want) || want != (double)n) {
        snprintf(why, why_len, "it has %lld records but its marker %s counted %.0f (changed since?)",
                 (long long)n, mpath, want);
    } else {
        ok = 1;
    }
out:
    cJSON_Delete(js);
    free(mpath);
    return rc ? rc : ok;
}

int sq_decontam_carry(const char *in, const char *out, sq_err *e) {
    char *mout = sq_decontam_report_path(out), *min = sq_decontam_report_path(in);
    if (!mout || !min) {
        free(mout), free(min);
        return sq_fail(e, SQ_ENOMEM, "out of memory");
    }
    if (!sq_file_exists(min) && !sq_file_exists(mout)) {
        /* nothing to carry and nothing stale: every stage calls this at close, so skip the
         * passes over both files that the check would make */
        free(mout), free(min);
        return 0;
    }
    char why[16];
    int clean = sq_decontam_check(in, why, sizeof why, e), rc = clean < 0 ? clean : 0;
    cJSON *js = NULL;
    int64_t n = 0;
    if (!rc && !clean) {
        /* an earlier export's marker must not vouch for this output */
        if (sq_file_exists(mout) && remove(mout))
            rc = sq_fail(e, SQ_EIO, "%s: cannot remove a marker that no longer applies", mout);
    } else if (!rc && !(rc = read_marker(min, &js, e)) && !(rc = count_records(out, &n, e))) {
        cJSON *carried = cJSON_CreateString(in);
        if (!carried || !cJSON_ReplaceItemInObject(js, "output", cJSON_CreateString(out)) ||
            !cJSON_ReplaceItemInObject(js, "output_name", cJSON_CreateString(base_name(out))) ||
            !cJSON_ReplaceItemInObject(js, "output_records", cJSON_CreateNumber((double)n))) {
            cJSON_Delete(carried);
            rc = sq_fail(e, SQ_ENOMEM, "out of memory");
        } else {
            cJSON_DeleteItemFromObjectCaseSensitive(js, "carried_from");
            cJSON_AddItemToObject(js, "carried_from", carried);
            char *text = cJSON_Print(js);
            rc = text ? sq_file_write_atomic(mout, text, strlen(text), e)
                      : sq_fail(e, SQ_ENOMEM, "out of memory");
            free(text);
        }
    }
    cJSON_Delete(js);
    free(mout), free(min);
    return rc;
}
