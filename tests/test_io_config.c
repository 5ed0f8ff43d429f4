/* io/model_config: config.json defaults per model_type, rope scaling, eos lists, the writer. */
#include <stdlib.h>

#include "scalequest/model_config.h"
#include "test.h"

#define BASE                                                                                                 \
    "\"vocab_size\": 1000, \"hidden_size\": 256, \"num_hidden_layers\": 2, \"num_attention_heads\": 8, "     \
    "\"intermediate_size\": 512"

SQ_TEST(config_defaults_follow_transformers) {
    sq_model_config c;
    sq_err e;
    REQUIRE(sq_model_config_from_json(&c, "{\"model_type\": \"llama\", " BASE "}", "l.json", &e) == 0);
    CHECK_EQ_STR(c.arch, "llama");
    CHECK_EQ_INT(c.n_kv_heads, 8);
    CHECK_EQ_INT(c.head_dim, 32);
    CHECK_EQ_INT(c.max_seq_len, 2048);
    CHECK(c.rope_theta == 10000.0f);
    CHECK(c.norm_eps == 1e-6f);
    CHECK_EQ_INT(c.tie_embeddings, 0);
    CHECK_EQ_INT(c.attn_bias, 0);
    CHECK_EQ_INT(c.sliding_window, 0);
    CHECK_EQ_INT(c.rope_scaling, SQ_ROPE_NONE);
    CHECK_EQ_INT(c.bos_id, -1);
    CHECK_EQ_INT(c.eos_id, -1);
    CHECK_EQ_STR(c.torch_dtype, "");
    /* Qwen2: q/k/v bias implied; sliding_window only with use_sliding_window. */
    REQUIRE(sq_model_config_from_json(&c,
                                      "{\"model_type\": \"qwen2\", " BASE ", \"sliding_window\": 4096, "
                                      "\"use_sliding_window\": false, \"eos_token_id\": 151643}",
                                      "q.json", &e) == 0);
    CHECK_EQ_INT(c.attn_bias, 1);
    CHECK_EQ_INT(c.sliding_window, 0);
    CHECK_EQ_INT(c.max_seq_len, 32768);
    CHECK_EQ_INT(c.eos_id, 151643);
    REQUIRE(sq_model_config_from_json(&c,
                                      "{\"model_type\": \"qwen2\", " BASE ", \"sliding_window\": 4096, "
                                      "\"use_sliding_window\": true}",
                                      "q.json", &e) == 0);
    CHECK_EQ_INT(c.sliding_window, 4096);
    /* Mistral: a 4096 window unless null. */
    REQUIRE(sq_model_config_from_json(&c,
                                      "{\"model_type\": \"mistral\", " BASE ", \"num_key_value_heads\": 2}",
                                      "m.json", &e) == 0);
    CHECK_EQ_INT(c.sliding_window, 4096);
    CHECK_EQ_INT(c.n_kv_heads, 2);
    REQUIRE(sq_model_config_from_json(&c, "{\"model_type\": \"mistral\", " BASE ", \"sliding_window\": null}",
                                      "m.json", &e) == 0);
    CHECK_EQ_INT(c.sliding_window, 0);
    /* No model_type: the architectures list decides. */
    REQUIRE(sq_model_config_from_json(&c, "{\"architectures\": [\"Qwen2ForCausalLM\"], " BASE "}", "a.json",
                                      &e) == 0);
    CHECK_EQ_STR(c.arch, "qwen2");
}

