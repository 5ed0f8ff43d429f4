/* The scorer (score.h): texts packed into forward steps of up to max_batch_tokens tokens,
 * each sequence's value read from the scalar head at its scored position. A sequence longer
 * than what is left of a step's budget is split across steps (its earlier positions wait in
 * the KV cache), so any length up to ctx_len runs with the same scratch. */
#include <stdlib.h>
#include <string.h>

#include "scalequest/chat_template.h"
#include "scalequest/infer.h"
#include "scalequest/model.h"
#include "scalequest/score.h"
#include "scalequest/tokenizer.h"

enum { BLOCK = 16, MAX_SEQS_PER_STEP = 512 };

struct sq_scorer {
    sq_model *m;
    sq_tokenizer *tok;
    sq_chat_template *chat;
    sq_fwd *f;
    int max_tokens, max_seqs, ctx;
    sq_kv_pool kv;     /* grown to what the longest text of a call needs */
    sq_kv_blocks free; /* which blocks of kv are in use during a call */
    int32_t *tokens, *pos, *rows;
    const int32_t **tables; /* per step token: its sequence's block table */
    int *row_seq;           /* per output row: the sequence it scores */
    float *vals;
};

void sq_scorer_opts_default(sq_scorer_opts *o) {
    memset(o, 0, sizeof *o);
    o->max_batch_tokens = 4096;
}

void sq_scorer_close(sq_scorer *s) {
    if (!s) return;
    sq_fwd_free(s->f);
    sq_kv_pool_free(&s->kv);
    sq_kv_blocks_free(&s->free);
    free(s->tokens);
    free(s->pos);
    free(s->rows);
    free(s->tables);
    free(s->row_seq);
    free(s->vals);
    sq_chat_template_free(s->chat);
    sq_tok_free(s->tok);
    sq_model_close(s->m);
    free(s);
}

