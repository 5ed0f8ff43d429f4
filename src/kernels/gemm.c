/* The one GEMM entry point (kernels.h): sq_gemm picks the backend from the descriptor, here
 * and nowhere else.
 *  - A weight view (W: F32, BF16 or a GGUF block type, [N, K]): our kernels (matmul.c). A row
 *    of C depends on its row of A alone, bit for bit at any M, so the engine's batched rows
 *    equal its sequential ones; the fused dequantize-and-dot reads GGUF blocks in place.
 *  - A plain F32 B with any transposes (training): OpenBLAS sgemm. OpenBLAS runs one thread
 *    per call and large products are split over the OpenMP pool here: OpenBLAS's own pthread pool beside the
 *    OpenMP one oversubscribes the cores (its workers spin in sched_yield while our OpenMP
 *    regions run and the reverse; a tenth of a training step went to sched_yield). With one
 *    pool, a GEMM inside an OpenMP loop (attention's per-head products) and a GEMM split here
 *    share the same threads. */
#include <cblas.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/kernels.h"

/* Smaller products run on the calling thread: waking the pool costs more. */
#define BLAS_PAR_MIN (1 << 21)

static void one(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
                lda, B, ldb, beta, C, ldc);
}

/* OpenBLAS built with DYNAMIC_ARCH picks its kernels from the CPU model when the library
 * loads; a CPU newer than the build (0.3.21 does not know family 6 model 0xCF Xeons) gets
 * its generic fallback, the SSE3 "Prescott" kernels, at about a quarter of the speed of its
 * AVX-512 ones (sgemm 512 x 3072 x 576 on one core: 30 against 135 GFLOP/s). When that
 * fallback was taken and the CPU has the instructions, choose the kernels by instruction set
 * instead, once, before the first product: the dispatcher reads OPENBLAS_CORETYPE, which is
 * set only for that moment. A caller's own OPENBLAS_CORETYPE is respected; builds without
 * the dispatcher (weak symbols absent) are left alone. */
extern void gotoblas_dynamic_init(void) __attribute__((weak));
extern void gotoblas_dynamic_quit(void) __attribute__((weak));

static void pick_kernels(void) {
    if (!gotoblas_dynamic_init || !gotoblas_dynamic_quit || getenv("OPENBLAS_CORETYPE")) return;
    const char *name = openblas_get_corename();
    if (!name || strcmp(name, "Prescott") != 0) return;
    __builtin_cpu_init();
    const char *want = NULL;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512cd"))
        want = "SkylakeX";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        want = "Haswell";
    if (!want) return;
    setenv("OPENBLAS_CORETYPE", want, 1);
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init();
    unsetenv("OPENBLAS_CORETYPE");
}

static pthread_once_t kernels_once = PTHREAD_ONCE_INIT;

void sq_gemm_one_pool(void) {
    pthread_once(&kernels_once, pick_kernels);
    if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
}

const char *sq_gemm_blas_core(void) {
    pthread_once(&kernels_once, pick_kernels);
    return openblas_get_corename();
}

static void blas(const sq_gemm_desc *d) {
    int ta = d->ta, tb = d->tb, M = d->M, N = d->N, K = d->K, lda = d->lda, ldb = d->ldb, ldc = d->ldc;
    float alpha = d->alpha, beta = d->beta, *C = d->C;
    const float *A = d->A, *B = d->B;
    sq_gemm_one_pool();
    if (K <= 0) { /* nothing to add: C = beta C, as BLAS */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
        return;
    }
    double work = (double)M * N * K;
    if (omp_in_parallel() || omp_get_max_threads() == 1 || work < BLAS_PAR_MIN) {
        one(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    /* Split the longer side of C in slices of whole 16-row/column blocks (OpenBLAS's
     * micro-tile on Zen is 16 x 4), two slices per thread handed out as threads come free:
     * on a shared machine a thread that loses its core for a while leaves its second slice
     * to the other one instead of holding up the whole product. Each element of C is still
     * computed by one call over the full K, whichever thread runs it. */
    int along_m = M >= N, len = along_m ? M : N, blocks = (len + 15) / 16;
    int slices = 2 * omp_get_max_threads();
    if (slices > blocks) slices = blocks;
#pragma omp parallel for schedule(dynamic, 1)
    for (int c = 0; c < slices; c++) {
        int b0 = (int)((long)blocks * c / slices), b1 = (int)((long)blocks * (c + 1) / slices);
        int s0 = b0 * 16, s1 = b1 * 16 < len ? b1 * 16 : len;
        if (s1 <= s0) continue;
        if (along_m) {
            const float *a = ta ? A + s0 : A + (size_t)s0 * lda;
            one(ta, tb, s1 - s0, N, K, alpha, a, lda, B, ldb, beta, C + (size_t)s0 * ldc, ldc);
        } else {
            const float *b = tb ? B + (size_t)s0 * ldb : B + s0;
            one(ta, tb, M, s1 - s0, K, alpha, A, lda, b, ldb, beta, C + s0, ldc);
        }
    }
}

int sq_gemm(const sq_gemm_desc *d, sq_err *e) {
    if (!d->W) {
        if (d->bias || d->ctx) return sq_fail(e, SQ_EINVAL, "gemm: a bias or a scratch context needs a weight view");
        blas(d);
        return 0;
    }
    if (d->ta || d->alpha != 1.0f || d->beta != 0.0f || d->lda != d->K || d->ldc != d->N || d->W->ndim != 2 ||
        d->W->shape[0] != d->N || d->W->shape[1] != d->K)
        return sq_fail(e, SQ_EINVAL, "gemm: a weight view takes C[%d, %d] = A[%d, %d] W^T, dense, alpha 1, beta 0",
                       d->M, d->N, d->M, d->K);
    return sq_matmul(d->ctx, d->C, d->A, d->M, d->W, d->bias, e);
}
