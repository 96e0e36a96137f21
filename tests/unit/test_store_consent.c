/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_store_consent.c: the conformance suite of the version 2 operations
 * of store.h (consent ledger, purges, erasure, activity, sessions expiry,
 * compaction), beside test_store.c and like it written against the public
 * interface only, so that it runs unchanged on every back-end: the store
 * comes from OIKOS_TEST_STORE_URL if set (shared by every test: fresh ids,
 * listings filtered to them), else an SQLite file in a fresh mkdtemp
 * directory per test. Single-threaded.
 */
#include "base/common.h"

#include <limits.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/buf.h"
#include "store/store.h"

#define OK(expr) assert_int_equal((expr), 0)

struct fix {
    struct store *s;
    char dir[PATH_MAX];
    char url[PATH_MAX + 16];
    bool own_dir;
};

static atomic_int id_counter;

static void
uid(char out[STORE_ID_MAX], const char *tag)
{
    snprintf(out, STORE_ID_MAX, "c-%lld-%ld-%d-%s", (long long)time(NULL), (long)getpid(),
             atomic_fetch_add(&id_counter, 1), tag);
}

static int
setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    const char *env = getenv("OIKOS_TEST_STORE_URL");
    if (env && *env) {
        snprintf(f->url, sizeof(f->url), "%s", env);
    } else {
        snprintf(f->dir, sizeof(f->dir), "/tmp/oikos-store2-XXXXXX");
        if (!mkdtemp(f->dir)) {
            free(f);
            return -1;
        }
        f->own_dir = true;
        snprintf(f->url, sizeof(f->url), "sqlite:%s/store.db", f->dir);
    }
    if (store_open(&f->s, f->url)) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fix *f = *state;
    store_close(f->s);
    if (f->own_dir) {
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        if (system(cmd) != 0)
            return -1;
    }
    free(f);
    return 0;
}

/* Commits a batch built by the caller, then frees it; returns the commit's result. */
static int
commit(struct store *s, struct store_batch *b, uint64_t *count)
{
    int rc = store_commit(s, b, true);
    if (!rc && count)
        *count = store_batch_count(b);
    store_batch_free(b);
    return rc;
}

static struct store_batch *
batch(void)
{
    struct store_batch *b = NULL;
    OK(store_batch_new(&b));
    return b;
}

static void
add_account(struct store *s, const char *id, int64_t created)
{
    struct store_account a;
    memset(&a, 0, sizeof(a));
    snprintf(a.id, sizeof(a.id), "%s", id);
    snprintf(a.country, sizeof(a.country), "IN");
    snprintf(a.pwhash, sizeof(a.pwhash), "$argon2id$x");
    a.wrapped_len = 3;
    memcpy(a.wrapped_key, "key", 3);
    a.created = created;
    struct store_batch *b = batch();
    OK(store_batch_account_insert(b, &a));
    OK(commit(s, b, NULL));
}

/* One object of size bytes in nchunks chunks, named by n; returns its version. */
static int64_t
add_object(struct store *s, const char *account, const char *service, int n, uint64_t size,
           uint32_t nchunks)
{
    static int64_t next_version = 1000;
    struct store_object o;
    memset(&o, 0, sizeof(o));
    snprintf(o.account, sizeof(o.account), "%s", account);
    snprintf(o.service, sizeof(o.service), "%s", service);
    memset(o.name_hash, n, sizeof(o.name_hash));
    o.name_sealed_len = 4;
    memcpy(o.name_sealed, "name", 4);
    o.version = ++next_version;
    o.size = size;
    o.chunks = nchunks;
    o.cipher = 2;
    o.mtime = 1;
    struct store_batch *b = batch();
    for (uint32_t i = 0; i < nchunks; i++)
        OK(store_batch_chunk_put(b, account, o.version, i, SLICE("ciphertext", 10)));
    OK(store_batch_object_put(b, &o));
    OK(commit(s, b, NULL));
    return o.version;
}

static bool
has_chunk(struct store *s, const char *account, int64_t version, uint32_t idx)
{
    struct buf b;
    buf_init(&b, 1024);
    int rc = store_chunk_get(s, account, version, idx, &b);
    buf_release(&b);
    assert_true(rc == 0 || rc == ERR_NOT_FOUND);
    return rc == 0;
}

