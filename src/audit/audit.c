/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit.c: the region's audit log (see audit.h and docs/internals/AUDIT.md),
 * on top of the store's audit leaves and nodes (store.h), the keyring
 * (pseudonyms via kr_ident, head signatures via kr_audit_sign), merkle.c
 * and checkpoint.c.
 *
 * Appending is the caller's: an entry rides in the batch of its action.
 * Integrating is this file's: one thread (or audit_integrate, under the
 * same mutex) reads the leaves committed past the integrated frontier,
 * hashes them, and writes every node of level 1 and up that they complete
 * together with the new signed head (meta key "audit.head") in one durable
 * commit; only after that commit returns is the head published in memory.
 * The durable commit also makes every leaf before it durable (store.h), so
 * a published head never covers a leaf that a power cut could take back.
 *
 * Proofs are made in two passes over merkle.c: the first records which
 * nodes the proof needs, they are fetched (a bounded cache, then one store
 * call for the rest; a level-0 node is its leaf's hash), and the second
 * builds the proof from them.
 *
 * Ownership: struct audit owns its cache and the published head; the store
 * and the keyring are borrowed. Thread-safety: `mu` guards the head, the
 * status and the thread's wake-up; `integ_mu` guards the frontier (one
 * integration at a time); each cache stripe has its own mutex. Lock order:
 * integ_mu, then mu or a stripe, never both of those.
 */
#include "base/common.h"

#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>

#include "audit/audit.h"
#include "base/log.h"
#include "base/util.h"
#include "crypto/kr.h"

#define AUDIT_META_HEAD "audit.head"
#define AUDIT_ROUND_MAX 16384    /* leaves integrated in one commit */
#define AUDIT_LEAF_MAX 1024      /* bytes of one entry */
#define AUDIT_CACHE_SLOTS 262144 /* nodes kept in memory (12 MiB; a node never changes) */
#define AUDIT_CACHE_STRIPES 64
#define AUDIT_CACHE_WAYS 8 /* slots of a set */
_Static_assert(AUDIT_CACHE_SLOTS % AUDIT_CACHE_WAYS == 0, "the cache is whole sets");
#define AUDIT_PLAN_MAX 256 /* distinct nodes one proof may read */
#define AUDIT_IDLE_WAKE_S 1
/*
 * Under load the thread integrates at most one round per AUDIT_PACE_MS:
 * appends wait while a round commits, and larger rounds share the pages
 * they write (nodes, and the owners' index of the last epoch or two) and
 * their WAL writes, which every durable commit waits to sync. A round of
 * fewer than AUDIT_PACE_MIN leaves is light load: the next one may follow
 * at once.
 */
#define AUDIT_PACE_MS 1000
#define AUDIT_PACE_MIN 256

struct cache_slot {
    bool used;
    uint8_t level;
    uint64_t index;
    struct merkle_hash h;
};

struct audit {
    struct store *s;
    struct kr *kr;
    char region[32];

    pthread_mutex_t integ_mu;
    struct merkle_frontier fr; /* the integrated tree; integ_mu */
    bool fr_ready;             /* fr matches the published head; integ_mu */

    pthread_mutex_t mu;
    pthread_cond_t wake;
    bool kicked, closing;
    /* an append since the integrator last looked: at most one wake per round */
    _Atomic bool kick_pending;
    _Atomic bool append_bad; /* mirrors append_failing, read without mu */
    bool have_head;
    struct audit_head head;
    bool broken;         /* the stored log contradicts its head: never sign again */
    bool append_failing; /* the last audited commit was refused */
    bool integ_failing;  /* the last integration failed */
    char error[160];
    int64_t error_at;
    uint64_t append_failures, integrate_failures;
    pthread_t thread;
    bool thread_started;

    pthread_mutex_t cache_mu[AUDIT_CACHE_STRIPES];
    struct cache_slot *cache;
};

static const char *const actor_names[] = {
    [AUDIT_USER] = "user",
    [AUDIT_OPERATOR] = "operator",
    [AUDIT_PEER] = "peer",
    [AUDIT_SYSTEM] = "system",
};

/* ------------------------------------------------------------------------ */
/* Status                                                                   */

/* Records a failure (what, then why) for health and /metrics. */
static void
fail_note(struct audit *a, bool *flag, uint64_t *counter, const char *what, int rc)
{
    pthread_mutex_lock(&a->mu);
    if (flag)
        *flag = true;
    if (counter)
        (*counter)++;
    snprintf(a->error, sizeof(a->error), "%s: %s", what, err_str(rc));
    a->error_at = clock_now();
    pthread_mutex_unlock(&a->mu);
}

