/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_migrate.c: the destination's half of moving accounts (core/migrate.c)
 * on a real region (SQLite data store and key store in a fresh mkdtemp
 * directory), fed the way the source feeds it: a batch of manifests, then
 * bundles of sections, one per account.
 *
 * - two accounts in one bundle, each ending with its root: both live, every
 *   object readable under this region's keys;
 * - an account cut across two bundles: the first stores its part without
 *   making it live, the second commits it;
 * - one root of two wrong: nothing of the bundle is stored, that account's
 *   move starts again, the other still arrives;
 * - an account that leaves (freeze, commit, shred) and comes back before
 *   the sweeper's pass: it holds only what it brought the second time;
 * - malformed bundles (truncated, lengths past the end, an account twice,
 *   a bad id, the root not last, too many sections, empty) and bundles for
 *   an account that is not arriving: refused, nothing stored.
 *
 * Each test owns its region and directory (setup/teardown). Single-threaded.
 */
#include "base/common.h"

#include <limits.h>
#include <setjmp.h>
#include <sodium.h>
#include <unistd.h>

#include <cmocka.h>

#include "audit/merkle.h"
#include "base/cfg.h"
#include "base/util.h"
#include "core/migrate.h"
#include "core/obj.h"
#include "core/region.h"
#include "store/store.h"

#define OK(expr) assert_int_equal((expr), 0)
#define FROM "sg"
#define A "sg-aaaaaaaaaaaaaaaaaaaa"
#define B "sg-bbbbbbbbbbbbbbbbbbbb"

struct fix {
    char dir[PATH_MAX];
    struct config cfg;
    struct region *r;
};

static int
setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    struct buf err;
    char **shares = NULL;
    char *token = NULL;
    unsigned progress = 0, threshold = 0;
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_migrate.XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    char *argv[] = {"--data", f->dir,         "--region", "in", "--pwhash-ops",
                    "1",      "--pwhash-mem", "8192",     NULL};
    buf_init(&err, 1024);
    if (cfg_load(&f->cfg, (int)ARRAY_SIZE(argv) - 1, argv, &err))
        return -1;
    buf_release(&err);
    OK(region_open(&f->r, &f->cfg));
    OK(region_init(f->r, 1, 1, &shares, &token));
    OK(region_unseal(f->r, shares[0], &progress, &threshold));
    region_init_free(shares, 1, token);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fix *f = *state;
    char cmd[PATH_MAX + 16];
    region_close(f->r);
    cfg_release(&f->cfg);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Begins the accounts ids (contacts on), all of them answered "receiving". */
static void
begin(struct fix *f, const char *const *ids, size_t n)
{
    json_t *arr = json_array(), *states = json_object();
    for (size_t i = 0; i < n; i++)
        OK(json_array_append_new(
            arr, json_pack("{s:s,s:s,s:I,s:s,s:[{s:s,s:b,s:I,s:s}],s:[],s:[]}", "account", ids[i],
                           "country", "IN", "created", (json_int_t)1800000000, "pwhash",
                           "$argon2id$v=19$m=8192,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaA", "consents",
                           "service", "contacts", "granted", 1, "at", (json_int_t)1800000000,
                           "policy", "2027-01", "identifiers", "sessions")));
    OK(migrate_in_begin(f->r, FROM, arr, states));
    for (size_t i = 0; i < n; i++)
        assert_string_equal(json_string_value(json_object_get(states, ids[i])), "receiving");
    json_decref(arr);
    json_decref(states);
}

static const char *
state_of(struct fix *f, const char *id)
{
    const char *st = NULL;
    OK(migrate_in_status(f->r, id, &st));
    return st;
}

static uint64_t
stored(struct fix *f, const char *id)
{
    uint64_t objects = 0, bytes = 0;
    OK(store_usage(region_store(f->r), id, "contacts", &objects, &bytes));
    return objects;
}

