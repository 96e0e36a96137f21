/* SPDX-License-Identifier: Apache-2.0 */
/*
 * merkle.c: RFC 6962 hashing, proofs and verification (see merkle.h), on
 * top of libsodium's SHA-256 and nothing else: no I/O, no allocation.
 *
 * Proof generation walks RFC 6962's recursion (split a range at the largest
 * power of two below its size) iteratively, top down, collecting one
 * sibling subtree root per step; each sibling is either a perfect subtree
 * (one node read) or the right edge of the tree, a fold of at most 64
 * perfect nodes. Verification follows RFC 9162 s2.1.3.2 and s2.1.4.2.
 *
 * Ownership: the caller owns every buffer. Thread-safety: pure functions.
 */
#include "base/common.h"

#include <sodium.h>

#include "audit/merkle.h"
#include "crypto/hash.h"

void
merkle_leaf_hash(struct merkle_hash *out, const uint8_t *data, size_t len)
{
    struct hash h;
    const uint8_t prefix = 0x00;
    hash_init(&h);
    hash_update(&h, &prefix, 1);
    hash_update(&h, data, len);
    hash_final(&h, out->b);
}

void
merkle_node_hash(struct merkle_hash *out, const struct merkle_hash *left,
                 const struct merkle_hash *right)
{
    uint8_t in[1 + 2 * MERKLE_HASH_LEN];
    in[0] = 0x01;
    memcpy(in + 1, left->b, MERKLE_HASH_LEN);
    memcpy(in + 1 + MERKLE_HASH_LEN, right->b, MERKLE_HASH_LEN);
    hash_sha256(out->b, in, sizeof(in));
}

void
merkle_empty_root(struct merkle_hash *out)
{
    hash_sha256(out->b, NULL, 0);
}

/* The largest power of two not above x (x > 0). */
static uint64_t
bit_floor(uint64_t x)
{
    return (uint64_t)1 << (63 - __builtin_clzll(x));
}

static bool
hash_eq(const struct merkle_hash *a, const struct merkle_hash *b)
{
    return !memcmp(a->b, b->b, MERKLE_HASH_LEN);
}

int
merkle_range_root(struct merkle_hash *out, merkle_node_fn fn, void *ctx, uint64_t lo, uint64_t hi)
{
    struct merkle_hash piece[64];
    size_t n = 0;
    if (hi <= lo)
        return ERR_INVAL;
    uint64_t size = hi - lo;
    if (lo & (bit_floor(size) - 1))
        return ERR_INVAL;
    /* The perfect pieces, largest first: one per set bit of the size. */
    uint64_t pos = lo;
    for (int level = 63; level >= 0; level--) {
        if (!((size >> level) & 1))
            continue;
        int rc = fn(ctx, (unsigned)level, pos >> level, &piece[n]);
        if (rc)
            return rc;
        n++;
        pos += (uint64_t)1 << level;
    }
    /* MTH = H(p1, H(p2, ... H(pk-1, pk))) */
    struct merkle_hash acc = piece[n - 1];
    for (size_t i = n - 1; i-- > 0;)
        merkle_node_hash(&acc, &piece[i], &acc);
    *out = acc;
    return 0;
}

/* Reverses h[0..n). */
static void
reverse(struct merkle_hash *h, size_t n)
{
    for (size_t i = 0; i < n / 2; i++) {
        struct merkle_hash t = h[i];
        h[i] = h[n - 1 - i];
        h[n - 1 - i] = t;
    }
}

int
merkle_inclusion_proof(struct merkle_hash proof[MERKLE_MAX_PROOF], size_t *n, merkle_node_fn fn,
                       void *ctx, uint64_t index, uint64_t size)
{
    uint64_t lo = 0, hi = size;
    size_t cnt = 0;
    *n = 0;
    if (index >= size)
        return ERR_INVAL;
    /* Top down: the sibling of the half holding index, at every split. */
    while (hi - lo > 1) {
        uint64_t k = bit_floor(hi - lo - 1);
        int rc;
        if (index < lo + k) {
            rc = merkle_range_root(&proof[cnt], fn, ctx, lo + k, hi);
            hi = lo + k;
        } else {
            rc = merkle_range_root(&proof[cnt], fn, ctx, lo, lo + k);
            lo += k;
        }
        if (rc)
            return rc;
        cnt++;
    }
    reverse(proof, cnt);
    *n = cnt;
    return 0;
}

