# SPDX-License-Identifier: Apache-2.0
"""End to end with three real oikosd processes (in, sg, us) and a cluster
file: residency, redirects, per-region keys, identifiers, `oikos dev up`."""

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request

import pytest

from oikostest import PG_DIR, OIKOS, Server, canary_hits, data_path, free_ports, store_copy

REGIONS = [("in", "IN"), ("sg", "SG MY ID PH TW HK"), ("us", "*")]
PHONE = "+91 98765 43210"
PHONE_E164 = "+919876543210"
IMEI = "490154203237518"
CONTACT = "Philomena Quackenbush"


def write_cluster(path, ports, mapping=None):
    mapping = mapping or dict(REGIONS)
    with open(path, "w") as f:
        for (name, _), port in zip(REGIONS, ports):
            f.write('[region "%s"]\nurl = http://127.0.0.1:%d\ncountries = %s\n\n'
                    % (name, port, mapping[name]))


@pytest.fixture
def cloud(tmp_path):
    ports = free_ports(3)
    cluster = str(tmp_path / "cluster.ini")
    write_cluster(cluster, ports)
    servers = {}
    for (name, _), port in zip(REGIONS, ports):
        s = Server(tmp_path, region=name, port=port, args=["--cluster", cluster]).start()
        init = s.init(3, 2)
        s.shares, s.operator_token = init["shares"], init["operator_token"]
        servers[name] = s
    servers["_cluster"] = cluster
    servers["_ports"] = ports
    yield servers
    for name, _ in REGIONS:
        servers[name].stop()


def test_signup_at_another_region_is_redirected_home(cloud):
    us, inr = cloud["us"], cloud["in"]
    r = us.request("POST", "/v1/accounts", {"country": "IN", "password": "long enough pw"})
    assert r.status == 308
    err = r.json()["error"]
    assert err["code"] == "wrong_region" and err["region"] == "in"
    assert err["url"] == inr.url
    assert r.header("Location") == inr.url + "/v1/accounts"
    # following it lands the account in `in`
    account = inr.signup("IN", "long enough pw")
    assert account.startswith("in-")
    # lowercase country, too; and every other country stays in us
    r = us.request("POST", "/v1/accounts", {"country": "sg", "password": "long enough pw"})
    assert r.status == 308 and r.json()["error"]["region"] == "sg"
    assert us.signup("FR").startswith("us-")
    assert cloud["sg"].signup("MY").startswith("sg-")


def test_foreign_regions_redirect_and_keep_no_trace(cloud):
    inr, sg, us = cloud["in"], cloud["sg"], cloud["us"]
    account = inr.signup("IN")
    token = inr.login(account)
    assert token.startswith("in.")
    inr.consent(token, "contacts")
    vcard = ("BEGIN:VCARD\nFN:%s\nTEL:%s\nEND:VCARD\n" % (CONTACT, PHONE)).encode()
    assert inr.put(token, "contacts", CONTACT + ".vcf", vcard).status == 201
    assert inr.request("POST", "/v1/me/identifiers", {"type": "phone", "value": PHONE},
                       token=token).status == 201
    assert inr.request("POST", "/v1/me/identifiers", {"type": "imei", "value": IMEI},
                       token=token).status == 201

    for other in (sg, us):
        # login, data, listing, identifiers: all sent home, nothing kept
        r = other.request("POST", "/v1/sessions",
                          {"account": account, "password": "correct horse battery"})
        assert r.status == 308 and r.header("Location") == inr.url + "/v1/sessions"
        r = other.put(token, "contacts", CONTACT + ".vcf", vcard)
        assert r.status == 308
        assert r.header("Location") == inr.url + data_path("contacts", CONTACT + ".vcf")
        r = other.get(token, "contacts", CONTACT + ".vcf")
        assert r.status == 308 and r.json()["error"]["url"] == inr.url
        r = other.request("GET", "/v1/me/data/contacts?since=0&limit=5", token=token)
        assert r.status == 308
        assert r.header("Location") == inr.url + "/v1/me/data/contacts?since=0&limit=5"
        r = other.request("POST", "/v1/me/identifiers", {"type": "phone", "value": PHONE},
                          token=token)
        assert r.status == 308
        for path in ("/v1/me/report", "/v1/me/consents", "/v1/me/export"):
            r = other.request("GET", path, token=token)
            assert r.status == 308 and r.header("Location") == inr.url + path
        # a token of a region nobody knows is simply invalid
        r = other.request("GET", "/v1/me/data/contacts", token="xx.nothing")
        assert r.status == 401

    canaries = [account, CONTACT, PHONE_E164, PHONE, IMEI, token]
    for other in (sg, us):
        other.stop()
        # on PostgreSQL, their own databases: the cluster's WAL is in's too
        assert canary_hits([other.data, other.log], canaries, pg="databases") == []
        other.start()
    # the home region holds them only sealed or hashed
    inr.stop()
    assert canary_hits([inr.data, inr.log], [CONTACT, PHONE_E164, PHONE, IMEI, token]) == []
    inr.start()
    inr.unseal(inr.shares[:2])
    r = inr.request("GET", "/v1/me/identifiers", token=token)
    assert r.status == 200
    assert sorted((i["type"], i["value"]) for i in r.json()["identifiers"]) == [
        ("imei", IMEI), ("phone", PHONE_E164)]


