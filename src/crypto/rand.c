/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rand.c: the per-thread pool of random bytes for public values (see
 * rand.h). A request larger than a quarter of the pool is served directly.
 */
#include "base/common.h"

#include <pthread.h>
#include <sodium.h>

#include "base/log.h"
#include "crypto/rand.h"

#define RAND_POOL 4096

static _Thread_local struct {
    uint8_t b[RAND_POOL];
    size_t left; /* the unused bytes are the last `left` of b */
} pool;

static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

/* In a child, after fork: its only thread is the one that forked. */
static void
pool_forget(void)
{
    sodium_memzero(pool.b, sizeof(pool.b));
    pool.left = 0;
}

static void
fork_setup(void)
{
    if (pthread_atfork(NULL, NULL, pool_forget) != 0)
        fatal("event=rand_setup_failed"); /* a child could repeat its parent's nonces */
}

void
rand_public(void *out, size_t n)
{
    if (n > RAND_POOL / 4) {
        randombytes_buf(out, n);
        return;
    }
    pthread_once(&fork_once, fork_setup);
    if (pool.left < n) {
        randombytes_buf(pool.b, sizeof(pool.b));
        pool.left = sizeof(pool.b);
    }
    uint8_t *p = pool.b + sizeof(pool.b) - pool.left;
    memcpy(out, p, n);
    sodium_memzero(p, n);
    pool.left -= n;
}
