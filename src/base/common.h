/* SPDX-License-Identifier: Apache-2.0 */
/*
 * common.h: the one header every oikos .c file includes first. It pulls in
 * the C library headers used everywhere, the error codes, the small helpers
 * that every module needs (ARRAY_SIZE, MUST_CHECK, BUG), and banned.h last.
 */
#ifndef OIKOS_COMMON_H
#define OIKOS_COMMON_H

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MUST_CHECK __attribute__((warn_unused_result))
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define NORETURN __attribute__((noreturn))
#define UNUSED __attribute__((unused))

/** Aborts with a message: only for programmer errors, never for input. */
NORETURN void bug_at(const char *file, int line, const char *msg);
#define BUG(msg) bug_at(__FILE__, __LINE__, (msg))
#define BUG_ON(cond)                                                                               \
    do {                                                                                           \
        if (cond)                                                                                  \
            bug_at(__FILE__, __LINE__, #cond);                                                     \
    } while (0)

#include "base/banned.h"

#endif
