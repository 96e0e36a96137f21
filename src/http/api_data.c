/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_data.c: backed-up objects: PUT streams the body into core/obj's
 * writer as it arrives, GET streams the object back chunk by chunk through
 * libmicrohttpd's content reader, DELETE, and the change feed.
 */
#include "base/common.h"

#include "base/log.h"
#include "base/util.h"
#include "core/obj.h"
#include "core/svc.h"
#include "crypto/secret.h"
#include "http/http_int.h"

#define FEED_MAX 1000
#define GET_BLOCK (256 * 1024)

static int
data_error(struct req *q, int rc)
{
    switch (rc) {
    case ERR_INVAL:
        return http_fail(q, rc, "invalid object name: 1 to 1024 bytes of UTF-8");
    case ERR_NOT_FOUND:
        return http_fail(q, rc, svc_valid(q->service) ? "no such object" : "no such service");
    case ERR_CONSENT:
        return http_fail(q, rc, "the service is off: turn it on in your consents first");
    case ERR_TOO_LARGE:
        return http_fail(q, rc, "the object is larger than this region accepts");
    default:
        return rc;
    }
}

int
api_data_put_begin(struct req *q)
{
    return data_error(q, obj_put_begin(&q->put, q->region, q->account, q->service, q->name,
                                       q->namelen, q->content_length));
}

int
api_data_put_body(struct req *q, const uint8_t *data, size_t len)
{
    int rc = obj_put_write(q->put, data, len);
    if (rc == ERR_INVAL)
        return http_fail(q, rc, "more bytes than Content-Length announced");
    return data_error(q, rc);
}

int
api_data_put(struct req *q)
{
    struct obj_info info;
    int rc = obj_put_finish(q->put, &info);
    if (rc == ERR_INVAL)
        return http_fail(q, rc, "fewer bytes than Content-Length announced");
    if (rc)
        return data_error(q, rc);
    json_t *o = json_pack("{s:s,s:I,s:I}", "etag", info.etag, "version", (json_int_t)info.seq,
                          "size", (json_int_t)info.size);
    if (!o)
        return ERR_NOMEM;
    rc = http_reply_json(q, info.created ? 201 : 200, o);
    json_decref(o);
    return rc;
}

static ssize_t
get_reader(void *cls, uint64_t pos, char *out, size_t max)
{
    struct obj_get *g = cls;
    size_t n = 0;
    (void)pos;
    int rc = obj_get_read(g, (uint8_t *)out, max, &n);
    if (rc) {
        log_err("event=object_read_failed err=\"%s\"", err_str(rc));
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    return n ? (ssize_t)n : MHD_CONTENT_READER_END_OF_STREAM;
}

static void
get_free(void *cls)
{
    obj_get_free(cls);
}

/* A small object's plaintext, whole, wiped when the response is done with it. */
struct whole {
    size_t len;
    uint8_t data[];
};

static void
whole_free(void *cls)
{
    struct whole *w = cls;
    secret_wipe(w->data, w->len);
    free(w);
}

/* The whole of a small object in one buffer response; *rc says why not. */
static struct MHD_Response *
whole_response(struct obj_get *g, size_t size, int *rc)
{
    struct whole *w = malloc(sizeof(*w) + size);
    if (!w) {
        *rc = ERR_NOMEM;
        return NULL;
    }
    w->len = size;
    size_t got = 0, n = 1;
    int r = 0;
    while (!r && n && got < size) {
        r = obj_get_read(g, w->data + got, size - got, &n);
        got += n;
    }
    if (!r && got != size) /* the store holds fewer bytes than the object says */
        r = ERR_CORRUPT;
    struct MHD_Response *resp =
        r ? NULL
          : MHD_create_response_from_buffer_with_free_callback_cls(size, w->data, whole_free, w);
    if (!resp) {
        *rc = r ? r : ERR_NOMEM;
        whole_free(w);
    }
    return resp;
}

struct MHD_Response *
http_object_response(struct obj_get *g, uint64_t size, size_t block, int *rc)
{
    struct MHD_Response *resp;
    if (size <= HTTP_OBJECT_WHOLE) {
        resp = whole_response(g, (size_t)size, rc);
        obj_get_free(g);
        return resp;
    }
    resp = MHD_create_response_from_callback(size, size < block ? (size_t)size : block, get_reader,
                                             g, get_free);
    if (!resp) {
        obj_get_free(g);
        *rc = ERR_NOMEM;
    }
    return resp;
}

int
api_data_get(struct req *q)
{
    struct obj_get *g = NULL;
    struct obj_info info;
    char etag[OBJ_ETAG_LEN + 3];
    int rc = obj_get_open(&g, q->region, q->account, q->service, q->name, q->namelen, &info);
    if (rc)
        return data_error(q, rc);
    struct MHD_Response *resp = http_object_response(g, info.size, GET_BLOCK, &rc);
    if (!resp)
        return data_error(q, rc);
    snprintf(etag, sizeof(etag), "\"%s\"", info.etag);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    enum MHD_Result r = MHD_queue_response(q->conn, 200, resp);
    MHD_destroy_response(resp);
    if (r != MHD_YES)
        return ERR_INTERNAL;
    q->status = 200;
    return 0;
}

int
api_data_delete(struct req *q)
{
    int rc = obj_delete(q->region, q->account, q->service, q->name, q->namelen);
    return rc ? data_error(q, rc) : http_reply_empty(q, 204);
}

static int
feed_item(void *ctx, const struct obj_item *it)
{
    json_t *items = ctx;
    json_t *o = json_pack("{s:s%,s:s,s:I,s:b}", "name", it->name, it->namelen, "etag", it->etag,
                          "size", (json_int_t)it->size, "deleted", it->deleted);
    if (!o || json_array_append_new(items, o))
        return ERR_NOMEM;
    return 0;
}

int
api_data_feed(struct req *q)
{
    uint64_t since = 0, limit = FEED_MAX;
    const char *s = http_query(q, "since");
    const char *l = http_query(q, "limit");
    if (s && *s && parse_u64(s, 0, INT64_MAX, &since))
        return http_fail(q, ERR_INVAL, "invalid cursor in 'since'");
    if (l && parse_u64(l, 1, FEED_MAX, &limit))
        return http_fail(q, ERR_INVAL, "'limit' must be 1 to 1000");
    if (!svc_valid(q->service))
        return http_fail(q, ERR_NOT_FOUND, "no such service");
    json_t *items = json_array();
    if (!items)
        return ERR_NOMEM;
    int64_t last = 0;
    bool more = false;
    int rc = obj_feed(q->region, q->account, q->service, (int64_t)since, (size_t)limit, feed_item,
                      items, &last, &more);
    if (rc) {
        json_decref(items);
        return data_error(q, rc);
    }
    char cursor[24];
    snprintf(cursor, sizeof(cursor), "%" PRId64, last);
    json_t *o = json_pack("{s:o,s:s,s:b}", "items", items, "cursor", cursor, "more", more);
    if (!o)
        return ERR_NOMEM;
    rc = http_reply_json(q, 200, o);
    json_decref(o);
    return rc;
}
