/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server.c: the HTTP server on libmicrohttpd: its life cycle, the route
 * table, the per-request state machine and the answer helpers.
 *
 * A request goes through the access handler several times: the first call
 * matches the route, checks limits and credentials and remembers any error
 * (it never answers: answering there makes libmicrohttpd close the
 * connection, and keep-alive matters to every client); calls with body data
 * feed the JSON buffer or the object upload; the last call runs the handler,
 * which queues the answer. An error found early is answered at the next
 * call, before any body is stored.
 *
 * Thread-safety: libmicrohttpd runs the handler on its pool threads; a
 * struct req belongs to one connection, so to one thread at a time.
 */
#include "base/common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdatomic.h>
#include <strings.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "core/acct.h"
#include "core/migrate.h"
#include "http/http.h"
#include "http/http_int.h"

const struct route http_routes[] = {
    {"GET", "/v1/sys/health", "sys_health", R_SEALED_OK, NULL, NULL, api_health},
    {"POST", "/v1/sys/init", "sys_init", R_SEALED_OK | R_JSON, NULL, NULL, api_init},
    {"POST", "/v1/sys/unseal", "sys_unseal", R_SEALED_OK | R_JSON, NULL, NULL, api_unseal},
    {"POST", "/v1/sys/seal", "sys_seal", R_SEALED_OK | R_OPERATOR, NULL, NULL, api_seal},
    {"GET", "/metrics", "metrics", R_SEALED_OK, NULL, NULL, api_metrics},
    {"POST", "/v1/accounts", "accounts", R_JSON, NULL, NULL, api_signup},
    {"POST", "/v1/sessions", "sessions", R_JSON, NULL, NULL, api_login},
    {"DELETE", "/v1/sessions/current", "session_current", R_USER, NULL, NULL, api_logout},
    {"POST", "/v1/me/identifiers", "identifiers_add", R_USER | R_JSON, NULL, NULL, api_ident_add},
    {"GET", "/v1/me/identifiers", "identifiers", R_USER, NULL, NULL, api_ident_list},
    {"GET", "/v1/me/data/{s}", "data_feed", R_USER, NULL, NULL, api_data_feed},
    {"PUT", "/v1/me/data/{s}/{n}", "data_put", R_USER | R_STREAM, api_data_put_begin,
     api_data_put_body, api_data_put},
    {"GET", "/v1/me/data/{s}/{n}", "data_get", R_USER, NULL, NULL, api_data_get},
    {"DELETE", "/v1/me/data/{s}/{n}", "data_delete", R_USER, NULL, NULL, api_data_delete},
    {"GET", "/v1/me/consents", "consents", R_USER, NULL, NULL, api_consents_list},
    {"PUT", "/v1/me/consents/{s}", "consent_put", R_USER | R_JSON, NULL, NULL, api_consent_put},
    {"DELETE", "/v1/me/consents/{s}", "consent_delete", R_USER, NULL, NULL, api_consent_delete},
    {"GET", "/v1/me/report", "report", R_USER, NULL, NULL, api_report},
    {"GET", "/v1/me/export", "export", R_USER, NULL, NULL, api_export},
    {"DELETE", "/v1/me", "erase", R_USER, NULL, NULL, api_erase},
    {"GET", "/v1/me/audit", "me_audit", R_USER, NULL, NULL, api_me_audit},
    /* moving accounts: the operator's side, then the signed calls of another region */
    {"GET", "/v1/migrate/accounts", "migrate_accounts", R_OPERATOR, NULL, NULL,
     api_migrate_accounts},
    {"POST", "/v1/migrate/run", "migrate_run", R_OPERATOR | R_JSON, NULL, NULL, api_migrate_run},
    {"POST", "/v1/peer/migrate/status", "peer_status", R_JSON, NULL, NULL, api_peer_status},
    {"POST", "/v1/peer/migrate/begin", "peer_begin", R_JSON, NULL, NULL, api_peer_begin},
    {"POST", "/v1/peer/migrate/objects", "peer_objects", R_STREAM, api_peer_objects_begin,
     api_peer_objects_body, api_peer_objects},
    {"POST", "/v1/peer/migrate/commit", "peer_commit", R_JSON, NULL, NULL, api_peer_commit},
    /* public, and served while sealed: all of it is signed already (AUDIT.md) */
    {"GET", "/v1/audit/head", "audit_head", R_SEALED_OK, NULL, NULL, api_audit_head},
    {"GET", "/v1/audit/checkpoint", "audit_checkpoint", R_SEALED_OK, NULL, NULL,
     api_audit_checkpoint},
    {"GET", "/v1/audit/entries", "audit_entries", R_SEALED_OK, NULL, NULL, api_audit_entries},
    {"GET", "/v1/audit/proof/inclusion", "audit_inclusion", R_SEALED_OK, NULL, NULL,
     api_audit_inclusion},
    {"GET", "/v1/audit/proof/consistency", "audit_consistency", R_SEALED_OK, NULL, NULL,
     api_audit_consistency},
    /* CardDAV (api_dav.c): HTTP Basic, checked by api_dav_begin */
    {"PROPFIND", "/.well-known/carddav", "dav_wellknown", R_BASIC | R_STREAM, NULL, api_dav_discard,
     api_dav_wellknown},
    {"GET", "/.well-known/carddav", "dav_wellknown_get", R_BASIC | R_STREAM, NULL, api_dav_discard,
     api_dav_wellknown},
    {"OPTIONS", "/dav{n}", "dav_options", R_BASIC | R_STREAM, api_dav_begin, api_dav_body,
     api_dav_handle},
    {"PROPFIND", "/dav{n}", "dav_propfind", R_BASIC | R_STREAM, api_dav_begin, api_dav_body,
     api_dav_handle},
    {"REPORT", "/dav{n}", "dav_report", R_BASIC | R_STREAM, api_dav_begin, api_dav_body,
     api_dav_handle},
    {"MKCOL", "/dav{n}", "dav_mkcol", R_BASIC | R_STREAM, api_dav_begin, api_dav_body,
     api_dav_handle},
    {"GET", "/dav{n}", "dav_get", R_BASIC | R_STREAM, api_dav_begin, api_dav_body, api_dav_handle},
    {"HEAD", "/dav{n}", "dav_head", R_BASIC | R_STREAM, api_dav_begin, api_dav_body,
     api_dav_handle},
    {"PUT", "/dav{n}", "dav_put", R_BASIC | R_STREAM, api_dav_begin, api_dav_body, api_dav_handle},
    {"DELETE", "/dav{n}", "dav_delete", R_BASIC | R_STREAM, api_dav_begin, api_dav_body,
     api_dav_handle},
};
const size_t http_nroutes = ARRAY_SIZE(http_routes);

