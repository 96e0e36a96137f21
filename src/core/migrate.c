/* SPDX-License-Identifier: Apache-2.0 */
/*
 * migrate.c: the domain half of moving accounts between regions (see
 * migrate.h), on top of the store's per-account records (state and
 * tombstones), the consent ledger, the identifiers, the sessions, object
 * views (reading plaintext at the source, unaudited) and object imports
 * (re-sealing at the destination, obj_import), and the audit log. The root
 * is RFC 6962's Merkle tree hash (audit/merkle.h) over the objects' leaves
 * sorted bytewise, a leaf being service NUL name NUL SHA-256(bytes).
 *
 * The write fence: a user's write counts itself in one of FENCE_SLOTS
 * counters (chosen by a hash of the account) before it reads the freeze
 * record; a freeze commits the record and then waits for the account's
 * counter to drain. So a write either sees the freeze (503) or is waited
 * for before the first object is read. Objects read for the destination
 * are held in memory one at a time.
 *
 * Thread-safety: the fence counters are atomics; everything else goes
 * through the store.
 */
#include "base/common.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/merkle.h"
#include "base/log.h"
#include "base/util.h"
#include "core/acct.h"
#include "core/consent.h"
#include "core/ident.h"
#include "core/migrate.h"
#include "core/obj.h"
#include "core/retention.h"
#include "core/svc.h"
#include "crypto/kr.h"
#include "crypto/secret.h"
#include "crypto/hash.h"

#define REC_OUT "migout"
#define REC_IN "migin"
#define REC_MOVED "moved"
#define REC_MOVED_TOKEN "movedtok" /* token hash -> expiry: the tombstone of a session */
#define REC_IN_TOKEN "intok"       /* token hash -> expiry: a session that moved here */
#define REC_KEY SLICE("s", 1)
#define FENCE_SLOTS 1024
#define FENCE_WAIT_MS 10000
#define FEED_PAGE 256

static _Atomic long fence[FENCE_SLOTS];

/* FNV-1a of an account id: where its fence counter and its lock are. */
static uint32_t
acct_hash(const char *account)
{
    uint32_t h = 2166136261u;
    for (const char *p = account; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return h;
}

static unsigned
fence_slot(const char *account)
{
    return acct_hash(account) % FENCE_SLOTS;
}

/* Copies a region name; ERR_CORRUPT if it does not fit. */
static int
name_copy(char dst[REGION_NAME_MAX], const char *src)
{
    size_t n = strlen(src);
    if (n >= REGION_NAME_MAX)
        return ERR_CORRUPT;
    memcpy(dst, src, n + 1);
    return 0;
}

/* A record's value as a NUL-terminated string in out. */
static int
rec_text(struct region *r, const char *id, const char *kind, char *out, size_t cap)
{
    struct buf v;
    buf_init(&v, 256);
    int rc = store_rec_get(region_store(r), id, kind, REC_KEY, &v);
    if (!rc && v.len >= cap)
        rc = ERR_CORRUPT;
    if (!rc) {
        memcpy(out, v.data, v.len);
        out[v.len] = 0;
    }
    buf_release(&v);
    return rc;
}

/* ---- everywhere ------------------------------------------------------------- */

int
migrate_route(struct region *r, const char *id, char name[REGION_NAME_MAX],
              char url[REGION_URL_MAX])
{
    char v[128];
    struct store_account a;
    if (!acct_id_valid(id))
        return region_route(r, id, '-', name, url);
    int rc = rec_text(r, id, REC_IN, v, sizeof(v));
    if (rc == 0) { /* arriving: the source serves it until the commit */
        v[strcspn(v, "|")] = 0;
        rc = name_copy(name, v);
        if (!rc)
            rc = region_locate(r, name, url);
        return rc ? rc : ERR_WRONG_REGION;
    }
    if (rc != ERR_NOT_FOUND)
        return rc;
    rc = store_account_get(region_store(r), id, &a);
    secret_wipe(&a, sizeof(a));
    if (rc != ERR_NOT_FOUND)
        return rc;
    rc = rec_text(r, id, REC_MOVED, v, sizeof(v));
    if (rc == 0) {
        rc = name_copy(name, v);
        if (!rc)
            rc = region_locate(r, name, url);
        return rc ? rc : ERR_WRONG_REGION;
    }
    if (rc != ERR_NOT_FOUND)
        return rc;
    return region_route(r, id, '-', name, url);
}

/* Reads a token record of kind (token hash -> expiry): ERR_NOT_FOUND if none or expired. */
static int
token_rec(struct region *r, const char *kind, const char *token, char account[STORE_ID_MAX])
{
    uint8_t th[STORE_HASH_LEN];
    struct buf v;
    region_token_hash(th, token);
    int rc = store_rec_find(region_store(r), kind, SLICE(th, sizeof(th)), account);
    if (rc)
        return rc;
    buf_init(&v, 64);
    rc = store_rec_get(region_store(r), account, kind, SLICE(th, sizeof(th)), &v);
    if (!rc && v.len == 8) {
        if ((int64_t)be64_get((const uint8_t *)v.data) <= clock_now())
            rc = ERR_NOT_FOUND;
    } else if (!rc) {
        rc = ERR_CORRUPT;
    }
    buf_release(&v);
    return rc;
}

/* A token whose session moved away with its account: where it went. */
static int
moved_token(struct region *r, const char *token, char name[REGION_NAME_MAX],
            char url[REGION_URL_MAX])
{
    char account[STORE_ID_MAX];
    int rc = token_rec(r, REC_MOVED_TOKEN, token, account);
    if (rc)
        return rc == ERR_NOT_FOUND ? ERR_UNAUTHORIZED : rc;
    rc = migrate_route(r, account, name, url);
    return rc == 0 ? ERR_UNAUTHORIZED : rc == ERR_NOT_FOUND ? ERR_UNAUTHORIZED : rc;
}

int
migrate_auth(struct region *r, const char *token, char account[STORE_ID_MAX],
             char name[REGION_NAME_MAX], char url[REGION_URL_MAX])
{
    char n2[REGION_NAME_MAX], u2[REGION_URL_MAX];
    int rc = region_route(r, token, '.', name, url);
    if (rc == ERR_NOT_FOUND)
        return ERR_UNAUTHORIZED;
    if (rc && rc != ERR_WRONG_REGION)
        return rc;
    bool ours = rc == 0;
    rc = acct_auth(r, token, account);
    if (rc == 0) {
        if (ours)
            return 0;
        /* another region's token whose session moved here: served here? */
        rc = migrate_route(r, account, n2, u2);
        if (rc == 0)
            return 0;
        if (rc != ERR_WRONG_REGION)
            return rc;
    } else if (rc != ERR_UNAUTHORIZED) {
        return rc;
    } else { /* unknown here: did its session move away from here? */
        rc = moved_token(r, token, n2, u2);
        if (rc == ERR_UNAUTHORIZED && !ours) {
            /* a session that moved here and ended here (logged out) is not
             * sent back to the region it came from, which would send it here */
            char a2[STORE_ID_MAX];
            rc = token_rec(r, REC_IN_TOKEN, token, a2);
            if (rc == 0)
                return ERR_UNAUTHORIZED;
            if (rc != ERR_NOT_FOUND)
                return rc;
            return ERR_WRONG_REGION; /* to the region its prefix names */
        }
        if (rc != ERR_WRONG_REGION)
            return rc;
    }
    memcpy(name, n2, sizeof(n2));
    memcpy(url, u2, sizeof(u2));
    return ERR_WRONG_REGION;
}

int
migrate_write_enter(struct region *r, const char *account, unsigned *slot)
{
    struct buf v;
    unsigned s = fence_slot(account);
    *slot = 0;
    atomic_fetch_add(&fence[s], 1);
    buf_init(&v, 256);
    int rc = store_rec_get(region_store(r), account, REC_OUT, REC_KEY, &v);
    buf_release(&v);
    if (rc == ERR_NOT_FOUND) {
        *slot = s + 1;
        return 0;
    }
    atomic_fetch_sub(&fence[s], 1);
    return rc ? rc : ERR_UNAVAILABLE;
}

void
migrate_write_leave(unsigned slot)
{
    if (slot)
        atomic_fetch_sub(&fence[slot - 1], 1);
}

struct list_ctx {
    struct region *r;
    const char *cc;
    migrate_list_cb cb;
    void *ctx;
};

static int
list_one(struct list_ctx *l, const char *id)
{
    struct store_account a;
    char v[128];
    uint64_t objects = 0, bytes = 0;
    int rc = store_account_get(region_store(l->r), id, &a);
    if (rc == ERR_NOT_FOUND)
        return 0;
    if (rc)
        return rc;
    bool match = !l->cc || !strcasecmp(a.country, l->cc);
    secret_wipe(&a, sizeof(a));
    if (!match)
        return 0;
    rc = rec_text(l->r, id, REC_IN, v, sizeof(v));
    if (rc != ERR_NOT_FOUND)
        return rc; /* arriving here: not ours to list */
    rc = store_usage(region_store(l->r), id, NULL, &objects, &bytes); /* every service */
    if (rc)
        return rc;
    return l->cb(l->ctx, id, objects, bytes);
}

static int
list_row(void *ctx, const char *account, int64_t at)
{
    (void)at;
    return list_one(ctx, account);
}

int
migrate_list(struct region *r, const char *cc, const char *id, migrate_list_cb cb, void *ctx)
{
    struct list_ctx l = {r, cc, cb, ctx};
    if (id)
        return acct_id_valid(id) ? list_one(&l, id) : 0;
    /* every account: none is idle before the end of time */
    return store_accounts_idle(region_store(r), INT64_MAX, SIZE_MAX / 2, list_row, &l);
}

/* ---- the root ------------------------------------------------------------------ */

struct leaves {
    struct buf *v; /* one leaf's bytes each, owned */
    size_t n, cap;
};

static int
leaves_add(struct leaves *l, const char *service, const char *name, size_t namelen,
           struct slice data, bool sized)
{
    uint8_t h[HASH_SHA256_LEN];
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        struct buf *v = realloc(l->v, cap * sizeof(*v));
        if (!v)
            return ERR_NOMEM;
        l->v = v;
        l->cap = cap;
    }
    struct buf *b = &l->v[l->n];
    buf_init(b, STORE_SERVICE_MAX + OBJ_NAME_MAX + sizeof(h) + 2 + 8);
    hash_sha256(h, data.p, data.len);
    int rc = buf_add(b, service, strlen(service) + 1);
    if (!rc)
        rc = buf_add(b, name, namelen);
    if (!rc)
        rc = buf_add(b, "", 1);
    if (!rc)
        rc = buf_add(b, h, sizeof(h));
    if (!rc && sized) { /* for the roots of arriving accounts: the size after the leaf */
        uint8_t sz[8];
        be64_put(sz, data.len);
        rc = buf_add(b, sz, sizeof(sz));
    }
    if (rc) {
        buf_release(b);
        return rc;
    }
    l->n++;
    return 0;
}

