"""The request layer as an attacker and a careless client meet it, over raw sockets: every
refusal is the JSON envelope, whatever part of the stack refuses (hyper's parser, the
connection guards, the typed extractors), and idle connections cannot starve the daemon.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from harness.daemon import daemon_binary, free_port


def raw(port: int, data: bytes, timeout: float = 10.0, then_send: bytes | None = None) -> tuple[int, dict, bytes]:
    """Sends `data`, reads one whole response; returns status, headers, body."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        if then_send is not None:
            try:
                s.sendall(then_send)
            except OSError:
                pass  # the daemon answered and closed before reading it all: that is the point
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
        want = int(headers.get("content-length", "0"))
        while len(body) < want:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        return status, headers, body


def envelope(status: int, headers: dict, body: bytes) -> dict:
    assert headers.get("content-type", "").startswith("application/json"), (status, headers, body[:200])
    v = json.loads(body)
    assert v["statusCode"] == status, v
    assert v["source"] == "DAYTONA_DAEMON"
    assert isinstance(v["message"], str) and v["message"], v
    assert "timestamp" in v and "path" in v and "method" in v
    return v


def test_a_declared_body_over_the_limit_is_413_before_it_is_sent(daemon):
    status, headers, body = raw(
        daemon.port,
        b"POST /process/execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000000\r\n\r\n",
        timeout=5,
    )
    assert status == 413
    v = envelope(status, headers, body)
    assert v["code"] == "PAYLOAD_TOO_LARGE"
    assert "64" in v["message"] or "67108864" in v["message"], v


@pytest.mark.deadline(60)
def test_a_chunked_body_over_the_limit_is_413_envelope(daemon):
    chunk = b" " * (1 << 20)
    framed = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(65)) + b"0\r\n\r\n"
    status, headers, body = raw(
        daemon.port,
        b"POST /env HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        timeout=30,
        then_send=framed,
    )
    assert status == 413
    assert envelope(status, headers, body)["code"] == "PAYLOAD_TOO_LARGE"


