# SPDX-License-Identifier: Apache-2.0
"""Moving accounts between regions (PROMISES.md P6) with three real oikosd
and a cluster file: `oikos migrate` sg -> in after a policy change, every
object byte-identical, old ids logging in through redirects, no trace left
at the source, kill -9 anywhere and a rerun that finishes exactly, and a
peer channel that refuses forged and replayed requests."""

import http.client
import http.server
import json
import os
import signal
import subprocess
import threading
import time

import pytest

from oikostest import OIKOS, Server, canary_hits, data_path, free_ports, metric

NAMES = ["in", "sg", "us"]
BEFORE = {"in": "NP", "sg": "SG IN MY", "us": "*"}
AFTER = {"in": "IN NP", "sg": "SG MY", "us": "*"}
SERVICES = ["contacts", "calllog", "settings", "photos"]


def write_cluster(path, urls, mapping, keys):
    with open(path, "w") as f:
        for name in NAMES:
            f.write('[region "%s"]\nurl = %s\ncountries = %s\n' % (name, urls[name], mapping[name]))
            if keys.get(name):
                f.write("peer_key = %s\n" % keys[name])
            f.write("\n")


def reload(servers):
    for name in NAMES:
        servers[name].proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)


@pytest.fixture
def cloud(tmp_path):
    ports = dict(zip(NAMES, free_ports(3)))
    urls = {n: "http://127.0.0.1:%d" % p for n, p in ports.items()}
    cluster = str(tmp_path / "cluster.ini")
    write_cluster(cluster, urls, BEFORE, {})
    servers = {}
    for name in NAMES:
        s = Server(tmp_path, region=name, port=ports[name], args=["--cluster", cluster]).start()
        init = s.init(1, 1)
        s.shares, s.operator_token = init["shares"], init["operator_token"]
        servers[name] = s
    # the operator pins each region's peer key (oikos operator status prints it)
    keys = {}
    for name in NAMES:
        out = subprocess.run([OIKOS, "operator", "status", "--url", servers[name].url],
                             capture_output=True, text=True, check=True).stdout
        keys[name] = [l.split()[1] for l in out.splitlines() if l.startswith("peer_key")][0]
        assert keys[name] == servers[name].request("GET", "/v1/sys/health").json()["peer_key"]
    write_cluster(cluster, urls, BEFORE, keys)
    reload(servers)
    servers["_cluster"], servers["_urls"], servers["_keys"] = cluster, urls, keys
    yield servers
    for name in NAMES:
        if servers[name].proc:
            servers[name].stop()


def restart(s):
    s.start()
    s.unseal(s.shares)


def login_anywhere(server, servers, account, password="correct horse battery"):
    """Logs in at `server`, following 308s as a client does; (region, token)."""
    by_url = {servers[n].url: servers[n] for n in NAMES}
    for _ in range(3):
        r = server.request("POST", "/v1/sessions", {"account": account, "password": password})
        if r.status != 308:
            assert r.status == 201, r.body
            return server.region, r.json()["token"]
        server = by_url[r.json()["error"]["url"]]
    raise AssertionError("too many redirects")


