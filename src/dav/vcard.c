/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vcard.c: checking and walking vCards (see vcard.h), on top of base only.
 *
 * Both the checker and the walker cut the data into physical lines (LF,
 * CRLF, CRCRLF as iOS writes, or a lone CR), classify each line as a
 * content line ("group.NAME;params:value"), a folded continuation (leading
 * space or tab), a blank line or "junk", and track the BEGIN/END nesting.
 * Junk is what vCard 2.1 writers leave between properties (quoted-printable
 * soft breaks, unindented base64, comment lines): tolerated in a 2.1 card,
 * refused in 3.0 and 4.0. Neither function allocates except into the
 * caller's scratch buffer; the data is never modified.
 *
 * Thread-safety: none needed; no global state.
 */
#include "base/common.h"

#include "dav/vcard.h"

struct line {
    const uint8_t *p;
    size_t len;
    size_t no; /* 1-based line number */
};

/* Content line pieces, borrowed from the line. */
struct cline {
    struct slice group, name, params, value;
};

/* The next physical line at *off, without its terminator. */
static bool
next_line(struct slice d, size_t *off, struct line *ln)
{
    if (*off >= d.len)
        return false;
    size_t i = *off;
    while (i < d.len && d.p[i] != '\n' && d.p[i] != '\r')
        i++;
    ln->p = d.p + *off;
    ln->len = i - *off;
    ln->no++;
    if (i < d.len && d.p[i] == '\r') {
        while (i < d.len && d.p[i] == '\r')
            i++;
        if (i < d.len && d.p[i] == '\n')
            i++;
    } else if (i < d.len) {
        i++; /* '\n' */
    }
    *off = i;
    return true;
}

static bool
is_name_char(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

bool
vcard_word_eq(struct slice s, const char *w)
{
    size_t n = strlen(w);
    if (s.len != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        uint8_t a = s.p[i], b = (uint8_t)w[i];
        if (a >= 'a' && a <= 'z')
            a = (uint8_t)(a - 32);
        if (b >= 'a' && b <= 'z')
            b = (uint8_t)(b - 32);
        if (a != b)
            return false;
    }
    return true;
}

/* s without spaces and tabs at either end. */
static struct slice
trim(struct slice s)
{
    while (s.len && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++;
        s.len--;
    }
    while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
        s.len--;
    return s;
}

/* Parses "group.NAME;params:value"; false if the line is not one. */
static bool
parse_cline(const struct line *ln, struct cline *c)
{
    const uint8_t *p = ln->p, *end = ln->p + ln->len;
    const uint8_t *tok = p;
    memset(c, 0, sizeof(*c));
    for (;;) {
        const uint8_t *s = p;
        while (p < end && is_name_char(*p))
            p++;
        if (p == s || p == end)
            return false;
        if (*p != '.')
            break;
        p++; /* a group: what precedes the last dot */
    }
    c->name = SLICE(tok, (size_t)(p - tok));
    for (size_t i = c->name.len; i > 0; i--) {
        if (tok[i - 1] == '.') {
            c->group = SLICE(tok, i - 1);
            c->name = SLICE(tok + i, c->name.len - i);
            break;
        }
    }
    if (*p == ':') {
        c->value = SLICE(p + 1, (size_t)(end - p - 1));
        return true;
    }
    if (*p != ';')
        return false;
    const uint8_t *ps = ++p;
    bool quoted = false;
    for (; p < end; p++) {
        if (*p == '"')
            quoted = !quoted;
        else if (*p == ':' && !quoted)
            break;
    }
    if (p == end)
        return false;
    c->params = SLICE(ps, (size_t)(p - ps));
    c->value = SLICE(p + 1, (size_t)(end - p - 1));
    return true;
}

/* Length of the valid UTF-8 sequence at p (max n bytes), 0 if invalid. */
static size_t
utf8_seq(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    size_t len = c < 0x80             ? 1
                 : (c & 0xE0) == 0xC0 ? 2
                 : (c & 0xF0) == 0xE0 ? 3
                 : (c & 0xF8) == 0xF0 ? 4
                                      : 0;
    if (!len || len > n)
        return 0;
    uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1Fu : len == 3 ? c & 0x0Fu : c & 0x07u;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3Fu);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

static bool
utf8_valid(const uint8_t *p, size_t n)
{
    while (n) {
        size_t k = utf8_seq(p, n);
        if (!k)
            return false;
        p += k;
        n -= k;
    }
    return true;
}

/* True if the parameters name a CHARSET (legacy encodings are then allowed). */
static bool
has_charset(struct slice params)
{
    static const char key[] = "CHARSET=";
    size_t n = sizeof(key) - 1;
    for (size_t i = 0; i + n <= params.len; i++)
        if ((i == 0 || params.p[i - 1] == ';') && vcard_word_eq(SLICE(params.p + i, n), key))
            return true;
    return false;
}

static unsigned
version_of(struct slice v)
{
    v = trim(v);
    if (vcard_word_eq(v, "2.1"))
        return 21;
    if (vcard_word_eq(v, "3.0"))
        return 30;
    if (vcard_word_eq(v, "4.0"))
        return 40;
    return 0;
}

static PRINTF_LIKE(2, 3) int refuse(char why[VCARD_WHY_MAX], const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, VCARD_WHY_MAX, fmt, ap);
    va_end(ap);
    return ERR_INVAL;
}

