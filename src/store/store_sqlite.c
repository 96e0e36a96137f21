/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_sqlite.c: the SQLite back-end of the store (struct store_ops, see
 * store_int.h), on top of libsqlite3. Every SQL string and every sqlite3
 * type of oikos lives in this file, but for the writer's VFS (sq_vfs.c).
 *
 * One database file in WAL mode. The writer thread of store.c owns one
 * read-write connection, opened with sq_vfs: the frames of a commit reach
 * the WAL in a few large writes rather than two write calls each. Its
 * commits run with synchronous=NORMAL (no fsync: safe against a process
 * crash, not a power cut), and durability comes from sq_sync, an
 * fdatasync of the WAL through our own descriptor, which the sync thread
 * of store.c runs while the writer goes on: one sync covers every commit
 * before it. When store.c asks for a durable commit itself
 * (txn_begin(durable)), it runs with synchronous=FULL, which fsyncs the WAL
 * before readers can see the commit. The automatic checkpoint is off: the
 * writer runs a PASSIVE checkpoint between groups once the queue is idle and
 * the WAL is large, a forced one if the WAL passes a hard limit, and a
 * TRUNCATE checkpoint at close, so that commits never pay for a checkpoint
 * and the WAL file is reused rather than grown (an fsync of overwritten
 * blocks is cheaper than of appended ones). secure_delete is on so that
 * deleted ciphertext does not linger in free pages.
 *
 * Reads use read-only connections from a pool: a reading thread takes an
 * idle one (or opens one), runs one statement to completion or reset, and
 * puts it back. WAL lets them read a consistent snapshot while the writer
 * writes. Every connection caches its prepared statements.
 *
 * Chunks of SQ_FILE_MIN bytes or more (the chunks of large objects) are not
 * stored in the database but in chunk files, one per object version, in
 * the directory PATH.chunks: the row keeps the chunk's offset and length in
 * the file. A large object is so written to disk once (not to the WAL and
 * again by the checkpoint) and read back with one pread per chunk (not one
 * per 4 KiB page). The files hold the same sealed bytes the rows would.
 * Order of writes: the writer appends a chunk to its file before its row
 * is committed, and fdatasyncs every file written since the last time (and
 * the directory, if it created one) before it commits a transaction that
 * stores an object, so that no object row reaches the disk before its
 * chunks. A file is unlinked only once no row refers to it and the
 * deletion is durable (sq_files_gone, between groups), and files that no
 * row refers to are removed at start (sq_orphans_delete): crashes leave
 * nothing behind. Files are unlinked, not overwritten: their blocks hold
 * ciphertext only (see docs/internals/STORE.md). While PATH-backup-hold
 * exists, no chunk file is unlinked (an online backup: a snapshot of the
 * database, then hard links of the files, finds every file it refers to).
 *
 * A lock file (PATH-lock, flock) keeps a second store, in this process or
 * another, from opening the same database: the seq counter and the live
 * counters assume a single writer.
 *
 * Ownership: struct store_sqlite owns its connections, the pool and the
 * path; readers borrow a connection between reader_get and reader_put.
 * Thread-safety: pool_lock guards the pool; the writer connection and the
 * fields marked "writer" are touched only by the writer thread (or by
 * open/close while no writer runs).
 */
#include "base/common.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "store/sq_vfs.h"
#include "store/store_int.h"

#define SQ_BUSY_MS 10000                     /* busy_timeout of every connection */
#define SQ_WAL_IDLE_PAGES 4000               /* checkpoint when idle past this */
#define SQ_WAL_MAX_PAGES 16384               /* checkpoint even when busy past this */
#define SQ_WAL_TAIL_PAGES 2048               /* the writer copies at most this many itself */
#define SQ_WAL_HARD_PAGES 65536              /* past this the writer checkpoints between groups */
#define SQ_WAL_LIMIT_BYTES "67108864"        /* journal_size_limit: 64 MiB */
#define SQ_POOL_IDLE_MAX 64                  /* idle readers kept open */
#define SQ_HOLD_CHUNKS_MAX (1u << 20)        /* chunks a held read locates at once */
#define SQ_FILE_MIN (64 * 1024)              /* chunks this long go to a chunk file */
#define SQ_FILE_NAME_MAX (STORE_ID_MAX + 24) /* "<account>.<16 hex digits>" */
#define SQ_FILES_OPEN_MAX 64                 /* files written and not yet synced */

/* Cached statements; each connection prepares one the first time it is used. */
enum sq_stmt {
    /* reads */
    SQ_META_GET,
    SQ_ACCOUNT_GET,
    SQ_SESSION_GET,
    SQ_SVCKEY_GET,
    SQ_OBJECT_GET,
    SQ_CHUNK_GET,
    SQ_CHUNKS_LIST,
    SQ_FEED,
    SQ_FEED_DATA,
    SQ_REC_GET,
    SQ_REC_LIST,
    SQ_REC_FIND,
    SQ_SESSIONS_OF,
    SQ_CONSENT_GET,
    SQ_CONSENTS,
    SQ_CONSENT_LOG,
    SQ_CONSENTS_PENDING,
    SQ_USAGE,
    SQ_USAGE_ALL,
    SQ_ACTIVITY_GET,
    SQ_ACCOUNTS_IDLE,
    SQ_PURGES,
    SQ_ERASURES,
    SQ_AUDIT_LEAVES,
    SQ_AUDIT_FIND,
    SQ_AUDIT_COUNT,
    SQ_AUDIT_NODE_GET,
    /* writer */
    SQ_SYNC_NORMAL,
    SQ_SYNC_FULL,
    SQ_BEGIN,
    SQ_READ_BEGIN,
    SQ_COMMIT,
    SQ_ROLLBACK,
    SQ_SAVEPOINT,
    SQ_ROLLBACK_TO,
    SQ_RELEASE,
    SQ_META_PUT,
    SQ_ACCOUNT_INSERT,
    SQ_SESSION_INSERT,
    SQ_SESSION_DELETE,
    SQ_SVCKEY_INSERT,
    SQ_OBJECT_FIND,
    SQ_OBJECT_INSERT,
    SQ_OBJECT_UPDATE,
    SQ_OBJECT_TOMBSTONE,
    SQ_CHUNK_PUT,
    SQ_CHUNKS_DELETE,
    SQ_CHUNKS_ANY,
    SQ_REC_INSERT,
    SQ_REC_PUT,
    SQ_REC_DELETE,
    SQ_RECS_EXPIRE,
    SQ_RECS_DELETE,
    SQ_CONSENT_UPSERT,
    SQ_CONSENT_LOG_ADD,
    SQ_CONSENT_PURGED,
    SQ_SVCKEY_DELETE,
    SQ_SVC_QUEUE,
    SQ_SVC_DELETE,
    SQ_ACCT_USAGE,
    SQ_ACCT_QUEUE,
    SQ_ERASE_OBJECTS,
    SQ_ERASE_SESSIONS,
    SQ_ERASE_SVCKEYS,
    SQ_ERASE_CONSENTS,
    SQ_ERASE_CONSENT_LOG,
    SQ_ERASE_ACTIVITY,
    SQ_ERASE_RECORDS,
    SQ_ERASE_ACCOUNT,
    SQ_ACTIVITY_PUT,
    SQ_PURGE_DEQUEUE,
    SQ_RETIRE_QUEUE,
    SQ_ROWS_QUEUED,
    SQ_ERASURE_PUT,
    SQ_ERASURE_DONE,
    SQ_SESSIONS_EXPIRE,
    SQ_AUDIT_APPEND,
    SQ_AUDIT_NODE_PUT,
    SQ_AUDIT_OWNER_PUT,
    SQ_NSTMT
};

