/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store.h: the only door to persistence. One backend-neutral interface;
 * back-ends (sqlite now, postgres next) live behind `struct store_ops` in
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

#define STORE_ID_MAX 64          /* account ids: "<region>-<random>", NUL included */
#define STORE_SERVICE_MAX 16     /* service names, NUL included */
#define STORE_HASH_LEN 32        /* keyed hashes and token hashes */
#define STORE_PWHASH_MAX 160     /* an encoded password hash, NUL included */
#define STORE_WRAPPED_MAX 128    /* a wrapped (sealed) 32-byte key */
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
    uint8_t name_hash[STORE_HASH_LEN];              /* keyed hash of the name */
    uint8_t name_sealed[STORE_NAME_SEALED_MAX];     /* the name, sealed */
    size_t name_sealed_len;
    int64_t version; /* chosen by the caller, unique per account; keys the chunks */
    int64_t seq;     /* assigned by the store at commit: change-feed position */
    uint64_t size;   /* plaintext bytes */
    uint32_t chunks; /* number of chunks 0..chunks-1 */
    int32_t cipher;  /* AEAD in use for the chunks */
    int64_t mtime;   /* Unix seconds */
    bool deleted;    /* a tombstone in the change feed */
};

/* Opening and closing ---------------------------------------------------- */

/**
 * Opens the store named by url: "sqlite:PATH" or a plain PATH (the SQLite
 * back-end). Creates it if absent and applies every schema version it lacks.
 * Removes chunks left by uploads that never committed. Starts the writer
 * thread. On success *out is owned by the caller (store_close).
 */
MUST_CHECK int store_open(struct store **out, const char *url);
/** Drains queued batches, stops the writer, closes the back-end. Accepts NULL. */
void store_close(struct store *s);
/** The back-end's name ("sqlite"). */
const char *store_backend(const struct store *s);

/* Reads ------------------------------------------------------------------- */

/** Reads a meta value into out (reset first). ERR_NOT_FOUND if absent. */
MUST_CHECK int store_meta_get(struct store *s, const char *key, struct buf *out);
/** Reads an account. ERR_NOT_FOUND if absent. */
MUST_CHECK int store_account_get(struct store *s, const char *id, struct store_account *out);
/** Reads a session by token hash. ERR_NOT_FOUND if absent. */
MUST_CHECK int store_session_get(struct store *s, const uint8_t token_hash[STORE_HASH_LEN],
                                 struct store_session *out);
/** Reads the wrapped key of (account, service). ERR_NOT_FOUND if absent. */
MUST_CHECK int store_svckey_get(struct store *s, const char *account, const char *service,
                                uint8_t *out, size_t cap, size_t *outlen);
/** Reads the live object (not a tombstone). ERR_NOT_FOUND if absent or deleted. */
MUST_CHECK int store_object_get(struct store *s, const char *account, const char *service,
                                const uint8_t name_hash[STORE_HASH_LEN],
                                struct store_object *out);
/** Reads chunk idx of an object version into out (reset first). ERR_NOT_FOUND. */
MUST_CHECK int store_chunk_get(struct store *s, const char *account, int64_t version,
                               uint32_t idx, struct buf *out);

/**
 * Called once per row of a change feed, in increasing seq order. The object
 * is borrowed for the call. Return non-zero to stop (store_feed returns it).
 */
typedef int (*store_feed_cb)(void *ctx, const struct store_object *obj);
/**
 * Lists objects and tombstones of (account, service) with seq > since, in
 * seq order, at most limit rows. Returns 0, a back-end error, or the
 * callback's non-zero value.
 */
MUST_CHECK int store_feed(struct store *s, const char *account, const char *service,
                          int64_t since, size_t limit, store_feed_cb cb, void *ctx);
/** Counts live objects and their plaintext bytes in the whole store. */
MUST_CHECK int store_stats(struct store *s, uint64_t *objects, uint64_t *bytes);

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

/**
 * Applies the batch atomically through the writer thread and waits for it.
 * durable: return only once it (and everything committed before) is on
 * stable storage. Returns 0 or the first error; on error nothing of the
 * batch is applied. The batch stays owned by the caller.
 */
MUST_CHECK int store_commit(struct store *s, struct store_batch *b, bool durable);
/** After a successful commit: how many object_put ops replaced a live object. */
unsigned store_batch_replaced(const struct store_batch *b);
/** After a successful commit: the seq assigned to the last object op. */
int64_t store_batch_seq(const struct store_batch *b);

#endif
