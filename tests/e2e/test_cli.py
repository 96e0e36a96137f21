# SPDX-License-Identifier: Apache-2.0
"""End to end: the oikos command-line tool against a real oikosd: operator
commands, sign-up, log-in, backup, listing and restore, progress bars on a
terminal and not elsewhere."""

import json
import os
import pty
import subprocess

import pytest

from oikostest import OIKOS, Server


def run(env, *args, stdin=None, check=True):
    out = subprocess.run([OIKOS] + list(args), env=env, input=stdin, capture_output=True,
                         text=True, timeout=120)
    if check:
        assert out.returncode == 0, (args, out.stdout, out.stderr)
    return out


def run_tty(env, *args):
    """Runs oikos with stdout and stderr on a pseudo-terminal; returns (rc, output)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(OIKOS, [OIKOS] + list(args), env)
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode(errors="replace")


@pytest.fixture
def env(tmp_path):
    e = dict(os.environ)
    e["OIKOS_CONFIG_DIR"] = str(tmp_path / "cfg")
    e["OIKOS_PASSWORD"] = "correct horse battery"
    return e


def test_operator_commands(tmp_path, env):
    s = Server(tmp_path).start()
    try:
        out = run(env, "operator", "status", "--url", s.url, "--json")
        st = json.loads(out.stdout)
        assert st["sealed"] is True and st["initialized"] is False
        out = run(env, "operator", "init", "--url", s.url, "--shares", "3", "--threshold", "2",
                  "--json")
        init = json.loads(out.stdout)
        assert len(init["shares"]) == 3
        out = run(env, "operator", "seal", "--url", s.url, check=False,
                  stdin="")
        assert out.returncode != 0  # no operator token
        env2 = dict(env, OIKOS_OPERATOR_TOKEN=init["operator_token"])
        run(env2, "operator", "seal", "--url", s.url)
        assert json.loads(run(env, "operator", "status", "--url", s.url, "--json").stdout)[
            "sealed"] is True
        bad = init["shares"][0][:-2] + ("AA" if not init["shares"][0].endswith("AA") else "BB")
        out = run(env, "operator", "unseal", "--url", s.url, bad, check=False)
        assert out.returncode == 1 and "share" in out.stderr
        run(env, "operator", "unseal", "--url", s.url, init["shares"][2])
        # the share can come on standard input too
        run(env, "operator", "unseal", "--url", s.url, stdin=init["shares"][0] + "\n")
        assert json.loads(run(env, "operator", "status", "--url", s.url, "--json").stdout)[
            "sealed"] is False
        # a usage error is exit 2
        assert run(env, "operator", "init", "--shares", "x", check=False).returncode == 2
    finally:
        assert s.stop() == 0


def test_backup_ls_restore_round_trip(server, env, tmp_path):
    out = run(env, "signup", "--country", "IN", "--url", server.url)
    account = [w for w in out.stdout.split() if w.startswith("local-")][0]
    token = json.load(open(tmp_path / "cfg" / "session.json"))["token"]
    for svc in ("photos", "contacts"):
        r = server.request("PUT", "/v1/me/consents/" + svc, {"granted": True}, token=token)
        assert r.status == 200
    src = tmp_path / "src"
    (src / "album" / "2026").mkdir(parents=True)
    files = {
        "album/2026/beach.jpg": os.urandom(3 * 1024 * 1024 + 11),
        "album/empty.bin": b"",
        "album/ünïcödé name.txt": "grüße".encode(),
    }
    for name, data in files.items():
        p = src / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    out = subprocess.run([OIKOS, "backup", "photos", "album"], cwd=src, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    # no progress bar when not on a terminal
    assert "ETA" not in out.stderr and "\r" not in out.stderr
    ls = json.loads(run(env, "ls", "photos", "--json").stdout)
    listed = sorted((i["name"], i["size"]) for i in (ls["items"] if isinstance(ls, dict) else ls))
    assert listed == sorted((n, len(d)) for n, d in files.items())
    dest = tmp_path / "restored"
    run(env, "restore", "photos", "--dir", str(dest))
    for name, data in files.items():
        assert (dest / name).read_bytes() == data
        assert (os.stat(dest / name).st_mode & 0o077) == 0
    # log out: the token stops working
    run(env, "logout")
    assert server.request("GET", "/v1/me/data/photos", token=token).status == 401
    out = run(env, "ls", "photos", check=False)
    assert out.returncode == 1
    run(env, "login", "--account", account, "--url", server.url)
    assert run(env, "ls", "photos").returncode == 0


def test_progress_bar_on_a_terminal(server, env, tmp_path):
    run(env, "signup", "--country", "IN", "--url", server.url)
    token = json.load(open(tmp_path / "cfg" / "session.json"))["token"]
    r = server.request("PUT", "/v1/me/consents/photos", {"granted": True}, token=token)
    assert r.status == 200
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(8 * 1024 * 1024))
    rc, text = run_tty(env, "backup", "photos", str(big))
    assert rc == 0, text
    assert "100%" in text or "8.0 MiB" in text or "MiB" in text, text