/* The root of one object of contacts: RFC 6962's hash of its single leaf. */
static void
root_of(const char *name, const char *data, uint8_t root[MIGRATE_ROOT_LEN])
{
    struct buf leaf;
    uint8_t h[crypto_hash_sha256_BYTES];
    struct merkle_hash m;
    buf_init(&leaf, 256);
    crypto_hash_sha256(h, (const uint8_t *)data, strlen(data));
    OK(buf_add(&leaf, "contacts", 9));
    OK(buf_adds(&leaf, name));
    OK(buf_add(&leaf, "", 1));
    OK(buf_add(&leaf, h, sizeof(h)));
    merkle_leaf_hash(&m, (const uint8_t *)leaf.data, leaf.len);
    memcpy(root, m.b, MIGRATE_ROOT_LEN);
    buf_release(&leaf);
}

static void
entry(struct buf *e, const char *service, const char *name, const void *data, size_t len)
{
    uint8_t size[8];
    be64_put(size, len);
    OK(buf_add(e, service, strlen(service) + 1));
    OK(buf_add(e, name, strlen(name) + 1));
    OK(buf_add(e, size, sizeof(size)));
    OK(buf_add(e, data, len));
}

/* Appends to bundle the section of id: the object (name, data) if name, then the root if root. */
static void
section(struct buf *bundle, const char *id, const char *name, const char *data, const uint8_t *root)
{
    struct buf e;
    uint8_t len[8];
    buf_init(&e, 1 << 20);
    if (name)
        entry(&e, "contacts", name, data, strlen(data));
    if (root)
        entry(&e, "", "root", root, MIGRATE_ROOT_LEN);
    be64_put(len, e.len);
    OK(buf_add(bundle, id, strlen(id) + 1));
    OK(buf_add(bundle, len, sizeof(len)));
    OK(buf_add(bundle, e.data, e.len));
    buf_release(&e);
}

static int
send_bundle(struct fix *f, const struct buf *bundle, struct migrate_in_result *res, size_t *n)
{
    return migrate_in_objects(f->r, FROM, buf_slice(bundle), res, n);
}

static void
assert_readable(struct fix *f, const char *id, const char *name, const char *data)
{
    struct obj_get *g = NULL;
    struct obj_info info;
    uint8_t got[256];
    size_t n = 0;
    OK(obj_get_open(&g, f->r, id, "contacts", name, strlen(name), &info));
    OK(obj_get_read(g, got, sizeof(got), &n));
    assert_int_equal(n, strlen(data));
    assert_memory_equal(got, data, n);
    obj_get_free(g);
}

static void
test_two_accounts_in_one_bundle(void **state)
{
    struct fix *f = *state;
    const char *ids[] = {A, B};
    uint8_t ra[MIGRATE_ROOT_LEN], rb[MIGRATE_ROOT_LEN];
    struct migrate_in_result res[MIGRATE_BATCH_MAX];
    struct buf bundle;
    size_t n = 0;
    begin(f, ids, 2);
    root_of("a.vcf", "BEGIN:VCARD A", ra);
    root_of("b.vcf", "BEGIN:VCARD B", rb);
    buf_init(&bundle, 1 << 20);
    section(&bundle, A, "a.vcf", "BEGIN:VCARD A", ra);
    section(&bundle, B, "b.vcf", "BEGIN:VCARD B", rb);
    OK(send_bundle(f, &bundle, res, &n));
    assert_int_equal(n, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_string_equal(res[i].id, ids[i]);
        assert_true(res[i].committed);
        assert_int_equal(res[i].objects, 1);
        assert_int_equal(res[i].total, 1);
        assert_memory_equal(res[i].root, i ? rb : ra, MIGRATE_ROOT_LEN);
        assert_string_equal(state_of(f, ids[i]), "live");
    }
    assert_readable(f, A, "a.vcf", "BEGIN:VCARD A");
    assert_readable(f, B, "b.vcf", "BEGIN:VCARD B");
    /* the same bundle again: both are live, nothing is stored twice */
    assert_int_equal(send_bundle(f, &bundle, res, &n), ERR_CONFLICT);
    assert_int_equal(stored(f, A), 1);
    buf_release(&bundle);
}

