/* Normalizers and pre-tokenizers: the steps HF `tokenizers` runs before the BPE model.
 *
 * A pre-tokenizer is a list of Split steps, each a PCRE2 regex (UTF + UCP, so \p{L}, \p{N}
 * and \s mean what they mean in HF's Oniguruma) with one of HF's delimiter behaviours; every
 * step re-splits the pieces the previous step made. ByteLevel's own regex is GPT-2's
 * pattern as one more Isolated step. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tok_internal.h"

const char *const tok_re_gpt2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const char *const tok_re_llama3 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char *const tok_re_qwen2 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/* DeepSeek-LLM's tokenizer.json splits in six stages: newlines, Latin/Greek/Cyrillic-like
 * letters, ASCII and full-width punctuation, trailing space, CJK runs, digit runs. Characters
 * that NFC would fold to another code point are written as \x{...}, so the ranges survive
 * any normalizing editor. */
static const char *const re_deepseek[] = {
    "[\\r\\n]",
    "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-"
    "ὗὙὛὝὟ-\\x{1F7D}ᾀ-ᾴᾶ-ᾼ\\x{1FBE}ῂ-ῄῆ-ῌῐ-\\x{1FD3}ῖ-\\x{1FDB}ῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\\x{2126}ℨ\\x{212A}-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-"
    "ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
    "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
    "\\s+$",
    "[一-龥ࠀ-一가-퟿]+",
    "\\p{N}+",
};

int tok_add_split(sq_tokenizer *t, const char *pattern, int is_literal, int behavior, int invert, sq_err *e) {
    if (t->n_steps >= TOK_MAX_STEPS)
        return sq_fail(e, SQ_EUNSUP, "tokenizer: more than %d pre-tokenizer steps", TOK_MAX_STEPS);
    int errcode;
    PCRE2_SIZE erroff;
    /* no PCRE2_NO_UTF_CHECK here: a pattern from a file may be invalid UTF-8 */
    uint32_t opts = PCRE2_UTF | (is_literal ? PCRE2_LITERAL : PCRE2_UCP);
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, opts, &errcode, &erroff, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(errcode, msg, sizeof msg);
        return sq_fail(e, SQ_EUNSUP, "tokenizer: pre-tokenizer regex at offset %zu: %s", (size_t)erroff,
                       (const char *)msg);
    }
    /* Without JIT the interpreter is used: slower, same answers. */
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    tok_step *s = &t->steps[t->n_steps++];
    memset(s, 0, sizeof *s);
    s->kind = PT_SPLIT;
    s->re = re;
    s->behavior = behavior;
    s->invert = invert;
    s->is_literal = is_literal;
    s->pattern = sq_strdup(pattern);
    return 0;
}

void tok_steps_free(sq_tokenizer *t) {
    for (int i = 0; i < t->n_steps; i++) {
        pcre2_code_free(t->steps[i].re);
        free(t->steps[i].pattern);
    }
    t->n_steps = 0;
}

int tok_add_norm(sq_tokenizer *t, int op, const char *a, size_t alen, const char *b, size_t blen, sq_err *e) {
    if (t->n_norm >= TOK_MAX_NORM) return sq_fail(e, SQ_EUNSUP, "tokenizer: more than %d normalizers", TOK_MAX_NORM);
    tok_norm *n = &t->norm[t->n_norm];
    memset(n, 0, sizeof *n);
    n->op = op;
    if (a && !(n->a = sq_strndup(a, alen))) return sq_fail(e, SQ_ENOMEM, "tokenizer: out of memory");
    if (b && !(n->b = sq_strndup(b, blen))) return sq_fail(e, SQ_ENOMEM, "tokenizer: out of memory");
    n->alen = alen, n->blen = blen;
    t->n_norm++;
    return 0;
}

