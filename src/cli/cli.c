/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.c: what the commands of `oikos` share (see cli.h): help and error
 * messages, the URL and session rules, object names, secrets and the
 * progress bar, on top of liboikos (client/), base and the terminal
 * (termios, ioctl). Secrets are read with read(2) straight into
 * sodium_malloc memory, never through stdio buffers, and wiped on every
 * path; the caller owns them until cli_secret_free. The terminal's echo is
 * restored even when a signal interrupts a prompt. Single-threaded: the
 * prompt keeps the terminal state in statics for its signal handler.
 */
#include "base/common.h"

#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "base/util.h"
#include "cli/cli.h"

static const char *const cli_services[] = {"contacts", "messages", "calllog",
                                           "settings", "photos",   "messaging"};

/* ---- help and errors ---------------------------------------------------- */

static void
usage_lines(const struct cli_cmd *cmd, FILE *out)
{
    const char *u = cmd->usage;
    bool first = true;
    while (*u) {
        const char *nl = strchr(u, '\n');
        int n = nl ? (int)(nl - u) : (int)strlen(u);
        fprintf(out, "%s oikos %.*s\n", first ? "usage:" : "   or:", n, u);
        first = false;
        u += n + (nl ? 1 : 0);
    }
}

void
cli_help(const struct cli_cmd *cmd, FILE *out)
{
    usage_lines(cmd, out);
    fprintf(out, "\n%s\n", cmd->summary);
    if (cmd->options)
        fprintf(out, "\n%s", cmd->options);
}