struct seen {
    const char *account; /* only rows of this account count */
    int n;
    char service[8][STORE_SERVICE_MAX];
    bool granted[8];
    int64_t at[8], generation[8];
    bool pending[8];
    int64_t version[8];
};

static int
seen_consent(void *ctx, const struct store_consent *c)
{
    struct seen *x = ctx;
    if (strcmp(c->account, x->account) || x->n == 8)
        return 0;
    snprintf(x->service[x->n], STORE_SERVICE_MAX, "%s", c->service);
    x->granted[x->n] = c->granted;
    x->at[x->n] = c->at;
    x->generation[x->n] = c->generation;
    x->pending[x->n] = c->purge_pending;
    x->n++;
    return 0;
}

static int
seen_account(void *ctx, const char *account, int64_t at)
{
    struct seen *x = ctx;
    if (strcmp(account, x->account) || x->n == 8)
        return 0;
    x->at[x->n++] = at;
    return 0;
}

static int
seen_purge(void *ctx, const char *account, int64_t version)
{
    struct seen *x = ctx;
    if (strcmp(account, x->account) || x->n == 8)
        return 0;
    x->version[x->n++] = version;
    return 0;
}

static int
count_row(void *ctx, const struct store_object *o)
{
    (void)o;
    (*(int *)ctx)++;
    return 0;
}

static struct store_consent
mkconsent(const char *account, const char *service, bool granted, int64_t at)
{
    struct store_consent c;
    memset(&c, 0, sizeof(c));
    snprintf(c.account, sizeof(c.account), "%s", account);
    snprintf(c.service, sizeof(c.service), "%s", service);
    snprintf(c.policy, sizeof(c.policy), "p%d", (int)(at % 10));
    c.granted = granted;
    c.at = at;
    c.purge_pending = !granted;
    return c;
}

/* ------------------------------------------------------------------------ */

static void
test_consent_ledger(void **state)
{
    struct fix *f = *state;
    char a[STORE_ID_MAX];
    struct store_consent got;
    uid(a, "ledger");
    assert_int_equal(store_consent_get(f->s, a, "photos", &got), ERR_NOT_FOUND);

    struct store_batch *b = batch();
    struct store_consent c1 = mkconsent(a, "photos", true, 101);
    struct store_consent c2 = mkconsent(a, "contacts", true, 102);
    OK(store_batch_consent_put(b, &c1));
    OK(store_batch_consent_put(b, &c2));
    OK(commit(f->s, b, NULL));
    OK(store_consent_get(f->s, a, "photos", &got));
    assert_true(got.granted);
    assert_int_equal(got.at, 101);
    assert_string_equal(got.policy, "p1");
    assert_int_equal(got.generation, 1);
    assert_false(got.purge_pending);

    /* revoked, pending; a purge mark of an old generation changes nothing */
    b = batch();
    struct store_consent c3 = mkconsent(a, "photos", false, 103);
    OK(store_batch_consent_put(b, &c3));
    OK(commit(f->s, b, NULL));
    OK(store_consent_get(f->s, a, "photos", &got));
    assert_false(got.granted);
    assert_int_equal(got.generation, 2);
    assert_true(got.purge_pending);
    struct seen x = {.account = a};
    OK(store_consents_pending(f->s, 1000000, seen_consent, &x));
    assert_int_equal(x.n, 1);
    assert_string_equal(x.service[0], "photos");
    b = batch();
    OK(store_batch_consent_purged(b, a, "photos", 1));
    OK(commit(f->s, b, NULL));
    OK(store_consent_get(f->s, a, "photos", &got));
    assert_true(got.purge_pending);
    b = batch();
    OK(store_batch_consent_purged(b, a, "photos", 2));
    OK(commit(f->s, b, NULL));
    OK(store_consent_get(f->s, a, "photos", &got));
    assert_false(got.purge_pending);

    /* the current states, by service; the history, oldest first */
    x = (struct seen){.account = a};
    OK(store_consents(f->s, a, seen_consent, &x));
    assert_int_equal(x.n, 2);
    assert_string_equal(x.service[0], "contacts");
    assert_string_equal(x.service[1], "photos");
    x = (struct seen){.account = a};
    OK(store_consent_log(f->s, a, seen_consent, &x));
    assert_int_equal(x.n, 3);
    assert_string_equal(x.service[0], "photos");
    assert_true(x.granted[0]);
    assert_int_equal(x.at[1], 102);
    assert_string_equal(x.service[2], "photos");
    assert_false(x.granted[2]);
    assert_int_equal(x.generation[2], 2);
    assert_false(x.pending[2]);

    /* bad arguments */
    b = batch();
    struct store_consent bad = mkconsent("", "photos", true, 1);
    assert_int_equal(store_batch_consent_put(b, &bad), ERR_INVAL);
    assert_int_equal(store_batch_svckey_delete(b, a, ""), ERR_INVAL);
    store_batch_free(b);
    assert_int_equal(store_consent_get(f->s, a, "", &got), ERR_INVAL);
}

