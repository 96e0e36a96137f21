/* SPDX-License-Identifier: Apache-2.0 */
/*
 * oikos.c: the command-line tool's entry point, on top of src/cli/: the
 * table of commands, the global options (--help, --version), `oikos help
 * CMD [SUB]`, and the dispatch to one command's run(). Exit status: 0
 * success, 1 failure (the server said no, the network failed, a file could
 * not be read or written), 2 usage error. Everything is owned by the
 * command that runs; this file only sets up libraries. Single-threaded.
 */
#include "base/common.h"

#include "cli/cli.h"

static const struct cli_cmd *const commands[] = {
    &cli_cmd_signup, &cli_cmd_login,    &cli_cmd_logout, &cli_cmd_backup,  &cli_cmd_restore,
    &cli_cmd_ls,     &cli_cmd_operator, &cli_cmd_dev,    &cli_cmd_audit,   &cli_cmd_consent,
    &cli_cmd_report, &cli_cmd_export,   &cli_cmd_erase,  &cli_cmd_migrate,
};

static const struct cli_cmd *
find_command(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
        if (!strcmp(commands[i]->name, name))
            return commands[i];
    return NULL;
}

static void
main_usage(FILE *out)
{
    fprintf(out, "usage: oikos [--version] [--help] COMMAND [ARGS]\n\n"
                 "oikos keeps your phone's data in a cloud that stays in your country, under\n"
                 "your consent. Commands:\n\n");
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
        fprintf(out, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(out,
            "\n'oikos help COMMAND' or 'oikos COMMAND --help' tells more about a command.\n\n"
            "environment:\n"
            "  OIKOS_URL             the region to talk to (after --url, before the session's)\n"
            "  OIKOS_PASSWORD        the password, instead of a prompt\n"
            "  OIKOS_OPERATOR_TOKEN  the operator token, for 'operator seal'\n"
            "  OIKOS_CONFIG_DIR      where session.json lives (default ~/.config/oikos)\n\n"
            "exit status: 0 success, 1 failure, 2 usage error\n");
}

/* `oikos help [COMMAND [SUBCOMMAND]]` */
static int
help_run(int argc, char **argv)
{
    if (argc < 2) {
        main_usage(stdout);
        return CLI_EXIT_OK;
    }
    const struct cli_cmd *cmd = find_command(argv[1]);
    if (!cmd) {
        cli_error("no command '%s'; 'oikos --help' lists them", argv[1]);
        return CLI_EXIT_USAGE;
    }
    if (argc > 2) { /* help operator init: ask the subcommand itself */
        char help[] = "--help";
        char *sub[] = {argv[1], argv[2], help, NULL};
        return cmd->run(3, sub);
    }
    cli_help(cmd, stdout);
    return CLI_EXIT_OK;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int ch, rc;

    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "+:hV", opts, NULL)) != -1) {
        switch (ch) {
        case 'h':
            main_usage(stdout);
            return CLI_EXIT_OK;
        case 'V':
            printf("oikos %s\n", OIKOS_VERSION);
            return CLI_EXIT_OK;
        default:
            if (optopt)
                cli_error("unknown option '-%c'", optopt);
            else
                cli_error("unknown option '%s'", argv[optind - 1]);
            fprintf(stderr, "usage: oikos [--version] [--help] COMMAND [ARGS]\n");
            return CLI_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        main_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[optind];
    if (!strcmp(name, "help"))
        return help_run(argc - optind, argv + optind);
    const struct cli_cmd *cmd = find_command(name);
    if (!cmd) {
        cli_error("'%s' is not an oikos command; 'oikos --help' lists them", name);
        return CLI_EXIT_USAGE;
    }
    if (oc_global_init() != 0) {
        cli_error("cannot initialise libcurl or libsodium");
        return CLI_EXIT_FAIL;
    }
    rc = cmd->run(argc - optind, argv + optind);
    fflush(stdout);
    if (ferror(stdout)) {
        cli_error("cannot write the output: %s", strerror(errno));
        rc = CLI_EXIT_FAIL;
    }
    oc_global_cleanup();
    return rc;
}
