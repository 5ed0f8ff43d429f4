/* Random GGUF weight blocks for the quantized-kernel tests: every byte random (so every
 * int8 value, -128 included, and every nibble), then each block's f16 scales (and mins)
 * overwritten with finite values at the offsets the type keeps them (quant.c). */
#ifndef SQ_TEST_QUANT_BLOCKS_H
#define SQ_TEST_QUANT_BLOCKS_H

#include <stdlib.h>
#include <string.h>

#include "scalequest/kernels.h"
#include "scalequest/quant.h"

static const sq_dtype TYPES[] = {SQ_Q4_0, SQ_Q4_1, SQ_Q5_0, SQ_Q5_1, SQ_Q8_0, SQ_Q4_K, SQ_Q5_K, SQ_Q6_K};

static void put_h(uint8_t *p, float f) {
    uint16_t h = sq_f32_to_f16(f);
    memcpy(p, &h, 2);
}

static uint8_t *random_blocks(sq_dtype t, int nblocks, sq_rng *r) {
    size_t bb;
    sq_dtype_block(t, &bb);
    uint8_t *p = malloc(bb * (size_t)nblocks);
    for (size_t i = 0; i < bb * (size_t)nblocks; i++) p[i] = (uint8_t)sq_rng_u64(r);
    int at = t == SQ_Q6_K ? 208 : 0, nh = (t == SQ_Q4_1 || t == SQ_Q5_1 || t == SQ_Q4_K || t == SQ_Q5_K) ? 2 : 1;
    for (int b = 0; b < nblocks; b++)
        for (int k = 0; k < nh; k++) put_h(p + (size_t)b * bb + at + 2 * k, (float)(sq_rng_uniform(r) - 0.5) * 0.2f);
    return p;
}

#endif
