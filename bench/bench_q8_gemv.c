/* bench_q8_gemv TYPE OUT IN [ISA] [REPS] [THREADS]: the batch-1 8-bit-activation GEMV kernel alone, one
 * thread, on a random OUT x IN weight matrix of TYPE (q4_0, q4_1, q8_0, q4_k, ...). ISA: avx2
 * or vnni (default: the best this CPU has). Two ways alternate, best of REPS each, in CPU
 * time: "old", one output at a time (sq_quant_dot_q8_rows, the loop batch 1 used before the
 * several-outputs kernels), and "new", sq_quant_matmul_part (what the decode step calls).
 * Prints GB/s of weight bytes streamed per core for each, their ratio, and whether the two
 * gave the same bits.
 * With THREADS (>= 1), the weights stream from memory instead: copies of the matrix fill
 * 1 GiB (more than any cache), sq_quant_matmul_part runs over them with THREADS threads each
 * taking its share of the outputs (as the decode step does), in wall time, alternating with a
 * read-bandwidth probe (a plain sum over another 1 GiB with the same threads); it prints both,
 * best of REPS, and the kernel's rate as a fraction of the probe's. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <immintrin.h>
#include <omp.h>

#include "scalequest/base.h"
#include "scalequest/quant.h"

static double cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}


/* Best-effort sustained read rate: sum a 1 GiB float array with T threads (GB/s). */
static double read_probe(const float *a, size_t n, int T, double *per_cpu) {
    double t0 = sq_now(), c0 = cpu_s(), total = 0;
#pragma omp parallel for num_threads(T) schedule(static) reduction(+ : total)
    for (size_t blk = 0; blk < n / 64; blk++) {
        const float *p = a + blk * 64;
#if defined(__AVX2__)
        __m256 s0 = _mm256_load_ps(p), s1 = _mm256_load_ps(p + 8), s2 = _mm256_load_ps(p + 16), s3 = _mm256_load_ps(p + 24);
        s0 = _mm256_add_ps(s0, _mm256_load_ps(p + 32)), s1 = _mm256_add_ps(s1, _mm256_load_ps(p + 40));
        s2 = _mm256_add_ps(s2, _mm256_load_ps(p + 48)), s3 = _mm256_add_ps(s3, _mm256_load_ps(p + 56));
        float v[8];
        _mm256_storeu_ps(v, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
        total += v[0] + v[7];
#else
        for (int k = 0; k < 64; k++) total += p[k];
#endif
    }
    double dt = sq_now() - t0;
    if (total == 1234.5) printf(" ");
    *per_cpu = (double)n * 4 / ((cpu_s() - c0) / T) / 1e9;
    return (double)n * 4 / dt / 1e9;
}

/* The kernel over copies of the matrix that fill about 1 GiB, T threads, wall time. */
static int stream_mode(const uint8_t *w0, size_t wbytes, sq_dtype t, int out, int64_t in, const float *x, int T,
                       int reps, const char *name) {
    int copies = (int)(((size_t)1 << 30) / wbytes) + 1;
    uint8_t *w = sq_malloc_aligned(wbytes * (size_t)copies);
    size_t n = (size_t)1 << 28;
    float *a = sq_malloc_aligned(n * 4), *y = malloc(sizeof(float) * (size_t)out);
    if (!w || !a || !y) return fprintf(stderr, "bench_q8_gemv: out of memory\n"), 1;
    for (int c = 0; c < copies; c++) memcpy(w + (size_t)c * wbytes, w0, wbytes);
    for (size_t i = 0; i < n; i++) a[i] = (float)(i & 7);
    double bw = 0, kr = 0, bwc = 0, krc = 0, pc;
    for (int r = 0; r < reps; r++) {
        double b = read_probe(a, n, T, &pc);
        if (b > bw) bw = b;
        if (pc > bwc) bwc = pc;
        double t0 = sq_now(), c0 = cpu_s();
        for (int c = 0; c < copies; c++) {
            sq_view v = {w + (size_t)c * wbytes, t, 2, {out, in}};
#pragma omp parallel num_threads(T)
            {
                int th = omp_get_thread_num(), nt = omp_get_num_threads();
                int o0 = (int)((int64_t)out * th / nt) & ~7, o1 = th == nt - 1 ? out : (int)((int64_t)out * (th + 1) / nt) & ~7;
                sq_quant_matmul_part(y, x, 1, &v, NULL, o0, o1);
            }
        }
        double k = (double)wbytes * copies / (sq_now() - t0) / 1e9;
        double kc = (double)wbytes * copies / ((cpu_s() - c0) / T) / 1e9;
        if (k > kr) kr = k;
        if (kc > krc) krc = kc;
    }
    /* wall: the figure to quote on a quiet machine; per CPU-second (divided by T): what the
     * threads did while they ran, which neighbours on a busy machine distort less */
    printf("q8 gemv %s %dx%lld %s, %d threads, from memory (%d copies): kernel %.2f GB/s, read probe %.2f GB/s, "
           "kernel/read %.0f%%; per CPU-second/T: %.2f / %.2f GB/s, %.0f%%\n",
           name, out, (long long)in, sq_quant_q8_impl(), T, copies, kr, bw, 100 * kr / bw, krc, bwc, 100 * krc / bwc);
    free(w), free(a), free(y);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: bench_q8_gemv TYPE OUT IN [avx2|vnni] [REPS] [THREADS]\n");
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
    if (argc > 6 && atoi(argv[6]) >= 1) {
        int rc = stream_mode(w, wbytes, t, out, in, x, atoi(argv[6]), reps, names[ti]);
        free(w), free(x), free(y0), free(y1);
        return rc;
    }
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
