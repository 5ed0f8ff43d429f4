/* tokenizer: llama.cpp's test-tokenizer-0 cases (expected ids from HF) on every vocabulary
 * in the assets, decoding, streaming, special tokens, bad files, and pathological text. */
#include <stdlib.h>
#include <string.h>

#include "scalequest/base.h"
#include "scalequest/tokenizer.h"
#include "test.h"

static const char SEP[] = "\n__ggml_vocab_test__\n";

/* Run every .inp/.out case; returns the number of mismatching cases. */
static int run_cases(const char *tok_path, const char *inp_rel, const char *label) {
    const char *inp = sq_test_asset(inp_rel);
    char out_rel[512];
    snprintf(out_rel, sizeof out_rel, "%.*s.out", (int)(strlen(inp_rel) - 4), inp_rel);
    const char *outp = sq_test_asset(out_rel);
    if (!tok_path || !inp || !outp) return -1;
    sq_err e;
    sq_tokenizer *t;
    if (sq_tok_load(&t, tok_path, &e)) {
        sq_test_fail(__FILE__, __LINE__, "%s: load: %s", label, e.msg);
        return 1;
    }
    char *in, *out;
    size_t inlen, outlen;
    if (sq_file_read_all(inp, &in, &inlen, &e) || sq_file_read_all(outp, &out, &outlen, &e)) {
        sq_test_fail(__FILE__, __LINE__, "%s: %s", label, e.msg);
        sq_tok_free(t);
        return 1;
    }
    int bad = 0, ncase = 0;
    char *p = in, *line = out;
    for (;;) {
        char *sep = strstr(p, SEP);
        if (!sep) break;
        char *nl = strchr(line, '\n');
        if (!nl) break;
        *nl = 0;
        int32_t want[4096];
        size_t nw = 0;
        for (char *q = line; *q && nw < 4096;) {
            char *end;
            long v = strtol(q, &end, 10);
            if (end == q) break;
            want[nw++] = (int32_t)v;
            q = end;
        }
        int32_t *ids;
        size_t n;
        int rc = sq_tok_encode(t, p, (size_t)(sep - p), SQ_TOK_PARSE_SPECIAL, &ids, &n, &e);
        int same = rc == 0 && n == nw && (n == 0 || !memcmp(ids, want, n * sizeof *ids));
        if (!same) {
            char got[512] = "", exp[512] = "";
            for (size_t i = 0; i < n && i < 24; i++) snprintf(got + strlen(got), sizeof got - strlen(got), "%d ", ids[i]);
            for (size_t i = 0; i < nw && i < 24; i++) snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%d ", want[i]);
            sq_test_fail(__FILE__, __LINE__, "%s case %d \"%.*s\": got [%s] want [%s]", label, ncase,
                         (int)SQ_MIN(sep - p, 40), p, got, exp);
            bad++;
        }
        free(ids);
        ncase++;
        p = sep + strlen(SEP);
        line = nl + 1;
    }
    CHECKF(ncase >= 30, "%s: only %d cases read", label, ncase);
    free(in);
    free(out);
    sq_tok_free(t);
    return bad;
}

#define VOCAB_CASE(name, tok, inp)                                                                  \
    SQ_TEST(name) {                                                                                 \
        if (run_cases(sq_test_asset(tok), inp, #name) < 0) SKIP("assets/vocab not present");       \
    }

VOCAB_CASE(vocab_llama_spm_gguf, "vocab/ggml-vocab-llama-spm.gguf", "vocab/ggml-vocab-llama-spm.gguf.inp")
VOCAB_CASE(vocab_gpt2_gguf, "vocab/ggml-vocab-gpt-2.gguf", "vocab/ggml-vocab-gpt-2.gguf.inp")
VOCAB_CASE(vocab_deepseek_llm_gguf, "vocab/ggml-vocab-deepseek-llm.gguf", "vocab/ggml-vocab-deepseek-llm.gguf.inp")
VOCAB_CASE(vocab_qwen2_folder, "vocab/qwen2", "vocab/qwen2/ggml-vocab-qwen2.gguf.inp")
VOCAB_CASE(vocab_llama3_folder, "vocab/llama3", "vocab/llama3/ggml-vocab-llama-bpe.gguf.inp")
