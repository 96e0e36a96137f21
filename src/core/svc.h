/* SPDX-License-Identifier: Apache-2.0 */
/*
 * svc.h: the services an account can back up (contacts, messages, calllog,
 * settings, photos, messaging) and their keys. Every path that reads or
 * writes a service's data (REST today, CardDAV and messaging later) gets the
 * service key from svc_key(), and nowhere else: it is the one place where a
 * service's consent is enforced before any of its data is touched.
 *
 * A service key is random, made on the first write, and stored only wrapped
 * by the account key (AAD "svc|<account>|<service>").
 * Thread-safety: all functions may be called from any thread.
 */
#ifndef OIKOS_SVC_H
#define OIKOS_SVC_H

#include "base/common.h"
#include "core/region.h"
#include "crypto/secret.h"

enum svc_access { SVC_READ, SVC_WRITE };

/** The service names, NULL-terminated. */
extern const char *const svc_names[];
/** True if name is one of the services. */
bool svc_valid(const char *name);

/**
 * Gives the key of (account, service) for the access asked, in key.
 * SVC_WRITE makes the key if the service has none yet. ERR_NOT_FOUND for a
 * read of a service that holds nothing; ERR_CONSENT where the owner has not
 * turned the service on; ERR_SEALED while sealed.
 */
MUST_CHECK int svc_key(struct region *r, const char *account, const char *service,
                       enum svc_access access, struct key32 *key);

#endif
