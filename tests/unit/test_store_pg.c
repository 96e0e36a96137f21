/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_store_pg.c: what only the PostgreSQL back-end (src/store/store_pg.c)
 * promises beyond the conformance suites: one store at a time on a
 * database (the advisory lock), a store that outlives the loss of its
 * connections (the server ends them: the writer reconnects at the next
 * group, a reader retries on a new connection), text compared bytewise
 * whatever the database's collation, the schema versions recorded, and a
 * COMMIT whose connection breaks answered by what the server did.
 * Runs only with OIKOS_TEST_STORE_URL naming a PostgreSQL database
 * (ctest's unit.pg.test_store_pg, through scripts/pgtest.sh run); every
 * test is skipped otherwise. Talks to the server beside the store through
 * its own libpq connection.
 */
#include "base/common.h"

#include <libpq-fe.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/buf.h"
#include "store/store.h"

#define OK(expr) assert_int_equal((expr), 0)

struct fix {
    struct store *s;
    const char *url;
    PGconn *admin; /* our own session on the same database */
};

static atomic_int id_counter;

static void
uid(char out[STORE_ID_MAX], const char *tag)
{
    snprintf(out, STORE_ID_MAX, "p-%lld-%ld-%d-%s", (long long)time(NULL), (long)getpid(),
             atomic_fetch_add(&id_counter, 1), tag);
}

static bool
pg_url(const char *url)
{
    return url && (!strncmp(url, "postgresql://", 13) || !strncmp(url, "postgres://", 11));
}

static int
setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    f->url = getenv("OIKOS_TEST_STORE_URL");
    *state = f;
    if (!pg_url(f->url))
        return 0;
    f->admin = PQconnectdb(f->url);
    if (PQstatus(f->admin) != CONNECTION_OK)
        return -1;
    PQclear(PQexec(f->admin, "SET client_min_messages TO warning"));
    return store_open(&f->s, f->url) ? -1 : 0;
}

static int
teardown(void **state)
{
    struct fix *f = *state;
    store_close(f->s);
    PQfinish(f->admin);
    free(f);
    return 0;
}

