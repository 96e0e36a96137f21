/* SPDX-License-Identifier: Apache-2.0 */
/*
 * obj.c: objects (see obj.h), on top of svc.h (service keys, consent), the
 * keyring (name hashes), the AEAD and the store.
 *
 * Write path: obj_put_begin gets the service key (consent is checked there)
 * and picks a random version; full chunks are sealed and staged in
 * non-durable commits as they arrive; obj_put_finish commits the last chunk
 * with the object row in one durable commit, which also makes the staged
 * chunks durable. A crash before it leaves only orphan chunks, which the
 * store removes when it next opens.
 */
#include "base/common.h"

#include <sodium.h>

#include "base/log.h"
#include "base/util.h"
#include "core/obj.h"
#include "core/svc.h"
#include "crypto/aead.h"
#include "crypto/kr.h"
#include "store/store.h"

struct obj_put {
    struct region *r;
    struct store_object o;
    struct key32 *key;
    enum aead_cipher cipher;
    uint64_t announced, limit, received;
    size_t chunk;
    uint8_t *pending; /* plaintext of the chunk being filled */
    size_t pending_len;
    uint8_t *sealed; /* one sealed chunk */
    uint32_t staged; /* chunks committed so far */
    bool finished;
};

struct obj_get {
    struct region *r;
    struct store_object o;
    struct key32 *key;
    struct buf sealed;
    uint8_t *plain;
    size_t plain_cap, plain_len, plain_off;
    uint32_t next; /* next chunk to read */
    uint64_t delivered;
};

bool
obj_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > OBJ_NAME_MAX || memchr(name, 0, len))
        return false;
    const uint8_t *p = (const uint8_t *)name, *end = p + len;
    while (p < end) {
        uint8_t c = *p;
        size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                              : (c & 0xF8) == 0xF0   ? 4
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
    rc = svc_key(r, account, service, SVC_WRITE, p->key);
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
    do {
        randombytes_buf(&p->o.version, sizeof(p->o.version));
        p->o.version &= INT64_MAX;
    } while (p->o.version == 0);
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

/* Seals the pending bytes as chunk p->staged and commits it. */
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
            int rc = store_batch_new(&b);
            if (!rc)
                rc = put_flush(p, false, b);
            if (!rc)
                rc = store_commit(region_store(p->r), b, false);
            store_batch_free(b);
            if (rc)
                return rc;
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

int
obj_put_finish(struct obj_put *p, struct obj_info *info)
{
    struct store_batch *b = NULL;
    if (p->finished)
        return ERR_INVAL;
    if (p->announced != UINT64_MAX && p->received != p->announced)
        return ERR_INVAL;
    p->o.size = p->received;
    p->o.mtime = clock_now();
    int rc = store_batch_new(&b);
    if (!rc)
        rc = put_flush(p, true, b);
    if (!rc) {
        p->o.chunks = p->staged;
        rc = store_batch_object_put(b, &p->o);
    }
    if (!rc)
        rc = store_commit(region_store(p->r), b, true);
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
    key32_free(p->key);
    if (p->pending) {
        secret_wipe(p->pending, p->pending_len);
        free(p->pending);
    }
    free(p->sealed);
    free(p);
}

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
    if (rc)
        goto out;
    rc = store_object_get(region_store(r), account, service, g->o.name_hash, &g->o);
    if (rc)
        goto out;
    if (!aead_available((enum aead_cipher)g->o.cipher) || g->o.chunks == 0) {
        rc = ERR_CORRUPT;
        goto out;
    }
    info_of(info, &g->o);
out:
    if (rc) {
        obj_get_free(g);
        return rc;
    }
    *out = g;
    return 0;
}

static int
get_next_chunk(struct obj_get *g)
{
    struct buf aad;
    bool last = g->next + 1 == g->o.chunks;
    int rc = store_chunk_get(region_store(g->r), g->o.account, g->o.version, g->next, &g->sealed);
    if (rc == ERR_NOT_FOUND)
        return ERR_CORRUPT;
    if (rc)
        return rc;
    size_t need = g->sealed.len;
    if (need > g->plain_cap) {
        uint8_t *np = realloc(g->plain, need);
        if (!np)
            return ERR_NOMEM;
        g->plain = np;
        g->plain_cap = need;
    }
    buf_init(&aad, 256);
    chunk_aad(&aad, &g->o, g->next, last);
    rc = aead_open((enum aead_cipher)g->o.cipher, g->plain, g->plain_cap, &g->plain_len,
                   g->key->b, buf_slice(&aad), buf_slice(&g->sealed));
    buf_release(&aad);
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
        rc = store_commit(region_store(r), b, true);
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

static int
feed_row(void *vctx, const struct store_object *o)
{
    struct feed_ctx *f = vctx;
    struct obj_item it;
    size_t n = 0;
    if (f->count == f->limit) {
        f->more = true;
        return 1;
    }
    if (o->name_sealed_len < 1)
        return ERR_CORRUPT;
    obj_aad(&f->aad, "name", o);
    int rc = aead_open((enum aead_cipher)o->name_sealed[0], f->name, sizeof(f->name), &n,
                       f->key->b, buf_slice(&f->aad),
                       SLICE(o->name_sealed + 1, o->name_sealed_len - 1));
    if (rc)
        return rc;
    it.name = (const char *)f->name;
    it.namelen = n;
    etag_of(it.etag, o->version);
    it.size = o->size;
    it.seq = o->seq;
    it.deleted = o->deleted;
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
        rc = store_feed(region_store(r), account, service, since, limit + 1, feed_row, &f);
        if (rc == 1 && f.more)
            rc = 0;
        *last = f.last;
        *more = f.more;
    }
    secret_wipe(f.name, sizeof(f.name));
    buf_release(&f.aad);
    key32_free(f.key);
    return rc;
}
