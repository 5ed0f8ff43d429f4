/* libFuzzer target for the grader: the input is split at its first newline into a gold and a
 * prediction, which go through every entry point (normalise, extract, gold formats, compare,
 * grade a response). Anything may come in; nothing may crash, leak or run away. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/grade.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1 << 16) return 0;
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    char *pred = strchr(buf, '\n');
    if (pred) *pred++ = 0;
    else pred = buf + size;
    const char *gold = buf;

    sq_grade_opts o;
    sq_grade_opts_init(&o);
    o.percent = (sq_grade_pct)(size % 3);
    o.ordered_lists = (int)(size & 1);
    free(sq_grade_normalize(gold));
    free(sq_grade_normalize(pred));
    const char *how;
    free(sq_grade_extract(buf, &o, &how));
    for (int f = SQ_GOLD_AUTO; f <= SQ_GOLD_DOLLARS; f++) free(sq_grade_gold(gold, (sq_gold_format)f));
    int a = sq_grade_equal(gold, pred, &o);
    int b = sq_grade_equal(gold, pred, &o);
    if (a != b) abort(); /* verdicts are deterministic */
    /* an answer equals itself, unless it is long enough to be cut at the size cap */
    if (size < 4096 && sq_grade_equal(gold, gold, &o) != 1) {
        char *n = sq_grade_normalize(gold);
        int empty = !n || !*n;
        free(n);
        if (!empty) abort();
    }
    char *ex = NULL;
    sq_grade_response(gold, pred, &o, &ex);
    free(ex);
    free(buf);
    return 0;
}
