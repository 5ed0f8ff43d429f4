/* Resumable training state: out_dir/last-checkpoint holds the HF model, the AdamW moments
 * (and DPO reference log-probs) in optimizer.safetensors, and trainer_state.json. A new
 * checkpoint is written beside the old one and swapped in by rename, so a kill -9 at any
 * moment leaves one complete checkpoint. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scalequest/safetensors.h"
#include "train_state.h"

static void remove_flat_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char *p = sq_path_join(dir, de->d_name);
        if (p) unlink(p);
        free(p);
    }
    closedir(d);
    rmdir(dir);
}

static char *ckpt_path(const char *out, const char *suffix) {
    char name[64];
    snprintf(name, sizeof name, "last-checkpoint%s", suffix);
    return sq_path_join(out, name);
}

int sq_train_state_save(const sq_tmodel *m, const sq_adamw *opt, const float *ref, int n, const sq_train_opts *o,
                        int64_t step, int64_t steps, sq_err *e) {
    char *tmp = ckpt_path(o->out_dir, ".tmp"), *cur = ckpt_path(o->out_dir, ""), *old = ckpt_path(o->out_dir, ".old");
    char *p = NULL;
    int rc = 0;
    remove_flat_dir(tmp);
    if ((rc = sq_tm_save_hf(m, tmp, o->tokenizer, e))) goto out;
    sq_st_entry ent[3] = {{"exp_avg", {opt->m, SQ_F32, 1, {(int64_t)opt->n}}},
                          {"exp_avg_sq", {opt->v, SQ_F32, 1, {(int64_t)opt->n}}},
                          {"ref_logp", {(void *)ref, SQ_F32, 1, {n}}}};
    p = sq_path_join(tmp, "optimizer.safetensors");
    if ((rc = sq_st_write(p, ent, ref ? 3 : 2, e))) goto out;
    free(p);
    char js[512];
    int len = snprintf(js, sizeof js,
                       "{\"step\": %lld, \"total_steps\": %lld, \"adam_step\": %lld, \"n_examples\": %d, "
                       "\"seed\": %llu, \"mode\": %d, \"n_params\": %zu}\n",
                       (long long)step, (long long)steps, (long long)opt->step, n, (unsigned long long)o->seed,
                       (int)o->mode, m->n_params);
    p = sq_path_join(tmp, "trainer_state.json");
    if ((rc = sq_file_write_atomic(p, js, (size_t)len, e))) goto out;
    /* Swap: current -> old, tmp -> current, drop old. Resume accepts old if current is gone. */
    remove_flat_dir(old);
    if (sq_dir_exists(cur) && rename(cur, old)) {
        rc = sq_fail(e, SQ_EIO, "%s: cannot rename: %s", cur, strerror(errno));
        goto out;
    }
    if (rename(tmp, cur)) {
        rc = sq_fail(e, SQ_EIO, "%s: cannot rename: %s", tmp, strerror(errno));
        goto out;
    }
    remove_flat_dir(old);
out:
    free(p);
    free(tmp);
    free(cur);
    free(old);
    return rc;
}

static int read_state(const char *dir, cJSON **js, sq_err *e) {
    char *p = sq_path_join(dir, "trainer_state.json"), *text;
    size_t len;
    int rc = sq_file_read_all(p, &text, &len, e);
    if (!rc) {
        *js = cJSON_Parse(text);
        if (!*js) rc = sq_fail(e, SQ_EPARSE, "%s: not valid JSON", p);
        free(text);
    }
    free(p);
    return rc;
}

