/* Loading a tokenizer from GGUF metadata (tokenizer.ggml.*), the way llama.cpp reads it:
 * model "gpt2" is byte-level BPE with merges and a named pre-tokenizer; model "llama" is
 * SentencePiece BPE merged by score with <0xXX> byte fallback. Token types mark control
 * tokens (special) and user-defined ones (always matched in text). */
#include <stdlib.h>
#include <string.h>

#include "scalequest/gguf.h"
#include "tok_internal.h"

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

static int get_bool(const sq_gguf *g, const char *key, int dflt) {
    const sq_gguf_kv *kv = sq_gguf_find(g, key);
    if (!kv || kv->type != SQ_GGUF_BOOL) return dflt;
    return kv->data[0] != 0;
}

static int32_t get_id(const sq_gguf *g, const char *key) {
    uint32_t v;
    if (sq_gguf_get_u32(g, key, &v, NULL) || v >= (1u << 24)) return -1;
    return (int32_t)v;
}

static int arr_i32(const sq_gguf_kv *kv, uint64_t i) {
    if (kv->elem_type == SQ_GGUF_I32 || kv->elem_type == SQ_GGUF_U32) {
        int32_t v;
        memcpy(&v, kv->data + 4 * i, 4);
        return v;
    }
    if (kv->elem_type == SQ_GGUF_I8 || kv->elem_type == SQ_GGUF_U8) return kv->data[i];
    return TT_NORMAL;
}

static float arr_f32(const sq_gguf_kv *kv, uint64_t i) {
    float v;
    memcpy(&v, kv->data + 4 * i, 4);
    return v;
}

/* llama.cpp promotes tokens by their text, whatever type the file gives them: end-of-turn
 * and fill-in-the-middle markers become control tokens (matched in text only when special
 * tokens are parsed), and a few chat markers become user-defined (always matched). */
static int promoted_type(const char *s, size_t n, int tt, int normal_s) {
    if (normal_s && n == 4 && !memcmp(s, "</s>", 4)) return TT_NORMAL;
    static const char *const control[] = {
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
        "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
        "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>", "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
        "[e~[", "<MID>", "<PAD>", "<PRE>", "<REPO>", "<SUF>", "<fim-middle>", "<fim-pad>", "<fim-prefix>",
        "<fim-repo>", "<fim-suffix>", "<fim_middle>", "<fim_pad>", "<fim_prefix>", "<fim_suffix>", "<reponame>",
        "<|code_middle|>", "<|code_prefix|>", "<|code_suffix|>", "<|file_sep|>", "<|fim_middle|>", "<|fim_pad|>",
        "<|fim_prefix|>", "<|fim_repo|>", "<|fim_suffix|>", "<|middle|>", "<|prefix|>", "<|repo_name|>",
        "<|suffix|>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>",
        "<\xEF\xBD\x9C" "fim\xE2\x96\x81hole\xEF\xBD\x9C>", "[PAD]", "\xE2\x96\x81<MID>", "\xE2\x96\x81<PRE>", "\xE2\x96\x81<SUF>"};
    static const char *const user[] = {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"};
    for (size_t i = 0; i < SQ_ARRAY_LEN(user); i++)
        if (strlen(user[i]) == n && !memcmp(user[i], s, n)) return TT_USER;
    if (tt == TT_CONTROL || tt == TT_USER) return tt;
    for (size_t i = 0; i < SQ_ARRAY_LEN(control); i++)
        if (strlen(control[i]) == n && !memcmp(control[i], s, n)) return TT_CONTROL;
    return tt;
}

static int contains_ci(const sq_gguf *g, const char *key, const char *const *needles, size_t n) {
    sq_gguf_str v;
    if (sq_gguf_get_str(g, key, &v, NULL)) return 0;
    char low[256];
    size_t len = SQ_MIN(v.len, sizeof low - 1);
    for (size_t i = 0; i < len; i++) low[i] = (char)((v.ptr[i] >= 'A' && v.ptr[i] <= 'Z') ? v.ptr[i] + 32 : v.ptr[i]);
    low[len] = 0;
    for (size_t i = 0; i < n; i++)
        if (strstr(low, needles[i])) return 1;
    return 0;
}

static tok_added *find_added(sq_tokenizer *t, const char *s) {
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].len == strlen(s) && !memcmp(t->added[i].content, s, t->added[i].len)) return &t->added[i];
    return NULL;
}

/* llama.cpp's whitespace stripping around special tokens, set by model name: Phi-3 eats the
 * spaces after its special tokens (but not after <unk>, <s>, <|endoftext|>); a few encoder
 * vocabularies eat the spaces before their mask token. */