static void
leaves_release(struct leaves *l)
{
    for (size_t i = 0; i < l->n; i++)
        buf_release(&l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static int
leaf_cmp(const void *a, const void *b)
{
    const struct buf *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->data, y->data, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* RFC 6962 MTH of hashes [lo, hi), hi > lo. */
static void
mth(struct merkle_hash *out, const struct merkle_hash *h, size_t lo, size_t hi)
{
    if (hi - lo == 1) {
        *out = h[lo];
        return;
    }
    size_t k = 1;
    while (k * 2 < hi - lo)
        k *= 2;
    struct merkle_hash left, right;
    mth(&left, h, lo, lo + k);
    mth(&right, h, lo + k, hi);
    merkle_node_hash(out, &left, &right);
}

static int
leaves_root(struct leaves *l, uint8_t root[MIGRATE_ROOT_LEN])
{
    struct merkle_hash r;
    if (l->n == 0) {
        merkle_empty_root(&r);
        memcpy(root, r.b, MIGRATE_ROOT_LEN);
        return 0;
    }
    qsort(l->v, l->n, sizeof(*l->v), leaf_cmp);
    struct merkle_hash *h = malloc(l->n * sizeof(*h));
    if (!h)
        return ERR_NOMEM;
    for (size_t i = 0; i < l->n; i++)
        merkle_leaf_hash(&h[i], (const uint8_t *)l->v[i].data, l->v[i].len);
    mth(&r, h, 0, l->n);
    free(h);
    memcpy(root, r.b, MIGRATE_ROOT_LEN);
    return 0;
}

/*
 * The roots of arriving accounts, from the plaintext as it was sealed: each
 * bundle's leaves (with each object's size after them) are added here once
 * their objects committed, so the commit needs no read-back. A name sent
 * twice (a bundle sent again) is kept once. Only what this process sealed
 * is here, so the commit trusts it only if the store holds exactly as many
 * live objects and bytes as the leaves name (every leaf's object is stored,
 * so equal counts mean equal sets); anything else (a restart in between,
 * the table full) reads the account back instead. Under inroot_mu.
 */
#define INROOT_MAX 512

struct inroot {
    char id[STORE_ID_MAX];
    struct leaves leaves;
};

static pthread_mutex_t inroot_mu = PTHREAD_MUTEX_INITIALIZER;
static struct inroot inroots[INROOT_MAX];

/*
 * Leaves made with their sizes (leaves_add sized): sorts them, keeps a name
 * sent twice with the same bytes once, strips the sizes, and counts objects
 * and bytes. ERR_CONFLICT if a name came with two contents.
 */
static int
leaves_settle(struct leaves *l, uint64_t *objects, uint64_t *bytes)
{
    uint64_t n = 0, b = 0;
    size_t k = 0;
    /* leaf || size, sorted: a name twice is adjacent (same bytes up to the hash) */
    qsort(l->v, l->n, sizeof(*l->v), leaf_cmp);
    for (size_t i = 0; i < l->n; i++) {
        struct buf *x = &l->v[i];
        if (k > 0 && l->v[k - 1].len == x->len && !memcmp(l->v[k - 1].data, x->data, x->len)) {
            buf_release(x); /* the same object sent twice */
            continue;
        }
        if (k > 0 && l->v[k - 1].len == x->len &&
            !memcmp(l->v[k - 1].data, x->data, x->len - 8 - HASH_SHA256_LEN)) {
            for (size_t j = k; j < i; j++) /* moved or released */
                memset(&l->v[j], 0, sizeof(l->v[j]));
            return ERR_CONFLICT;
        }
        l->v[k++] = *x;
    }
    for (size_t i = k; i < l->n; i++)
        memset(&l->v[i], 0, sizeof(l->v[i]));
    l->n = k;
    for (size_t i = 0; i < l->n; i++) {
        b += be64_get((const uint8_t *)l->v[i].data + l->v[i].len - 8);
        n++;
        l->v[i].len -= 8; /* the leaf itself */
    }
    *objects = n;
    *bytes = b;
    return 0;
}

/* Under inroot_mu: the entry of id, or a free one if make, or NULL. */
static struct inroot *
inroot_find(const char *id, bool make)
{
    struct inroot *free_slot = NULL;
    for (size_t i = 0; i < INROOT_MAX; i++) {
        if (!strcmp(inroots[i].id, id))
            return &inroots[i];
        if (!inroots[i].id[0] && !free_slot)
            free_slot = &inroots[i];
    }
    if (make && free_slot)
        snprintf(free_slot->id, sizeof(free_slot->id), "%s", id);
    return make ? free_slot : NULL;
}

/* Moves the leaves of l (committed objects of id) into id's entry; l is left empty. */
static void
inroot_add(const char *id, struct leaves *l)
{
    pthread_mutex_lock(&inroot_mu);
    struct inroot *e = inroot_find(id, true);
    for (size_t i = 0; e && i < l->n; i++) {
        if (e->leaves.n == e->leaves.cap) {
            size_t cap = e->leaves.cap ? 2 * e->leaves.cap : 64;
            struct buf *v = realloc(e->leaves.v, cap * sizeof(*v));
            if (!v) { /* forget it all: the commit reads the account back */
                leaves_release(&e->leaves);
                e->id[0] = 0;
                e = NULL;
                break;
            }
            e->leaves.v = v;
            e->leaves.cap = cap;
        }
        e->leaves.v[e->leaves.n++] = l->v[i];
        memset(&l->v[i], 0, sizeof(l->v[i]));
    }
    pthread_mutex_unlock(&inroot_mu);
}

static void
inroot_drop(const char *id)
{
    pthread_mutex_lock(&inroot_mu);
    struct inroot *e = inroot_find(id, false);
    if (e) {
        leaves_release(&e->leaves);
        e->id[0] = 0;
    }
    pthread_mutex_unlock(&inroot_mu);
}

/*
 * The root of arriving account id from its entry (which is consumed):
 * *known false if there is none or it does not match what the store holds.
 */
static int
inroot_root(struct region *r, const char *id, uint8_t root[MIGRATE_ROOT_LEN], uint64_t *objects,
            uint64_t *bytes, bool *known)
{
    struct leaves l = {0};
    uint64_t n = 0, b = 0, so = 0, sb = 0;
    int rc = 0;
    *known = false;
    pthread_mutex_lock(&inroot_mu);
    struct inroot *e = inroot_find(id, false);
    if (e) {
        l = e->leaves;
        memset(e, 0, sizeof(*e));
    }
    pthread_mutex_unlock(&inroot_mu);
    if (!l.n)
        goto out;
    rc = leaves_settle(&l, &n, &b);
    if (rc) {
        rc = 0; /* one name, two contents: read it back */
        goto out;
    }
    rc = store_usage(region_store(r), id, NULL, &so, &sb);
    if (rc || so != n || sb != b)
        goto out;
    rc = leaves_root(&l, root);
    if (!rc) {
        *objects = n;
        *bytes = b;
        *known = true;
    }
out:
    leaves_release(&l);
    return rc;
}

struct objects_ctx {
    struct obj_view *v;
    const char *service;
    struct buf data;
    struct leaves leaves;
    migrate_obj_cb cb;
    void *ctx;
    uint64_t objects, bytes;
};

static int
objects_row(void *ctx, const struct obj_item *it)
{
    struct objects_ctx *o = ctx;
    if (it->deleted)
        return 0;
    int rc = obj_view_data(o->v, &o->data);
    if (!rc)
        rc = leaves_add(&o->leaves, o->service, it->name, it->namelen, buf_slice(&o->data), false);
    if (!rc && o->cb)
        rc = o->cb(o->ctx, o->service, it->name, it->namelen, buf_slice(&o->data));
    if (!rc) {
        o->objects++;
        o->bytes += o->data.len;
    }
    return rc;
}

int
migrate_objects(struct region *r, const char *id, migrate_obj_cb cb, void *ctx,
                uint8_t root[MIGRATE_ROOT_LEN], uint64_t *objects, uint64_t *bytes)
{
    struct consent cs[SVC_COUNT];
    size_t n = 0;
    struct objects_ctx o = {.cb = cb, .ctx = ctx};
    buf_init(&o.data, region_config(r)->max_object_bytes);
    int rc = consent_list(r, id, cs, &n);
    for (size_t i = 0; !rc && i < n; i++) {
        if (!cs[i].granted)
            continue;
        int64_t since = 0;
        bool more = true;
        o.service = cs[i].service;
        rc = obj_view_open(&o.v, r, id, cs[i].service);
        if (!rc) /* the move's own entry (migrate.out / migrate.in) records the reads */
            obj_view_unaudited(o.v);
        while (!rc && more)
            rc = obj_view_feed(o.v, since, FEED_PAGE, true, objects_row, &o, &since, &more);
        obj_view_free(o.v);
        o.v = NULL;
    }
    if (!rc)
        rc = leaves_root(&o.leaves, root);
    if (!rc) {
        *objects = o.objects;
        *bytes = o.bytes;
    }
    leaves_release(&o.leaves);
    buf_release(&o.data);
    return rc;
}

/* ---- at the source --------------------------------------------------------------- */

int
migrate_out_get(struct region *r, const char *id, struct migrate_out *out)
{
    char v[160];
    memset(out, 0, sizeof(*out));
    int rc = rec_text(r, id, REC_OUT, v, sizeof(v));
    if (rc == ERR_NOT_FOUND) {
        struct store_account a;
        rc = store_account_get(region_store(r), id, &a);
        secret_wipe(&a, sizeof(a));
        if (rc == 0)
            return 0; /* MIGRATE_NONE */
        if (rc != ERR_NOT_FOUND)
            return rc;
        rc = rec_text(r, id, REC_MOVED, v, sizeof(v));
        if (rc)
            return rc;
        out->phase = MIGRATE_MOVED;
        return name_copy(out->to, v);
    }
    if (rc)
        return rc;
    /* "to|frozen" or "to|committed|<64 hex>" */
    char *bar = strchr(v, '|');
    if (!bar || (size_t)(bar - v) >= sizeof(out->to))
        return ERR_CORRUPT;
    *bar++ = 0;
    if (name_copy(out->to, v))
        return ERR_CORRUPT;
    if (!strcmp(bar, "frozen")) {
        out->phase = MIGRATE_FROZEN;
    } else if (!strncmp(bar, "committed|", 10) && strlen(bar + 10) == 2 * MIGRATE_ROOT_LEN &&
               !hex_decode(out->root, MIGRATE_ROOT_LEN, bar + 10, 2 * MIGRATE_ROOT_LEN)) {
        out->phase = MIGRATE_COMMITTED;
    } else {
        return ERR_CORRUPT;
    }
    return 0;
}

/* Adds the move record of id to b. */
static int
out_add(struct store_batch *b, const char *id, const char *val)
{
    return store_batch_rec_put(b, id, REC_OUT, REC_KEY, SLICE_STR(val));
}

int
migrate_freeze(struct region *r, const char *const *ids, size_t n, const char *to, int *rcs)
{
    struct store_batch *b = NULL;
    struct migrate_out st;
    char v[64];
    size_t fresh = 0;
    snprintf(v, sizeof(v), "%s|frozen", to);
    int rc = store_batch_new(&b);
    for (size_t i = 0; !rc && i < n; i++) {
        rcs[i] = migrate_out_get(r, ids[i], &st);
        if (rcs[i])
            continue;
        if (st.phase == MIGRATE_NONE) {
            rc = out_add(b, ids[i], v);
            fresh++;
        } else if (st.phase != MIGRATE_MOVED && strcmp(st.to, to) != 0) {
            rcs[i] = ERR_CONFLICT;
        }
    }
    /* every new freeze record in one durable commit */
    if (!rc && fresh)
        rc = store_commit(region_store(r), b, true);
    store_batch_free(b);
    if (rc)
        return rc;
    if (fresh)
        log_info("event=migrate_freeze to=%s accounts=%zu", to, fresh);
    /* then the writes already under way drain; one deadline for them all */
    for (int waited = 0;; waited++) {
        bool busy = false;
        for (size_t i = 0; i < n; i++)
            busy |= !rcs[i] && atomic_load(&fence[fence_slot(ids[i])]) > 0;
        if (!busy)
            break;
        if (waited >= FENCE_WAIT_MS) {
            for (size_t i = 0; i < n; i++)
                if (!rcs[i] && atomic_load(&fence[fence_slot(ids[i])]) > 0)
                    rcs[i] = ERR_UNAVAILABLE;
            break;
        }
        usleep(1000);
    }
    return 0;
}

static int
history_row(void *ctx, const struct consent_change *c)
{
    json_t *o = json_pack("{s:s,s:b,s:I,s:s}", "service", c->service, "granted", c->granted, "at",
                          (json_int_t)c->at, "policy", c->policy ? c->policy : "");
    return o && !json_array_append_new(ctx, o) ? 0 : ERR_NOMEM;
}

/* A session that is still valid: its token's hash and times (no token). */
static int
session_row(void *ctx, const struct store_session *se)
{
    char hex[2 * STORE_HASH_LEN + 1];
    if (se->expires <= clock_now())
        return 0;
    hex_encode(hex, se->token_hash, STORE_HASH_LEN);
    json_t *o = json_pack("{s:s,s:I,s:I}", "hash", hex, "created", (json_int_t)se->created,
                          "expires", (json_int_t)se->expires);
    return o && !json_array_append_new(ctx, o) ? 0 : ERR_NOMEM;
}

static int
ident_row(void *ctx, enum ident_type type, const char *value)
{
    json_t *o = json_pack("{s:s,s:s}", "type", ident_type_name(type), "value", value);
    return o && !json_array_append_new(ctx, o) ? 0 : ERR_NOMEM;
}

int
migrate_manifest(struct region *r, const char *id, json_t **out)
{
    struct store_account a;
    json_t *hist = json_array(), *ids = json_array(), *ses = json_array(), *m = NULL;
    int rc = hist && ids && ses ? store_account_get(region_store(r), id, &a) : ERR_NOMEM;
    if (rc)
        goto out;
    m = json_pack("{s:s,s:s,s:I,s:s}", "account", id, "country", a.country, "created",
                  (json_int_t)a.created, "pwhash", a.pwhash);
    secret_wipe(&a, sizeof(a));
    rc = m ? consent_history(r, id, history_row, hist) : ERR_NOMEM;
    if (!rc)
        rc = ident_list(r, id, ident_row, ids);
    if (!rc) /* existing tokens keep working after the move */
        rc = store_sessions_of(region_store(r), id, session_row, ses);
    if (!rc && (json_object_set(m, "consents", hist) || json_object_set(m, "identifiers", ids) ||
                json_object_set(m, "sessions", ses)))
        rc = ERR_NOMEM;
out:
    json_decref(hist);
    json_decref(ids);
    json_decref(ses);
    if (rc) {
        json_decref(m);
        return rc;
    }
    *out = m;
    return 0;
}

int
migrate_out_committed(struct region *r, const char *const *ids,
                      const uint8_t (*roots)[MIGRATE_ROOT_LEN], size_t n, int *rcs)
{
    struct store_batch *b = NULL;
    struct migrate_out st;
    char v[160], hex[2 * MIGRATE_ROOT_LEN + 1];
    size_t k = 0;
    int rc = store_batch_new(&b);
    for (size_t i = 0; !rc && i < n; i++) {
        rcs[i] = migrate_out_get(r, ids[i], &st);
        if (!rcs[i] && st.phase != MIGRATE_FROZEN && st.phase != MIGRATE_COMMITTED)
            rcs[i] = ERR_CONFLICT;
        if (rcs[i])
            continue;
        hex_encode(hex, roots[i], MIGRATE_ROOT_LEN);
        snprintf(v, sizeof(v), "%s|committed|%s", st.to, hex);
        rc = out_add(b, ids[i], v);
        k++;
    }
    if (!rc && k)
        rc = store_commit(region_store(r), b, true);
    store_batch_free(b);
    return rc;
}

/*
 * The one place where a move is recorded in a region's audit log: the
 * entry's object field carries the agreed root.
 */
static int
migrate_audit_add(struct region *r, struct store_batch *b, enum audit_actor actor,
                  const char *action, const char *id, const uint8_t root[MIGRATE_ROOT_LEN])
{
    return audit_add(
        region_audit(r), b,
        &(struct audit_event){.actor = actor, .action = action, .account = id, .object = root});
}

/* The tombstone of a valid session: its token hash -> its expiry (8 bytes, big-endian). */
static int
moved_token_put(void *ctx, const struct store_session *se)
{
    uint8_t exp[8];
    if (se->expires <= clock_now())
        return 0;
    be64_put(exp, (uint64_t)se->expires);
    return store_batch_rec_put(ctx, se->account, REC_MOVED_TOKEN,
                               SLICE(se->token_hash, STORE_HASH_LEN), SLICE(exp, sizeof(exp)));
}

int
migrate_expire_add(struct store_batch *b, int64_t now)
{
    uint8_t bound[8];
    /* both hold the expiry big-endian: those before now + 1 are over */
    be64_put(bound, (uint64_t)(now + 1));
    int rc = store_batch_recs_expire(b, REC_MOVED_TOKEN, SLICE(bound, sizeof(bound)));
    return rc ? rc : store_batch_recs_expire(b, REC_IN_TOKEN, SLICE(bound, sizeof(bound)));
}

int
migrate_shred(struct region *r, const char *const *ids, size_t n, int *rcs)
{
    struct migrate_out st[MIGRATE_BATCH_MAX];
    struct store_batch *kb = NULL, *db = NULL;
    const char *to = NULL;
    size_t k = 0;
    if (n > MIGRATE_BATCH_MAX)
        return ERR_INVAL;
    for (size_t i = 0; i < n; i++) {
        rcs[i] = migrate_out_get(r, ids[i], &st[i]);
        if (!rcs[i] && st[i].phase != MIGRATE_MOVED && st[i].phase != MIGRATE_COMMITTED)
            rcs[i] = ERR_CONFLICT;
        if (!rcs[i] && st[i].phase == MIGRATE_COMMITTED) {
            to = st[i].to;
            k++;
        }
    }
    if (!k)
        return 0;
    int64_t now = clock_now();
    /* keys first: from this commit on, no copy of the data opens */
    consent_fence_revoke_begin();
    int rc = store_batch_new(&kb);
    for (size_t i = 0; !rc && i < n; i++)
        if (!rcs[i] && st[i].phase == MIGRATE_COMMITTED)
            rc = store_batch_account_erase(kb, ids[i], now);
    if (!rc)
        rc = store_commit(region_keystore(r), kb, true);
    consent_fence_revoke_end();
    if (!rc)
        rc = store_batch_new(&db);
    for (size_t i = 0; !rc && i < n; i++) {
        if (rcs[i] || st[i].phase != MIGRATE_COMMITTED)
            continue;
        /* the object rows go with their chunks, by the sweeper: no key opens them now */
        rc = store_batch_account_retire(db, ids[i], now);
        if (!rc)
            rc = store_batch_rec_put(db, ids[i], REC_MOVED, REC_KEY, SLICE_STR(st[i].to));
        if (!rc) /* read before the erase is applied: a token of here still finds its way */
            rc = store_sessions_of(region_store(r), ids[i], moved_token_put, db);
        if (!rc)
            rc = migrate_audit_add(r, db, AUDIT_OPERATOR, "migrate.out", ids[i], st[i].root);
    }
    if (!rc)
        rc = audit_commit(region_audit(r), db, true);
    store_batch_free(kb);
    store_batch_free(db);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++)
        if (!rcs[i] && st[i].phase == MIGRATE_COMMITTED)
            acct_basic_forget(ids[i]);
    retention_kick();
    log_info("event=migrate_out to=%s accounts=%zu", to, k);
    return 0;
}

/* ---- at the destination -------------------------------------------------------------- */

/*
 * What an arriving account's requests change is done under the account's
 * lock (one of IN_LOCKS by its hash), so that a bundle sent again while the
 * first is still being stored cannot interleave with its commit. A request
 * for several accounts takes their locks in ascending order.
 */
#define IN_LOCKS 4096

static pthread_mutex_t in_locks[IN_LOCKS];
static pthread_once_t in_locks_once = PTHREAD_ONCE_INIT;

static void
in_locks_init(void)
{
    for (size_t i = 0; i < IN_LOCKS; i++)
        pthread_mutex_init(&in_locks[i], NULL);
}

static int
slot_cmp(const void *a, const void *b)
{
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    return (x > y) - (x < y);
}

/* Locks the mutexes of ids[0..n); slots (n of them) gets what in_unlock needs. */
static size_t
in_lock(const char *const *ids, size_t n, unsigned *slots)
{
    size_t k = 0;
    pthread_once(&in_locks_once, in_locks_init);
    for (size_t i = 0; i < n; i++)
        slots[i] = acct_hash(ids[i]) % IN_LOCKS;
    qsort(slots, n, sizeof(*slots), slot_cmp);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || slots[i] != slots[k - 1])
            slots[k++] = slots[i];
    for (size_t i = 0; i < k; i++)
        pthread_mutex_lock(&in_locks[slots[i]]);
    return k;
}

static void
in_unlock(const unsigned *slots, size_t k)
{
    while (k > 0)
        pthread_mutex_unlock(&in_locks[slots[--k]]);
}

struct in_live {
    struct region *r;
    const char *id;
    const uint8_t *root;
};

/*
 * The arriving record: from and phase: "keys" (the account row is in,
 * its keys are not), "objects" (ready, none of its objects stored yet) or
 * "stored" (some are: a bundle that ended inside the account committed).
 */
static int
in_get(struct region *r, const char *id, char from[REGION_NAME_MAX], char phase[16])
{
    char v[128];
    int rc = rec_text(r, id, REC_IN, v, sizeof(v));
    if (rc)
        return rc;
    char *bar = strchr(v, '|');
    if (!bar || (size_t)(bar - v) >= REGION_NAME_MAX || strlen(bar + 1) >= 16)
        return ERR_CORRUPT;
    *bar = 0;
    memcpy(phase, bar + 1, strlen(bar + 1) + 1);
    return name_copy(from, v);
}

static int
in_put(struct store_batch *b, const char *id, const char *from, const char *phase)
{
    char v[64];
    snprintf(v, sizeof(v), "%s|%s", from, phase);
    return store_batch_rec_put(b, id, REC_IN, REC_KEY, SLICE_STR(v));
}

int
migrate_in_status(struct region *r, const char *id, const char **state)
{
    char from[REGION_NAME_MAX], phase[16];
    struct store_account a;
    if (!acct_id_valid(id))
        return ERR_INVAL;
    int rc = in_get(r, id, from, phase);
    if (rc == 0) {
        *state = "receiving";
        return 0;
    }
    if (rc != ERR_NOT_FOUND)
        return rc;
    rc = store_account_get(region_store(r), id, &a);
    secret_wipe(&a, sizeof(a));
    if (rc == ERR_NOT_FOUND) {
        *state = "none";
        return 0;
    }
    if (!rc)
        *state = "live";
    return rc;
}

/* The sessions that moved with the account: their tokens work here too. */
static int
in_sessions(struct store_batch *b, const json_t *m, const char *id)
{
    json_t *ses = json_object_get(m, "sessions"), *v;
    size_t i;
    if (!ses) /* a source that sends none */
        return 0;
    if (!json_is_array(ses))
        return ERR_INVAL;
    json_array_foreach(ses, i, v)
    {
        const char *hex = NULL;
        json_int_t created = 0, expires = 0;
        struct store_session se;
        memset(&se, 0, sizeof(se));
        if (json_unpack(v, "{s:s,s:I,s:I}", "hash", &hex, "created", &created, "expires",
                        &expires) ||
            strlen(hex) != 2 * STORE_HASH_LEN ||
            hex_decode(se.token_hash, STORE_HASH_LEN, hex, 2 * STORE_HASH_LEN))
            return ERR_INVAL;
        snprintf(se.account, sizeof(se.account), "%s", id);
        se.created = created;
        se.expires = expires;
        uint8_t exp[8];
        be64_put(exp, (uint64_t)expires);
        int rc = store_batch_session_insert(b, &se);
        if (!rc)
            rc = store_batch_rec_put(b, id, REC_IN_TOKEN, SLICE(se.token_hash, STORE_HASH_LEN),
                                     SLICE(exp, sizeof(exp)));
        if (rc)
            return rc;
    }
    return 0;
}

/* Adds to b the account row, under a new account key wrapped by this region's KEK. */
static int
in_account(struct region *r, struct store_batch *b, const char *from, const json_t *m,
           const char *id)
{
    const char *country = NULL, *pwhash = NULL;
    json_int_t created = 0;
    struct store_account a;
    struct key32 *key = NULL;
    struct buf wrapped;
    char aad[96];
    if (json_unpack((json_t *)(uintptr_t)m, "{s:s,s:I,s:s}", "country", &country, "created",
                    &created, "pwhash", &pwhash) ||
        strlen(country) != 2 || strlen(pwhash) >= sizeof(a.pwhash))
        return ERR_INVAL;
    memset(&a, 0, sizeof(a));
    snprintf(a.id, sizeof(a.id), "%s", id);
    snprintf(a.country, sizeof(a.country), "%s", country);
    snprintf(a.pwhash, sizeof(a.pwhash), "%s", pwhash);
    a.created = created;
    buf_init(&wrapped, STORE_WRAPPED_MAX);
    int rc = ERR_NOMEM;
    key = key32_new();
    if (!key)
        goto out;
    key32_random(key);
    snprintf(aad, sizeof(aad), "acct|%s", id);
    rc = kr_wrap(region_keyring(r), &wrapped, key, SLICE_STR(aad));
    if (rc)
        goto out;
    memcpy(a.wrapped_key, wrapped.data, wrapped.len);
    a.wrapped_len = wrapped.len;
    /* back where it once left: the rows its departure left for the sweeper go first */
    rc = store_batch_purge_done(b, id, STORE_PURGE_ROWS);
    if (!rc)
        rc = store_batch_account_insert(b, &a);
    if (!rc)
        rc = in_sessions(b, m, id);
    if (!rc)
        rc = in_put(b, id, from, "keys");
out:
    key32_free(key);
    buf_release(&wrapped);
    secret_wipe(&a, sizeof(a));
    return rc;
}

/* Adds to b (a key store batch) the consent ledger and a new key per service left on. */
static int
in_keys(struct region *r, struct store_batch *b, const json_t *m, const char *id)
{
    json_t *hist = json_object_get(m, "consents");
    bool on[SVC_COUNT] = {0};
    size_t i;
    json_t *c;
    if (!json_is_array(hist))
        return ERR_INVAL;
    /* whatever an interrupted attempt left */
    int rc = store_batch_account_erase(b, id, clock_now());
    json_array_foreach(hist, i, c)
    {
        const char *service = NULL, *policy = NULL;
        int granted = 0;
        json_int_t at = 0;
        struct store_consent sc;
        if (rc)
            break;
        if (json_unpack(c, "{s:s,s:b,s:I,s:s}", "service", &service, "granted", &granted, "at", &at,
                        "policy", &policy) ||
            !svc_valid(service) || strlen(policy) >= sizeof(sc.policy)) {
            rc = ERR_INVAL;
            break;
        }
        memset(&sc, 0, sizeof(sc));
        snprintf(sc.account, sizeof(sc.account), "%s", id);
        snprintf(sc.service, sizeof(sc.service), "%s", service);
        snprintf(sc.policy, sizeof(sc.policy), "%s", policy);
        sc.granted = granted;
        sc.at = at;
        rc = store_batch_consent_put(b, &sc);
        for (size_t k = 0; svc_names[k]; k++)
            if (!strcmp(svc_names[k], service))
                on[k] = granted;
    }
    for (size_t k = 0; !rc && svc_names[k]; k++) {
        uint8_t wrapped[STORE_WRAPPED_MAX];
        size_t len = 0;
        if (!on[k])
            continue;
        rc = svc_key_new(r, id, svc_names[k], wrapped, sizeof(wrapped), &len);
        if (!rc)
            rc = store_batch_svckey_insert(b, id, svc_names[k], SLICE(wrapped, len));
    }
    return rc;
}

static int
in_idents(struct region *r, const json_t *m, const char *id)
{
    json_t *ids = json_object_get(m, "identifiers"), *v;
    size_t i;
    if (!json_is_array(ids))
        return ERR_INVAL;
    json_array_foreach(ids, i, v)
    {
        const char *type = NULL, *value = NULL;
        enum ident_type t;
        if (json_unpack(v, "{s:s,s:s}", "type", &type, "value", &value) ||
            ident_type_parse(type, &t))
            return ERR_INVAL;
        int rc = ident_add(r, id, t, value);
        if (rc)
            return rc;
    }
    return 0;
}

/*
 * The accounts' ids, checked: each valid and named once. ids borrow from
 * the manifests.
 */
static int
manifest_ids(const json_t *manifests, const char **ids, size_t *n)
{
    size_t k = json_array_size(manifests);
    if (!json_is_array(manifests) || k == 0 || k > MIGRATE_BATCH_MAX)
        return ERR_INVAL;
    for (size_t i = 0; i < k; i++) {
        ids[i] = json_string_value(json_object_get(json_array_get(manifests, i), "account"));
        if (!ids[i] || !acct_id_valid(ids[i]))
            return ERR_INVAL;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(ids[i], ids[j]))
                return ERR_INVAL;
    }
    *n = k;
    return 0;
}

