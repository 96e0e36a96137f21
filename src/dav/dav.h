/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dav.h: the WebDAV side of CardDAV, independent of HTTP and of storage:
 * parsing the XML bodies of PROPFIND, REPORT (addressbook-multiget,
 * addressbook-query, sync-collection) and extended MKCOL into a struct
 * dav_request; writing multistatus and DAV:error answers as text; the
 * If-Match / If-None-Match preconditions and the Depth header.
 *
 * A parsed request lives in its own arena, freed whole by
 * dav_request_free. Parsing refuses with ERR_INVAL (and a reason) any body
 * that is not well-formed XML, has a DOCTYPE, nests deeper than
 * DAV_DEPTH_MAX, asks for more than DAV_PROPS_MAX properties or
 * DAV_HREFS_MAX hrefs, or has a filter larger than the DAV_FILTER_* limits;
 * ERR_TOO_LARGE above DAV_XML_MAX bytes.
 *
 * Thread-safety: pure functions on caller-owned memory.
 */
#ifndef OIKOS_DAV_H
#define OIKOS_DAV_H

#include "base/buf.h"
#include "base/common.h"

#define DAV_XML_MAX (8u << 20) /* a request body */
#define DAV_HREFS_MAX 50000    /* hrefs of one addressbook-multiget */
#define DAV_PROPS_MAX 64       /* properties asked in one request */
#define DAV_DEPTH_MAX 32       /* XML element nesting */
#define DAV_FILTER_PROPS_MAX 32
#define DAV_FILTER_MATCHES_MAX 16 /* text-matches and param-filters per prop-filter */
#define DAV_WHY_MAX 160

#define DAV_NS "DAV:"
#define DAV_NS_CARD "urn:ietf:params:xml:ns:carddav"
#define DAV_NS_CS "http://calendarserver.org/ns/"

/** The properties this server knows; DAV_P_OTHER is any other. */
enum dav_prop_id {
    DAV_P_OTHER = 0,
    DAV_P_RESOURCETYPE,
    DAV_P_DISPLAYNAME,
    DAV_P_GETETAG,
    DAV_P_GETCONTENTTYPE,
    DAV_P_GETCONTENTLENGTH,
    DAV_P_SYNC_TOKEN,
    DAV_P_GETCTAG,
    DAV_P_SUPPORTED_REPORT_SET,
    DAV_P_QUOTA_AVAILABLE,
    DAV_P_QUOTA_USED,
    DAV_P_CURRENT_USER_PRINCIPAL,
    DAV_P_PRINCIPAL_URL,
    DAV_P_PRINCIPAL_COLLECTION_SET,
    DAV_P_OWNER,
    DAV_P_CURRENT_USER_PRIVILEGE_SET,
    DAV_P_ADDRESSBOOK_HOME_SET,
    DAV_P_ADDRESSBOOK_DESCRIPTION,
    DAV_P_SUPPORTED_ADDRESS_DATA,
    DAV_P_MAX_RESOURCE_SIZE,
    DAV_P_ADDRESS_DATA,
    DAV_P_COUNT_
};

/** A property asked for; ns and name borrowed from the request (or static). */
struct dav_prop {
    enum dav_prop_id id;
    const char *ns; /* namespace URI, "" for none */
    const char *name;
};

enum dav_kind {
    DAV_BODY_NONE,     /* no body (PROPFIND: allprop) */
    DAV_BODY_PROPFIND, /* DAV:propfind */
    DAV_BODY_MULTIGET, /* CARDDAV:addressbook-multiget */
    DAV_BODY_QUERY,    /* CARDDAV:addressbook-query */
    DAV_BODY_SYNC,     /* DAV:sync-collection */
    DAV_BODY_MKCOL,    /* DAV:mkcol */
    DAV_BODY_OTHER,    /* well-formed, but another root element */
};

enum dav_propmode { DAV_PROPS_LIST, DAV_PROPS_ALL, DAV_PROPS_NAMES };

enum dav_match { DAV_MATCH_CONTAINS, DAV_MATCH_EQUALS, DAV_MATCH_STARTS, DAV_MATCH_ENDS };
enum dav_collation { DAV_COLL_UNICODE, DAV_COLL_ASCII, DAV_COLL_OCTET };

struct dav_text_match {
    const char *text; /* UTF-8, NUL-terminated */
    size_t len;
    enum dav_match match;
    enum dav_collation coll;
    bool negate;
};

struct dav_param_filter {
    const char *name;
    bool not_defined;
    bool has_match;
    struct dav_text_match match;
};

struct dav_prop_filter {
    const char *name; /* a vCard property name, e.g. "FN" */
    bool allof;       /* test="allof" (default anyof) */
    bool not_defined;
    struct dav_text_match matches[DAV_FILTER_MATCHES_MAX];
    size_t nmatches;
    struct dav_param_filter params[DAV_FILTER_MATCHES_MAX];
    size_t nparams;
};

