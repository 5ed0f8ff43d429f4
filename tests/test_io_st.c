/* io/safetensors: writer -> reader round trip, shards and folders, and bad files. */
#include <stdlib.h>

#include "scalequest/safetensors.h"
#include "test.h"

static char *tmp_path(const char *name) { return sq_path_join(sq_test_tmpdir(), name); }

static int write_bytes(const char *path, const void *p, size_t n) {
    sq_err e;
    return sq_file_write_atomic(path, p, n, &e);
}

SQ_TEST(st_write_read_round_trip) {
    float a[6] = {1, -2, 3.5f, 0, INFINITY, -0.0f};
    uint16_t h[4] = {0x3c00, 0x0001, 0x7bff, 0x8000};
    uint16_t bf[3] = {0x3f80, 0xc000, 0x7f80};
    int64_t ids[2] = {-5, 1ll << 40};
    uint8_t u[3] = {0, 7, 255};
    sq_st_entry in[] = {
        {"z.weight", {a, SQ_F32, 2, {2, 3, 1, 1}}},   {"a.half", {h, SQ_F16, 1, {4, 1, 1, 1}}},
        {"m.bf16", {bf, SQ_BF16, 3, {1, 3, 1, 1}}},   {"ids", {ids, SQ_I64, 1, {2, 1, 1, 1}}},
        {"bytes \"q\"", {u, SQ_U8, 1, {3, 1, 1, 1}}}, {"scalar", {a, SQ_F32, 0, {1, 1, 1, 1}}},
        {"empty", {NULL, SQ_F32, 2, {0, 4, 1, 1}}},
    };
    int n = (int)SQ_ARRAY_LEN(in);
    char *path = tmp_path("rt.safetensors");
    sq_err e;
    REQUIRE(sq_st_write(path, in, n, &e) == 0);
    /* The data buffer starts 8-byte aligned and the header carries {"format":"pt"}. */
    char *raw;
    size_t len;
    REQUIRE(sq_file_read_all(path, &raw, &len, &e) == 0);
    uint64_t hl;
    memcpy(&hl, raw, 8);
    CHECK_EQ_INT(hl % 8, 0);
    CHECK(strstr(raw + 8, "\"__metadata__\":{\"format\":\"pt\"}") != NULL);
    /* Stored as HF does: by dtype width, then name. */
    CHECK(strstr(raw + 8, "\"ids\"") < strstr(raw + 8, "\"empty\""));
    CHECK(strstr(raw + 8, "\"empty\"") < strstr(raw + 8, "\"z.weight\""));
    CHECK(strstr(raw + 8, "\"z.weight\"") < strstr(raw + 8, "\"a.half\""));
    free(raw);
    sq_safetensors s;
    REQUIRE(sq_st_open(&s, path, &e) == 0);
    CHECK_EQ_INT(s.n_tensors, n);
    for (int i = 0; i < n; i++) {
        const sq_view *v = sq_st_find(&s, in[i].name);
        CHECKF(v != NULL, "'%s' missing", in[i].name);
        if (!v) continue;
        CHECK_EQ_INT(v->dtype, in[i].view.dtype);
        CHECK_EQ_INT(v->ndim, in[i].view.ndim);
        for (int d = 0; d < v->ndim; d++)
            CHECK_EQ_INT(v->shape[d], in[i].view.shape[d]);
        size_t nb = sq_view_bytes(v);
        CHECK_EQ_INT(nb, sq_view_bytes(&in[i].view));
        CHECKF(!nb || memcmp(v->data, in[i].view.data, nb) == 0, "'%s' bytes differ", in[i].name);
        CHECKF(((uintptr_t)v->data % sq_dtype_size(v->dtype)) == 0, "'%s' misaligned", in[i].name);
    }
    sq_st_close(&s);
    /* Duplicates and unstorable dtypes are refused, and leave the old file intact. */
    sq_st_entry dup[] = {{"x", {a, SQ_F32, 1, {1, 1, 1, 1}}}, {"x", {a, SQ_F32, 1, {1, 1, 1, 1}}}};
    CHECK_EQ_INT(sq_st_write(path, dup, 2, &e), SQ_EINVAL);
    sq_st_entry q8[] = {{"q", {u, SQ_Q8_0, 1, {32, 1, 1, 1}}}};
    CHECK_EQ_INT(sq_st_write(path, q8, 1, &e), SQ_EINVAL);
    REQUIRE(sq_st_open(&s, path, &e) == 0);
    CHECK_EQ_INT(s.n_tensors, n);
    sq_st_close(&s);
    free(path);
}

