/* KV cache element types: F16/BF16 rounding when stored, and attention over a 16-bit cache
 * equal, bit for bit, to attention over an F32 cache holding the same rounded values (every
 * CPU path: the AVX2 four-positions-at-a-time dots and 64-wide value block, AVX-512, C). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/model.h"
#include "test.h"

static void fill(float *x, size_t n, unsigned seed) {
    uint32_t s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = ((float)(s >> 8) / (float)(1 << 24) - 0.5f) * 6.0f;
    }
}

static float round_to(int type, float x) {
    return type == SQ_KV_F16 ? sq_f16_to_f32(sq_f32_to_f16(x)) : sq_bf16_to_f32(sq_f32_to_bf16(x));
}

SQ_TEST(kv_type_names_and_sizes) {
    CHECK_EQ_INT(sq_kv_type_parse("f32"), SQ_KV_F32);
    CHECK_EQ_INT(sq_kv_type_parse("f16"), SQ_KV_F16);
    CHECK_EQ_INT(sq_kv_type_parse("bf16"), SQ_KV_BF16);
    CHECK_EQ_INT(sq_kv_type_parse("fp16"), -1);
    CHECK_EQ_INT(sq_kv_type_parse(NULL), -1);
    CHECK_EQ_INT((int)sq_kv_type_size(SQ_KV_F32), 4);
    CHECK_EQ_INT((int)sq_kv_type_size(SQ_KV_F16), 2);
    CHECK_EQ_INT((int)sq_kv_type_size(SQ_KV_BF16), 2);
    CHECK_EQ_INT((int)sq_kv_type_size(7), 0);
}

/* Head sizes 8, 72 (a 64-wide value block plus a tail) and 128; 11 positions (dots four at a
 * time, then a tail); scattered blocks, GQA, and a sliding-window start. */
SQ_TEST(attention_over_16bit_cache_equals_f32_over_rounded_values) {
    enum { H = 4, KVH = 2, DMAX = 128, BS = 3, NB = 4, NPOS = 11 };
    int32_t blocks[NB] = {2, 0, 3, 1};
    size_t n = (size_t)NB * BS * KVH * DMAX;
    float *k = malloc(n * 4), *v = malloc(n * 4), *kr = malloc(n * 4), *vr = malloc(n * 4);
    uint16_t *k16 = malloc(n * 2), *v16 = malloc(n * 2);
    static float q[H * DMAX], o32[H * DMAX], o16[H * DMAX];
    float scratch[NPOS];
    REQUIRE(k && v && kr && vr && k16 && v16);
    int dims[] = {8, 72, 128};
    for (int type = SQ_KV_F16; type <= SQ_KV_BF16; type++)
        for (size_t di = 0; di < SQ_ARRAY_LEN(dims); di++) {
            int D = dims[di];
            fill(k, n, 21 + D);
            fill(v, n, 22 + D);
            fill(q, SQ_ARRAY_LEN(q), 23 + D);
            k[5] = 1e-6f; /* an F16 subnormal */
            for (size_t i = 0; i < n; i++) {
                kr[i] = round_to(type, k[i]);
                vr[i] = round_to(type, v[i]);
                k16[i] = type == SQ_KV_F16 ? sq_f32_to_f16(k[i]) : sq_f32_to_bf16(k[i]);
                v16[i] = type == SQ_KV_F16 ? sq_f32_to_f16(v[i]) : sq_f32_to_bf16(v[i]);
            }
            sq_attn_args a32 = {kr, vr, blocks, BS, KVH * D, H, KVH, D, SQ_KV_F32};
            sq_attn_args a16 = {k16, v16, blocks, BS, KVH * D, H, KVH, D, type};
            int same = 1, differs_from_exact = 0;
            for (int start = 0; start <= 5; start += 5)
                for (int h = 0; h < H; h++) {
                    sq_attention_head(&a32, q, h, start, NPOS, scratch, o32);
                    sq_attention_head(&a16, q, h, start, NPOS, scratch, o16);
                    same &= !memcmp(o32 + h * D, o16 + h * D, sizeof(float) * D);
                    sq_attn_args ax = {k, v, blocks, BS, KVH * D, H, KVH, D, SQ_KV_F32};
                    sq_attention_head(&ax, q, h, start, NPOS, scratch, o32);
                    differs_from_exact |= memcmp(o32 + h * D, o16 + h * D, sizeof(float) * D) != 0;
                }
            CHECKF(same, "%s cache, head_dim %d: not bit-identical to F32 over rounded values",
                   sq_kv_type_name(type), D);
            CHECKF(differs_from_exact, "%s cache, head_dim %d: the rounding had no effect (is it stored?)",
                   sq_kv_type_name(type), D);
        }
    free(k), free(v), free(kr), free(vr), free(k16), free(v16);
}

