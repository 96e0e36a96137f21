/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store.c: the back-end-neutral half of store.h, on top of the methods of
 * struct store_ops (store_int.h). It chooses the back-end from the URL,
 * checks every argument once so that back-ends can trust them, keeps the
 * batches (each op an owned copy), and runs the writer and sync threads.
 *
 * Group commit: store_commit() links the batch at the tail of the queue and
 * sleeps on the batch's own semaphore. The writer takes up to
 * STORE_GROUP_MAX queued batches, applies them in one back-end transaction,
 * each batch all-or-nothing (a failing batch is undone alone through its
 * savepoint and gets its own error), commits once, and wakes each caller.
 * If the back-end has a sync method, durable batches are acknowledged by the
 * sync thread after one sync that covers every group committed before it,
 * while the writer goes on with the next group; otherwise the commit of a
 * group holding a durable batch is itself durable. docs/internals/STORE.md
 * has the details, including how seq stays unique across a power cut.
 *
 * Ownership: the caller owns a batch throughout; while it is queued the
 * writer (then the syncer) reads and fills it, and the caller is blocked in
 * store_commit(). Thread-safety: s->lock guards the queues, the flags, the
 * counters, committed_seq, durable_seq and the result fields of queued
 * batches; last_seq belongs to the writer thread. Reads go straight to the
 * back-end on the calling thread.
 */
#include "base/common.h"

#include <pthread.h>
#include <semaphore.h>

#include "base/log.h"
#include "base/util.h"
#include "store/store.h"
#include "store/store_int.h"

struct store_batch {
    struct store_batch *next; /* in the store's queue, a group, or the sync list */
    struct store_op *ops;
    size_t n, cap;
    size_t nobj; /* object ops, which take a seq */
    sem_t done;  /* posted once result is set; the poster then forgets b */
    bool durable;
    int result;
    unsigned replaced;
    int64_t seq;
    int64_t d_objects, d_bytes; /* what the batch changed, once applied */
    uint64_t count;             /* what its purge, erase, expire and compact ops removed */
    bool v2;                    /* holds ops of store_ops version 2 */
    bool v3;                    /* holds audit ops (store_ops version 3) */
    int64_t audit_index;        /* the index of its first audit leaf, -1 if none */
};

/* A URL prefix naming a back-end; strip: the back-end gets what follows. */
static const struct {
    const char *prefix;
    const struct store_ops *ops;
    bool strip;
} store_backends[] = {
    {"sqlite:", &store_sqlite_ops, true},
    {"postgresql://", &store_pg_ops, false},
    {"postgres://", &store_pg_ops, false},
};

/* ------------------------------------------------------------------------ */
/* Argument checks                                                          */

/* A non-empty NUL-terminated string shorter than cap. */
static bool
str_ok(const char *s, size_t cap)
{
    return s && s[0] && strnlen(s, cap) < cap;
}

static bool
account_ok(const struct store_account *a)
{
    return str_ok(a->id, sizeof(a->id)) &&
           strnlen(a->country, sizeof(a->country)) < sizeof(a->country) &&
           strnlen(a->pwhash, sizeof(a->pwhash)) < sizeof(a->pwhash) &&
           a->wrapped_len <= sizeof(a->wrapped_key);
}

/* ------------------------------------------------------------------------ */
/* Opening and closing                                                      */

/* Finds the back-end of url and what to give its open method. */
static int
store_url_parse(const char *url, const struct store_ops **ops, const char **target)
{
    for (size_t i = 0; i < ARRAY_SIZE(store_backends); i++) {
        size_t n = strlen(store_backends[i].prefix);
        if (!strncmp(url, store_backends[i].prefix, n)) {
            *ops = store_backends[i].ops;
            *target = store_backends[i].strip ? url + n : url;
            return **target ? 0 : ERR_INVAL;
        }
    }
    /* Anything else that starts like a URL scheme names a missing back-end. */
    size_t n = 0;
    while ((url[n] >= 'a' && url[n] <= 'z') || (n > 0 && url[n] >= '0' && url[n] <= '9') ||
           (n > 0 && (url[n] == '+' || url[n] == '-' || url[n] == '.')))
        n++;
    if (n > 0 && url[n] == ':') {
        log_err("store back-end not available scheme=\"%.*s\"", (int)n, url);
        return ERR_INVAL;
    }
    if (!url[0])
        return ERR_INVAL;
    *ops = &store_sqlite_ops;
    *target = url;
    return 0;
}

/*
 * Writes one meta value in a durable transaction of its own, straight
 * through the back-end: only while no writer thread runs.
 */
static int
store_put_direct(struct store *s, const char *key, const char *val)
{
    const struct store_ops *ops = s->ops;
    struct store_op op;
    struct store_effect eff = {0};
    memset(&op, 0, sizeof(op));
    op.kind = STORE_OP_META_PUT;
    memcpy(op.u.meta.key, key, strlen(key) + 1);
    op.u.meta.val = (uint8_t *)(uintptr_t)val; /* borrowed, never freed */
    op.u.meta.len = strlen(val);
    int rc = ops->txn_begin(s, true);
    if (rc)
        return rc;
    rc = ops->apply(s, &op, &eff);
    if (rc) {
        ops->txn_abort(s);
        return rc;
    }
    return ops->txn_commit(s);
}

/*
 * Chooses the first seq. The record STORE_SEQ_KEY holds the last seq after
 * a clean close, and "" while the store is open. Absent, the store was
 * never opened before: no commit can have been lost. A number: start from
 * it. Anything else (the store was not closed): start STORE_SEQ_GAP above
 * the highest seq stored, because readers may have seen seqs of commits
 * that a power cut then took away (STORE.md). Then sets the record to ""
 * durably, which also makes everything stored durable.
 */