static void strip_by_model_name(sq_tokenizer *t, const sq_gguf *g) {
    static const char *const jina[] = {"jina-v2-de", "jina-v2-es", "jina-v2-code"};
    static const char *const arch[] = {"nomic-bert-moe", "jina-bert-v3"};
    static const char *const phi3[] = {"phi-3", "phi3"}, *const mbert[] = {"modern-bert"};
    tok_added *a;
    if (contains_ci(g, "tokenizer.ggml.pre", jina, 3) || contains_ci(g, "general.architecture", arch, 2)) {
        if ((a = find_added(t, "<mask>"))) a->lstrip = 1;
    } else if (contains_ci(g, "general.name", phi3, 2)) {
        for (int i = 0; i < t->n_added; i++) t->added[i].rstrip = 1;
        const char *keep[] = {"<unk>", "<s>", "<|endoftext|>"};
        for (size_t i = 0; i < 3; i++)
            if ((a = find_added(t, keep[i]))) a->rstrip = 0;
    } else if (contains_ci(g, "general.name", mbert, 1)) {
        if ((a = find_added(t, "[MASK]"))) a->lstrip = 1;
    }
}

int sq_tok_load_gguf(sq_tokenizer **out, const sq_gguf *g, sq_err *e) {
    *out = NULL;
    const char *name = g->path ? g->path : "gguf";
    sq_gguf_str model;
    if (sq_gguf_get_str(g, "tokenizer.ggml.model", &model, NULL))
        return sq_fail(e, SQ_ENOTFOUND, "%s: no tokenizer.ggml.model key (this GGUF has no tokenizer)", name);
    int spm = model.len == 5 && !memcmp(model.ptr, "llama", 5);
    int bpe = model.len == 4 && !memcmp(model.ptr, "gpt2", 4);
    /* Gemma-4: BPE over raw UTF-8 pieces, its pre-tokenizer implied by the model name */
    int gemma4 = model.len == 6 && !memcmp(model.ptr, "gemma4", 6);
    bpe |= gemma4;
    if (!spm && !bpe)
        return sq_fail(e, SQ_EUNSUP, "%s: tokenizer.ggml.model '%.*s' is not supported (gpt2, gemma4, llama)", name,
                       (int)SQ_MIN(model.len, 40), model.ptr);
    const sq_gguf_kv *tokens = sq_gguf_find(g, "tokenizer.ggml.tokens");
    if (!tokens || tokens->type != SQ_GGUF_ARRAY || tokens->elem_type != SQ_GGUF_STRING || tokens->n == 0 ||
        tokens->n >= (1u << 24))
        return sq_fail(e, SQ_EPARSE, "%s: tokenizer.ggml.tokens: expected a non-empty string array", name);
    const sq_gguf_kv *types = sq_gguf_find(g, "tokenizer.ggml.token_type");
    if (types && (types->type != SQ_GGUF_ARRAY || types->n != tokens->n)) types = NULL;
    const sq_gguf_kv *scores = sq_gguf_find(g, "tokenizer.ggml.scores");
    if (scores && (scores->type != SQ_GGUF_ARRAY || scores->elem_type != SQ_GGUF_F32 || scores->n != tokens->n))
        scores = NULL;
    if (spm && !scores) return sq_fail(e, SQ_EPARSE, "%s: a SentencePiece vocabulary needs tokenizer.ggml.scores", name);

    sq_tokenizer *t = tok_new();
    if (!t) return sq_fail(e, SQ_ENOMEM, "%s: out of memory", name);
    int rc = 0;
    if (spm && !(t->scores = calloc(1, sizeof(float)))) rc = sq_fail(e, SQ_ENOMEM, "%s: out of memory", name);
    int32_t n = (int32_t)tokens->n;
    /* Gemma-4 and PLaMo-2 have an ordinary </s>: llama.cpp sees it by their own end marker */
    int normal_s = 0;
    for (int32_t i = 0; i < n && !normal_s; i++) {
        sq_gguf_str s = sq_gguf_arr_str(tokens, (uint64_t)i);
        normal_s = (s.len == 16 && !memcmp(s.ptr, "<|tool_response>", 16)) ||
                   (s.len == 13 && !memcmp(s.ptr, "<|plamo:eos|>", 13));
    }
    for (int32_t i = 0; i < n && !rc; i++) {
        sq_gguf_str s = sq_gguf_arr_str(tokens, (uint64_t)i);
        int tt = types ? arr_i32(types, (uint64_t)i) : TT_NORMAL;
        if (s.len == 0) continue;
        tt = promoted_type(s.ptr, s.len, tt, normal_s);
        if (tok_set_piece(t, i, s.ptr, s.len)) rc = sq_fail(e, SQ_ENOMEM, "%s: out of memory", name);
        else if (tt == TT_CONTROL || tt == TT_USER || tt == TT_UNKNOWN) {
            /* llama.cpp matches the unknown token in text like a control token */
            if (tok_add_added(t, i, s.ptr, s.len, tt != TT_USER)) rc = sq_fail(e, SQ_ENOMEM, "out of memory");
            else if (tt == TT_CONTROL) t->flags[i] |= TOKF_CONTROL;
        }
    }
    if (!rc && spm)
        for (int32_t i = 0; i < n; i++) t->scores[i] = arr_f32(scores, (uint64_t)i);
    t->bos = get_id(g, "tokenizer.ggml.bos_token_id");
    t->eos = get_id(g, "tokenizer.ggml.eos_token_id");
    t->pad = get_id(g, "tokenizer.ggml.padding_token_id");
    /* which pre-tokenizer: llama.cpp's table; a BPE file without the key gets its "default" */
    const tok_gguf_pre *pre = NULL;
    char pname[64] = "";
    if (!rc && bpe) {
        sq_gguf_str ps = {"", 0};
        sq_gguf_get_str(g, "tokenizer.ggml.pre", &ps, NULL);
        snprintf(pname, sizeof pname, "%.*s", (int)SQ_MIN(ps.len, 63), ps.ptr);
        if (gemma4) snprintf(pname, sizeof pname, "gemma4");
        if (!(pre = tok_gguf_pre_find(pname)))
            rc = sq_fail(e, SQ_EUNSUP, "%s: tokenizer.ggml.pre '%.*s' is not a pre-tokenizer llama.cpp knows", name,
                         (int)SQ_MIN(ps.len, 60), ps.ptr);
    }
    int pre_flags = pre ? pre->flags : 0;
    if (pre_flags & TOKPRE_NO_BOS) t->bos = -1;
    t->add_bos = get_bool(g, "tokenizer.ggml.add_bos_token", spm || (pre_flags & TOKPRE_ADD_BOS));
    /* llama.cpp overrides the key for its Gemma-4 pre-tokenizer type */
    if (!strcmp(pname, "gemma4") || !strcmp(pname, "granite-embed-multi-311m")) t->add_bos = 1;
    t->add_eos = get_bool(g, "tokenizer.ggml.add_eos_token", 0);
    if (!rc) rc = tok_build_strmap(t, e);
    if (!rc && spm) {
        t->use_scores = 1;
        t->byte_fallback = 1;
        t->decoder = DEC_SPM;
        t->unk = get_id(g, "tokenizer.ggml.unknown_token_id");
        if (t->unk < 0) t->unk = 0;
        if (get_bool(g, "tokenizer.ggml.add_space_prefix", 1)) {
            rc = tok_add_norm(t, NORM_PREPEND, "\xE2\x96\x81", 3, NULL, 0, e);
            t->strip_leading_space = 1;
        }
        if (!rc) rc = tok_add_norm(t, NORM_REPLACE, " ", 1, "\xE2\x96\x81", 3, e);
    } else if (!rc) {
        t->byte_level = !(pre_flags & TOKPRE_RAW);
        t->decoder = DEC_BYTELEVEL;
        if (pre_flags & TOKPRE_RAW) {
            /* SentencePiece-style pieces merged by rank: spaces are U+2581, unknown bytes <0xXX> */
            t->byte_fallback = 1;
            t->whole_newlines = 1;
            t->decoder = DEC_SPM;
            rc = tok_add_norm(t, NORM_REPLACE, " ", 1, "\xE2\x96\x81", 3, e);
        }
        if (!rc && (rc = tok_gguf_pre_apply(t, pre, e))) sq_err_wrap(e, "%s: pre-tokenizer '%s'", name, pname);
        const sq_gguf_kv *merges = sq_gguf_find(g, "tokenizer.ggml.merges");
        if (!rc && (!merges || merges->type != SQ_GGUF_ARRAY || merges->elem_type != SQ_GGUF_STRING))
            rc = sq_fail(e, SQ_EPARSE, "%s: tokenizer.ggml.merges: expected a string array", name);
        for (uint64_t i = 0; !rc && i < merges->n; i++) {
            sq_gguf_str m = sq_gguf_arr_str(merges, i);
            /* llama.cpp splits at the first space after the first byte */
            const char *sp = m.len > 1 ? memchr(m.ptr + 1, ' ', m.len - 1) : NULL;
            if (!sp || sp == m.ptr || (size_t)(sp - m.ptr) + 1 >= m.len)
                rc = sq_fail(e, SQ_EPARSE, "%s: tokenizer.ggml.merges[%llu]: expected \"left right\"", name,
                             (unsigned long long)i);
            else
                rc = tok_add_merge(t, m.ptr, (size_t)(sp - m.ptr), sp + 1, m.len - (size_t)(sp - m.ptr) - 1,
                                   (int32_t)i, name, e);
        }
    }
    if (!rc) strip_by_model_name(t, g);
    if (!rc) rc = tok_finish(t, name, e);
    if (rc) {
        sq_tok_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int tok_load_gguf_path(sq_tokenizer **t, const char *path, sq_err *e) {
    sq_gguf g;
    int rc = sq_gguf_open(&g, path, e);
    if (rc) return rc;
    rc = sq_tok_load_gguf(t, &g, e);
    sq_gguf_close(&g);
    return rc;
}