/* The store rounds to nearest even at the head's offset within the slot, leaves the rest of
 * the row alone, and a block copy carries 16-bit rows whole. */
SQ_TEST(kv_pool_store_rounds_and_copies) {
    const char *path = sq_test_asset("models/stories260K.gguf");
    if (!path) SKIP("../shared/assets/models not present");
    sq_model *m;
    sq_err e;
    REQUIRE(sq_model_open(&m, path, &e) == 0);
    for (int type = SQ_KV_F32; type <= SQ_KV_BF16; type++) {
        sq_kv_pool p;
        REQUIRE(sq_kv_pool_init_type(&p, m, 4, 4, type, &e) == 0);
        int kd = p.kv_dim, hd = m->cfg.head_dim;
        CHECK_EQ_INT((int)sq_kv_pool_bytes_per_token(&p), (int)(2 * m->cfg.n_layers * kd * sq_kv_type_size(type)));
        float *kr = malloc(sizeof(float) * kd), *vr = malloc(sizeof(float) * kd), *back = malloc(sizeof(float) * kd);
        REQUIRE(kr && vr && back);
        fill(kr, kd, 5);
        fill(vr, kd, 6);
        memset(p.k[1], 0, (size_t)4 * 4 * kd * sq_kv_type_size(type));
        sq_kv_pool_store(&p, 1, 6, hd, kr + hd, vr + hd, hd); /* slot 6 = block 1, position 2 */
        sq_kv_pool_copy_block(&p, 3, 1, 3);
        for (int slot = 6; slot <= 14; slot += 8) { /* the copy landed in block 3, position 2 */
            const char *row = (const char *)p.k[1] + (size_t)slot * kd * sq_kv_type_size(type);
            for (int i = 0; i < kd; i++) {
                if (type == SQ_KV_F32)
                    back[i] = ((const float *)row)[i];
                else if (type == SQ_KV_F16)
                    back[i] = sq_f16_to_f32(((const uint16_t *)row)[i]);
                else
                    back[i] = sq_bf16_to_f32(((const uint16_t *)row)[i]);
            }
            int ok = 1;
            for (int i = 0; i < kd; i++) {
                float want = i >= hd && i < 2 * hd ? (type == SQ_KV_F32 ? kr[i] : round_to(type, kr[i])) : 0.0f;
                ok &= back[i] == want;
            }
            CHECKF(ok, "%s pool, slot %d: stored row differs", sq_kv_type_name(type), slot);
        }
        free(kr), free(vr), free(back);
        sq_kv_pool_free(&p);
    }
    sq_kv_pool p;
    CHECK(sq_kv_pool_init_type(&p, m, 4, 4, 9, &e) == SQ_EINVAL);
    sq_model_close(m);
}

/* "auto" (the default of the engine and of every --kv-type) follows the layers' weights: F16
 * for BF16, F16 and quantized matrices, F32 for F32 ones; the pool resolves it and never holds
 * it. Only the views' dtypes are read, so the test relabels stories260K's (F32) matrices. */
