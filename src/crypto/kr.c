/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kr.c: the keyring of one region (see kr.h and docs/internals/KEYRING.md).
 * kr_init draws a 32-byte master key, splits it with Shamir over GF(2^8)
 * (sss.c, AES polynomial, x = 1..n) and returns the shares as text; the
 * public state (init id, K, N, a key-check value and one commitment per
 * share) is all that is ever persisted. While sealed, kr_unseal checks each
 * share against its checksum, the init id and its commitment before holding
 * it; at K it recombines the master key, checks it against the key-check
 * value and derives the working keys with crypto_kdf (context "oikoskr1"):
 * 1 KEK, 2 identifier pepper, 3 audit Ed25519 seed, 4 peer Ed25519 seed,
 * 5 key-check key.
 *
 * Ownership: the keyring owns the master key, the derived keys and the
 * shares it holds, each in sodium_malloc'd memory (secret.h) that is wiped
 * when freed, on error paths too. Work buffers that see secret bytes live in
 * a struct kr_scratch in the same kind of memory. The state blob and the
 * share strings returned belong to the caller.
 *
 * Thread-safety: a pthread rwlock (writer-preferring, so kr_seal is not
 * starved by a stream of readers) guards the struct. Key users take it for
 * reading; init, load, unseal and seal take it for writing. Nothing secret is
 * logged: only counts and the public init id.
 */
#include "base/common.h"

#include <pthread.h>
#include <sodium.h>

#include "base/log.h"
#include "base/util.h"
#include "crypto/aead.h"
#include "crypto/kr.h"
#include "crypto/sss.h"
#include "crypto/hash.h"

#define KR_KEY_LEN 32
#define KR_INIT_ID_LEN 8
#define KR_CHECK_LEN 4
#define KR_SHARE_VERSION 1
#define KR_SHARE_PREFIX "oks1-"
#define KR_SHARE_PREFIX_LEN (sizeof(KR_SHARE_PREFIX) - 1)
/* version | init_id | threshold | x | y, then the check */
#define KR_SHARE_OFF_ID 1
#define KR_SHARE_OFF_K (KR_SHARE_OFF_ID + KR_INIT_ID_LEN)
#define KR_SHARE_OFF_X (KR_SHARE_OFF_K + 1)
#define KR_SHARE_OFF_Y (KR_SHARE_OFF_X + 1)
#define KR_SHARE_BODY_LEN (KR_SHARE_OFF_Y + KR_KEY_LEN)
#define KR_SHARE_RAW_LEN (KR_SHARE_BODY_LEN + KR_CHECK_LEN)
#define KR_B64_VARIANT sodium_base64_VARIANT_URLSAFE_NO_PADDING
/* base64 text of a raw share, with its NUL */
#define KR_SHARE_B64_SIZE sodium_base64_ENCODED_LEN(KR_SHARE_RAW_LEN, KR_B64_VARIANT)
#define KR_SHARE_STR_SIZE (KR_SHARE_PREFIX_LEN + KR_SHARE_B64_SIZE)

/* State blob: magic | version | k | n | init_id | kcv | commit[n] | digest */
#define KR_STATE_MAGIC "OKKR"
#define KR_STATE_MAGIC_LEN 4
#define KR_STATE_VERSION 1
#define KR_STATE_HEAD_LEN (KR_STATE_MAGIC_LEN + 3 + KR_INIT_ID_LEN + KR_HASH_LEN)

#define KR_KDF_CONTEXT "oikoskr1"
enum kr_subkey {
    KR_SUB_KEK = 1,
    KR_SUB_PEPPER = 2,
    KR_SUB_AUDIT = 3,
    KR_SUB_PEER = 4,
    KR_SUB_KCV = 5,
};

/* Domain-separation keys for BLAKE2b (16..64 bytes each). */
static const char commit_key[] = "oikos kr share commitment v1";
static const char kcv_label[] = "oikos kr key check value v1";

/* The keys of an unsealed keyring; locked memory. */
struct kr_keys {
    uint8_t master[KR_KEY_LEN];
    uint8_t kek[KR_KEY_LEN];
    uint8_t pepper[KR_KEY_LEN];
    uint8_t audit_sk[crypto_sign_SECRETKEYBYTES];
    uint8_t audit_pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t peer_sk[crypto_sign_SECRETKEYBYTES];
    uint8_t peer_pk[crypto_sign_PUBLICKEYBYTES];
};

