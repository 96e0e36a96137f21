/* SPDX-License-Identifier: Apache-2.0 */
/*
 * carddav.c: CardDAV on the contacts service (see carddav.h), on top of
 * core/obj.h (objects, views), core/trail.h (audit entries of book changes),
 * the store's per-account records (books and the UID index), dav.h (XML) and
 * vcard.h.
 *
 * Every read of a request goes through one obj_view, so the service key is
 * fetched and consent checked once per request, whatever the number of
 * cards. Multistatus answers are produced in pages (carddav_ms_next): a
 * listing walks the change feed PAGE_ROWS rows at a time and pauses once
 * PAGE_BYTES of XML are out, so memory stays bounded whatever the size of
 * the address book or of its cards.
 *
 * Ownership: a struct carddav owns its view and scratch buffers; a struct
 * carddav_ms owns its parsed request and borrows its carddav. Thread-safety:
 * one request, one thread; nothing here is shared. Nothing is logged:
 * names, UIDs and cards are personal data.
 */
#include "base/common.h"

#include "base/util.h"
#include "core/acct.h"
#include "core/svc.h"
#include "core/trail.h"
#include "crypto/secret.h"
#include "dav/carddav.h"
#include "dav/vcard.h"

#define KIND_BOOK SVC_REC_DAV_BOOK
#define KIND_UID SVC_REC_DAV_UID
#define KIND_RES SVC_REC_DAV_RES
#define TOKEN_PREFIX "urn:oikos:sync:"
#define PAGE_ROWS 256
#define PAGE_BYTES (256 * 1024)
#define BOOKS_MAX 256 /* address books of one account */
#define DELETE_BATCH 128
#define CONTENT_TYPE "text/vcard; charset=utf-8"

enum { PAUSE = 2, STOP = 3 }; /* feed callbacks: page full, limit reached */

struct book {
    char name[CARDDAV_BOOK_MAX + 1];
    char displayname[CARDDAV_LABEL_MAX + 1];
    char description[CARDDAV_LABEL_MAX + 1];
};

struct carddav {
    struct region *r;
    char account[STORE_ID_MAX];
    struct obj_view *view;
    struct buf data;   /* a card */
    struct buf sealed; /* a record's value */
    struct buf tmp;    /* hash inputs, names */
    char why[256];
    const char *cond_ns, *cond_name;
    struct buf cond_href;
};

/* Paths ----------------------------------------------------------------------- */

static bool
name_ok(const char *s, size_t len, size_t max)
{
    if (len == 0 || len > max || (len == 1 && s[0] == '.') ||
        (len == 2 && s[0] == '.' && s[1] == '.'))
        return false;
    for (size_t i = 0; i < len; i++)
        if ((uint8_t)s[i] < 0x20 || s[i] == 0x7F || s[i] == '/')
            return false;
    return obj_name_valid(s, len);
}

int
carddav_path_parse(struct carddav_path *p, const char *path)
{
    const char *seg[5];
    size_t len[5], n = 0;
    memset(p, 0, sizeof(*p));
    if (strncmp(path, CARDDAV_PREFIX, strlen(CARDDAV_PREFIX)) != 0)
        return ERR_NOT_FOUND;
    const char *s = path + strlen(CARDDAV_PREFIX);
    if (*s == 0 || !strcmp(s, "/")) {
        p->kind = CARDDAV_ROOT;
        return 0;
    }
    if (*s != '/')
        return ERR_NOT_FOUND;
    s++;
    bool slash = false;
    while (*s) {
        const char *e = strchr(s, '/');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        if (l == 0 || n == ARRAY_SIZE(seg))
            return ERR_NOT_FOUND;
        seg[n] = s;
        len[n++] = l;
        slash = e != NULL;
        s = e ? e + 1 : s + l;
    }
    if (n == 0)
        return ERR_NOT_FOUND;
    bool principals = len[0] == 10 && !strncmp(seg[0], "principals", 10);
    bool books = len[0] == 12 && !strncmp(seg[0], "addressbooks", 12);
    if (!principals && !books)
        return ERR_NOT_FOUND;
    if (n >= 2) {
        if (len[1] >= sizeof(p->account))
            return ERR_NOT_FOUND;
        memcpy(p->account, seg[1], len[1]);
        p->account[len[1]] = 0;
        if (!acct_id_valid(p->account))
            return ERR_NOT_FOUND;
    }
    if (principals) {
        if (n > 2)
            return ERR_NOT_FOUND;
        p->kind = n == 1 ? CARDDAV_PRINCIPALS : CARDDAV_PRINCIPAL;
        return 0;
    }
    if (n == 1 || n == 2) {
        p->kind = n == 1 ? CARDDAV_HOMES : CARDDAV_HOME;
        return 0;
    }
    if (!name_ok(seg[2], len[2], CARDDAV_BOOK_MAX))
        return ERR_NOT_FOUND;
    memcpy(p->book, seg[2], len[2]);
    p->book[len[2]] = 0;
    if (n == 3) {
        p->kind = CARDDAV_BOOK;
        return 0;
    }
    if (n > 4 || slash || !name_ok(seg[3], len[3], CARDDAV_RES_MAX))
        return ERR_NOT_FOUND; /* no collections inside a book */
    memcpy(p->res, seg[3], len[3]);
    p->res[len[3]] = 0;
    p->kind = CARDDAV_CARD;
    return 0;
}

int
carddav_href(struct buf *out, const struct carddav_path *p)
{
    int rc = buf_adds(out, CARDDAV_PREFIX "/");
    switch (p->kind) {
    case CARDDAV_ROOT:
        return rc;
    case CARDDAV_PRINCIPALS:
    case CARDDAV_PRINCIPAL:
        if (!rc)
            rc = buf_adds(out, "principals/");
        if (!rc && p->kind == CARDDAV_PRINCIPAL)
            rc = buf_addf(out, "%s/", p->account);
        return rc;
    default:
        break;
    }
    if (!rc)
        rc = buf_adds(out, "addressbooks/");
    if (!rc && p->kind != CARDDAV_HOMES)
        rc = buf_addf(out, "%s/", p->account);
    if (!rc && (p->kind == CARDDAV_BOOK || p->kind == CARDDAV_CARD)) {
        rc = dav_href_escape(out, SLICE_STR(p->book));
        if (!rc)
            rc = buf_adds(out, "/");
    }
    if (!rc && p->kind == CARDDAV_CARD)
        rc = dav_href_escape(out, SLICE_STR(p->res));
    return rc;
}

int
carddav_object_name(struct buf *out, const struct carddav_path *p)
{
    int rc = buf_adds(out, p->book);
    if (!rc)
        rc = buf_adds(out, "/");
    return rc ? rc : buf_adds(out, p->res);
}

/* The context --------------------------------------------------------------- */

int
carddav_new(struct carddav **out, struct region *r, const char *account)
{
    struct carddav *c;
    *out = NULL;
    if (strlen(account) >= STORE_ID_MAX)
        return ERR_INVAL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return ERR_NOMEM;
    c->r = r;
    memcpy(c->account, account, strlen(account) + 1);
    buf_init(&c->data, VCARD_MAX);
    buf_init(&c->sealed, STORE_VAL_MAX);
    buf_init(&c->tmp, 4 * CARDDAV_LABEL_MAX + 64);
    buf_init(&c->cond_href, 4096);
    *out = c;
    return 0;
}

void
carddav_free(struct carddav *c)
{
    if (!c)
        return;
    obj_view_free(c->view);
    if (c->data.data)
        secret_wipe(c->data.data, c->data.cap);
    buf_release(&c->data);
    buf_release(&c->sealed);
    if (c->tmp.data)
        secret_wipe(c->tmp.data, c->tmp.cap);
    buf_release(&c->tmp);
    buf_release(&c->cond_href);
    free(c);
}

const char *
carddav_why(const struct carddav *c)
{
    return c->why[0] ? c->why : "request failed";
}

bool
carddav_cond(const struct carddav *c, const char **ns, const char **name, const char **href)
{
    if (!c->cond_name)
        return false;
    *ns = c->cond_ns;
    *name = c->cond_name;
    *href = c->cond_href.len ? c->cond_href.data : NULL;
    return true;
}

static PRINTF_LIKE(3, 4) int fail(struct carddav *c, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof(c->why), fmt, ap);
    va_end(ap);
    return err;
}

static int
fail_cond(struct carddav *c, int err, const char *ns, const char *name, const char *why)
{
    c->cond_ns = ns;
    c->cond_name = name;
    return fail(c, err, "%s", why);
}

