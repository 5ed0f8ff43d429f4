/* Writing tokenizer.json in HF's layout, so the `tokenizers` library (and transformers'
 * PreTrainedTokenizerFast) loads it and encodes exactly as we do. Byte-level and rank-merged
 * vocabularies only: a score-merged SentencePiece vocabulary has no merge list to write. */
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

static const char *behavior_name(int b) {
    static const char *const n[] = {"Isolated", "Removed", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    return b >= 0 && b < 5 ? n[b] : "Isolated";
}

static cJSON *str_n(const char *s, size_t n) {
    char *z = sq_strndup(s, n);
    cJSON *j = z ? cJSON_CreateString(z) : NULL;
    free(z);
    return j;
}

static cJSON *normalizer_json(const sq_tokenizer *t) {
    if (t->n_norm == 0) return cJSON_CreateNull();
    cJSON *seq = cJSON_CreateObject(), *arr = cJSON_CreateArray();
    cJSON_AddStringToObject(seq, "type", "Sequence");
    cJSON_AddItemToObject(seq, "normalizers", arr);
    static const char *const names[] = {"", "NFC", "NFKC", "NFD", "NFKD", "Lowercase"};
    for (int i = 0; i < t->n_norm; i++) {
        const tok_norm *n = &t->norm[i];
        cJSON *o = cJSON_CreateObject();
        if (n->op == NORM_PREPEND) {
            cJSON_AddStringToObject(o, "type", "Prepend");
            cJSON_AddItemToObject(o, "prepend", str_n(n->a, n->alen));
        } else if (n->op == NORM_REPLACE) {
            cJSON *pat = cJSON_CreateObject();
            cJSON_AddItemToObject(pat, "String", str_n(n->a, n->alen));
            cJSON_AddStringToObject(o, "type", "Replace");
            cJSON_AddItemToObject(o, "pattern", pat);
            cJSON_AddItemToObject(o, "content", str_n(n->b, n->blen));
        } else {
            cJSON_AddStringToObject(o, "type", names[n->op]);
        }
        cJSON_AddItemToArray(arr, o);
    }
    return seq;
}

static cJSON *pretok_json(const sq_tokenizer *t) {
    cJSON *seq = cJSON_CreateObject(), *arr = cJSON_CreateArray();
    cJSON_AddStringToObject(seq, "type", "Sequence");
    cJSON_AddItemToObject(seq, "pretokenizers", arr);
    for (int i = 0; i < t->n_steps; i++) {
        const tok_step *s = &t->steps[i];
        cJSON *o = cJSON_CreateObject(), *pat = cJSON_CreateObject();
        cJSON_AddStringToObject(pat, s->is_literal ? "String" : "Regex", s->pattern);
        cJSON_AddStringToObject(o, "type", "Split");
        cJSON_AddItemToObject(o, "pattern", pat);
        cJSON_AddStringToObject(o, "behavior", behavior_name(s->behavior));
        cJSON_AddBoolToObject(o, "invert", s->invert);
        cJSON_AddItemToArray(arr, o);
    }
    if (t->byte_level) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "type", "ByteLevel");
        cJSON_AddBoolToObject(o, "add_prefix_space", t->bl_prefix_space);
        cJSON_AddBoolToObject(o, "trim_offsets", 1);
        cJSON_AddBoolToObject(o, "use_regex", 0);
        cJSON_AddItemToArray(arr, o);
    }
    return seq;
}

