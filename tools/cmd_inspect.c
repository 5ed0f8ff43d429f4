/* scalequest inspect: what a model file holds — config, GGUF metadata, tensor table.
 *
 * Text for people; --json for programs (the peer tests compare it with Python's gguf and
 * safetensors readers): every metadata value in full and, per tensor, dtype, shape, byte
 * size and an FNV-1a 64 hash of its bytes so values can be compared without dumping them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "scalequest/gguf.h"
#include "scalequest/model_config.h"
#include "scalequest/safetensors.h"

static uint64_t fnv1a64(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static int is_gguf(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char m[4] = {0};
    size_t n = fread(m, 1, 4, f);
    fclose(f);
    return n == 4 && !memcmp(m, "GGUF", 4);
}

static void put_config(sq_buf *b, const sq_model_config *c, int ok, const sq_err *e, int json) {
    if (json) {
        sq_buf_puts(b, "\"config\": ");
        if (ok) {
            sq_model_config_to_json(c, b);
            while (b->len && (b->data[b->len - 1] == '\n'))
                b->data[--b->len] = 0;
        } else {
            sq_buf_puts(b, "null, \"config_error\": ");
            sq_gguf_json_escape(b, e->msg, strlen(e->msg));
        }
        return;
    }
    if (!ok) {
        sq_buf_printf(b, "config: none (%s)\n", e->msg);
        return;
    }
    sq_buf_printf(
        b,
        "config: %s, dim %d, %d layers, %d heads (%d kv, head_dim %d), ffn %d, vocab %d, context %d, "
        "rope_theta %g, rms_eps %g, tied %d, qkv bias %d, window %d, %s\n",
        c->arch, c->dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->ffn_dim, c->vocab_size,
        c->max_seq_len, (double)c->rope_theta, (double)c->norm_eps, c->tie_embeddings, c->attn_bias,
        c->sliding_window, c->torch_dtype);
}

/* A GGUF's weights are named by their ggml type (the config's torch-style name only knows
 * float types, and would call a Q4_1 file float32): the type most matrices have, as GGUF
 * tools name it; "F32", "Q4_1", ... */
static void gguf_weight_type(const sq_gguf *g, sq_model_config *c) {
    int64_t count[64] = {0};
    uint32_t best = 0;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        uint32_t t = g->tensors[i].ggml_type;
        if (g->tensors[i].n_dims < 2 || t >= 64) continue;
        if (++count[t] > count[best]) best = t;
    }
    const char *name = count[best] ? sq_ggml_type_name(best) : NULL;
    if (name) snprintf(c->torch_dtype, sizeof c->torch_dtype, "%s", name);
}

static int inspect_gguf(const char *path, int json, sq_buf *b, sq_err *e) {
    sq_gguf g;
    int rc = sq_gguf_open(&g, path, e);
    if (rc) return rc;
    sq_model_config c;
    sq_err ce;
    int ok = sq_model_config_from_gguf(&c, &g, &ce) == 0;
    if (ok) gguf_weight_type(&g, &c);
    if (json) {
        sq_buf_printf(b, "{\"format\": \"gguf\", \"version\": %u, \"alignment\": %u, ", g.version,
                      g.alignment);
        put_config(b, &c, ok, &ce, 1);
        sq_buf_puts(b, ", \"metadata\": {");
        for (int64_t i = 0; i < g.n_kv; i++) {
            sq_buf_puts(b, i ? ", " : "");
            sq_gguf_json_escape(b, g.kv[i].key.ptr, (size_t)g.kv[i].key.len);
            sq_buf_puts(b, ": ");
            sq_gguf_kv_to_json(&g.kv[i], b);
        }
        sq_buf_puts(b, "}, \"tensors\": [");
    } else {
        sq_buf_printf(b, "%s: GGUF v%u, %lld metadata keys, %lld tensors, alignment %u\n", path, g.version,
                      (long long)g.n_kv, (long long)g.n_tensors, g.alignment);
        put_config(b, &c, ok, &ce, 0);
        for (int64_t i = 0; i < g.n_kv; i++) {
            const sq_gguf_kv *kv = &g.kv[i];
            sq_buf_printf(b, "  %.*s = ", (int)kv->key.len, kv->key.ptr);
            if (kv->type == SQ_GGUF_ARRAY)
                sq_buf_printf(b, "[%llu elements of type %d]\n", (unsigned long long)kv->n, kv->elem_type);
            else {
                sq_gguf_kv_to_json(kv, b);
                sq_buf_puts(b, "\n");
            }
        }
    }
    for (int64_t i = 0; i < g.n_tensors; i++) {
        const sq_gguf_tensor *t = &g.tensors[i];
        const char *tn = sq_ggml_type_name(t->ggml_type);
        if (json) {
            sq_buf_puts(b, i ? ", {\"name\": " : "{\"name\": ");
            sq_gguf_json_escape(b, t->name.ptr, (size_t)t->name.len);
            sq_buf_printf(b, ", \"type\": \"%s\", \"ne\": [", tn);
            for (int d = 0; d < t->n_dims; d++)
                sq_buf_printf(b, "%s%lld", d ? ", " : "", (long long)t->ne[d]);
            sq_buf_printf(b, "], \"offset\": %zu, \"nbytes\": %zu, \"fnv1a64\": \"%016llx\"}",
                          (size_t)(t->data - g.map.data), t->nbytes,
                          (unsigned long long)fnv1a64(t->data, t->nbytes));
        } else {
            sq_buf_printf(b, "  %-40.*s %-5s [", (int)t->name.len, t->name.ptr, tn);
            for (int d = 0; d < t->n_dims; d++)
                sq_buf_printf(b, "%s%lld", d ? ", " : "", (long long)t->ne[d]);
            sq_buf_printf(b, "] %zu bytes\n", t->nbytes);
        }
    }
    if (json) sq_buf_puts(b, "]}\n");
    sq_gguf_close(&g);
    return 0;
}

