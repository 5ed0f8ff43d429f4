/* Growable byte buffer and bump arena. */
#include "scalequest/base.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

int sq_buf_reserve(sq_buf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1) cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) return SQ_ENOMEM;
    b->data = d;
    b->cap = cap;
    return 0;
}

int sq_buf_append(sq_buf *b, const void *data, size_t n) {
    if (sq_buf_reserve(b, n)) return SQ_ENOMEM;
    if (n) memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

int sq_buf_puts(sq_buf *b, const char *s) { return sq_buf_append(b, s, strlen(s)); }

int sq_buf_printf(sq_buf *b, const char *fmt, ...) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || sq_buf_reserve(b, (size_t)n)) {
        va_end(ap2);
        return SQ_ENOMEM;
    }
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    b->len += (size_t)n;
    return 0;
}

void sq_buf_reset(sq_buf *b) {
    b->len = 0;
    if (b->data) b->data[0] = 0;
}

void sq_buf_free(sq_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

struct sq_arena_block {
    sq_arena_block *next;
    size_t used, cap;
    _Alignas(64) unsigned char mem[];
};

void sq_arena_init(sq_arena *a, size_t block_size) {
    a->head = NULL;
    a->block_size = block_size ? block_size : (1u << 20);
}

void *sq_arena_alloc(sq_arena *a, size_t n) {
    n = (n + 63) & ~(size_t)63;
    if (!a->head || a->head->used + n > a->head->cap) {
        size_t cap = n > a->block_size ? n : a->block_size;
        sq_arena_block *b = sq_malloc_aligned(sizeof *b + cap);
        if (!b) return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = a->head;
        a->head = b;
    }
    void *p = a->head->mem + a->head->used;
    a->head->used += n;
    memset(p, 0, n);
    return p;
}

void sq_arena_reset(sq_arena *a) {
    if (!a->head) return;
    /* Keep the oldest block (usually the big steady-state one). */
    sq_arena_block *b = a->head, *last = NULL;
    while (b) {
        sq_arena_block *next = b->next;
        if (!next) last = b;
        else free(b);
        b = next;
    }
    a->head = last;
    a->head->used = 0;
}

void sq_arena_free(sq_arena *a) {
    sq_arena_block *b = a->head;
    while (b) {
        sq_arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}

void *sq_malloc_aligned(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 64)) return NULL;
    return p;
}

char *sq_strdup(const char *s) { return s ? sq_strndup(s, strlen(s)) : NULL; }

char *sq_strndup(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

double sq_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