def test_a_request_target_over_64_kib_is_414_envelope(daemon):
    status, headers, body = raw(daemon.port, b"GET /version?x=" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 414
    envelope(status, headers, body)


@pytest.mark.parametrize(
    "extra",
    [b"X-Big: " + b"a" * 600_000 + b"\r\n", b"".join(b"X-H%d: v\r\n" % i for i in range(200))],
    ids=["huge-header", "too-many-headers"],
)
def test_a_head_too_large_is_431_envelope(daemon, extra):
    status, headers, body = raw(daemon.port, b"GET /version HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n")
    assert status == 431
    envelope(status, headers, body)


def test_an_unparsable_request_is_400_envelope(daemon):
    status, headers, body = raw(daemon.port, b"GET /version HTTP/1.1\r\nBad Header Line\r\n\r\n")
    assert status == 400
    assert envelope(status, headers, body)["code"] == "BAD_REQUEST"


def openapi(daemon) -> dict:
    with urllib.request.urlopen(daemon.url + "/swagger/doc.json", timeout=10) as r:
        return json.loads(r.read())


METHODS = ("get", "post", "put", "delete", "patch")


def test_an_undecodable_id_is_400_envelope_on_every_route(daemon):
    doc = openapi(daemon)
    tried = []
    for path, item in doc["paths"].items():
        if "{" not in path or path.startswith("/computeruse"):
            continue
        target = re.sub(r"\{[^}]+\}", "%FF%FE", path)
        for method in METHODS:
            if method not in item:
                continue
            body = b"{}" if method in ("post", "put", "patch") else b""
            status, headers, resp = raw(
                daemon.port,
                f"{method.upper()} {target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body,
            )
            tried.append(f"{method} {path}")
            assert status == 400, (method, path, status, resp[:300])
            v = envelope(status, headers, resp)
            assert v["code"] == "BAD_REQUEST", v
    assert len(tried) >= 11, tried


def test_a_repeated_query_key_is_400_envelope_on_every_route(daemon):
    doc = openapi(daemon)
    tried = []
    for path, item in doc["paths"].items():
        if path.startswith("/computeruse"):
            continue
        for method in METHODS:
            op = item.get(method)
            if not op:
                continue
            names = [p["name"] for p in op.get("parameters", []) + item.get("parameters", []) if p.get("in") == "query"]
            target = re.sub(r"\{[^}]+\}", "x", path)
            for name in names:
                q = urllib.parse.urlencode([(name, "1"), (name, "1")])
                status, headers, resp = raw(
                    daemon.port,
                    f"{method.upper()} {target}?{q} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode(),
                )
                tried.append(f"{method} {path} {name}")
                assert status == 400, (method, path, name, status, resp[:300])
                assert "duplicate" in envelope(status, headers, resp)["message"], (method, path, name)
    assert len(tried) >= 10, tried


def open_flood(port: int, n: int, first: bytes) -> list[socket.socket]:
    """`n` connections that send `first` (maybe nothing) and then stay silent."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        if first:
            s.sendall(first)
        socks.append(s)
    return socks


@pytest.mark.deadline(120)
@pytest.mark.parametrize("first", [b"", b"G", b"GET /version HTTP/1.1\r\n"], ids=["silent", "one-byte", "half-head"])
def test_stalled_connections_do_not_starve_the_daemon(daemon_factory, first):
    """With the descriptor limit at 256 the daemon serves at most 16 connections (and lets at
    most 2 more linger while they close); 400 clients that connect and stall, before or after
    their first bytes, must not keep a real client (or a process spawn) out, nor run the daemon
    out of descriptors."""
    d = daemon_factory.start(nofile=256)
    idle = []
    try:
        idle = open_flood(d.port, 400, first)
        time.sleep(1.0)
        start = time.monotonic()
        for _ in range(3):
            status, headers, body = raw(d.port, b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n", timeout=15)
            assert status == 200, body
        req = urllib.request.Request(
            d.url + "/process/execute", data=json.dumps({"command": "echo alive"}).encode(), method="POST"
        )
        with urllib.request.urlopen(req, timeout=15) as r:
            assert json.loads(r.read())["result"].strip() == "alive"
        assert time.monotonic() - start < 12
        fds = len(os.listdir(f"/proc/{d.proc.pid}/fd"))
        assert fds < 200, f"the daemon holds {fds} descriptors"
    finally:
        for s in idle:
            s.close()
    log = d.stdout.text() + d.stderr.text()
    assert log.count("accept failed") < 20, log[-3000:]


@pytest.mark.deadline(60)
def test_a_download_in_progress_is_not_taken_for_idle(daemon_factory):
    """A response still being sent keeps its connection: at the cap, flooding connections are
    closed instead of it."""
    d = daemon_factory.start(nofile=256)
    big = d.workdir / "big.bin"
    big.write_bytes(os.urandom(64 << 20))
    s = socket.create_connection(("127.0.0.1", d.port), timeout=30)
    s.sendall(f"GET /files/download?path={big} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    got = s.recv(65536)
    assert got.startswith(b"HTTP/1.1 200"), got[:100]
    total = len(got.partition(b"\r\n\r\n")[2])
    idle = open_flood(d.port, 100, b"")
    try:
        time.sleep(1.0)
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total >= 64 << 20:
                break
        assert total == 64 << 20
    finally:
        s.close()
        for x in idle:
            x.close()


def test_a_bad_log_level_stops_the_daemon_with_exit_2(tmp_path):
    env = {
        "HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
        "DAYTONA_SANDBOX_ID": "t",
        "DAYTONA_TOOLBOX_PORT": str(free_port()),
        "DAYTONA_DAEMON_LOG_FILE_PATH": str(tmp_path / "log"),
        "LOG_LEVEL": "verbose",
    }
    p = subprocess.run([str(daemon_binary())], env=env, capture_output=True, timeout=20, cwd=tmp_path)
    assert p.returncode == 2
    assert b"LOG_LEVEL" in p.stderr + p.stdout
