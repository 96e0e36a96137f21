/* SPDX-License-Identifier: Apache-2.0 */
/*
 * trail.h: the domain's side of the audit log (audit/audit.h): the entries
 * that accounts, sessions, objects, consents and retention append, built
 * from what the domain knows, so that each hook in acct.c, obj.c and the
 * others is one call. An entry of an action that changes the store rides in
 * the action's own batch (trail_add, then trail_commit instead of
 * store_commit); a read appends its entry before any byte of the data goes
 * out (trail_record), durably, and fails the read if it cannot.
 *
 * Thread-safety: every function may be called from any thread.
 */
#ifndef OIKOS_TRAIL_H
#define OIKOS_TRAIL_H

#include "audit/audit.h"
#include "base/common.h"
#include "core/region.h"
#include "store/store.h"

/** What an entry is about; NULL fields are left empty in the entry. */
struct trail {
    enum audit_actor actor;
    const char *action;         /* "data.read", ... (AUDIT.md lists them) */
    const char *account;        /* written as its pseudonym */
    const char *service;        /* a service name */
    const uint8_t *object_hash; /* the object's keyed name hash (obj.c), STORE_HASH_LEN bytes */
    int result;                 /* 0 or the error the action ended with */
};

/** Adds the entry of t to batch b, which the caller commits with trail_commit. */
MUST_CHECK int trail_add(struct region *r, struct store_batch *b, const struct trail *t);
/**
 * Commits b (holding entries) to the region's data store. ERR_AUDIT if the
 * entry could not be stored: nothing of b happened.
 */
MUST_CHECK int trail_commit(struct region *r, struct store_batch *b, bool durable);
/** Appends the entry of t in a batch of its own. */
MUST_CHECK int trail_record(struct region *r, const struct trail *t, bool durable);
/**
 * Records a refused action (t->result set) where the refusal tells the
 * owner something (a service that is off, a wrong password): best effort,
 * not durable; a failure is logged, never returned.
 */
void trail_refused(struct region *r, const struct trail *t);

#endif
