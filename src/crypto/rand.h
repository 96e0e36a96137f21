/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rand.h: random bytes for values that are made public as they are used:
 * AEAD nonces and object version numbers. They come from libsodium's
 * randombytes_buf, drawn RAND_POOL bytes at a time into a pool of the
 * calling thread, so that sealing an object costs no system call where
 * each nonce took one (getrandom). Each byte is handed out once and wiped
 * from the pool; a child process starts with an empty pool, so it never
 * repeats its parent's values. Keys and other secrets never come from
 * here: they take randombytes_buf directly (key32_random).
 * Thread-safety: the pool is per thread.
 */
#ifndef OIKOS_RAND_H
#define OIKOS_RAND_H

#include "base/common.h"

/** Fills out with n random bytes for a public value (a nonce, a version). */
void rand_public(void *out, size_t n);

#endif