/* The contacts view, opened once per request: consent is checked here. */
static int
view(struct carddav *c, struct obj_view **out)
{
    if (!c->view) {
        int rc = obj_view_open(&c->view, c->r, c->account, CARDDAV_SERVICE);
        if (rc == ERR_CONSENT)
            return fail(c, rc,
                        "Contacts are off for this account, so oikos keeps none of them. Turn "
                        "them on in oikos ('oikos consent on contacts', or the privacy "
                        "dashboard), then sync again");
        if (rc == ERR_SEALED)
            return fail(c, rc, "the region is sealed");
        if (rc)
            return rc;
    }
    *out = c->view;
    return 0;
}

static int
own(struct carddav *c, const struct carddav_path *p)
{
    if (p->kind != CARDDAV_ROOT && p->kind != CARDDAV_PRINCIPALS && p->kind != CARDDAV_HOMES &&
        strcmp(p->account, c->account) != 0)
        return fail(c, ERR_FORBIDDEN, "this is another account's address book");
    return 0;
}

/* Keyed hashes of the index: "<what>\0<book>\0<name>" under the view's key. */
static int
index_key(struct carddav *c, uint8_t out[32], const char *what, const char *book, struct slice name)
{
    struct obj_view *v = NULL;
    int rc = view(c, &v);
    buf_reset(&c->tmp);
    if (!rc)
        rc = buf_add(&c->tmp, what, strlen(what) + 1);
    if (!rc)
        rc = buf_add(&c->tmp, book, strlen(book) + 1);
    if (!rc)
        rc = buf_add(&c->tmp, name.p, name.len);
    if (!rc)
        rc = obj_view_mac(v, out, buf_slice(&c->tmp));
    return rc;
}

/* Books --------------------------------------------------------------------- */

static void
book_default(struct book *b)
{
    memset(b, 0, sizeof(*b));
    snprintf(b->name, sizeof(b->name), "%s", CARDDAV_DEFAULT_BOOK);
    snprintf(b->displayname, sizeof(b->displayname), "Contacts");
}

/* A book's record value before sealing: 1, then three NUL-terminated strings. */
static int
book_encode(struct buf *out, const struct book *b)
{
    buf_reset(out);
    int rc = buf_add(out, "\x01", 1);
    if (!rc)
        rc = buf_add(out, b->name, strlen(b->name) + 1);
    if (!rc)
        rc = buf_add(out, b->displayname, strlen(b->displayname) + 1);
    if (!rc)
        rc = buf_add(out, b->description, strlen(b->description) + 1);
    return rc;
}

static int
book_decode(struct slice s, struct book *b)
{
    char *fields[3] = {b->name, b->displayname, b->description};
    size_t caps[3] = {sizeof(b->name), sizeof(b->displayname), sizeof(b->description)};
    memset(b, 0, sizeof(*b));
    if (s.len < 1 || s.p[0] != 1)
        return ERR_CORRUPT;
    size_t off = 1;
    for (int i = 0; i < 3; i++) {
        const uint8_t *z = off < s.len ? memchr(s.p + off, 0, s.len - off) : NULL;
        if (!z || (size_t)(z - s.p) - off >= caps[i])
            return ERR_CORRUPT;
        memcpy(fields[i], s.p + off, (size_t)(z - s.p) - off);
        off = (size_t)(z - s.p) + 1;
    }
    return 0;
}

static int
book_key(struct carddav *c, const char *name, uint8_t key[32])
{
    return index_key(c, key, "book", "", SLICE_STR(name));
}

/* The book called name: the default one, or a record. ERR_NOT_FOUND. */
static int
book_get(struct carddav *c, const char *name, struct book *b)
{
    struct obj_view *v = NULL;
    uint8_t key[32];
    if (!strcmp(name, CARDDAV_DEFAULT_BOOK)) {
        book_default(b);
        return 0;
    }
    int rc = view(c, &v);
    if (!rc)
        rc = book_key(c, name, key);
    if (!rc)
        rc = store_rec_get(region_store(c->r), c->account, KIND_BOOK, SLICE(key, 32), &c->sealed);
    if (!rc)
        rc = obj_view_unseal(v, &c->tmp, KIND_BOOK, buf_slice(&c->sealed));
    if (!rc)
        rc = book_decode(buf_slice(&c->tmp), b);
    if (!rc && strcmp(b->name, name) != 0)
        rc = ERR_CORRUPT;
    return rc;
}

struct book_list {
    struct carddav *c;
    struct book *books;
    size_t n;
    int err;
};

static int
book_row(void *ctx, struct slice key, struct slice val)
{
    struct book_list *l = ctx;
    struct obj_view *v = l->c->view;
    (void)key;
    if (l->n == BOOKS_MAX)
        return 0;
    /* a record sealed under a key that was destroyed since (the service was
     * turned off and on again) opens no more: it is left behind, unlisted */
    if (obj_view_unseal(v, &l->c->tmp, KIND_BOOK, val) ||
        book_decode(buf_slice(&l->c->tmp), &l->books[l->n]))
        return 0;
    if (strcmp(l->books[l->n].name, CARDDAV_DEFAULT_BOOK) != 0)
        l->n++;
    return 0;
}

/* Every book of the account, the default one first. Caller frees *out. */
static int
book_list(struct carddav *c, struct book **out, size_t *n)
{
    struct obj_view *v = NULL;
    struct book_list l = {.c = c};
    *out = NULL;
    *n = 0;
    int rc = view(c, &v);
    if (rc)
        return rc;
    l.books = calloc(BOOKS_MAX + 1, sizeof(*l.books));
    if (!l.books)
        return ERR_NOMEM;
    book_default(&l.books[0]);
    l.n = 1;
    rc = store_rec_list(region_store(c->r), c->account, KIND_BOOK, book_row, &l);
    if (rc) {
        free(l.books);
        return rc;
    }
    *out = l.books;
    *n = l.n;
    return 0;
}

/* Sync tokens ----------------------------------------------------------------- */

/* "urn:oikos:sync:<key id>-<seq>"; the key id changes with the service key. */
static int
token_kid(struct carddav *c, char kid[9])
{
    uint8_t h[32];
    struct obj_view *v = NULL;
    int rc = view(c, &v);
    if (!rc)
        rc = obj_view_mac(v, h, SLICE_STR("sync-token"));
    if (!rc)
        hex_encode(kid, h, 4);
    return rc;
}

static int
token_make(struct carddav *c, char out[64], int64_t seq)
{
    char kid[9];
    int rc = token_kid(c, kid);
    if (!rc)
        snprintf(out, 64, TOKEN_PREFIX "%s-%" PRId64, kid, seq);
    return rc;
}

/* The current token of the service (the feed's last position). */
static int
token_now(struct carddav *c, char out[64])
{
    struct obj_view *v = NULL;
    int64_t seq = 0;
    int rc = view(c, &v);
    if (!rc)
        rc = obj_view_last(v, &seq);
    return rc ? rc : token_make(c, out, seq);
}

/* Parses a client's token into a feed position; the RFC 6578 error if bad. */
static int
token_parse(struct carddav *c, const char *token, int64_t *since)
{
    char kid[9];
    struct obj_view *v = NULL;
    uint64_t seq = 0;
    int64_t last = 0;
    size_t pl = strlen(TOKEN_PREFIX);
    int rc = token_kid(c, kid);
    if (rc)
        return rc;
    if (strncmp(token, TOKEN_PREFIX, pl) != 0 || strlen(token) < pl + 10 ||
        memcmp(token + pl, kid, 8) != 0 || token[pl + 8] != '-' ||
        parse_u64(token + pl + 9, 0, INT64_MAX, &seq))
        goto bad;
    rc = view(c, &v);
    if (!rc)
        rc = obj_view_last(v, &last);
    if (rc)
        return rc;
    if ((int64_t)seq > last)
        goto bad;
    *since = (int64_t)seq;
    return 0;
bad:
    return fail_cond(c, ERR_FORBIDDEN, DAV_NS, "valid-sync-token",
                     "the sync-token is unknown or no longer valid: sync again from scratch");
}

/* PUT and DELETE ------------------------------------------------------------- */

/* The index changes that ride in the vCard's own transaction. */
struct index_ops {
    const char *account;
    uint8_t rkey[32], ukey[32], old_ukey[32];
    bool res_put, res_delete;
    bool uid_insert, uid_put, old_uid_delete;
    struct slice uid_val; /* the resource name, sealed */
};

