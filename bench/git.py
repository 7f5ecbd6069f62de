#!/usr/bin/env python3
"""Git benchmark: clone and status of a large generated repository through the daemon, beside
the git CLI doing the same.

    DAYTONA_DAEMON_BIN=target/release/daytona-daemon python3 bench/git.py \
        [--commits 20000] [--files 50000] [--keep DIR]

Generates (with `git fast-import`, cached in --keep DIR when given) a bare repository with
--commits commits and --files files, then prints in one run:

* clone over file:// — daemon (`POST /git/clone`) vs `git clone`, wall time, and the daemon's
  peak RSS growth during its clone (VmHWM after a reset via /proc/<pid>/clear_refs, falling back
  to sampling VmRSS every 10 ms);
* clone over smart HTTP (`git http-backend` behind tests/harness/git_http.py) — the same;
* `GET /git/status` vs `git status --porcelain` on the clone, after one warm-up each, then
  alternating (median of --status-runs runs each).

Targets: daemon clone within 1.5x of the CLI, daemon RSS growth under 256 MiB, status at or
below the CLI. With BENCH_QUICK=1 the defaults shrink to 200 commits, 20 000 files, no HTTP.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

from common import QUICK, REPO, figure, rss_kib

sys.path.insert(0, str(REPO / "tests"))

from harness.daemon import start_daemon  # noqa: E402
from harness.git_http import GitHttpServer  # noqa: E402

GIT_ENV = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "HOME": "/nonexistent",
}


def make_repo(dest: Path, commits: int, files: int) -> None:
    """A bare repo: the first commit adds `files` files in 500 directories, then each further
    commit changes one file (so history is long and packs are realistic)."""
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(dest)], check=True, env=GIT_ENV)
    proc = subprocess.Popen(["git", "fast-import", "--quiet"], cwd=dest, stdin=subprocess.PIPE, env=GIT_ENV)
    w = proc.stdin
    assert w is not None
    t0 = 1_700_000_000

    def data(b: bytes) -> None:
        w.write(b"data %d\n" % len(b))
        w.write(b)
        w.write(b"\n")

    def path(i: int) -> bytes:
        return b"dir%03d/sub%02d/file%06d.txt" % (i % 500, (i // 500) % 20, i)

    w.write(b"commit refs/heads/main\nmark :1\n")
    w.write(b"committer Bench <bench@example.com> %d +0000\n" % t0)
    data(b"initial import")
    for i in range(files):
        w.write(b"M 100644 inline " + path(i) + b"\n")
        data(b"file %d\n%s\n" % (i, b"x" * (64 + i % 200)))
    for c in range(2, commits + 1):
        w.write(b"commit refs/heads/main\nmark :%d\n" % c)
        w.write(b"committer Bench <bench@example.com> %d +0000\n" % (t0 + c))
        data(b"change %d" % c)
        w.write(b"from :%d\n" % (c - 1))
        i = (c * 7919) % files
        w.write(b"M 100644 inline " + path(i) + b"\n")
        data(b"file %d changed in commit %d\n%s\n" % (i, c, b"y" * (c % 300)))
    w.close()
    if proc.wait() != 0:
        raise SystemExit("git fast-import failed")
    subprocess.run(["git", "gc", "-q"], cwd=dest, check=False, env=GIT_ENV)


class PeakSampler:
    """Peak RSS of a process while a block runs: VmHWM after resetting it, else sampling."""

    def __init__(self, pid: int):
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> "PeakSampler":
        self.base = rss_kib(self.pid)
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            self.hwm = True
        except OSError:
            self.hwm = False
        self.peak = self.base
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.01)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()
        if self.hwm:
            self.peak = max(self.peak, rss_kib(self.pid, "VmHWM"))

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.base) / 1024


def post(url: str, path: str, body: dict, timeout: float = 3600) -> None:
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        r.read()


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--commits", type=int, default=200 if QUICK else 20000)
    ap.add_argument("--files", type=int, default=20000 if QUICK else 50000)
    ap.add_argument("--keep", type=Path, help="cache the generated repository here")
    ap.add_argument("--no-http", action="store_true", default=QUICK)
    ap.add_argument("--status-runs", type=int, default=3 if QUICK else 7)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="gitbench-"))
    try:
        src_root = args.keep or (tmp / "src")
        src_root.mkdir(parents=True, exist_ok=True)
        src = src_root / f"big-{args.commits}-{args.files}.git"
        if not src.exists():
            t = timed(lambda: make_repo(src, args.commits, args.files))
            print(f"generated {src.name} in {t:.1f}s")
        size = sum(p.stat().st_size for p in src.rglob("*") if p.is_file())
        print(f"repository: {args.commits} commits, {args.files} files, {size / 2**20:.1f} MiB on disk")

        d = start_daemon(tmp / "daemon")
        try:
            print(f"daemon idle RSS: {rss_kib(d.proc.pid) / 1024:.1f} MiB")
            rows = []
            remotes = [("file://", f"file://{src}")]
            srv = None
            if not args.no_http:
                srv = GitHttpServer(src_root, None, None).start()
                remotes.append(("http", srv.url(src.name)))
            for label, url in remotes:
                cli_dest = tmp / f"cli-{label.strip(':/')}"
                t_cli = timed(lambda: subprocess.run(["git", "clone", "-q", url, str(cli_dest)], check=True, env=GIT_ENV))
                dm_dest = tmp / f"daemon-{label.strip(':/')}"
                with PeakSampler(d.proc.pid) as s:
                    t_dm = timed(lambda: post(d.url, "/git/clone", {"url": url, "path": str(dm_dest)}))
                rows.append((label, t_dm, t_cli, s.growth_mib))
                shutil.rmtree(cli_dest)
                if label != "file://":
                    shutil.rmtree(dm_dest)
            if srv:
                srv.stop()

            repo = tmp / "daemon-file"
            status_url = f"{d.url}/git/status?path={quote(str(repo))}"

            def dm_status() -> None:
                urllib.request.urlopen(status_url, timeout=600).read()

            def cli_status() -> None:
                subprocess.run(["git", "status", "--porcelain"], cwd=repo, check=True, env=GIT_ENV, capture_output=True)

            # One warm-up each, then alternate so both see the same machine load.
            dm_status()
            cli_status()
            dm_runs, cli_runs = [], []
            with PeakSampler(d.proc.pid) as s:
                for _ in range(args.status_runs):
                    dm_runs.append(timed(dm_status))
                    cli_runs.append(timed(cli_status))
            t_st, t_st_cli = statistics.median(dm_runs), statistics.median(cli_runs)

            print()
            print(f"{'operation':<22}{'daemon s':>10}{'git CLI s':>11}{'ratio':>8}{'daemon RSS +MiB':>17}")
            for label, t_dm, t_cli, growth in rows:
                print(f"{'clone ' + label:<22}{t_dm:>10.2f}{t_cli:>11.2f}{t_dm / t_cli:>8.2f}{growth:>17.1f}")
            print(f"{'status':<22}{t_st:>10.3f}{t_st_cli:>11.3f}{t_st / t_st_cli:>8.2f}{s.growth_mib:>17.1f}")
            print("targets: clone ratio <= 1.5, RSS growth < 256 MiB, status ratio <= 1.0")
            for label, t_dm, t_cli, growth in rows:
                figure(f"git clone {label} ({args.files} files, {args.commits} commits)", t_dm, t_cli, "s",
                       "ratio <= 1.5x", t_dm <= 1.5 * t_cli, "git clone")
            figure(f"git status ({args.files} files)", t_st, t_st_cli, "s", "ratio <= 1.0x",
                   t_st <= t_st_cli, "git status --porcelain")
        finally:
            d.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
