#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""carddav_bench.py BUILD_DIR: CardDAV throughput of oikosd against Radicale
and Xandikos (Debian packages), in one run, on 127.0.0.1.

The same sequential workload runs against each server, over one kept-alive
connection, as a phone or vdirsyncer would: PUT N vCards (If-None-Match:
*), PROPFIND Depth 1 of the book, one addressbook-multiget of every card,
sync-collection initial and after 10 changes, GET each card, DELETE each
card. Before each phase the benchmark waits until the server has been idle
for 200 ms (background work of the previous phase is not charged to the
next one), the same for every server. Each phase is reported in seconds and ops/s (an op is one card: a
request for PUT, GET and DELETE, a listed card for PROPFIND, multiget and
the initial sync; the incremental sync is reported as its latency), with
oikos's ratio to the faster baseline.

Then, on oikos only, a book of --big cards (filled by 16 connections):
the latency of an incremental sync-collection after 10 changes (target
< 50 ms) and the time of a multiget of every card in one request (target
< 2 s), plus the same multiget in requests of 1,000 and a PROPFIND Depth 1.

Standard library only (run it with /usr/bin/python3). Results are printed
and written to BUILD_DIR/carddav-results.json. It starts and stops only
its own processes, in a temporary directory it removes.
"""

import argparse
import base64
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

PASSWORD = "bench password 1"
NS = ('xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:carddav" '
      'xmlns:cs="http://calendarserver.org/ns/"')
PROCS = []


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited with %d" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not listen on %d" % port)


def start(cmd, **kw):
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, **kw)
    PROCS.append(p)
    return p


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


class Client:
    """One kept-alive HTTP/1.1 connection."""

    def __init__(self, port, auth=None):
        self.port = port
        self.auth = auth
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        h = dict(headers or {})
        if self.auth:
            h["Authorization"] = self.auth
        if isinstance(body, str):
            body = body.encode()
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
            try:
                self.conn.request(method, path, body=body, headers=h)
                r = self.conn.getresponse()
                data = r.read()
                if r.will_close:
                    self.conn.close()
                    self.conn = None
                return r.status, r, data
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def must(self, want, method, path, body=None, headers=None):
        status, r, data = self.request(method, path, body, headers)
        if status not in want:
            raise RuntimeError("%s %s: %d %s" % (method, path, status, data[:300]))
        return r, data


def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def vcard(i, tag="", version=0):
    return ("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:bench-%06d%s\r\nFN:Person %d%s\r\n"
            "N:Person%d;Given;;;\r\nEMAIL;TYPE=INTERNET:person%d@example.org\r\n"
            "TEL;TYPE=CELL:+91 98765 %05d\r\nADR;TYPE=HOME:;;%d Main Street;Bengaluru;KA;"
            "560001;India\r\nORG:Example Corp\r\nNOTE:bench card %d revision %d\r\n"
            "END:VCARD\r\n" % (i, tag, i, tag, i, i, i % 100000, i, i, version)).encode()


def count_responses(xml):
    return len(re.findall(rb"<(?:[A-Za-z0-9]+:)?response[ >]", xml))


def sync_token(xml):
    m = re.search(rb"<(?:[A-Za-z0-9]+:)?sync-token>([^<]*)</", xml)
    return m.group(1).decode() if m else None


def etags(xml):
    """href -> etag from a multistatus."""
    out = {}
    for resp in re.findall(rb"<(?:[A-Za-z0-9]+:)?response[ >](.*?)</(?:[A-Za-z0-9]+:)?response>",
                           xml, re.S):
        h = re.search(rb"<(?:[A-Za-z0-9]+:)?href>([^<]*)</", resp)
        e = re.search(rb"<(?:[A-Za-z0-9]+:)?getetag>([^<]*)</", resp)
        if h and e:
            out[h.group(1).decode()] = e.group(1).decode().replace("&quot;", '"')
    return out


# Servers ------------------------------------------------------------------------


class Target:
    def __init__(self, name, port, auth, book, proc):
        self.name, self.port, self.auth, self.book, self.proc = name, port, auth, book, proc

    def client(self):
        return Client(self.port, self.auth)


def start_oikos(build, tmp):
    data = os.path.join(tmp, "oikos")
    logf = os.path.join(tmp, "oikosd.log")
    port = free_port()
    p = start([os.path.join(build, "oikosd"), "--region", "local", "--listen",
               "127.0.0.1:%d" % port, "--data", data, "--log-file", logf])
    wait_port(port, p)
    c = Client(port)
    _, body = c.must((200,), "POST", "/v1/sys/init", json.dumps({"shares": 1, "threshold": 1}),
                     {"Content-Type": "application/json"})
    _, body = c.must((201,), "POST", "/v1/accounts",
                     json.dumps({"country": "IN", "password": PASSWORD}),
                     {"Content-Type": "application/json"})
    account = json.loads(body)["account"]
    _, body = c.must((201,), "POST", "/v1/sessions",
                     json.dumps({"account": account, "password": PASSWORD}),
                     {"Content-Type": "application/json"})
    token = json.loads(body)["token"]
    c.must((200,), "PUT", "/v1/me/consents/contacts", json.dumps({"granted": True}),
           {"Content-Type": "application/json", "Authorization": "Bearer " + token})
    return Target("oikos", port, basic(account, PASSWORD),
                  "/dav/addressbooks/%s/contacts/" % account, p)


def start_radicale(tmp):
    port = free_port()
    p = start(["radicale", "--server-hosts", "127.0.0.1:%d" % port, "--auth-type", "none",
               "--rights-type", "owner_only", "--storage-filesystem-folder",
               os.path.join(tmp, "radicale"), "--logging-level", "error",
               "--server-max-content-length", str(512 << 20)])
    wait_port(port, p)
    t = Target("radicale", port, basic("user", "x"), "/user/bench/", p)
    body = ("<d:mkcol %s><d:set><d:prop><d:resourcetype><d:collection/><c:addressbook/>"
            "</d:resourcetype></d:prop></d:set></d:mkcol>" % NS)
    t.client().must((201,), "MKCOL", t.book, body, {"Content-Type": "application/xml"})
    return t


def start_xandikos(tmp):
    port = free_port()
    p = start(["xandikos", "-d", os.path.join(tmp, "xandikos"), "--defaults", "-l", "127.0.0.1",
               "-p", str(port)])
    wait_port(port, p)
    return Target("xandikos", port, basic("user", "x"), "/user/contacts/addressbook/", p)


# The workload ---------------------------------------------------------------------


def propfind_body():
    return "<d:propfind %s><d:prop><d:getetag/></d:prop></d:propfind>" % NS


def multiget_body(hrefs):
    return ("<c:addressbook-multiget %s><d:prop><d:getetag/><c:address-data/></d:prop>%s"
            "</c:addressbook-multiget>" % (NS, "".join("<d:href>%s</d:href>" % h
                                                       for h in hrefs)))


def sync_body(token):
    return ("<d:sync-collection %s><d:sync-token>%s</d:sync-token><d:sync-level>1</d:sync-level>"
            "<d:prop><d:getetag/></d:prop></d:sync-collection>" % (NS, token or ""))


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settle(pid, timeout=30):
    """Waits until the server has used no CPU for 200 ms (its background work
    after the previous phase: oikos's audit integration and checkpoints,
    Radicale's and Xandikos's caches), so that each phase is measured alone."""
    deadline = time.time() + timeout
    quiet, last = 0, cpu_s(pid)
    while time.time() < deadline and quiet < 4:
        time.sleep(0.05)
        now = cpu_s(pid)
        quiet = quiet + 1 if now == last else 0
        last = now


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def workload(t, n):
    """The sequential workload against one server: {phase: (seconds, ops)}."""
    c = t.client()

    def timed_phase(fn):
        settle(t.proc.pid)
        return timed(fn)
    res = {}
    names = ["bench-%06d.vcf" % i for i in range(n)]
    hrefs = [t.book + x for x in names]
    cards = [vcard(i) for i in range(n)]

    def put_all():
        for h, v in zip(hrefs, cards):
            c.must((201, 204), "PUT", h, v, {"Content-Type": "text/vcard; charset=utf-8",
                                               "If-None-Match": "*"})
    log("  %s: PUT %d" % (t.name, n))
    res["put"] = (timed_phase(put_all)[0], n)

    log("  %s: PROPFIND depth 1" % t.name)
    s, (_, body) = timed_phase(lambda: c.must((207,), "PROPFIND", t.book, propfind_body(),
                                        {"Depth": "1", "Content-Type": "application/xml"}))
    listed = etags(body)
    assert len([h for h in listed if h.rstrip("/") != t.book.rstrip("/")]) == n, t.name
    res["propfind_depth1"] = (s, n)

    log("  %s: multiget of %d" % (t.name, n))
    s, (_, body) = timed_phase(lambda: c.must((207,), "REPORT", t.book, multiget_body(hrefs),
                                        {"Depth": "1", "Content-Type": "application/xml"}))
    assert count_responses(body) == n and body.count(b"BEGIN:VCARD") == n, t.name
    res["multiget"] = (s, n)

    log("  %s: sync-collection" % t.name)
    s, (_, body) = timed_phase(lambda: c.must((207,), "REPORT", t.book, sync_body(""),
                                        {"Content-Type": "application/xml"}))
    assert count_responses(body) == n, (t.name, count_responses(body))
    token = sync_token(body)
    res["sync_initial"] = (s, n)
    for i in range(10):
        h = hrefs[i * (n // 10)]
        key = urllib.parse.unquote(h)
        et = listed.get(h) or listed.get(key)
        c.must((200, 201, 204), "PUT", h, vcard(i * (n // 10), version=1),
               {"Content-Type": "text/vcard; charset=utf-8", "If-Match": et})
    s, (_, body) = timed_phase(lambda: c.must((207,), "REPORT", t.book, sync_body(token),
                                        {"Content-Type": "application/xml"}))
    assert count_responses(body) == 10, (t.name, count_responses(body))
    res["sync_incremental"] = (s, 1)

    log("  %s: GET %d" % (t.name, n))

    def get_all():
        for h, v in zip(hrefs, cards):
            _, body = c.must((200,), "GET", h)
            assert body.startswith(b"BEGIN:VCARD")
    res["get"] = (timed_phase(get_all)[0], n)

    log("  %s: DELETE %d" % (t.name, n))

    def delete_all():
        for h in hrefs:
            c.must((200, 204), "DELETE", h)
    res["delete"] = (timed_phase(delete_all)[0], n)
    return res


def fill(t, n, conns=16):
    """Puts n cards into t's book with conns connections at once."""
    errors = []

    def worker(k):
        c = t.client()
        try:
            for i in range(k, n, conns):
                c.must((201, 204), "PUT", t.book + "big-%06d.vcf" % i, vcard(i, "-big"),
                       {"Content-Type": "text/vcard; charset=utf-8"})
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(conns)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]