int
merkle_consistency_proof(struct merkle_hash proof[MERKLE_MAX_PROOF], size_t *n_out,
                         merkle_node_fn fn, void *ctx, uint64_t m, uint64_t n)
{
    struct merkle_hash sib[MERKLE_MAX_PROOF];
    struct merkle_hash base;
    uint64_t lo = 0, hi = n;
    size_t cnt = 0, out = 0;
    bool whole = true, have_base = false;
    int rc;
    *n_out = 0;
    if (m == 0 || m > n)
        return ERR_INVAL;
    /* RFC 6962 SUBPROOF(m, D[n], true), iteratively. */
    for (;;) {
        if (m == hi) {
            if (!whole) {
                rc = merkle_range_root(&base, fn, ctx, lo, hi);
                if (rc)
                    return rc;
                have_base = true;
            }
            break;
        }
        uint64_t k = bit_floor(hi - lo - 1);
        if (m - lo <= k) {
            rc = merkle_range_root(&sib[cnt], fn, ctx, lo + k, hi);
            hi = lo + k;
        } else {
            rc = merkle_range_root(&sib[cnt], fn, ctx, lo, lo + k);
            lo += k;
            whole = false;
        }
        if (rc)
            return rc;
        cnt++;
    }
    if (have_base)
        proof[out++] = base;
    while (cnt > 0 && out < MERKLE_MAX_PROOF)
        proof[out++] = sib[--cnt];
    if (cnt)
        return ERR_INTERNAL;
    *n_out = out;
    return 0;
}

int
merkle_verify_inclusion(const struct merkle_hash *leaf_hash, uint64_t index, uint64_t size,
                        const struct merkle_hash *root, const struct merkle_hash *proof, size_t n)
{
    if (index >= size)
        return ERR_CORRUPT;
    uint64_t fn = index, sn = size - 1;
    struct merkle_hash r = *leaf_hash;
    for (size_t i = 0; i < n; i++) {
        if (sn == 0)
            return ERR_CORRUPT;
        if ((fn & 1) || fn == sn) {
            merkle_node_hash(&r, &proof[i], &r);
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            merkle_node_hash(&r, &r, &proof[i]);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && hash_eq(&r, root) ? 0 : ERR_CORRUPT;
}

int
merkle_verify_consistency(uint64_t size1, uint64_t size2, const struct merkle_hash *root1,
                          const struct merkle_hash *root2, const struct merkle_hash *proof,
                          size_t n)
{
    /* Nothing is proven about an empty tree: a verifier asking is confused. */
    if (size1 == 0 || size1 > size2)
        return ERR_CORRUPT;
    if (size1 == size2)
        return n == 0 && hash_eq(root1, root2) ? 0 : ERR_CORRUPT;
    if (n == 0)
        return ERR_CORRUPT;
    /* When size1 is a power of two its root is the proof's implied first node. */
    size_t i = 0;
    struct merkle_hash first = proof[0];
    if ((size1 & (size1 - 1)) == 0)
        first = *root1;
    else
        i = 1;
    uint64_t fn = size1 - 1, sn = size2 - 1;
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    struct merkle_hash fr = first, sr = first;
    for (; i < n; i++) {
        if (sn == 0)
            return ERR_CORRUPT;
        if ((fn & 1) || fn == sn) {
            merkle_node_hash(&fr, &proof[i], &fr);
            merkle_node_hash(&sr, &proof[i], &sr);
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            merkle_node_hash(&sr, &sr, &proof[i]);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && hash_eq(&fr, root1) && hash_eq(&sr, root2) ? 0 : ERR_CORRUPT;
}

/* Frontiers ---------------------------------------------------------------- */

void
merkle_frontier_init(struct merkle_frontier *f)
{
    memset(f, 0, sizeof(*f));
}

int
merkle_frontier_load(struct merkle_frontier *f, uint64_t size, merkle_node_fn fn, void *ctx)
{
    merkle_frontier_init(f);
    for (unsigned level = 0; level < 64; level++) {
        if (!((size >> level) & 1))
            continue;
        int rc = fn(ctx, level, (size >> level) - 1, &f->node[level]);
        if (rc)
            return rc;
    }
    f->size = size;
    return 0;
}

int
merkle_frontier_append(struct merkle_frontier *f, const struct merkle_hash *leaf_hash,
                       struct merkle_node out[65], size_t *n)
{
    *n = 0;
    if (f->size == UINT64_MAX)
        return ERR_LIMIT;
    struct merkle_hash h = *leaf_hash;
    uint64_t index = f->size;
    unsigned level = 0;
    out[(*n)++] = (struct merkle_node){0, index, h};
    /* A set bit at this level is a left sibling waiting for us: merge up. */
    while ((f->size >> level) & 1) {
        merkle_node_hash(&h, &f->node[level], &h);
        level++;
        index >>= 1;
        out[(*n)++] = (struct merkle_node){level, index, h};
    }
    f->node[level] = h;
    f->size++;
    return 0;
}

void
merkle_frontier_root(const struct merkle_frontier *f, struct merkle_hash *out)
{
    bool any = false;
    struct merkle_hash acc;
    for (unsigned level = 0; level < 64; level++) {
        if (!((f->size >> level) & 1))
            continue;
        if (!any)
            acc = f->node[level];
        else
            merkle_node_hash(&acc, &f->node[level], &acc);
        any = true;
    }
    if (any)
        *out = acc;
    else
        merkle_empty_root(out);
}