/* Shares taken while sealed, until the threshold; locked memory. */
struct kr_held {
    unsigned count;
    uint8_t xs[KR_MAX_SHARES];
    uint8_t ys[KR_MAX_SHARES][KR_KEY_LEN];
};

/* Work space for anything that touches secret bytes; locked memory. */
struct kr_scratch {
    uint8_t ys[KR_MAX_SHARES * KR_KEY_LEN];
    uint8_t raw[KR_SHARE_RAW_LEN];
    uint8_t digest[HASH_SHA256_LEN];
    uint8_t sub[KR_KEY_LEN];
    uint8_t kcv[KR_HASH_LEN];
    uint8_t commit_in[KR_INIT_ID_LEN + 1 + KR_KEY_LEN];
};

struct kr {
    pthread_rwlock_t lock;
    bool initialized;
    unsigned n, k;
    uint8_t init_id[KR_INIT_ID_LEN];
    uint8_t kcv[KR_HASH_LEN];
    uint8_t (*commit)[KR_HASH_LEN]; /* n commitments; public; malloc'd */
    struct kr_keys *keys;           /* NULL while sealed */
    struct kr_held *held;           /* NULL unless shares are pending */
};

_Static_assert(sizeof(((struct kr_keys *)0)->kek) == AEAD_KEY_LEN, "KEK size");
_Static_assert(sizeof(((struct kr_keys *)0)->pepper) == crypto_auth_hmacsha256_KEYBYTES,
               "pepper size");
_Static_assert(KR_KEY_LEN == crypto_kdf_KEYBYTES, "master key size");
_Static_assert(KR_KEY_LEN == crypto_sign_SEEDBYTES, "seed size");
_Static_assert(KR_SIG_LEN == crypto_sign_BYTES, "signature size");
_Static_assert(KR_PUBKEY_LEN == crypto_sign_PUBLICKEYBYTES, "public key size");
_Static_assert(sizeof(KR_KDF_CONTEXT) - 1 == crypto_kdf_CONTEXTBYTES, "kdf context size");

static bool
params_ok(unsigned n, unsigned k)
{
    if (k == 1 && n == 1)
        return true;
    return k >= 2 && k <= n && n <= KR_MAX_SHARES;
}

/* The key-check value: BLAKE2b-256 of a fixed label keyed with subkey 5. */
static int
compute_kcv(uint8_t out[KR_HASH_LEN], const uint8_t master[KR_KEY_LEN], struct kr_scratch *s)
{
    int rc = 0;
    if (crypto_kdf_derive_from_key(s->sub, KR_KEY_LEN, KR_SUB_KCV, KR_KDF_CONTEXT, master) != 0 ||
        crypto_generichash(out, KR_HASH_LEN, (const uint8_t *)kcv_label, sizeof(kcv_label) - 1,
                           s->sub, KR_KEY_LEN) != 0)
        rc = ERR_INTERNAL;
    sodium_memzero(s->sub, sizeof(s->sub));
    return rc;
}

/* Fills every derived key of keys from keys->master. */
static int
derive_keys(struct kr_keys *keys, struct kr_scratch *s)
{
    int rc = ERR_INTERNAL;
    if (crypto_kdf_derive_from_key(keys->kek, KR_KEY_LEN, KR_SUB_KEK, KR_KDF_CONTEXT,
                                   keys->master) != 0)
        goto out;
    if (crypto_kdf_derive_from_key(keys->pepper, KR_KEY_LEN, KR_SUB_PEPPER, KR_KDF_CONTEXT,
                                   keys->master) != 0)
        goto out;
    if (crypto_kdf_derive_from_key(s->sub, KR_KEY_LEN, KR_SUB_AUDIT, KR_KDF_CONTEXT,
                                   keys->master) != 0 ||
        crypto_sign_seed_keypair(keys->audit_pk, keys->audit_sk, s->sub) != 0)
        goto out;
    if (crypto_kdf_derive_from_key(s->sub, KR_KEY_LEN, KR_SUB_PEER, KR_KDF_CONTEXT, keys->master) !=
            0 ||
        crypto_sign_seed_keypair(keys->peer_pk, keys->peer_sk, s->sub) != 0)
        goto out;
    rc = 0;
out:
    sodium_memzero(s->sub, sizeof(s->sub));
    return rc;
}

