/* scalequest logits: run the engine's forward over given token ids and write every
 * position's logits, then continue greedily — the raw numbers the peer tests compare. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "scalequest/model.h"
#include "scalequest/quant.h"

static int parse_ids(const char *s, int32_t **ids, int *n) {
    int cap = 16;
    *n = 0;
    *ids = malloc(sizeof(int32_t) * (size_t)cap);
    while (*ids && *s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s) return -1;
        if (*n == cap) {
            int32_t *g = realloc(*ids, sizeof(int32_t) * (size_t)(cap *= 2));
            if (!g) return -1;
            *ids = g;
        }
        (*ids)[(*n)++] = (int32_t)v;
        s = end;
        while (*s == ',' || *s == ' ') s++;
    }
    return *ids && *n > 0 ? 0 : -1;
}

static int cmd_logits(int argc, char **argv) {
    const char *model_path = NULL, *ids_s = NULL, *out_path = NULL, *kv_type = NULL, *act_type = NULL;
    int64_t greedy = 0;
    sq_opt opts[] = {
        {"model", SQ_OPT_STR, &model_path, "PATH", "HF folder or GGUF file"},
        {"ids", SQ_OPT_STR, &ids_s, "I,J,...", "prompt token ids"},
        {"out", SQ_OPT_STR, &out_path, "FILE", "write logits of every prompt position (float32, row-major)"},
        {"greedy", SQ_OPT_INT, &greedy, "N", "then decode N tokens greedily; ids printed on stdout"},
        {"kv-type", SQ_OPT_STR, &kv_type, "auto|f32|f16|bf16",
         "KV cache elements (default auto: f16 for 16-bit or quantized weights, f32 for f32 ones)"},
        {"act-type", SQ_OPT_STR, &act_type, "q8|f32",
         "quantized weights: 8-bit activations as llama.cpp (default) or fp32 on dequantized weights"},
    };
    int npos, rc = sq_cli_parse(argc, argv, "--model PATH --ids I,J,... [--out FILE] [--greedy N]", opts,
                                SQ_ARRAY_LEN(opts), NULL, 0, &npos);
    if (rc >= 0) return rc;
    if (!model_path || !ids_s) return sq_cli_usage_error("logits", "--model and --ids are required");
    if (greedy < 0 || greedy > 100000) return sq_cli_usage_error("logits", "--greedy out of range");
    int kvt = kv_type ? sq_kv_type_parse(kv_type) : SQ_KV_AUTO; /* resolved for the model by the pool */
    if (kvt < 0)
        return sq_cli_usage_error("logits", "--kv-type must be auto, f32, f16 or bf16, not '%s'", kv_type);
    int act = act_type ? sq_act_type_parse(act_type) : SQ_ACT_Q8;
    if (act < 0) return sq_cli_usage_error("logits", "--act-type must be q8 or f32, not '%s'", act_type);
    sq_quant_act_set(act);
    int32_t *ids;
    int n;
    if (parse_ids(ids_s, &ids, &n)) {
        free(ids);
        return sq_cli_usage_error("logits", "--ids: expected comma-separated token ids");
    }
    sq_err e;
    sq_model *m = NULL;
    sq_fwd *f = NULL;
    sq_kv_pool kv = {0};
    int ctx = n + (int)greedy, bs = 16, status = SQ_EXIT_FAIL;
    float *logits = NULL;
    int32_t *pos = malloc(sizeof(int32_t) * (size_t)n), *blocks = malloc(sizeof(int32_t) * (size_t)(ctx / bs + 1));
    const int32_t **bt = malloc(sizeof(int32_t *) * (size_t)n);
    if (!pos || !blocks || !bt) {
        sq_fail(&e, SQ_ENOMEM, "out of memory");
        goto done;
    }
    if (sq_model_open(&m, model_path, &e) || sq_kv_pool_init_type(&kv, m, ctx / bs + 1, bs, kvt, &e) ||
        sq_fwd_new(&f, m, n, n, ctx, &e))
        goto done;
    if (kvt == SQ_KV_AUTO)
        sq_info("logits: KV cache %s (auto, for %s weights)", sq_kv_type_name(kv.type),
                sq_dtype_name(m->layers[0].wq.dtype));
    int V = m->cfg.vocab_size;
    if (!(logits = malloc(sizeof(float) * (size_t)n * V))) {
        sq_fail(&e, SQ_ENOMEM, "out of memory for logits");
        goto done;
    }
    for (int i = 0; i <= ctx / bs; i++) blocks[i] = i;
    for (int i = 0; i < n; i++) pos[i] = i, bt[i] = blocks;
    sq_batch b = {n, ids, pos, bt, n, pos};
    if (sq_model_forward(m, f, &kv, &b, logits, &e)) goto done;
    if (out_path && sq_file_write_atomic(out_path, logits, sizeof(float) * (size_t)n * V, &e)) goto done;
    float *last = logits + (size_t)(n - 1) * V;
    printf("[");
    for (int s = 0; s < greedy; s++) {
        int best = 0;
        for (int v = 1; v < V; v++)
            if (last[v] > last[best]) best = v;
        printf("%s%d", s ? "," : "", best);
        if (s + 1 == greedy) break;
        int32_t tok = best, p = n + s, row = 0;
        sq_batch one = {1, &tok, &p, bt, 1, &row};
        if (sq_model_forward(m, f, &kv, &one, logits, &e)) goto done;
        last = logits;
    }
    printf("]\n");
    status = SQ_EXIT_OK;
done:
    if (status) sq_cli_fail("logits", "%s", e.msg);
    free(logits);
    free(pos);
    free(blocks);
    free(bt);
    free(ids);
    sq_fwd_free(f);
    sq_kv_pool_free(&kv);
    sq_model_close(m);
    return status;
}

SQ_COMMAND(logits, "logits", "print a model's logits and greedy continuation for token ids (testing aid)", cmd_logits);
