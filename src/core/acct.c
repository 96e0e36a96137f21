/* SPDX-License-Identifier: Apache-2.0 */
/*
 * acct.c: accounts and sessions (see acct.h), on top of the keyring
 * (wrapping account keys), pwhash (Argon2id) and the store. The login
 * limiter is a fixed-size in-memory table under a mutex, indexed by a keyed
 * hash of the account id, so its memory is bounded whatever the traffic.
 * So is the cache of verified HTTP Basic credentials (acct_login_basic):
 * keyed hashes only, in locked memory, forgotten on log-out and seal.
 */
#include "base/common.h"

#include <pthread.h>
#include <sodium.h>

#include "base/log.h"
#include "base/util.h"
#include "core/acct.h"
#include "core/retention.h"
#include "core/trail.h"
#include "crypto/kr.h"
#include "crypto/pwhash.h"

#define LIMITER_SLOTS 4096

struct limiter_slot {
    uint64_t tag;
    uint32_t failures;
    int64_t locked_until;
};

static struct {
    pthread_mutex_t mu;
    pthread_once_t once;
    uint8_t key[crypto_shorthash_KEYBYTES];
    struct limiter_slot slots[LIMITER_SLOTS];
} limiter = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_ONCE_INIT, {0}, {{0}}};

static void
limiter_setup(void)
{
    randombytes_buf(limiter.key, sizeof(limiter.key));
}

static struct limiter_slot *
limiter_slot(const char *id, uint64_t *tag)
{
    uint8_t h[crypto_shorthash_BYTES];
    pthread_once(&limiter.once, limiter_setup);
    crypto_shorthash(h, (const uint8_t *)id, strlen(id), limiter.key);
    memcpy(tag, h, sizeof(*tag));
    *tag |= 1; /* never 0, the empty slot */
    return &limiter.slots[*tag % LIMITER_SLOTS];
}

/* 0 if the account may try to log in now, else the seconds to wait. */
static int64_t
limiter_wait(const char *id)
{
    uint64_t tag;
    int64_t now = clock_now(), wait = 0;
    pthread_mutex_lock(&limiter.mu);
    struct limiter_slot *s = limiter_slot(id, &tag);
    if (s->tag == tag && s->locked_until > now)
        wait = s->locked_until - now;
    pthread_mutex_unlock(&limiter.mu);
    return wait;
}

static void
limiter_record(const struct config *cfg, const char *id, bool ok)
{
    uint64_t tag;
    pthread_mutex_lock(&limiter.mu);
    struct limiter_slot *s = limiter_slot(id, &tag);
    if (ok) {
        if (s->tag == tag)
            memset(s, 0, sizeof(*s));
    } else {
        if (s->tag != tag) {
            memset(s, 0, sizeof(*s));
            s->tag = tag;
        }
        if (++s->failures >= cfg->login_max_failures) {
            s->locked_until = clock_now() + (int64_t)cfg->login_lockout;
            s->failures = 0;
        }
    }
    pthread_mutex_unlock(&limiter.mu);
}

bool
acct_id_valid(const char *id)
{
    const char *dash = strchr(id, '-');
    size_t n = strlen(id);
    if (!dash || dash == id || n >= STORE_ID_MAX || (size_t)(dash - id) >= REGION_NAME_MAX)
        return false;
    for (const char *p = id; p < dash; p++)
        if (*p < 'a' || *p > 'z')
            return false;
    if (strlen(dash + 1) != 20)
        return false;
    for (const char *p = dash + 1; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '2' && *p <= '7')))
            return false;
    return true;
}

static void
acct_aad(char *aad, size_t cap, const char *id)
{
    snprintf(aad, cap, "acct|%s", id);
}

