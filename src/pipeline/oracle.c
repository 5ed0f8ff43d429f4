/* The tiny world's oracle as a backend (oracle.h): it reads the Figure 9-12 prompt a stage
 * sends, answers it from the world's knowledge in that figure's output format, and hands the
 * reply back through the backend callback exactly as the engine or a server would. */
#include <stdlib.h>
#include <string.h>

#include "scalequest/jsonl.h"
#include "scalequest/judge.h"
#include "scalequest/oracle.h"
#include "world_words.h"

typedef struct oracle {
    sq_backend base;
    sq_world_opts wo; /* the world's limits (learnt from TRAIN.jsonl when given) */
    int max_steps;    /* events a rewritten question may hold */
} oracle;

static const struct sq_backend_ops ORACLE_OPS;

int sq_backend_is_world_oracle(const sq_backend *b) { return b && b->ops == &ORACLE_OPS; }

/* ---- replies -------------------------------------------------------------------------- */

static const char *ITEM(const sq_story *s) { return sq_world_items[s->item]; }
static const char *NAME(const sq_story *s) { return sq_world_names[s->name]; }

/* The worked solution, one line per event, as the world's own responses read. */
static void walk(const sq_story *s, sq_buf *b) {
    const char *item = ITEM(s), *pl = s->name < SQ_WORLD_N_FEMALE ? "she" : "he";
    long long cur = (long long)s->start;
    sq_buf_printf(b, "%s starts with %lld %s.\n", NAME(s), cur, item);
    for (int i = 0; i < s->n_ev; i++) {
        const sq_story_event *ev = &s->ev[i];
        long long n = (long long)ev->n, k = (long long)ev->k, nxt;
        switch (ev->op) {
        case 'a':
            nxt = cur + n;
            sq_buf_printf(b, "After getting %lld more, %s has %lld + %lld = %lld %s.\n", n, pl, cur, n, nxt, item);
            break;
        case 's':
            nxt = cur - n;
            sq_buf_printf(b, "After %lld are gone, %s has %lld - %lld = %lld %s.\n", n, pl, cur, n, nxt, item);
            break;
        case 'b':
            nxt = cur + k * n;
            sq_buf_printf(b, "The %lld boxes hold %lld * %lld = %lld %s, so %s has %lld + %lld = %lld %s.\n", k, k, n,
                          k * n, item, pl, cur, k * n, nxt, item);
            break;
        case 'm':
            nxt = cur * k;
            sq_buf_printf(b, "Multiplying by %lld gives %lld * %lld = %lld %s.\n", k, cur, k, nxt, item);
            break;
        default:
            nxt = cur / k;
            sq_buf_printf(b, "Each of the %lld groups has %lld / %lld = %lld %s, and %s keeps %lld.\n", k, cur, k, nxt,
                          item, pl, nxt);
            break;
        }
        cur = nxt;
    }
    sq_buf_printf(b, "The answer is %lld.\n", cur);
}

static void write_story(const sq_story *s, sq_buf *b) {
    size_t n = sq_story_write(s, NULL, 0);
    if (sq_buf_reserve(b, n + 1)) return;
    sq_story_write(s, b->data + b->len, n + 1);
    b->len += n;
}

static const char *LEVELS[] = {"very easy", "very easy", "easy", "medium", "hard", "hard", "very hard"};
static const char *level_of(int steps) { return LEVELS[steps < 0 ? 0 : steps > 6 ? 6 : steps]; }

/* The question as the world reads it: solvable (parse ok, *steps) or not (*why). Either way
 * *st is the story a repair starts from (legal, at least one event). */
static int understand(const oracle *o, const char *q, size_t ql, uint64_t seed, sq_story *st, int *steps,
                      sq_err *why) {
    char *z = sq_strndup(q, ql);
    int64_t ans = 0;
    int ok = z && sq_world_parse(z, &ans, steps, why) == 0;
    free(z);
    sq_story_read(q, ql, seed, st);
    /* a solvable question keeps all its events; a repaired one is held to the world's size */
    sq_story_legalize(st, ok ? (int)SQ_ARRAY_LEN(st->ev) : o->max_steps);
    if (st->n_ev == 0) {
        sq_rng r;
        sq_rng_seed(&r, seed ^ 0xadd57e9ULL);
        if (sq_story_add_step(st, &o->wo, &r)) {
            /* a start so large no event fits: restate it with a small one */
            st->start = 2 + (int64_t)sq_rng_below(&r, (uint64_t)o->wo.max_number - 1);
            sq_story_add_step(st, &o->wo, &r);
        }
    }
    return ok;
}

