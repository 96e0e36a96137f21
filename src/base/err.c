/* SPDX-License-Identifier: Apache-2.0 */
/*
 * err.c: messages and API codes of the error list in err.h, and bug_at().
 * Pure tables; thread-safe.
 */
#include "base/common.h"

#define ERR_MSG_(name, code, msg) [ERR_##name - ERR_FIRST_ - 1] = msg,
static const char *const err_msgs[] = {ERR_MAP(ERR_MSG_)};
#undef ERR_MSG_
#define ERR_CODE_(name, code, msg) [ERR_##name - ERR_FIRST_ - 1] = code,
static const char *const err_codes[] = {ERR_MAP(ERR_CODE_)};
#undef ERR_CODE_

static int
err_index(int err)
{
    int i = err - ERR_FIRST_ - 1;
    if (i < 0 || (size_t)i >= ARRAY_SIZE(err_msgs))
        return -1;
    return i;
}

const char *
err_str(int err)
{
    if (err == 0)
        return "ok";
    int i = err_index(err);
    return i < 0 ? "unknown error" : err_msgs[i];
}

const char *
err_code(int err)
{
    int i = err_index(err);
    return i < 0 ? "internal" : err_codes[i];
}

void
bug_at(const char *file, int line, const char *msg)
{
    fprintf(stderr, "BUG: %s:%d: %s\n", file, line, msg);
    abort();
}
