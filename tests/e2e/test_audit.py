# SPDX-License-Identifier: Apache-2.0
"""End-to-end tests of the audit log (issue 5, docs/internals/AUDIT.md):
user actions appear as entries; the root recomputed from the entries is the
signed root; proofs verify; `oikos audit verify` passes on an honest log and
fails on an edited entry, an edited node or a rewritten history; an entry
that cannot be stored fails its action with 503, and health and /metrics
say why; the log is served while sealed."""

import base64
import hashlib
import json
import os
import sqlite3
import subprocess
import time

import pytest

from oikostest import OIKOS, PG_DIR, PG_ONLY_SQLITE, Server, metric, psql, store_url

# The tests that edit the stored log while oikosd is stopped do it in SQL
# on the SQLite file; on a PostgreSQL run the store's own suite
# (unit.pg.test_store_audit) shows that it keeps the same bytes.
sqlite_only = pytest.mark.skipif(PG_DIR is not None, reason="on PostgreSQL: " + PG_ONLY_SQLITE)

PASSWORD = "correct horse battery"


# ---- RFC 6962 in Python, independent of the C code --------------------------

def leaf_hash(b):
    return hashlib.sha256(b"\x00" + b).digest()


def node_hash(l, r):
    return hashlib.sha256(b"\x01" + l + r).digest()


def mth(hashes):
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return node_hash(mth(hashes[:k]), mth(hashes[k:]))


def verify_inclusion(lh, index, size, root, path):
    """RFC 9162 s2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, lh
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(size1, size2, root1, root2, proof):
    """RFC 9162 s2.1.4.2."""
    if size1 == 0 or size1 > size2:
        return False
    if size1 == size2:
        return not proof and root1 == root2
    if not proof:
        return False
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == root1 and sr == root2


# ---- helpers -----------------------------------------------------------------

def b64(s):
    return base64.b64decode(s)


def wait_head(s, size, timeout=10):
    """The signed head once it covers at least size leaves."""
    deadline = time.time() + timeout
    while True:
        r = s.request("GET", "/v1/audit/head")
        if r.status == 200 and r.json()["tree_size"] >= size:
            return r.json()
        if time.time() > deadline:
            raise AssertionError("no head of size %d: %s" % (size, r.body))
        time.sleep(0.02)


def leaves_count(s):
    m = s.request("GET", "/metrics").body.decode()
    for line in m.splitlines():
        if line.startswith("oikos_audit_leaves "):
            return int(line.split()[1])
    raise AssertionError("no oikos_audit_leaves in /metrics")


def settled_head(s):
    """The head once every committed entry is signed into it."""
    return wait_head(s, leaves_count(s))


def all_entries(s, size):
    out = []
    while len(out) < size:
        r = s.request("GET", "/v1/audit/entries?start=%d&end=%d" % (len(out), size))
        assert r.status == 200, r.body
        items = r.json()["entries"]
        assert items, "no entries from %d" % len(out)
        for it in items:
            assert it["index"] == len(out)
            out.append(it)
    return out


@pytest.fixture
def region(tmp_path):
    """An initialised (1 of 1 share), unsealed region and its share."""
    s = Server(tmp_path).start()
    s.shares = s.init(1, 1)["shares"]
    yield s
    s.stop()


def cli(tmp_path, *args, env=None):
    e = dict(os.environ)
    e["OIKOS_CONFIG_DIR"] = str(tmp_path / "config")
    e["OIKOS_PASSWORD"] = PASSWORD
    e.pop("OIKOS_URL", None)
    if env:
        e.update(env)
    return subprocess.run([OIKOS] + list(args), env=e, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=300)


def active_user(s):
    """An account with a session, contacts on, one object written and read."""
    account = s.signup("IN", PASSWORD)
    token = s.login(account, PASSWORD)
    assert s.request("PUT", "/v1/me/consents/contacts", {"granted": True}, token=token).status == 200
    assert s.put(token, "contacts", "alice.vcf", b"BEGIN:VCARD\nFN:Alice\nEND:VCARD\n").status == 201
    assert s.get(token, "contacts", "alice.vcf").status == 200
    return account, token


def stop_same_port(s):
    """Stops s so that it restarts on the same port: the region keeps its URL,
    which is what the verifier's state is keyed by."""
    s.args = [a for a in s.args] + ["--listen", "127.0.0.1:%d" % s.port]
    assert s.stop() == 0


