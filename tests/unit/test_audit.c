/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_audit.c: src/audit/audit.c over a real SQLite store (a fresh mkdtemp
 * directory per test) and a real keyring (1 share of 1): the exact bytes of
 * an entry, that heads are signed over what was integrated, that every
 * proof the log serves verifies against its signed root (checked with
 * merkle.c against a root recomputed from the stored leaves), that the
 * owner's index lists exactly the owner's entries, that a reopened log
 * keeps its head and key and goes on, and that nothing is signed or served
 * while sealed beyond the last head.
 */
#include "base/common.h"

#include <limits.h>
#include <setjmp.h>
#include <sodium.h>
#include <unistd.h>

#include <cmocka.h>

#include "audit/audit.h"
#include "base/util.h"
#include "crypto/aead.h"
#include "crypto/kr.h"
#include "store/store.h"

#define OK(expr) assert_int_equal((expr), 0)

struct fix {
    char dir[PATH_MAX];
    char url[PATH_MAX + 16];
    struct store *s;
    struct kr *kr;
    struct audit *a;
    struct buf state;
    char **shares;
};

static int
setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/oikos-test-audit-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->url, sizeof(f->url), "sqlite:%s/log.db", f->dir);
    OK(store_open(&f->s, f->url));
    OK(kr_new(&f->kr));
    buf_init(&f->state, 1 << 20);
    OK(kr_init(f->kr, 1, 1, &f->state, &f->shares));
    OK(audit_open(&f->a, f->s, f->kr, "t"));
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fix *f = *state;
    char cmd[PATH_MAX + 16];
    audit_close(f->a);
    kr_shares_free(f->shares, 1);
    kr_free(f->kr);
    store_close(f->s);
    buf_release(&f->state);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Collects leaf hashes in order. */
struct hashes {
    struct merkle_hash h[512];
    size_t n;
    bool mine_only_ok;
    uint8_t tag[AUDIT_HASH_LEN];
};

static int
collect(void *ctx, uint64_t index, struct slice leaf, const uint8_t *tag)
{
    struct hashes *x = ctx;
    (void)tag;
    if (index != x->n || x->n == ARRAY_SIZE(x->h))
        return ERR_INTERNAL;
    merkle_leaf_hash(&x->h[x->n++], leaf.p, leaf.len);
    return 0;
}

static void
root_of(struct hashes *x, size_t n, struct merkle_hash *out)
{
    struct merkle_frontier fr;
    struct merkle_node nodes[65];
    size_t nn;
    merkle_frontier_init(&fr);
    for (size_t i = 0; i < n; i++)
        OK(merkle_frontier_append(&fr, &x->h[i], nodes, &nn));
    merkle_frontier_root(&fr, out);
}

static void
record(struct fix *f, const char *account, const char *action)
{
    uint8_t obj[AUDIT_HASH_LEN];
    OK(audit_object_hash(f->a, obj, SLICE_STR("some object")));
    struct audit_event ev = {AUDIT_USER, action, account, "contacts", obj, 0};
    OK(audit_record(f->a, &ev, true));
}

