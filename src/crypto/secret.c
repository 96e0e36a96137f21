/* SPDX-License-Identifier: Apache-2.0 */
/*
 * secret.c: locked memory for keys and passwords (see secret.h), a thin
 * layer over libsodium's guarded heap. sodium_malloc puts each block
 * between guard pages and mlocks it; sodium_free wipes the whole block
 * before it unlocks and frees it, so secret_free needs no size. The caller
 * owns every block it gets and must give it back to secret_free (never
 * free()). sodium_malloc needs sodium_init to have run (it reads the page
 * size set there), so secret_alloc calls it first; sodium_init is
 * idempotent and thread-safe. Everything here is thread-safe.
 */
#include "base/common.h"

#include <pthread.h>
#include <sodium.h>

#include "crypto/secret.h"

void *
secret_alloc(size_t n)
{
    if (sodium_init() < 0)
        return NULL;
    void *p = sodium_malloc(n);
    if (!p)
        return NULL;
    /* sodium_malloc fills with a canary pattern, not zeros. */
    sodium_memzero(p, n);
    return p;
}

void
secret_free(void *p)
{
    if (p)
        sodium_free(p);
}

/*
 * Keys come from one arena of locked memory shared by all threads: a
 * sodium_malloc per key costs an mmap, four mprotects and an mlock, which
 * every request needs several of and which serialise the process on its
 * memory-map lock. Slots are wiped when they are given back; when the arena
 * is full, keys fall back to sodium_malloc of their own.
 */
#define KEY_ARENA_SLOTS 4096

static struct {
    pthread_once_t once;
    pthread_mutex_t mu;
    struct key32 *slots; /* KEY_ARENA_SLOTS, in one sodium_malloc'd area */
    uint32_t free_list[KEY_ARENA_SLOTS];
    uint32_t nfree;
} arena = {PTHREAD_ONCE_INIT, PTHREAD_MUTEX_INITIALIZER, NULL, {0}, 0};

static void
arena_setup(void)
{
    arena.slots = secret_alloc(KEY_ARENA_SLOTS * sizeof(struct key32));
    if (!arena.slots)
        return;
    for (uint32_t i = 0; i < KEY_ARENA_SLOTS; i++)
        arena.free_list[i] = KEY_ARENA_SLOTS - 1 - i;
    arena.nfree = KEY_ARENA_SLOTS;
}

static bool
in_arena(const struct key32 *k)
{
    return arena.slots && k >= arena.slots && k < arena.slots + KEY_ARENA_SLOTS;
}

struct key32 *
key32_new(void)
{
    struct key32 *k = NULL;
    pthread_once(&arena.once, arena_setup);
    pthread_mutex_lock(&arena.mu);
    if (arena.slots && arena.nfree > 0)
        k = &arena.slots[arena.free_list[--arena.nfree]];
    pthread_mutex_unlock(&arena.mu);
    return k ? k : secret_alloc(sizeof(struct key32));
}

void
key32_free(struct key32 *k)
{
    if (!k)
        return;
    if (!in_arena(k)) {
        secret_free(k);
        return;
    }
    sodium_memzero(k, sizeof(*k));
    pthread_mutex_lock(&arena.mu);
    arena.free_list[arena.nfree++] = (uint32_t)(k - arena.slots);
    pthread_mutex_unlock(&arena.mu);
}

void
key32_random(struct key32 *k)
{
    randombytes_buf(k->b, sizeof(k->b));
}

void
secret_wipe(void *p, size_t n)
{
    if (p && n)
        sodium_memzero(p, n);
}

bool
secret_equal(const void *a, const void *b, size_t n)
{
    if (n == 0)
        return true;
    return sodium_memcmp(a, b, n) == 0;
}
