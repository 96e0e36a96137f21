/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_peer.c: moving accounts between regions, the network half (the
 * domain half is core/migrate.c). Two sets of routes:
 *
 *   /v1/peer/migrate/{status,begin,objects,commit}  called by another
 *       region, each request signed with its peer key (core/peer.h) and
 *       checked before anything is read or stored: the destination's side;
 *   /v1/migrate/{accounts,run}  called by the operator (oikos migrate),
 *       with the operator token: the source's side, which drives the move
 *       of one account per call and calls the destination's peer routes
 *       with libcurl, at the URL the cluster file gives for it. Per
 *       account: begin (the manifest; "live" if it committed there
 *       already), then the objects in bundles, the last one ending with the
 *       root, which the destination commits with; commit (and status) only
 *       where that was not possible (an account committed before a crash).
 *
 * The peer stream carries plaintext (the destination re-seals it under its
 * own keys): in production the cluster's URLs must be https.
 *
 * Thread-safety: handlers run on libmicrohttpd's threads; each thread keeps
 * its own curl handle (a pthread key frees it when the thread ends), so
 * calls to a peer reuse a kept-alive connection.
 */
#include "base/common.h"

#include <curl/curl.h>
#include <pthread.h>
#include <sodium.h>

#include "base/log.h"
#include "base/util.h"
#include "core/migrate.h"
#include "core/peer.h"
#include "http/http_int.h"

#define BUNDLE_FLUSH (4u << 20) /* send a bundle once it holds this much */
#define PEER_ANSWER_MAX (1u << 20)
#define PEER_TIMEOUT_S 600

/* ---- the destination: /v1/peer/... ------------------------------------------ */

