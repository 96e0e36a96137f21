/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vcard.h: vCard 2.1, 3.0 and 4.0 as CardDAV stores them: byte-exact. Nothing
 * here rewrites a card. vcard_check decides whether bytes are a vCard at all
 * (structure, version, encoding) and finds its UID; vcard_each walks the
 * properties of a card for the searches of addressbook-query, giving each
 * property unfolded, with helpers that decode its parameters and value.
 *
 * The checker is deliberately lenient where real phones are sloppy (vCard
 * 2.1 from Android and Outlook: no VERSION, nested cards, quoted-printable
 * soft line breaks, unindented base64, comment lines, legacy CHARSETs) and
 * strict about what cannot be a vCard (no BEGIN/END frame, text outside it,
 * NUL and control bytes, an unknown VERSION, invalid UTF-8 in 4.0).
 *
 * Thread-safety: pure functions on caller-owned memory.
 */
#ifndef OIKOS_VCARD_H
#define OIKOS_VCARD_H

#include "base/buf.h"
#include "base/common.h"

#define VCARD_MAX (4u << 20) /* the largest card accepted, in bytes */
#define VCARD_UID_MAX 1024   /* the longest UID accepted, in bytes */
#define VCARD_WHY_MAX 128    /* room for the reason a card is refused */
#define VCARD_NEST_MAX 8     /* nested BEGIN:VCARD (2.1 AGENT) */

struct vcard_info {
    unsigned version; /* of the first card: 21, 30 or 40 (21 when it has no VERSION) */
    unsigned cards;   /* top-level cards in the data (CardDAV expects 1) */
    bool has_uid;
    size_t uid_len;
    char uid[VCARD_UID_MAX + 1]; /* the first card's UID, unfolded, NUL-terminated */
};

/**
 * Checks that data is one or more vCards and fills info. Returns 0, or
 * ERR_INVAL with a human reason in why (lowercase, no final period) and
 * ERR_TOO_LARGE above VCARD_MAX. Nothing is allocated.
 */
MUST_CHECK int vcard_check(struct slice data, struct vcard_info *info, char why[VCARD_WHY_MAX]);

/** One property of a card, as vcard_each gives it; borrowed for the callback. */
struct vcard_prop {
    struct slice group;  /* "item1" of "item1.EMAIL", or empty */
    struct slice name;   /* "EMAIL" (as written: compare without case) */
    struct slice params; /* the text between the name and ':', without the first ';' */
    struct slice value;  /* unfolded, still encoded and escaped */
    unsigned version;    /* of the card: 21, 30 or 40 */
};

typedef int (*vcard_prop_cb)(void *ctx, const struct vcard_prop *p);
/**
 * Calls cb for every property of the top-level cards of data (not BEGIN,
 * END or the properties of nested cards), in order. Folded lines (and
 * quoted-printable soft breaks) are joined in scratch, whose max bounds a
 * property (ERR_LIMIT past it). Returns 0, ERR_INVAL for data that
 * vcard_check refuses, or cb's non-zero value.
 */
MUST_CHECK int vcard_each(struct slice data, struct buf *scratch, vcard_prop_cb cb, void *ctx);

typedef int (*vcard_param_cb)(void *ctx, struct slice name, struct slice value);
/**
 * Calls cb per parameter value of p: TYPE=a,b gives (TYPE, a) and (TYPE, b);
 * a 2.1 bare parameter (";HOME") gives (TYPE, HOME); quotes are removed.
 * Returns 0 or cb's non-zero value.
 */
MUST_CHECK int vcard_each_param(const struct vcard_prop *p, vcard_param_cb cb, void *ctx);

/**
 * Appends the text of p's value to out: quoted-printable decoded where the
 * parameters say so, and the backslash escapes of 3.0/4.0 text (\n \, \;
 * \\) undone. Bytes in a legacy CHARSET are given as they are.
 */
MUST_CHECK int vcard_value_text(const struct vcard_prop *p, struct buf *out);

/** True if s equals the NUL-terminated word w, ignoring ASCII case. */
bool vcard_word_eq(struct slice s, const char *w);

#endif
