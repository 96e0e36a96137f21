/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cfg.c: the option table and its four sources (see cfg.h). inih reads the
 * file; every value, from any source, goes through the same setter and the
 * same checks. Called once at start-up, single-threaded.
 */
#include "base/common.h"

#include <ini.h>

#include "base/cfg.h"
#include "base/util.h"

enum opt_type { OPT_STR, OPT_U64, OPT_SIZE, OPT_DURATION };

struct opt {
    const char *name;
    enum opt_type type;
    size_t off;
    const char *def;
    uint64_t min, max;
    const char *help;
};

#define O(field) offsetof(struct config, field)
#define GiB (1024ull * 1024 * 1024)
#define YEAR (365ull * 86400)

static const struct opt opts[] = {
    {"region", OPT_STR, O(region), "local", 0, 0, "this region's name (e.g. in, sg, us)"},
    {"listen", OPT_STR, O(listen), "127.0.0.1:7700", 0, 0, "HOST:PORT to listen on (port 0: any)"},
    {"data", OPT_STR, O(data), NULL, 0, 0, "data directory (required)"},
    {"cluster", OPT_STR, O(cluster), NULL, 0, 0, "cluster file naming every region"},
    {"store", OPT_STR, O(store), NULL, 0, 0, "store URL (default sqlite:DATA/oikos.db)"},
    {"keystore", OPT_STR, O(keystore), NULL, 0, 0,
     "key store URL: service keys and consents, never snapshotted (default sqlite:DATA/keys.db)"},
    {"config", OPT_STR, O(config), NULL, 0, 0, "configuration file (INI, section [oikosd])"},
    {"log-level", OPT_STR, O(log_level), "info", 0, 0, "debug, info, warn or error"},
    {"log-file", OPT_STR, O(log_file), NULL, 0, 0, "append logs to this file (default stderr)"},
    {"threads", OPT_U64, O(threads), "32", 1, 1024, "HTTP worker threads"},
    {"connection-limit", OPT_U64, O(connection_limit), "1024", 1, 100000,
     "simultaneous connections"},
    {"connection-timeout", OPT_U64, O(connection_timeout), "60", 1, 3600,
     "seconds an idle connection is kept"},
    {"max-header-bytes", OPT_SIZE, O(max_header_bytes), "32K", 4096, 1024 * 1024,
     "per-connection memory for request headers"},
    {"max-json-bytes", OPT_SIZE, O(max_json_bytes), "64K", 1024, 16 * 1024 * 1024,
     "largest JSON request body"},
    {"max-object-bytes", OPT_SIZE, O(max_object_bytes), "1G", 1, 64 * GiB,
     "largest object a client may store"},
    {"chunk-bytes", OPT_SIZE, O(chunk_bytes), "1M", 4096, 16 * 1024 * 1024,
     "objects are sealed and stored in chunks of this size"},
    {"session-ttl", OPT_U64, O(session_ttl), "2592000", 60, 365ull * 86400,
     "seconds a session token stays valid"},
    {"login-max-failures", OPT_U64, O(login_max_failures), "5", 1, 1000,
     "wrong passwords before an account is locked for a while"},
    {"login-lockout", OPT_U64, O(login_lockout), "300", 1, 86400,
     "seconds an account stays locked after too many wrong passwords"},
    {"pwhash-ops", OPT_U64, O(pwhash_ops), "2", 1, 100, "Argon2id passes"},
    {"pwhash-mem", OPT_SIZE, O(pwhash_mem), "64M", 8192, 4 * GiB, "Argon2id memory"},
    {"policy-version", OPT_STR, O(policy_version), "1", 0, 0,
     "privacy policy version recorded with every consent change"},
    /* retention: the rules are listed in core/retention.c and docs/operations.md */
    {"retention-idle-account", OPT_DURATION, O(retention_idle_account), "730d", 86400, 100 * YEAR,
     "erase an account after this long without activity"},
    {"retention-purge", OPT_DURATION, O(retention_purge), "1h", 60, 30 * 86400,
     "longest time revoked or erased data stays on disk"},
    {"retention-message-undelivered", OPT_DURATION, O(retention_message_undelivered), "30d", 3600,
     YEAR, "delete a relayed message not delivered within this time"},
};

