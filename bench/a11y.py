#!/usr/bin/env python3
"""The accessibility tree of a whole xfce4 desktop: the agent's API beside a pyatspi dump.

    cargo build --release -p computer-use
    python3 bench/a11y.py [--runs N] [--bin PATH] [--files N]

Starts a private desktop on a free display (dbus-launch, Xvfb, the AT-SPI bus, startxfce4),
waits until the xfce4 panel shows in the accessibility tree, opens a Thunar window over a folder
of ``--files`` files (so the tree has a realistic size), waits until the tree stops growing,
then times, N runs each:

* ours: ``GET /computeruse/a11y/tree?scope=all`` on the agent (``--listen``), unbounded depth,
  the whole HTTP exchange including the JSON body, after one untimed request (which connects
  to the bus and, as libatspi does, to each application's own socket, turning its cache on);
* pyatspi: Debian's /usr/bin/python3 with pyatspi walking the same tree from the registry root
  and reading the same fields per node (role name, name, description, states, extents for
  Component nodes, action names for Action nodes). "cold" is the first walk of a fresh process
  (imports and the registry connection excluded); "warm" are further walks in one process,
  where libatspi's caches help.

Node counts are printed for both so the comparison is fair. ``run()`` is the entry point for
bench/computer_use.py. Prints a FIGURE line: ours against the cold pyatspi walk, target at most
0.2x its time (5x faster). BENCH_QUICK=1: 5 runs each and no Thunar window.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import QUICK, REPO, figure, free_display, free_port, listening, p50_min_max, wait_until

SYSTEM_PYTHON = "/usr/bin/python3"
ATSPI_LAUNCHERS = ("/usr/libexec/at-spi-bus-launcher", "/usr/lib/at-spi2-core/at-spi-bus-launcher")
TAG_VAR = "DAYTONA_BENCH_A11Y_TAG"

# Walks the tree from the registry root `runs` times; prints one JSON line per walk.
PYATSPI_WALK = r"""
import json, sys, time
import pyatspi
runs = int(sys.argv[1])
desktop = pyatspi.Registry.getDesktop(0)

def walk(acc):
    n = 1
    acc.getRoleName(); acc.name; acc.description; acc.getState().getStates()
    ifaces = acc.get_interfaces()
    if "Component" in ifaces:
        acc.queryComponent().getExtents(pyatspi.DESKTOP_COORDS)
    if "Action" in ifaces:
        action = acc.queryAction()
        [action.getName(i) for i in range(action.nActions)]
    for child in acc:
        if child is not None:
            n += walk(child)
    return n

for _ in range(runs):
    t0 = time.perf_counter()
    nodes = walk(desktop)
    print(json.dumps({"seconds": time.perf_counter() - t0, "nodes": nodes}), flush=True)
"""

XFCE_SESSION_XML = """<?xml version="1.0" encoding="UTF-8"?>
<channel name="xfce4-session" version="1.0">
  <property name="startup" type="empty">
    <property name="ssh-agent" type="empty"><property name="enabled" type="bool" value="false"/></property>
    <property name="gpg-agent" type="empty"><property name="enabled" type="bool" value="false"/></property>
  </property>
