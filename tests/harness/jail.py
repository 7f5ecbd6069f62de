"""A daemon that can do no harm: PID 1 of its own PID and mount namespaces, chrooted into a
throw-away root whose system directories are read-only.

For fuzzing, where generated requests delete, chmod, move and overwrite whatever path they name
and run whatever command they make up. Inside the jail:

* ``/usr`` and ``/etc`` are the host's, bind-mounted read-only (``/bin``, ``/lib``… link into
  ``/usr`` as on Debian 12), so programs run but nothing there can change;
* ``/dev`` is a private tmpfs with its own device nodes and a private devpts (PTYs work; a
  chmod of ``/dev/null`` changes nothing outside);
* ``/proc`` shows the jail's processes only (a signal to every process reaches only those),
  with ``/proc/sys`` and ``/proc/sysrq-trigger`` read-only;
* the daemon runs as root with no capabilities (``setpriv``), so it can change only files it
  owns and the kernel's knobs are closed to it;
* ``/work`` (the daemon's working directory), ``/root`` (its HOME) and ``/tmp`` are plain
  directories of the throw-away root, which is all a request can write to.

Needs root, ``unshare``, ``chroot`` and ``mount``; the caller asserts those (tests fail, not
skip, without them).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from .daemon import free_port

SETUP = r"""
set -eu
R=$1
BIN=$2
mount --make-rprivate /
for d in usr etc; do
    mkdir -p "$R/$d"
    mount --rbind "/$d" "$R/$d"
done
# Read-only, every mount below them too (a bind remount is not recursive).
awk -v r="$R" '$5 == r"/usr" || $5 == r"/etc" || index($5, r"/usr/") == 1 || index($5, r"/etc/") == 1 { print $5 }' \
    /proc/self/mountinfo | while read -r m; do mount -o remount,bind,ro "$m"; done
for l in bin sbin lib lib64 lib32 libx32; do
    [ -e "/$l" ] && ln -s "usr/$l" "$R/$l"
done
mkdir -p "$R/proc" "$R/dev" "$R/tmp" "$R/work" "$R/root"
chmod 1777 "$R/tmp"
mount -t proc proc "$R/proc"
# The kernel's knobs stay out of reach even for root.
for k in sys sysrq-trigger; do
    [ -e "$R/proc/$k" ] || continue
    mount --bind "$R/proc/$k" "$R/proc/$k"
    mount -o remount,bind,ro "$R/proc/$k"
done
mount -t tmpfs -o mode=755 tmpfs "$R/dev"
mknod -m 666 "$R/dev/null" c 1 3
mknod -m 666 "$R/dev/zero" c 1 5
mknod -m 666 "$R/dev/random" c 1 8
mknod -m 666 "$R/dev/urandom" c 1 9
mknod -m 666 "$R/dev/tty" c 5 0
mkdir "$R/dev/pts"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
cp "$BIN" "$R/daytona-daemon"
cd "$R/work"
# Root without capabilities: it owns the jail's files, and nothing else.
exec chroot "$R" /bin/sh -c 'cd /work && exec setpriv --bounding-set -all --inh-caps -all --ambient-caps -all /daytona-daemon'
"""


def require_jail_tools() -> None:
    import os

    assert os.geteuid() == 0, "the jailed daemon needs root (unshare, mount, chroot); CI runs as root"
    for tool in ("unshare", "chroot", "mount", "mknod", "setpriv", "awk"):
        assert shutil.which(tool), f"{tool} is not installed (util-linux / coreutils)"


class JailedDaemon:
    def __init__(self, root: Path, binary: Path, extra_env: dict[str, str] | None = None):
        require_jail_tools()
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            "HOME": "/root",
            "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "DAYTONA_SANDBOX_ID": "jail",
            "DAYTONA_TOOLBOX_PORT": str(self.port),
            "DAYTONA_TERMINAL_PORT": str(free_port()),
            "DAYTONA_DAEMON_LOG_FILE_PATH": "/tmp/daemon.log",
            # No desktop agent inside: /computeruse answers its documented 503.
            "DAYTONA_COMPUTER_USE_BIN": "/nonexistent",
        }
        env.update(extra_env or {})
        self.log = root.parent / f"{root.name}.out"
        self._out = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [shutil.which("unshare"), "--pid", "--fork", "--kill-child=SIGKILL", "--mount", "sh", "-c", SETUP, "jail", str(root), str(binary)],
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"jailed daemon exited with {self.proc.returncode}: {self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"jailed daemon did not listen within 20 s: {self.output()}")

    def output(self) -> str:
        self._out.flush()
        return self.log.read_bytes()[-8000:].decode(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int | None:
        """SIGTERM to the daemon, which is the namespace's init (the setup shell execs into
        it); everything in the PID namespace dies with it, and ``unshare`` exits with its
        status. Should ``unshare`` die first, ``--kill-child`` takes the jail down."""
        if self.proc.poll() is None:
            try:
                children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
            except OSError:
                children = []
            for pid in children:
                try:
                    import os

                    os.kill(int(pid), signal.SIGTERM)
                except (ProcessLookupError, ValueError):
                    pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._out.close()
        return self.proc.returncode

    def __enter__(self) -> "JailedDaemon":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
