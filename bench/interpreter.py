#!/usr/bin/env python3
"""Interpreter round trip: executing `x = 1` in a warm context, ours beside a Jupyter kernel.

    cargo build --release -p daytona-daemon
    python3 -m venv /path/to/benchvenv
    /path/to/benchvenv/bin/pip install -r bench/requirements-interpreter.txt
    /path/to/benchvenv/bin/python bench/interpreter.py [--bin PATH] [--calls 1000]

With BENCH_QUICK=1 the default is 200 calls after 20 warm-up calls (instead of 50).

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
import json
import struct
import tempfile

from common import QUICK, REPO, Ws, figure, pcts, start_daemon, stop, timed

WARMUP = 20 if QUICK else 50


def run_once(port, code):
    """One execution as the SDK does it; returns the close code."""
    ws = Ws(port, "/process/interpreter/execute")
    ws.send(json.dumps({"code": code}).encode(), opcode=1)
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

    def once():
        code = run_once(port, "x = 1")
        assert code == 1000, code

    return timed(calls, once)


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
        return timed(calls, one)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(REPO / "target" / "release" / "daytona-daemon"))
    ap.add_argument("--calls", type=int, default=200 if QUICK else 1000)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as base:
        proc, port = start_daemon(args.bin, base)
        try:
            mine = ours(port, args.calls)
        finally:
            stop(proc, 15)
    theirs = jupyter(args.calls)

    print(f"interpreter round trip of `x = 1` in a warm context, {args.calls} calls (ms)")
    p50, p99 = pcts(mine)
    print(f"  daemon websocket (new connection per call, as the SDK): p50 {p50:7.3f}  p99 {p99:7.3f}")
    if theirs is None:
        print("  jupyter (ipykernel + jupyter_client): missing — install bench/requirements-interpreter.txt")
        # No baseline, no verdict: a failed figure that says what to install, not a silent "-".
        figure("interpreter `x = 1` p50", p50, 0, "ms", "ratio <= 0.5x", False,
               "ipykernel missing: pip install -r bench/requirements-interpreter.txt")
        return
    j50, j99 = pcts(theirs)
    print(f"  jupyter (ipykernel + jupyter_client):                p50 {j50:7.3f}  p99 {j99:7.3f}")
    print(f"  ratio ours/jupyter: p50 {p50 / j50:.2f}  p99 {p99 / j99:.2f}  (target: <= 0.5)")
    figure("interpreter `x = 1` p50", p50, j50, "ms", "ratio <= 0.5x", p50 / j50 <= 0.5,
           "ipykernel + jupyter_client")


if __name__ == "__main__":
    main()
