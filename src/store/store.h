/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store.h: the only door to persistence. One backend-neutral interface;
 * back-ends (SQLite, PostgreSQL) live behind `struct store_ops` in
 * store_int.h, and no SQL string or back-end type crosses this header.
 *
 * The store holds opaque records for the domain above it: accounts,
 * sessions, wrapped keys, objects (metadata rows), object chunks and a small
 * key/value meta table. It does not interpret any of them: all personal data
 * reaching it is already sealed or hashed by the caller.
 *
 * Reads go straight to the back-end from the calling thread. Writes are
 * collected in a struct store_batch and handed to store_commit(), which
 * queues the batch for the store's single writer thread: it applies several
 * queued batches in one back-end transaction (group commit: many requests,
 * one fsync), each batch all-or-nothing, and wakes each caller with its own
 * result. A durable commit returns only once the data is on stable storage;
 * a durable commit also makes every earlier commit durable.
 *
 * Thread-safety: every function taking a struct store may be called from
 * any thread. A struct store_batch belongs to one thread at a time.
 */
#ifndef OIKOS_STORE_H
#define OIKOS_STORE_H

#include "base/buf.h"
#include "base/common.h"

#define STORE_ID_MAX 64            /* account ids: "<region>-<random>", NUL included */
#define STORE_SERVICE_MAX 16       /* service names, NUL included */
#define STORE_HASH_LEN 32          /* keyed hashes and token hashes */
#define STORE_PWHASH_MAX 160       /* an encoded password hash, NUL included */
#define STORE_WRAPPED_MAX 128      /* a wrapped (sealed) 32-byte key */
#define STORE_NAME_SEALED_MAX 1152 /* a sealed object name (name <= 1024 bytes) */
#define STORE_META_KEY_MAX 64

struct store;
struct store_batch;

struct store_account {
    char id[STORE_ID_MAX];
    char country[4]; /* ISO 3166 alpha-2 */
    char pwhash[STORE_PWHASH_MAX];
    uint8_t wrapped_key[STORE_WRAPPED_MAX]; /* account key sealed under the KEK */
    size_t wrapped_len;
    int64_t created; /* Unix seconds */
};

struct store_session {
    uint8_t token_hash[STORE_HASH_LEN];
    char account[STORE_ID_MAX];
    int64_t created, expires; /* Unix seconds */
};

struct store_object {
    char account[STORE_ID_MAX];
    char service[STORE_SERVICE_MAX];
    uint8_t name_hash[STORE_HASH_LEN];          /* keyed hash of the name */
    uint8_t name_sealed[STORE_NAME_SEALED_MAX]; /* the name, sealed */
    size_t name_sealed_len;
    int64_t version; /* chosen by the caller, unique per account; keys the chunks */
    int64_t seq;     /* assigned by the store at commit: change-feed position */
    uint64_t size;   /* plaintext bytes */
    uint32_t chunks; /* number of chunks 0..chunks-1 */
    int32_t cipher;  /* AEAD in use for the chunks */
    int64_t mtime;   /* Unix seconds */
    bool deleted;    /* a tombstone in the change feed */
    /* in a feed with data: the sealed chunk 0 of a live object of one chunk
     * and at most STORE_FEED_DATA_MAX bytes, borrowed for the callback;
     * otherwise empty (read it with store_chunk_get) */
    struct slice chunk0;
};

/* Opening and closing ---------------------------------------------------- */

/**
 * Opens the store named by url: "sqlite:PATH" or a plain PATH (the SQLite
 * back-end), or "postgresql://..." / "postgres://..." (a libpq URL: the
 * PostgreSQL back-end, an existing database). Creates it if absent and
 * applies every schema version it lacks. Removes chunks left by uploads
 * that never committed. Starts the writer thread. ERR_UNAVAILABLE if
 * another store has it open. On success *out is owned by the caller
 * (store_close).
 */
MUST_CHECK int store_open(struct store **out, const char *url);
/** Drains queued batches, stops the writer, closes the back-end. Accepts NULL. */
void store_close(struct store *s);
/** The back-end's name ("sqlite", "postgresql"). */
const char *store_backend(const struct store *s);

