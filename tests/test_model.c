/* model: loading HF and GGUF forms, and the forward pass against stories260K's reference. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/model.h"
#include "scalequest/quant.h"
#include "scalequest/safetensors.h"
#include "test.h"

/* Expected ids and first logits, parsed from the asset (not restated here). */
typedef struct expected {
    int ids[64], n_ids;
    float logits[5];
} expected;

static int read_expected(expected *x) {
    const char *p = sq_test_asset("models/stories260K-expected.txt");
    if (!p) return 0;
    FILE *f = fopen(p, "r");
    if (!f) return 0;
    char line[4096];
    x->n_ids = 0;
    while (fgets(line, sizeof line, f)) {
        char *lg = strstr(line, "logits[0][:5] = [");
        if (lg) {
            sscanf(lg + 17, "%f, %f, %f, %f, %f", &x->logits[0], &x->logits[1], &x->logits[2], &x->logits[3],
                   &x->logits[4]);
        } else if (line[0] != '#' && x->n_ids == 0) {
            char *s = line, *end;
            for (long v = strtol(s, &end, 10); end != s && x->n_ids < 64; v = strtol(s, &end, 10)) {
                x->ids[x->n_ids++] = (int)v;
                s = end;
            }
        }
    }
    fclose(f);
    return x->n_ids > 0;
}

/* Greedy decoding one token per step from ids[0]; checks ids and first logits. */
static void greedy_matches_path(const char *path, const char *rel) {
    expected x;
    if (!path || !read_expected(&x)) SKIP("../shared/assets/models not present");
    sq_err e;
    sq_model *m;
    REQUIRE(sq_model_open(&m, path, &e) == 0 || (fprintf(stderr, "%s\n", e.msg), 0));
    CHECK_EQ_INT(m->cfg.vocab_size, 512);
    CHECK_EQ_INT(m->cfg.n_kv_heads, 4);
    sq_kv_pool kv;
    REQUIRE(sq_kv_pool_init(&kv, m, 8, 8, &e) == 0);
    sq_fwd *f;
    REQUIRE(sq_fwd_new(&f, m, 4, 1, 64, &e) == 0);
    int32_t blocks[8] = {7, 3, 5, 0, 1, 2, 4, 6}; /* deliberately scattered */
    const int32_t *bt[1] = {blocks};
    float *logits = malloc(512 * sizeof(float));
    int32_t tok = x.ids[0], out_row = 0;
    for (int step = 0; step + 1 < x.n_ids; step++) {
        int32_t pos = step;
        sq_batch b = {1, &tok, &pos, bt, 1, &out_row};
        REQUIRE(sq_model_forward(m, f, &kv, &b, logits, &e) == 0);
        if (step == 0)
            for (int i = 0; i < 5; i++) CHECK_NEAR(logits[i], x.logits[i], 1e-4);
        int best = 0;
        for (int i = 1; i < 512; i++)
            if (logits[i] > logits[best]) best = i;
        CHECKF(best == x.ids[step + 1], "%s step %d: got %d, expected %d", rel, step, best, x.ids[step + 1]);
        if (best != x.ids[step + 1]) break;
        tok = best;
    }
    free(logits);
    sq_fwd_free(f);
    sq_kv_pool_free(&kv);
    sq_model_close(m);
}

static void greedy_matches(const char *rel) { greedy_matches_path(sq_test_asset(rel), rel); }

SQ_TEST(stories260k_gguf_greedy_matches_reference) { greedy_matches("models/stories260K.gguf"); }
SQ_TEST(stories260k_hf_greedy_matches_reference) { greedy_matches("models/stories260K-hf"); }

/* A whole prompt in one step (prefill) gives the same last logits as one token at a time. */
SQ_TEST(prefill_equals_token_by_token) {
    const char *path = sq_test_asset("models/stories260K.gguf");
    if (!path) SKIP("../shared/assets/models not present");
    sq_err e;
    sq_model *m;
    REQUIRE(sq_model_open(&m, path, &e) == 0);
    sq_kv_pool kv;
    REQUIRE(sq_kv_pool_init(&kv, m, 8, 4, &e) == 0);
    sq_fwd *f;
    REQUIRE(sq_fwd_new(&f, m, 16, 16, 32, &e) == 0);
    int32_t toks[10] = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376}, pos[10], ba[4] = {0, 1, 2}, bb[4] = {3, 4, 5};
    const int32_t *bt[10];
    int32_t rows[10];
    for (int i = 0; i < 10; i++) pos[i] = i, bt[i] = ba, rows[i] = i;
    float *all = malloc(10 * 512 * 4), *one = malloc(512 * 4);
    sq_batch b = {10, toks, pos, bt, 10, rows};
    REQUIRE(sq_model_forward(m, f, &kv, &b, all, &e) == 0);
    const int32_t *btb[1] = {bb};
    for (int i = 0; i < 10; i++) {
        int32_t r0 = 0;
        sq_batch s = {1, &toks[i], &pos[i], btb, 1, &r0};
        REQUIRE(sq_model_forward(m, f, &kv, &s, one, &e) == 0);
        for (int v = 0; v < 512; v += 37) CHECK_NEAR(one[v], all[i * 512 + v], 1e-4);
    }
    free(all);
    free(one);
    sq_fwd_free(f);
    sq_kv_pool_free(&kv);
    sq_model_close(m);
}

