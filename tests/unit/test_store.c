/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_store.c: the conformance suite of store.h, written against the
 * public interface only so that it runs unchanged on every back-end. The
 * store comes from OIKOS_TEST_STORE_URL if set (then all tests share it and
 * use fresh ids, so it need not be empty); otherwise each test gets an SQLite
 * file in a fresh mkdtemp directory, and a few SQLite-only checks run too
 * (the lock against a second opener, that deleted ciphertext is gone
 * from the file, and the chunk files of large objects).
 *
 * Worker threads never call cmocka assertions (they are not thread-safe):
 * they count failures, and the test thread asserts on the counts.
 * OIKOS_TEST_STORE_BENCH_N sets the commits per thread of the throughput
 * test (64 threads; default 100); the rate is printed.
 */
#include "base/common.h"

#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/buf.h"
#include "base/util.h"
#include "store/store.h"

#define OK(expr) assert_int_equal((expr), 0)

struct fix {
    struct store *s;
    char dir[PATH_MAX];
    char url[PATH_MAX + 16];
    bool own_dir; /* a fresh SQLite directory (no OIKOS_TEST_STORE_URL) */
};

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

static atomic_int id_counter;

/* A fresh account id, unique across tests and runs. */
static void
uid(char out[STORE_ID_MAX], const char *tag)
{
    snprintf(out, STORE_ID_MAX, "t-%lld-%ld-%d-%s", (long long)time(NULL), (long)getpid(),
             atomic_fetch_add(&id_counter, 1), tag);
}

static void
name_hash(uint8_t out[STORE_HASH_LEN], int name)
{
    for (int i = 0; i < STORE_HASH_LEN; i++)
        out[i] = (uint8_t)(name * 31 + i * 7 + (name >> 8));
    memcpy(out, &name, sizeof(name));
}

static struct store_object
mkobj(const char *account, const char *service, int name, int64_t version, uint64_t size,
      uint32_t chunks)
{
    struct store_object o;
    memset(&o, 0, sizeof(o));
    snprintf(o.account, sizeof(o.account), "%s", account);
    snprintf(o.service, sizeof(o.service), "%s", service);
    name_hash(o.name_hash, name);
    int n = snprintf((char *)o.name_sealed, sizeof(o.name_sealed), "sealed-name-%d", name);
    o.name_sealed_len = (size_t)n;
    o.version = version;
    o.size = size;
    o.chunks = chunks;
    o.cipher = 2;
    o.mtime = 1700000000 + name;
    return o;
}

/* Fills p with bytes that depend on (version, idx). */
static void
chunk_fill(uint8_t *p, size_t n, int64_t version, uint32_t idx)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(version * 13 + idx * 7 + i);
}

/*
 * Commits one object with nchunks chunks of chunk_len bytes in one batch.
 * Returns the commit's result; *seq and *replaced if non-NULL.
 */
static int
put_object(struct store *s, const char *account, const char *service, int name, int64_t version,
           uint32_t nchunks, size_t chunk_len, bool durable, int64_t *seq, unsigned *replaced)
{
    struct store_batch *b = NULL;
    uint8_t *data = malloc(chunk_len ? chunk_len : 1);
    int rc = data ? store_batch_new(&b) : ERR_NOMEM;
    for (uint32_t i = 0; !rc && i < nchunks; i++) {
        chunk_fill(data, chunk_len, version, i);
        rc = store_batch_chunk_put(b, account, version, i, SLICE(data, chunk_len));
    }
    struct store_object o =
        mkobj(account, service, name, version, (uint64_t)chunk_len * nchunks, nchunks);
    if (!rc)
        rc = store_batch_object_put(b, &o);
    if (!rc)
        rc = store_commit(s, b, durable);
    if (!rc && seq)
        *seq = store_batch_seq(b);
    if (!rc && replaced)
        *replaced = store_batch_replaced(b);
    store_batch_free(b);
    free(data);
    return rc;
}

static int
delete_object(struct store *s, const char *account, const char *service, int name, int64_t mtime,
              int64_t *seq)
{
    struct store_batch *b = NULL;
    uint8_t h[STORE_HASH_LEN];
    name_hash(h, name);
    int rc = store_batch_new(&b);
    if (!rc)
        rc = store_batch_object_delete(b, account, service, h, mtime);
    if (!rc)
        rc = store_commit(s, b, true);
    if (!rc && seq)
        *seq = store_batch_seq(b);
    store_batch_free(b);
    return rc;
}

static int
get_object(struct store *s, const char *account, const char *service, int name,
           struct store_object *out)
{
    uint8_t h[STORE_HASH_LEN];
    name_hash(h, name);
    return store_object_get(s, account, service, h, out);
}

/* Whether out holds what put_object wrote as chunk idx of version. */
static int
chunk_is(struct slice out, int64_t version, uint32_t idx, size_t len)
{
    if (out.len != len)
        return ERR_CORRUPT;
    if (!len)
        return 0;
    uint8_t *want = malloc(len);
    if (!want)
        return ERR_NOMEM;
    chunk_fill(want, len, version, idx);
    int rc = memcmp(want, out.p, len) ? ERR_CORRUPT : 0;
    free(want);
    return rc;
}

/* Checks that chunk idx of (account, version) holds what put_object wrote. */
static int
check_chunk(struct store *s, const char *account, int64_t version, uint32_t idx, size_t len)
{
    struct buf out;
    buf_init(&out, 1 << 24);
    int rc = store_chunk_get(s, account, version, idx, &out);
    if (!rc)
        rc = chunk_is(buf_slice(&out), version, idx, len);
    buf_release(&out);
    return rc;
}

/* check_chunk through chunks held by store_chunks_open. */
static int
check_held(struct store_chunks *c, int64_t version, uint32_t idx, size_t len)
{
    struct buf out;
    buf_init(&out, 1 << 24);
    int rc = store_chunks_read(c, idx, &out);
    if (!rc)
        rc = chunk_is(buf_slice(&out), version, idx, len);
    buf_release(&out);
    return rc;
}

static int
meta_put(struct store *s, const char *key, const char *val)
{
    struct store_batch *b = NULL;
    int rc = store_batch_new(&b);
    if (!rc)
        rc = store_batch_meta_put(b, key, SLICE_STR(val));
    if (!rc)
        rc = store_commit(s, b, false);
    store_batch_free(b);
    return rc;
}

static void
stats(struct store *s, uint64_t *objects, uint64_t *bytes)
{
    OK(store_stats(s, objects, bytes));
}

static void
rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[PATH_MAX * 2];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
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
        const char *tmp = getenv("TMPDIR");
        snprintf(f->dir, sizeof(f->dir), "%s/oikos-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(f->dir)) {
            free(f);
            return -1;
        }
        f->own_dir = true;
        snprintf(f->url, sizeof(f->url), "sqlite:%s/store.db", f->dir);
    }
    if (store_open(&f->s, f->url)) {
        if (f->own_dir)
            rm_tree(f->dir);
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
    if (f->own_dir)
        rm_tree(f->dir);
    free(f);
    return 0;
}

/* Closes and reopens the fixture's store. */
static void
reopen(struct fix *f)
{
    store_close(f->s);
    f->s = NULL;
    OK(store_open(&f->s, f->url));
}

/* ------------------------------------------------------------------------ */
/* Opening                                                                  */

static void
test_open_urls(void **state)
{
    struct fix *f = *state;
    struct store *s = NULL;
    assert_int_equal(store_open(&s, ""), ERR_INVAL);
    assert_null(s);
    assert_int_equal(store_open(&s, "sqlite:"), ERR_INVAL);
    assert_int_equal(store_open(&s, "nosuch://host/db"), ERR_INVAL);
    assert_int_equal(store_open(&s, "sqlite::memory:"), ERR_INVAL);
    assert_null(s);
    store_close(NULL);
    assert_non_null(store_backend(f->s));
    if (!f->own_dir)
        return;

    assert_string_equal(store_backend(f->s), "sqlite");
    /* A second store on the same database is refused while the first is open. */
    assert_int_equal(store_open(&s, f->url), ERR_UNAVAILABLE);
    assert_null(s);
    OK(meta_put(f->s, "k", "v"));
    store_close(f->s);
    f->s = NULL;

    /* "sqlite:PATH" and a plain PATH name the same store. */
    char plain[PATH_MAX + 16];
    snprintf(plain, sizeof(plain), "%s/store.db", f->dir);
    OK(store_open(&f->s, plain));
    assert_string_equal(store_backend(f->s), "sqlite");
    struct buf v;
    buf_init(&v, 100);
    OK(store_meta_get(f->s, "k", &v));
    assert_string_equal(v.data, "v");
    buf_release(&v);
}

/* ------------------------------------------------------------------------ */
/* Records                                                                  */

static void
test_meta(void **state)
{
    struct fix *f = *state;
    struct store *s = f->s;
    char key[STORE_META_KEY_MAX];
    uid(key, "meta");
    struct buf v;
    buf_init(&v, 1000);
    assert_int_equal(store_meta_get(s, key, &v), ERR_NOT_FOUND);

    OK(meta_put(s, key, "one"));
    OK(buf_adds(&v, "junk that must go"));
    OK(store_meta_get(s, key, &v));
    assert_int_equal(v.len, 3);
    assert_string_equal(v.data, "one");

    /* A put replaces; values are bytes, NULs included. */
    static const uint8_t bin[] = {0, 1, 2, 0, 255};
    struct store_batch *b;
    OK(store_batch_new(&b));
    OK(store_batch_meta_put(b, key, SLICE(bin, sizeof(bin))));
    OK(store_commit(s, b, true));
    store_batch_free(b);
    OK(store_meta_get(s, key, &v));
    assert_int_equal(v.len, sizeof(bin));
    assert_memory_equal(v.data, bin, sizeof(bin));

    /* An empty value is a value, not an absence. */
    OK(meta_put(s, key, ""));
    OK(store_meta_get(s, key, &v));
    assert_int_equal(v.len, 0);

    /* The caller's limit holds. */
    char big[200];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    OK(meta_put(s, key, big));
    struct buf small;
    buf_init(&small, 10);
    assert_int_equal(store_meta_get(s, key, &small), ERR_LIMIT);
    buf_release(&small);
    buf_release(&v);
}

