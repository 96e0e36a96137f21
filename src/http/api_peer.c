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
 *       of one account or a batch of them per call and calls the
 *       destination's peer routes with libcurl, at the URL the cluster file
 *       gives for it. Per batch: the freeze (one commit); begin (every
 *       manifest in one call; "live" for an account committed there
 *       already); then the objects in bundles of several accounts, each
 *       account's last section ending with its root, which the destination
 *       commits it with; commit (and status) only where that was not
 *       possible (an account committed before a crash); then the agreed
 *       roots recorded and the accounts shredded, one commit each for all.
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
#include "core/acct.h"
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
    int rc = peer_check(q, from);
    if (rc)
        return rc;
    json_t *states = json_object();
    if (!states)
        return ERR_NOMEM;
    rc = migrate_in_begin(q->region, from, json_object_get(q->json, "accounts"), states);
    if (rc) {
        json_decref(states);
        return rc == ERR_INVAL ? http_fail(q, rc,
                                           "expected {\"accounts\": [manifest, ...]}: a batch of "
                                           "distinct accounts, each manifest complete")
                               : rc;
    }
    return reply(q, 200, json_pack("{s:o}", "states", states));
}

int
api_peer_objects_begin(struct req *q)
{
    uint64_t max = region_config(q->region)->max_object_bytes + BUNDLE_FLUSH + 4096;
    if (q->content_length != UINT64_MAX && q->content_length > max)
        return http_fail(q, ERR_TOO_LARGE, "bundle too large");
    buf_init(&q->body, max);
    /* the whole bundle at once, not grown (and copied) by doubling */
    if (q->content_length != UINT64_MAX && buf_grow(&q->body, (size_t)q->content_length))
        return ERR_NOMEM;
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
    size_t n = 0;
    int rc = peer_check(q, from);
    if (rc)
        return rc;
    struct migrate_in_result *res = calloc(MIGRATE_BATCH_MAX, sizeof(*res));
    json_t *accounts = json_object();
    rc = res && accounts ? migrate_in_objects(q->region, from, buf_slice(&q->body), res, &n)
                         : ERR_NOMEM;
    for (size_t i = 0; !rc && i < n; i++) {
        json_t *o = json_pack("{s:I}", "objects", (json_int_t)res[i].objects);
        if (o && res[i].committed) {
            hex_encode(hex, res[i].root, sizeof(res[i].root));
            if (json_object_set_new(o, "root", json_string(hex)) ||
                json_object_set_new(o, "total", json_integer((json_int_t)res[i].total)) ||
                json_object_set_new(o, "bytes", json_integer((json_int_t)res[i].bytes))) {
                json_decref(o);
                o = NULL;
            }
        }
        if (!o || json_object_set_new(accounts, res[i].id, o))
            rc = ERR_NOMEM;
    }
    free(res);
    if (rc) {
        json_decref(accounts);
        if (rc == ERR_CONFLICT)
            return http_fail(q, rc,
                             "an account is not arriving from this region, or the roots "
                             "differ: start again");
        return rc == ERR_INVAL ? http_fail(q, rc, "malformed bundle") : rc;
    }
    return reply(q, 200, json_pack("{s:o}", "accounts", accounts));
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

/* One account of a move request. */
struct mv {
    const char *id;
    int rc;          /* why it did not move (0: it did, or it goes on) */
    const char *why; /* the message of rc */
    bool send;       /* to be sent (frozen, not committed there yet) */
    bool live;       /* the destination has it live already */
    bool agreed;     /* the destination committed it with root */
    uint8_t root[MIGRATE_ROOT_LEN];
    uint64_t objects, bytes;
};

static void
mv_fail(struct mv *m, int rc, const char *why)
{
    m->rc = rc;
    m->why = why;
    m->send = false;
}

static const char ROOTS_DIFFER[] = "the destination's root differs; run the move again";

/*
 * Bundles on their way to the destination: sections of accounts (an
 * account's objects in one section, or cut across bundles), each closed
 * with its length, the account's last one ending with its root.
 */
struct bundle {
    struct region *r;
    const char *to;
    struct mv *v; /* the request's accounts, to record the answers in */
    size_t n;
    struct mv *cur; /* the account of the open section, or NULL */
    size_t len_at;  /* where the open section's length goes */
    size_t items;   /* entries in the bundle */
    struct buf b;
};

static int
section_open(struct bundle *x, struct mv *m)
{
    uint8_t zero[8] = {0};
    int rc = buf_add(&x->b, m->id, strlen(m->id) + 1);
    if (!rc)
        rc = buf_add(&x->b, zero, sizeof(zero));
    x->len_at = x->b.len - sizeof(zero);
    x->cur = m;
    return rc;
}

static void
section_close(struct bundle *x)
{
    if (x->cur)
        be64_put((uint8_t *)x->b.data + x->len_at, x->b.len - x->len_at - 8);
    x->cur = NULL;
}

/* The accounts the destination says it committed: their roots must be ours. */
static void
bundle_answer(struct bundle *x, json_t *ans)
{
    char hex[2 * MIGRATE_ROOT_LEN + 1];
    json_t *accounts = json_object_get(ans, "accounts");
    for (size_t i = 0; i < x->n; i++) {
        struct mv *m = &x->v[i];
        const char *theirs =
            json_string_value(json_object_get(json_object_get(accounts, m->id), "root"));
        if (!theirs || !m->send)
            continue;
        hex_encode(hex, m->root, MIGRATE_ROOT_LEN);
        if (strcmp(theirs, hex) != 0)
            mv_fail(m, ERR_CONFLICT, ROOTS_DIFFER);
        else
            m->agreed = true;
    }
}

/* Sends the bundle; an account cut by it goes on in a new section. */
static int
bundle_flush(struct bundle *x)
{
    json_t *ans = NULL;
    struct mv *cur = x->cur;
    if (!x->items && !cur)
        return 0;
    section_close(x);
    int rc = peer_post(x->r, x->to, "/v1/peer/migrate/objects", "application/octet-stream",
                       buf_slice(&x->b), &ans);
    if (!rc)
        bundle_answer(x, ans);
    json_decref(ans);
    buf_reset(&x->b);
    x->items = 0;
    if (!rc && cur)
        rc = section_open(x, cur);
    return rc;
}

/* Adds an entry (a migrate_obj_cb: ctx is the bundle), sending the bundle first if it is full. */
static int
bundle_add(void *ctx, const char *service, const char *name, size_t namelen, struct slice data)
{
    struct bundle *x = ctx;
    uint8_t size[8];
    be64_put(size, data.len);
    if (x->items && x->b.len + data.len + namelen + 64 > BUNDLE_FLUSH) {
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
    x->items++;
    return rc;
}

/* An account the destination did not commit from a bundle (live there before): compares roots. */
static int
commit_one(struct region *r, const char *to, struct mv *m)
{
    char hex[2 * MIGRATE_ROOT_LEN + 1];
    json_t *ans = NULL;
    hex_encode(hex, m->root, MIGRATE_ROOT_LEN);
    json_t *req = json_pack("{s:s,s:s}", "account", m->id, "root", hex);
    int rc = req ? peer_post_json(r, to, "/v1/peer/migrate/commit", req, &ans) : ERR_NOMEM;
    if (!rc) {
        const char *theirs = json_string_value(json_object_get(ans, "root"));
        if (theirs && !strcmp(theirs, hex))
            m->agreed = true;
        else
            mv_fail(m, ERR_CONFLICT, ROOTS_DIFFER);
    } else if (rc == ERR_CONFLICT) {
        mv_fail(m, rc, ROOTS_DIFFER);
        rc = 0;
    }
    json_decref(req);
    json_decref(ans);
    return rc;
}

/* Freezes the accounts to send (one durable commit for them all). */
static int
move_freeze(struct region *r, const char *to, struct mv *v, size_t n)
{
    const char *ids[MIGRATE_BATCH_MAX];
    int rcs[MIGRATE_BATCH_MAX];
    size_t k = 0, at[MIGRATE_BATCH_MAX];
    for (size_t i = 0; i < n; i++)
        if (v[i].send) {
            at[k] = i;
            ids[k++] = v[i].id;
        }
    int rc = k ? migrate_freeze(r, ids, k, to, rcs) : 0;
    for (size_t j = 0; !rc && j < k; j++) {
        if (rcs[j] == ERR_UNAVAILABLE)
            mv_fail(&v[at[j]], rcs[j], "the account's writes are still running; try again");
        else if (rcs[j] == ERR_CONFLICT)
            mv_fail(&v[at[j]], rcs[j], "the account is moving to another region");
        else if (rcs[j])
            rc = rcs[j];
    }
    return rc;
}

/* The manifests of the accounts to send, in one call: which are arriving there, which live. */
static int
move_begin(struct region *r, const char *to, struct mv *v, size_t n)
{
    json_t *arr = json_array(), *ans = NULL;
    int rc = arr ? 0 : ERR_NOMEM;
    for (size_t i = 0; !rc && i < n; i++) {
        json_t *m = NULL;
        if (!v[i].send)
            continue;
        rc = migrate_manifest(r, v[i].id, &m);
        if (!rc && json_array_append_new(arr, m))
            rc = ERR_NOMEM;
    }
    if (!rc && json_array_size(arr)) {
        json_t *req = json_pack("{s:O}", "accounts", arr);
        rc = req ? peer_post_json(r, to, "/v1/peer/migrate/begin", req, &ans) : ERR_NOMEM;
        json_decref(req);
    }
    json_t *states = json_object_get(ans, "states");
    for (size_t i = 0; !rc && i < n; i++) {
        if (!v[i].send)
            continue;
        const char *st = json_string_value(json_object_get(states, v[i].id));
        if (!st)
            rc = ERR_UNAVAILABLE;
        else if (!strcmp(st, "conflict"))
            mv_fail(&v[i], ERR_CONFLICT, "the account is arriving there from another region");
        else
            v[i].live = !strcmp(st, "live");
    }
    /* the manifests held password hashes and identifiers */
    for (size_t i = 0; i < json_array_size(arr); i++)
        json_object_clear(json_array_get(arr, i));
    json_decref(arr);
    json_decref(ans);
    return rc;
}

/*
 * Sends the accounts in bundles and has them committed there: each
 * account's root is computed as its objects are read, and the destination
 * commits an account with the bundle that ends it if the roots agree.
 */
static int
move_send(struct region *r, const char *to, struct mv *v, size_t n)
{
    struct bundle x = {r, to, v, n, NULL, 0, 0, {0}};
    buf_init(&x.b, region_config(r)->max_object_bytes + BUNDLE_FLUSH + 4096);
    /* room for a full bundle at once, not grown (and copied) by doubling */
    int rc = buf_grow(&x.b, BUNDLE_FLUSH);
    for (size_t i = 0; !rc && i < n; i++) {
        struct mv *m = &v[i];
        if (!m->send || m->live)
            continue;
        rc = section_open(&x, m);
        if (!rc)
            rc = migrate_objects(r, m->id, bundle_add, &x, m->root, &m->objects, &m->bytes);
        if (!rc)
            rc = bundle_add(&x, "", "root", 4, SLICE(m->root, MIGRATE_ROOT_LEN));
        section_close(&x);
    }
    if (!rc)
        rc = bundle_flush(&x);
    buf_release(&x.b);
    if (rc == ERR_CONFLICT) { /* a bundle refused: whatever it held is sent again next time */
        for (size_t i = 0; i < n; i++)
            if (v[i].send && !v[i].agreed)
                mv_fail(&v[i], ERR_CONFLICT, ROOTS_DIFFER);
        rc = 0;
    }
    /* live there before we could record it, or committed there but not in a
     * bundle's answer: then only the roots are compared */
    for (size_t i = 0; !rc && i < n; i++) {
        struct mv *m = &v[i];
        if (!m->send || m->agreed)
            continue;
        if (m->live)
            rc = migrate_objects(r, m->id, NULL, NULL, m->root, &m->objects, &m->bytes);
        if (!rc)
            rc = commit_one(r, to, m);
    }
    return rc;
}

/* Records the agreed roots, then shreds every committed account. */
static int
move_finish(struct region *r, struct mv *v, size_t n)
{
    const char *ids[MIGRATE_BATCH_MAX];
    uint8_t roots[MIGRATE_BATCH_MAX][MIGRATE_ROOT_LEN];
    int rcs[MIGRATE_BATCH_MAX];
    size_t k = 0, at[MIGRATE_BATCH_MAX];
    for (size_t i = 0; i < n; i++)
        if (v[i].send && v[i].agreed) {
            at[k] = i;
            ids[k] = v[i].id;
            memcpy(roots[k++], v[i].root, MIGRATE_ROOT_LEN);
        }
    int rc =
        k ? migrate_out_committed(r, ids, (const uint8_t(*)[MIGRATE_ROOT_LEN])roots, k, rcs) : 0;
    for (size_t j = 0; !rc && j < k; j++)
        if (rcs[j])
            mv_fail(&v[at[j]], rcs[j], "the account's move was not under way here");
    k = 0;
    for (size_t i = 0; !rc && i < n; i++)
        if (!v[i].rc) {
            at[k] = i;
            ids[k++] = v[i].id;
        }
    if (!rc && k)
        rc = migrate_shred(r, ids, k, rcs);
    for (size_t j = 0; !rc && j < k; j++)
        if (rcs[j])
            mv_fail(&v[at[j]], rcs[j], "the account's move was not committed");
    return rc;
}

/*
 * Where account m stands here before its move goes on: rc and why set if
 * it cannot move to `to`; send if it must be (frozen and) sent; otherwise
 * committed there already (root known: only the shred is left) or moved.
 */
static int
move_check(struct region *r, const char *to, struct mv *m)
{
    struct migrate_out st;
    const char *in = NULL;
    if (!acct_id_valid(m->id)) {
        mv_fail(m, ERR_NOT_FOUND, "no such account here");
        return 0;
    }
    if (!migrate_in_status(r, m->id, &in) && !strcmp(in, "receiving")) {
        mv_fail(m, ERR_CONFLICT, "the account is still arriving here");
        return 0;
    }
    int rc = migrate_out_get(r, m->id, &st);
    if (rc == ERR_NOT_FOUND)
        mv_fail(m, rc, "no such account here");
    else if (rc)
        return rc;
    else if (st.phase != MIGRATE_NONE && strcmp(st.to, to) != 0)
        mv_fail(m, ERR_CONFLICT,
                st.phase == MIGRATE_MOVED ? "the account moved to another region"
                                          : "the account is moving to another region");
    else if (st.phase == MIGRATE_COMMITTED)
        memcpy(m->root, st.root, MIGRATE_ROOT_LEN);
    else
        m->send = st.phase != MIGRATE_MOVED;
    return 0;
}

static json_t *
mv_json(const struct mv *m)
{
    char hex[2 * MIGRATE_ROOT_LEN + 1];
    if (m->rc)
        return json_pack("{s:s,s:{s:s,s:s}}", "account", m->id, "error", "code", err_code(m->rc),
                         "message", m->why ? m->why : err_str(m->rc));
    json_t *o = json_pack("{s:s,s:s,s:I,s:I}", "account", m->id, "state", "moved", "objects",
                          (json_int_t)m->objects, "bytes", (json_int_t)m->bytes);
    hex_encode(hex, m->root, MIGRATE_ROOT_LEN);
    if (o && !sodium_is_zero(m->root, MIGRATE_ROOT_LEN) &&
        json_object_set_new(o, "root", json_string(hex))) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

/*
 * POST /v1/migrate/run: {"account": ID, "to": REGION} answers that
 * account's move or its error; {"accounts": [ID, ...], "to": REGION}
 * moves them together (each step one commit and one call for them all)
 * and answers {"accounts": [result or {"account", "error"}, ...]}.
 */
int
api_migrate_run(struct req *q)
{
    const char *id = NULL, *to = NULL;
    json_t *list = NULL;
    char base[REGION_URL_MAX];
    uint8_t pk[32];
    struct mv v[MIGRATE_BATCH_MAX];
    size_t n = 0;
    _Static_assert(MIGRATE_BATCH_MAX == 64, "the message below says 64");
    memset(v, 0, sizeof(v));
    if (json_unpack(q->json, "{s:s,s?s,s?o}", "to", &to, "account", &id, "accounts", &list) != 0 ||
        (!id) == (!list) || (list && !json_is_array(list)) ||
        json_array_size(list) > MIGRATE_BATCH_MAX || (list && !json_array_size(list)))
        return http_fail(q, ERR_INVAL,
                         "expected {\"account\": \"...\", \"to\": \"REGION\"} or "
                         "{\"accounts\": [\"...\", ...], \"to\": \"REGION\"}, at most 64 accounts");
    if (id)
        v[n++].id = id;
    for (size_t i = 0; i < json_array_size(list); i++) {
        v[n].id = json_string_value(json_array_get(list, i));
        if (!v[n].id)
            return http_fail(q, ERR_INVAL, "accounts: a list of account ids");
        for (size_t j = 0; j < n; j++)
            if (!strcmp(v[j].id, v[n].id))
                return http_fail(q, ERR_INVAL, "accounts: an account is named twice");
        n++;
    }
    if (!strcmp(to, region_name(q->region)))
        return http_fail(q, ERR_INVAL, "the account is here already");
    int rc = region_peer(q->region, to, base, pk);
    if (rc)
        return http_fail(q, ERR_INVAL, "the cluster file names no such region with a peer_key");
    for (size_t i = 0; !rc && i < n; i++)
        rc = move_check(q->region, to, &v[i]);
    if (!rc)
        rc = move_freeze(q->region, to, v, n);
    if (!rc)
        rc = move_begin(q->region, to, v, n);
    if (!rc)
        rc = move_send(q->region, to, v, n);
    if (!rc)
        rc = move_finish(q->region, v, n);
    if (rc)
        return rc;
    if (id) { /* one account: its error is the answer's */
        if (v[0].rc == ERR_UNAVAILABLE)
            q->retry_after = MIGRATE_RETRY_AFTER;
        return v[0].rc ? http_fail(q, v[0].rc, v[0].why) : reply(q, 200, mv_json(&v[0]));
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        if (json_array_append_new(arr, mv_json(&v[i]))) {
            json_decref(arr);
            arr = NULL;
        }
    return reply(q, 200, arr ? json_pack("{s:o}", "accounts", arr) : NULL);
}

static int
list_add(void *ctx, const char *id, uint64_t objects, uint64_t bytes)
{
    json_t *o = json_pack("{s:s,s:I,s:I}", "account", id, "objects", (json_int_t)objects, "bytes",
                          (json_int_t)bytes);
    return o && !json_array_append_new(ctx, o) ? 0 : ERR_NOMEM;
}

/* Where the move of account id stands in this region. */
static const char *
move_state(struct region *r, const char *id)
{
    struct migrate_out st;
    const char *in = NULL;
    if (!migrate_in_status(r, id, &in) && !strcmp(in, "receiving"))
        return in;
    if (!migrate_out_get(r, id, &st))
        return st.phase == MIGRATE_MOVED       ? "moved"
               : st.phase == MIGRATE_COMMITTED ? "committed"
               : st.phase == MIGRATE_FROZEN    ? "frozen"
                                               : "live";
    return "none";
}

/*
 * ?accounts=ID,ID,...: each account in the order given, listed as by
 * ?account (objects and bytes if served here) and with its state.
 */
static int
accounts_each(struct req *q, const char *list, json_t *arr)
{
    char id[STORE_ID_MAX];
    size_t n = 0;
    for (const char *p = list;; n++) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (n == MIGRATE_BATCH_MAX || len == 0 || len >= sizeof(id))
            return http_fail(q, ERR_INVAL, "?accounts takes 1 to 64 account ids, comma-separated");
        memcpy(id, p, len);
        id[len] = 0;
        if (!acct_id_valid(id))
            return http_fail(q, ERR_INVAL, "?accounts: not an account id");
        size_t before = json_array_size(arr);
        int rc = migrate_list(q->region, NULL, id, list_add, arr);
        if (rc)
            return rc;
        if (json_array_size(arr) == before &&
            json_array_append_new(arr, json_pack("{s:s}", "account", id)))
            return ERR_NOMEM;
        if (json_object_set_new(json_array_get(arr, before), "state",
                                json_string(move_state(q->region, id))))
            return ERR_NOMEM;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

int
api_migrate_accounts(struct req *q)
{
    const char *cc = http_query(q, "country"), *id = http_query(q, "account"),
               *list = http_query(q, "accounts");
    if (!!cc + !!id + !!list != 1 || (cc && strlen(cc) != 2))
        return http_fail(q, ERR_INVAL, "give ?country=CC, ?account=ID or ?accounts=ID,ID,...");
    json_t *arr = json_array();
    if (!arr)
        return ERR_NOMEM;
    int rc = list ? accounts_each(q, list, arr) : migrate_list(q->region, cc, id, list_add, arr);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    json_t *o = json_pack("{s:s,s:o}", "region", region_name(q->region), "accounts", arr);
    if (o && id && json_object_set_new(o, "state", json_string(move_state(q->region, id)))) {
        json_decref(o);
        o = NULL;
    }
    return reply(q, 200, o);
}
