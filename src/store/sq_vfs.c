/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sq_vfs.c: the SQLite VFS of the store's writer connection (see
 * sq_vfs.h): the system's default VFS ("unix"), with the appends to the
 * WAL gathered in memory and written at once.
 *
 * SQLite writes each WAL frame with two write calls, its 24-byte header
 * and then its page (https://www.sqlite.org/fileformat2.html#walformat),
 * so a commit of 500 pages costs 1,000 system calls, and on a virtual
 * machine a system call costs microseconds. Here a connection's WAL file
 * gathers the frames it appends in a buffer of 124 KiB (30 frames of 4 KiB
 * pages) and writes it with one pwrite when it is full and when the commit
 * frame is complete: the frame whose header holds, at bytes 4-7, the
 * database size after the commit (zero in every other frame). That write
 * happens inside the xWrite of the commit frame's page, before SQLite
 * makes the commit visible in the WAL index, so its error is SQLite's
 * error and nobody reads a frame that is not in the file.
 *
 * Everything else sees the file as it would be without the buffer: a
 * write that is not an append (SQLite rewrites frames of a transaction in
 * place), a read, a sync, a size, a truncation, a file control and the
 * close write the buffer first; so does the database file's xShmBarrier,
 * which SQLite calls before it publishes a new WAL index header, as a
 * last guard (a write failing there cannot be reported: the process
 * stops rather than publish frames that are not in the file). A process
 * killed with frames in the buffer loses only a commit that had not
 * returned.
 *
 * Thread-safety: a file belongs to one connection, used by one thread at a
 * time (SQLite's rule); the VFS is registered once.
 */
#include "base/common.h"

#include <pthread.h>
#include <sqlite3.h>

#include "base/log.h"
#include "store/sq_vfs.h"

/*
 * Bytes of frames gathered before they are written anyway: the unix VFS
 * writes at most 128 KiB - 1 bytes per system call (seekAndWriteFd in
 * SQLite's os_unix.c), so a larger buffer would not save a call.
 */
#define VF_BUF (124u << 10)
#define VF_FRAME_HDR 24 /* a WAL frame's header */

struct vf {
    sqlite3_file base;  /* pMethods: vf_methods */
    sqlite3_file *real; /* the default VFS's file, in the same allocation */
    struct vf *wal;     /* a database file: its connection's WAL file, if open */
    struct vf *db;      /* a WAL file: its database file */
    uint8_t *buf;       /* a WAL file: appends not yet written */
    size_t len;
    sqlite3_int64 off; /* where buf starts in the file */
    bool commit_hdr;   /* the last write was the header of a commit frame */
};

static sqlite3_vfs *real_vfs;
static sqlite3_vfs vf_vfs;
static sqlite3_io_methods vf_methods;
static pthread_once_t vf_once = PTHREAD_ONCE_INIT;
static int vf_rc = SQLITE_ERROR;

static inline struct vf *
vf(sqlite3_file *f)
{
    return (struct vf *)f;
}

/* Writes the gathered frames. */
static int
vf_flush(struct vf *f)
{
    if (!f->len)
        return SQLITE_OK;
    int rc = f->real->pMethods->xWrite(f->real, f->buf, (int)f->len, f->off);
    f->len = 0;
    return rc;
}

static int
vf_close(sqlite3_file *file)
{
    struct vf *f = vf(file);
    int rc = vf_flush(f);
    if (f->db)
        f->db->wal = NULL;
    if (f->wal)
        f->wal->db = NULL;
    free(f->buf);
    f->buf = NULL;
    int rc2 = f->real->pMethods->xClose(f->real);
    return rc != SQLITE_OK ? rc : rc2;
}

static int
vf_read(sqlite3_file *file, void *p, int n, sqlite3_int64 off)
{
    struct vf *f = vf(file);
    int rc = vf_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, p, n, off);
}

static int
vf_write(sqlite3_file *file, const void *p, int n, sqlite3_int64 off)
{
    struct vf *f = vf(file);
    bool commit = f->commit_hdr;
    f->commit_hdr = false;
    if (!f->buf || n <= 0 || (size_t)n > VF_BUF / 2)
        goto direct;
    if (f->len && (off != f->off + (sqlite3_int64)f->len || f->len + (size_t)n > VF_BUF)) {
        int rc = vf_flush(f);
        if (rc != SQLITE_OK)
            return rc;
    }
    if (!f->len)
        f->off = off;
    memcpy(f->buf + f->len, p, (size_t)n);
    f->len += (size_t)n;
    if (n == VF_FRAME_HDR) {
        const uint8_t *h = p;
        f->commit_hdr = (h[4] | h[5] | h[6] | h[7]) != 0;
    }
    return commit ? vf_flush(f) : SQLITE_OK;
direct:;
    int rc = vf_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xWrite(f->real, p, n, off);
}

static int
vf_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    struct vf *f = vf(file);
    int rc = vf_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int
vf_sync(sqlite3_file *file, int flags)
{
    struct vf *f = vf(file);
    int rc = vf_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int
vf_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    struct vf *f = vf(file);
    int rc = vf_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int
vf_lock(sqlite3_file *file, int level)
{
    return vf(file)->real->pMethods->xLock(vf(file)->real, level);
}

static int
vf_unlock(sqlite3_file *file, int level)
{
    return vf(file)->real->pMethods->xUnlock(vf(file)->real, level);
}

static int
vf_check_reserved(sqlite3_file *file, int *out)
{
    return vf(file)->real->pMethods->xCheckReservedLock(vf(file)->real, out);
}

static int
vf_file_control(sqlite3_file *file, int op, void *arg)
{
    struct vf *f = vf(file);
    int rc = vf_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileControl(f->real, op, arg);
}

static int
vf_sector_size(sqlite3_file *file)
{
    return vf(file)->real->pMethods->xSectorSize(vf(file)->real);
}

static int
vf_device_characteristics(sqlite3_file *file)
{
    return vf(file)->real->pMethods->xDeviceCharacteristics(vf(file)->real);
}

static int
vf_shm_map(sqlite3_file *file, int page, int size, int extend, void volatile **out)
{
    return vf(file)->real->pMethods->xShmMap(vf(file)->real, page, size, extend, out);
}

static int
vf_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
    return vf(file)->real->pMethods->xShmLock(vf(file)->real, offset, n, flags);
}

static void
vf_shm_barrier(sqlite3_file *file)
{
    struct vf *f = vf(file);
    if (f->wal && f->wal->len && vf_flush(f->wal) != SQLITE_OK)
        fatal("event=wal_write_failed note=\"frames about to be published are not on disk\"");
    f->real->pMethods->xShmBarrier(f->real);
}

static int
vf_shm_unmap(sqlite3_file *file, int delete_flag)
{
    return vf(file)->real->pMethods->xShmUnmap(vf(file)->real, delete_flag);
}

static int
vf_fetch(sqlite3_file *file, sqlite3_int64 off, int n, void **out)
{
    return vf(file)->real->pMethods->xFetch(vf(file)->real, off, n, out);
}

static int
vf_unfetch(sqlite3_file *file, sqlite3_int64 off, void *p)
{
    return vf(file)->real->pMethods->xUnfetch(vf(file)->real, off, p);
}

static int
vf_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out_flags)
{
    (void)vfs;
    struct vf *f = vf(file);
    memset(f, 0, sizeof(*f));
    f->real = (sqlite3_file *)(f + 1);
    int rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
    /* SQLite calls xClose after a failed open if pMethods is set */
    f->base.pMethods = f->real->pMethods ? &vf_methods : NULL;
    if (rc == SQLITE_OK && f->real->pMethods->iVersion < 3) { /* not the unix VFS's */
        f->real->pMethods->xClose(f->real);
        f->base.pMethods = NULL;
        return SQLITE_CANTOPEN;
    }
    if (rc != SQLITE_OK || !(flags & SQLITE_OPEN_WAL))
        return rc;
    f->buf = malloc(VF_BUF);
    if (!f->buf)
        return SQLITE_OK; /* it writes directly */
    sqlite3_file *db = sqlite3_database_file_object(name);
    if (db && db->pMethods == &vf_methods) {
        f->db = vf(db);
        f->db->wal = f;
    }
    return SQLITE_OK;
}

