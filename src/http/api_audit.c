/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_audit.c: the audit log's routes: the public /v1/audit/... (head,
 * checkpoint, entries, inclusion and consistency proofs), the owner's
 * GET /v1/me/audit, and the log's part of health and /metrics. A thin
 * translation of audit/audit.h into the JSON of API.md: it decides nothing.
 *
 * The public routes are served while sealed: everything they show is
 * already signed and stored, and an auditor must be able to check a region
 * whatever its state (docs/internals/AUDIT.md).
 *
 * Ownership: answers are built per request and handed to libmicrohttpd.
 * Thread-safety: handlers run on any pool thread; audit.h is thread-safe.
 */
#include "base/common.h"

#include "audit/audit.h"
#include "base/util.h"
#include "http/http_int.h"

/* Parses query argument name as a number in [0, INT64_MAX]; def if absent (-1: required). */
static int
query_u64(struct req *q, const char *name, int64_t def, uint64_t *out)
{
    const char *v = http_query(q, name);
    if (!v || !*v) {
        if (def < 0)
            return ERR_INVAL;
        *out = (uint64_t)def;
        return 0;
    }
    return parse_u64(v, 0, INT64_MAX, out);
}

static int
add_b64(struct buf *b, const uint8_t *p, size_t n)
{
    int rc = buf_adds(b, "\"");
    if (!rc)
        rc = b64_encode(b, SLICE(p, n));
    if (!rc)
        rc = buf_adds(b, "\"");
    return rc;
}

static int
no_head(struct req *q)
{
    return http_fail(q, ERR_NOT_FOUND, "the log has no signed head yet: initialise the region");
}

int
api_audit_head(struct req *q)
{
    struct audit_head h;
    struct buf body, out;
    if (audit_head(region_audit(q->region), &h))
        return no_head(q);
    buf_init(&body, 512);
    buf_init(&out, 2048);
    int rc = checkpoint_format(&body, &h.cp);
    json_t *cp = rc ? NULL : json_stringn(body.data, body.len);
    if (!rc && !cp)
        rc = ERR_NOMEM;
    if (!rc)
        rc = buf_addf(&out, "{\"tree_size\":%" PRIu64 ",\"root_hash\":", h.cp.size);
    if (!rc)
        rc = add_b64(&out, h.cp.root.b, MERKLE_HASH_LEN);
    if (!rc)
        rc = buf_addf(&out, ",\"timestamp\":%" PRId64 ",\"checkpoint\":", h.cp.timestamp);
    char *cps = rc ? NULL : json_dumps(cp, JSON_ENCODE_ANY | JSON_COMPACT);
    if (!rc && !cps)
        rc = ERR_NOMEM;
    if (!rc)
        rc = buf_adds(&out, cps);
    if (!rc)
        rc = buf_adds(&out, ",\"signature\":");
    if (!rc)
        rc = add_b64(&out, h.sig, sizeof(h.sig));
    if (!rc)
        rc = buf_adds(&out, ",\"public_key\":");
    if (!rc)
        rc = add_b64(&out, h.pk, sizeof(h.pk));
    if (!rc)
        rc = buf_adds(&out, "}");
    if (!rc)
        rc = http_reply_text(q, 200, "application/json", &out);
    free(cps);
    json_decref(cp);
    buf_release(&body);
    buf_release(&out);
    return rc;
}

int
api_audit_checkpoint(struct req *q)
{
    struct audit_head h;
    struct buf body, note;
    if (audit_head(region_audit(q->region), &h))
        return no_head(q);
    buf_init(&body, 512);
    buf_init(&note, 1024);
    int rc = checkpoint_format(&body, &h.cp);
    if (!rc)
        rc = checkpoint_note(&note, buf_slice(&body), h.cp.origin, h.pk, h.sig);
    if (!rc)
        rc = http_reply_text(q, 200, "text/plain; charset=utf-8", &note);
    buf_release(&body);
    buf_release(&note);
    return rc;
}

