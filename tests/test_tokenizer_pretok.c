/* GGUF pre-tokenizers: the pieces llama.cpp's splitting gives, on texts that show where it
 * differs from a Unicode regex engine (letters without case outside ASCII, \s as ASCII plus
 * U+000B, empty matches that cut, digit grouping that carries the text before a number),
 * the name table, and refusal of unknown names. The same splits are checked against
 * llama.cpp itself in tests/peers/test_tokenizer_llamacpp.py. */
#include <stdlib.h>
#include <string.h>

#include "../src/text/tok_internal.h"
#include "scalequest/base.h"
#include "test.h"

/* The pieces of text under pre-tokenizer `name`, joined by '|'; malloc'd. */
static char *pieces(const char *name, const char *text) {
    const tok_gguf_pre *p = tok_gguf_pre_find(name);
    if (!p) return sq_strdup("(unknown)");
    sq_tokenizer *t = tok_new();
    sq_err e;
    tok_spans sp = {0};
    sq_buf out = {0};
    if (tok_gguf_pre_apply(t, p, &e) || tok_pretokenize(t, text, strlen(text), &sp, &e)) {
        sq_buf_printf(&out, "(error: %s)", e.msg);
    } else {
        for (size_t i = 0; i < sp.n; i += 2) {
            if (i) sq_buf_puts(&out, "|");
            sq_buf_append(&out, text + sp.v[i], sp.v[i + 1]);
        }
        sq_buf_puts(&out, "");
    }
    free(sp.v);
    sq_tok_free(t);
    return out.data;
}

#define SPLITS(name, text, want)                                                                   \
    do {                                                                                           \
        char *_g = pieces(name, text);                                                             \
        CHECKF(_g && !strcmp(_g, want), "%s on \"%s\": got \"%s\", want \"%s\"", name, text, _g, want); \
        free(_g);                                                                                  \
    } while (0)

SQ_TEST(smollm_splits_every_digit) {
    SPLITS("smollm", "In 2024, x=12.5", "In| |2|0|2|4|,| x|=|1|2|.|5");
    SPLITS("starcoder", "a  b", "a| | b");
}

SQ_TEST(default_when_the_key_is_missing) {
    /* llama.cpp's fallback: punctuation runs, GPT-2's pattern, numbers, then threes */
    SPLITS("", "Hello, world!! 12345", "Hello|,| world|!!| |123|45");
    SPLITS("default", "Hello, world!! 12345", "Hello|,| world|!!| |123|45");
}

SQ_TEST(gpt2_non_ascii_space_is_not_a_space_prefix) {
    SPLITS("gpt-2", "a\xE3\x80\x80\xE3\x80\x80" "b c", "a|\xE3\x80\x80|\xE3\x80\x80|b| c");
    SPLITS("gpt-2", "x  \ty", "x|  |\t|y");
}

SQ_TEST(llama3_and_qwen2_numbers) {
    SPLITS("llama-bpe", "I'LL pay 1234567", "I|'LL| pay| |123|456|7");
    SPLITS("qwen2", "x=1234", "x|=|1|2|3|4");
}

SQ_TEST(empty_matches_cut_superbpe) {
    SPLITS("superbpe", "1234567 ab", "1|234|567| ab");
    SPLITS("superbpe", "123", "123");
}

SQ_TEST(digit_groups_carry_the_text_before) {
    /* afmoe's first step glues "ab" to the first group; its later steps cut it off again */
    SPLITS("afmoe", "ab1234cd", "ab|1|234|cd");
    SPLITS("tiny_aya", "pay 1234567 now", "pay| |1|234|567| now");
}

SQ_TEST(tekken_has_no_case_outside_ascii) {
    /* outside ASCII a letter is both upper and lower case, so "ÉCOLE" splits after É */
    SPLITS("tekken", "HelloWorld \xC3\x89" "COLE", "Hello|World| \xC3\x89|COLE");
}

SQ_TEST(kimi_k2_han_runs) {
    SPLITS("kimi-k2", "\xE4\xB8\xAD\xE6\x96\x87" "abc's 12345", "\xE4\xB8\xAD\xE6\x96\x87|abc's| |123|45");
}

SQ_TEST(code_point_patterns) {
    /* poro's class has no \p{..}: it runs over code points */
    SPLITS("bloom", "Hello, world. \xE4\xBD\xA0\xE5\xA5\xBD\xE3\x80\x82",
           "Hello|,| world|.| \xE4\xBD\xA0\xE5\xA5\xBD|\xE3\x80\x82");
    SPLITS("falcon", "1234567", "123|456|7");
    SPLITS("deepseek-v3", "abc123456", "abc|123|456");
}

SQ_TEST(names_table) {
    size_t n;
    const tok_gguf_pre *all = tok_gguf_pre_all(&n);
    CHECK(n >= 30);
    /* every pattern compiles */
    for (size_t i = 0; i < n; i++) {
        sq_tokenizer *t = tok_new();
        sq_err e;
        CHECKF(tok_gguf_pre_apply(t, &all[i], &e) == 0, "%s: %s", all[i].names, e.msg);
        sq_tok_free(t);
    }
    const char *known[] = {"smollm", "deepseek-coder", "deepseek-v3", "falcon", "mpt", "starcoder", "refact",
                           "command-r", "olmo", "dbrx", "smaug-bpe", "poro-chat", "chatglm-bpe", "viking", "jais",
                           "tekken", "codeshell", "bloom", "gpt3-finnish", "exaone", "chameleon", "minerva-7b",
                           "gpt-4o", "superbpe", "trillion", "bailingmoe", "seed-coder", "kimi-k2", "llama4",
                           "qwen35", "afmoe", "tiny_aya", "glm4", "minimax-m2", "gemma4", "laguna", "exaone-moe"};
    for (size_t i = 0; i < SQ_ARRAY_LEN(known); i++) CHECKF(tok_gguf_pre_find(known[i]), "%s unknown", known[i]);
    CHECK(tok_gguf_pre_find("gpt2") == NULL); /* llama.cpp spells it gpt-2 */
    CHECK(tok_gguf_pre_find("no-such-pre") == NULL);
    CHECK(tok_gguf_pre_find("llama3")->flags & TOKPRE_IGNORE_MERGES);
    CHECK(!(tok_gguf_pre_find("dbrx")->flags & TOKPRE_IGNORE_MERGES));
}

SQ_TEST(bad_pattern_is_refused) {
    sq_tokenizer *t = tok_new();
    sq_err e;
    CHECK(tok_add_llama_split(t, "\\p{Q}+", &e) == SQ_EUNSUP);
    CHECK(strstr(e.msg, "\\p{Q}") != NULL);
    CHECK(tok_add_llama_split(t, "(unclosed", &e) == SQ_EUNSUP);
    CHECK(strstr(e.msg, "offset") != NULL);
    sq_tok_free(t);
}
