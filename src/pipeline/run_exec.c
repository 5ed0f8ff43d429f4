/* The runner: each stage as `scalequest <cmd> ...` in a child process, decided make-like from
 * the manifest, watched for progress, timed (wall and the child's CPU from wait4), and recorded.
 *
 * Why it survives kill -9 at any moment:
 *  - a stage's record goes to manifest.json (atomic write) as "running" with its fingerprint
 *    before its command starts; the rerun with the same fingerprint resumes it in place (the
 *    commands resume by id, or write atomically), a different fingerprint cleans it first;
 *  - model folders are trained into NAME.tmp and renamed when the command succeeds, so no
 *    stage ever reads a half-written model;
 *  - the child dies with the runner (PR_SET_PDEATHSIG) and inherits the run directory's lock,
 *    so a restarted runner waits until the old child is gone before it touches any file. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "run_internal.h"
#include "scalequest/decontam.h"
#include "scalequest/run.h"

static double now_s(void) { return sq_now(); }

static int rm_rf(const char *path) {
    struct stat st;
    if (lstat(path, &st)) return 0;
    if (!S_ISDIR(st.st_mode)) return unlink(path);
    DIR *d = opendir(path);
    if (!d) return -1;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char *sub = sq_path_join(path, de->d_name);
        if (sub) rm_rf(sub);
        free(sub);
    }
    closedir(d);
    return rmdir(path);
}

static char *str_cat(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 1;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s%s", a, b);
    return s;
}

/* The stage's files: its outputs, NAME.tmp folders, and the sidecars a stage writes beside a
 * JSONL output (X.dropped.jsonl, X.failed.jsonl), plus its log and stats. */
static void clean_stage(const sq_run_plan *p, const sq_run_stage *s) {
    for (int o = 0; o < s->noutputs; o++) {
        rm_rf(s->outputs[o]);
        char *t = str_cat(s->outputs[o], ".tmp");
        if (t) rm_rf(t);
        free(t);
        size_t n = strlen(s->outputs[o]);
        if (n > 6 && !strcmp(s->outputs[o] + n - 6, ".jsonl")) {
            char *base = sq_strndup(s->outputs[o], n - 6);
            char *d = base ? str_cat(base, ".dropped.jsonl") : NULL, *f = base ? str_cat(base, ".failed.jsonl") : NULL;
            /* its decontamination marker too: an old one must not vouch for the new output */
            char *mk = sq_decontam_report_path(s->outputs[o]);
            if (d) rm_rf(d);
            if (f) rm_rf(f);
            if (mk) rm_rf(mk);
            free(d);
            free(f);
            free(mk);
            free(base);
        }
    }
    char rel[256];
    snprintf(rel, sizeof rel, "logs/%s.stats.jsonl", s->name);
    char *st = sq_path_join(p->run_dir, rel);
    if (st) unlink(st);
    free(st);
}

static int outputs_exist(const sq_run_stage *s) {
    for (int o = 0; o < s->noutputs; o++)
        if (s->out_is_dir[o] ? !sq_dir_exists(s->outputs[o]) : !sq_file_exists(s->outputs[o])) return 0;
    return 1;
}

