/* tokenizer: llama.cpp's test-tokenizer-0 cases (expected ids from HF) on every vocabulary
 * in the assets, decoding, streaming, special tokens, bad files, and pathological text. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/base.h"
#include "scalequest/tokenizer.h"
#include "test.h"

static const char SEP[] = "\n__ggml_vocab_test__\n";

static int run_loaded(sq_tokenizer *t, const char *inp, const char *outp, const char *label, size_t *ntok);

/* Run every .inp/.out case; returns the number of mismatching cases. */
static int run_cases(const char *tok_path, const char *inp_rel, const char *label) {
    const char *inp = sq_test_asset(inp_rel);
    char out_rel[512];
    snprintf(out_rel, sizeof out_rel, "%.*s.out", (int)(strlen(inp_rel) - 4), inp_rel);
    const char *outp = sq_test_asset(out_rel);
    if (!tok_path || !inp || !outp) return -1;
    char *inp_copy = sq_strdup(inp), *outp_copy = sq_strdup(outp);
    sq_err e;
    sq_tokenizer *t;
    int bad = 1;
    if (sq_tok_load(&t, tok_path, &e)) sq_test_fail(__FILE__, __LINE__, "%s: load: %s", label, e.msg);
    else bad = run_loaded(t, inp_copy, outp_copy, label, NULL);
    free(inp_copy);
    free(outp_copy);
    return bad;
}

/* The cases of one .inp/.out pair on a loaded tokenizer (freed here); adds the expected
 * token count to *ntok when given. */