/*
 * migrate_in_begin under the accounts' locks. Per account, in order, as
 * each step's commit covers every account of the request: the account row,
 * its sessions and "keys" (not durable: lost, the move begins again); the
 * consent ledger and the service keys (the key store's one durable commit,
 * which the objects depend on); the identifiers; "objects" (made durable by
 * the objects' durable commit; lost, "keys" is redone).
 */
static int
in_begin(struct region *r, const char *from, const json_t *manifests, const char **ids, size_t n,
         const char **state)
{
    bool keys[MIGRATE_BATCH_MAX] = {0}, fresh[MIGRATE_BATCH_MAX] = {0};
    struct store_batch *b = NULL;
    size_t todo = 0;
    int rc = store_batch_new(&b);
    for (size_t i = 0; !rc && i < n; i++) {
        char f[REGION_NAME_MAX], phase[16];
        const json_t *m = json_array_get(manifests, i);
        rc = migrate_in_status(r, ids[i], &state[i]);
        if (rc || !strcmp(state[i], "live"))
            continue;
        if (!strcmp(state[i], "none")) {
            rc = in_account(r, b, from, m, ids[i]);
            keys[i] = fresh[i] = true;
        } else {
            rc = in_get(r, ids[i], f, phase);
            if (!rc && strcmp(f, from) != 0)
                state[i] = "conflict";
            else if (!rc)
                keys[i] = !strcmp(phase, "keys");
        }
        if (!rc && strcmp(state[i], "conflict") != 0)
            state[i] = "receiving";
        todo += keys[i];
    }
    if (!rc) /* an empty batch commits nothing */
        rc = store_commit(region_store(r), b, false);
    store_batch_free(b);
    b = NULL;
    for (size_t i = 0; !rc && i < n; i++)
        if (fresh[i])
            inroot_drop(ids[i]);
    if (rc || !todo)
        return rc;
    rc = store_batch_new(&b);
    for (size_t i = 0; !rc && i < n; i++)
        if (keys[i])
            rc = in_keys(r, b, json_array_get(manifests, i), ids[i]);
    if (!rc) {
        consent_fence_revoke_begin();
        rc = store_commit(region_keystore(r), b, true);
        consent_fence_revoke_end();
    }
    store_batch_free(b);
    b = NULL;
    for (size_t i = 0; !rc && i < n; i++)
        if (keys[i])
            rc = in_idents(r, json_array_get(manifests, i), ids[i]);
    if (!rc)
        rc = store_batch_new(&b);
    for (size_t i = 0; !rc && i < n; i++)
        if (keys[i])
            rc = in_put(b, ids[i], from, "objects");
    if (!rc)
        rc = store_commit(region_store(r), b, false);
    store_batch_free(b);
    return rc;
}

