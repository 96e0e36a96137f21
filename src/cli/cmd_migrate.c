/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_migrate.c: `oikos migrate`, moving accounts from one region to
 * another (PROMISES.md P6). The tool lists the accounts at the source
 * (GET /v1/migrate/accounts), then asks the source to move each one (POST
 * /v1/migrate/run: the source freezes it, streams it to the destination
 * over the signed peer channel, both compare the Merkle root, the source
 * shreds it), and checks each at the destination with its own operator
 * token (the account live there, with the object count the source sent).
 * Every step is idempotent on the servers, so the same command run again
 * after any crash finishes what is left.
 *
 * Workers: --jobs threads (16: a batch's steps wait on durable commits at
 * both ends, so batches in flight overlap those waits; 8 left a quarter
 * of the machine idle), each with its own connections, take batches of
 * accounts (--batch, one request moves a batch: each step of the move is
 * then one commit and one call for all of its accounts) from a shared
 * index; an account that fails in a batch is tried again alone, where a
 * busy one is retried as its Retry-After says. Counters and the progress
 * line are under one mutex. Exit 0 only when every selected account is
 * verified at the destination.
 */
#include "base/common.h"

#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "cli/cli.h"

#define MIG_BATCH_MAX 64 /* accounts per request (the servers' limit; --batch) */

struct mig_account {
    char *id;
    uint64_t objects, bytes; /* as listed at the source */
};

struct mig {
    const char *from_url, *to_url, *from_token, *to_token;
    char to_region[32];
    struct mig_account *v;
    size_t n, cap;
    size_t next, batch;
    pthread_mutex_t mu;
    /* results */
    size_t done, failed;
    uint64_t objects, bytes;
    uint64_t start_ns, last_draw_ns;
    bool bar;
};

static uint64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
mig_add(struct mig *m, const char *id, uint64_t objects, uint64_t bytes)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 256;
        m->v = realloc(m->v, m->cap * sizeof(*m->v));
        if (!m->v)
            cli_oom();
    }
    m->v[m->n].id = strdup(id);
    if (!m->v[m->n].id)
        cli_oom();
    m->v[m->n].objects = objects;
    m->v[m->n].bytes = bytes;
    m->n++;
}

/* Adds the accounts of a listing answer. */
static int
mig_add_listing(struct mig *m, json_t *ans)
{
    json_t *arr = json_object_get(ans, "accounts"), *a;
    size_t i;
    if (!json_is_array(arr))
        return -1;
    json_array_foreach(arr, i, a)
    {
        const char *id = json_string_value(json_object_get(a, "account"));
        if (!id)
            return -1;
        mig_add(m, id, (uint64_t)json_integer_value(json_object_get(a, "objects")),
                (uint64_t)json_integer_value(json_object_get(a, "bytes")));
    }
    return 0;
}

/* Under m->mu. */
static void
mig_draw(struct mig *m, bool final)
{
    uint64_t t = now_ns();
    if (!m->bar || (!final && t - m->last_draw_ns < 100000000u))
        return;
    m->last_draw_ns = t;
    double secs = (double)(t - m->start_ns) / 1e9;
    size_t finished = m->done + m->failed;
    double rate = secs > 0 ? (double)m->done / secs : 0;
    char size[32], eta[32] = "";
    cli_format_size(size, sizeof(size), m->bytes);
    if (rate > 0 && finished < m->n) {
        uint64_t left = (uint64_t)((double)(m->n - finished) / rate);
        snprintf(eta, sizeof(eta), "  ETA %" PRIu64 ":%02" PRIu64, left / 60, left % 60);
    }
    fprintf(stderr, "\r\033[K%3zu%% accounts %zu/%zu  objects %" PRIu64 "  %s  %.1f accounts/s%s",
            m->n ? finished * 100 / m->n : 100, m->done, m->n, m->objects, size, rate, eta);
    if (final)
        fputc('\n', stderr);
    fflush(stderr);
}

