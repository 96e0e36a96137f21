/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_merkle.c: src/audit/merkle.c against the published RFC 6962 vectors
 * of ../shared/data/vectors/merkle/merkle_vectors.json (path from
 * OIKOS_SHARED, which ctest sets): the root of every leaf set, every
 * inclusion and consistency proof (generated proofs must equal the
 * published ones; verification must accept the good ones and reject every
 * case marked want_error), then against a naive recursive MTH on random
 * trees of every size up to 130, for every index and every pair of sizes.
 *
 * The vectors hold one leaf index of 2^64 - 1, which jansson cannot read as
 * an integer: numbers are decoded as reals (JSON_DECODE_INT_AS_REAL) and
 * converted back, exact below 2^53, with that one value mapped to
 * UINT64_MAX.
 */
#include "base/common.h"

#include <jansson.h>
#include <setjmp.h>
#include <sodium.h>

#include <cmocka.h>

#include "audit/merkle.h"
#include "base/util.h"

#define OK(expr) assert_int_equal((expr), 0)

static json_t *vectors;

/* ------------------------------------------------------------------------ */
/* Reading the vectors                                                      */

static uint64_t
num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    assert_non_null(v);
    assert_true(json_is_number(v));
    double d = json_number_value(v);
    if (d >= 18446744073709551615.0)
        return UINT64_MAX;
    assert_true(d >= 0 && d < 9007199254740992.0 && d == (double)(uint64_t)d);
    return (uint64_t)d;
}

/*
 * Decodes a hash. Some cases hold byte strings of another length (a root
 * with garbage around it, or two equal placeholder roots): for those it
 * returns false and sets out to a tagged SHA-256 of the bytes, an opaque
 * stand-in that keeps equal strings equal (and differs from every real
 * hash, the empty root included), which is all a verifier may rely on.
 */
static bool
hexhash(json_t *v, struct merkle_hash *out)
{
    const char *s = json_string_value(v);
    assert_non_null(s);
    size_t len = strlen(s);
    if (len == 2 * MERKLE_HASH_LEN) {
        OK(hex_decode(out->b, MERKLE_HASH_LEN, s, len));
        return true;
    }
    static const char tag[] = "test_merkle stand-in:";
    uint8_t raw[256];
    assert_true(len % 2 == 0 && len / 2 + sizeof(tag) <= sizeof(raw));
    memcpy(raw, tag, sizeof(tag));
    OK(hex_decode(raw + sizeof(tag), len / 2, s, len));
    crypto_hash_sha256(out->b, raw, sizeof(tag) + len / 2);
    return false;
}

static size_t
proof_of(json_t *c, struct merkle_hash proof[MERKLE_MAX_PROOF + 2], bool *well_formed)
{
    json_t *arr = json_object_get(c, "proof");
    assert_true(json_is_array(arr));
    size_t n = json_array_size(arr);
    assert_true(n <= MERKLE_MAX_PROOF + 2);
    for (size_t i = 0; i < n; i++)
        if (!hexhash(json_array_get(arr, i), &proof[i]))
            *well_formed = false;
    return n;
}

static bool
want_error(json_t *c)
{
    json_t *w = json_object_get(c, "want_error");
    assert_true(json_is_boolean(w));
    return json_is_true(w);
}

/* The published leaves: a tree over the first n of them. */
struct leaves {
    uint8_t data[64][64];
    size_t len[64];
    size_t n;
};

static void
load_leaves(struct leaves *l)
{
    json_t *arr = json_object_get(vectors, "leaf_inputs");
    assert_true(json_is_array(arr));
    l->n = json_array_size(arr);
    assert_true(l->n > 0 && l->n <= 64);
    for (size_t i = 0; i < l->n; i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        assert_non_null(s);
        l->len[i] = strlen(s) / 2;
        assert_true(l->len[i] <= sizeof(l->data[i]));
        OK(hex_decode(l->data[i], l->len[i], s, strlen(s)));
    }
}

/* ------------------------------------------------------------------------ */
/* A naive reference: trees held in memory, MTH by plain recursion          */

