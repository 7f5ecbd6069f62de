#!/usr/bin/env python3
"""Screen recording: the recorder's CPU share and the frame rate it achieves, beside the same
ffmpeg command run by hand, measured in one run.

    cargo build --release -p daytona-daemon -p computer-use
    python3 bench/recording.py [--bin PATH] [--agent PATH] [--seconds 10] [--rounds 3]
                               [--desktop xfce|xvfb] [--keep]

Starts the daemon with a desktop of 1024x768: by default the full one, brought up through
``POST /computeruse/start`` (the computer-use agent runs Xvfb and xfce4); with ``--desktop xvfb``
a bare Xvfb started here, given to the daemon as its own DISPLAY. A zenity window is opened and
moved across the screen 60 times a second for the whole run by a small X client in this script
(one ConfigureWindow request per step on a single connection, so moving it costs almost
nothing), so every frame the recorder grabs differs from the last.

Each round records ``--seconds`` seconds twice, alternating which goes first:
  * ours: ``POST /computeruse/recordings/start`` … ``POST /computeruse/recordings/stop``;
  * baseline: the daemon's ffmpeg command line, read from /proc/<pid>/cmdline during our run,
    with only the output path replaced, run by hand with the environment the daemon gave it
    (so the same DISPLAY) and stopped the same way, by writing ``q`` to its stdin.
and prints, per round and as medians with the ratio ours/baseline:
  * CPU, as a share of one core over the time from the start request to just before the stop:
    ffmpeg's utime+stime (/proc/<pid>/stat) plus, for ours, what the daemon itself spent in that
    interval supervising it;
  * the frame rate achieved: frames in the file (``ffprobe -count_frames``) over the recording's
    duration (ours: ``durationSeconds`` of the stop answer, which the daemon counts from the
    first frame ffmpeg reports to its exit; baseline: the same span, measured here), and the
    rate of distinct frames (decoded frames whose MD5 differs from the previous one): ffmpeg
    duplicates frames to keep an MP4 at a constant rate when grabbing falls behind, which the
    first figure hides;
  * start latency: ours, the start call, answered once ffmpeg reported its first frame;
    baseline, spawn until ffmpeg's ``-progress`` output, read here as the daemon reads it,
    reports a first frame (without ``-progress``: until the output file has content). The
    daemon's first start also probes ffmpeg (version, encoders); it is printed apart, from a
    short recording made before the rounds;
  * stop latency: ours, the stop call; baseline, writing ``q`` until ffmpeg exited. ffmpeg
    looks at its stdin every 100 ms, so both vary by that much from one recording to the next;
  * file sizes.

Binaries: ``--bin`` (else $DAYTONA_DAEMON_BIN, else the first of target/release, packaging/dist
and target/debug that exists) and ``--agent`` (else $DAYTONA_COMPUTER_USE_BIN, else
target/release or target/debug). A debug build is fine here: ffmpeg does the work.
Needs ffmpeg, ffprobe, Xvfb, xdotool and zenity (and xfce4 for the default desktop).
With BENCH_QUICK=1 the defaults are 4 s recordings and 2 rounds (one of each order).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import (HEADERS, QUICK, REPO, daemon_env, figure, free_display, free_port, stop, wait_port,
                    wait_until)

SCREEN = (1024, 768)
WINDOW = (480, 320)
MOVES_PER_SECOND = 60
CLK_TCK = os.sysconf("SC_CLK_TCK")


def first_existing(*paths: Path) -> Path:
    for p in paths:
        if p.is_file() and os.access(p, os.X_OK):
            return p
    return paths[0]


def default_daemon() -> str:
    env = os.environ.get("DAYTONA_DAEMON_BIN")
    if env:
        return env
    return str(first_existing(REPO / "target" / "release" / "daytona-daemon",
                              REPO / "packaging" / "dist" / "daytona-daemon",
                              REPO / "target" / "debug" / "daytona-daemon"))


def default_agent() -> str:
    env = os.environ.get("DAYTONA_COMPUTER_USE_BIN")
    if env:
        return env
    return str(first_existing(REPO / "target" / "release" / "daytona-computer-use",
                              REPO / "target" / "debug" / "daytona-computer-use"))


# ---------------------------------------------------------------------------------------------
# /proc


def cpu_seconds(pid: int) -> float:
    """utime+stime of a process (all its threads, not its children), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name is in parentheses and may itself hold spaces or parentheses.
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def parent_pid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[1])


