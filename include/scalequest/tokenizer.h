/* tokenizer — text to token ids and back, matching Hugging Face `tokenizers` id for id.
 *
 * One sq_tokenizer covers the two BPE families that Llama-type models use:
 *   - byte-level BPE (GPT-2, Llama-3, Qwen2, DeepSeek): regex pre-tokenizer, bytes mapped to
 *     printable characters, merges applied by rank (HF's `ignore_merges` honoured);
 *   - SentencePiece-style BPE (Llama-2, Mistral): spaces become U+2581, pieces merged by rank
 *     (tokenizer.json) or by score (GGUF), unknown characters fall back to <0xXX> byte tokens.
 * Added/special tokens (`<|im_start|>`, `<s>`, ...) are matched in the text only when the
 * caller passes SQ_TOK_PARSE_SPECIAL; otherwise they are encoded as ordinary text.
 *
 * Sources (sq_tok_load picks by looking at the path):
 *   - a HF tokenizer.json, or a folder holding one;
 *   - a folder with vocab.json + merges.txt (Qwen2 style; added_tokens.json and
 *     tokenizer_config.json are read when present) or encoder.json + vocab.bpe (GPT-2 style);
 *   - a GGUF file with tokenizer.ggml.* metadata (model "gpt2", "gemma4" or "llama"), read the
 *     way llama.cpp reads it: every tokenizer.ggml.pre name in llama.cpp's table, split as
 *     llama.cpp splits (docs/tokenizer.md), and its special-token rules.
 * Text input is bytes; invalid UTF-8 is encoded as U+FFFD per maximal ill-formed subpart,
 * exactly what Python's bytes.decode("utf-8", "replace") hands HF.
 *
 * Ownership: sq_tok_load allocates the tokenizer, sq_tok_free releases it; it is read-only
 * after loading, so one tokenizer may be shared by any number of threads. Encode/decode return
 * malloc'd arrays the caller frees with free(). Piece pointers stay valid until sq_tok_free.
 */
#ifndef SCALEQUEST_TOKENIZER_H
#define SCALEQUEST_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "scalequest/base.h"

typedef struct sq_tokenizer sq_tokenizer;
struct sq_gguf;

/* ---- loading --------------------------------------------------------------------------- */

int sq_tok_load(sq_tokenizer **t, const char *path, sq_err *e);
/* A tokenizer.json already in memory (the fuzzer's entry point); `name` labels errors. */
int sq_tok_load_json(sq_tokenizer **t, const char *json, size_t len, const char *name, sq_err *e);
/* The tokenizer.ggml.* metadata of an already opened GGUF file (the model loader's entry). */
int sq_tok_load_gguf(sq_tokenizer **t, const struct sq_gguf *g, sq_err *e);
void sq_tok_free(sq_tokenizer *t);

/* ---- encoding -------------------------------------------------------------------------- */

enum {
    SQ_TOK_ADD_BOS = 1 << 0,       /* prepend BOS when the tokenizer has one */
    SQ_TOK_ADD_EOS = 1 << 1,       /* append EOS */
    SQ_TOK_ADD_SPECIAL = 1 << 2,   /* BOS/EOS as the model's own config says (HF add_special_tokens) */
    SQ_TOK_PARSE_SPECIAL = 1 << 3, /* recognise added/special tokens written in the text */
};

/* Encode len bytes of text. *ids is malloc'd (caller frees; non-NULL even when *n == 0). */
int sq_tok_encode(const sq_tokenizer *t, const char *text, size_t len, int flags, int32_t **ids,
                  size_t *n, sq_err *e);
/* Caller-buffer variant: writes at most cap ids, sets *n to the full count; SQ_ERANGE when
 * cap was too small (call again with cap >= *n). */
int sq_tok_encode_buf(const sq_tokenizer *t, const char *text, size_t len, int flags,
                      int32_t *ids, size_t cap, size_t *n, sq_err *e);
/* Number of tokens without keeping them. */
int sq_tok_count(const sq_tokenizer *t, const char *text, size_t len, int flags, size_t *n,
                 sq_err *e);