static int
index_apply(void *ctx, struct store_batch *b)
{
    struct index_ops *o = ctx;
    int rc = 0;
    if (!rc && o->old_uid_delete)
        rc = store_batch_rec_delete(b, o->account, KIND_UID, SLICE(o->old_ukey, 32));
    if (!rc && o->uid_insert)
        rc = store_batch_rec_insert(b, o->account, KIND_UID, SLICE(o->ukey, 32), o->uid_val);
    if (!rc && o->uid_put)
        rc = store_batch_rec_put(b, o->account, KIND_UID, SLICE(o->ukey, 32), o->uid_val);
    if (!rc && o->res_put)
        rc = store_batch_rec_put(b, o->account, KIND_RES, SLICE(o->rkey, 32), SLICE(o->ukey, 32));
    if (!rc && o->res_delete)
        rc = store_batch_rec_delete(b, o->account, KIND_RES, SLICE(o->rkey, 32));
    return rc;
}

/* The resource a UID record names (unsealed into out). */
static int
uid_owner(struct carddav *c, const uint8_t ukey[32], struct buf *out)
{
    struct obj_view *v = NULL;
    int rc = view(c, &v);
    if (!rc)
        rc = store_rec_get(region_store(c->r), c->account, KIND_UID, SLICE(ukey, 32), &c->sealed);
    if (!rc)
        rc = obj_view_unseal(v, out, KIND_UID, buf_slice(&c->sealed));
    return rc;
}

/* The UID hash recorded for a resource of a book: ERR_NOT_FOUND if none. */
static int
res_uid(struct carddav *c, const uint8_t rkey[32], uint8_t ukey[32])
{
    int rc = store_rec_get(region_store(c->r), c->account, KIND_RES, SLICE(rkey, 32), &c->sealed);
    if (!rc && c->sealed.len != 32)
        rc = ERR_CORRUPT;
    if (!rc)
        memcpy(ukey, c->sealed.data, 32);
    return rc;
}

/*
 * Is the resource other of book still the holder of the UID hash ukey? It
 * must exist and its own index record must point back at ukey; otherwise
 * the UID record is stale (the card was changed or deleted through the
 * REST API, or a crash came between two requests) and may be taken over.
 */
static int
uid_live(struct carddav *c, const char *book, struct slice other, const uint8_t ukey[32],
         bool *live)
{
    struct obj_view *v = NULL;
    struct obj_info info;
    uint8_t okey[32], back[32];
    char name[CARDDAV_BOOK_MAX + CARDDAV_RES_MAX + 2];
    *live = false;
    if (other.len > CARDDAV_RES_MAX)
        return 0;
    int n = snprintf(name, sizeof(name), "%s/%.*s", book, (int)other.len, (const char *)other.p);
    int rc = view(c, &v);
    if (!rc)
        rc = obj_view_stat(v, name, (size_t)n, &info);
    if (rc == ERR_NOT_FOUND)
        return 0;
    if (!rc)
        rc = index_key(c, okey, "res", book, other);
    if (!rc)
        rc = res_uid(c, okey, back);
    if (rc == ERR_NOT_FOUND)
        return 0;
    if (!rc)
        *live = !memcmp(back, ukey, 32);
    return rc;
}

int
carddav_put(struct carddav *c, const struct carddav_path *p, struct slice vcard,
            const struct dav_cond *cond, struct obj_info *info)
{
    struct vcard_info *vi = NULL;
    struct obj_view *v = NULL;
    struct obj_info cur;
    struct index_ops ops;
    struct book bk;
    struct buf name, owner, sealed_res;
    char vwhy[VCARD_WHY_MAX];
    bool exists = false;
    int rc;

    memset(&ops, 0, sizeof(ops));
    ops.account = c->account;
    buf_init(&name, OBJ_NAME_MAX);
    buf_init(&owner, CARDDAV_RES_MAX + 1);
    buf_init(&sealed_res, STORE_VAL_MAX);
    if (p->kind != CARDDAV_CARD) {
        rc = fail(c, ERR_METHOD, "only vCards can be PUT, inside an address book");
        goto out;
    }
    rc = own(c, p);
    if (rc)
        goto out;
    rc = ERR_NOMEM;
    vi = malloc(sizeof(*vi));
    if (!vi)
        goto out;
    rc = vcard_check(vcard, vi, vwhy);
    if (rc == ERR_TOO_LARGE) {
        rc = fail_cond(c, rc, DAV_NS_CARD, "max-resource-size", vwhy);
        goto out;
    }
    if (rc) {
        c->cond_ns = DAV_NS_CARD;
        c->cond_name = "valid-address-data";
        rc = fail(c, ERR_INVAL, "not a vCard 2.1, 3.0 or 4.0: %s", vwhy);
        goto out;
    }
    rc = view(c, &v);
    if (rc)
        goto out;
    rc = book_get(c, p->book, &bk);
    if (rc == ERR_NOT_FOUND)
        rc = fail(c, rc, "there is no address book '%s': make it with MKCOL first", p->book);
    if (rc)
        goto out;
    rc = carddav_object_name(&name, p);
    if (rc)
        goto out;
    rc = obj_view_stat(v, name.data, name.len, &cur);
    if (rc == ERR_NOT_FOUND)
        rc = 0;
    else if (!rc)
        exists = true;
    if (rc)
        goto out;
    rc = dav_cond_check(cond, exists, cur.etag);
    if (rc) {
        rc = fail(c, rc,
                  exists ? "the vCard changed since you read it (If-Match / If-None-Match)"
                         : "the vCard does not exist (If-Match)");
        goto out;
    }

    /* the index: what this resource held, and who holds the new UID */
    rc = index_key(c, ops.rkey, "res", p->book, SLICE_STR(p->res));
    bool had_uid = false;
    if (!rc) {
        rc = res_uid(c, ops.rkey, ops.old_ukey);
        had_uid = rc == 0;
        if (rc == ERR_NOT_FOUND)
            rc = 0;
    }
    if (!rc && vi->has_uid) {
        rc = index_key(c, ops.ukey, "uid", p->book, SLICE(vi->uid, vi->uid_len));
        if (!rc)
            rc = uid_owner(c, ops.ukey, &owner);
        if (rc == ERR_NOT_FOUND) {
            ops.uid_insert = true;
            rc = 0;
        } else if (rc == ERR_CRYPTO || rc == ERR_CORRUPT) {
            ops.uid_put = true; /* sealed under a key that is gone: stale */
            rc = 0;
        } else if (!rc && (owner.len != strlen(p->res) || memcmp(owner.data, p->res, owner.len))) {
            bool live = false;
            rc = uid_live(c, p->book, buf_slice(&owner), ops.ukey, &live);
            if (!rc && live) {
                struct carddav_path other = *p;
                memcpy(other.res, owner.data, owner.len);
                other.res[owner.len] = 0;
                buf_reset(&c->cond_href);
                rc = carddav_href(&c->cond_href, &other);
                if (!rc)
                    rc = fail_cond(c, ERR_CONFLICT, DAV_NS_CARD, "no-uid-conflict",
                                   "another vCard of this address book has the same UID");
                goto out;
            }
            ops.uid_put = true;
        } else if (!rc) {
            ops.uid_put = true; /* this resource already holds it */
        }
        if (!rc)
            rc = obj_view_seal(v, &sealed_res, KIND_UID, SLICE_STR(p->res));
        ops.uid_val = buf_slice(&sealed_res);
        ops.res_put = true;
    } else if (!rc && had_uid) {
        ops.res_delete = true;
    }
    if (!rc && had_uid && (!vi->has_uid || memcmp(ops.old_ukey, ops.ukey, 32) != 0)) {
        /* the old UID goes, if it is still this resource's */
        rc = uid_owner(c, ops.old_ukey, &owner);
        if (!rc && owner.len == strlen(p->res) && !memcmp(owner.data, p->res, owner.len))
            ops.old_uid_delete = true;
        if (rc == ERR_NOT_FOUND || rc == ERR_CRYPTO || rc == ERR_CORRUPT)
            rc = 0;
    }
    if (rc)
        goto out;

    rc = obj_view_put(v, name.data, name.len, vcard, index_apply, &ops, info);
    if (rc == ERR_EXISTS) /* another request took the UID meanwhile */
        rc = fail_cond(c, ERR_CONFLICT, DAV_NS_CARD, "no-uid-conflict",
                       "another vCard of this address book has the same UID");
out:
    free(vi);
    buf_release(&name);
    buf_release(&owner);
    buf_release(&sealed_res);
    return rc;
}

/* Index records of the cards of a delete, removed in the same transaction. */
struct drop_ops {
    const char *account;
    uint8_t (*keys)[32]; /* pairs: davres key, davuid key (all zero: none) */
    size_t n;
};

