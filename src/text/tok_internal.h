/* Internal layout of sq_tokenizer, shared by the files of src/text/tok_*.c.
 *
 * The tokenizer owns everything: pieces live in one string pool, hash maps index them by
 * id, compiled regexes belong to the pre-tokenizer steps. After loading nothing is written,
 * which is what lets callers share one tokenizer across threads (the BPE word cache is
 * per thread, see tok_bpe.c).
 */
#ifndef SQ_TOK_INTERNAL_H
#define SQ_TOK_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdint.h>

#include "scalequest/base.h"
#include "scalequest/tokenizer.h"

/* ---- small growable arrays ------------------------------------------------------------- */

typedef struct tok_ids {
    int32_t *v;
    size_t n, cap;
} tok_ids;
int tok_ids_push(tok_ids *a, int32_t x);

/* ---- UTF-8 ----------------------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s (1..4), or 0 when ill-formed; *cp gets the
 * code point. Never reads past n. */
int tok_utf8_next(const uint8_t *s, size_t n, uint32_t *cp);
/* Length of the maximal ill-formed subpart at s (what one U+FFFD replaces). */
int tok_utf8_bad_len(const uint8_t *s, size_t n);
/* Copy text into out with every ill-formed subpart replaced by U+FFFD. Returns 1 when the
 * text was already valid (out untouched), 0 when out holds the repaired copy, <0 on OOM. */
int tok_utf8_sanitize(const char *s, size_t n, sq_buf *out);
/* 1 when s[0..n) is the unfinished start of a well-formed sequence. */
int tok_utf8_partial(const uint8_t *s, size_t n);
int tok_utf8_put(uint32_t cp, char *out); /* returns bytes written (1..4) */
int tok_is_space_cp(uint32_t cp);          /* Unicode White_Space */

/* GPT-2's printable stand-ins for the 256 byte values. */
uint32_t tok_byte_to_cp(uint8_t b);
int tok_cp_to_byte(uint32_t cp); /* -1 when cp stands for no byte */

/* ---- hash maps ------------------------------------------------------------------------- */

/* piece string -> id; keys are the tokenizer's own pieces, so only ids are stored. */
typedef struct tok_strmap {
    int32_t *slot; /* -1 empty */
    size_t mask;
} tok_strmap;

/* (left id, right id) -> (rank, merged id). */
typedef struct tok_pair {
    uint64_t key; /* UINT64_MAX empty */
    int32_t rank, id;
} tok_pair;
typedef struct tok_pairmap {
    tok_pair *slot;
    size_t mask, n;
} tok_pairmap;

uint64_t tok_hash(const void *p, size_t n);
int tok_pairmap_init(tok_pairmap *m, size_t n);
int tok_pairmap_put(tok_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t id);
const tok_pair *tok_pairmap_get(const tok_pairmap *m, int32_t a, int32_t b);

/* ---- pipeline parts -------------------------------------------------------------------- */

enum { NORM_NFC = 1, NORM_NFKC, NORM_NFD, NORM_NFKD, NORM_LOWER, NORM_PREPEND, NORM_REPLACE };
typedef struct tok_norm {
    int op;
    char *a, *b; /* PREPEND: a; REPLACE: a -> b */
    size_t alen, blen;
} tok_norm;

enum { SPLIT_ISOLATED = 0, SPLIT_REMOVED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT, SPLIT_CONTIGUOUS };
enum { PT_SPLIT = 1, PT_METASPACE_SPLIT, PT_LLAMA };
/* How a PT_LLAMA step (a GGUF pre-tokenizer, split the way llama.cpp splits) sees the text:
 * COLLAPSED: one byte per code point, its Unicode class (see tok_pretok_llama.c);
 * WIDE: the code points themselves, with non-ASCII white space turned into U+000B;
 * DIGITS3: not a regex — digit runs cut into a 1-2 digit head and groups of three. */
enum { LL_COLLAPSED = 1, LL_WIDE, LL_DIGITS3 };
typedef struct tok_step {
    int kind;
    int behavior, invert;
    pcre2_code *re;
    char *pattern;
    int is_literal; /* Split with a plain-string pattern (regex is its escaped form) */
    int llama_mode; /* PT_LLAMA: LL_* */
} tok_step;

