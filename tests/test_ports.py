"""Ports (misc.md §3): `GET /port` lists listeners on IPv4, IPv6-only and dual-stack sockets
started in a session, and forgets them when they stop; `GET /port/{port}/in-use` validates as
the reference does and its localhost probe leaves no connection open on the target.

Listed and checked through the generated toolbox client (the SDK's `Sandbox` has no port
methods); refusals over raw HTTP where the client would not send the value."""

from __future__ import annotations

import json
import random
import socket
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest
from daytona import SessionExecuteRequest
from daytona_toolbox_api_client import PortApi
from daytona_toolbox_api_client.exceptions import BadRequestException

from harness import http as raw
from harness.daemon import wait_for

# A listener that reports what its clients do: every accepted connection is counted, read until
# EOF and then closed, so `open` is how many clients are still connected.
SERVER = textwrap.dedent(
    """
    import json, os, socket, sys, threading
    host, port, v6only, status = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if v6only else 0)
    s.bind((host, port))
    s.listen(16)
    lock = threading.Lock()
    counts = {"accepted": 0, "open": 0}
    def write():
        tmp = status + ".tmp"
        with open(tmp, "w") as f:
            json.dump(counts, f)
        os.replace(tmp, status)
    def serve(c):
        while c.recv(4096):
            pass
        c.close()
        with lock:
            counts["open"] -= 1
            write()
    write()
    while True:
        c, _ = s.accept()
        with lock:
            counts["accepted"] += 1
            counts["open"] += 1
            write()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
    """
)


def port_api(toolbox) -> PortApi:
    return PortApi(toolbox)


def listed(toolbox) -> list[int]:
    ports = port_api(toolbox).get_ports().ports
    assert ports is not None, "ports must never be null"
    return ports


def in_use(toolbox, port: int) -> bool:
    return bool(port_api(toolbox).is_port_in_use(port).is_in_use)


def unused_port(host: str = "127.0.0.1") -> int:
    """A port in 3000..9999 that nothing listens on (checked on both families)."""
    taken = {int(line.split()[1].rsplit(":", 1)[1], 16) for line in _tcp_rows() if line.split()[3] == "0A"}
    for _ in range(200):
        port = random.randint(3000, 9999)
        if port in taken:
            continue
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
                s.bind(("::", port))
            return port
        except OSError:
            continue
    raise AssertionError("no free port in 3000..9999")


def _tcp_rows() -> list[str]:
    rows = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        rows += Path(table).read_text().splitlines()[1:]
    return rows


def established_with(port: int) -> list[str]:
    """ESTABLISHED sockets (state 01) whose local or remote port is `port`."""
    out = []
    for row in _tcp_rows():
        f = row.split()
        ports = {int(f[1].rsplit(":", 1)[1], 16), int(f[2].rsplit(":", 1)[1], 16)}
        if f[3] == "01" and port in ports:
            out.append(row)
    return out


@pytest.fixture
def session(sandbox):
    name = f"ports-{uuid.uuid4().hex[:10]}"
    sandbox.process.create_session(name)
    yield name
    try:
        sandbox.process.delete_session(name)
    except Exception:  # noqa: BLE001 - the test may have deleted it already
        pass


class Server:
    def __init__(self, status: Path):
        self.status = status

    def counts(self) -> dict:
        return json.loads(self.status.read_text())


def start_server(sandbox, session: str, tmp_path: Path, host: str, port: int, v6only: bool) -> Server:
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    status = tmp_path / f"status-{port}.json"
    cmd = f"{sys.executable} {script} {host} {port} {1 if v6only else 0} {status}"
    sandbox.process.execute_session_command(session, SessionExecuteRequest(command=cmd, run_async=True))
    assert wait_for(status.exists, 15), f"the server on [{host}]:{port} did not start"
    return Server(status)