static void
test_service_purge(void **state)
{
    struct fix *f = *state;
    char a[STORE_ID_MAX];
    uint64_t n = 0, objects0 = 0, bytes0 = 0, objects = 0, bytes = 0;
    uid(a, "purge");
    int64_t v1 = add_object(f->s, a, "photos", 1, 100, 2);
    int64_t v2 = add_object(f->s, a, "photos", 2, 50, 1);
    int64_t v3 = add_object(f->s, a, "photos", 3, 7, 1);
    int64_t vk = add_object(f->s, a, "contacts", 1, 9, 1);
    struct store_batch *b = batch();
    uint8_t h[STORE_HASH_LEN];
    memset(h, 3, sizeof(h));
    OK(store_batch_object_delete(b, a, "photos", h, 2)); /* a tombstone */
    OK(commit(f->s, b, NULL));
    OK(store_usage(f->s, a, "photos", &objects, &bytes));
    assert_int_equal(objects, 2);
    assert_int_equal(bytes, 150);
    OK(store_usage(f->s, a, NULL, &objects, &bytes)); /* every service: contacts too */
    assert_int_equal(objects, 3);
    assert_int_equal(bytes, 159);
    OK(store_stats(f->s, &objects0, &bytes0));

    b = batch();
    OK(store_batch_service_purge(b, a, "photos", 500));
    OK(commit(f->s, b, &n));
    assert_int_equal(n, 2);
    OK(store_usage(f->s, a, "photos", &objects, &bytes));
    assert_int_equal(objects, 0);
    OK(store_stats(f->s, &objects, &bytes));
    assert_int_equal(objects, objects0 - 2);
    assert_int_equal(bytes, bytes0 - 150);
    /* no row, not even the tombstone, in the feed */
    int rows = 0;
    OK(store_feed(f->s, a, "photos", 0, 100, false, count_row, &rows));
    assert_int_equal(rows, 0);
    OK(store_feed(f->s, a, "contacts", 0, 100, false, count_row, &rows));
    assert_int_equal(rows, 1);
    struct seen x;
    /* chunks wait in the queue until purge_done */
    assert_true(has_chunk(f->s, a, v1, 1));
    x = (struct seen){.account = a};
    OK(store_purges(f->s, 1000000, seen_purge, &x));
    assert_int_equal(x.n, 2);
    for (int i = 0; i < x.n; i++) {
        assert_true(x.version[i] == v1 || x.version[i] == v2);
        b = batch();
        OK(store_batch_purge_done(b, a, x.version[i]));
        OK(commit(f->s, b, NULL));
    }
    assert_false(has_chunk(f->s, a, v1, 0));
    assert_false(has_chunk(f->s, a, v1, 1));
    assert_false(has_chunk(f->s, a, v2, 0));
    (void)v3;
    x = (struct seen){.account = a};
    OK(store_purges(f->s, 1000000, seen_purge, &x));
    assert_int_equal(x.n, 0);
    /* the other service is untouched */
    OK(store_usage(f->s, a, "contacts", &objects, &bytes));
    assert_int_equal(objects, 1);
    assert_true(has_chunk(f->s, a, vk, 0));
    /* purging again: nothing, no error */
    b = batch();
    OK(store_batch_service_purge(b, a, "photos", 501));
    OK(commit(f->s, b, &n));
    assert_int_equal(n, 0);
}

