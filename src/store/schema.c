/* SPDX-License-Identifier: Apache-2.0 */
/*
 * schema.c: the one schema of every store back-end, as a list of versioned
 * steps in portable SQL (store_migrations), and the whole-word substitution
 * a back-end applies to a step before running it (store_schema_sql): SQLite
 * runs the steps as written, PostgreSQL with BYTEA for BLOB and so on
 * (store_pg.c). What only one engine knows (SQLite's PRAGMAs, PostgreSQL's
 * settings) stays in that back-end's open.
 *
 * Every table is keyed by the account first, so that a distributed
 * database (Citus) can shard it by that column; the exceptions are per
 * region, not per account: meta (a few keys of the region's own) and the
 * audit log's tables (docs/scaling.md says how they are placed). Never edit
 * a step that has shipped: append one. Versions go up in tens (1, 10, 20,
 * ...) and each back-end records the ones it applied in schema_version.
 *
 * Ownership: the list is static and read-only; store_schema_sql writes into
 * a caller's buffer. Thread-safety: pure functions over constant data.
 */
#include "base/common.h"

#include "base/buf.h"
#include "store/store_int.h"

const struct store_migration store_migrations[] = {
    {1, "CREATE TABLE meta ("
        " k TEXT NOT NULL PRIMARY KEY,"
        " v BLOB NOT NULL);"
        "CREATE TABLE accounts ("
        " account TEXT NOT NULL PRIMARY KEY,"
        " country TEXT NOT NULL,"
        " pwhash TEXT NOT NULL,"
        " wrapped_key BLOB NOT NULL,"
        " created BIGINT NOT NULL);"
        "CREATE TABLE sessions ("
        " account TEXT NOT NULL,"
        " token_hash BLOB NOT NULL,"
        " created BIGINT NOT NULL,"
        " expires BIGINT NOT NULL,"
        " PRIMARY KEY (account, token_hash));"
        "CREATE UNIQUE INDEX sessions_token ON sessions (token_hash);"
        "CREATE TABLE svckeys ("
        " account TEXT NOT NULL,"
        " service TEXT NOT NULL,"
        " wrapped BLOB NOT NULL,"
        " PRIMARY KEY (account, service));"
        "CREATE TABLE objects ("
        " account TEXT NOT NULL,"
        " service TEXT NOT NULL,"
        " name_hash BLOB NOT NULL,"
        " name_sealed BLOB NOT NULL,"
        " version BIGINT NOT NULL,"
        " seq BIGINT NOT NULL,"
        " size BIGINT NOT NULL,"
        " chunks BIGINT NOT NULL,"
        " cipher INTEGER NOT NULL,"
        " mtime BIGINT NOT NULL,"
        " deleted INTEGER NOT NULL,"
        " PRIMARY KEY (account, service, name_hash));"
        "CREATE INDEX objects_feed ON objects (account, service, seq);"
        "CREATE TABLE chunks ("
        " account TEXT NOT NULL,"
        " version BIGINT NOT NULL,"
        " idx BIGINT NOT NULL,"
        " data BLOB NOT NULL,"
        " PRIMARY KEY (account, version, idx));"},
    {10, "CREATE TABLE records ("
         " account TEXT NOT NULL,"
         " kind TEXT NOT NULL,"
         " rkey BLOB NOT NULL,"
         " val BLOB NOT NULL,"
         " PRIMARY KEY (account, kind, rkey));"
         "CREATE INDEX records_find ON records (kind, rkey, account);"},
    /*
     * Consent, retention, erasure (docs/internals/CONSENT.md). A region
     * opens two stores with this schema: the data store (objects, chunks,
     * accounts, activity, purges) and the key store (svckeys, consents,
     * consent_log, erasures), so that no copy of the data holds a key.
     */
    {20, "CREATE TABLE consents ("
         " account TEXT NOT NULL,"
         " service TEXT NOT NULL,"
         " granted INTEGER NOT NULL,"
         " at BIGINT NOT NULL,"
         " policy TEXT NOT NULL,"
         " generation BIGINT NOT NULL,"
         " purge_pending INTEGER NOT NULL,"
         " PRIMARY KEY (account, service));"
         "CREATE INDEX consents_pending ON consents (purge_pending) WHERE purge_pending = 1;"
         "CREATE TABLE consent_log ("
         " account TEXT NOT NULL,"
         " n BIGINT NOT NULL,"
         " service TEXT NOT NULL,"
         " generation BIGINT NOT NULL,"
         " granted INTEGER NOT NULL,"
         " at BIGINT NOT NULL,"
         " policy TEXT NOT NULL,"
         " PRIMARY KEY (account, n));"
         "CREATE TABLE activity ("
         " account TEXT NOT NULL PRIMARY KEY,"
         " at BIGINT NOT NULL);"
         "CREATE TABLE purges ("
         " account TEXT NOT NULL,"
         " version BIGINT NOT NULL,"
         " queued BIGINT NOT NULL,"
         " PRIMARY KEY (account, version));"
         "CREATE TABLE erasures ("
         " account TEXT NOT NULL PRIMARY KEY,"
         " at BIGINT NOT NULL);"},
    /*
     * The audit log (docs/internals/AUDIT.md): leaves numbered from 0, each
     * with the owner's pseudonym as tag (NULL for the region's own
     * entries); the tree's nodes of level 1 and up (a level-0 node is the
     * hash of its leaf), keyed by id = index * 64 + level; and the owners'
     * index, written when leaves are integrated. Not keyed by account: the
     * log is the region's (docs/scaling.md). INTEGER PRIMARY KEY is SQLite's
     * rowid, so a leaf or a node costs one B-tree insert, in order (these
     * are the hottest tables); PostgreSQL reads it as BIGINT PRIMARY KEY.
     */
    {30, "CREATE TABLE audit_leaves ("
         " idx INTEGER PRIMARY KEY,"
         " tag BLOB,"
         " leaf BLOB NOT NULL);"
         "CREATE TABLE audit_nodes ("
         " id INTEGER PRIMARY KEY,"
         " hash BLOB NOT NULL);"
         "CREATE TABLE audit_owners ("
         " tag BLOB NOT NULL,"
         " idx BIGINT NOT NULL,"
         " PRIMARY KEY (tag, idx));"},
    /*
     * The owners' index in epochs of 2^16 leaves (STORE_AUDIT_EPOCH_BITS),
     * so that integrating a round writes into the last epoch's pages only.
     * WITHOUT ROWID: one B-tree in SQLite (PostgreSQL drops the words).
     */
    {40, "CREATE TABLE audit_owned ("
         " epoch BIGINT NOT NULL,"
         " tag BLOB NOT NULL,"
         " idx BIGINT NOT NULL,"
         " PRIMARY KEY (epoch, tag, idx)) WITHOUT ROWID;"
         "INSERT INTO audit_owned (epoch, tag, idx) SELECT idx / 65536, tag, idx FROM audit_owners;"
         "DROP TABLE audit_owners;"},
    /*
     * The purge queue in the order the sweeper takes it: without this index
     * each listing of a few rows read and sorted the whole queue, which a
     * country's accounts moving away fill with millions of rows.
     */
    {50, "CREATE INDEX purges_queued ON purges (queued, account, version);"},
    /*
     * Chunks kept outside the rows: the SQLite back-end writes chunks of
     * large objects to files and keeps here where each one starts and how
     * long it is (NULL: the chunk is in data). PostgreSQL leaves them NULL.
     */
    {60, "ALTER TABLE chunks ADD COLUMN foff BIGINT;"
         "ALTER TABLE chunks ADD COLUMN flen BIGINT;"},
};

const size_t store_migrations_len = ARRAY_SIZE(store_migrations);

static bool
word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

int
store_schema_sql(const char *sql, const struct store_sql_subst *subst, size_t n, struct buf *out)
{
    buf_reset(out);
    int rc = buf_grow(out, strlen(sql) + 1);
    for (const char *p = sql; !rc && *p;) {
        size_t i = n;
        /* Only at the start of a word, and only a whole word (or words). */
        if (p == sql || !word_char(p[-1]))
            for (i = 0; i < n; i++) {
                size_t len = strlen(subst[i].from);
                if (!strncmp(p, subst[i].from, len) && !word_char(p[len]))
                    break;
            }
        if (i < n) {
            rc = buf_adds(out, subst[i].to);
            p += strlen(subst[i].from);
        } else {
            rc = buf_add(out, p, 1);
            p++;
        }
    }
    return rc;
}
