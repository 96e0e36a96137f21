/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_store_audit.c: the conformance suite of the audit operations of
 * store.h (store_ops version 3: leaves, owners' index, tree nodes), beside
 * test_store.c and like it written against the public interface only, so
 * that it runs unchanged on every back-end. The store comes from
 * OIKOS_TEST_STORE_URL if set (shared by every test: the log may hold
 * leaves already, so every check is relative to store_audit_size, and tags
 * and node indexes are drawn at random), else an SQLite file in a fresh
 * mkdtemp directory per test. Single-threaded.
 */
#include "base/common.h"

#include <limits.h>
#include <setjmp.h>
#include <sodium.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "base/buf.h"
#include "store/store.h"
#include "store/store_int.h" /* STORE_AUDIT_EPOCH_BITS */

#define OK(expr) assert_int_equal((expr), 0)

struct fix {
    struct store *s;
    char dir[PATH_MAX];
    char url[PATH_MAX + 16];
    bool own_dir;
};

static int
setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    if (!f || sodium_init() < 0)
        return -1;
    const char *env = getenv("OIKOS_TEST_STORE_URL");
    if (env && *env) {
        snprintf(f->url, sizeof(f->url), "%s", env);
    } else {
        snprintf(f->dir, sizeof(f->dir), "/tmp/oikos-store3-XXXXXX");
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

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

struct leaf {
    uint64_t index;
    char text[64];
    bool has_tag;
    uint8_t tag[STORE_HASH_LEN];
};

struct seen {
    struct leaf *v;
    size_t n, cap;
};

static int
collect(void *ctx, uint64_t index, struct slice leaf, const uint8_t *tag)
{
    struct seen *x = ctx;
    if (x->n == x->cap) {
        x->cap = x->cap ? 2 * x->cap : 64;
        x->v = realloc(x->v, x->cap * sizeof(*x->v));
        if (!x->v)
            return ERR_NOMEM;
    }
    struct leaf *l = &x->v[x->n++];
    memset(l, 0, sizeof(*l));
    l->index = index;
    snprintf(l->text, sizeof(l->text), "%.*s", (int)leaf.len, (const char *)leaf.p);
    l->has_tag = tag != NULL;
    if (tag)
        memcpy(l->tag, tag, STORE_HASH_LEN);
    return 0;
}

static int
stop_after_two(void *ctx, uint64_t index, struct slice leaf, const uint8_t *tag)
{
    struct seen *x = ctx;
    int rc = collect(ctx, index, leaf, tag);
    return rc ? rc : x->n == 2 ? 77 : 0;
}

/* Appends n leaves "<prefix>-<i>" in one durable batch, each with tag (may be NULL). */
static int
append_n(struct store *s, const char *prefix, int n, const uint8_t *tag, int64_t *first)
{
    struct store_batch *b = NULL;
    char text[64];
    int rc = store_batch_new(&b);
    for (int i = 0; !rc && i < n; i++) {
        snprintf(text, sizeof(text), "%s-%d", prefix, i);
        rc = store_batch_audit_append(b, SLICE_STR(text), tag);
    }
    if (!rc)
        rc = store_commit(s, b, true);
    if (!rc && first)
        *first = store_batch_audit_index(b);
    store_batch_free(b);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */

static void
test_append_numbers_leaves_in_commit_order(void **state)
{
    struct fix *f = *state;
    uint8_t tag[STORE_HASH_LEN];
    randombytes_buf(tag, sizeof(tag));
    uint64_t base = store_audit_size(f->s);

    struct store_batch *b = NULL;
    OK(store_batch_new(&b));
    assert_int_equal(store_batch_audit_index(b), -1);
    OK(store_batch_audit_append(b, SLICE_STR("zero"), NULL));
    OK(store_batch_audit_append(b, SLICE_STR("one"), tag));
    OK(store_batch_meta_put(b, "audit-test", SLICE_STR("with a leaf")));
    OK(store_batch_audit_append(b, SLICE_STR("two"), NULL));
    OK(store_commit(f->s, b, true));
    assert_int_equal(store_batch_audit_index(b), (int64_t)base);
    store_batch_free(b);
    assert_int_equal(store_audit_size(f->s), base + 3);

    struct seen x = {0};
    OK(store_audit_leaves(f->s, base, base + 100, collect, &x)); /* end clipped */
    assert_int_equal(x.n, 3);
    const char *want[] = {"zero", "one", "two"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(x.v[i].index, base + i);
        assert_string_equal(x.v[i].text, want[i]);
        assert_int_equal(x.v[i].has_tag, i == 1);
    }
    assert_memory_equal(x.v[1].tag, tag, STORE_HASH_LEN);

    /* A batch that fails gives its numbers back; no leaf of it is kept. */
    uint8_t missing[STORE_HASH_LEN] = {1, 2, 3};
    OK(store_batch_new(&b));
    OK(store_batch_audit_append(b, SLICE_STR("lost"), NULL));
    OK(store_batch_object_delete(b, "audit-nobody", "photos", missing, 1));
    assert_int_equal(store_commit(f->s, b, true), ERR_NOT_FOUND);
    assert_int_equal(store_batch_audit_index(b), -1);
    store_batch_free(b);
    assert_int_equal(store_audit_size(f->s), base + 3);
    int64_t first = -1;
    OK(append_n(f->s, "after", 1, NULL, &first));
    assert_int_equal(first, (int64_t)base + 3);

    /* A callback's non-zero value stops the listing and is returned. */
    x.n = 0;
    assert_int_equal(store_audit_leaves(f->s, base, base + 4, stop_after_two, &x), 77);
    assert_int_equal(x.n, 2);
    /* An empty or inverted range lists nothing. */
    x.n = 0;
    OK(store_audit_leaves(f->s, base + 2, base + 2, collect, &x));
    OK(store_audit_leaves(f->s, base + 3, base + 1, collect, &x));
    OK(store_audit_leaves(f->s, base + 4, UINT64_MAX, collect, &x));
    assert_int_equal(x.n, 0);
    free(x.v);
}

/* Many leaves, read back whole and in slices (past any page a back-end uses). */
static void
test_many_leaves(void **state)
{
    struct fix *f = *state;
    enum { N = 2600 };
    uint64_t base = store_audit_size(f->s);
    for (int i = 0; i < N / 650; i++) {
        char prefix[16];
        snprintf(prefix, sizeof(prefix), "m%d", i);
        OK(append_n(f->s, prefix, 650, NULL, NULL));
    }
    assert_int_equal(store_audit_size(f->s), base + N);
    struct seen x = {0};
    OK(store_audit_leaves(f->s, base, base + N, collect, &x));
    assert_int_equal(x.n, N);
    for (size_t i = 0; i < x.n; i++) {
        char want[32];
        snprintf(want, sizeof(want), "m%zu-%zu", i / 650, i % 650);
        assert_int_equal(x.v[i].index, base + i);
        assert_string_equal(x.v[i].text, want);
    }
    x.n = 0;
    OK(store_audit_leaves(f->s, base + 999, base + 2001, collect, &x));
    assert_int_equal(x.n, 1002);
    assert_int_equal(x.v[0].index, base + 999);
    assert_int_equal(x.v[1001].index, base + 2000);
    free(x.v);
}

static void
test_owners_index(void **state)
{
    struct fix *f = *state;
    uint8_t mine[STORE_HASH_LEN], other[STORE_HASH_LEN];
    randombytes_buf(mine, sizeof(mine));
    randombytes_buf(other, sizeof(other));
    uint64_t n = 99;
    OK(store_audit_count(f->s, mine, &n));
    assert_int_equal(n, 0);

    /* 1,200 leaves of mine between others', indexed later in one op. */
    enum { N = 1200 };
    struct store_audit_owner *idx = calloc(N, sizeof(*idx));
    assert_non_null(idx);
    for (int i = 0; i < N; i++) {
        int64_t first = -1;
        if (i % 100 == 0)
            OK(append_n(f->s, "other", 1, other, NULL));
        char text[32];
        snprintf(text, sizeof(text), "mine-%d", i);
        struct store_batch *b = NULL;
        OK(store_batch_new(&b));
        OK(store_batch_audit_append(b, SLICE_STR(text), mine));
        OK(store_commit(f->s, b, false));
        first = store_batch_audit_index(b);
        store_batch_free(b);
        memcpy(idx[i].tag, mine, STORE_HASH_LEN);
        idx[i].index = (uint64_t)first;
    }
    struct store_batch *b = NULL;
    OK(store_batch_new(&b));
    OK(store_batch_audit_owners(b, idx, N));
    OK(store_commit(f->s, b, true));
    store_batch_free(b);
    OK(store_audit_count(f->s, mine, &n));
    assert_int_equal(n, N);
    OK(store_audit_count(f->s, other, &n));
    assert_int_equal(n, 0); /* appended with the tag, never indexed */

    struct seen x = {0};
    OK(store_audit_find(f->s, mine, 0, SIZE_MAX, collect, &x));
    assert_int_equal(x.n, N);
    for (size_t i = 0; i < x.n; i++) {
        char want[32];
        snprintf(want, sizeof(want), "mine-%zu", i);
        assert_int_equal(x.v[i].index, idx[i].index);
        assert_string_equal(x.v[i].text, want);
        assert_true(x.v[i].has_tag);
        assert_memory_equal(x.v[i].tag, mine, STORE_HASH_LEN);
    }
    /* From an index on, at most limit. */
    x.n = 0;
    OK(store_audit_find(f->s, mine, idx[500].index, 3, collect, &x));
    assert_int_equal(x.n, 3);
    assert_int_equal(x.v[0].index, idx[500].index);
    assert_int_equal(x.v[2].index, idx[502].index);
    x.n = 0;
    OK(store_audit_find(f->s, mine, idx[N - 1].index + 1, 10, collect, &x));
    OK(store_audit_find(f->s, mine, 0, 0, collect, &x));
    assert_int_equal(x.n, 0);

    /* An entry of the index is written once: a second is refused, with its batch. */
    OK(store_batch_new(&b));
    OK(store_batch_meta_put(b, "audit-owner-dup", SLICE_STR("never")));
    OK(store_batch_audit_owners(b, idx + 7, 1));
    assert_int_equal(store_commit(f->s, b, true), ERR_EXISTS);
    store_batch_free(b);
    struct buf v;
    buf_init(&v, 100);
    assert_int_equal(store_meta_get(f->s, "audit-owner-dup", &v), ERR_NOT_FOUND);
    buf_release(&v);
    OK(store_audit_count(f->s, mine, &n));
    assert_int_equal(n, N);
    free(x.v);
    free(idx);
}

/* Appends unowned leaves until the log holds size of them. */
static void
fill_to(struct store *s, uint64_t size)
{
    while (store_audit_size(s) < size) {
        uint64_t n = size - store_audit_size(s);
        OK(append_n(s, "fill", n > 8192 ? 8192 : (int)n, NULL, NULL));
    }
}

/*
 * The owners' index is kept in epochs of 2^STORE_AUDIT_EPOCH_BITS leaves:
 * an owner's leaves on both sides of an epoch's end, and in a later epoch,
 * are all found, counted and paged through in order.
 */
static void
test_owners_index_epochs(void **state)
{
    struct fix *f = *state;
    const uint64_t epoch = (uint64_t)1 << STORE_AUDIT_EPOCH_BITS;
    uint8_t mine[STORE_HASH_LEN], other[STORE_HASH_LEN];
    randombytes_buf(mine, sizeof(mine));
    randombytes_buf(other, sizeof(other));
    struct store_audit_owner own[4];
    int64_t at[4];
    OK(append_n(f->s, "mine0", 1, mine, &at[0]));
    uint64_t next = (store_audit_size(f->s) / epoch + 1) * epoch; /* the next epoch's first */
    fill_to(f->s, next - 1);
    OK(append_n(f->s, "mine1", 1, mine, &at[1])); /* the epoch's last leaf */
    OK(append_n(f->s, "mine2", 1, mine, &at[2])); /* the next one's first */
    fill_to(f->s, next + epoch + 5);
    OK(append_n(f->s, "mine3", 1, mine, &at[3])); /* two epochs on */
    assert_int_equal(at[1], next - 1);
    assert_int_equal(at[2], next);
    for (int i = 0; i < 4; i++) {
        memcpy(own[i].tag, mine, STORE_HASH_LEN);
        own[i].index = (uint64_t)at[i];
    }
    struct store_batch *b = NULL;
    OK(store_batch_new(&b));
    OK(store_batch_audit_owners(b, own, 4));
    OK(store_commit(f->s, b, true));
    store_batch_free(b);

    uint64_t n = 0;
    OK(store_audit_count(f->s, mine, &n));
    assert_int_equal(n, 4);
    OK(store_audit_count(f->s, other, &n));
    assert_int_equal(n, 0);
    struct seen x = {0};
    OK(store_audit_find(f->s, mine, 0, SIZE_MAX, collect, &x));
    assert_int_equal(x.n, 4);
    for (int i = 0; i < 4; i++) {
        char want[16];
        snprintf(want, sizeof(want), "mine%d-0", i);
        assert_int_equal(x.v[i].index, at[i]);
        assert_string_equal(x.v[i].text, want);
    }
    /* pages that end at, start at and cross an epoch's end */
    x.n = 0;
    OK(store_audit_find(f->s, mine, (uint64_t)at[0] + 1, 1, collect, &x));
    assert_int_equal(x.n, 1);
    assert_int_equal(x.v[0].index, at[1]);
    x.n = 0;
    OK(store_audit_find(f->s, mine, (uint64_t)at[2], 1, collect, &x));
    assert_int_equal(x.n, 1);
    assert_int_equal(x.v[0].index, at[2]);
    x.n = 0;
    OK(store_audit_find(f->s, mine, (uint64_t)at[1], 3, collect, &x));
    assert_int_equal(x.n, 3);
    assert_int_equal(x.v[0].index, at[1]);
    assert_int_equal(x.v[2].index, at[3]);
    x.n = 0;
    OK(store_audit_find(f->s, mine, (uint64_t)at[3] + 1, 10, collect, &x));
    assert_int_equal(x.n, 0);
    free(x.v);
}

/*
 * A store written before the owners' index was kept in epochs (schema
 * version 30) is brought up to date at open, every entry kept: the store is
 * built here step by step as that version left it.
 */
static void
test_owners_index_migrated(void **state)
{
    struct fix *f = *state;
    if (!f->own_dir)
        skip(); /* SQLite's file, written directly */
    store_close(f->s);
    f->s = NULL;
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/old.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE schema_version (version INTEGER NOT NULL PRIMARY"
                                  " KEY, applied BIGINT NOT NULL)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    for (size_t i = 0; i < store_migrations_len && store_migrations[i].version <= 30; i++) {
        char sql[64];
        assert_int_equal(sqlite3_exec(db, store_migrations[i].sql, NULL, NULL, NULL), SQLITE_OK);
        snprintf(sql, sizeof(sql), "INSERT INTO schema_version VALUES (%d, 0)",
                 store_migrations[i].version);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    }
    /* an owner's leaves in three epochs, another's in one */
    const int64_t mine[] = {3, 65535, 65536, 200000}, theirs = 7;
    sqlite3_stmt *leaf = NULL, *owner = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(db, "INSERT INTO audit_leaves VALUES (?1, ?2, ?3)", -1, &leaf, NULL),
        SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "INSERT INTO audit_owners VALUES (?1, ?2)", -1, &owner, NULL),
        SQLITE_OK);
    for (size_t i = 0; i <= ARRAY_SIZE(mine); i++) {
        int64_t at = i < ARRAY_SIZE(mine) ? mine[i] : theirs;
        char text[32];
        snprintf(text, sizeof(text), "old-%" PRId64, at);
        uint8_t tag[STORE_HASH_LEN];
        memset(tag, i < ARRAY_SIZE(mine) ? 'm' : 't', sizeof(tag));
        sqlite3_bind_int64(leaf, 1, at);
        sqlite3_bind_blob(leaf, 2, tag, sizeof(tag), SQLITE_TRANSIENT);
        sqlite3_bind_text(leaf, 3, text, -1, SQLITE_TRANSIENT);
        assert_int_equal(sqlite3_step(leaf), SQLITE_DONE);
        sqlite3_reset(leaf);
        sqlite3_bind_blob(owner, 1, tag, sizeof(tag), SQLITE_TRANSIENT);
        sqlite3_bind_int64(owner, 2, at);
        assert_int_equal(sqlite3_step(owner), SQLITE_DONE);
        sqlite3_reset(owner);
    }
    sqlite3_finalize(leaf);
    sqlite3_finalize(owner);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);

    char url[PATH_MAX + 32];
    snprintf(url, sizeof(url), "sqlite:%s", path);
    OK(store_open(&f->s, url));
    uint8_t tag[STORE_HASH_LEN];
    memset(tag, 'm', sizeof(tag));
    uint64_t n = 0;
    OK(store_audit_count(f->s, tag, &n));
    assert_int_equal(n, ARRAY_SIZE(mine));
    struct seen x = {0};
    OK(store_audit_find(f->s, tag, 4, SIZE_MAX, collect, &x));
    assert_int_equal(x.n, ARRAY_SIZE(mine) - 1);
    for (size_t i = 0; i < x.n; i++) {
        char want[32];
        snprintf(want, sizeof(want), "old-%" PRId64, mine[i + 1]);
        assert_int_equal(x.v[i].index, mine[i + 1]);
        assert_string_equal(x.v[i].text, want);
    }
    memset(tag, 't', sizeof(tag));
    OK(store_audit_count(f->s, tag, &n));
    assert_int_equal(n, 1);
    /* and it goes on: a new entry of the index lands in its epoch */
    struct store_audit_owner own = {.index = 200000};
    memset(own.tag, 'n', sizeof(own.tag));
    struct store_batch *b = NULL;
    OK(store_batch_new(&b));
    OK(store_batch_audit_owners(b, &own, 1));
    OK(store_commit(f->s, b, true));
    store_batch_free(b);
    x.n = 0;
    OK(store_audit_find(f->s, own.tag, 0, 10, collect, &x));
    assert_int_equal(x.n, 1);
    assert_int_equal(x.v[0].index, 200000);
    free(x.v);
}

