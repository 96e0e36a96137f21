/* SPDX-License-Identifier: Apache-2.0 */
/*
 * region.c: a region's stores and keyring (see region.h): the data store,
 * the key store (service keys and consents, kept apart so that a deleted
 * key reaches every copy of the data: docs/internals/CONSENT.md). The keyring's
 * state blob and the operator token's hash live in the store's meta table
 * under "keyring" and "operator_token"; nothing secret is ever written.
 */
#include "base/common.h"

#include <sodium.h>

#include <pthread.h>

#include "audit/audit.h"
#include "base/log.h"
#include "base/util.h"
#include "core/acct.h"
#include "core/cluster.h"
#include "core/region.h"
#include "crypto/kr.h"
#include "crypto/secret.h"
#include "store/store.h"
#include "crypto/hash.h"

struct region {
    const struct config *cfg;
    struct store *store;
    struct store *keys; /* service keys and consents: never snapshotted (CONSENT.md) */
    struct kr *kr;
    struct audit *audit;        /* the audit log, kept in the data store (AUDIT.md) */
    pthread_mutex_t cluster_mu; /* guards cluster: replaced on reload */
    struct cluster *cluster;    /* NULL: a single-region deployment */
};

#define META_KEYRING "keyring"
#define META_OPTOKEN "operator_token"

