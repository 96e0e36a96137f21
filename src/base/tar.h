/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tar.h: the few pieces of a POSIX ustar archive a streamed export needs:
 * the 512-byte header of a regular file, the padding after its content and
 * the end-of-archive marker. Sizes of 8 GiB and more use the base-256
 * encoding of GNU tar (read by GNU tar, bsdtar and Python's tarfile). Pure
 * functions, no allocation; thread-safe.
 */
#ifndef OIKOS_TAR_H
#define OIKOS_TAR_H

#include "base/common.h"

#define TAR_BLOCK 512
#define TAR_PATH_MAX 255 /* prefix (155) + '/' + name (100) */

/**
 * Writes the header of a regular file at path (mode 0600, owner 0, the
 * given mtime, clamped at 0) into out. A path over 100 bytes is split at a
 * '/' into ustar's prefix and name fields. ERR_INVAL if the path is empty
 * or cannot be split to fit: the caller picks another name.
 */
MUST_CHECK int tar_header(uint8_t out[TAR_BLOCK], const char *path, uint64_t size, int64_t mtime);
/** The zero bytes that follow `size` bytes of content, to the next block. */
size_t tar_padding(uint64_t size);

#endif
