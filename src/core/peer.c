/* SPDX-License-Identifier: Apache-2.0 */
/*
 * peer.c: signing and checking requests between regions (see peer.h), on
 * top of the keyring's peer key (Ed25519 derived from the master key) and
 * the keys pinned in the cluster file (region_peer). The nonce cache is a
 * fixed-size open-addressing table under a mutex: its memory is bounded,
 * and a request that finds no free slot within a short probe is refused
 * (503) rather than allowed to push out a nonce that is still in the
 * window. Requests signed before this process started are refused, so a
 * restart, which empties the cache, reopens no replay.
 *
 * Thread-safety: the cache is guarded by its mutex; the rest is pure.
 */
#include "base/common.h"

#include <pthread.h>
#include <sodium.h>
#include <time.h>

#include "base/util.h"
#include "core/peer.h"
#include "crypto/kr.h"
#include "crypto/hash.h"

#define NONCE_SLOTS (1u << 16)
#define NONCE_PROBE 64

struct nonce_slot {
    uint8_t nonce[16];
    int64_t expires_ms; /* 0: free */
};

static struct {
    pthread_mutex_t mu;
    pthread_once_t once;
    int64_t start_ms;
    struct nonce_slot *slots;
} cache = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_ONCE_INIT, 0, NULL};

static int64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
cache_setup(void)
{
    cache.slots = calloc(NONCE_SLOTS, sizeof(*cache.slots));
}

/* The process's start: requests signed before it may have been seen by the
 * previous process, whose nonce cache is gone. */
__attribute__((constructor)) static void
peer_process_start(void)
{
    cache.start_ms = now_ms();
}

/* Takes a nonce: 0, ERR_UNAUTHORIZED if seen, ERR_UNAVAILABLE if full. */
static int
nonce_take(const uint8_t nonce[16], int64_t now)
{
    uint32_t h;
    int rc = ERR_UNAVAILABLE;
    memcpy(&h, nonce, sizeof(h));
    pthread_mutex_lock(&cache.mu);
    struct nonce_slot *free_slot = NULL;
    for (uint32_t i = 0; cache.slots && i < NONCE_PROBE; i++) {
        struct nonce_slot *s = &cache.slots[(h + i) % NONCE_SLOTS];
        if (s->expires_ms > now && !memcmp(s->nonce, nonce, 16)) {
            rc = ERR_UNAUTHORIZED;
            free_slot = NULL;
            break;
        }
        if (s->expires_ms <= now && !free_slot)
            free_slot = s;
    }
    if (free_slot) {
        memcpy(free_slot->nonce, nonce, 16);
        free_slot->expires_ms = now + 2 * PEER_WINDOW_MS;
        rc = 0;
    }
    pthread_mutex_unlock(&cache.mu);
    return rc;
}

/* The signed message, into m. */
static int
peer_message(struct buf *m, const char *method, const char *path, const char *from, const char *to,
             const char *time, const char *nonce, struct slice body)
{
    uint8_t h[HASH_SHA256_LEN];
    char hex[2 * sizeof(h) + 1];
    hash_sha256(h, body.p, body.len);
    hex_encode(hex, h, sizeof(h));
    return buf_addf(m, "oikos-peer-v1\n%s\n%s\n%s\n%s\n%s\n%s\n%s", method, path, from, to, time,
                    nonce, hex);
}

int
peer_sign(struct region *r, struct peer_headers *h, const char *method, const char *path,
          const char *to, struct slice body)
{
    uint8_t sig[KR_SIG_LEN], nonce[16];
    struct buf m, b64;
    pthread_once(&cache.once, cache_setup);
    memset(h, 0, sizeof(*h));
    snprintf(h->from, sizeof(h->from), "%s", region_name(r));
    snprintf(h->time, sizeof(h->time), "%" PRId64, now_ms());
    randombytes_buf(nonce, sizeof(nonce));
    hex_encode(h->nonce, nonce, sizeof(nonce));
    buf_init(&m, 16384);
    buf_init(&b64, sizeof(h->sig));
    int rc = peer_message(&m, method, path, h->from, to, h->time, h->nonce, body);
    if (!rc)
        rc = kr_peer_sign(region_keyring(r), sig, buf_slice(&m));
    if (!rc)
        rc = b64_encode(&b64, SLICE(sig, sizeof(sig)));
    if (!rc && b64.len < sizeof(h->sig))
        memcpy(h->sig, b64.data, b64.len);
    else if (!rc)
        rc = ERR_INTERNAL;
    buf_release(&m);
    buf_release(&b64);
    return rc;
}

int
peer_verify(struct region *r, const char *method, const char *path, const char *from_hdr,
            const char *time_hdr, const char *nonce_hdr, const char *sig_hdr, struct slice body,
            char from[REGION_NAME_MAX])
{
    uint8_t pk[32], sig[KR_SIG_LEN], nonce[16];
    char url[REGION_URL_MAX];
    uint64_t t;
    size_t siglen = 0;
    struct buf m;
    pthread_once(&cache.once, cache_setup);
    if (!from_hdr || !time_hdr || !nonce_hdr || !sig_hdr || strlen(from_hdr) >= REGION_NAME_MAX ||
        !strcmp(from_hdr, region_name(r)) || parse_u64(time_hdr, 0, INT64_MAX, &t) ||
        strlen(nonce_hdr) != PEER_NONCE_HEX ||
        hex_decode(nonce, sizeof(nonce), nonce_hdr, PEER_NONCE_HEX) ||
        b64_decode(sig, sizeof(sig), &siglen, sig_hdr, strlen(sig_hdr)) || siglen != sizeof(sig))
        return ERR_UNAUTHORIZED;
    int64_t now = now_ms();
    if ((int64_t)t < cache.start_ms || (int64_t)t > now + PEER_WINDOW_MS ||
        (int64_t)t < now - PEER_WINDOW_MS)
        return ERR_UNAUTHORIZED;
    if (region_peer(r, from_hdr, url, pk))
        return ERR_UNAUTHORIZED;
    buf_init(&m, 16384);
    int rc = peer_message(&m, method, path, from_hdr, region_name(r), time_hdr, nonce_hdr, body);
    if (!rc && crypto_sign_verify_detached(sig, (const uint8_t *)m.data, m.len, pk) != 0)
        rc = ERR_UNAUTHORIZED;
    buf_release(&m);
    if (!rc) /* only a genuine request takes a nonce: forgeries cannot fill the cache */
        rc = nonce_take(nonce, now);
    if (!rc)
        snprintf(from, REGION_NAME_MAX, "%s", from_hdr);
    return rc;
}

int
peer_pubkey_b64(struct region *r, char out[64])
{
    uint8_t pk[KR_PUBKEY_LEN];
    int rc = kr_peer_pubkey(region_keyring(r), pk);
    if (!rc)
        sodium_bin2base64(out, 64, pk, sizeof(pk), sodium_base64_VARIANT_ORIGINAL);
    return rc;
}
