/* tensor — the few element types and the view that the io, kernels and model layers share.
 *
 * A sq_view never owns its data: it points into an mmap'd weight file, a parameter buffer
 * or an arena. Shapes are row-major, outermost first (HF/PyTorch order): a Linear weight
 * is [out_features, in_features].
 */
#ifndef SCALEQUEST_TENSOR_H
#define SCALEQUEST_TENSOR_H

#include <stddef.h>
#include <stdint.h>

/* The quantized types (Q*) are GGUF's block formats: a row is a whole number of blocks of
 * 32 (Q4_0 .. Q8_0) or 256 (Q4_K, Q5_K, Q6_K) values, each block a scale (and minimum) in
 * f16 plus packed integers; quant.h reads them. */
typedef enum {
    SQ_F32 = 0, SQ_F16 = 1, SQ_BF16 = 2, SQ_Q8_0 = 3, SQ_I32 = 4, SQ_I64 = 5, SQ_U8 = 6,
    SQ_Q4_0 = 7, SQ_Q4_1 = 8, SQ_Q5_0 = 9, SQ_Q5_1 = 10, SQ_Q4_K = 11, SQ_Q5_K = 12, SQ_Q6_K = 13,
} sq_dtype;

typedef struct sq_view {
    void *data;
    sq_dtype dtype;
    int ndim;
    int64_t shape[4];
} sq_view;

const char *sq_dtype_name(sq_dtype t);
size_t sq_dtype_size(sq_dtype t);          /* bytes per element (quantized types: 0, use sq_view_bytes) */
/* Quantized types: values per block and bytes per block (0 and 0 for plain types). */
int sq_dtype_block(sq_dtype t, size_t *block_bytes);
static inline int sq_dtype_is_quant(sq_dtype t) { return t == SQ_Q8_0 || (t >= SQ_Q4_0 && t <= SQ_Q6_K); }
int64_t sq_view_numel(const sq_view *v);
size_t sq_view_bytes(const sq_view *v);

static inline float sq_bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } x = {(uint32_t)h << 16};
    return x.f;
}
/* Round to nearest even, as PyTorch does; NaN stays NaN. */
static inline uint16_t sq_f32_to_bf16(float f) {
    union { float f; uint32_t u; } x = {f};
    if ((x.u & 0x7fffffff) > 0x7f800000) return (uint16_t)((x.u >> 16) | 0x40);
    return (uint16_t)((x.u + 0x7fff + ((x.u >> 16) & 1)) >> 16);
}
float sq_f16_to_f32(uint16_t h);
uint16_t sq_f32_to_f16(float f);

#endif
