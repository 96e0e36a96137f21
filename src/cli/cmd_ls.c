/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_ls.c: `oikos ls SERVICE`, on top of liboikos and cli_list_objects:
 * reads the service's change feed to the end and prints each live object's
 * size and name, sorted by name, or the list as JSON. The list is owned
 * here. Single-threaded.
 */
#include "base/common.h"

#include "cli/cli.h"

static int
ls_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url_opt = NULL;
    bool json = false;
    struct cli_objects objs = {0};
    struct session s = {0};
    struct oc *c = NULL;
    int ch, rc;

    optind = 0;
    while ((ch = cli_getopt(&cli_cmd_ls, argc, argv, ":h", opts)) != -1) {
        switch (ch) {
        case 'u':
            url_opt = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            cli_help(&cli_cmd_ls, stdout);
            return CLI_EXIT_OK;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    if (optind >= argc)
        return cli_usage_error(&cli_cmd_ls, "which service?");
    const char *service = argv[optind++];
    if ((rc = cli_check_service(&cli_cmd_ls, service)))
        return rc;
    if (optind < argc)
        return cli_usage_error(&cli_cmd_ls, "unexpected argument '%s'", argv[optind]);

    rc = cli_session_load(&s);
    if (rc)
        goto out;
    rc = cli_connect(cli_url(url_opt, &s), s.token, &c);
    if (rc)
        goto out;
    rc = cli_list_objects(c, service, &objs);
    if (rc)
        goto out;
    if (json) {
        json_t *items = json_array();
        if (!items)
            cli_oom();
        for (size_t i = 0; i < objs.n; i++) {
            json_t *o = json_pack("{s:s, s:I, s:s}", "name", objs.v[i].name, "size",
                                  (json_int_t)objs.v[i].size, "etag", objs.v[i].etag);
            if (!o || json_array_append_new(items, o))
                cli_oom();
        }
        cli_print_json(items);
        json_decref(items);
    } else {
        int width = 1;
        for (size_t i = 0; i < objs.n; i++) {
            int w = snprintf(NULL, 0, "%" PRIu64, objs.v[i].size);
            if (w > width)
                width = w;
        }
        for (size_t i = 0; i < objs.n; i++) {
            char *name = cli_visible(objs.v[i].name);
            printf("%*" PRIu64 "  %s\n", width, objs.v[i].size, name);
            free(name);
        }
    }
    rc = CLI_EXIT_OK;
out:
    cli_objects_release(&objs);
    oc_free(c);
    session_release(&s);
    return rc;
}

const struct cli_cmd cli_cmd_ls = {
    .name = "ls",
    .usage = "ls [--url URL] [--json] SERVICE",
    .summary = "list the objects stored in one of your services: size in bytes, then name",
    .options = "Control characters in names are shown as '?' (--json shows them as they are).\n"
               "Needs a session (oikos login).\n\n"
               "options:\n"
               "  --url URL        the region (default: $OIKOS_URL, the session's)\n"
               "  --json           print [{\"name\",\"size\",\"etag\"}] as JSON\n",
    .run = ls_run,
};