/* The per-card state of the checker. */
struct card {
    unsigned version;
    size_t props;
    size_t junk_line; /* first junk line, 0 if none */
    size_t bad_utf8;  /* first line with invalid UTF-8 outside a CHARSET, 0 if none */
    size_t begin_line;
};

static int
card_end(struct card *k, struct vcard_info *info, char why[VCARD_WHY_MAX])
{
    unsigned v = k->version ? k->version : 21;
    if (v != 21 && k->junk_line)
        return refuse(why, "line %zu is neither a property nor a folded line", k->junk_line);
    if (v != 21 && k->bad_utf8)
        return refuse(why, "line %zu is not valid UTF-8", k->bad_utf8);
    if (k->props == 0)
        return refuse(why, "the vCard starting at line %zu has no properties", k->begin_line);
    if (info->cards == 1)
        info->version = v;
    return 0;
}

int
vcard_check(struct slice d, struct vcard_info *info, char why[VCARD_WHY_MAX])
{
    struct line ln = {0};
    struct card k;
    size_t off = 0, depth = 0;
    bool have_prop = false, exempt = false, uid_open = false;
    struct cline c;
    int rc;

    memset(info, 0, offsetof(struct vcard_info, uid) + 1);
    memset(&k, 0, sizeof(k));
    why[0] = 0;
    if (d.len > VCARD_MAX) {
        snprintf(why, VCARD_WHY_MAX, "a vCard may have at most %u bytes", VCARD_MAX);
        return ERR_TOO_LARGE;
    }
    for (size_t i = 0; i < d.len; i++) {
        uint8_t b = d.p[i];
        if ((b < 0x20 && b != '\t' && b != '\r' && b != '\n') || b == 0x7F) {
            snprintf(why, VCARD_WHY_MAX, "control character 0x%02x at byte %zu", b, i);
            return ERR_INVAL;
        }
    }
    if (d.len >= 3 && !memcmp(d.p, "\xEF\xBB\xBF", 3))
        off = 3; /* a UTF-8 byte order mark */
    while (next_line(d, &off, &ln)) {
        if (ln.len == 0)
            continue;
        bool folded = ln.p[0] == ' ' || ln.p[0] == '\t';
        if (depth == 0) {
            if (!folded && parse_cline(&ln, &c) && vcard_word_eq(c.name, "BEGIN") &&
                vcard_word_eq(trim(c.value), "VCARD") && !c.group.len && !c.params.len) {
                depth = 1;
                info->cards++;
                memset(&k, 0, sizeof(k));
                k.begin_line = ln.no;
                have_prop = exempt = uid_open = false;
                continue;
            }
            if (info->cards == 0)
                return refuse(why, "line %zu comes before BEGIN:VCARD", ln.no);
            return refuse(why, "line %zu comes after END:VCARD", ln.no);
        }
        if (folded) {
            if (!have_prop) {
                if (!k.junk_line)
                    k.junk_line = ln.no;
                continue;
            }
            if (!exempt && !k.bad_utf8 && !utf8_valid(ln.p, ln.len))
                k.bad_utf8 = ln.no;
            if (uid_open) {
                size_t n = ln.len - 1;
                if (info->uid_len + n > VCARD_UID_MAX)
                    return refuse(why, "the UID ending at line %zu is too long", ln.no);
                memcpy(info->uid + info->uid_len, ln.p + 1, n);
                info->uid_len += n;
            }
            continue;
        }
        uid_open = false;
        if (!parse_cline(&ln, &c)) {
            if (!k.junk_line)
                k.junk_line = ln.no;
            continue;
        }
        have_prop = true;
        exempt = has_charset(c.params);
        if (!exempt && !k.bad_utf8 && !utf8_valid(ln.p, ln.len))
            k.bad_utf8 = ln.no;
        if (vcard_word_eq(c.name, "BEGIN") && vcard_word_eq(trim(c.value), "VCARD")) {
            if (++depth > VCARD_NEST_MAX)
                return refuse(why, "line %zu nests vCards too deeply", ln.no);
            continue;
        }
        if (vcard_word_eq(c.name, "END")) {
            if (!vcard_word_eq(trim(c.value), "VCARD"))
                return refuse(why, "line %zu ends something that is not a vCard", ln.no);
            if (--depth == 0) {
                rc = card_end(&k, info, why);
                if (rc)
                    return rc;
                have_prop = false;
            }
            continue;
        }
        if (vcard_word_eq(c.name, "BEGIN"))
            return refuse(why, "line %zu begins something that is not a vCard", ln.no);
        if (depth != 1)
            continue;
        if (vcard_word_eq(c.name, "VERSION")) {
            unsigned v = version_of(c.value);
            if (!v)
                return refuse(why, "line %zu: the version must be 2.1, 3.0 or 4.0", ln.no);
            if (k.version && k.version != v)
                return refuse(why, "line %zu gives a second, different version", ln.no);
            k.version = v;
            continue;
        }
        k.props++;
        if (info->cards == 1 && !info->has_uid && vcard_word_eq(c.name, "UID")) {
            if (c.value.len > VCARD_UID_MAX)
                return refuse(why, "the UID at line %zu is too long", ln.no);
            memcpy(info->uid, c.value.p, c.value.len);
            info->uid_len = c.value.len;
            info->has_uid = true;
            uid_open = true;
        }
    }
    if (depth != 0)
        return refuse(why, "the vCard starting at line %zu has no END:VCARD", k.begin_line);
    if (info->cards == 0) {
        snprintf(why, VCARD_WHY_MAX, "no vCard in the data");
        return ERR_INVAL;
    }
    /* the UID without surrounding blanks; an empty UID is no UID */
    struct slice u = trim(SLICE(info->uid, info->uid_len));
    memmove(info->uid, u.p, u.len);
    info->uid_len = u.len;
    info->uid[u.len] = 0;
    info->has_uid = u.len > 0;
    return 0;
}