int
cli_usage_error(const struct cli_cmd *cmd, const char *fmt, ...)
{
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        fputs("oikos: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    usage_lines(cmd, stderr);
    fprintf(stderr, "try 'oikos %s --help' for more\n", cmd->name);
    return CLI_EXIT_USAGE;
}

void
cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("oikos: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void
cli_hint(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("hint: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void
cli_oom(void)
{
    fputs("oikos: out of memory\n", stderr);
    exit(CLI_EXIT_FAIL);
}

static void
hint_wait(int64_t secs)
{
    if (secs < 0)
        cli_hint("wait a little before trying again");
    else if (secs < 120)
        cli_hint("wait %" PRId64 " second%s before trying again", secs, secs == 1 ? "" : "s");
    else
        cli_hint("wait %" PRId64 " minutes before trying again", (secs + 59) / 60);
}

int
cli_fail(struct oc *c, int rc, const struct oc_resp *r, const char *what)
{
    if (rc < 0) {
        cli_error("%s: %s", what, oc_errstr(c));
        if (rc == ERR_UNAVAILABLE)
            cli_hint("is oikosd running at '%s'? (set it with --url or OIKOS_URL)", oc_url(c));
        return CLI_EXIT_FAIL;
    }
    if (r->code[0] && r->message[0])
        cli_error("%s: %s (%s)", what, r->message, r->code);
    else if (r->code[0])
        cli_error("%s: %s", what, r->code);
    else
        cli_error("%s: the server answered HTTP %ld", what, r->status);

    if (!strcmp(r->code, "sealed")) {
        cli_hint("the region at '%s' is sealed: nothing can be read or written until", oc_url(c));
        cli_hint("enough key custodians run 'oikos operator unseal --url %s'", oc_url(c));
    } else if (!strcmp(r->code, "rate_limited")) {
        hint_wait(r->retry_after);
    } else if (!strcmp(r->code, "consent_required")) {
        cli_hint("the service is off for this account: nothing of it is stored or sent back;");
        cli_hint("turn it on with 'oikos consent on SERVICE' ('oikos consent list' shows all)");
    } else if (!strcmp(r->code, "wrong_region")) {
        json_t *e = json_object_get(r->json, "error");
        const char *url = json_string_value(json_object_get(e, "url"));
        if (url)
            cli_hint("the account lives in another region: use --url %s", url);
    } else if (r->status == 503 && r->retry_after >= 0) {
        hint_wait(r->retry_after);
    }
    return CLI_EXIT_FAIL;
}

int
cli_getopt(const struct cli_cmd *cmd, int argc, char **argv, const char *shortopts,
           const struct option *longopts)
{
    opterr = 0;
    int ch = getopt_long(argc, argv, shortopts, longopts, NULL);
    if (ch != '?' && ch != ':')
        return ch;
    /* the option just looked at; for a long one, without any "=value" */
    const char *last = optind > 0 && optind <= argc ? argv[optind - 1] : "";
    bool is_long = last[0] == '-' && last[1] == '-';
    int n = (int)strcspn(last, "=");
    if (ch == ':') {
        if (is_long)
            cli_usage_error(cmd, "option '%.*s' needs a value", n, last);
        else
            cli_usage_error(cmd, "option '-%c' needs a value", optopt);
    } else if (!optopt) {
        cli_usage_error(cmd, "unknown option '%.*s'", n, last);
    } else if (is_long && last[n] == '=') {
        cli_usage_error(cmd, "option '%.*s' takes no value", n, last);
    } else {
        cli_usage_error(cmd, "unknown option '-%c'", optopt);
    }
    return '?';
}

int
cli_parse_num(const struct cli_cmd *cmd, const char *opt, const char *arg, uint64_t min,
              uint64_t max, uint64_t *out)
{
    if (parse_u64(arg, min, max, out))
        return cli_usage_error(
            cmd, "option '%s' wants a number from %" PRIu64 " to %" PRIu64 ", not '%s'", opt, min,
            max, arg);
    return 0;
}

/* ---- connecting --------------------------------------------------------- */

const char *
cli_url(const char *opt, const struct session *s)
{
    if (opt && *opt)
        return opt;
    const char *env = getenv("OIKOS_URL");
    if (env && *env)
        return env;
    if (s && s->url && *s->url)
        return s->url;
    return CLI_DEFAULT_URL;
}

int
cli_connect(const char *url, const char *token, struct oc **out)
{
    int rc = oc_new(out, url);
    if (rc == ERR_NOMEM)
        cli_oom();
    if (rc) {
        cli_error("bad server URL '%s': it should look like http://host:port or https://host", url);
        return CLI_EXIT_USAGE;
    }
    if (token) {
        rc = oc_set_token(*out, token);
        if (rc == ERR_NOMEM)
            cli_oom();
        if (rc) {
            oc_free(*out);
            *out = NULL;
            cli_error("the saved token is damaged: log in again");
            return CLI_EXIT_FAIL;
        }
    }
    return 0;
}

int
cli_session_load(struct session *s)
{
    struct buf path;
    buf_init(&path, 8192);
    int rc = session_load(s);
    int e = errno;
    if (rc == 0)
        goto out;
    if (session_path(&path) != 0) {
        buf_reset(&path);
        if (buf_adds(&path, "session.json"))
            cli_oom();
    }
    switch (rc) {
    case ERR_NOT_FOUND:
        cli_error("not logged in");
        cli_hint("log in with 'oikos login --account ID', or create an account with");
        cli_hint("'oikos signup --country CC'");
        break;
    case ERR_FORBIDDEN:
        cli_error("session file '%s' is open to other users; refusing to use it", path.data);
        cli_hint("run 'chmod 600 %s' if you trust it, or log in again", path.data);
        break;
    case ERR_CORRUPT:
        cli_error("session file '%s' is damaged; log in again", path.data);
        break;
    case ERR_NOMEM:
        cli_oom();
    default:
        cli_error("cannot read session file '%s': %s", path.data, strerror(e));
        break;
    }
    rc = CLI_EXIT_FAIL;
out:
    buf_release(&path);
    return rc;
}

void
cli_session_peek(struct session *s)
{
    if (session_load(s) != 0)
        memset(s, 0, sizeof(*s));
}

void
cli_print_json(const json_t *j)
{
    if (json_dumpf(j, stdout, JSON_INDENT(2)) != 0)
        cli_oom();
    fputc('\n', stdout);
}

bool
cli_service_valid(const char *s)
{
    for (size_t i = 0; i < ARRAY_SIZE(cli_services); i++)
        if (!strcmp(s, cli_services[i]))
            return true;
    return false;
}

int
cli_check_service(const struct cli_cmd *cmd, const char *s)
{
    if (cli_service_valid(s))
        return 0;
    return cli_usage_error(cmd,
                           "unknown service '%s': choose contacts, messages, calllog, settings, "
                           "photos or messaging",
                           s);
}

/* ---- object names ------------------------------------------------------- */

int
cli_name_normalise(const char *path, struct buf *out, unsigned *flags)
{
    struct buf n;
    unsigned f = 0;
    int rc = 0;

    buf_init(&n, CLI_NAME_MAX);
    if (path[0] == '/')
        f |= CLI_NAME_STRIPPED_ROOT;
    const char *p = path;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0 || (len == 1 && p[0] == '.')) {
            /* empty or ".": nothing */
        } else if (len == 2 && p[0] == '.' && p[1] == '.') {
            if (n.len) {
                char *last = memrchr(n.data, '/', n.len);
                n.len = last ? (size_t)(last - n.data) : 0;
                n.data[n.len] = 0;
            } else {
                f |= CLI_NAME_STRIPPED_UP;
            }
        } else {
            if (n.len)
                rc = buf_add(&n, "/", 1);
            if (!rc)
                rc = buf_add(&n, p, len);
            if (rc) {
                rc = rc == ERR_LIMIT ? ERR_INVAL : rc;
                goto out;
            }
        }
        p += len + (slash ? 1 : 0);
    }
    if (n.len == 0) {
        rc = ERR_INVAL;
        goto out;
    }
    rc = buf_add(out, n.data, n.len);
    if (flags)
        *flags = f;
out:
    buf_release(&n);
    return rc;
}

bool
cli_name_safe(const char *name)
{
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    struct buf n;
    unsigned flags = 0;
    buf_init(&n, CLI_NAME_MAX);
    bool ok = cli_name_normalise(name, &n, &flags) == 0 && flags == 0 && !strcmp(n.data, name);
    buf_release(&n);
    return ok;
}

/* ---- listing ------------------------------------------------------------ */

/* One record of the change feed, in the order the feed gave it. */
struct feed_rec {
    char *name, *etag;
    uint64_t size;
    size_t seq;
    bool deleted;
};

static int
feed_rec_cmp(const void *a, const void *b)
{
    const struct feed_rec *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static char *
xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        cli_oom();
    return p;
}

static void *
xreallocarray(void *p, size_t n, size_t size)
{
    void *q = reallocarray(p, n, size);
    if (!q)
        cli_oom();
    return q;
}

void
cli_objects_release(struct cli_objects *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n; i++) {
        free(o->v[i].name);
        free(o->v[i].etag);
    }
    free(o->v);
    memset(o, 0, sizeof(*o));
}

int
cli_list_objects(struct oc *c, const char *service, struct cli_objects *out)
{
    struct feed_rec *recs = NULL;
    size_t n = 0, cap = 0;
    char *cursor = NULL;
    struct buf path, what;
    struct oc_resp r = {0};
    int ret = CLI_EXIT_FAIL;

    memset(out, 0, sizeof(*out));
    buf_init(&path, 64 * 1024);
    buf_init(&what, 1024);
    if (buf_addf(&what, "cannot list '%s'", service))
        cli_oom();
    for (;;) {
        buf_reset(&path);
        if (buf_addf(&path, "/v1/me/data/%s", service))
            cli_oom();
        if (cursor && *cursor) {
            int rc = buf_adds(&path, "?since=");
            if (!rc)
                rc = oc_escape(&path, cursor);
            if (rc) {
                cli_error("%s: the server's cursor is too long", what.data);
                goto out;
            }
        }
        oc_resp_release(&r);
        int rc = oc_call(c, &r, "GET", path.data, NULL);
        if (rc || r.status != 200) {
            cli_fail(c, rc, &r, what.data);
            goto out;
        }
        json_t *items = json_object_get(r.json, "items");
        if (!json_is_array(items)) {
            cli_error("%s: the server's answer has no item list", what.data);
            goto out;
        }
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it)
        {
            const char *name = json_string_value(json_object_get(it, "name"));
            const char *etag = json_string_value(json_object_get(it, "etag"));
            json_int_t size = json_integer_value(json_object_get(it, "size"));
            if (!name) {
                cli_error("%s: the server listed an object without a name", what.data);
                goto out;
            }
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                recs = xreallocarray(recs, cap, sizeof(*recs));
            }
            recs[n] = (struct feed_rec){
                .name = xstrdup(name),
                .etag = xstrdup(etag ? etag : ""),
                .size = size > 0 ? (uint64_t)size : 0,
                .seq = n,
                .deleted = json_is_true(json_object_get(it, "deleted")),
            };
            n++;
        }
        const char *next = json_string_value(json_object_get(r.json, "cursor"));
        if (!json_is_true(json_object_get(r.json, "more")))
            break;
        if (!next || !*next || (cursor && !strcmp(next, cursor))) {
            cli_error("%s: the change feed does not advance", what.data);
            goto out;
        }
        free(cursor);
        cursor = xstrdup(next);
    }
    if (n)
        qsort(recs, n, sizeof(*recs), feed_rec_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && !strcmp(recs[i].name, recs[i + 1].name))
            continue; /* a later record of the same name wins */
        if (recs[i].deleted)
            continue;
        if (out->n == out->cap) {
            out->cap = out->cap ? 2 * out->cap : 64;
            out->v = xreallocarray(out->v, out->cap, sizeof(*out->v));
        }
        out->v[out->n++] = (struct cli_object){recs[i].name, recs[i].etag, recs[i].size};
        recs[i].name = recs[i].etag = NULL;
    }
    ret = 0;
