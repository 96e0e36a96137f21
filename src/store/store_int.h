/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_int.h: what the generic store (store.c) and its back-ends
 * (store_sqlite.c, store_pg.c) and schema.c share, and nothing else includes.
 *
 * A back-end is a versioned table of methods, struct store_ops, and a struct
 * that embeds struct store first, so that a struct store * and the
 * back-end's own pointer are the same address. store.c owns the generic part
 * (queue, writer thread, seq counter, live counters); the back-end owns its
 * connections and everything in them. No SQL string and no back-end type
 * appears here.
 *
 * Thread-safety of the methods: open, close, scan and orphans_delete run on
 * the thread calling store_open/store_close, with no other use of the store.
 * The read methods may run on any number of threads at once, also while the
 * writer is inside a transaction (a back-end gives each reader a consistent
 * snapshot). The txn_*, apply and maintain methods run only on the writer
 * thread; sync runs on the sync thread, concurrently with them.
 */
#ifndef OIKOS_STORE_INT_H
#define OIKOS_STORE_INT_H

#include <pthread.h>

#include "base/common.h"
#include "store/store.h"

/*
 * The version of struct store_ops that this store.c knows. A method added
 * later goes at the end of the struct with a new version number; store.c
 * calls it only if ops->version says the back-end has it (SQLite's
 * sqlite3_vfs.iVersion).
 */
#define STORE_OPS_VERSION 3

/* The most batches the writer applies in one back-end transaction. */
#define STORE_GROUP_MAX 512

/*
 * How far the seqs that readers may have seen can run ahead of the durable
 * ones; after an unclean stop the first seq skips this far (STORE.md).
 */
#define STORE_SEQ_GAP ((int64_t)1 << 20)

/*
 * The owners' index of the audit log is kept in epochs of 2^16 leaves, keyed
 * (epoch, tag, index): the integrator's rounds then write into the pages of
 * the last epoch only, which the writer's cache holds, instead of all over
 * one index of every owner (which cost a page write per entry at a million
 * entries, AUDIT.md). A reader looks an owner up in each epoch in turn.
 * Schema step 40 stored the existing index this way: never change it.
 */
#define STORE_AUDIT_EPOCH_BITS 16

/* The epoch of leaf index in the owners' index. */
static inline int64_t
store_audit_epoch(uint64_t index)
{
    return (int64_t)(index >> STORE_AUDIT_EPOCH_BITS);
}

/* The meta key recording the last seq at a clean close ("" while open). */
#define STORE_SEQ_KEY "store.seq_clean"

/* One step of the schema: applied in order, each recorded with its version. */
struct store_migration {
    int version;     /* 1, 10, 20 ... in increasing order */
    const char *sql; /* portable SQL; statements separated by ';' */
};

/* The schema of every back-end, oldest step first (schema.c). */
extern const struct store_migration store_migrations[];
extern const size_t store_migrations_len;

/* A whole-word replacement a back-end applies to the portable SQL. */
struct store_sql_subst {
    const char *from; /* one word or several, e.g. "BLOB", "INTEGER PRIMARY KEY" */
    const char *to;
};

/**
 * Writes sql into out (reset first) with every whole-word occurrence of each
 * subst[i].from replaced by its .to, the first match winning. ERR_NOMEM or
 * ERR_LIMIT (out's max) on error.
 */
MUST_CHECK int store_schema_sql(const char *sql, const struct store_sql_subst *subst, size_t n,
                                struct buf *out);