/* Checks the signature of the whole request; from gets the caller. */
static int
peer_check(struct req *q, char from[REGION_NAME_MAX])
{
    int rc = peer_verify(q->region, q->route->method, q->url, http_header(q, "Oikos-Peer"),
                         http_header(q, "Oikos-Peer-Time"), http_header(q, "Oikos-Peer-Nonce"),
                         http_header(q, "Oikos-Peer-Signature"), buf_slice(&q->body), from);
    if (rc == ERR_UNAUTHORIZED) {
        log_warn("event=peer_refused route=%s", q->route->label);
        return http_fail(q, rc, "not a signed request of a known region, or a replay");
    }
    return rc;
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

int
api_peer_status(struct req *q)
{
    char from[REGION_NAME_MAX];
    const char *state = NULL, *id = NULL;
    int rc = peer_check(q, from);
    if (rc)
        return rc;
    if (json_unpack(q->json, "{s:s}", "account", &id) != 0)
        return http_fail(q, ERR_INVAL, "expected {\"account\": \"...\"}");
    rc = migrate_in_status(q->region, id, &state);
    return rc ? rc : reply(q, 200, json_pack("{s:s}", "state", state));
}

int
api_peer_begin(struct req *q)
{
    char from[REGION_NAME_MAX];
    const char *state = NULL;
    int rc = peer_check(q, from);
    if (rc)
        return rc;
    rc = migrate_in_begin(q->region, from, q->json, &state);
    if (rc == ERR_CONFLICT)
        return http_fail(q, rc, "the account is arriving from another region");
    return rc ? rc : reply(q, 200, json_pack("{s:s}", "state", state));
}

int
api_peer_objects_begin(struct req *q)
{
    uint64_t max = region_config(q->region)->max_object_bytes + BUNDLE_FLUSH + 4096;
    if (q->content_length != UINT64_MAX && q->content_length > max)
        return http_fail(q, ERR_TOO_LARGE, "bundle too large");
    buf_init(&q->body, max);
    return 0;
}

int
api_peer_objects_body(struct req *q, const uint8_t *data, size_t len)
{
    int rc = buf_add(&q->body, data, len);
    return rc == ERR_LIMIT ? http_fail(q, ERR_TOO_LARGE, "bundle too large") : rc;
}

int
api_peer_objects(struct req *q)
{
    char from[REGION_NAME_MAX], hex[2 * MIGRATE_ROOT_LEN + 1];
    struct migrate_in_result res;
    int rc = peer_check(q, from);
    if (rc)
        return rc;
    rc = migrate_in_objects(q->region, from, buf_slice(&q->body), &res);
    if (rc == ERR_CONFLICT)
        return http_fail(q, rc,
                         "the account is not arriving from this region, or the roots "
                         "differ: start again");
    if (rc)
        return rc;
    if (!res.committed)
        return reply(q, 200, json_pack("{s:I}", "objects", (json_int_t)res.objects));
    hex_encode(hex, res.root, sizeof(res.root));
    return reply(q, 200,
                 json_pack("{s:I,s:s,s:I,s:I}", "objects", (json_int_t)res.objects, "root", hex,
                           "total", (json_int_t)res.total, "bytes", (json_int_t)res.bytes));
}

int
api_peer_commit(struct req *q)
{
    char from[REGION_NAME_MAX], hex[2 * MIGRATE_ROOT_LEN + 1];
    const char *id = NULL, *roothex = NULL;
    uint8_t root[MIGRATE_ROOT_LEN];
    uint64_t objects = 0, bytes = 0;
    int rc = peer_check(q, from);
    if (rc)
        return rc;
    if (json_unpack(q->json, "{s:s,s:s}", "account", &id, "root", &roothex) != 0 ||
        strlen(roothex) != 2 * MIGRATE_ROOT_LEN ||
        hex_decode(root, sizeof(root), roothex, 2 * MIGRATE_ROOT_LEN))
        return http_fail(q, ERR_INVAL, "expected {\"account\": \"...\", \"root\": \"<64 hex>\"}");
    rc = migrate_in_commit(q->region, from, id, root, &objects, &bytes);
    if (rc == ERR_CONFLICT)
        return http_fail(q, rc, "the roots differ or the account is not arriving: start again");
    if (rc)
        return rc;
    hex_encode(hex, root, sizeof(root));
    return reply(q, 200,
                 json_pack("{s:s,s:I,s:I}", "root", hex, "objects", (json_int_t)objects, "bytes",
                           (json_int_t)bytes));
}

/* ---- calling a peer -------------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static pthread_key_t curl_key;

static void
curl_handle_free(void *h)
{
    curl_easy_cleanup(h);
}

static void
curl_setup(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_key_create(&curl_key, curl_handle_free);
}

static CURL *
curl_handle(void)
{
    pthread_once(&curl_once, curl_setup);
    CURL *h = pthread_getspecific(curl_key);
    if (!h) {
        h = curl_easy_init();
        if (h && pthread_setspecific(curl_key, h)) {
            curl_easy_cleanup(h);
            h = NULL;
        }
    }
    if (h)
        curl_easy_reset(h);
    return h;
}

static size_t
on_answer(char *p, size_t size, size_t n, void *arg)
{
    return buf_add(arg, p, size * n) ? 0 : size * n;
}

/*
 * POSTs body to path of region `to`, signed; *answer gets the JSON answer
 * of a 200 (caller owns it). An error answer gives ERR_CONFLICT (409),
 * ERR_UNAUTHORIZED (401) or ERR_UNAVAILABLE (anything else, or no answer).
 */
static int
peer_post(struct region *r, const char *to, const char *path, const char *ctype, struct slice body,
          json_t **answer)
{
    char url[REGION_URL_MAX + 64], base[REGION_URL_MAX], hdr[4][160];
    uint8_t pk[32];
    struct peer_headers ph;
    struct curl_slist *hl = NULL;
    struct buf ans;
    long status = 0;
    *answer = NULL;
    int rc = region_peer(r, to, base, pk);
    if (rc)
        return rc == ERR_NOT_FOUND ? ERR_INVAL : rc;
    rc = peer_sign(r, &ph, "POST", path, to, body);
    if (rc)
        return rc;
    CURL *h = curl_handle();
    if (!h)
        return ERR_NOMEM;
    buf_init(&ans, PEER_ANSWER_MAX);
    snprintf(url, sizeof(url), "%s%s", base, path);
    snprintf(hdr[0], sizeof(hdr[0]), "Oikos-Peer: %s", ph.from);
    snprintf(hdr[1], sizeof(hdr[1]), "Oikos-Peer-Time: %s", ph.time);
    snprintf(hdr[2], sizeof(hdr[2]), "Oikos-Peer-Nonce: %s", ph.nonce);
    snprintf(hdr[3], sizeof(hdr[3]), "Oikos-Peer-Signature: %s", ph.sig);
    char ct[64];
    snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
    struct curl_slist *next;
    const char *lines[] = {hdr[0], hdr[1], hdr[2], hdr[3], ct, "Expect:"};
    for (size_t i = 0; i < ARRAY_SIZE(lines); i++) {
        next = curl_slist_append(hl, lines[i]);
        if (!next) {
            rc = ERR_NOMEM;
            goto out;
        }
        hl = next;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.p ? (const char *)body.p : "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body.len);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_answer);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &ans);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)PEER_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    CURLcode cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        log_warn("event=peer_call_failed to=%s path=%s err=\"%s\"", to, path,
                 curl_easy_strerror(cc));
        rc = ERR_UNAVAILABLE;
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        log_warn("event=peer_call_refused to=%s path=%s status=%ld", to, path, status);
        rc = status == 409 ? ERR_CONFLICT : status == 401 ? ERR_UNAUTHORIZED : ERR_UNAVAILABLE;
        goto out;
    }
    *answer = json_loadb(ans.data ? ans.data : "", ans.len, 0, NULL);
    rc = *answer ? 0 : ERR_UNAVAILABLE;
out:
    curl_slist_free_all(hl);
    buf_release(&ans);
    return rc;
}

