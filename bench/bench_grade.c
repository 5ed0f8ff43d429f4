/* Grading throughput on one thread: cases per second over a JSONL file of gold/pred pairs.
 *   bench_grade FILE [MIN_SECONDS]
 * Records with "kind": "answer_pair" compare two answers; every other record is a raw
 * response graded end to end (extraction + comparison), gold through the same extraction.
 * Prints cases per CPU-second of this thread (the machine is shared, so wall time would
 * measure the neighbours), the share judged equal, and the peak RSS. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "scalequest/base.h"
#include "scalequest/grade.h"

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    char *gold, *pred;
    int pair;
} item;

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_grade FILE [MIN_SECONDS]\n");
        return 2;
    }
    double min_s = argc > 2 ? atof(argv[2]) : 2.0;
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    item *v = NULL;
    size_t n = 0, cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    while (getline(&line, &lcap, f) > 0) {
        cJSON *r = cJSON_Parse(line);
        if (!r) continue;
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(r, "gold"), *p = cJSON_GetObjectItemCaseSensitive(r, "pred");
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(r, "kind");
        if (cJSON_IsString(g) && cJSON_IsString(p)) {
            if (n == cap) {
                cap = cap ? cap * 2 : 1024;
                item *nv = realloc(v, cap * sizeof *v);
                if (!nv) return 1;
                v = nv;
            }
            v[n].gold = sq_strdup(g->valuestring);
            v[n].pred = sq_strdup(p->valuestring);
            v[n].pair = cJSON_IsString(k) && !strcmp(k->valuestring, "answer_pair");
            n++;
        }
        cJSON_Delete(r);
    }
    free(line);
    fclose(f);
    if (!n) {
        fprintf(stderr, "%s: no gold/pred records\n", argv[1]);
        return 1;
    }
    sq_grade_opts o;
    sq_grade_opts_init(&o);
    size_t done = 0, equal = 0;
    double t0 = cpu_now(), w0 = sq_now(), t;
    do {
        for (size_t i = 0; i < n; i++)
            equal += v[i].pair ? sq_grade_equal(v[i].gold, v[i].pred, &o) : sq_grade_response(v[i].gold, v[i].pred, &o, NULL);
        done += n;
        t = cpu_now() - t0;
    } while (t < min_s);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double wall = sq_now() - w0;
    printf("cases_per_s %.0f wall_cases_per_s %.0f cases %zu passes %zu equal_share %.4f peak_rss_kib %ld\n",
           (double)done / t, (double)done / wall, n, done / n, (double)equal / (double)done, ru.ru_maxrss);
    for (size_t i = 0; i < n; i++) free(v[i].gold), free(v[i].pred);
    free(v);
    return 0;
}