/* Reads ------------------------------------------------------------------- */

/** Reads a meta value into out (reset first). ERR_NOT_FOUND if absent. */
MUST_CHECK int store_meta_get(struct store *s, const char *key, struct buf *out);
/** Reads an account. ERR_NOT_FOUND if absent. */
MUST_CHECK int store_account_get(struct store *s, const char *id, struct store_account *out);
/** Reads a session by token hash. ERR_NOT_FOUND if absent. */
MUST_CHECK int store_session_get(struct store *s, const uint8_t token_hash[STORE_HASH_LEN],
                                 struct store_session *out);
/** Called per session, borrowed for the call; non-zero stops and is returned. */
typedef int (*store_session_cb)(void *ctx, const struct store_session *se);
/** Lists an account's sessions (expired ones too), in token hash order. */
MUST_CHECK int store_sessions_of(struct store *s, const char *account, store_session_cb cb,
                                 void *ctx);
/** Reads the wrapped key of (account, service). ERR_NOT_FOUND if absent. */
MUST_CHECK int store_svckey_get(struct store *s, const char *account, const char *service,
                                uint8_t *out, size_t cap, size_t *outlen);
/** Reads the live object (not a tombstone). ERR_NOT_FOUND if absent or deleted. */
MUST_CHECK int store_object_get(struct store *s, const char *account, const char *service,
                                const uint8_t name_hash[STORE_HASH_LEN], struct store_object *out);
/** Reads chunk idx of an object version into out (reset first). ERR_NOT_FOUND. */
MUST_CHECK int store_chunk_get(struct store *s, const char *account, int64_t version, uint32_t idx,
                               struct buf *out);

/**
 * The chunks of one object version, held for a read that takes a while (a
 * download streams for as long as its client reads). What the open found
 * stays readable through the handle after the version is replaced or
 * deleted, where the back-end can hold it: the SQLite back-end keeps the
 * version's chunk file open (chunks kept in rows, and the PostgreSQL
 * back-end, look each chunk up when it is read, and a version replaced
 * meanwhile reads ERR_NOT_FOUND there).
 */
struct store_chunks;
/**
 * Holds chunks 0..n-1 of (account, version). ERR_NOT_FOUND if the back-end
 * can tell that the version has no chunks (it was replaced or deleted since
 * its object row was read: read the row again).
 */
MUST_CHECK int store_chunks_open(struct store *s, const char *account, int64_t version, uint32_t n,
                                 struct store_chunks **out);
/**
 * Reads chunk idx (< n) into out (reset first). Reads of different chunks
 * of one handle may run at once from different threads.
 */
MUST_CHECK int store_chunks_read(struct store_chunks *c, uint32_t idx, struct buf *out);
/** Lets go of c (NULL is fine). */
void store_chunks_close(struct store_chunks *c);

/**
 * Called once per row of a change feed, in increasing seq order. The object
 * is borrowed for the call. Return non-zero to stop (store_feed returns it).
 */
typedef int (*store_feed_cb)(void *ctx, const struct store_object *obj);
#define STORE_FEED_DATA_MAX 65536 /* plaintext bytes of an object a feed with data carries */
/**
 * Lists objects and tombstones of (account, service) with seq > since, in
 * seq order, at most limit rows. With data, each small object of one chunk
 * comes with that chunk (store_object.chunk0), read in the same snapshot:
 * a caller that reads every object saves a lookup per object. Returns 0,
 * a back-end error, or the callback's non-zero value.
 */
MUST_CHECK int store_feed(struct store *s, const char *account, const char *service, int64_t since,
                          size_t limit, bool data, store_feed_cb cb, void *ctx);
/** Counts live objects and their plaintext bytes in the whole store. */
MUST_CHECK int store_stats(struct store *s, uint64_t *objects, uint64_t *bytes);

/* Records ------------------------------------------------------------------ */

/*
 * Small records of an account: (account, kind, key) -> value, for what the
 * domain keeps beside objects (identifiers, ...). The store does not
 * interpret them; keys are bytes, ordered bytewise.
 */
