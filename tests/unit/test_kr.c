/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_kr.c: unit tests of the keyring (crypto/kr.c). A 5-of-3 keyring is
 * made, and every 3-subset of its shares unseals a fresh keyring loaded from
 * the state blob to the same keys (same identifier hashes, public keys, and
 * the KEK opens what the first one wrapped). Bad shares (any one character
 * changed, another init's, forged with a valid checksum), duplicates, a
 * corrupted state blob, a key-check mismatch, the sealed state, wrapping,
 * k = n = 1, 255 shares and concurrent use are covered too. The byte
 * layouts of shares and state are those of docs/internals/KEYRING.md.
 * Uses threads in test_concurrent only.
 */
#include "base/common.h"

#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdatomic.h>

#include "base/buf.h"
#include "crypto/aead.h"
#include "crypto/kr.h"

/* Share layout: version | init_id[8] | threshold | x | y[32] | check[4]. */
#define SH_RAW_LEN 47
#define SH_BODY_LEN 43
#define SH_OFF_K 9
#define SH_OFF_X 10
#define SH_OFF_Y 11
#define SH_TEXT_LEN 68 /* "oks1-" + 63 base64url characters */
/* State layout: "OKKR" | version | k | n | init_id[8] | kcv[32] | commit[n][32] | digest[32]. */
#define ST_OFF_KCV 15
#define ST_HEAD_LEN 47

#define STATE_MAX (1u << 20)

struct fx {
    struct kr *kr;
    struct buf state;
    char **shares;
    unsigned n, k;
};

static void
fx_init(struct fx *f, unsigned n, unsigned k)
{
    f->n = n;
    f->k = k;
    buf_init(&f->state, STATE_MAX);
    assert_int_equal(kr_new(&f->kr), 0);
    assert_int_equal(kr_init(f->kr, n, k, &f->state, &f->shares), 0);
    assert_non_null(f->shares);
}

static void
fx_release(struct fx *f)
{
    kr_shares_free(f->shares, f->n);
    kr_free(f->kr);
    buf_release(&f->state);
}

static struct kr *
load_fresh(struct slice state)
{
    struct kr *kr = NULL;
    assert_int_equal(kr_new(&kr), 0);
    assert_int_equal(kr_load(kr, state), 0);
    assert_true(kr_initialized(kr));
    assert_true(kr_sealed(kr));
    return kr;
}

/* Unseals kr with shares[idx[0..k)], checking the progress after each. */
static void
unseal_with(struct kr *kr, char **shares, const unsigned *idx, unsigned k)
{
    unsigned progress = 99, threshold = 99;
    for (unsigned i = 0; i < k; i++) {
        assert_true(kr_sealed(kr));
        assert_int_equal(kr_unseal(kr, shares[idx[i]], &progress, &threshold), 0);
        assert_int_equal(threshold, k);
        assert_int_equal(progress, i + 1 < k ? i + 1 : 0);
    }
    assert_false(kr_sealed(kr));
}

/* Decodes a share's text into raw[SH_RAW_LEN]. */
static void
share_decode(uint8_t raw[SH_RAW_LEN], const char *text)
{
    size_t len = 0;
    assert_int_equal(strlen(text), SH_TEXT_LEN);
    assert_memory_equal(text, "oks1-", 5);
    assert_int_equal(sodium_base642bin(raw, SH_RAW_LEN, text + 5, strlen(text + 5), NULL, &len,
                                       NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                     0);
    assert_int_equal(len, SH_RAW_LEN);
}

/* Encodes raw as share text into out (SH_TEXT_LEN + 1), fixing the check. */
static void
share_encode(char out[SH_TEXT_LEN + 1], uint8_t raw[SH_RAW_LEN])
{
    uint8_t h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, raw, SH_BODY_LEN);
    memcpy(raw + SH_BODY_LEN, h, 4);
    memcpy(out, "oks1-", 5);
    sodium_bin2base64(out + 5, SH_TEXT_LEN + 1 - 5, raw, SH_RAW_LEN,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static void
test_share_format(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 5, 3);
    uint8_t raw[SH_RAW_LEN], first[SH_RAW_LEN], h[crypto_hash_sha256_BYTES];
    for (unsigned i = 0; i < f.n; i++) {
        share_decode(raw, f.shares[i]);
        assert_int_equal(raw[0], 1);
        assert_int_equal(raw[SH_OFF_K], 3);
        assert_int_equal(raw[SH_OFF_X], i + 1);
        crypto_hash_sha256(h, raw, SH_BODY_LEN);
        assert_memory_equal(raw + SH_BODY_LEN, h, 4);
        if (i == 0)
            memcpy(first, raw, sizeof(raw));
        else
            assert_memory_equal(raw + 1, first + 1, 8); /* one init id */
    }
    /* The state blob has its magic, K, N and n commitments. */
    const uint8_t *st = (const uint8_t *)f.state.data;
    assert_int_equal(f.state.len, ST_HEAD_LEN + 5 * 32 + 32);
    assert_memory_equal(st, "OKKR", 4);
    assert_int_equal(st[4], 1);
    assert_int_equal(st[5], 3);
    assert_int_equal(st[6], 5);
    assert_memory_equal(st + 7, first + 1, 8);
    unsigned k = 0, n = 0;
    kr_params(f.kr, &k, &n);
    assert_int_equal(k, 3);
    assert_int_equal(n, 5);
    fx_release(&f);
}

static void
test_init_params(void **state)
{
    (void)state;
    static const unsigned bad[][2] = {{0, 0}, {1, 0}, {2, 1}, {1, 2}, {3, 4}, {256, 2}, {256, 256}};
    struct kr *kr = NULL;
    struct buf st;
    char **shares = NULL;
    buf_init(&st, STATE_MAX);
    assert_int_equal(kr_new(&kr), 0);
    assert_false(kr_initialized(kr));
    assert_true(kr_sealed(kr));
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        assert_int_equal(kr_init(kr, bad[i][0], bad[i][1], &st, &shares), ERR_INVAL);
    assert_int_equal(st.len, 0);
    assert_false(kr_initialized(kr));

    /* A state buffer too small: nothing changes. */
    struct buf tiny;
    buf_init(&tiny, 16);
    assert_int_equal(kr_init(kr, 3, 2, &tiny, &shares), ERR_LIMIT);
    assert_false(kr_initialized(kr));
    assert_null(shares);
    buf_release(&tiny);

    assert_int_equal(kr_init(kr, 2, 2, &st, &shares), 0);
    assert_true(kr_initialized(kr));
    assert_false(kr_sealed(kr));
    char **again = NULL;
    assert_int_equal(kr_init(kr, 2, 2, &st, &again), ERR_EXISTS);
    assert_null(again);
    assert_int_equal(kr_load(kr, buf_slice(&st)), ERR_EXISTS);
    kr_shares_free(shares, 2);
    kr_free(kr);
    buf_release(&st);
    kr_free(NULL);
    kr_shares_free(NULL, 3);
}

static void
test_every_subset(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 5, 3);
    static const char phone[] = "+41 79 000 00 00";
    static const char msg[] = "tree head 1";
    uint8_t id0[KR_HASH_LEN], apk0[KR_PUBKEY_LEN], ppk0[KR_PUBKEY_LEN];
    assert_int_equal(kr_ident(f.kr, id0, SLICE_STR(phone)), 0);
    assert_int_equal(kr_audit_pubkey(f.kr, apk0), 0);
    assert_int_equal(kr_peer_pubkey(f.kr, ppk0), 0);
    assert_memory_not_equal(apk0, ppk0, KR_PUBKEY_LEN);

    struct key32 *acct = key32_new(), *back = key32_new();
    assert_true(acct && back);
    key32_random(acct);
    struct buf wrapped;
    buf_init(&wrapped, 1024);
    assert_int_equal(kr_wrap(f.kr, &wrapped, acct, SLICE_STR("account:1")), 0);

    unsigned subsets = 0;
    for (unsigned a = 0; a < 5; a++) {
        for (unsigned b = a + 1; b < 5; b++) {
            for (unsigned c = b + 1; c < 5; c++) {
                /* Vary the order in which custodians arrive. */
                unsigned idx[3] = {c, a, b};
                if (subsets % 2)
                    idx[0] = a, idx[1] = b, idx[2] = c;
                struct kr *kr = load_fresh(buf_slice(&f.state));
                unseal_with(kr, f.shares, idx, 3);
                uint8_t id[KR_HASH_LEN], apk[KR_PUBKEY_LEN], ppk[KR_PUBKEY_LEN];
                uint8_t sig[KR_SIG_LEN];
                assert_int_equal(kr_ident(kr, id, SLICE_STR(phone)), 0);
                assert_memory_equal(id, id0, KR_HASH_LEN);
                assert_int_equal(kr_audit_pubkey(kr, apk), 0);
                assert_memory_equal(apk, apk0, KR_PUBKEY_LEN);
                assert_int_equal(kr_peer_pubkey(kr, ppk), 0);
                assert_memory_equal(ppk, ppk0, KR_PUBKEY_LEN);
                assert_int_equal(kr_audit_sign(kr, sig, SLICE_STR(msg)), 0);
                assert_int_equal(
                    crypto_sign_verify_detached(sig, (const uint8_t *)msg, strlen(msg), apk0), 0);
                assert_int_not_equal(
                    crypto_sign_verify_detached(sig, (const uint8_t *)msg, strlen(msg), ppk0), 0);
                assert_int_equal(kr_peer_sign(kr, sig, SLICE_STR(msg)), 0);
                assert_int_equal(
                    crypto_sign_verify_detached(sig, (const uint8_t *)msg, strlen(msg), ppk0), 0);
                memset(back->b, 0, sizeof(back->b));
                assert_int_equal(kr_unwrap(kr, back, SLICE_STR("account:1"), buf_slice(&wrapped)),
                                 0);
                assert_memory_equal(back->b, acct->b, 32);
                kr_free(kr);
                subsets++;
            }
        }
    }
    assert_int_equal(subsets, 10);

    /* The first keyring seals and unseals again with any 3 shares. */
    kr_seal(f.kr);
    assert_true(kr_sealed(f.kr));
    const unsigned idx[3] = {4, 2, 0};
    unseal_with(f.kr, f.shares, idx, 3);
    uint8_t id[KR_HASH_LEN];
    assert_int_equal(kr_ident(f.kr, id, SLICE_STR(phone)), 0);
    assert_memory_equal(id, id0, KR_HASH_LEN);
    /* Distinct inputs, distinct pseudonyms; not a plain hash. */
    assert_int_equal(kr_ident(f.kr, id, SLICE_STR("+41 79 000 00 01")), 0);
    assert_memory_not_equal(id, id0, KR_HASH_LEN);
    uint8_t plain[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(plain, (const uint8_t *)phone, strlen(phone));
    assert_memory_not_equal(plain, id0, KR_HASH_LEN);
    assert_int_equal(kr_ident(f.kr, id, SLICE(NULL, 0)), 0);

    /* Already unsealed: a further share changes nothing. */
    unsigned progress = 9, threshold = 9;
    assert_int_equal(kr_unseal(f.kr, f.shares[1], &progress, &threshold), 0);
    assert_int_equal(progress, 0);
    assert_int_equal(threshold, 3);
    assert_false(kr_sealed(f.kr));

    buf_release(&wrapped);
    key32_free(acct);
    key32_free(back);
    fx_release(&f);
}

static void
test_bad_shares(void **state)
{
    (void)state;
    struct fx f, other;
    fx_init(&f, 5, 3);
    fx_init(&other, 5, 3);
    struct kr *kr = load_fresh(buf_slice(&f.state));
    unsigned progress = 9, threshold = 9;

    assert_int_equal(kr_unseal(kr, f.shares[0], &progress, &threshold), 0);
    assert_int_equal(progress, 1);
    assert_int_equal(threshold, 3);

    /* Any one character changed, anywhere: refused, progress unchanged. */
    char bad[SH_TEXT_LEN + 1];
    unsigned tried = 0;
    for (size_t i = 0; i < SH_TEXT_LEN; i++) {
        for (const char *rep = "AB-_z"; *rep; rep++) {
            memcpy(bad, f.shares[1], sizeof(bad));
            if (bad[i] == *rep)
                continue;
            bad[i] = *rep;
            progress = threshold = 9;
            int rc = kr_unseal(kr, bad, &progress, &threshold);
            if (rc != ERR_BAD_SHARE)
                fail_msg("share with char %zu changed to '%c': %s", i, *rep, err_str(rc));
            assert_int_equal(progress, 1);
            assert_int_equal(threshold, 3);
            tried++;
        }
    }
    assert_true(tried > SH_TEXT_LEN);

    /* Malformed texts. */
    const char *junk[] = {"", "oks1-", "oks2-", "hello", "oks1-!!!!"};
    for (size_t i = 0; i < ARRAY_SIZE(junk); i++) {
        assert_int_equal(kr_unseal(kr, junk[i], &progress, &threshold), ERR_BAD_SHARE);
        assert_int_equal(progress, 1);
    }
    assert_int_equal(kr_unseal(kr, NULL, &progress, &threshold), ERR_BAD_SHARE);
    memcpy(bad, f.shares[1], sizeof(bad));
    bad[SH_TEXT_LEN - 1] = 0; /* truncated */
    assert_int_equal(kr_unseal(kr, bad, &progress, &threshold), ERR_BAD_SHARE);
    char longer[SH_TEXT_LEN + 2];
    memcpy(longer, f.shares[1], SH_TEXT_LEN);
    longer[SH_TEXT_LEN] = 'A';
    longer[SH_TEXT_LEN + 1] = 0;
    assert_int_equal(kr_unseal(kr, longer, &progress, &threshold), ERR_BAD_SHARE);

    /* Another init's share, same x, same K. */
    assert_int_equal(kr_unseal(kr, other.shares[1], &progress, &threshold), ERR_BAD_SHARE);
    assert_int_equal(progress, 1);

    /* Forged shares with a correct checksum: a changed y fails its
     * commitment; a changed K or an x out of range fails too. */
    uint8_t raw[SH_RAW_LEN], orig[SH_RAW_LEN];
    share_decode(orig, f.shares[1]);
    memcpy(raw, orig, sizeof(raw));
    raw[SH_OFF_Y + 5] ^= 1;
    share_encode(bad, raw);
    assert_int_equal(kr_unseal(kr, bad, &progress, &threshold), ERR_BAD_SHARE);
    memcpy(raw, orig, sizeof(raw));
    raw[SH_OFF_K] = 2;
    share_encode(bad, raw);
    assert_int_equal(kr_unseal(kr, bad, &progress, &threshold), ERR_BAD_SHARE);
    static const uint8_t bad_x[] = {0, 6, 255};
    for (size_t i = 0; i < ARRAY_SIZE(bad_x); i++) {
        memcpy(raw, orig, sizeof(raw));
        raw[SH_OFF_X] = bad_x[i];
        share_encode(bad, raw);
        assert_int_equal(kr_unseal(kr, bad, &progress, &threshold), ERR_BAD_SHARE);
    }
    /* Share 1 with x of share 3: the commitment of x = 3 does not match. */
    memcpy(raw, orig, sizeof(raw));
    raw[SH_OFF_X] = 3;
    share_encode(bad, raw);
    assert_int_equal(kr_unseal(kr, bad, &progress, &threshold), ERR_BAD_SHARE);
    /* A re-encoding of the genuine share is still good (the check is right). */
    memcpy(raw, orig, sizeof(raw));
    share_encode(bad, raw);
    assert_string_equal(bad, f.shares[1]);

    /* The same share twice, also with a pasted newline around it. */
    assert_int_equal(kr_unseal(kr, f.shares[0], &progress, &threshold), ERR_CONFLICT);
    assert_int_equal(progress, 1);
    char padded[SH_TEXT_LEN + 4];
    snprintf(padded, sizeof(padded), " %s\n", f.shares[0]);
    assert_int_equal(kr_unseal(kr, padded, &progress, &threshold), ERR_CONFLICT);
    assert_int_equal(progress, 1);
    assert_true(kr_sealed(kr));

    /* The genuine ones still work after all that. */
    snprintf(padded, sizeof(padded), "%s\r\n", f.shares[3]);
    assert_int_equal(kr_unseal(kr, padded, &progress, &threshold), 0);
    assert_int_equal(progress, 2);
    assert_int_equal(kr_unseal(kr, f.shares[3], &progress, &threshold), ERR_CONFLICT);
    assert_int_equal(progress, 2);
    assert_int_equal(kr_unseal(kr, f.shares[1], &progress, &threshold), 0);
    assert_int_equal(progress, 0);
    assert_false(kr_sealed(kr));

    /* Sealing drops held shares: after one share and a seal, start from 0. */
    kr_seal(kr);
    assert_int_equal(kr_unseal(kr, f.shares[2], &progress, &threshold), 0);
    assert_int_equal(progress, 1);
    kr_seal(kr);
    assert_int_equal(kr_unseal(kr, f.shares[2], &progress, &threshold), 0);
    assert_int_equal(progress, 1);

    kr_free(kr);
    fx_release(&f);
    fx_release(&other);
}

/* Rewrites the state's trailing digest after a test changed its bytes. */
static void
state_fix_digest(uint8_t *st, size_t len)
{
    crypto_generichash(st + len - 32, 32, st, len - 32, NULL, 0);
}

static void
test_kcv_mismatch(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 5, 3);
    uint8_t *st = malloc(f.state.len);
    assert_non_null(st);
    memcpy(st, f.state.data, f.state.len);
    st[ST_OFF_KCV + 3] ^= 0x80;
    state_fix_digest(st, f.state.len);
    struct kr *kr = load_fresh(SLICE(st, f.state.len));

    unsigned progress = 9, threshold = 9;
    assert_int_equal(kr_unseal(kr, f.shares[0], &progress, &threshold), 0);
    assert_int_equal(kr_unseal(kr, f.shares[1], &progress, &threshold), 0);
    assert_int_equal(progress, 2);
    assert_int_equal(kr_unseal(kr, f.shares[2], &progress, &threshold), ERR_BAD_SHARE);
    assert_int_equal(progress, 0);
    assert_true(kr_sealed(kr));
    uint8_t id[KR_HASH_LEN];
    assert_int_equal(kr_ident(kr, id, SLICE_STR("x")), ERR_SEALED);
    /* The held shares were dropped: the first one counts again. */
    assert_int_equal(kr_unseal(kr, f.shares[0], &progress, &threshold), 0);
    assert_int_equal(progress, 1);
    kr_free(kr);
    free(st);
    fx_release(&f);
}

static void
test_load_corrupt(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 4, 2);
    size_t len = f.state.len;
    uint8_t *st = malloc(len + 1);
    assert_non_null(st);
    struct kr *kr = NULL;
    assert_int_equal(kr_new(&kr), 0);

    assert_int_equal(kr_load(kr, SLICE(NULL, 0)), ERR_CORRUPT);
    for (size_t l = 0; l < len; l += 7) {
        memcpy(st, f.state.data, len);
        assert_int_equal(kr_load(kr, SLICE(st, l)), ERR_CORRUPT);
    }
    memcpy(st, f.state.data, len);
    st[len] = 0;
    assert_int_equal(kr_load(kr, SLICE(st, len + 1)), ERR_CORRUPT);
    /* Every byte, one bit flipped. */
    for (size_t i = 0; i < len; i++) {
        memcpy(st, f.state.data, len);
        st[i] ^= 0x10;
        assert_int_equal(kr_load(kr, SLICE(st, len)), ERR_CORRUPT);
    }
    /* Consistent digests over impossible contents. */
    memcpy(st, f.state.data, len);
    st[4] = 2; /* unknown version */
    state_fix_digest(st, len);
    assert_int_equal(kr_load(kr, SLICE(st, len)), ERR_CORRUPT);
    memcpy(st, f.state.data, len);
    st[5] = 5; /* K > N */
    state_fix_digest(st, len);
    assert_int_equal(kr_load(kr, SLICE(st, len)), ERR_CORRUPT);
    assert_false(kr_initialized(kr));

    assert_int_equal(kr_load(kr, buf_slice(&f.state)), 0);
    assert_int_equal(kr_load(kr, buf_slice(&f.state)), ERR_EXISTS);
    kr_free(kr);
    free(st);
    fx_release(&f);
}

