/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.h: one line per event, `key=value` fields, to stderr or a file.
 * Never pass a key, token, password, phone number, name or body: log
 * pseudonyms and hashes. Thread-safe (each line is one write(2)).
 */
#ifndef OIKOS_LOG_H
#define OIKOS_LOG_H

#include "base/common.h"

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERR };

/** Sets the minimum level and the output fd (default: info, stderr). */
void log_setup(enum log_level min, int fd);
/** Parses "debug", "info", "warn", "error". Returns 0 or ERR_INVAL. */
MUST_CHECK int log_level_parse(const char *s, enum log_level *out);

PRINTF_LIKE(2, 3) void log_msg(enum log_level lvl, const char *fmt, ...);
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
/** Logs at error level and exits with status 1. For start-up only. */
NORETURN PRINTF_LIKE(1, 2) void fatal(const char *fmt, ...);

#endif