SQ_TEST(st_shards_by_index_and_by_folder) {
    float a[4] = {1, 2, 3, 4}, b[2] = {5, 6};
    char dir[700];
    snprintf(dir, sizeof dir, "%s", sq_test_tmpdir());
    char *p1 = sq_path_join(dir, "model-00001-of-00002.safetensors");
    char *p2 = sq_path_join(dir, "model-00002-of-00002.safetensors");
    sq_err e;
    sq_st_entry s1[] = {{"a", {a, SQ_F32, 1, {4, 1, 1, 1}}}};
    sq_st_entry s2[] = {{"b", {b, SQ_F32, 1, {2, 1, 1, 1}}}};
    REQUIRE(sq_st_write(p1, s1, 1, &e) == 0);
    REQUIRE(sq_st_write(p2, s2, 1, &e) == 0);
    sq_safetensors s;
    /* A folder without an index: every .safetensors file. */
    REQUIRE(sq_st_open(&s, dir, &e) == 0);
    CHECK_EQ_INT(s.n_tensors, 2);
    CHECK_EQ_INT(s.n_maps, 2);
    sq_st_close(&s);
    char *idx = sq_path_join(dir, "model.safetensors.index.json");
    const char *index =
        "{\"metadata\":{\"total_size\":24},\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\","
        "\"b\":\"model-00002-of-00002.safetensors\"}}";
    REQUIRE(write_bytes(idx, index, strlen(index)) == 0);
    REQUIRE(sq_st_open(&s, dir, &e) == 0);
    const sq_view *vb = sq_st_find(&s, "b");
    REQUIRE(vb);
    CHECK(((const float *)vb->data)[1] == 6.0f);
    sq_st_close(&s);
    REQUIRE(sq_st_open(&s, idx, &e) == 0);
    CHECK_EQ_INT(s.n_tensors, 2);
    sq_st_close(&s);
    /* An index promising a tensor that is not in its shard is an error naming it. */
    const char *liar = "{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\",\"c\":\"model-00002-of-"
                       "00002.safetensors\"}}";
    REQUIRE(write_bytes(idx, liar, strlen(liar)) == 0);
    CHECK_EQ_INT(sq_st_open(&s, dir, &e), SQ_EPARSE);
    CHECK(strstr(e.msg, "'c'") != NULL);
    /* A shard path escaping the folder is refused. */
    const char *escape = "{\"weight_map\":{\"a\":\"../x.safetensors\"}}";
    REQUIRE(write_bytes(idx, escape, strlen(escape)) == 0);
    CHECK_EQ_INT(sq_st_open(&s, dir, &e), SQ_EPARSE);
    /* The same tensor in two shards. */
    const char *twice = "{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\",\"b\":\"model-00002-of-"
                        "00002.safetensors\"}}";
    REQUIRE(sq_st_write(p2, s1, 1, &e) == 0);
    REQUIRE(write_bytes(idx, twice, strlen(twice)) == 0);
    CHECK_EQ_INT(sq_st_open(&s, dir, &e), SQ_EPARSE);
    CHECK(strstr(e.msg, "twice") != NULL);
    free(p1);
    free(p2);
    free(idx);
}

/* A file from a header string and n data bytes. */
static int parse_header(const char *json, size_t data, sq_err *e) {
    size_t hl = strlen(json);
    uint8_t *buf = calloc(1, 8 + hl + data + 1);
    uint64_t h64 = hl;
    memcpy(buf, &h64, 8);
    memcpy(buf + 8, json, hl);
    sq_safetensors s;
    int rc = sq_st_parse(&s, buf, 8 + hl + data, "h.safetensors", e);
    if (!rc) sq_st_close(&s);
    free(buf);
    return rc;
}