#define STORE_KIND_MAX 16   /* kind names, NUL included */
#define STORE_KEY_MAX 128   /* record keys */
#define STORE_VAL_MAX 65536 /* record values */

/** Reads a record's value into out (reset first). ERR_NOT_FOUND if absent. */
MUST_CHECK int store_rec_get(struct store *s, const char *account, const char *kind,
                             struct slice key, struct buf *out);
/** Called per record, key and value borrowed for the call; non-zero stops. */
typedef int (*store_rec_cb)(void *ctx, struct slice key, struct slice val);
/** Lists an account's records of a kind in key order. */
MUST_CHECK int store_rec_list(struct store *s, const char *account, const char *kind,
                              store_rec_cb cb, void *ctx);
/**
 * Finds an account holding a record (kind, key): the lowest account id if
 * several do. ERR_NOT_FOUND if none.
 */
MUST_CHECK int store_rec_find(struct store *s, const char *kind, struct slice key,
                              char account_out[STORE_ID_MAX]);

/* Consent, retention, erasure -------------------------------------------- */

#define STORE_POLICY_MAX 32 /* a privacy policy version, NUL included */

/*
 * The owner's consent to one service: its current state (store_consent_get)
 * or one change of it (store_consent_log). A region keeps these beside the
 * service keys, in the store it never snapshots (docs/internals/CONSENT.md).
 */
struct store_consent {
    char account[STORE_ID_MAX];
    char service[STORE_SERVICE_MAX];
    bool granted;
    int64_t at;                    /* Unix seconds of the change */
    char policy[STORE_POLICY_MAX]; /* the privacy policy version it was given under */
    int64_t generation;            /* 1, 2, ...: the changes so far; assigned by the store */
    bool purge_pending;            /* a revocation whose data purge is not done */
};

/** Reads the current consent of (account, service). ERR_NOT_FOUND if never set. */
MUST_CHECK int store_consent_get(struct store *s, const char *account, const char *service,
                                 struct store_consent *out);
/** Called per consent row, borrowed for the call; non-zero stops and is returned. */
typedef int (*store_consent_cb)(void *ctx, const struct store_consent *c);
/** Lists the current consents of an account, in service name order. */
MUST_CHECK int store_consents(struct store *s, const char *account, store_consent_cb cb, void *ctx);
/** Lists every recorded change of an account's consents, oldest first. */
MUST_CHECK int store_consent_log(struct store *s, const char *account, store_consent_cb cb,
                                 void *ctx);
/** Lists at most limit consents, of any account, whose purge_pending is set. */
MUST_CHECK int store_consents_pending(struct store *s, size_t limit, store_consent_cb cb,
                                      void *ctx);
/**
 * Counts the live objects of (account, service) and their plaintext bytes;
 * service NULL: of every service of the account, in one read.
 */
MUST_CHECK int store_usage(struct store *s, const char *account, const char *service,
                           uint64_t *objects, uint64_t *bytes);
/**
 * The later of an account's last recorded activity (store_batch_activity_put)
 * and its creation time. ERR_NOT_FOUND if there is no such account.
 */
MUST_CHECK int store_activity_get(struct store *s, const char *account, int64_t *at);
/** Called per account with a time (its activity, or when erasure was asked). */
typedef int (*store_account_cb)(void *ctx, const char *account, int64_t at);
/**
 * Lists at most limit accounts whose last activity and creation are both
 * before `before`, oldest first, each with the later of the two.
 */
MUST_CHECK int store_accounts_idle(struct store *s, int64_t before, size_t limit,
                                   store_account_cb cb, void *ctx);
/**
 * Called per queued purge: the chunks of (account, version) are to be
 * deleted; version STORE_PURGE_ROWS stands for the object rows an account
 * left (store_batch_account_retire).
 */
typedef int (*store_purge_cb)(void *ctx, const char *account, int64_t version);
/** The queued purge of a retired account's object rows: no object version is 0. */
#define STORE_PURGE_ROWS 0
/** Lists at most limit queued purges (store_batch_service_purge, _account_erase, _retire). */
MUST_CHECK int store_purges(struct store *s, size_t limit, store_purge_cb cb, void *ctx);
/** Lists at most limit accounts whose erasure was asked and not finished. */
MUST_CHECK int store_erasures(struct store *s, size_t limit, store_account_cb cb, void *ctx);

