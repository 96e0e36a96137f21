/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_pg.c: the PostgreSQL back-end of the store (struct store_ops, see
 * store_int.h), on top of libpq. Every SQL string and every libpq type of
 * oikos's PostgreSQL support lives in this file. Selected by a URL
 * "postgresql://..." or "postgres://..." (libpq's own URL syntax, handed to
 * it unchanged).
 *
 * Connections: the writer thread of store.c owns one connection; it holds a
 * session advisory lock on the database (and schema) for as long as it
 * lives, so that a second store cannot write to the same tables (the seq
 * and live counters of store.c assume one writer, as SQLite's lock file
 * does). Reads borrow a connection from a small pool (at most
 * PG_READERS_MAX, opened on demand) and run one statement in autocommit,
 * which sees one consistent snapshot; the result is copied out of the
 * connection (PGresult) before any callback runs, so a callback may call
 * the store again. Every connection prepares each statement the first time
 * it runs it (PQprepare, named "o<id>") and binds every parameter in binary
 * format: bytes as bytea, numbers as int8, arrays in PostgreSQL's binary
 * array format; results come back binary too.
 *
 * Transactions follow the SQLite back-end's semantics: one per group,
 * SAVEPOINT batch / ROLLBACK TO / RELEASE per batch in the slow path. An
 * expected conflict (a taken id, token hash, key, record or audit node) is
 * an INSERT ... ON CONFLICT DO NOTHING that touched no row, so it neither
 * aborts the transaction nor makes the server log the key; a unique
 * violation that still happens (SQLSTATE 23505) maps to ERR_EXISTS too.
 * Durability: there is no sync method. A durable group commits with
 * synchronous_commit on (the writer's session makes sure it is not off):
 * COMMIT returns once the WAL is flushed, and readers see the group only
 * then. A non-durable group sets synchronous_commit off for itself: it
 * survives a crash of oikosd (the server has it), not of the server.
 *
 * Losing the connection: a reader that finds its pooled connection dead
 * drops the idle pool and retries once on a new one. The writer reconnects
 * (and takes the lock again) at the next group. If the connection breaks
 * during COMMIT, the writer asks a new connection whether the transaction
 * (its xid, read at BEGIN) committed (pg_xact_status); if that cannot be
 * known, the store refuses every later commit until restart, since seqs
 * might otherwise be handed out twice.
 *
 * Ownership: struct store_pg owns its connections, the pool and the URL;
 * a reader borrows a connection between pg_reader_get and pg_reader_put.
 * Thread-safety: pool_lock guards the pool and the reader count; the
 * writer connection and the fields marked "writer" are touched only by the
 * writer thread (or by open/close while no writer runs).
 */
#include "base/common.h"

#include <libpq-fe.h>
#include <pthread.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/util.h"
#include "store/store_int.h"

#define PG_READERS_MAX 16        /* reader connections open at once */
#define PG_PAGE_ROWS 1000        /* rows fetched per query by long listings */
#define PG_LOCK_WAIT_MS 5000     /* how long open waits for the store's lock */
#define PG_OUTCOME_WAIT_MS 15000 /* how long to find out whether a COMMIT went through */
#define PG_PARAMS_MAX 12
#define PG_LOCK_CLASS 1869180783 /* "oiko": the advisory lock's first key */

/* Type OIDs of the parameters and columns used here (pg_type.dat). */
#define PG_OID_BOOL 16
#define PG_OID_BYTEA 17
#define PG_OID_INT8 20
#define PG_OID_INT2 21
#define PG_OID_INT4 23
#define PG_OID_TEXT 25
#define PG_OID_BYTEA_ARRAY 1001
#define PG_OID_INT8_ARRAY 1016

/* ------------------------------------------------------------------------ */
/* Statements                                                               */

enum pg_stmt {
    /* reads */
    PG_META_GET,
    PG_ACCOUNT_GET,
    PG_SESSION_GET,
    PG_SVCKEY_GET,
    PG_OBJECT_GET,
    PG_CHUNK_GET,
    PG_FEED,
    PG_FEED_DATA,
    PG_REC_GET,
    PG_REC_LIST,
    PG_REC_FIND,
    PG_SESSIONS_OF,
    PG_CONSENT_GET,
    PG_CONSENTS,
    PG_CONSENT_LOG,
    PG_CONSENTS_PENDING,
    PG_USAGE,
    PG_USAGE_ALL,
    PG_ACTIVITY_GET,
    PG_ACCOUNTS_IDLE,
    PG_PURGES,
    PG_ERASURES,
    PG_AUDIT_LEAVES,
    PG_AUDIT_FIND,
    PG_AUDIT_COUNT,
    PG_AUDIT_NODES_GET,
    /* writer */
    PG_META_PUT,
    PG_ACCOUNT_INSERT,
    PG_SESSION_INSERT,
    PG_SESSION_DELETE,
    PG_SVCKEY_INSERT,
    PG_OBJECT_PUT,
    PG_OBJECT_DELETE,
    PG_CHUNK_PUT,
    PG_CHUNKS_DELETE,
    PG_REC_INSERT,
    PG_REC_PUT,
    PG_REC_DELETE,
    PG_RECS_EXPIRE,
    PG_RECS_DELETE,
    PG_CONSENT_PUT,
    PG_CONSENT_PURGED,
    PG_SVCKEY_DELETE,
    PG_SERVICE_PURGE,
    PG_ACCOUNT_ERASE,
    PG_ACTIVITY_PUT,
    PG_PURGE_DONE,
    PG_ACCOUNT_RETIRE,
    PG_ROWS_PURGE,
    PG_ERASURE_PUT,
    PG_ERASURE_DONE,
    PG_SESSIONS_EXPIRE,
    PG_AUDIT_APPEND,
    PG_AUDIT_NODES_PUT,
    PG_AUDIT_OWNERS_PUT,
    PG_NSTMT
};

/*
 * One statement: a name for the log, its parameters (one letter per $n:
 * t text, b bytea, i int8, I int8[], B bytea[]), its result columns (t, b,
 * i: any integer; NULL when it returns no rows) and the SQL.
 */
struct pg_sql {
    const char *what;
    const char *params;
    const char *cols;
    const char *sql;
};

/* What an erasure and a retirement delete of an account besides its row and objects. */
#define PG_ACCOUNT_ROWS_DELETE                                                                     \
    " d1 AS (DELETE FROM sessions WHERE account = $1),"                                            \
    " d2 AS (DELETE FROM svckeys WHERE account = $1),"                                             \
    " d3 AS (DELETE FROM consents WHERE account = $1),"                                            \
    " d4 AS (DELETE FROM consent_log WHERE account = $1),"                                         \
    " d5 AS (DELETE FROM activity WHERE account = $1),"                                            \
    " d6 AS (DELETE FROM records WHERE account = $1)"

static const struct pg_sql pg_sql[PG_NSTMT] = {
    [PG_META_GET] = {"meta_get", "t", "b", "SELECT v FROM meta WHERE k = $1"},
    [PG_ACCOUNT_GET] = {"account_get", "t", "ttbi",
                        "SELECT country, pwhash, wrapped_key, created FROM accounts"
                        " WHERE account = $1"},
    [PG_SESSION_GET] = {"session_get", "b", "tii",
                        "SELECT account, created, expires FROM sessions WHERE token_hash = $1"},
    [PG_SVCKEY_GET] = {"svckey_get", "tt", "b",
                       "SELECT wrapped FROM svckeys WHERE account = $1 AND service = $2"},
    [PG_OBJECT_GET] = {"object_get", "ttb", "bbiiiiiii",
                       "SELECT name_hash, name_sealed, version, seq, size, chunks, cipher, mtime,"
                       " deleted FROM objects"
                       " WHERE account = $1 AND service = $2 AND name_hash = $3"},
    [PG_CHUNK_GET] = {"chunk_get", "tii", "b",
                      "SELECT data FROM chunks WHERE account = $1 AND version = $2 AND idx = $3"},
    [PG_FEED] = {"feed", "ttii", "bbiiiiiii",
                 "SELECT name_hash, name_sealed, version, seq, size, chunks, cipher, mtime,"
                 " deleted FROM objects"
                 " WHERE account = $1 AND service = $2 AND seq > $3 ORDER BY seq LIMIT $4"},
    [PG_FEED_DATA] = {"feed_data", "ttiii", "bbiiiiiiib",
                      "SELECT o.name_hash, o.name_sealed, o.version, o.seq, o.size, o.chunks,"
                      " o.cipher, o.mtime, o.deleted, c.data FROM objects o"
                      " LEFT JOIN chunks c ON o.chunks = 1 AND o.deleted = 0 AND o.size <= $5"
                      " AND c.account = o.account AND c.version = o.version AND c.idx = 0"
                      " WHERE o.account = $1 AND o.service = $2 AND o.seq > $3"
                      " ORDER BY o.seq LIMIT $4"},
    [PG_REC_GET] = {"rec_get", "ttb", "b",
                    "SELECT val FROM records WHERE account = $1 AND kind = $2 AND rkey = $3"},
    [PG_REC_LIST] = {"rec_list", "tt", "bb",
                     "SELECT rkey, val FROM records WHERE account = $1 AND kind = $2"
                     " ORDER BY rkey"},
    [PG_SESSIONS_OF] = {"sessions_of", "t", "bii",
                        "SELECT token_hash, created, expires FROM sessions WHERE account = $1"
                        " ORDER BY token_hash"},
    [PG_REC_FIND] = {"rec_find", "tb", "t",
                     "SELECT account FROM records WHERE kind = $1 AND rkey = $2"
                     " ORDER BY account LIMIT 1"},
    [PG_CONSENT_GET] = {"consent_get", "tt", "iitii",
                        "SELECT granted, at, policy, generation, purge_pending FROM consents"
                        " WHERE account = $1 AND service = $2"},
    [PG_CONSENTS] = {"consents", "t", "tiitii",
                     "SELECT service, granted, at, policy, generation, purge_pending"
                     " FROM consents WHERE account = $1 ORDER BY service"},
    [PG_CONSENT_LOG] = {"consent_log", "t", "tiiti",
                        "SELECT service, granted, at, policy, generation FROM consent_log"
                        " WHERE account = $1 ORDER BY n"},
    [PG_CONSENTS_PENDING] = {"consents_pending", "i", "ttiitii",
                             "SELECT account, service, granted, at, policy, generation,"
                             " purge_pending FROM consents WHERE purge_pending = 1 LIMIT $1"},
    [PG_USAGE] = {"usage", "tt", "ii",
                  "SELECT count(*), coalesce(sum(size), 0)::bigint FROM objects"
                  " WHERE account = $1 AND service = $2 AND deleted = 0"},
    [PG_USAGE_ALL] = {"usage_all", "t", "ii",
                      "SELECT count(*), coalesce(sum(size), 0)::bigint FROM objects"
                      " WHERE account = $1 AND deleted = 0"},
    [PG_ACTIVITY_GET] = {"activity_get", "t", "i",
                         "SELECT CASE WHEN v.at > a.created THEN v.at ELSE a.created END"
                         " FROM accounts a LEFT JOIN activity v ON v.account = a.account"
                         " WHERE a.account = $1"},
    [PG_ACCOUNTS_IDLE] = {"accounts_idle", "ii", "ti",
                          "SELECT a.account,"
                          " CASE WHEN v.at > a.created THEN v.at ELSE a.created END AS last"
                          " FROM accounts a LEFT JOIN activity v ON v.account = a.account"
                          " WHERE a.created < $1 AND (v.at IS NULL OR v.at < $1)"
                          " ORDER BY last, a.account LIMIT $2"},
    [PG_PURGES] = {"purges", "i", "ti",
                   "SELECT account, version FROM purges ORDER BY queued, account, version"
                   " LIMIT $1"},
    [PG_ERASURES] = {"erasures", "i", "ti",
                     "SELECT account, at FROM erasures ORDER BY at, account LIMIT $1"},
    [PG_AUDIT_LEAVES] = {"audit_leaves", "iii", "ibb",
                         "SELECT idx, leaf, tag FROM audit_leaves WHERE idx >= $1 AND idx < $2"
                         " ORDER BY idx LIMIT $3"},
    [PG_AUDIT_FIND] = {"audit_find", "ibii", "ibb",
                       "SELECT l.idx, l.leaf, l.tag FROM audit_owned o"
                       " JOIN audit_leaves l ON l.idx = o.idx"
                       " WHERE o.epoch = $1 AND o.tag = $2 AND o.idx >= $3"
                       " ORDER BY o.idx LIMIT $4"},
    [PG_AUDIT_COUNT] = {"audit_count", "ib", "i",
                        "SELECT count(*) FROM audit_owned WHERE epoch = $1 AND tag = $2"},
    [PG_AUDIT_NODES_GET] = {"audit_nodes_get", "I", "ib",
                            "SELECT id, hash FROM audit_nodes WHERE id = ANY ($1)"},

    [PG_META_PUT] = {"meta_put", "tb", NULL,
                     "INSERT INTO meta (k, v) VALUES ($1, $2)"
                     " ON CONFLICT (k) DO UPDATE SET v = excluded.v"},
    [PG_ACCOUNT_INSERT] = {"account_insert", "tttbi", NULL,
                           "INSERT INTO accounts (account, country, pwhash, wrapped_key, created)"
                           " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING"},
    [PG_SESSION_INSERT] = {"session_insert", "tbii", NULL,
                           "INSERT INTO sessions (account, token_hash, created, expires)"
                           " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"},
    [PG_SESSION_DELETE] = {"session_delete", "b", NULL,
                           "DELETE FROM sessions WHERE token_hash = $1"},
    [PG_SVCKEY_INSERT] = {"svckey_insert", "ttb", NULL,
                          "INSERT INTO svckeys (account, service, wrapped) VALUES ($1, $2, $3)"
                          " ON CONFLICT DO NOTHING"},
    /*
     * One statement for the whole put: the row as it was (no row: a new
     * name), the upsert, and the replaced live version's chunks deleted.
     * Every part sees the snapshot from before the statement.
     */
    [PG_OBJECT_PUT] =
        {"object_put", "ttbbiiiiii", "iii",
         "WITH old AS (SELECT version, size, deleted FROM objects"
         "  WHERE account = $1 AND service = $2 AND name_hash = $3),"
         " up AS (INSERT INTO objects (account, service, name_hash, name_sealed, version, seq,"
         "  size, chunks, cipher, mtime, deleted)"
         "  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0)"
         "  ON CONFLICT (account, service, name_hash) DO UPDATE SET"
         "  name_sealed = excluded.name_sealed, version = excluded.version, seq = excluded.seq,"
         "  size = excluded.size, chunks = excluded.chunks, cipher = excluded.cipher,"
         "  mtime = excluded.mtime, deleted = 0),"
         " gone AS (DELETE FROM chunks WHERE account = $1"
         "  AND version IN (SELECT version FROM old WHERE deleted = 0 AND version <> $5))"
         " SELECT version, size, deleted FROM old"},
    /* The tombstone and the chunks' deletion; no row: no live object. */
    [PG_OBJECT_DELETE] = {"object_delete", "ttbii", "ii",
                          "WITH old AS (SELECT version, size FROM objects"
                          "  WHERE account = $1 AND service = $2 AND name_hash = $3"
                          "  AND deleted = 0),"
                          " up AS (UPDATE objects SET seq = $4, mtime = $5, size = 0, chunks = 0,"
                          "  deleted = 1 WHERE account = $1 AND service = $2 AND name_hash = $3"
                          "  AND deleted = 0),"
                          " gone AS (DELETE FROM chunks WHERE account = $1"
                          "  AND version IN (SELECT version FROM old))"
                          " SELECT version, size FROM old"},
    [PG_CHUNK_PUT] = {"chunk_put", "tiib", NULL,
                      "INSERT INTO chunks (account, version, idx, data) VALUES ($1, $2, $3, $4)"
                      " ON CONFLICT (account, version, idx) DO UPDATE SET data = excluded.data"},
    [PG_CHUNKS_DELETE] = {"chunks_delete", "ti", NULL,
                          "DELETE FROM chunks WHERE account = $1 AND version = $2"},
    [PG_REC_INSERT] = {"rec_insert", "ttbb", NULL,
                       "INSERT INTO records (account, kind, rkey, val) VALUES ($1, $2, $3, $4)"
                       " ON CONFLICT DO NOTHING"},
    [PG_REC_PUT] = {"rec_put", "ttbb", NULL,
                    "INSERT INTO records (account, kind, rkey, val) VALUES ($1, $2, $3, $4)"
                    " ON CONFLICT (account, kind, rkey) DO UPDATE SET val = excluded.val"},
    [PG_REC_DELETE] = {"rec_delete", "ttb", NULL,
                       "DELETE FROM records WHERE account = $1 AND kind = $2 AND rkey = $3"},
    [PG_RECS_EXPIRE] = {"recs_expire", "tb", NULL,
                        "DELETE FROM records WHERE kind = $1 AND val < $2"},
    [PG_RECS_DELETE] = {"recs_delete", "tt", NULL,
                        "DELETE FROM records WHERE account = $1 AND kind = $2"},
    /* The new state and its history record, numbered 1, 2, ... per account. */
    [PG_CONSENT_PUT] =
        {"consent_put", "ttiiti", NULL,
         "WITH c AS (INSERT INTO consents (account, service, granted, at, policy, generation,"
         "  purge_pending) VALUES ($1, $2, $3, $4, $5, 1, $6)"
         "  ON CONFLICT (account, service) DO UPDATE SET granted = excluded.granted,"
         "  at = excluded.at, policy = excluded.policy, generation = consents.generation + 1,"
         "  purge_pending = excluded.purge_pending"
         "  RETURNING account, service, generation, granted, at, policy)"
         " INSERT INTO consent_log (account, n, service, generation, granted, at, policy)"
         " SELECT account,"
         "  (SELECT coalesce(max(n), 0) + 1 FROM consent_log WHERE account = $1),"
         "  service, generation, granted, at, policy FROM c"},
    [PG_CONSENT_PURGED] = {"consent_purged", "tti", NULL,
                           "UPDATE consents SET purge_pending = 0"
                           " WHERE account = $1 AND service = $2 AND generation = $3"},
    [PG_SVCKEY_DELETE] = {"svckey_delete", "tt", NULL,
                          "DELETE FROM svckeys WHERE account = $1 AND service = $2"},
    /* Rows removed, live ones' chunks queued; returns the live objects and bytes removed. */
    [PG_SERVICE_PURGE] = {"service_purge", "tti", "ii",
                          "WITH gone AS (DELETE FROM objects WHERE account = $1 AND service = $2"
                          "  RETURNING version, size, deleted),"
                          " q AS (INSERT INTO purges (account, version, queued)"
                          "  SELECT $1, version, $3 FROM gone WHERE deleted = 0"
                          "  ON CONFLICT (account, version) DO NOTHING)"
                          " SELECT count(*), coalesce(sum(size), 0)::bigint FROM gone"
                          " WHERE deleted = 0"},
    [PG_ACCOUNT_ERASE] = {"account_erase", "ti", "ii",
                          "WITH gone AS (DELETE FROM objects WHERE account = $1"
                          "  RETURNING version, size, deleted),"
                          " q AS (INSERT INTO purges (account, version, queued)"
                          "  SELECT $1, version, $2 FROM gone WHERE deleted = 0"
                          "  ON CONFLICT (account, version) DO NOTHING)," PG_ACCOUNT_ROWS_DELETE ","
                          " d7 AS (DELETE FROM accounts WHERE account = $1)"
                          " SELECT count(*), coalesce(sum(size), 0)::bigint FROM gone"
                          " WHERE deleted = 0"},
    /* only for an account that exists: an erased one leaves no trace here */
    [PG_ACTIVITY_PUT] = {"activity_put", "ti", NULL,
                         "INSERT INTO activity (account, at) SELECT $1, $2"
                         " WHERE EXISTS (SELECT 1 FROM accounts WHERE account = $1)"
                         " ON CONFLICT (account) DO UPDATE SET at = excluded.at"
                         " WHERE excluded.at > activity.at"},
    [PG_PURGE_DONE] = {"purge_done", "ti", NULL,
                       "WITH c AS (DELETE FROM chunks WHERE account = $1 AND version = $2)"
                       " DELETE FROM purges WHERE account = $1 AND version = $2"},
    /* the object rows stay, queued whole as version 0 (STORE_PURGE_ROWS) */
    [PG_ACCOUNT_RETIRE] =
        {"account_retire", "ti", NULL,
         "WITH q AS (INSERT INTO purges (account, version, queued)"
         "  VALUES ($1, 0, $2) ON CONFLICT (account, version) DO NOTHING)," PG_ACCOUNT_ROWS_DELETE
         " DELETE FROM accounts WHERE account = $1"},
    [PG_ROWS_PURGE] = {"rows_purge", "t", "ii",
                       "WITH m AS (DELETE FROM purges WHERE account = $1 AND version = 0"
                       "  RETURNING queued),"
                       " gone AS (DELETE FROM objects WHERE account = $1"
                       "  AND EXISTS (SELECT 1 FROM m) RETURNING version, size, deleted),"
                       " q AS (INSERT INTO purges (account, version, queued)"
                       "  SELECT $1, version, (SELECT queued FROM m) FROM gone WHERE deleted = 0"
                       "  ON CONFLICT (account, version) DO NOTHING)"
                       " SELECT count(*), coalesce(sum(size), 0)::bigint FROM gone"
                       " WHERE deleted = 0"},
    [PG_ERASURE_PUT] = {"erasure_put", "ti", NULL,
                        "INSERT INTO erasures (account, at) VALUES ($1, $2)"
                        " ON CONFLICT (account) DO NOTHING"},
    [PG_ERASURE_DONE] = {"erasure_done", "t", NULL, "DELETE FROM erasures WHERE account = $1"},
    [PG_SESSIONS_EXPIRE] = {"sessions_expire", "i", NULL,
                            "DELETE FROM sessions WHERE expires <= $1"},
    [PG_AUDIT_APPEND] = {"audit_append", "ibb", NULL,
                         "INSERT INTO audit_leaves (idx, tag, leaf) VALUES ($1, $2, $3)"
                         " ON CONFLICT DO NOTHING"},
    [PG_AUDIT_NODES_PUT] = {"audit_nodes_put", "IB", NULL,
                            "INSERT INTO audit_nodes (id, hash) SELECT * FROM unnest($1, $2)"
                            " ON CONFLICT DO NOTHING"},
    [PG_AUDIT_OWNERS_PUT] = {"audit_owners_put", "IBI", NULL,
                             "INSERT INTO audit_owned (epoch, tag, idx)"
                             " SELECT * FROM unnest($1, $2, $3) ON CONFLICT DO NOTHING"},
};

/* The portable schema (schema.c) in PostgreSQL's words. */
static const struct store_sql_subst pg_subst[] = {
    {"INTEGER PRIMARY KEY", "BIGINT PRIMARY KEY"},
    {"BLOB", "BYTEA"},
    /* compare and sort bytewise, as SQLite does, whatever the database's locale */
    {"TEXT", "TEXT COLLATE \"C\""},
    {"WITHOUT ROWID", ""}, /* SQLite's table without a rowid: PostgreSQL's are heaps */
};

struct pg_conn {
    PGconn *pc;
    uint64_t prepared[(PG_NSTMT + 63) / 64]; /* bit id: statement id is prepared */
    struct pg_conn *next;                    /* in the pool of idle readers */
};

struct store_pg {
    struct store base; /* first: a struct store * is a struct store_pg * */
    char *url;
    struct pg_conn w; /* writer */
    char xid[24];     /* writer: the xid of the open transaction, "" if none */
    bool failed;      /* writer: a COMMIT's outcome is unknown; refuse commits */
    pthread_mutex_t pool_lock;
    pthread_cond_t pool_free; /* signalled when a reader is put back or closed */
    bool pool_ready;
    struct pg_conn *pool; /* idle readers, under pool_lock */
    unsigned readers;     /* readers open, idle or borrowed, under pool_lock */
};

static struct store_pg *
pgs(struct store *s)
{
    return (struct store_pg *)s;
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */

/* The length of the first line of a message (libpq's end with "\n"). */
static int
line_len(const char *msg)
{
    size_t n = strcspn(msg, "\n");
    return n > 300 ? 300 : (int)n;
}

/*
 * Maps a failed result (or a failure without one) to an oikos error,
 * logging the unexpected ones: SQLSTATE and the primary message only,
 * never DETAIL, which can quote a row's values.
 */
static int
pg_err(PGconn *pc, const PGresult *r, const char *what)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (state && !strcmp(state, "23505"))
        return ERR_EXISTS;
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!msg)
        msg = pc ? PQerrorMessage(pc) : "out of memory";
    log_err("postgresql failed op=%s sqlstate=%s error=\"%.*s\"", what, state ? state : "-",
            line_len(msg), msg);
    if (!state)
        return !pc || PQstatus(pc) == CONNECTION_BAD ? ERR_UNAVAILABLE : ERR_IO;
    if (!strncmp(state, "08", 2) || !strncmp(state, "57P", 3) || !strcmp(state, "53300") ||
        !strcmp(state, "40001") || !strcmp(state, "40P01") || !strcmp(state, "55P03"))
        return ERR_UNAVAILABLE; /* connection, shutdown, too many clients, retry, lock */
    if (!strcmp(state, "53200"))
        return ERR_NOMEM;
    if (!strcmp(state, "54000"))
        return ERR_TOO_LARGE;
    if (!strncmp(state, "XX00", 4) && state[4] != '0')
        return ERR_CORRUPT;
    if (!strncmp(state, "22", 2) || !strncmp(state, "23", 2))
        return ERR_INVAL; /* data exception, other constraint violation */
    return ERR_IO;
}