static void
test_account_erase(void **state)
{
    struct fix *f = *state;
    char a[STORE_ID_MAX], other[STORE_ID_MAX];
    uint64_t n = 0, objects = 0, bytes = 0;
    uint8_t w[STORE_WRAPPED_MAX];
    size_t wl = 0;
    struct store_account acc;
    struct store_session se, got;
    struct store_consent c;
    int64_t at = 0;
    uid(a, "erase");
    uid(other, "keep");
    add_account(f->s, a, 10);
    add_account(f->s, other, 10);
    int64_t v = add_object(f->s, a, "photos", 1, 5, 1);
    add_object(f->s, other, "photos", 1, 5, 1);
    memset(&se, 0, sizeof(se));
    snprintf(se.account, sizeof(se.account), "%s", a);
    memset(se.token_hash, 0x42, sizeof(se.token_hash));
    memcpy(se.token_hash, a, strlen(a) < 32 ? strlen(a) : 32);
    se.expires = INT64_MAX;
    struct store_batch *b = batch();
    OK(store_batch_session_insert(b, &se));
    OK(store_batch_svckey_insert(b, a, "photos", SLICE("wrapped", 7)));
    OK(store_batch_svckey_insert(b, other, "photos", SLICE("wrapped", 7)));
    c = mkconsent(a, "photos", true, 11);
    OK(store_batch_consent_put(b, &c));
    c = mkconsent(other, "photos", true, 11);
    OK(store_batch_consent_put(b, &c));
    OK(store_batch_activity_put(b, a, 20));
    OK(store_batch_erasure_put(b, a, 30));
    OK(commit(f->s, b, NULL));

    b = batch();
    OK(store_batch_account_erase(b, a, 40));
    OK(commit(f->s, b, &n));
    assert_int_equal(n, 1);
    assert_int_equal(store_account_get(f->s, a, &acc), ERR_NOT_FOUND);
    assert_int_equal(store_session_get(f->s, se.token_hash, &got), ERR_NOT_FOUND);
    assert_int_equal(store_svckey_get(f->s, a, "photos", w, sizeof(w), &wl), ERR_NOT_FOUND);
    assert_int_equal(store_consent_get(f->s, a, "photos", &c), ERR_NOT_FOUND);
    assert_int_equal(store_activity_get(f->s, a, &at), ERR_NOT_FOUND);
    OK(store_usage(f->s, a, "photos", &objects, &bytes));
    assert_int_equal(objects, 0);
    struct seen x = {.account = a};
    OK(store_consent_log(f->s, a, seen_consent, &x));
    assert_int_equal(x.n, 0);
    /* the erasure mark stays until done; the chunks until purged */
    x = (struct seen){.account = a};
    OK(store_erasures(f->s, 1000000, seen_account, &x));
    assert_int_equal(x.n, 1);
    assert_int_equal(x.at[0], 30);
    assert_true(has_chunk(f->s, a, v, 0));
    x = (struct seen){.account = a};
    OK(store_purges(f->s, 1000000, seen_purge, &x));
    assert_int_equal(x.n, 1);
    b = batch();
    OK(store_batch_erasure_done(b, a));
    OK(store_batch_purge_done(b, a, v));
    OK(commit(f->s, b, NULL));
    x = (struct seen){.account = a};
    OK(store_erasures(f->s, 1000000, seen_account, &x));
    assert_int_equal(x.n, 0);
    assert_false(has_chunk(f->s, a, v, 0));
    /* the other account keeps everything */
    OK(store_account_get(f->s, other, &acc));
    OK(store_svckey_get(f->s, other, "photos", w, sizeof(w), &wl));
    OK(store_consent_get(f->s, other, "photos", &c));
    OK(store_usage(f->s, other, "photos", &objects, &bytes));
    assert_int_equal(objects, 1);
}

/* The sweeper's purge of a retired account's rows: the live objects it removed. */
static uint64_t
rows_purged(struct store *s, const char *account)
{
    uint64_t n = 0;
    struct store_batch *b = batch();
    OK(store_batch_purge_done(b, account, STORE_PURGE_ROWS));
    OK(commit(s, b, &n));
    return n;
}