/* Walking ------------------------------------------------------------------ */

static bool
is_qp(struct slice params)
{
    struct slice rest = params;
    while (rest.len) {
        size_t n = 0;
        while (n < rest.len && rest.p[n] != ';')
            n++;
        struct slice one = trim(SLICE(rest.p, n));
        if (vcard_word_eq(one, "QUOTED-PRINTABLE") ||
            vcard_word_eq(one, "ENCODING=QUOTED-PRINTABLE"))
            return true;
        if (n == rest.len)
            break;
        rest = SLICE(rest.p + n + 1, rest.len - n - 1);
    }
    return false;
}

struct walk {
    struct vcard_prop prop;
    bool pending, qp;
    unsigned version;
    struct buf *scratch;
};

static int
walk_flush(struct walk *w, vcard_prop_cb cb, void *ctx)
{
    if (!w->pending)
        return 0;
    w->pending = false;
    w->prop.value = buf_slice(w->scratch);
    w->prop.version = w->version ? w->version : 21;
    return cb(ctx, &w->prop);
}

int
vcard_each(struct slice d, struct buf *scratch, vcard_prop_cb cb, void *ctx)
{
    struct line ln = {0};
    struct walk w;
    struct cline c;
    size_t off = 0, depth = 0;
    int rc = 0;
    memset(&w, 0, sizeof(w));
    w.scratch = scratch;
    while (!rc && next_line(d, &off, &ln)) {
        bool folded = ln.len && (ln.p[0] == ' ' || ln.p[0] == '\t');
        if (depth == 0) {
            if (ln.len && !folded && parse_cline(&ln, &c) && vcard_word_eq(c.name, "BEGIN") &&
                vcard_word_eq(trim(c.value), "VCARD")) {
                depth = 1;
                w.version = 0;
            }
            continue;
        }
        if (ln.len == 0)
            continue;
        if (w.pending && folded) {
            rc = buf_add(scratch, ln.p + 1, ln.len - 1);
            continue;
        }
        bool content = !folded && parse_cline(&ln, &c);
        if (w.pending && !content) {
            /* a 2.1 continuation: quoted-printable soft break or bare base64 */
            if (w.qp && scratch->len && scratch->data[scratch->len - 1] == '=')
                scratch->data[--scratch->len] = 0;
            rc = buf_add(scratch, ln.p, ln.len);
            continue;
        }
        if (!content)
            continue;
        rc = walk_flush(&w, cb, ctx);
        if (rc)
            break;
        if (vcard_word_eq(c.name, "BEGIN") && vcard_word_eq(trim(c.value), "VCARD")) {
            depth++;
            continue;
        }
        if (vcard_word_eq(c.name, "END")) {
            if (depth > 0)
                depth--;
            continue;
        }
        if (depth != 1)
            continue;
        if (vcard_word_eq(c.name, "VERSION")) {
            w.version = version_of(c.value);
            continue;
        }
        w.prop.group = c.group;
        w.prop.name = c.name;
        w.prop.params = c.params;
        w.qp = is_qp(c.params);
        buf_reset(scratch);
        rc = buf_add(scratch, c.value.p, c.value.len);
        w.pending = true;
    }
    if (!rc)
        rc = walk_flush(&w, cb, ctx);
    return rc;
}