/* Content of argv and of every input (options values naming an existing path count too). */
static int fingerprint(const sq_run_stage *s, cJSON *cache, cJSON *inputs_out, char fp[33], int *missing, sq_err *e) {
    sq_buf b = {0};
    *missing = 0;
    for (int k = 0; k < s->ncmds; k++) {
        for (int a = 0; a < s->cmds[k].argc; a++) {
            sq_buf_puts(&b, s->cmds[k].argv[a]);
            sq_buf_append(&b, "", 1);
        }
        sq_buf_append(&b, "\n", 1);
    }
    int rc = 0;
    const char *paths[SQ_RUN_MAX_IO + SQ_RUN_MAX_ARGS];
    char *extra[8];
    int np = 0, nextra = 0;
    for (int k = 0; k < s->ninputs; k++) paths[np++] = s->inputs[k];
    for (int k = 0; k < s->ncmds; k++)
        for (int a = 2; a < s->cmds[k].argc; a++) {
            const char *v = s->cmds[k].argv[a], *flag = s->cmds[k].argv[a - 1];
            if (strncmp(flag, "--", 2) || !strcmp(flag, "--out") || !*v || v[0] == '-') continue;
            int dup = 0;
            for (int i = 0; i < np; i++) dup |= !strcmp(paths[i], v);
            for (int o = 0; o < s->noutputs; o++) dup |= !strcmp(s->outputs[o], v);
            if (!dup && (sq_file_exists(v) || sq_dir_exists(v)) && np < (int)(sizeof paths / sizeof *paths)) paths[np++] = v;
            else if (!dup && strchr(v, '=') && nextra < 8) /* NAME=PATH lists (eval's benchmarks) */
                for (const char *q = v; q && *q && nextra < 8; q = strchr(q, ',') ? strchr(q, ',') + 1 : NULL) {
                    const char *eq = strchr(q, '='), *end = strchr(q, ',');
                    if (!eq || (end && eq > end)) continue;
                    size_t len = end ? (size_t)(end - eq - 1) : strlen(eq + 1);
                    extra[nextra] = sq_strndup(eq + 1, len);
                    if (extra[nextra] && (sq_file_exists(extra[nextra]) || sq_dir_exists(extra[nextra])) &&
                        np < (int)(sizeof paths / sizeof *paths))
                        paths[np++] = extra[nextra++];
                    else free(extra[nextra]);
                }
        }
    for (int i = 0; i < np && !rc; i++) {
        char h[33];
        if (!*paths[i]) continue;
        if (!sq_file_exists(paths[i]) && !sq_dir_exists(paths[i])) {
            *missing = 1;
            continue;
        }
        rc = sq_run_hash_path(paths[i], cache, h, e);
        if (rc) break;
        sq_buf_printf(&b, "%s=%s\n", paths[i], h);
        if (inputs_out) cJSON_AddStringToObject(inputs_out, paths[i], h);
    }
    if (!rc) {
        char *argv_fp = sq_run_hash_bytes(b.data ? b.data : "", b.len);
        snprintf(fp, 33, "%s", argv_fp ? argv_fp : "");
        free(argv_fp);
    }
    for (int i = 0; i < nextra; i++) free(extra[i]);
    sq_buf_free(&b);
    return rc;
}

static const char *rec_str(const cJSON *rec, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}
static double rec_num(const cJSON *rec, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}
static void set_num(cJSON *rec, const char *k, double v) {
    cJSON *x = cJSON_GetObjectItemCaseSensitive(rec, k);
    if (x) cJSON_SetNumberValue(x, v);
    else cJSON_AddNumberToObject(rec, k, v);
}
static void set_str(cJSON *rec, const char *k, const char *v) {
    cJSON_DeleteItemFromObjectCaseSensitive(rec, k);
    cJSON_AddStringToObject(rec, k, v);
}
static void set_item(cJSON *rec, const char *k, cJSON *v) {
    cJSON_DeleteItemFromObjectCaseSensitive(rec, k);
    cJSON_AddItemToObject(rec, k, v);
}

/* Lines counted as a file grows, without rereading what was counted. */
typedef struct line_counter {
    off_t at;
    int64_t n;
} line_counter;

static int64_t count_more(line_counter *lc, const char *path) {
    if (!path) return -1;
    FILE *f = fopen(path, "rb");
    if (!f) return lc->n = 0, lc->at = 0, -1;
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && st.st_size < lc->at) lc->at = 0, lc->n = 0; /* rewritten */
    fseeko(f, lc->at, SEEK_SET);
    char buf[1 << 15];
    size_t r;
    while ((r = fread(buf, 1, sizeof buf, f)) > 0) {
        for (size_t i = 0; i < r; i++) lc->n += buf[i] == '\n';
        lc->at += (off_t)r;
    }
    fclose(f);
    return lc->n;
}

