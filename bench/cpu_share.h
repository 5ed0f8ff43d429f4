/* Where a benchmark's CPU time goes, by kernel family, without touching the engine: a
 * SIGPROF sampler inside the benchmark process. Every few milliseconds of CPU time (all
 * threads together) the thread that used it takes the signal; the handler unwinds its stack
 * and files the sample under the outermost frame whose function belongs to a family:
 *
 *   attention  a function or file named *attention* / *attn* / *flash*
 *   gemm       *matmul* / *gemm* / *gemv* / *quant* / *panel* / *dot_q* / *_q4..q8* (our
 *              kernels, the LM head and 8-bit activations included), or any frame in libopenblas
 *   sampling   *sample* (the sampler and what it calls: softmax, sorting, libm)
 *   wait       the interrupted instruction is in libgomp: a thread spinning at a barrier
 *   rest       everything else: norms, rope, activations, embedding, scheduling
 *
 * Outermost-first means a helper shared by two families (a dot product, expf) counts for the
 * family that called it. Names, not addresses, decide, so the engine's kernels can be
 * rewritten without touching this file as long as they keep the project's naming
 * (sq_attention_*, sq_matmul_*, sq_sample, ...). Symbols come from the executable's own
 * .symtab (the benchmarks are linked statically against libscalequest, with symbols);
 * local functions also carry the name of the source file they came from (the STT_FILE entry
 * before them), so a static helper of attention.c counts as attention even when its own name
 * says nothing.
 *
 * The handler only unwinds and looks up tables built before the timer starts. Unwinding from
 * a signal is not guaranteed everywhere (stack-realigning epilogues): the handler skips the
 * unwind on a `ret`, and engine_vs_llamacpp.sh measures a run again without the sampler if it
 * still dies of a signal. Cost: one
 * unwind of a few dozen frames per sample, at most a few hundred samples per second per
 * core. Usage: cs_start() right before the measured work, cs_stop() right after, then
 * cs_print() appends "cpu_attention=... cpu_gemm=... cpu_sampling=... cpu_wait=...
 * cpu_rest=... cpu_samples=N" (shares of the sampled CPU time) to the current output line. */
#ifndef SQ_BENCH_CPU_SHARE_H
#define SQ_BENCH_CPU_SHARE_H

#include <elf.h>
#include <errno.h>
#include <execinfo.h>
#include <link.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <ucontext.h>

enum { CS_NONE, CS_ATTN, CS_GEMM, CS_SAMPLE, CS_WAIT, CS_REST, CS_PASS, CS_N };
static const char *const CS_NAMES[CS_N] = {"", "attention", "gemm", "sampling", "wait", "rest", ""};

typedef struct cs_sym {
    uintptr_t lo, hi; /* run-time addresses [lo, hi) */
    unsigned char fam;
} cs_sym;
typedef struct cs_lib {
    uintptr_t lo, hi;
    unsigned char fam; /* CS_WAIT for libgomp, CS_GEMM for OpenBLAS, else CS_PASS */
} cs_lib;

static cs_sym *cs_syms;
static size_t cs_nsyms;
static cs_lib cs_libs[64];
static int cs_nlibs;
static uintptr_t cs_exe_bias;
static atomic_long cs_count[CS_N];

static int cs_has(const char *s, const char *const *pats) {
    for (; *pats; pats++)
        if (strstr(s, *pats)) return 1;
    return 0;
}

/* The family of a function name (or of a source file name). */
static unsigned char cs_family(const char *name) {
    static const char *const attn[] = {"attention", "attn", "flash", NULL};
    static const char *const gemm[] = {"matmul", "gemm", "gemv", "quant", "panel", "dot_q",
                                       "_q4",    "_q5",  "_q6",  "_q8",   NULL};
    static const char *const samp[] = {"sample", "sampler", NULL};
    if (cs_has(name, attn)) return CS_ATTN;
    if (cs_has(name, gemm)) return CS_GEMM;
    if (cs_has(name, samp)) return CS_SAMPLE;
    return CS_NONE;
}

static int cs_cmp(const void *a, const void *b) {
    uintptr_t x = ((const cs_sym *)a)->lo, y = ((const cs_sym *)b)->lo;
    return x < y ? -1 : x > y;
}

static int cs_phdr(struct dl_phdr_info *info, size_t size, void *user) {
    (void)size;
    (void)user;
    const char *name = info->dlpi_name ? info->dlpi_name : "";
    if (!*name) { /* the executable itself */
        cs_exe_bias = info->dlpi_addr;
        return 0;
    }
    unsigned char fam = strstr(name, "libgomp") ? CS_WAIT : strstr(name, "openblas") ? CS_GEMM : CS_PASS;
    for (int i = 0; i < info->dlpi_phnum && cs_nlibs < 64; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
        cs_libs[cs_nlibs++] =
            (cs_lib){info->dlpi_addr + ph->p_vaddr, info->dlpi_addr + ph->p_vaddr + ph->p_memsz, fam};
    }
    return 0;
}

