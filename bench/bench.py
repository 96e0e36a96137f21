# SPDX-License-Identifier: Apache-2.0
"""The oikos benchmarks (make bench): every figure of oikosd is measured
beside its baseline in the same run, on the same machine and filesystem,
and reported as a ratio to it.

  put_small  PUT of 1 KiB objects, 64 keep-alive connections (wrk):
             durable writes/s vs SQLite's own rate of durable single-row
             transactions one at a time (bench_sqlite)
  get_small  GET of 1 KiB objects picked at random among 1,000, 64
             connections (wrk): requests/s vs a bare libmicrohttpd server
             of a static 1 KiB body with the same thread pool
             (bench_mhd_static), same wrk script
  put_large  streaming PUT of a 256 MiB object: MB/s vs the disk's
             sequential durable write speed (dd ... conv=fdatasync)
  get_large  streaming GET of it: MB/s vs one core's AES-256-GCM
             decryption speed with OpenSSL, as oikosd does it (bench_aead)
  rss        oikosd's resident memory growth during each large transfer
  pg         the same oikosd figures again with both stores on PostgreSQL
             (a private cluster started here by scripts/pgtest.sh, on the
             same filesystem), beside PostgreSQL's own rate of durable
             single-row transactions one at a time (pgbench); the table
             puts SQLite and PostgreSQL side by side (--no-pg skips it)

oikosd runs with --threads 64 (its default is 32): one pool thread per
connection, because a PUT's thread blocks until its write is durable; the
static baseline gets the same pool. Beside each figure the run records what
explains it: CPU per thread kind, the machine's busy cores, bytes written to
disk per request, client connections made (keep-alive check).

Standard library only (run with /usr/bin/python3). Every process started
here is stopped by its PID; the whole run is bounded by a deadline; all
traffic is on 127.0.0.1. The table goes to standard output and, as JSON,
to BUILD/results.json.
"""

import argparse
import glob
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import http.client
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
PGTEST = os.path.join(HERE, "..", "scripts", "pgtest.sh")
PG_EXTRA_S = 240  # added to the deadline by the PostgreSQL pass
MIB = 1024 * 1024
PROCS = []  # every subprocess.Popen started here, stopped by PID at exit


class BenchError(Exception):
    pass


def log(msg):
    print("bench: " + msg, flush=True)


# Processes ----------------------------------------------------------------

def start(cmd, **kw):
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, **kw)
    PROCS.append(p)
    return p


def stop(p, sig=signal.SIGTERM, timeout=30):
    """Stops one process we started, by its PID; returns its exit code."""
    if p.poll() is None:
        os.kill(p.pid, sig)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
    if p in PROCS:
        PROCS.remove(p)
    return p.returncode


def stop_all():
    for p in list(PROCS):
        try:
            stop(p, timeout=10)
        except OSError:
            pass


def run(cmd, timeout, env=None):
    """Runs a command to completion (bounded); returns its standard output."""
    p = start(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(p, signal.SIGKILL)
        raise BenchError("%s did not finish in %ds" % (cmd[0], timeout))
    PROCS.remove(p)
    if p.returncode != 0:
        raise BenchError("%s failed (%d): %s" % (" ".join(cmd), p.returncode, err.strip()))
    return out, err


def last_json(text, tag=None):
    for line in reversed(text.splitlines()):
        if tag:
            if not line.startswith(tag + " "):
                continue
            line = line[len(tag) + 1:]
        if line.startswith("{"):
            return json.loads(line)
    raise BenchError("no JSON result in: " + text[-500:])


# /proc ----------------------------------------------------------------------

def fs_type(path):
    out = subprocess.run(["df", "--output=fstype,source", path], capture_output=True,
                         text=True, check=True).stdout.split("\n")[1].split()
    return out[0], out[1]


def rss_kib(pid):
    """VmRSS of a process and its parts: {"VmRSS": KiB, "RssAnon": ..., ...}."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k = line.split(":")[0]
            if k in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                out[k] = int(line.split()[1])
    if "VmRSS" not in out:
        raise BenchError("no VmRSS for pid %d" % pid)
    return out


def listening_port(pid):
    """The TCP port a process listens on (it was started on port 0)."""
    inodes = set()
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]", target)
        if m:
            inodes.add(m.group(1))
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:
                return int(cols[1].split(":")[1], 16)
    return None


def peer_ports(port):
    """Client-side ports of every TCP socket (any state) to or from port on
    127.0.0.1: the connections made to the server, open or closed recently."""
    seen = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            cols = line.split()
            lp = int(cols[1].split(":")[1], 16)
            rp = int(cols[2].split(":")[1], 16)
            if cols[3] == "0A":
                continue
            if rp == port:
                seen.add(lp)
            elif lp == port:
                seen.add(rp)
    return seen


class Sampler(threading.Thread):
    """Calls fn() every `every` seconds until stopped; keeps the results."""

    def __init__(self, fn, every):
        super().__init__(daemon=True)
        self.fn, self.every = fn, every
        self.values = []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                self.values.append(self.fn())
            except (OSError, BenchError):
                pass
            self.halt.wait(self.every)

    def stop(self):
        self.halt.set()
        self.join()
        try:
            self.values.append(self.fn())
        except (OSError, BenchError):
            pass
        return self.values


# oikosd -----------------------------------------------------------------------

class Oikosd:
    def __init__(self, binary, workdir, threads, store_args=()):
        self.data = os.path.join(workdir, "data")
        self.logfile = os.path.join(workdir, "oikosd.log")
        cmd = [binary, "--region", "local", "--listen", "127.0.0.1:0", "--data", self.data,
               "--log-file", self.logfile, "--log-level", "warn"] + list(store_args)
        if threads:
            cmd += ["--threads", str(threads)]
        env = dict(os.environ, OIKOS_PWHASH_OPS="1", OIKOS_PWHASH_MEM="8192")
        self.proc = start(cmd, env=env)
        self.pid = self.proc.pid
        self.port = None
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise BenchError("oikosd exited with %d: %s" % (self.proc.returncode,
                                                                self.tail()))
            try:
                self.port = listening_port(self.pid)
            except OSError:
                self.port = None
            if self.port:
                break
            time.sleep(0.02)
        if not self.port:
            raise BenchError("oikosd did not start listening: " + self.tail())
        self.conn = None

    def tail(self):
        try:
            with open(self.logfile) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def request(self, method, path, body=None, token=None, raw=None):
        hdrs = {}
        if token:
            hdrs["Authorization"] = "Bearer " + token
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        self.conn.request(method, path, body=data, headers=hdrs)
        r = self.conn.getresponse()
        out = r.read()
        if r.will_close:
            self.conn.close()
            self.conn = None
        return r.status, out

    def must(self, want, method, path, body=None, token=None, raw=None):
        status, out = self.request(method, path, body, token, raw)
        if status not in want:
            raise BenchError("%s %s: %d %s" % (method, path, status, out[:300]))
        return json.loads(out) if out else {}

    def setup_user(self, service):
        self.must((200,), "POST", "/v1/sys/init", {"shares": 3, "threshold": 2})
        account = self.must((201,), "POST", "/v1/accounts",
                            {"country": "IN", "password": "bench password"})["account"]
        token = self.must((201,), "POST", "/v1/sessions",
                          {"account": account, "password": "bench password"})["token"]
        # consent, where this build has the route already
        status, out = self.request("PUT", "/v1/me/consents/" + service, {"granted": True},
                                   token)
        if status not in (200, 404, 405):
            raise BenchError("consent: %d %s" % (status, out[:300]))
        return token

    def metric(self, name):
        status, out = self.request("GET", "/metrics")
        m = re.search(r"^%s (\d+)" % re.escape(name), out.decode(), re.M)
        return int(m.group(1)) if m else None

    def stop(self):
        if self.conn:
            self.conn.close()
        return stop(self.proc, timeout=40)


def data_path(service, name):
    return "/v1/me/data/%s/%s" % (service, urllib.parse.quote(name, safe=""))


# Measures ---------------------------------------------------------------------

def cpu_s(pid):
    """User + system CPU seconds used so far by a process."""
    with open("/proc/%d/stat" % pid) as f:
        cols = f.read().rsplit(")", 1)[1].split()
    return (int(cols[11]) + int(cols[12])) / os.sysconf("SC_CLK_TCK")


def median(values):
    v = sorted(values)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


def cpu_stat():
    """(total, idle + iowait) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v), v[3] + v[4]


