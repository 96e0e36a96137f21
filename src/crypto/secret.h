/* SPDX-License-Identifier: Apache-2.0 */
/*
 * secret.h: memory for keys and passwords. Allocated with sodium_malloc
 * (guard pages, locked so it never reaches swap), wiped and freed by
 * secret_free on every path. Thread-safe.
 */
#ifndef OIKOS_SECRET_H
#define OIKOS_SECRET_H

#include "base/common.h"

/** A 32-byte key in locked memory. */
struct key32 {
    uint8_t b[32];
};

/** Allocates n zeroed bytes of locked memory, NULL on failure. */
void *secret_alloc(size_t n);
/** Wipes and frees memory from secret_alloc. Accepts NULL. */
void secret_free(void *p);
/** Allocates a zeroed key32 in locked memory, NULL on failure. */
struct key32 *key32_new(void);
/** Wipes and frees a key32. Accepts NULL. */
void key32_free(struct key32 *k);
/** Fills a key with random bytes. */
void key32_random(struct key32 *k);
/** Wipes n bytes (not optimised away). */
void secret_wipe(void *p, size_t n);
/** Constant-time equality of n bytes. */
bool secret_equal(const void *a, const void *b, size_t n);

#endif
