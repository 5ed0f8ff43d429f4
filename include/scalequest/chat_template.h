/* chat_template — turning chat messages into the exact text a model was trained on.
 *
 * HF models ship their chat format as a Jinja template (tokenizer_config.json
 * "chat_template", GGUF "tokenizer.chat_template"). Rather than run Jinja, we recognise
 * the template's family from its source and render that family in C: Qwen2-style ChatML
 * (with the template's own default system prompt), DeepSeek "User: ... Assistant:",
 * Llama-3, Llama-2 "[INST] <<SYS>>" and Mistral "[INST]". The rendering equals
 * transformers' apply_chat_template(tokenize=False) for the same template, messages, BOS
 * and EOS texts (checked in tests/peers/test_chat_template.py). A template we do not
 * recognise is an error that says so; we never guess.
 *
 * Each template also names the bare user-turn prefix (what ScaleQuest's question
 * generation samples from, e.g. "<|im_start|>user\n") and the stop strings that end a user
 * turn and an assistant turn.
 *
 * Memory: every sq_chat_template_* constructor allocates *t; free it with
 * sq_chat_template_free. Rendered text goes into a caller-owned sq_buf (appended).
 */
#ifndef SCALEQUEST_CHAT_TEMPLATE_H
#define SCALEQUEST_CHAT_TEMPLATE_H

#include "scalequest/backend.h"
#include "scalequest/base.h"

typedef enum {
    SQ_CHAT_CHATML = 0, /* Qwen2 / Qwen2.5 (and Qwen2-Math) */
    SQ_CHAT_DEEPSEEK,   /* DeepSeek-LLM / DeepSeekMath chat and RL */
    SQ_CHAT_LLAMA3,     /* Llama-3 Instruct (no date header) */
    SQ_CHAT_LLAMA2,     /* Llama-2 chat: [INST] with <<SYS>> */
    SQ_CHAT_MISTRAL,    /* Mistral-Instruct v0.1: [INST], no system role */
    SQ_CHAT_CHATML_BASE, /* Qwen base checkpoints: ChatML where every user turn opens the
                            assistant turn, add_generation_prompt has no effect and only a
                            first system message counts */
} sq_chat_family;

#define SQ_CHAT_MAX_STOPS 4

typedef struct sq_chat_template {
    sq_chat_family family;
    const char *name;     /* "chatml", "deepseek", "llama3", "llama2", "mistral", "qwen-base" */
    char *default_system; /* ChatML: system turn added when the conversation has none; NULL: none */
    char *bos, *eos;      /* BOS / EOS texts the template writes ("" when it writes none) */
    const char *user_prefix; /* bare user-turn prefix, without BOS (which the caller adds as a token) */
    const char *assistant_prefix; /* what add_generation_prompt appends */
    const char *user_stops[SQ_CHAT_MAX_STOPS]; /* end of a user turn */
    int n_user_stops;
    const char *assistant_stops[SQ_CHAT_MAX_STOPS]; /* end of an assistant turn */
    int n_assistant_stops;
    char *source; /* the Jinja text it was recognised from, or one written for a built-in
                     ChatML; NULL when none is known (other built-ins) */
} sq_chat_template;

/* A built-in family by name: "chatml" (alias "qwen2"), "deepseek", "llama3", "llama2",
 * "mistral", "qwen-base". BOS/EOS and the default system prompt are the family's usual ones. */
int sq_chat_template_builtin(sq_chat_template **t, const char *name, sq_err *e);

/* Recognise the family of a Jinja template source. bos/eos: the model's BOS/EOS token
 * texts (NULL: the family's usual ones). origin names the source in error messages. */
int sq_chat_template_detect(sq_chat_template **t, const char *jinja, const char *bos, const char *eos,
                            const char *origin, sq_err *e);

/* From an HF tokenizer_config.json ("chat_template" as a string or a list of named
 * templates, of which "default" is used; "bos_token"/"eos_token" as strings or objects). */
int sq_chat_template_from_tokenizer_config(sq_chat_template **t, const char *path, sq_err *e);

/* From a GGUF model's metadata: tokenizer.chat_template, BOS/EOS from its token table. */
struct sq_gguf;
int sq_chat_template_from_gguf(sq_chat_template **t, const struct sq_gguf *g, sq_err *e);

/* From what a --chat-template flag names: a built-in name, a model folder (its
 * tokenizer_config.json), a tokenizer_config.json, a .gguf model, or a file holding a Jinja
 * template. */
int sq_chat_template_open(sq_chat_template **t, const char *spec, sq_err *e);

void sq_chat_template_free(sq_chat_template *t);

/* Append the rendering of messages to out. Fails (SQ_EINVAL) where the template itself
 * would raise: roles that do not alternate or a role the family has no place for. */
int sq_chat_template_render(const sq_chat_template *t, const sq_chat_msg *msgs, int n, int add_generation_prompt,
                            sq_buf *out, sq_err *e);

/* The text a question is written after: the rendering of one user turn cut where its
 * content would begin (the system turn a template adds by default included; BOS text
 * included when the template writes it). ScaleQuest's question generation samples from
 * this, and QFT trains on it. Appended to out. */
int sq_chat_template_question_prefix(const sq_chat_template *t, sq_buf *out, sq_err *e);

/* An HF tokenizer_config.json carrying the template ({"chat_template", "bos_token",
 * "eos_token"}), so that a model folder we write renders chats the same way here and in
 * transformers. SQ_EUNSUP when the template's Jinja source is unknown. Appended to out. */
int sq_chat_template_config_json(const sq_chat_template *t, sq_buf *out, sq_err *e);

#endif