/* ------------------------------------------------------------------------ */
/* Parameters and columns                                                   */

struct pg_params {
    int n;
    const char *val[PG_PARAMS_MAX];
    int len[PG_PARAMS_MAX];
    int fmt[PG_PARAMS_MAX];
    char num[PG_PARAMS_MAX][8]; /* storage of the int8 values */
};

static void
be_put(char *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)(v & 0xff);
        v >>= 8;
    }
}

static uint64_t
be_get(const char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | (uint8_t)p[i];
    return v;
}

static void
pp_bytes(struct pg_params *p, const void *v, size_t n)
{
    BUG_ON(p->n >= PG_PARAMS_MAX || n > INT32_MAX);
    p->val[p->n] = n ? v : ""; /* NULL would be SQL NULL */
    p->len[p->n] = (int)n;
    p->fmt[p->n] = 1;
    p->n++;
}

/* Text in binary format is its bytes. */
static void
pp_text(struct pg_params *p, const char *s)
{
    pp_bytes(p, s, strlen(s));
}

static void
pp_int(struct pg_params *p, int64_t v)
{
    BUG_ON(p->n >= PG_PARAMS_MAX);
    be_put(p->num[p->n], (uint64_t)v, 8);
    pp_bytes(p, p->num[p->n], 8);
}

