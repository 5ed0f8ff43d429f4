/* Record helpers over cJSON objects, and a raw top-level string lookup for the fast paths
 * (shard by id, dedup by field) that should not build a whole cJSON tree per line. */
#include <string.h>

#include "jsonl_internal.h"

const char *sq_rec_str(const cJSON *rec, const char *field) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, field);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

const char *sq_rec_id(const cJSON *rec) { return sq_rec_str(rec, "id"); }

int sq_rec_num(const cJSON *rec, const char *field, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, field);
    if (!cJSON_IsNumber(v)) return SQ_ENOTFOUND;
    *out = v->valuedouble;
    return 0;
}

int sq_rec_bool(const cJSON *rec, const char *field, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, field);
    if (!cJSON_IsBool(v)) return SQ_ENOTFOUND;
    *out = cJSON_IsTrue(v);
    return 0;
}

const cJSON *sq_rec_array(const cJSON *rec, const char *field) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, field);
    return cJSON_IsArray(v) ? v : NULL;
}

int sq_rec_set(cJSON *rec, const char *field, cJSON *value) {
    if (!value) return SQ_ENOMEM;
    if (!cJSON_IsObject(rec)) {
        cJSON_Delete(value);
        return SQ_EINVAL;
    }
    if (cJSON_GetObjectItemCaseSensitive(rec, field)) {
        if (!cJSON_ReplaceItemInObjectCaseSensitive(rec, field, value)) {
            cJSON_Delete(value);
            return SQ_ENOMEM;
        }
        return 0;
    }
    if (!cJSON_AddItemToObject(rec, field, value)) {
        cJSON_Delete(value);
        return SQ_ENOMEM;
    }
    return 0;
}

int sq_rec_set_str(cJSON *rec, const char *field, const char *value) {
    return sq_rec_set(rec, field, cJSON_CreateString(value));
}
int sq_rec_set_num(cJSON *rec, const char *field, double value) {
    return sq_rec_set(rec, field, cJSON_CreateNumber(value));
}
int sq_rec_set_bool(cJSON *rec, const char *field, int value) {
    return sq_rec_set(rec, field, cJSON_CreateBool(value != 0));
}

char *sq_rec_to_line(const cJSON *rec) { return cJSON_PrintUnformatted(rec); }

/* ---- raw lookup ------------------------------------------------------------------------ */

typedef struct {
    const char *p, *end;
} cur;

static void ws(cur *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n')) c->p++;
}

/* At an opening quote: the span of the raw contents, and whether it has escapes. */
static int raw_string(cur *c, const char **s, size_t *n, int *escaped) {
    if (c->p >= c->end || *c->p != '"') return -1;
    const char *q = ++c->p;
    *escaped = 0;
    while (c->p < c->end && *c->p != '"') {
        if (*c->p == '\\') {
            *escaped = 1;
            c->p++;
        }
        c->p++;
    }
    if (c->p >= c->end) return -1;
    *s = q;
    *n = (size_t)(c->p - q);
    c->p++;
    return 0;
}

static int hexval(const char *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = p[i];
        v <<= 4;
        if (ch >= '0' && ch <= '9') v |= (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f') v |= (unsigned)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F') v |= (unsigned)(ch - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

static int put_utf8(sq_buf *b, unsigned cp) {
    char u[4];
    size_t n;
    if (cp < 0x80) u[0] = (char)cp, n = 1;
    else if (cp < 0x800) u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 63)), n = 2;
    else if (cp < 0x10000)
        u[0] = (char)(0xE0 | cp >> 12), u[1] = (char)(0x80 | (cp >> 6 & 63)), u[2] = (char)(0x80 | (cp & 63)), n = 3;
    else
        u[0] = (char)(0xF0 | cp >> 18), u[1] = (char)(0x80 | (cp >> 12 & 63)), u[2] = (char)(0x80 | (cp >> 6 & 63)),
        u[3] = (char)(0x80 | (cp & 63)), n = 4;
    return sq_buf_append(b, u, n);
}

