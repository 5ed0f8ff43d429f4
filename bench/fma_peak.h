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

#include "scalequest/base.h"

/* FLOP/s (2 per multiply-add lane) over `nthreads` threads; `iters` loop turns per pass;
 * `now_fn` gives seconds (wall time, or the thread's CPU time for one thread). */
static double sq_bench_fma_peak(int nthreads, long iters, double (*now_fn)(void)) {
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

#endif