int tok_preset(sq_tokenizer *t, const char *name, sq_err *e) {
    int rc = 0;
    t->byte_level = 1;
    t->decoder = DEC_BYTELEVEL;
    if (!strcmp(name, "gpt2") || !strcmp(name, "gpt-2") || !strcmp(name, "default")) {
        rc = tok_add_split(t, tok_re_gpt2, 0, SPLIT_ISOLATED, 0, e);
    } else if (!strcmp(name, "llama3") || !strcmp(name, "llama-bpe") || !strcmp(name, "llama-v3")) {
        rc = tok_add_split(t, tok_re_llama3, 0, SPLIT_ISOLATED, 0, e);
        t->ignore_merges = 1;
    } else if (!strcmp(name, "qwen2")) {
        /* Qwen2's tokenizer NFC-normalises first (both its slow and fast HF tokenizers). */
        rc = tok_add_norm(t, NORM_NFC, NULL, 0, NULL, 0, e);
        if (!rc) rc = tok_add_split(t, tok_re_qwen2, 0, SPLIT_ISOLATED, 0, e);
    } else if (!strcmp(name, "deepseek-llm")) {
        for (size_t i = 0; i < SQ_ARRAY_LEN(re_deepseek) && !rc; i++)
            rc = tok_add_split(t, re_deepseek[i], 0, SPLIT_ISOLATED, 0, e);
    } else if (!strcmp(name, "smollm") || !strcmp(name, "starcoder") || !strcmp(name, "refact") ||
               !strcmp(name, "command-r") || !strcmp(name, "codeshell") || !strcmp(name, "exaone") ||
               !strcmp(name, "minerva-7b")) {
        /* every digit alone first, then GPT-2's pattern on what is left */
        rc = tok_add_split(t, "\\p{N}", 0, SPLIT_ISOLATED, 0, e);
        if (!rc) rc = tok_add_split(t, tok_re_gpt2, 0, SPLIT_ISOLATED, 0, e);
    } else {
        return sq_fail(e, SQ_EUNSUP, "tokenizer: unknown pre-tokenizer '%s' (known: gpt2, llama3, qwen2, deepseek-llm)",
                       name);
    }
    return rc;
}

static int norm_unicode(int op, sq_buf *cur, sq_buf *tmp) {
    /* ASCII is its own NFC/NFD/NFKC/NFKD: skip the library on the common case */
    size_t i = 0;
    while (i < cur->len && (uint8_t)cur->data[i] < 0x80) i++;
    if (i == cur->len) {
        sq_buf_reset(tmp);
        return sq_buf_append(tmp, cur->data, cur->len);
    }
    utf8proc_option_t o = UTF8PROC_STABLE;
    if (op == NORM_NFC) o |= UTF8PROC_COMPOSE;
    else if (op == NORM_NFD) o |= UTF8PROC_DECOMPOSE;
    else if (op == NORM_NFKC) o |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
    else o |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)cur->data, (utf8proc_ssize_t)cur->len, &dst, o);
    if (n < 0) return SQ_EPARSE;
    sq_buf_reset(tmp);
    int rc = sq_buf_append(tmp, dst, (size_t)n);
    free(dst);
    return rc;
}

static int replace_all(const char *a, size_t alen, const char *b, size_t blen, sq_buf *cur, sq_buf *tmp) {
    sq_buf_reset(tmp);
    if (alen == 0) return sq_buf_append(tmp, cur->data, cur->len);
    size_t i = 0;
    while (i < cur->len) {
        const char *hit = alen <= cur->len - i ? memmem(cur->data + i, cur->len - i, a, alen) : NULL;
        if (!hit) break;
        size_t at = (size_t)(hit - cur->data);
        if (sq_buf_append(tmp, cur->data + i, at - i) || sq_buf_append(tmp, b, blen)) return SQ_ENOMEM;
        i = at + alen;
    }
    return sq_buf_append(tmp, cur->data + i, cur->len - i);
}

