/* SPDX-License-Identifier: Apache-2.0 */
/*
 * report.h: what a region holds about one account, for its owner: per
 * service the consent, the live objects and their bytes and the date they
 * will be gone unless the account is used; the account's creation and last
 * activity. The consent history is read with consent_history(), the rules
 * from retention_rules. Reads only; thread-safe.
 */
#ifndef OIKOS_REPORT_H
#define OIKOS_REPORT_H

#include "base/common.h"
#include "core/consent.h"
#include "core/region.h"
#include "core/svc.h"

struct report_service {
    struct consent consent;
    uint64_t objects, bytes; /* live objects and their plaintext bytes */
    int64_t delete_after;    /* when they go if the account stays unused; 0 if none held */
};

struct report {
    int64_t created;       /* the account's creation */
    int64_t last_active;   /* its last recorded activity (a day's end), or its creation */
    int64_t idle_deadline; /* when the idle-account rule would erase it */
    struct report_service services[SVC_COUNT]; /* in svc_names order */
    size_t nservices;
};

/** Fills out for account. ERR_NOT_FOUND if there is no such account. */
MUST_CHECK int report_build(struct region *r, const char *account, struct report *out);

#endif
