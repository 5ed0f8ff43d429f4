/* Reference-counted KV block ids: a free list plus one count per block. */
#include <stdlib.h>
#include <string.h>

#include "scalequest/infer.h"

int sq_kv_blocks_init(sq_kv_blocks *b, int n_blocks, sq_err *e) {
    memset(b, 0, sizeof *b);
    b->refs = calloc((size_t)n_blocks, sizeof(int32_t));
    b->free_list = malloc(sizeof(int32_t) * (size_t)n_blocks);
    if (!b->refs || !b->free_list) {
        sq_kv_blocks_free(b);
        return sq_fail(e, SQ_ENOMEM, "KV blocks: out of memory for %d blocks", n_blocks);
    }
    b->n_blocks = b->n_free = n_blocks;
    /* Hand out low ids first: easier to read in a debugger, no other reason. */
    for (int i = 0; i < n_blocks; i++) b->free_list[i] = n_blocks - 1 - i;
    return 0;
}

void sq_kv_blocks_free(sq_kv_blocks *b) {
    free(b->refs);
    free(b->free_list);
    memset(b, 0, sizeof *b);
}

int32_t sq_kv_blocks_alloc(sq_kv_blocks *b) {
    if (b->n_free == 0) return -1;
    int32_t id = b->free_list[--b->n_free];
    b->refs[id] = 1;
    return id;
}

void sq_kv_blocks_ref(sq_kv_blocks *b, int32_t id) { b->refs[id]++; }

void sq_kv_blocks_unref(sq_kv_blocks *b, int32_t id) {
    if (b->refs[id] > 0 && --b->refs[id] == 0) b->free_list[b->n_free++] = id;
}
