#!/usr/bin/env python3
"""Command latency, session output throughput and session concurrency of the daemon, each beside
a native baseline, measured in one run.

    cargo build --release -p daytona-daemon
    python3 bench/process.py [--bin PATH] [--calls 1000] [--megabytes 200] [--sessions 200]

Prints:
  * p50/p99 of spawning `sh -c true` natively (Python's os.posix_spawn + waitpid: the cost of
    starting a shell, with no HTTP in between), and of spawning the daemon's own shell (zsh
    where installed) with the script on stdin, as the contract runs commands: the floor under
    /process/execute, so the daemon's own share is the difference to it;
  * p50/p99 of POST /process/execute {"command": "true"} and of a synchronous session command
    `true` (POST /process/session/{id}/exec), over N calls each on one kept-alive connection;
  * session output throughput: `head -c <M>M /dev/zero | base64` run as an async session command
    and streamed to the end through the follow websocket, beside the same pipeline into
    `cat >/dev/null` run directly;
  * <S> sessions created and running a command concurrently, with the number of errors.
Then one FIGURE line per target (execute and session command p50 over the native `sh -c true`,
session output throughput against the pipe) and one for execute over its own shell.
BENCH_QUICK=1 shrinks the runs (300 calls, 50 MiB, 50 sessions).
Only the standard library is used (raw HTTP and a minimal websocket reader).
"""

import argparse
import base64
import concurrent.futures
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

from common import HEADERS, QUICK, REPO, figure, pcts, start_daemon, stop


def call(conn, method, path, body=None):
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=HEADERS)
    resp = conn.getresponse()
    data = resp.read()
    return resp.status, data


def native_spawn(n):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        pid = os.posix_spawn("/bin/sh", ["sh", "-c", "true"], os.environ)
        os.waitpid(pid, 0)
        times.append(time.perf_counter() - t0)
    return times


def selected_shell():
    """The shell the daemon runs commands with, chosen as it chooses (zsh, then bash, from
    /etc/shells; else $SHELL; else sh)."""
    try:
        entries = [l for l in open("/etc/shells").read().splitlines() if l and not l.startswith("#")]
    except OSError:
        entries = []
    if not entries:
        return "sh"
    listing = "\n".join(entries)
    for p in ("/usr/bin/zsh", "/bin/zsh", "/usr/bin/bash", "/bin/bash"):
        if p in listing:
            return p
    return os.environ.get("SHELL", "sh")


def native_shell_spawn(n, shell, env):
    """Spawning the daemon's own shell the way the contract runs a command (no arguments, the
    script `true` on stdin), with a PWD that names its directory: the floor under
    /process/execute on this machine."""
    env = {**env, "PWD": os.getcwd()}
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        r, w = os.pipe()
        pid = os.posix_spawn(shell, [shell], env, file_actions=[
            (os.POSIX_SPAWN_DUP2, r, 0), (os.POSIX_SPAWN_CLOSE, r), (os.POSIX_SPAWN_CLOSE, w)])
        os.close(r)
        os.write(w, b"true")
        os.close(w)
        os.waitpid(pid, 0)
        times.append(time.perf_counter() - t0)
    return times


def timed_calls(port, n, path, body, check):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        status, data = call(conn, "POST", path, body)
        times.append(time.perf_counter() - t0)
        check(status, data)
    conn.close()
    return times


def ws_follow_bytes(port, path):
    """Reads a websocket until the close frame; returns (payload bytes, close code)."""
    key = base64.b64encode(os.urandom(16)).decode()
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    s.sendall((f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
               f"X-Daytona-SDK-Version: 0.226.1\r\n\r\n").encode())
    f = s.makefile("rb", buffering=1 << 20)
    status = f.readline()
    assert b" 101 " in status, status
    while f.readline() not in (b"\r\n", b""):
        pass
    total = 0
    while True:
        b0, b1 = f.read(2)
        op, ln = b0 & 0x0F, b1 & 0x7F
        if ln == 126:
            ln = int.from_bytes(f.read(2), "big")
        elif ln == 127:
            ln = int.from_bytes(f.read(8), "big")
        payload = f.read(ln)
        if op == 0x8:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
            s.close()
            return total, code
        if op in (0x0, 0x2):
            total += ln


def throughput(port, megabytes):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    status, _ = call(conn, "POST", "/process/session", {"sessionId": "bench-throughput"})
    assert status == 201, status
    cmd = f"head -c {megabytes}M /dev/zero | base64"
    t0 = time.perf_counter()
    status, data = call(conn, "POST", "/process/session/bench-throughput/exec", {"command": cmd, "runAsync": True})
    assert status == 202, data
    cmd_id = json.loads(data)["cmdId"]
    total, code = ws_follow_bytes(port, f"/process/session/bench-throughput/command/{cmd_id}/logs?follow=true")
    t_session = time.perf_counter() - t0
    assert code == 1000, code
    call(conn, "DELETE", "/process/session/bench-throughput")
    conn.close()
    t0 = time.perf_counter()
    subprocess.run(["sh", "-c", f"{cmd} | cat >/dev/null"], check=True)
    t_pipe = time.perf_counter() - t0
    out_bytes = megabytes * 1024 * 1024 * 4 // 3 * 77 // 76  # base64 with a newline every 76
    return out_bytes, total, t_session, t_pipe


