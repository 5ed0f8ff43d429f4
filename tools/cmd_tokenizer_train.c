/* scalequest tokenizer-train: learn a byte-level BPE vocabulary and write tokenizer.json. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "scalequest/tokenizer.h"

static int cmd_tokenizer_train(int argc, char **argv) {
    const char *cmd = argv[0], *in = NULL, *out = NULL, *pattern = NULL;
    int64_t vocab = 0, min_freq = 2;
    sq_strlist special = {0};
    sq_opt opts[] = {
        {"in", SQ_OPT_STR, &in, "FILE", "training text (required)"},
        {"vocab-size", SQ_OPT_INT, &vocab, "N", "vocabulary size, bytes and special tokens included (required)"},
        {"out", SQ_OPT_STR, &out, "FILE", "tokenizer.json to write (required)"},
        {"special", SQ_OPT_LIST, &special, "TOKEN", "add a special token (repeatable), e.g. <|endoftext|>"},
        {"min-frequency", SQ_OPT_INT, &min_freq, "N", "merge only pairs seen at least N times (default 2)"},
        {"pattern", SQ_OPT_STR, &pattern, "REGEX", "pre-tokenizer regex (default: GPT-2's)"},
    };
    int npos;
    int rc = sq_cli_parse(argc, argv, "--in corpus.txt --vocab-size N --out tokenizer.json", opts,
                          (int)SQ_ARRAY_LEN(opts), NULL, 0, &npos);
    if (rc >= 0) return rc;
    if (!in || !out || vocab <= 0) return sq_cli_usage_error(cmd, "--in, --out and --vocab-size are required");
    if (vocab > (1 << 22)) return sq_cli_usage_error(cmd, "--vocab-size %lld is too large", (long long)vocab);
    sq_err e;
    char *text;
    size_t len;
    if (sq_file_read_all(in, &text, &len, &e)) return sq_cli_fail(cmd, "%s", e.msg);
    sq_tok_train_opts o = {.vocab_size = (int32_t)vocab,
                           .min_frequency = (int32_t)min_freq,
                           .special = special.items,
                           .n_special = special.n,
                           .pattern = pattern};
    sq_tokenizer *t;
    rc = sq_tok_train(text, len, &o, &t, &e);
    free(text);
    if (rc) return sq_cli_fail(cmd, "%s", e.msg);
    int32_t got = sq_tok_vocab_size(t);
    rc = sq_tok_save_json(t, out, &e);
    sq_tok_free(t);
    if (rc) return sq_cli_fail(cmd, "%s", e.msg);
    if (!sq_progress_is_quiet())
        fprintf(stderr, "scalequest: %s: wrote %s (%d tokens%s)\n", cmd, out, got,
                got < vocab ? "; the text had no more pairs worth merging" : "");
    return SQ_EXIT_OK;
}

SQ_COMMAND(tokenizer_train, "tokenizer-train", "train a byte-level BPE tokenizer and write tokenizer.json",
           cmd_tokenizer_train);