static void
test_sealed(void **state)
{
    (void)state;
    struct kr *kr = NULL;
    assert_int_equal(kr_new(&kr), 0);
    unsigned progress = 9, threshold = 9, k = 9, n = 9;
    assert_int_equal(kr_unseal(kr, "oks1-x", &progress, &threshold), ERR_NOT_INITIALIZED);
    assert_int_equal(progress, 0);
    assert_int_equal(threshold, 0);
    kr_params(kr, &k, &n);
    assert_int_equal(k, 0);
    assert_int_equal(n, 0);

    struct key32 *key = key32_new();
    assert_non_null(key);
    struct buf out;
    buf_init(&out, 1024);
    uint8_t h[KR_HASH_LEN], sig[KR_SIG_LEN], pk[KR_PUBKEY_LEN];
    for (int round = 0; round < 2; round++) {
        /* Round 0: never initialised; round 1: initialised, then sealed. */
        assert_int_equal(kr_wrap(kr, &out, key, SLICE_STR("a")), ERR_SEALED);
        assert_int_equal(kr_unwrap(kr, key, SLICE_STR("a"), SLICE("x", 1)), ERR_SEALED);
        assert_int_equal(kr_ident(kr, h, SLICE_STR("a")), ERR_SEALED);
        assert_int_equal(kr_audit_sign(kr, sig, SLICE_STR("a")), ERR_SEALED);
        assert_int_equal(kr_audit_pubkey(kr, pk), ERR_SEALED);
        assert_int_equal(kr_peer_sign(kr, sig, SLICE_STR("a")), ERR_SEALED);
        assert_int_equal(kr_peer_pubkey(kr, pk), ERR_SEALED);
        assert_int_equal(out.len, 0);
        if (round == 0) {
            char **shares = NULL;
            struct buf st;
            buf_init(&st, STATE_MAX);
            assert_int_equal(kr_init(kr, 3, 2, &st, &shares), 0);
            assert_int_equal(kr_ident(kr, h, SLICE_STR("a")), 0);
            kr_seal(kr);
            assert_true(kr_sealed(kr));
            assert_true(kr_initialized(kr));
            kr_seal(kr); /* twice is fine */
            kr_shares_free(shares, 3);
            buf_release(&st);
        }
    }
    buf_release(&out);
    key32_free(key);
    kr_free(kr);
}

