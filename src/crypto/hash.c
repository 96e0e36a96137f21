/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hash.c: SHA-256 (see hash.h). OpenSSL's digest is fetched once; each
 * struct hash has an EVP context of its own, or, when OpenSSL cannot make
 * one, libsodium's state. hash_sha256 is the two-call form of the same.
 */
#include "base/common.h"

#include <openssl/evp.h>
#include <pthread.h>

#include "crypto/hash.h"

static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md; /* NULL if OpenSSL has none: libsodium's then */

static void
fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void
hash_init(struct hash *h)
{
    h->evp = NULL;
    if (pthread_once(&fetch_once, fetch) == 0 && sha256_md) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (ctx && EVP_DigestInit_ex2(ctx, sha256_md, NULL))
            h->evp = ctx;
        else
            EVP_MD_CTX_free(ctx);
    }
    if (!h->evp)
        crypto_hash_sha256_init(&h->other);
}

void
hash_update(struct hash *h, const void *p, size_t len)
{
    if (!len)
        return;
    if (!h->evp) {
        crypto_hash_sha256_update(&h->other, p, len);
        return;
    }
    /* OpenSSL's SHA-256 update has no failure once its context is made */
    if (!EVP_DigestUpdate(h->evp, p, len))
        BUG("EVP_DigestUpdate failed");
}

void
hash_final(struct hash *h, uint8_t out[HASH_SHA256_LEN])
{
    if (h->evp) {
        unsigned int n = 0;
        if (!EVP_DigestFinal_ex(h->evp, out, &n) || n != HASH_SHA256_LEN)
            BUG("EVP_DigestFinal_ex failed");
        EVP_MD_CTX_free(h->evp);
        h->evp = NULL;
        return;
    }
    crypto_hash_sha256_final(&h->other, out);
}

void
hash_release(struct hash *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->evp);
    h->evp = NULL;
    sodium_memzero(&h->other, sizeof(h->other));
}

void
hash_sha256(uint8_t out[HASH_SHA256_LEN], const void *p, size_t len)
{
    struct hash h;
    hash_init(&h);
    hash_update(&h, p, len);
    hash_final(&h, out);
}
