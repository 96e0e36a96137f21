/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_audit.c: `oikos audit verify`, the outside auditor's check of a
 * region's audit log, on top of liboikos (the /v1/audit routes and
 * /v1/me/audit) and the pure half of src/audit (merkle.c: RFC 6962 proof
 * verification; checkpoint.c: the signed head). It trusts nothing the
 * region says that it can check:
 *
 *   1. the head's checkpoint carries the head's size, root and time, and
 *      its Ed25519 signature verifies under the region's public key, which
 *      is pinned in the state file on first use and must never change;
 *   2. the head is consistent with the last head seen (a consistency
 *      proof), so history was only appended to, never rewritten;
 *   3. with --full, every entry is fetched and the root recomputed from
 *      them equals the signed root, and inclusion proofs of a spread of
 *      leaves verify (which reads stored nodes all over the tree);
 *   4. with a session for this region, each of the user's own entries is
 *      proven included in the signed tree.
 *
 * The state file, JSON {"<url>": {"public_key","origin","tree_size",
 * "root_hash","timestamp"}}, is updated (atomically) only when every check
 * held. Everything here is owned by the command; single-threaded.
 */
#include "base/common.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/checkpoint.h"
#include "audit/merkle.h"
#include "base/util.h"
#include "cli/cli.h"

#define AUDIT_STATE_FILE "audit-state.json"
#define AUDIT_STATE_MAX (4 * 1024 * 1024)
#define AUDIT_PAGE 1000
#define AUDIT_SAMPLE 64 /* leaves whose inclusion --full checks */

static const struct cli_cmd audit_verify;

struct verify {
    struct oc *c;
    const char *url;
    bool json, quiet;
    unsigned failures;
    json_t *checks; /* for --json */
    /* the head */
    struct checkpoint cp;
    uint8_t pk[CHECKPOINT_PUBKEY_LEN];
};

/* Reports one check: "ok" or "FAIL" and what it was about. */
PRINTF_LIKE(4, 5)
static void
report(struct verify *v, bool ok, const char *check, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    if (!ok)
        v->failures++;
    if (v->json) {
        json_t *o = json_pack("{s:s,s:b,s:s}", "check", check, "ok", ok, "detail", detail);
        if (!o || json_array_append_new(v->checks, o))
            cli_oom();
        return;
    }
    printf("%-4s  %-12s %s\n", ok ? "ok" : "FAIL", check, detail);
}

/* Base64 field of exactly n bytes. */
static bool
b64_field(json_t *o, const char *key, uint8_t *out, size_t n)
{
    const char *s = json_string_value(json_object_get(o, key));
    size_t got = 0;
    return s && !b64_decode(out, n, &got, s, strlen(s)) && got == n;
}

static bool
u64_field(json_t *o, const char *key, uint64_t *out)
{
    json_t *j = json_object_get(o, key);
    if (!json_is_integer(j) || json_integer_value(j) < 0)
        return false;
    *out = (uint64_t)json_integer_value(j);
    return true;
}

/* GET path as JSON with status 200, or reports the failure under check. */
static int
get_json(struct verify *v, const char *path, struct oc_resp *r, const char *check)
{
    int rc = oc_call(v->c, r, "GET", path, NULL);
    if (rc || r->status != 200 || !r->json) {
        if (rc)
            report(v, false, check, "cannot reach %s: %s", v->url, oc_errstr(v->c));
        else
            report(v, false, check, "GET %s answered %ld %s", path, r->status,
                   r->message[0] ? r->message : "");
        return -1;
    }
    return 0;
}

/* ---- the state file ------------------------------------------------------ */

static int
state_default(struct buf *out)
{
    struct buf p;
    buf_init(&p, 4096);
    int rc = session_path(&p);
    if (!rc) {
        char *slash = strrchr(p.data, '/');
        if (slash)
            *slash = 0;
        rc = buf_addf(out, "%s/%s", p.data, AUDIT_STATE_FILE);
    }
    buf_release(&p);
    return rc;
}