/*
 * Checks moved accounts v[0..n) (n <= MIG_BATCH_MAX) at the destination
 * in one request, and counts those live there; the others are reported.
 * Returns how many are.
 */
static size_t
mig_verify(struct mig *m, struct oc *dst, const struct mig_account *const *v, size_t n)
{
    struct oc_resp r = {0};
    struct buf path;
    buf_init(&path, 8192);
    bool oom = buf_adds(&path, "/v1/migrate/accounts?accounts=");
    for (size_t i = 0; !oom && i < n; i++)
        oom = (i && buf_adds(&path, ",")) || oc_escape(&path, v[i]->id);
    if (oom)
        cli_oom();
    int rc = oc_call(dst, &r, "GET", path.data, NULL);
    buf_release(&path);
    json_t *accs = rc || r.status != 200 ? NULL : json_object_get(r.json, "accounts");
    size_t good = 0;
    pthread_mutex_lock(&m->mu);
    if (!accs || json_array_size(accs) != n)
        cli_fail(dst, rc, &r, "cannot check the accounts at the destination");
    for (size_t i = 0; i < n; i++) {
        json_t *acc = json_array_get(accs, i);
        const char *id = json_string_value(json_object_get(acc, "account"));
        const char *state = json_string_value(json_object_get(acc, "state"));
        if (accs && id && !strcmp(id, v[i]->id) && state && !strcmp(state, "live") &&
            json_object_get(acc, "objects")) {
            m->objects += (uint64_t)json_integer_value(json_object_get(acc, "objects"));
            m->bytes += (uint64_t)json_integer_value(json_object_get(acc, "bytes"));
            good++;
        } else if (accs) {
            cli_error("%s: not live at the destination (%s)", v[i]->id, state ? state : "?");
        }
    }
    pthread_mutex_unlock(&m->mu);
    oc_resp_release(&r);
    return good;
}

/* Moves one account and checks it at the destination; 0 or -1 (reported). */
static int
mig_one(struct mig *m, struct oc *src, struct oc *dst, const struct mig_account *a)
{
    struct oc_resp r = {0};
    int rc = -1;
    json_t *body = json_pack("{s:s,s:s}", "account", a->id, "to", m->to_region);
    if (!body)
        cli_oom();
    for (int attempt = 0; attempt < 5; attempt++) {
        oc_resp_release(&r);
        rc = oc_call(src, &r, "POST", "/v1/migrate/run", body);
        /* a busy account (writes draining) says when to come back; a region down does not */
        if (rc || r.status != 503 || r.retry_after <= 0)
            break;
        sleep(r.retry_after < 30 ? (unsigned)r.retry_after : 30);
    }
    json_decref(body);
    if (rc || r.status != 200) {
        pthread_mutex_lock(&m->mu);
        if (m->bar)
            fputc('\n', stderr);
        cli_fail(src, rc, &r, a->id);
        pthread_mutex_unlock(&m->mu);
        oc_resp_release(&r);
        return -1;
    }
    oc_resp_release(&r);
    return mig_verify(m, dst, &a, 1) == 1 ? 0 : -1;
}

/*
 * Moves accounts v[0..n) in one request, then checks each at the
 * destination; one that failed in the batch is tried alone (mig_one).
 * Adds to *done and *failed.
 */
static void
mig_batch(struct mig *m, struct oc *src, struct oc *dst, const struct mig_account *v, size_t n,
          size_t *done, size_t *failed)
{
    struct oc_resp r = {0};
    json_t *results = NULL;
    if (n > 1) { /* a batch of one is moved alone, with its retries */
        json_t *ids = json_array();
        for (size_t i = 0; ids && i < n; i++)
            if (json_array_append_new(ids, json_string(v[i].id)))
                cli_oom();
        json_t *body = ids ? json_pack("{s:o,s:s}", "accounts", ids, "to", m->to_region) : NULL;
        if (!body)
            cli_oom();
        if (!oc_call(src, &r, "POST", "/v1/migrate/run", body) && r.status == 200)
            results = json_object_get(r.json, "accounts");
        json_decref(body);
    }
    /* the moved ones checked at the destination together, the others moved alone */
    const struct mig_account *moved[MIG_BATCH_MAX];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *res = json_array_get(results, i);
        const char *id = json_string_value(json_object_get(res, "account"));
        if (id && !strcmp(id, v[i].id) && !json_object_get(res, "error")) {
            moved[k++] = &v[i];
            continue;
        }
        int one = mig_one(m, src, dst, &v[i]);
        *done += one == 0;
        *failed += one != 0;
    }
    size_t good = k ? mig_verify(m, dst, moved, k) : 0;
    *done += good;
    *failed += k - good;
    oc_resp_release(&r);
}

