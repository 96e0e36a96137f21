# SPDX-License-Identifier: Apache-2.0
"""End to end: consent, crypto-shredding, transparency and erasure on a real
oikosd (PROMISES.md P1, P2, P3, P9). Every service starts off and takes
nothing while off; turning one off destroys its data, and a copy of the
database taken before cannot be read afterwards; the report, the export
and the erasure; the command-line tool sends nothing of a service that is
off. Retention rules are timed with a fake clock in tests/unit/test_retention.c."""

import hashlib
import io
import json
import os
import subprocess
import tarfile
import time

import pytest

from oikostest import (OIKOS, Server, canary_hits, data_path, store_copy, store_query,
                       store_snapshot)

SERVICES = ["contacts", "messages", "calllog", "settings", "photos", "messaging"]
CANARIES = ["Zebulon Quartermain", "+919876543210", "490154203237518", "canary-in-the-mine"]


def db(path, sql, *args):
    """One query on a live store, read-only, as an operator's tool would run it
    (on a PostgreSQL run, on the database that holds the store named path)."""
    return store_query(path, sql, *args)


def snapshot(src, dst):
    """A consistent copy of a live store (SQLite's online backup API, or pg_dump)."""
    store_snapshot(src, dst)


def unreferenced_chunks(server):
    return db(os.path.join(server.data, "oikos.db"),
              "SELECT count(*) FROM chunks WHERE (account, version) NOT IN"
              " (SELECT account, version FROM objects WHERE deleted = 0)")[0][0]