/* Loads the state file (an empty object if absent). NULL on a damaged file. */
static json_t *
state_load(const char *path)
{
    json_error_t err;
    struct stat st;
    if (stat(path, &st) != 0 && errno == ENOENT)
        return json_object();
    json_t *j = json_load_file(path, 0, &err);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        cli_error("cannot read audit state '%s': %s", path, j ? "not a JSON object" : err.text);
        return NULL;
    }
    return j;
}

/* Writes the state atomically: a temporary file, fsync, rename. */
static int
state_save(const char *path, json_t *state)
{
    struct buf tmp, dir;
    buf_init(&tmp, 8192);
    buf_init(&dir, 8192);
    int rc = buf_addf(&tmp, "%s.tmp.%ld", path, (long)getpid());
    if (rc)
        cli_oom();
    if (buf_adds(&dir, path))
        cli_oom();
    char *slash = strrchr(dir.data, '/');
    if (slash && slash != dir.data) {
        *slash = 0;
        if (mkdir(dir.data, 0700) != 0 && errno != EEXIST) {
            cli_error("cannot create '%s': %s", dir.data, strerror(errno));
            rc = -1;
            goto out;
        }
    }
    int fd = open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    char *text = json_dumps(state, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (!text)
        cli_oom();
    size_t len = strlen(text);
    bool ok = fd >= 0 && write(fd, text, len) == (ssize_t)len && write(fd, "\n", 1) == 1 &&
              fsync(fd) == 0;
    int e = errno;
    free(text);
    if (fd >= 0)
        close(fd);
    if (!ok || rename(tmp.data, path) != 0) {
        cli_error("cannot write audit state '%s': %s", path, strerror(ok ? errno : e));
        unlink(tmp.data);
        rc = -1;
    }
out:
    buf_release(&tmp);
    buf_release(&dir);
    return rc;
}

/* ---- the checks ---------------------------------------------------------- */

/* 1. The head: fields, checkpoint, signature, pinned key. */
static int
check_head(struct verify *v, json_t *pinned)
{
    struct oc_resp r = {0};
    struct checkpoint cp;
    uint8_t sig[CHECKPOINT_SIG_LEN];
    uint64_t size = 0, ts = 0;
    struct merkle_hash root;
    char pkb64[64];
    int rc = -1;
    if (get_json(v, "/v1/audit/head", &r, "head"))
        goto out;
    const char *body = json_string_value(json_object_get(r.json, "checkpoint"));
    if (!body || !u64_field(r.json, "tree_size", &size) || !u64_field(r.json, "timestamp", &ts) ||
        !b64_field(r.json, "root_hash", root.b, MERKLE_HASH_LEN) ||
        !b64_field(r.json, "signature", sig, sizeof(sig)) ||
        !b64_field(r.json, "public_key", v->pk, sizeof(v->pk))) {
        report(v, false, "head", "the head is malformed");
        goto out;
    }
    if (checkpoint_parse(&cp, body, strlen(body)) || strncmp(cp.origin, "oikos/", 6) ||
        cp.size != size || cp.timestamp != (int64_t)ts ||
        memcmp(cp.root.b, root.b, MERKLE_HASH_LEN)) {
        report(v, false, "head", "the checkpoint does not match the head's size, root and time");
        goto out;
    }
    if (checkpoint_verify(SLICE(body, strlen(body)), sig, v->pk)) {
        report(v, false, "signature", "the head's signature does not verify: forged or altered");
        goto out;
    }
    const char *pin = json_string_value(json_object_get(pinned, "public_key"));
    const char *porigin = json_string_value(json_object_get(pinned, "origin"));
    const char *given = json_string_value(json_object_get(r.json, "public_key"));
    snprintf(pkb64, sizeof(pkb64), "%s", given ? given : "");
    if (pin && strcmp(pin, pkb64)) {
        report(v, false, "key", "the region's public key changed: pinned %s, now %s", pin, pkb64);
        goto out;
    }
    if (porigin && strcmp(porigin, cp.origin)) {
        report(v, false, "key", "the log's origin changed: pinned %s, now %s", porigin, cp.origin);
        goto out;
    }
    report(v, true, "signature", "head of %s signed by %s key %s (tree size %" PRIu64 ")",
           cp.origin, pin ? "the pinned" : "newly pinned", pkb64, cp.size);
    v->cp = cp;
    rc = 0;
out:
    oc_resp_release(&r);
    return rc;
}

/* 2. Consistency with the last head seen. */
static int
check_consistency(struct verify *v, json_t *last)
{
    uint64_t size1 = 0;
    struct merkle_hash root1, proof[MERKLE_MAX_PROOF];
    struct oc_resp r = {0};
    char path[128];
    int rc = -1;
    if (!last) {
        report(v, true, "consistency", "first look at this log: nothing to compare with yet");
        return 0;
    }
    if (!u64_field(last, "tree_size", &size1) ||
        !b64_field(last, "root_hash", root1.b, MERKLE_HASH_LEN)) {
        report(v, false, "consistency", "the saved head is damaged; remove it to start over");
        return -1;
    }
    if (size1 > v->cp.size) {
        report(v, false, "consistency",
               "the log shrank from %" PRIu64 " to %" PRIu64 " entries: history was rewritten",
               size1, v->cp.size);
        return -1;
    }
    if (size1 == v->cp.size) {
        bool same = !memcmp(root1.b, v->cp.root.b, MERKLE_HASH_LEN);
        report(v, same, "consistency",
               same ? "same tree as last time (%" PRIu64 " entries)"
                    : "same size (%" PRIu64 ") but another root: history was rewritten",
               size1);
        return same ? 0 : -1;
    }
    snprintf(path, sizeof(path), "/v1/audit/proof/consistency?first=%" PRIu64 "&second=%" PRIu64,
             size1, v->cp.size);
    if (get_json(v, path, &r, "consistency"))
        goto out;
    json_t *arr = json_object_get(r.json, "consistency");
    size_t n = json_array_size(arr);
    bool ok = json_is_array(arr) && n <= MERKLE_MAX_PROOF;
    for (size_t i = 0; ok && i < n; i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        size_t got = 0;
        ok = s && !b64_decode(proof[i].b, MERKLE_HASH_LEN, &got, s, strlen(s)) &&
             got == MERKLE_HASH_LEN;
    }
    if (ok)
        ok = !merkle_verify_consistency(size1, v->cp.size, &root1, &v->cp.root, proof, n);
    report(v, ok, "consistency",
           ok ? "the log grew from %" PRIu64 " to %" PRIu64 " entries; history unchanged"
              : "the tree of %" PRIu64 " entries seen before is not a prefix of the tree of "
                "%" PRIu64 ": history was rewritten",
           size1, v->cp.size);
    rc = ok ? 0 : -1;
out:
    oc_resp_release(&r);
    return rc;
}

/* Checks that leaf index (whose bytes are leaf) is in the signed tree. */
static bool
included(struct verify *v, uint64_t index, struct slice leaf, const char **why)
{
    struct oc_resp r = {0};
    struct merkle_hash proof[MERKLE_MAX_PROOF], lh;
    char path[128];
    bool ok = false;
    *why = "no valid proof";
    snprintf(path, sizeof(path), "/v1/audit/proof/inclusion?index=%" PRIu64 "&tree_size=%" PRIu64,
             index, v->cp.size);
    int rc = oc_call(v->c, &r, "GET", path, NULL);
    if (rc || r.status != 200 || !r.json) {
        *why = rc ? "the region did not answer" : "the region gave no proof";
        goto out;
    }
    json_t *arr = json_object_get(r.json, "audit_path");
    size_t n = json_array_size(arr);
    if (!json_is_array(arr) || n > MERKLE_MAX_PROOF)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        size_t got = 0;
        if (!s || b64_decode(proof[i].b, MERKLE_HASH_LEN, &got, s, strlen(s)) ||
            got != MERKLE_HASH_LEN)
            goto out;
    }
    merkle_leaf_hash(&lh, leaf.p, leaf.len);
    ok = !merkle_verify_inclusion(&lh, index, v->cp.size, &v->cp.root, proof, n);
    if (!ok)
        *why = "the proof does not lead to the signed root";
out:
    oc_resp_release(&r);
    return ok;
}