/* Matches path against a pattern; {s} is one segment (the service), {n}
 * the non-empty rest (the object name). */
static bool
route_match(const char *pat, const char *path, struct req *q)
{
    while (*pat) {
        if (!strncmp(pat, "{s}", 3)) {
            size_t n = strcspn(path, "/");
            if (n == 0 || n >= sizeof(q->service))
                return false;
            memcpy(q->service, path, n);
            q->service[n] = 0;
            path += n;
            pat += 3;
        } else if (!strncmp(pat, "{n}", 3)) {
            if (!*path)
                return false;
            q->name = path;
            q->namelen = strlen(path);
            return true;
        } else if (*pat++ != *path++) {
            return false;
        }
    }
    return *path == 0;
}

static int
route_find(struct req *q, const char *url, const char *method)
{
    bool path_known = false;
    for (size_t i = 0; i < http_nroutes; i++) {
        q->name = NULL;
        if (!route_match(http_routes[i].path, url, q))
            continue;
        path_known = true;
        if (strcmp(http_routes[i].method, method) != 0)
            continue;
        q->route = &http_routes[i];
        q->route_idx = i;
        return 0;
    }
    q->route_idx = http_nroutes; /* "unmatched" in the metrics */
    return path_known ? ERR_METHOD : http_fail(q, ERR_NOT_FOUND, "no such route");
}

static const char *
bearer(struct req *q)
{
    const char *a = http_header(q, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!a || strncasecmp(a, "Bearer ", 7) != 0)
        return NULL;
    a += 7;
    while (*a == ' ')
        a++;
    return *a ? a : NULL;
}

