#!/usr/bin/env python3
"""GET /files/find and GET /files/search beside ripgrep on the same tree, measured in one run.

    python3 bench/files_find.py [--bin PATH] [--files N] [--runs N] [--keep] [--tree DIR]

Builds a temporary tree of N files (default 100 000; mixed sizes from 100 bytes to 512 KiB,
about 1 % binary, the pattern in about 2 % of the files), starts the daemon on it, warms the
page cache, then alternates `GET /files/find` with `rg -F --no-ignore --hidden -n` for the same
literal, and `GET /files/search` with `rg --files --no-ignore --hidden -g` for a glob matching
1 % of the names, and prints the median and best wall time of each and their result counts,
then one FIGURE line per comparison (targets: content <= 1.0x, names <= 1.2x of ripgrep).
Exits non-zero when ripgrep is missing, the daemon fails, or the counts differ. Uses only the
standard library; ripgrep must be installed (Debian: apt-get install ripgrep). BENCH_QUICK=1:
20 000 files, 3 runs. --tree reuses a tree left by --keep (its `tree` folder).

The default binary is the static release build, packaging/dist/daytona-daemon
(packaging/build-static.sh): a debug build says nothing about speed.
"""

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from common import QUICK, REPO, figure, start_daemon, stop

PATTERN = "zq_needle_42"  # cannot occur in the generated text (no digits or '_' there)
GLOB = "*77.*"  # the files numbered ...77: 1 % of them, and no directory (d.., e..)
WORDS = [
    "".join(random.Random(i).choice("abcdefghijklmnopqrstuvwxyz") for _ in range(1 + i % 11))
    for i in range(3000)
]


def make_blob(rng, size):
    """Text of random words in lines of 0-160 characters."""
    lines, total = [], 0
    while total < size:
        n = rng.randrange(0, 24)
        line = " ".join(rng.choice(WORDS) for _ in range(n))
        lines.append(line)
        total += len(line) + 1
    return ("\n".join(lines) + "\n").encode()


def pick_size(rng):
    r = rng.random()
    if r < 0.75:
        return rng.randrange(100, 2048)
    if r < 0.98:
        return rng.randrange(2048, 8192)
    if r < 0.998:
        return rng.randrange(8192, 65536)
    return rng.randrange(65536, 512 * 1024)


