/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_operator.c: `oikos operator init|unseal|seal|status`, the region's
 * key ceremony and health, on top of liboikos and the /v1/sys calls.
 * `operator` dispatches to one struct cli_cmd per subcommand. Shares and
 * tokens read from the user live in cli secrets (locked, wiped); JSON
 * bodies are wiped on free by liboikos. Single-threaded.
 */
#include "base/common.h"

#include "cli/cli.h"

#define OPERATOR_SHARES_MAX 255

static const struct cli_cmd op_init, op_unseal, op_seal, op_status;

/* ---- init ---------------------------------------------------------------- */

static void
print_init(const char *url, json_t *shares, const char *token, uint64_t k)
{
    size_t i;
    json_t *sh;
    printf("initialised the region at %s: %zu key shares, any %" PRIu64 " of which unseal it\n\n",
           url, json_array_size(shares), k);
    json_array_foreach(shares, i, sh)
    {
        printf("  share %zu: %s\n", i + 1, json_string_value(sh));
    }
    printf("\n  operator token: %s\n\n", token);
    printf("WARNING: these shares and this token are shown only this once; oikosd keeps\n"
           "no copy. Hand each share to a different custodian now. With fewer than %" PRIu64
           " shares\nnobody can unseal the region, and its data is lost for good. Keep the\n"
           "operator token for 'oikos operator seal' (OIKOS_OPERATOR_TOKEN).\n\n"
           "next: %" PRIu64 " custodians each run 'oikos operator unseal --url %s'\n",
           k, k, url);
}

