/* SPDX-License-Identifier: Apache-2.0 */
/*
 * util.c: clock, number parsing and encodings (see util.h). Base64 and hex
 * use libsodium's constant-time codecs, since they also carry secrets.
 */
#include "base/common.h"

#include <sodium.h>
#include <stdatomic.h>

#include "base/util.h"

static _Atomic int64_t fake_now;
static _Atomic int64_t offset_now;

int64_t
clock_now(void)
{
    int64_t f = atomic_load(&fake_now);
    if (f)
        return f;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec + atomic_load(&offset_now);
}

void
clock_set_offset(int64_t offset)
{
    atomic_store(&offset_now, offset);
}

void
clock_set_fake(int64_t unix_seconds)
{
    atomic_store(&fake_now, unix_seconds);
}

uint64_t
clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void
time_rfc3339(char out[TIME_RFC3339_LEN], int64_t t)
{
    const int64_t max = 253402300799; /* 9999-12-31T23:59:59Z */
    struct tm tm;
    time_t tt = (time_t)(t < 0 ? 0 : t > max ? max : t);
    if (!gmtime_r(&tt, &tm) || !strftime(out, TIME_RFC3339_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, TIME_RFC3339_LEN, "1970-01-01T00:00:00Z");
}

int
parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!s || !*s)
        return ERR_INVAL;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return ERR_INVAL;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return ERR_INVAL;
        v = v * 10 + d;
    }
    if (v < min || v > max)
        return ERR_INVAL;
    *out = v;
    return 0;
}

int
parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!s || !*s)
        return ERR_INVAL;
    size_t n = strlen(s);
    uint64_t mul = 1;
    char last = s[n - 1];
    if (last == 'K' || last == 'k')
        mul = 1024;
    else if (last == 'M' || last == 'm')
        mul = 1024 * 1024;
    else if (last == 'G' || last == 'g')
        mul = 1024 * 1024 * 1024;
    char num[32];
    size_t numlen = mul == 1 ? n : n - 1;
    if (numlen == 0 || numlen >= sizeof(num))
        return ERR_INVAL;
    memcpy(num, s, numlen);
    num[numlen] = 0;
    uint64_t v;
    if (parse_u64(num, 0, UINT64_MAX / mul, &v))
        return ERR_INVAL;
    v *= mul;
    if (v < min || v > max)
        return ERR_INVAL;
    *out = v;
    return 0;
}

static int
b64_encode_variant(struct buf *out, struct slice in, int variant)
{
    size_t n = sodium_base64_encoded_len(in.len, variant);
    int rc = buf_grow(out, n);
    if (rc)
        return rc;
    sodium_bin2base64(out->data + out->len, n, in.p, in.len, variant);
    out->len += strlen(out->data + out->len);
    return 0;
}

int
b64_encode(struct buf *out, struct slice in)
{
    return b64_encode_variant(out, in, sodium_base64_VARIANT_ORIGINAL);
}

int
b64url_encode(struct buf *out, struct slice in)
{
    return b64_encode_variant(out, in, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static int
b64_decode_variant(uint8_t *out, size_t cap, size_t *outlen, const char *in, size_t inlen,
                   int variant)
{
    const char *end = NULL;
    size_t n = 0;
    if (sodium_base642bin(out, cap, in, inlen, NULL, &n, &end, variant) != 0)
        return ERR_INVAL;
    if (end != in + inlen)
        return ERR_INVAL;
    *outlen = n;
    return 0;
}

int
b64_decode(uint8_t *out, size_t cap, size_t *outlen, const char *in, size_t inlen)
{
    return b64_decode_variant(out, cap, outlen, in, inlen, sodium_base64_VARIANT_ORIGINAL);
}

int
b64url_decode(uint8_t *out, size_t cap, size_t *outlen, const char *in, size_t inlen)
{
    return b64_decode_variant(out, cap, outlen, in, inlen,
                              sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

void
be64_put(uint8_t out[8], uint64_t v)
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(v >> (56 - 8 * i));
}

uint64_t
be64_get(const uint8_t in[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | in[i];
    return v;
}

void
hex_encode(char *out, const uint8_t *p, size_t n)
{
    sodium_bin2hex(out, 2 * n + 1, p, n);
}

int
hex_decode(uint8_t *out, size_t n, const char *hex, size_t hexlen)
{
    size_t got = 0;
    const char *end = NULL;
    if (hexlen != 2 * n)
        return ERR_INVAL;
    if (sodium_hex2bin(out, n, hex, hexlen, NULL, &got, &end) != 0 || got != n ||
        end != hex + hexlen)
        return ERR_INVAL;
    return 0;
}
