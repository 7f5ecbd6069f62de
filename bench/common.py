"""Helpers shared by the benchmark scripts in this folder (standard library only).

The scripts run as ``python3 bench/<name>.py``; Python puts the script's own folder first on
sys.path, so ``from common import ...`` finds this file whatever the working directory is.
"""

from __future__ import annotations

import base64
import os
import socket
import statistics
import struct
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# What the official SDK sends with every request.
HEADERS = {"Content-Type": "application/json", "X-Daytona-SDK-Version": "0.226.1"}


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_display(first: int = 60) -> int:
    """An X display number from `first` up with neither a socket nor a lock file."""
    for n in range(first, 400):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    raise RuntimeError("no free X display number")


def wait_until(predicate, timeout: float, interval: float = 0.2) -> bool:
    """Polls `predicate` every `interval` seconds; whether it held within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def listening(port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts connections on 127.0.0.1:`port`."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=timeout).close()
        return True
    except OSError:
        return False


def wait_port(port: int, timeout: float = 10.0, proc: subprocess.Popen | None = None,
              what: str = "the server") -> None:
    """Waits until 127.0.0.1:`port` accepts connections; ends the script with a message naming
    `what` when `proc` exits first or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while not listening(port):
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"{what} exited with code {proc.returncode} during start-up")
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not listen on port {port} within {timeout:g} s")
        time.sleep(0.01)


def version_answered(port: int) -> bool:
    """One `GET /version` on its own connection: whether it answered 200 (False when nothing
    accepts the connection yet)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        return data.startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def daemon_env(home, port: int, log_file) -> dict[str, str]:
    """The environment a sandbox gives the toolbox daemon, with the web terminal on a free port
    (the default, 22222, may be taken by another daemon on this machine)."""
    return {"HOME": str(home), "DAYTONA_SANDBOX_ID": "bench", "DAYTONA_TOOLBOX_PORT": str(port),
            "DAYTONA_TERMINAL_PORT": str(free_port()), "DAYTONA_DAEMON_LOG_FILE_PATH": str(log_file),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def start_daemon(binary, base, timeout: float = 20.0, extra_env: dict[str, str] | None = None) -> tuple[subprocess.Popen, int]:
    """Starts the toolbox daemon in `base` (HOME is <base>/home, the log <base>/daemon.log) and
    returns (process, port) once it accepts connections. Empty .bashrc and .zshrc in HOME keep
    shells from running a new-user wizard. stdout stays a pipe for the readiness line; at the
    default log level the daemon writes little else there."""
    port = free_port()
    home = os.path.join(base, "home")
    os.makedirs(home, exist_ok=True)
    for rc in (".zshrc", ".bashrc"):
        Path(home, rc).touch()
    env = {**daemon_env(home, port, os.path.join(base, "daemon.log")), **(extra_env or {})}
    proc = subprocess.Popen([os.path.abspath(binary)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, cwd=base)
    line = proc.stdout.readline()
    if not line.startswith(b"Starting toolbox server"):
        stop(proc)
        raise SystemExit(f"the daemon {binary} did not start (exit code {proc.returncode}): {line!r}")
    wait_port(port, timeout, proc, "the daemon")
    return proc, port


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Terminates `proc` and waits for it; kills it when it outlives `timeout` seconds."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """A memory figure of a process from /proc/<pid>/status, in KiB (VmRSS, VmHWM, ...)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def timed(n: int, fn) -> list[float]:
    """The seconds each of `n` calls of fn() took."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def pcts(values: list[float]) -> tuple[float, float]:
    """(p50, p99) in ms of durations in seconds; p99 is the value at index int(0.99 n)."""
    v = sorted(values)
    return statistics.median(v) * 1000, v[min(len(v) - 1, int(len(v) * 0.99))] * 1000


def p50_min_max(values: list[float], width: int = 8) -> str:
    """'p50 … ms   min … ms   max … ms' of durations in seconds, numbers `width` wide."""
    ms = [v * 1000 for v in values]
    return (f"p50 {statistics.median(ms):{width}.2f} ms   min {min(ms):{width}.2f} ms   "
            f"max {max(ms):{width}.2f} ms")


class Ws:
    """A minimal websocket client: handshake, masked sends, frame reads."""

    def __init__(self, port: int, path: str, protocols=()):
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

    def _need(self, n: int) -> None:
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk

    def recv(self) -> tuple[int, bytes]:
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

    def send(self, data: bytes, opcode: int = 2) -> None:
        """One masked frame; binary unless `opcode` says otherwise (1: text)."""
        mask = os.urandom(4)
        n = len(data)
        head = bytes([0x80 | opcode])
        head += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.s.sendall(head + mask + masked)

    def close(self) -> None:
        self.s.close()


# ---------------------------------------------------------------------------------------------
# The summary lines `bench/all` collects.

QUICK = os.environ.get("BENCH_QUICK") == "1"
"""Set by `bench/all --quick`: each benchmark shrinks its data and repetitions so the whole set
finishes in minutes. The figures stay side by side with their baseline, only noisier."""


def figure(name: str, ours: float, baseline: float, unit: str, target: str, passed: bool | None,
           baseline_name: str = "") -> None:
    """Prints one machine-readable summary line (`FIGURE {json}`) for `bench/all`: the figure's
    `name`, our value and the baseline's (measured in the same run), the unit, the target as
    text (e.g. "ratio <= 1.0x") and whether it is met (None: no target, informational)."""
    import json

    ratio = ours / baseline if baseline else None
    print("FIGURE " + json.dumps({
        "name": name, "ours": round(ours, 4), "baseline": round(baseline, 4),
        "baseline_name": baseline_name, "unit": unit,
        "ratio": None if ratio is None else round(ratio, 4), "target": target, "pass": passed,
    }), flush=True)
