/* io: GGUF, safetensors and config.json readers on the real assets, half-float conversion. */
#include <stdlib.h>

#include "scalequest/gguf.h"
#include "scalequest/model_config.h"
#include "scalequest/safetensors.h"
#include "test.h"

SQ_TEST(f16_conversion_is_exact_both_ways) {
    /* Every half value survives f16 -> f32 -> f16 bit-exactly (NaNs stay NaN). */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = sq_f16_to_f32((uint16_t)h);
        uint16_t back = sq_f32_to_f16(f);
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) {
            CHECKF(isnan(f) && (back & 0x7c00) == 0x7c00 && (back & 0x3ff), "nan 0x%04x -> 0x%04x", h, back);
            continue;
        }
        CHECKF(back == h, "0x%04x -> %g -> 0x%04x", h, (double)f, back);
        if (back != h) return;
    }
    CHECK_EQ_INT(sq_f16_to_f32(0x0001) == ldexpf(1, -24), 1); /* smallest subnormal */
    CHECK_EQ_INT(sq_f16_to_f32(0x3c00) == 1.0f, 1);
    CHECK_EQ_INT(sq_f16_to_f32(0xfc00) == -INFINITY, 1);
    /* Rounding: halfway cases go to even, overflow goes to infinity, tiny values to zero. */
    CHECK_EQ_INT(sq_f32_to_f16(1.0f + ldexpf(1, -11)), 0x3c00);
    CHECK_EQ_INT(sq_f32_to_f16(1.0f + 3 * ldexpf(1, -11)), 0x3c02);
    CHECK_EQ_INT(sq_f32_to_f16(65520.0f), 0x7c00);
    CHECK_EQ_INT(sq_f32_to_f16(65519.0f), 0x7bff);
    CHECK_EQ_INT(sq_f32_to_f16(ldexpf(1, -25)), 0x0000);
    CHECK_EQ_INT(sq_f32_to_f16(ldexpf(1.5f, -25)), 0x0001);
    CHECK_EQ_INT(sq_f32_to_f16(ldexpf(3, -25)), 0x0002);
    CHECK_EQ_INT(sq_f32_to_f16(-0.0f), 0x8000);
    CHECK_EQ_INT(sq_f32_to_f16(ldexpf(1023, -24) + ldexpf(1, -25)),
                 0x0400); /* carry into the smallest normal */
    /* f32 -> f16 agrees with the hardware conversion on a sweep of random floats. */
    sq_rng r;
    sq_rng_seed(&r, 7);
    for (int i = 0; i < 200000; i++) {
        uint32_t u = (uint32_t)sq_rng_u64(&r);
        float f;
        memcpy(&f, &u, 4);
        if (isnan(f)) continue;
        _Float16 hw = (_Float16)f;
        uint16_t hb;
        memcpy(&hb, &hw, 2);
        uint16_t ours = sq_f32_to_f16(f);
        CHECKF(ours == hb, "%a -> 0x%04x, hardware 0x%04x", (double)f, ours, hb);
        if (ours != hb) return;
    }
    CHECK_EQ_STR(sq_dtype_name(SQ_BF16), "BF16");
    CHECK_EQ_INT(sq_dtype_size(SQ_I64), 8);
    sq_view q = {NULL, SQ_Q8_0, 2, {4, 64, 1, 1}};
    CHECK_EQ_INT(sq_view_bytes(&q), 4 * 2 * 34);
}

