/* bench_io: time to open a model file and touch what a loader needs, repeated.
 *   bench_io FILE N  — GGUF: parse + read every token string; safetensors: parse + sum
 *   one byte of every tensor. Prints "seconds_per_open peak_rss_kb" for bench/io.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "scalequest/gguf.h"
#include "scalequest/safetensors.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: bench_io FILE N\n");
        return 2;
    }
    int n = atoi(argv[2]);
    size_t l = strlen(argv[1]);
    int gguf = l > 5 && !strcmp(argv[1] + l - 5, ".gguf");
    uint64_t sink = 0;
    sq_err e;
    double t0 = sq_now();
    for (int i = 0; i < n; i++) {
        if (gguf) {
            sq_gguf g;
            if (sq_gguf_open(&g, argv[1], &e)) goto fail;
            const sq_gguf_kv *toks = sq_gguf_find(&g, "tokenizer.ggml.tokens");
            for (uint64_t k = 0; toks && k < toks->n; k++)
                sink += sq_gguf_arr_str(toks, k).len;
            sq_gguf_close(&g);
        } else {
            sq_safetensors s;
            if (sq_st_open(&s, argv[1], &e)) goto fail;
            for (int k = 0; k < s.n_tensors; k++)
                if (sq_view_bytes(&s.tensors[k].view)) sink += *(const uint8_t *)s.tensors[k].view.data;
            sq_st_close(&s);
        }
    }
    double dt = (sq_now() - t0) / n;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("%.9f %ld %llu\n", dt, ru.ru_maxrss, (unsigned long long)sink);
    return 0;
fail:
    fprintf(stderr, "bench_io: %s\n", e.msg);
    return 1;
}