int
migrate_in_begin(struct region *r, const char *from, const json_t *manifests, json_t *states)
{
    const char *ids[MIGRATE_BATCH_MAX], *state[MIGRATE_BATCH_MAX];
    unsigned slots[MIGRATE_BATCH_MAX];
    size_t n = 0;
    int rc = manifest_ids(manifests, ids, &n);
    if (rc)
        return rc;
    size_t k = in_lock(ids, n, slots);
    rc = in_begin(r, from, manifests, ids, n, state);
    in_unlock(slots, k);
    for (size_t i = 0; !rc && i < n; i++)
        if (json_object_set_new(states, ids[i], json_string(state[i])))
            rc = ERR_NOMEM;
    return rc;
}

/* ERR_CONFLICT unless id is arriving from `from` with its keys; *stored: some objects are in. */
static int
in_receiving(struct region *r, const char *from, const char *id, bool *stored)
{
    char f[REGION_NAME_MAX], phase[16];
    int rc = in_get(r, id, f, phase);
    if (rc == ERR_NOT_FOUND)
        return ERR_CONFLICT;
    if (rc)
        return rc;
    *stored = !strcmp(phase, "stored");
    if (strcmp(f, from) != 0 || (strcmp(phase, "objects") != 0 && !*stored))
        return ERR_CONFLICT;
    return 0;
}