/* Decode JSON string contents (without quotes) into out. */
static int unescape(const char *s, size_t n, sq_buf *out) {
    sq_buf_reset(out);
    if (sq_buf_reserve(out, n)) return SQ_ENOMEM;
    const char *end = s + n;
    while (s < end) {
        const char *bs = memchr(s, '\\', (size_t)(end - s));
        const char *stop = bs ? bs : end;
        if (sq_buf_append(out, s, (size_t)(stop - s))) return SQ_ENOMEM;
        if (!bs) break;
        if (end - bs < 2) return SQ_EPARSE;
        char x = bs[1];
        s = bs + 2;
        if (x != 'u') {
            char d;
            switch (x) {
            case '"': d = '"'; break;
            case '\\': d = '\\'; break;
            case '/': d = '/'; break;
            case 'b': d = '\b'; break;
            case 'f': d = '\f'; break;
            case 'n': d = '\n'; break;
            case 'r': d = '\r'; break;
            case 't': d = '\t'; break;
            default: return SQ_EPARSE;
            }
            if (sq_buf_append(out, &d, 1)) return SQ_ENOMEM;
            continue;
        }
        unsigned cp, lo;
        if (end - s < 4 || hexval(s, &cp)) return SQ_EPARSE;
        s += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (end - s < 6 || s[0] != '\\' || s[1] != 'u' || hexval(s + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                return SQ_EPARSE;
            s += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return SQ_EPARSE;
        }
        if (put_utf8(out, cp)) return SQ_ENOMEM;
    }
    return 0;
}

/* Skip one value of a line already known to be valid; bounded on any input. */
static int skip_value(cur *c) {
    int depth = 0;
    do {
        ws(c);
        if (c->p >= c->end) return -1;
        char ch = *c->p;
        if (ch == '"') {
            const char *s;
            size_t n;
            int esc;
            if (raw_string(c, &s, &n, &esc)) return -1;
        } else if (ch == '{' || ch == '[') {
            depth++;
            c->p++;
        } else if (ch == '}' || ch == ']') {
            depth--;
            c->p++;
        } else if (ch == ',' || ch == ':') {
            if (depth == 0) return -1;
            c->p++;
        } else {
            const char *from = c->p;
            while (c->p < c->end && *c->p && !strchr(",:}] \t\r\n", *c->p)) c->p++;
            if (c->p == from) return -1;
        }
    } while (depth > 0);
    return depth == 0 ? 0 : -1;
}

int sq_jsonl_line_str(const char *line, size_t len, const char *field, sq_buf *out) {
    cur c = {line, line + len};
    size_t flen = strlen(field);
    ws(&c);
    if (c.p >= c.end || *c.p != '{') return SQ_EPARSE;
    c.p++;
    ws(&c);
    if (c.p < c.end && *c.p == '}') return 0;
    for (;;) {
        const char *k;
        size_t kn;
        int esc, rc;
        ws(&c);
        if (raw_string(&c, &k, &kn, &esc)) return SQ_EPARSE;
        int match;
        if (!esc) {
            match = kn == flen && !memcmp(k, field, flen);
        } else {
            if ((rc = unescape(k, kn, out))) return rc;
            match = out->len == flen && !memcmp(out->data, field, flen);
        }
        ws(&c);
        if (c.p >= c.end || *c.p != ':') return SQ_EPARSE;
        c.p++;
        ws(&c);
        if (match) {
            if (c.p >= c.end || *c.p != '"') return 0; /* present but not a string */
            const char *s;
            size_t n;
            if (raw_string(&c, &s, &n, &esc)) return SQ_EPARSE;
            if (!esc) {
                sq_buf_reset(out);
                return sq_buf_append(out, s, n) ? SQ_ENOMEM : 1;
            }
            return (rc = unescape(s, n, out)) ? rc : 1;
        }
        if (skip_value(&c)) return SQ_EPARSE;
        ws(&c);
        if (c.p >= c.end) return SQ_EPARSE;
        if (*c.p == '}') return 0;
        if (*c.p != ',') return SQ_EPARSE;
        c.p++;
    }
}
