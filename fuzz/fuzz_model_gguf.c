/* libFuzzer target: a model loaded from arbitrary GGUF bytes either fails with an error or
 * runs a forward step; it never reads outside the file or the buffers it sized. The loader's
 * own checks are the target (shapes against the config, dtypes, rope tables, conversions);
 * the GGUF parser below it has its own fuzzer. Seed corpus: any small .gguf model. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "scalequest/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/fuzz-model-%d.gguf", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    sq_err e;
    sq_model *m = NULL;
    if (sq_model_open(&m, path, &e) == 0) {
        const sq_model_config *c = &m->cfg;
        /* Keep the step small: skip models whose scratch alone would be large. */
        if ((int64_t)c->vocab_size * c->dim < (1 << 24) && (int64_t)c->ffn_dim * c->dim < (1 << 24) && c->n_layers <= 64) {
            sq_kv_pool kv;
            sq_fwd *fw = NULL;
            float *logits = malloc(sizeof(float) * (size_t)c->vocab_size);
            if (logits && sq_kv_pool_init(&kv, m, 1, 4, &e) == 0) {
                if (sq_fwd_new(&fw, m, 2, 1, 4, &e) == 0) {
                    int32_t toks[2] = {0, c->vocab_size - 1}, pos[2] = {0, 1}, blk[1] = {0}, row = 1;
                    const int32_t *bt[2] = {blk, blk};
                    sq_batch b = {2, toks, pos, bt, 1, &row};
                    sq_model_forward(m, fw, &kv, &b, logits, &e);
                    sq_fwd_free(fw);
                }
                sq_kv_pool_free(&kv);
            }
            free(logits);
        }
        sq_model_close(m);
    }
    unlink(path);
    return 0;
}