/* Decodes an item's "leaf" (base64) into out. */
static bool
item_leaf(json_t *item, struct buf *out, uint64_t *index)
{
    const char *s = json_string_value(json_object_get(item, "leaf"));
    size_t n = 0;
    buf_reset(out);
    if (!s || !u64_field(item, "index", index) || buf_grow(out, strlen(s)))
        return false;
    if (b64_decode((uint8_t *)out->data, out->cap, &n, s, strlen(s)))
        return false;
    out->len = n;
    return true;
}

/* 3. --full: every entry, the recomputed root, and a spread of inclusion proofs. */
static int
check_full(struct verify *v)
{
    struct merkle_frontier fr;
    struct buf leaf, sample;
    struct merkle_hash root;
    char path[128];
    unsigned sampled = 0, sample_bad = 0;
    int rc = -1;
    const uint64_t step = v->cp.size / AUDIT_SAMPLE ? v->cp.size / AUDIT_SAMPLE : 1;
    merkle_frontier_init(&fr);
    buf_init(&leaf, 2 * 4096);
    buf_init(&sample, 64 * 1024);
    struct cli_progress prog;
    cli_progress_start(&prog, v->cp.size);
    while (fr.size < v->cp.size) {
        struct oc_resp r = {0};
        uint64_t end = fr.size + AUDIT_PAGE < v->cp.size ? fr.size + AUDIT_PAGE : v->cp.size;
        snprintf(path, sizeof(path), "/v1/audit/entries?start=%" PRIu64 "&end=%" PRIu64, fr.size,
                 end);
        if (get_json(v, path, &r, "entries"))
            goto out;
        json_t *arr = json_object_get(r.json, "entries");
        size_t i;
        json_t *item;
        bool bad = !json_is_array(arr) || json_array_size(arr) == 0;
        json_array_foreach(arr, i, item)
        {
            uint64_t index = 0;
            struct merkle_node done[65];
            struct merkle_hash lh;
            size_t nd;
            if (bad || !item_leaf(item, &leaf, &index) || index != fr.size) {
                bad = true;
                break;
            }
            merkle_leaf_hash(&lh, (const uint8_t *)leaf.data, leaf.len);
            if (merkle_frontier_append(&fr, &lh, done, &nd)) {
                bad = true;
                break;
            }
            if (index % step == 0 || index + 1 == v->cp.size) {
                const char *why;
                sampled++;
                if (!included(v, index, buf_slice(&leaf), &why)) {
                    sample_bad++;
                    if (sample_bad == 1 && (buf_addf(&sample, "leaf %" PRIu64 ": %s", index, why)))
                        cli_oom();
                }
            }
        }
        oc_resp_release(&r);
        if (bad) {
            report(v, false, "entries", "entry %" PRIu64 " is missing, out of order or malformed",
                   fr.size);
            goto out;
        }
        cli_progress_update(&prog, fr.size);
    }
    cli_progress_end(&prog);
    merkle_frontier_root(&fr, &root);
    bool ok = !memcmp(root.b, v->cp.root.b, MERKLE_HASH_LEN);
    report(v, ok, "entries",
           ok ? "the root recomputed from all %" PRIu64 " entries equals the signed root"
              : "the root recomputed from the %" PRIu64 " entries differs from the signed root: "
                "an entry was altered, removed or reordered",
           fr.size);
    if (sample_bad)
        report(v, false, "nodes",
               "%u of %u inclusion proofs failed (first: %s): stored tree nodes were altered",
               sample_bad, sampled, sample.data);
    else
        report(v, true, "nodes", "%u inclusion proofs across the tree verify", sampled);
    rc = ok && !sample_bad ? 0 : -1;
out:
    buf_release(&leaf);
    buf_release(&sample);
    return rc;
}