static int inspect_st(const char *path, int json, sq_buf *b, sq_err *e) {
    sq_safetensors s;
    int rc = sq_st_open(&s, path, e);
    if (rc) return rc;
    /* The config sits beside the weights in an HF folder. */
    char *dir = sq_dir_exists(path) ? sq_strdup(path) : NULL;
    if (!dir) {
        const char *slash = strrchr(path, '/');
        dir = slash ? sq_strndup(path, (size_t)(slash - path)) : sq_strdup(".");
    }
    sq_model_config c;
    sq_err ce;
    int ok = dir && sq_model_config_load(&c, dir, &ce) == 0;
    if (!dir) snprintf(ce.msg, sizeof ce.msg, "out of memory");
    free(dir);
    if (json) {
        sq_buf_printf(b, "{\"format\": \"safetensors\", \"files\": %d, ", s.n_maps);
        put_config(b, &c, ok, &ce, 1);
        sq_buf_puts(b, ", \"tensors\": [");
    } else {
        sq_buf_printf(b, "%s: safetensors, %d file(s), %d tensors\n", path, s.n_maps, s.n_tensors);
        put_config(b, &c, ok, &ce, 0);
    }
    for (int i = 0; i < s.n_tensors; i++) {
        const sq_view *v = &s.tensors[i].view;
        size_t nb = sq_view_bytes(v);
        if (json) {
            sq_buf_puts(b, i ? ", {\"name\": " : "{\"name\": ");
            sq_gguf_json_escape(b, s.tensors[i].name, strlen(s.tensors[i].name));
            sq_buf_printf(b, ", \"dtype\": \"%s\", \"shape\": [", sq_dtype_name(v->dtype));
            for (int d = 0; d < v->ndim; d++)
                sq_buf_printf(b, "%s%lld", d ? ", " : "", (long long)v->shape[d]);
            sq_buf_printf(b, "], \"nbytes\": %zu, \"fnv1a64\": \"%016llx\"}", nb,
                          (unsigned long long)fnv1a64(v->data, nb));
        } else {
            sq_buf_printf(b, "  %-50s %-4s [", s.tensors[i].name, sq_dtype_name(v->dtype));
            for (int d = 0; d < v->ndim; d++)
                sq_buf_printf(b, "%s%lld", d ? ", " : "", (long long)v->shape[d]);
            sq_buf_printf(b, "] %zu bytes\n", nb);
        }
    }
    if (json) sq_buf_puts(b, "]}\n");
    sq_st_close(&s);
    return 0;
}

static int cmd_inspect(int argc, char **argv) {
    const char *model = NULL;
    int json = 0, npos = 0;
    const char *pos[1];
    sq_opt opts[] = {
        {"model", SQ_OPT_STR, &model, "PATH",
         "a .gguf, .safetensors, index.json or config.json file, or an HF folder"},
        {"json", SQ_OPT_FLAG, &json, NULL,
         "one JSON object: config, full metadata, tensors with byte hashes"},
    };
    int rc = sq_cli_parse(argc, argv, "--model PATH [--json]", opts, (int)SQ_ARRAY_LEN(opts), pos, 1, &npos);
    if (rc >= 0) return rc;
    if (!model && npos) model = pos[0];
    if (!model) return sq_cli_usage_error("inspect", "--model PATH is required");
    sq_buf b = {0};
    sq_err e;
    size_t l = strlen(model);
    if (l >= 5 && !strcmp(model + l - 5, ".json") && !strstr(model, "index.json")) {
        /* A config.json alone: parse it, show what we understood (as our writer writes it). */
        sq_model_config c;
        rc = sq_model_config_load(&c, model, &e);
        if (!rc && json) sq_buf_puts(&b, "{\"format\": \"config\", ");
        if (!rc) put_config(&b, &c, 1, &e, json);
        if (!rc && json) sq_buf_puts(&b, "}\n");
    } else
        rc = is_gguf(model) ? inspect_gguf(model, json, &b, &e) : inspect_st(model, json, &b, &e);
    if (rc) {
        sq_buf_free(&b);
        return sq_cli_fail("inspect", "%s", e.msg);
    }
    fwrite(b.data, 1, b.len, stdout);
    sq_buf_free(&b);
    return SQ_EXIT_OK;
}

SQ_COMMAND(inspect, "inspect", "show a model file's config, metadata and tensors", cmd_inspect);
