/* gguf — read GGUF files (v2, v3) through mmap.
 *
 * sq_gguf_open maps the file and indexes its metadata and tensor table; every offset and
 * length is checked against the file size, so a corrupt or truncated file is an error that
 * names the byte offset, never an out-of-bounds read. Strings and tensor data point into
 * the mapping: they stay valid until sq_gguf_close.
 */
#ifndef SCALEQUEST_GGUF_H
#define SCALEQUEST_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "scalequest/base.h"
#include "scalequest/tensor.h"

typedef enum {
    SQ_GGUF_U8 = 0, SQ_GGUF_I8 = 1, SQ_GGUF_U16 = 2, SQ_GGUF_I16 = 3, SQ_GGUF_U32 = 4,
    SQ_GGUF_I32 = 5, SQ_GGUF_F32 = 6, SQ_GGUF_BOOL = 7, SQ_GGUF_STRING = 8, SQ_GGUF_ARRAY = 9,
    SQ_GGUF_U64 = 10, SQ_GGUF_I64 = 11, SQ_GGUF_F64 = 12,
} sq_gguf_type;

typedef struct sq_gguf_str {
    const char *ptr; /* not NUL-terminated */
    uint64_t len;
} sq_gguf_str;

typedef struct sq_gguf_kv {
    sq_gguf_str key;
    sq_gguf_type type;
    sq_gguf_type elem_type; /* arrays */
    uint64_t n;             /* arrays: element count */
    const uint8_t *data;    /* the value (scalars) or the first element (arrays); may be
                               unaligned: read through memcpy or the sq_gguf_arr_* helpers */
    sq_gguf_str *strs;      /* string arrays: every element, indexed at open (else NULL) */
} sq_gguf_kv;

typedef struct sq_gguf_tensor {
    sq_gguf_str name;
    int n_dims;
    int64_t ne[4];   /* GGUF order: ne[0] is the fastest-varying (row length) */
    uint32_t ggml_type; /* 0 F32, 1 F16, 8 Q8_0, 30 BF16, ... */
    const uint8_t *data;
    size_t nbytes;
} sq_gguf_tensor;

typedef struct sq_gguf {
    sq_mmap map;
    uint32_t version;
    sq_gguf_kv *kv;
    int64_t n_kv;
    sq_gguf_tensor *tensors;
    int64_t n_tensors;
    char *path;
    uint32_t alignment;     /* general.alignment, default 32 */
    size_t data_offset;     /* where the tensor data section starts */
    int owns_map;           /* 1: opened from a file, unmapped at close */
} sq_gguf;

int sq_gguf_open(sq_gguf *g, const char *path, sq_err *e);
/* Parse from memory (the fuzzer's entry point); buf must outlive g. */
int sq_gguf_parse(sq_gguf *g, const uint8_t *buf, size_t len, const char *name, sq_err *e);
void sq_gguf_close(sq_gguf *g);

const sq_gguf_kv *sq_gguf_find(const sq_gguf *g, const char *key);
/* Typed getters: 0 ok; SQ_ENOTFOUND when absent; SQ_EPARSE when of another type. Integer
 * getters accept any integer type that fits. */
int sq_gguf_get_u32(const sq_gguf *g, const char *key, uint32_t *out, sq_err *e);
int sq_gguf_get_f32(const sq_gguf *g, const char *key, float *out, sq_err *e);
int sq_gguf_get_str(const sq_gguf *g, const char *key, sq_gguf_str *out, sq_err *e);
int sq_gguf_get_i64(const sq_gguf *g, const char *key, int64_t *out, sq_err *e);
int sq_gguf_get_bool(const sq_gguf *g, const char *key, int *out, sq_err *e);
/* An array-valued key whose elements are of elem_type (SQ_GGUF_ARRAY: any). */
int sq_gguf_get_arr(const sq_gguf *g, const char *key, sq_gguf_type elem_type, const sq_gguf_kv **out,
                    sq_err *e);
/* Element i of a numeric array, converted (0 when i is out of range or not numeric). */
int64_t sq_gguf_arr_int(const sq_gguf_kv *kv, uint64_t i);
double sq_gguf_arr_num(const sq_gguf_kv *kv, uint64_t i);
/* True when s equals the C string z. */
int sq_gguf_str_eq(sq_gguf_str s, const char *z);
/* Append a metadata value as JSON (nested arrays as nested lists; NaN/Infinity spelled as
 * Python's json module reads them). */
int sq_gguf_kv_to_json(const sq_gguf_kv *kv, sq_buf *out);
/* Append n bytes as a quoted JSON string (quotes, backslashes, control bytes escaped). */
int sq_gguf_json_escape(sq_buf *out, const char *s, size_t n);
/* Name and element size of a ggml type; block: values per block (1 for plain types).
 * Returns 0 for an unknown type. */
const char *sq_ggml_type_name(uint32_t ggml_type);
size_t sq_ggml_type_block_bytes(uint32_t ggml_type, int *block);
/* Element i of a string array (bounds-checked by the parser at open). */
sq_gguf_str sq_gguf_arr_str(const sq_gguf_kv *kv, uint64_t i);
const sq_gguf_tensor *sq_gguf_find_tensor(const sq_gguf *g, const char *name);
/* The sq_dtype of a ggml type id: 0, or -1 for a type the engine does not read. */
int sq_ggml_to_dtype(uint32_t ggml_type, sq_dtype *out);
/* The tensor as a sq_view in row-major HF order (shape reversed from ne): F32, F16, BF16,
 * I32, I64 and the quantized Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K (I8 as U8 is not
 * offered); SQ_EUNSUP, naming the type, for other ggml types. */
int sq_gguf_tensor_view(const sq_gguf_tensor *t, sq_view *v, sq_err *e);

#endif
