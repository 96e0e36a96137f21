/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.h: the region's HTTP server (libmicrohttpd, a pool of worker
 * threads). It translates requests into calls on the domain (core/) and the
 * domain's answers into the JSON of the API; it decides nothing itself.
 * Thread-safety: http_start and http_stop are called from one thread.
 */
#ifndef OIKOS_HTTP_H
#define OIKOS_HTTP_H

#include "base/common.h"
#include "core/region.h"

struct http_server;

/** Binds and starts serving region r (borrowed until http_stop). */
MUST_CHECK int http_start(struct http_server **out, struct region *r);
/** The port actually bound (useful with port 0). */
uint16_t http_port(struct http_server *h);
/**
 * Stops accepting connections, lets requests in flight finish (up to
 * timeout_s seconds), then stops every thread and frees the server.
 */
void http_stop(struct http_server *h, unsigned timeout_s);

#endif
