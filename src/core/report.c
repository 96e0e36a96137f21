/* SPDX-License-Identifier: Apache-2.0 */
/*
 * report.c: the owner's report (see report.h), on top of the data store
 * (account, usage counts, activity), the consent ledger and the retention
 * configuration. It reads counts and dates only: no key, no name, no
 * content. Everything is filled into the caller's struct; nothing is kept,
 * so any number of threads may build reports at once.
 */
#include "base/common.h"

#include "core/report.h"
#include "core/retention.h"
#include "store/store.h"

int
report_build(struct region *r, const char *account, struct report *out)
{
    struct store *s = region_store(r);
    struct store_account a;
    struct consent consents[SVC_COUNT];
    size_t n = 0;
    memset(out, 0, sizeof(*out));
    int rc = store_account_get(s, account, &a);
    if (rc)
        return rc;
    out->created = a.created;
    secret_wipe(&a, sizeof(a));
    rc = retention_idle_deadline(r, account, &out->idle_deadline);
    if (!rc)
        rc = store_activity_get(s, account, &out->last_active);
    if (!rc)
        rc = consent_list(r, account, consents, &n);
    for (size_t i = 0; !rc && i < n; i++) {
        struct report_service *rs = &out->services[i];
        rs->consent = consents[i];
        rc = store_usage(s, account, consents[i].service, &rs->objects, &rs->bytes);
        rs->delete_after = rs->objects ? out->idle_deadline : 0;
    }
    out->nservices = n;
    return rc;
}
