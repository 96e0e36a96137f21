/* SPDX-License-Identifier: Apache-2.0 */
/*
 * err.h: the one list of oikos error codes. ERR_MAP generates the enum and
 * err_str()/err_code(); 0 is success, every error is negative. The HTTP layer
 * maps each code to a status and the API's snake_case code in one table
 * (http_status_of in http/server.c); nothing else invents error numbers.
 */
#ifndef OIKOS_ERR_H
#define OIKOS_ERR_H

/* X(name, api code, message) */
#define ERR_MAP(X)                                                                                 \
    X(NOMEM, "internal", "out of memory")                                                          \
    X(INVAL, "bad_request", "invalid input")                                                       \
    X(UNAUTHORIZED, "unauthorized", "authentication required or failed")                           \
    X(FORBIDDEN, "forbidden", "not allowed")                                                       \
    X(NOT_FOUND, "not_found", "not found")                                                         \
    X(METHOD, "method_not_allowed", "method not allowed")                                          \
    X(CONSENT, "consent_required", "the service is off for this account")                          \
    X(WRONG_REGION, "wrong_region", "the account lives in another region")                         \
    X(SEALED, "sealed", "the region is sealed")                                                    \
    X(TOO_LARGE, "too_large", "too large")                                                         \
    X(CONFLICT, "conflict", "conflict")                                                            \
    X(EXISTS, "conflict", "already exists")                                                        \
    X(RATE_LIMITED, "rate_limited", "too many attempts")                                           \
    X(BAD_SHARE, "bad_request", "the share is corrupted or belongs to another key")                \
    X(CRYPTO, "internal", "authentication of sealed data failed")                                  \
    X(CORRUPT, "internal", "stored data is corrupted")                                             \
    X(IO, "unavailable", "storage failure")                                                        \
    X(UNAVAILABLE, "unavailable", "temporarily unavailable")                                       \
    X(NOT_INITIALIZED, "not_initialized", "the region is not initialised")                         \
    X(LIMIT, "too_large", "a limit was exceeded")                                                  \
    X(AUDIT, "unavailable", "the audit log cannot record this action")                             \
    X(PRECONDITION, "precondition_failed", "a precondition of the request failed")                 \
    X(INTERNAL, "internal", "internal error")

enum err {
    ERR_OK = 0,
#define ERR_ENUM_(name, code, msg) ERR_##name,
    ERR_FIRST_ = -1000,
    ERR_MAP(ERR_ENUM_)
#undef ERR_ENUM_
        ERR_LAST_
};

/** Returns the human message for an error code ("ok" for 0). Never NULL. */
const char *err_str(int err);
/** Returns the API's snake_case code for an error ("internal" if unknown). */
const char *err_code(int err);

#endif
