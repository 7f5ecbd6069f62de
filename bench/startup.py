#!/usr/bin/env python3
"""Start-up cost of the daemon beside the cost of starting /bin/true, measured in one run.

    python3 bench/startup.py [--runs N] [--bin PATH]

Prints, for N runs each: fork+exec+exit of /bin/true; daemon start to its readiness line;
daemon start to the first answered GET /version; the daemon's idle RSS one second after
start; and the binary's size.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from common import QUICK, REPO, daemon_env, figure, free_port, p50_min_max, rss_kib, stop, version_answered


def time_true():
    t0 = time.perf_counter()
    subprocess.run(["/bin/true"], check=True)
    return time.perf_counter() - t0



def time_daemon(binary, home, measure_rss=False):
    port = free_port()
    env = daemon_env(home, port, os.path.join(home, "daemon.log"))
    t0 = time.perf_counter()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=home)
    try:
        line = proc.stdout.readline()
        t_ready = time.perf_counter() - t0
        assert line.startswith(b"Starting toolbox server on port"), line
        while not version_answered(port):
            time.sleep(0.0005)
        t_served = time.perf_counter() - t0
        rss = None
        if measure_rss:
            time.sleep(1)
            rss = rss_kib(proc.pid)
        return t_ready, t_served, rss
    finally:
        stop(proc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10 if QUICK else 30)
    ap.add_argument("--bin", default=str(REPO / "packaging" / "dist" / "daytona-daemon"))
    args = ap.parse_args()
    args.bin = os.path.abspath(args.bin)
    if not os.path.isfile(args.bin):
        sys.exit(f"{args.bin} is missing: run packaging/build-static.sh first")
    with tempfile.TemporaryDirectory() as home:
        trues, ready, served, rss = [], [], [], []
        for i in range(args.runs):
            trues.append(time_true())
            r, s, m = time_daemon(args.bin, home, measure_rss=(i < 3))
            ready.append(r)
            served.append(s)
            if m is not None:
                rss.append(m)
    print(f"runs: {args.runs} each, interleaved")
    print(f"  /bin/true fork+exec+exit        {p50_min_max(trues, 7)}")
    print(f"  daemon start -> readiness line  {p50_min_max(ready, 7)}")
    print(f"  daemon start -> first /version  {p50_min_max(served, 7)}")
    print(f"  daemon idle RSS after 1 s       {statistics.median(rss) / 1024:.1f} MiB")
    print(f"  binary size                     {os.path.getsize(args.bin) / 1e6:.2f} MB ({args.bin})")
    true_ms, ready_ms = statistics.median(trues) * 1e3, statistics.median(ready) * 1e3
    figure("start -> readiness line, over /bin/true", ready_ms, true_ms, "ms", "+10 ms",
           ready_ms - true_ms <= 10, "/bin/true fork+exec+exit")
    figure("start -> first /version, over /bin/true", statistics.median(served) * 1e3, true_ms, "ms", "",
           None, "/bin/true fork+exec+exit")
    idle = statistics.median(rss) / 1024
    figure("idle RSS", idle, 0, "MiB", "<= 8 MiB", idle <= 8)


if __name__ == "__main__":
    main()
