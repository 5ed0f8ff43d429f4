/* libFuzzer target: the tiny world's grammar parser and answer extractor on arbitrary text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/world.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = 0;
    int64_t ans;
    int steps;
    sq_err e;
    if (sq_world_parse(s, &ans, &steps, &e) == 0 && (ans <= 0 || steps <= 0)) abort();
    sq_world_extract_answer(s, &ans);
    free(s);
    return 0;
}
