/* Resumable training state: out_dir/last-checkpoint holds the HF model, the AdamW moments
 * (and DPO reference log-probs) in optimizer.safetensors, and trainer_state.json. A new
 * checkpoint is written beside the old one and swapped in by rename, so a kill -9 at any
 * moment leaves one complete checkpoint. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
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

/* ---- the run's identity ------------------------------------------------------------------ */

/* A 64-bit hash of bytes, four independent lanes of 8-byte words so it runs at memory speed
 * over a model's weights. It tells runs apart; it is no defence against a forged file. */
typedef struct whash {
    uint64_t lane[4];
    uint64_t len;
} whash;

static void whash_init(whash *h) {
    for (int i = 0; i < 4; i++) h->lane[i] = 0x243f6a8885a308d3ull * (uint64_t)(i + 1);
    h->len = 0;
}

static inline uint64_t whash_round(uint64_t acc, uint64_t w) {
    acc ^= w * 0x9e3779b97f4a7c15ull;
    acc = (acc << 31 | acc >> 33) * 0xbf58476d1ce4e5b9ull;
    return acc;
}

static void whash_bytes(whash *h, const void *data, size_t n) {
    const unsigned char *p = data;
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 4; k++) {
            uint64_t w;
            memcpy(&w, p + i + 8 * k, 8);
            h->lane[k] = whash_round(h->lane[k], w);
        }
    for (; i < n; i++) h->lane[0] = whash_round(h->lane[0], p[i] | 0x100u);
    h->len += n;
}

static uint64_t whash_end(const whash *h) {
    uint64_t x = h->len;
    for (int i = 0; i < 4; i++) x = whash_round(x, h->lane[i]);
    x ^= x >> 29;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 32);
}

static void add_hash(cJSON *o, const char *key, uint64_t v) {
    char hex[24];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)v);
    cJSON_AddStringToObject(o, key, hex);
}

/* The fields of an identity, with the option a user changes to change each. */
static const struct {
    const char *key, *option;
} identity_fields[] = {
    {"mode", "--mode"},
    {"batch", "--batch"},
    {"seq_len", "--seq-len"},
    {"accum", "--accum"},
    {"pack", "--no-pack"},
    {"epochs", "--epochs"},
    {"max_steps", "--max-steps"},
    {"lr", "--lr"},
    {"weight_decay", "--weight-decay"},
    {"adam_beta1", "--adam-beta1"},
    {"adam_beta2", "--adam-beta2"},
    {"adam_eps", "--adam-eps"},
    {"clip", "--clip"},
    {"warmup_ratio", "--warmup-ratio"},
    {"warmup_steps", "--warmup-steps"},
    {"schedule", "--schedule"},
    {"dpo_beta", "--beta"},
    {"seed", "--seed"},
    {"n_examples", "--data"},
    {"data_hash", "--data"},
    {"n_params", "--model/--init-config"},
    {"start_weights", "--model/--init-config"},
    {"steps", "the number of steps"},
};

char *sq_train_run_identity(const sq_tmodel *m, const sq_texample *ex, int n, const sq_train_opts *o,
                            int64_t steps) {
    static const char *modes[] = {"sft", "qft", "dpo", "regress"}, *scheds[] = {"cosine", "linear", "constant"};
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON_AddStringToObject(j, "mode", (unsigned)o->mode < 4 ? modes[o->mode] : "?");
    cJSON_AddNumberToObject(j, "batch", o->batch);
    cJSON_AddNumberToObject(j, "seq_len", o->seq_len);
    cJSON_AddNumberToObject(j, "accum", o->accum);
    cJSON_AddBoolToObject(j, "pack", o->pack != 0);
    cJSON_AddNumberToObject(j, "epochs", o->epochs);
    cJSON_AddNumberToObject(j, "max_steps", (double)o->max_steps);
    cJSON_AddNumberToObject(j, "lr", o->lr);
    cJSON_AddNumberToObject(j, "weight_decay", o->weight_decay);
    cJSON_AddNumberToObject(j, "adam_beta1", o->beta1);
    cJSON_AddNumberToObject(j, "adam_beta2", o->beta2);
    cJSON_AddNumberToObject(j, "adam_eps", o->eps);
    cJSON_AddNumberToObject(j, "clip", o->clip);
    cJSON_AddNumberToObject(j, "warmup_ratio", o->warmup_ratio);
    cJSON_AddNumberToObject(j, "warmup_steps", (double)o->warmup_steps);
    cJSON_AddStringToObject(j, "schedule", (unsigned)o->sched < 3 ? scheds[o->sched] : "?");
    cJSON_AddNumberToObject(j, "dpo_beta", o->dpo_beta);
    char seed[24];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    cJSON_AddStringToObject(j, "seed", seed); /* a string: JSON numbers lose 64-bit values */
    cJSON_AddNumberToObject(j, "n_examples", n);
    whash h;
    whash_init(&h);
    for (int i = 0; i < n; i++) {
        int32_t len = ex[i].n;
        whash_bytes(&h, &len, sizeof len);
        whash_bytes(&h, ex[i].ids, sizeof *ex[i].ids * (size_t)len);
        whash_bytes(&h, ex[i].loss, (size_t)len);
        whash_bytes(&h, &ex[i].value, sizeof ex[i].value);
    }
    add_hash(j, "data_hash", whash_end(&h));
    cJSON_AddNumberToObject(j, "n_params", (double)m->n_params);
    whash_init(&h);
    whash_bytes(&h, m->params, m->n_params * sizeof *m->params);
    add_hash(j, "start_weights", whash_end(&h));
    cJSON_AddNumberToObject(j, "steps", (double)steps);
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return text;
}