static struct store_account
mkaccount(const char *id)
{
    struct store_account a;
    memset(&a, 0, sizeof(a));
    snprintf(a.id, sizeof(a.id), "%s", id);
    snprintf(a.country, sizeof(a.country), "IN");
    snprintf(a.pwhash, sizeof(a.pwhash), "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA");
    a.wrapped_len = 72;
    for (size_t i = 0; i < a.wrapped_len; i++)
        a.wrapped_key[i] = (uint8_t)(i * 3 + 1);
    a.created = 1700000123;
    return a;
}

static int
account_insert(struct store *s, const struct store_account *a)
{
    struct store_batch *b = NULL;
    int rc = store_batch_new(&b);
    if (!rc)
        rc = store_batch_account_insert(b, a);
    if (!rc)
        rc = store_commit(s, b, true);
    store_batch_free(b);
    return rc;
}

static void
test_account(void **state)
{
    struct fix *f = *state;
    char id[STORE_ID_MAX];
    uid(id, "acct");
    struct store_account a = mkaccount(id), got;
    assert_int_equal(store_account_get(f->s, id, &got), ERR_NOT_FOUND);
    OK(account_insert(f->s, &a));
    memset(&got, 0x55, sizeof(got));
    OK(store_account_get(f->s, id, &got));
    assert_string_equal(got.id, id);
    assert_string_equal(got.country, "IN");
    assert_string_equal(got.pwhash, a.pwhash);
    assert_int_equal(got.wrapped_len, a.wrapped_len);
    assert_memory_equal(got.wrapped_key, a.wrapped_key, a.wrapped_len);
    assert_int_equal(got.created, a.created);

    /* The id is taken: ERR_EXISTS, and the first account is unchanged. */
    struct store_account other = mkaccount(id);
    snprintf(other.country, sizeof(other.country), "SG");
    assert_int_equal(account_insert(f->s, &other), ERR_EXISTS);
    OK(store_account_get(f->s, id, &got));
    assert_string_equal(got.country, "IN");
}

static int
session_batch(struct store *s, const struct store_session *ins, const uint8_t *del)
{
    struct store_batch *b = NULL;
    int rc = store_batch_new(&b);
    if (!rc && ins)
        rc = store_batch_session_insert(b, ins);
    if (!rc && del)
        rc = store_batch_session_delete(b, del);
    if (!rc)
        rc = store_commit(s, b, true);
    store_batch_free(b);
    return rc;
}

static void
test_session(void **state)
{
    struct fix *f = *state;
    struct store_session se, got;
    memset(&se, 0, sizeof(se));
    uid(se.account, "sess");
    /* Unique per run: the token hash starts with the (unique) account id. */
    snprintf((char *)se.token_hash, sizeof(se.token_hash), "%.31s", se.account);
    se.created = 100;
    se.expires = 200;
    assert_int_equal(store_session_get(f->s, se.token_hash, &got), ERR_NOT_FOUND);
    OK(session_batch(f->s, &se, NULL));
    OK(store_session_get(f->s, se.token_hash, &got));
    assert_string_equal(got.account, se.account);
    assert_memory_equal(got.token_hash, se.token_hash, STORE_HASH_LEN);
    assert_int_equal(got.created, 100);
    assert_int_equal(got.expires, 200);

    /* A token hash is unique, whatever the account. */
    struct store_session dup = se;
    uid(dup.account, "sess2");
    assert_int_equal(session_batch(f->s, &dup, NULL), ERR_EXISTS);

    OK(session_batch(f->s, NULL, se.token_hash));
    assert_int_equal(store_session_get(f->s, se.token_hash, &got), ERR_NOT_FOUND);
    /* Deleting a session that is not there is no error. */
    OK(session_batch(f->s, NULL, se.token_hash));
}

static int
svckey_insert(struct store *s, const char *account, const char *service, struct slice w)
{
    struct store_batch *b = NULL;
    int rc = store_batch_new(&b);
    if (!rc)
        rc = store_batch_svckey_insert(b, account, service, w);
    if (!rc)
        rc = store_commit(s, b, true);
    store_batch_free(b);
    return rc;
}

struct sessions_seen {
    struct store_session v[4];
    int n, stop_at;
};

static int
session_seen(void *ctx, const struct store_session *se)
{
    struct sessions_seen *x = ctx;
    if (x->n < 4)
        x->v[x->n] = *se;
    x->n++;
    return x->n == x->stop_at ? 42 : 0;
}

/* An account's sessions, in bytewise token hash order, and nobody else's. */
static void
test_sessions_of(void **state)
{
    struct fix *f = *state;
    struct store_session a[2], other;
    memset(a, 0, sizeof(a));
    memset(&other, 0, sizeof(other));
    uid(a[0].account, "sof");
    uid(other.account, "sof2");
    memcpy(a[1].account, a[0].account, sizeof(a[0].account));
    for (int i = 0; i < 2; i++) {
        snprintf((char *)a[i].token_hash, sizeof(a[i].token_hash), "%.31s", a[0].account);
        a[i].token_hash[0] = i ? 0x01 : 0xf0; /* bytewise: a[1] first */
        a[i].created = 10 + i;
        a[i].expires = 20 + i;
    }
    snprintf((char *)other.token_hash, sizeof(other.token_hash), "%.31s", other.account);
    OK(session_batch(f->s, &a[0], NULL));
    OK(session_batch(f->s, &a[1], NULL));
    OK(session_batch(f->s, &other, NULL));

    struct sessions_seen x = {.stop_at = -1};
    OK(store_sessions_of(f->s, a[0].account, session_seen, &x));
    assert_int_equal(x.n, 2);
    for (int i = 0; i < 2; i++) {
        assert_string_equal(x.v[i].account, a[0].account);
        assert_memory_equal(x.v[i].token_hash, a[1 - i].token_hash, STORE_HASH_LEN);
        assert_int_equal(x.v[i].created, a[1 - i].created);
        assert_int_equal(x.v[i].expires, a[1 - i].expires);
    }
    struct sessions_seen stop = {.stop_at = 1};
    assert_int_equal(store_sessions_of(f->s, a[0].account, session_seen, &stop), 42);
    assert_int_equal(stop.n, 1);
    char nobody[STORE_ID_MAX];
    uid(nobody, "sof3");
    struct sessions_seen none = {.stop_at = -1};
    OK(store_sessions_of(f->s, nobody, session_seen, &none));
    assert_int_equal(none.n, 0);
}

static void
test_svckey(void **state)
{
    struct fix *f = *state;
    char acct[STORE_ID_MAX];
    uid(acct, "svk");
    uint8_t w1[60], w2[60], out[STORE_WRAPPED_MAX];
    size_t n = 0;
    memset(w1, 0xa1, sizeof(w1));
    memset(w2, 0xb2, sizeof(w2));
    assert_int_equal(store_svckey_get(f->s, acct, "contacts", out, sizeof(out), &n), ERR_NOT_FOUND);
    OK(svckey_insert(f->s, acct, "contacts", SLICE(w1, sizeof(w1))));
    OK(svckey_insert(f->s, acct, "sms", SLICE(w2, sizeof(w2))));
    OK(store_svckey_get(f->s, acct, "contacts", out, sizeof(out), &n));
    assert_int_equal(n, sizeof(w1));
    assert_memory_equal(out, w1, sizeof(w1));
    OK(store_svckey_get(f->s, acct, "sms", out, sizeof(out), &n));
    assert_memory_equal(out, w2, sizeof(w2));
    assert_int_equal(svckey_insert(f->s, acct, "contacts", SLICE(w2, sizeof(w2))), ERR_EXISTS);
    OK(store_svckey_get(f->s, acct, "contacts", out, sizeof(out), &n));
    assert_memory_equal(out, w1, sizeof(w1));
    /* A buffer too small for the key. */
    assert_int_equal(store_svckey_get(f->s, acct, "contacts", out, 10, &n), ERR_LIMIT);
}

/* ------------------------------------------------------------------------ */
/* Records                                                                  */

struct rec_seen {
    int n;
    uint8_t keys[4][8];
    char vals[4][16];
};

static int
rec_collect(void *ctx, struct slice key, struct slice val)
{
    struct rec_seen *r = ctx;
    if (r->n == 4 || key.len > 8 || val.len >= 16)
        return ERR_LIMIT;
    memcpy(r->keys[r->n], key.p, key.len);
    memcpy(r->vals[r->n], val.p, val.len);
    r->vals[r->n][val.len] = 0;
    r->n++;
    return 0;
}

static int
rec_op(struct store *s, int kind, const char *acct, const char *rkind, const char *key,
       const char *val)
{
    struct store_batch *b = NULL;
    int rc = store_batch_new(&b);
    struct slice k = SLICE_STR(key), v = SLICE_STR(val ? val : "");
    if (!rc)
        rc = kind == 0   ? store_batch_rec_insert(b, acct, rkind, k, v)
             : kind == 1 ? store_batch_rec_put(b, acct, rkind, k, v)
                         : store_batch_rec_delete(b, acct, rkind, k);
    if (!rc)
        rc = store_commit(s, b, true);
    store_batch_free(b);
    return rc;
}

