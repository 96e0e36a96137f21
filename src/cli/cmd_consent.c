/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_consent.c: `oikos consent list|on|off`, the owner's switches, on top
 * of liboikos and GET/PUT/DELETE /v1/me/consents: list shows every service
 * with its state, since when and under which policy version; on turns a
 * service on; off turns it off, which destroys everything it holds. Also
 * cli_consent_check(), which `backup` asks before it sends anything.
 * Every answer is owned here and released on every path. Single-threaded.
 */
#include "base/common.h"

#include "cli/cli.h"

static const struct cli_cmd c_list, c_on, c_off;

int
cli_consent_check(struct oc *c, const char *service, bool *on)
{
    struct oc_resp r = {0};
    char what[96];
    size_t i;
    json_t *it;
    *on = false;
    snprintf(what, sizeof(what), "cannot check the consent to '%s'", service);
    int call = oc_call(c, &r, "GET", "/v1/me/consents", NULL);
    if (call || r.status != 200) {
        int rc = cli_fail(c, call, &r, what);
        oc_resp_release(&r);
        return rc;
    }
    json_t *list = json_object_get(r.json, "consents");
    if (!json_is_array(list)) {
        cli_error("%s: the server's answer has no consent list", what);
        oc_resp_release(&r);
        return CLI_EXIT_FAIL;
    }
    json_array_foreach(list, i, it)
    {
        const char *name = json_string_value(json_object_get(it, "service"));
        if (name && !strcmp(name, service))
            *on = json_is_true(json_object_get(it, "granted"));
    }
    oc_resp_release(&r);
    return 0;
}

/* The options every subcommand shares; returns the index of the first operand or < 0. */
static int
parse(const struct cli_cmd *cmd, int argc, char **argv, const char **url, bool *json)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    optind = 0;
    while ((ch = cli_getopt(cmd, argc, argv, ":h", opts)) != -1) {
        switch (ch) {
        case 'u':
            *url = optarg;
            break;
        case 'j':
            *json = true;
            break;
        case 'h':
            cli_help(cmd, stdout);
            return -CLI_EXIT_OK - 1;
        default:
            return -CLI_EXIT_USAGE - 1;
        }
    }
    return optind;
}

/* Connects with the saved session; returns 0 or an exit code. */
static int
connect_session(const char *url, struct session *s, struct oc **c)
{
    int rc = cli_session_load(s);
    if (!rc)
        rc = cli_connect(cli_url(url, s), s->token, c);
    return rc;
}

static int
list_run(int argc, char **argv)
{
    const char *url = NULL;
    bool json = false;
    struct session s = {0};
    struct oc *c = NULL;
    struct oc_resp r = {0};
    int first = parse(&c_list, argc, argv, &url, &json), rc;
    if (first < 0)
        return -first - 1;
    if (first < argc)
        return cli_usage_error(&c_list, "unexpected argument '%s'", argv[first]);
    rc = connect_session(url, &s, &c);
    if (rc)
        goto out;
    int call = oc_call(c, &r, "GET", "/v1/me/consents", NULL);
    if (call || r.status != 200) {
        rc = cli_fail(c, call, &r, "cannot list the consents");
        goto out;
    }
    json_t *list = json_object_get(r.json, "consents");
    if (!json_is_array(list)) {
        cli_error("cannot list the consents: the server's answer has no list");
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if (json) {
        cli_print_json(list);
    } else {
        size_t i;
        json_t *it;
        printf("%-10s %-4s %-21s %s\n", "SERVICE", "", "SINCE", "POLICY");
        json_array_foreach(list, i, it)
        {
            const char *svc = json_string_value(json_object_get(it, "service"));
            const char *since = json_string_value(json_object_get(it, "since"));
            const char *policy = json_string_value(json_object_get(it, "policy"));
            char *v = cli_visible(svc ? svc : "?");
            printf("%-10s %-4s %-21s %s\n", v,
                   json_is_true(json_object_get(it, "granted")) ? "on" : "off", since ? since : "-",
                   policy ? policy : "-");
            free(v);
        }
    }
    rc = CLI_EXIT_OK;
out:
    oc_resp_release(&r);
    oc_free(c);
    session_release(&s);
    return rc;
}

/* on (granted) or off, for the service in argv */
static int
switch_run(const struct cli_cmd *cmd, bool granted, int argc, char **argv)
{
    const char *url = NULL;
    bool json = false;
    struct session s = {0};
    struct oc *c = NULL;
    struct oc_resp r = {0};
    char path[64], what[96];
    json_t *body = NULL;
    int first = parse(cmd, argc, argv, &url, &json), rc;
    if (first < 0)
        return -first - 1;
    if (first >= argc)
        return cli_usage_error(cmd, "which service?");
    const char *service = argv[first];
    if ((rc = cli_check_service(cmd, service)))
        return rc;
    if (first + 1 < argc)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[first + 1]);
    rc = connect_session(url, &s, &c);
    if (rc)
        goto out;
    snprintf(path, sizeof(path), "/v1/me/consents/%s", service);
    snprintf(what, sizeof(what), "cannot turn '%s' %s", service, granted ? "on" : "off");
    if (granted && !(body = json_pack("{s:b}", "granted", 1)))
        cli_oom();
    int call = oc_call(c, &r, granted ? "PUT" : "DELETE", path, body);
    if (call || r.status != 200) {
        rc = cli_fail(c, call, &r, what);
        goto out;
    }
    if (json) {
        cli_print_json(r.json);
    } else if (granted) {
        const char *policy = json_string_value(json_object_get(r.json, "policy"));
        printf("'%s' is on: its data may now be stored in your region (privacy policy %s)\n",
               service, policy ? policy : "?");
    } else {
        json_int_t n = json_integer_value(json_object_get(r.json, "purged_objects"));
        printf("'%s' is off: its key is destroyed and %" PRId64 " object%s with it\n", service,
               (int64_t)n, n == 1 ? "" : "s");
    }
    rc = CLI_EXIT_OK;
out:
    json_decref(body);
    oc_resp_release(&r);
    oc_free(c);
    session_release(&s);
    return rc;
}