static int
store_seq_init(struct store *s, int64_t max_seq)
{
    struct buf v;
    uint64_t clean = 0;
    buf_init(&v, 32);
    int rc = s->ops->meta_get(s, STORE_SEQ_KEY, &v);
    if (rc == ERR_NOT_FOUND) {
        s->last_seq = max_seq;
    } else if (!rc && v.len && !parse_u64(v.data, 0, INT64_MAX, &clean)) {
        s->last_seq = (int64_t)clean > max_seq ? (int64_t)clean : max_seq;
    } else if (!rc || rc == ERR_LIMIT) {
        if (max_seq > INT64_MAX / 2) {
            rc = ERR_LIMIT;
            goto out;
        }
        s->last_seq = max_seq + STORE_SEQ_GAP;
        log_warn("store was not closed cleanly, seq skips ahead seq=%" PRId64, s->last_seq);
    } else {
        goto out;
    }
    rc = store_put_direct(s, STORE_SEQ_KEY, "");
    if (rc)
        goto out;
    s->committed_seq = s->durable_seq = s->last_seq;
out:
    buf_release(&v);
    return rc;
}

static void *store_writer(void *arg);
static void *store_syncer(void *arg);

int
store_open(struct store **out, const char *url)
{
    const struct store_ops *ops = NULL;
    const char *target = NULL;
    struct store *s = NULL;
    bool lock_ready = false, wake_ready = false, sync_wake_ready = false;
    uint64_t orphans = 0;
    int64_t max_seq = 0;
    *out = NULL;
    if (!url)
        return ERR_INVAL;
    int rc = store_url_parse(url, &ops, &target);
    if (rc)
        return rc;
    BUG_ON(ops->version < 1);

    rc = ops->open(&s, target);
    if (rc)
        return rc;
    s->ops = ops;
    s->head = NULL;
    s->tailp = &s->head;
    s->sync_head = NULL;
    s->sync_tailp = &s->sync_head;
    if (pthread_mutex_init(&s->lock, NULL)) {
        rc = ERR_NOMEM;
        goto out;
    }
    lock_ready = true;
    if (pthread_cond_init(&s->wake, NULL)) {
        rc = ERR_NOMEM;
        goto out;
    }
    wake_ready = true;
    if (pthread_cond_init(&s->sync_wake, NULL)) {
        rc = ERR_NOMEM;
        goto out;
    }
    sync_wake_ready = true;

    rc = ops->orphans_delete(s, &orphans);
    if (rc)
        goto out;
    if (orphans)
        log_info("store removed chunks of uncommitted uploads count=%" PRIu64, orphans);
    rc = ops->scan(s, &max_seq, &s->live_objects, &s->live_bytes);
    if (rc)
        goto out;
    if (ops->version >= 3) {
        rc = ops->audit_scan(s, &s->audit_next);
        if (rc)
            goto out;
        s->audit_committed = s->audit_next;
    }
    rc = store_seq_init(s, max_seq);
    if (rc)
        goto out;

    if (pthread_create(&s->writer, NULL, store_writer, s)) {
        rc = ERR_NOMEM;
        goto out;
    }
    s->writer_started = true;
    pthread_setname_np(s->writer, "store-writer");
    if (ops->sync) {
        if (pthread_create(&s->syncer, NULL, store_syncer, s)) {
            rc = ERR_NOMEM;
            goto out;
        }
        s->syncer_started = true;
        pthread_setname_np(s->syncer, "store-sync");
    }
    log_info("store opened backend=%s seq=%" PRId64 " objects=%" PRIu64, ops->name, s->last_seq,
             s->live_objects);
    *out = s;
    s = NULL;
out:
    if (s) {
        if (s->writer_started) {
            pthread_mutex_lock(&s->lock);
            s->closing = true;
            pthread_cond_signal(&s->wake);
            pthread_mutex_unlock(&s->lock);
            pthread_join(s->writer, NULL);
        }
        if (sync_wake_ready)
            pthread_cond_destroy(&s->sync_wake);
        if (wake_ready)
            pthread_cond_destroy(&s->wake);
        if (lock_ready)
            pthread_mutex_destroy(&s->lock);
        ops->close(s);
    }
    return rc;
}

void
store_close(struct store *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->closing = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    if (s->writer_started)
        pthread_join(s->writer, NULL);
    if (s->syncer_started)
        pthread_join(s->syncer, NULL);
    /* Everything is committed and synced: record where seq stands. */
    if (!s->failed) {
        char val[24];
        snprintf(val, sizeof(val), "%" PRId64, s->last_seq);
        int rc = store_put_direct(s, STORE_SEQ_KEY, val);
        if (rc)
            log_warn("store could not record a clean close error=\"%s\"", err_str(rc));
    }
    pthread_cond_destroy(&s->sync_wake);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    s->ops->close(s);
}

const char *
store_backend(const struct store *s)
{
    return s->ops->name;
}

/* ------------------------------------------------------------------------ */
/* Reads                                                                    */

int
store_meta_get(struct store *s, const char *key, struct buf *out)
{
    if (!str_ok(key, STORE_META_KEY_MAX))
        return ERR_INVAL;
    buf_reset(out);
    return s->ops->meta_get(s, key, out);
}

int
store_account_get(struct store *s, const char *id, struct store_account *out)
{
    if (!str_ok(id, STORE_ID_MAX))
        return ERR_INVAL;
    return s->ops->account_get(s, id, out);
}

int
store_session_get(struct store *s, const uint8_t token_hash[STORE_HASH_LEN],
                  struct store_session *out)
{
    return s->ops->session_get(s, token_hash, out);
}

int
store_svckey_get(struct store *s, const char *account, const char *service, uint8_t *out,
                 size_t cap, size_t *outlen)
{
    if (!str_ok(account, STORE_ID_MAX) || !str_ok(service, STORE_SERVICE_MAX))
        return ERR_INVAL;
    return s->ops->svckey_get(s, account, service, out, cap, outlen);
}

int
store_object_get(struct store *s, const char *account, const char *service,
                 const uint8_t name_hash[STORE_HASH_LEN], struct store_object *out)
{
    if (!str_ok(account, STORE_ID_MAX) || !str_ok(service, STORE_SERVICE_MAX))
        return ERR_INVAL;
    return s->ops->object_get(s, account, service, name_hash, out);
}

int
store_chunk_get(struct store *s, const char *account, int64_t version, uint32_t idx,
                struct buf *out)
{
    if (!str_ok(account, STORE_ID_MAX))
        return ERR_INVAL;
    buf_reset(out);
    return s->ops->chunk_get(s, account, version, idx, out);
}

struct store_chunks {
    struct store *s;
    char account[STORE_ID_MAX];
    int64_t version;
    uint32_t n;
    void *held; /* the back-end's, or NULL */
};