static const char *why_text(const sq_err *why) {
    const char *m = why->msg;
    return !strncmp(m, "world: ", 7) ? m + 7 : m;
}

static void reply_check(const oracle *o, const char *q, size_t ql, uint64_t seed, sq_buf *b) {
    sq_story st;
    int steps = 0;
    sq_err why = {0};
    if (understand(o, q, ql, seed, &st, &steps, &why)) {
        sq_buf_printf(b, "1. The given problem is a math problem: it asks how many %s %s has at the end.\n", ITEM(&st),
                      NAME(&st));
        sq_buf_puts(b, "2. Let me solve it step by step.\n");
        walk(&st, b);
        sq_buf_printf(b, "All %d step%s use only the conditions given, and every amount stays a positive whole "
                         "number, so the problem can be solved.\n\nYes",
                      steps, steps == 1 ? "" : "s");
    } else {
        sq_buf_puts(b, "1. The given problem looks like a math word problem.\n");
        sq_buf_printf(b, "2. Trying to solve it: %s. The conditions given are not enough for a meaningful "
                         "answer, so it cannot be solved as stated.\n\nNo",
                      why_text(&why));
    }
}

static void reply_rate(const oracle *o, const char *q, size_t ql, uint64_t seed, sq_buf *b) {
    sq_story st;
    int steps = 0;
    sq_err why = {0};
    if (!understand(o, q, ql, seed, &st, &steps, &why)) steps = st.n_ev;
    sq_buf_printf(b,
                  "```json\n{\n  \"intent\": \"The user wants to find how many %s %s has after %d change%s\",\n"
                  "  \"knowledge\": \"To solve this problem, the models need to know whole-number arithmetic, "
                  "applied one event at a time\",\n  \"difficulty\": \"%s\"\n}\n```",
                  ITEM(&st), NAME(&st), steps, steps == 1 ? "" : "s", level_of(steps));
}

static void reply_solvability(const oracle *o, const char *q, size_t ql, uint64_t seed, sq_buf *b) {
    sq_story st;
    int steps = 0;
    sq_err why = {0};
    int ok = understand(o, q, ql, seed, &st, &steps, &why);
    sq_buf created = {0};
    if (ok && steps >= 2) {
        sq_buf_append(&created, q, ql); /* solvable and more than one step: nothing to change */
    } else {
        if (ok) { /* solvable in one simple step: ask for one more */
            sq_rng r;
            sq_rng_seed(&r, seed);
            sq_story_add_step(&st, &o->wo, &r);
        }
        write_story(&st, &created);
    }
    sq_buf_printf(b, "CREATED QUESTION: %s\n", created.data ? created.data : "");
    sq_buf_puts(b, "VERIFICATION AND MODIFICATION: ");
    if (!ok) sq_buf_printf(b, "The given question cannot be solved as stated (%s), so I restated it. ", why_text(&why));
    else if (steps < 2) sq_buf_puts(b, "The given question needs a single simple step, so I added one more event. ");
    else sq_buf_puts(b, "The given question is solvable and needs several steps, so it stays as it is. ");
    sq_buf_puts(b, "Solution:\n");
    walk(&st, b);
    sq_buf_printf(b, "FINAL QUESTION: %s", created.data ? created.data : "");
    sq_buf_free(&created);
}

