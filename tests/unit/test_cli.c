/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_cli.c: unit tests of the command-line tool and liboikos that need
 * no oikosd: object names and the restore path check, the session file
 * (round trip, 0600/0700 modes, refusal of an open file, the XDG rules),
 * the progress bar's text, exit code 2 for every kind of bad command line,
 * and the client library against a small in-process HTTP/1.1 server (error
 * bodies, Retry-After, the JSON size cap, streamed upload and download,
 * connection reuse, region redirects, the paged change feed, and a backup
 * and restore round trip through the real commands). src/oikos.c is
 * included with main renamed, to drive the tool exactly as a user does.
 * Each test owns what it creates; the mock server runs on one thread and
 * serves one connection at a time.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/common.h"
#include "base/util.h"
#include "cli/cli.h"
#include "client/client.h"
#include "client/session.h"

#define main oikos_main
#include "oikos.c"
#undef main

static char tmp_root[256];

/* ---- helpers ------------------------------------------------------------- */

static void
rm_rf(const char *path)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    assert_int_equal(system(cmd), 0);
}

static char *
tmp_path(const char *name)
{
    static char p[512];
    snprintf(p, sizeof(p), "%s/%s", tmp_root, name);
    return p;
}

static void
write_file(const char *path, const void *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    close(fd);
}

static char *
read_file(const char *path, size_t *len)
{
    struct buf b;
    buf_init(&b, 64 * 1024 * 1024);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return NULL;
    char chunk[65536];
    ssize_t r;
    while ((r = read(fd, chunk, sizeof(chunk))) > 0)
        assert_int_equal(buf_add(&b, chunk, (size_t)r), 0);
    close(fd);
    return buf_take(&b, len);
}

/* Runs `oikos ARGS...` in-process; stdout and stderr are captured (caller frees). */
static int
run_oikos(char **out, char **err, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    argv[argc++] = strdup("oikos");
    va_start(ap, err);
    for (const char *a; (a = va_arg(ap, const char *));)
        argv[argc++] = strdup(a);
    va_end(ap);
    argv[argc] = NULL;

    char out_path[300], err_path[300];
    snprintf(out_path, sizeof(out_path), "%s/.stdout", tmp_root);
    snprintf(err_path, sizeof(err_path), "%s/.stderr", tmp_root);
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1), saved_err = dup(2);
    int fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fo >= 0 && fe >= 0);
    dup2(fo, 1);
    dup2(fe, 2);
    close(fo);
    close(fe);
    int rc = oikos_main(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    char *o = read_file(out_path, NULL), *e = read_file(err_path, NULL);
    if (out)
        *out = o;
    else
        free(o);
    if (err)
        *err = e;
    else
        free(e);
    return rc;
}

/* Asserts that the command line gives exit code 2 and `msg` on stderr. */
#define EXPECT_USAGE(msg, ...)                                                                     \
    do {                                                                                           \
        char *err_;                                                                                \
        int rc_ = run_oikos(NULL, &err_, __VA_ARGS__, (const char *)NULL);                         \
        if (!strstr(err_, (msg)))                                                                  \
            fail_msg("stderr lacks \"%s\":\n%s", (msg), err_);                                     \
        free(err_);                                                                                \
        assert_int_equal(rc_, CLI_EXIT_USAGE);                                                     \
    } while (0)

/* ---- object names -------------------------------------------------------- */

static void
test_name_normalise(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
        unsigned flags;
    } ok[] = {
        {"a.txt", "a.txt", 0},
        {"./a.txt", "a.txt", 0},
        {"././dir//sub/./f", "dir/sub/f", 0},
        {"dir/", "dir", 0},
        {"a/b/../c", "a/c", 0},
        {"a/../../b", "b", CLI_NAME_STRIPPED_UP},
        {"../x/y", "x/y", CLI_NAME_STRIPPED_UP},
        {"/home/u/p.jpg", "home/u/p.jpg", CLI_NAME_STRIPPED_ROOT},
        {"//etc/../../passwd", "passwd", CLI_NAME_STRIPPED_ROOT | CLI_NAME_STRIPPED_UP},
        {"...", "...", 0},
        {"..a/b..", "..a/b..", 0},
        {"caf\xc3\xa9 n\xc2\xb0"
         "1",
         "caf\xc3\xa9 n\xc2\xb0"
         "1",
         0},
    };
    for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
        struct buf b;
        unsigned flags = 99;
        buf_init(&b, 4096);
        assert_int_equal(cli_name_normalise(ok[i].in, &b, &flags), 0);
        assert_string_equal(b.data, ok[i].out);
        assert_int_equal(flags, ok[i].flags);
        buf_release(&b);
    }
    static const char *const bad[] = {"", ".", "/", "..", "a/..", "./../.", "//"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        struct buf b;
        buf_init(&b, 4096);
        assert_int_equal(cli_name_normalise(bad[i], &b, NULL), ERR_INVAL);
        assert_int_equal(b.len, 0);
        buf_release(&b);
    }
    /* the API's limit: 1024 bytes */
    char longname[1100];
    memset(longname, 'x', sizeof(longname));
    longname[CLI_NAME_MAX] = 0;
    struct buf b;
    buf_init(&b, 4096);
    assert_int_equal(cli_name_normalise(longname, &b, NULL), 0);
    longname[CLI_NAME_MAX] = 'x';
    longname[CLI_NAME_MAX + 1] = 0;
    buf_reset(&b);
    assert_int_equal(cli_name_normalise(longname, &b, NULL), ERR_INVAL);
    buf_release(&b);
}

static void
test_name_safe(void **state)
{
    (void)state;
    static const char *const safe[] = {"a", "dir/sub/f.jpg", "...", "a..b/..c", "caf\xc3\xa9"};
    for (size_t i = 0; i < ARRAY_SIZE(safe); i++)
        assert_true(cli_name_safe(safe[i]));
    static const char *const unsafe[] = {
        "",      "/etc/passwd", "../x", "a/../../x", "a/..", "..",        ".",     "./a",
        "a/./b", "a//b",        "a/",   "/",         "a\nb", "tab\there", "x\x7f", "\x1b[31m",
    };
    for (size_t i = 0; i < ARRAY_SIZE(unsafe); i++) {
        if (cli_name_safe(unsafe[i]))
            fail_msg("'%s' passed as safe", unsafe[i]);
    }
}

static void
test_services(void **state)
{
    (void)state;
    static const char *const ok[] = {"contacts", "messages", "calllog",
                                     "settings", "photos",   "messaging"};
    for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
        assert_true(cli_service_valid(ok[i]));
    assert_false(cli_service_valid("Photos"));
    assert_false(cli_service_valid("photo"));
    assert_false(cli_service_valid(""));
    assert_false(cli_service_valid("../photos"));
}

/* ---- session file -------------------------------------------------------- */

