/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pwhash.c: password hashing (see pwhash.h) with libsodium's Argon2id
 * string format ("$argon2id$v=19$m=...,t=...,p=1$salt$hash"), which carries
 * its own salt and cost so that a hash made under an old configuration
 * still verifies. The algorithm is named explicitly
 * (crypto_pwhash_ALG_ARGON2ID13) rather than left to the library default.
 * The caller owns the password and the output; nothing is kept. Thread-safe.
 */
#include "base/common.h"

#include <sodium.h>

#include "crypto/pwhash.h"

_Static_assert(PWHASH_STR_MAX == crypto_pwhash_argon2id_STRBYTES, "PWHASH_STR_MAX mismatch");

int
pwhash_make(char out[PWHASH_STR_MAX], const char *pw, size_t pwlen, uint64_t ops, size_t mem)
{
    if (sodium_init() < 0)
        return ERR_INTERNAL;
    if (ops < crypto_pwhash_argon2id_opslimit_min() ||
        ops > crypto_pwhash_argon2id_opslimit_max() ||
        mem < crypto_pwhash_argon2id_memlimit_min() ||
        mem > crypto_pwhash_argon2id_memlimit_max() || pwlen > crypto_pwhash_argon2id_passwd_max())
        return ERR_INVAL;
    if (crypto_pwhash_str_alg(out, pwlen ? pw : "", pwlen, ops, mem,
                              crypto_pwhash_ALG_ARGON2ID13) != 0) {
        /* The limits were checked above: what is left is a failed allocation. */
        sodium_memzero(out, PWHASH_STR_MAX);
        return ERR_NOMEM;
    }
    return 0;
}

int
pwhash_check(const char *hash, const char *pw, size_t pwlen)
{
    if (sodium_init() < 0)
        return ERR_INTERNAL;
    /* libsodium reads the hash as a C string of fewer than STRBYTES bytes. */
    if (!hash || strnlen(hash, PWHASH_STR_MAX) >= PWHASH_STR_MAX)
        return ERR_UNAUTHORIZED;
    if (crypto_pwhash_str_verify(hash, pwlen ? pw : "", pwlen) != 0)
        return ERR_UNAUTHORIZED;
    return 0;
}