SQ_TEST(gguf_reads_stories260k) {
    const char *path = sq_test_asset("models/stories260K.gguf");
    if (!path) SKIP("../shared/assets absent");
    sq_gguf g;
    sq_err e;
    REQUIRE(sq_gguf_open(&g, path, &e) == 0);
    CHECK_EQ_INT(g.version, 3);
    CHECK_EQ_INT(g.n_kv, 19);
    CHECK_EQ_INT(g.n_tensors, 48);
    sq_gguf_str s;
    REQUIRE(sq_gguf_get_str(&g, "general.architecture", &s, &e) == 0);
    CHECK(sq_gguf_str_eq(s, "llama"));
    uint32_t u;
    CHECK(sq_gguf_get_u32(&g, "llama.block_count", &u, &e) == 0 && u == 5);
    CHECK(sq_gguf_get_u32(&g, "llama.attention.head_count_kv", &u, &e) == 0 && u == 4);
    CHECK_EQ_INT(sq_gguf_get_u32(&g, "general.architecture", &u, &e), SQ_EPARSE);
    CHECK_EQ_INT(sq_gguf_get_u32(&g, "no.such.key", &u, &e), SQ_ENOTFOUND);
    float f;
    CHECK(sq_gguf_get_f32(&g, "llama.attention.layer_norm_rms_epsilon", &f, &e) == 0 && f == 1e-5f);
    const sq_gguf_kv *toks;
    REQUIRE(sq_gguf_get_arr(&g, "tokenizer.ggml.tokens", SQ_GGUF_STRING, &toks, &e) == 0);
    CHECK_EQ_INT(toks->n, 512);
    CHECK(sq_gguf_str_eq(sq_gguf_arr_str(toks, 0), "<unk>"));
    CHECK(sq_gguf_str_eq(sq_gguf_arr_str(toks, 1), "<s>"));
    CHECK(sq_gguf_arr_str(toks, 512).ptr == NULL);
    const sq_gguf_kv *types;
    REQUIRE(sq_gguf_get_arr(&g, "tokenizer.ggml.token_type", SQ_GGUF_I32, &types, &e) == 0);
    CHECK_EQ_INT(sq_gguf_arr_int(types, 0), 2); /* <unk> is UNKNOWN */
    CHECK_EQ_INT(sq_gguf_arr_int(types, 1), 3); /* <s> is CONTROL */
    const sq_gguf_tensor *t = sq_gguf_find_tensor(&g, "blk.0.attn_k.weight");
    REQUIRE(t);
    CHECK_EQ_INT(t->n_dims, 2);
    CHECK_EQ_INT(t->ne[0], 64);
    CHECK_EQ_INT(t->ne[1], 32);
    CHECK_EQ_INT(t->ggml_type, 0);
    CHECK_EQ_INT(t->nbytes, 64 * 32 * 4);
    CHECK_EQ_INT((size_t)(t->data - g.map.data), 292960);
    sq_view v;
    REQUIRE(sq_gguf_tensor_view(t, &v, &e) == 0);
    CHECK_EQ_INT(v.shape[0], 32); /* HF order: [out, in] */
    CHECK_EQ_INT(v.shape[1], 64);
    CHECK(sq_gguf_find_tensor(&g, "output.weight") != NULL);
    CHECK(sq_gguf_find_tensor(&g, "blk.5.attn_k.weight") == NULL);
    sq_gguf_close(&g);
}

SQ_TEST(gguf_reads_f16_tensors) {
    const char *path = sq_test_asset("models/llama-2-tiny-random.gguf");
    if (!path) SKIP("../shared/assets absent");
    sq_gguf g;
    sq_err e;
    REQUIRE(sq_gguf_open(&g, path, &e) == 0);
    const sq_gguf_tensor *t = sq_gguf_find_tensor(&g, "token_embd.weight");
    REQUIRE(t);
    CHECK_EQ_INT(t->ggml_type, 1);
    CHECK_EQ_INT(t->ne[0], 8);
    CHECK_EQ_INT(t->ne[1], 32000);
    CHECK_EQ_INT(t->nbytes, 8 * 32000 * 2);
    /* Random weights: finite, not all zero. */
    int nonzero = 0, finite = 1;
    for (int i = 0; i < 8 * 32000; i++) {
        uint16_t h;
        memcpy(&h, t->data + 2 * i, 2);
        float x = sq_f16_to_f32(h);
        nonzero += x != 0;
        finite &= isfinite(x);
    }
    CHECK(finite);
    CHECK(nonzero > 1000);
    sq_model_config c;
    REQUIRE(sq_model_config_from_gguf(&c, &g, &e) == 0);
    CHECK_EQ_INT(c.vocab_size, 32000);
    CHECK_EQ_INT(c.dim, 8);
    CHECK_EQ_INT(c.n_layers, 1);
    CHECK_EQ_INT(c.max_seq_len, 4096);
    CHECK_EQ_STR(c.torch_dtype, "float16");
    sq_gguf_close(&g);
}

SQ_TEST(gguf_vocab_files_have_big_string_arrays) {
    static const char *files[] = {"vocab/ggml-vocab-llama-spm.gguf", "vocab/ggml-vocab-gpt-2.gguf",
                                  "vocab/ggml-vocab-deepseek-llm.gguf"};
    static const uint64_t min_tokens[] = {32000, 50257, 100000};
    for (size_t i = 0; i < 3; i++) {
        const char *path = sq_test_asset(files[i]);
        if (!path) SKIP("../shared/assets absent");
        sq_gguf g;
        sq_err e;
        REQUIRE(sq_gguf_open(&g, path, &e) == 0);
        const sq_gguf_kv *toks;
        REQUIRE(sq_gguf_get_arr(&g, "tokenizer.ggml.tokens", SQ_GGUF_STRING, &toks, &e) == 0);
        CHECKF(toks->n >= min_tokens[i], "%s: %llu tokens", files[i], (unsigned long long)toks->n);
        /* Every element is indexed and lies inside the file. */
        for (uint64_t k = 0; k < toks->n; k++) {
            sq_gguf_str s = sq_gguf_arr_str(toks, k);
            if (!(s.ptr >= (const char *)g.map.data &&
                  s.ptr + s.len <= (const char *)g.map.data + g.map.len)) {
                CHECKF(0, "%s: token %llu out of the file", files[i], (unsigned long long)k);
                break;
            }
        }
        if (i > 0) {
            const sq_gguf_kv *merges;
            CHECK(sq_gguf_get_arr(&g, "tokenizer.ggml.merges", SQ_GGUF_STRING, &merges, &e) == 0 &&
                  merges->n > 40000);
        }
        sq_gguf_close(&g);
    }
}

