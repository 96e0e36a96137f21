/* SPDX-License-Identifier: Apache-2.0 */
/*
 * client.c: liboikos (see client.h), on top of libcurl's easy interface,
 * jansson and base/buf. Each call resets the one easy handle of its struct
 * oc (curl_easy_reset keeps the connection cache, so the TCP connection is
 * reused) and runs one transfer through a struct xfer that lives on the
 * caller's stack: JSON answers collect in a capped struct buf, uploads are
 * read with pread from a borrowed fd, downloads go to a borrowed fd only
 * once the status is known to be 2xx. The struct oc owns its URL, its token
 * (wiped on change and free) and the handle; the caller owns struct
 * oc_resp and the fds. Not thread-safe: one struct oc per thread;
 * oc_global_init() once per process.
 */
#include "base/common.h"

#include <curl/curl.h>
#include <malloc.h>
#include <sodium.h>
#include <strings.h>
#include <unistd.h>

#include "base/util.h"
#include "client/client.h"

#define OC_URL_MAX 4096

struct oc {
    CURL *h;
    char *url;   /* base URL, no trailing slash */
    char *token; /* bearer token or NULL; wiped on change */
    long connect_ms, call_ms, stall_ms;
    bool follow;
    char curlerr[CURL_ERROR_SIZE];
    char err[CURL_ERROR_SIZE + 128];
};

enum xfer_sink { SINK_UNDECIDED, SINK_FD, SINK_BUF };

/* One transfer: what the callbacks need. Lives on the caller's stack. */
struct xfer {
    struct oc *c;
    struct oc_resp *resp;
    struct buf body; /* JSON or error answer, capped at OC_JSON_MAX */
    bool too_large;
    /* upload source */
    int in_fd;
    uint64_t in_off, in_size;
    int in_errno;
    bool in_failed;
    /* download sink */
    int out_fd;
    enum xfer_sink sink;
    int out_errno;
    bool out_failed;
    /* progress */
    oc_progress_fn progress;
    void *progress_arg;
    bool aborted;
    char location[OC_URL_MAX + 1]; /* Location header, for redirects */
};

static bool oc_initialised;

/* jansson's free: wipe first, since request bodies carry passwords. */
static void
wipe_free(void *p)
{
    if (!p)
        return;
    sodium_memzero(p, malloc_usable_size(p));
    free(p);
}

int
oc_global_init(void)
{
    if (oc_initialised)
        return 0;
    if (sodium_init() < 0)
        return ERR_INTERNAL;
    json_set_alloc_funcs(malloc, wipe_free);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return ERR_INTERNAL;
    oc_initialised = true;
    return 0;
}

void
oc_global_cleanup(void)
{
    if (!oc_initialised)
        return;
    curl_global_cleanup();
    oc_initialised = false;
}

static void set_err(struct oc *c, const char *fmt, ...) PRINTF_LIKE(2, 3);

static void
set_err(struct oc *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
}

/* Checks an http(s) URL with a host and copies it without trailing '/'. */
static int
url_dup(const char *url, char **out)
{
    size_t skip;
    if (!strncasecmp(url, "http://", 7))
        skip = 7;
    else if (!strncasecmp(url, "https://", 8))
        skip = 8;
    else
        return ERR_INVAL;
    size_t n = strlen(url);
    while (n > skip && url[n - 1] == '/')
        n--;
    if (n == skip || n > OC_URL_MAX || url[skip] == '/')
        return ERR_INVAL;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)url[i];
        if (ch <= ' ' || ch == 0x7f || ch == '?' || ch == '#')
            return ERR_INVAL;
    }
    char *p = strndup(url, n);
    if (!p)
        return ERR_NOMEM;
    *out = p;
    return 0;
}

int
oc_new(struct oc **out, const char *url)
{
    struct oc *c = calloc(1, sizeof(*c));
    if (!c)
        return ERR_NOMEM;
    int rc = url_dup(url, &c->url);
    if (rc)
        goto out;
    c->h = curl_easy_init();
    if (!c->h) {
        rc = ERR_NOMEM;
        goto out;
    }
    c->connect_ms = 10000;
    c->call_ms = 60000;
    c->stall_ms = 60000;
    c->follow = true;
    *out = c;
    return 0;
out:
    oc_free(c);
    return rc;
}