int
store_chunks_open(struct store *s, const char *account, int64_t version, uint32_t n,
                  struct store_chunks **out)
{
    *out = NULL;
    if (!str_ok(account, STORE_ID_MAX) || n == 0)
        return ERR_INVAL;
    struct store_chunks *c = calloc(1, sizeof(*c));
    if (!c)
        return ERR_NOMEM;
    c->s = s;
    memcpy(c->account, account, strlen(account) + 1); /* str_ok: it fits */
    c->version = version;
    c->n = n;
    int rc = s->ops->chunks_hold ? s->ops->chunks_hold(s, account, version, n, &c->held) : 0;
    if (rc) {
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int
store_chunks_read(struct store_chunks *c, uint32_t idx, struct buf *out)
{
    if (idx >= c->n)
        return ERR_INVAL;
    buf_reset(out);
    if (c->held) {
        int rc = c->s->ops->chunks_held_read(c->s, c->held, idx, out);
        if (rc != 1) /* 1: not held, out untouched */
            return rc;
    }
    return c->s->ops->chunk_get(c->s, c->account, c->version, idx, out);
}

void
store_chunks_close(struct store_chunks *c)
{
    if (!c)
        return;
    if (c->held)
        c->s->ops->chunks_release(c->s, c->held);
    free(c);
}

int
store_feed(struct store *s, const char *account, const char *service, int64_t since, size_t limit,
           bool data, store_feed_cb cb, void *ctx)
{
    BUG_ON(!cb);
    if (!str_ok(account, STORE_ID_MAX) || !str_ok(service, STORE_SERVICE_MAX))
        return ERR_INVAL;
    if (limit == 0)
        return 0;
    return s->ops->feed(s, account, service, since, limit, data, cb, ctx);
}

static bool
rec_args_ok(const char *account, const char *kind, struct slice key)
{
    return (!account || str_ok(account, STORE_ID_MAX)) && str_ok(kind, STORE_KIND_MAX) &&
           key.len > 0 && key.len <= STORE_KEY_MAX && key.p;
}

int
store_rec_get(struct store *s, const char *account, const char *kind, struct slice key,
              struct buf *out)
{
    if (!account || !rec_args_ok(account, kind, key))
        return ERR_INVAL;
    buf_reset(out);
    return s->ops->rec_get(s, account, kind, key, out);
}

int
store_rec_list(struct store *s, const char *account, const char *kind, store_rec_cb cb, void *ctx)
{
    if (!str_ok(account, STORE_ID_MAX) || !str_ok(kind, STORE_KIND_MAX))
        return ERR_INVAL;
    return s->ops->rec_list(s, account, kind, cb, ctx);
}

int
store_sessions_of(struct store *s, const char *account, store_session_cb cb, void *ctx)
{
    if (!str_ok(account, STORE_ID_MAX))
        return ERR_INVAL;
    if (!s->ops->sessions_of)
        return ERR_UNAVAILABLE;
    return s->ops->sessions_of(s, account, cb, ctx);
}

int
store_rec_find(struct store *s, const char *kind, struct slice key, char account_out[STORE_ID_MAX])
{
    if (!rec_args_ok(NULL, kind, key))
        return ERR_INVAL;
    return s->ops->rec_find(s, kind, key, account_out);
}

/* The version 2 reads: refused on a back-end that predates them. */
#define STORE_V2(s)                                                                                \
    do {                                                                                           \
        if ((s)->ops->version < 2)                                                                 \
            return ERR_UNAVAILABLE;                                                                \
    } while (0)

int
store_consent_get(struct store *s, const char *account, const char *service,
                  struct store_consent *out)
{
    STORE_V2(s);
    if (!str_ok(account, STORE_ID_MAX) || !str_ok(service, STORE_SERVICE_MAX))
        return ERR_INVAL;
    return s->ops->consent_get(s, account, service, out);
}

int
store_consents(struct store *s, const char *account, store_consent_cb cb, void *ctx)
{
    STORE_V2(s);
    BUG_ON(!cb);
    if (!str_ok(account, STORE_ID_MAX))
        return ERR_INVAL;
    return s->ops->consents(s, account, cb, ctx);
}

int
store_consent_log(struct store *s, const char *account, store_consent_cb cb, void *ctx)
{
    STORE_V2(s);
    BUG_ON(!cb);
    if (!str_ok(account, STORE_ID_MAX))
        return ERR_INVAL;
    return s->ops->consent_log(s, account, cb, ctx);
}

int
store_consents_pending(struct store *s, size_t limit, store_consent_cb cb, void *ctx)
{
    STORE_V2(s);
    BUG_ON(!cb);
    return limit ? s->ops->consents_pending(s, limit, cb, ctx) : 0;
}

int
store_usage(struct store *s, const char *account, const char *service, uint64_t *objects,
            uint64_t *bytes)
{
    STORE_V2(s);
    if (!str_ok(account, STORE_ID_MAX) || (service && !str_ok(service, STORE_SERVICE_MAX)))
        return ERR_INVAL;
    return s->ops->usage(s, account, service, objects, bytes);
}

int
store_activity_get(struct store *s, const char *account, int64_t *at)
{
    STORE_V2(s);
    if (!str_ok(account, STORE_ID_MAX))
        return ERR_INVAL;
    return s->ops->activity_get(s, account, at);
}

int
store_accounts_idle(struct store *s, int64_t before, size_t limit, store_account_cb cb, void *ctx)
{
    STORE_V2(s);
    BUG_ON(!cb);
    return limit ? s->ops->accounts_idle(s, before, limit, cb, ctx) : 0;
}

int
store_purges(struct store *s, size_t limit, store_purge_cb cb, void *ctx)
{
    STORE_V2(s);
    BUG_ON(!cb);
    return limit ? s->ops->purges(s, limit, cb, ctx) : 0;
}

int
store_erasures(struct store *s, size_t limit, store_account_cb cb, void *ctx)
{
    STORE_V2(s);
    BUG_ON(!cb);
    return limit ? s->ops->erasures(s, limit, cb, ctx) : 0;
}

/* The audit log (store_ops version 3) ------------------------------------- */

uint64_t
store_audit_size(struct store *s)
{
    pthread_mutex_lock(&s->lock);
    uint64_t n = s->audit_committed;
    pthread_mutex_unlock(&s->lock);
    return n;
}

int
store_audit_leaves(struct store *s, uint64_t start, uint64_t end, store_audit_cb cb, void *ctx)
{
    BUG_ON(!cb);
    if (s->ops->version < 3)
        return ERR_UNAVAILABLE;
    uint64_t size = store_audit_size(s);
    if (end > size)
        end = size;
    if (start >= end)
        return 0;
    return s->ops->audit_leaves(s, start, end, cb, ctx);
}

/* Counts what an epoch's audit_find passes on to the caller's callback. */
struct find_ctx {
    store_audit_cb cb;
    void *ctx;
    size_t found;
};

static int
find_one(void *ctx, uint64_t index, struct slice leaf, const uint8_t *tag)
{
    struct find_ctx *f = ctx;
    f->found++;
    return f->cb(f->ctx, index, leaf, tag);
}

/* The last epoch of the owners' index that may hold an entry; -1 if none. */
static int64_t
last_epoch(struct store *s)
{
    uint64_t size = store_audit_size(s);
    return size ? store_audit_epoch(size - 1) : -1;
}

int
store_audit_find(struct store *s, const uint8_t tag[STORE_HASH_LEN], uint64_t start, size_t limit,
                 store_audit_cb cb, void *ctx)
{
    BUG_ON(!cb || !tag);
    if (s->ops->version < 3)
        return ERR_UNAVAILABLE;
    struct find_ctx f = {cb, ctx, 0};
    int rc = 0;
    for (int64_t e = store_audit_epoch(start), last = last_epoch(s); !rc && e <= last && limit;
         e++) {
        f.found = 0;
        rc = s->ops->audit_find(s, e, tag, start, limit, find_one, &f);
        limit -= f.found;
    }
    return rc;
}

int
store_audit_count(struct store *s, const uint8_t tag[STORE_HASH_LEN], uint64_t *n)
{
    BUG_ON(!tag);
    *n = 0;
    if (s->ops->version < 3)
        return ERR_UNAVAILABLE;
    int rc = 0;
    for (int64_t e = 0, last = last_epoch(s); !rc && e <= last; e++) {
        uint64_t k = 0;
        rc = s->ops->audit_count(s, e, tag, &k);
        *n += k;
    }
    return rc;
}

int
store_audit_nodes_get(struct store *s, struct store_audit_node *nodes, size_t n)
{
    if (s->ops->version < 3)
        return ERR_UNAVAILABLE;
    return n ? s->ops->audit_nodes_get(s, nodes, n) : 0;
}

int
store_stats(struct store *s, uint64_t *objects, uint64_t *bytes)
{
    pthread_mutex_lock(&s->lock);
    *objects = s->live_objects;
    *bytes = s->live_bytes;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Batches                                                                  */

int
store_batch_new(struct store_batch **out)
{
    *out = NULL;
    struct store_batch *b = calloc(1, sizeof(*b));
    if (!b)
        return ERR_NOMEM;
    if (sem_init(&b->done, 0, 0)) {
        free(b);
        return ERR_NOMEM;
    }
    b->audit_index = -1;
    *out = b;
    return 0;
}

void
store_batch_free(struct store_batch *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++) {
        struct store_op *op = &b->ops[i];
        if (op->kind == STORE_OP_META_PUT)
            free(op->u.meta.val);
        else if (op->kind == STORE_OP_CHUNK_PUT)
            free(op->u.chunk.data);
        else if (op->kind == STORE_OP_REC_INSERT || op->kind == STORE_OP_REC_PUT ||
                 op->kind == STORE_OP_RECS_EXPIRE)
            free(op->u.rec.val);
        else if (op->kind == STORE_OP_AUDIT_APPEND)
            free(op->u.audit.leaf);
        else if (op->kind == STORE_OP_AUDIT_NODES)
            free(op->u.nodes.v);
        else if (op->kind == STORE_OP_AUDIT_OWNERS)
            free(op->u.owners.v);
    }
    free(b->ops);
    sem_destroy(&b->done);
    free(b);
}

/* Returns a zeroed op at the end of the batch, or NULL without memory. */
static struct store_op *
batch_push(struct store_batch *b, enum store_op_kind kind)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4;
        struct store_op *ops = realloc(b->ops, cap * sizeof(*ops));
        if (!ops)
            return NULL;
        b->ops = ops;
        b->cap = cap;
    }
    struct store_op *op = &b->ops[b->n++];
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    if (kind == STORE_OP_OBJECT_PUT || kind == STORE_OP_OBJECT_DELETE)
        b->nobj++;
    return op;
}