/* Drops everything received of an arriving account: the move starts over. */
static int
in_reset(struct region *r, const char *id)
{
    struct store_batch *kb = NULL, *db = NULL;
    int64_t now = clock_now();
    consent_fence_revoke_begin();
    int rc = store_batch_new(&kb);
    if (!rc)
        rc = store_batch_account_erase(kb, id, now);
    if (!rc)
        rc = store_commit(region_keystore(r), kb, true);
    consent_fence_revoke_end();
    if (!rc)
        rc = store_batch_new(&db);
    if (!rc)
        rc = store_batch_account_erase(db, id, now);
    if (!rc)
        rc = store_commit(region_store(r), db, true);
    store_batch_free(kb);
    store_batch_free(db);
    inroot_drop(id);
    retention_kick();
    return rc;
}

/* Makes the account live here: its arriving record goes, "migrate.in" comes. */
static int
in_live_ops(void *ctx, struct store_batch *b)
{
    const struct in_live *l = ctx;
    int rc = store_batch_rec_delete(b, l->id, REC_IN, REC_KEY);
    if (!rc)
        rc = store_batch_rec_delete(b, l->id, REC_MOVED, REC_KEY);
    if (!rc)
        rc = migrate_audit_add(l->r, b, AUDIT_PEER, "migrate.in", l->id, l->root);
    return rc;
}