static void
test_entry_bytes(void **state)
{
    struct fix *f = *state;
    struct audit_head h;
    struct buf got;
    uint8_t p[AUDIT_HASH_LEN];
    char b64[AUDIT_B64_LEN], want[512];
    clock_set_fake(1700000000);
    OK(audit_record(f->a, &(struct audit_event){AUDIT_OPERATOR, "init", NULL, NULL, NULL, 0},
                    true));
    OK(audit_record(
        f->a,
        &(struct audit_event){AUDIT_USER, "session.create", "t-abc", NULL, NULL, ERR_UNAUTHORIZED},
        false));
    clock_set_fake(0);
    OK(audit_integrate(f->a));
    OK(audit_head(f->a, &h));
    assert_int_equal(h.cp.size, 2);
    assert_string_equal(h.cp.origin, "oikos/t");

    buf_init(&got, 4096);
    struct hashes x = {0};
    OK(store_audit_leaves(f->s, 0, 2, collect, &x));
    (void)got;
    assert_int_equal(x.n, 2);
    OK(audit_pseudonym(f->a, "t-abc", p));
    audit_b64(b64, p);
    snprintf(want, sizeof(want),
             "{\"v\":1,\"time\":1700000000,\"region\":\"t\",\"actor\":\"user\","
             "\"action\":\"session.create\",\"account\":\"%s\",\"service\":\"\","
             "\"object\":\"\",\"result\":\"unauthorized\"}",
             b64);
    struct merkle_hash wh;
    merkle_leaf_hash(&wh, (const uint8_t *)want, strlen(want));
    assert_memory_equal(wh.b, x.h[1].b, MERKLE_HASH_LEN);
    const char *init = "{\"v\":1,\"time\":1700000000,\"region\":\"t\",\"actor\":\"operator\","
                       "\"action\":\"init\",\"account\":\"\",\"service\":\"\",\"object\":\"\","
                       "\"result\":\"ok\"}";
    merkle_leaf_hash(&wh, (const uint8_t *)init, strlen(init));
    assert_memory_equal(wh.b, x.h[0].b, MERKLE_HASH_LEN);
    /* no identifier in clear */
    assert_null(strstr(want, "t-abc"));
    buf_release(&got);

    /* malformed events are refused */
    assert_int_equal(
        audit_record(f->a, &(struct audit_event){AUDIT_USER, "Data Read", NULL, NULL, NULL, 0},
                     false),
        ERR_INVAL);
    assert_int_equal(
        audit_record(f->a, &(struct audit_event){(enum audit_actor)9, "x", NULL, NULL, NULL, 0},
                     false),
        ERR_INVAL);
}

static void
test_heads_and_proofs(void **state)
{
    struct fix *f = *state;
    struct audit_head h;
    struct merkle_hash root, proof[MERKLE_MAX_PROOF];
    size_t n;
    assert_int_equal(audit_head(f->a, &h), ERR_NOT_FOUND);
    for (int i = 0; i < 37; i++)
        record(f, i % 3 ? "t-alice" : "t-bob", i % 2 ? "data.read" : "data.write");
    OK(audit_integrate(f->a));
    OK(audit_head(f->a, &h));
    assert_int_equal(h.cp.size, 37);

    /* the signature covers the checkpoint body */
    struct buf body;
    buf_init(&body, 512);
    OK(checkpoint_format(&body, &h.cp));
    OK(checkpoint_verify(buf_slice(&body), h.sig, h.pk));
    uint8_t pk[KR_PUBKEY_LEN];
    OK(kr_audit_pubkey(f->kr, pk));
    assert_memory_equal(pk, h.pk, sizeof(pk));
    buf_release(&body);

    struct hashes x = {0};
    OK(store_audit_leaves(f->s, 0, 37, collect, &x));
    root_of(&x, 37, &root);
    assert_memory_equal(root.b, h.cp.root.b, MERKLE_HASH_LEN);
    for (uint64_t size = 1; size <= 37; size++) {
        struct merkle_hash r;
        root_of(&x, size, &r);
        for (uint64_t i = 0; i < size; i++) {
            OK(audit_inclusion(f->a, i, size, proof, &n));
            OK(merkle_verify_inclusion(&x.h[i], i, size, &r, proof, n));
        }
        OK(audit_consistency(f->a, size, 37, proof, &n));
        OK(merkle_verify_consistency(size, 37, &r, &root, proof, n));
    }
    /* nothing beyond the signed head */
    assert_int_equal(audit_inclusion(f->a, 0, 38, proof, &n), ERR_INVAL);
    assert_int_equal(audit_consistency(f->a, 1, 38, proof, &n), ERR_INVAL);
    assert_int_equal(audit_consistency(f->a, 0, 37, proof, &n), ERR_INVAL);
}

