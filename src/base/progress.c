/* Progress on stderr: in place on a terminal, a plain line every few seconds in a log. */
#include "scalequest/base.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int g_quiet = 0;

void sq_progress_set_quiet(int quiet) { g_quiet = quiet; }
int sq_progress_is_quiet(void) { return g_quiet; }

void sq_progress_start(sq_progress *p, const char *label, int64_t total) {
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label);
    p->total = total;
    p->t_start = p->t_last_draw = sq_now();
    p->tty = isatty(STDERR_FILENO);
}

static void format_eta(char *out, size_t n, double s) {
    if (s < 0 || s > 360000) {
        snprintf(out, n, "--:--");
        return;
    }
    int t = (int)(s + 0.5);
    if (t >= 3600) snprintf(out, n, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
    else snprintf(out, n, "%02d:%02d", t / 60, t % 60);
}

double sq_progress_rate(const sq_progress *p, double now) {
    double el = now - p->t_start;
    return el > 0 ? (double)(p->done - p->done_before) / el : 0;
}

static void draw(sq_progress *p, double now, int final) {
    double el = now - p->t_start;
    double rate = sq_progress_rate(p, now);
    char eta[32] = "";
    if (p->total > 0 && !final) {
        format_eta(eta, sizeof eta, rate > 0 ? (double)(p->total - p->done) / rate : -1);
    } else {
        format_eta(eta, sizeof eta, el);
    }
    char line[256], tok[48] = "";
    if (p->tokens > 0) snprintf(tok, sizeof tok, " %.1f tok/s", el > 0 ? (double)p->tokens / el : 0.0);
    if (p->total > 0)
        snprintf(line, sizeof line, "%s %lld/%lld (%.1f%%) %.1f/s%s %s %s", p->label, (long long)p->done,
                 (long long)p->total, 100.0 * (double)p->done / (double)p->total, rate, tok,
                 final ? "took" : "ETA", eta);
    else
        snprintf(line, sizeof line, "%s %lld %.1f/s%s %s %s", p->label, (long long)p->done, rate, tok,
                 final ? "took" : "elapsed", eta);
    if (p->tty) fprintf(stderr, "\r\033[K%s%s", line, final ? "\n" : "");
    else fprintf(stderr, "%s\n", line);
    p->t_last_draw = now;
    p->drawn = 1;
}

void sq_progress_add(sq_progress *p, int64_t n) {
    p->done += n;
    if (g_quiet) return;
    double now = sq_now();
    double every = p->tty ? 0.2 : 5.0;
    if (now - p->t_last_draw >= every) draw(p, now, 0);
}

void sq_progress_resume(sq_progress *p, int64_t n) {
    p->done += n;
    p->done_before += n;
}

void sq_progress_add_tokens(sq_progress *p, int64_t n) { p->tokens += n; }

void sq_progress_finish(sq_progress *p) {
    if (g_quiet) return;
    if (!p->drawn && sq_now() - p->t_start < 1.0) return; /* short jobs stay silent */
    draw(p, sq_now(), 1);
}