static void
test_nodes(void **state)
{
    struct fix *f = *state;
    enum { N = 3000 };
    uint64_t start = 0;
    randombytes_buf(&start, sizeof(start));
    start = (start >> 24) | ((uint64_t)1 << 39); /* far from what a real log uses */
    struct store_audit_node *nodes = calloc(N, sizeof(*nodes)), *got = calloc(N, sizeof(*got));
    assert_non_null(nodes);
    assert_non_null(got);
    for (int i = 0; i < N; i++) {
        nodes[i].level = 1 + (uint32_t)(i % 3);
        nodes[i].index = start + (uint64_t)i;
        randombytes_buf(nodes[i].hash, STORE_HASH_LEN);
    }
    struct store_batch *b = NULL;
    OK(store_batch_new(&b));
    OK(store_batch_audit_nodes(b, nodes, N));
    OK(store_commit(f->s, b, true));
    store_batch_free(b);

    /* All at once, in another order. */
    for (int i = 0; i < N; i++) {
        got[i].level = nodes[N - 1 - i].level;
        got[i].index = nodes[N - 1 - i].index;
    }
    OK(store_audit_nodes_get(f->s, got, N));
    for (int i = 0; i < N; i++)
        assert_memory_equal(got[i].hash, nodes[N - 1 - i].hash, STORE_HASH_LEN);
    /* A few, one asked twice. */
    got[0] = nodes[5];
    got[1] = nodes[17];
    got[2] = nodes[5];
    memset(got[0].hash, 0, STORE_HASH_LEN);
    memset(got[2].hash, 0, STORE_HASH_LEN);
    OK(store_audit_nodes_get(f->s, got, 3));
    assert_memory_equal(got[0].hash, nodes[5].hash, STORE_HASH_LEN);
    assert_memory_equal(got[2].hash, nodes[5].hash, STORE_HASH_LEN);
    OK(store_audit_nodes_get(f->s, got, 0));
    /* Same index at another level: not there. */
    got[0] = nodes[0];
    got[0].level = 4;
    assert_int_equal(store_audit_nodes_get(f->s, got, 1), ERR_NOT_FOUND);
    got[1] = nodes[1];
    got[0] = nodes[0];
    got[0].index = start + N + 10;
    assert_int_equal(store_audit_nodes_get(f->s, got, 2), ERR_NOT_FOUND);

    /* A node, once written, never changes: the op fails whole, with its batch. */
    struct store_audit_node again[2] = {nodes[N - 1], nodes[0]};
    again[0].index = start + N + 20; /* new */
    again[1].hash[0] ^= 1;           /* exists */
    OK(store_batch_new(&b));
    OK(store_batch_meta_put(b, "audit-node-dup", SLICE_STR("never")));
    OK(store_batch_audit_nodes(b, again, 2));
    assert_int_equal(store_commit(f->s, b, true), ERR_EXISTS);
    store_batch_free(b);
    got[0] = again[0];
    assert_int_equal(store_audit_nodes_get(f->s, got, 1), ERR_NOT_FOUND);
    got[0] = nodes[0];
    OK(store_audit_nodes_get(f->s, got, 1));
    assert_memory_equal(got[0].hash, nodes[0].hash, STORE_HASH_LEN);
    struct buf v;
    buf_init(&v, 100);
    assert_int_equal(store_meta_get(f->s, "audit-node-dup", &v), ERR_NOT_FOUND);
    buf_release(&v);
    free(nodes);
    free(got);
}

