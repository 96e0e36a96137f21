/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_dav.c: CardDAV over HTTP, translating requests into dav/carddav.h
 * calls: HTTP Basic credentials (acct_login_basic), the Depth, If-Match and
 * If-None-Match headers, the statuses and DAV:error bodies of WebDAV, and
 * the streaming of multistatus answers and vCards. Routes: OPTIONS,
 * PROPFIND, REPORT, MKCOL, GET, HEAD, PUT and DELETE under /dav/, and
 * /.well-known/carddav (RFC 6764), which points to /dav/.
 *
 * A request's body (a vCard up to VCARD_MAX, or XML up to DAV_XML_MAX) is
 * gathered in q->body; a multistatus answer is produced page by page by
 * libmicrohttpd's content reader, which owns the CardDAV context until the
 * answer is sent. Thread-safety: as server.c, one request per thread at a
 * time. Passwords are wiped after use; nothing personal is logged.
 */
#include "base/common.h"

#include <strings.h>

#include "base/log.h"
#include "base/util.h"
#include "core/acct.h"
#include "core/migrate.h"
#include "crypto/secret.h"
#include "dav/carddav.h"
#include "dav/dav.h"
#include "dav/vcard.h"
#include "http/http_int.h"

#define DAV_CLASSES "1, 3, addressbook"
#define DAV_ALLOW "OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, REPORT, MKCOL"
#define XML_TYPE "application/xml; charset=utf-8"
#define VCARD_TYPE "text/vcard; charset=utf-8"
#define GET_BLOCK (64 * 1024)
#define BASIC_MAX 2048 /* bytes of a decoded "account:password" */

static bool
is(const struct req *q, const char *method)
{
    return !strcmp(q->route->method, method);
}

/* Queues an answer with the headers CardDAV clients look for. */
static int
reply(struct req *q, unsigned status, const char *ctype, struct buf *body, const char *etag)
{
    size_t len = 0;
    char *data = body ? buf_take(body, &len) : NULL;
    struct MHD_Response *resp =
        data ? MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE)
             : MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(data);
        return ERR_NOMEM;
    }
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "DAV", DAV_CLASSES);
    if (ctype)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (etag) {
        char quoted[OBJ_ETAG_LEN + 3];
        snprintf(quoted, sizeof(quoted), "\"%s\"", etag);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, quoted);
    }
    enum MHD_Result r = MHD_queue_response(q->conn, status, resp);
    MHD_destroy_response(resp);
    if (r != MHD_YES)
        return ERR_INTERNAL;
    q->status = status;
    return 0;
}

/*
 * Turns a CardDAV error into the answer: a DAV:error body naming the
 * precondition where WebDAV defines one, the API's JSON error otherwise
 * (returned for server.c to answer, with the reason as its message).
 */
static int
dav_error(struct req *q, struct carddav *c, int rc)
{
    const char *ns, *name, *href;
    if (c && carddav_cond(c, &ns, &name, &href)) {
        struct buf body;
        buf_init(&body, 16384);
        /* RFC 6352: no-uid-conflict names the resource holding the UID */
        int r = dav_error_body(&body, ns, name, carddav_why(c), href);
        if (!r)
            r = reply(q, http_status_of(rc), XML_TYPE, &body, NULL);
        buf_release(&body);
        return r ? r : 0;
    }
    if (c) {
        /* the reason lives in c, which is freed before server.c answers */
        static _Thread_local char why[256];
        snprintf(why, sizeof(why), "%s", carddav_why(c));
        return http_fail(q, rc, why);
    }
    return rc;
}

/* Credentials ---------------------------------------------------------------- */