/* Records the first error message: what went wrong, the subject quoted. */
PRINTF_LIKE(2, 3) static void say(struct buf *err, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (err->len == 0 && buf_adds(err, msg) != 0)
        return;
}

/*
 * Parses a duration: seconds, or a number followed by s, m, h, d or y
 * (365 days), into [min, max] seconds.
 */
static int
parse_duration(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    static const struct {
        char suffix;
        uint64_t mul;
    } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'y', YEAR}};
    char num[24];
    size_t n = s ? strlen(s) : 0;
    uint64_t mul = 1, v;
    if (n == 0 || n >= sizeof(num))
        return ERR_INVAL;
    memcpy(num, s, n + 1);
    for (size_t i = 0; i < ARRAY_SIZE(units); i++)
        if (num[n - 1] == units[i].suffix) {
            mul = units[i].mul;
            num[n - 1] = 0;
        }
    if (parse_u64(num, 0, UINT64_MAX / mul, &v) || v * mul < min || v * mul > max)
        return ERR_INVAL;
    *out = v * mul;
    return 0;
}

static const struct opt *
opt_find(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
        const char *a = opts[i].name, *b = name;
        /* "log-level" and "log_level" name the same option */
        while (*a && *b && (*a == *b || (*a == '-' && *b == '_')))
            a++, b++;
        if (!*a && !*b)
            return &opts[i];
    }
    return NULL;
}

static int
opt_set(struct config *c, const struct opt *o, const char *val, struct buf *err)
{
    char *base = (char *)c;
    if (o->type == OPT_STR) {
        char **slot = (char **)(void *)(base + o->off);
        char *v = strdup(val);
        if (!v)
            return ERR_NOMEM;
        free(*slot);
        *slot = v;
        return 0;
    }
    uint64_t v;
    int rc = o->type == OPT_SIZE       ? parse_size(val, o->min, o->max, &v)
             : o->type == OPT_DURATION ? parse_duration(val, o->min, o->max, &v)
                                       : parse_u64(val, o->min, o->max, &v);
    if (rc) {
        say(err, "invalid value '%s' for '%s': expected %s in %" PRIu64 "..%" PRIu64, val, o->name,
            o->type == OPT_SIZE       ? "a size"
            : o->type == OPT_DURATION ? "a duration (seconds, or a number with s, m, h, d or y)"
                                      : "a number",
            o->min, o->max);
        return ERR_INVAL;
    }
    memcpy(base + o->off, &v, sizeof(v));
    return 0;
}

struct ini_ctx {
    struct config *c;
    struct buf *err;
    int rc;
};

static int
ini_cb(void *user, const char *section, const char *name, const char *value)
{
    struct ini_ctx *x = user;
    if (strcmp(section, "oikosd") != 0)
        return 1;
    const struct opt *o = opt_find(name);
    if (!o || !strcmp(o->name, "config")) {
        say(x->err, "unknown option '%s' in config file", name);
        x->rc = ERR_INVAL;
        return 0;
    }
    if (opt_set(x->c, o, value, x->err)) {
        x->rc = ERR_INVAL;
        return 0;
    }
    return 1;
}

static int
region_valid(const char *r)
{
    size_t n = strlen(r);
    if (n < 2 || n > 15)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (r[i] < 'a' || r[i] > 'z')
            return 0;
    return 1;
}