/* Runs sql on our own session; returns the first value of the first row ("" if none). */
static char *
admin_query(struct fix *f, const char *sql)
{
    static char out[256];
    PGresult *r = PQexec(f->admin, sql);
    ExecStatusType st = PQresultStatus(r);
    assert_true(st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK);
    snprintf(out, sizeof(out), "%s", PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    return out;
}

/* Ends every other session on this database (the store's writer and readers). */
static int
kill_others(struct fix *f)
{
    const char *n = admin_query(f, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                   " WHERE datname = current_database()"
                                   " AND pid <> pg_backend_pid()");
    return (int)strtol(n, NULL, 10);
}

static int
put_record_kind(struct store *s, const char *account, const char *kind, const char *key,
                const char *val)
{
    struct store_batch *b = NULL;
    int rc = store_batch_new(&b);
    if (!rc)
        rc = store_batch_rec_put(b, account, kind, SLICE_STR(key), SLICE_STR(val));
    if (!rc)
        rc = store_commit(s, b, true);
    store_batch_free(b);
    return rc;
}

static int
put_record(struct store *s, const char *account, const char *key, const char *val)
{
    return put_record_kind(s, account, "test", key, val);
}

#define SKIP_UNLESS_PG(f)                                                                          \
    do {                                                                                           \
        if (!(f)->s)                                                                               \
            skip();                                                                                \
    } while (0)

static void
test_backend_and_schema(void **state)
{
    struct fix *f = *state;
    SKIP_UNLESS_PG(f);
    assert_string_equal(store_backend(f->s), "postgresql");
    assert_string_equal(admin_query(f, "SELECT string_agg(version::text, ',' ORDER BY version)"
                                       " FROM schema_version"),
                        "1,10,20,30,40,50,60");
    /* the owners' index moved to its epochs (step 40) */
    assert_string_equal(admin_query(f, "SELECT string_agg(table_name, ',' ORDER BY table_name)"
                                       " FROM information_schema.tables"
                                       " WHERE table_name LIKE 'audit_own%'"),
                        "audit_owned");
    /* Bytes as bytea, and the collation that sorts as SQLite does. */
    assert_string_equal(admin_query(f, "SELECT data_type FROM information_schema.columns"
                                       " WHERE table_name = 'chunks' AND column_name = 'data'"),
                        "bytea");
    assert_string_equal(admin_query(f, "SELECT collation_name FROM information_schema.columns"
                                       " WHERE table_name = 'records' AND column_name = 'account'"),
                        "C");
    assert_string_equal(admin_query(f,
                                    "SELECT data_type FROM information_schema.columns"
                                    " WHERE table_name = 'audit_leaves' AND column_name = 'idx'"),
                        "bigint");
}

/* "Lowest account id" is bytewise, not the locale's order. */
static void
test_text_sorts_bytewise(void **state)
{
    struct fix *f = *state;
    SKIP_UNLESS_PG(f);
    char base[STORE_ID_MAX], upper[STORE_ID_MAX + 2], lower[STORE_ID_MAX + 2];
    char key[32], found[STORE_ID_MAX];
    uid(base, "sort");
    snprintf(key, sizeof(key), "k-%.28s", base + 2);
    /* In a natural-language collation "a..." sorts before "B..."; bytewise "B" < "a". */
    snprintf(upper, sizeof(upper), "B%.60s", base);
    snprintf(lower, sizeof(lower), "a%.60s", base);
    OK(put_record(f->s, lower, key, "1"));
    OK(put_record(f->s, upper, key, "2"));
    OK(store_rec_find(f->s, "test", SLICE_STR(key), found));
    assert_string_equal(found, upper);
}

/* A second store on the same database is refused while the first is open. */
static void
test_one_store_per_database(void **state)
{
    struct fix *f = *state;
    SKIP_UNLESS_PG(f);
    struct store *second = NULL;
    assert_int_equal(store_open(&second, f->url), ERR_UNAVAILABLE);
    assert_null(second);
    /* The first one is unharmed. */
    char acct[STORE_ID_MAX];
    uid(acct, "one");
    OK(put_record(f->s, acct, "k", "v"));
}

/* The server ends every session of the store: the next commit and read work. */
static void
test_connections_lost(void **state)
{
    struct fix *f = *state;
    SKIP_UNLESS_PG(f);
    char acct[STORE_ID_MAX];
    struct buf v;
    buf_init(&v, 100);
    uid(acct, "lost");
    OK(put_record(f->s, acct, "before", "1"));
    OK(store_rec_get(f->s, acct, "test", SLICE_STR("before"), &v)); /* a pooled reader */
    for (int round = 0; round < 3; round++) {
        assert_true(kill_others(f) >= 1);
        usleep(100 * 1000);
        char key[16];
        snprintf(key, sizeof(key), "after-%d", round);
        OK(put_record(f->s, acct, key, "2"));
        buf_reset(&v);
        OK(store_rec_get(f->s, acct, "test", SLICE_STR(key), &v));
        assert_int_equal(v.len, 1);
        assert_memory_equal(v.data, "2", 1);
        /* Reads first this time: the dead reader is replaced. */
        assert_true(kill_others(f) >= 1);
        usleep(100 * 1000);
        buf_reset(&v);
        OK(store_rec_get(f->s, acct, "test", SLICE_STR("before"), &v));
    }
    buf_release(&v);
    /* And the store still closes cleanly and opens again. */
    store_close(f->s);
    f->s = NULL;
    OK(store_open(&f->s, f->url));
}

/*
 * The connection is lost during COMMIT (a deferred trigger ends the
 * session): the store finds out from a new session that the transaction
 * did not commit, fails that commit alone, and goes on.
 */
static void
test_commit_lost(void **state)
{
    struct fix *f = *state;
    SKIP_UNLESS_PG(f);
    admin_query(f, "CREATE OR REPLACE FUNCTION die_at_commit() RETURNS trigger LANGUAGE plpgsql"
                   " AS $$BEGIN IF NEW.kind = 'die' THEN"
                   " PERFORM pg_terminate_backend(pg_backend_pid()); END IF; RETURN NULL; END$$");
    admin_query(f, "DROP TRIGGER IF EXISTS die_at_commit ON records");
    admin_query(f, "CREATE CONSTRAINT TRIGGER die_at_commit AFTER INSERT ON records"
                   " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION die_at_commit()");
    char acct[STORE_ID_MAX];
    struct buf v;
    buf_init(&v, 100);
    uid(acct, "commit");
    OK(put_record(f->s, acct, "before", "1"));
    assert_int_equal(put_record_kind(f->s, acct, "die", "k", "v"), ERR_UNAVAILABLE);
    assert_int_equal(store_rec_get(f->s, acct, "die", SLICE_STR("k"), &v), ERR_NOT_FOUND);
    OK(put_record(f->s, acct, "after", "2"));
    OK(store_rec_get(f->s, acct, "test", SLICE_STR("after"), &v));
    admin_query(f, "DROP TRIGGER die_at_commit ON records");
    buf_release(&v);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_backend_and_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_text_sorts_bytewise, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_store_per_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connections_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_lost, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
