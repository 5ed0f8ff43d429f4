/* Peer-test helper: read every tensor of IN (safetensors file/folder or GGUF) and write
 * them with sq_st_write to OUT, so Python can check what our writer produces. GGUF tensors
 * keep their names and take HF (reversed) shapes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/gguf.h"
#include "scalequest/safetensors.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: io_rewrite IN OUT.safetensors\n");
        return 2;
    }
    sq_err e;
    int rc;
    size_t l = strlen(argv[1]);
    if (l >= 5 && !strcmp(argv[1] + l - 5, ".gguf")) {
        sq_gguf g;
        if ((rc = sq_gguf_open(&g, argv[1], &e))) goto fail;
        sq_st_entry *en = calloc((size_t)g.n_tensors + 1, sizeof *en);
        char **names = calloc((size_t)g.n_tensors + 1, sizeof *names);
        int n = 0;
        for (int64_t i = 0; i < g.n_tensors && !rc; i++) {
            rc = sq_gguf_tensor_view(&g.tensors[i], &en[n].view, &e);
            names[n] = sq_strndup(g.tensors[i].name.ptr, (size_t)g.tensors[i].name.len);
            en[n].name = names[n];
            n++;
        }
        if (!rc) rc = sq_st_write(argv[2], en, n, &e);
        for (int i = 0; i < n; i++)
            free(names[i]);
        free(names);
        free(en);
        sq_gguf_close(&g);
    } else {
        sq_safetensors s;
        if ((rc = sq_st_open(&s, argv[1], &e))) goto fail;
        sq_st_entry *en = calloc((size_t)s.n_tensors + 1, sizeof *en);
        for (int i = 0; i < s.n_tensors; i++) {
            en[i].name = s.tensors[i].name;
            en[i].view = s.tensors[i].view;
        }
        rc = sq_st_write(argv[2], en, s.n_tensors, &e);
        free(en);
        sq_st_close(&s);
    }
    if (!rc) return 0;
fail:
    fprintf(stderr, "io_rewrite: %s\n", e.msg);
    return 1;
}