static const char *const sq_sql[SQ_NSTMT] = {
    [SQ_META_GET] = "SELECT v FROM meta WHERE k = ?1",
    [SQ_ACCOUNT_GET] = "SELECT country, pwhash, wrapped_key, created FROM accounts"
                       " WHERE account = ?1",
    [SQ_SESSION_GET] = "SELECT account, created, expires FROM sessions WHERE token_hash = ?1",
    [SQ_SVCKEY_GET] = "SELECT wrapped FROM svckeys WHERE account = ?1 AND service = ?2",
    [SQ_OBJECT_GET] = "SELECT name_hash, name_sealed, version, seq, size, chunks, cipher, mtime,"
                      " deleted FROM objects"
                      " WHERE account = ?1 AND service = ?2 AND name_hash = ?3",
    [SQ_CHUNK_GET] = "SELECT data, foff, flen FROM chunks"
                     " WHERE account = ?1 AND version = ?2 AND idx = ?3",
    [SQ_CHUNKS_LIST] = "SELECT idx, foff, flen FROM chunks WHERE account = ?1 AND version = ?2",
    [SQ_FEED] = "SELECT name_hash, name_sealed, version, seq, size, chunks, cipher, mtime,"
                " deleted FROM objects"
                " WHERE account = ?1 AND service = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4",
    [SQ_FEED_DATA] = "SELECT o.name_hash, o.name_sealed, o.version, o.seq, o.size, o.chunks,"
                     " o.cipher, o.mtime, o.deleted, c.data FROM objects o"
                     " LEFT JOIN chunks c ON o.chunks = 1 AND o.deleted = 0 AND o.size <= ?5"
                     " AND c.account = o.account AND c.version = o.version AND c.idx = 0"
                     " AND c.foff IS NULL"
                     " WHERE o.account = ?1 AND o.service = ?2 AND o.seq > ?3"
                     " ORDER BY o.seq LIMIT ?4",
    [SQ_SYNC_NORMAL] = "PRAGMA synchronous = NORMAL",
    [SQ_SYNC_FULL] = "PRAGMA synchronous = FULL",
    [SQ_BEGIN] = "BEGIN IMMEDIATE",
    [SQ_READ_BEGIN] = "BEGIN",
    [SQ_COMMIT] = "COMMIT",
    [SQ_ROLLBACK] = "ROLLBACK",
    [SQ_SAVEPOINT] = "SAVEPOINT batch",
    [SQ_ROLLBACK_TO] = "ROLLBACK TO batch",
    [SQ_RELEASE] = "RELEASE batch",
    [SQ_META_PUT] = "INSERT INTO meta (k, v) VALUES (?1, ?2)"
                    " ON CONFLICT (k) DO UPDATE SET v = excluded.v",
    [SQ_ACCOUNT_INSERT] = "INSERT INTO accounts (account, country, pwhash, wrapped_key, created)"
                          " VALUES (?1, ?2, ?3, ?4, ?5)",
    [SQ_SESSION_INSERT] = "INSERT INTO sessions (account, token_hash, created, expires)"
                          " VALUES (?1, ?2, ?3, ?4)",
    [SQ_SESSION_DELETE] = "DELETE FROM sessions WHERE token_hash = ?1",
    [SQ_SVCKEY_INSERT] = "INSERT INTO svckeys (account, service, wrapped) VALUES (?1, ?2, ?3)",
    [SQ_OBJECT_FIND] = "SELECT version, size, deleted FROM objects"
                       " WHERE account = ?1 AND service = ?2 AND name_hash = ?3",
    [SQ_OBJECT_INSERT] = "INSERT INTO objects (account, service, name_hash, name_sealed, version,"
                         " seq, size, chunks, cipher, mtime, deleted)"
                         " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0)"
                         " ON CONFLICT (account, service, name_hash) DO NOTHING",
    [SQ_OBJECT_UPDATE] = "UPDATE objects SET name_sealed = ?4, version = ?5, seq = ?6, size = ?7,"
                         " chunks = ?8, cipher = ?9, mtime = ?10, deleted = 0"
                         " WHERE account = ?1 AND service = ?2 AND name_hash = ?3",
    [SQ_OBJECT_TOMBSTONE] = "UPDATE objects SET seq = ?4, mtime = ?5, size = 0, chunks = 0,"
                            " deleted = 1"
                            " WHERE account = ?1 AND service = ?2 AND name_hash = ?3",
    [SQ_CHUNK_PUT] = "INSERT INTO chunks (account, version, idx, data, foff, flen)"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                     " ON CONFLICT (account, version, idx) DO UPDATE SET data = excluded.data,"
                     " foff = excluded.foff, flen = excluded.flen",
    [SQ_CHUNKS_DELETE] = "DELETE FROM chunks WHERE account = ?1 AND version = ?2 RETURNING foff",
    [SQ_CHUNKS_ANY] = "SELECT 1 FROM chunks WHERE account = ?1 AND version = ?2 LIMIT 1",
    [SQ_REC_GET] = "SELECT val FROM records WHERE account = ?1 AND kind = ?2 AND rkey = ?3",
    [SQ_REC_LIST] = "SELECT rkey, val FROM records WHERE account = ?1 AND kind = ?2 ORDER BY rkey",
    [SQ_SESSIONS_OF] = "SELECT token_hash, created, expires FROM sessions WHERE account = ?1"
                       " ORDER BY token_hash",
    [SQ_REC_FIND] = "SELECT account FROM records WHERE kind = ?1 AND rkey = ?2"
                    " ORDER BY account LIMIT 1",
    [SQ_REC_INSERT] = "INSERT INTO records (account, kind, rkey, val) VALUES (?1, ?2, ?3, ?4)",
    [SQ_REC_PUT] = "INSERT OR REPLACE INTO records (account, kind, rkey, val)"
                   " VALUES (?1, ?2, ?3, ?4)",
    [SQ_REC_DELETE] = "DELETE FROM records WHERE account = ?1 AND kind = ?2 AND rkey = ?3",
    [SQ_RECS_EXPIRE] = "DELETE FROM records WHERE kind = ?1 AND val < ?2",
    [SQ_RECS_DELETE] = "DELETE FROM records WHERE account = ?1 AND kind = ?2",
    [SQ_CONSENT_GET] = "SELECT granted, at, policy, generation, purge_pending FROM consents"
                       " WHERE account = ?1 AND service = ?2",
    [SQ_CONSENTS] = "SELECT service, granted, at, policy, generation, purge_pending FROM consents"
                    " WHERE account = ?1 ORDER BY service",
    [SQ_CONSENT_LOG] = "SELECT service, granted, at, policy, generation FROM consent_log"
                       " WHERE account = ?1 ORDER BY n",
    [SQ_CONSENTS_PENDING] = "SELECT account, service, granted, at, policy, generation,"
                            " purge_pending FROM consents WHERE purge_pending = 1 LIMIT ?1",
    [SQ_USAGE] = "SELECT count(*), coalesce(sum(size), 0) FROM objects"
                 " WHERE account = ?1 AND service = ?2 AND deleted = 0",
    [SQ_USAGE_ALL] = "SELECT count(*), coalesce(sum(size), 0) FROM objects"
                     " WHERE account = ?1 AND deleted = 0",
    /* the later of the last activity and the creation (portable: no max/greatest) */
    [SQ_ACTIVITY_GET] = "SELECT CASE WHEN v.at > a.created THEN v.at ELSE a.created END"
                        " FROM accounts a LEFT JOIN activity v ON v.account = a.account"
                        " WHERE a.account = ?1",
    [SQ_ACCOUNTS_IDLE] = "SELECT a.account,"
                         " CASE WHEN v.at > a.created THEN v.at ELSE a.created END AS last"
                         " FROM accounts a LEFT JOIN activity v ON v.account = a.account"
                         " WHERE a.created < ?1 AND (v.at IS NULL OR v.at < ?1)"
                         " ORDER BY last, a.account LIMIT ?2",
    [SQ_PURGES] = "SELECT account, version FROM purges ORDER BY queued, account, version LIMIT ?1",
    [SQ_ERASURES] = "SELECT account, at FROM erasures ORDER BY at, account LIMIT ?1",
    [SQ_AUDIT_LEAVES] = "SELECT idx, leaf, tag FROM audit_leaves WHERE idx >= ?1 AND idx < ?2"
                        " ORDER BY idx",
    [SQ_AUDIT_FIND] = "SELECT l.idx, l.leaf, l.tag FROM audit_owned o"
                      " JOIN audit_leaves l ON l.idx = o.idx"
                      " WHERE o.epoch = ?4 AND o.tag = ?1 AND o.idx >= ?2 ORDER BY o.idx LIMIT ?3",
    [SQ_AUDIT_COUNT] = "SELECT count(*) FROM audit_owned WHERE epoch = ?2 AND tag = ?1",
    [SQ_AUDIT_NODE_GET] = "SELECT hash FROM audit_nodes WHERE id = ?1",
    [SQ_AUDIT_APPEND] = "INSERT INTO audit_leaves (idx, tag, leaf) VALUES (?1, ?2, ?3)",
    [SQ_AUDIT_NODE_PUT] = "INSERT INTO audit_nodes (id, hash) VALUES (?1, ?2)",
    [SQ_AUDIT_OWNER_PUT] = "INSERT INTO audit_owned (epoch, tag, idx) VALUES (?3, ?1, ?2)",
    [SQ_CONSENT_UPSERT] =
        "INSERT INTO consents (account, service, granted, at, policy, generation,"
        " purge_pending) VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6)"
        " ON CONFLICT (account, service) DO UPDATE SET granted = excluded.granted,"
        " at = excluded.at, policy = excluded.policy,"
        " generation = consents.generation + 1,"
        " purge_pending = excluded.purge_pending",
    /* n: the account's changes in order, 1, 2, ... */
    [SQ_CONSENT_LOG_ADD] = "INSERT INTO consent_log (account, n, service, generation, granted, at,"
                           " policy) SELECT account,"
                           " (SELECT coalesce(max(n), 0) + 1 FROM consent_log WHERE account = ?1),"
                           " service, generation, granted, at, policy"
                           " FROM consents WHERE account = ?1 AND service = ?2",
    [SQ_CONSENT_PURGED] = "UPDATE consents SET purge_pending = 0"
                          " WHERE account = ?1 AND service = ?2 AND generation = ?3",
    [SQ_SVCKEY_DELETE] = "DELETE FROM svckeys WHERE account = ?1 AND service = ?2",
    [SQ_SVC_QUEUE] = "INSERT INTO purges (account, version, queued)"
                     " SELECT account, version, ?3 FROM objects"
                     " WHERE account = ?1 AND service = ?2 AND deleted = 0"
                     " ON CONFLICT (account, version) DO NOTHING",
    [SQ_SVC_DELETE] = "DELETE FROM objects WHERE account = ?1 AND service = ?2",
    [SQ_ACCT_USAGE] = "SELECT count(*), coalesce(sum(size), 0) FROM objects"
                      " WHERE account = ?1 AND deleted = 0",
    [SQ_ACCT_QUEUE] = "INSERT INTO purges (account, version, queued)"
                      " SELECT account, version, ?2 FROM objects WHERE account = ?1 AND deleted = 0"
                      " ON CONFLICT (account, version) DO NOTHING",
    [SQ_ERASE_OBJECTS] = "DELETE FROM objects WHERE account = ?1",
    [SQ_ERASE_SESSIONS] = "DELETE FROM sessions WHERE account = ?1",
    [SQ_ERASE_SVCKEYS] = "DELETE FROM svckeys WHERE account = ?1",
    [SQ_ERASE_CONSENTS] = "DELETE FROM consents WHERE account = ?1",
    [SQ_ERASE_CONSENT_LOG] = "DELETE FROM consent_log WHERE account = ?1",
    [SQ_ERASE_ACTIVITY] = "DELETE FROM activity WHERE account = ?1",
    [SQ_ERASE_RECORDS] = "DELETE FROM records WHERE account = ?1",
    [SQ_ERASE_ACCOUNT] = "DELETE FROM accounts WHERE account = ?1",
    /* only for an account that exists: an erased one leaves no trace here */
    [SQ_ACTIVITY_PUT] = "INSERT INTO activity (account, at) SELECT ?1, ?2"
                        " WHERE EXISTS (SELECT 1 FROM accounts WHERE account = ?1)"
                        " ON CONFLICT (account) DO UPDATE SET at = excluded.at"
                        " WHERE excluded.at > activity.at",
    [SQ_PURGE_DEQUEUE] = "DELETE FROM purges WHERE account = ?1 AND version = ?2",
    [SQ_RETIRE_QUEUE] = "INSERT INTO purges (account, version, queued) VALUES (?1, 0, ?2)"
                        " ON CONFLICT (account, version) DO NOTHING",
    [SQ_ROWS_QUEUED] = "SELECT queued FROM purges WHERE account = ?1 AND version = 0",
    [SQ_ERASURE_PUT] = "INSERT INTO erasures (account, at) VALUES (?1, ?2)"
                       " ON CONFLICT (account) DO NOTHING",
    [SQ_ERASURE_DONE] = "DELETE FROM erasures WHERE account = ?1",
    [SQ_SESSIONS_EXPIRE] = "DELETE FROM sessions WHERE expires <= ?1",
};

struct sq_conn {
    sqlite3 *db;
    sqlite3_stmt *stmt[SQ_NSTMT];
    struct sq_conn *next; /* in the pool of idle readers */
};

struct store_sqlite {
    struct store base; /* first: a struct store * is a struct store_sqlite * */
    char *path;
    int lock_fd;
    int wal_fd;       /* the WAL, opened by us for sq_sync */
    struct sq_conn w; /* writer */
    int w_sync;       /* writer: the synchronous level set, 0 = unknown */
    int wal_frames;   /* writer: frames in the WAL after the last commit */
    pthread_mutex_t pool_lock;
    bool pool_lock_ready;
    struct sq_conn *pool; /* idle readers, under pool_lock */
    unsigned pool_len;
    bool incremental; /* auto_vacuum is incremental: compact can give space back */

    /*
     * The checkpointer: a thread with its own connection copies the WAL
     * back into the database while the writer goes on committing. The
     * writer only kicks it, and copies the last few frames itself (a WAL
     * is started over only once every frame is copied, which a concurrent
     * checkpoint seldom achieves under load).
     */
    struct sq_conn ck;
    pthread_t ck_thread;
    bool ck_started;
    pthread_mutex_t ck_lock;
    pthread_cond_t ck_wake;
    bool ck_ready, ck_kicked, ck_closing, ck_busy;
    int ck_copied;   /* frames copied by the last checkpoint; under ck_lock */
    unsigned ck_gen; /* bumped when the WAL starts over; under ck_lock */

    /* chunk files (see the top of this file); all but chunk_dir: writer */
    char *chunk_dir;     /* PATH.chunks */
    char *hold_path;     /* PATH-backup-hold */
    bool hold_noted;     /* the hold was logged since it appeared */
    bool chunk_dir_made; /* exists, and its parent is synced */
    struct sq_file {
        char name[SQ_FILE_NAME_MAX];
        int fd;
    } files[SQ_FILES_OPEN_MAX]; /* written since their last fdatasync */
    unsigned nfiles;
    bool dir_dirty;   /* a file was made since the directory's last fsync */
    int files_failed; /* a chunk file's sync failed: every later commit fails */
    bool txn_objects; /* the open transaction stores an object */
    struct sq_gone {  /* versions whose chunk files may have lost their rows */
        char account[STORE_ID_MAX];
        int64_t version;
    } * gone;
    size_t ngone, gone_cap;
};

static const uint8_t sq_empty[1];

static struct store_sqlite *
sq(struct store *s)
{
    return (struct store_sqlite *)s;
}

/* ------------------------------------------------------------------------ */
/* Errors, statements, columns                                              */

/* Maps a SQLite result code to an oikos error, logging the unexpected ones. */
static int
sq_err(sqlite3 *db, int rc, const char *what)
{
    switch (rc) {
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_UNIQUE:
        return ERR_EXISTS;
    case SQLITE_NOMEM:
        return ERR_NOMEM;
    case SQLITE_TOOBIG:
        return ERR_TOO_LARGE;
    default:
        break;
    }
    log_err("sqlite failed op=%s code=%d error=\"%s\"", what, rc,
            db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return ERR_CORRUPT;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return ERR_UNAVAILABLE;
    case SQLITE_CONSTRAINT:
        return ERR_INVAL;
    default:
        return ERR_IO;
    }
}

/* Sets *out to the cached statement id of c, preparing it on first use. */
static int
sq_stmt(struct sq_conn *c, enum sq_stmt id, sqlite3_stmt **out)
{
    if (!c->stmt[id]) {
        int rc = sqlite3_prepare_v3(c->db, sq_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->stmt[id],
                                    NULL);
        if (rc != SQLITE_OK)
            return sq_err(c->db, rc, "prepare");
    }
    *out = c->stmt[id];
    return 0;
}

/* Runs a cached statement that returns no row. */
static int
sq_run(struct sq_conn *c, enum sq_stmt id)
{
    sqlite3_stmt *st = NULL;
    int rc = sq_stmt(c, id, &st);
    if (rc)
        return rc;
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return sq_err(c->db, rc, sq_sql[id]);
    return 0;
}

/* Steps a bound statement that changes rows; resets it. */
static int
sq_exec_bound(struct sq_conn *c, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sq_err(c->db, rc, what);
    return 0;
}

static int
sq_bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n)
{
    /* A NULL pointer would bind SQL NULL, not an empty blob. */
    return sqlite3_bind_blob64(st, i, n ? p : sq_empty, n, SQLITE_STATIC);
}

static int
sq_bind_text(sqlite3_stmt *st, int i, const char *s)
{
    return sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/* Copies a text column into out[cap] with its NUL; ERR_CORRUPT if too long. */
static int
sq_col_text(sqlite3_stmt *st, int i, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    if (!t || n >= cap)
        return ERR_CORRUPT;
    memcpy(out, t, n);
    out[n] = 0;
    return 0;
}

/* Copies a blob column into out[cap]; ERR_CORRUPT if too long. */
static int
sq_col_blob(sqlite3_stmt *st, int i, uint8_t *out, size_t cap, size_t *len)
{
    const void *p = sqlite3_column_blob(st, i);
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    if (n > cap)
        return ERR_CORRUPT;
    if (n)
        memcpy(out, p, n);
    *len = n;
    return 0;
}

/* Appends a blob column to out. */
static int
sq_col_buf(sqlite3_stmt *st, int i, struct buf *out)
{
    const void *p = sqlite3_column_blob(st, i);
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    if (!n)
        return buf_grow(out, 0);
    if (!p)
        return ERR_NOMEM;
    return buf_add(out, p, n);
}

/* ------------------------------------------------------------------------ */
/* Connections                                                              */

static void
sq_conn_close(struct sq_conn *c)
{
    if (!c || !c->db)
        return;
    for (size_t i = 0; i < SQ_NSTMT; i++)
        sqlite3_finalize(c->stmt[i]);
    memset(c->stmt, 0, sizeof(c->stmt));
    sqlite3_close(c->db);
    c->db = NULL;
}

/* Runs one statement with no parameters, returning its first column as int. */
static int
sq_query_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_err(db, rc, sql);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else if (rc == SQLITE_DONE)
        *out = 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sq_err(db, rc, sql);
    return 0;
}

