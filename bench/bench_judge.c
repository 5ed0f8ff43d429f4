/* Throughput of the judge-side parsing on one thread, in records per CPU-second of this
 * thread (the machine is shared; wall time would measure the neighbours).
 *   bench_judge lang FILE [MIN_SECONDS]      sq_lang_check over the "query" of every record,
 *                                           beside the cheapest possible pass over the same
 *                                           bytes (the official rule: every byte < 128)
 *   bench_judge replies OUT.jsonl [MIN_SECONDS]
 *                                           makes a reply set — the judge_verdicts.jsonl
 *                                           table and the world oracle's replies to the four
 *                                           prompts for 2,000 world problems — writes it to
 *                                           OUT.jsonl (for the Python peer) and parses each
 *                                           reply with its parser
 * Prints "key value" pairs: records, bytes, records_per_s, mb_per_s, and for lang the byte
 * pass's rate and the share kept. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scalequest/filter.h"
#include "scalequest/judge.h"
#include "scalequest/oracle.h"
#include "scalequest/world.h"

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    char *text;
    size_t len;
    int kind; /* replies: sq_prompt_kind */
} item;

typedef struct {
    item *v;
    size_t n, cap, bytes;
} items;

static void push(items *it, const char *s, int kind) {
    if (it->n == it->cap) {
        it->cap = it->cap ? it->cap * 2 : 1024;
        it->v = realloc(it->v, it->cap * sizeof *it->v);
        if (!it->v) exit(1);
    }
    it->v[it->n].text = sq_strdup(s);
    it->v[it->n].len = strlen(s);
    it->v[it->n].kind = kind;
    it->bytes += strlen(s);
    it->n++;
}

/* Every byte below 128: the official filter's test, as the cheapest pass over the bytes. */
static int all_ascii(const char *s, size_t n) {
    unsigned char acc = 0;
    for (size_t i = 0; i < n; i++) acc |= (unsigned char)s[i];
    return acc < 128;
}

static int bench_lang(const char *path, double min_s) {
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return 1;
    }
    items it = {0};
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        cJSON *r = cJSON_Parse(line);
        const cJSON *q = r ? cJSON_GetObjectItemCaseSensitive(r, "query") : NULL;
        if (cJSON_IsString(q)) push(&it, q->valuestring, 0);
        cJSON_Delete(r);
    }
    free(line);
    fclose(f);
    if (!it.n) return 1;
    long kept = 0, ascii = 0, rounds = 0;
    double t0 = cpu_now(), t;
    do {
        for (size_t i = 0; i < it.n; i++) kept += sq_lang_check(it.v[i].text, it.v[i].len, SQ_LANG_EN, NULL) == SQ_LANG_OK;
        rounds++;
    } while ((t = cpu_now() - t0) < min_s);
    double rate = (double)it.n * (double)rounds / t;
    long rounds2 = 0;
    double t1 = cpu_now(), u;
    do {
        for (size_t i = 0; i < it.n; i++) ascii += all_ascii(it.v[i].text, it.v[i].len);
        rounds2++;
    } while ((u = cpu_now() - t1) < min_s);
    double rate2 = (double)it.n * (double)rounds2 / u;
    printf("records %zu bytes %zu records_per_s %.0f mb_per_s %.1f byte_pass_records_per_s %.0f kept_share %.4f "
           "ascii_share %.4f\n",
           it.n, it.bytes, rate, rate * (double)it.bytes / (double)it.n / 1e6, rate2,
           (double)kept / (double)(it.n * rounds), (double)ascii / (double)(it.n * rounds2));
    return 0;
}

static int bench_replies(const char *out, double min_s) {
    items it = {0};
    FILE *t = fopen("tests/judge_verdicts.jsonl", "r");
    char *line = NULL;
    size_t cap = 0;
    while (t && getline(&line, &cap, t) > 0) {
        cJSON *r = cJSON_Parse(line);
        const cJSON *q = r ? cJSON_GetObjectItemCaseSensitive(r, "reply") : NULL;
        if (cJSON_IsString(q)) push(&it, q->valuestring, SQ_PROMPT_SOLVABILITY_CHECK);
        cJSON_Delete(r);
    }
    free(line);
    if (t) fclose(t);
    sq_backend *o;
    sq_err e;
    if (sq_world_oracle_open(&o, NULL, &e)) return 1;
    sq_world_opts wo;
    sq_world_opts_default(&wo);
    wo.max_steps = 5;
    for (int i = 0; i < 2000; i++) {
        sq_world_problem p;
        if (sq_world_generate(&wo, 9, (uint64_t)i, &p, &e)) return 1;
        if (i % 4 == 3) p.query[strlen(p.query) / 2] = '#'; /* some the world cannot solve */
        int k = i % SQ_PROMPT_KINDS;
        size_t n = sq_prompt_build((sq_prompt_kind)k, p.query, NULL, 0);
        char *pr = malloc(n + 1);
        sq_prompt_build((sq_prompt_kind)k, p.query, pr, n + 1);
        char *reply = sq_world_oracle_reply(o, pr, (uint64_t)i);
        push(&it, reply, k);
        free(reply);
        free(pr);
    }
    sq_backend_close(o);
    FILE *f = fopen(out, "w");
    if (!f) {
        perror(out);
        return 1;
    }
    for (size_t i = 0; i < it.n; i++) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "kind", sq_prompt_kind_name((sq_prompt_kind)it.v[i].kind));
        cJSON_AddStringToObject(r, "reply", it.v[i].text);
        char *s = cJSON_PrintUnformatted(r);
        fprintf(f, "%s\n", s);
        free(s);
        cJSON_Delete(r);
    }
    fclose(f);
    long ok = 0, rounds = 0;
    double t0 = cpu_now(), dt;
    do {
        for (size_t i = 0; i < it.n; i++) {
            const item *x = &it.v[i];
            const char *q;
            size_t qn;
            switch (x->kind) {
            case SQ_PROMPT_SOLVABILITY_CHECK: ok += sq_reply_verdict(x->text, x->len) != SQ_VERDICT_UNKNOWN; break;
            case SQ_PROMPT_DIFFICULTY_RATE: ok += sq_reply_rating(x->text, x->len) > 0; break;
            default: ok += sq_reply_rewrite((sq_prompt_kind)x->kind, x->text, x->len, &q, &qn) == 0; break;
            }
        }
        rounds++;
    } while ((dt = cpu_now() - t0) < min_s);
    double rate = (double)it.n * (double)rounds / dt;
    printf("records %zu bytes %zu records_per_s %.0f mb_per_s %.1f parsed_share %.4f\n", it.n, it.bytes, rate,
           rate * (double)it.bytes / (double)it.n / 1e6, (double)ok / (double)(it.n * rounds));
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench_judge lang FILE [MIN_SECONDS] | bench_judge replies OUT.jsonl [MIN_SECONDS]\n");
        return 2;
    }
    double min_s = argc > 3 ? atof(argv[3]) : 2.0;
    if (!strcmp(argv[1], "lang")) return bench_lang(argv[2], min_s);
    if (!strcmp(argv[1], "replies")) return bench_replies(argv[2], min_s);
    fprintf(stderr, "bench_judge: unknown mode %s\n", argv[1]);
    return 2;
}
