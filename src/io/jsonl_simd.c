/* Stage 1 of the two-stage JSONL validator, and the entry point sq_jsonl_check.
 *
 * The byte-by-byte validator pays a fixed cost (~40 cycles) at every string start, escape
 * and non-ASCII character, and math records are full of them. Here each 64-byte block is
 * turned into bit masks (bit i = byte i) with a handful of AVX2 instructions, and every rule
 * that concerns single bytes is checked on the masks without a branch per byte:
 *  - escapes: a byte is escaped when it follows a run of backslashes of odd length; the
 *    runs are found with one addition each (see escapes()), carried across blocks;
 *  - strings: the unescaped quotes, prefix-XORed (carry-less multiply by all ones), give
 *    the mask of bytes inside strings, carried across blocks as all-ones or zero;
 *  - inside strings no control byte, only the nine escapes, \u with four hex digits and
 *    paired surrogates; outside strings no control byte but white space, nothing non-ASCII;
 *  - UTF-8, the whole line, by the lookup-table method of Keiser and Lemire ("Validating
 *    UTF-8 in less than one instruction per byte", 2021): three 16-entry tables indexed by
 *    the nibbles of each byte pair flag every bad pair, and the bytes two and three after a
 *    3- or 4-byte lead must be the continuations that pair rule cannot see.
 * What is left, the grammar, needs only the structural positions; stage 1 writes them out
 * and stage 2 (jsonl_grammar.c) walks them.
 *
 * The verdict is all this computes. A refused line goes to the reference validator
 * (jsonl_validate.c) for its reason and byte offset, so messages are the reference's own.
 * Without AVX2 at compile time the reference decides alone.
 */
#include <string.h>

#include "jsonl_internal.h"

static int g_fast = 1;
void sq_jsonl_use_fast(int on) { g_fast = on; }

#if defined(__AVX2__)
#include <immintrin.h>

#define BATCH_BLOCKS 8 /* stage 2 runs every 512 bytes: the positions stay in L1 */

typedef struct {
    uint64_t escaped;   /* bit 0: the next block's first byte is escaped */
    uint64_t in_string; /* all ones when the next block starts inside a string */
    uint64_t scalar;    /* 1 when the last block ended inside a number or literal */
    uint64_t err;       /* any bit: the line is invalid */
    size_t low_u;       /* offset of the 'u' of a low surrogate already checked with its pair */
    __m256i prev;       /* the last 32 bytes seen, for UTF-8 sequences across blocks */
    __m256i utf8_err;
} stage1;

/* A 16-entry table repeated in both 128-bit lanes (vpshufb looks up within a lane). */
#define C_(x) ((char)(x))
#define TABLE16(a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p)                                                  \
    _mm256_setr_epi8(C_(a), C_(b), C_(c), C_(d), C_(e), C_(f), C_(g), C_(h), C_(i), C_(j), C_(k), C_(l), C_(m),   \
                     C_(n), C_(o), C_(p), C_(a), C_(b), C_(c), C_(d), C_(e), C_(f), C_(g), C_(h), C_(i), C_(j), \
                     C_(k), C_(l), C_(m), C_(n), C_(o), C_(p))

static inline uint64_t bits64(__m256i lo, __m256i hi) {
    return (uint64_t)(uint32_t)_mm256_movemask_epi8(lo) | (uint64_t)(uint32_t)_mm256_movemask_epi8(hi) << 32;
}

/* Bit i becomes the XOR of bits 0..i. */
static inline uint64_t prefix_xor(uint64_t x) {
#if defined(__PCLMUL__)
    /* A carry-less multiply by all ones is exactly that sum, in one instruction. */
    return (uint64_t)_mm_cvtsi128_si64(_mm_clmulepi64_si128(_mm_set_epi64x(0, (long long)x), _mm_set1_epi8(-1), 0));
#else
    for (int k = 1; k < 64; k <<= 1) x ^= x << k;
    return x;
#endif
}

static inline __m256i high_nibbles(__m256i v) { return _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(0x0F)); }

/* ---- UTF-8 ------------------------------------------------------------------------------ */

/* Error classes of a byte pair (previous byte, this byte); a pair is bad when all three
 * tables (previous high nibble, previous low nibble, this high nibble) share a bit. */