static int lowercase(sq_buf *cur, sq_buf *tmp) {
    sq_buf_reset(tmp);
    const uint8_t *s = (const uint8_t *)cur->data;
    for (size_t i = 0; i < cur->len;) {
        uint32_t cp;
        int k = tok_utf8_next(s + i, cur->len - i, &cp);
        if (!k) k = 1, cp = 0xFFFD;
        char o[4];
        if (sq_buf_append(tmp, o, (size_t)tok_utf8_put((uint32_t)utf8proc_tolower((utf8proc_int32_t)cp), o)))
            return SQ_ENOMEM;
        i += k;
    }
    return 0;
}

int tok_normalize(const sq_tokenizer *t, const char *seg, size_t n, int at_start, sq_buf *out, sq_err *e) {
    if (t->n_norm == 0 && !t->metaspace && !t->bl_prefix_space) return 1;
    sq_buf a = {0}, b = {0};
    int rc = sq_buf_append(&a, seg, n);
    for (int i = 0; i < t->n_norm && !rc; i++) {
        const tok_norm *nm = &t->norm[i];
        switch (nm->op) {
        case NORM_PREPEND:
            if (a.len == 0) continue;
            sq_buf_reset(&b);
            rc = sq_buf_append(&b, nm->a, nm->alen) || sq_buf_append(&b, a.data, a.len);
            break;
        case NORM_REPLACE: rc = replace_all(nm->a, nm->alen, nm->b, nm->blen, &a, &b); break;
        case NORM_LOWER: rc = lowercase(&a, &b); break;
        default: rc = norm_unicode(nm->op, &a, &b); break;
        }
        sq_buf tmp = a;
        a = b, b = tmp;
    }
    /* Metaspace and ByteLevel's add_prefix_space edit the text before splitting it. */
    if (!rc && t->metaspace) {
        char meta[4];
        size_t ml = (size_t)tok_utf8_put(t->meta_char, meta);
        rc = replace_all(" ", 1, meta, ml, &a, &b);
        sq_buf tmp = a;
        a = b, b = tmp;
        int starts = a.len >= ml && !memcmp(a.data, meta, ml);
        if (!rc && !starts && (t->meta_prepend == PREPEND_ALWAYS || (t->meta_prepend == PREPEND_FIRST && at_start))) {
            sq_buf_reset(&b);
            rc = sq_buf_append(&b, meta, ml) || sq_buf_append(&b, a.data, a.len);
            tmp = a, a = b, b = tmp;
        }
    }
    if (!rc && t->bl_prefix_space && (a.len == 0 || a.data[0] != ' ')) {
        sq_buf_reset(&b);
        rc = sq_buf_append(&b, " ", 1) || sq_buf_append(&b, a.data, a.len);
        sq_buf tmp = a;
        a = b, b = tmp;
    }
    sq_buf_free(&b);
    if (rc) {
        sq_buf_free(&a);
        return sq_fail(e, SQ_ENOMEM, "tokenizer: normalizing failed");
    }
    sq_buf_free(out);
    *out = a;
    if (!out->data && sq_buf_reserve(out, 1)) return SQ_ENOMEM;
    return 0;
}

typedef struct piece {
    size_t s, e;
    int m;
} piece;

static int spans_push(tok_spans *sp, size_t s, size_t len) {
    if (sp->n + 2 > sp->cap) {
        size_t c = sp->cap ? sp->cap * 2 : 256;
        size_t *v = realloc(sp->v, c * sizeof *v);
        if (!v) return SQ_ENOMEM;
        sp->v = v, sp->cap = c;
    }
    sp->v[sp->n++] = s;
    sp->v[sp->n++] = len;
    return 0;
}

