/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_logout.c: `oikos logout`, on top of liboikos and the saved session:
 * revokes the token on the server (DELETE /v1/sessions/current) and removes
 * the session file, which goes even when the server cannot be reached, so
 * that no usable credential stays on the machine. Single-threaded.
 */
#include "base/common.h"

#include "cli/cli.h"

static int
logout_run(int argc, char **argv)
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
    int ch, rc;

    optind = 0;
    while ((ch = cli_getopt(&cli_cmd_logout, argc, argv, ":h", opts)) != -1) {
        switch (ch) {
        case 'u':
            url_opt = optarg;
            break;
        case 'h':
            cli_help(&cli_cmd_logout, stdout);
            return CLI_EXIT_OK;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return cli_usage_error(&cli_cmd_logout, "unexpected argument '%s'", argv[optind]);

    rc = cli_session_load(&s);
    if (rc)
        goto out;
    rc = cli_connect(cli_url(url_opt, &s), s.token, &c);
    if (rc)
        goto out;
    int call = oc_call(c, &r, "DELETE", "/v1/sessions/current", NULL);
    /* 401: the token was already revoked or expired; logging out is then done */
    bool revoked = !call && (r.status == 204 || r.status == 200 || r.status == 401);
    if (!revoked)
        rc = cli_fail(c, call, &r, "cannot revoke the session on the server");
    int rm = session_remove();
    if (rm && rm != ERR_NOT_FOUND) {
        cli_error("cannot remove the session file: %s", strerror(errno));
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if (!revoked) {
        cli_hint("the session file is removed anyway; the token expires on the server by itself");
        goto out;
    }
    printf("logged out\n");
    rc = CLI_EXIT_OK;
out:
    oc_resp_release(&r);
    oc_free(c);
    session_release(&s);
    return rc;
}

const struct cli_cmd cli_cmd_logout = {
    .name = "logout",
    .usage = "logout [--url URL]",
    .summary = "revoke the saved session's token on the server and delete the session file",
    .options = "The session file is deleted even when the server cannot be reached (the exit\n"
               "status is then 1).\n\n"
               "options:\n"
               "  --url URL        the region (default: $OIKOS_URL, the session's)\n",
    .run = logout_run,
};
