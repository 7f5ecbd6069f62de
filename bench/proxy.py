#!/usr/bin/env python3
"""The preview proxy (`/proxy/{port}/…`) beside the same requests sent straight to the target,
measured in one run.

    python3 bench/proxy.py [--bin PATH] [--size BYTES] [--runs N] [--calls N]

Build the daemon first: cargo build --release -p daytona-daemon (or pass --bin).

The target is a small server of this script in its own process: kept-alive connections, a
large body sent with sendfile(2) from a memory file (zero-copy, so the target is never the
bottleneck), and a 2-byte answer for small requests. The client is a raw socket with a
reused receive buffer, the same for both paths.

Prints:
  (a) download throughput of --size bytes (default 1 GiB), median of --runs runs (default 5),
      direct and through the proxy, alternating, and the ratio (target >= 90 %), then the
      daemon's peak RSS;
  (b) latency p50 / p99 of a small GET over one kept-alive connection, --calls calls each
      (default 3000), in interleaved rounds, and what the proxy adds at p50 (target <= 0.3 ms).
With BENCH_QUICK=1 the defaults are 256 MiB, 5 runs and 600 calls, with smaller warm-ups.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from common import QUICK, REPO, figure, pcts, rss_kib, start_daemon, stop

MiB = 1 << 20
CHUNK = 64 * MiB


# ------------------------------------------------------------------------------------- target


def read_head(conn: socket.socket, buf: bytearray) -> bytes | None:
    """The next request head on `conn` (requests here have no body); leftovers stay in buf."""
    while True:
        i = buf.find(b"\r\n\r\n")
        if i >= 0:
            head = bytes(buf[:i])
            del buf[: i + 4]
            return head
        data = conn.recv(65536)
        if not data:
            return None
        buf += data


def serve_connection(conn: socket.socket, fd: int) -> None:
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray()
    with conn:
        while (head := read_head(conn, buf)) is not None:
            path = head.split(b" ", 2)[1]
            if path.startswith(b"/big/"):
                size = int(path.rsplit(b"/", 1)[1])
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                             b"Content-Length: %d\r\n\r\n" % size)
                left = size
                while left:
                    n = min(left, CHUNK)
                    off = 0
                    while off < n:
                        off += os.sendfile(conn.fileno(), fd, off, n - off)
                    left -= n
            else:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")


def target_main() -> None:
    """Runs the target; prints its port on stdout, serves until stdin closes."""
    fd = os.memfd_create("bench-proxy-body")
    os.write(fd, os.urandom(MiB) * (CHUNK // MiB))
    srv = socket.create_server(("127.0.0.1", 0), backlog=128)
    print(srv.getsockname()[1], flush=True)

    def accept():
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=serve_connection, args=(conn, fd), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    sys.stdin.read()


# ------------------------------------------------------------------------------------- client


class Client:
    """One kept-alive connection; GETs read with a reused buffer."""

    def __init__(self, port: int):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray(4 * MiB)
        self.view = memoryview(self.buf)

    def get(self, path: str) -> int:
        """Sends GET `path`, reads the whole answer; returns the body length."""
        self.s.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = self.s.recv(65536)
            if not chunk:
                raise SystemExit(f"connection closed during the answer to {path}")
            got += chunk
        head, _, rest = got.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"GET {path}: {head[:200]!r}")
        length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        left = length - len(rest)
        while left > 0:
            n = self.s.recv_into(self.view, min(left, len(self.buf)))
            if n == 0:
                raise SystemExit(f"connection closed with {left} bytes of {path} to go")
            left -= n
        return length

    def close(self) -> None:
        self.s.close()


def download(port: int, path: str, size: int) -> float:
    """Seconds for one download of `size` bytes on a fresh connection."""
    c = Client(port)
    try:
        t0 = time.perf_counter()
        if c.get(path) != size:
            raise SystemExit(f"{path}: wrong length")
        return time.perf_counter() - t0
    finally:
        c.close()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process `pid` so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def latencies(c: Client, path: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        c.get(path)
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--target":
        target_main()
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(REPO / "target" / "release" / "daytona-daemon"))
    ap.add_argument("--size", type=int, default=256 * MiB if QUICK else 1 << 30,
                    help="download size in bytes (default 1 GiB; 256 MiB with BENCH_QUICK=1)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--calls", type=int, default=600 if QUICK else 3000)
    args = ap.parse_args()
    args.bin = os.path.abspath(args.bin)
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"no daemon binary at {args.bin}: cargo build --release -p daytona-daemon")

    target = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--target"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        tport = int(target.stdout.readline())
        with tempfile.TemporaryDirectory() as base:
            proc, dport = start_daemon(args.bin, base)
            try:
                run(args, tport, dport, proc.pid)
            finally:
                stop(proc, 15)
    finally:
        target.stdin.close()
        stop(target)


def run(args, tport: int, dport: int, daemon_pid: int) -> None:
    direct_big = f"/big/{args.size}"
    proxied_big = f"/proxy/{tport}/big/{args.size}"
    # Warm-up: page in the memory file, open the proxy's pooled connection.
    warm = (64 if QUICK else 256) * MiB
    download(tport, f"/big/{warm}", warm)
    download(dport, f"/proxy/{tport}/big/{warm}", warm)

    direct, proxied = [], []
    daemon_cpu = 0.0
    for _ in range(args.runs):
        direct.append(download(tport, direct_big, args.size))
        before = cpu_seconds(daemon_pid)
        proxied.append(download(dport, proxied_big, args.size))
        daemon_cpu += cpu_seconds(daemon_pid) - before
    mb = args.size / 1e6
    d_rate, p_rate = mb / statistics.median(direct), mb / statistics.median(proxied)
    print(f"download of {args.size / MiB:.0f} MiB, median of {args.runs} runs (MB/s = 10^6 bytes/s):")
    print(f"  straight from the target   {d_rate:9.1f} MB/s   "
          f"(runs {', '.join(f'{mb / t:.0f}' for t in direct)})")
    print(f"  through /proxy/{{port}}      {p_rate:9.1f} MB/s   "
          f"(runs {', '.join(f'{mb / t:.0f}' for t in proxied)})")
    print(f"  ratio                      {p_rate / d_rate * 100:9.1f} %   (target >= 90 %)")
    gib = args.size * args.runs / (1 << 30)
    print(f"  daemon CPU (user + system) {daemon_cpu / gib:9.2f} s per GiB relayed "
          f"(each byte is received and sent again by the daemon; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f})")
    print(f"  daemon peak RSS (VmHWM)    {rss_kib(daemon_pid, 'VmHWM') / 1024:9.1f} MiB after the downloads")

    dc, pc = Client(tport), Client(dport)
    try:
        latencies(dc, "/small", 50 if QUICK else 200)
        latencies(pc, f"/proxy/{tport}/small", 50 if QUICK else 200)
        d_lat, p_lat = [], []
        rounds = 10
        for _ in range(rounds):
            d_lat += latencies(dc, "/small", args.calls // rounds)
            p_lat += latencies(pc, f"/proxy/{tport}/small", args.calls // rounds)
    finally:
        dc.close()
        pc.close()
    d50, d99 = pcts(d_lat)
    p50, p99 = pcts(p_lat)
    print(f"small GET (2-byte body) over one kept-alive connection, {len(d_lat)} calls each (p50 / p99):")
    print(f"  straight from the target   {d50:7.3f} ms / {d99:7.3f} ms")
    print(f"  through /proxy/{{port}}      {p50:7.3f} ms / {p99:7.3f} ms")
    print(f"  added by the proxy         {p50 - d50:+7.3f} ms at p50 (target <= +0.3 ms), {p99 - d99:+7.3f} ms at p99")
    figure(f"proxy download throughput ({args.size / MiB:.0f} MiB)", p_rate, d_rate, "MB/s", ">= 90 %",
           p_rate / d_rate >= 0.9, "straight from the target")
    figure("proxy small GET p50", p50, d50, "ms", "+0.3 ms", p50 - d50 <= 0.3, "straight from the target")


if __name__ == "__main__":
    main()