SQ_TEST(kv_type_auto_follows_the_weights) {
    CHECK_EQ_INT(sq_kv_type_parse("auto"), SQ_KV_AUTO);
    CHECK_EQ_STR(sq_kv_type_name(SQ_KV_AUTO), "auto");
    CHECK_EQ_INT((int)sq_kv_type_size(SQ_KV_AUTO), 0);
    const char *path = sq_test_asset("models/stories260K.gguf");
    if (!path) SKIP("../shared/assets/models not present");
    sq_model *m;
    sq_err e;
    REQUIRE(sq_model_open(&m, path, &e) == 0);
    REQUIRE(m->layers[0].wq.dtype == SQ_F32);
    CHECK_EQ_INT(sq_kv_type_auto(m), SQ_KV_F32);
    CHECK_EQ_INT(sq_kv_type_resolve(SQ_KV_AUTO, m), SQ_KV_F32);
    sq_kv_pool p;
    REQUIRE(sq_kv_pool_init_type(&p, m, 2, 4, SQ_KV_AUTO, &e) == 0);
    CHECK_EQ_INT(p.type, SQ_KV_F32);
    sq_kv_pool_free(&p);
    int L = m->cfg.n_layers;
    sq_dtype *saved = malloc(sizeof(sq_dtype) * 7 * (size_t)L);
    REQUIRE(saved);
    sq_dtype kinds[] = {SQ_BF16, SQ_F16, SQ_Q8_0, SQ_Q4_1, SQ_Q4_K, SQ_Q6_K};
    for (size_t k = 0; k < SQ_ARRAY_LEN(kinds); k++) {
        for (int l = 0; l < L; l++) {
            sq_layer *y = &m->layers[l];
            sq_view *w[] = {&y->wq, &y->wk, &y->wv, &y->wo, &y->w_gate, &y->w_up, &y->w_down};
            for (int i = 0; i < 7; i++) saved[l * 7 + i] = w[i]->dtype, w[i]->dtype = kinds[k];
        }
        CHECKF(sq_kv_type_auto(m) == SQ_KV_F16, "%s weights: auto gave %s", sq_dtype_name(kinds[k]),
               sq_kv_type_name(sq_kv_type_auto(m)));
        REQUIRE(sq_kv_pool_init_type(&p, m, 2, 4, SQ_KV_AUTO, &e) == 0);
        CHECK_EQ_INT(p.type, SQ_KV_F16);
        sq_kv_pool_free(&p);
        /* an explicit type stays what it is */
        CHECK_EQ_INT(sq_kv_type_resolve(SQ_KV_F32, m), SQ_KV_F32);
        CHECK_EQ_INT(sq_kv_type_resolve(SQ_KV_BF16, m), SQ_KV_BF16);
        /* a head wider than the 16-bit caches take keeps F32 */
        int hd = m->cfg.head_dim;
        m->cfg.head_dim = SQ_KV_MAX_HEAD_DIM + 1;
        CHECK_EQ_INT(sq_kv_type_auto(m), SQ_KV_F32);
        m->cfg.head_dim = hd;
        for (int l = 0; l < L; l++) {
            sq_layer *y = &m->layers[l];
            sq_view *w[] = {&y->wq, &y->wk, &y->wv, &y->wo, &y->w_gate, &y->w_up, &y->w_down};
            for (int i = 0; i < 7; i++) w[i]->dtype = saved[l * 7 + i];
        }
    }
    /* One 16-bit matrix is enough: the model's numbers are no longer F32-exact. */
    m->layers[L - 1].w_down.dtype = SQ_BF16;
    CHECK_EQ_INT(sq_kv_type_auto(m), SQ_KV_F16);
    m->layers[L - 1].w_down.dtype = SQ_F32;
    CHECK_EQ_INT(sq_kv_type_auto(m), SQ_KV_F32);
    free(saved);
    sq_model_close(m);
}

/* F16 tops out at 65504: the store saturates larger keys and values (and infinities) to
 * +-65504 instead of writing infinity; NaN stays NaN; in-range values are rounded as before. */