/* Appends {"index","leaf","entry"} for one leaf to a JSON array. */
static int
entry_item(void *ctx, uint64_t index, struct slice leaf, const uint8_t *tag)
{
    json_t *arr = ctx;
    struct buf b64;
    json_error_t err;
    (void)tag;
    buf_init(&b64, 2 * STORE_AUDIT_LEAF_MAX);
    int rc = b64_encode(&b64, leaf);
    json_t *entry = json_loadb((const char *)leaf.p, leaf.len, JSON_REJECT_DUPLICATES, &err);
    json_t *o = rc ? NULL
                   : json_pack("{s:I,s:s,s:o}", "index", (json_int_t)index, "leaf",
                               b64.data ? b64.data : "", "entry", entry ? entry : json_null());
    buf_release(&b64);
    if (!o || json_array_append_new(arr, o))
        return ERR_NOMEM;
    return 0;
}

int
api_audit_entries(struct req *q)
{
    uint64_t start, end;
    struct audit_head h;
    if (query_u64(q, "start", -1, &start))
        return http_fail(q, ERR_INVAL, "'start' must be a leaf index");
    if (query_u64(q, "end", (int64_t)(start + AUDIT_PAGE_MAX), &end) || end <= start)
        return http_fail(q, ERR_INVAL, "'end' must be a leaf index above 'start'");
    if (audit_head(region_audit(q->region), &h))
        return no_head(q);
    if (start >= h.cp.size)
        return http_fail(q, ERR_INVAL, "'start' is not below the signed tree size");
    json_t *arr = json_array();
    if (!arr)
        return ERR_NOMEM;
    int rc = audit_entries(region_audit(q->region), start, end, entry_item, arr);
    json_t *o = rc ? NULL : json_pack("{s:o}", "entries", arr);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    if (!o)
        return ERR_NOMEM;
    rc = http_reply_json(q, 200, o);
    json_decref(o);
    return rc;
}

/* Answers {"<key>":["b64", ...]} for a proof. */
static int
reply_proof(struct req *q, const char *key, const struct merkle_hash *proof, size_t n)
{
    struct buf out;
    buf_init(&out, 64 + n * 48);
    int rc = buf_addf(&out, "{\"%s\":[", key);
    for (size_t i = 0; !rc && i < n; i++) {
        if (i)
            rc = buf_adds(&out, ",");
        if (!rc)
            rc = add_b64(&out, proof[i].b, MERKLE_HASH_LEN);
    }
    if (!rc)
        rc = buf_adds(&out, "]}");
    if (!rc)
        rc = http_reply_text(q, 200, "application/json", &out);
    buf_release(&out);
    return rc;
}

int
api_audit_inclusion(struct req *q)
{
    uint64_t index, size;
    struct merkle_hash proof[MERKLE_MAX_PROOF];
    size_t n = 0;
    if (query_u64(q, "index", -1, &index) || query_u64(q, "tree_size", -1, &size))
        return http_fail(q, ERR_INVAL, "expected ?index=I&tree_size=N");
    int rc = audit_inclusion(region_audit(q->region), index, size, proof, &n);
    if (rc == ERR_INVAL)
        return http_fail(q, rc, "need index < tree_size <= the signed tree size");
    return rc ? rc : reply_proof(q, "audit_path", proof, n);
}

int
api_audit_consistency(struct req *q)
{
    uint64_t first, second;
    struct merkle_hash proof[MERKLE_MAX_PROOF];
    size_t n = 0;
    if (query_u64(q, "first", -1, &first) || query_u64(q, "second", -1, &second))
        return http_fail(q, ERR_INVAL, "expected ?first=M&second=N");
    int rc = audit_consistency(region_audit(q->region), first, second, proof, &n);
    if (rc == ERR_INVAL)
        return http_fail(q, rc, "need 0 < first <= second <= the signed tree size");
    return rc ? rc : reply_proof(q, "consistency", proof, n);
}

struct mine {
    json_t *arr;
    uint64_t last;
    size_t n;
};