/*
 * Calls cb once per comma-separated value of v (quotes removed). TYPE
 * lists are split inside quotes too: RFC 6350 writes TYPE="voice,home".
 */
static int
each_value(struct slice name, struct slice v, vcard_param_cb cb, void *ctx)
{
    size_t i = 0;
    bool type = vcard_word_eq(name, "TYPE");
    while (i <= v.len) {
        size_t s = i;
        bool quoted = false;
        while (i < v.len && ((quoted && !type) || v.p[i] != ',')) {
            if (v.p[i] == '"')
                quoted = !quoted;
            i++;
        }
        struct slice one = trim(SLICE(v.p + s, i - s));
        if (one.len >= 2 && one.p[0] == '"' && one.p[one.len - 1] == '"')
            one = SLICE(one.p + 1, one.len - 2);
        else if (type && one.len && one.p[0] == '"')
            one = SLICE(one.p + 1, one.len - 1);
        else if (type && one.len && one.p[one.len - 1] == '"')
            one = SLICE(one.p, one.len - 1);
        int rc = cb(ctx, name, one);
        if (rc)
            return rc;
        i++;
    }
    return 0;
}

int
vcard_each_param(const struct vcard_prop *p, vcard_param_cb cb, void *ctx)
{
    struct slice s = p->params;
    size_t i = 0;
    while (s.len && i <= s.len) {
        size_t st = i;
        bool quoted = false;
        while (i < s.len && (quoted || s.p[i] != ';')) {
            if (s.p[i] == '"')
                quoted = !quoted;
            i++;
        }
        struct slice one = trim(SLICE(s.p + st, i - st));
        i++;
        if (!one.len)
            continue;
        const uint8_t *eq = memchr(one.p, '=', one.len);
        int rc;
        if (!eq) {
            rc = cb(ctx, SLICE("TYPE", 4), one);
        } else {
            struct slice name = trim(SLICE(one.p, (size_t)(eq - one.p)));
            rc = each_value(name, SLICE(eq + 1, one.len - (size_t)(eq - one.p) - 1), cb, ctx);
        }
        if (rc)
            return rc;
    }
    return 0;
}

static int
hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int
vcard_value_text(const struct vcard_prop *p, struct buf *out)
{
    const uint8_t *v = p->value.p;
    size_t n = p->value.len;
    bool qp = is_qp(p->params);
    int rc = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        uint8_t ch = v[i];
        if (qp && ch == '=') {
            int hi = i + 1 < n ? hexval(v[i + 1]) : -1;
            int lo = i + 2 < n ? hexval(v[i + 2]) : -1;
            if (hi >= 0 && lo >= 0) {
                uint8_t b = (uint8_t)(hi * 16 + lo);
                rc = buf_add(out, &b, 1);
                i += 2;
                continue;
            }
            if (i + 1 == n)
                break; /* a trailing soft break */
            rc = buf_add(out, &ch, 1);
            continue;
        }
        if (ch == '\\' && i + 1 < n) {
            uint8_t e = v[i + 1];
            uint8_t o = e == 'n' || e == 'N' ? '\n' : e;
            if (e == 'n' || e == 'N' || e == ',' || e == ';' || e == '\\' || e == ':') {
                rc = buf_add(out, &o, 1);
                i++;
                continue;
            }
        }
        rc = buf_add(out, &ch, 1);
    }
    return rc;
}