/* A malloc'd copy of v, NULL for an empty one. */
static int
dup_bytes(struct slice v, uint8_t **out)
{
    *out = NULL;
    if (!v.len)
        return 0;
    *out = malloc(v.len);
    if (!*out)
        return ERR_NOMEM;
    memcpy(*out, v.p, v.len);
    return 0;
}

/*
 * Appends an op of kind to b, with a malloc'd copy of bytes in *copy (NULL
 * when empty) for the op to own; NULL if out of memory (nothing appended).
 */
static struct store_op *
batch_push_copy(struct store_batch *b, enum store_op_kind kind, struct slice bytes, uint8_t **copy)
{
    if (dup_bytes(bytes, copy))
        return NULL;
    struct store_op *op = batch_push(b, kind);
    if (!op) {
        free(*copy);
        *copy = NULL;
    }
    return op;
}

int
store_batch_meta_put(struct store_batch *b, const char *key, struct slice val)
{
    uint8_t *copy;
    if (!str_ok(key, STORE_META_KEY_MAX) || (val.len && !val.p))
        return ERR_INVAL;
    struct store_op *op = batch_push_copy(b, STORE_OP_META_PUT, val, &copy);
    if (!op)
        return ERR_NOMEM;
    memcpy(op->u.meta.key, key, strlen(key) + 1);
    op->u.meta.val = copy;
    op->u.meta.len = val.len;
    return 0;
}

int
store_batch_account_insert(struct store_batch *b, const struct store_account *a)
{
    if (!account_ok(a))
        return ERR_INVAL;
    struct store_op *op = batch_push(b, STORE_OP_ACCOUNT_INSERT);
    if (!op)
        return ERR_NOMEM;
    op->u.account = *a;
    return 0;
}