static void
pp_null(struct pg_params *p)
{
    BUG_ON(p->n >= PG_PARAMS_MAX);
    p->val[p->n] = NULL;
    p->len[p->n] = 0;
    p->fmt[p->n] = 1;
    p->n++;
}

static int64_t
pg_limit(size_t limit)
{
    return limit > INT64_MAX ? INT64_MAX : (int64_t)limit;
}

/*
 * A one-dimensional array of n elements of type elem in PostgreSQL's binary
 * format (array_send): the header; then the caller appends each element
 * with arr_int8 or arr_bytes.
 */
static int
arr_begin(struct buf *b, uint32_t elem, size_t n)
{
    char h[20];
    if (n > INT32_MAX)
        return ERR_LIMIT;
    be_put(h, 1, 4);        /* dimensions */
    be_put(h + 4, 0, 4);    /* no NULLs */
    be_put(h + 8, elem, 4); /* element type */
    be_put(h + 12, n, 4);   /* length */
    be_put(h + 16, 1, 4);   /* lower bound */
    return buf_add(b, h, sizeof(h));
}

static int
arr_int8(struct buf *b, int64_t v)
{
    char e[12];
    be_put(e, 8, 4);
    be_put(e + 4, (uint64_t)v, 8);
    return buf_add(b, e, sizeof(e));
}

static int
arr_bytes(struct buf *b, const uint8_t *p, size_t n)
{
    char e[4];
    be_put(e, n, 4);
    int rc = buf_add(b, e, sizeof(e));
    return rc ? rc : buf_add(b, p, n);
}

/* An integer column of any width (binary results); 0 for NULL. */
static int64_t
pg_int(const PGresult *r, int row, int col)
{
    const char *p = PQgetvalue(r, row, col);
    switch (PQgetlength(r, row, col)) {
    case 8:
        return (int64_t)be_get(p, 8);
    case 4:
        return (int32_t)(uint32_t)be_get(p, 4);
    case 2:
        return (int16_t)(uint16_t)be_get(p, 2);
    case 1:
        return p[0] != 0;
    default:
        return 0;
    }
}

