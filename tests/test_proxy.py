"""The preview proxy, `ANY /proxy/{port}/{path…}` (spec/misc.md §4), end to end over raw HTTP
and WebSocket clients (the SDK has no method for it): targets on IPv4 and on ::1 only, 100 MB
both ways with checksums, server-sent events as they happen, the original percent-encoding of
the path, hop-by-hop and forwarding headers, the redirect of the bare port, errors, the retry on a
stale pooled connection, and a client that leaves in the middle of a download.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import os
import socket
import time

import pytest

from harness import http as raw
from harness.http_targets import (
    BLOCK,
    OneShotConnections,
    WebSocketEcho,
    download_sha256,
    ipv4_target,
    ipv6_only_target,
)

MB100 = 100
# What a 100 MB transfer may add to the daemon's peak RSS: bodies are relayed frame by frame,
# so the growth is a few buffers, far below the size of the transfer.
MAX_PEAK_GROWTH_KIB = 32 * 1024


def conn(daemon, timeout: float = 30.0) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=timeout)


def echo(daemon, port: int, path: str, headers: dict | None = None, method: str = "GET", body=None) -> dict:
    r = raw.request(daemon.url, method, f"/proxy/{port}{path}", headers=headers, body=body)
    assert r.status == 200, r.describe()
    return r.json()


def peak_rss_kib(daemon) -> int:
    for line in open(f"/proc/{daemon.proc.pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/<pid>/status")


def header_values(seen: dict, name: str) -> list[str]:
    return [v for k, v in seen["headers"] if k.lower() == name.lower()]


@pytest.fixture(scope="module")
def v4():
    with ipv4_target() as t:
        yield t


def test_the_path_keeps_its_encoding_and_the_query_is_unchanged(daemon, v4):
    path = "/p/%40at/a%2Fb/%20sp/(paren)/%25"
    query = "q=%2F&r=a+b&s=%40"
    seen = echo(daemon, v4.port, f"{path}?{query}")
    assert seen["requestline"] == f"GET {path}?{query} HTTP/1.1"
    # The bare root and a doubled slash go through as they are too.
    assert echo(daemon, v4.port, "/")["requestline"] == "GET / HTTP/1.1"
    assert echo(daemon, v4.port, "//x")["requestline"] == "GET //x HTTP/1.1"


def test_hop_by_hop_headers_are_dropped_and_forwarding_headers_set(daemon, v4):
    seen = echo(
        daemon,
        v4.port,
        "/headers",
        method="POST",
        body=b"payload",
        headers={
            "Connection": "keep-alive, X-Private",
            "X-Private": "secret",
            "Keep-Alive": "timeout=5",
            "Proxy-Authorization": "Basic eDp5",
            "Proxy-Connection": "keep-alive",
            "TE": "gzip",
            "Upgrade": "h2c",
            "X-Forwarded-For": "203.0.113.7",
            "X-App": "kept",
        },
    )
    names = {k.lower() for k, _ in seen["headers"]}
    for gone in ("x-private", "keep-alive", "proxy-authorization", "proxy-connection", "te", "upgrade"):
        assert gone not in names, (gone, seen["headers"])
    assert header_values(seen, "Host") == [f"localhost:{v4.port}"]
    assert header_values(seen, "X-Forwarded-For") == ["203.0.113.7, 127.0.0.1"]
    assert header_values(seen, "X-Forwarded-Host") == [f"127.0.0.1:{daemon.port}"]
    assert header_values(seen, "X-Forwarded-Proto") == ["http"]
    assert header_values(seen, "X-App") == ["kept"]
    assert seen["body"] == "payload"


def test_the_targets_answer_comes_back_without_its_hop_headers(daemon, v4):
    r = raw.get(daemon.url, f"/proxy/{v4.port}/x")
    assert r.status == 200
    assert r.header("Content-Type") == "application/json"
    # The target named X-Target-Hop in its Connection header: it belongs to that hop only.
    assert r.header("X-Target-Hop") is None, r.describe()
    # A HEAD keeps the target's Content-Length and has no body.
    r = raw.request(daemon.url, "HEAD", f"/proxy/{v4.port}/x")
    assert (r.status, r.header("Content-Length"), r.body) == (200, "1234", b"")


def test_the_targets_bare_404_is_passed_unchanged(daemon, v4):
    r = raw.get(daemon.url, f"/proxy/{v4.port}/bare404")
    assert r.status == 404
    assert r.body == b"" and r.header("Content-Type") is None, r.describe()


def test_the_bare_port_redirects_to_the_directory_form(daemon, v4):
    r = raw.get(daemon.url, f"/proxy/{v4.port}?a=1&b=%2F")
    assert r.status == 301, r.describe()
    assert r.header("Location") == f"/proxy/{v4.port}/?a=1&b=%2F"
    r = raw.request(daemon.url, "POST", f"/proxy/{v4.port}", body=b"x")
    assert r.status == 307, r.describe()
    assert r.header("Location") == f"/proxy/{v4.port}/"


def test_a_target_listening_on_ipv6_loopback_only_is_reached(daemon):
    with ipv6_only_target() as t:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", t.port), timeout=2).close()
        for _ in range(2):  # the second one on the remembered address
            seen = echo(daemon, t.port, "/six")
            assert seen["client"] == "::1"
            assert header_values(seen, "Host") == [f"localhost:{t.port}"]


def test_a_dead_port_is_a_502_envelope_naming_port_and_cause(daemon):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = raw.get(daemon.url, f"/proxy/{port}/anything")
    assert r.status == 502, r.describe()
    assert (r.header("Content-Type") or "").startswith("application/json")
    v = r.json()
    assert v["statusCode"] == 502 and v["code"] == "PROXY_UPSTREAM_FAILED", v
    assert f"localhost:{port}" in v["message"] and "refused" in v["message"], v
    assert v["path"] == f"/proxy/{port}/anything" and v["method"] == "GET", v


@pytest.mark.parametrize("port", ["0", "65536", "http", "80a", "-1"])
def test_a_bad_port_is_a_400_envelope_naming_it(daemon, port):
    r = raw.get(daemon.url, f"/proxy/{port}/x")
    assert r.status == 400, r.describe()
    v = r.json()
    assert v["code"] == "BAD_REQUEST" and f'"{port}"' in v["message"], v


@pytest.mark.deadline(60)
def test_a_100_mb_download_arrives_whole(daemon, v4):
    peak_before = peak_rss_kib(daemon)
    c = conn(daemon)
    try:
        c.request("GET", f"/proxy/{v4.port}/big?blocks={MB100}")
        r = c.getresponse()
        assert r.status == 200
        assert r.getheader("Content-Length") == str(MB100 * BLOCK)
        h = hashlib.sha256()
        total = 0
        while chunk := r.read(BLOCK):
            h.update(chunk)
            total += len(chunk)
    finally:
        c.close()
    assert total == MB100 * BLOCK
    assert h.hexdigest() == download_sha256(MB100, v4.base)
    assert peak_rss_kib(daemon) - peak_before < MAX_PEAK_GROWTH_KIB


@pytest.mark.deadline(60)
def test_a_100_mb_upload_arrives_whole(daemon, v4):
    data = os.urandom(BLOCK)
    h = hashlib.sha256()
    for i in range(MB100):
        h.update(i.to_bytes(8, "big") + data[8:])

    def body():
        for i in range(MB100):
            yield i.to_bytes(8, "big") + data[8:]

    peak_before = peak_rss_kib(daemon)
    c = conn(daemon)
    try:
        c.putrequest("POST", f"/proxy/{v4.port}/upload")
        c.putheader("Content-Length", str(MB100 * BLOCK))
        c.putheader("Content-Type", "application/octet-stream")
        c.endheaders()
        for part in body():
            c.send(part)
        r = c.getresponse()
        got = json.loads(r.read())
    finally:
        c.close()
    assert r.status == 200, got
    assert got == {"length": MB100 * BLOCK, "sha256": h.hexdigest()}
    assert peak_rss_kib(daemon) - peak_before < MAX_PEAK_GROWTH_KIB


def test_a_chunked_upload_is_relayed(daemon, v4):
    parts = [os.urandom(300_000), b"tail"]
    c = conn(daemon)
    try:
        c.request("POST", f"/proxy/{v4.port}/upload", body=iter(parts), encode_chunked=True,
                  headers={"Transfer-Encoding": "chunked"})
        r = c.getresponse()
        got = json.loads(r.read())
    finally:
        c.close()
    whole = b"".join(parts)
    assert got == {"length": len(whole), "sha256": hashlib.sha256(whole).hexdigest()}


def test_server_sent_events_arrive_before_the_response_ends(daemon, v4):
    c = conn(daemon)
    try:
        c.request("GET", f"/proxy/{v4.port}/sse", headers={"Accept": "text/event-stream"})
        r = c.getresponse()
        assert r.status == 200
        assert r.getheader("Content-Type") == "text/event-stream"
        first = b""
        while b"\n\n" not in first:
            first += r.read1(4096)
        got_first = time.monotonic()
        rest = r.read()
    finally:
        c.close()
    assert first.startswith(b"id: 1\ndata: event 1\n\n")
    assert b"data: event 2" in first + rest
    # The first event was in the client's hands while the target was still holding the second
    # back (it waits a second between them), not when the whole response was done.
    assert got_first < v4.events["sent2"], (got_first, v4.events)
    assert v4.events["sent2"] - got_first > 0.5, (got_first, v4.events)


def test_a_websocket_is_tunnelled_both_ways(daemon):
    import aiohttp

    async def talk() -> None:
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(f"http://127.0.0.1:{daemon.port}/proxy/{echo_server.port}/ws?room=1",
                                    timeout=aiohttp.ClientWSTimeout(ws_receive=10)) as ws:
                await ws.send_str("hello through the proxy")
                assert (await ws.receive(timeout=10)).data == "hello through the proxy"
                big = os.urandom(3 * 1024 * 1024)
                await ws.send_bytes(big)
                assert (await ws.receive(timeout=20)).data == big
                for n in range(50):
                    await ws.send_str(f"m{n}")
                for n in range(50):
                    assert (await ws.receive(timeout=10)).data == f"m{n}"

    with WebSocketEcho() as echo_server:
        asyncio.run(talk())
        assert echo_server.handshake_headers["Host"] == f"localhost:{echo_server.port}"
        assert echo_server.handshake_headers["Upgrade"].lower() == "websocket"
    # The daemon serves on after the tunnel closed.
    assert raw.get(daemon.url, "/version").status == 200


def test_a_stale_kept_alive_connection_is_retried(daemon):
    with OneShotConnections() as target:
        c = conn(daemon)
        try:
            answers = []
            for _ in range(3):
                c.request("GET", f"/proxy/{target.port}/again")
                r = c.getresponse()
                answers.append((r.status, r.read().decode()))
        finally:
            c.close()
        # Each later request first met the connection the target had given up on, then was
        # sent again on a new one.
        assert answers == [(200, "connection 1"), (200, "connection 2"), (200, "connection 3")], answers
        assert target.connections == 3


def test_a_client_leaving_mid_download_frees_the_target_and_harms_nothing(daemon, v4):
    s = socket.create_connection(("127.0.0.1", daemon.port), timeout=10)
    s.sendall(f"GET /proxy/{v4.port}/endless HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    got = 0
    while got < 8 * BLOCK:
        got += len(s.recv(1 << 16))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()  # reset, mid-body
    deadline = time.monotonic() + 10
    while "endless_gone" not in v4.events and time.monotonic() < deadline:
        time.sleep(0.05)
    # The proxy dropped its side, so the target's writes failed: nothing keeps streaming into
    # a buffer for nobody.
    assert "endless_gone" in v4.events
    assert raw.get(daemon.url, "/version").status == 200
    assert echo(daemon, v4.port, "/after")["requestline"] == "GET /after HTTP/1.1"
