/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_pwhash.c: unit tests of crypto/pwhash.c: the hash is an Argon2id
 * string carrying the configured cost, salted (two hashes of one password
 * differ), and only the right password verifies; bad costs and malformed
 * hashes are refused. Costs are kept tiny so that the test is fast.
 * Single-threaded.
 */
#include "base/common.h"

#include <setjmp.h>
#include <cmocka.h>

#include "crypto/pwhash.h"

#define OPS 1
#define MEM (64 * 1024)

static void
test_round_trip(void **state)
{
    (void)state;
    char h1[PWHASH_STR_MAX], h2[PWHASH_STR_MAX];
    const char pw[] = "correct horse battery staple";
    assert_int_equal(pwhash_make(h1, pw, strlen(pw), OPS, MEM), 0);
    assert_int_equal(pwhash_make(h2, pw, strlen(pw), OPS, MEM), 0);
    assert_true(strncmp(h1, "$argon2id$v=19$m=64,t=1,p=1$", 28) == 0);
    assert_string_not_equal(h1, h2);

    assert_int_equal(pwhash_check(h1, pw, strlen(pw)), 0);
    assert_int_equal(pwhash_check(h2, pw, strlen(pw)), 0);
    assert_int_equal(pwhash_check(h1, pw, strlen(pw) - 1), ERR_UNAUTHORIZED);
    assert_int_equal(pwhash_check(h1, "Correct horse battery staple", strlen(pw)),
                     ERR_UNAUTHORIZED);
    assert_int_equal(pwhash_check(h1, "", 0), ERR_UNAUTHORIZED);

    /* Passwords are bytes with a length: an embedded NUL counts. */
    const char nul[] = "ab\0cd";
    assert_int_equal(pwhash_make(h1, nul, 5, OPS, MEM), 0);
    assert_int_equal(pwhash_check(h1, nul, 5), 0);
    assert_int_equal(pwhash_check(h1, nul, 2), ERR_UNAUTHORIZED);

    assert_int_equal(pwhash_make(h1, NULL, 0, OPS, MEM), 0);
    assert_int_equal(pwhash_check(h1, "", 0), 0);
    assert_int_equal(pwhash_check(h1, "x", 1), ERR_UNAUTHORIZED);
}

static void
test_bad_input(void **state)
{
    (void)state;
    char h[PWHASH_STR_MAX];
    assert_int_equal(pwhash_make(h, "pw", 2, 0, MEM), ERR_INVAL);
    assert_int_equal(pwhash_make(h, "pw", 2, OPS, 1024), ERR_INVAL);

    assert_int_equal(pwhash_check("", "pw", 2), ERR_UNAUTHORIZED);
    assert_int_equal(pwhash_check("$argon2id$garbage", "pw", 2), ERR_UNAUTHORIZED);
    assert_int_equal(pwhash_check(NULL, "pw", 2), ERR_UNAUTHORIZED);
    /* A hash field with no terminator within PWHASH_STR_MAX bytes. */
    char full[PWHASH_STR_MAX + 1];
    memset(full, 'a', sizeof(full) - 1);
    full[PWHASH_STR_MAX] = 0;
    assert_int_equal(pwhash_check(full, "pw", 2), ERR_UNAUTHORIZED);
    /* A valid hash with one character of the digest changed. */
    assert_int_equal(pwhash_make(h, "pw", 2, OPS, MEM), 0);
    size_t len = strlen(h);
    h[len - 2] = h[len - 2] == 'A' ? 'B' : 'A';
    assert_int_equal(pwhash_check(h, "pw", 2), ERR_UNAUTHORIZED);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