static int
mig_connect(const char *url, const char *token, struct oc **out)
{
    int rc = cli_connect(url, token, out);
    if (!rc) {
        oc_set_timeouts(*out, 10000, 3600000, 600000);
        oc_set_follow_region(*out, false);
    }
    return rc;
}

static void *
mig_worker(void *arg)
{
    struct mig *m = arg;
    struct oc *src = NULL, *dst = NULL;
    if (mig_connect(m->from_url, m->from_token, &src) ||
        mig_connect(m->to_url, m->to_token, &dst)) {
        oc_free(src);
        return NULL;
    }
    for (;;) {
        size_t done = 0, failed = 0;
        pthread_mutex_lock(&m->mu);
        size_t i = m->next, k = m->n - i < m->batch ? m->n - i : m->batch;
        m->next += k;
        pthread_mutex_unlock(&m->mu);
        if (k == 0)
            break;
        mig_batch(m, src, dst, &m->v[i], k, &done, &failed);
        pthread_mutex_lock(&m->mu);
        m->done += done;
        m->failed += failed;
        mig_draw(m, false);
        pthread_mutex_unlock(&m->mu);
    }
    oc_free(src);
    oc_free(dst);
    return NULL;
}

/* The region's name from its health answer into out. */
static int
region_of(struct oc *c, const char *what, char *out, size_t cap)
{
    struct oc_resp r = {0};
    int rc = oc_call(c, &r, "GET", "/v1/sys/health", NULL);
    const char *name = rc ? NULL : json_string_value(json_object_get(r.json, "region"));
    if (!name || r.status != 200 || json_is_true(json_object_get(r.json, "sealed"))) {
        rc = cli_fail(c, rc, &r, what);
        if (!rc)
            rc = CLI_EXIT_FAIL;
    } else {
        snprintf(out, cap, "%s", name);
    }
    oc_resp_release(&r);
    return name ? 0 : CLI_EXIT_FAIL;
}

