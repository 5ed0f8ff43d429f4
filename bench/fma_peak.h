/* The FP32 FMA peak of this machine on the calling team of OpenMP threads: independent
 * multiply-add chains kept in registers (enough of them to cover the FMA latency on two
 * ports), best of three passes. The same probe as bench_engine's `limits`, in a header a
 * kernel benchmark can include, so a kernel's GFLOP/s print as a fraction of a peak
 * measured in the same run with the same thread count. */
#ifndef SQ_BENCH_FMA_PEAK_H
#define SQ_BENCH_FMA_PEAK_H

#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <time.h>

#include "scalequest/base.h"

/* The calling thread's CPU time in seconds: a one-thread kernel figure timed this way is not
 * inflated by a neighbour taking the core for a while (the peak is then probed the same way). */
static inline double sq_bench_thread_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* FLOP/s (2 per multiply-add lane) over `nthreads` threads; `iters` loop turns per pass;
 * `now_fn` gives seconds (wall time, or the thread's CPU time for one thread). */
static inline double sq_bench_fma_peak(int nthreads, long iters, double (*now_fn)(void)) {
    double best = 0;
    for (int pass = 0; pass < 3; pass++) {
        double t0 = now_fn();
        float sink = 0;
#pragma omp parallel num_threads(nthreads) reduction(+ : sink)
        {
#if defined(__AVX512F__)
            __m512 a[12], b = _mm512_set1_ps(1.0000001f), c = _mm512_set1_ps(1e-7f);
            for (int k = 0; k < 12; k++)
                a[k] = _mm512_set1_ps((float)k);
            for (long i = 0; i < iters; i++)
                for (int k = 0; k < 12; k++)
                    a[k] = _mm512_fmadd_ps(a[k], b, c);
            for (int k = 0; k < 12; k++)
                sink += _mm512_reduce_add_ps(a[k]);
#elif defined(__AVX2__) && defined(__FMA__)
            __m256 a[12], b = _mm256_set1_ps(1.0000001f), c = _mm256_set1_ps(1e-7f);
            for (int k = 0; k < 12; k++)
                a[k] = _mm256_set1_ps((float)k);
            for (long i = 0; i < iters; i++)
                for (int k = 0; k < 12; k++)
                    a[k] = _mm256_fmadd_ps(a[k], b, c);
            float v[8];
            for (int k = 0; k < 12; k++) {
                _mm256_storeu_ps(v, a[k]);
                sink += v[0];
            }
#endif
        }
        double dt = now_fn() - t0;
#if defined(__AVX512F__)
        double flops = (double)iters * 12 * 16 * 2 * nthreads;
#else
        double flops = (double)iters * 12 * 8 * 2 * nthreads;
#endif
        if (flops / dt > best) best = flops / dt;
        if (sink == 1.5f) printf(" ");
    }
    return best;
}

/* The two dot-product instructions a kernel could use instead of widening to FP32 and
 * multiply-adding, at the same register-only rate test, one team of threads: AVX512-BF16's
 * vdpbf16ps (two BF16 products summed into each FP32 lane: 64 FLOP per 512-bit instruction)
 * and AVX512-VNNI's vpdpbusd (four u8 x s8 products into each int32 lane: 64 multiply-adds,
 * counted as 128 "FLOP" so the figure compares with the FP32 one). Whether they pay depends on
 * the core: some run vdpbf16ps at a fraction of the FMA rate. Each returns 0 on a CPU
 * without the instruction. */
__attribute__((target("avx512f,avx512bf16"))) static inline double sq_bench__bf16dot_pass(int nthreads, long iters) {
    float sink = 0;
    double t0 = omp_get_wtime();
#pragma omp parallel num_threads(nthreads) reduction(+ : sink)
    {
        __m512 a[12];
        __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3380);
        for (int k = 0; k < 12; k++)
            a[k] = _mm512_set1_ps((float)k);
        for (long i = 0; i < iters; i++)
            for (int k = 0; k < 12; k++)
                a[k] = _mm512_dpbf16_ps(a[k], x, y);
        for (int k = 0; k < 12; k++)
            sink += _mm512_reduce_add_ps(a[k]);
    }
    double dt = omp_get_wtime() - t0;
    if (sink == 1.5f) printf(" ");
    return (double)iters * 12 * 64 * nthreads / dt;
}

__attribute__((target("avx512f,avx512vnni"))) static inline double sq_bench__int8dot_pass(int nthreads, long iters) {
    int sink = 0;
    double t0 = omp_get_wtime();
#pragma omp parallel num_threads(nthreads) reduction(+ : sink)
    {
        __m512i a[12], x = _mm512_set1_epi8(3), y = _mm512_set1_epi8(-5);
        for (int k = 0; k < 12; k++)
            a[k] = _mm512_set1_epi32(k);
        for (long i = 0; i < iters; i++)
            for (int k = 0; k < 12; k++)
                a[k] = _mm512_dpbusd_epi32(a[k], x, y);
        for (int k = 0; k < 12; k++)
            sink += _mm512_reduce_add_epi32(a[k]);
    }
    double dt = omp_get_wtime() - t0;
    if (sink == 12345) printf(" ");
    return (double)iters * 12 * 128 * nthreads / dt;
}

/* Best of three passes, FLOP/s as above; 0 where the CPU lacks the instruction. */
static inline double sq_bench_dot_peak(int bf16, int nthreads, long iters) {
    __builtin_cpu_init();
    if (bf16 ? !__builtin_cpu_supports("avx512bf16") : !__builtin_cpu_supports("avx512vnni")) return 0;
    double best = 0;
    for (int pass = 0; pass < 3; pass++) {
        double r = bf16 ? sq_bench__bf16dot_pass(nthreads, iters) : sq_bench__int8dot_pass(nthreads, iters);
        if (r > best) best = r;
    }
    return best;
}

#endif