def cmdline(pid: int) -> list[str]:
    return [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]]


def environ(pid: int) -> dict[str, str]:
    out = {}
    for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
        k, sep, v = item.decode(errors="replace").partition("=")
        if sep:
            out[k] = v
    return out


def descends_from(pid: int, ancestor: int) -> bool:
    try:
        while pid > 1:
            if pid == ancestor:
                return True
            pid = parent_pid(pid)
    except (OSError, ValueError):
        pass
    return False


def find_recorder(file_path: str, daemon_pid: int) -> int | None:
    """The pid of the daemon's descendant whose command line names `file_path` (its ffmpeg)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            if any(file_path in arg for arg in cmdline(pid)) and descends_from(pid, daemon_pid):
                return pid
        except OSError:
            continue
    return None


# ---------------------------------------------------------------------------------------------
# The moving window


class WindowMover(threading.Thread):
    """Moves one X window back and forth across the screen, MOVES_PER_SECOND steps a second.

    Speaks the X11 protocol itself over the display's Unix socket (the desktops here run without
    access control): the connection setup, then one ConfigureWindow request per step. A window
    manager turns that into a move of the window's frame, as it does for ``xdotool windowmove``;
    a long-lived connection keeps the mover's own cost out of the figures."""

    def __init__(self, display: str, window: int):
        super().__init__(daemon=True)
        number = display.split(":", 1)[1].split(".")[0]
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(f"/tmp/.X11-unix/X{number}")
        # Little-endian, protocol 11.0, no authorization.
        self.sock.sendall(struct.pack("<BxHHHHxx", 0x6C, 11, 0, 0, 0))
        head = self._read(8)
        body = self._read(struct.unpack_from("<H", head, 6)[0] * 4)
        if head[0] != 1:
            reason = body[:head[1]].decode(errors="replace")
            raise SystemExit(f"the X server {display} refused the connection: {reason}")
        self.window = window
        self.running = True
        self.moves = 0
        w, h = WINDOW
        # x, y, width and height (mask 0xF), each value padded to 4 bytes.
        self.sock.sendall(struct.pack("<BxHIHxxiiII", 12, 7, window, 0xF, 0, 0, w, h))

    def _read(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise SystemExit("the X server closed the connection")
            buf += chunk
        return buf

    def run(self) -> None:
        x, y, dx, dy = 0, 0, 9, 7
        max_x, max_y = SCREEN[0] - WINDOW[0], SCREEN[1] - WINDOW[1]
        period = 1 / MOVES_PER_SECOND
        tick = time.monotonic()
        while self.running:
            x, y = x + dx, y + dy
            if not 0 <= x <= max_x:
                dx, x = -dx, min(max(x, 0), max_x)
            if not 0 <= y <= max_y:
                dy, y = -dy, min(max(y, 0), max_y)
            try:
                self.sock.sendall(struct.pack("<BxHIHxxii", 12, 5, self.window, 0x3, x, y))
                # Nothing is asked for; drop whatever errors or events arrive anyway.
                if select.select([self.sock], [], [], 0)[0] and not self.sock.recv(65536):
                    return
            except OSError:
                return
            self.moves += 1
            tick += period
            time.sleep(max(0.0, tick - time.monotonic()))

    def stop(self) -> None:
        self.running = False
        self.join(2)
        self.sock.close()


# ---------------------------------------------------------------------------------------------
# The daemon and the desktop


class Api:
    def __init__(self, port: int):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method: str, path: str, body=None) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body)
        try:
            self.conn.request(method, path, body=data, headers=HEADERS)
            resp = self.conn.getresponse()
        except (http.client.HTTPException, OSError):
            # One fresh connection for a kept-alive one the daemon closed meanwhile.
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            self.conn.request(method, path, body=data, headers=HEADERS)
            resp = self.conn.getresponse()
        return resp.status, resp.read()

    def expect(self, method: str, path: str, body, status: int):
        got, data = self.call(method, path, body)
        if got != status:
            raise SystemExit(f"{method} {path} {json.dumps(body) if body is not None else ''} -> "
                             f"{got} (expected {status}): {data[:2000].decode(errors='replace')}")
        return json.loads(data) if data else None