static int
drop_apply(void *ctx, struct store_batch *b)
{
    static const uint8_t zero[32];
    struct drop_ops *o = ctx;
    int rc = 0;
    for (size_t i = 0; !rc && i < o->n; i++) {
        if (memcmp(o->keys[2 * i], zero, 32))
            rc = store_batch_rec_delete(b, o->account, KIND_RES, SLICE(o->keys[2 * i], 32));
        if (!rc && memcmp(o->keys[2 * i + 1], zero, 32))
            rc = store_batch_rec_delete(b, o->account, KIND_UID, SLICE(o->keys[2 * i + 1], 32));
    }
    return rc;
}

/*
 * Fills keys[0..1] with the index records of resource res of book: its
 * davres key, and its davuid key if the UID record is its own.
 */
static int
drop_keys(struct carddav *c, const char *book, struct slice res, uint8_t keys[2][32])
{
    struct buf owner;
    memset(keys, 0, 64);
    int rc = index_key(c, keys[0], "res", book, res);
    if (!rc)
        rc = res_uid(c, keys[0], keys[1]);
    if (rc == ERR_NOT_FOUND) {
        memset(keys, 0, 64);
        return 0;
    }
    if (rc)
        return rc;
    buf_init(&owner, CARDDAV_RES_MAX + 1);
    rc = uid_owner(c, keys[1], &owner);
    if (rc || owner.len != res.len || memcmp(owner.data, res.p, res.len))
        memset(keys[1], 0, 32);
    buf_release(&owner);
    return rc == ERR_CRYPTO || rc == ERR_CORRUPT || rc == ERR_NOT_FOUND ? 0 : rc;
}

static int
delete_card(struct carddav *c, const struct carddav_path *p, const struct dav_cond *cond)
{
    struct obj_view *v = NULL;
    struct obj_info cur;
    struct buf name;
    uint8_t keys[2][32];
    struct drop_ops ops = {.account = c->account, .keys = keys, .n = 1};
    buf_init(&name, OBJ_NAME_MAX);
    int rc = view(c, &v);
    if (!rc)
        rc = carddav_object_name(&name, p);
    if (!rc)
        rc = obj_view_stat(v, name.data, name.len, &cur);
    if (rc == ERR_NOT_FOUND)
        rc = fail(c, rc, "no such vCard");
    if (!rc && dav_cond_check(cond, true, cur.etag))
        rc = fail(c, ERR_PRECONDITION, "the vCard changed since you read it (If-Match)");
    if (!rc)
        rc = drop_keys(c, p->book, SLICE_STR(p->res), keys);
    if (!rc) {
        struct slice one = buf_slice(&name);
        rc = obj_view_delete(v, &one, 1, drop_apply, &ops);
        if (rc == ERR_NOT_FOUND)
            rc = fail(c, rc, "no such vCard");
    }
    buf_release(&name);
    return rc;
}

/* The names of a book's live objects, NUL-separated, for a book's delete. */
struct collect {
    struct buf *names;
    const char *prefix;
    size_t plen, n;
};

static int
collect_row(void *ctx, const struct obj_item *it)
{
    struct collect *k = ctx;
    if (it->deleted || it->namelen <= k->plen || memcmp(it->name, k->prefix, k->plen) != 0)
        return 0;
    k->n++;
    int rc = buf_add(k->names, it->name, it->namelen);
    return rc ? rc : buf_add(k->names, "", 1);
}

static int
delete_book(struct carddav *c, const struct carddav_path *p, const struct dav_cond *cond)
{
    struct obj_view *v = NULL;
    struct book bk;
    struct buf names, prefix;
    struct slice *batch = NULL;
    uint8_t(*keys)[32] = NULL;
    uint8_t bkey[32];
    struct store_batch *b = NULL;
    int64_t since = 0, last = 0;
    bool more = true;
    int rc;

    if (!strcmp(p->book, CARDDAV_DEFAULT_BOOK))
        return fail(c, ERR_FORBIDDEN,
                    "the default address book cannot be deleted; delete its vCards instead");
    buf_init(&names, (size_t)1 << 30);
    buf_init(&prefix, CARDDAV_BOOK_MAX + 2);
    rc = view(c, &v);
    if (!rc)
        rc = book_get(c, p->book, &bk);
    if (rc == ERR_NOT_FOUND)
        rc = fail(c, rc, "no such address book");
    if (!rc && dav_cond_check(cond, true, ""))
        rc = fail(c, ERR_PRECONDITION, "an address book has no entity tag");
    if (!rc)
        rc = buf_addf(&prefix, "%s/", p->book);
    struct collect k = {.names = &names, .prefix = prefix.data, .plen = prefix.len};
    while (!rc && more) {
        rc = obj_view_feed(v, since, 4096, false, collect_row, &k, &last, &more);
        since = last;
    }
    if (rc)
        goto out;
    rc = ERR_NOMEM;
    batch = calloc(DELETE_BATCH, sizeof(*batch));
    keys = calloc(2 * DELETE_BATCH, sizeof(*keys));
    if (!batch || !keys)
        goto out;
    rc = 0;
    size_t off = 0;
    while (!rc && off < names.len) {
        size_t n = 0;
        while (n < DELETE_BATCH && off < names.len) {
            size_t l = strlen(names.data + off);
            batch[n] = SLICE(names.data + off, l);
            rc = drop_keys(c, p->book, SLICE(names.data + off + prefix.len, l - prefix.len),
                           &keys[2 * n]);
            if (rc)
                break;
            n++;
            off += l + 1;
        }
        struct drop_ops ops = {.account = c->account, .keys = keys, .n = n};
        if (!rc)
            rc = obj_view_delete(v, batch, n, drop_apply, &ops);
        for (size_t i = 0; rc == ERR_NOT_FOUND && i < n; i++) {
            /* one was deleted meanwhile: one by one, whatever is left */
            struct drop_ops one = {.account = c->account, .keys = &keys[2 * i], .n = 1};
            int r1 = obj_view_delete(v, &batch[i], 1, drop_apply, &one);
            if (r1 && r1 != ERR_NOT_FOUND)
                rc = r1;
            else if (i + 1 == n)
                rc = 0;
        }
    }
    if (!rc)
        rc = book_key(c, p->book, bkey);
    if (!rc)
        rc = store_batch_new(&b);
    if (!rc)
        rc = store_batch_rec_delete(b, c->account, KIND_BOOK, SLICE(bkey, 32));
    if (!rc)
        rc = trail_add(
            c->r, b,
            &(struct trail){AUDIT_USER, "data.delete", c->account, CARDDAV_SERVICE, NULL, 0});
    if (!rc)
        rc = trail_commit(c->r, b, true);
out:
    store_batch_free(b);
    free(batch);
    free(keys);
    if (names.data)
        secret_wipe(names.data, names.len);
    buf_release(&names);
    buf_release(&prefix);
    return rc;
}

int
carddav_delete(struct carddav *c, const struct carddav_path *p, const struct dav_cond *cond)
{
    int rc = own(c, p);
    if (rc)
        return rc;
    if (p->kind == CARDDAV_CARD)
        return delete_card(c, p, cond);
    if (p->kind == CARDDAV_BOOK)
        return delete_book(c, p, cond);
    return fail(c, ERR_METHOD, "only vCards and address books can be deleted");
}

