/* SPDX-License-Identifier: Apache-2.0 */
/*
 * svc.c: service names and service keys (see svc.h), on top of the account
 * key (acct.h), the AEAD and the store.
 */
#include "base/common.h"

#include "core/acct.h"
#include "core/svc.h"
#include "crypto/aead.h"
#include "store/store.h"

const char *const svc_names[] = {"contacts", "messages", "calllog", "settings",
                                 "photos",   "messaging", NULL};

bool
svc_valid(const char *name)
{
    for (size_t i = 0; svc_names[i]; i++)
        if (!strcmp(name, svc_names[i]))
            return true;
    return false;
}

/*
 * Whether the owner lets this access happen. Every access to a service's
 * data passes here first; the consent ledger plugs in at this point.
 */
static int
svc_allowed(struct region *r, const char *account, const char *service, enum svc_access access)
{
    (void)r;
    (void)account;
    (void)service;
    (void)access;
    return 0;
}

static int
svc_unwrap(enum aead_cipher c, struct key32 *key, const struct key32 *acct_key, const char *aad,
           struct slice wrapped)
{
    size_t n = 0;
    int rc = aead_open(c, key->b, sizeof(key->b), &n, acct_key->b, SLICE_STR(aad), wrapped);
    if (!rc && n != sizeof(key->b))
        rc = ERR_CORRUPT;
    return rc;
}

int
svc_key(struct region *r, const char *account, const char *service, enum svc_access access,
        struct key32 *key)
{
    struct store *s = region_store(r);
    struct store_batch *b = NULL;
    struct key32 *ak = NULL;
    uint8_t wrapped[STORE_WRAPPED_MAX];
    size_t wlen = 0;
    char aad[128];
    int rc;

    if (!svc_valid(service))
        return ERR_NOT_FOUND;
    if (region_sealed(r))
        return ERR_SEALED;
    rc = svc_allowed(r, account, service, access);
    if (rc)
        return rc;
    snprintf(aad, sizeof(aad), "svc|%s|%s", account, service);
    ak = key32_new();
    if (!ak)
        return ERR_NOMEM;
    rc = acct_key(r, account, ak);
    if (rc)
        goto out;

    for (int attempt = 0; attempt < 2; attempt++) {
        rc = store_svckey_get(s, account, service, wrapped, sizeof(wrapped), &wlen);
        if (rc == 0) {
            if (wlen < 1) {
                rc = ERR_CORRUPT;
                goto out;
            }
            rc = svc_unwrap((enum aead_cipher)wrapped[0], key, ak, aad,
                            SLICE(wrapped + 1, wlen - 1));
            goto out;
        }
        if (rc != ERR_NOT_FOUND || access == SVC_READ)
            goto out;
        /* first write: make the key; a concurrent first write may win */
        enum aead_cipher c = aead_default();
        key32_random(key);
        wrapped[0] = (uint8_t)c;
        rc = aead_seal(c, wrapped + 1, sizeof(wrapped) - 1, &wlen, ak->b, SLICE_STR(aad),
                       SLICE(key->b, sizeof(key->b)));
        if (!rc)
            rc = store_batch_new(&b);
        if (!rc)
            rc = store_batch_svckey_insert(b, account, service, SLICE(wrapped, wlen + 1));
        if (!rc)
            rc = store_commit(s, b, false);
        store_batch_free(b);
        b = NULL;
        if (rc != ERR_EXISTS)
            goto out;
    }
out:
    if (rc)
        secret_wipe(key, sizeof(*key));
    key32_free(ak);
    return rc;
}