def busy_between(a, b):
    """Cores the machine kept busy between two cpu_stat() samples."""
    return (os.cpu_count() or 1) * (1 - (b[1] - a[1]) / max(1, b[0] - a[0]))


def busy_cores(seconds=1.0):
    """How many cores the whole machine keeps busy over the next `seconds`."""
    a = cpu_stat()
    time.sleep(seconds)
    return busy_between(a, cpu_stat())


def disk_written(pid):
    """Bytes a process has caused to be written to storage (/proc/PID/io)."""
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    return 0


def thread_cpu_s(pid):
    """CPU seconds used so far by each kind of thread of a process, by name."""
    out = {}
    tck = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                text = f.read()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        cols = text.rsplit(")", 1)[1].split()
        out[name] = out.get(name, 0) + (int(cols[11]) + int(cols[12])) / tck
    return out


def wrk(port, mode, seconds, conns, env_extra, logdir, label, server_pid):
    """Runs wrk against port; returns its totals, the rate of answers below
    400, the CPU used by the server and by wrk (in cores) and how many client
    connections were made (keep-alive check)."""
    env = dict(os.environ, BENCH_MODE=mode, **env_extra)
    cmd = ["wrk", "-t2", "-c%d" % conns, "-d%ds" % seconds, "--timeout", "10s",
           "-s", os.path.join(HERE, "wrk.lua"), "http://127.0.0.1:%d/" % port]
    earlier = peer_ports(port)
    ports = Sampler(lambda: peer_ports(port), 0.5)
    ports.start()
    cpu0, kids0, t0 = cpu_s(server_pid), resource.getrusage(resource.RUSAGE_CHILDREN), \
        time.monotonic()
    th0, m0, w0 = thread_cpu_s(server_pid), cpu_stat(), disk_written(server_pid)
    out, err = run(cmd, timeout=seconds + 30, env=env)
    th1, m1, w1 = thread_cpu_s(server_pid), cpu_stat(), disk_written(server_pid)
    cpu1, kids1, t1 = cpu_s(server_pid), resource.getrusage(resource.RUSAGE_CHILDREN), \
        time.monotonic()
    seen = set()
    for s in ports.stop():
        seen |= s
    with open(os.path.join(logdir, "wrk-%s.txt" % label), "w") as f:
        f.write(out + err)
    res = last_json(out, "BENCH_JSON")
    res["rate"] = res["requests"] / (res["duration_us"] / 1e6)
    ok = res["requests"] - res["errors"]["status"]
    res["ok_rate"] = ok / (res["duration_us"] / 1e6)
    res["client_connections_seen"] = len(seen - earlier)
    res["server_cores"] = (cpu1 - cpu0) / (t1 - t0)
    res["machine_busy_cores"] = busy_between(m0, m1)
    res["server_disk_written"] = w1 - w0
    res["server_cores_by_thread"] = {k: (v - th0.get(k, 0)) / (t1 - t0)
                                     for k, v in th1.items() if v - th0.get(k, 0) > 0}
    res["wrk_cores"] = (kids1.ru_utime + kids1.ru_stime - kids0.ru_utime - kids0.ru_stime) / \
        (t1 - t0)
    return res


