/* Loading HF tokenizer.json: the BPE model, added tokens, normalizer, pre-tokenizer,
 * decoder and post-processor (for BOS/EOS). Anything the encoder would get wrong is refused
 * with SQ_EUNSUP rather than silently approximated. */
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

static int jbool(const cJSON *o, const char *k, int dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    return dflt;
}

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *jtype(const cJSON *o) { return cJSON_IsObject(o) ? jstr(o, "type") : NULL; }

/* Split/Replace patterns are {"String": s} or {"Regex": r}. */
static const char *jpattern(const cJSON *o, int *is_literal) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "pattern");
    const char *s;
    if ((s = jstr(p, "String"))) {
        *is_literal = 1;
        return s;
    }
    *is_literal = 0;
    return jstr(p, "Regex");
}

static int load_normalizer(sq_tokenizer *t, const cJSON *n, const char *name, sq_err *e) {
    if (!n || cJSON_IsNull(n)) return 0;
    const char *ty = jtype(n);
    if (!ty) return sq_fail(e, SQ_EPARSE, "%s: normalizer: expected an object with \"type\"", name);
    if (!strcmp(ty, "Sequence")) {
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(n, "normalizers")) {
            int rc = load_normalizer(t, c, name, e);
            if (rc) return rc;
        }
        return 0;
    }
    if (!strcmp(ty, "NFC")) return tok_add_norm(t, NORM_NFC, NULL, 0, NULL, 0, e);
    if (!strcmp(ty, "NFKC")) return tok_add_norm(t, NORM_NFKC, NULL, 0, NULL, 0, e);
    if (!strcmp(ty, "NFD")) return tok_add_norm(t, NORM_NFD, NULL, 0, NULL, 0, e);
    if (!strcmp(ty, "NFKD")) return tok_add_norm(t, NORM_NFKD, NULL, 0, NULL, 0, e);
    if (!strcmp(ty, "Lowercase")) return tok_add_norm(t, NORM_LOWER, NULL, 0, NULL, 0, e);
    if (!strcmp(ty, "Prepend")) {
        const char *p = jstr(n, "prepend");
        if (!p) return sq_fail(e, SQ_EPARSE, "%s: normalizer Prepend: missing \"prepend\"", name);
        return tok_add_norm(t, NORM_PREPEND, p, strlen(p), NULL, 0, e);
    }
    if (!strcmp(ty, "Replace")) {
        int lit;
        const char *p = jpattern(n, &lit), *c = jstr(n, "content");
        if (!p || !c) return sq_fail(e, SQ_EPARSE, "%s: normalizer Replace: missing pattern or content", name);
        if (!lit) return sq_fail(e, SQ_EUNSUP, "%s: normalizer Replace with a regex pattern is not supported", name);
        return tok_add_norm(t, NORM_REPLACE, p, strlen(p), c, strlen(c), e);
    }
    return sq_fail(e, SQ_EUNSUP, "%s: normalizer type '%s' is not supported", name, ty);
}

static int behavior_of(const char *b) {
    if (!b || !strcmp(b, "Isolated")) return SPLIT_ISOLATED;
    if (!strcmp(b, "Removed")) return SPLIT_REMOVED;
    if (!strcmp(b, "MergedWithPrevious")) return SPLIT_MERGED_PREV;
    if (!strcmp(b, "MergedWithNext")) return SPLIT_MERGED_NEXT;
    if (!strcmp(b, "Contiguous")) return SPLIT_CONTIGUOUS;
    return -1;
}

static int prepend_scheme_of(const cJSON *n) {
    const char *s = jstr(n, "prepend_scheme");
    if (s) return !strcmp(s, "first") ? PREPEND_FIRST : !strcmp(s, "never") ? PREPEND_NEVER : PREPEND_ALWAYS;
    return jbool(n, "add_prefix_space", 1) ? PREPEND_ALWAYS : PREPEND_NEVER;
}