static void
broken_note(struct audit *a, const char *why)
{
    pthread_mutex_lock(&a->mu);
    a->broken = true;
    snprintf(a->error, sizeof(a->error), "%s", why);
    a->error_at = clock_now();
    pthread_mutex_unlock(&a->mu);
    log_err("event=audit_log_inconsistent why=\"%s\" action=\"signing stopped\"", why);
}

void
audit_status(struct audit *a, struct audit_status *out)
{
    memset(out, 0, sizeof(*out));
    out->leaves = store_audit_size(a->s);
    pthread_mutex_lock(&a->mu);
    out->ok = !a->broken && !a->append_failing && !a->integ_failing;
    if (!out->ok)
        snprintf(out->error, sizeof(out->error), "%s", a->error);
    out->error_at = a->error_at;
    if (a->have_head) {
        out->tree_size = a->head.cp.size;
        out->head_time = a->head.cp.timestamp;
    }
    out->append_failures = a->append_failures;
    out->integrate_failures = a->integrate_failures;
    pthread_mutex_unlock(&a->mu);
}

/* ------------------------------------------------------------------------ */
/* Entries                                                                  */

int
audit_pseudonym(struct audit *a, const char *account, uint8_t out[AUDIT_HASH_LEN])
{
    struct buf m;
    buf_init(&m, 64 + STORE_ID_MAX);
    int rc = buf_add(&m, "audit|account|", 14);
    if (!rc)
        rc = buf_adds(&m, account);
    if (!rc)
        rc = kr_ident(a->kr, out, buf_slice(&m));
    buf_release(&m);
    return rc;
}

int
audit_object_hash(struct audit *a, uint8_t out[AUDIT_HASH_LEN], struct slice id)
{
    struct buf m;
    buf_init(&m, 64 + id.len);
    int rc = buf_add(&m, "audit|object|", 13);
    if (!rc)
        rc = buf_add(&m, id.p, id.len);
    if (!rc)
        rc = kr_ident(a->kr, out, buf_slice(&m));
    buf_release(&m);
    return rc;
}

void
audit_b64(char out[AUDIT_B64_LEN], const uint8_t *h)
{
    sodium_bin2base64(out, AUDIT_B64_LEN, h, AUDIT_HASH_LEN, sodium_base64_VARIANT_ORIGINAL);
}

/* A word an entry may hold as it is: 1..32 of [a-z0-9._]. */
static bool
word_ok(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '.' ||
              s[n] == '_'))
            return false;
    return n > 0 && n <= 32;
}

/*
 * Writes the leaf bytes of ev into out[cap]: canonical JSON, fixed key
 * order. pseudonym: the account's (audit_pseudonym), NULL without account.
 */
static int
leaf_build(struct audit *a, char *out, size_t cap, size_t *len, const struct audit_event *ev,
           const uint8_t *pseudonym)
{
    char acct[AUDIT_B64_LEN] = "", obj[AUDIT_B64_LEN] = "";
    const char *result = ev->result ? err_code(ev->result) : "ok";
    if ((unsigned)ev->actor >= ARRAY_SIZE(actor_names) || !ev->action || !word_ok(ev->action) ||
        (ev->service && !word_ok(ev->service)) || !word_ok(result) || !word_ok(a->region))
        return ERR_INVAL;
    if (pseudonym)
        audit_b64(acct, pseudonym);
    if (ev->object)
        audit_b64(obj, ev->object);
    int n = snprintf(out, cap,
                     "{\"v\":1,\"time\":%" PRId64 ",\"region\":\"%s\",\"actor\":\"%s\","
                     "\"action\":\"%s\",\"account\":\"%s\",\"service\":\"%s\",\"object\":\"%s\","
                     "\"result\":\"%s\"}",
                     clock_now(), a->region, actor_names[ev->actor], ev->action, acct,
                     ev->service ? ev->service : "", obj, result);
    if (n < 0 || (size_t)n >= cap)
        return ERR_LIMIT;
    *len = (size_t)n;
    return 0;
}

int
audit_add(struct audit *a, struct store_batch *b, const struct audit_event *ev)
{
    char leaf[AUDIT_LEAF_MAX];
    uint8_t tag[AUDIT_HASH_LEN];
    size_t len = 0;
    int rc = ev->account ? audit_pseudonym(a, ev->account, tag) : 0;
    if (!rc)
        rc = leaf_build(a, leaf, sizeof(leaf), &len, ev, ev->account ? tag : NULL);
    if (rc)
        return rc;
    return store_batch_audit_append(b, SLICE(leaf, len), ev->account ? tag : NULL);
}