SQ_TEST(kv_pool_f16_store_saturates) {
    const char *path = sq_test_asset("models/stories260K.gguf");
    if (!path) SKIP("../shared/assets/models not present");
    sq_model *m;
    sq_err e;
    REQUIRE(sq_model_open(&m, path, &e) == 0);
    sq_kv_pool p;
    REQUIRE(sq_kv_pool_init_type(&p, m, 1, 4, SQ_KV_F16, &e) == 0);
    float in[] = {65504.0f, 65519.0f, 65520.0f, 1e6f, -7e4f, INFINITY, -INFINITY, NAN, 1.5f, -3e-6f, 65000.0f};
    float want[] = {65504.0f, 65504.0f, 65504.0f, 65504.0f, -65504.0f, 65504.0f, -65504.0f, NAN, 1.5f,
                    sq_f16_to_f32(sq_f32_to_f16(-3e-6f)), 64992.0f};
    int n = (int)SQ_ARRAY_LEN(in);
    REQUIRE(n <= p.kv_dim);
    sq_kv_pool_store(&p, 0, 1, 0, in, in, n);
    const uint16_t *k = (const uint16_t *)p.k[0] + p.kv_dim, *v = (const uint16_t *)p.v[0] + p.kv_dim;
    for (int i = 0; i < n; i++) {
        float gk = sq_f16_to_f32(k[i]), gv = sq_f16_to_f32(v[i]);
        int ok = isnan(want[i]) ? isnan(gk) && isnan(gv) : gk == want[i] && gv == want[i];
        CHECKF(ok, "store of %g: key %g, value %g, want %g", in[i], gk, gv, want[i]);
    }
    sq_kv_pool_free(&p);
    sq_model_close(m);
}

/* The store's vector conversion (whole rows of 8 or 16) gives the scalar rule's bits: a whole
 * row of edge values (overflow, infinities, NaN, ties to even, subnormals, +-0) and random
 * values of many magnitudes, element by element against sq_f32_to_f16 after the clamp. */
SQ_TEST(kv_pool_f16_store_rows_match_the_scalar_rule) {
    const char *path = sq_test_asset("models/stories260K.gguf");
    if (!path) SKIP("../shared/assets/models not present");
    sq_model *m;
    sq_err e;
    REQUIRE(sq_model_open(&m, path, &e) == 0);
    sq_kv_pool p;
    REQUIRE(sq_kv_pool_init_type(&p, m, 1, 4, SQ_KV_F16, &e) == 0);
    int n = p.kv_dim;
    REQUIRE(n >= 16);
    float *in = malloc(sizeof(float) * (size_t)n), *in2 = malloc(sizeof(float) * (size_t)n);
    REQUIRE(in && in2);
    const float edge[] = {65504.0f,  65519.0f, 65520.0f, 1e6f,     -7e4f,    INFINITY, -INFINITY, NAN,
                          -NAN,      0.0f,     -0.0f,    6.1e-5f,  -3e-6f,   6e-8f,    2.9e-8f,   1.00048828125f,
                          1.0014648f, 65000.0f, -65519.99f, 5.96e-8f};
    sq_rng r;
    sq_rng_seed(&r, 77);
    int bad = 0;
    for (int round = 0; round < 64; round++) {
        for (int i = 0; i < n; i++) {
            in[i] = (i + round) % 3 == 0 ? edge[(i + round) % SQ_ARRAY_LEN(edge)]
                                         : (float)(sq_rng_normal(&r) * pow(2.0, (double)sq_rng_below(&r, 50) - 30));
            in2[i] = -in[i];
        }
        sq_kv_pool_store(&p, 0, 2, 0, in, in2, n);
        const uint16_t *k = (const uint16_t *)p.k[0] + 2 * (size_t)p.kv_dim, *v = (const uint16_t *)p.v[0] + 2 * (size_t)p.kv_dim;
        for (int i = 0; i < n; i++) {
            float ck = in[i] > 65504.0f ? 65504.0f : in[i] < -65504.0f ? -65504.0f : in[i];
            float cv = in2[i] > 65504.0f ? 65504.0f : in2[i] < -65504.0f ? -65504.0f : in2[i];
            if (k[i] != sq_f32_to_f16(ck) || v[i] != sq_f32_to_f16(cv)) bad++;
        }
    }
    CHECK_EQ_INT(bad, 0);
    free(in), free(in2);
    sq_kv_pool_free(&p);
    sq_model_close(m);
}

/* ---- batched attention (sq_attention_plan / sq_attention_run) against sq_attention_head -- */

enum { BA_BS = 4, BA_NB = 40, BA_KVH = 2, BA_DMAX = 136, BA_CTX = 64, BA_TMAX = 64 };

/* One step of a batch engine's shapes: five samples of one prompt whose first three blocks
 * are shared (positions 12-13: each has its own tail block; one sample is a token behind),
 * two unrelated sequences (one short, one long), and a 30-token prefill of a sixth
 * sequence (more tokens than one chunk holds at small groups). */
