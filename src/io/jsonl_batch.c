/* Parallel validation of a span of whole lines, for the reader (jsonl_read.c).
 *
 * Validation is the reader's whole cost once the kernel's copy is gone (mapped files), and
 * lines are independent, so a span of several MB is cut at newlines into a few parts per
 * thread; the threads take parts in order until none is left and judge the lines of each,
 * writing one entry per line: where the line ends and its verdict. The reader then hands
 * the lines out in file order from those entries; it never looks for a line end again.
 *
 * A span is posted to the threads and judged while the reader hands out the lines of the
 * span before it (the caller's own work on those lines, parsing say, overlaps the
 * validation of the next ones); when the reader reaches it, the calling thread takes what
 * parts are left and waits for the rest. The threads wait, blocked, when there is nothing
 * to judge and end when the reader is closed. Without them (none could be started) the
 * calling thread judges every part at posting: the same result, slower.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "jsonl_internal.h"

/* The threads of a reader: started at its first span, blocked on a condition variable
 * between spans, joined at close. Parts are handed out one at a time under the mutex (a
 * part is a fraction of a millisecond of work; the lock is held for a few instructions), and the
 * calling thread takes parts too: a thread that the machine is slow to schedule (other work
 * on its core) is never waited for unless it holds a part, and then for one part at most. */
struct sq_jsonl_pool {
    pthread_mutex_t mu;
    pthread_cond_t wake, finished;
    pthread_t tid[64];
    int nthreads, quit;
    /* the span being judged */
    sq_jsonl_part *parts;
    int nparts, next, done, first_bad, stop_at_bad;
    const char *buf;
};

static int record(sq_jsonl_part *p, uint64_t entry) {
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 1024;
        uint64_t *ent = realloc(p->ent, cap * sizeof *ent);
        if (!ent) return -1;
        p->ent = ent;
        p->cap = cap;
    }
    p->ent[p->n++] = entry;
    return 0;
}

/* Judges the lines of one part; 1 when it holds a bad line and judging stops there. */
static int judge_part(sq_jsonl_part *p, const char *buf, int stop_at_bad) {
    size_t at = p->beg, stop = p->stop;
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
            return 0;
        }
        if (verdict == SQ_JSONL_LINE_BAD && stop_at_bad) return 1;
        at = end + 1;
    }
    return 0;
}

/* Takes and judges parts of the current span until none is left. Called with mu held;
 * returns with it held. */
static void take_parts(sq_jsonl_pool *pl) {
    while (pl->next < pl->nparts) {
        int i = pl->next++;
        sq_jsonl_part *p = &pl->parts[i];
        p->n = 0;
        p->failed = 0;
        /* When stopping at the first bad line, nothing after an earlier part's bad line
         * will be handed out: such a part is left empty. */
        int skip = pl->stop_at_bad && pl->first_bad < i;
        const char *buf = pl->buf;
        int stop_at_bad = pl->stop_at_bad;
        pthread_mutex_unlock(&pl->mu);
        int bad = skip ? 0 : judge_part(p, buf, stop_at_bad);
        pthread_mutex_lock(&pl->mu);
        if (bad && i < pl->first_bad) pl->first_bad = i;
        if (++pl->done == pl->nparts) pthread_cond_signal(&pl->finished);
    }
}

static void *worker(void *arg) {
    sq_jsonl_pool *pl = arg;
    pthread_mutex_lock(&pl->mu);
    for (;;) {
        while (!pl->quit && pl->next >= pl->nparts)
            pthread_cond_wait(&pl->wake, &pl->mu);
        if (pl->quit) break;
        take_parts(pl);
    }
    pthread_mutex_unlock(&pl->mu);
    return NULL;
}

/* A pool of up to threads - 1 helpers (fewer when the system refuses more; with none, the
 * caller works alone); NULL when out of memory. The helpers block every signal, so that
 * signals meant for the process reach the threads the program knows about. */
static sq_jsonl_pool *pool_new(int threads) {
    sq_jsonl_pool *pl = calloc(1, sizeof *pl);
    if (!pl) return NULL;
    pthread_mutex_init(&pl->mu, NULL);
    pthread_cond_init(&pl->wake, NULL);
    pthread_cond_init(&pl->finished, NULL);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    while (pl->nthreads < threads - 1 && pthread_create(&pl->tid[pl->nthreads], NULL, worker, pl) == 0)
        pl->nthreads++;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return pl;
}