/* migrate_in_commit, under the account's lock. */
static int
in_commit(struct region *r, const char *from, const char *id, const uint8_t root[MIGRATE_ROOT_LEN],
          uint64_t *objects, uint64_t *bytes)
{
    uint8_t mine[MIGRATE_ROOT_LEN];
    const char *state = NULL;
    struct store_batch *b = NULL;
    bool known = false, stored = false;
    int rc = migrate_in_status(r, id, &state);
    if (rc)
        return rc;
    if (!strcmp(state, "none"))
        return ERR_CONFLICT;
    if (!strcmp(state, "receiving"))
        rc = in_receiving(r, from, id, &stored);
    if (!rc && !strcmp(state, "receiving"))
        rc = inroot_root(r, id, mine, objects, bytes, &known);
    if (!rc && !known) /* not all sealed by this process: read it all back */
        rc = migrate_objects(r, id, NULL, NULL, mine, objects, bytes);
    if (rc)
        return rc;
    if (sodium_memcmp(mine, root, MIGRATE_ROOT_LEN) != 0) {
        if (!strcmp(state, "live"))
            return ERR_CONFLICT;
        log_warn("event=migrate_root_mismatch from=%s action=reset", from);
        rc = in_reset(r, id);
        return rc ? rc : ERR_CONFLICT;
    }
    if (!strcmp(state, "live"))
        return 0;
    struct in_live l = {r, id, mine};
    rc = store_batch_new(&b);
    if (!rc)
        rc = in_live_ops(&l, b);
    if (!rc)
        rc = audit_commit(region_audit(r), b, true);
    store_batch_free(b);
    if (!rc)
        log_info("event=migrate_in from=%s objects=%" PRIu64, from, *objects);
    return rc;
}

