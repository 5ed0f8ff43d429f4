/* libFuzzer target: sq_gguf_parse on arbitrary bytes, then every accessor on what parsed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/gguf.h"
#include "scalequest/model_config.h"

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
            (void)sq_gguf_tensor_view(t, &v, &e);
        }
        sq_model_config c;
        (void)sq_model_config_from_gguf(&c, &g, &e);
        sq_buf_free(&out);
        sq_gguf_close(&g);
    }
    free(buf);
    return 0;
}