static void
test_records(void **state)
{
    struct fix *f = *state;
    char a[STORE_ID_MAX], b[STORE_ID_MAX], found[STORE_ID_MAX];
    struct buf v;
    struct rec_seen seen = {0};
    buf_init(&v, STORE_VAL_MAX);
    uid(a, "reca");
    uid(b, "recb");
    assert_int_equal(store_rec_get(f->s, a, "ident", SLICE_STR("k1"), &v), ERR_NOT_FOUND);
    OK(rec_op(f->s, 0, a, "ident", "k2", "two"));
    OK(rec_op(f->s, 0, a, "ident", "k1", "one"));
    OK(rec_op(f->s, 0, a, "other", "k1", "elsewhere"));
    assert_int_equal(rec_op(f->s, 0, a, "ident", "k1", "again"), ERR_EXISTS);
    OK(store_rec_get(f->s, a, "ident", SLICE_STR("k1"), &v));
    assert_int_equal(v.len, 3);
    assert_memory_equal(v.data, "one", 3);
    OK(rec_op(f->s, 1, a, "ident", "k1", "uno"));
    OK(store_rec_get(f->s, a, "ident", SLICE_STR("k1"), &v));
    assert_memory_equal(v.data, "uno", 3);
    /* listing: one account, one kind, in key order */
    OK(store_rec_list(f->s, a, "ident", rec_collect, &seen));
    assert_int_equal(seen.n, 2);
    assert_memory_equal(seen.keys[0], "k1", 2);
    assert_string_equal(seen.vals[0], "uno");
    assert_string_equal(seen.vals[1], "two");
    /* finding the holder of a key, across accounts */
    OK(rec_op(f->s, 1, b, "ident", "k9", "nine"));
    OK(store_rec_find(f->s, "ident", SLICE_STR("k9"), found));
    assert_string_equal(found, b);
    OK(store_rec_find(f->s, "ident", SLICE_STR("k2"), found));
    assert_string_equal(found, a);
    assert_int_equal(store_rec_find(f->s, "ident", SLICE_STR("k7"), found), ERR_NOT_FOUND);
    /* delete, also of what is absent */
    OK(rec_op(f->s, 2, a, "ident", "k1", NULL));
    OK(rec_op(f->s, 2, a, "ident", "k1", NULL));
    assert_int_equal(store_rec_get(f->s, a, "ident", SLICE_STR("k1"), &v), ERR_NOT_FOUND);
    OK(store_rec_get(f->s, a, "other", SLICE_STR("k1"), &v));
    /* limits */
    char big[STORE_KEY_MAX + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    assert_int_equal(rec_op(f->s, 1, a, "ident", big, "v"), ERR_INVAL);
    assert_int_equal(rec_op(f->s, 1, a, "ident", "", "v"), ERR_INVAL);
    reopen(f);
    OK(store_rec_get(f->s, a, "ident", SLICE_STR("k2"), &v));
    assert_memory_equal(v.data, "two", 3);
    buf_release(&v);
}

/* An 8-byte big-endian time, as records that expire hold it. */
static struct slice
be64(uint8_t out[8], int64_t t)
{
    be64_put(out, (uint64_t)t);
    return SLICE(out, 8);
}

static void
test_records_expire(void **state)
{
    struct fix *f = *state;
    char a[STORE_ID_MAX], b[STORE_ID_MAX], kind[STORE_KIND_MAX];
    uint8_t t[8];
    struct buf v;
    buf_init(&v, STORE_VAL_MAX);
    uid(a, "expa");
    uid(b, "expb");
    /* a kind of this run only: the store may be shared with other runs */
    snprintf(kind, sizeof(kind), "x%ld%d", (long)getpid() % 100000,
             atomic_fetch_add(&id_counter, 1));
    struct store_batch *bt = NULL;
    OK(store_batch_new(&bt));
    OK(store_batch_rec_put(bt, a, kind, SLICE_STR("old"), be64(t, 1000)));
    OK(store_batch_rec_put(bt, b, kind, SLICE_STR("older"), be64(t, 999)));
    OK(store_batch_rec_put(bt, a, kind, SLICE_STR("new"), be64(t, 1u << 20)));
    OK(store_batch_rec_put(bt, a, kind, SLICE_STR("edge"), be64(t, 2000)));
    OK(store_batch_rec_put(bt, a, "keep", SLICE_STR("old"), be64(t, 1)));
    OK(store_commit(f->s, bt, true));
    store_batch_free(bt);
    bt = NULL;
    OK(store_batch_new(&bt));
    OK(store_batch_recs_expire(bt, kind, be64(t, 2000)));
    OK(store_commit(f->s, bt, true));
    assert_int_equal(store_batch_count(bt), 2); /* before 2000, of both accounts */
    store_batch_free(bt);
    assert_int_equal(store_rec_get(f->s, a, kind, SLICE_STR("old"), &v), ERR_NOT_FOUND);
    assert_int_equal(store_rec_get(f->s, b, kind, SLICE_STR("older"), &v), ERR_NOT_FOUND);
    OK(store_rec_get(f->s, a, kind, SLICE_STR("edge"), &v));
    OK(store_rec_get(f->s, a, kind, SLICE_STR("new"), &v));
    OK(store_rec_get(f->s, a, "keep", SLICE_STR("old"), &v)); /* another kind */
    /* every record of one account and kind */
    OK(store_batch_new(&bt));
    OK(store_batch_recs_delete(bt, a, kind));
    OK(store_commit(f->s, bt, true));
    store_batch_free(bt);
    assert_int_equal(store_rec_get(f->s, a, kind, SLICE_STR("edge"), &v), ERR_NOT_FOUND);
    assert_int_equal(store_rec_get(f->s, a, kind, SLICE_STR("new"), &v), ERR_NOT_FOUND);
    OK(store_rec_get(f->s, a, "keep", SLICE_STR("old"), &v));
    /* bad arguments change nothing */
    OK(store_batch_new(&bt));
    assert_int_equal(store_batch_recs_delete(bt, a, ""), ERR_INVAL);
    assert_int_equal(store_batch_recs_delete(bt, NULL, kind), ERR_INVAL);
    assert_int_equal(store_batch_recs_expire(bt, kind, SLICE(NULL, 0)), ERR_INVAL);
    assert_int_equal(store_batch_recs_expire(bt, "", be64(t, 5)), ERR_INVAL);
    store_batch_free(bt);
    buf_release(&v);
}

/* ------------------------------------------------------------------------ */
/* Objects and chunks                                                       */

static void
test_object_put_replace(void **state)
{
    struct fix *f = *state;
    struct store *s = f->s;
    char acct[STORE_ID_MAX];
    uid(acct, "obj");
    struct store_object got;
    int64_t seq1 = 0, seq2 = 0, seq3 = 0;
    unsigned replaced = 99;

    assert_int_equal(get_object(s, acct, "photos", 1, &got), ERR_NOT_FOUND);
    OK(put_object(s, acct, "photos", 1, 10, 2, 1000, true, &seq1, &replaced));
    assert_int_equal(replaced, 0);
    assert_true(seq1 > 0);
    OK(get_object(s, acct, "photos", 1, &got));
    struct store_object want = mkobj(acct, "photos", 1, 10, 2000, 2);
    assert_string_equal(got.account, acct);
    assert_string_equal(got.service, "photos");
    assert_memory_equal(got.name_hash, want.name_hash, STORE_HASH_LEN);
    assert_int_equal(got.name_sealed_len, want.name_sealed_len);
    assert_memory_equal(got.name_sealed, want.name_sealed, want.name_sealed_len);
    assert_int_equal(got.version, 10);
    assert_int_equal(got.seq, seq1);
    assert_int_equal(got.size, 2000);
    assert_int_equal(got.chunks, 2);
    assert_int_equal(got.cipher, 2);
    assert_int_equal(got.mtime, want.mtime);
    assert_false(got.deleted);
    OK(check_chunk(s, acct, 10, 0, 1000));
    OK(check_chunk(s, acct, 10, 1, 1000));
    assert_int_equal(check_chunk(s, acct, 10, 2, 0), ERR_NOT_FOUND);
    /* Same name in another service, or another account, is another object. */
    assert_int_equal(get_object(s, acct, "contacts", 1, &got), ERR_NOT_FOUND);
    assert_int_equal(get_object(s, "t-nobody", "photos", 1, &got), ERR_NOT_FOUND);

    /* Replacing: a new seq, and the old version's chunks are gone. */
    OK(put_object(s, acct, "photos", 1, 11, 1, 500, true, &seq2, &replaced));
    assert_int_equal(replaced, 1);
    assert_true(seq2 > seq1);
    OK(get_object(s, acct, "photos", 1, &got));
    assert_int_equal(got.version, 11);
    assert_int_equal(got.seq, seq2);
    assert_int_equal(got.size, 500);
    assert_int_equal(check_chunk(s, acct, 10, 0, 1000), ERR_NOT_FOUND);
    assert_int_equal(check_chunk(s, acct, 10, 1, 1000), ERR_NOT_FOUND);
    OK(check_chunk(s, acct, 11, 0, 500));

    /* Putting the same version again keeps its chunks. */
    struct store_batch *b;
    struct store_object o = mkobj(acct, "photos", 1, 11, 500, 1);
    OK(store_batch_new(&b));
    OK(store_batch_object_put(b, &o));
    OK(store_commit(s, b, true));
    assert_int_equal(store_batch_replaced(b), 1);
    seq3 = store_batch_seq(b);
    assert_true(seq3 > seq2);
    store_batch_free(b);
    OK(check_chunk(s, acct, 11, 0, 500));
}

static void
test_object_delete(void **state)
{
    struct fix *f = *state;
    struct store *s = f->s;
    char acct[STORE_ID_MAX];
    uid(acct, "del");
    struct store_object got;
    int64_t seq_put = 0, seq_del = 0, seq_again = 0;
    unsigned replaced = 99;

    assert_int_equal(delete_object(s, acct, "sms", 5, 1, NULL), ERR_NOT_FOUND);
    OK(put_object(s, acct, "sms", 5, 50, 3, 100, true, &seq_put, NULL));
    OK(delete_object(s, acct, "sms", 5, 1800000000, &seq_del));
    assert_true(seq_del > seq_put);
    assert_int_equal(get_object(s, acct, "sms", 5, &got), ERR_NOT_FOUND);
    for (uint32_t i = 0; i < 3; i++)
        assert_int_equal(check_chunk(s, acct, 50, i, 100), ERR_NOT_FOUND);
    /* A tombstone is not live: deleting again fails. */
    assert_int_equal(delete_object(s, acct, "sms", 5, 1, NULL), ERR_NOT_FOUND);

    /* Putting over a tombstone makes a live object; nothing was replaced. */
    OK(put_object(s, acct, "sms", 5, 51, 1, 10, true, &seq_again, &replaced));
    assert_int_equal(replaced, 0);
    assert_true(seq_again > seq_del);
    OK(get_object(s, acct, "sms", 5, &got));
    assert_int_equal(got.version, 51);
    OK(check_chunk(s, acct, 51, 0, 10));
}

static void
test_chunks(void **state)
{
    struct fix *f = *state;
    struct store *s = f->s;
    char acct[STORE_ID_MAX];
    uid(acct, "chk");
    struct store_batch *b;
    struct buf out;
    buf_init(&out, 4 << 20);

    /* A chunk put replaces the chunk at the same index. */
    OK(store_batch_new(&b));
    OK(store_batch_chunk_put(b, acct, 7, 0, SLICE_STR("first")));
    OK(store_batch_chunk_put(b, acct, 7, 0, SLICE_STR("second")));
    OK(store_batch_chunk_put(b, acct, 7, 1, SLICE("", 0)));
    OK(store_commit(s, b, false));
    store_batch_free(b);
    OK(buf_adds(&out, "junk"));
    OK(store_chunk_get(s, acct, 7, 0, &out));
    assert_int_equal(out.len, 6);
    assert_memory_equal(out.data, "second", 6);
    OK(store_chunk_get(s, acct, 7, 1, &out));
    assert_int_equal(out.len, 0);
    assert_int_equal(store_chunk_get(s, acct, 8, 0, &out), ERR_NOT_FOUND);

    /* A large chunk, and a reader's limit. */
    size_t big = 3u << 20;
    uint8_t *data = malloc(big);
    assert_non_null(data);
    chunk_fill(data, big, 9, 0);
    OK(store_batch_new(&b));
    OK(store_batch_chunk_put(b, acct, 9, 0, SLICE(data, big)));
    OK(store_commit(s, b, true));
    store_batch_free(b);
    free(data);
    OK(check_chunk(s, acct, 9, 0, big));
    struct buf small;
    buf_init(&small, 1000);
    assert_int_equal(store_chunk_get(s, acct, 9, 0, &small), ERR_LIMIT);
    buf_release(&small);

    /* Held for a long read: the same bytes; only indexes below n. */
    struct store_chunks *held = NULL;
    OK(store_chunks_open(s, acct, 9, 1, &held));
    OK(check_held(held, 9, 0, big));
    assert_int_equal(store_chunks_read(held, 1, &out), ERR_INVAL);
    store_chunks_close(held);
    store_chunks_close(NULL);
    assert_int_equal(store_chunks_open(s, acct, 9, 0, &held), ERR_INVAL);
    assert_null(held);
    /* a version without chunks: the open or the read says so */
    int rc = store_chunks_open(s, acct, 8, 2, &held);
    if (!rc) {
        assert_int_equal(store_chunks_read(held, 0, &out), ERR_NOT_FOUND);
        store_chunks_close(held);
    } else {
        assert_int_equal(rc, ERR_NOT_FOUND);
    }

    /* chunks_delete drops every chunk of one version only. */
    OK(store_batch_new(&b));
    OK(store_batch_chunks_delete(b, acct, 7));
    OK(store_commit(s, b, true));
    store_batch_free(b);
    assert_int_equal(store_chunk_get(s, acct, 7, 0, &out), ERR_NOT_FOUND);
    assert_int_equal(store_chunk_get(s, acct, 7, 1, &out), ERR_NOT_FOUND);
    OK(check_chunk(s, acct, 9, 0, big));
    buf_release(&out);
}

/* ------------------------------------------------------------------------ */
/* The change feed                                                          */

struct feed_rows {
    int n;
    int stop_after; /* return 7 after this many rows; 0: never */
    int64_t seq[16];
    int64_t version[16];
    bool deleted[16];
};

static int
feed_collect(void *ctx, const struct store_object *o)
{
    struct feed_rows *r = ctx;
    if (r->n < 16) {
        r->seq[r->n] = o->seq;
        r->version[r->n] = o->version;
        r->deleted[r->n] = o->deleted;
    }
    r->n++;
    return r->stop_after && r->n >= r->stop_after ? 7 : 0;
}

static void
test_feed(void **state)
{
    struct fix *f = *state;
    struct store *s = f->s;
    char acct[STORE_ID_MAX];
    uid(acct, "feed");
    int64_t s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, sother = 0;
    OK(put_object(s, acct, "contacts", 1, 101, 1, 10, true, &s1, NULL));
    OK(put_object(s, acct, "contacts", 2, 102, 1, 10, false, &s2, NULL));
    OK(put_object(s, acct, "contacts", 3, 103, 1, 10, true, &s3, NULL));
    OK(put_object(s, acct, "calllog", 1, 104, 1, 10, true, &sother, NULL));
    OK(delete_object(s, acct, "contacts", 2, 1, &s4));
    OK(put_object(s, acct, "contacts", 1, 105, 1, 10, true, &s5, NULL));
    assert_true(s1 < s2 && s2 < s3 && s3 < sother && sother < s4 && s4 < s5);

    /* One row per name, at its latest seq, in seq order, tombstones included. */
    struct feed_rows r = {0};
    OK(store_feed(s, acct, "contacts", 0, 100, false, feed_collect, &r));
    assert_int_equal(r.n, 3);
    assert_int_equal(r.seq[0], s3);
    assert_int_equal(r.version[0], 103);
    assert_false(r.deleted[0]);
    assert_int_equal(r.seq[1], s4);
    assert_true(r.deleted[1]);
    assert_int_equal(r.seq[2], s5);
    assert_int_equal(r.version[2], 105);

    /* since is exclusive. */
    memset(&r, 0, sizeof(r));
    OK(store_feed(s, acct, "contacts", s3, 100, false, feed_collect, &r));
    assert_int_equal(r.n, 2);
    assert_int_equal(r.seq[0], s4);
    memset(&r, 0, sizeof(r));
    OK(store_feed(s, acct, "contacts", s5, 100, false, feed_collect, &r));
    assert_int_equal(r.n, 0);

    /* limit. */
    memset(&r, 0, sizeof(r));
    OK(store_feed(s, acct, "contacts", 0, 2, false, feed_collect, &r));
    assert_int_equal(r.n, 2);
    assert_int_equal(r.seq[1], s4);
    memset(&r, 0, sizeof(r));
    OK(store_feed(s, acct, "contacts", 0, 0, false, feed_collect, &r));
    assert_int_equal(r.n, 0);

    /* The callback stops the feed and its value is returned. */
    memset(&r, 0, sizeof(r));
    r.stop_after = 1;
    assert_int_equal(store_feed(s, acct, "contacts", 0, 100, false, feed_collect, &r), 7);
    assert_int_equal(r.n, 1);

    /* Other services and accounts are apart. */
    memset(&r, 0, sizeof(r));
    OK(store_feed(s, acct, "calllog", 0, 100, false, feed_collect, &r));
    assert_int_equal(r.n, 1);
    assert_int_equal(r.seq[0], sother);
    memset(&r, 0, sizeof(r));
    OK(store_feed(s, "t-nobody", "contacts", 0, 100, false, feed_collect, &r));
    assert_int_equal(r.n, 0);
}

/* What a feed with data brought: per row, chunk 0's length (-1: none) and whether it is right. */
struct feed_data {
    int n;
    int64_t version[8];
    long len[8];
    bool right[8];
};

static int
feed_data_row(void *ctx, const struct store_object *o)
{
    struct feed_data *d = ctx;
    if (d->n >= 8)
        return ERR_INTERNAL;
    d->version[d->n] = o->version;
    d->len[d->n] = o->chunk0.p ? (long)o->chunk0.len : -1;
    d->right[d->n] = o->chunk0.p && !chunk_is(o->chunk0, o->version, 0, o->chunk0.len);
    d->n++;
    return 0;
}

/*
 * A feed with data brings chunk 0 of small one-chunk objects, the bytes
 * stored; not of objects of several chunks, of large ones, or tombstones;
 * a feed without data brings none.
 */
static void
test_feed_data(void **state)
{
    struct fix *f = *state;
    char acct[STORE_ID_MAX];
    uid(acct, "feeddata");
    OK(put_object(f->s, acct, "contacts", 1, 201, 1, 100, true, NULL, NULL));
    OK(put_object(f->s, acct, "contacts", 2, 202, 2, 100, true, NULL, NULL));
    OK(put_object(f->s, acct, "contacts", 3, 203, 1, STORE_FEED_DATA_MAX + 1, true, NULL, NULL));
    OK(put_object(f->s, acct, "contacts", 4, 204, 1, 100, true, NULL, NULL));
    OK(delete_object(f->s, acct, "contacts", 4, 1, NULL));

    struct feed_data d = {0};
    OK(store_feed(f->s, acct, "contacts", 0, 100, true, feed_data_row, &d));
    assert_int_equal(d.n, 4);
    assert_int_equal(d.version[0], 201);
    assert_int_equal(d.len[0], 100);
    assert_true(d.right[0]);
    assert_int_equal(d.len[1], -1); /* two chunks */
    assert_int_equal(d.len[2], -1); /* too large */
    assert_int_equal(d.len[3], -1); /* a tombstone */

    memset(&d, 0, sizeof(d));
    OK(store_feed(f->s, acct, "contacts", 0, 100, false, feed_data_row, &d));
    assert_int_equal(d.n, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(d.len[i], -1);
}

/* A feed callback that writes: reads must not block the writer. */
struct feed_writer {
    struct store *s;
    const char *account;
    int rows;
    int rc;
};

static int
feed_write(void *ctx, const struct store_object *o)
{
    struct feed_writer *fw = ctx;
    (void)o;
    fw->rows++;
    if (!fw->rc)
        fw->rc = put_object(fw->s, fw->account, "contacts", 100 + fw->rows, 1000 + fw->rows, 1, 10,
                            true, NULL, NULL);
    return 0;
}

static void
test_read_during_write(void **state)
{
    struct fix *f = *state;
    char acct[STORE_ID_MAX];
    uid(acct, "rdw");
    for (int i = 1; i <= 3; i++)
        OK(put_object(f->s, acct, "contacts", i, i, 1, 10, true, NULL, NULL));
    struct feed_writer fw = {f->s, acct, 0, 0};
    OK(store_feed(f->s, acct, "contacts", 0, 100, false, feed_write, &fw));
    OK(fw.rc);
    /* The feed read one snapshot: the rows written meanwhile were not in it. */
    assert_int_equal(fw.rows, 3);
    struct feed_rows r = {0};
    OK(store_feed(f->s, acct, "contacts", 0, 100, false, feed_collect, &r));
    assert_int_equal(r.n, 6);
}

/* ------------------------------------------------------------------------ */
/* Batches                                                                  */

/*
 * store_submit / store_wait: batches in flight together commit in the
 * order submitted, each gives its own result (a failing one does not touch
 * the others), an empty batch settles at once, and a batch can be reused.
 */
static void
test_submit_wait(void **state)
{
    struct fix *f = *state;
    struct store *s = f->s;
    char acct[STORE_ID_MAX], key[STORE_META_KEY_MAX];
    uid(acct, "sw");
    uid(key, "swk");
    struct store_account a = mkaccount(acct);
    OK(account_insert(s, &a));
    struct store_batch *b[4];
    for (int i = 0; i < 4; i++)
        OK(store_batch_new(&b[i]));
    OK(store_batch_chunk_put(b[0], acct, 5, 0, SLICE_STR("chunk-0")));
    OK(store_batch_account_insert(b[1], &a)); /* taken: fails alone */
    OK(store_batch_chunk_put(b[2], acct, 5, 1, SLICE_STR("chunk-1")));
    for (int i = 0; i < 4; i++) /* b[3] is empty */
        store_submit(s, b[i], i == 2);
    assert_int_equal(store_wait(b[3]), 0);
    assert_int_equal(store_wait(b[2]), 0);
    assert_int_equal(store_wait(b[1]), ERR_EXISTS);
    assert_int_equal(store_wait(b[0]), 0);
    struct buf v;
    buf_init(&v, 100);
    OK(store_chunk_get(s, acct, 5, 0, &v));
    assert_memory_equal(v.data, "chunk-0", 7);
    OK(store_chunk_get(s, acct, 5, 1, &v));
    assert_memory_equal(v.data, "chunk-1", 7);

    /* reused once waited for: store_commit is submit then wait */
    OK(store_batch_meta_put(b[3], key, SLICE_STR("again")));
    store_submit(s, b[3], true);
    OK(store_wait(b[3]));
    OK(store_meta_get(s, key, &v));
    assert_string_equal(v.data, "again");
    buf_release(&v);
    for (int i = 0; i < 4; i++)
        store_batch_free(b[i]);
}

static void
test_batch_atomic(void **state)
{
    struct fix *f = *state;
    struct store *s = f->s;
    char acct[STORE_ID_MAX], fresh[STORE_ID_MAX], key[STORE_META_KEY_MAX];
    uid(acct, "atom");
    uid(fresh, "atom2");
    uid(key, "atomk");
    struct store_account a = mkaccount(acct), b2 = mkaccount(fresh), got;
    OK(account_insert(s, &a));
    uint64_t objs0, bytes0, objs1, bytes1;
    stats(s, &objs0, &bytes0);

    /* A taken account id fails the whole batch. */
    struct store_batch *b;
    OK(store_batch_new(&b));
    OK(store_batch_meta_put(b, key, SLICE_STR("x")));
    OK(store_batch_account_insert(b, &b2));
    OK(store_batch_account_insert(b, &a));
    assert_int_equal(store_commit(s, b, true), ERR_EXISTS);
    store_batch_free(b);
    struct buf v;
    buf_init(&v, 100);
    assert_int_equal(store_meta_get(s, key, &v), ERR_NOT_FOUND);
    assert_int_equal(store_account_get(s, fresh, &got), ERR_NOT_FOUND);

    /* A delete of a missing object fails its batch: no chunk, no object. */
    uint8_t h[STORE_HASH_LEN];
    name_hash(h, 999);
    struct store_object o = mkobj(acct, "photos", 1, 77, 4, 1);
    OK(store_batch_new(&b));
    OK(store_batch_chunk_put(b, acct, 77, 0, SLICE_STR("data")));
    OK(store_batch_object_put(b, &o));
    OK(store_batch_object_delete(b, acct, "photos", h, 5));
    assert_int_equal(store_commit(s, b, true), ERR_NOT_FOUND);
    assert_int_equal(store_batch_seq(b), 0);
    assert_int_equal(store_batch_replaced(b), 0);
    struct store_object gobj;
    assert_int_equal(get_object(s, acct, "photos", 1, &gobj), ERR_NOT_FOUND);
    assert_int_equal(store_chunk_get(s, acct, 77, 0, &v), ERR_NOT_FOUND);
    stats(s, &objs1, &bytes1);
    assert_int_equal(objs1, objs0);
    assert_int_equal(bytes1, bytes0);

    /* The same batch without the bad op commits, seq and all. */
    store_batch_free(b);
    OK(store_batch_new(&b));
    OK(store_batch_chunk_put(b, acct, 77, 0, SLICE_STR("data")));
    OK(store_batch_object_put(b, &o));
    OK(store_commit(s, b, true));
    assert_true(store_batch_seq(b) > 0);
    store_batch_free(b);
    OK(store_chunk_get(s, acct, 77, 0, &v));
    buf_release(&v);

    /* An empty batch commits as a no-op. */
    OK(store_batch_new(&b));
    OK(store_commit(s, b, true));
    assert_int_equal(store_batch_seq(b), 0);
    store_batch_free(b);
}

static void
test_batch_replaced_seq(void **state)
{
    struct fix *f = *state;
    struct store *s = f->s;
    char acct[STORE_ID_MAX];
    uid(acct, "rep");
    OK(put_object(s, acct, "photos", 1, 1, 0, 0, false, NULL, NULL));
    OK(put_object(s, acct, "photos", 2, 2, 0, 0, false, NULL, NULL));
    OK(put_object(s, acct, "photos", 3, 3, 0, 0, false, NULL, NULL));
    OK(delete_object(s, acct, "photos", 3, 1, NULL));

    /* Two live objects replaced, one tombstone and one new name not counted. */
    struct store_batch *b;
    OK(store_batch_new(&b));
    for (int name = 1; name <= 4; name++) {
        struct store_object o = mkobj(acct, "photos", name, 10 + name, 0, 0);
        OK(store_batch_object_put(b, &o));
    }
    OK(store_commit(s, b, false));
    assert_int_equal(store_batch_replaced(b), 2);
    int64_t last = store_batch_seq(b);
    store_batch_free(b);

    /* The batch's seq is the last op's; its ops got increasing seqs. */
    struct store_object got;
    int64_t prev = 0;
    for (int name = 1; name <= 4; name++) {
        OK(get_object(s, acct, "photos", name, &got));
        assert_true(got.seq > prev);
        prev = got.seq;
    }
    assert_int_equal(prev, last);
}

static void
test_invalid_args(void **state)
{
    struct fix *f = *state;
    struct store_batch *b;
    OK(store_batch_new(&b));
    char longid[STORE_ID_MAX + 10];
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = 0;
    char longkey[STORE_META_KEY_MAX + 1];
    memset(longkey, 'k', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = 0;

    assert_int_equal(store_batch_meta_put(b, longkey, SLICE_STR("v")), ERR_INVAL);
    assert_int_equal(store_batch_meta_put(b, "", SLICE_STR("v")), ERR_INVAL);
    assert_int_equal(store_batch_chunk_put(b, longid, 1, 0, SLICE_STR("v")), ERR_INVAL);
    assert_int_equal(store_batch_chunk_put(b, "", 1, 0, SLICE_STR("v")), ERR_INVAL);
    assert_int_equal(store_batch_chunks_delete(b, longid, 1), ERR_INVAL);
    assert_int_equal(store_batch_svckey_insert(b, "a", "averyveryverylongservice", SLICE("", 0)),
                     ERR_INVAL);
    uint8_t w[STORE_WRAPPED_MAX + 1] = {0};
    assert_int_equal(store_batch_svckey_insert(b, "a", "sms", SLICE(w, sizeof(w))), ERR_INVAL);

    struct store_account a = mkaccount("x");
    memset(a.id, 'i', sizeof(a.id)); /* no NUL */
    assert_int_equal(store_batch_account_insert(b, &a), ERR_INVAL);
    a = mkaccount("x");
    a.wrapped_len = STORE_WRAPPED_MAX + 1;
    assert_int_equal(store_batch_account_insert(b, &a), ERR_INVAL);

    struct store_object o = mkobj("x", "photos", 1, 1, 1, 1);
    o.name_sealed_len = STORE_NAME_SEALED_MAX + 1;
    assert_int_equal(store_batch_object_put(b, &o), ERR_INVAL);
    o = mkobj("x", "", 1, 1, 1, 1);
    assert_int_equal(store_batch_object_put(b, &o), ERR_INVAL);
    o = mkobj("x", "photos", 1, 1, 1, 1);
    o.size = UINT64_MAX;
    assert_int_equal(store_batch_object_put(b, &o), ERR_INVAL);
    uint8_t h[STORE_HASH_LEN] = {0};
    assert_int_equal(store_batch_object_delete(b, "x", "", h, 1), ERR_INVAL);

    /* Nothing invalid was appended: the batch is still empty. */
    OK(store_commit(f->s, b, true));
    assert_int_equal(store_batch_seq(b), 0);
    store_batch_free(b);
    store_batch_free(NULL);

    struct store_object got;
    assert_int_equal(store_object_get(f->s, longid, "photos", h, &got), ERR_INVAL);
    struct store_account ga;
    assert_int_equal(store_account_get(f->s, longid, &ga), ERR_INVAL);
}

/* ------------------------------------------------------------------------ */
/* Counters                                                                 */

static void
test_stats(void **state)
{
    struct fix *f = *state;
    struct store *s = f->s;
    char acct[STORE_ID_MAX];
    uid(acct, "stats");
    uint64_t o0, b0, o, b;
    stats(s, &o0, &b0);
    OK(put_object(s, acct, "photos", 1, 1, 1, 10, false, NULL, NULL));
    OK(put_object(s, acct, "photos", 2, 2, 2, 10, false, NULL, NULL));
    stats(s, &o, &b);
    assert_int_equal(o - o0, 2);
    assert_int_equal(b - b0, 30);
    OK(put_object(s, acct, "photos", 2, 3, 1, 5, false, NULL, NULL)); /* replace: 20 -> 5 */
    stats(s, &o, &b);
    assert_int_equal(o - o0, 2);
    assert_int_equal(b - b0, 15);
    OK(delete_object(s, acct, "photos", 1, 1, NULL));
    stats(s, &o, &b);
    assert_int_equal(o - o0, 1);
    assert_int_equal(b - b0, 5);
    OK(put_object(s, acct, "photos", 1, 4, 1, 7, false, NULL, NULL)); /* over a tombstone */
    stats(s, &o, &b);
    assert_int_equal(o - o0, 2);
    assert_int_equal(b - b0, 12);
    /* A failed batch counts nothing. */
    assert_int_equal(delete_object(s, acct, "photos", 9, 1, NULL), ERR_NOT_FOUND);
    stats(s, &o, &b);
    assert_int_equal(o - o0, 2);

    /* The counters survive a reopen. */
    reopen(f);
    stats(f->s, &o, &b);
    assert_int_equal(o - o0, 2);
    assert_int_equal(b - b0, 12);
}

/* ------------------------------------------------------------------------ */
/* Reopening                                                                */

static void
test_reopen_orphans(void **state)
{
    struct fix *f = *state;
    char acct[STORE_ID_MAX], key[STORE_META_KEY_MAX];
    uid(acct, "reo");
    uid(key, "reok");
    struct store_account a = mkaccount(acct), ga;
    OK(account_insert(f->s, &a));
    OK(meta_put(f->s, key, "kept"));
    int64_t seq = 0, seq_del = 0;
    OK(put_object(f->s, acct, "photos", 1, 1, 2, 100, false, &seq, NULL));
    OK(put_object(f->s, acct, "photos", 2, 2, 1, 100, false, NULL, NULL));
    OK(delete_object(f->s, acct, "photos", 2, 1, &seq_del));

    /* An upload that never got its object row: chunks only. */
    struct store_batch *b;
    OK(store_batch_new(&b));
    OK(store_batch_chunk_put(b, acct, 3, 0, SLICE_STR("orphan0")));
    OK(store_batch_chunk_put(b, acct, 3, 1, SLICE_STR("orphan1")));
    OK(store_commit(f->s, b, false));
    store_batch_free(b);
    struct buf v;
    buf_init(&v, 1000);
    OK(store_chunk_get(f->s, acct, 3, 0, &v));

    reopen(f);
    OK(store_account_get(f->s, acct, &ga));
    assert_memory_equal(ga.wrapped_key, a.wrapped_key, a.wrapped_len);
    OK(store_meta_get(f->s, key, &v));
    assert_string_equal(v.data, "kept");
    struct store_object got;
    OK(get_object(f->s, acct, "photos", 1, &got));
    assert_int_equal(got.seq, seq);
    OK(check_chunk(f->s, acct, 1, 0, 100));
    OK(check_chunk(f->s, acct, 1, 1, 100));
    assert_int_equal(get_object(f->s, acct, "photos", 2, &got), ERR_NOT_FOUND);
    assert_int_equal(store_chunk_get(f->s, acct, 3, 0, &v), ERR_NOT_FOUND);
    assert_int_equal(store_chunk_get(f->s, acct, 3, 1, &v), ERR_NOT_FOUND);
    buf_release(&v);

    /* seq carries on above everything stored. */
    int64_t seq2 = 0;
    OK(put_object(f->s, acct, "photos", 4, 4, 1, 1, true, &seq2, NULL));
    assert_true(seq2 > seq_del);
}

/* ------------------------------------------------------------------------ */
/* Concurrency                                                              */

struct worker {
    pthread_t th;
    struct store *s;
    int id;
    int n;
    const char *account;
    bool durable;
    atomic_int *failures;
    /* test_seq_order */
    atomic_llong *max_done;
    int64_t *seqs;
    /* test_group_isolation */
    int *results;
};

/* Many threads at once, one third of their batches invalid. */
static void *
isolation_worker(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < w->n; i++) {
        int name = w->id * 10000 + i;
        char key[STORE_META_KEY_MAX];
        snprintf(key, sizeof(key), "%.40s-%d", w->account, name);
        struct store_batch *b = NULL;
        struct store_object o = mkobj(w->account, "sms", name, name, 3, 1);
        uint8_t missing[STORE_HASH_LEN];
        name_hash(missing, -1 - name);
        int rc = store_batch_new(&b);
        if (!rc)
            rc = store_batch_meta_put(b, key, SLICE_STR("v"));
        if (!rc)
            rc = store_batch_chunk_put(b, w->account, name, 0, SLICE_STR("abc"));
        if (!rc)
            rc = store_batch_object_put(b, &o);
        if (!rc && i % 3 == 1)
            rc = store_batch_object_delete(b, w->account, "sms", missing, 1);
        if (!rc)
            rc = store_commit(w->s, b, i % 2 == 0);
        w->results[i] = rc;
        store_batch_free(b);
    }
    return NULL;
}

static void
test_group_isolation(void **state)
{
    struct fix *f = *state;
    enum { T = 16, N = 60 };
    char acct[STORE_ID_MAX];
    uid(acct, "iso");
    struct worker w[T];
    static int results[T][N];
    for (int t = 0; t < T; t++) {
        w[t] = (struct worker){.s = f->s, .id = t, .n = N, .account = acct, .results = results[t]};
        assert_int_equal(pthread_create(&w[t].th, NULL, isolation_worker, &w[t]), 0);
    }
    for (int t = 0; t < T; t++)
        pthread_join(w[t].th, NULL);

    struct buf v;
    buf_init(&v, 100);
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < N; i++) {
            int name = t * 10000 + i;
            char key[STORE_META_KEY_MAX];
            snprintf(key, sizeof(key), "%.40s-%d", acct, name);
            struct store_object got;
            if (i % 3 == 1) {
                assert_int_equal(results[t][i], ERR_NOT_FOUND);
                assert_int_equal(store_meta_get(f->s, key, &v), ERR_NOT_FOUND);
                assert_int_equal(get_object(f->s, acct, "sms", name, &got), ERR_NOT_FOUND);
                assert_int_equal(store_chunk_get(f->s, acct, name, 0, &v), ERR_NOT_FOUND);
            } else {
                OK(results[t][i]);
                OK(store_meta_get(f->s, key, &v));
                OK(get_object(f->s, acct, "sms", name, &got));
                OK(store_chunk_get(f->s, acct, name, 0, &v));
            }
        }
    }
    buf_release(&v);
}