def restart(s):
    stop_same_port(s)
    s.start()
    s.unseal(s.shares)


def db_path(s):
    return os.path.join(s.data, "oikos.db")


# ---- tests -------------------------------------------------------------------

def test_user_actions_appear_as_entries(region):
    s = region
    account, token = active_user(s)
    assert s.request("GET", "/v1/me/data/contacts", token=token).status == 200
    assert s.request("DELETE", "/v1/me/data/contacts/alice.vcf", token=token).status == 204
    # a service that is off: refused, and the refusal is on record
    assert s.put(token, "photos", "p.jpg", b"x").status == 403
    settled_head(s)

    r = s.request("GET", "/v1/me/audit", token=token)
    assert r.status == 200, r.body
    mine = r.json()
    actions = [(e["entry"]["action"], e["entry"]["result"]) for e in mine["entries"]]
    for want in [("account.create", "ok"), ("session.create", "ok"), ("data.write", "ok"),
                 ("data.read", "ok"), ("data.list", "ok"), ("data.delete", "ok"),
                 ("data.write", "consent_required")]:
        assert want in actions, (want, actions)
    # in the order they happened, each with its leaf index, and only this account's
    idx = [e["index"] for e in mine["entries"]]
    assert idx == sorted(idx) and len(set(idx)) == len(idx)
    for e in mine["entries"]:
        assert e["entry"]["account"] == mine["pseudonym"]
        assert e["entry"]["actor"] == "user" and e["entry"]["region"] == "local"
        assert base64.b64decode(e["leaf"]) == json.dumps(
            e["entry"], separators=(",", ":")).encode()
    # the same object: the same hash, the write, the read and the delete
    objs = {e["entry"]["object"] for e in mine["entries"]
            if e["entry"]["action"] in ("data.write", "data.read", "data.delete")
            and e["entry"]["service"] == "contacts"}
    assert len(objs) == 1 and len(base64.b64decode(objs.pop())) == 32

    # the public log: the operator's init first, and no identifier in clear
    head = settled_head(s)
    entries = all_entries(s, head["tree_size"])
    assert entries[0]["entry"]["action"] == "init"
    assert entries[0]["entry"]["actor"] == "operator"
    blob = b"".join(b64(e["leaf"]) for e in entries)
    for secret in (account.encode(), b"alice", b"Alice", token.encode(), account.split("-")[1].encode()):
        assert secret not in blob
    # another account sees none of these
    other = s.login(s.signup("IN", PASSWORD), PASSWORD)
    theirs = s.request("GET", "/v1/me/audit", token=other).json()
    assert theirs["pseudonym"] != mine["pseudonym"]
    assert not set(e["index"] for e in theirs["entries"]) & set(idx)


def test_root_from_entries_is_the_signed_root_and_proofs_verify(region):
    s = region
    active_user(s)
    head = settled_head(s)
    n = head["tree_size"]
    entries = all_entries(s, n)
    hashes = [leaf_hash(b64(e["leaf"])) for e in entries]
    root = b64(head["root_hash"])
    assert mth(hashes) == root
    # the checkpoint is the head; the signed note carries the same signature
    cp = head["checkpoint"]
    assert cp == "oikos/local\n%d\n%s\ntimestamp %d\n" % (n, head["root_hash"], head["timestamp"])
    note = s.request("GET", "/v1/audit/checkpoint")
    assert note.status == 200 and note.header("Content-Type").startswith("text/plain")
    text = note.body.decode()
    body, sigs = text.split("\n\n", 1)
    assert body + "\n" == cp
    name, blob = sigs.strip().split(" ")[1:]
    assert sigs.startswith("\u2014 oikos/local ")
    raw = b64(blob)
    pk = b64(head["public_key"])
    assert raw[:4] == hashlib.sha256(b"oikos/local\n\x01" + pk).digest()[:4]
    assert raw[4:] == b64(head["signature"]) and len(raw) == 68
    # every inclusion proof, and consistency between every older size and now
    for i in range(n):
        p = s.request("GET", "/v1/audit/proof/inclusion?index=%d&tree_size=%d" % (i, n)).json()
        assert verify_inclusion(hashes[i], i, n, root, [b64(x) for x in p["audit_path"]])
    for m in range(1, n + 1):
        p = s.request("GET", "/v1/audit/proof/consistency?first=%d&second=%d" % (m, n)).json()
        assert verify_consistency(m, n, mth(hashes[:m]), root, [b64(x) for x in p["consistency"]])
    # proofs beyond the signed head are refused
    r = s.request("GET", "/v1/audit/proof/inclusion?index=0&tree_size=%d" % (n + 1))
    assert r.status == 400 and r.error_code() == "bad_request"
    r = s.request("GET", "/v1/audit/entries?start=%d" % n)
    assert r.status == 400