enum {
    TOO_SHORT = 1 << 0,  /* a lead byte not followed by a continuation */
    TOO_LONG = 1 << 1,   /* a continuation after an ASCII byte */
    OVERLONG_3 = 1 << 2, /* E0 80..9F */
    TOO_LARGE = 1 << 3,  /* F4 90..BF, F5..FF 90..BF: above U+10FFFF */
    SURROGATE = 1 << 4,  /* ED A0..BF: UTF-16 surrogates */
    OVERLONG_2 = 1 << 5, /* C0 or C1, then a continuation */
    OVERLONG_4 = 1 << 6, /* F0 80..8F; shares its bit with F5..FF 80..8F (same rows and column) */
    TWO_CONTS = 1 << 7,  /* a continuation after a continuation: fine only inside a 3/4-byte sequence */
};
#define ANY_PAIR (TOO_SHORT | TOO_LONG | TWO_CONTS) /* classes that do not depend on the low nibble */

static inline __m256i utf8_pair_table_prev_high(void) {
    return TABLE16(TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, /* 0..7 */
                   TWO_CONTS, TWO_CONTS, TWO_CONTS, TWO_CONTS,                                     /* 8..B */
                   TOO_SHORT | OVERLONG_2, TOO_SHORT, TOO_SHORT | OVERLONG_3 | SURROGATE,          /* C, D, E */
                   TOO_SHORT | TOO_LARGE | OVERLONG_4);                                           /* F */
}
static inline __m256i utf8_pair_table_prev_low(void) {
    return TABLE16(ANY_PAIR | OVERLONG_2 | OVERLONG_3 | OVERLONG_4, ANY_PAIR | OVERLONG_2, ANY_PAIR, ANY_PAIR,
                   ANY_PAIR | TOO_LARGE,                                                           /* 4 */
                   ANY_PAIR | TOO_LARGE | OVERLONG_4, ANY_PAIR | TOO_LARGE | OVERLONG_4,           /* 5, 6 */
                   ANY_PAIR | TOO_LARGE | OVERLONG_4, ANY_PAIR | TOO_LARGE | OVERLONG_4,           /* 7, 8 */
                   ANY_PAIR | TOO_LARGE | OVERLONG_4, ANY_PAIR | TOO_LARGE | OVERLONG_4,           /* 9, A */
                   ANY_PAIR | TOO_LARGE | OVERLONG_4, ANY_PAIR | TOO_LARGE | OVERLONG_4,           /* B, C */
                   ANY_PAIR | TOO_LARGE | OVERLONG_4 | SURROGATE,                                  /* D */
                   ANY_PAIR | TOO_LARGE | OVERLONG_4, ANY_PAIR | TOO_LARGE | OVERLONG_4);          /* E, F */
}
static inline __m256i utf8_pair_table_this_high(void) {
    return TABLE16(TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT,
                   TOO_LONG | TWO_CONTS | OVERLONG_2 | OVERLONG_3 | OVERLONG_4,                    /* 8 */
                   TOO_LONG | TWO_CONTS | OVERLONG_2 | OVERLONG_3 | TOO_LARGE,                     /* 9 */
                   TOO_LONG | TWO_CONTS | OVERLONG_2 | SURROGATE | TOO_LARGE,                      /* A */
                   TOO_LONG | TWO_CONTS | OVERLONG_2 | SURROGATE | TOO_LARGE,                      /* B */
                   TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT);
}

/* The 32 bytes ending n bytes before the end of cur: prev's last n bytes, then cur's. */
#define SHIFT_IN(cur, prev, n) _mm256_alignr_epi8((cur), _mm256_permute2x128_si256((prev), (cur), 0x21), 16 - (n))

