/* SPDX-License-Identifier: Apache-2.0 */
/*
 * export.c: the account export as a ustar stream (see export.h), on top of
 * obj.h (the change feed for names, obj_get for bytes), the consent ledger,
 * base/tar.h and libsodium's SHA-256.
 *
 * A state machine: headers, padding and the end marker are staged in a
 * small block buffer; object bytes go straight from obj_get_read into the
 * caller's buffer, hashed on the way; the manifest is built as JSON text
 * while objects pass and written last, when every hash is known.
 *
 * Ownership: the export owns one page of names from the feed, the open
 * reader and the manifest, all holding plaintext: wiped before they are
 * freed. Thread-safety: one thread at a time per export.
 */
#include "base/common.h"

#include <jansson.h>
#include <sodium.h>

#include "base/tar.h"
#include "base/util.h"
#include "core/consent.h"
#include "core/export.h"
#include "core/obj.h"
#include "core/svc.h"
#include "core/trail.h"
#include "crypto/secret.h"
#include "crypto/hash.h"

#define EXPORT_PAGE 64

enum phase { P_NEXT, P_BODY, P_MANIFEST, P_MANIFEST_BODY, P_DONE };

struct item {
    char *name; /* owned, plaintext */
    size_t len;
};

struct export
{
    struct region *r;
    char account[STORE_ID_MAX];
    enum phase phase;
    size_t svc;    /* index in svc_names of the service being exported */
    bool svc_open; /* its listing has started */
    bool more;     /* the feed has more after cursor */
    int64_t cursor;
    struct item items[EXPORT_PAGE];
    size_t nitems, next;
    struct obj_get *g;
    uint64_t left, size; /* of the object being written */
    char path[TAR_PATH_MAX + 1];
    struct item cur; /* the object being written: its name (owned) */
    int64_t mtime;
    struct hash sha;
    uint8_t blk[4 * TAR_BLOCK]; /* staged header, padding, end marker */
    size_t blk_len, blk_off;
    struct buf manifest;
    size_t manifest_off;
    uint64_t objects;
    bool first_entry;
};

static void
item_release(struct item *it)
{
    if (it->name) {
        secret_wipe(it->name, it->len);
        free(it->name);
    }
    it->name = NULL;
    it->len = 0;
}

static void
page_release(struct export *e)
{
    for (size_t i = 0; i < e->nitems; i++)
        item_release(&e->items[i]);
    e->nitems = e->next = 0;
}

/* Appends a JSON value's compact text to the manifest. */
static int
manifest_add_json(struct export *e, json_t *v)
{
    if (!v)
        return ERR_NOMEM;
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(v);
    if (!s)
        return ERR_NOMEM;
    size_t n = strlen(s);
    int rc = buf_add(&e->manifest, s, n);
    secret_wipe(s, n);
    free(s);
    return rc;
}

static int
manifest_start(struct export *e)
{
    struct consent c[SVC_COUNT];
    size_t n = 0;
    char created[TIME_RFC3339_LEN];
    time_rfc3339(created, clock_now());
    int rc = consent_list(e->r, e->account, c, &n);
    if (rc)
        return rc;
    json_t *consents = json_array();
    if (!consents)
        return ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        char since[TIME_RFC3339_LEN];
        time_rfc3339(since, c[i].since);
        json_t *o = json_pack("{s:s,s:b,s:s?,s:s?}", "service", c[i].service, "granted",
                              c[i].granted, "since", c[i].since ? since : NULL, "policy",
                              c[i].policy[0] ? c[i].policy : NULL);
        if (!o || json_array_append_new(consents, o)) {
            json_decref(consents);
            return ERR_NOMEM;
        }
    }
    rc = buf_addf(&e->manifest, "{\"format\":\"oikos-export-1\",\"account\":");
    if (!rc)
        rc = manifest_add_json(e, json_string(e->account));
    if (!rc)
        rc = buf_addf(&e->manifest, ",\"region\":");
    if (!rc)
        rc = manifest_add_json(e, json_string(region_name(e->r)));
    if (!rc)
        rc = buf_addf(&e->manifest, ",\"exported\":\"%s\",\"consents\":", created);
    if (!rc)
        rc = manifest_add_json(e, consents);
    else
        json_decref(consents);
    if (!rc)
        rc = buf_adds(&e->manifest, ",\"objects\":[");
    return rc;
}