enum store_op_kind {
    STORE_OP_META_PUT,
    STORE_OP_ACCOUNT_INSERT,
    STORE_OP_SESSION_INSERT,
    STORE_OP_SESSION_DELETE,
    STORE_OP_SVCKEY_INSERT,
    STORE_OP_OBJECT_PUT,
    STORE_OP_OBJECT_DELETE,
    STORE_OP_CHUNK_PUT,
    STORE_OP_CHUNKS_DELETE,
    STORE_OP_REC_INSERT,
    STORE_OP_REC_PUT,
    STORE_OP_REC_DELETE,
    /* version 2: consent, retention, erasure */
    STORE_OP_CONSENT_PUT,
    STORE_OP_CONSENT_PURGED,
    STORE_OP_SVCKEY_DELETE,
    STORE_OP_SERVICE_PURGE,
    STORE_OP_ACCOUNT_ERASE,
    STORE_OP_ACTIVITY_PUT,
    STORE_OP_PURGE_DONE,
    STORE_OP_ERASURE_PUT,
    STORE_OP_ERASURE_DONE,
    STORE_OP_SESSIONS_EXPIRE,
    STORE_OP_COMPACT,
    /* version 3: the audit log */
    STORE_OP_AUDIT_APPEND,
    STORE_OP_AUDIT_NODES,
    STORE_OP_AUDIT_OWNERS,
    STORE_OP_RECS_EXPIRE,    /* u.rec: kind and val (the bound); account and key empty */
    STORE_OP_RECS_DELETE,    /* u.rec: account and kind; key and val empty */
    STORE_OP_ACCOUNT_RETIRE, /* u.acct: account and n (now) */
};

/*
 * One operation of a batch, holding its own copies. Every string is
 * NUL-terminated and shorter than its array (store.c checks this when the
 * op is appended, so a back-end can rely on it); variable-length bytes
 * (meta values, chunk data) are malloc'd and owned by the op.
 */
struct store_op {
    enum store_op_kind kind;
    union {
        struct {
            char key[STORE_META_KEY_MAX];
            uint8_t *val; /* owned; NULL when len is 0 */
            size_t len;
        } meta;
        struct store_account account;
        struct store_session session;
        uint8_t token_hash[STORE_HASH_LEN]; /* session delete */
        struct {
            char account[STORE_ID_MAX];
            char service[STORE_SERVICE_MAX];
            uint8_t wrapped[STORE_WRAPPED_MAX];
            size_t len;
        } svckey;
        struct store_object object; /* put; seq is set by the writer */
        struct {
            char account[STORE_ID_MAX];
            char service[STORE_SERVICE_MAX];
            uint8_t name_hash[STORE_HASH_LEN];
            int64_t mtime;
            int64_t seq; /* set by the writer */
        } del;
        struct {
            char account[STORE_ID_MAX];
            int64_t version;
            uint32_t idx;
            uint8_t *data; /* owned; NULL when len is 0 */
            size_t len;
        } chunk;
        struct {
            char account[STORE_ID_MAX];
            int64_t version;
        } chunks;
        struct {
            char account[STORE_ID_MAX];
            char kind[STORE_KIND_MAX];
            uint8_t key[STORE_KEY_MAX];
            size_t keylen;
            uint8_t *val; /* owned; NULL when vallen is 0 */
            size_t vallen;
        } rec;
        struct store_consent consent; /* consent_put; generation set by the back-end */
        /*
         * consent_purged (n: generation), svckey_delete, service_purge and
         * account_erase (n: now), activity_put, erasure_put (n: at),
         * purge_done (n: version), erasure_done, sessions_expire (n: now;
         * account empty), compact (nothing). service is "" where unused.
         */
        struct {
            char account[STORE_ID_MAX];
            char service[STORE_SERVICE_MAX];
            int64_t n;
        } acct;
        struct {
            uint8_t *leaf; /* audit_append: owned, len bytes */
            size_t len;
            uint8_t tag[STORE_HASH_LEN];
            bool has_tag;
            uint64_t index; /* set by the writer */
        } audit;
        struct {
            struct store_audit_node *v; /* audit_nodes: owned */
            size_t n;
        } nodes;
        struct {
            struct store_audit_owner *v; /* audit_owners: owned */
            size_t n;
        } owners;
    } u;
};

/* What applying one op changed, for the counters kept by the writer. */
struct store_effect {
    bool replaced;   /* an object put replaced a live object */
    int64_t objects; /* change in the number of live objects */
    int64_t bytes;   /* change in their plaintext bytes */
    uint64_t count;  /* rows (or pages) removed by a purge, erase, expire or compact op */
};

/*
 * The methods of a back-end. Every method returning int returns 0 or an
 * error of err.h, never a back-end code; a back-end logs the detail of a
 * back-end failure itself. Output parameters are left undefined on error.
 */
struct store_ops {
    int version;      /* STORE_OPS_VERSION the back-end was written for */
    const char *name; /* "sqlite", "postgresql" */