int
store_batch_session_insert(struct store_batch *b, const struct store_session *se)
{
    if (!str_ok(se->account, sizeof(se->account)))
        return ERR_INVAL;
    struct store_op *op = batch_push(b, STORE_OP_SESSION_INSERT);
    if (!op)
        return ERR_NOMEM;
    op->u.session = *se;
    return 0;
}

int
store_batch_session_delete(struct store_batch *b, const uint8_t token_hash[STORE_HASH_LEN])
{
    struct store_op *op = batch_push(b, STORE_OP_SESSION_DELETE);
    if (!op)
        return ERR_NOMEM;
    memcpy(op->u.token_hash, token_hash, STORE_HASH_LEN);
    return 0;
}

int
store_batch_svckey_insert(struct store_batch *b, const char *account, const char *service,
                          struct slice wrapped)
{
    if (!str_ok(account, STORE_ID_MAX) || !str_ok(service, STORE_SERVICE_MAX) ||
        wrapped.len > STORE_WRAPPED_MAX || (wrapped.len && !wrapped.p))
        return ERR_INVAL;
    struct store_op *op = batch_push(b, STORE_OP_SVCKEY_INSERT);
    if (!op)
        return ERR_NOMEM;
    memcpy(op->u.svckey.account, account, strlen(account) + 1);
    memcpy(op->u.svckey.service, service, strlen(service) + 1);
    if (wrapped.len)
        memcpy(op->u.svckey.wrapped, wrapped.p, wrapped.len);
    op->u.svckey.len = wrapped.len;
    return 0;
}

static int
batch_rec(struct store_batch *b, enum store_op_kind kind, const char *account, const char *rkind,
          struct slice key, struct slice val)
{
    uint8_t *copy;
    if (!account || !rec_args_ok(account, rkind, key) || val.len > STORE_VAL_MAX ||
        (val.len && !val.p))
        return ERR_INVAL;
    struct store_op *op = batch_push_copy(b, kind, val, &copy);
    if (!op)
        return ERR_NOMEM;
    memcpy(op->u.rec.account, account, strlen(account) + 1);
    memcpy(op->u.rec.kind, rkind, strlen(rkind) + 1);
    memcpy(op->u.rec.key, key.p, key.len);
    op->u.rec.keylen = key.len;
    op->u.rec.val = copy;
    op->u.rec.vallen = val.len;
    return 0;
}

int
store_batch_rec_insert(struct store_batch *b, const char *account, const char *kind,
                       struct slice key, struct slice val)
{
    return batch_rec(b, STORE_OP_REC_INSERT, account, kind, key, val);
}

int
store_batch_rec_put(struct store_batch *b, const char *account, const char *kind, struct slice key,
                    struct slice val)
{
    return batch_rec(b, STORE_OP_REC_PUT, account, kind, key, val);
}

int
store_batch_rec_delete(struct store_batch *b, const char *account, const char *kind,
                       struct slice key)
{
    return batch_rec(b, STORE_OP_REC_DELETE, account, kind, key, SLICE(NULL, 0));
}

int
store_batch_object_put(struct store_batch *b, const struct store_object *obj)
{
    if (!str_ok(obj->account, sizeof(obj->account)) ||
        !str_ok(obj->service, sizeof(obj->service)) ||
        obj->name_sealed_len > sizeof(obj->name_sealed) || obj->size > INT64_MAX)
        return ERR_INVAL;
    struct store_op *op = batch_push(b, STORE_OP_OBJECT_PUT);
    if (!op)
        return ERR_NOMEM;
    op->u.object = *obj;
    op->u.object.seq = 0;
    op->u.object.deleted = false;
    return 0;
}

int
store_batch_object_delete(struct store_batch *b, const char *account, const char *service,
                          const uint8_t name_hash[STORE_HASH_LEN], int64_t mtime)
{
    if (!str_ok(account, STORE_ID_MAX) || !str_ok(service, STORE_SERVICE_MAX))
        return ERR_INVAL;
    struct store_op *op = batch_push(b, STORE_OP_OBJECT_DELETE);
    if (!op)
        return ERR_NOMEM;
    memcpy(op->u.del.account, account, strlen(account) + 1);
    memcpy(op->u.del.service, service, strlen(service) + 1);
    memcpy(op->u.del.name_hash, name_hash, STORE_HASH_LEN);
    op->u.del.mtime = mtime;
    return 0;
}

int
store_batch_chunk_put(struct store_batch *b, const char *account, int64_t version, uint32_t idx,
                      struct slice data)
{
    uint8_t *copy;
    if (!str_ok(account, STORE_ID_MAX) || (data.len && !data.p))
        return ERR_INVAL;
    struct store_op *op = batch_push_copy(b, STORE_OP_CHUNK_PUT, data, &copy);
    if (!op)
        return ERR_NOMEM;
    memcpy(op->u.chunk.account, account, strlen(account) + 1);
    op->u.chunk.version = version;
    op->u.chunk.idx = idx;
    op->u.chunk.data = copy;
    op->u.chunk.len = data.len;
    return 0;
}

int
store_batch_chunks_delete(struct store_batch *b, const char *account, int64_t version)
{
    if (!str_ok(account, STORE_ID_MAX))
        return ERR_INVAL;
    struct store_op *op = batch_push(b, STORE_OP_CHUNKS_DELETE);
    if (!op)
        return ERR_NOMEM;
    memcpy(op->u.chunks.account, account, strlen(account) + 1);
    op->u.chunks.version = version;
    return 0;
}

unsigned
store_batch_replaced(const struct store_batch *b)
{
    return b->replaced;
}

int64_t
store_batch_seq(const struct store_batch *b)
{
    return b->seq;
}

uint64_t
store_batch_count(const struct store_batch *b)
{
    return b->count;
}

/* Consent, retention, erasure (store_ops version 2) ----------------------- */

static bool
consent_ok(const struct store_consent *c)
{
    return str_ok(c->account, sizeof(c->account)) && str_ok(c->service, sizeof(c->service)) &&
           strnlen(c->policy, sizeof(c->policy)) < sizeof(c->policy);
}

