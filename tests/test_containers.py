"""The daemon in real images under a real engine (rootful podman), built and started by the
packaging scripts (packaging/podman/build and run), driven through the official Python SDK.

* The scratch image (the Dockerfile's ``host`` target) holds the static daemon and nothing
  else, serves the API as PID 1 of an empty root and stops with status 0.
* Two containers run the same representative subset of the end-to-end tests (files, execute,
  sessions with the entrypoint's logs, PTY, git), each through the SDK and a loopback toolbox
  proxy pointed at the container's published port:
  - ``example``: the daemon injected into a debootstrapped Debian image the way the README
    says (``COPY --from`` + ``ENTRYPOINT``), the image's command the entrypoint session;
  - ``runner``: Daytona's runner contract: an image without the daemon, the static daemon
    bind-mounted read-only at /usr/local/bin/daytona as the entrypoint, the agent at
    /usr/local/lib/daytona-computer-use, the runner's DAYTONA_* variables, the image's non-root
    user, ``--memory 256m --cpus 1``; /system/metrics reports those limits.
  After the subset, each container gets 50 orphans (re-parented to the daemon, reaped: no
  zombie), then ``podman stop`` ends it within the grace period with status 0.
* The desktop image (the example image plus Xvfb, xfce4, VNC, noVNC, ffmpeg, AT-SPI and the
  agent; its build downloads ~300 MB from Debian's mirror, about 80 s) starts its desktop
  through the SDK, takes a screenshot, serves noVNC on its published port and stops with 0.

The Kubernetes recipe (packaging/k8s/) is validated without a cluster: both manifests against
the vendored agent-sandbox CRDs' schemas, unknown fields rejected as ``kubectl apply
--validate=strict`` does; those tests need neither podman nor root.

Needs root and podman (tests/ensure-deps runs packaging/podman/setup); without them the tests
fail, naming what is missing. The first build debootstraps the Debian base (under a minute; the
root file system is cached for later runs). Every image and container made here is removed.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import os
import re
import struct
import time
import urllib.request
import uuid
from pathlib import Path

import jsonschema_rs
import pytest
import yaml
from daytona import PtySize, SessionExecuteRequest

from harness.containers import AGENT_BIN, STATIC_BIN, Container, Images, podman, podman_problem, run_recipe
from harness.daemon import free_port, wait_for
from harness.proxy import ToolboxProxy
from harness.sdk import make_daytona, make_sandbox

REPO = Path(__file__).resolve().parent.parent
K8S = REPO / "packaging" / "k8s"
MIB = 1024 * 1024
STOP_GRACE = 10  # podman stop's default: SIGTERM, then SIGKILL after 10 s

# What each container is expected to show: its user, home, work dir, PID 1, limits, entrypoint.
EXPECTED = {
    "example": {
        "user": "root",
        "home": "/root",
        "workdir": "/",
        "pid1": "daytona-daemon",
        "entrypoint": ("sh", "-c", "echo entry-out; echo entry-err >&2; exec sleep infinity"),
        "logs": ("entry-out\n", "entry-err\n"),
    },
    "runner": {
        "user": "daytona",
        "home": "/home/daytona",
        # No WORKDIR in the snapshot: the runner's DAYTONA_USER_HOME_AS_WORKDIR=true applies.
        "workdir": "/home/daytona",
        "pid1": "daytona",
        "entrypoint": (),  # the snapshot's own ENTRYPOINT, passed as the runner does
        "logs": ("sandbox-start: user daytona in /home/daytona\n", "sandbox-start: ready\n"),
    },
}


def host_mem_total() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no MemTotal in /proc/meminfo")


@pytest.fixture(scope="module")
def images():
    problem = podman_problem()
    if problem is None and not STATIC_BIN.is_file():
        problem = f"static daemon missing at {STATIC_BIN}: run packaging/build-static.sh"
    if problem is None and not AGENT_BIN.is_file():
        problem = f"computer-use agent missing at {AGENT_BIN}: cargo build -p computer-use"
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    imgs = Images()
    try:
        imgs.build("daemon", "example", "runner")
        yield imgs
    finally:
        imgs.remove()


class Box:
    """A running recipe container with the SDK pointed at it."""

    def __init__(self, recipe: str, container: Container):
        self.recipe = recipe
        self.container = container
        self.expected = EXPECTED[recipe]
        self.proxy = ToolboxProxy(container.url).start()
        self.daytona = make_daytona()
        self.sandbox = make_sandbox(self.daytona, self.proxy.url, sandbox_id=container.name)

    def close(self) -> None:
        self.proxy.stop()
        self.container.remove()


@pytest.fixture(scope="module", params=["example", "runner"])
def box(request, images):
    recipe = request.param
    container = run_recipe(images, recipe, *EXPECTED[recipe]["entrypoint"])
    b = Box(recipe, container)
    yield b
    b.close()


@pytest.fixture
def sandbox(box):
    return box.sandbox


# ----------------------------------------------------------------------------- scratch image


def test_scratch_image_is_the_daemon_alone(images):
    size = images.size("daemon")
    assert STATIC_BIN.stat().st_size <= size < STATIC_BIN.stat().st_size + 64 * 1024, size
    c = run_recipe(images, "scratch")
    try:
        processes = c.logs()
        assert "Starting toolbox server on port 2280" in processes
        assert c.get("/version")["version"]
        # HOME is / in an image without /etc/passwd; the work dir is the image's root.
        assert c.get("/work-dir") == {"dir": "/"}
        elapsed = c.stop(STOP_GRACE)
        assert elapsed < STOP_GRACE, f"podman stop took {elapsed:.1f}s: the daemon ignored SIGTERM"
        assert c.inspect(".State.ExitCode") == "0", c.logs()
    finally:
        c.remove()


# ----------------------------------------------------------------------------- desktop image


@pytest.mark.deadline(600)
def test_desktop_image(images):
    images.build("desktop")
    novnc = free_port()
    c = run_recipe(images, "desktop", options=("--novnc-port", str(novnc)))
    proxy = ToolboxProxy(c.url).start()
    try:
        sandbox = make_sandbox(make_daytona(), proxy.url, sandbox_id=c.name)
        started = sandbox.computer_use.start()
        running = {name: p["running"] for name, p in started.to_dict()["status"].items()}
        assert running == dict.fromkeys(["atspi", "novnc", "x11vnc", "xfce4", "xvfb"], True), running
        assert wait_for(lambda: sandbox.computer_use.get_status().status == "active", 20)
        shot = base64.b64decode(sandbox.computer_use.screenshot.take_full_screen().screenshot)
        assert shot[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", shot[16:24])
        assert (width, height) == (1024, 768), (width, height)  # VNC_RESOLUTION's default
        with urllib.request.urlopen(f"http://127.0.0.1:{novnc}/vnc.html", timeout=10) as resp:
            assert resp.status == 200 and b"noVNC" in resp.read()
        elapsed = c.stop(STOP_GRACE)
        assert elapsed < STOP_GRACE, f"podman stop took {elapsed:.1f}s"
        assert c.inspect(".State.ExitCode") == "0", c.logs()[-3000:]
    finally:
        proxy.stop()
        c.remove()


# ------------------------------------------------------------------------ the subset, twice


def test_identity_pid1_and_workdir(box, sandbox):
    exp = box.expected
    assert sandbox.get_user_home_dir() == exp["home"]
    assert sandbox.get_work_dir() == exp["workdir"]
    r = sandbox.process.exec("echo $((6*7)) $(id -un) $(hostname)")
    assert r.exit_code == 0
    answer, user, _host = r.result.split()
    assert (answer, user) == ("42", exp["user"])
    pid1 = [p for p in box.container.processes() if p[0] == 1]
    assert pid1 and pid1[0][3] == exp["pid1"], box.container.processes()


def test_execute_exit_codes_and_cwd(sandbox):
    r = sandbox.process.exec("sh -c 'echo out; echo err >&2; exit 3'")
    assert r.exit_code == 3
    assert "out" in r.result and "err" in r.result
    assert sandbox.process.exec("pwd", cwd="/tmp").result.strip() == "/tmp"


def test_files_round_trip_inside_the_container(box, sandbox):
    home = box.expected["home"]
    folder = f"{home}/files-{uuid.uuid4().hex[:6]}"
    sandbox.fs.create_folder(folder, "755")
    payload = os.urandom(256 * 1024)
    sandbox.fs.upload_file(payload, f"{folder}/blob.bin")
    sandbox.fs.upload_file(b"needle in a container\n", f"{folder}/note.txt")
    assert sorted(f.name for f in sandbox.fs.list_files(folder)) == ["blob.bin", "note.txt"]
    assert sandbox.fs.download_file(f"{folder}/blob.bin") == payload
    # The file is in the container's file system, owned by the container's user.
    c = box.container
    assert c.exec("stat", "-c", "%s %U", f"{folder}/blob.bin").split() == [str(len(payload)), box.expected["user"]]
    matches = sandbox.fs.find_files(folder, "needle")
    assert [(m.file, m.line) for m in matches] == [(f"{folder}/note.txt", 1)]
    sandbox.fs.delete_file(folder, recursive=True)
    assert c.exec("sh", "-c", f"test -e {folder} && echo there || echo gone").strip() == "gone"


def test_sessions_and_the_entrypoints_logs(box, sandbox):
    s = f"s-{uuid.uuid4().hex[:6]}"
    sandbox.process.create_session(s)
    try:
        sandbox.process.execute_session_command(s, SessionExecuteRequest(command="cd /tmp && export V=kept"))
        r = sandbox.process.execute_session_command(s, SessionExecuteRequest(command="echo $PWD $V; echo e >&2"))
        assert (r.exit_code, r.stdout, r.stderr) == (0, "/tmp kept\n", "e\n")
        r = sandbox.process.execute_session_command(
            s, SessionExecuteRequest(command="sleep 0.3; echo late; exit 4", run_async=True)
        )
        assert wait_for(lambda: sandbox.process.get_session_command(s, r.cmd_id).exit_code is not None, 10)
        assert sandbox.process.get_session_command(s, r.cmd_id).exit_code == 4
        assert sandbox.process.get_session_command_logs(s, r.cmd_id).stdout == "late\n"
    finally:
        sandbox.process.delete_session(s)
    entry = sandbox.process.get_entrypoint_session()
    assert [(c.id, c.exit_code) for c in entry.commands] == [("entrypoint_command", None)]
    logs = sandbox.process.get_entrypoint_logs()
    assert (logs.stdout, logs.stderr) == box.expected["logs"]


def test_pty(box, sandbox):
    h = sandbox.process.create_pty_session(id=f"pty-{uuid.uuid4().hex[:6]}", pty_size=PtySize(cols=100, rows=30))
    try:
        h.send_input("echo sum=$((2+3))-$(id -un) size=$(stty size)\n")
        buf = bytearray()
        want = f"sum=5-{box.expected['user']} size=30 100".encode()
        deadline = time.monotonic() + 10
        while want not in buf and time.monotonic() < deadline:
            h.wait(on_data=buf.extend, timeout=0.2)
        assert want in buf, bytes(buf)
        h.send_input("exit 5\n")
        assert h.wait(timeout=10).exit_code == 5
    finally:
        h.disconnect()


def test_git_init_commit_clone(box, sandbox):
    home = box.expected["home"]
    src, dst = f"{home}/git-src-{uuid.uuid4().hex[:6]}", f"{home}/git-dst-{uuid.uuid4().hex[:6]}"
    sandbox.git.init(src, initial_branch="main")
    sandbox.fs.upload_file(b"hello\n", f"{src}/README")
    sandbox.git.add(src, ["README"])
    commit = sandbox.git.commit(src, "first in a container", "Box", "box@example.com")
    sandbox.git.clone(f"file://{src}", dst)
    status = sandbox.git.status(dst)
    assert status.current_branch == "main" and not status.file_status
    assert [b for b in sandbox.git.branches(dst).branches] == ["main"]
    # The image's own git CLI reads what the daemon wrote.
    log = box.container.exec("git", "-C", dst, "log", "--format=%H %an %s").strip()
    assert log == f"{commit.sha} Box first in a container"


def test_metrics_report_the_containers_limits(box, sandbox):
    m = box.container.get("/system/metrics")
    if box.recipe == "runner":
        # --memory 256m --cpus 1, not the host's memory and cores.
        assert (m["memTotal"], m["cpuCount"]) == (256 * MIB, 1), m
    else:
        assert (m["memTotal"], m["cpuCount"]) == (host_mem_total(), len(os.sched_getaffinity(0))), m
    assert 0 < m["memUsed"] <= m["memTotal"], m


def test_daemon_and_agent_in_place(box):
    """The runner bind-mounts the daemon and the agent read-only; in the example image the
    daemon is a file of the image and there is no agent."""
    c = box.container
    mounts = {}
    for line in c.exec("cat", "/proc/self/mountinfo").splitlines():
        fields = line.split()
        mounts[fields[4]] = fields[5].split(",")
    present = c.exec("sh", "-c", "for f in /usr/local/bin/daytona /usr/local/bin/daytona-daemon "
                     "/usr/local/lib/daytona-computer-use; do [ -x $f ] && echo $f; done; true").split()
    if box.recipe == "runner":
        assert present == ["/usr/local/bin/daytona", "/usr/local/lib/daytona-computer-use"]
        assert "ro" in mounts["/usr/local/bin/daytona"] and "ro" in mounts["/usr/local/lib/daytona-computer-use"]
    else:
        assert present == ["/usr/local/bin/daytona-daemon"]
        assert "/usr/local/bin/daytona-daemon" not in mounts


# ---------------------------------------------------------------------- last: orphans, stop


def test_zz_orphans_are_reaped_then_podman_stop_exits_0(box, sandbox):
    c = box.container
    # Each subshell exits at once and leaves its sleep behind. Made in a session, whose
    # background jobs outlive the command (execute would end them with the command).
    s = f"orphans-{uuid.uuid4().hex[:6]}"
    sandbox.process.create_session(s)
    r = sandbox.process.execute_session_command(
        s, SessionExecuteRequest(command="for i in $(seq 50); do (sleep 4 &); done")
    )
    assert r.exit_code == 0
    # The 50 sleeps are orphans: PID 1 (the daemon) is their parent now.
    orphans = [p for p in c.processes() if p[3] == "sleep" and p[1] == 1]
    assert len(orphans) == 50, c.processes()
    assert wait_for(lambda: not [p for p in c.processes() if p[3] == "sleep" and p[1] == 1], 20)
    zombies = [p for p in c.processes() if p[2] == "Z"]
    assert zombies == [], zombies
    elapsed = c.stop(STOP_GRACE)
    assert elapsed < STOP_GRACE, f"podman stop took {elapsed:.1f}s: not within the grace period"
    assert c.inspect(".State.ExitCode") == "0", c.logs()[-3000:]
    assert "Shutdown complete" in c.logs()


# ------------------------------------------------------------------------------- Kubernetes


def strict_schema(node):
    """A CRD's openAPIV3Schema as a JSON Schema that rejects what the API server would: unknown
    fields (strict field validation) where the schema lists the properties and does not
    preserve unknown fields, and null only where `nullable` allows it."""
    if isinstance(node, list):
        return [strict_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict_schema(v) for k, v in node.items()}
    if node.get("nullable") and "type" in node:
        out["type"] = [node["type"], "null"]
    if (
        "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@functools.lru_cache(maxsize=None)  # the CRDs are large: parse each once
def crd_validator(path: Path, version: str):
    crd = yaml.safe_load(path.read_text())
    (v,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    assert v["served"], f"{crd['metadata']['name']} {version} is not served"
    apiversion = f"{crd['spec']['group']}/{version}"
    schema = strict_schema(v["schema"]["openAPIV3Schema"])
    return apiversion, crd["spec"]["names"]["kind"], jsonschema_rs.Draft4Validator(schema, validate_formats=False)


K8S_RECIPES = {
    "sandbox.yaml": K8S / "crds" / "agents.x-k8s.io_sandboxes.yaml",
    "sandbox-template.yaml": K8S / "crds" / "extensions.agents.x-k8s.io_sandboxtemplates.yaml",
}


def test_k8s_crds_are_the_vendored_release():
    version = (K8S / "crds" / "VERSION").read_text()
    assert re.search(r"^release: v\d+\.\d+\.\d+$", version, re.M), version
    listed = dict(reversed(line.split()[1:]) for line in version.splitlines() if line.startswith("sha256:"))
    assert sorted(listed) == sorted(p.name for p in K8S_RECIPES.values())
    for name, digest in listed.items():
        assert hashlib.sha256((K8S / "crds" / name).read_bytes()).hexdigest() == digest, name


@pytest.mark.parametrize("manifest", sorted(K8S_RECIPES))
def test_k8s_manifest_is_valid_for_its_crd(manifest):
    apiversion, kind, validator = crd_validator(K8S_RECIPES[manifest], "v1beta1")
    doc = yaml.safe_load((K8S / manifest).read_text())
    assert (doc["apiVersion"], doc["kind"]) == (apiversion, kind)
    errors = [f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in validator.iter_errors(doc)]
    assert errors == []
    # The router addresses a sandbox by its name as a DNS label.
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", doc["metadata"]["name"])
    # What the daemon needs from the pod.
    (container,) = doc["spec"]["podTemplate"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["DAYTONA_SANDBOX_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"toolbox": 2280}
    probe = container["readinessProbe"]["httpGet"]
    assert probe["path"] == "/version" and ports.get(probe["port"], probe["port"]) == 2280
    # Longer than the daemon's own shutdown (5 s drain + 5 s entrypoint grace).
    assert doc["spec"]["podTemplate"]["spec"]["terminationGracePeriodSeconds"] > 10


def test_k8s_validation_rejects_what_the_api_server_would():
    """The validator is not vacuous: a misspelt field, a wrong type and a missing required
    field each fail."""
    _, _, validator = crd_validator(K8S_RECIPES["sandbox.yaml"], "v1beta1")
    doc = yaml.safe_load((K8S / "sandbox.yaml").read_text())
    assert validator.is_valid(doc)
    typo = copy.deepcopy(doc)
    typo["spec"]["podTemplate"]["spec"]["containers"][0]["readinessProbes"] = {}
    wrong_type = copy.deepcopy(doc)
    wrong_type["spec"]["podTemplate"]["spec"]["containers"][0]["ports"][0]["containerPort"] = [2280]
    missing = copy.deepcopy(doc)
    del missing["spec"]["podTemplate"]
    for bad in (typo, wrong_type, missing):
        assert not validator.is_valid(bad)


# ------------------------------------------------------------- the image's command at `podman stop`


def test_podman_stop_gives_the_entrypoint_its_grace_period(images):
    """`podman stop` as the daemon sees it at PID 1: the image's command gets SIGTERM while its
    output is still read, its trap prints, sleeps and writes a file, and the container exits 0
    once it is done, within the grace period, the trap's output in the entrypoint log."""
    script = (
        'trap "echo got-TERM; sleep 1; echo bye > /tmp/bye; echo after-file; exit 0" TERM; '
        "echo started; while :; do sleep 0.2; done"
    )
    c = run_recipe(
        images, "example", "sh", "-c", script, options=("--env", "DAYTONA_TERMINATION_GRACE_PERIOD=3s")
    )
    try:
        log = "/root/.daytona/sessions/entrypoint/entrypoint_command/output.log"
        assert wait_for(lambda: "started" in c.exec("sh", "-c", f"cat {log} 2>/dev/null; true"), 10), c.logs()
        elapsed = c.stop(10)
        assert 0.9 <= elapsed < 3 + 1, f"podman stop took {elapsed:.1f}s"
        assert c.inspect(".State.ExitCode") == "0", c.logs()[-3000:]
        # The stopped container's files are still there to read.
        out = podman("cp", f"{c.name}:{log}", "-").stdout
        assert "got-TERM" in out and "after-file" in out, out
        assert "bye" in podman("cp", f"{c.name}:/tmp/bye", "-").stdout
    finally:
        c.remove()