/* Each commit's seq must exceed every seq returned before it started. */
static void *
seq_worker(void *arg)
{
    struct worker *w = arg;
    int64_t prev = 0;
    for (int i = 0; i < w->n; i++) {
        int64_t before = atomic_load(w->max_done), seq = 0;
        int rc = put_object(w->s, w->account, "contacts", w->id * 10000 + i, w->id * 10000 + i, 0,
                            0, i % 4 == 0, &seq, NULL);
        if (rc || seq <= before || seq <= prev)
            atomic_fetch_add(w->failures, 1);
        prev = seq;
        w->seqs[i] = seq;
        long long cur = atomic_load(w->max_done);
        while (cur < seq && !atomic_compare_exchange_weak(w->max_done, &cur, seq))
            ;
    }
    return NULL;
}

struct seq_check {
    int64_t last;
    int n;
    int bad;
};

static int
seq_check_cb(void *ctx, const struct store_object *o)
{
    struct seq_check *c = ctx;
    if (o->seq <= c->last)
        c->bad++;
    c->last = o->seq;
    c->n++;
    return 0;
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void
test_seq_order(void **state)
{
    struct fix *f = *state;
    enum { T = 8, N = 150 };
    char acct[STORE_ID_MAX];
    uid(acct, "seq");
    atomic_int failures = 0;
    atomic_llong max_done = 0;
    static int64_t seqs[T * N];
    struct worker w[T];
    for (int t = 0; t < T; t++) {
        w[t] = (struct worker){.s = f->s,
                               .id = t,
                               .n = N,
                               .account = acct,
                               .failures = &failures,
                               .max_done = &max_done,
                               .seqs = seqs + t * N};
        assert_int_equal(pthread_create(&w[t].th, NULL, seq_worker, &w[t]), 0);
    }
    for (int t = 0; t < T; t++)
        pthread_join(w[t].th, NULL);
    assert_int_equal(atomic_load(&failures), 0);
    qsort(seqs, T * N, sizeof(seqs[0]), cmp_i64);
    for (int i = 1; i < T * N; i++)
        assert_true(seqs[i] > seqs[i - 1]);
    struct seq_check c = {0};
    OK(store_feed(f->s, acct, "contacts", 0, 100000, false, seq_check_cb, &c));
    assert_int_equal(c.n, T * N);
    assert_int_equal(c.bad, 0);
    assert_int_equal(c.last, seqs[T * N - 1]);
}

static void *
load_worker(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < w->n; i++) {
        int name = w->id * 100000 + i;
        if (put_object(w->s, w->account, "photos", name, name, 1, 1024, w->durable, NULL, NULL))
            atomic_fetch_add(w->failures, 1);
    }
    return NULL;
}

