/* Chat templates: the built-in families and their rendering (see chat_template.h). Each
 * render function follows its family's public Jinja template line by line, so that the
 * output is byte-identical to transformers' apply_chat_template. */
#include <stdlib.h>
#include <string.h>

#include "chat_template_internal.h"

void sq_chat_template_free(sq_chat_template *t) {
    if (!t) return;
    free(t->default_system);
    free(t->bos);
    free(t->eos);
    free(t->source);
    free(t);
}

static int set_stops(const char **dst, int *n, const char *a, const char *b) {
    *n = 0;
    if (a && *a) dst[(*n)++] = a;
    if (b && *b && (!a || strcmp(a, b))) dst[(*n)++] = b;
    return *n;
}

/* Fill the family's fixed parts; bos/eos/default_system must already be set. */
static void fill_family(sq_chat_template *t) {
    switch (t->family) {
    case SQ_CHAT_CHATML:
    case SQ_CHAT_CHATML_BASE:
        t->name = t->family == SQ_CHAT_CHATML ? "chatml" : "qwen-base";
        t->user_prefix = "<|im_start|>user\n";
        t->assistant_prefix = "<|im_start|>assistant\n";
        set_stops(t->user_stops, &t->n_user_stops, "<|im_end|>", "<|endoftext|>");
        set_stops(t->assistant_stops, &t->n_assistant_stops, "<|im_end|>", "<|endoftext|>");
        break;
    case SQ_CHAT_DEEPSEEK:
        t->name = "deepseek";
        t->user_prefix = "User: ";
        t->assistant_prefix = "Assistant:";
        /* a user turn is closed by the blank line before "Assistant:" */
        set_stops(t->user_stops, &t->n_user_stops, "\n\nAssistant:", t->eos);
        set_stops(t->assistant_stops, &t->n_assistant_stops, t->eos, "\n\nUser:");
        break;
    case SQ_CHAT_LLAMA3:
        t->name = "llama3";
        t->user_prefix = "<|start_header_id|>user<|end_header_id|>\n\n";
        t->assistant_prefix = "<|start_header_id|>assistant<|end_header_id|>\n\n";
        set_stops(t->user_stops, &t->n_user_stops, "<|eot_id|>", "<|end_of_text|>");
        set_stops(t->assistant_stops, &t->n_assistant_stops, "<|eot_id|>", "<|end_of_text|>");
        break;
    case SQ_CHAT_LLAMA2:
    case SQ_CHAT_MISTRAL:
        t->name = t->family == SQ_CHAT_LLAMA2 ? "llama2" : "mistral";
        t->user_prefix = "[INST] ";
        t->assistant_prefix = "";
        set_stops(t->user_stops, &t->n_user_stops, " [/INST]", "[/INST]");
        set_stops(t->assistant_stops, &t->n_assistant_stops, t->eos, "[INST]");
        break;
    }
}

int sq_chat_template_make(sq_chat_template **out, sq_chat_family family, const char *bos, const char *eos,
                          const char *default_system, sq_err *e) {
    /* DeepSeek's special tokens use fullwidth bars and U+2581 */
    static const char ds_bos[] = "<｜begin▁of▁sentence｜>";
    static const char ds_eos[] = "<｜end▁of▁sentence｜>";
    static const char *const def_bos[] = {"", ds_bos, "<|begin_of_text|>", "<s>", "<s>", ""};
    static const char *const def_eos[] = {"<|im_end|>", ds_eos, "<|eot_id|>", "</s>", "</s>", "<|im_end|>"};
    *out = NULL;
    sq_chat_template *t = calloc(1, sizeof *t);
    if (!t) return sq_fail(e, SQ_ENOMEM, "out of memory");
    t->family = family;
    t->bos = sq_strdup(bos ? bos : def_bos[family]);
    t->eos = sq_strdup(eos ? eos : def_eos[family]);
    if (default_system) t->default_system = sq_strdup(default_system);
    if (!t->bos || !t->eos || (default_system && !t->default_system)) {
        sq_chat_template_free(t);
        return sq_fail(e, SQ_ENOMEM, "out of memory");
    }
    fill_family(t);
    *out = t;
    return 0;
}

/* The Jinja source of a ChatML template with the given default system prompt, in the form
 * Qwen2's tokenizer_config.json uses (and sq_chat_template_detect recognises). */
static char *chatml_source(const char *system) {
    sq_buf b = {0};
    sq_buf_puts(&b, "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
                    "{{ '<|im_start|>system\\n");
    for (const char *s = system; *s; s++) {
        if (*s == '\\' || *s == '\'') sq_buf_printf(&b, "\\%c", *s);
        else if (*s == '\n') sq_buf_puts(&b, "\\n");
        else sq_buf_append(&b, s, 1);
    }
    sq_buf_puts(&b, "<|im_end|>\\n' }}{% endif %}"
                    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
                    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}");
    return b.data;
}

