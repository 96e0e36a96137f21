/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http_int.h: what the server's files share: the per-request state, the
 * route table's shape, reply helpers and metrics. Only src/http includes it.
 */
#ifndef OIKOS_HTTP_INT_H
#define OIKOS_HTTP_INT_H

#include <jansson.h>
#include <microhttpd.h>

#include "base/buf.h"
#include "base/common.h"
#include "core/obj.h"
#include "core/region.h"
#include "store/store.h"

struct req;

/* Body bytes read and thrown away after a failed upload before the
 * connection is closed instead of answered. */
#define HTTP_DISCARD_MAX (4u << 20)
/* at shutdown, an upload whose bytes stopped coming this long is cut */
#define HTTP_STALL_NS (2000000000ull)

enum route_flags {
    R_SEALED_OK = 1 << 0, /* served while sealed */
    R_USER = 1 << 1,      /* needs a user's bearer token */
    R_OPERATOR = 1 << 2,  /* needs the operator token */
    R_JSON = 1 << 3,      /* the body is JSON, parsed before handle() */
    R_STREAM = 1 << 4,    /* the body is streamed to body() */
    R_BASIC = 1 << 5,     /* CardDAV: HTTP Basic, checked by begin(); a 401 asks for it */
};

struct route {
    const char *method;
    const char *path; /* exact path, or prefix when it ends with '/' */
    const char *label;
    unsigned flags;
    /* after authentication, before any body: e.g. open an upload */
    int (*begin)(struct req *q);
    /* R_STREAM: a piece of the body */
    int (*body)(struct req *q, const uint8_t *data, size_t len);
    /* the whole request is in: queue the answer (or return an error) */
    int (*handle)(struct req *q);
};

struct http_server {
    struct MHD_Daemon *mhd;
    struct region *region;
    uint16_t port;
    _Atomic long active;         /* requests in flight */
    _Atomic long receiving;      /* of those, still receiving their body */
    _Atomic uint64_t body_bytes; /* request body bytes received, ever */
};

struct req {
    struct http_server *srv;
    struct region *region;
    struct MHD_Connection *conn;
    const struct route *route;
    size_t route_idx;
    uint64_t start_ns;
    unsigned status;     /* status of the queued answer, 0 until then */
    int deferred;        /* an error found early, answered at the next call */
    bool receiving;      /* counted in srv->receiving */
    const char *errmsg;  /* a specific message for the error answer */
    int64_t retry_after; /* seconds, for 429 and 503 */
    uint64_t discarded;  /* body bytes thrown away after an error */
    struct buf body;     /* R_JSON */
    json_t *json;
    uint64_t content_length; /* UINT64_MAX if not given */
    char account[STORE_ID_MAX];
    const char *token; /* borrowed from the connection's headers */
    char service[STORE_SERVICE_MAX];
    const char *name; /* borrowed from the url: the object name */
    size_t namelen;
    struct obj_put *put;
    char *url;                             /* the request's path, as libmicrohttpd decoded it */
    char redirect_region[REGION_NAME_MAX]; /* ERR_WRONG_REGION: where to */
    char redirect_url[REGION_URL_MAX];
    unsigned write_slot; /* migrate_write_enter's slot of a user's write, 0 if none */
};

/* Answers; each returns 0 or an error (which the caller reports). */
MUST_CHECK int http_reply_json(struct req *q, unsigned status, json_t *body);
MUST_CHECK int http_reply_empty(struct req *q, unsigned status);
MUST_CHECK int http_reply_text(struct req *q, unsigned status, const char *ctype, struct buf *body);
/** Queues the error answer of err with the API's JSON body. */
void http_reply_error(struct req *q, int err);
/** Maps an error code to its HTTP status (one table). */
unsigned http_status_of(int err);
/** A request header, or NULL. */
const char *http_header(struct req *q, const char *name);
/** A query argument, or NULL. */
const char *http_query(struct req *q, const char *name);
/** Objects up to this size are sent whole (http_object_response). */
#define HTTP_OBJECT_WHOLE (16 * 1024)
/**
 * The response carrying an opened object of size bytes; takes g (freed
 * here, or by the response). Up to HTTP_OBJECT_WHOLE bytes the object is
 * read and opened whole first and sent from a buffer (wiped afterwards) in
 * one write with the headers, so a bad chunk fails the request (*rc,
 * ERR_CORRUPT) rather than cutting a body short; a larger one is streamed
 * in blocks of at most block bytes (libmicrohttpd allocates and clears a
 * block per response). NULL with *rc set on failure.
 */
struct MHD_Response *http_object_response(struct obj_get *g, uint64_t size, size_t block, int *rc);

/** Sets a specific error message and returns err (for `return http_fail(...)`). */
int http_fail(struct req *q, int err, const char *msg);
/**
 * Turns the result of a region_home/region_route lookup into the request's
 * answer: ERR_WRONG_REGION keeps name and url for the 308 (the request is
 * then answered with a redirect and nothing of it is kept); other errors
 * pass through.
 */
int http_redirect(struct req *q, int rc, const char *name, const char *url);

/* Handlers, one file per resource. */
int api_health(struct req *q);
int api_init(struct req *q);
int api_unseal(struct req *q);
int api_seal(struct req *q);
int api_metrics(struct req *q);
int api_signup(struct req *q);
int api_login(struct req *q);
int api_logout(struct req *q);
int api_data_put_begin(struct req *q);
int api_data_put_body(struct req *q, const uint8_t *data, size_t len);
int api_data_put(struct req *q);
int api_data_get(struct req *q);
int api_data_delete(struct req *q);
int api_data_feed(struct req *q);
int api_consents_list(struct req *q);
int api_consent_put(struct req *q);
int api_consent_delete(struct req *q);
int api_report(struct req *q);
int api_export(struct req *q);
int api_erase(struct req *q);
int api_ident_add(struct req *q);
int api_ident_list(struct req *q);
int api_audit_head(struct req *q);
int api_audit_checkpoint(struct req *q);
int api_audit_entries(struct req *q);
int api_audit_inclusion(struct req *q);
int api_audit_consistency(struct req *q);
int api_me_audit(struct req *q);
/* Moving accounts between regions (api_peer.c). */
int api_peer_status(struct req *q);
int api_peer_begin(struct req *q);
int api_peer_objects_begin(struct req *q);
int api_peer_objects_body(struct req *q, const uint8_t *data, size_t len);
int api_peer_objects(struct req *q);
int api_peer_commit(struct req *q);
int api_migrate_accounts(struct req *q);
int api_migrate_run(struct req *q);
int api_dav_begin(struct req *q);
int api_dav_body(struct req *q, const uint8_t *data, size_t len);
int api_dav_discard(struct req *q, const uint8_t *data, size_t len);
int api_dav_handle(struct req *q);
int api_dav_wellknown(struct req *q);
/** Adds the audit log's state to the health answer (once initialised). */
MUST_CHECK int api_health_audit(struct req *q, json_t *health);
/** Appends the oikos_audit_* metrics. */
MUST_CHECK int metrics_audit(struct buf *out, struct region *r);

/* Metrics (metrics.c). */
extern const struct route http_routes[];
extern const size_t http_nroutes;
void metrics_record(size_t route_idx, unsigned status, uint64_t ns);
MUST_CHECK int metrics_render(struct buf *out, struct region *r);

#endif
