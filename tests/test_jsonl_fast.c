/* The two-stage JSONL validator (bit masks per 64-byte block, then the grammar over the
 * structural positions) against the reference byte-by-byte validator: the same verdict on
 * tricky inputs placed at every offset of a block, and the reference's reason and offset
 * for every refused line. Where the two-stage validator is not compiled in (no AVX2) its
 * verdict is -1 and only the reference's verdicts are checked. */
#include <stdlib.h>

#include "../src/io/jsonl_internal.h"
#include "scalequest/jsonl.h"
#include "test.h"

/* The line as printable ASCII (\xHH for the rest), cut at 200 bytes, for failure messages:
 * raw invalid UTF-8 would make the test log binary. */
static const char *shown(const char *s, size_t n) {
    static char out[1024];
    size_t k = 0;
    for (size_t i = 0; i < n && i < 200; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f) out[k++] = (char)c;
        else k += (size_t)snprintf(out + k, sizeof out - k, "\\x%02x", c);
    }
    out[k] = 0;
    return out;
}

/* Checks one line: the expected verdict from both validators, and the same message. */
static void check_line(const char *file, int lineno, const char *s, size_t n, int valid) {
    size_t off_ref = 0, off = 0;
    const char *why_ref = NULL, *why = NULL;
    sq_jsonl_use_blocks(0);
    int ref = sq_jsonl_check_ref(s, n, &off_ref, &why_ref) == 0;
    sq_jsonl_use_blocks(1);
    int fast = sq_jsonl_fast_verdict(s, n);
    int both = sq_jsonl_check(s, n, &off, &why) == 0;
    if (ref != valid || (fast != -1 && fast != valid) || both != valid ||
        (!valid && (off != off_ref || strcmp(why, why_ref))))
        sq_test_fail(file, lineno, "%s: want %s, reference %d, two-stage %d, check %d (%s at %zu vs %s at %zu)",
                     shown(s, n), valid ? "valid" : "invalid", ref, fast, both, why ? why : "-", off,
                     why_ref ? why_ref : "-", off_ref);
}

/* String contents, each valid or not, tried at every offset of two 64-byte blocks. */
static const struct {
    const char *text;
    int valid;
} contents[] = {
    {"plain", 1},
    {"\\\"quoted\\\"", 1},
    {"\\\\\\\"", 1},            /* \\ then \" */
    {"\\\\\\\\\\\\\\\\", 1},    /* four escaped backslashes */
    {"\\/\\b\\f\\n\\r\\t", 1},
    {"\\x", 0},
    {"\\\xc3\xa9", 0},          /* a backslash before non-ASCII */
    {"\\u00e9", 1},
    {"\\uD83D\\uDE00", 1},      /* a surrogate pair, upper case */
    {"\\ud83d\\ude00 and \\u20ac", 1},
    {"\\ud83d", 0},             /* high half alone */
    {"\\ude00", 0},             /* low half alone */
    {"\\ud83d\\u0041", 0},      /* high half, then no low half */
    {"\\ud83d\\ud83d", 0},
    {"\\u12", 0},
    {"\\u12g4", 0},
    {"caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80", 1},
    {"\xc0\xaf", 0},            /* overlong '/' */
    {"\xe0\x80\xaf", 0},        /* overlong, 3 bytes */
    {"\xf0\x80\x80\xaf", 0},    /* overlong, 4 bytes */
    {"\xe0\xa0\x80", 1},        /* the smallest 3-byte character */
    {"\xf0\x90\x80\x80", 1},    /* the smallest 4-byte character */
    {"\xed\x9f\xbf", 1},        /* U+D7FF, just below the surrogates */
    {"\xed\xa0\x80", 0},        /* an encoded surrogate */
    {"\xee\x80\x80", 1},        /* U+E000, just above them */
    {"\xf4\x8f\xbf\xbf", 1},    /* U+10FFFF */
    {"\xf4\x90\x80\x80", 0},    /* above U+10FFFF */
    {"\xf5\x80\x80\x80", 0},
    {"\x80", 0},                /* a lone continuation */
    {"\xe4\xb8x", 0},           /* cut short */
    {"\xc3\xa9\xa9", 0},        /* one continuation too many */
    {"\xff", 0},
    {"tab\there", 0},
    {"\x01", 0},
    {"del\x7f ok", 1},
};

SQ_TEST(two_stage_agrees_on_strings_at_every_block_offset) {
    char line[512];
    for (size_t i = 0; i < SQ_ARRAY_LEN(contents); i++)
        for (int pad = 0; pad < 140; pad++) {
            /* The padding moves the content across the first and second block boundary. */
            int n = snprintf(line, sizeof line, "{\"pad\":\"%.*s\",\"v\":\"%s\",\"k\":[1,\"%s\"]}", pad,
                             "....................................................................................."
                             "....................................................................",
                             contents[i].text, contents[i].text);
            check_line(__FILE__, __LINE__, line, (size_t)n, contents[i].valid);
        }
}

SQ_TEST(two_stage_agrees_on_backslash_runs) {
    /* A run of L backslashes before the closing quote: even L closes the string, odd L
     * escapes the quote and leaves the string open. Runs cross block boundaries and are
     * longer than a block. */
    sq_buf b = {0};
    for (int lead = 0; lead < 70; lead += 3)
        for (int run = 0; run < 140; run++) {
            sq_buf_reset(&b);
            sq_buf_puts(&b, "{\"a\":\"");
            for (int i = 0; i < lead; i++) sq_buf_puts(&b, "x");
            for (int i = 0; i < run; i++) sq_buf_puts(&b, "\\");
            sq_buf_puts(&b, "\"}");
            check_line(__FILE__, __LINE__, b.data, b.len, run % 2 == 0);
        }
    sq_buf_free(&b);
}