static void fmt_dur(double s, char *out, size_t n) {
    if (s < 0 || s != s) snprintf(out, n, "?");
    else if (s < 100) snprintf(out, n, "%.1fs", s);
    else if (s < 6000) snprintf(out, n, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(out, n, "%dh%02dm", (int)s / 3600, (int)s / 60 % 60);
}

static void progress_line(const sq_run_plan *p, int i, int64_t done, int64_t total, double rate, double elapsed,
                          int final, const char *note) {
    const sq_run_stage *s = &p->stages[i];
    char d[64] = "", eta[32], el[32], r[32] = "";
    if (done >= 0 && total > 0) snprintf(d, sizeof d, "%lld/%lld", (long long)done, (long long)total);
    else if (done >= 0) snprintf(d, sizeof d, "%lld", (long long)done);
    if (final && rate <= 0 && done > 0 && elapsed > 0 && s->progress_file) rate = (double)done / elapsed;
    if (rate > 0) snprintf(r, sizeof r, "%.1f/s", rate);
    fmt_dur(total > 0 && rate > 0 ? (double)(total - done) / rate : -1, eta, sizeof eta);
    fmt_dur(elapsed, el, sizeof el);
    /* On a terminal the line is redrawn in place while the stage works; in a log, only the
     * closing line is written. */
    const char *cr = isatty(2) ? "\r" : "", *clr = isatty(2) ? "\033[K" : "";
    if (final)
        fprintf(stderr, "%s[%2d/%d] %-18s %-14s %10s %9s  %s%s\n", cr, i + 1, p->nstages, s->name, d, r, el, note, clr);
    else
        fprintf(stderr, "%s[%2d/%d] %-18s %-14s %10s  ETA %-8s %s%s", cr, i + 1, p->nstages, s->name, d, r, eta, el, clr);
    fflush(stderr);
}

/* Start one command of a stage in a child process that dies with the runner; -1 if fork failed. */
static pid_t start_cmd(const sq_run_cmd *cmd, const char *exe, const char *log, const char *stats) {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0) return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(111); /* the runner died before prctl */
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
    }
    setenv("SCALEQUEST_STATS", stats, 1);
    char *argv[SQ_RUN_MAX_ARGS + 2];
    argv[0] = (char *)"scalequest";
    for (int a = 0; a <= cmd->argc; a++) argv[a + 1] = cmd->argv[a];
    execv(exe, argv);
    dprintf(2, "scalequest run: cannot start %s: %s\n", exe, strerror(errno));
    _exit(127);
}

/* Run n commands of a stage at once (one, or the stage's shards) and wait for all; adds their
 * cpu seconds. Returns the first non-zero exit status (or 128+signal), 0 when all succeeded. */
