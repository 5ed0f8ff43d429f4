/* libFuzzer target: text normalisation, shingling and MinHash on arbitrary bytes. Beyond no
 * crash and no sanitizer report it checks what dedup relies on: the normal form holds only
 * lower-case letters, digits, bytes >= 0x80 and single spaces between words, and normalising
 * it again changes nothing; shingle spans lie inside the normal form and hash to the hashes
 * given; the signature of the normal form equals that of the original's normal form, and
 * an LSH index finds a text's own signature. The first byte picks word or char shingles. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/minhash.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    sq_minhash_params p;
    sq_minhash_params_default(&p);
    p.kind = data[0] & 1 ? SQ_SHINGLE_CHAR : SQ_SHINGLE_WORD;
    p.ngram = 1 + (data[0] >> 1) % 7;
    p.num_perm = 32, p.bands = 8, p.rows = 4;
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    sq_minhasher *m = NULL;
    sq_lsh *l = NULL;
    sq_err e;
    if (sq_minhasher_new(&m, &p, &e) || sq_lsh_new(&l, 8, 4, 0, &e)) abort();
    sq_buf a = {0}, b = {0};
    int words = sq_text_normalize(text, n, &a);
    for (size_t i = 0; i < a.len; i++) {
        unsigned char c = (unsigned char)a.data[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80 || (c == ' ' && i > 0 && i + 1 < a.len && a.data[i - 1] != ' ');
        if (!ok) abort();
    }
    if (sq_text_normalize(a.data, a.len, &b) != words || b.len != a.len || memcmp(a.data, b.data, a.len)) abort();
    const uint32_t *h, *sp;
    int k = sq_minhash_shingles(m, a.data, a.len, &h, &sp);
    if (k < 0 || (k == 0) != (a.len == 0)) abort();
    for (int i = 0; i < k; i++) {
        if ((size_t)sp[2 * i] + sp[2 * i + 1] > a.len) abort();
        if (h[i] != sq_shingle_hash(a.data + sp[2 * i], sp[2 * i + 1])) abort();
    }
    uint32_t s1[32], s2[32];
    sq_minhash_sign(m, h, k, s1);
    if (sq_minhash_of_norm(m, b.data, b.len, s2) != k || memcmp(s1, s2, sizeof s1)) abort();
    if (k > 0) {
        if (sq_lsh_insert(l, s1, 7, &e) || sq_lsh_query(l, s2) != 7) abort();
    }
    sq_buf_free(&a);
    sq_buf_free(&b);
    sq_lsh_free(l);
    sq_minhasher_free(m);
    return 0;
}
