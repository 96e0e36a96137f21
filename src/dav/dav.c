/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dav.c: WebDAV request bodies and answers (see dav.h), on top of expat and
 * base. Requests are parsed with namespace processing into a struct
 * dav_request whose strings and arrays live in one arena, freed at once;
 * DOCTYPEs (and with them every entity trick) are refused outright. Answers
 * are written as text into caller-owned buffers, escaped here and nowhere
 * else.
 *
 * Thread-safety: no global state but constant tables.
 */
#include "base/common.h"

#include <expat.h>
#include <strings.h>

#include "base/util.h"
#include "dav/dav.h"

/* The arena ----------------------------------------------------------------- */

#define ARENA_BLOCK (64 * 1024)
#define ARENA_MAX (4 * (size_t)DAV_XML_MAX)

struct arena_block {
    struct arena_block *next;
    size_t cap, used;
    max_align_t data[];
};

struct dav_arena {
    struct arena_block *head;
    size_t total;
};

static void *
arena_alloc(struct dav_arena *a, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    struct arena_block *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        if (a->total + cap > ARENA_MAX)
            return NULL;
        b = malloc(sizeof(*b) + cap);
        if (!b)
            return NULL;
        b->next = a->head;
        b->cap = cap;
        b->used = 0;
        a->head = b;
        a->total += cap;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    return p;
}