def start_daemon(binary: str, base: Path, extra: dict[str, str]) -> tuple[subprocess.Popen, int]:
    """Like common.start_daemon, with extra environment (the desktop's), and the daemon's
    stdout drained so a chatty build can never block on it."""
    port = free_port()
    home = base / "home"
    home.mkdir(parents=True, exist_ok=True)
    for rc in (".zshrc", ".bashrc"):
        (home / rc).touch()
    env = daemon_env(home, port, base / "daemon.log")
    env.update(extra)
    proc = subprocess.Popen([os.path.abspath(binary)], env=env, stdout=subprocess.PIPE,
                            stderr=open(base / "daemon.stderr", "wb"), cwd=base)
    line = proc.stdout.readline()
    if not line.startswith(b"Starting toolbox server"):
        stop(proc)
        raise SystemExit(f"the daemon {binary} did not start (exit code {proc.returncode}): {line!r}")
    threading.Thread(target=lambda: proc.stdout.read(), daemon=True).start()
    wait_port(port, 20, proc, "the daemon")
    return proc, port


def children_env(api: Api) -> dict[str, str]:
    """The environment the daemon gives its children (after computer_use.start(): the
    desktop's DISPLAY and session bus)."""
    text = api.expect("POST", "/process/execute", {"command": "env"}, 200)["result"]
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        if sep and k.replace("_", "a").isalnum():
            out[k] = v
    return out


def xdotool(env: dict[str, str], *args: str, timeout: float = 30) -> str:
    return subprocess.run(["xdotool", *args], env=env, capture_output=True, text=True,
                          timeout=timeout).stdout.strip()


def open_window(env: dict[str, str], procs: list, base: Path) -> int:
    """Opens a zenity dialog on the desktop; its X window id."""
    title = f"recording-bench-{os.getpid()}"
    procs.append(subprocess.Popen(
        ["zenity", "--info", "--title", title, "--text", "A window that moves while the screen is recorded.",
         "--width", str(WINDOW[0]), "--height", str(WINDOW[1])],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=open(base / "zenity.log", "wb"), start_new_session=True))
    found = []
    if not wait_until(lambda: found.append(xdotool(env, "search", "--onlyvisible", "--name", title, timeout=5)) or found[-1], 30, 0.2):
        raise SystemExit("the zenity window did not appear within 30 s")
    return int(found[-1].split()[0])


# ---------------------------------------------------------------------------------------------
# Measurements


def probe(path: Path) -> dict:
    """Frames, distinct frames and container duration of a recording."""
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                          "-show_entries", "stream=nb_read_frames,codec_name,width,height,pix_fmt:format=duration",
                          "-of", "json", str(path)], capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise SystemExit(f"ffprobe could not read {path}: {out.stderr.strip()[-500:]}")
    info = json.loads(out.stdout)
    stream = info["streams"][0]
    md5 = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v:0", "-f", "framemd5", "-"],
                         capture_output=True, text=True, timeout=300).stdout
    distinct, last = 0, None
    for line in md5.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        digest = line.rsplit(",", 1)[-1].strip()
        distinct += digest != last
        last = digest
    return {"frames": int(stream.get("nb_read_frames", 0)), "distinct": distinct,
            "container": float(info.get("format", {}).get("duration", 0) or 0),
            "video": f"{stream.get('codec_name')} {stream.get('width')}x{stream.get('height')} {stream.get('pix_fmt')}"}


def sleep_until(deadline: float) -> None:
    time.sleep(max(0.0, deadline - time.perf_counter()))


def run_ours(api: Api, daemon_pid: int, seconds: float, label: str) -> dict:
    d0 = cpu_seconds(daemon_pid)
    t0 = time.perf_counter()
    rec = api.expect("POST", "/computeruse/recordings/start", {"label": label}, 201)
    started = time.perf_counter()
    if rec.get("status") != "recording":
        raise SystemExit(f"POST /computeruse/recordings/start answered status {rec.get('status')!r}, not 'recording': {rec}")
    pid = find_recorder(rec["filePath"], daemon_pid)
    if pid is None:
        raise SystemExit(f"no process of the daemon names {rec['filePath']} while it records: {rec}")
    argv, env = cmdline(pid), environ(pid)
    sleep_until(t0 + seconds)
    try:
        f1 = cpu_seconds(pid)
    except OSError:
        raise SystemExit(f"the daemon's ffmpeg (pid {pid}) exited while recording: "
                         f"{api.call('GET', '/computeruse/recordings/' + rec['id'])}")
    d1 = cpu_seconds(daemon_pid)
    t1 = time.perf_counter()
    done = api.expect("POST", "/computeruse/recordings/stop", {"id": rec["id"]}, 200)
    t2 = time.perf_counter()
    if done.get("status") != "completed" or not done.get("durationSeconds"):
        raise SystemExit(f"POST /computeruse/recordings/stop answered a recording that is not completed "
                         f"with a duration: {done}")
    path = Path(done["filePath"])
    wall = t1 - t0
    return {"argv": argv, "env": env, "path": path, "ffmpeg_cpu": f1 / wall, "daemon_cpu": (d1 - d0) / wall,
            "cpu": (f1 + d1 - d0) / wall, "start": started - t0, "stop": t2 - t1,
            "duration": float(done.get("durationSeconds") or 0), "size": path.stat().st_size,
            "reported_size": done.get("sizeBytes"), "record": done, **probe(path)}


