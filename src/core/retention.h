/* SPDX-License-Identifier: Apache-2.0 */
/*
 * retention.h: how long each kind of data is kept, and the sweeper that
 * enforces it. The rules are one declarative table (retention_rules), their
 * durations options of the configuration (retention-*). The sweeper is a
 * thread of oikosd that runs retention_sweep() periodically; tests run one
 * pass synchronously with a fake clock (base/util.h clock_set_fake).
 *
 * It also holds the account-wide erasure (DELETE /v1/me, and idle
 * accounts): every key of the account shredded in one key-store
 * transaction, then every row of it removed, its ciphertext queued for the
 * sweeper. And the coarse activity record that the idle rule reads: one
 * write per account and day at most, rounded up to the end of the day, so
 * that an account is never erased before its time and the store holds no
 * finer trace of when its owner was there.
 *
 * Thread-safety: every function may be called from any thread;
 * retention_start/stop from one thread.
 */
#ifndef OIKOS_RETENTION_H
#define OIKOS_RETENTION_H

#include "base/common.h"
#include "core/region.h"

/** One rule: what it applies to, how long it is kept, by which option. */
struct retention_rule {
    const char *kind;    /* "backup", "revoked", ... */
    const char *applies; /* what data, in words */
    const char *keep;    /* for how long, in words */
    const char *option;  /* the configuration option that sets it, or NULL */
};

extern const struct retention_rule retention_rules[];
extern const size_t retention_nrules;

/** What one pass did. */
struct retention_stats {
    uint64_t erasures;    /* account erasures finished (asked before, or idle) */
    uint64_t idle;        /* accounts erased for inactivity */
    uint64_t revocations; /* revocation purges finished after an interruption */
    uint64_t sessions;    /* expired sessions deleted */
    uint64_t purged;      /* object versions whose ciphertext was deleted */
    uint64_t messages;    /* relayed messages deleted (none until the relay exists) */
    uint64_t pages;       /* store pages given back to the file system */
};

enum {
    RETENTION_QUICK = 1, /* erasures, revocations, the purge queue, compaction */
    RETENTION_SLOW = 2,  /* idle accounts, expired sessions: table scans */
    RETENTION_ALL = RETENTION_QUICK | RETENTION_SLOW,
};

/**
 * Runs one pass of the rules in `what` at clock_now(), synchronously, and
 * returns once everything due is done (the purge queue emptied). st may be
 * NULL. Works sealed: no rule needs a key.
 */
MUST_CHECK int retention_sweep(struct region *r, unsigned what, struct retention_stats *st);

struct retention;
/**
 * Starts the sweeper thread of region r (borrowed until retention_stop):
 * a quick pass at least every retention-purge / 4 (at most a minute apart),
 * a full one every hour. Caller owns *out.
 */
MUST_CHECK int retention_start(struct retention **out, struct region *r);
/** Stops the sweeper (waiting for a pass under way) and frees it. Accepts NULL. */
void retention_stop(struct retention *sw);
/**
 * Asks the process's sweeper, if one runs, for a quick pass soon: called
 * after a revocation, an erasure or an account's move so that their
 * ciphertext goes within a second rather than within retention-purge. The
 * pass starts once no kick has come for half a second (or at the periodic
 * pass), so that a run of them (a country's accounts moving away, batch
 * after batch) is swept in one pass after it rather than in one pass per
 * kick beside it.
 */
void retention_kick(void);
/** Object versions whose ciphertext this process's sweeps deleted (oikos_purged_versions_total). */
uint64_t retention_purged_total(void);

/** The activity time recorded for `now`: the last second of its UTC day. */
int64_t retention_day(int64_t now);
/**
 * Records that an account was used now, at most once a day per account
 * (an in-memory filter keeps the others from reaching the store). Best
 * effort: a failure is logged, never returned.
 */
void retention_touch(struct region *r, const char *account);
/**
 * When the idle-account rule would erase the account if it stays unused:
 * its last activity plus retention-idle-account. ERR_NOT_FOUND.
 */
MUST_CHECK int retention_idle_deadline(struct region *r, const char *account, int64_t *at);

/**
 * Erases an account: its service keys, consents and their history go in
 * one durable key-store transaction (with a mark that the erasure is under
 * way), then the account, its sessions, activity, records and object rows
 * in one durable data-store transaction, the ciphertext queued for the
 * sweeper. *objects (may be NULL) gets the live objects removed. If the
 * second step fails, the sweeper finishes it. Works sealed.
 */
MUST_CHECK int retention_erase_account(struct region *r, const char *account, uint64_t *objects);

#endif