int sq_scorer_open(sq_scorer **out, const char *path, const sq_scorer_opts *o, sq_err *e) {
    *out = NULL;
    sq_scorer_opts d;
    if (!o) sq_scorer_opts_default(&d), o = &d;
    if (o->max_batch_tokens < 0 || o->ctx_len < 0 || o->threads < 0)
        return sq_fail(e, SQ_EINVAL, "scorer: negative option (threads %d, max_batch_tokens %d, ctx_len %d)",
                       o->threads, o->max_batch_tokens, o->ctx_len);
    sq_scorer *s = calloc(1, sizeof *s);
    if (!s) return sq_fail(e, SQ_ENOMEM, "scorer: out of memory");
    if (o->threads > 0) sq_threads_set(o->threads);
    int rc = sq_model_open_head(&s->m, path, SQ_HEAD_SCORE, e);
    if (!rc && (rc = sq_tok_load(&s->tok, path, e))) sq_err_wrap(e, "%s: loading the tokenizer", path);
    if (!rc) {
        sq_err ce;
        if (sq_chat_template_open(&s->chat, path, &ce)) s->chat = NULL; /* a scorer may have none */
        s->max_tokens = o->max_batch_tokens > 0 ? o->max_batch_tokens : 4096;
        s->max_seqs = SQ_MIN(s->max_tokens, MAX_SEQS_PER_STEP);
        s->ctx = o->ctx_len > 0 ? o->ctx_len : s->m->cfg.max_seq_len;
        size_t T = (size_t)s->max_tokens, M = (size_t)s->max_seqs;
        s->tokens = malloc(T * sizeof *s->tokens);
        s->pos = malloc(T * sizeof *s->pos);
        s->tables = malloc(T * sizeof *s->tables);
        s->rows = malloc(M * sizeof *s->rows);
        s->row_seq = malloc(M * sizeof *s->row_seq);
        s->vals = malloc(M * sizeof *s->vals);
        if (!s->tokens || !s->pos || !s->tables || !s->rows || !s->row_seq || !s->vals)
            rc = sq_fail(e, SQ_ENOMEM, "scorer: out of memory for steps of %d tokens", s->max_tokens);
    }
    if (!rc) rc = sq_fwd_new(&s->f, s->m, s->max_tokens, s->max_seqs, s->ctx, e);
    if (rc) {
        sq_scorer_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

const struct sq_tokenizer *sq_scorer_tokenizer(const sq_scorer *s) { return s->tok; }
const struct sq_chat_template *sq_scorer_chat_template(const sq_scorer *s) { return s->chat; }
int sq_scorer_ctx_len(const sq_scorer *s) { return s->ctx; }

/* transformers: argmax of (index * (id != pad)), i.e. the last non-pad token, else token 0. */
int sq_scorer_scored_len(const sq_scorer *s, const int32_t *ids, int len) {
    int pad = s->m->cfg.pad_id;
    if (pad < 0 || len <= 0) return len;
    for (int i = len - 1; i > 0; i--)
        if (ids[i] != pad) return i + 1;
    return 1;
}

/* The pool holds every sequence of one step plus the one carried into the next: at most a
 * step's tokens in whole blocks, one partial block per sequence, and the longest sequence. */
static int reserve_pool(sq_scorer *s, int longest, sq_err *e) {
    int need = (s->max_tokens + BLOCK - 1) / BLOCK + s->max_seqs + (longest + BLOCK - 1) / BLOCK + 1;
    if (s->kv.n_blocks < need) {
        sq_kv_pool_free(&s->kv);
        int rc = sq_kv_pool_init(&s->kv, s->m, need, BLOCK, e);
        if (rc) return rc;
    }
    sq_kv_blocks_free(&s->free);
    return sq_kv_blocks_init(&s->free, s->kv.n_blocks, e);
}

static void release(sq_scorer *s, const int32_t *table, int len) {
    for (int b = 0; b < (len + BLOCK - 1) / BLOCK; b++) sq_kv_blocks_unref(&s->free, table[b]);
}

int sq_scorer_score_ids(sq_scorer *s, const int32_t *const *ids, const int *lens, int n, float *out, sq_err *e) {
    if (n <= 0) return 0;
    int V = s->m->cfg.vocab_size, longest = 0, rc = 0;
    int *len = malloc(sizeof(int) * (size_t)n);
    size_t *tab_at = malloc(sizeof(size_t) * ((size_t)n + 1));
    if (!len || !tab_at) {
        free(len);
        free(tab_at);
        return sq_fail(e, SQ_ENOMEM, "scorer: out of memory for %d sequences", n);
    }
    tab_at[0] = 0;
    for (int i = 0; i < n && !rc; i++) {
        if (lens[i] <= 0) rc = sq_fail(e, SQ_EINVAL, "scorer: sequence %d is empty", i);
        for (int t = 0; !rc && t < lens[i]; t++)
            if (ids[i][t] < 0 || ids[i][t] >= V)
                rc = sq_fail(e, SQ_ERANGE, "scorer: sequence %d: token %d is id %d, outside the vocabulary (%d)", i,
                             t, ids[i][t], V);
        len[i] = rc ? 0 : sq_scorer_scored_len(s, ids[i], lens[i]);
        if (!rc && len[i] > s->ctx)
            rc = sq_fail(e, SQ_ERANGE, "scorer: sequence %d has %d tokens to run, more than the context of %d", i,
                         len[i], s->ctx);
        longest = SQ_MAX(longest, len[i]);
        tab_at[i + 1] = tab_at[i] + (size_t)(len[i] + BLOCK - 1) / BLOCK;
    }
    int32_t *tables = rc ? NULL : malloc(sizeof(int32_t) * (tab_at[n] ? tab_at[n] : 1));
    if (!rc && !tables) rc = sq_fail(e, SQ_ENOMEM, "scorer: out of memory for block tables");
    if (!rc) rc = reserve_pool(s, longest, e);
    /* next: the first sequence not yet started; carry/done: the one split across steps and
     * how many of its tokens have run. */
    int next = 0, carry = -1, done = 0;
    while (!rc && (next < n || carry >= 0)) {
        int T = 0, n_out = 0;
        while (T < s->max_tokens && n_out < s->max_seqs && (carry >= 0 || next < n)) {
            int i = carry;
            if (i < 0) {
                i = next++, done = 0;
                for (size_t b = tab_at[i]; b < tab_at[i + 1]; b++) tables[b] = sq_kv_blocks_alloc(&s->free);
            }
            int take = SQ_MIN(len[i] - done, s->max_tokens - T);
            for (int t = 0; t < take; t++, T++) {
                s->tokens[T] = ids[i][done + t];
                s->pos[T] = done + t;
                s->tables[T] = tables + tab_at[i];
            }
            done += take;
            carry = done < len[i] ? i : -1;
            if (carry < 0) {
                s->rows[n_out] = T - 1;
                s->row_seq[n_out++] = i;
            }
        }
        sq_batch b = {T, s->tokens, s->pos, s->tables, n_out, s->rows};
        if ((rc = sq_model_forward(s->m, s->f, &s->kv, &b, s->vals, e))) break;
        for (int k = 0; k < n_out; k++) {
            int i = s->row_seq[k];
            out[i] = s->vals[k];
            release(s, tables + tab_at[i], len[i]);
        }
    }
    free(tables);
    free(tab_at);
    free(len);
    return rc;
}

int sq_scorer_score(sq_scorer *s, const char *const *texts, int n, float *out, sq_err *e) {
    if (n <= 0) return 0;
    int32_t **ids = calloc((size_t)n, sizeof *ids);
    int *lens = calloc((size_t)n, sizeof *lens), rc = 0;
    if (!ids || !lens) rc = sq_fail(e, SQ_ENOMEM, "scorer: out of memory for %d texts", n);
    for (int i = 0; i < n && !rc; i++) {
        size_t nt = 0;
        const char *t = texts[i] ? texts[i] : "";
        rc = sq_tok_encode(s->tok, t, strlen(t), SQ_TOK_ADD_SPECIAL | SQ_TOK_PARSE_SPECIAL, &ids[i], &nt, e);
        if (rc) sq_err_wrap(e, "scorer: text %d", i);
        else if (nt == 0) rc = sq_fail(e, SQ_EINVAL, "scorer: text %d has no tokens", i);
        lens[i] = (int)nt;
    }
    if (!rc) rc = sq_scorer_score_ids(s, (const int32_t *const *)ids, lens, n, out, e);
    for (int i = 0; ids && i < n; i++) free(ids[i]);
    free(ids);
    free(lens);
    return rc;
}