static void reply_difficulty(const oracle *o, const char *q, size_t ql, uint64_t seed, sq_buf *b) {
    sq_story st;
    int steps = 0;
    sq_err why = {0};
    int ok = understand(o, q, ql, seed, &st, &steps, &why);
    sq_rng r;
    sq_rng_seed(&r, seed);
    int added = sq_story_add_step(&st, &o->wo, &r) == 0;
    sq_buf rw = {0};
    write_story(&st, &rw);
    sq_buf_printf(b, "Step 1 #Methods List#:\n- Add one more event that changes the amount.\n%s\n",
                  ok ? "- Keep every number a positive whole number." : "- First correct the errors in the problem.");
    sq_buf_printf(b, "Step 2 #Plan#:\n%s%s\n", ok ? "" : "Restate the problem so that it can be solved, then ",
                  added ? "add one event at the end of the story." : "keep the story as long as it is.");
    sq_buf_printf(b, "Step 3 #Rewritten Problem#:\n%s\n", rw.data ? rw.data : "");
    sq_buf_printf(b, "Step 4 #Finally Rewritten Problem#:\n%s", rw.data ? rw.data : "");
    sq_buf_free(&rw);
}

char *sq_world_oracle_reply(const sq_backend *bk, const char *prompt, uint64_t seed) {
    const oracle *o = (const oracle *)bk;
    sq_buf b = {0};
    sq_prompt_kind k;
    const char *q;
    size_t ql;
    if (!prompt || !sq_prompt_identify(prompt, strlen(prompt), &k, &q, &ql)) {
        sq_buf_puts(&b, "I am the tiny world's oracle: I answer only the question-optimization, solvability and "
                        "difficulty prompts of ScaleQuest (Figures 9-12) about tiny-world problems.");
    } else {
        switch (k) {
        case SQ_PROMPT_SOLVABILITY_OPTIMIZE: reply_solvability(o, q, ql, seed, &b); break;
        case SQ_PROMPT_DIFFICULTY_OPTIMIZE: reply_difficulty(o, q, ql, seed, &b); break;
        case SQ_PROMPT_SOLVABILITY_CHECK: reply_check(o, q, ql, seed, &b); break;
        default: reply_rate(o, q, ql, seed, &b); break;
        }
    }
    if (!b.data) sq_buf_puts(&b, "");
    return b.data;
}

/* ---- the backend ---------------------------------------------------------------------- */

static int count_words(const char *s) {
    int n = 0, in = 0;
    for (; *s; s++) {
        int sp = *s == ' ' || *s == '\n' || *s == '\t';
        n += !sp && !in;
        in = !sp;
    }
    return n;
}

static const char *prompt_of(const sq_gen_request *r) {
    if (r->prompt) return r->prompt;
    for (int i = r->n_messages - 1; i >= 0; i--)
        if (r->messages[i].role && !strcmp(r->messages[i].role, "user")) return r->messages[i].content;
    return "";
}

static int oracle_generate(sq_backend *bk, const sq_gen_request *reqs, int n, sq_gen_callback cb, void *user,
                           sq_err *e) {
    for (int i = 0; i < n; i++) {
        const sq_gen_request *r = &reqs[i];
        const char *p = prompt_of(r);
        int nc = r->params.n;
        sq_gen_choice *ch = calloc((size_t)nc, sizeof *ch);
        char **texts = calloc((size_t)nc, sizeof *texts);
        int oom = !ch || !texts, ctok = 0;
        for (int c = 0; c < nc && !oom; c++) {
            texts[c] = sq_world_oracle_reply(bk, p, r->params.seed + (uint64_t)c * 0x9e3779b97f4a7c15ULL);
            if (!texts[c]) {
                oom = 1;
                break;
            }
            /* max_tokens cuts the reply as a model's would be cut (counted in words here) */
            int words = count_words(texts[c]);
            const char *fin = "stop";
            if (r->params.max_tokens > 0 && words > r->params.max_tokens) {
                int w = 0, in = 0;
                char *s = texts[c];
                for (; *s; s++) {
                    int sp = *s == ' ' || *s == '\n' || *s == '\t';
                    if (!sp && !in && ++w > r->params.max_tokens) break;
                    in = !sp;
                }
                *s = 0;
                words = r->params.max_tokens;
                fin = "length";
            }
            ch[c] = (sq_gen_choice){.text = texts[c], .finish_reason = fin, .n_tokens = words};
            ctok += words;
        }
        int stop = 0;
        if (oom) {
            sq_gen_result res = {.id = r->id, .ok = 0, .error = "world oracle: out of memory"};
            stop = cb ? cb(user, i, &res) : 0;
        } else {
            sq_gen_result res = {.id = r->id, .ok = 1, .choices = ch, .n_choices = nc,
                                 .prompt_tokens = count_words(p), .completion_tokens = ctok};
            stop = cb ? cb(user, i, &res) : 0;
        }
        for (int c = 0; texts && c < nc; c++) free(texts[c]);
        free(texts);
        free(ch);
        if (stop) return sq_fail(e, SQ_EINTR, "stopped by the caller after %d of %d requests", i + 1, n);
    }
    return 0;
}