/* Appends an account-wide op; service may be NULL (then ""). */
static int
batch_acct(struct store_batch *b, enum store_op_kind kind, const char *account, const char *service,
           int64_t n)
{
    if ((account && !str_ok(account, STORE_ID_MAX)) ||
        (service && !str_ok(service, STORE_SERVICE_MAX)))
        return ERR_INVAL;
    struct store_op *op = batch_push(b, kind);
    if (!op)
        return ERR_NOMEM;
    b->v2 = true;
    if (account)
        memcpy(op->u.acct.account, account, strlen(account) + 1);
    if (service)
        memcpy(op->u.acct.service, service, strlen(service) + 1);
    op->u.acct.n = n;
    return 0;
}

int
store_batch_consent_put(struct store_batch *b, const struct store_consent *c)
{
    if (!consent_ok(c))
        return ERR_INVAL;
    struct store_op *op = batch_push(b, STORE_OP_CONSENT_PUT);
    if (!op)
        return ERR_NOMEM;
    b->v2 = true;
    op->u.consent = *c;
    op->u.consent.generation = 0;
    return 0;
}

int
store_batch_consent_purged(struct store_batch *b, const char *account, const char *service,
                           int64_t generation)
{
    if (!account || !service)
        return ERR_INVAL;
    return batch_acct(b, STORE_OP_CONSENT_PURGED, account, service, generation);
}

int
store_batch_svckey_delete(struct store_batch *b, const char *account, const char *service)
{
    if (!account || !service)
        return ERR_INVAL;
    return batch_acct(b, STORE_OP_SVCKEY_DELETE, account, service, 0);
}

int
store_batch_service_purge(struct store_batch *b, const char *account, const char *service,
                          int64_t now)
{
    if (!account || !service)
        return ERR_INVAL;
    return batch_acct(b, STORE_OP_SERVICE_PURGE, account, service, now);
}

int
store_batch_account_erase(struct store_batch *b, const char *account, int64_t now)
{
    if (!account)
        return ERR_INVAL;
    return batch_acct(b, STORE_OP_ACCOUNT_ERASE, account, NULL, now);
}

int
store_batch_account_retire(struct store_batch *b, const char *account, int64_t now)
{
    if (!account)
        return ERR_INVAL;
    return batch_acct(b, STORE_OP_ACCOUNT_RETIRE, account, NULL, now);
}

int
store_batch_activity_put(struct store_batch *b, const char *account, int64_t at)
{
    if (!account)
        return ERR_INVAL;
    return batch_acct(b, STORE_OP_ACTIVITY_PUT, account, NULL, at);
}

int
store_batch_purge_done(struct store_batch *b, const char *account, int64_t version)
{
    if (!account)
        return ERR_INVAL;
    return batch_acct(b, STORE_OP_PURGE_DONE, account, NULL, version);
}

int
store_batch_erasure_put(struct store_batch *b, const char *account, int64_t at)
{
    if (!account)
        return ERR_INVAL;
    return batch_acct(b, STORE_OP_ERASURE_PUT, account, NULL, at);
}

int
store_batch_erasure_done(struct store_batch *b, const char *account)
{
    if (!account)
        return ERR_INVAL;
    return batch_acct(b, STORE_OP_ERASURE_DONE, account, NULL, 0);
}

int
store_batch_sessions_expire(struct store_batch *b, int64_t now)
{
    return batch_acct(b, STORE_OP_SESSIONS_EXPIRE, NULL, NULL, now);
}

int
store_batch_recs_delete(struct store_batch *b, const char *account, const char *kind)
{
    if (!account || !str_ok(account, STORE_ID_MAX) || !str_ok(kind, STORE_KIND_MAX))
        return ERR_INVAL;
    struct store_op *op = batch_push(b, STORE_OP_RECS_DELETE);
    if (!op)
        return ERR_NOMEM;
    memcpy(op->u.rec.account, account, strlen(account) + 1);
    memcpy(op->u.rec.kind, kind, strlen(kind) + 1);
    b->v3 = true;
    return 0;
}

int
store_batch_recs_expire(struct store_batch *b, const char *kind, struct slice bound)
{
    uint8_t *copy;
    if (!str_ok(kind, STORE_KIND_MAX) || bound.len == 0 || bound.len > STORE_VAL_MAX || !bound.p)
        return ERR_INVAL;
    struct store_op *op = batch_push_copy(b, STORE_OP_RECS_EXPIRE, bound, &copy);
    if (!op)
        return ERR_NOMEM;
    memcpy(op->u.rec.kind, kind, strlen(kind) + 1);
    op->u.rec.val = copy;
    op->u.rec.vallen = bound.len;
    b->v3 = true;
    return 0;
}

int
store_batch_compact(struct store_batch *b)
{
    return batch_acct(b, STORE_OP_COMPACT, NULL, NULL, 0);
}

int
store_batch_audit_append(struct store_batch *b, struct slice leaf,
                         const uint8_t tag[STORE_HASH_LEN])
{
    uint8_t *copy;
    if (!leaf.len || leaf.len > STORE_AUDIT_LEAF_MAX || !leaf.p)
        return ERR_INVAL;
    struct store_op *op = batch_push_copy(b, STORE_OP_AUDIT_APPEND, leaf, &copy);
    if (!op)
        return ERR_NOMEM;
    b->v3 = true;
    op->u.audit.leaf = copy;
    op->u.audit.len = leaf.len;
    op->u.audit.has_tag = tag != NULL;
    if (tag)
        memcpy(op->u.audit.tag, tag, STORE_HASH_LEN);
    return 0;
}

int
store_batch_audit_nodes(struct store_batch *b, const struct store_audit_node *nodes, size_t n)
{
    if (!n || n > STORE_AUDIT_NODES_MAX || !nodes)
        return ERR_INVAL;
    for (size_t i = 0; i < n; i++)
        if (nodes[i].level > 63 || (nodes[i].level && nodes[i].index >> (64 - nodes[i].level)))
            return ERR_INVAL;
    struct store_audit_node *copy = malloc(n * sizeof(*copy));
    if (!copy)
        return ERR_NOMEM;
    memcpy(copy, nodes, n * sizeof(*copy));
    struct store_op *op = batch_push(b, STORE_OP_AUDIT_NODES);
    if (!op) {
        free(copy);
        return ERR_NOMEM;
    }
    b->v3 = true;
    op->u.nodes.v = copy;
    op->u.nodes.n = n;
    return 0;
}