/* The first call: route, limits, credentials, then the route's begin(). */
static int
req_start(struct req *q, const char *url, const char *method)
{
    const struct config *cfg = region_config(q->region);
    int rc = route_find(q, url, method);
    if (rc)
        return rc;
    const struct route *r = q->route;
    const char *cl = http_header(q, MHD_HTTP_HEADER_CONTENT_LENGTH);
    q->content_length = UINT64_MAX;
    if (cl && parse_u64(cl, 0, UINT64_MAX, &q->content_length))
        return http_fail(q, ERR_INVAL, "invalid Content-Length");
    if (!(r->flags & (R_JSON | R_STREAM)) && q->content_length != UINT64_MAX &&
        q->content_length > 0)
        return http_fail(q, ERR_INVAL, "this request takes no body");
    if ((r->flags & R_JSON) && q->content_length != UINT64_MAX &&
        q->content_length > cfg->max_json_bytes)
        return http_fail(q, ERR_TOO_LARGE, "request body too large");
    if (!(r->flags & R_SEALED_OK) && region_sealed(q->region))
        return ERR_SEALED;
    if (r->flags & R_OPERATOR) {
        rc = region_operator_check(q->region, bearer(q));
        if (rc)
            return http_fail(q, rc, "operator token required");
    }
    if (r->flags & R_USER) {
        char name[REGION_NAME_MAX], home[REGION_URL_MAX];
        q->token = bearer(q);
        if (!q->token)
            return http_fail(q, ERR_UNAUTHORIZED, "missing bearer token");
        /* a token of another region, or of an account that moved: redirect
         * (a session that moved here with its account is served here) */
        rc = migrate_auth(q->region, q->token, q->account, name, home);
        if (rc == ERR_WRONG_REGION)
            return http_redirect(q, rc, name, home);
        if (rc)
            return http_fail(q, rc, "invalid or expired token");
        /* an account being moved to another region takes no writes (migrate.h) */
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
            migrate_write_enter(q->region, q->account, &q->write_slot)) {
            q->retry_after = MIGRATE_RETRY_AFTER;
            return http_fail(q, ERR_UNAVAILABLE, "the account is moving to another region");
        }
    }
    if (r->flags & R_JSON)
        buf_init(&q->body, cfg->max_json_bytes);
    return r->begin ? r->begin(q) : 0;
}

static int
req_body(struct req *q, const uint8_t *data, size_t len)
{
    if (q->route->flags & R_STREAM)
        return q->route->body(q, data, len);
    if (q->route->flags & R_JSON) {
        int rc = buf_add(&q->body, data, len);
        if (rc == ERR_LIMIT)
            return http_fail(q, ERR_TOO_LARGE, "request body too large");
        return rc;
    }
    return http_fail(q, ERR_INVAL, "this request takes no body");
}

static int
req_finish(struct req *q)
{
    if (q->route->flags & R_JSON) {
        json_error_t jerr;
        struct slice b = buf_slice(&q->body);
        q->json = json_loadb((const char *)b.p, b.len, JSON_REJECT_DUPLICATES, &jerr);
        if (!q->json || !json_is_object(q->json))
            return http_fail(q, ERR_INVAL, "the body must be a JSON object");
    }
    return q->route->handle(q);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    struct http_server *h = cls;
    struct req *q = *con_cls;
    (void)version;
    if (!q) {
        q = calloc(1, sizeof(*q));
        if (!q)
            return MHD_NO;
        q->srv = h;
        q->region = h->region;
        q->conn = conn;
        q->start_ns = clock_mono_ns();
        q->route_idx = http_nroutes;
        q->url = strdup(url);
        atomic_fetch_add(&h->active, 1);
        *con_cls = q;
        if (!q->url)
            return MHD_NO;
        q->deferred = req_start(q, url, method);
        /* libmicrohttpd takes an answer only now or once the body is in: a
         * request refused before its body is answered now, and the
         * connection closed, rather than reading a body to throw away */
        bool body = q->content_length != UINT64_MAX
                        ? q->content_length > 0
                        : http_header(q, MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
        if (q->deferred && body)
            http_reply_error(q, q->deferred);
        if (body && !q->status) {
            q->receiving = true;
            atomic_fetch_add(&h->receiving, 1);
        }
        return MHD_YES;
    }
    if (q->status) {
        *upload_data_size = 0; /* answered already: the rest is discarded */
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        atomic_fetch_add(&h->body_bytes, n);
        if (!q->deferred) {
            q->deferred = req_body(q, (const uint8_t *)upload_data, n);
            return MHD_YES;
        }
        /* failed midway: discard the rest (answered at its end), within reason */
        q->discarded += n;
        return q->discarded > HTTP_DISCARD_MAX ? MHD_NO : MHD_YES;
    }
    if (q->receiving) { /* the body is in */
        q->receiving = false;
        atomic_fetch_sub(&h->receiving, 1);
    }
    int rc = q->deferred ? q->deferred : req_finish(q);
    if (rc)
        http_reply_error(q, rc);
    else if (!q->status)
        http_reply_error(q, ERR_INTERNAL);
    return MHD_YES;
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    struct http_server *h = cls;
    struct req *q = *con_cls;
    (void)conn;
    (void)toe;
    if (!q)
        return;
    metrics_record(q->route_idx, q->status, clock_mono_ns() - q->start_ns);
    if (q->receiving)
        atomic_fetch_sub(&h->receiving, 1);
    migrate_write_leave(q->write_slot);
    obj_put_free(q->put);
    json_decref(q->json);
    buf_release(&q->body);
    free(q->url);
    free(q);
    *con_cls = NULL;
    atomic_fetch_sub(&h->active, 1);
}

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[256];
    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\n")] = 0;
    log_warn("event=http_library msg=\"%s\"", msg);
}

