/* SPDX-License-Identifier: Apache-2.0 */
/*
 * client.h: liboikos, the client side of the HTTP API (docs: API.md). One
 * struct oc is one connection to one region: its base URL, the bearer token,
 * the timeouts and one libcurl easy handle reused for every request, so that
 * consecutive calls share a kept-alive connection. Calls are synchronous.
 *
 * Every call that reaches the server returns 0 and fills a struct oc_resp
 * with the HTTP status, the parsed JSON body and, for an error status, the
 * API error's code and message; a negative error code means no answer came
 * (network, local file, limit) and oc_errstr() says why. Bodies read into
 * memory are capped (OC_JSON_MAX); object data is streamed from and to file
 * descriptors and never held whole.
 *
 * A 308 `wrong_region` answer is followed (at most OC_MAX_HOPS hops) to
 * the error's "url", or failing that to the Location header less the
 * request's path, and the connection moves to the account's home region:
 * oc_url() tells where it ended up. https never falls back to http.
 *
 * Not thread-safe: one struct oc per thread. oc_global_init() runs once per
 * process before anything else.
 */
#ifndef OIKOS_CLIENT_H
#define OIKOS_CLIENT_H

#include <jansson.h>

#include "base/buf.h"
#include "base/common.h"

/** Largest JSON answer read into memory. */
#define OC_JSON_MAX (16u * 1024 * 1024)
/** Most region redirects followed by one call. */
#define OC_MAX_HOPS 3

/** A connection to one region. Opaque. */
struct oc;

/** What the server answered. Filled by every call; release with oc_resp_release. */
struct oc_resp {
    long status;         /* HTTP status; 0 if none came */
    json_t *json;        /* parsed body when it is JSON, else NULL; owned */
    char code[64];       /* API error code ("sealed", ...), "" if none */
    char message[512];   /* API error message, "" if none */
    char etag[256];      /* ETag header, "" if none */
    int64_t retry_after; /* Retry-After in seconds, -1 if absent or not a number */
    uint64_t body_size;  /* bytes of body received (for downloads: written) */
};

/**
 * Progress of a transfer: `now` bytes of `total` (0 when unknown) of the
 * current request's body. Return 0 to go on, nonzero to abort the transfer
 * (the call then fails with ERR_UNAVAILABLE and oc_errstr() says "aborted").
 */
typedef int (*oc_progress_fn)(void *arg, uint64_t now, uint64_t total);

/**
 * Initialises libcurl and libsodium, and makes jansson wipe the memory it
 * frees (request bodies carry passwords). Call once, first, from the main
 * thread, before any JSON is allocated. Returns 0 or ERR_INTERNAL.
 */
MUST_CHECK int oc_global_init(void);
/** Releases what oc_global_init set up. Call last; accepts repeated calls. */
void oc_global_cleanup(void);

/**
 * Creates a client for the region at `url` ("http://host:port", an optional
 * trailing slash is dropped; copied). Returns 0, ERR_INVAL for a URL that is
 * not http or https, or ERR_NOMEM. Caller owns *out and frees it with oc_free.
 */
MUST_CHECK int oc_new(struct oc **out, const char *url);
/** Closes the connection and frees the client, wiping the token. Accepts NULL. */
void oc_free(struct oc *c);
/** Changes the base URL (copied); same rules as oc_new. */
MUST_CHECK int oc_set_url(struct oc *c, const char *url);
/** The current base URL, without trailing slash. Borrowed until the next oc_ call. */
const char *oc_url(const struct oc *c);
/** Sets (copied) or clears (NULL) the bearer token sent with every call. */
MUST_CHECK int oc_set_token(struct oc *c, const char *token);
/**
 * Sets the timeouts in milliseconds: connecting, a whole JSON call, and a
 * stream stalled below 1 byte/s (uploads and downloads have no total limit).
 * 0 keeps the current value. Defaults: 10 s, 60 s, 60 s.
 */
void oc_set_timeouts(struct oc *c, long connect_ms, long call_ms, long stall_ms);
/** Whether 308 wrong_region answers are followed (default true). */
void oc_set_follow_region(struct oc *c, bool follow);
/** Why the last call failed without an answer. Borrowed; never NULL. */
const char *oc_errstr(const struct oc *c);

/**
 * Sends `method` to base URL + `path` (which starts with '/' and is already
 * escaped) with `body` as JSON (borrowed; NULL sends no body) and reads the
 * JSON answer into `resp` (initialised here; release it with
 * oc_resp_release whatever the result). Returns 0 when an answer came,
 * whatever its status; ERR_UNAVAILABLE on network failure or timeout,
 * ERR_LIMIT for an answer larger than OC_JSON_MAX, ERR_NOMEM.
 */
MUST_CHECK int oc_call(struct oc *c, struct oc_resp *resp, const char *method, const char *path,
                       const json_t *body);

/**
 * Uploads `size` bytes read from `fd` (from offset 0, with pread: `fd` is
 * borrowed and its offset untouched) with PUT to `path`, as
 * application/octet-stream, streamed. Progress goes to `progress` (may be
 * NULL). Returns as oc_call, and ERR_IO when reading fd fails (errno kept
 * in oc_errstr()).
 */
MUST_CHECK int oc_put_fd(struct oc *c, struct oc_resp *resp, const char *path, int fd,
                         uint64_t size, oc_progress_fn progress, void *arg);

/**
 * Downloads `path` with GET, writing the body of a 2xx answer to `fd`
 * (borrowed, written at its current offset); an error answer is read as
 * JSON into `resp` instead and nothing is written. Returns as oc_put_fd;
 * ERR_IO when writing fails. resp->body_size counts the bytes written.
 */
MUST_CHECK int oc_get_fd(struct oc *c, struct oc_resp *resp, const char *path, int fd,
                         oc_progress_fn progress, void *arg);

/** Frees what a call put in `resp`. Accepts NULL and a zeroed struct. */
void oc_resp_release(struct oc_resp *resp);

/**
 * Appends `s` URL-escaped (everything but A-Z a-z 0-9 - . _ ~ becomes %XX,
 * '/' included) to `out`. Returns 0, ERR_LIMIT or ERR_NOMEM.
 */
MUST_CHECK int oc_escape(struct buf *out, const char *s);

#endif