static int
basic_auth(struct req *q)
{
    const char *a = http_header(q, MHD_HTTP_HEADER_AUTHORIZATION);
    char name[REGION_NAME_MAX], home[REGION_URL_MAX];
    char *cred = NULL;
    size_t n = 0;
    int rc;
    if (!a || strncasecmp(a, "Basic ", 6) != 0)
        return http_fail(q, ERR_UNAUTHORIZED,
                         "CardDAV needs HTTP Basic authentication: your oikos account id and "
                         "password");
    a += 6;
    while (*a == ' ')
        a++;
    /* one locked buffer per thread, kept: a fresh sodium_malloc per request
     * costs mmap, mprotect and munmap (and TLB shootdowns) every time */
    static _Thread_local char *scratch;
    if (!scratch)
        scratch = secret_alloc(BASIC_MAX + 1);
    if (!scratch)
        return ERR_NOMEM;
    cred = scratch;
    rc = b64_decode((uint8_t *)cred, BASIC_MAX, &n, a, strlen(a));
    char *colon = rc ? NULL : memchr(cred, ':', n);
    if (!colon || (size_t)(colon - cred) >= STORE_ID_MAX || memchr(cred, 0, n)) {
        rc = http_fail(q, ERR_UNAUTHORIZED, "malformed Basic credentials");
        goto out;
    }
    *colon = 0;
    const char *user = cred, *pass = colon + 1;
    size_t plen = n - (size_t)(colon + 1 - cred);
    /* an account of another region (or moved to one): redirect before the
     * password is used */
    rc = migrate_route(q->region, user, name, home);
    if (rc == ERR_WRONG_REGION) {
        rc = http_redirect(q, rc, name, home);
        goto out;
    }
    if (rc) {
        rc = http_fail(q, ERR_UNAUTHORIZED, "wrong account or password");
        goto out;
    }
    rc = acct_login_basic(q->region, user, pass, plen, &q->retry_after);
    if (rc == ERR_UNAUTHORIZED)
        rc = http_fail(q, rc, "wrong account or password");
    else if (rc == ERR_RATE_LIMITED)
        rc = http_fail(q, rc, "too many wrong passwords; try again later");
    else if (!rc)
        snprintf(q->account, sizeof(q->account), "%s", user);
    /* an account being moved to another region takes no writes (migrate.h) */
    if (!rc && (is(q, "PUT") || is(q, "DELETE") || is(q, "MKCOL")) &&
        migrate_write_enter(q->region, q->account, &q->write_slot)) {
        q->retry_after = MIGRATE_RETRY_AFTER;
        rc = http_fail(q, ERR_UNAVAILABLE, "the account is moving to another region");
    }
out:
    secret_wipe(cred, BASIC_MAX + 1);
    return rc;
}

int
api_dav_begin(struct req *q)
{
    size_t max = is(q, "PUT") ? VCARD_MAX : DAV_XML_MAX;
    if (q->content_length != UINT64_MAX && q->content_length > max)
        return http_fail(q, ERR_TOO_LARGE,
                         is(q, "PUT") ? "a vCard may have at most 4 MiB"
                                      : "the XML body is too large");
    buf_init(&q->body, max);
    if (is(q, "OPTIONS"))
        return 0; /* says what the server speaks, to anyone */
    return basic_auth(q);
}

int
api_dav_body(struct req *q, const uint8_t *data, size_t len)
{
    int rc = buf_add(&q->body, data, len);
    if (rc == ERR_LIMIT)
        return http_fail(q, ERR_TOO_LARGE,
                         is(q, "PUT") ? "a vCard may have at most 4 MiB"
                                      : "the XML body is too large");
    return rc;
}

int
api_dav_discard(struct req *q, const uint8_t *data, size_t len)
{
    (void)data;
    q->discarded += len;
    return q->discarded > DAV_XML_MAX ? http_fail(q, ERR_TOO_LARGE, "body too large") : 0;
}

int
api_dav_wellknown(struct req *q)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return ERR_NOMEM;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, CARDDAV_PREFIX "/");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    enum MHD_Result r = MHD_queue_response(q->conn, 301, resp);
    MHD_destroy_response(resp);
    if (r != MHD_YES)
        return ERR_INTERNAL;
    q->status = 301;
    return 0;
}

/* Streaming answers ----------------------------------------------------------- */

struct stream {
    struct carddav *c;
    struct carddav_ms *ms;
    struct buf buf;
    size_t off;
    bool done;
};

static void
stream_free(void *cls)
{
    struct stream *s = cls;
    if (!s)
        return;
    carddav_ms_free(s->ms);
    carddav_free(s->c);
    if (s->buf.data)
        secret_wipe(s->buf.data, s->buf.cap);
    buf_release(&s->buf);
    free(s);
}