static cJSON *decoder_json(const sq_tokenizer *t) {
    cJSON *o = cJSON_CreateObject();
    if (t->decoder == DEC_BYTELEVEL) {
        cJSON_AddStringToObject(o, "type", "ByteLevel");
        cJSON_AddBoolToObject(o, "add_prefix_space", 1);
        cJSON_AddBoolToObject(o, "trim_offsets", 1);
        cJSON_AddBoolToObject(o, "use_regex", 1);
        return o;
    }
    cJSON *arr = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "type", "Sequence");
    cJSON_AddItemToObject(o, "decoders", arr);
    if (t->decoder == DEC_SPM) {
        char meta[5] = {0};
        tok_utf8_put(t->meta_char, meta);
        cJSON *r = cJSON_CreateObject(), *pat = cJSON_CreateObject();
        cJSON_AddStringToObject(pat, "String", meta);
        cJSON_AddStringToObject(r, "type", "Replace");
        cJSON_AddItemToObject(r, "pattern", pat);
        cJSON_AddStringToObject(r, "content", " ");
        cJSON_AddItemToArray(arr, r);
        cJSON *bf = cJSON_CreateObject();
        cJSON_AddStringToObject(bf, "type", "ByteFallback");
        cJSON_AddItemToArray(arr, bf);
    }
    cJSON *fuse = cJSON_CreateObject();
    cJSON_AddStringToObject(fuse, "type", "Fuse");
    cJSON_AddItemToArray(arr, fuse);
    if (t->strip_leading_space) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "type", "Strip");
        cJSON_AddStringToObject(s, "content", " ");
        cJSON_AddNumberToObject(s, "start", 1);
        cJSON_AddNumberToObject(s, "stop", 0);
        cJSON_AddItemToArray(arr, s);
    }
    return o;
}

static cJSON *post_json(const sq_tokenizer *t) {
    if (!(t->add_bos && t->bos >= 0) && !(t->add_eos && t->eos >= 0)) return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject(), *single = cJSON_CreateArray(), *pair = cJSON_CreateArray(),
          *sp = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "TemplateProcessing");
    for (int k = 0; k < 2; k++) {
        cJSON *tmpl = k ? pair : single;
        for (int part = 0; part < 4; part++) {
            int is_seq = part == 1 || part == 2;
            if (part == 2 && !k) continue;
            int32_t id = part == 0 ? (t->add_bos ? t->bos : -1) : part == 3 ? (t->add_eos ? t->eos : -1) : -1;
            cJSON *item = cJSON_CreateObject(), *in = cJSON_CreateObject();
            if (is_seq) {
                cJSON_AddStringToObject(in, "id", part == 1 ? "A" : "B");
                cJSON_AddNumberToObject(in, "type_id", 0);
                cJSON_AddItemToObject(item, "Sequence", in);
            } else if (id >= 0) {
                cJSON_AddItemToObject(in, "id", str_n(t->pool + t->off[id], t->plen[id]));
                cJSON_AddNumberToObject(in, "type_id", 0);
                cJSON_AddItemToObject(item, "SpecialToken", in);
            } else {
                cJSON_Delete(item);
                cJSON_Delete(in);
                continue;
            }
            cJSON_AddItemToArray(tmpl, item);
        }
    }
    int32_t ids[2] = {t->add_bos ? t->bos : -1, t->add_eos ? t->eos : -1};
    for (int i = 0; i < 2; i++) {
        if (ids[i] < 0) continue;
        char *name = sq_strndup(t->pool + t->off[ids[i]], t->plen[ids[i]]);
        cJSON *s = cJSON_CreateObject(), *idarr = cJSON_CreateArray(), *toks = cJSON_CreateArray();
        cJSON_AddItemToArray(idarr, cJSON_CreateNumber(ids[i]));
        cJSON_AddItemToArray(toks, cJSON_CreateString(name ? name : ""));
        cJSON_AddStringToObject(s, "id", name ? name : "");
        cJSON_AddItemToObject(s, "ids", idarr);
        cJSON_AddItemToObject(s, "tokens", toks);
        if (!cJSON_GetObjectItemCaseSensitive(sp, name ? name : "")) cJSON_AddItemToObject(sp, name ? name : "", s);
        else cJSON_Delete(s);
        free(name);
    }
    cJSON_AddItemToObject(o, "single", single);
    cJSON_AddItemToObject(o, "pair", pair);
    cJSON_AddItemToObject(o, "special_tokens", sp);
    return o;
}

static int cmp_rank(const void *a, const void *b) {
    const tok_pair *x = *(const tok_pair *const *)a, *y = *(const tok_pair *const *)b;
    return x->rank < y->rank ? -1 : x->rank > y->rank;
}

