/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_export.c: `oikos export FILE`, on top of liboikos: downloads GET
 * /v1/me/export, a tar of everything the region holds for the account,
 * decrypted, streamed into FILE under a progress bar (its total estimated
 * from the report). FILE is created new, mode 0600 (it holds your data in
 * clear), never over an existing file, and removed if the download fails.
 * Single-threaded.
 */
#include "base/common.h"

#include <fcntl.h>
#include <unistd.h>

#include "cli/cli.h"

/* About how long the tar will be: the bytes, a header and half a padding block per object. */
static uint64_t
estimate(struct oc *c)
{
    struct oc_resp r = {0};
    uint64_t total = 0;
    size_t i;
    json_t *it;
    if (oc_call(c, &r, "GET", "/v1/me/report", NULL) == 0 && r.status == 200) {
        json_array_foreach(json_object_get(r.json, "data"), i, it)
        {
            if (!json_is_true(json_object_get(it, "granted")))
                continue;
            uint64_t n = (uint64_t)json_integer_value(json_object_get(it, "objects"));
            total +=
                (uint64_t)json_integer_value(json_object_get(it, "bytes")) + n * (512 + 256 + 200);
        }
        total += 3 * 1024;
    }
    oc_resp_release(&r);
    return total;
}

static int
export_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url_opt = NULL;
    struct session s = {0};
    struct oc *c = NULL;
    struct oc_resp r = {0};
    struct cli_progress bar;
    int ch, rc, fd = -1;
    bool made = false;

    optind = 0;
    while ((ch = cli_getopt(&cli_cmd_export, argc, argv, ":h", opts)) != -1) {
        switch (ch) {
        case 'u':
            url_opt = optarg;
            break;
        case 'h':
            cli_help(&cli_cmd_export, stdout);
            return CLI_EXIT_OK;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    if (optind >= argc)
        return cli_usage_error(&cli_cmd_export, "which file?");
    const char *file = argv[optind++];
    if (optind < argc)
        return cli_usage_error(&cli_cmd_export, "unexpected argument '%s'", argv[optind]);

    rc = cli_session_load(&s);
    if (!rc)
        rc = cli_connect(cli_url(url_opt, &s), s.token, &c);
    if (rc)
        goto out;
    fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        cli_error("cannot create '%s': %s", file, strerror(errno));
        if (errno == EEXIST)
            cli_hint("the export is never written over a file; choose a new name");
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    made = true;
    /* oc_timeouts: a stream has no total limit, only a stall limit */
    cli_progress_start(&bar, estimate(c));
    int call = oc_get_fd(c, &r, "/v1/me/export", fd, cli_progress_cb, &bar);
    if (call || r.status != 200) {
        if (bar.enabled)
            fputc('\n', stderr);
        rc = cli_fail(c, call, &r, "cannot export");
        goto out;
    }
    bar.total = r.body_size;
    cli_progress_update(&bar, r.body_size);
    cli_progress_end(&bar);
    if (fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        cli_error("cannot write '%s': %s", file, strerror(errno));
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    fd = -1;
    made = false;
    char size[32];
    cli_format_size(size, sizeof(size), r.body_size);
    printf("exported everything to '%s' (%s, a tar with manifest.json)\n", file, size);
    rc = CLI_EXIT_OK;
out:
    if (fd >= 0)
        close(fd);
    if (made && unlink(file) != 0)
        cli_error("cannot remove the partial file '%s': %s", file, strerror(errno));
    oc_resp_release(&r);
    oc_free(c);
    session_release(&s);
    return rc;
}

const struct cli_cmd cli_cmd_export = {
    .name = "export",
    .usage = "export [--url URL] FILE",
    .summary = "download everything the region holds for you, decrypted, as a tar file",
    .options = "FILE is created new (mode 0600) and must not exist. It holds every object of\n"
               "every service that is on, under SERVICE/NAME, and manifest.json listing each\n"
               "object with its size and SHA-256, and your consents. Needs a session.\n\n"
               "options:\n"
               "  --url URL        the region (default: $OIKOS_URL, the session's)\n",
    .run = export_run,
};