def stream_put(port, token, path, size, pattern):
    """PUTs size bytes (the pattern repeated) with Content-Length, streaming
    from memory; returns the seconds until the answer (the write is durable)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.putrequest("PUT", path)
    c.putheader("Authorization", "Bearer " + token)
    c.putheader("Content-Type", "application/octet-stream")
    c.putheader("Content-Length", str(size))
    c.endheaders()
    view = memoryview(pattern)
    t0 = time.monotonic()
    sent = 0
    while sent < size:
        n = min(len(view), size - sent)
        c.send(view[:n])
        sent += n
    r = c.getresponse()
    body = r.read()
    t = time.monotonic() - t0
    c.close()
    if r.status not in (200, 201):
        raise BenchError("streaming PUT: %d %s" % (r.status, body[:300]))
    return t


def stream_get(port, token, path, size, pattern):
    """GETs the object, checking every byte against the repeated pattern."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    twice = pattern + pattern
    buf = bytearray(len(pattern))
    view = memoryview(buf)
    t0 = time.monotonic()
    c.request("GET", path, headers={"Authorization": "Bearer " + token})
    r = c.getresponse()
    if r.status != 200:
        raise BenchError("streaming GET: %d %s" % (r.status, r.read()[:300]))
    got = 0
    while True:
        n = r.readinto(view)
        if not n:
            break
        off = got % len(pattern)
        if view[:n] != twice[off:off + n]:
            raise BenchError("streaming GET: wrong bytes at offset %d" % got)
        got += n
    t = time.monotonic() - t0
    c.close()
    if got != size:
        raise BenchError("streaming GET: %d bytes, want %d" % (got, size))
    return t


def timed_put(srv, token, path, size, pattern):
    """One streaming PUT, timed, with its RSS, CPU and disk figures."""
    c0, m0, w0 = cpu_s(srv.pid), cpu_stat(), disk_written(srv.pid)
    t, rss = with_rss(srv.pid, lambda: stream_put(srv.port, token, path, size, pattern))
    return dict(rss, bytes=size, seconds=t, mbs=size / t / 1e6,
                server_cores=(cpu_s(srv.pid) - c0) / t,
                machine_busy_cores=busy_between(m0, cpu_stat()),
                server_disk_written=disk_written(srv.pid) - w0)


def curl_get(port, token, path, size):
    """GETs path with curl into /dev/null; returns curl's transfer time."""
    out, _ = run(["curl", "-sS", "-f", "-o", "/dev/null", "-w", "%{size_download} %{time_total}",
                  "-H", "Authorization: Bearer " + token,
                  "http://127.0.0.1:%d%s" % (port, path)], timeout=120)
    got, t = out.split()
    if int(got) != size:
        raise BenchError("curl GET: %s bytes, want %d" % (got, size))
    return float(t)


def settle(pid, quiet=0.05, timeout=5):
    """Waits (up to timeout s) until pid uses less than `quiet` of a core,
    so that background work (checkpoints) does not count in the next measure."""
    deadline = time.monotonic() + timeout
    c0 = cpu_s(pid)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        c1 = cpu_s(pid)
        if c1 - c0 < quiet * 0.2:
            return
        c0 = c1


def with_rss(pid, fn):
    """Runs fn() while sampling pid's VmRSS every ~20 ms; returns fn's result
    and a dict: VmRSS before, its largest growth over it (KiB), and the parts
    (anonymous, file-backed, shared) of the largest sample."""
    before = rss_kib(pid)
    s = Sampler(lambda: rss_kib(pid), 0.02)
    s.start()
    try:
        res = fn()
    finally:
        values = s.stop()
    top = max(values + [before], key=lambda v: v["VmRSS"])
    return res, {"rss_before_kib": before["VmRSS"],
                 "rss_growth_kib": top["VmRSS"] - before["VmRSS"],
                 "rss_growth_parts_kib": {k: top.get(k, 0) - before.get(k, 0)
                                          for k in ("RssAnon", "RssFile", "RssShmem")},
                 "rss_samples": len(values)}


def dd_speed(directory, mib):
    path = os.path.join(directory, "dd.tmp")
    try:
        p = subprocess.run(["dd", "if=/dev/zero", "of=" + path, "bs=1M", "count=%d" % mib,
                            "conv=fdatasync"], capture_output=True, text=True, timeout=120)
    finally:
        if os.path.exists(path):
            os.unlink(path)
    m = re.search(r"^(\d+) bytes .* copied, ([\d.,]+) s", p.stderr, re.M)
    if p.returncode != 0 or not m:
        raise BenchError("dd failed: " + p.stderr)
    return int(m.group(1)) / float(m.group(2).replace(",", ".")) / 1e6


def populate(port, token, service, prefix, count, size):
    """PUTs count objects of size bytes from 8 connections; returns the payload
    of object 0 for a spot check."""
    payloads = [os.urandom(size) for _ in range(8)]
    errors = []

    def worker(k):
        c = None
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            for i in range(k, count, 8):
                c.request("PUT", data_path(service, "%s%d" % (prefix, i)), body=payloads[k],
                          headers={"Authorization": "Bearer " + token,
                                   "Content-Type": "application/octet-stream"})
                r = c.getresponse()
                r.read()
                if r.status not in (200, 201):
                    raise BenchError("populate: %d" % r.status)
        except Exception as e:  # reported below
            errors.append(e)
        finally:
            if c:
                c.close()

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise BenchError("populate: %s" % errors[0])
    return payloads[0]


# PostgreSQL ------------------------------------------------------------------------

def pg_bin(name):
    """A program of the newest PostgreSQL server installed, or None."""
    found = glob.glob("/usr/lib/postgresql/*/bin/" + name)
    found.sort(key=lambda p: [int(x) for x in re.findall(r"\d+", p)])
    return found[-1] if found else None


def pg_available():
    return bool(pg_bin("initdb") and pg_bin("pgbench") and shutil.which("psql")
                and os.access(PGTEST, os.X_OK))


def psql(url, sql):
    return run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", url, "-c", sql], 60)[0]


def pg_cpu_s(pgdir):
    """CPU seconds used so far by a cluster's server processes: the
    postmaster (with its reaped children) and every live child."""
    with open(os.path.join(pgdir, "data", "postmaster.pid")) as f:
        pm = int(f.readline())
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                cols = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(pid) == pm:
            total += sum(int(c) for c in cols[11:15])
        elif int(cols[1]) == pm:
            total += int(cols[11]) + int(cols[12])
    return total / os.sysconf("SC_CLK_TCK")


