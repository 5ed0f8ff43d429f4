/* io/gguf: hand-built files (v2, every value type, nested arrays, alignment), and truncated
 * or corrupted real files, which must fail with a message naming the offset, never crash. */
#include <stdlib.h>

#include "scalequest/gguf.h"
#include "test.h"

static void put(sq_buf *b, const void *p, size_t n) { sq_buf_append(b, p, n); }
static void put_u32(sq_buf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(sq_buf *b, uint64_t v) { put(b, &v, 8); }
static void put_str(sq_buf *b, const char *s) {
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void put_key(sq_buf *b, const char *k, uint32_t type) {
    put_str(b, k);
    put_u32(b, type);
}

/* A v2 file with one key of every type, a nested array, alignment 64 and two tensors. */
static void build(sq_buf *b, uint32_t version, uint32_t alignment) {
    put(b, "GGUF", 4);
    put_u32(b, version);
    put_u64(b, 2);  /* tensors */
    put_u64(b, 17); /* kv */
    uint8_t u8 = 200;
    int8_t i8 = -100;
    uint16_t u16 = 60000;
    int16_t i16 = -30000;
    int32_t i32 = -2000000000;
    float f32 = 1.5f;
    uint64_t u64 = 1ull << 40;
    int64_t i64 = -(1ll << 40);
    double f64 = 0.1;
    put_key(b, "t.u8", SQ_GGUF_U8), put(b, &u8, 1);
    put_key(b, "t.i8", SQ_GGUF_I8), put(b, &i8, 1);
    put_key(b, "t.u16", SQ_GGUF_U16), put(b, &u16, 2);
    put_key(b, "t.i16", SQ_GGUF_I16), put(b, &i16, 2);
    put_key(b, "t.u32", SQ_GGUF_U32), put_u32(b, 4000000000u);
    put_key(b, "t.i32", SQ_GGUF_I32), put(b, &i32, 4);
    put_key(b, "t.f32", SQ_GGUF_F32), put(b, &f32, 4);
    put_key(b, "t.bool", SQ_GGUF_BOOL), put(b, "\1", 1);
    put_key(b, "t.str", SQ_GGUF_STRING), put_str(b, "héllo");
    put_key(b, "t.u64", SQ_GGUF_U64), put_u64(b, u64);
    put_key(b, "t.i64", SQ_GGUF_I64), put(b, &i64, 8);
    put_key(b, "t.f64", SQ_GGUF_F64), put(b, &f64, 8);
    put_key(b, "t.strs", SQ_GGUF_ARRAY), put_u32(b, SQ_GGUF_STRING), put_u64(b, 3);
    put_str(b, "a"), put_str(b, ""), put_str(b, "ccc");
    put_key(b, "t.ints", SQ_GGUF_ARRAY), put_u32(b, SQ_GGUF_I16), put_u64(b, 3);
    int16_t iv[3] = {-1, 2, -3};
    put(b, iv, 6);
    /* [[1, 2], ["x"]]: an array of arrays of different element types. */
    put_key(b, "t.nested", SQ_GGUF_ARRAY), put_u32(b, SQ_GGUF_ARRAY), put_u64(b, 2);
    put_u32(b, SQ_GGUF_U32), put_u64(b, 2), put_u32(b, 1), put_u32(b, 2);
    put_u32(b, SQ_GGUF_STRING), put_u64(b, 1), put_str(b, "x");
    put_key(b, "t.empty", SQ_GGUF_ARRAY), put_u32(b, SQ_GGUF_STRING), put_u64(b, 0);
    put_key(b, "general.alignment", SQ_GGUF_U32), put_u32(b, alignment);
    /* tensors: a [3, 2] F32 at 0 and a 64-value Q8_0 row after it (aligned). */
    put_str(b, "w"), put_u32(b, 2), put_u64(b, 3), put_u64(b, 2), put_u32(b, 0), put_u64(b, 0);
    put_str(b, "q"), put_u32(b, 1), put_u64(b, 64), put_u32(b, 8), put_u64(b, alignment);
    while (b->len % alignment)
        put(b, "", 1);
    float w[6] = {1, 2, 3, 4, 5, 6};
    put(b, w, sizeof w);
    while (b->len % alignment)
        put(b, "", 1);
    for (int i = 0; i < 68; i++)
        put(b, "\7", 1);
}

SQ_TEST(gguf_every_value_type_and_nesting) {
    for (uint32_t version = 2; version <= 3; version++) {
        sq_buf b = {0};
        build(&b, version, 64);
        sq_gguf g;
        sq_err e;
        REQUIRE(sq_gguf_parse(&g, (const uint8_t *)b.data, b.len, "built.gguf", &e) == 0);
        CHECK_EQ_INT(g.version, version);
        CHECK_EQ_INT(g.alignment, 64);
        int64_t v;
        uint32_t u;
        CHECK(sq_gguf_get_i64(&g, "t.u8", &v, &e) == 0 && v == 200);
        CHECK(sq_gguf_get_i64(&g, "t.i8", &v, &e) == 0 && v == -100);
        CHECK(sq_gguf_get_i64(&g, "t.u16", &v, &e) == 0 && v == 60000);
        CHECK(sq_gguf_get_i64(&g, "t.i16", &v, &e) == 0 && v == -30000);
        CHECK(sq_gguf_get_u32(&g, "t.u32", &u, &e) == 0 && u == 4000000000u);
        CHECK(sq_gguf_get_i64(&g, "t.i32", &v, &e) == 0 && v == -2000000000);
        CHECK_EQ_INT(sq_gguf_get_u32(&g, "t.i32", &u, &e), SQ_ERANGE); /* negative does not fit */
        CHECK(sq_gguf_get_i64(&g, "t.u64", &v, &e) == 0 && v == (1ll << 40));
        CHECK_EQ_INT(sq_gguf_get_u32(&g, "t.u64", &u, &e), SQ_ERANGE);
        CHECK(sq_gguf_get_i64(&g, "t.i64", &v, &e) == 0 && v == -(1ll << 40));
        float f;
        CHECK(sq_gguf_get_f32(&g, "t.f32", &f, &e) == 0 && f == 1.5f);
        CHECK(sq_gguf_get_f32(&g, "t.f64", &f, &e) == 0 && f == 0.1f);
        int bo;
        CHECK(sq_gguf_get_bool(&g, "t.bool", &bo, &e) == 0 && bo == 1);
        sq_gguf_str s;
        CHECK(sq_gguf_get_str(&g, "t.str", &s, &e) == 0 && sq_gguf_str_eq(s, "héllo"));
        const sq_gguf_kv *a;
        REQUIRE(sq_gguf_get_arr(&g, "t.strs", SQ_GGUF_STRING, &a, &e) == 0);
        CHECK(sq_gguf_str_eq(sq_gguf_arr_str(a, 0), "a") && sq_gguf_str_eq(sq_gguf_arr_str(a, 1), ""));
        CHECK(sq_gguf_str_eq(sq_gguf_arr_str(a, 2), "ccc"));
        REQUIRE(sq_gguf_get_arr(&g, "t.ints", SQ_GGUF_I16, &a, &e) == 0);
        CHECK(sq_gguf_arr_int(a, 0) == -1 && sq_gguf_arr_int(a, 2) == -3 && sq_gguf_arr_num(a, 1) == 2.0);
        CHECK_EQ_INT(sq_gguf_get_arr(&g, "t.ints", SQ_GGUF_F32, &a, &e), SQ_EPARSE);
        REQUIRE(sq_gguf_get_arr(&g, "t.empty", SQ_GGUF_STRING, &a, &e) == 0);
        CHECK(a->n == 0 && sq_gguf_arr_str(a, 0).ptr == NULL);
        REQUIRE(sq_gguf_get_arr(&g, "t.nested", SQ_GGUF_ARRAY, &a, &e) == 0);
        sq_buf js = {0};
        REQUIRE(sq_gguf_kv_to_json(a, &js) == 0);
        CHECK_EQ_STR(js.data, "[[1, 2], [\"x\"]]");
        sq_buf_free(&js);
        CHECK_EQ_INT(a->n, 2);
        CHECK_EQ_INT(a->elem_type, SQ_GGUF_ARRAY);
        const sq_gguf_tensor *w = sq_gguf_find_tensor(&g, "w"), *q = sq_gguf_find_tensor(&g, "q");
        REQUIRE(w && q);
        CHECK_EQ_INT(w->nbytes, 24);
        CHECK_EQ_INT(q->nbytes, 68);
        CHECK_EQ_INT((size_t)(w->data - g.map.data) % 64, 0);
        float w5;
        memcpy(&w5, w->data + 20, 4);
        CHECK(w5 == 6.0f);
        sq_view vq;
        REQUIRE(sq_gguf_tensor_view(q, &vq, &e) == 0);
        CHECK_EQ_INT(vq.dtype, SQ_Q8_0);
        CHECK_EQ_INT(sq_view_bytes(&vq), 68);
        sq_gguf_close(&g);
        sq_buf_free(&b);
    }
}

SQ_TEST(gguf_rejects_bad_structure) {
    sq_buf b = {0};
    sq_gguf g;
    sq_err e;
    build(&b, 1, 64);
    CHECK_EQ_INT(sq_gguf_parse(&g, (const uint8_t *)b.data, b.len, "v1.gguf", &e), SQ_EUNSUP);
    CHECK(strstr(e.msg, "version 1") != NULL);
    sq_buf_reset(&b);
    build(&b, 3, 48); /* not a power of two */
    CHECK_EQ_INT(sq_gguf_parse(&g, (const uint8_t *)b.data, b.len, "align.gguf", &e), SQ_EPARSE);
    CHECK(strstr(e.msg, "alignment") != NULL);
    sq_buf_reset(&b);
    build(&b, 3, 32);
    b.data[0] = 'X';
    CHECK_EQ_INT(sq_gguf_parse(&g, (const uint8_t *)b.data, b.len, "magic.gguf", &e), SQ_EPARSE);
    CHECK(strstr(e.msg, "magic.gguf: offset 0") != NULL);
    /* A duplicate key. */
    sq_buf_reset(&b);
    put(&b, "GGUF", 4), put_u32(&b, 3), put_u64(&b, 0), put_u64(&b, 2);
    put_key(&b, "k", SQ_GGUF_U32), put_u32(&b, 1);
    put_key(&b, "k", SQ_GGUF_U32), put_u32(&b, 2);
    CHECK_EQ_INT(sq_gguf_parse(&g, (const uint8_t *)b.data, b.len, "dup.gguf", &e), SQ_EPARSE);
    CHECK(strstr(e.msg, "dup.gguf: offset 41: duplicate") != NULL); /* the second "k" */
    /* A count that cannot fit asks for no memory. */
    sq_buf_reset(&b);
    put(&b, "GGUF", 4), put_u32(&b, 3), put_u64(&b, 0), put_u64(&b, UINT64_MAX / 2);
    CHECK_EQ_INT(sq_gguf_parse(&g, (const uint8_t *)b.data, b.len, "count.gguf", &e), SQ_EPARSE);
    /* A string array whose length overruns the file. */
    sq_buf_reset(&b);
    put(&b, "GGUF", 4), put_u32(&b, 3), put_u64(&b, 0), put_u64(&b, 1);
    put_key(&b, "a", SQ_GGUF_ARRAY), put_u32(&b, SQ_GGUF_STRING), put_u64(&b, 1000000);
    put_str(&b, "only one");
    CHECK_EQ_INT(sq_gguf_parse(&g, (const uint8_t *)b.data, b.len, "arr.gguf", &e), SQ_EPARSE);
    CHECK(strstr(e.msg, "arr.gguf: offset ") != NULL);
    /* Arrays nested too deep. */
    sq_buf_reset(&b);
    put(&b, "GGUF", 4), put_u32(&b, 3), put_u64(&b, 0), put_u64(&b, 1);
    put_key(&b, "deep", SQ_GGUF_ARRAY);
    for (int i = 0; i < 40; i++)
        put_u32(&b, SQ_GGUF_ARRAY), put_u64(&b, 1);
    put_u32(&b, SQ_GGUF_U8), put_u64(&b, 0);
    CHECK_EQ_INT(sq_gguf_parse(&g, (const uint8_t *)b.data, b.len, "deep.gguf", &e), SQ_EPARSE);
    CHECK(strstr(e.msg, "nested") != NULL);
    /* Overlapping tensors and a misaligned offset. */
    for (int variant = 0; variant < 2; variant++) {
        sq_buf_reset(&b);
        put(&b, "GGUF", 4), put_u32(&b, 3), put_u64(&b, 2), put_u64(&b, 0);
        put_str(&b, "a"), put_u32(&b, 1), put_u64(&b, 16), put_u32(&b, 0), put_u64(&b, 0);
        put_str(&b, "b"), put_u32(&b, 1), put_u64(&b, 16), put_u32(&b, 0), put_u64(&b, variant ? 40 : 32);
        while (b.len % 32)
            put(&b, "", 1);
        for (int i = 0; i < 128; i++)
            put(&b, "", 1);
        CHECK_EQ_INT(sq_gguf_parse(&g, (const uint8_t *)b.data, b.len, "t.gguf", &e), SQ_EPARSE);
        CHECK(strstr(e.msg, variant ? "alignment" : "overlaps") != NULL);
    }
    /* An unknown ggml type is "unsupported", naming the tensor. */
    sq_buf_reset(&b);
    put(&b, "GGUF", 4), put_u32(&b, 3), put_u64(&b, 1), put_u64(&b, 0);
    put_str(&b, "odd"), put_u32(&b, 1), put_u64(&b, 16), put_u32(&b, 99), put_u64(&b, 0);
    CHECK_EQ_INT(sq_gguf_parse(&g, (const uint8_t *)b.data, b.len, "t.gguf", &e), SQ_EUNSUP);
    CHECK(strstr(e.msg, "'odd'") != NULL);
    sq_buf_free(&b);
}

/* Parse a copy of exactly n bytes so that any read past the end trips AddressSanitizer. */
static int parse_copy(const uint8_t *src, size_t n, sq_err *e) {
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, src, n);
    sq_gguf g;
    int rc = sq_gguf_parse(&g, copy, n, "cut.gguf", e);
    if (!rc) sq_gguf_close(&g);
    free(copy);
    return rc;
}

SQ_TEST(gguf_truncated_anywhere_names_the_offset) {
    const char *path = sq_test_asset("models/stories260K.gguf");
    if (!path) SKIP("../shared/assets absent");
    sq_mmap m;
    sq_err e;
    REQUIRE(sq_mmap_open(&m, path, &e) == 0);
    sq_gguf g;
    REQUIRE(sq_gguf_parse(&g, m.data, m.len, path, &e) == 0);
    size_t header = g.data_offset;
    sq_gguf_close(&g);
    /* Every cut inside the metadata and tensor table, then a stride through the data. */
    for (size_t n = 0; n < m.len; n += n < header ? 1 : 4099) {
        int rc = parse_copy(m.data, n, &e);
        CHECKF(rc != 0, "a file cut at %zu bytes parsed", n);
        CHECKF(rc == 0 || strstr(e.msg, "offset ") != NULL, "cut at %zu: message without offset: %s", n,
               e.msg);
        if (sq_test_failed_now()) break;
    }
    sq_mmap_close(&m);
}

SQ_TEST(gguf_corrupted_bytes_never_crash) {
    const char *path = sq_test_asset("models/stories260K.gguf");
    if (!path) SKIP("../shared/assets absent");
    sq_mmap m;
    sq_err e;
    REQUIRE(sq_mmap_open(&m, path, &e) == 0);
    sq_gguf g;
    REQUIRE(sq_gguf_parse(&g, m.data, m.len, path, &e) == 0);
    size_t header = g.data_offset;
    sq_gguf_close(&g);
    uint8_t *copy = malloc(m.len);
    memcpy(copy, m.data, m.len);
    sq_rng r;
    sq_rng_seed(&r, 11);
    int failed = 0;
    static const uint8_t evil[] = {0x00, 0xff, 0x7f, 0x80, 0x01, 0x09, 0x0c};
    for (size_t off = 0; off < header; off++) {
        uint8_t keep = copy[off];
        copy[off] = sq_rng_below(&r, 2) ? evil[sq_rng_below(&r, sizeof evil)] : (uint8_t)sq_rng_u64(&r);
        int rc = sq_gguf_parse(&g, copy, m.len, "bent.gguf", &e);
        if (rc) {
            failed++;
            CHECKF(!strncmp(e.msg, "bent.gguf", 9), "message does not name the file: %s", e.msg);
            CHECKF(strstr(e.msg, "offset ") != NULL, "message names no offset: %s", e.msg);
        } else {
            /* Whatever parsed must still be inside the buffer. */
            for (int64_t i = 0; i < g.n_tensors; i++)
                CHECK(g.tensors[i].data >= copy && g.tensors[i].data + g.tensors[i].nbytes <= copy + m.len);
            sq_gguf_close(&g);
        }
        copy[off] = keep;
        if (sq_test_failed_now()) break;
    }
    CHECK(failed > 100); /* many of the changes must be caught */
    free(copy);
    sq_mmap_close(&m);
}
