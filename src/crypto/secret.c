/* SPDX-License-Identifier: Apache-2.0 */
/*
 * secret.c: locked memory for keys and passwords (see secret.h), a thin
 * layer over libsodium's guarded heap. sodium_malloc puts each block
 * between guard pages and mlocks it; sodium_free wipes the whole block
 * before it unlocks and frees it, so secret_free needs no size. The caller
 * owns every block it gets and must give it back to secret_free (never
 * free()). sodium_malloc needs sodium_init to have run (it reads the page
 * size set there), so secret_alloc calls it first; sodium_init is
 * idempotent and thread-safe. Everything here is thread-safe.
 */
#include "base/common.h"

#include <sodium.h>

#include "crypto/secret.h"

void *
secret_alloc(size_t n)
{
    if (sodium_init() < 0)
        return NULL;
    void *p = sodium_malloc(n);
    if (!p)
        return NULL;
    /* sodium_malloc fills with a canary pattern, not zeros. */
    sodium_memzero(p, n);
    return p;
}

void
secret_free(void *p)
{
    if (p)
        sodium_free(p);
}

struct key32 *
key32_new(void)
{
    return secret_alloc(sizeof(struct key32));
}

void
key32_free(struct key32 *k)
{
    secret_free(k);
}

void
key32_random(struct key32 *k)
{
    randombytes_buf(k->b, sizeof(k->b));
}

void
secret_wipe(void *p, size_t n)
{
    if (p && n)
        sodium_memzero(p, n);
}

bool
secret_equal(const void *a, const void *b, size_t n)
{
    if (n == 0)
        return true;
    return sodium_memcmp(a, b, n) == 0;
}