static void
test_account_cut_across_bundles(void **state)
{
    struct fix *f = *state;
    const char *ids[] = {A};
    uint8_t root[MIGRATE_ROOT_LEN];
    struct migrate_in_result res[MIGRATE_BATCH_MAX];
    struct buf b1, b2;
    size_t n = 0;
    begin(f, ids, 1);
    /* the root of two objects: MTH of their two leaves, sorted */
    struct merkle_hash l1, l2, top;
    uint8_t r1[MIGRATE_ROOT_LEN], r2[MIGRATE_ROOT_LEN];
    root_of("1.vcf", "one", r1);
    root_of("2.vcf", "two", r2);
    memcpy(l1.b, r1, sizeof(l1.b));
    memcpy(l2.b, r2, sizeof(l2.b));
    merkle_node_hash(&top, &l1, &l2);
    memcpy(root, top.b, sizeof(root));
    buf_init(&b1, 1 << 20);
    buf_init(&b2, 1 << 20);
    section(&b1, A, "1.vcf", "one", NULL);
    section(&b2, A, "2.vcf", "two", root);
    OK(send_bundle(f, &b1, res, &n));
    assert_int_equal(n, 1);
    assert_false(res[0].committed);
    assert_string_equal(state_of(f, A), "receiving");
    assert_int_equal(stored(f, A), 1);
    OK(send_bundle(f, &b2, res, &n));
    assert_true(res[0].committed);
    assert_int_equal(res[0].total, 2);
    assert_memory_equal(res[0].root, root, MIGRATE_ROOT_LEN);
    assert_string_equal(state_of(f, A), "live");
    assert_readable(f, A, "1.vcf", "one");
    assert_readable(f, A, "2.vcf", "two");
    buf_release(&b1);
    buf_release(&b2);
}

static void
test_a_wrong_root_stores_nothing(void **state)
{
    struct fix *f = *state;
    const char *ids[] = {A, B};
    uint8_t ra[MIGRATE_ROOT_LEN], wrong[MIGRATE_ROOT_LEN];
    struct migrate_in_result res[MIGRATE_BATCH_MAX];
    struct buf bundle;
    size_t n = 0;
    begin(f, ids, 2);
    root_of("a.vcf", "BEGIN:VCARD A", ra);
    root_of("b.vcf", "something else", wrong);
    buf_init(&bundle, 1 << 20);
    section(&bundle, A, "a.vcf", "BEGIN:VCARD A", ra);
    section(&bundle, B, "b.vcf", "BEGIN:VCARD B", wrong);
    assert_int_equal(send_bundle(f, &bundle, res, &n), ERR_CONFLICT);
    assert_int_equal(n, 0);
    /* A is still arriving with nothing stored; B's move starts again */
    assert_string_equal(state_of(f, A), "receiving");
    assert_int_equal(stored(f, A), 0);
    assert_string_equal(state_of(f, B), "none");
    assert_int_equal(stored(f, B), 0);
    /* begun again, B arrives with A */
    uint8_t rb[MIGRATE_ROOT_LEN];
    root_of("b.vcf", "BEGIN:VCARD B", rb);
    begin(f, ids, 2);
    buf_reset(&bundle);
    section(&bundle, A, "a.vcf", "BEGIN:VCARD A", ra);
    section(&bundle, B, "b.vcf", "BEGIN:VCARD B", rb);
    OK(send_bundle(f, &bundle, res, &n));
    assert_string_equal(state_of(f, A), "live");
    assert_string_equal(state_of(f, B), "live");
    buf_release(&bundle);
}

