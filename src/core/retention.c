/* SPDX-License-Identifier: Apache-2.0 */
/*
 * retention.c: the retention rules, the sweeper and account erasure (see
 * retention.h), on top of the data store (accounts, activity, sessions,
 * object rows, the purge queue), the key store (keys, consents, erasure
 * marks) and consent.c (unfinished revocations, the fence).
 *
 * A pass, in order: finish erasures that were asked and interrupted;
 * finish revocation purges that were interrupted; erase idle accounts and
 * delete expired sessions (RETENTION_SLOW: these scan); delete the
 * ciphertext of every queued purge, one object version per transaction so
 * that the writer is never held long; give the freed space back (compact).
 * Every step is idempotent, so a crash anywhere only means the next pass
 * does it again.
 *
 * Ownership: struct retention owns its thread; the region is borrowed.
 * Thread-safety: the activity filter is a fixed table under a mutex; the
 * sweeper's stop flag is atomic; everything else is per call. Logs carry
 * counts only, never an account id.
 */
#include "base/common.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>

#include "base/log.h"
#include "base/util.h"
#include "core/consent.h"
#include "core/migrate.h"
#include "core/retention.h"
#include "core/trail.h"
#include "store/store.h"

#define DAY 86400
#define SWEEP_BATCH 64       /* rows listed at a time */
#define SLOW_EVERY_S 3600    /* idle accounts and sessions: hourly */
#define TOUCH_SLOTS 4096     /* the activity filter */
#define QUICK_MAX_S 60       /* a quick pass at least every minute */
#define SWEEP_ROUNDS 256     /* listings per rule and pass: a row that keeps failing cannot loop */
#define SETTLE_NS 500000000u /* a kick's pass waits until kicks have stopped this long */
#define NS 1000000000u

/* Object versions whose ciphertext this process's sweeps deleted. */
static _Atomic uint64_t purged_total;

const struct retention_rule retention_rules[] = {
    {"backup", "objects of the backup services (contacts, messages, calllog, settings, photos)",
     "until the owner turns the service off or the account is erased", NULL},
    {"revoked", "ciphertext of a service turned off, or of an erased account",
     "unreadable at once (its key is destroyed), deleted from disk within retention-purge",
     "retention-purge"},
    {"idle_account", "an account and everything it holds",
     "erased after retention-idle-account without a log-in or a request", "retention-idle-account"},
    {"message_delivered", "a message relayed by cloud messaging",
     "deleted when its recipient acknowledges it", NULL},
    {"message_undelivered", "a relayed message nobody acknowledged",
     "deleted after retention-message-undelivered", "retention-message-undelivered"},
    {"session", "the hash of a session token", "deleted when the session expires (session-ttl)",
     "session-ttl"},
    {"consent", "the consent ledger and its history", "as long as the account", NULL},
};
const size_t retention_nrules = ARRAY_SIZE(retention_rules);

/* ------------------------------------------------------------------------ */
/* Activity                                                                 */

static struct {
    pthread_mutex_t mu;
    pthread_once_t once;
    uint8_t key[crypto_shorthash_KEYBYTES];
    struct {
        uint64_t tag;
        int64_t day;
    } slots[TOUCH_SLOTS];
} touch = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_ONCE_INIT, {0}, {{0, 0}}};

static void
touch_setup(void)
{
    randombytes_buf(touch.key, sizeof(touch.key));
}

int64_t
retention_day(int64_t now)
{
    int64_t start = now - ((now % DAY) + DAY) % DAY;
    return start + DAY - 1;
}

void
retention_touch(struct region *r, const char *account)
{
    uint8_t h[crypto_shorthash_BYTES];
    uint64_t tag;
    int64_t day = retention_day(clock_now());
    pthread_once(&touch.once, touch_setup);
    crypto_shorthash(h, (const uint8_t *)account, strlen(account), touch.key);
    memcpy(&tag, h, sizeof(tag));
    size_t i = tag % TOUCH_SLOTS;
    pthread_mutex_lock(&touch.mu);
    bool seen = touch.slots[i].tag == tag && touch.slots[i].day == day;
    pthread_mutex_unlock(&touch.mu);
    if (seen)
        return;
    struct store_batch *b = NULL;
    int rc = store_batch_new(&b);
    if (!rc)
        rc = store_batch_activity_put(b, account, day);
    /* not durable: a lost record only makes an erasure come a day early at worst */
    if (!rc)
        rc = store_commit(region_store(r), b, false);
    store_batch_free(b);
    if (rc) {
        log_warn("event=activity_record_failed err=\"%s\"", err_str(rc));
        return;
    }
    pthread_mutex_lock(&touch.mu);
    touch.slots[i].tag = tag;
    touch.slots[i].day = day;
    pthread_mutex_unlock(&touch.mu);
}

