/* SPDX-License-Identifier: Apache-2.0 */
/*
 * buf.c: struct buf (see buf.h). Capacity doubles; every size computation
 * is checked for overflow and against the buffer's max.
 */
#include "base/common.h"

#include "base/buf.h"

static char empty_data[1];

void
buf_init(struct buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void
buf_release(struct buf *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void
buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = 0;
}

int
buf_grow(struct buf *b, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return ERR_LIMIT;
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return ERR_NOMEM;
    if (!b->data)
        p[0] = 0;
    b->data = p;
    b->cap = cap;
    return 0;
}

int
buf_add(struct buf *b, const void *p, size_t n)
{
    int rc = buf_grow(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

int
buf_adds(struct buf *b, const char *s)
{
    return buf_add(b, s, strlen(s));
}

int
buf_addf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return ERR_INVAL;
    if ((size_t)n < sizeof(small))
        return buf_add(b, small, (size_t)n);
    int rc = buf_grow(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

char *
buf_take(struct buf *b, size_t *len)
{
    char *p = b->data;
    if (len)
        *len = b->len;
    if (!p) {
        p = malloc(1);
        if (p)
            p[0] = 0;
    }
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

struct slice
buf_slice(const struct buf *b)
{
    if (!b->data)
        return SLICE(empty_data, 0);
    return SLICE(b->data, b->len);
}