static int spawn(const sq_run_plan *p, int i, const sq_run_cmd *cmds, int n, const char *exe, const char *log,
                 const char *stats, int show, double *cpu) {
    const sq_run_stage *s = &p->stages[i];
    pid_t pids[SQ_RUN_MAX_CMDS];
    int running = 0, worst = 0;
    for (int k = 0; k < n; k++) {
        pids[k] = start_cmd(&cmds[k], exe, log, stats);
        if (pids[k] < 0) {
            worst = -1;
            break;
        }
        running++;
    }
    line_counter lc = {0};
    int64_t total = s->total, start_done = -1;
    if (total < 0 && s->total_from) total = sq_run_count_lines(s->total_from);
    double t0 = now_s(), last = 0;
    while (running > 0) {
        int status = 0;
        struct rusage ru;
        pid_t w = wait4(-1, &status, WNOHANG, &ru);
        if (w < 0 && errno != EINTR) return -1;
        int k = 0;
        while (w > 0 && k < n && pids[k] != w) k++;
        if (w > 0 && k < n) {
            pids[k] = 0;
            running--;
            *cpu += (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
                    ru.ru_stime.tv_usec * 1e-6;
            int st = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
            if (st && !worst) worst = st;
            continue;
        }
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
        double t = now_s();
        if (show && t - last >= 1.0) {
            last = t;
            int64_t done = count_more(&lc, s->progress_file);
            if (start_done < 0 && done >= 0) start_done = done;
            double rate = done > start_done && t > t0 ? (double)(done - start_done) / (t - t0) : 0;
            progress_line(p, i, done, total, rate, t - t0, 0, "");
        }
    }
    return worst;
}

/* After a sharded stage's processes: its output, dropped and failed files, each merged from
 * the shards' in the order of the stage's input. */
static int merge_shards(const sq_run_stage *s, sq_err *e) {
    static const char *const kinds[] = {".jsonl", ".dropped.jsonl", ".failed.jsonl"};
    int rc = 0;
    for (size_t kind = 0; kind < sizeof kinds / sizeof *kinds && !rc; kind++) {
        char *parts[SQ_RUN_MAX_IO];
        int any = 0, np = 0;
        for (int k = 0; k < s->noutputs; k++) {
            const char *o = s->outputs[k];
            size_t n = strlen(o);
            char *base = sq_strndup(o, n > 6 ? n - 6 : n);
            parts[np] = base ? str_cat(base, kinds[kind]) : NULL;
            free(base);
            if (!parts[np]) rc = sq_fail(e, SQ_ENOMEM, "out of memory");
            else any |= k < s->noutputs - 1 && sq_file_exists(parts[np]);
            np++;
        }
        /* parts[0..shards-1] are the shards' files, parts[shards] the merged one */
        if (!rc && (kind == 0 || any)) rc = sq_run_shard_merge(s->shard_input, parts, s->shards, parts[s->shards], e);
        /* the merged output is the file one unsharded run makes: the input's decontamination
         * marker follows it there too (each shard's process carried it to its own part) */
        if (!rc && kind == 0) rc = sq_decontam_carry(s->shard_input, parts[s->shards], e);
        for (int k = 0; k < np; k++) free(parts[k]);
    }
    return rc;
}

static void last_log_line(const char *log, char *out, size_t n) {
    out[0] = 0;
    char *text;
    size_t len;
    if (sq_file_read_all(log, &text, &len, NULL)) return;
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r')) len--;
    size_t st = len;
    while (st && text[st - 1] != '\n' && text[st - 1] != '\r') st--;
    snprintf(out, n, "%.*s", (int)(len - st), text + st);
    free(text);
}

static void add_stats(cJSON *rec, const char *stats) {
    char *text;
    size_t len;
    double pin = 0, pout = 0;
    if (sq_file_read_all(stats, &text, &len, NULL)) return;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        pin += rec_num(j, "prompt_tokens");
        pout += rec_num(j, "completion_tokens");
        cJSON_Delete(j);
    }
    free(text);
    set_num(rec, "tokens_in", pin);
    set_num(rec, "tokens_out", pout);
}

/* What a stage's closing line counts: records of its last JSONL, or steps of a trained model. */
static int64_t done_count(const sq_run_stage *s) {
    if (!s->noutputs) return -1;
    const char *out = s->outputs[s->noutputs - 1];
    if (!s->out_is_dir[s->noutputs - 1]) {
        size_t n = strlen(out);
        return n > 6 && !strcmp(out + n - 6, ".jsonl") ? sq_run_count_lines(out) : -1;
    }
    char *log = sq_path_join(out, "train_log.jsonl");
    int64_t k = log ? sq_run_count_lines(log) : -1;
    free(log);
    return k;
}