int
retention_idle_deadline(struct region *r, const char *account, int64_t *at)
{
    int64_t last = 0;
    int rc = store_activity_get(region_store(r), account, &last);
    if (!rc)
        *at = last + (int64_t)region_config(r)->retention_idle_account;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Erasure                                                                  */

/* The data half of an erasure, then its mark cleared. */
static int
erase_data(struct region *r, const char *account, uint64_t *objects)
{
    struct store_batch *b = NULL;
    int rc = store_batch_new(&b);
    if (!rc)
        rc = store_batch_account_erase(b, account, clock_now());
    if (!rc)
        rc = store_commit(region_store(r), b, true);
    if (!rc && objects)
        *objects = store_batch_count(b);
    store_batch_free(b);
    if (rc)
        return rc;
    b = NULL;
    rc = store_batch_new(&b);
    if (!rc)
        rc = store_batch_erasure_done(b, account);
    if (!rc) /* if lost, the sweeper erases nothing again */
        rc = store_commit(region_keystore(r), b, false);
    store_batch_free(b);
    return rc;
}

int
retention_erase_account(struct region *r, const char *account, uint64_t *objects)
{
    struct store_batch *b = NULL;
    int64_t now = clock_now();
    if (objects)
        *objects = 0;
    /* first the keys: from here on no copy of the account's data can be read */
    consent_fence_revoke_begin();
    int rc = store_batch_new(&b);
    if (!rc)
        rc = store_batch_erasure_put(b, account, now);
    if (!rc)
        rc = store_batch_account_erase(b, account, now);
    if (!rc)
        rc = store_commit(region_keystore(r), b, true);
    consent_fence_revoke_end();
    store_batch_free(b);
    if (rc)
        return rc;
    rc = erase_data(r, account, objects);
    if (rc) {
        log_warn("event=erasure_deferred err=\"%s\"", err_str(rc));
        return 0; /* the keys are gone; the sweeper removes the rest */
    }
    log_info("event=account_erased objects=%" PRIu64, objects ? *objects : 0);
    retention_kick();
    return 0;
}

/* ------------------------------------------------------------------------ */
/* One pass                                                                 */

struct acct_list {
    char id[SWEEP_BATCH][STORE_ID_MAX];
    size_t n;
};

static int
acct_row(void *ctx, const char *account, int64_t at)
{
    struct acct_list *l = ctx;
    (void)at;
    if (l->n < SWEEP_BATCH)
        snprintf(l->id[l->n++], STORE_ID_MAX, "%s", account);
    return 0;
}

struct purge_list {
    char id[SWEEP_BATCH][STORE_ID_MAX];
    int64_t version[SWEEP_BATCH];
    size_t n;
};

static int
purge_row(void *ctx, const char *account, int64_t version)
{
    struct purge_list *l = ctx;
    if (l->n < SWEEP_BATCH) {
        snprintf(l->id[l->n], STORE_ID_MAX, "%s", account);
        l->version[l->n++] = version;
    }
    return 0;
}

static int
compact(struct store *s, uint64_t *pages)
{
    struct store_batch *b = NULL;
    int rc = store_batch_new(&b);
    if (!rc)
        rc = store_batch_compact(b);
    if (!rc)
        rc = store_commit(s, b, false);
    if (!rc)
        *pages += store_batch_count(b);
    store_batch_free(b);
    return rc;
}

static int
sweep_run(struct region *r, unsigned what, struct retention_stats *st, const _Atomic bool *stop)
{
    const struct config *cfg = region_config(r);
    struct store *data = region_store(r), *keys = region_keystore(r);
    int64_t now = clock_now();
    uint64_t n = 0;
    unsigned rounds = 0;
    bool keys_changed = false;
    int rc = 0;
    void *mem = calloc(1, sizeof(struct acct_list) + sizeof(struct purge_list));
    if (!mem)
        return ERR_NOMEM;
    struct acct_list *al = mem;
    struct purge_list *pl = (struct purge_list *)(al + 1);

    if (what & RETENTION_QUICK) {
        /* erasures asked and interrupted: the keys are gone, remove the rest */
        do {
            al->n = 0;
            rc = store_erasures(keys, SWEEP_BATCH, acct_row, al);
            for (size_t i = 0; !rc && i < al->n; i++) {
                rc = erase_data(r, al->id[i], NULL);
                st->erasures += !rc;
                keys_changed = true;
            }
        } while (!rc && al->n == SWEEP_BATCH && !atomic_load(stop) && ++rounds < SWEEP_ROUNDS);
        if (rc)
            goto out;
        rounds = 0;
        do {
            n = 0;
            rc = consent_purge_pending(r, SWEEP_BATCH, &n);
            st->revocations += n;
            keys_changed |= n > 0;
        } while (!rc && n == SWEEP_BATCH && !atomic_load(stop) && ++rounds < SWEEP_ROUNDS);
        if (rc)
            goto out;
    }

    if (what & RETENTION_SLOW) {
        /* strictly more than retention-idle-account since the last activity */
        int64_t before = now - (int64_t)cfg->retention_idle_account;
        rounds = 0;
        do {
            al->n = 0;
            rc = store_accounts_idle(data, before, SWEEP_BATCH, acct_row, al);
            for (size_t i = 0; !rc && i < al->n; i++) {
                /* on record first; while sealed no pseudonym can be made */
                struct trail t = {AUDIT_SYSTEM,
                                  "retention.erase",
                                  region_sealed(r) ? NULL : al->id[i],
                                  NULL,
                                  NULL,
                                  0};
                rc = trail_record(r, &t, true);
                if (!rc)
                    rc = retention_erase_account(r, al->id[i], NULL);
                st->idle += !rc;
                keys_changed = true;
            }
        } while (!rc && al->n == SWEEP_BATCH && !atomic_load(stop) && ++rounds < SWEEP_ROUNDS);
        if (rc)
            goto out;
        struct store_batch *b = NULL;
        rc = store_batch_new(&b);
        if (!rc)
            rc = store_batch_sessions_expire(b, now);
        if (!rc) /* and the tombstones of sessions that moved away */
            rc = migrate_expire_add(b, now);
        if (!rc)
            rc = store_commit(data, b, false);
        if (!rc)
            st->sessions += store_batch_count(b);
        store_batch_free(b);
        if (rc)
            goto out;
        /* message_delivered, message_undelivered: nothing is relayed yet */
    }

    if (what & RETENTION_QUICK) {
        uint64_t before = st->purged;
        size_t versions = 0; /* a retired account's rows queue their versions: list again */
        do {
            pl->n = versions = 0;
            rc = store_purges(data, SWEEP_BATCH, purge_row, pl);
            if (!rc && pl->n > 0) {
                struct trail t = {AUDIT_SYSTEM, "retention.purge", NULL, NULL, NULL, 0};
                rc = trail_record(r, &t, true);
            }
            /* a listing's purges in one commit: one writer round trip, not one each */
            if (!rc && pl->n > 0 && !atomic_load(stop)) {
                struct store_batch *b = NULL;
                rc = store_batch_new(&b);
                for (size_t i = 0; !rc && i < pl->n; i++) {
                    rc = store_batch_purge_done(b, pl->id[i], pl->version[i]);
                    versions += pl->version[i] != STORE_PURGE_ROWS;
                }
                if (!rc)
                    rc = store_commit(data, b, false);
                store_batch_free(b);
                if (!rc) {
                    st->purged += versions;
                    atomic_fetch_add(&purged_total, versions);
                }
            }
        } while (!rc && (pl->n == SWEEP_BATCH || versions < pl->n) && !atomic_load(stop));
        if (rc)
            goto out;
        if (st->purged > before || st->erasures || st->idle || st->sessions)
            rc = compact(data, &st->pages);
        if (!rc && keys_changed)
            rc = compact(keys, &st->pages);
    }
out:
    free(mem);
    return rc;
}

int
retention_sweep(struct region *r, unsigned what, struct retention_stats *st)
{
    static const _Atomic bool never = false;
    struct retention_stats local;
    memset(&local, 0, sizeof(local));
    int rc = sweep_run(r, what, &local, &never);
    if (st)
        *st = local;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The thread                                                               */

struct retention {
    struct region *r;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic bool stop;
    bool kicked;      /* under mu: run a quick pass at kick_at */
    uint64_t kick_at; /* under mu: monotonic ns, pushed on by each kick */
};

/* The sweeper of this process, for retention_kick (under running_mu). */
static pthread_mutex_t running_mu = PTHREAD_MUTEX_INITIALIZER;
static struct retention *running;

uint64_t
retention_purged_total(void)
{
    return atomic_load(&purged_total);
}

void
retention_kick(void)
{
    pthread_mutex_lock(&running_mu);
    if (running) {
        pthread_mutex_lock(&running->mu);
        running->kicked = true;
        running->kick_at = clock_mono_ns() + SETTLE_NS;
        pthread_cond_signal(&running->cv);
        pthread_mutex_unlock(&running->mu);
    }
    pthread_mutex_unlock(&running_mu);
}

static void *
sweeper(void *arg)
{
    struct retention *sw = arg;
    const struct config *cfg = region_config(sw->r);
    uint64_t quick_s = cfg->retention_purge / 4;
    if (quick_s < 1)
        quick_s = 1;
    if (quick_s > QUICK_MAX_S)
        quick_s = QUICK_MAX_S;
    uint64_t last_slow = 0;
    bool first = true;
    pthread_mutex_lock(&sw->mu);
    while (!atomic_load(&sw->stop)) {
        pthread_mutex_unlock(&sw->mu);
        uint64_t mono = clock_mono_ns() / NS;
        unsigned what = RETENTION_QUICK;
        if (first || mono - last_slow >= SLOW_EVERY_S) {
            what = RETENTION_ALL;
            last_slow = mono;
            first = false;
        }
        struct retention_stats st;
        memset(&st, 0, sizeof(st));
        int rc = sweep_run(sw->r, what, &st, &sw->stop);
        if (rc)
            log_warn("event=retention_pass_failed err=\"%s\"", err_str(rc));
        if (st.erasures || st.idle || st.revocations || st.sessions || st.purged || st.pages)
            log_info("event=retention_pass erasures=%" PRIu64 " idle_accounts=%" PRIu64
                     " revocations=%" PRIu64 " sessions=%" PRIu64 " purged_versions=%" PRIu64
                     " pages=%" PRIu64,
                     st.erasures, st.idle, st.revocations, st.sessions, st.purged, st.pages);
        uint64_t until = clock_mono_ns() + quick_s * NS;
        pthread_mutex_lock(&sw->mu);
        while (!atomic_load(&sw->stop)) {
            uint64_t now = clock_mono_ns(), wake = until;
            if (sw->kicked && sw->kick_at < wake)
                wake = sw->kick_at;
            if (now >= wake)
                break;
            struct timespec ts = {(time_t)(wake / NS), (long)(wake % NS)};
            (void)pthread_cond_timedwait(&sw->cv, &sw->mu, &ts);
        }
        sw->kicked = false;
    }
    pthread_mutex_unlock(&sw->mu);
    return NULL;
}

int
retention_start(struct retention **out, struct region *r)
{
    pthread_condattr_t ca;
    struct retention *sw = calloc(1, sizeof(*sw));
    if (!sw)
        return ERR_NOMEM;
    sw->r = r;
    pthread_mutex_init(&sw->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&sw->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&sw->th, NULL, sweeper, sw)) {
        pthread_cond_destroy(&sw->cv);
        pthread_mutex_destroy(&sw->mu);
        free(sw);
        return ERR_NOMEM;
    }
    pthread_setname_np(sw->th, "retention");
    pthread_mutex_lock(&running_mu);
    if (!running)
        running = sw;
    pthread_mutex_unlock(&running_mu);
    *out = sw;
    return 0;
}

void
retention_stop(struct retention *sw)
{
    if (!sw)
        return;
    pthread_mutex_lock(&running_mu);
    if (running == sw)
        running = NULL;
    pthread_mutex_unlock(&running_mu);
    pthread_mutex_lock(&sw->mu);
    atomic_store(&sw->stop, true);
    pthread_cond_signal(&sw->cv);
    pthread_mutex_unlock(&sw->mu);
    pthread_join(sw->th, NULL);
    pthread_cond_destroy(&sw->cv);
    pthread_mutex_destroy(&sw->mu);
    free(sw);
}
