/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sss.c: Shamir's secret sharing over GF(2^8) (see sss.h). Each byte of the
 * secret is the constant term of its own random polynomial of degree k-1;
 * share i holds that polynomial evaluated at xs[i]. Recombination is
 * Lagrange interpolation at x = 0.
 *
 * The field arithmetic is written so that its timing does not depend on
 * the values: multiplication is a fixed 8-round shift-and-add with masks
 * instead of branches, and the inverse is a^254 by a fixed chain of
 * squarings and multiplications; there are no log/exp tables, whose
 * secret-indexed loads leak through the cache. The reduction polynomial is
 * a parameter so that the same code checks both published vector sets.
 *
 * Random coefficients come from randombytes_buf and are wiped before
 * returning. The caller owns every buffer. Pure, no global state:
 * thread-safe.
 */
#include "base/common.h"

#include <sodium.h>

#include "crypto/sss.h"

static bool
poly_ok(unsigned poly)
{
    return poly == SSS_POLY_AES || poly == SSS_POLY_GFSHARE;
}

uint8_t
sss_gf_mul(uint8_t a, uint8_t b, unsigned poly)
{
    unsigned x = a, y = b, r = 0;
    unsigned red = poly & 0xFFu;

    for (int i = 0; i < 8; i++) {
        r ^= x & (0u - (y & 1u));
        unsigned carry = 0u - ((x >> 7) & 1u);
        x = ((x << 1) ^ (red & carry)) & 0xFFu;
        y >>= 1;
    }
    return (uint8_t)r;
}

/* a^254 = a^-1 for a != 0 (and 0 for 0): the exponent is public, so the
 * square-and-multiply sequence is the same for every a. */
static uint8_t
gf_inv(uint8_t a, unsigned poly)
{
    uint8_t r = 1;
    for (int bit = 7; bit >= 0; bit--) {
        r = sss_gf_mul(r, r, poly);
        if ((254u >> bit) & 1u)
            r = sss_gf_mul(r, a, poly);
    }
    return r;
}

/* True if xs[0..n) are non-zero and pairwise distinct. */
static bool
xs_ok(const uint8_t *xs, unsigned n)
{
    bool seen[256] = {false};
    for (unsigned i = 0; i < n; i++) {
        if (xs[i] == 0 || seen[xs[i]])
            return false;
        seen[xs[i]] = true;
    }
    return true;
}

int
sss_split(uint8_t *ys, const uint8_t *xs, unsigned n, unsigned k, const uint8_t *secret, size_t len,
          unsigned poly)
{
    if (k < 2 || k > n || n > SSS_MAX_SHARES || !poly_ok(poly) || !xs_ok(xs, n))
        return ERR_INVAL;
    if (len > SIZE_MAX / n)
        return ERR_INVAL;

    uint8_t coef[SSS_MAX_SHARES];
    uint8_t acc = 0;
    for (size_t j = 0; j < len; j++) {
        coef[0] = secret[j];
        randombytes_buf(coef + 1, k - 1);
        for (unsigned i = 0; i < n; i++) {
            /* Horner: ((c[k-1] x + c[k-2]) x + ...) x + c[0] */
            acc = coef[k - 1];
            for (unsigned d = k - 1; d-- > 0;)
                acc = (uint8_t)(sss_gf_mul(acc, xs[i], poly) ^ coef[d]);
            ys[(size_t)i * len + j] = acc;
        }
    }
    sodium_memzero(coef, sizeof(coef));
    sodium_memzero(&acc, sizeof(acc));
    return 0;
}

int
sss_combine(uint8_t *secret, size_t len, const uint8_t *xs, const uint8_t *const *ys, unsigned k,
            unsigned poly)
{
    if (k == 0 || k > SSS_MAX_SHARES || !poly_ok(poly) || !xs_ok(xs, k))
        return ERR_INVAL;

    if (len)
        memset(secret, 0, len);
    for (unsigned i = 0; i < k; i++) {
        /* Lagrange basis at 0: prod_{j != i} x_j / (x_j - x_i); minus is xor. */
        uint8_t num = 1, den = 1;
        for (unsigned j = 0; j < k; j++) {
            if (j == i)
                continue;
            num = sss_gf_mul(num, xs[j], poly);
            den = sss_gf_mul(den, xs[i] ^ xs[j], poly);
        }
        uint8_t basis = sss_gf_mul(num, gf_inv(den, poly), poly);
        for (size_t b = 0; b < len; b++)
            secret[b] ^= sss_gf_mul(basis, ys[i][b], poly);
    }
    return 0;
}
