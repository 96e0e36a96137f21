/* SPDX-License-Identifier: Apache-2.0 */
/*
 * svc.c: service names and service keys (see svc.h), on top of the account
 * key (acct.h), the consent ledger (consent.h), the AEAD and the key store.
 * Keys are handed out in caller-owned locked memory and wiped here on every
 * error path.
 */
#include "base/common.h"

#include "core/acct.h"
#include "core/consent.h"
#include "core/svc.h"
#include "crypto/aead.h"
#include "store/store.h"

const char *const svc_names[] = {"contacts", "messages",  "calllog", "settings",
                                 "photos",   "messaging", NULL};
_Static_assert(sizeof(svc_names) / sizeof(svc_names[0]) == SVC_COUNT + 1, "SVC_COUNT");

const char *const *
svc_record_kinds(const char *service)
{
    static const char *const contacts[] = {SVC_REC_DAV_BOOK, SVC_REC_DAV_UID, SVC_REC_DAV_RES,
                                           NULL};
    static const char *const none[] = {NULL};
    return !strcmp(service, "contacts") ? contacts : none;
}

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
 * data passes here first: reads and writes alike need a live consent, so
 * that a service turned off answers nothing and takes nothing.
 */
static int
svc_allowed(struct region *r, const char *account, const char *service, enum svc_access access)
{
    (void)access;
    return consent_allowed(r, account, service);
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
    rc = store_svckey_get(region_keystore(r), account, service, wrapped, sizeof(wrapped), &wlen);
    if (rc == ERR_NOT_FOUND) /* turned off since svc_allowed: the key is gone */
        rc = ERR_CONSENT;
    if (rc)
        goto out;
    if (wlen < 1) {
        rc = ERR_CORRUPT;
        goto out;
    }
    rc = svc_unwrap((enum aead_cipher)wrapped[0], key, ak, aad, SLICE(wrapped + 1, wlen - 1));
out:
    if (rc)
        secret_wipe(key, sizeof(*key));
    key32_free(ak);
    return rc;
}

int
svc_key_new(struct region *r, const char *account, const char *service, uint8_t *wrapped,
            size_t cap, size_t *len)
{
    enum aead_cipher c = aead_default();
    struct key32 *ak = key32_new(), *key = key32_new();
    char aad[128];
    int rc = ERR_NOMEM;
    *len = 0;
    if (!svc_valid(service))
        rc = ERR_NOT_FOUND;
    else if (region_sealed(r))
        rc = ERR_SEALED;
    else if (cap < 2)
        rc = ERR_INVAL;
    else if (ak && key)
        rc = acct_key(r, account, ak);
    if (rc)
        goto out;
    snprintf(aad, sizeof(aad), "svc|%s|%s", account, service);
    key32_random(key);
    wrapped[0] = (uint8_t)c;
    rc = aead_seal(c, wrapped + 1, cap - 1, len, ak->b, SLICE_STR(aad),
                   SLICE(key->b, sizeof(key->b)));
    if (!rc)
        *len += 1;
out:
    key32_free(key);
    key32_free(ak);
    return rc;
}
