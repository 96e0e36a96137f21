/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kr.h: the keyring of one region. It makes the master key at init, splits
 * it into custodians' shares, takes shares back while sealed, and once
 * unsealed holds the master key and the keys derived from it (KEK,
 * identifier pepper, audit signing key, peer signing key) in locked memory.
 * The master key is never written anywhere: the caller persists only the
 * public state blob (kr_init's state_out: key-check value, init id,
 * threshold, per-share commitments) and hands it back with kr_load.
 *
 * Share text: "oks1-" + base64url(version | init_id[8] | threshold | x |
 * y[32] | check[4]); check = first 4 bytes of SHA-256 of what precedes it,
 * so a mistyped share is caught at once, and init_id names the key it
 * belongs to, so another region's share is refused. Every share is also
 * checked against its commitment in the state before it counts.
 *
 * Thread-safety: all functions may be called from any thread; an internal
 * rwlock orders key use against seal/unseal.
 */
#ifndef OIKOS_KR_H
#define OIKOS_KR_H

#include "base/buf.h"
#include "base/common.h"
#include "crypto/secret.h"

#define KR_MAX_SHARES 255
#define KR_HASH_LEN 32
#define KR_SIG_LEN 64
#define KR_PUBKEY_LEN 32

struct kr;

/** Makes an uninitialised, sealed keyring. Caller owns it (kr_free). */
MUST_CHECK int kr_new(struct kr **out);
/** Wipes every key and frees the keyring. Accepts NULL. */
void kr_free(struct kr *kr);

/**
 * Initialises: a random master key split into n shares, k needed (2 <= k <=
 * n <= 255; k == n == 1 is allowed for tests and demos). Appends the state
 * blob to state_out; *shares_out gets n NUL-terminated share strings (caller
 * frees with kr_shares_free). The keyring is left unsealed. ERR_EXISTS if
 * already initialised, ERR_INVAL for bad n, k.
 */
MUST_CHECK int kr_init(struct kr *kr, unsigned n, unsigned k, struct buf *state_out,
                       char ***shares_out);
/** Wipes and frees the share strings of kr_init. Accepts NULL. */
void kr_shares_free(char **shares, unsigned n);
/** Loads a state blob saved after kr_init. The keyring stays sealed. ERR_CORRUPT. */
MUST_CHECK int kr_load(struct kr *kr, struct slice state);

/**
 * Takes one share. ERR_BAD_SHARE if it is malformed, its check fails, it
 * belongs to another key or does not match its commitment; ERR_CONFLICT if
 * this x was already given; neither counts. When the threshold is reached
 * the master key is recombined and checked, and the keyring unseals.
 * *progress gets the shares held (0 once unsealed), *threshold the K.
 * ERR_NOT_INITIALIZED before init. Unsealed already: 0, progress 0.
 */
MUST_CHECK int kr_unseal(struct kr *kr, const char *share, unsigned *progress, unsigned *threshold);
/** Wipes every key and any shares held; the keyring is sealed. */
void kr_seal(struct kr *kr);
bool kr_sealed(struct kr *kr);
bool kr_initialized(struct kr *kr);
/** The threshold K and share count N (0 before init). */
void kr_params(struct kr *kr, unsigned *k, unsigned *n);

/* While unsealed; each returns ERR_SEALED otherwise. ---------------------- */

/** Seals a 32-byte key under the KEK with aad into out (sealed bytes appended). */
MUST_CHECK int kr_wrap(struct kr *kr, struct buf *out, const struct key32 *key, struct slice aad);
/**
 * Opens a key sealed by kr_wrap into key (caller owns it). ERR_CRYPTO if
 * altered or aad differs, ERR_UNAVAILABLE if it was sealed with a cipher this
 * CPU lacks; key is wiped on error.
 */
MUST_CHECK int kr_unwrap(struct kr *kr, struct key32 *key, struct slice aad, struct slice wrapped);
/** HMAC-SHA256 of msg under the identifier pepper. */
MUST_CHECK int kr_ident(struct kr *kr, uint8_t out[KR_HASH_LEN], struct slice msg);
/** Ed25519 signature of msg with the audit key. */
MUST_CHECK int kr_audit_sign(struct kr *kr, uint8_t sig[KR_SIG_LEN], struct slice msg);
/** The audit public key. */
MUST_CHECK int kr_audit_pubkey(struct kr *kr, uint8_t pk[KR_PUBKEY_LEN]);
/** Ed25519 signature of msg with the peer key. */
MUST_CHECK int kr_peer_sign(struct kr *kr, uint8_t sig[KR_SIG_LEN], struct slice msg);
/** The peer public key. */
MUST_CHECK int kr_peer_pubkey(struct kr *kr, uint8_t pk[KR_PUBKEY_LEN]);

#endif
