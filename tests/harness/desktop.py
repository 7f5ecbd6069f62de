"""A private X11 desktop for computer-use tests, run by the daemon's computer-use agent.

``Desktop.start()`` starts a daemon whose computer-use agent is ``$DAYTONA_COMPUTER_USE_BIN``,
on a display number nobody uses and on free VNC/noVNC ports, then calls the SDK's
``sandbox.computer_use.start()``: the agent brings up the session bus, Xvfb, xfce4, the AT-SPI
bus, x11vnc and noVNC. ``env`` is what the daemon's children see afterwards (read with
``process.exec("env")``), so apps started with :meth:`Desktop.spawn` / :meth:`Desktop.popen` and
observers run with :meth:`Desktop.run` share the desktop's ``DISPLAY`` and
``DBUS_SESSION_BUS_ADDRESS``, which is what keeps them all in one accessibility tree.
``start_seconds`` is how long ``computer_use.start()`` took.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .daemon import REPO_ROOT, free_port, start_daemon, wait_for
from .proxy import ToolboxProxy
from .sdk import make_daytona, make_sandbox

AGENT_ENV_VAR = "DAYTONA_COMPUTER_USE_BIN"
DEFAULT_AGENT = REPO_ROOT / "target" / "debug" / "daytona-computer-use"

# What the desktop tests need; CI installs all of it (tests/ensure-deps).
REQUIRED_TOOLS = ("Xvfb", "dbus-launch", "startxfce4", "xfwm4", "x11vnc", "xdotool", "zenity", "xdpyinfo")
ATSPI_LAUNCHERS = ("/usr/libexec/at-spi-bus-launcher", "/usr/lib/at-spi2-core/at-spi-bus-launcher")


class DesktopUnavailable(RuntimeError):
    pass


def agent_binary() -> Path:
    override = os.environ.get(AGENT_ENV_VAR)
    path = Path(override) if override else DEFAULT_AGENT
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not path.is_file() or not os.access(path, os.X_OK):
        raise DesktopUnavailable(
            f"computer-use agent not found: {path}; build it with `cargo build -p computer-use` "
            f"or point ${AGENT_ENV_VAR} at a build"
        )
    return path


def free_display() -> int:
    """A display number with neither a socket nor a lock file (a shared machine may run :99)."""
    for n in range(50, 400):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    raise DesktopUnavailable("no free X display number between :50 and :399")


def parse_dbus_launch(text: str) -> dict[str, str]:
    """``dbus-launch --sh-syntax`` output → its variables."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        for part in line.split(";"):
            part = part.strip()
            if part.startswith("export ") or "=" not in part:
                continue
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip().strip("'\"")
    return out


def parse_env(text: str) -> dict[str, str]:
    """``env`` output → variables (continuation lines of multi-line values are dropped)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        if sep and k and k.replace("_", "a").isalnum():
            out[k] = v
    return out


@dataclass
class Desktop:
    tmp: Path
    display: str = ""
    env: dict[str, str] = field(default_factory=dict)
    sandbox: object = None
    daemon: object = None
    vnc_port: int = 0
    novnc_port: int = 0
    start_seconds: float = 0.0
    # More variables for the daemon (they win over the ones set here).
    extra_env: dict[str, str] = field(default_factory=dict)
    dashboard_port: int = 0
    _procs: list[subprocess.Popen] = field(default_factory=list)
    _proxy: ToolboxProxy | None = None
    _daytona: object = None

    @property
    def agent_url(self) -> str:
        """The daemon's URL: ``/computeruse/*`` there is relayed to the agent."""
        return self.daemon.url if self.daemon is not None else ""

    def start(self) -> "Desktop":
        missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
        if missing:
            raise DesktopUnavailable(f"desktop tools missing: {', '.join(missing)} (tests/ensure-deps installs them)")
        agent = agent_binary()
        self.tmp.mkdir(parents=True, exist_ok=True)
        n = free_display()
        self.display = f":{n}"
        self.vnc_port, self.novnc_port = free_port(), free_port()
        # The dashboard on a port of its own, so desktops of parallel runs do not meet on 33333.
        self.dashboard_port = int(self.extra_env.get("DAYTONA_RECORDING_DASHBOARD_PORT", 0)) or free_port()
        try:
            self.daemon = start_daemon(
                self.tmp / "daemon",
                extra_env={
                    AGENT_ENV_VAR: str(agent),
                    "DISPLAY": self.display,
                    "VNC_PORT": str(self.vnc_port),
                    "NO_VNC_PORT": str(self.novnc_port),
                    "DAYTONA_RECORDING_DASHBOARD_PORT": str(self.dashboard_port),
                    **self.extra_env,
                },
            )
            self._proxy = ToolboxProxy(self.daemon.url).start()
            self._daytona = make_daytona()
            self.sandbox = make_sandbox(self._daytona, self._proxy.url)
            t0 = time.monotonic()
            self.sandbox.computer_use.start()
            self.start_seconds = time.monotonic() - t0
            self.env = parse_env(self.sandbox.process.exec("env").result)
            if self.env.get("DISPLAY") != self.display or not self.env.get("DBUS_SESSION_BUS_ADDRESS"):
                raise DesktopUnavailable(f"the daemon's children did not get the desktop: {self.env}")
            # start() returns once the window manager runs; the panel and the desktop window
            # map a moment later and would otherwise appear (and take focus) under a test.
            self.settle()
        except BaseException:
            self.stop()
            raise
        return self

    def settle(self, timeout: float = 30) -> None:
        """Waits until xfce4's panel and desktop windows are mapped."""
        for cls in ("xfce4-panel", "xfdesktop"):
            if not wait_for(lambda: self.run(["xdotool", "search", "--onlyvisible", "--class", cls]).stdout.strip() != "", timeout, 0.2):
                raise DesktopUnavailable(f"the {cls} window did not appear within {timeout}s")

    def _xdpyinfo_ok(self) -> bool:
        return subprocess.run(["xdpyinfo"], env=self.env, capture_output=True, timeout=10).returncode == 0

    def spawn(self, argv: list[str], env: dict[str, str] | None = None, log: str | None = None) -> subprocess.Popen:
        """Starts a program on this desktop (its own process group; stopped with the desktop)."""
        name = log or Path(argv[0]).name
        logf = open(self.tmp / f"{name}.log", "ab")
        p = subprocess.Popen(
            argv, env=env or self.env, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        logf.close()
        self._procs.append(p)
        return p

    def popen(self, argv: list[str], **kw) -> subprocess.Popen:
        """Like :meth:`spawn` but with the caller's pipes (e.g. to read what zenity prints)."""
        kw.setdefault("env", self.env)
        p = subprocess.Popen(argv, start_new_session=True, **kw)
        self._procs.append(p)
        return p

    def run(self, argv: list[str], timeout: float = 20) -> subprocess.CompletedProcess:
        """Runs an observer (xdotool, xwininfo, a pyatspi script…) against this desktop."""
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout)

    def stop(self) -> None:
        for p in reversed(self._procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 5
        for p in self._procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(5)
        self._procs.clear()
        if self.sandbox is not None:
            try:
                self.sandbox.computer_use.stop()
            except Exception:  # noqa: BLE001 - the daemon's shutdown stops the desktop anyway
                pass
        if self._proxy is not None:
            self._proxy.stop()
            self._proxy = None
        if self.daemon is not None:
            # SIGTERM: the daemon terminates its agent, which stops the desktop.
            self.daemon.stop()
            self.daemon = None
