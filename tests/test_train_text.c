/* train: text records become prompt + target token ids with the loss on the target only;
 * world-score counts answers and well-formed questions. */
#include <stdlib.h>

#include "scalequest/chat_template.h"
#include "scalequest/train.h"
#include "scalequest/world.h"
#include "test.h"

static sq_tokenizer *world_tokenizer_with(const char **special, int n_special) {
    sq_buf corpus = {0};
    sq_world_opts o;
    sq_world_opts_default(&o);
    for (int i = 0; i < 200; i++) {
        sq_world_problem p;
        if (sq_world_generate(&o, 1, (uint64_t)i, &p, NULL)) break;
        sq_buf_printf(&corpus, "%s\n%s\n\n", p.query, p.response);
    }
    sq_tok_train_opts to = {.vocab_size = 400, .min_frequency = 2, .special = special, .n_special = n_special};
    sq_tokenizer *t = NULL;
    sq_err e;
    if (sq_tok_train(corpus.data, corpus.len, &to, &t, &e)) t = NULL;
    sq_buf_free(&corpus);
    return t;
}

static sq_tokenizer *world_tokenizer(void) {
    static const char *special[] = {"<|endoftext|>"};
    return world_tokenizer_with(special, 1);
}

static char *decode_masked(const sq_tokenizer *t, const sq_texample *x, int want, int drop_last) {
    int32_t ids[512];
    int n = 0;
    for (int i = 0; i < x->n - drop_last; i++)
        if (x->loss[i] == want) ids[n++] = x->ids[i];
    char *s = NULL;
    size_t len;
    if (sq_tok_decode(t, ids, (size_t)n, 0, &s, &len, NULL)) return NULL;
    return s;
}

SQ_TEST(text_records_mask_the_prompt) {
    sq_tokenizer *t = world_tokenizer();
    REQUIRE(t);
    char *path = sq_path_join(sq_test_tmpdir(), "d.jsonl");
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    fprintf(f, "{\"query\": \"Mia has 3 apples. She buys 4 more apples. How many apples does Mia have now?\", "
               "\"response\": \"Mia starts with 3 apples.\\nThe answer is 7.\\n\\\\boxed{7}\"}\n");
    fclose(f);
    sq_text_format fmt;
    sq_text_format_default(&fmt);
    sq_tdata d;
    sq_err e;
    REQUIRE(sq_tdata_load_text(&d, path, SQ_TRAIN_SFT, t, &fmt, &e) == 0);
    REQUIRE(d.n == 1);
    int32_t eos = sq_tok_find(t, "<|endoftext|>", 13);
    CHECK(eos >= 0 && d.ex[0].ids[d.ex[0].n - 1] == eos && d.ex[0].loss[d.ex[0].n - 1] == 1);
    char *prompt = decode_masked(t, &d.ex[0], 0, 0), *resp = decode_masked(t, &d.ex[0], 1, 1);
    CHECK_EQ_STR(prompt, "Question: Mia has 3 apples. She buys 4 more apples. How many apples does Mia have now?\nAnswer:\n");
    CHECK_EQ_STR(resp, "Mia starts with 3 apples.\nThe answer is 7.\n\\boxed{7}");
    free(prompt);
    free(resp);
    sq_tdata_free(&d);
    REQUIRE(sq_tdata_load_text(&d, path, SQ_TRAIN_QFT, t, &fmt, &e) == 0);
    prompt = decode_masked(t, &d.ex[0], 0, 0);
    resp = decode_masked(t, &d.ex[0], 1, 1);
    CHECK_EQ_STR(prompt, "Question:");
    CHECK_EQ_STR(resp, " Mia has 3 apples. She buys 4 more apples. How many apples does Mia have now?");
    free(prompt);
    free(resp);
    sq_tdata_free(&d);
    /* A record without the fields the mode needs is an error naming file:line. */
    CHECK(sq_tdata_load_text(&d, path, SQ_TRAIN_DPO, t, &fmt, &e) == SQ_EPARSE);
    CHECK(strstr(e.msg, "d.jsonl:1") != NULL);
    free(path);
    sq_tok_free(t);
}

static int count_id(const sq_texample *x, int32_t id) {
    int n = 0;
    for (int i = 0; i < x->n; i++) n += x->ids[i] == id;
    return n;
}

