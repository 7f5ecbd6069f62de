"""Images and containers of the packaging recipes, driven through their own scripts.

The tests build and run nothing by hand: ``packaging/podman/build`` makes the images and
``packaging/podman/run`` starts the containers, exactly as a user would, so the recipes are
what is tested. Images get a tag of this test run (``$DAYTONA_IMAGE_TAG``) and every image and
container the tests create is removed again, by name; the Debian base image is kept only if it
was there before (its root file system stays cached by the build script either way).

Podman is required: a missing podman fails, naming it and how to get it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from .daemon import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD = REPO_ROOT / "packaging" / "podman" / "build"
RUN = REPO_ROOT / "packaging" / "podman" / "run"
BASE_IMAGE = "localhost/debian-base:bookworm"
IMAGES = {
    "daemon": "localhost/daytona-daemon",
    "example": "localhost/daytona-example",
    "runner": "localhost/daytona-runner-snapshot",
    "desktop": "localhost/daytona-desktop",
}
STATIC_BIN = Path(os.environ.get("DAYTONA_DAEMON_STATIC_BIN", REPO_ROOT / "packaging" / "dist" / "daytona-daemon"))
AGENT_BIN = Path(
    os.environ.get("DAYTONA_COMPUTER_USE_BIN", REPO_ROOT / "target" / "debug" / "daytona-computer-use")
)


def podman_problem() -> str | None:
    """Why podman cannot be used here, or None."""
    if shutil.which("podman") is None:
        return "podman is not installed: run packaging/podman/setup (tests/ensure-deps does)"
    if os.geteuid() != 0:
        return "the container tests use rootful podman: run them as root"
    r = subprocess.run(["podman", "info", "--format", "{{.Host.OCIRuntime.Name}}"], capture_output=True, text=True)
    if r.returncode != 0:
        return f"podman does not work: {r.stderr.strip()} (packaging/podman/setup configures it)"
    return None


def podman(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    r = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


class Images:
    """The recipe images of one test run, tagged apart and removed at the end."""

    def __init__(self) -> None:
        self.tag = f"test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.had_base = podman("image", "exists", BASE_IMAGE, check=False).returncode == 0
        self.build_seconds: dict[str, float] = {}

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DAYTONA_IMAGE_TAG": self.tag,
            "DAYTONA_DAEMON_STATIC_BIN": str(STATIC_BIN),
            "DAYTONA_COMPUTER_USE_BIN": str(AGENT_BIN),
        }

    def name(self, kind: str) -> str:
        return f"{IMAGES[kind]}:{self.tag}"

    def build(self, *kinds: str) -> None:
        for kind in kinds:
            start = time.monotonic()
            r = subprocess.run([str(BUILD), kind], env=self.env(), capture_output=True, text=True, timeout=600)
            assert r.returncode == 0, f"packaging/podman/build {kind} failed:\n{r.stdout}{r.stderr}"
            self.build_seconds[kind] = time.monotonic() - start

    def size(self, kind: str) -> int:
        return int(podman("image", "inspect", "--format", "{{.Size}}", self.name(kind)).stdout)

    def remove(self) -> None:
        for kind in IMAGES:
            podman("rmi", "-f", self.name(kind), check=False)
        if not self.had_base:
            podman("rmi", BASE_IMAGE, check=False)


@dataclass
class Container:
    name: str
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, timeout: float = 10) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=timeout) as resp:
            return json.loads(resp.read())

    def exec(self, *argv: str) -> str:
        """Output of `argv` run in the container by podman itself (not through the daemon)."""
        return podman("exec", self.name, *argv).stdout

    def processes(self) -> list[tuple[int, int, str, str]]:
        """(pid, ppid, state, name) of every process in the container, read from its /proc."""
        # A process may end between the glob and the read: cat then fails for it alone.
        out = self.exec("sh", "-c", "cat /proc/[0-9]*/stat 2>/dev/null; true")
        found = []
        for line in out.splitlines():
            name = line[line.index("(") + 1 : line.rindex(")")]
            rest = line[line.rindex(")") + 2 :].split()
            found.append((int(line.split()[0]), int(rest[1]), rest[0], name))
        return found

    def inspect(self, field: str) -> str:
        return podman("inspect", "--format", "{{" + field + "}}", self.name).stdout.strip()

    def logs(self) -> str:
        r = podman("logs", self.name, check=False)
        return r.stdout + r.stderr

    def stop(self, timeout: int = 10) -> float:
        """`podman stop -t timeout`; the seconds it took."""
        start = time.monotonic()
        podman("stop", "-t", str(timeout), self.name, timeout=timeout + 30)
        return time.monotonic() - start

    def remove(self) -> None:
        podman("rm", "-f", "-t", "0", self.name, check=False)


def run_recipe(images: Images, recipe: str, *command: str, options: tuple[str, ...] = ()) -> Container:
    """`packaging/podman/run RECIPE` on a free port, under a name of this test run."""
    name = f"daytona-{recipe}-{uuid.uuid4().hex[:8]}"
    port = free_port()
    argv = [str(RUN), "--name", name, "--port", str(port), *options, recipe]
    if command:
        argv += ["--", *command]
    r = subprocess.run(argv, env=images.env(), capture_output=True, text=True, timeout=120)
    container = Container(name, port)
    if r.returncode != 0:
        container.remove()
        raise AssertionError(f"packaging/podman/run {recipe} failed:\n{r.stdout}{r.stderr}")
    assert r.stdout.split() == [name, container.url], r.stdout
    return container