int
store_batch_audit_owners(struct store_batch *b, const struct store_audit_owner *v, size_t n)
{
    if (!n || n > STORE_AUDIT_NODES_MAX || !v)
        return ERR_INVAL;
    struct store_audit_owner *copy = malloc(n * sizeof(*copy));
    if (!copy)
        return ERR_NOMEM;
    memcpy(copy, v, n * sizeof(*copy));
    struct store_op *op = batch_push(b, STORE_OP_AUDIT_OWNERS);
    if (!op) {
        free(copy);
        return ERR_NOMEM;
    }
    b->v3 = true;
    op->u.owners.v = copy;
    op->u.owners.n = n;
    return 0;
}

int64_t
store_batch_audit_index(const struct store_batch *b)
{
    return b->audit_index;
}

/* ------------------------------------------------------------------------ */
/* Committing: the caller's side                                            */

/*
 * Whether the writer should run a group now (s->lock held). Durable batches
 * queued while a sync runs would wait for the next sync wherever they are
 * committed, so the writer leaves them queued until this sync ends, then
 * commits them all in one transaction just before the next sync (the syncer
 * waits for that group): one commit per sync, not one per batch that
 * happened to be alone in the queue, and a fraction of the WAL writes and
 * locking. Batches that are not durable, a full group, or closing are
 * committed at once.
 */
static bool
writer_may_take(const struct store *s)
{
    return s->head &&
           (!s->syncing || s->queued_eager || s->queued >= STORE_GROUP_MAX || s->closing);
}

/* Settles b at once with rc, as the writer would. */
static void
batch_settle(struct store_batch *b, int rc)
{
    b->result = rc;
    sem_post(&b->done);
}

void
store_submit(struct store *s, struct store_batch *b, bool durable)
{
    b->replaced = 0;
    b->seq = 0;
    b->count = 0;
    b->audit_index = -1;
    if (b->n == 0) {
        batch_settle(b, 0);
        return;
    }
    if ((b->v2 && s->ops->version < 2) || (b->v3 && s->ops->version < 3)) {
        batch_settle(b, ERR_UNAVAILABLE);
        return;
    }
    pthread_mutex_lock(&s->lock);
    if (s->closing || s->failed) {
        int rc = s->closing ? ERR_UNAVAILABLE : ERR_IO;
        pthread_mutex_unlock(&s->lock);
        batch_settle(b, rc);
        return;
    }
    b->durable = durable;
    b->result = 0;
    b->next = NULL;
    *s->tailp = b;
    s->tailp = &b->next;
    s->queued++;
    if (!durable)
        s->queued_eager++;
    if (writer_may_take(s))
        pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
}

int
store_wait(struct store_batch *b)
{
    while (sem_wait(&b->done))
        BUG_ON(errno != EINTR);
    return b->result;
}

int
store_commit(struct store *s, struct store_batch *b, bool durable)
{
    store_submit(s, b, durable);
    return store_wait(b);
}

/* ------------------------------------------------------------------------ */
/* Committing: the writer's side                                            */

/*
 * Applies every op of b in the open transaction, numbering the object ops.
 * Fills b's counters and results; on error the caller undoes the batch.
 */
static int
batch_apply(struct store *s, struct store_batch *b)
{
    const struct store_ops *ops = s->ops;
    for (size_t i = 0; i < b->n; i++) {
        struct store_op *op = &b->ops[i];
        struct store_effect eff = {0};
        if (op->kind == STORE_OP_OBJECT_PUT)
            b->seq = op->u.object.seq = ++s->last_seq;
        else if (op->kind == STORE_OP_OBJECT_DELETE)
            b->seq = op->u.del.seq = ++s->last_seq;
        else if (op->kind == STORE_OP_AUDIT_APPEND) {
            op->u.audit.index = s->audit_next++;
            if (b->audit_index < 0)
                b->audit_index = (int64_t)op->u.audit.index;
        }
        int rc = ops->apply(s, op, &eff);
        /* the log refused the entry, whatever the back-end's reason */
        if (rc && op->kind == STORE_OP_AUDIT_APPEND && rc != ERR_NOMEM)
            rc = ERR_AUDIT;
        if (rc)
            return rc;
        b->replaced += eff.replaced;
        b->count += eff.count;
        b->d_objects += eff.objects;
        b->d_bytes += eff.bytes;
    }
    return 0;
}

static void
batch_forget(struct store_batch *b, int rc)
{
    b->result = rc;
    b->replaced = 0;
    b->seq = 0;
    b->count = 0;
    b->audit_index = -1;
    b->d_objects = b->d_bytes = 0;
}

/*
 * Runs one group (a NULL-terminated list of batches) as one transaction and
 * sets every batch's result; durable: the commit itself must be durable.
 *
 * Savepoints cost a few statements per batch and batches rarely fail, so
 * the first attempt goes without them: if a batch of a group of several
 * then fails, the whole transaction is rolled back and the group runs again
 * with one savepoint per batch, where a failing batch is undone alone. A
 * group of one batch never needs one: its transaction is the batch.
 */
static void
group_run(struct store *s, struct store_batch *g, bool durable)
{
    const struct store_ops *ops = s->ops;
    const int64_t seq0 = s->last_seq;
    const uint64_t audit0 = s->audit_next; /* leaf numbers, given back like seqs */
    const bool single = !g->next;
    bool savepoints = false;
    struct store_batch *b;
    int rc;

again:
    for (b = g; b; b = b->next)
        batch_forget(b, 0);
    s->last_seq = seq0;
    s->audit_next = audit0;
    rc = ops->txn_begin(s, durable);
    if (rc)
        goto fail;
    size_t ok = 0;
    for (b = g; b; b = b->next) {
        const int64_t seq_before = s->last_seq;
        const uint64_t audit_before = s->audit_next;
        if (savepoints && (rc = ops->txn_savepoint(s)))
            goto abort;
        int brc = batch_apply(s, b);
        if (!brc) {
            if (savepoints && (rc = ops->txn_release(s)))
                goto abort;
            ok++;
            continue;
        }
        if (!single && !savepoints) {
            ops->txn_abort(s);
            savepoints = true;
            goto again;
        }
        batch_forget(b, brc);
        s->last_seq = seq_before;
        s->audit_next = audit_before;
        if (savepoints && (rc = ops->txn_rollback_to(s)))
            goto abort;
    }
    if (!ok) {
        /* Nothing to keep: every batch failed with its own error. */
        ops->txn_abort(s);
        s->last_seq = seq0;
        s->audit_next = audit0;
        return;
    }
    rc = ops->txn_commit(s);
    if (!rc)
        return;
    goto fail;

abort:
    ops->txn_abort(s);
fail:
    /* Batches that had failed keep their own error. */
    for (b = g; b; b = b->next)
        if (!b->result)
            batch_forget(b, rc);
    s->last_seq = seq0;
    s->audit_next = audit0;
}