def make_accounts(sg, n, country, tag):
    """n accounts at sg with mixed services and sizes; {id: {(svc, name): bytes}}."""
    accounts = {}
    for i in range(n):
        acct = sg.signup(country)
        token = sg.login(acct)
        services = SERVICES[: 1 + i % len(SERVICES)]
        sg.consent(token, *services)
        objs = {}
        for j, svc in enumerate(services):
            size = [0, 17, 2048, 9000][(i + j) % 4] + (150000 if i % 50 == 0 and j == 0 else 0)
            data = (("%s-canary-%d-%d " % (tag, i, j)).encode() * (size // 20 + 1))[:size]
            name = "dir %d/obj-%d é.bin" % (j, i)
            assert sg.put(token, svc, name, data).status == 201
            objs[(svc, name)] = data
        accounts[acct] = objs
    return accounts


def migrate(servers, *args, check=True):
    env = dict(os.environ, OIKOS_FROM_TOKEN=servers["sg"].operator_token,
               OIKOS_TO_TOKEN=servers["in"].operator_token)
    p = subprocess.run([OIKOS, "migrate", "--from", servers["sg"].url, "--to", servers["in"].url]
                       + list(args), capture_output=True, text=True, env=env, timeout=600)
    if check:
        assert p.returncode == 0, p.stdout + p.stderr
    return p


def check_moved(servers, accounts):
    """Every object byte-identical at in, reached from the old id at sg."""
    for acct, objs in accounts.items():
        region, token = login_anywhere(servers["sg"], servers, acct)
        assert region == "in"
        for (svc, name), data in objs.items():
            r = servers["in"].get(token, svc, name)
            assert r.status == 200 and r.body == data, (acct, svc, name)
        r = servers["in"].request("GET", "/v1/migrate/accounts?account=" + acct,
                                  token=servers["in"].operator_token)
        assert r.json()["state"] == "live"
        assert r.json()["accounts"][0]["objects"] == len(objs)


def test_200_accounts_move_sg_to_in(cloud):
    sg, inr, us = cloud["sg"], cloud["in"], cloud["us"]
    moving = make_accounts(sg, 200, "IN", "mover")
    staying = make_accounts(sg, 5, "MY", "stayer")
    tok = sg.login(next(iter(moving)))
    assert sg.request("POST", "/v1/me/identifiers", {"type": "phone", "value": "+91 98765 43210"},
                      token=tok).status == 201

    # the policy changes: IN moves to `in`; new IN sign-ups land there at once
    write_cluster(cloud["_cluster"], cloud["_urls"], AFTER, cloud["_keys"])
    reload(cloud)
    r = sg.request("POST", "/v1/accounts", {"country": "IN", "password": "long enough pw"})
    assert r.status == 308 and r.json()["error"]["region"] == "in"
    # existing IN accounts are still served by sg until they move
    assert login_anywhere(us, cloud, next(iter(moving)))[0] == "sg"

    dry = migrate(cloud, "--country", "IN", "--dry-run", "--json")
    listed = json.loads(dry.stdout)
    assert len(listed["accounts"]) == 200
    assert listed["objects"] == sum(len(o) for o in moving.values())

    p = migrate(cloud, "--country", "IN", "--json")
    out = json.loads(p.stdout)
    assert out["migrated"] == 200 and out["left"] == 0
    assert out["objects"] == sum(len(o) for o in moving.values())
    assert out["bytes"] == sum(len(d) for o in moving.values() for d in o.values())

    check_moved(cloud, moving)
    # several accounts' states in one request (how `oikos migrate` checks a
    # batch), in the order asked: live here, moved away there, unknown
    ids = sorted(moving)[:3]
    q = "/v1/migrate/accounts?accounts=" + ",".join(ids + ["in-aaaaaaaaaaaaaaaaaaaa"])
    got = inr.request("GET", q, token=inr.operator_token).json()["accounts"]
    assert [(a["account"], a["state"], a.get("objects")) for a in got] == \
        [(i, "live", len(moving[i])) for i in ids] + [("in-aaaaaaaaaaaaaaaaaaaa", "none", None)]
    got = sg.request("GET", q, token=sg.operator_token).json()["accounts"]
    assert [(a["account"], a["state"]) for a in got] == \
        [(i, "moved") for i in ids] + [("in-aaaaaaaaaaaaaaaaaaaa", "none")]
    for bad in ("?accounts=" + ",".join([ids[0]] * 65), "?accounts=in-0000",
                "?accounts=" + ids[0] + ",,", "?accounts=", "?accounts=a%2Fb",
                "?accounts=%s&account=%s" % (ids[0], ids[0]), ""):
        r = inr.request("GET", "/v1/migrate/accounts" + bad, token=inr.operator_token)
        assert r.status == 400 and r.error_code() == "bad_request", bad
    # the identifier came along, sealed under in's keys
    _, tok = login_anywhere(us, cloud, next(iter(moving)))
    ids = inr.request("GET", "/v1/me/identifiers", token=tok).json()
    assert "+919876543210" in json.dumps(ids)
    # accounts of other countries untouched
    for acct, objs in staying.items():
        assert login_anywhere(inr, cloud, acct)[0] == "sg"
        token = sg.login(acct)
        for (svc, name), data in objs.items():
            assert sg.get(token, svc, name).body == data
    # running it again moves nothing and says so
    again = json.loads(migrate(cloud, "--country", "IN", "--json").stdout)
    assert again["migrated"] == 0 and again["left"] == 0
    # both audit logs hold the move with the same root
    # (entries carry pseudonyms; the root is in the object field)

    # the source keeps only tombstones: after the sweeper no plaintext and no ciphertext;
    # its pass comes once the moves have paused, and /metrics counts what it removed
    moved_objects = sum(len(objs) for objs in moving.values())
    deadline = time.time() + 30
    while metric(sg, "oikos_purged_versions_total") < moved_objects and time.time() < deadline:
        time.sleep(0.05)
    assert metric(sg, "oikos_purged_versions_total") == moved_objects
    sg.stop()
    assert canary_hits([sg.data, sg.log], ["mover-canary", "+919876543210"]) == []
    assert canary_hits([sg.data], ["stayer-canary"]) == []  # encrypted at rest anyway
    restart(sg)
    assert login_anywhere(sg, cloud, next(iter(moving)))[0] == "in"


def test_frozen_account_refuses_writes_with_retry_after(cloud):
    sg = cloud["sg"]
    acct = sg.signup("IN")
    token = sg.login(acct)
    sg.consent(token, "contacts")
    # freeze by hand through the operator route toward a region without peer key
    write_cluster(cloud["_cluster"], cloud["_urls"], AFTER, dict(cloud["_keys"], **{"in": ""}))
    reload(cloud)
    r = sg.request("POST", "/v1/migrate/run", {"account": acct, "to": "in"},
                   token=sg.operator_token)
    assert r.status == 400  # no peer_key pinned for `in`: nothing frozen, nothing sent
    assert sg.put(token, "contacts", "a", b"x").status == 201
    write_cluster(cloud["_cluster"], cloud["_urls"], AFTER, cloud["_keys"])
    reload(cloud)
    cloud["in"].kill9()  # the destination is down: the source freezes, then fails
    r = sg.request("POST", "/v1/migrate/run", {"account": acct, "to": "in"},
                   token=sg.operator_token)
    assert r.status == 503
    r = sg.put(token, "contacts", "b", b"y")
    assert r.status == 503 and r.header("Retry-After") == "5"
    assert sg.get(token, "contacts", "a").body == b"x"  # reads go on
    restart(cloud["in"])
    migrate(cloud, "--account", acct)
    check_moved(cloud, {acct: {("contacts", "a"): b"x"}})


def test_kill9_anywhere_then_rerun_completes_exactly(cloud):
    sg, inr = cloud["sg"], cloud["in"]
    moving = make_accounts(sg, 40, "IN", "kill")
    write_cluster(cloud["_cluster"], cloud["_urls"], AFTER, cloud["_keys"])
    reload(cloud)
    env = dict(os.environ, OIKOS_FROM_TOKEN=sg.operator_token, OIKOS_TO_TOKEN=inr.operator_token)
    cmd = [OIKOS, "migrate", "--from", sg.url, "--to", inr.url, "--country", "IN", "--jobs", "2"]

    def moved_count():
        n = 0
        for acct in moving:
            r = sg.request("GET", "/v1/migrate/accounts?account=" + acct,
                           token=sg.operator_token)
            n += r.json().get("state") == "moved"
        return n

    def run_until(victim, after_moved):
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while moved_count() < after_moved and p.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        if victim == "cli":
            p.kill()
        else:
            cloud[victim].kill9()
        p.wait(timeout=120)
        if victim != "cli":
            restart(cloud[victim])

    run_until("cli", 3)
    run_until("sg", 10)
    run_until("in", 18)
    p = migrate(cloud, "--country", "IN", "--json")
    out = json.loads(p.stdout)
    assert out["left"] == 0
    assert moved_count() == len(moving)
    check_moved(cloud, moving)


class Recorder(http.server.BaseHTTPRequestHandler):
    """A man in the middle between sg and in that keeps every peer request."""
    target = None
    seen = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        hdrs = {k: v for k, v in self.headers.items() if k.lower().startswith("oikos")}
        hdrs["Content-Type"] = self.headers.get("Content-Type", "application/json")
        Recorder.seen.append((self.path, hdrs, body))
        c = http.client.HTTPConnection("127.0.0.1", Recorder.target, timeout=60)
        c.request("POST", self.path, body=body, headers=hdrs)
        r = c.getresponse()
        data = r.read()
        self.send_response(r.status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass


def through_recorder(cloud, tmp_path):
    """Restarts sg so that it reaches `in` through a Recorder (its own cluster
    file says so), with the policy AFTER; the proxy, to be shut down."""
    sg, inr = cloud["sg"], cloud["in"]
    Recorder.target, Recorder.seen = inr.port, []
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    urls = dict(cloud["_urls"], **{"in": "http://127.0.0.1:%d" % proxy.server_address[1]})
    write_cluster(cloud["_cluster"], cloud["_urls"], AFTER, cloud["_keys"])
    sg_cluster = str(tmp_path / "sg-cluster.ini")
    write_cluster(sg_cluster, urls, AFTER, cloud["_keys"])
    sg.stop()
    sg.args = ["--cluster", sg_cluster]
    restart(sg)
    reload(cloud)
    return proxy


def test_accounts_move_together_and_across_bundles(cloud, tmp_path):
    """A batch of accounts moves in one request: one call with every
    manifest, then bundles holding several accounts, an account larger than
    a bundle (4 MiB) cut across two; every object arrives byte-identical."""
    sg = cloud["sg"]
    big = sg.signup("IN")
    token = sg.login(big)
    sg.consent(token, "photos", "contacts")
    objs = {("photos", "p%d.jpg" % i): os.urandom(1800000) for i in range(3)}
    objs[("contacts", "card")] = b"BEGIN:VCARD"
    for (svc, name), data in objs.items():
        assert sg.put(token, svc, name, data).status == 201
    small = make_accounts(sg, 3, "IN", "batch")
    proxy = through_recorder(cloud, tmp_path)
    p = migrate(cloud, "--account", big, *[a for acct in small for a in ("--account", acct)],
                "--batch", "4", "--json")
    proxy.shutdown()
    out = json.loads(p.stdout)
    assert out["migrated"] == 4 and out["left"] == 0
    assert out["objects"] == len(objs) + sum(len(o) for o in small.values())
    paths = [p for p, _, _ in Recorder.seen]
    assert paths == ["/v1/peer/migrate/begin"] + ["/v1/peer/migrate/objects"] * 2
    begin = json.loads(Recorder.seen[0][2])
    assert sorted(m["account"] for m in begin["accounts"]) == sorted([big] + list(small))
    sg.stop()  # back on the cluster's file, whose redirects point at `in` itself
    sg.args = ["--cluster", cloud["_cluster"]]
    restart(sg)
    check_moved(cloud, dict(small, **{big: objs}))


def test_forged_or_replayed_peer_requests_are_refused(cloud, tmp_path):
    sg, inr = cloud["sg"], cloud["in"]
    acct = sg.signup("IN")
    token = sg.login(acct)
    sg.consent(token, "contacts")
    assert sg.put(token, "contacts", "card", b"BEGIN:VCARD").status == 201
    proxy = through_recorder(cloud, tmp_path)
    migrate(cloud, "--account", acct)
    proxy.shutdown()
    paths = [p for p, _, _ in Recorder.seen]
    # begin, then one bundle that ends with the root: the commit rides on it
    assert paths == ["/v1/peer/migrate/begin", "/v1/peer/migrate/objects"]

    def state():
        return inr.request("GET", "/v1/migrate/accounts?account=" + acct,
                           token=inr.operator_token).json()

    before = state()
    assert before["state"] == "live"
    for path, hdrs, body in Recorder.seen:
        # replayed as is
        assert inr.request("POST", path, raw=body, headers=hdrs).status == 401
        # unsigned
        assert inr.request("POST", path, raw=body,
                           headers={"Content-Type": hdrs["Content-Type"]}).status == 401
        # a fresh nonce and time, the old signature
        forged = dict(hdrs, **{"Oikos-Peer-Nonce": "00" * 16,
                               "Oikos-Peer-Time": str(int(time.time() * 1000))})
        assert inr.request("POST", path, raw=body, headers=forged).status == 401
        # another body under the same headers, or claimed by another region
        assert inr.request("POST", path, raw=body + b" ", headers=hdrs).status == 401
        assert inr.request("POST", path, raw=body,
                           headers=dict(hdrs, **{"Oikos-Peer": "us"})).status == 401
    assert state() == before
    # the object is there once, unchanged (sg's redirects point at the recorder now)
    _, tok = login_anywhere(inr, cloud, acct)
    assert inr.get(tok, "contacts", "card").body == b"BEGIN:VCARD"
    feed = inr.request("GET", "/v1/me/data/contacts", token=tok).json()
    assert len([i for i in feed["items"] if not i.get("deleted")]) == 1


def test_sessions_move_with_the_account(cloud):
    """A token issued at sg before the move keeps working after it: sg's
    tombstone sends it to in (308), where its session moved with the
    account. Logged out at in it ends there, with no redirect loop."""
    sg, inr = cloud["sg"], cloud["in"]
    acct = sg.signup("IN")
    token = sg.login(acct)
    other = sg.login(acct)
    assert token.startswith("sg.") and other.startswith("sg.")
    sg.consent(token, "contacts")
    assert sg.put(token, "contacts", "card", b"BEGIN:VCARD session").status == 201
    write_cluster(cloud["_cluster"], cloud["_urls"], AFTER, cloud["_keys"])
    reload(cloud)
    migrate(cloud, "--account", acct)

    # at the source: the tombstone answers 308 to `in` for the old token
    r = sg.get(token, "contacts", "card")
    assert r.status == 308, r.body
    assert r.json()["error"]["url"] == inr.url
    assert r.header("Location").startswith(inr.url + "/")
    # followed: `in` serves the sg token, reads and writes alike
    r = inr.get(token, "contacts", "card")
    assert r.status == 200 and r.body == b"BEGIN:VCARD session"
    assert inr.put(token, "contacts", "card2", b"BEGIN:VCARD two").status == 201
    assert inr.request("GET", "/v1/me/consents", token=token).status == 200

    # logged out at `in`: 401 there, and sg's 308 leads to that 401, not back
    assert inr.request("DELETE", "/v1/sessions/current", token=other).status == 204
    assert inr.get(other, "contacts", "card").status == 401
    assert sg.get(other, "contacts", "card").status == 308
    # tokens nobody issued: 401 at their region, sent to their region elsewhere
    bogus = "sg." + "A" * 43
    assert sg.get(bogus, "contacts", "card").status == 401
    assert inr.get(bogus, "contacts", "card").status == 308
    # the source keeps no session of the account, only where its tokens went
    assert sg.request("POST", "/v1/sessions",
                      {"account": acct, "password": "correct horse battery"}).status == 308