/* 4. The user's own entries, each proven included. */
static int
check_mine(struct verify *v, const struct session *s)
{
    struct buf leaf;
    char path[128];
    uint64_t start = 0, count = 0, bad = 0, first_bad = 0;
    const char *first_why = "";
    int rc = -1;
    buf_init(&leaf, 2 * 4096);
    for (;;) {
        struct oc_resp r = {0};
        snprintf(path, sizeof(path), "/v1/me/audit?start=%" PRIu64, start);
        if (get_json(v, path, &r, "mine"))
            goto out;
        const char *pseud = json_string_value(json_object_get(r.json, "pseudonym"));
        json_t *arr = json_object_get(r.json, "entries");
        json_t *next = json_object_get(r.json, "next");
        size_t i;
        json_t *item;
        json_array_foreach(arr, i, item)
        {
            uint64_t index = 0;
            const char *why = "the entry is malformed";
            json_t *entry = json_object_get(item, "entry");
            const char *acct = json_string_value(json_object_get(entry, "account"));
            bool ok = item_leaf(item, &leaf, &index) && index < v->cp.size && pseud && acct &&
                      !strcmp(acct, pseud);
            if (ok)
                ok = included(v, index, buf_slice(&leaf), &why);
            count++;
            if (!ok && !bad++) {
                first_bad = index;
                first_why = why;
            }
        }
        bool more = json_is_integer(next) && json_integer_value(next) > (json_int_t)start;
        if (more)
            start = (uint64_t)json_integer_value(next);
        oc_resp_release(&r);
        if (!more)
            break;
    }
    if (bad)
        report(v, false, "mine",
               "%" PRIu64 " of your %" PRIu64 " entries are not in the signed tree (first: leaf "
               "%" PRIu64 ", %s)",
               bad, count, first_bad, first_why);
    else
        report(v, true, "mine",
               "all %" PRIu64 " entries of account %s are included in the signed tree", count,
               s->account ? s->account : "(this session)");
    rc = bad ? -1 : 0;
out:
    buf_release(&leaf);
    return rc;
}

