/* SPDX-License-Identifier: Apache-2.0 */
/*
 * session.h: the saved login of the command-line tool, one JSON file
 * {"url","account","token"} at $OIKOS_CONFIG_DIR/session.json, else
 * $XDG_CONFIG_HOME/oikos/session.json, else ~/.config/oikos/session.json.
 * The directory is created 0700 and the file written 0600 atomically
 * (temporary file, fsync, rename), so a crash leaves the old session or the
 * new one, never half of one, and it is never readable by anyone else: a
 * session file that is refuses to load. Not thread-safe (reads the
 * environment); callers serialise.
 */
#ifndef OIKOS_SESSION_H
#define OIKOS_SESSION_H

#include "base/buf.h"
#include "base/common.h"

/** A saved login. Every string is owned by the struct; release with session_release. */
struct session {
    char *url;     /* the home region's base URL */
    char *account; /* account id ("in-..."), may be NULL */
    char *token;   /* bearer token; wiped by session_release */
};

/**
 * Appends the session file's path to `out`. Returns 0, ERR_NOT_FOUND when
 * no directory can be named (no OIKOS_CONFIG_DIR, XDG_CONFIG_HOME or home
 * directory), ERR_LIMIT or ERR_NOMEM.
 */
MUST_CHECK int session_path(struct buf *out);

/**
 * Reads the saved session into `out` (zeroed first; caller owns it and
 * releases it even on error). Returns 0; ERR_NOT_FOUND when there is none;
 * ERR_FORBIDDEN when the file is readable or writable by others or belongs
 * to another user; ERR_CORRUPT for a file that is not a session; ERR_IO
 * with errno set for a failed read; ERR_NOMEM.
 */
MUST_CHECK int session_load(struct session *out);

/**
 * Saves `s` (borrowed; url and token required), replacing any saved
 * session atomically, creating the directory (0700) if needed; the file is
 * 0600. Returns 0, ERR_INVAL for a session without url or token, ERR_IO
 * with errno set, ERR_NOMEM.
 */
MUST_CHECK int session_save(const struct session *s);

/** Deletes the saved session. Returns 0, ERR_NOT_FOUND if none, ERR_IO with errno. */
MUST_CHECK int session_remove(void);

/** Frees the strings of `s`, wiping the token. Accepts NULL. */
void session_release(struct session *s);

#endif