SQ_TEST(two_stage_agrees_on_structure) {
    static const struct {
        const char *text;
        int valid;
    } lines[] = {
        {"{}", 1}, {" {\"a\" : [ 1 , 2 ] }\r", 1}, {"{\"a\":-0.5e+10,\"b\":[true,false,null]}", 1},
        {"{\"a\":01}", 0}, {"{\"a\":1.}", 0}, {"{\"a\":-}", 0}, {"{\"a\":1e}", 0}, {"{\"a\":truex}", 0},
        {"{\"a\":nul}", 0}, {"{\"a\":[1,2,]}", 0}, {"{\"a\":1,}", 0}, {"{\"a\":1 2}", 0}, {"{\"a\" 1}", 0},
        {"{\"a\":1}}", 0}, {"{\"a\":1} x", 0}, {"{\"a\":1}\n{}", 0}, {"[1]", 0}, {"", 0}, {"  \t", 0},
        {"{\"a\":\"x\"1}", 0}, {"{\"a\":true\"b\"}", 0}, {"{\"a\":[}", 0}, {"{\"a\":{]}", 0}, {"{:1}", 0},
        {"{\"a\":\\\"b\"}", 0}, {"{\"a\":1\\}", 0}, {"{\"a\":\xc3\xa9}", 0}, {"\xef\xbb\xbf{}", 0},
        {"{\"a\":\x0c" "1}", 0}, {"{\"a\":1\x1a}", 0}, {"{\"a\":\"open", 0}, {"{\"a\":\"open\\", 0},
        {"{\"a\":[{\"b\":{}},[[]],\"\"]}", 1}, {"{\"\":\"\"}", 1},
    };
    char line[400];
    for (size_t i = 0; i < SQ_ARRAY_LEN(lines); i++) {
        check_line(__FILE__, __LINE__, lines[i].text, strlen(lines[i].text), lines[i].valid);
        /* The same after white space that pushes it to the end of a block and past it. */
        for (int pad = 50; pad < 70; pad++) {
            int n = snprintf(line, sizeof line, "%*s%s", pad, "", lines[i].text);
            check_line(__FILE__, __LINE__, line, (size_t)n, lines[i].valid);
        }
    }
}

SQ_TEST(two_stage_agrees_on_limits) {
    sq_buf b = {0};
    for (int depth = 510; depth <= 514; depth++) {
        sq_buf_reset(&b);
        sq_buf_puts(&b, "{\"a\":");
        for (int i = 1; i < depth; i++) sq_buf_puts(&b, i % 2 ? "[" : "{\"b\":");
        sq_buf_puts(&b, "0");
        for (int i = depth - 1; i >= 1; i--) sq_buf_puts(&b, i % 2 ? "]" : "}");
        sq_buf_puts(&b, "}");
        check_line(__FILE__, __LINE__, b.data, b.len, depth <= SQ_JSONL_MAX_DEPTH);
    }
    for (int digits = 60; digits <= 66; digits++) {
        sq_buf_reset(&b);
        sq_buf_puts(&b, "{\"n\":1");
        for (int i = 1; i < digits; i++) sq_buf_puts(&b, "0");
        sq_buf_puts(&b, "}");
        check_line(__FILE__, __LINE__, b.data, b.len, digits <= 63);
    }
    sq_buf_free(&b);
}

SQ_TEST(two_stage_agrees_on_mutated_records) {
    /* Records shaped like the pipeline's, with random bytes changed: the verdicts must
     * agree whatever they are (this is a small, fixed-seed version of the fuzzer). */
    static const char *seeds[] = {
        "{\"id\":\"q-1\",\"query\":\"Find $\\\\frac{a}{b}$ when \\\"a\\\" is \xe2\x88\x9a\xcf\x80\",\"score\":0.5,"
        "\"tags\":[\"math\",\"synthetic\"],\"solved\":true,\"u\":\"\\ud83d\\ude00 \\u00e9\"}",
        "{\"id\":\"q-2\",\"response\":\"\\\\\\\\ the sum of two numbers is \xe4\xb8\xad\xf0\x9f\x98\x80 "
        "equal to 12345 and the triangle has sides 3, 4, 5; area = 6.\",\"n\":-1.25e-3,\"x\":null}",
    };
    static const char bytes[] = "\"\\{}[]:, u0dD\xc3\xa9\xe4\xed\xf0\x80\xbf\t\n";
    sq_rng rng;
    sq_rng_seed(&rng, 7);
    char line[512];
    int valid = 0, total = 0;
    for (int round = 0; round < 6000; round++) {
        const char *seed = seeds[round % SQ_ARRAY_LEN(seeds)];
        size_t n = strlen(seed);
        memcpy(line, seed, n);
        int edits = 1 + (int)sq_rng_below(&rng, 3);
        for (int k = 0; k < edits; k++) line[sq_rng_below(&rng, n)] = bytes[sq_rng_below(&rng, sizeof bytes - 1)];
        size_t off_ref = 0;
        const char *why_ref = NULL;
        int ref = sq_jsonl_check_ref(line, n, &off_ref, &why_ref) == 0;
        int fast = sq_jsonl_fast_verdict(line, n);
        CHECKF(fast == -1 || fast == ref, "%s: reference %d, two-stage %d", shown(line, n), ref, fast);
        valid += ref, total++;
    }
    /* Both kinds of line were exercised. */
    CHECKF(valid > total / 20 && valid < total - total / 20, "%d of %d mutated lines valid", valid, total);
}
