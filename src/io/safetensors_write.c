/* safetensors_write — one safetensors file, written atomically.
 *
 * Layout as HF's writer makes it: tensors sorted by dtype width then name, packed back to
 * back in that order (the header lists them in the same order),
 * metadata {"format":"pt"} (what transformers checks for before loading), and the header
 * padded with spaces so the data buffer starts on an 8-byte boundary, which keeps every
 * F32/I64 view of the mapped file aligned.
 */
#include <stdlib.h>
#include <string.h>

#include "scalequest/safetensors.h"

/* HF's writer orders tensors by dtype (its enum order, descending: I64, F32, I32, BF16,
 * F16, U8 for ours) and then by name. Wider types first keeps every tensor aligned to its
 * element size, and matching the order makes our files byte-identical to theirs. */
static int dtype_rank(sq_dtype t) {
    switch (t) {
    case SQ_I64: return 0;
    case SQ_F32: return 1;
    case SQ_I32: return 2;
    case SQ_BF16: return 3;
    case SQ_F16: return 4;
    default: return 5;
    }
}

static int cmp_entry(const void *a, const void *b) {
    const sq_st_entry *x = *(const sq_st_entry *const *)a, *y = *(const sq_st_entry *const *)b;
    int rx = dtype_rank(x->view.dtype), ry = dtype_rank(y->view.dtype);
    if (rx != ry) return rx - ry;
    return strcmp(x->name, y->name);
}

static int cmp_name(const void *a, const void *b) {
    return strcmp((*(const sq_st_entry *const *)a)->name, (*(const sq_st_entry *const *)b)->name);
}

static int put_json_string(sq_buf *b, const char *s) {
    int rc = sq_buf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p && !rc; p++) {
        /* The escapes serde_json (HF's writer) uses, so headers match byte for byte. */
        const char *short_esc = *p == '\n'   ? "\\n"
                                : *p == '\t' ? "\\t"
                                : *p == '\r' ? "\\r"
                                : *p == '\b' ? "\\b"
                                : *p == '\f' ? "\\f"
                                             : NULL;
        if (*p == '"' || *p == '\\')
            rc = sq_buf_printf(b, "\\%c", *p);
        else if (short_esc)
            rc = sq_buf_puts(b, short_esc);
        else if (*p < 0x20)
            rc = sq_buf_printf(b, "\\u%04x", *p);
        else
            rc = sq_buf_append(b, p, 1);
    }
    return rc ? rc : sq_buf_puts(b, "\"");
}

int sq_st_write(const char *path, const sq_st_entry *entries, int n, sq_err *e) {
    if (n < 0 || (n > 0 && !entries)) return sq_fail(e, SQ_EINVAL, "%s: no tensors given", path);
    const sq_st_entry **order = malloc(sizeof *order * (size_t)(n ? n : 1));
    if (!order) return sq_fail(e, SQ_ENOMEM, "%s: out of memory", path);
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        const sq_st_entry *en = &entries[i];
        order[i] = en;
        if (!en->name || !*en->name || !strcmp(en->name, "__metadata__"))
            rc = sq_fail(e, SQ_EINVAL, "%s: tensor %d has no usable name", path, i);
        else if (en->view.dtype == SQ_Q8_0 || sq_dtype_size(en->view.dtype) == 0)
            rc = sq_fail(e, SQ_EINVAL, "%s: tensor '%s': dtype %s cannot be stored in safetensors", path,
                         en->name, sq_dtype_name(en->view.dtype));
        else if (en->view.ndim < 0 || en->view.ndim > 4)
            rc = sq_fail(e, SQ_EINVAL, "%s: tensor '%s' has %d dimensions", path, en->name, en->view.ndim);
        for (int d = 0; d < en->view.ndim && !rc; d++)
            if (en->view.shape[d] < 0)
                rc = sq_fail(e, SQ_EINVAL, "%s: tensor '%s' has a negative dimension", path, en->name);
        if (!rc && sq_view_bytes(&en->view) && !en->view.data)
            rc = sq_fail(e, SQ_EINVAL, "%s: tensor '%s' has no data", path, en->name);
    }
    if (!rc && n > 1) qsort(order, (size_t)n, sizeof *order, cmp_name);
    for (int i = 1; i < n && !rc; i++)
        if (!strcmp(order[i - 1]->name, order[i]->name))
            rc = sq_fail(e, SQ_EINVAL, "%s: tensor '%s' given twice", path, order[i]->name);
    if (!rc && n > 1) qsort(order, (size_t)n, sizeof *order, cmp_entry);
    sq_buf h = {0};
    if (!rc) rc = sq_buf_puts(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0;
    for (int i = 0; i < n && !rc; i++) {
        const sq_view *v = &order[i]->view;
        uint64_t nb = sq_view_bytes(v);
        rc = sq_buf_puts(&h, ",");
        if (!rc) rc = put_json_string(&h, order[i]->name);
        if (!rc) rc = sq_buf_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", sq_dtype_name(v->dtype));
        for (int d = 0; d < v->ndim && !rc; d++)
            rc = sq_buf_printf(&h, "%s%lld", d ? "," : "", (long long)v->shape[d]);
        if (!rc)
            rc = sq_buf_printf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                               (unsigned long long)(off + nb));
        off += nb;
    }
    if (!rc) rc = sq_buf_puts(&h, "}");
    while (!rc && h.len % 8)
        rc = sq_buf_puts(&h, " ");
    if (rc && rc != SQ_EINVAL) rc = sq_fail(e, SQ_ENOMEM, "%s: out of memory", path);
    sq_atomic_file f;
    if (!rc) rc = sq_atomic_open(&f, path, e);
    if (!rc) {
        uint64_t hl = h.len;
        int ok = fwrite(&hl, 8, 1, f.fp) == 1 && fwrite(h.data, 1, h.len, f.fp) == h.len;
        for (int i = 0; i < n && ok; i++) {
            size_t nb = sq_view_bytes(&order[i]->view);
            ok = !nb || fwrite(order[i]->view.data, 1, nb, f.fp) == nb;
        }
        if (!ok) {
            sq_atomic_abort(&f);
            rc = sq_fail(e, SQ_EIO, "%s: write failed", path);
        } else
            rc = sq_atomic_commit(&f, e);
    }
    sq_buf_free(&h);
    free(order);
    return rc;
}