int
region_open(struct region **out, const struct config *cfg)
{
    struct region *r = calloc(1, sizeof(*r));
    struct buf state;
    buf_init(&state, 1 << 20);
    int rc = ERR_NOMEM;
    if (!r)
        goto out;
    r->cfg = cfg;
    pthread_mutex_init(&r->cluster_mu, NULL);
    if (cfg->cluster) {
        struct buf err;
        buf_init(&err, 1024);
        rc = cluster_load(&r->cluster, cfg->cluster, &err);
        if (rc)
            log_err("event=cluster_invalid msg=\"%s\"", err.data ? err.data : "");
        buf_release(&err);
        if (rc)
            goto out;
        if (!cluster_find(r->cluster, cfg->region))
            log_warn("event=cluster_lacks_region region=%s", cfg->region);
    }
    rc = store_open(&r->store, cfg->store);
    if (rc) {
        log_err("event=store_open_failed backend_url_scheme=%.6s err=\"%s\"", cfg->store,
                err_str(rc));
        goto out;
    }
    rc = store_open(&r->keys, cfg->keystore);
    if (rc) {
        log_err("event=keystore_open_failed backend_url_scheme=%.6s err=\"%s\"", cfg->keystore,
                err_str(rc));
        goto out;
    }
    rc = kr_new(&r->kr);
    if (rc)
        goto out;
    rc = store_meta_get(r->store, META_KEYRING, &state);
    if (rc == ERR_NOT_FOUND) {
        rc = 0;
    } else if (rc == 0) {
        rc = kr_load(r->kr, buf_slice(&state));
        if (rc)
            log_err("event=keyring_load_failed err=\"%s\"", err_str(rc));
    }
    if (!rc)
        rc = audit_open(&r->audit, r->store, r->kr, cfg->region);
out:
    buf_release(&state);
    if (rc) {
        region_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

void
region_close(struct region *r)
{
    if (!r)
        return;
    audit_close(r->audit);
    kr_free(r->kr);
    store_close(r->keys);
    store_close(r->store);
    cluster_free(r->cluster);
    pthread_mutex_destroy(&r->cluster_mu);
    free(r);
}

const char *
region_name(const struct region *r)
{
    return r->cfg->region;
}

const struct config *
region_config(const struct region *r)
{
    return r->cfg;
}

struct store *
region_store(struct region *r)
{
    return r->store;
}

struct store *
region_keystore(struct region *r)
{
    return r->keys;
}

struct kr *
region_keyring(struct region *r)
{
    return r->kr;
}

struct audit *
region_audit(struct region *r)
{
    return r->audit;
}

bool
region_sealed(struct region *r)
{
    return kr_sealed(r->kr);
}

bool
region_initialized(struct region *r)
{
    return kr_initialized(r->kr);
}

int
region_reload(struct region *r)
{
    struct cluster *c = NULL, *old;
    struct buf err;
    if (!r->cfg->cluster)
        return 0;
    buf_init(&err, 1024);
    int rc = cluster_load(&c, r->cfg->cluster, &err);
    if (rc) {
        log_err("event=cluster_reload_failed msg=\"%s\" action=kept_previous",
                err.data ? err.data : "");
        buf_release(&err);
        return ERR_INVAL;
    }
    buf_release(&err);
    pthread_mutex_lock(&r->cluster_mu);
    old = r->cluster;
    r->cluster = c;
    pthread_mutex_unlock(&r->cluster_mu);
    cluster_free(old);
    log_info("event=cluster_reloaded regions=%zu", c->n);
    return 0;
}

int
region_home(struct region *r, const char *cc, char name[REGION_NAME_MAX], char url[REGION_URL_MAX])
{
    char up[3];
    if (strlen(cc) != 2)
        return ERR_INVAL;
    for (int i = 0; i < 2; i++) {
        char c = cc[i];
        up[i] = c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
        if (up[i] < 'A' || up[i] > 'Z')
            return ERR_INVAL;
    }
    up[2] = 0;
    int rc = 0;
    pthread_mutex_lock(&r->cluster_mu);
    const struct cluster_region *home = cluster_home(r->cluster, up);
    if (home && strcmp(home->name, r->cfg->region) != 0) {
        snprintf(name, REGION_NAME_MAX, "%s", home->name);
        snprintf(url, REGION_URL_MAX, "%s", home->url);
        rc = ERR_WRONG_REGION;
    }
    pthread_mutex_unlock(&r->cluster_mu);
    return rc;
}

int
region_locate(struct region *r, const char *name, char url[REGION_URL_MAX])
{
    int rc = ERR_NOT_FOUND;
    pthread_mutex_lock(&r->cluster_mu);
    const struct cluster_region *cr = cluster_find(r->cluster, name);
    if (cr) {
        snprintf(url, REGION_URL_MAX, "%s", cr->url);
        rc = 0;
    }
    pthread_mutex_unlock(&r->cluster_mu);
    return rc;
}

int
region_peer(struct region *r, const char *name, char url[REGION_URL_MAX], uint8_t pk[32])
{
    int rc = ERR_NOT_FOUND;
    pthread_mutex_lock(&r->cluster_mu);
    const struct cluster_region *cr = cluster_find(r->cluster, name);
    if (cr) {
        snprintf(url, REGION_URL_MAX, "%s", cr->url);
        memcpy(pk, cr->peer_key, 32);
        rc = cr->has_peer_key ? 0 : ERR_UNAUTHORIZED;
    }
    pthread_mutex_unlock(&r->cluster_mu);
    return rc;
}

int
region_route(struct region *r, const char *s, char sep, char name[REGION_NAME_MAX],
             char url[REGION_URL_MAX])
{
    const char *end = strchr(s, sep);
    if (!end || end == s || (size_t)(end - s) >= REGION_NAME_MAX)
        return ERR_NOT_FOUND;
    size_t n = (size_t)(end - s);
    if (n == strlen(r->cfg->region) && !strncmp(s, r->cfg->region, n))
        return 0;
    memcpy(name, s, n);
    name[n] = 0;
    for (size_t i = 0; i < n; i++)
        if (name[i] < 'a' || name[i] > 'z')
            return ERR_NOT_FOUND;
    int rc = region_locate(r, name, url);
    return rc ? rc : ERR_WRONG_REGION;
}

void
region_token_hash(uint8_t out[32], const char *token)
{
    hash_sha256(out, token, strlen(token));
}

void
region_token_new(const struct region *r, char out[REGION_TOKEN_MAX])
{
    uint8_t raw[32];
    char enc[64];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(enc, sizeof(enc), raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf(out, REGION_TOKEN_MAX, "%s.%s", r->cfg->region, enc);
    secret_wipe(raw, sizeof(raw));
    secret_wipe(enc, sizeof(enc));
}

int
region_init(struct region *r, unsigned n, unsigned k, char ***shares_out, char **token_out)
{
    struct buf state;
    struct store_batch *b = NULL;
    char **shares = NULL;
    char *token = NULL;
    uint8_t th[32];
    buf_init(&state, 1 << 20);
    int rc = kr_init(r->kr, n, k, &state, &shares);
    if (rc)
        goto out;
    rc = ERR_NOMEM;
    token = secret_alloc(REGION_TOKEN_MAX);
    if (!token)
        goto out;
    region_token_new(r, token);
    region_token_hash(th, token);
    rc = store_batch_new(&b);
    if (!rc)
        rc = store_batch_meta_put(b, META_KEYRING, buf_slice(&state));
    if (!rc)
        rc = store_batch_meta_put(b, META_OPTOKEN, SLICE(th, sizeof(th)));
    if (!rc)
        rc = audit_add(r->audit, b,
                       &(struct audit_event){.actor = AUDIT_OPERATOR, .action = "init"});
    if (!rc)
        rc = audit_commit(r->audit, b, true);
out:
    store_batch_free(b);
    buf_release(&state);
    if (rc) {
        if (shares) {
            /* the key was made but could not be recorded: forget it */
            kr_seal(r->kr);
            kr_shares_free(shares, n);
        }
        secret_free(token);
        return rc;
    }
    log_info("event=init custodians=%u threshold=%u", n, k);
    *shares_out = shares;
    *token_out = token;
    return 0;
}

void
region_init_free(char **shares, unsigned n, char *token)
{
    kr_shares_free(shares, n);
    secret_free(token);
}

int
region_unseal(struct region *r, const char *share, unsigned *progress, unsigned *threshold)
{
    bool was_sealed = kr_sealed(r->kr);
    int rc = kr_unseal(r->kr, share, progress, threshold);
    if (!rc && was_sealed && !kr_sealed(r->kr)) {
        /* no unseal goes unrecorded: without its entry the region seals again */
        rc = audit_record(r->audit,
                          &(struct audit_event){.actor = AUDIT_OPERATOR, .action = "unseal"}, true);
        if (rc)
            kr_seal(r->kr);
    }
    if (rc)
        log_warn("event=unseal_refused err=\"%s\"", err_str(rc));
    else if (!kr_sealed(r->kr) && *progress == 0)
        log_info("event=unsealed");
    else
        log_info("event=unseal_progress progress=%u threshold=%u", *progress, *threshold);
    return rc;
}

void
region_seal(struct region *r)
{
    /* the seal is recorded and signed into a head while the key is still here */
    if (!kr_sealed(r->kr)) {
        int rc = audit_record(
            r->audit, &(struct audit_event){.actor = AUDIT_OPERATOR, .action = "seal"}, true);
        if (!rc)
            rc = audit_integrate(r->audit);
        if (rc)
            log_err("event=seal_audit_failed err=\"%s\" action=\"sealed anyway\"", err_str(rc));
    }
    kr_seal(r->kr);
    acct_basic_forget(NULL); /* no credential outlives the key */
    log_info("event=sealed");
}

int
region_stats(struct region *r, uint64_t *objects, uint64_t *bytes)
{
    return store_stats(r->store, objects, bytes);
}

int
region_operator_check(struct region *r, const char *token)
{
    struct buf stored;
    uint8_t th[32];
    buf_init(&stored, 64);
    int rc = store_meta_get(r->store, META_OPTOKEN, &stored);
    if (rc == ERR_NOT_FOUND)
        rc = ERR_UNAUTHORIZED;
    if (!rc) {
        region_token_hash(th, token ? token : "");
        if (stored.len != sizeof(th) || !secret_equal(stored.data, th, sizeof(th)))
            rc = ERR_UNAUTHORIZED;
    }
    buf_release(&stored);
    return rc;
}
