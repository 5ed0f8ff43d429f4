/* Chat templates in C alone: the registry, recognition from Jinja sources and
 * tokenizer_config.json, rendering rules that are easy to get wrong, and the errors. The
 * byte-for-byte comparison with transformers is tests/peers/test_chat_template.py. */
#include <stdlib.h>

#include "scalequest/chat_template.h"
#include "scalequest/gguf.h"
#include "test.h"

static char *render(const sq_chat_template *t, const sq_chat_msg *m, int n, int gen) {
    sq_buf b = {0};
    sq_err e = {0};
    if (sq_chat_template_render(t, m, n, gen, &b, &e)) {
        sq_buf_free(&b);
        return NULL;
    }
    return b.data ? b.data : sq_strdup("");
}

SQ_TEST(builtin_registry) {
    static const char *const names[] = {"chatml", "qwen2", "deepseek", "llama3", "llama2", "mistral", "qwen-base"};
    for (size_t i = 0; i < SQ_ARRAY_LEN(names); i++) {
        sq_chat_template *t = NULL;
        sq_err e = {0};
        CHECKF(sq_chat_template_builtin(&t, names[i], &e) == 0, "%s: %s", names[i], e.msg);
        if (!t) continue;
        CHECK(t->user_prefix && t->user_prefix[0]);
        CHECK(t->n_user_stops > 0 && t->n_assistant_stops > 0);
        /* a rendered user turn starts with the bare user prefix */
        sq_chat_msg m = {"user", "Q?"};
        char *s = render(t, &m, 1, 0);
        char want[128];
        snprintf(want, sizeof want, "%sQ?", t->user_prefix);
        CHECKF(s && strstr(s, want), "%s: '%s' lacks '%s'", names[i], s ? s : "(null)", want);
        free(s);
        sq_chat_template_free(t);
    }
    sq_chat_template *t = NULL;
    sq_err e = {0};
    CHECK(sq_chat_template_builtin(&t, "vicuna", &e) == SQ_ENOTFOUND);
    CHECK(t == NULL && strstr(e.msg, "vicuna"));
}