int
acct_create(struct region *r, const char *country, const char *password, size_t pwlen,
            char id_out[STORE_ID_MAX])
{
    static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
    const struct config *cfg = region_config(r);
    struct store_account a;
    struct store_batch *b = NULL;
    struct key32 *key = NULL;
    struct buf wrapped;
    char aad[96];
    int rc;

    if (strlen(country) != 2 || pwlen < ACCT_PASSWORD_MIN || pwlen > ACCT_PASSWORD_MAX)
        return ERR_INVAL;
    memset(&a, 0, sizeof(a));
    for (int i = 0; i < 2; i++) {
        char c = country[i];
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 32);
        if (c < 'A' || c > 'Z')
            return ERR_INVAL;
        a.country[i] = c;
    }
    if (region_sealed(r))
        return ERR_SEALED;

    buf_init(&wrapped, STORE_WRAPPED_MAX);
    int n = snprintf(a.id, sizeof(a.id), "%s-", region_name(r));
    for (int i = 0; i < 20; i++)
        a.id[n + i] = b32[randombytes_uniform(32)];
    a.id[n + 20] = 0;
    a.created = clock_now();

    rc = pwhash_make(a.pwhash, password, pwlen, cfg->pwhash_ops, (size_t)cfg->pwhash_mem);
    if (rc)
        goto out;
    rc = ERR_NOMEM;
    key = key32_new();
    if (!key)
        goto out;
    key32_random(key);
    acct_aad(aad, sizeof(aad), a.id);
    rc = kr_wrap(region_keyring(r), &wrapped, key, SLICE_STR(aad));
    if (rc)
        goto out;
    memcpy(a.wrapped_key, wrapped.data, wrapped.len);
    a.wrapped_len = wrapped.len;
    rc = store_batch_new(&b);
    if (!rc)
        rc = store_batch_account_insert(b, &a);
    if (!rc)
        rc = trail_add(r, b, &(struct trail){AUDIT_USER, "account.create", a.id, NULL, NULL, 0});
    if (!rc)
        rc = trail_commit(r, b, true);
    if (!rc)
        memcpy(id_out, a.id, STORE_ID_MAX);
out:
    store_batch_free(b);
    key32_free(key);
    buf_release(&wrapped);
    secret_wipe(&a, sizeof(a));
    return rc;
}

/*
 * A hash of a throw-away password with the configured cost, made once, so
 * that an unknown account costs the same Argon2id work as a wrong password.
 */
static const char *
dummy_hash(const struct config *cfg)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static char dummy[PWHASH_STR_MAX];
    pthread_mutex_lock(&mu);
    if (!dummy[0] &&
        pwhash_make(dummy, "not-a-password", 14, cfg->pwhash_ops, (size_t)cfg->pwhash_mem))
        dummy[0] = 0;
    pthread_mutex_unlock(&mu);
    return dummy[0] ? dummy : NULL;
}

int
acct_login(struct region *r, const char *id, const char *password, size_t pwlen,
           char token_out[REGION_TOKEN_MAX], int64_t *retry_after)
{
    const struct config *cfg = region_config(r);
    struct store_account a;
    struct store_session se;
    struct store_batch *b = NULL;
    int rc;

    *retry_after = 0;
    if (region_sealed(r))
        return ERR_SEALED;
    if (!acct_id_valid(id) || pwlen > ACCT_PASSWORD_MAX)
        return ERR_UNAUTHORIZED;
    int64_t wait = limiter_wait(id);
    if (wait > 0) {
        *retry_after = wait;
        return ERR_RATE_LIMITED;
    }
    rc = store_account_get(region_store(r), id, &a);
    if (rc == ERR_NOT_FOUND) {
        const char *dummy = dummy_hash(cfg);
        if (dummy) {
            int same_work = pwhash_check(dummy, password, pwlen);
            (void)same_work;
        }
        limiter_record(cfg, id, false);
        return ERR_UNAUTHORIZED;
    }
    if (rc)
        return rc;
    rc = pwhash_check(a.pwhash, password, pwlen);
    secret_wipe(&a, sizeof(a));
    limiter_record(cfg, id, rc == 0);
    if (rc) { /* the owner sees wrong passwords tried on their account */
        trail_refused(
            r, &(struct trail){AUDIT_USER, "session.create", id, NULL, NULL, ERR_UNAUTHORIZED});
        return ERR_UNAUTHORIZED;
    }

    memset(&se, 0, sizeof(se));
    region_token_new(r, token_out);
    region_token_hash(se.token_hash, token_out);
    snprintf(se.account, sizeof(se.account), "%s", id);
    se.created = clock_now();
    se.expires = se.created + (int64_t)cfg->session_ttl;
    rc = store_batch_new(&b);
    if (!rc)
        rc = store_batch_session_insert(b, &se);
    if (!rc) /* the idle-account rule counts from here (retention.h) */
        rc = store_batch_activity_put(b, id, retention_day(se.created));
    if (!rc)
        rc = trail_add(r, b, &(struct trail){AUDIT_USER, "session.create", id, NULL, NULL, 0});
    if (!rc)
        rc = trail_commit(r, b, true);
    store_batch_free(b);
    if (rc)
        secret_wipe(token_out, REGION_TOKEN_MAX);
    return rc;
}