static double jnum(const cJSON *j, const char *k) {
    const cJSON *v = cJSON_GetObjectItem(j, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

int sq_train_state_resume(sq_tmodel *m, sq_adamw *opt, float *ref, int n, const sq_train_opts *o, int64_t steps,
                          int64_t *start, sq_err *e) {
    if (!o->out_dir) return 0;
    char *dir = ckpt_path(o->out_dir, "");
    if (!sq_dir_exists(dir)) {
        free(dir);
        dir = ckpt_path(o->out_dir, ".old");
        if (!sq_dir_exists(dir)) {
            free(dir);
            return 0;
        }
    }
    cJSON *js = NULL;
    sq_safetensors st = {0};
    sq_tmodel saved = {0};
    int rc = read_state(dir, &js, e), have_st = 0;
    if (rc) goto out;
    if ((int64_t)jnum(js, "total_steps") != steps || (int)jnum(js, "n_examples") != n ||
        (int)jnum(js, "mode") != (int)o->mode || (size_t)jnum(js, "n_params") != m->n_params) {
        rc = sq_fail(e, SQ_ESTATE,
                     "%s: the checkpoint belongs to another run (steps, data, mode or model differ); remove it or "
                     "use another --out",
                     dir);
        goto out;
    }
    if ((rc = sq_tm_load_hf(&saved, dir, m->has_score, e))) goto out;
    if (saved.n_params != m->n_params) {
        rc = sq_fail(e, SQ_ESTATE, "%s: the checkpoint's model differs from --model", dir);
        goto out;
    }
    memcpy(m->params, saved.params, m->n_params * sizeof(float));
    char *p = sq_path_join(dir, "optimizer.safetensors");
    rc = sq_st_open(&st, p, e);
    free(p);
    if (rc) goto out;
    have_st = 1;
    const sq_view *vm = sq_st_find(&st, "exp_avg"), *vv = sq_st_find(&st, "exp_avg_sq"),
                  *vr = sq_st_find(&st, "ref_logp");
    if (!vm || !vv || vm->dtype != SQ_F32 || vv->dtype != SQ_F32 || (size_t)sq_view_numel(vm) != opt->n ||
        (size_t)sq_view_numel(vv) != opt->n || (ref && (!vr || vr->dtype != SQ_F32 || sq_view_numel(vr) != n))) {
        rc = sq_fail(e, SQ_EPARSE, "%s/optimizer.safetensors: missing or mis-sized optimiser state", dir);
        goto out;
    }
    memcpy(opt->m, vm->data, opt->n * sizeof(float));
    memcpy(opt->v, vv->data, opt->n * sizeof(float));
    if (ref) memcpy(ref, vr->data, (size_t)n * sizeof(float));
    opt->step = (int64_t)jnum(js, "adam_step");
    *start = (int64_t)jnum(js, "step");
    rc = 1;
out:
    if (have_st) sq_st_close(&st);
    sq_tm_free(&saved);
    cJSON_Delete(js);
    free(dir);
    return rc;
}

int sq_train_log_open(train_log *l, const char *out_dir, int64_t start, sq_err *e) {
    l->fp = NULL;
    if (!out_dir) return 0;
    int rc = sq_mkdirs(out_dir, e);
    if (rc) return rc;
    char *path = sq_path_join(out_dir, "train_log.jsonl");
    sq_buf keep = {0};
    char *text = NULL;
    size_t len;
    if (start > 0 && sq_file_exists(path) && sq_file_read_all(path, &text, &len, NULL) == 0) {
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
            cJSON *j = cJSON_Parse(line);
            double s = j ? jnum(j, "step") : -1;
            cJSON_Delete(j);
            if (s >= 1 && s <= (double)start) {
                sq_buf_puts(&keep, line);
                sq_buf_puts(&keep, "\n");
            }
        }
    }
    free(text);
    rc = sq_file_write_atomic(path, keep.data ? keep.data : "", keep.len, e);
    sq_buf_free(&keep);
    if (!rc) {
        l->fp = fopen(path, "a");
        if (!l->fp) rc = sq_fail(e, SQ_EIO, "%s: %s", path, strerror(errno));
    }
    free(path);
    return rc;
}

int sq_train_log_step(train_log *l, int64_t step, double loss, double lr, double gnorm, double chosen, double rejected,
                      sq_err *e) {
    if (!l->fp) return 0;
    fprintf(l->fp, "{\"step\": %lld, \"loss\": %.9g, \"lr\": %.9g, \"grad_norm\": %.9g", (long long)step, loss, lr, gnorm);
    if (!isnan(chosen)) fprintf(l->fp, ", \"rewards_chosen\": %.9g, \"rewards_rejected\": %.9g", chosen, rejected);
    if (fprintf(l->fp, "}\n") < 0 || fflush(l->fp)) return sq_fail(e, SQ_EIO, "train_log.jsonl: write failed");
    return 0;
}

void sq_train_log_close(train_log *l) {
    if (l->fp) fclose(l->fp);
    l->fp = NULL;
}