static int take_lock(const char *run_dir, int *fd_out, sq_err *e) {
    char *path = sq_path_join(run_dir, ".lock");
    /* Not close-on-exec: each stage's process holds the lock too, so a runner restarted after a
     * kill waits for the old stage to die before touching the files. */
    int fd = path ? open(path, O_RDWR | O_CREAT, 0644) : -1;
    int rc = 0;
    if (fd < 0) rc = sq_fail(e, SQ_EIO, "%s: %s", path ? path : run_dir, strerror(errno));
    for (int tries = 0; !rc; tries++) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) break;
        if (tries >= 300) {
            rc = sq_fail(e, SQ_ESTATE, "%s: another run is using this run directory", run_dir);
            close(fd);
            fd = -1;
            break;
        }
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    free(path);
    *fd_out = fd;
    return rc;
}

static int stage_index(const sq_run_plan *p, const char *name, const char *flag, sq_err *e) {
    int i = sq_run_plan_find(p, name);
    if (i < 0) return sq_fail(e, SQ_EINVAL, "%s %s: no such stage", flag, name);
    if (!p->stages[i].enabled) return sq_fail(e, SQ_EINVAL, "%s %s: the stage is disabled in the config", flag, name);
    return i;
}

typedef enum { ST_UPTODATE, ST_RESUME, ST_RUN, ST_FINALIZE } stage_state;

