/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.h: the pieces of the `oikos` command-line tool. Each command lives in
 * its own src/cli/cmd_<verb>.c and exports one struct cli_cmd; src/oikos.c
 * holds the table. The helpers here are what every command shares: help and
 * usage errors, error messages in one style, the URL and session rules,
 * secrets read without echo, object names, and the progress bar.
 *
 * Helpers that print their own message return an exit code (CLI_EXIT_*);
 * the others return 0 or a negative err code. The CLI aborts on
 * out-of-memory (cli_oom). Single-threaded.
 */
#ifndef OIKOS_CLI_H
#define OIKOS_CLI_H

#include <getopt.h>

#include "base/buf.h"
#include "base/common.h"
#include "client/client.h"
#include "client/session.h"

/* Exit codes, documented in oikos(1). */
#define CLI_EXIT_OK 0    /* success */
#define CLI_EXIT_FAIL 1  /* the server said no, the network failed, a file could not be read */
#define CLI_EXIT_USAGE 2 /* bad command line */

#define CLI_DEFAULT_URL "http://127.0.0.1:7700"
/** Longest object name the API accepts, in bytes. */
#define CLI_NAME_MAX 1024
/** Longest password or share read, in bytes. */
#define CLI_SECRET_MAX 1024

/** One command of the tool. */
struct cli_cmd {
    const char *name;    /* "backup", or "operator init" for a subcommand */
    const char *usage;   /* synopsis after "oikos ", one or more lines */
    const char *summary; /* one line, lowercase, no final period */
    const char *options; /* the option list for --help, may be NULL */
    /** Runs the command; argv[0] is the command's name. Returns a CLI_EXIT_* code. */
    int (*run)(int argc, char **argv);
};

extern const struct cli_cmd cli_cmd_operator;
extern const struct cli_cmd cli_cmd_signup;
extern const struct cli_cmd cli_cmd_login;
extern const struct cli_cmd cli_cmd_logout;
extern const struct cli_cmd cli_cmd_backup;
extern const struct cli_cmd cli_cmd_restore;
extern const struct cli_cmd cli_cmd_ls;
extern const struct cli_cmd cli_cmd_dev;
extern const struct cli_cmd cli_cmd_audit;
extern const struct cli_cmd cli_cmd_consent;
extern const struct cli_cmd cli_cmd_report;
extern const struct cli_cmd cli_cmd_export;
extern const struct cli_cmd cli_cmd_erase;
extern const struct cli_cmd cli_cmd_migrate;

/* ---- help and errors ---------------------------------------------------- */

/** Prints the command's full help (usage, summary, options) to `out`. */
void cli_help(const struct cli_cmd *cmd, FILE *out);
/**
 * Prints "oikos: <message>" (if fmt is not NULL), the command's usage and
 * a pointer to --help on stderr. Returns CLI_EXIT_USAGE.
 */
PRINTF_LIKE(2, 3) int cli_usage_error(const struct cli_cmd *cmd, const char *fmt, ...);
/** Prints "oikos: <message>" on stderr. */
PRINTF_LIKE(1, 2) void cli_error(const char *fmt, ...);
/** Prints "hint: <message>" on stderr. */
PRINTF_LIKE(1, 2) void cli_hint(const char *fmt, ...);
/** Reports out-of-memory and exits 1: the CLI does not go on without memory. */
NORETURN void cli_oom(void);

/**
 * Reports a failed call: for rc < 0 the network or local error
 * ("oikos: <what>: <why>"), else the server's error answer
 * ("oikos: <what>: <message> (<code>)") followed by a hint where one helps
 * (sealed region, retry delay, missing consent, expired session).
 * Returns CLI_EXIT_FAIL.
 */
int cli_fail(struct oc *c, int rc, const struct oc_resp *r, const char *what);

/**
 * getopt_long with the tool's error messages: prints "oikos: <cmd>: unknown
 * option" or "... needs a value" and returns '?' for both; otherwise as
 * getopt_long. Reset optind to 0 before the first call of a command.
 * `shortopts` must start with ':' (':' for "+:" in subcommand dispatchers).
 */
int cli_getopt(const struct cli_cmd *cmd, int argc, char **argv, const char *shortopts,
               const struct option *longopts);

/**
 * Parses option `opt`'s value as a decimal number in [min, max] with
 * parse_u64. Returns 0, or prints a usage error and returns CLI_EXIT_USAGE.
 */
int cli_parse_num(const struct cli_cmd *cmd, const char *opt, const char *arg, uint64_t min,
                  uint64_t max, uint64_t *out);

/* ---- connecting --------------------------------------------------------- */

/**
 * The server URL: `opt` (--url) if set, else $OIKOS_URL, else the saved
 * session's url (s may be NULL), else CLI_DEFAULT_URL. Borrowed.
 */
const char *cli_url(const char *opt, const struct session *s);

/**
 * Makes a client for `url` with `token` (may be NULL). Returns 0, or prints
 * the error and returns CLI_EXIT_USAGE for a bad URL. Caller owns *out.
 */
int cli_connect(const char *url, const char *token, struct oc **out);

/**
 * Loads the saved session into `s` (caller releases it). Returns 0, or
 * prints why not (not logged in: with a hint to log in) and returns
 * CLI_EXIT_FAIL.
 */
int cli_session_load(struct session *s);

/**
 * Loads the saved session into `s` if there is a usable one, silently; else
 * leaves `s` zeroed. For commands that only want its URL. Caller releases.
 */
