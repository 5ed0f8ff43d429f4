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