def big(t, n):
    """Latencies with n cards in one book (oikos)."""
    out = {}
    log("  %s: filling a book with %d cards" % (t.name, n))
    s, _ = timed(lambda: fill(t, n))
    out["fill_seconds_16_connections"] = round(s, 2)
    c = t.client()
    hrefs = [t.book + "big-%06d.vcf" % i for i in range(n)]
    settle(t.proc.pid, timeout=300)
    s, (_, body) = timed(lambda: c.must((207,), "PROPFIND", t.book, propfind_body(),
                                        {"Depth": "1", "Content-Type": "application/xml"}))
    listed = etags(body)
    out["propfind_depth1_seconds"] = round(s, 3)
    s, (_, body) = timed(lambda: c.must((207,), "REPORT", t.book, sync_body(""),
                                        {"Content-Type": "application/xml"}))
    out["sync_initial_seconds"] = round(s, 3)
    token = sync_token(body)
    for i in range(10):
        h = hrefs[i * (n // 10)]
        c.must((204,), "PUT", h, vcard(i * (n // 10), "-big", 1),
               {"Content-Type": "text/vcard; charset=utf-8", "If-Match": listed[h]})
    lat = []
    settle(t.proc.pid)
    for _ in range(30):
        s, (_, body) = timed(lambda: c.must((207,), "REPORT", t.book, sync_body(token),
                                            {"Content-Type": "application/xml"}))
        assert count_responses(body) == 10
        lat.append(s * 1000)
    lat.sort()
    out["sync_incremental_ms_median"] = round(statistics.median(lat), 2)
    out["sync_incremental_ms_max"] = round(lat[-1], 2)
    mg = multiget_body(hrefs)
    runs = []
    for _ in range(3):
        settle(t.proc.pid)
        s, (_, body) = timed(lambda: c.must((207,), "REPORT", t.book, mg,
                                            {"Depth": "1", "Content-Type": "application/xml"}))
        assert count_responses(body) == n and body.count(b"BEGIN:VCARD") == n
        runs.append(s)
    out["multiget_all_seconds_best"] = round(min(runs), 3)
    out["multiget_all_seconds_worst"] = round(max(runs), 3)
    out["multiget_all_response_mib"] = round(len(body) / 1048576, 1)

    def chunked():
        for i in range(0, n, 1000):
            _, b = c.must((207,), "REPORT", t.book, multiget_body(hrefs[i:i + 1000]),
                          {"Depth": "1", "Content-Type": "application/xml"})
            assert count_responses(b) == len(hrefs[i:i + 1000])
    settle(t.proc.pid)
    out["multiget_by_1000_seconds"] = round(timed(chunked)[0], 3)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build", help="build directory holding oikosd (a Release build)")
    ap.add_argument("--n", type=int, default=2000, help="cards of the comparison (2000)")
    ap.add_argument("--big", type=int, default=50000, help="cards of the big book (50000)")
    ap.add_argument("--only", default="oikos,radicale,xandikos",
                    help="servers of the comparison, comma-separated")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="carddav-bench-")
    results = {"n": args.n, "phases": {}, "big": {}, "cpus": os.cpu_count(),
               "loadavg_start": os.getloadavg()[0]}
    try:
        starters = {"oikos": lambda: start_oikos(args.build, tmp),
                    "radicale": lambda: start_radicale(tmp),
                    "xandikos": lambda: start_xandikos(tmp)}
        servers = [x for x in args.only.split(",") if x]
        for name in servers:
            if name != "oikos" and not shutil.which(name):
                log("%s is not installed (scripts/deps.sh): skipped" % name)
                continue
            log("%s:" % name)
            t = starters[name]()
            try:
                results["phases"][name] = workload(t, args.n)
                if name == "oikos" and args.big:
                    results["big"] = big(t, args.big)
            finally:
                stop(t.proc)
    finally:
        for p in PROCS:
            stop(p)
        shutil.rmtree(tmp, ignore_errors=True)

    results["loadavg_end"] = os.getloadavg()[0]
    phases = ["put", "propfind_depth1", "multiget", "sync_initial", "sync_incremental", "get",
              "delete"]
    names = list(results["phases"])
    print("\nCardDAV, %d cards, one connection, sequential (ops/s; sync_incremental: ms)"
          % args.n)
    print("machine: %d CPUs, load average %.1f at the start, %.1f at the end (other work on "
          "the machine slows every server)" % (results["cpus"], results["loadavg_start"],
                                               results["loadavg_end"]))
    print("%-18s" % "phase" + "".join("%14s" % x for x in names) + "%16s" % "oikos/best")
    summary = {}
    for ph in phases:
        row = "%-18s" % ph
        vals = {}
        for x in names:
            s, ops = results["phases"][x][ph]
            if ph == "sync_incremental":
                vals[x] = s * 1000
                row += "%12.2fms" % vals[x]
            else:
                vals[x] = ops / s
                row += "%14.0f" % vals[x]
        others = [vals[x] for x in names if x != "oikos"]
        if "oikos" in vals and others:
            if ph == "sync_incremental":
                ratio = min(others) / vals["oikos"]
            else:
                ratio = vals["oikos"] / max(others)
            summary[ph] = round(ratio, 1)
            row += "%15.1fx" % ratio
        print(row)
    if "oikos" in vals and "radicale" in results["phases"]:
        s_o, n_o = results["phases"]["oikos"]["put"]
        s_r, n_r = results["phases"]["radicale"]["put"]
        summary["put_vs_radicale"] = round((n_o / s_o) / (n_r / s_r), 1)
        print("PUT, oikos/radicale: %.1fx (target >= 100x)" % summary["put_vs_radicale"])
    results["ratios"] = summary
    if results["big"]:
        b = results["big"]
        print("\nOne book of %d cards (oikos):" % args.big)
        for k, v in b.items():
            print("  %-32s %s" % (k, v))
        print("  targets: incremental sync < 50 ms, full multiget < 2 s")
    out = os.path.join(args.build, "carddav-results.json")
    with open(out, "w") as f:
        json.dump(results, f, indent=1)
    print("\nwritten to %s" % out)


if __name__ == "__main__":
    main()