static int
migrate_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},
        {"country", required_argument, NULL, 'c'},
        {"account", required_argument, NULL, 'a'},
        {"from-token", required_argument, NULL, 'F'},
        {"to-token", required_argument, NULL, 'T'},
        {"jobs", required_argument, NULL, 'j'},
        {"batch", required_argument, NULL, 'b'},
        {"json", no_argument, NULL, 'J'},
        {"dry-run", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct mig m = {0};
    const char *country = NULL;
    char **ids = NULL;
    size_t nids = 0;
    bool json = false, dry = false;
    uint64_t jobs = 16, batch = 0;
    struct oc *src = NULL, *dst = NULL;
    struct oc_resp r = {0};
    char from_region[32];
    int ch, rc;

    m.from_token = getenv("OIKOS_FROM_TOKEN");
    m.to_token = getenv("OIKOS_TO_TOKEN");
    optind = 0;
    while ((ch = cli_getopt(&cli_cmd_migrate, argc, argv, ":h", opts)) != -1) {
        switch (ch) {
        case 'f':
            m.from_url = optarg;
            break;
        case 't':
            m.to_url = optarg;
            break;
        case 'c':
            country = optarg;
            break;
        case 'a':
            ids = realloc(ids, (nids + 1) * sizeof(*ids));
            if (!ids)
                cli_oom();
            ids[nids++] = optarg;
            break;
        case 'F':
            m.from_token = optarg;
            break;
        case 'T':
            m.to_token = optarg;
            break;
        case 'j':
            rc = cli_parse_num(&cli_cmd_migrate, "--jobs", optarg, 1, 64, &jobs);
            if (rc) {
                free(ids);
                return rc;
            }
            break;
        case 'b':
            rc = cli_parse_num(&cli_cmd_migrate, "--batch", optarg, 1, MIG_BATCH_MAX, &batch);
            if (rc) {
                free(ids);
                return rc;
            }
            break;
        case 'J':
            json = true;
            break;
        case 'n':
            dry = true;
            break;
        case 'h':
            cli_help(&cli_cmd_migrate, stdout);
            free(ids);
            return CLI_EXIT_OK;
        default:
            free(ids);
            return CLI_EXIT_USAGE;
        }
    }
    rc = CLI_EXIT_USAGE;
    if (optind < argc) {
        cli_usage_error(&cli_cmd_migrate, "unexpected argument '%s'", argv[optind]);
        goto out;
    }
    if (!m.from_url || !m.to_url) {
        cli_usage_error(&cli_cmd_migrate, "--from and --to are required");
        goto out;
    }
    if ((!country) == (nids == 0)) {
        cli_usage_error(&cli_cmd_migrate, "give either --country or --account");
        goto out;
    }
    if (country && strlen(country) != 2) {
        cli_usage_error(&cli_cmd_migrate, "--country takes two letters");
        goto out;
    }
    if (!m.from_token || !m.to_token) {
        cli_usage_error(&cli_cmd_migrate,
                        "both operator tokens are needed (--from-token, --to-token "
                        "or OIKOS_FROM_TOKEN, OIKOS_TO_TOKEN)");
        goto out;
    }
    rc = mig_connect(m.from_url, m.from_token, &src);
    if (!rc)
        rc = mig_connect(m.to_url, m.to_token, &dst);
    if (!rc)
        rc = region_of(src, "cannot reach the source region", from_region, sizeof(from_region));
    if (!rc)
        rc =
            region_of(dst, "cannot reach the destination region", m.to_region, sizeof(m.to_region));
    if (rc)
        goto out;
    if (!strcmp(from_region, m.to_region)) {
        rc = cli_usage_error(&cli_cmd_migrate, "--from and --to are the same region");
        goto out;
    }

    /* what is left to move */
    size_t moved_before = 0;
    for (size_t i = 0; i <= nids; i++) {
        struct buf path;
        if (i == nids && !country)
            break;
        buf_init(&path, 4096);
        if (buf_adds(&path, "/v1/migrate/accounts?") ||
            (country ? buf_adds(&path, "country=") || oc_escape(&path, country)
                     : buf_adds(&path, "account=") || oc_escape(&path, ids[i])))
            cli_oom();
        rc = oc_call(src, &r, "GET", path.data, NULL);
        buf_release(&path);
        if (rc || r.status != 200 || mig_add_listing(&m, r.json)) {
            rc = cli_fail(src, rc, &r, "cannot list the accounts at the source");
            goto out;
        }
        if (!country && !json_array_size(json_object_get(r.json, "accounts"))) {
            const char *state = json_string_value(json_object_get(r.json, "state"));
            if (state && !strcmp(state, "moved")) {
                moved_before++;
            } else {
                cli_error("'%s': no such account at the source", ids[i]);
                m.failed++;
            }
        }
        oc_resp_release(&r);
        if (country)
            break;
    }

    if (dry) {
        uint64_t objects = 0, bytes = 0;
        json_t *arr = json ? json_array() : NULL;
        for (size_t i = 0; i < m.n; i++) {
            objects += m.v[i].objects;
            bytes += m.v[i].bytes;
            if (json)
                json_array_append_new(arr, json_pack("{s:s,s:I,s:I}", "account", m.v[i].id,
                                                     "objects", (json_int_t)m.v[i].objects, "bytes",
                                                     (json_int_t)m.v[i].bytes));
            else
                printf("%s  %" PRIu64 " objects  %" PRIu64 " bytes\n", m.v[i].id, m.v[i].objects,
                       m.v[i].bytes);
        }
        if (json) {
            json_t *o = json_pack("{s:o,s:I,s:I,s:b}", "accounts", arr, "objects",
                                  (json_int_t)objects, "bytes", (json_int_t)bytes, "dry_run", 1);
            cli_print_json(o);
            json_decref(o);
        } else {
            printf("would move %zu accounts (%" PRIu64 " objects, %" PRIu64
                   " bytes) from %s to %s\n",
                   m.n, objects, bytes, from_region, m.to_region);
        }
        rc = m.failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
        goto out;
    }

    /* by default batches of up to 32, small enough that every job has a few */
    m.batch = batch ? (size_t)batch : m.n / (jobs * 4);
    m.batch = m.batch < 1 ? 1 : !batch && m.batch > 32 ? 32 : m.batch;
    pthread_mutex_init(&m.mu, NULL);
    m.bar = !json && isatty(2);
    m.start_ns = now_ns();
    size_t listed_failures = m.failed;
    pthread_t th[64];
    size_t nth = 0;
    for (; nth < jobs && nth < m.n; nth++)
        if (pthread_create(&th[nth], NULL, mig_worker, &m))
            break;
    for (size_t i = 0; i < nth; i++)
        pthread_join(th[i], NULL);
    if (nth == 0 && m.n)
        m.failed += m.n;
    mig_draw(&m, true);
    pthread_mutex_destroy(&m.mu);
    double secs = (double)(now_ns() - m.start_ns) / 1e9;
    size_t left = m.n - m.done + listed_failures;
    if (json) {
        json_t *o = json_pack("{s:I,s:I,s:I,s:f,s:I}", "migrated", (json_int_t)m.done, "objects",
                              (json_int_t)m.objects, "bytes", (json_int_t)m.bytes, "seconds", secs,
                              "left", (json_int_t)left);
        cli_print_json(o);
        json_decref(o);
    } else {
        char size[32];
        cli_format_size(size, sizeof(size), m.bytes);
        printf("moved %zu accounts (%" PRIu64 " objects, %s) from %s to %s in %.1f s", m.done,
               m.objects, size, from_region, m.to_region, secs);
        if (moved_before)
            printf("; %zu had moved before", moved_before);
        if (left)
            printf("; %zu left: run the same command again", left);
        printf("\n");
    }
    rc = left ? CLI_EXIT_FAIL : CLI_EXIT_OK;
out:
    oc_resp_release(&r);
    oc_free(src);
    oc_free(dst);
    for (size_t i = 0; i < m.n; i++)
        free(m.v[i].id);
    free(m.v);
    free(ids);
    return rc;
}

