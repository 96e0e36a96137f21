# SPDX-License-Identifier: Apache-2.0
"""Helpers for oikos end-to-end tests: start real oikosd processes on
127.0.0.1 with port 0 and a temporary data directory, talk HTTP to them,
and search their files for canaries.

With OIKOS_TEST_PG_DIR set (ctest's e2e.pg.* copies), every Server keeps
its data store and key store in two fresh databases of that private
PostgreSQL cluster (scripts/pgtest.sh) instead of SQLite files, the
canary search covers the cluster's directory too, and the store_* helpers
below reach a store by its file name whichever back-end holds it."""

import itertools
import http.client
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time
import urllib.parse

OIKOSD = os.environ.get("OIKOSD", "build/oikosd")
OIKOS = os.environ.get("OIKOS", "build/oikos")

# Cheap password hashing for tests that create many accounts; the cost
# itself is covered by the default configuration in other tests.
FAST = {"OIKOS_PWHASH_OPS": "1", "OIKOS_PWHASH_MEM": "8192"}

# The private PostgreSQL cluster of a PG run (None: SQLite files).
PG_DIR = os.environ.get("OIKOS_TEST_PG_DIR") or None
PG_ONLY_SQLITE = "reads or edits the SQLite files themselves"
_pg_stores = {}  # a store's file name (DATA/oikos.db, DATA/keys.db) -> its database URL
_pg_made = []  # databases made by this process, dropped by pg_cleanup()
_pg_count = itertools.count()


def pg_admin():
    """The admin URL (database "postgres") of the private cluster."""
    url = os.environ.get("OIKOS_TEST_PG_ADMIN")
    if not url:
        with open(os.path.join(PG_DIR, "url")) as f:
            url = f.read().strip()
    return url


def psql(url, sql, *args):
    """Runs sql on the database at url; ?-placeholders take args (quoted
    here: test values only). Returns the rows as tuples, numbers as int."""
    parts = sql.split("?")
    assert len(parts) == len(args) + 1, sql
    text = parts[0]
    for a, rest in zip(args, parts[1:]):
        if isinstance(a, (bytes, bytearray)):
            lit = "'\\x%s'::bytea" % bytes(a).hex()
        elif isinstance(a, int):
            lit = str(a)
        else:
            lit = "'%s'" % str(a).replace("'", "''")
        text += lit + rest
    out = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-F", "\x1f",
                          url, "-c", text], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError("psql failed: " + out.stderr.strip())
    rows = []
    for line in out.stdout.splitlines():
        rows.append(tuple(int(v) if re.fullmatch(r"-?\d+", v) else v
                          for v in line.split("\x1f")))
    return rows


def pg_new_database(tag, template=None):
    """A new database of the cluster (a copy of template, if given); its URL."""
    name = ("e2e_%d_%d_%s" % (os.getpid(), next(_pg_count),
                              re.sub(r"[^a-z0-9]+", "_", tag.lower())))[:63]
    admin = pg_admin()
    psql(admin, "CREATE DATABASE %s%s" % (name, " TEMPLATE " + template if template else ""))
    _pg_made.append(name)
    return admin.rsplit("/", 1)[0] + "/" + name


def pg_mark():
    """Where pg_cleanup(mark) starts: the databases made from now on."""
    return len(_pg_made)


def pg_cleanup(mark=0):
    """Drops every database this process made since mark (their servers
    stopped or not), and forgets the stores they held."""
    admin = pg_admin() if len(_pg_made) > mark else None
    while len(_pg_made) > mark:
        name = _pg_made.pop()
        psql(admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
        for path, url in list(_pg_stores.items()):
            if url.rsplit("/", 1)[1] == name:
                del _pg_stores[path]


def store_url(path):
    """The PostgreSQL database that holds the store named path (DATA/oikos.db
    or DATA/keys.db of a Server, or a store_copy/store_snapshot target)."""
    return _pg_stores[os.path.abspath(path)]


def store_query(path, sql, *args):
    """One query on a store, as an operator's tool would run it (read-only on SQLite)."""
    if PG_DIR:
        return psql(store_url(path), sql, *args)
    c = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return c.execute(sql, args).fetchall()
    finally:
        c.close()


def store_snapshot(src, dst):
    """A consistent copy of a live store: SQLite's online backup, or pg_dump."""
    if not PG_DIR:
        s = sqlite3.connect("file:%s?mode=ro" % src, uri=True)
        d = sqlite3.connect(dst)
        s.backup(d)
        d.close()
        s.close()
        return
    url = pg_new_database("snapshot")
    dump = subprocess.run(["pg_dump", "--no-owner", store_url(src)], capture_output=True,
                          timeout=120)
    assert dump.returncode == 0, dump.stderr
    load = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url], input=dump.stdout,
                          capture_output=True, timeout=120)
    assert load.returncode == 0, load.stderr
    _pg_stores[os.path.abspath(dst)] = url


def store_copy(src, dst):
    """A copy of a store that nothing has open (a file copy, or a database
    made from it as a template), to be opened as dst."""
    if not PG_DIR:
        shutil.copy(src, dst)
        return
    _pg_stores[os.path.abspath(dst)] = pg_new_database("copy", store_url(src).rsplit("/", 1)[1])


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def error_code(self):
        return self.json()["error"]["code"]