/* commitment = BLAKE2b-256 keyed with a fixed label, over init_id | x | y. */
static int
commit_share(uint8_t out[KR_HASH_LEN], const uint8_t init_id[KR_INIT_ID_LEN], uint8_t x,
             const uint8_t y[KR_KEY_LEN], struct kr_scratch *s)
{
    memcpy(s->commit_in, init_id, KR_INIT_ID_LEN);
    s->commit_in[KR_INIT_ID_LEN] = x;
    memcpy(s->commit_in + KR_INIT_ID_LEN + 1, y, KR_KEY_LEN);
    int rc = crypto_generichash(out, KR_HASH_LEN, s->commit_in, sizeof(s->commit_in),
                                (const uint8_t *)commit_key, sizeof(commit_key) - 1);
    sodium_memzero(s->commit_in, sizeof(s->commit_in));
    return rc == 0 ? 0 : ERR_INTERNAL;
}

/* Writes the text of share (x, y) into out (KR_SHARE_STR_SIZE bytes, locked). */
static void
encode_share(char *out, const uint8_t init_id[KR_INIT_ID_LEN], unsigned k, uint8_t x,
             const uint8_t y[KR_KEY_LEN], struct kr_scratch *s)
{
    uint8_t *r = s->raw;
    r[0] = KR_SHARE_VERSION;
    memcpy(r + KR_SHARE_OFF_ID, init_id, KR_INIT_ID_LEN);
    r[KR_SHARE_OFF_K] = (uint8_t)k;
    r[KR_SHARE_OFF_X] = x;
    memcpy(r + KR_SHARE_OFF_Y, y, KR_KEY_LEN);
    hash_sha256(s->digest, r, KR_SHARE_BODY_LEN);
    memcpy(r + KR_SHARE_BODY_LEN, s->digest, KR_CHECK_LEN);

    memcpy(out, KR_SHARE_PREFIX, KR_SHARE_PREFIX_LEN);
    sodium_bin2base64(out + KR_SHARE_PREFIX_LEN, KR_SHARE_B64_SIZE, r, KR_SHARE_RAW_LEN,
                      KR_B64_VARIANT);
    sodium_memzero(s->raw, sizeof(s->raw));
    sodium_memzero(s->digest, sizeof(s->digest));
}

static bool
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * Decodes and checks a share text into s->raw: format, checksum, init id,
 * threshold, x range and commitment. Returns 0 and *x, or ERR_BAD_SHARE.
 * Surrounding white space (a pasted newline) is ignored.
 */
static int
parse_share(struct kr *kr, struct kr_scratch *s, const char *text, uint8_t *x)
{
    if (!text)
        return ERR_BAD_SHARE;
    size_t len = strlen(text);
    while (len && is_space(*text)) {
        text++;
        len--;
    }
    while (len && is_space(text[len - 1]))
        len--;
    if (len != KR_SHARE_STR_SIZE - 1 || memcmp(text, KR_SHARE_PREFIX, KR_SHARE_PREFIX_LEN) != 0)
        return ERR_BAD_SHARE;

    size_t rawlen = 0;
    const uint8_t *r = s->raw;
    if (b64url_decode(s->raw, sizeof(s->raw), &rawlen, text + KR_SHARE_PREFIX_LEN,
                      len - KR_SHARE_PREFIX_LEN) != 0 ||
        rawlen != KR_SHARE_RAW_LEN || r[0] != KR_SHARE_VERSION)
        return ERR_BAD_SHARE;
    hash_sha256(s->digest, r, KR_SHARE_BODY_LEN);
    bool check_ok = sodium_memcmp(s->digest, r + KR_SHARE_BODY_LEN, KR_CHECK_LEN) == 0;
    sodium_memzero(s->digest, sizeof(s->digest));
    if (!check_ok)
        return ERR_BAD_SHARE;
    if (sodium_memcmp(r + KR_SHARE_OFF_ID, kr->init_id, KR_INIT_ID_LEN) != 0 ||
        r[KR_SHARE_OFF_K] != kr->k)
        return ERR_BAD_SHARE;
    uint8_t sx = r[KR_SHARE_OFF_X];
    if (sx == 0 || sx > kr->n)
        return ERR_BAD_SHARE;
    if (commit_share(s->digest, kr->init_id, sx, r + KR_SHARE_OFF_Y, s) != 0)
        return ERR_INTERNAL;
    bool commit_ok = sodium_memcmp(s->digest, kr->commit[sx - 1], KR_HASH_LEN) == 0;
    sodium_memzero(s->digest, sizeof(s->digest));
    if (!commit_ok)
        return ERR_BAD_SHARE;
    *x = sx;
    return 0;
}