static void value_text(const cJSON *v, char *out, size_t cap) {
    if (!v) snprintf(out, cap, "(not recorded)");
    else if (cJSON_IsString(v)) snprintf(out, cap, "%s", v->valuestring);
    else if (cJSON_IsBool(v)) snprintf(out, cap, "%s", cJSON_IsTrue(v) ? "on" : "off");
    else if (cJSON_IsNumber(v)) {
        snprintf(out, cap, "%.15g", v->valuedouble); /* 3e-4, not 0.00029999999999999997 */
        if (strtod(out, NULL) != v->valuedouble) snprintf(out, cap, "%.17g", v->valuedouble);
    }
    else snprintf(out, cap, "?");
}

static int same_value(const cJSON *a, const cJSON *b) {
    if (!a || !b) return 0;
    if (cJSON_IsNumber(a) && cJSON_IsNumber(b)) return a->valuedouble == b->valuedouble;
    if (cJSON_IsString(a) && cJSON_IsString(b)) return !strcmp(a->valuestring, b->valuestring);
    if (cJSON_IsBool(a) && cJSON_IsBool(b)) return cJSON_IsTrue(a) == cJSON_IsTrue(b);
    return 0;
}

/* Every difference between this run and the checkpoint's, each option named once. */
static int compare_identity(const char *dir, const cJSON *saved, const char *identity, sq_err *e) {
    if (!cJSON_IsObject(saved))
        return sq_fail(e, SQ_ESTATE,
                       "%s: the checkpoint does not record the options and data of its run (an older format), so "
                       "it cannot be checked against this one; remove it or use another --out",
                       dir);
    cJSON *now = cJSON_Parse(identity);
    if (!now) return sq_fail(e, SQ_ENOMEM, "out of memory");
    sq_buf diff = {0};
    const char *last_option = "";
    for (size_t i = 0; i < SQ_ARRAY_LEN(identity_fields); i++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(now, identity_fields[i].key);
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(saved, identity_fields[i].key);
        if (same_value(a, b) || !strcmp(last_option, identity_fields[i].option)) continue;
        last_option = identity_fields[i].option;
        char va[64], vb[64];
        value_text(a, va, sizeof va);
        value_text(b, vb, sizeof vb);
        if (diff.len) sq_buf_puts(&diff, "; ");
        if (!strcmp(identity_fields[i].key, "n_examples") || !strcmp(identity_fields[i].key, "data_hash"))
            sq_buf_puts(&diff, "--data holds other examples than the checkpoint's run trained on");
        else if (!strcmp(identity_fields[i].key, "n_params") || !strcmp(identity_fields[i].key, "start_weights"))
            sq_buf_puts(&diff, "the starting model (--model/--init-config, or --seed for random weights) differs");
        else
            sq_buf_printf(&diff, "%s is %s here, %s in the checkpoint's run", identity_fields[i].option, va, vb);
    }
    cJSON_Delete(now);
    int rc = 0;
    if (diff.len)
        rc = sq_fail(e, SQ_ESTATE,
                     "%s belongs to another run: %s. Rerun with the checkpoint's options, or remove it (or use "
                     "another --out) to start afresh",
                     dir, diff.data);
    sq_buf_free(&diff);
    return rc;
}

/* ---- checkpoints ------------------------------------------------------------------------- */

static char *ckpt_path(const char *out, const char *suffix) {
    char name[64];
    snprintf(name, sizeof name, "last-checkpoint%s", suffix);
    return sq_path_join(out, name);
}

static int write_state(const char *path, const char *identity, int64_t step, int64_t adam_step, sq_err *e) {
    cJSON *js = cJSON_CreateObject(), *run = cJSON_Parse(identity);
    char *text = NULL;
    if (js && run) {
        cJSON_AddNumberToObject(js, "step", (double)step);
        cJSON_AddNumberToObject(js, "adam_step", (double)adam_step);
        cJSON_AddItemToObject(js, "run", run);
        run = NULL;
        text = cJSON_Print(js);
    }
    cJSON_Delete(js);
    cJSON_Delete(run);
    if (!text) return sq_fail(e, SQ_ENOMEM, "out of memory");
    int rc = sq_file_write_atomic(path, text, strlen(text), e);
    free(text);
    return rc;
}

int sq_train_state_save(const sq_tmodel *m, const sq_adamw *opt, const float *ref, int n, const sq_train_opts *o,
                        const char *identity, int64_t step, sq_err *e) {
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
    p = sq_path_join(tmp, "trainer_state.json");
    if ((rc = write_state(p, identity, step, opt->step, e))) goto out;
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

int sq_train_state_resume(sq_tmodel *m, sq_adamw *opt, float *ref, int n, const sq_train_opts *o,
                          const char *identity, int64_t *start, sq_err *e) {
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
    if ((rc = compare_identity(dir, cJSON_GetObjectItemCaseSensitive(js, "run"), identity, e))) goto out;
    if ((rc = sq_tm_load(&saved, dir, m->has_score, e))) goto out;
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
