/* filter lang (filter.h): what each character of a question is, and the stage around it. */
#include <string.h>
#include <utf8proc.h>

#include "scalequest/filter.h"
#include "scalequest/jsonl.h"

static const char *REASONS[SQ_LANG_REASONS] = {"ok",      "empty",   "invalid_utf8", "control_char",
                                               "mojibake", "garbled", "other_script", "no_target_script"};

const char *sq_lang_reason_name(sq_lang_reason r) { return (unsigned)r < SQ_LANG_REASONS ? REASONS[r] : "unknown"; }

int sq_lang_parse(const char *name, sq_lang_target *t, sq_err *e) {
    if (!strcmp(name, "en")) *t = SQ_LANG_EN;
    else if (!strcmp(name, "zh")) *t = SQ_LANG_ZH;
    else if (!strcmp(name, "ru")) *t = SQ_LANG_RU;
    else return sq_fail(e, SQ_EINVAL, "language '%s' is not one of en, zh, ru", name);
    return 0;
}

/* Decode one code point; -1 for anything that is not well-formed UTF-8. */
static int decode(const unsigned char *s, size_t n, int32_t *cp) {
    unsigned c = s[0];
    if (c < 0x80) return *cp = (int32_t)c, 1;
    int len;
    int32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) len = 2, v = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, v = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, v = c & 0x07, min = 0x10000;
    else return -1;
    if ((size_t)len > n) return -1;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return -1;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return -1;
    *cp = v;
    return len;
}

/* Characters that a UTF-8 continuation byte (0x80-0xBF) turns into when UTF-8 is read as
 * Latin-1 or Windows-1252: what follows the lead character in mojibake. */
static int continuation_like(int32_t c, int allow_nbsp) {
    if (c >= 0x80 && c <= 0xBF) return c != 0xA0 || allow_nbsp;
    switch (c) {
    case 0x20AC: case 0x201A: case 0x0192: case 0x201E: case 0x2026: case 0x2020: case 0x2021:
    case 0x02C6: case 0x2030: case 0x0160: case 0x2039: case 0x0152: case 0x017D: case 0x2018:
    case 0x2019: case 0x201C: case 0x201D: case 0x2022: case 0x2013: case 0x2014: case 0x02DC:
    case 0x2122: case 0x0161: case 0x203A: case 0x0153: case 0x017E: case 0x0178:
        return 1;
    default: return 0;
    }
}

typedef enum { SC_NEUTRAL, SC_LATIN, SC_GREEK, SC_CYRILLIC, SC_HAN, SC_OTHER } script;

static script letter_script(int32_t c) {
    if ((c >= 0xC0 && c <= 0x24F) || (c >= 0x1E00 && c <= 0x1EFF) || (c >= 0x2C60 && c <= 0x2C7F) ||
        (c >= 0xA720 && c <= 0xA7FF) || (c >= 0xFF21 && c <= 0xFF5A) || c == 0xAA || c == 0xBA || (c >= 0x250 && c <= 0x2AF))
        return SC_LATIN;
    if ((c >= 0x370 && c <= 0x3FF) || (c >= 0x1F00 && c <= 0x1FFF)) return SC_GREEK;
    if (c >= 0x400 && c <= 0x52F) return SC_CYRILLIC;
    if ((c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2FFFF) ||
        (c >= 0xF900 && c <= 0xFAFF))
        return SC_HAN;
    /* letter-like math: ℝ ℕ ℓ (U+2100 block), 𝑥 𝔸 (mathematical alphanumerics) */
    if ((c >= 0x2100 && c <= 0x214F) || (c >= 0x1D400 && c <= 0x1D7FF)) return SC_NEUTRAL;
    return SC_OTHER;
}

/* Eight bytes of printable ASCII (0x20..0x7E)? */
static int printable8(uint64_t v) {
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    uint64_t below20 = (v - ones * 0x20) & ~v & high;
    uint64_t x = v ^ (ones * 0x7F);
    uint64_t is7f = (x - ones) & ~x & high;
    return ((v & high) | below20 | is7f) == 0;
}