static void
test_bad_bundles_are_refused(void **state)
{
    struct fix *f = *state;
    const char *ids[] = {A, B};
    uint8_t ra[MIGRATE_ROOT_LEN];
    struct migrate_in_result res[MIGRATE_BATCH_MAX];
    struct buf good, bad;
    size_t n = 0;
    begin(f, ids, 2);
    root_of("a.vcf", "x", ra);
    buf_init(&good, 1 << 20);
    buf_init(&bad, 1 << 20);
    section(&good, A, "a.vcf", "x", ra);
    /* cut anywhere: a length past the end, or a header cut short */
    for (size_t cut = 1; cut < good.len; cut++) {
        struct slice s = SLICE(good.data, cut);
        assert_int_equal(migrate_in_objects(f->r, FROM, s, res, &n), ERR_INVAL);
    }
    /* empty */
    assert_int_equal(migrate_in_objects(f->r, FROM, SLICE("", 0), res, &n), ERR_INVAL);
    /* an account twice */
    buf_reset(&bad);
    section(&bad, A, "a.vcf", "x", NULL);
    section(&bad, A, "b.vcf", "y", NULL);
    assert_int_equal(send_bundle(f, &bad, res, &n), ERR_INVAL);
    /* not an account id */
    buf_reset(&bad);
    section(&bad, "sg-NOT-AN-ID", "a.vcf", "x", NULL);
    assert_int_equal(send_bundle(f, &bad, res, &n), ERR_INVAL);
    /* the root, then another object in the same section */
    buf_reset(&bad);
    {
        struct buf e;
        uint8_t len[8];
        buf_init(&e, 4096);
        entry(&e, "", "root", ra, sizeof(ra));
        entry(&e, "contacts", "a.vcf", "x", 1);
        be64_put(len, e.len);
        OK(buf_add(&bad, A, strlen(A) + 1));
        OK(buf_add(&bad, len, sizeof(len)));
        OK(buf_add(&bad, e.data, e.len));
        buf_release(&e);
    }
    assert_int_equal(send_bundle(f, &bad, res, &n), ERR_INVAL);
    /* more sections than a batch holds */
    buf_reset(&bad);
    for (int i = 0; i <= MIGRATE_BATCH_MAX; i++) {
        char id[STORE_ID_MAX];
        snprintf(id, sizeof(id), "sg-aaaaaaaaaaaaaaaaaa%c%c", 'a' + i / 26, 'a' + i % 26);
        section(&bad, id, NULL, NULL, NULL);
    }
    assert_int_equal(send_bundle(f, &bad, res, &n), ERR_INVAL);
    /* an account that is not arriving, beside one that is */
    buf_reset(&bad);
    section(&bad, A, "a.vcf", "x", NULL);
    section(&bad, "sg-cccccccccccccccccccc", "c.vcf", "z", NULL);
    assert_int_equal(send_bundle(f, &bad, res, &n), ERR_CONFLICT);
    /* from another region */
    assert_int_equal(migrate_in_objects(f->r, "us", buf_slice(&good), res, &n), ERR_CONFLICT);
    /* nothing of any of them is stored; the good bundle still goes through */
    assert_int_equal(stored(f, A), 0);
    assert_int_equal(stored(f, B), 0);
    assert_string_equal(state_of(f, A), "receiving");
    OK(send_bundle(f, &good, res, &n));
    assert_string_equal(state_of(f, A), "live");
    buf_release(&good);
    buf_release(&bad);
}