static void
token_wipe(struct oc *c)
{
    if (c->token) {
        sodium_memzero(c->token, strlen(c->token));
        free(c->token);
        c->token = NULL;
    }
}

void
oc_free(struct oc *c)
{
    if (!c)
        return;
    if (c->h)
        curl_easy_cleanup(c->h);
    token_wipe(c);
    free(c->url);
    free(c);
}

int
oc_set_url(struct oc *c, const char *url)
{
    char *p;
    int rc = url_dup(url, &p);
    if (rc)
        return rc;
    free(c->url);
    c->url = p;
    return 0;
}

const char *
oc_url(const struct oc *c)
{
    return c->url;
}

int
oc_set_token(struct oc *c, const char *token)
{
    char *p = NULL;
    if (token) {
        for (const char *s = token; *s; s++)
            if ((unsigned char)*s <= ' ' || *s == 0x7f)
                return ERR_INVAL; /* would break the header line */
        p = strdup(token);
        if (!p)
            return ERR_NOMEM;
    }
    token_wipe(c);
    c->token = p;
    return 0;
}

void
oc_set_timeouts(struct oc *c, long connect_ms, long call_ms, long stall_ms)
{
    if (connect_ms > 0)
        c->connect_ms = connect_ms;
    if (call_ms > 0)
        c->call_ms = call_ms;
    if (stall_ms > 0)
        c->stall_ms = stall_ms;
}

void
oc_set_follow_region(struct oc *c, bool follow)
{
    c->follow = follow;
}

const char *
oc_errstr(const struct oc *c)
{
    return c->err[0] ? c->err : "no error";
}

void
oc_resp_release(struct oc_resp *resp)
{
    if (!resp)
        return;
    if (resp->json)
        json_decref(resp->json);
    resp->json = NULL;
}

static void
resp_clear(struct oc_resp *resp)
{
    oc_resp_release(resp);
    memset(resp, 0, sizeof(*resp));
    resp->retry_after = -1;
}

int
oc_escape(struct buf *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int rc;
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            rc = buf_add(out, p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            rc = buf_add(out, e, 3);
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- libcurl callbacks ------------------------------------------------ */

static void
copy_trimmed(char *dst, size_t cap, const char *p, size_t n)
{
    while (n && (*p == ' ' || *p == '\t')) {
        p++;
        n--;
    }
    while (n && (p[n - 1] == '\r' || p[n - 1] == '\n' || p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, p, n);
    dst[n] = 0;
}

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;
    size_t len = size * n;
    if (len >= 5 && !memcmp(p, "HTTP/", 5)) {
        /* a new answer (after 100 Continue, say): forget the last one's headers */
        x->resp->etag[0] = 0;
        x->resp->retry_after = -1;
        x->sink = SINK_UNDECIDED;
        x->location[0] = 0;
        return len;
    }
    const char *colon = memchr(p, ':', len);
    if (!colon)
        return len;
    size_t name_len = (size_t)(colon - p);
    const char *val = colon + 1;
    size_t val_len = len - name_len - 1;
    if (name_len == 4 && !strncasecmp(p, "ETag", 4)) {
        copy_trimmed(x->resp->etag, sizeof(x->resp->etag), val, val_len);
    } else if (name_len == 8 && !strncasecmp(p, "Location", 8)) {
        copy_trimmed(x->location, sizeof(x->location), val, val_len);
    } else if (name_len == 11 && !strncasecmp(p, "Retry-After", 11)) {
        char tmp[32];
        uint64_t secs;
        copy_trimmed(tmp, sizeof(tmp), val, val_len);
        if (!parse_u64(tmp, 0, INT64_MAX, &secs))
            x->resp->retry_after = (int64_t)secs;
    }
    return len;
}

static size_t
on_write(char *p, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;
    size_t len = size * n;
    if (x->out_fd >= 0 && x->sink == SINK_UNDECIDED) {
        long status = 0;
        curl_easy_getinfo(x->c->h, CURLINFO_RESPONSE_CODE, &status);
        x->sink = status >= 200 && status < 300 ? SINK_FD : SINK_BUF;
    }
    if (x->out_fd >= 0 && x->sink == SINK_FD) {
        size_t done = 0;
        while (done < len) {
            ssize_t w = write(x->out_fd, p + done, len - done);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                x->out_errno = w < 0 ? errno : EIO;
                x->out_failed = true;
                return 0;
            }
            done += (size_t)w;
        }
        x->resp->body_size += len;
        return len;
    }
    if (buf_add(&x->body, p, len)) {
        x->too_large = true;
        return 0;
    }
    x->resp->body_size += len;
    return len;
}

static size_t
on_read(char *p, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;
    size_t want = size * n;
    uint64_t left = x->in_size - x->in_off;
    if (want > left)
        want = (size_t)left;
    if (want == 0)
        return 0;
    for (;;) {
        ssize_t r = pread(x->in_fd, p, want, (off_t)x->in_off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            /* r == 0: the file shrank under us; the length sent would be a lie */
            x->in_errno = r < 0 ? errno : 0;
            x->in_failed = true;
            return CURL_READFUNC_ABORT;
        }
        x->in_off += (uint64_t)r;
        return (size_t)r;
    }
}

static int
on_seek(void *arg, curl_off_t offset, int origin)
{
    struct xfer *x = arg;
    if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > x->in_size)
        return CURL_SEEKFUNC_CANTSEEK;
    x->in_off = (uint64_t)offset;
    return CURL_SEEKFUNC_OK;
}

