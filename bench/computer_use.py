#!/usr/bin/env python3
"""Computer-use agent latency beside the process-spawning tools it replaces, in one run.

    python3 bench/computer_use.py [--runs N] [--bin PATH]

BENCH_QUICK=1 takes 20 runs instead of 100 (and a smaller a11y desktop, see bench/a11y.py).
Prints a FIGURE line for the JPEG p50 (target 8 ms; xwd's raw capture as the baseline).

Starts a private Xvfb (1024x768x24) and the agent (release build, `--listen` on loopback),
then measures N runs each, p50 and p99 side by side:
  * full-screen screenshot through the API (keep-alive HTTP, JSON parsed, base64 decoded) of a
    desktop-like screen (solid background, xclock, xlogo, xeyes):
    `GET /computeruse/screenshot` (PNG) and `/screenshot/compressed?format=jpeg` (JPEG q85);
    baselines `import -window root png:-` (ImageMagick) and `xwd -root -silent`;
  * unchanged screen (ours): the same routes with `If-None-Match` naming the current frame, which
    the agent answers 304 without capturing or encoding (XDamage), beside the full answers;
  * mouse move round trip: `POST /computeruse/mouse/move` (position read back) beside
    `xdotool mousemove X Y`, and `GET /computeruse/mouse/position` beside
    `xdotool getmouselocation`.
If bench/a11y.py exists, its `run()` is called afterwards (the accessibility-tree benchmark).
Needs Xvfb, ImageMagick, x11-apps (xwd) and xdotool.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import QUICK, REPO, figure, free_display, free_port, listening, stop, timed, wait_until

DEFAULT_BIN = REPO / "target" / "release" / "daytona-computer-use"


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))
    return xs[k]


def measure(fn, runs: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    return [t * 1000 for t in timed(runs, fn)]


class Agent:
    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data else {}
        self.conn.request(method, path, body=data, headers=headers)
        r = self.conn.getresponse()
        payload = r.read()
        if r.status != 200:
            raise RuntimeError(f"{method} {path}: {r.status} {payload[:300]!r}")
        return json.loads(payload)

    def raw(self, path: str, headers: dict) -> tuple[int, str | None, bytes]:
        """GET without decoding: status, ETag and the body as it came."""
        self.conn.request("GET", path, headers=headers)
        r = self.conn.getresponse()
        return r.status, r.getheader("ETag"), r.read()


def run_tool(argv: list[str], env: dict) -> None:
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20 if QUICK else 100)
    ap.add_argument("--bin", default=str(DEFAULT_BIN))
    args = ap.parse_args()
    for tool in ("Xvfb", "import", "xwd", "xdotool"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is required")
    if not os.access(args.bin, os.X_OK):
        raise SystemExit(f"agent binary not found: {args.bin} (cargo build --release -p computer-use)")

    n = free_display(150)
    env = {k: v for k, v in os.environ.items() if k not in ("DBUS_SESSION_BUS_ADDRESS",)}
    env["DISPLAY"] = f":{n}"
    procs = []
    try:
        procs.append(subprocess.Popen(["Xvfb", env["DISPLAY"], "-screen", "0", "1024x768x24", "-noreset", "-nolisten", "tcp"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        if not wait_until(lambda: Path(f"/tmp/.X11-unix/X{n}").exists(), 15, 0.05):
            raise SystemExit("Xvfb did not start")
        time.sleep(0.3)
        # Something to look at, like a desktop: a solid background and a few X clients.
        subprocess.run(["xsetroot", "-solid", "#3465a4"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for argv in (["xclock", "-geometry", "300x300+40+40"], ["xlogo", "-geometry", "420x320+420+120"],
                     ["xeyes", "-geometry", "300x200+200+480"]):
            if shutil.which(argv[0]):
                procs.append(subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(0.5)
        port = free_port()
        procs.append(subprocess.Popen([args.bin, "--listen", f"127.0.0.1:{port}"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        if not wait_until(lambda: listening(port, 0.2), 15, 0.05):
            raise SystemExit("agent did not listen")
        agent = Agent(port)

        def shot_png():
            base64.b64decode(agent.call("GET", "/computeruse/screenshot")["screenshot"])

        def shot_jpeg():
            base64.b64decode(agent.call("GET", "/computeruse/screenshot/compressed?format=jpeg&quality=85")["screenshot"])

        i = [0]

        def api_move():
            i[0] += 1
            x, y = 100 + i[0] % 500, 100 + i[0] % 300
            r = agent.call("POST", "/computeruse/mouse/move", {"x": x, "y": y})
            assert (r["x"], r["y"]) == (x, y), r

        def tool_move():
            i[0] += 1
            run_tool(["xdotool", "mousemove", str(100 + i[0] % 500), str(100 + i[0] % 300)], env)

        # 304s first, before the mouse moves (xeyes follows the pointer and would repaint).
        changed = [0]

        def unchanged(path: str):
            tag = [agent.raw(path, {})[1]]

            def fn():
                status, new, body = agent.raw(path, {"If-None-Match": tag[0]})
                if status == 200:
                    # The screen changed in between (xclock ticks once a minute): counted.
                    changed[0] += 1
                    tag[0] = new
                elif status != 304 or body:
                    raise RuntimeError(f"{path}: {status} with {len(body)} bytes")
            return fn

        nm_png = measure(unchanged("/computeruse/screenshot"), args.runs)
        nm_jpeg = measure(unchanged("/computeruse/screenshot/compressed?format=jpeg&quality=85"), args.runs)
        png = measure(shot_png, args.runs)
        jpeg = measure(shot_jpeg, args.runs)
        imp = measure(lambda: run_tool(["import", "-window", "root", "png:-"], env), args.runs)
        xwd = measure(lambda: run_tool(["xwd", "-root", "-silent"], env), args.runs)
        move = measure(api_move, args.runs)
        xmove = measure(tool_move, args.runs)
        pos = measure(lambda: agent.call("GET", "/computeruse/mouse/position"), args.runs)
        xpos = measure(lambda: run_tool(["xdotool", "getmouselocation"], env), args.runs)
        png_size = len(base64.b64decode(agent.call("GET", "/computeruse/screenshot")["screenshot"]))
        jpeg_size = agent.call("GET", "/computeruse/screenshot/compressed?format=jpeg&quality=85")["sizeBytes"]

        def row(name, ours, base_name, base):
            print(f"{name:32} {statistics.median(ours):7.2f} {percentile(ours, 99):7.2f}   "
                  f"{base_name:26} {statistics.median(base):7.2f} {percentile(base, 99):7.2f}   "
                  f"{statistics.median(base) / statistics.median(ours):8.1f}x")

        print(f"computer-use agent vs process-spawning tools, {args.runs} runs each, 1024x768x24 Xvfb (ms)")
        print(f"{'ours':32} {'p50':>7} {'p99':>7}   {'baseline':26} {'p50':>7} {'p99':>7}   {'p50 ratio':>9}")
        row("screenshot PNG (API)", png, "import -window root png:-", imp)
        row("screenshot PNG (API)", png, "xwd -root -silent (raw)", xwd)
        row("screenshot JPEG q85 (API)", jpeg, "import -window root png:-", imp)
        row("screenshot JPEG q85 (API)", jpeg, "xwd -root -silent (raw)", xwd)
        row("mouse move + read back (API)", move, "xdotool mousemove", xmove)
        row("mouse position (API)", pos, "xdotool getmouselocation", xpos)
        print()
        print(f"unchanged screen: If-None-Match of the current frame (ours), {args.runs} runs each (ms)")
        print(f"{'answer':44} {'p50':>7} {'p99':>7}")
        for name, xs in (("304 on /screenshot (PNG route)", nm_png),
                         ("304 on /screenshot/compressed?format=jpeg", nm_jpeg),
                         ("200 full PNG (/screenshot)", png),
                         ("200 full JPEG q85 (/screenshot/compressed)", jpeg)):
            print(f"{name:44} {statistics.median(xs):7.3f} {percentile(xs, 99):7.3f}")
        figure("JPEG screenshot p50 (1024x768)", statistics.median(jpeg), statistics.median(xwd), "ms",
               "p50 <= 8 ms", statistics.median(jpeg) <= 8.0, "xwd -root -silent (raw, unencoded)")
        figure("PNG screenshot p50 (1024x768)", statistics.median(png), statistics.median(imp), "ms", "", None,
               "import -window root png:-")
        if changed[0]:
            print(f"({changed[0]} of the 304 requests found a changed screen and got a frame)")
        print()
        print(f"(API images: PNG {png_size} bytes, JPEG {jpeg_size} bytes; API times include HTTP, JSON and "
              f"base64 decoding in this client; xwd writes the raw 3 MB frame without encoding it)")
    finally:
        for p in reversed(procs):
            stop(p, 5)

    a11y = Path(__file__).with_name("a11y.py")
    if a11y.exists():
        spec = importlib.util.spec_from_file_location("bench_a11y", a11y)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        print()
        mod.run(binary=args.bin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