static void oracle_close(sq_backend *b) { free(b); }

static const struct sq_backend_ops ORACLE_OPS = {oracle_generate, oracle_close};

/* The world's limits from its training problems. */
static int learn(oracle *o, const char *path, sq_err *e) {
    sq_jsonl_reader *r;
    int rc = sq_jsonl_open(&r, path, 0, e);
    if (rc) return rc;
    int64_t max_num = 0;
    int max_steps = 0, n_ok = 0, seen[128] = {0};
    cJSON *rec;
    while ((rc = sq_jsonl_next(r, &rec, e)) == 1) {
        const char *q = sq_rec_str(rec, "query");
        int64_t ans;
        int steps;
        if (q && sq_world_parse(q, &ans, &steps, NULL) == 0) {
            n_ok++;
            if (steps > max_steps) max_steps = steps;
            sq_story st;
            sq_story_read(q, strlen(q), 0, &st);
            if (st.start > max_num) max_num = st.start;
            for (int i = 0; i < st.n_ev; i++) {
                seen[(unsigned char)st.ev[i].op & 127] = 1;
                if (st.ev[i].op != 'b' && st.ev[i].op != 'm' && st.ev[i].op != 'd' && st.ev[i].n > max_num)
                    max_num = st.ev[i].n;
            }
        }
        cJSON_Delete(rec);
    }
    sq_jsonl_close(r);
    if (rc < 0) return rc;
    if (!n_ok) return sq_fail(e, SQ_EPARSE, "%s: no world problem in any \"query\" field", path);
    int k = 0;
    for (const char *c = "asbmd"; *c; c++)
        if (seen[(int)*c]) o->wo.ops[k++] = *c;
    o->wo.ops[k] = 0;
    if (!strchr(o->wo.ops, 'a') && !strchr(o->wo.ops, 'b') && !strchr(o->wo.ops, 'm')) {
        o->wo.ops[k++] = 'a';
        o->wo.ops[k] = 0;
    }
    o->wo.max_number = (int)SQ_MAX(4, SQ_MIN(max_num, 100000));
    o->wo.max_steps = SQ_MAX(1, SQ_MIN(max_steps, 8));
    /* harder questions may go one step past the hardest the world has shown */
    o->max_steps = SQ_MIN(8, o->wo.max_steps + 1);
    return 0;
}

int sq_world_oracle_open(sq_backend **b, const char *train, sq_err *e) {
    *b = NULL;
    oracle *o = calloc(1, sizeof *o);
    if (!o) return sq_fail(e, SQ_ENOMEM, "out of memory");
    o->base.ops = &ORACLE_OPS;
    sq_world_opts_default(&o->wo);
    o->max_steps = SQ_MIN(8, o->wo.max_steps + 1);
    if (train && *train) {
        int rc = learn(o, train, e);
        if (rc) {
            free(o);
            return rc;
        }
    }
    snprintf(o->base.name, sizeof o->base.name, "world-oracle%s%s", train && *train ? ":" : "",
             train && *train ? train : "");
    *b = &o->base;
    return 0;
}

int sq_pipeline_backend_open(sq_backend **b, const char *spec, const sq_backend_opts *o, sq_err *e) {
    if (spec && !strncmp(spec, "world:", 6)) return sq_world_oracle_open(b, spec + 6, e);
    if (spec && !strcmp(spec, "world-oracle")) return sq_world_oracle_open(b, NULL, e);
    return sq_backend_open(b, spec, o, e);
}