int
export_new(struct export **out, struct region *r, const char *account)
{
    struct export *e = calloc(1, sizeof(*e));
    if (!e)
        return ERR_NOMEM;
    e->r = r;
    snprintf(e->account, sizeof(e->account), "%s", account);
    buf_init(&e->manifest, EXPORT_MANIFEST_MAX);
    e->first_entry = true;
    e->phase = P_NEXT;
    int rc = manifest_start(e);
    if (!rc) /* on record before the first byte goes out; each object read adds its own */
        rc = trail_record(r, &(struct trail){AUDIT_USER, "export", account, NULL, NULL, 0}, true);
    if (rc) {
        export_free(e);
        return rc;
    }
    *out = e;
    return 0;
}

uint64_t
export_objects(const struct export *e)
{
    return e->objects;
}

void
export_free(struct export *e)
{
    if (!e)
        return;
    page_release(e);
    item_release(&e->cur);
    obj_get_free(e->g);
    hash_release(&e->sha);
    if (e->manifest.data)
        secret_wipe(e->manifest.data, e->manifest.len);
    buf_release(&e->manifest);
    secret_wipe(e->blk, sizeof(e->blk));
    free(e);
}

/* A name that can be a path in the archive as it is: relative, no empty, '.' or '..' part. */
static bool
name_safe(const char *s, size_t n)
{
    if (n == 0 || s[0] == '/')
        return false;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && ((unsigned char)s[i] < 0x20 || s[i] == 0x7f))
            return false;
        if (i == n || s[i] == '/') {
            size_t len = i - start;
            if (len == 0 || (len == 1 && s[start] == '.') ||
                (len == 2 && s[start] == '.' && s[start + 1] == '.'))
                return false;
            start = i + 1;
        }
    }
    return true;
}

static int
feed_item(void *ctx, const struct obj_item *it)
{
    struct export *e = ctx;
    if (it->deleted || e->nitems == EXPORT_PAGE)
        return 0;
    struct item *d = &e->items[e->nitems];
    d->name = malloc(it->namelen + 1);
    if (!d->name)
        return ERR_NOMEM;
    memcpy(d->name, it->name, it->namelen);
    d->name[it->namelen] = 0;
    d->len = it->namelen;
    e->nitems++;
    return 0;
}

/* Stages the header of the next object and opens it; false when there is none left. */
static int
next_object(struct export *e, bool *found)
{
    *found = false;
    for (;;) {
        if (e->next < e->nitems) {
            struct item it = e->items[e->next];
            e->items[e->next++] = (struct item){NULL, 0};
            struct obj_info info;
            const char *service = svc_names[e->svc];
            int rc = obj_get_open(&e->g, e->r, e->account, service, it.name, it.len, &info);
            if (rc == ERR_NOT_FOUND) { /* deleted since it was listed */
                item_release(&it);
                continue;
            }
            if (rc == ERR_CONSENT) { /* turned off during the export: nothing more of it */
                item_release(&it);
                page_release(e);
                e->more = false;
                continue;
            }
            if (rc) {
                item_release(&it);
                return rc;
            }
            e->cur = it;
            e->size = e->left = info.size;
            e->mtime = info.mtime;
            int n = snprintf(e->path, sizeof(e->path), "%s/%s", service, it.name);
            if (n < 0 || (size_t)n >= sizeof(e->path) || !name_safe(it.name, it.len) ||
                tar_header(e->blk, e->path, e->size, e->mtime)) {
                snprintf(e->path, sizeof(e->path), "_unsafe/%s/%" PRIu64, service, e->objects);
                rc = tar_header(e->blk, e->path, e->size, e->mtime);
                if (rc)
                    return rc;
            }
            e->blk_len = TAR_BLOCK;
            e->blk_off = 0;
            hash_init(&e->sha);
            *found = true;
            return 0;
        }
        page_release(e);
        if (e->svc_open && e->more) {
            int64_t last = e->cursor;
            int rc = obj_feed(e->r, e->account, svc_names[e->svc], e->cursor, EXPORT_PAGE,
                              feed_item, e, &last, &e->more);
            if (rc == ERR_CONSENT) {
                page_release(e);
                e->more = false;
                continue;
            }
            if (rc)
                return rc;
            e->cursor = last;
            continue;
        }
        /* the next service that is on */
        if (e->svc_open)
            e->svc++;
        if (e->svc >= SVC_COUNT)
            return 0;
        e->svc_open = true;
        e->cursor = 0;
        int rc = consent_allowed(e->r, e->account, svc_names[e->svc]);
        if (rc && rc != ERR_CONSENT)
            return rc;
        e->more = rc == 0;
    }
}