static struct slice
pg_slice(const PGresult *r, int row, int col)
{
    return SLICE(PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

/* Copies a text column into out[cap] with its NUL; ERR_CORRUPT if NULL or too long. */
static int
pg_text(const PGresult *r, int row, int col, char *out, size_t cap)
{
    struct slice v = pg_slice(r, row, col);
    if (PQgetisnull(r, row, col) || v.len >= cap || memchr(v.p, 0, v.len))
        return ERR_CORRUPT;
    memcpy(out, v.p, v.len);
    out[v.len] = 0;
    return 0;
}

/* Copies a bytea column into out[cap]; ERR_CORRUPT if too long. */
static int
pg_blob(const PGresult *r, int row, int col, uint8_t *out, size_t cap, size_t *len)
{
    struct slice v = pg_slice(r, row, col);
    if (v.len > cap)
        return ERR_CORRUPT;
    if (v.len)
        memcpy(out, v.p, v.len);
    *len = v.len;
    return 0;
}

/* Whether a result has the columns a statement promises (cols, see struct pg_sql). */
static bool
pg_shape_ok(const PGresult *r, const char *cols)
{
    if (PQnfields(r) != (int)strlen(cols))
        return false;
    for (int i = 0; cols[i]; i++) {
        Oid t = PQftype(r, i);
        bool ok = cols[i] == 't'   ? t == PG_OID_TEXT
                  : cols[i] == 'b' ? t == PG_OID_BYTEA
                                   : t == PG_OID_INT8 || t == PG_OID_INT4 || t == PG_OID_INT2 ||
                                         t == PG_OID_BOOL;
        if (!ok || PQfformat(r, i) != 1)
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------------ */
/* Connections                                                              */

static void
pg_notice(void *arg, const char *msg)
{
    (void)arg;
    log_debug("postgresql notice msg=\"%.*s\"", line_len(msg), msg);
}

/* Opens a connection to the store's database. */
static int
pg_conn_open(struct store_pg *q, struct pg_conn *c)
{
    /* Defaults first: what the URL says overrides them. */
    static const char *const keys[] = {"connect_timeout", "application_name", "client_encoding",
                                       "dbname", NULL};
    const char *vals[] = {"10", "oikosd", "UTF8", q->url, NULL};
    memset(c, 0, sizeof(*c));
    c->pc = PQconnectdbParams(keys, vals, 1);
    if (!c->pc)
        return ERR_NOMEM;
    if (PQstatus(c->pc) != CONNECTION_OK) {
        const char *msg = PQerrorMessage(c->pc);
        log_err("cannot connect to postgresql error=\"%.*s\"", line_len(msg), msg);
        PQfinish(c->pc);
        c->pc = NULL;
        return ERR_UNAVAILABLE;
    }
    PQsetErrorVerbosity(c->pc, PQERRORS_TERSE);
    PQsetNoticeProcessor(c->pc, pg_notice, NULL);
    if (PQserverVersion(c->pc) < 130000) {
        log_err("postgresql server too old version=%d need=130000", PQserverVersion(c->pc));
        PQfinish(c->pc);
        c->pc = NULL;
        return ERR_UNAVAILABLE;
    }
    return 0;
}

static void
pg_conn_close(struct pg_conn *c)
{
    if (c && c->pc) {
        PQfinish(c->pc);
        c->pc = NULL;
    }
}

/* Whether statement id is prepared on c. */
static bool
pg_prepared(const struct pg_conn *c, enum pg_stmt id)
{
    return c->prepared[id / 64] >> (id % 64) & 1;
}

/*
 * Runs statement id on c with params p, preparing it on first use. On
 * success *out owns the result (PQclear), which has the statement's
 * columns when it returns rows.
 */
static int
pg_exec(struct pg_conn *c, enum pg_stmt id, const struct pg_params *p, PGresult **out)
{
    const struct pg_sql *d = &pg_sql[id];
    char name[16];
    int rc;
    *out = NULL;
    BUG_ON((size_t)p->n != strlen(d->params));
    snprintf(name, sizeof(name), "o%d", (int)id);
    if (!pg_prepared(c, id)) {
        Oid types[PG_PARAMS_MAX];
        for (int i = 0; i < p->n; i++) {
            char t = d->params[i];
            types[i] = t == 't'   ? PG_OID_TEXT
                       : t == 'b' ? PG_OID_BYTEA
                       : t == 'i' ? PG_OID_INT8
                       : t == 'I' ? PG_OID_INT8_ARRAY
                                  : PG_OID_BYTEA_ARRAY;
        }
        PGresult *r = PQprepare(c->pc, name, d->sql, p->n, types);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            rc = pg_err(c->pc, r, d->what);
            PQclear(r);
            return rc;
        }
        PQclear(r);
        c->prepared[id / 64] |= (uint64_t)1 << (id % 64);
    }
    PGresult *r = PQexecPrepared(c->pc, name, p->n, p->val, p->len, p->fmt, 1);
    ExecStatusType st = PQresultStatus(r);
    if ((d->cols && st == PGRES_TUPLES_OK) || (!d->cols && st == PGRES_COMMAND_OK)) {
        if (d->cols && !pg_shape_ok(r, d->cols)) {
            log_err("postgresql result has unexpected columns op=%s", d->what);
            PQclear(r);
            return ERR_CORRUPT;
        }
        *out = r;
        return 0;
    }
    rc = pg_err(c->pc, r, d->what);
    PQclear(r);
    return rc;
}

/* Rows a command changed (INSERT, UPDATE, DELETE). */
static int64_t
pg_changes(const PGresult *r)
{
    const char *n = PQcmdTuples((PGresult *)(uintptr_t)r);
    return n && *n ? strtoll(n, NULL, 10) : 0;
}

/*
 * Runs a statement that needs no preparing (simple query protocol, text
 * results; several statements separated by ';' allowed). *out, if given,
 * gets the last result on success; else it is freed.
 */
static int
pg_simple(PGconn *pc, const char *sql, PGresult **out)
{
    if (out)
        *out = NULL;
    PGresult *r = PQexec(pc, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        int rc = pg_err(pc, r, "exec");
        PQclear(r);
        return rc;
    }
    if (out)
        *out = r;
    else
        PQclear(r);
    return 0;
}

/* Runs a query without parameters returning one row of n integers (binary). */
static int
pg_query_ints(PGconn *pc, const char *sql, int64_t *v, int n)
{
    PGresult *r = PQexecParams(pc, sql, 0, NULL, NULL, NULL, NULL, 1);
    int rc = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        rc = pg_err(pc, r, "query");
    else if (PQntuples(r) != 1 || PQnfields(r) != n)
        rc = ERR_CORRUPT;
    for (int i = 0; !rc && i < n; i++)
        v[i] = pg_int(r, 0, i);
    PQclear(r);
    return rc;
}

/* Closes every idle reader: after one was found dead, the others likely are. */
static void
pg_pool_drain(struct store_pg *q)
{
    pthread_mutex_lock(&q->pool_lock);
    struct pg_conn *list = q->pool;
    q->pool = NULL;
    for (struct pg_conn *c = list; c; c = c->next)
        q->readers--;
    pthread_cond_broadcast(&q->pool_free);
    pthread_mutex_unlock(&q->pool_lock);
    while (list) {
        struct pg_conn *c = list;
        list = c->next;
        pg_conn_close(c);
        free(c);
    }
}

/* Borrows an idle reader, or opens one; waits while PG_READERS_MAX are busy. */
static int
pg_reader_get(struct store_pg *q, struct pg_conn **out, bool *fresh)
{
    *out = NULL;
    pthread_mutex_lock(&q->pool_lock);
    while (!q->pool && q->readers >= PG_READERS_MAX)
        pthread_cond_wait(&q->pool_free, &q->pool_lock);
    struct pg_conn *c = q->pool;
    if (c)
        q->pool = c->next;
    else
        q->readers++;
    pthread_mutex_unlock(&q->pool_lock);
    *fresh = !c;
    if (c) {
        c->next = NULL;
        *out = c;
        return 0;
    }
    int rc = ERR_NOMEM;
    c = malloc(sizeof(*c));
    if (c)
        rc = pg_conn_open(q, c);
    if (!rc) {
        *out = c;
        return 0;
    }
    free(c);
    pthread_mutex_lock(&q->pool_lock);
    q->readers--;
    pthread_cond_signal(&q->pool_free);
    pthread_mutex_unlock(&q->pool_lock);
    return rc;
}

/* Gives a reader back; closes it if it is broken or left inside a transaction. */
static void
pg_reader_put(struct store_pg *q, struct pg_conn *c)
{
    bool bad = PQstatus(c->pc) != CONNECTION_OK || PQtransactionStatus(c->pc) != PQTRANS_IDLE;
    pthread_mutex_lock(&q->pool_lock);
    if (!bad) {
        c->next = q->pool;
        q->pool = c;
    } else {
        q->readers--;
    }
    pthread_cond_signal(&q->pool_free);
    pthread_mutex_unlock(&q->pool_lock);
    if (bad) {
        pg_conn_close(c);
        free(c);
    }
}

/*
 * Runs a read on a borrowed reader; *out owns the result. A pooled
 * connection found dead (the server restarted, say) is retried once on a
 * new one.
 */
static int
pg_read(struct store *s, enum pg_stmt id, const struct pg_params *p, PGresult **out)
{
    struct store_pg *q = pgs(s);
    for (int attempt = 0;; attempt++) {
        struct pg_conn *c = NULL;
        bool fresh = false;
        int rc = pg_reader_get(q, &c, &fresh);
        if (rc)
            return rc;
        rc = pg_exec(c, id, p, out);
        bool lost = rc && PQstatus(c->pc) == CONNECTION_BAD;
        pg_reader_put(q, c);
        if (!lost || fresh || attempt)
            return rc;
        pg_pool_drain(q);
    }
}

/* ------------------------------------------------------------------------ */
/* The writer's connection                                                  */

/*
 * Takes the store's advisory lock for the writer's session, waiting up to
 * PG_LOCK_WAIT_MS: the session of a killed oikosd may take a moment to end.
 */
static int
pg_lock(struct store_pg *q)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT pg_try_advisory_lock(%d, hashtext(current_schema()))",
             PG_LOCK_CLASS);
    for (int waited = 0;; waited += 100) {
        int64_t got = 0;
        int rc = pg_query_ints(q->w.pc, sql, &got, 1);
        if (rc)
            return rc;
        if (got)
            return 0;
        if (waited >= PG_LOCK_WAIT_MS) {
            log_err("store is in use by another store or process backend=postgresql");
            return ERR_UNAVAILABLE;
        }
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/*
 * (Re)connects the writer: a new session, prepared statements forgotten,
 * synchronous_commit not off, the store's lock taken.
 */
static int
pg_writer_connect(struct store_pg *q)
{
    PGresult *r = NULL;
    pg_conn_close(&q->w);
    q->xid[0] = 0;
    int rc = pg_conn_open(q, &q->w);
    if (rc)
        return rc;
    rc = pg_simple(q->w.pc, "SHOW synchronous_commit", &r);
    if (rc)
        goto out;
    if (!strcmp(PQgetvalue(r, 0, 0), "off")) {
        log_info("postgresql synchronous_commit is off, the store sets it on");
        rc = pg_simple(q->w.pc, "SET synchronous_commit TO on", NULL);
        if (rc)
            goto out;
    }
    PQclear(r);
    r = NULL;
    rc = pg_simple(q->w.pc, "SHOW fsync", &r);
    if (rc)
        goto out;
    if (!strcmp(PQgetvalue(r, 0, 0), "off"))
        log_warn("postgresql runs with fsync off: durable commits are not durable");
    rc = pg_lock(q);
out:
    PQclear(r);
    if (rc)
        pg_conn_close(&q->w);
    return rc;
}

/* Applies every schema step newer than the database, in one transaction. */
static int
pg_migrate(struct store_pg *q)
{
    PGconn *pc = q->w.pc;
    struct buf sql;
    int64_t have = 0;
    buf_init(&sql, 1 << 20);
    int rc = pg_simple(pc, "BEGIN", NULL);
    if (rc)
        goto out;
    rc = pg_simple(pc,
                   "CREATE TABLE IF NOT EXISTS schema_version ("
                   " version INTEGER NOT NULL PRIMARY KEY,"
                   " applied BIGINT NOT NULL)",
                   NULL);
    if (!rc)
        rc = pg_query_ints(pc, "SELECT coalesce(max(version), 0)::int8 FROM schema_version", &have,
                           1);
    if (rc)
        goto out;
    const int newest = store_migrations[store_migrations_len - 1].version;
    if (have > newest) {
        log_err("store schema is newer than this program have=%" PRId64 " know=%d", have, newest);
        rc = ERR_INVAL;
        goto out;
    }
    for (size_t i = 0; i < store_migrations_len; i++) {
        const struct store_migration *m = &store_migrations[i];
        if (m->version <= have)
            continue;
        rc = store_schema_sql(m->sql, pg_subst, ARRAY_SIZE(pg_subst), &sql);
        if (rc)
            goto out;
        rc = pg_simple(pc, sql.data, NULL);
        if (rc)
            goto out;
        buf_reset(&sql);
        rc =
            buf_addf(&sql, "INSERT INTO schema_version (version, applied) VALUES (%d, %" PRId64 ")",
                     m->version, (int64_t)time(NULL));
        if (!rc)
            rc = pg_simple(pc, sql.data, NULL);
        if (rc)
            goto out;
        log_info("store schema applied version=%d backend=postgresql", m->version);
    }
    rc = pg_simple(pc, "COMMIT", NULL);
out:
    if (rc && PQtransactionStatus(pc) != PQTRANS_IDLE)
        PQclear(PQexec(pc, "ROLLBACK"));
    buf_release(&sql);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Opening and closing                                                      */

static void pg_close(struct store *s);

static int
pg_open(struct store **out, const char *target)
{
    *out = NULL;
    if (strncmp(target, "postgresql://", 13) && strncmp(target, "postgres://", 11)) {
        log_err("store url is not a postgresql url");
        return ERR_INVAL;
    }
    struct store_pg *q = calloc(1, sizeof(*q));
    if (!q)
        return ERR_NOMEM;
    int rc = ERR_NOMEM;
    q->url = strdup(target);
    if (!q->url)
        goto out;
    if (pthread_mutex_init(&q->pool_lock, NULL))
        goto out;
    if (pthread_cond_init(&q->pool_free, NULL)) {
        pthread_mutex_destroy(&q->pool_lock);
        goto out;
    }
    q->pool_ready = true;
    rc = pg_writer_connect(q);
    if (rc)
        goto out;
    rc = pg_migrate(q);
    if (rc)
        goto out;
    log_info("store connected backend=postgresql db=\"%s\" server_version=%d", PQdb(q->w.pc),
             PQserverVersion(q->w.pc));
    *out = &q->base;
    q = NULL;
out:
    if (q)
        pg_close(&q->base);
    return rc;
}

static void
pg_close(struct store *s)
{
    struct store_pg *q = pgs(s);
    if (!q)
        return;
    if (q->pool_ready) {
        pg_pool_drain(q);
        BUG_ON(q->readers != 0);
        pthread_cond_destroy(&q->pool_free);
        pthread_mutex_destroy(&q->pool_lock);
    }
    pg_conn_close(&q->w); /* ends the session, and with it the lock */
    free(q->url);
    free(q);
}

static int
pg_scan(struct store *s, int64_t *max_seq, uint64_t *objects, uint64_t *bytes)
{
    int64_t v[3] = {0};
    int rc = pg_query_ints(pgs(s)->w.pc,
                           "SELECT coalesce(max(seq), 0)::int8,"
                           " count(*) FILTER (WHERE deleted = 0),"
                           " coalesce(sum(size) FILTER (WHERE deleted = 0), 0)::int8"
                           " FROM objects",
                           v, 3);
    *max_seq = v[0];
    *objects = (uint64_t)v[1];
    *bytes = (uint64_t)v[2];
    return rc;
}

static int
pg_orphans_delete(struct store *s, uint64_t *deleted)
{
    PGresult *r = NULL;
    *deleted = 0;
    int rc = pg_simple(pgs(s)->w.pc,
                       "DELETE FROM chunks c WHERE NOT EXISTS (SELECT 1 FROM objects o"
                       " WHERE o.account = c.account AND o.version = c.version"
                       " AND o.deleted = 0)",
                       &r);
    if (!rc)
        *deleted = (uint64_t)pg_changes(r);
    PQclear(r);
    return rc;
}

static int
pg_audit_scan(struct store *s, uint64_t *size)
{
    int64_t n = 0;
    int rc = pg_query_ints(pgs(s)->w.pc, "SELECT coalesce(max(idx) + 1, 0)::int8 FROM audit_leaves",
                           &n, 1);
    if (!rc && n < 0)
        rc = ERR_CORRUPT;
    *size = rc ? 0 : (uint64_t)n;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Reads                                                                    */

/*
 * Runs a read expected to return at most one row: 1 (and *out) for a row,
 * 0 for none (nothing to free), or an error.
 */
static int
pg_read_one(struct store *s, enum pg_stmt id, const struct pg_params *p, PGresult **out)
{
    int rc = pg_read(s, id, p, out);
    if (rc)
        return rc;
    if (PQntuples(*out) > 0)
        return 1;
    PQclear(*out);
    *out = NULL;
    return 0;
}

static int
pg_meta_get(struct store *s, const char *key, struct buf *out)
{
    struct pg_params p = {0};
    PGresult *r = NULL;
    pp_text(&p, key);
    int rc = pg_read_one(s, PG_META_GET, &p, &r);
    if (rc == 1) {
        struct slice v = pg_slice(r, 0, 0);
        rc = v.len ? buf_add(out, v.p, v.len) : buf_grow(out, 0);
    } else if (rc == 0) {
        rc = ERR_NOT_FOUND;
    }
    PQclear(r);
    return rc;
}

static int
pg_account_get(struct store *s, const char *id, struct store_account *out)
{
    struct pg_params p = {0};
    PGresult *r = NULL;
    pp_text(&p, id);
    int rc = pg_read_one(s, PG_ACCOUNT_GET, &p, &r);
    if (rc == 1) {
        memset(out, 0, sizeof(*out));
        memcpy(out->id, id, strlen(id) + 1);
        rc = pg_text(r, 0, 0, out->country, sizeof(out->country));
        if (!rc)
            rc = pg_text(r, 0, 1, out->pwhash, sizeof(out->pwhash));
        if (!rc)
            rc = pg_blob(r, 0, 2, out->wrapped_key, sizeof(out->wrapped_key), &out->wrapped_len);
        out->created = pg_int(r, 0, 3);
    } else if (rc == 0) {
        rc = ERR_NOT_FOUND;
    }
    PQclear(r);
    return rc;
}

static int
pg_session_get(struct store *s, const uint8_t token_hash[STORE_HASH_LEN], struct store_session *out)
{
    struct pg_params p = {0};
    PGresult *r = NULL;
    pp_bytes(&p, token_hash, STORE_HASH_LEN);
    int rc = pg_read_one(s, PG_SESSION_GET, &p, &r);
    if (rc == 1) {
        memset(out, 0, sizeof(*out));
        memcpy(out->token_hash, token_hash, STORE_HASH_LEN);
        rc = pg_text(r, 0, 0, out->account, sizeof(out->account));
        out->created = pg_int(r, 0, 1);
        out->expires = pg_int(r, 0, 2);
    } else if (rc == 0) {
        rc = ERR_NOT_FOUND;
    }
    PQclear(r);
    return rc;
}

static int
pg_svckey_get(struct store *s, const char *account, const char *service, uint8_t *out, size_t cap,
              size_t *outlen)
{
    struct pg_params p = {0};
    PGresult *r = NULL;
    pp_text(&p, account);
    pp_text(&p, service);
    int rc = pg_read_one(s, PG_SVCKEY_GET, &p, &r);
    if (rc == 1) {
        struct slice v = pg_slice(r, 0, 0);
        rc = 0;
        if (v.len > cap)
            rc = ERR_LIMIT;
        else if (v.len)
            memcpy(out, v.p, v.len);
        *outlen = rc ? 0 : v.len;
    } else if (rc == 0) {
        rc = ERR_NOT_FOUND;
    }
    PQclear(r);
    return rc;
}

/* Fills out from row `row` of PG_OBJECT_GET, PG_FEED or PG_FEED_DATA (same first columns). */
static int
pg_object_row(const PGresult *r, int row, const char *account, const char *service,
              struct store_object *out)
{
    size_t n = 0;
    memset(out, 0, offsetof(struct store_object, name_sealed));
    memcpy(out->account, account, strlen(account) + 1);
    memcpy(out->service, service, strlen(service) + 1);
    int rc = pg_blob(r, row, 0, out->name_hash, sizeof(out->name_hash), &n);
    if (rc || n != STORE_HASH_LEN)
        return ERR_CORRUPT;
    rc = pg_blob(r, row, 1, out->name_sealed, sizeof(out->name_sealed), &out->name_sealed_len);
    if (rc)
        return rc;
    out->version = pg_int(r, row, 2);
    out->seq = pg_int(r, row, 3);
    out->size = (uint64_t)pg_int(r, row, 4);
    out->chunks = (uint32_t)pg_int(r, row, 5);
    out->cipher = (int32_t)pg_int(r, row, 6);
    out->mtime = pg_int(r, row, 7);
    out->deleted = pg_int(r, row, 8) != 0;
    out->chunk0 = SLICE(NULL, 0);
    return 0;
}

static int
pg_object_get(struct store *s, const char *account, const char *service,
              const uint8_t name_hash[STORE_HASH_LEN], struct store_object *out)
{
    struct pg_params p = {0};
    PGresult *r = NULL;
    pp_text(&p, account);
    pp_text(&p, service);
    pp_bytes(&p, name_hash, STORE_HASH_LEN);
    int rc = pg_read_one(s, PG_OBJECT_GET, &p, &r);
    if (rc == 1)
        rc = pg_int(r, 0, 8) ? ERR_NOT_FOUND : pg_object_row(r, 0, account, service, out);
    else if (rc == 0)
        rc = ERR_NOT_FOUND;
    PQclear(r);
    return rc;
}

static int
pg_chunk_get(struct store *s, const char *account, int64_t version, uint32_t idx, struct buf *out)
{
    struct pg_params p = {0};
    PGresult *r = NULL;
    pp_text(&p, account);
    pp_int(&p, version);
    pp_int(&p, idx);
    int rc = pg_read_one(s, PG_CHUNK_GET, &p, &r);
    if (rc == 1) {
        struct slice v = pg_slice(r, 0, 0);
        rc = v.len ? buf_add(out, v.p, v.len) : buf_grow(out, 0);
    } else if (rc == 0) {
        rc = ERR_NOT_FOUND;
    }
    PQclear(r);
    return rc;
}

/*
 * In pages of PG_PAGE_ROWS, each page a query of its own: a callback may
 * commit between pages, and a later page then sees it (an object moved
 * forward appears at its new seq), which a change feed allows.
 */
static int
pg_feed(struct store *s, const char *account, const char *service, int64_t since, size_t limit,
        bool data, store_feed_cb cb, void *ctx)
{
    struct store_object *obj = malloc(sizeof(*obj));
    if (!obj)
        return ERR_NOMEM;
    int rc = 0;
    while (!rc && limit > 0) {
        struct pg_params p = {0};
        PGresult *r = NULL;
        size_t page = limit < PG_PAGE_ROWS ? limit : PG_PAGE_ROWS;
        pp_text(&p, account);
        pp_text(&p, service);
        pp_int(&p, since);
        pp_int(&p, (int64_t)page);
        if (data)
            pp_int(&p, STORE_FEED_DATA_MAX);
        rc = pg_read(s, data ? PG_FEED_DATA : PG_FEED, &p, &r);
        if (rc)
            break;
        int rows = PQntuples(r);
        for (int i = 0; !rc && i < rows; i++) {
            rc = pg_object_row(r, i, account, service, obj);
            if (!rc && data && !PQgetisnull(r, i, 9))
                obj->chunk0 = pg_slice(r, i, 9);
            if (!rc)
                rc = cb(ctx, obj);
            since = obj->seq;
        }
        PQclear(r);
        limit -= (size_t)rows;
        if ((size_t)rows < page)
            break;
    }
    free(obj);
    return rc;
}

static int
pg_rec_get(struct store *s, const char *account, const char *kind, struct slice key,
           struct buf *out)
{
    struct pg_params p = {0};
    PGresult *r = NULL;
    pp_text(&p, account);
    pp_text(&p, kind);
    pp_bytes(&p, key.p, key.len);
    int rc = pg_read_one(s, PG_REC_GET, &p, &r);
    if (rc == 1) {
        struct slice v = pg_slice(r, 0, 0);
        rc = v.len ? buf_add(out, v.p, v.len) : buf_grow(out, 0);
    } else if (rc == 0) {
        rc = ERR_NOT_FOUND;
    }
    PQclear(r);
    return rc;
}

static int
pg_rec_list(struct store *s, const char *account, const char *kind, store_rec_cb cb, void *ctx)
{
    struct pg_params p = {0};
    PGresult *r = NULL;
    pp_text(&p, account);
    pp_text(&p, kind);
    int rc = pg_read(s, PG_REC_LIST, &p, &r);
    for (int i = 0; !rc && i < PQntuples(r); i++)
        rc = cb(ctx, pg_slice(r, i, 0), pg_slice(r, i, 1));
    PQclear(r);
    return rc;
}

static int
pg_sessions_of(struct store *s, const char *account, store_session_cb cb, void *ctx)
{
    struct pg_params p = {0};
    PGresult *r = NULL;
    struct store_session se;
    pp_text(&p, account);
    int rc = pg_read(s, PG_SESSIONS_OF, &p, &r);
    for (int i = 0; !rc && i < PQntuples(r); i++) {
        struct slice h = pg_slice(r, i, 0);
        if (h.len != STORE_HASH_LEN) {
            rc = ERR_CORRUPT;
            break;
        }
        memset(&se, 0, sizeof(se));
        memcpy(se.token_hash, h.p, STORE_HASH_LEN);
        snprintf(se.account, sizeof(se.account), "%s", account);
        se.created = pg_int(r, i, 1);
        se.expires = pg_int(r, i, 2);
        rc = cb(ctx, &se);
    }
    PQclear(r);
    return rc;
}

static int
pg_rec_find(struct store *s, const char *kind, struct slice key, char account_out[STORE_ID_MAX])
{
    struct pg_params p = {0};
    PGresult *r = NULL;
    pp_text(&p, kind);
    pp_bytes(&p, key.p, key.len);
    int rc = pg_read_one(s, PG_REC_FIND, &p, &r);
    if (rc == 1)
        rc = pg_text(r, 0, 0, account_out, STORE_ID_MAX);
    else if (rc == 0)
        rc = ERR_NOT_FOUND;
    PQclear(r);
    return rc;
}

/* Consent, retention, erasure: reads (version 2) ---------------------------- */

/* Fills a consent from columns first.. of a row (granted, at, policy, generation[, pending]). */
static int
pg_consent_row(const PGresult *r, int row, int first, bool pending, struct store_consent *out)
{
    out->granted = pg_int(r, row, first) != 0;
    out->at = pg_int(r, row, first + 1);
    int rc = pg_text(r, row, first + 2, out->policy, sizeof(out->policy));
    out->generation = pg_int(r, row, first + 3);
    out->purge_pending = pending && pg_int(r, row, first + 4) != 0;
    return rc;
}

static int
pg_consent_get(struct store *s, const char *account, const char *service, struct store_consent *out)
{
    struct pg_params p = {0};
    PGresult *r = NULL;
    pp_text(&p, account);
    pp_text(&p, service);
    int rc = pg_read_one(s, PG_CONSENT_GET, &p, &r);
    if (rc == 1) {
        memset(out, 0, sizeof(*out));
        memcpy(out->account, account, strlen(account) + 1);
        memcpy(out->service, service, strlen(service) + 1);
        rc = pg_consent_row(r, 0, 0, true, out);
    } else if (rc == 0) {
        rc = ERR_NOT_FOUND;
    }
    PQclear(r);
    return rc;
}

/*
 * Runs a consent listing: rows of (account?) service granted at policy
 * generation (pending?); with account NULL the first column is the
 * account and $1 is the limit, else $1 is the account.
 */
static int
pg_consent_rows(struct store *s, enum pg_stmt id, const char *account, size_t limit,
                store_consent_cb cb, void *ctx)
{
    struct pg_params p = {0};
    PGresult *r = NULL;
    struct store_consent row;
    if (account)
        pp_text(&p, account);
    else
        pp_int(&p, pg_limit(limit));
    int rc = pg_read(s, id, &p, &r);
    for (int i = 0; !rc && i < PQntuples(r); i++) {
        int col = 0;
        memset(&row, 0, sizeof(row));
        if (account)
            memcpy(row.account, account, strlen(account) + 1);
        else
            rc = pg_text(r, i, col++, row.account, sizeof(row.account));
        if (!rc)
            rc = pg_text(r, i, col++, row.service, sizeof(row.service));
        if (!rc)
            rc = pg_consent_row(r, i, col, id != PG_CONSENT_LOG, &row);
        if (!rc)
            rc = cb(ctx, &row);
    }
    PQclear(r);
    return rc;
}

static int
pg_consents(struct store *s, const char *account, store_consent_cb cb, void *ctx)
{
    return pg_consent_rows(s, PG_CONSENTS, account, 0, cb, ctx);
}

static int
pg_consent_log(struct store *s, const char *account, store_consent_cb cb, void *ctx)
{
    return pg_consent_rows(s, PG_CONSENT_LOG, account, 0, cb, ctx);
}

static int
pg_consents_pending(struct store *s, size_t limit, store_consent_cb cb, void *ctx)
{
    return pg_consent_rows(s, PG_CONSENTS_PENDING, NULL, limit, cb, ctx);
}

static int
pg_usage(struct store *s, const char *account, const char *service, uint64_t *objects,
         uint64_t *bytes)
{
    struct pg_params p = {0};
    PGresult *r = NULL;
    pp_text(&p, account);
    if (service)
        pp_text(&p, service);
    int rc = pg_read_one(s, service ? PG_USAGE : PG_USAGE_ALL, &p, &r);
    if (rc == 1) {
        *objects = (uint64_t)pg_int(r, 0, 0);
        *bytes = (uint64_t)pg_int(r, 0, 1);
        rc = 0;
    } else if (rc == 0) {
        rc = ERR_INTERNAL;
    }
    PQclear(r);
    return rc;
}

static int
pg_activity_get(struct store *s, const char *account, int64_t *at)
{
    struct pg_params p = {0};
    PGresult *r = NULL;
    pp_text(&p, account);
    int rc = pg_read_one(s, PG_ACTIVITY_GET, &p, &r);
    if (rc == 1) {
        *at = pg_int(r, 0, 0);
        rc = 0;
    } else if (rc == 0) {
        rc = ERR_NOT_FOUND;
    }
    PQclear(r);
    return rc;
}

/* Runs a listing of (account TEXT, number BIGINT) rows; $1.. are the given numbers. */
static int
pg_pairs(struct store *s, enum pg_stmt id, const int64_t *binds, int nbinds,
         int (*row)(void *ctx, const char *account, int64_t n), void *ctx)
{
    struct pg_params p = {0};
    PGresult *r = NULL;
    char account[STORE_ID_MAX];
    for (int i = 0; i < nbinds; i++)
        pp_int(&p, binds[i]);
    int rc = pg_read(s, id, &p, &r);
    for (int i = 0; !rc && i < PQntuples(r); i++) {
        rc = pg_text(r, i, 0, account, sizeof(account));
        if (!rc)
            rc = row(ctx, account, pg_int(r, i, 1));
    }
    PQclear(r);
    return rc;
}

static int
pg_accounts_idle(struct store *s, int64_t before, size_t limit, store_account_cb cb, void *ctx)
{
    const int64_t b[2] = {before, pg_limit(limit)};
    return pg_pairs(s, PG_ACCOUNTS_IDLE, b, 2, cb, ctx);
}

static int
pg_purges(struct store *s, size_t limit, store_purge_cb cb, void *ctx)
{
    const int64_t b[1] = {pg_limit(limit)};
    return pg_pairs(s, PG_PURGES, b, 1, cb, ctx);
}

static int
pg_erasures(struct store *s, size_t limit, store_account_cb cb, void *ctx)
{
    const int64_t b[1] = {pg_limit(limit)};
    return pg_pairs(s, PG_ERASURES, b, 1, cb, ctx);
}

/* ------------------------------------------------------------------------ */
/* The audit log                                                            */

/* The row id of node (level, index): index * 64 + level; -1 if out of range. */
static int64_t
pg_node_id(uint32_t level, uint64_t index)
{
    if (level > 63 || index > (uint64_t)INT64_MAX / 64)
        return -1;
    return (int64_t)(index * 64 + level);
}

/*
 * Calls cb for each row (idx, leaf, tag) of a leaf query's result; *last
 * gets the last index seen.
 */
static int
pg_audit_rows(const PGresult *r, store_audit_cb cb, void *ctx, int64_t *last)
{
    int rc = 0;
    for (int i = 0; !rc && i < PQntuples(r); i++) {
        int64_t idx = pg_int(r, i, 0);
        const uint8_t *tag = NULL;
        if (idx < 0)
            return ERR_CORRUPT;
        if (!PQgetisnull(r, i, 2)) {
            if (PQgetlength(r, i, 2) != STORE_HASH_LEN)
                return ERR_CORRUPT;
            tag = (const uint8_t *)PQgetvalue(r, i, 2);
        }
        *last = idx;
        rc = cb(ctx, (uint64_t)idx, pg_slice(r, i, 1), tag);
    }
    return rc;
}

static int
pg_audit_leaves(struct store *s, uint64_t start, uint64_t end, store_audit_cb cb, void *ctx)
{
    if (end > INT64_MAX)
        end = INT64_MAX;
    int rc = 0;
    while (!rc && start < end) {
        struct pg_params p = {0};
        PGresult *r = NULL;
        int64_t last = -1;
        pp_int(&p, (int64_t)start);
        pp_int(&p, (int64_t)end);
        pp_int(&p, PG_PAGE_ROWS);
        rc = pg_read(s, PG_AUDIT_LEAVES, &p, &r);
        if (rc)
            break;
        int rows = PQntuples(r);
        rc = pg_audit_rows(r, cb, ctx, &last);
        PQclear(r);
        if (rows < PG_PAGE_ROWS)
            break;
        start = (uint64_t)last + 1;
    }
    return rc;
}

static int
pg_audit_find(struct store *s, int64_t epoch, const uint8_t tag[STORE_HASH_LEN], uint64_t start,
              size_t limit, store_audit_cb cb, void *ctx)
{
    int rc = 0;
    while (!rc && limit > 0 && start <= INT64_MAX) {
        struct pg_params p = {0};
        PGresult *r = NULL;
        int64_t last = -1;
        size_t page = limit < PG_PAGE_ROWS ? limit : PG_PAGE_ROWS;
        pp_int(&p, epoch);
        pp_bytes(&p, tag, STORE_HASH_LEN);
        pp_int(&p, (int64_t)start);
        pp_int(&p, (int64_t)page);
        rc = pg_read(s, PG_AUDIT_FIND, &p, &r);
        if (rc)
            break;
        int rows = PQntuples(r);
        rc = pg_audit_rows(r, cb, ctx, &last);
        PQclear(r);
        if ((size_t)rows < page)
            break;
        limit -= (size_t)rows;
        start = (uint64_t)last + 1;
    }
    return rc;
}

static int
pg_audit_count(struct store *s, int64_t epoch, const uint8_t tag[STORE_HASH_LEN], uint64_t *n)
{
    struct pg_params p = {0};
    PGresult *r = NULL;
    pp_int(&p, epoch);
    pp_bytes(&p, tag, STORE_HASH_LEN);
    *n = 0;
    int rc = pg_read_one(s, PG_AUDIT_COUNT, &p, &r);
    if (rc == 1) {
        *n = (uint64_t)pg_int(r, 0, 0);
        rc = 0;
    }
    PQclear(r);
    return rc;
}

struct pg_node_row {
    int64_t id;
    int row;
};

static int
node_row_cmp(const void *a, const void *b)
{
    int64_t x = ((const struct pg_node_row *)a)->id, y = ((const struct pg_node_row *)b)->id;
    return (x > y) - (x < y);
}

/* Every node in one query (id = ANY of an array); a node never changes once written. */
static int
pg_audit_nodes_get(struct store *s, struct store_audit_node *nodes, size_t n)
{
    struct buf arr;
    struct pg_params p = {0};
    PGresult *r = NULL;
    struct pg_node_row *rows = NULL;
    buf_init(&arr, (size_t)64 << 20);
    int rc = arr_begin(&arr, PG_OID_INT8, n);
    for (size_t i = 0; !rc && i < n; i++)
        rc = arr_int8(&arr, pg_node_id(nodes[i].level, nodes[i].index));
    if (rc)
        goto out;
    pp_bytes(&p, arr.data, arr.len);
    rc = pg_read(s, PG_AUDIT_NODES_GET, &p, &r);
    if (rc)
        goto out;
    int nrows = PQntuples(r);
    rows = malloc(((size_t)nrows + 1) * sizeof(*rows));
    if (!rows) {
        rc = ERR_NOMEM;
        goto out;
    }
    for (int i = 0; i < nrows; i++) {
        rows[i].id = pg_int(r, i, 0);
        rows[i].row = i;
    }
    qsort(rows, (size_t)nrows, sizeof(*rows), node_row_cmp);
    for (size_t i = 0; !rc && i < n; i++) {
        struct pg_node_row key = {pg_node_id(nodes[i].level, nodes[i].index), 0};
        const struct pg_node_row *hit =
            bsearch(&key, rows, (size_t)nrows, sizeof(*rows), node_row_cmp);
        size_t len = 0;
        if (!hit)
            rc = ERR_NOT_FOUND;
        else if (pg_blob(r, hit->row, 1, nodes[i].hash, STORE_HASH_LEN, &len) ||
                 len != STORE_HASH_LEN)
            rc = ERR_CORRUPT;
    }
out:
    free(rows);
    PQclear(r);
    buf_release(&arr);
    return rc;
}

/* Writes an audit op: one statement, the nodes and owners as arrays. */
static int
pg_apply_audit(struct pg_conn *w, const struct store_op *op)
{
    struct pg_params p = {0};
    PGresult *r = NULL;
    struct buf a, b, e;
    int64_t want = 1;
    enum pg_stmt id = PG_AUDIT_APPEND;
    int rc = 0;
    buf_init(&a, (size_t)64 << 20);
    buf_init(&b, (size_t)64 << 20);
    buf_init(&e, (size_t)64 << 20);
    if (op->kind == STORE_OP_AUDIT_APPEND) {
        if (op->u.audit.index > INT64_MAX) {
            rc = ERR_LIMIT;
            goto out;
        }
        pp_int(&p, (int64_t)op->u.audit.index);
        if (op->u.audit.has_tag)
            pp_bytes(&p, op->u.audit.tag, STORE_HASH_LEN);
        else
            pp_null(&p);
        pp_bytes(&p, op->u.audit.leaf, op->u.audit.len);
    } else if (op->kind == STORE_OP_AUDIT_NODES) {
        id = PG_AUDIT_NODES_PUT;
        want = (int64_t)op->u.nodes.n;
        rc = arr_begin(&a, PG_OID_INT8, op->u.nodes.n);
        if (!rc)
            rc = arr_begin(&b, PG_OID_BYTEA, op->u.nodes.n);
        for (size_t i = 0; !rc && i < op->u.nodes.n; i++) {
            const struct store_audit_node *nd = &op->u.nodes.v[i];
            int64_t nid = pg_node_id(nd->level, nd->index);
            rc = nid < 0 ? ERR_LIMIT : arr_int8(&a, nid);
            if (!rc)
                rc = arr_bytes(&b, nd->hash, STORE_HASH_LEN);
        }
        if (rc)
            goto out;
        pp_bytes(&p, a.data, a.len);
        pp_bytes(&p, b.data, b.len);
    } else {
        id = PG_AUDIT_OWNERS_PUT;
        want = (int64_t)op->u.owners.n;
        rc = arr_begin(&e, PG_OID_INT8, op->u.owners.n);
        if (!rc)
            rc = arr_begin(&a, PG_OID_BYTEA, op->u.owners.n);
        if (!rc)
            rc = arr_begin(&b, PG_OID_INT8, op->u.owners.n);
        for (size_t i = 0; !rc && i < op->u.owners.n; i++) {
            const struct store_audit_owner *o = &op->u.owners.v[i];
            rc = o->index > INT64_MAX ? ERR_LIMIT : arr_int8(&e, store_audit_epoch(o->index));
            if (!rc)
                rc = arr_bytes(&a, o->tag, STORE_HASH_LEN);
            if (!rc)
                rc = arr_int8(&b, (int64_t)o->index);
        }
        if (rc)
            goto out;
        pp_bytes(&p, e.data, e.len);
        pp_bytes(&p, a.data, a.len);
        pp_bytes(&p, b.data, b.len);
    }
    rc = pg_exec(w, id, &p, &r);
    /* A row already there was skipped (ON CONFLICT DO NOTHING). */
    if (!rc && pg_changes(r) != want)
        rc = ERR_EXISTS;
out:
    PQclear(r);
    buf_release(&a);
    buf_release(&b);
    buf_release(&e);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The writer                                                               */

/* Whether the writer's session is inside a transaction block (maybe failed). */
static bool
pg_in_txn(const struct store_pg *q)
{
    if (!q->w.pc)
        return false;
    PGTransactionStatusType t = PQtransactionStatus(q->w.pc);
    return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

static void
pg_txn_abort(struct store *s)
{
    struct store_pg *q = pgs(s);
    q->xid[0] = 0;
    if (pg_in_txn(q) && PQstatus(q->w.pc) == CONNECTION_OK) {
        int rc = pg_simple(q->w.pc, "ROLLBACK", NULL);
        if (rc)
            log_err("postgresql rollback failed error=\"%s\"", err_str(rc));
    }
}

/*
 * Starts a group's transaction and notes its xid, in one round trip. A
 * non-durable group turns synchronous_commit off for itself. A connection
 * found broken is replaced once.
 */
static int
pg_txn_begin(struct store *s, bool durable)
{
    struct store_pg *q = pgs(s);
    static const char *const sql[2] = {
        "BEGIN; SET LOCAL synchronous_commit TO off; SELECT pg_current_xact_id()::text",
        "BEGIN; SELECT pg_current_xact_id()::text",
    };
    if (q->failed)
        return ERR_IO;
    for (int attempt = 0;; attempt++) {
        PGresult *r = NULL;
        int rc = 0;
        if (!q->w.pc || PQstatus(q->w.pc) != CONNECTION_OK) {
            log_warn("postgresql writer connection lost, reconnecting");
            rc = pg_writer_connect(q);
            if (rc)
                return rc;
        }
        rc = pg_simple(q->w.pc, sql[durable], &r);
        if (!rc) {
            snprintf(q->xid, sizeof(q->xid), "%s", PQgetvalue(r, 0, 0));
            PQclear(r);
            return 0;
        }
        pg_txn_abort(s);
        if (attempt || PQstatus(q->w.pc) == CONNECTION_OK)
            return rc;
    }
}

static int
pg_savepoint_sql(struct store *s, const char *sql)
{
    struct store_pg *q = pgs(s);
    if (!pg_in_txn(q)) {
        log_err("postgresql transaction ended unexpectedly");
        return ERR_IO;
    }
    return pg_simple(q->w.pc, sql, NULL);
}

static int
pg_txn_savepoint(struct store *s)
{
    return pg_savepoint_sql(s, "SAVEPOINT batch");
}

static int
pg_txn_rollback_to(struct store *s)
{
    return pg_savepoint_sql(s, "ROLLBACK TO SAVEPOINT batch; RELEASE SAVEPOINT batch");
}

static int
pg_txn_release(struct store *s)
{
    return pg_savepoint_sql(s, "RELEASE SAVEPOINT batch");
}

/*
 * The connection broke during COMMIT: asks a new session whether the
 * transaction committed. Taking the lock again means the old session has
 * ended, so its transaction is decided. If it cannot be known, the store
 * refuses further commits: otherwise seqs could be handed out twice.
 */
static int
pg_commit_outcome(struct store_pg *q)
{
    char xid[sizeof(q->xid)];
    memcpy(xid, q->xid, sizeof(xid));
    q->xid[0] = 0;
    const uint64_t end = clock_mono_ns() + (uint64_t)PG_OUTCOME_WAIT_MS * 1000 * 1000;
    for (int tries = 0; xid[0] && clock_mono_ns() < end; tries++) {
        if (tries) {
            struct timespec ts = {0, 500 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        if (pg_writer_connect(q))
            continue;
        const char *vals[1] = {xid};
        PGresult *r =
            PQexecParams(q->w.pc, "SELECT pg_xact_status($1::xid8)", 1, NULL, vals, NULL, NULL, 0);
        const char *st =
            PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)
                ? PQgetvalue(r, 0, 0)
                : "";
        int rc = !strcmp(st, "committed") ? 0 : !strcmp(st, "aborted") ? ERR_UNAVAILABLE : 1;
        PQclear(r);
        if (rc <= 0) {
            log_warn("postgresql commit outcome found after a lost connection committed=%d",
                     rc == 0);
            return rc;
        }
    }
    q->failed = true;
    log_err("postgresql commit outcome unknown, refusing further commits until restart");
    return ERR_IO;
}

static int
pg_txn_commit(struct store *s)
{
    struct store_pg *q = pgs(s);
    if (!pg_in_txn(q)) {
        log_err("postgresql transaction ended unexpectedly");
        return ERR_IO;
    }
    PGresult *r = PQexec(q->w.pc, "COMMIT");
    int rc = 0;
    if (PQresultStatus(r) == PGRES_COMMAND_OK) {
        /* A failed transaction answers COMMIT with ROLLBACK. */
        if (strcmp(PQcmdStatus(r), "COMMIT")) {
            log_err("postgresql transaction was rolled back at commit");
            rc = ERR_IO;
        }
    } else if (PQstatus(q->w.pc) == CONNECTION_BAD) {
        (void)pg_err(q->w.pc, r, "commit");
        rc = pg_commit_outcome(q);
    } else {
        rc = pg_err(q->w.pc, r, "commit");
    }
    PQclear(r);
    if (rc)
        pg_txn_abort(s);
    q->xid[0] = 0;
    return rc;
}

/* Runs a writer statement that returns no rows; *changes, if given, gets the rows changed. */
static int
pg_write(struct pg_conn *w, enum pg_stmt id, const struct pg_params *p, int64_t *changes)
{
    PGresult *r = NULL;
    int rc = pg_exec(w, id, p, &r);
    if (!rc && changes)
        *changes = pg_changes(r);
    PQclear(r);
    return rc;
}

/* Runs an insert that skips a taken key: ERR_EXISTS if it inserted nothing. */
static int
pg_insert(struct pg_conn *w, enum pg_stmt id, const struct pg_params *p)
{
    int64_t n = 0;
    int rc = pg_write(w, id, p, &n);
    return rc ? rc : n == 1 ? 0 : ERR_EXISTS;
}

static void
pp_object(struct pg_params *p, const struct store_object *o)
{
    pp_text(p, o->account);
    pp_text(p, o->service);
    pp_bytes(p, o->name_hash, STORE_HASH_LEN);
    pp_bytes(p, o->name_sealed, o->name_sealed_len);
    pp_int(p, o->version);
    pp_int(p, o->seq);
    pp_int(p, (int64_t)o->size);
    pp_int(p, o->chunks);
    pp_int(p, o->cipher);
    pp_int(p, o->mtime);
}

static int
pg_object_put(struct pg_conn *w, const struct store_object *o, struct store_effect *eff)
{
    struct pg_params p = {0};
    PGresult *r = NULL;
    pp_object(&p, o);
    int rc = pg_exec(w, PG_OBJECT_PUT, &p, &r);
    if (rc)
        return rc;
    if (PQntuples(r) == 0 || pg_int(r, 0, 2)) {
        /* a new name, or one whose row was a tombstone */
        eff->objects = 1;
        eff->bytes = (int64_t)o->size;
    } else {
        eff->replaced = true;
        eff->bytes = (int64_t)o->size - pg_int(r, 0, 1);
    }
    PQclear(r);
    return 0;
}

static int
pg_object_delete(struct pg_conn *w, const struct store_op *op, struct store_effect *eff)
{
    struct pg_params p = {0};
    PGresult *r = NULL;
    pp_text(&p, op->u.del.account);
    pp_text(&p, op->u.del.service);
    pp_bytes(&p, op->u.del.name_hash, STORE_HASH_LEN);
    pp_int(&p, op->u.del.seq);
    pp_int(&p, op->u.del.mtime);
    int rc = pg_exec(w, PG_OBJECT_DELETE, &p, &r);
    if (rc)
        return rc;
    if (PQntuples(r) == 0) {
        rc = ERR_NOT_FOUND;
    } else {
        eff->objects = -1;
        eff->bytes = -pg_int(r, 0, 1);
    }
    PQclear(r);
    return rc;
}

/* A service purge or an account erasure: reports the live objects removed. */
static int
pg_objects_remove(struct pg_conn *w, enum pg_stmt id, const struct pg_params *p,
                  struct store_effect *eff)
{
    PGresult *r = NULL;
    int rc = pg_exec(w, id, p, &r);
    if (rc)
        return rc;
    if (PQntuples(r) != 1) {
        rc = ERR_INTERNAL;
    } else {
        int64_t objects = pg_int(r, 0, 0), bytes = pg_int(r, 0, 1);
        eff->objects = -objects;
        eff->bytes = -bytes;
        eff->count = (uint64_t)objects;
    }
    PQclear(r);
    return rc;
}

static int
pg_apply_v2(struct pg_conn *w, const struct store_op *op, struct store_effect *eff)
{
    struct pg_params p = {0};
    const char *account = op->u.acct.account, *service = op->u.acct.service;
    const int64_t n = op->u.acct.n;
    int64_t changes = 0;
    int rc;
    switch (op->kind) {
    case STORE_OP_CONSENT_PUT: {
        const struct store_consent *c = &op->u.consent;
        pp_text(&p, c->account);
        pp_text(&p, c->service);
        pp_int(&p, c->granted);
        pp_int(&p, c->at);
        pp_text(&p, c->policy);
        pp_int(&p, c->purge_pending);
        return pg_write(w, PG_CONSENT_PUT, &p, NULL);
    }
    case STORE_OP_CONSENT_PURGED:
        pp_text(&p, account);
        pp_text(&p, service);
        pp_int(&p, n);
        return pg_write(w, PG_CONSENT_PURGED, &p, NULL);
    case STORE_OP_SVCKEY_DELETE:
        pp_text(&p, account);
        pp_text(&p, service);
        return pg_write(w, PG_SVCKEY_DELETE, &p, NULL);
    case STORE_OP_SERVICE_PURGE:
        pp_text(&p, account);
        pp_text(&p, service);
        pp_int(&p, n);
        return pg_objects_remove(w, PG_SERVICE_PURGE, &p, eff);
    case STORE_OP_ACCOUNT_ERASE:
        pp_text(&p, account);
        pp_int(&p, n);
        return pg_objects_remove(w, PG_ACCOUNT_ERASE, &p, eff);
    case STORE_OP_ACCOUNT_RETIRE:
        pp_text(&p, account);
        pp_int(&p, n);
        return pg_write(w, PG_ACCOUNT_RETIRE, &p, NULL);
    case STORE_OP_ACTIVITY_PUT:
        pp_text(&p, account);
        pp_int(&p, n);
        return pg_write(w, PG_ACTIVITY_PUT, &p, NULL);
    case STORE_OP_PURGE_DONE:
        pp_text(&p, account);
        if (n == STORE_PURGE_ROWS)
            return pg_objects_remove(w, PG_ROWS_PURGE, &p, eff);
        pp_int(&p, n);
        return pg_write(w, PG_PURGE_DONE, &p, NULL);
    case STORE_OP_ERASURE_PUT:
        pp_text(&p, account);
        pp_int(&p, n);
        return pg_write(w, PG_ERASURE_PUT, &p, NULL);
    case STORE_OP_ERASURE_DONE:
        pp_text(&p, account);
        return pg_write(w, PG_ERASURE_DONE, &p, NULL);
    case STORE_OP_SESSIONS_EXPIRE:
        pp_int(&p, n);
        rc = pg_write(w, PG_SESSIONS_EXPIRE, &p, &changes);
        if (!rc)
            eff->count = (uint64_t)changes;
        return rc;
    case STORE_OP_COMPACT:
        /* autovacuum gives deleted rows' space back by itself */
        return 0;
    default:
        BUG("not a version 2 store op");
    }
}

static int
pg_apply(struct store *s, const struct store_op *op, struct store_effect *eff)
{
    struct pg_conn *w = &pgs(s)->w;
    struct pg_params p = {0};
    if (!pg_in_txn(pgs(s))) {
        log_err("postgresql transaction ended unexpectedly");
        return ERR_IO;
    }
    switch (op->kind) {
    case STORE_OP_META_PUT:
        pp_text(&p, op->u.meta.key);
        pp_bytes(&p, op->u.meta.val, op->u.meta.len);
        return pg_write(w, PG_META_PUT, &p, NULL);
    case STORE_OP_ACCOUNT_INSERT:
        pp_text(&p, op->u.account.id);
        pp_text(&p, op->u.account.country);
        pp_text(&p, op->u.account.pwhash);
        pp_bytes(&p, op->u.account.wrapped_key, op->u.account.wrapped_len);
        pp_int(&p, op->u.account.created);
        return pg_insert(w, PG_ACCOUNT_INSERT, &p);
    case STORE_OP_SESSION_INSERT:
        pp_text(&p, op->u.session.account);
        pp_bytes(&p, op->u.session.token_hash, STORE_HASH_LEN);
        pp_int(&p, op->u.session.created);
        pp_int(&p, op->u.session.expires);
        return pg_insert(w, PG_SESSION_INSERT, &p);
    case STORE_OP_SESSION_DELETE:
        pp_bytes(&p, op->u.token_hash, STORE_HASH_LEN);
        return pg_write(w, PG_SESSION_DELETE, &p, NULL);
    case STORE_OP_SVCKEY_INSERT:
        pp_text(&p, op->u.svckey.account);
        pp_text(&p, op->u.svckey.service);
        pp_bytes(&p, op->u.svckey.wrapped, op->u.svckey.len);
        return pg_insert(w, PG_SVCKEY_INSERT, &p);
    case STORE_OP_OBJECT_PUT:
        return pg_object_put(w, &op->u.object, eff);
    case STORE_OP_OBJECT_DELETE:
        return pg_object_delete(w, op, eff);
    case STORE_OP_CHUNK_PUT:
        pp_text(&p, op->u.chunk.account);
        pp_int(&p, op->u.chunk.version);
        pp_int(&p, op->u.chunk.idx);
        pp_bytes(&p, op->u.chunk.data, op->u.chunk.len);
        return pg_write(w, PG_CHUNK_PUT, &p, NULL);
    case STORE_OP_CHUNKS_DELETE:
        pp_text(&p, op->u.chunks.account);
        pp_int(&p, op->u.chunks.version);
        return pg_write(w, PG_CHUNKS_DELETE, &p, NULL);
    case STORE_OP_REC_INSERT:
    case STORE_OP_REC_PUT:
    case STORE_OP_REC_DELETE:
        pp_text(&p, op->u.rec.account);
        pp_text(&p, op->u.rec.kind);
        pp_bytes(&p, op->u.rec.key, op->u.rec.keylen);
        if (op->kind == STORE_OP_REC_DELETE)
            return pg_write(w, PG_REC_DELETE, &p, NULL);
        pp_bytes(&p, op->u.rec.val, op->u.rec.vallen);
        if (op->kind == STORE_OP_REC_PUT)
            return pg_write(w, PG_REC_PUT, &p, NULL);
        return pg_insert(w, PG_REC_INSERT, &p);
    case STORE_OP_RECS_DELETE:
        pp_text(&p, op->u.rec.account);
        pp_text(&p, op->u.rec.kind);
        return pg_write(w, PG_RECS_DELETE, &p, NULL);
    case STORE_OP_RECS_EXPIRE: {
        int64_t changes = 0;
        pp_text(&p, op->u.rec.kind);
        pp_bytes(&p, op->u.rec.val, op->u.rec.vallen);
        int rc = pg_write(w, PG_RECS_EXPIRE, &p, &changes);
        if (!rc)
            eff->count = (uint64_t)changes;
        return rc;
    }
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
        return pg_apply_v2(w, op, eff);
    case STORE_OP_AUDIT_APPEND:
    case STORE_OP_AUDIT_NODES:
    case STORE_OP_AUDIT_OWNERS:
        return pg_apply_audit(w, op);
    }
    BUG("unknown store op");
}

const struct store_ops store_pg_ops = {
    .version = STORE_OPS_VERSION,
    .name = "postgresql",
    .open = pg_open,
    .close = pg_close,
    .scan = pg_scan,
    .orphans_delete = pg_orphans_delete,
    .meta_get = pg_meta_get,
    .account_get = pg_account_get,
    .session_get = pg_session_get,
    .svckey_get = pg_svckey_get,
    .object_get = pg_object_get,
    .chunk_get = pg_chunk_get,
    .feed = pg_feed,
    .rec_get = pg_rec_get,
    .rec_list = pg_rec_list,
    .sessions_of = pg_sessions_of,
    .rec_find = pg_rec_find,
    .txn_begin = pg_txn_begin,
    .txn_savepoint = pg_txn_savepoint,
    .txn_rollback_to = pg_txn_rollback_to,
    .txn_release = pg_txn_release,
    .txn_commit = pg_txn_commit,
    .txn_abort = pg_txn_abort,
    .apply = pg_apply,
    .maintain = NULL,
    .sync = NULL,
    .consent_get = pg_consent_get,
    .consents = pg_consents,
    .consent_log = pg_consent_log,
    .consents_pending = pg_consents_pending,
    .usage = pg_usage,
    .activity_get = pg_activity_get,
    .accounts_idle = pg_accounts_idle,
    .purges = pg_purges,
    .erasures = pg_erasures,
    .audit_scan = pg_audit_scan,
    .audit_leaves = pg_audit_leaves,
    .audit_find = pg_audit_find,
    .audit_count = pg_audit_count,
    .audit_nodes_get = pg_audit_nodes_get,
};