out:
    for (size_t i = 0; i < n; i++) {
        free(recs[i].name);
        free(recs[i].etag);
    }
    free(recs);
    free(cursor);
    buf_release(&path);
    buf_release(&what);
    oc_resp_release(&r);
    if (ret)
        cli_objects_release(out);
    return ret;
}

bool
cli_fatal_answer(int rc, const struct oc_resp *r)
{
    if (rc < 0)
        return rc != ERR_IO; /* a local file's trouble concerns that file only */
    long st = r->status;
    return (st >= 300 && st < 400) || st == 401 || st == 403 || st == 429 || st >= 500;
}

char *
cli_visible(const char *s)
{
    char *v = strdup(s);
    if (!v)
        cli_oom();
    for (char *p = v; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return v;
}

/* ---- secrets ------------------------------------------------------------ */

static char *
secret_new(void)
{
    char *s = sodium_malloc(CLI_SECRET_MAX + 1);
    if (!s)
        cli_oom();
    memset(s, 0, CLI_SECRET_MAX + 1);
    return s;
}

void
cli_secret_free(char *s)
{
    sodium_free(s); /* wipes; accepts NULL */
}

/*
 * Reads one line from fd into s (CLI_SECRET_MAX bytes at most), a byte at a
 * time so that nothing past the line is consumed or copied elsewhere.
 * Drops the "\n" or "\r\n". Returns 0, ERR_LIMIT, ERR_IO (errno set).
 */
static int
read_line(int fd, char *s)
{
    size_t n = 0;
    for (;;) {
        char ch;
        ssize_t r = read(fd, &ch, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return ERR_IO;
        if (r == 0 || ch == '\n')
            break;
        if (n == CLI_SECRET_MAX) {
            sodium_memzero(s, CLI_SECRET_MAX);
            return ERR_LIMIT;
        }
        s[n++] = ch;
    }
    if (n && s[n - 1] == '\r')
        n--;
    s[n] = 0;
    return 0;
}

static struct termios tty_saved;
static volatile sig_atomic_t tty_saved_fd = -1;

static void
tty_restore_on_signal(int sig)
{
    if (tty_saved_fd >= 0)
        tcsetattr(tty_saved_fd, TCSAFLUSH, &tty_saved);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Prompts on the terminal with echo off and reads a line into s. */
static int
tty_prompt(const char *prompt, char *s)
{
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return ERR_IO;
    struct termios t;
    struct sigaction sa, old_int, old_term, old_hup, old_quit;
    bool echo_off = false;
    int rc;

    if (write(fd, prompt, strlen(prompt)) < 0) {
        rc = ERR_IO;
        goto out;
    }
    if (tcgetattr(fd, &t) == 0) {
        tty_saved = t;
        tty_saved_fd = fd;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = tty_restore_on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, &old_int);
        sigaction(SIGTERM, &sa, &old_term);
        sigaction(SIGHUP, &sa, &old_hup);
        sigaction(SIGQUIT, &sa, &old_quit);
        t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
        t.c_lflag |= ECHONL;
        echo_off = tcsetattr(fd, TCSAFLUSH, &t) == 0;
    }
    rc = read_line(fd, s);
out:
    if (tty_saved_fd >= 0) {
        if (echo_off)
            tcsetattr(fd, TCSAFLUSH, &tty_saved);
        tty_saved_fd = -1;
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        sigaction(SIGHUP, &old_hup, NULL);
        sigaction(SIGQUIT, &old_quit, NULL);
    }
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* Reports a failed read of a secret from `from`; returns CLI_EXIT_FAIL. */
static int
secret_read_error(int rc, const char *from)
{
    if (rc == ERR_LIMIT)
        cli_error("the secret from %s is longer than %d bytes", from, CLI_SECRET_MAX);
    else
        cli_error("cannot read the secret from %s: %s", from, strerror(errno));
    return CLI_EXIT_FAIL;
}

int
cli_secret_prompt(const char *prompt, char **out)
{
    char *s = secret_new();
    int rc;
    const char *from;
    *out = NULL;
    if (isatty(STDIN_FILENO)) {
        from = "the terminal";
        rc = tty_prompt(prompt, s);
    } else {
        from = "standard input";
        rc = read_line(STDIN_FILENO, s);
    }
    if (rc) {
        cli_secret_free(s);
        return secret_read_error(rc, from);
    }
    *out = s;
    return 0;
}

int
cli_password(const char *file, bool confirm, char **out)
{
    char *s = NULL, *again = NULL;
    const char *env = getenv("OIKOS_PASSWORD");
    int rc = 0;

    *out = NULL;
    if (file) {
        int fd = strcmp(file, "-") ? open(file, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
        if (fd < 0) {
            cli_error("cannot open password file '%s': %s", file, strerror(errno));
            return CLI_EXIT_FAIL;
        }
        s = secret_new();
        int r = read_line(fd, s);
        int e = errno;
        if (fd != STDIN_FILENO)
            close(fd);
        errno = e;
        if (r) {
            rc = secret_read_error(r, strcmp(file, "-") ? file : "standard input");
            goto out;
        }
    } else if (env && *env) {
        if (strlen(env) > CLI_SECRET_MAX) {
            cli_error("OIKOS_PASSWORD is longer than %d bytes", CLI_SECRET_MAX);
            rc = CLI_EXIT_FAIL;
            goto out;
        }
        s = secret_new();
        memcpy(s, env, strlen(env) + 1);
    } else {
        rc = cli_secret_prompt("password: ", &s);
        if (rc)
            goto out;
        if (confirm && isatty(STDIN_FILENO) && s[0]) {
            rc = cli_secret_prompt("password again: ", &again);
            if (rc)
                goto out;
            if (strlen(s) != strlen(again) || sodium_memcmp(s, again, strlen(s)) != 0) {
                cli_error("the passwords do not match");
                rc = CLI_EXIT_FAIL;
                goto out;
            }
        }
    }
    if (!s[0]) {
        cli_error("empty password");
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    *out = s;
    s = NULL;
out:
    cli_secret_free(s);
    cli_secret_free(again);
    return rc;
}

/* ---- progress ----------------------------------------------------------- */

void
cli_format_size(char *out, size_t cap, uint64_t bytes)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024) {
        snprintf(out, cap, "%" PRIu64 " B", bytes);
        return;
    }
    double v = (double)bytes / 1024.0;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < ARRAY_SIZE(units)) {
        v /= 1024.0;
        u++;
    }
    if (v >= 1023.95 && u + 1 < ARRAY_SIZE(units)) { /* would print as 1024.0 */
        v /= 1024.0;
        u++;
    }
    snprintf(out, cap, "%.1f %s", v, units[u]);
}

static void
format_eta(char *out, size_t cap, uint64_t secs)
{
    if (secs >= 100 * 3600)
        snprintf(out, cap, ">99h");
    else if (secs >= 3600)
        snprintf(out, cap, "%" PRIu64 ":%02" PRIu64 ":%02" PRIu64, secs / 3600, secs / 60 % 60,
                 secs % 60);
    else
        snprintf(out, cap, "%" PRIu64 ":%02" PRIu64, secs / 60, secs % 60);
}

size_t
cli_progress_format(char *out, size_t cap, uint64_t done, uint64_t total, uint64_t elapsed_ns,
                    unsigned width)
{
    char sdone[32], stotal[32], srate[32], seta[16], right[128];
    double rate = elapsed_ns ? (double)done * 1e9 / (double)elapsed_ns : 0.0;
    int n;

    if (cap == 0)
        return 0;
    cli_format_size(sdone, sizeof(sdone), done);
    cli_format_size(srate, sizeof(srate), (uint64_t)rate);
    if (total == 0) {
        n = snprintf(out, cap, "%s  %s/s", sdone, srate);
        return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
    }
    if (done > total)
        done = total;
    cli_format_size(sdone, sizeof(sdone), done);
    unsigned pct = (unsigned)((double)done * 100.0 / (double)total);
    cli_format_size(stotal, sizeof(stotal), total);
    if (done == total)
        format_eta(seta, sizeof(seta), 0);
    else if (rate >= 1.0)
        format_eta(seta, sizeof(seta), (uint64_t)((double)(total - done) / rate + 0.5));
    else
        snprintf(seta, sizeof(seta), "--:--");
    snprintf(right, sizeof(right), "%s/%s  %s/s  ETA %s", sdone, stotal, srate, seta);

    /* "100% [" + bar + "] " + right, one column spare so the cursor never wraps */
    size_t fixed = 4 + 2 + 2 + strlen(right) + 1;
    size_t bar = width > fixed ? width - fixed : 0;
    if (bar > 50)
        bar = 50;
    if (bar < 10) {
        n = snprintf(out, cap, "%3u%% %s", pct, right);
        return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
    }
    size_t fill = (size_t)((double)bar * (double)done / (double)total);
    size_t pos = 0;
    n = snprintf(out, cap, "%3u%% [", pct);
    pos = n < 0 ? 0 : (size_t)n;
    for (size_t i = 0; i < bar && pos + 1 < cap; i++)
        out[pos++] = i < fill ? '#' : ' ';
    if (pos < cap)
        out[pos] = 0;
    if (pos + 1 < cap) {
        n = snprintf(out + pos, cap - pos, "] %s", right);
        pos += n < 0 ? 0 : (size_t)n;
    }
    return pos < cap ? pos : cap - 1;
}

static unsigned
term_width(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
        return ws.ws_col > 300 ? 300 : ws.ws_col;
    return 80;
}

static void
progress_draw(struct cli_progress *p, uint64_t now)
{
    char line[512];
    cli_progress_format(line, sizeof(line), p->done, p->total, now - p->start_ns, term_width());
    fprintf(stderr, "\r%s\033[K", line);
    fflush(stderr);
    p->last_draw_ns = now;
}

void
cli_progress_start(struct cli_progress *p, uint64_t total)
{
    memset(p, 0, sizeof(*p));
    p->enabled = isatty(STDERR_FILENO);
    p->total = total;
    p->start_ns = clock_mono_ns();
}

void
cli_progress_update(struct cli_progress *p, uint64_t done)
{
    p->done = done;
    if (!p->enabled)
        return;
    uint64_t now = clock_mono_ns();
    if (p->last_draw_ns && now - p->last_draw_ns < 100000000u)
        return;
    progress_draw(p, now);
}

int
cli_progress_cb(void *arg, uint64_t now, uint64_t total)
{
    struct cli_progress *p = arg;
    (void)total;
    cli_progress_update(p, p->base + now);
    return 0;
}

void
cli_progress_end(struct cli_progress *p)
{
    if (!p->enabled)
        return;
    progress_draw(p, clock_mono_ns());
    fputc('\n', stderr);
}
