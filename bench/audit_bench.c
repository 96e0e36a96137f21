/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_bench.c: the audit log's append benchmark (bench/audit_bench.sh runs
 * it, then measures proofs over HTTP against the region it leaves behind).
 * On top of the real region (core/region.h), store and audit log: it
 * initialises a region in DIR (one share of one, written to DIR/share for
 * the script to unseal oikosd with), fills the log to --entries entries in
 * large batches and lets the integrator sign them, then measures durable
 * appends: --threads threads each append one entry per durable commit (as
 * one audited request does) for --seconds, and reports the rate and how long
 * the signed head took to cover them. Bounded in time; touches only DIR.
 * Everything is owned by main; the worker threads share the region.
 */
#include "base/common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "audit/audit.h"
#include "base/cfg.h"
#include "base/log.h"
#include "base/util.h"
#include "core/region.h"
#include "crypto/aead.h"

#define PREFILL_BATCH 2000
#define ACCOUNTS 1000

static struct region *region;
static _Atomic bool stop;
static _Atomic uint64_t appended, failed;

static void
event_of(struct audit_event *ev, uint64_t i, const uint8_t obj[AUDIT_HASH_LEN], char *acct)
{
    static const char *const services[] = {"contacts", "messages", "calllog", "photos"};
    static const char *const actions[] = {"data.read", "data.write", "data.list", "data.delete"};
    snprintf(acct, STORE_ID_MAX, "bench-%020" PRIu64, i % ACCOUNTS);
    memset(ev, 0, sizeof(*ev));
    ev->actor = AUDIT_USER;
    ev->action = actions[i % 4];
    ev->account = acct;
    ev->service = services[(i / 4) % 4];
    ev->object = obj;
}

static uint64_t
head_size(void)
{
    struct audit_head h;
    return audit_head(region_audit(region), &h) ? 0 : h.cp.size;
}

static void
wait_signed(uint64_t n)
{
    while (head_size() < n)
        usleep(2000);
}

static void *
worker(void *arg)
{
    uint64_t i = (uint64_t)(uintptr_t)arg * 1000003u;
    uint8_t obj[AUDIT_HASH_LEN];
    char acct[STORE_ID_MAX];
    struct audit_event ev;
    memset(obj, 0x5a, sizeof(obj));
    while (!atomic_load(&stop)) {
        event_of(&ev, i++, obj, acct);
        if (audit_record(region_audit(region), &ev, true))
            atomic_fetch_add(&failed, 1);
        else
            atomic_fetch_add(&appended, 1);
    }
    return NULL;
}

static void
usage(void)
{
    fprintf(stderr, "usage: bench_audit --dir DIR [--entries N] [--threads T] [--seconds S]\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    const char *dir = NULL;
    uint64_t entries = 1000000, nthreads = 256, seconds = 10;
    for (int i = 1; i + 1 < argc; i += 2) {
        uint64_t *num = !strcmp(argv[i], "--entries")   ? &entries
                        : !strcmp(argv[i], "--threads") ? &nthreads
                        : !strcmp(argv[i], "--seconds") ? &seconds
                                                        : NULL;
        if (!strcmp(argv[i], "--dir"))
            dir = argv[i + 1];
        else if (!num || parse_u64(argv[i + 1], 1, 100000000, num))
            usage();
    }
    if (!dir || nthreads > 4096)
        usage();
    log_setup(LOG_WARN, 2);
    if (aead_setup())
        fatal("crypto setup failed");

    /* the region: its configuration as oikosd would read it */
    struct config cfg;
    struct buf err;
    char dopt[4096];
    snprintf(dopt, sizeof(dopt), "--data=%s", dir);
    char *cargv[] = {(char *)"--region=bench", dopt, (char *)"--listen=127.0.0.1:0", NULL};
    buf_init(&err, 1024);
    if (cfg_load(&cfg, 3, cargv, &err))
        fatal("config: %s", err.data ? err.data : "?");
    buf_release(&err);
    if (region_open(&region, &cfg))
        fatal("cannot open a region in %s", dir);
    char **shares = NULL, *token = NULL;
    if (region_init(region, 1, 1, &shares, &token))
        fatal("cannot initialise the region (is %s empty?)", dir);
    char path[4200];
    snprintf(path, sizeof(path), "%s/share", dir);
    FILE *f = fopen(path, "w");
    if (!f || fprintf(f, "%s\n", shares[0]) < 0 || fclose(f))
        fatal("cannot write %s", path);
    region_init_free(shares, 1, token);

    /* fill the log */
    struct audit *a = region_audit(region);
    uint8_t obj[AUDIT_HASH_LEN];
    char acct[STORE_ID_MAX];
    struct audit_event ev;
    memset(obj, 0xa5, sizeof(obj));
    uint64_t t0 = clock_mono_ns();
    for (uint64_t i = 1; i < entries; i += PREFILL_BATCH) {
        struct store_batch *b = NULL;
        if (store_batch_new(&b))
            fatal("out of memory");
        for (uint64_t k = i; k < i + PREFILL_BATCH && k < entries; k++) {
            event_of(&ev, k, obj, acct);
            if (audit_add(a, b, &ev))
                fatal("audit_add failed");
        }
        if (audit_commit(a, b, false))
            fatal("prefill commit failed");
        store_batch_free(b);
    }
    double append_s = (double)(clock_mono_ns() - t0) / 1e9;
    wait_signed(entries);
    double fill_s = (double)(clock_mono_ns() - t0) / 1e9;
    printf("prefill: appended in %.1f s (%.0f entries/s), signed %.1f s later\n", append_s,
           (double)entries / append_s, fill_s - append_s);
    printf("prefill: %" PRIu64 " entries appended and signed in %.1f s (%.0f entries/s, bulk)\n",
           entries, fill_s, (double)entries / fill_s);

    /* durable appends, one entry per commit, from many threads */
    pthread_t *th = calloc(nthreads, sizeof(*th));
    if (!th)
        fatal("out of memory");
    uint64_t before = store_audit_size(region_store(region));
    t0 = clock_mono_ns();
    for (uint64_t i = 0; i < nthreads; i++)
        if (pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)i))
            fatal("cannot start thread");
    sleep((unsigned)seconds);
    atomic_store(&stop, true);
    for (uint64_t i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    double s = (double)(clock_mono_ns() - t0) / 1e9;
    uint64_t n = atomic_load(&appended);
    uint64_t after = store_audit_size(region_store(region));
    wait_signed(after);
    double signed_s = (double)(clock_mono_ns() - t0) / 1e9;
    printf("durable appends: %" PRIu64 " in %.2f s with %" PRIu64 " threads = %.0f appends/s "
           "(failed %" PRIu64 "); log %" PRIu64 " -> %" PRIu64 " entries\n",
           n, s, nthreads, (double)n / s, atomic_load(&failed), before, after);
    printf("signed heads caught up %.2f s after the start (%.0f entries/s integrated)\n", signed_s,
           (double)(after - before) / signed_s);
    printf("BENCH_AUDIT {\"entries\": %" PRIu64 ", \"append_threads\": %" PRIu64
           ", \"durable_appends_per_s\": %.0f, \"integrated_per_s\": %.0f}\n",
           after, nthreads, (double)n / s, (double)(after - before) / signed_s);
    free(th);
    region_close(region);
    cfg_release(&cfg);
    return atomic_load(&failed) ? 1 : 0;
}
