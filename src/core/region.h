/* SPDX-License-Identifier: Apache-2.0 */
/*
 * region.h: one region's domain state: its store, its keyring and the
 * limits it enforces. Opening a region loads the keyring's public state
 * from the store, so a region always starts sealed. Init, unseal and seal
 * are the operator's door; accounts (acct.h) and objects (obj.h) work on an
 * open, unsealed region.
 *
 * Thread-safety: every function may be called from any thread once
 * region_open has returned; region_close must be the last call.
 */
#ifndef OIKOS_REGION_H
#define OIKOS_REGION_H

#include "base/buf.h"
#include "base/cfg.h"
#include "base/common.h"

struct region;
struct store;
struct kr;
struct audit;

#define REGION_NAME_MAX 16
#define REGION_TOKEN_MAX 96

/**
 * Opens the region described by cfg: opens its store (applying the schema)
 * and loads its keyring state. cfg is borrowed for the region's life.
 * Caller owns *out (region_close).
 */
MUST_CHECK int region_open(struct region **out, const struct config *cfg);
/** Seals (wiping every key) and closes the store. Accepts NULL. */
void region_close(struct region *r);

const char *region_name(const struct region *r);
const struct config *region_config(const struct region *r);
struct store *region_store(struct region *r);
/**
 * The key store: service keys and the consent ledger, kept apart from the
 * data store so that no copy of the data holds a key (CONSENT.md).
 */
struct store *region_keystore(struct region *r);
struct kr *region_keyring(struct region *r);
/** The region's audit log (audit/audit.h). */
struct audit *region_audit(struct region *r);
bool region_sealed(struct region *r);
bool region_initialized(struct region *r);

/**
 * Initialises the region: a new master key split into n shares, k needed,
 * and an operator token. Both are returned once and never stored in clear.
 * *shares_out (n strings) and *token_out are owned by the caller: free them
 * with region_init_free. ERR_EXISTS if already initialised. Leaves the
 * region unsealed.
 */
MUST_CHECK int region_init(struct region *r, unsigned n, unsigned k, char ***shares_out,
                           char **token_out);
/** Wipes and frees what region_init returned. Accepts NULLs. */
void region_init_free(char **shares, unsigned n, char *token);
/** Takes one custodian's share (see kr_unseal). */
MUST_CHECK int region_unseal(struct region *r, const char *share, unsigned *progress,
                             unsigned *threshold);
/** Wipes every key. */
void region_seal(struct region *r);
/** Counts the objects stored in the region and their plaintext bytes. */
MUST_CHECK int region_stats(struct region *r, uint64_t *objects, uint64_t *bytes);
/** Checks an operator token in constant time: 0 or ERR_UNAUTHORIZED. */
MUST_CHECK int region_operator_check(struct region *r, const char *token);

/* Residency ---------------------------------------------------------------- */

#define REGION_URL_MAX 256

/**
 * Reads the cluster file again (SIGHUP). On error keeps the cluster it had,
 * logs why and returns ERR_INVAL. Without a cluster file: 0, nothing to do.
 */
MUST_CHECK int region_reload(struct region *r);
/**
 * Where an account of country cc (two letters, any case) lives: 0 if here;
 * ERR_WRONG_REGION with the home region's name and base URL in name/url;
 * ERR_INVAL for a malformed country. Without a cluster file every country
 * lives here.
 */
MUST_CHECK int region_home(struct region *r, const char *cc, char name[REGION_NAME_MAX],
                           char url[REGION_URL_MAX]);
/**
 * The base URL of the region called name, for redirects: 0 and url set,
 * ERR_NOT_FOUND if the cluster does not name it (or there is no cluster).
 */
MUST_CHECK int region_locate(struct region *r, const char *name, char url[REGION_URL_MAX]);
/**
 * The base URL and pinned peer public key (32 bytes) of the region called
 * name: 0, ERR_NOT_FOUND if the cluster does not name it, ERR_UNAUTHORIZED
 * if it pins no peer_key for it.
 */
MUST_CHECK int region_peer(struct region *r, const char *name, char url[REGION_URL_MAX],
                           uint8_t pk[32]);
/**
 * The region a routed string belongs to: what precedes its first sep
 * ("in" of "in-abc" or "in.xyz"). 0 if it names this region, otherwise
 * ERR_WRONG_REGION with name and url set, or ERR_NOT_FOUND for a region
 * nobody knows.
 */
MUST_CHECK int region_route(struct region *r, const char *s, char sep, char name[REGION_NAME_MAX],
                            char url[REGION_URL_MAX]);

/**
 * Hashes a bearer token for storage and lookup (SHA-256): tokens are
 * stored only as hashes.
 */
void region_token_hash(uint8_t out[32], const char *token);
/** Makes a new random token "<region>.<base64url>" into out (REGION_TOKEN_MAX). */
void region_token_new(const struct region *r, char out[REGION_TOKEN_MAX]);

#endif
