/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sss.h: Shamir's secret sharing over GF(2^8), byte by byte. Pure (no I/O;
 * randomness from libsodium). Constant-time field arithmetic: no tables
 * indexed by secret bytes. Thread-safe.
 *
 * A share is a point (x, y[len]) with x in 1..255. The field is chosen by
 * its reduction polynomial: SSS_POLY_AES (0x11B, the layout HashiCorp Vault
 * uses; oikos's own) or SSS_POLY_GFSHARE (0x11D, libgfshare), so that both
 * published vector sets in shared/data/vectors/shamir can be checked.
 */
#ifndef OIKOS_SSS_H
#define OIKOS_SSS_H

#include "base/common.h"

#define SSS_POLY_AES 0x11B
#define SSS_POLY_GFSHARE 0x11D
#define SSS_MAX_SHARES 255

/**
 * Splits secret[len] into n shares, any k of which recover it (2 <= k <= n
 * <= 255). xs[i] are n distinct non-zero x coordinates given by the caller;
 * ys receives n*len bytes, share i at ys + i*len. Caller owns everything;
 * intermediate coefficients are wiped. ERR_INVAL for bad parameters.
 */
MUST_CHECK int sss_split(uint8_t *ys, const uint8_t *xs, unsigned n, unsigned k,
                         const uint8_t *secret, size_t len, unsigned poly);

/**
 * Recovers secret[len] from k shares (xs[i], ys[i]) by Lagrange
 * interpolation at 0. ERR_INVAL if k == 0 or two x coincide or an x is 0.
 * With fewer than the threshold the result is unrelated to the secret.
 */
MUST_CHECK int sss_combine(uint8_t *secret, size_t len, const uint8_t *xs, const uint8_t *const *ys,
                           unsigned k, unsigned poly);

/** Multiplies in GF(2^8) mod poly (exposed for tests). */
uint8_t sss_gf_mul(uint8_t a, uint8_t b, unsigned poly);

#endif
