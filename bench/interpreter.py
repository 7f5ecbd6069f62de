#!/usr/bin/env python3
"""Interpreter round trip: executing `x = 1` in a warm context, ours beside a Jupyter kernel.

    cargo build --release -p daytona-daemon
    python3 -m venv /path/to/benchvenv
    /path/to/benchvenv/bin/pip install -r bench/requirements-interpreter.txt
    /path/to/benchvenv/bin/python bench/interpreter.py [--bin PATH] [--calls 1000]

Prints p50/p99 (ms) of:
  * ours: one execution per websocket, exactly as the SDK's `code_interpreter.run_code` does it:
    a new connection, the upgrade to /process/interpreter/execute, the first message
    `{"code": "x = 1"}` (default context, warmed first), then every frame until the close.
    The client is a minimal raw websocket client from the standard library (no SDK overhead
    on the client side);
  * Jupyter: an ipykernel started and driven by jupyter_client (blocking client):
    `execute("x = 1")`, then wait for the `execute_reply` on the shell channel and the kernel's
    `idle` status on IOPub for that request — the point where a Jupyter client knows that all
    output of the execution has arrived, which is what our close frame means.
Both run the same number of warm-up calls before measuring. The Jupyter part needs
ipykernel and jupyter_client in the interpreter running this script (see
bench/requirements-interpreter.txt); it is reported as missing otherwise.
"""

import argparse
import base64
import json
import os
import socket
import statistics
import struct
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WARMUP = 50


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

    def __init__(self, port, path):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall((f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
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

    def send(self, data, opcode=1):
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


def run_once(port, code):
    """One execution as the SDK does it; returns the close code."""
    ws = Ws(port, "/process/interpreter/execute")
    ws.send(json.dumps({"code": code}).encode())
    try:
        while True:
            op, payload = ws.recv()
            if op == 8:
                return struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
    finally:
        ws.close()


def ours(port, calls):
    for _ in range(WARMUP):
        assert run_once(port, "x = 1") == 1000
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        code = run_once(port, "x = 1")
        times.append(time.perf_counter() - t0)
        assert code == 1000, code
    return times


def jupyter(calls):
    try:
        from jupyter_client.manager import KernelManager
    except ImportError:
        return None
    km = KernelManager(kernel_name="python3")
    km.start_kernel()
    kc = km.blocking_client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)

        def one():
            msg_id = kc.execute("x = 1", store_history=False)
            replied = idle = False
            while not (replied and idle):
                if not replied:
                    reply = kc.get_shell_msg(timeout=10)
                    if reply["parent_header"].get("msg_id") == msg_id:
                        assert reply["content"]["status"] == "ok", reply["content"]
                        replied = True
                if not idle:
                    msg = kc.get_iopub_msg(timeout=10)
                    if (msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status"
                            and msg["content"]["execution_state"] == "idle"):
                        idle = True

        for _ in range(WARMUP):
            one()
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            one()
            times.append(time.perf_counter() - t0)
        return times
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(REPO / "target" / "release" / "daytona-daemon"))
    ap.add_argument("--calls", type=int, default=1000)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as base:
        proc, port = start_daemon(args.bin, base)
        try:
            mine = ours(port, args.calls)
        finally:
            proc.terminate()
            proc.wait(15)
    theirs = jupyter(args.calls)

    print(f"interpreter round trip of `x = 1` in a warm context, {args.calls} calls (ms)")
    p50, p99 = pcts(mine)
    print(f"  daemon websocket (new connection per call, as the SDK): p50 {p50:7.3f}  p99 {p99:7.3f}")
    if theirs is None:
        print("  jupyter (ipykernel + jupyter_client): missing — install bench/requirements-interpreter.txt")
        return
    j50, j99 = pcts(theirs)
    print(f"  jupyter (ipykernel + jupyter_client):                p50 {j50:7.3f}  p99 {j99:7.3f}")
    print(f"  ratio ours/jupyter: p50 {p50 / j50:.2f}  p99 {p99 / j99:.2f}  (target: <= 0.5)")


if __name__ == "__main__":
    main()
