/* SPDX-License-Identifier: Apache-2.0 */
/*
 * svc.h: the services an account can back up (contacts, messages, calllog,
 * settings, photos, messaging) and their keys. Every path that reads or
 * writes a service's data (REST today, CardDAV and messaging later) gets the
 * service key from svc_key(), and nowhere else: it is the one place where a
 * service's consent is enforced before any of its data is touched.
 *
 * A service key is random, made when the owner turns the service on
 * (consent_grant, with svc_key_new), stored only wrapped by the account key
 * (AAD "svc|<account>|<service>") and only in the region's key store, and
 * destroyed when the owner turns the service off.
 * Thread-safety: all functions may be called from any thread.
 */
#ifndef OIKOS_SVC_H
#define OIKOS_SVC_H

#include "base/common.h"
#include "core/region.h"
#include "crypto/secret.h"

enum svc_access { SVC_READ, SVC_WRITE };

#define SVC_COUNT 6 /* entries of svc_names, NULL excluded */

/** The service names, NULL-terminated. */
extern const char *const svc_names[];
/** True if name is one of the services. */
bool svc_valid(const char *name);

/* The record kinds (store_rec) of the contacts service's CardDAV books. */
#define SVC_REC_DAV_BOOK "davbook" /* an address book */
#define SVC_REC_DAV_UID "davuid"   /* the UID index */
#define SVC_REC_DAV_RES "davres"   /* resource name -> UID */

/**
 * The record kinds that hold a service's data besides its objects, NULL-
 * terminated (none for most): revoking the service deletes them with the
 * objects.
 */
const char *const *svc_record_kinds(const char *service);

/**
 * Gives the key of (account, service) for the access asked, in key.
 * ERR_NOT_FOUND for an unknown service; ERR_CONSENT where the owner has not
 * turned the service on (reads and writes alike); ERR_SEALED while sealed.
 */
MUST_CHECK int svc_key(struct region *r, const char *account, const char *service,
                       enum svc_access access, struct key32 *key);
/**
 * Makes a new random key for (account, service) and writes it wrapped by
 * the account key into wrapped (cap >= STORE_WRAPPED_MAX), *len its
 * length, for the caller to store in the key store. The key itself is
 * wiped. ERR_SEALED while sealed.
 */
MUST_CHECK int svc_key_new(struct region *r, const char *account, const char *service,
                           uint8_t *wrapped, size_t cap, size_t *len);

#endif