typedef struct {
    int n;
    int32_t pos[BA_TMAX];
    const int32_t *tab[BA_TMAX];
    int32_t tables[8][BA_CTX / BA_BS];
} ba_step;

static void ba_step_make(ba_step *s) {
    memset(s, 0, sizeof *s);
    int next = 3; /* blocks 0-2: the shared prompt */
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < BA_CTX / BA_BS; j++) s->tables[i][j] = -1;
    for (int i = 0; i < 5; i++) {
        for (int j = 0; j < 3; j++) s->tables[i][j] = j;
        s->tables[i][3] = next++;
        s->pos[s->n] = i == 2 ? 12 : 13;
        s->tab[s->n++] = s->tables[i];
    }
    s->tables[5][0] = next++; /* a short sequence: 3 positions */
    s->pos[s->n] = 2;
    s->tab[s->n++] = s->tables[5];
    for (int j = 0; j < 11; j++) s->tables[6][j] = next++; /* a long one: 41 positions */
    s->pos[s->n] = 40;
    s->tab[s->n++] = s->tables[6];
    for (int j = 0; j < 8; j++) s->tables[7][j] = next++; /* prefill: positions 1..30 */
    for (int p = 1; p <= 30; p++) {
        s->pos[s->n] = p;
        s->tab[s->n++] = s->tables[7];
    }
}

static void to16(int type, uint16_t *out, float *rounded, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        out[i] = type == SQ_KV_F16 ? sq_f32_to_f16(x[i]) : sq_f32_to_bf16(x[i]);
        rounded[i] = type == SQ_KV_F16 ? sq_f16_to_f32(out[i]) : sq_bf16_to_f32(out[i]);
    }
}

/* Every (token, head) of the step equals sq_attention_head over that token's own table,
 * bit for bit: F32, F16 and BF16 caches; head sizes with vector and scalar tails; groups of
 * 1, 3 and 7 query heads per kv head; with and without a sliding window; the units run all
 * at once, one at a time in reverse, and split in two ranges as two threads would. */
