/* tensor — element type names and sizes, and exact IEEE half <-> single conversion.
 *
 * The half conversions are bit-exact in both directions (subnormals, infinities, NaN
 * payload kept where it fits), because weight files round-trip through them: a value read
 * from F16 and written back must come out with the same bits.
 */
#include <string.h>

#include "scalequest/tensor.h"

const char *sq_dtype_name(sq_dtype t) {
    switch (t) {
    case SQ_F32: return "F32";
    case SQ_F16: return "F16";
    case SQ_BF16: return "BF16";
    case SQ_Q8_0: return "Q8_0";
    case SQ_I32: return "I32";
    case SQ_I64: return "I64";
    case SQ_U8: return "U8";
    case SQ_Q4_0: return "Q4_0";
    case SQ_Q4_1: return "Q4_1";
    case SQ_Q5_0: return "Q5_0";
    case SQ_Q5_1: return "Q5_1";
    case SQ_Q4_K: return "Q4_K";
    case SQ_Q5_K: return "Q5_K";
    case SQ_Q6_K: return "Q6_K";
    }
    return "?";
}

size_t sq_dtype_size(sq_dtype t) {
    switch (t) {
    case SQ_F32: return 4;
    case SQ_F16: return 2;
    case SQ_BF16: return 2;
    case SQ_Q8_0: return 0;
    case SQ_I32: return 4;
    case SQ_I64: return 8;
    case SQ_U8: return 1;
    default: return 0; /* quantized: see sq_dtype_block */
    }
}

int sq_dtype_block(sq_dtype t, size_t *block_bytes) {
    /* GGUF's block sizes: an f16 scale (Q*_1 and K types: also an f16 minimum or a second
     * scale), packed low bits, high bits where a type has 5 or 6, and K types' sub-scales. */
    static const struct {
        sq_dtype t;
        int values;
        size_t bytes;
    } tab[] = {{SQ_Q4_0, 32, 18}, {SQ_Q4_1, 32, 20}, {SQ_Q5_0, 32, 22},  {SQ_Q5_1, 32, 24},
               {SQ_Q8_0, 32, 34}, {SQ_Q4_K, 256, 144}, {SQ_Q5_K, 256, 176}, {SQ_Q6_K, 256, 210}};
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (tab[i].t == t) {
            if (block_bytes) *block_bytes = tab[i].bytes;
            return tab[i].values;
        }
    if (block_bytes) *block_bytes = 0;
    return 0;
}

int64_t sq_view_numel(const sq_view *v) {
    int64_t n = 1;
    for (int i = 0; i < v->ndim; i++)
        n *= v->shape[i];
    return n;
}

size_t sq_view_bytes(const sq_view *v) {
    int64_t n = sq_view_numel(v);
    size_t bb;
    int per = sq_dtype_block(v->dtype, &bb);
    if (per) return (size_t)(n / per) * bb;
    return (size_t)n * sq_dtype_size(v->dtype);
}

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float sq_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000 | (man << 13)); /* inf / nan */
    if (exp == 0) {
        if (man == 0) return bits_f32(sign);
        /* Subnormal: normalise the mantissa; every f16 subnormal is an f32 normal. */
        int e = -1;
        do {
            man <<= 1;
            e++;
        } while (!(man & 0x400));
        man &= 0x3ff;
        return bits_f32(sign | ((uint32_t)(127 - 15 - e) << 23) | (man << 13));
    }
    return bits_f32(sign | ((exp + 127 - 15) << 23) | (man << 13));
}

uint16_t sq_f32_to_f16(float f) {
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t exp = (u >> 23) & 0xff;
    uint32_t man = u & 0x7fffff;
    if (exp == 0xff) {
        if (!man) return sign | 0x7c00;
        /* Keep the top payload bits and force quiet so a NaN never becomes infinity. */
        return sign | 0x7e00 | (uint16_t)(man >> 13);
    }
    int e = (int)exp - 127 + 15;
    if (e >= 0x1f) return sign | 0x7c00; /* overflow */
    if (e <= 0) {
        /* Result is subnormal or zero: shift the full significand right, round to even. */
        if (e < -10) return sign;
        uint32_t m = man | 0x800000;
        int shift = 14 - e;
        uint32_t half = 1u << (shift - 1);
        uint32_t rest = m & ((1u << shift) - 1);
        uint32_t r = m >> shift;
        if (rest > half || (rest == half && (r & 1))) r++;
        return sign | (uint16_t)r; /* a carry into 0x400 correctly yields the smallest normal */
    }
    uint32_t r = ((uint32_t)e << 10) | (man >> 13);
    uint32_t rest = man & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (r & 1))) r++; /* carry may reach inf: correct */
    return sign | (uint16_t)r;
}
