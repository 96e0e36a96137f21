/* SPDX-License-Identifier: Apache-2.0 */
/*
 * buf.h: growable byte buffers with a hard limit, and borrowed slices.
 * A struct buf owns its data; an append that would pass `max` fails with
 * ERR_LIMIT and leaves the buffer as it was, so no input can grow one without
 * bound. The data is always NUL-terminated (not counted in len) so that text
 * can be used as a C string. Not thread-safe: one owner at a time.
 */
#ifndef OIKOS_BUF_H
#define OIKOS_BUF_H

#include "base/common.h"

struct buf {
    char *data; /* NULL until the first append; then NUL-terminated */
    size_t len, cap, max;
};

/** A borrowed view of bytes: valid as long as the owner says. */
struct slice {
    const uint8_t *p;
    size_t len;
};

#define SLICE(ptr, n) ((struct slice){(const uint8_t *)(ptr), (n)})
#define SLICE_STR(s) ((struct slice){(const uint8_t *)(s), strlen(s)})

/** Sets up an empty buffer that may hold at most `max` bytes. */
void buf_init(struct buf *b, size_t max);
/** Frees the contents; the buffer is empty afterwards. Accepts NULL. */
void buf_release(struct buf *b);
/** Empties the buffer, keeping its memory. */
void buf_reset(struct buf *b);
/** Appends n bytes. ERR_LIMIT past max, ERR_NOMEM; unchanged on error. */
MUST_CHECK int buf_add(struct buf *b, const void *p, size_t n);
/** Appends a C string. */
MUST_CHECK int buf_adds(struct buf *b, const char *s);
/** Appends formatted text. */
MUST_CHECK PRINTF_LIKE(2, 3) int buf_addf(struct buf *b, const char *fmt, ...);
/** Hands the data to the caller (caller frees with free()); buffer is empty. */
char *buf_take(struct buf *b, size_t *len);
/** Makes room for n more bytes without changing len. */
MUST_CHECK int buf_grow(struct buf *b, size_t n);
/** Borrowed view of the contents, valid until the next change. */
struct slice buf_slice(const struct buf *b);

#endif
