# SPDX-License-Identifier: Apache-2.0
"""Helpers for oikos end-to-end tests: start real oikosd processes on
127.0.0.1 with port 0 and a temporary data directory, talk HTTP to them,
and search their files for canaries."""

import http.client
import json
import os
import re
import signal
import subprocess
import time
import urllib.parse

OIKOSD = os.environ.get("OIKOSD", "build/oikosd")
OIKOS = os.environ.get("OIKOS", "build/oikos")

# Cheap password hashing for tests that create many accounts; the cost
# itself is covered by the default configuration in other tests.
FAST = {"OIKOS_PWHASH_OPS": "1", "OIKOS_PWHASH_MEM": "8192"}


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
               "--data", self.data, "--log-file", self.log] + self.args
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


def canary_hits(roots, canaries):
    """Every (file, canary) where the canary's bytes appear in a file under
    any of roots, in plain UTF-8 or UTF-16 (little-endian)."""
    hits = []
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
