/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_signup.c: `oikos signup`, on top of liboikos: creates an account
 * (POST /v1/accounts, following the redirect to the country's home region),
 * logs in (POST /v1/sessions) and saves the session. The password lives in
 * a cli secret and is wiped on every path. Single-threaded.
 */
#include "base/common.h"

#include "cli/cli.h"

static bool
ascii_alpha(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

static int
signup_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"country", required_argument, NULL, 'c'},
        {"url", required_argument, NULL, 'u'},
        {"password-file", required_argument, NULL, 'p'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url_opt = NULL, *country_opt = NULL, *pw_file = NULL;
    char country[3];
    bool json = false;
    char *password = NULL;
    struct session old = {0}, s = {0};
    struct oc *c = NULL;
    struct oc_resp r = {0};
    json_t *body = NULL, *out = NULL;
    int ch, rc;

    optind = 0;
    while ((ch = cli_getopt(&cli_cmd_signup, argc, argv, ":h", opts)) != -1) {
        switch (ch) {
        case 'c':
            country_opt = optarg;
            break;
        case 'u':
            url_opt = optarg;
            break;
        case 'p':
            pw_file = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            cli_help(&cli_cmd_signup, stdout);
            return CLI_EXIT_OK;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return cli_usage_error(&cli_cmd_signup, "unexpected argument '%s'", argv[optind]);
    if (!country_opt)
        return cli_usage_error(&cli_cmd_signup, "which country? use --country CC (e.g. IN)");
    if (strlen(country_opt) != 2 || !ascii_alpha(country_opt[0]) || !ascii_alpha(country_opt[1]))
        return cli_usage_error(&cli_cmd_signup,
                               "country '%s' is not a two-letter ISO 3166 code such as IN",
                               country_opt);
    for (int i = 0; i < 2; i++)
        country[i] = (char)(country_opt[i] >= 'a' ? country_opt[i] - 'a' + 'A' : country_opt[i]);
    country[2] = 0;

    cli_session_peek(&old);
    rc = cli_connect(cli_url(url_opt, &old), NULL, &c);
    if (rc)
        goto out;
    rc = cli_password(pw_file, true, &password);
    if (rc)
        goto out;

    body = json_pack("{s:s, s:s}", "country", country, "password", password);
    if (!body)
        cli_oom();
    rc = oc_call(c, &r, "POST", "/v1/accounts", body);
    json_decref(body);
    body = NULL;
    if (rc || r.status != 201) {
        rc = cli_fail(c, rc, &r, "cannot create the account");
        goto out;
    }
    const char *account = json_string_value(json_object_get(r.json, "account"));
    const char *region = json_string_value(json_object_get(r.json, "region"));
    if (!account || !*account) {
        cli_error("cannot create the account: the server's answer has no account id");
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    s.account = strdup(account);
    s.url = strdup(oc_url(c)); /* the home region, after any redirect */
    if (!s.account || !s.url)
        cli_oom();
    /* said now, so that the id is never lost even if the login below fails */
    if (!json)
        printf("created account %s in region '%s' (%s)\n", s.account, region ? region : "?", s.url);
    out = json_pack("{s:s, s:s?, s:s}", "account", s.account, "region", region, "url", s.url);
    if (!out)
        cli_oom();

    oc_resp_release(&r);
    body = json_pack("{s:s, s:s}", "account", s.account, "password", password);
    if (!body)
        cli_oom();
    rc = oc_call(c, &r, "POST", "/v1/sessions", body);
    if (rc || r.status != 201) {
        rc = cli_fail(c, rc, &r, "the account exists, but logging in failed");
        cli_hint("log in with 'oikos login --account %s --url %s'", s.account, s.url);
        if (json)
            cli_print_json(out);
        goto out;
    }
    const char *token = json_string_value(json_object_get(r.json, "token"));
    if (!token || !*token) {
        cli_error("the account exists, but the server's login answer has no token");
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    s.token = strdup(token);
    if (!s.token)
        cli_oom();
    if (session_save(&s) != 0) {
        cli_error("cannot save the session: %s", strerror(errno));
        rc = CLI_EXIT_FAIL;
        if (json)
            cli_print_json(out);
        goto out;
    }
    if (json) {
        cli_print_json(out);
    } else {
        printf("logged in\n\n"
               "Keep the account id %s: with your password, it is what logs you in on\n"
               "another device. oikos cannot recover a lost password.\n",
               s.account);
    }
    rc = CLI_EXIT_OK;
out:
    if (body)
        json_decref(body);
    if (out)
        json_decref(out);
    cli_secret_free(password);
    oc_resp_release(&r);
    oc_free(c);
    session_release(&s);
    session_release(&old);
    return rc;
}

const struct cli_cmd cli_cmd_signup = {
    .name = "signup",
    .usage = "signup --country CC [--url URL] [--password-file FILE] [--json]",
    .summary = "create an account at home in country CC's region, log in, print the account id",
    .options =
        "The password comes from --password-file (its first line; '-' for standard\n"
        "input), else $OIKOS_PASSWORD, else a prompt without echo (asked twice).\n"
        "Any region accepts the signup: it sends it on to the country's home region,\n"
        "and the saved session then points there.\n\n"
        "options:\n"
        "  --country CC          two-letter ISO 3166 country code, e.g. IN\n"
        "  --url URL             a region (default: $OIKOS_URL, the session's, " CLI_DEFAULT_URL
        ")\n"
        "  --password-file FILE  read the password from FILE\n"
        "  --json                print {\"account\",\"region\",\"url\"} as JSON\n",
    .run = signup_run,
};