int
http_start(struct http_server **out, struct region *r)
{
    const struct config *cfg = region_config(r);
    struct sockaddr_in sa;
    struct http_server *h = calloc(1, sizeof(*h));
    if (!h)
        return ERR_NOMEM;
    h->region = r;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(cfg->port);
    if (inet_pton(AF_INET, cfg->host, &sa.sin_addr) != 1) {
        log_err("event=bad_listen_address host=\"%s\" hint=\"give an IPv4 address\"", cfg->host);
        free(h);
        return ERR_INVAL;
    }
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
                              (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE,
                              (unsigned)cfg->threads, MHD_OPTION_CONNECTION_LIMIT,
                              (unsigned)cfg->connection_limit, MHD_OPTION_CONNECTION_TIMEOUT,
                              (unsigned)cfg->connection_timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                              (size_t)cfg->max_header_bytes, MHD_OPTION_NOTIFY_COMPLETED,
                              on_completed, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
                              MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_END);
    if (!h->mhd) {
        log_err("event=listen_failed listen=%s:%u err=\"%s\"", cfg->host, cfg->port,
                strerror(errno));
        free(h);
        return ERR_IO;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : cfg->port;
    *out = h;
    return 0;
}

uint16_t
http_port(struct http_server *h)
{
    return h->port;
}

void
http_stop(struct http_server *h, unsigned timeout_s)
{
    if (!h)
        return;
    MHD_socket fd = MHD_quiesce_daemon(h->mhd);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    /*
     * Requests being answered are waited for; uploads only while their
     * bytes keep coming: a client that stopped sending midway would
     * otherwise hold the shutdown for the whole timeout.
     */
    uint64_t now = clock_mono_ns(), quiet_since = now;
    const uint64_t deadline = now + (uint64_t)timeout_s * 1000000000u;
    uint64_t seen = atomic_load(&h->body_bytes);
    while (atomic_load(&h->active) > 0 && now < deadline) {
        uint64_t b = atomic_load(&h->body_bytes);
        if (b != seen) {
            seen = b;
            quiet_since = now;
        } else if (atomic_load(&h->active) <= atomic_load(&h->receiving) &&
                   now - quiet_since > HTTP_STALL_NS) {
            break;
        }
        usleep(10000);
        now = clock_mono_ns();
    }
    long left = atomic_load(&h->active);
    if (left > 0)
        log_warn("event=shutdown_cut_requests count=%ld receiving=%ld", left,
                 atomic_load(&h->receiving));
    MHD_stop_daemon(h->mhd);
    free(h);
}

/* Answers ---------------------------------------------------------------- */

const char *
http_header(struct req *q, const char *name)
{
    return MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, name);
}

const char *
http_query(struct req *q, const char *name)
{
    return MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, name);
}

int
http_fail(struct req *q, int err, const char *msg)
{
    q->errmsg = msg;
    return err;
}

static int
queue(struct req *q, unsigned status, struct MHD_Response *resp)
{
    if (!resp)
        return ERR_NOMEM;
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (status == 401 && q->route && (q->route->flags & R_BASIC))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Basic realm=\"oikos\", charset=\"UTF-8\"");
    if (q->retry_after > 0) {
        char ra[24];
        snprintf(ra, sizeof(ra), "%" PRId64, q->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    enum MHD_Result r = MHD_queue_response(q->conn, status, resp);
    MHD_destroy_response(resp);
    if (r != MHD_YES)
        return ERR_INTERNAL;
    q->status = status;
    return 0;
}

int
http_reply_text(struct req *q, unsigned status, const char *ctype, struct buf *body)
{
    size_t len = 0;
    char *data = buf_take(body, &len);
    if (!data)
        return ERR_NOMEM;
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(data);
        return ERR_NOMEM;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    return queue(q, status, resp);
}

int
http_reply_json(struct req *q, unsigned status, json_t *body)
{
    char *s = json_dumps(body, JSON_COMPACT);
    if (!s)
        return ERR_NOMEM;
    size_t len = strlen(s);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, s, MHD_RESPMEM_MUST_COPY);
    /* the text may hold secrets (shares, tokens): wipe it */
    sodium_memzero(s, len);
    free(s);
    if (!resp)
        return ERR_NOMEM;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    return queue(q, status, resp);
}