static void
test_wrap(void **state)
{
    (void)state;
    struct fx f, other;
    fx_init(&f, 3, 2);
    fx_init(&other, 3, 2);
    struct key32 *key = key32_new(), *back = key32_new();
    assert_true(key && back);
    key32_random(key);
    struct buf w;
    buf_init(&w, 4096);
    assert_int_equal(buf_adds(&w, "prefix"), 0);
    struct slice aad = SLICE_STR("account:1234");

    assert_int_equal(kr_wrap(f.kr, &w, key, aad), 0);
    enum aead_cipher def = aead_default();
    size_t wlen = 1 + aead_overhead(def) + 32;
    assert_int_equal(w.len, 6 + wlen);
    assert_memory_equal(w.data, "prefix", 6);
    uint8_t *wp = (uint8_t *)w.data + 6;
    assert_int_equal(wp[0], def);
    assert_int_equal(kr_unwrap(f.kr, back, aad, SLICE(wp, wlen)), 0);
    assert_memory_equal(back->b, key->b, 32);

    /* Two wraps of the same key differ (fresh nonce). */
    struct buf w2;
    buf_init(&w2, 4096);
    assert_int_equal(kr_wrap(f.kr, &w2, key, aad), 0);
    assert_int_equal(w2.len, wlen);
    assert_memory_not_equal(w2.data, wp, wlen);

    /* Wrong aad, another keyring's KEK, any altered byte, bad lengths. */
    memset(back->b, 0x55, 32);
    assert_int_equal(kr_unwrap(f.kr, back, SLICE_STR("account:1235"), SLICE(wp, wlen)), ERR_CRYPTO);
    static const uint8_t zero[32] = {0};
    assert_memory_equal(back->b, zero, 32);
    assert_int_equal(kr_unwrap(f.kr, back, SLICE(NULL, 0), SLICE(wp, wlen)), ERR_CRYPTO);
    assert_int_equal(kr_unwrap(other.kr, back, aad, SLICE(wp, wlen)), ERR_CRYPTO);
    for (size_t i = 0; i < wlen; i++) {
        wp[i] ^= 0x01;
        assert_int_equal(kr_unwrap(f.kr, back, aad, SLICE(wp, wlen)), ERR_CRYPTO);
        wp[i] ^= 0x01;
    }
    for (size_t l = 0; l < wlen; l++) {
        memset(back->b, 0x55, 32);
        assert_int_equal(kr_unwrap(f.kr, back, aad, SLICE(wp, l)), ERR_CRYPTO);
        assert_memory_equal(back->b, zero, 32);
    }
    assert_int_equal(kr_unwrap(f.kr, back, aad, SLICE(wp, wlen + 1)), ERR_CRYPTO);
    uint8_t save = wp[0];
    wp[0] = 0;
    assert_int_equal(kr_unwrap(f.kr, back, aad, SLICE(wp, wlen)), ERR_CRYPTO);
    wp[0] = 3;
    assert_int_equal(kr_unwrap(f.kr, back, aad, SLICE(wp, wlen)), ERR_CRYPTO);
    wp[0] = save;
    assert_int_equal(kr_unwrap(f.kr, back, aad, SLICE(wp, wlen)), 0);
    assert_memory_equal(back->b, key->b, 32);

    /* A key wrapped with the other cipher opens: the id travels with it. */
    if (aead_available(AEAD_AES256GCM)) {
        enum aead_cipher alt = def == AEAD_AES256GCM ? AEAD_XCHACHA20POLY1305 : AEAD_AES256GCM;
        struct buf w3;
        buf_init(&w3, 4096);
        assert_int_equal(aead_set_default(alt), 0);
        assert_int_equal(kr_wrap(f.kr, &w3, key, aad), 0);
        assert_int_equal(aead_set_default(def), 0);
        assert_int_equal((uint8_t)w3.data[0], alt);
        assert_int_equal(w3.len, 1 + aead_overhead(alt) + 32);
        memset(back->b, 0, 32);
        assert_int_equal(kr_unwrap(f.kr, back, aad, buf_slice(&w3)), 0);
        assert_memory_equal(back->b, key->b, 32);
        buf_release(&w3);
    }

    /* The output buffer's limit is honoured. */
    struct buf small;
    buf_init(&small, 8);
    assert_int_equal(kr_wrap(f.kr, &small, key, aad), ERR_LIMIT);
    assert_int_equal(small.len, 0);
    buf_release(&small);

    buf_release(&w);
    buf_release(&w2);
    key32_free(key);
    key32_free(back);
    fx_release(&f);
    fx_release(&other);
}

