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
enum { PT_SPLIT = 1, PT_METASPACE_SPLIT };
typedef struct tok_step {
    int kind;
    int behavior, invert;
    pcre2_code *re;
    char *pattern;
    int is_literal; /* Split with a plain-string pattern (regex is its escaped form) */
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
/* Known pre-tokenizers by llama.cpp's tokenizer.ggml.pre name; SQ_EUNSUP when unknown. */
int tok_preset(sq_tokenizer *t, const char *name, sq_err *e);
extern const char *const tok_re_gpt2, *const tok_re_llama3, *const tok_re_qwen2;

/* Normalize seg into out (returns 1 when no normalizer applies: use seg as is). */
int tok_normalize(const sq_tokenizer *t, const char *seg, size_t n, int at_start, sq_buf *out, sq_err *e);
/* Split s into pre-tokens: appends (start, len) pairs to spans. */
typedef struct tok_spans {
    size_t *v; /* start, len, start, len, ... */
    size_t n, cap;
} tok_spans;
int tok_pretokenize(const sq_tokenizer *t, const char *s, size_t n, tok_spans *spans, sq_err *e);

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