static int
on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    struct xfer *x = arg;
    int stop = 0;
    if (x->in_fd >= 0)
        stop = x->progress(x->progress_arg, (uint64_t)ulnow,
                           ultotal > 0 ? (uint64_t)ultotal : x->in_size);
    else if (x->sink == SINK_FD)
        stop = x->progress(x->progress_arg, (uint64_t)dlnow, dltotal > 0 ? (uint64_t)dltotal : 0);
    if (stop)
        x->aborted = true;
    return stop;
}

/* ---- one request ------------------------------------------------------ */

/* Pulls {"error":{"code","message"}} out of an answer. */
static void
parse_error(struct oc_resp *resp)
{
    json_t *e = json_object_get(resp->json, "error");
    if (!json_is_object(e))
        return;
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    if (code)
        snprintf(resp->code, sizeof(resp->code), "%s", code);
    if (msg)
        snprintf(resp->message, sizeof(resp->message), "%s", msg);
}

/*
 * The new home base URL of a 308 wrong_region answer, into out: the error's
 * "url", else the Location header with the request's path cut off its end.
 * Returns false if the answer is not one to follow.
 */
static bool
redirect_target(const struct oc *c, const struct xfer *x, const char *path, char *out, size_t cap)
{
    const struct oc_resp *resp = x->resp;
    if (resp->status != 308 || strcmp(resp->code, "wrong_region"))
        return false;
    json_t *e = json_object_get(resp->json, "error");
    const char *url = json_string_value(json_object_get(e, "url"));
    if (!url)
        url = json_string_value(json_object_get(resp->json, "url"));
    if (url) {
        snprintf(out, cap, "%s", url);
    } else {
        size_t ll = strlen(x->location), pl = strlen(path);
        if (ll <= pl || strcmp(x->location + ll - pl, path) || ll - pl >= cap)
            return false;
        memcpy(out, x->location, ll - pl);
        out[ll - pl] = 0;
    }
    if (!strcmp(out, c->url))
        return false;
    if (!strncasecmp(c->url, "https://", 8) && strncasecmp(out, "https://", 8))
        return false; /* never downgrade */
    return true;
}

static int
map_curl_error(struct oc *c, struct xfer *x, CURLcode cc)
{
    switch (cc) {
    case CURLE_OUT_OF_MEMORY:
        set_err(c, "out of memory");
        return ERR_NOMEM;
    case CURLE_WRITE_ERROR:
        if (x->too_large) {
            set_err(c, "the answer is larger than %u MiB", OC_JSON_MAX >> 20);
            return ERR_LIMIT;
        }
        if (x->out_failed) {
            set_err(c, "cannot write: %s", strerror(x->out_errno));
            return ERR_IO;
        }
        break;
    case CURLE_ABORTED_BY_CALLBACK:
    case CURLE_READ_ERROR:
        if (x->in_failed) {
            if (x->in_errno)
                set_err(c, "cannot read: %s", strerror(x->in_errno));
            else
                set_err(c, "the file shrank while it was being sent");
            return ERR_IO;
        }
        if (x->aborted) {
            set_err(c, "aborted");
            return ERR_UNAVAILABLE;
        }
        break;
    case CURLE_URL_MALFORMAT:
        set_err(c, "bad URL '%s'", c->url);
        return ERR_INVAL;
    default:
        break;
    }
    set_err(c, "%s", c->curlerr[0] ? c->curlerr : curl_easy_strerror(cc));
    return ERR_UNAVAILABLE;
}

