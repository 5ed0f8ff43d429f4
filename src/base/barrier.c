/* A barrier for one parallel region's threads that spins briefly and then sleeps.
 *
 * Why not `#pragma omp barrier`: libgomp spins there for ~300,000 pause instructions (tens of
 * milliseconds on current cores) before it sleeps, unless OMP_WAIT_POLICY or GOMP_SPINCOUNT
 * say otherwise, and those are read once at program start. On a machine whose cores are
 * shared with other processes, the thread that arrives first then burns the time slice its
 * descheduled partner needs; the batch-1 decode step meets at ~120 barriers per token, and
 * fell from ~20 to 1-5 tok/s at a load of 3 runnable processes per core. Spinning for a few
 * tens of microseconds covers the normal imbalance between threads on a quiet machine; after
 * that the waiter sleeps on a futex and the last thread to arrive wakes it. */
#include "scalequest/base.h"

#include <immintrin.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* How long a waiter spins before it sleeps. */
enum { SPIN_NS = 30000 };

static long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

void sq_barrier_init(sq_barrier *b) {
    atomic_init(&b->arrived, 0);
    atomic_init(&b->gen, 0);
    atomic_init(&b->sleepers, 0);
}

void sq_barrier_wait(sq_barrier *b, int n) {
    if (n <= 1) return;
    unsigned g = atomic_load(&b->gen);
    if (atomic_fetch_add(&b->arrived, 1) == n - 1) {
        /* The last one: reset for the next round before releasing the others, who may
         * arrive at it at once. */
        atomic_store(&b->arrived, 0);
        atomic_fetch_add(&b->gen, 1);
        if (atomic_load(&b->sleepers) > 0) syscall(SYS_futex, (unsigned *)&b->gen, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
        return;
    }
    long deadline = now_ns() + SPIN_NS;
    for (int i = 1;; i++) {
        if (atomic_load_explicit(&b->gen, memory_order_acquire) != g) return;
        _mm_pause();
        if (!(i & 31) && now_ns() > deadline) break;
    }
    /* sleepers before gen, and gen before sleepers on the waking side (both sequentially
     * consistent): either the waker sees a sleeper, or the sleeper sees the new round. */
    atomic_fetch_add(&b->sleepers, 1);
    while (atomic_load(&b->gen) == g) syscall(SYS_futex, (unsigned *)&b->gen, FUTEX_WAIT_PRIVATE, g, NULL, NULL, 0);
    atomic_fetch_sub(&b->sleepers, 1);
}

/* ---- phases: units handed out to whichever thread comes, completion counted ---------------- */

void sq_phase_init(sq_phase *p, int total) {
    atomic_init(&p->next, 0);
    atomic_init(&p->done, 0);
    atomic_init(&p->sleepers, 0);
    p->total = total;
}

int sq_phase_claim(sq_phase *p, int chunk, int *u1) {
    if (atomic_load_explicit(&p->next, memory_order_relaxed) >= p->total) return -1;
    int u0 = atomic_fetch_add(&p->next, chunk);
    if (u0 >= p->total) return -1;
    *u1 = u0 + chunk < p->total ? u0 + chunk : p->total;
    return u0;
}

int sq_phase_claim_guided(sq_phase *p, int nt, int *u1) {
    int left = p->total - atomic_load_explicit(&p->next, memory_order_relaxed), d = 2 * (nt > 0 ? nt : 1);
    if (left <= 0) return -1;
    /* Two threads may both see the same `left`: the second claim is then a little large,
     * which only moves work, never loses or repeats it (the fetch_add decides). */
    return sq_phase_claim(p, left > d ? left / d : 1, u1);
}

int sq_phase_done(sq_phase *p, int n) {
    /* release: the units' results are visible to whoever sees the count; the caller whose add
     * completes the phase has acquired every other caller's (one chain of read-modify-writes) */
    int last = atomic_fetch_add(&p->done, n) + n == p->total;
    if (last && atomic_load(&p->sleepers) > 0)
        syscall(SYS_futex, (unsigned *)&p->done, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
    return last;
}

void sq_phase_wait(sq_phase *p) {
    if (atomic_load_explicit(&p->done, memory_order_acquire) >= p->total) return;
    long deadline = now_ns() + SPIN_NS;
    for (int i = 1;; i++) {
        if (atomic_load_explicit(&p->done, memory_order_acquire) >= p->total) return;
        _mm_pause();
        if (!(i & 31) && now_ns() > deadline) break;
    }
    /* As the barrier: sleepers before done here, done before sleepers on the waking side. */
    atomic_fetch_add(&p->sleepers, 1);
    for (int v; (v = atomic_load(&p->done)) < p->total;)
        syscall(SYS_futex, (unsigned *)&p->done, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
    atomic_fetch_sub(&p->sleepers, 1);
}