SQ_TEST(chatml_default_system_and_generation_prompt) {
    sq_chat_template *t = NULL;
    sq_err e = {0};
    REQUIRE(sq_chat_template_builtin(&t, "qwen2", &e) == 0);
    sq_chat_msg m[2] = {{"user", "2+2?"}, {"assistant", "4"}};
    char *s = render(t, m, 1, 1);
    CHECK_EQ_STR(s, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n"
                    "<|im_start|>assistant\n");
    free(s);
    sq_chat_msg sys[2] = {{"system", "S"}, {"user", "u"}};
    s = render(t, sys, 2, 0);
    CHECK_EQ_STR(s, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nu<|im_end|>\n");
    free(s);
    sq_chat_template_free(t);
}

SQ_TEST(detect_from_sources) {
    const char *qwen_math =
        "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + "
        "'<|im_end|>\\n' }}{%- else %}{{- '<|im_start|>system\\nPlease reason step by step, and put your final "
        "answer within \\\\boxed{}.<|im_end|>\\n' }}{%- endif %}{%- for message in messages %}{{- '<|im_start|>' + "
        "message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- endfor %}";
    sq_chat_template *t = NULL;
    sq_err e = {0};
    REQUIRE(sq_chat_template_detect(&t, qwen_math, NULL, NULL, "inline", &e) == 0);
    CHECK_EQ_INT(t->family, SQ_CHAT_CHATML);
    CHECK_EQ_STR(t->default_system, "Please reason step by step, and put your final answer within \\boxed{}.");
    sq_chat_template_free(t);

    const char *llama3 = "{% for message in messages %}{% set content = '<|start_header_id|>' + message['role'] + "
                         "'<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 "
                         "%}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}";
    REQUIRE(sq_chat_template_detect(&t, llama3, "<B>", NULL, "inline", &e) == 0);
    CHECK_EQ_INT(t->family, SQ_CHAT_LLAMA3);
    /* trim removes Unicode spaces too (U+3000, U+00A0), as Python's str.strip does */
    sq_chat_msg m = {"user", "\xe3\x80\x80 hi \xc2\xa0\n"};
    char *s = render(t, &m, 1, 0);
    CHECK_EQ_STR(s, "<B><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>");
    free(s);
    sq_chat_template_free(t);

    CHECK(sq_chat_template_detect(&t, "{% for m in messages %}<|user|>{{ m.content }}{% endfor %}", NULL, NULL,
                                  "mystery.jinja", &e) == SQ_EUNSUP);
    CHECK(t == NULL && strstr(e.msg, "mystery.jinja") && strstr(e.msg, "unrecognised"));
    CHECK(sq_chat_template_detect(&t, "", NULL, NULL, "empty.jinja", &e) == SQ_EINVAL);
}

SQ_TEST(llama2_roles_must_alternate) {
    sq_chat_template *t = NULL;
    sq_err e = {0};
    REQUIRE(sq_chat_template_builtin(&t, "llama2", &e) == 0);
    sq_chat_msg m[3] = {{"system", "Sys"}, {"user", " hi "}, {"assistant", " yo "}};
    char *s = render(t, m, 3, 1);
    /* strip() applies to the whole turn, so the space after the system block stays */
    CHECK_EQ_STR(s, "<s>[INST] <<SYS>>\nSys\n<</SYS>>\n\n hi [/INST] yo </s>");
    free(s);
    sq_chat_msg bad[2] = {{"user", "a"}, {"user", "b"}};
    sq_buf b = {0};
    CHECK(sq_chat_template_render(t, bad, 2, 1, &b, &e) == SQ_EINVAL);
    CHECK(strstr(e.msg, "alternate") != NULL);
    sq_buf_free(&b);
    sq_chat_template_free(t);
}

SQ_TEST(tokenizer_config_forms) {
    const char *dir = sq_test_tmpdir();
    char *p = sq_path_join(dir, "tokenizer_config.json");
    const char *cfg = "{\"bos_token\": {\"content\": \"<BOS>\"}, \"eos_token\": \"<EOS>\", \"chat_template\": ["
                      "{\"name\": \"tool_use\", \"template\": \"x\"}, {\"name\": \"default\", \"template\": "
                      "\"{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ 'User: ' + "
                      "message['content'] + '\\\\n\\\\n' }}{% elif message['role'] == 'assistant' %}{{ 'Assistant: ' + "
                      "message['content'] + eos_token }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ "
                      "'Assistant:' }}{% endif %}\"}]}";
    sq_err e = {0};
    REQUIRE(sq_file_write_atomic(p, cfg, strlen(cfg), &e) == 0);
    sq_chat_template *t = NULL;
    /* a model folder names its tokenizer_config.json */
    REQUIRE(sq_chat_template_open(&t, dir, &e) == 0);
    CHECK_EQ_INT(t->family, SQ_CHAT_DEEPSEEK);
    CHECK_EQ_STR(t->bos, "<BOS>");
    CHECK_EQ_STR(t->eos, "<EOS>");
    sq_chat_msg m[2] = {{"user", "q"}, {"assistant", "a"}};
    char *s = render(t, m, 2, 0);
    CHECK_EQ_STR(s, "<BOS>User: q\n\nAssistant: a<EOS>");
    free(s);
    sq_chat_template_free(t);
    const char *broken = "{\"chat_template\": ";
    REQUIRE(sq_file_write_atomic(p, broken, strlen(broken), &e) == 0);
    CHECK(sq_chat_template_from_tokenizer_config(&t, p, &e) == SQ_EPARSE);
    CHECK(strstr(e.msg, "tokenizer_config.json") != NULL);
    const char *none = "{\"eos_token\": \"</s>\"}";
    REQUIRE(sq_file_write_atomic(p, none, strlen(none), &e) == 0);
    CHECK(sq_chat_template_from_tokenizer_config(&t, p, &e) == SQ_ENOTFOUND);
    CHECK(strstr(e.msg, "chat_template") != NULL);
    free(p);
}

/* ---- GGUF metadata: a minimal v3 file with a template and a token table ---------------- */

static void put_u32(sq_buf *b, uint32_t v) { sq_buf_append(b, &v, 4); }
static void put_u64(sq_buf *b, uint64_t v) { sq_buf_append(b, &v, 8); }
static void put_str(sq_buf *b, const char *s) {
    put_u64(b, strlen(s));
    sq_buf_append(b, s, strlen(s));
}

SQ_TEST(gguf_metadata) {
    const char *tpl = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
                      "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
                      "{% endif %}";
    sq_buf b = {0};
    sq_buf_append(&b, "GGUF", 4);
    put_u32(&b, 3);
    put_u64(&b, 0); /* tensors */
    put_u64(&b, 3); /* key-value pairs */
    put_str(&b, "tokenizer.chat_template");
    put_u32(&b, SQ_GGUF_STRING);
    put_str(&b, tpl);
    put_str(&b, "tokenizer.ggml.tokens");
    put_u32(&b, SQ_GGUF_ARRAY);
    put_u32(&b, SQ_GGUF_STRING);
    put_u64(&b, 3);
    put_str(&b, "<unk>");
    put_str(&b, "<|endoftext|>");
    put_str(&b, "<|im_end|>");
    put_str(&b, "tokenizer.ggml.eos_token_id");
    put_u32(&b, SQ_GGUF_U32);
    put_u32(&b, 2);
    char *path = sq_path_join(sq_test_tmpdir(), "chat.gguf");
    sq_err e = {0};
    REQUIRE(sq_file_write_atomic(path, b.data, b.len, &e) == 0);
    sq_chat_template *t = NULL;
    CHECKF(sq_chat_template_open(&t, path, &e) == 0, "%s", e.msg);
    if (t) {
        CHECK_EQ_INT(t->family, SQ_CHAT_CHATML);
        CHECK(t->default_system == NULL); /* this template has none */
        CHECK_EQ_STR(t->eos, "<|im_end|>");
        sq_chat_msg m = {"user", "hi"};
        char *s = render(t, &m, 1, 1);
        CHECK_EQ_STR(s, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
        free(s);
        sq_chat_template_free(t);
    }
    /* a GGUF without a template (stories260K has none) is a clear error, not a guess */
    const char *plain = sq_test_asset("models/stories260K.gguf");
    if (plain) {
        CHECK(sq_chat_template_open(&t, plain, &e) == SQ_ENOTFOUND);
        CHECK(strstr(e.msg, "tokenizer.chat_template") && strstr(e.msg, "stories260K.gguf"));
    }
    free(path);
    sq_buf_free(&b);
}

SQ_TEST(question_prefix_of_each_family) {
    static const char *const cases[][2] = {
        {"chatml", "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"},
        {"llama3", "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"},
        {"deepseek", "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>User: "},
        {"mistral", "<s>[INST] "},
    };
    for (size_t i = 0; i < SQ_ARRAY_LEN(cases); i++) {
        sq_chat_template *t = NULL;
        sq_err e = {0};
        REQUIRE(sq_chat_template_builtin(&t, cases[i][0], &e) == 0);
        sq_buf b = {0};
        CHECKF(sq_chat_template_question_prefix(t, &b, &e) == 0, "%s: %s", cases[i][0], e.msg);
        CHECKF(b.data && !strcmp(b.data, cases[i][1]), "%s: prefix '%s'", cases[i][0], b.data ? b.data : "(null)");
        /* the prefix followed by a question is the rendered user turn's beginning */
        sq_chat_msg m = {"user", "Q?"};
        char *s = render(t, &m, 1, 0);
        CHECK(s && b.data && !strncmp(s, b.data, b.len) && !strncmp(s + b.len, "Q?", 2));
        free(s);
        sq_buf_free(&b);
        sq_chat_template_free(t);
    }
}

/* A template written into a model folder comes back as the same template. */
SQ_TEST(config_json_round_trip) {
    sq_chat_template *t = NULL, *back = NULL;
    sq_err e = {0};
    REQUIRE(sq_chat_template_builtin(&t, "chatml", &e) == 0);
    REQUIRE(t->source != NULL);
    sq_buf cfg = {0};
    REQUIRE(sq_chat_template_config_json(t, &cfg, &e) == 0);
    char *path = sq_path_join(sq_test_tmpdir(), "tokenizer_config.json");
    REQUIRE(sq_file_write_atomic(path, cfg.data, cfg.len, &e) == 0);
    CHECKF(sq_chat_template_from_tokenizer_config(&back, path, &e) == 0, "%s", e.msg);
    if (back) {
        CHECK_EQ_STR(back->name, "chatml");
        CHECK(back->default_system && !strcmp(back->default_system, t->default_system));
        CHECK_EQ_STR(back->bos, t->bos);
        CHECK_EQ_STR(back->eos, t->eos);
        CHECK_EQ_STR(back->source, t->source);
        sq_chat_msg m[3] = {{"user", "a 'quoted' \\ line\nand more"}, {"assistant", "b"}, {"user", "c"}};
        char *x = render(t, m, 3, 1), *y = render(back, m, 3, 1);
        CHECK(x && y && !strcmp(x, y));
        free(x);
        free(y);
    }
    sq_chat_template_free(back);
    sq_chat_template_free(t);
    sq_buf_free(&cfg);
    /* a built-in whose Jinja source we do not have is refused by name, not written wrong */
    REQUIRE(sq_chat_template_builtin(&t, "llama3", &e) == 0);
    CHECK(sq_chat_template_config_json(t, &cfg, &e) == SQ_EUNSUP && strstr(e.msg, "llama3"));
    sq_chat_template_free(t);
    sq_buf_free(&cfg);
    free(path);
}

/* A folder whose template is in chat_template.jinja (transformers >= 4.43 may, v5 always does,
 * save it there) has that template, with EOS from its tokenizer_config.json. */
SQ_TEST(folder_with_chat_template_jinja) {
    char dir[700];
    snprintf(dir, sizeof dir, "%s", sq_test_tmpdir());
    char *j = sq_path_join(dir, "chat_template.jinja"), *c = sq_path_join(dir, "tokenizer_config.json");
    const char *src = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
                      "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
                      "{% endif %}";
    const char *cfg = "{\"eos_token\": \"<|im_end|>\", \"tokenizer_class\": \"PreTrainedTokenizerFast\"}";
    sq_err e;
    REQUIRE(sq_file_write_atomic(j, src, strlen(src), &e) == 0);
    REQUIRE(sq_file_write_atomic(c, cfg, strlen(cfg), &e) == 0);
    sq_chat_template *t = NULL;
    REQUIRE(sq_chat_template_open(&t, dir, &e) == 0);
    sq_chat_msg m[2] = {{"user", "Q"}, {"assistant", "R"}};
    sq_buf out = {0};
    REQUIRE(sq_chat_template_render(t, m, 2, 0, &out, &e) == 0);
    CHECK_EQ_STR(out.data, "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nR<|im_end|>\n");
    CHECK_EQ_STR(t->eos, "<|im_end|>");
    sq_buf_free(&out);
    sq_chat_template_free(t);
    free(j), free(c);
}