int
http_reply_empty(struct req *q, unsigned status)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    return queue(q, status, resp);
}

int
http_redirect(struct req *q, int rc, const char *name, const char *url)
{
    if (rc != ERR_WRONG_REGION)
        return rc;
    snprintf(q->redirect_region, sizeof(q->redirect_region), "%s", name);
    snprintf(q->redirect_url, sizeof(q->redirect_url), "%s", url);
    return http_fail(q, rc, "this account lives in another region");
}

/* Appends s percent-encoded: unreserved characters and those of keep stay. */
static int
url_escape(struct buf *b, const char *s, const char *keep)
{
    int rc = 0;
    for (const unsigned char *p = (const unsigned char *)s; !rc && *p; p++) {
        bool plain = (*p >= '0' && *p <= '9') || ((*p | 32) >= 'a' && (*p | 32) <= 'z') ||
                     strchr("-._~", *p) || strchr(keep, *p);
        rc = plain ? buf_add(b, p, 1) : buf_addf(b, "%%%02X", *p);
    }
    return rc;
}

static enum MHD_Result
query_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    struct buf *b = cls;
    (void)kind;
    int rc = buf_add(b, strchr(b->data, '?') ? "&" : "?", 1);
    if (!rc)
        rc = url_escape(b, key, "");
    if (!rc && value) {
        rc = buf_add(b, "=", 1);
        if (!rc)
            rc = url_escape(b, value, "");
    }
    return rc ? MHD_NO : MHD_YES;
}

/* Answers 308 with the same request's URL on the home region. */
static void
reply_wrong_region(struct req *q)
{
    struct buf loc;
    struct MHD_Response *resp = NULL;
    buf_init(&loc, 8192);
    json_t *body = json_pack("{s:{s:s,s:s,s:s,s:s}}", "error", "code", "wrong_region", "message",
                             q->errmsg ? q->errmsg : err_str(ERR_WRONG_REGION), "region",
                             q->redirect_region, "url", q->redirect_url);
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (!s || buf_adds(&loc, q->redirect_url) || url_escape(&loc, q->url, "/"))
        goto fail;
    MHD_get_connection_values(q->conn, MHD_GET_ARGUMENT_KIND, query_arg, &loc);
    resp = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
    if (!resp)
        goto fail;
    s = NULL;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, loc.data);
    if (queue(q, 308, resp) == 0)
        goto out;
fail:
    free(s);
    q->redirect_url[0] = 0;
    q->errmsg = NULL;
    http_reply_error(q, ERR_NOMEM);
out:
    json_decref(body);
    buf_release(&loc);
}

unsigned
http_status_of(int err)
{
    switch (err) {
    case ERR_INVAL:
    case ERR_BAD_SHARE:
        return 400;
    case ERR_UNAUTHORIZED:
        return 401;
    case ERR_FORBIDDEN:
    case ERR_CONSENT:
        return 403;
    case ERR_NOT_FOUND:
        return 404;
    case ERR_METHOD:
        return 405;
    case ERR_CONFLICT:
    case ERR_EXISTS:
    case ERR_NOT_INITIALIZED:
        return 409;
    case ERR_TOO_LARGE:
    case ERR_LIMIT:
        return 413;
    case ERR_PRECONDITION:
        return 412;
    case ERR_RATE_LIMITED:
        return 429;
    case ERR_WRONG_REGION:
        return 308;
    case ERR_SEALED:
    case ERR_IO:
    case ERR_UNAVAILABLE:
    case ERR_AUDIT:
        return 503;
    default:
        return 500;
    }
}

void
http_reply_error(struct req *q, int err)
{
    if (err == ERR_WRONG_REGION && q->redirect_url[0]) {
        reply_wrong_region(q);
        return;
    }
    unsigned status = http_status_of(err);
    if (status >= 500 && err != ERR_SEALED)
        log_err("event=request_failed route=%s err=\"%s\"",
                q->route ? q->route->label : "unmatched", err_str(err));
    json_t *body = json_pack("{s:{s:s,s:s}}", "error", "code", err_code(err), "message",
                             q->errmsg ? q->errmsg : err_str(err));
    if (!body || http_reply_json(q, status, body)) {
        static const char oom[] =
            "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
        struct MHD_Response *resp = MHD_create_response_from_buffer(
            sizeof(oom) - 1, (void *)(uintptr_t)oom, MHD_RESPMEM_PERSISTENT);
        if (resp)
            (void)queue(q, 500, resp);
    }
    json_decref(body);
}