SQ_TEST(st_rejects_bad_headers) {
    sq_err e;
    CHECK_EQ_INT(parse_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, &e), 0);
    CHECK_EQ_INT(parse_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}   ", 8, &e),
                 0);
    /* Size mismatch, overlap, hole, trailing bytes, out of range. */
    CHECK_EQ_INT(parse_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, &e),
                 SQ_EPARSE);
    CHECK(strstr(e.msg, "needs 12") != NULL);
    CHECK_EQ_INT(parse_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                              "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                              12, &e),
                 SQ_EPARSE);
    CHECK(strstr(e.msg, "overlaps") != NULL);
    CHECK_EQ_INT(parse_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                              "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}",
                              20, &e),
                 SQ_EPARSE);
    CHECK(strstr(e.msg, "unused bytes") != NULL);
    CHECK_EQ_INT(parse_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 9, &e),
                 SQ_EPARSE);
    CHECK(strstr(e.msg, "after the last tensor") != NULL);
    CHECK_EQ_INT(parse_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, &e),
                 SQ_EPARSE);
    CHECK(strstr(e.msg, "offset ") != NULL);
    /* Types, shapes, JSON. */
    CHECK_EQ_INT(parse_header("{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, &e),
                 SQ_EUNSUP);
    CHECK_EQ_INT(parse_header("{\"a\":{\"dtype\":\"F31\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, &e),
                 SQ_EPARSE);
    CHECK(strstr(e.msg, "h.safetensors: offset 9: tensor 'a'") != NULL);
    CHECK_EQ_INT(parse_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, &e),
                 SQ_EPARSE);
    CHECK_EQ_INT(parse_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, &e),
                 SQ_EPARSE);
    CHECK_EQ_INT(
        parse_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, &e),
        SQ_EUNSUP);
    CHECK_EQ_INT(parse_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, &e), SQ_EPARSE);
    CHECK_EQ_INT(parse_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, &e),
                 SQ_EPARSE);
    CHECK_EQ_INT(parse_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}x", 4, &e),
                 SQ_EPARSE);
    CHECK_EQ_INT(parse_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4, &e),
                 SQ_EPARSE);
    CHECK(strstr(e.msg, "h.safetensors: offset ") != NULL);
    CHECK_EQ_INT(parse_header("[1]", 0, &e), SQ_EPARSE);
    CHECK_EQ_INT(parse_header("{\"__metadata__\":{\"format\":1}}", 0, &e), SQ_EPARSE);
    CHECK_EQ_INT(parse_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                              "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                              8, &e),
                 SQ_EPARSE);
    CHECK(strstr(e.msg, "twice") != NULL);
    /* An empty file set and a header length beyond the file. */
    sq_safetensors s;
    uint8_t big[16] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, '{', '}'};
    CHECK_EQ_INT(sq_st_parse(&s, big, sizeof big, "big", &e), SQ_EPARSE);
    CHECK(strstr(e.msg, "big: offset 0") != NULL || strstr(e.msg, "big: offset 8") != NULL);
    CHECK_EQ_INT(sq_st_parse(&s, big, 3, "tiny", &e), SQ_EPARSE);
    CHECK_EQ_INT(parse_header("{}", 0, &e), 0);
}

SQ_TEST(st_truncated_and_corrupted_real_file) {
    const char *path = sq_test_asset("models/stories260K-hf/model.safetensors");
    if (!path) SKIP("../shared/assets absent");
    sq_mmap m;
    sq_err e;
    REQUIRE(sq_mmap_open(&m, path, &e) == 0);
    uint64_t hl;
    memcpy(&hl, m.data, 8);
    size_t header = 8 + (size_t)hl;
    for (size_t n = 0; n < m.len; n += n < header ? 1 : 4093) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, m.data, n);
        sq_safetensors s;
        int rc = sq_st_parse(&s, copy, n, "cut.safetensors", &e);
        if (!rc) sq_st_close(&s);
        free(copy);
        CHECKF(rc != 0, "a file cut at %zu bytes parsed", n);
        CHECKF(rc == 0 || strstr(e.msg, "offset ") != NULL, "cut at %zu: message without offset: %s", n,
               e.msg);
        if (sq_test_failed_now()) break;
    }
    uint8_t *copy = malloc(m.len);
    memcpy(copy, m.data, m.len);
    sq_rng r;
    sq_rng_seed(&r, 3);
    int failed = 0;
    for (size_t off = 0; off < header; off++) {
        uint8_t keep = copy[off];
        static const char evil[] = "{}[],:\"0-9e\\ \x80\xff";
        copy[off] = (uint8_t)evil[sq_rng_below(&r, sizeof evil - 1)];
        sq_safetensors s;
        int rc = sq_st_parse(&s, copy, m.len, "bent.safetensors", &e);
        if (rc) {
            failed++;
            CHECKF(!strncmp(e.msg, "bent.safetensors", 16), "message does not name the file: %s", e.msg);
            CHECKF(strstr(e.msg, "offset ") || strstr(e.msg, "twice"), "message names no offset: %s", e.msg);
        } else {
            for (int i = 0; i < s.n_tensors; i++) {
                const uint8_t *d = s.tensors[i].view.data;
                CHECK(d >= copy && d + sq_view_bytes(&s.tensors[i].view) <= copy + m.len);
            }
            sq_st_close(&s);
        }
        copy[off] = keep;
        if (sq_test_failed_now()) break;
    }
    CHECK(failed > 100);
    free(copy);
    sq_mmap_close(&m);
}
