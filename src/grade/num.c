/* Bounded numbers for the grader: exact rationals of up to 127 bits with checked 128-bit
 * arithmetic, and a long double beside them. Any operation whose exact result does not fit
 * drops to the long double; a long double that overflows marks the value undefined, so 10^{10^{10}} costs one
 * powl call and compares as "unknown" instead of allocating a huge integer. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grade_int.h"

typedef __int128 i128;

static i128 gcd128(i128 a, i128 b) {
    if (a < 0) a = -a;
    if (b < 0) b = -b;
    while (b) {
        i128 t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* the exact range: both parts within +-2^126, so negation and one addition cannot wrap */
#define EXACT_MAX (((i128)1) << 126)

gval gv_bad(void) {
    gval v;
    memset(&v, 0, sizeof v);
    v.places = -1;
    return v;
}

gval gv_float(long double f) {
    gval v = gv_bad();
    v.ok = isfinite(f);
    v.f = f;
    v.approx = 1;
    return v;
}

gval gv_int(int64_t x) {
    gval v = gv_bad();
    v.ok = v.exact = 1;
    v.p = x;
    v.q = 1;
    v.f = (long double)x;
    return v;
}

/* An exact p/q, or the float fallback when it does not fit. */
static gval mk_ratio(i128 p, i128 q, long double f, int approx) {
    gval v = gv_bad();
    if (q == 0) return v;
    if (q < 0) p = -p, q = -q;
    i128 g = gcd128(p, q);
    if (g > 1) p /= g, q /= g;
    if (p > EXACT_MAX || p < -EXACT_MAX || q > EXACT_MAX) return gv_float(f);
    v.ok = v.exact = 1;
    v.p = p;
    v.q = q;
    v.f = (long double)p / (long double)q;
    v.approx = approx;
    return v;
}

gval gv_add(gval a, gval b) {
    if (!a.ok || !b.ok) return gv_bad();
    if (a.exact && b.exact) {
        i128 x, y, q;
        if (!__builtin_mul_overflow(a.p, b.q, &x) && !__builtin_mul_overflow(b.p, a.q, &y) &&
            !__builtin_add_overflow(x, y, &x) && !__builtin_mul_overflow(a.q, b.q, &q))
            return mk_ratio(x, q, a.f + b.f, a.approx | b.approx);
    }
    return gv_float(a.f + b.f);
}

gval gv_neg(gval a) {
    if (!a.ok) return a;
    a.p = -a.p;
    a.f = -a.f;
    return a;
}

gval gv_sub(gval a, gval b) { return gv_add(a, gv_neg(b)); }

gval gv_mul(gval a, gval b) {
    if (!a.ok || !b.ok) return gv_bad();
    if (a.exact && b.exact) {
        i128 g1 = gcd128(a.p, b.q), g2 = gcd128(b.p, a.q), p, q;
        if (g1 == 0) g1 = 1;
        if (g2 == 0) g2 = 1;
        if (!__builtin_mul_overflow(a.p / g1, b.p / g2, &p) && !__builtin_mul_overflow(a.q / g2, b.q / g1, &q))
            return mk_ratio(p, q, a.f * b.f, a.approx | b.approx);
    }
    return gv_float(a.f * b.f);
}

gval gv_div(gval a, gval b) {
    if (!a.ok || !b.ok) return gv_bad();
    if (b.exact ? b.p == 0 : b.f == 0) return gv_bad();
    if (a.exact && b.exact) {
        gval inv = b;
        inv.p = b.q;
        inv.q = b.p;
        if (inv.q < 0) inv.p = -inv.p, inv.q = -inv.q;
        inv.f = 1.0L / b.f;
        return gv_mul(a, inv);
    }
    return gv_float(a.f / b.f);
}

/* Integer n-th root of x >= 0 when exact, else -1. */
static i128 iroot(i128 x, int n) {
    if (x < 0) return -1;
    if (x < 2) return x;
    long double r = powl((long double)x, 1.0L / n);
    i128 c = (i128)roundl(r);
    for (i128 d = c - 1; d <= c + 1; d++) {
        if (d < 0) continue;
        i128 t = 1;
        int over = 0;
        for (int i = 0; i < n && !over; i++)
            if (__builtin_mul_overflow(t, d, &t) || t > x) over = 1;
        if (!over && t == x) return d;
    }
    return -1;
}

