"""The static daemon as PID 1 of a fresh PID namespace, in root filesystems of its own.

Both tests need root (unshare, chroot, mounting /proc) and the static binary that
packaging/build-static.sh writes; they fail, not skip, when either is missing, because CI must
provide both.
"""

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
STATIC_BIN = Path(os.environ.get("DAYTONA_DAEMON_STATIC_BIN", REPO / "packaging" / "dist" / "daytona-daemon"))


def require_environment():
    assert STATIC_BIN.is_file(), f"static daemon missing at {STATIC_BIN}: run packaging/build-static.sh"
    assert os.geteuid() == 0, "these tests need root for unshare/chroot (CI runs as root)"
    for tool in ("unshare", "chroot"):
        assert shutil.which(tool), f"{tool} is not installed (util-linux / coreutils)"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, port, path, body=None, timeout=10):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


class Pid1Daemon:
    """Runs the static daemon as PID 1 of a new PID and mount namespace, chrooted into `root`."""

    def __init__(self, root: Path, argv=(), extra_env=None):
        self.root = root
        self.port = free_port()
        (root / "tmp").mkdir(exist_ok=True)
        (root / "proc").mkdir(exist_ok=True)
        shutil.copy2(STATIC_BIN, root / "daytona-daemon")
        env = {
            "HOME": "/tmp",
            "DAYTONA_SANDBOX_ID": "pid1-test",
            "DAYTONA_TOOLBOX_PORT": str(self.port),
            "PATH": "/usr/bin:/bin",
        }
        env.update(extra_env or {})
        self.proc = subprocess.Popen(
            [shutil.which("unshare"), "--pid", "--fork", "--mount", f"--mount-proc={root / 'proc'}",
             shutil.which("chroot"), str(root), "/daytona-daemon", *argv],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        self.output = b""
        self._wait_ready()

    def _wait_ready(self):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited with {self.proc.returncode}: {self.proc.stdout.read()!r}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("daemon did not listen within 20 s")

    def host_pid(self):
        """Host pid of the namespace's PID 1 (the daemon), found through NSpid."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
            nspid = fields.get("NSpid", "").split()
            if len(nspid) == 2 and nspid[1] == "1" and fields.get("Name", "").strip() == "daytona-daemon":
                ppid = int(fields["PPid"])
                if ppid == self.proc.pid:
                    return int(entry.name)
        return None

    def namespace_processes(self):
        """(host pid, state, name) of every process in the daemon's PID namespace."""
        ns = os.readlink(f"/proc/{self.host_pid()}/ns/pid")
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if os.readlink(entry / "ns" / "pid") != ns:
                    continue
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            state = stat[stat.rindex(")") + 2]
            found.append((int(entry.name), state, name))
        return found

    def stop(self):
        pid = self.host_pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self.output = self.proc.stdout.read()
        return self.proc.returncode


def test_static_binary_is_static():
    require_environment()
    desc = subprocess.run(["file", "-b", str(STATIC_BIN)], capture_output=True, text=True).stdout
    assert "statically linked" in desc or "static-pie linked" in desc, desc
    ldd = subprocess.run(["ldd", str(STATIC_BIN)], capture_output=True, text=True)
    assert ldd.returncode != 0 or "statically linked" in ldd.stdout + ldd.stderr, ldd.stdout


def test_pid1_in_an_empty_rootfs(tmp_path):
    """Nothing but the binary, /tmp and /proc: no libc, no shell, no /etc."""
    require_environment()
    root = tmp_path / "rootfs"
    root.mkdir()
    daemon = Pid1Daemon(root)
    try:
        assert sorted(p.name for p in root.iterdir()) == ["daytona-daemon", "proc", "tmp"]
        assert daemon.host_pid() is not None, "the daemon is not PID 1 of its namespace"
        assert http("GET", daemon.port, "/version")["version"]
        assert http("GET", daemon.port, "/user-home-dir") == {"dir": "/tmp"}
        assert http("GET", daemon.port, "/work-dir") == {"dir": "/"}
        # No shell in this image: execute reports the failure instead of crashing.
        res = http("POST", daemon.port, "/process/execute", {"command": "echo hi"})
        assert res["exitCode"] == -1 and "sh" in res["result"], res
        assert http("GET", daemon.port, "/version")["version"]
    finally:
        code = daemon.stop()
    assert code == 0, daemon.output.decode(errors="replace")
    assert b"Starting toolbox server on port" in daemon.output


def copy_with_libraries(binaries, root: Path):
    """A minimal Debian userland: the host's Debian binaries and the shared libraries they load."""
    needed = set()
    for name in binaries:
        path = shutil.which(name)
        assert path, f"{name} is not installed"
        needed.add(os.path.realpath(path))
        ldd = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
        for line in ldd.splitlines():
            parts = line.split()
            for part in parts:
                if part.startswith("/"):
                    needed.add(part)
    for src in needed:
        dest = root / src.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(src), dest)
    for name in binaries:
        real = os.path.realpath(shutil.which(name))
        for d in ("bin", "usr/bin"):
            link = root / d / name
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                shutil.copy2(real, link)
    # Every container runtime provides /dev/null, and shells need it for background jobs.
    (root / "dev").mkdir(exist_ok=True)
    os.mknod(root / "dev" / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))