SQ_TEST(config_rope_eos_dtype_variants) {
    sq_model_config c;
    sq_err e;
    /* Llama 3 style: eos list, rope_scaling with "rope_type", explicit head_dim, bias. */
    REQUIRE(
        sq_model_config_from_json(&c,
                                  "{\"model_type\": \"llama\", " BASE ", \"head_dim\": 64, "
                                  "\"attention_bias\": true, \"eos_token_id\": [128001, 128008, 128009], "
                                  "\"bos_token_id\": 128000, \"rope_theta\": 500000.0, \"rope_scaling\": "
                                  "{\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, "
                                  "\"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192}, "
                                  "\"torch_dtype\": \"bfloat16\", \"tie_word_embeddings\": true}",
                                  "l3.json", &e) == 0);
    CHECK_EQ_INT(c.head_dim, 64);
    CHECK_EQ_INT(c.attn_bias, 1);
    CHECK_EQ_INT(c.eos_id, 128001);
    CHECK_EQ_INT(c.n_eos, 3);
    CHECK_EQ_INT(c.eos_ids[2], 128009);
    CHECK_EQ_INT(c.bos_id, 128000);
    CHECK(c.rope_theta == 500000.0f);
    CHECK_EQ_INT(c.rope_scaling, SQ_ROPE_LLAMA3);
    CHECK(c.rope_factor == 8.0f && c.rope_low_freq_factor == 1.0f && c.rope_high_freq_factor == 4.0f);
    CHECK_EQ_INT(c.rope_original_max_pos, 8192);
    CHECK_EQ_STR(c.torch_dtype, "bfloat16");
    CHECK_EQ_INT(c.tie_embeddings, 1);
    /* Older spelling "type", and transformers 5's rope_parameters + dtype. */
    REQUIRE(sq_model_config_from_json(&c,
                                      "{\"model_type\": \"llama\", " BASE ", \"rope_scaling\": {\"type\": "
                                      "\"linear\", \"factor\": 2.0}}",
                                      "lin.json", &e) == 0);
    CHECK_EQ_INT(c.rope_scaling, SQ_ROPE_LINEAR);
    CHECK(c.rope_factor == 2.0f);
    REQUIRE(
        sq_model_config_from_json(&c,
                                  "{\"model_type\": \"llama\", " BASE ", \"dtype\": \"float16\", "
                                  "\"rope_parameters\": {\"rope_type\": \"yarn\", \"rope_theta\": 1000000.0, "
                                  "\"factor\": 4.0, \"original_max_position_embeddings\": 32768}}",
                                  "t5.json", &e) == 0);
    CHECK_EQ_INT(c.rope_scaling, SQ_ROPE_YARN);
    CHECK(c.rope_theta == 1000000.0f);
    CHECK_EQ_INT(c.rope_original_max_pos, 32768);
    CHECK_EQ_STR(c.torch_dtype, "float16");
    REQUIRE(sq_model_config_from_json(&c,
                                      "{\"model_type\": \"llama\", " BASE ", \"rope_scaling\": {\"type\": "
                                      "\"dynamic\", \"factor\": 2.0}}",
                                      "dyn.json", &e) == 0);
    CHECK_EQ_INT(c.rope_scaling, SQ_ROPE_DYNAMIC);
    REQUIRE(sq_model_config_from_json(&c,
                                      "{\"model_type\": \"llama\", " BASE ", \"rope_parameters\": "
                                      "{\"rope_type\": \"default\", \"rope_theta\": 10000.0}}",
                                      "def.json", &e) == 0);
    CHECK_EQ_INT(c.rope_scaling, SQ_ROPE_NONE);
}

SQ_TEST(config_errors_name_the_field) {
    sq_model_config c;
    sq_err e;
    CHECK_EQ_INT(
        sq_model_config_from_json(&c, "{\"model_type\": \"llama\", \"hidden_size\": 64}", "x.json", &e),
        SQ_EPARSE);
    CHECK(strstr(e.msg, "x.json") && strstr(e.msg, "vocab_size"));
    CHECK_EQ_INT(sq_model_config_from_json(&c, "{\"model_type\": \"gpt2\", " BASE "}", "x.json", &e),
                 SQ_EUNSUP);
    CHECK(strstr(e.msg, "gpt2") != NULL);
    CHECK_EQ_INT(sq_model_config_from_json(
                     &c, "{\"model_type\": \"llama\", " BASE ", \"num_key_value_heads\": 3}", "x.json", &e),
                 SQ_EINVAL);
    CHECK(strstr(e.msg, "num_key_value_heads") != NULL);
    CHECK_EQ_INT(
        sq_model_config_from_json(
            &c, "{\"model_type\": \"llama\", \"vocab_size\": 10, \"hidden_size\": \"64\"}", "x.json", &e),
        SQ_EPARSE);
    CHECK_EQ_INT(sq_model_config_from_json(&c,
                                           "{\"model_type\": \"llama\", " BASE
                                           ", \"rope_scaling\": {\"type\": "
                                           "\"longrope\"}}",
                                           "x.json", &e),
                 SQ_EUNSUP);
    CHECK_EQ_INT(sq_model_config_from_json(&c,
                                           "{\"model_type\": \"llama\", " BASE
                                           ", \"rope_scaling\": {\"type\": "
                                           "\"llama3\", \"factor\": 8.0}}",
                                           "x.json", &e),
                 SQ_EINVAL);
    CHECK_EQ_INT(sq_model_config_from_json(&c, "{\"model_type\": ", "broken.json", &e), SQ_EPARSE);
    CHECK(strstr(e.msg, "broken.json: offset ") != NULL);
    CHECK_EQ_INT(sq_model_config_load(&c, "/nonexistent/config.json", &e), SQ_EIO);
    /* Token ids must be ids; dtype names must be names (they are written back verbatim). */
    CHECK_EQ_INT(sq_model_config_from_json(&c, "{\"model_type\": \"llama\", " BASE ", \"bos_token_id\": -3}",
                                           "x.json", &e),
                 SQ_EPARSE);
    CHECK_EQ_INT(sq_model_config_from_json(
                     &c, "{\"model_type\": \"llama\", " BASE ", \"eos_token_id\": [1, 1e30]}", "x.json", &e),
                 SQ_EPARSE);
    CHECK_EQ_INT(sq_model_config_from_json(
                     &c, "{\"model_type\": \"llama\", " BASE ", \"torch_dtype\": \"a\\\"b\"}", "x.json", &e),
                 SQ_EPARSE);
    /* Mistral ignores attention_bias (the class has none); a default rope keeps factor 1. */
    REQUIRE(sq_model_config_from_json(&c,
                                      "{\"model_type\": \"mistral\", " BASE ", \"attention_bias\": true, "
                                      "\"rope_scaling\": {\"rope_type\": \"default\", \"factor\": 9.0}}",
                                      "x.json", &e) == 0);
    CHECK_EQ_INT(c.attn_bias, 0);
    CHECK(c.rope_factor == 1.0f);
}