/* Nonzero bytes where cur (preceded by prev) is not valid UTF-8. */
static inline __m256i utf8_errors(__m256i cur, __m256i prev) {
    __m256i p1 = SHIFT_IN(cur, prev, 1);
    __m256i pair = _mm256_and_si256(
        _mm256_and_si256(_mm256_shuffle_epi8(utf8_pair_table_prev_high(), high_nibbles(p1)),
                         _mm256_shuffle_epi8(utf8_pair_table_prev_low(), _mm256_and_si256(p1, _mm256_set1_epi8(0x0F)))),
        _mm256_shuffle_epi8(utf8_pair_table_this_high(), high_nibbles(cur)));
    /* 0x80 where this byte must be a continuation of a 3- or 4-byte sequence: then, and only
     * then, the pair table says TWO_CONTS; the XOR leaves the disagreements. */
    __m256i third = _mm256_subs_epu8(SHIFT_IN(cur, prev, 2), _mm256_set1_epi8((char)(0xE0 - 0x80)));
    __m256i fourth = _mm256_subs_epu8(SHIFT_IN(cur, prev, 3), _mm256_set1_epi8((char)(0xF0 - 0x80)));
    __m256i must = _mm256_and_si256(_mm256_or_si256(third, fourth), _mm256_set1_epi8((char)0x80));
    return _mm256_xor_si256(pair, must);
}

/* Nonzero when v ends inside a multi-byte sequence (what follows must continue it). */
static inline __m256i utf8_unfinished(__m256i v) {
    const __m256i max = _mm256_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                         -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, (char)(0xF0 - 1),
                                         (char)(0xE0 - 1), (char)(0xC0 - 1));
    return _mm256_subs_epu8(v, max);
}

/* ---- escapes and \u ------------------------------------------------------------------------ */

/* The escaped bytes of a block. A run of backslashes starting at bit s is found by adding
 * its start bit: the carry ripples through the run and lands just past it, at s + length.
 * The length is odd when s and the landing bit differ in parity, so runs starting on even
 * and on odd bits get one addition each. A run reaching the block's end carries out of the
 * odd-start addition exactly when it escapes the next block's first byte. */
static inline uint64_t escapes(uint64_t bslash, uint64_t *carry) {
    const uint64_t even = 0x5555555555555555ull, odd = ~even;
    uint64_t b = bslash & ~*carry; /* an escaped backslash starts no run */
    uint64_t starts = b & ~(b << 1);
    uint64_t from_even, from_odd;
    (void)__builtin_add_overflow(b, starts & even, &from_even);
    int out = __builtin_add_overflow(b, starts & odd, &from_odd);
    uint64_t escaped = (from_even & ~b & odd) | (from_odd & ~b & even) | *carry;
    *carry = (uint64_t)out;
    return escaped;
}

/* Bytes allowed after a backslash other than 'u': " \ / b f n r t, by a two-nibble lookup (the high
 * nibble 2, 5, 6, 7 picks a bit; the low-nibble table has that bit for the bytes it allows;
 * non-ASCII bytes look up zero). */