/* One Split step over one piece [s0, s0+n): HF's find_matches + delimiter behaviour. */
static int split_piece(const tok_step *st, const char *base, size_t s0, size_t n, pcre2_match_data *md,
                       const pcre2_match_context *mctx, piece **pv, size_t *pcap, tok_spans *out, sq_err *e) {
    size_t np = 0;
    const char *sub = base + s0;
    size_t pos = 0, prev = 0;
#define PUSHP(a, b, mm)                                                                                           \
    do {                                                                                                          \
        if (np == *pcap) {                                                                                        \
            size_t c = *pcap ? *pcap * 2 : 64;                                                                    \
            piece *q = realloc(*pv, c * sizeof *q);                                                               \
            if (!q) return SQ_ENOMEM;                                                                             \
            *pv = q, *pcap = c;                                                                                   \
        }                                                                                                         \
        (*pv)[np++] = (piece){(a), (b), (mm)};                                                                    \
    } while (0)
    while (pos <= n) {
        int rc = pcre2_match(st->re, (PCRE2_SPTR)sub, n, pos, PCRE2_NO_UTF_CHECK, md, (pcre2_match_context *)mctx);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return sq_fail(e, SQ_ERANGE, "tokenizer: pre-tokenizer regex failed at byte %zu: %s", s0 + pos,
                           (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (me == ms) { /* an empty match splits nothing; step over one character */
            if (ms >= n) break;
            pos = ms + 1;
            while (pos < n && ((uint8_t)sub[pos] & 0xC0) == 0x80) pos++;
            continue;
        }
        if (prev != ms) PUSHP(prev, ms, 0);
        PUSHP(ms, me, 1);
        prev = pos = me;
    }
    if (prev != n) PUSHP(prev, n, 0);
    if (n == 0) PUSHP(0, 0, 0);
    piece *p = *pv;
    if (st->invert)
        for (size_t i = 0; i < np; i++) p[i].m = !p[i].m;
    size_t k = 0;
    int prev_m = 0;
    switch (st->behavior) {
    case SPLIT_ISOLATED: k = np; break;
    case SPLIT_REMOVED:
        for (size_t i = 0; i < np; i++)
            if (!p[i].m) p[k++] = p[i];
        break;
    case SPLIT_MERGED_PREV:
        for (size_t i = 0; i < np; i++) {
            if (p[i].m && !prev_m && k > 0) p[k - 1].e = p[i].e;
            else p[k++] = p[i];
            prev_m = p[i].m;
        }
        break;
    case SPLIT_MERGED_NEXT: {
        /* HF folds from the right: a match joins the piece after it. */
        size_t w = np;
        for (size_t i = np; i-- > 0;) {
            if (p[i].m && !prev_m && w < np) p[w].s = p[i].s;
            else p[--w] = p[i];
            prev_m = p[i].m;
        }
        memmove(p, p + w, (np - w) * sizeof *p);
        k = np - w;
        break;
    }
    case SPLIT_CONTIGUOUS:
        for (size_t i = 0; i < np; i++) {
            if (p[i].m == prev_m && k > 0) p[k - 1].e = p[i].e;
            else p[k++] = p[i];
            prev_m = p[i].m;
        }
        break;
    }
    for (size_t i = 0; i < k; i++)
        if (p[i].e > p[i].s && spans_push(out, s0 + p[i].s, p[i].e - p[i].s)) return SQ_ENOMEM;
    return 0;
#undef PUSHP
}

int tok_pretokenize(const sq_tokenizer *t, const char *s, size_t n, tok_spans *spans, sq_err *e) {
    spans->n = 0;
    if (n == 0) return 0;
    if (spans_push(spans, 0, n)) return SQ_ENOMEM;
    if (t->n_steps == 0) return 0;
    pcre2_match_data *md = pcre2_match_data_create(4, NULL);
    if (!md) return sq_fail(e, SQ_ENOMEM, "tokenizer: out of memory");
    tok_spans next = {0};
    piece *pv = NULL;
    size_t pcap = 0;
    int rc = 0;
    for (int i = 0; i < t->n_steps && !rc; i++) {
        next.n = 0;
        for (size_t j = 0; j < spans->n && !rc; j += 2)
            rc = split_piece(&t->steps[i], s, spans->v[j], spans->v[j + 1], md, t->mctx, &pv, &pcap, &next, e);
        tok_spans tmp = *spans;
        *spans = next;
        next = tmp;
    }
    free(next.v);
    free(pv);
    pcre2_match_data_free(md);
    if (rc == SQ_ENOMEM) return sq_fail(e, rc, "tokenizer: out of memory");
    return rc;
}