/* The object is written: its padding, its manifest entry. */
static int
finish_object(struct export *e)
{
    uint8_t digest[HASH_SHA256_LEN];
    char hex[2 * HASH_SHA256_LEN + 1], mtime[TIME_RFC3339_LEN];
    hash_final(&e->sha, digest);
    hex_encode(hex, digest, sizeof(digest));
    time_rfc3339(mtime, e->mtime);
    obj_get_free(e->g);
    e->g = NULL;
    size_t pad = tar_padding(e->size);
    memset(e->blk, 0, pad);
    e->blk_len = pad;
    e->blk_off = 0;
    int rc = e->first_entry ? 0 : buf_add(&e->manifest, ",", 1);
    e->first_entry = false;
    if (!rc)
        rc = manifest_add_json(e,
                               json_pack("{s:s,s:s%,s:s,s:I,s:s,s:s}", "service", svc_names[e->svc],
                                         "name", e->cur.name, e->cur.len, "path", e->path, "size",
                                         (json_int_t)e->size, "mtime", mtime, "sha256", hex));
    item_release(&e->cur);
    e->objects++;
    return rc;
}

int
export_read(struct export *e, uint8_t *dst, size_t cap, size_t *n)
{
    int rc = 0;
    *n = 0;
    while (*n < cap) {
        if (e->blk_off < e->blk_len) {
            size_t take = e->blk_len - e->blk_off;
            if (take > cap - *n)
                take = cap - *n;
            memcpy(dst + *n, e->blk + e->blk_off, take);
            e->blk_off += take;
            *n += take;
            continue;
        }
        switch (e->phase) {
        case P_NEXT: {
            bool found = false;
            rc = next_object(e, &found);
            if (rc)
                return rc;
            e->phase = found ? P_BODY : P_MANIFEST;
            break;
        }
        case P_BODY: {
            if (e->left == 0) {
                /* the reader must say the object is complete (sizes add up) */
                size_t got = 0;
                uint8_t probe[1];
                rc = obj_get_read(e->g, probe, sizeof(probe), &got);
                if (!rc && got)
                    rc = ERR_CORRUPT;
                if (!rc)
                    rc = finish_object(e);
                if (rc)
                    return rc;
                e->phase = P_NEXT;
                break;
            }
            size_t want = cap - *n, got = 0;
            if (want > e->left)
                want = (size_t)e->left;
            rc = obj_get_read(e->g, dst + *n, want, &got);
            if (!rc && got == 0)
                rc = ERR_CORRUPT; /* shorter than its recorded size */
            if (rc)
                return rc;
            hash_update(&e->sha, dst + *n, got);
            e->left -= got;
            *n += got;
            break;
        }
        case P_MANIFEST:
            rc = buf_adds(&e->manifest, "]}\n");
            if (!rc)
                rc = tar_header(e->blk, "manifest.json", e->manifest.len, clock_now());
            if (rc)
                return rc;
            e->blk_len = TAR_BLOCK;
            e->blk_off = 0;
            e->manifest_off = 0;
            e->phase = P_MANIFEST_BODY;
            break;
        case P_MANIFEST_BODY: {
            size_t left = e->manifest.len - e->manifest_off;
            if (left) {
                size_t take = left < cap - *n ? left : cap - *n;
                memcpy(dst + *n, e->manifest.data + e->manifest_off, take);
                e->manifest_off += take;
                *n += take;
                break;
            }
            /* its padding, then the end of the archive: two zero blocks */
            size_t pad = tar_padding(e->manifest.len);
            memset(e->blk, 0, pad + 2 * TAR_BLOCK);
            e->blk_len = pad + 2 * TAR_BLOCK;
            e->blk_off = 0;
            e->phase = P_DONE;
            break;
        }
        case P_DONE:
            return 0;
        }
    }
    return 0;
}