/* ---- decoding -------------------------------------------------------------------------- */

enum {
    SQ_TOK_SKIP_SPECIAL = 1 << 0, /* drop special tokens (BOS, EOS, <|im_end|>, ...) */
};

/* Decode ids into a malloc'd NUL-terminated string of *len bytes (caller frees). The bytes are
 * exactly what the tokens stand for; a byte sequence that is not valid UTF-8 is kept as is
 * (HF would show U+FFFD there). An id outside the vocabulary is SQ_ERANGE. */
int sq_tok_decode(const sq_tokenizer *t, const int32_t *ids, size_t n, int flags, char **text,
                  size_t *len, sq_err *e);

/* Streaming decoder for generation: feed one id at a time and get text that never ends in
 * the middle of a UTF-8 character (bytes of an unfinished character are held back until the
 * next id completes them; bytes that can never form a character come out as U+FFFD).
 * The concatenated output equals the lossy-UTF-8 form of sq_tok_decode of all ids. */
typedef struct sq_tok_stream sq_tok_stream;
int sq_tok_stream_new(sq_tok_stream **s, const sq_tokenizer *t, int flags, sq_err *e);
/* Append the text that id completes to out (possibly nothing). */
int sq_tok_stream_push(sq_tok_stream *s, int32_t id, sq_buf *out, sq_err *e);
/* End of stream: held-back bytes come out as U+FFFD. The stream can then be reused. */
int sq_tok_stream_flush(sq_tok_stream *s, sq_buf *out, sq_err *e);
void sq_tok_stream_free(sq_tok_stream *s);

/* ---- vocabulary ------------------------------------------------------------------------ */

int32_t sq_tok_vocab_size(const sq_tokenizer *t); /* highest id + 1, added tokens included */
int32_t sq_tok_bos(const sq_tokenizer *t);        /* -1 when none */
int32_t sq_tok_eos(const sq_tokenizer *t);        /* -1 when none */
int32_t sq_tok_pad(const sq_tokenizer *t);        /* -1 when none */
/* End of generation: EOS and the model's other stop tokens (<|eot_id|>, <|im_end|>, ...). */
int sq_tok_is_eog(const sq_tokenizer *t, int32_t id);
/* Added tokens marked special, and SentencePiece control tokens. */
int sq_tok_is_special(const sq_tokenizer *t, int32_t id);
/* The vocabulary string of id as stored ("Ġthe", "▁the", "<0x0A>", "<|im_end|>"),
 * NUL-terminated, its byte length in *len when len is non-NULL; NULL when id is out of range. */
const char *sq_tok_piece(const sq_tokenizer *t, int32_t id, size_t *len);
/* Id of an exact vocabulary string (e.g. "<|im_end|>"), or -1. */
int32_t sq_tok_find(const sq_tokenizer *t, const char *piece, size_t len);
/* The bytes id decodes to on its own (with no leading-space stripping); returns the byte
 * count, which may exceed cap (then nothing past cap is written), or a negative code. */
int sq_tok_token_bytes(const sq_tokenizer *t, int32_t id, char *buf, size_t cap);

/* ---- training and saving --------------------------------------------------------------- */

typedef struct sq_tok_train_opts {
    int32_t vocab_size;         /* total, including the 256 bytes and the special tokens */
    int32_t min_frequency;      /* pairs seen fewer times are not merged (default 2 when 0) */
    const char *const *special; /* added special tokens, ids right after the merges; may be NULL */
    int n_special;
    const char *pattern;        /* pre-tokenizer regex; NULL: GPT-2's */
} sq_tok_train_opts;

/* Train byte-level BPE on len bytes of text (regex pre-tokenization, 256-byte alphabet,
 * merges by pair frequency, ties to the smaller id pair); deterministic for a given text. */
int sq_tok_train(const char *text, size_t len, const sq_tok_train_opts *o, sq_tokenizer **t,
                 sq_err *e);
/* Write a tokenizer.json that HF `tokenizers` loads and encodes identically (atomic write). */
int sq_tok_save_json(const sq_tokenizer *t, const char *path, sq_err *e);

#endif
