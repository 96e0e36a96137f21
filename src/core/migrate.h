/* SPDX-License-Identifier: Apache-2.0 */
/*
 * migrate.h: moving accounts between regions (PROMISES.md P6), the domain
 * half: what the source and the destination each keep and do. The network
 * half (the signed peer channel and the calls) is in http/api_peer.c.
 *
 * Per account, at the source: freeze (a durable record; writes and logins
 * get 503, and writes already under way are waited for), read everything
 * (account, consent ledger, identifiers, sessions, every live object in
 * plaintext, with no per-object audit entry: the move's own entry covers
 * them) for the destination, compute the Merkle root of (service, name,
 * SHA-256 of the bytes) over the objects; once the destination has
 * committed with the same root, crypto-shred (key store first) and keep
 * only a tombstone (account id -> region, and its sessions' token hashes ->
 * expiry, so that their tokens are sent on). At the destination: the
 * account arrives under a "receiving" record (not served: logins are sent
 * back to the source), with its sessions; the objects are re-sealed under
 * its own keys, one durable transaction per bundle (obj_import), and the
 * commit, which checks the root computed from the bytes as they were sealed
 * against the source's, removes that record in the same transaction as its
 * audit entry (and as the objects, when one bundle holds the account).
 * Every step is idempotent, so a crash anywhere is finished by running the
 * move again. Accounts move in batches (up to MIGRATE_BATCH_MAX): at both
 * ends each step is one commit for every account of the batch, and a
 * bundle carries several accounts, so that a move costs a few commits and
 * calls per batch rather than per account.
 *
 * Records (store_rec, data store): "migout" at the source (to, phase, root),
 * "migin" at the destination (from, phase), "moved" the tombstone,
 * "movedtok" (token hash -> expiry) the tombstones of its sessions at the
 * source, "intok" the sessions that arrived, at the destination (so that a
 * token logged out there is not sent back to its first region); both are
 * deleted by the sweeper once expired (migrate_expire_add).
 *
 * Thread-safety: every function may be called from any thread.
 */
#ifndef OIKOS_MIGRATE_H
#define OIKOS_MIGRATE_H

#include <jansson.h>

#include "base/buf.h"
#include "base/common.h"
#include "core/region.h"
#include "store/store.h"

#define MIGRATE_ROOT_LEN 32
#define MIGRATE_RETRY_AFTER 5 /* seconds a frozen account's writes are told to wait */
#define MIGRATE_BATCH_MAX 64  /* accounts per move request, per begin and per bundle */

/* ---- everywhere ----------------------------------------------------------- */

/**
 * Where account id is served: 0 if here; ERR_WRONG_REGION with name and
 * url for its tombstone's region, for the source of a move still arriving
 * here, or for the region its id names (region_route); ERR_NOT_FOUND for a
 * region nobody knows.
 */
MUST_CHECK int migrate_route(struct region *r, const char *id, char name[REGION_NAME_MAX],
                             char url[REGION_URL_MAX]);
/**
 * Resolves a bearer token, across moves: 0 and account if its session is
 * here and its account served here (a token of another region counts if
 * its session moved here with its account); ERR_WRONG_REGION with name
 * and url where it must go instead (the region its prefix names, the region
 * its account moved to, or the source of a move still arriving here);
 * ERR_UNAUTHORIZED if unknown or expired anywhere this region knows of.
 */
MUST_CHECK int migrate_auth(struct region *r, const char *token, char account[STORE_ID_MAX],
                            char name[REGION_NAME_MAX], char url[REGION_URL_MAX]);
/**
 * A user's write begins: ERR_UNAVAILABLE while the account is frozen for a
 * move; else 0 and *slot, to be given to migrate_write_leave at its end.
 */
MUST_CHECK int migrate_write_enter(struct region *r, const char *account, unsigned *slot);
/** A write ended (slot 0: none). */
void migrate_write_leave(unsigned slot);

/** Called per account listed: id, objects and plaintext bytes. Non-zero stops. */
typedef int (*migrate_list_cb)(void *ctx, const char *id, uint64_t objects, uint64_t bytes);
/**
 * Lists the accounts served here (not those arriving) of country cc, or
 * only account `id` if id is not NULL.
 */
MUST_CHECK int migrate_list(struct region *r, const char *cc, const char *id, migrate_list_cb cb,
                            void *ctx);

/* ---- at the source ---------------------------------------------------------- */

enum migrate_phase { MIGRATE_NONE, MIGRATE_FROZEN, MIGRATE_COMMITTED, MIGRATE_MOVED };

/** An account's move, as the source records it. */
struct migrate_out {
    enum migrate_phase phase;
    char to[REGION_NAME_MAX];
    uint8_t root[MIGRATE_ROOT_LEN]; /* MIGRATE_COMMITTED */
};

/** Reads the state of account id's move (MIGRATE_MOVED: only the tombstone is left). */
MUST_CHECK int migrate_out_get(struct region *r, const char *id, struct migrate_out *out);
/**
 * Freezes the accounts ids[0..n) for a move to region to (one durable
 * commit for them all), then waits up to a few seconds for their writes
 * under way. rcs[i] per account: 0 (frozen, or moved there already),
 * ERR_CONFLICT if it is moving elsewhere, ERR_UNAVAILABLE if its writes
 * are still running (try again), ERR_NOT_FOUND. Returns an error of the
 * store (nothing frozen) or 0.
 */