/* A retired account: every row gone but its object rows, which wait, queued whole. */
static void
test_account_retire(void **state)
{
    struct fix *f = *state;
    char a[STORE_ID_MAX], back[STORE_ID_MAX];
    uint64_t objects0 = 0, bytes0 = 0, objects = 0, bytes = 0;
    uint8_t w[STORE_WRAPPED_MAX];
    size_t wl = 0;
    struct store_account acc;
    struct buf v;
    buf_init(&v, 64);
    uid(a, "retire");
    uid(back, "back");
    add_account(f->s, a, 10);
    int64_t v1 = add_object(f->s, a, "photos", 1, 100, 2);
    int64_t v2 = add_object(f->s, a, "contacts", 1, 9, 1);
    add_object(f->s, a, "photos", 3, 4, 1);
    uint8_t h[STORE_HASH_LEN];
    memset(h, 3, sizeof(h));
    struct store_batch *b = batch();
    OK(store_batch_object_delete(b, a, "photos", h, 2)); /* a tombstone goes too */
    OK(store_batch_svckey_insert(b, a, "photos", SLICE("wrapped", 7)));
    OK(store_batch_rec_put(b, a, "kind", SLICE("k", 1), SLICE("v", 1)));
    OK(store_batch_activity_put(b, a, 20));
    OK(commit(f->s, b, NULL));
    OK(store_stats(f->s, &objects0, &bytes0));

    b = batch();
    OK(store_batch_account_retire(b, a, 40));
    OK(commit(f->s, b, NULL));
    assert_int_equal(store_account_get(f->s, a, &acc), ERR_NOT_FOUND);
    assert_int_equal(store_svckey_get(f->s, a, "photos", w, sizeof(w), &wl), ERR_NOT_FOUND);
    assert_int_equal(store_rec_get(f->s, a, "kind", SLICE("k", 1), &v), ERR_NOT_FOUND);
    int64_t at = 0;
    assert_int_equal(store_activity_get(f->s, a, &at), ERR_NOT_FOUND);
    /* the rows and chunks stay, one purge queued for them */
    OK(store_stats(f->s, &objects, &bytes));
    assert_int_equal(objects, objects0);
    assert_true(has_chunk(f->s, a, v1, 1));
    struct seen x = {.account = a};
    OK(store_purges(f->s, 1000000, seen_purge, &x));
    assert_int_equal(x.n, 1);
    assert_int_equal(x.version[0], STORE_PURGE_ROWS);

    /* the sweeper's purge of the rows: gone, their live versions queued instead */
    assert_int_equal(rows_purged(f->s, a), 2);
    OK(store_stats(f->s, &objects, &bytes));
    assert_int_equal(objects, objects0 - 2);
    assert_int_equal(bytes, bytes0 - 109);
    int rows = 0;
    OK(store_feed(f->s, a, "photos", 0, 100, false, count_row, &rows));
    OK(store_feed(f->s, a, "contacts", 0, 100, false, count_row, &rows));
    assert_int_equal(rows, 0);
    x = (struct seen){.account = a};
    OK(store_purges(f->s, 1000000, seen_purge, &x));
    assert_int_equal(x.n, 2);
    b = batch();
    for (int i = 0; i < x.n; i++) {
        assert_true(x.version[i] == v1 || x.version[i] == v2);
        OK(store_batch_purge_done(b, a, x.version[i]));
    }
    OK(commit(f->s, b, NULL));
    assert_false(has_chunk(f->s, a, v1, 0));
    assert_false(has_chunk(f->s, a, v2, 0));
    assert_int_equal(rows_purged(f->s, a), 0); /* again: nothing queued, nothing removed */

    /* an account arriving again clears what it left, then its new rows stay */
    add_account(f->s, back, 10);
    int64_t old = add_object(f->s, back, "photos", 1, 5, 1);
    b = batch();
    OK(store_batch_account_retire(b, back, 50));
    OK(commit(f->s, b, NULL));
    assert_int_equal(rows_purged(f->s, back), 1);
    add_account(f->s, back, 60);
    int64_t fresh = add_object(f->s, back, "photos", 1, 6, 1);
    assert_int_equal(rows_purged(f->s, back), 0); /* a sweeper that listed it before */
    OK(store_usage(f->s, back, "photos", &objects, &bytes));
    assert_int_equal(objects, 1);
    assert_int_equal(bytes, 6);
    assert_true(has_chunk(f->s, back, fresh, 0));
    x = (struct seen){.account = back};
    OK(store_purges(f->s, 1000000, seen_purge, &x));
    assert_int_equal(x.n, 1);
    assert_int_equal(x.version[0], old);
    buf_release(&v);
}