static void
vf_setup(void)
{
    real_vfs = sqlite3_vfs_find(NULL);
    if (!real_vfs || real_vfs->iVersion < 2)
        return;
    const sqlite3_io_methods m = {
        .iVersion = 3,
        .xClose = vf_close,
        .xRead = vf_read,
        .xWrite = vf_write,
        .xTruncate = vf_truncate,
        .xSync = vf_sync,
        .xFileSize = vf_file_size,
        .xLock = vf_lock,
        .xUnlock = vf_unlock,
        .xCheckReservedLock = vf_check_reserved,
        .xFileControl = vf_file_control,
        .xSectorSize = vf_sector_size,
        .xDeviceCharacteristics = vf_device_characteristics,
        .xShmMap = vf_shm_map,
        .xShmLock = vf_shm_lock,
        .xShmBarrier = vf_shm_barrier,
        .xShmUnmap = vf_shm_unmap,
        .xFetch = vf_fetch,
        .xUnfetch = vf_unfetch,
    };
    vf_methods = m;
    vf_vfs = *real_vfs; /* the rest (delete, access, randomness, time) is the default's */
    vf_vfs.szOsFile = (int)sizeof(struct vf) + real_vfs->szOsFile;
    vf_vfs.zName = SQ_VFS_NAME;
    vf_vfs.pNext = NULL;
    vf_vfs.xOpen = vf_open;
    vf_rc = sqlite3_vfs_register(&vf_vfs, 0);
}

const char *
sq_vfs(void)
{
    pthread_once(&vf_once, vf_setup);
    return vf_rc == SQLITE_OK ? SQ_VFS_NAME : NULL;
}