/* Whether the saved session belongs to the region at url. */
static bool
session_here(const struct session *s, const char *url)
{
    if (!s->url || !s->token)
        return false;
    size_t a = strlen(s->url), b = strlen(url);
    while (a && s->url[a - 1] == '/')
        a--;
    while (b && url[b - 1] == '/')
        b--;
    return a == b && !strncmp(s->url, url, a);
}

static int
verify_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"region", required_argument, NULL, 'r'},
        {"url", required_argument, NULL, 'r'},
        {"state", required_argument, NULL, 's'},
        {"full", no_argument, NULL, 'f'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url_opt = NULL, *state_opt = NULL;
    bool full = false;
    struct verify v = {0};
    struct session s = {0};
    struct buf state_path;
    json_t *state = NULL;
    int ch, rc = CLI_EXIT_FAIL;

    optind = 0;
    while ((ch = cli_getopt(&audit_verify, argc, argv, ":h", opts)) != -1) {
        switch (ch) {
        case 'r':
            url_opt = optarg;
            break;
        case 's':
            state_opt = optarg;
            break;
        case 'f':
            full = true;
            break;
        case 'j':
            v.json = true;
            break;
        case 'h':
            cli_help(&audit_verify, stdout);
            return CLI_EXIT_OK;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return cli_usage_error(&audit_verify, "unexpected argument '%s'", argv[optind]);

    buf_init(&state_path, 8192);
    cli_session_peek(&s);
    v.url = cli_url(url_opt, &s);
    if (state_opt ? buf_adds(&state_path, state_opt) : state_default(&state_path)) {
        cli_error("no place for the audit state: give --state FILE");
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    if (!(state = state_load(state_path.data)))
        goto out;
    if ((rc = cli_connect(v.url, NULL, &v.c)))
        goto out;
    oc_set_follow_region(v.c, false);
    v.checks = json_array();
    if (!v.checks)
        cli_oom();
    if (!v.json)
        printf("verifying the audit log of %s\n", v.url);

    json_t *last = json_object_get(state, v.url);
    if (check_head(&v, last) == 0) {
        (void)check_consistency(&v, last);
        if (full)
            (void)check_full(&v);
        if (session_here(&s, v.url)) {
            if (oc_set_token(v.c, s.token))
                cli_oom();
            (void)check_mine(&v, &s);
        } else if (!v.json) {
            printf("%-4s  %-12s %s\n", "-", "mine",
                   "not logged in to this region: your own entries were not checked");
        }
    }

    if (!v.failures) {
        char root[64] = "", pk[64] = "";
        struct buf b;
        buf_init(&b, 128);
        if (b64_encode(&b, SLICE(v.cp.root.b, MERKLE_HASH_LEN)))
            cli_oom();
        snprintf(root, sizeof(root), "%s", b.data);
        buf_reset(&b);
        if (b64_encode(&b, SLICE(v.pk, sizeof(v.pk))))
            cli_oom();
        snprintf(pk, sizeof(pk), "%s", b.data);
        buf_release(&b);
        json_t *entry = json_pack("{s:s,s:s,s:I,s:s,s:I}", "public_key", pk, "origin", v.cp.origin,
                                  "tree_size", (json_int_t)v.cp.size, "root_hash", root,
                                  "timestamp", (json_int_t)v.cp.timestamp);
        if (!entry || json_object_set_new(state, v.url, entry))
            cli_oom();
        if (state_save(state_path.data, state))
            v.failures++;
    }
    if (v.json) {
        json_t *o = json_pack("{s:s,s:b,s:I,s:O}", "url", v.url, "ok", v.failures == 0, "tree_size",
                              (json_int_t)v.cp.size, "checks", v.checks);
        if (!o)
            cli_oom();
        cli_print_json(o);
        json_decref(o);
    } else if (v.failures) {
        printf("\nFAILED: %u check%s failed; the audit log of %s cannot be trusted\n", v.failures,
               v.failures == 1 ? "" : "s", v.url);
    } else {
        printf("\nverified: %" PRIu64 " entries, head saved in %s\n", v.cp.size, state_path.data);
    }
    rc = v.failures ? CLI_EXIT_FAIL : CLI_EXIT_OK;
out:
    json_decref(state);
    json_decref(v.checks);
    oc_free(v.c);
    session_release(&s);
    buf_release(&state_path);
    return rc;
}

static const struct cli_cmd audit_verify = {
    .name = "audit verify",
    .usage = "audit verify --region URL [--state FILE] [--full] [--json]",
    .summary = "check that a region's audit log is signed, append-only and holds your entries",
    .options =
        "Checks the signed head against the region's public key (pinned in the state\n"
        "file the first time), that the log only grew since the last head seen there,\n"
        "with --full that the root recomputed from every entry is the signed one, and,\n"
        "with a session for this region, that each of your entries is in the tree.\n"
        "The state file is updated only when every check holds. Exit status 0 when all\n"
        "hold, 1 when one fails or the region cannot be reached.\n\n"
        "options:\n"
        "  --region URL     the region (default: $OIKOS_URL, the session's, " CLI_DEFAULT_URL ")\n"
        "  --state FILE     pinned key and last head (default: $OIKOS_CONFIG_DIR/" AUDIT_STATE_FILE
        ")\n"
        "  --full           fetch every entry and recompute the root\n"
        "  --json           print the checks as JSON\n",
    .run = verify_run,
};

static int
audit_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    optind = 0;
    while ((ch = cli_getopt(&cli_cmd_audit, argc, argv, "+:h", opts)) != -1) {
        if (ch == 'h') {
            cli_help(&cli_cmd_audit, stdout);
            return CLI_EXIT_OK;
        }
        return CLI_EXIT_USAGE;
    }
    if (optind >= argc)
        return cli_usage_error(&cli_cmd_audit, "which one? (verify)");
    if (!strcmp(argv[optind], "verify"))
        return audit_verify.run(argc - optind, argv + optind);
    return cli_usage_error(&cli_cmd_audit, "unknown audit command '%s'", argv[optind]);
}

const struct cli_cmd cli_cmd_audit = {
    .name = "audit",
    .usage = "audit verify --region URL [--state FILE] [--full] [--json]",
    .summary = "verify a region's tamper-evident audit log",
    .options = "commands:\n"
               "  verify    check the signed head, its consistency with the last one seen,\n"
               "            every entry (--full) and your own entries\n\n"
               "Run 'oikos audit verify --help' for its options.\n",
    .run = audit_run,
};