static void
test_activity_and_idle(void **state)
{
    struct fix *f = *state;
    char a[STORE_ID_MAX];
    int64_t at = 0;
    /* far in the past, so that a shared store's other accounts sort after */
    uid(a, "idle");
    add_account(f->s, a, 1000);
    OK(store_activity_get(f->s, a, &at));
    assert_int_equal(at, 1000);
    struct seen x = {.account = a};
    OK(store_accounts_idle(f->s, 1000, 1000000, seen_account, &x));
    assert_int_equal(x.n, 0); /* not before: created at 1000 exactly */
    OK(store_accounts_idle(f->s, 1001, 1000000, seen_account, &x));
    assert_int_equal(x.n, 1);
    assert_int_equal(x.at[0], 1000);

    /* activity moves it forward, never back */
    struct store_batch *b = batch();
    OK(store_batch_activity_put(b, a, 5000));
    OK(commit(f->s, b, NULL));
    b = batch();
    OK(store_batch_activity_put(b, a, 3000));
    OK(commit(f->s, b, NULL));
    OK(store_activity_get(f->s, a, &at));
    assert_int_equal(at, 5000);
    x = (struct seen){.account = a};
    OK(store_accounts_idle(f->s, 5000, 1000000, seen_account, &x));
    assert_int_equal(x.n, 0);
    OK(store_accounts_idle(f->s, 5001, 1000000, seen_account, &x));
    assert_int_equal(x.n, 1);
    assert_int_equal(x.at[0], 5000);
    assert_int_equal(store_activity_get(f->s, "c-nobody", &at), ERR_NOT_FOUND);
}

static void
test_sessions_expire(void **state)
{
    struct fix *f = *state;
    char a[STORE_ID_MAX];
    struct store_session s1, s2, got;
    uint64_t n = 0;
    uid(a, "sess");
    memset(&s1, 0, sizeof(s1));
    snprintf(s1.account, sizeof(s1.account), "%s", a);
    s2 = s1;
    memset(s1.token_hash, 0xA1, sizeof(s1.token_hash));
    memset(s2.token_hash, 0xA2, sizeof(s2.token_hash));
    memcpy(s1.token_hash, a, strlen(a) < 30 ? strlen(a) : 30);
    memcpy(s2.token_hash, a, strlen(a) < 30 ? strlen(a) : 30);
    s1.expires = 100; /* long gone */
    s2.expires = INT64_MAX - 1;
    struct store_batch *b = batch();
    OK(store_batch_session_insert(b, &s1));
    OK(store_batch_session_insert(b, &s2));
    OK(commit(f->s, b, NULL));
    b = batch();
    OK(store_batch_sessions_expire(b, 99));
    OK(commit(f->s, b, &n));
    OK(store_session_get(f->s, s1.token_hash, &got));
    b = batch();
    OK(store_batch_sessions_expire(b, 100));
    OK(commit(f->s, b, &n));
    assert_true(n >= 1);
    assert_int_equal(store_session_get(f->s, s1.token_hash, &got), ERR_NOT_FOUND);
    OK(store_session_get(f->s, s2.token_hash, &got));
}

static void
test_compact(void **state)
{
    struct fix *f = *state;
    uint64_t pages = 0;
    struct store_batch *b = batch();
    OK(store_batch_compact(b));
    OK(commit(f->s, b, &pages)); /* whatever the back-end gives back, no error */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_consent_ledger, setup, teardown),
        cmocka_unit_test_setup_teardown(test_service_purge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_account_erase, setup, teardown),
        cmocka_unit_test_setup_teardown(test_account_retire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_activity_and_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sessions_expire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compact, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