/*
 * Detaches the oldest STORE_GROUP_MAX batches (under s->lock), and says
 * whether their commit must be durable by itself.
 */
static struct store_batch *
group_take(struct store *s, bool *durable)
{
    struct store_batch *g = s->head, *last = g;
    bool any_durable = g->durable;
    size_t n = 1, nobj = g->nobj;
    size_t eager = !g->durable;
    while (last->next && n < STORE_GROUP_MAX) {
        last = last->next;
        n++;
        nobj += last->nobj;
        any_durable |= last->durable;
        eager += !last->durable;
    }
    s->queued -= n;
    s->queued_eager -= eager;
    s->head = last->next;
    if (!s->head)
        s->tailp = &s->head;
    last->next = NULL;
    /*
     * A durable commit is seen by readers only once it is durable. Any
     * other commit is seen before; keep the seqs of such commits within
     * STORE_SEQ_GAP of the durable ones by making this one durable if
     * needed.
     */
    *durable = (any_durable && !s->ops->sync) ||
               s->last_seq - s->durable_seq > STORE_SEQ_GAP - (int64_t)nobj;
    return g;
}

/*
 * Wakes the caller of every batch of a list, outside s->lock. A woken
 * caller may free its batch at once, so each link is read before the post.
 */
static void
batches_wake(struct store_batch *b)
{
    while (b) {
        struct store_batch *next = b->next;
        b->next = NULL;
        sem_post(&b->done);
        b = next;
    }
}

/* Runs ops->maintain outside s->lock (held on entry and on return). */
static void
writer_maintain(struct store *s, bool idle)
{
    s->maintaining = true;
    pthread_cond_signal(&s->sync_wake); /* the syncer need not wait for it */
    pthread_mutex_unlock(&s->lock);
    s->ops->maintain(s, idle);
    pthread_mutex_lock(&s->lock);
    s->maintaining = false;
}

static void *
store_writer(void *arg)
{
    struct store *s = arg;
    const struct store_ops *ops = s->ops;
    bool idle_done = true;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        if (!s->head) {
            if (s->closing)
                break;
            if (!idle_done && ops->maintain) {
                idle_done = true;
                writer_maintain(s, true);
                continue;
            }
            pthread_cond_wait(&s->wake, &s->lock);
            continue;
        }
        if (!writer_may_take(s)) {
            pthread_cond_wait(&s->wake, &s->lock); /* until the sync ends */
            continue;
        }
        idle_done = false;
        bool durable;
        struct store_batch *g = group_take(s, &durable);
        s->committing = true;
        pthread_mutex_unlock(&s->lock);

        group_run(s, g, durable);

        pthread_mutex_lock(&s->lock);
        s->committing = false;
        s->groups++;
        s->committed_seq = s->last_seq;
        s->audit_committed = s->audit_next;
        if (durable)
            s->durable_seq = s->last_seq;
        struct store_batch *wake = NULL, **wakep = &wake;
        for (struct store_batch *b = g, *next; b; b = next) {
            next = b->next;
            b->next = NULL;
            if (!b->result) {
                s->live_objects = (uint64_t)((int64_t)s->live_objects + b->d_objects);
                s->live_bytes = (uint64_t)((int64_t)s->live_bytes + b->d_bytes);
                if (b->durable && !durable) {
                    *s->sync_tailp = b;
                    s->sync_tailp = &b->next;
                    continue;
                }
            }
            *wakep = b;
            wakep = &b->next;
        }
        /* the syncer may be waiting for this group, to_sync or not */
        pthread_cond_signal(&s->sync_wake);
        pthread_mutex_unlock(&s->lock);
        batches_wake(wake);
        pthread_mutex_lock(&s->lock);
        if (ops->maintain)
            writer_maintain(s, false);
    }
    s->writer_done = true;
    pthread_cond_signal(&s->sync_wake);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/*
 * Whether the writer is running a group or is about to (s->lock held); not
 * while it copies the WAL back (ops->maintain), which may take a while.
 */
static bool
writer_coming(const struct store *s)
{
    return !s->writer_done && (s->committing || (s->head && !s->maintaining));
}

/*
 * The sync thread: makes committed durable batches durable, many at a time,
 * while the writer goes on with the next groups, then wakes their callers.
 * A failed sync leaves the state of the disk unknown: the store refuses all
 * further commits (as PostgreSQL stops on a failed fsync).
 */
static void *
store_syncer(void *arg)
{
    struct store *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        if (!s->sync_head) {
            if (s->writer_done)
                break;
            pthread_cond_wait(&s->sync_wake, &s->lock);
            continue;
        }
        /*
         * Batches queued during the last sync are being committed, or are
         * about to be (writer_may_take): wait for that one group, so that
         * they share this sync instead of waiting for the next one.
         */
        const uint64_t groups = s->groups;
        while (s->groups == groups && writer_coming(s))
            pthread_cond_wait(&s->sync_wake, &s->lock);
        struct store_batch *list = s->sync_head;
        int64_t upto = s->committed_seq;
        s->sync_head = NULL;
        s->sync_tailp = &s->sync_head;
        s->syncing = true;
        pthread_mutex_unlock(&s->lock);

        int rc = s->ops->sync(s);

        pthread_mutex_lock(&s->lock);
        if (rc && !s->failed) {
            log_err("store sync failed, refusing further commits error=\"%s\"", err_str(rc));
            s->failed = rc;
        }
        if (!rc && upto > s->durable_seq)
            s->durable_seq = upto;
        for (struct store_batch *b = list; b; b = b->next)
            b->result = rc;
        pthread_mutex_unlock(&s->lock);
        batches_wake(list);
        pthread_mutex_lock(&s->lock);
        /* the callers just woken queue their next batches meanwhile */
        s->syncing = false;
        if (s->head)
            pthread_cond_signal(&s->wake);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}