static void
test_invalid_args(void **state)
{
    (void)state;
    struct store_batch *b = NULL;
    uint8_t big[STORE_AUDIT_LEAF_MAX + 1] = {0};
    struct store_audit_node nd = {.level = 64, .index = 1};
    struct store_audit_owner ow = {{0}, 1};
    OK(store_batch_new(&b));
    assert_int_equal(store_batch_audit_append(b, SLICE(NULL, 0), NULL), ERR_INVAL);
    assert_int_equal(store_batch_audit_append(b, SLICE(big, sizeof(big)), NULL), ERR_INVAL);
    OK(store_batch_audit_append(b, SLICE(big, STORE_AUDIT_LEAF_MAX), NULL));
    assert_int_equal(store_batch_audit_nodes(b, &nd, 1), ERR_INVAL);
    nd.level = 63;
    nd.index = 2; /* index << 63 would overflow */
    assert_int_equal(store_batch_audit_nodes(b, &nd, 1), ERR_INVAL);
    assert_int_equal(store_batch_audit_nodes(b, &nd, 0), ERR_INVAL);
    assert_int_equal(store_batch_audit_owners(b, &ow, 0), ERR_INVAL);
    assert_int_equal(store_batch_audit_owners(b, &ow, STORE_AUDIT_NODES_MAX + 1), ERR_INVAL);
    store_batch_free(b);
}

