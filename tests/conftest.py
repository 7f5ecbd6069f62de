"""Fixtures for the end-to-end tests of the toolbox daemon.

Daemons
  ``daemon``          module-scoped shared daemon for cheap tests (one per test module).
  ``fresh_daemon``    function-scoped daemon with default settings.
  ``daemon_factory``  function-scoped factory: ``daemon_factory.start(extra_env=..., args=...)``
                      for daemons with a special environment or entrypoint argv.
  Each daemon runs on a free port with its own temporary HOME, cwd and log file, and is stopped
  with SIGTERM at teardown; the teardown fails (showing the tail of the daemon's stdout/stderr)
  unless it exits with code 0 within the bounded wait. A daemon that a test stops itself
  (``d.stop()``/``d.send_signal()``) is left to that test's own assertions.

SDK
  ``sdk``       module-scoped :class:`harness.sdk.SdkSession` (proxy + Daytona + Sandbox) on
                ``daemon``.
  ``sandbox``   its SDK ``Sandbox``: calls go SDK → loopback proxy (strips ``/{sandboxId}``) →
                ``daemon``.
  ``toolbox``   generated ``daytona_toolbox_api_client.ApiClient`` with host = ``daemon.url``
                (no proxy) and the SDK's default headers, for routes the SDK does not wrap.
  ``sdk_for``   function-scoped factory: ``sdk_for(some_daemon)`` → SdkSession for any daemon.

The daemon binary is ``target/debug/daytona-daemon`` (repository root) unless
``$DAYTONA_DAEMON_BIN`` says otherwise; a missing binary fails the tests with a message saying
how to build it.

Every test is bounded by a SIGALRM deadline (default 120 s; ``@pytest.mark.deadline(n)``).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import pytest

from harness.daemon import (
    Daemon,
    DaemonBinaryMissing,
    DaemonStartError,
    STOP_TIMEOUT,
    daemon_binary,
    start_daemon,
)
from harness.proxy import ToolboxProxy
from harness.sdk import SdkSession, make_daytona, make_sandbox, make_toolbox_client

DEFAULT_DEADLINE = 120.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "deadline(seconds): per-test wall-clock limit (SIGALRM)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """On a failing test, attach the tail of the output of every daemon it used."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    daemons: list[Daemon] = []
    for value in getattr(item, "funcargs", {}).values():
        for d in value.started if isinstance(value, DaemonFactory) else [value]:
            if isinstance(d, Daemon) and all(d is not x for x in daemons):
                daemons.append(d)
    if len(daemons) > 5:
        # Tests that start many daemons: show the ones that ended abnormally (or still run).
        daemons = [d for d in daemons if d.proc.poll() != 0][:5]
    for d in daemons:
        report.sections.append((f"daemon on port {d.port}", d.output_tail(80)))


# --------------------------------------------------------------------------------- deadline


class TestDeadlineExceeded(Exception):
    __test__ = False  # not a test class


@pytest.fixture(autouse=True)
def _deadline(request: pytest.FixtureRequest) -> Iterator[None]:
    marker = request.node.get_closest_marker("deadline")
    seconds = float(marker.args[0]) if marker else DEFAULT_DEADLINE
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum, frame):  # noqa: ARG001
        raise TestDeadlineExceeded(f"test exceeded its {seconds:.0f}s deadline")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------------------------- daemons


@pytest.fixture(scope="session")
def daemon_bin() -> Path:
    problem = None
    try:
        return daemon_binary()
    except DaemonBinaryMissing as e:
        problem = str(e)
    pytest.fail(problem, pytrace=False)


class DaemonFactory:
    def __init__(self, base: Path):
        self.base = base
        self.started: list[Daemon] = []
        self._n = 0

    def start(
        self,
        *,
        extra_env: Mapping[str, str] | None = None,
        remove_env: Sequence[str] = (),
        args: Sequence[str] = (),
        sandbox_id: str = "harness-sandbox",
        nofile: int | None = None,
    ) -> Daemon:
        self._n += 1
        base = self.base / f"d{self._n}"
        problem = None
        try:
            d = start_daemon(
                base, extra_env=extra_env, remove_env=remove_env, args=args, sandbox_id=sandbox_id, nofile=nofile
            )
        except (DaemonBinaryMissing, DaemonStartError) as e:
            problem = str(e)
        if problem is not None:
            pytest.fail(problem, pytrace=False)
        self.started.append(d)
        return d

    def finish(self) -> None:
        problems = []
        for d in self.started:
            if d.stop_requested:
                d.kill()  # the test handled (and asserted) the exit itself; just make sure
                continue
            if not d.is_running():
                d.wait(1)
                problems.append(
                    f"daemon on port {d.port} exited on its own during the test with code "
                    f"{d.exit_code}\n{d.output_tail()}"
                )
                continue
            rc = d.stop(signal.SIGTERM, STOP_TIMEOUT)
            if rc is None:
                problems.append(
                    f"daemon on port {d.port} did not exit within {STOP_TIMEOUT:.0f}s of SIGTERM "
                    f"(killed)\n{d.output_tail()}"
                )
            elif rc != 0:
                problems.append(
                    f"daemon on port {d.port} exited with code {rc} after SIGTERM "
                    f"(expected 0)\n{d.output_tail()}"
                )
        if problems:
            pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def daemon_factory(daemon_bin: Path, tmp_path: Path) -> Iterator[DaemonFactory]:
    factory = DaemonFactory(tmp_path)
    yield factory
    factory.finish()


@pytest.fixture
def fresh_daemon(daemon_factory: DaemonFactory) -> Daemon:
    return daemon_factory.start()


@pytest.fixture(scope="module")
def daemon(daemon_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    factory = DaemonFactory(tmp_path_factory.mktemp("shared-daemon"))
    d = factory.start()
    yield d
    factory.finish()


# -------------------------------------------------------------------------------------- SDK


def _open_sdk(d: Daemon, sandbox_id: str = "harness-sandbox") -> SdkSession:
    proxy = ToolboxProxy(d.url).start()
    try:
        daytona = make_daytona()
        sandbox = make_sandbox(daytona, proxy.url, sandbox_id)
    except BaseException:
        proxy.stop()
        raise
    return SdkSession(daytona=daytona, proxy=proxy, sandbox=sandbox, sandbox_id=sandbox_id)


@pytest.fixture(scope="module")
def sdk(daemon: Daemon) -> Iterator[SdkSession]:
    session = _open_sdk(daemon)
    yield session
    session.close()


@pytest.fixture(scope="module")
def sandbox(sdk: SdkSession):
    return sdk.sandbox


@pytest.fixture(scope="module")
def toolbox(daemon: Daemon, sdk: SdkSession):
    return make_toolbox_client(daemon.url, sdk.daytona)


@pytest.fixture
def sdk_for() -> Iterator[Callable[[Daemon], SdkSession]]:
    sessions: list[SdkSession] = []

    def open_for(d: Daemon, sandbox_id: str = "harness-sandbox") -> SdkSession:
        s = _open_sdk(d, sandbox_id)
        sessions.append(s)
        return s

    yield open_for
    for s in sessions:
        s.close()


# ---------------------------------------------------------------------------------- desktop


@pytest.fixture(scope="module")
def desktop(tmp_path_factory: pytest.TempPathFactory):
    """A full xfce4 desktop started through the daemon (`computer_use.start()`), driven with the SDK."""
    from harness.desktop import Desktop

    d = Desktop(tmp_path_factory.mktemp("desktop")).start()
    yield d
    d.stop()