int sq_chat_template_builtin(sq_chat_template **t, const char *name, sq_err *e) {
    *t = NULL;
    if (!strcmp(name, "chatml") || !strcmp(name, "qwen2")) {
        static const char system[] = "You are a helpful assistant.";
        int rc = sq_chat_template_make(t, SQ_CHAT_CHATML, NULL, NULL, system, e);
        if (!rc && !((*t)->source = chatml_source(system))) {
            sq_chat_template_free(*t);
            *t = NULL;
            rc = sq_fail(e, SQ_ENOMEM, "out of memory");
        }
        return rc;
    }
    if (!strcmp(name, "deepseek")) return sq_chat_template_make(t, SQ_CHAT_DEEPSEEK, NULL, NULL, NULL, e);
    if (!strcmp(name, "llama3")) return sq_chat_template_make(t, SQ_CHAT_LLAMA3, NULL, NULL, NULL, e);
    if (!strcmp(name, "llama2")) return sq_chat_template_make(t, SQ_CHAT_LLAMA2, NULL, NULL, NULL, e);
    if (!strcmp(name, "mistral")) return sq_chat_template_make(t, SQ_CHAT_MISTRAL, NULL, NULL, NULL, e);
    if (!strcmp(name, "qwen-base"))
        return sq_chat_template_make(t, SQ_CHAT_CHATML_BASE, NULL, NULL, "You are a helpful assistant.", e);
    return sq_fail(e, SQ_ENOTFOUND,
                   "no built-in chat template '%s' (known: chatml/qwen2, deepseek, llama3, llama2, mistral, qwen-base)", name);
}

/* ---- Python's str.strip() / Jinja's trim: Unicode whitespace at both ends ------------- */

/* Length of the whitespace character at s (0 when s does not start with one). */
static size_t space_len(const unsigned char *s, const unsigned char *end) {
    if (s >= end) return 0;
    if (*s == ' ' || (*s >= 0x09 && *s <= 0x0d) || (*s >= 0x1c && *s <= 0x1f)) return 1;
    if (end - s >= 2 && s[0] == 0xc2 && (s[1] == 0x85 || s[1] == 0xa0)) return 2;
    if (end - s >= 3) {
        unsigned cp = ((unsigned)(s[0] & 0x0f) << 12) | ((unsigned)(s[1] & 0x3f) << 6) | (s[2] & 0x3f);
        if ((s[0] & 0xf0) == 0xe0 &&
            (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f ||
             cp == 0x205f || cp == 0x3000))
            return 3;
    }
    return 0;
}

static int put_stripped(sq_buf *out, const char *s) {
    const unsigned char *b = (const unsigned char *)s, *end = b + strlen(s);
    size_t k;
    while ((k = space_len(b, end))) b += k;
    /* from the right: step back over whole characters */
    for (;;) {
        const unsigned char *p = end;
        int found = 0;
        for (int back = 1; back <= 3 && p - back >= b; back++) {
            if (space_len(p - back, end) == (size_t)back) {
                end = p - back;
                found = 1;
                break;
            }
        }
        if (!found) break;
    }
    return sq_buf_append(out, b, (size_t)(end - b));
}

/* ---- the families ------------------------------------------------------------------------ */

static int render_chatml(const sq_chat_template *t, const sq_chat_msg *m, int n, int gen, sq_buf *o) {
    int rc = 0;
    if (n > 0 && strcmp(m[0].role, "system") && t->default_system)
        rc |= sq_buf_printf(o, "<|im_start|>system\n%s<|im_end|>\n", t->default_system);
    for (int i = 0; i < n; i++) rc |= sq_buf_printf(o, "<|im_start|>%s\n%s<|im_end|>\n", m[i].role, m[i].content);
    if (gen) rc |= sq_buf_puts(o, "<|im_start|>assistant\n");
    return rc;
}

static int render_chatml_base(const sq_chat_template *t, const sq_chat_msg *m, int n, sq_buf *o) {
    int rc = 0;
    const char *sys = n > 0 && !strcmp(m[0].role, "system") ? m[0].content : t->default_system;
    if (sys) rc |= sq_buf_printf(o, "<|im_start|>system\n%s<|im_end|>\n", sys);
    for (int i = 0; i < n; i++) {
        if (!strcmp(m[i].role, "user"))
            rc |= sq_buf_printf(o, "<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n", m[i].content);
        else if (!strcmp(m[i].role, "assistant"))
            rc |= sq_buf_printf(o, "%s<|im_end|>\n", m[i].content);
    }
    return rc;
}

static int render_deepseek(const sq_chat_template *t, const sq_chat_msg *m, int n, int gen, sq_buf *o) {
    int rc = sq_buf_puts(o, t->bos);
    for (int i = 0; i < n; i++) {
        if (!strcmp(m[i].role, "user")) rc |= sq_buf_printf(o, "User: %s\n\n", m[i].content);
        else if (!strcmp(m[i].role, "assistant")) rc |= sq_buf_printf(o, "Assistant: %s%s", m[i].content, t->eos);
        else if (!strcmp(m[i].role, "system")) rc |= sq_buf_printf(o, "%s\n\n", m[i].content);
    }
    if (gen) rc |= sq_buf_puts(o, "Assistant:");
    return rc;
}

