/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_ident.c: identifiers (core/ident.c): phone numbers normalised to
 * E.164, IMEIs with their Luhn digit, and, on a real region in a temporary
 * directory, registration, the owner's listing and lookups, which work
 * only while the region is unsealed. Single-threaded.
 */
#include "base/common.h"

#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>

#include "base/cfg.h"
#include "core/acct.h"
#include "core/ident.h"
#include "core/region.h"
#include "crypto/aead.h"
#include "crypto/kr.h"

static void
test_phone(void **state)
{
    (void)state;
    static const struct {
        const char *in, *country, *want;
    } ok[] = {
        {"+91 98765 43210", "IN", "+919876543210"}, {"0091-98765-43210", "US", "+919876543210"},
        {"098765 43210", "IN", "+919876543210"},    {"98765 43210", "in", "+919876543210"},
        {"(415) 555-0100", "US", "+14155550100"},   {"+1 415.555.0100", "IN", "+14155550100"},
        {"06 12 34 56 78", "FR", "+33612345678"},   {"06 1234 5678", "IT", "+390612345678"},
        {"8123 4567", "SG", "+6581234567"},         {"+44 20 7946 0958", "SG", "+442079460958"},
    };
    static const struct {
        const char *in, *country;
    } bad[] = {
        {"", "IN"},
        {"+", "IN"},
        {"abc", "IN"},
        {"+91 98765 4321x", "IN"},
        {"+999 12345678", "IN"},
        {"+91 12", "IN"},
        {"1234", "IN"},
        {"9876543210", "ZZ"},
        {"9876543210", NULL},
        {"+91 1234567890123456", "IN"},
        {"+91\n9876543210", "IN"},
    };
    char out[IDENT_VALUE_MAX];
    for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
        assert_int_equal(ident_phone_normalize(out, ok[i].in, ok[i].country), 0);
        assert_string_equal(out, ok[i].want);
    }
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        assert_int_equal(ident_phone_normalize(out, bad[i].in, bad[i].country), ERR_INVAL);
}

static void
test_imei(void **state)
{
    (void)state;
    char out[IDENT_VALUE_MAX];
    assert_int_equal(ident_imei_normalize(out, "490154203237518"), 0);
    assert_string_equal(out, "490154203237518");
    assert_int_equal(ident_imei_normalize(out, "49-015420-323751-8"), 0);
    assert_string_equal(out, "490154203237518");
    assert_int_equal(ident_imei_normalize(out, "356938035643809"), 0);
    /* every other check digit fails */
    for (char d = '0'; d <= '9'; d++) {
        char imei[] = "49015420323751X";
        imei[14] = d;
        assert_int_equal(ident_imei_normalize(out, imei) == 0, d == '8');
    }
    assert_int_equal(ident_imei_normalize(out, "49015420323751"), ERR_INVAL);
    assert_int_equal(ident_imei_normalize(out, "4901542032375180"), ERR_INVAL);
    assert_int_equal(ident_imei_normalize(out, "49015420323751a"), ERR_INVAL);
}

struct collect {
    int n;
    char last[IDENT_VALUE_MAX];
};

static int
collect(void *ctx, enum ident_type type, const char *value)
{
    struct collect *c = ctx;
    (void)type;
    c->n++;
    snprintf(c->last, sizeof(c->last), "%s", value);
    return 0;
}

static void
test_register_and_lookup(void **state)
{
    (void)state;
    char dir[] = "/tmp/oikos-test-ident-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *argv[] = {"--data", dir, "--region", "in", "--pwhash-ops", "1", "--pwhash-mem", "8192"};
    struct config cfg;
    struct buf err;
    struct region *r = NULL;
    char **shares = NULL, *token = NULL;
    char a[STORE_ID_MAX], b[STORE_ID_MAX], found[STORE_ID_MAX];
    buf_init(&err, 1024);
    assert_int_equal(aead_setup(), 0);
    assert_int_equal(cfg_load(&cfg, (int)ARRAY_SIZE(argv), argv, &err), 0);
    assert_int_equal(region_open(&r, &cfg), 0);
    assert_int_equal(region_init(r, 1, 1, &shares, &token), 0);
    assert_int_equal(acct_create(r, "IN", "long enough", 11, a), 0);
    assert_int_equal(acct_create(r, "FR", "long enough", 11, b), 0);

    assert_int_equal(ident_add(r, a, IDENT_PHONE, "98765 43210"), 0);
    assert_int_equal(ident_add(r, a, IDENT_PHONE, "+91 98765 43210"), 0); /* the same: idempotent */
    assert_int_equal(ident_add(r, b, IDENT_IMEI, "490154203237518"), 0);
    assert_int_equal(ident_add(r, b, IDENT_PHONE, "garbage"), ERR_INVAL);

    struct collect c = {0};
    assert_int_equal(ident_list(r, a, collect, &c), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.last, "+919876543210");

    assert_int_equal(ident_lookup(r, IDENT_PHONE, "+919876543210", NULL, found), 0);
    assert_string_equal(found, a);
    assert_int_equal(ident_lookup(r, IDENT_PHONE, "098765 43210", "IN", found), 0);
    assert_string_equal(found, a);
    assert_int_equal(ident_lookup(r, IDENT_IMEI, "490154203237518", NULL, found), 0);
    assert_string_equal(found, b);
    assert_int_equal(ident_lookup(r, IDENT_PHONE, "+33612345678", NULL, found), ERR_NOT_FOUND);

    region_seal(r);
    assert_int_equal(ident_lookup(r, IDENT_PHONE, "+919876543210", NULL, found), ERR_SEALED);
    assert_int_equal(ident_list(r, a, collect, &c), ERR_SEALED);
    unsigned progress, k;
    assert_int_equal(region_unseal(r, shares[0], &progress, &k), 0);
    assert_int_equal(ident_lookup(r, IDENT_PHONE, "+919876543210", NULL, found), 0);

    region_init_free(shares, 1, token);
    region_close(r);
    cfg_release(&cfg);
    buf_release(&err);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_phone),
        cmocka_unit_test(test_imei),
        cmocka_unit_test(test_register_and_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