/* Writes ------------------------------------------------------------------ */

/** Makes an empty batch. Caller owns it (store_batch_free). */
MUST_CHECK int store_batch_new(struct store_batch **out);
/** Frees a batch and the copies it holds. Accepts NULL. */
void store_batch_free(struct store_batch *b);

/* Each call appends one operation; the batch copies what it is given. */
MUST_CHECK int store_batch_meta_put(struct store_batch *b, const char *key, struct slice val);
/** Inserts an account; the commit fails with ERR_EXISTS if the id is taken. */
MUST_CHECK int store_batch_account_insert(struct store_batch *b, const struct store_account *a);
MUST_CHECK int store_batch_session_insert(struct store_batch *b, const struct store_session *se);
/** Deletes a session; no error if it does not exist. */
MUST_CHECK int store_batch_session_delete(struct store_batch *b,
                                          const uint8_t token_hash[STORE_HASH_LEN]);
/** Inserts the wrapped key of (account, service); ERR_EXISTS if one is there. */
MUST_CHECK int store_batch_svckey_insert(struct store_batch *b, const char *account,
                                         const char *service, struct slice wrapped);
/**
 * Makes obj the live object of (account, service, name_hash), replacing a
 * live object or tombstone there and deleting the replaced version's chunks.
 * The store assigns obj's seq. The chunks of obj->version must have been
 * written before (same or earlier batch).
 */
MUST_CHECK int store_batch_object_put(struct store_batch *b, const struct store_object *obj);
/**
 * Turns the live object of (account, service, name_hash) into a tombstone
 * (with a new seq and the given mtime) and deletes its chunks. The commit
 * fails with ERR_NOT_FOUND if there is no live object.
 */
MUST_CHECK int store_batch_object_delete(struct store_batch *b, const char *account,
                                         const char *service,
                                         const uint8_t name_hash[STORE_HASH_LEN], int64_t mtime);
/** Writes chunk idx of (account, version); replaces an existing one. */
MUST_CHECK int store_batch_chunk_put(struct store_batch *b, const char *account, int64_t version,
                                     uint32_t idx, struct slice data);
/** Deletes every chunk of (account, version): an upload abandoned midway. */
MUST_CHECK int store_batch_chunks_delete(struct store_batch *b, const char *account,
                                         int64_t version);

/** Inserts a record; the commit fails with ERR_EXISTS if (account, kind, key) is taken. */
MUST_CHECK int store_batch_rec_insert(struct store_batch *b, const char *account, const char *kind,
                                      struct slice key, struct slice val);
/** Inserts or replaces a record. */
MUST_CHECK int store_batch_rec_put(struct store_batch *b, const char *account, const char *kind,
                                   struct slice key, struct slice val);
/** Deletes a record; no error if it does not exist. */
MUST_CHECK int store_batch_rec_delete(struct store_batch *b, const char *account, const char *kind,
                                      struct slice key);

/**
 * Records a change of consent: sets the current state of (c->account,
 * c->service) to c (granted, at, policy, purge_pending), increments its
 * generation and appends the change, with that generation, to the history.
 */
MUST_CHECK int store_batch_consent_put(struct store_batch *b, const struct store_consent *c);
/**
 * Clears purge_pending of (account, service) if its generation is still
 * `generation`; nothing otherwise (a later change owns the flag).
 */
MUST_CHECK int store_batch_consent_purged(struct store_batch *b, const char *account,
                                          const char *service, int64_t generation);
/** Deletes the wrapped key of (account, service); no error if there is none. */
MUST_CHECK int store_batch_svckey_delete(struct store_batch *b, const char *account,
                                         const char *service);
/**
 * Removes every object row of (account, service), tombstones included, and
 * queues the chunks of the live ones for deletion (store_purges). No
 * tombstone is left. store_batch_count() gives the live objects removed.
 */
