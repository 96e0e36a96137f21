/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hash.h: SHA-256, the hash of the audit log's Merkle tree (RFC 6962), of
 * the objects' leaves when accounts move, of signed peer bodies, session
 * tokens and exports. OpenSSL's implementation, which uses the CPU's SHA
 * extensions where it has them (2x libsodium's for 65 bytes, 5x for
 * 2 KiB on the development machine); libsodium's where OpenSSL cannot get
 * memory for its context, so that hashing never fails. Both give the same
 * digest. Thread-safe; a struct hash belongs to one thread at a time.
 */
#ifndef OIKOS_HASH_H
#define OIKOS_HASH_H

#include <sodium.h>

#include "base/common.h"

#define HASH_SHA256_LEN 32

/** An incremental SHA-256: hash_init, hash_update..., hash_final. */
struct hash {
    void *evp;                      /* OpenSSL's context, or NULL: */
    crypto_hash_sha256_state other; /* libsodium's state */
};

/** Starts a digest. */
void hash_init(struct hash *h);
/** Adds len bytes at p (p may be NULL when len is 0). */
void hash_update(struct hash *h, const void *p, size_t len);
/** Writes the digest and releases h (hash_init starts it again). */
void hash_final(struct hash *h, uint8_t out[HASH_SHA256_LEN]);
/** Releases a digest that is not to be finished. Accepts NULL. */
void hash_release(struct hash *h);
/** SHA-256 of len bytes at p in one call. */
void hash_sha256(uint8_t out[HASH_SHA256_LEN], const void *p, size_t len);

#endif