/* Runs threads x n commits of one 1 KiB object each; returns commits/s. */
static double
run_load(struct store *s, const char *account, int threads, int n, bool durable,
         atomic_int *failures)
{
    struct worker *w = calloc((size_t)threads, sizeof(*w));
    assert_non_null(w);
    uint64_t t0 = clock_mono_ns();
    for (int t = 0; t < threads; t++) {
        w[t] = (struct worker){
            .s = s, .id = t, .n = n, .account = account, .durable = durable, .failures = failures};
        assert_int_equal(pthread_create(&w[t].th, NULL, load_worker, &w[t]), 0);
    }
    for (int t = 0; t < threads; t++)
        pthread_join(w[t].th, NULL);
    uint64_t dt = clock_mono_ns() - t0;
    free(w);
    return (double)threads * n / ((double)dt / 1e9);
}

static void
test_concurrent_commits(void **state)
{
    struct fix *f = *state;
    enum { T = 16, N = 500 };
    char acct[STORE_ID_MAX];
    uid(acct, "conc");
    atomic_int failures = 0;
    uint64_t o0, b0, o, b;
    stats(f->s, &o0, &b0);
    double rate = run_load(f->s, acct, T, N, true, &failures);
    assert_int_equal(atomic_load(&failures), 0);
    printf("# %d threads x %d durable commits: %.0f commits/s\n", T, N, rate);
    stats(f->s, &o, &b);
    assert_int_equal(o - o0, T * N);
    assert_int_equal(b - b0, (uint64_t)T * N * 1024);
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < N; i++) {
            int name = t * 100000 + i;
            struct store_object got;
            OK(get_object(f->s, acct, "photos", name, &got));
            assert_int_equal(got.version, name);
            assert_int_equal(got.size, 1024);
            OK(check_chunk(f->s, acct, name, 0, 1024));
        }
    }
}