MUST_CHECK int store_batch_service_purge(struct store_batch *b, const char *account,
                                         const char *service, int64_t now);
/**
 * Removes every row this store keeps for an account: the account, its
 * sessions, service keys, consents and their history, activity, records and
 * object rows (the live objects' chunks queued as by service_purge). A
 * pending erasure mark (store_batch_erasure_put) stays. store_batch_count()
 * gives the live objects removed. No error if there is nothing.
 */
MUST_CHECK int store_batch_account_erase(struct store_batch *b, const char *account, int64_t now);
/**
 * As store_batch_account_erase, except that the account's object rows stay
 * where they are, queued whole (one purge of version STORE_PURGE_ROWS,
 * queued at now) for the sweeper: the cheap erasure of an account whose
 * keys are already gone (it moved to another region). Nothing of it can be
 * read: the rows belong to no account. No error if there is nothing.
 */
MUST_CHECK int store_batch_account_retire(struct store_batch *b, const char *account, int64_t now);
/**
 * Records activity of an account at time at (callers round it); never
 * moves it back, and records nothing for an account that does not exist.
 */
MUST_CHECK int store_batch_activity_put(struct store_batch *b, const char *account, int64_t at);
/**
 * Deletes the chunks of a queued purge and its queue entry. For version
 * STORE_PURGE_ROWS: if a retired account's rows are queued, removes them
 * and queues the chunks of the live ones in their place (at the same
 * time), as store_batch_account_erase does; store_batch_count() gives the
 * live objects removed. Nothing if none are queued, so an account arriving
 * again can first clear what its departure left.
 */
MUST_CHECK int store_batch_purge_done(struct store_batch *b, const char *account, int64_t version);
/** Marks an account's erasure as asked (at), until store_batch_erasure_done. */
MUST_CHECK int store_batch_erasure_put(struct store_batch *b, const char *account, int64_t at);
MUST_CHECK int store_batch_erasure_done(struct store_batch *b, const char *account);
/** Deletes every session that expires at or before now; store_batch_count() says how many. */
MUST_CHECK int store_batch_sessions_expire(struct store_batch *b, int64_t now);
/** Deletes every record of (account, kind). */
MUST_CHECK int store_batch_recs_delete(struct store_batch *b, const char *account,
                                       const char *kind);
/**
 * Deletes every record of kind, of any account, whose value sorts before
 * bound (bytes compared as memcmp, then a shorter value first): with values
 * that are big-endian expiry times of one width, the records expired at
 * bound. store_batch_count() says how many.
 */
MUST_CHECK int store_batch_recs_expire(struct store_batch *b, const char *kind, struct slice bound);
/**
 * Gives the space of deleted rows back to the file system (SQLite: an
 * incremental vacuum, in a database created with auto_vacuum incremental).
 * A back-end whose engine does this by itself does nothing.
 * store_batch_count() gives the pages (or blocks) released.
 */
MUST_CHECK int store_batch_compact(struct store_batch *b);

/**
 * Applies the batch atomically through the writer thread and waits for it.
 * durable: return only once it (and everything committed before) is on
 * stable storage. Returns 0 or the first error; on error nothing of the
 * batch is applied. The batch stays owned by the caller.
 */
MUST_CHECK int store_commit(struct store *s, struct store_batch *b, bool durable);
/**
 * store_commit in two halves, so that the caller can go on while the
 * writer applies the batch: store_submit queues it (or, when the store is
 * closing or failed, or the batch is empty, settles it at once), and
 * store_wait waits for it and returns what store_commit would have. Until
 * store_wait returns the batch belongs to the store; every submitted batch
 * is waited for before it is freed or submitted again.
 */
void store_submit(struct store *s, struct store_batch *b, bool durable);
MUST_CHECK int store_wait(struct store_batch *b);
/** After a successful commit: how many object_put ops replaced a live object. */
unsigned store_batch_replaced(const struct store_batch *b);
/** After a successful commit: the seq assigned to the last object op. */
int64_t store_batch_seq(const struct store_batch *b);
/**
 * After a successful commit: what its purge, erase, sessions_expire and
 * compact ops removed, added up (see each).
 */
