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
struct kr *region_keyring(struct region *r);
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
/** Checks an operator token in constant time: 0 or ERR_UNAUTHORIZED. */
MUST_CHECK int region_operator_check(struct region *r, const char *token);

/**
 * Hashes a bearer token for storage and lookup (SHA-256): tokens are
 * stored only as hashes.
 */
void region_token_hash(uint8_t out[32], const char *token);
/** Makes a new random token "<region>.<base64url>" into out (REGION_TOKEN_MAX). */
void region_token_new(const struct region *r, char out[REGION_TOKEN_MAX]);

#endif