/* Frees a header list after wiping it: it holds the bearer token. */
static void
headers_free(struct curl_slist *l)
{
    for (struct curl_slist *p = l; p; p = p->next)
        sodium_memzero(p->data, strlen(p->data));
    curl_slist_free_all(l);
}

static int
headers_build(struct oc *c, const char *content_type, struct curl_slist **out)
{
    struct curl_slist *l = NULL, *n;
    char line[64];
    *out = NULL;
    if (!(n = curl_slist_append(l, "Accept: application/json")))
        goto nomem;
    l = n;
    if (content_type) {
        snprintf(line, sizeof(line), "Content-Type: %s", content_type);
        if (!(n = curl_slist_append(l, line)))
            goto nomem;
        l = n;
    }
    if (c->token) {
        struct buf auth;
        buf_init(&auth, OC_URL_MAX);
        if (buf_addf(&auth, "Authorization: Bearer %s", c->token)) {
            buf_release(&auth);
            goto nomem;
        }
        n = curl_slist_append(l, auth.data);
        sodium_memzero(auth.data, auth.len);
        buf_release(&auth);
        if (!n)
            goto nomem;
        l = n;
    }
    *out = l;
    return 0;
nomem:
    headers_free(l);
    return ERR_NOMEM;
}

enum xfer_kind { KIND_JSON, KIND_PUT, KIND_GET };

static int
setup(struct oc *c, struct xfer *x, enum xfer_kind kind, const char *method, const char *url,
      const char *body, size_t body_len)
{
    CURL *h = c->h;
    curl_easy_reset(h);
    c->curlerr[0] = 0;
    CURLcode cc = CURLE_OK;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (cc == CURLE_OK)                                                                        \
            cc = curl_easy_setopt(h, opt, val);                                                    \
    } while (0)
    SET(CURLOPT_URL, url);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_ERRORBUFFER, c->curlerr);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_USERAGENT, "oikos/" OIKOS_VERSION);
    SET(CURLOPT_CONNECTTIMEOUT_MS, c->connect_ms);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, x);
    SET(CURLOPT_WRITEFUNCTION, on_write);
    SET(CURLOPT_WRITEDATA, x);
    if (kind == KIND_JSON) {
        SET(CURLOPT_TIMEOUT_MS, c->call_ms);
        if (body) {
            SET(CURLOPT_POSTFIELDS, body);
            SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
            if (strcmp(method, "POST"))
                SET(CURLOPT_CUSTOMREQUEST, method);
        } else if (!strcmp(method, "GET")) {
            SET(CURLOPT_HTTPGET, 1L);
        } else if (!strcmp(method, "POST")) {
            SET(CURLOPT_POSTFIELDS, "");
            SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
        } else {
            SET(CURLOPT_CUSTOMREQUEST, method);
        }
    } else {
        long stall_s = (c->stall_ms + 999) / 1000;
        SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
        SET(CURLOPT_LOW_SPEED_TIME, stall_s);
        if (kind == KIND_PUT) {
            SET(CURLOPT_UPLOAD, 1L);
            SET(CURLOPT_READFUNCTION, on_read);
            SET(CURLOPT_READDATA, x);
            SET(CURLOPT_SEEKFUNCTION, on_seek);
            SET(CURLOPT_SEEKDATA, x);
            SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->in_size);
        } else {
            SET(CURLOPT_HTTPGET, 1L);
        }
    }
    if (x->progress) {
        SET(CURLOPT_NOPROGRESS, 0L);
        SET(CURLOPT_XFERINFOFUNCTION, on_progress);
        SET(CURLOPT_XFERINFODATA, x);
    }
#undef SET
    if (cc != CURLE_OK) {
        set_err(c, "%s", curl_easy_strerror(cc));
        return cc == CURLE_OUT_OF_MEMORY ? ERR_NOMEM : ERR_INTERNAL;
    }
    return 0;
}

/*
 * Runs one call, following wrong_region redirects. `body` is the JSON text
 * for KIND_JSON (or NULL); x carries the fds for the streaming kinds.
 */
