#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Migration benchmark: N accounts x M objects of S bytes moved sg -> in by
`oikos migrate`, with two real oikosd on loopback and a cluster file whose
peer keys are pinned. Prints accounts/s, objects/s and MB/s of the move
alone (the fill is not timed), then checks at the destination that every
account is live with its M objects, and how long after the move the
source's sweeper had removed the moved ciphertext (oikos_purged_versions_total).
Both oikosd run with their default worker threads, the CLI with its default
--jobs and --batch unless given.

    bench/migrate_bench.py BUILD_DIR [--accounts 10000] [--objects 20]
                           [--size 2048] [--jobs N] [--batch N] [--fill-threads 16]

Standalone: needs only BUILD_DIR/oikosd and BUILD_DIR/oikos (a Release
build) and python3. Uses cheap password hashing (as the tests do).
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--accounts", type=int, default=10000)
    ap.add_argument("--objects", type=int, default=20)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--jobs", type=int, default=0, help="batches at once (0: the CLI's default)")
    ap.add_argument("--batch", type=int, default=0, help="accounts per request (0: the CLI's default)")
    ap.add_argument("--fill-threads", type=int, default=16)
    a = ap.parse_args()
    os.environ["OIKOSD"] = os.path.abspath(os.path.join(a.build, "oikosd"))
    os.environ["OIKOS"] = os.path.abspath(os.path.join(a.build, "oikos"))
    from oikostest import Server, data_path, free_ports, metric  # noqa: E402

    tmp = tempfile.mkdtemp(prefix="oikos-migbench-")
    names = ["in", "sg"]
    ports = dict(zip(names, free_ports(2)))
    urls = {n: "http://127.0.0.1:%d" % p for n, p in ports.items()}
    cluster = os.path.join(tmp, "cluster.ini")

    def write(mapping, keys):
        with open(cluster, "w") as f:
            for n in names:
                f.write('[region "%s"]\nurl = %s\ncountries = %s\n' % (n, urls[n], mapping[n]))
                if n in keys:
                    f.write("peer_key = %s\n" % keys[n])

    write({"in": "NP", "sg": "SG IN"}, {})
    servers = {}
    try:
        for n in names:
            s = Server(tmp, region=n, port=ports[n],
                       args=["--cluster", cluster]
                       + (["--threads", str(a.jobs)] if a.jobs > 32 else [])).start()
            init = s.init(1, 1)
            s.token = init["operator_token"]
            servers[n] = s
        keys = {n: servers[n].request("GET", "/v1/sys/health").json()["peer_key"] for n in names}
        write({"in": "NP", "sg": "SG IN"}, keys)
        for n in names:
            servers[n].proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)

        sg = servers["sg"]
        payload = os.urandom(a.size)
        lock = threading.Lock()
        made = []

        def filler(count):
            c = http.client.HTTPConnection("127.0.0.1", sg.port, timeout=120)

            def call(method, path, body=None, token=None, raw=None):
                h = {"Content-Type": "application/json"}
                if token:
                    h["Authorization"] = "Bearer " + token
                data = raw if raw is not None else (json.dumps(body).encode() if body else None)
                c.request(method, path, body=data, headers=h)
                r = c.getresponse()
                out = r.read()
                assert r.status < 300, (r.status, out)
                return json.loads(out) if out else None

            for _ in range(count):
                acct = call("POST", "/v1/accounts",
                            {"country": "IN", "password": "bench password"})["account"]
                tok = call("POST", "/v1/sessions",
                           {"account": acct, "password": "bench password"})["token"]
                call("PUT", "/v1/me/consents/contacts", {"granted": True}, token=tok)
                for j in range(a.objects):
                    call("PUT", data_path("contacts", "c%05d.vcf" % j), token=tok, raw=payload)
                with lock:
                    made.append(acct)

        t0 = time.time()
        per = [a.accounts // a.fill_threads + (i < a.accounts % a.fill_threads)
               for i in range(a.fill_threads)]
        th = [threading.Thread(target=filler, args=(n,)) for n in per if n]
        for t in th:
            t.start()
        for t in th:
            t.join()
        assert len(made) == a.accounts
        print("fill: %d accounts x %d objects of %d B in %.1f s"
              % (a.accounts, a.objects, a.size, time.time() - t0), flush=True)

        write({"in": "NP IN", "sg": "SG"}, keys)
        for n in names:
            servers[n].proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)

        env = dict(os.environ, OIKOS_FROM_TOKEN=sg.token, OIKOS_TO_TOKEN=servers["in"].token)
        t0 = time.time()
        p = subprocess.run([os.environ["OIKOS"], "migrate", "--from", sg.url, "--to",
                            servers["in"].url, "--country", "IN", "--json"]
                           + (["--jobs", str(a.jobs)] if a.jobs else [])
                           + (["--batch", str(a.batch)] if a.batch else []),
                           capture_output=True, text=True, env=env)
        secs = time.time() - t0
        if p.returncode != 0:
            print(p.stdout, p.stderr)
            sys.exit(1)
        out = json.loads(p.stdout)
        assert out["migrated"] == a.accounts and out["left"] == 0, out
        assert out["objects"] == a.accounts * a.objects, out
        mb = out["bytes"] / 1e6
        print("migrate: %d accounts, %d objects, %.1f MB in %.2f s: %.0f accounts/s, "
              "%.0f objects/s, %.1f MB/s (verified: roots agreed, counts checked at the "
              "destination)" % (out["migrated"], out["objects"], mb, secs,
                                out["migrated"] / secs, out["objects"] / secs, mb / secs))
        # the source's sweeper removes the moved ciphertext once the moves pause
        t1 = time.time()
        purged = metric(sg, "oikos_purged_versions_total")
        while purged < out["objects"] and time.time() - t1 < 600:
            time.sleep(0.1)
            purged = metric(sg, "oikos_purged_versions_total")
        print("source: ciphertext of %d of %d moved object versions removed %.1f s after the "
              "move" % (purged, out["objects"], time.time() - t1))
    finally:
        for s in servers.values():
            if s.proc:
                s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
