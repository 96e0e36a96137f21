/* SPDX-License-Identifier: Apache-2.0 */
/*
 * export.h: everything a region holds for an account, decrypted, as one
 * ustar archive produced piece by piece: for every service that is on,
 * each live object as SERVICE/NAME (names that are not a safe relative
 * path, or too long for ustar, go under _unsafe/SERVICE/N), then
 * manifest.json listing each object (service, name, path, size, mtime,
 * SHA-256 of its bytes) and the consents. Objects are read chunk by chunk:
 * memory stays flat in their size; the manifest grows by about a line per
 * object (EXPORT_MANIFEST_MAX at most).
 *
 * Reads go through obj_feed and obj_get_*, so through svc_key(): a service
 * turned off during an export is skipped from then on. An object deleted
 * or replaced during the export may be missing or appear in its new state.
 *
 * Thread-safety: a struct export belongs to one thread at a time.
 */
#ifndef OIKOS_EXPORT_H
#define OIKOS_EXPORT_H

#include "base/common.h"
#include "core/region.h"

#define EXPORT_MANIFEST_MAX (64u << 20)

struct export;

/** Starts an export of account. Caller owns *out (export_free). */
MUST_CHECK int export_new(struct export **out, struct region *r, const char *account);
/**
 * Writes the next bytes of the archive into dst (at most cap, at least one
 * unless the archive is complete: then *n = 0). ERR_CRYPTO or ERR_CORRUPT
 * if stored data fails authentication, ERR_LIMIT past EXPORT_MANIFEST_MAX.
 */
MUST_CHECK int export_read(struct export *e, uint8_t *dst, size_t cap, size_t *n);
/** How many objects were written so far. */
uint64_t export_objects(const struct export *e);
/** Wipes every plaintext held and frees the export. Accepts NULL. */
void export_free(struct export *e);

#endif