static void
test_session_roundtrip(void **state)
{
    (void)state;
    char dir[400], file[450];
    struct stat st;
    snprintf(dir, sizeof(dir), "%s/cfg/nested/oikos", tmp_root);
    snprintf(file, sizeof(file), "%s/session.json", dir);
    rm_rf(tmp_path("cfg"));
    setenv("OIKOS_CONFIG_DIR", dir, 1);

    struct session s = {0};
    assert_int_equal(session_load(&s), ERR_NOT_FOUND);
    assert_int_equal(session_remove(), ERR_NOT_FOUND);

    struct session w = {.url = "http://127.0.0.1:7701", .account = "in-abc", .token = "in.t0k"};
    mode_t old_umask = umask(0); /* even a careless umask must not open the file */
    assert_int_equal(session_save(&w), 0);
    umask(old_umask);
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    assert_int_equal(session_load(&s), 0);
    assert_string_equal(s.url, w.url);
    assert_string_equal(s.account, w.account);
    assert_string_equal(s.token, w.token);
    session_release(&s);
    assert_null(s.token);

    /* replaced atomically: no temporary file left beside it */
    struct session w2 = {.url = "https://sg.example", .account = NULL, .token = "sg.x\"y\\z"};
    assert_int_equal(session_save(&w2), 0);
    assert_int_equal(session_load(&s), 0);
    assert_string_equal(s.url, "https://sg.example");
    assert_null(s.account);
    assert_string_equal(s.token, "sg.x\"y\\z");
    session_release(&s);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | wc -l) -eq 1", dir);
    assert_int_equal(system(cmd), 0);

    /* a session file others can read is refused */
    assert_int_equal(chmod(file, 0644), 0);
    assert_int_equal(session_load(&s), ERR_FORBIDDEN);
    assert_null(s.token);
    assert_int_equal(chmod(file, 0600), 0);

    /* a session without a token, or not JSON, is damaged */
    write_file(file, "{\"url\":\"http://x\"}", 18);
    assert_int_equal(chmod(file, 0600), 0);
    assert_int_equal(session_load(&s), ERR_CORRUPT);
    write_file(file, "not json", 8);
    assert_int_equal(session_load(&s), ERR_CORRUPT);

    /* saving needs a url and a token */
    struct session bad = {.url = "http://x", .token = NULL};
    assert_int_equal(session_save(&bad), ERR_INVAL);

    assert_int_equal(session_remove(), 0);
    assert_int_equal(session_load(&s), ERR_NOT_FOUND);
    unsetenv("OIKOS_CONFIG_DIR");
}

static void
test_session_path(void **state)
{
    (void)state;
    char *saved_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    struct buf b;
    buf_init(&b, 4096);

    setenv("OIKOS_CONFIG_DIR", "/cfg/dir", 1);
    setenv("XDG_CONFIG_HOME", "/xdg", 1);
    setenv("HOME", "/home/u", 1);
    assert_int_equal(session_path(&b), 0);
    assert_string_equal(b.data, "/cfg/dir/session.json");

    unsetenv("OIKOS_CONFIG_DIR");
    buf_reset(&b);
    assert_int_equal(session_path(&b), 0);
    assert_string_equal(b.data, "/xdg/oikos/session.json");

    setenv("XDG_CONFIG_HOME", "relative/ignored", 1);
    buf_reset(&b);
    assert_int_equal(session_path(&b), 0);
    assert_string_equal(b.data, "/home/u/.config/oikos/session.json");

    unsetenv("XDG_CONFIG_HOME");
    buf_reset(&b);
    assert_int_equal(session_path(&b), 0);
    assert_string_equal(b.data, "/home/u/.config/oikos/session.json");

    buf_release(&b);
    if (saved_home)
        setenv("HOME", saved_home, 1);
    else
        unsetenv("HOME");
    free(saved_home);
}

/* ---- progress bar -------------------------------------------------------- */

