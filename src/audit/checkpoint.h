/* SPDX-License-Identifier: Apache-2.0 */
/*
 * checkpoint.h: a signed tree head in the C2SP formats, so that standard
 * transparency-log witnesses and verifiers can check oikos heads.
 *
 * The body (C2SP tlog-checkpoint) is four lines, each ending in a newline:
 *
 *     oikos/<region>             the origin, which is also the key name
 *     <tree size>                decimal, no leading zero
 *     <root hash>                standard base64 of the 32-byte RFC 6962 root
 *     timestamp <unix seconds>   an extension line: when the head was signed
 *
 * The Ed25519 signature is over exactly those bytes. As a signed note
 * (C2SP signed-note) the body is followed by a blank line and one line
 * "— <key name> <base64(key id || signature)>", where the key id is the
 * first 4 bytes of SHA-256(key name || 0x0A || 0x01 || public key).
 *
 * Pure: no I/O, callers own every buffer. Thread-safety: reentrant.
 */
#ifndef OIKOS_CHECKPOINT_H
#define OIKOS_CHECKPOINT_H

#include "audit/merkle.h"
#include "base/buf.h"
#include "base/common.h"

#define CHECKPOINT_ORIGIN_MAX 64
#define CHECKPOINT_SIG_LEN 64
#define CHECKPOINT_PUBKEY_LEN 32
#define CHECKPOINT_KEY_ID_LEN 4

struct checkpoint {
    char origin[CHECKPOINT_ORIGIN_MAX]; /* "oikos/<region>" */
    uint64_t size;
    struct merkle_hash root;
    int64_t timestamp; /* Unix seconds; -1 if the body had no timestamp line */
};

/** Sets origin to "oikos/<region>". ERR_INVAL if it would not fit or region is empty. */
MUST_CHECK int checkpoint_origin(struct checkpoint *c, const char *region);
/** Appends the body of c to out. */
MUST_CHECK int checkpoint_format(struct buf *out, const struct checkpoint *c);
/**
 * Parses a body: origin, size, root, then extension lines, of which
 * "timestamp N" is read and others are skipped. ERR_CORRUPT for anything
 * malformed (a missing final newline, an empty line, a control character,
 * a size with a leading zero, a root that is not 32 bytes of base64).
 */
MUST_CHECK int checkpoint_parse(struct checkpoint *out, const char *text, size_t len);

/** The signed-note key id of an Ed25519 key called name. */
void checkpoint_key_id(uint8_t out[CHECKPOINT_KEY_ID_LEN], const char *name,
                       const uint8_t pk[CHECKPOINT_PUBKEY_LEN]);
/** Appends the signed note of body (the blank line, then one signature line) to out. */
MUST_CHECK int checkpoint_note(struct buf *out, struct slice body, const char *name,
                               const uint8_t pk[CHECKPOINT_PUBKEY_LEN],
                               const uint8_t sig[CHECKPOINT_SIG_LEN]);
/**
 * Checks the Ed25519 signature sig of body under pk. 0 or ERR_CORRUPT.
 */
MUST_CHECK int checkpoint_verify(struct slice body, const uint8_t sig[CHECKPOINT_SIG_LEN],
                                 const uint8_t pk[CHECKPOINT_PUBKEY_LEN]);
/**
 * Checks a signed note: finds the signature line of key name whose key id
 * matches pk, and checks its signature over the note's body. *body_len gets
 * the body's length (it starts the note). 0 or ERR_CORRUPT.
 */
MUST_CHECK int checkpoint_note_verify(struct slice note, const char *name,
                                      const uint8_t pk[CHECKPOINT_PUBKEY_LEN], size_t *body_len);

#endif
