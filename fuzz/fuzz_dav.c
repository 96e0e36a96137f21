/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_dav.c: libFuzzer target for the WebDAV request parser (dav/dav.c,
 * on expat), which reads the XML bodies of PROPFIND, REPORT and MKCOL from
 * anyone with credentials: any input must parse or be refused with a
 * reason, within the limits, never crash or leak. What a parse gives is
 * used as carddav.c would: properties written back, hrefs decoded. The
 * first bytes also drive the header parsers (If-Match, Depth).
 * Single-threaded; all memory is the target's own.
 */
#include "base/common.h"

#include "dav/dav.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dav_request *rq = NULL;
    char why[DAV_WHY_MAX];
    int rc = dav_request_parse(&rq, SLICE(data, size), why);
    if (rc) {
        if (!why[0])
            BUG("a refusal without a reason");
    } else {
        struct dav_props ps;
        struct buf b;
        dav_props_init(&ps, 1 << 20);
        buf_init(&b, 1 << 20);
        if (rq->nprops > DAV_PROPS_MAX || rq->nhrefs > DAV_HREFS_MAX ||
            rq->nfilters > DAV_FILTER_PROPS_MAX)
            BUG("a limit was passed");
        for (size_t i = 0; i < rq->nprops; i++)
            if (dav_prop_missing(&ps, &rq->props[i]) || dav_prop_text(&ps, &rq->props[i], "x"))
                BUG("writing a property failed");
        if (dav_ms_props(&b, "/x", &ps))
            BUG("writing a response failed");
        for (size_t i = 0; i < rq->nhrefs; i++) {
            int r = dav_href_path(&b, rq->hrefs[i]);
            (void)r;
        }
        dav_props_release(&ps);
        buf_release(&b);
        dav_request_free(rq);
    }
    /* the same bytes as header values */
    char h[128];
    size_t n = size < sizeof(h) - 1 ? size : sizeof(h) - 1;
    memcpy(h, data, n);
    h[n] = 0;
    if (!memchr(h, 0, n)) {
        struct dav_cond c;
        if (!dav_cond_parse(&c, h, h)) {
            int r = dav_cond_check(&c, true, "0123456789abcdef");
            (void)r;
        }
        (void)dav_depth(h, 0);
    }
    return 0;
}
