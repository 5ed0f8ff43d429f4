/* The batched 8-bit-activation GEMM alone (quant_q8_gemm*.c through sq_quant_matmul_range_x,
 * the engine's phased-step entry) on one decoder layer of the Qwen2-0.5B shape (q, k, v, o,
 * gate, up, down; random weights of each type), on one thread, timed in that thread's CPU
 * time so a busy neighbour slows it less (each input's rows are rounded once, as in the
 * engine's step: q's time includes the rounding k and v share, gate's the one up shares): model MACs per second and the fraction of the FP32
 * FMA peak (fma_peak.h, probed in the same run on the same thread with the same clock).
 * Prints a checksum of every output's bits, so two builds can be compared bit for bit.
 *
 *   bench_q8_gemm [REPS] [ROWS,...] [TYPES,...]   (defaults 5; 32,256; q8_0,q4_1,q4_0)
 *
 * Each figure is the best of REPS passes over the layer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fma_peak.h"
#include "scalequest/base.h"
#include "scalequest/kernels.h"
#include "scalequest/quant.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return rng_state;
}

/* Random blocks of type t with finite f16 scales (and minima) where the type keeps them. */
static uint8_t *blocks(sq_dtype t, size_t nblocks) {
    size_t bb;
    sq_dtype_block(t, &bb);
    uint8_t *p = malloc(bb * nblocks);
    for (size_t i = 0; i < bb * nblocks; i++) p[i] = (uint8_t)rnd();
    int nh = (t == SQ_Q4_1 || t == SQ_Q5_1) ? 2 : 1;
    for (size_t b = 0; b < nblocks; b++)
        for (int k = 0; k < nh; k++) {
            uint16_t h = sq_f32_to_f16((float)((double)(rnd() % 1000) / 1000.0 - 0.5) * 0.05f);
            memcpy(p + b * bb + 2 * k, &h, 2);
        }
    return p;
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    const char *rows_s = argc > 2 ? argv[2] : "32,256", *types_s = argc > 3 ? argv[3] : "q8_0,q4_1,q4_0";
    enum { DIM = 896, FFN = 4864, KV = 128, NM = 7 };
    const int outs[NM] = {DIM, KV, KV, DIM, FFN, FFN, DIM}, ins[NM] = {DIM, DIM, DIM, DIM, DIM, DIM, FFN};
    const char *names[NM] = {"q", "k", "v", "o", "gate", "up", "down"};
    const int shared_x[NM] = {1, 0, 0, 1, 1, 0, 1}; /* k, v take q's rounded rows; up takes gate's */
    sq_quant_act_set(SQ_ACT_Q8);
    double peak = sq_bench_fma_peak(1, 20000000, sq_bench_thread_seconds) / 2; /* MAC/s */
    printf("bench_q8_gemm: impl %s, one thread, FP32 FMA peak %.1f G MAC/s (thread CPU time)\n", sq_quant_q8_impl(),
           peak / 1e9);
    char tbuf[256];
    snprintf(tbuf, sizeof tbuf, "%s", types_s);
    for (char *ts = strtok(tbuf, ","); ts; ts = strtok(NULL, ",")) {
        sq_dtype t = !strcmp(ts, "q8_0") ? SQ_Q8_0 : !strcmp(ts, "q4_1") ? SQ_Q4_1 : !strcmp(ts, "q4_0") ? SQ_Q4_0
                   : !strcmp(ts, "q5_0") ? SQ_Q5_0 : !strcmp(ts, "q5_1") ? SQ_Q5_1 : SQ_F32;
        if (t == SQ_F32) {
            fprintf(stderr, "bench_q8_gemm: type %s: q8_0, q4_0, q4_1, q5_0 or q5_1\n", ts);
            return 2;
        }
        sq_view w[NM];
        for (int k = 0; k < NM; k++)
            w[k] = (sq_view){.data = blocks(t, (size_t)outs[k] * ins[k] / 32), .dtype = t, .ndim = 2,
                             .shape = {outs[k], ins[k]}};
        char rbuf[256];
        snprintf(rbuf, sizeof rbuf, "%s", rows_s);
        char *save = NULL;
        for (char *rs = strtok_r(rbuf, ",", &save); rs; rs = strtok_r(NULL, ",", &save)) {
            int rows = atoi(rs);
            if (rows < 1) continue;
            float *x = malloc(sizeof(float) * (size_t)rows * FFN), *y = malloc(sizeof(float) * (size_t)rows * FFN);
            for (size_t i = 0; i < (size_t)rows * FFN; i++) x[i] = (float)((double)(rnd() % 20001) / 10000.0 - 1.0);
            void *xb = sq_malloc_aligned(sq_quant_xrows_bytes(FFN, rows)), *tile = sq_malloc_aligned(sq_quant_tile_bytes(FFN));
            double best[NM], tot_best = 1e30, macs = 0;
            uint64_t sum = 0;
            for (int k = 0; k < NM; k++) best[k] = 1e30, macs += (double)outs[k] * ins[k] * rows;
            for (int rep = 0; rep < reps; rep++) {
                double tot = 0;
                for (int k = 0; k < NM; k++) {
                    sq_quant_xrows q;
                    sq_quant_xrows_init(&q, xb, sq_quant_act_kind(t), ins[k], rows);
                    double t0 = sq_bench_thread_seconds();
                    if (shared_x[k]) sq_quant_xrows_round(&q, x, 0, rows); /* once per input, as the engine */
                    sq_quant_matmul_range_x(y, &q, rows, &w[k], NULL, 0, outs[k], tile);
                    double dt = sq_bench_thread_seconds() - t0;
                    tot += dt;
                    if (dt < best[k]) best[k] = dt;
                    if (rep == 0)
                        for (size_t i = 0; i < (size_t)rows * outs[k]; i++) {
                            uint32_t u;
                            memcpy(&u, &y[i], 4);
                            sum = sum * 1000003u + u;
                        }
                }
                if (tot < tot_best) tot_best = tot;
            }
            printf("%s rows %3d: layer %.1f G MAC/s = %.1f%% of the FP32 FMA peak;", ts, rows, macs / tot_best / 1e9,
                   100 * macs / tot_best / peak);
            for (int k = 0; k < NM; k++)
                printf(" %s %.0f%%", names[k], 100 * (double)outs[k] * ins[k] * rows / best[k] / peak);
            printf("; bits %016llx\n", (unsigned long long)sum);
            free(x), free(y), free(xb), free(tile);
        }
        for (int k = 0; k < NM; k++) free((void *)w[k].data);
    }
    return 0;
}
