/* scalequest tokenize: text to token ids (or counts), or ids back to text. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "scalequest/tokenizer.h"

static int read_input(const char *cmd, const char *path, sq_buf *b) {
    FILE *f = path ? fopen(path, "rb") : stdin;
    if (!f) return sq_cli_fail(cmd, "%s: cannot open", path);
    char chunk[1 << 16];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (sq_buf_append(b, chunk, n)) {
            if (path) fclose(f);
            return sq_cli_fail(cmd, "out of memory");
        }
    int bad = ferror(f);
    if (path) fclose(f);
    if (bad) return sq_cli_fail(cmd, "%s: read error", path ? path : "stdin");
    if (!b->data && sq_buf_reserve(b, 1)) return sq_cli_fail(cmd, "out of memory");
    return 0;
}

static int decode_text(const char *cmd, const sq_tokenizer *t, const char *s, size_t n, int dflags, FILE *out) {
    int32_t *ids = malloc((n / 2 + 1) * sizeof *ids);
    if (!ids) return sq_cli_fail(cmd, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        while (i < n && strchr(" \t,\r\n", s[i])) i++;
        if (i >= n) break;
        char *end;
        char tmp[32];
        size_t j = 0;
        while (i + j < n && j < sizeof tmp - 1 && !strchr(" \t,\r\n", s[i + j])) tmp[j] = s[i + j], j++;
        tmp[j] = 0;
        long v = strtol(tmp, &end, 10);
        if (end == tmp || *end) {
            free(ids);
            return sq_cli_fail(cmd, "'%s' at byte %zu is not a token id", tmp, i);
        }
        ids[k++] = (int32_t)v;
        i += j;
    }
    char *text;
    size_t len;
    sq_err e;
    int rc = sq_tok_decode(t, ids, k, dflags, &text, &len, &e);
    free(ids);
    if (rc) return sq_cli_fail(cmd, "%s", e.msg);
    fwrite(text, 1, len, out);
    free(text);
    return 0;
}

static int cmd_tokenize(int argc, char **argv) {
    const char *cmd = argv[0], *tok_path = NULL, *in = NULL, *sep = NULL;
    int ids_mode = 0, count = 0, decode = 0, lines = 0, add_special = 0, parse_special = 0, skip_special = 0;
    sq_opt opts[] = {
        {"tokenizer", SQ_OPT_STR, &tok_path, "PATH", "tokenizer.json, a folder, or a GGUF file (required)"},
        {"in", SQ_OPT_STR, &in, "FILE", "read this file instead of stdin"},
        {"ids", SQ_OPT_FLAG, &ids_mode, NULL, "print token ids, space-separated (the default)"},
        {"count", SQ_OPT_FLAG, &count, NULL, "print only the number of tokens"},
        {"decode", SQ_OPT_FLAG, &decode, NULL, "read ids (space/comma separated) and print the text"},
        {"lines", SQ_OPT_FLAG, &lines, NULL, "treat each input line as its own text; one output line each"},
        {"sep", SQ_OPT_STR, &sep, "STR", "like --lines, with texts separated by STR (which may hold newlines)"},
        {"add-special", SQ_OPT_FLAG, &add_special, NULL, "add BOS/EOS as the tokenizer's config says"},
        {"parse-special", SQ_OPT_FLAG, &parse_special, NULL, "recognise special tokens written in the text"},
        {"skip-special", SQ_OPT_FLAG, &skip_special, NULL, "with --decode: leave special tokens out"},
    };
    int npos;
    int rc = sq_cli_parse(argc, argv, "--tokenizer PATH [--ids|--count|--decode] [--lines] [--in FILE]", opts,
                          (int)SQ_ARRAY_LEN(opts), NULL, 0, &npos);
    if (rc >= 0) return rc;
    if (!tok_path) return sq_cli_usage_error(cmd, "--tokenizer is required");
    if (sep && !*sep) return sq_cli_usage_error(cmd, "--sep must not be empty");
    if (ids_mode + count + decode > 1) return sq_cli_usage_error(cmd, "choose one of --ids, --count, --decode");
    sq_err e;
    sq_tokenizer *t;
    if (sq_tok_load(&t, tok_path, &e)) return sq_cli_fail(cmd, "%s", e.msg);
    sq_buf input = {0};
    if ((rc = read_input(cmd, in, &input))) {
        sq_tok_free(t);
        return rc;
    }
    size_t seplen = sep ? strlen(sep) : 1;
    if (sep) lines = 1;
    int flags = (add_special ? SQ_TOK_ADD_SPECIAL : 0) | (parse_special ? SQ_TOK_PARSE_SPECIAL : 0);
    int dflags = skip_special ? SQ_TOK_SKIP_SPECIAL : 0;
    sq_buf out = {0};
    size_t total = 0;
    const char *p = input.data, *end = input.data + input.len;
    rc = 0;
    while (!rc) {
        const char *nl = !lines ? NULL
                         : sep  ? memmem(p, (size_t)(end - p), sep, seplen)
                                : memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        if (lines && p == end) break;
        if (decode) {
            rc = decode_text(cmd, t, p, (size_t)(stop - p), dflags, stdout);
            if (!rc && lines) putchar('\n');
        } else {
            int32_t *ids;
            size_t n;
            if (sq_tok_encode(t, p, (size_t)(stop - p), flags, &ids, &n, &e)) {
                rc = sq_cli_fail(cmd, "%s", e.msg);
                break;
            }
            total += n;
            if (!count) {
                sq_buf_reset(&out);
                for (size_t i = 0; i < n; i++) sq_buf_printf(&out, i ? " %d" : "%d", ids[i]);
                sq_buf_puts(&out, "\n");
                fwrite(out.data, 1, out.len, stdout);
            } else if (lines) {
                printf("%zu\n", n);
            }
            free(ids);
        }
        if (!lines || !nl) break;
        p = nl + seplen;
    }
    if (!rc && count && !lines) printf("%zu\n", total);
    if (fflush(stdout) && !rc) rc = sq_cli_fail(cmd, "write error");
    sq_buf_free(&out);
    sq_buf_free(&input);
    sq_tok_free(t);
    return rc;
}

SQ_COMMAND(tokenize, "tokenize", "text to token ids and back with a model's tokenizer", cmd_tokenize);
