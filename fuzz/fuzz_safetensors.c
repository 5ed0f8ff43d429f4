/* libFuzzer target: sq_st_parse on arbitrary bytes; every view must lie inside the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    sq_safetensors s;
    sq_err e;
    if (sq_st_parse(&s, buf, size, "fuzz.safetensors", &e) == 0) {
        for (int i = 0; i < s.n_tensors; i++) {
            const sq_view *v = &s.tensors[i].view;
            size_t nb = sq_view_bytes(v);
            const uint8_t *p = v->data;
            if (nb && (p < buf || p + nb > buf + size)) abort();
            if (sq_st_find(&s, s.tensors[i].name) != v) abort();
        }
        sq_st_close(&s);
    }
    free(buf);
    return 0;
}