static ssize_t
stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    struct stream *s = cls;
    (void)pos;
    while (s->off == s->buf.len) {
        if (s->done)
            return MHD_CONTENT_READER_END_OF_STREAM;
        buf_reset(&s->buf);
        s->off = 0;
        int rc = carddav_ms_next(s->ms, &s->buf, &s->done);
        if (rc) {
            log_err("event=dav_answer_failed err=\"%s\"", err_str(rc));
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
    size_t n = s->buf.len - s->off;
    if (n > max)
        n = max;
    memcpy(out, s->buf.data + s->off, n);
    s->off += n;
    return (ssize_t)n;
}

/*
 * Sends a multistatus answer: in one piece (with a Content-Length) if its
 * first page completes it, else streamed in chunks. Takes c and ms.
 */
static int
send_ms(struct req *q, struct carddav *c, struct carddav_ms *ms)
{
    struct stream *s = calloc(1, sizeof(*s));
    int rc;
    if (!s) {
        carddav_ms_free(ms);
        carddav_free(c);
        return ERR_NOMEM;
    }
    s->c = c;
    s->ms = ms;
    buf_init(&s->buf, (size_t)64 << 20);
    rc = carddav_ms_next(ms, &s->buf, &s->done);
    if (rc) {
        rc = dav_error(q, c, rc);
        stream_free(s);
        return rc;
    }
    if (s->done) {
        rc = reply(q, 207, XML_TYPE, &s->buf, NULL);
        stream_free(s);
        return rc;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, GET_BLOCK, stream_read, s, stream_free);
    if (!resp) {
        stream_free(s);
        return ERR_NOMEM;
    }
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "DAV", DAV_CLASSES);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, XML_TYPE);
    enum MHD_Result r = MHD_queue_response(q->conn, 207, resp);
    MHD_destroy_response(resp);
    if (r != MHD_YES)
        return ERR_INTERNAL;
    q->status = 207;
    return 0;
}

/* Methods --------------------------------------------------------------------- */

static int
dav_get(struct req *q, struct carddav *c, const struct carddav_path *p)
{
    struct obj_get *g = NULL;
    struct obj_info info;
    struct buf name;
    char etag[OBJ_ETAG_LEN + 3];
    (void)c;
    if (p->kind != CARDDAV_CARD) {
        struct buf body;
        buf_init(&body, 1024);
        int rc = buf_adds(&body, "oikos CardDAV: add this server to a CardDAV client (DAVx5, "
                                 "iOS, Thunderbird) with your account id and password.\n");
        rc = rc ? rc : reply(q, 200, "text/plain; charset=utf-8", &body, NULL);
        buf_release(&body);
        return rc;
    }
    if (strcmp(p->account, q->account) != 0)
        return http_fail(q, ERR_FORBIDDEN, "this is another account's address book");
    buf_init(&name, OBJ_NAME_MAX + 1);
    int rc = carddav_object_name(&name, p);
    if (!rc)
        rc = obj_get_open(&g, q->region, q->account, CARDDAV_SERVICE, name.data, name.len, &info);
    buf_release(&name);
    if (rc == ERR_CONSENT)
        return http_fail(q, rc,
                         "Contacts are off for this account, so oikos keeps none of them. Turn "
                         "them on in oikos ('oikos consent on contacts', or the privacy "
                         "dashboard), then sync again");
    if (rc == ERR_NOT_FOUND)
        return http_fail(q, rc, "no such vCard");
    if (rc)
        return rc;
    struct MHD_Response *resp = http_object_response(g, info.size, GET_BLOCK, &rc);
    if (!resp)
        return rc;
    snprintf(etag, sizeof(etag), "\"%s\"", info.etag);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, VCARD_TYPE);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "DAV", DAV_CLASSES);
    enum MHD_Result r = MHD_queue_response(q->conn, 200, resp);
    MHD_destroy_response(resp);
    if (r != MHD_YES)
        return ERR_INTERNAL;
    q->status = 200;
    return 0;
}

static int
conditions(struct req *q, struct dav_cond *cond)
{
    if (dav_cond_parse(cond, http_header(q, "If-Match"), http_header(q, "If-None-Match")))
        return http_fail(q, ERR_INVAL, "malformed If-Match or If-None-Match header");
    return 0;
}

