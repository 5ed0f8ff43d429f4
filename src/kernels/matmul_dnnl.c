/* oneDNN matmul: BF16 activations x BF16 weights -> F32, the weights read in place from
 * their [out, in] layout (a strided "ba" view), one primitive per (rows, in, out) kept in a
 * small cache so steady-state decoding creates none. */
#include <oneapi/dnnl/dnnl.h>
#include <stdlib.h>
#include <string.h>

#include "matmul_dnnl.h"

#define CACHE_SLOTS 128

typedef struct entry {
    int rows, in, out;
    uint64_t last_use;
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, dst;
} entry;

struct sq_dnnl_cache {
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    entry slots[CACHE_SLOTS];
    int n;
    uint64_t clock;
};

static void entry_free(entry *s) {
    if (s->prim) dnnl_primitive_destroy(s->prim);
    if (s->src) dnnl_memory_destroy(s->src);
    if (s->wei) dnnl_memory_destroy(s->wei);
    if (s->dst) dnnl_memory_destroy(s->dst);
    memset(s, 0, sizeof *s);
}

int sq_dnnl_cache_new(sq_dnnl_cache **out, sq_err *e) {
    sq_dnnl_cache *c = calloc(1, sizeof *c);
    if (!c) return sq_fail(e, SQ_ENOMEM, "oneDNN: out of memory");
    if (dnnl_engine_create(&c->eng, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&c->stream, c->eng, dnnl_stream_default_flags) != dnnl_success) {
        if (c->eng) dnnl_engine_destroy(c->eng);
        free(c);
        return sq_fail(e, SQ_EUNSUP, "oneDNN: cannot create a CPU engine");
    }
    *out = c;
    return 0;
}

void sq_dnnl_cache_free(sq_dnnl_cache *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++) entry_free(&c->slots[i]);
    dnnl_stream_destroy(c->stream);
    dnnl_engine_destroy(c->eng);
    free(c);
}

static int build(sq_dnnl_cache *c, entry *s, int rows, int in, int out, sq_err *e) {
    dnnl_memory_desc_t src_md, wei_md, dst_md;
    dnnl_dims_t sd = {rows, in}, wd = {in, out}, ws = {1, in}, dd = {rows, out};
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd = NULL;
    memset(s, 0, sizeof *s);
    if (dnnl_memory_desc_init_by_tag(&src_md, 2, sd, dnnl_bf16, dnnl_ab) != dnnl_success ||
        dnnl_memory_desc_init_by_strides(&wei_md, 2, wd, dnnl_bf16, ws) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&dst_md, 2, dd, dnnl_f32, dnnl_ab) != dnnl_success ||
        dnnl_matmul_desc_init(&md, &src_md, &wei_md, NULL, &dst_md) != dnnl_success ||
        dnnl_primitive_desc_create(&pd, &md, NULL, c->eng, NULL) != dnnl_success ||
        dnnl_primitive_create(&s->prim, pd) != dnnl_success ||
        dnnl_memory_create(&s->src, &src_md, c->eng, DNNL_MEMORY_NONE) != dnnl_success ||
        dnnl_memory_create(&s->wei, &wei_md, c->eng, DNNL_MEMORY_NONE) != dnnl_success ||
        dnnl_memory_create(&s->dst, &dst_md, c->eng, DNNL_MEMORY_NONE) != dnnl_success) {
        if (pd) dnnl_primitive_desc_destroy(pd);
        entry_free(s);
        return sq_fail(e, SQ_EUNSUP, "oneDNN: cannot build a bf16 matmul of %dx%d by %dx%d", rows, in, in, out);
    }
    dnnl_primitive_desc_destroy(pd);
    s->rows = rows;
    s->in = in;
    s->out = out;
    return 0;
}

int sq_dnnl_matmul_bf16(sq_dnnl_cache *c, float *y, const uint16_t *xb, int rows, const uint16_t *w, int in,
                        int out, sq_err *e) {
    entry *s = NULL;
    for (int i = 0; i < c->n; i++)
        if (c->slots[i].rows == rows && c->slots[i].in == in && c->slots[i].out == out) s = &c->slots[i];
    if (!s) {
        if (c->n < CACHE_SLOTS) {
            s = &c->slots[c->n++];
        } else { /* evict the least recently used shape */
            s = &c->slots[0];
            for (int i = 1; i < c->n; i++)
                if (c->slots[i].last_use < s->last_use) s = &c->slots[i];
            entry_free(s);
        }
        int rc = build(c, s, rows, in, out, e);
        if (rc) {
            if (s == &c->slots[c->n - 1]) c->n--;
            return rc;
        }
    }
    s->last_use = ++c->clock;
    dnnl_memory_set_data_handle(s->src, (void *)xb);
    dnnl_memory_set_data_handle(s->wei, (void *)w);
    dnnl_memory_set_data_handle(s->dst, y);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, s->src}, {DNNL_ARG_WEIGHTS, s->wei}, {DNNL_ARG_DST, s->dst}};
    if (dnnl_primitive_execute(s->prim, c->stream, 3, args) != dnnl_success || dnnl_stream_wait(c->stream) != dnnl_success)
        return sq_fail(e, SQ_EIO, "oneDNN: matmul %dx%d by %dx%d failed", rows, in, in, out);
    return 0;
}