def build_tree(root, count, seed=1):
    """count files in dirs of 100 below 2 levels; returns (bytes written, files with the pattern)."""
    rng = random.Random(seed)
    blob = make_blob(rng, 4 * 1024 * 1024)
    needle = PATTERN.encode()
    written = hits = 0
    for i in range(count):
        d = root / f"d{i // 10000:02}" / f"e{(i // 100) % 100:02}"
        if i % 100 == 0:
            d.mkdir(parents=True, exist_ok=True)
        size = pick_size(rng)
        off = rng.randrange(0, len(blob) - size)
        data = blob[off : off + size]
        r = rng.random()
        if r < 0.01:
            data = b"\x7fELF\x00\x01" + data  # binary: NUL in the first 512 bytes
            data = data[: len(data) // 2] + needle + data[len(data) // 2 :]
        elif r < 0.03:
            hits += 1
            for _ in range(rng.randrange(1, 4)):
                at = rng.randrange(0, len(data))
                data = data[:at] + b" " + needle + b" " + data[at:]
        (d / f"f{i:06}.{'txt' if i % 3 else 'log'}").write_bytes(data)
        written += len(data)
    return written, hits


def run_daemon(port, root, endpoint="find", pattern=PATTERN):
    query = urllib.parse.urlencode({"path": str(root), "pattern": pattern})
    t0 = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/files/{endpoint}?{query}", timeout=600) as r:
        body = r.read()
        truncated = r.headers.get("X-Daytona-Results-Truncated")
    elapsed = time.perf_counter() - t0
    data = json.loads(body)
    count = len(data) if endpoint == "find" else len(data["files"])
    if truncated:
        print(f"files_find: note: the daemon truncated its answer ({count} results)")
    return elapsed, count


def run_rg(root, args):
    t0 = time.perf_counter()
    out = subprocess.run(["rg", *args, str(root)], stdout=subprocess.PIPE, check=False).stdout
    elapsed = time.perf_counter() - t0
    return elapsed, out.count(b"\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=str(REPO / "packaging" / "dist" / "daytona-daemon"))
    ap.add_argument("--files", type=int, default=20_000 if QUICK else 100_000)
    ap.add_argument("--runs", type=int, default=3 if QUICK else 5)
    ap.add_argument("--keep", action="store_true", help="leave the generated tree in place")
    ap.add_argument("--tree", help="search this existing tree instead of building one")
    args = ap.parse_args()

    if shutil.which("rg") is None:
        print("files_find: ripgrep (rg) is missing; install it (Debian: apt-get install ripgrep)", file=sys.stderr)
        return 2
    binary = os.path.abspath(args.bin)
    if not os.access(binary, os.X_OK):
        print(f"files_find: no daemon binary at {binary} (build it with packaging/build-static.sh "
              "or pass --bin)", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="files-find-bench-"))
    root = Path(args.tree).resolve() if args.tree else work / "tree"
    proc = None
    try:
        if args.tree:
            print(f"tree: {root} (as found)")
        else:
            t0 = time.perf_counter()
            size, hit_files = build_tree(root, args.files)
            print(f"tree: {args.files} files, {size / 2**20:.0f} MiB, pattern in {hit_files} files "
                  f"(built in {time.perf_counter() - t0:.1f} s) at {root}")
        proc, port = start_daemon(binary, str(work))

        rg_find = ["-F", "--no-ignore", "--hidden", "-n", "-e", PATTERN]
        rg_names = ["--files", "--no-ignore", "--hidden", "-g", GLOB]
        # Warm the page cache and both programs.
        run_rg(root, rg_find)
        run_daemon(port, root)
        run_rg(root, rg_names)
        run_daemon(port, root, "search", GLOB)

        # Alternated, so both sides see the same load from whatever else runs on the machine.
        ours, theirs, search_ours, search_rg = [], [], [], []
        for _ in range(args.runs):
            ours.append(run_daemon(port, root))
            theirs.append(run_rg(root, rg_find))
        for _ in range(args.runs):
            search_ours.append(run_daemon(port, root, "search", GLOB))
            search_rg.append(run_rg(root, rg_names))

        def row(name, runs):
            times = [t for t, _ in runs]
            counts = {c for _, c in runs}
            print(f"{name:<44} median {statistics.median(times) * 1000:8.1f} ms   best {min(times) * 1000:8.1f} ms"
                  f"   results {'/'.join(map(str, sorted(counts)))}")
            return statistics.median(times), counts

        print(f"\ncontent search for {PATTERN!r}, {args.runs} runs each, {os.cpu_count()} CPUs:")
        m_ours, c_ours = row("daemon GET /files/find", ours)
        m_rg, c_rg = row("rg -F --no-ignore --hidden -n", theirs)
        print(f"{'ratio daemon / rg':<44} {m_ours / m_rg:8.2f}x")
        print(f"\nname search for {GLOB!r}, {args.runs} runs each:")
        n_ours, nc_ours = row("daemon GET /files/search", search_ours)
        n_rg, nc_rg = row("rg --files --no-ignore --hidden -g", search_rg)
        print(f"{'ratio daemon / rg':<44} {n_ours / n_rg:8.2f}x")

        figure("files/find content search", m_ours * 1000, m_rg * 1000, "ms", "ratio <= 1.0x",
               m_ours <= m_rg, "rg -F --no-ignore --hidden -n")
        figure("files/search name glob", n_ours * 1000, n_rg * 1000, "ms", "ratio <= 1.2x",
               n_ours <= 1.2 * n_rg, "rg --files --no-ignore --hidden -g")

        if c_ours != c_rg or len(c_ours) != 1:
            print(f"files_find: match counts differ: daemon {c_ours}, rg {c_rg}", file=sys.stderr)
            return 1
        if nc_ours != nc_rg or len(nc_ours) != 1:
            print(f"files_find: name counts differ: daemon {nc_ours}, rg {nc_rg}", file=sys.stderr)
            return 1
        return 0
    finally:
        if proc is not None:
            stop(proc)
        if args.keep and not args.tree:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