static int load_pretok(sq_tokenizer *t, const cJSON *n, int depth, const char *name, sq_err *e) {
    if (!n || cJSON_IsNull(n)) return 0;
    const char *ty = jtype(n);
    if (!ty) return sq_fail(e, SQ_EPARSE, "%s: pre_tokenizer: expected an object with \"type\"", name);
    if (!strcmp(ty, "Sequence")) {
        const cJSON *c;
        int i = 0;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(n, "pretokenizers")) {
            int rc = load_pretok(t, c, depth + 1 + i++, name, e);
            if (rc) return rc;
        }
        return 0;
    }
    if (!strcmp(ty, "ByteLevel")) {
        t->byte_level = 1;
        if (jbool(n, "add_prefix_space", 0)) {
            /* Prefixing a space per piece of an earlier split is HF behaviour we do not model. */
            if (t->n_steps > 0)
                return sq_fail(e, SQ_EUNSUP, "%s: ByteLevel add_prefix_space after a Split is not supported", name);
            t->bl_prefix_space = 1;
        }
        if (jbool(n, "use_regex", 1)) return tok_add_split(t, tok_re_gpt2, 0, SPLIT_ISOLATED, 0, e);
        return 0;
    }
    if (!strcmp(ty, "Split")) {
        int lit;
        const char *p = jpattern(n, &lit);
        int b = behavior_of(jstr(n, "behavior"));
        if (!p) return sq_fail(e, SQ_EPARSE, "%s: pre_tokenizer Split: missing pattern", name);
        if (b < 0) return sq_fail(e, SQ_EUNSUP, "%s: pre_tokenizer Split: unknown behavior '%s'", name, jstr(n, "behavior"));
        int rc = tok_add_split(t, p, lit, b, jbool(n, "invert", 0), e);
        if (rc) sq_err_wrap(e, "%s", name);
        return rc;
    }
    if (!strcmp(ty, "Metaspace")) {
        if (t->n_steps > 0 || t->metaspace)
            return sq_fail(e, SQ_EUNSUP, "%s: Metaspace after another pre-tokenizer is not supported", name);
        const char *r = jstr(n, "replacement");
        uint32_t cp = 0x2581;
        if (r && *r && !tok_utf8_next((const uint8_t *)r, strlen(r), &cp))
            return sq_fail(e, SQ_EPARSE, "%s: Metaspace replacement is not UTF-8", name);
        t->metaspace = 1;
        t->meta_char = cp;
        t->meta_prepend = prepend_scheme_of(n);
        if (jbool(n, "split", 1)) {
            char meta[5] = {0};
            tok_utf8_put(cp, meta);
            return tok_add_split(t, meta, 1, SPLIT_MERGED_NEXT, 0, e);
        }
        return 0;
    }
    if (!strcmp(ty, "Digits"))
        return tok_add_split(t, jbool(n, "individual_digits", 0) ? "\\p{N}" : "\\p{N}+", 0, SPLIT_ISOLATED, 0, e);
    if (!strcmp(ty, "WhitespaceSplit")) return tok_add_split(t, "\\s+", 0, SPLIT_REMOVED, 0, e);
    if (!strcmp(ty, "Whitespace")) {
        int rc = tok_add_split(t, "\\w+|[^\\w\\s]+", 0, SPLIT_REMOVED, 1, e);
        return rc;
    }
    (void)depth;
    return sq_fail(e, SQ_EUNSUP, "%s: pre_tokenizer type '%s' is not supported", name, ty);
}

/* Decoders only change how ids turn into text; anything unrecognised keeps the pieces. */
static int load_decoder(sq_tokenizer *t, const cJSON *d, const char *name, sq_err *e) {
    const char *ty = jtype(d);
    if (!ty) return 0;
    if (!strcmp(ty, "ByteLevel")) t->decoder = DEC_BYTELEVEL;
    else if (!strcmp(ty, "Metaspace")) {
        t->decoder = DEC_SPM;
        t->strip_leading_space = prepend_scheme_of(d) != PREPEND_NEVER;
    } else if (!strcmp(ty, "ByteFallback") || !strcmp(ty, "Replace")) {
        if (t->decoder != DEC_BYTELEVEL) t->decoder = DEC_SPM;
    } else if (!strcmp(ty, "Strip")) {
        const char *c = jstr(d, "content");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(d, "start");
        if (c && !strcmp(c, " ") && cJSON_IsNumber(st) && st->valueint >= 1) t->strip_leading_space = 1;
    } else if (!strcmp(ty, "Sequence")) {
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(d, "decoders")) {
            int rc = load_decoder(t, c, name, e);
            if (rc) return rc;
        }
    }
    return 0;
}