static int render_llama3(const sq_chat_template *t, const sq_chat_msg *m, int n, int gen, sq_buf *o) {
    int rc = 0;
    for (int i = 0; i < n; i++) {
        if (i == 0) rc |= sq_buf_puts(o, t->bos);
        rc |= sq_buf_printf(o, "<|start_header_id|>%s<|end_header_id|>\n\n", m[i].role);
        rc |= put_stripped(o, m[i].content);
        rc |= sq_buf_puts(o, "<|eot_id|>");
    }
    if (gen) rc |= sq_buf_puts(o, "<|start_header_id|>assistant<|end_header_id|>\n\n");
    return rc;
}

static int check_alternation(const sq_chat_msg *m, int n, int mistral, sq_err *e) {
    for (int i = 0; i < n; i++) {
        int is_user = !strcmp(m[i].role, "user");
        if (is_user != (i % 2 == 0))
            return sq_fail(e, SQ_EINVAL, "message %d (%s): conversation roles must alternate user/assistant/user/assistant/...",
                           i, m[i].role);
        if (mistral && !is_user && strcmp(m[i].role, "assistant"))
            return sq_fail(e, SQ_EINVAL, "message %d: only user and assistant roles are supported, not '%s'", i, m[i].role);
    }
    return 0;
}

static int render_llama2(const sq_chat_template *t, const sq_chat_msg *m, int n, sq_buf *o, sq_err *e) {
    const char *sys = NULL;
    if (n > 0 && !strcmp(m[0].role, "system")) {
        sys = m[0].content;
        m++;
        n--;
    }
    int rc = check_alternation(m, n, 0, e);
    if (rc) return rc;
    sq_buf content = {0};
    for (int i = 0; i < n && !rc; i++) {
        sq_buf_reset(&content);
        if (i == 0 && sys) rc |= sq_buf_printf(&content, "<<SYS>>\n%s\n<</SYS>>\n\n", sys);
        rc |= sq_buf_puts(&content, m[i].content);
        if (!strcmp(m[i].role, "user")) {
            rc |= sq_buf_printf(o, "%s[INST] ", t->bos);
            rc |= put_stripped(o, content.data);
            rc |= sq_buf_puts(o, " [/INST]");
        } else if (!strcmp(m[i].role, "assistant")) {
            rc |= sq_buf_puts(o, " ");
            rc |= put_stripped(o, content.data);
            rc |= sq_buf_printf(o, " %s", t->eos);
        }
    }
    sq_buf_free(&content);
    return rc ? sq_fail(e, SQ_ENOMEM, "out of memory rendering a chat") : 0;
}

static int render_mistral(const sq_chat_template *t, const sq_chat_msg *m, int n, sq_buf *o, sq_err *e) {
    int rc = check_alternation(m, n, 1, e);
    if (rc) return rc;
    rc = sq_buf_puts(o, t->bos);
    for (int i = 0; i < n; i++) {
        if (!strcmp(m[i].role, "user")) rc |= sq_buf_printf(o, "[INST] %s [/INST]", m[i].content);
        else rc |= sq_buf_printf(o, "%s%s ", m[i].content, t->eos);
    }
    return rc ? sq_fail(e, SQ_ENOMEM, "out of memory rendering a chat") : 0;
}

int sq_chat_template_render(const sq_chat_template *t, const sq_chat_msg *msgs, int n, int add_generation_prompt,
                            sq_buf *out, sq_err *e) {
    if (n < 0 || (n > 0 && !msgs)) return sq_fail(e, SQ_EINVAL, "render: bad message array (n=%d)", n);
    for (int i = 0; i < n; i++)
        if (!msgs[i].role || !msgs[i].content) return sq_fail(e, SQ_EINVAL, "message %d has no role or content", i);
    int rc;
    switch (t->family) {
    case SQ_CHAT_CHATML: rc = render_chatml(t, msgs, n, add_generation_prompt, out); break;
    case SQ_CHAT_CHATML_BASE: rc = render_chatml_base(t, msgs, n, out); break;
    case SQ_CHAT_DEEPSEEK: rc = render_deepseek(t, msgs, n, add_generation_prompt, out); break;
    case SQ_CHAT_LLAMA3: rc = render_llama3(t, msgs, n, add_generation_prompt, out); break;
    case SQ_CHAT_LLAMA2: return render_llama2(t, msgs, n, out, e);
    case SQ_CHAT_MISTRAL: return render_mistral(t, msgs, n, out, e);
    default: return sq_fail(e, SQ_EINVAL, "chat template of unknown family %d", (int)t->family);
    }
    return rc ? sq_fail(e, SQ_ENOMEM, "out of memory rendering a chat") : 0;
}