static int
cfg_validate(struct config *c, struct buf *err)
{
    if (!region_valid(c->region)) {
        say(err, "invalid region '%s': 2 to 15 lowercase letters", c->region);
        return ERR_INVAL;
    }
    if (!c->data || !*c->data) {
        say(err, "no data directory: give --data DIR");
        return ERR_INVAL;
    }
    const char *colon = strrchr(c->listen, ':');
    uint64_t port;
    if (!colon || colon == c->listen || (size_t)(colon - c->listen) >= sizeof(c->host) ||
        parse_u64(colon + 1, 0, 65535, &port)) {
        say(err, "invalid listen address '%s': expected HOST:PORT", c->listen);
        return ERR_INVAL;
    }
    memcpy(c->host, c->listen, (size_t)(colon - c->listen));
    c->host[colon - c->listen] = 0;
    c->port = (uint16_t)port;
    if (!c->store) {
        struct buf b;
        buf_init(&b, 4096);
        if (buf_addf(&b, "sqlite:%s/oikos.db", c->data))
            return ERR_NOMEM;
        c->store = buf_take(&b, NULL);
    }
    if (!c->keystore) {
        struct buf b;
        buf_init(&b, 4096);
        if (buf_addf(&b, "sqlite:%s/keys.db", c->data))
            return ERR_NOMEM;
        c->keystore = buf_take(&b, NULL);
    }
    if (!strcmp(c->keystore, c->store)) {
        say(err, "the key store must not be the store '%s': copies of the data would hold the keys",
            c->store);
        return ERR_INVAL;
    }
    if (!c->policy_version[0] || strlen(c->policy_version) >= 32) {
        say(err, "invalid policy-version '%s': 1 to 31 characters", c->policy_version);
        return ERR_INVAL;
    }
    if (c->max_header_bytes < 4096) {
        say(err, "max-header-bytes must be at least 4K");
        return ERR_INVAL;
    }
    return 0;
}

int
cfg_load(struct config *c, int argc, char **argv, struct buf *err)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
        if (opts[i].def && opt_set(c, &opts[i], opts[i].def, err))
            return ERR_INVAL;

    /* the command line is read twice: first only to find --config */
    const char *file = getenv("OIKOS_CONFIG");
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            file = argv[i + 1];
        else if (!strncmp(argv[i], "--config=", 9))
            file = argv[i] + 9;
    }
    if (file) {
        struct ini_ctx x = {c, err, 0};
        int r = ini_parse(file, ini_cb, &x);
        if (x.rc)
            return ERR_INVAL;
        if (r < 0) {
            say(err, "cannot read config file '%s'", file);
            return ERR_INVAL;
        }
        if (r > 0) {
            say(err, "syntax error in config file '%s' at line %d", file, r);
            return ERR_INVAL;
        }
        if (opt_set(c, opt_find("config"), file, err))
            return ERR_NOMEM;
    }

    for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
        char env[64] = "OIKOS_";
        size_t n = 6;
        for (const char *p = opts[i].name; *p && n < sizeof(env) - 1; p++)
            env[n++] = *p == '-' ? '_' : (char)(*p - ('a' <= *p && *p <= 'z' ? 32 : 0));
        env[n] = 0;
        const char *v = getenv(env);
        if (v && strcmp(opts[i].name, "config") && opt_set(c, &opts[i], v, err))
            return ERR_INVAL;
    }

    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            say(err, "unexpected argument '%s'", a);
            return ERR_INVAL;
        }
        a += 2;
        char name[64];
        const char *val;
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        if (nlen >= sizeof(name)) {
            say(err, "unknown option '--%s'", a);
            return ERR_INVAL;
        }
        memcpy(name, a, nlen);
        name[nlen] = 0;
        const struct opt *o = opt_find(name);
        if (!o) {
            say(err, "unknown option '--%s'", name);
            return ERR_INVAL;
        }
        if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            say(err, "option '--%s' needs a value", name);
            return ERR_INVAL;
        }
        if (opt_set(c, o, val, err))
            return ERR_INVAL;
    }
    return cfg_validate(c, err);
}

void
cfg_release(struct config *c)
{
    char *base = (char *)c;
    for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
        if (opts[i].type != OPT_STR)
            continue;
        char **slot = (char **)(void *)(base + opts[i].off);
        free(*slot);
        *slot = NULL;
    }
}

void
cfg_usage(FILE *out)
{
    for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
        char left[48];
        snprintf(left, sizeof(left), "--%s %s", opts[i].name,
                 opts[i].type == OPT_STR        ? "S"
                 : opts[i].type == OPT_SIZE     ? "SIZE"
                 : opts[i].type == OPT_DURATION ? "TIME"
                                                : "N");
        fprintf(out, "  %-28s %s", left, opts[i].help);
        if (opts[i].def)
            fprintf(out, " [%s]", opts[i].def);
        fputc('\n', out);
    }
    fputs("\nEvery option may also be set as OIKOS_<NAME> in the environment (e.g.\n"
          "OIKOS_LOG_LEVEL=debug) or as NAME = value in the [oikosd] section of the\n"
          "config file; the command line wins over the environment, which wins over\n"
          "the file.\n",
          out);
}