def pg_wrk(pgdir, *args):
    """wrk() with the CPU that PostgreSQL used per request beside oikosd's."""
    c0 = pg_cpu_s(pgdir)
    r = wrk(*args)
    r["pg_cpu_ms_per_request"] = (pg_cpu_s(pgdir) - c0) * 1e3 / max(1, r["requests"])
    return r


def pg_baseline(url, seconds, workdir):
    """PostgreSQL's own rate of durable single-row transactions, one at a
    time: pgbench, one client, prepared, each transaction one INSERT of a
    1 KiB row (synchronous_commit on, as the cluster runs): the counterpart
    of bench_sqlite."""
    script = os.path.join(workdir, "pgbench.sql")
    with open(script, "w") as f:
        f.write("INSERT INTO t (data) VALUES (decode(repeat(md5(random()::text), 64), 'hex'));\n")
    out, _ = run([pg_bin("pgbench"), "-n", "-M", "prepared", "-c", "1", "-T", str(seconds),
                  "-f", script, url], seconds + 60)
    tps = re.search(r"^tps = ([\d.]+)", out, re.M)
    lat = re.search(r"^latency average = ([\d.]+) ms", out, re.M)
    if not tps or not lat:
        raise BenchError("pgbench: no result in: " + out[-500:])
    return {"commits_per_s": float(tps.group(1)), "mean_ms": float(lat.group(1))}


