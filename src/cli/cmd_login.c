/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_login.c: `oikos login`, on top of liboikos: POST /v1/sessions with
 * the account id and password (following the redirect to the account's
 * home region) and saves the session {url, account, token}. The password
 * lives in a cli secret and is wiped on every path. Single-threaded.
 */
#include "base/common.h"

#include "cli/cli.h"

static int
login_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"account", required_argument, NULL, 'a'},
        {"url", required_argument, NULL, 'u'},
        {"password-file", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url_opt = NULL, *account = NULL, *pw_file = NULL;
    char *password = NULL;
    struct session old = {0}, s = {0};
    struct oc *c = NULL;
    struct oc_resp r = {0};
    json_t *body = NULL;
    int ch, rc;

    optind = 0;
    while ((ch = cli_getopt(&cli_cmd_login, argc, argv, ":h", opts)) != -1) {
        switch (ch) {
        case 'a':
            account = optarg;
            break;
        case 'u':
            url_opt = optarg;
            break;
        case 'p':
            pw_file = optarg;
            break;
        case 'h':
            cli_help(&cli_cmd_login, stdout);
            return CLI_EXIT_OK;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return cli_usage_error(&cli_cmd_login, "unexpected argument '%s'", argv[optind]);
    if (!account || !*account)
        return cli_usage_error(&cli_cmd_login, "which account? use --account ID");

    cli_session_peek(&old);
    rc = cli_connect(cli_url(url_opt, &old), NULL, &c);
    if (rc)
        goto out;
    rc = cli_password(pw_file, false, &password);
    if (rc)
        goto out;
    body = json_pack("{s:s, s:s}", "account", account, "password", password);
    if (!body)
        cli_oom();
    rc = oc_call(c, &r, "POST", "/v1/sessions", body);
    if (rc || r.status != 201) {
        rc = cli_fail(c, rc, &r, "cannot log in");
        goto out;
    }
    const char *token = json_string_value(json_object_get(r.json, "token"));
    if (!token || !*token) {
        cli_error("cannot log in: the server's answer has no token");
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    s.url = strdup(oc_url(c)); /* the home region, after any redirect */
    s.account = strdup(account);
    s.token = strdup(token);
    if (!s.url || !s.account || !s.token)
        cli_oom();
    if (session_save(&s) != 0) {
        cli_error("cannot save the session: %s", strerror(errno));
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    printf("logged in as %s at %s\n", s.account, s.url);
    rc = CLI_EXIT_OK;
out:
    if (body)
        json_decref(body);
    cli_secret_free(password);
    oc_resp_release(&r);
    oc_free(c);
    session_release(&s);
    session_release(&old);
    return rc;
}

const struct cli_cmd cli_cmd_login = {
    .name = "login",
    .usage = "login --account ID [--url URL] [--password-file FILE]",
    .summary = "log in to an account and save the session for the other commands",
    .options =
        "The password comes from --password-file (its first line; '-' for standard\n"
        "input), else $OIKOS_PASSWORD, else a prompt without echo. Any region accepts\n"
        "the login and sends it on to the account's home region. Too many failed\n"
        "attempts are refused for a while (the error says how long).\n\n"
        "options:\n"
        "  --account ID          the account id that signup printed (e.g. in-...)\n"
        "  --url URL             a region (default: $OIKOS_URL, the session's, " CLI_DEFAULT_URL
        ")\n"
        "  --password-file FILE  read the password from FILE\n",
    .run = login_run,
};