void sq_jsonl_pool_free(sq_jsonl_pool *pl) {
    if (!pl) return;
    pthread_mutex_lock(&pl->mu);
    pl->quit = 1;
    pthread_cond_broadcast(&pl->wake);
    pthread_mutex_unlock(&pl->mu);
    for (int i = 0; i < pl->nthreads; i++)
        pthread_join(pl->tid[i], NULL);
    pthread_cond_destroy(&pl->finished);
    pthread_cond_destroy(&pl->wake);
    pthread_mutex_destroy(&pl->mu);
    free(pl);
}

/* The first line end at or after x, as the offset just past it (or stop). */
static size_t cut(const char *buf, size_t x, size_t stop) {
    if (x >= stop) return stop;
    const char *nl = memchr(buf + x, '\n', stop - x);
    return nl ? (size_t)(nl - buf) + 1 : stop;
}

int sq_jsonl_batch_post(sq_jsonl_batch *b, sq_jsonl_pool **pool, const char *buf, size_t beg, size_t stop,
                        int threads, int nparts, int stop_at_bad) {
    if (threads < 1) threads = 1;
    if (threads > 64) threads = 64;
    if (nparts < 1) nparts = 1;
    if (b->alloc < nparts) {
        sq_jsonl_part *parts = realloc(b->parts, (size_t)nparts * sizeof *parts);
        if (!parts) return SQ_ENOMEM;
        memset(parts + b->alloc, 0, (size_t)(nparts - b->alloc) * sizeof *parts);
        b->parts = parts;
        b->alloc = nparts;
    }
    size_t span = stop - beg, from = beg;
    b->nparts = nparts;
    b->beg = beg;
    for (int i = 0; i < nparts; i++) {
        sq_jsonl_part *p = &b->parts[i];
        p->beg = from;
        p->stop = i == nparts - 1 ? stop : cut(buf, beg + span / (size_t)nparts * (size_t)(i + 1), stop);
        if (p->stop < from) p->stop = from;
        from = p->stop;
        p->n = 0;
        p->failed = 0;
    }
    if (!*pool && threads > 1) *pool = pool_new(threads);
    sq_jsonl_pool *pl = *pool;
    if (pl && pl->nthreads > 0) {
        pthread_mutex_lock(&pl->mu);
        pl->parts = b->parts;
        pl->nparts = nparts;
        pl->buf = buf;
        pl->stop_at_bad = stop_at_bad;
        pl->first_bad = nparts;
        pl->next = pl->done = 0;
        pthread_cond_broadcast(&pl->wake);
        pthread_mutex_unlock(&pl->mu);
        b->posted = 1;
    } else {
        for (int i = 0, bad = 0; i < nparts; i++)
            if (!bad) bad = judge_part(&b->parts[i], buf, stop_at_bad);
        b->posted = 0;
    }
    return 0;
}

/* Takes the parts left of the posted span (or, cancel, skips them) and waits for the
 * threads to finish theirs. */
static void finish(sq_jsonl_batch *b, sq_jsonl_pool *pl, int cancel) {
    if (!b->posted) return;
    pthread_mutex_lock(&pl->mu);
    if (cancel) {
        pl->stop_at_bad = 1;
        pl->first_bad = -1;
    }
    take_parts(pl);
    while (pl->done < pl->nparts)
        pthread_cond_wait(&pl->finished, &pl->mu);
    pthread_mutex_unlock(&pl->mu);
    b->posted = 0;
}

int sq_jsonl_batch_wait(sq_jsonl_batch *b, sq_jsonl_pool *pool) {
    finish(b, pool, 0);
    b->part = 0;
    b->k = 0;
    b->cur = b->beg;
    for (int i = 0; i < b->nparts; i++)
        if (b->parts[i].failed) return SQ_ENOMEM;
    return 0;
}

void sq_jsonl_batch_cancel(sq_jsonl_batch *b, sq_jsonl_pool *pool) { finish(b, pool, 1); }

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
    for (int i = 0; i < b->alloc; i++)
        free(b->parts[i].ent);
    free(b->parts);
    memset(b, 0, sizeof *b);
}
