/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_restore.c: `oikos restore SERVICE [NAME...]`, on top of liboikos:
 * lists the service through the change feed (or takes the names given),
 * and streams each object with GET /v1/me/data/SERVICE/NAME into DIR/NAME.
 * Each file is written to a fresh temporary file beside its target,
 * fsync'd and renamed over it, so that an interrupted restore never leaves
 * a truncated file under the real name. Paths are walked one component at
 * a time with openat(O_NOFOLLOW) below a directory descriptor, and names
 * that are absolute or climb with '..' are refused, so that no name from
 * the server can write outside DIR, even through a symbolic link already
 * there. Created directories are 0700 and files 0600: this is personal
 * data. The list and descriptors are owned here and freed on every path.
 * Single-threaded.
 */
#include "base/common.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "cli/cli.h"

/*
 * Opens (creating 0700 as needed) the directory that holds `name` below
 * root, and points *leaf at the name's last component. Returns a directory
 * fd (root itself for a top-level name; caller closes any other), or -1
 * with errno set. `name` must pass cli_name_safe.
 */
static int
open_parent(int root, const char *name, const char **leaf)
{
    int d = root;
    const char *p = name;
    for (;;) {
        const char *slash = strchr(p, '/');
        if (!slash)
            break;
        char comp[256];
        size_t len = (size_t)(slash - p);
        if (len >= sizeof(comp)) {
            errno = ENAMETOOLONG;
            goto fail;
        }
        memcpy(comp, p, len);
        comp[len] = 0;
        if (mkdirat(d, comp, 0700) != 0 && errno != EEXIST)
            goto fail;
        int nd = openat(d, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (nd < 0) {
            if (errno == ELOOP)
                errno = ENOTDIR; /* a symbolic link where a directory should be */
            goto fail;
        }
        if (d != root)
            close(d);
        d = nd;
        p = slash + 1;
    }
    *leaf = p;
    return d;
fail:
    if (d != root) {
        int e = errno;
        close(d);
        errno = e;
    }
    return -1;
}

/* Outcome of one object: done, failed alone, or failed for the whole run. */
enum fetch_result { FETCH_OK, FETCH_FAILED, FETCH_FATAL };

static enum fetch_result
fetch_one(struct oc *c, int root, const char *service, const char *name, struct cli_progress *bar,
          uint64_t *bytes)
{
    struct buf path, what;
    struct oc_resp r = {0};
    const char *leaf;
    char tmp[32];
    uint8_t rnd[8];
    int d = -1, fd = -1;
    bool tmp_made = false;
    enum fetch_result res = FETCH_FAILED;

    buf_init(&path, 64 * 1024);
    buf_init(&what, 64 * 1024);
    if (buf_addf(&what, "cannot restore '%s'", name) ||
        buf_addf(&path, "/v1/me/data/%s/", service) || oc_escape(&path, name))
        cli_oom();
    d = open_parent(root, name, &leaf);
    if (d < 0) {
        cli_error("%s: %s", what.data, strerror(errno));
        goto out;
    }
    memcpy(tmp, ".oikos-", 7);
    randombytes_buf(rnd, sizeof(rnd));
    hex_encode(tmp + 7, rnd, sizeof(rnd));
    fd = openat(d, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        cli_error("%s: %s", what.data, strerror(errno));
        goto out;
    }
    tmp_made = true;
    int call = oc_get_fd(c, &r, path.data, fd, cli_progress_cb, bar);
    if (call || r.status != 200) {
        if (bar->enabled)
            fputc('\n', stderr);
        cli_fail(c, call, &r, what.data);
        res = cli_fatal_answer(call, &r) ? FETCH_FATAL : FETCH_FAILED;
        goto out;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        cli_error("%s: %s", what.data, strerror(errno));
        goto out;
    }
    fd = -1;
    if (renameat(d, tmp, d, leaf) != 0) {
        cli_error("%s: %s", what.data, strerror(errno));
        goto out;
    }
    tmp_made = false;
    *bytes = r.body_size;
    res = FETCH_OK;
out:
    if (fd >= 0)
        close(fd);
    if (tmp_made)
        unlinkat(d, tmp, 0);
    if (d >= 0 && d != root)
        close(d);
    oc_resp_release(&r);
    buf_release(&path);
    buf_release(&what);
    return res;
}

static int
restore_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"dir", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url_opt = NULL, *dir = ".";
    struct cli_objects objs = {0};
    struct session s = {0};
    struct oc *c = NULL;
    struct cli_progress bar;
    int root = -1, ch, rc;
    size_t done = 0, total_files = 0;
    uint64_t done_bytes = 0;
    bool failed = false;

    optind = 0;
    while ((ch = cli_getopt(&cli_cmd_restore, argc, argv, ":h", opts)) != -1) {
        switch (ch) {
        case 'u':
            url_opt = optarg;
            break;
        case 'd':
            dir = optarg;
            break;
        case 'h':
            cli_help(&cli_cmd_restore, stdout);
            return CLI_EXIT_OK;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    if (optind >= argc)
        return cli_usage_error(&cli_cmd_restore, "which service?");
    const char *service = argv[optind++];
    if ((rc = cli_check_service(&cli_cmd_restore, service)))
        return rc;
    for (int i = optind; i < argc; i++)
        if (!cli_name_safe(argv[i]))
            return cli_usage_error(&cli_cmd_restore,
                                   "cannot restore '%s': a name must be relative, without '.', "
                                   "'..' or empty parts",
                                   argv[i]);
    if (!*dir)
        return cli_usage_error(&cli_cmd_restore, "--dir wants a directory");

    rc = cli_session_load(&s);
    if (rc)
        goto out;
    rc = cli_connect(cli_url(url_opt, &s), s.token, &c);
    if (rc)
        goto out;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        cli_error("cannot create directory '%s': %s", dir, strerror(errno));
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) {
        cli_error("cannot open directory '%s': %s", dir, strerror(errno));
        rc = CLI_EXIT_FAIL;
        goto out;
    }

    uint64_t total = 0;
    if (optind >= argc) {
        rc = cli_list_objects(c, service, &objs);
        if (rc)
            goto out;
        for (size_t i = 0; i < objs.n; i++)
            total += objs.v[i].size;
        total_files = objs.n;
    } else {
        total_files = (size_t)(argc - optind);
    }

    cli_progress_start(&bar, total);
    for (size_t i = 0; i < total_files; i++) {
        const char *name = objs.n ? objs.v[i].name : argv[optind + (int)i];
        uint64_t got = 0;
        if (!cli_name_safe(name)) {
            char *v = cli_visible(name);
            cli_error("skipping '%s': not a safe file name (absolute, '..', '.' or empty parts, "
                      "or control characters)",
                      v);
            free(v);
            failed = true;
            continue;
        }
        enum fetch_result fr = fetch_one(c, root, service, name, &bar, &got);
        bar.base += objs.n ? objs.v[i].size : got;
        cli_progress_update(&bar, bar.base);
        if (fr == FETCH_OK) {
            done++;
            done_bytes += got;
            continue;
        }
        failed = true;
        if (fr == FETCH_FATAL)
            break;
    }
    cli_progress_end(&bar);

    char sz[32];
    cli_format_size(sz, sizeof(sz), done_bytes);
    printf("restored %zu of %zu file%s (%s) from '%s' into '%s'\n", done, total_files,
           total_files == 1 ? "" : "s", sz, service, dir);
    rc = failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
out:
    if (root >= 0)
        close(root);
    cli_objects_release(&objs);
    oc_free(c);
    session_release(&s);
    return rc;
}

const struct cli_cmd cli_cmd_restore = {
    .name = "restore",
    .usage = "restore [--url URL] [--dir DIR] SERVICE [NAME...]",
    .summary = "download a service's objects (all of them, or the NAMEs given) into DIR",
    .options = "Each object NAME is written to DIR/NAME, replacing any file there, through a\n"
               "temporary file so that no half-written file is left under the real name.\n"
               "Subdirectories are created as needed (mode 0700; files 0600). Names that are\n"
               "absolute or contain '..' are refused. Needs a session (oikos login).\n\n"
               "options:\n"
               "  --url URL        the region (default: $OIKOS_URL, the session's)\n"
               "  --dir DIR        where to write (default: the current directory; created if\n"
               "                   missing)\n",
    .run = restore_run,
};