static void
test_format_size(void **state)
{
    (void)state;
    static const struct {
        uint64_t n;
        const char *s;
    } cases[] = {
        {0, "0 B"},
        {1023, "1023 B"},
        {1024, "1.0 KiB"},
        {1536, "1.5 KiB"},
        {1048575, "1.0 MiB"},
        {10 * 1048576 + 104858, "10.1 MiB"},
        {(uint64_t)5 << 30, "5.0 GiB"},
        {UINT64_MAX, "16.0 EiB"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char out[32];
        cli_format_size(out, sizeof(out), cases[i].n);
        assert_string_equal(out, cases[i].s);
    }
}

static void
test_progress_format(void **state)
{
    (void)state;
    char out[512];
    const uint64_t sec = 1000000000u;

    /* half of 2 MiB in 2 s: 512 KiB/s, 2 s to go; 79 columns, the last one spare */
    size_t n = cli_progress_format(out, sizeof(out), 1048576, 2097152, 2 * sec, 80);
    assert_string_equal(out, " 50% [################                 ] "
                             "1.0 MiB/2.0 MiB  512.0 KiB/s  ETA 0:02");
    assert_int_equal(n, strlen(out));
    assert_true(n < 80);

    /* the bar never passes 50 columns on a wide terminal */
    cli_progress_format(out, sizeof(out), 0, 100, 0, 300);
    assert_string_equal(out, "  0% [                                                  ] "
                             "0 B/100 B  0 B/s  ETA --:--");

    /* done: a 60-column terminal leaves 21 for the bar */
    cli_progress_format(out, sizeof(out), 100, 100, sec, 60);
    assert_string_equal(out, "100% [#####################] 100 B/100 B  100 B/s  ETA 0:00");

    /* a narrow terminal: no bar at all */
    cli_progress_format(out, sizeof(out), 25, 100, sec, 40);
    assert_string_equal(out, " 25% 25 B/100 B  25 B/s  ETA 0:03");

    /* unknown total: bytes and rate */
    cli_progress_format(out, sizeof(out), 3 * 1048576, 0, 2 * sec, 80);
    assert_string_equal(out, "3.0 MiB  1.5 MiB/s");

    /* long ETAs use hours */
    cli_progress_format(out, sizeof(out), 1, 7200, sec, 40);
    assert_string_equal(out, "  0% 1 B/7.0 KiB  1 B/s  ETA 1:59:59");

    /* more than the total (a file that grew) is shown as the total */
    cli_progress_format(out, sizeof(out), 150, 100, sec, 40);
    assert_string_equal(out, "100% 100 B/100 B  150 B/s  ETA 0:00");

    /* a tiny buffer is never overrun and stays a C string */
    char tiny[8];
    memset(tiny, 'Z', sizeof(tiny));
    n = cli_progress_format(tiny, sizeof(tiny), 1048576, 2097152, 2 * sec, 80);
    assert_int_equal(n, 7);
    assert_string_equal(tiny, " 50% [#");
    assert_int_equal(cli_progress_format(tiny, 0, 1, 2, 1, 80), 0);
}

static void
test_progress_silent_off_terminal(void **state)
{
    (void)state;
    struct cli_progress p;
    char *err;
    /* stderr is a file inside run_oikos; check the same rule directly */
    int saved = dup(2);
    int fd = open(tmp_path(".bar"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);
    cli_progress_start(&p, 100);
    cli_progress_update(&p, 50);
    cli_progress_end(&p);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    assert_false(p.enabled);
    size_t len;
    err = read_file(tmp_path(".bar"), &len);
    assert_int_equal(len, 0);
    free(err);
}

/* ---- exit codes ---------------------------------------------------------- */

static void
test_usage_errors(void **state)
{
    (void)state;
    unsetenv("OIKOS_OPERATOR_TOKEN");
    EXPECT_USAGE("usage: oikos", "--frobnicate");
    EXPECT_USAGE("'nosuch' is not an oikos command", "nosuch");
    EXPECT_USAGE("no command 'nosuch'", "help", "nosuch");
    EXPECT_USAGE("which service?", "backup");
    EXPECT_USAGE("unknown service 'pictures'", "backup", "pictures", "x");
    EXPECT_USAGE("which files?", "backup", "photos");
    EXPECT_USAGE("option '--url' needs a value", "backup", "photos", "x", "--url");
    EXPECT_USAGE("unknown option '--force'", "backup", "--force", "photos", "x");
    EXPECT_USAGE("unknown option '-z'", "backup", "-z", "photos", "x");
    EXPECT_USAGE("cannot restore '../etc/passwd'", "restore", "contacts", "../etc/passwd");
    EXPECT_USAGE("cannot restore '/etc/passwd'", "restore", "contacts", "/etc/passwd");
    EXPECT_USAGE("which service?", "restore");
    EXPECT_USAGE("which service?", "ls");
    EXPECT_USAGE("unexpected argument 'more'", "ls", "photos", "more");
    EXPECT_USAGE("option '--json' takes no value", "ls", "--json=yes", "photos");
    EXPECT_USAGE("which account?", "login");
    EXPECT_USAGE("which country?", "signup");
    EXPECT_USAGE("country 'IND' is not a two-letter", "signup", "--country", "IND");
    EXPECT_USAGE("country 'I1' is not a two-letter", "signup", "--country", "I1");
    EXPECT_USAGE("unexpected argument 'now'", "logout", "now");
    EXPECT_USAGE("which one: init, unseal, seal or status?", "operator");
    EXPECT_USAGE("unknown operator command 'reboot'", "operator", "reboot");
    EXPECT_USAGE("'--shares' wants a number from 1 to 255, not '0'", "operator", "init", "--shares",
                 "0");
    EXPECT_USAGE("'--shares' wants a number from 1 to 255, not '5x'", "operator", "init",
                 "--shares", "5x");
    EXPECT_USAGE("'--threshold' wants a number", "operator", "init", "--threshold", "-1");
    EXPECT_USAGE("the threshold (6) cannot exceed the shares (5)", "operator", "init",
                 "--threshold", "6");
    EXPECT_USAGE("one share at a time", "operator", "unseal", "a", "b");
    EXPECT_USAGE("no operator token", "operator", "seal");
    EXPECT_USAGE("bad server URL 'ftp://x'", "operator", "status", "--url", "ftp://x");
    EXPECT_USAGE("usage: oikos operator status", "operator", "status", "--bogus");
}

static void
test_help_and_version(void **state)
{
    (void)state;
    char *out, *err;
    assert_int_equal(run_oikos(&out, NULL, "--version", NULL), 0);
    assert_string_equal(out, "oikos " OIKOS_VERSION "\n");
    free(out);

    assert_int_equal(run_oikos(&out, NULL, "--help", NULL), 0);
    assert_non_null(strstr(out, "exit status: 0 success, 1 failure, 2 usage error"));
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
        assert_non_null(strstr(out, commands[i]->name));
    free(out);

    /* no command at all: the overview, on stderr, and a usage error */
    assert_int_equal(run_oikos(&out, &err, NULL), CLI_EXIT_USAGE);
    assert_string_equal(out, "");
    assert_non_null(strstr(err, "usage: oikos"));
    free(out);
    free(err);

    /* every command, and every operator subcommand, answers --help and help CMD */
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
        char want[64];
        snprintf(want, sizeof(want), "usage: oikos %s", commands[i]->name);
        assert_int_equal(run_oikos(&out, NULL, commands[i]->name, "--help", NULL), 0);
        assert_non_null(strstr(out, want));
        free(out);
        assert_int_equal(run_oikos(&out, NULL, "help", commands[i]->name, NULL), 0);
        assert_non_null(strstr(out, want));
        free(out);
    }
    static const char *const subs[] = {"init", "unseal", "seal", "status"};
    for (size_t i = 0; i < ARRAY_SIZE(subs); i++) {
        char want[64];
        snprintf(want, sizeof(want), "usage: oikos operator %s", subs[i]);
        assert_int_equal(run_oikos(&out, NULL, "operator", subs[i], "-h", NULL), 0);
        assert_non_null(strstr(out, want));
        assert_null(strstr(out, "   or:")); /* only its own usage */
        free(out);
        assert_int_equal(run_oikos(&out, NULL, "help", "operator", subs[i], NULL), 0);
        assert_non_null(strstr(out, want));
        free(out);
    }
}

static void
test_network_failure_is_exit_1(void **state)
{
    (void)state;
    char *err;
    /* port 1 on loopback: nobody listens, the connection is refused */
    assert_int_equal(
        run_oikos(NULL, &err, "operator", "status", "--url", "http://127.0.0.1:1", NULL),
        CLI_EXIT_FAIL);
    assert_non_null(strstr(err, "oikos: cannot read the region's health: "));
    assert_non_null(strstr(err, "hint: is oikosd running at 'http://127.0.0.1:1'?"));
    free(err);

    /* a command that needs a session says how to get one */
    setenv("OIKOS_CONFIG_DIR", tmp_path("no-session"), 1);
    assert_int_equal(run_oikos(NULL, &err, "ls", "photos", NULL), CLI_EXIT_FAIL);
    assert_non_null(strstr(err, "oikos: not logged in\n"));
    free(err);
    unsetenv("OIKOS_CONFIG_DIR");
}

/* ---- a small HTTP/1.1 server --------------------------------------------- */

struct mock_req {
    char method[16];
    char path[4096];
    char headers[8192];
    struct buf body;
};

struct mock_resp {
    int status;
    char headers[1024]; /* extra lines, each ending in \r\n */
    struct buf body;
};

typedef void (*mock_handler)(const struct mock_req *, struct mock_resp *);

struct mock {
    int lfd, port;
    pthread_t th;
    mock_handler handler;
    int connections, requests;
    char url[64];
    struct mock_req last; /* the last request, body included */
};

static bool
send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}

/* Serves requests on one connection until the client closes it. */
static void
mock_serve(struct mock *m, int fd)
{
    struct buf in;
    buf_init(&in, 128 * 1024 * 1024);
    for (;;) {
        char *end;
        while (!(in.data && (end = strstr(in.data, "\r\n\r\n")))) {
            char chunk[65536];
            ssize_t r = recv(fd, chunk, sizeof(chunk), 0);
            if (r <= 0)
                goto out;
            assert_int_equal(buf_add(&in, chunk, (size_t)r), 0);
        }
        struct mock_req req;
        memset(&req, 0, sizeof(req));
        buf_init(&req.body, 128 * 1024 * 1024);
        size_t head_len = (size_t)(end - in.data) + 4;
        assert_int_equal(sscanf(in.data, "%15s %4095s", req.method, req.path), 2);
        snprintf(req.headers, sizeof(req.headers), "%.*s", (int)head_len, in.data);
        size_t clen = 0;
        const char *cl = strcasestr(req.headers, "\r\nContent-Length:");
        if (cl)
            clen = strtoul(cl + 17, NULL, 10);
        if (strcasestr(req.headers, "\r\nExpect: 100-continue") &&
            !send_all(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25))
            goto out_req;
        while (in.len < head_len + clen) {
            char chunk[65536];
            ssize_t r = recv(fd, chunk, sizeof(chunk), 0);
            if (r <= 0)
                goto out_req;
            assert_int_equal(buf_add(&in, chunk, (size_t)r), 0);
        }
        assert_int_equal(buf_add(&req.body, in.data + head_len, clen), 0);
        memmove(in.data, in.data + head_len + clen, in.len - head_len - clen);
        in.len -= head_len + clen;
        in.data[in.len] = 0;

        struct mock_resp resp;
        memset(&resp, 0, sizeof(resp));
        buf_init(&resp.body, 128 * 1024 * 1024);
        resp.status = 500;
        m->handler(&req, &resp);
        buf_release(&m->last.body);
        m->last = req;
        m->requests++;
        char head[2048];
        int hn = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s\r\n",
                          resp.status, resp.body.len, resp.headers);
        bool ok = send_all(fd, head, (size_t)hn) &&
                  (!resp.body.len || send_all(fd, resp.body.data, resp.body.len));
        buf_release(&resp.body);
        if (!ok)
            goto out;
        continue;
    out_req:
        buf_release(&req.body);
        goto out;
    }
