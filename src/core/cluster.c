/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cluster.c: parsing and lookups of the cluster file (see cluster.h), with
 * inih. Every value is checked: region names like the daemon's own, URLs
 * http(s) without a trailing slash, countries as two upper-case letters,
 * each country named by one region at most, at most one "*".
 */
#include "base/common.h"

#include <ini.h>

#include "base/util.h"
#include "core/cluster.h"

struct parse {
    struct cluster *c;
    struct buf *err;
    int rc;
};

PRINTF_LIKE(2, 3) static int parse_fail(struct parse *p, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (p->err->len == 0 && buf_adds(p->err, msg) != 0)
        p->rc = ERR_NOMEM;
    else
        p->rc = ERR_INVAL;
    return 0;
}

static bool
name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 2 || n >= CLUSTER_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 'a' || s[i] > 'z')
            return false;
    return true;
}

/* `region "in"` -> in */
static bool
section_region(const char *section, char out[CLUSTER_NAME_MAX])
{
    const char *p = section;
    if (strncmp(p, "region", 6) != 0)
        return false;
    p += 6;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p++ != '"')
        return false;
    const char *end = strchr(p, '"');
    if (!end || end[1] != 0 || (size_t)(end - p) >= CLUSTER_NAME_MAX)
        return false;
    memcpy(out, p, (size_t)(end - p));
    out[end - p] = 0;
    return name_valid(out);
}

static struct cluster_region *
region_for(struct parse *p, const char *section)
{
    char name[CLUSTER_NAME_MAX];
    if (!section_region(section, name)) {
        parse_fail(p,
                   "invalid section [%s]: expected [region \"NAME\"] with 2 to 15 lowercase "
                   "letters",
                   section);
        return NULL;
    }
    for (size_t i = 0; i < p->c->n; i++)
        if (!strcmp(p->c->regions[i].name, name))
            return &p->c->regions[i];
    if (p->c->n == CLUSTER_MAX_REGIONS) {
        parse_fail(p, "too many regions (at most %d)", CLUSTER_MAX_REGIONS);
        return NULL;
    }
    struct cluster_region *r = &p->c->regions[p->c->n++];
    memset(r, 0, sizeof(*r));
    memcpy(r->name, name, strlen(name) + 1);
    return r;
}

static int
set_countries(struct parse *p, struct cluster_region *r, const char *v)
{
    struct buf b;
    buf_init(&b, 4096);
    const char *s = v;
    while (*s) {
        while (*s == ' ' || *s == '\t' || *s == ',')
            s++;
        if (!*s)
            break;
        size_t n = strcspn(s, " \t,");
        bool star = n == 1 && s[0] == '*';
        bool cc = n == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z';
        if (!star && !cc) {
            buf_release(&b);
            return parse_fail(p,
                              "region \"%s\": invalid country '%.*s': two upper-case letters "
                              "or *",
                              r->name, (int)(n > 8 ? 8 : n), s);
        }
        if ((b.len && buf_add(&b, " ", 1)) || buf_add(&b, s, n)) {
            buf_release(&b);
            return parse_fail(p, "region \"%s\": too many countries", r->name);
        }
        s += n;
    }
    free(r->countries);
    r->countries = buf_take(&b, NULL);
    return 1;
}

static int
on_value(void *user, const char *section, const char *name, const char *value)
{
    struct parse *p = user;
    struct cluster_region *r = region_for(p, section);
    if (!r)
        return 0;
    if (!strcmp(name, "url")) {
        size_t n = strlen(value);
        if ((strncmp(value, "http://", 7) && strncmp(value, "https://", 8)) ||
            n >= CLUSTER_URL_MAX || value[n - 1] == '/' || strpbrk(value, " \t\"<>"))
            return parse_fail(p, "region \"%s\": invalid url '%s': http(s)://HOST:PORT", r->name,
                              value);
        memcpy(r->url, value, n + 1);
        return 1;
    }
    if (!strcmp(name, "countries"))
        return set_countries(p, r, value);
    if (!strcmp(name, "peer_key")) {
        size_t n = 0;
        if (b64_decode(r->peer_key, sizeof(r->peer_key), &n, value, strlen(value)) ||
            n != sizeof(r->peer_key))
            return parse_fail(p, "region \"%s\": invalid peer_key: base64 of 32 bytes", r->name);
        r->has_peer_key = true;
        return 1;
    }
    return parse_fail(p, "region \"%s\": unknown key '%s'", r->name, name);
}

/* Each country in one region at most; one "*" at most; every region has a url. */
static int
cluster_check(struct parse *p)
{
    int stars = 0;
    for (size_t i = 0; i < p->c->n; i++) {
        struct cluster_region *r = &p->c->regions[i];
        if (!r->url[0])
            return parse_fail(p, "region \"%s\" has no url", r->name);
        if (!r->countries)
            continue;
        for (const char *s = r->countries; *s; s += strspn(s, " ")) {
            size_t n = strcspn(s, " ");
            if (n == 1) {
                if (++stars > 1)
                    return parse_fail(p, "more than one region has countries = *");
            } else {
                for (size_t j = 0; j < p->c->n; j++) {
                    const char *o = p->c->regions[j].countries;
                    for (; o && *o; o += strspn(o, " ")) {
                        size_t m = strcspn(o, " ");
                        if ((j != i || o != s) && m == n && !strncmp(o, s, n))
                            return parse_fail(p, "country %.2s is in two regions' lists", s);
                        o += m;
                    }
                }
            }
            s += n;
        }
    }
    return 1;
}

int
cluster_load(struct cluster **out, const char *path, struct buf *err)
{
    struct parse p = {calloc(1, sizeof(struct cluster)), err, 0};
    if (!p.c)
        return ERR_NOMEM;
    int line = ini_parse(path, on_value, &p);
    if (line < 0) {
        parse_fail(&p, "cannot read cluster file '%s'", path);
    } else if (line > 0 && !p.rc) {
        parse_fail(&p, "syntax error in cluster file '%s' at line %d", path, line);
    } else if (!p.rc) {
        if (p.c->n == 0)
            parse_fail(&p, "cluster file '%s' names no region", path);
        else
            cluster_check(&p);
    }
    if (p.rc) {
        cluster_free(p.c);
        return p.rc;
    }
    *out = p.c;
    return 0;
}

void
cluster_free(struct cluster *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->regions[i].countries);
    free(c);
}

const struct cluster_region *
cluster_find(const struct cluster *c, const char *name)
{
    for (size_t i = 0; c && i < c->n; i++)
        if (!strcmp(c->regions[i].name, name))
            return &c->regions[i];
    return NULL;
}

static bool
names_country(const char *list, const char *cc)
{
    for (const char *s = list; s && *s; s += strspn(s, " ")) {
        size_t n = strcspn(s, " ");
        if (n == strlen(cc) && !strncmp(s, cc, n))
            return true;
        s += n;
    }
    return false;
}

const struct cluster_region *
cluster_home(const struct cluster *c, const char *country)
{
    const struct cluster_region *star = NULL;
    for (size_t i = 0; c && i < c->n; i++) {
        if (names_country(c->regions[i].countries, country))
            return &c->regions[i];
        if (names_country(c->regions[i].countries, "*"))
            star = &c->regions[i];
    }
    return star;
}
