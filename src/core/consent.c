/* SPDX-License-Identifier: Apache-2.0 */
/*
 * consent.c: the consent ledger (see consent.h), on top of the key store
 * (consent rows, their history, the wrapped service keys), the data store
 * (object rows and the purge queue) and svc.h (making service keys).
 *
 * A change of consent is one durable key-store transaction: the new state,
 * its history record and the key made or destroyed. A revocation then
 * removes the service's object rows in one data-store transaction; the
 * consent row carries purge_pending until that is done, so that the
 * sweeper finishes a purge that a crash interrupted (consent_purge_pending).
 *
 * Thread-safety: the fence is a process-wide writer-preferring rwlock and
 * an atomic epoch; consent changes are serialised by its exclusive side,
 * uploads share its other side only around their final commit. Nothing
 * else is shared; nothing here logs an account id or an object name.
 */
#include "base/common.h"

#include <pthread.h>
#include <stdatomic.h>

#include "base/log.h"
#include "base/util.h"
#include "core/consent.h"
#include "core/retention.h"
#include "core/svc.h"
#include "core/trail.h"
#include "store/store.h"

/* ------------------------------------------------------------------------ */
/* The fence                                                                */

static pthread_rwlock_t fence;
static pthread_once_t fence_once = PTHREAD_ONCE_INIT;
static _Atomic uint64_t fence_epoch = 1;

static void
fence_setup(void)
{
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    /* a revocation must not wait behind an endless stream of uploads */
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    if (pthread_rwlock_init(&fence, &a))
        BUG("cannot make the consent fence");
    pthread_rwlockattr_destroy(&a);
}

uint64_t
consent_epoch(void)
{
    return atomic_load(&fence_epoch);
}

uint64_t
consent_fence_commit_begin(void)
{
    pthread_once(&fence_once, fence_setup);
    pthread_rwlock_rdlock(&fence);
    return atomic_load(&fence_epoch);
}

void
consent_fence_commit_end(void)
{
    pthread_rwlock_unlock(&fence);
}

void
consent_fence_revoke_begin(void)
{
    pthread_once(&fence_once, fence_setup);
    pthread_rwlock_wrlock(&fence);
    atomic_fetch_add(&fence_epoch, 1);
}

void
consent_fence_revoke_end(void)
{
    pthread_rwlock_unlock(&fence);
}

/* ------------------------------------------------------------------------ */
/* Reading the ledger                                                       */

static void
consent_of(struct consent *out, const char *service, const struct store_consent *sc)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->service, sizeof(out->service), "%s", service);
    if (sc) {
        out->granted = sc->granted;
        out->since = sc->at;
        snprintf(out->policy, sizeof(out->policy), "%s", sc->policy);
    }
}

/* The stored state of (account, service); ERR_NOT_FOUND if never set. */
static int
consent_row(struct region *r, const char *account, const char *service, struct store_consent *sc)
{
    return store_consent_get(region_keystore(r), account, service, sc);
}

int
consent_allowed(struct region *r, const char *account, const char *service)
{
    struct store_consent sc;
    int rc = consent_row(r, account, service, &sc);
    if (rc == ERR_NOT_FOUND)
        return ERR_CONSENT;
    if (rc)
        return rc;
    return sc.granted ? 0 : ERR_CONSENT;
}

int
consent_get(struct region *r, const char *account, const char *service, struct consent *out)
{
    struct store_consent sc;
    if (!svc_valid(service))
        return ERR_NOT_FOUND;
    int rc = consent_row(r, account, service, &sc);
    if (rc && rc != ERR_NOT_FOUND)
        return rc;
    consent_of(out, service, rc ? NULL : &sc);
    return 0;
}

struct list_ctx {
    struct consent *out;
};

static int
list_row(void *vctx, const struct store_consent *sc)
{
    struct list_ctx *x = vctx;
    for (size_t i = 0; svc_names[i]; i++)
        if (!strcmp(svc_names[i], sc->service))
            consent_of(&x->out[i], svc_names[i], sc);
    return 0; /* a service no longer offered is not listed */
}

int
consent_list(struct region *r, const char *account, struct consent *out, size_t *n)
{
    struct list_ctx x = {out};
    for (size_t i = 0; i < SVC_COUNT; i++)
        consent_of(&out[i], svc_names[i], NULL);
    *n = SVC_COUNT;
    return store_consents(region_keystore(r), account, list_row, &x);
}

struct history_ctx {
    consent_change_cb cb;
    void *ctx;
};

static int
history_row(void *vctx, const struct store_consent *sc)
{
    struct history_ctx *x = vctx;
    struct consent_change c = {sc->service, sc->granted, sc->at, sc->policy};
    return x->cb(x->ctx, &c);
}

int
consent_history(struct region *r, const char *account, consent_change_cb cb, void *ctx)
{
    struct history_ctx x = {cb, ctx};
    return store_consent_log(region_keystore(r), account, history_row, &x);
}

/* ------------------------------------------------------------------------ */
/* Changing it                                                              */

static void
change_of(struct store_consent *c, struct region *r, const char *account, const char *service,
          bool granted)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->account, sizeof(c->account), "%s", account);
    snprintf(c->service, sizeof(c->service), "%s", service);
    snprintf(c->policy, sizeof(c->policy), "%s", region_config(r)->policy_version);
    c->granted = granted;
    c->at = clock_now();
    c->purge_pending = !granted;
}

