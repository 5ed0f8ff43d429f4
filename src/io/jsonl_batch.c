/* Parallel validation of a span of whole lines, for the reader (jsonl_read.c).
 *
 * Validation is the reader's whole cost once the kernel's copy is gone (mapped files), and
 * lines are independent, so a span of several MB is cut at newlines into one part per
 * thread and each thread judges the lines of its part, writing one entry per line: where
 * the line ends and its verdict. The reader then hands the lines out in file order from
 * those entries; it never looks for a line end again. Threads are started per span and
 * joined before the span is walked: a span takes milliseconds, a thread start microseconds,
 * and nothing is left running between calls.
 *
 * A thread that cannot start (or a single part) is run by the calling thread: the result is
 * the same, only slower.
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jsonl_internal.h"

int sq_jsonl_cpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

typedef struct {
    sq_jsonl_part *part;
    const char *buf;
    int stop_at_bad;
} job;

static int record(sq_jsonl_part *p, uint64_t entry) {
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 4096;
        uint64_t *ent = realloc(p->ent, cap * sizeof *ent);
        if (!ent) return -1;
        p->ent = ent;
        p->cap = cap;
    }
    p->ent[p->n++] = entry;
    return 0;
}

static void *judge_part(void *arg) {
    job *j = arg;
    sq_jsonl_part *p = j->part;
    const char *buf = j->buf;
    size_t at = p->beg, stop = p->beg < p->stop ? p->stop : p->beg;
    p->n = 0;
    p->failed = 0;
    while (at < stop) {
        const char *nl = memchr(buf + at, '\n', stop - at);
        size_t end = nl ? (size_t)(nl - buf) : stop;
        const char *s = buf + at;
        size_t n = end - at;
        int verdict = SQ_JSONL_LINE_BLANK;
        if (sq_jsonl_trim(&s, &n, at == 0)) {
            size_t off;
            const char *why;
            verdict = sq_jsonl_check(s, n, &off, &why) ? SQ_JSONL_LINE_BAD : SQ_JSONL_LINE_OK;
        }
        size_t cr = end > at && buf[end - 1] == '\r';
        if (record(p, (uint64_t)end << 3 | (uint64_t)cr << 2 | (uint64_t)verdict)) {
            p->failed = 1;
            break;
        }
        if (verdict == SQ_JSONL_LINE_BAD && j->stop_at_bad) break;
        at = end + 1;
    }
    return NULL;
}

/* The first line end at or after x, as the offset just past it (or stop). */
static size_t cut(const char *buf, size_t x, size_t stop) {
    if (x >= stop) return stop;
    const char *nl = memchr(buf + x, '\n', stop - x);
    return nl ? (size_t)(nl - buf) + 1 : stop;
}

int sq_jsonl_batch_run(sq_jsonl_batch *b, const char *buf, size_t beg, size_t stop, int threads, int stop_at_bad) {
    if (threads < 1) threads = 1;
    if (threads > 64) threads = 64;
    if (b->alloc < threads) {
        sq_jsonl_part *parts = realloc(b->parts, (size_t)threads * sizeof *parts);
        if (!parts) return SQ_ENOMEM;
        memset(parts + b->alloc, 0, (size_t)(threads - b->alloc) * sizeof *parts);
        b->parts = parts;
        b->alloc = threads;
    }
    size_t span = stop - beg, from = beg;
    b->nparts = threads;
    for (int i = 0; i < threads; i++) {
        sq_jsonl_part *p = &b->parts[i];
        p->beg = from;
        p->stop = i == threads - 1 ? stop : cut(buf, beg + span / (size_t)threads * (size_t)(i + 1), stop);
        if (p->stop < from) p->stop = from;
        from = p->stop;
    }
    job jobs[64];
    pthread_t tid[64];
    int started[64] = {0};
    for (int i = 0; i < threads; i++) jobs[i] = (job){&b->parts[i], buf, stop_at_bad};
    for (int i = 1; i < threads; i++)
        if (b->parts[i].stop > b->parts[i].beg) started[i] = pthread_create(&tid[i], NULL, judge_part, &jobs[i]) == 0;
    judge_part(&jobs[0]);
    for (int i = 1; i < threads; i++) {
        if (started[i]) pthread_join(tid[i], NULL);
        else judge_part(&jobs[i]);
    }
    b->part = 0;
    b->k = 0;
    b->cur = beg;
    for (int i = 0; i < threads; i++)
        if (b->parts[i].failed) return SQ_ENOMEM;
    return 0;
}

int sq_jsonl_batch_next(sq_jsonl_batch *b, size_t *start, size_t *end, int *cr, int *verdict) {
    while (b->part < b->nparts) {
        sq_jsonl_part *p = &b->parts[b->part];
        if (b->k < p->n) {
            if (b->k == 0) b->cur = p->beg;
            uint64_t e = p->ent[b->k++];
            *start = b->cur;
            *end = (size_t)(e >> 3);
            *cr = (int)(e >> 2 & 1);
            *verdict = (int)(e & 3);
            b->cur = *end + 1;
            return 1;
        }
        b->part++;
        b->k = 0;
    }
    return 0;
}

void sq_jsonl_batch_free(sq_jsonl_batch *b) {
    for (int i = 0; i < b->alloc; i++) free(b->parts[i].ent);
    free(b->parts);
    memset(b, 0, sizeof *b);
}