struct tree {
    struct merkle_hash *leaf; /* leaf hashes */
    uint64_t n;
    unsigned reads; /* node reads made through tree_node */
};

/* RFC 6962 MTH(D[lo:hi]) by its definition. */
static void
mth(const struct tree *t, uint64_t lo, uint64_t hi, struct merkle_hash *out)
{
    if (hi - lo == 1) {
        *out = t->leaf[lo];
        return;
    }
    uint64_t k = 1;
    while (k * 2 < hi - lo)
        k *= 2;
    struct merkle_hash l, r;
    mth(t, lo, lo + k, &l);
    mth(t, lo + k, hi, &r);
    merkle_node_hash(out, &l, &r);
}

static int
tree_node(void *ctx, unsigned level, uint64_t index, struct merkle_hash *out)
{
    struct tree *t = ctx;
    uint64_t lo = index << level, hi = (index + 1) << level;
    if (hi > t->n)
        return ERR_NOT_FOUND; /* only perfect subtrees exist */
    t->reads++;
    mth(t, lo, hi, out);
    return 0;
}

static void
tree_of_leaves(struct tree *t, const struct leaves *l, size_t n)
{
    t->leaf = calloc(n ? n : 1, sizeof(*t->leaf));
    assert_non_null(t->leaf);
    t->n = n;
    t->reads = 0;
    for (size_t i = 0; i < n; i++)
        merkle_leaf_hash(&t->leaf[i], l->data[i], l->len[i]);
}

static void
tree_random(struct tree *t, size_t n)
{
    t->leaf = calloc(n ? n : 1, sizeof(*t->leaf));
    assert_non_null(t->leaf);
    t->n = n;
    t->reads = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t d[24];
        randombytes_buf(d, sizeof(d));
        merkle_leaf_hash(&t->leaf[i], d, 1 + i % sizeof(d));
    }
}

static void
hash_flip(struct merkle_hash *h, unsigned bit)
{
    h->b[(bit / 8) % MERKLE_HASH_LEN] ^= (uint8_t)(1u << (bit % 8));
}

/* ------------------------------------------------------------------------ */
/* The vectors                                                              */