static void
test_throughput(void **state)
{
    struct fix *f = *state;
    int n = 100;
    const char *env = getenv("OIKOS_TEST_STORE_BENCH_N");
    uint64_t v;
    if (env && !parse_u64(env, 1, 1000000, &v))
        n = (int)v;
    char acct[STORE_ID_MAX];
    uid(acct, "bench");
    atomic_int failures = 0;
    double rate = run_load(f->s, acct, 64, n, true, &failures);
    assert_int_equal(atomic_load(&failures), 0);
    printf("# 64 threads x %d durable 1 KiB object commits: %.0f commits/s\n", n, rate);
}

/* Commits non-durable objects until the process is killed. */
static void *
kill_noise(void *arg)
{
    struct worker *w = arg;
    for (int i = 0;; i++)
        if (put_object(w->s, w->account, "sms", i, 500000 + i, 1, 100, false, NULL, NULL))
            return NULL;
}

/*
 * A process killed with SIGKILL while committing loses no acknowledged
 * durable commit, and seq goes on above every seq it acknowledged.
 */
static void
test_kill_keeps_acked(void **state)
{
    struct fix *f = *state;
    enum { N = 150 };
    char acct[STORE_ID_MAX];
    uid(acct, "kill");
    store_close(f->s);
    f->s = NULL;
    int p[2];
    OK(pipe(p));
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct store *s;
        close(p[0]);
        if (store_open(&s, f->url))
            _exit(2);
        struct worker noise = {.s = s, .account = acct};
        pthread_t th;
        if (pthread_create(&th, NULL, kill_noise, &noise))
            _exit(3);
        for (int i = 0; i < N; i++) {
            int64_t seq = 0;
            if (put_object(s, acct, "photos", i, 1 + i, 2, 700, true, &seq, NULL))
                _exit(4);
            if (write(p[1], &seq, sizeof(seq)) != (ssize_t)sizeof(seq))
                _exit(5);
        }
        raise(SIGKILL);
        _exit(6);
    }
    close(p[1]);
    int64_t acked[N], seq;
    int n = 0;
    while (n < N && read(p[0], &seq, sizeof(seq)) == (ssize_t)sizeof(seq))
        acked[n++] = seq;
    close(p[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    assert_int_equal(n, N);

    OK(store_open(&f->s, f->url));
    int64_t max = 0;
    for (int i = 0; i < N; i++) {
        struct store_object got;
        OK(get_object(f->s, acct, "photos", i, &got));
        assert_int_equal(got.seq, acked[i]);
        OK(check_chunk(f->s, acct, 1 + i, 0, 700));
        OK(check_chunk(f->s, acct, 1 + i, 1, 700));
        max = acked[i] > max ? acked[i] : max;
    }
    int64_t after = 0;
    OK(put_object(f->s, acct, "photos", N, 1 + N, 1, 10, true, &after, NULL));
    assert_true(after > max);
}

/* ------------------------------------------------------------------------ */
/* SQLite only                                                              */

/* Whether the file at path contains needle. */
static bool
file_contains(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return false;
    size_t cap = 1 << 20, len = 0, n;
    char *data = malloc(cap);
    assert_non_null(data);
    while ((n = fread(data + len, 1, cap - len, fp)) > 0) {
        len += n;
        if (len == cap) {
            cap *= 2;
            data = realloc(data, cap);
            assert_non_null(data);
        }
    }
    fclose(fp);
    bool found = memmem(data, len, needle, strlen(needle)) != NULL;
    free(data);
    return found;
}

static int
put_marked(struct store *s, const char *acct, int name, int64_t version, const char *mark)
{
    char data[3000];
    size_t len = 0;
    while (len + strlen(mark) < sizeof(data)) {
        memcpy(data + len, mark, strlen(mark));
        len += strlen(mark);
    }
    struct store_batch *b = NULL;
    struct store_object o = mkobj(acct, "photos", name, version, len, 1);
    int rc = store_batch_new(&b);
    if (!rc)
        rc = store_batch_chunk_put(b, acct, version, 0, SLICE(data, len));
    if (!rc)
        rc = store_batch_object_put(b, &o);
    if (!rc)
        rc = store_commit(s, b, true);
    store_batch_free(b);
    return rc;
}

/* Write system calls of this process so far (/proc/self/io), -1 if unknown. */
static long
write_calls(void)
{
    FILE *fp = fopen("/proc/self/io", "r");
    char line[128];
    long n = -1;
    while (fp && fgets(line, sizeof(line), fp))
        if (sscanf(line, "syscw: %ld", &n) == 1)
            break;
    if (fp)
        fclose(fp);
    return n;
}

/*
 * The writer's WAL frames go out in a few large writes (sq_vfs.c): a commit
 * of 400 chunks of 2 KiB (over 200 frames, two write calls each if written
 * one by one) takes fewer than 50 write calls, and all of it reads back
 * after a reopen.
 */
static void
test_sqlite_wal_writes(void **state)
{
    struct fix *f = *state;
    if (!f->own_dir)
        skip();
    const char *acct = "t-walw";
    uint8_t data[2048];
    struct store_batch *b = NULL;
    long before = write_calls();
    if (before < 0)
        skip();
    OK(store_batch_new(&b));
    for (int i = 0; i < 400; i++) {
        chunk_fill(data, sizeof(data), 5000 + i, 0);
        OK(store_batch_chunk_put(b, acct, 5000 + i, 0, SLICE(data, sizeof(data))));
        struct store_object o = mkobj(acct, "contacts", i, 5000 + i, sizeof(data), 1);
        OK(store_batch_object_put(b, &o));
    }
    OK(store_commit(f->s, b, true));
    store_batch_free(b);
    long calls = write_calls() - before;
    assert_true(calls > 0);
    assert_true(calls < 50);
    reopen(f);
    for (int i = 0; i < 400; i++)
        OK(check_chunk(f->s, acct, 5000 + i, 0, sizeof(data)));
}

static void
test_sqlite_secure_delete(void **state)
{
    struct fix *f = *state;
    if (!f->own_dir)
        skip();
    char db[PATH_MAX + 16], wal[PATH_MAX + 16];
    snprintf(db, sizeof(db), "%s/store.db", f->dir);
    snprintf(wal, sizeof(wal), "%s/store.db-wal", f->dir);
    const char *acct = "t-sd";
    OK(put_marked(f->s, acct, 1, 1, "CIPHERTEXT-ONE-"));
    OK(put_marked(f->s, acct, 2, 2, "CIPHERTEXT-TWO-"));
    OK(put_marked(f->s, acct, 3, 3, "CIPHERTEXT-SIX-"));
    reopen(f);
    /* The control: stored data is in the file. */
    assert_true(file_contains(db, "CIPHERTEXT-ONE-"));
    assert_true(file_contains(db, "CIPHERTEXT-TWO-"));

    OK(delete_object(f->s, acct, "photos", 1, 1, NULL));
    OK(put_marked(f->s, acct, 2, 4, "CIPHERTEXT-NEW-")); /* replaces version 2 */
    store_close(f->s);
    f->s = NULL;
    assert_false(file_contains(db, "CIPHERTEXT-ONE-"));
    assert_false(file_contains(db, "CIPHERTEXT-TWO-"));
    assert_false(file_contains(wal, "CIPHERTEXT-ONE-"));
    assert_true(file_contains(db, "CIPHERTEXT-NEW-"));
    assert_true(file_contains(db, "CIPHERTEXT-SIX-"));
    OK(store_open(&f->s, f->url));
}

/* Puts objects of 4 chunks of 16 KiB, non-durable, from one thread. */
struct wal_writer {
    struct store *s;
    const char *account;
    int first, n;
    atomic_int *failures;
};

static void *
wal_write(void *arg)
{
    struct wal_writer *w = arg;
    for (int i = 0; i < w->n; i++)
        if (put_object(w->s, w->account, "photos", w->first + i, w->first + i, 4, 16384, false,
                       NULL, NULL))
            atomic_fetch_add(w->failures, 1);
    return NULL;
}

static long
file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) ? -1 : (long)st.st_size;
}