static int
peer_post_json(struct region *r, const char *to, const char *path, json_t *body, json_t **answer)
{
    char *s = json_dumps(body, JSON_COMPACT);
    if (!s)
        return ERR_NOMEM;
    size_t len = strlen(s);
    int rc = peer_post(r, to, path, "application/json", SLICE(s, len), answer);
    sodium_memzero(s, len); /* the manifest carries identifiers */
    free(s);
    return rc;
}

/* ---- the source: /v1/migrate/... ------------------------------------------------- */

struct bundle {
    struct region *r;
    const char *to;
    const char *id;
    struct buf b;
};

static int
bundle_flush(struct bundle *x)
{
    json_t *ans = NULL;
    if (x->b.len <= strlen(x->id) + 1)
        return 0;
    int rc = peer_post(x->r, x->to, "/v1/peer/migrate/objects", "application/octet-stream",
                       buf_slice(&x->b), &ans);
    json_decref(ans);
    buf_reset(&x->b);
    if (!rc)
        rc = buf_add(&x->b, x->id, strlen(x->id) + 1);
    return rc;
}

static int
bundle_add(void *ctx, const char *service, const char *name, size_t namelen, struct slice data)
{
    struct bundle *x = ctx;
    uint8_t size[8];
    be64_put(size, data.len);
    if (x->b.len > strlen(x->id) + 1 && x->b.len + data.len + namelen + 64 > BUNDLE_FLUSH) {
        int rc = bundle_flush(x);
        if (rc)
            return rc;
    }
    int rc = buf_add(&x->b, service, strlen(service) + 1);
    if (!rc)
        rc = buf_add(&x->b, name, namelen);
    if (!rc)
        rc = buf_add(&x->b, "", 1);
    if (!rc)
        rc = buf_add(&x->b, size, sizeof(size));
    if (!rc && data.len)
        rc = buf_add(&x->b, data.p, data.len);
    return rc;
}