/* Steps of 1-3 tokens (the GEMV) give logits bit-identical to a whole-prompt step (the
 * GEMM), on 2 and 3 threads, whether the prompt comes as steps of three tokens or one. */
SQ_TEST(small_steps_equal_whole_prompt_exactly) {
    const char *path = sq_test_asset("models/stories260K.gguf");
    if (!path) SKIP("../shared/assets/models not present");
    int saved = omp_get_max_threads();
    sq_err e;
    sq_model *m;
    REQUIRE(sq_model_open(&m, path, &e) == 0);
    int32_t toks[10] = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376}, pos[10], ba[4] = {0, 1, 2}, bb[4] = {3, 4, 5};
    const int32_t *bt[10], *btb[10];
    int32_t rows[10];
    for (int i = 0; i < 10; i++) pos[i] = i, bt[i] = ba, btb[i] = bb, rows[i] = i;
    float *all = malloc(10 * 512 * 4), *part = malloc(10 * 512 * 4);
    for (int nt = 2; nt <= 3; nt++) {
        omp_set_num_threads(nt);
        sq_kv_pool kv;
        REQUIRE(sq_kv_pool_init(&kv, m, 8, 4, &e) == 0);
        sq_fwd *f;
        REQUIRE(sq_fwd_new(&f, m, 16, 16, 32, &e) == 0);
        sq_batch b = {10, toks, pos, bt, 10, rows};
        REQUIRE(sq_model_forward(m, f, &kv, &b, all, &e) == 0);
        for (int step = 1; step <= 3; step += 2) {
            for (int i = 0; i < 10; i += step) {
                int n = SQ_MIN(step, 10 - i);
                sq_batch s = {n, &toks[i], &pos[i], &btb[i], n, rows};
                REQUIRE(sq_model_forward(m, f, &kv, &s, part + (size_t)i * 512, &e) == 0);
            }
            CHECKF(memcmp(all, part, 10 * 512 * 4) == 0, "%d threads, steps of %d: logits differ", nt, step);
        }
        sq_fwd_free(f);
        sq_kv_pool_free(&kv);
    }
    omp_set_num_threads(saved);
    free(all);
    free(part);
    sq_model_close(m);
}

/* A copy of F32 view v as BF16 (kind 1), Q8_0 (kind 2: blocks of an f16 scale and 32
 * int8), F16 (kind 3) or Q4_1 (kind 4: f16 scale and minimum, 32 nibbles, value j in the low
 * nibble of byte j and value j + 16 in its high one); the caller frees .data. */
static sq_view requantize(const sq_view *v, int kind) {
    size_t out = (size_t)v->shape[0], in = (size_t)v->shape[1], n = out * in;
    const float *x = v->data;
    sq_view r = *v;
    if (kind == 1 || kind == 3) {
        uint16_t *b = malloc(2 * n);
        for (size_t i = 0; b && i < n; i++) b[i] = kind == 1 ? sq_f32_to_bf16(x[i]) : sq_f32_to_f16(x[i]);
        r.data = b;
        r.dtype = kind == 1 ? SQ_BF16 : SQ_F16;
        return r;
    }
    if (kind == 4) {
        uint8_t *q = malloc(n / 32 * 20), *d = q;
        for (size_t i = 0; q && i < n; i += 32, d += 20) {
            float lo = x[i], hi = x[i];
            for (int k = 1; k < 32; k++) lo = fminf(lo, x[i + k]), hi = fmaxf(hi, x[i + k]);
            float sc = (hi - lo) / 15;
            uint16_t hd = sq_f32_to_f16(sc), hm = sq_f32_to_f16(lo);
            memcpy(d, &hd, 2);
            memcpy(d + 2, &hm, 2);
            for (int k = 0; k < 16; k++) {
                long a = sc > 0 ? lrintf((x[i + k] - lo) / sc) : 0, b = sc > 0 ? lrintf((x[i + k + 16] - lo) / sc) : 0;
                d[4 + k] = (uint8_t)(SQ_MIN(15, SQ_MAX(0, a)) | SQ_MIN(15, SQ_MAX(0, b)) << 4);
            }
        }
        r.data = q;
        r.dtype = SQ_Q4_1;
        return r;
    }
    uint8_t *q = malloc(n / 32 * 34), *d = q;
    for (size_t i = 0; q && i < n; i += 32, d += 34) {
        float amax = 0;
        for (int k = 0; k < 32; k++) amax = fmaxf(amax, fabsf(x[i + k]));
        float sc = amax / 127;
        uint16_t h = sq_f32_to_f16(sc);
        memcpy(d, &h, 2);
        for (int k = 0; k < 32; k++) d[2 + k] = (uint8_t)(int8_t)lrintf(sc > 0 ? x[i + k] / sc : 0);
    }
    r.data = q;
    r.dtype = SQ_Q8_0;
    return r;
}