static void
test_one_of_one(void **state)
{
    (void)state;
    struct fx f, other;
    fx_init(&f, 1, 1);
    fx_init(&other, 1, 1);
    uint8_t id0[KR_HASH_LEN], id[KR_HASH_LEN], raw[SH_RAW_LEN];
    assert_int_equal(kr_ident(f.kr, id0, SLICE_STR("imei:3579")), 0);
    share_decode(raw, f.shares[0]);
    assert_int_equal(raw[SH_OFF_K], 1);
    assert_int_equal(raw[SH_OFF_X], 1);

    struct kr *kr = load_fresh(buf_slice(&f.state));
    unsigned progress = 9, threshold = 9;
    assert_int_equal(kr_unseal(kr, other.shares[0], &progress, &threshold), ERR_BAD_SHARE);
    assert_true(kr_sealed(kr));
    assert_int_equal(kr_unseal(kr, f.shares[0], &progress, &threshold), 0);
    assert_int_equal(progress, 0);
    assert_int_equal(threshold, 1);
    assert_false(kr_sealed(kr));
    assert_int_equal(kr_ident(kr, id, SLICE_STR("imei:3579")), 0);
    assert_memory_equal(id, id0, KR_HASH_LEN);
    kr_seal(kr);
    assert_int_equal(kr_unseal(kr, f.shares[0], &progress, &threshold), 0);
    assert_false(kr_sealed(kr));
    kr_free(kr);
    fx_release(&f);
    fx_release(&other);
}