int
migrate_in_commit(struct region *r, const char *from, const char *id,
                  const uint8_t root[MIGRATE_ROOT_LEN], uint64_t *objects, uint64_t *bytes)
{
    unsigned slot;
    if (!acct_id_valid(id))
        return ERR_INVAL;
    size_t k = in_lock(&id, 1, &slot);
    int rc = in_commit(r, from, id, root, objects, bytes);
    in_unlock(&slot, k);
    return rc;
}

/* One account's part of a bundle (migrate_in_objects). */
struct in_section {
    char id[STORE_ID_MAX];
    struct slice entries;
    const uint8_t *root; /* the source's root, if the section ends with it */
    struct leaves got;   /* the leaves of what was sealed */
    bool stored;         /* objects of it were stored before ("stored") */
    bool whole;          /* the bundle holds all of it: live with this commit */
    uint8_t mine[MIGRATE_ROOT_LEN];
};

/* Splits a bundle into its sections: id NUL, length (8 bytes, big-endian), entries. */
static int
in_sections(struct slice bundle, struct in_section *sec, size_t *n)
{
    const uint8_t *p = bundle.p, *end = bundle.p + bundle.len;
    size_t k = 0;
    while (p < end) {
        const uint8_t *nul = memchr(p, 0, (size_t)(end - p));
        if (k == MIGRATE_BATCH_MAX || !nul || (size_t)(nul - p) >= STORE_ID_MAX ||
            (size_t)(end - nul) < 9)
            return ERR_INVAL;
        memset(&sec[k], 0, sizeof(sec[k]));
        memcpy(sec[k].id, p, (size_t)(nul - p));
        uint64_t len = be64_get(nul + 1);
        p = nul + 9;
        if (!acct_id_valid(sec[k].id) || len > (uint64_t)(end - p))
            return ERR_INVAL;
        for (size_t j = 0; j < k; j++)
            if (!strcmp(sec[j].id, sec[k].id))
                return ERR_INVAL;
        sec[k++].entries = SLICE(p, (size_t)len);
        p += len;
    }
    *n = k;
    return k ? 0 : ERR_INVAL;
}