gval gv_pow(gval a, gval b) {
    if (!a.ok || !b.ok) return gv_bad();
    if (a.exact && b.exact && b.q == 1 && b.p >= -256 && b.p <= 256) {
        int64_t e = (int64_t)(b.p < 0 ? -b.p : b.p);
        if (a.p == 0 && b.p < 0) return gv_bad();
        gval r = gv_int(1), base = a;
        while (e && r.ok) {
            if (e & 1) r = gv_mul(r, base);
            e >>= 1;
            if (e) base = gv_mul(base, base);
        }
        if (!r.ok) return r;
        return b.p < 0 ? gv_div(gv_int(1), r) : r;
    }
    if (a.exact && b.exact && b.q > 1 && b.q <= 16 && a.p >= 0 && b.p >= -64 && b.p <= 64) {
        i128 rp = iroot(a.p, (int)b.q), rq = iroot(a.q, (int)b.q);
        if (rp >= 0 && rq > 0) {
            gval root = gv_bad();
            root.ok = root.exact = 1;
            root.p = rp;
            root.q = rq;
            root.f = (long double)rp / (long double)rq;
            root.approx = a.approx;
            gval e = gv_int((int64_t)b.p);
            return gv_pow(root, e);
        }
    }
    if (b.exact && b.q == 1 && b.p >= -64 && b.p <= 64) {
        /* an inexact base to a small whole power: multiply, no powl */
        long double r = 1, base = a.f;
        int64_t e = (int64_t)(b.p < 0 ? -b.p : b.p);
        while (e) {
            if (e & 1) r *= base;
            base *= base;
            e >>= 1;
        }
        if (b.p < 0) {
            if (r == 0) return gv_bad();
            r = 1 / r;
        }
        return gv_float(r);
    }
    if (b.exact && b.p == 1 && b.q == 2) return a.f < 0 ? gv_bad() : gv_float(sqrtl(a.f));
    if (a.f < 0 && !(b.exact && b.q % 2 == 1)) return gv_bad();
    long double r;
    if (a.f < 0) {
        /* an odd denominator keeps real roots of negatives: (-8)^{1/3} = -2 */
        r = powl(-a.f, b.f);
        if (b.p % 2) r = -r;
    } else {
        r = powl(a.f, b.f);
    }
    return gv_float(r);
}

gval gv_fact(gval a) {
    if (!a.ok || !a.exact || a.q != 1 || a.p < 0) return gv_bad();
    if (a.p > 1754) return gv_bad(); /* past the long double range */
    gval r = gv_int(1);
    for (int64_t i = 2; i <= (int64_t)a.p && r.ok; i++) r = gv_mul(r, gv_int(i));
    return r;
}

gval gv_parse_decimal(const char *s, size_t n) {
    i128 mant = 0;
    int digits = 0, places = -1, exp10 = 0, over = 0;
    size_t i = 0;
    for (; i < n; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9') {
            if (mant < ((i128)1 << 118)) mant = mant * 10 + (c - '0');
            else over = 1;
            digits++;
            if (places >= 0) places++;
        } else if (c == '.' && places < 0) {
            places = 0;
        } else {
            break;
        }
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        int sign = 1;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) sign = s[i++] == '-' ? -1 : 1;
        int e = 0;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            if (e < 100000) e = e * 10 + (s[i] - '0');
        exp10 = sign * e;
    }
    if (!digits) return gv_bad();
    int pl = places < 0 ? 0 : places;
    int e = exp10 - pl;
    gval v = gv_bad();
    if (!over && e >= 0 && e <= 38) {
        i128 p = mant;
        int ovf = 0;
        for (int k = 0; k < e && !ovf; k++) ovf = __builtin_mul_overflow(p, 10, &p);
        if (!ovf) v = mk_ratio(p, 1, 0, 0);
    } else if (!over && e < 0 && -e <= 38) {
        i128 q = 1;
        for (int k = 0; k < -e; k++) q *= 10;
        v = mk_ratio(mant, q, 0, 0);
    }
    /* beyond the exact range the literal is read as a long double (strtold stops at the
     * first character that is not part of the number) */
    if (!v.exact) v = gv_float(strtold(s, NULL));
    if (places >= 0 || exp10 != 0) {
        v.approx = 1;
        v.places = exp10 == 0 ? places : -1;
    }
    return v;
}

/* Does x, rounded to `places` decimals, give the literal y? */
static int rounds_to(long double x, long double y, int places) {
    long double scale = 1;
    for (int i = 0; i < places && i < 40; i++) scale *= 10;
    long double r = roundl(x * scale);
    long double t = roundl(y * scale);
    return r == t;
}

int gv_equal(gval a, gval b, const sq_grade_opts *o) {
    if (!a.ok || !b.ok) return 0;
    if (a.exact && b.exact && !a.approx && !b.approx) return a.p == b.p && a.q == b.q;
    long double x = a.f, y = b.f;
    if (x == y) return 1;
    long double tol = o->rel_tol > 0 ? o->rel_tol : 1e-6;
    long double m = fabsl(x) > fabsl(y) ? fabsl(x) : fabsl(y);
    if (fabsl(x - y) <= tol * m || fabsl(x - y) < 1e-12L) return 1;
    if (o->round_match >= 0) {
        if (a.places >= 2 && (b.places < 0 || b.places > a.places) && rounds_to(y, x, a.places)) return 1;
        if (b.places >= 2 && (a.places < 0 || a.places > b.places) && rounds_to(x, y, b.places)) return 1;
    }
    return 0;
}