static int run_loaded(sq_tokenizer *t, const char *inp, const char *outp, const char *label, size_t *ntok) {
    sq_err e;
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
        if (ntok) *ntok += nw;
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

/* llama.cpp's own vocabulary test files, as its source ships them (scripts/install-deps.sh
 * extracts llama-cpp-python's source distribution into the cache): every ggml-vocab-*.gguf
 * with .inp/.out there, each case token for token. Vocabularies of tokenizer models we do not
 * implement (WordPiece, Unigram, Gemma-4's) are listed, not failed. */
static const char *llama_cpp_models_dir(char *buf, size_t cap) {
    const char *src = getenv("SQ_LLAMA_CPP_SRC");
    if (src) {
        snprintf(buf, cap, "%s/models", src);
    } else {
        const char *cache = getenv("SQ_CACHE"), *home = getenv("HOME");
        if (cache) snprintf(buf, cap, "%s/llama_cpp_python-0.3.36/vendor/llama.cpp/models", cache);
        else if (home) snprintf(buf, cap, "%s/.cache/scalequest/llama_cpp_python-0.3.36/vendor/llama.cpp/models", home);
        else return NULL;
    }
    return sq_dir_exists(buf) ? buf : NULL;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

SQ_TEST(llama_cpp_vocab_files_match_their_out) {
    char dir[1024];
    if (!llama_cpp_models_dir(dir, sizeof dir))
        SKIP("llama.cpp's source is not in the cache (scripts/install-deps.sh puts it there; or set SQ_LLAMA_CPP_SRC)");
    DIR *d = opendir(dir);
    REQUIRE(d);
    char *names[256];
    int nn = 0;
    struct dirent *de;
    while ((de = readdir(d)) && nn < 256) {
        size_t l = strlen(de->d_name);
        if (!strncmp(de->d_name, "ggml-vocab-", 11) && l > 5 && !strcmp(de->d_name + l - 5, ".gguf"))
            names[nn++] = sq_strdup(de->d_name);
    }
    closedir(d);
    qsort(names, (size_t)nn, sizeof *names, cmp_str);
    int files = 0, other = 0, bad = 0;
    size_t ntok = 0;
    sq_buf others = {0};
    for (int i = 0; i < nn; i++) {
        char *g = sq_path_join(dir, names[i]);
        char inp[1200], outp[1200];
        snprintf(inp, sizeof inp, "%s.inp", g);
        snprintf(outp, sizeof outp, "%s.out", g);
        if (sq_file_exists(inp) && sq_file_exists(outp)) {
            sq_err e;
            sq_tokenizer *t;
            int rc = sq_tok_load(&t, g, &e);
            if (rc == SQ_EUNSUP && strstr(e.msg, "tokenizer.ggml.model")) {
                sq_buf_printf(&others, " %s", names[i]);
                other++;
            } else if (rc) {
                sq_test_fail(__FILE__, __LINE__, "%s: %s", names[i], e.msg);
                bad++;
            } else {
                bad += run_loaded(t, inp, outp, names[i], &ntok);
                files++;
            }
        }
        free(g);
        free(names[i]);
    }
    fprintf(stderr, "  also llama.cpp vocab files: %d files, %zu tokens, %d mismatching cases; other tokenizer models:%s\n",
            files, ntok, bad, others.data ? others.data : " none");
    sq_buf_free(&others);
    CHECKF(files >= 10, "only %d vocab files ran in %s", files, dir);
    CHECK_EQ_INT(bad, 0);
}

/* ---- behaviour beyond the conformance suites ------------------------------------------ */

static sq_tokenizer *load_asset(const char *rel) {
    const char *p = sq_test_asset(rel);
    if (!p) return NULL;
    sq_err e;
    sq_tokenizer *t = NULL;
    if (sq_tok_load(&t, p, &e)) sq_test_fail(__FILE__, __LINE__, "load %s: %s", rel, e.msg);
    return t;
}

static int valid_utf8(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        int k = u[i] < 0x80 ? 1 : (u[i] >> 5) == 6 ? 2 : (u[i] >> 4) == 14 ? 3 : (u[i] >> 3) == 30 ? 4 : 0;
        if (!k || i + (size_t)k > n) return 0;
        for (int j = 1; j < k; j++)
            if ((u[i + j] & 0xC0) != 0x80) return 0;
        i += (size_t)k;
    }
    return 1;
}

/* Streaming output is valid UTF-8 at every step and adds up to the full decode. */
static void check_stream(const sq_tokenizer *t, const char *text) {
    sq_err e;
    int32_t *ids;
    size_t n;
    REQUIRE(sq_tok_encode(t, text, strlen(text), 0, &ids, &n, &e) == 0);
    char *full;
    size_t flen;
    REQUIRE(sq_tok_decode(t, ids, n, 0, &full, &flen, &e) == 0);
    CHECK_EQ_STR(full, text);
    sq_tok_stream *s;
    REQUIRE(sq_tok_stream_new(&s, t, 0, &e) == 0);
    sq_buf all = {0}, piece = {0};
    int held_back = 0;
    for (size_t i = 0; i < n; i++) {
        sq_buf_reset(&piece);
        REQUIRE(sq_tok_stream_push(s, ids[i], &piece, &e) == 0);
        CHECKF(valid_utf8(piece.data ? piece.data : "", piece.len), "chunk %zu is not valid UTF-8", i);
        held_back += piece.len == 0;
        sq_buf_append(&all, piece.data ? piece.data : "", piece.len);
    }
    REQUIRE(sq_tok_stream_flush(s, &all, &e) == 0);
    CHECK_EQ_STR(all.data, full);
    CHECKF(held_back > 0, "no token was held back: the text should split characters across tokens");
    sq_buf_free(&all);
    sq_buf_free(&piece);
    sq_tok_stream_free(s);
    free(full);
    free(ids);
}

SQ_TEST(stream_decoder_never_splits_characters) {
    sq_tokenizer *bl = load_asset("vocab/ggml-vocab-gpt-2.gguf"), *spm = load_asset("vocab/ggml-vocab-llama-spm.gguf");
    if (!bl || !spm) {
        sq_tok_free(bl);
        sq_tok_free(spm);
        SKIP("assets/vocab not present");
    }
    const char *text = "Emoji 🦙🧮 and 数学问题 with ∑ and é — 𝔽(x) ok";
    check_stream(bl, text);
    check_stream(spm, text);
    /* Bytes that can never complete a character come out as U+FFFD, never raw. */
    sq_err e;
    sq_tok_stream *s;
    REQUIRE(sq_tok_stream_new(&s, spm, 0, &e) == 0);
    sq_buf out = {0};
    int32_t f0 = sq_tok_find(spm, "<0xF0>", 6), a = sq_tok_find(spm, "<0x41>", 6);
    REQUIRE(f0 >= 0 && a >= 0);
    REQUIRE(sq_tok_stream_push(s, f0, &out, &e) == 0);
    CHECK_EQ_INT(out.len, 0);
    REQUIRE(sq_tok_stream_push(s, a, &out, &e) == 0);
    CHECK_EQ_STR(out.data, "\xEF\xBF\xBD" "A");
    REQUIRE(sq_tok_stream_push(s, f0, &out, &e) == 0);
    REQUIRE(sq_tok_stream_flush(s, &out, &e) == 0);
    CHECK_EQ_STR(out.data, "\xEF\xBF\xBD" "A" "\xEF\xBF\xBD");
    CHECK(sq_tok_stream_push(s, 1 << 30, &out, &e) == SQ_ERANGE);
    sq_buf_free(&out);
    sq_tok_stream_free(s);
    sq_tok_free(bl);
    sq_tok_free(spm);
}

SQ_TEST(special_tokens_only_when_asked) {
    sq_tokenizer *t = load_asset("vocab/qwen2");
    if (!t) SKIP("assets/vocab not present");
    const char *text = "<|im_start|>user\nHi<|im_end|>";
    sq_err e;
    int32_t *ids;
    size_t n;
    REQUIRE(sq_tok_encode(t, text, strlen(text), SQ_TOK_PARSE_SPECIAL, &ids, &n, &e) == 0);
    REQUIRE(n >= 3);
    CHECK_EQ_INT(ids[0], 151644);
    CHECK_EQ_INT(ids[n - 1], 151645);
    CHECK(sq_tok_is_special(t, ids[0]));
    char *s;
    size_t len;
    REQUIRE(sq_tok_decode(t, ids, n, 0, &s, &len, &e) == 0);
    CHECK_EQ_STR(s, text);
    free(s);
    REQUIRE(sq_tok_decode(t, ids, n, SQ_TOK_SKIP_SPECIAL, &s, &len, &e) == 0);
    CHECK_EQ_STR(s, "user\nHi");
    free(s);
    free(ids);
    REQUIRE(sq_tok_encode(t, text, strlen(text), 0, &ids, &n, &e) == 0);
    for (size_t i = 0; i < n; i++) CHECKF(ids[i] < 151643, "special id %d from plain text", ids[i]);
    REQUIRE(sq_tok_decode(t, ids, n, 0, &s, &len, &e) == 0);
    CHECK_EQ_STR(s, text);
    free(s);
    free(ids);
    CHECK_EQ_INT(sq_tok_eos(t), 151645);
    CHECK_EQ_INT(sq_tok_bos(t), -1);
    CHECK(sq_tok_is_eog(t, 151645));
    CHECK(sq_tok_is_eog(t, 151643));
    CHECK(!sq_tok_is_eog(t, 100));
    sq_tok_free(t);
}

SQ_TEST(bos_eos_and_vocabulary_queries) {
    sq_tokenizer *spm = load_asset("vocab/ggml-vocab-llama-spm.gguf"), *l3 = load_asset("vocab/llama3");
    if (!spm || !l3) {
        sq_tok_free(spm);
        sq_tok_free(l3);
        SKIP("assets/vocab not present");
    }
    sq_err e;
    int32_t *ids;
    size_t n;
    CHECK_EQ_INT(sq_tok_bos(spm), 1);
    CHECK_EQ_INT(sq_tok_eos(spm), 2);
    CHECK_EQ_INT(sq_tok_vocab_size(spm), 32000);
    REQUIRE(sq_tok_encode(spm, "Hello", 5, SQ_TOK_ADD_SPECIAL, &ids, &n, &e) == 0);
    REQUIRE(n == 2);
    CHECK_EQ_INT(ids[0], 1);
    free(ids);
    REQUIRE(sq_tok_encode(spm, "Hello", 5, SQ_TOK_ADD_BOS | SQ_TOK_ADD_EOS, &ids, &n, &e) == 0);
    CHECK_EQ_INT(ids[n - 1], 2);
    char *s;
    size_t len;
    REQUIRE(sq_tok_decode(spm, ids, n, SQ_TOK_SKIP_SPECIAL, &s, &len, &e) == 0);
    CHECK_EQ_STR(s, "Hello");
    free(s);
    free(ids);
    size_t plen;
    const char *p = sq_tok_piece(spm, 15043, &plen);
    REQUIRE(p);
    CHECK_EQ_STR(p, "▁Hello");
    char buf[16];
    CHECK_EQ_INT(sq_tok_token_bytes(spm, 15043, buf, sizeof buf), 6);
    CHECK(!memcmp(buf, " Hello", 6));
    CHECK(sq_tok_piece(spm, 32000, NULL) == NULL);

    CHECK_EQ_INT(sq_tok_bos(l3), 128000);
    CHECK_EQ_INT(sq_tok_vocab_size(l3), 128256);
    int32_t eot = sq_tok_find(l3, "<|eot_id|>", 10);
    CHECK_EQ_INT(eot, 128009);
    CHECK(sq_tok_is_eog(l3, eot));
    REQUIRE(sq_tok_encode(l3, "Hi", 2, SQ_TOK_ADD_SPECIAL, &ids, &n, &e) == 0);
    CHECK_EQ_INT(ids[0], 128000);
    free(ids);
    int32_t small[2];
    CHECK(sq_tok_encode_buf(l3, "one two three four", 18, 0, small, 2, &n, &e) == SQ_ERANGE);
    CHECK_EQ_INT(n, 4);
    CHECK(sq_tok_count(l3, "one two three four", 18, 0, &n, &e) == 0);
    CHECK_EQ_INT(n, 4);
    int32_t bad = 200000;
    CHECK(sq_tok_decode(l3, &bad, 1, 0, &s, &len, &e) == SQ_ERANGE);
    CHECK(strstr(e.msg, "200000") != NULL);
    sq_tok_free(spm);
    sq_tok_free(l3);
}

/* Invalid UTF-8 is encoded as Python's bytes.decode("utf-8", "replace") would hand it to HF. */
SQ_TEST(invalid_utf8_is_repaired_like_python) {
    sq_tokenizer *t = load_asset("vocab/ggml-vocab-gpt-2.gguf");
    if (!t) SKIP("assets/vocab not present");
    const char *bad[] = {"a\xff" "b", "\xe2\x82", "\xed\xa0\x80x", "\xf0\x9f\x98 ok", "\xc0\xaf"};
    const char *fixed[] = {"a\xEF\xBF\xBD" "b", "\xEF\xBF\xBD", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDx",
                           "\xEF\xBF\xBD ok", "\xEF\xBF\xBD\xEF\xBF\xBD"};
    for (size_t k = 0; k < SQ_ARRAY_LEN(bad); k++) {
        sq_err e;
        int32_t *a, *b;
        size_t na, nb;
        REQUIRE(sq_tok_encode(t, bad[k], strlen(bad[k]), 0, &a, &na, &e) == 0);
        REQUIRE(sq_tok_encode(t, fixed[k], strlen(fixed[k]), 0, &b, &nb, &e) == 0);
        CHECKF(na == nb && !memcmp(a, b, na * sizeof *a), "case %zu encodes differently from its repair", k);
        free(a);
        free(b);
    }
    sq_tok_free(t);
}

static char *write_tmp(const char *name, const char *data, size_t len) {
    char *p = sq_path_join(sq_test_tmpdir(), name);
    sq_err e;
    if (sq_file_write_atomic(p, data, len, &e)) sq_test_fail(__FILE__, __LINE__, "%s", e.msg);
    return p;
}

static void expect_load_error(const char *name, const char *json, int code, const char *needle) {
    char *p = write_tmp(name, json, strlen(json));
    sq_tokenizer *t = NULL;
    sq_err e;
    int rc = sq_tok_load(&t, p, &e);
    CHECKF(rc == code, "%s: returned %d, expected %d (%s)", name, rc, code, rc ? e.msg : "loaded");
    if (rc) {
        CHECKF(strstr(e.msg, name) != NULL, "%s: message does not name the file: %s", name, e.msg);
        CHECKF(strstr(e.msg, needle) != NULL, "%s: message lacks \"%s\": %s", name, needle, e.msg);
    }
    CHECK(rc != 0 || t != NULL);
    sq_tok_free(t);
    free(p);
}

SQ_TEST(malformed_files_give_clear_errors) {
    const char *ok_model = "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[\"a b\"]}";
    char buf[512];
    expect_load_error("syntax.json", "{\n\"model\": {\n  \"vocab\": {\"a\" 0}}}", SQ_EPARSE, ":3:");
    expect_load_error("nomodel.json", "{\"added_tokens\":[]}", SQ_EPARSE, "model");
    expect_load_error("wordpiece.json", "{\"model\":{\"type\":\"WordPiece\",\"vocab\":{}}}", SQ_EUNSUP, "WordPiece");
    expect_load_error("badmerge.json", "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"a b\"]}}",
                      SQ_EPARSE, "merge 1");
    expect_load_error("badid.json", "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-3},\"merges\":[]}}", SQ_EPARSE,
                      "model.vocab");
    expect_load_error("badmergeform.json", "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a\"]}}",
                      SQ_EPARSE, "merges[0]");
    snprintf(buf, sizeof buf, "{%s,\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\"},"
                              "\"behavior\":\"Isolated\"}}", ok_model);
    expect_load_error("badregex.json", buf, SQ_EUNSUP, "regex");
    /* a pattern that is not UTF-8 (found by the fuzzer: it once crashed the regex compiler) */
    snprintf(buf, sizeof buf, "{%s,\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"a\xff\xfe[\\\\p{L}\xc3\"},"
                              "\"behavior\":\"Isolated\"}}", ok_model);
    expect_load_error("badutf8regex.json", buf, SQ_EUNSUP, "regex");
    snprintf(buf, sizeof buf, "{%s,\"normalizer\":{\"type\":\"BertNormalizer\"}}", ok_model);
    expect_load_error("badnorm.json", buf, SQ_EUNSUP, "BertNormalizer");
    snprintf(buf, sizeof buf, "{%s,\"added_tokens\":[{\"id\":\"x\",\"content\":\"<s>\"}]}", ok_model);
    expect_load_error("badadded.json", buf, SQ_EPARSE, "added_tokens[0]");
    snprintf(buf, sizeof buf, "{%s}", ok_model);
    expect_load_error("good.json", buf, 0, "");

    sq_err e;
    sq_tokenizer *t = NULL;
    CHECK(sq_tok_load(&t, sq_test_tmpdir(), &e) == SQ_ENOTFOUND);
    CHECK(strstr(e.msg, "tokenizer.json") != NULL);
    CHECK(sq_tok_load(&t, "/nonexistent/tokenizer.json", &e) == SQ_EIO);

    /* a folder whose merges.txt has a broken line: the error names file and line */
    char *dir = sq_path_join(sq_test_tmpdir(), "vm");
    REQUIRE(sq_mkdirs(dir, &e) == 0);
    char *vp = sq_path_join(dir, "vocab.json"), *mp = sq_path_join(dir, "merges.txt");
    REQUIRE(sq_file_write_atomic(vp, "{\"a\":0,\"b\":1,\"ab\":2}", 20, &e) == 0);
    REQUIRE(sq_file_write_atomic(mp, "#version: 0.2\na b\nab\n", 21, &e) == 0);
    CHECK(sq_tok_load(&t, dir, &e) == SQ_EPARSE);
    CHECK(strstr(e.msg, "merges.txt:3") != NULL);
    free(vp);
    free(mp);
    free(dir);

    /* a truncated GGUF */
    const char *g = sq_test_asset("vocab/ggml-vocab-gpt-2.gguf");
    if (g) {
        char *data;
        size_t len;
        REQUIRE(sq_file_read_all(g, &data, &len, &e) == 0);
        char *p = write_tmp("cut.gguf", data, len / 3);
        CHECK(sq_tok_load(&t, p, &e) < 0);
        CHECK(strstr(e.msg, "cut.gguf") != NULL);
        free(p);
        free(data);
    }
}

/* 1 MB of one character and 1 MB without spaces: one giant pre-token each. Completion is
 * the assertion (the heap-based merge is O(n log n)); the round trip proves the ids. */
static void encode_huge(const sq_tokenizer *t, const char *text, size_t n, const char *what) {
    sq_err e;
    int32_t *ids;
    size_t k;
    REQUIRE(sq_tok_encode(t, text, n, 0, &ids, &k, &e) == 0);
    CHECKF(k > 0 && k <= n, "%s: %zu ids for %zu bytes", what, k, n);
    char *back;
    size_t blen;
    REQUIRE(sq_tok_decode(t, ids, k, 0, &back, &blen, &e) == 0);
    CHECKF(blen == n && !memcmp(back, text, n), "%s: round trip differs", what);
    free(back);
    free(ids);
}

SQ_TEST(pathological_text_completes) {
    /* make test: both BPE kinds; SQ_LONG=1: every vocabulary, and 1 MB of spaces too */
    int long_run = getenv("SQ_LONG") && !strcmp(getenv("SQ_LONG"), "1");
    const char *names[] = {"vocab/ggml-vocab-gpt-2.gguf", "vocab/ggml-vocab-llama-spm.gguf", "vocab/llama3",
                           "vocab/ggml-vocab-deepseek-llm.gguf"};
    size_t n = 1 << 20;
    char *same = malloc(n), *nospace = malloc(n), *spaces = malloc(n);
    REQUIRE(same && nospace && spaces);
    memset(same, 'a', n);
    memset(spaces, ' ', n);
    sq_rng r;
    sq_rng_seed(&r, 5);
    const char alpha[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789.,;:-+=()[]{}";
    for (size_t i = 0; i < n; i++) nospace[i] = alpha[sq_rng_below(&r, sizeof alpha - 1)];
    int loaded = 0;
    for (size_t k = 0; k < (long_run ? SQ_ARRAY_LEN(names) : 2); k++) {
        sq_tokenizer *t = load_asset(names[k]);
        if (!t) continue;
        loaded++;
        double t0 = sq_now();
        encode_huge(t, same, n, names[k]);
        double t1 = sq_now();
        encode_huge(t, nospace, n, names[k]);
        double t2 = sq_now();
        if (long_run) encode_huge(t, spaces, n, names[k]);
        fprintf(stderr, "  also %s: 1 MB same char %.1fs, no spaces %.1fs, spaces %.1fs\n", names[k], t1 - t0, t2 - t1,
                sq_now() - t2);
        sq_tok_free(t);
    }
    free(same);
    free(nospace);
    free(spaces);
    if (!loaded) SKIP("assets/vocab not present");
}

SQ_TEST(trainer_round_trips_through_tokenizer_json) {
    sq_buf corpus = {0};
    const char *lines[] = {"The cat sat on the mat. ", "What is 12 + 30? The answer is 42.\n",
                           "Let $x^2 = 4$, so $x = \\pm 2$.\n", "数学 問題 🧮 naïve café\n"};
    for (int rep = 0; rep < 200; rep++) sq_buf_puts(&corpus, lines[rep % 4]);
    const char *special[] = {"<|endoftext|>", "<|im_start|>"};
    sq_tok_train_opts o = {.vocab_size = 400, .special = special, .n_special = 2};
    sq_tokenizer *t;
    sq_err e;
    REQUIRE(sq_tok_train(corpus.data, corpus.len, &o, &t, &e) == 0);
    CHECK(sq_tok_vocab_size(t) <= 400 && sq_tok_vocab_size(t) > 300);
    CHECK_EQ_INT(sq_tok_find(t, "<|endoftext|>", 13), sq_tok_vocab_size(t) - 2);
    char *path = sq_path_join(sq_test_tmpdir(), "trained.json");
    REQUIRE(sq_tok_save_json(t, path, &e) == 0);
    sq_tokenizer *back;
    REQUIRE(sq_tok_load(&back, path, &e) == 0);
    CHECK_EQ_INT(sq_tok_vocab_size(back), sq_tok_vocab_size(t));
    const char *probe = "The answer is 42. 数学 🧮<|endoftext|> unseen words: zyxwv";
    int32_t *a, *b;
    size_t na, nb;
    REQUIRE(sq_tok_encode(t, probe, strlen(probe), SQ_TOK_PARSE_SPECIAL, &a, &na, &e) == 0);
    REQUIRE(sq_tok_encode(back, probe, strlen(probe), SQ_TOK_PARSE_SPECIAL, &b, &nb, &e) == 0);
    CHECK(na == nb && !memcmp(a, b, na * sizeof *a));
    CHECK(na < strlen(probe) / 2);
    char *s;
    size_t len;
    REQUIRE(sq_tok_decode(back, b, nb, 0, &s, &len, &e) == 0);
    CHECK_EQ_STR(s, probe);
    free(s);
    free(a);
    free(b);
    sq_tok_free(back);
    sq_tok_free(t);
    free(path);
    o.vocab_size = 100;
    CHECK(sq_tok_train(corpus.data, corpus.len, &o, &t, &e) == SQ_EINVAL);
    sq_buf_free(&corpus);
}