sq_lang_reason sq_lang_check(const char *text, size_t len, sq_lang_target t, size_t *where) {
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    int nonspace = 0, target_letters = 0, greek_run = 0, greek_words = 0;
    size_t greek_at = 0;
    int32_t prev = 0;
    sq_lang_reason r = SQ_LANG_OK;
    if (where) *where = 0;
    while (i < len) {
        if (i + 8 <= len) {
            uint64_t v;
            memcpy(&v, s + i, 8);
            if (printable8(v)) {
                if (v != 0x2020202020202020ULL) nonspace = 1;
                if (greek_run >= 3) greek_words++;
                greek_run = 0;
                if (t == SQ_LANG_EN && !target_letters) {
                    for (int k = 0; k < 8; k++) target_letters |= (s[i + k] | 32) >= 'a' && (s[i + k] | 32) <= 'z';
                }
                prev = s[i + 7];
                i += 8;
                continue;
            }
        }
        int32_t c;
        int n = decode(s + i, len - i, &c);
        if (n < 0) {
            r = SQ_LANG_INVALID_UTF8;
            break;
        }
        if (c < 0x80) {
            if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F) {
                r = SQ_LANG_CONTROL;
                break;
            }
            if (c > 0x20) nonspace = 1;
            if ((c | 32) >= 'a' && (c | 32) <= 'z') target_letters += t == SQ_LANG_EN;
            if (greek_run >= 3) greek_words++;
            greek_run = 0;
            prev = c;
            i += 1;
            continue;
        }
        /* mojibake: a Latin-1 "lead" (Â Ã Ð Ï â ð ...) straight after which comes what a
         * continuation byte reads as */
        if (prev >= 0xC2 && prev <= 0xF4 && continuation_like(c, prev <= 0xC3)) {
            r = SQ_LANG_MOJIBAKE;
            break;
        }
        if (c == 0xFFFD) {
            r = SQ_LANG_MOJIBAKE;
            break;
        }
        if (c <= 0x9F) {
            r = SQ_LANG_CONTROL;
            break;
        }
        if ((c >= 0xFDD0 && c <= 0xFDEF) || (c & 0xFFFE) == 0xFFFE) {
            r = SQ_LANG_GARBLED;
            break;
        }
        utf8proc_category_t cat = utf8proc_category(c);
        if (cat == UTF8PROC_CATEGORY_CO || cat == UTF8PROC_CATEGORY_CN) {
            r = SQ_LANG_GARBLED;
            break;
        }
        if (cat == UTF8PROC_CATEGORY_CC) {
            r = SQ_LANG_CONTROL;
            break;
        }
        if (cat != UTF8PROC_CATEGORY_ZS && cat != UTF8PROC_CATEGORY_ZL && cat != UTF8PROC_CATEGORY_ZP &&
            cat != UTF8PROC_CATEGORY_CF)
            nonspace = 1;
        int letter = cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT ||
                     cat == UTF8PROC_CATEGORY_LO;
        script sc = letter ? letter_script(c) : SC_NEUTRAL;
        if (sc == SC_GREEK) {
            if (greek_run++ == 0 && !greek_words) greek_at = i;
        } else if (cat != UTF8PROC_CATEGORY_MN) { /* an accent continues a Greek word */
            if (greek_run >= 3) greek_words++;
            greek_run = 0;
        }
        int ok;
        switch (sc) {
        case SC_NEUTRAL: case SC_GREEK: ok = 1; break;
        case SC_LATIN: ok = 1; target_letters += t == SQ_LANG_EN; break;
        case SC_CYRILLIC: ok = t == SQ_LANG_RU; target_letters += ok; break;
        case SC_HAN: ok = t == SQ_LANG_ZH; target_letters += ok; break;
        default: ok = 0; break;
        }
        /* for Chinese, kana and CJK punctuation belong to the text too */
        if (!ok && t == SQ_LANG_ZH && c >= 0x3000 && c <= 0x30FF) ok = 1;
        if (!ok) {
            r = SQ_LANG_OTHER_SCRIPT;
            break;
        }
        prev = c;
        i += (size_t)n;
    }
    if (r != SQ_LANG_OK) {
        if (where) *where = i;
        return r;
    }
    if (greek_run >= 3) greek_words++;
    if (greek_words >= 2) {
        if (where) *where = greek_at;
        return SQ_LANG_OTHER_SCRIPT;
    }
    if (!nonspace) return SQ_LANG_EMPTY;
    if (t != SQ_LANG_EN && !target_letters) return SQ_LANG_NO_TARGET;
    return SQ_LANG_OK;
}

/* ---- the stage ------------------------------------------------------------------------ */

void sq_filter_lang_opts_default(sq_filter_lang_opts *o) {
    memset(o, 0, sizeof *o);
    sq_stage_opts_default(&o->stage);
    o->stage.name = "filter lang";
    o->field = "query";
    o->lang = SQ_LANG_EN;
}

static const char *LANG_NAMES[] = {"en", "zh", "ru"};

/* "U+4ED6 at byte 21" for the record's drop detail. */
static void detail(const char *q, size_t len, size_t at, char *out, size_t cap) {
    int32_t c = -1;
    if (at < len) {
        if (decode((const unsigned char *)q + at, len - at, &c) < 0) c = -1;
    }
    if (c >= 0) snprintf(out, cap, "U+%04X at byte %zu", (unsigned)c, at);
    else if (at < len) snprintf(out, cap, "byte 0x%02X at byte %zu", (unsigned char)q[at], at);
    else snprintf(out, cap, "at byte %zu", at);
}

int sq_filter_lang_run(const sq_filter_lang_opts *o, sq_stage_counts *counts, sq_err *e) {
    if (!o->stage.in) return sq_fail(e, SQ_EINVAL, "filter lang: no input file given");
    sq_stage_opts so = o->stage;
    if (!so.name) so.name = "filter lang";
    const char *field = o->field ? o->field : "query";
    sq_stage *st = NULL;
    int rc = sq_stage_open(&st, &so, e);
    if (rc) return rc;
    for (;;) {
        cJSON *rec;
        int64_t slot;
        int got = sq_stage_next(st, &rec, &slot, e);
        if (got < 0) {
            rc = got;
            break;
        }
        if (got == 0) break;
        const cJSON *qv = cJSON_GetObjectItemCaseSensitive(rec, field);
        if (!cJSON_IsString(qv) || !qv->valuestring) {
            rc = sq_stage_drop(st, slot, rec, "no_query", e);
        } else {
            const char *q = qv->valuestring;
            size_t len = strlen(q), at;
            sq_lang_reason why = sq_lang_check(q, len, o->lang, &at);
            if (why == SQ_LANG_OK) {
                sq_rec_set_str(rec, "lang", LANG_NAMES[o->lang]);
                rc = sq_stage_keep(st, slot, rec, e);
            } else {
                char d[64];
                detail(q, len, at, d, sizeof d);
                sq_rec_set_str(rec, "lang_detail", d);
                rc = sq_stage_drop(st, slot, rec, sq_lang_reason_name(why), e);
            }
        }
        if (rc) break;
    }
    if (rc) {
        sq_stage_abort(st);
        return rc;
    }
    return sq_stage_close(st, counts, e);
}