static int
perform(struct oc *c, struct xfer *x, enum xfer_kind kind, const char *method, const char *path,
        const char *body, size_t body_len)
{
    const char *ctype = kind == KIND_PUT ? "application/octet-stream"
                        : body           ? "application/json"
                                         : NULL;
    struct curl_slist *headers = NULL;
    struct buf url;
    int rc;

    buf_init(&url, 2 * OC_URL_MAX + 64 * 1024);
    buf_init(&x->body, OC_JSON_MAX);
    c->err[0] = 0;
    if (path[0] != '/') {
        set_err(c, "bad path '%s'", path);
        rc = ERR_INVAL;
        goto out;
    }
    rc = headers_build(c, ctype, &headers);
    if (rc)
        goto out;
    for (int hop = 0;; hop++) {
        resp_clear(x->resp);
        buf_reset(&x->body);
        buf_reset(&url);
        x->too_large = x->in_failed = x->out_failed = x->aborted = false;
        x->in_off = 0;
        x->sink = SINK_UNDECIDED;
        rc = buf_adds(&url, c->url);
        if (!rc)
            rc = buf_adds(&url, path);
        if (rc) {
            set_err(c, "the URL is too long");
            goto out;
        }
        rc = setup(c, x, kind, method, url.data, body, body_len);
        if (!rc && curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, headers) != CURLE_OK)
            rc = ERR_NOMEM;
        if (rc)
            goto out;
        CURLcode cc = curl_easy_perform(c->h);
        if (cc != CURLE_OK) {
            rc = map_curl_error(c, x, cc);
            goto out;
        }
        curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &x->resp->status);
        if (x->body.len) {
            x->resp->json = json_loadb(x->body.data, x->body.len, 0, NULL);
            if (x->resp->status >= 300)
                parse_error(x->resp);
        }
        char next[OC_URL_MAX + 1];
        if (!c->follow || hop >= OC_MAX_HOPS || !redirect_target(c, x, path, next, sizeof(next)))
            break;
        rc = oc_set_url(c, next);
        if (rc == ERR_NOMEM)
            goto out;
        if (rc) {
            rc = 0; /* a bad target: hand the 308 to the caller as it is */
            break;
        }
    }
out:
    headers_free(headers);
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, NULL);
    buf_release(&url);
    buf_release(&x->body);
    return rc;
}

static void
xfer_init(struct xfer *x, struct oc *c, struct oc_resp *resp)
{
    memset(x, 0, sizeof(*x));
    x->c = c;
    x->resp = resp;
    x->in_fd = -1;
    x->out_fd = -1;
}

int
oc_call(struct oc *c, struct oc_resp *resp, const char *method, const char *path,
        const json_t *body)
{
    struct xfer x;
    char *text = NULL;
    size_t len = 0;
    int rc;

    memset(resp, 0, sizeof(*resp));
    resp->retry_after = -1;
    if (body) {
        text = json_dumps(body, JSON_COMPACT);
        if (!text) {
            set_err(c, "out of memory");
            return ERR_NOMEM;
        }
        len = strlen(text);
    }
    xfer_init(&x, c, resp);
    rc = perform(c, &x, KIND_JSON, method, path, text, len);
    if (text) {
        sodium_memzero(text, len);
        free(text);
    }
    return rc;
}

int
oc_put_fd(struct oc *c, struct oc_resp *resp, const char *path, int fd, uint64_t size,
          oc_progress_fn progress, void *arg)
{
    struct xfer x;
    memset(resp, 0, sizeof(*resp));
    resp->retry_after = -1;
    xfer_init(&x, c, resp);
    x.in_fd = fd;
    x.in_size = size;
    x.progress = progress;
    x.progress_arg = arg;
    return perform(c, &x, KIND_PUT, "PUT", path, NULL, 0);
}

int
oc_get_fd(struct oc *c, struct oc_resp *resp, const char *path, int fd, oc_progress_fn progress,
          void *arg)
{
    struct xfer x;
    memset(resp, 0, sizeof(*resp));
    resp->retry_after = -1;
    xfer_init(&x, c, resp);
    x.out_fd = fd;
    x.progress = progress;
    x.progress_arg = arg;
    return perform(c, &x, KIND_GET, "GET", path, NULL, 0);
}