static void
test_bad_manifests_are_refused(void **state)
{
    struct fix *f = *state;
    json_t *states = json_object();
    json_t *twice = json_pack("[{s:s},{s:s}]", "account", A, "account", A);
    json_t *badid = json_pack("[{s:s}]", "account", "nope");
    json_t *empty = json_array();
    assert_int_equal(migrate_in_begin(f->r, FROM, twice, states), ERR_INVAL);
    assert_int_equal(migrate_in_begin(f->r, FROM, badid, states), ERR_INVAL);
    assert_int_equal(migrate_in_begin(f->r, FROM, empty, states), ERR_INVAL);
    assert_int_equal(migrate_in_begin(f->r, FROM, NULL, states), ERR_INVAL);
    assert_string_equal(state_of(f, A), "none");
    /* begun from sg, the same account from us is a conflict, not a second move */
    const char *ids[] = {A};
    begin(f, ids, 1);
    json_t *one =
        json_pack("[{s:s,s:s,s:I,s:s,s:[],s:[],s:[]}]", "account", A, "country", "IN", "created",
                  (json_int_t)1, "pwhash", "x", "consents", "identifiers", "sessions");
    OK(migrate_in_begin(f->r, "us", one, states));
    assert_string_equal(json_string_value(json_object_get(states, A)), "conflict");
    json_decref(one);
    json_decref(twice);
    json_decref(badid);
    json_decref(empty);
    json_decref(states);
}

static int
seen_purge(void *ctx, const char *account, int64_t version)
{
    int64_t *v = ctx;
    if (!strcmp(account, A))
        *v = version;
    return 0;
}

/*
 * An account that leaves and comes back before the sweeper's pass: the
 * shred leaves its object rows queued whole; the second arrival clears them
 * first, so it holds exactly what it brought, and the old rows' chunks wait
 * in the queue as any purge.
 */
static void
test_leaving_and_coming_back_before_the_sweep(void **state)
{
    struct fix *f = *state;
    const char *ids[] = {A};
    uint8_t root[1][MIGRATE_ROOT_LEN];
    struct migrate_in_result res[MIGRATE_BATCH_MAX];
    struct obj_get *g = NULL;
    struct obj_info info;
    struct buf bundle;
    size_t n = 0;
    int rcs[1];
    int64_t queued = -1;
    begin(f, ids, 1);
    root_of("old.vcf", "BEGIN:VCARD old", root[0]);
    buf_init(&bundle, 1 << 20);
    section(&bundle, A, "old.vcf", "BEGIN:VCARD old", root[0]);
    OK(send_bundle(f, &bundle, res, &n));
    assert_string_equal(state_of(f, A), "live");
    /* it leaves: frozen, committed elsewhere, shredded here */
    OK(migrate_freeze(f->r, ids, 1, "us", rcs));
    OK(rcs[0]);
    OK(migrate_out_committed(f->r, ids, (const uint8_t(*)[MIGRATE_ROOT_LEN])root, 1, rcs));
    OK(rcs[0]);
    OK(migrate_shred(f->r, ids, 1, rcs));
    OK(rcs[0]);
    assert_string_equal(state_of(f, A), "none");
    assert_int_equal(stored(f, A), 1); /* the rows wait for the sweeper */
    OK(store_purges(region_store(f->r), 100, seen_purge, &queued));
    assert_int_equal(queued, STORE_PURGE_ROWS);
    /* and comes back with something else */
    begin(f, ids, 1);
    assert_int_equal(stored(f, A), 0);
    root_of("new.vcf", "BEGIN:VCARD new", root[0]);
    bundle.len = 0;
    section(&bundle, A, "new.vcf", "BEGIN:VCARD new", root[0]);
    OK(send_bundle(f, &bundle, res, &n));
    assert_true(res[0].committed);
    assert_string_equal(state_of(f, A), "live");
    assert_int_equal(stored(f, A), 1);
    assert_readable(f, A, "new.vcf", "BEGIN:VCARD new");
    assert_int_equal(obj_get_open(&g, f->r, A, "contacts", "old.vcf", 7, &info), ERR_NOT_FOUND);
    queued = -1;
    OK(store_purges(region_store(f->r), 100, seen_purge, &queued));
    assert_true(queued > 0); /* the old version's chunks, queued */
    buf_release(&bundle);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_accounts_in_one_bundle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_account_cut_across_bundles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_wrong_root_stores_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_bundles_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_manifests_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leaving_and_coming_back_before_the_sweep, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
