/* Training examples from JSONL records of token ids. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/train.h"

int sq_tdata_add(sq_tdata *d, const int32_t *ids, const uint8_t *mask, int n, float value) {
    if (!(d->n & (d->n + 1)) || !d->ex) { /* grow at 0, 1, 3, 7, ...: doubling */
        sq_texample *ne = realloc(d->ex, sizeof *ne * (size_t)(2 * d->n + 2));
        if (!ne) return SQ_ENOMEM;
        d->ex = ne;
    }
    sq_texample *x = &d->ex[d->n];
    x->ids = malloc(sizeof *x->ids * (size_t)(n ? n : 1));
    x->loss = malloc((size_t)(n ? n : 1));
    if (!x->ids || !x->loss) {
        free(x->ids);
        free(x->loss);
        return SQ_ENOMEM;
    }
    memcpy(x->ids, ids, sizeof *ids * (size_t)n);
    for (int i = 0; i < n; i++) x->loss[i] = mask ? mask[i] : i > 0;
    x->n = n;
    x->value = value;
    d->n++;
    return 0;
}

void sq_tdata_free(sq_tdata *d) {
    for (int i = 0; i < d->n; i++) {
        free(d->ex[i].ids);
        free(d->ex[i].loss);
    }
    free(d->ex);
    memset(d, 0, sizeof *d);
}

/* Read an int array field; mask arrays must be 0/1 and as long as the ids. */
static int int_array(const cJSON *rec, const char *field, int32_t **out, int *n, const char *path, int line, sq_err *e) {
    const cJSON *a = cJSON_GetObjectItem(rec, field);
    if (!cJSON_IsArray(a)) return sq_fail(e, SQ_EPARSE, "%s:%d: field \"%s\" must be an array of token ids", path, line, field);
    int len = cJSON_GetArraySize(a);
    *out = malloc(sizeof **out * (size_t)(len ? len : 1));
    if (!*out) return sq_fail(e, SQ_ENOMEM, "out of memory");
    int i = 0;
    for (const cJSON *v = a->child; v; v = v->next, i++) {
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 2147483647.0 ||
            v->valuedouble != (double)(int32_t)v->valuedouble) {
            free(*out);
            *out = NULL;
            return sq_fail(e, SQ_EPARSE, "%s:%d: \"%s\"[%d] is not a non-negative integer", path, line, field, i);
        }
        (*out)[i] = (int32_t)v->valuedouble;
    }
    *n = len;
    return 0;
}

static int add_seq(sq_tdata *d, const cJSON *rec, const char *ids_f, const char *mask_f, float value, const char *path,
                   int line, sq_err *e) {
    int32_t *ids = NULL, *mk = NULL;
    int n = 0, nm = 0;
    int rc = int_array(rec, ids_f, &ids, &n, path, line, e);
    if (rc) return rc;
    uint8_t *mask = NULL;
    if (cJSON_GetObjectItem(rec, mask_f)) {
        if ((rc = int_array(rec, mask_f, &mk, &nm, path, line, e))) goto out;
        if (nm != n) {
            rc = sq_fail(e, SQ_EPARSE, "%s:%d: \"%s\" has %d entries for %d ids", path, line, mask_f, nm, n);
            goto out;
        }
        mask = malloc((size_t)(n ? n : 1));
        if (!mask) {
            rc = sq_fail(e, SQ_ENOMEM, "out of memory");
            goto out;
        }
        for (int i = 0; i < n; i++) {
            if (mk[i] > 1) {
                rc = sq_fail(e, SQ_EPARSE, "%s:%d: \"%s\"[%d] must be 0 or 1", path, line, mask_f, i);
                goto out;
            }
            mask[i] = (uint8_t)mk[i];
        }
    }
    if (n < 2) {
        rc = sq_fail(e, SQ_EPARSE, "%s:%d: \"%s\" needs at least 2 tokens", path, line, ids_f);
        goto out;
    }
    if (sq_tdata_add(d, ids, mask, n, value)) rc = sq_fail(e, SQ_ENOMEM, "out of memory");
out:
    free(ids);
    free(mk);
    free(mask);
    return rc;
}

int sq_tdata_load_ids(sq_tdata *d, const char *path, sq_train_mode mode, sq_err *e) {
    memset(d, 0, sizeof *d);
    char *text;
    size_t len;
    int rc = sq_file_read_all(path, &text, &len, e);
    if (rc) return rc;
    int line = 0;
    char *save = NULL;
    for (char *ln = strtok_r(text, "\n", &save); ln && !rc; ln = strtok_r(NULL, "\n", &save)) {
        line++;
        if (strspn(ln, " \t\r") == strlen(ln)) continue;
        cJSON *rec = cJSON_Parse(ln);
        if (!cJSON_IsObject(rec)) {
            cJSON_Delete(rec);
            rc = sq_fail(e, SQ_EPARSE, "%s:%d: not a JSON object", path, line);
            break;
        }
        if (mode == SQ_TRAIN_DPO) {
            rc = add_seq(d, rec, "chosen_ids", "chosen_mask", 0, path, line, e);
            if (!rc) rc = add_seq(d, rec, "rejected_ids", "rejected_mask", 0, path, line, e);
        } else {
            float value = 0;
            if (mode == SQ_TRAIN_REGRESS) {
                const cJSON *v = cJSON_GetObjectItem(rec, "value");
                if (!cJSON_IsNumber(v)) rc = sq_fail(e, SQ_EPARSE, "%s:%d: regression needs a number \"value\"", path, line);
                else value = (float)v->valuedouble;
            }
            if (!rc) rc = add_seq(d, rec, "input_ids", "loss_mask", value, path, line, e);
        }
        cJSON_Delete(rec);
    }
    free(text);
    if (!rc && d->n == 0) rc = sq_fail(e, SQ_EPARSE, "%s: no records", path);
    if (rc) sq_tdata_free(d);
    return rc;
}