#define TOK_MAX_NORM 16
#define TOK_MAX_STEPS 16

enum { PREPEND_NEVER = 0, PREPEND_FIRST, PREPEND_ALWAYS };

typedef struct tok_added {
    int32_t id;
    char *content;
    size_t len;
    uint8_t special, lstrip, rstrip, single_word, normalized;
} tok_added;

enum { MODEL_BPE = 1 };
enum { DEC_BYTELEVEL = 1, DEC_SPM, DEC_NONE };
enum { TOKF_SPECIAL = 1, TOKF_ADDED = 2, TOKF_BYTE = 4, TOKF_CONTROL = 8 };

struct sq_tokenizer {
    /* vocabulary */
    int32_t n_vocab;
    char *pool;
    size_t pool_len, pool_cap;
    int32_t cap_vocab;
    size_t *off;      /* piece of id: pool + off[id], plen[id] bytes (0: unused id) */
    uint32_t *plen;
    uint8_t *flags;   /* TOKF_* */
    float *scores;    /* GGUF SentencePiece scores (score-ordered merging); NULL otherwise */
    char *bytes_pool; /* what each id decodes to: bytes_pool + boff[id], blen[id] bytes */
    size_t *boff;
    uint32_t *blen;
    tok_strmap map;
    tok_pairmap merges;

    /* model */
    int byte_level;     /* pieces spell bytes through tok_byte_to_cp */
    int byte_fallback;  /* unknown characters become <0xXX> tokens */
    int ignore_merges;  /* a pre-token that is itself a piece is emitted whole */
    int whole_newlines; /* a pre-token of newlines only that is itself a piece is emitted whole */
    int fuse_unk;
    int use_scores;     /* SentencePiece merging by score (GGUF "llama") */
    int32_t unk;
    int32_t byte_id[256]; /* byte-level: id of the byte's stand-in; SPM: <0xXX>; -1 none */
    uint8_t byte_utf8[256][3]; /* the stand-in character of each byte: length (1-2), bytes */

    /* normalizer and pre-tokenizer */
    tok_norm norm[TOK_MAX_NORM];
    int n_norm;
    int bl_prefix_space; /* ByteLevel add_prefix_space */
    int metaspace;       /* Metaspace pre-tokenizer present */
    int meta_prepend;    /* PREPEND_* */
    uint32_t meta_char;  /* replacement character, U+2581 */
    tok_step steps[TOK_MAX_STEPS];
    int n_steps;
    int llama_han; /* PT_LLAMA steps see Han ideographs as a class of their own (kimi-k2) */

    /* decoder */
    int decoder;
    int strip_leading_space;

    /* added tokens, longest first */
    tok_added *added;
    int n_added;
    uint8_t added_first[256]; /* bit 1: some added token starts with this byte; bit 2: a special one */

    int32_t bos, eos, pad;
    int add_bos, add_eos;
    int32_t *eog;
    int n_eog;
    pcre2_match_context *mctx;
};

/* vocabulary building (tok_vocab.c) */
sq_tokenizer *tok_new(void);
int tok_set_piece(sq_tokenizer *t, int32_t id, const char *s, size_t len);
int tok_add_added(sq_tokenizer *t, int32_t id, const char *s, size_t len, int special);
/* After pieces, merges, added tokens and pipeline are in: build the maps, byte tables,
 * decoded bytes, EOG list. name labels errors. */
int tok_finish(sq_tokenizer *t, const char *name, sq_err *e);
/* The stop-token list, again after BOS/EOS changed (tokenizer_config.json read late). */
int tok_build_eog(sq_tokenizer *t);
int32_t tok_lookup(const sq_tokenizer *t, const char *s, size_t len);
/* Merge "a b" given as two piece strings; rank is the line order. */
int tok_add_merge(sq_tokenizer *t, const char *a, size_t alen, const char *b, size_t blen,
                  int32_t rank, const char *name, sq_err *e);
int tok_build_strmap(sq_tokenizer *t, sq_err *e);
int tok_strmap_insert(sq_tokenizer *t, int32_t id, sq_err *e);

/* pipeline setup (tok_pretok.c) */
int tok_add_split(sq_tokenizer *t, const char *pattern, int is_literal, int behavior, int invert,
                  sq_err *e);