def test_identifiers_are_checked(cloud):
    inr = cloud["in"]
    token = inr.login(inr.signup("IN"))
    bad = [("phone", "12ab34"), ("phone", "+999 1234567"), ("phone", "+91 1"),
           ("phone", ""), ("imei", "490154203237519"), ("imei", "49015420323751"),
           ("fax", "123")]
    for t, v in bad:
        r = inr.request("POST", "/v1/me/identifiers", {"type": t, "value": v}, token=token)
        assert r.status == 400 and r.error_code() == "bad_request", (t, v)
    # a national number takes the account's country code
    assert inr.request("POST", "/v1/me/identifiers", {"type": "phone", "value": "098765 43210"},
                       token=token).status == 201
    ids = inr.request("GET", "/v1/me/identifiers", token=token).json()["identifiers"]
    assert ids == [{"type": "phone", "value": "+919876543210"}]
    # nobody else sees them
    other = inr.login(inr.signup("IN"))
    assert inr.request("GET", "/v1/me/identifiers", token=other).json()["identifiers"] == []


def test_keys_are_per_region(cloud, tmp_path):
    inr, sg = cloud["in"], cloud["sg"]
    token = inr.login(inr.signup("IN"))
    inr.consent(token, "settings")
    assert inr.put(token, "settings", "s", b"secret settings").status == 201
    # sg's shares cannot unseal in
    inr.stop()
    inr.start()
    for share in sg.shares:
        r = inr.request("POST", "/v1/sys/unseal", {"share": share})
        assert r.status == 400
    assert inr.request("GET", "/v1/sys/health").json()["sealed"] is True
    inr.stop()
    # in's store copied under sg is unreadable there: sg's shares do not open it
    sg.stop()
    for f in os.listdir(sg.data):
        os.remove(os.path.join(sg.data, f))
    for f in os.listdir(inr.data):
        if f.startswith("oikos.db") and not f.endswith("-lock"):
            shutil.copy(os.path.join(inr.data, f), os.path.join(sg.data, f))
    if PG_DIR:  # the same, for a store that is a PostgreSQL database
        store_copy(os.path.join(inr.data, "oikos.db"), os.path.join(sg.data, "oikos.db"))
    sg.start()
    for share in sg.shares:
        assert sg.request("POST", "/v1/sys/unseal", {"share": share}).status == 400
    assert sg.request("GET", "/v1/sys/health").json()["sealed"] is True
    r = sg.get(token, "settings", "s")
    assert r.status in (308, 503)
    # in itself still opens with its own shares
    inr.start()
    inr.unseal(inr.shares[1:])
    assert inr.get(token, "settings", "s").body == b"secret settings"


def test_policy_change_takes_effect_on_sighup(cloud):
    us, inr, sg = cloud["us"], cloud["in"], cloud["sg"]
    r = us.request("POST", "/v1/accounts", {"country": "MY", "password": "long enough pw"})
    assert r.json()["error"]["region"] == "sg"
    # MY moves to in
    write_cluster(cloud["_cluster"], cloud["_ports"],
                  {"in": "IN MY", "sg": "SG ID PH TW HK", "us": "*"})
    for s in (us, inr, sg):
        s.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    r = us.request("POST", "/v1/accounts", {"country": "MY", "password": "long enough pw"})
    assert r.json()["error"]["region"] == "in"
    assert inr.signup("MY").startswith("in-")
    # a broken file is refused and the last good one kept
    with open(cloud["_cluster"], "w") as f:
        f.write("[region \"in\"]\nurl = nonsense\n")
    us.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    r = us.request("POST", "/v1/accounts", {"country": "MY", "password": "long enough pw"})
    assert r.json()["error"]["region"] == "in"
    assert "cluster_reload_failed" in us.tail()


def test_cli_follows_redirects_and_remembers_home(cloud, tmp_path):
    us, inr = cloud["us"], cloud["in"]
    env = dict(os.environ, OIKOS_CONFIG_DIR=str(tmp_path / "cfg"),
               OIKOS_PASSWORD="correct horse battery")
    out = subprocess.run([OIKOS, "signup", "--country", "IN", "--url", us.url],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    account = [w for w in out.stdout.split() if w.startswith("in-")][0]
    with open(tmp_path / "cfg" / "session.json") as f:
        assert json.load(f)["url"] == inr.url
    out = subprocess.run([OIKOS, "login", "--account", account, "--url", cloud["sg"].url],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    with open(tmp_path / "cfg" / "session.json") as f:
        assert json.load(f)["url"] == inr.url


def test_dev_up_starts_three_unsealed_regions_and_stops_on_sigint(tmp_path):
    ports = free_ports(3)
    base = ports[0]
    # dev up takes three consecutive ports
    import socket
    for attempt in range(20):
        try:
            socks = []
            for p in range(base, base + 3):
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                socks.append(s)
            for s in socks:
                s.close()
            break
        except OSError:
            for s in socks:
                s.close()
            base = free_ports(1)[0]
    d = tmp_path / "dev"
    proc = subprocess.Popen([OIKOS, "dev", "up", "--dir", str(d), "--port", str(base)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.time() + 60
        while time.time() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C stops all three" in line:
                break
        text = "".join(lines)
        assert "initialised and unsealed" in text, text
        assert "FOR TRYING OUT ONLY" in text
        for i, name in enumerate(("in", "sg", "us")):
            with urllib.request.urlopen("http://127.0.0.1:%d/v1/sys/health" % (base + i)) as r:
                h = json.load(r)
            assert h["region"] == name and h["sealed"] is False
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        for i in range(3):
            with pytest.raises(OSError):
                urllib.request.urlopen("http://127.0.0.1:%d/v1/sys/health" % (base + i),
                                       timeout=2)
        assert os.path.exists(d / "dev-shares" / "in.json")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