/* The path of the chunk file of (acct, version) in f's SQLite store. */
static void
chunk_file(const struct fix *f, char *out, size_t cap, const char *acct, int64_t version)
{
    snprintf(out, cap, "%s/store.db.chunks/%s.%016llx", f->dir, acct, (unsigned long long)version);
}

/*
 * SQLite keeps chunks of 64 KiB and more in a file per object version: the
 * bytes are there and not in the database, they read back across a
 * reopen, and the file goes once no row refers to it (a replaced object,
 * an upload without its object row, a stray file after a crash).
 */
static void
test_sqlite_chunk_files(void **state)
{
    struct fix *f = *state;
    if (!f->own_dir)
        skip();
    char db[PATH_MAX + 16], wal[PATH_MAX + 16], big[PATH_MAX * 2], small[PATH_MAX * 2];
    char newer[PATH_MAX * 2], orphan[PATH_MAX * 2], stray[PATH_MAX * 2], other[PATH_MAX * 2];
    snprintf(db, sizeof(db), "%s/store.db", f->dir);
    snprintf(wal, sizeof(wal), "%s/store.db-wal", f->dir);
    const char *acct = "t-cf";
    const size_t len = 100000;

    OK(put_object(f->s, acct, "photos", 1, 11, 3, len, false, NULL, NULL));
    OK(put_object(f->s, acct, "photos", 2, 12, 1, 100, true, NULL, NULL));
    chunk_file(f, big, sizeof(big), acct, 11);
    chunk_file(f, small, sizeof(small), acct, 12);
    assert_int_equal(file_size(big), 3 * (long)len);
    assert_int_equal(file_size(small), -1); /* small chunks stay in rows */
    struct stat st;
    OK(stat(big, &st));
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(other, sizeof(other), "%s/store.db.chunks", f->dir);
    OK(stat(other, &st));
    assert_int_equal(st.st_mode & 0777, 0700);

    /* the chunk bytes are in the file only */
    uint8_t *want = malloc(len);
    assert_non_null(want);
    chunk_fill(want, len, 11, 1);
    char needle[65];
    memcpy(needle, want + 1000, 64);
    needle[64] = 0;
    free(want);
    assert_int_equal(strlen(needle), 64); /* the pattern has no zero byte there */
    assert_true(file_contains(big, needle));
    reopen(f);
    assert_false(file_contains(db, needle));
    assert_false(file_contains(wal, needle));
    for (uint32_t i = 0; i < 3; i++)
        OK(check_chunk(f->s, acct, 11, i, len));
    OK(check_chunk(f->s, acct, 12, 0, 100));

    /* replaced: the old version's file goes once the deletion is durable
     * (between the writer's groups: after the next commit at the latest);
     * a read that held the version before goes on reading it */
    struct store_chunks *held = NULL, *rows = NULL;
    OK(store_chunks_open(f->s, acct, 11, 3, &held));
    OK(store_chunks_open(f->s, acct, 12, 1, &rows));
    OK(check_held(held, 11, 0, len));
    OK(put_object(f->s, acct, "photos", 1, 13, 2, len, true, NULL, NULL));
    OK(meta_put(f->s, "t-cf-after", "x"));
    assert_int_equal(file_size(big), -1);
    chunk_file(f, newer, sizeof(newer), acct, 13);
    assert_int_equal(file_size(newer), 2 * (long)len);
    assert_int_equal(store_chunk_get(f->s, acct, 11, 0, &(struct buf){0}), ERR_NOT_FOUND);
    OK(check_chunk(f->s, acct, 13, 1, len));
    for (uint32_t i = 0; i < 3; i++)
        OK(check_held(held, 11, i, len));
    OK(check_held(rows, 12, 0, 100)); /* in its row: looked up when read */
    store_chunks_close(held);
    store_chunks_close(rows);
    assert_int_equal(store_chunks_open(f->s, acct, 11, 3, &held), ERR_NOT_FOUND);

    /* an upload that never got its object row, and a stray file: both go
     * at the next start; a file of another name stays */
    struct store_batch *b;
    uint8_t *data = calloc(1, len);
    assert_non_null(data);
    OK(store_batch_new(&b));
    OK(store_batch_chunk_put(b, acct, 14, 0, SLICE(data, len)));
    OK(store_commit(f->s, b, true));
    store_batch_free(b);
    free(data);
    chunk_file(f, orphan, sizeof(orphan), acct, 14);
    assert_int_equal(file_size(orphan), (long)len);
    chunk_file(f, stray, sizeof(stray), "t-gone", 5);
    snprintf(other, sizeof(other), "%s/store.db.chunks/README", f->dir);
    FILE *fp = fopen(stray, "w");
    assert_non_null(fp);
    fclose(fp);
    fp = fopen(other, "w");
    assert_non_null(fp);
    fclose(fp);
    reopen(f);
    assert_int_equal(file_size(orphan), -1);
    assert_int_equal(file_size(stray), -1);
    assert_int_equal(file_size(other), 0);
    assert_int_equal(file_size(newer), 2 * (long)len);
    OK(check_chunk(f->s, acct, 13, 0, len));

    /* deleted: its file goes too */
    OK(delete_object(f->s, acct, "photos", 1, 2, NULL));
    OK(meta_put(f->s, "t-cf-after", "y"));
    assert_int_equal(file_size(newer), -1);

    /* an online backup's hold (PATH-backup-hold): no file goes while it
     * exists, not between groups and not at a start; then both go */
    char hold[PATH_MAX + 32], held1[PATH_MAX * 2], held2[PATH_MAX * 2];
    snprintf(hold, sizeof(hold), "%s/store.db-backup-hold", f->dir);
    OK(put_object(f->s, acct, "photos", 4, 16, 1, len, true, NULL, NULL));
    OK(put_object(f->s, acct, "photos", 5, 17, 1, len, true, NULL, NULL));
    chunk_file(f, held1, sizeof(held1), acct, 16);
    chunk_file(f, held2, sizeof(held2), acct, 17);
    fp = fopen(hold, "w");
    assert_non_null(fp);
    fclose(fp);
    OK(delete_object(f->s, acct, "photos", 4, 3, NULL));
    OK(meta_put(f->s, "t-cf-after", "z"));
    assert_int_equal(file_size(held1), (long)len);
    reopen(f);
    assert_int_equal(file_size(held1), (long)len);
    OK(delete_object(f->s, acct, "photos", 5, 4, NULL));
    OK(meta_put(f->s, "t-cf-after", "w"));
    assert_int_equal(file_size(held2), (long)len);
    OK(unlink(hold));
    OK(meta_put(f->s, "t-cf-after", "v"));
    OK(meta_put(f->s, "t-cf-after", "u"));         /* a round between groups, unheld */
    assert_int_equal(file_size(held2), -1);        /* noted while held: goes after */
    assert_int_equal(file_size(held1), (long)len); /* noted by the store before its reopen */
    reopen(f);
    assert_int_equal(file_size(held1), -1); /* the start's sweep */

    /* a file cut short (not what was written): the read says so */
    OK(put_object(f->s, acct, "photos", 3, 15, 1, len, true, NULL, NULL));
    chunk_file(f, big, sizeof(big), acct, 15);
    OK(truncate(big, (off_t)len / 2));
    assert_int_equal(check_chunk(f->s, acct, 15, 0, len), ERR_CORRUPT);
}

