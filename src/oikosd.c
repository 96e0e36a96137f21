/* SPDX-License-Identifier: Apache-2.0 */
/*
 * oikosd: the server of one oikos region. It reads its configuration,
 * opens the region's store (sealed: the keys come only from custodians'
 * shares), serves the HTTP API, and on SIGTERM or SIGINT stops taking
 * connections, lets requests in flight finish and closes the store.
 *
 * Signals are blocked in every thread and taken by the main thread with
 * sigwait(), so no handler ever runs inside library code.
 */
#include "base/common.h"

#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cfg.h"
#include "base/log.h"
#include "base/util.h"
#include "core/region.h"
#include "core/retention.h"
#include "crypto/aead.h"
#include "http/http.h"

static void
usage(FILE *out)
{
    fputs("usage: oikosd --region NAME --listen HOST:PORT --data DIR [--cluster FILE]\n"
          "              [--store URL] [--config FILE] [options]\n"
          "\n"
          "Serves one oikos region. It starts sealed: custodians unseal it with their\n"
          "shares (oikos operator unseal). See oikosd(8).\n"
          "\n"
          "Options:\n",
          out);
    cfg_usage(out);
}

static void
harden(void)
{
    /* keys live in this process's memory: never let it reach a core file */
    struct rlimit no = {0, 0};
    if (setrlimit(RLIMIT_CORE, &no) != 0)
        log_warn("event=harden_failed what=rlimit_core err=\"%s\"", strerror(errno));
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        log_warn("event=harden_failed what=dumpable err=\"%s\"", strerror(errno));
}

/*
 * Request buffers of up to a few MiB (a migration bundle of 4 MiB, a peer
 * body, a store batch) come from the heap and stay there when freed:
 * glibc would otherwise map such a buffer anew for each request (or give
 * a freed heap top back), and every page of it would fault on first touch,
 * which was a tenth of a migration's CPU. Larger buffers (a large object
 * in one piece) are still mapped and unmapped.
 */
#define HEAP_KEEP_BYTES (32 << 20)

static void
heap_setup(void)
{
    mallopt(M_MMAP_THRESHOLD, HEAP_KEEP_BYTES);
    mallopt(M_TRIM_THRESHOLD, 2 * HEAP_KEEP_BYTES);
}

int
main(int argc, char **argv)
{
    struct config cfg;
    struct buf err;
    struct region *region = NULL;
    struct http_server *http = NULL;
    struct retention *sweeper = NULL;
    enum log_level lvl;
    sigset_t sigs;
    int sig = 0;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--version")) {
            printf("oikosd %s\n", OIKOS_VERSION);
            return 0;
        }
    }
    buf_init(&err, 1024);
    if (cfg_load(&cfg, argc - 1, argv + 1, &err)) {
        fprintf(stderr, "oikosd: %s\n(see oikosd --help)\n", err.data ? err.data : "bad options");
        return 2;
    }
    buf_release(&err);
    if (log_level_parse(cfg.log_level, &lvl)) {
        fprintf(stderr, "oikosd: invalid log level '%s'\n", cfg.log_level);
        return 2;
    }
    int logfd = 2;
    if (cfg.log_file) {
        logfd = open(cfg.log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (logfd < 0) {
            fprintf(stderr, "oikosd: cannot open log file '%s': %s\n", cfg.log_file,
                    strerror(errno));
            return 1;
        }
    }
    log_setup(lvl, logfd);
    harden();
    heap_setup();
    const char *skew = getenv("OIKOS_TEST_CLOCK_OFFSET");
    if (skew) {
        /* tests of expiry: the daemon's wall clock runs this many seconds ahead */
        uint64_t off;
        if (parse_u64(skew, 0, 100ull * 365 * 86400, &off))
            fatal("event=bad_env name=OIKOS_TEST_CLOCK_OFFSET");
        clock_set_offset((int64_t)off);
        log_warn("event=clock_offset seconds=%" PRIu64 " note=\"for tests only\"", off);
    }
    umask(077);
    if (mkdir(cfg.data, 0700) != 0 && errno != EEXIST)
        fatal("event=data_dir_failed dir=\"%s\" err=\"%s\"", cfg.data, strerror(errno));
    if (aead_setup())
        fatal("event=crypto_setup_failed");

    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = region_open(&region, &cfg);
    if (rc)
        fatal("event=start_failed what=store err=\"%s\"", err_str(rc));
    /* retention holds sealed or not: no rule needs a key */
    rc = retention_start(&sweeper, region);
    if (rc) {
        region_close(region);
        fatal("event=start_failed what=retention err=\"%s\"", err_str(rc));
    }
    rc = http_start(&http, region);
    if (rc) {
        retention_stop(sweeper);
        region_close(region);
        fatal("event=start_failed what=http err=\"%s\"", err_str(rc));
    }
    log_info("event=listening region=%s url=http://%s:%u store=%s sealed=%d initialized=%d",
             cfg.region, cfg.host, http_port(http), "configured", region_sealed(region),
             region_initialized(region));

    for (;;) {
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            if (region_reload(region) == 0)
                log_info("event=sighup action=reloaded");
            continue;
        }
        break;
    }
    log_info("event=stopping signal=%d", sig);
    http_stop(http, 30);
    retention_stop(sweeper);
    region_close(region);
    log_info("event=stopped");
    cfg_release(&cfg);
    if (logfd != 2)
        close(logfd);
    return 0;
}
