/* SPDX-License-Identifier: Apache-2.0 */
/*
 * aead.c: authenticated encryption (see aead.h). AES-256-GCM is OpenSSL's
 * (libcrypto's EVP interface), used only where the CPU has AES-NI and
 * PCLMUL (as libsodium's crypto_aead_aes256gcm_is_available() reports:
 * elsewhere AES would run from tables, whose timing leaks the key);
 * XChaCha20-Poly1305 is libsodium's crypto_aead_xchacha20poly1305_ietf_*,
 * usable everywhere. OpenSSL's AES-GCM opens 1 MiB three times as fast as
 * libsodium's on the development machine (4.1-4.5 against 1.5-1.6 GB/s,
 * bench_aead), and the two give the same bytes: data sealed by either
 * opens with the other. A sealed message is nonce || ciphertext || tag
 * with a fresh random nonce; the cipher id is stored by the caller beside
 * it, so data sealed on one machine opens on any machine that has that
 * cipher.
 *
 * The global state is the default cipher and OpenSSL's AES-256-GCM
 * implementation, set once (pthread_once) by aead_setup() or by the first
 * call that needs them; the default changes only by aead_set_default(), an
 * atomic, so every function is thread-safe. Each operation has an OpenSSL
 * context of its own, whose key schedule OpenSSL wipes when it is freed.
 * The caller owns every buffer; on a failed open the output is wiped.
 */
#include "base/common.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>

#include "crypto/aead.h"
#include "crypto/rand.h"

static pthread_once_t setup_once = PTHREAD_ONCE_INIT;
static int setup_rc = ERR_INTERNAL;
static atomic_int default_cipher;
static bool aes_ok;
static EVP_CIPHER *aes_gcm; /* fetched once, never freed */

/* libsodium wants non-NULL pointers even for empty inputs and outputs. */
static const uint8_t empty_in[1];

static void
setup_run(void)
{
    if (sodium_init() < 0) {
        setup_rc = ERR_INTERNAL;
        return;
    }
    aes_ok = crypto_aead_aes256gcm_is_available() != 0;
    if (aes_ok) {
        aes_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
        if (!aes_gcm) {
            setup_rc = ERR_INTERNAL;
            return;
        }
    }
    atomic_store(&default_cipher, aes_ok ? AEAD_AES256GCM : AEAD_XCHACHA20POLY1305);
    setup_rc = 0;
}

static int
ensure_setup(void)
{
    if (pthread_once(&setup_once, setup_run) != 0)
        return ERR_INTERNAL;
    return setup_rc;
}

int
aead_setup(void)
{
    return ensure_setup();
}

enum aead_cipher
aead_default(void)
{
    if (ensure_setup() != 0)
        return AEAD_XCHACHA20POLY1305;
    return (enum aead_cipher)atomic_load(&default_cipher);
}

int
aead_set_default(enum aead_cipher c)
{
    if (!aead_available(c))
        return ERR_INVAL;
    atomic_store(&default_cipher, (int)c);
    return 0;
}

bool
aead_available(enum aead_cipher c)
{
    if (ensure_setup() != 0)
        return false;
    switch (c) {
    case AEAD_AES256GCM:
        return aes_ok;
    case AEAD_XCHACHA20POLY1305:
        return true;
    }
    return false;
}

size_t
aead_nonce_len(enum aead_cipher c)
{
    switch (c) {
    case AEAD_AES256GCM:
        return crypto_aead_aes256gcm_NPUBBYTES;
    case AEAD_XCHACHA20POLY1305:
        return crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
    }
    return 0;
}

size_t
aead_overhead(enum aead_cipher c)
{
    size_t n = aead_nonce_len(c);
    return n ? n + AEAD_TAG_LEN : 0;
}

static size_t
max_msg_len(enum aead_cipher c)
{
    return c == AEAD_AES256GCM ? crypto_aead_aes256gcm_MESSAGEBYTES_MAX
                               : crypto_aead_xchacha20poly1305_ietf_MESSAGEBYTES_MAX;
}

/*
 * AES-256-GCM through OpenSSL: enc 1 seals in into out and writes tag, enc 0
 * opens in into out and checks tag. EVP takes lengths as int: longer inputs
 * go in pieces. Returns 0, ERR_CRYPTO for a tag that does not match, or
 * ERR_INTERNAL.
 */
