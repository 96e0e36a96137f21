/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_sss.c: unit tests of Shamir secret sharing (crypto/sss.c, included
 * to reach the field inverse). The field is checked exhaustively against a
 * plain reference multiplication; split/combine round trips check every
 * K-subset and every (K-1)-subset for several (K, N) in both fields; and the
 * published vectors in $OIKOS_SHARED/data/vectors/shamir/vectors.json
 * (libgfshare, polynomial 0x11D; npm shamir-secret-sharing, 0x11B, whose
 * raw shares are y bytes followed by the x byte, as in Vault) are combined
 * from every K-subset of their shares. Single-threaded.
 */
#include "base/common.h"

#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "base/util.h"
#include "crypto/sss.c"

static const unsigned polys[] = {SSS_POLY_AES, SSS_POLY_GFSHARE};

/* Schoolbook multiplication with branches: the reference, not constant time. */
static uint8_t
ref_mul(uint8_t a, uint8_t b, unsigned poly)
{
    unsigned r = 0, x = a;
    while (b) {
        if (b & 1)
            r ^= x;
        x <<= 1;
        if (x & 0x100)
            x ^= poly;
        b >>= 1;
    }
    return (uint8_t)r;
}

static void
test_gf_mul_known(void **state)
{
    (void)state;
    /* FIPS-197 section 4.2: {57} * {83} = {c1}, {57} * {13} = {fe}. */
    assert_int_equal(sss_gf_mul(0x57, 0x83, SSS_POLY_AES), 0xc1);
    assert_int_equal(sss_gf_mul(0x57, 0x13, SSS_POLY_AES), 0xfe);
    /* x^8 reduces to the low byte of each polynomial. */
    assert_int_equal(sss_gf_mul(0x80, 0x02, SSS_POLY_AES), 0x1b);
    assert_int_equal(sss_gf_mul(0x80, 0x02, SSS_POLY_GFSHARE), 0x1d);
}

static void
test_gf_mul_exhaustive(void **state)
{
    (void)state;
    for (size_t p = 0; p < ARRAY_SIZE(polys); p++)
        for (unsigned a = 0; a < 256; a++)
            for (unsigned b = 0; b < 256; b++)
                assert_int_equal(sss_gf_mul((uint8_t)a, (uint8_t)b, polys[p]),
                                 ref_mul((uint8_t)a, (uint8_t)b, polys[p]));
}

static void
test_gf_inv(void **state)
{
    (void)state;
    for (size_t p = 0; p < ARRAY_SIZE(polys); p++) {
        assert_int_equal(gf_inv(0, polys[p]), 0);
        for (unsigned a = 1; a < 256; a++)
            assert_int_equal(sss_gf_mul((uint8_t)a, gf_inv((uint8_t)a, polys[p]), polys[p]), 1);
    }
}

/* Combines the shares whose bit is set in mask. */
static int
combine_mask(uint8_t *out, size_t len, const uint8_t *xs, const uint8_t *ys, unsigned n,
             unsigned mask, unsigned poly)
{
    uint8_t sx[SSS_MAX_SHARES];
    const uint8_t *sy[SSS_MAX_SHARES];
    unsigned m = 0;
    for (unsigned i = 0; i < n; i++) {
        if (mask & (1u << i)) {
            sx[m] = xs[i];
            sy[m] = ys + (size_t)i * len;
            m++;
        }
    }
    return sss_combine(out, len, sx, sy, m, poly);
}

/* Splits a random secret and checks every subset of the n shares: those of
 * k or more recover it, those of k-1 do not. Returns the subsets checked. */
static unsigned
check_round_trip(unsigned k, unsigned n, const uint8_t *xs, size_t len, unsigned poly)
{
    uint8_t secret[64], got[64];
    uint8_t ys[16 * 64];
    unsigned checked = 0;
    assert_true(n <= 16 && len <= sizeof(secret));
    randombytes_buf(secret, len);
    assert_int_equal(sss_split(ys, xs, n, k, secret, len, poly), 0);
    for (unsigned mask = 1; mask < (1u << n); mask++) {
        unsigned m = (unsigned)__builtin_popcount(mask);
        if (m < k - 1)
            continue;
        assert_int_equal(combine_mask(got, len, xs, ys, n, mask, poly), 0);
        if (m >= k)
            assert_memory_equal(got, secret, len);
        else if (len >= 16) /* a 2^-128 chance of a false alarm at worst */
            assert_memory_not_equal(got, secret, len);
        checked++;
    }
    return checked;
}

