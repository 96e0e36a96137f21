/* SPDX-License-Identifier: Apache-2.0 */
/*
 * obj.c: objects (see obj.h), on top of svc.h (service keys, consent), the
 * keyring (name hashes), the AEAD and the store.
 *
 * Write path: obj_put_begin gets the service key (consent is checked there)
 * and picks a random version; full chunks are sealed and staged in
 * non-durable commits as they arrive, each one submitted to the store's
 * writer while the next one is received (at most one in flight per
 * upload; the next chunk, the finish or the free waits for it first);
 * obj_put_finish commits the last chunk
 * with the object row in one durable commit, which also makes the staged
 * chunks durable. A crash before it leaves only orphan chunks, which the
 * store removes when it next opens.
 */
#include "base/common.h"

#include <malloc.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>

#include "base/log.h"
#include "base/util.h"
#include "core/consent.h"
#include "core/obj.h"
#include "core/svc.h"
#include "core/trail.h"
#include "crypto/aead.h"
#include "crypto/kr.h"
#include "crypto/rand.h"
#include "store/store.h"

/* A new object version: random, positive (0 is STORE_PURGE_ROWS, never a version). */
static int64_t
version_new(void)
{
    int64_t v;
    do {
        rand_public(&v, sizeof(v));
        v &= INT64_MAX;
    } while (v == 0);
    return v;
}

struct obj_put {
    struct region *r;
    struct store_object o;
    struct key32 *key;
    enum aead_cipher cipher;
    uint64_t announced, limit, received;
    size_t chunk;
    uint8_t *pending; /* plaintext of the chunk being filled */
    size_t pending_len;
    uint8_t *sealed;              /* one sealed chunk */
    uint32_t staged;              /* chunks committed so far (or in flight) */
    struct store_batch *inflight; /* the last chunk's commit, submitted */
    uint64_t epoch;               /* consent epoch when the key was taken (consent_fence_*) */
    bool finished;
    bool key_borrowed; /* the key is an obj_view's (obj_view_put) */
};

/*
 * Objects of several chunks are read ahead: OBJ_PREFETCH_HELPERS threads
 * read and open the next chunks (helper h the chunks 1+h, 1+h+HELPERS, ...)
 * while the current one goes out, each into a buffer of its own that the
 * reader takes, in order, by swapping it with the one it has sent. At most
 * OBJ_PREFETCH_MAX reads have helpers at once; the others read chunk by
 * chunk on their own thread.
 */
#define OBJ_PREFETCH_MAX 16
#define OBJ_PREFETCH_HELPERS 2
#define OBJ_GET_TRIES 3 /* reads of an object's row while it is being replaced */

static atomic_int prefetching;

/* One helper: it owns sealed and, until it sets ready, plain. */
struct prefetch {
    struct obj_get *g;
    unsigned h;
    pthread_t thread;
    bool started, ready;
    int rc;
    struct buf sealed;
    uint8_t *plain;
    size_t cap, len;
};

struct obj_get {
    struct region *r;
    struct store_object o;
    struct store_chunks *chunks; /* o's, held for the read */
    struct key32 *key;
    struct buf sealed;
    uint8_t *plain;
    size_t plain_cap, plain_len, plain_off;
    uint32_t next; /* next chunk to read */
    uint64_t delivered;

    /* the read-ahead: pf[].ready, .rc and pf_stop under pf_mu */
    bool pf_on;
    uint32_t pf_first; /* the first chunk read ahead */
    pthread_mutex_t pf_mu;
    pthread_cond_t pf_cv;
    bool pf_stop;
    struct prefetch pf[OBJ_PREFETCH_HELPERS];
};

bool
obj_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > OBJ_NAME_MAX || memchr(name, 0, len))
        return false;
    const uint8_t *p = (const uint8_t *)name, *end = p + len;
    while (p < end) {
        uint8_t c = *p;
        size_t n = c < 0x80             ? 1
                   : (c & 0xE0) == 0xC0 ? 2
                   : (c & 0xF0) == 0xE0 ? 3
                   : (c & 0xF8) == 0xF0 ? 4
                                        : 0;
        if (!n || (size_t)(end - p) < n)
            return false;
        uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
        for (size_t i = 1; i < n; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        /* overlong forms, surrogates and values past U+10FFFF */
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        p += n;
    }
    return true;
}

static void
put_str(struct buf *b, const char *s)
{
    size_t n = strlen(s);
    uint8_t len = (uint8_t)n;
    if (buf_add(b, &len, 1) || buf_add(b, s, n))
        BUG("aad buffer too small");
}

static void
put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

/* What every sealed piece of an object is bound to. */
static void
obj_aad(struct buf *b, const char *what, const struct store_object *o)
{
    buf_reset(b);
    put_str(b, what);
    put_str(b, o->account);
    put_str(b, o->service);
    if (buf_add(b, o->name_hash, sizeof(o->name_hash)))
        BUG("aad buffer too small");
}

static void
chunk_aad(struct buf *b, const struct store_object *o, uint32_t idx, bool last)
{
    uint8_t tail[13];
    obj_aad(b, "chunk", o);
    put_u64(tail, (uint64_t)o->version);
    tail[8] = (uint8_t)(idx >> 24);
    tail[9] = (uint8_t)(idx >> 16);
    tail[10] = (uint8_t)(idx >> 8);
    tail[11] = (uint8_t)idx;
    tail[12] = last;
    if (buf_add(b, tail, sizeof(tail)))
        BUG("aad buffer too small");
}

static int
name_hash(struct region *r, uint8_t out[STORE_HASH_LEN], const char *account, const char *service,
          const char *name, size_t namelen)
{
    struct buf m;
    buf_init(&m, 64 + STORE_ID_MAX + OBJ_NAME_MAX);
    int rc = buf_adds(&m, "obj");
    if (!rc)
        rc = buf_add(&m, "", 1);
    if (!rc)
        rc = buf_add(&m, account, strlen(account) + 1);
    if (!rc)
        rc = buf_add(&m, service, strlen(service) + 1);
    if (!rc)
        rc = buf_add(&m, name, namelen);
    if (!rc)
        rc = kr_ident(region_keyring(r), out, buf_slice(&m));
    buf_release(&m);
    return rc;
}

