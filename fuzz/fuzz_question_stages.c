/* libFuzzer target: what the question stages parse from text they do not control — a
 * generated completion cut into a question and its dedup key (qgen), a --target-dist list
 * (difficulty sample), a --directions value (optimize). Checks the invariants too: the
 * question has no cut string and no white space at its ends, the key has no white-space runs,
 * keep probabilities are in [0, 1]. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/difficulty.h"
#include "scalequest/optimize.h"
#include "scalequest/qgen.h"

static int space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = 0;
    const char *cut[] = {"<|im_end|>", "<|im_start|>assistant\n", "\n\nAssistant:"};
    char *q = sq_qgen_question(s, cut, 3);
    if (q) {
        size_t n = strlen(q);
        if (n && (space(q[0]) || space(q[n - 1]))) abort();
        for (int i = 0; i < 3; i++)
            if (strstr(q, cut[i])) abort();
        char *k = sq_qgen_normalize(q);
        if (k) {
            for (size_t i = 0; k[i]; i++)
                if ((space(k[i]) && k[i] != ' ') || (k[i] == ' ' && (i == 0 || k[i + 1] == ' ' || !k[i + 1]))) abort();
            free(k);
        }
        free(q);
    }
    sq_sample_opts o;
    sq_sample_opts_default(&o);
    sq_err e;
    if (sq_sample_parse_target(&o, s, &e) == 0) {
        int64_t count[SQ_SAMPLE_MAX_BINS];
        double keep[SQ_SAMPLE_MAX_BINS];
        for (int b = 0; b < o.n_bins; b++) count[b] = (int64_t)(b * 37 % 11);
        sq_sample_keep_probs(&o, count, keep);
        for (int b = 0; b < o.n_bins; b++)
            if (!(keep[b] >= 0 && keep[b] <= 1)) abort();
    }
    double p;
    if (sq_optimize_parse_directions(s, &p, &e) == 0 && !(p >= 0 && p <= 1)) abort();
    free(s);
    return 0;
}
