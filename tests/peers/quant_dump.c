/* Peer-test helper: for every quantized tensor T of a GGUF file, write what our kernels make
 * of it into DIR, so Python can compare with gguf-py:
 *   T.deq    every row dequantized (float32, row-major)
 *   T.mm     y = x @ W^T for all rows of x at once (the batched panel path when x has 4+ rows)
 *   T.mm1    the same, one x row per call (the fused batch-1 GEMV)
 *   T.mmc    the batched call with the C code forced (no AVX2)
 * (those three on fp32 activations, --act-type f32), and on 8-bit activations (the default):
 *   T.q8     every x row rounded to 8 bits and back (q * d, float32)
 *   T.q8s    per 32-value block of each x row: its d and s (Q8_0/Q8_1 formats only)
 *   T.mmq    y of all rows at once; T.mmq1 one row per call; T.mmqc the C code; T.mmqa AVX2
 * x is read from DIR/T.x (float32, R rows of the row length). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/gguf.h"
#include "scalequest/kernels.h"
#include "scalequest/quant.h"

static int put(const char *dir, const char *name, const char *ext, const float *p, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.%s", dir, name, ext);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 4, n, f) != n) return -1;
    return fclose(f);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: quant_dump IN.gguf DIR\n");
        return 2;
    }
    sq_err e;
    sq_gguf g;
    sq_matmul_ctx *mm = NULL;
    if (sq_gguf_open(&g, argv[1], &e) || sq_matmul_ctx_new(&mm, &e)) {
        fprintf(stderr, "quant_dump: %s\n", e.msg);
        return 1;
    }
    int rc = 0;
    sq_quant_act_set(SQ_ACT_F32);
    for (int64_t i = 0; i < g.n_tensors && !rc; i++) {
        sq_view v;
        if (sq_gguf_tensor_view(&g.tensors[i], &v, &e)) {
            fprintf(stderr, "quant_dump: %s\n", e.msg);
            rc = 1;
            break;
        }
        if (!sq_dtype_is_quant(v.dtype) || v.ndim != 2) continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)g.tensors[i].name.len, g.tensors[i].name.ptr);
        int64_t out = v.shape[0], in = v.shape[1];
        float *deq = malloc((size_t)(out * in) * 4);
        for (int64_t r = 0; r < out; r++) sq_embed_row(deq + r * in, &v, r);
        rc |= put(argv[2], name, "deq", deq, (size_t)(out * in));
        char xp[1024];
        snprintf(xp, sizeof xp, "%s/%s.x", argv[2], name);
        FILE *f = fopen(xp, "rb");
        float *x = malloc(4096 * (size_t)in * 4);
        size_t nx = f ? fread(x, 4, 4096 * (size_t)in, f) : 0;
        if (f) fclose(f);
        int R = (int)(nx / (size_t)in);
        float *y = malloc((size_t)(R * out + 1) * 4);
        if (R > 0) {
            rc |= sq_matmul(mm, y, x, R, &v, NULL, &e);
            rc |= put(argv[2], name, "mm", y, (size_t)(R * out));
            for (int r = 0; r < R; r++) rc |= sq_matmul(mm, y + r * out, x + (size_t)r * in, 1, &v, NULL, &e);
            rc |= put(argv[2], name, "mm1", y, (size_t)(R * out));
            sq_quant_force_c(1);
            rc |= sq_matmul(mm, y, x, R, &v, NULL, &e);
            sq_quant_force_c(0);
            rc |= put(argv[2], name, "mmc", y, (size_t)(R * out));
            sq_quant_act_set(SQ_ACT_Q8);
            int kind = sq_quant_act_kind(v.dtype);
            size_t xs = sq_quant_act_bytes(kind, in);
            uint8_t *xq = malloc(xs);
            float *back = malloc((size_t)(R * in) * 4), *ds = malloc((size_t)(R * in / 32 * 2 + 1) * 4);
            for (int r = 0; r < R; r++) {
                sq_quant_act_row(xq, x + (size_t)r * in, kind, in);
                sq_quant_act_dequant(back + (size_t)r * in, xq, kind, in);
                if (kind == 1) /* the row layout of quant_internal.h: n q's, then (d, s) per block */
                    memcpy(ds + (size_t)r * (in / 32) * 2, xq + in, (size_t)(in / 32) * 8);
            }
            rc |= put(argv[2], name, "q8", back, (size_t)(R * in));
            if (kind == 1) rc |= put(argv[2], name, "q8s", ds, (size_t)(R * in / 32 * 2));
            rc |= sq_matmul(mm, y, x, R, &v, NULL, &e);
            rc |= put(argv[2], name, "mmq", y, (size_t)(R * out));
            for (int r = 0; r < R; r++) rc |= sq_matmul(mm, y + r * out, x + (size_t)r * in, 1, &v, NULL, &e);
            rc |= put(argv[2], name, "mmq1", y, (size_t)(R * out));
            sq_quant_q8_force(1);
            rc |= sq_matmul(mm, y, x, R, &v, NULL, &e);
            rc |= put(argv[2], name, "mmqc", y, (size_t)(R * out));
            sq_quant_q8_force(2);
            rc |= sq_matmul(mm, y, x, R, &v, NULL, &e);
            rc |= put(argv[2], name, "mmqa", y, (size_t)(R * out));
            sq_quant_q8_force(0);
            sq_quant_act_set(SQ_ACT_F32);
            free(xq), free(back), free(ds);
        }
        free(deq);
        free(x);
        free(y);
    }
    sq_matmul_ctx_free(mm);
    sq_gguf_close(&g);
    if (rc) fprintf(stderr, "quant_dump: failed (%s)\n", e.msg);
    return rc ? 1 : 0;
}