static void
etag_of(char out[OBJ_ETAG_LEN + 1], int64_t version)
{
    uint8_t v[8];
    put_u64(v, (uint64_t)version);
    hex_encode(out, v, sizeof(v));
}

static void
info_of(struct obj_info *info, const struct store_object *o)
{
    etag_of(info->etag, o->version);
    info->seq = o->seq;
    info->size = o->size;
    info->mtime = o->mtime;
    info->created = false;
}

/* Fills the identity of an object: account, service, name hash. */
static int
obj_ident(struct region *r, struct store_object *o, const char *account, const char *service,
          const char *name, size_t namelen)
{
    memset(o, 0, sizeof(*o));
    if (!obj_name_valid(name, namelen))
        return ERR_INVAL;
    if (!svc_valid(service))
        return ERR_NOT_FOUND;
    if (strlen(account) >= sizeof(o->account))
        return ERR_INVAL;
    memcpy(o->account, account, strlen(account) + 1);
    memcpy(o->service, service, strlen(service) + 1);
    return name_hash(r, o->name_hash, account, service, name, namelen);
}

int
obj_put_begin(struct obj_put **out, struct region *r, const char *account, const char *service,
              const char *name, size_t namelen, uint64_t size)
{
    const struct config *cfg = region_config(r);
    struct obj_put *p = calloc(1, sizeof(*p));
    struct buf aad;
    int rc = ERR_NOMEM;
    buf_init(&aad, 256);
    if (!p)
        goto out;
    p->r = r;
    p->limit = cfg->max_object_bytes;
    p->announced = size;
    p->chunk = (size_t)cfg->chunk_bytes;
    p->cipher = aead_default();
    if (size != UINT64_MAX && size > p->limit) {
        rc = ERR_TOO_LARGE;
        goto out;
    }
    rc = obj_ident(r, &p->o, account, service, name, namelen);
    if (rc)
        goto out;
    rc = ERR_NOMEM;
    p->key = key32_new();
    if (!p->key)
        goto out;
    p->epoch = consent_epoch(); /* before the key: a revocation after it moves the epoch */
    rc = svc_key(r, account, service, SVC_WRITE, p->key);
    if (rc == ERR_CONSENT)
        trail_refused(
            r, &(struct trail){AUDIT_USER, "data.write", account, service, p->o.name_hash, rc});
    if (rc)
        goto out;
    /* small announced objects need no more than their own size */
    size_t want = size < p->chunk ? (size_t)size : p->chunk;
    rc = ERR_NOMEM;
    p->pending = malloc(want ? want : 1);
    p->sealed = malloc(p->chunk + AEAD_MAX_OVERHEAD + 1);
    if (!p->pending || !p->sealed)
        goto out;
    if (want < p->chunk) {
        /* grown on demand if more comes than announced (then refused) */
        p->chunk = want ? want : 1;
    }
    p->o.version = version_new();
    p->o.cipher = (int32_t)p->cipher;

    p->o.name_sealed[0] = (uint8_t)p->cipher;
    obj_aad(&aad, "name", &p->o);
    rc = aead_seal(p->cipher, p->o.name_sealed + 1, sizeof(p->o.name_sealed) - 1,
                   &p->o.name_sealed_len, p->key->b, buf_slice(&aad), SLICE(name, namelen));
    p->o.name_sealed_len += 1;
out:
    buf_release(&aad);
    if (rc) {
        obj_put_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

/* Waits for the chunk commit in flight, if any: its result. */
static int
put_settle(struct obj_put *p)
{
    if (!p->inflight)
        return 0;
    int rc = store_wait(p->inflight);
    store_batch_free(p->inflight);
    p->inflight = NULL;
    return rc;
}

/* Seals the pending bytes as chunk p->staged and adds it to b. */
static int
put_flush(struct obj_put *p, bool last, struct store_batch *b)
{
    struct buf aad;
    size_t n = 0;
    buf_init(&aad, 256);
    chunk_aad(&aad, &p->o, p->staged, last);
    int rc = aead_seal(p->cipher, p->sealed, p->chunk + AEAD_MAX_OVERHEAD + 1, &n, p->key->b,
                       buf_slice(&aad), SLICE(p->pending, p->pending_len));
    buf_release(&aad);
    if (rc)
        return rc;
    rc = store_batch_chunk_put(b, p->o.account, p->o.version, p->staged, SLICE(p->sealed, n));
    if (rc)
        return rc;
    p->staged++;
    p->pending_len = 0;
    return 0;
}

int
obj_put_write(struct obj_put *p, const uint8_t *data, size_t len)
{
    if (p->finished)
        return ERR_INVAL;
    if (len > p->limit - p->received)
        return ERR_TOO_LARGE;
    if (p->announced != UINT64_MAX && len > p->announced - p->received)
        return ERR_INVAL;
    size_t full = (size_t)region_config(p->r)->chunk_bytes;
    while (len > 0) {
        if (p->pending_len == p->chunk) {
            if (p->chunk < full) {
                /* more than a small announced size: grow to a full chunk */
                uint8_t *np = realloc(p->pending, full);
                uint8_t *ns = realloc(p->sealed, full + AEAD_MAX_OVERHEAD + 1);
                if (np)
                    p->pending = np;
                if (ns)
                    p->sealed = ns;
                if (!np || !ns)
                    return ERR_NOMEM;
                p->chunk = full;
                continue;
            }
            struct store_batch *b = NULL;
            int rc = put_settle(p);
            if (!rc)
                rc = store_batch_new(&b);
            if (!rc)
                rc = put_flush(p, false, b);
            if (rc) {
                store_batch_free(b);
                return rc;
            }
            store_submit(region_store(p->r), b, false);
            p->inflight = b;
        }
        size_t take = p->chunk - p->pending_len;
        if (take > len)
            take = len;
        memcpy(p->pending + p->pending_len, data, take);
        p->pending_len += take;
        p->received += take;
        data += take;
        len -= take;
    }
    return 0;
}

/*
 * Commits the object row, unless the service was turned off (or off and on
 * again) since the upload took its key: then ERR_CONSENT and nothing is
 * committed. Inside the consent fence, so that a revocation either sees
 * this row (and purges it) or this commit sees the revocation.
 */
static int
put_commit(struct obj_put *p, struct store_batch *b)
{
    int rc = 0;
    struct key32 *now = NULL;
    if (consent_fence_commit_begin() != p->epoch) {
        now = key32_new();
        rc = now ? svc_key(p->r, p->o.account, p->o.service, SVC_WRITE, now) : ERR_NOMEM;
        if (!rc && !secret_equal(now->b, p->key->b, sizeof(now->b)))
            rc = ERR_CONSENT; /* turned off and on again: the key of this upload is gone */
        if (rc == ERR_NOT_FOUND)
            rc = ERR_CONSENT;
    }
    if (!rc)
        rc = trail_commit(p->r, b, true);
    consent_fence_commit_end();
    key32_free(now);
    return rc;
}

int
obj_put_finish(struct obj_put *p, struct obj_info *info)
{
    return obj_put_finish_ops(p, info, NULL, NULL);
}

int
obj_put_finish_ops(struct obj_put *p, struct obj_info *info, obj_batch_cb ops, void *ctx)
{
    struct store_batch *b = NULL;
    if (p->finished)
        return ERR_INVAL;
    if (p->announced != UINT64_MAX && p->received != p->announced)
        return ERR_INVAL;
    int rc = put_settle(p);
    if (rc)
        return rc;
    p->o.size = p->received;
    p->o.mtime = clock_now();
    rc = store_batch_new(&b);
    if (!rc)
        rc = put_flush(p, true, b);
    if (!rc) {
        p->o.chunks = p->staged;
        rc = store_batch_object_put(b, &p->o);
    }
    if (!rc && ops)
        rc = ops(ctx, b);
    if (!rc)
        rc = trail_add(p->r, b,
                       &(struct trail){AUDIT_USER, "data.write", p->o.account, p->o.service,
                                       p->o.name_hash, 0});
    if (!rc)
        rc = put_commit(p, b);
    if (!rc) {
        p->finished = true;
        p->o.seq = store_batch_seq(b);
        info_of(info, &p->o);
        info->created = store_batch_replaced(b) == 0;
    }
    store_batch_free(b);
    return rc;
}

void
obj_put_free(struct obj_put *p)
{
    if (!p)
        return;
    (void)put_settle(p); /* its chunk is deleted below with the others */
    if (!p->finished && p->staged > 0) {
        struct store_batch *b = NULL;
        int rc = store_batch_new(&b);
        if (!rc)
            rc = store_batch_chunks_delete(b, p->o.account, p->o.version);
        if (!rc)
            rc = store_commit(region_store(p->r), b, false);
        if (rc) /* left as orphans: the store removes them when it next opens */
            log_warn("event=upload_cleanup_failed err=\"%s\"", err_str(rc));
        store_batch_free(b);
    }
    if (!p->key_borrowed)
        key32_free(p->key);
    if (p->pending) {
        secret_wipe(p->pending, p->pending_len);
        free(p->pending);
    }
    free(p->sealed);
    free(p);
}

static int get_next_chunk(struct obj_get *g);
static void prefetch_start(struct obj_get *g);

int
obj_get_open(struct obj_get **out, struct region *r, const char *account, const char *service,
             const char *name, size_t namelen, struct obj_info *info)
{
    struct obj_get *g = calloc(1, sizeof(*g));
    int rc = ERR_NOMEM;
    if (!g)
        goto out;
    g->r = r;
    /* chunks may predate a change of chunk-bytes: allow the largest setting */
    buf_init(&g->sealed, OBJ_CHUNK_MAX + AEAD_MAX_OVERHEAD + 64);
    g->key = key32_new();
    if (!g->key)
        goto out;
    rc = obj_ident(r, &g->o, account, service, name, namelen);
    if (rc)
        goto out;
    rc = svc_key(r, account, service, SVC_READ, g->key);
    if (rc == ERR_CONSENT)
        trail_refused(
            r, &(struct trail){AUDIT_USER, "data.read", account, service, g->o.name_hash, rc});
    if (rc)
        goto out;
    /* the version read holds its chunks for the whole read; one replaced
     * between its row and its chunks is read again: the replacement then */
    for (unsigned tries = 0;; tries++) {
        rc = store_object_get(region_store(r), account, service, g->o.name_hash, &g->o);
        if (rc)
            goto out;
        if (!aead_available((enum aead_cipher)g->o.cipher) || g->o.chunks == 0) {
            rc = ERR_CORRUPT;
            goto out;
        }
        rc = store_chunks_open(region_store(r), account, g->o.version, g->o.chunks, &g->chunks);
        if (rc != ERR_NOT_FOUND)
            break;
        if (tries == OBJ_GET_TRIES - 1) {
            rc = ERR_UNAVAILABLE; /* replaced again and again: try later */
            goto out;
        }
    }
    if (rc)
        goto out;
    /* open the first chunk now: data that does not authenticate (altered,
     * or sealed under a key that was destroyed) fails before any byte goes out */
    rc = get_next_chunk(g);
    if (rc)
        goto out;
    /* the read is on record, durably, before its first byte goes out */
    rc = trail_record(
        r, &(struct trail){AUDIT_USER, "data.read", account, service, g->o.name_hash, 0}, true);
    if (rc)
        goto out;
    prefetch_start(g);
    info_of(info, &g->o);
out:
    if (rc) {
        obj_get_free(g);
        return rc;
    }
    *out = g;
    return 0;
}

/* Reads chunk idx of g's object through sealed and opens it into *plain. */
static int
chunk_open(struct obj_get *g, uint32_t idx, struct buf *sealed, uint8_t **plain, size_t *cap,
           size_t *len)
{
    struct buf aad;
    bool last = idx + 1 == g->o.chunks;
    int rc = store_chunks_read(g->chunks, idx, sealed);
    if (rc == ERR_NOT_FOUND)
        return ERR_CORRUPT;
    if (rc)
        return rc;
    size_t need = sealed->len;
    if (need > *cap) {
        uint8_t *np = malloc(need);
        if (!np)
            return ERR_NOMEM;
        if (*plain) {
            secret_wipe(*plain, *cap);
            free(*plain);
        }
        *plain = np;
        *cap = need;
    }
    buf_init(&aad, 256);
    chunk_aad(&aad, &g->o, idx, last);
    rc = aead_open((enum aead_cipher)g->o.cipher, *plain, *cap, len, g->key->b, buf_slice(&aad),
                   buf_slice(sealed));
    buf_release(&aad);
    return rc;
}

static void *
prefetcher(void *arg)
{
    struct prefetch *f = arg;
    struct obj_get *g = f->g;
    pthread_mutex_lock(&g->pf_mu);
    for (uint32_t idx = g->pf_first + f->h; idx < g->o.chunks; idx += OBJ_PREFETCH_HELPERS) {
        while (f->ready && !g->pf_stop)
            pthread_cond_wait(&g->pf_cv, &g->pf_mu);
        if (g->pf_stop)
            break;
        pthread_mutex_unlock(&g->pf_mu);
        int rc = chunk_open(g, idx, &f->sealed, &f->plain, &f->cap, &f->len);
        pthread_mutex_lock(&g->pf_mu);
        f->rc = rc;
        f->ready = true;
        pthread_cond_broadcast(&g->pf_cv);
        if (rc)
            break;
    }
    pthread_mutex_unlock(&g->pf_mu);
    return NULL;
}

static void prefetch_stop(struct obj_get *g);

/* Starts the read-ahead of chunks g->next.. if there are any and helpers are free. */
static void
prefetch_start(struct obj_get *g)
{
    if (g->next >= g->o.chunks)
        return;
    if (atomic_fetch_add(&prefetching, 1) >= OBJ_PREFETCH_MAX) {
        atomic_fetch_sub(&prefetching, 1);
        return;
    }
    if (pthread_mutex_init(&g->pf_mu, NULL)) {
        atomic_fetch_sub(&prefetching, 1);
        return;
    }
    if (pthread_cond_init(&g->pf_cv, NULL)) {
        pthread_mutex_destroy(&g->pf_mu);
        atomic_fetch_sub(&prefetching, 1);
        return;
    }
    g->pf_on = true;
    g->pf_first = g->next;
    for (unsigned h = 0; h < OBJ_PREFETCH_HELPERS; h++) {
        struct prefetch *f = &g->pf[h];
        f->g = g;
        f->h = h;
        buf_init(&f->sealed, OBJ_CHUNK_MAX + AEAD_MAX_OVERHEAD + 64);
        if (pthread_create(&f->thread, NULL, prefetcher, f)) {
            prefetch_stop(g); /* the reader goes on by itself */
            return;
        }
        f->started = true;
    }
}

static void
prefetch_stop(struct obj_get *g)
{
    if (!g->pf_on)
        return;
    pthread_mutex_lock(&g->pf_mu);
    g->pf_stop = true;
    pthread_cond_broadcast(&g->pf_cv);
    pthread_mutex_unlock(&g->pf_mu);
    for (unsigned h = 0; h < OBJ_PREFETCH_HELPERS; h++) {
        struct prefetch *f = &g->pf[h];
        if (f->started)
            pthread_join(f->thread, NULL);
        f->started = false;
        buf_release(&f->sealed);
        if (f->plain) {
            secret_wipe(f->plain, f->cap);
            free(f->plain);
            f->plain = NULL;
        }
    }
    pthread_cond_destroy(&g->pf_cv);
    pthread_mutex_destroy(&g->pf_mu);
    g->pf_on = false;
    atomic_fetch_sub(&prefetching, 1);
    /* the helpers' chunk buffers were freed into their threads' malloc
     * arenas, which keep them: give that memory back once per large read */
    malloc_trim(0);
}

/* Makes chunk g->next the current one: from its helper, or read now. */
static int
get_next_chunk(struct obj_get *g)
{
    int rc;
    if (g->pf_on) {
        struct prefetch *f = &g->pf[(g->next - g->pf_first) % OBJ_PREFETCH_HELPERS];
        pthread_mutex_lock(&g->pf_mu);
        while (!f->ready)
            pthread_cond_wait(&g->pf_cv, &g->pf_mu);
        rc = f->rc;
        if (!rc) {
            uint8_t *p = g->plain;
            size_t cap = g->plain_cap;
            g->plain = f->plain;
            g->plain_cap = f->cap;
            g->plain_len = f->len;
            f->plain = p;
            f->cap = cap;
            f->ready = false;
            pthread_cond_broadcast(&g->pf_cv);
        }
        pthread_mutex_unlock(&g->pf_mu);
    } else {
        rc = chunk_open(g, g->next, &g->sealed, &g->plain, &g->plain_cap, &g->plain_len);
    }
    if (rc)
        return rc;
    g->plain_off = 0;
    g->next++;
    return 0;
}

int
obj_get_read(struct obj_get *g, uint8_t *dst, size_t cap, size_t *n)
{
    *n = 0;
    while (g->plain_off == g->plain_len) {
        if (g->next == g->o.chunks) {
            /* every chunk read: the sizes must add up */
            return g->delivered == g->o.size ? 0 : ERR_CORRUPT;
        }
        int rc = get_next_chunk(g);
        if (rc)
            return rc;
    }
    size_t take = g->plain_len - g->plain_off;
    if (take > cap)
        take = cap;
    if (take > g->o.size - g->delivered)
        return ERR_CORRUPT;
    memcpy(dst, g->plain + g->plain_off, take);
    g->plain_off += take;
    g->delivered += take;
    *n = take;
    return 0;
}

void
obj_get_free(struct obj_get *g)
{
    if (!g)
        return;
    prefetch_stop(g); /* before the key and the chunks it uses go */
    store_chunks_close(g->chunks);
    key32_free(g->key);
    buf_release(&g->sealed);
    if (g->plain) {
        secret_wipe(g->plain, g->plain_cap);
        free(g->plain);
    }
    free(g);
}

int
obj_delete(struct region *r, const char *account, const char *service, const char *name,
           size_t namelen)
{
    struct store_object o;
    struct store_batch *b = NULL;
    struct key32 *key = key32_new();
    if (!key)
        return ERR_NOMEM;
    int rc = obj_ident(r, &o, account, service, name, namelen);
    if (!rc) /* a service never written to has no key, and nothing to delete */
        rc = svc_key(r, account, service, SVC_READ, key);
    if (!rc)
        rc = store_batch_new(&b);
    if (!rc)
        rc = store_batch_object_delete(b, account, service, o.name_hash, clock_now());
    if (!rc)
        rc = trail_add(
            r, b, &(struct trail){AUDIT_USER, "data.delete", account, service, o.name_hash, 0});
    if (!rc)
        rc = trail_commit(r, b, true);
    store_batch_free(b);
    key32_free(key);
    return rc;
}

struct feed_ctx {
    obj_feed_cb cb;
    void *ctx;
    struct key32 *key;
    size_t limit, count;
    int64_t last;
    bool more;
    uint8_t name[OBJ_NAME_MAX + 1];
    struct buf aad;
};

/* A change-feed item of a stored row, its name opened into name[cap]. */
static int
item_of(struct obj_item *it, const struct store_object *o, const struct key32 *key, struct buf *aad,
        uint8_t *name, size_t cap)
{
    size_t n = 0;
    if (o->name_sealed_len < 1)
        return ERR_CORRUPT;
    obj_aad(aad, "name", o);
    int rc = aead_open((enum aead_cipher)o->name_sealed[0], name, cap, &n, key->b, buf_slice(aad),
                       SLICE(o->name_sealed + 1, o->name_sealed_len - 1));
    if (rc)
        return rc;
    it->name = (const char *)name;
    it->namelen = n;
    etag_of(it->etag, o->version);
    it->size = o->size;
    it->seq = o->seq;
    it->deleted = o->deleted;
    return 0;
}

static int
feed_row(void *vctx, const struct store_object *o)
{
    struct feed_ctx *f = vctx;
    struct obj_item it;
    if (f->count == f->limit) {
        f->more = true;
        return 1;
    }
    int rc = item_of(&it, o, f->key, &f->aad, f->name, sizeof(f->name));
    if (rc)
        return rc;
    f->count++;
    f->last = o->seq;
    return f->cb(f->ctx, &it);
}

int
obj_feed(struct region *r, const char *account, const char *service, int64_t since, size_t limit,
         obj_feed_cb cb, void *ctx, int64_t *last, bool *more)
{
    struct feed_ctx f = {.cb = cb, .ctx = ctx, .limit = limit, .last = since};
    *last = since;
    *more = false;
    if (!svc_valid(service))
        return ERR_NOT_FOUND;
    f.key = key32_new();
    if (!f.key)
        return ERR_NOMEM;
    buf_init(&f.aad, 256);
    int rc = svc_key(r, account, service, SVC_READ, f.key);
    if (rc == ERR_NOT_FOUND) {
        rc = 0; /* nothing was ever stored */
    } else if (!rc) {
        rc = store_feed(region_store(r), account, service, since, limit + 1, false, feed_row, &f);
        if (rc == 1 && f.more)
            rc = 0;
        *last = f.last;
        *more = f.more;
    }
    /* a listing reads names: on record before it goes out */
    if (!rc)
        rc = trail_record(r, &(struct trail){AUDIT_USER, "data.list", account, service, NULL, 0},
                          true);
    else if (rc == ERR_CONSENT)
        trail_refused(r, &(struct trail){AUDIT_USER, "data.list", account, service, NULL, rc});
    secret_wipe(f.name, sizeof(f.name));
    buf_release(&f.aad);
    key32_free(f.key);
    return rc;
}

/* Views ------------------------------------------------------------------- */

struct obj_view {
    struct region *r;
    char account[STORE_ID_MAX];
    char service[STORE_SERVICE_MAX];
    struct key32 *key;              /* the service key (locked memory, key32_new) */
    struct key32 *mac;              /* derived from the service key */
    uint64_t epoch;                 /* consent epoch when the key was taken (obj_view_put) */
    struct buf aad, sealed;         /* scratch */
    const struct store_object *cur; /* the row obj_view_feed is listing */
    bool listed, read;              /* audit entries recorded */
    bool last_known;
    int64_t last;
    uint8_t name[OBJ_NAME_MAX + 1];
};

int
obj_view_open(struct obj_view **out, struct region *r, const char *account, const char *service)
{
    struct obj_view *v = NULL;
    int rc = ERR_NOMEM;
    *out = NULL;
    if (!svc_valid(service))
        return ERR_NOT_FOUND;
    if (strlen(account) >= STORE_ID_MAX)
        return ERR_INVAL;
    v = calloc(1, sizeof(*v));
    if (!v)
        return ERR_NOMEM;
    v->r = r;
    memcpy(v->account, account, strlen(account) + 1);
    memcpy(v->service, service, strlen(service) + 1);
    buf_init(&v->aad, 256);
    buf_init(&v->sealed, OBJ_CHUNK_MAX + AEAD_MAX_OVERHEAD + 64);
    v->key = key32_new();
    v->mac = key32_new();
    if (!v->key || !v->mac)
        goto out;
    v->epoch = consent_epoch(); /* before the key, as obj_put_begin */
    rc = svc_key(r, account, service, SVC_READ, v->key);
    if (rc == ERR_CONSENT)
        trail_refused(r, &(struct trail){AUDIT_USER, "data.read", account, service, NULL, rc});
    if (rc)
        goto out;
    if (crypto_kdf_derive_from_key(v->mac->b, sizeof(v->mac->b), 1, "oikosvwm", v->key->b))
        rc = ERR_INTERNAL;
out:
    if (rc) {
        obj_view_free(v);
        return rc;
    }
    *out = v;
    return 0;
}

void
obj_view_free(struct obj_view *v)
{
    if (!v)
        return;
    key32_free(v->key);
    key32_free(v->mac);
    buf_release(&v->aad);
    buf_release(&v->sealed);
    secret_wipe(v->name, sizeof(v->name));
    free(v);
}

/* Records action once per view, durably, before anything goes out. */
static int
view_record(struct obj_view *v, const char *action, bool *done)
{
    if (*done)
        return 0;
    int rc = trail_record(
        v->r, &(struct trail){AUDIT_USER, action, v->account, v->service, NULL, 0}, true);
    if (!rc)
        *done = true;
    return rc;
}

int
obj_view_stat(struct obj_view *v, const char *name, size_t namelen, struct obj_info *info)
{
    struct store_object o;
    int rc = obj_ident(v->r, &o, v->account, v->service, name, namelen);
    if (!rc)
        rc = store_object_get(region_store(v->r), v->account, v->service, o.name_hash, &o);
    if (!rc)
        info_of(info, &o);
    return rc;
}

/* Reads and opens every chunk of o into out; ERR_CONFLICT if a chunk is gone. */
static int
view_read(struct obj_view *v, const struct store_object *o, struct buf *out)
{
    enum aead_cipher c = (enum aead_cipher)o->cipher;
    buf_reset(out);
    if (o->size > out->max)
        return ERR_LIMIT;
    if (!aead_available(c) || o->chunks == 0)
        return ERR_CORRUPT;
    int rc = view_record(v, "data.read", &v->read);
    for (uint32_t i = 0; !rc && i < o->chunks; i++) {
        size_t n = 0;
        struct slice sealed = o->chunk0; /* brought by the feed, or read now */
        if (i > 0 || !sealed.p) {
            rc = store_chunk_get(region_store(v->r), v->account, o->version, i, &v->sealed);
            sealed = buf_slice(&v->sealed);
        }
        if (rc == ERR_NOT_FOUND)
            rc = ERR_CONFLICT; /* replaced or deleted since the row was read */
        if (rc)
            break;
        size_t over = aead_overhead(c);
        if (sealed.len < over) {
            rc = ERR_CORRUPT;
            break;
        }
        rc = buf_grow(out, sealed.len - over);
        if (rc)
            break;
        chunk_aad(&v->aad, o, i, i + 1 == o->chunks);
        rc = aead_open(c, (uint8_t *)out->data + out->len, sealed.len - over, &n, v->key->b,
                       buf_slice(&v->aad), sealed);
        if (!rc) {
            out->len += n;
            out->data[out->len] = 0;
        }
    }
    if (!rc && out->len != o->size)
        rc = ERR_CORRUPT;
    if (rc && out->data)
        secret_wipe(out->data, out->len);
    if (rc)
        buf_reset(out);
    return rc;
}

int
obj_view_get(struct obj_view *v, const char *name, size_t namelen, struct buf *out,
             struct obj_info *info)
{
    struct store_object o;
    int rc = ERR_CONFLICT;
    for (int attempt = 0; rc == ERR_CONFLICT && attempt < 3; attempt++) {
        rc = obj_ident(v->r, &o, v->account, v->service, name, namelen);
        if (!rc)
            rc = store_object_get(region_store(v->r), v->account, v->service, o.name_hash, &o);
        if (!rc)
            rc = view_read(v, &o, out);
    }
    if (rc == ERR_CONFLICT)
        rc = ERR_UNAVAILABLE; /* replaced over and over while being read */
    if (!rc)
        info_of(info, &o);
    return rc;
}

struct view_feed {
    struct obj_view *v;
    obj_feed_cb cb;
    void *ctx;
    size_t limit, count;
    int64_t last;
    bool more;
};

static int
view_row(void *vctx, const struct store_object *o)
{
    struct view_feed *f = vctx;
    struct obj_view *v = f->v;
    struct obj_item it;
    if (f->count == f->limit) {
        f->more = true;
        return 1;
    }
    int rc = item_of(&it, o, v->key, &v->aad, v->name, sizeof(v->name));
    if (rc)
        return rc;
    f->count++;
    f->last = o->seq;
    v->cur = o->deleted ? NULL : o;
    rc = f->cb(f->ctx, &it);
    v->cur = NULL;
    return rc;
}

int
obj_view_feed(struct obj_view *v, int64_t since, size_t limit, bool data, obj_feed_cb cb, void *ctx,
              int64_t *last, bool *more)
{
    struct view_feed f = {.v = v, .cb = cb, .ctx = ctx, .limit = limit, .last = since};
    *last = since;
    *more = false;
    int rc = view_record(v, "data.list", &v->listed);
    if (!rc)
        rc = store_feed(region_store(v->r), v->account, v->service, since, limit + 1, data,
                        view_row, &f);
    if (rc == 1 && f.more)
        rc = 0;
    *last = f.last; /* also when cb stopped the listing: where to resume */
    *more = f.more;
    return rc;
}

int
obj_view_data(struct obj_view *v, struct buf *out)
{
    if (!v->cur)
        return ERR_INVAL;
    return view_read(v, v->cur, out);
}

struct view_probe {
    int64_t seq;
    bool found;
};

static int
probe_row(void *ctx, const struct store_object *o)
{
    struct view_probe *p = ctx;
    p->seq = o->seq;
    p->found = true;
    return 1;
}

/* The first seq after x, if any: one indexed lookup. */
static int
view_probe(struct obj_view *v, int64_t x, struct view_probe *p)
{
    p->found = false;
    int rc = store_feed(region_store(v->r), v->account, v->service, x, 1, false, probe_row, p);
    return rc == 1 ? 0 : rc;
}

int
obj_view_last(struct obj_view *v, int64_t *seq)
{
    struct view_probe p;
    int64_t lo, hi, step = 1;
    int rc;
    if (v->last_known) {
        *seq = v->last;
        return 0;
    }
    /* The store gives the next seq after any position in O(log n): gallop
     * up from the first seq, then bisect, about 2 log2(seq) lookups. */
    rc = view_probe(v, 0, &p);
    if (rc)
        return rc;
    lo = p.found ? p.seq : 0;
    hi = lo;
    while (p.found) {
        if (lo > INT64_MAX - step) {
            hi = INT64_MAX;
            break;
        }
        hi = lo + step;
        rc = view_probe(v, hi, &p);
        if (rc)
            return rc;
        if (p.found) {
            lo = p.seq;
            step = step < (INT64_C(1) << 40) ? step * 2 : step;
        }
    }
    /* lo is a seq; nothing lies after hi */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        rc = view_probe(v, mid, &p);
        if (rc)
            return rc;
        if (p.found)
            lo = p.seq;
        else
            hi = mid;
    }
    v->last = lo;
    v->last_known = true;
    *seq = lo;
    return 0;
}

int
obj_view_mac(struct obj_view *v, uint8_t out[32], struct slice msg)
{
    if (crypto_generichash(out, 32, msg.p, msg.len, v->mac->b, sizeof(v->mac->b)))
        return ERR_INTERNAL;
    return 0;
}

static void
meta_aad(struct obj_view *v, const char *label)
{
    buf_reset(&v->aad);
    put_str(&v->aad, "meta");
    put_str(&v->aad, v->account);
    put_str(&v->aad, v->service);
    put_str(&v->aad, label);
}

int
obj_view_seal(struct obj_view *v, struct buf *out, const char *label, struct slice plain)
{
    enum aead_cipher c = aead_default();
    size_t n = 0;
    buf_reset(out);
    if (strlen(label) > 64)
        return ERR_INVAL;
    int rc = buf_grow(out, 1 + plain.len + aead_overhead(c));
    if (rc)
        return rc;
    meta_aad(v, label);
    out->data[0] = (char)c;
    rc = aead_seal(c, (uint8_t *)out->data + 1, plain.len + aead_overhead(c), &n, v->key->b,
                   buf_slice(&v->aad), plain);
    if (rc)
        return rc;
    out->len = 1 + n;
    out->data[out->len] = 0;
    return 0;
}

int
obj_view_unseal(struct obj_view *v, struct buf *out, const char *label, struct slice sealed)
{
    size_t n = 0;
    buf_reset(out);
    if (strlen(label) > 64 || sealed.len < 1)
        return ERR_INVAL;
    enum aead_cipher c = (enum aead_cipher)sealed.p[0];
    if (!aead_available(c) || sealed.len < 1 + aead_overhead(c))
        return ERR_CORRUPT;
    size_t plain = sealed.len - 1 - aead_overhead(c);
    int rc = buf_grow(out, plain);
    if (rc)
        return rc;
    meta_aad(v, label);
    rc = aead_open(c, (uint8_t *)out->data, plain, &n, v->key->b, buf_slice(&v->aad),
                   SLICE(sealed.p + 1, sealed.len - 1));
    if (rc)
        return rc;
    out->len = n;
    out->data[n] = 0;
    return 0;
}

int
obj_view_delete(struct obj_view *v, const struct slice *names, size_t n, obj_batch_cb ops,
                void *ctx)
{
    struct store_batch *b = NULL;
    struct store_object o;
    int64_t now = clock_now();
    int rc = store_batch_new(&b);
    for (size_t i = 0; !rc && i < n; i++) {
        rc = obj_ident(v->r, &o, v->account, v->service, (const char *)names[i].p, names[i].len);
        if (!rc)
            rc = store_batch_object_delete(b, v->account, v->service, o.name_hash, now);
        if (!rc)
            rc = trail_add(
                v->r, b,
                &(struct trail){AUDIT_USER, "data.delete", v->account, v->service, o.name_hash, 0});
    }
    if (!rc && ops)
        rc = ops(ctx, b);
    if (!rc)
        rc = trail_commit(v->r, b, true);
    store_batch_free(b);
    return rc;
}

int
obj_view_put(struct obj_view *v, const char *name, size_t namelen, struct slice data,
             obj_batch_cb ops, void *ctx, struct obj_info *info)
{
    const struct config *cfg = region_config(v->r);
    struct obj_put *p = calloc(1, sizeof(*p));
    struct buf aad;
    int rc = ERR_NOMEM;
    buf_init(&aad, 256);
    if (!p)
        goto out;
    p->r = v->r;
    p->key = v->key;
    p->key_borrowed = true;
    p->epoch = v->epoch;
    p->limit = cfg->max_object_bytes;
    p->announced = data.len;
    p->cipher = aead_default();
    p->chunk = (size_t)cfg->chunk_bytes;
    if (data.len > p->limit) {
        rc = ERR_TOO_LARGE;
        goto out;
    }
    rc = obj_ident(v->r, &p->o, v->account, v->service, name, namelen);
    if (rc)
        goto out;
    if (data.len < p->chunk)
        p->chunk = data.len ? data.len : 1;
    rc = ERR_NOMEM;
    p->pending = malloc(p->chunk);
    p->sealed = malloc(p->chunk + AEAD_MAX_OVERHEAD + 1);
    if (!p->pending || !p->sealed)
        goto out;
    p->o.version = version_new();
    p->o.cipher = (int32_t)p->cipher;
    p->o.name_sealed[0] = (uint8_t)p->cipher;
    obj_aad(&aad, "name", &p->o);
    rc = aead_seal(p->cipher, p->o.name_sealed + 1, sizeof(p->o.name_sealed) - 1,
                   &p->o.name_sealed_len, p->key->b, buf_slice(&aad), SLICE(name, namelen));
    p->o.name_sealed_len += 1;
    if (!rc)
        rc = obj_put_write(p, data.p, data.len);
    if (!rc)
        rc = obj_put_finish_ops(p, info, ops, ctx);
out:
    buf_release(&aad);
    obj_put_free(p);
    return rc;
}

void
obj_view_unaudited(struct obj_view *v)
{
    v->listed = v->read = true;
}

/* Imports ------------------------------------------------------------------ */

/* An account of an import: its service keys, each fetched once. */
struct import_acct {
    char account[STORE_ID_MAX];
    struct key32 *keys[SVC_COUNT]; /* keys[i]: the key of svc_names[i], once taken */
};

struct obj_import {
    struct region *r;
    struct import_acct *v; /* the accounts, in the order begun; the last is current */
    size_t n, cap;
    uint64_t epoch;         /* consent epoch before the first key was taken */
    struct store_batch *b;  /* everything sealed so far */
    struct store_object o;  /* scratch */
    struct buf aad, sealed; /* scratch */
};

int
obj_import_new(struct obj_import **out, struct region *r, const char *account)
{
    struct obj_import *im = NULL;
    *out = NULL;
    im = calloc(1, sizeof(*im));
    if (!im)
        return ERR_NOMEM;
    im->r = r;
    buf_init(&im->aad, 256);
    buf_init(&im->sealed, OBJ_CHUNK_MAX + AEAD_MAX_OVERHEAD + 64);
    int rc = store_batch_new(&im->b);
    if (!rc)
        rc = obj_import_account(im, account);
    if (rc) {
        obj_import_free(im);
        return rc;
    }
    im->epoch = consent_epoch(); /* before any key, as obj_put_begin */
    *out = im;
    return 0;
}

int
obj_import_account(struct obj_import *im, const char *account)
{
    if (strlen(account) >= STORE_ID_MAX)
        return ERR_INVAL;
    for (size_t i = 0; i < im->n; i++)
        if (!strcmp(im->v[i].account, account))
            return ERR_INVAL; /* each account once */
    if (im->n == im->cap) {
        size_t cap = im->cap ? 2 * im->cap : 4;
        struct import_acct *v = realloc(im->v, cap * sizeof(*v));
        if (!v)
            return ERR_NOMEM;
        im->v = v;
        im->cap = cap;
    }
    struct import_acct *a = &im->v[im->n++];
    memset(a, 0, sizeof(*a));
    memcpy(a->account, account, strlen(account) + 1);
    return 0;
}

void
obj_import_free(struct obj_import *im)
{
    if (!im)
        return;
    for (size_t i = 0; i < im->n; i++)
        for (size_t k = 0; k < SVC_COUNT; k++)
            key32_free(im->v[i].keys[k]);
    free(im->v);
    store_batch_free(im->b);
    buf_release(&im->aad);
    buf_release(&im->sealed);
    free(im);
}

/* The key of service for the current account, fetched once; ERR_NOT_FOUND for none. */
static int
import_key(struct obj_import *im, const char *service, const struct key32 **key)
{
    struct import_acct *a = &im->v[im->n - 1];
    for (size_t i = 0; i < SVC_COUNT && svc_names[i]; i++) {
        if (strcmp(svc_names[i], service) != 0)
            continue;
        if (!a->keys[i]) {
            struct key32 *k = key32_new();
            if (!k)
                return ERR_NOMEM;
            int rc = svc_key(im->r, a->account, service, SVC_WRITE, k);
            if (rc) {
                key32_free(k);
                return rc;
            }
            a->keys[i] = k;
        }
        *key = a->keys[i];
        return 0;
    }
    return ERR_NOT_FOUND;
}

int
obj_import_add(struct obj_import *im, const char *service, const char *name, size_t namelen,
               struct slice data)
{
    const struct config *cfg = region_config(im->r);
    enum aead_cipher c = aead_default();
    struct store_object *o = &im->o;
    const struct key32 *k = NULL;
    if (data.len > cfg->max_object_bytes)
        return ERR_TOO_LARGE;
    int rc = obj_ident(im->r, o, im->v[im->n - 1].account, service, name, namelen);
    if (!rc)
        rc = import_key(im, service, &k);
    if (rc)
        return rc;
    const uint8_t *key = k->b;
    o->version = version_new();
    o->cipher = (int32_t)c;
    o->name_sealed[0] = (uint8_t)c;
    obj_aad(&im->aad, "name", o);
    rc = aead_seal(c, o->name_sealed + 1, sizeof(o->name_sealed) - 1, &o->name_sealed_len, key,
                   buf_slice(&im->aad), SLICE(name, namelen));
    o->name_sealed_len += 1;
    /* the same chunking as an upload: full chunks, the last one shorter (or empty) */
    size_t chunk = (size_t)cfg->chunk_bytes;
    size_t nchunks = data.len ? (data.len + chunk - 1) / chunk : 1;
    for (size_t i = 0; !rc && i < nchunks; i++) {
        size_t off = i * chunk, len = data.len - off < chunk ? data.len - off : chunk;
        size_t n = 0;
        bool last = i + 1 == nchunks;
        rc = buf_grow(&im->sealed, len + AEAD_MAX_OVERHEAD + 1);
        if (rc)
            break;
        chunk_aad(&im->aad, o, (uint32_t)i, last);
        rc = aead_seal(c, (uint8_t *)im->sealed.data, len + AEAD_MAX_OVERHEAD + 1, &n, key,
                       buf_slice(&im->aad), SLICE(data.p ? data.p + off : data.p, len));
        if (!rc)
            rc = store_batch_chunk_put(im->b, o->account, o->version, (uint32_t)i,
                                       SLICE(im->sealed.data, n));
    }
    if (rc)
        return rc;
    o->size = data.len;
    o->chunks = (uint32_t)nchunks;
    o->mtime = clock_now();
    return store_batch_object_put(im->b, o);
}

int
obj_import_commit(struct obj_import *im, obj_batch_cb ops, void *ctx)
{
    struct key32 *now = NULL;
    int rc = ops ? ops(ctx, im->b) : 0;
    if (rc)
        return rc;
    /* as put_commit: a revocation either sees these rows (and purges them)
     * or this commit sees the revocation */
    if (consent_fence_commit_begin() != im->epoch) {
        now = key32_new();
        rc = now ? 0 : ERR_NOMEM;
        for (size_t a = 0; !rc && a < im->n; a++) {
            for (size_t i = 0; !rc && i < SVC_COUNT && svc_names[i]; i++) {
                if (!im->v[a].keys[i])
                    continue;
                rc = svc_key(im->r, im->v[a].account, svc_names[i], SVC_WRITE, now);
                if (!rc && !secret_equal(now->b, im->v[a].keys[i]->b, sizeof(now->b)))
                    rc = ERR_CONSENT;
                if (rc == ERR_NOT_FOUND)
                    rc = ERR_CONSENT;
            }
        }
    }
    if (!rc) /* ops may have added audit entries */
        rc = trail_commit(im->r, im->b, true);
    consent_fence_commit_end();
    key32_free(now);
    return rc;
}
