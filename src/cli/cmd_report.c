/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_report.c: `oikos report`, on top of liboikos and GET /v1/me/report:
 * what the region holds about the account, per service (consent, objects,
 * bytes, the date they go if the account stays unused), the consent
 * history and the retention rules, printed for people or as the server's
 * JSON (--json). Text from the server passes cli_visible before it reaches
 * a terminal. The answer is owned here. Single-threaded.
 */
#include "base/common.h"

#include "cli/cli.h"

/* A string member, or "-" when absent or null, made safe for a terminal (caller frees). */
static char *
field(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return cli_visible(v ? v : "-");
}

static void
print_report(json_t *j)
{
    char *account = field(j, "account"), *region = field(j, "region"),
         *created = field(j, "created"), *last = field(j, "last_active"),
         *idle = field(j, "erase_if_idle_after");
    size_t i;
    json_t *it;
    printf("account    %s, region %s\n", account, region);
    printf("created    %s\n", created);
    /* the day's end stands for the day: print the day */
    printf("last used  %.*s (recorded by the day)\n",
           strlen(last) > 10 && last[10] == 'T' ? 10 : (int)strlen(last), last);
    printf("erased if unused until %s\n\n", idle);
    free(account);
    free(region);
    free(created);
    free(last);
    free(idle);

    printf("%-10s %-4s %8s %11s  %s\n", "SERVICE", "", "OBJECTS", "BYTES", "DELETED AFTER");
    json_array_foreach(json_object_get(j, "data"), i, it)
    {
        char size[32];
        char *svc = field(it, "service"), *after = field(it, "delete_after");
        cli_format_size(size, sizeof(size),
                        (uint64_t)json_integer_value(json_object_get(it, "bytes")));
        printf("%-10s %-4s %8" PRId64 " %11s  %s\n", svc,
               json_is_true(json_object_get(it, "granted")) ? "on" : "off",
               (int64_t)json_integer_value(json_object_get(it, "objects")), size,
               strcmp(after, "-") ? after : "-");
        free(svc);
        free(after);
    }

    json_t *history = json_object_get(j, "consent_history");
    printf("\nconsent history%s\n", json_array_size(history) ? "" : ": none");
    json_array_foreach(history, i, it)
    {
        char *at = field(it, "at"), *svc = field(it, "service"), *policy = field(it, "policy");
        printf("  %s  %-10s %-3s (privacy policy %s)\n", at, svc,
               json_is_true(json_object_get(it, "granted")) ? "on" : "off", policy);
        free(at);
        free(svc);
        free(policy);
    }

    printf("\nretention\n");
    json_array_foreach(json_object_get(j, "retention"), i, it)
    {
        char *applies = field(it, "applies_to"), *kept = field(it, "kept");
        printf("  %s: %s\n", applies, kept);
        free(applies);
        free(kept);
    }
    json_t *audit = json_object_get(j, "audit");
    printf("\naudit log: %" PRId64 " entries about this account\n",
           (int64_t)json_integer_value(json_object_get(audit, "entries")));
}

static int
report_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url_opt = NULL;
    bool json = false;
    struct session s = {0};
    struct oc *c = NULL;
    struct oc_resp r = {0};
    int ch, rc;

    optind = 0;
    while ((ch = cli_getopt(&cli_cmd_report, argc, argv, ":h", opts)) != -1) {
        switch (ch) {
        case 'u':
            url_opt = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            cli_help(&cli_cmd_report, stdout);
            return CLI_EXIT_OK;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return cli_usage_error(&cli_cmd_report, "unexpected argument '%s'", argv[optind]);
    rc = cli_session_load(&s);
    if (!rc)
        rc = cli_connect(cli_url(url_opt, &s), s.token, &c);
    if (rc)
        goto out;
    int call = oc_call(c, &r, "GET", "/v1/me/report", NULL);
    if (call || r.status != 200 || !json_is_object(r.json)) {
        rc = cli_fail(c, call, &r, "cannot get the report");
        goto out;
    }
    if (json)
        cli_print_json(r.json);
    else
        print_report(r.json);
    rc = CLI_EXIT_OK;
out:
    oc_resp_release(&r);
    oc_free(c);
    session_release(&s);
    return rc;
}

const struct cli_cmd cli_cmd_report = {
    .name = "report",
    .usage = "report [--url URL] [--json]",
    .summary = "show what your region holds about you, and until when",
    .options = "Per service: on or off, objects, bytes, and the date they are erased if the\n"
               "account stays unused; every change of consent; the retention rules.\n"
               "Needs a session (oikos login).\n\n"
               "options:\n"
               "  --url URL        the region (default: $OIKOS_URL, the session's)\n"
               "  --json           print the server's report as it is\n",
    .run = report_run,
};