static void
test_round_trips(void **state)
{
    (void)state;
    static const unsigned kn[][2] = {{2, 2}, {2, 3}, {3, 5}, {5, 8}, {4, 4}, {2, 10}, {8, 10}};
    uint8_t xs[16];
    unsigned checked = 0;
    for (size_t p = 0; p < ARRAY_SIZE(polys); p++) {
        for (size_t t = 0; t < ARRAY_SIZE(kn); t++) {
            unsigned k = kn[t][0], n = kn[t][1];
            for (unsigned i = 0; i < n; i++)
                xs[i] = (uint8_t)(i + 1);
            checked += check_round_trip(k, n, xs, 32, polys[p]);
            checked += check_round_trip(k, n, xs, 1, polys[p]);
            checked += check_round_trip(k, n, xs, 0, polys[p]);
            /* Arbitrary distinct x, including 255. */
            for (unsigned i = 0; i < n; i++)
                xs[i] = (uint8_t)(255 - 17 * i);
            checked += check_round_trip(k, n, xs, 64, polys[p]);
        }
    }
    print_message("sss: %u share subsets checked\n", checked);
}

static void
test_max_shares(void **state)
{
    (void)state;
    enum { LEN = 32 };
    static uint8_t ys[SSS_MAX_SHARES * LEN];
    uint8_t xs[SSS_MAX_SHARES], secret[LEN], got[LEN];
    const uint8_t *yp[SSS_MAX_SHARES];
    for (unsigned i = 0; i < SSS_MAX_SHARES; i++)
        xs[i] = (uint8_t)(i + 1);
    randombytes_buf(secret, LEN);
    assert_int_equal(sss_split(ys, xs, 255, 255, secret, LEN, SSS_POLY_AES), 0);
    for (unsigned i = 0; i < SSS_MAX_SHARES; i++)
        yp[i] = ys + (size_t)i * LEN;
    assert_int_equal(sss_combine(got, LEN, xs, yp, 255, SSS_POLY_AES), 0);
    assert_memory_equal(got, secret, LEN);
    assert_int_equal(sss_combine(got, LEN, xs + 1, yp + 1, 254, SSS_POLY_AES), 0);
    assert_memory_not_equal(got, secret, LEN);
}

static void
test_fresh_randomness(void **state)
{
    (void)state;
    uint8_t xs[3] = {1, 2, 3}, secret[32] = {0}, a[3 * 32], b[3 * 32];
    assert_int_equal(sss_split(a, xs, 3, 2, secret, 32, SSS_POLY_AES), 0);
    assert_int_equal(sss_split(b, xs, 3, 2, secret, 32, SSS_POLY_AES), 0);
    assert_memory_not_equal(a, b, sizeof(a));
    /* A share of an all-zero secret is not itself all zero. */
    uint8_t zero[32] = {0};
    assert_memory_not_equal(a, zero, 32);
}

static void
test_bad_params(void **state)
{
    (void)state;
    uint8_t xs[256], ys[256 * 4], secret[4] = {1, 2, 3, 4}, out[4];
    const uint8_t *yp[3] = {ys, ys + 4, ys + 8};
    for (unsigned i = 0; i < 256; i++)
        xs[i] = (uint8_t)(i + 1);
    assert_int_equal(sss_split(ys, xs, 3, 1, secret, 4, SSS_POLY_AES), ERR_INVAL);
    assert_int_equal(sss_split(ys, xs, 3, 0, secret, 4, SSS_POLY_AES), ERR_INVAL);
    assert_int_equal(sss_split(ys, xs, 3, 4, secret, 4, SSS_POLY_AES), ERR_INVAL);
    assert_int_equal(sss_split(ys, xs, 256, 2, secret, 4, SSS_POLY_AES), ERR_INVAL);
    assert_int_equal(sss_split(ys, xs, 3, 2, secret, 4, 0x11A), ERR_INVAL);
    uint8_t dup[3] = {1, 2, 1}, zero[3] = {1, 0, 2};
    assert_int_equal(sss_split(ys, dup, 3, 2, secret, 4, SSS_POLY_AES), ERR_INVAL);
    assert_int_equal(sss_split(ys, zero, 3, 2, secret, 4, SSS_POLY_AES), ERR_INVAL);

    assert_int_equal(sss_split(ys, xs, 3, 2, secret, 4, SSS_POLY_AES), 0);
    assert_int_equal(sss_combine(out, 4, xs, yp, 0, SSS_POLY_AES), ERR_INVAL);
    assert_int_equal(sss_combine(out, 4, dup, yp, 3, SSS_POLY_AES), ERR_INVAL);
    assert_int_equal(sss_combine(out, 4, zero, yp, 3, SSS_POLY_AES), ERR_INVAL);
    assert_int_equal(sss_combine(out, 4, xs, yp, 2, 0x100), ERR_INVAL);
    assert_int_equal(sss_combine(out, 4, xs, yp, 2, SSS_POLY_AES), 0);
    assert_memory_equal(out, secret, 4);
}