@pytest.mark.parametrize(
    "host,v6only",
    [("127.0.0.1", False), ("0.0.0.0", False), ("::1", True), ("::", False)],
    ids=["ipv4-loopback", "ipv4-any", "ipv6-only-loopback", "dual-stack"],
)
def test_listeners_of_every_family_are_listed_and_in_use_until_stopped(
    sandbox, toolbox, session, tmp_path, host, v6only
):
    port = unused_port()
    assert port not in listed(toolbox)
    assert in_use(toolbox, port) is False
    server = start_server(sandbox, session, tmp_path, host, port, v6only)

    assert wait_for(lambda: port in listed(toolbox), 5), f"{port} ([{host}]) never listed: {listed(toolbox)}"
    ports = listed(toolbox)
    assert ports == sorted(set(ports)), f"not ascending and unique: {ports}"
    assert in_use(toolbox, port) is True
    # The table said LISTEN, so the check needed no connection to the server.
    assert server.counts() == {"accepted": 0, "open": 0}

    sandbox.process.delete_session(session)
    assert wait_for(lambda: port not in listed(toolbox), 5), f"{port} still listed after the server stopped"
    assert wait_for(lambda: not in_use(toolbox, port), 5)


def test_the_daemons_own_dual_stack_port_is_listed(daemon, toolbox):
    # The daemon listens on [::] (IPv6 table only): the reference's IPv4-only scan missed it.
    assert daemon.port in listed(toolbox)


def test_the_probe_closes_its_connection(daemon, toolbox):
    """A listener the last scan has not seen yet is found by the localhost probe, whose
    connection the daemon closes at once (the reference leaked it)."""
    for attempt in range(5):
        port = unused_port()
        listed(toolbox)  # a fresh scan, without the listener below
        srv = socket.create_server(("127.0.0.1", port), reuse_port=False)
        try:
            assert in_use(toolbox, port) is True  # within the scan's half second: the probe
            srv.settimeout(0.5)
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue  # the scan was renewed in between: the table answered; try again
            with conn:
                conn.settimeout(2)
                assert conn.recv(16) == b"", "the probe sent data or kept its connection open"
                # The daemon's side is closed (FIN_WAIT2), ours half-open: neither is ESTABLISHED.
                assert established_with(port) == [], established_with(port)
            return
        finally:
            srv.close()
    pytest.fail("the daemon never probed a fresh listener in 5 attempts")


@pytest.mark.parametrize(
    "port,message",
    [
        ("abc", "invalid port: must be a number between 3000 and 9999"),
        ("3000abc", "invalid port: must be a number between 3000 and 9999"),
        ("0x0BB8", "invalid port: must be a number between 3000 and 9999"),
        ("%203000", "invalid port: must be a number between 3000 and 9999"),
        ("3.5e3", "invalid port: must be a number between 3000 and 9999"),
        ("99999999999999999999", "invalid port: must be a number between 3000 and 9999"),
        ("2999", "port out of range: must be between 3000 and 9999"),
        ("10000", "port out of range: must be between 3000 and 9999"),
        ("-3000", "port out of range: must be between 3000 and 9999"),
        ("0", "port out of range: must be between 3000 and 9999"),
        ("65535", "port out of range: must be between 3000 and 9999"),
    ],
)
def test_in_use_refuses_bad_ports_with_the_contracts_messages(daemon, port, message):
    r = raw.get(daemon.url, f"/port/{port}/in-use")
    assert r.status == 400, r.describe()
    body = r.json()
    assert body["message"] == message, body
    assert body["statusCode"] == 400 and body["code"] == "BAD_REQUEST" and body["source"] == "DAYTONA_DAEMON", body


def test_in_use_accepts_a_sign_and_refuses_undecodable_bytes(daemon, toolbox):
    port = unused_port()
    assert raw.get(daemon.url, f"/port/+{port}/in-use").json() == {"isInUse": False}
    assert raw.get(daemon.url, f"/port/0{port}/in-use").json() == {"isInUse": False}
    r = raw.get(daemon.url, "/port/%FF/in-use")
    assert r.status == 400 and r.json()["source"] == "DAYTONA_DAEMON", r.describe()
    # Through the generated client, which types the port as an int but not its range.
    with pytest.raises(BadRequestException) as e:
        port_api(toolbox).is_port_in_use(2999)
    assert e.value.status == 400
    assert json.loads(e.value.body)["message"] == "port out of range: must be between 3000 and 9999"


def test_port_listing_is_cheap(daemon, toolbox):
    """Concurrent listings share one read of the tables and answer quickly."""
    times: list[float] = []
    errors: list[BaseException] = []

    def worker():
        try:
            for _ in range(10):
                t = time.perf_counter()
                r = raw.get(daemon.url, "/port")
                times.append(time.perf_counter() - t)
                assert r.status == 200 and isinstance(r.json()["ports"], list)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    times.sort()
    assert times[len(times) // 2] < 0.25, f"median /port latency {times[len(times) // 2] * 1000:.1f} ms"
