/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cluster.h: the cluster file, which names every region of a deployment,
 * its URL, the countries it is home for ("*": every country no other region
 * names) and its peer public key. It is the residency policy: an account
 * lives in its country's home region and nowhere else. A struct cluster is
 * immutable once loaded; reloading makes a new one.
 *
 *     [region "in"]
 *     url = http://127.0.0.1:7701
 *     countries = IN
 *     peer_key = BASE64
 *
 * Thread-safety: a loaded cluster may be read from any thread.
 */
#ifndef OIKOS_CLUSTER_H
#define OIKOS_CLUSTER_H

#include "base/buf.h"
#include "base/common.h"

#define CLUSTER_MAX_REGIONS 64
#define CLUSTER_NAME_MAX 16
#define CLUSTER_URL_MAX 256

struct cluster_region {
    char name[CLUSTER_NAME_MAX];
    char url[CLUSTER_URL_MAX]; /* base URL, no trailing slash */
    char *countries;           /* "IN SG ..." upper case, or "*" */
    uint8_t peer_key[32];
    bool has_peer_key;
};

struct cluster {
    struct cluster_region regions[CLUSTER_MAX_REGIONS];
    size_t n;
};

/**
 * Reads and validates a cluster file. On error returns ERR_INVAL with a
 * message in err (the file, the line or region, what is wrong). Caller owns
 * *out (cluster_free).
 */
MUST_CHECK int cluster_load(struct cluster **out, const char *path, struct buf *err);
/** Frees a cluster. Accepts NULL. */
void cluster_free(struct cluster *c);
/** The region named name, or NULL. */
const struct cluster_region *cluster_find(const struct cluster *c, const char *name);
/**
 * The home region of an ISO country code (upper case): the region that
 * names it, else the one with "*", else NULL.
 */
const struct cluster_region *cluster_home(const struct cluster *c, const char *country);

#endif
