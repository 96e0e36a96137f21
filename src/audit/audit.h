/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit.h: the region's tamper-evident audit log (docs/internals/AUDIT.md):
 * an append-only list of entries, a Merkle tree over them (RFC 6962), and
 * heads signed with the region's audit key (kr_audit_sign), on top of the
 * store (store.h, "the audit log") and the keyring.
 *
 * An entry is one leaf: canonical compact JSON with a fixed key order,
 *
 *   {"v":1,"time":T,"region":"in","actor":"user","action":"data.read",
 *    "account":"<base64 pseudonym>","service":"contacts","object":"<base64>",
 *    "result":"ok"}
 *
 * holding no identifier in clear: the account is a keyed hash of its id
 * (audit_pseudonym), the object a keyed hash of (account, service, name).
 *
 * Appending: the caller adds the entry to the very store batch that
 * carries the action (audit_add) and commits it with audit_commit, so the
 * entry and the action commit together or not at all; the store numbers
 * leaves in commit order. A thread of this module then integrates the new
 * leaves: it hashes them, writes the tree's new nodes and a head signed over
 * the new size in one durable commit, and only then publishes the head.
 * A proof of any size costs O(log n) node reads.
 *
 * Reads serve only what a published head covers, so nothing a client sees
 * can vanish in a power cut. Heads are kept in the store: the log is served
 * while the region is sealed, from the last signed head.
 *
 * Thread-safety: every function may be called from any thread; audit_close
 * must be the last call.
 */
#ifndef OIKOS_AUDIT_H
#define OIKOS_AUDIT_H

#include "audit/checkpoint.h"
#include "audit/merkle.h"
#include "base/buf.h"
#include "base/common.h"
#include "store/store.h"

struct audit;
struct kr;

#define AUDIT_HASH_LEN 32
#define AUDIT_PAGE_MAX 1000 /* entries in one answer */
#define AUDIT_B64_LEN 45    /* a hash in standard base64, NUL included */

/** Writes h (AUDIT_HASH_LEN bytes) in standard base64 into out, as entries show it. */
void audit_b64(char out[AUDIT_B64_LEN], const uint8_t *h);

enum audit_actor {
    AUDIT_USER,     /* the account's owner, with their credentials */
    AUDIT_OPERATOR, /* a custodian or operator of the region */
    AUDIT_PEER,     /* another region (migration) */
    AUDIT_SYSTEM,   /* the region itself (retention, sweeper) */
};

/** What happened; every string borrowed for the call. */
struct audit_event {
    enum audit_actor actor;
    const char *action;    /* "data.read", "consent.grant", ...: [a-z0-9._] */
    const char *account;   /* the account concerned (written as its pseudonym), or NULL */
    const char *service;   /* the service concerned, or NULL */
    const uint8_t *object; /* AUDIT_HASH_LEN bytes from audit_object_hash, or NULL */
    int result;            /* 0, or the error the action ended with */
};

/**
 * Opens the log of a region over store s and keyring kr (both borrowed
 * until audit_close), loads the last signed head and checks that the
 * stored tree still gives its root (if not, the log refuses to sign and
 * says why in audit_status), and starts the integrating thread. region is
 * copied. Caller owns *out.
 */
MUST_CHECK int audit_open(struct audit **out, struct store *s, struct kr *kr, const char *region);
/** Stops the thread and frees the log. Accepts NULL. */
void audit_close(struct audit *a);

/** The pseudonym of an account: HMAC under the identifier pepper. ERR_SEALED. */
MUST_CHECK int audit_pseudonym(struct audit *a, const char *account, uint8_t out[AUDIT_HASH_LEN]);
/**
 * The hash an entry gives for an object, from what identifies it to its
 * domain (the object's keyed name hash, which binds account, service and
 * name): HMAC under the identifier pepper again, so that the log cannot be
 * joined with the store's rows. ERR_SEALED.
 */
MUST_CHECK int audit_object_hash(struct audit *a, uint8_t out[AUDIT_HASH_LEN], struct slice id);

/**
 * Adds the entry of ev to batch b (which the caller then commits with
 * audit_commit). ERR_INVAL for a malformed event, ERR_SEALED if an account
 * is given while sealed.
 */
MUST_CHECK int audit_add(struct audit *a, struct store_batch *b, const struct audit_event *ev);
/**
 * store_commit for a batch holding entries. If the store refused an entry
 * or failed (ERR_AUDIT, ERR_IO: nothing of the batch happened) it counts
 * the failure for /metrics and health and returns ERR_AUDIT; other errors
 * (ERR_EXISTS, ERR_NOT_FOUND ...) are the action's own. On success it wakes
 * the integrating thread.
 */
MUST_CHECK int audit_commit(struct audit *a, struct store_batch *b, bool durable);
/** Appends one entry in a batch of its own (audit_add + audit_commit). */
MUST_CHECK int audit_record(struct audit *a, const struct audit_event *ev, bool durable);

/**
 * Integrates every committed leaf now and publishes the signed head, on the
 * calling thread (seal uses it to sign its own entry before the key goes).
 * ERR_SEALED while sealed; ERR_CORRUPT if the stored log is inconsistent.
 */
MUST_CHECK int audit_integrate(struct audit *a);

/** A signed head, as published. */
struct audit_head {
    struct checkpoint cp; /* origin, size, root, timestamp */
    uint8_t sig[CHECKPOINT_SIG_LEN];
    uint8_t pk[CHECKPOINT_PUBKEY_LEN];
};

/** The last published head. ERR_NOT_FOUND before the first one. */
MUST_CHECK int audit_head(struct audit *a, struct audit_head *out);

/**
 * Lists entries [start, end) of the published tree (end clipped to its
 * size, at most AUDIT_PAGE_MAX). ERR_INVAL if start is past the size.
 */
MUST_CHECK int audit_entries(struct audit *a, uint64_t start, uint64_t end, store_audit_cb cb,
                             void *ctx);
/**
 * Lists at most limit (<= AUDIT_PAGE_MAX) entries of an account from index
 * start up, within the published tree. *pseudonym gets the account's.
 */
MUST_CHECK int audit_mine(struct audit *a, const char *account, uint64_t start, size_t limit,
                          store_audit_cb cb, void *ctx, uint8_t pseudonym[AUDIT_HASH_LEN]);
/** Counts an account's entries in the published tree. */
MUST_CHECK int audit_count(struct audit *a, const char *account, uint64_t *n);

/**
 * The inclusion proof of leaf index in the tree of size leaves; size at most
 * the published head's. ERR_INVAL otherwise.
 */
MUST_CHECK int audit_inclusion(struct audit *a, uint64_t index, uint64_t size,
                               struct merkle_hash proof[MERKLE_MAX_PROOF], size_t *n);
/** The consistency proof between sizes m and n (0 < m <= n <= published size). */
MUST_CHECK int audit_consistency(struct audit *a, uint64_t m, uint64_t n,
                                 struct merkle_hash proof[MERKLE_MAX_PROOF], size_t *len);

/** How the log is doing, for /metrics and health. */
struct audit_status {
    bool ok;                  /* appending, integrating and signing all work */
    char error[160];          /* why not, "" when ok */
    int64_t error_at;         /* when it last failed (Unix seconds), 0 if never */
    uint64_t tree_size;       /* the published head's size */
    int64_t head_time;        /* its timestamp, 0 if none */
    uint64_t leaves;          /* leaves committed */
    uint64_t append_failures; /* entries the store refused (their actions failed) */
    uint64_t integrate_failures;
};

void audit_status(struct audit *a, struct audit_status *out);

#endif