int sq_tok_save_json(const sq_tokenizer *t, const char *path, sq_err *e) {
    if (t->use_scores)
        return sq_fail(e, SQ_EUNSUP, "%s: a score-merged SentencePiece vocabulary cannot be written as tokenizer.json",
                       path);
    if (t->metaspace) return sq_fail(e, SQ_EUNSUP, "%s: writing a Metaspace pre-tokenizer is not supported", path);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON_AddNullToObject(root, "truncation");
    cJSON_AddNullToObject(root, "padding");
    cJSON *added = cJSON_CreateArray();
    /* HF lists added tokens by id */
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (!(t->flags[id] & TOKF_ADDED)) continue;
        const tok_added *a = NULL;
        for (int i = 0; i < t->n_added && !a; i++)
            if (t->added[i].id == id) a = &t->added[i];
        if (!a) continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", id);
        cJSON_AddItemToObject(o, "content", str_n(a->content, a->len));
        cJSON_AddBoolToObject(o, "single_word", a->single_word);
        cJSON_AddBoolToObject(o, "lstrip", a->lstrip);
        cJSON_AddBoolToObject(o, "rstrip", a->rstrip);
        cJSON_AddBoolToObject(o, "normalized", 0);
        cJSON_AddBoolToObject(o, "special", a->special);
        cJSON_AddItemToArray(added, o);
    }
    cJSON_AddItemToObject(root, "added_tokens", added);
    cJSON_AddItemToObject(root, "normalizer", normalizer_json(t));
    cJSON_AddItemToObject(root, "pre_tokenizer", pretok_json(t));
    cJSON_AddItemToObject(root, "post_processor", post_json(t));
    cJSON_AddItemToObject(root, "decoder", decoder_json(t));
    cJSON *model = cJSON_CreateObject();
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    if (t->unk >= 0) cJSON_AddItemToObject(model, "unk_token", str_n(t->pool + t->off[t->unk], t->plen[t->unk]));
    else cJSON_AddNullToObject(model, "unk_token");
    cJSON_AddNullToObject(model, "continuing_subword_prefix");
    cJSON_AddNullToObject(model, "end_of_word_suffix");
    cJSON_AddBoolToObject(model, "fuse_unk", t->fuse_unk);
    cJSON_AddBoolToObject(model, "byte_fallback", t->byte_fallback);
    cJSON_AddBoolToObject(model, "ignore_merges", t->ignore_merges);
    cJSON *vocab = cJSON_CreateObject();
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (!t->plen[id] || (t->flags[id] & TOKF_ADDED)) continue;
        char *k = sq_strndup(t->pool + t->off[id], t->plen[id]);
        if (k) cJSON_AddItemToObject(vocab, k, cJSON_CreateNumber(id));
        free(k);
    }
    cJSON_AddItemToObject(model, "vocab", vocab);
    size_t nm = 0;
    const tok_pair **order = malloc((t->merges.n + 1) * sizeof *order);
    for (size_t i = 0; order && t->merges.slot && i <= t->merges.mask; i++)
        if (t->merges.slot[i].key != UINT64_MAX) order[nm++] = &t->merges.slot[i];
    if (order) qsort(order, nm, sizeof *order, cmp_rank);
    cJSON *merges = cJSON_CreateArray();
    for (size_t i = 0; order && i < nm; i++) {
        int32_t a = (int32_t)(order[i]->key >> 32), b = (int32_t)(uint32_t)order[i]->key;
        cJSON *m = cJSON_CreateArray();
        cJSON_AddItemToArray(m, str_n(t->pool + t->off[a], t->plen[a]));
        cJSON_AddItemToArray(m, str_n(t->pool + t->off[b], t->plen[b]));
        cJSON_AddItemToArray(merges, m);
    }
    free(order);
    cJSON_AddItemToObject(model, "merges", merges);
    cJSON_AddItemToObject(root, "model", model);
    char *txt = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!txt) return sq_fail(e, SQ_ENOMEM, "%s: out of memory while writing", path);
    int rc = sq_file_write_atomic(path, txt, strlen(txt), e);
    free(txt);
    return rc;
}