uint64_t store_batch_count(const struct store_batch *b);

/* The audit log (store_ops version 3) ------------------------------------- */

/*
 * An append-only list of leaves, opaque bytes each with an optional 32-byte
 * owner tag, and the node hashes of a Merkle tree over them, for
 * src/audit (docs/internals/AUDIT.md). A leaf is appended by a batch op, so
 * it commits or fails with the action it records; the writer numbers the
 * leaves 0, 1, 2 ... in commit order, with no gap (a failed batch gives its
 * numbers back). An append that fails fails its batch with ERR_AUDIT, so
 * the caller can tell that the log refused the entry. The store hashes
 * nothing: nodes are computed and written by the audit module.
 */
#define STORE_AUDIT_LEAF_MAX 4096   /* bytes of one leaf */
#define STORE_AUDIT_NODES_MAX 65536 /* nodes of one store_batch_audit_nodes op */

/** One node of the tree: the root of leaves [index << level, (index + 1) << level). */
struct store_audit_node {
    uint32_t level;
    uint64_t index;
    uint8_t hash[STORE_HASH_LEN];
};

/** The number of leaves committed (and readable): the index the next leaf gets. */
uint64_t store_audit_size(struct store *s);
/**
 * Called per leaf, in index order; leaf and tag (NULL if the leaf has none)
 * borrowed for the call. Non-zero stops.
 */
typedef int (*store_audit_cb)(void *ctx, uint64_t index, struct slice leaf, const uint8_t *tag);
/**
 * Lists the leaves [start, end), end clipped to store_audit_size(). Returns
 * 0, a back-end error or the callback's non-zero value.
 */
MUST_CHECK int store_audit_leaves(struct store *s, uint64_t start, uint64_t end, store_audit_cb cb,
                                  void *ctx);
/**
 * Lists at most limit leaves indexed under owner tag tag (by
 * store_batch_audit_owners), from index start up, in order.
 */
MUST_CHECK int store_audit_find(struct store *s, const uint8_t tag[STORE_HASH_LEN], uint64_t start,
                                size_t limit, store_audit_cb cb, void *ctx);
/** Counts the leaves indexed under owner tag tag. */
MUST_CHECK int store_audit_count(struct store *s, const uint8_t tag[STORE_HASH_LEN], uint64_t *n);
/**
 * Fills the hash of each of the n nodes (level and index set by the
 * caller), in one read transaction. ERR_NOT_FOUND if any is missing.
 */
MUST_CHECK int store_audit_nodes_get(struct store *s, struct store_audit_node *nodes, size_t n);

/** Appends a leaf (1..STORE_AUDIT_LEAF_MAX bytes, copied); tag may be NULL. */
MUST_CHECK int store_batch_audit_append(struct store_batch *b, struct slice leaf,
                                        const uint8_t tag[STORE_HASH_LEN]);
/**
 * Writes n (1..STORE_AUDIT_NODES_MAX) nodes, copied. The commit fails with
 * ERR_EXISTS if one is already there: a node, once written, never changes.
 */
MUST_CHECK int store_batch_audit_nodes(struct store_batch *b, const struct store_audit_node *nodes,
                                       size_t n);
/** An entry of the owners' index: leaf index has owner tag tag. */
struct store_audit_owner {
    uint8_t tag[STORE_HASH_LEN];
    uint64_t index;
};
/**
 * Indexes n (1..STORE_AUDIT_NODES_MAX) leaves by owner tag, copied. The
 * audit module does it when it integrates them, in large batches, so that
 * an append costs one row in order rather than a write into a per-owner
 * index. The index is kept by epoch of 65,536 leaves, then by owner
 * (store_int.h): a batch of recent leaves writes only the last epoch's
 * pages, and store_audit_find and store_audit_count ask each epoch in turn.
 * ERR_EXISTS if one is indexed already.
 */
MUST_CHECK int store_batch_audit_owners(struct store_batch *b, const struct store_audit_owner *v,
                                        size_t n);
/** After a successful commit: the index of the batch's first leaf (-1 if none). */
int64_t store_batch_audit_index(const struct store_batch *b);

#endif