int
carddav_mkcol(struct carddav *c, const struct carddav_path *p, const struct dav_request *rq)
{
    struct obj_view *v = NULL;
    struct book bk, *all = NULL;
    struct store_batch *b = NULL;
    struct buf plain;
    uint8_t key[32];
    size_t n = 0;
    int rc = own(c, p);
    if (rc)
        return rc;
    if (p->kind != CARDDAV_BOOK)
        return fail(c, p->kind == CARDDAV_CARD ? ERR_CONFLICT : ERR_METHOD,
                    "address books are made inside the address-book home");
    if (rq && rq->kind != DAV_BODY_NONE && rq->kind != DAV_BODY_MKCOL)
        return fail(c, ERR_INVAL, "the MKCOL body must be a DAV:mkcol element");
    if (rq && rq->mk_other_type && !rq->mk_addressbook)
        return fail_cond(c, ERR_FORBIDDEN, DAV_NS, "valid-resourcetype",
                         "only address books can be made here");
    memset(&bk, 0, sizeof(bk));
    snprintf(bk.name, sizeof(bk.name), "%s", p->book);
    const char *dn = rq && rq->mk_displayname ? rq->mk_displayname : p->book;
    const char *desc = rq && rq->mk_description ? rq->mk_description : "";
    if (strlen(dn) > CARDDAV_LABEL_MAX || strlen(desc) > CARDDAV_LABEL_MAX)
        return fail(c, ERR_INVAL, "displayname and description may have at most %d bytes",
                    CARDDAV_LABEL_MAX);
    snprintf(bk.displayname, sizeof(bk.displayname), "%s", dn);
    snprintf(bk.description, sizeof(bk.description), "%s", desc);
    buf_init(&plain, 4 * CARDDAV_LABEL_MAX);
    rc = view(c, &v);
    if (!rc) {
        rc = book_get(c, p->book, &bk);
        if (!rc)
            rc = fail(c, ERR_EXISTS, "that address book exists already");
        else if (rc == ERR_NOT_FOUND)
            rc = 0;
        snprintf(bk.displayname, sizeof(bk.displayname), "%s", dn);
        snprintf(bk.description, sizeof(bk.description), "%s", desc);
        snprintf(bk.name, sizeof(bk.name), "%s", p->book);
    }
    if (!rc)
        rc = book_list(c, &all, &n);
    if (!rc && n >= BOOKS_MAX)
        rc = fail(c, ERR_FORBIDDEN, "an account may have at most %d address books", BOOKS_MAX);
    if (!rc)
        rc = book_encode(&plain, &bk);
    if (!rc)
        rc = obj_view_seal(v, &c->sealed, KIND_BOOK, buf_slice(&plain));
    if (!rc)
        rc = book_key(c, p->book, key);
    if (!rc)
        rc = store_batch_new(&b);
    if (!rc)
        rc =
            store_batch_rec_insert(b, c->account, KIND_BOOK, SLICE(key, 32), buf_slice(&c->sealed));
    if (!rc)
        rc = trail_add(
            c->r, b,
            &(struct trail){AUDIT_USER, "data.write", c->account, CARDDAV_SERVICE, NULL, 0});
    if (!rc)
        rc = trail_commit(c->r, b, true);
    if (rc == ERR_EXISTS)
        rc = fail(c, rc, "that address book exists already");
    store_batch_free(b);
    free(all);
    buf_release(&plain);
    return rc;
}

/* Multistatus answers ------------------------------------------------------------ */

enum ms_kind { MS_PROPFIND, MS_MULTIGET, MS_QUERY, MS_SYNC };
enum ms_phase { PH_START, PH_SELF, PH_MEMBERS, PH_END, PH_DONE };

/* What is known of the resource whose properties are being written. */
struct res {
    enum carddav_kind kind;
    const struct book *book; /* CARDDAV_BOOK */
    const char *etag;        /* CARDDAV_CARD */
    uint64_t size;
    const struct buf *data; /* the card's bytes, NULL if not read */
};

struct carddav_ms {
    struct carddav *c;
    struct dav_request *rq;
    struct carddav_path path;
    enum ms_kind kind;
    int depth;
    enum ms_phase phase;
    struct dav_props ps;
    struct buf href, name, text, scratch;
    bool want_data;
    struct book self_book;
    struct book *books;
    size_t nbooks, ibook;
    char token[64]; /* the book's current token (propfind), "" until known */
    bool usage_known;
    uint64_t usage;
    /* walking the feed */
    int64_t since;
    bool initial;     /* sync: an initial sync lists no deletions */
    uint64_t emitted; /* responses of members */
    bool limit_hit, truncated;
    int64_t token_seq; /* sync: the position the final token names */
    size_t prefix_len; /* of "<book>/" in name */
    struct buf *out;
    size_t page_start;
    /* multiget */
    size_t ihref;
};

static const enum dav_prop_id allprops[] = {DAV_P_RESOURCETYPE, DAV_P_DISPLAYNAME, DAV_P_GETETAG,
                                            DAV_P_GETCONTENTTYPE, DAV_P_GETCONTENTLENGTH};

static const char *
privileges(enum carddav_kind k)
{
    if (k == CARDDAV_HOME || k == CARDDAV_BOOK || k == CARDDAV_CARD)
        return "<d:privilege><d:read/></d:privilege><d:privilege><d:write/></d:privilege>"
               "<d:privilege><d:write-content/></d:privilege><d:privilege><d:write-properties/>"
               "</d:privilege><d:privilege><d:bind/></d:privilege><d:privilege><d:unbind/>"
               "</d:privilege><d:privilege><d:read-current-user-privilege-set/></d:privilege>";
    return "<d:privilege><d:read/></d:privilege><d:privilege><d:read-current-user-privilege-set/>"
           "</d:privilege>";
}

/* Writes "<d:href>...</d:href>" of the path of kind k of this account. */
static int
href_of(struct carddav_ms *m, struct buf *out, enum carddav_kind k)
{
    struct carddav_path p;
    memset(&p, 0, sizeof(p));
    p.kind = k;
    memcpy(p.account, m->c->account, sizeof(p.account));
    int rc = buf_adds(out, "<d:href>");
    if (!rc)
        rc = carddav_href(out, &p);
    return rc ? rc : buf_adds(out, "</d:href>");
}

/* Writes one property of r into the response: ERR_NOT_FOUND if it has none. */
static int
prop_render(struct carddav_ms *m, const struct res *r, const struct dav_prop *p)
{
    struct dav_props *ps = &m->ps;
    const char *x = NULL;
    char num[32];
    int rc;
    bool coll = r->kind != CARDDAV_CARD;
    switch (p->id) {
    case DAV_P_RESOURCETYPE:
        x = r->kind == CARDDAV_BOOK        ? "<d:collection/><card:addressbook/>"
            : r->kind == CARDDAV_PRINCIPAL ? "<d:collection/><d:principal/>"
            : coll                         ? "<d:collection/>"
                                           : "";
        return dav_prop_xml(ps, p, x);
    case DAV_P_DISPLAYNAME:
        if (r->kind == CARDDAV_BOOK)
            return dav_prop_text(ps, p, r->book->displayname);
        if (r->kind == CARDDAV_PRINCIPAL)
            return dav_prop_text(ps, p, m->c->account);
        if (r->kind == CARDDAV_HOME)
            return dav_prop_text(ps, p, "Address books");
        if (r->kind == CARDDAV_ROOT)
            return dav_prop_text(ps, p, "oikos");
        return ERR_NOT_FOUND;
    case DAV_P_GETETAG:
        if (coll)
            return ERR_NOT_FOUND;
        snprintf(num, sizeof(num), "\"%s\"", r->etag);
        return dav_prop_text(ps, p, num);
    case DAV_P_GETCONTENTTYPE:
        return coll ? ERR_NOT_FOUND : dav_prop_text(ps, p, CONTENT_TYPE);
    case DAV_P_GETCONTENTLENGTH:
        if (coll)
            return ERR_NOT_FOUND;
        snprintf(num, sizeof(num), "%" PRIu64, r->size);
        return dav_prop_text(ps, p, num);
    case DAV_P_SYNC_TOKEN:
    case DAV_P_GETCTAG:
        if (r->kind != CARDDAV_BOOK)
            return ERR_NOT_FOUND;
        if (!m->token[0]) {
            rc = token_now(m->c, m->token);
            if (rc)
                return rc;
        }
        return dav_prop_text(ps, p, m->token);
    case DAV_P_SUPPORTED_REPORT_SET:
        if (r->kind != CARDDAV_BOOK)
            return ERR_NOT_FOUND;
        return dav_prop_xml(ps, p,
                            "<d:supported-report><d:report><card:addressbook-multiget/></d:report>"
                            "</d:supported-report><d:supported-report><d:report>"
                            "<card:addressbook-query/></d:report></d:supported-report>"
                            "<d:supported-report><d:report><d:sync-collection/></d:report>"
                            "</d:supported-report>");
    case DAV_P_QUOTA_USED:
        if (r->kind != CARDDAV_BOOK && r->kind != CARDDAV_HOME)
            return ERR_NOT_FOUND;
        if (!m->usage_known) {
            uint64_t objects = 0;
            rc = store_usage(region_store(m->c->r), m->c->account, CARDDAV_SERVICE, &objects,
                             &m->usage);
            if (rc)
                return rc;
            m->usage_known = true;
        }
        snprintf(num, sizeof(num), "%" PRIu64, m->usage);
        return dav_prop_text(ps, p, num);
    case DAV_P_QUOTA_AVAILABLE:
        return ERR_NOT_FOUND; /* no quota: RFC 4331 says leave it out */
    case DAV_P_CURRENT_USER_PRINCIPAL:
    case DAV_P_PRINCIPAL_URL:
    case DAV_P_OWNER:
        if (p->id == DAV_P_PRINCIPAL_URL && r->kind != CARDDAV_PRINCIPAL)
            return ERR_NOT_FOUND;
        if (p->id == DAV_P_OWNER &&
            (r->kind == CARDDAV_ROOT || r->kind == CARDDAV_PRINCIPALS || r->kind == CARDDAV_HOMES))
            return ERR_NOT_FOUND;
        rc = dav_prop_open(ps, p);
        if (!rc)
            rc = href_of(m, &ps->ok, CARDDAV_PRINCIPAL);
        return rc ? rc : dav_prop_close(ps, p);
    case DAV_P_PRINCIPAL_COLLECTION_SET:
        rc = dav_prop_open(ps, p);
        if (!rc)
            rc = href_of(m, &ps->ok, CARDDAV_PRINCIPALS);
        return rc ? rc : dav_prop_close(ps, p);
    case DAV_P_ADDRESSBOOK_HOME_SET:
        if (r->kind != CARDDAV_PRINCIPAL && r->kind != CARDDAV_ROOT && r->kind != CARDDAV_HOME)
            return ERR_NOT_FOUND;
        rc = dav_prop_open(ps, p);
        if (!rc)
            rc = href_of(m, &ps->ok, CARDDAV_HOME);
        return rc ? rc : dav_prop_close(ps, p);
    case DAV_P_CURRENT_USER_PRIVILEGE_SET:
        return dav_prop_xml(ps, p, privileges(r->kind));
    case DAV_P_ADDRESSBOOK_DESCRIPTION:
        if (r->kind != CARDDAV_BOOK || !r->book->description[0])
            return ERR_NOT_FOUND;
        return dav_prop_text(ps, p, r->book->description);
    case DAV_P_SUPPORTED_ADDRESS_DATA:
        if (r->kind != CARDDAV_BOOK)
            return ERR_NOT_FOUND;
        return dav_prop_xml(
            ps, p,
            "<card:address-data-type content-type=\"text/vcard\" version=\"3.0\"/>"
            "<card:address-data-type content-type=\"text/vcard\" version=\"4.0\"/>");
    case DAV_P_MAX_RESOURCE_SIZE:
        if (r->kind != CARDDAV_BOOK)
            return ERR_NOT_FOUND;
        snprintf(num, sizeof(num), "%u", VCARD_MAX);
        return dav_prop_text(ps, p, num);
    case DAV_P_ADDRESS_DATA:
        /* cards that are not UTF-8 (a legacy CHARSET) cannot travel in XML:
         * they are left out here and served byte-exact by GET */
        if (coll || !r->data || !dav_xml_text_ok(buf_slice(r->data)))
            return ERR_NOT_FOUND;
        rc = dav_prop_open(ps, p);
        if (!rc)
            rc = dav_xml_escape(&ps->ok, buf_slice(r->data));
        return rc ? rc : dav_prop_close(ps, p);
    default:
        return ERR_NOT_FOUND;
    }
}