def pg_pass(bins, workdir, threads, service, args, logdir):
    """The oikosd figures again, with the data store and the key store in two
    databases of a private PostgreSQL cluster (scripts/pgtest.sh: initdb in
    a directory of its own beside the work directory, same filesystem,
    127.0.0.1, a free port, fsync and synchronous_commit on). The cluster is
    stopped at the end by pg_ctl, or its postmaster by PID."""
    pgdir = tempfile.mkdtemp(prefix="oikos-bench-pg-", dir=os.path.dirname(workdir))
    work = os.path.join(workdir, "pg")
    os.makedirs(work)
    out = {"cluster_dir": pgdir}
    try:
        log("PostgreSQL: private cluster in %s (scripts/pgtest.sh)" % pgdir)
        admin = run([PGTEST, "start", pgdir, "0"], 120)[0].strip().splitlines()[-1]
        base = admin.rsplit("/", 1)[0]
        for db in ("oikos", "oikos_keys", "baseline"):
            psql(admin, "CREATE DATABASE " + db)
        psql(base + "/baseline", "CREATE TABLE t (id bigserial PRIMARY KEY, data bytea NOT NULL)")
        out["server_version"] = psql(admin, "SHOW server_version").strip()

        log("oikosd on PostgreSQL: start, init, account")
        srv = Oikosd(bins["oikosd"], work, threads,
                     ["--store", base + "/oikos", "--keystore", base + "/oikos_keys"])
        token = srv.setup_user(service)
        size = args.large_mib * MIB
        pattern = os.urandom(MIB)
        path = data_path(service, "large.bin")
        log("oikosd on PostgreSQL: streaming PUT of %d MiB" % args.large_mib)
        out["put_large"] = timed_put(srv, token, path, size, pattern)
        settle(srv.pid)
        log("oikosd on PostgreSQL: streaming GET of %d MiB, checked, then %d timed (curl)"
            % (args.large_mib, args.get_repeat))
        runs = []

        def gets():
            stream_get(srv.port, token, path, size, pattern)
            for _ in range(args.get_repeat):
                settle(srv.pid)
                c0, m0 = cpu_s(srv.pid), cpu_stat()
                t = curl_get(srv.port, token, path, size)
                runs.append({"seconds": t, "mbs": size / t / 1e6,
                             "server_cores": (cpu_s(srv.pid) - c0) / t,
                             "machine_busy_cores": busy_between(m0, cpu_stat())})
        _, rss = with_rss(srv.pid, gets)
        runs.sort(key=lambda r: r["mbs"])
        out["get_large"] = dict(rss, bytes=size, runs_mbs=[r["mbs"] for r in runs],
                                **runs[len(runs) // 2])

        baselines = []

        def baseline():
            settle(srv.pid)
            log("PostgreSQL durable single-row transactions (pgbench, 1 client, 2 s)")
            baselines.append(pg_baseline(base + "/baseline", 2, work))

        baseline()
        baseline()
        log("oikosd on PostgreSQL: PUT 1 KiB, %d connections (wrk %ds)"
            % (args.connections, args.seconds))
        objs0 = srv.metric("oikos_objects") or 0
        out["put_small"] = pg_wrk(pgdir, srv.port, "put", args.seconds, args.connections,
                               {"BENCH_TOKEN": token, "BENCH_SERVICE": service,
                                "BENCH_RUN": "w", "BENCH_BODY_BYTES": "1024"},
                               logdir, "oikosd-pg-put", srv.pid)
        objs1 = srv.metric("oikos_objects")
        out["put_small"]["objects_stored"] = None if objs1 is None else objs1 - objs0
        baseline()
        out["baseline"] = {"runs": baselines,
                           "commits_per_s": median([r["commits_per_s"] for r in baselines])}

        log("oikosd on PostgreSQL: populate 1,000 objects of 1 KiB")
        sample = populate(srv.port, token, service, "g-", 1000, 1024)
        status, body = srv.request("GET", data_path(service, "g-0"), token=token)
        if status != 200 or body != sample:
            raise BenchError("GET g-0 on PostgreSQL: %d, not what was stored" % status)
        settle(srv.pid)
        log("oikosd on PostgreSQL: GET 1 KiB, %d connections (wrk %ds)"
            % (args.connections, args.seconds))
        out["get_small"] = pg_wrk(pgdir, srv.port, "get", args.seconds, args.connections,
                               {"BENCH_TOKEN": token, "BENCH_SERVICE": service,
                                "BENCH_NAMES": "1000", "BENCH_PREFIX": "g-"},
                               logdir, "oikosd-pg-get", srv.pid)
        out["database_bytes"] = int(psql(admin, "SELECT pg_database_size('oikos')").strip())
        rc = srv.stop()
        if rc != 0:
            raise BenchError("oikosd on PostgreSQL exited with %d: %s" % (rc, srv.tail()))
        shutil.copy(srv.logfile, os.path.join(logdir, "oikosd-pg.log"))
    finally:
        pg_stop(pgdir)
    return out


def pg_stop(pgdir):
    """Stops the private cluster (pg_ctl, fast); failing that, its postmaster by PID."""
    try:
        run([PGTEST, "stop", pgdir], 90)
    except BenchError as e:
        log("warning: %s" % e)
    pidfile = os.path.join(pgdir, "data", "postmaster.pid")
    if os.path.exists(pidfile):
        with open(pidfile) as f:
            pid = int(f.readline())
        log("PostgreSQL still running: stopping postmaster %d" % pid)
        os.kill(pid, signal.SIGQUIT)
        for _ in range(100):
            if not os.path.exists("/proc/%d" % pid):
                break
            time.sleep(0.1)
    shutil.rmtree(pgdir, ignore_errors=True)


# The run -----------------------------------------------------------------------

def pick_workdir():
    for d in ("/tmp", "/var/tmp"):
        if os.path.isdir(d) and fs_type(d)[0] not in ("tmpfs", "ramfs"):
            return tempfile.mkdtemp(prefix="oikos-bench-", dir=d)
    raise BenchError("no disk-backed temporary directory (/tmp and /var/tmp are tmpfs)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build", help="build tree with oikosd and the bench_* programs")
    ap.add_argument("--seconds", type=int, default=10, help="duration of each wrk run")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--threads", type=int, default=64,
                    help="oikosd --threads and the baseline's pool (oikosd's default: 32; "
                         "one per connection helps PUT, whose threads block in the commit)")
    ap.add_argument("--get-repeat", type=int, default=3,
                    help="large GETs timed (the median counts)")
    ap.add_argument("--large-mib", type=int, default=256)
    ap.add_argument("--deadline", type=int, default=170, help="seconds before giving up")
    ap.add_argument("--no-pg", action="store_true",
                    help="skip the PostgreSQL pass (it adds %d s to the deadline)" % PG_EXTRA_S)
    args = ap.parse_args()
    pg = not args.no_pg and pg_available()
    if not args.no_pg and not pg:
        log("PostgreSQL server, pgbench or psql not installed: no PostgreSQL pass (make deps)")
    deadline = args.deadline + (PG_EXTRA_S if pg else 0)

    build = os.path.abspath(args.build)
    bins = {n: os.path.join(build, n) for n in
            ("oikosd", "bench_sqlite", "bench_mhd_static", "bench_aead")}
    for n, p in bins.items():
        if not os.access(p, os.X_OK):
            raise BenchError("%s missing: build %s first" % (p, build))
    if not shutil.which("wrk"):
        raise BenchError("wrk missing: apt-get install wrk")

    def on_deadline(signum, frame):
        raise BenchError("deadline of %ds passed" % deadline)
    signal.signal(signal.SIGALRM, on_deadline)
    signal.alarm(deadline)

    logdir = os.path.join(build, "bench-logs")
    os.makedirs(logdir, exist_ok=True)
    workdir = pick_workdir()
    fstype, source = fs_type(workdir)
    threads = args.threads
    service = "photos"
    t_start = time.monotonic()
    res = {"machine": {"cpus": os.cpu_count(), "workdir": workdir, "fstype": fstype,
                       "device": source, "oikosd_threads": threads,
                       "connections": args.connections, "wrk_seconds": args.seconds,
                       "wrk_threads": 2}}
    log("work directory %s (%s on %s), %d CPUs" % (workdir, fstype, source, os.cpu_count()))
    try:
        res["machine"]["busy_cores_before"] = busy_cores()
        if res["machine"]["busy_cores_before"] > 0.2:
            log("warning: the machine is busy (%.1f cores) before the run: figures will be low"
                % res["machine"]["busy_cores_before"])
        # Baselines that need nothing else running.
        log("AEAD speed of one core (bench_aead)")
        res["aead"] = last_json(run([bins["bench_aead"], "2"], 60)[0])

        log("bare libmicrohttpd static 1 KiB GET (bench_mhd_static, wrk %ds)" % args.seconds)
        mhd = start([bins["bench_mhd_static"], "--threads", str(threads)],
                    stdout=subprocess.PIPE, text=True)
        line = mhd.stdout.readline()
        m = re.match(r"port=(\d+)", line)
        if not m:
            raise BenchError("bench_mhd_static did not start: %r" % line)
        mport = int(m.group(1))
        res["mhd_get"] = wrk(mport, "get", args.seconds, args.connections,
                             {"BENCH_TOKEN": "x", "BENCH_NAMES": "1000"}, logdir, "mhd-get",
                             mhd.pid)
        os.kill(mhd.pid, signal.SIGTERM)
        out, _ = mhd.communicate(timeout=30)
        PROCS.remove(mhd)
        res["mhd_get"]["server"] = last_json(out)

        log("oikosd: start, init, account")
        srv = Oikosd(bins["oikosd"], workdir, threads)
        res["machine"]["oikosd_port"] = srv.port
        token = srv.setup_user(service)

        # Large objects first, on the fresh server: the memory figure then
        # includes the store's caches filling up (the conservative case).
        # The disk's speed varies from minute to minute on a shared machine:
        # the baseline is the median of two measures just before and one after.
        size = args.large_mib * MIB
        log("disk: dd %d MiB conv=fdatasync, twice" % args.large_mib)
        dd = [dd_speed(workdir, args.large_mib), dd_speed(workdir, args.large_mib)]
        pattern = os.urandom(MIB)
        path = data_path(service, "large.bin")
        log("oikosd: streaming PUT of %d MiB" % args.large_mib)
        res["put_large"] = timed_put(srv, token, path, size, pattern)
        settle(srv.pid)
        log("disk: dd %d MiB conv=fdatasync, again" % args.large_mib)
        dd.append(dd_speed(workdir, args.large_mib))
        res["dd_runs_mbs"] = dd
        res["dd_mbs"] = median(dd)
        settle(srv.pid)
        # A CPU-bound speed is only ever lowered by noise: the AEAD baseline is
        # the faster of the measure at the start and one just before the GETs.
        log("AEAD speed of one core again (bench_aead, 1 s)")
        res["aead_again"] = last_json(run([bins["bench_aead"], "1"], 60)[0])
        log("oikosd: streaming GET of %d MiB, checked, then %d timed (curl)"
            % (args.large_mib, args.get_repeat))
        runs = []

        def gets():
            stream_get(srv.port, token, path, size, pattern)
            for _ in range(args.get_repeat):
                settle(srv.pid)
                c0, m0 = cpu_s(srv.pid), cpu_stat()
                k0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                t = curl_get(srv.port, token, path, size)
                k1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                runs.append({"seconds": t, "mbs": size / t / 1e6,
                             "server_cores": (cpu_s(srv.pid) - c0) / t,
                             "curl_cores": (k1.ru_utime + k1.ru_stime - k0.ru_utime -
                                            k0.ru_stime) / t,
                             "machine_busy_cores": busy_between(m0, cpu_stat())})
        _, rss = with_rss(srv.pid, gets)
        runs.sort(key=lambda r: r["mbs"])
        res["get_large"] = dict(rss, bytes=size, runs_mbs=[r["mbs"] for r in runs],
                                **runs[len(runs) // 2])
        settle(srv.pid)

        # So does fsync's latency: SQLite's baseline runs twice just before
        # and once just after the PUTs (oikosd idle), and counts by its median.
        sqlite = []

        def sqlite_baseline():
            settle(srv.pid)
            log("SQLite durable single-row transactions (bench_sqlite, 2 s)")
            sqlite.append(last_json(run([bins["bench_sqlite"], os.path.join(
                workdir, "baseline-%d.db" % len(sqlite)), "2"], 60)[0]))

        sqlite_baseline()
        sqlite_baseline()
        log("oikosd: PUT 1 KiB, %d connections (wrk %ds)" % (args.connections, args.seconds))
        objs0 = srv.metric("oikos_objects") or 0
        res["put_small"] = wrk(srv.port, "put", args.seconds, args.connections,
                               {"BENCH_TOKEN": token, "BENCH_SERVICE": service,
                                "BENCH_RUN": "w", "BENCH_BODY_BYTES": "1024"},
                               logdir, "oikosd-put", srv.pid)
        objs1 = srv.metric("oikos_objects")
        res["put_small"]["objects_stored"] = None if objs1 is None else objs1 - objs0
        sqlite_baseline()
        res["sqlite"] = {"runs": sqlite,
                         "commits_per_s": median([r["commits_per_s"] for r in sqlite])}

        log("oikosd: populate 1,000 objects of 1 KiB")
        sample = populate(srv.port, token, service, "g-", 1000, 1024)
        status, body = srv.request("GET", data_path(service, "g-0"), token=token)
        if status != 200 or body != sample:
            raise BenchError("GET g-0: %d, %d bytes, not what was stored" % (status, len(body)))
        settle(srv.pid)  # the writer's idle checkpoint is not part of the reads

        log("oikosd: GET 1 KiB, %d connections (wrk %ds)" % (args.connections, args.seconds))
        res["get_small"] = wrk(srv.port, "get", args.seconds, args.connections,
                               {"BENCH_TOKEN": token, "BENCH_SERVICE": service,
                                "BENCH_NAMES": "1000", "BENCH_PREFIX": "g-"},
                               logdir, "oikosd-get", srv.pid)

        # For the record: the same large PUT again, on the now warm server.
        settle(srv.pid)
        log("oikosd: streaming PUT of %d MiB again, warm (for the record)" % args.large_mib)
        res["put_large_warm"] = timed_put(srv, token, path, size, pattern)
        rc = srv.stop()
        if rc != 0:
            raise BenchError("oikosd exited with %d: %s" % (rc, srv.tail()))
        shutil.copy(srv.logfile, os.path.join(logdir, "oikosd.log"))
        if pg:
            res["pg"] = pg_pass(bins, workdir, threads, service, args, logdir)
    finally:
        signal.alarm(0)
        stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    res["elapsed_s"] = time.monotonic() - t_start
    report(res, os.path.join(build, "results.json"))


# The report -----------------------------------------------------------------------

def figures(res):
    """The figures, each with its baseline, ratio, target and verdict."""
    aes = res["aead"]["aes256gcm_available"]
    key = "aes256gcm_decrypt_mbs" if aes else "xchacha20poly1305_decrypt_mbs"
    dec = max(res["aead"][key], res["aead_again"][key])
    conns = res["machine"]["connections"]
    large = "%d MiB" % (res["put_large"]["bytes"] // MIB)
    figs = [
        {"id": "put_small", "what": "PUT 1 KiB, %d conns" % conns, "unit": "writes/s",
         "value": res["put_small"]["ok_rate"], "baseline": res["sqlite"]["commits_per_s"],
         "baseline_what": "SQLite, 1-row durable txns one at a time",
         "kind": "ratio", "target": 5.0},
        {"id": "get_small", "what": "GET 1 KiB, %d conns" % conns, "unit": "req/s",
         "value": res["get_small"]["ok_rate"], "baseline": res["mhd_get"]["ok_rate"],
         "baseline_what": "bare libmicrohttpd, static 1 KiB",
         "kind": "share", "target": 0.40},
        {"id": "put_large", "what": "PUT %s stream" % large, "unit": "MB/s",
         "value": res["put_large"]["mbs"], "baseline": res["dd_mbs"],
         "baseline_what": "dd %s conv=fdatasync" % large, "kind": "share", "target": 0.50},
        {"id": "get_large", "what": "GET %s stream" % large, "unit": "MB/s",
         "value": res["get_large"]["mbs"], "baseline": dec,
         "baseline_what": "%s decrypt, 1 core" % ("AES-256-GCM (OpenSSL)" if aes else "XChaCha20-Poly1305"),
         "kind": "share", "target": 0.50},
        {"id": "rss_put_large", "what": "RSS growth, PUT %s" % large, "unit": "MiB",
         "value": res["put_large"]["rss_growth_kib"] / 1024, "kind": "below", "target": 32},
        {"id": "rss_get_large", "what": "RSS growth, GET %s" % large, "unit": "MiB",
         "value": res["get_large"]["rss_growth_kib"] / 1024, "kind": "below", "target": 32},
    ]
    for f in figs:
        if f["kind"] == "below":
            f["ratio"] = None
            f["met"] = f["value"] < f["target"]
        else:
            f["ratio"] = f["value"] / f["baseline"] if f["baseline"] else None
            f["met"] = f["ratio"] is not None and f["ratio"] >= f["target"]
    return figs


def num(v):
    return "{:,.0f}".format(v) if v >= 100 else "%.1f" % v


def table(figs):
    rows = [("figure", "oikosd", "baseline", "baseline is", "ratio", "target", "met")]
    for f in figs:
        if f["kind"] == "below":
            rows.append((f["what"], "%s %s" % (num(f["value"]), f["unit"]), "", "", "",
                         "< %d MiB" % f["target"], "yes" if f["met"] else "NO"))
            continue
        if f["kind"] == "ratio":
            ratio, target = "%.2fx" % f["ratio"], ">= %gx" % f["target"]
        else:
            ratio, target = "%.0f%%" % (100 * f["ratio"]), ">= %.0f%%" % (100 * f["target"])
        rows.append((f["what"], "%s %s" % (num(f["value"]), f["unit"]),
                     "%s %s" % (num(f["baseline"]), f["unit"]), f["baseline_what"], ratio,
                     target, "yes" if f["met"] else "NO"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def details(res, path):
    a, m = res["aead"], res["machine"]
    b = res["aead_again"]
    lines = ["one core, 1 MiB buffers: AES-256-GCM (OpenSSL, as oikosd) encrypt %s / decrypt "
             "%s MB/s (libsodium's: %s / %s), "
             "XChaCha20-Poly1305 encrypt %s / decrypt %s MB/s; just before the GETs: "
             "AES-256-GCM decrypt %s, XChaCha20-Poly1305 decrypt %s MB/s"
             % (num(a["aes256gcm_encrypt_mbs"]), num(a["aes256gcm_decrypt_mbs"]),
                num(a.get("aes256gcm_libsodium_encrypt_mbs", 0)),
                num(a.get("aes256gcm_libsodium_decrypt_mbs", 0)),
                num(a["xchacha20poly1305_encrypt_mbs"]),
                num(a["xchacha20poly1305_decrypt_mbs"]), num(b["aes256gcm_decrypt_mbs"]),
                num(b["xchacha20poly1305_decrypt_mbs"])),
             "SQLite baseline: %s commits/s, the median of %s (two before oikosd's PUTs, one "
             "after; mean %s ms per commit)"
             % (num(res["sqlite"]["commits_per_s"]),
                ", ".join(num(r["commits_per_s"]) for r in res["sqlite"]["runs"]),
                ", ".join("%.3f" % r["mean_ms"] for r in res["sqlite"]["runs"]))]
    for name, r in (("oikosd PUT 1 KiB", res["put_small"]), ("oikosd GET 1 KiB",
                                                            res["get_small"]),
                    ("static GET 1 KiB", res["mhd_get"])):
        e = r["errors"]
        kept = r["client_connections_seen"] <= m["connections"] + 2
        by = sorted(r["server_cores_by_thread"].items(), key=lambda kv: -kv[1])
        lines.append("%s: %s requests in %.1f s, latency p50 %.1f / p99 %.1f ms, errors "
                     "status %d connect %d read %d write %d timeout %d; CPU: machine %.2f, "
                     "server %.2f (%s), wrk %.2f cores; server wrote %.1f KiB to disk per "
                     "request; %d client connections (keep-alive %s)"
                     % (name, "{:,}".format(r["requests"]), r["duration_us"] / 1e6,
                        r["latency_us"]["p50"] / 1e3, r["latency_us"]["p99"] / 1e3,
                        e["status"], e["connect"], e["read"], e["write"], e["timeout"],
                        r["machine_busy_cores"], r["server_cores"],
                        ", ".join("%s %.2f" % kv for kv in by[:3]), r["wrk_cores"],
                        r["server_disk_written"] / 1024 / max(1, r["requests"]),
                        r["client_connections_seen"],
                        "held" if kept else "DID NOT HOLD"))
    srv = res["mhd_get"]["server"]
    lines.append("static server: accepted %d connections, answered %s requests"
                 % (srv["connections"], "{:,}".format(srv["requests"])))
    ps = res["put_small"]
    if ps.get("objects_stored") is not None:
        acked = ps["requests"] - ps["errors"]["status"]
        lines.append("oikosd PUT 1 KiB: %s objects stored (oikos_objects), %s acknowledged "
                     "by a 2xx: %s" % ("{:,}".format(ps["objects_stored"]), "{:,}".format(acked),
                                       "ok" if ps["objects_stored"] >= acked else "FEWER"))
    for name, r in (("PUT", res["put_large"]), ("GET", res["get_large"]),
                    ("PUT again (warm, after the small objects)", res["put_large_warm"])):
        p = r["rss_growth_parts_kib"]
        if "runs_mbs" in r:
            how = "median of %s MB/s, machine CPU %.2f cores, curl %.2f" % (
                ", ".join(num(x) for x in r["runs_mbs"]), r["machine_busy_cores"],
                r["curl_cores"])
            rss = "VmRSS over all %d GETs" % (len(r["runs_mbs"]) + 1)
        else:
            how = "%s MB/s, wrote %.2f bytes to disk per byte, machine CPU %.2f cores" % (
                num(r["mbs"]), r["server_disk_written"] / r["bytes"], r["machine_busy_cores"])
            rss = "VmRSS"
        lines.append("oikosd %s %d MiB: %.2f s, %s, server %.2f cores; %s %.1f MiB before, "
                     "+%.1f MiB at most (anon %+.1f, file %+.1f, shmem %+.1f; %d samples)"
                     % (name, r["bytes"] // MIB, r["seconds"], how, r["server_cores"], rss,
                        r["rss_before_kib"] / 1024, r["rss_growth_kib"] / 1024,
                        p["RssAnon"] / 1024, p["RssFile"] / 1024, p["RssShmem"] / 1024,
                        r["rss_samples"]))
    lines.append("disk: dd %s MB/s, the median of %s (two before the large PUT, one after); "
                 "data on "
                 "%s (%s); oikosd --threads %d, wrk -t2 -c%d -d%ds; %d CPUs (%.2f busy before "
                 "the run); run took %.0f s"
                 % (num(res["dd_mbs"]), ", ".join(num(x) for x in res["dd_runs_mbs"]),
                    m["device"], m["fstype"], m["oikosd_threads"],
                    m["connections"], m["wrk_seconds"], m["cpus"], m["busy_cores_before"],
                    res["elapsed_s"]))
    lines.append("MB = 10^6 bytes. JSON: %s; wrk outputs and oikosd's log: %s"
                 % (path, os.path.join(os.path.dirname(path), "bench-logs")))
    return lines


def cpu_rows(sq, pg):
    """CPU per request, ms: oikosd's own, and on PostgreSQL the server's too."""
    def per(r):
        return r["server_cores"] * r["duration_us"] / 1e3 / max(1, r["requests"])
    return [("  CPU per request, ms: oikosd", "%.3f" % per(sq), "%.3f" % per(pg),
             "%.2f" % (per(pg) / per(sq)) if per(sq) else ""),
            ("  CPU per request, ms: PostgreSQL", "", "%.3f" % pg["pg_cpu_ms_per_request"], "")]


def pg_table(res):
    """The oikosd figures on SQLite and on PostgreSQL, side by side."""
    q, p = res, res["pg"]
    rows = [("same run, same disk", "SQLite", "PostgreSQL %s" % p["server_version"].split()[0],
             "PG/SQLite")]

    def row(what, a, b, fmt=num):
        rows.append((what, fmt(a), fmt(b), "%.2f" % (b / a) if a else ""))
    conns = res["machine"]["connections"]
    large = "%d MiB" % (q["put_large"]["bytes"] // MIB)
    row("PUT 1 KiB, %d conns: writes/s" % conns, q["put_small"]["ok_rate"],
        p["put_small"]["ok_rate"])
    row("  latency p50, ms", q["put_small"]["latency_us"]["p50"] / 1e3,
        p["put_small"]["latency_us"]["p50"] / 1e3, lambda v: "%.1f" % v)
    row("  latency p99, ms", q["put_small"]["latency_us"]["p99"] / 1e3,
        p["put_small"]["latency_us"]["p99"] / 1e3, lambda v: "%.1f" % v)
    row("  machine busy, cores", q["put_small"]["machine_busy_cores"],
        p["put_small"]["machine_busy_cores"], lambda v: "%.2f" % v)
    rows.extend(cpu_rows(q["put_small"], p["put_small"]))
    row("durable 1-row txns one at a time: commits/s", q["sqlite"]["commits_per_s"],
        p["baseline"]["commits_per_s"])
    row("GET 1 KiB, %d conns: req/s" % conns, q["get_small"]["ok_rate"],
        p["get_small"]["ok_rate"])
    row("  latency p50, ms", q["get_small"]["latency_us"]["p50"] / 1e3,
        p["get_small"]["latency_us"]["p50"] / 1e3, lambda v: "%.1f" % v)
    row("  machine busy, cores", q["get_small"]["machine_busy_cores"],
        p["get_small"]["machine_busy_cores"], lambda v: "%.2f" % v)
    rows.extend(cpu_rows(q["get_small"], p["get_small"]))
    row("PUT %s stream: MB/s" % large, q["put_large"]["mbs"], p["put_large"]["mbs"])
    row("GET %s stream: MB/s" % large, q["get_large"]["mbs"], p["get_large"]["mbs"])
    row("RSS growth, PUT %s: MiB" % large, q["put_large"]["rss_growth_kib"] / 1024,
        p["put_large"]["rss_growth_kib"] / 1024)
    row("RSS growth, GET %s: MiB" % large, q["get_large"]["rss_growth_kib"] / 1024,
        p["get_large"]["rss_growth_kib"] / 1024)
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("PostgreSQL: oikosd's stores in two databases of a private cluster on the same "
                 "disk (fsync and synchronous_commit on); its baseline is pgbench, 1 client, one "
                 "1 KiB INSERT per transaction, the median of %s commits/s; the data database "
                 "held %.0f MiB at the end"
                 % (", ".join(num(r["commits_per_s"]) for r in p["baseline"]["runs"]),
                    p["database_bytes"] / MIB))
    return lines


def report(res, path):
    res["figures"] = figures(res)
    with open(path, "w") as fp:
        json.dump(res, fp, indent=2, sort_keys=True)
        fp.write("\n")
    print()
    print("\n".join(table(res["figures"])))
    print()
    print("\n".join(details(res, path)))
    if res.get("pg"):
        print()
        print("\n".join(pg_table(res)))
    busy = res["machine"]["busy_cores_before"]
    if busy > 0.2:
        print("WARNING: the machine was busy (%.1f cores) when the run started: other work "
              "shares the CPUs and the disk, and the baselines (fsync latency, dd) may be "
              "off by several times; run again on a quiet machine" % busy)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda s, f: sys.exit(143))
    try:
        main()
    except BenchError as e:
        stop_all()
        print("bench: error: %s" % e, file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        stop_all()
        sys.exit(130)
