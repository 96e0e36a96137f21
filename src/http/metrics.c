/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.c: request counters by route and status, a latency histogram by
 * route, and the region's gauges, rendered in the Prometheus text format.
 * Counters are relaxed atomics in fixed arrays: no lock, no allocation on
 * the request path.
 */
#include "base/common.h"

#include <stdatomic.h>

#include "core/retention.h"
#include "http/http_int.h"

#define MAX_ROUTES 48
#define MAX_STATUS 600

static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                 0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))

static _Atomic uint64_t requests[MAX_ROUTES + 1][MAX_STATUS];
static _Atomic uint64_t hist[MAX_ROUTES + 1][NBUCKETS + 1];
static _Atomic uint64_t hist_sum_ns[MAX_ROUTES + 1];

void
metrics_record(size_t route_idx, unsigned status, uint64_t ns)
{
    if (route_idx > MAX_ROUTES)
        route_idx = MAX_ROUTES;
    if (status >= MAX_STATUS)
        status = 0;
    atomic_fetch_add_explicit(&requests[route_idx][status], 1, memory_order_relaxed);
    double s = (double)ns / 1e9;
    size_t b = 0;
    while (b < NBUCKETS && s > buckets[b])
        b++;
    atomic_fetch_add_explicit(&hist[route_idx][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&hist_sum_ns[route_idx], ns, memory_order_relaxed);
}

static const char *
label(size_t i)
{
    return i < http_nroutes ? http_routes[i].label : "unmatched";
}

int
metrics_render(struct buf *out, struct region *r)
{
    int rc = 0;
    uint64_t objects = 0, bytes = 0;
    BUG_ON(http_nroutes > MAX_ROUTES);
    rc |= buf_adds(out, "# HELP oikos_http_requests_total HTTP requests by route and status.\n"
                        "# TYPE oikos_http_requests_total counter\n");
    for (size_t i = 0; i <= http_nroutes; i++) {
        size_t idx = i == http_nroutes ? MAX_ROUTES : i;
        for (unsigned s = 0; s < MAX_STATUS; s++) {
            uint64_t v = atomic_load_explicit(&requests[idx][s], memory_order_relaxed);
            if (v)
                rc |= buf_addf(
                    out, "oikos_http_requests_total{route=\"%s\",status=\"%u\"} %" PRIu64 "\n",
                    label(i), s, v);
        }
    }
    rc |= buf_adds(out, "# HELP oikos_http_request_duration_seconds Time to answer a request.\n"
                        "# TYPE oikos_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i <= http_nroutes; i++) {
        size_t idx = i == http_nroutes ? MAX_ROUTES : i;
        uint64_t cum = 0;
        for (size_t b = 0; b <= NBUCKETS; b++) {
            cum += atomic_load_explicit(&hist[idx][b], memory_order_relaxed);
            if (b < NBUCKETS)
                rc |= buf_addf(out,
                               "oikos_http_request_duration_seconds_bucket{route=\"%s\","
                               "le=\"%g\"} %" PRIu64 "\n",
                               label(i), buckets[b], cum);
            else
                rc |= buf_addf(out,
                               "oikos_http_request_duration_seconds_bucket{route=\"%s\","
                               "le=\"+Inf\"} %" PRIu64 "\n",
                               label(i), cum);
        }
        rc |= buf_addf(out, "oikos_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n",
                       label(i), (double)atomic_load(&hist_sum_ns[idx]) / 1e9);
        rc |= buf_addf(out, "oikos_http_request_duration_seconds_count{route=\"%s\"} %" PRIu64 "\n",
                       label(i), cum);
    }
    if (region_stats(r, &objects, &bytes) == 0) {
        rc |= buf_addf(out,
                       "# HELP oikos_objects Objects stored.\n# TYPE oikos_objects gauge\n"
                       "oikos_objects %" PRIu64 "\n"
                       "# HELP oikos_object_bytes Plaintext bytes of the objects stored.\n"
                       "# TYPE oikos_object_bytes gauge\noikos_object_bytes %" PRIu64 "\n",
                       objects, bytes);
    }
    rc |= buf_addf(out,
                   "# HELP oikos_purged_versions_total Object versions whose ciphertext the "
                   "sweeper deleted (turned off, erased or moved away), since start.\n"
                   "# TYPE oikos_purged_versions_total counter\n"
                   "oikos_purged_versions_total %" PRIu64 "\n",
                   retention_purged_total());
    rc |= metrics_audit(out, r);
    rc |= buf_addf(out,
                   "# HELP oikos_sealed 1 while the region is sealed.\n# TYPE oikos_sealed gauge\n"
                   "oikos_sealed %d\n"
                   "# HELP oikos_initialized 1 once the region is initialised.\n"
                   "# TYPE oikos_initialized gauge\noikos_initialized %d\n",
                   region_sealed(r) ? 1 : 0, region_initialized(r) ? 1 : 0);
    return rc ? ERR_NOMEM : 0;
}

int
api_metrics(struct req *q)
{
    struct buf b;
    buf_init(&b, 4 << 20);
    int rc = metrics_render(&b, q->region);
    if (!rc)
        rc = http_reply_text(q, 200, "text/plain; version=0.0.4", &b);
    buf_release(&b);
    return rc;
}