SQ_TEST(config_writer_round_trips) {
    static const char *cases[] = {
        "{\"model_type\": \"llama\", " BASE
        ", \"head_dim\": 64, \"num_key_value_heads\": 2, \"eos_token_id\": "
        "[5, 6], \"bos_token_id\": 4, \"rope_theta\": 500000.0, \"rms_norm_eps\": 1e-05, \"rope_scaling\": "
        "{\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
        "\"original_max_position_embeddings\": 8192}, \"torch_dtype\": \"bfloat16\", "
        "\"tie_word_embeddings\": true}",
        "{\"model_type\": \"qwen2\", " BASE ", \"use_sliding_window\": true, \"sliding_window\": 1024, "
        "\"eos_token_id\": 3, \"max_position_embeddings\": 4096, \"rope_scaling\": {\"type\": \"yarn\", "
        "\"factor\": 4.0, \"original_max_position_embeddings\": 1024}}",
        "{\"model_type\": \"mistral\", " BASE
        ", \"sliding_window\": null, \"rope_scaling\": {\"type\": \"linear\", "
        "\"factor\": 2.5}, \"rms_norm_eps\": 3e-7}",
    };
    for (size_t i = 0; i < SQ_ARRAY_LEN(cases); i++) {
        sq_model_config a, b;
        sq_err e;
        REQUIRE(sq_model_config_from_json(&a, cases[i], "in.json", &e) == 0);
        sq_buf out = {0};
        REQUIRE(sq_model_config_to_json(&a, &out) == 0);
        int rc = sq_model_config_from_json(&b, out.data, "out.json", &e);
        CHECKF(rc == 0, "%s\n%s", e.msg, out.data);
        CHECKF(memcmp(&a, &b, sizeof a) == 0, "case %zu differs after a round trip:\n%s", i, out.data);
        sq_buf_free(&out);
    }
    /* Saved into a folder and loaded back from it. */
    {
        sq_model_config a, b;
        sq_err e2;
        REQUIRE(sq_model_config_from_json(&a, cases[0], "in.json", &e2) == 0);
        const char *dir = sq_test_tmpdir();
        REQUIRE(sq_model_config_save(&a, dir, &e2) == 0);
        REQUIRE(sq_model_config_load(&b, dir, &e2) == 0);
        CHECK(memcmp(&a, &b, sizeof a) == 0);
    }
    /* A Qwen2 without bias cannot be expressed. */
    sq_model_config c;
    sq_err e;
    REQUIRE(sq_model_config_from_json(&c, "{\"model_type\": \"qwen2\", " BASE "}", "q.json", &e) == 0);
    c.attn_bias = 0;
    sq_buf out = {0};
    CHECK_EQ_INT(sq_model_config_to_json(&c, &out), SQ_EUNSUP);
    sq_buf_free(&out);
    CHECK_EQ_INT(sq_model_config_save(&c, sq_test_tmpdir(), &e), SQ_EUNSUP);
    CHECK(strstr(e.msg, "qwen2") != NULL);
}