int
audit_commit(struct audit *a, struct store_batch *b, bool durable)
{
    int rc = store_commit(a->s, b, durable);
    if (rc == ERR_AUDIT || rc == ERR_IO) {
        /* the entry was not stored, so neither was its action */
        fail_note(a, &a->append_failing, &a->append_failures,
                  "an audit entry could not be stored, so its action was refused", rc);
        atomic_store(&a->append_bad, true);
        log_err("event=audit_append_failed err=\"%s\" action=refused", err_str(rc));
        return ERR_AUDIT;
    }
    if (rc)
        return rc;
    /* the common case takes no lock: the integrator already knows */
    if (!atomic_load(&a->append_bad) && atomic_exchange(&a->kick_pending, true))
        return 0;
    pthread_mutex_lock(&a->mu);
    a->append_failing = false;
    atomic_store(&a->append_bad, false);
    a->kicked = true;
    pthread_cond_signal(&a->wake);
    pthread_mutex_unlock(&a->mu);
    return 0;
}

int
audit_record(struct audit *a, const struct audit_event *ev, bool durable)
{
    struct store_batch *b = NULL;
    int rc = store_batch_new(&b);
    if (!rc)
        rc = audit_add(a, b, ev);
    if (!rc)
        rc = audit_commit(a, b, durable);
    store_batch_free(b);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Reading nodes                                                            */

/*
 * The cache is set-associative: a node may sit in any of the AUDIT_CACHE_WAYS
 * slots of its set, so that nodes whose hashes collide do not keep evicting
 * each other. A full set gives up its lowest node (level 0 first): a node of
 * level k serves every proof of 2^k leaves, a leaf's hash only its neighbour's.
 */
static struct cache_slot *
cache_set_of(struct audit *a, unsigned level, uint64_t index, pthread_mutex_t **mu)
{
    uint64_t h = (index * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)level << 58);
    h ^= h >> 29;
    size_t set = (size_t)(h % (AUDIT_CACHE_SLOTS / AUDIT_CACHE_WAYS));
    *mu = &a->cache_mu[set % AUDIT_CACHE_STRIPES];
    return &a->cache[set * AUDIT_CACHE_WAYS];
}

static bool
cache_get(struct audit *a, unsigned level, uint64_t index, struct merkle_hash *out)
{
    pthread_mutex_t *mu;
    struct cache_slot *set = cache_set_of(a, level, index, &mu);
    bool hit = false;
    pthread_mutex_lock(mu);
    for (size_t w = 0; w < AUDIT_CACHE_WAYS && !hit; w++) {
        const struct cache_slot *sl = &set[w];
        hit = sl->used && sl->level == level && sl->index == index;
        if (hit)
            *out = sl->h;
    }
    pthread_mutex_unlock(mu);
    return hit;
}

static void
cache_put(struct audit *a, unsigned level, uint64_t index, const struct merkle_hash *h)
{
    pthread_mutex_t *mu;
    struct cache_slot *set = cache_set_of(a, level, index, &mu);
    struct cache_slot *victim = NULL;
    pthread_mutex_lock(mu);
    /* among equals, the scan starts at a way that depends on the node */
    for (size_t k = 0, w0 = (size_t)(index ^ level); k < AUDIT_CACHE_WAYS; k++) {
        struct cache_slot *sl = &set[(w0 + k) % AUDIT_CACHE_WAYS];
        if (sl->used && sl->level == level && sl->index == index) {
            victim = NULL; /* already there: nodes never change */
            break;
        }
        if (!victim || (victim->used && (!sl->used || sl->level < victim->level)))
            victim = sl;
    }
    if (victim) {
        victim->used = true;
        victim->level = (uint8_t)level;
        victim->index = index;
        victim->h = *h;
    }
    pthread_mutex_unlock(mu);
}

struct leaf_hash_ctx {
    struct merkle_hash *out;
    bool found;
};

static int
leaf_hash_row(void *ctx, uint64_t index, struct slice leaf, const uint8_t *tag)
{
    struct leaf_hash_ctx *x = ctx;
    (void)index;
    (void)tag;
    merkle_leaf_hash(x->out, leaf.p, leaf.len);
    x->found = true;
    return 0;
}

/* The hash of leaf index, from the cache or its stored bytes. */
static int
leaf_node(struct audit *a, uint64_t index, struct merkle_hash *out)
{
    struct leaf_hash_ctx x = {out, false};
    if (cache_get(a, 0, index, out))
        return 0;
    int rc = store_audit_leaves(a->s, index, index + 1, leaf_hash_row, &x);
    if (!rc && !x.found)
        rc = ERR_NOT_FOUND;
    if (!rc)
        cache_put(a, 0, index, out);
    return rc;
}

