/* train: text records become prompt + target token ids with the loss on the target only;
 * world-score counts answers and well-formed questions. */
#include <stdlib.h>

#include "scalequest/train.h"
#include "scalequest/world.h"
#include "test.h"

static sq_tokenizer *world_tokenizer(void) {
    sq_buf corpus = {0};
    sq_world_opts o;
    sq_world_opts_default(&o);
    for (int i = 0; i < 200; i++) {
        sq_world_problem p;
        if (sq_world_generate(&o, 1, (uint64_t)i, &p, NULL)) break;
        sq_buf_printf(&corpus, "%s\n%s\n\n", p.query, p.response);
    }
    const char *special[] = {"<|endoftext|>"};
    sq_tok_train_opts to = {.vocab_size = 400, .min_frequency = 2, .special = special, .n_special = 1};
    sq_tokenizer *t = NULL;
    sq_err e;
    if (sq_tok_train(corpus.data, corpus.len, &to, &t, &e)) t = NULL;
    sq_buf_free(&corpus);
    return t;
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