static inline uint64_t escape_ok(__m256i lo, __m256i hi) {
    const __m256i by_high = TABLE16(0, 0, 1, 0, 0, 2, 4, 8, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m256i by_low = TABLE16(0, 0, 1 | 4 | 8, 0, 8, 0, 4, 0, 0, 0, 0, 0, 2, 0, 4, 1);
    __m256i z = _mm256_setzero_si256();
    __m256i a = _mm256_and_si256(_mm256_shuffle_epi8(by_high, high_nibbles(lo)), _mm256_shuffle_epi8(by_low, lo));
    __m256i b = _mm256_and_si256(_mm256_shuffle_epi8(by_high, high_nibbles(hi)), _mm256_shuffle_epi8(by_low, hi));
    return ~bits64(_mm256_cmpeq_epi8(a, z), _mm256_cmpeq_epi8(b, z));
}

static int hex4(const uint8_t *p, const uint8_t *end, unsigned *out) {
    if (end - p < 4) return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t c = p[i];
        unsigned d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') d = (c | 0x20) - 'a' + 10;
        else return -1;
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

/* The \u escape whose 'u' is at line[u]: four hex digits, and a surrogate only as a high
 * half followed by "\u" and a low half. The low half's 'u' is remembered so that its own
 * turn does not refuse it as unpaired. 0 ok, -1 invalid. Rare, so scalar. */
static int check_u(stage1 *s, const uint8_t *line, size_t len, size_t u) {
    const uint8_t *end = line + len;
    unsigned cp, lo;
    if (u == s->low_u) return 0;
    if (hex4(line + u + 1, end, &cp) || (cp >= 0xDC00 && cp <= 0xDFFF)) return -1;
    if (cp < 0xD800 || cp > 0xDBFF) return 0;
    if (len - u < 11 || line[u + 5] != '\\' || line[u + 6] != 'u' || hex4(line + u + 7, end, &lo) || lo < 0xDC00 ||
        lo > 0xDFFF)
        return -1;
    s->low_u = u + 6;
    return 0;
}

/* ---- one block ------------------------------------------------------------------------------ */

/* Classifies the 64 bytes at p (line offset base), checks the byte rules, and appends the
 * structural positions to pos. */
static inline __attribute__((always_inline)) void block(stage1 *s, const uint8_t *p, size_t base, const uint8_t *line, size_t len, uint32_t *pos,
                         size_t *npos) {
    /* White space and the six operators by their low nibble: a byte is white space when the
     * table at its low nibble holds the byte itself; an operator when it holds the byte with
     * bit 5 set ('[' and ']' become '{' and '}'). 0x0C and 0x1A also pass the operator test;
     * they are control bytes, refused anyway. */
    const __m256i ws_tab = TABLE16(' ', -1, -1, -1, -1, -1, -1, -1, -1, '\t', '\n', -1, -1, '\r', -1, -1);
    const __m256i op_tab = TABLE16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ':', '{', ',', '}', 0, 0);
    const __m256i quote = _mm256_set1_epi8('"'), bs = _mm256_set1_epi8('\\'), space = _mm256_set1_epi8(0x20);
    const __m256i bit5 = _mm256_set1_epi8(0x20);
    __m256i lo = _mm256_loadu_si256((const __m256i *)p), hi = _mm256_loadu_si256((const __m256i *)(p + 32));

    uint64_t quotes = bits64(_mm256_cmpeq_epi8(lo, quote), _mm256_cmpeq_epi8(hi, quote));
    uint64_t bslash = bits64(_mm256_cmpeq_epi8(lo, bs), _mm256_cmpeq_epi8(hi, bs));
    uint64_t nonascii = bits64(lo, hi);
    /* Signed compare: below 0x20 or non-ASCII. */
    uint64_t control = bits64(_mm256_cmpgt_epi8(space, lo), _mm256_cmpgt_epi8(space, hi)) & ~nonascii;
    uint64_t ws = bits64(_mm256_cmpeq_epi8(_mm256_shuffle_epi8(ws_tab, lo), lo),
                         _mm256_cmpeq_epi8(_mm256_shuffle_epi8(ws_tab, hi), hi));
    uint64_t op = bits64(_mm256_cmpeq_epi8(_mm256_shuffle_epi8(op_tab, lo), _mm256_or_si256(lo, bit5)),
                         _mm256_cmpeq_epi8(_mm256_shuffle_epi8(op_tab, hi), _mm256_or_si256(hi, bit5)));

    /* Branch-free: about half the blocks of math text hold a backslash, in no pattern a
     * branch predictor could learn. */
    uint64_t escaped = escapes(bslash, &s->escaped);
    /* \u (and any bad escape) is rare: those few bytes are looked at one by one. */
    for (uint64_t odd_ones = escaped & ~escape_ok(lo, hi); odd_ones; odd_ones &= odd_ones - 1) {
        size_t at = base + (size_t)__builtin_ctzll(odd_ones);
        if (at >= len || line[at] != 'u' || check_u(s, line, len, at)) s->err |= 1;
    }

    uint64_t q = quotes & ~escaped;
    /* Prefix XOR: bit i is the parity of the quotes at or before i, so a string's bytes are
     * set from its opening quote up to, not including, its closing quote. */
    uint64_t in_string = prefix_xor(q) ^ s->in_string;
    s->in_string = (uint64_t)((int64_t)in_string >> 63);

    s->err |= (control & (in_string | ~ws)) | (nonascii & ~in_string);
    if (nonascii) s->utf8_err = _mm256_or_si256(s->utf8_err, _mm256_or_si256(utf8_errors(lo, s->prev), utf8_errors(hi, lo)));
    else s->utf8_err = _mm256_or_si256(s->utf8_err, utf8_unfinished(s->prev));
    s->prev = hi;

    /* Numbers and literals: runs of bytes outside strings that are no operator, white space
     * or quote; the grammar needs each run's first byte. */
    uint64_t scalar = ~(op | ws | q | in_string);
    uint64_t scalar_start = scalar & ~(scalar << 1 | s->scalar);
    s->scalar = scalar >> 63;
    uint64_t structural = (op & ~in_string) | (q & in_string) | scalar_start;
    /* Four positions per step, written whether they exist or not (tzcnt of 0 is 64; the
     * count says how many are real): a loop with a data-dependent trip count per block
     * would mispredict most of the time. */
    uint32_t *o = pos + *npos, b = (uint32_t)base;
    *npos += (size_t)__builtin_popcountll(structural);
    while (structural) {
        o[0] = b + (uint32_t)_tzcnt_u64(structural);
        structural = _blsr_u64(structural);
        o[1] = b + (uint32_t)_tzcnt_u64(structural);
        structural = _blsr_u64(structural);
        o[2] = b + (uint32_t)_tzcnt_u64(structural);
        structural = _blsr_u64(structural);
        o[3] = b + (uint32_t)_tzcnt_u64(structural);
        structural = _blsr_u64(structural);
        o += 4;
    }
}

/* The last len - at (< 64) bytes of the line, then spaces, as one 64-byte block in buf. */
static inline const uint8_t *pad_tail(uint8_t *buf, const uint8_t *line, size_t at, size_t len) {
    size_t rem = len - at;
    const __m256i spaces = _mm256_set1_epi8(' ');
    if (len < 64) {
        _mm256_storeu_si256((__m256i *)buf, spaces);
        _mm256_storeu_si256((__m256i *)(buf + 32), spaces);
        memcpy(buf, line + at, rem);
        return buf;
    }
    /* Fixed-size copies instead of a variable-length memcpy (a slow "rep movs" on some
     * targets): the line's last 64 bytes land so that its last rem bytes start at buf + 64,
     * and spaces follow them. */
    _mm256_storeu_si256((__m256i *)(buf + rem), _mm256_loadu_si256((const __m256i *)(line + len - 64)));
    _mm256_storeu_si256((__m256i *)(buf + rem + 32), _mm256_loadu_si256((const __m256i *)(line + len - 32)));
    _mm256_storeu_si256((__m256i *)(buf + 64 + rem), spaces);
    _mm256_storeu_si256((__m256i *)(buf + 96 + rem), spaces);
    return buf + 64;
}

int sq_jsonl_fast_verdict(const char *text, size_t len) {
    if (len > UINT32_MAX) return -1;
    const uint8_t *line = (const uint8_t *)text;
    stage1 s;
    s.escaped = s.in_string = s.scalar = s.err = 0;
    s.low_u = SIZE_MAX;
    s.prev = s.utf8_err = _mm256_setzero_si256();
    sq_jsonl_grammar g;
    sq_jsonl_grammar_init(&g);
    uint32_t pos[BATCH_BLOCKS * 64 + 4]; /* + the spare writes of the last step */
    uint8_t buf[192];
    size_t at = 0;
    while (at < len) {
        size_t stop = len - at > BATCH_BLOCKS * 64 ? at + BATCH_BLOCKS * 64 : len, npos = 0;
        for (; stop - at >= 64; at += 64) block(&s, line + at, at, line, len, pos, &npos);
        if (at < stop) {
            /* The last, partial block, padded with spaces: white space to the grammar, and
             * a non-continuation that exposes a sequence cut short by the line's end. */
            block(&s, pad_tail(buf, line, at, len), at, line, len, pos, &npos);
            at = stop;
        }
        if (s.err || sq_jsonl_grammar_feed(&g, line, len, pos, npos)) return 0;
    }
    __m256i utf8 = _mm256_or_si256(s.utf8_err, utf8_unfinished(s.prev));
    return !s.in_string && _mm256_testz_si256(utf8, utf8) && sq_jsonl_grammar_done(&g);
}

#else
int sq_jsonl_fast_verdict(const char *text, size_t len) {
    (void)text, (void)len;
    return -1;
}
#endif

int sq_jsonl_check(const char *line, size_t len, size_t *bad_offset, const char **why) {
    /* A line the fast path refuses (or cannot judge) is judged again, and explained, by the
     * reference; the fuzzer checks that the two verdicts never differ. */
    if (g_fast && sq_jsonl_fast_verdict(line, len) == 1) return 0;
    return sq_jsonl_check_ref(line, len, bad_offset, why);
}