/*
 * The account's last bundle, ending with its root (migrate_in_objects):
 * the destination commits with it. *agreed: it answered with the same root.
 */
static int
bundle_last(struct bundle *x, const uint8_t root[MIGRATE_ROOT_LEN], bool *agreed)
{
    char hex[2 * MIGRATE_ROOT_LEN + 1];
    json_t *ans = NULL;
    *agreed = false;
    int rc = bundle_add(x, "", "root", 4, SLICE(root, MIGRATE_ROOT_LEN));
    if (!rc)
        rc = peer_post(x->r, x->to, "/v1/peer/migrate/objects", "application/octet-stream",
                       buf_slice(&x->b), &ans);
    if (!rc) {
        const char *theirs = json_string_value(json_object_get(ans, "root"));
        hex_encode(hex, root, MIGRATE_ROOT_LEN);
        if (!theirs || strcmp(theirs, hex) != 0)
            rc = ERR_CONFLICT;
        else
            *agreed = true;
    }
    json_decref(ans);
    return rc;
}

/* Sends the account to `to` and has it committed there; root gets the agreed root. */
static int
move_send(struct region *r, const char *id, const char *to, uint8_t root[MIGRATE_ROOT_LEN],
          uint64_t *objects, uint64_t *bytes)
{
    char hex[2 * MIGRATE_ROOT_LEN + 1];
    json_t *req = NULL, *ans = NULL, *manifest = NULL;
    struct bundle x = {r, to, id, {0}};
    bool agreed = false;
    buf_init(&x.b, region_config(r)->max_object_bytes + BUNDLE_FLUSH + 4096);
    /* begin answers "live" (doing nothing) if it was committed there before
     * we could record it: then only the roots are compared */
    int rc = migrate_manifest(r, id, &manifest);
    if (!rc)
        rc = peer_post_json(r, to, "/v1/peer/migrate/begin", manifest, &ans);
    if (rc)
        goto out;
    const char *state = json_string_value(json_object_get(ans, "state"));
    bool live = state && !strcmp(state, "live");
    json_decref(ans);
    ans = NULL;
    if (live) {
        rc = migrate_objects(r, id, NULL, NULL, root, objects, bytes);
    } else {
        rc = buf_add(&x.b, id, strlen(id) + 1);
        if (!rc)
            rc = migrate_objects(r, id, bundle_add, &x, root, objects, bytes);
        if (!rc)
            rc = bundle_last(&x, root, &agreed);
    }
    if (rc || agreed)
        goto out;
    hex_encode(hex, root, MIGRATE_ROOT_LEN);
    rc = ERR_NOMEM;
    req = json_pack("{s:s,s:s}", "account", id, "root", hex);
    if (req)
        rc = peer_post_json(r, to, "/v1/peer/migrate/commit", req, &ans);
    if (!rc) {
        const char *theirs = json_string_value(json_object_get(ans, "root"));
        if (!theirs || strcmp(theirs, hex) != 0)
            rc = ERR_CONFLICT;
    }
out:
    if (manifest) { /* it held the password hash and identifiers */
        json_object_clear(manifest);
        json_decref(manifest);
    }
    json_decref(req);
    json_decref(ans);
    buf_release(&x.b);
    return rc;
}