struct mine {
    size_t n;
    uint64_t last;
    bool ordered;
};

static int
mine_cb(void *ctx, uint64_t index, struct slice leaf, const uint8_t *tag)
{
    struct mine *m = ctx;
    (void)leaf;
    (void)tag;
    if (m->n && index <= m->last)
        m->ordered = false;
    m->last = index;
    m->n++;
    return 0;
}

static void
test_owner_index(void **state)
{
    struct fix *f = *state;
    uint8_t pa[AUDIT_HASH_LEN], pb[AUDIT_HASH_LEN];
    uint64_t n = 0;
    for (int i = 0; i < 30; i++)
        record(f, i % 3 ? "t-alice" : "t-bob", "data.read");
    OK(audit_integrate(f->a));
    struct mine m = {.ordered = true};
    OK(audit_mine(f->a, "t-alice", 0, 1000, mine_cb, &m, pa));
    assert_int_equal(m.n, 20);
    assert_true(m.ordered);
    OK(audit_count(f->a, "t-alice", &n));
    assert_int_equal(n, 20);
    struct mine mb = {.ordered = true};
    OK(audit_mine(f->a, "t-bob", 0, 4, mine_cb, &mb, pb));
    assert_int_equal(mb.n, 4);
    assert_memory_not_equal(pa, pb, AUDIT_HASH_LEN);
    /* entries appended but not yet signed are not listed */
    audit_close(f->a);
    f->a = NULL;
    OK(audit_open(&f->a, f->s, f->kr, "t"));
    kr_seal(f->kr);
    struct store_batch *b = NULL;
    OK(store_batch_new(&b));
    OK(store_batch_audit_append(b, SLICE_STR("{\"x\":1}"), pa));
    OK(store_commit(f->s, b, true));
    store_batch_free(b);
    assert_int_equal(audit_integrate(f->a), ERR_SEALED);
    assert_int_equal(audit_count(f->a, "t-alice", &n), ERR_SEALED);
    /* the owners' index covers the signed tree only: 20, not 21 */
    struct mine m2 = {.ordered = true};
    OK(store_audit_find(f->s, pa, 0, 1000, mine_cb, &m2));
    assert_int_equal(m2.n, 20);
    assert_int_equal(store_audit_size(f->s), 31);
}

static void
test_reopen_keeps_head_and_goes_on(void **state)
{
    struct fix *f = *state;
    struct audit_head h1, h2;
    for (int i = 0; i < 11; i++)
        record(f, "t-carol", "data.write");
    OK(audit_integrate(f->a));
    OK(audit_head(f->a, &h1));
    audit_close(f->a);
    f->a = NULL;
    store_close(f->s);
    f->s = NULL;
    OK(store_open(&f->s, f->url));
    OK(audit_open(&f->a, f->s, f->kr, "t"));
    OK(audit_head(f->a, &h2));
    assert_memory_equal(&h1, &h2, sizeof(h1));
    struct audit_status st;
    audit_status(f->a, &st);
    assert_true(st.ok);
    assert_int_equal(st.tree_size, 11);
    for (int i = 0; i < 6; i++)
        record(f, "t-carol", "data.read");
    OK(audit_integrate(f->a));
    OK(audit_head(f->a, &h2));
    assert_int_equal(h2.cp.size, 17);
    assert_memory_equal(h1.pk, h2.pk, sizeof(h1.pk));
    assert_true(h2.cp.timestamp >= h1.cp.timestamp);
    /* the old head is a prefix of the new one */
    struct merkle_hash proof[MERKLE_MAX_PROOF];
    size_t n;
    OK(audit_consistency(f->a, 11, 17, proof, &n));
    OK(merkle_verify_consistency(11, 17, &h1.cp.root, &h2.cp.root, proof, n));
}

int
main(void)
{
    if (sodium_init() < 0 || aead_setup())
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_entry_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heads_and_proofs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owner_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_head_and_goes_on, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
