/* libFuzzer target: the encoder on arbitrary bytes. The first byte picks a tokenizer and the
 * flags; the rest is the text. Tokenizers: the assets' Llama-3 (byte-level, ignore_merges)
 * and Llama-2 (SentencePiece, score merging, byte fallback) when ../shared/assets is there
 * (or SQ_ASSETS), and always one trained here. Checks: no crash, and for byte-level
 * tokenizers decode(encode(x)) == x whenever x is valid UTF-8 without special tokens.
 * With the first byte's top bit set, the second byte picks one of the GGUF pre-tokenizers
 * (llama.cpp's table): its split of valid UTF-8 must cover the text exactly, in order, with
 * no empty piece; and with the assets, the GPT-2 GGUF vocabulary re-split by that
 * pre-tokenizer must encode and decode the text back. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/text/tok_internal.h"
#include "scalequest/tokenizer.h"

static sq_tokenizer *toks[3];
static int lossless[3];
static int ntoks;
static sq_tokenizer *pre_only[64], *pre_full[64];
static int npre;

static int valid_utf8(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t k = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
        if (!k || i + k > n) return 0;
        for (size_t j = 1; j < k; j++)
            if ((s[i + j] & 0xC0) != 0x80) return 0;
        if (k == 3 && ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] > 0x9F))) return 0;
        if (k == 4 && ((c == 0xF0 && s[i + 1] < 0x90) || (c == 0xF4 && s[i + 1] > 0x8F))) return 0;
        i += k;
    }
    return 1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *root = getenv("SQ_ASSETS") ? getenv("SQ_ASSETS") : "../shared/assets";
    char p[1024];
    sq_err e;
    snprintf(p, sizeof p, "%s/vocab/llama3", root);
    if (!sq_tok_load(&toks[ntoks], p, &e)) lossless[ntoks++] = 1;
    snprintf(p, sizeof p, "%s/vocab/ggml-vocab-llama-spm.gguf", root);
    if (!sq_tok_load(&toks[ntoks], p, &e)) lossless[ntoks++] = 0;
    static const char corpus[] = "the cat sat on the mat; 12 + 30 = 42. \\frac{a}{b} 数学 🦙 the the cat\n";
    const char *special[] = {"<|endoftext|>"};
    sq_tok_train_opts o = {.vocab_size = 300, .min_frequency = 1, .special = special, .n_special = 1};
    if (!sq_tok_train(corpus, sizeof corpus - 1, &o, &toks[ntoks], &e)) lossless[ntoks++] = 1;
    size_t nrows;
    const tok_gguf_pre *rows = tok_gguf_pre_all(&nrows);
    snprintf(p, sizeof p, "%s/vocab/ggml-vocab-gpt-2.gguf", root);
    for (size_t i = 0; i < nrows && npre < 64; i++) {
        if (rows[i].flags & TOKPRE_RAW) continue; /* not for a byte-level vocabulary */
        sq_tokenizer *t = tok_new();
        if (tok_gguf_pre_apply(t, &rows[i], &e)) __builtin_trap(); /* every pattern must compile */
        pre_only[npre] = t;
        pre_full[npre] = NULL;
        if (!sq_tok_load(&t, p, &e)) {
            /* the same vocabulary, re-split by this pre-tokenizer */
            tok_steps_free(t);
            if (tok_gguf_pre_apply(t, &rows[i], &e)) __builtin_trap();
            pre_full[npre] = t;
        }
        npre++;
    }
    fprintf(stderr, "fuzz_tokenizer_encode: %d tokenizers, %d pre-tokenizers\n", ntoks, npre);
    return 0;
}

static int fuzz_pretok(const uint8_t *data, size_t size) {
    if (size < 2 || npre == 0) return 0;
    int k = data[1] % npre;
    const char *text = (const char *)data + 2;
    size_t n = size - 2;
    if (!valid_utf8((const uint8_t *)text, n)) return 0; /* the encoder repairs UTF-8 before splitting */
    sq_err e;
    tok_spans sp = {0};
    if (tok_pretokenize(pre_only[k], text, n, &sp, &e)) __builtin_trap();
    size_t at = 0;
    for (size_t i = 0; i < sp.n; i += 2) {
        if (sp.v[i] != at || sp.v[i + 1] == 0) __builtin_trap();
        at += sp.v[i + 1];
    }
    if (at != n) __builtin_trap();
    free(sp.v);
    if (pre_full[k]) {
        int32_t *ids;
        size_t nid;
        if (sq_tok_encode(pre_full[k], text, n, 0, &ids, &nid, &e)) __builtin_trap();
        char *s;
        size_t len;
        if (sq_tok_decode(pre_full[k], ids, nid, 0, &s, &len, &e)) __builtin_trap();
        if (len != n || memcmp(s, text, n)) __builtin_trap();
        free(s);
        free(ids);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size >= 1 && (data[0] & 0x80)) return fuzz_pretok(data, size);
    if (size < 1 || ntoks == 0) return 0;
    int k = data[0] % ntoks;
    int flags = (data[0] >> 4) & (SQ_TOK_PARSE_SPECIAL | SQ_TOK_ADD_SPECIAL);
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    sq_err e;
    int32_t *ids;
    size_t nid;
    if (sq_tok_encode(toks[k], text, n, flags, &ids, &nid, &e)) __builtin_trap();
    char *s;
    size_t len;
    if (sq_tok_decode(toks[k], ids, nid, 0, &s, &len, &e)) __builtin_trap();
    if (lossless[k] && flags == 0 && valid_utf8((const uint8_t *)text, n) && (len != n || memcmp(s, text, n)))
        __builtin_trap();
    free(s);
    free(ids);
    return 0;
}
