/* SPDX-License-Identifier: Apache-2.0 */
/*
 * peer.h: the signed channel between regions (/v1/peer/...). A request from
 * region A to region B carries four headers:
 *
 *     Oikos-Peer: A
 *     Oikos-Peer-Time: <Unix milliseconds>
 *     Oikos-Peer-Nonce: <32 hex digits, random>
 *     Oikos-Peer-Signature: <base64 Ed25519 signature>
 *
 * signed with A's peer key (kr_peer_sign) over
 *
 *     "oikos-peer-v1\n" METHOD "\n" PATH "\n" A "\n" B "\n" TIME "\n" NONCE "\n"
 *     hex(SHA-256(body))
 *
 * B checks it against the peer_key the cluster file pins for A, refuses a
 * time more than PEER_WINDOW_MS away from its clock or older than its own
 * start (the nonce cache lives in memory), and remembers every nonce it took
 * until it leaves the window: a request is accepted once.
 *
 * Thread-safety: every function may be called from any thread.
 */
#ifndef OIKOS_PEER_H
#define OIKOS_PEER_H

#include "base/common.h"
#include "core/region.h"

#define PEER_WINDOW_MS 60000 /* accepted clock difference, either way */
#define PEER_NONCE_HEX 32
#define PEER_SIG_B64 96 /* a base64 signature with its NUL */

/** The four headers of one signed request, as text. */
struct peer_headers {
    char from[REGION_NAME_MAX];
    char time[24];
    char nonce[PEER_NONCE_HEX + 1];
    char sig[PEER_SIG_B64];
};

/**
 * Signs a request of this region to region `to`: fills h. body may be
 * empty. ERR_SEALED while sealed (the key is derived from the master key).
 */
MUST_CHECK int peer_sign(struct region *r, struct peer_headers *h, const char *method,
                         const char *path, const char *to, struct slice body);
/**
 * Checks a request's headers (any may be NULL: ERR_UNAUTHORIZED) and body
 * against the cluster's pinned key of the named caller, the time window and
 * the nonce cache; takes the nonce. 0 with the caller's region name in
 * from, or ERR_UNAUTHORIZED (ERR_UNAVAILABLE if the nonce cache is full).
 */
MUST_CHECK int peer_verify(struct region *r, const char *method, const char *path,
                           const char *from_hdr, const char *time_hdr, const char *nonce_hdr,
                           const char *sig_hdr, struct slice body, char from[REGION_NAME_MAX]);
/** The region's peer public key, base64 (standard, padded) into out. ERR_SEALED. */
MUST_CHECK int peer_pubkey_b64(struct region *r, char out[64]);

#endif