/* A merkle_node_fn reading one node at a time (frontiers). */
static int
node_direct(void *ctx, unsigned level, uint64_t index, struct merkle_hash *out)
{
    struct audit *a = ctx;
    if (level == 0)
        return leaf_node(a, index, out);
    if (cache_get(a, level, index, out))
        return 0;
    struct store_audit_node nd = {.level = level, .index = index};
    int rc = store_audit_nodes_get(a->s, &nd, 1);
    if (rc)
        return rc;
    memcpy(out->b, nd.hash, MERKLE_HASH_LEN);
    cache_put(a, level, index, out);
    return 0;
}

/* The nodes one proof needs: recorded in a first pass, then fetched. */
struct plan {
    struct audit *a;
    size_t n;
    bool overflow;
    struct {
        unsigned level;
        uint64_t index;
        struct merkle_hash h;
    } w[AUDIT_PLAN_MAX];
};

static int
plan_record(void *ctx, unsigned level, uint64_t index, struct merkle_hash *out)
{
    struct plan *p = ctx;
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < p->n; i++)
        if (p->w[i].level == level && p->w[i].index == index)
            return 0;
    if (p->n == AUDIT_PLAN_MAX) {
        p->overflow = true;
        return 0;
    }
    p->w[p->n].level = level;
    p->w[p->n].index = index;
    p->n++;
    return 0;
}

static int
plan_lookup(void *ctx, unsigned level, uint64_t index, struct merkle_hash *out)
{
    struct plan *p = ctx;
    for (size_t i = 0; i < p->n; i++)
        if (p->w[i].level == level && p->w[i].index == index) {
            *out = p->w[i].h;
            return 0;
        }
    return ERR_INTERNAL;
}

/* Fetches every node of the plan: the cache, then the store in one call. */
static int
plan_fetch(struct plan *p)
{
    struct store_audit_node miss[AUDIT_PLAN_MAX];
    size_t where[AUDIT_PLAN_MAX], nmiss = 0;
    int rc;
    if (p->overflow)
        return ERR_INTERNAL;
    for (size_t i = 0; i < p->n; i++) {
        if (cache_get(p->a, p->w[i].level, p->w[i].index, &p->w[i].h))
            continue;
        if (p->w[i].level == 0) {
            if ((rc = leaf_node(p->a, p->w[i].index, &p->w[i].h)))
                return rc;
            continue;
        }
        miss[nmiss].level = p->w[i].level;
        miss[nmiss].index = p->w[i].index;
        where[nmiss++] = i;
    }
    if (!nmiss)
        return 0;
    if ((rc = store_audit_nodes_get(p->a->s, miss, nmiss)))
        return rc == ERR_NOT_FOUND ? ERR_CORRUPT : rc;
    for (size_t k = 0; k < nmiss; k++) {
        memcpy(p->w[where[k]].h.b, miss[k].hash, MERKLE_HASH_LEN);
        cache_put(p->a, miss[k].level, miss[k].index, &p->w[where[k]].h);
    }
    return 0;
}

static uint64_t
published_size(struct audit *a, bool *have)
{
    pthread_mutex_lock(&a->mu);
    uint64_t n = a->have_head ? a->head.cp.size : 0;
    *have = a->have_head;
    pthread_mutex_unlock(&a->mu);
    return n;
}

int
audit_inclusion(struct audit *a, uint64_t index, uint64_t size,
                struct merkle_hash proof[MERKLE_MAX_PROOF], size_t *n)
{
    bool have;
    struct plan *p = NULL;
    *n = 0;
    if (size > published_size(a, &have) || index >= size)
        return ERR_INVAL;
    p = malloc(sizeof(*p));
    if (!p)
        return ERR_NOMEM;
    p->a = a;
    p->n = 0;
    p->overflow = false;
    int rc = merkle_inclusion_proof(proof, n, plan_record, p, index, size);
    if (!rc)
        rc = plan_fetch(p);
    if (!rc)
        rc = merkle_inclusion_proof(proof, n, plan_lookup, p, index, size);
    free(p);
    return rc;
}