class Progress(threading.Thread):
    """Reads ffmpeg's ``-progress`` output (``key=value`` lines) as the daemon does: notes when
    the first frame is reported and keeps the last value of each key."""

    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream = stream
        self.first_frame = threading.Event()
        self.first_frame_at = 0.0
        self.values: dict[str, str] = {}

    def run(self) -> None:
        for raw in iter(self.stream.readline, b""):
            key, sep, value = raw.decode(errors="replace").strip().partition("=")
            if not sep:
                continue
            self.values[key] = value
            if key == "frame" and value.isdigit() and int(value) > 0 and not self.first_frame.is_set():
                self.first_frame_at = time.perf_counter()
                self.first_frame.set()


def run_baseline(argv: list[str], env: dict[str, str], original: Path, out: Path, seconds: float,
                 stop_timeout: float) -> dict:
    if not any(str(original) in a for a in argv):
        raise SystemExit(f"the output path {original} is not in the daemon's ffmpeg command: {argv}")
    argv = [a.replace(str(original), str(out)) for a in argv]
    log = out.with_suffix(".stderr")
    with open(log, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
    progress = Progress(proc.stdout)
    progress.start()
    # Started as the daemon's start answers: once ffmpeg reports its first frame when it reports
    # progress on stdout, else once the output file has content.
    target = argv[argv.index("-progress") + 1] if "-progress" in argv[:-1] else None
    on_stdout = target in ("pipe:1", "pipe:")

    def first_frame() -> bool:
        if proc.poll() is not None:
            raise SystemExit(f"ffmpeg run by hand exited with code {proc.returncode}: "
                             f"{log.read_text(errors='replace')[-1500:]}")
        if on_stdout:
            return progress.first_frame.is_set()
        return out.exists() and out.stat().st_size > 0

    if not wait_until(first_frame, 30, 0.002):
        raise SystemExit("ffmpeg run by hand produced no frame within 30 s")
    started = progress.first_frame_at if on_stdout else time.perf_counter()
    # Its exit is seen the moment it happens through a pidfd (Popen.wait polls with growing
    # sleeps, which would add up to 50 ms to the stop latency).
    pidfd = os.pidfd_open(proc.pid) if hasattr(os, "pidfd_open") else None
    sleep_until(t0 + seconds)
    f1 = cpu_seconds(proc.pid)
    t1 = time.perf_counter()
    proc.stdin.write(b"q")
    proc.stdin.close()
    if pidfd is not None:
        exited = bool(select.select([pidfd], [], [], stop_timeout)[0])
        os.close(pidfd)
    else:
        try:
            proc.wait(stop_timeout)
            exited = True
        except subprocess.TimeoutExpired:
            exited = False
    t2 = time.perf_counter()
    if not exited:
        proc.kill()
    proc.wait()
    progress.join(2)
    wall = t1 - t0
    v = progress.values
    stats = " ".join(f"{k}={v[k]}" for k in ("frame", "fps", "dup_frames", "drop_frames", "speed") if k in v)
    return {"path": out, "ffmpeg_cpu": f1 / wall, "daemon_cpu": 0.0, "cpu": f1 / wall, "start": started - t0,
            "stop": t2 - t1, "duration": t2 - started, "size": out.stat().st_size, "exit": proc.returncode,
            "stats": stats or "none reported", **probe(out)}


# ---------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=default_daemon(), help="the toolbox daemon")
    ap.add_argument("--agent", default=default_agent(), help="the computer-use agent (xfce desktop only)")
    ap.add_argument("--seconds", type=float, default=4 if QUICK else 10,
                    help="length of each recording (default 10; 4 with BENCH_QUICK=1)")
    ap.add_argument("--rounds", type=int, default=2 if QUICK else 3,
                    help="ours/baseline pairs (default 3; 2 with BENCH_QUICK=1)")
    ap.add_argument("--desktop", choices=("xfce", "xvfb"), default="xfce",
                    help="xfce: the agent's desktop (computer_use.start()); xvfb: a bare Xvfb")
    ap.add_argument("--stop-timeout", type=float, default=None,
                    help="seconds stop waits for ffmpeg before killing it, in the daemon and for the baseline "
                         "(default: the daemon's default, 10)")
    ap.add_argument("--keep", action="store_true", help="keep the recordings and logs (path printed)")
    args = ap.parse_args()

    tools = ["ffmpeg", "ffprobe", "Xvfb", "xdotool", "zenity"] + (["startxfce4"] if args.desktop == "xfce" else [])
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise SystemExit(f"missing: {', '.join(missing)}")
    for what, path in (("daemon", args.bin), ("agent", args.agent)):
        if (what == "daemon" or args.desktop == "xfce") and not os.access(path, os.X_OK):
            raise SystemExit(f"no {what} binary at {path}: cargo build --release -p "
                             f"{'daytona-daemon' if what == 'daemon' else 'computer-use'}")

    base = Path(tempfile.mkdtemp(prefix="bench-recording-"))
    procs: list[subprocess.Popen] = []
    daemon = mover = api = xvfb = None
    try:
        number = free_display(160)
        display = f":{number}"
        extra = {"DAYTONA_RECORDINGS_DIR": str(base / "recordings"),
                 "DAYTONA_RECORDING_DASHBOARD_PORT": str(free_port()),
                 "DISPLAY": display, "LANG": os.environ.get("LANG", "C.UTF-8")}
        if args.stop_timeout is not None:
            # A duration, as the daemon's other timeouts are given.
            extra["DAYTONA_RECORDING_STOP_TIMEOUT"] = f"{args.stop_timeout:g}s"
        if args.desktop == "xfce":
            extra.update({"DAYTONA_COMPUTER_USE_BIN": os.path.abspath(args.agent),
                          "VNC_RESOLUTION": f"{SCREEN[0]}x{SCREEN[1]}",
                          "VNC_PORT": str(free_port()), "NO_VNC_PORT": str(free_port())})
        else:
            xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24",
                                           "-noreset", "-nolisten", "tcp"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if not wait_until(lambda: Path(f"/tmp/.X11-unix/X{number}").exists(), 15, 0.05):
                raise SystemExit("Xvfb did not start")
        daemon, port = start_daemon(args.bin, base / "daemon", extra)
        api = Api(port)
        if args.desktop == "xfce":
            t = time.perf_counter()
            api.expect("POST", "/computeruse/start", None, 200)
            desktop_start = time.perf_counter() - t
        if args.desktop == "xfce":
            env = children_env(api)
        else:
            env = {k: v for k, v in os.environ.items() if not k.startswith("DBUS_")}
            env["DISPLAY"] = display
        if env.get("DISPLAY") != display:
            raise SystemExit(f"the daemon's children got DISPLAY={env.get('DISPLAY')!r}, not {display}")
        if args.desktop == "xfce":
            # computer_use.start() returns once the window manager runs; the panel maps later.
            if not wait_until(lambda: xdotool(env, "search", "--onlyvisible", "--class", "xfce4-panel", timeout=5) != "", 60, 0.3):
                raise SystemExit("the xfce4 panel did not appear within 60 s")
        geometry = subprocess.run(["xdpyinfo"], env=env, capture_output=True, text=True).stdout
        size = next((line.split()[1] for line in geometry.splitlines() if "dimensions:" in line), "?")
        if size != f"{SCREEN[0]}x{SCREEN[1]}":
            raise SystemExit(f"the screen is {size}, not {SCREEN[0]}x{SCREEN[1]}")
        window = open_window(env, procs, base)
        mover = WindowMover(display, window)
        mover.start()
        time.sleep(1)  # let the desktop settle around the moving window

        # A first, short recording: it gives the command line for the baseline, and the daemon
        # probes ffmpeg (version, encoders) on its first start only, which is reported apart.
        warmup = run_ours(api, daemon.pid, 1, "warmup")
        argv, rec_env, original = warmup["argv"], warmup["env"], warmup["path"]
        print(f"first start after the daemon started (probes ffmpeg once): {warmup['start'] * 1000:.1f} ms", flush=True)
        ours, baseline = [], []
        for r in range(args.rounds):
            order = ("ours", "baseline") if r % 2 == 0 else ("baseline", "ours")
            for which in order:
                if which == "ours":
                    ours.append(run_ours(api, daemon.pid, args.seconds, f"bench{r}"))
                else:
                    baseline.append(run_baseline(argv, rec_env, original, base / f"baseline{r}.mp4",
                                                 args.seconds, args.stop_timeout or 10))
                if mover.is_alive() is False:
                    raise SystemExit("the window mover stopped (the window is gone?)")
            o, b = ours[-1], baseline[-1]
            for name, m in (("ours", o), ("baseline", b)):
                print(f"round {r + 1} {name:8}: CPU {m['cpu'] * 100:5.1f}% (ffmpeg {m['ffmpeg_cpu'] * 100:5.1f}%, daemon "
                      f"{m['daemon_cpu'] * 100:4.2f}%)  {m['frames'] / m['duration']:5.2f} fps ({m['distinct']} distinct "
                      f"of {m['frames']} frames in {m['duration']:.3f} s; video {m['container']:.3f} s)  start "
                      f"{m['start'] * 1000:6.1f} ms  stop {m['stop'] * 1000:6.1f} ms  {m['size'] / 1024:6.0f} KiB",
                      flush=True)

        def med(rows, f):
            return statistics.median(f(m) for m in rows)

        def row(name, f, fmt="{:9.2f}", ratio=True):
            a, b = med(ours, f), med(baseline, f)
            r = f"{a / b:9.2f}x" if ratio and b else ""
            print(f"{name:36} {fmt.format(a)}   {fmt.format(b)}   {r}")

        print()
        print(f"screen recording of a {SCREEN[0]}x{SCREEN[1]} desktop ({args.desktop}) with a window moving "
              f"{MOVES_PER_SECOND} times a second: {args.seconds:g} s per recording, {args.rounds} round(s), medians")
        print(f"daemon {args.bin}" + (f", agent {args.agent}, desktop up in {desktop_start:.1f} s" if args.desktop == "xfce" else ""))
        print(f"ffmpeg command: {' '.join(argv)}")
        print(f"{'':36} {'ours':>9}   {'baseline':>9}   {'ours/base':>10}")
        row("CPU, % of one core", lambda m: m["cpu"] * 100, "{:9.1f}")
        row("  ffmpeg", lambda m: m["ffmpeg_cpu"] * 100, "{:9.1f}")
        row("  daemon (supervision)", lambda m: m["daemon_cpu"] * 100, "{:9.2f}", ratio=False)
        row("frames per second (file/duration)", lambda m: m["frames"] / m["duration"])
        row("distinct frames per second", lambda m: m["distinct"] / m["duration"])
        row("start latency, ms", lambda m: m["start"] * 1000, "{:9.1f}")
        row("stop latency, ms", lambda m: m["stop"] * 1000, "{:9.1f}")
        row("file size, KiB", lambda m: m["size"] / 1024, "{:9.0f}")
        print(f"(video: ours {ours[0]['video']}, baseline {baseline[0]['video']}; window moves sent: {mover.moves})")
        print(f"(baseline's last ffmpeg progress report: {baseline[-1]['stats']})")
        mismatched = [m for m in ours if m["reported_size"] is not None and m["reported_size"] != m["size"]]
        if mismatched:
            print(f"note: sizeBytes differs from the file's size: "
                  f"{[(m['reported_size'], m['size']) for m in mismatched]}")
        if args.keep:
            print(f"recordings and logs kept in {base}")
        for name, f, unit in (("recording CPU share", lambda m: m["cpu"] * 100, "% of one core"),
                              ("recording frame rate", lambda m: m["frames"] / m["duration"], "fps"),
                              ("recording distinct frame rate", lambda m: m["distinct"] / m["duration"], "fps"),
                              ("recording start latency", lambda m: m["start"] * 1000, "ms"),
                              ("recording stop latency", lambda m: m["stop"] * 1000, "ms")):
            figure(name, med(ours, f), med(baseline, f), unit, "", None, "the same ffmpeg command run by hand")
    finally:
        if mover is not None:
            mover.stop()
        for p in procs:  # the window (its own process group)
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        if api is not None and args.desktop == "xfce":
            try:
                api.call("POST", "/computeruse/stop")
            except (OSError, http.client.HTTPException):
                pass
        if daemon is not None:
            stop(daemon, 15)
        if xvfb is not None:
            stop(xvfb, 5)
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