    /* --- version 1 --- */

    /**
     * Opens or creates the store at target (what follows the URL scheme),
     * applies missing schema versions, and sets *out to a struct that
     * embeds struct store first, zeroed except for what the back-end
     * uses. store.c fills base. Caller owns *out (close).
     */
    int (*open)(struct store **out, const char *target);
    /** Closes everything and frees s; the writer has stopped. Accepts NULL. */
    void (*close)(struct store *s);
    /** At open: the highest seq stored (0 if none) and the live counters. */
    int (*scan)(struct store *s, int64_t *max_seq, uint64_t *objects, uint64_t *bytes);
    /**
     * At open: deletes every chunk whose (account, version) no live object
     * references (uploads that never committed), and reports how many.
     */
    int (*orphans_delete)(struct store *s, uint64_t *deleted);

    /* Reads: the semantics of the store.h function of the same name. */
    int (*meta_get)(struct store *s, const char *key, struct buf *out);
    int (*account_get)(struct store *s, const char *id, struct store_account *out);
    int (*session_get)(struct store *s, const uint8_t token_hash[STORE_HASH_LEN],
                       struct store_session *out);
    int (*svckey_get)(struct store *s, const char *account, const char *service, uint8_t *out,
                      size_t cap, size_t *outlen);
    int (*object_get)(struct store *s, const char *account, const char *service,
                      const uint8_t name_hash[STORE_HASH_LEN], struct store_object *out);
    int (*chunk_get)(struct store *s, const char *account, int64_t version, uint32_t idx,
                     struct buf *out);
    /**
     * Optional (NULL: store_chunks_read uses chunk_get). Holds what the
     * back-end can of the n chunks of (account, version) in *held;
     * ERR_NOT_FOUND if it has none.
     */
    int (*chunks_hold)(struct store *s, const char *account, int64_t version, uint32_t n,
                       void **held);
    /** Reads chunk idx through held: 1 if held has not got it (chunk_get then). */
    int (*chunks_held_read)(struct store *s, void *held, uint32_t idx, struct buf *out);
    void (*chunks_release)(struct store *s, void *held);
    /** limit is at least 1. */
    int (*feed)(struct store *s, const char *account, const char *service, int64_t since,
                size_t limit, bool data, store_feed_cb cb, void *ctx);
    int (*rec_get)(struct store *s, const char *account, const char *kind, struct slice key,
                   struct buf *out);
    int (*rec_list)(struct store *s, const char *account, const char *kind, store_rec_cb cb,
                    void *ctx);
    int (*rec_find)(struct store *s, const char *kind, struct slice key,
                    char account_out[STORE_ID_MAX]);
    int (*sessions_of)(struct store *s, const char *account, store_session_cb cb, void *ctx);

    /* Writer thread only. */

    /**
     * Starts the transaction of a group. durable: its commit must reach
     * stable storage, together with every commit before it, before it
     * returns and before readers can see it. Otherwise the commit need only
     * survive a crash of the oikos process.
     */
    int (*txn_begin)(struct store *s, bool durable);
    /** Marks the start of one batch inside the transaction. */
    int (*txn_savepoint)(struct store *s);
    /** Undoes everything since the savepoint and drops the savepoint. */
    int (*txn_rollback_to)(struct store *s);
    /** Keeps everything since the savepoint and drops the savepoint. */
    int (*txn_release)(struct store *s);
    /** Commits the group; on error nothing of it is kept. */
    int (*txn_commit)(struct store *s);
    /** Rolls the whole group back. Never fails. */
    void (*txn_abort)(struct store *s);
    /**
     * Applies one op inside the transaction and says what it changed.
     * ERR_EXISTS for an insert whose key is taken, ERR_NOT_FOUND for an
     * object delete without a live object. On error the batch is rolled
     * back to its savepoint by the caller.
     */
    int (*apply)(struct store *s, const struct store_op *op, struct store_effect *eff);
    /**
     * Housekeeping between groups (a checkpoint, say). idle: the queue is
     * empty. May be NULL.
     */
    void (*maintain)(struct store *s, bool idle);
    /**
     * Makes every transaction committed so far durable. Called on the
     * store's sync thread, concurrently with the writer's transactions.
     * If present, store.c commits every group without waiting for stable
     * storage and acknowledges durable batches after a sync, so that one
     * group's sync overlaps the next group's work. May be NULL: then
     * txn_begin(durable) makes the commit itself durable.
     */
    int (*sync)(struct store *s);

