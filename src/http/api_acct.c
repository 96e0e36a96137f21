/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_acct.c: sign-up, log-in and log-out, over core/acct.h. Passwords are
 * taken from the parsed JSON and never logged.
 */
#include "base/common.h"

#include "core/acct.h"
#include "core/migrate.h"
#include "crypto/secret.h"
#include "http/http_int.h"

int
api_signup(struct req *q)
{
    const char *country = NULL, *password = NULL;
    size_t pwlen = 0;
    char id[STORE_ID_MAX];
    if (json_unpack(q->json, "{s:s,s:s%}", "country", &country, "password", &password, &pwlen) != 0)
        return http_fail(q, ERR_INVAL, "expected {\"country\": \"CC\", \"password\": \"...\"}");
    char name[REGION_NAME_MAX], home[REGION_URL_MAX];
    int rc = region_home(q->region, country, name, home);
    if (rc == ERR_WRONG_REGION)
        return http_redirect(q, rc, name, home);
    rc = acct_create(q->region, country, password, pwlen, id);
    if (rc == ERR_INVAL)
        return http_fail(q, rc, "country must be two letters and the password 8 to 1024 bytes");
    if (rc)
        return rc;
    json_t *o = json_pack("{s:s,s:s}", "account", id, "region", region_name(q->region));
    if (!o)
        return ERR_NOMEM;
    rc = http_reply_json(q, 201, o);
    json_decref(o);
    return rc;
}

int
api_login(struct req *q)
{
    const char *account = NULL, *password = NULL;
    size_t pwlen = 0;
    char token[REGION_TOKEN_MAX];
    if (json_unpack(q->json, "{s:s,s:s%}", "account", &account, "password", &password, &pwlen) != 0)
        return http_fail(q, ERR_INVAL, "expected {\"account\": \"...\", \"password\": \"...\"}");
    char name[REGION_NAME_MAX], home[REGION_URL_MAX];
    int rc = migrate_route(q->region, account, name, home);
    if (rc == ERR_WRONG_REGION)
        return http_redirect(q, rc, name, home);
    /* a new session is a write: none while the account is frozen for a move,
     * whose sessions go with it (migrate.h) */
    if (acct_id_valid(account) && migrate_write_enter(q->region, account, &q->write_slot)) {
        q->retry_after = MIGRATE_RETRY_AFTER;
        return http_fail(q, ERR_UNAVAILABLE, "the account is moving to another region");
    }
    rc = acct_login(q->region, account, password, pwlen, token, &q->retry_after);
    if (rc == ERR_UNAUTHORIZED)
        return http_fail(q, rc, "wrong account or password");
    if (rc == ERR_RATE_LIMITED)
        return http_fail(q, rc, "too many wrong passwords; try again later");
    if (rc)
        return rc;
    json_t *o = json_pack("{s:s,s:s}", "token", token, "account", account);
    secret_wipe(token, sizeof(token));
    if (!o)
        return ERR_NOMEM;
    rc = http_reply_json(q, 201, o);
    json_decref(o);
    return rc;
}

int
api_logout(struct req *q)
{
    int rc = acct_logout(q->region, q->token);
    return rc ? rc : http_reply_empty(q, 204);
}