class Server:
    """One oikosd process."""

    def __init__(self, tmp, region="local", extra_env=None, args=(), port=0):
        self.data = os.path.join(str(tmp), "data-" + region)
        self.log = os.path.join(str(tmp), "oikosd-" + region + ".log")
        self.region = region
        self.env = dict(os.environ)
        self.env.update(FAST)
        if extra_env:
            self.env.update(extra_env)
        self.args = list(args)
        self.proc = None
        self.port = None
        self.listen_port = port
        self.conn = None

    def start(self, timeout=30):
        offset = os.path.getsize(self.log) if os.path.exists(self.log) else 0
        cmd = [OIKOSD, "--region", self.region, "--listen", "127.0.0.1:%d" % self.listen_port,
               "--data", self.data, "--log-file", self.log] + self.args + self.store_args()
        self.proc = subprocess.Popen(cmd, env=self.env, stdin=subprocess.DEVNULL)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("oikosd exited with %d: %s" % (self.proc.returncode, self.tail()))
            if os.path.exists(self.log):
                with open(self.log) as f:
                    f.seek(offset)
                    m = re.search(r"event=listening .*url=http://127\.0\.0\.1:(\d+)", f.read())
                if m:
                    self.port = int(m.group(1))
                    self.conn = None
                    return self
            time.sleep(0.02)
        raise RuntimeError("oikosd did not start: " + self.tail())

    def store_args(self):
        """On a PG run: --store and --keystore naming this server's two
        databases, made on first use (unless the test gives its own)."""
        if not PG_DIR or "--store" in self.args:
            return []
        urls = []
        for f in ("oikos.db", "keys.db"):
            path = os.path.abspath(os.path.join(self.data, f))
            if path not in _pg_stores:
                _pg_stores[path] = pg_new_database(self.region + "_" + f.split(".")[0])
            urls.append(_pg_stores[path])
        return ["--store", urls[0], "--keystore", urls[1]]

    def tail(self):
        try:
            with open(self.log) as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=timeout)
        rc = self.proc.returncode if self.proc else 0
        self.proc = None
        self.conn = None
        return rc

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.proc = None
        self.conn = None

    def request(self, method, path, body=None, token=None, headers=None, raw=None):
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = "Bearer " + token
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                self.conn.request(method, path, body=data, headers=hdrs)
                r = self.conn.getresponse()
                out = Response(r.status, r.getheaders(), r.read())
                if r.will_close:
                    self.conn.close()
                    self.conn = None
                return out
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    # Convenience wrappers of the API.
    def init(self, shares=5, threshold=3):
        r = self.request("POST", "/v1/sys/init", {"shares": shares, "threshold": threshold})
        assert r.status == 200, r.body
        return r.json()

    def unseal(self, shares):
        r = None
        for s in shares:
            r = self.request("POST", "/v1/sys/unseal", {"share": s})
            assert r.status == 200, r.body
        assert r.json()["sealed"] is False
        return r.json()

    def signup(self, country="IN", password="correct horse battery"):
        r = self.request("POST", "/v1/accounts", {"country": country, "password": password})
        assert r.status == 201, r.body
        return r.json()["account"]

    def login(self, account, password="correct horse battery"):
        r = self.request("POST", "/v1/sessions", {"account": account, "password": password})
        assert r.status == 201, r.body
        return r.json()["token"]

    def put(self, token, service, name, data):
        return self.request("PUT", data_path(service, name), token=token, raw=data,
                            headers={"Content-Type": "application/octet-stream"})

    def get(self, token, service, name):
        return self.request("GET", data_path(service, name), token=token)

    def consent(self, token, *services, granted=True):
        """Turns services on (or off) for the token's account; every
        service is off for a new account, and no data is taken while off."""
        for service in services:
            if granted:
                r = self.request("PUT", "/v1/me/consents/" + service, {"granted": True},
                                 token=token)
            else:
                r = self.request("DELETE", "/v1/me/consents/" + service, token=token)
            assert r.status == 200, r.body
            assert r.json()["granted"] is granted
        return r.json()


def metric(server, name):
    """The value of an unlabelled metric in server's /metrics."""
    for line in server.request("GET", "/metrics").body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("no metric " + name)


def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1 (free when asked)."""
    import socket
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def data_path(service, name):
    return "/v1/me/data/%s/%s" % (service, urllib.parse.quote(name, safe=""))


def files_under(root):
    for dirpath, _, files in os.walk(root):
        for f in files:
            yield os.path.join(dirpath, f)


def pg_database_dirs(data):
    """The directories of the databases holding the stores of a Server's
    data directory (DATA/oikos.db, DATA/keys.db) on a PG run."""
    dirs = []
    for path, url in _pg_stores.items():
        if os.path.dirname(path) == os.path.abspath(str(data)):
            oid = psql(pg_admin(), "SELECT oid FROM pg_database WHERE datname = ?",
                       url.rsplit("/", 1)[1])
            dirs += [os.path.join(PG_DIR, "data", "base", str(o[0])) for o in oid]
    return dirs


def canary_hits(roots, canaries, pg="cluster"):
    """Every (file, canary) where the canary's bytes appear in a file under
    any of roots, in plain UTF-8 or UTF-16 (little-endian). On a PG run the
    cluster's whole directory is searched too (its tables, WAL and logs);
    pg="databases": only the databases of the Servers whose data directories
    are among roots, for canaries that other servers sharing the cluster may
    rightly hold (the WAL is theirs too); pg="none": nothing of the cluster."""
    hits = []
    if PG_DIR and pg == "cluster":
        roots = list(roots) + [PG_DIR]
    elif PG_DIR and pg == "databases":
        roots = list(roots) + [d for r in roots for d in pg_database_dirs(r)]
    for root in roots:
        for path in files_under(root):
            try:
                with open(path, "rb") as f:
                    blob = f.read()
            except OSError:
                continue
            for c in canaries:
                for form in (c.encode(), c.encode("utf-16-le")):
                    if form in blob:
                        hits.append((path, c))
    return hits
