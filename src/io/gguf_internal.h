/* Scalar decoding shared by the GGUF parser (gguf.c) and its JSON rendering (gguf_json.c).
 * Both walk values that the parser has already bounds-checked. */
#ifndef SCALEQUEST_GGUF_INTERNAL_H
#define SCALEQUEST_GGUF_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of one scalar of GGUF value type t; 0 for strings, arrays and unknown types. */
size_t sq_gguf_scalar_size(uint32_t t);
/* Read a scalar of integer type t at p into *out (signed) or *uout (unsigned, with
 * *is_unsigned set); returns 0 when t is not an integer type. */
int sq_gguf_read_int(uint32_t t, const uint8_t *p, int64_t *out, uint64_t *uout, int *is_unsigned);

#endif
