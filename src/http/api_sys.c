/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_sys.c: the operators' routes: health, init, unseal, seal. They
 * translate JSON to region calls and back; the keyring decides.
 */
#include "base/common.h"

#include "core/peer.h"
#include "http/http_int.h"

int
api_health(struct req *q)
{
    json_t *o = json_pack("{s:s,s:b,s:b,s:s}", "region", region_name(q->region), "sealed",
                          region_sealed(q->region), "initialized", region_initialized(q->region),
                          "version", OIKOS_VERSION);
    char pk[64];
    /* the key the other regions pin for this one (peer_key in the cluster file) */
    if (o && !region_sealed(q->region) && !peer_pubkey_b64(q->region, pk) &&
        json_object_set_new(o, "peer_key", json_string(pk))) {
        json_decref(o);
        return ERR_NOMEM;
    }
    if (!o || api_health_audit(q, o)) {
        json_decref(o);
        return ERR_NOMEM;
    }
    int rc = http_reply_json(q, 200, o);
    json_decref(o);
    return rc;
}

int
api_init(struct req *q)
{
    json_int_t n = 0, k = 0;
    char **shares = NULL;
    char *token = NULL;
    json_t *arr = NULL, *o = NULL;
    if (json_unpack(q->json, "{s:I,s:I}", "shares", &n, "threshold", &k) != 0)
        return http_fail(q, ERR_INVAL, "expected {\"shares\": N, \"threshold\": K}");
    if (n < 1 || n > 255 || k < 1 || k > n || (k == 1 && n != 1))
        return http_fail(q, ERR_INVAL,
                         "need 2 <= threshold <= shares <= 255 (or 1 share of 1 for a trial)");
    if (region_initialized(q->region))
        return http_fail(q, ERR_EXISTS, "the region is already initialised");
    int rc = region_init(q->region, (unsigned)n, (unsigned)k, &shares, &token);
    if (rc == ERR_EXISTS)
        return http_fail(q, rc, "the region is already initialised");
    if (rc)
        return rc;
    rc = ERR_NOMEM;
    arr = json_array();
    if (!arr)
        goto out;
    for (json_int_t i = 0; i < n; i++)
        if (json_array_append_new(arr, json_string(shares[i])))
            goto out;
    o = json_pack("{s:O,s:s,s:I}", "shares", arr, "operator_token", token, "threshold", k);
    if (o)
        rc = http_reply_json(q, 200, o);
out:
    json_decref(o);
    json_decref(arr);
    region_init_free(shares, (unsigned)n, token);
    return rc;
}

int
api_unseal(struct req *q)
{
    const char *share = NULL;
    unsigned progress = 0, threshold = 0;
    if (json_unpack(q->json, "{s:s}", "share", &share) != 0)
        return http_fail(q, ERR_INVAL, "expected {\"share\": \"...\"}");
    int rc = region_unseal(q->region, share, &progress, &threshold);
    if (rc == ERR_BAD_SHARE)
        return http_fail(q, rc, "the share is corrupted or belongs to another key; not counted");
    if (rc == ERR_CONFLICT)
        return http_fail(q, rc, "this share was already given");
    if (rc == ERR_NOT_INITIALIZED)
        return http_fail(q, rc, "the region is not initialised: run init first");
    if (rc)
        return rc;
    json_t *o = json_pack("{s:b,s:i,s:i}", "sealed", region_sealed(q->region), "progress",
                          (int)progress, "threshold", (int)threshold);
    if (!o)
        return ERR_NOMEM;
    rc = http_reply_json(q, 200, o);
    json_decref(o);
    return rc;
}

int
api_seal(struct req *q)
{
    region_seal(q->region);
    json_t *o = json_pack("{s:b}", "sealed", 1);
    if (!o)
        return ERR_NOMEM;
    int rc = http_reply_json(q, 200, o);
    json_decref(o);
    return rc;
}
