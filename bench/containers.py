#!/usr/bin/env python3
"""The daemon's images and containers under podman, beside `podman run … /bin/true`.

    python3 bench/containers.py [--runs N] [--bin PATH] [--agent PATH]

Builds the recipe images with packaging/podman/build (tagged for this run and removed at the
end; the Debian base is built once and kept), then prints:
  - the size of each image (podman's figure: the uncompressed layers) and of the binary;
  - for N runs each, interleaved: `podman run --rm` of /bin/true in the Debian base (the
    engine's own cost of a container), and for the scratch, injected (example) and
    runner-contract containers the time from `podman run -d` to the first answered
    GET /version on the published port, then how long `podman stop` takes (with its exit code).
Needs root and podman (packaging/podman/setup), the static daemon (packaging/build-static.sh)
and, for the runner container, the computer-use agent. With BENCH_QUICK=1 the default is 3 runs.
"""

import argparse
import os
import statistics
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from common import QUICK, REPO, figure, free_port, p50_min_max, version_answered

BUILD = REPO / "packaging" / "podman" / "build"
BASE = "localhost/debian-base:bookworm"


def podman(*args, check=True):
    r = subprocess.run(["podman", *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        sys.exit(f"podman {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout.strip()



def time_true():
    t0 = time.perf_counter()
    podman("run", "--rm", "--pull=never", BASE, "/bin/true")
    return time.perf_counter() - t0


def time_container(image, opts, cmd=()):
    """(start to first /version, podman stop duration, exit code) of one container."""
    name = f"bench-{uuid.uuid4().hex[:8]}"
    port = free_port()
    t0 = time.perf_counter()
    podman("run", "-d", "--pull=never", "--name", name, "-p", f"127.0.0.1:{port}:2280", *opts, image, *cmd)
    try:
        deadline = t0 + 30
        while not version_answered(port):
            if time.perf_counter() > deadline:
                sys.exit(f"{image}: no /version within 30 s:\n{podman('logs', name, check=False)}")
            time.sleep(0.002)
        started = time.perf_counter() - t0
        t1 = time.perf_counter()
        podman("stop", "-t", "10", name)
        stopped = time.perf_counter() - t1
        code = int(podman("inspect", "--format", "{{.State.ExitCode}}", name))
        return started, stopped, code
    finally:
        podman("rm", "-f", "-t", "0", name, check=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3 if QUICK else 10)
    ap.add_argument("--bin", default=os.environ.get("DAYTONA_DAEMON_STATIC_BIN",
                                                     str(REPO / "packaging" / "dist" / "daytona-daemon")))
    ap.add_argument("--agent", default=os.environ.get("DAYTONA_COMPUTER_USE_BIN",
                                                       str(REPO / "target" / "release" / "daytona-computer-use")))
    args = ap.parse_args()
    if not os.path.isfile(args.bin):
        sys.exit(f"{args.bin} is missing: run packaging/build-static.sh first")
    tag = f"bench-{os.getpid()}"
    env = {**os.environ, "DAYTONA_IMAGE_TAG": tag, "DAYTONA_DAEMON_STATIC_BIN": args.bin,
           "DAYTONA_COMPUTER_USE_BIN": args.agent}
    images = {
        "base": BASE,
        "daemon": f"localhost/daytona-daemon:{tag}",
        "example": f"localhost/daytona-example:{tag}",
        "runner": f"localhost/daytona-runner-snapshot:{tag}",
    }
    had_base = subprocess.run(["podman", "image", "exists", BASE]).returncode == 0
    t0 = time.perf_counter()
    subprocess.run([str(BUILD), "daemon", "example", "runner"], env=env, check=True)
    build = time.perf_counter() - t0
    runner_opts = [
        "--privileged", "--memory", "256m", "--memory-swap", "256m", "--cpus", "1",
        "-v", f"{Path(args.bin).resolve()}:/usr/local/bin/daytona:ro", "--entrypoint", "/usr/local/bin/daytona",
        "-e", "DAYTONA_SANDBOX_ID=bench", "-e", "DAYTONA_SANDBOX_USER=daytona",
        "-e", "DAYTONA_USER_HOME_AS_WORKDIR=true",
    ]
    if os.path.isfile(args.agent):
        runner_opts += ["-v", f"{Path(args.agent).resolve()}:/usr/local/lib/daytona-computer-use:ro"]
    cases = {
        "scratch": (images["daemon"], ["-e", "DAYTONA_SANDBOX_ID=bench"], ()),
        "example": (images["example"], [], ()),
        "runner": (images["runner"], runner_opts, ("/usr/local/bin/sandbox-start",)),
    }
    try:
        sizes = {k: int(podman("image", "inspect", "--format", "{{.Size}}", v)) for k, v in images.items()}
        trues = []
        results = {k: ([], [], set()) for k in cases}
        for _ in range(args.runs):
            trues.append(time_true())
            for k, (image, opts, cmd) in cases.items():
                started, stopped, code = time_container(image, opts, cmd)
                results[k][0].append(started)
                results[k][1].append(stopped)
                results[k][2].add(code)
    finally:
        for k in ("daemon", "example", "runner"):
            podman("rmi", "-f", images[k], check=False)
    print(f"images (built in {build:.1f} s; the base {'was there' if had_base else 'built or imported'}):")
    print(f"  static binary                                  {os.path.getsize(args.bin) / 1e6:7.1f} MB")
    for k, v in images.items():
        print(f"  {v:<46} {sizes[k] / 1e6:7.1f} MB")
    print(f"runs: {args.runs} each, interleaved")
    print(f"  podman run --rm base /bin/true   {p50_min_max(trues, 7)}")
    for k, (started, stopped, codes) in results.items():
        print(f"  {k:<8} run -d -> first /version  {p50_min_max(started, 7)}")
        print(f"  {k:<8} podman stop              {p50_min_max(stopped, 7)}   exit codes {sorted(codes)}")
    true_ms = statistics.median(trues) * 1000
    for k, (started, _, _) in results.items():
        figure(f"{k} container: podman run -d to first /version p50", statistics.median(started) * 1000,
               true_ms, "ms", "", None, "podman run --rm base /bin/true")
    for k, (_, stopped, _) in results.items():
        figure(f"{k} container: podman stop p50", statistics.median(stopped) * 1000, 0, "ms", "", None)


if __name__ == "__main__":
    main()