static int
gcm(int enc, uint8_t *out, uint8_t tag[AEAD_TAG_LEN], const uint8_t key[AEAD_KEY_LEN],
    const uint8_t *nonce, struct slice aad, const uint8_t *in, size_t len)
{
    enum { PIECE = 1 << 30 };
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int rc = ERR_INTERNAL, n;
    if (!ctx || !EVP_CipherInit_ex2(ctx, aes_gcm, key, nonce, enc, NULL))
        goto out;
    for (size_t off = 0; off < aad.len; off += PIECE) {
        size_t k = aad.len - off < PIECE ? aad.len - off : PIECE;
        if (!EVP_CipherUpdate(ctx, NULL, &n, aad.p + off, (int)k))
            goto out;
    }
    for (size_t off = 0; off < len; off += PIECE) {
        size_t k = len - off < PIECE ? len - off : PIECE;
        if (!EVP_CipherUpdate(ctx, out + off, &n, in + off, (int)k) || (size_t)n != k)
            goto out;
    }
    if (!enc && !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, AEAD_TAG_LEN, tag))
        goto out;
    if (!EVP_CipherFinal_ex(ctx, out + len, &n) || n != 0) {
        rc = enc ? ERR_INTERNAL : ERR_CRYPTO;
        goto out;
    }
    if (enc && !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, AEAD_TAG_LEN, tag))
        goto out;
    rc = 0;
out:
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

int
aead_encrypt(enum aead_cipher c, uint8_t *ct, uint8_t tag[AEAD_TAG_LEN],
             const uint8_t key[AEAD_KEY_LEN], struct slice nonce, struct slice aad, struct slice pt)
{
    if (!aead_available(c) || nonce.len != aead_nonce_len(c))
        return ERR_INVAL;
    if (pt.len > max_msg_len(c))
        return ERR_TOO_LARGE;
    const uint8_t *m = pt.len ? pt.p : empty_in;
    const uint8_t *ad = aad.len ? aad.p : empty_in;
    uint8_t dummy[1];
    uint8_t *out = pt.len ? ct : dummy;

    if (c == AEAD_AES256GCM)
        return gcm(1, out, tag, key, nonce.p, SLICE(ad, aad.len), m, pt.len);
    int rc = crypto_aead_xchacha20poly1305_ietf_encrypt_detached(out, tag, NULL, m, pt.len, ad,
                                                                 aad.len, NULL, nonce.p, key);
    return rc == 0 ? 0 : ERR_INTERNAL;
}

int
aead_decrypt(enum aead_cipher c, uint8_t *pt, const uint8_t key[AEAD_KEY_LEN], struct slice nonce,
             struct slice aad, struct slice ct, const uint8_t tag[AEAD_TAG_LEN])
{
    if (!aead_available(c) || nonce.len != aead_nonce_len(c))
        return ERR_INVAL;
    if (ct.len > max_msg_len(c))
        return ERR_CRYPTO;
    const uint8_t *in = ct.len ? ct.p : empty_in;
    const uint8_t *ad = aad.len ? aad.p : empty_in;
    uint8_t dummy[1];
    uint8_t *out = ct.len ? pt : dummy;
    int rc;

    if (c == AEAD_AES256GCM) {
        uint8_t t[AEAD_TAG_LEN];
        memcpy(t, tag, sizeof(t));
        rc = gcm(0, out, t, key, nonce.p, SLICE(ad, aad.len), in, ct.len);
    } else {
        rc = crypto_aead_xchacha20poly1305_ietf_decrypt_detached(out, NULL, in, ct.len, tag, ad,
                                                                 aad.len, nonce.p, key);
    }
    if (rc != 0) {
        if (ct.len)
            sodium_memzero(pt, ct.len);
        return ERR_CRYPTO;
    }
    return 0;
}

int
aead_seal(enum aead_cipher c, uint8_t *out, size_t cap, size_t *outlen,
          const uint8_t key[AEAD_KEY_LEN], struct slice aad, struct slice pt)
{
    if (!aead_available(c))
        return ERR_INVAL;
    size_t nlen = aead_nonce_len(c);
    size_t over = nlen + AEAD_TAG_LEN;
    if (pt.len > max_msg_len(c))
        return ERR_TOO_LARGE;
    if (cap < over || pt.len > cap - over)
        return ERR_INVAL;

    rand_public(out, nlen);
    int rc = aead_encrypt(c, out + nlen, out + nlen + pt.len, key, SLICE(out, nlen), aad, pt);
    if (rc) {
        sodium_memzero(out, nlen + pt.len + AEAD_TAG_LEN);
        return rc;
    }
    *outlen = pt.len + over;
    return 0;
}

int
aead_open(enum aead_cipher c, uint8_t *out, size_t cap, size_t *outlen,
          const uint8_t key[AEAD_KEY_LEN], struct slice aad, struct slice sealed)
{
    if (!aead_available(c))
        return ERR_INVAL;
    size_t nlen = aead_nonce_len(c);
    size_t over = nlen + AEAD_TAG_LEN;
    if (sealed.len < over)
        return ERR_CRYPTO;
    size_t mlen = sealed.len - over;
    if (cap < mlen)
        return ERR_INVAL;

    int rc = aead_decrypt(c, out, key, SLICE(sealed.p, nlen), aad, SLICE(sealed.p + nlen, mlen),
                          sealed.p + nlen + mlen);
    if (rc)
        return rc;
    *outlen = mlen;
    return 0;
}
