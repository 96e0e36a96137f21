/* SPDX-License-Identifier: Apache-2.0 */
/*
 * util.h: small exact helpers with no better home: the clock (injectable,
 * so that tests drive time without sleeping), checked number parsing, and
 * base64/hex encoding. Thread-safe.
 */
#ifndef OIKOS_UTIL_H
#define OIKOS_UTIL_H

#include "base/buf.h"
#include "base/common.h"

/** Wall-clock time in Unix seconds; the fake time if one is set. */
int64_t clock_now(void);
/** Sets a fake wall clock (tests only); 0 returns to the real clock. */
void clock_set_fake(int64_t unix_seconds);
/** Shifts the wall clock by offset seconds (tests of expiry and retention). */
void clock_set_offset(int64_t offset);
/** Monotonic time in nanoseconds, for measuring durations. */
uint64_t clock_mono_ns(void);

#define TIME_RFC3339_LEN 21 /* "2025-01-31T23:59:59Z" and its NUL */
/** Writes Unix time t as an RFC 3339 UTC timestamp (years 0..9999; else clamped). */
void time_rfc3339(char out[TIME_RFC3339_LEN], int64_t t);

/**
 * Parses a whole decimal string into [min, max]. Returns 0, or ERR_INVAL
 * for empty, non-digit, trailing characters or out-of-range input.
 */
MUST_CHECK int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/** Parses a size with an optional K, M, G suffix (powers of 1024). */
MUST_CHECK int parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/** Appends standard base64 (with padding) of p. */
MUST_CHECK int b64_encode(struct buf *out, struct slice in);
/** Appends URL-safe base64 without padding of p. */
MUST_CHECK int b64url_encode(struct buf *out, struct slice in);
/** Decodes standard base64 into out (at most cap bytes). ERR_INVAL on bad input. */
MUST_CHECK int b64_decode(uint8_t *out, size_t cap, size_t *outlen, const char *in, size_t inlen);
/** Decodes URL-safe base64 without padding. */
MUST_CHECK int b64url_decode(uint8_t *out, size_t cap, size_t *outlen, const char *in,
                             size_t inlen);
/** Writes v into out as 8 bytes, most significant first. */
void be64_put(uint8_t out[8], uint64_t v);
/** Reads 8 bytes, most significant first. */
uint64_t be64_get(const uint8_t in[8]);

/** Writes 2*n lowercase hex digits and a NUL into out (2*n+1 bytes). */
void hex_encode(char *out, const uint8_t *p, size_t n);
/** Decodes exactly `n` bytes from 2*n hex digits. ERR_INVAL otherwise. */
MUST_CHECK int hex_decode(uint8_t *out, size_t n, const char *hex, size_t hexlen);

#endif