SQ_TEST(batched_attention_equals_per_head) {
    static ba_step st;
    ba_step_make(&st);
    size_t n = (size_t)BA_NB * BA_BS * BA_KVH * BA_DMAX;
    float *k = malloc(n * 4), *v = malloc(n * 4), *kr = malloc(n * 4), *vr = malloc(n * 4);
    uint16_t *k16 = malloc(n * 2), *v16 = malloc(n * 2);
    int hmax = 7 * BA_KVH;
    size_t qn = (size_t)BA_TMAX * hmax * BA_DMAX;
    float *q = malloc(qn * 4), *want = malloc(qn * 4), *got = malloc(qn * 4), *got2 = malloc(qn * 4);
    size_t sfl = sq_attention_scratch_floats(BA_CTX, hmax, BA_KVH, BA_DMAX);
    float *scratch = malloc(sfl * 4), *one = malloc(BA_CTX * 4);
    int32_t *mem = malloc(sizeof(int32_t) * sq_attention_plan_ints(BA_TMAX));
    REQUIRE(k && v && kr && vr && k16 && v16 && q && want && got && got2 && scratch && one && mem);
    int dims[] = {8, 20, 64, 72, 136}, groups[] = {1, 3, 7};
    int cases = 0, bad = 0;
    for (int type = SQ_KV_F32; type <= SQ_KV_BF16; type++)
        for (size_t di = 0; di < SQ_ARRAY_LEN(dims); di++)
            for (size_t gi = 0; gi < SQ_ARRAY_LEN(groups); gi++)
                for (int window = 0; window <= 9; window += 9) {
                    int D = dims[di], H = groups[gi] * BA_KVH, qd = H * D;
                    fill(k, n, 31 + D + type);
                    fill(v, n, 32 + D + type);
                    fill(q, qn, 33 + D + (int)gi);
                    const void *kb = k, *vb = v;
                    if (type != SQ_KV_F32) {
                        to16(type, k16, kr, k, n);
                        to16(type, v16, vr, v, n);
                        kb = k16, vb = v16;
                    }
                    sq_attn_args a = {kb, vb, NULL, BA_BS, BA_KVH * D, H, BA_KVH, D, type};
                    for (int t = 0; t < st.n; t++) {
                        int p = st.pos[t], start = window > 0 && p + 1 > window ? p + 1 - window : 0;
                        a.blocks = st.tab[t];
                        for (int h = 0; h < H; h++)
                            sq_attention_head(&a, q + (size_t)t * qd, h, start, p + 1, one, want + (size_t)t * qd);
                    }
                    sq_attn_plan plan;
                    sq_attention_plan(&plan, mem, st.n, st.pos, st.tab, BA_BS, H, BA_KVH);
                    sq_attn_batch b = {.a = a, .plan = &plan, .q = q, .out = got, .pos = st.pos, .blocks = st.tab,
                                       .sliding_window = window, .max_ctx = BA_CTX};
                    int W = sq_attention_work_count(&b);
                    memset(got, 0xff, qn * 4);
                    sq_attention_run(&b, 0, W, scratch);
                    b.out = got2;
                    memset(got2, 0xff, qn * 4);
                    for (int w = W - 1; w >= 0; w--) sq_attention_run(&b, w, w + 1, scratch);
                    int same = !memcmp(want, got, (size_t)st.n * qd * 4) && !memcmp(want, got2, (size_t)st.n * qd * 4);
                    memset(got2, 0xff, qn * 4);
                    sq_attention_run(&b, 0, W / 2, scratch);
                    sq_attention_run(&b, W / 2, W, scratch + 0); /* a second thread's share */
                    same &= !memcmp(want, got2, (size_t)st.n * qd * 4);
                    if (type != SQ_KV_F32) { /* and F32 over the rounded values, through the batch */
                        b.a.k_base = kr, b.a.v_base = vr, b.a.kv_type = SQ_KV_F32;
                        memset(got2, 0xff, qn * 4);
                        sq_attention_run(&b, 0, W, scratch);
                        same &= !memcmp(want, got2, (size_t)st.n * qd * 4);
                    }
                    cases++;
                    if (!same) {
                        bad++;
                        CHECKF(0, "%s cache, head_dim %d, %d heads, window %d: batched != per head",
                               sq_kv_type_name(type), D, H, window);
                    }
                }
    CHECK(cases == 3 * 5 * 3 * 2 && bad == 0);
    free(k), free(v), free(kr), free(vr), free(k16), free(v16), free(q), free(want), free(got), free(got2);
    free(scratch), free(one), free(mem);
}

/* The plan: the five samples form one chunk whose shared span is the three prompt blocks;
 * the prefill's tokens are cut into chunks of ATT_QMAX / group rows; kv-head-major units. */
SQ_TEST(attention_plan_groups_shared_prefix) {
    static ba_step st;
    ba_step_make(&st);
    int32_t *mem = malloc(sizeof(int32_t) * sq_attention_plan_ints(BA_TMAX));
    REQUIRE(mem);
    sq_attn_plan p;
    sq_attention_plan(&p, mem, st.n, st.pos, st.tab, BA_BS, 2 * 7, 2); /* 7 heads a group: 9 rows a chunk */
    int five = -1;
    for (int c = 0; c < p.n_chunks; c++)
        if (st.tab[p.tok[p.first[c]]] == st.tables[0] || st.tab[p.tok[p.first[c]]][0] == 0) five = c;
    REQUIRE(five >= 0);
    CHECK_EQ_INT(p.first[five + 1] - p.first[five], 5);
    CHECK_EQ_INT(p.shared[five], 3 * BA_BS);
    /* 5 samples, 2 singles, a 30-token prefill in 9 + 9 + 9 + 3. */
    CHECK_EQ_INT(p.n_chunks, 1 + 2 + 4);
    int seen[BA_TMAX] = {0};
    for (int i = 0; i < st.n; i++) seen[p.tok[i]]++;
    int all_once = 1;
    for (int i = 0; i < st.n; i++) all_once &= seen[i] == 1;
    CHECK(all_once);
    sq_attn_batch b = {.a = {.n_heads = 14, .n_kv_heads = 2}, .plan = &p};
    CHECK_EQ_INT(sq_attention_work_count(&b), 2 * p.n_chunks);
    free(mem);
}