static char *
arena_strndup(struct dav_arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

/* Grows an arena array of elements of size sz to hold at least need. */
static int
arena_grow(struct dav_arena *a, void **arr, size_t *cap, size_t sz, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    while (ncap < need)
        ncap *= 2;
    void *n = arena_alloc(a, ncap * sz);
    if (!n)
        return ERR_NOMEM;
    if (*cap)
        memcpy(n, *arr, *cap * sz);
    *arr = n;
    *cap = ncap;
    return 0;
}

void
dav_request_free(struct dav_request *rq)
{
    if (!rq)
        return;
    struct arena_block *b = rq->arena ? rq->arena->head : NULL;
    while (b) {
        struct arena_block *next = b->next;
        free(b);
        b = next;
    }
    free(rq->arena);
    free(rq);
}

/* Known names ----------------------------------------------------------------- */

static const struct dav_prop known_props[DAV_P_COUNT_] = {
    [DAV_P_OTHER] = {DAV_P_OTHER, "", ""},
    [DAV_P_RESOURCETYPE] = {DAV_P_RESOURCETYPE, DAV_NS, "resourcetype"},
    [DAV_P_DISPLAYNAME] = {DAV_P_DISPLAYNAME, DAV_NS, "displayname"},
    [DAV_P_GETETAG] = {DAV_P_GETETAG, DAV_NS, "getetag"},
    [DAV_P_GETCONTENTTYPE] = {DAV_P_GETCONTENTTYPE, DAV_NS, "getcontenttype"},
    [DAV_P_GETCONTENTLENGTH] = {DAV_P_GETCONTENTLENGTH, DAV_NS, "getcontentlength"},
    [DAV_P_SYNC_TOKEN] = {DAV_P_SYNC_TOKEN, DAV_NS, "sync-token"},
    [DAV_P_GETCTAG] = {DAV_P_GETCTAG, DAV_NS_CS, "getctag"},
    [DAV_P_SUPPORTED_REPORT_SET] = {DAV_P_SUPPORTED_REPORT_SET, DAV_NS, "supported-report-set"},
    [DAV_P_QUOTA_AVAILABLE] = {DAV_P_QUOTA_AVAILABLE, DAV_NS, "quota-available-bytes"},
    [DAV_P_QUOTA_USED] = {DAV_P_QUOTA_USED, DAV_NS, "quota-used-bytes"},
    [DAV_P_CURRENT_USER_PRINCIPAL] = {DAV_P_CURRENT_USER_PRINCIPAL, DAV_NS,
                                      "current-user-principal"},
    [DAV_P_PRINCIPAL_URL] = {DAV_P_PRINCIPAL_URL, DAV_NS, "principal-URL"},
    [DAV_P_PRINCIPAL_COLLECTION_SET] = {DAV_P_PRINCIPAL_COLLECTION_SET, DAV_NS,
                                        "principal-collection-set"},
    [DAV_P_OWNER] = {DAV_P_OWNER, DAV_NS, "owner"},
    [DAV_P_CURRENT_USER_PRIVILEGE_SET] = {DAV_P_CURRENT_USER_PRIVILEGE_SET, DAV_NS,
                                          "current-user-privilege-set"},
    [DAV_P_ADDRESSBOOK_HOME_SET] = {DAV_P_ADDRESSBOOK_HOME_SET, DAV_NS_CARD,
                                    "addressbook-home-set"},
    [DAV_P_ADDRESSBOOK_DESCRIPTION] = {DAV_P_ADDRESSBOOK_DESCRIPTION, DAV_NS_CARD,
                                       "addressbook-description"},
    [DAV_P_SUPPORTED_ADDRESS_DATA] = {DAV_P_SUPPORTED_ADDRESS_DATA, DAV_NS_CARD,
                                      "supported-address-data"},
    [DAV_P_MAX_RESOURCE_SIZE] = {DAV_P_MAX_RESOURCE_SIZE, DAV_NS_CARD, "max-resource-size"},
    [DAV_P_ADDRESS_DATA] = {DAV_P_ADDRESS_DATA, DAV_NS_CARD, "address-data"},
};

const struct dav_prop *
dav_prop_known(enum dav_prop_id id)
{
    return id > DAV_P_OTHER && id < DAV_P_COUNT_ ? &known_props[id] : NULL;
}

static enum dav_prop_id
prop_id(const char *ns, const char *name)
{
    for (int i = 1; i < DAV_P_COUNT_; i++)
        if (!strcmp(known_props[i].ns, ns) && !strcmp(known_props[i].name, name))
            return (enum dav_prop_id)i;
    return DAV_P_OTHER;
}

enum el {
    E_OTHER,
    E_PROPFIND,
    E_PROP,
    E_ALLPROP,
    E_PROPNAME,
    E_INCLUDE,
    E_HREF,
    E_SYNC_COLLECTION,
    E_SYNC_TOKEN,
    E_SYNC_LEVEL,
    E_LIMIT,
    E_NRESULTS,
    E_MKCOL,
    E_SET,
    E_RESOURCETYPE,
    E_COLLECTION,
    E_DISPLAYNAME,
    E_MULTIGET,
    E_QUERY,
    E_FILTER,
    E_PROP_FILTER,
    E_PARAM_FILTER,
    E_TEXT_MATCH,
    E_IS_NOT_DEFINED,
    E_CPROP,
    E_CLIMIT,
    E_CNRESULTS,
    E_ADDRESSBOOK,
    E_AB_DESCRIPTION,
};

static const struct {
    const char *ns, *name;
    enum el el;
} elements[] = {
    {DAV_NS, "propfind", E_PROPFIND},
    {DAV_NS, "prop", E_PROP},
    {DAV_NS, "allprop", E_ALLPROP},
    {DAV_NS, "propname", E_PROPNAME},
    {DAV_NS, "include", E_INCLUDE},
    {DAV_NS, "href", E_HREF},
    {DAV_NS, "sync-collection", E_SYNC_COLLECTION},
    {DAV_NS, "sync-token", E_SYNC_TOKEN},
    {DAV_NS, "sync-level", E_SYNC_LEVEL},
    {DAV_NS, "limit", E_LIMIT},
    {DAV_NS, "nresults", E_NRESULTS},
    {DAV_NS, "mkcol", E_MKCOL},
    {DAV_NS, "set", E_SET},
    {DAV_NS, "resourcetype", E_RESOURCETYPE},
    {DAV_NS, "collection", E_COLLECTION},
    {DAV_NS, "displayname", E_DISPLAYNAME},
    {DAV_NS_CARD, "addressbook-multiget", E_MULTIGET},
    {DAV_NS_CARD, "addressbook-query", E_QUERY},
    {DAV_NS_CARD, "filter", E_FILTER},
    {DAV_NS_CARD, "prop-filter", E_PROP_FILTER},
    {DAV_NS_CARD, "param-filter", E_PARAM_FILTER},
    {DAV_NS_CARD, "text-match", E_TEXT_MATCH},
    {DAV_NS_CARD, "is-not-defined", E_IS_NOT_DEFINED},
    {DAV_NS_CARD, "prop", E_CPROP},
    {DAV_NS_CARD, "limit", E_CLIMIT},
    {DAV_NS_CARD, "nresults", E_CNRESULTS},
    {DAV_NS_CARD, "addressbook", E_ADDRESSBOOK},
    {DAV_NS_CARD, "addressbook-description", E_AB_DESCRIPTION},
};

/* The parser ------------------------------------------------------------------ */

#define NS_SEP '\n'

enum text_target { T_NONE, T_HREF, T_TOKEN, T_LEVEL, T_NRESULTS, T_MATCH, T_NAME, T_DESC };

struct px {
    XML_Parser p;
    struct dav_request *rq;
    struct dav_arena *a;
    enum el stack[DAV_DEPTH_MAX];
    size_t depth;
    enum text_target target;
    size_t target_depth;
    struct buf text;
    struct dav_text_match *tm; /* the text-match being read */
    size_t props_cap, hrefs_cap, filters_cap;
    int err;
    char *why;
};

static int
px_fail(struct px *x, int err, const char *msg)
{
    if (!x->err) {
        x->err = err;
        snprintf(x->why, DAV_WHY_MAX, "%s", msg);
    }
    XML_StopParser(x->p, XML_FALSE);
    return err;
}

/* Splits an expat name "ns\nlocal" into its parts, in the arena. */
static int
split_name(struct px *x, const char *full, const char **ns, const char **local)
{
    const char *sep = strchr(full, NS_SEP);
    if (!sep) {
        *ns = "";
        *local = full;
        return 0;
    }
    *ns = arena_strndup(x->a, full, (size_t)(sep - full));
    *local = sep + 1;
    return *ns ? 0 : ERR_NOMEM;
}

static enum el
el_of(const char *full)
{
    const char *sep = strchr(full, NS_SEP);
    if (!sep)
        return E_OTHER;
    size_t nslen = (size_t)(sep - full);
    for (size_t i = 0; i < ARRAY_SIZE(elements); i++)
        if (strlen(elements[i].ns) == nslen && !memcmp(elements[i].ns, full, nslen) &&
            !strcmp(elements[i].name, sep + 1))
            return elements[i].el;
    return E_OTHER;
}

static const char *
attr(const char **atts, const char *name)
{
    for (size_t i = 0; atts[i]; i += 2)
        if (!strcmp(atts[i], name))
            return atts[i + 1];
    return NULL;
}

static void
add_prop(struct px *x, const char *full)
{
    struct dav_request *rq = x->rq;
    const char *ns = NULL, *local = NULL;
    if (rq->nprops >= DAV_PROPS_MAX) {
        px_fail(x, ERR_LIMIT, "too many properties asked in one request");
        return;
    }
    if (split_name(x, full, &ns, &local) ||
        arena_grow(x->a, (void **)&rq->props, &x->props_cap, sizeof(*rq->props), rq->nprops + 1)) {
        px_fail(x, ERR_NOMEM, "out of memory");
        return;
    }
    struct dav_prop *p = &rq->props[rq->nprops++];
    p->id = prop_id(ns, local);
    p->ns = ns;
    p->name = arena_strndup(x->a, local, strlen(local));
    if (!p->name)
        px_fail(x, ERR_NOMEM, "out of memory");
}

static void
collect(struct px *x, enum text_target t)
{
    x->target = t;
    x->target_depth = x->depth;
    buf_reset(&x->text);
}

static int
match_attrs(struct px *x, struct dav_text_match *tm, const char **atts)
{
    const char *coll = attr(atts, "collation"), *mt = attr(atts, "match-type");
    const char *neg = attr(atts, "negate-condition");
    memset(tm, 0, sizeof(*tm));
    if (!coll || !strcmp(coll, "i;unicode-casemap"))
        tm->coll = DAV_COLL_UNICODE;
    else if (!strcmp(coll, "i;ascii-casemap"))
        tm->coll = DAV_COLL_ASCII;
    else if (!strcmp(coll, "i;octet"))
        tm->coll = DAV_COLL_OCTET;
    else
        return px_fail(x, ERR_INVAL, "unsupported collation in text-match");
    if (!mt || !strcmp(mt, "contains"))
        tm->match = DAV_MATCH_CONTAINS;
    else if (!strcmp(mt, "equals"))
        tm->match = DAV_MATCH_EQUALS;
    else if (!strcmp(mt, "starts-with"))
        tm->match = DAV_MATCH_STARTS;
    else if (!strcmp(mt, "ends-with"))
        tm->match = DAV_MATCH_ENDS;
    else
        return px_fail(x, ERR_INVAL, "unknown match-type in text-match");
    if (neg && strcmp(neg, "yes") && strcmp(neg, "no"))
        return px_fail(x, ERR_INVAL, "negate-condition must be yes or no");
    tm->negate = neg && !strcmp(neg, "yes");
    return 0;
}

static bool
test_allof(struct px *x, const char **atts)
{
    const char *t = attr(atts, "test");
    if (t && strcmp(t, "anyof") && strcmp(t, "allof"))
        px_fail(x, ERR_INVAL, "test must be anyof or allof");
    return t && !strcmp(t, "allof");
}

static void
on_start_query(struct px *x, enum el el, enum el parent, const char **atts)
{
    struct dav_request *rq = x->rq;
    struct dav_prop_filter *pf = rq->nfilters ? &rq->filters[rq->nfilters - 1] : NULL;
    if (x->depth == 1 && el == E_FILTER) {
        rq->filter_allof = test_allof(x, atts);
    } else if (el == E_PROP_FILTER && parent == E_FILTER && x->depth == 2) {
        const char *name = attr(atts, "name");
        if (!name || !*name) {
            (void)px_fail(x, ERR_INVAL, "prop-filter needs a name");
            return;
        }
        if (rq->nfilters >= DAV_FILTER_PROPS_MAX) {
            (void)px_fail(x, ERR_LIMIT, "too many prop-filters");
            return;
        }
        if (arena_grow(x->a, (void **)&rq->filters, &x->filters_cap, sizeof(*rq->filters),
                       rq->nfilters + 1)) {
            (void)px_fail(x, ERR_NOMEM, "out of memory");
            return;
        }
        pf = &rq->filters[rq->nfilters++];
        memset(pf, 0, sizeof(*pf));
        pf->name = arena_strndup(x->a, name, strlen(name));
        pf->allof = test_allof(x, atts);
        if (!pf->name)
            px_fail(x, ERR_NOMEM, "out of memory");
    } else if (el == E_IS_NOT_DEFINED && parent == E_PROP_FILTER && pf) {
        pf->not_defined = true;
    } else if (el == E_TEXT_MATCH && parent == E_PROP_FILTER && pf) {
        if (pf->nmatches >= DAV_FILTER_MATCHES_MAX) {
            (void)px_fail(x, ERR_LIMIT, "too many text-matches in a prop-filter");
            return;
        }
        x->tm = &pf->matches[pf->nmatches++];
        if (!match_attrs(x, x->tm, atts))
            collect(x, T_MATCH);
    } else if (el == E_PARAM_FILTER && parent == E_PROP_FILTER && pf) {
        const char *name = attr(atts, "name");
        if (!name || !*name) {
            (void)px_fail(x, ERR_INVAL, "param-filter needs a name");
            return;
        }
        if (pf->nparams >= DAV_FILTER_MATCHES_MAX) {
            (void)px_fail(x, ERR_LIMIT, "too many param-filters in a prop-filter");
            return;
        }
        struct dav_param_filter *pa = &pf->params[pf->nparams++];
        memset(pa, 0, sizeof(*pa));
        pa->name = arena_strndup(x->a, name, strlen(name));
        if (!pa->name)
            px_fail(x, ERR_NOMEM, "out of memory");
    } else if (el == E_IS_NOT_DEFINED && parent == E_PARAM_FILTER && pf && pf->nparams) {
        pf->params[pf->nparams - 1].not_defined = true;
    } else if (el == E_TEXT_MATCH && parent == E_PARAM_FILTER && pf && pf->nparams) {
        struct dav_param_filter *pa = &pf->params[pf->nparams - 1];
        if (pa->has_match) {
            (void)px_fail(x, ERR_INVAL, "a param-filter takes one text-match");
            return;
        }
        pa->has_match = true;
        x->tm = &pa->match;
        if (!match_attrs(x, x->tm, atts))
            collect(x, T_MATCH);
    } else if (el == E_CLIMIT && x->depth == 1) {
        /* its nresults follows */
    } else if (el == E_CNRESULTS && parent == E_CLIMIT && x->depth == 2) {
        collect(x, T_NRESULTS);
    }
}

static void XMLCALL
on_start(void *ud, const char *name, const char **atts)
{
    struct px *x = ud;
    struct dav_request *rq = x->rq;
    if (x->err)
        return;
    if (x->depth >= DAV_DEPTH_MAX) {
        (void)px_fail(x, ERR_INVAL, "the XML nests too deeply");
        return;
    }
    enum el el = el_of(name);
    enum el parent = x->depth ? x->stack[x->depth - 1] : E_OTHER;
    enum el root = x->stack[0];
    x->stack[x->depth] = el;
    if (x->depth == 0) {
        switch (el) {
        case E_PROPFIND:
            rq->kind = DAV_BODY_PROPFIND;
            rq->mode = DAV_PROPS_ALL; /* until a DAV:prop says otherwise */
            break;
        case E_MULTIGET:
            rq->kind = DAV_BODY_MULTIGET;
            rq->mode = DAV_PROPS_LIST; /* a report gives what its DAV:prop asks */
            break;
        case E_QUERY:
            rq->kind = DAV_BODY_QUERY;
            rq->mode = DAV_PROPS_LIST;
            break;
        case E_SYNC_COLLECTION:
            rq->kind = DAV_BODY_SYNC;
            rq->mode = DAV_PROPS_LIST;
            break;
        case E_MKCOL:
            rq->kind = DAV_BODY_MKCOL;
            break;
        default:
            rq->kind = DAV_BODY_OTHER;
            if (split_name(x, name, &rq->root_ns, &rq->root_name))
                px_fail(x, ERR_NOMEM, "out of memory");
            else
                rq->root_name = arena_strndup(x->a, rq->root_name, strlen(rq->root_name));
            break;
        }
        x->depth++;
        return;
    }
    x->depth++;
    if (x->target != T_NONE)
        return; /* inside a text element: its children are ignored */
    bool props_root =
        root == E_PROPFIND || root == E_MULTIGET || root == E_QUERY || root == E_SYNC_COLLECTION;
    if (props_root && x->depth == 3 && parent == E_PROP) {
        add_prop(x, name);
        return;
    }
    if (root == E_PROPFIND && x->depth == 3 && parent == E_INCLUDE) {
        add_prop(x, name);
        return;
    }
    if (props_root && x->depth == 2 && el == E_PROP) {
        rq->mode = DAV_PROPS_LIST;
        return;
    }
    switch (root) {
    case E_PROPFIND:
        if (x->depth == 2 && el == E_ALLPROP)
            rq->mode = DAV_PROPS_ALL;
        else if (x->depth == 2 && el == E_PROPNAME)
            rq->mode = DAV_PROPS_NAMES;
        break;
    case E_MULTIGET:
        if (x->depth == 2 && el == E_HREF) {
            if (rq->nhrefs >= DAV_HREFS_MAX) {
                (void)px_fail(x, ERR_LIMIT, "too many hrefs in one addressbook-multiget");
                return;
            }
            collect(x, T_HREF);
        }
        break;
    case E_SYNC_COLLECTION:
        if (x->depth == 2 && el == E_SYNC_TOKEN)
            collect(x, T_TOKEN);
        else if (x->depth == 2 && el == E_SYNC_LEVEL)
            collect(x, T_LEVEL);
        else if (x->depth == 3 && el == E_NRESULTS && parent == E_LIMIT)
            collect(x, T_NRESULTS);
        break;
    case E_QUERY:
        x->depth--; /* the query helpers count the depth below the root */
        on_start_query(x, el, parent, atts);
        x->depth++;
        if (x->target != T_NONE)
            x->target_depth = x->depth;
        break;
    case E_MKCOL:
        if (x->depth == 4 && parent == E_PROP && el == E_DISPLAYNAME)
            collect(x, T_NAME);
        else if (x->depth == 4 && parent == E_PROP && el == E_AB_DESCRIPTION)
            collect(x, T_DESC);
        else if (x->depth == 5 && parent == E_RESOURCETYPE && x->stack[2] == E_PROP) {
            if (el == E_ADDRESSBOOK)
                rq->mk_addressbook = true;
            else if (el != E_COLLECTION)
                rq->mk_other_type = true;
        }
        break;
    default:
        break;
    }
}

static char *
text_dup(struct px *x)
{
    char *s = arena_strndup(x->a, x->text.data ? x->text.data : "", x->text.len);
    if (!s)
        px_fail(x, ERR_NOMEM, "out of memory");
    return s;
}

/* The text of an element without surrounding white space, in the arena. */
static char *
text_trimmed(struct px *x)
{
    const char *s = x->text.data ? x->text.data : "";
    size_t n = x->text.len;
    while (n && strchr(" \t\r\n", *s)) {
        s++;
        n--;
    }
    while (n && strchr(" \t\r\n", s[n - 1]))
        n--;
    char *d = arena_strndup(x->a, s, n);
    if (!d)
        px_fail(x, ERR_NOMEM, "out of memory");
    return d;
}

static void XMLCALL
on_end(void *ud, const char *name)
{
    struct px *x = ud;
    struct dav_request *rq = x->rq;
    (void)name;
    if (x->err)
        return;
    if (x->target != T_NONE && x->depth == x->target_depth) {
        char *s = NULL;
        uint64_t n = 0;
        switch (x->target) {
        case T_HREF:
            s = text_trimmed(x);
            if (s && arena_grow(x->a, (void **)&rq->hrefs, &x->hrefs_cap, sizeof(*rq->hrefs),
                                rq->nhrefs + 1))
                px_fail(x, ERR_NOMEM, "out of memory");
            else if (s)
                rq->hrefs[rq->nhrefs++] = s;
            break;
        case T_TOKEN:
            rq->sync_token = text_trimmed(x);
            break;
        case T_LEVEL:
            s = text_trimmed(x);
            if (s && !strcmp(s, "infinite"))
                rq->sync_infinite = true;
            else if (s && strcmp(s, "1"))
                px_fail(x, ERR_INVAL, "sync-level must be 1 or infinite");
            break;
        case T_NRESULTS:
            s = text_trimmed(x);
            if (s && parse_u64(s, 1, UINT32_MAX, &n))
                px_fail(x, ERR_INVAL, "nresults must be a positive number");
            rq->limit = n;
            break;
        case T_MATCH:
            x->tm->text = text_dup(x);
            x->tm->len = x->text.len;
            break;
        case T_NAME:
            rq->mk_displayname = text_dup(x);
            break;
        case T_DESC:
            rq->mk_description = text_dup(x);
            break;
        case T_NONE:
            break;
        }
        x->target = T_NONE;
    }
    x->depth--;
}

static void XMLCALL
on_text(void *ud, const char *s, int len)
{
    struct px *x = ud;
    if (x->err || x->target == T_NONE || len <= 0)
        return;
    if (buf_add(&x->text, s, (size_t)len))
        px_fail(x, ERR_NOMEM, "out of memory");
}

static void XMLCALL
on_doctype(void *ud, const char *name, const char *sysid, const char *pubid, int internal)
{
    (void)name;
    (void)sysid;
    (void)pubid;
    (void)internal;
    px_fail(ud, ERR_INVAL, "a DOCTYPE is not allowed");
}

static void XMLCALL
on_entity(void *ud, const XML_Char *name, int param, const XML_Char *value, int vlen,
          const XML_Char *base, const XML_Char *sysid, const XML_Char *pubid,
          const XML_Char *notation)
{
    (void)name;
    (void)param;
    (void)value;
    (void)vlen;
    (void)base;
    (void)sysid;
    (void)pubid;
    (void)notation;
    px_fail(ud, ERR_INVAL, "entity declarations are not allowed");
}

static bool
all_blank(struct slice b)
{
    for (size_t i = 0; i < b.len; i++)
        if (!strchr(" \t\r\n", b.p[i]))
            return false;
    return true;
}

int
dav_request_parse(struct dav_request **out, struct slice body, char why[DAV_WHY_MAX])
{
    struct px x;
    int rc = ERR_NOMEM;
    why[0] = 0;
    *out = NULL;
    if (body.len > DAV_XML_MAX) {
        snprintf(why, DAV_WHY_MAX, "the XML body is larger than %u bytes", DAV_XML_MAX);
        return ERR_TOO_LARGE;
    }
    memset(&x, 0, sizeof(x));
    x.why = why;
    buf_init(&x.text, DAV_XML_MAX);
    x.rq = calloc(1, sizeof(*x.rq));
    if (!x.rq)
        goto out;
    x.a = x.rq->arena = calloc(1, sizeof(*x.rq->arena));
    if (!x.a)
        goto out;
    x.rq->kind = DAV_BODY_NONE;
    x.rq->mode = DAV_PROPS_ALL;
    if (all_blank(body)) {
        rc = 0;
        goto out;
    }
    x.p = XML_ParserCreateNS("UTF-8", NS_SEP);
    if (!x.p)
        goto out;
    XML_SetUserData(x.p, &x);
    XML_SetElementHandler(x.p, on_start, on_end);
    XML_SetCharacterDataHandler(x.p, on_text);
    XML_SetStartDoctypeDeclHandler(x.p, on_doctype);
    XML_SetEntityDeclHandler(x.p, on_entity);
    XML_SetParamEntityParsing(x.p, XML_PARAM_ENTITY_PARSING_NEVER);
    enum XML_Status st = XML_Parse(x.p, (const char *)body.p, (int)body.len, XML_TRUE);
    if (x.err) {
        rc = x.err;
    } else if (st != XML_STATUS_OK) {
        snprintf(why, DAV_WHY_MAX, "invalid XML at line %lu: %s",
                 (unsigned long)XML_GetCurrentLineNumber(x.p),
                 XML_ErrorString(XML_GetErrorCode(x.p)));
        rc = ERR_INVAL;
    } else {
        rc = 0;
    }
out:
    if (x.p)
        XML_ParserFree(x.p);
    buf_release(&x.text);
    if (rc) {
        if (rc == ERR_NOMEM && !why[0])
            snprintf(why, DAV_WHY_MAX, "out of memory");
        dav_request_free(x.rq);
        return rc;
    }
    *out = x.rq;
    return 0;
}

/* Writing --------------------------------------------------------------------- */

int
dav_xml_escape(struct buf *out, struct slice s)
{
    size_t i = 0, start = 0;
    int rc = 0;
    for (; !rc && i < s.len; i++) {
        const char *rep = NULL;
        switch (s.p[i]) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\r':
            rep = "&#13;";
            break;
        default:
            continue;
        }
        rc = buf_add(out, s.p + start, i - start);
        if (!rc)
            rc = buf_adds(out, rep);
        start = i + 1;
    }
    if (!rc)
        rc = buf_add(out, s.p + start, s.len - start);
    return rc;
}