static int
mine_item(void *ctx, uint64_t index, struct slice leaf, const uint8_t *tag)
{
    struct mine *m = ctx;
    m->last = index;
    m->n++;
    return entry_item(m->arr, index, leaf, tag);
}

int
api_me_audit(struct req *q)
{
    uint64_t start, limit;
    uint8_t pseudonym[AUDIT_HASH_LEN];
    char b64[AUDIT_B64_LEN];
    struct audit_head h;
    struct mine m = {0};
    if (query_u64(q, "start", 0, &start))
        return http_fail(q, ERR_INVAL, "'start' must be a leaf index");
    if (query_u64(q, "limit", AUDIT_PAGE_MAX, &limit) || limit < 1 || limit > AUDIT_PAGE_MAX)
        return http_fail(q, ERR_INVAL, "'limit' must be 1 to 1000");
    bool have = audit_head(region_audit(q->region), &h) == 0;
    m.arr = json_array();
    if (!m.arr)
        return ERR_NOMEM;
    int rc = audit_mine(region_audit(q->region), q->account, start, (size_t)limit, mine_item, &m,
                        pseudonym);
    if (rc) {
        json_decref(m.arr);
        return rc;
    }
    audit_b64(b64, pseudonym);
    json_t *next = m.n == limit ? json_integer((json_int_t)(m.last + 1)) : json_null();
    json_t *o = json_pack("{s:s,s:I,s:o,s:o}", "pseudonym", b64, "tree_size",
                          (json_int_t)(have ? h.cp.size : 0), "entries", m.arr, "next", next);
    if (!o)
        return ERR_NOMEM;
    rc = http_reply_json(q, 200, o);
    json_decref(o);
    return rc;
}

int
api_health_audit(struct req *q, json_t *health)
{
    struct audit_status st;
    if (!region_initialized(q->region))
        return 0;
    audit_status(region_audit(q->region), &st);
    json_t *o = json_pack("{s:b,s:I,s:I}", "ok", st.ok, "tree_size", (json_int_t)st.tree_size,
                          "leaves", (json_int_t)st.leaves);
    if (o && !st.ok &&
        (json_object_set_new(o, "error", json_string(st.error)) ||
         json_object_set_new(o, "since", json_integer((json_int_t)st.error_at))))
        return ERR_NOMEM;
    return !o || json_object_set_new(health, "audit", o) ? ERR_NOMEM : 0;
}

int
metrics_audit(struct buf *out, struct region *r)
{
    struct audit_status st;
    audit_status(region_audit(r), &st);
    return buf_addf(
        out,
        "# HELP oikos_audit_tree_size Leaves covered by the last signed head.\n"
        "# TYPE oikos_audit_tree_size gauge\noikos_audit_tree_size %" PRIu64 "\n"
        "# HELP oikos_audit_leaves Audit entries stored (signed or about to be).\n"
        "# TYPE oikos_audit_leaves gauge\noikos_audit_leaves %" PRIu64 "\n"
        "# HELP oikos_audit_head_timestamp_seconds When the last head was signed.\n"
        "# TYPE oikos_audit_head_timestamp_seconds gauge\n"
        "oikos_audit_head_timestamp_seconds %" PRId64 "\n"
        "# HELP oikos_audit_append_failures_total Entries that could not be stored (their "
        "actions were refused).\n"
        "# TYPE oikos_audit_append_failures_total counter\n"
        "oikos_audit_append_failures_total %" PRIu64 "\n"
        "# HELP oikos_audit_integrate_failures_total Failed attempts to sign a new head.\n"
        "# TYPE oikos_audit_integrate_failures_total counter\n"
        "oikos_audit_integrate_failures_total %" PRIu64 "\n"
        "# HELP oikos_audit_ok 1 while entries are stored and heads signed; see health.\n"
        "# TYPE oikos_audit_ok gauge\noikos_audit_ok %d\n",
        st.tree_size, st.leaves, st.head_time, st.append_failures, st.integrate_failures,
        st.ok ? 1 : 0);
}