const struct cli_cmd cli_cmd_migrate = {
    .name = "migrate",
    .usage = "migrate --from URL --to URL (--country CC | --account ID...)\n"
             "        [--from-token T] [--to-token T] [--jobs N] [--batch N] [--json]\n"
             "        [--dry-run]",
    .summary = "move accounts from one region to another, verified, then shred the source",
    .options =
        "  --from URL        the source region\n"
        "  --to URL          the destination region\n"
        "  --country CC      every account of this country at the source\n"
        "  --account ID      this account (repeatable)\n"
        "  --from-token T    the source's operator token (or OIKOS_FROM_TOKEN)\n"
        "  --to-token T      the destination's operator token (or OIKOS_TO_TOKEN)\n"
        "  --jobs N          batches moved at once (1..64, default 16); each holds one\n"
        "                    of the source's --threads while it moves\n"
        "  --batch N         accounts per batch, moved together (1..64; default: up\n"
        "                    to 32, fewer when there are few accounts per job)\n"
        "  --json            print {\"migrated\",\"objects\",\"bytes\",\"seconds\",\"left\"}\n"
        "  --dry-run         list what would move, move nothing\n\n"
        "Exit status: 0 when every account is live at the destination, 1 if any is\n"
        "left (run the same command again: it resumes), 2 for a bad command line.\n",
    .run = migrate_run,
};
