/* bench_q8_gemv TYPE OUT IN [ISA] [REPS]: the batch-1 8-bit-activation GEMV kernel alone, one
 * thread, on a random OUT x IN weight matrix of TYPE (q4_0, q4_1, q8_0, q4_k, ...). ISA: avx2
 * or vnni (default: the best this CPU has). Two ways alternate, best of REPS each, in CPU
 * time: "old", one output at a time (sq_quant_dot_q8_rows, the loop batch 1 used before the
 * several-outputs kernels), and "new", sq_quant_matmul_part (what the decode step calls).
 * Prints GB/s of weight bytes streamed per core for each, their ratio, and whether the two
 * gave the same bits. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scalequest/base.h"
#include "scalequest/quant.h"

static double cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: bench_q8_gemv TYPE OUT IN [avx2|vnni] [REPS]\n");
        return 2;
    }
    const char *names[] = {"q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q4_k", "q5_k", "q6_k"};
    const sq_dtype types[] = {SQ_Q4_0, SQ_Q4_1, SQ_Q5_0, SQ_Q5_1, SQ_Q8_0, SQ_Q4_K, SQ_Q5_K, SQ_Q6_K};
    int ti = -1;
    for (int i = 0; i < 8; i++)
        if (!strcmp(argv[1], names[i])) ti = i;
    if (ti < 0) return fprintf(stderr, "bench_q8_gemv: unknown type %s\n", argv[1]), 2;
    sq_dtype t = types[ti];
    int out = atoi(argv[2]), reps = argc > 5 ? atoi(argv[5]) : 7;
    int64_t in = atoll(argv[3]);
    if (argc > 4) sq_quant_q8_force(!strcmp(argv[4], "avx2") ? 2 : 0);
    size_t bb;
    int per = sq_dtype_block(t, &bb);
    if (out <= 0 || in <= 0 || in % per) return fprintf(stderr, "bench_q8_gemv: bad shape\n"), 2;
    size_t rb = (size_t)(in / per) * bb, wbytes = rb * (size_t)out;
    uint8_t *w = malloc(wbytes);
    uint64_t s = 12345;
    for (size_t i = 0; i < wbytes; i++) s = s * 6364136223846793005ull + 1442695040888963407ull, w[i] = (uint8_t)(s >> 56);
    /* sane f16 scales where each block keeps them (d, and m or dmin; Q6_K's d at the end) */
    uint16_t d = sq_f32_to_f16(0.01f);
    for (size_t b = 0; b < wbytes / bb; b++) {
        uint8_t *p = w + b * bb;
        if (t == SQ_Q6_K) memcpy(p + 208, &d, 2);
        else {
            memcpy(p, &d, 2);
            if (t == SQ_Q4_1 || t == SQ_Q5_1 || t == SQ_Q4_K || t == SQ_Q5_K) memcpy(p + 2, &d, 2);
        }
    }
    float *x = malloc(sizeof(float) * (size_t)in), *y0 = malloc(sizeof(float) * (size_t)out),
          *y1 = malloc(sizeof(float) * (size_t)out);
    for (int64_t i = 0; i < in; i++) s = s * 6364136223846793005ull + 1, x[i] = (float)((int)(s >> 40) % 2001 - 1000) / 300.f;
    int kind = sq_quant_act_kind(t);
    uint8_t *xq = malloc(sq_quant_act_bytes(kind, in));
    sq_view v = {w, t, 2, {out, in}};
    double best[2] = {1e30, 1e30};
    for (int r = 0; r < reps; r++)
        for (int way = 0; way < 2; way++) {
            int inner = (int)(2e8 / (double)wbytes) + 1;
            double t0 = cpu_s();
            for (int k = 0; k < inner; k++) {
                if (way == 0) {
                    sq_quant_act_row(xq, x, kind, in);
                    for (int o = 0; o < out; o++) sq_quant_dot_q8_rows(y0 + o, out, w + (size_t)o * rb, t, xq, 0, 1, in, 0);
                } else
                    sq_quant_matmul_part(y1, x, 1, &v, NULL, 0, out);
            }
            double dt = (cpu_s() - t0) / inner;
            if (dt < best[way]) best[way] = dt;
        }
    int same = !memcmp(y0, y1, sizeof(float) * (size_t)out);
    printf("q8 gemv %s %dx%lld %s: old %.2f GB/s, new %.2f GB/s, new/old %.2fx, bits %s\n", names[ti], out,
           (long long)in, sq_quant_q8_impl(), wbytes / best[0] / 1e9, wbytes / best[1] / 1e9, best[0] / best[1],
           same ? "equal" : "DIFFER");
    free(w), free(x), free(y0), free(y1), free(xq);
    return same ? 0 : 1;
}
