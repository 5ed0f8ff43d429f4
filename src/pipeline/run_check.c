/* The checks before any stage runs: every enabled stage's command exists and knows its
 * options (asked through the binary's own --help, so the runner needs no copy of each
 * stage's flags), every model and data path exists or is made earlier in the run, and every
 * server accepts connections. Each failure is one line naming the config key (with its line)
 * or the file. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "scalequest/run.h"

/* `exe WORDS... --help` with stdout captured; returns the exit status, -1 if it did not run. */
static int help_text(const char *exe, const sq_run_cmd *cmd, int words, char **text) {
    int fd[2];
    *text = NULL;
    if (pipe(fd)) return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        char *argv[8] = {(char *)"scalequest"};
        int n = 1;
        for (int i = 0; i < words && n < 6; i++) argv[n++] = cmd->argv[i];
        argv[n++] = (char *)"--help";
        argv[n] = NULL;
        dup2(fd[1], 1);
        int nul = open("/dev/null", O_WRONLY);
        if (nul >= 0) dup2(nul, 2);
        close(fd[0]);
        execv(exe, argv);
        _exit(127);
    }
    close(fd[1]);
    sq_buf b = {0};
    char chunk[4096];
    ssize_t r;
    while ((r = read(fd[0], chunk, sizeof chunk)) > 0 || (r < 0 && errno == EINTR))
        if (r > 0) sq_buf_append(&b, chunk, (size_t)r);
    close(fd[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    sq_buf_append(&b, "", 1);
    *text = b.data;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Does the help text list --name (followed by a space, a comma or the end of a word)? */
static int help_has(const char *help, const char *name) {
    size_t n = strlen(name);
    for (const char *p = help; (p = strstr(p, "--")); p += 2) {
        if (!strncmp(p + 2, name, n)) {
            char c = p[2 + n];
            if (!(c == '-' || c == '_' || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return 1;
        }
    }
    return 0;
}

static int check_command(const sq_run_stage *s, const sq_run_cmd *cmd, const sq_run_config *c, const char *exe,
                         int check_opts, sq_err *e) {
    char *help = NULL, key[256], w[600];
    /* Two-word commands ("filter lang") answer --help as a pair; one-word ones ignore the second. */
    int words = (cmd->argc > 1 && cmd->argv[1][0] != '-') ? 2 : 1;
    int st = help_text(exe, cmd, words, &help);
    if (st != 0) {
        free(help);
        snprintf(key, sizeof key, "stages.%s.enabled", s->name);
        sq_run_config_where(c, key, w, sizeof w);
        return sq_fail(e, SQ_EINVAL, "%s: this scalequest has no `%s%s%s` command (set enabled: false)", w,
                       cmd->argv[0], words == 2 ? " " : "", words == 2 ? cmd->argv[1] : "");
    }
    int rc = 0;
    for (const cJSON *o = s->options ? s->options->child : NULL; check_opts && o && !rc; o = o->next) {
        if (help_has(help, o->string)) continue;
        snprintf(key, sizeof key, "stages.%s.options.%s", s->name, o->string);
        sq_run_config_where(c, key, w, sizeof w);
        rc = sq_fail(e, SQ_EINVAL, "%s: `scalequest %s%s%s` has no option --%s", w, cmd->argv[0], words == 2 ? " " : "",
                     words == 2 ? cmd->argv[1] : "", o->string);
    }
    for (int a = 1; a < cmd->argc && !rc; a++) { /* the flags the plan itself passes */
        if (strncmp(cmd->argv[a], "--", 2) || help_has(help, cmd->argv[a] + 2)) continue;
        snprintf(key, sizeof key, "stages.%s.enabled", s->name);
        sq_run_config_where(c, key, w, sizeof w);
        rc = sq_fail(e, SQ_EINVAL, "%s: `scalequest %s` has no option %s, which the stage needs", w, cmd->argv[0],
                     cmd->argv[a]);
    }
    free(help);
    return rc;
}

/* Does host:port of an http(s) URL accept a TCP connection within a few seconds? */
static int url_reachable(const char *url, char *why, size_t n) {
    const char *h = strstr(url, "://");
    int https = !strncmp(url, "https", 5);
    h = h ? h + 3 : url;
    char host[256];
    size_t hl = strcspn(h, ":/#?");
    if (hl == 0 || hl >= sizeof host) {
        snprintf(why, n, "no host in the URL");
        return 0;
    }
    memcpy(host, h, hl);
    host[hl] = 0;
    char port[16];
    if (h[hl] == ':') {
        size_t pl = strcspn(h + hl + 1, "/#?");
        if (pl == 0 || pl >= sizeof port) {
            snprintf(why, n, "bad port in the URL");
            return 0;
        }
        memcpy(port, h + hl + 1, pl);
        port[pl] = 0;
    } else snprintf(port, sizeof port, "%s", https ? "443" : "80");
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int g = getaddrinfo(host, port, &hints, &res);
    if (g) {
        snprintf(why, n, "%s", gai_strerror(g));
        return 0;
    }
    int ok = 0;
    snprintf(why, n, "no address");
    for (struct addrinfo *a = res; a && !ok; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) continue;
        int r = connect(fd, a->ai_addr, a->ai_addrlen);
        if (r == 0) ok = 1;
        else if (errno == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            if (poll(&p, 1, 5000) == 1) {
                int err = 0;
                socklen_t l = sizeof err;
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
                if (!err) ok = 1;
                else snprintf(why, n, "%s", strerror(err));
            } else snprintf(why, n, "no answer within 5 s");
        } else snprintf(why, n, "%s", strerror(errno));
        close(fd);
    }
    freeaddrinfo(res);
    return ok;
}

/* Is path made by an enabled stage before stage i? */
static int made_before(const sq_run_plan *p, int i, const char *path) {
    for (int k = 0; k < i; k++) {
        const sq_run_stage *s = &p->stages[k];
        if (!s->enabled) continue;
        for (int o = 0; o < s->noutputs; o++)
            if (!strcmp(s->outputs[o], path)) return 1;
    }
    return 0;
}

static const char *model_key_of(const sq_run_config *c, const char *url) {
    static const char *keys[] = {"models.solver", "models.optimizer", "models.judge", "models.difficulty_scorer",
                                 "models.responder", "models.reward_model", "models.student"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = sq_run_config_str(c, keys[i]);
        if (v && !strcmp(v, url)) return keys[i];
    }
    return "models.question_generators";
}

int sq_run_preflight(const sq_run_plan *p, const sq_run_config *c, const char *exe, sq_err *e) {
    char w[600], why[256];
    for (int i = 0; i < p->nstages; i++) {
        const sq_run_stage *s = &p->stages[i];
        if (!s->enabled) continue;
        for (int o = 0; o < s->noutputs; o++)
            if (!*s->outputs[o] || !strcmp(s->outputs[o], p->run_dir)) {
                snprintf(w, sizeof w, "stages.%s.enabled", s->name);
                char w2[600];
                sq_run_config_where(c, w, w2, sizeof w2);
                return sq_fail(e, SQ_EINVAL, "%s: the stage writes to an empty path (set the data.* key it makes)", w2);
            }
        for (int k = 0; k < s->ncmds; k++) {
            const sq_run_cmd *cmd = &s->cmds[k];
            int rc = check_command(s, cmd, c, exe, strcmp(cmd->argv[0], "jsonl") != 0, e);
            if (rc) return rc;
        }
        for (int k = 0; k < s->ninputs; k++) {
            const char *in = s->inputs[k];
            if (!*in) {
                sq_run_config_where(c, s->input_keys[k], w, sizeof w);
                return sq_fail(e, SQ_EINVAL, "%s: is empty, but stage %s needs it", w, s->name);
            }
            if (sq_file_exists(in) || sq_dir_exists(in) || made_before(p, i, in)) continue;
            if (s->input_keys[k]) {
                sq_run_config_where(c, s->input_keys[k], w, sizeof w);
                return sq_fail(e, SQ_ENOTFOUND, "%s: %s: no such file or folder (stage %s reads it)", w, in, s->name);
            }
            return sq_fail(e, SQ_ENOTFOUND, "stage %s reads %s, which does not exist and no enabled stage before it makes",
                           s->name, in);
        }
        for (int k = 0; k < s->ncmds; k++)
            for (int a = 1; a < s->cmds[k].argc; a++) {
                const char *v = s->cmds[k].argv[a];
                if (strncmp(v, "http://", 7) && strncmp(v, "https://", 8)) continue;
                if (url_reachable(v, why, sizeof why)) continue;
                sq_run_config_where(c, model_key_of(c, v), w, sizeof w);
                return sq_fail(e, SQ_ENET, "%s: %s refuses connections (%s)", w, v, why);
            }
    }
    return 0;
}