static bool
prop_applies(struct carddav_ms *m, const struct res *r, enum dav_prop_id id)
{
    /* a propname answer lists what prop_render would give, without values */
    bool coll = r->kind != CARDDAV_CARD;
    switch (id) {
    case DAV_P_GETETAG:
    case DAV_P_GETCONTENTTYPE:
    case DAV_P_GETCONTENTLENGTH:
    case DAV_P_ADDRESS_DATA:
        return !coll;
    case DAV_P_SYNC_TOKEN:
    case DAV_P_GETCTAG:
    case DAV_P_SUPPORTED_REPORT_SET:
    case DAV_P_SUPPORTED_ADDRESS_DATA:
    case DAV_P_MAX_RESOURCE_SIZE:
        return r->kind == CARDDAV_BOOK;
    case DAV_P_QUOTA_USED:
        return r->kind == CARDDAV_BOOK || r->kind == CARDDAV_HOME;
    case DAV_P_DISPLAYNAME:
        return coll && r->kind != CARDDAV_PRINCIPALS && r->kind != CARDDAV_HOMES;
    case DAV_P_PRINCIPAL_URL:
        return r->kind == CARDDAV_PRINCIPAL;
    case DAV_P_ADDRESSBOOK_HOME_SET:
        return r->kind == CARDDAV_PRINCIPAL || r->kind == CARDDAV_ROOT || r->kind == CARDDAV_HOME;
    case DAV_P_ADDRESSBOOK_DESCRIPTION:
        return r->kind == CARDDAV_BOOK && r->book->description[0];
    case DAV_P_QUOTA_AVAILABLE:
        return false;
    default:
        (void)m;
        return true;
    }
}

/* Writes one DAV:response for the resource r at href (escaped). */
static int
response(struct carddav_ms *m, const struct res *r, const char *href, struct buf *out)
{
    struct dav_request *rq = m->rq;
    int rc = 0;
    dav_props_reset(&m->ps);
    if (rq->mode == DAV_PROPS_NAMES) {
        for (int id = 1; !rc && id < DAV_P_COUNT_; id++)
            if (prop_applies(m, r, (enum dav_prop_id)id))
                rc = dav_prop_name(&m->ps, dav_prop_known((enum dav_prop_id)id));
    } else {
        if (rq->mode == DAV_PROPS_ALL) {
            for (size_t i = 0; !rc && i < ARRAY_SIZE(allprops); i++) {
                rc = prop_render(m, r, dav_prop_known(allprops[i]));
                if (rc == ERR_NOT_FOUND)
                    rc = 0; /* allprop lists what there is */
            }
        }
        for (size_t i = 0; !rc && i < rq->nprops; i++) {
            rc = prop_render(m, r, &rq->props[i]);
            if (rc == ERR_NOT_FOUND)
                rc = dav_prop_missing(&m->ps, &rq->props[i]);
        }
    }
    return rc ? rc : dav_ms_props(out, href, &m->ps);
}

/* The escaped href of the card "<book>/<res>" of this account into m->href. */
static int
card_href(struct carddav_ms *m, struct slice book, struct slice res)
{
    buf_reset(&m->href);
    int rc = buf_addf(&m->href, CARDDAV_PREFIX "/addressbooks/%s/", m->c->account);
    if (!rc)
        rc = dav_href_escape(&m->href, book);
    if (!rc)
        rc = buf_adds(&m->href, "/");
    return rc ? rc : dav_href_escape(&m->href, res);
}

/* Query filters ---------------------------------------------------------------- */

static uint32_t
fold_cp(uint32_t c)
{
    if (c < 0x80)
        return c >= 'A' && c <= 'Z' ? c + 32 : c;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7)
        return c + 32;
    if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177))
        return c | 1;
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
        return (c & 1) ? c + 1 : c;
    if (c == 0x178)
        return 0xFF;
    if ((c >= 0x391 && c <= 0x3A9 && c != 0x3A2))
        return c + 32;
    if (c == 0x3C2)
        return 0x3C3;
    if (c >= 0x410 && c <= 0x42F)
        return c + 32;
    if (c >= 0x400 && c <= 0x40F)
        return c + 80;
    return c;
}

/* Appends s folded for collation coll (i;unicode-casemap: simple case folding
 * of Latin, Greek and Cyrillic; i;ascii-casemap: ASCII only; i;octet: none). */
static int
fold(struct buf *out, struct slice s, enum dav_collation coll)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < s.len;) {
        uint8_t c = s.p[i];
        if (coll == DAV_COLL_OCTET || (c >= 0x80 && coll == DAV_COLL_ASCII)) {
            rc = buf_add(out, &c, 1);
            i++;
            continue;
        }
        if (c < 0x80) {
            uint8_t f = (uint8_t)fold_cp(c);
            rc = buf_add(out, &f, 1);
            i++;
            continue;
        }
        size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 0;
        if (!len || i + len > s.len || (s.p[i + 1] & 0xC0) != 0x80 ||
            (len == 3 && (s.p[i + 2] & 0xC0) != 0x80)) {
            rc = buf_add(out, &c, 1); /* 4-byte sequences and stray bytes: as they are */
            i++;
            continue;
        }
        uint32_t cp =
            len == 2 ? ((c & 0x1Fu) << 6) | (s.p[i + 1] & 0x3Fu)
                     : ((c & 0x0Fu) << 12) | ((s.p[i + 1] & 0x3Fu) << 6) | (s.p[i + 2] & 0x3Fu);
        uint32_t f = fold_cp(cp);
        uint8_t enc[3];
        size_t n;
        if (f < 0x80) {
            enc[0] = (uint8_t)f;
            n = 1;
        } else if (f < 0x800) {
            enc[0] = (uint8_t)(0xC0 | (f >> 6));
            enc[1] = (uint8_t)(0x80 | (f & 0x3F));
            n = 2;
        } else {
            enc[0] = (uint8_t)(0xE0 | (f >> 12));
            enc[1] = (uint8_t)(0x80 | ((f >> 6) & 0x3F));
            enc[2] = (uint8_t)(0x80 | (f & 0x3F));
            n = 3;
        }
        rc = buf_add(out, enc, n);
        i += len;
    }
    return rc;
}