out:
    buf_release(&in);
}

static void *
mock_thread(void *arg)
{
    struct mock *m = arg;
    for (;;) {
        int fd = accept(m->lfd, NULL, NULL);
        if (fd < 0)
            break;
        m->connections++;
        mock_serve(m, fd);
        close(fd);
    }
    return NULL;
}

static void
mock_start(struct mock *m, mock_handler h)
{
    memset(m, 0, sizeof(*m));
    m->handler = h;
    m->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(m->lfd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    assert_int_equal(bind(m->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(m->lfd, 8), 0);
    assert_int_equal(getsockname(m->lfd, (struct sockaddr *)&sa, &sl), 0);
    m->port = ntohs(sa.sin_port);
    snprintf(m->url, sizeof(m->url), "http://127.0.0.1:%d", m->port);
    buf_init(&m->last.body, 1);
    assert_int_equal(pthread_create(&m->th, NULL, mock_thread, m), 0);
}

/* Stops the server; every client must have been freed (connections closed). */
static void
mock_stop(struct mock *m)
{
    shutdown(m->lfd, SHUT_RDWR);
    pthread_join(m->th, NULL);
    close(m->lfd);
    buf_release(&m->last.body);
}

static void
resp_json(struct mock_resp *r, int status, const char *json)
{
    r->status = status;
    snprintf(r->headers, sizeof(r->headers), "Content-Type: application/json\r\n");
    assert_int_equal(buf_adds(&r->body, json), 0);
}

static void
add_header(struct mock_resp *r, const char *line)
{
    size_t n = strlen(r->headers);
    snprintf(r->headers + n, sizeof(r->headers) - n, "%s\r\n", line);
}

/* ---- liboikos against the mock ------------------------------------------- */

static void
h_errors(const struct mock_req *q, struct mock_resp *r)
{
    if (!strcmp(q->path, "/v1/sessions")) {
        resp_json(r, 429,
                  "{\"error\":{\"code\":\"rate_limited\",\"message\":\"too many attempts\"}}");
        add_header(r, "Retry-After: 42");
    } else if (!strcmp(q->path, "/v1/me/data/photos")) {
        resp_json(r, 503, "{\"error\":{\"code\":\"sealed\",\"message\":\"the region is sealed\"}}");
    } else if (!strcmp(q->path, "/plain")) {
        r->status = 502;
        assert_int_equal(buf_adds(&r->body, "<html>bad gateway</html>"), 0);
    } else if (!strcmp(q->path, "/huge")) {
        r->status = 200;
        assert_int_equal(buf_grow(&r->body, OC_JSON_MAX + 1), 0);
        memset(r->body.data, ' ', OC_JSON_MAX + 1);
        r->body.len = OC_JSON_MAX + 1;
    } else {
        resp_json(r, 200, "{\"ok\":true}");
    }
}

static void
test_client_errors(void **state)
{
    (void)state;
    struct mock m;
    struct oc *c;
    struct oc_resp r;
    mock_start(&m, h_errors);
    assert_int_equal(oc_new(&c, m.url), 0);
    assert_int_equal(oc_set_token(c, "in.secret"), 0);

    json_t *body = json_pack("{s:s, s:s}", "account", "in-1", "password", "pw");
    assert_int_equal(oc_call(c, &r, "POST", "/v1/sessions", body), 0);
    json_decref(body);
    assert_int_equal(r.status, 429);
    assert_string_equal(r.code, "rate_limited");
    assert_string_equal(r.message, "too many attempts");
    assert_int_equal(r.retry_after, 42);
    assert_string_equal(m.last.method, "POST");
    assert_non_null(strstr(m.last.headers, "\r\nAuthorization: Bearer in.secret\r\n"));
    assert_non_null(strstr(m.last.headers, "\r\nContent-Type: application/json\r\n"));
    assert_string_equal(m.last.body.data, "{\"account\":\"in-1\",\"password\":\"pw\"}");
    oc_resp_release(&r);

    assert_int_equal(oc_call(c, &r, "GET", "/v1/me/data/photos", NULL), 0);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.code, "sealed");
    assert_int_equal(r.retry_after, -1);
    oc_resp_release(&r);

    /* not JSON: the status alone */
    assert_int_equal(oc_call(c, &r, "DELETE", "/plain", NULL), 0);
    assert_string_equal(m.last.method, "DELETE");
    assert_int_equal(r.status, 502);
    assert_null(r.json);
    assert_string_equal(r.code, "");
    oc_resp_release(&r);

    /* more than 16 MiB of JSON is refused, not read */
    assert_int_equal(oc_call(c, &r, "GET", "/huge", NULL), ERR_LIMIT);
    assert_non_null(strstr(oc_errstr(c), "larger than 16 MiB"));
    oc_resp_release(&r);

    /* and the handle still works afterwards */
    assert_int_equal(oc_call(c, &r, "GET", "/ok", NULL), 0);
    assert_int_equal(r.status, 200);
    assert_true(json_is_true(json_object_get(r.json, "ok")));
    oc_resp_release(&r);

    oc_free(c);
    mock_stop(&m);
}

static void
h_echo(const struct mock_req *q, struct mock_resp *r)
{
    if (!strcmp(q->method, "PUT")) {
        char json[128];
        snprintf(json, sizeof(json), "{\"etag\":\"e1\",\"version\":1,\"size\":%zu}", q->body.len);
        resp_json(r, 201, json);
    } else if (!strcmp(q->path, "/v1/me/data/photos/missing")) {
        resp_json(r, 404, "{\"error\":{\"code\":\"not_found\",\"message\":\"no such object\"}}");
    } else if (!strcmp(q->method, "GET")) {
        /* serves back the last upload, whatever is asked */
        r->status = 200;
        snprintf(r->headers, sizeof(r->headers), "ETag: \"e1\"\r\n");
        size_t len;
        char *data = read_file(tmp_path("upload.bin"), &len);
        assert_non_null(data);
        assert_int_equal(buf_add(&r->body, data, len), 0);
        free(data);
    } else {
        resp_json(r, 200, "{}");
    }
}

struct prog_seen {
    uint64_t last, total;
    int calls;
};

static int
record_progress(void *arg, uint64_t now, uint64_t total)
{
    struct prog_seen *p = arg;
    assert_true(now >= p->last || p->calls == 0);
    p->last = now;
    p->total = total;
    p->calls++;
    return 0;
}

static void
test_client_stream(void **state)
{
    (void)state;
    struct mock m;
    struct oc *c;
    struct oc_resp r;
    struct buf path;
    const size_t size = 3 * 1024 * 1024 + 17;

    uint8_t *data = malloc(size);
    for (size_t i = 0; i < size; i++)
        data[i] = (uint8_t)(i * 7 + i / 1000);
    write_file(tmp_path("upload.bin"), data, size);

    mock_start(&m, h_echo);
    assert_int_equal(oc_new(&c, m.url), 0);
    assert_int_equal(oc_set_token(c, "in.t"), 0);

    buf_init(&path, 4096);
    assert_int_equal(buf_adds(&path, "/v1/me/data/photos/"), 0);
    assert_int_equal(oc_escape(&path, "dir/caf\xc3\xa9 1.jpg"), 0);
    assert_string_equal(path.data, "/v1/me/data/photos/dir%2Fcaf%C3%A9%201.jpg");

    struct prog_seen seen = {0};
    int fd = open(tmp_path("upload.bin"), O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(oc_put_fd(c, &r, path.data, fd, size, record_progress, &seen), 0);
    close(fd);
    assert_int_equal(r.status, 201);
    assert_int_equal(json_integer_value(json_object_get(r.json, "size")), size);
    assert_string_equal(m.last.method, "PUT");
    assert_string_equal(m.last.path, path.data);
    assert_non_null(strstr(m.last.headers, "\r\nContent-Type: application/octet-stream\r\n"));
    assert_int_equal(m.last.body.len, size);
    assert_memory_equal(m.last.body.data, data, size);
    assert_true(seen.calls > 0);
    assert_int_equal(seen.last, size);
    assert_int_equal(seen.total, size);
    oc_resp_release(&r);

    /* download to a file */
    struct prog_seen down = {0};
    fd = open(tmp_path("download.bin"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_int_equal(oc_get_fd(c, &r, path.data, fd, record_progress, &down), 0);
    close(fd);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.etag, "\"e1\"");
    assert_int_equal(r.body_size, size);
    assert_int_equal(down.last, size);
    size_t got;
    char *back = read_file(tmp_path("download.bin"), &got);
    assert_int_equal(got, size);
    assert_memory_equal(back, data, size);
    free(back);
    oc_resp_release(&r);

    /* an error answer is not written to the file */
    fd = open(tmp_path("download.bin"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_int_equal(oc_get_fd(c, &r, "/v1/me/data/photos/missing", fd, NULL, NULL), 0);
    close(fd);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.code, "not_found");
    back = read_file(tmp_path("download.bin"), &got);
    assert_int_equal(got, 0);
    free(back);
    oc_resp_release(&r);

    /* a file shorter than announced fails locally, with nothing claimed sent */
    fd = open(tmp_path("upload.bin"), O_RDONLY);
    assert_int_equal(oc_put_fd(c, &r, path.data, fd, size + 100, NULL, NULL), ERR_IO);
    close(fd);
    assert_non_null(strstr(oc_errstr(c), "shrank"));
    oc_resp_release(&r);

    oc_free(c);
    mock_stop(&m);
    /* everything above went over connections that were kept alive and reused */
    assert_int_equal(m.connections, 1);
    assert_int_equal(m.requests, 3); /* the short upload never completed */
    buf_release(&path);
    free(data);
}

static void
test_client_keepalive(void **state)
{
    (void)state;
    struct mock m;
    struct oc *c;
    struct oc_resp r;
    mock_start(&m, h_echo);
    assert_int_equal(oc_new(&c, m.url), 0);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(oc_call(c, &r, "GET", "/v1/sys/health", NULL), 0);
        assert_int_equal(r.status, 200);
        oc_resp_release(&r);
    }
    oc_free(c);
    mock_stop(&m);
    assert_int_equal(m.requests, 5);
    assert_int_equal(m.connections, 1);
}

/* Region "in" lives under /in on the same server; the rest redirects there. */
static char redirect_url[128];

static void
h_redirect(const struct mock_req *q, struct mock_resp *r)
{
    if (!strncmp(q->path, "/in/", 4)) {
        resp_json(r, 201, "{\"account\":\"in-1\",\"region\":\"in\"}");
        return;
    }
    char json[512];
    if (strstr(q->body.data ? q->body.data : "", "\"location-only\""))
        snprintf(json, sizeof(json),
                 "{\"error\":{\"code\":\"wrong_region\",\"message\":\"home is in\"}}");
    else
        snprintf(json, sizeof(json),
                 "{\"error\":{\"code\":\"wrong_region\",\"message\":\"home is in\","
                 "\"region\":\"in\",\"url\":\"%s\"}}",
                 redirect_url);
    resp_json(r, 308, json);
    char loc[4800];
    snprintf(loc, sizeof(loc), "Location: %s%s", redirect_url, q->path);
    add_header(r, loc);
}

static void
test_client_redirect(void **state)
{
    (void)state;
    struct mock m;
    struct oc *c;
    struct oc_resp r;
    mock_start(&m, h_redirect);
    snprintf(redirect_url, sizeof(redirect_url), "%s/in", m.url);
    assert_int_equal(oc_new(&c, m.url), 0);
    json_t *body = json_pack("{s:s}", "country", "IN");
    assert_int_equal(oc_call(c, &r, "POST", "/v1/accounts", body), 0);
    assert_int_equal(r.status, 201);
    assert_string_equal(oc_url(c), redirect_url);
    assert_string_equal(m.last.path, "/in/v1/accounts");
    assert_string_equal(m.last.body.data, "{\"country\":\"IN\"}");
    oc_resp_release(&r);

    /* without "url" in the error, the Location header tells the way */
    assert_int_equal(oc_set_url(c, m.url), 0);
    json_t *body2 = json_pack("{s:s}", "location-only", "yes");
    assert_int_equal(oc_call(c, &r, "POST", "/v1/sessions", body2), 0);
    json_decref(body2);
    assert_int_equal(r.status, 201);
    assert_string_equal(oc_url(c), redirect_url);
    assert_string_equal(m.last.path, "/in/v1/sessions");
    oc_resp_release(&r);

    /* not followed when told so: the 308 comes back as it is */
    assert_int_equal(oc_set_url(c, m.url), 0);
    oc_set_follow_region(c, false);
    assert_int_equal(oc_call(c, &r, "POST", "/v1/accounts", body), 0);
    assert_int_equal(r.status, 308);
    assert_string_equal(r.code, "wrong_region");
    assert_string_equal(oc_url(c), m.url);
    oc_resp_release(&r);
    json_decref(body);
    oc_free(c);
    mock_stop(&m);
}

static void
test_client_urls(void **state)
{
    (void)state;
    struct oc *c;
    assert_int_equal(oc_new(&c, "http://127.0.0.1:7700///"), 0);
    assert_string_equal(oc_url(c), "http://127.0.0.1:7700");
    assert_int_equal(oc_set_url(c, "HTTPS://in.example/base/"), 0);
    assert_string_equal(oc_url(c), "HTTPS://in.example/base");
    assert_int_equal(oc_set_url(c, "ftp://x"), ERR_INVAL);
    assert_int_equal(oc_set_url(c, "http://"), ERR_INVAL);
    assert_int_equal(oc_set_url(c, "http://a b"), ERR_INVAL);
    assert_int_equal(oc_set_url(c, "http://x/?q"), ERR_INVAL);
    assert_string_equal(oc_url(c), "HTTPS://in.example/base");
    assert_int_equal(oc_set_token(c, "bad\r\nX-Injected: 1"), ERR_INVAL);
    oc_free(c);
    assert_int_equal(oc_new(&c, "127.0.0.1:7700"), ERR_INVAL);
}

/* ---- the commands against the mock --------------------------------------- */

/* A one-service store: photos, in name order, one item per feed page. */
#define STORE_MAX 16
static struct {
    char name[1100];
    struct buf data;
} store[STORE_MAX];
static size_t store_n;

static void
url_decode(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    for (; *in && n + 1 < cap; in++) {
        if (in[0] == '%' && in[1] && in[2]) {
            char hex[3] = {in[1], in[2], 0};
            out[n++] = (char)strtoul(hex, NULL, 16);
            in += 2;
        } else {
            out[n++] = *in;
        }
    }
    out[n] = 0;
}

static void
h_store(const struct mock_req *q, struct mock_resp *r)
{
    static const char prefix[] = "/v1/me/data/photos";
    if (!strstr(q->headers, "\r\nAuthorization: Bearer in.tok\r\n")) {
        resp_json(r, 401, "{\"error\":{\"code\":\"unauthorized\",\"message\":\"bad token\"}}");
        return;
    }
    if (!strcmp(q->path, "/v1/me/consents")) {
        resp_json(r, 200,
                  "{\"consents\":[{\"service\":\"photos\",\"granted\":true},"
                  "{\"service\":\"messages\",\"granted\":false}]}");
        return;
    }
    if (!strncmp(q->path, "/v1/me/data/messages", 20)) {
        resp_json(r, 403,
                  "{\"error\":{\"code\":\"consent_required\",\"message\":\"the service "
                  "is off for this account\"}}");
        return;
    }
    if (strncmp(q->path, prefix, strlen(prefix))) {
        resp_json(r, 404, "{\"error\":{\"code\":\"not_found\",\"message\":\"no route\"}}");
        return;
    }
    const char *rest = q->path + strlen(prefix);
    if (!strcmp(q->method, "GET") && (!*rest || *rest == '?')) {
        /* the feed: one object per page, then a tombstone, cursor = next index */
        size_t since = 0;
        const char *s = strstr(rest, "since=");
        if (s)
            since = strtoul(s + 6, NULL, 10);
        struct buf j;
        buf_init(&j, 1 << 20);
        assert_int_equal(buf_adds(&j, "{\"items\":["), 0);
        if (since < store_n)
            assert_int_equal(buf_addf(&j,
                                      "{\"name\":\"%s\",\"etag\":\"e\",\"size\":%zu,"
                                      "\"deleted\":false},",
                                      store[since].name, store[since].data.len),
                             0);
        assert_int_equal(buf_addf(&j,
                                  "{\"name\":\"gone\",\"etag\":\"\",\"size\":0,"
                                  "\"deleted\":true}],\"cursor\":\"%zu\",\"more\":%s}",
                                  since + 1, since + 1 < store_n ? "true" : "false"),
                         0);
        resp_json(r, 200, j.data);
        buf_release(&j);
        return;
    }
    char name[1100];
    url_decode(rest + 1, name, sizeof(name));
    size_t i;
    for (i = 0; i < store_n && strcmp(store[i].name, name); i++)
        ;
    if (!strcmp(q->method, "PUT")) {
        bool fresh = i == store_n;
        if (fresh) {
            assert_true(store_n < STORE_MAX);
            snprintf(store[store_n].name, sizeof(store[store_n].name), "%s", name);
            buf_init(&store[store_n].data, 64 << 20);
            store_n++;
        }
        buf_reset(&store[i].data);
        assert_int_equal(buf_add(&store[i].data, q->body.data ? q->body.data : "", q->body.len), 0);
        char json[128];
        snprintf(json, sizeof(json), "{\"etag\":\"e\",\"version\":1,\"size\":%zu}", q->body.len);
        resp_json(r, fresh ? 201 : 200, json);
        /* keep the store in name order, as the feed promises nothing else */
        for (size_t a = 0; a < store_n; a++)
            for (size_t b = a + 1; b < store_n; b++)
                if (strcmp(store[a].name, store[b].name) > 0) {
                    char tmp[sizeof(store[0].name)];
                    struct buf t = store[a].data;
                    memcpy(tmp, store[a].name, sizeof(tmp));
                    memcpy(store[a].name, store[b].name, sizeof(tmp));
                    memcpy(store[b].name, tmp, sizeof(tmp));
                    store[a].data = store[b].data;
                    store[b].data = t;
                }
        return;
    }
    if (!strcmp(q->method, "GET") && i < store_n) {
        r->status = 200;
        assert_int_equal(
            buf_add(&r->body, store[i].data.data ? store[i].data.data : "", store[i].data.len), 0);
        return;
    }
    resp_json(r, 404, "{\"error\":{\"code\":\"not_found\",\"message\":\"no such object\"}}");
}

static void
test_backup_restore_roundtrip(void **state)
{
    (void)state;
    struct mock m;
    char *out, *err;
    char cfg[300], src[300];
    mock_start(&m, h_store);
    snprintf(cfg, sizeof(cfg), "%s/rt-cfg", tmp_root);
    snprintf(src, sizeof(src), "%s/rt-src", tmp_root);
    setenv("OIKOS_CONFIG_DIR", cfg, 1);
    unsetenv("OIKOS_URL");
    struct session s = {.url = m.url, .account = "in-1", .token = "in.tok"};
    assert_int_equal(session_save(&s), 0);

    /* a tree of files: backup walks it, names are relative to where we stand */
    char cwd[1024];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(tmp_root), 0);
    assert_int_equal(mkdir("rt-src", 0700), 0);
    assert_int_equal(mkdir("rt-src/sub", 0700), 0);
    write_file("rt-src/a.vcf", "BEGIN:VCARD\r\n", 13);
    write_file("rt-src/sub/b c.jpg", "\x00\x01\x02", 3);
    write_file("rt-src/empty", "", 0);
    assert_int_equal(symlink("/etc/passwd", "rt-src/link"), 0);

    assert_int_equal(run_oikos(&out, &err, "backup", "photos", "./rt-src", NULL), 0);
    assert_string_equal(out, "backed up 3 of 3 files (16 B) to 'photos'\n");
    assert_non_null(strstr(err, "skipping './rt-src/link': not a regular file"));
    free(out);
    free(err);
    assert_int_equal(store_n, 3);
    assert_string_equal(store[0].name, "rt-src/a.vcf");
    assert_string_equal(store[1].name, "rt-src/empty");
    assert_string_equal(store[2].name, "rt-src/sub/b c.jpg");
    assert_memory_equal(store[2].data.data, "\x00\x01\x02", 3);

    /* ls reads every page of the feed and leaves the tombstone out */
    assert_int_equal(run_oikos(&out, NULL, "ls", "photos", NULL), 0);
    assert_string_equal(out, "13  rt-src/a.vcf\n"
                             " 0  rt-src/empty\n"
                             " 3  rt-src/sub/b c.jpg\n");
    free(out);
    assert_string_equal(m.last.path, "/v1/me/data/photos?since=2");

    assert_int_equal(run_oikos(&out, NULL, "ls", "--json", "photos", NULL), 0);
    json_t *j = json_loads(out, 0, NULL);
    assert_true(json_is_array(j));
    assert_int_equal(json_array_size(j), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 2), "name")),
                        "rt-src/sub/b c.jpg");
    json_decref(j);
    free(out);

    /* restore everything into a new directory, files 0600 */
    assert_int_equal(run_oikos(&out, &err, "restore", "photos", "--dir", "rt-out", NULL), 0);
    assert_string_equal(out, "restored 3 of 3 files (16 B) from 'photos' into 'rt-out'\n");
    free(out);
    free(err);
    size_t len;
    char *data = read_file("rt-out/rt-src/sub/b c.jpg", &len);
    assert_int_equal(len, 3);
    assert_memory_equal(data, "\x00\x01\x02", 3);
    free(data);
    data = read_file("rt-out/rt-src/empty", &len);
    assert_int_equal(len, 0);
    free(data);
    struct stat st;
    assert_int_equal(stat("rt-out/rt-src/a.vcf", &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(system("test -z \"$(find rt-out -name '.oikos-*')\""), 0);

    /* a symbolic link planted in the target is not followed */
    assert_int_equal(mkdir("rt-out2", 0700), 0);
    assert_int_equal(mkdir("rt-elsewhere", 0700), 0);
    assert_int_equal(symlink("../rt-elsewhere", "rt-out2/rt-src"), 0);
    assert_int_equal(
        run_oikos(&out, &err, "restore", "photos", "--dir", "rt-out2", "rt-src/a.vcf", NULL),
        CLI_EXIT_FAIL);
    assert_non_null(strstr(err, "cannot restore 'rt-src/a.vcf': Not a directory"));
    assert_int_equal(system("test -z \"$(ls -A rt-elsewhere)\""), 0);
    free(out);
    free(err);

    /* one missing object fails alone; the others are restored */
    assert_int_equal(run_oikos(&out, &err, "restore", "photos", "--dir", "rt-out3", "nope",
                               "rt-src/a.vcf", NULL),
                     CLI_EXIT_FAIL);
    assert_string_equal(out, "restored 1 of 2 files (13 B) from 'photos' into 'rt-out3'\n");
    assert_non_null(strstr(err, "oikos: cannot restore 'nope': no such object (not_found)\n"));
    free(out);
    free(err);

    /* a service that is off: the client asks first and sends nothing of it */
    int asked = m.requests;
    assert_int_equal(run_oikos(&out, &err, "backup", "messages", "rt-src/a.vcf", NULL),
                     CLI_EXIT_FAIL);
    assert_non_null(strstr(err, "oikos: 'messages' is off for this account: nothing was sent\n"));
    assert_non_null(strstr(err, "hint: turn it on with 'oikos consent on messages'"));
    assert_int_equal(m.requests, asked + 1);
    assert_string_equal(m.last.method, "GET");
    assert_string_equal(m.last.path, "/v1/me/consents");
    free(out);
    free(err);
    /* and a read of it: the server's words, and the way out */
    assert_int_equal(run_oikos(&out, &err, "ls", "messages", NULL), CLI_EXIT_FAIL);
    assert_non_null(strstr(err, "oikos: cannot list 'messages': the service is off for "
                                "this account (consent_required)\n"));
    assert_non_null(strstr(err, "hint: the service is off for this account: nothing of it"));
    free(out);
    free(err);

    /* a missing file stops the backup before anything is sent */
    int before = m.requests;
    assert_int_equal(run_oikos(&out, &err, "backup", "photos", "rt-src/a.vcf", "nope", NULL),
                     CLI_EXIT_FAIL);
    assert_non_null(strstr(err, "oikos: cannot read 'nope': No such file or directory\n"));
    assert_int_equal(m.requests, before);
    free(out);
    free(err);

    /* an expired token */
    struct session bad = {.url = m.url, .account = "in-1", .token = "in.old"};
    assert_int_equal(session_save(&bad), 0);
    assert_int_equal(run_oikos(NULL, &err, "ls", "photos", NULL), CLI_EXIT_FAIL);
    assert_non_null(strstr(err, "oikos: cannot list 'photos': bad token (unauthorized)\n"));
    free(err);

    assert_int_equal(chdir(cwd), 0);
    unsetenv("OIKOS_CONFIG_DIR");
    for (size_t i = 0; i < store_n; i++)
        buf_release(&store[i].data);
    store_n = 0;
    mock_stop(&m);
}

static void
h_session(const struct mock_req *q, struct mock_resp *r)
{
    if (!strcmp(q->path, "/v1/sessions")) {
        if (strstr(q->body.data, "\"password\":\"right\""))
            resp_json(r, 201, "{\"token\":\"in.fresh\"}");
        else if (strstr(q->body.data, "\"password\":\"slow\"")) {
            resp_json(r, 429,
                      "{\"error\":{\"code\":\"rate_limited\",\"message\":\"too many "
                      "attempts\"}}");
            add_header(r, "Retry-After: 90");
        } else
            resp_json(r, 401,
                      "{\"error\":{\"code\":\"unauthorized\",\"message\":\"wrong "
                      "account or password\"}}");
    } else if (!strcmp(q->path, "/v1/sessions/current") && !strcmp(q->method, "DELETE")) {
        r->status = 204;
    } else {
        resp_json(r, 503,
                  "{\"error\":{\"code\":\"sealed\",\"message\":\"the region is "
                  "sealed\"}}");
    }
}

static void
test_login_logout(void **state)
{
    (void)state;
    struct mock m;
    char *out, *err;
    char cfg[300], pwfile[300];
    mock_start(&m, h_session);
    snprintf(cfg, sizeof(cfg), "%s/ll-cfg", tmp_root);
    snprintf(pwfile, sizeof(pwfile), "%s/pw", tmp_root);
    setenv("OIKOS_CONFIG_DIR", cfg, 1);
    setenv("OIKOS_URL", m.url, 1);
    unsetenv("OIKOS_PASSWORD");

    write_file(pwfile, "wrong\n", 6);
    assert_int_equal(
        run_oikos(NULL, &err, "login", "--account", "in-1", "--password-file", pwfile, NULL),
        CLI_EXIT_FAIL);
    assert_string_equal(err, "oikos: cannot log in: wrong account or password (unauthorized)\n");
    free(err);

    setenv("OIKOS_PASSWORD", "slow", 1);
    assert_int_equal(run_oikos(NULL, &err, "login", "--account", "in-1", NULL), CLI_EXIT_FAIL);
    assert_string_equal(err, "oikos: cannot log in: too many attempts (rate_limited)\n"
                             "hint: wait 90 seconds before trying again\n");
    free(err);

    /* --password-file wins over the environment; its newline is not part of it */
    write_file(pwfile, "right\r\nignored\n", 15);
    assert_int_equal(
        run_oikos(&out, NULL, "login", "--account", "in-1", "--password-file", pwfile, NULL), 0);
    free(out);
    assert_string_equal(m.last.body.data, "{\"account\":\"in-1\",\"password\":\"right\"}");
    struct session s;
    assert_int_equal(session_load(&s), 0);
    assert_string_equal(s.url, m.url);
    assert_string_equal(s.account, "in-1");
    assert_string_equal(s.token, "in.fresh");
    session_release(&s);

    /* a sealed region says so and how to unseal */
    assert_int_equal(run_oikos(NULL, &err, "ls", "photos", NULL), CLI_EXIT_FAIL);
    assert_non_null(strstr(err, "oikos: cannot list 'photos': the region is sealed (sealed)\n"));
    assert_non_null(strstr(err, "oikos operator unseal"));
    free(err);

    assert_int_equal(run_oikos(&out, NULL, "logout", NULL), 0);
    assert_string_equal(out, "logged out\n");
    assert_string_equal(m.last.method, "DELETE");
    assert_non_null(strstr(m.last.headers, "\r\nAuthorization: Bearer in.fresh\r\n"));
    free(out);
    assert_int_equal(session_load(&s), ERR_NOT_FOUND);

    unsetenv("OIKOS_PASSWORD");
    unsetenv("OIKOS_URL");
    unsetenv("OIKOS_CONFIG_DIR");
    mock_stop(&m);
}

static void
h_feed_stuck(const struct mock_req *q, struct mock_resp *r)
{
    (void)q;
    resp_json(r, 200, "{\"items\":[],\"cursor\":\"same\",\"more\":true}");
}

static void
h_feed_dedupe(const struct mock_req *q, struct mock_resp *r)
{
    if (!strstr(q->path, "since="))
        resp_json(r, 200,
                  "{\"items\":[{\"name\":\"a\",\"etag\":\"1\",\"size\":1,\"deleted\":false},"
                  "{\"name\":\"ghost\",\"etag\":\"1\",\"size\":5,\"deleted\":false}],"
                  "\"cursor\":\"c 1\",\"more\":true}");
    else if (strstr(q->path, "since=c%201"))
        resp_json(r, 200,
                  "{\"items\":[{\"name\":\"ghost\",\"etag\":\"\",\"size\":0,\"deleted\":true},"
                  "{\"name\":\"a\",\"etag\":\"2\",\"size\":2,\"deleted\":false}],"
                  "\"cursor\":\"c2\",\"more\":false}");
    else
        resp_json(r, 400, "{\"error\":{\"code\":\"bad_request\",\"message\":\"bad cursor\"}}");
}

static void
test_list_objects(void **state)
{
    (void)state;
    struct mock m;
    struct oc *c;
    struct cli_objects objs;

    mock_start(&m, h_feed_dedupe);
    assert_int_equal(oc_new(&c, m.url), 0);
    assert_int_equal(cli_list_objects(c, "contacts", &objs), 0);
    assert_int_equal(objs.n, 1);
    assert_string_equal(objs.v[0].name, "a");
    assert_string_equal(objs.v[0].etag, "2");
    assert_int_equal(objs.v[0].size, 2);
    cli_objects_release(&objs);
    oc_free(c);
    mock_stop(&m);

    mock_start(&m, h_feed_stuck);
    assert_int_equal(oc_new(&c, m.url), 0);
    int saved = dup(2);
    int fd = open(tmp_path(".feed"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);
    int rc = cli_list_objects(c, "contacts", &objs);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    assert_int_equal(rc, CLI_EXIT_FAIL);
    assert_int_equal(objs.n, 0);
    char *err = read_file(tmp_path(".feed"), NULL);
    assert_string_equal(err, "oikos: cannot list 'contacts': the change feed does not advance\n");
    free(err);
    oc_free(c);
    mock_stop(&m);
}

static void
h_feed_evil(const struct mock_req *q, struct mock_resp *r)
{
    if (!strcmp(q->path, "/v1/me/data/contacts/ok")) {
        r->status = 200;
        assert_int_equal(buf_adds(&r->body, "ok"), 0);
    } else if (!strcmp(q->path, "/v1/me/data/contacts")) {
        resp_json(r, 200,
                  "{\"items\":[{\"name\":\"../escape\",\"size\":1},"
                  "{\"name\":\"ok\",\"size\":2},{\"name\":\"bell\\u0007\\u001b[2J\",\"size\":3},"
                  "{\"name\":\"/abs\",\"size\":4}],\"cursor\":\"1\"}");
    } else {
        resp_json(r, 500, "{\"error\":{\"code\":\"internal\",\"message\":\"unexpected\"}}");
    }
}

static void
test_hostile_names(void **state)
{
    (void)state;
    struct mock m;
    char *out, *err;
    char cfg[300], dir[300];
    mock_start(&m, h_feed_evil);
    snprintf(cfg, sizeof(cfg), "%s/hn-cfg", tmp_root);
    snprintf(dir, sizeof(dir), "%s/hn/out", tmp_root);
    assert_int_equal(mkdir(tmp_path("hn"), 0700), 0);
    setenv("OIKOS_CONFIG_DIR", cfg, 1);
    struct session s = {.url = m.url, .account = "in-1", .token = "in.tok"};
    assert_int_equal(session_save(&s), 0);

    /* ls never sends the terminal a control character */
    assert_int_equal(run_oikos(&out, NULL, "ls", "contacts", NULL), 0);
    assert_string_equal(out, "1  ../escape\n"
                             "4  /abs\n"
                             "3  bell??[2J\n"
                             "2  ok\n");
    free(out);

    /* restore writes the safe one and nothing outside the directory */
    assert_int_equal(run_oikos(&out, &err, "restore", "contacts", "--dir", dir, NULL),
                     CLI_EXIT_FAIL);
    assert_non_null(strstr(err, "oikos: skipping '../escape': not a safe file name"));
    assert_non_null(strstr(err, "oikos: skipping '/abs': not a safe file name"));
    assert_non_null(strstr(err, "oikos: skipping 'bell??[2J': not a safe file name"));
    assert_non_null(strstr(out, "restored 1 of 4 files (2 B)"));
    free(out);
    free(err);
    size_t len;
    char *data = read_file(tmp_path("hn/out/ok"), &len);
    assert_int_equal(len, 2);
    free(data);
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "test \"$(ls -A '%s/hn')\" = out && test \"$(ls -A '%s')\" = ok",
             tmp_root, dir);
    assert_int_equal(system(cmd), 0);

    unsetenv("OIKOS_CONFIG_DIR");
    mock_stop(&m);
}

static int
setup_all(void **state)
{
    (void)state;
    snprintf(tmp_root, sizeof(tmp_root), "/tmp/test_cli.XXXXXX");
    if (!mkdtemp(tmp_root))
        return -1;
    unsetenv("OIKOS_URL");
    unsetenv("OIKOS_PASSWORD");
    unsetenv("OIKOS_OPERATOR_TOKEN");
    unsetenv("OIKOS_CONFIG_DIR");
    return oc_global_init();
}

static int
teardown_all(void **state)
{
    (void)state;
    rm_rf(tmp_root);
    oc_global_cleanup();
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_normalise),
        cmocka_unit_test(test_name_safe),
        cmocka_unit_test(test_services),
        cmocka_unit_test(test_session_roundtrip),
        cmocka_unit_test(test_session_path),
        cmocka_unit_test(test_format_size),
        cmocka_unit_test(test_progress_format),
        cmocka_unit_test(test_progress_silent_off_terminal),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_network_failure_is_exit_1),
        cmocka_unit_test(test_client_errors),
        cmocka_unit_test(test_client_stream),
        cmocka_unit_test(test_client_keepalive),
        cmocka_unit_test(test_client_redirect),
        cmocka_unit_test(test_client_urls),
        cmocka_unit_test(test_list_objects),
        cmocka_unit_test(test_backup_restore_roundtrip),
        cmocka_unit_test(test_login_logout),
        cmocka_unit_test(test_hostile_names),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