/* Runs a pragma that returns its new value as text, and checks it. */
static int
sq_pragma_expect(sqlite3 *db, const char *sql, const char *want)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_err(db, rc, sql);
    rc = sqlite3_step(st);
    bool ok = rc == SQLITE_ROW && sqlite3_column_text(st, 0) &&
              !strcmp((const char *)sqlite3_column_text(st, 0), want);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sq_err(db, rc, sql);
    if (!ok) {
        log_err("sqlite setting refused pragma=\"%s\"", sql);
        return ERR_IO;
    }
    return 0;
}

static int
sq_exec(sqlite3 *db, const char *sql)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return sq_err(db, rc, "exec");
    return 0;
}

/* Opens a read-only connection for the pool. */
static int
sq_reader_open(struct store_sqlite *q, struct sq_conn **out)
{
    *out = NULL;
    struct sq_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return ERR_NOMEM;
    int rc = sqlite3_open_v2(q->path, &c->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = sq_err(c->db, rc, "open reader");
        goto out;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, SQ_BUSY_MS);
    *out = c;
    c = NULL;
out:
    if (c) {
        sq_conn_close(c);
        free(c);
    }
    return rc;
}

/* Borrows an idle reader (or a new one); give it back with sq_reader_put. */
static int
sq_reader_get(struct store_sqlite *q, struct sq_conn **out)
{
    pthread_mutex_lock(&q->pool_lock);
    struct sq_conn *c = q->pool;
    if (c) {
        q->pool = c->next;
        q->pool_len--;
    }
    pthread_mutex_unlock(&q->pool_lock);
    if (c) {
        c->next = NULL;
        *out = c;
        return 0;
    }
    return sq_reader_open(q, out);
}

static void
sq_reader_put(struct store_sqlite *q, struct sq_conn *c)
{
    /* never pooled inside a transaction: its snapshot would hold the WAL back */
    if (!sqlite3_get_autocommit(c->db) && sq_exec(c->db, "ROLLBACK")) {
        sq_conn_close(c);
        free(c);
        return;
    }
    pthread_mutex_lock(&q->pool_lock);
    if (q->pool_len < SQ_POOL_IDLE_MAX) {
        c->next = q->pool;
        q->pool = c;
        q->pool_len++;
        c = NULL;
    }
    pthread_mutex_unlock(&q->pool_lock);
    if (c) {
        sq_conn_close(c);
        free(c);
    }
}

/* ------------------------------------------------------------------------ */
/* Opening and closing                                                      */