    /* --- version 2: consent, retention, erasure --- */

    /*
     * Reads with the semantics of the store.h function of the same name;
     * apply must know the version 2 ops. store.c refuses these calls and
     * ops on a back-end of version 1 with ERR_UNAVAILABLE.
     */
    int (*consent_get)(struct store *s, const char *account, const char *service,
                       struct store_consent *out);
    int (*consents)(struct store *s, const char *account, store_consent_cb cb, void *ctx);
    int (*consent_log)(struct store *s, const char *account, store_consent_cb cb, void *ctx);
    int (*consents_pending)(struct store *s, size_t limit, store_consent_cb cb, void *ctx);
    int (*usage)(struct store *s, const char *account, const char *service, uint64_t *objects,
                 uint64_t *bytes);
    int (*activity_get)(struct store *s, const char *account, int64_t *at);
    int (*accounts_idle)(struct store *s, int64_t before, size_t limit, store_account_cb cb,
                         void *ctx);
    int (*purges)(struct store *s, size_t limit, store_purge_cb cb, void *ctx);
    int (*erasures)(struct store *s, size_t limit, store_account_cb cb, void *ctx);

    /* --- version 3: the audit log --- */

    /*
     * At open: the number of leaves stored (highest index + 1). The reads
     * have the semantics of the store.h functions of the same name (end
     * already clipped, limit at least 1), audit_find and audit_count within
     * one epoch of the owners' index; apply must know the version 3 ops.
     */
    int (*audit_scan)(struct store *s, uint64_t *size);
    int (*audit_leaves)(struct store *s, uint64_t start, uint64_t end, store_audit_cb cb,
                        void *ctx);
    int (*audit_find)(struct store *s, int64_t epoch, const uint8_t tag[STORE_HASH_LEN],
                      uint64_t start, size_t limit, store_audit_cb cb, void *ctx);
    int (*audit_count)(struct store *s, int64_t epoch, const uint8_t tag[STORE_HASH_LEN],
                       uint64_t *n);
    int (*audit_nodes_get)(struct store *s, struct store_audit_node *nodes, size_t n);
};

/*
 * The generic part of every store, embedded first by each back-end. All
 * fields below ops belong to store.c; lock guards every one of them except
 * last_seq (the writer's), and the result fields of queued batches.
 */
struct store {
    const struct store_ops *ops;
    pthread_mutex_t lock;
    pthread_cond_t wake;        /* signalled when a batch is queued or on close */
    struct store_batch *head;   /* queue, oldest first */
    struct store_batch **tailp; /* where the next batch is linked */
    size_t queued;              /* batches in the queue */
    size_t queued_eager;        /* of which not durable: their callers wait for the commit only */
    bool closing;
    bool writer_started;
    pthread_t writer;
    pthread_cond_t sync_wake;      /* signalled when batches await a sync */
    struct store_batch *sync_head; /* committed durable batches awaiting a sync */
    struct store_batch **sync_tailp;
    bool writer_done; /* the writer has exited: the syncer may too */
    bool syncing;     /* the syncer is in ops->sync or waking its callers */
    bool committing;  /* the writer is running a group */
    bool maintaining; /* the writer is in ops->maintain */
    uint64_t groups;  /* groups the writer has run */
    bool syncer_started;
    pthread_t syncer;
    int failed;               /* a sync failed: the disk is in doubt, refuse commits */
    int64_t last_seq;         /* the last seq assigned; writer thread only */
    int64_t committed_seq;    /* the last seq committed */
    uint64_t audit_next;      /* the index of the next audit leaf; writer thread only */
    uint64_t audit_committed; /* audit leaves committed */
    int64_t durable_seq;      /* the last seq known to be on stable storage */
    uint64_t live_objects;    /* committed state */
    uint64_t live_bytes;
};

extern const struct store_ops store_sqlite_ops;
extern const struct store_ops store_pg_ops;

#endif