/* Seals a section's objects into im (begun for its account) and hashes their leaves. */
static int
in_section_add(struct obj_import *im, struct in_section *x, uint64_t *objects)
{
    const uint8_t *p = x->entries.p, *end = x->entries.p + x->entries.len;
    while (p < end) {
        char service[STORE_SERVICE_MAX];
        const uint8_t *s_end = memchr(p, 0, (size_t)(end - p));
        if (!s_end || (size_t)(s_end - p) >= sizeof(service))
            return ERR_INVAL;
        memcpy(service, p, (size_t)(s_end - p));
        service[s_end - p] = 0;
        const uint8_t *name = s_end + 1;
        const uint8_t *n_end = memchr(name, 0, (size_t)(end - name));
        if (!n_end || (size_t)(end - n_end) < 9)
            return ERR_INVAL;
        uint64_t size = be64_get(n_end + 1);
        const uint8_t *data = n_end + 9;
        if (size > (uint64_t)(end - data))
            return ERR_INVAL;
        struct slice d = SLICE(data, (size_t)size);
        size_t namelen = (size_t)(n_end - name);
        p = data + size;
        if (!service[0]) { /* the last entry: "" "root" and the source's root */
            if (strcmp((const char *)name, "root") != 0 || size != MIGRATE_ROOT_LEN || p != end)
                return ERR_INVAL;
            x->root = data;
            return 0;
        }
        /* the leaf is hashed from the very bytes that are sealed */
        int rc = obj_import_add(im, service, (const char *)name, namelen, d);
        if (!rc)
            rc = leaves_add(&x->got, service, (const char *)name, namelen, d, true);
        if (rc)
            return rc;
        (*objects)++;
    }
    return 0;
}

/*
 * A section that ends with the root and holds its whole account (nothing
 * of it stored before): whole, with mine the root of the very bytes sealed.
 * ERR_CONFLICT if that is not the source's root.
 */
static int
in_section_settle(struct in_section *x, struct migrate_in_result *res)
{
    if (!x->root || x->stored)
        return 0;
    int rc = leaves_settle(&x->got, &res->total, &res->bytes);
    if (!rc)
        rc = leaves_root(&x->got, x->mine);
    if (!rc && sodium_memcmp(x->mine, x->root, MIGRATE_ROOT_LEN) != 0)
        rc = ERR_CONFLICT;
    x->whole = !rc;
    return rc;
}

struct in_live_all {
    struct region *r;
    const char *from;
    struct in_section *sec;
    size_t n;
};

/*
 * In the objects' transaction: the whole accounts of a bundle go live, the
 * others are marked "stored" (so that no later bundle is taken for whole).
 */
static int
in_live_all_ops(void *ctx, struct store_batch *b)
{
    const struct in_live_all *a = ctx;
    int rc = 0;
    for (size_t i = 0; !rc && i < a->n; i++) {
        struct in_live l = {a->r, a->sec[i].id, a->sec[i].mine};
        if (a->sec[i].whole)
            rc = in_live_ops(&l, b);
        else if (!a->sec[i].stored)
            rc = in_put(b, a->sec[i].id, a->from, "stored");
    }
    return rc;
}

/* migrate_in_objects under the accounts' locks. */
static int
in_objects(struct region *r, const char *from, struct in_section *sec, size_t n,
           struct migrate_in_result *res)
{
    struct obj_import *im = NULL;
    bool reset = false;
    int rc = 0;
    for (size_t i = 0; !rc && i < n; i++)
        rc = in_receiving(r, from, sec[i].id, &sec[i].stored);
    if (!rc)
        rc = obj_import_new(&im, r, sec[0].id);
    for (size_t i = 0; !rc && i < n; i++) {
        snprintf(res[i].id, sizeof(res[i].id), "%s", sec[i].id);
        if (i > 0)
            rc = obj_import_account(im, sec[i].id);
        if (!rc)
            rc = in_section_add(im, &sec[i], &res[i].objects);
    }
    for (size_t i = 0; !rc && i < n; i++) {
        int src = in_section_settle(&sec[i], &res[i]);
        if (src == ERR_CONFLICT) { /* the move of that account starts again */
            log_warn("event=migrate_root_mismatch from=%s action=reset", from);
            src = in_reset(r, sec[i].id);
            reset = true;
        }
        rc = src;
    }
    if (!rc && reset) /* nothing of the bundle is stored: it is all sent again */
        rc = ERR_CONFLICT;
    /* every object of the bundle, and the accounts it holds whole going live,
     * in one durable commit */
    struct in_live_all all = {r, from, sec, n};
    if (!rc)
        rc = obj_import_commit(im, in_live_all_ops, &all);
    obj_import_free(im);
    for (size_t i = 0; !rc && i < n; i++) {
        if (sec[i].whole) {
            res[i].committed = true;
            memcpy(res[i].root, sec[i].mine, MIGRATE_ROOT_LEN);
            log_info("event=migrate_in from=%s objects=%" PRIu64, from, res[i].total);
            continue;
        }
        inroot_add(sec[i].id, &sec[i].got);
        if (!sec[i].root)
            continue;
        rc = in_commit(r, from, sec[i].id, sec[i].root, &res[i].total, &res[i].bytes);
        if (!rc) {
            res[i].committed = true;
            memcpy(res[i].root, sec[i].root, MIGRATE_ROOT_LEN);
        }
    }
    return rc;
}

int
migrate_in_objects(struct region *r, const char *from, struct slice bundle,
                   struct migrate_in_result *res, size_t *nres)
{
    struct in_section *sec = calloc(MIGRATE_BATCH_MAX, sizeof(*sec));
    const char *ids[MIGRATE_BATCH_MAX];
    unsigned slots[MIGRATE_BATCH_MAX];
    size_t n = 0;
    *nres = 0;
    if (!sec)
        return ERR_NOMEM;
    int rc = in_sections(bundle, sec, &n);
    if (!rc) {
        for (size_t i = 0; i < n; i++) {
            ids[i] = sec[i].id;
            memset(&res[i], 0, sizeof(res[i]));
        }
        size_t k = in_lock(ids, n, slots);
        rc = in_objects(r, from, sec, n, res);
        in_unlock(slots, k);
    }
    for (size_t i = 0; i < n; i++)
        leaves_release(&sec[i].got);
    free(sec);
    if (!rc)
        *nres = n;
    return rc;
}
