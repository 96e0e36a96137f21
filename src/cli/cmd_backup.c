/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_backup.c: `oikos backup SERVICE FILE...`, on top of liboikos: walks
 * the files and directories given (directories recursively, symbolic links
 * inside them skipped), names each object after its normalised path, and
 * streams each file with PUT /v1/me/data/SERVICE/NAME under one progress
 * bar over all bytes. Everything is checked before the first byte is sent,
 * the service's consent included (GET /v1/me/consents: nothing of a service
 * that is off is sent); an error that concerns the whole run (network,
 * session, sealed, consent) stops it, one that concerns one file is
 * reported and the rest go on.
 * The file list is owned here and freed on every path. Single-threaded.
 */
#include "base/common.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"

struct backup_file {
    char *path; /* local path, as found */
    char *name; /* object name */
    uint64_t size;
};

struct backup_list {
    struct backup_file *v;
    size_t n, cap;
    uint64_t bytes;
    unsigned flags; /* CLI_NAME_STRIPPED_* seen */
    bool failed;
};

static void
list_release(struct backup_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].path);
        free(l->v[i].name);
    }
    free(l->v);
}

static void
list_add(struct backup_list *l, const char *path, uint64_t size)
{
    struct buf name;
    unsigned flags = 0;
    buf_init(&name, CLI_NAME_MAX);
    int rc = cli_name_normalise(path, &name, &flags);
    if (rc == ERR_NOMEM)
        cli_oom();
    if (rc) {
        cli_error("cannot name '%s' on the server: the name would be empty or longer than %d "
                  "bytes",
                  path, CLI_NAME_MAX);
        l->failed = true;
        buf_release(&name);
        return;
    }
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 32;
        l->v = reallocarray(l->v, l->cap, sizeof(*l->v));
        if (!l->v)
            cli_oom();
    }
    char *p = strdup(path);
    char *nm = buf_take(&name, NULL);
    if (!p || !nm)
        cli_oom();
    l->v[l->n++] = (struct backup_file){p, nm, size};
    l->bytes += size;
    l->flags |= flags;
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds every regular file under dir, in name order; skips links and devices. */
static void
walk_dir(struct backup_list *l, const char *dir)
{
    DIR *d = opendir(dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    if (!d) {
        cli_error("cannot read directory '%s': %s", dir, strerror(errno));
        l->failed = true;
        return;
    }
    struct dirent *e;
    while ((errno = 0, e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 32;
            names = reallocarray(names, cap, sizeof(*names));
            if (!names)
                cli_oom();
        }
        if (!(names[n++] = strdup(e->d_name)))
            cli_oom();
    }
    if (errno) {
        cli_error("cannot read directory '%s': %s", dir, strerror(errno));
        l->failed = true;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof(*names), cmp_str);
    size_t dlen = strlen(dir);
    bool slash = dlen && dir[dlen - 1] == '/';
    for (size_t i = 0; i < n; i++) {
        struct buf path;
        struct stat st;
        buf_init(&path, SIZE_MAX / 2);
        if (buf_addf(&path, "%s%s%s", dir, slash ? "" : "/", names[i]))
            cli_oom();
        if (lstat(path.data, &st) != 0) {
            cli_error("cannot read '%s': %s", path.data, strerror(errno));
            l->failed = true;
        } else if (S_ISDIR(st.st_mode)) {
            walk_dir(l, path.data);
        } else if (S_ISREG(st.st_mode)) {
            list_add(l, path.data, (uint64_t)st.st_size);
        } else {
            fprintf(stderr, "oikos: skipping '%s': not a regular file\n", path.data);
        }
        buf_release(&path);
        free(names[i]);
    }
    free(names);
}

static int
backup_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url_opt = NULL;
    bool json = false;
    struct backup_list list = {0};
    struct session s = {0};
    struct oc *c = NULL;
    struct oc_resp r = {0};
    struct cli_progress bar;
    struct buf path, what;
    json_t *results = NULL;
    size_t sent = 0;
    uint64_t sent_bytes = 0;
    bool failed = false;
    int ch, rc;

    buf_init(&path, 64 * 1024);
    buf_init(&what, 64 * 1024);
    optind = 0;
    while ((ch = cli_getopt(&cli_cmd_backup, argc, argv, ":h", opts)) != -1) {
        switch (ch) {
        case 'u':
            url_opt = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            cli_help(&cli_cmd_backup, stdout);
            return CLI_EXIT_OK;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    if (optind >= argc)
        return cli_usage_error(&cli_cmd_backup, "which service?");
    const char *service = argv[optind++];
    if ((rc = cli_check_service(&cli_cmd_backup, service)))
        return rc;
    if (optind >= argc)
        return cli_usage_error(&cli_cmd_backup, "which files?");

    for (int i = optind; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            cli_error("cannot read '%s': %s", argv[i], strerror(errno));
            list.failed = true;
        } else if (S_ISDIR(st.st_mode)) {
            walk_dir(&list, argv[i]);
        } else if (S_ISREG(st.st_mode)) {
            list_add(&list, argv[i], (uint64_t)st.st_size);
        } else {
            cli_error("cannot back up '%s': not a regular file or directory", argv[i]);
            list.failed = true;
        }
    }
    if (list.failed) {
        cli_error("nothing was sent");
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if (list.flags & CLI_NAME_STRIPPED_ROOT)
        fprintf(stderr, "oikos: removing leading '/' from object names\n");
    if (list.flags & CLI_NAME_STRIPPED_UP)
        fprintf(stderr, "oikos: removing leading '..' from object names\n");

    rc = cli_session_load(&s);
    if (rc)
        goto out;
    rc = cli_connect(cli_url(url_opt, &s), s.token, &c);
    if (rc)
        goto out;
    /* the client keeps the owner's word too: nothing of a service that is off leaves */
    bool on = false;
    rc = cli_consent_check(c, service, &on);
    if (rc)
        goto out;
    if (!on) {
        cli_error("'%s' is off for this account: nothing was sent", service);
        cli_hint("turn it on with 'oikos consent on %s' if you want it backed up", service);
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if (json && !(results = json_array()))
        cli_oom();

    cli_progress_start(&bar, list.bytes);
    for (size_t i = 0; i < list.n; i++) {
        struct backup_file *f = &list.v[i];
        struct stat st;
        buf_reset(&what);
        buf_reset(&path);
        if (buf_addf(&what, "cannot back up '%s'", f->path) ||
            buf_addf(&path, "/v1/me/data/%s/", service) || oc_escape(&path, f->name))
            cli_oom();
        int fd = open(f->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) != 0) {
            cli_error("%s: %s", what.data, strerror(errno));
            if (fd >= 0)
                close(fd);
            failed = true;
            continue;
        }
        int call = oc_put_fd(c, &r, path.data, fd, (uint64_t)st.st_size, cli_progress_cb, &bar);
        close(fd);
        bar.base += f->size;
        cli_progress_update(&bar, bar.base);
        if (call || (r.status != 200 && r.status != 201)) {
            if (bar.enabled)
                fputc('\n', stderr);
            cli_fail(c, call, &r, what.data);
            failed = true;
            if (cli_fatal_answer(call, &r)) {
                oc_resp_release(&r);
                break;
            }
            oc_resp_release(&r);
            continue;
        }
        sent++;
        sent_bytes += (uint64_t)st.st_size;
        if (results) {
            json_t *o = json_pack("{s:s, s:s, s:O?, s:O?, s:O?}", "path", f->path, "name", f->name,
                                  "etag", json_object_get(r.json, "etag"), "version",
                                  json_object_get(r.json, "version"), "size",
                                  json_object_get(r.json, "size"));
            if (!o || json_array_append_new(results, o))
                cli_oom();
        }
        oc_resp_release(&r);
    }
    cli_progress_end(&bar);

    if (results) {
        cli_print_json(results);
    } else {
        char sz[32];
        cli_format_size(sz, sizeof(sz), sent_bytes);
        printf("backed up %zu of %zu file%s (%s) to '%s'\n", sent, list.n, list.n == 1 ? "" : "s",
               sz, service);
    }
    rc = failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
out:
    if (results)
        json_decref(results);
    list_release(&list);
    oc_resp_release(&r);
    oc_free(c);
    session_release(&s);
    buf_release(&path);
    buf_release(&what);
    return rc;
}

const struct cli_cmd cli_cmd_backup = {
    .name = "backup",
    .usage = "backup [--url URL] [--json] SERVICE FILE...",
    .summary = "back up files (directories: everything in them) to one of your services",
    .options = "SERVICE is contacts, messages, calllog, settings, photos or messaging; the\n"
               "service must be on for the account (oikos consent on SERVICE): if it is off,\n"
               "nothing at all is sent. Each file is stored under its\n"
               "path as given, cleaned up: no leading '/' or './', no '..'. A file stored\n"
               "before under the same name is replaced. Symbolic links inside directories\n"
               "are skipped. Needs a session (oikos login).\n\n"
               "options:\n"
               "  --url URL        the region (default: $OIKOS_URL, the session's)\n"
               "  --json           print one JSON record per file stored\n",
    .run = backup_run,
};