static void
test_many_shares(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 255, 200);
    uint8_t id0[KR_HASH_LEN], id[KR_HASH_LEN];
    assert_int_equal(kr_ident(f.kr, id0, SLICE_STR("m")), 0);
    unsigned idx[200];
    for (unsigned i = 0; i < 200; i++)
        idx[i] = 254 - i;
    struct kr *kr = load_fresh(buf_slice(&f.state));
    unseal_with(kr, f.shares, idx, 200);
    assert_int_equal(kr_ident(kr, id, SLICE_STR("m")), 0);
    assert_memory_equal(id, id0, KR_HASH_LEN);
    kr_free(kr);
    fx_release(&f);

    fx_init(&f, 255, 255);
    kr = load_fresh(buf_slice(&f.state));
    unsigned progress = 0, threshold = 0;
    for (unsigned i = 0; i < 255; i++)
        assert_int_equal(kr_unseal(kr, f.shares[i], &progress, &threshold), 0);
    assert_int_equal(threshold, 255);
    assert_false(kr_sealed(kr));
    kr_free(kr);
    fx_release(&f);
}

struct conc {
    struct kr *kr;
    uint8_t want[KR_HASH_LEN];
    atomic_bool stop;
    atomic_uint ok, sealed, bad;
};

static void *
conc_reader(void *arg)
{
    struct conc *c = arg;
    uint8_t h[KR_HASH_LEN];
    while (!atomic_load(&c->stop)) {
        int rc = kr_ident(c->kr, h, SLICE_STR("+1 555 0100"));
        if (rc == 0 && memcmp(h, c->want, sizeof(h)) == 0)
            atomic_fetch_add(&c->ok, 1);
        else if (rc == ERR_SEALED)
            atomic_fetch_add(&c->sealed, 1);
        else
            atomic_fetch_add(&c->bad, 1);
    }
    return NULL;
}

