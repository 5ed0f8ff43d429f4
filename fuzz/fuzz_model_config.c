/* libFuzzer target: sq_model_config_from_json on arbitrary text, then the writer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/model_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    sq_model_config c;
    sq_err e;
    if (sq_model_config_from_json(&c, text, "fuzz.json", &e) == 0) {
        sq_buf out = {0};
        if (sq_model_config_to_json(&c, &out) == 0) {
            sq_model_config back;
            /* What we write must read back, and to the same config. */
            if (sq_model_config_from_json(&back, out.data, "out.json", &e) != 0) abort();
            if (memcmp(&back, &c, sizeof c) != 0) abort();
        }
        sq_buf_free(&out);
    }
    free(text);
    return 0;
}