static int32_t special_id(const cJSON *specials, const char *tokname) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(specials, tokname);
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(s, "ids");
    const cJSON *first = cJSON_IsArray(ids) ? cJSON_GetArrayItem(ids, 0) : NULL;
    return cJSON_IsNumber(first) ? (int32_t)first->valuedouble : -1;
}

/* TemplateProcessing's "single" template tells whether BOS/EOS wrap a sequence. */
static void load_post(sq_tokenizer *t, const cJSON *p) {
    const char *ty = jtype(p);
    if (!ty) return;
    if (!strcmp(ty, "Sequence")) {
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(p, "processors")) load_post(t, c);
        return;
    }
    if (strcmp(ty, "TemplateProcessing")) return;
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(p, "single");
    const cJSON *specials = cJSON_GetObjectItemCaseSensitive(p, "special_tokens");
    int n = cJSON_GetArraySize(single), seen_seq = 0;
    for (int i = 0; i < n; i++) {
        const cJSON *it = cJSON_GetArrayItem(single, i);
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(it, "SpecialToken");
        if (cJSON_GetObjectItemCaseSensitive(it, "Sequence")) seen_seq = 1;
        if (!sp) continue;
        int32_t id = special_id(specials, jstr(sp, "id") ? jstr(sp, "id") : "");
        if (id < 0) continue;
        if (!seen_seq) t->bos = id, t->add_bos = 1;
        else t->eos = id, t->add_eos = 1;
    }
}

static int load_merges(sq_tokenizer *t, const cJSON *merges, const char *name, sq_err *e) {
    int32_t rank = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, merges) {
        const char *a, *b;
        size_t alen, blen;
        if (cJSON_IsString(m)) {
            a = m->valuestring;
            const char *sp = strchr(a, ' ');
            if (!sp || strchr(sp + 1, ' '))
                return sq_fail(e, SQ_EPARSE, "%s: model.merges[%d]: expected \"left right\", got \"%.60s\"", name, rank,
                               a);
            alen = (size_t)(sp - a);
            b = sp + 1;
            blen = strlen(b);
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(cJSON_GetArrayItem(m, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(m, 1))) {
            a = cJSON_GetArrayItem(m, 0)->valuestring;
            b = cJSON_GetArrayItem(m, 1)->valuestring;
            alen = strlen(a), blen = strlen(b);
        } else {
            return sq_fail(e, SQ_EPARSE, "%s: model.merges[%d]: expected a string or a pair of strings", name, rank);
        }
        int rc = tok_add_merge(t, a, alen, b, blen, rank, name, e);
        if (rc) return rc;
        rank++;
    }
    return 0;
}

static const char *const bos_names[] = {"<s>", "<|begin_of_text|>", "<｜begin▁of▁sentence｜>", "<bos>"};
static const char *const eos_names[] = {"</s>", "<|end_of_text|>", "<|endoftext|>", "<｜end▁of▁sentence｜>", "<eos>"};

/* Where the post-processor did not name them, take the conventional spellings. */
static void guess_bos_eos(sq_tokenizer *t) {
    for (size_t i = 0; i < SQ_ARRAY_LEN(bos_names) && t->bos < 0; i++)
        t->bos = tok_lookup(t, bos_names[i], strlen(bos_names[i]));
    for (size_t i = 0; i < SQ_ARRAY_LEN(eos_names) && t->eos < 0; i++)
        t->eos = tok_lookup(t, eos_names[i], strlen(eos_names[i]));
}

static size_t line_of(const char *json, size_t len, const char *at) {
    size_t line = 1;
    for (const char *p = json; p < at && p < json + len; p++) line += *p == '\n';
    return line;
}

