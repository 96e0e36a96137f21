/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tar.c: ustar headers (see tar.h), written field by field as POSIX.1-1988
 * lays them out, with the header checksum computed over the block with its
 * checksum field as spaces. Pure; the caller owns every buffer.
 */
#include "base/common.h"

#include "base/tar.h"

/* Field offsets and lengths of a ustar header. */
#define F_NAME 0
#define F_MODE 100
#define F_UID 108
#define F_GID 116
#define F_SIZE 124
#define F_MTIME 136
#define F_CHKSUM 148
#define F_TYPE 156
#define F_MAGIC 257
#define F_VERSION 263
#define F_PREFIX 345

/* Writes v as len-1 octal digits and a NUL; false if it does not fit. */
static bool
octal(uint8_t *field, size_t len, uint64_t v)
{
    field[len - 1] = 0;
    for (size_t i = len - 1; i-- > 0;) {
        field[i] = (uint8_t)('0' + (v & 7));
        v >>= 3;
    }
    return v == 0;
}

/* GNU base-256: the high bit of the first byte set, the value big-endian. */
static void
base256(uint8_t *field, size_t len, uint64_t v)
{
    memset(field, 0, len);
    for (size_t i = len; i-- > 1 && v;) {
        field[i] = (uint8_t)v;
        v >>= 8;
    }
    field[0] = 0x80;
}

int
tar_header(uint8_t out[TAR_BLOCK], const char *path, uint64_t size, int64_t mtime)
{
    size_t n = strlen(path), split = 0;
    if (n == 0 || n > TAR_PATH_MAX)
        return ERR_INVAL;
    if (n > 100) {
        /* the last '/' that leaves a name of at most 100 bytes and a prefix of at most 155 */
        for (size_t i = n - 1; i > 0; i--) {
            if (path[i] != '/')
                continue;
            if (n - i - 1 > 100)
                break;
            if (i <= 155 && n - i - 1 > 0) {
                split = i;
                break;
            }
        }
        if (!split)
            return ERR_INVAL;
    }
    memset(out, 0, TAR_BLOCK);
    if (split) {
        memcpy(out + F_PREFIX, path, split);
        memcpy(out + F_NAME, path + split + 1, n - split - 1);
    } else {
        memcpy(out + F_NAME, path, n);
    }
    (void)octal(out + F_MODE, 8, 0600);
    (void)octal(out + F_UID, 8, 0);
    (void)octal(out + F_GID, 8, 0);
    if (!octal(out + F_SIZE, 12, size))
        base256(out + F_SIZE, 12, size);
    if (!octal(out + F_MTIME, 12, mtime > 0 ? (uint64_t)mtime : 0))
        (void)octal(out + F_MTIME, 12, 0);
    out[F_TYPE] = '0';
    memcpy(out + F_MAGIC, "ustar", 6);
    memcpy(out + F_VERSION, "00", 2);
    memset(out + F_CHKSUM, ' ', 8);
    uint32_t sum = 0;
    for (size_t i = 0; i < TAR_BLOCK; i++)
        sum += out[i];
    (void)octal(out + F_CHKSUM, 7, sum); /* six digits, a NUL, then the space left */
    return 0;
}

size_t
tar_padding(uint64_t size)
{
    return (size_t)((TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK);
}
