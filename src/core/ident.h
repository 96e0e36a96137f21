/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ident.h: an account's identifiers: phone numbers (normalised to E.164)
 * and IMEIs (Luhn-checked). Never stored in clear: the store keeps an
 * HMAC-SHA256 under the region's identifier pepper (for lookups, which work
 * only while the region is unsealed) and a copy sealed under the account
 * key (for the owner's own listing).
 *
 * Thread-safety: all functions may be called from any thread.
 */
#ifndef OIKOS_IDENT_H
#define OIKOS_IDENT_H

#include "base/common.h"
#include "core/region.h"
#include "store/store.h"

enum ident_type { IDENT_PHONE = 1, IDENT_IMEI = 2 };

#define IDENT_VALUE_MAX 32 /* a normalised value with its NUL */

/** Parses "phone" or "imei". ERR_INVAL otherwise. */
MUST_CHECK int ident_type_parse(const char *s, enum ident_type *out);
/** "phone" or "imei". */
const char *ident_type_name(enum ident_type t);

/**
 * Normalises a phone number to E.164 ("+" and 7 to 15 digits): spaces,
 * dashes, dots and brackets are dropped; "+CC..." and "00CC..." must start
 * with a known country calling code; a national number takes the calling
 * code of country (two letters) after its trunk 0. ERR_INVAL for anything
 * that is not a number.
 */
MUST_CHECK int ident_phone_normalize(char out[IDENT_VALUE_MAX], const char *in,
                                     const char *country);
/** Checks an IMEI: 15 digits (spaces and dashes dropped) with a valid Luhn digit. */
MUST_CHECK int ident_imei_normalize(char out[IDENT_VALUE_MAX], const char *in);

/** Registers an identifier of account (idempotent). ERR_INVAL for a bad value. */
MUST_CHECK int ident_add(struct region *r, const char *account, enum ident_type type,
                         const char *value);

/** Called per identifier of the owner, value borrowed for the call. */
typedef int (*ident_cb)(void *ctx, enum ident_type type, const char *value);
/** Lists an account's own identifiers, opened with its key. */
MUST_CHECK int ident_list(struct region *r, const char *account, ident_cb cb, void *ctx);

/**
 * Finds the account that registered a value (as a client would give it;
 * country for national phone numbers). ERR_NOT_FOUND if none, ERR_SEALED
 * while sealed: lookups need the pepper.
 */
MUST_CHECK int ident_lookup(struct region *r, enum ident_type type, const char *value,
                            const char *country, char account_out[STORE_ID_MAX]);

#endif
