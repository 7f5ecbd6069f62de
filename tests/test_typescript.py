"""The official TypeScript SDK (``@daytonaio/sdk``, pinned in ``tests/ts/package-lock.json``) as
a second client: every ``tests/ts/*.test.mjs`` file is one test here.

Its code paths differ from the Python SDK's (WebSocket sub-protocols, how control frames end a
stream, its own PTY URLs, argument order of region screenshots), so they are tested through the
unmodified SDK, with Node's built-in ``node:test`` runner.

For each file this starts what it needs, exactly as the Python tests do: a daemon of its own
(Debian's ``/usr/bin`` first on its PATH, so code-run charts find matplotlib) or, for the
computer-use file, a whole desktop (``harness.desktop.Desktop``, recording into a temporary
directory); then a ``harness.proxy.ToolboxProxy`` in front of the daemon. It runs
``node --test <file>`` with the addresses in the environment (see ``tests/ts/lib/sandbox.mjs``)
and fails with node's report when node fails.

The node modules are installed with ``npm ci`` when ``tests/ts/node_modules`` is missing or was
installed from another lockfile (a hash of the lockfile is kept next to them). A missing
``node`` or ``npm`` fails the tests naming it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.desktop import Desktop
from harness.proxy import ToolboxProxy

TS_DIR = Path(__file__).resolve().parent / "ts"
FILES = sorted(p.name for p in TS_DIR.glob("*.test.mjs"))
LOCKFILE = TS_DIR / "package-lock.json"
STAMP = TS_DIR / "node_modules" / ".package-lock.sha256"
# Files that drive the desktop; every other file gets a plain daemon.
DESKTOP_FILES = {"computer-use.test.mjs"}
SANDBOX_ID = "ts-sandbox"
SYSTEM_PATH = "/usr/bin:/bin"
# A file's whole run (node start, its tests); the desktop file also waits for the desktop.
NODE_TIMEOUT = 150
MIN_NODE_MAJOR = 18  # node:test


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} not found on PATH: the TypeScript SDK tests need Node.js {MIN_NODE_MAJOR}+ and npm "
            f"(tests/ensure-deps installs nodejs and npm)",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="module")
def node() -> str:
    node = _tool("node")
    _tool("npm")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    m = re.match(r"v(\d+)\.", version)
    if not m or int(m.group(1)) < MIN_NODE_MAJOR:
        pytest.fail(f"node {version or '(unknown version)'} is too old: node:test needs Node.js {MIN_NODE_MAJOR}+", pytrace=False)
    want = hashlib.sha256(LOCKFILE.read_bytes()).hexdigest()
    have = STAMP.read_text().strip() if STAMP.is_file() else ""
    if have != want:
        r = subprocess.run(
            [_tool("npm"), "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=TS_DIR,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if r.returncode != 0:
            pytest.fail(f"npm ci in {TS_DIR} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}", pytrace=False)
        STAMP.write_text(want + "\n")
    return node


def test_there_are_typescript_test_files():
    assert FILES, f"no *.test.mjs files in {TS_DIR}"


def _run_node(node: str, name: str, env: dict[str, str]) -> None:
    full_env = {**os.environ, **env}
    # The SDK reads its configuration from the environment too; none of it may leak in.
    for k in list(full_env):
        if k.startswith("DAYTONA_") and not k.startswith("DAYTONA_TS_"):
            del full_env[k]
    try:
        r = subprocess.run(
            [node, "--test", "--test-reporter=spec", name],
            cwd=TS_DIR,
            env=full_env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=NODE_TIMEOUT,
        )
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode("utf-8", "replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        pytest.fail(f"node --test {name} did not finish within {NODE_TIMEOUT}s\n{out}", pytrace=False)
    if r.returncode != 0:
        pytest.fail(f"node --test {name} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}", pytrace=False)
    # The spec reporter ends with counts ("ℹ tests 9", "ℹ pass 9", ...): a file whose tests did
    # not run (none defined, or all skipped) must not pass silently.
    counts = {k: int(v) for k, v in re.findall(r"^\S+ (tests|pass|fail|skipped|todo|cancelled) (\d+)$", r.stdout, re.M)}
    if not counts.get("tests") or counts.get("pass") != counts.get("tests"):
        pytest.fail(f"node --test {name}: not every test ran and passed {counts}:\n{r.stdout}\n{r.stderr}", pytrace=False)
    print(f"{name}: {counts['pass']} tests passed")


def _harness_env(daemon, proxy: ToolboxProxy) -> dict[str, str]:
    return {
        "DAYTONA_TS_PROXY_URL": proxy.url,
        "DAYTONA_TS_SANDBOX_ID": SANDBOX_ID,
        "DAYTONA_TS_DAEMON_URL": daemon.url,
        "DAYTONA_TS_DAEMON_HOME": str(daemon.home),
        "DAYTONA_TS_DAEMON_WORKDIR": str(daemon.workdir),
    }


@pytest.mark.deadline(NODE_TIMEOUT + 90)
@pytest.mark.parametrize("name", FILES)
def test_typescript(name: str, node: str, daemon_factory, tmp_path: Path):
    if name in DESKTOP_FILES:
        recordings = tmp_path / "recordings"
        recordings.mkdir()
        desk = Desktop(tmp_path / "desktop", extra_env={"DAYTONA_RECORDINGS_DIR": str(recordings)})
        desk.start()
        try:
            with ToolboxProxy(desk.daemon.url) as proxy:
                env = _harness_env(desk.daemon, proxy)
                env.update(
                    DAYTONA_TS_RECORDINGS_DIR=str(recordings),
                    DISPLAY=desk.env["DISPLAY"],
                    DBUS_SESSION_BUS_ADDRESS=desk.env["DBUS_SESSION_BUS_ADDRESS"],
                )
                _run_node(node, name, env)
        finally:
            desk.stop()
        return
    d = daemon_factory.start(
        extra_env={"PATH": SYSTEM_PATH + ":" + os.environ.get("PATH", "")}, sandbox_id=SANDBOX_ID
    )
    with ToolboxProxy(d.url) as proxy:
        _run_node(node, name, _harness_env(d, proxy))
