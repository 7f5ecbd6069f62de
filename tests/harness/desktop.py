"""A private X11 desktop for computer-use tests, and the SDK pointed at the agent that drives it.

``Desktop.start()`` brings up, on a display number nobody uses: a D-Bus session bus
(``dbus-launch``), ``Xvfb -noreset`` at 1024x768x24, the xfwm4 window manager (for the EWMH
window list and the active window) and the AT-SPI bus, then the computer-use agent. Apps started
with :meth:`Desktop.spawn` and observers run with :meth:`Desktop.run` share the same ``DISPLAY``
and ``DBUS_SESSION_BUS_ADDRESS``, which is what keeps them all in one accessibility tree.

INTERIM: the agent is reached directly over TCP (``--listen``); once the daemon forwards
``/computeruse/*`` this fixture goes through the daemon and ``computer_use.start()`` instead.
The attributes tests use (``sandbox``, ``env``, ``display``, ``spawn``, ``run``) stay the same.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .daemon import REPO_ROOT, free_port, wait_for, wait_for_tcp
from .proxy import ToolboxProxy
from .sdk import make_daytona, make_sandbox

AGENT_ENV_VAR = "DAYTONA_COMPUTER_USE_BIN"
DEFAULT_AGENT = REPO_ROOT / "target" / "debug" / "daytona-computer-use"

# What the desktop tests need; CI installs all of it (tests/ensure-deps).
REQUIRED_TOOLS = ("Xvfb", "dbus-launch", "xfwm4", "xdotool", "zenity", "xdpyinfo")
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


@dataclass
class Desktop:
    tmp: Path
    display: str = ""
    env: dict[str, str] = field(default_factory=dict)
    sandbox: object = None
    agent_url: str = ""
    _procs: list[subprocess.Popen] = field(default_factory=list)
    _dbus_pid: int | None = None
    _proxy: ToolboxProxy | None = None
    _daytona: object = None

    def start(self) -> "Desktop":
        missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
        if missing:
            raise DesktopUnavailable(f"desktop tools missing: {', '.join(missing)} (tests/ensure-deps installs them)")
        agent = agent_binary()
        self.tmp.mkdir(parents=True, exist_ok=True)
        n = free_display()
        self.display = f":{n}"
        env = {k: v for k, v in os.environ.items() if k not in ("DBUS_SESSION_BUS_ADDRESS", "DISPLAY")}
        env.update(DISPLAY=self.display, HOME=str(self.tmp))
        out = subprocess.run(["dbus-launch", "--sh-syntax"], env=env, capture_output=True, text=True, timeout=10)
        bus = parse_dbus_launch(out.stdout)
        if "DBUS_SESSION_BUS_ADDRESS" not in bus:
            raise DesktopUnavailable(f"dbus-launch gave no bus address: {out.stdout!r} {out.stderr!r}")
        self._dbus_pid = int(bus.get("DBUS_SESSION_BUS_PID", "0")) or None
        env["DBUS_SESSION_BUS_ADDRESS"] = bus["DBUS_SESSION_BUS_ADDRESS"]
        self.env = env
        try:
            self.spawn(["Xvfb", self.display, "-screen", "0", "1024x768x24", "-noreset", "-nolisten", "tcp"])
            if not wait_for(lambda: Path(f"/tmp/.X11-unix/X{n}").exists() and self._xdpyinfo_ok(), 15):
                raise DesktopUnavailable(f"Xvfb on {self.display} did not come up")
            self.spawn(["xfwm4"])
            launcher = next((p for p in ATSPI_LAUNCHERS if os.access(p, os.X_OK)), None)
            if launcher is None:
                raise DesktopUnavailable("at-spi-bus-launcher not found (package at-spi2-core)")
            self.spawn([launcher, "--launch-immediately"])
            subprocess.run(["dbus-update-activation-environment", "DISPLAY"], env=env, timeout=10, check=False)
            port = free_port()
            self.agent_url = f"http://127.0.0.1:{port}"
            agent_env = dict(env)
            self.spawn([str(agent), "--listen", f"127.0.0.1:{port}"], env=agent_env, log="agent")
            if not wait_for_tcp("127.0.0.1", port, time.monotonic() + 15):
                raise DesktopUnavailable(f"agent did not listen; see {self.tmp / 'agent.log'}")
            self._proxy = ToolboxProxy(self.agent_url).start()
            self._daytona = make_daytona()
            self.sandbox = make_sandbox(self._daytona, self._proxy.url)
        except BaseException:
            self.stop()
            raise
        return self

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
        if self._proxy is not None:
            self._proxy.stop()
            self._proxy = None
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
        if self._dbus_pid:
            try:
                os.kill(self._dbus_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            self._dbus_pid = None