struct eval {
    struct carddav_ms *m;
    const struct dav_prop_filter *f;
    size_t nf;
    bool defined[DAV_FILTER_PROPS_MAX];
    bool matched[DAV_FILTER_PROPS_MAX];
    /* param-filter state while one property is checked */
    const struct dav_param_filter *pa;
    bool pa_seen, pa_match;
};

static bool
text_match(struct carddav_ms *m, const struct dav_text_match *tm, struct slice value)
{
    struct buf *a = &m->scratch, *b = &m->text;
    buf_reset(a);
    buf_reset(b);
    if (fold(a, value, tm->coll) || fold(b, SLICE(tm->text, tm->len), tm->coll))
        return false;
    bool hit = false;
    size_t n = a->len, k = b->len;
    const char *h = a->data ? a->data : "", *nd = b->data ? b->data : "";
    switch (tm->match) {
    case DAV_MATCH_EQUALS:
        hit = n == k && !memcmp(h, nd, k);
        break;
    case DAV_MATCH_STARTS:
        hit = n >= k && !memcmp(h, nd, k);
        break;
    case DAV_MATCH_ENDS:
        hit = n >= k && !memcmp(h + n - k, nd, k);
        break;
    case DAV_MATCH_CONTAINS:
        hit = k == 0 || (n >= k && memmem(h, n, nd, k) != NULL);
        break;
    }
    return hit != tm->negate;
}

static int
on_param(void *ctx, struct slice name, struct slice value)
{
    struct eval *e = ctx;
    if (!vcard_word_eq(name, e->pa->name))
        return 0;
    e->pa_seen = true;
    if (e->pa->has_match && text_match(e->m, &e->pa->match, value))
        e->pa_match = true;
    return 0;
}

static int
on_prop(void *ctx, const struct vcard_prop *vp)
{
    struct eval *e = ctx;
    struct buf value;
    bool have_value = false;
    int rc = 0;
    buf_init(&value, VCARD_MAX);
    for (size_t i = 0; !rc && i < e->nf; i++) {
        const struct dav_prop_filter *f = &e->f[i];
        if (!vcard_word_eq(vp->name, f->name))
            continue;
        e->defined[i] = true;
        if (f->not_defined || e->matched[i])
            continue;
        size_t tests = f->nmatches + f->nparams;
        size_t passed = 0;
        for (size_t j = 0; !rc && j < f->nmatches; j++) {
            if (!have_value) {
                rc = vcard_value_text(vp, &value);
                have_value = true;
            }
            if (!rc && text_match(e->m, &f->matches[j], buf_slice(&value)))
                passed++;
        }
        for (size_t j = 0; !rc && j < f->nparams; j++) {
            e->pa = &f->params[j];
            e->pa_seen = e->pa_match = false;
            rc = vcard_each_param(vp, on_param, e);
            bool ok = e->pa->not_defined ? !e->pa_seen
                      : e->pa->has_match ? e->pa_match
                                         : e->pa_seen;
            if (ok)
                passed++;
        }
        if (tests == 0 || (f->allof ? passed == tests : passed > 0))
            e->matched[i] = true;
    }
    buf_release(&value);
    return rc;
}

/* Does the card data pass the query's filter? */
static int
filter_pass(struct carddav_ms *m, struct slice data, bool *pass)
{
    struct dav_request *rq = m->rq;
    struct eval e;
    struct buf scratch;
    *pass = true;
    if (rq->nfilters == 0)
        return 0;
    memset(&e, 0, sizeof(e));
    e.m = m;
    e.f = rq->filters;
    e.nf = rq->nfilters;
    buf_init(&scratch, VCARD_MAX);
    int rc = vcard_each(data, &scratch, on_prop, &e);
    buf_release(&scratch);
    if (rc == ERR_LIMIT || rc == ERR_INVAL) {
        *pass = false; /* not a card we can read: it matches nothing */
        return 0;
    }
    if (rc)
        return rc;
    size_t yes = 0;
    for (size_t i = 0; i < e.nf; i++) {
        bool r = e.f[i].not_defined ? !e.defined[i] : e.matched[i];
        yes += r;
    }
    *pass = rq->filter_allof ? yes == e.nf : yes > 0;
    return 0;
}

/* Walking members ------------------------------------------------------------- */

static int
member_row(void *ctx, const struct obj_item *it)
{
    struct carddav_ms *m = ctx;
    struct carddav *c = m->c;
    const char *book = m->path.book;
    size_t pl = m->prefix_len;
    /* members of this book only, and no deeper names */
    if (it->namelen <= pl || memcmp(it->name, m->name.data, pl) != 0 ||
        memchr(it->name + pl, '/', it->namelen - pl))
        return 0;
    struct slice res = SLICE(it->name + pl, it->namelen - pl);
    if (it->deleted && m->kind != MS_SYNC)
        return 0;
    if (it->deleted && m->initial)
        return 0;
    bool need_data = !it->deleted && (m->want_data || m->kind == MS_QUERY);
    int rc = 0;
    if (need_data) {
        rc = obj_view_data(c->view, &c->data);
        if (rc == ERR_CONFLICT || rc == ERR_LIMIT)
            return 0; /* changed since (listed again later) or too big for XML */
        if (rc)
            return rc;
    }
    if (m->kind == MS_QUERY) {
        bool pass = false;
        rc = filter_pass(m, buf_slice(&c->data), &pass);
        if (rc || !pass)
            return rc;
    }
    if (m->limit_hit) {
        m->truncated = true; /* one more than the client wanted */
        return STOP;
    }
    rc = card_href(m, SLICE_STR(book), res);
    if (rc)
        return rc;
    if (it->deleted) {
        rc = dav_ms_status(m->out, m->href.data, 404);
    } else {
        struct res r = {.kind = CARDDAV_CARD,
                        .etag = it->etag,
                        .size = it->size,
                        .data = need_data ? &c->data : NULL};
        rc = response(m, &r, m->href.data, m->out);
    }
    if (rc)
        return rc;
    m->token_seq = it->seq;
    m->emitted++;
    if (m->rq->limit && m->emitted >= m->rq->limit)
        m->limit_hit = true;
    return m->out->len - m->page_start >= PAGE_BYTES ? PAUSE : 0;
}

/* One page of the feed; phase moves to PH_END when the listing is complete. */
static int
members_page(struct carddav_ms *m)
{
    int64_t last = m->since;
    bool more = false;
    int rc = obj_view_feed(m->c->view, m->since, PAGE_ROWS, m->want_data || m->kind == MS_QUERY,
                           member_row, m, &last, &more);
    if (rc == STOP) {
        m->phase = PH_END;
        return 0;
    }
    m->since = last;
    if (rc == PAUSE)
        return 0;
    if (rc)
        return rc;
    if (!more) {
        if (!m->truncated)
            m->token_seq = last;
        m->phase = PH_END;
    }
    return 0;
}

static int
multiget_step(struct carddav_ms *m)
{
    struct carddav *c = m->c;
    struct carddav_path p;
    struct obj_info info;
    const char *href = m->rq->hrefs[m->ihref++];
    int rc;
    buf_reset(&m->href);
    rc = dav_xml_escape(&m->href, SLICE_STR(href));
    if (rc)
        return rc;
    if (dav_href_path(&m->text, href) || carddav_path_parse(&p, m->text.data) ||
        p.kind != CARDDAV_CARD || strcmp(p.account, c->account) != 0)
        return dav_ms_status(m->out, m->href.data, 404);
    buf_reset(&m->name);
    rc = carddav_object_name(&m->name, &p);
    if (!rc)
        rc = obj_view_get(c->view, m->name.data, m->name.len, &c->data, &info);
    if (rc == ERR_NOT_FOUND)
        return dav_ms_status(m->out, m->href.data, 404);
    bool have = rc == 0;
    if (rc == ERR_LIMIT) { /* a huge object put through the REST API: no address-data */
        rc = obj_view_stat(c->view, m->name.data, m->name.len, &info);
        if (rc == ERR_NOT_FOUND)
            return dav_ms_status(m->out, m->href.data, 404);
    }
    if (rc)
        return rc;
    struct res r = {
        .kind = CARDDAV_CARD, .etag = info.etag, .size = info.size, .data = have ? &c->data : NULL};
    return response(m, &r, m->href.data, m->out);
}

