/* SPDX-License-Identifier: Apache-2.0 */
/*
 * merkle.h: RFC 6962 (and RFC 9162 s2.1) Merkle tree hashing, proofs and
 * their verification, with no I/O. Trees are read through a callback that
 * gives the hash of one perfect subtree, node (level, index): the root of
 * leaves [index << level, (index + 1) << level). Any subtree of an RFC 6962
 * tree is a right fold of at most 64 such nodes, so a proof of a tree of n
 * leaves reads O(log n) nodes whatever the store behind the callback.
 *
 * A frontier (struct merkle_frontier) is the right edge of a tree: one node
 * per set bit of its size. Appending leaves to it yields every perfect node
 * they complete, so a log can persist its nodes as it grows.
 *
 * Ownership: callers own every buffer; nothing is allocated here.
 * Thread-safety: every function is pure and reentrant.
 */
#ifndef OIKOS_MERKLE_H
#define OIKOS_MERKLE_H

#include "base/common.h"

#define MERKLE_HASH_LEN 32
/* The longest proof of a tree of at most 2^64 - 1 leaves. */
#define MERKLE_MAX_PROOF 64

struct merkle_hash {
    uint8_t b[MERKLE_HASH_LEN];
};

/**
 * Gives in out the hash of the perfect subtree (level, index). Returns 0 or
 * an error code, which the caller of the proof function gets back.
 */
typedef int (*merkle_node_fn)(void *ctx, unsigned level, uint64_t index, struct merkle_hash *out);

/** SHA-256(0x00 || data): the hash of a leaf. */
void merkle_leaf_hash(struct merkle_hash *out, const uint8_t *data, size_t len);
/** SHA-256(0x01 || left || right): the hash of an inner node. */
void merkle_node_hash(struct merkle_hash *out, const struct merkle_hash *left,
                      const struct merkle_hash *right);
/** SHA-256 of nothing: the root of the empty tree. */
void merkle_empty_root(struct merkle_hash *out);

/**
 * The root of leaves [lo, hi) as RFC 6962's MTH computes it, where lo is a
 * multiple of the largest power of two not above hi - lo (the ranges proofs
 * visit, and every [0, n)). ERR_INVAL for any other range or lo == hi.
 */
MUST_CHECK int merkle_range_root(struct merkle_hash *out, merkle_node_fn fn, void *ctx, uint64_t lo,
                                 uint64_t hi);

/**
 * The audit path of leaf index in the tree of the first size leaves
 * (RFC 6962 PATH), from the leaf's sibling up. *n gets the number of hashes
 * (at most MERKLE_MAX_PROOF). ERR_INVAL unless index < size.
 */
MUST_CHECK int merkle_inclusion_proof(struct merkle_hash proof[MERKLE_MAX_PROOF], size_t *n,
                                      merkle_node_fn fn, void *ctx, uint64_t index, uint64_t size);

/**
 * The consistency proof between the trees of the first m and the first n
 * leaves (RFC 6962 PROOF). Empty when m == n. ERR_INVAL unless 0 < m <= n.
 */
MUST_CHECK int merkle_consistency_proof(struct merkle_hash proof[MERKLE_MAX_PROOF], size_t *n_out,
                                        merkle_node_fn fn, void *ctx, uint64_t m, uint64_t n);

/**
 * Checks that leaf_hash is leaf index of the tree of size leaves whose root
 * is root, given its audit path (RFC 9162 s2.1.3.2). Returns 0, or
 * ERR_CORRUPT if the proof does not hold (wrong length included).
 */
MUST_CHECK int merkle_verify_inclusion(const struct merkle_hash *leaf_hash, uint64_t index,
                                       uint64_t size, const struct merkle_hash *root,
                                       const struct merkle_hash *proof, size_t n);

/**
 * Checks that the tree of size1 leaves with root1 is a prefix of the tree
 * of size2 leaves with root2, given a consistency proof (RFC 9162
 * s2.1.4.2). size1 == size2 needs an empty proof and equal roots; size1 == 0
 * proves nothing and is refused. Returns 0 or ERR_CORRUPT.
 */
MUST_CHECK int merkle_verify_consistency(uint64_t size1, uint64_t size2,
                                         const struct merkle_hash *root1,
                                         const struct merkle_hash *root2,
                                         const struct merkle_hash *proof, size_t n);

/* Frontiers ---------------------------------------------------------------- */

/** The right edge of a tree: node[l] is its perfect subtree at level l, for each set bit l. */
struct merkle_frontier {
    uint64_t size;
    struct merkle_hash node[64];
};

/** A node that an append completed: (level, index) and its hash. */
struct merkle_node {
    unsigned level;
    uint64_t index;
    struct merkle_hash hash;
};

/** Makes the frontier of the empty tree. */
void merkle_frontier_init(struct merkle_frontier *f);
/**
 * Loads the frontier of a tree of size leaves through fn (one node per set
 * bit of size). Returns 0 or fn's error.
 */
MUST_CHECK int merkle_frontier_load(struct merkle_frontier *f, uint64_t size, merkle_node_fn fn,
                                    void *ctx);
/**
 * Appends the leaf whose hash is leaf_hash. out (room for 65 nodes) gets
 * every node completed, the leaf itself (level 0) first, then upwards; *n
 * their number. ERR_LIMIT if the tree is full.
 */
MUST_CHECK int merkle_frontier_append(struct merkle_frontier *f,
                                      const struct merkle_hash *leaf_hash,
                                      struct merkle_node out[65], size_t *n);
/** The root of the frontier's tree (the empty root for size 0). */
void merkle_frontier_root(const struct merkle_frontier *f, struct merkle_hash *out);

#endif