/* Removes the object rows of a revoked service; then clears its pending mark. */
static int
purge_service(struct region *r, const char *account, const char *service, int64_t generation,
              uint64_t *purged)
{
    struct store_batch *b = NULL;
    int rc = store_batch_new(&b);
    if (!rc)
        rc = store_batch_service_purge(b, account, service, clock_now());
    /* the service's records go with its objects (their keys are gone too) */
    for (const char *const *k = svc_record_kinds(service); !rc && *k; k++)
        rc = store_batch_recs_delete(b, account, *k);
    if (!rc)
        rc = store_commit(region_store(r), b, true);
    if (!rc && purged)
        *purged = store_batch_count(b);
    store_batch_free(b);
    if (rc || generation <= 0)
        return rc;
    b = NULL;
    rc = store_batch_new(&b);
    if (!rc)
        rc = store_batch_consent_purged(b, account, service, generation);
    /* not durable: if it is lost, the sweeper purges again, which is harmless */
    if (!rc)
        rc = store_commit(region_keystore(r), b, false);
    store_batch_free(b);
    return rc;
}

int
consent_grant(struct region *r, const char *account, const char *service, struct consent *out)
{
    struct store_consent cur, next;
    struct store_batch *b = NULL;
    uint8_t wrapped[STORE_WRAPPED_MAX];
    size_t wlen = 0;
    if (!svc_valid(service))
        return ERR_NOT_FOUND;
    if (region_sealed(r))
        return ERR_SEALED;

    consent_fence_revoke_begin();
    int rc = consent_row(r, account, service, &cur);
    bool on = rc == 0 && cur.granted;
    if (rc == ERR_NOT_FOUND)
        rc = 0;
    if (rc || on)
        goto out;
    /*
     * A service starts empty: rows left from an earlier key (a data store
     * restored from a backup taken before a revocation) are removed first.
     * Nothing else can be there: while off, no upload commits.
     */
    rc = purge_service(r, account, service, 0, NULL);
    if (!rc)
        rc = svc_key_new(r, account, service, wrapped, sizeof(wrapped), &wlen);
    if (rc)
        goto out;
    change_of(&next, r, account, service, true);
    rc = store_batch_new(&b);
    if (!rc)
        rc = store_batch_consent_put(b, &next);
    /* a key can only be left by a crash inside a revocation: replace it */
    if (!rc)
        rc = store_batch_svckey_delete(b, account, service);
    if (!rc)
        rc = store_batch_svckey_insert(b, account, service, SLICE(wrapped, wlen));
    if (!rc) /* on record first: the log is in the data store (AUDIT.md) */
        rc = trail_record(
            r, &(struct trail){AUDIT_USER, "consent.grant", account, service, NULL, 0}, true);
    if (!rc && (rc = store_commit(region_keystore(r), b, true)))
        trail_refused(r, &(struct trail){AUDIT_USER, "consent.grant", account, service, NULL, rc});
    if (!rc)
        log_info("event=consent_granted service=%s", service);
out:
    consent_fence_revoke_end();
    store_batch_free(b);
    secret_wipe(wrapped, sizeof(wrapped));
    if (!rc)
        consent_of(out, service, on ? &cur : &next);
    return rc;
}

int
consent_revoke(struct region *r, const char *account, const char *service, uint64_t *purged)
{
    struct store_consent cur, next;
    struct store_batch *b = NULL;
    int64_t generation = 0;
    *purged = 0;
    if (!svc_valid(service))
        return ERR_NOT_FOUND;

    consent_fence_revoke_begin();
    int rc = consent_row(r, account, service, &cur);
    bool on = rc == 0 && cur.granted;
    if (rc == ERR_NOT_FOUND)
        rc = 0;
    if (!rc && on) {
        change_of(&next, r, account, service, false);
        rc = store_batch_new(&b);
        if (!rc)
            rc = store_batch_consent_put(b, &next);
        if (!rc)
            rc = store_batch_svckey_delete(b, account, service);
        if (!rc) /* on record first: the log is in the data store (AUDIT.md) */
            rc = trail_record(
                r, &(struct trail){AUDIT_USER, "consent.revoke", account, service, NULL, 0}, true);
        if (!rc && (rc = store_commit(region_keystore(r), b, true)))
            trail_refused(
                r, &(struct trail){AUDIT_USER, "consent.revoke", account, service, NULL, rc});
        if (!rc)
            generation = cur.generation + 1; /* consent changes are serialised by the fence */
        store_batch_free(b);
    }
    consent_fence_revoke_end();
    if (rc)
        return rc;
    /* the key is gone: what follows only removes ciphertext nobody can read */
    rc = purge_service(r, account, service, generation, purged);
    if (on)
        log_info("event=consent_revoked service=%s purged_objects=%" PRIu64 "%s", service, *purged,
                 rc ? " purge=deferred" : "");
    if (rc && on) {
        log_warn("event=consent_purge_deferred service=%s err=\"%s\"", service, err_str(rc));
        rc = 0; /* revoked; the sweeper finishes the purge */
    }
    if (on || *purged)
        retention_kick();
    return rc;
}

#define PENDING_BATCH 64

struct pending_ctx {
    struct store_consent v[PENDING_BATCH];
    size_t n;
};

static int
pending_row(void *vctx, const struct store_consent *sc)
{
    struct pending_ctx *x = vctx;
    if (x->n < PENDING_BATCH)
        x->v[x->n++] = *sc;
    return 0;
}

int
consent_purge_pending(struct region *r, size_t limit, uint64_t *done)
{
    struct pending_ctx *x = calloc(1, sizeof(*x));
    *done = 0;
    if (!x)
        return ERR_NOMEM;
    int rc = store_consents_pending(region_keystore(r),
                                    limit < PENDING_BATCH ? limit : PENDING_BATCH, pending_row, x);
    for (size_t i = 0; !rc && i < x->n; i++) {
        const struct store_consent *sc = &x->v[i];
        rc = purge_service(r, sc->account, sc->service, sc->generation, NULL);
        if (!rc)
            (*done)++;
    }
    free(x);
    return rc;
}