/* Appends the state blob of the given parameters to out; unchanged on error. */
static int
state_encode(struct buf *out, const uint8_t init_id[KR_INIT_ID_LEN], unsigned k, unsigned n,
             const uint8_t kcv[KR_HASH_LEN], const uint8_t (*commit)[KR_HASH_LEN])
{
    size_t len = KR_STATE_HEAD_LEN + (size_t)n * KR_HASH_LEN + KR_HASH_LEN;
    uint8_t *blob = malloc(len);
    if (!blob)
        return ERR_NOMEM;
    uint8_t *p = blob;
    memcpy(p, KR_STATE_MAGIC, KR_STATE_MAGIC_LEN);
    p += KR_STATE_MAGIC_LEN;
    *p++ = KR_STATE_VERSION;
    *p++ = (uint8_t)k;
    *p++ = (uint8_t)n;
    memcpy(p, init_id, KR_INIT_ID_LEN);
    p += KR_INIT_ID_LEN;
    memcpy(p, kcv, KR_HASH_LEN);
    p += KR_HASH_LEN;
    memcpy(p, commit, (size_t)n * KR_HASH_LEN);
    p += (size_t)n * KR_HASH_LEN;
    int rc = ERR_INTERNAL;
    if (crypto_generichash(p, KR_HASH_LEN, blob, (size_t)(p - blob), NULL, 0) == 0)
        rc = buf_add(out, blob, len);
    free(blob);
    return rc;
}

