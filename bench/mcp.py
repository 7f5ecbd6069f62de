#!/usr/bin/env python3
"""What the MCP endpoint and the token check cost, beside the plain toolbox route, in one run.

    cargo build --release -p daytona-daemon
    python3 bench/mcp.py [--bin PATH] [--calls 500]

With BENCH_QUICK=1 the default is 300 calls.

Prints p50/p99 over N calls on one kept-alive connection each:
  * `POST /process/execute {"command": "true"}` (the baseline), beside the same command as the
    MCP tool `execute_command` (`POST /mcp`, a JSON-RPC `tools/call`, stateless, JSON answer):
    the price of the protocol, the schema check and the in-process dispatch;
  * `GET /version` on a daemon without a token, beside one with `DAYTONA_AUTH_TOKEN` answering
    `Authorization: Bearer …` (the constant-time check on every request).
Only the standard library is used.
"""

import argparse
import http.client
import json
import tempfile
import time

from common import HEADERS, QUICK, REPO, figure, pcts, start_daemon, stop

TOKEN = "bench-token-0123456789abcdef"


def timed_calls(port, n, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    data = None if body is None else json.dumps(body)
    times = []
    for _ in range(n + 20):
        t0 = time.perf_counter()
        conn.request(method, path, body=data, headers={**HEADERS, **(headers or {})})
        resp = conn.getresponse()
        payload = resp.read()
        times.append(time.perf_counter() - t0)
        if resp.status != 200:
            raise SystemExit(f"{method} {path}: {resp.status} {payload[:300]!r}")
    conn.close()
    return times[20:], payload


def row(name, times, base=None):
    p50, p99 = pcts(times)
    ratio = "" if base is None else f"   {p50 / pcts(base)[0]:.2f}x"
    print(f"  {name:<52} p50 {p50:7.3f} ms   p99 {p99:7.3f} ms{ratio}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(REPO / "target" / "release" / "daytona-daemon"))
    ap.add_argument("--calls", type=int, default=300 if QUICK else 500)
    a = ap.parse_args()

    with tempfile.TemporaryDirectory() as base:
        proc, port = start_daemon(a.bin, base)
        try:
            direct, _ = timed_calls(port, a.calls, "POST", "/process/execute", {"command": "true"})
            call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                    "params": {"name": "execute_command", "arguments": {"command": "true"}}}
            mcp_headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
            via_mcp, answer = timed_calls(port, a.calls, "POST", "/mcp", call, mcp_headers)
            result = json.loads(answer)["result"]
            assert not result.get("isError") and '"exitCode":0' in result["content"][0]["text"], result
            open_version, _ = timed_calls(port, a.calls, "GET", "/version")
        finally:
            stop(proc)
    with tempfile.TemporaryDirectory() as base:
        proc, port = start_daemon(a.bin, base, extra_env={"DAYTONA_AUTH_TOKEN": TOKEN})
        try:
            secured, _ = timed_calls(port, a.calls, "GET", "/version", headers={"Authorization": f"Bearer {TOKEN}"})
        finally:
            stop(proc)

    print(f"MCP and token check, {a.calls} calls each, one kept-alive connection")
    row("POST /process/execute `true` (baseline)", direct)
    row("MCP tools/call execute_command `true`", via_mcp, direct)
    row("GET /version, no token (baseline)", open_version)
    row("GET /version, Bearer token checked", secured, open_version)
    figure("MCP execute_command `true` p50", pcts(via_mcp)[0], pcts(direct)[0], "ms", "", None,
           "POST /process/execute")
    figure("GET /version p50 with the Bearer token checked", pcts(secured)[0], pcts(open_version)[0], "ms",
           "", None, "GET /version without a token")


if __name__ == "__main__":
    main()