/* The request's own resource (depth 0 part of a PROPFIND). */
static int
self_response(struct carddav_ms *m)
{
    struct carddav *c = m->c;
    struct res r = {.kind = m->path.kind};
    struct obj_info info;
    int rc = 0;
    buf_reset(&m->href);
    rc = carddav_href(&m->href, &m->path);
    if (rc)
        return rc;
    if (m->path.kind == CARDDAV_BOOK)
        r.book = &m->self_book;
    if (m->path.kind == CARDDAV_CARD) {
        if (m->want_data) {
            rc = obj_view_get(c->view, m->name.data, m->name.len, &c->data, &info);
            if (!rc)
                r.data = &c->data;
            else if (rc == ERR_LIMIT)
                rc = obj_view_stat(c->view, m->name.data, m->name.len, &info);
        } else {
            rc = obj_view_stat(c->view, m->name.data, m->name.len, &info);
        }
        if (rc)
            return rc;
        r.etag = info.etag;
        r.size = info.size;
    }
    return response(m, &r, m->href.data, m->out);
}

static int
books_step(struct carddav_ms *m)
{
    const struct book *b = &m->books[m->ibook++];
    struct carddav_path p = m->path;
    struct res r = {.kind = CARDDAV_BOOK, .book = b};
    p.kind = CARDDAV_BOOK;
    snprintf(p.book, sizeof(p.book), "%s", b->name);
    buf_reset(&m->href);
    int rc = carddav_href(&m->href, &p);
    return rc ? rc : response(m, &r, m->href.data, m->out);
}

static int
ms_end(struct carddav_ms *m, struct buf *out)
{
    int rc = 0;
    char token[64];
    if (m->truncated) {
        buf_reset(&m->href);
        rc = carddav_href(&m->href, &m->path);
        if (!rc)
            rc = buf_addf(out,
                          "<d:response><d:href>%s</d:href><d:status>HTTP/1.1 507 Insufficient "
                          "Storage</d:status><d:error><d:number-of-matches-within-limits/>"
                          "</d:error></d:response>\n",
                          m->href.data);
    }
    if (!rc && m->kind == MS_SYNC) {
        rc = token_make(m->c, token, m->token_seq);
        if (!rc)
            rc = dav_ms_end(out, token);
    } else if (!rc) {
        rc = dav_ms_end(out, NULL);
    }
    return rc;
}

int
carddav_ms_next(struct carddav_ms *m, struct buf *out, bool *done)
{
    int rc = 0;
    *done = false;
    m->out = out;
    m->page_start = out->len;
    while (!rc && m->phase != PH_DONE && out->len - m->page_start < PAGE_BYTES) {
        switch (m->phase) {
        case PH_START:
            rc = dav_ms_begin(out);
            m->phase = m->kind == MS_PROPFIND ? PH_SELF : PH_MEMBERS;
            break;
        case PH_SELF:
            rc = self_response(m);
            m->phase =
                m->depth >= 1 && (m->path.kind == CARDDAV_HOME || m->path.kind == CARDDAV_BOOK)
                    ? PH_MEMBERS
                    : PH_END;
            break;
        case PH_MEMBERS:
            if (m->kind == MS_MULTIGET) {
                if (m->ihref < m->rq->nhrefs)
                    rc = multiget_step(m);
                else
                    m->phase = PH_END;
            } else if (m->kind == MS_PROPFIND && m->path.kind == CARDDAV_HOME) {
                if (m->ibook < m->nbooks)
                    rc = books_step(m);
                else
                    m->phase = PH_END;
            } else {
                rc = members_page(m);
            }
            break;
        case PH_END:
            rc = ms_end(m, out);
            m->phase = PH_DONE;
            break;
        case PH_DONE:
            break;
        }
    }
    *done = m->phase == PH_DONE;
    return rc;
}

void
carddav_ms_free(struct carddav_ms *m)
{
    if (!m)
        return;
    dav_request_free(m->rq);
    dav_props_release(&m->ps);
    buf_release(&m->href);
    if (m->name.data)
        secret_wipe(m->name.data, m->name.cap);
    buf_release(&m->name);
    buf_release(&m->text);
    buf_release(&m->scratch);
    free(m->books);
    free(m);
}

static bool
asks_data(const struct dav_request *rq)
{
    for (size_t i = 0; i < rq->nprops; i++)
        if (rq->props[i].id == DAV_P_ADDRESS_DATA)
            return true;
    return false;
}

/* Makes the answer and checks the resource the request is about. */
static int
ms_new(struct carddav_ms **out, struct carddav *c, const struct carddav_path *p,
       struct dav_request *rq, enum ms_kind kind, int depth)
{
    struct carddav_ms *m = calloc(1, sizeof(*m));
    struct obj_view *v = NULL;
    struct obj_info info;
    int rc = ERR_NOMEM;
    *out = NULL;
    if (!m)
        goto fail;
    m->c = c;
    m->rq = rq;
    rq = NULL;
    m->path = *p;
    m->kind = kind;
    m->depth = depth;
    dav_props_init(&m->ps, (size_t)VCARD_MAX * 2 + 65536);
    buf_init(&m->href, 16384);
    buf_init(&m->name, OBJ_NAME_MAX + 1);
    buf_init(&m->text, (size_t)VCARD_MAX * 2);
    buf_init(&m->scratch, (size_t)VCARD_MAX * 2);
    m->want_data = asks_data(m->rq);
    rc = own(c, p);
    if (rc)
        goto fail;
    if (p->kind == CARDDAV_HOME || p->kind == CARDDAV_BOOK || p->kind == CARDDAV_CARD) {
        rc = view(c, &v);
        if (rc)
            goto fail;
    }
    if (p->kind == CARDDAV_BOOK || p->kind == CARDDAV_CARD) {
        rc = book_get(c, p->book, &m->self_book);
        if (rc == ERR_NOT_FOUND)
            rc = fail(c, rc, "no such address book");
        if (rc)
            goto fail;
        rc = buf_addf(&m->name, "%s/", p->book);
        m->prefix_len = m->name.len;
    }
    if (!rc && p->kind == CARDDAV_CARD) {
        rc = buf_adds(&m->name, p->res);
        if (!rc)
            rc = obj_view_stat(v, m->name.data, m->name.len, &info);
        if (rc == ERR_NOT_FOUND)
            rc = fail(c, rc, "no such vCard");
    }
    if (!rc && kind == MS_PROPFIND && p->kind == CARDDAV_HOME && depth >= 1)
        rc = book_list(c, &m->books, &m->nbooks);
    if (rc)
        goto fail;
    *out = m;
    return 0;
fail:
    if (m)
        carddav_ms_free(m);
    else
        dav_request_free(rq);
    return rc;
}

int
carddav_propfind(struct carddav_ms **out, struct carddav *c, const struct carddav_path *p,
                 int depth, struct dav_request *rq)
{
    *out = NULL;
    if (rq->kind != DAV_BODY_NONE && rq->kind != DAV_BODY_PROPFIND) {
        dav_request_free(rq);
        return fail(c, ERR_INVAL, "the PROPFIND body must be a DAV:propfind element");
    }
    return ms_new(out, c, p, rq, MS_PROPFIND, depth);
}

int
carddav_report(struct carddav_ms **out, struct carddav *c, const struct carddav_path *p, int depth,
               struct dav_request *rq)
{
    enum ms_kind kind;
    struct carddav_ms *m = NULL;
    int rc;
    *out = NULL;
    switch (rq->kind) {
    case DAV_BODY_MULTIGET:
        kind = MS_MULTIGET;
        break;
    case DAV_BODY_QUERY:
        kind = MS_QUERY;
        break;
    case DAV_BODY_SYNC:
        kind = MS_SYNC;
        break;
    default:
        dav_request_free(rq);
        return fail_cond(c, ERR_FORBIDDEN, DAV_NS, "supported-report",
                         "supported reports: addressbook-multiget, addressbook-query, "
                         "sync-collection");
    }
    bool on_book = p->kind == CARDDAV_BOOK;
    if (!on_book && !(kind == MS_MULTIGET && p->kind == CARDDAV_HOME)) {
        dav_request_free(rq);
        return fail_cond(c, ERR_FORBIDDEN, DAV_NS, "supported-report",
                         "this report is answered on an address book");
    }
    rc = ms_new(&m, c, p, rq, kind, depth);
    if (rc)
        return rc;
    if (kind == MS_SYNC) {
        const char *t = m->rq->sync_token;
        m->initial = !t || !*t;
        if (!m->initial)
            rc = token_parse(c, t, &m->since);
        m->token_seq = m->since;
    }
    if (rc) {
        carddav_ms_free(m);
        return rc;
    }
    *out = m;
    return 0;
}