SQ_TEST(chat_template_records) {
    static const char *special[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    sq_tokenizer *t = world_tokenizer_with(special, 3);
    REQUIRE(t);
    int32_t im_start = sq_tok_find(t, "<|im_start|>", 12), im_end = sq_tok_find(t, "<|im_end|>", 10);
    REQUIRE(im_start >= 0 && im_end >= 0);
    char *path = sq_path_join(sq_test_tmpdir(), "chat.jsonl");
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    /* a "<|im_end|>" written in a record: inside the rendered prompt it is the token, as
     * transformers tokenizes a rendered chat; in a target (the question QFT learns) it is text */
    fprintf(f, "{\"query\": \"Mia has 3 apples. What is <|im_end|>?\", \"response\": \"The answer is 3.\"}\n");
    fclose(f);
    sq_chat_template *chat = NULL;
    sq_err e;
    REQUIRE(sq_chat_template_builtin(&chat, "chatml", &e) == 0);
    sq_text_format fmt;
    sq_text_format_default(&fmt);
    fmt.chat = chat;
    sq_tdata d;
    REQUIRE(sq_tdata_load_text(&d, path, SQ_TRAIN_SFT, t, &fmt, &e) == 0);
    REQUIRE(d.n == 1);
    const sq_texample *x = &d.ex[0];
    CHECK(x->ids[x->n - 1] == im_end && x->loss[x->n - 1] == 1);
    CHECK_EQ_INT(count_id(x, im_start), 3); /* system, user, assistant turns */
    CHECK_EQ_INT(count_id(x, im_end), 4);   /* system, the query's own, user, and the one ending the response */
    char *prompt = decode_masked(t, x, 0, 0), *resp = decode_masked(t, x, 1, 1);
    CHECK_EQ_STR(prompt, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nMia has 3 apples. "
                         "What is <|im_end|>?<|im_end|>\n<|im_start|>assistant\n");
    CHECK_EQ_STR(resp, "The answer is 3.");
    free(prompt);
    free(resp);
    sq_tdata_free(&d);

    /* QFT: the bare user-turn prefix, then the question and the token that ends a user turn */
    REQUIRE(sq_tdata_load_text(&d, path, SQ_TRAIN_QFT, t, &fmt, &e) == 0);
    x = &d.ex[0];
    CHECK(x->ids[x->n - 1] == im_end && x->loss[x->n - 1] == 1);
    prompt = decode_masked(t, x, 0, 0);
    resp = decode_masked(t, x, 1, 1);
    CHECK_EQ_STR(prompt, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n");
    CHECK_EQ_STR(resp, "Mia has 3 apples. What is <|im_end|>?");
    CHECK_EQ_INT(count_id(x, im_end), 2); /* the system turn's and the one ending the question; the query's is text */
    free(prompt);
    free(resp);
    sq_tdata_free(&d);
    sq_chat_template_free(chat);

    /* DeepSeek closes a user turn with text, not a token: the question carries it */
    REQUIRE(sq_chat_template_builtin(&chat, "deepseek", &e) == 0);
    fmt.chat = chat;
    CHECK(sq_tdata_load_text(&d, path, SQ_TRAIN_SFT, t, &fmt, &e) == SQ_EINVAL); /* no EOS token in this vocabulary */
    CHECK(strstr(e.msg, "not one token") != NULL);
    sq_chat_template_free(chat);
    free(path);
    sq_tok_free(t);
}

SQ_TEST(world_score_counts) {
    const char *dir = sq_test_tmpdir();
    char *p = sq_path_join(dir, "g.jsonl");
    FILE *f = fopen(p, "w");
    REQUIRE(f);
    fprintf(f, "{\"id\": \"a\", \"answer\": \"7\", \"completions\": [\"... The answer is 7.\\n\\\\boxed{7}\"]}\n");
    fprintf(f, "{\"id\": \"b\", \"answer\": \"8\", \"completions\": [\"The answer is 9.\"]}\n");
    fprintf(f, "{\"id\": \"q\", \"completions\": [\" Mia has 3 apples. She buys 4 more apples. How many apples does Mia "
               "have now?\", \" Mia has 3 apples. She buys 4 more pears.\"]}\n");
    fclose(f);
    char *out = NULL;
    REQUIRE(sq_test_sh(&out, "%s world-score --in %s --mode solve --samples 0", sq_test_cli(), p) == 0);
    CHECK(out && strstr(out, "solver accuracy: 1/3 = 33.3%") != NULL);
    free(out);
    REQUIRE(sq_test_sh(&out, "%s world-score --in %s --mode questions --samples 0", sq_test_cli(), p) == 0);
    CHECK(out && strstr(out, "well-formed questions: 1/4") != NULL);
    free(out);
    REQUIRE(sq_test_sh(&out, "%s world --n 2 --format prompts", sq_test_cli()) == 0);
    CHECK(out && strstr(out, "\"prompt\":\"Question: ") && strstr(out, "\\nAnswer:\\n\""));
    free(out);
    free(p);
}