static int
dav_put(struct req *q, struct carddav *c, const struct carddav_path *p)
{
    struct dav_cond cond;
    struct obj_info info;
    int rc = conditions(q, &cond);
    if (rc)
        return rc;
    rc = carddav_put(c, p, buf_slice(&q->body), &cond, &info);
    if (rc == ERR_NOT_FOUND) /* WebDAV: a missing parent collection is a conflict */
        rc = ERR_CONFLICT;
    if (rc)
        return dav_error(q, c, rc);
    return reply(q, info.created ? 201 : 204, NULL, NULL, info.etag);
}

static int
dav_delete(struct req *q, struct carddav *c, const struct carddav_path *p)
{
    struct dav_cond cond;
    int rc = conditions(q, &cond);
    if (!rc)
        rc = carddav_delete(c, p, &cond);
    return rc ? dav_error(q, c, rc) : reply(q, 204, NULL, NULL, NULL);
}

static int
parse_body(struct req *q, struct dav_request **rq)
{
    static _Thread_local char why[DAV_WHY_MAX];
    int rc = dav_request_parse(rq, buf_slice(&q->body), why);
    return rc ? http_fail(q, rc == ERR_LIMIT ? ERR_INVAL : rc, why) : 0;
}

static int
dav_mkcol(struct req *q, struct carddav *c, const struct carddav_path *p)
{
    struct dav_request *rq = NULL;
    int rc = parse_body(q, &rq);
    if (rc)
        return rc;
    rc = carddav_mkcol(c, p, rq);
    dav_request_free(rq);
    if (rc == ERR_EXISTS) /* RFC 4918: MKCOL on an existing resource */
        rc = ERR_METHOD;
    return rc ? dav_error(q, c, rc) : reply(q, 201, NULL, NULL, NULL);
}

static int
dav_multistatus(struct req *q, struct carddav **cp, const struct carddav_path *p, bool report)
{
    struct carddav *c = *cp;
    struct carddav_ms *ms = NULL;
    struct dav_request *rq = NULL;
    int depth = dav_depth(http_header(q, "Depth"), 0);
    if (depth < 0)
        return http_fail(q, ERR_INVAL, "the Depth header must be 0, 1 or infinity");
    if (!report && depth == DAV_DEPTH_INFINITY) {
        struct buf body;
        buf_init(&body, 4096);
        int rc = dav_error_body(&body, DAV_NS, "propfind-finite-depth", "use Depth 0 or 1", NULL);
        rc = rc ? rc : reply(q, 403, XML_TYPE, &body, NULL);
        buf_release(&body);
        return rc;
    }
    int rc = parse_body(q, &rq);
    if (rc)
        return rc;
    rc = report ? carddav_report(&ms, c, p, depth, rq) : carddav_propfind(&ms, c, p, depth, rq);
    if (rc)
        return dav_error(q, c, rc);
    *cp = NULL; /* the answer owns it now */
    return send_ms(q, c, ms);
}

int
api_dav_handle(struct req *q)
{
    struct carddav_path p;
    struct carddav *c = NULL;
    int rc;
    if (is(q, "OPTIONS")) {
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        if (!resp)
            return ERR_NOMEM;
        MHD_add_response_header(resp, "DAV", DAV_CLASSES);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, DAV_ALLOW);
        MHD_add_response_header(resp, "Cache-Control", "no-store");
        enum MHD_Result r = MHD_queue_response(q->conn, 200, resp);
        MHD_destroy_response(resp);
        if (r != MHD_YES)
            return ERR_INTERNAL;
        q->status = 200;
        return 0;
    }
    if (carddav_path_parse(&p, q->url))
        return http_fail(q, ERR_NOT_FOUND, "no such CardDAV resource");
    rc = carddav_new(&c, q->region, q->account);
    if (rc)
        return rc;
    if (is(q, "GET") || is(q, "HEAD"))
        rc = dav_get(q, c, &p);
    else if (is(q, "PUT"))
        rc = dav_put(q, c, &p);
    else if (is(q, "DELETE"))
        rc = dav_delete(q, c, &p);
    else if (is(q, "MKCOL"))
        rc = dav_mkcol(q, c, &p);
    else if (is(q, "PROPFIND"))
        rc = dav_multistatus(q, &c, &p, false);
    else if (is(q, "REPORT"))
        rc = dav_multistatus(q, &c, &p, true);
    else
        rc = ERR_METHOD;
    carddav_free(c);
    return rc;
}
