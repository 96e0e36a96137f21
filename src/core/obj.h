/* SPDX-License-Identifier: Apache-2.0 */
/*
 * obj.h: an account's backed-up objects. An object is named by any UTF-8
 * string of 1..1024 bytes within a service; the store sees only the name's
 * keyed hash and the name sealed under the service key. The bytes are sealed
 * in chunks (AEAD, AAD binding account, service, name hash, version, chunk
 * index and a last-chunk flag), so no chunk can be swapped, replayed or cut
 * off unnoticed. Uploads and downloads stream chunk by chunk: memory stays
 * flat whatever the object's size.
 *
 * Every access gets its service key from svc_key(), where consent is
 * enforced. A write is acknowledged (obj_put_finish returns) only once it is
 * durable.
 *
 * Thread-safety: functions may be called from any thread; a struct obj_put
 * or obj_get belongs to one thread at a time.
 */
#ifndef OIKOS_OBJ_H
#define OIKOS_OBJ_H

#include "base/common.h"
#include "core/region.h"

#define OBJ_NAME_MAX 1024
#define OBJ_ETAG_LEN 16                  /* hex digits */
#define OBJ_CHUNK_MAX (16 * 1024 * 1024) /* the largest chunk-bytes setting */

struct obj_put;
struct obj_get;
struct obj_view;
struct store_batch;

struct obj_info {
    char etag[OBJ_ETAG_LEN + 1]; /* changes with every write of the object */
    int64_t seq;                 /* change-feed position of the write */
    uint64_t size;
    int64_t mtime;
    bool created; /* obj_put_finish: new (true) or replaced (false) */
};

struct obj_item {
    const char *name; /* borrowed for the callback */
    size_t namelen;
    char etag[OBJ_ETAG_LEN + 1];
    uint64_t size;
    int64_t seq;
    bool deleted;
};

/** True if name is 1..OBJ_NAME_MAX bytes of valid UTF-8 without NUL. */
bool obj_name_valid(const char *name, size_t len);

/**
 * Starts writing (account, service, name). size is the announced length
 * (ERR_TOO_LARGE above the region's limit) or UINT64_MAX if unknown.
 * ERR_INVAL for a bad name, ERR_NOT_FOUND for an unknown service,
 * ERR_CONSENT if the service is off. Caller owns *out: finish or free it.
 */
MUST_CHECK int obj_put_begin(struct obj_put **out, struct region *r, const char *account,
                             const char *service, const char *name, size_t namelen, uint64_t size);
/** Adds bytes; full chunks are sealed and staged. ERR_TOO_LARGE past the limit. */
MUST_CHECK int obj_put_write(struct obj_put *p, const uint8_t *data, size_t len);
/**
 * Seals the last chunk and commits the object durably. ERR_INVAL if fewer
 * bytes came than announced. info gets the result. The writer must still be
 * freed.
 */
MUST_CHECK int obj_put_finish(struct obj_put *p, struct obj_info *info);
/** Appends the caller's operations to a batch that is about to be committed. */
typedef int (*obj_batch_cb)(void *ctx, struct store_batch *b);
/**
 * obj_put_finish, with ops called on the final batch before it commits, so
 * that records kept beside the object (an index) change in the same
 * transaction as the object. An error from ops fails the put.
 */
MUST_CHECK int obj_put_finish_ops(struct obj_put *p, struct obj_info *info, obj_batch_cb ops,
                                  void *ctx);
/** Frees a writer; an unfinished upload's staged chunks are deleted. Accepts NULL. */
void obj_put_free(struct obj_put *p);

/**
 * Opens the live object for reading; info gets its size and etag. The
 * first chunk is opened here, so that data that does not authenticate
 * (ERR_CRYPTO, ERR_CORRUPT) fails before any byte is handed out.
 * ERR_NOT_FOUND if absent, ERR_CONSENT if the service is off. Caller owns
 * *out (obj_get_free).
 */
MUST_CHECK int obj_get_open(struct obj_get **out, struct region *r, const char *account,
                            const char *service, const char *name, size_t namelen,
                            struct obj_info *info);
/**
 * Reads the next bytes, at most cap, into dst; *n = 0 at the end.
 * ERR_CRYPTO or ERR_CORRUPT if stored data was altered.
 */
MUST_CHECK int obj_get_read(struct obj_get *g, uint8_t *dst, size_t cap, size_t *n);
void obj_get_free(struct obj_get *g);

/** Deletes an object (a tombstone stays in the change feed). ERR_NOT_FOUND. */
MUST_CHECK int obj_delete(struct region *r, const char *account, const char *service,
                          const char *name, size_t namelen);

typedef int (*obj_feed_cb)(void *ctx, const struct obj_item *it);
/**
 * Lists what changed in (account, service) after position since, in order,
 * at most limit items; *last gets the position of the last item listed (or
 * since), *more whether more remain. A service that holds nothing lists
 * nothing.
 */
MUST_CHECK int obj_feed(struct region *r, const char *account, const char *service, int64_t since,
                        size_t limit, obj_feed_cb cb, void *ctx, int64_t *last, bool *more);

/* Views: many objects of one service in one request ---------------------- */

/*
 * A view reads many objects of one (account, service) with one service key
 * (CardDAV answers a multiget of thousands of cards in one request), lists
 * the change feed, deletes objects in one transaction, and seals small
 * metadata or makes keyed hashes under the service key, which therefore die
 * with it when the owner turns the service off (crypto-shredding covers
 * them too). Consent is checked once, when the view opens (svc_key). The
 * audit log gets one "data.list" entry at the view's first listing and one
 * "data.read" entry at its first data read (service-wide: one request),
 * each durable before anything is returned; deletes get one "data.delete"
 * entry per object in their own batch. A view belongs to one thread.
 */

