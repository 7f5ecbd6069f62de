"""Start and stop the daemon binary under test.

Every wait in here is bounded; a daemon that hangs makes the harness fail with the tail of
what the daemon printed, never hang the test run.
"""

from __future__ import annotations

import atexit
import collections
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BINARY = REPO_ROOT / "target" / "debug" / "daytona-daemon"
BINARY_ENV_VAR = "DAYTONA_DAEMON_BIN"

READY_TIMEOUT = 20.0  # seconds from spawn until the readiness line + a successful connect
STOP_TIMEOUT = 10.0  # seconds from SIGTERM until exit (the daemon drains for at most 5 s)

# Environment variables copied from the test runner into the daemon's environment. Everything
# else is left out so that the daemon's behaviour does not depend on the developer's shell.
PASSTHROUGH_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME", "TMPDIR")


# Safety net: every daemon started by this process is killed when the test process exits, even
# if a fixture's teardown never ran (e.g. the run was interrupted).
_LIVE: "set[subprocess.Popen]" = set()


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_LIVE):
        if proc.poll() is None:
            proc.kill()


class DaemonBinaryMissing(RuntimeError):
    pass


class DaemonStartError(RuntimeError):
    pass


def wait_for(predicate, timeout: float, interval: float = 0.05) -> bool:
    """Polls `predicate` until it holds or `timeout` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def daemon_binary() -> Path:
    """Path of the binary under test: ``$DAYTONA_DAEMON_BIN`` or ``target/debug/daytona-daemon``."""
    override = os.environ.get(BINARY_ENV_VAR)
    path = Path(override) if override else DEFAULT_BINARY
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not path.is_file() or not os.access(path, os.X_OK):
        raise DaemonBinaryMissing(
            f"daemon binary not found or not executable: {path}\n"
            f"Build it first with `cargo build -p daytona-daemon` (from the repository root), "
            f"or point ${BINARY_ENV_VAR} at an existing build."
        )
    return path


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1 (the usual small race applies)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_tcp(host: str, port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class _OutputCapture:
    """Drains one pipe of the child in a thread, keeping every line (bounded) and signalling
    when a specific line has been seen."""

    def __init__(self, stream, name: str, wanted_line: str | None = None, max_lines: int = 20000):
        self.name = name
        self.lines: collections.deque[str] = collections.deque(maxlen=max_lines)
        self.wanted_line = wanted_line
        self.seen = threading.Event()
        self.closed = threading.Event()
        self._stream = stream
        self._thread = threading.Thread(target=self._run, name=f"daemon-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for raw in iter(self._stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                self.lines.append(line)
                if self.wanted_line is not None and line == self.wanted_line:
                    self.seen.set()
        except (OSError, ValueError):
            pass
        finally:
            self.closed.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def text(self) -> str:
        return "\n".join(self.lines)

    def tail(self, n: int = 60) -> str:
        return "\n".join(list(self.lines)[-n:])


@dataclass
class Daemon:
    """A running daemon. ``url`` is ``http://127.0.0.1:<port>`` (no trailing slash)."""

    proc: subprocess.Popen
    port: int
    home: Path
    workdir: Path
    log_path: Path
    env: dict[str, str]
    args: list[str]
    stdout: _OutputCapture
    stderr: _OutputCapture
    exit_code: int | None = field(default=None)
    # Set once a test signals/stops the daemon itself; fixtures then leave the exit code to it.
    stop_requested: bool = field(default=False)

    def __repr__(self) -> str:
        return f"Daemon(pid={self.proc.pid}, port={self.port}, workdir={str(self.workdir)!r})"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ready_line(self) -> str:
        return f"Starting toolbox server on port {self.port}"

    def output_tail(self, n: int = 60) -> str:
        return (
            f"--- daemon stdout (last {n} lines) ---\n{self.stdout.tail(n)}\n"
            f"--- daemon stderr (last {n} lines) ---\n{self.stderr.tail(n)}\n"
            f"--- end of daemon output ---"
        )

    def is_running(self) -> bool:
        return self.proc.poll() is None

    def send_signal(self, sig: int) -> None:
        self.stop_requested = True
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int | None:
        """Wait for exit; returns the exit code or None if still running after ``timeout``."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self.exit_code = rc
        # Let the reader threads pick up the last bytes the daemon wrote.
        self.stdout.join(2)
        self.stderr.join(2)
        return rc

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int | None:
        """Send ``sig`` and wait (bounded). If the daemon does not exit in time it is SIGKILLed
        and None is returned. Otherwise returns its exit code (negative = killed by a signal)."""
        self.stop_requested = True
        if self.proc.poll() is not None:
            return self.wait(0)
        self.proc.send_signal(sig)
        rc = self.wait(timeout)
        if rc is None:
            self.kill()
        return rc

    def kill(self) -> None:
        self.stop_requested = True
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.stdout.join(2)
        self.stderr.join(2)


def _base_env() -> dict[str, str]:
    env = {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    return env


def prepare_dirs(base: Path) -> tuple[Path, Path, Path]:
    """Create ``home``, ``work`` and ``logs`` below ``base``; returns (home, workdir, log_path)."""
    base = Path(os.path.realpath(base))
    home = base / "home"
    workdir = base / "work"
    logs = base / "logs"
    for d in (home, workdir, logs):
        d.mkdir(parents=True, exist_ok=True)
    return home, workdir, logs / "daemon.log"


def build_env(
    *,
    home: Path,
    log_path: Path,
    port: int,
    sandbox_id: str | None = "harness-sandbox",
    extra_env: Mapping[str, str] | None = None,
    remove_env: Iterable[str] = (),
) -> dict[str, str]:
    env = _base_env()
    env["HOME"] = str(home)
    env["DAYTONA_TOOLBOX_PORT"] = str(port)
    env["DAYTONA_DAEMON_LOG_FILE_PATH"] = str(log_path)
    if sandbox_id is not None:
        env["DAYTONA_SANDBOX_ID"] = sandbox_id
    if extra_env:
        env.update(extra_env)
    for name in remove_env:
        env.pop(name, None)
    return env


def _limit_nofile(soft: int):
    def apply() -> None:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return apply


def start_daemon(
    base_dir: Path,
    *,
    extra_env: Mapping[str, str] | None = None,
    remove_env: Iterable[str] = (),
    args: Sequence[str] = (),
    sandbox_id: str = "harness-sandbox",
    ready_timeout: float = READY_TIMEOUT,
    nofile: int | None = None,
) -> Daemon:
    """Start the daemon on a free port with HOME, cwd and log file below ``base_dir`` and wait
    until it printed its readiness line and accepts TCP connections.

    ``nofile`` sets the daemon's own descriptor limit (soft), leaving the caller's alone.

    Raises DaemonBinaryMissing / DaemonStartError (the latter with the daemon's output)."""
    binary = daemon_binary()
    home, workdir, log_path = prepare_dirs(base_dir)
    port = free_port()
    env = build_env(
        home=home,
        log_path=log_path,
        port=port,
        sandbox_id=sandbox_id,
        extra_env=extra_env,
        remove_env=remove_env,
    )
    argv = [str(binary), *args]
    proc = subprocess.Popen(
        argv,
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # a stray Ctrl-C in the terminal must not reach the daemon
        preexec_fn=None if nofile is None else _limit_nofile(nofile),
    )
    _LIVE.add(proc)
    ready = f"Starting toolbox server on port {port}"
    d = Daemon(
        proc=proc,
        port=port,
        home=home,
        workdir=workdir,
        log_path=log_path,
        env=env,
        args=list(args),
        stdout=_OutputCapture(proc.stdout, "stdout", wanted_line=ready),
        stderr=_OutputCapture(proc.stderr, "stderr"),
    )
    deadline = time.monotonic() + ready_timeout
    while not d.stdout.seen.is_set():
        if proc.poll() is not None:
            d.wait(1)
            raise DaemonStartError(
                f"daemon exited with code {proc.returncode} before printing {ready!r}\n"
                + d.output_tail()
            )
        if time.monotonic() > deadline:
            d.kill()
            raise DaemonStartError(
                f"daemon did not print {ready!r} within {ready_timeout:.0f}s\n" + d.output_tail()
            )
        d.stdout.seen.wait(0.05)
    # The line is printed right before the listener binds: wait for a successful connect.
    if not wait_for_tcp("127.0.0.1", port, deadline):
        d.kill()
        raise DaemonStartError(
            f"daemon printed {ready!r} but port {port} did not accept connections within "
            f"{ready_timeout:.0f}s of start\n" + d.output_tail()
        )
    return d


@dataclass
class CompletedDaemon:
    returncode: int | None  # None = had to be killed (did not exit within the timeout)
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + "\n" + self.stderr


def run_daemon_to_exit(
    base_dir: Path,
    *,
    extra_env: Mapping[str, str] | None = None,
    remove_env: Iterable[str] = (),
    args: Sequence[str] = (),
    sandbox_id: str | None = "harness-sandbox",
    timeout: float = 15.0,
) -> CompletedDaemon:
    """Run the daemon expecting it to exit by itself (configuration errors). Bounded: a daemon
    still running after ``timeout`` is killed and ``returncode`` is None."""
    binary = daemon_binary()
    home, workdir, log_path = prepare_dirs(base_dir)
    env = build_env(
        home=home,
        log_path=log_path,
        port=free_port(),
        sandbox_id=sandbox_id,
        extra_env=extra_env,
        remove_env=remove_env,
    )
    proc = subprocess.Popen(
        [str(binary), *args],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    _LIVE.add(proc)
    try:
        out, err = proc.communicate(timeout=timeout)
        rc: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=5)
        rc = None
    return CompletedDaemon(rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


def wait_listening(port: int, timeout: float = 15.0) -> None:
    """Waits until something accepts TCP connections on the loopback ``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listened on port {port} within {timeout} s")


def wait_ssh_banner(port: int, timeout: float = 15.0) -> None:
    """Until an SSH server on ``port`` sends its ``SSH-2.0-`` banner."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.settimeout(2)
                if s.recv(64).startswith(b"SSH-2.0-"):
                    return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"no SSH server on port {port}")
