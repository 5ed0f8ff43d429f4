/* libFuzzer target: the Figure 9-12 reply parsers (judge.h) and prompt recognition on
 * arbitrary bytes. The input is NOT NUL-terminated: every parser must stay inside `size`.
 * Checks: spans lie inside the reply; a rewrite is never empty; a rating is 0..5; a prompt
 * built around any question is recognised with that question back; the world oracle's
 * Fig 9/10 replies to any question hold a rewrite the world can solve. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/judge.h"
#include "scalequest/oracle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* an exact-size copy, so ASan catches a read one past the end */
    char *s = malloc(size ? size : 1);
    if (!s) return 0;
    memcpy(s, data, size);
    sq_verdict v = sq_reply_verdict(s, size);
    if (v != SQ_VERDICT_YES && v != SQ_VERDICT_NO && v != SQ_VERDICT_UNKNOWN) abort();
    (void)sq_reply_verdict_official(s, size);
    for (int k = SQ_PROMPT_SOLVABILITY_OPTIMIZE; k <= SQ_PROMPT_DIFFICULTY_OPTIMIZE; k++) {
        const char *q;
        size_t n;
        int rc = sq_reply_rewrite((sq_prompt_kind)k, s, size, &q, &n);
        if (rc == 0 && (n == 0 || q < s || q + n > s + size)) abort();
    }
    int r = sq_reply_rating(s, size);
    if (r < 0 || r > 5) abort();
    sq_prompt_kind kind;
    const char *q;
    size_t qn;
    if (sq_prompt_identify(s, size, &kind, &q, &qn) && (q < s || q + qn > s + size)) abort();
    /* round trip: the bytes as a question (up to the first NUL) */
    size_t ql = strnlen(s, size);
    char *qs = malloc(ql + 1);
    if (qs) {
        memcpy(qs, s, ql);
        qs[ql] = 0;
        int k = (int)(size % SQ_PROMPT_KINDS);
        char *p = NULL;
        size_t pn = sq_prompt_build((sq_prompt_kind)k, qs, NULL, 0);
        p = malloc(pn + 1);
        if (p) {
            sq_prompt_build((sq_prompt_kind)k, qs, p, pn + 1);
            if (!sq_prompt_identify(p, pn, &kind, &q, &qn)) abort();
            free(p);
        }
        static sq_backend *oracle;
        if (!oracle && sq_world_oracle_open(&oracle, NULL, NULL)) abort();
        char *prompt = k <= 1 ? sq_prompt_difficulty_optimize(qs) : sq_prompt_solvability_optimize(qs);
        char *reply = prompt ? sq_world_oracle_reply(oracle, prompt, size) : NULL;
        if (reply) {
            const char *w;
            size_t wn;
            sq_prompt_kind rk = k <= 1 ? SQ_PROMPT_DIFFICULTY_OPTIMIZE : SQ_PROMPT_SOLVABILITY_OPTIMIZE;
            if (sq_reply_rewrite(rk, reply, strlen(reply), &w, &wn)) abort();
            char *wz = strndup(w, wn);
            int64_t ans;
            /* an unchanged question that the world solves in 2+ steps is echoed as it came */
            if (wz && sq_world_parse(wz, &ans, NULL, NULL) != 0 && strcmp(wz, qs) != 0) abort();
            free(wz);
        }
        free(reply);
        free(prompt);
        {
        }
        free(qs);
    }
    free(s);
    return 0;
}