static int
op_init_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"shares", required_argument, NULL, 'n'},
        {"threshold", required_argument, NULL, 'k'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url_opt = NULL;
    uint64_t n = 5, k = 3;
    bool json = false, k_set = false;
    struct session s = {0};
    struct oc *c = NULL;
    struct oc_resp r = {0};
    json_t *body = NULL;
    int ch, rc;

    optind = 0;
    while ((ch = cli_getopt(&op_init, argc, argv, ":h", opts)) != -1) {
        switch (ch) {
        case 'u':
            url_opt = optarg;
            break;
        case 'n':
            if ((rc = cli_parse_num(&op_init, "--shares", optarg, 1, OPERATOR_SHARES_MAX, &n)))
                return rc;
            break;
        case 'k':
            if ((rc = cli_parse_num(&op_init, "--threshold", optarg, 1, OPERATOR_SHARES_MAX, &k)))
                return rc;
            k_set = true;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            cli_help(&op_init, stdout);
            return CLI_EXIT_OK;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return cli_usage_error(&op_init, "unexpected argument '%s'", argv[optind]);
    if (!k_set && k > n)
        k = n;
    if (k > n)
        return cli_usage_error(
            &op_init, "the threshold (%" PRIu64 ") cannot exceed the shares (%" PRIu64 ")", k, n);

    cli_session_peek(&s);
    rc = cli_connect(cli_url(url_opt, &s), NULL, &c);
    if (rc)
        goto out;
    body = json_pack("{s:I, s:I}", "shares", (json_int_t)n, "threshold", (json_int_t)k);
    if (!body)
        cli_oom();
    rc = oc_call(c, &r, "POST", "/v1/sys/init", body);
    if (rc || r.status != 200) {
        rc = cli_fail(c, rc, &r, "cannot initialise the region");
        if (r.status == 409)
            cli_hint("a region is initialised only once; unseal it with 'oikos operator unseal'");
        goto out;
    }
    json_t *shares = json_object_get(r.json, "shares");
    const char *token = json_string_value(json_object_get(r.json, "operator_token"));
    bool ok = json_is_array(shares) && json_array_size(shares) > 0 && token;
    for (size_t i = 0; ok && i < json_array_size(shares); i++)
        ok = json_is_string(json_array_get(shares, i));
    if (!ok) {
        /* the shares may be in there: show what came rather than lose them */
        cli_error("the server's answer to init is not as expected; here it is as it came:");
        cli_print_json(r.json ? r.json : json_null());
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if (json)
        cli_print_json(r.json);
    else
        print_init(oc_url(c), shares, token, k);
    rc = CLI_EXIT_OK;
out:
    if (body)
        json_decref(body);
    oc_resp_release(&r);
    oc_free(c);
    session_release(&s);
    return rc;
}

static const struct cli_cmd op_init = {
    .name = "operator init",
    .usage = "operator init [--url URL] [--shares N] [--threshold K] [--json]",
    .summary = "initialise a new region: make its master key, split into shares, once",
    .options =
        "The master key is split into N shares of which any K unseal the region; the\n"
        "shares and the operator token are printed once and kept nowhere else.\n\n"
        "options:\n"
        "  --url URL        the region (default: $OIKOS_URL, the session's, " CLI_DEFAULT_URL ")\n"
        "  --shares N       how many key shares to make (1-255, default 5)\n"
        "  --threshold K    how many shares unseal the region (default 3)\n"
        "  --json           print the server's answer as JSON\n",
    .run = op_init_run,
};

/* ---- unseal -------------------------------------------------------------- */

static int
op_unseal_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url_opt = NULL;
    bool json = false;
    char *share = NULL;
    struct session s = {0};
    struct oc *c = NULL;
    struct oc_resp r = {0};
    json_t *body = NULL;
    int ch, rc;

    optind = 0;
    while ((ch = cli_getopt(&op_unseal, argc, argv, ":h", opts)) != -1) {
        switch (ch) {
        case 'u':
            url_opt = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            cli_help(&op_unseal, stdout);
            return CLI_EXIT_OK;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    if (argc - optind > 1)
        return cli_usage_error(&op_unseal, "one share at a time, please");

    cli_session_peek(&s);
    rc = cli_connect(cli_url(url_opt, &s), NULL, &c);
    if (rc)
        goto out;
    if (optind < argc) {
        body = json_pack("{s:s}", "share", argv[optind]);
    } else {
        rc = cli_secret_prompt("unseal share: ", &share);
        if (rc)
            goto out;
        if (!share[0]) {
            rc = cli_usage_error(&op_unseal, "no share given");
            goto out;
        }
        body = json_pack("{s:s}", "share", share);
    }
    if (!body)
        cli_oom();
    rc = oc_call(c, &r, "POST", "/v1/sys/unseal", body);
    if (rc || r.status != 200) {
        rc = cli_fail(c, rc, &r, "cannot unseal");
        goto out;
    }
    json_t *sealed = json_object_get(r.json, "sealed");
    json_int_t progress = json_integer_value(json_object_get(r.json, "progress"));
    json_int_t threshold = json_integer_value(json_object_get(r.json, "threshold"));
    if (json) {
        cli_print_json(r.json);
    } else if (json_is_false(sealed)) {
        printf("unsealed\n");
    } else if (json_is_true(sealed)) {
        printf("%" JSON_INTEGER_FORMAT " of %" JSON_INTEGER_FORMAT " shares in\n", progress,
               threshold);
    } else {
        cli_error("cannot unseal: the server's answer says neither sealed nor unsealed");
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    rc = CLI_EXIT_OK;
out:
    if (body)
        json_decref(body);
    cli_secret_free(share);
    oc_resp_release(&r);
    oc_free(c);
    session_release(&s);
    return rc;
}

static const struct cli_cmd op_unseal = {
    .name = "operator unseal",
    .usage = "operator unseal [--url URL] [--json] [SHARE]",
    .summary = "submit one key share; the region unseals once enough shares are in",
    .options =
        "The share is read from the argument, else asked for without echo on the\n"
        "terminal, else read from standard input (first line). An argument shows in\n"
        "the process list and the shell history: prefer the prompt.\n\n"
        "options:\n"
        "  --url URL        the region (default: $OIKOS_URL, the session's, " CLI_DEFAULT_URL ")\n"
        "  --json           print the server's answer as JSON\n",
    .run = op_unseal_run,
};

/* ---- seal ---------------------------------------------------------------- */

static int
op_seal_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"token", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url_opt = NULL, *token = NULL;
    struct session s = {0};
    struct oc *c = NULL;
    struct oc_resp r = {0};
    int ch, rc;

    optind = 0;
    while ((ch = cli_getopt(&op_seal, argc, argv, ":h", opts)) != -1) {
        switch (ch) {
        case 'u':
            url_opt = optarg;
            break;
        case 't':
            token = optarg;
            break;
        case 'h':
            cli_help(&op_seal, stdout);
            return CLI_EXIT_OK;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return cli_usage_error(&op_seal, "unexpected argument '%s'", argv[optind]);
    if (!token || !*token)
        token = getenv("OIKOS_OPERATOR_TOKEN");
    if (!token || !*token)
        return cli_usage_error(&op_seal,
                               "no operator token: set OIKOS_OPERATOR_TOKEN or use --token");

    cli_session_peek(&s);
    rc = cli_connect(cli_url(url_opt, &s), NULL, &c);
    if (rc)
        goto out;
    if (oc_set_token(c, token)) {
        rc = cli_usage_error(&op_seal, "the operator token holds spaces or control characters");
        goto out;
    }
    rc = oc_call(c, &r, "POST", "/v1/sys/seal", NULL);
    if (rc || r.status != 200) {
        rc = cli_fail(c, rc, &r, "cannot seal");
        goto out;
    }
    printf("sealed: the region at %s serves nothing but health and unseal until unsealed\n",
           oc_url(c));
    rc = CLI_EXIT_OK;
out:
    oc_resp_release(&r);
    oc_free(c);
    session_release(&s);
    return rc;
}

static const struct cli_cmd op_seal = {
    .name = "operator seal",
    .usage = "operator seal [--url URL] [--token TOKEN]",
    .summary = "seal the region: wipe its master key from memory",
    .options =
        "Every call but health and unseal then answers 503 until custodians unseal\n"
        "the region again.\n\n"
        "options:\n"
        "  --url URL        the region (default: $OIKOS_URL, the session's, " CLI_DEFAULT_URL ")\n"
        "  --token TOKEN    the operator token from init (default: $OIKOS_OPERATOR_TOKEN,\n"
        "                   which keeps it out of the process list)\n",
    .run = op_seal_run,
};

/* ---- status -------------------------------------------------------------- */

static const char *
yes_no(json_t *v)
{
    return json_is_true(v) ? "yes" : json_is_false(v) ? "no" : "?";
}

static int
op_status_run(int argc, char **argv)
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
    while ((ch = cli_getopt(&op_status, argc, argv, ":h", opts)) != -1) {
        switch (ch) {
        case 'u':
            url_opt = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            cli_help(&op_status, stdout);
            return CLI_EXIT_OK;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return cli_usage_error(&op_status, "unexpected argument '%s'", argv[optind]);

    cli_session_peek(&s);
    rc = cli_connect(cli_url(url_opt, &s), NULL, &c);
    if (rc)
        goto out;
    rc = oc_call(c, &r, "GET", "/v1/sys/health", NULL);
    /* a health answer may come with 503 while sealed: it is still an answer */
    bool health = !rc && (r.status == 200 || r.status == 503) && json_is_object(r.json) &&
                  json_object_get(r.json, "sealed");
    if (!health) {
        rc = cli_fail(c, rc, &r, "cannot read the region's health");
        goto out;
    }
    if (json) {
        cli_print_json(r.json);
    } else {
        const char *region = json_string_value(json_object_get(r.json, "region"));
        const char *version = json_string_value(json_object_get(r.json, "version"));
        printf("url          %s\n", oc_url(c));
        printf("region       %s\n", region ? region : "?");
        printf("version      %s\n", version ? version : "?");
        printf("initialized  %s\n", yes_no(json_object_get(r.json, "initialized")));
        printf("sealed       %s\n", yes_no(json_object_get(r.json, "sealed")));
        const char *pk = json_string_value(json_object_get(r.json, "peer_key"));
        if (pk) /* what the other regions pin: peer_key in the cluster file */
            printf("peer_key     %s\n", pk);
    }
    rc = CLI_EXIT_OK;
out:
    oc_resp_release(&r);
    oc_free(c);
    session_release(&s);
    return rc;
}

static const struct cli_cmd op_status = {
    .name = "operator status",
    .usage = "operator status [--url URL] [--json]",
    .summary = "show the region's name, version, and whether it is initialised and sealed",
    .options =
        "options:\n"
        "  --url URL        the region (default: $OIKOS_URL, the session's, " CLI_DEFAULT_URL ")\n"
        "  --json           print the server's answer as JSON\n",
    .run = op_status_run,
};

/* ---- the dispatcher ------------------------------------------------------ */

static const struct cli_cmd *const op_subs[] = {&op_init, &op_unseal, &op_seal, &op_status};

static int
operator_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    optind = 0;
    /* "+": stop at the subcommand, whose options are its own */
    while ((ch = cli_getopt(&cli_cmd_operator, argc, argv, "+:h", opts)) != -1) {
        if (ch == 'h') {
            cli_help(&cli_cmd_operator, stdout);
            return CLI_EXIT_OK;
        }
        return CLI_EXIT_USAGE;
    }
    if (optind >= argc)
        return cli_usage_error(&cli_cmd_operator, "which one: init, unseal, seal or status?");
    const char *sub = argv[optind];
    for (size_t i = 0; i < ARRAY_SIZE(op_subs); i++) {
        /* "operator init" -> "init" */
        const char *name = strchr(op_subs[i]->name, ' ') + 1;
        if (!strcmp(sub, name))
            return op_subs[i]->run(argc - optind, argv + optind);
    }
    return cli_usage_error(&cli_cmd_operator, "unknown operator command '%s'", sub);
}

const struct cli_cmd cli_cmd_operator = {
    .name = "operator",
    .usage = "operator init [--url URL] [--shares N] [--threshold K] [--json]\n"
             "operator unseal [--url URL] [--json] [SHARE]\n"
             "operator seal [--url URL] [--token TOKEN]\n"
             "operator status [--url URL] [--json]",
    .summary = "run a region: initialise it, unseal it with key shares, seal it, check it",
    .options = "commands:\n"
               "  init      create the master key and split it into shares (once per region)\n"
               "  unseal    submit one key share\n"
               "  seal      wipe the master key from memory (needs the operator token)\n"
               "  status    show whether the region is initialised and sealed\n\n"
               "Run 'oikos operator COMMAND --help' for a command's options.\n",
    .run = operator_run,
};