SQ_TEST(safetensors_and_config_match_the_gguf) {
    const char *hf = sq_test_asset("models/stories260K-hf");
    const char *gp = sq_test_asset("models/stories260K.gguf");
    if (!hf || !gp) SKIP("../shared/assets absent");
    sq_err e;
    sq_model_config a, b;
    REQUIRE(sq_model_config_load(&a, hf, &e) == 0);
    REQUIRE(sq_model_config_load(&b, gp, &e) == 0);
    CHECK_EQ_STR(a.arch, "llama");
    CHECK_EQ_INT(a.vocab_size, 512);
    CHECK_EQ_INT(a.dim, 64);
    CHECK_EQ_INT(a.n_layers, 5);
    CHECK_EQ_INT(a.n_heads, 8);
    CHECK_EQ_INT(a.n_kv_heads, 4);
    CHECK_EQ_INT(a.head_dim, 8);
    CHECK_EQ_INT(a.ffn_dim, 172);
    CHECK_EQ_INT(a.max_seq_len, 512);
    CHECK_EQ_INT(a.tie_embeddings, 1);
    CHECK_EQ_INT(a.bos_id, 1);
    CHECK_EQ_INT(a.eos_id, 2);
    CHECK_EQ_STR(a.torch_dtype, "float32");
    /* The GGUF describes the same network. */
    CHECK_EQ_STR(b.arch, a.arch);
    CHECK_EQ_INT(b.vocab_size, a.vocab_size);
    CHECK_EQ_INT(b.dim, a.dim);
    CHECK_EQ_INT(b.n_layers, a.n_layers);
    CHECK_EQ_INT(b.n_heads, a.n_heads);
    CHECK_EQ_INT(b.n_kv_heads, a.n_kv_heads);
    CHECK_EQ_INT(b.head_dim, a.head_dim);
    CHECK_EQ_INT(b.ffn_dim, a.ffn_dim);
    CHECK(b.norm_eps == a.norm_eps);
    CHECK(b.rope_theta == a.rope_theta);
    CHECK_EQ_INT(b.bos_id, a.bos_id);
    CHECK_EQ_INT(b.eos_id, a.eos_id);

    sq_safetensors st;
    REQUIRE(sq_st_open(&st, hf, &e) == 0);
    const sq_view *emb = sq_st_find(&st, "model.embed_tokens.weight");
    REQUIRE(emb);
    CHECK_EQ_INT(emb->dtype, SQ_F32);
    CHECK_EQ_INT(emb->ndim, 2);
    CHECK_EQ_INT(emb->shape[0], 512);
    CHECK_EQ_INT(emb->shape[1], 64);
    const sq_view *k = sq_st_find(&st, "model.layers.4.self_attn.k_proj.weight");
    REQUIRE(k);
    CHECK_EQ_INT(k->shape[0], 32);
    CHECK_EQ_INT(k->shape[1], 64);
    CHECK(sq_st_find(&st, "model.layers.5.self_attn.k_proj.weight") == NULL);
    /* Same embedding values as the GGUF (GGUF ne = [64, 512]: identical row-major layout). */
    sq_gguf g;
    REQUIRE(sq_gguf_open(&g, gp, &e) == 0);
    const sq_gguf_tensor *ge = sq_gguf_find_tensor(&g, "token_embd.weight");
    REQUIRE(ge && ge->nbytes == sq_view_bytes(emb));
    CHECK(memcmp(ge->data, emb->data, ge->nbytes) == 0);
    /* Norm weights are not permuted by the converter either. */
    const sq_view *n = sq_st_find(&st, "model.layers.2.post_attention_layernorm.weight");
    const sq_gguf_tensor *gn = sq_gguf_find_tensor(&g, "blk.2.ffn_norm.weight");
    REQUIRE(n && gn);
    CHECK(memcmp(n->data, gn->data, gn->nbytes) == 0);
    sq_gguf_close(&g);
    sq_st_close(&st);
}
