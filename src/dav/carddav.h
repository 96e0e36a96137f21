/* SPDX-License-Identifier: Apache-2.0 */
/*
 * carddav.h: CardDAV (RFC 6352, with WebDAV sync RFC 6578 and extended
 * MKCOL RFC 5689) on top of the domain: address books and their vCards are
 * the objects of an account's `contacts` service (core/obj.h), so the REST
 * API and CardDAV see one truth, under the same consent, encryption and
 * change feed.
 *
 * URL layout (under CARDDAV_PREFIX, "/dav"):
 *
 *     /dav/                                   the root (current-user-principal)
 *     /dav/principals/<account>/              an account's principal
 *     /dav/addressbooks/<account>/            its address-book home
 *     /dav/addressbooks/<account>/<book>/     an address book
 *     /dav/addressbooks/<account>/<book>/<r>  a vCard: the object "<book>/<r>"
 *
 * The default book `contacts` always exists; more are made with MKCOL and
 * kept as records (kind "davbook": keyed hash of the name -> name and
 * properties sealed under the service key). One UID per book: records
 * "davuid" (keyed hash of book and UID -> the resource name, sealed) and
 * "davres" (keyed hash of book and resource -> the UID's hash), changed in
 * the same transaction as the vCard. The hashes are keyed by a key derived
 * from the service key (obj_view_mac), so turning contacts off shreds them
 * with the data. ETag = the object's etag; sync-token and getctag = the
 * service's change-feed position, prefixed by an id of the service key (a
 * token from before the service was turned off and on is refused).
 *
 * Thread-safety: a struct carddav and what it makes belong to one request
 * (one thread at a time); everything shared is in core.
 */
#ifndef OIKOS_CARDDAV_H
#define OIKOS_CARDDAV_H

#include "base/buf.h"
#include "base/common.h"
#include "core/obj.h"
#include "core/region.h"
#include "dav/dav.h"
#include "store/store.h"

#define CARDDAV_PREFIX "/dav"
#define CARDDAV_SERVICE "contacts"
#define CARDDAV_DEFAULT_BOOK "contacts"
#define CARDDAV_BOOK_MAX 128   /* bytes of a book's name */
#define CARDDAV_RES_MAX 255    /* bytes of a resource's name */
#define CARDDAV_LABEL_MAX 1024 /* bytes of a displayname or description */

enum carddav_kind {
    CARDDAV_ROOT,       /* /dav/ */
    CARDDAV_PRINCIPALS, /* /dav/principals/ */
    CARDDAV_PRINCIPAL,  /* /dav/principals/<account>/ */
    CARDDAV_HOMES,      /* /dav/addressbooks/ */
    CARDDAV_HOME,       /* /dav/addressbooks/<account>/ */
    CARDDAV_BOOK,       /* /dav/addressbooks/<account>/<book>/ */
    CARDDAV_CARD,       /* /dav/addressbooks/<account>/<book>/<res> */
};

struct carddav_path {
    enum carddav_kind kind;
    char account[STORE_ID_MAX];
    char book[CARDDAV_BOOK_MAX + 1];
    char res[CARDDAV_RES_MAX + 1];
};

/**
 * Parses a decoded URL path into p. ERR_NOT_FOUND for a path outside the
 * layout (or with an invalid name in it).
 */
MUST_CHECK int carddav_path_parse(struct carddav_path *p, const char *path);
/** Appends the canonical href (percent-encoded) of p to out. */
MUST_CHECK int carddav_href(struct buf *out, const struct carddav_path *p);
/** Appends the object name "<book>/<res>" of a CARDDAV_CARD path to out. */
MUST_CHECK int carddav_object_name(struct buf *out, const struct carddav_path *p);

struct carddav;

/** A request's CardDAV context for account (authenticated). Caller owns *out. */
MUST_CHECK int carddav_new(struct carddav **out, struct region *r, const char *account);
/** Frees it, wiping what it read. Accepts NULL. */
void carddav_free(struct carddav *c);
/** Why the last call failed, for the error body (never NULL). */
const char *carddav_why(const struct carddav *c);
/**
 * The precondition the last call broke, for a DAV:error body: true with
 * its namespace and name (and an href for no-uid-conflict, else NULL).
 */
bool carddav_cond(const struct carddav *c, const char **ns, const char **name, const char **href);

/**
 * Stores a vCard at a CARDDAV_CARD path, byte-exact, under the conditions
 * of cond. info gets its etag and whether it is new. Errors: ERR_INVAL
 * (not a vCard), ERR_TOO_LARGE, ERR_CONSENT, ERR_NOT_FOUND (no such book),
 * ERR_PRECONDITION, ERR_CONFLICT (its UID is another resource's in the
 * book), ERR_FORBIDDEN (another account's path).
 */
MUST_CHECK int carddav_put(struct carddav *c, const struct carddav_path *p, struct slice vcard,
                           const struct dav_cond *cond, struct obj_info *info);
/** Deletes a vCard (CARDDAV_CARD) or an address book and all its vCards (CARDDAV_BOOK). */
MUST_CHECK int carddav_delete(struct carddav *c, const struct carddav_path *p,
                              const struct dav_cond *cond);
/**
 * Makes the address book of a CARDDAV_BOOK path (rq: an extended MKCOL body,
 * or NULL). ERR_EXISTS if it exists; ERR_FORBIDDEN for another resource
 * type than an address book.
 */
MUST_CHECK int carddav_mkcol(struct carddav *c, const struct carddav_path *p,
                             const struct dav_request *rq);

/** A multistatus answer being produced piece by piece. */
struct carddav_ms;

/**
 * Starts the answer of a PROPFIND (depth 0 or 1; rq NULL or DAV_BODY_NONE
 * for allprop) or a REPORT (addressbook-multiget, addressbook-query,
 * sync-collection). Everything that can refuse the request is checked here
 * (consent, the sync-token, the report's type), before any answer is
 * queued. Takes ownership of rq (freed even on error). c must outlive *out.
 */
MUST_CHECK int carddav_propfind(struct carddav_ms **out, struct carddav *c,
                                const struct carddav_path *p, int depth, struct dav_request *rq);
MUST_CHECK int carddav_report(struct carddav_ms **out, struct carddav *c,
                              const struct carddav_path *p, int depth, struct dav_request *rq);
/**
 * Appends the next part of the answer (about 256 KiB at most, or one card)
 * to out; *done once the document is complete.
 */
MUST_CHECK int carddav_ms_next(struct carddav_ms *m, struct buf *out, bool *done);
/** Frees an answer (and its request). Accepts NULL. */
void carddav_ms_free(struct carddav_ms *m);

#endif
