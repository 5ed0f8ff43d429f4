/* libFuzzer target: sq_gguf_parse on arbitrary bytes, then every accessor on what parsed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/gguf.h"
#include "scalequest/model_config.h"
#include "scalequest/quant.h"

/* Quantized tensors: every block the view claims must lie in the tensor's bytes; read each
 * row (dequantize, fused dot, scale check) so a block size or offset error is caught. */
static void touch_quant(const sq_gguf_tensor *t, const sq_view *v) {
    if (!sq_dtype_is_quant(v->dtype) || v->ndim < 1) return;
    if (sq_view_bytes(v) != t->nbytes) __builtin_trap();
    int64_t row = v->shape[v->ndim - 1], rows = sq_view_numel(v) / (row ? row : 1);
    if (row <= 0 || row > 4096) return;
    size_t bb;
    int per = sq_dtype_block(v->dtype, &bb);
    float *out = calloc((size_t)row, sizeof *out), *x = calloc((size_t)row, sizeof *x);
    for (int64_t r = 0; out && x && r < rows && r < 16; r++) {
        const uint8_t *p = t->data + (size_t)r * (size_t)(row / per) * bb;
        sq_dequant_row(out, p, v->dtype, row);
        (void)sq_quant_dot(p, v->dtype, x, row);
    }
    (void)sq_quant_find_bad_block(t->data, v->dtype, sq_view_numel(v));
    free(out);
    free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* A private copy of exactly size bytes, so a read past the end is caught. */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    sq_gguf g;
    sq_err e;
    if (sq_gguf_parse(&g, buf, size, "fuzz.gguf", &e) == 0) {
        sq_buf out = {0};
        for (int64_t i = 0; i < g.n_kv; i++) {
            const sq_gguf_kv *kv = &g.kv[i];
            sq_gguf_kv_to_json(kv, &out);
            for (uint64_t k = 0; k < kv->n && k < 64; k++) {
                sq_gguf_str s = sq_gguf_arr_str(kv, k);
                if (s.len) out.len += (size_t)(s.ptr[0] & 0); /* touch the first byte */
                (void)sq_gguf_arr_int(kv, k);
                (void)sq_gguf_arr_num(kv, k);
            }
        }
        for (int64_t i = 0; i < g.n_tensors; i++) {
            sq_view v;
            const sq_gguf_tensor *t = &g.tensors[i];
            if (t->nbytes) out.len += (size_t)(t->data[t->nbytes - 1] & 0);
            if (sq_gguf_tensor_view(t, &v, &e) == 0) touch_quant(t, &v);
        }
        sq_model_config c;
        (void)sq_model_config_from_gguf(&c, &g, &e);
        sq_buf_free(&out);
        sq_gguf_close(&g);
    }
    free(buf);
    return 0;
}
