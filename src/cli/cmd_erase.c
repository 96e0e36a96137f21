/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_erase.c: `oikos erase`, on top of liboikos and DELETE /v1/me: erases
 * the account of the saved session after the user types its id (or with
 * --yes, for scripts), then removes the session file, whose token died
 * with the account. The confirmation is read with read(2), a line at most,
 * from the terminal or standard input. Single-threaded.
 */
#include "base/common.h"

#include <unistd.h>

#include "cli/cli.h"

/* Reads one line (without its newline) from fd into out; false at end of input. */
static bool
read_line(int fd, char *out, size_t cap)
{
    size_t n = 0;
    for (;;) {
        char ch;
        ssize_t r = read(fd, &ch, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (ch == '\n') {
            out[n] = 0;
            return true;
        }
        if (n + 1 < cap)
            out[n++] = ch;
    }
    out[n] = 0;
    return n > 0;
}

static int
erase_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"yes", no_argument, NULL, 'y'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url_opt = NULL;
    bool yes = false;
    struct session s = {0};
    struct oc *c = NULL;
    struct oc_resp r = {0};
    char typed[128];
    int ch, rc;

    optind = 0;
    while ((ch = cli_getopt(&cli_cmd_erase, argc, argv, ":h", opts)) != -1) {
        switch (ch) {
        case 'u':
            url_opt = optarg;
            break;
        case 'y':
            yes = true;
            break;
        case 'h':
            cli_help(&cli_cmd_erase, stdout);
            return CLI_EXIT_OK;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return cli_usage_error(&cli_cmd_erase, "unexpected argument '%s'", argv[optind]);
    rc = cli_session_load(&s);
    if (rc)
        goto out;
    if (!s.account) {
        cli_error("the session does not name its account; log in again");
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if (!yes) {
        fprintf(stderr,
                "This erases account %s for good: every key, consent and object, and every\n"
                "session. Nothing can bring it back. Type the account id to confirm: ",
                s.account);
        fflush(stderr);
        bool got = read_line(STDIN_FILENO, typed, sizeof(typed));
        if (!got || strcmp(typed, s.account)) {
            cli_error("the id typed is not '%s': nothing was erased", s.account);
            rc = CLI_EXIT_FAIL;
            goto out;
        }
    }
    rc = cli_connect(cli_url(url_opt, &s), s.token, &c);
    if (rc)
        goto out;
    int call = oc_call(c, &r, "DELETE", "/v1/me", NULL);
    if (call || r.status != 204) {
        rc = cli_fail(c, call, &r, "cannot erase the account");
        goto out;
    }
    int rm = session_remove();
    if (rm && rm != ERR_NOT_FOUND)
        cli_error("cannot remove the session file: %s", strerror(errno));
    printf("erased account %s: its keys, consents, data and sessions are gone\n", s.account);
    rc = CLI_EXIT_OK;
out:
    oc_resp_release(&r);
    oc_free(c);
    session_release(&s);
    return rc;
}

const struct cli_cmd cli_cmd_erase = {
    .name = "erase",
    .usage = "erase [--url URL] [--yes]",
    .summary = "erase your account and everything it holds, for good",
    .options = "Asks you to type the account id first. The keys go at once, so no copy of\n"
               "the data can be read again; the sweeper deletes the ciphertext within the\n"
               "hour. The session file is removed. Needs a session (oikos login).\n\n"
               "options:\n"
               "  --url URL        the region (default: $OIKOS_URL, the session's)\n"
               "  --yes            do not ask (for scripts)\n",
    .run = erase_run,
};