def concurrent_sessions(port, n):
    def one(i):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            name = f"bench-conc-{i}"
            status, data = call(conn, "POST", "/process/session", {"sessionId": name})
            if status != 201:
                return f"create {name}: {status} {data[:200]!r}"
            status, data = call(conn, "POST", f"/process/session/{name}/exec",
                                {"command": f"sleep 1; echo {i}"})
            if status != 200 or json.loads(data).get("stdout") != f"{i}\n":
                return f"exec {name}: {status} {data[:200]!r}"
            status, data = call(conn, "DELETE", f"/process/session/{name}")
            if status != 204:
                return f"delete {name}: {status} {data[:200]!r}"
            return None
        except Exception as e:  # noqa: BLE001
            return f"{i}: {e!r}"
        finally:
            conn.close()

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
        errors = [e for e in pool.map(one, range(n)) if e]
    return errors, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(REPO / "target" / "release" / "daytona-daemon"))
    # QUICK (bench/all --quick) shrinks the runs so the whole script takes well under a minute.
    ap.add_argument("--calls", type=int, default=300 if QUICK else 1000)
    ap.add_argument("--megabytes", type=int, default=50 if QUICK else 200)
    ap.add_argument("--sessions", type=int, default=50 if QUICK else 200)
    args = ap.parse_args()
    args.bin = os.path.abspath(args.bin)
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"no daemon binary at {args.bin}: cargo build --release -p daytona-daemon")

    with tempfile.TemporaryDirectory() as base:
        proc, port = start_daemon(args.bin, base)
        try:
            # Warm-up, so first-call costs do not count.
            native_spawn(20)
            ok200 = lambda st, d: (st == 200) or sys.exit(f"unexpected answer {st}: {d[:200]!r}")  # noqa: E731
            timed_calls(port, 20, "/process/execute", {"command": "true"}, ok200)
            conn = http.client.HTTPConnection("127.0.0.1", port)
            assert call(conn, "POST", "/process/session", {"sessionId": "bench-latency"})[0] == 201
            conn.close()
            timed_calls(port, 20, "/process/session/bench-latency/exec", {"command": "true"}, ok200)

            n = args.calls
            shell = selected_shell()
            shell_env = {**os.environ, "HOME": os.path.join(base, "home")}
            native_shell = pcts(native_shell_spawn(n, shell, shell_env))
            native = pcts(native_spawn(n))
            execute = pcts(timed_calls(port, n, "/process/execute", {"command": "true"}, ok200))
            session = pcts(timed_calls(port, n, "/process/session/bench-latency/exec", {"command": "true"}, ok200))
            print(f"latency over {n} calls (p50 / p99):")
            print(f"  native posix_spawn('sh -c true') + waitpid  {native[0]:7.3f} ms / {native[1]:7.3f} ms")
            print(f"  native posix_spawn('{os.path.basename(shell)}' <<< true) + waitpid"
                  f"{'':{max(0, 14 - len(os.path.basename(shell)))}}{native_shell[0]:7.3f} ms / {native_shell[1]:7.3f} ms"
                  "   (the daemon's shell, fed as the contract feeds it)")
            print(f"  POST /process/execute 'true'               {execute[0]:7.3f} ms / {execute[1]:7.3f} ms"
                  f"   (p50 +{execute[0] - native[0]:.3f} ms over native; target <= +0.5 ms)")
            print(f"  session exec 'true' (sync)                 {session[0]:7.3f} ms / {session[1]:7.3f} ms"
                  f"   (p50 +{session[0] - native[0]:.3f} ms over native; target <= +1 ms)")

            figure("execute p50 overhead", execute[0], native[0], "ms", "+0.5 ms",
                   execute[0] - native[0] <= 0.5, "posix_spawn sh -c true + waitpid")
            figure("execute p50 overhead over its own shell", execute[0], native_shell[0], "ms",
                   "", None, f"posix_spawn {shell} <<< true + waitpid")
            figure("session command p50 overhead", session[0], native[0], "ms", "+1 ms",
                   session[0] - native[0] <= 1.0, "posix_spawn sh -c true + waitpid")

            expected, got, t_session, t_pipe = throughput(port, args.megabytes)
            mb = expected / 1e6
            ratio = (mb / t_session) / (mb / t_pipe)
            print(f"session output throughput, head -c {args.megabytes}M /dev/zero | base64 ({mb:.0f} MB of output):")
            print(f"  plain pipe into cat                        {mb / t_pipe:8.1f} MB/s ({t_pipe:.2f} s)")
            print(f"  session log + follow websocket             {mb / t_session:8.1f} MB/s ({t_session:.2f} s, "
                  f"{got / 1e6:.0f} MB of log received)   {ratio * 100:.0f} % of the pipe; target >= 80 %")
            figure("session output throughput", mb / t_session, mb / t_pipe, "MB/s", ">= 80 %",
                   ratio >= 0.8, "head | base64 | cat >/dev/null")

            errors, t = concurrent_sessions(port, args.sessions)
            print(f"{args.sessions} concurrent sessions (create, sync 'sleep 1; echo i', delete): "
                  f"{len(errors)} errors, {t:.2f} s")
            for e in errors[:10]:
                print(f"  {e}")
        finally:
            stop(proc, 15)


if __name__ == "__main__":
    main()
