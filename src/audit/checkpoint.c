/* SPDX-License-Identifier: Apache-2.0 */
/*
 * checkpoint.c: C2SP checkpoints and signed notes (see checkpoint.h), on
 * top of libsodium (SHA-256, Ed25519 verification) and base/util's base64.
 * Signing is not here: the key lives in the keyring (kr_audit_sign), and
 * this file only formats what is signed and checks what was.
 *
 * Ownership: callers own every buffer. Thread-safety: reentrant.
 */
#include "base/common.h"

#include <sodium.h>

#include "audit/checkpoint.h"
#include "base/util.h"
#include "crypto/hash.h"

/* The signature line's prefix: U+2014 EM DASH and a space. */
static const char sig_prefix[] = "\xe2\x80\x94 ";

int
checkpoint_origin(struct checkpoint *c, const char *region)
{
    if (!region || !region[0])
        return ERR_INVAL;
    int n = snprintf(c->origin, sizeof(c->origin), "oikos/%s", region);
    return n > 0 && (size_t)n < sizeof(c->origin) ? 0 : ERR_INVAL;
}

int
checkpoint_format(struct buf *out, const struct checkpoint *c)
{
    int rc = buf_addf(out, "%s\n%" PRIu64 "\n", c->origin, c->size);
    if (!rc)
        rc = b64_encode(out, SLICE(c->root.b, MERKLE_HASH_LEN));
    if (!rc)
        rc = buf_addf(out, "\ntimestamp %" PRId64 "\n", c->timestamp);
    return rc;
}

/* A line of text[0..len) from *pos: its start and length, without the newline. */
static int
next_line(const char *text, size_t len, size_t *pos, const char **line, size_t *n)
{
    if (*pos >= len)
        return ERR_NOT_FOUND;
    const char *start = text + *pos;
    const char *nl = memchr(start, '\n', len - *pos);
    if (!nl)
        return ERR_CORRUPT; /* every line ends in a newline */
    *line = start;
    *n = (size_t)(nl - start);
    *pos += *n + 1;
    if (*n == 0)
        return ERR_CORRUPT; /* no empty line in a body */
    for (size_t i = 0; i < *n; i++)
        if ((unsigned char)start[i] < 0x20 || start[i] == 0x7f)
            return ERR_CORRUPT;
    return 0;
}

/* A decimal without sign or leading zero into [0, max]. */
static int
parse_dec(const char *s, size_t n, uint64_t max, uint64_t *out)
{
    char tmp[24];
    if (n == 0 || n >= sizeof(tmp) || (n > 1 && s[0] == '0'))
        return ERR_CORRUPT;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    return parse_u64(tmp, 0, max, out) ? ERR_CORRUPT : 0;
}

int
checkpoint_parse(struct checkpoint *out, const char *text, size_t len)
{
    const char *line;
    size_t n, pos = 0, rlen = 0;
    uint64_t v;
    memset(out, 0, sizeof(*out));
    out->timestamp = -1;
    if (next_line(text, len, &pos, &line, &n) || n >= sizeof(out->origin))
        return ERR_CORRUPT;
    memcpy(out->origin, line, n);
    out->origin[n] = 0;
    if (next_line(text, len, &pos, &line, &n) || parse_dec(line, n, UINT64_MAX, &out->size))
        return ERR_CORRUPT;
    if (next_line(text, len, &pos, &line, &n) ||
        b64_decode(out->root.b, MERKLE_HASH_LEN, &rlen, line, n) || rlen != MERKLE_HASH_LEN)
        return ERR_CORRUPT;
    for (;;) {
        int rc = next_line(text, len, &pos, &line, &n);
        if (rc == ERR_NOT_FOUND)
            return 0;
        if (rc)
            return rc;
        static const char ts[] = "timestamp ";
        if (n > sizeof(ts) - 1 && !memcmp(line, ts, sizeof(ts) - 1)) {
            if (out->timestamp >= 0 ||
                parse_dec(line + sizeof(ts) - 1, n - (sizeof(ts) - 1), INT64_MAX, &v))
                return ERR_CORRUPT;
            out->timestamp = (int64_t)v;
        }
    }
}

