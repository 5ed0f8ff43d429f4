/* safetensors — read (mmap, no copies) and write HF safetensors files.
 *
 * The reader checks the header JSON, every dtype, shape and offset range against the file
 * size, and that tensors neither overlap nor leave holes, so a corrupt file is an error
 * naming the file and what was wrong. Views point into the mapping (valid until close).
 * A sharded model (model.safetensors.index.json) opens as one set.
 * The writer produces files that transformers' from_pretrained loads.
 */
#ifndef SCALEQUEST_SAFETENSORS_H
#define SCALEQUEST_SAFETENSORS_H

#include "scalequest/base.h"
#include "scalequest/tensor.h"

typedef struct sq_st_tensor {
    char *name;
    sq_view view;
} sq_st_tensor;

typedef struct sq_safetensors {
    sq_mmap *maps; /* one per shard */
    int n_maps;
    sq_st_tensor *tensors;
    int n_tensors;
} sq_safetensors;

/* path: a .safetensors file, a model.safetensors.index.json, or a folder holding either. */
int sq_st_open(sq_safetensors *s, const char *path, sq_err *e);
/* Parse one file already in memory (the fuzzer's entry point); buf must outlive s. */
int sq_st_parse(sq_safetensors *s, const uint8_t *buf, size_t len, const char *name, sq_err *e);
void sq_st_close(sq_safetensors *s);
const sq_view *sq_st_find(const sq_safetensors *s, const char *name);

typedef struct sq_st_entry {
    const char *name;
    sq_view view; /* F32, F16, BF16, I32, I64 or U8; 0..4 dims */
} sq_st_entry;

/* Write tensors to one file atomically, ordered as HF's writer orders them (dtype width,
 * then name) so the bytes match a file written by Python safetensors; metadata
 * {"format":"pt"}; header padded to 8 bytes so every view of the file is aligned. */
int sq_st_write(const char *path, const sq_st_entry *entries, int n, sq_err *e);

#endif