</channel>
"""


def parse_dbus_launch(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        for part in line.split(";"):
            part = part.strip()
            if part.startswith("export ") or "=" not in part:
                continue
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip().strip("'\"")
    return out


class XfceDesktop:
    """xfce4 on a private Xvfb with its own session bus; every process carries a tag in its
    environment so the ones that escape their process group (D-Bus-activated services) are
    found and stopped too."""

    def __init__(self, agent_bin: Path):
        self.agent_bin = agent_bin
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-a11y-"))
        self.tag = secrets.token_hex(8)
        self.procs: list[subprocess.Popen] = []
        self.dbus_pid: int | None = None
        self.port = 0

    def spawn(self, argv, name, env=None):
        log = open(self.tmp / f"{name}.log", "ab")
        p = subprocess.Popen(argv, env=env or self.env, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.procs.append(p)
        return p

    def start(self) -> "XfceDesktop":
        for tool in ("Xvfb", "dbus-launch", "startxfce4", "xdpyinfo"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} is needed (xfce4, xvfb, dbus-x11, x11-utils)")
        n = free_display()
        display = f":{n}"
        home = self.tmp / "home"
        xml = home / ".config/xfce4/xfconf/xfce-perchannel-xml/xfce4-session.xml"
        xml.parent.mkdir(parents=True)
        xml.write_text(XFCE_SESSION_XML)
        env = {k: v for k, v in os.environ.items() if k not in ("DBUS_SESSION_BUS_ADDRESS", "DISPLAY")}
        env.update(DISPLAY=display, HOME=str(home))
        env[TAG_VAR] = self.tag
        out = subprocess.run(["dbus-launch", "--sh-syntax"], env=env, capture_output=True, text=True, timeout=10)
        bus = parse_dbus_launch(out.stdout)
        env["DBUS_SESSION_BUS_ADDRESS"] = bus["DBUS_SESSION_BUS_ADDRESS"]
        self.dbus_pid = int(bus.get("DBUS_SESSION_BUS_PID", "0")) or None
        self.env = env
        self.spawn(["Xvfb", display, "-screen", "0", "1280x800x24", "-noreset", "-nolisten", "tcp"], "xvfb")
        ok = wait_until(lambda: subprocess.run(["xdpyinfo"], env=env, capture_output=True).returncode == 0, 15)
        if not ok:
            raise RuntimeError("Xvfb did not come up")
        launcher = next((p for p in ATSPI_LAUNCHERS if os.access(p, os.X_OK)), None)
        if launcher is None:
            raise RuntimeError("at-spi-bus-launcher not found (at-spi2-core)")
        self.spawn([launcher, "--launch-immediately"], "atspi")
        subprocess.run(["dbus-update-activation-environment", "DISPLAY", TAG_VAR], env=env, timeout=10)
        self.spawn(["startxfce4"], "xfce4")
        self.port = free_port()
        self.spawn([str(self.agent_bin), "--listen", f"127.0.0.1:{self.port}"], "agent")
        if not wait_until(lambda: listening(self.port), 15):
            raise RuntimeError(f"agent did not listen; see {self.tmp}/agent.log")
        return self

    def get(self, path: str):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def stop(self) -> None:
        for p in reversed(self.procs):
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        if self.dbus_pid:
            try:
                os.kill(self.dbus_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        # Whatever D-Bus activated (xfconfd, the registry, the a11y bus daemon) carries the tag.
        for _ in range(2):
            for pid in tagged_pids(self.tag):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
        shutil.rmtree(self.tmp, ignore_errors=True)


def tagged_pids(tag: str) -> list[int]:
    needle = f"{TAG_VAR}={tag}".encode()
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if needle in (d / "environ").read_bytes().split(b"\0"):
                    pids.append(int(d.name))
            except OSError:
                pass
    return [p for p in pids if p != os.getpid()]


def count(node) -> int:
    return 1 + sum(count(c) for c in node.get("children", []))


def tree(desk: XfceDesktop, query: str = "scope=all"):
    status, body = desk.get(f"/computeruse/a11y/tree?{query}")
    if status != 200:
        raise RuntimeError(f"tree: HTTP {status}: {body[:300]!r}")
    return json.loads(body)


def wait_for_panel_and_quiet(desk: XfceDesktop, timeout: float = 90) -> None:
    def panel_up():
        try:
            apps = tree(desk, "scope=all&maxDepth=2")["root"].get("children", [])
        except (RuntimeError, OSError):
            return False
        return any(a["name"] == "xfce4-panel" and a.get("children") for a in apps)

    if not wait_until(panel_up, timeout, 0.5):
        raise RuntimeError("the xfce4 panel never appeared in the accessibility tree")
    # Let the rest of the session settle: the same node count three times in a row.
    last, same = -1, 0
    deadline = time.monotonic() + timeout
    while same < 3 and time.monotonic() < deadline:
        n = count(tree(desk)["root"])
        same = same + 1 if n == last else 0
        last = n
        time.sleep(1)


def time_ours(desk: XfceDesktop, runs: int) -> tuple[list[float], int]:
    tree(desk)  # the first request dials the bus; measure the steady state
    times, nodes = [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        status, body = desk.get("/computeruse/a11y/tree?scope=all")
        times.append(time.perf_counter() - t0)
        assert status == 200, body[:300]
        nodes = count(json.loads(body)["root"])
    return times, nodes


def time_pyatspi(desk: XfceDesktop, runs: int, per_process: int) -> tuple[list[float], int]:
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        raise RuntimeError(f"{SYSTEM_PYTHON} with pyatspi is needed (python3-pyatspi)")
    out = subprocess.run([SYSTEM_PYTHON, "-c", PYATSPI_WALK, str(per_process)], env=desk.env,
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"pyatspi walk failed: {out.stderr[-2000:]}")
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    return [r["seconds"] for r in rows][:runs], rows[-1]["nodes"]


def run(runs: int | None = None, binary: str | None = None, files: int | None = None) -> dict:
    runs = runs or (5 if QUICK else 20)
    files = (0 if QUICK else 40) if files is None else files
    binary = Path(binary or os.environ.get("DAYTONA_COMPUTER_USE_BIN")
                  or REPO / "target" / "release" / "daytona-computer-use")
    if not binary.is_file():
        raise SystemExit(f"no agent binary at {binary}: cargo build --release -p computer-use")
    desk = XfceDesktop(binary).start()
    try:
        wait_for_panel_and_quiet(desk)
        if files:
            # A file-manager window over a fixed folder makes the tree a realistic size.
            folder = desk.tmp / "files"
            folder.mkdir()
            for i in range(files):
                (folder / f"file-{i:03}.txt").write_text("x" * i)
            desk.spawn(["thunar", str(folder)], "thunar")
            wait_until(lambda: "file-000.txt" in json.dumps(tree(desk)), 60, 0.5)
            wait_for_panel_and_quiet(desk)
        apps = [a["name"] for a in tree(desk, "scope=all&maxDepth=1")["root"].get("children", [])]
        ours, our_nodes = time_ours(desk, runs)
        cold = []
        cold_nodes = 0
        for _ in range(runs):
            t, cold_nodes = time_pyatspi(desk, 1, 1)
            cold += t
        warm, warm_nodes = time_pyatspi(desk, runs, runs + 1)
        warm = warm[1:] if len(warm) > 1 else warm
    finally:
        desk.stop()
    window = f", a Thunar window over {files} files" if files else ""
    print(f"a11y tree of a whole xfce4 desktop{window} ({len(apps)} applications: {', '.join(apps)}), {runs} runs each")
    print(f"  ours (GET /computeruse/a11y/tree?scope=all)  {p50_min_max(ours)}   nodes {our_nodes}")
    print(f"  pyatspi, fresh process (cold)               {p50_min_max(cold)}   nodes {cold_nodes}")
    print(f"  pyatspi, same process (warm caches)         {p50_min_max(warm)}   nodes {warm_nodes}")
    result = {
        "ours_p50_ms": statistics.median(ours) * 1000,
        "pyatspi_cold_p50_ms": statistics.median(cold) * 1000,
        "pyatspi_warm_p50_ms": statistics.median(warm) * 1000,
        "ours_nodes": our_nodes,
        "pyatspi_nodes": cold_nodes,
    }
    ratio = result["pyatspi_cold_p50_ms"] / result["ours_p50_ms"]
    print(f"  pyatspi cold / ours: {ratio:.1f}x   pyatspi warm / ours: "
          f"{result['pyatspi_warm_p50_ms'] / result['ours_p50_ms']:.1f}x")
    figure("a11y tree vs pyatspi", result["ours_p50_ms"], result["pyatspi_cold_p50_ms"], "ms", "ratio <= 0.2x",
           result["ours_p50_ms"] <= 0.2 * result["pyatspi_cold_p50_ms"], "pyatspi walk, fresh process")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=None, help="runs each (default 20; 5 with BENCH_QUICK=1)")
    ap.add_argument("--bin", default=None, help="agent binary (default: target/release/daytona-computer-use)")
    ap.add_argument("--files", type=int, default=None,
                    help="files in the folder a Thunar window shows (0: no window; default 40, 0 with BENCH_QUICK=1)")
    args = ap.parse_args()
    run(args.runs, args.bin, args.files)


if __name__ == "__main__":
    sys.exit(main())