void
checkpoint_key_id(uint8_t out[CHECKPOINT_KEY_ID_LEN], const char *name,
                  const uint8_t pk[CHECKPOINT_PUBKEY_LEN])
{
    struct hash st;
    uint8_t h[HASH_SHA256_LEN];
    const uint8_t sep[2] = {'\n', 0x01}; /* 0x01: the Ed25519 signature type */
    hash_init(&st);
    hash_update(&st, name, strlen(name));
    hash_update(&st, sep, sizeof(sep));
    hash_update(&st, pk, CHECKPOINT_PUBKEY_LEN);
    hash_final(&st, h);
    memcpy(out, h, CHECKPOINT_KEY_ID_LEN);
}

int
checkpoint_note(struct buf *out, struct slice body, const char *name,
                const uint8_t pk[CHECKPOINT_PUBKEY_LEN], const uint8_t sig[CHECKPOINT_SIG_LEN])
{
    uint8_t blob[CHECKPOINT_KEY_ID_LEN + CHECKPOINT_SIG_LEN];
    if (!body.len || body.p[body.len - 1] != '\n')
        return ERR_INVAL;
    checkpoint_key_id(blob, name, pk);
    memcpy(blob + CHECKPOINT_KEY_ID_LEN, sig, CHECKPOINT_SIG_LEN);
    int rc = buf_add(out, body.p, body.len);
    if (!rc)
        rc = buf_addf(out, "\n%s%s ", sig_prefix, name);
    if (!rc)
        rc = b64_encode(out, SLICE(blob, sizeof(blob)));
    if (!rc)
        rc = buf_adds(out, "\n");
    return rc;
}

int
checkpoint_verify(struct slice body, const uint8_t sig[CHECKPOINT_SIG_LEN],
                  const uint8_t pk[CHECKPOINT_PUBKEY_LEN])
{
    return crypto_sign_verify_detached(sig, body.p, body.len, pk) == 0 ? 0 : ERR_CORRUPT;
}

int
checkpoint_note_verify(struct slice note, const char *name, const uint8_t pk[CHECKPOINT_PUBKEY_LEN],
                       size_t *body_len)
{
    const char *text = (const char *)note.p;
    uint8_t want_id[CHECKPOINT_KEY_ID_LEN];
    size_t name_len = strlen(name);
    *body_len = 0;
    /* The body ends at the last blank line; signature lines follow it. */
    size_t split = 0;
    for (size_t i = 1; i + 1 < note.len; i++)
        if (text[i] == '\n' && text[i + 1] == '\n')
            split = i + 1;
    if (!split || text[note.len - 1] != '\n')
        return ERR_CORRUPT;
    checkpoint_key_id(want_id, name, pk);
    size_t pos = split + 1;
    while (pos < note.len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', note.len - pos);
        size_t n = (size_t)(nl - line);
        pos += n + 1;
        size_t pre = sizeof(sig_prefix) - 1;
        if (n < pre + name_len + 1 || memcmp(line, sig_prefix, pre) ||
            memcmp(line + pre, name, name_len) || line[pre + name_len] != ' ')
            continue;
        uint8_t blob[CHECKPOINT_KEY_ID_LEN + CHECKPOINT_SIG_LEN];
        size_t blen = 0;
        const char *b64 = line + pre + name_len + 1;
        if (b64_decode(blob, sizeof(blob), &blen, b64, (size_t)(line + n - b64)) ||
            blen != sizeof(blob) || memcmp(blob, want_id, CHECKPOINT_KEY_ID_LEN))
            continue;
        /* The first line of our key decides, as signed-note verifiers do. */
        int rc = checkpoint_verify(SLICE(text, split), blob + CHECKPOINT_KEY_ID_LEN, pk);
        if (!rc)
            *body_len = split;
        return rc;
    }
    return ERR_CORRUPT;
}
