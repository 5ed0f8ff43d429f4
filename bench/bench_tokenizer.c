/* Tokenizer throughput: encode a text file line by line on one thread, as HF's
 * Tokenizer.encode is called per line by bench/tokenizer.sh. Prints MB/s of CPU time, tokens
 * and the peak RSS of this process. Usage: bench_tokenizer TOKENIZER TEXT [REPEATS] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "scalequest/base.h"
#include "scalequest/tokenizer.h"

/* CPU time of this process: on a machine shared with other jobs it measures our work, not
 * the wait; the HF side is timed the same way (time.process_time). */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s TOKENIZER TEXT [REPEATS]\n", argv[0]);
        return 2;
    }
    int reps = argc > 3 ? atoi(argv[3]) : 3;
    sq_err e;
    sq_tokenizer *t;
    double t0 = sq_now();
    if (sq_tok_load(&t, argv[1], &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    double load_s = sq_now() - t0;
    char *text;
    size_t len;
    if (sq_file_read_all(argv[2], &text, &len, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    double best = 1e30;
    size_t tokens = 0;
    for (int r = 0; r < reps; r++) {
        double s = cpu_now();
        tokens = 0;
        for (char *p = text; p < text + len;) {
            char *nl = memchr(p, '\n', (size_t)(text + len - p));
            size_t n = nl ? (size_t)(nl - p) : (size_t)(text + len - p);
            int32_t *ids;
            size_t k;
            if (sq_tok_encode(t, p, n, SQ_TOK_PARSE_SPECIAL, &ids, &k, &e)) {
                fprintf(stderr, "%s\n", e.msg);
                return 1;
            }
            tokens += k;
            free(ids);
            p = nl ? nl + 1 : text + len;
        }
        double el = cpu_now() - s;
        if (el < best) best = el;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("ours mb_s=%.2f tokens=%zu load_s=%.2f peak_rss_mb=%.0f\n", len / best / 1e6, tokens, load_s,
           ru.ru_maxrss / 1024.0);
    free(text);
    sq_tok_free(t);
    return 0;
}