int sq_run_execute(const sq_run_plan *p, const sq_run_opts *o, sq_err *e) {
    int from = -1, only = -1;
    if (o->from && (from = stage_index(p, o->from, "--from", e)) < 0) return from;
    if (o->only && (only = stage_index(p, o->only, "--only", e)) < 0) return only;
    const char *exe = o->exe ? o->exe : "/proc/self/exe";
    char real_exe[4096];
    ssize_t rl = readlink(exe, real_exe, sizeof real_exe - 1);
    if (rl > 0) {
        real_exe[rl] = 0;
        exe = real_exe; /* /proc/self/exe means this binary: pin it before forking */
    }
    int lock = -1, rc = 0;
    cJSON *m = NULL;
    if (!o->dry_run) {
        char *logs = sq_path_join(p->run_dir, "logs"), *models = sq_path_join(p->run_dir, "models");
        rc = sq_mkdirs(p->run_dir, e);
        if (!rc) rc = sq_mkdirs(logs, e);
        if (!rc) rc = sq_mkdirs(models, e);
        free(logs);
        free(models);
        if (!rc) rc = take_lock(p->run_dir, &lock, e);
    }
    if (!rc) rc = sq_run_manifest_load(p->run_dir, &m, e);
    if (rc) {
        if (lock >= 0) close(lock);
        return rc;
    }
    cJSON *stages = cJSON_GetObjectItemCaseSensitive(m, "stages"), *cache = cJSON_GetObjectItemCaseSensitive(m, "hash_cache");
    if (o->config && !o->dry_run) set_item(m, "config", cJSON_Duplicate(o->config, 1));
    /* A stage switched off leaves the manifest (its files stay): switched on again, it has no
     * record and runs from scratch; the report shows only what this config runs. */
    for (int i = 0; i < p->nstages && !o->dry_run; i++)
        if (!p->stages[i].enabled) cJSON_DeleteItemFromObjectCaseSensitive(stages, p->stages[i].name);
    int show = !o->quiet && isatty(2);
    int enabled_n = 0, ran = 0, skipped = 0;
    double t_all = now_s();
    char *dirty[256]; /* dry run: outputs that would be rewritten */
    int ndirty = 0;
    for (int i = 0; i < p->nstages && !rc; i++) {
        const sq_run_stage *s = &p->stages[i];
        if (!s->enabled) continue;
        enabled_n++;
        int selected = only >= 0 ? i == only : from >= 0 ? i >= from : 1;
        int forced = (only >= 0 || from >= 0) && selected;
        if (!selected) continue;
        cJSON *inputs = cJSON_CreateObject();
        char fp[33];
        int missing;
        rc = fingerprint(s, cache, inputs, fp, &missing, e);
        if (rc) {
            cJSON_Delete(inputs);
            break;
        }
        cJSON *rec = cJSON_GetObjectItemCaseSensitive(stages, s->name);
        const char *status = rec_str(rec, "status");
        int same = !strcmp(rec_str(rec, "fingerprint"), fp);
        stage_state state = ST_RUN;
        if (!forced && same && !strcmp(status, "done") && outputs_exist(s)) state = ST_UPTODATE;
        else if (!forced && same && !strcmp(status, "running")) state = ST_RESUME;
        if (state == ST_RESUME && s->ncmds == 1 && s->noutputs == 1 && s->out_is_dir[0] && outputs_exist(s)) {
            char *t = str_cat(s->outputs[0], ".tmp");
            if (t && !sq_dir_exists(t)) state = ST_FINALIZE; /* killed between the rename and the record */
            free(t);
        }
        if (o->dry_run) {
            int after = missing;
            for (int k = 0; k < s->ninputs; k++)
                for (int d = 0; d < ndirty; d++) after |= !strcmp(s->inputs[k], dirty[d]);
            if (after && state == ST_UPTODATE) state = ST_RUN;
            static const char *names[] = {"up to date", "resume", "run", "finish"};
            printf("[%2d/%d] %-18s %s%s\n", i + 1, p->nstages, s->name, names[state],
                   after ? " (after the stages before it)" : "");
            for (int k = 0; k < s->ncmds; k++) {
                printf("        scalequest");
                for (int a = 0; a < s->cmds[k].argc; a++) {
                    const char *v = s->cmds[k].argv[a];
                    int q = !*v || strpbrk(v, " \t'\"{}|<>&;$");
                    printf(q ? " '%s'" : " %s", v);
                }
                printf("\n");
            }
            if (state != ST_UPTODATE)
                for (int k = 0; k < s->noutputs && ndirty < 256; k++) dirty[ndirty++] = s->outputs[k];
            cJSON_Delete(inputs);
            continue;
        }
        if (missing) {
            cJSON_Delete(inputs);
            rc = sq_fail(e, SQ_ENOTFOUND, "stage %s: an input is missing (run the stages before it first)", s->name);
            break;
        }
        if (state == ST_UPTODATE) {
            skipped++;
            if (!o->quiet) progress_line(p, i, done_count(s), -1, 0, 0, 1, "up to date");
            cJSON_Delete(inputs);
            continue;
        }
        char logrel[256], statrel[256];
        snprintf(logrel, sizeof logrel, "logs/%s.log", s->name);
        snprintf(statrel, sizeof statrel, "logs/%s.stats.jsonl", s->name);
        char *log = sq_path_join(p->run_dir, logrel), *stats = sq_path_join(p->run_dir, statrel);
        for (int k = 0; k < s->noutputs && !rc; k++) { /* the folders outputs land in */
            char *dir = sq_strdup(s->outputs[k]), *slash = dir ? strrchr(dir, '/') : NULL;
            if (slash && slash != dir) {
                *slash = 0;
                rc = sq_mkdirs(dir, e);
            }
            free(dir);
        }
        if (state == ST_RUN && !rc) {
            clean_stage(p, s);
            if (log) unlink(log);
            rec = cJSON_CreateObject();
            set_str(rec, "status", "running");
            set_str(rec, "fingerprint", fp);
            set_str(rec, "type", s->type);
            cJSON *argv = cJSON_AddArrayToObject(rec, "commands");
            for (int k = 0; k < s->ncmds; k++)
                cJSON_AddItemToArray(argv, cJSON_CreateStringArray((const char *const *)s->cmds[k].argv, s->cmds[k].argc));
            cJSON_AddItemToObject(rec, "options", cJSON_Duplicate(s->options, 1));
            cJSON_AddItemToObject(rec, "inputs", inputs);
            inputs = NULL;
            cJSON *outs = cJSON_AddArrayToObject(rec, "outputs");
            for (int k = 0; k < s->noutputs; k++) cJSON_AddItemToArray(outs, cJSON_CreateString(s->outputs[k]));
            set_num(rec, "wall_s", 0);
            set_num(rec, "cpu_s", 0);
            set_num(rec, "attempts", 0);
            set_item(stages, s->name, rec);
            rc = sq_run_manifest_save(p->run_dir, m, e);
        }
        cJSON_Delete(inputs);
        double t0 = now_s(), cpu = 0;
        set_num(rec, "attempts", rec_num(rec, "attempts") + 1);
        int group = s->shards > 1 ? s->shards : 1; /* shards run together, other commands in turn */
        for (int k = 0; k < s->ncmds && !rc && state != ST_FINALIZE; k += group) {
            int st = spawn(p, i, &s->cmds[k], group, exe, log, stats, show, &cpu);
            if (st != 0) {
                char last[300];
                last_log_line(log, last, sizeof last);
                if (show) fprintf(stderr, "\n");
                rc = sq_fail(e, SQ_EIO, "stage %s: `scalequest %s` %s %d; %s: %s", s->name, s->cmds[k].argv[0],
                             st > 128 ? "killed by signal" : "exited with", st > 128 ? st - 128 : st, log, last);
            }
        }
        if (!rc && s->shards > 1) rc = merge_shards(s, e);
        for (int k = 0; k < s->noutputs && !rc; k++) { /* trained folders become visible whole */
            if (!s->out_is_dir[k]) continue;
            char *t = str_cat(s->outputs[k], ".tmp");
            if (t && sq_dir_exists(t)) {
                rm_rf(s->outputs[k]);
                if (rename(t, s->outputs[k]))
                    rc = sq_fail(e, SQ_EIO, "renaming %s to %s: %s", t, s->outputs[k], strerror(errno));
            } else if (!sq_dir_exists(s->outputs[k]))
                rc = sq_fail(e, SQ_EIO, "stage %s made no %s", s->name, s->outputs[k]);
            free(t);
        }
        double wall = now_s() - t0;
        if (!rc) {
            set_str(rec, "status", "done");
            set_num(rec, "wall_s", rec_num(rec, "wall_s") + wall);
            set_num(rec, "cpu_s", rec_num(rec, "cpu_s") + cpu);
            set_num(rec, "finished", (double)time(NULL));
            cJSON *counts = cJSON_CreateObject();
            for (int k = 0; k < s->noutputs; k++)
                if (!s->out_is_dir[k] && strstr(s->outputs[k], ".jsonl"))
                    cJSON_AddNumberToObject(counts, s->outputs[k], (double)sq_run_count_lines(s->outputs[k]));
            set_item(rec, "counts", counts);
            add_stats(rec, stats);
            rc = sq_run_manifest_save(p->run_dir, m, e);
            ran++;
            int64_t n = done_count(s);
            char note[64];
            snprintf(note, sizeof note, "done (cpu %.1fs)", cpu);
            if (!o->quiet) progress_line(p, i, n, -1, 0, wall, 1, state == ST_RESUME ? "resumed, done" : note);
        }
        free(log);
        free(stats);
    }
    if (!rc && !o->dry_run && !o->quiet) {
        double wall = 0, cpu = 0;
        for (const cJSON *r = stages->child; r; r = r->next) {
            wall += rec_num(r, "wall_s");
            cpu += rec_num(r, "cpu_s");
        }
        char w1[32], w2[32];
        fmt_dur(now_s() - t_all, w1, sizeof w1);
        fmt_dur(wall, w2, sizeof w2);
        fprintf(stderr, "run: %d stages enabled, %d ran, %d up to date, this run %s; all stages %s wall, %.1f core-hours; %s/manifest.json\n",
                enabled_n, ran, skipped, w1, w2, cpu / 3600, p->run_dir);
    }
    cJSON_Delete(m);
    if (lock >= 0) close(lock);
    return rc;
}