/* Steps of 4+ tokens run as one parallel region too: every matmul split by output columns
 * between the threads (the GEMM's panels, the F32 kernel, the quantized panels), norms and
 * RoPE by rows, attention by work units handed out as threads come free. With F32, BF16, F16,
 * Q8_0 and Q4_1 weights (the quantized ones on rows rounded once per step), a 70-token prefill (more than the GEMM's 64-row block) gives the same bits on
 * 1, 2 and 3 threads and the same bits as the prompt fed in steps of 5 and of 1 token (the
 * GEMV path). F16 weights too (widened in the same kernels as BF16). */
SQ_TEST(many_token_steps_are_exact_at_any_thread_count) {
    const char *path = sq_test_asset("models/stories260K.gguf");
    if (!path) SKIP("../shared/assets/models not present");
    enum { T = 70, V = 512 };
    int saved = omp_get_max_threads();
    sq_err e;
    sq_model *m;
    REQUIRE(sq_model_open(&m, path, &e) == 0);
    REQUIRE(m->layers[0].wq.dtype == SQ_F32 && m->cfg.vocab_size == V);
    int32_t toks[T], pos[T], rows[T], ba[32], bb[32];
    const int32_t *bt[T], *btb[T];
    for (int i = 0; i < 32; i++) ba[i] = i, bb[i] = 32 + i;
    for (int i = 0; i < T; i++) toks[i] = i ? 3 + (i * 37) % 500 : 1, pos[i] = i, bt[i] = ba, btb[i] = bb, rows[i] = i;
    float *ref = malloc((size_t)T * V * 4), *got = malloc((size_t)T * V * 4);
    sq_layer *orig = malloc(sizeof(sq_layer) * (size_t)m->cfg.n_layers);
    memcpy(orig, m->layers, sizeof(sq_layer) * (size_t)m->cfg.n_layers);
    sq_view head = m->lm_head;
    for (int kind = 0; kind <= 4; kind++) {
        for (int l = 0; kind && l < m->cfg.n_layers; l++) {
            sq_layer *L = &m->layers[l];
            sq_view *w[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
            for (size_t k = 0; k < SQ_ARRAY_LEN(w); k++)
                if ((kind != 2 && kind != 4) || w[k]->shape[1] % 32 == 0) *w[k] = requantize(w[k], kind);
        }
        if (kind) m->lm_head = requantize(&head, kind);
        /* Q8_0 on both activation modes: 8-bit rows (quant.h's default) and F32 rows. */
        for (int act = 0; act < (kind == 2 ? 2 : 1); act++)
        for (int nt = 1; nt <= 3; nt++) {
            sq_quant_act_set(act ? SQ_ACT_F32 : SQ_ACT_Q8);
            omp_set_num_threads(nt);
            sq_kv_pool kv;
            REQUIRE(sq_kv_pool_init(&kv, m, 64, 4, &e) == 0);
            sq_fwd *f;
            REQUIRE(sq_fwd_new(&f, m, T, T, 128, &e) == 0);
            sq_batch b = {T, toks, pos, bt, T, rows};
            REQUIRE(sq_model_forward(m, f, &kv, &b, nt == 1 ? ref : got, &e) == 0);
            if (nt > 1) CHECKF(memcmp(ref, got, (size_t)T * V * 4) == 0, "weights %d/%d, %d threads: prefill differs", kind, act, nt);
            for (int step = 1; step <= 5; step += 4) {
                memset(got, 0, (size_t)T * V * 4);
                for (int i = 0; i < T; i += step) {
                    int n = SQ_MIN(step, T - i);
                    sq_batch s = {n, &toks[i], &pos[i], &btb[i], n, rows};
                    REQUIRE(sq_model_forward(m, f, &kv, &s, got + (size_t)i * V, &e) == 0);
                }
                CHECKF(memcmp(ref, got, (size_t)T * V * 4) == 0, "weights %d/%d, %d threads, steps of %d: logits differ", kind,
                       act, nt, step);
            }
            sq_fwd_free(f);
            sq_kv_pool_free(&kv);
        }
        for (int l = 0; kind && l < m->cfg.n_layers; l++) {
            sq_layer *L = &m->layers[l], *O = &orig[l];
            sq_view *w[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
            sq_view *o[] = {&O->wq, &O->wk, &O->wv, &O->wo, &O->w_gate, &O->w_up, &O->w_down};
            for (size_t k = 0; k < SQ_ARRAY_LEN(w); k++)
                if (w[k]->data != o[k]->data) free(w[k]->data), *w[k] = *o[k];
        }
        if (kind) free(m->lm_head.data), m->lm_head = head;
    }
    omp_set_num_threads(saved);
    sq_quant_act_set(SQ_ACT_Q8);
    free(orig);
    free(ref);
    free(got);
    sq_model_close(m);
}

SQ_TEST(f16_gguf_loads_and_runs) {
    const char *path = sq_test_asset("models/llama-2-tiny-random.gguf");
    if (!path) SKIP("../shared/assets/models not present");
    sq_err e;
    sq_model *m;
    REQUIRE(sq_model_open(&m, path, &e) == 0 || (fprintf(stderr, "%s\n", e.msg), 0));
    CHECK_EQ_INT(m->cfg.vocab_size, 32000);
    CHECK_EQ_INT(m->cfg.dim, 8);
    CHECK(m->lm_head.dtype == SQ_F16 && m->layers[0].wq.dtype == SQ_F16); /* used in place, widened by the kernels */
    sq_kv_pool kv;
    REQUIRE(sq_kv_pool_init(&kv, m, 2, 16, &e) == 0);
    sq_fwd *f;
    REQUIRE(sq_fwd_new(&f, m, 4, 4, 16, &e) == 0);
    int32_t toks[3] = {1, 100, 31999}, pos[3] = {0, 1, 2}, bl[1] = {1}, rows[1] = {2};
    const int32_t *bt[3] = {bl, bl, bl};
    float *logits = malloc(32000 * 4);
    sq_batch b = {3, toks, pos, bt, 1, rows};
    REQUIRE(sq_model_forward(m, f, &kv, &b, logits, &e) == 0);
    int finite = 1;
    for (int i = 0; i < 32000; i++) finite &= isfinite(logits[i]);
    CHECK(finite);
    /* A token outside the vocabulary is an error, not a read out of bounds. */
    toks[0] = 32000;
    CHECK(sq_model_forward(m, f, &kv, &b, logits, &e) == SQ_ERANGE);
    CHECK(strstr(e.msg, "32000") != NULL);
    free(logits);
    sq_fwd_free(f);
    sq_kv_pool_free(&kv);
    sq_model_close(m);
}

/* Truncated and corrupt files give errors that name the file. */
SQ_TEST(corrupt_files_are_clear_errors) {
    const char *src = sq_test_asset("models/stories260K.gguf");
    if (!src) SKIP("../shared/assets/models not present");
    char *data;
    size_t len;
    sq_err e;
    REQUIRE(sq_file_read_all(src, &data, &len, &e) == 0);
    char *bad = sq_path_join(sq_test_tmpdir(), "cut.gguf");
    size_t cuts[] = {len / 2, len - 100, 600, 20};
    for (size_t i = 0; i < SQ_ARRAY_LEN(cuts); i++) {
        REQUIRE(sq_file_write_atomic(bad, data, cuts[i], &e) == 0);
        sq_model *m = NULL;
        int rc = sq_model_open(&m, bad, &e);
        CHECKF(rc < 0, "truncated at %zu opened", cuts[i]);
        CHECKF(strstr(e.msg, "cut.gguf") != NULL, "message does not name the file: %s", e.msg);
        CHECK(m == NULL);
    }
    /* An HF folder whose config disagrees with the tensor shapes. */
    const char *hf = sq_test_asset("models/stories260K-hf");
    char *dir = sq_path_join(sq_test_tmpdir(), "hf"), *cfgp = sq_path_join(dir, "config.json");
    char *stp = sq_path_join(dir, "model.safetensors"), *st_src = sq_path_join(hf, "model.safetensors"), *cfg_src = sq_path_join(hf, "config.json");
    char *st, *cfg;
    size_t st_len, cfg_len;
    REQUIRE(sq_mkdirs(dir, &e) == 0);
    REQUIRE(sq_file_read_all(st_src, &st, &st_len, &e) == 0);
    REQUIRE(sq_file_read_all(cfg_src, &cfg, &cfg_len, &e) == 0);
    REQUIRE(sq_file_write_atomic(stp, st, st_len, &e) == 0);
    char *p = strstr(cfg, "\"intermediate_size\": 172");
    REQUIRE(p);
    memcpy(p, "\"intermediate_size\": 176", 24);
    REQUIRE(sq_file_write_atomic(cfgp, cfg, cfg_len, &e) == 0);
    sq_model *m = NULL;
    CHECK(sq_model_open(&m, dir, &e) < 0);
    CHECKF(strstr(e.msg, "mlp") != NULL && strstr(e.msg, "172") != NULL, "message: %s", e.msg);
    /* A layer count far beyond the file's tensors is refused before it sizes anything. */
    memcpy(p, "\"intermediate_size\": 172", 24);
    char *nl = strstr(cfg, "\"num_hidden_layers\": 5");
    REQUIRE(nl);
    sq_buf big = {0};
    sq_buf_printf(&big, "%.*s\"num_hidden_layers\": 2000000000%s", (int)(nl - cfg), cfg, nl + 22);
    REQUIRE(sq_file_write_atomic(cfgp, big.data, big.len, &e) == 0);
    m = NULL;
    CHECK(sq_model_open(&m, dir, &e) < 0);
    CHECKF(strstr(e.msg, "declares 2000000000 layers") != NULL && strstr(e.msg, "layers.1999999999.") != NULL,
           "message: %s", e.msg);
    sq_buf_free(&big);
    free(st);
    free(cfg);
    free(cfgp);
    free(stp);
    free(st_src);
    free(cfg_src);
    free(dir);
    free(bad);
    free(data);
}

/* The HF form split into two shards with model.safetensors.index.json loads the same model. */
SQ_TEST(sharded_hf_folder_matches_reference) {
    const char *hf = sq_test_asset("models/stories260K-hf");
    if (!hf) SKIP("../shared/assets/models not present");
    sq_err e;
    sq_safetensors st;
    REQUIRE(sq_st_open(&st, hf, &e) == 0);
    char *dir = sq_path_join(sq_test_tmpdir(), "sharded");
    REQUIRE(sq_mkdirs(dir, &e) == 0);
    sq_st_entry *ent = calloc((size_t)st.n_tensors, sizeof *ent);
    int half = st.n_tensors / 2;
    sq_buf idx = {0};
    sq_buf_puts(&idx, "{\"metadata\": {}, \"weight_map\": {");
    for (int i = 0; i < st.n_tensors; i++) {
        ent[i].name = st.tensors[i].name;
        ent[i].view = st.tensors[i].view;
        sq_buf_printf(&idx, "%s\"%s\": \"model-%05d-of-00002.safetensors\"", i ? ", " : "", st.tensors[i].name,
                      i < half ? 1 : 2);
    }
    sq_buf_puts(&idx, "}}");
    char *p1 = sq_path_join(dir, "model-00001-of-00002.safetensors"), *p2 = sq_path_join(dir, "model-00002-of-00002.safetensors");
    char *pi = sq_path_join(dir, "model.safetensors.index.json"), *pc = sq_path_join(dir, "config.json");
    char *src_cfg = sq_path_join(hf, "config.json"), *cfg;
    size_t cfg_len;
    REQUIRE(sq_st_write(p1, ent, half, &e) == 0);
    REQUIRE(sq_st_write(p2, ent + half, st.n_tensors - half, &e) == 0);
    REQUIRE(sq_file_write_atomic(pi, idx.data, idx.len, &e) == 0);
    REQUIRE(sq_file_read_all(src_cfg, &cfg, &cfg_len, &e) == 0);
    REQUIRE(sq_file_write_atomic(pc, cfg, cfg_len, &e) == 0);
    greedy_matches_path(dir, "sharded stories260K-hf");
    free(cfg);
    free(src_cfg);
    free(pc);
    free(pi);
    free(p1);
    free(p2);
    sq_buf_free(&idx);
    free(ent);
    free(dir);
    sq_st_close(&st);
}
