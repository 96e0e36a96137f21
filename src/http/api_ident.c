/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_ident.c: an account's own identifiers (phone numbers, IMEIs), over
 * core/ident.h. Values are taken from the JSON and never logged; no route
 * answers with another account's identifiers.
 */
#include "base/common.h"

#include "core/ident.h"
#include "http/http_int.h"

int
api_ident_add(struct req *q)
{
    const char *type = NULL, *value = NULL;
    enum ident_type t;
    if (json_unpack(q->json, "{s:s,s:s}", "type", &type, "value", &value) != 0)
        return http_fail(q, ERR_INVAL,
                         "expected {\"type\": \"phone\"|\"imei\", \"value\": \"...\"}");
    if (ident_type_parse(type, &t))
        return http_fail(q, ERR_INVAL, "type must be \"phone\" or \"imei\"");
    int rc = ident_add(q->region, q->account, t, value);
    if (rc == ERR_INVAL)
        return http_fail(q, rc,
                         t == IDENT_PHONE ? "not a phone number: give +CC and the number, or a "
                                            "national number of your account's country"
                                          : "not an IMEI: 15 digits with a valid check digit");
    if (rc)
        return rc;
    json_t *o = json_pack("{s:s}", "type", type);
    if (!o)
        return ERR_NOMEM;
    rc = http_reply_json(q, 201, o);
    json_decref(o);
    return rc;
}

static int
list_one(void *ctx, enum ident_type type, const char *value)
{
    json_t *o = json_pack("{s:s,s:s}", "type", ident_type_name(type), "value", value);
    if (!o || json_array_append_new(ctx, o))
        return ERR_NOMEM;
    return 0;
}

int
api_ident_list(struct req *q)
{
    json_t *items = json_array();
    if (!items)
        return ERR_NOMEM;
    int rc = ident_list(q->region, q->account, list_one, items);
    if (rc) {
        json_decref(items);
        return rc;
    }
    json_t *o = json_pack("{s:o}", "identifiers", items);
    if (!o)
        return ERR_NOMEM;
    rc = http_reply_json(q, 200, o);
    json_decref(o);
    return rc;
}
