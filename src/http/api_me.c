/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_me.c: the owner's control over their account, over core/consent.h,
 * core/report.h, core/export.h and core/retention.h: the consent ledger
 * (list, turn on, turn off), the report, the export (a tar streamed
 * through libmicrohttpd's content reader, one block at a time) and the
 * erasure of the account. Handlers decide nothing: they translate.
 * The export reader owns its struct export until libmicrohttpd frees it;
 * it is called on the connection's thread only, one block at a time.
 */
#include "base/common.h"

#include "base/log.h"
#include "audit/audit.h"
#include "base/util.h"
#include "core/consent.h"
#include "core/export.h"
#include "core/report.h"
#include "core/retention.h"
#include "core/svc.h"
#include "core/trail.h"
#include "http/http_int.h"

#define EXPORT_BLOCK (64 * 1024)

/* A time as RFC 3339, or JSON null for 0 (never). */
static json_t *
json_time(int64_t t)
{
    char s[TIME_RFC3339_LEN];
    if (!t)
        return json_null();
    time_rfc3339(s, t);
    return json_string(s);
}

static json_t *
consent_json(const struct consent *c)
{
    return json_pack("{s:s,s:b,s:o,s:s?}", "service", c->service, "granted", c->granted, "since",
                     json_time(c->since), "policy", c->policy[0] ? c->policy : NULL);
}

static int
reply(struct req *q, unsigned status, json_t *o)
{
    if (!o)
        return ERR_NOMEM;
    int rc = http_reply_json(q, status, o);
    json_decref(o);
    return rc;
}

static int
consents_json(struct req *q, json_t **out)
{
    struct consent c[SVC_COUNT];
    size_t n = 0;
    int rc = consent_list(q->region, q->account, c, &n);
    if (rc)
        return rc;
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        if (json_array_append_new(a, consent_json(&c[i]))) {
            json_decref(a);
            a = NULL;
        }
    }
    *out = a;
    return a ? 0 : ERR_NOMEM;
}

int
api_consents_list(struct req *q)
{
    json_t *a = NULL;
    int rc = consents_json(q, &a);
    if (rc)
        return rc;
    return reply(q, 200, json_pack("{s:o}", "consents", a));
}

static int
consent_revoke_reply(struct req *q)
{
    uint64_t purged = 0;
    int rc = consent_revoke(q->region, q->account, q->service, &purged);
    if (rc == ERR_NOT_FOUND)
        return http_fail(q, rc, "no such service");
    if (rc)
        return rc;
    return reply(q, 200,
                 json_pack("{s:s,s:b,s:I}", "service", q->service, "granted", 0, "purged_objects",
                           (json_int_t)purged));
}

int
api_consent_put(struct req *q)
{
    struct consent c;
    int granted = 0;
    if (json_unpack(q->json, "{s:b}", "granted", &granted) != 0)
        return http_fail(q, ERR_INVAL, "expected {\"granted\": true}");
    if (!granted)
        return consent_revoke_reply(q);
    int rc = consent_grant(q->region, q->account, q->service, &c);
    if (rc == ERR_NOT_FOUND)
        return http_fail(q, rc, "no such service");
    if (rc)
        return rc;
    return reply(q, 200, consent_json(&c));
}

int
api_consent_delete(struct req *q)
{
    return consent_revoke_reply(q);
}

static int
history_item(void *ctx, const struct consent_change *c)
{
    json_t *o = json_pack("{s:s,s:b,s:o,s:s}", "service", c->service, "granted", c->granted, "at",
                          json_time(c->at), "policy", c->policy);
    return !o || json_array_append_new(ctx, o) ? ERR_NOMEM : 0;
}

int
api_report(struct req *q)
{
    struct report rep;
    int rc = report_build(q->region, q->account, &rep);
    if (rc)
        return rc;
    json_t *consents = NULL, *history = json_array(), *data = json_array(), *rules = json_array();
    rc = history && data && rules ? consents_json(q, &consents) : ERR_NOMEM;
    if (!rc)
        rc = consent_history(q->region, q->account, history_item, history);
    for (size_t i = 0; !rc && i < rep.nservices; i++) {
        const struct report_service *s = &rep.services[i];
        json_t *o = json_pack("{s:s,s:b,s:I,s:I,s:o,s:s}", "service", s->consent.service, "granted",
                              s->consent.granted, "objects", (json_int_t)s->objects, "bytes",
                              (json_int_t)s->bytes, "delete_after", json_time(s->delete_after),
                              "retention", "backup");
        if (!o || json_array_append_new(data, o))
            rc = ERR_NOMEM;
    }
    for (size_t i = 0; !rc && i < retention_nrules; i++) {
        const struct retention_rule *ru = &retention_rules[i];
        json_t *o = json_pack("{s:s,s:s,s:s,s:s?}", "rule", ru->kind, "applies_to", ru->applies,
                              "kept", ru->keep, "option", ru->option);
        if (!o || json_array_append_new(rules, o))
            rc = ERR_NOMEM;
    }
    if (rc) {
        json_decref(consents);
        json_decref(history);
        json_decref(data);
        json_decref(rules);
        return rc;
    }
    /* audit: how many entries the log holds about the account (GET /v1/me/audit lists them) */
    uint64_t entries = 0;
    if (audit_count(region_audit(q->region), q->account, &entries))
        entries = 0;
    return reply(q, 200,
                 json_pack("{s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:{s:I}}", "account", q->account,
                           "region", region_name(q->region), "created", json_time(rep.created),
                           "last_active", json_time(rep.last_active), "erase_if_idle_after",
                           json_time(rep.idle_deadline), "consents", consents, "consent_history",
                           history, "data", data, "retention", rules, "audit", "entries",
                           (json_int_t)entries));
}

static ssize_t
export_reader(void *cls, uint64_t pos, char *out, size_t max)
{
    struct export *e = cls;
    size_t n = 0;
    (void)pos;
    int rc = export_read(e, (uint8_t *)out, max, &n);
    if (rc) {
        log_err("event=export_failed objects=%" PRIu64 " err=\"%s\"", export_objects(e),
                err_str(rc));
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    return n ? (ssize_t)n : MHD_CONTENT_READER_END_OF_STREAM;
}

static void
export_done(void *cls)
{
    export_free(cls);
}

int
api_export(struct req *q)
{
    struct export *e = NULL;
    int rc = export_new(&e, q->region, q->account);
    if (rc)
        return rc;
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, EXPORT_BLOCK,
                                                                  export_reader, e, export_done);
    if (!resp) {
        export_free(e);
        return ERR_NOMEM;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/x-tar");
    MHD_add_response_header(resp, "Content-Disposition",
                            "attachment; filename=\"oikos-export.tar\"");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    enum MHD_Result r = MHD_queue_response(q->conn, 200, resp);
    MHD_destroy_response(resp);
    if (r != MHD_YES)
        return ERR_INTERNAL;
    q->status = 200;
    return 0;
}

int
api_erase(struct req *q)
{
    /* on record first: the account's rows, and its keys, are about to go */
    int rc = trail_record(
        q->region, &(struct trail){AUDIT_USER, "account.erase", q->account, NULL, NULL, 0}, true);
    if (!rc)
        rc = retention_erase_account(q->region, q->account, NULL);
    return rc ? rc : http_reply_empty(q, 204);
}