static int
on_run(int argc, char **argv)
{
    return switch_run(&c_on, true, argc, argv);
}

static int
off_run(int argc, char **argv)
{
    return switch_run(&c_off, false, argc, argv);
}

static const struct cli_cmd c_list = {
    .name = "consent list",
    .usage = "consent list [--url URL] [--json]",
    .summary = "show every service: on or off, since when, under which privacy policy",
    .options = "options:\n"
               "  --url URL        the region (default: $OIKOS_URL, the session's)\n"
               "  --json           print [{\"service\",\"granted\",\"since\",\"policy\"}]\n",
    .run = list_run,
};

static const struct cli_cmd c_on = {
    .name = "consent on",
    .usage = "consent on [--url URL] [--json] SERVICE",
    .summary = "turn a service on, so that its data may be backed up",
    .options = "SERVICE is contacts, messages, calllog, settings, photos or messaging.\n"
               "The change is recorded with the time and the privacy policy version.\n\n"
               "options:\n"
               "  --url URL        the region (default: $OIKOS_URL, the session's)\n"
               "  --json           print the server's record\n",
    .run = on_run,
};

static const struct cli_cmd c_off = {
    .name = "consent off",
    .usage = "consent off [--url URL] [--json] SERVICE",
    .summary = "turn a service off: its key is destroyed, so everything it holds is gone",
    .options = "Nothing of the service can be read again, from the region or from any copy\n"
               "of its data; the sweeper deletes the ciphertext within the hour.\n\n"
               "options:\n"
               "  --url URL        the region (default: $OIKOS_URL, the session's)\n"
               "  --json           print {\"service\",\"granted\",\"purged_objects\"}\n",
    .run = off_run,
};

static const struct cli_cmd *const consent_subs[] = {&c_list, &c_on, &c_off};

static int
consent_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    optind = 0;
    while ((ch = cli_getopt(&cli_cmd_consent, argc, argv, "+:h", opts)) != -1) {
        if (ch == 'h') {
            cli_help(&cli_cmd_consent, stdout);
            return CLI_EXIT_OK;
        }
        return CLI_EXIT_USAGE;
    }
    if (optind >= argc)
        return cli_usage_error(&cli_cmd_consent, "which one: list, on or off?");
    const char *sub = argv[optind];
    for (size_t i = 0; i < ARRAY_SIZE(consent_subs); i++) {
        const char *name = strchr(consent_subs[i]->name, ' ') + 1;
        if (!strcmp(sub, name))
            return consent_subs[i]->run(argc - optind, argv + optind);
    }
    return cli_usage_error(&cli_cmd_consent, "unknown consent command '%s'", sub);
}

const struct cli_cmd cli_cmd_consent = {
    .name = "consent",
    .usage = "consent list [--url URL] [--json]\n"
             "consent on [--url URL] [--json] SERVICE\n"
             "consent off [--url URL] [--json] SERVICE",
    .summary = "see and switch which services may keep your data (all start off)",
    .options = "commands:\n"
               "  list      every service, on or off\n"
               "  on        turn a service on\n"
               "  off       turn a service off and destroy everything it holds\n\n"
               "Needs a session (oikos login). Run 'oikos consent COMMAND --help' for more.\n",
    .run = consent_run,
};