static void
test_hash_primitives(void **state)
{
    (void)state;
    struct merkle_hash h, want;
    merkle_empty_root(&h);
    OK(hex_decode(want.b, 32, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                  64));
    assert_memory_equal(h.b, want.b, 32);
    /* RFC 6962 leaf of the empty string: SHA-256(0x00) */
    merkle_leaf_hash(&h, (const uint8_t *)"", 0);
    OK(hex_decode(want.b, 32, "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                  64));
    assert_memory_equal(h.b, want.b, 32);
}

static void
test_vector_roots(void **state)
{
    (void)state;
    struct leaves l;
    load_leaves(&l);
    json_t *roots = json_object_get(vectors, "roots_by_size");
    assert_true(json_is_array(roots));
    assert_int_equal(json_array_size(roots), l.n + 1);
    for (size_t n = 0; n <= l.n; n++) {
        struct merkle_hash want, got, fr_root;
        struct merkle_frontier fr;
        struct merkle_node nodes[65];
        size_t nn;
        struct tree t;
        assert_true(hexhash(json_array_get(roots, n), &want));
        tree_of_leaves(&t, &l, n);
        merkle_frontier_init(&fr);
        for (size_t i = 0; i < n; i++)
            OK(merkle_frontier_append(&fr, &t.leaf[i], nodes, &nn));
        merkle_frontier_root(&fr, &fr_root);
        assert_memory_equal(fr_root.b, want.b, 32);
        if (n == 0) {
            merkle_empty_root(&got);
            assert_int_equal(merkle_range_root(&got, tree_node, &t, 0, 0), ERR_INVAL);
        } else {
            OK(merkle_range_root(&got, tree_node, &t, 0, n));
        }
        assert_memory_equal(got.b, want.b, 32);
        free(t.leaf);
    }
}

static void
test_vector_inclusion(void **state)
{
    (void)state;
    struct leaves l;
    size_t i, good = 0, bad = 0, generated = 0;
    json_t *c;
    load_leaves(&l);
    json_t *cases = json_object_get(vectors, "inclusion");
    assert_true(json_is_array(cases) && json_array_size(cases) > 0);
    json_array_foreach(cases, i, c)
    {
        struct merkle_hash proof[MERKLE_MAX_PROOF + 2], root, leaf;
        uint64_t index = num(c, "leaf_index"), size = num(c, "tree_size");
        bool ok = true;
        size_t n = proof_of(c, proof, &ok);
        /* an inclusion check is refused anything but 32-byte hashes */
        ok &= hexhash(json_object_get(c, "root"), &root);
        ok &= hexhash(json_object_get(c, "leaf_hash"), &leaf);
        int rc = ok ? merkle_verify_inclusion(&leaf, index, size, &root, proof, n) : ERR_CORRUPT;
        if (want_error(c)) {
            if (rc != ERR_CORRUPT)
                print_error("accepted a bad proof: %s\n",
                            json_string_value(json_object_get(c, "file")));
            assert_int_equal(rc, ERR_CORRUPT);
            bad++;
            continue;
        }
        if (rc)
            print_error("refused a good proof: %s\n",
                        json_string_value(json_object_get(c, "file")));
        OK(rc);
        good++;
        /* Where the tree is one of the published leaf sets, we make the same proof. */
        struct tree t;
        struct merkle_hash want_root;
        if (size > l.n)
            continue;
        tree_of_leaves(&t, &l, size);
        OK(merkle_range_root(&want_root, tree_node, &t, 0, size));
        if (!memcmp(want_root.b, root.b, 32)) {
            struct merkle_hash mine[MERKLE_MAX_PROOF];
            size_t mn = 0;
            OK(merkle_inclusion_proof(mine, &mn, tree_node, &t, index, size));
            assert_int_equal(mn, n);
            for (size_t k = 0; k < n; k++)
                assert_memory_equal(mine[k].b, proof[k].b, 32);
            generated++;
        }
        free(t.leaf);
    }
    assert_true(good > 0 && bad > 0);
    assert_true(generated > 0);
}

static void
test_vector_consistency(void **state)
{
    (void)state;
    struct leaves l;
    size_t i, good = 0, bad = 0, generated = 0;
    json_t *c;
    load_leaves(&l);
    json_t *cases = json_object_get(vectors, "consistency");
    assert_true(json_is_array(cases) && json_array_size(cases) > 0);
    json_array_foreach(cases, i, c)
    {
        struct merkle_hash proof[MERKLE_MAX_PROOF + 2], root1, root2;
        uint64_t size1 = num(c, "size1"), size2 = num(c, "size2");
        bool ok = true;
        size_t n = proof_of(c, proof, &ok);
        /* roots of equal trees are only compared: stand-ins will do */
        (void)hexhash(json_object_get(c, "root1"), &root1);
        (void)hexhash(json_object_get(c, "root2"), &root2);
        int rc =
            ok ? merkle_verify_consistency(size1, size2, &root1, &root2, proof, n) : ERR_CORRUPT;
        if (want_error(c)) {
            if (rc != ERR_CORRUPT)
                print_error("accepted a bad proof: %s (%s)\n",
                            json_string_value(json_object_get(c, "file")),
                            json_string_value(json_object_get(c, "desc")));
            assert_int_equal(rc, ERR_CORRUPT);
            bad++;
            continue;
        }
        if (rc)
            print_error("refused a good proof: %s\n",
                        json_string_value(json_object_get(c, "file")));
        OK(rc);
        good++;
        struct tree t;
        struct merkle_hash r2;
        if (size2 > l.n || size1 == 0)
            continue;
        tree_of_leaves(&t, &l, size2);
        OK(merkle_range_root(&r2, tree_node, &t, 0, size2));
        if (!memcmp(r2.b, root2.b, 32)) {
            struct merkle_hash mine[MERKLE_MAX_PROOF];
            size_t mn = 0;
            OK(merkle_consistency_proof(mine, &mn, tree_node, &t, size1, size2));
            assert_int_equal(mn, n);
            for (size_t k = 0; k < n; k++)
                assert_memory_equal(mine[k].b, proof[k].b, 32);
            generated++;
        }
        free(t.leaf);
    }
    assert_true(good > 0 && bad > 0);
    assert_true(generated > 0);
}

/* ------------------------------------------------------------------------ */
/* Exhaustive small trees against the naive MTH                             */

#define MAXN 130

static void
test_frontier_nodes(void **state)
{
    (void)state;
    struct tree t;
    struct merkle_frontier fr, loaded;
    struct merkle_node nodes[65];
    size_t nn;
    tree_random(&t, MAXN);
    merkle_frontier_init(&fr);
    for (uint64_t i = 0; i < MAXN; i++) {
        OK(merkle_frontier_append(&fr, &t.leaf[i], nodes, &nn));
        assert_true(nn >= 1);
        assert_int_equal(nodes[0].level, 0);
        assert_int_equal(nodes[0].index, i);
        /* every node completed is the perfect subtree it names */
        uint64_t size = i + 1;
        t.n = size;
        for (size_t k = 0; k < nn; k++) {
            struct merkle_hash want;
            OK(tree_node(&t, nodes[k].level, nodes[k].index, &want));
            assert_memory_equal(want.b, nodes[k].hash.b, 32);
        }
        /* one node per trailing one bit of the new size, and the leaf */
        assert_int_equal(nn, 1 + (size_t)__builtin_ctzll(size));
        struct merkle_hash root, want;
        merkle_frontier_root(&fr, &root);
        mth(&t, 0, size, &want);
        assert_memory_equal(root.b, want.b, 32);
        OK(merkle_frontier_load(&loaded, size, tree_node, &t));
        merkle_frontier_root(&loaded, &root);
        assert_memory_equal(root.b, want.b, 32);
    }
    free(t.leaf);
}

static void
test_all_inclusion_proofs(void **state)
{
    (void)state;
    struct tree t;
    tree_random(&t, MAXN);
    const uint64_t all = t.n;
    for (uint64_t size = 1; size <= all; size++) {
        struct merkle_hash root;
        t.n = size;
        mth(&t, 0, size, &root);
        for (uint64_t i = 0; i < size; i++) {
            struct merkle_hash proof[MERKLE_MAX_PROOF];
            size_t n = 0;
            t.reads = 0;
            OK(merkle_inclusion_proof(proof, &n, tree_node, &t, i, size));
            /* O(log n) reads: at most 2 log2(size) + 2 */
            assert_true(t.reads <= 2 * (64 - (unsigned)__builtin_clzll(size)) + 2);
            OK(merkle_verify_inclusion(&t.leaf[i], i, size, &root, proof, n));
            /* wrong index, altered path, short or long path (the size is bound by the root) */
            if (size > 1)
                assert_int_equal(
                    merkle_verify_inclusion(&t.leaf[i], (i + 1) % size, size, &root, proof, n),
                    ERR_CORRUPT);
            if (n > 0) {
                struct merkle_hash bad[MERKLE_MAX_PROOF + 1];
                memcpy(bad, proof, n * sizeof(*bad));
                hash_flip(&bad[i % n], (unsigned)(i * 7));
                assert_int_equal(merkle_verify_inclusion(&t.leaf[i], i, size, &root, bad, n),
                                 ERR_CORRUPT);
                assert_int_equal(merkle_verify_inclusion(&t.leaf[i], i, size, &root, proof, n - 1),
                                 ERR_CORRUPT);
                memcpy(bad, proof, n * sizeof(*bad));
                bad[n] = root;
                assert_int_equal(merkle_verify_inclusion(&t.leaf[i], i, size, &root, bad, n + 1),
                                 ERR_CORRUPT);
            }
        }
        struct merkle_hash proof[MERKLE_MAX_PROOF];
        size_t n;
        assert_int_equal(merkle_inclusion_proof(proof, &n, tree_node, &t, size, size), ERR_INVAL);
    }
    free(t.leaf);
}

static void
test_all_consistency_proofs(void **state)
{
    (void)state;
    struct tree t;
    tree_random(&t, 70);
    const uint64_t all = t.n;
    for (uint64_t n2 = 1; n2 <= all; n2++) {
        struct merkle_hash root2;
        t.n = n2;
        mth(&t, 0, n2, &root2);
        for (uint64_t n1 = 1; n1 <= n2; n1++) {
            struct merkle_hash root1, proof[MERKLE_MAX_PROOF];
            size_t n = 0;
            mth(&t, 0, n1, &root1);
            t.reads = 0;
            OK(merkle_consistency_proof(proof, &n, tree_node, &t, n1, n2));
            assert_true(t.reads <= 2 * (64 - (unsigned)__builtin_clzll(n2)) + 2);
            OK(merkle_verify_consistency(n1, n2, &root1, &root2, proof, n));
            /* a rewritten history: another first root, or an altered proof */
            struct merkle_hash other = root1;
            hash_flip(&other, (unsigned)n1);
            assert_int_equal(merkle_verify_consistency(n1, n2, &other, &root2, proof, n),
                             ERR_CORRUPT);
            assert_int_equal(merkle_verify_consistency(n1, n2, &root1, &other, proof, n),
                             ERR_CORRUPT);
            if (n > 0) {
                struct merkle_hash bad[MERKLE_MAX_PROOF];
                memcpy(bad, proof, n * sizeof(*bad));
                hash_flip(&bad[n1 % n], (unsigned)n2);
                assert_int_equal(merkle_verify_consistency(n1, n2, &root1, &root2, bad, n),
                                 ERR_CORRUPT);
                assert_int_equal(merkle_verify_consistency(n1, n2, &root1, &root2, proof, n - 1),
                                 ERR_CORRUPT);
            }
        }
        struct merkle_hash proof[MERKLE_MAX_PROOF];
        size_t n;
        assert_int_equal(merkle_consistency_proof(proof, &n, tree_node, &t, 0, n2), ERR_INVAL);
        assert_int_equal(merkle_consistency_proof(proof, &n, tree_node, &t, n2 + 1, n2), ERR_INVAL);
    }
    free(t.leaf);
}

static void
test_range_rules(void **state)
{
    (void)state;
    struct tree t;
    struct merkle_hash h, want;
    tree_random(&t, 16);
    /* [4, 7) is a range RFC 6962 visits; [3, 7) is not */
    OK(merkle_range_root(&h, tree_node, &t, 4, 7));
    mth(&t, 4, 7, &want);
    assert_memory_equal(h.b, want.b, 32);
    assert_int_equal(merkle_range_root(&h, tree_node, &t, 3, 7), ERR_INVAL);
    assert_int_equal(merkle_range_root(&h, tree_node, &t, 5, 5), ERR_INVAL);
    /* a node the callback cannot give is the caller's error */
    assert_int_equal(merkle_range_root(&h, tree_node, &t, 0, 32), ERR_NOT_FOUND);
    free(t.leaf);
}

static int
setup(void **state)
{
    (void)state;
    const char *shared = getenv("OIKOS_SHARED");
    char path[4096];
    json_error_t err;
    if (sodium_init() < 0)
        return -1;
    snprintf(path, sizeof(path), "%s/data/vectors/merkle/merkle_vectors.json",
             shared ? shared : "../shared");
    vectors = json_load_file(path, JSON_DECODE_INT_AS_REAL, &err);
    if (!vectors) {
        fprintf(stderr, "cannot read %s: %s (set OIKOS_SHARED)\n", path, err.text);
        return -1;
    }
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    json_decref(vectors);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_primitives),        cmocka_unit_test(test_vector_roots),
        cmocka_unit_test(test_vector_inclusion),       cmocka_unit_test(test_vector_consistency),
        cmocka_unit_test(test_frontier_nodes),         cmocka_unit_test(test_all_inclusion_proofs),
        cmocka_unit_test(test_all_consistency_proofs), cmocka_unit_test(test_range_rules),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