def test_public_key_survives_restart_and_log_served_while_sealed(region):
    s = region
    active_user(s)
    before = settled_head(s)
    restart(s)
    after = settled_head(s)
    assert after["public_key"] == before["public_key"]
    assert after["tree_size"] > before["tree_size"]  # the unseal is on record
    # a restarted region is sealed, and its log still readable from the signed head
    stop_same_port(s)
    s.start()
    r = s.request("GET", "/v1/audit/head")
    assert r.status == 200 and r.json()["tree_size"] == after["tree_size"]
    assert s.request("GET", "/v1/audit/proof/inclusion?index=0&tree_size=%d"
                     % after["tree_size"]).status == 200
    assert s.request("GET", "/v1/me/audit").status == 503
    s.unseal(s.shares)


def test_seal_is_signed_into_the_head(tmp_path):
    s = Server(tmp_path).start()
    try:
        init = s.init(1, 1)
        s.shares = init["shares"]
        settled_head(s)
        r = s.request("POST", "/v1/sys/seal", token=init["operator_token"])
        assert r.status == 200
        head = s.request("GET", "/v1/audit/head").json()
        last = all_entries(s, head["tree_size"])[-1]["entry"]
        assert last["action"] == "seal" and last["actor"] == "operator"
    finally:
        s.stop()


@sqlite_only
def test_cli_verify_passes_then_catches_an_edited_entry(region, tmp_path):
    s = region
    account, _ = active_user(s)
    assert cli(tmp_path, "login", "--account", account, "--url", s.url).returncode == 0
    settled_head(s)
    state = str(tmp_path / "state.json")
    r = cli(tmp_path, "audit", "verify", "--region", s.url, "--state", state, "--full")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "newly pinned" in r.stdout and "equals the signed root" in r.stdout
    assert "included in the signed tree" in r.stdout
    pinned = json.load(open(state))[s.url]
    assert pinned["public_key"] == s.request("GET", "/v1/audit/head").json()["public_key"]

    # an operator edits a stored entry while the server is stopped
    stop_same_port(s)
    db = sqlite3.connect(db_path(s))
    row = db.execute("SELECT idx, leaf FROM audit_leaves WHERE CAST(leaf AS TEXT) LIKE '%data.read%'").fetchone()
    assert row
    db.execute("UPDATE audit_leaves SET leaf = ? WHERE idx = ?",
               (bytes(row[1]).replace(b"data.read", b"data.list"), row[0]))
    db.commit()
    db.close()
    s.start()
    s.unseal(s.shares)
    r = cli(tmp_path, "audit", "verify", "--region", s.url, "--state", state, "--full")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAIL" in r.stdout and "differs from the signed root" in r.stdout
    assert "FAILED" in r.stdout
    # the state keeps the last good head
    assert json.load(open(state))[s.url]["tree_size"] == pinned["tree_size"]


@sqlite_only
def test_cli_verify_catches_an_edited_node(region, tmp_path):
    s = region
    account, _ = active_user(s)
    for i in range(6):  # a few more entries: nodes of several levels
        s.signup("IN", PASSWORD)
    assert cli(tmp_path, "login", "--account", account, "--url", s.url).returncode == 0
    settled_head(s)
    state = str(tmp_path / "state.json")
    assert cli(tmp_path, "audit", "verify", "--region", s.url, "--state", state).returncode == 0
    stop_same_port(s)
    db = sqlite3.connect(db_path(s))
    n = db.execute("UPDATE audit_nodes SET hash = zeroblob(32)").rowcount
    assert n > 0
    db.commit()
    db.close()
    s.start()
    s.unseal(s.shares)
    r = cli(tmp_path, "audit", "verify", "--region", s.url, "--state", state)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAIL" in r.stdout
    # the region noticed too: it refuses to sign on top, and says why
    h = s.request("GET", "/v1/sys/health").json()
    assert h["audit"]["ok"] is False and "altered" in h["audit"]["error"]
    assert metric(s, "oikos_audit_ok") == 0


