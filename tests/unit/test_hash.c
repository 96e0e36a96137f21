/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_hash.c: unit tests of crypto/hash.c. The FIPS 180-4 example digests
 * (the empty string, "abc", the two-block message, a million 'a's fed in
 * uneven pieces), the one-call and incremental forms agreeing at every
 * split of a message, libsodium's digest of the same bytes (the fallback
 * must give the same digest), and a digest dropped midway. Single-threaded.
 */
#include "base/common.h"

#include <setjmp.h>
#include <cmocka.h>
#include <sodium.h>

#include "base/util.h"
#include "crypto/hash.h"

static void
expect_hex(const uint8_t d[HASH_SHA256_LEN], const char *hex)
{
    char got[2 * HASH_SHA256_LEN + 1];
    hex_encode(got, d, HASH_SHA256_LEN);
    assert_string_equal(got, hex);
}

static void
test_known_digests(void **state)
{
    (void)state;
    uint8_t d[HASH_SHA256_LEN];
    hash_sha256(d, NULL, 0);
    expect_hex(d, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hash_sha256(d, "abc", 3);
    expect_hex(d, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hash_sha256(d, two, strlen(two));
    expect_hex(d, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

    /* a million 'a's, in pieces of 1, 2, ... bytes */
    static uint8_t a[1000];
    memset(a, 'a', sizeof(a));
    struct hash h;
    hash_init(&h);
    size_t done = 0;
    for (size_t k = 1; done < 1000000; k = k % 999 + 1) {
        size_t n = 1000000 - done < k ? 1000000 - done : k;
        hash_update(&h, a, n);
        done += n;
    }
    hash_final(&h, d);
    expect_hex(d, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void
test_pieces_and_libsodium_agree(void **state)
{
    (void)state;
    uint8_t msg[300], one[HASH_SHA256_LEN], inc[HASH_SHA256_LEN], so[HASH_SHA256_LEN];
    randombytes_buf(msg, sizeof(msg));
    for (size_t len = 0; len <= sizeof(msg); len += 13) {
        hash_sha256(one, msg, len);
        crypto_hash_sha256(so, msg, len);
        assert_memory_equal(one, so, sizeof(so));
        for (size_t cut = 0; cut <= len; cut += 7) {
            struct hash h;
            hash_init(&h);
            hash_update(&h, msg, cut);
            hash_update(&h, NULL, 0);
            hash_update(&h, msg + cut, len - cut);
            hash_final(&h, inc);
            assert_memory_equal(one, inc, sizeof(inc));
        }
    }
}

static void
test_release_midway(void **state)
{
    (void)state;
    struct hash h;
    uint8_t d[HASH_SHA256_LEN];
    hash_init(&h);
    hash_update(&h, "abc", 3);
    hash_release(&h); /* under ASan, a context left behind would be a leak */
    hash_release(&h);
    hash_release(NULL);
    /* and a released digest starts again */
    hash_init(&h);
    hash_update(&h, "abc", 3);
    hash_final(&h, d);
    expect_hex(d, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    hash_release(&h); /* after hash_final: nothing left to free */
}

int
main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_digests),
        cmocka_unit_test(test_pieces_and_libsodium_agree),
        cmocka_unit_test(test_release_midway),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