/* ---- published vectors ------------------------------------------------- */

static json_t *
load_json(const char *rel)
{
    const char *root = getenv("OIKOS_SHARED");
    if (!root)
        fail_msg("OIKOS_SHARED is not set (run the test through ctest)");
    char path[4096];
    int w = snprintf(path, sizeof(path), "%s/%s", root, rel);
    assert_true(w > 0 && (size_t)w < sizeof(path));
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);
    if (!j)
        fail_msg("cannot load '%s': %s", path, jerr.text);
    return j;
}

/* Decodes a hex string field into out; returns its length in bytes. */
static size_t
hex_field(uint8_t *out, size_t cap, json_t *obj, const char *key)
{
    const char *h = json_string_value(json_object_get(obj, key));
    assert_non_null(h);
    size_t hl = strlen(h);
    assert_true(hl % 2 == 0 && hl / 2 <= cap);
    assert_int_equal(hex_decode(out, hl / 2, h, hl), 0);
    return hl / 2;
}

static void
test_published_vectors(void **state)
{
    (void)state;
    json_t *root = load_json("data/vectors/shamir/vectors.json");
    json_t *vectors = json_object_get(root, "vectors");
    assert_true(json_is_array(vectors));
    unsigned nvec = 0, nsubsets = 0, ngfshare = 0, naes = 0, nraw = 0;
    size_t vi;
    json_t *v;
    json_array_foreach(vectors, vi, v)
    {
        unsigned poly = (unsigned)json_integer_value(json_object_get(v, "field_poly"));
        assert_true(poly == SSS_POLY_AES || poly == SSS_POLY_GFSHARE);
        unsigned other = poly == SSS_POLY_AES ? SSS_POLY_GFSHARE : SSS_POLY_AES;
        unsigned k = (unsigned)json_integer_value(json_object_get(v, "threshold"));
        uint8_t secret[64], got[64], xs[16], ys[16 * 64];
        size_t len = hex_field(secret, sizeof(secret), v, "secret_hex");
        json_t *shares = json_object_get(v, "shares");
        unsigned n = (unsigned)json_array_size(shares);
        assert_true(k >= 2 && k <= n && n <= 16);

        size_t si;
        json_t *s;
        json_array_foreach(shares, si, s)
        {
            uint8_t y[64], raw[65];
            xs[si] = (uint8_t)json_integer_value(json_object_get(s, "x"));
            assert_int_equal(hex_field(y, sizeof(y), s, "y_hex"), len);
            if (json_object_get(s, "raw_share_hex")) {
                /* Vault layout: y bytes, then the x byte. */
                assert_int_equal(hex_field(raw, sizeof(raw), s, "raw_share_hex"), len + 1);
                assert_int_equal(raw[len], xs[si]);
                assert_memory_equal(raw, y, len);
                memcpy(ys + si * len, raw, len);
                xs[si] = raw[len];
                nraw++;
            } else {
                memcpy(ys + si * len, y, len);
            }
        }
        for (unsigned mask = 1; mask < (1u << n); mask++) {
            unsigned m = (unsigned)__builtin_popcount(mask);
            if (m != k)
                continue;
            assert_int_equal(combine_mask(got, len, xs, ys, n, mask, poly), 0);
            assert_memory_equal(got, secret, len);
            /* The same points read in the other field give something else. */
            assert_int_equal(combine_mask(got, len, xs, ys, n, mask, other), 0);
            if (len >= 10)
                assert_memory_not_equal(got, secret, len);
            nsubsets++;
        }
        if (poly == SSS_POLY_AES)
            naes++;
        else
            ngfshare++;
        nvec++;
    }
    json_decref(root);
    print_message("sss vectors: %u vectors (%u with 0x11B, %u with 0x11D, %u raw Vault-layout "
                  "shares), %u k-subsets combined\n",
                  nvec, naes, ngfshare, nraw, nsubsets);
    assert_true(naes > 0 && ngfshare > 0 && nsubsets > 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gf_mul_known), cmocka_unit_test(test_gf_mul_exhaustive),
        cmocka_unit_test(test_gf_inv),       cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_max_shares),   cmocka_unit_test(test_fresh_randomness),
        cmocka_unit_test(test_bad_params),   cmocka_unit_test(test_published_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
