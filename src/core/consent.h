/* SPDX-License-Identifier: Apache-2.0 */
/*
 * consent.h: the consent ledger of an account: for every service whether
 * its owner turned it on, since when and under which privacy policy
 * version, and the history of every change. Every service is off until its
 * owner turns it on.
 *
 * Turning a service on makes its key (svc.h) in the same key-store
 * transaction as the consent record; turning it off destroys the key in
 * the same transaction as the revocation record (crypto-shredding), then
 * removes the service's object rows from the data store and queues their
 * ciphertext for the retention sweeper. The key store is a store of its
 * own that is never snapshotted with the data (docs/internals/CONSENT.md),
 * so no copy of the data taken before a revocation can be read after it.
 *
 * svc_key() asks consent_allowed() before any data of a service is
 * touched; an upload that finishes after a revocation started is refused
 * (consent_fence_*), so no object of a revoked service survives it.
 *
 * Thread-safety: all functions may be called from any thread.
 */
#ifndef OIKOS_CONSENT_H
#define OIKOS_CONSENT_H

#include "base/common.h"
#include "core/region.h"
#include "store/store.h"

/** The current consent to one service. */
struct consent {
    char service[STORE_SERVICE_MAX];
    bool granted;
    int64_t since;                 /* Unix seconds of the last change; 0 if never set */
    char policy[STORE_POLICY_MAX]; /* policy version of the last change; "" if never set */
};

/** One recorded change of a consent. */
struct consent_change {
    const char *service; /* borrowed for the callback */
    bool granted;
    int64_t at;
    const char *policy;
};

/**
 * Fills out[i] with the consent of svc_names[i] for every service (all off
 * for a new account); *n gets the number of services. out holds
 * SVC_COUNT entries.
 */
MUST_CHECK int consent_list(struct region *r, const char *account, struct consent *out, size_t *n);
/** The consent of one service. ERR_NOT_FOUND for an unknown service. */
MUST_CHECK int consent_get(struct region *r, const char *account, const char *service,
                           struct consent *out);

typedef int (*consent_change_cb)(void *ctx, const struct consent_change *c);
/** Calls cb for every recorded change, oldest first; cb's non-zero stops and is returned. */
MUST_CHECK int consent_history(struct region *r, const char *account, consent_change_cb cb,
                               void *ctx);

/**
 * Turns a service on: records the change (under the configured policy
 * version) and makes the service's key, in one durable key-store
 * transaction; the service starts empty (rows no live key opens, as a
 * restored data store may hold, are purged first). Already on: changes
 * nothing. out gets the resulting state.
 * ERR_NOT_FOUND for an unknown service, ERR_SEALED while sealed.
 */
MUST_CHECK int consent_grant(struct region *r, const char *account, const char *service,
                             struct consent *out);
/**
 * Turns a service off and destroys its data: the revocation record and the
 * deletion of the service key in one durable key-store transaction, then
 * every object row of the service removed in one data-store transaction
 * (*purged gets how many live objects), their ciphertext queued for the
 * sweeper. Already off: purges whatever is left (normally nothing) and
 * records nothing. ERR_NOT_FOUND for an unknown service.
 */
MUST_CHECK int consent_revoke(struct region *r, const char *account, const char *service,
                              uint64_t *purged);
/** 0 if the service is on for the account, ERR_CONSENT if off or never set. */
MUST_CHECK int consent_allowed(struct region *r, const char *account, const char *service);

/**
 * Finishes the data purge of revocations whose purge did not complete (a
 * crash between the two transactions): at most limit of them. *done gets
 * how many were finished. Called by the retention sweeper.
 */
MUST_CHECK int consent_purge_pending(struct region *r, size_t limit, uint64_t *done);

/*
 * The fence between revocations and uploads. A revocation (and an erasure)
 * changes the key store inside consent_fence_revoke_begin/_end; an upload
 * commits its object row inside consent_fence_commit_begin/_end, having
 * checked that the epoch it began in is still current or that its service
 * key is still the live one. Either the upload commits before the
 * revocation's key-store transaction (and the revocation's purge removes
 * it), or it sees the revocation and commits nothing.
 */
/** The current epoch; it moves at every revocation and erasure. */
uint64_t consent_epoch(void);
/** Enters a commit of uploaded data (shared); returns the current epoch. */
uint64_t consent_fence_commit_begin(void);
void consent_fence_commit_end(void);
/** Enters a revocation (exclusive) and moves the epoch. */
void consent_fence_revoke_begin(void);
void consent_fence_revoke_end(void);

#endif
