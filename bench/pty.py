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
With BENCH_QUICK=1 the defaults are 200 keys and 20 PTYs.
"""

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

from common import HEADERS, QUICK, REPO, Ws, figure, free_port, pcts, rss_kib, start_daemon, stop, wait_port


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
        wait_port(port, proc=proc, what="ttyd")
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
    ap.add_argument("--keys", type=int, default=200 if QUICK else 1000)
    ap.add_argument("--ptys", type=int, default=20 if QUICK else 100)
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
                q50 = 0.0
            else:
                q50, q99 = pcts(tt)
                print(f"keystroke->echo, ttyd websocket ({args.keys} keys):   p50 {q50:.3f} ms  p99 {q99:.3f} ms")
            before, after, active = idle_ptys(port, proc.pid, args.ptys)
            per = (after - before) / args.ptys
            print(f"{args.ptys} idle PTYs ({active} active incl. warm-up): daemon RSS {before} KiB -> {after} KiB, "
                  f"{per:.1f} KiB per PTY (shells excluded)")
            figure("PTY keystroke->echo p50", p50, q50, "ms", "", None,
                   "ttyd" if tt is not None else "ttyd (not installed)")
            figure("daemon RSS per idle PTY", per, 0, "KiB", "", None)
        finally:
            stop(proc)


if __name__ == "__main__":
    main()