int
audit_consistency(struct audit *a, uint64_t m, uint64_t n,
                  struct merkle_hash proof[MERKLE_MAX_PROOF], size_t *len)
{
    bool have;
    struct plan *p = NULL;
    *len = 0;
    if (n > published_size(a, &have) || m == 0 || m > n)
        return ERR_INVAL;
    p = malloc(sizeof(*p));
    if (!p)
        return ERR_NOMEM;
    p->a = a;
    p->n = 0;
    p->overflow = false;
    int rc = merkle_consistency_proof(proof, len, plan_record, p, m, n);
    if (!rc)
        rc = plan_fetch(p);
    if (!rc)
        rc = merkle_consistency_proof(proof, len, plan_lookup, p, m, n);
    free(p);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Heads                                                                    */

int
audit_head(struct audit *a, struct audit_head *out)
{
    pthread_mutex_lock(&a->mu);
    bool have = a->have_head;
    if (have)
        *out = a->head;
    pthread_mutex_unlock(&a->mu);
    return have ? 0 : ERR_NOT_FOUND;
}

/* The head as kept in the store: JSON with base64 fields. */
static int
head_encode(struct buf *out, const struct audit_head *h)
{
    struct buf root, sig, pk;
    buf_init(&root, 64);
    buf_init(&sig, 128);
    buf_init(&pk, 64);
    int rc = b64_encode(&root, SLICE(h->cp.root.b, MERKLE_HASH_LEN));
    if (!rc)
        rc = b64_encode(&sig, SLICE(h->sig, sizeof(h->sig)));
    if (!rc)
        rc = b64_encode(&pk, SLICE(h->pk, sizeof(h->pk)));
    if (!rc)
        rc = buf_addf(out,
                      "{\"size\":%" PRIu64 ",\"root\":\"%s\",\"timestamp\":%" PRId64
                      ",\"signature\":\"%s\",\"public_key\":\"%s\"}",
                      h->cp.size, root.data, h->cp.timestamp, sig.data, pk.data);
    buf_release(&root);
    buf_release(&sig);
    buf_release(&pk);
    return rc;
}

static int
b64_field(json_t *o, const char *key, uint8_t *out, size_t n)
{
    const char *s = json_string_value(json_object_get(o, key));
    size_t got = 0;
    if (!s || b64_decode(out, n, &got, s, strlen(s)) || got != n)
        return ERR_CORRUPT;
    return 0;
}

static int
head_decode(struct audit *a, struct audit_head *h, struct slice v)
{
    json_error_t err;
    json_int_t size = 0, ts = 0;
    memset(h, 0, sizeof(*h));
    json_t *o = json_loadb((const char *)v.p, v.len, 0, &err);
    int rc = ERR_CORRUPT;
    if (!o || json_unpack(o, "{s:I,s:I}", "size", &size, "timestamp", &ts) || size < 0 || ts < 0)
        goto out;
    if (b64_field(o, "root", h->cp.root.b, MERKLE_HASH_LEN) ||
        b64_field(o, "signature", h->sig, sizeof(h->sig)) ||
        b64_field(o, "public_key", h->pk, sizeof(h->pk)))
        goto out;
    h->cp.size = (uint64_t)size;
    h->cp.timestamp = ts;
    rc = checkpoint_origin(&h->cp, a->region);
out:
    json_decref(o);
    return rc;
}

/* Checks a head's signature over its checkpoint body. */
static int
head_verify(const struct audit_head *h)
{
    struct buf body;
    buf_init(&body, 512);
    int rc = checkpoint_format(&body, &h->cp);
    if (!rc)
        rc = checkpoint_verify(buf_slice(&body), h->sig, h->pk);
    buf_release(&body);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Integrating                                                              */

struct integ {
    struct audit *a;
    struct merkle_frontier f;
    struct store_audit_node *nodes;
    size_t n, cap;
    struct store_audit_owner *owners; /* the owners' index of these leaves */
    size_t nowners;
};

static int
integ_leaf(void *ctx, uint64_t index, struct slice leaf, const uint8_t *tag)
{
    struct integ *x = ctx;
    struct merkle_node done[65];
    struct merkle_hash lh;
    size_t nd = 0;
    if (index != x->f.size)
        return ERR_CORRUPT; /* a leaf is missing */
    if (tag) {
        memcpy(x->owners[x->nowners].tag, tag, STORE_HASH_LEN);
        x->owners[x->nowners++].index = index;
    }
    merkle_leaf_hash(&lh, leaf.p, leaf.len);
    int rc = merkle_frontier_append(&x->f, &lh, done, &nd);
    if (rc)
        return rc;
    for (size_t i = 1; i < nd; i++) { /* level 0 is the leaf itself: not stored */
        if (x->n == x->cap)
            return ERR_INTERNAL;
        x->nodes[x->n].level = done[i].level;
        x->nodes[x->n].index = done[i].index;
        memcpy(x->nodes[x->n].hash, done[i].hash.b, MERKLE_HASH_LEN);
        x->n++;
    }
    return 0;
}

/*
 * Makes the frontier match the published head, from the stored nodes, and
 * checks that it gives the head's root: the stored tree was not altered.
 * Called with integ_mu held.
 */
static int
frontier_ready(struct audit *a)
{
    struct audit_head h;
    struct merkle_hash root;
    if (a->fr_ready)
        return 0;
    if (audit_head(a, &h) == ERR_NOT_FOUND) {
        merkle_frontier_init(&a->fr);
        a->fr_ready = true;
        return 0;
    }
    if (store_audit_size(a->s) < h.cp.size) {
        broken_note(a, "leaves covered by the signed head are missing from the store");
        return ERR_CORRUPT;
    }
    int rc = merkle_frontier_load(&a->fr, h.cp.size, node_direct, a);
    if (rc == ERR_NOT_FOUND) {
        broken_note(a, "nodes of the signed tree are missing from the store");
        return ERR_CORRUPT;
    }
    if (rc)
        return rc;
    merkle_frontier_root(&a->fr, &root);
    if (memcmp(root.b, h.cp.root.b, MERKLE_HASH_LEN)) {
        broken_note(a, "the stored tree does not give the signed root: the log was altered");
        return ERR_CORRUPT;
    }
    a->fr_ready = true;
    return 0;
}

/* Orders owners' index rows by tag, then leaf index: the index's order within an epoch. */
static int
owner_cmp(const void *pa, const void *pb)
{
    const struct store_audit_owner *a = pa, *b = pb;
    int c = memcmp(a->tag, b->tag, STORE_HASH_LEN);
    return c ? c : (a->index > b->index) - (a->index < b->index);
}

/* One round: integrates at most AUDIT_ROUND_MAX leaves. *more if some are left. */
static int
integrate_round(struct audit *a, bool *more)
{
    struct integ x = {.a = a};
    struct audit_head h, prev;
    struct store_batch *b = NULL;
    struct buf body, val;
    bool have_prev = audit_head(a, &prev) == 0;
    int rc;

    *more = false;
    uint64_t committed = store_audit_size(a->s);
    uint64_t start = a->fr.size;
    if (committed <= start)
        return 0;
    uint64_t end = committed - start > AUDIT_ROUND_MAX ? start + AUDIT_ROUND_MAX : committed;
    *more = end < committed;

    buf_init(&body, 512);
    buf_init(&val, 1024);
    x.f = a->fr;
    x.cap = (size_t)(end - start) + 64;
    x.nodes = malloc(x.cap * sizeof(*x.nodes));
    x.owners = malloc((size_t)(end - start) * sizeof(*x.owners));
    rc = ERR_NOMEM;
    if (!x.nodes || !x.owners)
        goto out;
    rc = store_audit_leaves(a->s, start, end, integ_leaf, &x);
    if (!rc && x.f.size != end)
        rc = ERR_CORRUPT;
    if (rc == ERR_CORRUPT) {
        broken_note(a, "the committed leaves have a gap: the log was altered");
        goto out;
    }
    if (rc)
        goto out;

    memset(&h, 0, sizeof(h));
    if ((rc = checkpoint_origin(&h.cp, a->region)))
        goto out;
    h.cp.size = end;
    merkle_frontier_root(&x.f, &h.cp.root);
    h.cp.timestamp = clock_now();
    if (have_prev && h.cp.timestamp < prev.cp.timestamp)
        h.cp.timestamp = prev.cp.timestamp; /* heads never go back in time */
    if ((rc = checkpoint_format(&body, &h.cp)))
        goto out;
    if ((rc = kr_audit_pubkey(a->kr, h.pk)))
        goto out;
    if (have_prev && memcmp(prev.pk, h.pk, sizeof(h.pk))) {
        broken_note(a, "the audit key differs from the one that signed the last head");
        rc = ERR_CORRUPT;
        goto out;
    }
    if ((rc = kr_audit_sign(a->kr, h.sig, buf_slice(&body))))
        goto out;
    if ((rc = head_encode(&val, &h)))
        goto out;

    if ((rc = store_batch_new(&b)))
        goto out;
    /*
     * By owner (the index's order within the one or two epochs a round
     * spans, store.h), a round visits each page of the owners' index once,
     * on its way through it; in leaf order (accounts at random) it would
     * revisit pages the writer's cache may have spilled.
     */
    qsort(x.owners, x.nowners, sizeof(*x.owners), owner_cmp);
    for (size_t i = 0; !rc && i < x.n; i += STORE_AUDIT_NODES_MAX) {
        size_t k = x.n - i < STORE_AUDIT_NODES_MAX ? x.n - i : STORE_AUDIT_NODES_MAX;
        rc = store_batch_audit_nodes(b, x.nodes + i, k);
    }
    for (size_t i = 0; !rc && i < x.nowners; i += STORE_AUDIT_NODES_MAX) {
        size_t k = x.nowners - i < STORE_AUDIT_NODES_MAX ? x.nowners - i : STORE_AUDIT_NODES_MAX;
        rc = store_batch_audit_owners(b, x.owners + i, k);
    }
    if (!rc)
        rc = store_batch_meta_put(b, AUDIT_META_HEAD, buf_slice(&val));
    if (!rc)
        rc = store_commit(a->s, b, true);
    if (rc)
        goto out;

    /* durable: publish */
    a->fr = x.f;
    for (size_t i = 0; i < x.n; i++) {
        struct merkle_hash hh;
        memcpy(hh.b, x.nodes[i].hash, MERKLE_HASH_LEN);
        cache_put(a, x.nodes[i].level, x.nodes[i].index, &hh);
    }
    pthread_mutex_lock(&a->mu);
    a->head = h;
    a->have_head = true;
    a->integ_failing = false;
    pthread_mutex_unlock(&a->mu);
out:
    store_batch_free(b);
    free(x.nodes);
    free(x.owners);
    buf_release(&body);
    buf_release(&val);
    return rc;
}

/* Integrates everything committed; integ_mu held. */
static int
integrate_locked(struct audit *a)
{
    bool more = true;
    int rc = 0;
    pthread_mutex_lock(&a->mu);
    bool broken = a->broken;
    pthread_mutex_unlock(&a->mu);
    if (broken)
        return ERR_CORRUPT;
    if ((rc = frontier_ready(a)))
        return rc;
    while (more && !rc)
        rc = integrate_round(a, &more);
    if (rc && rc != ERR_SEALED && rc != ERR_CORRUPT) {
        fail_note(a, &a->integ_failing, &a->integrate_failures,
                  "cannot integrate audit entries and sign a head", rc);
        log_err("event=audit_integrate_failed err=\"%s\"", err_str(rc));
    }
    return rc;
}

int
audit_integrate(struct audit *a)
{
    if (kr_sealed(a->kr))
        return ERR_SEALED;
    pthread_mutex_lock(&a->integ_mu);
    int rc = integrate_locked(a);
    pthread_mutex_unlock(&a->integ_mu);
    return rc;
}

static void *
integrator(void *arg)
{
    struct audit *a = arg;
    pthread_mutex_lock(&a->mu);
    while (!a->closing) {
        if (!a->kicked) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += AUDIT_IDLE_WAKE_S;
            pthread_cond_timedwait(&a->wake, &a->mu, &until);
            if (a->closing)
                break;
        }
        a->kicked = false;
        atomic_store(&a->kick_pending, false);
        pthread_mutex_unlock(&a->mu);
        uint64_t done = 0, t0 = clock_mono_ns();
        if (!kr_sealed(a->kr) && store_audit_size(a->s) > 0) {
            pthread_mutex_lock(&a->integ_mu);
            uint64_t before = a->fr.size;
            (void)integrate_locked(a);
            done = a->fr.size - before;
            pthread_mutex_unlock(&a->integ_mu);
        }
        pthread_mutex_lock(&a->mu);
        if (done >= AUDIT_PACE_MIN && !a->closing) {
            uint64_t spent_ms = (clock_mono_ns() - t0) / 1000000;
            if (spent_ms < AUDIT_PACE_MS) {
                struct timespec until;
                clock_gettime(CLOCK_REALTIME, &until);
                uint64_t ns = (uint64_t)until.tv_nsec + (AUDIT_PACE_MS - spent_ms) * 1000000;
                until.tv_sec += (time_t)(ns / 1000000000);
                until.tv_nsec = (long)(ns % 1000000000);
                /* a kick does not cut this short; closing does */
                while (!a->closing && pthread_cond_timedwait(&a->wake, &a->mu, &until) != ETIMEDOUT)
                    ;
                a->kicked = true; /* whatever came meanwhile */
            }
        }
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Reads for the routes                                                     */

int
audit_entries(struct audit *a, uint64_t start, uint64_t end, store_audit_cb cb, void *ctx)
{
    bool have;
    uint64_t size = published_size(a, &have);
    if (start > size || end < start)
        return ERR_INVAL;
    if (end > size)
        end = size;
    if (end - start > AUDIT_PAGE_MAX)
        end = start + AUDIT_PAGE_MAX;
    if (start == end)
        return 0;
    return store_audit_leaves(a->s, start, end, cb, ctx);
}

struct mine_ctx {
    store_audit_cb cb;
    void *ctx;
    uint64_t size;
    bool past;
};

static int
mine_row(void *ctx, uint64_t index, struct slice leaf, const uint8_t *tag)
{
    struct mine_ctx *m = ctx;
    if (index >= m->size) {
        m->past = true;
        return 1; /* not yet covered by a head */
    }
    return m->cb(m->ctx, index, leaf, tag);
}

int
audit_mine(struct audit *a, const char *account, uint64_t start, size_t limit, store_audit_cb cb,
           void *ctx, uint8_t pseudonym[AUDIT_HASH_LEN])
{
    bool have;
    struct mine_ctx m = {cb, ctx, published_size(a, &have), false};
    int rc = audit_pseudonym(a, account, pseudonym);
    if (rc)
        return rc;
    if (limit > AUDIT_PAGE_MAX)
        limit = AUDIT_PAGE_MAX;
    rc = store_audit_find(a->s, pseudonym, start, limit, mine_row, &m);
    return rc == 1 && m.past ? 0 : rc;
}

int
audit_count(struct audit *a, const char *account, uint64_t *n)
{
    uint8_t p[AUDIT_HASH_LEN];
    *n = 0;
    int rc = audit_pseudonym(a, account, p);
    return rc ? rc : store_audit_count(a->s, p, n);
}

/* ------------------------------------------------------------------------ */
/* Opening and closing                                                      */

/* Loads the signed head from the store and checks it against the tree. */
static int
audit_load(struct audit *a)
{
    struct buf v;
    struct audit_head h;
    buf_init(&v, 4096);
    int rc = store_meta_get(a->s, AUDIT_META_HEAD, &v);
    if (rc == ERR_NOT_FOUND) {
        rc = 0;
        goto out;
    }
    if (rc)
        goto out;
    if (head_decode(a, &h, buf_slice(&v)) || head_verify(&h)) {
        broken_note(a, "the stored head is malformed or its signature does not verify");
        goto out; /* served as broken, not refused: health says why */
    }
    pthread_mutex_lock(&a->mu);
    a->head = h;
    a->have_head = true;
    pthread_mutex_unlock(&a->mu);
    pthread_mutex_lock(&a->integ_mu);
    if (frontier_ready(a) == 0)
        log_info("event=audit_log_opened tree_size=%" PRIu64 " leaves=%" PRIu64, h.cp.size,
                 store_audit_size(a->s));
    pthread_mutex_unlock(&a->integ_mu);
out:
    buf_release(&v);
    return rc;
}

int
audit_open(struct audit **out, struct store *s, struct kr *kr, const char *region)
{
    struct audit *a = calloc(1, sizeof(*a));
    *out = NULL;
    if (!a)
        return ERR_NOMEM;
    a->s = s;
    a->kr = kr;
    if (snprintf(a->region, sizeof(a->region), "%s", region) >= (int)sizeof(a->region)) {
        free(a);
        return ERR_INVAL;
    }
    a->cache = calloc(AUDIT_CACHE_SLOTS, sizeof(*a->cache));
    if (!a->cache) {
        free(a);
        return ERR_NOMEM;
    }
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&a->integ_mu, NULL);
    pthread_cond_init(&a->wake, NULL);
    for (size_t i = 0; i < AUDIT_CACHE_STRIPES; i++)
        pthread_mutex_init(&a->cache_mu[i], NULL);
    merkle_frontier_init(&a->fr);
    int rc = audit_load(a);
    if (!rc && pthread_create(&a->thread, NULL, integrator, a))
        rc = ERR_NOMEM;
    if (rc) {
        audit_close(a);
        return rc;
    }
    a->thread_started = true;
    pthread_setname_np(a->thread, "audit");
    *out = a;
    return 0;
}

void
audit_close(struct audit *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    a->closing = true;
    pthread_cond_signal(&a->wake);
    pthread_mutex_unlock(&a->mu);
    if (a->thread_started)
        pthread_join(a->thread, NULL);
    for (size_t i = 0; i < AUDIT_CACHE_STRIPES; i++)
        pthread_mutex_destroy(&a->cache_mu[i]);
    pthread_cond_destroy(&a->wake);
    pthread_mutex_destroy(&a->integ_mu);
    pthread_mutex_destroy(&a->mu);
    free(a->cache);
    free(a);
}