def test_pid1_reaps_orphaned_grandchildren(tmp_path):
    require_environment()
    root = tmp_path / "rootfs"
    root.mkdir()
    copy_with_libraries(["sh", "sleep", "nohup"], root)
    # Each inner shell exits at once and leaves a sleeping grandchild behind; the grandchildren
    # are re-parented to PID 1 and become zombies there unless PID 1 reaps them.
    entry = "for i in 1 2 3 4 5 6 7 8; do sh -c 'sleep 1 &'; done; exec sleep 1000"
    daemon = Pid1Daemon(root, argv=["/bin/sh", "-c", entry])
    try:
        # The orphans exist: several sleeps whose parent is PID 1.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            sleeps = [p for p in daemon.namespace_processes() if p[2] == "sleep"]
            if len(sleeps) >= 9:
                break
            time.sleep(0.02)
        assert len(sleeps) >= 9, f"orphans never appeared: {daemon.namespace_processes()}"
        # An orphan made through the API, as the reference's e2e test does.
        res = http("POST", daemon.port, "/process/execute", {"command": "nohup sleep 0.3 >/dev/null 2>&1 &"})
        assert res["exitCode"] == 0, res
        # Once they have all exited, none is left as a zombie.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            procs = daemon.namespace_processes()
            if len(procs) == 3 and not any(state == "Z" for _, state, _ in procs):
                break
            time.sleep(0.05)
        procs = daemon.namespace_processes()
        assert not [p for p in procs if p[1] == "Z"], f"zombies left: {procs}"
        # The entrypoint runs as the entrypoint session's command (process.md §4.10), so the
        # session shell (`sh`: this root filesystem has no /etc/shells) is its parent.
        assert sorted(name for _, _, name in procs) == ["daytona-daemon", "sh", "sleep"], procs
    finally:
        code = daemon.stop()
    assert code == 0, daemon.output.decode(errors="replace")


def test_pid1_gives_the_entrypoint_its_grace_period(tmp_path):
    """`docker stop` as PID 1 sees it: SIGTERM reaches the image's command, whose trap prints,
    sleeps and writes a file while its output is still read; the daemon exits 0 once it is done,
    within the grace period plus a second, with the trap's output in the entrypoint log."""
    require_environment()
    root = tmp_path / "rootfs"
    root.mkdir()
    copy_with_libraries(["sh", "sleep"], root)
    entry = (
        'trap "echo got-TERM; sleep 1; echo bye > /tmp/bye; echo after-file; exit 0" TERM; '
        "echo started; while :; do sleep 0.2; done"
    )
    grace = 3
    daemon = Pid1Daemon(root, argv=["/bin/sh", "-c", entry], extra_env={"DAYTONA_TERMINATION_GRACE_PERIOD": f"{grace}s"})
    log = root / "tmp" / ".daytona" / "sessions" / "entrypoint" / "entrypoint_command" / "output.log"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (log.exists() and b"started" in log.read_bytes()):
        time.sleep(0.05)
    assert log.exists() and b"started" in log.read_bytes(), daemon.namespace_processes()
    t0 = time.monotonic()
    code = daemon.stop()
    took = time.monotonic() - t0
    assert code == 0, daemon.output.decode(errors="replace")
    assert (root / "tmp" / "bye").read_text() == "bye\n", "the entrypoint's trap did not complete"
    assert 0.9 <= took <= grace + 1, took
    text = log.read_bytes()
    assert b"got-TERM" in text and b"after-file" in text, text