int
api_migrate_run(struct req *q)
{
    const char *id = NULL, *to = NULL;
    char hex[2 * MIGRATE_ROOT_LEN + 1], base[REGION_URL_MAX];
    uint8_t pk[32], root[MIGRATE_ROOT_LEN];
    uint64_t objects = 0, bytes = 0;
    struct migrate_out st;
    if (json_unpack(q->json, "{s:s,s:s}", "account", &id, "to", &to) != 0)
        return http_fail(q, ERR_INVAL, "expected {\"account\": \"...\", \"to\": \"REGION\"}");
    if (!strcmp(to, region_name(q->region)))
        return http_fail(q, ERR_INVAL, "the account is here already");
    int rc = region_peer(q->region, to, base, pk);
    if (rc)
        return http_fail(q, ERR_INVAL, "the cluster file names no such region with a peer_key");
    const char *in = NULL;
    if (!migrate_in_status(q->region, id, &in) && !strcmp(in, "receiving"))
        return http_fail(q, ERR_CONFLICT, "the account is still arriving here");
    rc = migrate_out_get(q->region, id, &st);
    if (rc == ERR_NOT_FOUND)
        return http_fail(q, rc, "no such account here");
    if (rc)
        return rc;
    if (st.phase == MIGRATE_MOVED) {
        if (strcmp(st.to, to) != 0)
            return http_fail(q, ERR_CONFLICT, "the account moved to another region");
        return reply(q, 200,
                     json_pack("{s:s,s:s,s:I,s:I}", "account", id, "state", "moved", "objects",
                               (json_int_t)0, "bytes", (json_int_t)0));
    }
    if (st.phase != MIGRATE_NONE && strcmp(st.to, to) != 0)
        return http_fail(q, ERR_CONFLICT, "the account is moving to another region");
    if (st.phase != MIGRATE_COMMITTED) {
        rc = migrate_freeze(q->region, id, to);
        if (rc == ERR_UNAVAILABLE) { /* the account's writes are still draining */
            q->retry_after = MIGRATE_RETRY_AFTER;
            return http_fail(q, rc, "the account's writes are still running; try again");
        }
        if (!rc)
            rc = move_send(q->region, id, to, root, &objects, &bytes);
        if (!rc)
            rc = migrate_out_committed(q->region, id, root);
        if (rc == ERR_CONFLICT)
            return http_fail(q, rc, "the destination's root differs; run the move again");

        if (rc)
            return rc;
    } else {
        memcpy(root, st.root, sizeof(root));
    }
    rc = migrate_shred(q->region, id);
    if (rc)
        return rc;
    hex_encode(hex, root, sizeof(root));
    return reply(q, 200,
                 json_pack("{s:s,s:s,s:s,s:I,s:I}", "account", id, "state", "moved", "root", hex,
                           "objects", (json_int_t)objects, "bytes", (json_int_t)bytes));
}

static int
list_add(void *ctx, const char *id, uint64_t objects, uint64_t bytes)
{
    json_t *o = json_pack("{s:s,s:I,s:I}", "account", id, "objects", (json_int_t)objects, "bytes",
                          (json_int_t)bytes);
    return o && !json_array_append_new(ctx, o) ? 0 : ERR_NOMEM;
}

int
api_migrate_accounts(struct req *q)
{
    const char *cc = http_query(q, "country"), *id = http_query(q, "account");
    if ((!cc) == (!id) || (cc && strlen(cc) != 2))
        return http_fail(q, ERR_INVAL, "give ?country=CC or ?account=ID");
    json_t *arr = json_array();
    if (!arr)
        return ERR_NOMEM;
    int rc = migrate_list(q->region, cc, id, list_add, arr);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    json_t *o = json_pack("{s:s,s:o}", "region", region_name(q->region), "accounts", arr);
    if (o && id) {
        struct migrate_out st;
        const char *in = NULL;
        const char *state = "none";
        if (!migrate_in_status(q->region, id, &in) && !strcmp(in, "receiving"))
            state = in;
        else if (!migrate_out_get(q->region, id, &st))
            state = st.phase == MIGRATE_MOVED       ? "moved"
                    : st.phase == MIGRATE_COMMITTED ? "committed"
                    : st.phase == MIGRATE_FROZEN    ? "frozen"
                                                    : "live";
        if (json_object_set_new(o, "state", json_string(state))) {
            json_decref(o);
            o = NULL;
        }
    }
    return reply(q, 200, o);
}