struct dav_request {
    enum dav_kind kind;
    const char *root_ns, *root_name; /* DAV_BODY_OTHER: what was asked */
    enum dav_propmode mode;
    struct dav_prop *props; /* DAV_PROPS_LIST, or the DAV:include of allprop */
    size_t nprops;
    const char **hrefs; /* multiget, as sent (still percent-encoded) */
    size_t nhrefs;
    const char *sync_token; /* sync-collection: NULL if absent, "" for an initial sync */
    bool sync_infinite;     /* sync-level infinite */
    uint64_t limit;         /* DAV:limit / CARDDAV:limit nresults, 0 if none */
    bool filter_allof;      /* query: test="allof" */
    struct dav_prop_filter *filters;
    size_t nfilters;
    bool mk_addressbook; /* mkcol: resourcetype has CARDDAV:addressbook */
    bool mk_other_type;  /* mkcol: resourcetype has something else beside DAV:collection */
    const char *mk_displayname;
    const char *mk_description;
    struct dav_arena *arena;
};

/**
 * Parses a request body (body.len == 0 gives DAV_BODY_NONE). Caller owns
 * *out (dav_request_free). On error: ERR_INVAL with a reason in why,
 * ERR_TOO_LARGE, ERR_LIMIT (a count limit, with a reason), ERR_NOMEM.
 */
MUST_CHECK int dav_request_parse(struct dav_request **out, struct slice body,
                                 char why[DAV_WHY_MAX]);
/** Frees a parsed request and everything it points to. Accepts NULL. */
void dav_request_free(struct dav_request *rq);

/** The static description of a known property (its namespace and name). */
const struct dav_prop *dav_prop_known(enum dav_prop_id id);

/* Writing answers ----------------------------------------------------------- */

/** Appends s with &, <, >, " escaped and CR as &#13; (which XML keeps). */
MUST_CHECK int dav_xml_escape(struct buf *out, struct slice s);
/** True if s can travel as XML text: valid UTF-8 without control characters but TAB, LF, CR. */
bool dav_xml_text_ok(struct slice s);
/** Appends s percent-encoded for an href path (unreserved characters and '/' stay). */
MUST_CHECK int dav_href_escape(struct buf *out, struct slice s);
/**
 * Decodes an href sent by a client into a path: an absolute URL loses its
 * scheme and authority, %XX is decoded. ERR_INVAL for a malformed one or
 * one that decodes to NUL. out is reset first.
 */
MUST_CHECK int dav_href_path(struct buf *out, const char *href);

/** Starts a multistatus document (XML declaration and the namespaces). */
MUST_CHECK int dav_ms_begin(struct buf *out);
/** Ends it, with a DAV:sync-token if token is not NULL. */
MUST_CHECK int dav_ms_end(struct buf *out, const char *token);
/** One DAV:response with only a status (e.g. 404 for a missing member). */
MUST_CHECK int dav_ms_status(struct buf *out, const char *href, unsigned status);

/**
 * The properties of one DAV:response while they are written: found ones
 * go to ok (a 200 propstat), unknown or absent ones to missing (404).
 */
struct dav_props {
    struct buf ok, missing;
};
void dav_props_init(struct dav_props *ps, size_t max);
void dav_props_release(struct dav_props *ps);
void dav_props_reset(struct dav_props *ps);
/** Opens property p in ok ("<d:getetag>"); write its value, then dav_prop_close. */
MUST_CHECK int dav_prop_open(struct dav_props *ps, const struct dav_prop *p);
MUST_CHECK int dav_prop_close(struct dav_props *ps, const struct dav_prop *p);
/** A property with a value given as escaped text (or XML when xml is true). */
MUST_CHECK int dav_prop_text(struct dav_props *ps, const struct dav_prop *p, const char *text);
MUST_CHECK int dav_prop_xml(struct dav_props *ps, const struct dav_prop *p, const char *xml);
/** Lists p as not found (or just its name, for propname). */
MUST_CHECK int dav_prop_missing(struct dav_props *ps, const struct dav_prop *p);
MUST_CHECK int dav_prop_name(struct dav_props *ps, const struct dav_prop *p);
/** Appends one DAV:response for href (already escaped) with the propstats of ps. */
MUST_CHECK int dav_ms_props(struct buf *out, const char *href, const struct dav_props *ps);

/**
 * A whole DAV:error body naming one precondition, e.g. (DAV_NS,
 * "valid-sync-token"), with an optional human message and an optional
 * href (escaped) inside the precondition element (CARDDAV:no-uid-conflict).
 */
MUST_CHECK int dav_error_body(struct buf *out, const char *ns, const char *name,
                              const char *message, const char *href);

/** The reason phrase of an HTTP status ("Not Found"). */
const char *dav_status_text(unsigned status);

/* Headers ------------------------------------------------------------------- */

#define DAV_DEPTH_INFINITY 2

/** Parses a Depth header: 0, 1, DAV_DEPTH_INFINITY; absent gives dflt; -1 if invalid. */
int dav_depth(const char *h, int dflt);

#define DAV_COND_TAGS 8

/** The If-Match and If-None-Match headers of a request. */
struct dav_cond {
    bool if_match, match_any;
    bool if_none_match, none_any;
    size_t nmatch, nnone;
    char match[DAV_COND_TAGS][40]; /* entity tags without quotes; weak ones start with "W/" */
    char none[DAV_COND_TAGS][40];
};

/** Parses the two headers (either may be NULL). ERR_INVAL if malformed. */
MUST_CHECK int dav_cond_parse(struct dav_cond *c, const char *if_match, const char *if_none_match);
/**
 * Checks the preconditions against the current state of a resource (etag
 * without quotes, ignored if !exists): 0, or ERR_PRECONDITION.
 */
MUST_CHECK int dav_cond_check(const struct dav_cond *c, bool exists, const char *etag);

#endif
