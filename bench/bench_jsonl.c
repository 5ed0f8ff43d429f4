/* JSONL benchmark helper (bench/jsonl.sh drives it):
 *   bench_jsonl gen PATH MB   write about MB megabytes of records shaped like the pipeline's
 *                             (id, query, response, numbers, a little non-ASCII text; one
 *                             query in five repeats an earlier one, some with other case)
 *   bench_jsonl read PATH [T] read and validate every line; prints records, bytes, seconds
 *   bench_jsonl read-ref PATH [T]  the same with the reference (byte-by-byte) validator alone
 *   bench_jsonl parse PATH [T]     the same, also building each record with cJSON
 * T is the reader's thread count (sq_jsonl_set_threads): 0, the default, the process's count (every core).
 * Each run prints one line "key=value ..." including peak RSS (getrusage). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "../src/io/jsonl_internal.h"
#include "scalequest/jsonl.h"

static long peak_rss_kb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static const char *words[] = {"the", "sum", "of", "two", "numbers", "is", "equal", "to", "find", "value",
                              "triangle", "with", "sides", "integer", "prime", "solve", "for", "x", "area",
                              "probability", "that", "a", "randomly", "chosen", "circle", "radius", "angle"};

static void sentence(sq_buf *b, sq_rng *rng, int nwords) {
    for (int i = 0; i < nwords; i++) {
        if (i) sq_buf_puts(b, " ");
        int r = (int)sq_rng_below(rng, 40);
        if (r < (int)SQ_ARRAY_LEN(words)) sq_buf_puts(b, words[r]);
        else if (r < 37) sq_buf_printf(b, "%llu", (unsigned long long)sq_rng_below(rng, 100000));
        else if (r < 38) sq_buf_puts(b, "$\\\\frac{a}{b}$");
        else if (r < 39) sq_buf_puts(b, "\xe2\x88\x9a\xcf\x80"); /* √π */
        else sq_buf_puts(b, "\\\"quoted\\\"");
    }
}

static int gen(const char *path, long mb) {
    FILE *f = fopen(path, "wb");
    if (!f) return perror(path), 1;
    sq_rng rng;
    sq_rng_seed(&rng, 1);
    sq_buf line = {0}, q = {0};
    long long target = (long long)mb << 20, written = 0;
    char **recent = calloc(1024, sizeof *recent);
    for (long long i = 0; written < target; i++) {
        sq_buf_reset(&q);
        int dup = i > 1024 && sq_rng_below(&rng, 5) == 0;
        if (dup) {
            sq_buf_puts(&q, recent[sq_rng_below(&rng, 1024)]);
            if (q.len && q.data[0] >= 'a' && q.data[0] <= 'z' && sq_rng_below(&rng, 2)) q.data[0] -= 32; /* other case */
        } else {
            sentence(&q, &rng, 20 + (int)sq_rng_below(&rng, 40));
        }
        free(recent[i % 1024]);
        recent[i % 1024] = sq_strdup(q.data);
        sq_buf_reset(&line);
        sq_buf_printf(&line, "{\"id\":\"gen-%lld\",\"query\":\"%s\",\"response\":\"", i, q.data);
        sentence(&line, &rng, 80 + (int)sq_rng_below(&rng, 160));
        sq_buf_printf(&line, "\",\"score\":%.4f,\"tags\":[\"math\",\"synthetic\"],\"solved\":%s}\n",
                      sq_rng_uniform(&rng), sq_rng_below(&rng, 2) ? "true" : "false");
        fwrite(line.data, 1, line.len, f);
        written += (long long)line.len;
    }
    for (int i = 0; i < 1024; i++) free(recent[i]);
    free(recent);
    sq_buf_free(&line);
    sq_buf_free(&q);
    return fclose(f) ? 1 : 0;
}

static int read_all(const char *path, int parse, int threads) {
    sq_jsonl_reader *r;
    sq_err e;
    if (sq_jsonl_open(&r, path, 0, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    sq_jsonl_set_threads(r, threads);
    double t0 = sq_now();
    long long n = 0;
    int rc;
    if (parse) {
        cJSON *rec;
        while ((rc = sq_jsonl_next(r, &rec, &e)) == 1) {
            n++;
            cJSON_Delete(rec);
        }
    } else {
        const char *line;
        size_t len;
        while ((rc = sq_jsonl_next_line(r, &line, &len, &e)) == 1) n++;
    }
    double dt = sq_now() - t0;
    long long bytes = (long long)sq_jsonl_bytes_read(r);
    sq_jsonl_close(r);
    if (rc < 0) return fprintf(stderr, "%s\n", e.msg), 1;
    printf("records=%lld bytes=%lld seconds=%.4f peak_rss_kb=%ld\n", n, bytes, dt, peak_rss_kb());
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "gen")) return gen(argv[2], atol(argv[3]));
    int threads = argc == 4 ? atoi(argv[3]) : 0;
    if ((argc == 3 || argc == 4) && !strcmp(argv[1], "read")) return read_all(argv[2], 0, threads);
    if ((argc == 3 || argc == 4) && !strcmp(argv[1], "parse")) return read_all(argv[2], 1, threads);
    if ((argc == 3 || argc == 4) && !strcmp(argv[1], "read-ref")) {
        sq_jsonl_use_fast(0);
        return read_all(argv[2], 0, threads);
    }
    fprintf(stderr, "usage: bench_jsonl gen PATH MB | read PATH [THREADS] | read-ref PATH [THREADS] | parse PATH [THREADS]\n"
                    "  (THREADS: 0, the default, every core; 1 the caller's thread only)\n");
    return 2;
}