int
acct_auth(struct region *r, const char *token, char account_out[STORE_ID_MAX])
{
    struct store_session se;
    uint8_t th[32];
    if (!token || strlen(token) >= REGION_TOKEN_MAX)
        return ERR_UNAUTHORIZED;
    region_token_hash(th, token);
    int rc = store_session_get(region_store(r), th, &se);
    if (rc == ERR_NOT_FOUND)
        return ERR_UNAUTHORIZED;
    if (rc)
        return rc;
    if (se.expires <= clock_now())
        return ERR_UNAUTHORIZED;
    memcpy(account_out, se.account, STORE_ID_MAX);
    retention_touch(r, account_out);
    return 0;
}

int
acct_logout(struct region *r, const char *token)
{
    struct store_batch *b = NULL;
    struct store_session se;
    uint8_t th[32];
    region_token_hash(th, token);
    int rc = store_session_get(region_store(r), th, &se);
    if (rc == ERR_NOT_FOUND)
        return 0; /* already gone */
    if (!rc)
        rc = store_batch_new(&b);
    if (!rc)
        rc = store_batch_session_delete(b, th);
    if (!rc)
        rc = trail_add(r, b,
                       &(struct trail){AUDIT_USER, "session.delete", se.account, NULL, NULL, 0});
    if (!rc)
        rc = trail_commit(r, b, true);
    if (!rc) /* logging out also forgets the CardDAV password */
        acct_basic_forget(se.account);
    store_batch_free(b);
    return rc;
}

int
acct_key(struct region *r, const char *account, struct key32 *key)
{
    struct store_account a;
    char aad[96];
    int rc = store_account_get(region_store(r), account, &a);
    if (rc)
        return rc;
    acct_aad(aad, sizeof(aad), account);
    rc = kr_unwrap(region_keyring(r), key, SLICE_STR(aad), SLICE(a.wrapped_key, a.wrapped_len));
    secret_wipe(&a, sizeof(a));
    return rc;
}

/* HTTP Basic credentials ---------------------------------------------------- */

/*
 * A set-associative cache: BASIC_SETS sets of BASIC_WAYS slots, the set
 * chosen by the account's tag, so that its memory is fixed and an
 * account's entries are found (and forgotten) without a scan. It lives in
 * sodium_malloc'd memory with its key; nothing in it is a password.
 */
#define BASIC_SETS 512
#define BASIC_WAYS 4

struct basic_slot {
    uint8_t acct[16]; /* keyed hash of the account id */
    uint8_t cred[32]; /* keyed hash of id, stored password hash and password */
    int64_t expires;
};

struct basic_cache {
    uint8_t key[crypto_generichash_KEYBYTES];
    struct basic_slot slots[BASIC_SETS][BASIC_WAYS];
};

static struct {
    pthread_mutex_t mu;
    pthread_once_t once;
    struct basic_cache *c;
} basic = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_ONCE_INIT, NULL};

static void
basic_setup(void)
{
    basic.c = secret_alloc(sizeof(*basic.c));
    if (basic.c)
        randombytes_buf(basic.c->key, sizeof(basic.c->key));
}

/* The account's tag and set; under basic.mu. */
static struct basic_slot *
basic_set(const char *id, uint8_t tag[16])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, basic.c->key, sizeof(basic.c->key), 16);
    crypto_generichash_update(&st, (const uint8_t *)"acct", 5);
    crypto_generichash_update(&st, (const uint8_t *)id, strlen(id));
    crypto_generichash_final(&st, tag, 16);
    uint32_t h = (uint32_t)tag[0] | (uint32_t)tag[1] << 8 | (uint32_t)tag[2] << 16;
    return basic.c->slots[h % BASIC_SETS];
}

/* Under basic.mu. */
static void
basic_cred(uint8_t out[32], const char *id, const char *pwhash, const char *password, size_t pwlen)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, basic.c->key, sizeof(basic.c->key), 32);
    crypto_generichash_update(&st, (const uint8_t *)"cred", 5);
    crypto_generichash_update(&st, (const uint8_t *)id, strlen(id) + 1);
    crypto_generichash_update(&st, (const uint8_t *)pwhash, strlen(pwhash) + 1);
    crypto_generichash_update(&st, (const uint8_t *)password, pwlen);
    crypto_generichash_final(&st, out, 32);
    secret_wipe(&st, sizeof(st));
}