/**
 * Opens a view of (account, service). ERR_CONSENT if the service is off,
 * ERR_NOT_FOUND for an unknown service, ERR_SEALED. Caller owns *out
 * (obj_view_free).
 */
MUST_CHECK int obj_view_open(struct obj_view **out, struct region *r, const char *account,
                             const char *service);
/** Wipes the keys and frees the view. Accepts NULL. */
void obj_view_free(struct obj_view *v);
/** The live object's etag, seq and size (no data read). ERR_NOT_FOUND. */
MUST_CHECK int obj_view_stat(struct obj_view *v, const char *name, size_t namelen,
                             struct obj_info *info);
/**
 * Reads the whole live object into out (reset first). ERR_NOT_FOUND if
 * absent; ERR_LIMIT if larger than out's max; ERR_CRYPTO or ERR_CORRUPT if
 * altered.
 */
MUST_CHECK int obj_view_get(struct obj_view *v, const char *name, size_t namelen, struct buf *out,
                            struct obj_info *info);
/**
 * The change feed, as obj_feed. Inside cb, obj_view_data reads the bytes of
 * the item being listed (a live one); with data, the listing brings the
 * stored bytes of small objects along (store_feed), for a cb that reads
 * most items. If cb returns non-zero the listing stops and that value is
 * returned, with *last the position of the item cb stopped at, so that a
 * caller can pause after a page of output.
 */
MUST_CHECK int obj_view_feed(struct obj_view *v, int64_t since, size_t limit, bool data,
                             obj_feed_cb cb, void *ctx, int64_t *last, bool *more);
/**
 * Reads the object being listed by obj_view_feed into out (reset first).
 * ERR_CONFLICT if it was replaced or deleted since the feed read its row
 * (a later feed lists it again); otherwise as obj_view_get.
 */
MUST_CHECK int obj_view_data(struct obj_view *v, struct buf *out);
/** The last change-feed position of the service (0 if nothing was ever stored). */
MUST_CHECK int obj_view_last(struct obj_view *v, int64_t *seq);
/** A keyed hash (32 bytes) of msg under a key derived from the service key. */
MUST_CHECK int obj_view_mac(struct obj_view *v, uint8_t out[32], struct slice msg);
/** Seals plain under the service key, bound to label, into out (reset first). */
MUST_CHECK int obj_view_seal(struct obj_view *v, struct buf *out, const char *label,
                             struct slice plain);
/** Opens what obj_view_seal made with the same label. ERR_CRYPTO if it does not open. */
MUST_CHECK int obj_view_unseal(struct obj_view *v, struct buf *out, const char *label,
                               struct slice sealed);
/**
 * Writes a whole object from memory with the view's key, and whatever ops
 * adds to its batch, in one durable transaction: obj_put_begin, _write and
 * _finish_ops without fetching the service key again. A revocation since the
 * view opened fails it with ERR_CONSENT, as for any upload.
 */
MUST_CHECK int obj_view_put(struct obj_view *v, const char *name, size_t namelen, struct slice data,
                            obj_batch_cb ops, void *ctx, struct obj_info *info);
/**
 * Deletes the live objects names[0..n) (tombstones stay in the feed) and
 * whatever ops adds, in one durable transaction. ERR_NOT_FOUND (nothing
 * deleted) if one of them is not there.
 */
MUST_CHECK int obj_view_delete(struct obj_view *v, const struct slice *names, size_t n,
                               obj_batch_cb ops, void *ctx);
/**
 * Marks a view as used by the region itself for an action that has its own
 * audit entry (moving an account: "migrate.out" / "migrate.in", with the
 * root of every object read), so that the view adds no "data.list" or
 * "data.read" entry: those would name the owner as the reader.
 */
void obj_view_unaudited(struct obj_view *v);

/* Imports: re-sealing many objects of an account in one commit ----------- */

/*
 * An import seals whole objects of one or more accounts under the region's
 * service keys (each fetched once, with consent checked by svc_key) into one
 * batch, and commits them all in ONE durable transaction, inside the consent
 * fence as an upload's commit. No per-object audit entry: an import is a
 * move (core/migrate.c), recorded once per account with the root of its
 * objects. A name already stored is replaced. An import belongs to one
 * thread.
 */
struct obj_import;

/** Starts an import into account. Caller owns *out (obj_import_free). */
MUST_CHECK int obj_import_new(struct obj_import **out, struct region *r, const char *account);
/**
 * Objects added from now on go to account (another one than those begun
 * before: ERR_INVAL for an account twice).
 */
MUST_CHECK int obj_import_account(struct obj_import *im, const char *account);
/**
 * Seals (service, name, data) into the import's batch, for the account
 * begun last. ERR_INVAL for a bad
 * name, ERR_NOT_FOUND for an unknown service, ERR_CONSENT if it is off,
 * ERR_TOO_LARGE above the region's object limit.
 */
MUST_CHECK int obj_import_add(struct obj_import *im, const char *service, const char *name,
                              size_t namelen, struct slice data);
/**
 * Commits everything added, durably, with whatever ops adds to the batch.
 * ERR_CONSENT (nothing committed) if a service used, of any of its
 * accounts, was turned off (or off and on again) since its key was taken.
 */
MUST_CHECK int obj_import_commit(struct obj_import *im, obj_batch_cb ops, void *ctx);
/** Wipes the keys and frees the import. Accepts NULL. */
void obj_import_free(struct obj_import *im);

#endif