void cli_session_peek(struct session *s);

/** Prints `j` as indented JSON and a newline on stdout (for --json). */
void cli_print_json(const json_t *j);

/**
 * Asks the server whether `service` is on for the session's account (GET
 * /v1/me/consents), so that nothing of a service that is off is ever sent.
 * Returns 0 with *on set, or reports the failure and returns CLI_EXIT_FAIL.
 */
int cli_consent_check(struct oc *c, const char *service, bool *on);

/** Whether `s` is one of the API's services. */
bool cli_service_valid(const char *s);
/** Returns 0 for a known service, else prints a usage error (listing them) and returns 2. */
int cli_check_service(const struct cli_cmd *cmd, const char *s);

/* ---- object names ------------------------------------------------------- */

enum {
    CLI_NAME_STRIPPED_ROOT = 1, /* a leading '/' was removed */
    CLI_NAME_STRIPPED_UP = 2,   /* leading '..' components were removed */
};

/**
 * Turns a local path into an object name: '.' and empty components go,
 * "a/../b" becomes "b", a leading '/' and '..' components that would climb
 * above the start are removed (as tar does; *flags says which, may be NULL).
 * Appends the result to `out`. Returns 0, ERR_INVAL when nothing is left or
 * the name is longer than CLI_NAME_MAX, ERR_NOMEM.
 */
MUST_CHECK int cli_name_normalise(const char *path, struct buf *out, unsigned *flags);

/**
 * Whether a name from the server may be written under the restore
 * directory: it must already be in the form cli_name_normalise gives (not
 * empty, not absolute, no '.', '..' or empty components) and hold no
 * control characters. restore skips names that fail.
 */
bool cli_name_safe(const char *name);

/* ---- listing ------------------------------------------------------------ */

/** A live object as the change feed describes it. */
struct cli_object {
    char *name; /* owned */
    char *etag; /* owned, "" if the feed gave none */
    uint64_t size;
};

/** A list of objects, sorted by name. */
struct cli_objects {
    struct cli_object *v;
    size_t n, cap;
};

/**
 * Lists the live objects of `service` through the change feed (GET
 * /v1/me/data/SERVICE?since=CURSOR, page after page while "more" is true),
 * keeping the last state of each name and dropping deleted ones. Fills
 * `out` (zeroed first; caller releases it). Returns 0, or reports the
 * failure and returns CLI_EXIT_FAIL.
 */
int cli_list_objects(struct oc *c, const char *service, struct cli_objects *out);
/** Frees a list. Accepts NULL. */
void cli_objects_release(struct cli_objects *o);

/**
 * Whether a failed answer (or rc < 0) dooms the whole run (network, auth,
 * sealed, consent, rate limit, server error) rather than one object.
 */
bool cli_fatal_answer(int rc, const struct oc_resp *r);

/**
 * A copy of `s` fit for a terminal: control characters (bytes below 0x20
 * and 0x7f) become '?', so that a name from the server cannot move the
 * cursor or change colours. Caller frees it; aborts on out-of-memory.
 */
char *cli_visible(const char *s);

/* ---- secrets ------------------------------------------------------------ */

/**
 * Reads a password into locked memory: from `file` ("-" for stdin; the
 * first line), else $OIKOS_PASSWORD, else a prompt without echo on the
 * terminal (asked twice if `confirm`), else the first line of stdin when
 * it is not a terminal. Returns 0 with *out (free with cli_secret_free),
 * or prints the error and returns CLI_EXIT_FAIL or CLI_EXIT_USAGE.
 */
int cli_password(const char *file, bool confirm, char **out);

/**
 * Prompts for a secret on the terminal without echo, or reads the first
 * line of stdin when stdin is not a terminal. Returns as cli_password.
 */
int cli_secret_prompt(const char *prompt, char **out);

/** Wipes and frees a secret from cli_password or cli_secret_prompt. Accepts NULL. */
void cli_secret_free(char *s);

/* ---- progress ----------------------------------------------------------- */

/** A progress bar on stderr, drawn only when stderr is a terminal. */
struct cli_progress {
    bool enabled;
    uint64_t total; /* 0: unknown */
    uint64_t done;
    uint64_t start_ns, last_draw_ns;
    uint64_t base; /* bytes of finished transfers, for cli_progress_cb */
};

/** Starts a bar for `total` bytes (0 if unknown); enabled iff stderr is a terminal. */
void cli_progress_start(struct cli_progress *p, uint64_t total);
/** Records `done` bytes and redraws at most 10 times a second. */
void cli_progress_update(struct cli_progress *p, uint64_t done);
/** Draws the final state and ends the line (nothing if not enabled). */
void cli_progress_end(struct cli_progress *p);
/** An oc_progress_fn: `arg` is a struct cli_progress; shows base + now. Never aborts. */
int cli_progress_cb(void *arg, uint64_t now, uint64_t total);

/**
 * Formats one line of the bar into out (cap bytes, always NUL-terminated)
 * for a terminal `width` columns wide, e.g.
 * " 42% [########            ] 1.2 MiB/2.9 MiB  512.0 KiB/s  ETA 0:04".
 * With total 0: bytes and rate only. Pure; returns the length written.
 */
size_t cli_progress_format(char *out, size_t cap, uint64_t done, uint64_t total,
                           uint64_t elapsed_ns, unsigned width);

/** Formats a byte count: "512 B", "1.5 KiB", "12.0 MiB", ... Pure. */
void cli_format_size(char *out, size_t cap, uint64_t bytes);

#endif