bool
dav_xml_text_ok(struct slice s)
{
    const uint8_t *p = s.p;
    size_t n = s.len;
    while (n) {
        uint8_t c = *p;
        if (c < 0x80) {
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
                return false;
            p++;
            n--;
            continue;
        }
        size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (!len || len > n)
            return false;
        uint32_t cp = len == 2 ? c & 0x1Fu : len == 3 ? c & 0x0Fu : c & 0x07u;
        for (size_t i = 1; i < len; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3Fu);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE || cp == 0xFFFF)
            return false;
        p += len;
        n -= len;
    }
    return true;
}

int
dav_href_escape(struct buf *out, struct slice s)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < s.len; i++) {
        uint8_t c = s.p[i];
        bool plain = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                     c == '-' || c == '.' || c == '_' || c == '~' || c == '/' || c == '@';
        rc = plain ? buf_add(out, &c, 1) : buf_addf(out, "%%%02X", c);
    }
    return rc;
}

static int
hexdig(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
dav_href_path(struct buf *out, const char *href)
{
    const char *p = href;
    buf_reset(out);
    if (!strncasecmp(p, "http://", 7) || !strncasecmp(p, "https://", 8)) {
        p = strstr(p, "://") + 3;
        p += strcspn(p, "/?#");
    }
    size_t n = strcspn(p, "?#");
    int rc = 0;
    if (n == 0)
        return buf_adds(out, "/");
    for (size_t i = 0; !rc && i < n; i++) {
        uint8_t c = (uint8_t)p[i];
        if (c == '%') {
            int hi = i + 1 < n ? hexdig(p[i + 1]) : -1;
            int lo = i + 2 < n ? hexdig(p[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return ERR_INVAL;
            c = (uint8_t)(hi * 16 + lo);
            if (c == 0)
                return ERR_INVAL;
            i += 2;
        }
        rc = buf_add(out, &c, 1);
    }
    return rc;
}

int
dav_ms_begin(struct buf *out)
{
    return buf_adds(out, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
                         "<d:multistatus xmlns:d=\"DAV:\" xmlns:card=\"" DAV_NS_CARD
                         "\" xmlns:cs=\"" DAV_NS_CS "\">\n");
}

int
dav_ms_end(struct buf *out, const char *token)
{
    int rc = 0;
    if (token) {
        rc = buf_adds(out, "<d:sync-token>");
        if (!rc)
            rc = dav_xml_escape(out, SLICE_STR(token));
        if (!rc)
            rc = buf_adds(out, "</d:sync-token>\n");
    }
    return rc ? rc : buf_adds(out, "</d:multistatus>\n");
}

const char *
dav_status_text(unsigned status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 207:
        return "Multi-Status";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 409:
        return "Conflict";
    case 412:
        return "Precondition Failed";
    case 415:
        return "Unsupported Media Type";
    case 424:
        return "Failed Dependency";
    case 507:
        return "Insufficient Storage";
    default:
        return "Status";
    }
}

int
dav_ms_status(struct buf *out, const char *href, unsigned status)
{
    return buf_addf(out,
                    "<d:response><d:href>%s</d:href><d:status>HTTP/1.1 %u %s</d:status>"
                    "</d:response>\n",
                    href, status, dav_status_text(status));
}

void
dav_props_init(struct dav_props *ps, size_t max)
{
    buf_init(&ps->ok, max);
    buf_init(&ps->missing, 1 << 20);
}

void
dav_props_release(struct dav_props *ps)
{
    buf_release(&ps->ok);
    buf_release(&ps->missing);
}

void
dav_props_reset(struct dav_props *ps)
{
    buf_reset(&ps->ok);
    buf_reset(&ps->missing);
}

static const char *
ns_prefix(const char *ns)
{
    if (!strcmp(ns, DAV_NS))
        return "d";
    if (!strcmp(ns, DAV_NS_CARD))
        return "card";
    if (!strcmp(ns, DAV_NS_CS))
        return "cs";
    return NULL;
}

/* Writes "<pfx:name" (declaring a foreign namespace) without closing the tag. */
static int
tag_start(struct buf *b, const struct dav_prop *p, bool closing)
{
    const char *pfx = ns_prefix(p->ns);
    if (pfx)
        return buf_addf(b, closing ? "</%s:%s" : "<%s:%s", pfx, p->name);
    if (closing)
        return buf_addf(b, *p->ns ? "</x:%s" : "</%s", p->name);
    if (!*p->ns)
        return buf_addf(b, "<%s xmlns=\"\"", p->name);
    int rc = buf_addf(b, "<x:%s xmlns:x=\"", p->name);
    if (!rc)
        rc = dav_xml_escape(b, SLICE_STR(p->ns));
    return rc ? rc : buf_adds(b, "\"");
}

int
dav_prop_open(struct dav_props *ps, const struct dav_prop *p)
{
    int rc = tag_start(&ps->ok, p, false);
    return rc ? rc : buf_adds(&ps->ok, ">");
}

int
dav_prop_close(struct dav_props *ps, const struct dav_prop *p)
{
    int rc = tag_start(&ps->ok, p, true);
    return rc ? rc : buf_adds(&ps->ok, ">");
}

int
dav_prop_text(struct dav_props *ps, const struct dav_prop *p, const char *text)
{
    int rc = dav_prop_open(ps, p);
    if (!rc)
        rc = dav_xml_escape(&ps->ok, SLICE_STR(text));
    return rc ? rc : dav_prop_close(ps, p);
}

int
dav_prop_xml(struct dav_props *ps, const struct dav_prop *p, const char *xml)
{
    int rc = dav_prop_open(ps, p);
    if (!rc)
        rc = buf_adds(&ps->ok, xml);
    return rc ? rc : dav_prop_close(ps, p);
}

int
dav_prop_missing(struct dav_props *ps, const struct dav_prop *p)
{
    int rc = tag_start(&ps->missing, p, false);
    return rc ? rc : buf_adds(&ps->missing, "/>");
}

int
dav_prop_name(struct dav_props *ps, const struct dav_prop *p)
{
    int rc = tag_start(&ps->ok, p, false);
    return rc ? rc : buf_adds(&ps->ok, "/>");
}

int
dav_ms_props(struct buf *out, const char *href, const struct dav_props *ps)
{
    int rc = buf_addf(out, "<d:response><d:href>%s</d:href>", href);
    if (!rc && (ps->ok.len || !ps->missing.len)) {
        rc = buf_adds(out, "<d:propstat><d:prop>");
        if (!rc)
            rc = buf_add(out, ps->ok.data, ps->ok.len);
        if (!rc)
            rc = buf_adds(out, "</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>");
    }
    if (!rc && ps->missing.len) {
        rc = buf_adds(out, "<d:propstat><d:prop>");
        if (!rc)
            rc = buf_add(out, ps->missing.data, ps->missing.len);
        if (!rc)
            rc = buf_adds(out, "</d:prop><d:status>HTTP/1.1 404 Not Found</d:status></d:propstat>");
    }
    return rc ? rc : buf_adds(out, "</d:response>\n");
}

int
dav_error_body(struct buf *out, const char *ns, const char *name, const char *message,
               const char *href)
{
    const char *pfx = ns_prefix(ns);
    int rc = buf_adds(out, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
                           "<d:error xmlns:d=\"DAV:\" xmlns:card=\"" DAV_NS_CARD "\">");
    if (!rc && href && pfx)
        rc = buf_addf(out, "<%s:%s><d:href>%s</d:href></%s:%s>", pfx, name, href, pfx, name);
    else if (!rc)
        rc = pfx ? buf_addf(out, "<%s:%s/>", pfx, name)
                 : buf_addf(out, "<x:%s xmlns:x=\"%s\"/>", name, ns);
    if (!rc && message) {
        rc = buf_adds(out, "<d:responsedescription>");
        if (!rc)
            rc = dav_xml_escape(out, SLICE_STR(message));
        if (!rc)
            rc = buf_adds(out, "</d:responsedescription>");
    }
    return rc ? rc : buf_adds(out, "</d:error>\n");
}

/* Headers --------------------------------------------------------------------- */

int
dav_depth(const char *h, int dflt)
{
    if (!h)
        return dflt;
    while (*h == ' ')
        h++;
    if (!strcmp(h, "0"))
        return 0;
    if (!strcmp(h, "1"))
        return 1;
    if (!strcasecmp(h, "infinity"))
        return DAV_DEPTH_INFINITY;
    return -1;
}

/* Parses a list of entity tags (or "*") into tags; *any set for "*". */
static int
cond_list(const char *h, bool *any, size_t *n, char tags[DAV_COND_TAGS][40])
{
    const char *p = h;
    *n = 0;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        if (*p == '*') {
            *any = true;
            p++;
            continue;
        }
        bool weak = false;
        if (p[0] == 'W' && p[1] == '/') {
            weak = true;
            p += 2;
        }
        if (*p != '"')
            return ERR_INVAL;
        const char *end = strchr(p + 1, '"');
        if (!end)
            return ERR_INVAL;
        size_t len = (size_t)(end - p - 1);
        if (*n < DAV_COND_TAGS && len + (weak ? 2 : 0) < 40)
            snprintf(tags[*n], 40, "%s%.*s", weak ? "W/" : "", (int)len, p + 1);
        else if (*n < DAV_COND_TAGS)
            snprintf(tags[*n], 40, "%s", "\x01"); /* too long to be ours: never matches */
        if (*n < DAV_COND_TAGS)
            (*n)++;
        p = end + 1;
    }
    return 0;
}

int
dav_cond_parse(struct dav_cond *c, const char *if_match, const char *if_none_match)
{
    memset(c, 0, sizeof(*c));
    if (if_match) {
        c->if_match = true;
        if (cond_list(if_match, &c->match_any, &c->nmatch, c->match))
            return ERR_INVAL;
    }
    if (if_none_match) {
        c->if_none_match = true;
        if (cond_list(if_none_match, &c->none_any, &c->nnone, c->none))
            return ERR_INVAL;
    }
    return 0;
}

int
dav_cond_check(const struct dav_cond *c, bool exists, const char *etag)
{
    if (c->if_match) {
        bool ok = exists && c->match_any;
        for (size_t i = 0; exists && !ok && i < c->nmatch; i++)
            ok = !strcmp(c->match[i], etag); /* strong comparison: W/ never matches */
        if (!ok)
            return ERR_PRECONDITION;
    }
    if (c->if_none_match && exists) {
        if (c->none_any)
            return ERR_PRECONDITION;
        for (size_t i = 0; i < c->nnone; i++) {
            const char *t = c->none[i];
            if (!strncmp(t, "W/", 2))
                t += 2; /* weak comparison */
            if (!strcmp(t, etag))
                return ERR_PRECONDITION;
        }
    }
    return 0;
}