static int load_doc(sq_tokenizer *t, const cJSON *root, const char *name, sq_err *e) {
    if (!cJSON_IsObject(root)) return sq_fail(e, SQ_EPARSE, "%s: expected a JSON object at the top", name);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model)) return sq_fail(e, SQ_EPARSE, "%s: missing \"model\" object", name);
    const char *mt = jtype(model);
    if (mt && strcmp(mt, "BPE"))
        return sq_fail(e, SQ_EUNSUP, "%s: model type '%s' is not supported (only BPE)", name, mt);
    const char *csp = jstr(model, "continuing_subword_prefix"), *eow = jstr(model, "end_of_word_suffix");
    if ((csp && *csp) || (eow && *eow))
        return sq_fail(e, SQ_EUNSUP, "%s: BPE with continuing_subword_prefix/end_of_word_suffix is not supported", name);
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!cJSON_IsObject(vocab)) return sq_fail(e, SQ_EPARSE, "%s: model.vocab: expected an object", name);
    const cJSON *v;
    cJSON_ArrayForEach(v, vocab) {
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= (1 << 24) ||
            v->valuedouble != (double)(int32_t)v->valuedouble)
            return sq_fail(e, SQ_EPARSE, "%s: model.vocab[\"%.60s\"]: expected an id in 0..16777215", name, v->string);
        if (!v->string[0]) return sq_fail(e, SQ_EPARSE, "%s: model.vocab: empty piece", name);
        if (tok_set_piece(t, (int32_t)v->valuedouble, v->string, strlen(v->string)))
            return sq_fail(e, SQ_ENOMEM, "%s: out of memory", name);
    }
    t->byte_fallback = jbool(model, "byte_fallback", 0);
    t->ignore_merges = jbool(model, "ignore_merges", 0);
    t->fuse_unk = jbool(model, "fuse_unk", 0);
    if (!cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(model, "dropout")) &&
        cJSON_GetObjectItemCaseSensitive(model, "dropout"))
        sq_warn("%s: BPE dropout ignored (encoding is deterministic)", name);

    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    int i = 0;
    cJSON_ArrayForEach(v, added) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(v, "id");
        const char *content = jstr(v, "content");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= (1 << 24) || !content || !*content)
            return sq_fail(e, SQ_EPARSE, "%s: added_tokens[%d]: expected \"id\" (0..16777215) and non-empty \"content\"",
                           name, i);
        if (tok_add_added(t, (int32_t)id->valuedouble, content, strlen(content), jbool(v, "special", 0)))
            return sq_fail(e, SQ_ENOMEM, "%s: out of memory", name);
        tok_added *a = &t->added[t->n_added - 1];
        a->lstrip = (uint8_t)jbool(v, "lstrip", 0);
        a->rstrip = (uint8_t)jbool(v, "rstrip", 0);
        a->single_word = (uint8_t)jbool(v, "single_word", 0);
        a->normalized = (uint8_t)jbool(v, "normalized", 0);
        i++;
    }
    int rc = tok_build_strmap(t, e);
    if (rc) return rc;
    const char *unk = jstr(model, "unk_token");
    if (unk) t->unk = tok_lookup(t, unk, strlen(unk));

    if ((rc = load_normalizer(t, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), name, e))) return rc;
    if ((rc = load_pretok(t, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), 0, name, e))) return rc;
    if ((rc = load_decoder(t, cJSON_GetObjectItemCaseSensitive(root, "decoder"), name, e))) return rc;
    load_post(t, cJSON_GetObjectItemCaseSensitive(root, "post_processor"));
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (merges && !cJSON_IsArray(merges)) return sq_fail(e, SQ_EPARSE, "%s: model.merges: expected an array", name);
    if ((rc = load_merges(t, merges, name, e))) return rc;
    guess_bos_eos(t);
    return tok_finish(t, name, e);
}

int sq_tok_load_json(sq_tokenizer **out, const char *json, size_t len, const char *name, sq_err *e) {
    *out = NULL;
    if (!name) name = "tokenizer.json";
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= json && at <= json + len ? (size_t)(at - json) : 0;
        return sq_fail(e, SQ_EPARSE, "%s:%zu: JSON syntax error at byte %zu", name, line_of(json, len, json + off), off);
    }
    sq_tokenizer *t = tok_new();
    if (!t) {
        cJSON_Delete(root);
        return sq_fail(e, SQ_ENOMEM, "%s: out of memory", name);
    }
    int rc = load_doc(t, root, name, e);
    cJSON_Delete(root);
    if (rc) {
        sq_tok_free(t);
        return rc;
    }
    *out = t;
    return 0;
}