@sqlite_only
def test_consistency_old_head_new_head_and_rewritten_history(region, tmp_path):
    s = region
    account, token = active_user(s)
    old = settled_head(s)
    state = str(tmp_path / "state.json")
    assert cli(tmp_path, "audit", "verify", "--region", s.url, "--state", state).returncode == 0
    s.get(token, "contacts", "alice.vcf")
    s.put(token, "contacts", "bob.vcf", b"BEGIN:VCARD\nFN:Bob\nEND:VCARD\n")
    new = settled_head(s)
    assert new["tree_size"] > old["tree_size"]
    p = s.request("GET", "/v1/audit/proof/consistency?first=%d&second=%d"
                  % (old["tree_size"], new["tree_size"])).json()["consistency"]
    assert verify_consistency(old["tree_size"], new["tree_size"], b64(old["root_hash"]),
                              b64(new["root_hash"]), [b64(x) for x in p])
    r = cli(tmp_path, "audit", "verify", "--region", s.url, "--state", state)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "history unchanged" in r.stdout
    seen = settled_head(s)

    # an operator holding the key rewrites history: drops the last entries and
    # the tree, and lets the region sign a new tree over other entries
    stop_same_port(s)
    db = sqlite3.connect(db_path(s))
    db.execute("DELETE FROM audit_leaves WHERE idx >= ?", (old["tree_size"] - 2,))
    db.execute("DELETE FROM audit_nodes")
    db.execute("DELETE FROM audit_owned")
    db.execute("DELETE FROM meta WHERE k = 'audit.head'")
    db.commit()
    db.close()
    s.start()
    s.unseal(s.shares)
    for i in range(8):
        s.signup("IN", PASSWORD)
    forged = wait_head(s, seen["tree_size"] + 1)
    assert forged["public_key"] == seen["public_key"]  # signed with the real key
    ok = verify_consistency(seen["tree_size"], forged["tree_size"], b64(seen["root_hash"]),
                            b64(forged["root_hash"]),
                            [b64(x) for x in s.request(
                                "GET", "/v1/audit/proof/consistency?first=%d&second=%d"
                                % (seen["tree_size"], forged["tree_size"])).json()["consistency"]])
    assert not ok
    r = cli(tmp_path, "audit", "verify", "--region", s.url, "--state", state)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "history was rewritten" in r.stdout


def test_entry_that_cannot_be_stored_fails_its_action(region):
    s = region
    account, token = active_user(s)
    settled_head(s)
    # the store starts refusing audit entries (as a full or failing disk would)
    if PG_DIR:
        db = None
        psql(store_url(db_path(s)), "CREATE FUNCTION refuse_audit() RETURNS trigger"
             " LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'refused'; END$$;"
             " CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_leaves"
             " FOR EACH ROW EXECUTE FUNCTION refuse_audit()")
    else:
        db = sqlite3.connect(db_path(s), timeout=30)
        db.execute("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_leaves"
                   " BEGIN SELECT RAISE(FAIL, 'refused'); END")
        db.commit()
    try:
        r = s.put(token, "contacts", "carol.vcf", b"BEGIN:VCARD\nFN:Carol\nEND:VCARD\n")
        assert r.status == 503, r.body
        assert r.error_code() == "unavailable"
        r = s.get(token, "contacts", "alice.vcf")  # no read without its entry
        assert r.status == 503
        h = s.request("GET", "/v1/sys/health").json()
        assert h["audit"]["ok"] is False and "could not be stored" in h["audit"]["error"]
        assert metric(s, "oikos_audit_append_failures_total") >= 2
        assert metric(s, "oikos_audit_ok") == 0
    finally:
        if db is None:
            psql(store_url(db_path(s)), "DROP TRIGGER refuse_audit ON audit_leaves")
        else:
            db.execute("DROP TRIGGER refuse_audit")
            db.commit()
            db.close()
    # nothing of the refused write happened
    assert s.get(token, "contacts", "carol.vcf").status == 404
    feed = s.request("GET", "/v1/me/data/contacts", token=token).json()
    assert [i["name"] for i in feed["items"]] == ["alice.vcf"]
    assert s.request("GET", "/v1/sys/health").json()["audit"]["ok"] is True
    assert metric(s, "oikos_audit_ok") == 1