int tok_add_norm(sq_tokenizer *t, int op, const char *a, size_t alen, const char *b, size_t blen,
                 sq_err *e);
/* The HF-style presets the folder formats use (gpt2, llama3, qwen2, deepseek-llm); SQ_EUNSUP
 * when unknown. */
int tok_preset(sq_tokenizer *t, const char *name, sq_err *e);

/* GGUF pre-tokenizers by their tokenizer.ggml.pre name, split exactly as llama.cpp splits
 * (tok_pretok_llama.c); the table is in tok_pretok_table.c. */
enum {
    TOKPRE_IGNORE_MERGES = 1, /* a pre-token that is itself a piece is emitted whole */
    TOKPRE_ADD_BOS = 2,       /* BOS by default (the GGUF's add_bos_token key still rules) */
    TOKPRE_NO_BOS = 4,        /* the model has no BOS even when the GGUF names one */
    TOKPRE_RAW = 8,           /* pieces are raw UTF-8 (no byte-level mapping), spaces become U+2581 */
    TOKPRE_HAN = 16,          /* Han ideographs are a class of their own (kimi-k2) */
};
typedef struct tok_gguf_pre {
    const char *names;           /* tokenizer.ggml.pre values, '|'-separated */
    const char *const *patterns; /* NULL-terminated; see tok_add_llama_split */
    int flags;                   /* TOKPRE_* */
} tok_gguf_pre;
/* The entry for a name (NULL: unknown). The empty name is llama.cpp's fallback, "default". */
const tok_gguf_pre *tok_gguf_pre_find(const char *name);
/* All entries, for documentation and tests; *n gets the count. */
const tok_gguf_pre *tok_gguf_pre_all(size_t *n);
/* Add the entry's steps to t and set its flags. */
int tok_gguf_pre_apply(sq_tokenizer *t, const tok_gguf_pre *p, sq_err *e);
/* One llama.cpp-style split step. The pattern is written like llama.cpp's (\p{L}, \p{N},
 * \p{P}, \p{S}, \p{M}, \p{Lu}.. which all mean "letter" there, plus \p{Han} and \p{Lnh},
 * letters other than Han, for kimi-k2); "\p{Digits3}" is the DIGITS3 step. */
int tok_add_llama_split(sq_tokenizer *t, const char *pattern, sq_err *e);
/* Split one piece [s0, s0+n) of text (all of it n_all bytes) with a PT_LLAMA step. */
typedef struct tok_llama_view tok_llama_view;
int tok_llama_view_new(tok_llama_view **v, const sq_tokenizer *t, const char *s, size_t n);
void tok_llama_view_free(tok_llama_view *v);
struct tok_spans;
int tok_llama_split(const tok_step *st, const tok_llama_view *v, size_t s0, size_t n, pcre2_match_data *md,
                    const pcre2_match_context *mctx, struct tok_spans *out, sq_err *e);
extern const char *const tok_re_gpt2, *const tok_re_llama3, *const tok_re_qwen2;

/* Normalize seg into out (returns 1 when no normalizer applies: use seg as is). */
int tok_normalize(const sq_tokenizer *t, const char *seg, size_t n, int at_start, sq_buf *out, sq_err *e);
/* Split s into pre-tokens: appends (start, len) pairs to spans. */
typedef struct tok_spans {
    size_t *v; /* start, len, start, len, ... */
    size_t n, cap;
} tok_spans;
int tok_pretokenize(const sq_tokenizer *t, const char *s, size_t n, tok_spans *spans, sq_err *e);
int tok_spans_push(tok_spans *sp, size_t s, size_t len);

/* BPE on one pre-token (tok_bpe.c), with scratch memory reused across words. */
typedef struct tok_scratch {
    struct tok_sym *sym;
    struct tok_cand *heap;
    size_t nsym, capsym, nheap, capheap;
    sq_buf mapped;
} tok_scratch;
int tok_bpe_word(const sq_tokenizer *t, const char *s, size_t n, tok_scratch *w, tok_ids *out);
void tok_scratch_free(tok_scratch *w);

void tok_steps_free(sq_tokenizer *t);
int tok_load_gguf_path(sq_tokenizer **t, const char *path, sq_err *e);

#endif