struct big_check {
    const uint8_t *want;
    bool same;
};

static int
big_same(void *ctx, uint64_t index, struct slice leaf, const uint8_t *tag)
{
    struct big_check *chk = ctx;
    (void)index;
    (void)tag;
    chk->same = leaf.len == STORE_AUDIT_LEAF_MAX && !memcmp(leaf.p, chk->want, leaf.len);
    return 0;
}

/* The largest leaf, and the log's size, survive a reopen; numbering goes on. */
static void
test_reopen(void **state)
{
    struct fix *f = *state;
    static uint8_t big[STORE_AUDIT_LEAF_MAX];
    randombytes_buf(big, sizeof(big));
    struct store_batch *b = NULL;
    OK(store_batch_new(&b));
    OK(store_batch_audit_append(b, SLICE(big, sizeof(big)), NULL));
    OK(store_commit(f->s, b, false));
    int64_t at = store_batch_audit_index(b);
    store_batch_free(b);
    uint64_t size = store_audit_size(f->s);
    assert_int_equal(size, (uint64_t)at + 1);

    store_close(f->s);
    f->s = NULL;
    OK(store_open(&f->s, f->url));
    assert_int_equal(store_audit_size(f->s), size);
    struct seen x = {0};
    int64_t first = -1;
    OK(append_n(f->s, "reopened", 1, NULL, &first));
    assert_int_equal(first, (int64_t)size);
    x.n = 0;
    OK(store_audit_leaves(f->s, (uint64_t)at, size, collect, &x));
    assert_int_equal(x.n, 1);
    free(x.v);
    /* the big leaf, byte for byte */
    struct big_check chk = {big, false};
    OK(store_audit_leaves(f->s, (uint64_t)at, size, big_same, &chk));
    assert_true(chk.same);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_numbers_leaves_in_commit_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_many_leaves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owners_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owners_index_epochs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owners_index_migrated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
