/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sqlite_baseline.c: the baseline of the durable small-write benchmark:
 * how many durable single-row transactions SQLite itself commits per
 * second, one at a time, on a given filesystem. One connection, WAL,
 * synchronous=FULL (each COMMIT fsyncs the WAL), the automatic checkpoint
 * left on as SQLite ships it, one 1 KiB random blob per transaction
 * (BEGIN IMMEDIATE; INSERT; COMMIT). This is what a server that commits each
 * write on its own could reach at best; group commit is how oikosd aims
 * past it.
 *
 * Usage: bench_sqlite DB_PATH [SECONDS [ROW_BYTES]]; DB_PATH must not
 * exist (it and its -wal and -shm are removed at the end). Prints one JSON
 * object on standard output. Single-threaded; owns everything it opens.
 */
#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
exec_sql(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "bench_sqlite: sql failed: %s: \"%s\"\n", msg ? msg : "?", sql);
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int
parse_num(const char *s, double lo, double hi, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static void
remove_db(const char *path)
{
    char side[4096];
    unlink(path);
    snprintf(side, sizeof(side), "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof(side), "%s-shm", path);
    unlink(side);
}

int
main(int argc, char **argv)
{
    double seconds = 3, row_bytes = 1024;
    if (argc < 2 || argc > 4 || (argc > 2 && parse_num(argv[2], 0.1, 600, &seconds)) ||
        (argc > 3 && parse_num(argv[3], 1, 1 << 20, &row_bytes))) {
        fprintf(stderr, "usage: bench_sqlite DB_PATH [SECONDS [ROW_BYTES]]\n");
        return 2;
    }
    const char *path = argv[1];
    if (access(path, F_OK) == 0) {
        fprintf(stderr, "bench_sqlite: \"%s\" exists: give a new path\n", path);
        return 2;
    }
    size_t n = (size_t)row_bytes;
    unsigned char *blob = malloc(n);
    sqlite3 *db = NULL;
    sqlite3_stmt *ins = NULL;
    int rc = 1;
    if (!blob)
        goto out;
    if (sqlite3_open(path, &db) != SQLITE_OK) {
        fprintf(stderr, "bench_sqlite: cannot open \"%s\": %s\n", path, sqlite3_errmsg(db));
        goto out;
    }
    if (exec_sql(db, "PRAGMA journal_mode = WAL") || exec_sql(db, "PRAGMA synchronous = FULL") ||
        exec_sql(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, data BLOB NOT NULL)"))
        goto out;
    if (sqlite3_prepare_v2(db, "INSERT INTO t (data) VALUES (?1)", -1, &ins, NULL) != SQLITE_OK)
        goto out;

    uint64_t commits = 0;
    double t0 = now_s(), t = t0, worst = 0;
    while (t - t0 < seconds) {
        /* a fresh random blob per row, as sealed data would be */
        sqlite3_randomness((int)n, blob);
        double a = now_s();
        if (exec_sql(db, "BEGIN IMMEDIATE"))
            goto out;
        if (sqlite3_bind_blob(ins, 1, blob, (int)n, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_step(ins) != SQLITE_DONE) {
            fprintf(stderr, "bench_sqlite: insert failed: %s\n", sqlite3_errmsg(db));
            goto out;
        }
        sqlite3_reset(ins);
        if (exec_sql(db, "COMMIT"))
            goto out;
        commits++;
        t = now_s();
        if (t - a > worst)
            worst = t - a;
    }
    double elapsed = t - t0;
    printf("{\"commits\": %" PRIu64 ", \"seconds\": %.3f, \"commits_per_s\": %.1f,"
           " \"mean_ms\": %.3f, \"max_ms\": %.3f, \"row_bytes\": %zu}\n",
           commits, elapsed, (double)commits / elapsed, elapsed * 1e3 / (double)commits,
           worst * 1e3, n);
    rc = 0;
out:
    sqlite3_finalize(ins);
    sqlite3_close(db);
    free(blob);
    remove_db(path);
    return rc;
}