/*
 * The frames of a WAL's current log: those from the start of the file that
 * carry the salts of its header (a WAL that starts over gets new salts and
 * overwrites from the start; what lies beyond belongs to an older log). -1
 * if the file cannot be read.
 */
static long
wal_log_frames(const char *path)
{
    uint8_t hdr[32], fh[24];
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    long n = -1;
    if (fread(hdr, 1, sizeof(hdr), f) == sizeof(hdr)) {
        long page = (long)hdr[8] << 24 | (long)hdr[9] << 16 | (long)hdr[10] << 8 | hdr[11];
        n = 0;
        while (fseek(f, 32 + n * (24 + page), SEEK_SET) == 0 &&
               fread(fh, 1, sizeof(fh), f) == sizeof(fh) && !memcmp(fh + 8, hdr + 16, 8))
            n++;
    }
    fclose(f);
    return n;
}

/*
 * The WAL is copied back while commits go on and stays bounded however fast
 * the disk takes the copies (the writer copies the rest itself past 65,536
 * frames), and once the store is idle a log of SQ_WAL_IDLE_PAGES frames or
 * more is copied back and started over (store_sqlite.c). Every object reads
 * back. How large the WAL gets within the bound depends on the disk's
 * speed, so that is not asserted.
 */
#define WAL_HARD_BYTES (65536L * (4096 + 24) + 32 + 256L * (4096 + 24)) /* + one group */
#define WAL_IDLE_FRAMES 4000                                            /* SQ_WAL_IDLE_PAGES */
#define WAL_LIMIT_BYTES 67108864L                                       /* SQ_WAL_LIMIT_BYTES */

static void
test_sqlite_checkpoint_under_load(void **state)
{
    struct fix *f = *state;
    if (!f->own_dir)
        skip();
    enum { T = 4, N = 400 }; /* 4 x 400 x 64 KiB = 100 MiB: 25,600 WAL pages a burst */
    char wal[PATH_MAX + 16];
    snprintf(wal, sizeof(wal), "%s/store.db-wal", f->dir);
    const char *acct = "t-ckpt";
    atomic_int failures = 0;
    for (int burst = 0; burst < 2; burst++) {
        pthread_t th[T];
        struct wal_writer w[T];
        for (int t = 0; t < T; t++) {
            w[t] = (struct wal_writer){f->s, acct, burst * 100000 + t * 1000, N, &failures};
            assert_int_equal(pthread_create(&th[t], NULL, wal_write, &w[t]), 0);
        }
        for (int t = 0; t < T; t++)
            pthread_join(th[t], NULL);
        assert_int_equal(atomic_load(&failures), 0);
        long busy = file_size(wal), log_busy = wal_log_frames(wal), log_idle = log_busy;
        /*
         * idle: a long log is copied back, and the next commit that writes
         * a page (a changed value: SQLite writes no page for an unchanged
         * one) starts it over
         */
        for (int i = 0; i < 600 && log_idle >= WAL_IDLE_FRAMES; i++) {
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL);
            char tick[16];
            snprintf(tick, sizeof(tick), "%d.%d", burst, i);
            OK(meta_put(f->s, "tick", tick));
            log_idle = wal_log_frames(wal);
        }
        long idle = file_size(wal);
        printf("# WAL after 100 MiB burst %d: %ld bytes, a log of %ld frames;"
               " idle: %ld bytes, %ld frames\n",
               burst + 1, busy, log_busy, idle, log_idle);
        assert_true(busy > 0 && log_busy >= 0);
        assert_true(busy <= WAL_HARD_BYTES);
        assert_true(log_idle >= 0 && log_idle < WAL_IDLE_FRAMES);
        if (log_busy >= WAL_IDLE_FRAMES) /* started over: cut back to journal_size_limit */
            assert_true(idle <= WAL_LIMIT_BYTES);
    }
    for (int burst = 0; burst < 2; burst++)
        for (int t = 0; t < T; t++)
            for (int i = 0; i < N; i += 37) {
                int name = burst * 100000 + t * 1000 + i;
                struct store_object got;
                OK(get_object(f->s, acct, "photos", name, &got));
                assert_int_equal(got.size, 4 * 16384);
                OK(check_chunk(f->s, acct, name, 3, 16384));
            }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_urls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meta, setup, teardown),
        cmocka_unit_test_setup_teardown(test_account, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sessions_of, setup, teardown),
        cmocka_unit_test_setup_teardown(test_svckey, setup, teardown),
        cmocka_unit_test_setup_teardown(test_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_records_expire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_object_put_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_object_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_feed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_feed_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_during_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submit_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_replaced_seq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_orphans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seq_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throughput, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill_keeps_acked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_secure_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_wal_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_chunk_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_checkpoint_under_load, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