int
kr_new(struct kr **out)
{
    int rc = aead_setup();
    if (rc)
        return rc;
    struct kr *kr = calloc(1, sizeof(*kr));
    if (!kr)
        return ERR_NOMEM;
    pthread_rwlockattr_t attr;
    if (pthread_rwlockattr_init(&attr) != 0) {
        free(kr);
        return ERR_NOMEM;
    }
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    rc = pthread_rwlock_init(&kr->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (rc != 0) {
        free(kr);
        return ERR_NOMEM;
    }
    *out = kr;
    return 0;
}

void
kr_free(struct kr *kr)
{
    if (!kr)
        return;
    secret_free(kr->keys);
    secret_free(kr->held);
    free(kr->commit);
    pthread_rwlock_destroy(&kr->lock);
    sodium_memzero(kr, sizeof(*kr));
    free(kr);
}

void
kr_shares_free(char **shares, unsigned n)
{
    if (!shares)
        return;
    for (unsigned i = 0; i < n; i++)
        secret_free(shares[i]);
    free(shares);
}

int
kr_init(struct kr *kr, unsigned n, unsigned k, struct buf *state_out, char ***shares_out)
{
    if (!params_ok(n, k))
        return ERR_INVAL;

    struct kr_keys *keys = NULL;
    struct kr_scratch *s = NULL;
    uint8_t(*commit)[KR_HASH_LEN] = NULL;
    char **shares = NULL;
    uint8_t init_id[KR_INIT_ID_LEN];
    uint8_t kcv[KR_HASH_LEN];
    uint8_t xs[KR_MAX_SHARES];
    int rc;

    pthread_rwlock_wrlock(&kr->lock);
    if (kr->initialized) {
        rc = ERR_EXISTS;
        goto out;
    }
    rc = ERR_NOMEM;
    keys = secret_alloc(sizeof(*keys));
    s = secret_alloc(sizeof(*s));
    commit = calloc(n, sizeof(*commit));
    shares = calloc(n, sizeof(*shares));
    if (!keys || !s || !commit || !shares)
        goto out;
    for (unsigned i = 0; i < n; i++) {
        shares[i] = secret_alloc(KR_SHARE_STR_SIZE);
        if (!shares[i])
            goto out;
    }

    randombytes_buf(keys->master, sizeof(keys->master));
    randombytes_buf(init_id, sizeof(init_id));
    for (unsigned i = 0; i < n; i++)
        xs[i] = (uint8_t)(i + 1);
    if (k == 1)
        memcpy(s->ys, keys->master, KR_KEY_LEN); /* degree 0: the share is the key */
    else if ((rc = sss_split(s->ys, xs, n, k, keys->master, KR_KEY_LEN, SSS_POLY_AES)) != 0)
        goto out;

    for (unsigned i = 0; i < n; i++) {
        const uint8_t *y = s->ys + (size_t)i * KR_KEY_LEN;
        if ((rc = commit_share(commit[i], init_id, xs[i], y, s)) != 0)
            goto out;
        encode_share(shares[i], init_id, k, xs[i], y, s);
    }
    if ((rc = compute_kcv(kcv, keys->master, s)) != 0 || (rc = derive_keys(keys, s)) != 0)
        goto out;
    if ((rc = state_encode(state_out, init_id, k, n, kcv, (const uint8_t(*)[KR_HASH_LEN])commit)))
        goto out;

    /* Nothing can fail from here on. */
    kr->initialized = true;
    kr->n = n;
    kr->k = k;
    memcpy(kr->init_id, init_id, sizeof(init_id));
    memcpy(kr->kcv, kcv, sizeof(kcv));
    kr->commit = commit;
    commit = NULL;
    kr->keys = keys;
    keys = NULL;
    *shares_out = shares;
    shares = NULL;
    {
        char idhex[2 * KR_INIT_ID_LEN + 1];
        hex_encode(idhex, init_id, KR_INIT_ID_LEN);
        log_info("keyring initialised init_id=%s n=%u k=%u", idhex, n, k);
    }
    rc = 0;
out:
    pthread_rwlock_unlock(&kr->lock);
    secret_free(keys);
    secret_free(s);
    free(commit);
    kr_shares_free(shares, n);
    return rc;
}

int
kr_load(struct kr *kr, struct slice state)
{
    const uint8_t *p = state.p;
    if (state.len < KR_STATE_HEAD_LEN + KR_HASH_LEN ||
        memcmp(p, KR_STATE_MAGIC, KR_STATE_MAGIC_LEN) != 0 ||
        p[KR_STATE_MAGIC_LEN] != KR_STATE_VERSION)
        return ERR_CORRUPT;
    unsigned k = p[KR_STATE_MAGIC_LEN + 1];
    unsigned n = p[KR_STATE_MAGIC_LEN + 2];
    size_t body = KR_STATE_HEAD_LEN + (size_t)n * KR_HASH_LEN;
    if (!params_ok(n, k) || state.len != body + KR_HASH_LEN)
        return ERR_CORRUPT;
    uint8_t digest[KR_HASH_LEN];
    if (crypto_generichash(digest, sizeof(digest), p, body, NULL, 0) != 0)
        return ERR_INTERNAL;
    if (sodium_memcmp(digest, p + body, KR_HASH_LEN) != 0)
        return ERR_CORRUPT;

    uint8_t(*commit)[KR_HASH_LEN] = malloc((size_t)n * KR_HASH_LEN);
    if (!commit)
        return ERR_NOMEM;
    memcpy(commit, p + KR_STATE_HEAD_LEN, (size_t)n * KR_HASH_LEN);

    pthread_rwlock_wrlock(&kr->lock);
    if (kr->initialized) {
        pthread_rwlock_unlock(&kr->lock);
        free(commit);
        return ERR_EXISTS;
    }
    kr->initialized = true;
    kr->n = n;
    kr->k = k;
    memcpy(kr->init_id, p + KR_STATE_MAGIC_LEN + 3, KR_INIT_ID_LEN);
    memcpy(kr->kcv, p + KR_STATE_MAGIC_LEN + 3 + KR_INIT_ID_LEN, KR_HASH_LEN);
    kr->commit = commit;
    pthread_rwlock_unlock(&kr->lock);
    return 0;
}

int
kr_unseal(struct kr *kr, const char *share, unsigned *progress, unsigned *threshold)
{
    struct kr_scratch *s = NULL;
    struct kr_keys *keys = NULL;
    const uint8_t *yp[KR_MAX_SHARES];
    uint8_t x = 0;
    int rc;

    *progress = 0;
    *threshold = 0;
    pthread_rwlock_wrlock(&kr->lock);
    if (!kr->initialized) {
        rc = ERR_NOT_INITIALIZED;
        goto out;
    }
    *threshold = kr->k;
    if (kr->keys) {
        rc = 0;
        goto out;
    }
    *progress = kr->held ? kr->held->count : 0;

    rc = ERR_NOMEM;
    s = secret_alloc(sizeof(*s));
    if (!s)
        goto out;
    if ((rc = parse_share(kr, s, share, &x)) != 0)
        goto out;
    if (kr->held) {
        for (unsigned i = 0; i < kr->held->count; i++) {
            if (kr->held->xs[i] == x) {
                rc = ERR_CONFLICT;
                goto out;
            }
        }
    } else if (!(kr->held = secret_alloc(sizeof(*kr->held)))) {
        rc = ERR_NOMEM;
        goto out;
    }
    if (kr->held->count + 1 < kr->k) {
        struct kr_held *h = kr->held;
        h->xs[h->count] = x;
        memcpy(h->ys[h->count], s->raw + KR_SHARE_OFF_Y, KR_KEY_LEN);
        h->count++;
        *progress = h->count;
        rc = 0;
        goto out;
    }

    /* This share completes the threshold. */
    keys = secret_alloc(sizeof(*keys));
    if (!keys) {
        rc = ERR_NOMEM;
        goto out; /* the share is not held: state unchanged */
    }
    struct kr_held *h = kr->held;
    h->xs[h->count] = x;
    memcpy(h->ys[h->count], s->raw + KR_SHARE_OFF_Y, KR_KEY_LEN);
    for (unsigned i = 0; i < kr->k; i++)
        yp[i] = h->ys[i];
    rc = 0;
    if (kr->k == 1)
        memcpy(keys->master, h->ys[0], KR_KEY_LEN); /* degree 0: the share is the key */
    else
        rc = sss_combine(keys->master, KR_KEY_LEN, h->xs, yp, kr->k, SSS_POLY_AES);
    if (rc == 0)
        rc = compute_kcv(s->kcv, keys->master, s);
    if (rc == 0 && sodium_memcmp(s->kcv, kr->kcv, KR_HASH_LEN) != 0) {
        /* Shares that pass their commitments yet give the wrong key: the
         * state does not belong to these shares. Start over. */
        log_warn("keyring unseal failed reason=\"key check value mismatch\" k=%u", kr->k);
        rc = ERR_BAD_SHARE;
    }
    if (rc == 0)
        rc = derive_keys(keys, s);
    secret_free(kr->held);
    kr->held = NULL;
    *progress = 0;
    if (rc != 0)
        goto out;
    kr->keys = keys;
    keys = NULL;
    log_info("keyring unsealed k=%u", kr->k);
out:
    pthread_rwlock_unlock(&kr->lock);
    secret_free(keys);
    secret_free(s);
    return rc;
}

void
kr_seal(struct kr *kr)
{
    pthread_rwlock_wrlock(&kr->lock);
    bool was_open = kr->keys != NULL;
    secret_free(kr->keys);
    kr->keys = NULL;
    secret_free(kr->held);
    kr->held = NULL;
    pthread_rwlock_unlock(&kr->lock);
    if (was_open)
        log_info("keyring sealed");
}

bool
kr_sealed(struct kr *kr)
{
    pthread_rwlock_rdlock(&kr->lock);
    bool sealed = kr->keys == NULL;
    pthread_rwlock_unlock(&kr->lock);
    return sealed;
}

bool
kr_initialized(struct kr *kr)
{
    pthread_rwlock_rdlock(&kr->lock);
    bool init = kr->initialized;
    pthread_rwlock_unlock(&kr->lock);
    return init;
}

void
kr_params(struct kr *kr, unsigned *k, unsigned *n)
{
    pthread_rwlock_rdlock(&kr->lock);
    *k = kr->k;
    *n = kr->n;
    pthread_rwlock_unlock(&kr->lock);
}

/* Takes the read lock if unsealed; the caller then unlocks. ERR_SEALED otherwise. */
static int
use_begin(struct kr *kr)
{
    pthread_rwlock_rdlock(&kr->lock);
    if (!kr->keys) {
        pthread_rwlock_unlock(&kr->lock);
        return ERR_SEALED;
    }
    return 0;
}

int
kr_wrap(struct kr *kr, struct buf *out, const struct key32 *key, struct slice aad)
{
    int rc = use_begin(kr);
    if (rc)
        return rc;
    enum aead_cipher c = aead_default();
    uint8_t blob[1 + AEAD_MAX_OVERHEAD + sizeof(key->b)];
    size_t len = 0;
    blob[0] = (uint8_t)c;
    rc = aead_seal(c, blob + 1, sizeof(blob) - 1, &len, kr->keys->kek, aad,
                   SLICE(key->b, sizeof(key->b)));
    pthread_rwlock_unlock(&kr->lock);
    if (rc == 0)
        rc = buf_add(out, blob, 1 + len);
    return rc;
}

int
kr_unwrap(struct kr *kr, struct key32 *key, struct slice aad, struct slice wrapped)
{
    int rc = use_begin(kr);
    if (rc)
        return rc;
    /* The first byte names the cipher, so that a key wrapped on a machine
     * with AES-NI opens on one without it, and the other way round. */
    unsigned id = wrapped.len ? wrapped.p[0] : 0;
    enum aead_cipher c = (enum aead_cipher)id;
    size_t len = 0;
    if ((id != AEAD_AES256GCM && id != AEAD_XCHACHA20POLY1305) ||
        wrapped.len != 1 + aead_overhead(c) + sizeof(key->b))
        rc = ERR_CRYPTO;
    else if (!aead_available(c))
        rc = ERR_UNAVAILABLE;
    else
        rc = aead_open(c, key->b, sizeof(key->b), &len, kr->keys->kek, aad,
                       SLICE(wrapped.p + 1, wrapped.len - 1));
    pthread_rwlock_unlock(&kr->lock);
    if (rc == 0 && len != sizeof(key->b))
        rc = ERR_CRYPTO;
    if (rc != 0)
        sodium_memzero(key->b, sizeof(key->b));
    return rc;
}

int
kr_ident(struct kr *kr, uint8_t out[KR_HASH_LEN], struct slice msg)
{
    int rc = use_begin(kr);
    if (rc)
        return rc;
    crypto_auth_hmacsha256(out, msg.len ? msg.p : (const uint8_t *)"", msg.len, kr->keys->pepper);
    pthread_rwlock_unlock(&kr->lock);
    return 0;
}

int
kr_audit_sign(struct kr *kr, uint8_t sig[KR_SIG_LEN], struct slice msg)
{
    int rc = use_begin(kr);
    if (rc)
        return rc;
    crypto_sign_detached(sig, NULL, msg.len ? msg.p : (const uint8_t *)"", msg.len,
                         kr->keys->audit_sk);
    pthread_rwlock_unlock(&kr->lock);
    return 0;
}

int
kr_audit_pubkey(struct kr *kr, uint8_t pk[KR_PUBKEY_LEN])
{
    int rc = use_begin(kr);
    if (rc)
        return rc;
    memcpy(pk, kr->keys->audit_pk, KR_PUBKEY_LEN);
    pthread_rwlock_unlock(&kr->lock);
    return 0;
}

int
kr_peer_sign(struct kr *kr, uint8_t sig[KR_SIG_LEN], struct slice msg)
{
    int rc = use_begin(kr);
    if (rc)
        return rc;
    crypto_sign_detached(sig, NULL, msg.len ? msg.p : (const uint8_t *)"", msg.len,
                         kr->keys->peer_sk);
    pthread_rwlock_unlock(&kr->lock);
    return 0;
}

int
kr_peer_pubkey(struct kr *kr, uint8_t pk[KR_PUBKEY_LEN])
{
    int rc = use_begin(kr);
    if (rc)
        return rc;
    memcpy(pk, kr->keys->peer_pk, KR_PUBKEY_LEN);
    pthread_rwlock_unlock(&kr->lock);
    return 0;
}
