#!/usr/bin/env python3
"""PTY keystroke latency and the memory cost of idle PTYs, in one run.

    packaging/build-static.sh
    python3 bench/pty.py [--bin PATH] [--keys 1000] [--ptys 100]

Prints:
  * keystroke-to-echo round trip p50/p99 over the PTY websocket
    (/process/pty/create-connect): one byte sent, wait until the terminal echoes it, N times.
    The PTY runs `cat` in canonical mode, so the echo comes from the kernel's line discipline
    and the measurement is the daemon's path (websocket -> PTY -> websocket), not a line editor;
  * the same against `ttyd` (running `cat` on its own PTY) when `ttyd` is on PATH; Debian 12 has
    no ttyd package, so it is reported as missing there;
  * the daemon's RSS growth for P idle PTYs running a login shell, per PTY (the shells' own
    memory is not the daemon's and is excluded).
Only the standard library is used (raw HTTP and a minimal websocket client).
"""

import argparse
import base64
import http.client
import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HEADERS = {"Content-Type": "application/json", "X-Daytona-SDK-Version": "0.226.1"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def start_daemon(binary, base):
    port = free_port()
    home = os.path.join(base, "home")
    os.makedirs(home, exist_ok=True)
    for rc in (".zshrc", ".bashrc"):  # no new-user wizard
        Path(home, rc).touch()
    env = {"HOME": home, "DAYTONA_SANDBOX_ID": "bench", "DAYTONA_TOOLBOX_PORT": str(port),
           "DAYTONA_TERMINAL_PORT": str(free_port()),
           "DAYTONA_DAEMON_LOG_FILE_PATH": os.path.join(base, "daemon.log"), "PATH": os.environ["PATH"]}
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=base)
    line = proc.stdout.readline()
    assert line.startswith(b"Starting toolbox server"), line
    wait_port(port)
    return proc, port


class Ws:
    """A minimal websocket client: handshake, masked sends, frame reads."""

    def __init__(self, port, path, protocols=()):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        proto = f"Sec-WebSocket-Protocol: {', '.join(protocols)}\r\n" if protocols else ""
        self.s.sendall((f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{proto}\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.s.recv(4096)
            assert chunk, "handshake: connection closed"
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk

    def recv(self):
        """(opcode, payload) of the next frame."""
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        n, off = b1 & 0x7F, 2
        if n == 126:
            self._need(4)
            n, off = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, off = struct.unpack(">Q", self.buf[2:10])[0], 10
        self._need(off + n)
        payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
        return b0 & 0x0F, payload

    def send(self, data, opcode=2):
        mask = os.urandom(4)
        n = len(data)
        head = bytes([0x80 | opcode])
        head += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.s.sendall(head + mask + masked)

    def close(self):
        self.s.close()


def pcts(values):
    v = sorted(values)
    return statistics.median(v) * 1000, v[min(len(v) - 1, int(len(v) * 0.99))] * 1000


def drain(ws, quiet=0.5, strip=lambda p: p):
    """Reads until nothing arrives for `quiet` seconds."""
    ws.s.settimeout(quiet)
    try:
        while True:
            ws.recv()
    except (socket.timeout, TimeoutError):
        pass
    finally:
        ws.s.settimeout(None)


def round_trips(ws, n, send, output):
    """Sends one byte at a time and waits for its echo; `output` extracts terminal output from
    a frame (None for other frames)."""
    times = []
    for i in range(n):
        ch = b"abcdefghijklmnopqrstuvwxyz"[i % 26:i % 26 + 1]
        t0 = time.perf_counter()
        send(ch)
        got = b""
        while ch not in got:
            op, payload = ws.recv()
            data = output(op, payload)
            if data:
                got += data
        times.append(time.perf_counter() - t0)
        if i % 500 == 499:  # stay far below the canonical line limit (4095)
            send(b"\x15")  # ^U: kill the line
            drain(ws, 0.2)
    return times


def daemon_round_trips(port, n):
    ws = Ws(port, "/process/pty/create-connect?id=bench-rtt&cols=80&rows=24", ["X-Daytona-Pty-Exit-Control"])
    op, payload = ws.recv()
    assert json.loads(payload)["status"] == "connected", payload
    ws.send(b"exec cat\r")
    drain(ws)
    times = round_trips(ws, n, lambda b: ws.send(b), lambda op, p: p if op == 2 else None)
    ws.close()
    return times


def ttyd_round_trips(n):
    ttyd = shutil.which("ttyd")
    if not ttyd:
        return None
    port = free_port()
    proc = subprocess.Popen([ttyd, "-p", str(port), "-i", "127.0.0.1", "-W", "cat"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        ws = Ws(port, "/ws", ["tty"])
        # ttyd's protocol: a JSON hello, then input prefixed with '0'; output frames start with '0'.
        ws.send(json.dumps({"AuthToken": "", "columns": 80, "rows": 24}).encode(), opcode=1)
        drain(ws)
        times = round_trips(ws, n, lambda b: ws.send(b"0" + b), lambda op, p: p[1:] if p[:1] == b"0" else None)
        ws.close()
        return times
    finally:
        proc.kill()
        proc.wait()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def idle_ptys(port, pid, n):
    conn = http.client.HTTPConnection("127.0.0.1", port)

    def post(path, body):
        conn.request("POST", path, body=json.dumps(body), headers=HEADERS)
        r = conn.getresponse()
        r.read()
        return r.status

    # Warm-up: the first PTY pays for one-time allocations (threads' arenas, runtime tasks).
    assert post("/process/pty", {"id": "warm", "lazyStart": False}) == 201
    time.sleep(1)
    before = rss_kib(pid)
    for i in range(n):
        assert post("/process/pty", {"id": f"idle-{i}", "lazyStart": False}) == 201
    time.sleep(3)  # prompts printed, buffers settled
    after = rss_kib(pid)
    conn.request("GET", "/process/pty", headers=HEADERS)
    listed = json.loads(conn.getresponse().read())["sessions"]
    active = sum(1 for s in listed if s["active"])
    return before, after, active


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=str(REPO / "packaging/dist/daytona-daemon"))
    ap.add_argument("--keys", type=int, default=1000)
    ap.add_argument("--ptys", type=int, default=100)
    args = ap.parse_args()
    binary = os.path.abspath(args.bin)

    with tempfile.TemporaryDirectory() as base:
        proc, port = start_daemon(binary, base)
        try:
            t = daemon_round_trips(port, args.keys)
            p50, p99 = pcts(t)
            print(f"keystroke->echo, daemon websocket ({args.keys} keys): p50 {p50:.3f} ms  p99 {p99:.3f} ms")
            tt = ttyd_round_trips(args.keys)
            if tt is None:
                print("keystroke->echo, ttyd: not measured: ttyd is not installed (no Debian 12 package)")
            else:
                q50, q99 = pcts(tt)
                print(f"keystroke->echo, ttyd websocket ({args.keys} keys):   p50 {q50:.3f} ms  p99 {q99:.3f} ms")
            before, after, active = idle_ptys(port, proc.pid, args.ptys)
            per = (after - before) / args.ptys
            print(f"{args.ptys} idle PTYs ({active} active incl. warm-up): daemon RSS {before} KiB -> {after} KiB, "
                  f"{per:.1f} KiB per PTY (shells excluded)")
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