static void
test_concurrent(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 3, 2);
    struct conc c = {.kr = f.kr};
    assert_int_equal(kr_ident(f.kr, c.want, SLICE_STR("+1 555 0100")), 0);
    pthread_t th[4];
    for (size_t i = 0; i < ARRAY_SIZE(th); i++)
        assert_int_equal(pthread_create(&th[i], NULL, conc_reader, &c), 0);
    unsigned progress, threshold;
    for (int i = 0; i < 50; i++) {
        kr_seal(f.kr);
        assert_int_equal(kr_unseal(f.kr, f.shares[i % 3], &progress, &threshold), 0);
        assert_int_equal(kr_unseal(f.kr, f.shares[(i + 1) % 3], &progress, &threshold), 0);
        assert_false(kr_sealed(f.kr));
    }
    /* Unsealed now: let the readers see it at least once. */
    while (atomic_load(&c.ok) == 0)
        sched_yield();
    atomic_store(&c.stop, true);
    for (size_t i = 0; i < ARRAY_SIZE(th); i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&c.bad), 0);
    assert_true(atomic_load(&c.ok) > 0);
    fx_release(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_share_format), cmocka_unit_test(test_init_params),
        cmocka_unit_test(test_every_subset), cmocka_unit_test(test_bad_shares),
        cmocka_unit_test(test_kcv_mismatch), cmocka_unit_test(test_load_corrupt),
        cmocka_unit_test(test_sealed),       cmocka_unit_test(test_wrap),
        cmocka_unit_test(test_one_of_one),   cmocka_unit_test(test_many_shares),
        cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
