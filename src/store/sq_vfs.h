/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sq_vfs.h: the SQLite VFS of the store's writer connection: the default
 * VFS, with a commit's WAL frames written in one system call (sq_vfs.c).
 * Internal to the SQLite back-end.
 */
#ifndef OIKOS_SQ_VFS_H
#define OIKOS_SQ_VFS_H

#define SQ_VFS_NAME "oikos-wal"

/** Registers the VFS once; its name for sqlite3_open_v2, or NULL (use the default). */
const char *sq_vfs(void);

#endif