/* Applies every migration step newer than the database, in one transaction. */
static int
sq_migrate(struct sq_conn *c)
{
    int64_t have = 0;
    int rc = sq_exec(c->db, "BEGIN IMMEDIATE");
    if (rc)
        return rc;
    rc = sq_exec(c->db, "CREATE TABLE IF NOT EXISTS schema_version ("
                        " version INTEGER NOT NULL PRIMARY KEY,"
                        " applied BIGINT NOT NULL)");
    if (rc)
        goto out;
    rc = sq_query_int(c->db, "SELECT coalesce(max(version), 0) FROM schema_version", &have);
    if (rc)
        goto out;
    const int newest = store_migrations[store_migrations_len - 1].version;
    if (have > newest) {
        log_err("store schema is newer than this program have=%" PRId64 " know=%d", have, newest);
        rc = ERR_INVAL;
        goto out;
    }
    /* The portable steps of schema.c, as written: SQLite needs no substitution. */
    for (size_t i = 0; i < store_migrations_len; i++) {
        const struct store_migration *m = &store_migrations[i];
        if (m->version <= have)
            continue;
        rc = sq_exec(c->db, m->sql);
        if (rc)
            goto out;
        sqlite3_stmt *st = NULL;
        int src = sqlite3_prepare_v2(
            c->db, "INSERT INTO schema_version (version, applied) VALUES (?1, ?2)", -1, &st, NULL);
        if (src == SQLITE_OK) {
            sqlite3_bind_int(st, 1, m->version);
            sqlite3_bind_int64(st, 2, (int64_t)time(NULL));
            src = sqlite3_step(st);
            src = src == SQLITE_DONE ? SQLITE_OK : src;
        }
        sqlite3_finalize(st);
        if (src != SQLITE_OK) {
            rc = sq_err(c->db, src, "schema_version");
            goto out;
        }
        log_info("store schema applied version=%d", m->version);
    }
    rc = sq_exec(c->db, "COMMIT");
out:
    if (rc && !sqlite3_get_autocommit(c->db))
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int
sq_wal_hook(void *ctx, sqlite3 *db, const char *name, int frames)
{
    (void)db;
    (void)name;
    struct store_sqlite *q = ctx;
    if (frames < q->wal_frames && q->ck_ready) {
        /* the WAL started over: what was copied of the old one is moot */
        pthread_mutex_lock(&q->ck_lock);
        q->ck_gen++;
        q->ck_copied = 0;
        pthread_mutex_unlock(&q->ck_lock);
    }
    q->wal_frames = frames;
    return SQLITE_OK;
}

/* Takes PATH-lock, so that one store at a time opens the database. */
static int
sq_lock(struct store_sqlite *q)
{
    struct buf name;
    buf_init(&name, 4096);
    int rc = buf_addf(&name, "%s-lock", q->path);
    if (rc)
        goto out;
    q->lock_fd = open(name.data, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (q->lock_fd < 0) {
        log_err("cannot open store lock file error=\"%s\"", strerror(errno));
        rc = ERR_IO;
        goto out;
    }
    if (flock(q->lock_fd, LOCK_EX | LOCK_NB)) {
        log_err("store is in use by another store or process error=\"%s\"", strerror(errno));
        rc = errno == EWOULDBLOCK ? ERR_UNAVAILABLE : ERR_IO;
        goto out;
    }
    /* Create the database readable by its owner only; -wal and -shm follow. */
    int fd = open(q->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    else if (errno != EEXIST) {
        log_err("cannot create store file error=\"%s\"", strerror(errno));
        rc = ERR_IO;
    }
out:
    buf_release(&name);
    return rc;
}

/*
 * Opens our own descriptor of the WAL, for sq_sync. SQLite created it in
 * the migration transaction and keeps it (the same inode) while the writer
 * connection is open: it deletes a WAL only when the last connection closes.
 */
static int
sq_wal_open(struct store_sqlite *q)
{
    struct buf name;
    buf_init(&name, 4096);
    int rc = buf_addf(&name, "%s-wal", q->path);
    if (!rc) {
        q->wal_fd = open(name.data, O_RDWR | O_CLOEXEC);
        if (q->wal_fd < 0) {
            log_err("cannot open store wal error=\"%s\"", strerror(errno));
            rc = ERR_IO;
        }
    }
    buf_release(&name);
    return rc;
}

/* One PASSIVE checkpoint on db; *copied: the WAL frames now in the database. */
static int
sq_checkpoint(sqlite3 *db, int *log_frames, int *copied)
{
    *log_frames = *copied = 0;
    int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, log_frames, copied);
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
        return ERR_UNAVAILABLE; /* the other connection is at it: not now */
    if (rc != SQLITE_OK)
        return sq_err(db, rc, "checkpoint");
    return 0;
}

static void *
sq_checkpointer(void *arg)
{
    struct store_sqlite *q = arg;
    pthread_mutex_lock(&q->ck_lock);
    for (;;) {
        while (!q->ck_kicked && !q->ck_closing)
            pthread_cond_wait(&q->ck_wake, &q->ck_lock);
        if (q->ck_closing)
            break;
        q->ck_kicked = false;
        q->ck_busy = true;
        const unsigned gen = q->ck_gen;
        pthread_mutex_unlock(&q->ck_lock);
        int log_frames, copied;
        int rc = sq_checkpoint(q->ck.db, &log_frames, &copied);
        pthread_mutex_lock(&q->ck_lock);
        q->ck_busy = false;
        if (!rc && gen == q->ck_gen)
            q->ck_copied = copied;
    }
    pthread_mutex_unlock(&q->ck_lock);
    return NULL;
}

/* Opens the checkpointer's connection and starts it (after the migration). */
static int
sq_checkpointer_start(struct store_sqlite *q)
{
    if (pthread_mutex_init(&q->ck_lock, NULL))
        return ERR_NOMEM;
    if (pthread_cond_init(&q->ck_wake, NULL)) {
        pthread_mutex_destroy(&q->ck_lock);
        return ERR_NOMEM;
    }
    q->ck_ready = true;
    int src =
        sqlite3_open_v2(q->path, &q->ck.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (src != SQLITE_OK)
        return sq_err(q->ck.db, src, "open checkpointer");
    sqlite3_extended_result_codes(q->ck.db, 1);
    int rc = sq_exec(q->ck.db, "PRAGMA synchronous = FULL;"
                               "PRAGMA wal_autocheckpoint = 0;"
                               "PRAGMA cache_size = -256");
    if (rc)
        return rc;
    if (pthread_create(&q->ck_thread, NULL, sq_checkpointer, q))
        return ERR_NOMEM;
    pthread_setname_np(q->ck_thread, "store-ckpt");
    q->ck_started = true;
    return 0;
}

static void
sq_checkpointer_stop(struct store_sqlite *q)
{
    if (q->ck_started) {
        pthread_mutex_lock(&q->ck_lock);
        q->ck_closing = true;
        pthread_cond_signal(&q->ck_wake);
        pthread_mutex_unlock(&q->ck_lock);
        pthread_join(q->ck_thread, NULL);
        q->ck_started = false;
    }
    sq_conn_close(&q->ck);
    if (q->ck_ready) {
        pthread_cond_destroy(&q->ck_wake);
        pthread_mutex_destroy(&q->ck_lock);
        q->ck_ready = false;
    }
}

static void sq_close(struct store *s);

static int
sq_open(struct store **out, const char *target)
{
    *out = NULL;
    if (!strcmp(target, ":memory:") || !strncmp(target, "file:", 5)) {
        log_err("store path must be a file name");
        return ERR_INVAL;
    }
    struct store_sqlite *q = calloc(1, sizeof(*q));
    if (!q)
        return ERR_NOMEM;
    q->lock_fd = -1;
    q->wal_fd = -1;
    sqlite3 *db = NULL;
    int src, rc = ERR_NOMEM;
    q->path = strdup(target);
    if (!q->path || asprintf(&q->chunk_dir, "%s.chunks", target) < 0 ||
        asprintf(&q->hold_path, "%s-backup-hold", target) < 0)
        goto out;
    if (pthread_mutex_init(&q->pool_lock, NULL))
        goto out;
    q->pool_lock_ready = true;
    rc = sq_lock(q);
    if (rc)
        goto out;

    src = sqlite3_open_v2(
        q->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, sq_vfs());
    q->w.db = db;
    if (src != SQLITE_OK) {
        rc = sq_err(db, src, "open");
        goto out;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, SQ_BUSY_MS);
    /* Only takes on a new, empty file; older databases keep auto_vacuum off. */
    rc = sq_exec(db, "PRAGMA auto_vacuum = INCREMENTAL");
    if (rc)
        goto out;
    rc = sq_pragma_expect(db, "PRAGMA journal_mode = WAL", "wal");
    if (rc)
        goto out;
    rc = sq_pragma_expect(db, "PRAGMA secure_delete = ON", "1");
    if (rc)
        goto out;
    rc = sq_exec(db, "PRAGMA synchronous = FULL;"
                     "PRAGMA wal_autocheckpoint = 0;"
                     "PRAGMA cache_size = -8192;"
                     "PRAGMA temp_store = MEMORY;"
                     "PRAGMA foreign_keys = OFF;"
                     "PRAGMA journal_size_limit = " SQ_WAL_LIMIT_BYTES);
    if (rc)
        goto out;
    q->w_sync = 2;
    /* Replaces the automatic checkpoint: the writer checkpoints when idle. */
    sqlite3_wal_hook(db, sq_wal_hook, q);
    rc = sq_migrate(&q->w);
    if (rc)
        goto out;
    int64_t av = 0;
    rc = sq_query_int(db, "PRAGMA auto_vacuum", &av);
    if (rc)
        goto out;
    q->incremental = av == 2;
    rc = sq_wal_open(q);
    if (rc)
        goto out;
    rc = sq_checkpointer_start(q);
    if (rc)
        goto out;
    *out = &q->base;
    q = NULL;
out:
    if (q)
        sq_close(&q->base);
    return rc;
}

static void
sq_close(struct store *s)
{
    struct store_sqlite *q = sq(s);
    if (!q)
        return;
    sq_checkpointer_stop(q);
    while (q->pool) {
        struct sq_conn *c = q->pool;
        q->pool = c->next;
        sq_conn_close(c);
        free(c);
    }
    if (q->w.db) {
        int log_frames = 0, ckpt = 0;
        int rc = sqlite3_wal_checkpoint_v2(q->w.db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log_frames,
                                           &ckpt);
        if (rc != SQLITE_OK)
            (void)sq_err(q->w.db, rc, "checkpoint truncate");
    }
    sq_conn_close(&q->w);
    for (unsigned i = 0; i < q->nfiles; i++)
        close(q->files[i].fd); /* of objects never committed: swept at the next start */
    free(q->gone);
    free(q->chunk_dir);
    free(q->hold_path);
    if (q->wal_fd >= 0)
        close(q->wal_fd);
    if (q->lock_fd >= 0)
        close(q->lock_fd);
    if (q->pool_lock_ready)
        pthread_mutex_destroy(&q->pool_lock);
    free(q->path);
    free(q);
}

/* ------------------------------------------------------------------------ */
/* Chunk files                                                              */

/*
 * The name of the chunk file of (account, version) into out: false when
 * the account id has a character that has no place in a file name (such
 * an account's chunks stay in the database).
 */
static bool
sq_file_name(char out[SQ_FILE_NAME_MAX], const char *account, int64_t version)
{
    size_t n = strlen(account);
    if (n == 0 || n >= STORE_ID_MAX || account[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = account[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    snprintf(out, SQ_FILE_NAME_MAX, "%s.%016" PRIx64, account, (uint64_t)version);
    return true;
}

/* Parses a chunk file's name back; false for anything else. */
static bool
sq_file_parse(const char *name, char account[STORE_ID_MAX], int64_t *version)
{
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name || (size_t)(dot - name) >= STORE_ID_MAX || strlen(dot + 1) != 16)
        return false;
    uint64_t v = 0;
    for (const char *p = dot + 1; *p; p++) {
        int d = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : -1;
        if (d < 0)
            return false;
        v = v << 4 | (uint64_t)d;
    }
    memcpy(account, name, (size_t)(dot - name));
    account[dot - name] = 0;
    char again[SQ_FILE_NAME_MAX];
    *version = (int64_t)v;
    return sq_file_name(again, account, *version) && !strcmp(again, name);
}

/* Opens (or makes) the chunk file dir/name; *made if it did not exist. */
static int
sq_file_open(struct store_sqlite *q, const char *name, int flags, bool *made, int *fd)
{
    struct buf path;
    buf_init(&path, 4096);
    int rc = buf_addf(&path, "%s/%s", q->chunk_dir, name);
    if (rc)
        goto out;
    *fd = -1;
    if (made) {
        *made = false;
        *fd = open(path.data, flags | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (*fd >= 0)
            *made = true;
        else if (errno != EEXIST)
            goto fail;
    }
    if (*fd < 0)
        *fd = open(path.data, flags | O_CLOEXEC);
    if (*fd >= 0)
        goto out;
fail:
    rc = errno == ENOENT ? ERR_NOT_FOUND : ERR_IO;
    if (rc == ERR_IO)
        log_err("cannot open chunk file error=\"%s\"", strerror(errno));
out:
    buf_release(&path);
    return rc;
}

/* fsync of a directory. */
static int
sq_dir_sync(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd)) {
        log_err("cannot sync directory error=\"%s\"", strerror(errno));
        if (fd >= 0)
            close(fd);
        return ERR_IO;
    }
    close(fd);
    return 0;
}

/*
 * Makes every chunk file written since the last call durable (and the
 * directory, if a file was made), then closes them. The writer calls it
 * before committing a transaction that stores an object. A failed sync
 * leaves the disk in doubt (the kernel may have dropped the pages it could
 * not write and will not say so again): like a failed sync of the WAL, it
 * makes the store refuse every later commit.
 */
static int
sq_files_sync(struct store_sqlite *q)
{
    int rc = q->files_failed;
    for (unsigned i = 0; i < q->nfiles; i++) {
        if (!rc && fdatasync(q->files[i].fd)) {
            log_err("cannot sync chunk file error=\"%s\"", strerror(errno));
            rc = ERR_IO;
        }
        close(q->files[i].fd);
    }
    q->nfiles = 0;
    if (!rc && q->dir_dirty) {
        rc = sq_dir_sync(q->chunk_dir);
        if (!rc)
            q->dir_dirty = false;
    }
    if (rc && !q->files_failed) {
        log_err("chunk file sync failed, refusing further commits");
        q->files_failed = rc;
    }
    return rc;
}

/* Makes PATH.chunks, and its entry durable, the first time it is needed. */
static int
sq_chunk_dir_make(struct store_sqlite *q)
{
    if (q->chunk_dir_made)
        return 0;
    if (mkdir(q->chunk_dir, 0700) && errno != EEXIST) {
        log_err("cannot make chunk directory error=\"%s\"", strerror(errno));
        return ERR_IO;
    }
    struct buf parent;
    buf_init(&parent, 4096);
    int rc = buf_adds(&parent, q->chunk_dir);
    if (!rc) {
        char *slash = strrchr(parent.data, '/');
        if (slash == parent.data)
            slash[1] = 0;
        else if (slash)
            *slash = 0;
        rc = sq_dir_sync(slash ? parent.data : ".");
    }
    buf_release(&parent);
    if (!rc)
        q->chunk_dir_made = true;
    return rc;
}

/* Appends a chunk to the file of (account, version): *off where it starts. */
static int
sq_file_append(struct store_sqlite *q, const char *name, const uint8_t *p, size_t n, int64_t *off)
{
    int rc = sq_chunk_dir_make(q);
    if (rc)
        return rc;
    struct sq_file *f = NULL;
    for (unsigned i = 0; i < q->nfiles && !f; i++)
        if (!strcmp(q->files[i].name, name))
            f = &q->files[i];
    if (!f) {
        if (q->nfiles == SQ_FILES_OPEN_MAX && (rc = sq_files_sync(q)))
            return rc;
        bool made = false;
        int fd = -1;
        rc = sq_file_open(q, name, O_WRONLY, &made, &fd);
        if (rc)
            return rc;
        f = &q->files[q->nfiles++];
        snprintf(f->name, sizeof(f->name), "%s", name);
        f->fd = fd;
        q->dir_dirty |= made;
    }
    off_t end = lseek(f->fd, 0, SEEK_END);
    if (end < 0)
        goto io;
    for (size_t done = 0; done < n;) {
        ssize_t w = pwrite(f->fd, p + done, n - done, end + (off_t)done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto io;
        done += (size_t)w;
    }
    /* start writing it out now, so that the fdatasync before the object's
     * commit finds little left to do (a hint: errors show there) */
    (void)sync_file_range(f->fd, end, (off_t)n, SYNC_FILE_RANGE_WRITE);
    *off = (int64_t)end;
    return 0;
io:
    log_err("cannot write chunk file error=\"%s\"", strerror(errno));
    return ERR_IO;
}

/* Reads len bytes at off of the open chunk file fd, appended to out. */
static int
sq_file_pread(int fd, int64_t off, int64_t len, struct buf *out)
{
    if (off < 0 || len < 0)
        return ERR_CORRUPT;
    int rc = buf_grow(out, (size_t)len);
    if (rc)
        return rc;
    for (size_t done = 0; done < (size_t)len;) {
        ssize_t r = pread(fd, out->data + out->len + done, (size_t)len - done, off + (off_t)done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? ERR_IO : ERR_CORRUPT; /* a short file: not what was written */
            break;
        }
        done += (size_t)r;
    }
    if (!rc) {
        out->len += (size_t)len;
        out->data[out->len] = 0;
    }
    return rc;
}

/* Reads len bytes at off of the chunk file of (account, version), appended to out. */
static int
sq_file_read(struct store_sqlite *q, const char *account, int64_t version, int64_t off, int64_t len,
             struct buf *out)
{
    char name[SQ_FILE_NAME_MAX];
    if (!sq_file_name(name, account, version))
        return ERR_CORRUPT;
    int fd = -1;
    int rc = sq_file_open(q, name, O_RDONLY, NULL, &fd);
    if (rc)
        return rc == ERR_NOT_FOUND ? ERR_CORRUPT : rc;
    rc = sq_file_pread(fd, off, len, out);
    close(fd);
    return rc;
}

/* Whether any chunk row of (account, version) is left; < 0 on error. */
static int
sq_chunks_any(struct sq_conn *w, const char *account, int64_t version)
{
    sqlite3_stmt *st = NULL;
    int rc = sq_stmt(w, SQ_CHUNKS_ANY, &st);
    if (rc)
        return rc;
    sq_bind_text(st, 1, account);
    sqlite3_bind_int64(st, 2, version);
    int src = sqlite3_step(st);
    sqlite3_reset(st);
    if (src == SQLITE_ROW)
        return 1;
    return src == SQLITE_DONE ? 0 : sq_err(w->db, src, "chunks_any");
}

/* Unlinks the chunk file of (account, version) if no row refers to it: 1 if
 * it did (or the file was already gone), 0 if rows are left, < 0 on error. */
static int
sq_file_drop(struct store_sqlite *q, const char *account, int64_t version)
{
    char name[SQ_FILE_NAME_MAX];
    if (!sq_file_name(name, account, version))
        return 0;
    int any = sq_chunks_any(&q->w, account, version);
    if (any)
        return any < 0 ? any : 0;
    struct buf path;
    buf_init(&path, 4096);
    int rc = buf_addf(&path, "%s/%s", q->chunk_dir, name);
    if (!rc && unlink(path.data) && errno != ENOENT) {
        log_err("cannot unlink chunk file error=\"%s\"", strerror(errno));
        rc = ERR_IO;
    }
    buf_release(&path);
    return rc ? rc : 1;
}

/* Whether an online backup holds the chunk files (PATH-backup-hold exists). */
static bool
sq_held_for_backup(struct store_sqlite *q)
{
    struct stat st;
    bool held = stat(q->hold_path, &st) == 0;
    if (held && !q->hold_noted)
        log_info("event=chunk_files_held hold=\"%s\"", q->hold_path);
    q->hold_noted = held;
    return held;
}

/*
 * Between groups: the files of versions whose rows were deleted go, once
 * the deletions are durable (an fdatasync of the WAL covers every commit
 * before it). A version whose rows came back (a rolled back transaction)
 * keeps its file. On an error the rest wait for the next start's sweep.
 * While a backup holds the files, they wait, noted, for a round after it.
 */
static void
sq_files_gone(struct store_sqlite *q)
{
    if (!q->ngone || sq_held_for_backup(q))
        return;
    if (fdatasync(q->wal_fd)) {
        log_err("cannot sync store wal error=\"%s\"", strerror(errno));
        return; /* kept for the next round */
    }
    for (size_t i = 0; i < q->ngone; i++)
        (void)sq_file_drop(q, q->gone[i].account, q->gone[i].version);
    q->ngone = 0;
}

/* Notes that the rows of (account, version) in a chunk file were deleted. */
static int
sq_gone_add(struct store_sqlite *q, const char *account, int64_t version)
{
    if (q->ngone && q->gone[q->ngone - 1].version == version &&
        !strcmp(q->gone[q->ngone - 1].account, account))
        return 0;
    if (q->ngone == q->gone_cap) {
        size_t cap = q->gone_cap ? q->gone_cap * 2 : 16;
        struct sq_gone *g = realloc(q->gone, cap * sizeof(*g));
        if (!g)
            return ERR_NOMEM;
        q->gone = g;
        q->gone_cap = cap;
    }
    struct sq_gone *g = &q->gone[q->ngone++];
    snprintf(g->account, sizeof(g->account), "%s", account);
    g->version = version;
    return 0;
}

/* At start: removes the chunk files no row refers to (after a crash). */
static int
sq_files_sweep(struct store_sqlite *q, uint64_t *removed)
{
    if (sq_held_for_backup(q))
        return 0; /* the next start sweeps */
    DIR *d = opendir(q->chunk_dir);
    if (!d)
        return errno == ENOENT ? 0 : ERR_IO;
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        char account[STORE_ID_MAX];
        int64_t version;
        if (!sq_file_parse(e->d_name, account, &version))
            continue;
        int dropped = sq_file_drop(q, account, version);
        if (dropped < 0)
            rc = dropped;
        else
            *removed += (uint64_t)dropped;
    }
    closedir(d);
    return rc;
}

static int
sq_scan(struct store *s, int64_t *max_seq, uint64_t *objects, uint64_t *bytes)
{
    sqlite3 *db = sq(s)->w.db;
    sqlite3_stmt *st = NULL;
    const char *sql = "SELECT coalesce(max(seq), 0),"
                      " coalesce(sum(CASE WHEN deleted = 0 THEN 1 ELSE 0 END), 0),"
                      " coalesce(sum(CASE WHEN deleted = 0 THEN size ELSE 0 END), 0)"
                      " FROM objects";
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        *max_seq = sqlite3_column_int64(st, 0);
        *objects = (uint64_t)sqlite3_column_int64(st, 1);
        *bytes = (uint64_t)sqlite3_column_int64(st, 2);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : sq_err(db, rc, "scan");
}

static int
sq_orphans_delete(struct store *s, uint64_t *deleted)
{
    sqlite3 *db = sq(s)->w.db;
    *deleted = 0;
    int rc = sq_exec(db, "DELETE FROM chunks WHERE (account, version) NOT IN"
                         " (SELECT account, version FROM objects WHERE deleted = 0)");
    if (rc)
        return rc;
    *deleted = (uint64_t)sqlite3_changes(db);
    /* that DELETE ran with synchronous=FULL: durable, its files may go */
    uint64_t files = 0;
    rc = sq_files_sweep(sq(s), &files);
    if (files)
        log_info("chunk files without rows removed count=%" PRIu64, files);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Reads                                                                    */

/*
 * Borrows a reader and the statement id on it. The caller binds, steps,
 * and ends with sq_read_end, which resets the statement (ending its read
 * transaction) and returns the reader.
 */
static int
sq_read_begin(struct store *s, enum sq_stmt id, struct sq_conn **c, sqlite3_stmt **st)
{
    int rc = sq_reader_get(sq(s), c);
    if (rc)
        return rc;
    rc = sq_stmt(*c, id, st);
    if (rc) {
        sq_reader_put(sq(s), *c);
        return rc;
    }
    return 0;
}

static void
sq_read_end(struct store *s, struct sq_conn *c, sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sq_reader_put(sq(s), c);
}

/* Steps a read expecting at most one row: 1 for a row, 0 for none, or an error. */
static int
sq_step_one(struct sq_conn *c, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    return sq_err(c->db, rc, what);
}

static int
sq_meta_get(struct store *s, const char *key, struct buf *out)
{
    struct sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sq_read_begin(s, SQ_META_GET, &c, &st);
    if (rc)
        return rc;
    sq_bind_text(st, 1, key);
    rc = sq_step_one(c, st, "meta_get");
    if (rc == 1)
        rc = sq_col_buf(st, 0, out);
    else if (rc == 0)
        rc = ERR_NOT_FOUND;
    sq_read_end(s, c, st);
    return rc;
}

static int
sq_account_get(struct store *s, const char *id, struct store_account *out)
{
    struct sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sq_read_begin(s, SQ_ACCOUNT_GET, &c, &st);
    if (rc)
        return rc;
    sq_bind_text(st, 1, id);
    rc = sq_step_one(c, st, "account_get");
    if (rc == 1) {
        memset(out, 0, sizeof(*out));
        memcpy(out->id, id, strlen(id) + 1);
        rc = sq_col_text(st, 0, out->country, sizeof(out->country));
        if (!rc)
            rc = sq_col_text(st, 1, out->pwhash, sizeof(out->pwhash));
        if (!rc)
            rc = sq_col_blob(st, 2, out->wrapped_key, sizeof(out->wrapped_key), &out->wrapped_len);
        out->created = sqlite3_column_int64(st, 3);
    } else if (rc == 0) {
        rc = ERR_NOT_FOUND;
    }
    sq_read_end(s, c, st);
    return rc;
}

static int
sq_session_get(struct store *s, const uint8_t token_hash[STORE_HASH_LEN], struct store_session *out)
{
    struct sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sq_read_begin(s, SQ_SESSION_GET, &c, &st);
    if (rc)
        return rc;
    sq_bind_blob(st, 1, token_hash, STORE_HASH_LEN);
    rc = sq_step_one(c, st, "session_get");
    if (rc == 1) {
        memset(out, 0, sizeof(*out));
        memcpy(out->token_hash, token_hash, STORE_HASH_LEN);
        rc = sq_col_text(st, 0, out->account, sizeof(out->account));
        out->created = sqlite3_column_int64(st, 1);
        out->expires = sqlite3_column_int64(st, 2);
    } else if (rc == 0) {
        rc = ERR_NOT_FOUND;
    }
    sq_read_end(s, c, st);
    return rc;
}

static int
sq_svckey_get(struct store *s, const char *account, const char *service, uint8_t *out, size_t cap,
              size_t *outlen)
{
    struct sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sq_read_begin(s, SQ_SVCKEY_GET, &c, &st);
    if (rc)
        return rc;
    sq_bind_text(st, 1, account);
    sq_bind_text(st, 2, service);
    rc = sq_step_one(c, st, "svckey_get");
    if (rc == 1) {
        const void *p = sqlite3_column_blob(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        rc = 0;
        if (n > cap)
            rc = ERR_LIMIT;
        else if (n)
            memcpy(out, p, n);
        *outlen = rc ? 0 : n;
    } else if (rc == 0) {
        rc = ERR_NOT_FOUND;
    }
    sq_read_end(s, c, st);
    return rc;
}

/*
 * Fills out from a row of SQ_OBJECT_GET, SQ_FEED or SQ_FEED_DATA (same first columns); account
 * and service come from the query.
 */
static int
sq_object_row(sqlite3_stmt *st, const char *account, const char *service, struct store_object *out)
{
    size_t n;
    memset(out, 0, offsetof(struct store_object, name_sealed));
    memcpy(out->account, account, strlen(account) + 1);
    memcpy(out->service, service, strlen(service) + 1);
    int rc = sq_col_blob(st, 0, out->name_hash, sizeof(out->name_hash), &n);
    if (rc || n != STORE_HASH_LEN)
        return ERR_CORRUPT;
    rc = sq_col_blob(st, 1, out->name_sealed, sizeof(out->name_sealed), &out->name_sealed_len);
    if (rc)
        return rc;
    out->version = sqlite3_column_int64(st, 2);
    out->seq = sqlite3_column_int64(st, 3);
    out->size = (uint64_t)sqlite3_column_int64(st, 4);
    out->chunks = (uint32_t)sqlite3_column_int64(st, 5);
    out->cipher = (int32_t)sqlite3_column_int64(st, 6);
    out->mtime = sqlite3_column_int64(st, 7);
    out->deleted = sqlite3_column_int64(st, 8) != 0;
    out->chunk0 = SLICE(NULL, 0);
    return 0;
}

static int
sq_object_get(struct store *s, const char *account, const char *service,
              const uint8_t name_hash[STORE_HASH_LEN], struct store_object *out)
{
    struct sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sq_read_begin(s, SQ_OBJECT_GET, &c, &st);
    if (rc)
        return rc;
    sq_bind_text(st, 1, account);
    sq_bind_text(st, 2, service);
    sq_bind_blob(st, 3, name_hash, STORE_HASH_LEN);
    rc = sq_step_one(c, st, "object_get");
    if (rc == 1) {
        if (sqlite3_column_int64(st, 8))
            rc = ERR_NOT_FOUND;
        else
            rc = sq_object_row(st, account, service, out);
    } else if (rc == 0) {
        rc = ERR_NOT_FOUND;
    }
    sq_read_end(s, c, st);
    return rc;
}

static int
sq_chunk_get(struct store *s, const char *account, int64_t version, uint32_t idx, struct buf *out)
{
    struct sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sq_read_begin(s, SQ_CHUNK_GET, &c, &st);
    if (rc)
        return rc;
    sq_bind_text(st, 1, account);
    sqlite3_bind_int64(st, 2, version);
    sqlite3_bind_int64(st, 3, idx);
    rc = sq_step_one(c, st, "chunk_get");
    int64_t off = -1, len = 0;
    if (rc == 1 && sqlite3_column_type(st, 1) != SQLITE_NULL) {
        off = sqlite3_column_int64(st, 1);
        len = sqlite3_column_int64(st, 2);
        rc = 0;
    } else if (rc == 1) {
        rc = sq_col_buf(st, 0, out);
    } else if (rc == 0) {
        rc = ERR_NOT_FOUND;
    }
    sq_read_end(s, c, st);
    if (!rc && off >= 0)
        rc = sq_file_read(sq(s), account, version, off, len, out);
    return rc;
}

/*
 * A version's chunks held for a read (store_chunks_open): where each one is
 * in the version's chunk file, and the file, open. A replace or delete of
 * the version unlinks the file, but the open descriptor keeps its bytes.
 */
struct sq_held {
    int fd;       /* -1: no chunk of the version is in a file */
    int64_t *off; /* per chunk: its offset in the file, -1 if it is in its row */
    int64_t *len;
};

static void
sq_chunks_release(struct store *s, void *held)
{
    (void)s;
    struct sq_held *h = held;
    if (!h)
        return;
    if (h->fd >= 0)
        close(h->fd);
    free(h->off);
    free(h->len);
    free(h);
}

static int
sq_chunks_hold(struct store *s, const char *account, int64_t version, uint32_t n, void **held)
{
    *held = NULL;
    if (n > SQ_HOLD_CHUNKS_MAX)
        return 0; /* looked up one by one */
    struct sq_held *h = calloc(1, sizeof(*h));
    if (!h)
        return ERR_NOMEM;
    h->fd = -1;
    h->off = malloc(n * sizeof(*h->off));
    h->len = calloc(n, sizeof(*h->len));
    int rc = h->off && h->len ? 0 : ERR_NOMEM;
    for (uint32_t i = 0; !rc && i < n; i++)
        h->off[i] = -1;
    struct sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    size_t rows = 0, files = 0;
    if (!rc)
        rc = sq_read_begin(s, SQ_CHUNKS_LIST, &c, &st);
    if (!rc) {
        sq_bind_text(st, 1, account);
        sqlite3_bind_int64(st, 2, version);
        while ((rc = sq_step_one(c, st, "chunks_list")) == 1) {
            int64_t idx = sqlite3_column_int64(st, 0);
            if (idx < 0 || idx >= n) {
                rc = ERR_CORRUPT;
                break;
            }
            rows++;
            if (sqlite3_column_type(st, 1) != SQLITE_NULL) {
                h->off[idx] = sqlite3_column_int64(st, 1);
                h->len[idx] = sqlite3_column_int64(st, 2);
                files++;
            }
        }
        sq_read_end(s, c, st);
    }
    if (!rc && rows == 0)
        rc = ERR_NOT_FOUND;
    char name[SQ_FILE_NAME_MAX];
    if (!rc && files)
        rc = sq_file_name(name, account, version)
                 ? sq_file_open(sq(s), name, O_RDONLY, NULL, &h->fd)
                 : ERR_CORRUPT;
    /* ERR_NOT_FOUND from the open: unlinked since the rows were read, gone */
    if (rc) {
        sq_chunks_release(s, h);
        return rc;
    }
    *held = h;
    return 0;
}

static int
sq_chunks_held_read(struct store *s, void *held, uint32_t idx, struct buf *out)
{
    (void)s;
    struct sq_held *h = held;
    if (h->off[idx] < 0)
        return 1;
    return sq_file_pread(h->fd, h->off[idx], h->len[idx], out);
}

static int
sq_feed(struct store *s, const char *account, const char *service, int64_t since, size_t limit,
        bool data, store_feed_cb cb, void *ctx)
{
    struct sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    struct store_object *obj = malloc(sizeof(*obj));
    if (!obj)
        return ERR_NOMEM;
    int rc = sq_read_begin(s, data ? SQ_FEED_DATA : SQ_FEED, &c, &st);
    if (rc) {
        free(obj);
        return rc;
    }
    sq_bind_text(st, 1, account);
    sq_bind_text(st, 2, service);
    sqlite3_bind_int64(st, 3, since);
    sqlite3_bind_int64(st, 4, limit > INT64_MAX ? INT64_MAX : (int64_t)limit);
    if (data)
        sqlite3_bind_int64(st, 5, STORE_FEED_DATA_MAX);
    for (;;) {
        rc = sq_step_one(c, st, "feed");
        if (rc <= 0)
            break;
        rc = sq_object_row(st, account, service, obj);
        if (rc)
            break;
        if (data && sqlite3_column_type(st, 9) == SQLITE_BLOB)
            obj->chunk0 = SLICE(sqlite3_column_blob(st, 9), (size_t)sqlite3_column_bytes(st, 9));
        rc = cb(ctx, obj);
        if (rc)
            break;
    }
    sq_read_end(s, c, st);
    free(obj);
    return rc;
}

static int
sq_rec_get(struct store *s, const char *account, const char *kind, struct slice key,
           struct buf *out)
{
    struct sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sq_read_begin(s, SQ_REC_GET, &c, &st);
    if (rc)
        return rc;
    sq_bind_text(st, 1, account);
    sq_bind_text(st, 2, kind);
    sq_bind_blob(st, 3, key.p, key.len);
    rc = sq_step_one(c, st, "rec_get");
    if (rc == 1)
        rc = buf_add(out, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
    else if (rc == 0)
        rc = ERR_NOT_FOUND;
    sq_read_end(s, c, st);
    return rc;
}

static int
sq_rec_list(struct store *s, const char *account, const char *kind, store_rec_cb cb, void *ctx)
{
    struct sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sq_read_begin(s, SQ_REC_LIST, &c, &st);
    if (rc)
        return rc;
    sq_bind_text(st, 1, account);
    sq_bind_text(st, 2, kind);
    for (;;) {
        rc = sq_step_one(c, st, "rec_list");
        if (rc <= 0)
            break;
        struct slice key = SLICE(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
        struct slice val = SLICE(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1));
        rc = cb(ctx, key, val);
        if (rc)
            break;
    }
    sq_read_end(s, c, st);
    return rc;
}

static int
sq_sessions_of(struct store *s, const char *account, store_session_cb cb, void *ctx)
{
    struct sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    struct store_session se;
    int rc = sq_read_begin(s, SQ_SESSIONS_OF, &c, &st);
    if (rc)
        return rc;
    sq_bind_text(st, 1, account);
    for (;;) {
        rc = sq_step_one(c, st, "sessions_of");
        if (rc <= 0)
            break;
        memset(&se, 0, sizeof(se));
        if (sqlite3_column_bytes(st, 0) != STORE_HASH_LEN) {
            rc = ERR_CORRUPT;
            break;
        }
        memcpy(se.token_hash, sqlite3_column_blob(st, 0), STORE_HASH_LEN);
        snprintf(se.account, sizeof(se.account), "%s", account);
        se.created = sqlite3_column_int64(st, 1);
        se.expires = sqlite3_column_int64(st, 2);
        rc = cb(ctx, &se);
        if (rc)
            break;
    }
    sq_read_end(s, c, st);
    return rc;
}

static int
sq_rec_find(struct store *s, const char *kind, struct slice key, char account_out[STORE_ID_MAX])
{
    struct sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sq_read_begin(s, SQ_REC_FIND, &c, &st);
    if (rc)
        return rc;
    sq_bind_text(st, 1, kind);
    sq_bind_blob(st, 2, key.p, key.len);
    rc = sq_step_one(c, st, "rec_find");
    if (rc == 1)
        rc = sq_col_text(st, 0, account_out, STORE_ID_MAX);
    else if (rc == 0)
        rc = ERR_NOT_FOUND;
    sq_read_end(s, c, st);
    return rc;
}

/* Consent, retention, erasure: reads (version 2) ---------------------------- */

/* Fills a consent from columns first.. of a row (granted, at, policy, generation[, pending]). */
static int
sq_consent_row(sqlite3_stmt *st, int first, bool pending, struct store_consent *out)
{
    out->granted = sqlite3_column_int64(st, first) != 0;
    out->at = sqlite3_column_int64(st, first + 1);
    int rc = sq_col_text(st, first + 2, out->policy, sizeof(out->policy));
    out->generation = sqlite3_column_int64(st, first + 3);
    out->purge_pending = pending && sqlite3_column_int64(st, first + 4) != 0;
    return rc;
}

static int
sq_consent_get(struct store *s, const char *account, const char *service, struct store_consent *out)
{
    struct sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sq_read_begin(s, SQ_CONSENT_GET, &c, &st);
    if (rc)
        return rc;
    sq_bind_text(st, 1, account);
    sq_bind_text(st, 2, service);
    rc = sq_step_one(c, st, "consent_get");
    if (rc == 1) {
        memset(out, 0, sizeof(*out));
        memcpy(out->account, account, strlen(account) + 1);
        memcpy(out->service, service, strlen(service) + 1);
        rc = sq_consent_row(st, 0, true, out);
    } else if (rc == 0) {
        rc = ERR_NOT_FOUND;
    }
    sq_read_end(s, c, st);
    return rc;
}

/*
 * Runs a consent listing: id's rows hold (account?) service granted at
 * policy generation (pending?); with_account: the first column is the
 * account, else it is the one bound as ?1.
 */
static int
sq_consent_rows(struct store *s, enum sq_stmt id, const char *account, size_t limit,
                store_consent_cb cb, void *ctx)
{
    struct sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    struct store_consent row;
    int rc = sq_read_begin(s, id, &c, &st);
    if (rc)
        return rc;
    if (account)
        sq_bind_text(st, 1, account);
    else
        sqlite3_bind_int64(st, 1, limit > INT64_MAX ? INT64_MAX : (int64_t)limit);
    for (;;) {
        rc = sq_step_one(c, st, sq_sql[id]);
        if (rc <= 0)
            break;
        rc = 0;
        memset(&row, 0, sizeof(row));
        int col = 0;
        if (account)
            memcpy(row.account, account, strlen(account) + 1);
        else
            rc = sq_col_text(st, col++, row.account, sizeof(row.account));
        if (!rc)
            rc = sq_col_text(st, col++, row.service, sizeof(row.service));
        if (!rc)
            rc = sq_consent_row(st, col, id != SQ_CONSENT_LOG, &row);
        if (!rc)
            rc = cb(ctx, &row);
        if (rc)
            break;
    }
    sq_read_end(s, c, st);
    return rc;
}

static int
sq_consents(struct store *s, const char *account, store_consent_cb cb, void *ctx)
{
    return sq_consent_rows(s, SQ_CONSENTS, account, 0, cb, ctx);
}

static int
sq_consent_log(struct store *s, const char *account, store_consent_cb cb, void *ctx)
{
    return sq_consent_rows(s, SQ_CONSENT_LOG, account, 0, cb, ctx);
}

static int
sq_consents_pending(struct store *s, size_t limit, store_consent_cb cb, void *ctx)
{
    return sq_consent_rows(s, SQ_CONSENTS_PENDING, NULL, limit, cb, ctx);
}

static int
sq_usage(struct store *s, const char *account, const char *service, uint64_t *objects,
         uint64_t *bytes)
{
    struct sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sq_read_begin(s, service ? SQ_USAGE : SQ_USAGE_ALL, &c, &st);
    if (rc)
        return rc;
    sq_bind_text(st, 1, account);
    if (service)
        sq_bind_text(st, 2, service);
    rc = sq_step_one(c, st, "usage");
    if (rc == 1) {
        *objects = (uint64_t)sqlite3_column_int64(st, 0);
        *bytes = (uint64_t)sqlite3_column_int64(st, 1);
        rc = 0;
    } else if (rc == 0) {
        rc = ERR_INTERNAL;
    }
    sq_read_end(s, c, st);
    return rc;
}

static int
sq_activity_get(struct store *s, const char *account, int64_t *at)
{
    struct sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sq_read_begin(s, SQ_ACTIVITY_GET, &c, &st);
    if (rc)
        return rc;
    sq_bind_text(st, 1, account);
    rc = sq_step_one(c, st, "activity_get");
    if (rc == 1) {
        *at = sqlite3_column_int64(st, 0);
        rc = 0;
    } else if (rc == 0) {
        rc = ERR_NOT_FOUND;
    }
    sq_read_end(s, c, st);
    return rc;
}

/* Runs a listing of (account TEXT, number BIGINT) rows; ?1.. are bound by the caller's values. */
static int
sq_pairs(struct store *s, enum sq_stmt id, const int64_t *binds, int nbinds,
         int (*row)(void *ctx, const char *account, int64_t n), void *ctx)
{
    struct sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    char account[STORE_ID_MAX];
    int rc = sq_read_begin(s, id, &c, &st);
    if (rc)
        return rc;
    for (int i = 0; i < nbinds; i++)
        sqlite3_bind_int64(st, i + 1, binds[i]);
    for (;;) {
        rc = sq_step_one(c, st, sq_sql[id]);
        if (rc <= 0)
            break;
        rc = sq_col_text(st, 0, account, sizeof(account));
        if (!rc)
            rc = row(ctx, account, sqlite3_column_int64(st, 1));
        if (rc)
            break;
    }
    sq_read_end(s, c, st);
    return rc;
}

static int64_t
sq_limit(size_t limit)
{
    return limit > INT64_MAX ? INT64_MAX : (int64_t)limit;
}

static int
sq_accounts_idle(struct store *s, int64_t before, size_t limit, store_account_cb cb, void *ctx)
{
    const int64_t b[2] = {before, sq_limit(limit)};
    return sq_pairs(s, SQ_ACCOUNTS_IDLE, b, 2, cb, ctx);
}

static int
sq_purges(struct store *s, size_t limit, store_purge_cb cb, void *ctx)
{
    const int64_t b[1] = {sq_limit(limit)};
    return sq_pairs(s, SQ_PURGES, b, 1, cb, ctx);
}

static int
sq_erasures(struct store *s, size_t limit, store_account_cb cb, void *ctx)
{
    const int64_t b[1] = {sq_limit(limit)};
    return sq_pairs(s, SQ_ERASURES, b, 1, cb, ctx);
}

/* ------------------------------------------------------------------------ */
/* The audit log                                                            */

/* The row id of node (level, index): index * 64 + level; -1 if out of range. */
static int64_t
sq_node_id(uint32_t level, uint64_t index)
{
    if (level > 63 || index > (uint64_t)INT64_MAX / 64)
        return -1;
    return (int64_t)(index * 64 + level);
}

static int
sq_audit_scan(struct store *s, uint64_t *size)
{
    int64_t n = 0;
    int rc = sq_query_int(sq(s)->w.db, "SELECT coalesce(max(idx) + 1, 0) FROM audit_leaves", &n);
    if (!rc && n < 0)
        rc = ERR_CORRUPT;
    *size = rc ? 0 : (uint64_t)n;
    return rc;
}

/* Runs a leaf query (columns idx, leaf, tag) to its end, calling cb per row. */
static int
sq_audit_rows(struct sq_conn *c, sqlite3_stmt *st, store_audit_cb cb, void *ctx)
{
    int rc;
    for (;;) {
        rc = sq_step_one(c, st, "audit_leaves");
        if (rc <= 0)
            break;
        const void *p = sqlite3_column_blob(st, 1);
        size_t n = (size_t)sqlite3_column_bytes(st, 1);
        int64_t idx = sqlite3_column_int64(st, 0);
        if (idx < 0 || (n && !p)) {
            rc = idx < 0 ? ERR_CORRUPT : ERR_NOMEM;
            break;
        }
        const uint8_t *tag = sqlite3_column_blob(st, 2);
        if (tag && sqlite3_column_bytes(st, 2) != STORE_HASH_LEN) {
            rc = ERR_CORRUPT;
            break;
        }
        rc = cb(ctx, (uint64_t)idx, SLICE(p, n), tag);
        if (rc)
            break;
    }
    return rc;
}

static int
sq_audit_leaves(struct store *s, uint64_t start, uint64_t end, store_audit_cb cb, void *ctx)
{
    struct sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    if (end > INT64_MAX)
        end = INT64_MAX;
    int rc = sq_read_begin(s, SQ_AUDIT_LEAVES, &c, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, (int64_t)start);
    sqlite3_bind_int64(st, 2, (int64_t)end);
    rc = sq_audit_rows(c, st, cb, ctx);
    sq_read_end(s, c, st);
    return rc;
}

static int
sq_audit_find(struct store *s, int64_t epoch, const uint8_t tag[STORE_HASH_LEN], uint64_t start,
              size_t limit, store_audit_cb cb, void *ctx)
{
    struct sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    if (start > INT64_MAX)
        return 0;
    int rc = sq_read_begin(s, SQ_AUDIT_FIND, &c, &st);
    if (rc)
        return rc;
    sq_bind_blob(st, 1, tag, STORE_HASH_LEN);
    sqlite3_bind_int64(st, 2, (int64_t)start);
    sqlite3_bind_int64(st, 3, limit > INT64_MAX ? INT64_MAX : (int64_t)limit);
    sqlite3_bind_int64(st, 4, epoch);
    rc = sq_audit_rows(c, st, cb, ctx);
    sq_read_end(s, c, st);
    return rc;
}

static int
sq_audit_count(struct store *s, int64_t epoch, const uint8_t tag[STORE_HASH_LEN], uint64_t *n)
{
    struct sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sq_read_begin(s, SQ_AUDIT_COUNT, &c, &st);
    if (rc)
        return rc;
    sq_bind_blob(st, 1, tag, STORE_HASH_LEN);
    sqlite3_bind_int64(st, 2, epoch);
    rc = sq_step_one(c, st, "audit_count");
    if (rc == 1) {
        *n = (uint64_t)sqlite3_column_int64(st, 0);
        rc = 0;
    } else if (rc == 0) {
        *n = 0;
    }
    sq_read_end(s, c, st);
    return rc;
}

/*
 * Every node read with one borrowed connection and statement. No snapshot
 * is needed: a node never changes once written.
 */
static int
sq_audit_nodes_get(struct store *s, struct store_audit_node *nodes, size_t n)
{
    struct sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sq_read_begin(s, SQ_AUDIT_NODE_GET, &c, &st);
    if (rc)
        return rc;
    /* one snapshot for all: each statement alone would be a transaction */
    if (n > 1)
        rc = sq_run(c, SQ_READ_BEGIN);
    for (size_t i = 0; !rc && i < n; i++) {
        sqlite3_bind_int64(st, 1, sq_node_id(nodes[i].level, nodes[i].index));
        rc = sq_step_one(c, st, "audit_node_get");
        if (rc == 1) {
            size_t len = 0;
            rc = sq_col_blob(st, 0, nodes[i].hash, STORE_HASH_LEN, &len);
            if (!rc && len != STORE_HASH_LEN)
                rc = ERR_CORRUPT;
        } else if (rc == 0) {
            rc = ERR_NOT_FOUND;
        }
        sqlite3_reset(st);
    }
    if (n > 1 && !sqlite3_get_autocommit(c->db) && sq_run(c, SQ_COMMIT) && !rc)
        rc = ERR_IO;
    sq_read_end(s, c, st);
    return rc;
}

static int
sq_apply_audit(struct sq_conn *w, const struct store_op *op)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if (op->kind == STORE_OP_AUDIT_APPEND) {
        if (op->u.audit.index > INT64_MAX)
            return ERR_LIMIT;
        if ((rc = sq_stmt(w, SQ_AUDIT_APPEND, &st)))
            return rc;
        sqlite3_bind_int64(st, 1, (int64_t)op->u.audit.index);
        if (op->u.audit.has_tag)
            sq_bind_blob(st, 2, op->u.audit.tag, STORE_HASH_LEN);
        else
            sqlite3_bind_null(st, 2);
        sq_bind_blob(st, 3, op->u.audit.leaf, op->u.audit.len);
        return sq_exec_bound(w, st, "audit_append");
    }
    if (op->kind == STORE_OP_AUDIT_OWNERS) {
        if ((rc = sq_stmt(w, SQ_AUDIT_OWNER_PUT, &st)))
            return rc;
        for (size_t i = 0; i < op->u.owners.n; i++) {
            const struct store_audit_owner *o = &op->u.owners.v[i];
            if (o->index > INT64_MAX)
                return ERR_LIMIT;
            sq_bind_blob(st, 1, o->tag, STORE_HASH_LEN);
            sqlite3_bind_int64(st, 2, (int64_t)o->index);
            sqlite3_bind_int64(st, 3, store_audit_epoch(o->index));
            if ((rc = sq_exec_bound(w, st, "audit_owner_put")))
                return rc;
        }
        return 0;
    }
    if ((rc = sq_stmt(w, SQ_AUDIT_NODE_PUT, &st)))
        return rc;
    for (size_t i = 0; i < op->u.nodes.n; i++) {
        const struct store_audit_node *nd = &op->u.nodes.v[i];
        int64_t id = sq_node_id(nd->level, nd->index);
        if (id < 0)
            return ERR_LIMIT;
        sqlite3_bind_int64(st, 1, id);
        sq_bind_blob(st, 2, nd->hash, STORE_HASH_LEN);
        if ((rc = sq_exec_bound(w, st, "audit_node_put")))
            return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The writer                                                               */

static int
sq_txn_begin(struct store *s, bool durable)
{
    struct store_sqlite *q = sq(s);
    int want = durable ? 2 : 1;
    if (q->w_sync != want) {
        int rc = sq_run(&q->w, durable ? SQ_SYNC_FULL : SQ_SYNC_NORMAL);
        if (rc)
            return rc;
        q->w_sync = want;
    }
    return sq_run(&q->w, SQ_BEGIN);
}

/* Fails if SQLite ended the transaction on its own (it does on some errors). */
static int
sq_in_txn(struct store_sqlite *q)
{
    if (sqlite3_get_autocommit(q->w.db)) {
        log_err("sqlite transaction ended unexpectedly");
        return ERR_IO;
    }
    return 0;
}

static int
sq_txn_savepoint(struct store *s)
{
    int rc = sq_in_txn(sq(s));
    return rc ? rc : sq_run(&sq(s)->w, SQ_SAVEPOINT);
}

static int
sq_txn_rollback_to(struct store *s)
{
    int rc = sq_in_txn(sq(s));
    if (!rc)
        rc = sq_run(&sq(s)->w, SQ_ROLLBACK_TO);
    if (!rc)
        rc = sq_run(&sq(s)->w, SQ_RELEASE);
    return rc;
}

static int
sq_txn_release(struct store *s)
{
    int rc = sq_in_txn(sq(s));
    return rc ? rc : sq_run(&sq(s)->w, SQ_RELEASE);
}

static void
sq_txn_abort(struct store *s)
{
    struct store_sqlite *q = sq(s);
    q->txn_objects = false;
    if (!sqlite3_get_autocommit(q->w.db)) {
        int rc = sq_run(&q->w, SQ_ROLLBACK);
        if (rc)
            log_err("sqlite rollback failed error=\"%s\"", err_str(rc));
    }
}

static int
sq_txn_commit(struct store *s)
{
    struct store_sqlite *q = sq(s);
    int rc = sq_in_txn(q);
    /* no object row on disk before its chunks: their files first */
    if (!rc && q->files_failed)
        rc = q->files_failed;
    if (!rc && q->txn_objects && q->nfiles)
        rc = sq_files_sync(q);
    q->txn_objects = false;
    if (!rc)
        rc = sq_run(&q->w, SQ_COMMIT);
    if (rc)
        sq_txn_abort(s);
    return rc;
}

/* Binds (account, service, name_hash) as ?1 ?2 ?3. */
static void
sq_bind_key(sqlite3_stmt *st, const char *account, const char *service,
            const uint8_t name_hash[STORE_HASH_LEN])
{
    sq_bind_text(st, 1, account);
    sq_bind_text(st, 2, service);
    sq_bind_blob(st, 3, name_hash, STORE_HASH_LEN);
}

/*
 * Finds the row of (account, service, name_hash): 1 and its version, size
 * and deleted flag if there is one, 0 if none, or an error.
 */
static int
sq_object_find(struct sq_conn *w, const char *account, const char *service,
               const uint8_t name_hash[STORE_HASH_LEN], int64_t *version, int64_t *size,
               bool *deleted)
{
    sqlite3_stmt *st = NULL;
    int rc = sq_stmt(w, SQ_OBJECT_FIND, &st);
    if (rc)
        return rc;
    sq_bind_key(st, account, service, name_hash);
    rc = sq_step_one(w, st, "object_find");
    if (rc == 1) {
        *version = sqlite3_column_int64(st, 0);
        *size = sqlite3_column_int64(st, 1);
        *deleted = sqlite3_column_int64(st, 2) != 0;
    }
    sqlite3_reset(st);
    return rc;
}

/* Deletes the chunk rows of a version; notes a chunk file they used. */
static int
sq_chunks_delete(struct store_sqlite *q, const char *account, int64_t version)
{
    struct sq_conn *w = &q->w;
    sqlite3_stmt *st = NULL;
    int rc = sq_stmt(w, SQ_CHUNKS_DELETE, &st);
    if (rc)
        return rc;
    sq_bind_text(st, 1, account);
    sqlite3_bind_int64(st, 2, version);
    bool file = false;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW)
        file |= sqlite3_column_type(st, 0) != SQLITE_NULL;
    sqlite3_reset(st);
    if (src != SQLITE_DONE)
        return sq_err(w->db, src, "chunks_delete");
    return file ? sq_gone_add(q, account, version) : 0;
}

/* Binds the columns of an object row as ?4 .. ?10. */
static void
sq_bind_object(sqlite3_stmt *st, const struct store_object *o)
{
    sq_bind_key(st, o->account, o->service, o->name_hash);
    sq_bind_blob(st, 4, o->name_sealed, o->name_sealed_len);
    sqlite3_bind_int64(st, 5, o->version);
    sqlite3_bind_int64(st, 6, o->seq);
    sqlite3_bind_int64(st, 7, (int64_t)o->size);
    sqlite3_bind_int64(st, 8, o->chunks);
    sqlite3_bind_int64(st, 9, o->cipher);
    sqlite3_bind_int64(st, 10, o->mtime);
}

/*
 * Tries the insert of a new name first (the common case of an upload, one
 * statement); if the name has a row, reads it and updates it.
 */
static int
sq_object_put(struct store_sqlite *q, const struct store_object *o, struct store_effect *eff)
{
    struct sq_conn *w = &q->w;
    int64_t old_version = 0, old_size = 0;
    bool old_deleted = false;
    sqlite3_stmt *st = NULL;
    int rc = sq_stmt(w, SQ_OBJECT_INSERT, &st);
    if (rc)
        return rc;
    sq_bind_object(st, o);
    rc = sq_exec_bound(w, st, "object_insert");
    if (rc)
        return rc;
    if (sqlite3_changes(w->db) == 1) {
        eff->objects = 1;
        eff->bytes = (int64_t)o->size;
        return 0;
    }
    int found = sq_object_find(w, o->account, o->service, o->name_hash, &old_version, &old_size,
                               &old_deleted);
    if (found <= 0)
        return found ? found : ERR_INTERNAL;
    rc = sq_stmt(w, SQ_OBJECT_UPDATE, &st);
    if (rc)
        return rc;
    sq_bind_object(st, o);
    rc = sq_exec_bound(w, st, "object_update");
    if (rc)
        return rc;
    if (old_deleted) {
        eff->objects = 1;
        eff->bytes = (int64_t)o->size;
        return 0;
    }
    eff->replaced = true;
    eff->bytes = (int64_t)o->size - old_size;
    if (old_version != o->version)
        rc = sq_chunks_delete(q, o->account, old_version);
    return rc;
}

static int
sq_object_delete(struct store_sqlite *q, const struct store_op *op, struct store_effect *eff)
{
    struct sq_conn *w = &q->w;
    int64_t old_version = 0, old_size = 0;
    bool old_deleted = false;
    sqlite3_stmt *st = NULL;
    int found = sq_object_find(w, op->u.del.account, op->u.del.service, op->u.del.name_hash,
                               &old_version, &old_size, &old_deleted);
    if (found < 0)
        return found;
    if (!found || old_deleted)
        return ERR_NOT_FOUND;
    int rc = sq_stmt(w, SQ_OBJECT_TOMBSTONE, &st);
    if (rc)
        return rc;
    sq_bind_key(st, op->u.del.account, op->u.del.service, op->u.del.name_hash);
    sqlite3_bind_int64(st, 4, op->u.del.seq);
    sqlite3_bind_int64(st, 5, op->u.del.mtime);
    rc = sq_exec_bound(w, st, "object_delete");
    if (rc)
        return rc;
    eff->objects = -1;
    eff->bytes = -old_size;
    return sq_chunks_delete(q, op->u.del.account, old_version);
}

/* Consent, retention, erasure: the writer's side (version 2) --------------- */

/* Runs a writer statement whose ?1 is an account (and ?2 a service or number). */
static int
sq_acct_exec(struct sq_conn *w, enum sq_stmt id, const char *account, const char *service,
             int64_t n, int64_t *changes)
{
    sqlite3_stmt *st = NULL;
    int rc = sq_stmt(w, id, &st);
    if (rc)
        return rc;
    int i = 1;
    if (account)
        sq_bind_text(st, i++, account);
    if (service)
        sq_bind_text(st, i++, service);
    if (sqlite3_bind_parameter_count(st) >= i)
        sqlite3_bind_int64(st, i, n);
    rc = sq_exec_bound(w, st, sq_sql[id]);
    if (!rc && changes)
        *changes = sqlite3_changes64(w->db);
    return rc;
}

/* Live objects and bytes of an account (service NULL) or one of its services. */
static int
sq_live(struct sq_conn *w, const char *account, const char *service, int64_t *objects,
        int64_t *bytes)
{
    sqlite3_stmt *st = NULL;
    int rc = sq_stmt(w, service ? SQ_USAGE : SQ_ACCT_USAGE, &st);
    if (rc)
        return rc;
    sq_bind_text(st, 1, account);
    if (service)
        sq_bind_text(st, 2, service);
    rc = sq_step_one(w, st, "live");
    if (rc == 1) {
        *objects = sqlite3_column_int64(st, 0);
        *bytes = sqlite3_column_int64(st, 1);
        rc = 0;
    } else if (rc == 0) {
        rc = ERR_INTERNAL;
    }
    sqlite3_reset(st);
    return rc;
}

/* Queues the live objects' chunks, then removes the rows (of a service, or all). */
static int
sq_objects_remove(struct sq_conn *w, const char *account, const char *service, int64_t now,
                  struct store_effect *eff)
{
    int64_t objects = 0, bytes = 0;
    int rc = sq_live(w, account, service, &objects, &bytes);
    if (!rc)
        rc = sq_acct_exec(w, service ? SQ_SVC_QUEUE : SQ_ACCT_QUEUE, account, service, now, NULL);
    if (!rc)
        rc = sq_acct_exec(w, service ? SQ_SVC_DELETE : SQ_ERASE_OBJECTS, account, service, 0, NULL);
    if (rc)
        return rc;
    eff->objects = -objects;
    eff->bytes = -bytes;
    eff->count = (uint64_t)objects;
    return 0;
}

/* The purge of a retired account's rows, if queued: their live chunks take its place. */
static int
sq_rows_purge(struct sq_conn *w, const char *account, struct store_effect *eff)
{
    sqlite3_stmt *st = NULL;
    int rc = sq_stmt(w, SQ_ROWS_QUEUED, &st);
    if (rc)
        return rc;
    sq_bind_text(st, 1, account);
    rc = sq_step_one(w, st, "rows_queued");
    const int64_t queued = rc == 1 ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != 1)
        return rc;
    rc = sq_objects_remove(w, account, NULL, queued, eff);
    return rc ? rc : sq_acct_exec(w, SQ_PURGE_DEQUEUE, account, NULL, STORE_PURGE_ROWS, NULL);
}

static int
sq_compact(struct store_sqlite *q, struct store_effect *eff)
{
    int64_t before = 0, after = 0;
    if (!q->incremental)
        return 0;
    int rc = sq_query_int(q->w.db, "PRAGMA freelist_count", &before);
    if (rc)
        return rc;
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(q->w.db, "PRAGMA incremental_vacuum", -1, &st, NULL);
    while (src == SQLITE_OK && (src = sqlite3_step(st)) == SQLITE_ROW)
        src = SQLITE_OK;
    sqlite3_finalize(st);
    if (src != SQLITE_DONE)
        return sq_err(q->w.db, src, "incremental_vacuum");
    rc = sq_query_int(q->w.db, "PRAGMA freelist_count", &after);
    if (!rc && before > after)
        eff->count = (uint64_t)(before - after);
    return rc;
}

static int
sq_apply_v2(struct store *s, const struct store_op *op, struct store_effect *eff)
{
    static const enum sq_stmt erase[] = {
        SQ_ERASE_SESSIONS, SQ_ERASE_SVCKEYS, SQ_ERASE_CONSENTS, SQ_ERASE_CONSENT_LOG,
        SQ_ERASE_ACTIVITY, SQ_ERASE_RECORDS, SQ_ERASE_ACCOUNT,
    };
    struct sq_conn *w = &sq(s)->w;
    const char *account = op->u.acct.account, *service = op->u.acct.service;
    const int64_t n = op->u.acct.n;
    sqlite3_stmt *st = NULL;
    int64_t changes = 0;
    int rc;
    switch (op->kind) {
    case STORE_OP_CONSENT_PUT: {
        const struct store_consent *c = &op->u.consent;
        if ((rc = sq_stmt(w, SQ_CONSENT_UPSERT, &st)))
            return rc;
        sq_bind_text(st, 1, c->account);
        sq_bind_text(st, 2, c->service);
        sqlite3_bind_int64(st, 3, c->granted);
        sqlite3_bind_int64(st, 4, c->at);
        sq_bind_text(st, 5, c->policy);
        sqlite3_bind_int64(st, 6, c->purge_pending);
        rc = sq_exec_bound(w, st, "consent_put");
        if (!rc)
            rc = sq_acct_exec(w, SQ_CONSENT_LOG_ADD, c->account, c->service, 0, NULL);
        return rc;
    }
    case STORE_OP_CONSENT_PURGED:
        return sq_acct_exec(w, SQ_CONSENT_PURGED, account, service, n, NULL);
    case STORE_OP_SVCKEY_DELETE:
        return sq_acct_exec(w, SQ_SVCKEY_DELETE, account, service, 0, NULL);
    case STORE_OP_SERVICE_PURGE:
        return sq_objects_remove(w, account, service, n, eff);
    case STORE_OP_ACCOUNT_ERASE:
    case STORE_OP_ACCOUNT_RETIRE:
        rc = op->kind == STORE_OP_ACCOUNT_ERASE
                 ? sq_objects_remove(w, account, NULL, n, eff)
                 : sq_acct_exec(w, SQ_RETIRE_QUEUE, account, NULL, n, NULL);
        for (size_t i = 0; !rc && i < ARRAY_SIZE(erase); i++)
            rc = sq_acct_exec(w, erase[i], account, NULL, 0, NULL);
        return rc;
    case STORE_OP_ACTIVITY_PUT:
        return sq_acct_exec(w, SQ_ACTIVITY_PUT, account, NULL, n, NULL);
    case STORE_OP_PURGE_DONE:
        if (n == STORE_PURGE_ROWS)
            return sq_rows_purge(w, account, eff);
        rc = sq_chunks_delete(sq(s), account, n);
        if (!rc)
            rc = sq_acct_exec(w, SQ_PURGE_DEQUEUE, account, NULL, n, NULL);
        return rc;
    case STORE_OP_ERASURE_PUT:
        return sq_acct_exec(w, SQ_ERASURE_PUT, account, NULL, n, NULL);
    case STORE_OP_ERASURE_DONE:
        return sq_acct_exec(w, SQ_ERASURE_DONE, account, NULL, 0, NULL);
    case STORE_OP_SESSIONS_EXPIRE:
        rc = sq_acct_exec(w, SQ_SESSIONS_EXPIRE, NULL, NULL, n, &changes);
        if (!rc)
            eff->count = (uint64_t)changes;
        return rc;
    case STORE_OP_COMPACT:
        return sq_compact(sq(s), eff);
    default:
        BUG("not a version 2 store op");
    }
}

static int
sq_apply(struct store *s, const struct store_op *op, struct store_effect *eff)
{
    struct sq_conn *w = &sq(s)->w;
    sqlite3_stmt *st = NULL;
    int rc;
    switch (op->kind) {
    case STORE_OP_META_PUT:
        if ((rc = sq_stmt(w, SQ_META_PUT, &st)))
            return rc;
        sq_bind_text(st, 1, op->u.meta.key);
        sq_bind_blob(st, 2, op->u.meta.val, op->u.meta.len);
        return sq_exec_bound(w, st, "meta_put");
    case STORE_OP_ACCOUNT_INSERT:
        if ((rc = sq_stmt(w, SQ_ACCOUNT_INSERT, &st)))
            return rc;
        sq_bind_text(st, 1, op->u.account.id);
        sq_bind_text(st, 2, op->u.account.country);
        sq_bind_text(st, 3, op->u.account.pwhash);
        sq_bind_blob(st, 4, op->u.account.wrapped_key, op->u.account.wrapped_len);
        sqlite3_bind_int64(st, 5, op->u.account.created);
        return sq_exec_bound(w, st, "account_insert");
    case STORE_OP_SESSION_INSERT:
        if ((rc = sq_stmt(w, SQ_SESSION_INSERT, &st)))
            return rc;
        sq_bind_text(st, 1, op->u.session.account);
        sq_bind_blob(st, 2, op->u.session.token_hash, STORE_HASH_LEN);
        sqlite3_bind_int64(st, 3, op->u.session.created);
        sqlite3_bind_int64(st, 4, op->u.session.expires);
        return sq_exec_bound(w, st, "session_insert");
    case STORE_OP_SESSION_DELETE:
        if ((rc = sq_stmt(w, SQ_SESSION_DELETE, &st)))
            return rc;
        sq_bind_blob(st, 1, op->u.token_hash, STORE_HASH_LEN);
        return sq_exec_bound(w, st, "session_delete");
    case STORE_OP_SVCKEY_INSERT:
        if ((rc = sq_stmt(w, SQ_SVCKEY_INSERT, &st)))
            return rc;
        sq_bind_text(st, 1, op->u.svckey.account);
        sq_bind_text(st, 2, op->u.svckey.service);
        sq_bind_blob(st, 3, op->u.svckey.wrapped, op->u.svckey.len);
        return sq_exec_bound(w, st, "svckey_insert");
    case STORE_OP_OBJECT_PUT:
        sq(s)->txn_objects = true;
        return sq_object_put(sq(s), &op->u.object, eff);
    case STORE_OP_OBJECT_DELETE:
        return sq_object_delete(sq(s), op, eff);
    case STORE_OP_CHUNK_PUT: {
        const char *account = op->u.chunk.account;
        char name[SQ_FILE_NAME_MAX];
        int64_t off = -1;
        bool to_file =
            op->u.chunk.len >= SQ_FILE_MIN && sq_file_name(name, account, op->u.chunk.version);
        if (to_file && (rc = sq_file_append(sq(s), name, op->u.chunk.data, op->u.chunk.len, &off)))
            return rc;
        if ((rc = sq_stmt(w, SQ_CHUNK_PUT, &st)))
            return rc;
        sq_bind_text(st, 1, account);
        sqlite3_bind_int64(st, 2, op->u.chunk.version);
        sqlite3_bind_int64(st, 3, op->u.chunk.idx);
        sq_bind_blob(st, 4, op->u.chunk.data, to_file ? 0 : op->u.chunk.len);
        if (to_file) {
            sqlite3_bind_int64(st, 5, off);
            sqlite3_bind_int64(st, 6, (int64_t)op->u.chunk.len);
        } else {
            sqlite3_bind_null(st, 5);
            sqlite3_bind_null(st, 6);
        }
        return sq_exec_bound(w, st, "chunk_put");
    }
    case STORE_OP_CHUNKS_DELETE:
        return sq_chunks_delete(sq(s), op->u.chunks.account, op->u.chunks.version);
    case STORE_OP_REC_INSERT:
    case STORE_OP_REC_PUT:
    case STORE_OP_REC_DELETE: {
        enum sq_stmt which = op->kind == STORE_OP_REC_INSERT ? SQ_REC_INSERT
                             : op->kind == STORE_OP_REC_PUT  ? SQ_REC_PUT
                                                             : SQ_REC_DELETE;
        if ((rc = sq_stmt(w, which, &st)))
            return rc;
        sq_bind_text(st, 1, op->u.rec.account);
        sq_bind_text(st, 2, op->u.rec.kind);
        sq_bind_blob(st, 3, op->u.rec.key, op->u.rec.keylen);
        if (which != SQ_REC_DELETE)
            sq_bind_blob(st, 4, op->u.rec.val, op->u.rec.vallen);
        return sq_exec_bound(w, st, "rec");
    }
    case STORE_OP_RECS_DELETE:
        if ((rc = sq_stmt(w, SQ_RECS_DELETE, &st)))
            return rc;
        sq_bind_text(st, 1, op->u.rec.account);
        sq_bind_text(st, 2, op->u.rec.kind);
        return sq_exec_bound(w, st, "recs_delete");
    case STORE_OP_RECS_EXPIRE:
        if ((rc = sq_stmt(w, SQ_RECS_EXPIRE, &st)))
            return rc;
        sq_bind_text(st, 1, op->u.rec.kind);
        sq_bind_blob(st, 2, op->u.rec.val, op->u.rec.vallen);
        rc = sq_exec_bound(w, st, "recs_expire");
        if (!rc)
            eff->count = (uint64_t)sqlite3_changes64(w->db);
        return rc;
    case STORE_OP_CONSENT_PUT:
    case STORE_OP_CONSENT_PURGED:
    case STORE_OP_SVCKEY_DELETE:
    case STORE_OP_SERVICE_PURGE:
    case STORE_OP_ACCOUNT_ERASE:
    case STORE_OP_ACCOUNT_RETIRE:
    case STORE_OP_ACTIVITY_PUT:
    case STORE_OP_PURGE_DONE:
    case STORE_OP_ERASURE_PUT:
    case STORE_OP_ERASURE_DONE:
    case STORE_OP_SESSIONS_EXPIRE:
    case STORE_OP_COMPACT:
        return sq_apply_v2(s, op, eff);
    case STORE_OP_AUDIT_APPEND:
    case STORE_OP_AUDIT_NODES:
    case STORE_OP_AUDIT_OWNERS:
        return sq_apply_audit(w, op);
    }
    BUG("unknown store op");
}

static void
sq_maintain(struct store *s, bool idle)
{
    struct store_sqlite *q = sq(s);
    sq_files_gone(q);
    const int frames = q->wal_frames;
    if (frames < (idle ? SQ_WAL_IDLE_PAGES : SQ_WAL_MAX_PAGES))
        return;
    pthread_mutex_lock(&q->ck_lock);
    const bool busy = q->ck_busy;
    const int copied = q->ck_copied;
    if (!busy && (idle || frames - copied > SQ_WAL_TAIL_PAGES)) {
        q->ck_kicked = true;
        pthread_cond_signal(&q->ck_wake);
    }
    pthread_mutex_unlock(&q->ck_lock);
    /*
     * The writer copies the rest itself when little is left (so that the
     * next commit starts the WAL over) or when the WAL has grown too long
     * (its commits then wait, which bounds the WAL).
     */
    if (idle || (busy && frames < SQ_WAL_HARD_PAGES) ||
        (frames - copied > SQ_WAL_TAIL_PAGES && frames < SQ_WAL_HARD_PAGES))
        return;
    int log_frames, ckpt;
    if (sq_checkpoint(q->w.db, &log_frames, &ckpt))
        return;
    /* Fully copied back: the next commit starts the WAL over. */
    if (ckpt >= log_frames) {
        q->wal_frames = 0;
        pthread_mutex_lock(&q->ck_lock);
        q->ck_gen++;
        q->ck_copied = 0;
        pthread_mutex_unlock(&q->ck_lock);
    }
}

static int
sq_sync(struct store *s)
{
    if (fdatasync(sq(s)->wal_fd)) {
        log_err("cannot sync store wal error=\"%s\"", strerror(errno));
        return ERR_IO;
    }
    return 0;
}

const struct store_ops store_sqlite_ops = {
    .version = STORE_OPS_VERSION,
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .scan = sq_scan,
    .orphans_delete = sq_orphans_delete,
    .meta_get = sq_meta_get,
    .account_get = sq_account_get,
    .session_get = sq_session_get,
    .svckey_get = sq_svckey_get,
    .object_get = sq_object_get,
    .chunk_get = sq_chunk_get,
    .chunks_hold = sq_chunks_hold,
    .chunks_held_read = sq_chunks_held_read,
    .chunks_release = sq_chunks_release,
    .feed = sq_feed,
    .rec_get = sq_rec_get,
    .rec_list = sq_rec_list,
    .sessions_of = sq_sessions_of,
    .rec_find = sq_rec_find,
    .txn_begin = sq_txn_begin,
    .txn_savepoint = sq_txn_savepoint,
    .txn_rollback_to = sq_txn_rollback_to,
    .txn_release = sq_txn_release,
    .txn_commit = sq_txn_commit,
    .txn_abort = sq_txn_abort,
    .apply = sq_apply,
    .maintain = sq_maintain,
    .sync = sq_sync,
    .consent_get = sq_consent_get,
    .consents = sq_consents,
    .consent_log = sq_consent_log,
    .consents_pending = sq_consents_pending,
    .usage = sq_usage,
    .activity_get = sq_activity_get,
    .accounts_idle = sq_accounts_idle,
    .purges = sq_purges,
    .erasures = sq_erasures,
    .audit_scan = sq_audit_scan,
    .audit_leaves = sq_audit_leaves,
    .audit_find = sq_audit_find,
    .audit_count = sq_audit_count,
    .audit_nodes_get = sq_audit_nodes_get,
};
