/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pwhash.h: password hashing with Argon2id (libsodium's crypto_pwhash_str),
 * with the cost set by configuration. Thread-safe.
 */
#ifndef OIKOS_PWHASH_H
#define OIKOS_PWHASH_H

#include "base/common.h"

#define PWHASH_STR_MAX 128 /* crypto_pwhash_STRBYTES */

/** Hashes a password into out (PWHASH_STR_MAX bytes, NUL-terminated). */
MUST_CHECK int pwhash_make(char out[PWHASH_STR_MAX], const char *pw, size_t pwlen, uint64_t ops,
                           size_t mem);
/** Checks a password in constant time. 0 if it matches, ERR_UNAUTHORIZED if not. */
MUST_CHECK int pwhash_check(const char *hash, const char *pw, size_t pwlen);

#endif
