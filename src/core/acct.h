/* SPDX-License-Identifier: Apache-2.0 */
/*
 * acct.h: accounts and sessions of a region. An account has a random id
 * "<region>-<20 base32 chars>", a country, an Argon2id password hash and a
 * random account key stored only wrapped by the region's KEK. A session is a
 * random bearer token "<region>.<random>" stored only as its SHA-256.
 * Repeated wrong passwords lock an account for a while (ERR_RATE_LIMITED).
 *
 * Thread-safety: all functions may be called from any thread.
 */
#ifndef OIKOS_ACCT_H
#define OIKOS_ACCT_H

#include "base/common.h"
#include "core/region.h"
#include "crypto/secret.h"
#include "store/store.h"

#define ACCT_PASSWORD_MIN 8
#define ACCT_PASSWORD_MAX 1024

/**
 * Creates an account. country: two letters (either case). ERR_INVAL for a
 * bad country or a password outside 8..1024 bytes; ERR_SEALED while sealed.
 * id_out gets the new id.
 */
MUST_CHECK int acct_create(struct region *r, const char *country, const char *password,
                           size_t pwlen, char id_out[STORE_ID_MAX]);
/**
 * Checks a password and opens a session; token_out gets the bearer token.
 * ERR_UNAUTHORIZED for an unknown account or a wrong password (the same
 * answer, after the same work); ERR_RATE_LIMITED while locked, with
 * *retry_after set to the seconds left.
 */
MUST_CHECK int acct_login(struct region *r, const char *id, const char *password, size_t pwlen,
                          char token_out[REGION_TOKEN_MAX], int64_t *retry_after);
/**
 * Resolves a bearer token to its account. ERR_UNAUTHORIZED if unknown or
 * expired.
 */
MUST_CHECK int acct_auth(struct region *r, const char *token, char account_out[STORE_ID_MAX]);
/** Ends the session of a token. */
MUST_CHECK int acct_logout(struct region *r, const char *token);
/** Unwraps the account key into key (caller-owned locked memory). */
MUST_CHECK int acct_key(struct region *r, const char *account, struct key32 *key);
/** True if id has the shape of an account id (any region). */
bool acct_id_valid(const char *id);

#define ACCT_BASIC_TTL 300 /* seconds a verified Basic credential is remembered */

/**
 * Checks an account's password for HTTP Basic (CardDAV: phones send it with
 * every request), opening no session. A password verified in the last
 * ACCT_BASIC_TTL seconds is recognised from a bounded in-memory cache that
 * holds only keyed hashes (a random per-process key, in locked memory) of
 * the account id, the password and the stored password hash: no Argon2id
 * then, and a changed password or an erased account misses at once. Errors
 * as acct_login (ERR_UNAUTHORIZED, ERR_RATE_LIMITED with *retry_after,
 * ERR_SEALED).
 */
MUST_CHECK int acct_login_basic(struct region *r, const char *id, const char *password,
                                size_t pwlen, int64_t *retry_after);
/**
 * Forgets the remembered Basic credentials of an account (log-out, password
 * change, erasure), or of every account if account is NULL (seal).
 */
void acct_basic_forget(const char *account);

#endif