/* True if (id, password) was verified against pwhash recently. */
static bool
basic_hit(const char *id, const char *pwhash, const char *password, size_t pwlen)
{
    uint8_t tag[16], cred[32];
    bool hit = false;
    int64_t now = clock_now();
    pthread_once(&basic.once, basic_setup);
    pthread_mutex_lock(&basic.mu);
    if (basic.c) {
        struct basic_slot *set = basic_set(id, tag);
        basic_cred(cred, id, pwhash, password, pwlen);
        for (int i = 0; i < BASIC_WAYS && !hit; i++)
            hit = set[i].expires > now && !sodium_memcmp(set[i].acct, tag, 16) &&
                  !sodium_memcmp(set[i].cred, cred, 32);
    }
    pthread_mutex_unlock(&basic.mu);
    secret_wipe(cred, sizeof(cred));
    return hit;
}

static void
basic_remember(const char *id, const char *pwhash, const char *password, size_t pwlen)
{
    uint8_t tag[16];
    int64_t now = clock_now();
    pthread_once(&basic.once, basic_setup);
    pthread_mutex_lock(&basic.mu);
    if (basic.c) {
        struct basic_slot *set = basic_set(id, tag), *victim = &set[0];
        for (int i = 0; i < BASIC_WAYS; i++) {
            if (set[i].expires <= now || !sodium_memcmp(set[i].acct, tag, 16)) {
                victim = &set[i]; /* a free slot, or this account's old one */
                break;
            }
            if (set[i].expires < victim->expires)
                victim = &set[i];
        }
        memcpy(victim->acct, tag, 16);
        basic_cred(victim->cred, id, pwhash, password, pwlen);
        victim->expires = now + ACCT_BASIC_TTL;
    }
    pthread_mutex_unlock(&basic.mu);
}

void
acct_basic_forget(const char *account)
{
    uint8_t tag[16];
    pthread_once(&basic.once, basic_setup);
    pthread_mutex_lock(&basic.mu);
    if (basic.c && !account) {
        secret_wipe(basic.c->slots, sizeof(basic.c->slots));
        randombytes_buf(basic.c->key, sizeof(basic.c->key));
    } else if (basic.c) {
        struct basic_slot *set = basic_set(account, tag);
        for (int i = 0; i < BASIC_WAYS; i++)
            if (!sodium_memcmp(set[i].acct, tag, 16))
                secret_wipe(&set[i], sizeof(set[i]));
    }
    pthread_mutex_unlock(&basic.mu);
}

int
acct_login_basic(struct region *r, const char *id, const char *password, size_t pwlen,
                 int64_t *retry_after)
{
    const struct config *cfg = region_config(r);
    struct store_account a;
    *retry_after = 0;
    if (region_sealed(r))
        return ERR_SEALED;
    if (!acct_id_valid(id) || pwlen > ACCT_PASSWORD_MAX)
        return ERR_UNAUTHORIZED;
    int64_t wait = limiter_wait(id);
    if (wait > 0) {
        *retry_after = wait;
        return ERR_RATE_LIMITED;
    }
    int rc = store_account_get(region_store(r), id, &a);
    if (rc == ERR_NOT_FOUND) {
        const char *dummy = dummy_hash(cfg);
        if (dummy) {
            int same_work = pwhash_check(dummy, password, pwlen);
            (void)same_work;
        }
        limiter_record(cfg, id, false);
        return ERR_UNAUTHORIZED;
    }
    if (rc)
        return rc;
    if (basic_hit(id, a.pwhash, password, pwlen)) {
        secret_wipe(&a, sizeof(a));
        return 0;
    }
    rc = pwhash_check(a.pwhash, password, pwlen);
    limiter_record(cfg, id, rc == 0);
    if (!rc)
        basic_remember(id, a.pwhash, password, pwlen);
    secret_wipe(&a, sizeof(a));
    if (rc) {
        trail_refused(r,
                      &(struct trail){AUDIT_USER, "login.basic", id, NULL, NULL, ERR_UNAUTHORIZED});
        return ERR_UNAUTHORIZED;
    }
    return 0;
}