MUST_CHECK int migrate_freeze(struct region *r, const char *const *ids, size_t n, const char *to,
                              int *rcs);
/**
 * What the destination needs besides the objects, as JSON (caller owns
 * *out): account, country, created, pwhash, consent history, identifiers.
 */
MUST_CHECK int migrate_manifest(struct region *r, const char *id, json_t **out);
/** Called per live object: bytes borrowed for the call. Non-zero stops. */
typedef int (*migrate_obj_cb)(void *ctx, const char *service, const char *name, size_t namelen,
                              struct slice data);
/**
 * Reads every live object of the account's services that are on, calls cb
 * (cb may be NULL) and computes the root of them all into root; *objects
 * and *bytes count them.
 */
MUST_CHECK int migrate_objects(struct region *r, const char *id, migrate_obj_cb cb, void *ctx,
                               uint8_t root[MIGRATE_ROOT_LEN], uint64_t *objects, uint64_t *bytes);
/**
 * Records that the destination committed ids[i] with roots[i] (one durable
 * commit); rcs[i]: 0, or ERR_CONFLICT if it was not frozen.
 */
MUST_CHECK int migrate_out_committed(struct region *r, const char *const *ids,
                                     const uint8_t (*roots)[MIGRATE_ROOT_LEN], size_t n, int *rcs);
/**
 * Crypto-shreds the accounts ids[0..n) (n <= MIGRATE_BATCH_MAX): their keys
 * and consents in the key store first, then every row in the data store,
 * leaving the tombstones and the "migrate.out" audit entries in the same
 * transaction; one durable commit each for all of them. rcs[i]: 0 (shredded,
 * or moved already), or ERR_CONFLICT if it is not MIGRATE_COMMITTED.
 */
MUST_CHECK int migrate_shred(struct region *r, const char *const *ids, size_t n, int *rcs);
/**
 * Adds to b (a batch of the data store) the deletion of the records of moved
 * sessions (tombstones of those that left, marks of those that came) that
 * expired at or before now: a token whose session has ended needs neither
 * (the retention sweeper calls this).
 */
MUST_CHECK int migrate_expire_add(struct store_batch *b, int64_t now);

/* ---- at the destination ------------------------------------------------------ */

/**
 * State of account id here: "none", "receiving" or "live" (*state borrowed
 * static text).
 */
MUST_CHECK int migrate_in_status(struct region *r, const char *id, const char **state);
/**
 * Starts or resumes receiving the accounts described by manifests (an
 * array of 1 to MIGRATE_BATCH_MAX, each naming a different account) from
 * region from: each account under a new account key, its consent ledger
 * with new service keys, its identifiers; each step one commit for them
 * all. Sets states[id] to "receiving", "live" (nothing was done) or
 * "conflict" (it is arriving from another region). ERR_INVAL for a bad
 * manifest.
 */
MUST_CHECK int migrate_in_begin(struct region *r, const char *from, const json_t *manifests,
                                json_t *states);
/** What migrate_in_objects did, per account of the bundle. */
struct migrate_in_result {
    char id[STORE_ID_MAX];
    uint64_t objects;               /* in the bundle */
    bool committed;                 /* the bundle was the last: the account is live here */
    uint64_t total, bytes;          /* committed: the account's objects and bytes */
    uint8_t root[MIGRATE_ROOT_LEN]; /* committed: the agreed root */
};
/**
 * Stores the objects of a bundle: 1 to MIGRATE_BATCH_MAX sections, one per
 * account, each account id NUL, the length of its entries (8 bytes,
 * big-endian), then per object service NUL name NUL size (8 bytes,
 * big-endian) bytes; all of them re-sealed and committed in one durable
 * transaction, with no per-object audit entry. A name already stored is
 * replaced, so a bundle sent again stores nothing twice. An account's last
 * section may end with the entry "" NUL "root" NUL 32 (as a size) and the
 * source's root: then the account's commit follows as migrate_in_commit,
 * and if the section holds the whole account (nothing of it stored before)
 * in the same transaction as the objects, the root being computed from the
 * very bytes sealed. res (MIGRATE_BATCH_MAX of them) gets one result per
 * section, *nres how many. ERR_CONFLICT (nothing stored) if an account is
 * not arriving from `from`, or if a root differs (that account's move then
 * starts again).
 */
MUST_CHECK int migrate_in_objects(struct region *r, const char *from, struct slice bundle,
                                  struct migrate_in_result *res, size_t *nres);
/**
 * Computes the root of what is stored (from the leaves hashed as the
 * objects were sealed, if this process sealed them all and the store holds
 * exactly that many objects and bytes; else by reading them back); if it
 * equals root, makes the account live here (and records "migrate.in"); if
 * not, drops everything received (ERR_CONFLICT: the move starts again).
 * Live already: 0 if the roots agree.
 */
MUST_CHECK int migrate_in_commit(struct region *r, const char *from, const char *id,
                                 const uint8_t root[MIGRATE_ROOT_LEN], uint64_t *objects,
                                 uint64_t *bytes);

#endif
