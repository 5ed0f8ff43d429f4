/* scalequest world-score: how a model did on the tiny world, from `scalequest generate` output.
 *   --mode solve:     exact numeric match of each first completion with the record's "answer",
 *                     against the baseline that always answers the most common training answer;
 *   --mode questions: the share of completions that are well-formed world problems (the
 *                     grammar of sq_world_parse), how many are distinct and not in the training set. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "scalequest/world.h"

typedef struct {
    cJSON **recs;
    int n;
} recs_t;

static int load(const char *path, recs_t *r) {
    char *text;
    size_t len;
    sq_err e;
    memset(r, 0, sizeof *r);
    if (sq_file_read_all(path, &text, &len, &e)) return sq_cli_fail("world-score", "%s", e.msg);
    int cap = 0, line = 0;
    char *save = NULL;
    for (char *ln = strtok_r(text, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
        line++;
        if (strspn(ln, " \t\r") == strlen(ln)) continue;
        cJSON *j = cJSON_Parse(ln);
        if (!cJSON_IsObject(j)) {
            cJSON_Delete(j);
            free(text);
            return sq_cli_fail("world-score", "%s:%d: not a JSON object", path, line);
        }
        if (r->n == cap) {
            cap = cap ? 2 * cap : 256;
            cJSON **nr = realloc(r->recs, sizeof *nr * (size_t)cap);
            if (!nr) {
                cJSON_Delete(j);
                free(text);
                return sq_cli_fail("world-score", "out of memory");
            }
            r->recs = nr;
        }
        r->recs[r->n++] = j;
    }
    free(text);
    return 0;
}

static void unload(recs_t *r) {
    for (int i = 0; i < r->n; i++) cJSON_Delete(r->recs[i]);
    free(r->recs);
}

static const char *str(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItem(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }
static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static int cmd_world_score(int argc, char **argv) {
    const char *in = NULL, *train = NULL, *mode = "solve";
    int64_t samples = 5;
    sq_opt opts[] = {
        {"in", SQ_OPT_STR, &in, "FILE", "scalequest generate output (records with \"completions\"), or qgen output (\"query\")"},
        {"mode", SQ_OPT_STR, &mode, "solve|questions", "what the completions are (default solve)"},
        {"train", SQ_OPT_STR, &train, "FILE", "the training records: the baseline answer, novelty of questions"},
        {"samples", SQ_OPT_INT, &samples, "K", "print K example completions (default 5)"},
    };
    int npos;
    int rc = sq_cli_parse(argc, argv, "--in FILE [--mode solve|questions] [--train FILE]", opts, SQ_ARRAY_LEN(opts), NULL,
                          0, &npos);
    if (rc >= 0) return rc;
    if (!in) return sq_cli_usage_error("world-score", "--in is required");
    int solve = !strcmp(mode, "solve");
    if (!solve && strcmp(mode, "questions")) return sq_cli_usage_error("world-score", "--mode: unknown \"%s\"", mode);
    recs_t g, t = {0};
    if ((rc = load(in, &g))) return rc;
    if (train && (rc = load(train, &t))) {
        unload(&g);
        return rc;
    }
    if (solve) {
        int correct = 0, answered = 0, shown = 0;
        long long base = 0;
        int base_hits = 0;
        if (t.n) { /* the most common training answer */
            long long *a = malloc(sizeof *a * (size_t)t.n);
            int na = 0;
            for (int i = 0; a && i < t.n; i++) {
                const char *s = str(t.recs[i], "answer");
                if (s) a[na++] = atoll(s);
            }
            if (a && na) {
                qsort(a, (size_t)na, sizeof *a, cmp_ll);
                int best = 0;
                for (int i = 0, j; i < na; i = j) {
                    for (j = i; j < na && a[j] == a[i]; j++) {
                    }
                    if (j - i > best) best = j - i, base = a[i];
                }
            }
            free(a);
        }
        for (int i = 0; i < g.n; i++) {
            const char *gold = str(g.recs[i], "answer");
            const cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(g.recs[i], "completions"), 0);
            if (!gold) continue;
            if (t.n && atoll(gold) == base) base_hits++;
            int64_t got;
            int ok = cJSON_IsString(c) && sq_world_extract_answer(c->valuestring, &got) == 0;
            answered += ok;
            int hit = ok && got == atoll(gold);
            correct += hit;
            if (shown < samples && cJSON_IsString(c)) {
                printf("--- %s (gold %s, %s)\n%s%s\n", str(g.recs[i], "query") ? str(g.recs[i], "query") : "", gold,
                       hit ? "correct" : "wrong", c->valuestring, "");
                shown++;
            }
        }
        printf("solver accuracy: %d/%d = %.1f%% (an answer was extracted from %d)\n", correct, g.n,
               g.n ? 100.0 * correct / g.n : 0.0, answered);
        if (t.n)
            printf("most-common-answer baseline (always %lld): %d/%d = %.1f%%\n", base, base_hits, g.n,
                   g.n ? 100.0 * base_hits / g.n : 0.0);
    } else {
        const char **known = NULL, **seen = NULL;
        int nk = 0, ns = 0, total = 0, good = 0, shown = 0, novel = 0, distinct = 0;
        if (t.n) {
            known = malloc(sizeof *known * (size_t)t.n);
            for (int i = 0; known && i < t.n; i++)
                if (str(t.recs[i], "query")) known[nk++] = str(t.recs[i], "query");
            if (known) qsort(known, (size_t)nk, sizeof *known, cmp_str);
        }
        /* qgen output has one question per record in "query" instead of "completions" */
        long long step_sum = 0;
        for (int i = 0; i < g.n; i++) {
            cJSON *comp = cJSON_GetObjectItem(g.recs[i], "completions");
            if (!comp && str(g.recs[i], "query")) {
                comp = cJSON_CreateArray();
                cJSON_AddItemToArray(comp, cJSON_CreateString(str(g.recs[i], "query")));
                cJSON_AddItemToObject(g.recs[i], "completions", comp);
            }
            total += cJSON_GetArraySize(comp);
        }
        seen = malloc(sizeof *seen * (size_t)(total + 1));
        for (int i = 0; i < g.n; i++) {
            const cJSON *c;
            cJSON_ArrayForEach(c, cJSON_GetObjectItem(g.recs[i], "completions")) {
                if (!cJSON_IsString(c)) continue;
                const char *q = c->valuestring;
                while (*q == ' ' || *q == '\n') q++;
                int64_t ans;
                sq_err e;
                int steps = 0;
                int ok = sq_world_parse(q, &ans, &steps, &e) == 0;
                if (ok) {
                    good++;
                    step_sum += steps;
                    if (seen) seen[ns++] = q;
                    if (known && !bsearch(&q, known, (size_t)nk, sizeof *known, cmp_str)) novel++;
                }
                if (shown < samples) {
                    if (ok) printf("--- well-formed (answer %lld): %s\n", (long long)ans, q);
                    else printf("--- ill-formed (%s): %s\n", e.msg, q);
                    shown++;
                }
            }
        }
        if (seen && ns) {
            qsort(seen, (size_t)ns, sizeof *seen, cmp_str);
            distinct = 1;
            for (int i = 1; i < ns; i++) distinct += strcmp(seen[i], seen[i - 1]) != 0;
        }
        printf("well-formed questions: %d/%d = %.1f%% (%d distinct", good, total, total ? 100.0 * good / total : 0.0,
               distinct);
        if (known) printf(", %d of the well-formed not in the training set", novel);
        printf(")\n");
        printf("mean steps of the well-formed: %.3f\n", good ? (double)step_sum / good : 0.0);
        free(known);
        free(seen);
    }
    unload(&g);
    unload(&t);
    return SQ_EXIT_OK;
}

SQ_COMMAND(world_score, "world-score", "score tiny-world generations: solver accuracy or well-formed questions",
           cmd_world_score);