/* Reads the function symbols of /proc/self/exe's .symtab; 0 when done. */
static int cs_load_symbols(void) {
    FILE *f = fopen("/proc/self/exe", "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *img = malloc((size_t)size);
    int ok = img && fread(img, 1, (size_t)size, f) == (size_t)size;
    fclose(f);
    if (!ok || size < (long)sizeof(Elf64_Ehdr)) return free(img), -1;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_shoff + (size_t)eh->e_shnum * sizeof(Elf64_Shdr) > (size_t)size)
        return free(img), -1;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(img + eh->e_shoff);
    for (int s = 0; s < eh->e_shnum; s++) {
        if (sh[s].sh_type != SHT_SYMTAB || sh[s].sh_link >= eh->e_shnum) continue;
        const Elf64_Shdr *str = &sh[sh[s].sh_link];
        if (sh[s].sh_offset + sh[s].sh_size > (size_t)size || str->sh_offset + str->sh_size > (size_t)size)
            break;
        const Elf64_Sym *sym = (const Elf64_Sym *)(img + sh[s].sh_offset);
        const char *names = (const char *)(img + str->sh_offset);
        size_t n = sh[s].sh_size / sizeof(Elf64_Sym);
        cs_syms = calloc(n, sizeof *cs_syms);
        if (!cs_syms) break;
        unsigned char file_fam = CS_NONE; /* family of the source file of the locals that follow */
        for (size_t i = 0; i < n; i++) {
            if (sym[i].st_name >= str->sh_size) continue;
            const char *nm = names + sym[i].st_name;
            int type = ELF64_ST_TYPE(sym[i].st_info);
            if (type == STT_FILE) file_fam = cs_family(nm);
            if (type != STT_FUNC || sym[i].st_size == 0) continue;
            unsigned char fam = cs_family(nm);
            if (fam == CS_NONE && ELF64_ST_BIND(sym[i].st_info) == STB_LOCAL) fam = file_fam;
            cs_syms[cs_nsyms++] =
                (cs_sym){cs_exe_bias + sym[i].st_value, cs_exe_bias + sym[i].st_value + sym[i].st_size, fam};
        }
        break;
    }
    free(img);
    if (!cs_nsyms) return -1;
    qsort(cs_syms, cs_nsyms, sizeof *cs_syms, cs_cmp);
    return 0;
}

/* Family of one code address: CS_NONE (ours, no family), a family, or CS_PASS (a library
 * frame that is neither libgomp nor OpenBLAS: its caller decides). */
static unsigned char cs_lookup(uintptr_t pc) {
    size_t lo = 0, hi = cs_nsyms;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cs_syms[mid].lo <= pc)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo > 0 && pc < cs_syms[lo - 1].hi) return cs_syms[lo - 1].fam;
    for (int i = 0; i < cs_nlibs; i++)
        if (pc >= cs_libs[i].lo && pc < cs_libs[i].hi) return cs_libs[i].fam;
    return CS_PASS;
}

static void cs_on_sigprof(int sig, siginfo_t *si, void *ucv) {
    (void)sig;
    (void)si;
    int saved = errno;
    const ucontext_t *uc = ucv;
    uintptr_t pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    unsigned char inner = cs_lookup(pc), fam = CS_REST;
    if (inner == CS_WAIT) {
        fam = CS_WAIT;
    } else if (*(const unsigned char *)pc == 0xC3) {
        /* Interrupted on a `ret`: in functions that realign the stack for AVX-512 spills
         * (the DRAP frames gcc emits), libgcc's unwinder reads a wrong CFA there and faults
         * (seen in sq_kv_pool_store). Such a sample counts for the function it landed in. */
        fam = inner == CS_NONE || inner == CS_PASS ? CS_REST : inner;
    } else {
        void *fr[64];
        int n = backtrace(fr, 64), start = n;
        /* frames[0..] are this handler and the signal trampoline; the interrupted function
         * follows. Start at the interrupted pc when the unwinder reports it. */
        for (int i = 0; i < n; i++)
            if ((uintptr_t)fr[i] == pc) {
                start = i;
                break;
            }
        if (start == n) start = n > 2 ? 2 : n;
        for (int i = n - 1; i >= start; i--) {                           /* outermost first */
            unsigned char f = cs_lookup((uintptr_t)fr[i] - (i > start)); /* return address - 1 */
            if (f == CS_WAIT) f = CS_NONE;                               /* libgomp's thread start */
            if (f != CS_NONE && f != CS_PASS) {
                fam = f;
                break;
            }
        }
        if (fam == CS_REST && (inner == CS_ATTN || inner == CS_GEMM || inner == CS_SAMPLE)) fam = inner;
    }
    atomic_fetch_add(&cs_count[fam], 1);
    errno = saved;
}

/* Starts sampling every `usec` microseconds of process CPU time; 0 when it runs. */
static int cs_start(long usec) {
    void *warm[4];
    backtrace(warm, 4); /* loads the unwinder now, not inside the first signal */
    dl_iterate_phdr(cs_phdr, NULL);
    if (cs_load_symbols()) return -1;
    for (int k = 0; k < CS_N; k++)
        atomic_store(&cs_count[k], 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = cs_on_sigprof;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGPROF, &sa, NULL)) return -1;
    struct itimerval it = {{0, usec}, {0, usec}};
    return setitimer(ITIMER_PROF, &it, NULL);
}

static void cs_stop(void) {
    struct itimerval it = {{0, 0}, {0, 0}};
    setitimer(ITIMER_PROF, &it, NULL);
    signal(SIGPROF, SIG_IGN);
}

/* " cpu_attention=0.123 ... cpu_samples=N": shares of the samples taken. */
static void cs_print(FILE *out) {
    long total = 0;
    for (int k = 1; k <= CS_REST; k++)
        total += atomic_load(&cs_count[k]);
    for (int k = 1; k <= CS_REST; k++)
        fprintf(out, " cpu_%s=%.4f", CS_NAMES[k], total ? (double)atomic_load(&cs_count[k]) / total : 0.0);
    fprintf(out, " cpu_samples=%ld", total);
}

#endif