def wait_swept(server, timeout=10):
    """The sweeper, kicked by a revocation or erasure, deletes the ciphertext."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if unreferenced_chunks(server) == 0 and \
                db(os.path.join(server.data, "oikos.db"), "SELECT count(*) FROM purges")[0][0] == 0:
            return
        time.sleep(0.05)
    raise AssertionError("ciphertext still on disk after %ds" % timeout)


def consents(server, token):
    r = server.request("GET", "/v1/me/consents", token=token)
    assert r.status == 200, r.body
    return {c["service"]: c for c in r.json()["consents"]}


def report(server, token):
    r = server.request("GET", "/v1/me/report", token=token)
    assert r.status == 200, r.body
    return r.json()


def metric(server, prefix):
    text = server.request("GET", "/metrics").body.decode()
    return [l for l in text.splitlines() if l.startswith(prefix)]


def test_new_account_has_everything_off_and_a_write_stores_nothing(tmp_path):
    server = Server(tmp_path, args=["--chunk-bytes", "4096"]).start()
    server.init(1, 1)
    token = server.login(server.signup())
    c = consents(server, token)
    assert sorted(c) == sorted(SERVICES)
    assert all(v["granted"] is False and v["since"] is None for v in c.values())
    body = ("BEGIN:VCARD\nFN:%s\nTEL:%s\nEND:VCARD\n" % (CANARIES[0], CANARIES[1])).encode()
    for service in SERVICES:
        # bodies of many chunks: refused before the first
        r = server.put(token, service, "%s.vcf" % CANARIES[0], body * 500)
        assert r.status == 403 and r.error_code() == "consent_required", r.body
        # reads and listings of a service that is off: 403, never data
        assert server.get(token, service, "%s.vcf" % CANARIES[0]).status == 403
        r = server.request("GET", "/v1/me/data/" + service, token=token)
        assert r.status == 403 and r.error_code() == "consent_required"
    r = server.put(token, "photos", CANARIES[3], CANARIES[3].encode() * 2000)
    assert r.status == 403
    store = os.path.join(server.data, "oikos.db")
    assert db(store, "SELECT count(*) FROM objects")[0][0] == 0
    assert db(store, "SELECT count(*) FROM chunks")[0][0] == 0
    assert metric(server, "oikos_objects ") == ["oikos_objects 0"]
    assert canary_hits([server.data, server.log], CANARIES) == []
    assert server.stop() == 0
    assert canary_hits([server.data, server.log], CANARIES) == []


def test_consent_changes_are_records(server, user):
    account, token = user
    r = server.request("PUT", "/v1/me/consents/contacts", {"granted": True}, token=token)
    assert r.status == 200
    rec = r.json()
    assert rec["service"] == "contacts" and rec["granted"] is True
    assert rec["since"].endswith("Z") and rec["policy"] == "1"
    # on again: no change, no record
    r = server.request("PUT", "/v1/me/consents/contacts", {"granted": True}, token=token)
    assert r.json() == rec
    assert consents(server, token)["contacts"] == rec
    assert consents(server, token)["photos"]["granted"] is False
    r = server.request("DELETE", "/v1/me/consents/contacts", token=token)
    assert r.status == 200
    assert r.json() == {"service": "contacts", "granted": False, "purged_objects": 0}
    # PUT false is a revocation too
    server.consent(token, "calllog")
    r = server.request("PUT", "/v1/me/consents/calllog", {"granted": False}, token=token)
    assert r.json() == {"service": "calllog", "granted": False, "purged_objects": 0}
    history = report(server, token)["consent_history"]
    assert [(h["service"], h["granted"]) for h in history] == [
        ("contacts", True), ("contacts", False), ("calllog", True), ("calllog", False)]
    assert all(h["policy"] == "1" and h["at"].endswith("Z") for h in history)
    # bad requests
    r = server.request("PUT", "/v1/me/consents/diary", {"granted": True}, token=token)
    assert r.status == 404 and r.error_code() == "not_found"
    r = server.request("DELETE", "/v1/me/consents/diary", token=token)
    assert r.status == 404
    r = server.request("PUT", "/v1/me/consents/photos", {"granted": "yes"}, token=token)
    assert r.status == 400 and r.error_code() == "bad_request"
    assert server.request("GET", "/v1/me/consents").status == 401
    # one account's consent is its own
    other = server.login(server.signup())
    assert consents(server, other)["contacts"]["granted"] is False


def test_revoke_destroys_the_service_and_nothing_else(server, user):
    account, token = user
    server.consent(token, "contacts", "photos", "messages")
    for i, c in enumerate(CANARIES):
        assert server.put(token, "contacts", "%s.vcf" % c, c.encode() * 3000).status == 201
    assert server.put(token, "photos", "p.jpg", b"photo" * 100000).status == 201
    assert server.put(token, "messages", "sms", b"hello").status == 201
    before = consents(server, token)

    r = server.request("DELETE", "/v1/me/consents/contacts", token=token)
    assert r.status == 200
    assert r.json() == {"service": "contacts", "granted": False, "purged_objects": 4}
    # gone at once: no read, no listing, nothing in the report
    assert server.get(token, "contacts", "%s.vcf" % CANARIES[0]).status == 403
    assert server.request("GET", "/v1/me/data/contacts", token=token).status == 403
    rep = {d["service"]: d for d in report(server, token)["data"]}
    assert rep["contacts"]["objects"] == 0 and rep["contacts"]["bytes"] == 0
    assert rep["contacts"]["delete_after"] is None
    assert rep["photos"]["objects"] == 1 and rep["photos"]["bytes"] == 500000
    assert rep["messages"]["objects"] == 1
    # the other consents are untouched, to the second
    after = consents(server, token)
    for s in SERVICES:
        if s != "contacts":
            assert after[s] == before[s]
    assert server.get(token, "photos", "p.jpg").body == b"photo" * 100000
    # the key is gone from the key store, the rows from the store, the
    # ciphertext from the disk soon after (the sweeper is kicked)
    keys = os.path.join(server.data, "keys.db")
    assert db(keys, "SELECT service FROM svckeys WHERE account = ? ORDER BY service",
              account) == [("messages",), ("photos",)]
    wait_swept(server)
    assert metric(server, "oikos_objects ") == ["oikos_objects 2"]
    # the sweeper's purge is on the audit record, as the region's own act
    actions = []
    for _ in range(50):
        size = server.request("GET", "/v1/audit/head").json()["tree_size"]
        entries = server.request("GET", "/v1/audit/entries?start=0&end=%d" % size).json()
        actions = [(e["entry"]["action"], e["entry"]["actor"]) for e in entries["entries"]]
        if ("retention.purge", "system") in actions:
            break
        time.sleep(0.1)
    assert ("retention.purge", "system") in actions
    assert ("consent.revoke", "user") in actions
    # on again: a new, empty service
    server.consent(token, "contacts")
    feed = server.request("GET", "/v1/me/data/contacts", token=token).json()
    assert feed["items"] == []
    assert server.get(token, "contacts", "%s.vcf" % CANARIES[0]).status == 404
    assert server.stop() == 0
    assert canary_hits([server.data, server.log], CANARIES) == []
    server.start()


def test_a_copy_taken_before_the_revoke_cannot_be_read_after_it(tmp_path):
    """The backup of the data store taken before a revocation, served again
    afterwards with the same shares and the region's live key store, gives
    nothing of the revoked service, even turned back on. The other service
    reads fine from the same copy (so the copy and the shares are good), and
    the data store never holds a key. tests/unit/test_retention.c makes the
    same point without the server's help: every key the live region can
    derive is tried on every chunk of the copy, and none opens."""
    (tmp_path / "live").mkdir()
    live = Server(tmp_path / "live").start()
    share = live.init(1, 1)["shares"]
    account = live.signup()
    token = live.login(account)
    live.consent(token, "contacts", "photos")
    vcard = ("BEGIN:VCARD\nFN:%s\nEND:VCARD\n" % CANARIES[0]).encode() * 500
    assert live.put(token, "contacts", "zebulon.vcf", vcard).status == 201
    assert live.put(token, "photos", "p.jpg", b"photo bytes").status == 201

    backup = tmp_path / "backup"
    backup.mkdir()
    snapshot(os.path.join(live.data, "oikos.db"), str(backup / "oikos.db"))
    keys_then = tmp_path / "keys-snapshot.db"  # what must never be kept: see below
    snapshot(os.path.join(live.data, "keys.db"), str(keys_then))
    assert db(str(backup / "oikos.db"), "SELECT count(*) FROM svckeys")[0][0] == 0
    assert db(str(backup / "oikos.db"), "SELECT count(*) FROM objects WHERE account = ?"
              " AND service = 'contacts'", account)[0][0] == 1

    r = live.request("DELETE", "/v1/me/consents/contacts", token=token)
    assert r.json()["purged_objects"] == 1
    wait_swept(live)
    assert live.stop() == 0

    def restore(name, keys):
        s = Server(tmp_path / name)
        os.makedirs(s.data)
        store_copy(backup / "oikos.db", os.path.join(s.data, "oikos.db"))
        store_copy(keys, os.path.join(s.data, "keys.db"))
        s.start()
        s.unseal(share)
        return s

    # the copy, with everything the live region holds after the revocation
    old = restore("restored", os.path.join(live.data, "keys.db"))
    try:
        tok = old.login(account)  # the copy still knows the account and its password
        assert old.get(tok, "contacts", "zebulon.vcf").status == 403
        # turned on again there, the service starts empty under a new key: the rows
        # of the copy, which no live key opens, are dropped, never served
        old.consent(tok, "contacts")
        assert old.get(tok, "contacts", "zebulon.vcf").status == 404
        r = old.request("GET", "/v1/me/data/contacts", token=tok)
        assert r.status == 200 and r.json()["items"] == []
        r = old.request("GET", "/v1/me/export", token=tok)
        assert r.status == 200 and CANARIES[0].encode() not in r.body
        # control: the service that stayed on reads fine from the same copy
        assert old.get(tok, "photos", "p.jpg").body == b"photo bytes"
    finally:
        assert old.stop() == 0
    assert canary_hits([old.data, old.log], CANARIES) == []

    # The boundary: a snapshot of the key store from before the revocation
    # would open it. The key store is therefore never backed up
    # (docs/internals/CONSENT.md); this shows the test above can fail.
    leaked = restore("with-old-keys", str(keys_then))
    try:
        tok = leaked.login(account)
        assert leaked.get(tok, "contacts", "zebulon.vcf").body == vcard
    finally:
        assert leaked.stop() == 0


def test_export_lists_every_object_with_its_sha256(tmp_path):
    s = Server(tmp_path, args=["--chunk-bytes", "4096"]).start()
    try:
        s.init(1, 1)
        token = s.login(s.signup())
        s.consent(token, "contacts", "photos", "settings")
        objects = {
            ("contacts", "alice.vcf"): b"BEGIN:VCARD\nFN:Alice\nEND:VCARD\n",
            ("contacts", "dir/ünïcödé ✓.vcf"): "grüße".encode(),
            ("contacts", "../escape"): b"not outside",
            ("photos", "big.jpg"): os.urandom(3 * 4096 + 17),
            ("photos", "empty"): b"",
            ("photos", "long/" + "n" * 300): b"long name",
            ("settings", "wifi"): b"ssid=home",
        }
        for (svc, name), data in objects.items():
            assert s.put(token, svc, name, data).status == 201
        # a service turned off is not exported; nor is a deleted object
        assert s.put(token, "settings", "gone", b"x").status == 201
        assert s.request("DELETE", data_path("settings", "gone"), token=token).status == 204
        s.consent(token, "calllog")
        assert s.put(token, "calllog", "log", b"calls").status == 201
        s.consent(token, "calllog", granted=False)

        r = s.request("GET", "/v1/me/export", token=token)
        assert r.status == 200
        assert r.header("Content-Type") == "application/x-tar"
        assert r.header("Transfer-Encoding") == "chunked"  # streamed, no size known ahead
        tar = tarfile.open(fileobj=io.BytesIO(r.body))
        members = {m.name: m for m in tar.getmembers()}
        manifest = json.load(tar.extractfile("manifest.json"))
        assert manifest["format"] == "oikos-export-1"
        listed = {(o["service"], o["name"]): o for o in manifest["objects"]}
        assert set(listed) == set(objects)
        for key, data in objects.items():
            o = listed[key]
            m = members[o["path"]]
            got = tar.extractfile(m).read()
            assert got == data and m.size == o["size"] == len(data)
            assert o["sha256"] == hashlib.sha256(data).hexdigest()
            assert (m.mode & 0o777) == 0o600
        assert listed[("contacts", "alice.vcf")]["path"] == "contacts/alice.vcf"
        assert listed[("contacts", "dir/ünïcödé ✓.vcf")]["path"] == "contacts/dir/ünïcödé ✓.vcf"
        for unsafe in (("contacts", "../escape"), ("photos", "long/" + "n" * 300)):
            assert listed[unsafe]["path"].startswith("_unsafe/" + unsafe[0] + "/")
        assert all(not n.startswith("/") and ".." not in n.split("/") for n in members)
        cons = {c["service"]: c["granted"] for c in manifest["consents"]}
        assert cons["calllog"] is False and cons["photos"] is True
        assert metric(s, 'oikos_http_requests_total{route="export",status="200"}') != []
    finally:
        assert s.stop() == 0


def test_erase_leaves_nothing_of_the_account(server):
    account = server.signup()
    token = server.login(account)
    token2 = server.login(account)
    server.consent(token, "contacts", "messages")
    for c in CANARIES:
        assert server.put(token, "contacts", "%s.vcf" % c, c.encode() * 2000).status == 201
        assert server.put(token, "messages", "sms %s" % c, c.encode()).status == 201
    other = server.login(server.signup())
    server.consent(other, "photos")
    assert server.put(other, "photos", "p", b"kept").status == 201

    pseudonym = server.request("GET", "/v1/me/audit", token=token).json()["pseudonym"]
    assert server.request("DELETE", "/v1/me", token=token).status == 204
    # the erase itself stays on record, under the pseudonym only
    erased = []
    for _ in range(50):
        size = server.request("GET", "/v1/audit/head").json()["tree_size"]
        start = max(0, size - 1000)
        entries = server.request("GET", "/v1/audit/entries?start=%d&end=%d" % (start, size))
        erased = [e["entry"] for e in entries.json()["entries"]
                  if e["entry"]["action"] == "account.erase"]
        if erased:
            break
        time.sleep(0.1)
    assert [(e["actor"], e["account"]) for e in erased] == [("user", pseudonym)]
    assert account not in entries.body.decode()
    r = server.request("POST", "/v1/sessions",
                       {"account": account, "password": "correct horse battery"})
    assert r.status == 401
    for t in (token, token2):
        for method, path in (("GET", "/v1/me/consents"), ("GET", "/v1/me/report"),
                             ("GET", "/v1/me/data/contacts"), ("DELETE", "/v1/me")):
            assert server.request(method, path, token=t).status == 401
    wait_swept(server)
    assert server.get(other, "photos", "p").body == b"kept"
    for f in ("oikos.db", "keys.db"):
        path = os.path.join(server.data, f)
        for table in ("accounts", "sessions", "svckeys", "consents", "consent_log", "activity",
                      "objects", "chunks", "purges", "erasures"):
            assert db(path, "SELECT count(*) FROM %s WHERE account = ?" % table, account) == \
                [(0,)], (f, table)
    assert server.stop() == 0
    assert canary_hits([server.data, server.log], CANARIES + [token]) == []
    # The account's pseudonym too; but PostgreSQL keeps deleted rows in its WAL
    # and free space until they are overwritten (docs/scaling.md, "Erasure").
    assert canary_hits([server.data, server.log], [account], pg="none") == []
    server.start()


@pytest.fixture
def env(tmp_path):
    e = dict(os.environ)
    e["OIKOS_CONFIG_DIR"] = str(tmp_path / "cfg")
    e["OIKOS_PASSWORD"] = "correct horse battery"
    e.pop("OIKOS_URL", None)
    return e


def oikos(env, *args, stdin=None, cwd=None):
    return subprocess.run([os.path.abspath(OIKOS)] + list(args), env=env, input=stdin, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_cli_sends_nothing_of_a_service_that_is_off(server, env, tmp_path):
    out = oikos(env, "signup", "--country", "IN", "--url", server.url)
    assert out.returncode == 0, out.stderr
    account = [w for w in out.stdout.split() if w.startswith("local-")][0]
    token = json.load(open(tmp_path / "cfg" / "session.json"))["token"]
    card = tmp_path / "card.vcf"
    card.write_text("BEGIN:VCARD\nFN:%s\nTEL:%s\nEND:VCARD\n" % (CANARIES[0], CANARIES[1]))

    out = oikos(env, "backup", "contacts", str(card))
    assert out.returncode == 1
    assert "'contacts' is off for this account: nothing was sent" in out.stderr
    assert "oikos consent on contacts" in out.stderr
    # on the server: no upload reached it, nothing stored, nothing on disk
    assert metric(server, 'oikos_http_requests_total{route="data_put"') == []
    assert metric(server, 'oikos_http_requests_total{route="consents",status="200"} 1')
    assert canary_hits([server.data, server.log], CANARIES) == []

    out = oikos(env, "consent", "list")
    assert out.returncode == 0
    assert [l.split()[:2] for l in out.stdout.splitlines()[1:]] == [[s, "off"] for s in SERVICES]
    out = oikos(env, "consent", "on", "contacts")
    assert out.returncode == 0 and "'contacts' is on" in out.stdout
    assert server.get(token, "contacts", str(card).lstrip("/")).status == 404
    out = oikos(env, "backup", "contacts", str(card))
    assert out.returncode == 0, out.stderr
    assert metric(server, 'oikos_http_requests_total{route="data_put",status="201"} 1')
    listed = json.loads(oikos(env, "consent", "list", "--json").stdout)
    assert [c["service"] for c in listed if c["granted"]] == ["contacts"]

    # the report, readable and as JSON
    out = oikos(env, "report")
    assert out.returncode == 0
    assert account in out.stdout and "consent history" in out.stdout
    line = [l for l in out.stdout.splitlines() if l.startswith("contacts ")][0]
    assert line.split()[:3] == ["contacts", "on", "1"]
    rep = json.loads(oikos(env, "report", "--json").stdout)
    used = [l for l in out.stdout.splitlines() if l.startswith("last used")][0]
    assert used.split()[2] == rep["last_active"][:10]  # the day, not its end
    assert {d["service"]: d["objects"] for d in rep["data"]}["contacts"] == 1

    # the export, into a new file only
    dest = tmp_path / "export.tar"
    out = oikos(env, "export", str(dest))
    assert out.returncode == 0, out.stderr
    assert (os.stat(dest).st_mode & 0o077) == 0
    with tarfile.open(dest) as t:
        names = t.getnames()
        assert "manifest.json" in names and len(names) == 2
    out = oikos(env, "export", str(dest))
    assert out.returncode == 1 and "exists" in out.stderr.lower()

    # off: the data goes, and backup refuses again
    out = oikos(env, "consent", "off", "contacts")
    assert out.returncode == 0 and "1 object" in out.stdout
    out = oikos(env, "backup", "contacts", str(card))
    assert out.returncode == 1
    assert len(metric(server, 'oikos_http_requests_total{route="data_put"')) == 1

    # erase asks for the account id; a wrong answer erases nothing
    out = oikos(env, "erase", stdin="not-the-id\n")
    assert out.returncode == 1 and "nothing was erased" in out.stderr
    assert server.request("GET", "/v1/me/consents", token=token).status == 200
    out = oikos(env, "erase", stdin=account + "\n")
    assert out.returncode == 0, out.stderr
    assert server.request("GET", "/v1/me/consents", token=token).status == 401
    assert not (tmp_path / "cfg" / "session.json").exists()
    out = oikos(env, "login", "--account", account, "--url", server.url)
    assert out.returncode == 1
    # usage errors are exit 2
    assert oikos(env, "consent", "on", "diary").returncode == 2
    assert oikos(env, "consent").returncode == 2
    assert oikos(env, "export").returncode == 2
